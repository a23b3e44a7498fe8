"""On-disk feature cache: one ``.npz`` per clip (no pickle), written atomically.

Layout: ``root/v<CACHE_VERSION>-<config.key()>-<preprocess key>/<sha[:2]>/<sha>.npz``
(``config.key()`` hashes the settings and the version of the code that computes the features,
so an edit of that code misses instead of re-using stale vectors), where ``sha`` is the SHA-1
of the raw file bytes, so a renamed or moved file still hits and an edited one misses.
Each entry holds the feature vector, the decoded-audio content hash (before trimming; see
:func:`emovox.audio.content_hash`) and the decoded duration in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from emovox.audio import Preprocess
from emovox.audio.files import regular_file_problem
from emovox.features.utterance import FeatureConfig


@dataclass(frozen=True)
class CacheEntry:
    """What the cache keeps per clip."""

    vector: np.ndarray
    content_hash: str
    duration: float


def file_sha1(path: str | os.PathLike[str]) -> str:
    """SHA-1 of a file's bytes; :class:`OSError` for anything that is not a regular file
    (opening a named pipe would block forever)."""
    problem = regular_file_problem(path)
    if problem:
        raise OSError(f"{path}: {problem}")
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha1").hexdigest()


def preprocess_key(pre: Preprocess) -> str:
    """Stable short hash of preprocessing settings."""
    blob = json.dumps(asdict(pre), sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


#: Bump when the entry format or the meaning of its fields changes.
CACHE_VERSION = 1


@lru_cache(maxsize=64)
def _namespace_of(config: FeatureConfig, pre: Preprocess, code_version: str) -> str:
    # code_version is part of config.key(); as an argument it keeps this memo honest when the
    # code version changes within one process
    return f"v{CACHE_VERSION}-{config.key()}-{preprocess_key(pre)}"


def namespace(config: FeatureConfig, pre: Preprocess) -> str:
    """The cache folder name for these settings: :data:`CACHE_VERSION`, ``config.key()``
    (settings and the version of the code computing them) and the preprocessing key."""
    return _namespace_of(config, pre, config.code_version())


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _stored(x: np.ndarray) -> np.ndarray:
    """float16 arrays (frame-level embeddings) stay float16; everything else is float32."""
    x = np.asarray(x)
    return x if x.dtype == np.float16 else x.astype(np.float32)


class FeatureCache:
    """Feature vectors keyed by (file bytes, feature settings and code version, preprocessing
    settings). ``config`` is a :class:`FeatureConfig` or an
    :class:`emovox.features.embeddings.EmbeddingConfig` (anything hashable with ``key()``,
    ``code_version()`` and ``to_dict()``)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def directory(self, config: FeatureConfig, pre: Preprocess) -> Path:
        """The folder holding entries for these settings (with a ``settings.json``)."""
        return self.root / namespace(config, pre)

    def path(self, file_hash: str, config: FeatureConfig, pre: Preprocess) -> Path:
        return self.directory(config, pre) / file_hash[:2] / f"{file_hash}.npz"

    def get(self, file_hash: str, config: FeatureConfig, pre: Preprocess) -> CacheEntry | None:
        """The stored entry, or None when absent or unreadable (then it is recomputed)."""
        p = self.path(file_hash, config, pre)
        try:
            with np.load(p, allow_pickle=False) as z:
                return CacheEntry(z["x"], str(z["content_hash"]), float(z["duration"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def lookup(
        self,
        path: str,
        config: FeatureConfig,
        pre: Preprocess,
        accept: Callable[[np.ndarray], bool] = lambda x: True,
    ) -> tuple[CacheEntry | None, str | None]:
        """``(entry, file hash)`` for the file at ``path``: the entry when it is stored and
        ``accept(entry.vector)`` (a shape check), else None; the hash is None when the file
        cannot be read (the decoder names the problem later)."""
        try:
            fh = file_sha1(path)
        except OSError:
            return None, None
        entry = self.get(fh, config, pre)
        return (entry if entry is not None and accept(entry.vector) else None), fh

    def put(
        self, file_hash: str, config: FeatureConfig, pre: Preprocess, entry: CacheEntry
    ) -> None:
        """Store an entry (atomic: temp file then ``os.replace``)."""
        d = self.directory(config, pre)
        settings = d / "settings.json"
        if not settings.exists():
            text = json.dumps({"features": config.to_dict(), "preprocess": asdict(pre)}, indent=1)
            _atomic_write(settings, lambda fh: fh.write(text.encode()))
        _atomic_write(
            self.path(file_hash, config, pre),
            lambda fh: np.savez(
                fh,
                x=_stored(entry.vector),
                content_hash=np.array(entry.content_hash),
                duration=np.float64(entry.duration),
            ),
        )
