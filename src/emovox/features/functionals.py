"""Utterance-level statistics ("functionals") of frame-level feature contours."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Every statistic :func:`functionals` knows, in output order.
STATS: tuple[str, ...] = ("mean", "std", "min", "max", "p10", "p50", "p90", "slope")
DEFAULT_STATS: tuple[str, ...] = STATS

_PERCENTILES = {"p10": 10.0, "p25": 25.0, "p50": 50.0, "p75": 75.0, "p90": 90.0}
_KNOWN = set(STATS) | set(_PERCENTILES) | {"range", "iqr"}


def check_stats(stats: Sequence[str]) -> tuple[str, ...]:
    """Validate statistic names; returns them as a tuple."""
    bad = [s for s in stats if s not in _KNOWN]
    if bad or not stats:
        raise ValueError(f"unknown statistics {bad}; known: {', '.join(sorted(_KNOWN))}")
    return tuple(stats)


def functionals(
    frames: np.ndarray,
    stats: Sequence[str] = DEFAULT_STATS,
    frame_rate: float = 1.0,
) -> np.ndarray:
    """Statistics of each row of ``frames`` ``(d, T)`` -> ``(d * len(stats),)`` float32.

    Row-major: the stats of row 0, then of row 1, ... (see :func:`functional_names`).
    ``slope`` is the least-squares slope per second given ``frame_rate`` frames per second
    (per frame by default). Works for ``T = 1`` and constant rows (std and slope 0) and
    never returns NaN (non-finite inputs are zeroed first; ``T = 0`` gives zeros).
    """
    stats = check_stats(stats)
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    d, T = x.shape
    if T == 0:
        return np.zeros(d * len(stats), dtype=np.float32)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    cols: dict[str, np.ndarray] = {}
    wanted = {s for s in stats if s in _PERCENTILES} | ({"p25", "p75"} if "iqr" in stats else set())
    pct_names = sorted(wanted, key=_PERCENTILES.__getitem__)
    if pct_names:
        q = np.percentile(x, [_PERCENTILES[p] for p in pct_names], axis=1)
        cols.update(zip(pct_names, q, strict=True))
    mean = x.mean(axis=1)
    for s in stats:
        if s in cols:
            continue
        if s == "mean":
            cols[s] = mean
        elif s == "std":
            cols[s] = np.sqrt(np.maximum(np.mean((x - mean[:, None]) ** 2, axis=1), 0.0))
        elif s == "min":
            cols[s] = x.min(axis=1)
        elif s == "max":
            cols[s] = x.max(axis=1)
        elif s == "range":
            cols[s] = x.max(axis=1) - x.min(axis=1)
        elif s == "iqr":
            cols[s] = cols["p75"] - cols["p25"]
        elif s == "slope":
            if T < 2:
                cols[s] = np.zeros(d)
            else:
                t = (np.arange(T) - (T - 1) / 2.0) / frame_rate
                cols[s] = (x - mean[:, None]) @ t / float(t @ t)
    out = np.stack([cols[s] for s in stats], axis=1).reshape(-1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def functional_names(rows: Sequence[str], stats: Sequence[str] = DEFAULT_STATS) -> list[str]:
    """Names matching :func:`functionals`' output: ``f"{row}_{stat}"``, row-major."""
    stats = check_stats(stats)
    return [f"{r}_{s}" for r in rows for s in stats]
