"""Hand-crafted speech features: frame-level contours, utterance vectors, cached extraction.

Plain functions over 1-D float arrays (like librosa); frame-level functions return
``(rows, T)`` with ``T = 1 + len(y) // hop``.
"""

from emovox.features.cache import CacheEntry, FeatureCache, file_sha1, preprocess_key
from emovox.features.extract import ExtractResult, extract, extract_one
from emovox.features.functionals import DEFAULT_STATS, STATS, functional_names, functionals
from emovox.features.lpc import levinson, lpc, lpc_to_cepstrum
from emovox.features.plp import plp
from emovox.features.prosody import (
    PROSODIC_NAMES,
    energy,
    pitch,
    prosodic,
    zero_crossing_rate,
)
from emovox.features.spectral import (
    SPECTRAL_SHAPE_NAMES,
    delta,
    frame_signal,
    log_mel,
    mfcc,
    power_spectrogram,
    spectral_shape,
    spectrogram,
)
from emovox.features.utterance import (
    DEFAULT_GROUPS,
    FEATURE_VERSION,
    GROUPS,
    FeatureConfig,
    FeatureError,
    feature_names,
    parse_groups,
    utterance_vector,
)

__all__ = [
    "DEFAULT_GROUPS",
    "DEFAULT_STATS",
    "FEATURE_VERSION",
    "GROUPS",
    "PROSODIC_NAMES",
    "SPECTRAL_SHAPE_NAMES",
    "STATS",
    "CacheEntry",
    "ExtractResult",
    "FeatureCache",
    "FeatureConfig",
    "FeatureError",
    "delta",
    "energy",
    "extract",
    "extract_one",
    "feature_names",
    "file_sha1",
    "frame_signal",
    "functional_names",
    "functionals",
    "levinson",
    "log_mel",
    "lpc",
    "lpc_to_cepstrum",
    "mfcc",
    "parse_groups",
    "pitch",
    "plp",
    "power_spectrogram",
    "preprocess_key",
    "prosodic",
    "spectral_shape",
    "spectrogram",
    "utterance_vector",
    "zero_crossing_rate",
]
