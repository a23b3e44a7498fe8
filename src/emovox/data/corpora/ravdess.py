"""RAVDESS: ``Actor_NN/MM-VV-EE-II-SS-RR-AA.ext`` (Livingstone & Russo 2018).

Only modality 03 (audio-only) with vocal channel 01 (speech) is speech audio; song (channel 02)
and the video files (modality 01/02) are reported as problems, never silently skipped. A file
whose actor disagrees with its ``Actor_NN`` folder is a problem too (which one is right is unknown).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emovox.data.corpora.common import bad_name, finish, iter_audio_files, make_clip
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "ravdess"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "English (North American)"
RECORDING = "acted by 24 professional actors, 2 sentences, studio"
PATTERN = "RAVDESS pattern MM-VV-EE-II-SS-RR-AA"

_STEM = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ACTOR_DIR = re.compile(r"^actor_(\d+)$", re.IGNORECASE)

EMOTIONS: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
_MODALITY = {"01": "full audio-video", "02": "video-only", "03": "audio-only"}
_CHANNEL = {"01": "speech", "02": "song"}


def looks_like(folder: Path, stems: Sequence[str]) -> bool:
    """A folder holding files named like RAVDESS clips."""
    return any(_STEM.match(s) for s in stems)


def root_for(folder: Path) -> Path:
    """The corpus root for a matching folder: the parent of ``Actor_NN`` folders."""
    return folder.parent if _ACTOR_DIR.match(folder.name) else folder


def parse(path: Path) -> Clip | Problem:
    """One RAVDESS file as a clip (probed), or the problem with its name."""
    stem = path.stem
    m = _STEM.match(stem)
    if not m:
        return bad_name(path, NAME, PATTERN)
    modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
    if modality != "03":
        kind = _MODALITY.get(modality, "unknown")
        reason = f"RAVDESS modality {modality} ({kind}) is not audio-only (03)"
        return Problem(str(path), reason, NAME)
    if channel != "01":
        kind = _CHANNEL.get(channel, "unknown")
        reason = f"RAVDESS vocal channel {channel} ({kind}) is not speech (01)"
        return Problem(str(path), reason, NAME)
    checks = [
        (emotion in EMOTIONS, f"emotion code {emotion} (01-08)"),
        (intensity in ("01", "02"), f"intensity {intensity} (01-02)"),
        (statement in ("01", "02"), f"statement {statement} (01-02)"),
        (repetition in ("01", "02"), f"repetition {repetition} (01-02)"),
        (1 <= int(actor) <= 24, f"actor {actor} (01-24)"),
    ]
    bad = [what for ok, what in checks if not ok]
    if bad:
        return Problem(str(path), "invalid RAVDESS " + ", ".join(bad), NAME)
    folder = _ACTOR_DIR.match(path.parent.name)
    if folder and int(folder.group(1)) != int(actor):
        reason = f"RAVDESS file of actor {actor} inside folder {path.parent.name}"
        return Problem(str(path), reason, NAME)
    return make_clip(
        path,
        NAME,
        id=f"{NAME}:{stem}",
        emotion=EMOTIONS[emotion],
        label=emotion,
        speaker=f"{NAME}:{actor}",
        gender="male" if int(actor) % 2 else "female",
        text=f"{NAME}:{statement}",
    )


def load(root: Path) -> Manifest:
    """Every audio file under ROOT as a RAVDESS clip or a problem."""
    return finish(parse(p) for p in iter_audio_files(root))
