"""Decode any audio to 16 kHz mono float32 (the one ``SAMPLE_RATE`` of the package): files,
bytes (:func:`decode`, :func:`decode_with_info`, :func:`bytes_source`) and numpy arrays
(:func:`to_mono_float`, :func:`resample`).

Every entry point reads through :func:`open_reader`: nothing that is not a regular file is
opened (a named pipe would block), libsndfile reads what it knows (WAV, FLAC, Ogg, MP3, AIFF
...) and PyAV (FFmpeg) what it does not (M4A/AAC, WebM, MP4, WMA, AMR), told the container
sniffed from the content. Every failure raises :class:`AudioError` naming the file and the
problem, so a caller working through thousands of clips can record it and go on; a clip that
decodes with a problem (a file that ends early, damaged MPEG frames) carries warnings.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import soxr

from emovox.audio.files import regular_file_problem
from emovox.audio.libsndfile import SND_ERRORS, SndReader, clean_reason
from emovox.audio.sniff import HEAD_BYTES, NEEDS_FFMPEG, is_text, not_audio_reason, sniff

SAMPLE_RATE = 16_000

AudioSource = str | Path | bytes | io.IOBase

#: Frames a reader may fall short of its header by without a warning: 50 ms or 1 %.
SHORTFALL_SECONDS = 0.05


class AudioError(Exception):
    """A clip that cannot be used, with the file and the reason."""

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class AudioTooLong(AudioError):
    """A clip longer than the limit asked for (``seconds``: its length, or how far decoding
    went before stopping)."""

    def __init__(self, source: object, seconds: float, limit: float):
        self.seconds = seconds
        self.limit = limit
        super().__init__(source, f"too long: {seconds:.1f} s exceeds the {limit:g} s limit")


class AudioWarning(UserWarning):
    """A clip that decoded with a problem worth knowing (it ends early, damaged frames)."""


@dataclass
class Decoded:
    """A decoded clip: ``samples`` (mono float32 at ``sample_rate``), the container ``format``
    (``"WAV"``, ``"MP3"``, ``"MOV"`` ...) and ``warnings``, each naming the problem."""

    samples: np.ndarray
    sample_rate: int
    format: str
    warnings: list[str] = field(default_factory=list)


class Reader(Protocol):
    """An open source read as mono float32 blocks at its own ``samplerate``
    (:class:`~emovox.audio.libsndfile.SndReader`, :class:`~emovox.audio.ffmpeg.AVReader`)."""

    samplerate: int
    format: str
    frames: int | None
    promised: int | None

    @property
    def notes(self) -> list[str]: ...

    def read(self, n: int = -1) -> np.ndarray: ...

    def close(self) -> None: ...


def source_name(source: object) -> str:
    """How errors name an audio source: its path, ``<bytes>``, or a file object's name."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    return str(getattr(source, "name", "<stream>"))


def sound_handle(source: AudioSource) -> str | io.IOBase:
    """What a reader opens for ``source``, after the checks every reader makes: a path must be
    a regular file (a named pipe, a device, a broken link are never opened) and not empty;
    bytes not empty. Raises :class:`AudioError` naming the problem."""
    name = source_name(source)
    if isinstance(source, (str, Path)):
        problem = regular_file_problem(source)
        if problem is not None:
            raise AudioError(name, problem)
        if os.path.getsize(source) == 0:
            raise AudioError(name, "empty file (0 bytes)")
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise AudioError(name, "empty input (0 bytes)")
        return io.BytesIO(bytes(source))
    return source


def read_head(handle: str | io.IOBase) -> bytes:
    """The first bytes of an opened source (a seekable file object is put back where it was)."""
    if isinstance(handle, str):
        with open(handle, "rb") as fh:
            return fh.read(HEAD_BYTES)
    try:
        if not handle.seekable():
            return b""
        pos = handle.tell()
        head = handle.read(HEAD_BYTES)
        handle.seek(pos)
    except (OSError, ValueError, AttributeError):
        return b""
    return head if isinstance(head, bytes) else b""


def undecodable_reason(kind: str | None, head: bytes, reason: str, what: str = "file") -> str:
    """Why content that no decoder opened is unusable: not audio at all (text, an image, an
    unknown format), or audio of a known container that is truncated or corrupt."""
    if kind is None:
        return not_audio_reason(head, what)
    return f"{kind} data not decodable: truncated or corrupt ({reason})"


def open_reader(source: AudioSource, name: str | None = None) -> Reader:
    """Open ``source`` for reading: libsndfile first, PyAV for the containers it does not read.
    Raises :class:`AudioError` naming the source and the problem; close the reader after use."""
    name = name or source_name(source)
    handle = sound_handle(source)
    head = read_head(handle)
    kind = sniff(head)
    start = 0 if isinstance(handle, str) else handle.tell()
    try:
        return SndReader(handle, listen=kind == "MP3")
    except SND_ERRORS as exc:
        reason = clean_reason(str(exc))
    if kind in NEEDS_FFMPEG:
        from emovox.audio.ffmpeg import AVReader, av_reason, pyav_available

        if not pyav_available():
            raise AudioError(name, f"{kind} audio needs FFmpeg: pip install av")
        if not isinstance(handle, str):
            handle.seek(start)
        try:
            return AVReader(handle, NEEDS_FFMPEG[kind])
        except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds (av.error.*, ...)
            reason = av_reason(exc)
    what = "file" if isinstance(source, (str, Path)) else "content"
    raise AudioError(name, undecodable_reason(kind, head, reason, what))


def shortfall(reader: Reader, got: int) -> str | None:
    """The warning for a source that gave fewer frames than its header promised, or None."""
    want = reader.promised
    sr = reader.samplerate
    if not want or want - got <= max(SHORTFALL_SECONDS * sr, 0.01 * want):
        return None
    if reader.notes:  # the decoder skipped damaged data: it is not the end that is missing
        return f"{got / sr:.2f} of {want / sr:.2f} s decoded"
    return f"file ends early: {got / sr:.2f} of {want / sr:.2f} s read"


def read_frames(reader: Reader, name: str, got: int, n: int) -> np.ndarray:
    """The next ``n`` frames of ``reader`` (-1: all), checked for NaN; :class:`AudioError`
    naming the source when decoding fails after ``got`` frames."""
    try:
        y = reader.read(n)
    except Exception as exc:  # noqa: BLE001 - each decoder raises its own kinds
        from emovox.audio.ffmpeg import av_reason

        why = clean_reason(str(exc)) if isinstance(exc, SND_ERRORS) else av_reason(exc)
        at = f"{got / reader.samplerate:.2f}"
        if reader.promised:
            at += f" of {reader.promised / reader.samplerate:.2f}"
        raise AudioError(
            name,
            f"{reader.format} data not decodable: truncated or corrupt (decoding failed after "
            f"{at} s: {why})",
        ) from exc
    if not np.all(np.isfinite(y)):
        raise AudioError(name, "audio contains NaN or infinite samples")
    return y


def decode_with_info(
    source: AudioSource,
    sr: int = SAMPLE_RATE,
    max_seconds: float | None = None,
    name: str | None = None,
) -> Decoded:
    """Read a file path, bytes or file object (any format, sniffed from content) to mono at
    ``sr``, with the problems met on the way as ``warnings``. Raises :class:`AudioError`
    (:class:`AudioTooLong` past ``max_seconds``, checked before decoding when the header
    tells the length, else as soon as decoding passes it)."""
    name = name or source_name(source)
    reader = open_reader(source, name)
    try:
        native = reader.samplerate
        limit = None if max_seconds is None else max_seconds * native
        if limit is not None and reader.frames and reader.frames > limit:
            raise AudioTooLong(name, reader.frames / native, limit / native)
        block = -1 if reader.frames and limit is None else max(1, int(60 * native))
        parts: list[np.ndarray] = []
        got = 0
        while True:
            y = read_frames(reader, name, got, block)
            if not len(y):
                break
            parts.append(y)
            got += len(y)
            if limit is not None and got > limit:
                raise AudioTooLong(name, got / native, limit / native)
            if block < 0:
                break
        notes = list(reader.notes)
        short = shortfall(reader, got)
        fmt = reader.format
    finally:
        reader.close()
    if got == 0:
        raise AudioError(name, "no audio samples")
    y = parts[0] if len(parts) == 1 else np.concatenate(parts)
    y = resample(y, native, name, sr)
    if short:
        notes.append(short)
    return Decoded(np.ascontiguousarray(y, dtype=np.float32), sr, fmt, notes)


def decode(
    source: AudioSource, sr: int = SAMPLE_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """The samples of :func:`decode_with_info`; its warnings are issued as
    :class:`AudioWarning` (``"clip.wav: file ends early: 1.00 of 2.00 s read"``)."""
    d = decode_with_info(source, sr, max_seconds)
    for w in d.warnings:
        warnings.warn(AudioWarning(f"{source_name(source)}: {w}"), stacklevel=2)
    return d.samples


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
    """What :func:`decode` and :func:`open_reader` open for in-memory audio: the bytes
    themselves when a decoder reads them from memory, else the path of a temporary file holding
    them (some libsndfile decoders need a real file), deleted on exit. :class:`AudioError`
    (named ``name``) for empty, non-audio or undecodable data."""
    try:
        open_reader(data, name).close()
    except AudioError as exc:
        first = exc
    else:
        yield bytes(data)
        return
    head = data[:HEAD_BYTES]
    if sniff(head) is not None or is_text(head):
        raise first  # a known container that is damaged, or text: a file will not help
    fd, tmp = tempfile.mkstemp(prefix="emovox-", suffix=".audio")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            open_reader(tmp, name).close()
        except AudioError:
            raise first from None
        yield tmp
    finally:
        Path(tmp).unlink(missing_ok=True)


def content_hash(y: np.ndarray) -> str:
    """Hash of the decoded samples (16-bit), equal for the same recording in any container."""
    q = np.clip(np.round(y.astype(np.float64) * 32768), -32768, 32767).astype("<i2")
    return hashlib.sha1(q.tobytes()).hexdigest()
