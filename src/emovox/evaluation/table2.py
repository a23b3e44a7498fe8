"""The paper's Table 2: per-emotion accuracy of KNN, LDA, SVM and RDA, under an honest
(speaker-independent) protocol beside the paper's leaky random split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emovox.evaluation.experiment import Dataset, ExperimentConfig

TABLE2_MODELS = ("knn", "lda", "svm", "rda")
"""The paper's four classical models, in its order."""


def compute_table2(
    data: Dataset, cfg: ExperimentConfig, models: Sequence[str] = TABLE2_MODELS
) -> dict[str, Any]:
    """Evaluate each model under ``cfg.protocol`` and under the leaky random split.

    Returns ``{"labels": [...], "rows": [...]}``, one row (a run's metrics plus ``run_dir``) per
    model and protocol."""
    from emovox.evaluation.experiment import paper_and_honest

    rows = paper_and_honest(data, cfg, models)
    return {"labels": list(data.labels), "rows": rows}


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
