"""Decode any audio to 16 kHz mono float32 (the one ``SAMPLE_RATE`` of the package).

Every failure raises :class:`AudioError` naming the file and the problem, so a caller working
through thousands of clips can record it and go on.
"""

from __future__ import annotations

import hashlib
import io
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
