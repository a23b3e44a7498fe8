"""The ready-to-use Python API: ``emovox.load()`` → :class:`Predictor` → :class:`Prediction`.

>>> import emovox                                         # doctest: +SKIP
>>> model = emovox.load()                                 # the packaged default model
>>> p = model.predict("clip.wav")
>>> p.label, p.probabilities["angry"], p.uncertain
>>> model.predict(waveform, sr=44100)                     # numpy arrays, resampled to 16 kHz
>>> model.predict(open("clip.opus", "rb").read())         # raw bytes, format sniffed from content
>>> model.predict_many(["a.wav", "b.flac"], on_error="record")   # one bad file spoils nothing

Inputs longer than ``long_seconds`` (20 s by default) are split into speech segments
(:mod:`emovox.inference.longform`); their :class:`Prediction` has ``segments`` (a timeline) and the
overall
label is the duration-weighted mean of the segments' probabilities.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emovox.audio import SAMPLE_RATE, AudioError, Preprocess, decode
from emovox.inference.longform import (
    LONG_SECONDS,
    VAD,
    RecognizerLike,
    SegmenterConfig,
    Timeline,
    analyze_chunks,
    clean_reason,
    iter_array,
    iter_blocks,
    make_vad,
    probe_seconds,
)

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


def _describe(x: object, index: int | None) -> str:
    where = "" if index is None else f"input {index}: "
    if isinstance(x, (str, os.PathLike)):
        return os.fspath(x)
    if isinstance(x, (bytes, bytearray)):
        return f"<{where}{len(x)} bytes>"
    if isinstance(x, np.ndarray):
        return f"<{where}array {x.shape} {x.dtype}>"
    return f"<{where}{type(x).__name__}>"


def to_mono_float(x: np.ndarray, name: str = "<array>") -> np.ndarray:
    """A 1-D float32 waveform from an array: integer PCM scaled to [-1, 1]; 2-D arrays are
    ``(frames, channels)`` as soundfile gives, or ``(channels, frames)`` when the first axis is
    short (<= 8) and the second long; channels are averaged."""
    a = np.asarray(x)
    if a.dtype.kind == "i":
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
    elif a.dtype.kind == "u":
        info = np.iinfo(a.dtype)
        a = (a.astype(np.float32) - (info.max + 1) / 2) / ((info.max + 1) / 2)
    elif a.dtype.kind != "f":
        raise AudioError(name, f"not a waveform: array of dtype {a.dtype}")
    if a.ndim == 2:
        if a.shape[0] <= 8 < a.shape[1]:
            a = a.T
        a = a.mean(axis=1)
    elif a.ndim != 1:
        raise AudioError(name, f"not a waveform: array of shape {a.shape} (need 1-D or 2-D)")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.size == 0:
        raise AudioError(name, "empty input (no samples)")
    if not np.all(np.isfinite(a)):
        raise AudioError(name, "audio contains NaN or infinite samples")
    return a


def _resample(y: np.ndarray, sr: int, name: str) -> np.ndarray:
    import soxr

    if sr <= 0:
        raise AudioError(name, f"invalid sample rate {sr}")
    if sr == SAMPLE_RATE:
        return y
    return soxr.resample(y, sr, SAMPLE_RATE, quality="HQ").astype(np.float32)


@contextmanager
def _bytes_source(data: bytes, name: str) -> Iterator[object]:
    """Something soundfile opens for in-memory audio: the bytes themselves (read through
    io.BytesIO), else a temporary file (some decoders need a real file), always deleted."""
    import soundfile as sf

    if not data:
        raise AudioError(name, "empty input (0 bytes)")
    try:
        with sf.SoundFile(io.BytesIO(data)):
            pass
        yield bytes(data)
        return
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        first = exc
    fd, tmp = tempfile.mkstemp(prefix="emovox-", suffix=".audio")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            with sf.SoundFile(tmp):
                pass
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
            reason = clean_reason(str(first))
            raise AudioError(name, f"not decodable audio ({reason})") from first
        yield tmp
    finally:
        Path(tmp).unlink(missing_ok=True)


class Predictor:
    """A recognizer plus everything around it: decoding, checks, batching, long recordings.

    ``recognizer`` is anything with ``labels``, ``threshold`` and ``predict_proba(wavs)``
    (:class:`emovox.inference.bundle.Recognizer`); ``vad`` is ``"auto"``, ``"silero"`` or
    ``"energy"``.
    """

    def __init__(
        self,
        recognizer: RecognizerLike,
        *,
        long_seconds: float = LONG_SECONDS,
        vad: str = "auto",
        segmenter: SegmenterConfig | None = None,
        batch_size: int = 16,
    ) -> None:
        self.recognizer = recognizer
        self.long_seconds = long_seconds
        self.vad_kind = vad
        self.segmenter = segmenter or SegmenterConfig()
        self.batch_size = max(1, batch_size)
        pre = getattr(recognizer, "preprocess_cfg", None)
        self._pre: Preprocess = pre if isinstance(pre, Preprocess) else Preprocess()
        self._vad: VAD | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.recognizer.labels)

    @property
    def threshold(self) -> float:
        return float(self.recognizer.threshold)

    @property
    def card(self) -> dict[str, Any]:
        return dict(getattr(self.recognizer, "card", {}) or {})

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
        P = np.asarray(self.recognizer.predict_proba(wavs), dtype=np.float64)
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
        name = _describe(x, index)
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
        name = _describe(x, index)
        if isinstance(x, np.ndarray):
            if sr is None:
                raise ValueError(f"{name}: pass sr= (the sample rate) with a numpy array")
            y = _resample(to_mono_float(x, name), int(sr), name)
            if force_long or len(y) > self.long_seconds * SAMPLE_RATE:
                return _Long(y, None, name)
            return _Short(self._check(y, name), None, name)
        if isinstance(x, (bytes, bytearray)):
            with _bytes_source(bytes(x), name) as src:
                try:
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
            self.recognizer,
            vad=self.vad,
            config=self.segmenter,
            batch_size=8,
            source=item.path,
        )


def _load_recognizer(path: str | Path | None, backend: str) -> RecognizerLike:
    from emovox.inference.bundle import load_bundle

    return load_bundle(path, backend=backend)


def load(
    path: str | Path | None = None,
    backend: str = "auto",
    *,
    long_seconds: float = LONG_SECONDS,
    vad: str = "auto",
) -> Predictor:
    """Load a model folder (``None``: the packaged default model) as a :class:`Predictor`.

    ``backend``: ``"auto"`` (ONNX when onnxruntime is installed), ``"onnx"``, ``"torch"`` or
    ``"numpy"``.
    """
    return Predictor(_load_recognizer(path, backend), long_seconds=long_seconds, vad=vad)
