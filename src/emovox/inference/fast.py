"""The fast model: a small CNN on a cheap log-mel (:mod:`emovox.features.fast_mel`), distilled
from the default model (:mod:`emovox.inference.build_fast`), for when every millisecond counts.

>>> import emovox
>>> fast = emovox.load("fast")                        # doctest: +SKIP
>>> fast.predict("clip.wav").label                    # doctest: +SKIP

A fast-model folder holds ``model.json`` (``"kind": "fast_cnn"``, labels, temperature,
threshold, preprocessing, the card), ``model.safetensors`` (the network's weights, for the torch
backend) and ``model.onnx`` (the same network, for onnxruntime). :class:`FastEngine` is the
engine :class:`emovox.inference.recognizer.Recognizer` wraps, like the default model's
:class:`emovox.inference.engine.EncoderHead`; it has no adapted head and no domain score.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import Preprocess, preprocess
from emovox.audio.decode import SAMPLE_RATE
from emovox.features.fast_mel import fast_log_mel
from emovox.inference.backends import importable
from emovox.io import atomic_write_json, atomic_write_text

KIND = "fast_cnn"
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
#: Names ``emovox.load`` and ``--model`` accept for the packaged fast model.
FAST_NAMES = ("fast",)
BACKENDS = ("auto", "onnx", "torch")


def fast_bundle_path() -> Path:
    """Where the packaged fast model lives (``emovox/assets/fast_model``)."""
    return Path(str(resources.files("emovox") / "assets" / "fast_model"))


def is_fast_bundle(folder: str | Path) -> bool:
    """True when ``folder`` holds a fast model (its ``model.json`` says ``"kind": "fast_cnn"``)."""
    cfg = Path(folder) / CONFIG_FILE
    try:
        return json.loads(cfg.read_text()).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def resolve_model(path: str | Path | None) -> Path | None:
    """``"fast"`` (when no folder of that name exists) → the packaged fast model's folder;
    anything else unchanged."""
    if path is not None and str(path) in FAST_NAMES and not Path(path).exists():
        folder = fast_bundle_path()
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"the fast model is not in this installation ({folder}); build it with "
                "`emovox build-fast-model`"
            )
        return folder
    return None if path is None else Path(path)


def build_net(cfg: dict[str, Any]) -> Any:
    from emovox.deep.nets import build_model

    return build_model(KIND, **cfg["arch"])


class FastEngine:
    """A loaded fast model: ``predict_proba(wavs)`` for 16 kHz mono waveforms.

    ``backend``: ``"auto"`` (onnxruntime when installed, else torch), ``"onnx"`` or
    ``"torch"``; ``threads``: intra-op threads (1 by default, like the default model).
    """

    sample_rate = SAMPLE_RATE
    kind = KIND
    adapted_head = None
    domain = None

    def __init__(self, folder: str | Path, backend: str = "auto", threads: int | None = 1):
        self.path = Path(folder)
        try:
            cfg = json.loads((self.path / CONFIG_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path / CONFIG_FILE}: unreadable ({exc})") from exc
        if cfg.get("kind") != KIND:
            raise ValueError(f"{self.path}: not a fast model (model.json kind {cfg.get('kind')!r})")
        self.config = cfg
        self.labels: tuple[str, ...] = tuple(cfg["labels"])
        self.threshold = float(cfg.get("threshold", 0.5))
        self.temperature = float(cfg.get("temperature", 1.0))
        self.n_mels = int(cfg["arch"]["n_mels"])
        self.card: dict[str, Any] = dict(cfg.get("card", {})) | {"labels": list(self.labels)}
        self.preprocess_cfg = Preprocess(**cfg.get("preprocess", {}))
        if backend in ("onnx-int8", "numpy"):
            raise ValueError(
                f"backend {backend!r} is for the default model; the fast model runs on "
                f"{', '.join(BACKENDS)}"
            )
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; the fast model takes {BACKENDS}")
        if backend == "auto":
            backend = "onnx" if importable("onnxruntime") else "torch"
        self._backend = backend
        self._run = self._open_onnx(threads) if backend == "onnx" else self._open_torch(threads)

    @property
    def backend(self) -> str:
        return self._backend

    def _open_onnx(self, threads: int | None) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        path = self.path / ONNX_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (the fast model's ONNX graph)")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        def run(x: np.ndarray) -> np.ndarray:
            return session.run(None, {"mel": x})[0]

        return run

    def _open_torch(self, threads: int | None) -> Any:
        import torch
        from safetensors.torch import load_file

        if threads:
            torch.set_num_threads(threads)
        net = build_net(self.config)
        state = load_file(str(self.path / WEIGHTS_FILE))
        net.load_state_dict(state)
        net.eval()

        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return net(torch.from_numpy(x)).numpy()

        return run

    def features(self, y: np.ndarray, name: str = "<array>") -> np.ndarray:
        """Preprocess one waveform and return its fast log-mel ``(n_mels, frames)``."""
        y = preprocess(np.asarray(y, dtype=np.float32), self.preprocess_cfg, name)
        return fast_log_mel(y, self.n_mels)

    def logits(self, mel: np.ndarray) -> np.ndarray:
        """The network's logits for one log-mel."""
        return np.asarray(self._run(np.ascontiguousarray(mel[None, None], dtype=np.float32))[0])

    def predict_proba(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        """``(n, len(labels))`` calibrated probabilities for raw 16 kHz mono waveforms (trimmed
        and loudness-normalised here); :class:`emovox.audio.AudioError` for unusable audio."""
        out = np.zeros((len(wavs), len(self.labels)), dtype=np.float32)
        for i, y in enumerate(wavs):
            z = self.logits(self.features(y)).astype(np.float64) / self.temperature
            p = np.exp(z - z.max())
            out[i] = p / p.sum()
        return out


def export_fast_onnx(net: Any, out: str | Path, n_mels: int) -> Path:
    """The network (logits only) as an ONNX graph with input ``mel`` ``(1, 1, n_mels, frames)``."""
    import torch

    from emovox.inference.export import write_onnx

    net.eval()
    example = torch.zeros(1, 1, n_mels, 150)
    return write_onnx(net, example, out, "mel", "logits", {"mel": {3: "frames"}})


def write_fast_bundle(
    out: str | Path,
    net: Any,
    labels: Sequence[str],
    temperature: float,
    threshold: float,
    pre: Preprocess,
    card: dict[str, Any],
    card_md: str | None = None,
) -> dict[str, Any]:
    """Write a fast-model folder (safetensors + ONNX + ``model.json`` with the card); returns
    the ``model.json`` content."""
    from dataclasses import asdict

    from emovox.deep.checkpoint import model_tensors, save_safetensors
    from emovox.deep.nets import architecture_of

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name, arch = architecture_of(net)
    if name != KIND:
        raise ValueError(f"expected a {KIND} network, got {name}")
    arch = {**arch, "embed_dim": 0}  # the projection is for training only
    tensors = {k: v for k, v in model_tensors(net).items() if not k.startswith("proj.")}
    save_safetensors(out / WEIGHTS_FILE, tensors, {"format": "pt", "kind": KIND})
    export_fast_onnx(net, out / ONNX_FILE, int(arch["n_mels"]))
    cfg = {
        "kind": KIND,
        "labels": list(labels),
        "arch": arch,
        "front_end": "emovox.features.fast_mel.fast_log_mel",
        "temperature": float(temperature),
        "threshold": float(threshold),
        "preprocess": asdict(pre),
        "card": card,
    }
    atomic_write_json(out / CONFIG_FILE, cfg)
    atomic_write_json(out / "card.json", card)
    if card_md is not None:
        atomic_write_text(out / "card.md", card_md)
    return cfg
