"""A resumable trainer for the deep models, independent of where the clips come from.

The trainer gets lists of 16 kHz float32 waveforms and integer labels. Features (log-mel by
default) are computed on the fly; each training item is a random crop of ``crop_seconds``
(short clips are zero-padded) and is the ONLY place augmentation happens: the training
:class:`ClipDataset` is built with ``train=True`` and an :class:`AugmentConfig`; validation and
test datasets are built with ``train=False``, which refuses any augmentation. Evaluation
averages class probabilities over sliding windows.

Every feature segment (training crop or evaluation window) is floored at ``top_db`` below its
peak and standardised to zero mean and unit variance, so no dataset statistics need storing.

Checkpoints are pickle-free: ``checkpoint.safetensors`` holds the model tensors, the optimizer
tensors (keys ``__optimizer__.*``) and the trainer state as JSON metadata, written atomically
in one file (``trainer_state.json`` is a readable copy). Per-epoch randomness is reseeded from
``(seed, epoch)`` and per-item randomness from ``(seed, epoch, index)``, so a resumed run ends
with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from emovox.deep.augment import AugmentConfig, augment_spectrogram, augment_waveform, mixup
from emovox.deep.nets import architecture_of, build_model, freeze_body, param_groups_for_finetune
from emovox.io import atomic_write_bytes, atomic_write_text

FeatureFn = Callable[[np.ndarray], np.ndarray]

FORMAT = "emovox-deep/1"
CHECKPOINT = "checkpoint.safetensors"
STATE = "trainer_state.json"
MODEL = "model.safetensors"
MODEL_JSON = "model.json"
_OPT = "__optimizer__."
_RNG = "__rng__.torch"
# settings that may change between an interrupted run and its resumption
_RESUME_FREE = {"threads", "device", "eval_batch_size", "workers", "restore_best"}
PRECISIONS = ("fp32", "bf16")
# settings added after runs were made: a run saved without one used this value
ADDED_DEFAULTS: dict[str, Any] = {"norm": "clip", "precision": "fp32", "feature_cache": False}
# log-mel of digital silence (what zero-padding the waveform gives): fills padded frames
_PAD_DB = float(10.0 * np.log10(1e-10))


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The forward-pass context for ``precision``: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class TrainConfig:
    """Training, feature and evaluation settings (saved with every run)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"  # "onecycle" | "cosine"
    warmup_frac: float = 0.3  # onecycle: share of steps rising to lr
    patience: int = 8  # early stopping on val UA; 0 = never stop early
    class_balanced_loss: bool = True
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # 0 = off
    grad_clip: float | None = 5.0
    freeze_epochs: int = 0  # fine-tuning: train only the head ``fc`` for these first epochs
    layer_decay: float | None = None  # fine-tuning: lr x decay per stage towards the input
    crop_seconds: float = 3.0  # random training crop (short clips zero-padded)
    eval_window: float | None = 3.0  # sliding window (s); None = whole clip
    eval_hop: float = 1.5
    eval_batch_size: int = 64
    sample_rate: int = 16_000
    n_mels: int = 64
    n_fft: int = 400
    hop: int = 160
    top_db: float | None = 80.0  # per-segment floor below the peak before standardising
    norm: str = "clip"  # "clip": one mean/std per segment; "band": each mel band's own mean
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    threads: int = 2
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    workers: int = 0  # DataLoader worker processes for training items
    restore_best: bool = True  # leave the best (by val UA) weights in the model after fit
    precision: str = "fp32"  # "fp32" | "bf16" (autocast: ~1.6x faster on CPUs with avx512_bf16)
    # true: compute each clip's log-mel once and crop frames from it when no WAVEFORM
    # augmentation is on (spectrogram augmentation and mixup still run per item); false: the
    # features of every crop are computed afresh (needed when the waveform is augmented)
    feature_cache: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            object.__setattr__(self, "augment", AugmentConfig.from_dict(self.augment))
        if self.schedule not in ("onecycle", "cosine"):
            raise ValueError(f"schedule must be 'onecycle' or 'cosine', got {self.schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("need epochs >= 1 and batch_size >= 2")
        if self.crop_seconds <= 0 or (self.eval_window is not None and self.eval_window <= 0):
            raise ValueError("crop_seconds and eval_window must be positive")
        if self.eval_hop <= 0:
            raise ValueError("eval_hop must be positive")
        if self.norm not in ("clip", "band"):
            raise ValueError(f"norm must be 'clip' or 'band', got {self.norm!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# --------------------------------------------------------------------------- features


def default_feature_fn(cfg: TrainConfig) -> FeatureFn:
    """Log-mel power in dB, ``(n_mels, T)``, with the config's settings."""
    from emovox.features import log_mel

    return partial(log_mel, sr=cfg.sample_rate, n_mels=cfg.n_mels, n_fft=cfg.n_fft, hop=cfg.hop)


def standardize(S: np.ndarray, top_db: float | None = 80.0, norm: str = "clip") -> np.ndarray:
    """Floor at ``top_db`` below the peak, then zero mean and unit variance (float32).

    ``norm="band"`` removes each mel band's own mean over time first (cepstral mean
    normalisation on the spectrogram: a speaker's or channel's fixed spectral tilt goes away).
    """
    S = np.asarray(S, dtype=np.float32)
    if top_db is not None:
        S = np.maximum(S, S.max() - np.float32(top_db))
    if norm == "band":
        S = S - S.mean(axis=1, keepdims=True)
        return (S / (S.std() + 1e-5)).astype(np.float32)
    return ((S - S.mean()) / (S.std() + 1e-5)).astype(np.float32)


def _samples(seconds: float, sr: int) -> int:
    return max(int(round(seconds * sr)), 1)


def _center_pad(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) >= n:
        return y
    out = np.zeros(n, dtype=np.float32)
    start = (n - len(y)) // 2
    out[start : start + len(y)] = y
    return out


def _random_crop(y: np.ndarray, n: int, rng: np.random.Generator, pad: bool) -> np.ndarray:
    """A random ``n``-sample segment (a view); shorter clips are zero-padded at a random offset
    when ``pad``, else returned whole."""
    if len(y) > n:
        start = int(rng.integers(0, len(y) - n + 1))
        return y[start : start + n]
    if not pad or len(y) == n:
        return y
    out = np.zeros(n, dtype=np.float32)
    start = int(rng.integers(0, n - len(y) + 1))
    out[start : start + len(y)] = y
    return out


def _random_crop_frames(S: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-frame segment of ``(F, T)`` features; shorter ones are padded at a random
    offset with the log-mel of silence (as zero-padding the waveform would give)."""
    T = S.shape[-1]
    if T > n:
        start = int(rng.integers(0, T - n + 1))
        return S[..., start : start + n]
    if T == n:
        return S
    out = np.full(S.shape[:-1] + (n,), _PAD_DB, dtype=np.float32)
    start = int(rng.integers(0, n - T + 1))
    out[..., start : start + T] = S
    return out


class ClipDataset(Dataset):
    """Clips as feature segments. ``dataset[i] -> (segments (S, n_mels, T) float32, label)``.

    ``train=True``: one random crop of ``crop_seconds`` per item (``S = 1``), augmented with
    ``augment`` (waveform then spectrogram). ``train=False``: sliding windows over the whole
    clip (short clips centre-padded to one window), never augmented; passing ``augment`` with a
    non-train dataset is an error. Item randomness comes from ``(seed, epoch, index)``.
    """

    def __init__(
        self,
        wavs: Sequence[np.ndarray],
        labels: Sequence[int] | None,
        cfg: TrainConfig,
        feature_fn: FeatureFn | None = None,
        *,
        train: bool,
        augment_cfg: AugmentConfig | None = None,
        babble_pool: Sequence[np.ndarray] | None = None,
        cache_features: bool = False,
    ):
        if not train and augment_cfg is not None and augment_cfg.enabled:
            raise ValueError("augmentation is for training data only (train=False given)")
        if labels is not None and len(labels) != len(wavs):
            raise ValueError(f"{len(wavs)} clips but {len(labels)} labels")
        self.wavs = wavs
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.cfg = cfg
        self.feature_fn = feature_fn or default_feature_fn(cfg)
        self.train = train
        self.augment = bool(train and augment_cfg is not None and augment_cfg.enabled)
        self.augment_cfg = augment_cfg if self.augment else None
        self.babble_pool = babble_pool if self.augment else None
        self.epoch = 0
        # whole-clip features, memoised: valid whenever the waveform itself is never changed
        wave_aug = self.augment_cfg is not None and self.augment_cfg.waveform_enabled
        self.cache_features = bool(cache_features and not wave_aug)
        self._features: dict[int, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.wavs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        label = -1 if self.labels is None else int(self.labels[i])
        y = np.asarray(self.wavs[i], dtype=np.float32)
        if self.train:
            return self._train_item(i, y)[None], label
        return self._eval_segments(i, y), label

    def _clip_features(self, i: int, y: np.ndarray) -> np.ndarray:
        """Features of the whole clip ``i``, computed once (evaluation: centre-padded to one
        window, as without the cache; training: as is, crops pad at a random offset)."""
        S = self._features.get(i)
        if S is None:
            S = self.feature_fn(y if self.train else self._eval_padded(y))
            self._features[i] = S
        return S

    def fill_cache(self) -> None:
        """Compute every clip's features now (DataLoader workers, which are new processes each
        epoch, then inherit them instead of filling copies that are thrown away)."""
        if self.cache_features:
            for i in range(len(self.wavs)):
                self._clip_features(i, np.asarray(self.wavs[i], dtype=np.float32))

    def _eval_padded(self, y: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        win_s = cfg.crop_seconds if cfg.eval_window is None else cfg.eval_window
        return _center_pad(y, _samples(win_s, cfg.sample_rate))

    def _train_item(self, i: int, y: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.epoch, 1, i])
        n = _samples(cfg.crop_seconds, cfg.sample_rate)
        if self.cache_features:
            full = self._clip_features(i, y)
            S = _random_crop_frames(full, 1 + n // cfg.hop, rng)
            S = standardize(S, cfg.top_db, cfg.norm)
            if self.augment:
                assert self.augment_cfg is not None
                S = augment_spectrogram(S, rng, self.augment_cfg)
            return S
        if self.augment:
            assert self.augment_cfg is not None
            y = _random_crop(y, int(n * 1.25), rng, pad=False)  # room for speed-up
            y = augment_waveform(y, cfg.sample_rate, rng, self.augment_cfg, self.babble_pool)
        S = standardize(self.feature_fn(_random_crop(y, n, rng, pad=True)), cfg.top_db, cfg.norm)
        if self.augment:
            assert self.augment_cfg is not None
            S = augment_spectrogram(S, rng, self.augment_cfg)
        return S

    def _eval_segments(self, i: int, y: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if self.cache_features:
            full = self._clip_features(i, y)
        else:
            full = self.feature_fn(self._eval_padded(y))
        if cfg.eval_window is None:
            return standardize(full, cfg.top_db, cfg.norm)[None]
        w = 1 + _samples(cfg.eval_window, cfg.sample_rate) // cfg.hop
        step = max(1, int(round(cfg.eval_hop * cfg.sample_rate / cfg.hop)))
        T = full.shape[-1]
        if T <= w:
            return standardize(full, cfg.top_db, cfg.norm)[None]
        starts = list(range(0, T - w + 1, step))
        if starts[-1] != T - w:
            starts.append(T - w)
        return np.stack([standardize(full[:, s : s + w], cfg.top_db, cfg.norm) for s in starts])


def _collate(items: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.stack([seg[0] for seg, _ in items]))[:, None]
    return x, torch.tensor([lab for _, lab in items], dtype=torch.int64)


# --------------------------------------------------------------------------- inference


def numpy_single_thread() -> contextlib.AbstractContextManager:
    """Limit numpy/scipy BLAS to one thread: next to torch's OpenMP threads a multi-threaded
    OpenBLAS makes per-clip feature extraction ~20x slower on a small CPU."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _worker_init(_: int) -> None:
    numpy_single_thread()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def _predict_dataset(
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
        return _predict_dataset(model, ds, cfg.eval_batch_size, _model_device(model))


def unweighted_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """UA: mean recall over the classes present in ``y_true`` (balanced accuracy)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


# --------------------------------------------------------------------------- schedule


def _cos(a: float, b: float, p: float) -> float:
    return b + (a - b) * (1 + math.cos(math.pi * min(max(p, 0.0), 1.0))) / 2


def lr_factor(step: int, total: int, schedule: str, warmup_frac: float = 0.3) -> float:
    """Learning-rate multiplier at optimizer ``step`` of ``total``.

    ``onecycle``: cosine rise from 1/25 to 1 over ``warmup_frac`` of the steps, then cosine
    decay to 1/25e4 (torch's OneCycleLR defaults); ``cosine``: 2 % linear warm-up, then
    cosine decay to 0.
    """
    if schedule == "onecycle":
        w = max(1, int(warmup_frac * total))
        if step < w:
            return _cos(1 / 25, 1.0, step / w)
        return _cos(1.0, 1 / 25e4, (step - w) / max(1, total - w))
    w = max(1, int(0.02 * total))
    if step < w:
        return (step + 1) / w
    return _cos(1.0, 0.0, (step - w) / max(1, total - w))


# --------------------------------------------------------------------------- files


def _save_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save(tensors, metadata=meta))


def _model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def _optimizer_to_parts(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
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


def _optimizer_from_parts(tensors: dict[str, torch.Tensor], info: dict) -> dict[str, Any]:
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


def _read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "trainer_state" not in meta:
        raise ValueError(f"{path}: not an emovox training checkpoint")
    return load_file(str(path)), json.loads(meta["trainer_state"])


def _plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ep = [h["epoch"] for h in history]
    ax1.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    if any(h["val_loss"] is not None for h in history):
        ax1.plot(ep, [h["val_loss"] for h in history], "s-", label="val loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.legend()
    if any(h["val_ua"] is not None for h in history):
        ax2.plot(ep, [h["val_ua"] for h in history], "o-", label="val UA")
        ax2.plot(ep, [h["val_wa"] for h in history], "s--", label="val WA")
        ax2.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- trainer


@dataclass
class FitResult:
    """Outcome of :meth:`Trainer.fit`."""

    run_dir: Path
    best_ua: float | None
    best_epoch: int | None
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, Any]]


class Trainer:
    """Train a model on waveform lists; see the module docstring for the data flow.

    ``on_epoch_end(record)`` (optional) is called after each epoch's checkpoint is written;
    an exception raised there interrupts training with the checkpoint intact.
    """

    def __init__(
        self,
        cfg: TrainConfig | None = None,
        feature_fn: FeatureFn | None = None,
        on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.cfg = cfg or TrainConfig()
        self.custom_features = feature_fn is not None
        self.feature_fn = feature_fn or default_feature_fn(self.cfg)
        self.on_epoch_end = on_epoch_end

    # ---- helpers

    def _class_weights(self, y: np.ndarray, k: int) -> torch.Tensor:
        if not self.cfg.class_balanced_loss:
            return torch.ones(k)
        counts = np.bincount(y, minlength=k).astype(np.float64)
        w = np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 1.0)
        return torch.tensor(w, dtype=torch.float32)

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        cfg = self.cfg
        if cfg.layer_decay is not None:
            groups = param_groups_for_finetune(model, cfg.lr, cfg.layer_decay)
        else:
            groups = [{"params": list(model.parameters()), "lr": cfg.lr, "name": "all"}]
        for g in groups:
            g["base_lr"] = g["lr"]
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _train_forward(self, model: nn.Module) -> nn.Module:
        """The module training batches go through: ``model`` itself (a hook for
        :mod:`emovox.scale.ddp`, which wraps it in DistributedDataParallel)."""
        return model

    def _batches(self, n: int, rng: np.random.Generator) -> list[list[int]]:
        order = rng.permutation(n).tolist()
        bs = self.cfg.batch_size
        out = [order[i : i + bs] for i in range(0, n, bs)]
        if out and len(out[-1]) < 2:  # BatchNorm needs 2+ items
            out.pop()
        return out

    def _model_meta(
        self, model: nn.Module, labels: list[str], state: dict[str, Any]
    ) -> dict[str, Any]:
        name, kwargs = architecture_of(model)
        cfg = self.cfg
        return {
            "format": FORMAT,
            "architecture": name,
            "kwargs": kwargs,
            "labels": labels,
            "n_classes": len(labels),
            "features": {
                "kind": "custom" if self.custom_features else "log_mel",
                "sample_rate": cfg.sample_rate,
                "n_mels": cfg.n_mels,
                "n_fft": cfg.n_fft,
                "hop": cfg.hop,
                "top_db": cfg.top_db,
                "normalization": "per-segment standardisation",
                "crop_seconds": cfg.crop_seconds,
                "eval_window": cfg.eval_window,
                "eval_hop": cfg.eval_hop,
            },
            "train_config": cfg.to_dict(),
            "best_epoch": state["best_epoch"],
            "val_ua": state["best_ua"],
            "torch_version": torch.__version__,
        }

    def _save_checkpoint(
        self, run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]
    ) -> None:
        tensors = _model_tensors(model)
        opt_tensors, opt_info = _optimizer_to_parts(opt)
        tensors.update(opt_tensors)
        tensors[_RNG] = torch.get_rng_state()
        full = {**state, "optimizer": opt_info}
        _save_safetensors(run_dir / CHECKPOINT, tensors, {"trainer_state": json.dumps(full)})
        atomic_write_text(run_dir / STATE, json.dumps(state, indent=2))

    # ---- main entry

    def fit(
        self,
        train_wavs: Sequence[np.ndarray],
        train_y: Sequence[int],
        val_wavs: Sequence[np.ndarray],
        val_y: Sequence[int],
        model: nn.Module,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        labels: Sequence[str] | None = None,
    ) -> FitResult:
        """Train ``model`` in place, checkpointing to ``run_dir`` every epoch.

        ``resume=True`` continues from ``run_dir/checkpoint.safetensors`` (if present) and
        ends with the same weights as an uninterrupted run. ``labels`` names the classes
        (index order) in ``model.json``. Returns a :class:`FitResult`; the best weights (by val
        UA) are in ``run_dir/model.safetensors`` and, with ``restore_best``, in ``model``.
        """
        with numpy_single_thread():
            return self._fit(
                train_wavs, train_y, val_wavs, val_y, model, Path(run_dir), resume, progress, labels
            )

    def _fit(
        self,
        train_wavs: Sequence[np.ndarray],
        train_y: Sequence[int],
        val_wavs: Sequence[np.ndarray],
        val_y: Sequence[int],
        model: nn.Module,
        run_dir: Path,
        resume: bool,
        progress: bool,
        labels: Sequence[str] | None,
    ) -> FitResult:
        cfg = self.cfg
        torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        run_dir.mkdir(parents=True, exist_ok=True)
        ty = np.asarray(train_y, dtype=np.int64)
        vy = np.asarray(val_y, dtype=np.int64)
        if len(ty) != len(train_wavs) or len(vy) != len(val_wavs):
            raise ValueError("each clip needs exactly one label")
        if len(ty) < 2:
            raise ValueError("need at least 2 training clips")
        k = int(getattr(getattr(model, "fc", None), "out_features", 0)) or int(ty.max()) + 1
        if ty.min() < 0 or max(ty.max(), vy.max() if len(vy) else 0) >= k:
            raise ValueError(f"labels must be integers in [0, {k})")
        names = [str(x) for x in labels] if labels is not None else [str(i) for i in range(k)]
        if len(names) != k:
            raise ValueError(f"{len(names)} label names for {k} classes")
        architecture_of(model)  # fail now, not after an epoch, if model.json cannot be written

        model.to(device=device, memory_format=torch.channels_last)
        opt = self._optimizer(model)
        fingerprint = [len(ty), len(vy), int(ty.sum()), int(vy.sum())]
        state: dict[str, Any] = {
            "format": FORMAT,
            "epoch": 0,  # epochs completed
            "global_step": 0,
            "best_ua": None,
            "best_epoch": None,
            "bad_epochs": 0,
            "finished": False,
            "stopped_early": False,
            "history": [],
            "config": cfg.to_dict(),
            "data": fingerprint,
            "labels": names,
        }
        ckpt = run_dir / CHECKPOINT
        if resume and ckpt.exists():
            state = self._resume(ckpt, model, opt, state, fingerprint)
        elif not resume:
            for name in (CHECKPOINT, STATE, MODEL, MODEL_JSON):
                (run_dir / name).unlink(missing_ok=True)

        # a custom feature function may not be frame-based with cfg.hop: no frame crops then
        cache = cfg.feature_cache and not self.custom_features
        train_ds = ClipDataset(
            train_wavs,
            ty,
            cfg,
            self.feature_fn,
            train=True,
            augment_cfg=cfg.augment,
            babble_pool=train_wavs,  # babble is made of other TRAINING clips only
            cache_features=cache,
        )
        val_ds = ClipDataset(val_wavs, vy, cfg, self.feature_fn, train=False, cache_features=cache)
        if cfg.workers:  # worker processes start from this process's cache each epoch: fill it
            train_ds.fill_cache()
        weights = self._class_weights(ty, k).to(device)
        n_batches = len(self._batches(len(ty), np.random.default_rng(0)))
        total_steps = cfg.epochs * n_batches

        bar = _Progress(progress, cfg.epochs, n_batches)
        try:
            while not state["finished"] and state["epoch"] < cfg.epochs:
                epoch = state["epoch"]
                record = self._run_epoch(
                    model, opt, train_ds, val_ds, vy, weights, k, epoch, state, total_steps, bar
                )
                state["history"].append(record)
                state["epoch"] = epoch + 1
                improved = record["val_ua"] is None or (
                    state["best_ua"] is None or record["val_ua"] > state["best_ua"]
                )
                if improved:
                    state["best_ua"] = record["val_ua"]
                    state["best_epoch"] = epoch + 1
                    state["bad_epochs"] = 0
                    meta = self._model_meta(model, names, state)
                    _save_safetensors(run_dir / MODEL, _model_tensors(model), {"format": FORMAT})
                    atomic_write_text(run_dir / MODEL_JSON, json.dumps(meta, indent=2))
                else:
                    state["bad_epochs"] += 1
                if cfg.patience and state["bad_epochs"] >= cfg.patience:
                    state["stopped_early"] = True
                state["finished"] = state["stopped_early"] or state["epoch"] >= cfg.epochs
                self._save_checkpoint(run_dir, model, opt, state)
                atomic_write_text(run_dir / "history.json", json.dumps(state["history"], indent=2))
                _plot_curves(state["history"], run_dir / "curves.png")
                bar.epoch_done(record, state)
                if self.on_epoch_end is not None:
                    self.on_epoch_end(record)
        finally:
            bar.close()

        if cfg.restore_best and (run_dir / MODEL).exists():
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(run_dir / MODEL)))
        model.eval()
        return FitResult(
            run_dir=run_dir,
            best_ua=state["best_ua"],
            best_epoch=state["best_epoch"],
            epochs_run=state["epoch"],
            stopped_early=state["stopped_early"],
            history=state["history"],
        )

    def _resume(
        self,
        ckpt: Path,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        fresh: dict[str, Any],
        fingerprint: list[int],
    ) -> dict[str, Any]:
        tensors, state = _read_checkpoint(ckpt)
        old = state.get("config", {})
        new = json.loads(json.dumps(self.cfg.to_dict()))  # tuples as lists, like the stored one
        changed = sorted(
            k for k in new if k not in _RESUME_FREE and old.get(k, ADDED_DEFAULTS.get(k)) != new[k]
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
        opt.load_state_dict(_optimizer_from_parts(tensors, state.pop("optimizer")))
        if _RNG in tensors:
            torch.set_rng_state(tensors[_RNG])
        if state["epoch"] < self.cfg.epochs and not state.get("stopped_early"):
            state["finished"] = False
        state["config"] = new
        return {**fresh, **state}

    def _run_epoch(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        train_ds: ClipDataset,
        val_ds: ClipDataset,
        vy: np.ndarray,
        weights: torch.Tensor,
        k: int,
        epoch: int,
        state: dict[str, Any],
        total_steps: int,
        bar: _Progress,
    ) -> dict[str, Any]:
        cfg = self.cfg
        device = _model_device(model)
        t0 = time.perf_counter()
        seed_seq = np.random.SeedSequence([cfg.seed, epoch, 2])
        rng = np.random.default_rng(seed_seq)
        torch.manual_seed(int(seed_seq.generate_state(1, np.uint64)[0] >> 1))
        frozen = epoch < cfg.freeze_epochs
        freeze_body(model, frozen)
        train_ds.set_epoch(epoch)
        batches = self._batches(len(train_ds), rng)
        loader = DataLoader(
            train_ds,
            batch_sampler=batches,
            num_workers=cfg.workers,
            worker_init_fn=_worker_init if cfg.workers else None,
            collate_fn=_collate,
        )
        model.train()
        net = self._train_forward(model)
        bar.start_epoch(epoch)
        losses: list[float] = []
        lr = cfg.lr
        for x, y in loader:
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            y = y.to(device)
            target = F.one_hot(y, k).float()
            if cfg.mixup_alpha > 0:
                perm = torch.from_numpy(rng.permutation(len(y))).to(device)
                x, target, _ = mixup(x, target, x[perm], target[perm], cfg.mixup_alpha, rng)
            factor = lr_factor(state["global_step"], total_steps, cfg.schedule, cfg.warmup_frac)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * factor
            lr = opt.param_groups[-1]["lr"]
            with autocast(device, cfg.precision):
                logits = net(x)
            loss = F.cross_entropy(
                logits.float(), target, weight=weights, label_smoothing=cfg.label_smoothing
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], cfg.grad_clip
                )
            opt.step()
            state["global_step"] += 1
            losses.append(float(loss.detach()))
            bar.step(losses[-1])
        freeze_body(model, False)

        val_ua = val_wa = val_loss = None
        if len(val_ds):
            probs = _predict_dataset(model, val_ds, cfg.eval_batch_size, device)
            pred = probs.argmax(axis=1)
            val_ua = unweighted_accuracy(vy, pred)
            val_wa = float(np.mean(pred == vy))
            val_loss = float(-np.mean(np.log(np.maximum(probs[np.arange(len(vy)), vy], 1e-12))))
        return {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_loss": val_loss,
            "val_ua": val_ua,
            "val_wa": val_wa,
            "lr": lr,
            "frozen": frozen,
            "seconds": round(time.perf_counter() - t0, 2),
        }


class _Progress:
    """A rich progress bar with live loss and val UA (a no-op when disabled)."""

    def __init__(self, enabled: bool, epochs: int, n_batches: int):
        self.enabled, self.epochs, self.n_batches = enabled, epochs, n_batches
        self.info = ""
        if not enabled:
            return
        from rich.progress import TextColumn

        from emovox.progress import progress_bar

        self.p = progress_bar(True, None, TextColumn("{task.fields[info]}"))
        self.task = self.p.add_task("train", total=n_batches, info="")
        self.p.start()
        self.loss_sum = 0.0
        self.n = 0

    def start_epoch(self, epoch: int) -> None:
        if self.enabled:
            self.loss_sum, self.n = 0.0, 0
            desc = f"epoch {epoch + 1}/{self.epochs}"
            self.p.reset(self.task, total=self.n_batches, description=desc)

    def step(self, loss: float) -> None:
        if self.enabled:
            self.loss_sum += loss
            self.n += 1
            info = f"loss {self.loss_sum / self.n:.3f} {self.info}"
            self.p.update(self.task, advance=1, info=info)

    def epoch_done(self, record: dict[str, Any], state: dict[str, Any]) -> None:
        if not self.enabled:
            return
        ua = record["val_ua"]
        best = state["best_ua"]
        self.info = "" if ua is None else f"| val UA {ua:.3f} (best {best:.3f})"
        self.p.console.print(
            f"epoch {record['epoch']}/{self.epochs}  loss {record['train_loss']:.4f}  "
            + ("" if ua is None else f"val loss {record['val_loss']:.4f}  val UA {ua:.3f}  ")
            + f"{record['seconds']:.1f}s"
        )

    def close(self) -> None:
        if self.enabled:
            self.p.stop()


# --------------------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    """A trained model with its labels and settings, ready for :meth:`predict_proba`."""

    model: nn.Module
    labels: list[str]
    config: TrainConfig
    meta: dict[str, Any]

    def predict_proba(
        self, wavs: Sequence[np.ndarray], feature_fn: FeatureFn | None = None
    ) -> np.ndarray:
        if feature_fn is None and self.meta["features"]["kind"] == "custom":
            raise ValueError("this model was trained on custom features: pass feature_fn")
        return predict_proba(self.model, wavs, self.config, feature_fn)

    def predict(self, wavs: Sequence[np.ndarray], feature_fn: FeatureFn | None = None) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(wavs, feature_fn).argmax(axis=1)]


def load_model(run_dir: str | Path, device: str = "cpu") -> LoadedModel:
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
    return LoadedModel(model=model, labels=list(meta["labels"]), config=cfg, meta=meta)
