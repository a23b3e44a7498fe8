"""Spanish acted emotional speech (student recordings, 2020): ``<speaker folder>/<Emotion>_<n>``.

Sixteen speaker folders (``data/0`` .. ``data/13``, ``tests/Test1``, ``tests/Test2``), one speaker
each, identity and gender not documented. Spanish emotion names: Alegria happy, Asco disgust,
Ira angry, Miedo fearful, Neutro neutral, Sorpresa surprised, Tristeza sad; ``n`` = 1..12 is the
sentence. Speaker ids keep the folder's parent so that ``data/1`` and a ``tests/1`` could not
merge: ``spanish_acted:data-3``, ``spanish_acted:tests-Test1``.

Published quirks, read as clips with a note: ``data/0/Ira__N`` (double underscore),
``data/11/Neutro`` (no number, so no sentence id), and five clips the source lists as malformed
(they decode, but may be cut or noisy).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emovox.data.corpora.common import bad_name, finish, iter_audio_files, make_clip
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "spanish_acted"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "Spanish"
RECORDING = "acted by 16 non-professional speakers, 12 sentences (a class project)"
PATTERN = "Spanish acted pattern <Emotion>_<n> (Alegria Asco Ira Miedo Neutro Sorpresa Tristeza)"
EMOTIONS: dict[str, str] = {
    "alegria": "happy",
    "asco": "disgust",
    "ira": "angry",
    "miedo": "fearful",
    "neutro": "neutral",
    "sorpresa": "surprised",
    "tristeza": "sad",
}
SENTENCES = range(1, 13)
#: Folders that hold the speaker folders in the published layout.
GROUPS = ("data", "tests")
#: Clips the corpus's source lists as malformed, as ``<folder>/<stem>`` (speaker id form).
MALFORMED = frozenset(
    {"data-0/Ira__2", "data-3/Sorpresa_8", "data-7/Neutro_11", "data-10/Ira_12"}
    | {"data-10/Sorpresa_9", "data-13/Asco_11"}
)

_STEM = re.compile(r"^([A-Za-z]+?)(?:(_{1,2})(\d+))?$")


def _emotion_stem(stem: str) -> re.Match[str] | None:
    m = _STEM.match(stem)
    return m if m and m.group(1).lower() in EMOTIONS else None


def looks_like(folder: Path, stems: Sequence[str]) -> bool:
    """A folder of ``Alegria_1``-style files."""
    return any(_emotion_stem(s) for s in stems)


def root_for(folder: Path) -> Path:
    """The corpus root for a speaker folder: above ``data/``/``tests/``, else its parent."""
    return folder.parent.parent if folder.parent.name.lower() in GROUPS else folder.parent


def speaker_of(folder: Path) -> str:
    """The speaker part of the id: ``data-3`` for ``data/3``, else the folder's own name."""
    if folder.parent.name.lower() in GROUPS:
        return f"{folder.parent.name}-{folder.name}"
    return folder.name


def parse(path: Path) -> Clip | Problem:
    """One file as a clip (probed), or the problem with its name."""
    m = _emotion_stem(path.stem)
    if not m:
        return bad_name(path, NAME, PATTERN)
    word, underscores, number = m.groups()
    notes = []
    if underscores == "__":
        notes.append("double underscore in the name (a quirk of the published corpus)")
    if number is None:
        text = None
        notes.append("no sentence number in the name, so no sentence id")
    elif int(number) in SENTENCES:
        text = f"{NAME}:{int(number)}"
    else:
        return Problem(str(path), f"Spanish acted sentence number {number} is not 1-12", NAME)
    speaker = speaker_of(path.parent)
    if f"{speaker}/{path.stem}" in MALFORMED:
        notes.append("listed as malformed by the corpus source (decodes, may be cut or noisy)")
    return make_clip(
        path,
        NAME,
        id=f"{NAME}:{speaker}/{path.stem}",
        emotion=EMOTIONS[word.lower()],
        label=word,
        speaker=f"{NAME}:{speaker}",
        text=text,
        note="; ".join(notes) or None,
    )


def load(root: Path) -> Manifest:
    """Every audio file under ROOT as a Spanish acted clip or a problem."""
    return finish(parse(p) for p in iter_audio_files(root))
