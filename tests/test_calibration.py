"""Calibration: one temperature, and a temperature that rises with the domain score (fitted on
in-domain and held-out-corpus predictions, stored in the bundle, applied per input)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.inference.bundle import BundleError, read_bundle, write_bundle
from emovox.inference.calibration import (
    DomainTemperature,
    domain_temperature_summary,
    fit_domain_temperature,
    fit_temperature,
    softmax,
    uncertain_flags,
)
from emovox.inference.domain import DomainScore
from emovox.inference.engine import load_bundle
from emovox.inference.random_bundle import make_random_bundle
from emovox.inference.recognizer import Recognizer

SR = 16_000


def _predictions(n: int, true_t: float, score: float, seed: int, k: int = 5):
    """Logits whose labels are drawn from ``softmax(Z / true_t)``: calibrated at ``true_t``."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(0, 3.0, (n, k))
    P = softmax(Z / true_t)
    y = np.array([rng.choice(k, p=p) for p in P])
    s = score + rng.normal(0, 0.05, n)
    return Z, y, s


def test_fit_temperature_recovers_the_true_one():
    Z, y, _ = _predictions(4000, 2.0, 1.0, seed=0)
    assert fit_temperature(Z, y) == pytest.approx(2.0, rel=0.1)


def test_domain_temperature_rises_where_the_held_out_corpora_need_it():
    in_domain = [_predictions(3000, 1.0, 1.0, seed=1)]
    held_out = [_predictions(1500, 3.0, 2.0, seed=2), _predictions(800, 3.0, 2.0, seed=3)]
    dt = fit_domain_temperature(in_domain, held_out)
    assert dt.slope > 0
    assert dt(np.array([1.0]))[0] == pytest.approx(1.0, rel=0.15)
    assert dt(np.array([2.0]))[0] == pytest.approx(3.0, rel=0.15)
    # one temperature for both falls in between and is wrong for each
    Z = np.concatenate([in_domain[0][0], *[g[0] for g in held_out]])
    y = np.concatenate([in_domain[0][1], *[g[1] for g in held_out]])
    assert 1.15 < fit_temperature(Z, y) < 2.7


def test_domain_temperature_flags_more_held_out_answers_than_one_temperature():
    in_domain = _predictions(3000, 1.0, 1.0, seed=4)
    held_out = [_predictions(2000, 3.0, 2.0, seed=5)]
    dt = fit_domain_temperature([in_domain], held_out)
    T = fit_temperature(in_domain[0], in_domain[1])
    Zh, yh, sh = held_out[0]
    right, unc_one = uncertain_flags(Zh, yh, T, 0.5)
    _, unc_dt = uncertain_flags(Zh, yh, dt(sh), 0.5)
    assert unc_dt[~right].mean() > unc_one[~right].mean() + 0.2
    _, unc_in_one = uncertain_flags(in_domain[0], in_domain[1], T, 0.5)
    _, unc_in_dt = uncertain_flags(in_domain[0], in_domain[1], dt(in_domain[2]), 0.5)
    assert abs(unc_in_dt.mean() - unc_in_one.mean()) < 0.05  # in domain it changes little
    summary = domain_temperature_summary(dt, in_domain, held_out, 0.5)
    assert summary["held_out_clips"] == 2000
    assert summary["wrong_flagged_held_out"] == pytest.approx(unc_dt[~right].mean(), abs=1e-4)
    assert summary["share_uncertain_validation"] == pytest.approx(unc_in_dt.mean(), abs=1e-4)


def test_domain_temperature_checks_its_inputs():
    with pytest.raises(ValueError, match="both kinds"):
        fit_domain_temperature([_predictions(50, 1.0, 1.0, seed=6)], [])
    Z, y, s = _predictions(50, 1.0, 1.0, seed=7)
    with pytest.raises(ValueError, match="49 labels"):
        fit_domain_temperature([(Z, y[:-1], s)], [(Z, y, s)])
    with pytest.raises(ValueError, match="held_out_weight"):
        fit_domain_temperature([(Z, y, s)], [(Z, y, s)], held_out_weight=1.0)
    with pytest.raises(ValueError, match="low <= high"):
        DomainTemperature(0.0, 1.0, low=2.0, high=1.0)
    dt = DomainTemperature(0.0, 10.0)
    assert dt(np.array([-10.0, 10.0])).tolist() == [0.25, 8.0]  # clipped
    assert DomainTemperature.from_dict(dt.to_dict()) == dt


def _voice(seconds: float = 1.5, f0: float = 150.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def _bundle(tmp_path, domain_temperature: dict | None, with_domain: bool = True):
    src = make_random_bundle(tmp_path / "plain", labels=("neutral", "happy", "sad"), seed=3)
    cfg, enc, head = read_bundle(src)
    head["weight"] = head["weight"] * 40  # confident enough for the temperature to matter
    n_feat = head["weight"].shape[1]
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(n_feat, 4)))
    dom = DomainScore(np.zeros(n_feat), q.T, np.ones(4), np.ones(1), 1.0)
    cfg.domain_temperature = domain_temperature
    name = f"b{len(list(tmp_path.iterdir()))}"
    return write_bundle(tmp_path / name, cfg, enc, head, dom if with_domain else None)


def test_bundle_applies_each_inputs_own_temperature(tmp_path):
    one = load_bundle(_bundle(tmp_path, None), backend="numpy")
    wavs = [_voice(f0=120), _voice(f0=220)]
    F = np.stack([one.features(w) for w in wavs])
    s = one.domain_scores(F)
    # a temperature of exactly the bundle's at every score: the same probabilities
    same = {"intercept": float(np.log(one.config.temperature)), "slope": 0.0}
    a = load_bundle(_bundle(tmp_path, same), backend="numpy")
    np.testing.assert_allclose(a.head_proba(F), one.head_proba(F), rtol=1e-5)
    # a temperature rising with the score: each row divided by its own T
    rising = {"intercept": -1.0, "slope": 1.5}
    b = load_bundle(_bundle(tmp_path, rising), backend="numpy")
    assert json.loads((b.path / "model.json").read_text())["domain_temperature"] == rising
    Z = np.log(one.head_proba(F).astype(np.float64)) * one.config.temperature
    T = DomainTemperature(-1.0, 1.5)(s)
    np.testing.assert_allclose(b.head_proba(F), softmax(Z / T[:, None]), rtol=1e-4, atol=1e-6)
    flat = load_bundle(_bundle(tmp_path, {"intercept": 3.0, "slope": 0.0}), backend="numpy")
    p = Recognizer(flat, speech_gate=False).predict(wavs[0], sr=SR)
    p_one = Recognizer(one, speech_gate=False).predict(wavs[0], sr=SR)
    assert p.label == p_one.label  # T = 20, clipped to 8: the same answer, less sure
    assert max(p.probabilities.values()) < max(p_one.probabilities.values()) - 0.05


def test_a_domain_temperature_without_a_domain_score_is_refused(tmp_path):
    folder = _bundle(tmp_path, {"intercept": 0.0, "slope": 1.0}, with_domain=False)
    with pytest.raises(BundleError, match="domain_temperature"):
        load_bundle(folder, backend="numpy")
