"""The fast model: its front end, distillation, the model folder, loading it (``"fast"``,
``--model``) and building it end to end on a tiny corpus and encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from conftest import write_ravdess_tree  # noqa: E402

import emovox  # noqa: E402
from emovox.audio import Preprocess  # noqa: E402
from emovox.audio.vad import silero_available  # noqa: E402
from emovox.deep.distill import (  # noqa: E402
    DistillConfig,
    class_weights,
    crop_or_repeat,
    distill,
    predict_logits,
)
from emovox.features.fast_mel import MIN_FRAMES, fast_log_mel  # noqa: E402
from emovox.inference import fast  # noqa: E402
from emovox.inference.build_fast import EmbeddingTargets, summarize  # noqa: E402

SR = 16_000
LABELS = ["neutral", "happy", "sad"]


def tone(k: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    y = 0.3 * np.sin(2 * np.pi * (220 + 330 * k) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def toy() -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    wavs = [tone(int(k), rng.uniform(0.6, 2.0), rng) for k in y]
    return [fast_log_mel(w) for w in wavs], y, wavs


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    mels, y, _ = toy
    cfg = DistillConfig(epochs=4, batch_size=16, threads=1, crop_frames=40)
    Z = 4.0 * np.eye(3)[y]
    run = tmp_path_factory.mktemp("distill")
    net = distill(mels, Z, y, LABELS, cfg, targets=np.eye(3, 6)[y].astype(np.float32), run_dir=run)
    return net, cfg, run


def test_front_end_shape_gain_invariance_and_bad_input() -> None:
    rng = np.random.default_rng(1)
    y = tone(1, 3.0, rng)
    S = fast_log_mel(y)
    assert S.shape == (64, 1 + (len(y) - 512) // 320) and S.dtype == np.float32
    assert S.max() == pytest.approx(1.0) and S.min() >= -1.0
    np.testing.assert_allclose(fast_log_mel(0.05 * y), S, atol=1e-4)  # gain cancels
    assert fast_log_mel(y[:800]).shape[1] == MIN_FRAMES  # short clips are repeated
    with pytest.raises(ValueError, match="empty"):
        fast_log_mel(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="mono"):
        fast_log_mel(np.zeros((2, 100), np.float32))


def test_front_end_matches_a_dense_power_mel() -> None:
    """The sparse filterbank over squared (real, imaginary) pairs is the plain recipe: Hann
    frames, power spectrum, dense Slaney filterbank, log10, 8 decades, scaled."""
    from emovox.features.spectral import mel_filterbank

    y = tone(2, 1.5, np.random.default_rng(3)) + 0.01
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), 512)[::320]
    power = np.abs(np.fft.rfft(frames * np.hanning(513)[:-1], axis=1)) ** 2
    log = np.log10(np.maximum(mel_filterbank(16_000, 512, 64).astype(np.float64) @ power.T, 1e-10))
    log = (np.maximum(log, log.max() - 8.0) - log.max()) / 4 + 1
    np.testing.assert_allclose(fast_log_mel(y), log, atol=2e-4)


def test_crops_repeats_and_class_weights() -> None:
    S = np.arange(20, dtype=np.float32).reshape(2, 10)
    np.testing.assert_array_equal(crop_or_repeat(S, 4, None), S[:, 3:7])
    rep = crop_or_repeat(S[:, :3], 7, None)
    np.testing.assert_array_equal(rep[:, 3:6], S[:, :3])
    w = class_weights(np.array([0, 0, 0, 1]), 2)
    assert w[3] == pytest.approx(3 * w[0]) and w.mean() == pytest.approx(1.0)


def test_distilled_student_learns_and_resumes(toy, trained) -> None:
    mels, y, _ = toy
    net, cfg, run = trained
    acc = (predict_logits(net, mels).argmax(1) == y).mean()
    assert acc > 0.9
    logs: list[str] = []
    targets = np.eye(3, 6)[y].astype(np.float32)
    again = distill(
        mels, 4.0 * np.eye(3)[y], y, LABELS, cfg, targets=targets, run_dir=run, log=logs.append
    )
    assert any("already trained" in m for m in logs)
    for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = DistillConfig(epochs=1, batch_size=16, threads=1, crop_frames=40)
    logs.clear()
    distill(mels, 4.0 * np.eye(3)[y], y, LABELS, other, run_dir=run, log=logs.append)
    assert any("starting afresh" in m for m in logs)


def test_distill_checks_shapes(toy) -> None:
    mels, y, _ = toy
    with pytest.raises(ValueError, match="teacher_logits"):
        distill(mels, np.zeros((3, 3)), y, LABELS, DistillConfig(epochs=1))


@pytest.fixture(scope="module")
def folder(trained, tmp_path_factory) -> Path:
    net = trained[0]
    out = tmp_path_factory.mktemp("fast") / "model"
    fast.write_fast_bundle(out, net, LABELS, 1.5, 0.5, Preprocess(), {"name": "toy-fast"})
    return out


def test_folder_loads_with_onnx_and_torch_alike(folder, toy) -> None:
    _, y, wavs = toy
    assert fast.is_fast_bundle(folder) and not fast.is_fast_bundle(folder.parent)
    cfg = json.loads((folder / "model.json").read_text())
    assert cfg["kind"] == "fast_cnn" and cfg["arch"]["embed_dim"] == 0
    P1 = fast.FastEngine(folder, "onnx").predict_proba(wavs[:8])
    P2 = fast.FastEngine(folder, "torch").predict_proba(wavs[:8])
    np.testing.assert_allclose(P1, P2, atol=1e-4)
    np.testing.assert_allclose(P1.sum(1), 1.0, atol=1e-5)
    assert (P1.argmax(1) == y[:8]).mean() >= 0.75
    with pytest.raises(ValueError, match="default model"):
        fast.FastEngine(folder, "onnx-int8")
    with pytest.raises(ValueError, match="unknown backend"):
        fast.FastEngine(folder, "gpu")


def test_load_predicts_files_with_the_energy_gate(folder, toy, tmp_path) -> None:
    _, y, wavs = toy
    rec = emovox.load(folder)
    assert rec.backend == "onnx" and rec.gate_kind == "energy" and rec.labels == tuple(LABELS)
    assert rec.gate.detector == "energy"
    # long recordings and live audio: segmented by the usual detector (Silero where installed)
    assert rec.vad_kind == "auto"
    assert rec.vad.name == ("silero" if silero_available() else "energy")
    path = tmp_path / "clip.wav"
    sf.write(path, np.concatenate([wavs[0]] * 2), SR)
    p = rec.predict(str(path))
    assert p.label == LABELS[y[0]] and p.error is None
    assert emovox.load(folder, vad="silero").gate_kind == "silero"
    assert emovox.load(folder, vad="energy").vad.name == "energy"


def test_fast_name_without_the_packaged_model_says_how_to_build(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(fast, "fast_bundle_path", lambda: tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="build-fast-model"):
        emovox.load("fast")


def test_packaged_fast_model_predicts() -> None:
    if not (fast.fast_bundle_path() / "model.json").is_file():
        pytest.skip("the packaged fast model is not built in this checkout")
    rec = emovox.load("fast")
    rng = np.random.default_rng(3)
    p = rec.predict(
        tone(2, 2.0, rng) + 0.05 * rng.standard_normal(2 * SR).astype(np.float32), sr=SR
    )
    assert p.label in rec.labels and abs(sum(p.probabilities.values()) - 1) < 1e-3
    assert rec.card["name"].startswith("emovox-fast")


def test_embedding_targets_are_whitened_on_training_rows() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12)) + 5
    head = {"mean": X.mean(0), "scale": X.std(0)}
    T = EmbeddingTargets(head, dims=4).fit(X).transform(X)
    assert T.shape == (300, 4)
    np.testing.assert_allclose(T.std(0, ddof=1), 1.0, atol=0.05)


def test_summaries_score_student_and_teacher() -> None:
    y = np.array(["a", "b", "a", "b", "a", "b"], dtype=object)
    corp = np.array(["x", "x", "x", "y", "y", "y"], dtype=object)
    done = {
        "test=x": {"test": [0, 1, 2], "labels": ["a", "b"], "student": ["a", "b", "b"],
                   "teacher": ["a", "b", "a"]},
        "test=y": {"test": [3, 4, 5], "labels": ["a", "b"], "student": ["b", "a", "a"],
                   "teacher": ["b", "a", "b"]},
    }  # fmt: skip
    lo = summarize("loco", done, y, corp, ["a", "b"])
    assert lo["teacher"]["mean_ua"] == pytest.approx(1.0)
    assert [h["corpus"] for h in lo["student"]["held_out"]] == ["x", "y"]
    assert lo["student"]["held_out"][0]["ua"] == pytest.approx(0.75)
    kf = summarize("speaker-kfold", done, y, corp, ["a", "b"])
    assert kf["teacher"]["ua"] == pytest.approx(1.0) and kf["student"]["ua"] < 1.0
    assert set(kf["student"]["per_corpus"]) == {"x", "y"}


def test_build_fast_model_end_to_end(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from emovox.cli import app
    from emovox.encoders import WhisperDims, WhisperEncoder, export_encoder
    from emovox.inference.build import build_default_model
    from emovox.inference.build_fast import build_fast_model

    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    roots = write_ravdess_tree(tmp_path)
    torch.manual_seed(0)
    enc = WhisperEncoder.from_dims(
        WhisperDims(n_mels=80, n_ctx=1500, n_state=32, n_head=2, n_layer=1)
    ).eval()
    enc_path = str(export_encoder(enc, tmp_path / "enc.safetensors"))
    build_default_model(tmp_path / "teacher", roots=[str(roots)], corpora=["ravdess"],
                        encoder=enc_path, k=2, holdout_speakers=[], progress=False)  # fmt: skip
    cfg = build_fast_model(
        tmp_path / "fast",
        roots=[str(roots)],
        corpora=["ravdess"],
        encoder=enc_path,
        views=["phone"],
        cfg=DistillConfig(epochs=2, batch_size=8, threads=1, crop_frames=40),
        k=2,
        teacher=tmp_path / "teacher",
        run_dir=tmp_path / "run",
        progress=False,
    )
    kf = cfg["card"]["evaluation"]["speaker-kfold"]
    assert kf["folds"] == 2 and 0.0 <= kf["student"]["ua"] <= 1.0 and "teacher" in kf
    assert (tmp_path / "run" / "speaker-kfold-folds.json").is_file()
    text = (tmp_path / "fast" / "card.md").read_text()
    assert "| all |" in text and "fast model" in text
    rec = emovox.load(tmp_path / "fast")
    assert rec.labels == tuple(cfg["labels"])
    # the CLI over the same API: other settings, so the kept folds are redone, and the network
    # is the one asked for; run again, the finished folds are read back
    args = [
        "build-fast-model", "--out", str(tmp_path / "fast2"), "--root", str(roots),
        "--corpus", "ravdess", "--encoder", enc_path, "--view", "phone", "--epochs", "2",
        "--k", "2", "--teacher", str(tmp_path / "teacher"), "--run-dir", str(tmp_path / "run"),
        "--threads", "1", "--widths", "8,16,32,32,32",
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "2 fold(s) of other settings, redone" in res.output
    arch = json.loads((tmp_path / "fast2" / "model.json").read_text())["arch"]
    assert arch["widths"] == [8, 16, 32, 32, 32]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "redone" not in again.output
    assert "teacher fitted" not in again.output and "already trained" in again.output
    bad_widths = CliRunner().invoke(app, ["build-fast-model", "--widths", "8,x"])
    assert bad_widths.exit_code == 2 and "--widths" in bad_widths.output
    bad = CliRunner().invoke(app, ["build-fast-model", "--out", str(tmp_path / "f3"), "--root",
                                   str(roots), "--corpus", "ravdess", "--teacher",
                                   str(tmp_path / "teacher")])  # fmt: skip
    assert bad.exit_code == 2 and "pass the encoder" in bad.output


def test_service_serves_a_fast_model_folder(folder, toy, tmp_path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    _, y, wavs = toy
    path = tmp_path / "clip.wav"
    sf.write(path, np.concatenate([wavs[1]] * 2), SR)
    with TestClient(create_app(folder, workers=1)) as c:
        assert c.get("/v1/model").json()["name"] == "toy-fast"
        r = c.post("/v1/predict", files={"file": ("clip.wav", path.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == LABELS[y[1]] and body["speech_gate"] == "energy"


def test_adapting_the_fast_model_says_it_cannot(folder, toy, tmp_path) -> None:
    from emovox.inference.adapt import MissingAdaptedHead, predict_adapted

    _, _, wavs = toy
    with pytest.raises(MissingAdaptedHead, match="the fast model has none"):
        predict_adapted(emovox.load(folder), [wavs[0]], "batch", sr=SR)
