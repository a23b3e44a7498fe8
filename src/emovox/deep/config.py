"""The deep training settings: :class:`TrainConfig`, saved with every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from emovox.deep.augment import AugmentConfig

#: numeric precisions of the forward pass
PRECISIONS = ("fp32", "bf16")
#: settings added after runs were made: a run saved without one used this value
ADDED_DEFAULTS: dict[str, Any] = {"norm": "clip", "precision": "fp32", "feature_cache": False}
#: settings that may change between an interrupted run and its resumption
RESUME_FREE = frozenset({"threads", "device", "eval_batch_size", "workers", "restore_best"})


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
        """The settings as plain data (the augmentation config as a nested dict)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Settings from :meth:`to_dict`'s output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
