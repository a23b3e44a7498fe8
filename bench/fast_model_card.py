"""docs/fast-model-card.md from a fast model's model.json (default: the packaged one), and its
rows in docs/results.json (model name starting ``fast model``): speaker k-fold over every
training corpus, the same folds on the paper's four corpora alone, and leave-one-corpus-out
when the card has it; each beside its teacher's score on the same folds (``teacher_ua``).

    python bench/fast_model_card.py [MODEL_DIR]

`emovox build-fast-model` writes the same text as ``card.md`` inside the model folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import results_db
from model_card import base_row

from emovox.inference.build import PAPER_CORPORA
from emovox.inference.card import render_fast_card
from emovox.inference.fast import CONFIG_FILE, fast_bundle_path
from emovox.io import atomic_write_text

SECTION = "Fast (distilled) model"


def rows_of(card: dict) -> list[dict]:
    """The card's scores as results rows."""
    corpora = sorted(card["training_data"])
    ev = card["evaluation"]
    base = base_row(card, SECTION, f"fast model ({card['name']})")
    kf = ev["speaker-kfold"]
    st, te = kf["student"], kf["teacher"]
    detail = f"speaker {kf['folds']}-fold; teacher refitted per fold on its training speakers"
    rows = [
        base
        | {
            "protocol": "speaker-kfold",
            "protocol_detail": detail,
            "test_corpora": corpora,
            "ua": st["ua"],
            "wa": st["wa"],
            "macro_f1": st["macro_f1"],
            "per_class": st["per_class"],
            "per_corpus": st["per_corpus"],
            "teacher_ua": te["ua"],
        }
    ]
    if "paper_corpora" in st:
        rows.append(
            base
            | {
                "protocol": "speaker-kfold",
                "protocol_detail": f"{detail}; scored on the paper's four corpora only",
                "test_corpora": list(PAPER_CORPORA),
                "ua": st["paper_corpora"]["ua"],
                "wa": st["paper_corpora"]["wa"],
                "n": st["paper_corpora"]["n"],
                "teacher_ua": te["paper_corpora"]["ua"],
            }
        )
    lo = ev.get("loco")
    if lo:
        for s, t in zip(lo["student"]["held_out"], lo["teacher"]["held_out"], strict=True):
            rows.append(
                base
                | {
                    "protocol": "loco",
                    "protocol_detail": "leave-one-corpus-out; student and teacher on the others",
                    "test_corpora": [s["corpus"]],
                    "ua": s["ua"],
                    "wa": s["wa"],
                    "chance": s["chance"],
                    "scored_labels": s["labels"],
                    "n": s["n"],
                    "teacher_ua": t["ua"],
                }
            )
    return rows


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else fast_bundle_path()
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    atomic_write_text(results_db.ROOT / "docs" / "fast-model-card.md", render_fast_card(cfg))
    results_db.upsert(rows_of(cfg["card"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
