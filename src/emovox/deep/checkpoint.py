"""Pickle-free run files of the deep trainer: checkpoints, resumption and the finished model.

``checkpoint.safetensors`` holds the model tensors, the optimizer tensors (keys
``__optimizer__.*``), torch's RNG state and the trainer state as JSON metadata, written
atomically in one file (``trainer_state.json`` is a readable copy). The best weights of a run
are ``model.safetensors`` with ``model.json`` (architecture, labels, settings), which
:func:`load_model` turns back into a :class:`TrainedNet`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emovox.deep.config import ADDED_DEFAULTS, RESUME_FREE, TrainConfig
from emovox.deep.data import FeatureFn
from emovox.deep.nets import build_model
from emovox.deep.predict import predict_proba, resolve_device
from emovox.io import atomic_write_bytes, atomic_write_text

FORMAT = "emovox-deep/1"
CHECKPOINT = "checkpoint.safetensors"
STATE = "trainer_state.json"
MODEL = "model.safetensors"
MODEL_JSON = "model.json"
_OPT = "__optimizer__."
_RNG = "__rng__.torch"


def save_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Write ``tensors`` with string metadata ``meta`` to ``path`` atomically."""
    from safetensors.torch import save

    atomic_write_bytes(path, save(tensors, metadata=meta))


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict as contiguous CPU tensors (ready for safetensors)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def optimizer_to_parts(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{_OPT}{pid}.{name}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_parts(tensors: dict[str, torch.Tensor], info: dict) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith(_OPT):
            pid, name = key[len(_OPT) :].split(".", 1)
            state.setdefault(int(pid), {})[name] = v
    for pid, st in info["scalars"].items():
        state.setdefault(int(pid), {}).update(st)
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in info["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the trainer state of a training checkpoint."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "trainer_state" not in meta:
        raise ValueError(f"{path}: not an emovox training checkpoint")
    return load_file(str(path)), json.loads(meta["trainer_state"])


def save_checkpoint(
    run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Write ``run_dir/checkpoint.safetensors`` (model, optimizer, RNG, ``state``) and its
    readable ``trainer_state.json``."""
    tensors = model_tensors(model)
    opt_tensors, opt_info = optimizer_to_parts(opt)
    tensors.update(opt_tensors)
    tensors[_RNG] = torch.get_rng_state()
    full = {**state, "optimizer": opt_info}
    save_safetensors(run_dir / CHECKPOINT, tensors, {"trainer_state": json.dumps(full)})
    atomic_write_text(run_dir / STATE, json.dumps(state, indent=2))


def resume_checkpoint(
    ckpt: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    fresh: dict[str, Any],
    fingerprint: list[int],
) -> dict[str, Any]:
    """Load ``ckpt`` into ``model``, ``opt`` and torch's RNG; return the trainer state.

    Warns (at the caller of :meth:`Trainer.fit`) when settings that shape the result, or the
    data (``fingerprint``), differ from the interrupted run's. ``fresh`` supplies state keys
    the checkpoint lacks.
    """
    tensors, state = read_checkpoint(ckpt)
    old = state.get("config", {})
    new = json.loads(json.dumps(cfg.to_dict()))  # tuples as lists, like the stored one
    changed = sorted(
        k for k in new if k not in RESUME_FREE and old.get(k, ADDED_DEFAULTS.get(k)) != new[k]
    )
    if changed:
        warnings.warn(
            f"resuming {ckpt.parent} with changed settings {changed}; the run will not "
            "match an uninterrupted one",
            stacklevel=4,
        )
    if state.get("data") != fingerprint:
        warnings.warn(
            f"resuming {ckpt.parent} on different data than it started with", stacklevel=4
        )
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("__")})
    opt.load_state_dict(optimizer_from_parts(tensors, state.pop("optimizer")))
    if _RNG in tensors:
        torch.set_rng_state(tensors[_RNG])
    if state["epoch"] < cfg.epochs and not state.get("stopped_early"):
        state["finished"] = False
    state["config"] = new
    return {**fresh, **state}


@dataclass
class TrainedNet:
    """The network a training run left, with its labels and settings (from :func:`load_model`).

    Not to be confused with :class:`emovox.inference.Recognizer`, the package's user-facing
    loaded model.
    """

    model: nn.Module
    labels: list[str]
    config: TrainConfig
    meta: dict[str, Any]

    def predict_proba(
        self, wavs: Sequence[np.ndarray], feature_fn: FeatureFn | None = None
    ) -> np.ndarray:
        """Class probabilities ``(n_clips, n_classes)`` in :attr:`labels` order."""
        if feature_fn is None and self.meta["features"]["kind"] == "custom":
            raise ValueError("this model was trained on custom features: pass feature_fn")
        return predict_proba(self.model, wavs, self.config, feature_fn)

    def predict(self, wavs: Sequence[np.ndarray], feature_fn: FeatureFn | None = None) -> list[str]:
        """The most probable label of each clip."""
        return [self.labels[i] for i in self.predict_proba(wavs, feature_fn).argmax(axis=1)]


def load_model(run_dir: str | Path, device: str = "cpu") -> TrainedNet:
    """Rebuild the best model of a run from ``model.json`` + ``model.safetensors``."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    meta_path, weights = run_dir / MODEL_JSON, run_dir / MODEL
    if not meta_path.exists() or not weights.exists():
        raise FileNotFoundError(f"{run_dir}: no trained model ({MODEL_JSON} + {MODEL})")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: unknown format {meta.get('format')!r}")
    model = build_model(meta["architecture"], **meta["kwargs"])
    model.load_state_dict(load_file(str(weights)))
    cfg = TrainConfig.from_dict({**meta["train_config"], "device": device})
    model.to(device=resolve_device(device), memory_format=torch.channels_last).eval()
    return TrainedNet(model=model, labels=list(meta["labels"]), config=cfg, meta=meta)
