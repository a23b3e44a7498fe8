"""Shared pieces of the heads that take one frame sequence per clip (the attentive head and
the fine-tuned encoder blocks): input and label checks, length-bucketed batches, and the
scikit-learn-style parameter and ``predict`` face."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "SequenceHead",
    "batch_bounds",
    "check_sequences",
    "encode_labels",
    "length_bucketed_batches",
]


def check_sequences(
    X: Any, *, ndim: int, time_axis: int, expected: str, hint: str
) -> list[np.ndarray]:
    """``X`` as a list of per-clip arrays of ``ndim`` dimensions, each with frames on
    ``time_axis`` (at least one) and the same size on every other axis; a ``ValueError`` that
    names the clip otherwise (``expected`` describes the shape, ``hint`` where it comes from)."""
    seqs = list(X)
    if not seqs:
        raise ValueError("no clips given")
    ref: tuple[int, ...] | None = None
    for i, x in enumerate(seqs):
        if not isinstance(x, np.ndarray) or x.ndim != ndim or x.shape[time_axis] == 0:
            got = getattr(x, "shape", type(x).__name__)
            raise ValueError(f"clip {i}: expected {expected} with T > 0, got {got}; {hint}")
        rest = tuple(n for j, n in enumerate(x.shape) if j != time_axis)
        if ref is None:
            ref = rest
        elif rest != ref:
            raise ValueError(f"clip {i}: sizes {rest} (besides time) differ from {ref}")
    return seqs


def encode_labels(y: Sequence[Any], n_clips: int) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, y_idx)``: the sorted class labels and each clip's class index; a
    ``ValueError`` when there is not one label per clip or fewer than two classes."""
    y = np.asarray(y)
    if len(y) != n_clips:
        raise ValueError(f"{n_clips} clips but {len(y)} labels")
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError("need at least two classes to train")
    return classes, y_idx


def batch_bounds(n: int, size: int, join_single: bool = False) -> list[tuple[int, int]]:
    """``[start, stop)`` of each batch over ``n`` clips: batches of ``size``; with
    ``join_single`` a last batch of one clip is joined to the one before (batch normalisation
    needs two)."""
    bounds = [(i, min(i + size, n)) for i in range(0, n, size)]
    if join_single and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def length_bucketed_batches(
    lengths: np.ndarray, bounds: Sequence[tuple[int, int]], jitter: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Clip indices cut at ``bounds`` from the clips sorted by length plus up to ``jitter``
    frames of noise from ``rng``: batches of similar lengths (less padding) that vary between
    epochs."""
    order = np.argsort(lengths + rng.random(len(lengths)) * jitter, kind="stable")
    return [order[a:b] for a, b in bounds]


class SequenceHead:
    """Base of the frame-sequence heads: ``get_params``/``set_params`` over :attr:`PARAMS` and
    ``predict`` from ``predict_proba``."""

    #: the constructor's parameter names, in order
    PARAMS: tuple[str, ...] = ()
    classes_: np.ndarray

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters and their values."""
        return {k: getattr(self, k) for k in self.PARAMS}

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters; a ``ValueError`` for an unknown name."""
        for k, v in params.items():
            if k not in self.PARAMS:
                raise ValueError(
                    f"unknown parameter {k!r} for {type(self).__name__}; "
                    f"known: {', '.join(self.PARAMS)}"
                )
            setattr(self, k, v)
        return self

    def predict_proba(self, X: Sequence[np.ndarray]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def predict(self, X: Sequence[np.ndarray]) -> np.ndarray:
        """The most probable class of each clip."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
