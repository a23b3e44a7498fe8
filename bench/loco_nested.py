"""Nested leave-one-corpus-out: a recipe chosen for each held-out corpus WITHOUT looking at it.

Usage: python bench/loco_nested.py [--quick]

For each of the seven corpora X held out whole, every candidate recipe is scored by LOCO over
the *other six* (train on five, test on the sixth, six times), the candidate with the best mean
inner UA is chosen, and only then is it trained on the six and scored on X. So the figure for X
comes from a choice X took no part in. The grid is small and fixed in advance:

- encoder: frozen Whisper ``tiny.en`` (English) or ``base`` (multilingual); every layer's
  mean and std over time, as the bundled recipe (embeddings from the feature cache);
- corpus directions removed or not (:mod:`emovox.evaluation.nuisance`: the directions along
  which the training corpora's class-balanced means differ, fitted on training data only);
- head strength: a class-balanced linear least-squares head (ridge, one column per emotion,
  targets +1/-1) with ``alpha`` in 1e3, 1e4, 1e5 on standardised features.

A ridge head is used because one weighted Gram matrix per training set serves every candidate
alpha and projection (28 training sets: 7 outer and 21 inner), which keeps the whole nesting to
about half an hour of one core; the bundled recipe's logistic head is the ``loco-baseline``
row, measured by ``emovox evaluate``. Labels: the paper's seven; each held-out corpus is scored
on its own emotions that the training corpora have (as ``--protocol loco``).

Writes ``bench/results/loco_nested.json`` and the ``nested`` block of docs/generalization.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from emovox.evaluation.config import read_config  # noqa: E402
from emovox.evaluation.dataset import load_dataset  # noqa: E402
from emovox.evaluation.experiment_config import ExperimentConfig  # noqa: E402
from emovox.evaluation.nuisance import group_directions  # noqa: E402
from emovox.io import atomic_write_json, atomic_write_text  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: the seven corpora, as the LOCO baseline config names them
CORPORA = sorted(read_config(ROOT / "configs" / "loco-baseline.toml")["experiment"]["corpora"])
ENCODERS = ("tiny.en", "base")
ALPHAS = (1e3, 1e4, 1e5)
PROJECT = (False, True)
BEGIN, END = "<!-- nested:begin -->", "<!-- nested:end -->"


def load(encoder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], tuple[str, ...]]:
    """Cached pooled embeddings of the seven corpora (paper7): X, labels, corpora, clip ids."""
    cfg = ExperimentConfig(
        model="logreg",
        features=f"whisper:{encoder}",
        labels="paper7",
        protocol="loco",
        corpora=CORPORA,
    )
    d = load_dataset(cfg, progress=False)
    corp = np.array(d.column("corpus"), dtype=object)
    return d.X.astype(np.float32), d.y, corp, d.column("id"), d.labels


def ua(y_true: np.ndarray, y_pred: np.ndarray, known: list[str]) -> float:
    """Mean recall over the emotions of ``y_true`` among ``known`` (clips of others unscored)."""
    keep = np.isin(y_true, known)
    t, p = y_true[keep], y_pred[keep]
    return float(np.mean([(p[t == c] == c).mean() for c in known if (t == c).any()]))


def fit_heads(X, y, corp, labels, train):
    """Every (alpha, projection) ridge head on the ``train`` rows: a function that predicts."""
    Xt = X[train].astype(np.float64)
    yt, ct = y[train], corp[train]
    mu, sd = Xt.mean(0), Xt.std(0)
    sd[sd < 1e-8] = 1.0
    Z = (Xt - mu) / sd
    classes = [c for c in labels if c in set(yt)]
    counts = {c: (yt == c).sum() for c in classes}
    w = np.array([len(yt) / (len(classes) * counts[c]) for c in yt])
    m = (w[:, None] * Z).sum(0) / w.sum()
    Zc = Z - m
    T = np.where(yt[:, None] == np.array(classes)[None, :], 1.0, -1.0)
    G = Zc.T @ (w[:, None] * Zc)
    B = Zc.T @ (w[:, None] * T)
    V = group_directions(Z, ct, yt)
    VG = V @ G
    Gp = G - V.T @ VG - VG.T @ V + V.T @ (VG @ V.T) @ V
    Bp = B - V.T @ (V @ B)
    heads = {}
    eye = np.eye(G.shape[0])
    for project, alpha in itertools.product(PROJECT, ALPHAS):
        Gm, Bm = (Gp, Bp) if project else (G, B)
        W = np.linalg.solve(Gm + alpha * eye, Bm)
        if project:
            W = W - V.T @ (V @ W)  # the head sees only the projected space
        heads[project, alpha] = W

    def predict(rows: np.ndarray) -> dict:
        Zq = (X[rows].astype(np.float64) - mu) / sd - m
        return {k: np.array(classes)[np.argmax(Zq @ W, 1)] for k, W in heads.items()}

    return predict, classes


def run(quick: bool) -> dict:
    data = {e: load(e) for e in ENCODERS}
    ids = data[ENCODERS[0]][3]
    for e in ENCODERS[1:]:
        if data[e][3] != ids:
            raise SystemExit(f"the {e} embeddings cover other clips than tiny.en's")
    _, y, corp, _, labels = data[ENCODERS[0]]
    held = CORPORA[:3] if quick else CORPORA
    scores: dict[tuple, float] = {}  # (encoder, project, alpha, train-excluded, test) -> UA
    t0 = time.perf_counter()
    sets = [(x,) for x in held] + [tuple(s) for s in itertools.combinations(CORPORA, 2)]
    if quick:
        sets = [s for s in sets if all(c in held for c in s)]
    for enc in ENCODERS:
        X = data[enc][0]
        for out in sets:
            train = ~np.isin(corp, out)
            predict, known = fit_heads(X, y, corp, labels, train)
            for test in out:
                rows = np.flatnonzero(corp == test)
                for (project, alpha), pred in predict(rows).items():
                    scores[enc, project, alpha, out, test] = ua(y[rows], pred, known)
            print(f"{enc} without {'+'.join(out)}: {time.perf_counter() - t0:.0f} s", flush=True)
    cands = list(itertools.product(ENCODERS, PROJECT, ALPHAS))
    outer = {}
    for x in held:
        inner = {}
        for c in cands:
            vals = [scores[(*c, tuple(sorted((x, yy))), yy)] for yy in held if yy != x]
            inner[c] = float(np.mean(vals))
        best = max(cands, key=lambda c: inner[c])
        outer[x] = {
            "chosen": {"encoder": best[0], "project": best[1], "alpha": best[2]},
            "inner_mean_ua": round(inner[best], 4),
            "ua": round(scores[(*best, (x,), x)], 4),
            "all": {f"{c[0]}|{int(c[1])}|{c[2]:g}": round(scores[(*c, (x,), x)], 4) for c in cands},
        }
    table = {
        f"{c[0]}|{int(c[1])}|{c[2]:g}": round(
            float(np.mean([scores[(*c, (x,), x)] for x in held])), 4
        )
        for c in cands
    }
    return {
        "held_out": outer,
        "nested_mean_ua": round(float(np.mean([o["ua"] for o in outer.values()])), 4),
        "candidate_mean_ua": table,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "quick": quick,
    }


def baseline_mean() -> tuple[float, dict] | None:
    """The loco-baseline row's mean UA and per-corpus UA (docs/results.json), for comparison."""
    rows = json.loads((ROOT / "docs" / "results.json").read_text())
    rows = rows if isinstance(rows, list) else rows.get("rows", [])
    base = [
        r for r in rows if r.get("protocol") == "loco" and "loco-baseline" in str(r.get("config"))
    ]
    if not base:
        return None
    per = {r["test_corpora"][0]: r["ua"] for r in base if r.get("test_corpora")}
    return float(np.mean(list(per.values()))), per


def render(res: dict) -> str:
    name = lambda c: (  # noqa: E731
        f"{c['encoder']}, {'corpus directions removed, ' if c['project'] else ''}"
        f"alpha {c['alpha']:g}"
    )
    base = baseline_mean()
    lines = [
        "`python bench/loco_nested.py` (numbers in `bench/results/loco_nested.json`): for each "
        "held-out corpus the recipe is chosen by LOCO over the other six only, then trained on "
        "the six and scored on it. Grid: encoder tiny.en or base × corpus directions removed or "
        "not × ridge alpha 1e3 / 1e4 / 1e5 (12 candidates, fixed before the run).",
        "",
        "| held-out corpus | chosen on the other six | their mean UA | UA on the held-out corpus "
        "| loco-baseline |",
        "|---|---|---|---|---|",
    ]
    for x, o in res["held_out"].items():
        b = f"{100 * base[1][x]:.1f}" if base and x in base[1] else "–"
        lines.append(
            f"| {x} | {name(o['chosen'])} | {100 * o['inner_mean_ua']:.1f} | "
            f"{100 * o['ua']:.1f} | {b} |"
        )
    bm = f"{100 * base[0]:.1f}" if base else "–"
    lines += [
        f"| **mean** | | | **{100 * res['nested_mean_ua']:.1f}** | {bm} |",
        "",
        "Every candidate's plain LOCO mean over the seven (for reading only: picking the best of "
        "these would be choosing on the held-out corpora):",
        "",
        "| encoder | corpus directions removed | alpha | mean UA |",
        "|---|---|---|---|",
    ]
    for key, v in res["candidate_mean_ua"].items():
        enc, proj, alpha = key.split("|")
        lines.append(f"| {enc} | {'yes' if proj == '1' else 'no'} | {alpha} | {100 * v:.1f} |")
    lines += ["", f"Run time {res['seconds'] / 60:.0f} min on {res['machine']}."]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = ROOT / "docs" / "generalization.md"
    s = doc.read_text()
    if BEGIN not in s:
        raise SystemExit(f"{doc} has no {BEGIN} block")
    head, rest = s.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    atomic_write_text(doc, f"{head}{BEGIN}\n\n{text}\n\n{END}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="three corpora only (a smoke run)")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    out = HERE / "results" / "loco_nested.json"
    if args.render_only:
        res = json.loads(out.read_text())
    else:
        res = run(args.quick)
        if args.quick:
            print(json.dumps(res, indent=1)[:3000])
            return
        atomic_write_json(out, res)
    write_doc(render(res))


if __name__ == "__main__":
    main()
