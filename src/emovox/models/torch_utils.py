"""Optional PyTorch for the heads over encoder frames: the import with a helpful error, the
class-balanced loss and the training loop over length-bucketed batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from emovox.models.sequences import length_bucketed_batches

__all__ = ["balanced_cross_entropy", "require_torch", "train_epoch", "train_epochs"]


def require_torch(what: str) -> Any:
    """The ``torch`` module, or an ImportError saying that ``what`` needs PyTorch."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is in the deep extra
        raise ImportError(
            f"{what} needs PyTorch: pip install 'emovox[deep]' (on CPU: pip install torch==2.13.0)"
        ) from exc
    return torch


def balanced_cross_entropy(y_idx: np.ndarray, n_classes: int) -> Any:
    """``torch.nn.CrossEntropyLoss`` weighting class ``k`` by ``n / (n_classes * n_k)`` (each
    class counts as much as the others, whatever its size)."""
    torch = require_torch("the class-balanced loss")
    counts = np.bincount(y_idx, minlength=n_classes)
    weight = torch.tensor(len(y_idx) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
    return torch.nn.CrossEntropyLoss(weight=weight)


def train_epoch(
    net: Any,
    batches: Sequence[np.ndarray],
    make_batch: Callable[[np.ndarray], tuple[Any, Any]],
    targets: Any,
    loss_fn: Any,
    opt: Any,
    sched: Any,
    rng: np.random.Generator,
) -> float:
    """One pass over ``batches`` (clip indices) in a random order drawn from ``rng``:
    ``make_batch(idx)`` gives the ``(x, mask)`` inputs of ``net``, ``targets[idx]`` the class
    indices; one optimiser and scheduler step per batch. Returns the mean loss per clip."""
    total = 0.0
    for b in rng.permutation(len(batches)):
        idx = batches[b]
        xb, mb = make_batch(idx)
        loss = loss_fn(net(xb, mb), targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += float(loss.detach()) * len(idx)
    return total / sum(len(idx) for idx in batches)


def train_epochs(
    net: Any,
    *,
    epochs: int,
    lengths: np.ndarray,
    bounds: Sequence[tuple[int, int]],
    jitter: float,
    make_batch: Callable[[np.ndarray], tuple[Any, Any]],
    targets: Any,
    loss_fn: Any,
    opt: Any,
    sched: Any,
    rng: np.random.Generator,
) -> list[float]:
    """``epochs`` of :func:`train_epoch` in training mode, each over new
    :func:`~emovox.models.sequences.length_bucketed_batches` (clip ``lengths`` cut at
    ``bounds``, ``jitter`` frames of noise); leaves ``net`` in eval mode. Returns the loss
    curve (mean loss per clip of each epoch)."""
    curve: list[float] = []
    net.train()
    for _ in range(epochs):
        batches = length_bucketed_batches(lengths, bounds, jitter, rng)
        curve.append(train_epoch(net, batches, make_batch, targets, loss_fn, opt, sched, rng))
    net.eval()
    return curve
