"""Waveforms for deep training: decode and preprocess every clip in parallel (failures listed,
never raised), and the paper's augment-first pool of copies."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from emovox.audio import Preprocess
from emovox.data.manifest import Clip
from emovox.features.decode_loop import chunked, load_clip, run_chunks
from emovox.progress import progress_bar, resolve_jobs


class Waveforms(NamedTuple):
    """Decoded, preprocessed clips: ``wavs`` holds the usable ones in input order."""

    wavs: list[np.ndarray]  # float32, one per usable clip
    ok: np.ndarray  # (n,) bool over the input clips
    errors: list[tuple[str, str]]  # (path, reason) for each clip that could not be used
    hashes: list[str | None]  # (n,) content hash of the decoded audio (None: not decodable)


def _load_chunk(
    items: list[tuple[int, str]], pre: Preprocess, worker: bool = False
) -> list[tuple[int, np.ndarray | None, str | None, str | None]]:
    if worker:  # one BLAS thread per worker process (never in the caller's process)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            pass
    out = []
    for i, p in items:
        y, h, _duration, reason = load_clip(p, pre)
        out.append((i, y, h, reason))
    return out


def load_waveforms(
    clips: Sequence[Clip | str | os.PathLike[str]],
    pre: Preprocess | None = None,
    n_jobs: int = -1,
    progress: bool = True,
) -> Waveforms:
    """Decode and preprocess clips (or paths) in ``n_jobs`` processes; never raises per clip.

    Every clip that fails is listed in ``errors`` with its reason (nothing is dropped silently).
    Returns :class:`Waveforms` ``(wavs, ok, errors, hashes)``.
    """
    pre = pre or Preprocess()
    paths = [c.path if isinstance(c, Clip) else os.fspath(c) for c in clips]
    n = len(paths)
    jobs = resolve_jobs(n_jobs)
    size = max(8, min(64, math.ceil(n / (8 * jobs)) if n else 8))
    chunks = chunked(list(enumerate(paths)), size)
    got: list[np.ndarray | None] = [None] * n
    hashes: list[str | None] = [None] * n
    reasons: dict[int, str] = {}
    with progress_bar(progress) as bar:
        task = bar.add_task("audio", total=n)
        for chunk in run_chunks(_load_chunk, chunks, jobs, pre):
            for i, y, h, reason in chunk:
                got[i], hashes[i] = y, h
                if reason is not None:
                    reasons[i] = reason
            bar.advance(task, len(chunk))
    ok = np.array([y is not None for y in got], dtype=bool)
    errors = [(paths[i], reasons.get(i, "unknown error")) for i in range(n) if not ok[i]]
    wavs = [y for y in got if y is not None]
    return Waveforms(wavs, ok, errors, hashes)


def augmented_pool(
    wavs: Sequence[np.ndarray], copies: int, augment: Any, seed: int = 0, sr: int = 16_000
) -> tuple[list[np.ndarray], list[int], list[int]]:
    """The paper's augment-first pool: each clip plus ``copies`` augmented copies (seeded per
    clip and copy). Returns ``(wavs, source index per item, copy number per item (0 = original))``.
    """
    from emovox.deep.augment import augment_waveform

    out: list[np.ndarray] = []
    src: list[int] = []
    copy: list[int] = []
    for i, y in enumerate(wavs):
        out.append(y)
        src.append(i)
        copy.append(0)
        for c in range(1, copies + 1):
            rng = np.random.default_rng([seed, 7, i, c])
            out.append(augment_waveform(y, sr, rng, augment))
            src.append(i)
            copy.append(c)
    return out, src, copy
