"""Emotion over time: one emotion per speech segment of a long recording, as a :class:`Timeline`.

The audio is streamed (:mod:`emovox.audio.stream`), cut into speech segments
(:mod:`emovox.audio.segment`, with a VAD from :mod:`emovox.audio.vad`), and each segment gets
the recognizer's probabilities. The timeline writes itself as JSON, CSV and a PNG plot
(:mod:`emovox.inference.plots`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emovox.audio.decode import SAMPLE_RATE, AudioError, AudioSource
from emovox.audio.segment import SegmenterConfig, SpeechSegment, StreamingSegmenter
from emovox.audio.stream import iter_array, iter_blocks
from emovox.audio.vad import VAD, make_vad


class RecognizerLike(Protocol):
    """What the timeline needs from a recognizer (``emovox.inference.engine.EncoderHead`` has it)."""

    labels: tuple[str, ...]
    sample_rate: int
    threshold: float

    def predict_proba(self, wavs: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass
class Timeline:
    """Emotion over time: one entry per speech segment (seconds, label, probabilities)."""

    labels: tuple[str, ...]
    threshold: float
    duration: float
    segments: list[dict[str, Any]] = field(default_factory=list)
    vad: str = ""
    source: str | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)  # segments the model refused

    def overall(self) -> dict[str, Any]:
        """Duration-weighted mean of the segments' probabilities, its label and certainty."""
        if not self.segments:
            return {"label": None, "probabilities": {}, "uncertain": True}
        w = np.array([s["end"] - s["start"] for s in self.segments], dtype=float)
        p = np.array([[s["probabilities"][lab] for lab in self.labels] for s in self.segments])
        mean = (w[:, None] * p).sum(axis=0) / max(w.sum(), 1e-9)
        mean = mean / mean.sum()
        k = int(np.argmax(mean))
        return {
            "label": self.labels[k],
            "probabilities": {
                lab: round(float(v), 4) for lab, v in zip(self.labels, mean, strict=True)
            },
            "uncertain": bool(mean[k] < self.threshold),
        }

    def speech_seconds(self) -> float:
        """Total seconds of the segments."""
        return float(sum(s["end"] - s["start"] for s in self.segments))

    def to_dict(self) -> dict[str, Any]:
        """The timeline as JSON-ready data (with its :meth:`overall` result)."""
        return {
            "source": self.source,
            "duration": round(self.duration, 3),
            "vad": self.vad,
            "labels": list(self.labels),
            "threshold": self.threshold,
            "overall": self.overall(),
            "segments": self.segments,
            "skipped": self.skipped,
        }

    def to_csv(self) -> str:
        """One CSV row per segment: start, end, label, uncertain, then each probability."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "label", "uncertain", *self.labels])
        for s in self.segments:
            w.writerow(
                [s["start"], s["end"], s["label"], int(s["uncertain"])]
                + [s["probabilities"][lab] for lab in self.labels]
            )
        return buf.getvalue()

    def png(self, title: str | None = None) -> bytes:
        """The plot of :func:`emovox.inference.plots.timeline_png` (needs matplotlib)."""
        from emovox.inference.plots import timeline_png

        return timeline_png(self, title)

    def write(self, folder: str | Path, stem: str = "timeline") -> dict[str, Path]:
        """``<stem>.json``, ``<stem>.csv`` and ``<stem>.png`` in ``folder`` (atomic writes)."""
        from emovox.io import atomic_write_bytes, atomic_write_json, atomic_write_text

        folder = Path(folder)
        return {
            "json": atomic_write_json(folder / f"{stem}.json", self.to_dict()),
            "csv": atomic_write_text(folder / f"{stem}.csv", self.to_csv()),
            "png": atomic_write_bytes(folder / f"{stem}.png", self.png()),
        }


def segment_entry(
    seg: SpeechSegment, probs: np.ndarray, labels: Sequence[str], threshold: float
) -> dict[str, Any]:
    """One timeline entry: a segment's times (seconds), label, probabilities and certainty."""
    k = int(np.argmax(probs))
    return {
        "start": round(seg.start / SAMPLE_RATE, 3),
        "end": round(seg.end / SAMPLE_RATE, 3),
        "label": labels[k],
        "probabilities": {lab: round(float(v), 4) for lab, v in zip(labels, probs, strict=True)},
        "uncertain": bool(probs[k] < threshold),
    }


def analyze_chunks(
    chunks: Iterable[np.ndarray],
    recognizer: RecognizerLike,
    *,
    vad: VAD | None = None,
    config: SegmenterConfig | None = None,
    batch_size: int = 8,
    on_segment: Callable[[dict[str, Any]], None] | None = None,
    source: str | None = None,
) -> Timeline:
    """Segment streamed 16 kHz audio and predict an emotion for each segment.

    ``on_segment`` is called with each timeline entry as soon as it is known (with
    ``batch_size=1``, as soon as its segment ends: the live path).
    """
    vad = vad or make_vad()
    seg = StreamingSegmenter(vad, config)
    labels = tuple(recognizer.labels)
    entries: list[dict[str, Any]] = []
    pending: list[SpeechSegment] = []

    skipped: list[dict[str, Any]] = []

    def proba(batch: list[SpeechSegment]) -> np.ndarray:
        probs = np.asarray(recognizer.predict_proba([s.audio for s in batch]), dtype=np.float64)
        if probs.shape != (len(batch), len(labels)):
            raise ValueError(
                f"recognizer returned shape {probs.shape}, expected {(len(batch), len(labels))}"
            )
        return probs

    def classify(batch: list[SpeechSegment]) -> None:
        if not batch:
            return
        try:
            probs = proba(batch)
        except AudioError:  # one segment the model cannot use (say, too short once trimmed)
            kept, rows = [], []
            for s in batch:
                try:
                    rows.append(proba([s])[0])
                    kept.append(s)
                except AudioError as exc:
                    start, end = s.start / SAMPLE_RATE, s.end / SAMPLE_RATE
                    skipped.append(
                        {"start": round(start, 3), "end": round(end, 3), "reason": exc.reason}
                    )
            batch, probs = kept, np.array(rows)
        for s, p in zip(batch, probs, strict=True):
            e = segment_entry(s, p, labels, float(recognizer.threshold))
            entries.append(e)
            if on_segment is not None:
                on_segment(e)

    for chunk in chunks:
        pending += seg.feed(chunk)
        if len(pending) >= batch_size:
            classify(pending)
            pending = []
    pending += seg.flush()
    classify(pending)
    return Timeline(
        labels=labels,
        threshold=float(recognizer.threshold),
        duration=seg.position / SAMPLE_RATE,
        segments=entries,
        vad=vad.name,
        source=source,
        skipped=skipped,
    )


def analyze(
    source: AudioSource | np.ndarray,
    recognizer: RecognizerLike,
    *,
    vad: VAD | None = None,
    config: SegmenterConfig | None = None,
    batch_size: int = 8,
    on_segment: Callable[[dict[str, Any]], None] | None = None,
) -> Timeline:
    """A file, bytes or 16 kHz mono array → :class:`Timeline` (files decoded block by block)."""
    if isinstance(source, np.ndarray):
        chunks: Iterable[np.ndarray] = iter_array(source.astype(np.float32, copy=False))
        name = None
    else:
        chunks = iter_blocks(source)
        name = str(source) if isinstance(source, (str, Path)) else None
    return analyze_chunks(
        chunks,
        recognizer,
        vad=vad,
        config=config,
        batch_size=batch_size,
        on_segment=on_segment,
        source=name,
    )
