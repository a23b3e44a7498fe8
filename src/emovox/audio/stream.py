"""Streamed decoding: read a file, bytes or stream block by block at 16 kHz (bounded memory),
through the same readers as :func:`emovox.audio.decode.decode` (libsndfile, else PyAV).

Blocks are resampled with soxr's streaming resampler, so a one-hour file is never held in memory
and the concatenated blocks equal :func:`emovox.audio.decode.decode` of the same source.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
import soundfile as sf
import soxr

from emovox.audio.decode import (
    SAMPLE_RATE,
    AudioError,
    AudioSource,
    AudioWarning,
    open_reader,
    read_frames,
    read_head,
    shortfall,
    sound_handle,
    source_name,
    undecodable_reason,
)
from emovox.audio.libsndfile import SND_ERRORS, clean_reason
from emovox.audio.sniff import sniff

__all__ = ["clean_reason", "iter_array", "iter_blocks", "open_sound", "paced", "probe_seconds"]


def open_sound(source: AudioSource, name: str | None = None) -> sf.SoundFile:
    """Open ``source`` with libsndfile only (see :func:`emovox.audio.decode.open_reader` for
    any format); :class:`AudioError` naming it when libsndfile cannot read it."""
    name = name or source_name(source)
    handle = sound_handle(source)
    head = read_head(handle)
    try:
        return sf.SoundFile(handle)
    except SND_ERRORS as exc:
        what = "file" if isinstance(handle, str) else "content"
        reason = undecodable_reason(sniff(head), head, clean_reason(str(exc)), what)
        raise AudioError(name, reason) from exc


def probe_seconds(source: AudioSource, name: str | None = None) -> float:
    """Duration in seconds from the header (no decoding), or by decoding when the container
    does not tell it (a WebM from a browser); :class:`AudioError` if unreadable."""
    name = name or source_name(source)
    reader = open_reader(source, name)
    try:
        if reader.frames:
            return reader.frames / reader.samplerate
        got = 0
        while True:
            n = len(read_frames(reader, name, got, 60 * reader.samplerate))
            if not n:
                return got / reader.samplerate
            got += n
    finally:
        reader.close()


def iter_blocks(
    source: AudioSource,
    sr: int = SAMPLE_RATE,
    block_seconds: float = 10.0,
    name: str | None = None,
    notes: list[str] | None = None,
) -> Iterator[np.ndarray]:
    """Decode to mono float32 at ``sr`` block by block (bounded memory, any length, any
    format :func:`emovox.audio.decode.open_reader` reads).

    The concatenated blocks equal :func:`emovox.audio.decode` of the same source (soxr's
    streaming resampler gives the one-shot result). Raises :class:`AudioError` naming the
    source. Warnings (a file that ends early ...) are appended to ``notes`` when given, else
    issued as :class:`~emovox.audio.decode.AudioWarning` at the end.
    """
    name = name or source_name(source)
    reader = open_reader(source, name)
    try:
        native = int(reader.samplerate)
        rs = (
            soxr.ResampleStream(native, sr, 1, dtype="float32", quality="HQ")
            if native != sr
            else None
        )
        block = max(1, int(block_seconds * native))
        got = 0
        while True:
            y = read_frames(reader, name, got, block)
            last = len(y) < block
            got += len(y)
            if rs is not None:
                y = rs.resample_chunk(y, last=last)
            if len(y):
                yield np.ascontiguousarray(y, dtype=np.float32)
            if last:
                break
        if got == 0:
            raise AudioError(name, "no audio samples")
        found = list(reader.notes)
        short = shortfall(reader, got)
    finally:
        reader.close()
    if short:
        found.append(short)
    if notes is not None:
        notes.extend(found)
    else:
        for w in found:
            warnings.warn(AudioWarning(f"{name}: {w}"), stacklevel=2)


def iter_array(y: np.ndarray, block: int = 10 * SAMPLE_RATE) -> Iterator[np.ndarray]:
    """An in-memory 16 kHz waveform as blocks, like :func:`iter_blocks`."""
    for i in range(0, len(y), block):
        yield y[i : i + block]


def paced(chunks: Iterable[np.ndarray], speed: float = 1.0) -> Iterator[np.ndarray]:
    """Yield 16 kHz chunks no faster than real time x ``speed`` (``speed <= 0``: no waiting),
    so a file plays through the live pipeline as a microphone would."""
    t0 = time.monotonic()
    played = 0
    for c in chunks:
        if speed > 0:
            wait = t0 + played / SAMPLE_RATE / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        played += len(c)
        yield c
