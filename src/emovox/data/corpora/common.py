"""Helpers shared by the corpus loaders: which files are audio, walking a tree, probing headers."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emovox.audio.decode import AudioError, open_reader
from emovox.audio.files import (
    AUDIO_EXTENSIONS,
    is_audio,
    iter_audio_files,
    regular_file_problem,
    walk,
)
from emovox.audio.stream import probe_seconds
from emovox.data.manifest import Clip, Manifest, Problem

__all__ = [
    "AUDIO_EXTENSIONS",
    "UnreadableAudio",
    "bad_name",
    "finish",
    "is_audio",
    "iter_audio_files",
    "make_clip",
    "probe",
    "regular_file_problem",
    "walk",
]


class UnreadableAudio(Exception):
    """The file's audio header cannot be read."""


def probe(path: str | Path) -> tuple[float, int]:
    """``(duration in seconds, sample rate)`` read from the header only where the container
    tells it (no decoding); containers without a frame count (some M4A/WebM) are decoded.

    Raises :class:`UnreadableAudio` when PATH is not a regular file (a named pipe would block
    the open forever; see :func:`regular_file_problem`), when it cannot be opened as audio (the
    same reader and messages as :func:`emovox.audio.decode.decode`: the content is sniffed, so
    AIFF data named ``.wav`` still probes and text named ``.wav`` is called text) or it holds
    no frames.
    """
    problem = regular_file_problem(path)
    if problem:
        raise UnreadableAudio(problem)
    try:
        reader = open_reader(str(path))
        try:
            frames, sr = reader.frames, int(reader.samplerate)
        finally:
            reader.close()
        duration = frames / sr if frames and sr > 0 else probe_seconds(str(path))
    except AudioError as exc:
        raise UnreadableAudio(f"unreadable header ({exc.reason})") from exc
    if sr <= 0 or duration <= 0:
        raise UnreadableAudio(f"unreadable header (no audio frames: {frames} at {sr} Hz)")
    return duration, sr


def make_clip(path: Path, corpus: str, **fields: Any) -> Clip | Problem:
    """Probe PATH and build its :class:`Clip`, or a :class:`Problem` if it is not a regular file
    or its header is unreadable."""
    try:
        duration, sr = probe(path)
    except UnreadableAudio as exc:
        return Problem(str(path), str(exc), corpus)
    return Clip(corpus=corpus, path=str(path), duration=duration, sample_rate=sr, **fields)


def finish(items: Iterable[Clip | Problem]) -> Manifest:
    """Collect clips and problems, sorted; a second clip with an already used id is a problem."""
    clips: dict[str, Clip] = {}
    problems: list[Problem] = []
    for item in items:
        if isinstance(item, Problem):
            problems.append(item)
        elif item.id in clips:
            reason = f"duplicate clip id {item.id} (first at {clips[item.id].path})"
            problems.append(Problem(item.path, reason, item.corpus))
        else:
            clips[item.id] = item
    return Manifest(
        sorted(clips.values(), key=lambda c: c.id),
        sorted(problems, key=lambda p: (p.path, p.reason)),
    )


def bad_name(path: Path, corpus: str, pattern: str) -> Problem:
    """The usual problem for a file whose name does not follow the corpus's naming."""
    return Problem(str(path), f"name does not match {pattern}", corpus)
