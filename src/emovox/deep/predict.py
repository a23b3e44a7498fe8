"""Class probabilities from a deep model: devices, precision, sliding-window prediction."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from emovox.deep.config import TrainConfig
from emovox.deep.data import ClipDataset, FeatureFn, numpy_single_thread


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The forward-pass context for ``precision``: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"`` as a torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict_dataset(
    model: nn.Module, ds: ClipDataset, batch_size: int, device: torch.device
) -> np.ndarray:
    """Class probabilities per clip, averaged over its segments; batches segments of a shape."""
    was_training = model.training
    model.eval()
    probs: np.ndarray | None = None
    pending: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}

    def flush(shape: tuple[int, ...]) -> None:
        nonlocal probs
        batch = pending.pop(shape)
        x = torch.from_numpy(np.stack([s for _, s in batch]))[:, None].to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, ds.cfg.precision):
            logits = model(x)
        p = torch.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64)
        if probs is None:
            probs = np.zeros((len(ds), p.shape[1]))
        for (i, _), row in zip(batch, p, strict=True):
            probs[i] += row

    counts = np.zeros(len(ds))
    try:
        for i in range(len(ds)):
            segs, _ = ds[i]
            counts[i] = len(segs)
            for s in segs:
                pending.setdefault(s.shape, []).append((i, s))
                if len(pending[s.shape]) >= batch_size:
                    flush(s.shape)
        for shape in list(pending):
            flush(shape)
    finally:
        model.train(was_training)
    if probs is None:
        return np.zeros((0, 0), dtype=np.float32)
    return (probs / counts[:, None]).astype(np.float32)


def predict_proba(
    model: nn.Module,
    wavs: Sequence[np.ndarray],
    cfg: TrainConfig,
    feature_fn: FeatureFn | None = None,
) -> np.ndarray:
    """Class probabilities ``(n_clips, n_classes)``, averaged over sliding windows."""
    torch.set_num_threads(cfg.threads)
    ds = ClipDataset(wavs, None, cfg, feature_fn, train=False)
    with numpy_single_thread():
        return predict_dataset(model, ds, cfg.eval_batch_size, model_device(model))
