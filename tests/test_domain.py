"""The domain score (``out_of_domain``): the score itself, its threshold, the bundle tensors,
and the fields it adds to predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from emovox.inference.build import fit_domain_score
from emovox.inference.bundle import (
    BundleError,
    default_bundle_path,
    read_bundle,
    read_domain,
    write_bundle,
)
from emovox.inference.card import domain_card, render_card
from emovox.inference.domain import DomainScore, fit_domain
from emovox.inference.engine import load_bundle
from emovox.inference.prediction import Prediction
from emovox.inference.random_bundle import make_random_bundle
from emovox.inference.recognizer import Recognizer

SR = 16_000


def _gaussian(n: int, shift: float = 0.0, seed: int = 0, along: int = 0) -> np.ndarray:
    """Correlated 20-d data; ``shift`` moves it along latent direction ``along`` (0: the main
    one, 19: the least spread), in standard deviations of the main one."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).normal(size=(20, 20))
    spread = np.linspace(3.0, 0.3, 20)
    return (rng.normal(size=(n, 20)) * spread + shift * spread[0] * np.eye(20)[along]) @ mix


def _voice(seconds: float = 1.5, f0: float = 150.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    y = y * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize(("method", "along"), [("residual", 19), ("mahalanobis", 0)])
def test_score_is_low_for_training_like_data_and_high_for_shifted_data(method, along):
    dom = fit_domain(_gaussian(2000), k=10, method=method)
    dom = dom.with_threshold(dom.score(_gaussian(500, seed=1)), 0.95)
    same = dom.score(_gaussian(1000, seed=2))
    shifted = dom.score(_gaussian(1000, shift=6.0, seed=3, along=along))
    assert 0.8 < np.median(same) < 1.2  # about 1 in domain
    assert np.median(shifted) > 1.8 * np.median(same)
    assert 0.02 < dom.flag(same).mean() < 0.1  # the 95th percentile leaves about 5 % flagged
    assert dom.flag(shifted).mean() > 0.9


def test_residual_sees_what_the_subspace_misses():
    off = _gaussian(500, shift=6.0, seed=3, along=19)  # off the 10 main directions
    resid, maha = (
        fit_domain(_gaussian(2000), k=10),
        fit_domain(_gaussian(2000), k=10, method="mahalanobis"),
    )
    assert np.median(resid.score(off)) > 1.5 * np.median(maha.score(off))


def test_threshold_logic():
    dom = fit_domain(_gaussian(300), k=4)
    s = dom.score(_gaussian(50, seed=1))
    assert not dom.flag(s).any()  # no threshold: nothing flagged
    t = dom.with_threshold(np.array([1.0, 2.0, 3.0]), 0.5)
    assert t.threshold == 2.0
    assert t.flag(np.array([1.9, 2.0, 2.1])).tolist() == [False, False, True]
    with pytest.raises(ValueError, match="quantile"):
        dom.with_threshold(s, 1.0)
    with pytest.raises(ValueError, match="no in-domain"):
        dom.with_threshold(np.array([]))
    with pytest.raises(ValueError, match="columns"):
        dom.score(np.zeros((2, 7)))
    with pytest.raises(ValueError, match="do not fit"):
        DomainScore(np.zeros(3), np.zeros((2, 4)), np.ones(2), np.ones(1))
    with pytest.raises(ValueError, match="method"):
        DomainScore(np.zeros(4), np.zeros((2, 4)), np.ones(2), np.ones(1), method="knn")


def test_tensors_survive_safetensors_even_when_fortran_ordered(tmp_path):
    dom = fit_domain(_gaussian(300), k=5)
    dom = DomainScore(dom.mean, np.asfortranarray(dom.components), dom.scale, dom.residual, 1.5)
    save_file(dom.tensors(), str(tmp_path / "d.safetensors"))
    back = DomainScore.from_tensors(load_file(str(tmp_path / "d.safetensors")), 1.5)
    X = _gaussian(20, seed=4)
    np.testing.assert_allclose(back.score(X), dom.score(X), rtol=1e-5)
    with pytest.raises(ValueError, match="missing domain tensors"):
        DomainScore.from_tensors({"mean": dom.mean}, None)


def test_fit_domain_score_reads_the_heads_standardised_space():
    X = _gaussian(400) * 50 + 1000  # raw features far from standardised
    head = {"mean": X.mean(0), "scale": X.std(0)}
    dom = fit_domain_score(head, X[:300], X[300:], k=5)
    assert np.abs(dom.mean).max() < 0.5  # fitted on standardised features
    assert dom.threshold is not None and 0.8 < dom.threshold < 3
    assert "out_of_domain" in domain_card(dom)


def _with_domain(tmp_path, threshold: float | None):
    """The random bundle rewritten with a domain score (same encoder and head)."""
    src = make_random_bundle(tmp_path / "plain", labels=("neutral", "happy", "sad"), seed=3)
    cfg, enc, head = read_bundle(src)
    n_feat = head["weight"].shape[1]
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(n_feat, 4)))
    dom = DomainScore(np.zeros(n_feat), q.T, np.ones(4), np.ones(1), threshold)
    return src, write_bundle(tmp_path / "dom", cfg, enc, head, dom), dom


def test_bundle_round_trip_with_and_without_domain(tmp_path):
    plain, folder, dom = _with_domain(tmp_path, 0.25)
    cfg, _, _ = read_bundle(folder)
    assert cfg.domain_threshold == 0.25
    saved = json.loads((folder / "model.json").read_text())
    assert (saved["domain_threshold"], saved["domain_method"]) == (0.25, "residual")
    back = read_domain(folder, cfg)
    assert back is not None and back.threshold == 0.25
    np.testing.assert_allclose(back.components, dom.components, rtol=1e-6)
    pcfg, _, _ = read_bundle(plain)
    assert pcfg.domain_threshold is None and read_domain(plain, pcfg) is None
    assert load_bundle(plain, backend="numpy").domain is None


def test_plain_probabilities_unchanged_and_scores_match(tmp_path):
    plain, folder, dom = _with_domain(tmp_path, 0.25)
    a, b = load_bundle(plain, backend="numpy"), load_bundle(folder, backend="numpy")
    wavs = [_voice(f0=120), _voice(f0=220)]
    np.testing.assert_array_equal(a.predict_proba(wavs), b.predict_proba(wavs))
    P, S = b.predict_with_domain(wavs)
    np.testing.assert_array_equal(P, a.predict_proba(wavs))
    F = np.stack([b.features(w) for w in wavs])
    np.testing.assert_allclose(S, dom.score(F), rtol=1e-5)  # mean 0, scale 1 head
    assert a.predict_with_domain(wavs)[1] is None


def test_mismatched_domain_tensors_are_named(tmp_path):
    _, folder, _ = _with_domain(tmp_path, 0.25)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["domain.scale"] = np.ones(3, dtype=np.float32)
    save_file(tensors, str(folder / "model.safetensors"))
    cfg, _, _ = read_bundle(folder)
    with pytest.raises(BundleError, match="model.safetensors"):
        read_domain(folder, cfg)


@pytest.mark.parametrize(("threshold", "expected"), [(0.0, True), (1e9, False), (None, None)])
def test_predictions_carry_out_of_domain(tmp_path, threshold, expected):
    _, folder, _ = _with_domain(tmp_path, threshold)
    rec = Recognizer(load_bundle(folder, backend="numpy"), speech_gate=False)
    p = rec.predict(_voice(), sr=SR)
    assert p.out_of_domain is expected
    assert p.domain_score is not None and p.domain_score > 0
    d = p.to_dict()
    assert d["out_of_domain"] is expected and d["domain_score"] == round(p.domain_score, 3)


def test_json_fields_present_without_a_domain_score(tmp_path):
    plain = make_random_bundle(tmp_path / "plain")
    p = Recognizer(load_bundle(plain, backend="numpy"), speech_gate=False).predict(_voice(), sr=SR)
    d = p.to_dict()
    assert d["out_of_domain"] is None and d["domain_score"] is None
    assert "out_of_domain" not in Prediction(None, {}, False, error="x").to_dict()


def test_card_mentions_unfamiliar_audio():
    cfg = json.loads((default_bundle_path() / "model.json").read_text())
    cfg["card"].pop("out_of_domain", None)
    assert "Unfamiliar audio" not in render_card(cfg)
    cfg["card"]["out_of_domain"] = domain_card(
        DomainScore(np.zeros(3), np.eye(3)[:2], np.ones(2), np.ones(1), 1.3)
    )
    assert "## Unfamiliar audio (out_of_domain)" in render_card(cfg)


@pytest.mark.parametrize(("threshold", "marked"), [(0.0, True), (1e9, False)])
def test_predict_table_marks_unfamiliar_audio(tmp_path, threshold, marked):
    import soundfile as sf
    from typer.testing import CliRunner

    from emovox.cli import app

    _, folder, _ = _with_domain(tmp_path, threshold)
    clip = tmp_path / "a.wav"
    sf.write(clip, _voice(), SR)
    args = ["predict", str(clip), "--model", str(folder), "--backend", "numpy"]
    res = CliRunner().invoke(app, [*args, "--no-speech-gate"])
    assert res.exit_code == 0, res.output
    assert ("unfamiliar audio" in res.stdout) is marked
    row = json.loads(CliRunner().invoke(app, [*args, "--no-speech-gate", "--json"]).stdout)
    assert row["out_of_domain"] is marked


def test_validation_mask_keeps_the_holdout_speakers_out_of_training():
    from emovox.inference.build import validation_mask

    speakers = np.array([f"c:{i % 20}" for i in range(200)], dtype=object)
    is_val, val = validation_mask(speakers, ["c"] * 200, 0.15, 0, ["c:7"])
    assert "c:7" in val and len(val) == 3
    assert is_val.tolist() == [s in val for s in speakers]
