"""Which files are audio, and turning what a user typed (files, folders, patterns) into files."""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from collections.abc import Iterable, Sequence
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


def is_pattern(arg: str) -> bool:
    """True for an argument that is a glob pattern: it holds ``*``, ``?`` or ``[`` and names
    nothing that exists (a file may well be called ``take[1].wav``)."""
    return bool(GLOB_CHARS & set(arg)) and not os.path.lexists(arg)


def expand_pattern(pattern: str) -> list[str]:
    """The audio files a glob pattern names as a path (relative ones from the current folder;
    ``**`` spans folders; a folder it matches gives its audio files), in sorted order."""
    hits: list[str] = []
    for m in sorted(glob.glob(pattern, recursive=True)):
        if os.path.isdir(m):
            hits += [str(f) for f in iter_audio_files(m)]
        elif is_audio(m):
            hits.append(m)
    return hits


def matches_in_folder(folder: str | Path, pattern: str, files: list[Path]) -> list[Path]:
    """Those of FILES (audio files under FOLDER, as :func:`iter_audio_files` gives them) that
    PATTERN picks: by file name when the pattern has no folder separator (``*.flac`` matches
    at any depth), else by the path inside FOLDER with glob rules (``sub/*.wav``, ``**/a.wav``).
    Case-sensitive, like the shell."""
    if "/" not in pattern and os.sep not in pattern:
        return [f for f in files if fnmatch.fnmatchcase(f.name, pattern)]
    root = glob.escape(os.path.abspath(folder))
    hits: set[Path] = set()
    for m in glob.glob(os.path.join(root, pattern), recursive=True):
        if os.path.isdir(m):
            hits.update(iter_audio_files(m))
        else:
            hits.add(Path(os.path.abspath(m)))
    return [f for f in files if f in hits]


def input_groups(args: Sequence[str]) -> list[tuple[list[str], list[str]]]:
    """ARGS cut into ``(names, patterns)`` groups: a run of files and folders, then the run of
    glob patterns that follows it (either may be empty)."""
    groups: list[tuple[list[str], list[str]]] = []
    for a in args:
        pattern = is_pattern(a)
        if not groups or (groups[-1][1] and not pattern):
            groups.append(([], []))
        groups[-1][1 if pattern else 0].append(a)
    return groups


def expand_inputs(args: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """What a user typed → audio file paths, in order and without duplicates; plus
    ``(argument, reason)`` for each argument that gave no file. The rules of ``emovox predict``:

    - a file is taken as written, whatever its name (its content decides), and so is a missing
      one (reading it reports the problem);
    - a folder gives its audio files, searched recursively;
    - a glob pattern (``*``, ``?``, ``[``) that follows one or more folders filters the files
      found in them: it keeps those whose name (``"*.flac"``, at any depth) or whose path
      inside the folder (``"sub/*.wav"``) matches. It filters the folders named since the
      previous pattern; patterns in a row add up (``DIR "*.wav" "*.flac"``); files named
      explicitly are never filtered;
    - a pattern with no folder before it, or an absolute one, is expanded as a path from the
      current folder;
    - a pattern that matches no audio file, or a folder that holds none, is reported.
    """
    files: list[str] = []
    empty: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(p: str) -> None:
        if p not in seen:
            seen.add(p)
            files.append(p)

    for names, patterns in input_groups(args):
        folders = [a for a in names if os.path.isdir(a)]
        filters = [p for p in patterns if folders and not os.path.isabs(p)]
        matched = dict.fromkeys(filters, 0)
        for a in names:
            if a not in folders:
                add(a)  # a file (any name: the content decides), or a missing one reported later
                continue
            found = iter_audio_files(a)
            if not found:
                empty.append((a, "folder holds no audio files"))
            if filters:
                kept: set[Path] = set()
                for p in filters:
                    picked = matches_in_folder(a, p, found)
                    matched[p] += len(picked)
                    kept.update(picked)
                found = [f for f in found if f in kept]
            for f in found:  # as the user wrote the folder: relative stays relative
                add(str(f) if os.path.isabs(a) else os.path.relpath(f))
        for p, n in matched.items():
            if not n:
                why = f"pattern matches no audio file in {', '.join(folders)}"
                if expand_pattern(p):  # it would name files from the current folder
                    why += " (to take it from the current folder, put it before the folders)"
                empty.append((p, why))
        for p in patterns:
            if p in matched:
                continue
            hits = expand_pattern(p)
            if not hits:
                empty.append((p, "pattern matches no audio file"))
            for h in hits:
                add(h)
    return files, empty
