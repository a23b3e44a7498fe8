"""Users' own data ("custom"): folder-per-emotion trees or a CSV manifest.

Folder layouts (:func:`load_folder`), emotion folder names as understood by
:func:`emovox.data.labels.normalize_emotion` (``angry``, ``Anger``, ``ANG``, ``pleasant_surprise``
...):

- ``ROOT/EMOTION/*.ext`` -- no speaker level, so every clip gets speaker ``custom:unknown``;
  speaker-independent splits are then impossible, so prefer the next layout;
- ``ROOT/SPEAKER/EMOTION/*.ext`` -- speaker ``custom:<SPEAKER>``.

The first layout is assumed when any folder directly under ROOT is an emotion name. Audio files
that sit elsewhere, or under a folder that is not an emotion, are problems.

CSV manifest (:func:`load_csv`): columns ``path`` and ``emotion`` (required), ``speaker``
(empty or missing: ``unknown``), optional ``corpus`` (default ``custom``; spelled as
:func:`corpus_name` writes it) and, if present, ``id``, ``label``, ``gender``, ``text`` -- so a
manifest written by :meth:`Manifest.to_csv` reads back. Relative paths are resolved against the
CSV's folder; a missing file or an unknown emotion is a problem.

A CSV's corpus names are corpora like any other: ``scan(roots, ["mydb"])`` (``--corpus mydb``,
``--test-corpora mydb``) keeps the clips of the CSV rows naming ``mydb``
(:func:`select_corpora`); ``custom`` keeps everything this loader found.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path, PurePath

from emovox.data.corpora.common import finish, iter_audio_files, make_clip, regular_file_problem
from emovox.data.labels import LabelError, normalize_emotion
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "custom"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "(yours)"
RECORDING = "(yours)"
UNKNOWN_SPEAKER = "unknown"
REQUIRED_COLUMNS = ("path", "emotion")


def emotion_of(folder_name: str) -> str | None:
    """The unified emotion a folder name stands for, or None."""
    try:
        return normalize_emotion(folder_name)
    except LabelError:
        return None


def corpus_name(value: str) -> str:
    """A corpus name as clips carry it: ``'My-DB '`` → ``'my_db'`` (lower case, ``-`` and
    spaces as ``_``)."""
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def select_corpora(manifest: Manifest, names: set[str], available: set[str]) -> Manifest:
    """The clips (and problems) of ``manifest`` whose corpus is in ``names`` (``custom``: also
    every corpus named in CSV manifests); a name that is neither one of ``available`` (the
    known loaders) nor the corpus of any clip raises ValueError listing both."""
    found = {c.corpus for c in manifest.clips}
    custom = found - available
    unknown = sorted(names - found - available)
    if unknown:
        raise ValueError(
            f"unknown corpus {', '.join(map(repr, unknown))}; known: {', '.join(sorted(available))}"
            + (f"; named in CSV manifests found: {', '.join(sorted(custom))}" if custom else "")
        )
    keep = names | (custom if NAME in names else set())
    return Manifest(
        [c for c in manifest.clips if c.corpus in keep],
        [p for p in manifest.problems if p.corpus is None or p.corpus in keep],
    )


def _clip_id(corpus: str, rel: PurePath) -> str:
    return f"{corpus}:{rel.with_suffix('').as_posix()}"


def load_folder(root: Path) -> Manifest:
    """A folder-per-emotion tree: ``ROOT/EMOTION/*`` (speaker ``custom:unknown``) or
    ``ROOT/SPEAKER/EMOTION/*`` (speaker ``custom:<SPEAKER>``); ids ``custom:<ROOT name>/<rel>``."""
    root = Path(os.path.abspath(root))
    subdirs = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    flat = any(emotion_of(name) for name in subdirs)  # ROOT/EMOTION/... (no speaker level)
    expected = "ROOT/EMOTION/file" if flat else "ROOT/SPEAKER/EMOTION/file"
    items: list[Clip | Problem] = []
    for path in iter_audio_files(root):
        rel = path.relative_to(root)
        depth = 1 if flat else 2
        if len(rel.parts) <= depth:
            items.append(Problem(str(path), f"not inside an emotion folder ({expected})", NAME))
            continue
        folder = rel.parts[depth - 1]
        speaker = UNKNOWN_SPEAKER if flat else rel.parts[0]
        emotion = emotion_of(folder)
        if emotion is None:
            reason = f"folder {folder!r} is not a known emotion ({expected})"
            items.append(Problem(str(path), reason, NAME))
            continue
        items.append(
            make_clip(
                path,
                NAME,
                id=_clip_id(NAME, PurePath(root.name) / rel),
                emotion=emotion,
                label=folder,
                speaker=f"{NAME}:{speaker}",
            )
        )
    return finish(items)


def _header(csv_path: Path) -> tuple[list[str], csv.Dialect | type[csv.Dialect]]:
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(8192)
    try:
        dialect: csv.Dialect | type[csv.Dialect] = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    first = next(csv.reader(sample.splitlines()[:1], dialect), [])
    return [c.strip().lower() for c in first], dialect


def is_manifest_csv(path: Path) -> bool:
    """True for a readable CSV file whose header has ``path`` and ``emotion`` columns."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    try:
        columns, _ = _header(path)
    except (OSError, UnicodeDecodeError):
        return False
    return all(c in columns for c in REQUIRED_COLUMNS)


def _gender(value: str) -> str | None:
    v = value.strip().lower()
    return {"f": "female", "female": "female", "m": "male", "male": "male"}.get(v)


def _scoped(corpus: str, value: str) -> str:
    return value if ":" in value else f"{corpus}:{value}"


def load_csv(csv_path: Path) -> Manifest:
    """A CSV manifest (see the module docs); raises ValueError if it is not a regular file or
    required columns are missing."""
    csv_path = Path(os.path.abspath(csv_path))
    if problem := regular_file_problem(csv_path):
        raise ValueError(f"{csv_path}: {problem}")
    columns, dialect = _header(csv_path)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"{csv_path}: CSV manifest needs columns {', '.join(REQUIRED_COLUMNS)}; "
            f"missing {', '.join(missing)} (found: {', '.join(columns) or 'none'})"
        )
    base = csv_path.parent
    items: list[Clip | Problem] = []
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, dialect)
        next(reader, None)
        for lineno, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            row = {c: v.strip() for c, v in zip(columns, values, strict=False)}
            where = f"row {lineno} of {csv_path.name}"
            corpus = corpus_name(row.get("corpus", "")) or NAME
            raw = row.get("path", "")
            if not raw:
                items.append(Problem(f"{csv_path}:{lineno}", f"empty path ({where})", corpus))
                continue
            given = Path(raw).expanduser()
            path = Path(os.path.abspath(given if given.is_absolute() else base / given))
            if problem := regular_file_problem(path):
                items.append(Problem(str(path), f"{problem} ({where})", corpus))
                continue
            label = row.get("emotion", "")
            emotion = emotion_of(label) if label else None
            if emotion is None:
                reason = f"unknown emotion {label!r} ({where})"
                items.append(Problem(str(path), reason, corpus))
                continue
            rel = path.relative_to(base) if path.is_relative_to(base) else PurePath(raw)
            text = row.get("text", "")
            items.append(
                make_clip(
                    path,
                    corpus,
                    id=row.get("id") or _clip_id(corpus, rel),
                    emotion=emotion,
                    label=row.get("label") or label,
                    speaker=_scoped(corpus, row.get("speaker") or UNKNOWN_SPEAKER),
                    gender=_gender(row.get("gender", "")),
                    text=_scoped(corpus, text) if text else None,
                )
            )
    return finish(items)


def load(root: Path) -> Manifest:
    """A CSV manifest when ROOT is a ``.csv`` file, else a folder-per-emotion tree."""
    root = Path(root)
    if root.suffix.lower() == ".csv" and not root.is_dir():
        return load_csv(root)
    return load_folder(root)
