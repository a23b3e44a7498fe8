"""The encoders of a bundle: log-mel ``(n_mels, T)`` in, the pooled statistics the head reads
out, in interchangeable backends with one small interface (:class:`Encoder`):

:class:`NumpyEncoder`
    :mod:`emovox.encoders.runtime`, no extra dependency.
:class:`TorchEncoder`
    PyTorch, on the CPU or (``to("cuda")``) a GPU.
:class:`OnnxEncoder`
    onnxruntime on a graph exported by :mod:`emovox.inference.export`.
:class:`OnnxInt8Encoder`
    the same graph with int8 weights (:mod:`emovox.inference.quantize`).

All pool with :mod:`emovox.features.pooling`, the pooling training uses.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emovox.features.pooling import pool_stats, time_stats
from emovox.inference.bundle import BundleConfig, BundleError

#: Backend names :func:`emovox.inference.engine.load_bundle` accepts.
BACKENDS = ("auto", "onnx", "onnx-int8", "torch", "numpy")


class Encoder(Protocol):
    """What every backend offers."""

    #: ``"numpy"``, ``"torch"``, ``"onnx"`` or ``"onnx-int8"``.
    name: str

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        """Pooled statistics ``(F,)`` float32 of one log-mel ``(n_mels, T)``."""
        ...

    def to(self, device: str) -> Encoder:
        """Run on ``device`` from now on (only the torch backend leaves the CPU); self."""
        ...


def importable(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # e.g. blocked with sys.modules[name] = None
        return False


def check_cpu(backend: str, device: Any) -> None:
    """Raise ``ValueError`` unless ``device`` is the CPU, for a CPU-only ``backend``."""
    if str(device).split(":")[0] != "cpu":
        raise ValueError(
            f"backend {backend!r} runs on the CPU only, not on {str(device)!r}; "
            "load the model with backend='torch' to use another device"
        )


class NumpyEncoder:
    """The encoder in numpy (:func:`emovox.encoders.runtime.encoder_layers`); CPU only."""

    name = "numpy"

    def __init__(self, weights: dict[str, np.ndarray], cfg: BundleConfig) -> None:
        self.weights = weights
        self.config = cfg

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        """Pooled statistics ``(F,)`` float32 of one log-mel ``(n_mels, T)``."""
        from emovox.encoders.runtime import encoder_layers

        cfg = self.config
        hs = encoder_layers(mel, self.weights, cfg.dims["n_head"], cfg.n_blocks)
        return pool_stats([hs[i] for i in cfg.layers], cfg.stats)

    def to(self, device: str) -> NumpyEncoder:
        """Only ``"cpu"`` (a no-op); other devices raise ``ValueError``."""
        check_cpu(self.name, device)
        return self


def pooled_encoder_module(weights: dict[str, np.ndarray], cfg: BundleConfig) -> Any:
    """The bundle's encoder and pooling as one torch module (eval, float32): log-mel
    ``(1, n_mels, T)`` -> pooled statistics ``(1, F)``. Needs torch."""
    import torch
    from torch import nn

    from emovox.encoders import WhisperDims, WhisperEncoder

    class PooledEncoder(nn.Module):
        """log-mel (1, n_mels, T) → pooled statistics (1, F)."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = WhisperEncoder.from_dims(WhisperDims.from_dict(cfg.dims))
            sd = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in weights.items()}
            sd.setdefault("positional_embedding", self.encoder.positional_embedding)
            missing = set(self.encoder.state_dict()) - set(sd)
            # ln_post is only stored when the head reads the last layer
            if missing - {"ln_post.weight", "ln_post.bias"}:
                raise BundleError(f"bundle lacks encoder tensors: {sorted(missing)[:5]}")
            self.encoder.load_state_dict(sd, strict=False)
            if "ln_post.weight" not in sd:  # a truncated encoder: its last layer is not normed
                self.encoder.ln_post = nn.Identity()

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            hs = self.encoder(mel, return_layers=True, n_blocks=cfg.n_blocks)
            # the layers stacked, (B, L, T, D), so each statistic is one reduction over time:
            # about 0.5 ms less per 3 s clip in onnxruntime than one reduction per layer
            x = torch.stack([hs[i] for i in cfg.layers], dim=1)
            parts = torch.cat(time_stats(x, cfg.stats, axis=2), dim=-1)  # (B, L, S * D)
            return parts.reshape(parts.shape[0], -1)

    return PooledEncoder().float().eval()


class TorchEncoder:
    """The encoder in PyTorch (:func:`pooled_encoder_module`); ``to(device)`` moves it."""

    name = "torch"

    def __init__(
        self, weights: dict[str, np.ndarray], cfg: BundleConfig, threads: int | None = None
    ) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.module = pooled_encoder_module(weights, cfg)
        self.device = torch.device("cpu")

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        """Pooled statistics ``(F,)`` float32 of one log-mel ``(n_mels, T)``."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(mel)[None]
            if self.device.type != "cpu":
                x = x.to(self.device)
            return self.module(x)[0].float().cpu().numpy()

    def to(self, device: Any) -> TorchEncoder:
        """Move the module to a torch ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...);
        ``ValueError`` for an unknown or unavailable device."""
        import torch

        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"not a torch device: {device!r} ({exc})") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: no CUDA device is available")
        self.module.to(dev)
        self.device = dev
        return self


class OnnxEncoder:
    """The exported graph (:func:`emovox.inference.export.export_onnx`) in onnxruntime; CPU."""

    name = "onnx"

    def __init__(self, onnx_path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        """Pooled statistics ``(F,)`` float32 of one log-mel ``(n_mels, T)``."""
        return self.session.run(None, {"mel": mel[None].astype(np.float32)})[0][0]

    def to(self, device: str) -> OnnxEncoder:
        """Only ``"cpu"`` (a no-op); other devices raise ``ValueError``."""
        check_cpu(self.name, device)
        return self


class OnnxInt8Encoder(OnnxEncoder):
    """The exported graph with int8 weights (:func:`emovox.inference.quantize.cached_int8_onnx`)
    in onnxruntime; CPU. Faster than the fp32 graph where the CPU has int8 instructions; its
    outputs are close to, not equal to, the fp32 graph's."""

    name = "onnx-int8"
