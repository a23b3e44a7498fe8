"""Ready-to-use emotion models ("bundles"): a frozen Whisper encoder, pooled layer statistics and
a calibrated linear head, in one folder:

``model.safetensors``
    ``encoder.*`` (fp16; only the blocks the head reads) and ``head.mean``, ``head.scale``,
    ``head.weight``, ``head.bias`` (fp32).
``model.json``
    format, labels, which layers and statistics feed the head, the softmax temperature, the
    ``uncertain`` threshold, preprocessing, and the model card (data, protocol, scores, limits).
``LICENSE-whisper.txt``
    the MIT notice of the encoder weights.

Three interchangeable backends compute the pooled statistics: ``onnx`` (onnxruntime; the graph
is exported once with torch and cached), ``torch``, and ``numpy`` (:mod:`emovox.encoders.runtime`,
no
extra dependency). The head is numpy in all three.

>>> rec = load_bundle()                        # the packaged default model   # doctest: +SKIP
>>> rec.predict_proba([waveform_16k])          # (1, n_labels)                # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import Preprocess, preprocess
from emovox.io import atomic_write_json, cache_dir

FORMAT = "emovox-bundle"
VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "model.json"
LICENSE_FILE = "LICENSE-whisper.txt"
BACKENDS = ("auto", "onnx", "torch", "numpy")
SAMPLE_RATE = 16_000


class BundleError(ValueError):
    """A bundle folder that cannot be used, naming the folder and the problem."""


@dataclass
class BundleConfig:
    """Everything in ``model.json`` besides the tensors."""

    labels: list[str]
    layers: list[int]  # hidden states pooled (0 = stem, i = after block i)
    dims: dict[str, int]  # WhisperDims of the stored encoder (n_layer = blocks stored)
    stats: list[str] = field(default_factory=lambda: ["mean", "std"])
    temperature: float = 1.0
    threshold: float = 0.5
    preprocess: dict[str, Any] = field(default_factory=lambda: asdict(Preprocess()))
    card: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION

    @property
    def n_blocks(self) -> int:
        return max(self.layers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model.json") -> BundleConfig:
        if d.get("format") != FORMAT:
            raise BundleError(f"{where}: not an {FORMAT} file (format = {d.get('format')!r})")
        if int(d.get("version", 0)) > VERSION:
            raise BundleError(
                f"{where}: bundle version {d['version']} is newer than this emovox reads "
                f"({VERSION}); upgrade emovox"
            )
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as exc:
            raise BundleError(f"{where}: {exc}") from exc


# --------------------------------------------------------------------------- pooling


def pool_stats(layers: Sequence[np.ndarray], stats: Sequence[str]) -> np.ndarray:
    """Concatenate per-layer statistics over time of ``(T, D)`` hidden states."""
    parts = []
    for h in layers:
        h = np.asarray(h, dtype=np.float64)
        for s in stats:
            parts.append(h.mean(0) if s == "mean" else h.std(0))
    return np.concatenate(parts).astype(np.float32)


def merge_chunk_stats(
    pooled: Sequence[np.ndarray], weights: Sequence[int], n_layers: int, stats: Sequence[str]
) -> np.ndarray:
    """Exact mean/std over the concatenation of chunks from each chunk's mean/std."""
    if len(pooled) == 1:
        return pooled[0]
    if list(stats) != ["mean", "std"]:
        raise ValueError("chunk merging needs stats ['mean', 'std']")
    w = np.asarray(weights, dtype=np.float64)[:, None]
    P = np.stack([np.asarray(p, dtype=np.float64) for p in pooled])  # (n_chunks, F)
    d = P.shape[1] // (2 * n_layers)
    P = P.reshape(len(pooled), n_layers, 2, d)
    mean, std = P[:, :, 0], P[:, :, 1]
    m = (w[:, :, None] * mean).sum(0) / w.sum()
    sq = (w[:, :, None] * (std**2 + mean**2)).sum(0) / w.sum()
    s = np.sqrt(np.maximum(sq - m**2, 0.0))
    return np.stack([m, s], axis=1).reshape(-1).astype(np.float32)


# --------------------------------------------------------------------------- backends


class _NumpyEncoder:
    def __init__(self, weights: dict[str, np.ndarray], cfg: BundleConfig):
        self.w = weights
        self.cfg = cfg

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        from emovox.encoders.runtime import encoder_layers

        hs = encoder_layers(mel, self.w, self.cfg.dims["n_head"], self.cfg.n_blocks)
        return pool_stats([hs[i] for i in self.cfg.layers], self.cfg.stats)


def _torch_module(weights: dict[str, np.ndarray], cfg: BundleConfig) -> Any:
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
            parts = []
            for i in cfg.layers:
                h = hs[i]
                for s in cfg.stats:
                    parts.append(h.mean(1) if s == "mean" else h.std(1, unbiased=False))
            return torch.cat(parts, dim=-1)

    return PooledEncoder().float().eval()


class _TorchEncoder:
    def __init__(self, weights: dict[str, np.ndarray], cfg: BundleConfig, threads: int | None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.module = _torch_module(weights, cfg)

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(mel)[None])[0].numpy()


class _OnnxEncoder:
    def __init__(self, onnx_path: Path, threads: int | None):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"mel": mel[None].astype(np.float32)})[0][0]


def export_onnx(bundle: str | Path | None, out: str | Path) -> Path:
    """Write the bundle's encoder + pooling as an ONNX graph (input ``mel`` (1, n_mels, T),
    output ``pooled`` (1, F)); needs torch. The head stays in ``model.json``/safetensors."""
    import warnings

    import torch

    folder = bundle_path(bundle)
    cfg, weights, _ = read_bundle(folder)
    module = _torch_module(weights, cfg)
    mel = torch.zeros(1, cfg.dims["n_mels"], 300)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (mel,),
            str(tmp),
            input_names=["mel"],
            output_names=["pooled"],
            dynamic_axes={"mel": {2: "frames"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, out)
    return out


def _cached_onnx(folder: Path) -> Path:
    digest = hashlib.sha1((folder / MODEL_FILE).read_bytes()).hexdigest()[:16]
    path = cache_dir() / "onnx" / f"{digest}.onnx"
    if not path.exists():
        export_onnx(folder, path)
    return path


# --------------------------------------------------------------------------- recognizer


class Recognizer:
    """A loaded bundle: ``predict_proba(wavs)`` for decoded 16 kHz mono waveforms."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        cfg: BundleConfig,
        weights: dict[str, np.ndarray],
        head: dict[str, np.ndarray],
        path: Path | None = None,
        backend: str = "auto",
        threads: int | None = 1,
    ):
        self.config = cfg
        self.labels: tuple[str, ...] = tuple(cfg.labels)
        self.threshold = float(cfg.threshold)
        self.card: dict[str, Any] = dict(cfg.card) | {"labels": list(cfg.labels)}
        self.path = path
        self.preprocess_cfg = Preprocess(**cfg.preprocess)
        self._mean = head["mean"].astype(np.float64)
        self._scale = head["scale"].astype(np.float64)
        self._W = head["weight"].astype(np.float64)
        self._b = head["bias"].astype(np.float64)
        self.backend = self._pick(backend, weights, path, threads)

    def _pick(
        self, backend: str, weights: dict[str, np.ndarray], path: Path | None, threads: int | None
    ) -> str:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        have = {m: _importable(m) for m in ("onnxruntime", "torch")}
        if backend == "auto":
            backend = (
                "onnx"
                if have["onnxruntime"] and have["torch"] and path is not None
                else "torch"
                if have["torch"]
                else "numpy"
            )
        if backend == "onnx":
            if not have["onnxruntime"]:
                raise ImportError("backend 'onnx' needs onnxruntime: pip install onnxruntime")
            if path is None:
                raise ValueError("backend 'onnx' needs a bundle on disk")
            self._enc = _OnnxEncoder(_cached_onnx(path), threads)
        elif backend == "torch":
            if not have["torch"]:
                raise ImportError("backend 'torch' needs PyTorch: pip install torch")
            self._enc = _TorchEncoder(weights, self.config, threads)
        else:
            self._enc = _NumpyEncoder(weights, self.config)
        return backend

    def features(self, y: np.ndarray, name: str = "<array>") -> np.ndarray:
        """Preprocess one waveform and return its pooled encoder statistics."""
        from emovox.encoders.mel import log_mel_spectrogram, split_chunks

        y = preprocess(np.asarray(y, dtype=np.float32), self.preprocess_cfg, name)
        parts = split_chunks(y)
        pooled = [self.pooled(log_mel_spectrogram(c)) for c in parts]
        n_layers = len(self.config.layers)
        return merge_chunk_stats(pooled, [len(c) for c in parts], n_layers, self.config.stats)

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        """Pooled encoder statistics of one log-mel ``(n_mels, T)`` with this backend."""
        return self._enc.pooled(mel)

    def head_proba(self, F: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(n, C)`` from pooled statistics ``(n, F)``."""
        Z = ((np.asarray(F, dtype=np.float64) - self._mean) / self._scale) @ self._W.T + self._b
        Z = Z / self.config.temperature
        Z -= Z.max(axis=1, keepdims=True)
        P = np.exp(Z)
        return (P / P.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict_proba(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        """``(n, len(labels))`` probabilities for 16 kHz mono waveforms (raw audio; trimmed and
        loudness-normalised here). Raises :class:`emovox.audio.AudioError` for unusable audio
        (silent, too short)."""
        if len(wavs) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        F = np.stack([self.features(y) for y in wavs])
        return self.head_proba(F)


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # e.g. blocked with sys.modules[name] = None
        return False


# --------------------------------------------------------------------------- files


def default_bundle_path() -> Path:
    """Where the packaged default model lives (``emovox/assets/default_model``)."""
    return Path(str(resources.files("emovox") / "assets" / "default_model"))


def bundle_path(path: str | Path | None) -> Path:
    """Resolve ``None`` to the default model and check the folder looks like a bundle."""
    folder = default_bundle_path() if path is None else Path(path).expanduser()
    if folder.is_file() and folder.name in (MODEL_FILE, CONFIG_FILE):
        folder = folder.parent
    if not (folder / CONFIG_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        if path is None:
            raise FileNotFoundError(
                f"the default model is not in this installation ({folder}); build it with "
                "`emovox build-model` or pass a model folder"
            )
        raise FileNotFoundError(
            f"{folder}: not an emovox model folder (needs {CONFIG_FILE} and {MODEL_FILE})"
        )
    return folder


def read_bundle(
    path: str | Path | None,
) -> tuple[BundleConfig, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(config, encoder weights, head tensors)`` of a bundle folder, as float32 arrays."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = bundle_path(path)
    try:
        cfg = BundleConfig.from_dict(
            json.loads((folder / CONFIG_FILE).read_text()), str(folder / CONFIG_FILE)
        )
    except json.JSONDecodeError as exc:
        raise BundleError(f"{folder / CONFIG_FILE}: not valid JSON ({exc})") from exc
    try:
        tensors = load_file(str(folder / MODEL_FILE))
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{folder / MODEL_FILE}: unreadable safetensors ({exc})") from exc
    enc = {k[8:]: v.astype(np.float32) for k, v in tensors.items() if k.startswith("encoder.")}
    head = {k[5:]: v.astype(np.float32) for k, v in tensors.items() if k.startswith("head.")}
    need = {"mean", "scale", "weight", "bias"}
    if need - set(head):
        raise BundleError(f"{folder / MODEL_FILE}: missing head tensors {sorted(need - set(head))}")
    n_feat = head["weight"].shape[1]
    if head["weight"].shape[0] != len(cfg.labels) or head["mean"].shape != (n_feat,):
        raise BundleError(f"{folder}: head shapes do not match the {len(cfg.labels)} labels")
    return cfg, enc, head


def load_bundle(
    path: str | Path | None = None, backend: str = "auto", threads: int | None = 1
) -> Recognizer:
    """Load a bundle folder (``None``: the packaged default model)."""
    folder = bundle_path(path)
    cfg, enc, head = read_bundle(folder)
    return Recognizer(cfg, enc, head, folder, backend, threads)


def write_bundle(
    folder: str | Path,
    cfg: BundleConfig,
    encoder_state: dict[str, Any],
    head: dict[str, np.ndarray],
) -> Path:
    """Write a bundle: encoder tensors (fp16, only blocks < ``cfg.n_blocks``; ``ln_post`` only
    when the last layer is read), head (fp32), ``model.json`` and the Whisper licence."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_layer = cfg.dims["n_layer"]
    keep: dict[str, np.ndarray] = {}
    for k, v in encoder_state.items():
        arr = v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v)
        if k == "positional_embedding":
            continue  # recomputed (standard sinusoids)
        if k.startswith("blocks.") and int(k.split(".")[1]) >= cfg.n_blocks:
            continue
        if k.startswith("ln_post.") and cfg.n_blocks < n_layer:
            continue
        keep[f"encoder.{k}"] = arr.astype(np.float16)
    for k, v in head.items():
        keep[f"head.{k}"] = np.asarray(v, dtype=np.float32)
    cfg.dims = dict(cfg.dims) | {"n_layer": cfg.n_blocks}
    tmp = folder / f".{MODEL_FILE}.tmp"
    save_file(keep, str(tmp), metadata={"format": FORMAT, "version": str(VERSION)})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # safetensors writes owner-only files
    os.replace(tmp, folder / MODEL_FILE)
    atomic_write_json(folder / CONFIG_FILE, cfg.to_dict())
    lic = Path(str(resources.files("emovox") / "encoders" / LICENSE_FILE))
    if lic.is_file():
        shutil.copyfile(lic, folder / LICENSE_FILE)
    return folder


def make_random_bundle(
    path: str | Path,
    labels: Sequence[str] = ("neutral", "happy", "sad", "angry"),
    seed: int = 0,
    n_state: int = 64,
    n_head: int = 2,
    n_layer: int = 2,
) -> Path:
    """A tiny bundle with random weights (for tests and examples; predictions are noise)."""
    rng = np.random.default_rng(seed)
    d = n_state
    state: dict[str, np.ndarray] = {
        "conv1.weight": rng.normal(0, 0.1, (d, 80, 3)),
        "conv1.bias": np.zeros(d),
        "conv2.weight": rng.normal(0, 0.05, (d, d, 3)),
        "conv2.bias": np.zeros(d),
        "ln_post.weight": np.ones(d),
        "ln_post.bias": np.zeros(d),
    }
    for i in range(n_layer):
        p = f"blocks.{i}"
        for name in ("query", "key", "value", "out"):
            state[f"{p}.attn.{name}.weight"] = rng.normal(0, 0.05, (d, d))
            if name != "key":
                state[f"{p}.attn.{name}.bias"] = np.zeros(d)
        state[f"{p}.attn_ln.weight"] = np.ones(d)
        state[f"{p}.attn_ln.bias"] = np.zeros(d)
        state[f"{p}.mlp_ln.weight"] = np.ones(d)
        state[f"{p}.mlp_ln.bias"] = np.zeros(d)
        state[f"{p}.mlp.0.weight"] = rng.normal(0, 0.05, (4 * d, d))
        state[f"{p}.mlp.0.bias"] = np.zeros(4 * d)
        state[f"{p}.mlp.2.weight"] = rng.normal(0, 0.05, (d, 4 * d))
        state[f"{p}.mlp.2.bias"] = np.zeros(d)
    layers = list(range(n_layer + 1))
    n_feat = len(layers) * 2 * d
    head = {
        "mean": np.zeros(n_feat),
        "scale": np.ones(n_feat),
        "weight": rng.normal(0, 0.5, (len(labels), n_feat)) / math.sqrt(n_feat),
        "bias": np.zeros(len(labels)),
    }
    cfg = BundleConfig(
        labels=list(labels),
        layers=layers,
        dims={"n_mels": 80, "n_ctx": 1500, "n_state": d, "n_head": n_head, "n_layer": n_layer},
        card={"name": "random-test-model", "note": "random weights: predictions are noise"},
    )
    return write_bundle(path, cfg, state, head)
