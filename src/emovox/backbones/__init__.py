"""Pretrained speech encoders (backbones) for transfer learning; needs torch.

Whisper's audio encoder in plain torch (:mod:`.whisper`) with loaders for CTranslate2 /
faster-whisper, openai-whisper, Hugging Face and the project's own fp16 format
(:mod:`.convert`).
"""

from .convert import (
    WHISPER_LICENSE_NOTICE,
    export_encoder,
    find_packaged_tiny_en,
    load_whisper_encoder,
    read_ct2_variables,
    read_whisper_state_dict,
)
from .whisper import (
    FRAMES_PER_SECOND,
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    TOKENS_PER_SECOND,
    WHISPER_CONFIGS,
    WhisperDims,
    WhisperEncoder,
    log_mel_spectrogram,
    mel_filters,
    sinusoids,
)

__all__ = [
    "FRAMES_PER_SECOND",
    "HOP_LENGTH",
    "N_FFT",
    "N_MELS",
    "SAMPLE_RATE",
    "TOKENS_PER_SECOND",
    "WHISPER_CONFIGS",
    "WHISPER_LICENSE_NOTICE",
    "WhisperDims",
    "WhisperEncoder",
    "export_encoder",
    "find_packaged_tiny_en",
    "load_whisper_encoder",
    "log_mel_spectrogram",
    "mel_filters",
    "read_ct2_variables",
    "read_whisper_state_dict",
    "sinusoids",
]
