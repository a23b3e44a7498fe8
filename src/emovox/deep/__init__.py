"""Deep models for speech emotion recognition: a compact CNN and ResNet-34 on log-mel input,
training-time augmentation, and a resumable, pickle-free trainer.

Modules: ``nets`` (architectures), ``augment``, ``config`` (:class:`TrainConfig`), ``data``
(clips as feature segments), ``schedule``, ``predict``, ``checkpoint`` (run files,
:func:`load_model`), ``curves``, ``progress`` and ``trainer`` (:class:`Trainer`).
"""

from __future__ import annotations

import warnings
from typing import Any

from emovox.deep.augment import (
    AugmentConfig,
    add_noise,
    augment_spectrogram,
    augment_waveform,
    babble_noise,
    gain,
    image_shift_scale,
    mixup,
    pink_noise,
    pitch_shift,
    reverb,
    spec_augment,
    speed,
    time_shift,
    wsola_stretch,
)
from emovox.deep.checkpoint import (
    CHECKPOINT,
    FORMAT,
    MODEL,
    MODEL_JSON,
    STATE,
    TrainedNet,
    load_model,
    read_checkpoint,
)
from emovox.deep.config import ADDED_DEFAULTS, PRECISIONS, TrainConfig
from emovox.deep.data import (
    ClipDataset,
    FeatureFn,
    default_feature_fn,
    numpy_single_thread,
    standardize,
)
from emovox.deep.nets import (
    ARCHITECTURES,
    RESNET34_URL,
    EmotionCNN,
    ResNet,
    architecture_of,
    build_model,
    freeze_body,
    load_torchvision_weights,
    n_parameters,
    param_groups_for_finetune,
    resnet34,
)
from emovox.deep.predict import autocast, predict_proba, resolve_device
from emovox.deep.schedule import lr_factor
from emovox.deep.trainer import FitContext, FitResult, Trainer
from emovox.evaluation.metrics import unweighted_accuracy

__all__ = [
    "ADDED_DEFAULTS",
    "ARCHITECTURES",
    "CHECKPOINT",
    "FORMAT",
    "MODEL",
    "MODEL_JSON",
    "PRECISIONS",
    "RESNET34_URL",
    "AugmentConfig",
    "ClipDataset",
    "STATE",
    "EmotionCNN",
    "FeatureFn",
    "FitContext",
    "FitResult",
    "ResNet",
    "TrainConfig",
    "TrainedNet",
    "Trainer",
    "add_noise",
    "architecture_of",
    "augment_spectrogram",
    "autocast",
    "augment_waveform",
    "babble_noise",
    "build_model",
    "default_feature_fn",
    "freeze_body",
    "gain",
    "image_shift_scale",
    "load_model",
    "load_torchvision_weights",
    "lr_factor",
    "mixup",
    "n_parameters",
    "numpy_single_thread",
    "param_groups_for_finetune",
    "pink_noise",
    "pitch_shift",
    "predict_proba",
    "read_checkpoint",
    "resnet34",
    "resolve_device",
    "reverb",
    "spec_augment",
    "speed",
    "standardize",
    "time_shift",
    "unweighted_accuracy",
    "wsola_stretch",
]


def __getattr__(name: str) -> Any:
    """Deprecated names: ``LoadedModel`` is now :class:`TrainedNet`."""
    if name == "LoadedModel":
        warnings.warn(
            "emovox.deep.LoadedModel was renamed TrainedNet; the old name will be removed in the "
            "next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return TrainedNet
    raise AttributeError(f"module 'emovox.deep' has no attribute {name!r}")
