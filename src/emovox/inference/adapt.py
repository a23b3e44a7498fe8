"""Adaptation for users: standardise the pooled embeddings over a batch of files (one speaker or
one channel, ``adapt="batch"``) or over a long recording's speech segments
(``adapt="recording"``), and answer with the bundle's *adapted head*, trained on embeddings
standardised the same way per speaker (the ADAPTED recipe of ``emovox evaluate --adapt
speaker``; :mod:`emovox.evaluation.adaptation`). It uses no labels.

It needs enough speech to estimate the group's mean and spread: at least :data:`MIN_ITEMS`
clips or segments and :data:`MIN_SPEECH_SECONDS` of speech. With less, the answers are the plain
model's, ``adapted`` False and ``adapt_note`` saying why.

>>> model.predict(["a.wav", "b.wav", ...], adapt="batch")       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from emovox.evaluation.adaptation import standardize_by_group
from emovox.inference.engine import MissingAdaptedHead
from emovox.inference.prediction import Prediction
from emovox.inference.timeline import Timeline


class AdaptableRecognizer(Protocol):
    """What adaptation needs of :class:`emovox.inference.recognizer.Recognizer`: its engine
    (swapped for a recording one while predicting), a per-clip hook and ``predict_many``."""

    engine: Any
    on_clip: Callable[[Prediction, np.ndarray], None] | None

    def predict_many(
        self, xs: Iterable[Any], sr: int | None = None, errors: str = "return", **kw: Any
    ) -> list[Prediction]: ...


#: The ``adapt`` choices (besides None: no adaptation).
ADAPT_MODES = ("batch", "recording")
#: The fewest clips (batch) or segments (recording) adaptation uses.
MIN_ITEMS = 8
#: The least speech, in seconds, adaptation uses.
MIN_SPEECH_SECONDS = 20.0


def standardize(F: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance per feature over all rows (one group)."""
    return standardize_by_group(F, [0] * len(F))


def too_little(n: int, seconds: float) -> str | None:
    """Why ``n`` items with ``seconds`` of speech are too little to adapt; None when enough."""
    if n >= MIN_ITEMS and seconds >= MIN_SPEECH_SECONDS:
        return None
    return (
        f"not adapted: too little speech ({n} clips/segments, {seconds:.1f} s of speech; "
        f"adaptation needs at least {MIN_ITEMS} and {MIN_SPEECH_SECONDS:.0f} s), "
        "plain model used"
    )


class FeatureLog:
    """An engine that keeps the pooled statistics it computes: ``by_id`` (by the waveform's
    ``id``) and ``rows`` (in order). Everything else is the wrapped engine's."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.by_id: dict[int, np.ndarray] = {}
        self.rows: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def predict_proba(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_with_domain(wavs)[0]

    def predict_with_domain(
        self, wavs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if len(wavs) == 0:
            return self.engine.predict_with_domain(wavs)
        F = np.stack([self.engine.features(y) for y in wavs])
        for y, f in zip(wavs, F, strict=True):
            self.by_id[id(y)] = f
            self.rows.append(f)
        S = self.engine.domain_scores(F)
        return self.engine.head_proba(F, S), S


def relabel(entry: Any, p: np.ndarray, labels: Sequence[str], threshold: float) -> None:
    """Set a :class:`Prediction`'s (or a timeline entry's) label, probabilities, certainty."""
    k = int(np.argmax(p))
    values = {
        "label": labels[k],
        "probabilities": {lab: round(float(v), 4) for lab, v in zip(labels, p, strict=True)},
        "uncertain": bool(p[k] < threshold),
    }
    for key, v in values.items():
        if isinstance(entry, dict):
            entry[key] = v
        else:
            setattr(entry, key, v)


def adapt_batch(engine: Any, clips: list[tuple[Prediction, np.ndarray]], preds: list[Prediction]):
    """Answer the short clips of a batch with the adapted head (in place)."""
    seconds = sum(
        (p.speech_seconds if p.speech_seconds is not None else p.duration) or 0.0 for p, _ in clips
    )
    note = too_little(len(clips), seconds)
    if note is None:
        P = engine.adapted_proba(standardize(np.stack([f for _, f in clips])))
        for (p, _), row in zip(clips, P, strict=True):
            relabel(p, row, engine.labels, float(engine.threshold))
            p.adapted = True
    for p in preds:
        if p.ok and not p.adapted:
            p.adapt_note = note or (
                "not adapted: no speech"
                if p.no_speech
                else "not adapted: a long recording (use adapt='recording' for it)"
            )


def adapt_recording(engine: Any, p: Prediction, rows: list[np.ndarray]) -> None:
    """Answer a long recording's segments (and its overall label) with the adapted head."""
    if not p.ok:
        return
    if p.segments is None:
        p.adapt_note = "not adapted: not a long recording (use adapt='batch' for clips)"
        return
    segs = p.segments
    seconds = sum(float(s.get("speech", s["end"] - s["start"])) for s in segs)
    p.adapt_note = too_little(len(segs), seconds)
    if p.adapt_note is not None:
        return
    if len(rows) != len(segs):
        p.adapt_note = "not adapted: segment features do not match the timeline"
        return
    labels, threshold = tuple(engine.labels), float(engine.threshold)
    P = engine.adapted_proba(standardize(np.stack(rows)))
    for s, row in zip(segs, P, strict=True):
        relabel(s, row, labels, threshold)
    overall = Timeline(labels, threshold, p.duration or 0.0, segs).overall()
    p.label, p.probabilities = overall["label"], overall["probabilities"]
    p.uncertain, p.adapted = overall["uncertain"], True


def predict_adapted(
    rec: AdaptableRecognizer,
    inputs: Iterable[Any],
    mode: str,
    sr: int | None = None,
    errors: str = "return",
    transcribe: bool = False,
) -> list[Prediction]:
    """:meth:`Recognizer.predict_many` adapted over the batch (``mode="batch"``) or over each
    long recording (``mode="recording"``); raises :class:`MissingAdaptedHead` for a bundle
    without the adapted head."""
    if mode not in ADAPT_MODES:
        raise ValueError(f"adapt must be one of {', '.join(ADAPT_MODES)} or None, got {mode!r}")
    engine = rec.engine
    if getattr(engine, "adapted_head", None) is None:
        raise MissingAdaptedHead(getattr(engine, "path", None))
    log = FeatureLog(engine)
    clips: list[tuple[Prediction, np.ndarray]] = []
    rec.engine = log
    rec.on_clip = lambda p, wav: clips.append((p, log.by_id[id(wav)]))
    try:
        if mode == "batch":
            preds = rec.predict_many(inputs, sr, errors, transcribe=transcribe)  # type: ignore[arg-type]
        else:
            preds = []
            for x in inputs:
                log.rows.clear()
                preds += rec.predict_many([x], sr, errors, transcribe=transcribe)  # type: ignore[arg-type]
                adapt_recording(engine, preds[-1], log.rows)
    finally:
        rec.engine, rec.on_clip = engine, None
    if mode == "batch":
        adapt_batch(engine, clips, preds)
    return preds
