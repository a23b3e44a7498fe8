"""A loaded bundle as a model: decoded 16 kHz waveforms in, calibrated probabilities out
(:class:`EncoderHead`, made by :func:`load_bundle`). The encoder is one of
:mod:`emovox.inference.backends`; the head is numpy.

>>> head = load_bundle()                       # the packaged default model   # doctest: +SKIP
>>> head.predict_proba([waveform_16k])         # (1, n_labels)                # doctest: +SKIP
>>> P, scores = head.predict_with_domain([waveform_16k])  # + domain scores   # doctest: +SKIP

Decoding, checks, batching and long recordings are :class:`emovox.inference.recognizer.Recognizer`'s
(what ``emovox.load()`` returns).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import SAMPLE_RATE, Preprocess, preprocess
from emovox.features.pooling import merge_chunk_stats
from emovox.inference.backends import (
    BACKENDS,
    Encoder,
    NumpyEncoder,
    OnnxEncoder,
    OnnxInt8Encoder,
    TorchEncoder,
    importable,
)
from emovox.inference.bundle import (
    BundleConfig,
    BundleError,
    bundle_path,
    read_adapted,
    read_bundle,
    read_domain,
)
from emovox.inference.calibration import DomainTemperature
from emovox.inference.domain import DomainScore
from emovox.inference.export import cached_onnx
from emovox.inference.quantize import cached_int8_onnx


def open_encoder(
    backend: str,
    weights: dict[str, np.ndarray],
    cfg: BundleConfig,
    path: Path | None = None,
    threads: int | None = 1,
) -> Encoder:
    """The encoder for ``backend`` (one of :data:`~emovox.inference.backends.BACKENDS`);
    ``"auto"`` is the int8 ONNX graph when onnxruntime, onnx and torch are installed and the
    bundle is on disk (``path``): speaker 5-fold UA within 0.2 points of float32 on the four
    corpora (``bench/int8_accuracy.py``, docs/results.json), about twice as fast. Without the
    ``onnx`` package (needed to quantize) it is the float32 ONNX graph; without onnxruntime,
    torch when installed, else numpy."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    have = {m: importable(m) for m in ("onnxruntime", "torch", "onnx")}
    if backend == "auto":
        if have["onnxruntime"] and have["torch"] and path is not None:
            backend = "onnx-int8" if have["onnx"] else "onnx"
        else:
            backend = "torch" if have["torch"] else "numpy"
    if backend in ("onnx", "onnx-int8"):
        if not have["onnxruntime"]:
            raise ImportError(f"backend {backend!r} needs onnxruntime: pip install onnxruntime")
        if path is None:
            raise ValueError(f"backend {backend!r} needs a bundle on disk")
        if backend == "onnx-int8":
            return OnnxInt8Encoder(cached_int8_onnx(path), threads)
        return OnnxEncoder(cached_onnx(path), threads)
    if backend == "torch":
        if not have["torch"]:
            raise ImportError("backend 'torch' needs PyTorch: pip install torch")
        return TorchEncoder(weights, cfg, threads)
    return NumpyEncoder(weights, cfg)


class MissingAdaptedHead(ValueError):
    """``adapt`` asked of a bundle without the adapted head."""

    def __init__(self, path: str | Path | None) -> None:
        super().__init__(
            f"{path or 'this model'}: no adapted head (adapted_head.* tensors) in the bundle, "
            "so it cannot adapt; use a model built by `emovox build-model` (the packaged "
            "default has one; the fast model has none)"
        )


class EncoderHead:
    """A loaded bundle: ``predict_proba(wavs)`` for decoded 16 kHz mono waveforms;
    ``predict_with_domain(wavs)`` adds the domain scores (``domain``: the bundle's
    :class:`~emovox.inference.domain.DomainScore`, None when it has none)."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        cfg: BundleConfig,
        weights: dict[str, np.ndarray],
        head: dict[str, np.ndarray],
        path: Path | None = None,
        backend: str = "auto",
        threads: int | None = 1,
        domain: DomainScore | None = None,
        adapted: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.config = cfg
        self.labels: tuple[str, ...] = tuple(cfg.labels)
        self.threshold = float(cfg.threshold)
        self.card: dict[str, Any] = dict(cfg.card) | {"labels": list(cfg.labels)}
        self.path = path
        self.preprocess_cfg = Preprocess(**cfg.preprocess)
        self._mean = head["mean"].astype(np.float64)
        self._scale = head["scale"].astype(np.float64)
        self._W = head["weight"].astype(np.float64)
        self._b = head["bias"].astype(np.float64)
        if domain is not None and domain.n_features != self._W.shape[1]:
            raise ValueError(
                f"domain score reads {domain.n_features} features, the head {self._W.shape[1]}"
            )
        self.domain = domain
        #: The temperature as a function of the domain score, or None (one temperature).
        self.domain_temperature: DomainTemperature | None = None
        if cfg.domain_temperature is not None:
            if domain is None:
                raise BundleError(
                    f"{path or 'bundle'}: domain_temperature in model.json but no domain score "
                    "(domain.* tensors)"
                )
            self.domain_temperature = DomainTemperature.from_dict(cfg.domain_temperature)
        #: The head for standardised embeddings (:mod:`emovox.inference.adapt`), or None.
        self.adapted_head = adapted
        #: The backend computing the pooled statistics (:mod:`emovox.inference.backends`).
        self.encoder: Encoder = open_encoder(backend, weights, cfg, path, threads)

    @property
    def backend(self) -> str:
        """``"numpy"``, ``"torch"``, ``"onnx"`` or ``"onnx-int8"``."""
        return self.encoder.name

    def to(self, device: Any) -> EncoderHead:
        """Run the encoder on a torch ``device`` (only the torch backend leaves the CPU;
        ``ValueError`` otherwise); returns self."""
        self.encoder = self.encoder.to(device)
        return self

    def features(self, y: np.ndarray, name: str = "<array>") -> np.ndarray:
        """Preprocess one waveform and return its pooled encoder statistics."""
        from emovox.encoders.mel import log_mel_spectrogram, split_chunks

        y = preprocess(np.asarray(y, dtype=np.float32), self.preprocess_cfg, name)
        parts = split_chunks(y)
        pooled = [self.pooled(log_mel_spectrogram(c)) for c in parts]
        n_layers = len(self.config.layers)
        return merge_chunk_stats(pooled, [len(c) for c in parts], n_layers, self.config.stats)

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        """Pooled encoder statistics of one log-mel ``(n_mels, T)`` with this backend."""
        return self.encoder.pooled(mel)

    def head_proba(self, F: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities ``(n, C)`` from pooled statistics ``(n, F)``: the logits
        divided by the bundle's temperature, or, with a domain temperature, by each input's
        own temperature from its domain score (:mod:`emovox.inference.calibration`; ``scores``:
        the inputs' :meth:`domain_scores` when already computed)."""
        Xs = (np.asarray(F, dtype=np.float64) - self._mean) / self._scale
        Z = Xs @ self._W.T + self._b
        if self.domain_temperature is not None and self.domain is not None:
            s = self.domain.score(Xs) if scores is None else np.asarray(scores, np.float64)
            Z = Z / self.domain_temperature(s)[:, None]
        else:
            Z = Z / self.config.temperature
        Z -= Z.max(axis=1, keepdims=True)
        P = np.exp(Z)
        return (P / P.sum(axis=1, keepdims=True)).astype(np.float32)

    def adapted_proba(self, F: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(n, C)`` of the adapted head from pooled statistics
        already standardised over their group (:func:`emovox.inference.adapt.standardize`)."""
        h = self.adapted_head
        if h is None or self.config.adapted_temperature is None:
            raise MissingAdaptedHead(self.path)
        X = (np.asarray(F, dtype=np.float64) - h["mean"]) / h["scale"]
        Z = X @ h["weight"].T.astype(np.float64) + h["bias"]
        Z = Z / self.config.adapted_temperature
        Z -= Z.max(axis=1, keepdims=True)
        P = np.exp(Z)
        return (P / P.sum(axis=1, keepdims=True)).astype(np.float32)

    def domain_scores(self, F: np.ndarray) -> np.ndarray | None:
        """Domain scores ``(n,)`` of pooled statistics ``(n, F)`` (None without a domain
        score): how far they lie from the training data, in the head's standardised space."""
        if self.domain is None:
            return None
        return self.domain.score((np.asarray(F, dtype=np.float64) - self._mean) / self._scale)

    def predict_proba(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        """``(n, len(labels))`` probabilities for 16 kHz mono waveforms (raw audio; trimmed and
        loudness-normalised here). Raises :class:`emovox.audio.AudioError` for unusable audio
        (silent, too short)."""
        return self.predict_with_domain(wavs)[0]

    def predict_with_domain(
        self, wavs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`predict_proba` and the inputs' domain scores (None without a domain score)."""
        if len(wavs) == 0:
            empty = None if self.domain is None else np.zeros(0)
            return np.zeros((0, len(self.labels)), dtype=np.float32), empty
        F = np.stack([self.features(y) for y in wavs])
        S = self.domain_scores(F)
        return self.head_proba(F, S), S


def load_bundle(
    path: str | Path | None = None, backend: str = "auto", threads: int | None = 1
) -> EncoderHead:
    """Load a bundle folder (``None``: the packaged default model) as an :class:`EncoderHead`."""
    folder = bundle_path(path)
    cfg, enc, head = read_bundle(folder)
    domain, adapted = read_domain(folder, cfg), read_adapted(folder, cfg)
    return EncoderHead(cfg, enc, head, folder, backend, threads, domain, adapted)
