"""Leave-one-corpus-out results: rows in docs/results.json and the tables of
docs/generalization.md, from finished ``emovox evaluate --protocol loco`` runs.

Usage:
    python bench/loco_results.py runs/loco-baseline [runs/... ...]
    python bench/loco_results.py --render-only   # only rewrite docs/generalization.md

Each run folder is what ``emovox evaluate --config configs/X.toml`` wrote (``metrics.json``,
``config.json``, ``predictions.csv``). Per held-out corpus: UA beside chance, the share of
answers given to each emotion (a model that learnt the studios more than emotion answers one
emotion for everything), and how often wrong answers would be flagged ``uncertain`` (top class
probability below 0.5, the bundled model's rule) — the figures the generalization work is judged
on. Every number in docs/generalization.md comes from here.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_db  # noqa: E402

ROOT = results_db.ROOT
DOC = ROOT / "docs" / "generalization.md"
STORE = ROOT / "bench" / "results" / "loco.json"
SECTION = "Leave one corpus out (LOCO): each corpus held out whole, trained on the others"
THRESHOLD = 0.5


def held_out_answers(run: Path) -> dict[str, dict]:
    """Per held-out corpus, from ``predictions.csv``: answer shares and flag figures."""
    by: dict[str, list[dict]] = {}
    with open(run / "predictions.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            by.setdefault(row["corpus"], []).append(row)
    out = {}
    for corpus, rows in sorted(by.items()):
        probs = [[float(v) for k, v in r.items() if k.startswith("p_") and v != ""] for r in rows]
        top = np.array([max(p) if p else np.nan for p in probs])
        wrong = np.array([r["true"] != r["pred"] for r in rows])
        flagged = top < THRESHOLD
        answers = Counter(r["pred"] for r in rows)
        acc = {
            "flagged": float(np.mean(~wrong[flagged])) if flagged.any() else None,
            "unflagged": float(np.mean(~wrong[~flagged])) if (~flagged).any() else None,
        }
        out[corpus] = {
            "n": len(rows),
            "answer_share": {k: v / len(rows) for k, v in answers.most_common()},
            "wrong": int(wrong.sum()),
            "wrong_flagged": float(np.mean(flagged[wrong])) if wrong.any() else None,
            "accuracy": acc,
        }
    return out


def collect(runs: list[Path]) -> list[dict]:
    """One summary per run: its config, metrics' loco block and the answers per corpus."""
    summaries = []
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        config = json.loads((run / "config.json").read_text())
        if "loco" not in metrics:
            raise SystemExit(f"{run}: not a loco run (no 'loco' block in metrics.json)")
        summaries.append(
            {
                "run": run.name,
                "config": config.get("config") or f"configs/{run.name}.toml",
                "model": metrics["model"],
                "features": config.get("features"),
                "adapted": metrics.get("adapt") not in (None, "none"),
                "labels": config.get("labels"),
                "corpora": metrics["corpora"],
                "loco": metrics["loco"],
                "answers": held_out_answers(run),
                "wall_s": metrics.get("wall_s"),
            }
        )
    return summaries


def upsert_rows(summaries: list[dict]) -> None:
    rows = []
    for s in summaries:
        base = {
            "section": SECTION,
            "model": f"{s['features']}-{s['model']}" if s["features"] else s["model"],
            "labels": s["labels"],
            "config": s["config"],
            "command": f"emovox evaluate --config {s['config']}",
            "hardware": results_db.hardware(),
        }
        metrics = {"corpora": s["corpora"], "loco": s["loco"], "adapt": None}
        rows += results_db.loco_rows(metrics, base)
    results_db.upsert(rows)


def render(summaries: list[dict]) -> str:
    lines = []
    corpora = sorted({h["corpus"] for s in summaries for h in s["loco"]["held_out"]})
    head = "| held-out corpus | chance | " + " | ".join(s["run"] for s in summaries) + " |"
    lines += [head, "|---|---|" + "---|" * len(summaries)]
    for c in corpora:
        cells, chance = [], None
        for s in summaries:
            h = next((h for h in s["loco"]["held_out"] if h["corpus"] == c), None)
            cells.append(f"{100 * h['ua']:.1f}" if h else "–")
            chance = chance or (h and h["chance"])
        lines.append(f"| {c} | {100 * chance:.1f} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean** | "
        + f"{100 * np.mean([s['loco']['mean_chance'] for s in summaries[:1]]):.1f} | "
        + " | ".join(f"**{100 * s['loco']['mean_ua']:.1f}**" for s in summaries)
        + " |"
    )
    lines += [
        "",
        "UA % per held-out corpus (scored on its own emotions that the training corpora have), "
        "beside chance (1 / scored classes).",
    ]
    for s in summaries:
        lines += [
            "",
            f"**{s['run']}** (`{s['config']}`): what it answers on each held-out corpus, and "
            f"how often a wrong answer has a top probability under {THRESHOLD} (flagged):",
            "",
            "| held-out corpus | clips | most given answers | wrong answers flagged | "
            "accuracy flagged / unflagged |",
            "|---|---|---|---|---|",
        ]
        for c, a in s["answers"].items():
            share = ", ".join(
                f"{k} {100 * v:.0f} %" for k, v in list(a["answer_share"].items())[:3]
            )
            wf = "–" if a["wrong_flagged"] is None else f"{100 * a['wrong_flagged']:.0f} %"
            acc = a["accuracy"]
            fmt = lambda x: "–" if x is None else f"{100 * x:.0f} %"  # noqa: E731
            lines.append(
                f"| {c} | {a['n']} | {share} | {wf} | {fmt(acc['flagged'])} / "
                f"{fmt(acc['unflagged'])} |"
            )
    return "\n".join(lines)


def reading(summaries: list[dict]) -> str:
    """Facts read off the first run (the baseline), as bullets: no number typed by hand."""
    s = summaries[0]
    held = s["loco"]["held_out"]
    low = [h for h in held if h["ua"] < h["chance"] + 0.10]
    lines = [
        f"- Mean UA over the {len(held)} held-out corpora: {100 * s['loco']['mean_ua']:.1f} % "
        f"(mean chance {100 * s['loco']['mean_chance']:.1f} %).",
        "- Held-out corpora below chance + 10 points: "
        + (
            ", ".join(
                f"{h['corpus']} ({100 * h['ua']:.1f} % vs {100 * h['chance']:.1f} %)" for h in low
            )
            or "none"
        )
        + ".",
    ]
    for c, a in s["answers"].items():
        top, share = next(iter(a["answer_share"].items()))
        if share >= 0.4:
            lines.append(f"- On {c}, {100 * share:.0f} % of all answers are `{top}`.")
    flagged = [a["wrong_flagged"] for a in s["answers"].values() if a["wrong_flagged"] is not None]
    if flagged:
        lines.append(
            f"- Wrong answers flagged (top probability under {THRESHOLD}): "
            f"{100 * min(flagged):.0f}-{100 * max(flagged):.0f} % per held-out corpus."
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    if args.render_only:
        summaries = json.loads(STORE.read_text())
    else:
        if not args.runs:
            ap.error("name run folders, or --render-only")
        summaries = collect(args.runs)
        stored = json.loads(STORE.read_text()) if STORE.exists() else []
        names = {s["run"] for s in summaries}
        summaries = [s for s in stored if s["run"] not in names] + summaries
        results_db.atomic_write_json(STORE, summaries)
        upsert_rows(summaries)
    results_db.write_section(DOC, "loco", render(summaries))
    results_db.write_section(DOC, "reading", reading(summaries))
    print(render(summaries))


if __name__ == "__main__":
    main()
