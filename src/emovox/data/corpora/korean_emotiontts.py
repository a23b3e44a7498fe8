"""Korean emotional TTS corpus (KAIST / SELVAS AI, public sample): ``<set>/<spk>/wav/<spk><NNNNN>``.

Sets ``plain-to-emotional`` (speakers ema emb emf emg emh: a neutral script read with each
emotion) and ``emotional-to-emotional`` (nea-nee, nek-neo: the script matches the emotion).
The number gives the emotion: 1-100 neutral, 101-200 happy, 201-300 **sad**, 301-400 **angry**.
The corpus's own README swaps sad and angry; its data (script texts, loudness, length) say
otherwise, and this loader follows the data.

ema/nea and emb/neb are the same two women, so each pair is one speaker
(``korean_emotiontts:ema_nea``, ``korean_emotiontts:emb_neb``). Sentence ids follow the scripts:
in ``plain-to-emotional`` the same script is read for every emotion (``ema00001`` and ``ema00101``
share ``korean_emotiontts:plain-001``); in ``emotional-to-emotional`` the number is the script
(``korean_emotiontts:emotional-00001``). A file whose speaker or set disagrees with its folders
is a problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emovox.data.corpora.common import bad_name, finish, iter_audio_files, make_clip
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "korean_emotiontts"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "Korean"
RECORDING = "acted emotional TTS scripts, studio"
PATTERN = "Korean emotional TTS pattern <spk><NNNNN> (e.g. ema00101)"
#: Set folder -> (its speakers' prefix, short name used in sentence ids).
SETS: dict[str, tuple[str, str]] = {
    "plain-to-emotional": ("em", "plain"),
    "emotional-to-emotional": ("ne", "emotional"),
}
#: Speaker folder -> gender, as the corpus README gives them.
SPEAKERS: dict[str, str] = {
    **dict.fromkeys(("ema", "emb", "nea", "neb", "nec", "ned", "nee"), "female"),
    **dict.fromkeys(("emf", "emg", "emh", "nek", "nel", "nem", "nen", "neo"), "male"),
}
#: The same person recorded in both sets: one speaker id.
SAME_PERSON: dict[str, str] = {
    "ema": "ema_nea",
    "nea": "ema_nea",
    "emb": "emb_neb",
    "neb": "emb_neb",
}
#: Hundreds block of the clip number -> emotion (1-100 neutral, ... 301-400 angry).
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry")

_STEM = re.compile(r"^((?:em|ne)[a-z])(\d{5})$")


def looks_like(folder: Path, stems: Sequence[str]) -> bool:
    """A ``wav`` folder (or a speaker's own folder) of ``ema00001``-style files."""
    for s in stems:
        m = _STEM.match(s)
        if m and folder.name.lower() in ("wav", m.group(1)):
            return True
    return False


def root_for(folder: Path) -> Path:
    """The corpus root for a matching folder: above the ``<set>/<spk>/wav`` folders."""
    if folder.name.lower() == "wav":
        folder = folder.parent
    if folder.name.lower() in SPEAKERS:
        folder = folder.parent
    return folder.parent if folder.name.lower() in SETS else folder


def emotion_of(number: int) -> str | None:
    """The emotion of clip NUMBER (1-400), or None outside that range."""
    return EMOTIONS[(number - 1) // 100] if 1 <= number <= 400 else None


def _folders(path: Path) -> tuple[str | None, str | None]:
    """``(speaker folder, set folder)`` named above PATH, where the layout has them."""
    parts = [p.lower() for p in path.parent.parts]
    if parts and parts[-1] == "wav":
        parts = parts[:-1]
    speaker = parts[-1] if parts and parts[-1] in SPEAKERS else None
    above = parts[-2] if speaker and len(parts) >= 2 else (parts[-1] if parts else None)
    return speaker, above if above in SETS else None


def parse(path: Path) -> Clip | Problem:
    """One file as a clip (probed), or the problem with its name or folders."""
    m = _STEM.match(path.stem)
    if not m:
        return bad_name(path, NAME, PATTERN)
    prefix, digits = m.groups()
    if prefix not in SPEAKERS:
        return Problem(str(path), f"unknown Korean emotional TTS speaker {prefix!r}", NAME)
    number = int(digits)
    emotion = emotion_of(number)
    if emotion is None:
        return Problem(str(path), f"Korean emotional TTS clip number {digits} is not 1-400", NAME)
    speaker_folder, set_folder = _folders(path)
    if speaker_folder and speaker_folder != prefix:
        reason = f"Korean emotional TTS file of speaker {prefix} inside folder {speaker_folder}"
        return Problem(str(path), reason, NAME)
    kind = next(short for pre, short in SETS.values() if prefix.startswith(pre))
    if set_folder and SETS[set_folder][1] != kind:
        reason = f"Korean emotional TTS speaker {prefix} belongs in {kind}, not in {set_folder}"
        return Problem(str(path), reason, NAME)
    text = f"plain-{(number - 1) % 100 + 1:03d}" if kind == "plain" else f"emotional-{digits}"
    return make_clip(
        path,
        NAME,
        id=f"{NAME}:{path.stem}",
        emotion=emotion,
        label=digits,
        speaker=f"{NAME}:{SAME_PERSON.get(prefix, prefix)}",
        gender=SPEAKERS[prefix],
        text=f"{NAME}:{text}",
    )


def load(root: Path) -> Manifest:
    """Every audio file under ROOT as a Korean emotional TTS clip or a problem."""
    return finish(parse(p) for p in iter_audio_files(root))
