"""Late fusion of finished runs: average the class probabilities that several runs wrote for
the same clips under the same folds (e.g. the Whisper head and the log-mel CNN).

>>> from emovox.evaluation.fusion import fuse_runs
>>> res = fuse_runs(["runs/whisper-four", "runs/paper-model2-speaker-kfold"])  # doctest: +SKIP
>>> res.metrics["ua"]                                                           # doctest: +SKIP

Fusion never looks at test labels to choose anything: the weights are given (equal by
default), and the runs must agree clip by clip on which fold held each clip out, so a fused
score is exactly as speaker-independent as its inputs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emovox.evaluation.metrics import score
from emovox.evaluation.reports import write_run


class FusionError(ValueError):
    """Runs that cannot be fused, naming the run and the reason."""


@dataclass
class RunPredictions:
    """One run's per-clip rows and class-probability matrix (labels in column order)."""

    run_dir: Path
    rows: list[dict[str, str]]
    labels: tuple[str, ...]
    proba: np.ndarray
    leaky: bool
    protocol: str
    adapt: str = "none"


def read_run(run_dir: str | Path) -> RunPredictions:
    """Read ``predictions.csv`` (with ``p_<label>`` columns) and ``metrics.json`` of a run."""
    run_dir = Path(run_dir)
    pred = run_dir / "predictions.csv"
    if not pred.is_file():
        raise FusionError(f"{run_dir}: no predictions.csv (is this a run folder?)")
    with pred.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise FusionError(f"{pred}: no predictions")
    labels = tuple(c[2:] for c in rows[0] if c.startswith("p_"))
    if not labels:
        raise FusionError(
            f"{pred}: no class probabilities (p_<label> columns); the model of this run gives "
            "only labels (the SVM as evaluation fits it): fuse runs of logreg, lda, knn, rda, "
            "gmm, attentive or the deep models"
        )
    try:
        proba = np.array([[float(r[f"p_{lab}"]) for lab in labels] for r in rows])
    except ValueError as exc:
        raise FusionError(f"{pred}: unreadable probability ({exc})") from exc
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FusionError(f"{run_dir}: no metrics.json (is this a finished run?)")
    metrics = json.loads(metrics_path.read_text())
    return RunPredictions(
        run_dir,
        rows,
        labels,
        proba,
        bool(metrics.get("leaky", False)),
        str(metrics.get("protocol", "unknown")),
        str(metrics.get("adapt") or "none"),
    )


@dataclass
class FusionResult:
    metrics: dict
    predictions: list[dict]
    run_dir: Path | None = None


def fuse_runs(
    run_dirs: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    out_dir: str | Path | None = None,
    name: str | None = None,
) -> FusionResult:
    """Weighted mean of the runs' class probabilities, clip by clip; scored and (with
    ``out_dir``) written as a run folder of its own."""
    if len(run_dirs) < 2:
        raise FusionError("fusion needs at least two runs")
    runs = [read_run(d) for d in run_dirs]
    w = np.ones(len(runs)) if weights is None else np.asarray(weights, dtype=float)
    if len(w) != len(runs) or np.any(w < 0) or w.sum() <= 0:
        raise FusionError(
            f"give one non-negative weight per run ({len(runs)} runs, weights {list(w)})"
        )
    w = w / w.sum()
    base = runs[0]
    if any(set(r.labels) != set(base.labels) for r in runs):
        raise FusionError(
            "the runs predict different label sets: "
            + "; ".join(f"{r.run_dir}: {', '.join(r.labels)}" for r in runs)
        )
    protocols = {r.protocol for r in runs}
    if len(protocols) > 1:
        raise FusionError(f"the runs used different protocols ({', '.join(sorted(protocols))})")
    index = {row["id"]: i for i, row in enumerate(base.rows)}
    fused = w[0] * base.proba
    for r, wr in zip(runs[1:], w[1:], strict=True):
        ids = [row["id"] for row in r.rows]
        if set(ids) != set(index):
            raise FusionError(
                f"{r.run_dir} and {base.run_dir} hold different clips "
                f"({len(set(ids) ^ set(index))} differ): fuse runs over the same data"
            )
        cols = [r.labels.index(lab) for lab in base.labels]
        aligned = np.zeros_like(base.proba)
        for row, p in zip(r.rows, r.proba[:, cols], strict=True):
            j = index[row["id"]]
            if row["fold"] != base.rows[j]["fold"]:
                raise FusionError(
                    f"{row['id']} is in {row['fold']} of {r.run_dir} but in "
                    f"{base.rows[j]['fold']} of {base.run_dir}: the runs used different folds, "
                    "so fusing them would mix test clips into training"
                )
            aligned[j] = p
        fused += wr * aligned
    labels = base.labels
    pred = [labels[k] for k in fused.argmax(1)]
    predictions = []
    for row, p, probs in zip(base.rows, pred, fused, strict=True):
        rec = {k: row[k] for k in ("id", "corpus", "speaker", "fold", "true") if k in row}
        rec["pred"] = p
        rec["path"] = row.get("path", "")
        rec |= {f"p_{lab}": round(float(v), 4) for lab, v in zip(labels, probs, strict=True)}
        predictions.append(rec)
    metrics = score([r["true"] for r in predictions], pred, labels)
    folds = sorted({r["fold"] for r in predictions})
    metrics.update(
        model="fusion",
        protocol=base.protocol,
        adapt="+".join(sorted({r.adapt for r in runs} - {"none"})) or "none",
        sources=[str(r.run_dir) for r in runs],
        weights=[round(float(x), 4) for x in w],
        corpora=sorted({r["corpus"] for r in predictions if r.get("corpus")}),
        leaky=any(r.leaky for r in runs),
        folds=len(folds),
        fold_ua=[
            score(
                [r["true"] for r in predictions if r["fold"] == f],
                [r["pred"] for r in predictions if r["fold"] == f],
                labels,
            )["ua"]
            for f in folds
        ],
    )
    result = FusionResult(metrics, predictions)
    if out_dir is not None:
        run_name = name or "fusion-" + "+".join(r.run_dir.name for r in runs)
        config = {
            "name": run_name,
            "model": "fusion",
            "corpora": metrics["corpora"],
            "sources": metrics["sources"],
            "weights": metrics["weights"],
            "labels_resolved": list(labels),
        }
        result.run_dir = write_run(Path(out_dir) / run_name, config, metrics, predictions, [])
    return result
