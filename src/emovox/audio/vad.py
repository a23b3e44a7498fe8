"""Voice activity detection: per-frame speech probabilities over 16 kHz audio.

Silero VAD (the ``silero-vad`` package's ONNX model, run here directly with onnxruntime; nothing
that imports torch is touched), or, when that is not installed, a crude energy detector.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

from emovox.audio.silero_front import HANDOVER

#: Samples per VAD frame at 16 kHz (32 ms, Silero's frame); detectors score frames of this size.
FRAME = 512
_CONTEXT = 64  # samples of the previous frame the Silero model sees with each frame


class VAD(Protocol):
    """A streaming voice activity detector over :data:`FRAME`-sample frames at 16 kHz."""

    name: str

    def reset(self) -> None: ...

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


def silero_model_path() -> Path | None:
    """The ONNX sequence model shipped in the ``silero-vad`` package (found without importing
    the package, whose ``__init__`` imports torch), or None when it is not installed."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "data" / "silero_vad_16k_sequence.onnx"
    return path if path.exists() else None


def silero_available() -> bool:
    """True when the Silero model and onnxruntime are both installed (False, not an error,
    when looking them up fails)."""
    try:
        return silero_model_path() is not None and bool(importlib.util.find_spec("onnxruntime"))
    except (ImportError, ValueError):
        return False


class SileroVAD:
    """Silero VAD (ONNX sequence model) run block-wise, state carried between calls.

    Gives the same per-frame speech probabilities as the package's own streaming model.
    ``split`` (default when the ``onnx`` package is installed): its convolutional front end in
    numpy and only the LSTM in onnxruntime (:mod:`emovox.audio.silero_front`), about twice as
    fast; False runs the whole graph.
    """

    name = "silero"

    def __init__(self, max_frames: int = 512, split: bool = True):
        import onnxruntime as ort

        from emovox.audio.silero_front import load_split

        path = silero_model_path()
        if path is None:
            raise RuntimeError("silero-vad is not installed (pip install --no-deps silero-vad)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._split = load_split(str(path)) if split else None
        graph = str(path) if self._split is None else self._split.tail
        self._session = ort.InferenceSession(
            graph, sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.max_frames = max_frames
        self.reset()

    @property
    def split(self) -> bool:
        """True when the front end runs in numpy (:mod:`emovox.audio.silero_front`)."""
        return self._split is not None

    def reset(self) -> None:
        """Forget the state: the next call starts a new recording."""
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
            rows = np.concatenate([ctx, fr], axis=1)
            if self._split is None:
                feed = {"input": rows}
            else:
                feed = {HANDOVER: self._split.front(rows)}
            probs, self._h, self._c = self._session.run(
                ["speech_probs", "hn", "cn"], feed | {"h": self._h, "c": self._c}
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
        """Forget the noise floor: the next call starts a new recording."""
        self._floor: float | None = None

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """1.0 (speech) or 0.0 for each row of ``frames`` (n, 512), in order."""
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
