"""Unsupervised adaptation of feature vectors: standardise them per speaker (or per corpus).

Every speaker's clips are shifted and scaled so that speaker's features have zero mean and unit
variance, which removes much of what differs between voices, microphones and corpora while
keeping what differs between one speaker's emotions. It uses **no labels**, but it does use
*unlabeled clips of each test speaker*: a score with it assumes that, at use time, several
recordings of the same voice (or the same collection) are at hand. Reports mark it as such.

>>> import numpy as np
>>> X = np.array([[1.0], [3.0], [10.0], [14.0]])
>>> standardize_by_group(X, ["a", "a", "b", "b"]).ravel().tolist()
[-1.0, 1.0, -1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Grouping choices for ``ExperimentConfig.adapt``.
ADAPT_CHOICES = ("none", "speaker", "corpus")


def standardize_by_group(
    X: np.ndarray, groups: Sequence[object], min_std: float = 1e-3
) -> np.ndarray:
    """Zero mean and unit variance per feature within each group (float32 copy).

    A group of one clip only has its mean removed. A within-group standard deviation is never
    taken below ``min_std`` times that feature's spread over all clips, so features constant
    within a group stay finite.
    """
    X = np.asarray(X, dtype=np.float64)
    g = np.asarray(groups, dtype=object)
    if X.ndim != 2 or len(g) != len(X):
        raise ValueError(f"expected a 2-D matrix and one group per row, got {X.shape}, {len(g)}")
    floor = np.maximum(X.std(0), 1e-12) * min_std
    out = np.empty_like(X)
    for key in dict.fromkeys(g.tolist()):
        rows = g == key
        part = X[rows]
        mu = part.mean(0)
        sd = part.std(0) if len(part) > 1 else np.ones(X.shape[1])
        out[rows] = (part - mu) / np.maximum(sd, floor)
    return out.astype(np.float32)
