"""Reading what libsndfile cannot (M4A/AAC, WebM, MP4, WMA, AMR) with PyAV (FFmpeg).

FFmpeg is always told the container (:data:`emovox.audio.sniff.NEEDS_FFMPEG`) and given an open
Python file object, never a name: it does not probe unknown content and never reaches its
network protocols or playlist demuxers.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

#: Damaged packets skipped before a stream is given up as undecodable.
MAX_BAD_PACKETS = 50


def pyav_available() -> bool:
    """True when PyAV (``pip install av``) can be imported."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


def av_reason(exc: BaseException) -> str:
    """PyAV's message without its ``[Errno ...]`` and ``'<none>'`` file-name noise."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).rstrip(".")


class AVReader:
    """An open container read as mono float32 blocks at its audio stream's own rate, with the
    same attributes as :class:`emovox.audio.libsndfile.SndReader` (``samplerate``, ``format``,
    ``frames``, ``promised``, ``notes``, ``read``, ``close``)."""

    def __init__(self, source: str | Path | bytes | io.IOBase, demuxer: str) -> None:
        import av

        self._av = av
        if isinstance(source, (str, Path)):
            self._fh: Any = open(source, "rb")  # noqa: SIM115 - closed by close()
        elif isinstance(source, (bytes, bytearray)):
            self._fh = io.BytesIO(bytes(source))
        else:
            self._fh = source
        try:
            self._c = av.open(self._fh, mode="r", format=demuxer)
        except BaseException:
            self._close_file(source)
            raise
        self._source = source
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        av = self._av
        streams = self._c.streams.audio
        if not streams:
            raise ValueError("the container holds no audio stream")
        s = streams[0]
        rate = int(s.codec_context.sample_rate or s.rate or 0)
        if rate <= 0:
            raise ValueError("the audio stream has no sample rate")
        self.samplerate = rate
        self.format = str(self._c.format.name).split(",")[0].upper()
        seconds = None
        if s.duration and s.time_base:
            seconds = float(s.duration * s.time_base)
        elif self._c.duration:
            seconds = self._c.duration / av.time_base
        self.frames: int | None = round(seconds * rate) if seconds else None
        self.promised = self.frames
        self.notes: list[str] = []
        self._packets = self._c.demux(s)
        self._resampler = av.AudioResampler(format="fltp", rate=rate)
        self._buf: list[np.ndarray] = []
        self._have = 0
        self._got = 0
        self._bad = 0  # damaged packets with good ones after them
        self._pending = 0  # damaged packets since the last good one (at the end: a cut file)
        self._first_bad = ""
        self._end = False

    def read(self, n: int = -1) -> np.ndarray:
        """Up to ``n`` frames (all that is left for -1), mono; empty at the end."""
        while not self._end and (n < 0 or self._have < n):
            self._pull()
        y = np.concatenate(self._buf) if self._buf else np.zeros(0, np.float32)
        if 0 <= n < len(y):
            y, rest = y[:n], y[n:]
            self._buf, self._have = [rest], len(rest)
        else:
            self._buf, self._have = [], 0
        return np.ascontiguousarray(y, dtype=np.float32)

    def _pull(self) -> None:
        av = self._av
        try:
            packet = next(self._packets)
        except StopIteration:
            self._finish()
            return
        except av.error.FFmpegError as exc:  # the container breaks off
            if self._got == 0:
                raise
            self.notes.append(
                f"container damaged after {self._got / self.samplerate:.2f} s ({av_reason(exc)})"
            )
            self._finish()
            return
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:  # one damaged packet: skip it
            self._pending += 1
            self._first_bad = self._first_bad or av_reason(exc)
            if self._bad + self._pending > MAX_BAD_PACKETS:
                raise
            return
        if frames:
            self._bad += self._pending
            self._pending = 0
        for frame in frames:
            self._push(frame)

    def _push(self, frame: Any) -> None:
        for out in self._resampler.resample(frame):
            a = out.to_ndarray()
            y = a.mean(axis=0) if a.shape[0] > 1 else a[0]
            self._buf.append(y.astype(np.float32, copy=False))
            self._have += len(y)
            self._got += len(y)

    def _finish(self) -> None:
        self._push(None)  # flush the resampler
        self._end = True
        if self._got == 0 and self._pending:
            raise ValueError(f"no packet could be decoded ({self._first_bad})")
        if self._bad:
            self.notes.append(f"{self._bad} damaged packet(s) skipped ({self._first_bad})")

    def _close_file(self, source: object) -> None:
        if self._fh is not source:
            self._fh.close()

    def close(self) -> None:
        self._c.close()
        self._close_file(self._source)
