"""Knowledge distillation: train a small network (:class:`emovox.deep.nets.FastCNN`) on log-mel
to copy a teacher's answers (soft labels) and, optionally, its embeddings.

>>> cfg = DistillConfig(epochs=20)
>>> net = distill(mels, teacher_logits, y_idx, labels, cfg, targets=E)   # doctest: +SKIP

The loss per clip is ``T² · KL(teacher at temperature T || student at T)`` plus
``hard_weight`` × the cross-entropy with the true label plus ``embed_weight`` × the mean
squared error between the student's projection and the teacher's (reduced) embedding. Each
clip's loss is weighted so every emotion counts equally (the teacher head is class-balanced
too). Training crops or repeats each log-mel to ``crop_frames`` frames and masks a random band
of frequencies and of frames. Seeded; with ``run_dir`` each epoch ends in a checkpoint
(:func:`emovox.deep.checkpoint.save_checkpoint`) and an interrupted run resumes from it.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.deep.checkpoint import CHECKPOINT, read_checkpoint, save_checkpoint

Log = Callable[[str], None]


@dataclass
class DistillConfig:
    """Settings of :func:`distill` (all of them shape the result)."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-3
    temperature: float = 2.0
    hard_weight: float = 0.3
    embed_weight: float = 1.0
    crop_frames: int = 150
    widths: Sequence[int] = field(default_factory=lambda: (16, 32, 64, 128))
    dropout: float = 0.2
    freq_mask: int = 8
    time_mask: int = 20
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.crop_frames < 16:
            raise ValueError("epochs and batch_size must be >= 1, crop_frames >= 16")
        if self.temperature <= 0 or self.lr <= 0:
            raise ValueError("temperature and lr must be positive")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


def crop_or_repeat(S: np.ndarray, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """``(n_mels, T)`` → ``(n_mels, n)``: a random window (``rng``; None: the middle) of a long
    log-mel, or a short one repeated along time."""
    T = S.shape[1]
    if T < n:
        return np.tile(S, (1, -(-n // T)))[:, :n]
    start = (T - n) // 2 if rng is None else int(rng.integers(0, T - n + 1))
    return S[:, start : start + n]


def class_weights(y_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-clip weights that make every class count equally (mean weight 1)."""
    counts = np.bincount(y_idx, minlength=n_classes).astype(np.float64)
    w = len(y_idx) / (n_classes * np.maximum(counts, 1))
    return w[y_idx].astype(np.float32)


def _batch(
    mels: Sequence[np.ndarray], idx: np.ndarray, cfg: DistillConfig, rng: np.random.Generator
) -> np.ndarray:
    out = np.stack([crop_or_repeat(mels[i], cfg.crop_frames, rng) for i in idx]).astype(np.float32)
    for b in range(len(out)):  # SpecAugment-style masks, one band and one stretch per clip
        if cfg.freq_mask:
            f = int(rng.integers(0, cfg.freq_mask + 1))
            f0 = int(rng.integers(0, out.shape[1] - f + 1))
            out[b, f0 : f0 + f, :] = out[b].min()
        if cfg.time_mask:
            t = int(rng.integers(0, cfg.time_mask + 1))
            t0 = int(rng.integers(0, out.shape[2] - t + 1))
            out[b, :, t0 : t0 + t] = out[b].min()
    return out[:, None]


def distill(
    mels: Sequence[np.ndarray],
    teacher_logits: np.ndarray,
    y_idx: np.ndarray,
    labels: Sequence[str],
    cfg: DistillConfig | None = None,
    targets: np.ndarray | None = None,
    run_dir: str | Path | None = None,
    log: Log | None = None,
) -> Any:
    """Train a :class:`~emovox.deep.nets.FastCNN` (returned in eval mode).

    ``mels``: one ``(n_mels, T)`` log-mel per training row (clips and their augmented
    views); ``teacher_logits``: ``(rows, len(labels))``, the teacher's logits of the same rows;
    ``y_idx``: their true labels as indices into ``labels``; ``targets``: optional
    ``(rows, D)`` teacher embeddings to match (standardise or reduce them first).
    """
    import torch
    import torch.nn.functional as F

    from emovox.deep.nets import FastCNN

    cfg = cfg or DistillConfig()
    say: Log = log or (lambda _m: None)
    n = len(mels)
    K = len(labels)
    Z = np.asarray(teacher_logits, dtype=np.float32)
    y_idx = np.asarray(y_idx, dtype=np.int64)
    if Z.shape != (n, K) or y_idx.shape != (n,):
        raise ValueError(f"teacher_logits must be ({n}, {K}) and y_idx ({n},)")
    if targets is not None and len(targets) != n:
        raise ValueError(f"targets has {len(targets)} rows, mels {n}")
    n_mels = int(mels[0].shape[0])
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    net = FastCNN(
        K, n_mels, cfg.widths, cfg.dropout, 0 if targets is None else int(targets.shape[1])
    )
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-n // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.2
    )
    weights = class_weights(y_idx, K)
    fingerprint = {"config": cfg.to_dict(), "rows": n, "labels": list(labels)}
    start = 0
    folder = Path(run_dir) if run_dir is not None else None
    if folder is not None and (folder / CHECKPOINT).is_file():
        tensors, state = read_checkpoint(folder / CHECKPOINT)
        if state.get("fingerprint") == json.loads(json.dumps(fingerprint)):
            net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("__")})
            opt_info = state.get("optimizer")
            if opt_info is not None:
                from emovox.deep.checkpoint import optimizer_from_parts

                opt.load_state_dict(optimizer_from_parts(tensors, opt_info))
            start = int(state["epoch"])
            with warnings.catch_warnings():  # replaying the schedule, not training
                warnings.simplefilter("ignore")
                for _ in range(start * steps_per_epoch):
                    sched.step()
            say(
                f"{folder}: already trained"
                if start >= cfg.epochs
                else f"resuming {folder} at epoch {start + 1}"
            )
        else:
            say(f"{folder}: its checkpoint is of other settings or data; starting afresh")
    T = cfg.temperature
    Zt = torch.from_numpy(Z)
    W = torch.from_numpy(weights)
    Y = torch.from_numpy(y_idx)
    E = None if targets is None else torch.from_numpy(np.asarray(targets, dtype=np.float32))
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        net.train()
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(n)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            x = torch.from_numpy(_batch(mels, idx, cfg, rng))
            ti = torch.from_numpy(idx)
            pooled = net.pooled(x)
            out = net.fc(net.head_dropout(pooled))
            soft = F.softmax(Zt[ti] / T, dim=1)
            kl = (soft * (torch.log(soft + 1e-9) - F.log_softmax(out / T, dim=1))).sum(1)
            loss_i = T * T * kl + cfg.hard_weight * F.cross_entropy(out, Y[ti], reduction="none")
            if E is not None and net.proj is not None:
                loss_i = loss_i + cfg.embed_weight * ((net.proj(pooled) - E[ti]) ** 2).mean(1)
            loss = (loss_i * W[ti]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        net.eval()
        took = time.perf_counter() - t0
        say(f"epoch {epoch + 1}/{cfg.epochs}: loss {total / n:.4f} ({took:.0f} s)")
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            save_checkpoint(folder, net, opt, {"epoch": epoch + 1, "fingerprint": fingerprint})
    net.eval()
    return net


def predict_logits(net: Any, mels: Sequence[np.ndarray]) -> np.ndarray:
    """The network's logits for whole log-mels, one at a time (each at its own length)."""
    import torch

    out = np.zeros((len(mels), net.fc.out_features), dtype=np.float32)
    net.eval()
    with torch.inference_mode():
        for i, S in enumerate(mels):
            x = torch.from_numpy(np.asarray(S, dtype=np.float32)[None, None])
            out[i] = net(x)[0].numpy()
    return out
