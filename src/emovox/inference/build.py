"""Build a ready-to-use bundle (:mod:`emovox.inference.bundle`) from corpora: the API behind
``emovox build-model``.

1. scan the corpora and keep the chosen label set;
2. frozen Whisper embeddings of every clip (cached, :mod:`emovox.features.embeddings`);
3. speaker-independent scores of the same recipe (speaker k-fold over all clips), per corpus,
   for the model card;
4. the final head: a logistic regression on the training speakers, its domain score, its
   softmax temperature fitted on held-out validation speakers (so probabilities are
   calibrated) and, with three or more corpora, made to rise with the domain score by also
   fitting it on each corpus scored by a head trained without it (:func:`loco_predictions`);
   the ``uncertain`` threshold's behaviour measured on the validation speakers;
5. the bundle folder (fp16 encoder + head + ``model.json`` with the card).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import Preprocess
from emovox.data.corpora import corpus_info
from emovox.evaluation.experiment import ExperimentConfig, resolve_labels, scan
from emovox.evaluation.metrics import score
from emovox.evaluation.splits import make_split, validation_speakers
from emovox.features.embeddings import (
    EmbeddingConfig,
    check_view,
    extract_embeddings,
    load_encoder,
)
from emovox.inference.bundle import BundleConfig, write_bundle
from emovox.inference.calibration import (
    domain_temperature_summary,
    expected_calibration_error,
    fit_domain_temperature,
    fit_temperature,
    softmax,
)
from emovox.inference.card import domain_card, generalization_from_run, limits
from emovox.inference.domain import (
    DEFAULT_COMPONENTS,
    DEFAULT_QUANTILE,
    DomainScore,
    fit_domain,
)
from emovox.io import atomic_write_json, atomic_write_text, cache_dir, corpora_root

Log = Callable[[str], None]

#: The paper's four corpora: the card also scores the same folds on them alone.
PAPER_CORPORA = ("crema_d", "ravdess", "savee", "tess")


def fit_head(X: np.ndarray, y: np.ndarray, labels: Sequence[str], C: float, seed: int = 0) -> Any:
    """The ``logreg`` pipeline of :func:`emovox.models.make_classical` (standardise →
    class-balanced logistic regression) fitted on ``X, y``; returns it and the row order
    that puts its classes in ``labels`` order."""
    from emovox.models import make_classical

    model = make_classical("logreg", seed=seed, C=C, max_iter=2000, random_state=seed)
    model.fit(X, np.asarray(y, dtype=object))
    order = [list(model.classes_).index(lab) for lab in labels]
    return model, order


def head_tensors(model: Any, order: Sequence[int]) -> dict[str, np.ndarray]:
    """The pipeline as ``mean, scale, weight, bias`` arrays, rows in ``labels`` order."""
    scaler, clf = model[0], model[-1]
    return {
        "mean": scaler.mean_.astype(np.float32),
        "scale": scaler.scale_.astype(np.float32),
        "weight": clf.coef_[order].astype(np.float32),
        "bias": clf.intercept_[order].astype(np.float32),
    }


def standardise(head: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """``X`` in the head's standardised space (where it and the domain score read it)."""
    return (np.asarray(X, dtype=np.float64) - head["mean"]) / head["scale"]


def logits(head: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    return standardise(head, X) @ head["weight"].T.astype(np.float64) + head["bias"]


def select_layers(X: np.ndarray, n_all: int, layers: Sequence[int], width: int) -> np.ndarray:
    """Columns of the chosen layers from an all-layer embedding matrix."""
    cols = np.concatenate([np.arange(i * width, (i + 1) * width) for i in layers])
    if X.shape[1] != n_all * width:
        raise ValueError(f"embedding width {X.shape[1]} is not {n_all} layers x {width}")
    return X[:, cols]


def demo_speakers() -> list[str]:
    """Speaker ids of the bundled demo clips (kept out of the default model's training)."""
    from importlib import resources

    path = Path(str(resources.files("emovox") / "assets" / "demo" / "clips.json"))
    try:
        clips = json.loads(path.read_text())["clips"]
    except (OSError, ValueError, KeyError):
        return []
    return [f"crema_d:{c['actor']}" for c in clips if "actor" in c]


@dataclass
class TrainingData:
    """The clips a bundle is built from and their embeddings (``X``: the chosen layers)."""

    clips: list[Any]
    result: Any  # the extraction result (all layers, hashes, errors)
    X: np.ndarray
    layers: list[int]
    label_set: tuple[str, ...]
    excluded: dict[str, int]
    encoder: Any
    embedding: EmbeddingConfig
    preprocess: Preprocess
    #: training views: name -> (chosen layers of each clip's view, usable mask over ``clips``)
    views: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def rows(self, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training rows of the clips in ``use`` (a boolean mask or indices): their embeddings,
        then each view's embeddings of the same clips (where the view could be made), with
        the matching labels."""
        idx = np.flatnonzero(use) if np.asarray(use).dtype == bool else np.asarray(use)
        y = np.array([c.emotion for c in self.clips], dtype=object)
        Xs, ys = [self.X[idx]], [y[idx]]
        for Xv, okv in self.views.values():
            keep = idx[okv[idx]]
            Xs.append(Xv[keep])
            ys.append(y[keep])
        return np.concatenate(Xs), np.concatenate(ys)


def training_data(
    roots: Sequence[str] | None,
    corpora: Sequence[str],
    labels: str,
    encoder: str,
    layers: Sequence[int] | None,
    progress: bool,
    say: Log,
    views: Sequence[str] = (),
) -> TrainingData:
    """Scan the corpora, keep the label set and embed every clip (cached), and each training
    view of it (:func:`emovox.features.embeddings.apply_view`), as :func:`build_default_model`
    does."""
    exp = ExperimentConfig(corpora=list(corpora), roots=list(roots or [str(corpora_root())]))
    manifest = scan(exp)
    label_set = resolve_labels(labels, manifest)
    kept, excluded = manifest.restrict(label_set)
    emb_cfg = EmbeddingConfig(encoder)
    pre = Preprocess()
    res = extract_embeddings(
        [c.path for c in kept.clips], emb_cfg, pre, cache_dir() / "features", progress
    )
    clips = [kept.clips[i] for i in np.flatnonzero(res.ok)]
    if res.errors:
        listed = "; ".join(f"{p}: {r}" for p, r in res.errors[:5])
        say(f"{len(res.errors)} clip(s) skipped: {listed}")
    enc = load_encoder(encoder)
    n_all = enc.dims.n_layer + 1
    width = 2 * enc.dims.n_state
    layers = list(range(n_all)) if layers is None else sorted(set(int(i) for i in layers))
    if not layers or min(layers) < 0 or max(layers) >= n_all:
        raise ValueError(f"layers must lie in 0..{n_all - 1}, got {layers}")
    X = select_layers(res.X, n_all, layers, width)
    view_rows = {}
    for view in views:
        vcfg = EmbeddingConfig(encoder, view=view)
        vres = extract_embeddings(
            [c.path for c in clips], vcfg, pre, cache_dir() / "features", progress
        )
        if vres.errors:
            say(f"view {vcfg.view}: {len(vres.errors)} clip(s) without it (plain rows kept)")
        Xv = np.zeros_like(X)
        Xv[np.flatnonzero(vres.ok)] = select_layers(vres.X, n_all, layers, width)
        view_rows[vcfg.view] = (Xv, np.asarray(vres.ok, dtype=bool))
    return TrainingData(
        clips, res, X, layers, tuple(label_set), dict(excluded), enc, emb_cfg, pre, view_rows
    )


def validation_mask(
    speakers: np.ndarray,
    corpora: Sequence[str],
    val_fraction: float = 0.15,
    seed: int = 0,
    holdout_speakers: Sequence[str] | None = None,
) -> tuple[np.ndarray, set[str]]:
    """Which clips belong to the validation speakers (``holdout_speakers``, default the demo
    clips' speakers, plus a draw per corpus), and those speakers."""
    if holdout_speakers is None:
        holdout_speakers = demo_speakers()
    preset = set(holdout_speakers) & set(speakers)
    val_spk = validation_speakers(speakers, corpora, val_fraction, [seed, 3], preset=preset)
    return np.array([s in val_spk for s in speakers]), val_spk


def fit_domain_score(
    head: dict[str, np.ndarray],
    X_train: np.ndarray,
    X_val: np.ndarray,
    k: int = DEFAULT_COMPONENTS,
    quantile: float = DEFAULT_QUANTILE,
    seed: int = 0,
) -> DomainScore:
    """The domain score over the head's standardised features: fitted on the training clips,
    its threshold the ``quantile`` of the validation (held-out speakers') scores."""
    dom = fit_domain(standardise(head, X_train), k=k, seed=seed)
    return dom.with_threshold(dom.score(standardise(head, X_val)), quantile)


#: Fewest training corpora for the leave-one-corpus-out temperature (each fold keeps two).
MIN_CORPORA_FOR_LOCO_TEMPERATURE = 3


def loco_predictions(
    data: TrainingData,
    corp: np.ndarray,
    is_val: np.ndarray,
    labels: Sequence[str],
    C: float,
    seed: int = 0,
    log: Log | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Held-out-corpus predictions for :func:`~emovox.inference.calibration.fit_domain_temperature`:
    for each corpus, a head and a domain score fitted on the other corpora's training speakers
    (``~is_val``, the final head's), and that corpus's clips (every speaker) scored by them:
    ``(logits, label indices, domain scores)``, labels among those the fold's head knows."""
    say: Log = log or (lambda _m: None)
    y = np.array([c.emotion for c in data.clips], dtype=object)
    groups = []
    for c in sorted(set(corp)):
        fit = ~is_val & (corp != c)
        known = [lab for lab in labels if lab in set(y[fit])]
        model, order = fit_head(*data.rows(fit), known, C, seed)
        head = head_tensors(model, order)
        rows = (corp == c) & np.isin(y, known)
        dom = fit_domain(standardise(head, data.X[fit]), k=DEFAULT_COMPONENTS, seed=seed)
        y_idx = np.array([known.index(v) for v in y[rows]], dtype=np.int64)
        groups.append(
            (logits(head, data.X[rows]), y_idx, dom.score(standardise(head, data.X[rows])))
        )
        say(f"held-out-corpus temperature: {c} scored by a head without it ({rows.sum()} clips)")
    return groups


def fit_adapted_head(
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    is_val: np.ndarray,
    labels: Sequence[str],
    C: float,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], float]:
    """The adapted head (:mod:`emovox.inference.adapt`) and its temperature: the plain head's
    recipe on embeddings standardised per group (over each group's clips; the bundle groups by
    speaker, as a user's batch of one speaker's files is), fitted on the training clips
    (``~is_val``), its temperature on the validation clips."""
    from emovox.evaluation.adaptation import standardize_by_group

    Xa = standardize_by_group(X, list(groups))
    model, order = fit_head(Xa[~is_val], y[~is_val], labels, C, seed)
    head = head_tensors(model, order)
    y_val = np.array([list(labels).index(v) for v in y[is_val]])
    return head, fit_temperature(logits(head, Xa[is_val]), y_val)


def build_default_model(
    out: str | Path,
    roots: Sequence[str] | None = None,
    corpora: Sequence[str] = (),
    labels: str = "paper7",
    encoder: str = "tiny.en",
    layers: Sequence[int] | None = None,
    C: float = 0.001,
    k: int = 5,
    val_fraction: float = 0.15,
    threshold: float = 0.5,
    holdout_speakers: Sequence[str] | None = None,
    seed: int = 0,
    views: Sequence[str] = (),
    loco_run: str | Path | None = None,
    loco_temperature: bool = True,
    progress: bool = True,
    log: Log | None = None,
) -> dict[str, Any]:
    """Train, score and write a bundle to ``out``; returns its ``model.json`` content.

    With ``loco_temperature`` and at least :data:`MIN_CORPORA_FOR_LOCO_TEMPERATURE` corpora,
    the temperature rises with the domain score, fitted half on the validation speakers and
    half on held-out-corpus predictions (:func:`loco_predictions`,
    :mod:`emovox.inference.calibration`): one more head per corpus.

    ``holdout_speakers`` (default: the speakers of the bundled demo clips) never reach the
    final head's training data; they join the validation speakers, so the demo shows the
    model on voices it has not learnt from. ``views`` add training rows (simulated recording
    conditions of the training clips only). ``loco_run`` is an ``emovox evaluate --protocol
    loco`` run folder of the same recipe, whose per-corpus scores the card shows
    (:func:`generalization_from_run`).
    """
    say: Log = log or (lambda _m: None)
    t0 = time.perf_counter()
    views = [check_view(v) for v in views]
    gen = (
        generalization_from_run(loco_run, encoder, C, labels, views, layers)
        if loco_run is not None
        else None
    )
    data = training_data(roots, corpora, labels, encoder, layers, progress, say, views)
    clips, res, X, layers, excluded = data.clips, data.result, data.X, data.layers, data.excluded
    enc, emb_cfg, pre = data.encoder, data.embedding, data.preprocess
    y = np.array([c.emotion for c in clips], dtype=object)
    present = [lab for lab in data.label_set if lab in set(y)]
    speakers = np.array([c.speaker for c in clips], dtype=object)
    corp = [c.corpus for c in clips]
    say(f"{len(clips)} clips, {len(set(speakers))} speakers, {X.shape[1]} features")

    # 3. speaker-independent scores of this recipe (the card's numbers)
    split = make_split("speaker-kfold", y, speakers, corp, k=k, seed=seed, hashes=res.hashes)
    pred = np.empty(len(y), dtype=object)
    for fi, fold in enumerate(split.folds):
        m, order = fit_head(*data.rows(fold.train), present, C, seed)
        pred[fold.test] = m.predict(X[fold.test])
        say(f"speaker fold {fi + 1}/{len(split.folds)} done")
    overall = score(list(y), list(pred), present)
    per_corpus = {}
    for c in sorted(set(corp)):
        idx = [i for i, cc in enumerate(corp) if cc == c]
        labs = [lab for lab in present if lab in set(y[idx])]
        s = score(list(y[idx]), list(pred[idx]), labs)
        per_corpus[c] = {
            "ua": round(s["ua"], 4),
            "wa": round(s["wa"], 4),
            "n": len(idx),
            "labels": labs,
        }
    paper = [i for i, cc in enumerate(corp) if cc in PAPER_CORPORA]
    paper_score = None
    if paper and len(paper) < len(corp):
        s = score(list(y[paper]), list(pred[paper]), present)
        paper_score = {
            "corpora": sorted({corp[i] for i in paper}),
            "ua": round(s["ua"], 4),
            "wa": round(s["wa"], 4),
            "n": len(paper),
        }

    # 4. final head on training speakers; temperature and threshold on validation speakers
    is_val, val_spk = validation_mask(speakers, corp, val_fraction, seed, holdout_speakers)
    model, order = fit_head(*data.rows(~is_val), present, C, seed)
    head = head_tensors(model, order)
    domain = fit_domain_score(head, X[~is_val], X[is_val], seed=seed)
    adapted, T_adapted = fit_adapted_head(X, y, list(speakers), is_val, present, C, seed)
    y_val = np.array([present.index(v) for v in y[is_val]])
    Z = logits(head, X[is_val])
    T = fit_temperature(Z, y_val)
    T_val: float | np.ndarray = T  # the temperature each validation clip gets
    dom_temp, loco_calib = None, None
    if loco_temperature and len(set(corp)) >= MIN_CORPORA_FOR_LOCO_TEMPERATURE:
        corp_arr = np.array(corp, dtype=object)
        held = loco_predictions(data, corp_arr, is_val, present, C, seed, say)
        s_val = domain.score(standardise(head, X[is_val]))
        dom_temp = fit_domain_temperature([(Z, y_val, s_val)], held)
        loco_calib = domain_temperature_summary(dom_temp, (Z, y_val, s_val), held, threshold)
        loco_calib["held_out_corpora"] = sorted(set(corp))
        loco_calib["threshold_score"] = domain.threshold
        loco_calib["temperature_at_threshold"] = round(
            float(dom_temp(np.array([domain.threshold]))[0]), 3
        )
        say(
            f"domain temperature T(s) = exp({dom_temp.intercept:.3f} + {dom_temp.slope:.3f} s): "
            f"{loco_calib['temperature_validation_median']:.2f} on typical validation audio, "
            f"{loco_calib['temperature_at_threshold']:.2f} at the out_of_domain threshold"
        )
        T_val = dom_temp(s_val)[:, None]
    elif loco_temperature:
        say(
            f"one temperature for every input: the domain temperature needs at least "
            f"{MIN_CORPORA_FOR_LOCO_TEMPERATURE} corpora to hold out in turn, these are "
            f"{len(set(corp))}"
        )
    P_raw, P = softmax(Z), softmax(Z / T_val)
    right, unc = P.argmax(1) == y_val, P.max(1) < threshold
    calib = {
        "validation_clips": int(is_val.sum()),
        "validation_speakers": len(val_spk),
        "temperature": round(T, 4),
        "ece_before": round(expected_calibration_error(P_raw, y_val), 4),
        "ece_after": round(expected_calibration_error(P, y_val), 4),
        "threshold": threshold,
        "share_uncertain": round(float(unc.mean()), 4),
        "accuracy_when_certain": round(float(right[~unc].mean()), 4) if (~unc).any() else None,
        "accuracy_when_uncertain": round(float(right[unc].mean()), 4) if unc.any() else None,
        **({"domain_temperature": loco_calib} if loco_calib else {}),
    }
    say(f"temperature {T:.3f}: ECE {calib['ece_before']:.3f} -> {calib['ece_after']:.3f}")

    counts = Counter(c.corpus for c in clips)
    card = {
        "name": f"emovox-whisper-{encoder.replace('/', '_')}-{labels}",
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
        "architecture": (
            f"frozen Whisper {encoder} encoder (fp16 weights, MIT), mean+std of hidden layers "
            f"{layers} over time, standardised, multinomial logistic regression (C={C}), "
            "temperature-scaled softmax"
        ),
        "labels": present,
        "training_data": {c: counts[c] for c in sorted(counts)},
        "training_speakers": int(len(set(speakers[~is_val]))),
        "held_out_speakers": sorted(val_spk),
        "excluded_clips": dict(excluded),
        "skipped_clips": len(res.errors),
        "evaluation": {
            "protocol": f"speaker {k}-fold over all clips (no speaker in both training and test)",
            "ua": round(overall["ua"], 4),
            "wa": round(overall["wa"], 4),
            "macro_f1": round(overall["macro_f1"], 4),
            "per_class_recall": {kk: round(v, 4) for kk, v in overall["per_class"].items()},
            "per_corpus": per_corpus,
            **({"paper_corpora": paper_score} if paper_score else {}),
        },
        "coverage": [corpus_info(c) for c in sorted(counts)],
        "training_views": views,
        **({"generalization": gen} if gen else {}),
        "calibration": calib,
        "out_of_domain": domain_card(domain),
        "uncertain": (
            f"a prediction is flagged uncertain when its calibrated top probability is below "
            f"{threshold}: the model itself rates it more likely wrong than right"
        ),
        "limits": limits(sorted(counts), gen),
        "command": "emovox build-model --out DIR"
        + (f" --corpus {','.join(sorted(counts))}" if corpora else "")
        + "".join(f" --view {v}" for v in views)
        + (f" --loco-run {gen['run']}" if gen else ""),
        "hardware": f"{platform.machine()} CPU, {platform.python_version()}",
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    dims = asdict(enc.dims)
    cfg = BundleConfig(
        labels=present,
        layers=layers,
        dims=dims,
        stats=list(emb_cfg.stats),
        temperature=T,
        threshold=threshold,
        preprocess=asdict(pre),
        card=card,
        adapted_temperature=T_adapted,
        domain_temperature=dom_temp.to_dict() if dom_temp is not None else None,
    )
    write_bundle(out, cfg, enc.state_dict(), head, domain, adapted)
    atomic_write_json(Path(out) / "card.json", card)
    return cfg.to_dict()


def attach_generalization(
    folder: str | Path, run: str | Path, encoder: str, C: float, labels: str = "paper7"
) -> dict[str, Any]:
    """Put a LOCO run's scores on an already built bundle's card (what ``--loco-run`` does at
    build time, for a run that finished after the build): the run must be of the bundle's
    recipe (``encoder``, ``C``, ``labels`` as built, and the card's training views). Rewrites
    ``model.json``, ``card.json`` and ``card.md``; the weights are untouched."""
    from emovox.inference.bundle import CONFIG_FILE
    from emovox.inference.card import render_card

    folder = Path(folder)
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    card = cfg["card"]
    gen = generalization_from_run(run, encoder, C, labels, card.get("training_views") or [])
    card["generalization"] = gen
    card["limits"] = limits(sorted(card["training_data"]), gen)
    command = card["command"].split(" --loco-run ")[0]
    card["command"] = f"{command} --loco-run {gen['run']}"
    atomic_write_json(folder / CONFIG_FILE, cfg)
    atomic_write_json(folder / "card.json", card)
    atomic_write_text(folder / "card.md", render_card(cfg))
    return cfg
