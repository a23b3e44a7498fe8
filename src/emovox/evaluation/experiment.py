"""The API behind ``emovox evaluate`` and ``emovox table2``: data → features → folds → scores.

The run's settings live in :mod:`emovox.evaluation.experiment_config` and its data (corpora,
labels, features) in :mod:`emovox.evaluation.dataset`; this module fits the model on each
training fold and scores the pooled predictions. The names of those modules are re-exported
here, so ``from emovox.evaluation.experiment import ...`` gives the whole API.

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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emovox.data import corpora as corpus_loaders
from emovox.evaluation.dataset import (
    Dataset,
    NoCorporaError,
    excluded_summary,
    load_dataset,
    resolve_labels,
    scan,
    sequence_stats,
)
from emovox.evaluation.experiment_config import (
    LIST_KEYS,
    ExperimentConfig,
    check_config,
    load_experiment_config,
)
from emovox.evaluation.metrics import score
from emovox.evaluation.reports import write_run
from emovox.evaluation.splits import Split, make_split
from emovox.features.embeddings import encoder_names
from emovox.models import (
    CLF_STEP,
    FRAME_MODELS,
    SEQUENCE_MODELS,
    default_param_grid,
    make_model,
)
from emovox.progress import progress_bar

__all__ = [
    "LIST_KEYS",
    "Dataset",
    "ExperimentConfig",
    "NoCorporaError",
    "Result",
    "adapt_features",
    "check_config",
    "class_probabilities",
    "corpus_balanced_weights",
    "evaluate",
    "excluded_summary",
    "load_dataset",
    "load_experiment_config",
    "model_params",
    "paper_and_honest",
    "resolve_labels",
    "scan",
    "sequence_stats",
    "training_column",
    "training_rows",
    "weighted_fit_params",
]


@dataclass
class Result:
    """One run's pooled metrics, per-clip predictions, the split, and where it was written."""

    metrics: dict
    predictions: list[dict]
    split: Split
    run_dir: Path | None = None


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


def training_rows(
    data: Dataset, train: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and speakers of a training fold, plus its clips' augmented views
    (only ever the fold's own clips: views never reach test data)."""
    X = [data.X[train]] + [Xv[train[okv[train]]] for Xv, okv in data.views.values()]
    X_rows = X[0] if len(X) == 1 else np.concatenate(X)
    return X_rows, training_column(data, train, data.y), training_column(data, train, groups)


def training_column(data: Dataset, train: np.ndarray, column: np.ndarray) -> np.ndarray:
    """One per-clip ``column`` (labels, speakers, corpora) for the rows :func:`training_rows`
    gives: the fold's clips, then each augmented view's clips, in the same order."""
    column = np.asarray(column)
    parts = [column[train]] + [column[train[okv[train]]] for _, okv in data.views.values()]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def corpus_balanced_weights(corpora: Sequence[str], y: Sequence[str]) -> np.ndarray:
    """Sample weights giving every corpus the same total weight and, within a corpus, every
    class the same share of it (as ``class_weight="balanced"`` does, one corpus at a time):
    ``n / (n_corpora * n_classes_in_corpus * n_clips_of_that_corpus_and_class)``. They sum to
    the number of clips, ``n / n_corpora`` per corpus.

    >>> corpus_balanced_weights(["a", "a", "a", "b"], ["x", "x", "y", "x"]).tolist()
    [0.5, 0.5, 1.0, 2.0]
    """
    corp = np.asarray(corpora, dtype=object)
    lab = np.asarray(y, dtype=object)
    if len(corp) != len(lab) or not len(lab):
        raise ValueError(f"expected one corpus per label, got {len(corp)} and {len(lab)}")
    pairs = Counter(zip(corp.tolist(), lab.tolist(), strict=True))
    classes = Counter(c for c, _ in pairs)
    n, n_corpora = len(lab), len(classes)
    return np.array(
        [n / (n_corpora * classes[c] * pairs[c, k]) for c, k in zip(corp, lab, strict=True)]
    )


def weighted_fit_params(model, weight: np.ndarray) -> dict[str, np.ndarray]:
    """``fit`` keywords that pass ``weight`` to a :func:`make_classical` pipeline's classifier,
    whose own ``class_weight`` is switched off so the weights alone set the balance; a model
    whose classifier takes no sample weights is a ``ValueError``."""
    from sklearn.utils.validation import has_fit_parameter

    clf = getattr(model, "named_steps", {}).get(CLF_STEP)
    if clf is None or not has_fit_parameter(clf, "sample_weight"):
        raise ValueError(
            f"balance='corpus' weights training clips, and {type(clf or model).__name__} takes "
            "no sample weights: use logreg or svm"
        )
    if "class_weight" in clf.get_params():
        model.set_params(**{f"{CLF_STEP}__class_weight": None})
    return {f"{CLF_STEP}__sample_weight": weight}


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


def _fit(
    cfg: ExperimentConfig,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    leaky: bool,
    weight: np.ndarray | None = None,
):
    model = make_model(cfg.model, seed=cfg.seed, probability=False, **model_params(cfg))
    fit_params = {} if weight is None else weighted_fit_params(model, weight)
    if not cfg.tune:
        return model.fit(X, y, **fit_params)
    if cfg.model in SEQUENCE_MODELS | FRAME_MODELS:
        raise ValueError(f"--tune has no grid for {cfg.model!r}; run it without --tune")
    from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold

    grid = default_param_grid(cfg.model, probability=False)
    n_groups = len(set(groups))
    if leaky or n_groups < 2:
        cv = StratifiedKFold(3, shuffle=True, random_state=cfg.seed)
        search = GridSearchCV(model, grid, cv=cv, scoring="balanced_accuracy")
        return search.fit(X, y, **fit_params).best_estimator_
    cv = GroupKFold(min(3, n_groups))  # inner folds: training speakers only
    search = GridSearchCV(model, grid, cv=cv, scoring="balanced_accuracy")
    return search.fit(X, y, groups=groups, **fit_params).best_estimator_


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
    train = np.asarray(fold.train)
    weight = None
    if cfg.balance == "corpus":
        corpora = training_column(data, train, data.column("corpus"))
        weight = corpus_balanced_weights(corpora, training_column(data, train, y))
    model = _fit(cfg, *training_rows(data, train, speakers), leaky, weight)
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
    clip's features but no labels (:func:`adapt_features`); the metrics say so. With
    ``cfg.balance == "corpus"`` each fold's training clips are weighted so every training corpus
    counts the same (:func:`corpus_balanced_weights`).
    """
    t0 = time.perf_counter()
    data = adapt_features(data, cfg.adapt)
    y = data.y
    speakers = np.array(data.column("speaker"), dtype=object)
    corpus_name = corpus_loaders.generic.corpus_name
    split = make_split(
        cfg.protocol,
        y,
        speakers,
        data.column("corpus"),
        k=cfg.k,
        seed=cfg.seed,
        test_speakers=cfg.test_speakers,
        train_corpora=[corpus_name(c) for c in cfg.train_corpora],
        test_corpora=[corpus_name(c) for c in cfg.test_corpora],
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
        balance=cfg.balance,
        leakage=split.audit_summary(),
        skipped=len(data.skipped),
        excluded=data.excluded,
        wall_s=round(time.perf_counter() - t0, 2),
    )
    if cfg.protocol == "loco":
        from emovox.evaluation.loco import loco_scores

        corpora = data.column("corpus")
        metrics["loco"] = loco_scores(split, y, corpora, data.labels, predictions)
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
