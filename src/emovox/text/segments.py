"""What a transcription is made of: words with their times, Whisper's segments, and the whole
transcription of a clip or recording."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The transcription model emovox ships with (Whisper tiny.en, English only).
MODEL_NAME = "whisper-tiny.en"


@dataclass(frozen=True)
class Word:
    """One recognised word and its time in the audio (seconds). ``word`` is spelled as Whisper
    gives it: with a leading space when it starts a new word (``" o"``, ``"'clock"``), so
    ``"".join`` of the words rebuilds the text."""

    start: float
    end: float
    word: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "word": self.word,
            "probability": self.probability,
        }


@dataclass(frozen=True)
class TextSegment:
    """A stretch of recognised text (Whisper's segment) with its times and word times."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "words": [w.to_dict() for w in self.words],
            "avg_logprob": self.avg_logprob,
            "no_speech_prob": self.no_speech_prob,
        }


@dataclass
class Transcription:
    """What was said: the text, its segments (with word times), and a warning when the audio is
    probably not English speech."""

    text: str
    segments: list[TextSegment] = field(default_factory=list)
    duration: float = 0.0
    avg_logprob: float | None = None
    warning: str | None = None
    model: str = MODEL_NAME
    language: str = "en"

    @property
    def words(self) -> list[Word]:
        """Every word, in order (empty when word times were off)."""
        return [w for s in self.segments for w in s.words]

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "model": self.model,
            "duration": round(self.duration, 3),
            "avg_logprob": None if self.avg_logprob is None else round(self.avg_logprob, 4),
            "warning": self.warning,
            "segments": [s.to_dict() for s in self.segments],
        }
