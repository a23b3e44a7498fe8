"""Which files are audio, and turning what a user typed (files, folders, patterns) into files."""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterable
from pathlib import Path

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


#: What a file that is not a regular file is, by ``stat`` type test.
_KINDS = (
    (stat.S_ISFIFO, "named pipe"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "folder"),
)

#: The reason given for a symbolic link whose target does not exist.
BROKEN_LINK = "broken symbolic link (target missing)"


def regular_file_problem(path: str | Path) -> str | None:
    """Why PATH must not be opened as a file, or None for a regular file (links followed).

    Opening a named pipe blocks until something writes to it, and a device may never end, so
    nothing that reads audio or metadata should open a path before this returns None. Reasons:
    ``"not a regular file (named pipe)"`` (or socket, device, folder), ``BROKEN_LINK``,
    ``"file not found"``, or ``"cannot stat (...)"``.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return BROKEN_LINK if os.path.islink(path) else "file not found"
    except OSError as exc:  # a link loop, a permission problem, a name too long ...
        return f"cannot stat ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "special file")
    return f"not a regular file ({kind})"


def skip_dir(name: str) -> bool:
    """True for folders that never hold corpus audio."""
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
        dirnames[:] = sorted(d for d in dirnames if not skip_dir(d))
        yield Path(dirpath), dirnames, sorted(filenames)


def iter_audio_files(root: str | Path) -> list[Path]:
    """Every audio file under ROOT (or ROOT itself if it is one), as absolute paths, sorted.

    Hidden files and ``__MACOSX`` folders are not audio and are left out. Names are listed
    whatever the file is (a named pipe, a broken link): callers check
    :func:`regular_file_problem` before opening one.
    """
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        return [root] if os.path.lexists(root) and is_audio(root) else []
    files = [folder / f for folder, _, names in walk(root) for f in names if is_audio(f)]
    return sorted(files, key=lambda p: p.parts)


#: Characters that make a command-line argument a glob pattern.
GLOB_CHARS = frozenset("*?[")


def expand_inputs(args: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files, folders (recursive, audio extensions only) and glob patterns → file paths in
    order, without duplicates; plus ``(argument, reason)`` for arguments that gave no file."""
    files: list[str] = []
    empty: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(p: str) -> None:
        if p not in seen:
            seen.add(p)
            files.append(p)

    for a in args:
        p = Path(a)
        if p.is_dir():
            found = iter_audio_files(p)
            if not found:
                empty.append((a, "folder holds no audio files"))
            for f in found:  # as the user wrote the folder: relative stays relative
                add(str(f) if os.path.isabs(a) else os.path.relpath(f))
        elif p.exists() or not (GLOB_CHARS & set(a)):
            add(a)  # a file (any name: the content decides), or a missing one reported later
        else:
            matches = sorted(glob.glob(a, recursive=True))
            hits = [
                str(f)
                for m in matches
                for f in (iter_audio_files(m) if Path(m).is_dir() else [Path(m)])
                if is_audio(f)
            ]
            if not hits:
                empty.append((a, "pattern matches no audio file"))
            for h in hits:
                add(h)
    return files, empty
