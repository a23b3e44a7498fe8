"""Scores for emotion classification: WA, UA, macro-F1, per-class recall, confusion matrix.

numpy and scikit-learn only (no torch): the deep trainer imports :func:`unweighted_accuracy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def unweighted_accuracy(
    y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any] | None = None
) -> float:
    """UA: mean recall over the classes present in ``y_true`` (balanced accuracy).

    With ``labels``, only those classes count, in that order; classes absent from ``y_true``
    are left out (their recall is undefined).
    """
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(yt) if labels is None else [c for c in labels if np.any(yt == c)]
    return float(np.mean([np.mean(yp[yt == c] == c) for c in classes]))


def score(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """WA = accuracy, UA = mean per-class recall (balanced accuracy), macro-F1 over ``labels``.

    Classes absent from ``y_true`` are left out of UA and macro-F1 (their recall is undefined);
    like the confusion matrix, UA and per-class recall count only clips whose true and
    predicted labels are both in ``labels``.
    """
    yt, yp = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    if len(yt) == 0:
        raise ValueError("no predictions to score")
    labels = list(labels)
    cm = confusion_matrix(yt, yp, labels=labels)
    # the clips the confusion matrix counts: true AND predicted label among ``labels``
    counted = np.isin(yt, labels) & np.isin(yp, labels)
    support = cm.sum(axis=1)
    present = [i for i, n in enumerate(support) if n > 0]
    recall = {labels[i]: float(cm[i, i] / support[i]) for i in present}
    f1 = f1_score(yt, yp, labels=[labels[i] for i in present], average="macro", zero_division=0)
    return {
        "n": int(len(yt)),
        "wa": float(np.mean(yt == yp)),
        "ua": unweighted_accuracy(yt[counted], yp[counted], labels),
        "macro_f1": float(f1),
        "per_class": recall,
        "support": {labels[i]: int(support[i]) for i in present},
        "labels": labels,
        "confusion": cm.tolist(),
    }
