"""A classifier over text features, and its fusion with an acoustic model.

The text head is the standardised logistic regression the frozen-encoder heads use
(:func:`emovox.models.make_model` ``"logreg"``: ``StandardScaler`` then class-balanced
``LogisticRegression``), a plain scikit-learn estimator. :func:`fold_probabilities` gives
out-of-fold class probabilities over a split's folds, so the text head, the acoustic head and
their fusions are scored on the same held-out clips; :func:`late_fusion` averages probability
sets with weights fixed in advance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from emovox.evaluation.experiment import class_probabilities
from emovox.models import make_model

#: inverse regularisation of the text head: the acoustic logreg head's default, fixed in
#: advance (not tuned on any test fold)
TEXT_HEAD_C = 0.01


class FoldLike(Protocol):
    """What :func:`fold_probabilities` reads of a fold (:class:`emovox.evaluation.splits.Fold`)."""

    train: np.ndarray
    test: np.ndarray


def text_head(C: float = TEXT_HEAD_C, seed: int = 0) -> Any:
    """An unfitted scikit-learn pipeline: ``StandardScaler`` then class-balanced
    ``LogisticRegression(C)`` (``fit``, ``predict``, ``predict_proba``, ``classes_``)."""
    return make_model("logreg", seed=seed, C=C)


def fold_probabilities(
    make: Callable[[], Any],
    X: np.ndarray,
    y: Sequence[str],
    folds: Sequence[FoldLike],
    labels: Sequence[str],
) -> np.ndarray:
    """Out-of-fold probabilities ``(len(X), len(labels))``: for each fold a fresh ``make()``
    fitted on its training rows predicts its test rows; rows no fold tests stay NaN."""
    X = np.asarray(X)
    y = np.asarray(y, dtype=object)
    if len(X) != len(y):
        raise ValueError(f"{len(X)} feature rows but {len(y)} labels")
    out = np.full((len(X), len(labels)), np.nan)
    for fold in folds:
        train, test = np.asarray(fold.train, dtype=int), np.asarray(fold.test, dtype=int)
        model = make().fit(X[train], y[train])
        proba = class_probabilities(model, X[test], labels)
        if proba is None:
            raise ValueError(f"{type(model).__name__} gives no class probabilities")
        out[test] = proba
    return out


def late_fusion(probs: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """The weighted mean of probability sets of one shape (equal weights by default)."""
    if not probs:
        raise ValueError("nothing to fuse")
    shapes = {np.shape(p) for p in probs}
    if len(shapes) != 1:
        raise ValueError(f"probability sets differ in shape: {sorted(shapes)}")
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=float)
    if len(w) != len(probs) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"need {len(probs)} non-negative weights with a positive sum, got {w}")
    return np.tensordot(w / w.sum(), np.stack(probs), axes=1)


def predicted_labels(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The most probable label of each row."""
    return np.asarray(labels, dtype=object)[np.argmax(probs, axis=1)]
