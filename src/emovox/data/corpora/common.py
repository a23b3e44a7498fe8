"""Helpers shared by the corpus loaders: which files are audio, walking a tree, probing headers."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import soundfile as sf

from emovox.data.manifest import Clip, Manifest, Problem

#: File extensions treated as audio (lower case). Files with these names are either turned into
#: clips or reported as problems; every other file (``.txt``, ``.csv``, ``.md`` ...) is ignored.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aiff",
        ".aif",
        ".aifc",
        ".m4a",
        ".mp4",
        ".aac",
        ".wma",
        ".webm",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
        ".sph",
    }
)


def is_audio(path: str | Path) -> bool:
    """True for a file name with an audio extension (case-insensitive), hidden files excepted."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def _skip_dir(name: str) -> bool:
    # Hidden folders and macOS zip debris (``__MACOSX/._x.wav`` are resource forks, not audio).
    return name.startswith(".") or name == "__MACOSX"


def walk(root: str | Path) -> Iterable[tuple[Path, list[str], list[str]]]:
    """``os.walk`` in sorted order that follows symlinked folders once, skipping hidden ones.

    Yields ``(folder, subfolder names, file names)``; callers may prune ``subfolder names``.
    """
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link loop or the same folder linked twice
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not _skip_dir(d))
        yield Path(dirpath), dirnames, sorted(filenames)


def iter_audio_files(root: str | Path) -> list[Path]:
    """Every audio file under ROOT (or ROOT itself if it is one), as absolute paths, sorted.

    Hidden files and ``__MACOSX`` folders are not audio and are left out.
    """
    root = Path(os.path.abspath(root))
    if root.is_file():
        return [root] if is_audio(root) else []
    files = [folder / f for folder, _, names in walk(root) for f in names if is_audio(f)]
    return sorted(files, key=lambda p: p.parts)


class UnreadableAudio(Exception):
    """The file's audio header cannot be read."""


def probe(path: str | Path) -> tuple[float, int]:
    """``(duration in seconds, sample rate)`` read from the header only (fast: no decoding).

    Raises :class:`UnreadableAudio` when libsndfile cannot open the file or it holds no frames.
    The container is sniffed from the content, so AIFF data named ``.wav`` still probes.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            frames, sr = f.frames, f.samplerate
    except (RuntimeError, TypeError, ValueError, OSError) as exc:
        raise UnreadableAudio(f"unreadable header ({exc})") from exc
    if sr <= 0 or frames <= 0:
        raise UnreadableAudio(f"unreadable header (no audio frames: {frames} at {sr} Hz)")
    return frames / sr, int(sr)


def make_clip(path: Path, corpus: str, **fields: Any) -> Clip | Problem:
    """Probe PATH and build its :class:`Clip`, or a :class:`Problem` if the header is unreadable."""
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
