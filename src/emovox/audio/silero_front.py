"""Silero VAD's convolutional front end in numpy, so onnxruntime runs only its recurrent tail.

Silero's sequence model scores each 32 ms frame with an STFT (a 256-tap convolution), four
small 1-D convolutions, an LSTM across frames and a sigmoid. onnxruntime runs those
convolutions one frame at a time (3-4 positions each), which is most of the model's cost; here
the STFT is a real FFT (the basis is checked to be a periodic-Hann DFT) and each convolution
one matrix product over every frame of a block. The LSTM and output layer stay in the original
graph (cut out with the ``onnx`` package). Probabilities agree with the whole graph's within
about 1e-6 (the tests compare the two on speech).

>>> split = load_split(path)            # None when onnx is missing or the graph is unexpected
>>> feats = split.front(block)          # (n, 576) frames with their context → (n, 128, 1)

Cutting the graph needs ``onnx`` (over a second to import), so :func:`load_split` keeps the cut
in the cache folder (``$EMOVOX_CACHE/silero``, keyed by the model file's bytes): later
processes read it back without ``onnx``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft

#: The tensor where the numpy front end hands over to the graph (after the 4th convolution).
HANDOVER = "/Relu_3_output_0"
N_FFT = 256
HOP = 128
PAD = 64  # reflect padding at the right of each (context + frame) row
#: Part of the cache key: bump when the cut or the stored tensors change.
CUT_VERSION = 1


@dataclass(frozen=True)
class Conv:
    """A 1-D convolution (kernel 3, padding 1) as one matrix product, then ReLU."""

    weight: np.ndarray  # (3 * c_in, c_out): rows ordered tap-major
    bias: np.ndarray
    stride: int

    @classmethod
    def from_torch(cls, w: np.ndarray, b: np.ndarray, stride: int) -> Conv:
        c_out, c_in, k = w.shape
        if k != 3:
            raise ValueError(f"expected kernel 3, got {k}")
        flat = np.ascontiguousarray(w.transpose(2, 1, 0).reshape(k * c_in, c_out), np.float32)
        return cls(flat, np.asarray(b, np.float32), stride)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``(n, length, c_in)`` channels-last → ``(n, out_length, c_out)``."""
        n, length, c_in = x.shape
        xp = np.zeros((n, length + 2, c_in), np.float32)
        xp[:, 1:-1] = x
        out = (length - 1) // self.stride + 1
        span = self.stride * (out - 1) + 1
        cols = np.concatenate([xp[:, k : k + span : self.stride] for k in range(3)], axis=2)
        y = cols.reshape(n * out, 3 * c_in) @ self.weight
        y += self.bias
        np.maximum(y, 0.0, out=y)
        return y.reshape(n, out, -1)


@dataclass(frozen=True)
class SileroSplit:
    """The numpy front (:meth:`front`) and the serialized tail graph (``tail``: inputs
    ``HANDOVER``, ``h``, ``c``; outputs ``speech_probs``, ``hn``, ``cn``)."""

    window: np.ndarray  # periodic Hann, N_FFT
    convs: tuple[Conv, ...]
    tail: bytes

    def front(self, rows: np.ndarray) -> np.ndarray:
        """``(n, 576)`` rows (64 samples of context + the 512-sample frame) → ``(n, 128, 1)``,
        the graph's tensor at :data:`HANDOVER`."""
        padded = np.pad(rows, ((0, 0), (0, PAD)), mode="reflect")
        count = (padded.shape[1] - N_FFT) // HOP + 1
        frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=1)[:, ::HOP][
            :, :count
        ]
        x = np.abs(scipy.fft.rfft(frames * self.window, axis=-1, workers=1)).astype(np.float32)
        for conv in self.convs:
            x = conv(x)
        return np.ascontiguousarray(x.transpose(0, 2, 1))


def periodic_dft_basis(window: np.ndarray) -> np.ndarray:
    """``(2 * bins, n)``: the rows giving the real, then the imaginary, parts of the windowed
    DFT (``exp(-i...)``), as Silero stores them."""
    n = len(window)
    k = np.arange(n // 2 + 1)[:, None]
    angle = 2 * np.pi * k * np.arange(n) / n
    return np.concatenate([window * np.cos(angle), -window * np.sin(angle)])


def split_silero(path: str | Path) -> SileroSplit | None:
    """Cut Silero's ONNX sequence model at :data:`HANDOVER`; None when the ``onnx`` package is
    missing or the graph is not the one this front end reproduces (the caller then runs the
    whole graph)."""
    try:
        import onnx
        from onnx import numpy_helper
        from onnx.utils import Extractor
    except ImportError:
        return None
    model = onnx.load(str(path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    names = {out for node in model.graph.node for out in node.output}
    needed = ["stft.forward_basis_buffer"] + [f"encoder.{i}.{p}" for i in range(4)
                                              for p in ("weight", "bias")]  # fmt: skip
    if HANDOVER not in names or any(n not in weights for n in needed):
        return None
    basis = weights["stft.forward_basis_buffer"]
    if basis.shape != (N_FFT + 2, 1, N_FFT):
        return None
    n = np.arange(N_FFT)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)
    if np.abs(basis[:, 0, :] - periodic_dft_basis(window)).max() > 1e-5:
        return None
    strides = []
    for i in range(4):
        node = next((d for d in model.graph.node if f"encoder.{i}.weight" in d.input), None)
        attrs = {} if node is None else {a.name: list(a.ints) for a in node.attribute}
        if node is None or node.op_type != "Conv" or attrs.get("pads") != [1, 1]:
            return None
        strides.append(attrs.get("strides", [1])[0])
    convs = tuple(
        Conv.from_torch(weights[f"encoder.{i}.weight"], weights[f"encoder.{i}.bias"], stride)
        for i, stride in enumerate(strides)
    )
    model = onnx.shape_inference.infer_shapes(model)  # the cut needs the tensors' types
    tail = Extractor(model).extract_model([HANDOVER, "h", "c"], ["speech_probs", "hn", "cn"])
    return SileroSplit(window, convs, tail.SerializeToString())


def _save(split: SileroSplit, stem: Path) -> None:
    from safetensors.numpy import save

    from emovox.io import atomic_write_bytes

    tensors = {"window": split.window}
    for i, conv in enumerate(split.convs):
        tensors |= {f"conv{i}.weight": conv.weight, f"conv{i}.bias": conv.bias,
                    f"conv{i}.stride": np.array([conv.stride], np.int64)}  # fmt: skip
    atomic_write_bytes(stem.with_suffix(".onnx"), split.tail)
    atomic_write_bytes(stem.with_suffix(".safetensors"), save(tensors))


def _load(stem: Path) -> SileroSplit | None:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        t = load_file(str(stem.with_suffix(".safetensors")))
        tail = stem.with_suffix(".onnx").read_bytes()
        convs = tuple(
            Conv(t[f"conv{i}.weight"], t[f"conv{i}.bias"], int(t[f"conv{i}.stride"][0]))
            for i in range(4)
        )
    except (OSError, KeyError, ValueError, SafetensorError):  # absent, of an older run, damaged
        return None
    return SileroSplit(t["window"], convs, tail)


@functools.lru_cache(maxsize=4)
def load_split(path: str | Path) -> SileroSplit | None:
    """:func:`split_silero`, kept in (and read back from) the cache folder; None as there."""
    from emovox.io import cache_dir

    digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]
    stem = cache_dir() / "silero" / f"{digest}-v{CUT_VERSION}"
    split = _load(stem)
    if split is None:
        split = split_silero(path)
        if split is not None:
            try:
                _save(split, stem)
            except OSError:  # a read-only cache: cut again next time
                pass
    return split
