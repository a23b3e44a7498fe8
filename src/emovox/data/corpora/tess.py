"""TESS: ``<SPK>_<Emotion>/<SPK>_<word>_<emotion>.ext`` (Pichora-Fuller & Dupuis 2020).

Two female speakers, OAF (older) and YAF (younger). The emotion comes from the file's suffix
(``ps`` = pleasant surprise); folder spellings vary (``OAF_Fear``, ``YAF_pleasant_surprised``) and
a folder that names another emotion or speaker than its file is a problem. The published quirk
``OA_bite_neutral`` (prefix cut short) takes its speaker from the enclosing ``OAF_*`` folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emovox.data.corpora.common import bad_name, finish, iter_audio_files, make_clip
from emovox.data.labels import LabelError, normalize_emotion
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "tess"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "English (Canadian)"
RECORDING = "2 female speakers, 'Say the word ...' carrier phrase, studio"
PATTERN = "TESS pattern <OAF|YAF>_<word>_<emotion>"
SPEAKERS = ("OAF", "YAF")

_STEM = re.compile(r"^([A-Za-z]+)_([A-Za-z']+)_([A-Za-z]+)$")
_FOLDER = re.compile(r"^(OAF|YAF)_(.+)$", re.IGNORECASE)


def looks_like(folder: Path, stems: Sequence[str]) -> bool:
    """A ``OAF_*``/``YAF_*`` folder, or any folder of ``OAF_word_emotion`` files."""
    if _FOLDER.match(folder.name) and any(_STEM.match(s) for s in stems):
        return True
    return any((m := _STEM.match(s)) and m.group(1).upper() in SPEAKERS for s in stems)


def root_for(folder: Path) -> Path:
    """The corpus root for a matching folder: the parent of the ``OAF_*``/``YAF_*`` folders."""
    return folder.parent if _FOLDER.match(folder.name) else folder


def parse(path: Path) -> Clip | Problem:
    """One TESS file as a clip (probed), or the problem with its name or folder."""
    m = _STEM.match(path.stem)
    if not m:
        return bad_name(path, NAME, PATTERN)
    prefix, word, suffix = m.groups()
    folder = _FOLDER.match(path.parent.name)
    folder_speaker = folder.group(1).upper() if folder else None
    speaker = prefix.upper()
    note = None
    if speaker not in SPEAKERS:
        # Known quirk: ``OA_bite_neutral`` inside ``OAF_neutral``; trust the folder's speaker.
        if folder_speaker and folder_speaker.startswith(speaker):
            speaker = folder_speaker
            note = f"speaker prefix {prefix!r} cut short; speaker {speaker} taken from its folder"
        else:
            return Problem(str(path), f"TESS speaker prefix {prefix!r} is not OAF or YAF", NAME)
    if folder_speaker and folder_speaker != speaker:
        reason = f"TESS file of speaker {speaker} inside folder {path.parent.name}"
        return Problem(str(path), reason, NAME)
    try:
        emotion = normalize_emotion(suffix)
    except LabelError:
        return Problem(str(path), f"unknown TESS emotion {suffix!r}", NAME)
    if folder:
        try:
            folder_emotion: str | None = normalize_emotion(folder.group(2))
        except LabelError:
            folder_emotion = None  # folder spelling not understood: the file name decides
        if folder_emotion and folder_emotion != emotion:
            reason = (
                f"TESS file says {emotion} ({suffix}) but its folder {path.parent.name} says "
                f"{folder_emotion}"
            )
            return Problem(str(path), reason, NAME)
    return make_clip(
        path,
        NAME,
        id=f"{NAME}:{path.stem}",
        emotion=emotion,
        label=suffix,
        speaker=f"{NAME}:{speaker}",
        gender="female",
        text=f"{NAME}:{word.lower()}",
        note=note,
    )


def load(root: Path) -> Manifest:
    """Every audio file under ROOT as a TESS clip or a problem."""
    return finish(parse(p) for p in iter_audio_files(root))
