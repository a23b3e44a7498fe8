"""The answer for one input: :class:`Prediction` (label, probabilities, certainty, and for a long
recording its timeline), what :meth:`emovox.inference.recognizer.Recognizer.predict` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Prediction:
    """The emotion of one input.

    ``error`` is set (and ``label`` None) for a failed input. ``no_speech`` is True (``label``
    None, no probabilities, ``uncertain`` True) when the speech gate found too little speech;
    ``speech_seconds`` is the speech it measured and ``speech_gate`` its detector (``"silero"``
    or ``"energy"``; None when the gate was off). A long recording has ``segments`` (its
    timeline) and ``gated``: the segments the speech gate refused (times, ``speech`` and
    ``reason``). ``out_of_domain`` is True when the audio is unlike anything the model learnt
    from (``domain_score`` above the model's threshold; :mod:`emovox.inference.domain`): its
    answer deserves less trust even when it looks certain. Both are None when the model has no
    domain score (and for long recordings). ``adapted`` is True when the answer comes from the
    adapted head over a batch or a recording (:mod:`emovox.inference.adapt`); ``adapt_note``
    says why not when adaptation was asked for but not possible.
    """

    label: str | None
    probabilities: dict[str, float]
    uncertain: bool
    path: str | None = None
    duration: float | None = None
    segments: list[dict[str, Any]] | None = None
    error: str | None = None
    no_speech: bool = False
    speech_seconds: float | None = None
    speech_gate: str | None = None
    warnings: list[str] = field(default_factory=list)  # decoding problems (file ends early...)
    text: str | None = None  # what was said (predict(..., transcribe=True))
    text_warning: str | None = None  # e.g. "probably not English"
    gated: list[dict[str, Any]] = field(default_factory=list)  # long recordings: refused segments
    out_of_domain: bool | None = None  # audio unlike the training data
    domain_score: float | None = None  # its distance from the training data (about 1: typical)
    adapted: bool = False  # answered by the adapted head (predict(..., adapt=...))
    adapt_note: str | None = None  # why adaptation was not used, when it was asked for

    @property
    def ok(self) -> bool:
        """True unless the input failed (a ``no_speech`` result is ok: it is an answer)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``path``, ``label``, ``probabilities``, ``uncertain``, ``out_of_domain``,
        ``domain_score``, ``duration``, ``no_speech``, ``speech_seconds``, ``speech_gate``,
        ``adapted`` (+ ``adapt_note`` when set, ``segments`` for long recordings, ``gated``,
        ``warnings`` and ``text`` when there are any); ``path`` and ``error`` for a failed input."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        d: dict[str, Any] = {
            "path": self.path,
            "label": self.label,
            "probabilities": self.probabilities,
            "uncertain": self.uncertain,
            "out_of_domain": self.out_of_domain,
            "domain_score": None if self.domain_score is None else round(self.domain_score, 3),
            "duration": None if self.duration is None else round(self.duration, 3),
            "no_speech": self.no_speech,
            "speech_seconds": self.speech_seconds,
            "speech_gate": self.speech_gate,
            "adapted": self.adapted,
        }
        if self.adapt_note is not None:
            d["adapt_note"] = self.adapt_note
        if self.segments is not None:
            d["segments"] = self.segments
        if self.gated:
            d["gated"] = self.gated
        if self.warnings:
            d["warnings"] = self.warnings
        if self.text is not None or self.text_warning is not None:
            d["text"] = self.text
            d["text_warning"] = self.text_warning
        return d
