"""The API behind ``emovox evaluate`` and ``emovox table2``: data → features → folds → scores.

>>> from emovox.evaluation.experiment import ExperimentConfig, load_dataset, evaluate
>>> cfg = ExperimentConfig(model="svm", corpora=["ravdess"])
>>> data = load_dataset(cfg)                 # scan + features (cached)      # doctest: +SKIP
>>> result = evaluate(data, cfg)             # speaker k-fold by default      # doctest: +SKIP
>>> result.metrics["ua"]                                                      # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from emovox.audio import Preprocess
from emovox.data import corpora as corpus_loaders
from emovox.data.labels import LABEL_SETS, label_set
from emovox.data.manifest import Clip, Manifest
from emovox.evaluation.metrics import score
from emovox.evaluation.reports import write_run
from emovox.evaluation.splits import Split, make_split
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
from emovox.io import cache_dir, corpora_root
from emovox.models import SEQUENCE_MODELS, default_param_grid, make_model
from emovox.progress import progress_bar


class NoCorporaError(RuntimeError):
    """No known corpus was found under the roots given."""


@dataclass
class ExperimentConfig:
    """Everything that defines one evaluation run (written to config.json)."""

    model: str = "svm"
    corpora: list[str] = field(default_factory=list)  # empty: every corpus found
    roots: list[str] = field(default_factory=lambda: [str(corpora_root())])
    labels: str = "auto"  # a LABEL_SETS name, a comma list, or auto
    protocol: str = "speaker-kfold"
    k: int = 5
    seed: int = 0
    test_speakers: list[str] = field(default_factory=list)
    train_corpora: list[str] = field(default_factory=list)
    test_corpora: list[str] = field(default_factory=list)
    features: str = FeatureConfig().groups
    tune: bool = False
    params: dict[str, object] = field(default_factory=dict)  # model settings, e.g. {"C": 1e-3}
    denoise: bool = False  # spectral-gating noise reduction before features
    train_views: list[str] = field(default_factory=list)  # e.g. ["speed:0.9"]: training rows only
    adapt: str = "none"  # "speaker" | "corpus": standardise features per group (no labels used)
    n_jobs: int = -1
    name: str | None = None
    out_dir: str = "runs"

    def run_name(self) -> str:
        corp = "+".join(self.corpora) if self.corpora else "all"
        return self.name or f"{self.model}-{corp}-{self.protocol}"


#: fields that hold lists (a config file may give one string instead)
LIST_KEYS = ("corpora", "roots", "test_speakers", "train_corpora", "test_corpora", "train_views")


def load_experiment_config(path: str | Path, **overrides: object) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a TOML file's ``[experiment]`` table (the same field
    names as the class), with non-None ``overrides`` on top. Unknown sections or keys, and a
    missing or malformed file, raise :class:`emovox.evaluation.config.ConfigError` (a
    ``ValueError``)."""
    from emovox.evaluation.config import ConfigError, read_config
    from emovox.io import listify

    data = read_config(path)
    unknown_sections = set(data) - {"experiment"}
    if unknown_sections:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(sorted(unknown_sections))}; an evaluation "
            "config has one [experiment] table"
        )
    table = dict(data.get("experiment", {}))
    known = set(ExperimentConfig.__dataclass_fields__)
    bad = sorted(set(table) - known)
    if bad:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(bad)} in [experiment]; "
            f"known: {', '.join(sorted(known))}"
        )
    table.update({k: v for k, v in overrides.items() if v is not None})
    listify(table, LIST_KEYS)
    return ExperimentConfig(**table)


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


@dataclass
class Result:
    metrics: dict
    predictions: list[dict]
    split: Split
    run_dir: Path | None = None


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


def resolve_labels(spec: str, manifest: Manifest) -> tuple[str, ...]:
    """``auto``: every emotion of a single corpus, else the paper's seven."""
    if spec != "auto":
        return label_set(spec)
    corpora = {c.corpus for c in manifest.clips}
    if len(corpora) == 1:
        return label_set({c.emotion for c in manifest.clips})
    return LABEL_SETS["paper7"]


def load_dataset(
    cfg: ExperimentConfig, manifest: Manifest | None = None, progress: bool = True
) -> Dataset:
    """Scan, restrict to the label set, and extract (cached) utterance features."""
    manifest = manifest if manifest is not None else scan(cfg)
    labels = resolve_labels(cfg.labels, manifest)
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
    pre = Preprocess(denoise=cfg.denoise)
    if is_embedding_spec(cfg.features):
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
    ok = np.flatnonzero(feats.ok)
    views = {}
    for view in cfg.train_views:
        vcfgs = [EmbeddingConfig(e.encoder, stats=e.stats, view=view) for e in embs]
        vf = _stacked_embeddings([paths[i] for i in ok], vcfgs, pre, progress)
        X = np.empty(len(ok), dtype=object) if sequence else np.zeros_like(feats.X)
        X[np.flatnonzero(vf.ok)] = vf.X
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


def sequence_stats(cfg: ExperimentConfig) -> tuple[str, ...]:
    """What a sequence model reads: every layer's frames (``attentive``), or the hidden states
    entering the top ``blocks`` blocks (``finetune``, ``params["blocks"]``, default 1)."""
    if cfg.model == "finetune":
        from emovox.models.finetune import FinetuneHead

        return top_input_stats(int(str(cfg.params.get("blocks", FinetuneHead().blocks))))
    return FRAMES


def model_params(cfg: ExperimentConfig) -> dict[str, object]:
    """The model's settings: ``cfg.params``, plus the encoder for ``finetune`` (the one the
    features name, whose top blocks it fine-tunes)."""
    params = dict(cfg.params)
    if cfg.model == "finetune":
        encoder = encoder_names(cfg.features)[0]
        if params.setdefault("encoder", encoder) != encoder:
            raise ValueError(
                f"finetune's encoder is the one the features name ({encoder!r}), "
                f"not {params['encoder']!r}: change --features instead"
            )
    return params


def _stacked_embeddings(
    paths: list[str], embs: list[EmbeddingConfig], pre: Preprocess, progress: bool
) -> ExtractResult:
    """Pooled (or frame) embeddings of ``paths`` from each encoder in ``embs``, side by side."""
    results = [
        extract_embeddings(paths, e, pre, cache_dir=cache_dir() / "features", progress=progress)
        for e in embs
    ]
    return stack_results(results, [Path(e.encoder).name for e in embs])


def training_rows(
    data: Dataset, train: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and speakers of a training fold, plus its clips' augmented views
    (only ever the fold's own clips: views never reach test data)."""
    y = data.y
    X, Y, G = [data.X[train]], [y[train]], [groups[train]]
    for Xv, okv in data.views.values():
        rows = train[okv[train]]
        X.append(Xv[rows])
        Y.append(y[rows])
        G.append(groups[rows])
    if len(X) == 1:
        return X[0], Y[0], G[0]
    return np.concatenate(X), np.concatenate(Y), np.concatenate(G)


def class_probabilities(model, X: np.ndarray, labels: Sequence[str]) -> np.ndarray | None:
    """``predict_proba`` columns in ``labels`` order (zeros for classes absent from training),
    or None when the model gives no probabilities (the SVM as evaluation fits it)."""
    if not hasattr(model, "predict_proba"):
        return None
    proba = model.predict_proba(X)
    out = np.zeros((len(proba), len(labels)))
    index = {lab: j for j, lab in enumerate(labels)}
    for k, cls in enumerate(model.classes_):
        out[:, index[cls]] = proba[:, k]
    return out


def _fit(cfg: ExperimentConfig, X: np.ndarray, y: np.ndarray, groups: np.ndarray, leaky: bool):
    model = make_model(cfg.model, seed=cfg.seed, probability=False, **model_params(cfg))
    if not cfg.tune:
        return model.fit(X, y)
    if cfg.model in SEQUENCE_MODELS:
        raise ValueError(f"--tune has no grid for {cfg.model!r}; run it without --tune")
    from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold

    grid = default_param_grid(cfg.model, probability=False)
    n_groups = len(set(groups))
    if leaky or n_groups < 2:
        cv = StratifiedKFold(3, shuffle=True, random_state=cfg.seed)
        search = GridSearchCV(model, grid, cv=cv, scoring="balanced_accuracy")
        return search.fit(X, y).best_estimator_
    cv = GroupKFold(min(3, n_groups))  # inner folds: training speakers only
    search = GridSearchCV(model, grid, cv=cv, scoring="balanced_accuracy")
    return search.fit(X, y, groups=groups).best_estimator_


def adapt_features(data: Dataset, how: str) -> Dataset:
    """``data`` with features (and training views) standardised per speaker or per corpus
    (:mod:`emovox.evaluation.adaptation`); ``how="none"`` returns ``data`` itself."""
    from dataclasses import replace

    from emovox.evaluation.adaptation import ADAPT_CHOICES, standardize_by_group

    if how not in ADAPT_CHOICES:
        raise ValueError(f"adapt must be one of {', '.join(ADAPT_CHOICES)}, got {how!r}")
    if how == "none":
        return data
    if data.X.dtype == object:
        raise ValueError(f"adapt={how!r} works on pooled features, not on frame sequences")
    groups = data.column(how)
    views = {}
    for name, (Xv, okv) in data.views.items():
        Xa = np.zeros_like(Xv)
        Xa[okv] = standardize_by_group(Xv[okv], [g for g, o in zip(groups, okv, strict=True) if o])
        views[name] = (Xa, okv)
    return replace(data, X=standardize_by_group(data.X, groups), views=views)


def _score_fold(
    cfg: ExperimentConfig,
    data: Dataset,
    fold,
    speakers: np.ndarray,
    leaky: bool,
    predictions: list[dict],
    fold_ua: list[float],
) -> None:
    """Fit on one fold's training rows, predict its test clips, append rows and the fold UA."""
    y = data.y
    model = _fit(cfg, *training_rows(data, np.asarray(fold.train), speakers), leaky)
    proba = class_probabilities(model, data.X[fold.test], data.labels)
    pred = model.predict(data.X[fold.test])
    fold_ua.append(score(y[fold.test], pred, data.labels)["ua"])
    for row, (i, p) in enumerate(zip(fold.test, pred, strict=True)):
        c = data.clips[i]
        record = {
            "id": c.id,
            "corpus": c.corpus,
            "speaker": c.speaker,
            "fold": fold.name,
            "true": c.emotion,
            "pred": p,
            "path": c.path,
        }
        if proba is not None:
            record |= {
                f"p_{lab}": round(float(v), 4)
                for lab, v in zip(data.labels, proba[row], strict=True)
            }
        predictions.append(record)


def evaluate(
    data: Dataset, cfg: ExperimentConfig, write: bool = True, progress: bool = False
) -> Result:
    """Fit the configured classical model on each training fold and score the pooled predictions.

    With ``cfg.adapt`` set, features are first standardised per speaker or corpus using every
    clip's features but no labels (:func:`adapt_features`); the metrics say so.
    """
    t0 = time.perf_counter()
    data = adapt_features(data, cfg.adapt)
    y = data.y
    speakers = np.array(data.column("speaker"), dtype=object)
    split = make_split(
        cfg.protocol,
        y,
        speakers,
        data.column("corpus"),
        k=cfg.k,
        seed=cfg.seed,
        test_speakers=cfg.test_speakers,
        train_corpora=cfg.train_corpora,
        test_corpora=cfg.test_corpora,
        hashes=data.hashes,
        texts=data.column("text"),
    )
    predictions: list[dict] = []
    fold_ua = []
    bar = progress_bar(progress)
    task = bar.add_task(f"{cfg.model}: folds", total=len(split.folds))
    with bar:
        for fold in split.folds:
            _score_fold(cfg, data, fold, speakers, split.leaky, predictions, fold_ua)
            bar.advance(task)
    true = [p["true"] for p in predictions]
    metrics = score(true, [p["pred"] for p in predictions], data.labels)
    metrics.update(
        model=cfg.model,
        corpora=sorted({c.corpus for c in data.clips}),
        protocol=cfg.protocol,
        leaky=split.leaky,
        folds=len(split.folds),
        fold_ua=fold_ua,
        train_views=list(data.views),
        train_view_failures={v: int((~ok).sum()) for v, (_, ok) in data.views.items()},
        adapt=cfg.adapt,
        leakage=split.audit_summary(),
        skipped=len(data.skipped),
        excluded=data.excluded,
        wall_s=round(time.perf_counter() - t0, 2),
    )
    result = Result(metrics, predictions, split)
    if write:
        config = asdict(cfg) | {"name": cfg.run_name(), "labels_resolved": list(data.labels)}
        config["corpora"] = metrics["corpora"]
        result.run_dir = write_run(
            Path(cfg.out_dir) / cfg.run_name(), config, metrics, predictions, data.skipped
        )
    return result


def paper_and_honest(
    data: Dataset, cfg: ExperimentConfig, models: Sequence[str] = ("knn", "lda", "svm", "rda")
) -> list[dict]:
    """Each model under the honest protocol and under the paper's leaky random split."""
    rows = []
    for model in models:
        for protocol in (cfg.protocol, "random"):
            sub = ExperimentConfig(
                **(asdict(cfg) | {"model": model, "protocol": protocol, "name": None})
            )
            res = evaluate(data, sub)
            rows.append(res.metrics | {"run_dir": str(res.run_dir)})
    return rows


def excluded_summary(data: Dataset) -> str:
    c = Counter(data.excluded)
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"
