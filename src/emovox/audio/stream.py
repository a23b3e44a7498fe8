"""Streamed decoding: read a file, bytes or stream block by block at 16 kHz (bounded memory).

Blocks are resampled with soxr's streaming resampler, so a one-hour file is never held in memory
and the concatenated blocks equal :func:`emovox.audio.decode.decode` of the same source.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator

import numpy as np
import soundfile as sf
import soxr

from emovox.audio.decode import SAMPLE_RATE, AudioError, AudioSource, sound_handle, source_name

_OPENING = re.compile(r"Error opening (<[^>]*>|'[^']*'|\S+): ")


def clean_reason(text: str) -> str:
    """libsndfile's message without its ``Error opening <object at 0x...>:`` prefix."""
    return _OPENING.sub("", text)


def open_sound(source: AudioSource, name: str | None = None) -> sf.SoundFile:
    """Open ``source`` for block reading; :class:`AudioError` naming it when undecodable."""
    name = name or source_name(source)
    try:
        return sf.SoundFile(sound_handle(source))
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(name, f"not decodable audio ({clean_reason(str(exc))})") from exc


def probe_seconds(source: AudioSource, name: str | None = None) -> float:
    """Duration in seconds from the header (no decoding); :class:`AudioError` if unreadable."""
    with open_sound(source, name) as f:
        if f.samplerate <= 0:
            raise AudioError(name or source_name(source), "no sample rate in the header")
        return f.frames / f.samplerate


def iter_blocks(
    source: AudioSource,
    sr: int = SAMPLE_RATE,
    block_seconds: float = 10.0,
    name: str | None = None,
) -> Iterator[np.ndarray]:
    """Decode to mono float32 at ``sr`` block by block (bounded memory, any length).

    The concatenated blocks equal :func:`emovox.audio.decode` of the same source (soxr's
    streaming resampler gives the one-shot result). Raises :class:`AudioError` naming the source.
    """
    name = name or source_name(source)
    with open_sound(source, name) as f:
        native = int(f.samplerate)
        rs = (
            soxr.ResampleStream(native, sr, 1, dtype="float32", quality="HQ")
            if native != sr
            else None
        )
        block = max(1, int(block_seconds * native))
        got = 0
        while True:
            try:
                y = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                raise AudioError(
                    name, f"decoding failed after {got / native:.1f} s ({exc})"
                ) from exc
            last = len(y) < block
            got += len(y)
            y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
            if not np.all(np.isfinite(y)):
                raise AudioError(name, "audio contains NaN or infinite samples")
            if rs is not None:
                y = rs.resample_chunk(y, last=last)
            if len(y):
                yield np.ascontiguousarray(y, dtype=np.float32)
            if last:
                break
        if got == 0:
            raise AudioError(name, "no audio samples")


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
