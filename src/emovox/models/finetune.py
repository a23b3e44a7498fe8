"""Fine-tuning the top blocks of a Whisper encoder, with scikit-learn's ``fit``/``predict``/
``predict_proba`` face.

The encoder's lower blocks stay frozen, so their output is computed once and cached on disk
(:func:`emovox.features.embeddings.top_input_stats`: the hidden states *entering* the top ``blocks``
blocks, 50 frames per second, float16). Input is therefore a sequence of per-clip arrays
``(T, D)``; clips may have any length. The model holds:

1. a trainable copy of the encoder's top ``blocks`` transformer blocks and its final layer norm
   (``ln_post``), initialised from the pretrained weights (the project's own Whisper block,
   :class:`emovox.encoders.whisper.ResidualAttentionBlock`, so the weights are the real ones);
2. a pooling head: the mean and standard deviation over time (``pool="stats"``) or attentive
   statistics pooling (``pool="attentive"``), padding masked out;
3. batch normalisation of the pooled statistics (``norm``, on by default: the head sees
   standardised statistics, as the logistic head does), then one linear classifier with
   dropout before it; ``skip`` also pools the frozen input of the top blocks and puts its
   statistics beside those of the trained blocks' output.

Training (training clips only): AdamW with a lower learning rate for the pretrained blocks
(``block_lr``) than for the new head (``lr``), linear warm-up then cosine decay,
class-balanced cross-entropy, fixed epochs and seed, a random crop of at most ``max_frames``
frames per clip, and SpecAugment-like time masks: ``time_masks`` spans of up to
``time_mask_width`` frames per clip are hidden from attention and pooling. Prediction runs on
whole clips (clips longer than the encoder's context, 30 s, are run in 30 s pieces, as the
frozen encoder ran them, and pooled together).
"""

from __future__ import annotations

import copy
import math
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

_PARAMS = (
    "encoder",
    "blocks",
    "epochs",
    "lr",
    "block_lr",
    "weight_decay",
    "batch_size",
    "dropout",
    "max_frames",
    "time_masks",
    "time_mask_width",
    "pool",
    "norm",
    "skip",
    "warmup",
    "seed",
    "threads",
)


def _flag(value: Any) -> bool:
    """A yes/no setting from Python, TOML or ``--param`` (``norm=0``, ``norm=false``)."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a yes/no value (true/false, 1/0), got {value!r}")
    return bool(value)


def _build_net(
    blocks: list[Any],
    ln_post: Any,
    n_classes: int,
    pool: str,
    dropout: float,
    norm: bool = False,
    skip: bool = False,
):
    torch = require_torch("the fine-tuned encoder head")
    nn = torch.nn
    dim = int(ln_post.normalized_shape[0])

    class FinetuneNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(blocks)
            self.ln_post = ln_post
            self.score = (
                nn.Sequential(nn.Linear(dim, 128), nn.Tanh(), nn.Linear(128, 1))
                if pool == "attentive"
                else None
            )
            self.skip = skip
            n_pooled = (4 if skip else 2) * dim
            self.norm = nn.BatchNorm1d(n_pooled) if norm else nn.Identity()
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(n_pooled, n_classes)

        def encode(self, x, mask):  # x: (B, T, D), mask: (B, T) bool (True = frame)
            attn_mask = mask[:, None, None, :]
            for block in self.blocks:
                x = block(x, attn_mask)
            return self.ln_post(x)

        def pool(self, h, mask):
            if self.score is None:
                w = mask.to(h.dtype) / mask.sum(1, keepdim=True).clamp(min=1).to(h.dtype)
            else:
                a = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
                w = torch.softmax(a, dim=1)
            w = w.unsqueeze(-1)
            mu = (w * h).sum(1)
            var = (w * (h - mu.unsqueeze(1)) ** 2).sum(1)
            return torch.cat([mu, torch.sqrt(var + 1e-5)], dim=1)

        def classify(self, h, mask, x=None):
            pooled = self.pool(h, mask)
            if self.skip:  # the frozen input's statistics beside the trained blocks' output
                pooled = torch.cat([pooled, self.pool(x, mask)], dim=1)
            return self.out(self.drop(self.norm(pooled)))

        def forward(self, x, mask):
            return self.classify(self.encode(x, mask), mask, x)

    return FinetuneNet()


class FinetuneHead(SequenceHead):
    """Fine-tunes the top ``blocks`` blocks of a Whisper encoder plus a pooling head.

    ``encoder`` is a source :func:`emovox.features.embeddings.load_encoder` reads (``"tiny.en"``, a
    model path) or a :class:`~emovox.encoders.WhisperEncoder`; the experiment passes the one
    its ``--features whisper:...`` names. The encoder itself is never modified: its top
    blocks are copied.
    """

    PARAMS = _PARAMS

    def __init__(
        self,
        encoder: Any = "tiny.en",
        blocks: int = 1,
        epochs: int = 6,
        lr: float = 1e-3,
        block_lr: float = 1e-4,
        weight_decay: float = 0.01,
        batch_size: int = 16,
        dropout: float = 0.2,
        max_frames: int = 200,
        time_masks: int = 2,
        time_mask_width: int = 10,
        pool: str = "stats",
        norm: bool = True,
        skip: bool = False,
        warmup: float = 0.1,
        seed: int = 0,
        threads: int | None = None,
    ):
        self.encoder = encoder
        self.blocks = blocks
        self.epochs = epochs
        self.lr = lr
        self.block_lr = block_lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.dropout = dropout
        self.max_frames = max_frames
        self.time_masks = time_masks
        self.time_mask_width = time_mask_width
        self.pool = pool
        self.norm = norm
        self.skip = skip
        self.warmup = warmup
        self.seed = seed
        self.threads = threads

    # ------------------------------------------------------------------ encoder
    def _encoder(self) -> Any:
        if isinstance(self.encoder, str):
            from emovox.features.embeddings import load_encoder

            return load_encoder(self.encoder)
        return self.encoder

    def pretrained_parts(self) -> tuple[list[Any], Any, int]:
        """Fresh copies of the encoder's top ``blocks`` blocks and ``ln_post``, float32, and
        its context length in frames."""
        enc = self._encoder()
        n = int(self.blocks)
        if not 1 <= n <= len(enc.blocks):
            raise ValueError(f"blocks must be between 1 and {len(enc.blocks)}, got {self.blocks}")
        top = [copy.deepcopy(b).float() for b in enc.blocks[len(enc.blocks) - n :]]
        return top, copy.deepcopy(enc.ln_post).float(), int(enc.dims.n_ctx)

    # ------------------------------------------------------------------ data
    @staticmethod
    def _check(X: Sequence[np.ndarray]) -> list[np.ndarray]:
        return check_sequences(
            X,
            ndim=2,
            time_axis=0,
            expected="a (T, D) array of hidden states",
            hint="the fine-tuning model takes the input of the top blocks "
            "(extract_embeddings with stats=top_input_stats(blocks))",
        )

    def _mask_spans(self, t: int, rng: np.random.Generator) -> np.ndarray:
        """SpecAugment-like time masks: True where a frame stays visible."""
        keep = np.ones(t, dtype=bool)
        width = min(int(self.time_mask_width), t // (2 * max(int(self.time_masks), 1)))
        if width < 1:
            return keep
        for _ in range(int(self.time_masks)):
            w = int(rng.integers(0, width + 1))
            s = int(rng.integers(0, t - w + 1))
            keep[s : s + w] = False
        return keep

    def _batch(self, parts: list[np.ndarray], rng: np.random.Generator | None):
        torch = require_torch("the fine-tuned encoder head")
        t_max = max(p.shape[0] for p in parts)
        xb = np.zeros((len(parts), t_max, parts[0].shape[1]), dtype=np.float32)
        mask = np.zeros((len(parts), t_max), dtype=bool)
        for j, p in enumerate(parts):
            t = p.shape[0]
            xb[j, :t] = p
            mask[j, :t] = True if rng is None else self._mask_spans(t, rng)
        return torch.from_numpy(xb), torch.from_numpy(mask)

    def _crop(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        t = x.shape[0]
        if t <= self.max_frames:
            return x
        s = int(rng.integers(0, t - self.max_frames + 1))
        return x[s : s + self.max_frames]

    # ------------------------------------------------------------------ API
    def fit(self, X: Sequence[np.ndarray], y: Sequence[Any]) -> FinetuneHead:
        """Train on per-clip frame sequences ``X`` with labels ``y`` (fixed epochs and seed)."""
        torch = require_torch("the fine-tuned encoder head")
        seqs = self._check(X)
        if self.pool not in ("stats", "attentive"):
            raise ValueError(f"pool must be 'stats' or 'attentive', got {self.pool!r}")
        self.classes_, yi = encode_labels(y, len(seqs))
        if int(self.batch_size) < 2 and _flag(self.norm):
            raise ValueError(
                "batch_size must be at least 2 with norm on (batch normalisation needs two "
                "clips per batch); pass norm=false for batches of one"
            )
        if self.threads:
            torch.set_num_threads(int(self.threads))
        # load first: building an encoder draws from torch's generator, seeding comes after
        blocks, ln_post, self.n_ctx_ = self.pretrained_parts()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        dim = int(ln_post.normalized_shape[0])
        if seqs[0].shape[1] != dim:
            raise ValueError(
                f"clips have {seqs[0].shape[1]} units but the encoder's blocks take {dim}: "
                "the cached hidden states come from another encoder"
            )
        net = _build_net(
            blocks,
            ln_post,
            len(self.classes_),
            self.pool,
            self.dropout,
            _flag(self.norm),
            _flag(self.skip),
        )
        loss_fn = balanced_cross_entropy(yi, len(self.classes_))
        pretrained = [p for m in (net.blocks, net.ln_post) for p in m.parameters()]
        new = [p for n, p in net.named_parameters() if not n.startswith(("blocks.", "ln_post."))]
        opt = torch.optim.AdamW(
            [{"params": pretrained, "lr": self.block_lr}, {"params": new, "lr": self.lr}],
            weight_decay=self.weight_decay,
        )
        bounds = batch_bounds(len(seqs), int(self.batch_size), join_single=True)
        steps_per_epoch = len(bounds)
        total = max(int(self.epochs) * steps_per_epoch, 1)
        warm = max(int(self.warmup * total), 1)

        def factor(step: int) -> float:  # linear warm-up, then cosine decay to zero
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        lengths = np.array([min(x.shape[0], self.max_frames) for x in seqs])
        yt = torch.from_numpy(yi.astype(np.int64))
        self.loss_curve_ = train_epochs(
            net,
            epochs=int(self.epochs),
            lengths=lengths,
            bounds=bounds,
            jitter=16,
            make_batch=lambda idx: self._batch([self._crop(seqs[i], rng) for i in idx], rng),
            targets=yt,
            loss_fn=loss_fn,
            opt=opt,
            sched=sched,
            rng=rng,
        )
        self.net_ = net
        return self

    def _encode_long(self, x: np.ndarray):
        """One clip longer than the context: its pieces through the blocks, then joined."""
        torch = require_torch("the fine-tuned encoder head")
        pieces = []
        for s in range(0, x.shape[0], self.n_ctx_):
            xb, mb = self._batch([x[s : s + self.n_ctx_]], None)
            pieces.append(self.net_.encode(xb, mb))
        h = torch.cat(pieces, dim=1)
        x_all = torch.from_numpy(x.astype(np.float32))[None]
        return h, torch.ones(h.shape[:2], dtype=torch.bool), x_all

    def predict_proba(self, X: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(n_clips, n_classes)``, columns in ``classes_`` order."""
        torch = require_torch("the fine-tuned encoder head")
        if not hasattr(self, "net_"):
            raise RuntimeError("FinetuneHead is not fitted yet: call fit first")
        seqs = self._check(X)
        if self.threads:
            torch.set_num_threads(int(self.threads))
        lengths = np.array([x.shape[0] for x in seqs])
        out = np.zeros((len(seqs), len(self.classes_)), dtype=np.float64)
        with torch.inference_mode():
            for i in np.flatnonzero(lengths > self.n_ctx_):
                h, m, x = self._encode_long(seqs[i])
                out[i] = torch.softmax(self.net_.classify(h, m, x), dim=1)[0].double().numpy()
            order = [i for i in np.argsort(lengths, kind="stable") if lengths[i] <= self.n_ctx_]
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                xb, mb = self._batch([seqs[i] for i in idx], None)
                out[idx] = torch.softmax(self.net_(xb, mb), dim=1).double().numpy()
        return out
