"""What was said and how: speech to text (Whisper tiny.en, English only) and transcripts with
the emotion of each speech segment.

:mod:`~emovox.text.transcribe` (the model, loaded on first use: ``pip install 'emovox[text]'``),
:mod:`~emovox.text.annotate` (words into emotion segments), :mod:`~emovox.text.transcript` (the
transcript and its JSON, CSV, SubRip, WebVTT and HTML forms). Importing this package loads no
model and does not import faster-whisper.
"""

from emovox.text.annotate import annotate, attach_text
from emovox.text.transcribe import (
    Transcriber,
    TranscriberUnavailable,
    Transcription,
    default_transcriber,
)
from emovox.text.transcript import Cue, Transcript, srt_time, vtt_time

__all__ = [
    "Cue",
    "Transcriber",
    "TranscriberUnavailable",
    "Transcript",
    "Transcription",
    "annotate",
    "attach_text",
    "default_transcriber",
    "srt_time",
    "vtt_time",
]
