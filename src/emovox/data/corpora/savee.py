"""SAVEE: ``AudioData/<SPK>/<e><NN>.ext`` or flat ``<SPK>_<e><NN>.ext`` (Haq & Jackson 2009).

Four male speakers (DC, JE, JK, KL); emotion prefixes ``a d f h n sa su``. Sentence numbers
restart for every emotion, so the text id is emotion letter(s) + number (``savee:sa03``).
``Info.txt`` and other non-audio files are not clips. A flat ``JE_a01`` file inside another
speaker's folder (``DC/``) is a problem: folder and name disagree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emovox.data.corpora.common import bad_name, finish, iter_audio_files, make_clip
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "savee"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "English (British)"
RECORDING = "acted by 4 male speakers, phonetically balanced sentences, studio"
PATTERN = "SAVEE pattern <SPK>/<e><NN> or <SPK>_<e><NN> (e = a d f h n sa su)"
SPEAKERS = ("DC", "JE", "JK", "KL")
EMOTIONS: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}

_SPK = "|".join(SPEAKERS)
_FLAT = re.compile(rf"^({_SPK})_(sa|su|a|d|f|h|n)(\d\d)$", re.IGNORECASE)
_NESTED = re.compile(r"^(sa|su|a|d|f|h|n)(\d\d)$", re.IGNORECASE)


def looks_like(folder: Path, stems: Sequence[str]) -> bool:
    """A speaker folder of ``a01``-style files, or a folder of ``DC_a01``-style files."""
    if folder.name.upper() in SPEAKERS and any(_NESTED.match(s) for s in stems):
        return True
    return any(_FLAT.match(s) for s in stems)


def root_for(folder: Path) -> Path:
    """The corpus root for a matching folder: ``AudioData`` above speaker folders."""
    return folder.parent if folder.name.upper() in SPEAKERS else folder


def parse(path: Path) -> Clip | Problem:
    """One SAVEE file (either layout) as a clip (probed), or the problem with its name."""
    if m := _FLAT.match(path.stem):
        speaker, code, number = m.group(1).upper(), m.group(2).lower(), m.group(3)
        folder = path.parent.name.upper()
        if folder in SPEAKERS and folder != speaker:
            reason = f"SAVEE file of speaker {speaker} inside folder {path.parent.name}"
            return Problem(str(path), reason, NAME)
    elif (m := _NESTED.match(path.stem)) and path.parent.name.upper() in SPEAKERS:
        speaker, code, number = path.parent.name.upper(), m.group(1).lower(), m.group(2)
    else:
        return bad_name(path, NAME, PATTERN)
    if int(number) < 1:
        return Problem(str(path), f"invalid SAVEE sentence number {number}", NAME)
    return make_clip(
        path,
        NAME,
        id=f"{NAME}:{speaker}_{code}{number}",
        emotion=EMOTIONS[code],
        label=code,
        speaker=f"{NAME}:{speaker}",
        gender="male",
        text=f"{NAME}:{code}{number}",
    )


def load(root: Path) -> Manifest:
    """Every audio file under ROOT as a SAVEE clip or a problem."""
    return finish(parse(p) for p in iter_audio_files(root))
