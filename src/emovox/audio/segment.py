"""Cut streamed 16 kHz audio into speech segments (a VAD decides), one window at a time.

Long stretches of speech are cut into windows of at most ``max_window`` seconds; only the
segment being collected (at most ~1.5 windows) is held in memory.

Each segment records when it was decided, so a live caller can tell its latency
(:meth:`SpeechSegment.latency`): the *decision delay* (audio after the end of speech the
segmenter had to hear before closing the segment: :attr:`StreamingSegmenter.hangover`, plus up to
one chunk) and the *compute delay* (wall time from the moment the deciding chunk was fed to the
label being ready).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from emovox.audio.decode import SAMPLE_RATE
from emovox.audio.vad import FRAME, VAD, make_vad

#: Inputs longer than this (seconds) go through the long-recording path by default.
LONG_SECONDS = 20.0
#: Longest window (seconds) one emotion is predicted for.
MAX_WINDOW = 8.0


#: the pause that ends a live segment (``emovox listen``): the label comes this long (rounded up
#: to 32 ms VAD frames) plus the compute time after the end of speech (bench/bench_streaming.py);
#: files keep :attr:`SegmenterConfig.min_silence`, which splits sentences less often
LIVE_MIN_SILENCE = 0.25


@dataclass(frozen=True)
class SegmenterConfig:
    """How speech is cut into segments (seconds; probabilities for the VAD)."""

    threshold: float = 0.5  # a frame at or above this starts / continues speech
    neg_threshold: float = 0.35  # below this a frame counts as silence
    min_silence: float = 0.4  # a pause this long ends a segment
    min_speech: float = 0.25  # shorter segments are dropped
    pad: float = 0.1  # kept each side of a segment (<= min_silence)
    max_window: float = MAX_WINDOW  # longest segment; longer speech is cut into windows

    def with_min_silence(self, seconds: float) -> SegmenterConfig:
        """These settings with another ending pause (``pad`` kept no longer than it), e.g.
        :data:`LIVE_MIN_SILENCE` for ``emovox listen``."""
        return replace(self, min_silence=seconds, pad=min(self.pad, seconds))


@dataclass
class SpeechSegment:
    """A stretch of speech: ``start``/``end`` in samples at 16 kHz, and its audio.

    How it was decided: ``closed_by`` is ``"pause"`` (a silence of ``min_silence`` ended it),
    ``"window"`` (long speech cut into windows) or ``"end"`` (the input ended); ``speech_end`` is
    where the speech (or window) ended, before the right padding; ``decided`` is how many samples
    had been fed when the segmenter gave it out, and ``fed_at`` the :func:`time.perf_counter` time
    at which the chunk that decided it was fed.
    """

    start: int
    end: int
    audio: np.ndarray
    closed_by: str = "end"
    speech_end: int = 0
    decided: int = 0
    fed_at: float = 0.0

    def latency(self, ready: float | None = None, sr: int = SAMPLE_RATE) -> dict[str, Any]:
        """Its delays (ms) when its label was ready at ``ready`` (:func:`time.perf_counter`;
        default now): ``decision_ms`` (audio from the end of speech to the moment it was
        decided), ``compute_ms`` (wall time from feeding the deciding chunk to ``ready``),
        ``latency_ms`` (their sum: end of speech to label, in real time) and ``closed_by``."""
        ready = time.perf_counter() if ready is None else ready
        decision = 1000.0 * max(self.decided - self.speech_end, 0) / sr
        compute = 1000.0 * max(ready - self.fed_at, 0.0)
        return {
            "latency_ms": round(decision + compute, 1),
            "decision_ms": round(decision, 1),
            "compute_ms": round(compute, 1),
            "closed_by": self.closed_by,
        }


class StreamingSegmenter:
    """Feed 16 kHz audio in any chunk sizes; get speech segments as soon as they end.

    Holds only the audio of the segment being collected (plus a little padding), so memory does
    not grow with the recording. A run of speech longer than 1.5 windows gives up one
    ``max_window`` window at a time; what is left at its end (<= 1.5 windows) is one window, or
    two equal halves when longer than ``max_window``, so no window is a tiny tail.
    """

    def __init__(
        self, vad: VAD, config: SegmenterConfig | None = None, sr: int = SAMPLE_RATE
    ) -> None:
        self.cfg = cfg = config or SegmenterConfig()
        if sr != SAMPLE_RATE:
            raise ValueError("the segmenter works at 16 kHz")
        self.vad = vad
        vad.reset()
        self.sr = sr
        self._pad = int(min(cfg.pad, cfg.min_silence) * sr)
        self._min_silence = int(cfg.min_silence * sr)
        self._min_speech = int(cfg.min_speech * sr)
        self._max = max(int(cfg.max_window * sr), FRAME)
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute sample index of _buf[0]
        self._fed = 0
        self._frames = 0  # frames given to the VAD
        self._in_speech = False
        self._start = 0
        self._first = True
        self._temp_end: int | None = None
        self._fed_at = 0.0  # perf_counter() when the current chunk was fed
        self.max_buffered = 0  # most samples ever held (for tests of bounded memory)

    @property
    def position(self) -> int:
        """Samples fed so far."""
        return self._fed

    @property
    def hangover(self) -> int:
        """Samples of audio after the end of speech the segmenter needs before it closes a
        segment: ``min_silence`` rounded up to whole VAD frames (the decision delay when chunks
        end on frame boundaries; otherwise up to one chunk more)."""
        return max(1, math.ceil(self._min_silence / FRAME)) * FRAME

    def feed(self, chunk: np.ndarray) -> list[SpeechSegment]:
        """Add 16 kHz audio; the segments (or full windows) that ended within it."""
        self._fed_at = time.perf_counter()
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.size:
            self._buf = np.concatenate([self._buf, chunk])
            self._fed += chunk.size
        out = self._run_frames((self._fed - self._frames * FRAME) // FRAME)
        self._trim()
        return out

    def flush(self) -> list[SpeechSegment]:
        """End of input: the last partial frame (zero-padded) and any open segment."""
        self._fed_at = time.perf_counter()
        out: list[SpeechSegment] = []
        rest = self._fed - self._frames * FRAME
        if rest > 0:
            tail = np.zeros(FRAME, np.float32)
            tail[:rest] = self._slice(self._frames * FRAME, self._fed)
            out += self._steps(self.vad(tail[None, :]))
        if self._in_speech:
            end = self._temp_end if self._temp_end is not None else self._fed
            out += self._close(end, "end")
        self._trim()
        return out

    # internals

    def _slice(self, a: int, b: int) -> np.ndarray:
        return self._buf[a - self._buf_start : b - self._buf_start]

    def _run_frames(self, n: int) -> list[SpeechSegment]:
        if n <= 0:
            return []
        a = self._frames * FRAME
        frames = self._slice(a, a + n * FRAME).reshape(n, FRAME)
        return self._steps(self.vad(frames))

    def _steps(self, probs: np.ndarray) -> list[SpeechSegment]:
        out: list[SpeechSegment] = []
        cfg = self.cfg
        for p in probs:
            cur = self._frames * FRAME
            self._frames += 1
            if not self._in_speech:
                if p >= cfg.threshold:
                    self._in_speech, self._start, self._first = True, cur, True
                    self._temp_end = None
                continue
            if p >= cfg.threshold:
                self._temp_end = None
            elif p < cfg.neg_threshold:
                if self._temp_end is None:
                    self._temp_end = cur
                if cur + FRAME - self._temp_end >= self._min_silence:
                    out += self._close(self._temp_end, "pause")
                    continue
            if self._temp_end is None and cur + FRAME - self._start >= self._max * 3 // 2:
                out.append(
                    self._window(self._start, self._start + self._max, "window", left=self._first)
                )
                self._start += self._max
                self._first = False
        return out

    def _window(
        self, a: int, b: int, closed_by: str, left: bool = False, right: bool = False
    ) -> SpeechSegment:
        speech_end = b
        if left:
            a = max(a - self._pad, self._buf_start)
        if right:
            b = min(b + self._pad, self._fed)
        return SpeechSegment(
            a, b, self._slice(a, b).copy(), closed_by, speech_end, self._fed, self._fed_at
        )

    def _close(self, end: int, closed_by: str) -> list[SpeechSegment]:
        start, first = self._start, self._first
        self._in_speech, self._temp_end = False, None
        n = end - start
        if n <= 0 or (first and n < self._min_speech):
            return []
        if n <= self._max:
            return [self._window(start, end, closed_by, left=first, right=True)]
        mid = start + n // 2
        return [
            self._window(start, mid, "window", left=first),
            self._window(mid, end, closed_by, right=True),
        ]

    def _trim(self) -> None:
        if self._in_speech:
            keep = self._start - (self._pad if self._first else 0)
        else:
            keep = self._frames * FRAME - self._pad
        keep = max(keep, self._buf_start)
        if keep > self._buf_start:
            self._buf = self._buf[keep - self._buf_start :]
            self._buf_start = keep
        self.max_buffered = max(self.max_buffered, self._buf.size)


def latency_summary(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median and 95th percentile (ms) of ``latency_ms``, ``decision_ms`` and ``compute_ms``
    over the entries that end at a pause (end of speech to label); ``n`` counts them,
    ``n_other`` the windows cut from long speech and segments closed by the end of input."""
    timed = [e for e in entries if "latency_ms" in e]
    ended = [e for e in timed if e.get("closed_by") == "pause"]
    out: dict[str, Any] = {"n": len(ended), "n_other": len(timed) - len(ended)}
    for key in ("latency_ms", "decision_ms", "compute_ms"):
        v = np.array([e[key] for e in ended], dtype=float)
        stem = key.removesuffix("_ms")
        out[f"{stem}_median_ms"] = round(float(np.median(v)), 1) if v.size else None
        out[f"{stem}_p95_ms"] = round(float(np.percentile(v, 95)), 1) if v.size else None
    return out


def find_speech(
    chunks: Iterable[np.ndarray], vad: VAD | None = None, config: SegmenterConfig | None = None
) -> list[tuple[float, float]]:
    """Speech segments ``(start, end)`` in seconds of 16 kHz audio given as chunks."""
    seg = StreamingSegmenter(vad or make_vad(), config)
    found = []
    for c in chunks:
        found += seg.feed(c)
    found += seg.flush()
    return [(s.start / SAMPLE_RATE, s.end / SAMPLE_RATE) for s in found]
