"""Scores for emotion classification: WA, UA, macro-F1, per-class recall, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def score(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """WA = accuracy, UA = mean per-class recall (balanced accuracy), macro-F1 over ``labels``.

    Classes absent from ``y_true`` are left out of UA and macro-F1 (their recall is undefined).
    """
    yt, yp = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    if len(yt) == 0:
        raise ValueError("no predictions to score")
    labels = list(labels)
    cm = confusion_matrix(yt, yp, labels=labels)
    support = cm.sum(axis=1)
    present = [i for i, n in enumerate(support) if n > 0]
    recall = {labels[i]: float(cm[i, i] / support[i]) for i in present}
    f1 = f1_score(yt, yp, labels=[labels[i] for i in present], average="macro", zero_division=0)
    return {
        "n": int(len(yt)),
        "wa": float(np.mean(yt == yp)),
        "ua": float(np.mean(list(recall.values()))),
        "macro_f1": float(f1),
        "per_class": recall,
        "support": {labels[i]: int(support[i]) for i in present},
        "labels": labels,
        "confusion": cm.tolist(),
    }
