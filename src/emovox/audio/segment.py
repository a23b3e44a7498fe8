"""Cut streamed 16 kHz audio into speech segments (a VAD decides), one window at a time.

Long stretches of speech are cut into windows of at most ``max_window`` seconds; only the
segment being collected (at most ~1.5 windows) is held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from emovox.audio.decode import SAMPLE_RATE
from emovox.audio.vad import FRAME, VAD, make_vad

#: Inputs longer than this (seconds) go through the long-recording path by default.
LONG_SECONDS = 20.0
#: Longest window (seconds) one emotion is predicted for.
MAX_WINDOW = 8.0


@dataclass(frozen=True)
class SegmenterConfig:
    """How speech is cut into segments (seconds; probabilities for the VAD)."""

    threshold: float = 0.5  # a frame at or above this starts / continues speech
    neg_threshold: float = 0.35  # below this a frame counts as silence
    min_silence: float = 0.4  # a pause this long ends a segment
    min_speech: float = 0.25  # shorter segments are dropped
    pad: float = 0.1  # kept each side of a segment (<= min_silence)
    max_window: float = MAX_WINDOW  # longest segment; longer speech is cut into windows


@dataclass
class SpeechSegment:
    """A stretch of speech: ``start``/``end`` in samples at 16 kHz, and its audio."""

    start: int
    end: int
    audio: np.ndarray


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
        self.max_buffered = 0  # most samples ever held (for tests of bounded memory)

    @property
    def position(self) -> int:
        """Samples fed so far."""
        return self._fed

    def feed(self, chunk: np.ndarray) -> list[SpeechSegment]:
        """Add 16 kHz audio; the segments (or full windows) that ended within it."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.size:
            self._buf = np.concatenate([self._buf, chunk])
            self._fed += chunk.size
        out = self._run_frames((self._fed - self._frames * FRAME) // FRAME)
        self._trim()
        return out

    def flush(self) -> list[SpeechSegment]:
        """End of input: the last partial frame (zero-padded) and any open segment."""
        out: list[SpeechSegment] = []
        rest = self._fed - self._frames * FRAME
        if rest > 0:
            tail = np.zeros(FRAME, np.float32)
            tail[:rest] = self._slice(self._frames * FRAME, self._fed)
            out += self._steps(self.vad(tail[None, :]))
        if self._in_speech:
            end = self._temp_end if self._temp_end is not None else self._fed
            out += self._close(end)
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
                    out += self._close(self._temp_end)
                    continue
            if self._temp_end is None and cur + FRAME - self._start >= self._max * 3 // 2:
                out.append(self._window(self._start, self._start + self._max, left=self._first))
                self._start += self._max
                self._first = False
        return out

    def _window(self, a: int, b: int, left: bool = False, right: bool = False) -> SpeechSegment:
        if left:
            a = max(a - self._pad, self._buf_start)
        if right:
            b = min(b + self._pad, self._fed)
        return SpeechSegment(a, b, self._slice(a, b).copy())

    def _close(self, end: int) -> list[SpeechSegment]:
        start, first = self._start, self._first
        self._in_speech, self._temp_end = False, None
        n = end - start
        if n <= 0 or (first and n < self._min_speech):
            return []
        if n <= self._max:
            return [self._window(start, end, left=first, right=True)]
        mid = start + n // 2
        return [
            self._window(start, mid, left=first),
            self._window(mid, end, right=True),
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
