"""Decode any audio to 16 kHz mono float32, and the clip-level preprocessing steps.

Every failure raises :class:`AudioError` naming the file and the problem, so a caller working
through thousands of clips can record it and go on.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000

AudioSource = str | Path | bytes | io.IOBase


class AudioError(Exception):
    """A clip that cannot be used, with the file and the reason."""

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


def source_name(source: object) -> str:
    """How errors name an audio source: its path, ``<bytes>``, or a file object's name."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    return str(getattr(source, "name", "<stream>"))


def sound_handle(source: AudioSource) -> object:
    """What :class:`soundfile.SoundFile` opens for ``source``, after the checks every reader
    makes (missing file, folder, empty file or bytes); raises :class:`AudioError`."""
    name = source_name(source)
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise AudioError(name, "file not found")
        if p.is_dir():
            raise AudioError(name, "is a folder, not an audio file")
        if p.stat().st_size == 0:
            raise AudioError(name, "empty file (0 bytes)")
        return str(p)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise AudioError(name, "empty input (0 bytes)")
        return io.BytesIO(bytes(source))
    return source


def decode(
    source: AudioSource, sr: int = SAMPLE_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Read a file path, bytes or file object in any format libsndfile knows; mono, resampled.

    The container is sniffed from content, so AIFF data named ``.wav`` still decodes.
    """
    name = source_name(source)
    handle = sound_handle(source)
    try:
        with sf.SoundFile(handle) as f:
            native_sr = f.samplerate
            if max_seconds is not None and f.frames > 0 and f.frames > max_seconds * native_sr:
                raise AudioError(
                    name,
                    f"too long: {f.frames / native_sr:.1f} s exceeds the {max_seconds:g} s limit",
                )
            y = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(name, f"not decodable audio ({exc})") from exc
    if y.size == 0:
        raise AudioError(name, "no audio samples")
    y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
    if not np.all(np.isfinite(y)):
        raise AudioError(name, "audio contains NaN or infinite samples")
    if native_sr != sr:
        y = soxr.resample(y, native_sr, sr, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(y, dtype=np.float32)


def content_hash(y: np.ndarray) -> str:
    """Hash of the decoded samples (16-bit), equal for the same recording in any container."""
    q = np.clip(np.round(y.astype(np.float64) * 32768), -32768, 32767).astype("<i2")
    return hashlib.sha1(q.tobytes()).hexdigest()


def trim_silence(y: np.ndarray, sr: int = SAMPLE_RATE, top_db: float = 35.0) -> np.ndarray:
    """Cut leading and trailing stretches quieter than ``top_db`` below the clip's peak."""
    frame, hop = int(0.025 * sr), int(0.010 * sr)
    if len(y) < frame:
        return y
    n = 1 + (len(y) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    rms = np.sqrt(np.mean(y[idx] ** 2, axis=1) + 1e-12)
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
