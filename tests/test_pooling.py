"""One pooling for training and inference: the same clip gives the same per-clip vector through
``embed_waveform`` (training) and through a bundle's backends (inference)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emovox.audio import preprocess  # noqa: E402
from emovox.encoders import WhisperDims, WhisperEncoder  # noqa: E402
from emovox.encoders.mel import log_mel_spectrogram  # noqa: E402
from emovox.features.embeddings import embed_waveform, layer_stats  # noqa: E402
from emovox.features.pooling import pool_layers, pool_stats, time_stats  # noqa: E402
from emovox.inference.bundle import BundleConfig, write_bundle  # noqa: E402
from emovox.inference.engine import load_bundle  # noqa: E402

SR = 16_000
DIMS = {"n_mels": 80, "n_ctx": 1500, "n_state": 64, "n_head": 2, "n_layer": 2}


def _voice(seconds: float, f0: float = 150.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    y = y * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2) + 0.01 * rng.standard_normal(len(t))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def encoder_and_bundle(tmp_path_factory):
    """A tiny random Whisper encoder (weights exact in fp16, as a bundle stores them) and a
    bundle reading all its layers."""
    torch.manual_seed(0)
    enc = WhisperEncoder.from_dims(WhisperDims.from_dict(DIMS))
    with torch.no_grad():
        for p in enc.parameters():  # weights exact in fp16; the positional embedding stays
            p.copy_(p.half().float())
    enc.eval()
    n_feat = 3 * 2 * DIMS["n_state"]
    rng = np.random.default_rng(0)
    head = {
        "mean": np.zeros(n_feat),
        "scale": np.ones(n_feat),
        "weight": rng.normal(0, 0.05, (3, n_feat)),
        "bias": np.zeros(3),
    }
    cfg = BundleConfig(labels=["a", "b", "c"], layers=[0, 1, 2], dims=dict(DIMS))
    folder = write_bundle(tmp_path_factory.mktemp("parity") / "m", cfg, enc.state_dict(), head)
    return enc, folder


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_training_and_inference_pool_the_same_vector(encoder_and_bundle, backend):
    enc, folder = encoder_and_bundle
    rec = load_bundle(folder, backend=backend)
    y = _voice(1.7, 180)
    train = embed_waveform(y, enc).ravel()
    assert train.shape == (3 * 2 * 64,)
    np.testing.assert_allclose(rec.pooled(log_mel_spectrogram(y)), train, rtol=0, atol=1e-5)
    # the whole path, preprocessing included
    raw = _voice(2.3, 140, seed=1)
    expect = embed_waveform(preprocess(raw, rec.preprocess_cfg), enc).ravel()
    np.testing.assert_allclose(rec.features(raw), expect, rtol=0, atol=1e-5)


def test_pooling_of_tensors_and_arrays_is_one_function():
    rng = np.random.default_rng(1)
    hs = [rng.normal(i, 1 + i, size=(1, 37, 8)).astype(np.float32) for i in range(3)]
    tensors = [torch.from_numpy(h) for h in hs]
    got = layer_stats(tensors)
    assert got.shape == (3, 16) and got.dtype == np.float32
    np.testing.assert_array_equal(got, pool_layers([h[0] for h in hs]))
    np.testing.assert_array_equal(pool_stats([h[0] for h in hs]), got.ravel())
    mean, std = time_stats(tensors[1], ("mean", "std"), axis=1)
    np.testing.assert_allclose(std[0].numpy(), hs[1][0].std(0), rtol=1e-5)
    np.testing.assert_allclose(mean[0].numpy(), hs[1][0].mean(0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown pooling statistic"):
        pool_layers([hs[0][0]], ("max",))
