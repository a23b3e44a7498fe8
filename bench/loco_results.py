"""Leave-one-corpus-out results: rows in docs/results.json and the tables of
docs/generalization.md, from finished ``emovox evaluate --protocol loco`` runs.

Usage:
    python bench/loco_results.py runs/loco-baseline [runs/loco-balanced runs/... ...]
    python bench/loco_results.py --render-only   # only rewrite docs/generalization.md

Each run folder is what ``emovox evaluate --config configs/X.toml`` wrote (``metrics.json``,
``config.json``, ``predictions.csv``). Per held-out corpus: UA beside chance, the share of
answers given to each emotion (a model that learnt the studios more than emotion answers one
emotion for everything), and how often wrong answers would be flagged ``uncertain`` (top class
probability below 0.5, the bundled model's rule) — the figures the generalization work is judged
on; and, per run against ``loco-baseline``, what its one change does (mean UA, margin over
chance, corpora helped / hurt, flags). Runs with ``adapt`` set are ADAPTED (they use the
held-out corpus's unlabelled clips) and are kept apart from the plain ones. Every number in
docs/generalization.md comes from here.
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
                "adapt": metrics.get("adapt") or "none",
                "balance": metrics.get("balance") or config.get("balance") or "none",
                "params": config.get("params", {}),
                "views": list(config.get("train_views") or []),
                "layers": list(config.get("layers") or []),
                "labels": config.get("labels"),
                "corpora": metrics["corpora"],
                "loco": metrics["loco"],
                "answers": held_out_answers(run),
                "wall_s": metrics.get("wall_s"),
            }
        )
    return summaries


def model_name(s: dict) -> str:
    """The results-table model name of a run: features-model, plus ``+balance=corpus`` and
    ``+corpus-norm`` (an adapted run) where the run has them."""
    name = f"{s['features']}-{s['model']}" if s["features"] else s["model"]
    if s.get("balance", "none") != "none":
        name += f"+balance={s['balance']}"
    if s.get("views"):
        name += "+views=" + ",".join(s["views"])
    if s.get("layers"):
        name += "+layers=" + ",".join(map(str, s["layers"]))
    if s.get("adapt", "none") != "none":
        name += f"+{s['adapt']}-norm"
    return name


def upsert_rows(summaries: list[dict]) -> None:
    rows = []
    for s in summaries:
        base = {
            "section": SECTION,
            "model": model_name(s),
            "labels": s["labels"],
            "config": s["config"],
            "command": f"emovox evaluate --config {s['config']}",
            "hardware": results_db.hardware(),
        }
        adapt = s.get("adapt", "none")
        metrics = {"corpora": s["corpora"], "loco": s["loco"], "adapt": adapt}
        rows += results_db.loco_rows(metrics, base)
    results_db.upsert(rows)


def ordered(summaries: list[dict]) -> list[dict]:
    """Plain runs first (in the order given), then the ADAPTED ones."""
    return [s for s in summaries if not s["adapted"]] + [s for s in summaries if s["adapted"]]


def baseline_of(summaries: list[dict]) -> dict:
    """The run the others are compared with: ``loco-baseline`` if present, else the first."""
    return next((s for s in summaries if s["run"] == "loco-baseline"), summaries[0])


def held(s: dict, corpus: str) -> dict | None:
    return next((h for h in s["loco"]["held_out"] if h["corpus"] == corpus), None)


def title(s: dict) -> str:
    return f"{s['run']} (ADAPTED)" if s["adapted"] else s["run"]


def render(summaries: list[dict]) -> str:
    summaries = ordered(summaries)
    base = baseline_of(summaries)
    lines = []
    corpora = sorted({h["corpus"] for s in summaries for h in s["loco"]["held_out"]})
    head = f"| held-out corpus | chance ({base['run']}) | "
    lines += [
        head + " | ".join(title(s) for s in summaries) + " |",
        "|---|---|" + "---|" * len(summaries),
    ]
    for c in corpora:
        ref = held(base, c)
        chance = ref["chance"] if ref else None
        cells = []
        for s in summaries:
            h = held(s, c)
            cell = "–" if h is None else f"{100 * h['ua']:.1f}"
            if h is not None and chance is not None and abs(h["chance"] - chance) > 1e-9:
                cell += f" (chance {100 * h['chance']:.1f})"
            cells.append(cell)
        ch = "–" if chance is None else f"{100 * chance:.1f}"
        lines.append(f"| {c} | {ch} | " + " | ".join(cells) + " |")
    lines.append(
        f"| **mean** | {100 * base['loco']['mean_chance']:.1f} | "
        + " | ".join(f"**{100 * s['loco']['mean_ua']:.1f}**" for s in summaries)
        + " |"
    )
    lines += [
        "",
        "UA % per held-out corpus (scored on its own emotions that the training corpora have), "
        "beside chance (1 / scored classes). A cell with its own chance is scored on other "
        "classes than the baseline's (with `calm` as a label, RAVDESS and Indian EmoSpeech gain "
        "their calm clips): compare it with that chance, not with the baseline's cell.",
    ]
    if any(s["adapted"] for s in summaries):
        lines += [
            "",
            "**ADAPTED** columns are not plain figures: every corpus's embeddings, the held-out "
            "corpus's too, are standardised over that corpus's own clips before the head sees "
            "them. No labels are used, but the held-out corpus's unlabelled clips are "
            "(transductive): in use this needs many recordings from the same source first.",
        ]
    for s in summaries:
        lines += [
            "",
            f"**{title(s)}** (`{s['config']}`): what it answers on each held-out corpus, and "
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


def changes_of(s: dict, base: dict) -> str:
    """What a run's settings change against the baseline's, in words."""
    out = []
    if s.get("labels") != base.get("labels"):
        out.append(f"labels {s.get('labels')}")
    if s.get("balance", "none") != base.get("balance", "none"):
        out.append(f"balance = {s.get('balance')}")
    if s.get("adapt", "none") != base.get("adapt", "none"):
        out.append(f"adapt = {s.get('adapt')} (ADAPTED)")
    if s.get("layers", []) != base.get("layers", []):
        out.append("pooled layers " + ", ".join(map(str, s.get("layers") or [])))
    if s.get("views", []) != base.get("views", []):
        out.append("training views " + ", ".join(s.get("views") or ["none"]))
    params = s.get("params", {})
    diff = {k: v for k, v in params.items() if base.get("params", {}).get(k) != v}
    out += [f"{k} = {v}" for k, v in diff.items()]
    if s.get("features") != base.get("features") or s.get("model") != base.get("model"):
        out.append(f"{s.get('features')} {s.get('model')}")
    return ", ".join(out) or "(the baseline)"


def flagged_share(s: dict) -> tuple[float, float, float] | None:
    """Wrong answers flagged: mean over held-out corpora, and the lowest and highest."""
    shares = [a["wrong_flagged"] for a in s["answers"].values() if a["wrong_flagged"] is not None]
    return (float(np.mean(shares)), min(shares), max(shares)) if shares else None


def effects(summaries: list[dict]) -> str:
    """One row per run against the baseline: mean UA and its change, the change of the mean
    margin over chance, the held-out corpora it helps or hurts (by margin over chance, so a
    corpus scored on other classes compares fairly), those below chance + 10 points, and how
    many wrong answers are flagged."""
    summaries = ordered(summaries)
    base = baseline_of(summaries)
    lines = [
        "| run | change against the baseline | mean UA | Δ mean UA | Δ mean (UA − chance) | "
        "corpora better / worse (±1 pt) | below chance + 10 | wrong answers flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def margin(s: dict) -> float:
        return float(np.mean([h["ua"] - h["chance"] for h in s["loco"]["held_out"]]))

    for s in summaries:
        better, worse = [], []
        for h in s["loco"]["held_out"]:
            ref = held(base, h["corpus"])
            if ref is None or s is base:
                continue
            d = (h["ua"] - h["chance"]) - (ref["ua"] - ref["chance"])
            if d > 0.01:
                better.append(h["corpus"])
            elif d < -0.01:
                worse.append(h["corpus"])
        low = [h["corpus"] for h in s["loco"]["held_out"] if h["ua"] < h["chance"] + 0.10]
        fl = flagged_share(s)
        d_ua = 100 * (s["loco"]["mean_ua"] - base["loco"]["mean_ua"])
        d_margin = 100 * (margin(s) - margin(base))
        lines.append(
            f"| {title(s)} | {changes_of(s, base)} | {100 * s['loco']['mean_ua']:.1f} | "
            + ("–" if s is base else f"{d_ua:+.1f}")
            + " | "
            + ("–" if s is base else f"{d_margin:+.1f}")
            + " | "
            + ("–" if s is base else f"{len(better)} / {len(worse)}")
            + f" | {', '.join(low) or 'none'} | "
            + ("–" if fl is None else f"{100 * fl[0]:.0f} % ({100 * fl[1]:.0f}-{100 * fl[2]:.0f})")
            + " |"
        )
    lines += [
        "",
        "Each row is one run of `emovox evaluate --config configs/<run>.toml`, the baseline plus "
        "the change named. Better / worse counts held-out corpora whose UA − chance moved by more "
        "than one point. Wrong answers flagged: the share of wrong answers whose top probability "
        f"is under {THRESHOLD}, mean over held-out corpora (lowest-highest). ADAPTED rows use "
        "the held-out corpus's unlabelled clips and are not comparable with plain rows as a "
        "recipe.",
    ]
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


#: runs that differ in the head's strength C only: the choice among them is checked below
C_RUNS = ("loco-c0.001", "loco-baseline", "loco-c0.1")


def choice_check(summaries: list[dict], runs: tuple[str, ...] = C_RUNS) -> str:
    """For each held-out corpus, the run (of ``runs``) with the best mean UA over the OTHER
    held-out corpora, and that run's UA on this one: a leave-one-out check that choosing among
    the runs by their mean is not picking by the corpus being reported (its own score takes no
    part in its choice; its clips did train the other folds' heads)."""
    have = {s["run"]: s for s in summaries if s["run"] in runs}
    if len(have) < 2:
        return "(fewer than two of the runs compared are stored)"
    ua = {r: {h["corpus"]: h["ua"] for h in s["loco"]["held_out"]} for r, s in have.items()}
    corpora = list(next(iter(ua.values())))
    lines = [
        f"`python bench/loco_results.py` (choice among {', '.join(have)}): for each held-out "
        "corpus, the run with the best mean UA over the other six held-out corpora, and its UA "
        "on this one.",
        "",
        "| held-out corpus | chosen | mean UA of the others: " + " / ".join(have) + " | UA |",
        "|---|---|---|---|",
    ]
    chosen_ua = []
    for c in corpora:
        means = {r: float(np.mean([u[o] for o in corpora if o != c])) for r, u in ua.items()}
        best = max(means, key=lambda r: means[r])
        chosen_ua.append(ua[best][c])
        lines.append(
            f"| {c} | {best} | {' / '.join(f'{100 * m:.1f}' for m in means.values())} "
            f"| {100 * ua[best][c]:.1f} |"
        )
    lines += ["", f"Mean UA of the runs so chosen: **{100 * np.mean(chosen_ua):.1f}**."]
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
    results_db.write_section(DOC, "reading", reading([baseline_of(summaries)]))
    results_db.write_section(DOC, "changes", effects(summaries))
    results_db.write_section(DOC, "choice", choice_check(summaries))
    print(render(summaries))
    print()
    print(effects(summaries))


if __name__ == "__main__":
    main()
