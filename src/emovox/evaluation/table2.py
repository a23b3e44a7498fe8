"""The paper's Table 2: per-emotion accuracy of KNN, LDA, SVM, RDA and the HMM, under an honest
(speaker-independent) protocol beside the paper's leaky random split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emovox.evaluation.dataset import Dataset
    from emovox.evaluation.experiment_config import ExperimentConfig

TABLE2_MODELS = ("knn", "lda", "svm", "rda", "hmm")
"""The paper's classical models: four on utterance vectors, then the HMM on frame sequences."""


def compute_table2(
    data: Dataset | None,
    cfg: ExperimentConfig,
    models: Sequence[str] = TABLE2_MODELS,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate each model under ``cfg.protocol`` and under the leaky random split.

    ``data`` holds the utterance vectors (None: load them here, when a model needs them); the
    frame sequences of the :data:`~emovox.models.FRAME_MODELS` (the HMM) are always loaded here
    (cached; ``progress`` shows the extraction). Returns ``{"labels": [...], "rows": [...]}``,
    one row (a run's metrics plus ``run_dir``) per model and protocol."""
    from emovox.evaluation.dataset import load_dataset
    from emovox.evaluation.experiment import paper_and_honest
    from emovox.models import FRAME_MODELS

    vector = [m for m in models if m not in FRAME_MODELS]
    frame = [m for m in models if m in FRAME_MODELS]
    rows: list[dict[str, Any]] = []
    labels: list[str] = list(data.labels) if data is not None else []
    if vector:
        if data is None:
            data = load_dataset(replace(cfg, model=vector[0]), progress=progress)
        rows += paper_and_honest(data, cfg, vector)
        labels = list(data.labels)
    if frame:
        frames = load_dataset(replace(cfg, model=frame[0]), progress=progress)
        rows += paper_and_honest(frames, cfg, frame)
        labels = labels or list(frames.labels)
    return {"labels": labels, "rows": rows}


def render_table2(result: dict[str, Any]) -> str:
    """Markdown of :func:`compute_table2`'s result in the paper's Table 2 layout: an honest
    block, then a LEAKY block; per-emotion accuracy (= recall), WA and UA."""
    labels = result["labels"]
    lines = []
    for leaky in (False, True):
        rows = [r for r in result["rows"] if r["leaky"] == leaky]
        if not rows:
            continue
        proto = rows[0]["protocol"]
        title = f"Paper's protocol: {proto}, LEAKY" if leaky else f"Speaker-independent: {proto}"
        lines += [
            f"**{title}** (per-emotion accuracy = recall)",
            "",
            "| model | " + " | ".join(labels) + " | WA | UA |",
            "|---" * (len(labels) + 3) + "|",
        ]
        for r in rows:
            cells = [f"{r['per_class'].get(lab, float('nan')):.3f}" for lab in labels]
            lines.append(
                f"| {r['model'].upper()} | "
                + " | ".join(cells)
                + f" | {r['wa']:.3f} | {r['ua']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_table2(result: dict[str, Any], out_dir: str | Path) -> str:
    """Write ``table2.md`` (:func:`render_table2`) and ``table2.json`` (the result) into
    ``out_dir``; returns the Markdown."""
    from emovox.io import atomic_write_json, atomic_write_text

    md = render_table2(result)
    atomic_write_text(Path(out_dir) / "table2.md", md)
    atomic_write_json(Path(out_dir) / "table2.json", result)
    return md
