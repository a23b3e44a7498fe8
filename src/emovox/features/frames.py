"""Frame-level feature sequences, one ``(T, d)`` matrix per clip, for models of the temporal
course of an utterance (the HMM): MFCCs and their deltas, frame energy and pitch.

:func:`frame_features` computes one clip's sequence from the building blocks of the utterance
vector (:mod:`emovox.features.spectral`'s ``mfcc`` and ``delta``, :mod:`emovox.features.prosody`'s
``energy`` and ``pitch``); :func:`extract_frames` runs it over many files: cached
(:class:`~emovox.features.cache.FeatureCache`), in parallel, and failure-tolerant like
:func:`emovox.features.extract`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from emovox.audio import Preprocess
from emovox.features.cache import CacheEntry, FeatureCache
from emovox.features.decode_loop import chunked, load_clip, run_chunks
from emovox.features.extract import ExtractResult
from emovox.features.prosody import energy, pitch
from emovox.features.spectral import delta, log_mel, mfcc, power_spectrogram
from emovox.progress import progress_bar, resolve_jobs

__all__ = ["FrameConfig", "extract_frames", "frame_feature_names", "frame_features"]

#: The modules whose code computes a frame sequence from a file (part of the cache key).
FRAME_MODULES = (
    "emovox.audio.decode",
    "emovox.audio.preprocess",
    "emovox.features.prosody",
    "emovox.features.spectral",
    "emovox.features.frames",
)

#: Reference of the pitch contour in semitones (``12 log2(f0 / F0_REF_HZ)``).
F0_REF_HZ = 100.0


@lru_cache(maxsize=1)
def frame_code_version() -> str:
    """Hash of the source of :data:`FRAME_MODULES`: part of :meth:`FrameConfig.key`."""
    from emovox.features.code_version import source_version

    return source_version(FRAME_MODULES)


@dataclass(frozen=True)
class FrameConfig:
    """Settings of :func:`frame_features` (frames of ``n_fft`` samples every ``hop``)."""

    n_mfcc: int = 13
    n_mels: int = 64
    n_fft: int = 400  # 25 ms at 16 kHz
    hop: int = 160  # 10 ms
    fmin: float = 60.0  # pitch search range, Hz
    fmax: float = 500.0

    def __post_init__(self) -> None:
        if self.n_mfcc < 1 or self.n_mels < self.n_mfcc:
            raise ValueError(f"need 1 <= n_mfcc <= n_mels, got {self.n_mfcc}, {self.n_mels}")
        if self.n_fft < 16 or self.n_fft % 2 or self.hop < 1:
            raise ValueError("n_fft must be even and >= 16, hop >= 1")
        if not 0 < self.fmin < self.fmax:
            raise ValueError("need 0 < fmin < fmax")

    def to_dict(self) -> dict:
        return asdict(self)

    def code_version(self) -> str:
        """Version of the code computing the frames (:func:`frame_code_version`)."""
        return frame_code_version()

    def key(self) -> str:
        """Stable short hash of the settings and the code version, for caches."""
        blob = json.dumps({"frames": self.code_version(), **self.to_dict()}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def frame_feature_names(config: FrameConfig | None = None) -> list[str]:
    """Names of the columns of :func:`frame_features`, in order."""
    n = (config or FrameConfig()).n_mfcc
    return [
        *(f"mfcc{i}" for i in range(n)),
        *(f"d_mfcc{i}" for i in range(n)),
        "energy_db",
        "d_energy_db",
        "f0_st",
        "d_f0_st",
    ]


def frame_features(
    y: np.ndarray, sr: int = 16_000, config: FrameConfig | None = None
) -> np.ndarray:
    """``(T, d)`` float32 frames of one clip, ``T = 1 + len(y) // hop``, columns
    :func:`frame_feature_names`: MFCCs, their deltas, energy (dB) and its delta, the pitch
    contour in semitones re :data:`F0_REF_HZ` (interpolated across unvoiced frames; 0 in a clip
    with none) and its delta. (No 0/1 voicing flag: under a Gaussian emission a state that only
    saw one value gets a floor variance, and one frame of the other value then outweighs all
    the rest of the clip.)"""
    c = config or FrameConfig()
    y = np.ascontiguousarray(y, dtype=np.float32).ravel()
    S = power_spectrogram(y, c.n_fft, c.hop)
    mel_db = log_mel(y, sr, c.n_mels, c.n_fft, c.hop, S=S)
    cep = mfcc(y, sr, c.n_mfcc, deltas=False, mel_db=mel_db)
    e = energy(y, sr, c.n_fft, c.hop)[None]
    f0, voiced = pitch(y, sr, c.fmin, c.fmax, c.hop)
    st = np.zeros(len(f0), dtype=np.float32)
    idx = np.flatnonzero(voiced)
    if idx.size:
        st = np.interp(np.arange(len(f0)), idx, 12.0 * np.log2(f0[idx] / F0_REF_HZ))
    st = st.astype(np.float32)[None]
    rows = [cep, delta(cep), e, delta(e), st, delta(st)]
    T = min(r.shape[1] for r in rows)
    out = np.concatenate([r[:, :T] for r in rows], axis=0).T
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


# (index, frames or None, content hash or None, duration or NaN, error reason or None)
_Out = tuple[int, np.ndarray | None, str | None, float, str | None]


def _work_chunk(
    items: list[tuple[int, str, str | None]],
    config: FrameConfig,
    pre: Preprocess,
    cache_root: str | None,
    worker: bool = False,
) -> list[_Out]:
    cache = FeatureCache(cache_root) if cache_root else None
    sr = pre.sample_rate
    out: list[_Out] = []
    for i, path, fh in items:
        x, chash, duration, error = load_clip(
            path, pre, lambda y, _h: frame_features(y, sr, config), step="frame features"
        )
        if x is not None and cache is not None and fh is not None:
            try:
                cache.put(fh, config, pre, CacheEntry(x, chash, duration))  # type: ignore[arg-type]
            except OSError:
                pass  # a read-only or full cache only costs speed
        out.append((i, x, chash, duration, error))
    return out


def extract_frames(
    paths: Sequence[str | os.PathLike[str]],
    config: FrameConfig | None = None,
    pre: Preprocess | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int = -1,
    progress: bool = True,
) -> ExtractResult:
    """Frame sequences of ``paths``: an :class:`~emovox.features.extract.ExtractResult` whose
    ``X`` is an object array of ``(T, d)`` float32 arrays (one per usable clip) and whose
    ``names`` are :func:`frame_feature_names`. Failures are listed in ``errors``, never raised;
    cache hits are read here, the rest computed in ``n_jobs`` processes (-1: all cores)."""
    config = config or FrameConfig()
    pre = pre or Preprocess()
    paths = [os.fspath(p) for p in paths]
    names = frame_feature_names(config)
    n = len(paths)
    seqs: list[np.ndarray | None] = [None] * n
    hashes: list[str | None] = [None] * n
    durations = np.full(n, np.nan)
    reasons: dict[int, str] = {}
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    todo: list[tuple[int, str, str | None]] = []
    with progress_bar(progress) as bar:
        task = bar.add_task("frame features", total=n)
        for i, p in enumerate(paths):
            fh: str | None = None
            if cache is not None:
                entry, fh = cache.lookup(
                    p,
                    config,
                    pre,
                    lambda x: x.ndim == 2 and x.shape[1] == len(names),  # type: ignore[arg-type]
                )
                if entry is not None:
                    seqs[i], hashes[i], durations[i] = (
                        entry.vector,
                        entry.content_hash,
                        entry.duration,
                    )
                    bar.advance(task)
                    continue
            todo.append((i, p, fh))
        n_cached = n - len(todo)
        jobs = min(resolve_jobs(n_jobs), max(1, len(todo)))
        size = max(1, min(32, math.ceil(len(todo) / (jobs * 8))))
        root = str(Path(cache_dir)) if cache_dir is not None else None
        for outs in run_chunks(_work_chunk, chunked(todo, size), jobs, config, pre, root):
            for i, x, chash, dur, err in outs:
                seqs[i], hashes[i], durations[i] = x, chash, dur
                if err is not None:
                    reasons[i] = err
            bar.advance(task, len(outs))
    ok = np.array([s is not None for s in seqs], dtype=bool)
    X = np.empty(int(ok.sum()), dtype=object)
    for row, i in enumerate(np.flatnonzero(ok)):
        X[row] = seqs[i]
    errors = [(paths[i], reasons.get(i, "unknown failure")) for i in np.flatnonzero(~ok)]
    return ExtractResult(X, ok, hashes, durations, errors, names, n_cached)
