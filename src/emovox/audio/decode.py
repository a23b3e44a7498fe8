"""Decode any audio to 16 kHz mono float32 (the one ``SAMPLE_RATE`` of the package): files,
bytes (:func:`decode`, :func:`bytes_source`) and numpy arrays (:func:`to_mono_float`,
:func:`resample`).

Every failure raises :class:`AudioError` naming the file and the problem, so a caller working
through thousands of clips can record it and go on.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
        y = resample(y, native_sr, name, sr)
    return np.ascontiguousarray(y, dtype=np.float32)


def describe_input(x: object, index: int | None = None) -> str:
    """How errors name an input of any kind: a path as it is; bytes, arrays and other objects
    as ``<input 3: 1024 bytes>``, ``<array (16000,) float32>`` (``index``: its place in a list).
    """
    where = "" if index is None else f"input {index}: "
    if isinstance(x, (str, os.PathLike)):
        return os.fspath(x)
    if isinstance(x, (bytes, bytearray)):
        return f"<{where}{len(x)} bytes>"
    if isinstance(x, np.ndarray):
        return f"<{where}array {x.shape} {x.dtype}>"
    return f"<{where}{type(x).__name__}>"


def to_mono_float(x: np.ndarray, name: str = "<array>") -> np.ndarray:
    """A 1-D float32 waveform from an array: integer PCM scaled to [-1, 1]; 2-D arrays are
    ``(frames, channels)`` as soundfile gives, or ``(channels, frames)`` when the first axis is
    short (<= 8) and the second long; channels are averaged. :class:`AudioError` (named
    ``name``) for an empty, non-finite or non-audio array."""
    a = np.asarray(x)
    if a.dtype.kind == "i":
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
    elif a.dtype.kind == "u":
        info = np.iinfo(a.dtype)
        a = (a.astype(np.float32) - (info.max + 1) / 2) / ((info.max + 1) / 2)
    elif a.dtype.kind != "f":
        raise AudioError(name, f"not a waveform: array of dtype {a.dtype}")
    if a.ndim == 2:
        if a.shape[0] <= 8 < a.shape[1]:
            a = a.T
        a = a.mean(axis=1)
    elif a.ndim != 1:
        raise AudioError(name, f"not a waveform: array of shape {a.shape} (need 1-D or 2-D)")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.size == 0:
        raise AudioError(name, "empty input (no samples)")
    if not np.all(np.isfinite(a)):
        raise AudioError(name, "audio contains NaN or infinite samples")
    return a


def resample(
    y: np.ndarray, sr: int, name: str = "<array>", target: int = SAMPLE_RATE
) -> np.ndarray:
    """``y`` (float32, at ``sr`` Hz) at ``target`` Hz (soxr, high quality); ``y`` itself when
    the rates are equal. :class:`AudioError` (named ``name``) for a rate <= 0."""
    if sr <= 0:
        raise AudioError(name, f"invalid sample rate {sr}")
    if sr == target:
        return y
    return soxr.resample(y, sr, target, quality="HQ").astype(np.float32)


@contextmanager
def bytes_source(data: bytes, name: str = "<bytes>") -> Iterator[bytes | str]:
    """What :func:`decode` and :class:`soundfile.SoundFile` open for in-memory audio: the
    bytes themselves when libsndfile reads them from memory, else the path of a temporary
    file holding them (some decoders need a real file), deleted on exit. :class:`AudioError`
    (named ``name``) for empty or undecodable data; its reason holds libsndfile's message."""
    if not data:
        raise AudioError(name, "empty input (0 bytes)")
    try:
        with sf.SoundFile(io.BytesIO(data)):
            pass
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        first = exc
    else:
        yield bytes(data)
        return
    fd, tmp = tempfile.mkstemp(prefix="emovox-", suffix=".audio")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            with sf.SoundFile(tmp):
                pass
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
            raise AudioError(name, f"not decodable audio ({first})") from first
        yield tmp
    finally:
        Path(tmp).unlink(missing_ok=True)


def content_hash(y: np.ndarray) -> str:
    """Hash of the decoded samples (16-bit), equal for the same recording in any container."""
    q = np.clip(np.round(y.astype(np.float64) * 32768), -32768, 32767).astype("<i2")
    return hashlib.sha1(q.tobytes()).hexdigest()
