"""The ready-to-use Python API: ``emovox.load()`` (:mod:`emovox.inference.loading`) →
:class:`Recognizer` → :class:`Prediction`.

>>> import emovox                                         # doctest: +SKIP
>>> model = emovox.load()                                 # the packaged default model
>>> p = model.predict("clip.wav")
>>> p.label, p.probabilities["angry"], p.uncertain
>>> model.predict(waveform, sr=44100)                     # numpy arrays, resampled to 16 kHz
>>> model.predict(open("clip.opus", "rb").read())         # raw bytes, format sniffed from content
>>> model.predict(["a.wav", "b.flac"], errors="return")   # one bad file spoils nothing

Inputs longer than ``long_seconds`` (20 s by default) are split into speech segments
(:mod:`emovox.inference.timeline`); their :class:`Prediction` has ``segments`` (a timeline) and
the overall label is the duration-weighted mean of the segments' probabilities.

With ``speech_gate`` on (the default), audio with too little speech in it (noise, music, clicks,
ambient sound; see :mod:`emovox.audio.speech_gate`) gets no emotion: its :class:`Prediction` has
``no_speech`` True, ``label`` None and no probabilities. That is an answer, not an error.

Inputs are made ready (decoded, checked, long ones streamed) by :mod:`emovox.inference.inputs`;
the answer is a :class:`emovox.inference.prediction.Prediction`, exported here too. With more
than one input, a worker thread (``workers``; by default one where the process may use two
cores) decodes and gates the next inputs while the model encodes the current ones
(:mod:`emovox.inference.pipeline`); the answers are the same, in the same order.

``Predictor``, this class's former name, still works with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from itertools import chain, islice
from typing import Any, Literal

import numpy as np

from emovox.audio.decode import SAMPLE_RATE, AudioError, describe_input
from emovox.audio.preprocess import Preprocess
from emovox.audio.segment import LONG_SECONDS, SegmenterConfig
from emovox.audio.speech_gate import SpeechAmount, SpeechGate
from emovox.audio.vad import VAD, make_vad
from emovox.inference.inputs import Input, LongRecording, ShortClip, prepare
from emovox.inference.pipeline import Failed, default_workers, prefetch
from emovox.inference.prediction import Prediction
from emovox.inference.timeline import RecognizerLike, Timeline, analyze_chunks

__all__ = ["Input", "Prediction", "Recognizer"]

Errors = Literal["raise", "return"]
#: An input made ready for the model: a checked clip, a long recording, or already an answer
#: (``no_speech``); or the error that stopped it. With the input's index and the input itself.
Staged = tuple[int, Any, ShortClip | LongRecording | Prediction | Exception]


class Recognizer:
    """The loaded model (what ``emovox.load()`` returns): a model engine plus everything around
    it: decoding, checks, batching, long recordings.

    ``engine`` is anything with ``labels``, ``threshold`` and ``predict_proba(wavs)`` (a loaded
    bundle, :class:`emovox.inference.engine.EncoderHead`); ``vad`` is ``"auto"``, ``"silero"``
    or ``"energy"``, the detector that finds speech in long recordings and live audio (and,
    except for the fast model with ``"auto"``, the speech gate's); ``speech_gate``: refuse an
    emotion to audio with too little speech (``no_speech`` results; settable later).
    ``workers``: threads that decode and gate the next inputs of a list while the model runs
    (0: none, all in the caller's thread; None: 1 with two usable cores or more, else 0), at most
    ``prefetch`` inputs ahead; both settable.
    """

    def __init__(
        self,
        engine: RecognizerLike,
        *,
        long_seconds: float = LONG_SECONDS,
        vad: str = "auto",
        segmenter: SegmenterConfig | None = None,
        batch_size: int = 16,
        speech_gate: bool = True,
        workers: int | None = None,
        prefetch: int = 32,
    ) -> None:
        self.engine = engine
        self.workers = workers
        self.prefetch = prefetch
        self.speech_gate = speech_gate
        self.long_seconds = long_seconds
        self.vad_kind = vad
        # the fast model's per-clip gate: Silero would cost several times the model itself. Its
        # segmenter keeps Silero: about 0.5 ms per second of audio, nothing against real time,
        # and it finds the pauses between utterances that the energy detector runs together
        fast = getattr(engine, "kind", None) == "fast_cnn"
        self.gate_kind = "energy" if vad == "auto" and fast else vad
        self.segmenter = segmenter or SegmenterConfig()
        self.batch_size = max(1, batch_size)
        pre = getattr(engine, "preprocess_cfg", None)
        self._pre: Preprocess = pre if isinstance(pre, Preprocess) else Preprocess()
        self._vad: VAD | None = None
        self._gate: SpeechGate | None = None
        self._transcriber: Any = None
        #: Called with each short clip's answer and waveform (adaptation collects features).
        self.on_clip: Callable[[Prediction, np.ndarray], None] | None = None

    @property
    def recognizer(self) -> RecognizerLike:
        """The engine under its former name (same object as :attr:`engine`)."""
        return self.engine

    @property
    def labels(self) -> tuple[str, ...]:
        """The emotions, in the order of the probabilities."""
        return tuple(self.engine.labels)

    @property
    def threshold(self) -> float:
        """Top probability under which a prediction is flagged ``uncertain``."""
        return float(self.engine.threshold)

    @property
    def card(self) -> dict[str, Any]:
        """The model card (data, protocol, scores, limits)."""
        return dict(getattr(self.engine, "card", {}) or {})

    @property
    def backend(self) -> str | None:
        """The engine's backend (``"numpy"``, ``"torch"``, ``"onnx"`` or ``"onnx-int8"``); None
        when it has none."""
        return getattr(self.engine, "backend", None)

    def to(self, device: Any) -> Recognizer:
        """Run the encoder on a torch ``device`` (``"cpu"``, ``"cuda"``, ...); returns self.
        Only the torch backend leaves the CPU; ``ValueError`` otherwise."""
        move = getattr(self.engine, "to", None)
        if move is not None:
            move(device)
        elif str(device).split(":")[0] != "cpu":
            raise ValueError(f"this model runs on the CPU only, not on {str(device)!r}")
        return self

    # ---------------------------------------------------------------- public

    def predict(
        self,
        x: Input | Sequence[Input],
        sr: int | None = None,
        *,
        errors: Errors = "raise",
        transcribe: bool = False,
        adapt: str | None = None,
        workers: int | None = None,
    ) -> Prediction | list[Prediction]:
        """One input → :class:`Prediction`; a list → a list (batched).

        ``errors="raise"`` (the default): bad input raises :class:`emovox.audio.AudioError` /
        ``ValueError`` naming the input. ``errors="return"``: a failed input gives a
        :class:`Prediction` with ``error`` set (``ok`` False) and the other inputs go on.
        Audio with too little speech is not an error: it gives ``no_speech`` True.
        ``transcribe=True``: also what was said (``text``, English only; each timeline segment's
        ``text`` for long recordings), by :attr:`transcriber`.
        ``adapt="batch"`` (a list of clips of one speaker or channel) or ``"recording"`` (long
        recordings): standardise the embeddings over the batch or the recording's segments and
        answer with the adapted head (:mod:`emovox.inference.adapt`; ``adapted`` says if it did).
        ``workers``: decoding threads for a list (default :attr:`workers`; 0: none).
        """
        if adapt is not None:
            from emovox.inference.adapt import predict_adapted

            many = predict_adapted(self, x if isinstance(x, (list, tuple)) else [x], adapt, sr,
                                   errors, transcribe)  # fmt: skip
            return many if isinstance(x, (list, tuple)) else many[0]
        if isinstance(x, (list, tuple)):
            return self.predict_many(x, sr=sr, errors=errors, transcribe=transcribe,
                                     workers=workers)  # fmt: skip
        it = self.iter_predict([x], sr=sr, errors=errors, transcribe=transcribe, _single=True)
        return next(it)

    def predict_many(
        self,
        inputs: Iterable[Input],
        sr: int | None = None,
        errors: Errors = "return",
        *,
        on_error: str | None = None,
        transcribe: bool = False,
        workers: int | None = None,
        prefetch: int | None = None,
    ) -> list[Prediction]:
        """Predict every input; ``errors``, ``transcribe`` and ``workers`` as in :meth:`predict`
        (here ``errors="return"`` by default). ``on_error`` (``"record"``/``"raise"``) is the
        former, deprecated name of ``errors``."""
        it = self.iter_predict(inputs, sr, errors, on_error=on_error, transcribe=transcribe,
                               workers=workers, prefetch=prefetch)  # fmt: skip
        return list(it)

    def iter_predict(
        self,
        inputs: Iterable[Input],
        sr: int | None = None,
        errors: Errors = "return",
        *,
        on_error: str | None = None,
        transcribe: bool = False,
        workers: int | None = None,
        prefetch: int | None = None,
        _single: bool = False,
    ) -> Iterator[Prediction]:
        """Like :meth:`predict_many`, yielding each result (in input order) as it is ready.
        ``workers`` threads (default :attr:`workers`) decode up to ``prefetch`` inputs (default
        :attr:`prefetch`) ahead of the model when there is more than one input."""
        errors = _errors_mode(errors, on_error)
        run = self._run_batch
        if transcribe:
            self.transcriber  # noqa: B018  (raises now, naming what to install, if it cannot run)
            run = self._run_batch_transcribed
        it = iter(inputs)
        head = list(islice(it, 2))  # one input: no thread
        n = self.workers if workers is None else workers
        n = 0 if len(head) < 2 or _single else default_workers() if n is None else n
        depth = max(self.prefetch if prefetch is None else prefetch, 1)
        batch: list[Staged] = []
        with closing(self._staged(chain(head, it), sr, _single, n, depth)) as stream:
            for staged in stream:  # closed (its threads ended) however this generator stops
                batch.append(staged)
                if len(batch) >= self.batch_size:
                    yield from run(batch, sr, errors, _single)
                    batch = []
            if batch:
                yield from run(batch, sr, errors, _single)

    def timeline(self, x: Input, sr: int | None = None) -> Timeline:
        """The long-recording path for any input, whatever its length."""
        item = self._prepare(x, sr, None, force_long=True)
        assert isinstance(item, LongRecording)
        return self._analyze(item)

    @property
    def transcriber(self) -> Any:
        """Speech to text for ``transcribe=True``: an :class:`emovox.text.Transcriber` (by
        default the shared Whisper tiny.en, loaded on first use; settable). Raises
        :class:`emovox.text.TranscriberUnavailable` when faster-whisper or the model is missing."""
        if self._transcriber is None:
            from emovox.text.transcribe import default_transcriber

            self._transcriber = default_transcriber()
        return self._transcriber

    @transcriber.setter
    def transcriber(self, value: Any) -> None:
        self._transcriber = value

    # ---------------------------------------------------------------- internals

    def _staged(
        self, inputs: Iterable[Input], sr: int | None, single: bool, workers: int, depth: int
    ) -> Iterator[Staged]:
        """Each input decoded, checked and gated (or the error that stopped it), in order; by
        ``workers`` threads ahead of the caller (:func:`~emovox.inference.pipeline.prefetch`),
        or here, one at a time, when 0."""
        gate = self.gate  # made here, on the caller's thread

        def stage(ix: tuple[int, Any]) -> Staged:  # the gate is thread-safe (SpeechGate)
            i, x = ix
            return i, x, self._gated(self._prepare(x, sr, None if single else i), gate)

        with closing(prefetch(stage, enumerate(inputs), workers=workers, depth=depth)) as rs:
            for r in rs:
                yield (*r.item, r.error) if isinstance(r, Failed) else r

    def _run_batch_transcribed(
        self, batch: list[Staged], sr: int | None, errors: str, single: bool
    ) -> Iterator[Prediction]:
        """:meth:`_run_batch` with each answer's text (:func:`emovox.text.annotate`); audio
        with no speech gets ``""``, and a transcription that fails leaves the emotion and says
        why in ``text_warning``."""
        from emovox.text.annotate import annotate

        for (i, x, _), p in zip(batch, self._run_batch(batch, sr, errors, single), strict=True):
            if p.no_speech:
                p.text, p.text_warning = "", "no speech"
            elif p.ok:
                name = describe_input(x, None if single else i)
                try:
                    annotate(p, x, self.transcriber, sr=sr, name=name)
                except AudioError as exc:
                    if errors == "raise":
                        raise
                    p.text_warning = f"transcription failed: {exc.reason}"
            yield p

    def _run_batch(
        self, batch: list[Staged], sr: int | None, errors: str, single: bool
    ) -> Iterator[Prediction]:
        prepared: list[ShortClip | LongRecording | Prediction] = []
        for i, x, s in batch:
            if isinstance(s, Exception):
                if errors == "raise" or not isinstance(s, (AudioError, ValueError, TypeError)):
                    raise s
                s = self._failed(x, s, None if single else i)
            prepared.append(s)
        shorts = [p for p in prepared if isinstance(p, ShortClip)]
        probs = self._proba_short(shorts, errors)
        for (i, x, _), p in zip(batch, prepared, strict=True):
            if isinstance(p, Prediction):
                yield p
            elif isinstance(p, ShortClip):
                r = probs[id(p)]
                if isinstance(r, Exception):
                    yield self._failed(x, r, None if single else i)
                else:
                    made = self._make(r[0], p.path, len(p.wav) / SAMPLE_RATE, p.speech)
                    made.domain_score = r[1]
                    made.out_of_domain = self._out_of_domain(r[1])
                    if self.on_clip is not None:
                        self.on_clip(made, p.wav)
                    yield _noted(made, p)
            else:
                try:
                    yield _noted(self._long_prediction(p), p)
                except (AudioError, ValueError) as exc:
                    if errors == "raise":
                        raise
                    yield self._failed(x, exc, None if single else i)

    def _gated(
        self, item: ShortClip | LongRecording, gate: SpeechGate | None
    ) -> ShortClip | LongRecording | Prediction:
        """A short clip with too little speech → its ``no_speech`` :class:`Prediction`."""
        if gate is None or not isinstance(item, ShortClip):
            return item
        item.speech = amount = gate.measure(item.wav)
        if amount.passed:
            return item
        return _noted(self._no_speech(item.path, len(item.wav) / SAMPLE_RATE, amount.seconds), item)

    def _no_speech(
        self, path: str | None, duration: float, speech: float | None, segments: list | None = None
    ) -> Prediction:
        return Prediction(
            None, {}, True, path=path, duration=duration, segments=segments, no_speech=True,
            speech_seconds=speech, speech_gate=self.gate.detector if self.gate else None,
        )  # fmt: skip

    def _long_prediction(self, item: LongRecording) -> Prediction:
        """A long recording's timeline as a :class:`Prediction` (``no_speech`` when it has no
        speech segment; an error when the model refused every segment)."""
        tl = self._analyze(item)
        speech = None
        if tl.speech_gate is not None:
            speech = round(sum(s["speech"] for s in tl.segments), 3)
        if not tl.segments:
            if tl.skipped:
                raise AudioError(
                    item.name,
                    f"no usable speech in {tl.duration:.1f} s: {len(tl.skipped)} segment(s) "
                    f"refused ({tl.skipped[0]['reason']})",
                )
            p = self._no_speech(item.path, tl.duration, speech, [])
            p.gated = tl.gated
            return p
        ov = tl.overall()
        return Prediction(
            label=ov["label"],
            probabilities=ov["probabilities"],
            uncertain=ov["uncertain"],
            path=item.path,
            duration=tl.duration,
            segments=tl.segments,
            speech_seconds=speech,
            speech_gate=tl.speech_gate,
            gated=tl.gated,
        )

    def _proba_short(
        self, shorts: list[ShortClip], errors: str
    ) -> dict[int, tuple[np.ndarray, float | None] | Exception]:
        out: dict[int, tuple[np.ndarray, float | None] | Exception] = {}
        if not shorts:
            return out
        try:
            P, S = self._proba([s.wav for s in shorts])
            for i, s in enumerate(shorts):
                out[id(s)] = (P[i], None if S is None else float(S[i]))
            return out
        except (AudioError, ValueError):
            pass
        for s in shorts:  # isolate the item that failed the batch
            try:
                P, S = self._proba([s.wav])
                out[id(s)] = (P[0], None if S is None else float(S[0]))
            except AudioError as exc:
                if errors == "raise":
                    raise AudioError(s.name, exc.reason) from exc
                out[id(s)] = exc
            except ValueError as exc:
                if errors == "raise":
                    raise
                out[id(s)] = exc
        return out

    def _proba(self, wavs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and, when the engine has a domain score, the domain scores."""
        with_domain = getattr(self.engine, "predict_with_domain", None)
        if with_domain is not None:
            P, S = with_domain(wavs)
        else:
            P, S = self.engine.predict_proba(wavs), None
        P = np.asarray(P, dtype=np.float64)
        if P.shape != (len(wavs), len(self.labels)):
            raise ValueError(
                f"recognizer returned shape {P.shape}, expected {(len(wavs), len(self.labels))}"
            )
        return P, None if S is None else np.asarray(S, dtype=np.float64)

    def _out_of_domain(self, score: float | None) -> bool | None:
        domain = getattr(self.engine, "domain", None)
        if score is None or domain is None or domain.threshold is None:
            return None
        return bool(domain.flag(np.array([score]))[0])

    def _make(
        self, p: np.ndarray, path: str | None, duration: float, speech: SpeechAmount | None
    ) -> Prediction:
        k = int(np.argmax(p))
        return Prediction(
            label=self.labels[k],
            probabilities={lab: round(float(v), 4) for lab, v in zip(self.labels, p, strict=True)},
            uncertain=bool(p[k] < self.threshold),
            path=path,
            duration=duration,
            speech_seconds=None if speech is None else speech.seconds,
            speech_gate=None if speech is None else speech.detector,
        )

    def _failed(self, x: object, exc: Exception, index: int | None) -> Prediction:
        path = os.fspath(x) if isinstance(x, (str, os.PathLike)) else None
        name = describe_input(x, index)
        if isinstance(exc, AudioError):  # named after the input, whatever named it first
            msg = exc.reason if path is not None else f"{name}: {exc.reason}"
        elif str(exc).startswith(name):
            msg = str(exc)
        else:
            msg = f"{name}: {exc}"
        return Prediction(None, {}, False, path=path, error=msg)

    def _prepare(
        self, x: object, sr: int | None, index: int | None, force_long: bool = False
    ) -> ShortClip | LongRecording:
        return prepare(
            x, sr, index, long_seconds=self.long_seconds, preprocess=self._pre,
            force_long=force_long,
        )  # fmt: skip

    @property
    def vad(self) -> VAD:
        """The speech detector for long recordings (made on first use)."""
        if self._vad is None:
            self._vad = make_vad(self.vad_kind)
        return self._vad

    @property
    def gate(self) -> SpeechGate | None:
        """The speech gate of short clips (made on first use, its detector ``gate_kind``:
        ``vad``'s, or the energy detector for the fast model with ``vad="auto"``); None when
        :attr:`speech_gate` is off."""
        if not self.speech_gate:
            return None
        if self._gate is None:
            self._gate = SpeechGate(self.gate_kind)
        return self._gate

    def _analyze(self, item: LongRecording) -> Timeline:
        return analyze_chunks(
            item.chunks(),
            self.engine,
            vad=self.vad,
            config=self.segmenter,
            batch_size=8,
            source=item.path,
            gate=self.gate,
        )


def _errors_mode(errors: str, on_error: str | None) -> str:
    """``errors``, or the deprecated ``on_error`` (``"record"`` = ``"return"``) when given."""
    if on_error is not None:
        warnings.warn(
            "on_error= is deprecated: use errors='return' (was 'record') or errors='raise'",
            DeprecationWarning,
            stacklevel=4,
        )
        errors = {"record": "return"}.get(on_error, on_error)
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    return errors


def _noted(p: Prediction, item: ShortClip | LongRecording) -> Prediction:
    """``p`` with the decoding warnings of the input it answers."""
    p.warnings = list(item.warnings)
    return p


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        warnings.warn(
            "emovox.inference.recognizer.Predictor was renamed Recognizer; the old name will be "
            "removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return Recognizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
