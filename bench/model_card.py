"""docs/model-card.md from a bundle's model.json (default: the packaged model), and the bundled
model's rows in docs/results.json (model name starting ``default model``): its speaker k-fold
score over every training corpus, the same folds on the paper's four corpora alone, and the
recipe's leave-one-corpus-out scores that the card carries.

    python bench/model_card.py [MODEL_DIR]

`emovox build-model` writes the same text as ``card.md`` inside the bundle folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import results_db

from emovox.data.labels import LABEL_SETS
from emovox.inference.bundle import CONFIG_FILE, bundle_path
from emovox.inference.card import render_card
from emovox.io import atomic_write_text

SECTION = "Bundled (default) model"
GENERALIZATION = results_db.ROOT / "docs" / "generalization.md"


def summary(card: dict) -> str:
    """docs/generalization.md's block on the bundled model: what it learnt from and its
    within-corpus and leave-one-corpus-out scores, from the card."""
    ev, gen = card["evaluation"], card.get("generalization")
    corpora = sorted(card["training_data"])
    lines = [
        f"`python bench/model_card.py` (from the bundle's card, `{card['command']}`): "
        f"{sum(card['training_data'].values())} clips of {len(corpora)} corpora "
        f"({', '.join(corpora)}), training views: "
        + (", ".join(f"`{v}`" for v in card.get("training_views") or []) or "none")
        + ".",
        "",
        f"- {ev['protocol']}: UA {100 * ev['ua']:.1f} % over all of them.",
    ]
    paper = ev.get("paper_corpora")
    if paper:
        lines.append(
            f"- The same folds scored on the paper's four corpora merged: UA "
            f"{100 * paper['ua']:.1f} % ({paper['n']} clips)."
        )
    if gen:
        low = [h["corpus"] for h in gen["held_out"] if h["ua"] < h["chance"] + 0.10]
        lines.append(
            f"- Its recipe under leave-one-corpus-out (`{gen['run']}`): mean UA "
            f"{100 * gen['mean_ua']:.1f} % (mean chance {100 * gen['mean_chance']:.1f} %); "
            + (
                f"below chance + 10 points: {', '.join(low)}."
                if low
                else "every corpus above chance + 10 points."
            )
        )
    lines.append(f"- Built in {card['build_seconds'] / 60:.0f} min on {card['hardware']}.")
    return "\n".join(lines)


def base_row(card: dict, section: str, model: str) -> dict:
    """What every results row of a model card shares (section, model, labels, command ...)."""
    return {
        "section": section,
        "model": model,
        "labels": next(
            (name for name, labs in LABEL_SETS.items() if list(labs) == list(card["labels"])),
            ",".join(card["labels"]),
        ),
        "config": card["command"],
        "command": card["command"],
        "hardware": card.get("hardware"),
        "wall_s": card.get("build_seconds"),
        "corpora": sorted(card["training_data"]),
        "leaky": False,
        "test": None,
        "adapted": False,
    }


def rows_of(card: dict) -> list[dict]:
    """The card's scores as results rows."""
    corpora = sorted(card["training_data"])
    ev = card["evaluation"]
    base = base_row(card, SECTION, f"default model ({card['name']})")
    kfold = ev["protocol"]
    rows = [
        base
        | {
            "protocol": "speaker-kfold",
            "protocol_detail": kfold,
            "test_corpora": corpora,
            "ua": ev["ua"],
            "wa": ev["wa"],
            "macro_f1": ev["macro_f1"],
            "per_class": ev["per_class_recall"],
            "per_corpus": ev["per_corpus"],
        }
    ]
    paper = ev.get("paper_corpora")
    if paper:
        rows.append(
            base
            | {
                "protocol": "speaker-kfold",
                "protocol_detail": f"{kfold}; scored on the paper's four corpora only",
                "test_corpora": paper["corpora"],
                "ua": paper["ua"],
                "wa": paper["wa"],
                "n": paper["n"],
            }
        )
    gen = card.get("generalization")
    for h in gen["held_out"] if gen else []:
        rows.append(
            base
            | {
                "protocol": "loco",
                "protocol_detail": f"{gen['protocol']} ({gen['run']})",
                "test_corpora": [h["corpus"]],
                "ua": h["ua"],
                "chance": h["chance"],
                "scored_labels": h["labels"],
                "n": h["n"],
            }
        )
    return rows


def main(argv: list[str]) -> int:
    folder = bundle_path(argv[0] if argv else None)
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    atomic_write_text(Path(results_db.ROOT / "docs" / "model-card.md"), render_card(cfg))
    results_db.upsert(rows_of(cfg["card"]))
    results_db.write_section(GENERALIZATION, "bundle", summary(cfg["card"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
