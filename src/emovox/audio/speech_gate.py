"""Is there speech in this audio? The gate that keeps noise, music and clicks from getting a
confident emotion.

A :class:`SpeechGate` counts the 32 ms frames a speech detector calls speech and passes audio
with at least ``min_seconds`` of speech making up at least ``min_fraction`` of it. The detector:

- ``"silero"`` (the ``silero-vad`` package, run with onnxruntime): a frame is speech when Silero's
  probability is at least 0.5. It tells speech from noise, tones, music and ambient sound.
- ``"energy"`` (the fallback when Silero is not installed): a frame is speech-like when it is loud
  (within 35 dB of the clip's loudest frame, above -70 dBFS) and not noise-like (spectral flatness
  below 0.3: white noise is about 0.56 per frame, a click about 1, voiced speech about 0.01). It
  catches white noise and clicks only: tones, chords and much ambient sound pass it.

The defaults come from ``bench/bench_speech_gate.py`` (``bench/results/speech_gate.json``).
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.fft

from emovox.audio.decode import SAMPLE_RATE
from emovox.audio.vad import FRAME, SileroVAD, make_vad, silero_available

#: Least speech (seconds) a clip or segment needs to get an emotion.
MIN_SPEECH_SECONDS = 0.3
#: Least share of a clip or segment that must be speech to get an emotion.
MIN_SPEECH_FRACTION = 0.1
#: Silero probability at or above which a frame is speech (Silero's own default).
SILERO_THRESHOLD = 0.5
#: Spectral flatness at or above which the energy fallback calls a frame noise.
MAX_FLATNESS = 0.3
#: The energy fallback's loudness test: above this level (dBFS) and within this range of the
#: loudest frame.
ENERGY_MIN_DB, ENERGY_RANGE_DB = -70.0, 35.0


@dataclass(frozen=True)
class SpeechAmount:
    """How much of some audio is speech, by which detector, and the gate's verdict."""

    seconds: float
    fraction: float
    detector: str
    passed: bool

    def reason(self) -> str:
        """Why the gate refused (or passed) the audio, in words."""
        return (
            f"{self.seconds:.2f} s of speech ({100 * self.fraction:.0f}% of the audio, "
            f"{self.detector} detector)"
        )


def frames_of(y: np.ndarray) -> np.ndarray:
    """16 kHz audio as (n, :data:`FRAME`) rows, the last one zero-padded."""
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    n = -(-len(y) // FRAME)
    out = np.zeros(n * FRAME, np.float32)
    out[: len(y)] = y
    return out.reshape(n, FRAME)


@functools.lru_cache(maxsize=4)
def _hanning(n: int) -> np.ndarray:
    return np.hanning(n).astype(np.float32)


def spectral_flatness(frames: np.ndarray) -> np.ndarray:
    """Per frame: geometric over arithmetic mean of the Hann-windowed power spectrum (DC and the
    lowest bin left out): near 1 for white noise and clicks, near 0 for voiced sound."""
    spec = scipy.fft.rfft(frames * _hanning(frames.shape[1]), axis=1, workers=1)
    p = spec.real * spec.real + spec.imag * spec.imag
    p = p[:, 2:].astype(np.float64) + 1e-12
    return np.exp(np.mean(np.log(p), axis=1)) / np.mean(p, axis=1)


def energy_speech_frames(frames: np.ndarray) -> np.ndarray:
    """The fallback detector: loud frames that are not noise-like (see the module docstring)."""
    db = 10 * np.log10(np.mean(np.asarray(frames, np.float64) ** 2, axis=1) + 1e-12)
    if db.size == 0:
        return np.zeros(0, bool)
    loud = (db > ENERGY_MIN_DB) & (db > db.max() - ENERGY_RANGE_DB)
    if loud.any():  # the spectrum only where it can decide
        loud[loud] = spectral_flatness(frames[loud]) < MAX_FLATNESS
    return loud


class SpeechGate:
    """Measure the speech in a clip and decide whether it may get an emotion.

    ``detector``: ``"silero"``, ``"energy"`` or ``"auto"`` (Silero when installed, else the energy
    fallback with a warning saying what it cannot catch). Safe to share between threads: Silero
    keeps state, so each thread that measures gets its own detector.
    """

    def __init__(
        self,
        detector: str = "auto",
        *,
        min_seconds: float = MIN_SPEECH_SECONDS,
        min_fraction: float = MIN_SPEECH_FRACTION,
    ) -> None:
        if detector == "auto":
            detector = "silero" if silero_available() else "energy"
            if detector == "energy":
                warnings.warn(
                    "silero-vad (or onnxruntime) is not installed: the speech gate only catches "
                    "noise-like sounds (white noise, clicks); tones, music and ambient sound may "
                    "still get an emotion (pip install --no-deps silero-vad onnxruntime)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if detector not in ("silero", "energy"):
            raise ValueError(f"unknown speech detector {detector!r}: use auto, silero or energy")
        self.detector = detector
        self.min_seconds = float(min_seconds)
        self.min_fraction = float(min_fraction)
        self._local = threading.local()  # each thread's own Silero (it keeps state)
        if detector == "silero":
            self._thread_silero()  # a clear error now when it is not installed

    def _thread_silero(self) -> SileroVAD:
        vad = getattr(self._local, "silero", None)
        if vad is None:
            vad = make_vad("silero")
            assert isinstance(vad, SileroVAD)
            self._local.silero = vad
        return vad

    def speech_frames(self, y: np.ndarray) -> np.ndarray:
        """One bool per :data:`FRAME` of 16 kHz ``y``: is it speech?"""
        frames = frames_of(y)
        if self.detector == "energy":
            return energy_speech_frames(frames)
        silero = self._thread_silero()
        silero.reset()  # each clip on its own
        return silero(frames) >= SILERO_THRESHOLD

    def measure(self, y: np.ndarray) -> SpeechAmount:
        """The speech in 16 kHz ``y`` (seconds, share of the audio) and the verdict."""
        n = len(y)
        seconds = min(float(self.speech_frames(y).sum()) * FRAME, n) / SAMPLE_RATE
        fraction = seconds * SAMPLE_RATE / n if n else 0.0
        passed = seconds >= self.min_seconds and fraction >= self.min_fraction
        return SpeechAmount(round(seconds, 3), round(fraction, 3), self.detector, passed)
