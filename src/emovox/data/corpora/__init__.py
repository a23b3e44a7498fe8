"""Corpus loaders: find known emotional-speech corpora under a folder and list their clips.

>>> from emovox import corpora
>>> corpora.detect("../shared/corpora")          # [("ravdess", Path(...)), ("tess", ...), ...]
>>> manifest = corpora.scan(["../shared/corpora"], ["ravdess", "tess"])
>>> corpora.load_corpus("savee", "../shared/corpora/savee")

One module per corpus (``ravdess``, ``tess``, ``savee``, ``crema_d``, ``emodb``,
``spanish_acted``, ``korean_emotiontts``, ``indian_emospeech``), each with
``load(root) -> Manifest``; ``generic`` reads users' own folder-per-emotion trees and CSV
manifests (corpus name ``custom``). Every audio file a loader sees becomes a clip or a problem;
nothing that is not a regular file (a named pipe, a device, a broken link) is ever opened.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from emovox.data.corpora import (
    crema_d,
    emodb,
    generic,
    indian_emospeech,
    korean_emotiontts,
    ravdess,
    savee,
    spanish_acted,
    tess,
)
from emovox.data.corpora.common import AUDIO_EXTENSIONS, is_audio, iter_audio_files, probe, walk
from emovox.data.manifest import Clip, Manifest, Problem

__all__ = [
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "LOADERS",
    "corpus_info",
    "detect",
    "iter_audio_files",
    "load_corpus",
    "probe",
    "scan",
]

#: The published corpora recognised by their layout and file naming.
_KNOWN: dict[str, ModuleType] = {
    "ravdess": ravdess,
    "tess": tess,
    "savee": savee,
    "crema_d": crema_d,
    "emodb": emodb,
    "spanish_acted": spanish_acted,
    "korean_emotiontts": korean_emotiontts,
    "indian_emospeech": indian_emospeech,
}

#: Corpus name -> ``load(root) -> Manifest``.
LOADERS: dict[str, Callable[[Path], Manifest]] = {
    **{name: mod.load for name, mod in _KNOWN.items()},
    generic.NAME: generic.load,
}
CORPORA: tuple[str, ...] = tuple(LOADERS)

_ORDER = {name: i for i, name in enumerate(CORPORA)}


def corpus_info(name: str) -> dict[str, str]:
    """``{"corpus", "language", "recording"}`` of a known corpus (a model card's coverage);
    an unknown name is a ``ValueError`` naming the known ones."""
    key = _corpus_name(name)
    mod = _KNOWN.get(key, generic)
    return {"corpus": key, "language": mod.LANGUAGE, "recording": mod.RECORDING}


def _corpus_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    return key


@functools.lru_cache(maxsize=4096)
def _real_dir(folder: str) -> str:
    return os.path.realpath(folder)


def _real(path: str | Path) -> str:
    """``os.path.realpath`` made cheap for many files: folders are resolved once."""
    folder, base = os.path.split(os.path.abspath(path))
    real = os.path.join(_real_dir(folder), base)
    return os.path.realpath(real) if os.path.islink(real) else real


def _under(path: str, folder: str) -> bool:
    """PATH is FOLDER or lies below it (both absolute, normalised)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _detect(root: str | Path) -> tuple[list[tuple[str, Path]], list[Path]]:
    """Detected ``(corpus, root)`` pairs, and every audio file seen under ROOT."""
    scan_root = Path(os.path.abspath(root))
    if not scan_root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    if not scan_root.is_dir():  # a file (or a named pipe, never opened: see probe)
        if generic.is_manifest_csv(scan_root):
            return [(generic.NAME, scan_root)], []
        return [], [scan_root] if is_audio(scan_root) else []
    found: set[tuple[str, Path]] = set()
    emotion_dirs: list[Path] = []
    audio: list[Path] = []
    for folder, _, names in walk(scan_root):
        stems = []
        for name in names:
            if is_audio(name):
                stems.append(os.path.splitext(name)[0])
                audio.append(folder / name)
            elif name.lower().endswith(".csv") and generic.is_manifest_csv(folder / name):
                found.add((generic.NAME, folder / name))
        if not stems:
            continue
        matched = False
        for name, mod in _KNOWN.items():
            if mod.looks_like(folder, stems):
                matched = True
                root = mod.root_for(folder)  # never above the folder the user asked for
                found.add((name, root if _under(str(root), str(scan_root)) else scan_root))
        if not matched and folder != scan_root and generic.emotion_of(folder.name):
            emotion_dirs.append(folder)
    # Users' folder-per-emotion trees: ROOT/EMOTION/* (root = parent of the emotion folders), or
    # ROOT/SPEAKER/EMOTION/* when two or more sibling folders hold emotion folders.
    parents = sorted({d.parent for d in emotion_dirs})
    for p in parents:
        siblings = sum(q.parent == p.parent for q in parents)
        found.add((generic.NAME, p.parent if p != scan_root and siblings >= 2 else p))
    return _prune(found), audio


def _prune(found: set[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """Drop roots inside another root of the same corpus, and custom folders inside known ones."""
    known = [str(r) for n, r in found if n != generic.NAME]
    keep = []
    for name, root in found:
        r = str(root)
        same = [str(o) for n, o in found if n == name and o != root]
        if any(_under(r, o) for o in same):
            continue
        if name == generic.NAME and root.is_dir() and any(_under(r, k) for k in known):
            continue
        keep.append((name, root))
    return sorted(keep, key=lambda nr: (_ORDER[nr[0]], nr[1].parts))


def detect(root: str | Path) -> list[tuple[str, Path]]:
    """Known corpora anywhere under ROOT, as sorted ``(corpus name, corpus root)`` pairs.

    ROOT may be a corpus folder itself, a folder holding several corpora, or a folder deeper
    inside one. Recognised by layout and naming: RAVDESS ``Actor_NN/03-01-...``, TESS
    ``OAF_*``/``YAF_*`` folders, SAVEE ``AudioData/{DC,JE,JK,KL}`` or flat ``DC_a01``, CREMA-D
    ``AudioWAV/1001_DFA_ANG_XX``, EmoDB ``wav/03a01Fa``, Spanish acted ``data/3/Alegria_1``,
    Korean emotional TTS ``<set>/ema/wav/ema00101``, Indian EmoSpeech
    ``<location>/help-safe-calm-<time>-<hash>``; ``custom`` for folder-per-emotion trees
    and CSV files with ``path`` and ``emotion`` columns (the root is then the CSV file).
    """
    return _detect(root)[0]


def _merge(loaded: list[tuple[str, Path, Manifest]], all_roots: list[tuple[str, Path]]) -> Manifest:
    """Merge loaders' results. A file belongs to the deepest detected folder root holding it."""
    folder_roots = sorted((str(r) for _, r in all_roots if r.is_dir()), key=lambda s: (-len(s), s))

    def owner(path: str) -> str | None:
        return next((r for r in folder_roots if _under(path, r)), None)

    clips: dict[str, Clip] = {}  # id -> clip
    by_file: dict[str, Clip] = {}  # real path -> clip
    problems: list[Problem] = []
    pending: list[Problem] = []
    for _, root, m in loaded:
        mine = str(root) if root.is_dir() else None

        def owned(path: str, mine: str | None = mine) -> bool:
            return mine is None or owner(path) in (mine, None)

        for c in m.clips:
            if not owned(c.path):
                continue
            real = _real(c.path)
            if real in by_file:
                first = by_file[real]
                if first.id != c.id:
                    reason = f"same file already loaded as {first.id}"
                    problems.append(Problem(c.path, reason, c.corpus))
            elif c.id in clips:
                reason = f"duplicate clip id {c.id} (first at {clips[c.id].path})"
                problems.append(Problem(c.path, reason, c.corpus))
            else:
                clips[c.id] = by_file[real] = c
        pending.extend(p for p in m.problems if owned(p.path))
    # A file one loader could not parse but another took as a clip is not a problem.
    problems.extend(p for p in pending if _real(p.path) not in by_file)
    unique = dict.fromkeys(problems)
    return Manifest(
        sorted(clips.values(), key=lambda c: (_ORDER.get(c.corpus, len(_ORDER)), c.corpus, c.id)),
        sorted(unique, key=lambda p: (p.corpus or "~", p.path, p.reason)),
    )


def scan(roots: Sequence[str | Path], corpora: Sequence[str] | None = None) -> Manifest:
    """Detect and load every known corpus under ROOTS (only CORPORA, if given) into one manifest.

    Nothing is dropped silently: unparseable names, non-speech RAVDESS files, unreadable headers
    and duplicate ids are problems; when no corpus filter is given, audio files outside any
    recognised layout are problems with ``corpus=None``. CORPORA may also name the corpora of
    CSV manifests (their ``corpus`` column, :func:`generic.select_corpora`).
    """
    if isinstance(roots, (str, Path)):
        roots = [roots]
    names = {generic.corpus_name(c) for c in corpora} if corpora else set(CORPORA)
    wanted = (names & set(CORPORA)) | ({generic.NAME} if names - set(CORPORA) else set())
    _real_dir.cache_clear()
    found: dict[tuple[str, Path], int] = {}  # pair -> index of the first ROOT it was found under
    audio: list[Path] = []
    for i, root in enumerate(roots):
        pairs, files = _detect(root)
        for pair in pairs:
            found.setdefault(pair, i)
        audio.extend(files)
    # Earlier ROOTS win when the same clip id turns up twice.
    all_roots = sorted(_prune(set(found)), key=lambda pair: found[pair])
    loaded = [(n, r, LOADERS[n](r)) for n, r in all_roots if n in wanted]
    manifest = _merge(loaded, all_roots)
    if names - set(CORPORA):  # corpora named in CSV manifests (or unknown names)
        manifest = generic.select_corpora(manifest, names, set(CORPORA))
    if not corpora:
        seen = {_real(c.path) for c in manifest.clips}
        seen |= {_real(p.path) for p in manifest.problems}
        stray = sorted({str(p) for p in audio if _real(p) not in seen})
        reason = "audio file outside any recognised corpus layout"
        manifest.problems.extend(Problem(p, reason, None) for p in stray)
    return manifest


def load_corpus(name: str, root: str | Path) -> Manifest:
    """One corpus: the roots of NAME detected under ROOT, or ROOT itself if none is detected."""
    name = _corpus_name(name)
    if any(n == name for n, _ in detect(root)):
        return scan([root], [name])
    return LOADERS[name](Path(os.path.abspath(root)))
