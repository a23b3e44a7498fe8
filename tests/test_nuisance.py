"""Corpus directions (emovox.evaluation.nuisance): fitted on training groups, removed from all."""

import numpy as np
import pytest

from emovox.evaluation.nuisance import group_directions, remove_directions


def make(rng, offsets, n=40):
    """Two emotions along axis 0; each corpus shifted by its own offset along axes 1-2, and
    one corpus with many more clips of one emotion (the class-balanced means must ignore it)."""
    X, y, g = [], [], []
    for ci, off in enumerate(offsets):
        for k, emo in enumerate(("calm", "angry")):
            m = n * (4 if (ci == 0 and k == 1) else 1)
            pts = rng.normal(0, 0.3, (m, 6))
            pts[:, 0] += 3.0 * k
            pts[:, 1:3] += off
            X.append(pts)
            y += [emo] * m
            g += [f"c{ci}"] * m
    return np.vstack(X), np.array(y, dtype=object), np.array(g, dtype=object)


def test_corpus_offsets_go_and_emotion_stays():
    rng = np.random.default_rng(0)
    X, y, g = make(rng, [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)])
    V = group_directions(X, g, y)
    assert V.shape == (2, 6)  # three corpora: at most two directions
    assert np.allclose(V @ V.T, np.eye(2), atol=1e-9)
    Z = remove_directions(X, V)
    corpus_means = np.array([Z[g == c].mean(0) for c in ("c0", "c1", "c2")])
    before = np.array([X[g == c].mean(0) for c in ("c0", "c1", "c2")])
    assert np.ptp(corpus_means[:, 1:3], axis=0).max() < 0.2 * np.ptp(before[:, 1:3], axis=0).max()
    gap = Z[y == "angry", 0].mean() - Z[y == "calm", 0].mean()
    assert gap > 2.5  # the emotion axis is kept (the imbalance did not leak into V)
    assert abs(V[:, 0]).max() < 0.1


def test_a_new_clip_is_projected_alone():
    rng = np.random.default_rng(1)
    X, y, g = make(rng, [(0.0, 0.0), (4.0, 1.0)])
    V = group_directions(X, g, y, k=5)
    assert len(V) == 1  # two corpora: one direction, whatever k asks
    one = remove_directions(X[:1], V)
    assert np.allclose(one, remove_directions(X, V)[:1])


def test_one_group_is_refused():
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match="two groups"):
        group_directions(X, ["a"] * 4, ["x", "y", "x", "y"])
