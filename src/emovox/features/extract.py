"""Extract utterance feature vectors for many files: cached, parallel, and failure-tolerant."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emovox.audio import Preprocess
from emovox.features.cache import CacheEntry, FeatureCache
from emovox.features.decode_loop import chunked, load_clip, run_chunks
from emovox.features.utterance import FeatureConfig, feature_names, utterance_vector
from emovox.progress import progress_bar, resolve_jobs


@dataclass
class ExtractResult:
    """Features of the usable clips, and what happened to every input path."""

    X: np.ndarray  # (n_ok, d) float32, rows in input order of the ok paths
    ok: np.ndarray  # (n,) bool mask over the input paths
    hashes: list[str | None]  # decoded-audio content hash per path (None if not decodable)
    durations: np.ndarray  # (n,) decoded duration in seconds, NaN if not decodable
    errors: list[tuple[str, str]]  # (path, reason) for every clip that failed
    names: list[str] = field(default_factory=list)  # feature names, len d
    n_cached: int = 0  # how many came from the cache


# (index, vector or None, content hash or None, duration or NaN, error reason or None)
_Out = tuple[int, np.ndarray | None, str | None, float, str | None]

_LIMITS: object | None = None


def _limit_threads() -> None:
    """One BLAS/OpenMP (and torch, if loaded) thread per worker process, set once."""
    global _LIMITS
    if _LIMITS is not None:
        return
    try:
        from threadpoolctl import threadpool_limits

        _LIMITS = threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        _LIMITS = True
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def extract_one(
    path: str,
    config: FeatureConfig,
    pre: Preprocess,
    cache: FeatureCache | None = None,
    file_hash: str | None = None,
) -> tuple[np.ndarray | None, str | None, float, str | None]:
    """Decode -> content hash -> preprocess -> features for one file; never raises.

    Returns ``(vector, content_hash, duration, error)``; a successful result is stored in the
    cache when one is given with the file's hash.
    """
    sr = pre.sample_rate
    vec, chash, duration, error = load_clip(
        path, pre, lambda y, _h: utterance_vector(y, sr, config), step="feature extraction"
    )
    if vec is not None and cache is not None and file_hash is not None:
        try:
            cache.put(file_hash, config, pre, CacheEntry(vec, chash, duration))
        except OSError:
            pass  # a read-only or full cache only costs speed
    return vec, chash, duration, error


def _work_chunk(
    items: list[tuple[int, str, str | None]],
    config: FeatureConfig,
    pre: Preprocess,
    cache_root: str | None,
    worker: bool = False,
) -> list[_Out]:
    _limit_threads()  # in the caller's process too when it runs the chunks itself
    cache = FeatureCache(cache_root) if cache_root else None
    return [(i, *extract_one(p, config, pre, cache, fh)) for i, p, fh in items]


def extract(
    paths: Sequence[str | os.PathLike[str]] | Iterable[str | os.PathLike[str]],
    config: FeatureConfig | None = None,
    pre: Preprocess | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int = -1,
    progress: bool = True,
    chunk_size: int | None = None,
) -> ExtractResult:
    """Feature vectors for ``paths``; failures are recorded in ``errors``, never raised.

    Cache hits are read in this process (after hashing each file's bytes); the rest go to
    ``n_jobs`` worker processes (-1: all cores) in chunks. Per clip
    (:func:`emovox.features.decode_loop.load_clip`): :func:`emovox.audio.decode` ->
    :func:`emovox.audio.content_hash` -> :func:`emovox.audio.preprocess` ->
    :func:`utterance_vector`.
    """
    paths = [os.fspath(p) for p in paths]
    config = config or FeatureConfig()
    pre = pre or Preprocess()
    names = feature_names(config)
    d = len(names)
    n = len(paths)
    vecs: list[np.ndarray | None] = [None] * n
    hashes: list[str | None] = [None] * n
    durations = np.full(n, np.nan)
    reasons: dict[int, str] = {}
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    cache_root = str(Path(cache_dir)) if cache_dir is not None else None
    todo: list[tuple[int, str, str | None]] = []
    n_cached = 0

    with progress_bar(progress) as bar:
        task = bar.add_task("features", total=n)
        for i, p in enumerate(paths):
            fh: str | None = None
            if cache is not None:
                entry, fh = cache.lookup(p, config, pre, lambda x: x.shape == (d,))
                if entry is not None:
                    vecs[i], hashes[i] = entry.vector, entry.content_hash
                    durations[i] = entry.duration
                    n_cached += 1
                    if n_cached % 256 == 0:
                        bar.update(task, completed=n_cached)
                    continue
            todo.append((i, p, fh))
        bar.update(task, completed=n_cached)

        jobs = min(resolve_jobs(n_jobs), max(1, len(todo)))
        size = chunk_size or max(1, min(64, math.ceil(len(todo) / (jobs * 8))))
        for outs in run_chunks(_work_chunk, chunked(todo, size), jobs, config, pre, cache_root):
            for i, vec, chash, dur, err in outs:
                vecs[i], hashes[i], durations[i] = vec, chash, dur
                if err is not None:
                    reasons[i] = err
            bar.advance(task, len(outs))

    ok = np.array([v is not None for v in vecs], dtype=bool)
    X = np.zeros((int(ok.sum()), d), dtype=np.float32)
    for row, i in enumerate(np.flatnonzero(ok)):
        X[row] = vecs[i]
    errors = [(paths[i], reasons.get(i, "unknown failure")) for i in np.flatnonzero(~ok)]
    return ExtractResult(X, ok, hashes, durations, errors, names, n_cached)
