"""Audio in: decode any file, bytes or array to 16 kHz mono float32, and clean it up.

:mod:`.decode` (files, bytes, the one ``SAMPLE_RATE``), :mod:`.preprocess` (checks, trim,
loudness, denoise).
"""

from emovox.audio.decode import (
    SAMPLE_RATE,
    AudioError,
    AudioSource,
    content_hash,
    decode,
    sound_handle,
    source_name,
)
from emovox.audio.preprocess import (
    Preprocess,
    load_clip,
    normalize_loudness,
    preprocess,
    reduce_noise,
    trim_silence,
)

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "AudioSource",
    "Preprocess",
    "content_hash",
    "decode",
    "load_clip",
    "normalize_loudness",
    "preprocess",
    "reduce_noise",
    "sound_handle",
    "source_name",
    "trim_silence",
]
