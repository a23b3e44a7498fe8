"""The HMM classifier (one Gaussian HMM per class over frame sequences) and its frame features."""

import numpy as np
import pytest
import soundfile as sf
from sklearn.base import clone

from emovox.features.frames import (
    F0_REF_HZ,
    FrameConfig,
    extract_frames,
    frame_feature_names,
    frame_features,
)
from emovox.models import FRAME_MODELS, GaussianMixtureClassifier, make_model
from emovox.models.hmm import HMMClassifier


def order_set(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Clips whose classes differ only in temporal order: "rise" is low-then-high frames,
    "fall" high-then-low, the same number of each (so the same frame distribution)."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        half = int(rng.integers(15, 30))
        low = rng.normal(-1.0, 0.6, size=(half, 2))
        high = rng.normal(1.0, 0.6, size=(half, 2))
        rise = i % 2 == 1
        X.append(np.vstack([low, high] if rise else [high, low]))
        y.append("rise" if rise else "fall")
    return X, np.array(y)


def test_hmm_separates_temporal_order_where_a_bag_of_frames_cannot():
    Xtr, ytr = order_set(40, seed=0)
    Xte, yte = order_set(100, seed=1)
    for topology in ("left-right", "ergodic"):
        hmm = HMMClassifier(n_states=2, topology=topology, random_state=0).fit(Xtr, ytr)
        assert hmm.score(Xte, yte) >= 0.95, topology

    # a per-class GMM over the frames, summing frame log-likelihoods per clip: order-blind
    frames, labels = np.concatenate(Xtr), np.repeat(ytr, [len(x) for x in Xtr])
    gmm = GaussianMixtureClassifier(n_components=2, random_state=0).fit(frames, labels)
    jll = np.array([[gm.score_samples(x).sum() for gm in gmm.estimators_] for x in Xte])
    bag_acc = np.mean(gmm.classes_[jll.argmax(axis=1)] == yte)
    assert bag_acc <= 0.7


def test_left_right_topology_keeps_its_zero_transitions():
    X, y = order_set(20, seed=2)
    hmm = HMMClassifier(n_states=3, topology="left-right", random_state=0).fit(X, y)
    for est in hmm.estimators_:
        assert np.allclose(np.tril(est.transmat_, -1), 0.0)  # never back
        assert np.allclose(np.triu(est.transmat_, 2), 0.0)  # never skips a state
        assert est.startprob_[0] == pytest.approx(1.0)


def test_same_seed_same_model_and_probabilities():
    X, y = order_set(20, seed=3)
    a = HMMClassifier(n_states=2, n_iter=5, random_state=7).fit(X, y)
    b = HMMClassifier(n_states=2, n_iter=5, random_state=7).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    for ea, eb in zip(a.estimators_, b.estimators_, strict=True):
        np.testing.assert_array_equal(ea.means_, eb.means_)
    proba = a.predict_proba(X)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(a.classes_) == ["fall", "rise"] and 1 <= a.n_iter_ <= 5


def test_sklearn_face_get_params_clone_and_make_model():
    hmm = HMMClassifier(n_states=3, n_iter=4, topology="ergodic", random_state=1)
    params = hmm.get_params()
    assert params["n_states"] == 3 and params["topology"] == "ergodic"
    assert params["random_state"] == 1 and params["covariance_type"] == "full"
    twin = clone(hmm)
    assert twin is not hmm and twin.get_params() == params
    assert twin.set_params(n_states=2).n_states == 2
    with pytest.raises(ValueError, match="Invalid parameter"):
        hmm.set_params(n_mix=2)

    assert "hmm" in FRAME_MODELS
    made = make_model("hmm", seed=5, n_states=2)
    assert isinstance(made, HMMClassifier)
    assert made.random_state == 5 and made.n_states == 2


def test_priors_shift_the_decision():
    X, y = order_set(20, seed=4)
    plain = HMMClassifier(n_states=2, random_state=0).fit(X, y)
    assert np.allclose(plain.priors_, [0.5, 0.5])
    tilted = HMMClassifier(n_states=2, priors=[1.0, 0.0], random_state=0).fit(X, y)
    assert set(tilted.predict(X)) == {"fall"}  # a zero prior: never "rise"


def test_frames_are_standardised_with_training_statistics_only():
    X, y = order_set(20, seed=5)
    hmm = HMMClassifier(n_states=2, random_state=0).fit(X, y)
    frames = np.concatenate(X)
    np.testing.assert_allclose(hmm.scaler_.mean_, frames.mean(axis=0))
    np.testing.assert_allclose(hmm.scaler_.scale_, frames.std(axis=0))
    before = hmm.scaler_.mean_.copy()
    hmm.predict([x + 100.0 for x in X])  # test frames far away: the scaler does not move
    np.testing.assert_array_equal(hmm.scaler_.mean_, before)
    assert HMMClassifier(standardize=False).fit(X, y).scaler_ is None


@pytest.mark.parametrize(
    ("X", "message"),
    [
        ([], "no clips given"),
        ([np.zeros((5, 2)), np.zeros((0, 2))], "clip 1: expected a \\(T, d\\) frame matrix"),
        ([np.zeros((5, 2)), np.zeros(5)], "clip 1: expected a \\(T, d\\) frame matrix"),
        ([np.zeros((5, 2)), np.zeros((5, 3))], "clip 1: sizes \\(3,\\)"),
        (np.zeros((4, 5, 2)), "got one array \\(4, 5, 2\\)"),
        ([np.zeros((5, 0)), np.zeros((5, 0))], "no feature columns"),
        ([np.zeros((5, 2)), np.full((5, 2), np.nan)], "clip 1: frames hold NaN"),
    ],
)
def test_bad_training_input_is_a_clear_error(X, message):
    with pytest.raises(ValueError, match=message):
        HMMClassifier().fit(X, ["a", "b", "a", "b"][: len(X)])


def test_bad_labels_parameters_and_predict_input_are_clear_errors():
    X, y = order_set(10, seed=6)
    with pytest.raises(ValueError, match="10 clips but 9 labels"):
        HMMClassifier().fit(X, y[:9])
    with pytest.raises(ValueError, match="at least two classes"):
        HMMClassifier().fit(X, ["a"] * 10)
    with pytest.raises(ValueError, match="n_states must be >= 1"):
        HMMClassifier(n_states=0).fit(X, y)
    with pytest.raises(ValueError, match="topology must be one of left-right, ergodic"):
        HMMClassifier(topology="circle").fit(X, y)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        HMMClassifier(covariance_type="banded").fit(X, y)
    hmm = HMMClassifier(n_states=2).fit(X, y)
    with pytest.raises(ValueError, match="frames have 3 features, but HMMClassifier was fitted"):
        hmm.predict([np.zeros((5, 3))])
    with pytest.raises(ValueError, match="clip 0: expected"):
        hmm.predict([np.zeros((0, 2))])


def test_frame_features_of_a_tone():
    sr, f0 = 16_000, 200.0
    t = np.arange(sr // 2) / sr
    y = (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    cfg = FrameConfig()
    x = frame_features(y, sr, cfg)
    names = frame_feature_names(cfg)
    assert x.shape == (1 + len(y) // cfg.hop, len(names)) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    mid = slice(10, -10)
    expected_st = 12 * np.log2(f0 / F0_REF_HZ)  # one octave up: 12 semitones
    np.testing.assert_allclose(x[mid, names.index("f0_st")], expected_st, atol=0.3)
    assert np.abs(x[mid, names.index("d_f0_st")]).max() < 0.1
    assert len(names) == 2 * cfg.n_mfcc + 4 and "voiced" not in names
    with pytest.raises(ValueError, match="n_mfcc"):
        FrameConfig(n_mfcc=0)


def test_extract_frames_caches_and_reports_bad_files(tmp_path):
    from conftest import emotional_tone

    good = tmp_path / "a.wav"
    sf.write(good, emotional_tone(1, 1, 1), 16_000)
    bad = tmp_path / "b.wav"
    bad.write_bytes(b"not audio")
    cache = tmp_path / "cache"
    first = extract_frames([good, bad], cache_dir=cache, n_jobs=1, progress=False)
    assert list(first.ok) == [True, False] and first.n_cached == 0
    assert first.X.dtype == object and first.X[0].shape[1] == len(first.names)
    assert first.errors[0][0] == str(bad)
    again = extract_frames([good], cache_dir=cache, n_jobs=1, progress=False)
    assert again.n_cached == 1
    np.testing.assert_array_equal(again.X[0], first.X[0])


def test_hmm_evaluates_on_a_corpus_and_refuses_other_features(ravdess_tree, tmp_path):
    from emovox.evaluation.experiment import ExperimentConfig, evaluate, load_dataset

    cfg = ExperimentConfig(
        model="hmm",
        roots=[str(ravdess_tree)],
        k=3,
        n_jobs=1,
        params={"n_states": 3, "n_iter": 5},
        out_dir=str(tmp_path / "runs"),
    )
    data = load_dataset(cfg, progress=False)
    assert data.X.dtype == object and len(data.X) == 48 and data.X[0].ndim == 2
    res = evaluate(data, cfg, write=False)
    assert res.metrics["leaky"] is False and res.metrics["model"] == "hmm"
    assert res.metrics["ua"] > 0.5  # four classes: chance is 0.25
    assert {"p_angry", "p_sad"} <= set(res.predictions[0])

    with pytest.raises(ValueError, match="reads its own frame features"):
        load_dataset(ExperimentConfig(**{**cfg.__dict__, "features": "mfcc"}), progress=False)
    with pytest.raises(ValueError, match="--tune has no grid for 'hmm'"):
        evaluate(data, ExperimentConfig(**{**cfg.__dict__, "tune": True}), write=False)
