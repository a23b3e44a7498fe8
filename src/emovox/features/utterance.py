"""One fixed-length feature vector per clip, from named feature groups and their settings."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from emovox.features.functionals import DEFAULT_STATS, check_stats, functional_names, functionals
from emovox.features.lpc import autocorrelation, levinson, lpc_to_cepstrum
from emovox.features.plp import plp
from emovox.features.prosody import PROSODIC_NAMES, prosodic
from emovox.features.spectral import (
    SPECTRAL_SHAPE_NAMES,
    log_mel,
    mfcc,
    power_spectrogram,
    spectral_shape,
)

#: Bump for a change in values that :func:`feature_code_version` cannot see (a dependency's
#: behaviour, say); edits of the feature code itself change the cache key on their own.
FEATURE_VERSION = 1

#: The modules whose code computes an utterance vector from a file (their source text gives
#: :func:`feature_code_version`).
FEATURE_MODULES = (
    "emovox.audio.decode",
    "emovox.audio.preprocess",
    "emovox.features.functionals",
    "emovox.features.lpc",
    "emovox.features.plp",
    "emovox.features.prosody",
    "emovox.features.spectral",
    "emovox.features.utterance",
)


@lru_cache(maxsize=1)
def feature_code_version() -> str:
    """Hash of the source of :data:`FEATURE_MODULES`: part of :meth:`FeatureConfig.key`."""
    from emovox.features.code_version import source_version

    return source_version(FEATURE_MODULES)


#: Every feature group, in the order they appear in the vector.
GROUPS: tuple[str, ...] = ("mfcc", "logmel", "lpc", "plp", "prosody", "spectral", "egemaps")
DEFAULT_GROUPS = "mfcc,logmel,lpc,plp,prosody,spectral"


class FeatureError(ValueError):
    """Bad feature settings, or an optional feature backend that is not installed."""


def parse_groups(groups: str | Sequence[str]) -> tuple[str, ...]:
    """Feature-group names from a comma string or sequence, in the canonical order."""
    items = groups.split(",") if isinstance(groups, str) else list(groups)
    names = {g.strip().lower() for g in items if g.strip()}
    unknown = sorted(names - set(GROUPS))
    if unknown or not names:
        raise FeatureError(f"unknown feature groups {unknown}; choose from {', '.join(GROUPS)}")
    return tuple(g for g in GROUPS if g in names)


@dataclass(frozen=True)
class FeatureConfig:
    """Which feature groups make the utterance vector, and their parameters.

    ``groups`` is a comma string (a sequence is accepted too); it is normalised to the canonical
    order of :data:`GROUPS` (the order in the vector), so equal sets give equal keys.
    """

    groups: str = DEFAULT_GROUPS
    n_fft: int = 400  # 25 ms at 16 kHz
    hop: int = 160  # 10 ms
    n_mels: int = 64
    n_mfcc: int = 20
    deltas: bool = True
    lpc_order: int = 12
    lpc_cepstra: bool = True  # append LPC-derived cepstra to the LPC group
    plp_order: int = 12
    fmin: float = 60.0  # pitch search range, Hz
    fmax: float = 500.0
    stats: tuple[str, ...] = DEFAULT_STATS  # functionals of the frame-level groups
    logmel_stats: tuple[str, ...] = ("mean", "std")  # the 64 mel bands get fewer

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", ",".join(parse_groups(self.groups)))
        object.__setattr__(self, "stats", check_stats(self.stats))
        object.__setattr__(self, "logmel_stats", check_stats(self.logmel_stats))
        if self.n_fft < 16 or self.n_fft % 2 or self.hop < 1:
            raise FeatureError("n_fft must be even and >= 16, hop >= 1")
        if not 0 < self.fmin < self.fmax:
            raise FeatureError("need 0 < fmin < fmax")
        for name in ("n_mels", "n_mfcc", "lpc_order", "plp_order"):
            if getattr(self, name) < 1:
                raise FeatureError(f"{name} must be >= 1")

    @property
    def group_list(self) -> tuple[str, ...]:
        """The feature groups as a tuple, in vector order."""
        return tuple(self.groups.split(","))

    def to_dict(self) -> dict:
        return asdict(self)

    def code_version(self) -> str:
        """Version of the code computing these features (:func:`feature_code_version`)."""
        return feature_code_version()

    def key(self) -> str:
        """Stable short hash of the settings, :data:`FEATURE_VERSION` and the code version,
        for caches."""
        blob = json.dumps(
            {"v": FEATURE_VERSION, "code": self.code_version(), **self.to_dict()}, sort_keys=True
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@lru_cache(maxsize=2)
def _smile():
    try:
        import opensmile
    except ImportError as exc:
        raise FeatureError(
            "feature group 'egemaps' needs the opensmile package: pip install 'emovox[opensmile]'"
        ) from exc
    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def _group_rows(config: FeatureConfig, group: str) -> list[str]:
    c = config
    if group == "mfcc":
        base = [f"mfcc{i}" for i in range(c.n_mfcc)]
        if c.deltas:
            base += [f"d_mfcc{i}" for i in range(c.n_mfcc)]
            base += [f"dd_mfcc{i}" for i in range(c.n_mfcc)]
        return base
    if group == "logmel":
        return [f"logmel{i}" for i in range(c.n_mels)]
    if group == "lpc":
        rows = [f"lpc{i}" for i in range(1, c.lpc_order + 1)]
        if c.lpc_cepstra:
            rows += [f"lpcc{i}" for i in range(1, c.lpc_order + 1)]
        return rows
    if group == "plp":
        return [f"plp{i}" for i in range(c.plp_order + 1)]
    if group == "spectral":
        return [f"spectral_{n}" for n in SPECTRAL_SHAPE_NAMES]
    raise KeyError(group)


def feature_names(config: FeatureConfig | None = None) -> list[str]:
    """Names of the entries of :func:`utterance_vector`, in order."""
    config = config or FeatureConfig()
    names: list[str] = []
    for g in config.group_list:
        if g == "prosody":
            names += [f"prosody_{n}" for n in PROSODIC_NAMES]
        elif g == "egemaps":
            names += [f"egemaps_{n}" for n in _smile().feature_names]
        else:
            stats = config.logmel_stats if g == "logmel" else config.stats
            names += functional_names(_group_rows(config, g), stats)
    return names


def utterance_vector(
    y: np.ndarray, sr: int = 16_000, config: FeatureConfig | None = None
) -> np.ndarray:
    """The clip's feature vector (float32, finite), ``len(feature_names(config))`` long.

    One power spectrogram is shared by the log-mel, MFCC, LPC, PLP and spectral-shape groups.
    """
    config = config or FeatureConfig()
    y = np.ascontiguousarray(y, dtype=np.float32).ravel()
    c = config
    rate = sr / c.hop
    S = power_spectrogram(y, c.n_fft, c.hop)
    mel_db = None
    parts: list[np.ndarray] = []
    for g in c.group_list:
        if g in ("mfcc", "logmel") and mel_db is None:
            mel_db = log_mel(y, sr, c.n_mels, c.n_fft, c.hop, S=S)
        if g == "mfcc":
            frames = mfcc(y, sr, c.n_mfcc, c.deltas, mel_db=mel_db)
        elif g == "logmel":
            parts.append(functionals(mel_db, c.logmel_stats, rate))
            continue
        elif g == "lpc":
            a, _ = levinson(autocorrelation(y, c.lpc_order, c.n_fft, c.hop, S=S), c.lpc_order)
            rows = [a[:, 1:]]
            if c.lpc_cepstra:
                rows.append(lpc_to_cepstrum(a, c.lpc_order))
            frames = np.concatenate(rows, axis=1).T
        elif g == "plp":
            frames = plp(y, sr, c.plp_order, n_fft=c.n_fft, hop=c.hop, S=S)
        elif g == "spectral":
            frames = spectral_shape(y, sr, c.n_fft, c.hop, S=S)
        elif g == "prosody":
            p = prosodic(y, sr, c.fmin, c.fmax, c.hop, c.n_fft)
            parts.append(np.array([p[k] for k in PROSODIC_NAMES], dtype=np.float32))
            continue
        elif g == "egemaps":
            df = _smile().process_signal(y, sr)
            parts.append(df.to_numpy(dtype=np.float32).reshape(-1))
            continue
        else:  # pragma: no cover - groups are validated
            raise FeatureError(g)
        parts.append(functionals(frames, c.stats, rate))
    vec = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
