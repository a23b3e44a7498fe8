"""Long recordings: stream-decode, find speech (voice activity detection), one emotion per segment.

The audio is decoded block by block and resampled with soxr's streaming resampler, so a one-hour
file is never held in memory: only the speech segment being collected (at most ~1.5 windows) is.
Speech is found with Silero VAD (the ``silero-vad`` package's ONNX model, run here directly with
onnxruntime; nothing that imports torchaudio is touched), or, when that is not installed, with a
crude energy detector (a warning says so). Long stretches of speech are cut into windows of at
most ``max_window`` seconds; each segment gets the recognizer's probabilities, and the result is a
:class:`Timeline` that writes itself as JSON, CSV and a PNG plot.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf
import soxr

from emovox.audio import SAMPLE_RATE, AudioError, AudioSource, sound_handle, source_name

#: Inputs longer than this (seconds) go through the long-recording path by default.
LONG_SECONDS = 20.0
#: Longest window (seconds) one emotion is predicted for.
MAX_WINDOW = 8.0

_FRAME = 512  # Silero VAD frame at 16 kHz (32 ms)
_CONTEXT = 64  # samples of the previous frame the model sees with each frame


class RecognizerLike(Protocol):
    """What this module needs from a recognizer (``emovox.inference.bundle.Recognizer`` has it)."""

    labels: tuple[str, ...]
    sample_rate: int
    threshold: float

    def predict_proba(self, wavs: Sequence[np.ndarray]) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------
# Streaming decode


_OPENING = re.compile(r"Error opening (<[^>]*>|'[^']*'|\S+): ")


def clean_reason(text: str) -> str:
    """libsndfile's message without its ``Error opening <object at 0x...>:`` prefix."""
    return _OPENING.sub("", text)


def _open(source: AudioSource, name: str | None = None) -> sf.SoundFile:
    name = name or source_name(source)
    try:
        return sf.SoundFile(sound_handle(source))
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(name, f"not decodable audio ({clean_reason(str(exc))})") from exc


def probe_seconds(source: AudioSource, name: str | None = None) -> float:
    """Duration in seconds from the header (no decoding); :class:`AudioError` if unreadable."""
    with _open(source, name) as f:
        if f.samplerate <= 0:
            raise AudioError(name or source_name(source), "no sample rate in the header")
        return f.frames / f.samplerate


def iter_blocks(
    source: AudioSource,
    sr: int = SAMPLE_RATE,
    block_seconds: float = 10.0,
    name: str | None = None,
) -> Iterator[np.ndarray]:
    """Decode to mono float32 at ``sr`` block by block (bounded memory, any length).

    The concatenated blocks equal :func:`emovox.audio.decode` of the same source (soxr's
    streaming resampler gives the one-shot result). Raises :class:`AudioError` naming the source.
    """
    name = name or source_name(source)
    with _open(source, name) as f:
        native = int(f.samplerate)
        rs = (
            soxr.ResampleStream(native, sr, 1, dtype="float32", quality="HQ")
            if native != sr
            else None
        )
        block = max(1, int(block_seconds * native))
        got = 0
        while True:
            try:
                y = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                raise AudioError(
                    name, f"decoding failed after {got / native:.1f} s ({exc})"
                ) from exc
            last = len(y) < block
            got += len(y)
            y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
            if not np.all(np.isfinite(y)):
                raise AudioError(name, "audio contains NaN or infinite samples")
            if rs is not None:
                y = rs.resample_chunk(y, last=last)
            if len(y):
                yield np.ascontiguousarray(y, dtype=np.float32)
            if last:
                break
        if got == 0:
            raise AudioError(name, "no audio samples")


def iter_array(y: np.ndarray, block: int = 10 * SAMPLE_RATE) -> Iterator[np.ndarray]:
    """An in-memory 16 kHz waveform as blocks, like :func:`iter_blocks`."""
    for i in range(0, len(y), block):
        yield y[i : i + block]


def paced(chunks: Iterable[np.ndarray], speed: float = 1.0) -> Iterator[np.ndarray]:
    """Yield 16 kHz chunks no faster than real time x ``speed`` (``speed <= 0``: no waiting),
    so a file plays through the live pipeline as a microphone would."""
    import time

    t0 = time.monotonic()
    played = 0
    for c in chunks:
        if speed > 0:
            wait = t0 + played / SAMPLE_RATE / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        played += len(c)
        yield c


def microphone_available() -> bool:
    """True when ``sounddevice`` imports (it needs the PortAudio library)."""
    if importlib.util.find_spec("sounddevice") is None:
        return False
    try:
        import sounddevice  # noqa: F401
    except (OSError, ImportError):
        return False
    return True


def microphone_chunks(
    device: int | str | None = None, block_seconds: float = 0.1
) -> Iterator[np.ndarray]:
    """Live 16 kHz mono chunks from an input device until Ctrl-C (then it simply ends)."""
    import queue

    import sounddevice as sd

    info = sd.query_devices(device, "input")
    native = int(info["default_samplerate"]) or SAMPLE_RATE
    q: queue.Queue[np.ndarray] = queue.Queue()

    def callback(indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        q.put(indata.mean(axis=1).astype(np.float32))

    rs = (
        soxr.ResampleStream(native, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        if native != SAMPLE_RATE
        else None
    )
    try:
        with sd.InputStream(
            samplerate=native,
            channels=1,
            dtype="float32",
            blocksize=max(1, int(block_seconds * native)),
            device=device,
            callback=callback,
        ):
            while True:
                y = q.get()
                yield rs.resample_chunk(y) if rs is not None else y
    except KeyboardInterrupt:
        return


# --------------------------------------------------------------------------------------------
# Voice activity detection


def silero_model_path() -> Path | None:
    """The ONNX sequence model shipped in the ``silero-vad`` package (found without importing
    the package, whose ``__init__`` imports torch), or None when it is not installed."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "data" / "silero_vad_16k_sequence.onnx"
    return path if path.exists() else None


def silero_available() -> bool:
    return silero_model_path() is not None and importlib.util.find_spec("onnxruntime") is not None


class VAD(Protocol):
    """A streaming voice activity detector over 512-sample frames at 16 kHz."""

    name: str

    def reset(self) -> None: ...

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


class SileroVAD:
    """Silero VAD (ONNX sequence model) run block-wise, state carried between calls.

    Gives the same per-frame speech probabilities as the package's own streaming model.
    """

    name = "silero"

    def __init__(self, max_frames: int = 512):
        import onnxruntime as ort

        path = silero_model_path()
        if path is None:
            raise RuntimeError("silero-vad is not installed (pip install --no-deps silero-vad)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.max_frames = max_frames
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._ctx = np.zeros(_CONTEXT, np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Speech probability for each row of ``frames`` (n, 512), in order."""
        out = []
        for i in range(0, len(frames), self.max_frames):
            fr = np.ascontiguousarray(frames[i : i + self.max_frames], dtype=np.float32)
            ctx = np.concatenate([self._ctx[None, :], fr[:-1, -_CONTEXT:]], axis=0)
            self._ctx = fr[-1, -_CONTEXT:].copy()
            probs, self._h, self._c = self._session.run(
                ["speech_probs", "hn", "cn"],
                {"input": np.concatenate([ctx, fr], axis=1), "h": self._h, "c": self._c},
            )
            out.append(np.asarray(probs, dtype=np.float32).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, np.float32)


class EnergyVAD:
    """Fallback detector: frame level above an adaptive noise floor (1.0 speech, 0.0 not).

    Much cruder than Silero: any sound clearly louder than the background counts as speech. The
    floor starts at ``start_db`` at most (so a recording that opens with speech still works),
    drops at once to quieter frames, follows non-speech frames up and creeps up under speech.
    """

    name = "energy"

    def __init__(
        self,
        margin_db: float = 12.0,
        min_db: float = -50.0,
        start_db: float = -45.0,
        rise_db: float = 0.01,
    ):
        self.margin_db, self.min_db, self.start_db = margin_db, min_db, start_db
        self.rise_db = rise_db
        self.reset()

    def reset(self) -> None:
        self._floor: float | None = None

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        db = 10 * np.log10(np.mean(np.asarray(frames, np.float64) ** 2, axis=1) + 1e-12)
        out = np.zeros(len(db), np.float32)
        floor = self._floor
        for i, d in enumerate(db):
            if floor is None:
                floor = min(float(d), self.start_db)
            speech = d > max(floor + self.margin_db, self.min_db)
            if d < floor:
                floor = float(d)
            elif speech:
                floor += self.rise_db
            else:
                floor += 0.05 * (d - floor)
            out[i] = 1.0 if speech else 0.0
        self._floor = floor
        return out


def make_vad(kind: str = "auto") -> VAD:
    """``"silero"``, ``"energy"``, or ``"auto"`` (Silero when installed, else energy + warning)."""
    if kind == "energy":
        return EnergyVAD()
    if kind == "silero":
        if not silero_available():
            raise RuntimeError(
                "Silero VAD needs the silero-vad and onnxruntime packages "
                "(pip install --no-deps silero-vad onnxruntime)"
            )
        return SileroVAD()
    if kind != "auto":
        raise ValueError(f"unknown VAD {kind!r}: use auto, silero or energy")
    if silero_available():
        return SileroVAD()
    warnings.warn(
        "silero-vad (or onnxruntime) is not installed: finding speech with a crude energy "
        "detector instead (pip install --no-deps silero-vad onnxruntime)",
        RuntimeWarning,
        stacklevel=2,
    )
    return EnergyVAD()


# --------------------------------------------------------------------------------------------
# Segmentation


@dataclass(frozen=True)
class SegmenterConfig:
    """How speech is cut into segments (seconds; probabilities for the VAD)."""

    threshold: float = 0.5  # a frame at or above this starts / continues speech
    neg_threshold: float = 0.35  # below this a frame counts as silence
    min_silence: float = 0.4  # a pause this long ends a segment
    min_speech: float = 0.25  # shorter segments are dropped
    pad: float = 0.1  # kept each side of a segment (<= min_silence)
    max_window: float = MAX_WINDOW  # longest segment; longer speech is cut into windows


@dataclass
class SpeechSegment:
    """A stretch of speech: ``start``/``end`` in samples at 16 kHz, and its audio."""

    start: int
    end: int
    audio: np.ndarray


class StreamingSegmenter:
    """Feed 16 kHz audio in any chunk sizes; get speech segments as soon as they end.

    Holds only the audio of the segment being collected (plus a little padding), so memory does
    not grow with the recording. A run of speech longer than 1.5 windows gives up one
    ``max_window`` window at a time; what is left at its end (<= 1.5 windows) is one window, or
    two equal halves when longer than ``max_window``, so no window is a tiny tail.
    """

    def __init__(
        self, vad: VAD, config: SegmenterConfig | None = None, sr: int = SAMPLE_RATE
    ) -> None:
        self.cfg = cfg = config or SegmenterConfig()
        if sr != SAMPLE_RATE:
            raise ValueError("the segmenter works at 16 kHz")
        self.vad = vad
        vad.reset()
        self.sr = sr
        self._pad = int(min(cfg.pad, cfg.min_silence) * sr)
        self._min_silence = int(cfg.min_silence * sr)
        self._min_speech = int(cfg.min_speech * sr)
        self._max = max(int(cfg.max_window * sr), _FRAME)
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute sample index of _buf[0]
        self._fed = 0
        self._frames = 0  # frames given to the VAD
        self._in_speech = False
        self._start = 0
        self._first = True
        self._temp_end: int | None = None
        self.max_buffered = 0  # most samples ever held (for tests of bounded memory)

    @property
    def position(self) -> int:
        """Samples fed so far."""
        return self._fed

    def feed(self, chunk: np.ndarray) -> list[SpeechSegment]:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.size:
            self._buf = np.concatenate([self._buf, chunk])
            self._fed += chunk.size
        out = self._run_frames((self._fed - self._frames * _FRAME) // _FRAME)
        self._trim()
        return out

    def flush(self) -> list[SpeechSegment]:
        """End of input: the last partial frame (zero-padded) and any open segment."""
        out: list[SpeechSegment] = []
        rest = self._fed - self._frames * _FRAME
        if rest > 0:
            tail = np.zeros(_FRAME, np.float32)
            tail[:rest] = self._slice(self._frames * _FRAME, self._fed)
            out += self._steps(self.vad(tail[None, :]))
        if self._in_speech:
            end = self._temp_end if self._temp_end is not None else self._fed
            out += self._close(end)
        self._trim()
        return out

    # internals

    def _slice(self, a: int, b: int) -> np.ndarray:
        return self._buf[a - self._buf_start : b - self._buf_start]

    def _run_frames(self, n: int) -> list[SpeechSegment]:
        if n <= 0:
            return []
        a = self._frames * _FRAME
        frames = self._slice(a, a + n * _FRAME).reshape(n, _FRAME)
        return self._steps(self.vad(frames))

    def _steps(self, probs: np.ndarray) -> list[SpeechSegment]:
        out: list[SpeechSegment] = []
        cfg = self.cfg
        for p in probs:
            cur = self._frames * _FRAME
            self._frames += 1
            if not self._in_speech:
                if p >= cfg.threshold:
                    self._in_speech, self._start, self._first = True, cur, True
                    self._temp_end = None
                continue
            if p >= cfg.threshold:
                self._temp_end = None
            elif p < cfg.neg_threshold:
                if self._temp_end is None:
                    self._temp_end = cur
                if cur + _FRAME - self._temp_end >= self._min_silence:
                    out += self._close(self._temp_end)
                    continue
            if self._temp_end is None and cur + _FRAME - self._start >= self._max * 3 // 2:
                out.append(self._window(self._start, self._start + self._max, left=self._first))
                self._start += self._max
                self._first = False
        return out

    def _window(self, a: int, b: int, left: bool = False, right: bool = False) -> SpeechSegment:
        if left:
            a = max(a - self._pad, self._buf_start)
        if right:
            b = min(b + self._pad, self._fed)
        return SpeechSegment(a, b, self._slice(a, b).copy())

    def _close(self, end: int) -> list[SpeechSegment]:
        start, first = self._start, self._first
        self._in_speech, self._temp_end = False, None
        n = end - start
        if n <= 0 or (first and n < self._min_speech):
            return []
        if n <= self._max:
            return [self._window(start, end, left=first, right=True)]
        mid = start + n // 2
        return [
            self._window(start, mid, left=first),
            self._window(mid, end, right=True),
        ]

    def _trim(self) -> None:
        if self._in_speech:
            keep = self._start - (self._pad if self._first else 0)
        else:
            keep = self._frames * _FRAME - self._pad
        keep = max(keep, self._buf_start)
        if keep > self._buf_start:
            self._buf = self._buf[keep - self._buf_start :]
            self._buf_start = keep
        self.max_buffered = max(self.max_buffered, self._buf.size)


def find_speech(
    chunks: Iterable[np.ndarray], vad: VAD | None = None, config: SegmenterConfig | None = None
) -> list[tuple[float, float]]:
    """Speech segments ``(start, end)`` in seconds of 16 kHz audio given as chunks."""
    seg = StreamingSegmenter(vad or make_vad(), config)
    found = []
    for c in chunks:
        found += seg.feed(c)
    found += seg.flush()
    return [(s.start / SAMPLE_RATE, s.end / SAMPLE_RATE) for s in found]


# --------------------------------------------------------------------------------------------
# Emotion per segment


@dataclass
class Timeline:
    """Emotion over time: one entry per speech segment (seconds, label, probabilities)."""

    labels: tuple[str, ...]
    threshold: float
    duration: float
    segments: list[dict[str, Any]] = field(default_factory=list)
    vad: str = ""
    source: str | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)  # segments the model refused

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
        return float(sum(s["end"] - s["start"] for s in self.segments))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "duration": round(self.duration, 3),
            "vad": self.vad,
            "labels": list(self.labels),
            "threshold": self.threshold,
            "overall": self.overall(),
            "segments": self.segments,
            "skipped": self.skipped,
        }

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "label", "uncertain", *self.labels])
        for s in self.segments:
            w.writerow(
                [s["start"], s["end"], s["label"], int(s["uncertain"])]
                + [s["probabilities"][lab] for lab in self.labels]
            )
        return buf.getvalue()

    def png(self, title: str | None = None) -> bytes:
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


def _entry(seg: SpeechSegment, probs: np.ndarray, labels: Sequence[str], thr: float) -> dict:
    k = int(np.argmax(probs))
    return {
        "start": round(seg.start / SAMPLE_RATE, 3),
        "end": round(seg.end / SAMPLE_RATE, 3),
        "label": labels[k],
        "probabilities": {lab: round(float(v), 4) for lab, v in zip(labels, probs, strict=True)},
        "uncertain": bool(probs[k] < thr),
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
) -> Timeline:
    """Segment streamed 16 kHz audio and predict an emotion for each segment.

    ``on_segment`` is called with each timeline entry as soon as it is known (with
    ``batch_size=1``, as soon as its segment ends: the live path).
    """
    vad = vad or make_vad()
    seg = StreamingSegmenter(vad, config)
    labels = tuple(recognizer.labels)
    entries: list[dict[str, Any]] = []
    pending: list[SpeechSegment] = []

    skipped: list[dict[str, Any]] = []

    def proba(batch: list[SpeechSegment]) -> np.ndarray:
        probs = np.asarray(recognizer.predict_proba([s.audio for s in batch]), dtype=np.float64)
        if probs.shape != (len(batch), len(labels)):
            raise ValueError(
                f"recognizer returned shape {probs.shape}, expected {(len(batch), len(labels))}"
            )
        return probs

    def classify(batch: list[SpeechSegment]) -> None:
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
                    start, end = s.start / SAMPLE_RATE, s.end / SAMPLE_RATE
                    skipped.append(
                        {"start": round(start, 3), "end": round(end, 3), "reason": exc.reason}
                    )
            batch, probs = kept, np.array(rows)
        for s, p in zip(batch, probs, strict=True):
            e = _entry(s, p, labels, float(recognizer.threshold))
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
    )


def analyze(
    source: AudioSource | np.ndarray,
    recognizer: RecognizerLike,
    *,
    vad: VAD | None = None,
    config: SegmenterConfig | None = None,
    batch_size: int = 8,
    on_segment: Callable[[dict[str, Any]], None] | None = None,
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
    )


# --------------------------------------------------------------------------------------------
# Plot

_COLORS = {
    "neutral": "#9e9e9e",
    "calm": "#80cbc4",
    "happy": "#fbc02d",
    "sad": "#1e88e5",
    "angry": "#e53935",
    "fearful": "#8e24aa",
    "disgust": "#43a047",
    "surprised": "#fb8c00",
    "boredom": "#6d4c41",
}


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    """A fixed colour per emotion (the same in every plot)."""
    import matplotlib

    spare = iter(matplotlib.colormaps["tab20"].colors)
    return {lab: _COLORS.get(lab) or matplotlib.colors.to_hex(next(spare)) for lab in labels}


def timeline_png(tl: Timeline, title: str | None = None) -> bytes:
    """Stacked probabilities over time above a strip of the labels (paler when uncertain)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = label_colors(tl.labels)
    duration = max(tl.duration, 1e-3)
    step = max(0.02, duration / 4000)
    t = np.arange(0.0, duration + step, step)
    probs = np.zeros((len(tl.labels), len(t)))
    for s in tl.segments:
        m = (t >= s["start"]) & (t < s["end"])
        for i, lab in enumerate(tl.labels):
            probs[i, m] = s["probabilities"][lab]
    fig, (ax, strip) = plt.subplots(
        2,
        1,
        figsize=(10, 3.6),
        dpi=110,
        sharex=True,
        gridspec_kw={"height_ratios": [4, 1]},
    )
    ax.stackplot(t, probs, colors=[colors[lab] for lab in tl.labels], step="post", linewidth=0)
    ax.axhline(tl.threshold, color="black", lw=0.6, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, duration)
    ax.set_ylabel("probability")
    ax.set_title(
        title
        or f"{Path(tl.source).name if tl.source else 'recording'}: emotion over time "
        f"({len(tl.segments)} speech segments, VAD {tl.vad})",
        fontsize=9,
    )
    # the label strip as an image over the same grid: no aliasing with thousands of segments
    idx = np.full(len(t), -1)
    unsure = np.zeros(len(t), bool)
    for s in tl.segments:
        m = (t >= s["start"]) & (t < s["end"])
        idx[m] = tl.labels.index(s["label"])
        unsure[m] = s["uncertain"]
    rgb = np.ones((1, len(t), 3))
    for i, lab in enumerate(tl.labels):
        rgb[0, idx == i] = matplotlib.colors.to_rgb(colors[lab])
    faded = unsure & (idx >= 0)
    rgb[0, faded] = 0.45 * rgb[0, faded] + 0.55  # uncertain: paler
    strip.imshow(rgb, aspect="auto", extent=(0, t[-1] + step, 0, 1), interpolation="antialiased")
    if len(tl.segments) <= 40:
        for s in tl.segments:
            if s["end"] - s["start"] > 0.04 * duration:
                text = s["label"] + ("?" if s["uncertain"] else "")
                strip.text((s["start"] + s["end"]) / 2, 0.5, text, ha="center", va="center",
                           fontsize=7)  # fmt: skip
    strip.set_yticks([])
    strip.set_ylabel("label", rotation=0, ha="right", va="center")
    strip.set_xlabel("time (s)")
    handles = [Patch(color=colors[lab], label=lab) for lab in tl.labels]
    handles.append(Patch(facecolor="#e6e6e6", label="paler, '?': uncertain"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
