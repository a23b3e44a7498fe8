"""Loading a model folder as a :class:`~emovox.inference.recognizer.Recognizer`: :func:`load`
(``emovox.load``) and the engine under it, :func:`load_engine`."""

from __future__ import annotations

from pathlib import Path

from emovox.audio.segment import LONG_SECONDS
from emovox.inference.recognizer import Recognizer
from emovox.inference.timeline import RecognizerLike


def load_engine(path: str | Path | None, backend: str) -> RecognizerLike:
    """The engine :func:`load` wraps: the bundle at ``path`` (``None``: the packaged default
    model) as an :class:`emovox.inference.engine.EncoderHead`, or a fast model (``"fast"``: the
    packaged one) as an :class:`emovox.inference.fast.FastEngine` (tests replace this
    function)."""
    from emovox.inference.engine import load_bundle
    from emovox.inference.fast import FastEngine, is_fast_bundle, resolve_model

    folder = resolve_model(path)
    if folder is not None and is_fast_bundle(folder):
        return FastEngine(folder, backend)
    return load_bundle(folder, backend=backend)


def load(
    path: str | Path | None = None,
    backend: str = "auto",
    *,
    long_seconds: float = LONG_SECONDS,
    vad: str = "auto",
    speech_gate: bool = True,
) -> Recognizer:
    """Load a model folder (``None``: the packaged default model; ``"fast"``: the packaged fast
    model) as a :class:`Recognizer`.

    ``backend``: ``"auto"`` (ONNX when onnxruntime is installed), ``"onnx"``, ``"onnx-int8"``
    (the ONNX graph with int8 weights), ``"torch"`` or ``"numpy"`` (the fast model: ``"auto"``,
    ``"onnx"`` or ``"torch"``). ``speech_gate``: audio with too little speech gets
    ``no_speech``, not an emotion. ``vad="auto"`` means Silero where installed, except for the
    fast model's speech gate on short clips, which uses the energy detector: there Silero costs
    several times the fast model itself (pass ``vad="silero"`` to have it anyway). Long
    recordings and live audio are segmented by ``vad``'s detector for both models."""
    engine = load_engine(path, backend)
    return Recognizer(engine, long_seconds=long_seconds, vad=vad, speech_gate=speech_gate)
