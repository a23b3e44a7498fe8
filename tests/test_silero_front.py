"""Silero VAD with its convolutional front end in numpy (emovox.audio.silero_front): the same
probabilities as the whole graph, state carried across calls, and the cut kept in the cache."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from emovox.audio import silero_front
from emovox.audio.silero_front import Conv, load_split, periodic_dft_basis
from emovox.audio.speech_gate import frames_of
from emovox.audio.vad import SileroVAD, silero_available, silero_model_path

needs_silero = pytest.mark.skipif(not silero_available(), reason="silero-vad not installed")


def test_conv_as_one_matrix_product_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7, 4)).astype(np.float32)  # (n, length, channels)
    for stride in (1, 2):
        w = rng.standard_normal((6, 4, 3)).astype(np.float32)
        b = rng.standard_normal(6).astype(np.float32)
        want = torch.relu(
            torch.nn.functional.conv1d(
                torch.from_numpy(x.transpose(0, 2, 1).copy()), torch.from_numpy(w),
                torch.from_numpy(b), stride=stride, padding=1,
            )
        ).numpy().transpose(0, 2, 1)  # fmt: skip
        got = Conv.from_torch(w, b, stride)(x)
        assert got.shape == want.shape == (5, 4 if stride == 2 else 7, 6)
        np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="kernel 3"):
        Conv.from_torch(np.zeros((2, 2, 5), np.float32), np.zeros(2, np.float32), 1)


def test_dft_basis_rows_are_the_windowed_transform() -> None:
    window = np.hanning(9)[:-1]
    basis = periodic_dft_basis(window)
    x = np.random.default_rng(1).standard_normal(8)
    spec = np.fft.rfft(x * window)
    np.testing.assert_allclose(basis[:5] @ x, spec.real, atol=1e-12)
    np.testing.assert_allclose(basis[5:] @ x, spec.imag, atol=1e-12)


@pytest.fixture
def no_onnx(monkeypatch):
    """Make ``import onnx`` fail, as on an installation without it."""
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("blocked")
        return real_import(name, *args, **kwargs)

    return lambda: monkeypatch.setattr(builtins, "__import__", blocked)


@pytest.fixture(scope="module")
def speech_frames() -> np.ndarray:
    from emovox.inference.demo import join_clips, load_clips

    y, _ = join_clips(load_clips()[:3])
    noise = 0.05 * np.random.default_rng(2).standard_normal(8000).astype(np.float32)
    return frames_of(np.concatenate([y, noise, np.zeros(3000, np.float32)]))


@needs_silero
def test_split_gives_the_whole_graphs_probabilities(speech_frames) -> None:
    whole, split = SileroVAD(split=False), SileroVAD()
    if not split.split:
        pytest.skip("the onnx package is not installed: no split")
    p = split(speech_frames)
    np.testing.assert_allclose(p, whole(speech_frames), atol=2e-5)
    assert p.max() > 0.9 and p.min() < 0.1
    # state carries across calls and blocks as in the whole graph
    small = SileroVAD(max_frames=5)
    parts = np.concatenate([small(speech_frames[i : i + 11]) for i in range(0, len(p), 11)])
    np.testing.assert_allclose(parts, p, atol=2e-5)


@needs_silero
def test_the_cut_is_cached_and_read_back_without_onnx(tmp_path, monkeypatch, no_onnx) -> None:
    pytest.importorskip("onnx")
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path))
    path = str(silero_model_path())
    load_split.cache_clear()
    try:
        first = load_split(path)
        assert first is not None
        stored = sorted(p.suffix for p in (tmp_path / "silero").iterdir())
        assert stored == [".onnx", ".safetensors"]
        load_split.cache_clear()
        no_onnx()
        again = load_split(path)
        assert again is not None and again.tail == first.tail
        rows = np.random.default_rng(3).standard_normal((4, 576)).astype(np.float32)
        np.testing.assert_array_equal(again.front(rows), first.front(rows))
        # a damaged cache entry is cut again (onnx blocked here: no split, not an error)
        (tmp_path / "silero" / next((tmp_path / "silero").glob("*.safetensors")).name).write_bytes(
            b"broken"
        )
        load_split.cache_clear()
        assert load_split(path) is None
    finally:
        load_split.cache_clear()


def test_without_onnx_there_is_no_split(tmp_path, no_onnx) -> None:
    no_onnx()
    assert silero_front.split_silero(tmp_path / "missing.onnx") is None
