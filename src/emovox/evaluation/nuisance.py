"""Remove the directions along which training corpora differ (nuisance attribute projection).

Each training corpus gets a class-balanced mean (the mean of its per-emotion means, so a corpus
with many angry clips is not told apart by its anger); the main directions of those means,
around their average, are the *corpus directions*. Projecting them out of every feature vector
leaves what varies within corpora (emotion, speaker) and drops the most obvious "which studio is
this" axes. It is fitted on training data only, so it is a plain (not adapted) recipe: a new
clip is projected alone, with nothing learnt from its own corpus.

>>> import numpy as np
>>> Z = np.array([[0.0, 1.0], [0.0, 2.0], [4.0, 1.0], [4.0, 2.0]])
>>> V = group_directions(Z, ["a", "a", "b", "b"], ["x", "y", "x", "y"], 1)
>>> np.abs(V).round(3).tolist()
[[1.0, 0.0]]
>>> remove_directions(Z, V).tolist()
[[0.0, 1.0], [0.0, 2.0], [0.0, 1.0], [0.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def group_directions(
    Z: np.ndarray, groups: Sequence[object], y: Sequence[object], k: int | None = None
) -> np.ndarray:
    """The ``k`` main directions (rows, orthonormal) of the spread of the groups'
    class-balanced means of ``Z``; ``k`` defaults to (number of groups - 1), all there are."""
    Z = np.asarray(Z, dtype=np.float64)
    g = np.asarray(groups, dtype=object)
    lab = np.asarray(y, dtype=object)
    if Z.ndim != 2 or len(g) != len(Z) or len(lab) != len(Z):
        raise ValueError(f"expected a 2-D matrix, one group and one label per row: {Z.shape}")
    keys = list(dict.fromkeys(g.tolist()))
    if len(keys) < 2:
        raise ValueError("corpus directions need at least two groups (training corpora)")
    means = []
    for key in keys:
        rows = g == key
        means.append(np.mean([Z[rows & (lab == c)].mean(0) for c in set(lab[rows])], axis=0))
    M = np.array(means)
    M -= M.mean(0)
    k = len(keys) - 1 if k is None else min(k, len(keys) - 1)
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    return vt[: max(0, int((s[:k] > 1e-9 * max(s[0], 1e-300)).sum()))]


def remove_directions(Z: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``Z`` with its components along the rows of ``V`` (orthonormal) removed."""
    Z = np.asarray(Z)
    return Z - (Z @ V.T) @ V if len(V) else Z.copy()
