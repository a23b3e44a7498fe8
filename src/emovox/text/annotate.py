"""Words into emotion segments: the words of a :class:`~emovox.text.transcribe.Transcription` put
into the emotion segments of a timeline, and a prediction given its text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from emovox.text.transcribe import Transcriber, Transcription, Word, load_audio


class Timed(Protocol):
    """A word or a Whisper segment: its start and end time in seconds."""

    start: float
    end: float


def nearest_segment(start: float, end: float, segments: Sequence[dict[str, Any]]) -> int:
    """The index of the segment that overlaps ``[start, end]`` most, or when none overlaps,
    the one nearest to it in time."""
    best, best_overlap, best_gap = 0, 0.0, float("inf")
    for i, s in enumerate(segments):
        overlap = min(end, s["end"]) - max(start, s["start"])
        if overlap > best_overlap:
            best, best_overlap = i, overlap
        elif best_overlap <= 0:
            gap = max(s["start"] - end, start - s["end"], 0.0)
            if gap < best_gap:
                best, best_gap = i, gap
    return best


def attach_text(
    segments: Sequence[dict[str, Any]], transcription: Transcription
) -> list[dict[str, Any]]:
    """Copies of the timeline ``segments`` with a ``text`` entry each: every word (or, without
    word times, every Whisper segment) goes to the segment it overlaps most, else the nearest
    one, so no word is lost; a segment no word falls in gets ``""``."""
    words = transcription.words
    pieces: Sequence[Timed] = words or transcription.segments
    parts: list[list[str]] = [[] for _ in segments]
    if segments:
        for piece in pieces:
            text = piece.word if isinstance(piece, Word) else " " + piece.text.strip()
            parts[nearest_segment(piece.start, piece.end, segments)].append(text)
    return [
        {**s, "text": " ".join("".join(part).split())}
        for s, part in zip(segments, parts, strict=True)
    ]


class PredictionLike(Protocol):
    """What :func:`annotate` sets (``emovox.inference.recognizer.Prediction`` has it)."""

    segments: list[dict[str, Any]] | None
    text: str | None
    text_warning: str | None


def annotate(
    prediction: PredictionLike,
    audio: object,
    transcriber: Transcriber,
    *,
    sr: int | None = None,
    name: str | None = None,
) -> Transcription:
    """Transcribe ``audio`` (the prediction's input: path, bytes, or 16 kHz samples with
    ``sr``) and set the prediction's ``text`` and ``text_warning``, and each timeline segment's
    ``text``. Returns the transcription."""
    y = load_audio(audio, sr, name)
    tr = transcriber.transcribe_samples(y)
    prediction.text = tr.text
    prediction.text_warning = tr.warning
    if prediction.segments is not None:
        prediction.segments = attach_text(prediction.segments, tr)
    return tr
