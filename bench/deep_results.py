"""Deep-model runs (``emovox train``) into docs/results.*: reads finished run folders.

Usage: python bench/deep_results.py runs/paper-model2-speaker-kfold [runs/... ...]

Each folder is what ``emovox train --config configs/X.toml [--protocol P] [--folds N]`` wrote;
its ``config.json`` names the config file and its ``metrics.json`` holds the pooled scores of the
folds that ran (``folds`` of ``folds_total``), the wall time, and per-fold training seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import results_db

from emovox.labels import label_set_name


def row(run_dir: Path) -> dict:
    cfg = json.loads((run_dir / "config.json").read_text())
    m = json.loads((run_dir / "metrics.json").read_text())
    labels = label_set_name(tuple(cfg["labels_resolved"]))
    src = cfg.get("source") or "?"
    overrides = []
    if m["folds"] != m["folds_total"]:
        overrides.append(f"--folds {m['folds']}")
    pretrained = cfg.get("pretrained")
    if pretrained:
        overrides.append(f"--pretrained {pretrained}")
    return {
        "section": "Deep models (the paper's Model 1 and Model 2), log-mel input",
        "model": m["model"],
        "corpora": m["corpora"],
        "labels": labels,
        "protocol": m["protocol"],
        "leaky": m["leaky"],
        "test": None,
        "wa": m["wa"],
        "ua": m["ua"],
        "macro_f1": m["macro_f1"],
        "per_class": m["per_class"],
        "folds": m["folds"],
        "folds_total": m["folds_total"],
        "fold_ua": m["fold_ua"],
        "n": m["n"],
        "wall_s": m["wall_s"],
        "train_seconds": m.get("train_seconds"),
        "epochs": cfg["train"]["epochs"],
        "pretrained": pretrained,
        "hardware": results_db.hardware(),
        "config": src,
        "command": f"emovox train --config {src} --protocol {m['protocol']}"
        + "".join(f" {o}" for o in overrides),
    }


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    rows = [row(Path(a)) for a in argv]
    results_db.upsert(rows)
    for r in rows:
        tag = "LEAKY" if r["leaky"] else "speaker-independent"
        print(
            f"{r['model']:9s} {'+'.join(r['corpora']):28s} {r['protocol']:14s} {tag:20s} "
            f"UA {r['ua']:.3f} ({r['folds']}/{r['folds_total']} folds)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
