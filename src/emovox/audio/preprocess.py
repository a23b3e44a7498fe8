"""Clip-level preprocessing: silence and length checks, denoise, trim, loudness."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emovox.audio.decode import SAMPLE_RATE, AudioError, AudioSource, decode, source_name


def trim_silence(y: np.ndarray, sr: int = SAMPLE_RATE, top_db: float = 35.0) -> np.ndarray:
    """Cut leading and trailing stretches quieter than ``top_db`` below the clip's peak."""
    frame, hop = int(0.025 * sr), int(0.010 * sr)
    if len(y) < frame:
        return y
    n = 1 + (len(y) - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), frame)[::hop][:n]
    rms = np.sqrt(np.einsum("ij,ij->i", frames, frames) / frame + 1e-12)  # no (n, frame) copy
    db = 20 * np.log10(rms / rms.max())
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0:
        return y
    return y[loud[0] * hop : loud[-1] * hop + frame]


def normalize_loudness(y: np.ndarray, target_dbfs: float = -23.0, peak: float = 0.99) -> np.ndarray:
    """Scale to a target RMS level (dBFS), never letting the peak exceed ``peak``."""
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    if rms < 1e-8:
        return y
    gain = 10 ** (target_dbfs / 20) / rms
    top = float(np.max(np.abs(y))) * gain
    if top > peak:
        gain *= peak / top
    return (y * gain).astype(np.float32)


def reduce_noise(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Stationary spectral gating (the ``noisereduce`` package)."""
    import noisereduce

    return noisereduce.reduce_noise(y=y, sr=sr, stationary=True, n_jobs=1).astype(np.float32)


@dataclass(frozen=True)
class Preprocess:
    """Clip preprocessing settings (part of the feature cache key)."""

    sample_rate: int = SAMPLE_RATE
    trim: bool = True
    trim_db: float = 35.0
    normalize: bool = True
    denoise: bool = False
    min_seconds: float = 0.2
    max_seconds: float | None = 60.0
    silence_dbfs: float = -60.0


def load_clip(source: AudioSource, pre: Preprocess | None = None) -> np.ndarray:
    """Decode and preprocess one clip; raise :class:`AudioError` if it is unusable."""
    pre = pre or Preprocess()
    y = decode(source, pre.sample_rate, pre.max_seconds)
    return preprocess(y, pre, source_name(source))


def preprocess(y: np.ndarray, pre: Preprocess, name: str = "<array>") -> np.ndarray:
    """Check and clean decoded audio: silence, length, denoise, trim, loudness."""
    if len(y) < pre.min_seconds * pre.sample_rate:
        raise AudioError(
            name, f"too short: {len(y) / pre.sample_rate:.3f} s (< {pre.min_seconds} s)"
        )
    peak = float(np.max(np.abs(y)))
    if peak <= 10 ** (pre.silence_dbfs / 20):
        raise AudioError(name, f"silent: peak level below {pre.silence_dbfs:g} dBFS")
    if pre.denoise:
        y = reduce_noise(y, pre.sample_rate)
    if pre.trim:
        y = trim_silence(y, pre.sample_rate, pre.trim_db)
        if len(y) < pre.min_seconds * pre.sample_rate:
            raise AudioError(
                name, f"too short after trimming silence: {len(y) / pre.sample_rate:.3f} s"
            )
    if pre.normalize:
        y = normalize_loudness(y)
    return y
