"""Audio in: decode any file, bytes or array to 16 kHz mono float32, and clean it up.

:mod:`.decode` (files, bytes, the one ``SAMPLE_RATE``), :mod:`.preprocess` (checks, trim,
loudness, denoise), :mod:`.stream` (block-by-block decoding of long recordings),
:mod:`.microphone` (live input), :mod:`.vad` (voice activity detection) and :mod:`.segment`
(cutting a stream into speech segments). Nothing here imports onnxruntime or torch on import.
Functions tests patch (``microphone_available``, ``silero_available``) are not re-exported:
import them from their modules.
"""

from emovox.audio.decode import (
    SAMPLE_RATE,
    AudioError,
    AudioSource,
    AudioTooLong,
    AudioWarning,
    Decoded,
    content_hash,
    decode,
    decode_with_info,
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
from emovox.audio.segment import (
    LONG_SECONDS,
    MAX_WINDOW,
    SegmenterConfig,
    SpeechSegment,
    StreamingSegmenter,
    find_speech,
)
from emovox.audio.stream import (
    clean_reason,
    iter_array,
    iter_blocks,
    open_sound,
    paced,
    probe_seconds,
)
from emovox.audio.vad import VAD, EnergyVAD, SileroVAD, make_vad

__all__ = [
    "LONG_SECONDS",
    "MAX_WINDOW",
    "SAMPLE_RATE",
    "VAD",
    "AudioError",
    "AudioSource",
    "AudioTooLong",
    "AudioWarning",
    "Decoded",
    "EnergyVAD",
    "Preprocess",
    "SegmenterConfig",
    "SileroVAD",
    "SpeechSegment",
    "StreamingSegmenter",
    "clean_reason",
    "content_hash",
    "decode",
    "decode_with_info",
    "find_speech",
    "iter_array",
    "iter_blocks",
    "load_clip",
    "make_vad",
    "normalize_loudness",
    "open_sound",
    "paced",
    "preprocess",
    "probe_seconds",
    "reduce_noise",
    "sound_handle",
    "source_name",
    "trim_silence",
]
