"""An experiment's data: scan the corpora, keep the clips of the label set, and extract their
(cached) features: hand-made vectors, stacked encoder embeddings, frame sequences, and the
training views.

>>> from emovox.evaluation.experiment_config import ExperimentConfig
>>> data = load_dataset(ExperimentConfig(corpora=["ravdess"]))   # doctest: +SKIP
>>> data.X.shape, data.labels                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emovox.audio import Preprocess
from emovox.data import corpora as corpus_loaders
from emovox.data.labels import LABEL_SETS, label_set
from emovox.data.manifest import Clip, Manifest
from emovox.evaluation.experiment_config import ExperimentConfig
from emovox.features import FeatureConfig, extract
from emovox.features.embeddings import (
    FRAMES,
    EmbeddingConfig,
    encoder_names,
    extract_embeddings,
    is_embedding_spec,
    stack_results,
    top_input_stats,
)
from emovox.features.extract import ExtractResult
from emovox.io import cache_dir
from emovox.models import FRAME_MODELS, SEQUENCE_MODELS


class NoCorporaError(RuntimeError):
    """No known corpus was found under the roots given."""


@dataclass
class Dataset:
    """Clips that decoded, their feature matrix and decoded-audio hashes, plus what was skipped."""

    clips: list[Clip]
    X: np.ndarray
    hashes: list[str | None]
    labels: tuple[str, ...]
    skipped: list[tuple[str, str]]
    excluded: dict[str, int]
    problems: list[tuple[str, str]]
    #: augmented training views: name -> (features aligned with ``clips``, usable mask)
    views: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return np.array([c.emotion for c in self.clips], dtype=object)

    def column(self, name: str) -> list:
        return [getattr(c, name) for c in self.clips]


def scan(cfg: ExperimentConfig) -> Manifest:
    """Find the corpora under ``cfg.roots`` (only those named in ``cfg.corpora``, if any)."""
    roots = [Path(r) for r in cfg.roots]
    missing = [str(r) for r in roots if not r.exists()]
    manifest = corpus_loaders.scan([r for r in roots if r.exists()], cfg.corpora or None)
    if not manifest.clips:
        where = ", ".join(str(r) for r in roots)
        raise NoCorporaError(
            f"no known corpus found under {where}"
            + (f" ({', '.join(missing)} does not exist)" if missing else "")
            + ". Download RAVDESS, TESS, SAVEE and/or CREMA-D, unpack them into one folder and "
            "point emovox at it: `export EMOVOX_CORPORA=/path/to/corpora` or pass the folder as "
            "an argument (see `emovox corpora scan --help`)."
        )
    return manifest


def resolve_labels(spec: str, manifest: Manifest, every: bool = False) -> tuple[str, ...]:
    """``auto``: every emotion of a single corpus (or, with ``every``, of all the corpora: what
    leave-one-corpus-out scores each corpus on), else the paper's seven."""
    if spec != "auto":
        return label_set(spec)
    corpora = {c.corpus for c in manifest.clips}
    if len(corpora) == 1 or every:
        return label_set({c.emotion for c in manifest.clips})
    return LABEL_SETS["paper7"]


def load_dataset(
    cfg: ExperimentConfig, manifest: Manifest | None = None, progress: bool = True
) -> Dataset:
    """Scan, restrict to the label set, and extract (cached) utterance features (frame
    sequences for :data:`~emovox.models.FRAME_MODELS`)."""
    manifest = manifest if manifest is not None else scan(cfg)
    labels = resolve_labels(cfg.labels, manifest, every=cfg.protocol == "loco")
    kept, excluded = manifest.restrict(labels)
    paths = [c.path for c in kept.clips]
    sequence = cfg.model in SEQUENCE_MODELS
    if sequence and not is_embedding_spec(cfg.features):
        raise ValueError(
            f"model {cfg.model!r} reads encoder frames: use it with --features whisper:tiny.en "
            f"(got features {cfg.features!r})"
        )
    if cfg.train_views and not is_embedding_spec(cfg.features):
        raise ValueError(
            "training views (--train-view) are computed with encoder embeddings: use them with "
            f"--features whisper:tiny.en (got features {cfg.features!r})"
        )
    if cfg.layers and (not is_embedding_spec(cfg.features) or sequence):
        raise ValueError(
            "layers pick pooled encoder layers: use them with --features whisper:tiny.en and a "
            f"pooled head (got features {cfg.features!r}, model {cfg.model!r})"
        )
    if cfg.model in FRAME_MODELS and cfg.features != FeatureConfig().groups:
        raise ValueError(
            f"model {cfg.model!r} reads its own frame features (MFCCs, deltas, energy, pitch); "
            f"drop --features (got {cfg.features!r})"
        )
    pre = Preprocess(denoise=cfg.denoise)
    if cfg.model in FRAME_MODELS:
        from emovox.features.frames import extract_frames

        feats = extract_frames(
            paths,
            pre=pre,
            cache_dir=cache_dir() / "features",
            n_jobs=cfg.n_jobs,
            progress=progress,
        )
    elif is_embedding_spec(cfg.features):
        encoders = encoder_names(cfg.features)
        if sequence and len(encoders) > 1:
            raise ValueError(
                f"model {cfg.model!r} reads one encoder's frames; {cfg.features!r} names "
                f"{len(encoders)} (stack encoders with a pooled head such as logreg)"
            )
        stats = sequence_stats(cfg) if sequence else EmbeddingConfig().stats
        embs = [EmbeddingConfig(e, stats=stats) for e in encoders]
        feats = _stacked_embeddings(paths, embs, pre, progress)
    else:
        feats = extract(
            paths,
            FeatureConfig(groups=cfg.features),
            pre,
            cache_dir=cache_dir() / "features",
            n_jobs=cfg.n_jobs,
            progress=progress,
        )
    cols = layer_columns(feats.names, cfg.layers) if cfg.layers else None
    if cols is not None:
        feats.X, feats.names = feats.X[:, cols], [feats.names[i] for i in cols]
    ok = np.flatnonzero(feats.ok)
    views = {}
    for view in cfg.train_views:
        vcfgs = [EmbeddingConfig(e.encoder, stats=e.stats, view=view) for e in embs]
        vf = _stacked_embeddings([paths[i] for i in ok], vcfgs, pre, progress)
        X = np.empty(len(ok), dtype=object) if sequence else np.zeros_like(feats.X)
        X[np.flatnonzero(vf.ok)] = vf.X if cols is None else vf.X[:, cols]
        views[vcfgs[0].view] = (X, vf.ok)
    return Dataset(
        clips=[kept.clips[i] for i in ok],
        X=feats.X,
        hashes=[feats.hashes[i] for i in ok],
        labels=labels,
        skipped=list(feats.errors),
        excluded=dict(excluded),
        problems=[(p.path, p.reason) for p in manifest.problems],
        views=views,
    )


def layer_columns(names: list[str], layers: list[int]) -> np.ndarray:
    """Columns of pooled embeddings (names ``L<layer>_<stat>_<unit>``, or ``<encoder>/L...``
    side by side) that belong to ``layers``; a layer the encoder lacks is a ``ValueError``."""
    import re

    found = np.array([int(m.group(1)) if (m := re.search(r"(?:^|/)L(\d+)_", n)) else -1
                      for n in names])  # fmt: skip
    missing = sorted(set(layers) - set(found.tolist()))
    if missing:
        raise ValueError(f"layers {missing} are not among the encoder's (0-{found.max()})")
    return np.flatnonzero(np.isin(found, layers))


def sequence_stats(cfg: ExperimentConfig) -> tuple[str, ...]:
    """What a sequence model reads: every layer's frames (``attentive``), or the hidden states
    entering the top ``blocks`` blocks (``finetune``, ``params["blocks"]``, default 1)."""
    if cfg.model == "finetune":
        from emovox.models.finetune import FinetuneHead

        return top_input_stats(int(str(cfg.params.get("blocks", FinetuneHead().blocks))))
    return FRAMES


def _stacked_embeddings(
    paths: list[str], embs: list[EmbeddingConfig], pre: Preprocess, progress: bool
) -> ExtractResult:
    """Pooled (or frame) embeddings of ``paths`` from each encoder in ``embs``, side by side."""
    results = [
        extract_embeddings(paths, e, pre, cache_dir=cache_dir() / "features", progress=progress)
        for e in embs
    ]
    return stack_results(results, [Path(e.encoder).name for e in embs])


def excluded_summary(data: Dataset) -> str:
    """The clips left out for an emotion outside the label set, e.g. ``"calm: 192"``."""
    c = Counter(data.excluded)
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"
