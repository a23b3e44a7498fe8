"""A small attentive head over frozen encoder frames: learned layer weights + attentive
statistics pooling + a linear classifier, with scikit-learn's ``fit``/``predict``/
``predict_proba`` face.

Input is a sequence of per-clip arrays ``(n_layers, T, D)`` (what
:func:`emovox.features.embeddings.extract_embeddings` returns with ``stats=FRAMES``); clips may have
any length. The head:

1. standardises each layer's units with statistics of the training frames,
2. mixes the layers with softmax-normalised learned weights,
3. projects to ``hidden`` units (GELU), scores every frame, and pools a weighted mean and
   standard deviation over time (padding masked out),
4. classifies with one linear layer.

Training: AdamW, cosine schedule, class-balanced cross-entropy, frame dropout (a random share
of frames hidden per clip), fixed epochs, fixed seed. About 40k parameters for tiny.en.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from emovox.models.sequences import (
    SequenceHead,
    batch_bounds,
    check_sequences,
    encode_labels,
)
from emovox.models.torch_utils import balanced_cross_entropy, require_torch, train_epochs


def _torch():
    return require_torch("the attentive head")


def _build_net(n_layers: int, dim: int, hidden: int, n_classes: int, dropout: float):
    torch = _torch()
    nn = torch.nn

    class AttentiveNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer_logits = nn.Parameter(torch.zeros(n_layers))
            self.proj = nn.Linear(dim, hidden)
            self.score = nn.Linear(hidden, 1)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(2 * hidden, n_classes)

        def forward(self, x, mask):  # x: (B, L, T, D), mask: (B, T) bool (True = frame)
            w = torch.softmax(self.layer_logits, 0)
            h = torch.einsum("l,bltd->btd", w, x)
            h = torch.nn.functional.gelu(self.proj(h))
            a = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
            a = torch.softmax(a, dim=1).unsqueeze(-1)
            mu = (a * h).sum(1)
            var = (a * (h - mu.unsqueeze(1)) ** 2).sum(1)
            pooled = torch.cat([mu, torch.sqrt(var + 1e-5)], dim=1)
            return self.out(self.drop(pooled))

    return AttentiveNet()


class AttentiveHead(SequenceHead):
    """Learned layer weights + attentive statistics pooling over frozen encoder frames."""

    PARAMS = (
        "hidden",
        "epochs",
        "lr",
        "weight_decay",
        "batch_size",
        "dropout",
        "frame_dropout",
        "max_frames",
        "seed",
        "threads",
    )

    def __init__(
        self,
        hidden: int = 128,
        epochs: int = 30,
        lr: float = 2e-3,
        weight_decay: float = 0.05,
        batch_size: int = 64,
        dropout: float = 0.3,
        frame_dropout: float = 0.2,
        max_frames: int = 400,
        seed: int = 0,
        threads: int | None = None,
    ):
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.dropout = dropout
        self.frame_dropout = frame_dropout
        self.max_frames = max_frames
        self.seed = seed
        self.threads = threads

    # ------------------------------------------------------------------ data
    @staticmethod
    def _check(X: Sequence[np.ndarray]) -> list[np.ndarray]:
        return check_sequences(
            X,
            ndim=3,
            time_axis=1,
            expected="an (n_layers, T, D) frame array",
            hint="the attentive head takes frame-level embeddings "
            "(extract_embeddings with stats=FRAMES)",
        )

    def _batch(self, seqs: list[np.ndarray], idx: Sequence[int], rng: np.random.Generator | None):
        torch = _torch()
        parts = []
        for i in idx:
            x = seqs[i]
            t = x.shape[1]
            if t > self.max_frames:  # a random window in training, the middle one otherwise
                s = (
                    int(rng.integers(0, t - self.max_frames + 1))
                    if rng
                    else (t - self.max_frames) // 2
                )
                x = x[:, s : s + self.max_frames]
            parts.append(x)
        t_max = max(p.shape[1] for p in parts)
        L, D = parts[0].shape[0], parts[0].shape[2]
        xb = np.zeros((len(parts), L, t_max, D), dtype=np.float32)
        mask = np.zeros((len(parts), t_max), dtype=bool)
        for j, p in enumerate(parts):
            xb[j, :, : p.shape[1]] = p
            mask[j, : p.shape[1]] = True
            if rng is not None and self.frame_dropout > 0 and p.shape[1] > 4:
                drop = rng.random(p.shape[1]) < self.frame_dropout
                mask[j, : p.shape[1]] &= ~drop
        xb = (xb - self.mean_) / self.scale_
        xb *= mask[:, None, :, None]
        return torch.from_numpy(xb), torch.from_numpy(mask)

    # ------------------------------------------------------------------ API
    def fit(self, X: Sequence[np.ndarray], y: Sequence[Any]) -> AttentiveHead:
        """Train on per-clip frame sequences ``X`` with labels ``y`` (fixed epochs and seed)."""
        torch = _torch()
        seqs = self._check(X)
        self.classes_, yi = encode_labels(y, len(seqs))
        if self.threads:
            torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        # per-layer, per-unit standardisation from training frames
        L, D = seqs[0].shape[0], seqs[0].shape[2]
        s1 = np.zeros((L, D))
        s2 = np.zeros((L, D))
        n = 0
        for x in seqs:
            xf = x.astype(np.float64)
            s1 += xf.sum(1)
            s2 += (xf**2).sum(1)
            n += x.shape[1]
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-8))
        self.mean_ = mean[None, :, None, :].astype(np.float32)
        self.scale_ = std[None, :, None, :].astype(np.float32)
        net = _build_net(L, D, self.hidden, len(self.classes_), self.dropout)
        loss_fn = balanced_cross_entropy(yi, len(self.classes_))
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        bounds = batch_bounds(len(seqs), self.batch_size)
        steps_per_epoch = len(bounds)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.lr, total_steps=max(self.epochs * steps_per_epoch, 1), pct_start=0.1
        )
        lengths = np.array([x.shape[1] for x in seqs])
        yt = torch.from_numpy(yi.astype(np.int64))
        self.loss_curve_ = train_epochs(
            net,
            epochs=self.epochs,
            lengths=lengths,
            bounds=bounds,
            jitter=8,
            make_batch=lambda idx: self._batch(seqs, idx, rng),
            targets=yt,
            loss_fn=loss_fn,
            opt=opt,
            sched=sched,
            rng=rng,
        )
        self.net_ = net
        self.layer_weights_ = torch.softmax(net.layer_logits.detach(), 0).numpy()
        return self

    def predict_proba(self, X: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(n_clips, n_classes)``, columns in ``classes_`` order."""
        torch = _torch()
        if not hasattr(self, "net_"):
            raise RuntimeError("AttentiveHead is not fitted yet: call fit first")
        seqs = self._check(X)
        order = np.argsort([x.shape[1] for x in seqs], kind="stable")
        out = np.zeros((len(seqs), len(self.classes_)), dtype=np.float64)
        with torch.inference_mode():
            for i in range(0, len(order), self.batch_size):
                idx = order[i : i + self.batch_size]
                xb, mb = self._batch(seqs, idx, None)
                out[idx] = torch.softmax(self.net_(xb, mb), dim=1).double().numpy()
        return out
