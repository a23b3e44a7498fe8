"""Pooling an encoder's hidden states over time into one vector per clip.

The one implementation shared by training (:func:`emovox.features.embeddings.embed_waveform`)
and inference (the backends of :mod:`emovox.inference.backends`): for each layer, the
statistics named in ``stats`` (``"mean"``, ``"std"``, population std) over the time axis, side
by side, layers in order. numpy only; :func:`time_stats` also works on torch tensors, so the
torch / ONNX graph pools with the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: The pooling statistics understood here, in their usual order.
STATS = ("mean", "std")


def time_stats(h: Any, stats: Sequence[str] = STATS, axis: int = 0) -> list[Any]:
    """The statistics ``stats`` of hidden states ``h`` over its time ``axis``, in order.

    ``h`` is a numpy array or a torch tensor (the result is of the same kind and dtype);
    ``"std"`` is the population standard deviation (divided by ``T``).
    """
    out = []
    for s in stats:
        if s == "mean":
            out.append(h.mean(axis))
        elif s == "std":
            out.append(h.std(axis) if isinstance(h, np.ndarray) else h.std(axis, unbiased=False))
        else:
            raise ValueError(f"unknown pooling statistic {s!r} (use {', '.join(STATS)})")
    return out


def pool_layers(layers: Sequence[Any], stats: Sequence[str] = STATS) -> np.ndarray:
    """Pool each layer's ``(T, D)`` hidden states over time, in float64:
    ``(n_layers, len(stats) * D)`` float32. Layers may be numpy arrays or CPU torch tensors."""
    rows = [np.concatenate(time_stats(np.asarray(h, dtype=np.float64), stats)) for h in layers]
    return np.stack(rows).astype(np.float32)


def pool_stats(layers: Sequence[Any], stats: Sequence[str] = STATS) -> np.ndarray:
    """:func:`pool_layers` flattened: the per-clip vector ``(n_layers * len(stats) * D,)``."""
    return pool_layers(layers, stats).reshape(-1)


def merge_chunk_stats(
    pooled: Sequence[np.ndarray], weights: Sequence[int], n_layers: int, stats: Sequence[str]
) -> np.ndarray:
    """:func:`pool_stats` of consecutive chunks joined in time, from each chunk's pooled vector
    and weight (its length); exact when ``weights`` are the chunks' numbers of frames. Needs
    ``stats`` mean, std."""
    if len(pooled) == 1:
        return pooled[0]
    if list(stats) != list(STATS):
        raise ValueError("chunk merging needs stats ['mean', 'std']")
    w = np.asarray(weights, dtype=np.float64)[:, None]
    P = np.stack([np.asarray(p, dtype=np.float64) for p in pooled])  # (n_chunks, F)
    d = P.shape[1] // (2 * n_layers)
    P = P.reshape(len(pooled), n_layers, 2, d)
    mean, std = P[:, :, 0], P[:, :, 1]
    m = (w[:, :, None] * mean).sum(0) / w.sum()
    sq = (w[:, :, None] * (std**2 + mean**2)).sum(0) / w.sum()
    s = np.sqrt(np.maximum(sq - m**2, 0.0))
    return np.stack([m, s], axis=1).reshape(-1).astype(np.float32)


def pair_frames(layers: Sequence[Any]) -> np.ndarray:
    """Stack ``(T, D)`` hidden states into ``(n_layers, T // 2, D)`` float16, averaging pairs
    of frames (50 -> 25 per second); a single frame is kept as it is."""
    h = np.stack([np.asarray(x, dtype=np.float32) for x in layers])
    t = max(h.shape[1] // 2, 1)
    if h.shape[1] >= 2:
        h = h[:, : 2 * t].reshape(h.shape[0], t, 2, h.shape[2]).mean(2)
    return h.astype(np.float16)
