"""The trials that chose the current Model 2 recipe, re-runnable: fold 1, 15 epochs, starting
from the second recipe (``configs/paper-model2-32mel.toml``), each variant adding one change.

    python bench/model2_trials.py [--out runs/trials] [--threads 2] [--render-only]

Each variant trains fold 1 of the speaker 5-fold split of the four corpora (paper7) and reports
the best validation UA (validation speakers carved from the TRAINING speakers) beside the test
UA, with the test UA per corpus. Finished runs under ``--out`` are re-used (``--resume``), so a
second call only renders. Writes ``bench/results/model2_trials.json`` and the table in
``docs/deep-models.md``. The test column is shown because it was looked at when the recipe was
chosen (docs/deep-models.md says how); fold 1 is therefore not an untouched test fold.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import results_db  # noqa: E402
from deep_results import corpus_ua  # noqa: E402

from emovox.io import atomic_write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
BASE = HERE.parent / "configs" / "paper-model2-32mel.toml"
EPOCHS = 15
VARIANTS: list[tuple[str, str, dict]] = [  # (run name, label, overrides on BASE)
    ("m2trial-32mel", "second recipe: 32 bands, plain input, global pooling", {}),
    ("m2trial-deltas", "+ delta channels", {"model.deltas": True}),
    (
        "m2trial-deltas-timepool",
        "+ delta channels, time-only pooling",
        {"model.deltas": True, "model.pool": "time"},
    ),
    (
        "m2trial-deltas-timepool-64mel",
        "+ delta channels, time-only pooling, 64 bands (the current recipe)",
        {"model.deltas": True, "model.pool": "time", "n_mels": 64, "augment.max_f": 8},
    ),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="runs/trials")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-jobs", type=int, default=-1, help="processes decoding audio")
    ap.add_argument("--render-only", action="store_true", help="only rewrite the docs table")
    args = ap.parse_args()
    if args.render_only:
        res = json.loads((HERE / "results" / "model2_trials.json").read_text())
        results_db.write_section(
            HERE.parent / "docs" / "deep-models.md", "model2-trials", table(res)
        )
        return 0
    from emovox.evaluation.deep_experiment import load_config, train_and_evaluate

    rows = []
    for name, label, over in VARIANTS:
        cfg = load_config(
            BASE,
            {
                **over,
                "name": name,
                "epochs": EPOCHS,
                "folds": 1,
                "threads": args.threads,
                "n_jobs": args.n_jobs,
            },
        )
        m = train_and_evaluate(cfg, args.out, resume=True, progress=False, log=print)
        fold = m["fold_details"][0]
        per_corpus = corpus_ua(Path(args.out) / cfg.run_name())
        rows.append(
            {
                "variant": label,
                "overrides": over,
                "val_ua": round(fold["val_ua"], 4),
                "test_ua": round(m["ua"], 4),
                "test_ua_per_corpus": per_corpus,
                "best_epoch": fold["best_epoch"],
                "seconds": fold["seconds"],
            }
        )
        print(rows[-1])
    res = {
        "base_config": os.path.relpath(BASE, HERE.parent),
        "epochs": EPOCHS,
        "fold": "fold 1 of the speaker 5-fold split (seed 0), four corpora, paper7",
        "threads": args.threads,
        "hardware": results_db.hardware(),
        "variants": rows,
    }
    atomic_write_json(HERE / "results" / "model2_trials.json", res)
    results_db.write_section(HERE.parent / "docs" / "deep-models.md", "model2-trials", table(res))
    return 0


def table(res: dict) -> str:
    """Markdown table of the trials (from ``bench/results/model2_trials.json``)."""
    corpora = sorted({c for r in res["variants"] for c in r["test_ua_per_corpus"]})
    lines = [
        f"`python bench/model2_trials.py`: {res['fold']}, {res['epochs']} epochs; the first row "
        f"is `{res['base_config']}`, each later row adds one change to the row above; UA %.",
        "",
        "| variant | validation UA | test UA | "
        + " | ".join(f"test {c}" for c in corpora)
        + " | seconds |",
        "|---|---|---|" + "---|" * len(corpora) + "---|",
    ]
    for r in res["variants"]:
        cells = [f"{100 * r['test_ua_per_corpus'].get(c, float('nan')):.1f}" for c in corpora]
        lines.append(
            f"| {r['variant']} | {100 * r['val_ua']:.1f} | {100 * r['test_ua']:.1f} | "
            + " | ".join(cells)
            + f" | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
