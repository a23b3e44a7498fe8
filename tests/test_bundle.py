"""Bundles (frozen encoder + calibrated head), the numpy runtime, and encoder embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from emovox.encoders import (  # noqa: E402
    WhisperDims,
    WhisperEncoder,
    export_encoder,
    runtime,  # noqa: E402
)
from emovox.features.embeddings import EmbeddingConfig, extract_embeddings  # noqa: E402
from emovox.features.pooling import merge_chunk_stats, pool_stats  # noqa: E402
from emovox.inference.bundle import BundleError  # noqa: E402
from emovox.inference.calibration import fit_temperature, softmax  # noqa: E402
from emovox.inference.engine import load_bundle  # noqa: E402
from emovox.inference.random_bundle import make_random_bundle  # noqa: E402

SR = 16_000


def _voice(seconds: float, f0: float = 150.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    y = y * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2) + 0.01 * rng.standard_normal(len(t))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def _small_encoder(seed: int = 0) -> WhisperEncoder:
    torch.manual_seed(seed)
    enc = WhisperEncoder.from_dims(
        WhisperDims(n_mels=80, n_ctx=1500, n_state=64, n_head=2, n_layer=2)
    )
    return enc.eval()


def test_numpy_runtime_matches_torch_encoder():
    enc = _small_encoder()
    from emovox.encoders import log_mel_spectrogram

    mel = log_mel_spectrogram(_voice(1.3))
    with torch.inference_mode():
        ref = enc(torch.from_numpy(mel)[None], return_layers=True)
    wt = {k: v.numpy() for k, v in enc.state_dict().items()}
    got = runtime.encoder_layers(mel, wt, n_head=2)
    assert len(got) == len(ref) == 3
    for r, g in zip(ref, got, strict=True):
        assert g.shape == tuple(r.shape[1:])
        np.testing.assert_allclose(g, r[0].numpy(), atol=1e-4)
    # running fewer blocks gives the un-normed block output
    part = runtime.encoder_layers(mel, wt, n_head=2, n_blocks=1)
    with torch.inference_mode():
        ref1 = enc(torch.from_numpy(mel)[None], return_layers=True, n_blocks=1)
    np.testing.assert_allclose(part[-1], ref1[-1][0].numpy(), atol=1e-4)


def test_merge_chunk_stats_is_exact():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 4)), rng.normal(2.0, 3.0, size=(11, 4))
    whole = pool_stats([np.concatenate([a, b])], ["mean", "std"])
    merged = merge_chunk_stats(
        [pool_stats([a], ["mean", "std"]), pool_stats([b], ["mean", "std"])],
        [30, 11],
        1,
        ["mean", "std"],
    )
    np.testing.assert_allclose(merged, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch", "onnx"])
def test_backends_agree(tmp_path, backend):
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    folder = make_random_bundle(tmp_path / "m", labels=("neutral", "happy", "sad"), seed=3)
    ref = load_bundle(folder, backend="torch")
    rec = load_bundle(folder, backend=backend)
    assert rec.backend == backend and rec.labels == ("neutral", "happy", "sad")
    wavs = [_voice(1.0, 120), _voice(2.5, 220, seed=1)]
    p, q = rec.predict_proba(wavs), ref.predict_proba(wavs)
    assert p.shape == (2, 3)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert np.abs(p - q).max() < 1e-4
    assert not np.allclose(p[0], p[1])  # the inputs differ, so must the outputs


def test_torch_backend_moves_between_devices(tmp_path):
    folder = make_random_bundle(tmp_path / "m")
    rec = load_bundle(folder, backend="torch")
    ref = load_bundle(folder, backend="numpy")
    wav = [_voice(1.2)]
    before = rec.predict_proba(wav)
    assert rec.to("cpu") is rec and rec.predict_proba(wav).tolist() == before.tolist()
    assert np.abs(before - ref.predict_proba(wav)).max() < 1e-4
    with pytest.raises(ValueError, match="not a torch device"):
        rec.to("no-such-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            rec.to("cuda")
    with pytest.raises(ValueError, match="CPU only"):
        ref.to("cuda")


def test_long_input_is_chunked(tmp_path):
    rec = load_bundle(make_random_bundle(tmp_path / "m"), backend="numpy")
    long = np.tile(_voice(2.0), 17)  # 34 s: two encoder chunks
    p = rec.predict_proba([long])
    assert p.shape == (1, 4) and np.isfinite(p).all()


def test_bad_bundles_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an emovox model folder"):
        load_bundle(tmp_path)
    folder = make_random_bundle(tmp_path / "m")
    cfg = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps(cfg | {"format": "something-else"}))
    with pytest.raises(BundleError, match="not an emovox-bundle"):
        load_bundle(folder)
    (folder / "model.json").write_text(json.dumps(cfg))
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(BundleError, match="model.safetensors"):
        load_bundle(folder)


def test_temperature_scaling_recovers_the_true_temperature():
    rng = np.random.default_rng(0)
    Z = rng.normal(0, 3, size=(4000, 5))
    P = softmax(Z / 2.0)  # the true probabilities use temperature 2
    y = np.array([rng.choice(5, p=p) for p in P])
    assert fit_temperature(Z, y) == pytest.approx(2.0, rel=0.1)


def test_export_onnx_writes_a_runnable_graph(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from emovox.encoders import log_mel_spectrogram
    from emovox.inference.export import export_onnx

    folder = make_random_bundle(tmp_path / "m")
    path = export_onnx(folder, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    mel = log_mel_spectrogram(_voice(1.7))[None]
    (pooled,) = sess.run(None, {"mel": mel})
    expect = load_bundle(folder, backend="numpy").pooled(mel[0])
    np.testing.assert_allclose(pooled[0], expect, atol=1e-4)


def test_embeddings_are_cached_and_failures_listed(tmp_path):
    enc_path = export_encoder(_small_encoder(), tmp_path / "enc.safetensors")
    paths = []
    for i, f0 in enumerate((110, 180, 260)):
        p = tmp_path / f"clip{i}.wav"
        sf.write(p, _voice(1.2, f0, seed=i), SR)
        paths.append(str(p))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really audio")
    cfg = EmbeddingConfig(str(enc_path))
    res = extract_embeddings([*paths, str(bad)], cfg, cache_dir=tmp_path / "cache", progress=False)
    assert res.X.shape == (3, 3 * 2 * 64)  # 3 layers (stem + 2 blocks) x mean/std x 64
    assert res.ok.tolist() == [True, True, True, False]
    assert res.errors[0][0] == str(bad) and res.errors[0][1]
    assert len(res.names) == res.X.shape[1]
    again = extract_embeddings(paths, cfg, cache_dir=tmp_path / "cache", progress=False)
    assert again.n_cached == 3
    np.testing.assert_allclose(again.X, res.X)


def test_prediction_runs_without_torch(tmp_path):
    """A plain `pip install emovox` has no torch: the numpy backend must do everything."""
    import subprocess
    import sys

    folder = make_random_bundle(tmp_path / "m")
    wav = tmp_path / "clip.wav"
    sf.write(wav, _voice(1.5), SR)
    code = (
        "import sys, json, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'onnxruntime'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import emovox\n"
        "p = emovox.load(sys.argv[1])\n"
        "r = p.predict(sys.argv[2])\n"
        "print(json.dumps([p.backend, r.label]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(wav)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    backend, label = json.loads(out.stdout.strip().splitlines()[-1])
    assert backend == "numpy" and label in ("neutral", "happy", "sad", "angry")
