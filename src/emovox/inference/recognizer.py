"""The ready-to-use Python API: ``emovox.load()`` → :class:`Recognizer` → :class:`Prediction`.

>>> import emovox                                         # doctest: +SKIP
>>> model = emovox.load()                                 # the packaged default model
>>> p = model.predict("clip.wav")
>>> p.label, p.probabilities["angry"], p.uncertain
>>> model.predict(waveform, sr=44100)                     # numpy arrays, resampled to 16 kHz
>>> model.predict(open("clip.opus", "rb").read())         # raw bytes, format sniffed from content
>>> model.predict_many(["a.wav", "b.flac"], on_error="record")   # one bad file spoils nothing

Inputs longer than ``long_seconds`` (20 s by default) are split into speech segments
(:mod:`emovox.inference.timeline`); their :class:`Prediction` has ``segments`` (a timeline) and
the overall label is the duration-weighted mean of the segments' probabilities.

``Predictor``, this class's former name, still works with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
from emovox.audio.preprocess import Preprocess
from emovox.audio.segment import LONG_SECONDS, SegmenterConfig
from emovox.audio.stream import clean_reason, iter_array, iter_blocks, probe_seconds
from emovox.audio.vad import VAD, make_vad
from emovox.inference.timeline import RecognizerLike, Timeline, analyze_chunks

Input = str | os.PathLike | bytes | bytearray | np.ndarray


@dataclass
class Prediction:
    """The emotion of one input. ``error`` is set (and ``label`` None) for a failed input."""

    label: str | None
    probabilities: dict[str, float]
    uncertain: bool
    path: str | None = None
    duration: float | None = None
    segments: list[dict[str, Any]] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``path``, ``label``, ``probabilities``, ``uncertain``, ``duration``
        (+ ``segments`` for long recordings); ``path`` and ``error`` for a failed input."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        d: dict[str, Any] = {
            "path": self.path,
            "label": self.label,
            "probabilities": self.probabilities,
            "uncertain": self.uncertain,
            "duration": None if self.duration is None else round(self.duration, 3),
        }
        if self.segments is not None:
            d["segments"] = self.segments
        return d


@dataclass
class _Short:
    wav: np.ndarray
    path: str | None
    name: str


@dataclass
class _Long:
    source: object  # path str | bytes | 16 kHz array
    path: str | None
    name: str


class Recognizer:
    """The loaded model (what ``emovox.load()`` returns): a model engine plus everything around
    it: decoding, checks, batching, long recordings.

    ``engine`` is anything with ``labels``, ``threshold`` and ``predict_proba(wavs)`` (a loaded
    bundle, :class:`emovox.inference.engine.EncoderHead`); ``vad`` is ``"auto"``, ``"silero"``
    or ``"energy"``.
    """

    def __init__(
        self,
        engine: RecognizerLike,
        *,
        long_seconds: float = LONG_SECONDS,
        vad: str = "auto",
        segmenter: SegmenterConfig | None = None,
        batch_size: int = 16,
    ) -> None:
        self.engine = engine
        self.long_seconds = long_seconds
        self.vad_kind = vad
        self.segmenter = segmenter or SegmenterConfig()
        self.batch_size = max(1, batch_size)
        pre = getattr(engine, "preprocess_cfg", None)
        self._pre: Preprocess = pre if isinstance(pre, Preprocess) else Preprocess()
        self._vad: VAD | None = None

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
        """The engine's backend (``"numpy"``, ``"torch"`` or ``"onnx"``); None when it has none."""
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
        self, x: Input | Sequence[Input], sr: int | None = None
    ) -> Prediction | list[Prediction]:
        """One input → :class:`Prediction`; a list → a list (batched). Raises
        :class:`emovox.audio.AudioError` / ``ValueError`` naming the input on bad input."""
        if isinstance(x, (list, tuple)):
            return self.predict_many(x, sr=sr, on_error="raise")
        return next(self.iter_predict([x], sr=sr, on_error="raise", _single=True))

    def predict_many(
        self,
        inputs: Iterable[Input],
        sr: int | None = None,
        on_error: Literal["record", "raise"] = "record",
    ) -> list[Prediction]:
        """Predict every input; with ``on_error="record"`` a failed one gives a
        :class:`Prediction` with ``error`` set and the others go on."""
        return list(self.iter_predict(inputs, sr=sr, on_error=on_error))

    def iter_predict(
        self,
        inputs: Iterable[Input],
        sr: int | None = None,
        on_error: Literal["record", "raise"] = "record",
        _single: bool = False,
    ) -> Iterator[Prediction]:
        """Like :meth:`predict_many`, yielding each result (in input order) as it is ready."""
        if on_error not in ("record", "raise"):
            raise ValueError(f"on_error must be 'record' or 'raise', got {on_error!r}")
        batch: list[tuple[int, Any]] = []
        for i, x in enumerate(inputs):
            batch.append((i, x))
            if len(batch) >= self.batch_size:
                yield from self._run_batch(batch, sr, on_error, _single)
                batch = []
        if batch:
            yield from self._run_batch(batch, sr, on_error, _single)

    def timeline(self, x: Input, sr: int | None = None) -> Timeline:
        """The long-recording path for any input, whatever its length."""
        item = self._prepare(x, sr, None, force_long=True)
        assert isinstance(item, _Long)
        return self._analyze(item)

    # ---------------------------------------------------------------- internals

    def _run_batch(
        self, batch: list[tuple[int, Any]], sr: int | None, on_error: str, single: bool
    ) -> Iterator[Prediction]:
        prepared: list[_Short | _Long | Prediction] = []
        for i, x in batch:
            try:
                prepared.append(self._prepare(x, sr, None if single else i))
            except (AudioError, ValueError, TypeError) as exc:
                if on_error == "raise":
                    raise
                prepared.append(self._failed(x, exc, None if single else i))
        shorts = [p for p in prepared if isinstance(p, _Short)]
        probs = self._proba_short(shorts, on_error)
        for (i, x), p in zip(batch, prepared, strict=True):
            if isinstance(p, Prediction):
                yield p
            elif isinstance(p, _Short):
                r = probs[id(p)]
                if isinstance(r, Exception):
                    yield self._failed(x, r, None if single else i)
                else:
                    yield self._make(r, p.path, len(p.wav) / SAMPLE_RATE)
            else:
                try:
                    tl = self._analyze(p)
                    if not tl.segments:
                        why = f"no speech detected in {tl.duration:.1f} s"
                        if tl.skipped:
                            why = (f"no usable speech in {tl.duration:.1f} s: {len(tl.skipped)} "
                                   f"segment(s) refused ({tl.skipped[0]['reason']})")  # fmt: skip
                        raise AudioError(p.name, why)
                except (AudioError, ValueError) as exc:
                    if on_error == "raise":
                        raise
                    yield self._failed(x, exc, None if single else i)
                    continue
                ov = tl.overall()
                yield Prediction(
                    label=ov["label"],
                    probabilities=ov["probabilities"],
                    uncertain=ov["uncertain"],
                    path=p.path,
                    duration=tl.duration,
                    segments=tl.segments,
                )

    def _proba_short(
        self, shorts: list[_Short], on_error: str
    ) -> dict[int, np.ndarray | Exception]:
        out: dict[int, np.ndarray | Exception] = {}
        if not shorts:
            return out
        try:
            P = self._proba([s.wav for s in shorts])
            for s, p in zip(shorts, P, strict=True):
                out[id(s)] = p
            return out
        except (AudioError, ValueError):
            pass
        for s in shorts:  # isolate the item that failed the batch
            try:
                out[id(s)] = self._proba([s.wav])[0]
            except AudioError as exc:
                if on_error == "raise":
                    raise AudioError(s.name, exc.reason) from exc
                out[id(s)] = exc
            except ValueError as exc:
                if on_error == "raise":
                    raise
                out[id(s)] = exc
        return out

    def _proba(self, wavs: list[np.ndarray]) -> np.ndarray:
        P = np.asarray(self.engine.predict_proba(wavs), dtype=np.float64)
        if P.shape != (len(wavs), len(self.labels)):
            raise ValueError(
                f"recognizer returned shape {P.shape}, expected {(len(wavs), len(self.labels))}"
            )
        return P

    def _make(self, p: np.ndarray, path: str | None, duration: float) -> Prediction:
        k = int(np.argmax(p))
        return Prediction(
            label=self.labels[k],
            probabilities={lab: round(float(v), 4) for lab, v in zip(self.labels, p, strict=True)},
            uncertain=bool(p[k] < self.threshold),
            path=path,
            duration=duration,
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

    def _check(self, y: np.ndarray, name: str) -> np.ndarray:
        pre = self._pre
        if len(y) < pre.min_seconds * SAMPLE_RATE:
            raise AudioError(
                name, f"too short: {len(y) / SAMPLE_RATE:.3f} s (< {pre.min_seconds} s)"
            )
        if float(np.max(np.abs(y))) <= 10 ** (pre.silence_dbfs / 20):
            raise AudioError(name, f"silent: peak level below {pre.silence_dbfs:g} dBFS")
        return y

    def _prepare(
        self, x: object, sr: int | None, index: int | None, force_long: bool = False
    ) -> _Short | _Long:
        name = describe_input(x, index)
        if isinstance(x, np.ndarray):
            if sr is None:
                raise ValueError(f"{name}: pass sr= (the sample rate) with a numpy array")
            y = resample(to_mono_float(x, name), int(sr), name)
            if force_long or len(y) > self.long_seconds * SAMPLE_RATE:
                return _Long(y, None, name)
            return _Short(self._check(y, name), None, name)
        if isinstance(x, (bytes, bytearray)):
            try:
                with bytes_source(bytes(x), name) as src:
                    long = force_long or probe_seconds(src, name) > self.long_seconds
                    if long and isinstance(src, bytes):
                        return _Long(src, None, name)  # streamed from memory
                    y = decode(src)  # a temporary file: decoded before it is deleted
            except AudioError as exc:
                raise AudioError(name, clean_reason(exc.reason)) from exc
            return _Long(y, None, name) if long else _Short(self._check(y, name), None, name)
        if isinstance(x, (str, os.PathLike)):
            path = os.fspath(x)
            try:
                if force_long or probe_seconds(path) > self.long_seconds:
                    return _Long(path, path, path)
                y = decode(path)
            except AudioError as exc:
                raise AudioError(path, clean_reason(exc.reason)) from exc
            return _Short(self._check(y, path), path, path)
        raise TypeError(
            f"{name}: cannot predict from a {type(x).__name__}: "
            "give a path, bytes, or a numpy array with sr="
        )

    @property
    def vad(self) -> VAD:
        """The speech detector for long recordings (made on first use)."""
        if self._vad is None:
            self._vad = make_vad(self.vad_kind)
        return self._vad

    def _analyze(self, item: _Long) -> Timeline:
        src = item.source
        if isinstance(src, np.ndarray):
            chunks: Iterable[np.ndarray] = iter_array(src)
        else:
            chunks = iter_blocks(src, name=item.name)  # type: ignore[arg-type]
        return analyze_chunks(
            chunks,
            self.engine,
            vad=self.vad,
            config=self.segmenter,
            batch_size=8,
            source=item.path,
        )


def load_engine(path: str | Path | None, backend: str) -> RecognizerLike:
    """The engine :func:`load` wraps: the bundle at ``path`` (``None``: the packaged default
    model) as an :class:`emovox.inference.engine.EncoderHead` (tests replace this function)."""
    from emovox.inference.engine import load_bundle

    return load_bundle(path, backend=backend)


def load(
    path: str | Path | None = None,
    backend: str = "auto",
    *,
    long_seconds: float = LONG_SECONDS,
    vad: str = "auto",
) -> Recognizer:
    """Load a model folder (``None``: the packaged default model) as a :class:`Recognizer`.

    ``backend``: ``"auto"`` (ONNX when onnxruntime is installed), ``"onnx"``, ``"torch"`` or
    ``"numpy"``.
    """
    return Recognizer(load_engine(path, backend), long_seconds=long_seconds, vad=vad)


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
