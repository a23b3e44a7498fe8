"""The API behind ``emovox train``: a TOML config → corpora → waveforms → folds → deep models →
the same scores and run reports as the classical path.

>>> from emovox.evaluation.deep_experiment import load_config, train_and_evaluate
>>> cfg = load_config("configs/paper-model2.toml", {"folds": 1, "threads": 2})  # doctest: +SKIP
>>> metrics = train_and_evaluate(cfg, "runs", resume=True)                     # doctest: +SKIP
>>> metrics["ua"], metrics["leaky"]                                            # doctest: +SKIP

The config (its sections and checks) is :mod:`emovox.evaluation.deep_config`; the waveforms
come from :mod:`emovox.evaluation.waveforms`.

Each run writes ``<out>/<name>-<protocol>/``: the classical run files (``config.json``,
``metrics.json``, ``predictions.csv``, ``confusion.png``, ``summary.md``, ``skipped.csv``) plus
one folder per fold with the trainer's files (``model.safetensors``, ``model.json``,
``checkpoint.safetensors``, ``history.json``, ``curves.png``) and ``fold_result.json``, which
marks the fold as finished so ``resume=True`` re-uses it instead of training again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emovox.data.manifest import Clip
from emovox.evaluation.deep_config import (
    MODELS,
    RESULT_FREE,
    SECTIONS,
    ConfigError,
    DeepConfig,
    build_config,
    load_config,
    validate_config,
)
from emovox.evaluation.splits import Fold, Split, with_validation
from emovox.evaluation.waveforms import Waveforms, augmented_pool, load_waveforms
from emovox.io import atomic_write_json

__all__ = [
    "FOLD_RESULT",
    "MODELS",
    "RESULT_FREE",
    "SECTIONS",
    "ConfigError",
    "DeepConfig",
    "Waveforms",
    "augmented_pool",
    "build_config",
    "build_net",
    "load_config",
    "load_waveforms",
    "train_and_evaluate",
    "validate_config",
]

#: the file marking a fold as finished (its scores, predictions and settings digest)
FOLD_RESULT = "fold_result.json"

Log = Callable[[str], None]
EpochHook = Callable[[str, dict[str, Any]], None]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", name).strip("._") or "fold"


def build_net(cfg: DeepConfig, n_classes: int) -> Any:
    """The configured network for ``n_classes`` (EmotionCNN gets ``n_mels`` from ``[train]``)."""
    from emovox.deep.nets import build_model

    kwargs = dict(cfg.model_kwargs)
    if cfg.model == "cnn":
        kwargs.setdefault("n_mels", cfg.train.n_mels)
    return build_model(MODELS[cfg.model], n_classes=n_classes, **kwargs)


# --------------------------------------------------------------------------- data


@dataclass
class _RunData:
    """The usable clips of a run (augmented copies included) and what was left out."""

    clips: list[Clip]
    wavs: list[np.ndarray]
    hashes: list[str | None]
    ids: list[str]
    labels: tuple[str, ...]
    train_cfg: Any  # TrainConfig (augmentation off for an augment-first pool)
    skipped: list[tuple[str, str]]
    excluded: dict[str, int]

    @property
    def y_idx(self) -> np.ndarray:
        index = {lab: i for i, lab in enumerate(self.labels)}
        return np.array([index[c.emotion] for c in self.clips], dtype=np.int64)

    @property
    def speakers(self) -> np.ndarray:
        return np.array([c.speaker for c in self.clips], dtype=object)

    @property
    def corpora(self) -> list[str]:
        return [c.corpus for c in self.clips]


def _load_run_data(cfg: DeepConfig, progress: bool, say: Log) -> _RunData:
    """Scan the corpora, keep the label set, decode every clip; with ``paper_augment_first``
    add the augmented copies (before any split: the LEAKY protocol)."""
    from emovox.deep.augment import AugmentConfig
    from emovox.evaluation.experiment import ExperimentConfig, resolve_labels, scan

    manifest = scan(ExperimentConfig(corpora=list(cfg.corpora), roots=list(cfg.roots)))
    labels = resolve_labels(cfg.labels, manifest)
    kept, excluded = manifest.restrict(labels)
    say(f"{len(kept.clips)} clips of {', '.join(sorted({c.corpus for c in kept.clips}))}")
    loaded = load_waveforms(kept.clips, cfg.preprocess, cfg.n_jobs, progress)
    if loaded.errors:
        say(f"{len(loaded.errors)} clip(s) skipped (listed in skipped.csv)")
    ok = np.flatnonzero(loaded.ok)
    clips = [kept.clips[i] for i in ok]
    wavs = loaded.wavs
    hashes = [loaded.hashes[i] for i in ok]
    if not clips:
        raise ValueError("no usable clips: every clip failed to load (see the reasons above)")
    present = {c.emotion for c in clips}
    labels = tuple(lab for lab in labels if lab in present)
    if len(labels) < 2:
        raise ValueError(f"need at least 2 emotions to classify, found {list(labels)}")
    ids = [c.id for c in clips]
    train_cfg = cfg.train
    if cfg.paper_augment_first:
        say(f"paper_augment_first: {cfg.copies} augmented copies of every clip BEFORE splitting")
        wavs, src, copy_no = augmented_pool(
            wavs, cfg.copies, train_cfg.augment, cfg.seed, cfg.preprocess.sample_rate
        )
        clips = [clips[s] for s in src]
        hashes = [hashes[s] for s in src]  # copies keep their source's hash: the audit sees them
        ids = [c.id if k == 0 else f"{c.id}#aug{k}" for c, k in zip(clips, copy_no, strict=True)]
        train_cfg = dataclasses.replace(train_cfg, augment=AugmentConfig.none())
    return _RunData(clips, wavs, hashes, ids, labels, train_cfg, loaded.errors, dict(excluded))


def _make_split(cfg: DeepConfig, data: _RunData) -> Split:
    from emovox.evaluation.splits import make_split

    return make_split(
        cfg.protocol,
        np.array([c.emotion for c in data.clips], dtype=object),
        data.speakers,
        data.corpora,
        k=cfg.k,
        seed=cfg.seed,
        test_speakers=cfg.test_speakers,
        train_corpora=cfg.train_corpora,
        test_corpora=cfg.test_corpora,
        hashes=data.hashes,
        texts=[c.text for c in data.clips],
    )


# --------------------------------------------------------------------------- folds


def _digest_ids(ids: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]


def _read_fold_result(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _finished_fold(
    result_path: Path, digests: set[str], test_ids: str, name: str, say: Log
) -> dict[str, Any] | None:
    """The stored result of a finished fold (None: not finished); one written with other
    settings or data is an error."""
    done = _read_fold_result(result_path)
    if done is None:
        return None
    if done.get("config_digest") not in digests or done.get("test_ids") != test_ids:
        raise ValueError(
            f"{result_path} was written with other settings or data; run without "
            "--resume to train again, or choose another run name (--name)"
        )
    say(f"{name}: already done, re-using it (UA {done['ua']:.3f}, {done['epochs_run']} epochs)")
    return done


def _prediction_rows(data: _RunData, fold: Fold, probs: np.ndarray) -> list[dict[str, Any]]:
    """One ``predictions.csv`` row per test clip, with its class probabilities."""
    rows = []
    for i, p, pr in zip(fold.test, probs.argmax(axis=1), probs, strict=True):
        c = data.clips[i]
        row = {
            "id": data.ids[i],
            "corpus": c.corpus,
            "speaker": c.speaker,
            "fold": fold.name,
            "true": c.emotion,
            "pred": data.labels[int(p)],
            "path": c.path,
        }
        row.update({f"p_{lab}": round(float(v), 4) for lab, v in zip(data.labels, pr, strict=True)})
        rows.append(row)
    return rows


def _epoch_hook(
    name: str, epochs: int, progress: bool, say: Log, on_epoch_end: EpochHook | None
) -> Callable[[dict[str, Any]], None]:
    def hook(rec: dict[str, Any]) -> None:
        if not progress:  # the trainer's progress bar prints these lines itself
            ua = "" if rec["val_ua"] is None else f"  val UA {rec['val_ua']:.3f}"
            say(
                f"{name} epoch {rec['epoch']}/{epochs}  loss "
                f"{rec['train_loss']:.4f}{ua}  {rec['seconds']:.0f}s"
            )
        if on_epoch_end is not None:
            on_epoch_end(name, rec)

    return hook


def _train_fold(
    cfg: DeepConfig,
    data: _RunData,
    fold: Fold,
    fi: int,
    fold_dir: Path,
    resume: bool,
    progress: bool,
    say: Log,
    on_epoch_end: EpochHook | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train fold number ``fi`` and predict its test clips: ``(prediction rows, fold info)``."""
    import torch

    from emovox.deep.nets import load_torchvision_weights, n_parameters
    from emovox.deep.predict import predict_proba
    from emovox.deep.trainer import Trainer
    from emovox.evaluation.metrics import score

    tf = time.perf_counter()
    torch.manual_seed(cfg.seed * 1000 + fi)
    net = build_net(cfg, len(data.labels))
    if cfg.pretrained:
        rep = load_torchvision_weights(net, cfg.pretrained)
        say(
            f"pretrained {cfg.pretrained}: {len(rep['loaded'])} tensors loaded, "
            f"{len(rep['adapted'])} adapted, {len(rep['skipped']) + len(rep['missing'])} "
            "left at their initial values"
        )
    train_cfg = data.train_cfg
    fold_train_cfg = train_cfg
    if not cfg.pretrained and train_cfg.freeze_epochs:
        # freezing a randomly initialised body only wastes epochs
        fold_train_cfg = dataclasses.replace(train_cfg, freeze_epochs=0)
        if fi == 0:
            say("no pretrained weights: freeze_epochs ignored (the body trains from the start)")
    hook = _epoch_hook(fold.name, train_cfg.epochs, progress, say, on_epoch_end)
    y_idx = data.y_idx
    fit = Trainer(fold_train_cfg, on_epoch_end=hook).fit(
        [data.wavs[i] for i in fold.train],
        y_idx[fold.train],
        [data.wavs[i] for i in fold.val],
        y_idx[fold.val],
        net,
        run_dir=fold_dir,
        resume=resume,
        progress=progress,
        labels=list(data.labels),
    )
    probs = predict_proba(net, [data.wavs[i] for i in fold.test], train_cfg)
    rows = _prediction_rows(data, fold, probs)
    fold_scores = score([r["true"] for r in rows], [r["pred"] for r in rows], data.labels)
    info = {
        "fold": fold.name,
        "ua": fold_scores["ua"],
        "wa": fold_scores["wa"],
        "n_train": len(fold.train),
        "n_val": len(fold.val),
        "n_test": len(fold.test),
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "val_ua": fit.best_ua,
        "stopped_early": fit.stopped_early,
        "seconds": round(time.perf_counter() - tf, 1),
        "n_parameters": n_parameters(net),
    }
    return rows, info


# --------------------------------------------------------------------------- the run


def _run_metrics(
    cfg: DeepConfig,
    data: _RunData,
    split: Split,
    n_run: int,
    leaky: bool,
    predictions: list[dict[str, Any]],
    fold_info: list[dict[str, Any]],
    t0: float,
) -> dict[str, Any]:
    """Scores of the pooled predictions plus what the run was (``metrics.json``)."""
    from emovox.evaluation.metrics import score

    metrics = score([p["true"] for p in predictions], [p["pred"] for p in predictions], data.labels)
    run_audit = Split(
        split.protocol, split.folds[:n_run], leaky, split.description, split.audits[:n_run]
    )
    metrics.update(
        model=cfg.model,
        corpora=sorted({c.corpus for c in data.clips}),
        protocol=cfg.protocol,
        leaky=leaky,
        folds=n_run,
        folds_total=len(split.folds),
        fold_ua=[f["ua"] for f in fold_info],
        leakage=run_audit.audit_summary(),
        skipped=len(data.skipped),
        excluded=data.excluded,
        wall_s=round(time.perf_counter() - t0, 2),
        paper_augment_first=cfg.paper_augment_first,
        fold_details=[{k: v for k, v in f.items() if k != "test_ids"} for f in fold_info],
        train_seconds=round(sum(f["seconds"] for f in fold_info), 1),
    )
    if cfg.paper_augment_first:
        metrics["copies"] = cfg.copies
    if cfg.protocol == "loco":
        from emovox.evaluation.loco import loco_scores

        y = [c.emotion for c in data.clips]
        corpora = [c.corpus for c in data.clips]
        metrics["loco"] = loco_scores(run_audit, y, corpora, data.labels, predictions)
    return metrics


def train_and_evaluate(
    cfg: DeepConfig,
    out_dir: str | Path = "runs",
    resume: bool = False,
    progress: bool = True,
    log: Log | None = None,
    on_epoch_end: EpochHook | None = None,
) -> dict[str, Any]:
    """Train and test the configured network on each fold (up to ``cfg.folds``) and score the
    pooled test predictions; writes ``<out_dir>/<run name>/`` and returns the metrics.

    ``resume=True`` re-uses finished folds (``fold_result.json`` with the same settings) and
    continues an interrupted fold from its checkpoint. ``log`` receives one-line messages;
    ``on_epoch_end(fold_name, record)`` is called after every epoch (an exception there stops
    training with the checkpoint intact).
    """
    from emovox.evaluation.reports import write_run

    say: Log = log or (lambda _msg: None)
    t0 = time.perf_counter()
    validate_config(cfg)
    run_dir = Path(out_dir) / cfg.run_name()
    data = _load_run_data(cfg, progress, say)
    split = _make_split(cfg, data)
    leaky = split.leaky or cfg.paper_augment_first
    n_run = len(split.folds) if cfg.folds is None else min(cfg.folds, len(split.folds))
    digest, digests = cfg.digest(), cfg.digests()
    speakers, corpora = data.speakers, data.corpora

    predictions: list[dict[str, Any]] = []
    fold_info: list[dict[str, Any]] = []
    for fi, fold0 in enumerate(split.folds[:n_run]):
        fold = with_validation(fold0, speakers, cfg.val_fraction, cfg.seed, leaky, corpora)
        fold_dir = run_dir / _safe(fold.name)
        result_path = fold_dir / FOLD_RESULT
        test_ids = _digest_ids([data.ids[i] for i in fold.test])
        done = _finished_fold(result_path, digests, test_ids, fold.name, say) if resume else None
        if done is not None:
            predictions.extend(done["predictions"])
            fold_info.append({k: v for k, v in done.items() if k != "predictions"})
            continue
        if not resume:
            result_path.unlink(missing_ok=True)
        say(
            f"{fold.name} ({fi + 1}/{n_run}): {len(fold.train)} training, {len(fold.val)} "
            f"validation, {len(fold.test)} test clips"
        )
        rows, info = _train_fold(cfg, data, fold, fi, fold_dir, resume, progress, say, on_epoch_end)
        info |= {"config_digest": digest, "test_ids": test_ids}
        atomic_write_json(result_path, info | {"predictions": rows})
        best = "n/a" if info["val_ua"] is None else f"{info['val_ua']:.3f}"
        say(
            f"{fold.name}: test UA {info['ua']:.3f}  WA {info['wa']:.3f}  (best val UA "
            f"{best} at epoch {info['best_epoch']}, {info['seconds']:.0f}s)"
        )
        predictions.extend(rows)
        fold_info.append(info)

    metrics = _run_metrics(cfg, data, split, n_run, leaky, predictions, fold_info, t0)
    config = cfg.to_dict() | {
        "name": cfg.run_name(),
        "labels_resolved": list(data.labels),
        "corpora": metrics["corpora"],
        "clip_counts": dict(Counter(c.corpus for c in data.clips)),
    }
    write_run(run_dir, config, metrics, predictions, data.skipped)
    metrics["run_dir"] = str(run_dir)
    return metrics
