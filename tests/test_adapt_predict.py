"""Adaptation for users (``predict(..., adapt="batch" | "recording")``, ``emovox predict
--adapt``, ``?adapt=recording``): the adapted head in the bundle, the standardisation that
removes a speaker's offset, the fallback when there is too little speech, and the outputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emovox.cli import app
from emovox.inference import loading
from emovox.inference.adapt import MIN_ITEMS, MissingAdaptedHead, standardize
from emovox.inference.bundle import read_adapted, read_bundle, write_bundle
from emovox.inference.engine import load_bundle
from emovox.inference.random_bundle import make_random_bundle
from emovox.inference.recognizer import Recognizer

SR = 16_000
LABELS = ("neutral", "happy", "sad", "angry")
runner = CliRunner()


def tone(freq: float, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def clip(emotion: int, offset: float) -> np.ndarray:
    """A clip whose feature 0 is ``offset + emotion`` (+1 happy, -1 sad): a tone at
    ``1000 + 100 * feature`` Hz (what :func:`frequency_features` reads back)."""
    return tone(1000 + 100 * (offset + emotion))


def frequency_features(n_feat: int):
    def features(y: np.ndarray, name: str = "<array>") -> np.ndarray:
        f = np.argmax(np.abs(np.fft.rfft(y))) * SR / len(y)
        v = np.zeros(n_feat, dtype=np.float32)
        v[0] = (f - 1000) / 100
        return v

    return features


def heads(n_feat: int) -> tuple[dict, dict]:
    """Plain and adapted heads: happy when feature 0 is high, sad when low."""
    w = np.zeros((len(LABELS), n_feat))
    w[1, 0], w[2, 0] = 4.0, -4.0
    b = np.array([-20.0, 0.0, 0.0, -20.0])
    plain = {"mean": np.zeros(n_feat), "scale": np.ones(n_feat), "weight": w, "bias": b}
    return plain, {k: v.copy() for k, v in plain.items()}


@pytest.fixture
def bundles(tmp_path):
    """``(with_head, without_head)`` bundle folders with the same plain head."""
    base = make_random_bundle(tmp_path / "random", LABELS)
    cfg, enc, head = read_bundle(base)
    plain, adapted = heads(head["weight"].shape[1])
    without = write_bundle(tmp_path / "plain", cfg, enc, plain)
    cfg.adapted_temperature = 1.0
    with_head = write_bundle(tmp_path / "adapted", cfg, enc, plain, adapted=adapted)
    return with_head, without


def recognizer_for(folder) -> Recognizer:
    engine = load_bundle(folder, backend="numpy")
    engine.features = frequency_features(engine.config.dims["n_state"] * 2 * 3)
    return Recognizer(engine, speech_gate=False, vad="energy")


def speaker(offset: float, n: int = 10) -> list[np.ndarray]:
    return [clip(+1 if i % 2 == 0 else -1, offset) for i in range(n)]


def truth(n: int = 10) -> list[str]:
    return ["happy" if i % 2 == 0 else "sad" for i in range(n)]


def test_standardize_removes_a_group_offset():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    assert np.allclose(standardize(X + 50.0), standardize(X), atol=1e-5)


def test_bundle_round_trip_with_and_without_the_adapted_head(bundles):
    with_head, without = bundles
    cfg, _, _ = read_bundle(with_head)
    got = read_adapted(with_head, cfg)
    assert got is not None and cfg.adapted_temperature == 1.0
    assert np.array_equal(got["weight"], heads(got["weight"].shape[1])[1]["weight"])
    cfg0, _, _ = read_bundle(without)
    assert read_adapted(without, cfg0) is None and cfg0.adapted_temperature is None


@pytest.mark.parametrize("offset", [5.0, -5.0])
def test_batch_adaptation_removes_a_speakers_offset(bundles, offset):
    rec = recognizer_for(bundles[0])
    wavs = speaker(offset)
    plain = rec.predict(wavs, sr=SR)
    adapted = rec.predict(wavs, sr=SR, adapt="batch")
    assert [p.label for p in adapted] == truth()
    assert all(p.adapted and p.adapt_note is None for p in adapted)
    assert len({p.label for p in plain}) == 1  # the offset wins: one label for every clip
    assert not any(p.adapted for p in plain)


def test_plain_predictions_are_unchanged_by_the_adapted_head(bundles):
    wavs = speaker(0.3, n=4)
    a = [p.probabilities for p in recognizer_for(bundles[0]).predict(wavs, sr=SR)]
    b = [p.probabilities for p in recognizer_for(bundles[1]).predict(wavs, sr=SR)]
    assert a == b


def test_too_little_speech_falls_back_to_the_plain_model(bundles):
    rec = recognizer_for(bundles[0])
    wavs = speaker(5.0, n=MIN_ITEMS - 1)
    plain = rec.predict(wavs, sr=SR)
    got = rec.predict(wavs, sr=SR, adapt="batch")
    assert [p.probabilities for p in got] == [p.probabilities for p in plain]
    assert not any(p.adapted for p in got)
    assert (
        "too little speech" in got[0].adapt_note and f"{MIN_ITEMS - 1} clips" in got[0].adapt_note
    )
    d = got[0].to_dict()
    assert d["adapted"] is False and "too little speech" in d["adapt_note"]


def test_json_fields(bundles):
    rec = recognizer_for(bundles[0])
    d = rec.predict(speaker(5.0), sr=SR, adapt="batch")[0].to_dict()
    assert d["adapted"] is True and "adapt_note" not in d
    assert rec.predict(tone(1000), sr=SR).to_dict()["adapted"] is False


def test_a_bundle_without_the_head_names_it(bundles):
    rec = recognizer_for(bundles[1])
    with pytest.raises(MissingAdaptedHead, match="adapted_head"):
        rec.predict(speaker(5.0), sr=SR, adapt="batch")
    with pytest.raises(ValueError, match="adapt must be"):
        recognizer_for(bundles[0]).predict(speaker(5.0), sr=SR, adapt="speaker")


def test_recording_adaptation_relabels_segments(bundles):
    rec = recognizer_for(bundles[0])
    gap = np.zeros(SR, dtype=np.float32)
    parts = []
    for i in range(12):
        parts += [clip(+1 if i % 2 == 0 else -1, 5.0), gap]
    long = np.concatenate(parts)
    plain = rec.predict(long, sr=SR)
    got = rec.predict(long, sr=SR, adapt="recording")
    assert plain.segments is not None and len(plain.segments) >= MIN_ITEMS
    assert {s["label"] for s in plain.segments} == {"happy"}
    assert got.adapted and {s["label"] for s in got.segments} == {"happy", "sad"}
    assert math.isclose(sum(got.probabilities.values()), 1.0, abs_tol=1e-3)
    short = rec.predict(tone(1000), sr=SR, adapt="recording")
    assert not short.adapted and "not a long recording" in short.adapt_note


@pytest.fixture
def cli_model(bundles, monkeypatch):
    def fake_load(path, backend):
        engine = load_bundle(bundles[0] if path is None else path, backend="numpy")
        engine.features = frequency_features(engine.config.dims["n_state"] * 2 * 3)
        return engine

    monkeypatch.setattr(loading, "load_engine", fake_load)
    return bundles


def write_clips(folder, wavs) -> list[str]:
    folder.mkdir()
    out = []
    for i, w in enumerate(wavs):
        sf.write(folder / f"c{i:02d}.wav", w, SR)
        out.append(str(folder / f"c{i:02d}.wav"))
    return out


def test_cli_adapt_batch_json_table_and_exit_codes(cli_model, tmp_path):
    files = write_clips(tmp_path / "spk", speaker(5.0))
    res = runner.invoke(app, ["predict", *files, "--json", "--adapt", "batch", "--no-speech-gate"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [r["label"] for r in rows] == truth() and all(r["adapted"] for r in rows)
    res = runner.invoke(app, ["predict", *files[:3], "--adapt", "batch", "--no-speech-gate"])
    assert res.exit_code == 0 and "adapted: 0 of 3" in res.stdout
    assert "too little speech" in res.stdout
    res = runner.invoke(app, ["predict", *files, "--adapt", "bogus"])
    assert res.exit_code == 2 and "--adapt must be" in res.output
    res = runner.invoke(app, ["predict", *files, "--adapt", "batch", "--model", str(cli_model[1])])
    assert res.exit_code == 2 and "adapted_head" in res.output
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    res = runner.invoke(app, ["predict", *files, str(bad), "--json", "--adapt", "batch"])
    assert res.exit_code == 3  # some failed: the usual partial-failure code


def test_service_adapt_recording_field(cli_model):
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    engine = load_bundle(cli_model[0], backend="numpy")
    engine.features = frequency_features(engine.config.dims["n_state"] * 2 * 3)
    with TestClient(create_app(recognizer=engine, workers=1, speech_gate=False)) as c:
        buf = tone(1000)
        import io

        b = io.BytesIO()
        sf.write(b, buf, SR, format="WAV")
        r = c.post("/v1/predict?adapt=recording", content=b.getvalue())
        assert r.status_code == 200, r.text
        assert r.json()["adapted"] is False and "not a long recording" in r.json()["adapt_note"]
        r = c.post("/v1/predict", content=b.getvalue())
        assert r.json()["adapted"] is False and "adapt_note" not in r.json()
        r = c.post("/v1/predict?adapt=batch", content=b.getvalue())
        assert r.status_code == 400 and "adapt must be" in r.text


def test_shipped_bundle_has_the_adapted_head_and_learnt_from_seven_corpora():
    from emovox.inference.bundle import default_bundle_path

    folder = default_bundle_path()
    card = json.loads((folder / "card.json").read_text())
    assert len(card["training_data"]) == 7 and card["generalization"]["run"] == "loco-c0.001"
    assert card["evaluation"]["paper_corpora"]["ua"] >= 0.725  # issue 17's floor on the four
    cfg, _, head = read_bundle(folder)
    adapted = read_adapted(folder, cfg)
    assert adapted is not None and adapted["weight"].shape == head["weight"].shape
    assert cfg.adapted_temperature is not None and cfg.adapted_temperature > 0


def test_fit_adapted_head_learns_on_per_corpus_standardised_embeddings():
    from emovox.inference.build import fit_adapted_head, logits

    rng = np.random.default_rng(0)
    n = 600  # three labels: the head is multinomial
    y = np.array(["happy", "sad", "neutral"] * (n // 3), dtype=object)
    corpora = ["a"] * (n // 2) + ["b"] * (n // 2)
    X = rng.normal(size=(n, 4))
    X[:, 0] += np.select([y == "happy", y == "sad"], [1.5, -1.5], 0.0)
    X[: n // 2, 0] += 8.0  # corpus a sits far along the emotion direction
    is_val = np.arange(n) % 5 == 0
    labels = ["happy", "sad", "neutral"]
    head, T = fit_adapted_head(X, y, corpora, is_val, labels, C=1.0)
    assert set(head) == {"mean", "scale", "weight", "bias"} and 0.1 < T < 10
    Xb = X[n // 2 :]  # corpus b alone, standardised over itself as at use time
    pred = np.array(labels)[logits(head, standardize(Xb)).argmax(1)]
    assert (pred == y[n // 2 :]).mean() > 0.6  # chance: 1/3


def test_card_describes_the_adapted_head_only_when_the_bundle_has_it():
    import json

    from emovox.inference.bundle import default_bundle_path
    from emovox.inference.card import render_card

    cfg = json.loads((default_bundle_path() / "model.json").read_text())
    assert cfg.get("adapted_temperature") is not None  # the shipped bundle has the head
    text = render_card(cfg)
    assert "## Adaptation (`--adapt batch|recording`)" in text
    assert f"at least {MIN_ITEMS} clips" in text
    cfg.pop("adapted_temperature")
    assert "Adaptation" not in render_card(cfg)


def test_shipped_card_is_the_rendered_card():
    import json

    from emovox.inference.bundle import default_bundle_path
    from emovox.inference.card import render_card

    folder = default_bundle_path()
    cfg = json.loads((folder / "model.json").read_text())
    assert (folder / "card.md").read_text() == render_card(cfg)
