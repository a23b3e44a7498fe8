"""Emotion over time: one emotion per speech segment of a long recording, as a :class:`Timeline`.

The audio is streamed (:mod:`emovox.audio.stream`), cut into speech segments
(:mod:`emovox.audio.segment`, with a VAD from :mod:`emovox.audio.vad`), and each segment gets
the recognizer's probabilities. With a speech gate (:mod:`emovox.audio.speech_gate`), segments
with too little speech get none: they are listed in ``gated``. The timeline writes itself as
JSON, CSV and a PNG plot (:mod:`emovox.inference.plots`).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emovox.audio.decode import SAMPLE_RATE, AudioError, AudioSource
from emovox.audio.segment import SegmenterConfig, SpeechSegment, StreamingSegmenter
from emovox.audio.speech_gate import SpeechGate
from emovox.audio.stream import iter_array, iter_blocks
from emovox.audio.vad import VAD, make_vad


class RecognizerLike(Protocol):
    """What the timeline needs from a recognizer (``inference.engine.EncoderHead`` has it)."""

    labels: tuple[str, ...]
    sample_rate: int
    threshold: float

    def predict_proba(self, wavs: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass
class Timeline:
    """Emotion over time: one entry per speech segment (seconds, label, probabilities and, with
    a speech gate, ``speech`` seconds). ``skipped``: segments the model refused; ``gated``:
    segments the speech gate (detector ``speech_gate``, None when off) found too little speech in.
    """

    labels: tuple[str, ...]
    threshold: float
    duration: float
    segments: list[dict[str, Any]] = field(default_factory=list)
    vad: str = ""
    source: str | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    gated: list[dict[str, Any]] = field(default_factory=list)
    speech_gate: str | None = None

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
            "speech_gate": self.speech_gate,
            "gated": self.gated,
        }

    def to_csv(self) -> str:
        """One CSV row per segment, in time order: start, end, label, uncertain, no_speech,
        speech (seconds the speech gate measured; empty when it was off), then each
        probability. A segment the gate refused (``gated``) has ``no_speech`` 1 and no label."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "label", "uncertain", "no_speech", "speech", *self.labels])
        rows = [
            [s["start"], s["end"], s["label"], int(s["uncertain"]), 0, s.get("speech", "")]
            + [s["probabilities"][lab] for lab in self.labels]
            for s in self.segments
        ]
        rows += [
            [g["start"], g["end"], "", "", 1, g.get("speech", "")] + [""] * len(self.labels)
            for g in self.gated
        ]
        w.writerows(sorted(rows, key=lambda r: (r[0], r[1])))
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
    gate: SpeechGate | None = None,
    latency: bool = False,
) -> Timeline:
    """Segment streamed 16 kHz audio and predict an emotion for each segment.

    ``on_segment`` is called with each timeline entry as soon as it is known (with
    ``batch_size=1``, as soon as its segment ends: the live path). ``gate``: segments it refuses
    get no emotion (they go to ``Timeline.gated``). ``latency``: each entry also gets its delays
    from the end of speech to the label (:meth:`SpeechSegment.latency`; ``latency_ms`` ...).
    """
    vad = vad or make_vad()
    seg = StreamingSegmenter(vad, config)
    labels = tuple(recognizer.labels)
    entries: list[dict[str, Any]] = []
    pending: list[SpeechSegment] = []

    skipped: list[dict[str, Any]] = []
    gated: list[dict[str, Any]] = []
    speech: dict[int, float] = {}  # id(segment) -> seconds of speech the gate measured

    def times(s: SpeechSegment) -> dict[str, float]:
        return {"start": round(s.start / SAMPLE_RATE, 3), "end": round(s.end / SAMPLE_RATE, 3)}

    def speech_only(batch: list[SpeechSegment]) -> list[SpeechSegment]:
        if gate is None:
            return batch
        kept = []
        for s in batch:
            amount = gate.measure(s.audio)
            if amount.passed:
                speech[id(s)] = amount.seconds
                kept.append(s)
            else:
                gated.append(times(s) | {"speech": amount.seconds, "reason": amount.reason()})
        return kept

    def proba(batch: list[SpeechSegment]) -> np.ndarray:
        probs = np.asarray(recognizer.predict_proba([s.audio for s in batch]), dtype=np.float64)
        if probs.shape != (len(batch), len(labels)):
            raise ValueError(
                f"recognizer returned shape {probs.shape}, expected {(len(batch), len(labels))}"
            )
        return probs

    def classify(batch: list[SpeechSegment]) -> None:
        batch = speech_only(batch)
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
                    skipped.append(times(s) | {"reason": exc.reason})
            batch, probs = kept, np.array(rows)
        ready = time.perf_counter()
        for s, p in zip(batch, probs, strict=True):
            e = segment_entry(s, p, labels, float(recognizer.threshold))
            if latency:
                e |= s.latency(ready)
            if gate is not None:
                e["speech"] = speech[id(s)]
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
        gated=gated,
        speech_gate=None if gate is None else gate.detector,
    )


def analyze(
    source: AudioSource | np.ndarray,
    recognizer: RecognizerLike,
    *,
    vad: VAD | None = None,
    config: SegmenterConfig | None = None,
    batch_size: int = 8,
    on_segment: Callable[[dict[str, Any]], None] | None = None,
    gate: SpeechGate | None = None,
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
        gate=gate,
    )
