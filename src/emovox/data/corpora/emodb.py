"""EmoDB (Berlin Database of Emotional Speech): ``wav/03a01Fa.ext`` (Burkhardt et al. 2005).

Stem: speaker (2 digits), text code (``a01``), emotion letter (German initial: W Wut, L Langeweile,
E Ekel, A Angst, F Freude, T Trauer, N neutral) and a version letter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emovox.data.corpora.common import bad_name, finish, iter_audio_files, make_clip
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "emodb"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "German"
RECORDING = "acted by 10 actors, 10 sentences, anechoic studio"
PATTERN = "EmoDB pattern SStttEv (e.g. 03a01Fa)"
EMOTIONS: dict[str, str] = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
#: The ten EmoDB speakers and their genders.
SPEAKERS: dict[str, str] = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}

_STEM = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])$")


def looks_like(folder: Path, stems: Sequence[str]) -> bool:
    """A folder of ``03a01Fa``-style files."""
    return any(_STEM.match(s) for s in stems)


def root_for(folder: Path) -> Path:
    """The corpus root for a matching folder: the parent of ``wav``."""
    return folder.parent if folder.name.lower() == "wav" else folder


def parse(path: Path) -> Clip | Problem:
    """One EmoDB file as a clip (probed), or the problem with its name."""
    m = _STEM.match(path.stem)
    if not m:
        return bad_name(path, NAME, PATTERN)
    speaker, text, emotion, _version = m.groups()
    if emotion not in EMOTIONS:
        return Problem(str(path), f"unknown EmoDB emotion letter {emotion!r}", NAME)
    if speaker not in SPEAKERS:
        return Problem(str(path), f"unknown EmoDB speaker {speaker}", NAME)
    return make_clip(
        path,
        NAME,
        id=f"{NAME}:{path.stem}",
        emotion=EMOTIONS[emotion],
        label=emotion,
        speaker=f"{NAME}:{speaker}",
        gender=SPEAKERS[speaker],
        text=f"{NAME}:{text}",
    )


def load(root: Path) -> Manifest:
    """Every audio file under ROOT as an EmoDB clip or a problem."""
    return finish(parse(p) for p in iter_audio_files(root))
