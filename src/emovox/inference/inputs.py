"""What the recognizer is given, made ready: a path, bytes or a numpy array becomes a decoded short
clip (:class:`ShortClip`) or a long recording to stream (:class:`LongRecording`), with the
decoding warnings (a file that ends early ...) it gave; :func:`prepare` does it.

Bad input raises :class:`emovox.audio.AudioError` (or ``ValueError`` / ``TypeError``) naming the
input: unreadable, too short, silent, an array without its sample rate.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from emovox.audio.decode import (
    SAMPLE_RATE,
    AudioError,
    AudioTooLong,
    bytes_source,
    decode_with_info,
    describe_input,
    resample,
    to_mono_float,
)
from emovox.audio.preprocess import Preprocess
from emovox.audio.speech_gate import SpeechAmount
from emovox.audio.stream import clean_reason, iter_array, iter_blocks, probe_seconds

#: One input of :meth:`emovox.inference.recognizer.Recognizer.predict`.
Input = str | os.PathLike | bytes | bytearray | np.ndarray


@dataclass
class ShortClip:
    """A short input, decoded: 16 kHz mono ``wav``; ``path`` (None for bytes and arrays), the
    ``name`` errors use, the ``speech`` the speech gate measured (once measured) and the
    decoding ``warnings``."""

    wav: np.ndarray
    path: str | None
    name: str
    speech: SpeechAmount | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class LongRecording:
    """A long input, to be streamed block by block: ``source`` is a path, bytes or a 16 kHz
    array; ``warnings`` collects the decoding warnings as the blocks are read."""

    source: str | bytes | np.ndarray
    path: str | None
    name: str
    warnings: list[str] = field(default_factory=list)

    def chunks(self) -> Iterator[np.ndarray]:
        """The recording as 16 kHz mono blocks (files and bytes decoded as they are read)."""
        if isinstance(self.source, np.ndarray):
            return iter_array(self.source)
        return iter_blocks(self.source, name=self.name, notes=self.warnings)


def check_clip(y: np.ndarray, name: str, preprocess: Preprocess) -> np.ndarray:
    """``y`` if the model can use it; :class:`AudioError` naming ``name`` when it is shorter
    than ``preprocess.min_seconds`` or its peak is under ``preprocess.silence_dbfs``."""
    if len(y) < preprocess.min_seconds * SAMPLE_RATE:
        raise AudioError(
            name, f"too short: {len(y) / SAMPLE_RATE:.3f} s (< {preprocess.min_seconds} s)"
        )
    if float(np.max(np.abs(y))) <= 10 ** (preprocess.silence_dbfs / 20):
        raise AudioError(name, f"silent: peak level below {preprocess.silence_dbfs:g} dBFS")
    return y


def prepare(
    x: object,
    sr: int | None,
    index: int | None,
    *,
    long_seconds: float,
    preprocess: Preprocess,
    force_long: bool = False,
) -> ShortClip | LongRecording:
    """One input → a checked :class:`ShortClip`, or a :class:`LongRecording` when it lasts more
    than ``long_seconds`` (or ``force_long``). ``sr`` is needed with a numpy array (resampled
    to 16 kHz); ``index`` names an unnamed input within a list (``"input 3"``). The duration of
    files and bytes is read from the header, so a long file is never decoded here."""
    name = describe_input(x, index)
    if isinstance(x, np.ndarray):
        if sr is None:
            raise ValueError(f"{name}: pass sr= (the sample rate) with a numpy array")
        y = resample(to_mono_float(x, name), int(sr), name)
        if force_long or len(y) > long_seconds * SAMPLE_RATE:
            return LongRecording(y, None, name)
        return ShortClip(check_clip(y, name, preprocess), None, name)
    if isinstance(x, (bytes, bytearray)):
        try:
            with bytes_source(bytes(x), name) as src:
                long = force_long or probe_seconds(src, name) > long_seconds
                if long and isinstance(src, bytes):
                    return LongRecording(src, None, name)  # streamed from memory
                d = decode_with_info(src)  # a temporary file: decoded before it is deleted
        except AudioError as exc:
            raise AudioError(name, clean_reason(exc.reason)) from exc
        y, w = d.samples, d.warnings
        if long:
            return LongRecording(y, None, name, w)
        return ShortClip(check_clip(y, name, preprocess), None, name, None, w)
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if force_long:
            return LongRecording(path, path, path)
        try:  # one opening: the header's length stops a long file before any decoding
            d = decode_with_info(path, max_seconds=long_seconds)
        except AudioTooLong:
            return LongRecording(path, path, path)
        except AudioError as exc:
            raise AudioError(path, clean_reason(exc.reason)) from exc
        return ShortClip(check_clip(d.samples, path, preprocess), path, path, None, d.warnings)
    raise TypeError(
        f"{name}: cannot predict from a {type(x).__name__}: "
        "give a path, bytes, or a numpy array with sr="
    )
