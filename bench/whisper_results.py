"""Frozen Whisper encoder + logistic head, per corpus, merged and cross-corpus → docs/results.*.

Usage: python bench/whisper_results.py [--encoder tiny.en] [--setups ravdess,crema_d,four,cross]

Embeddings come from the cache (``emovox evaluate --features whisper:tiny.en`` fills it; the
first run encodes all 12,162 clips, about 8 minutes on one core). Every row is
speaker-independent; the ``random`` rows are the LEAKY reference.
"""

from __future__ import annotations

import argparse
import os
import time

import results_db

from emovox.experiment import ExperimentConfig, evaluate, load_dataset
from emovox.labels import label_set_name

FOUR = ["ravdess", "tess", "savee", "crema_d"]
SETUPS = {  # name: (corpora, labels, protocol, k, extra)
    "ravdess": (["ravdess"], "auto", "speaker-kfold", 6, {}),
    "crema_d": (["crema_d"], "auto", "speaker-kfold", 5, {}),
    "four": (FOUR, "paper7", "speaker-kfold", 5, {}),
    "four-random": (FOUR, "paper7", "random", 5, {}),
}
for _t in FOUR:
    SETUPS[f"cross-{_t}"] = (
        FOUR,
        "paper7",
        "cross-corpus",
        5,
        {"train_corpora": [c for c in FOUR if c != _t], "test_corpora": [_t]},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", default="tiny.en")
    ap.add_argument("--model", default="logreg")
    ap.add_argument("--setups", default=",".join(SETUPS))
    ap.add_argument("--out", default="runs/whisper")
    ap.add_argument(
        "--render-only", action="store_true", help="only rewrite docs/whisper.md's table"
    )
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    features = f"whisper:{args.encoder}"
    name = f"whisper-{args.encoder}-{args.model}"
    for setup in [] if args.render_only else args.setups.split(","):
        corpora, labels, protocol, k, extra = SETUPS[setup]
        cfg = ExperimentConfig(
            model=args.model,
            corpora=corpora,
            labels=labels,
            protocol=protocol,
            k=k,
            features=features,
            out_dir=args.out,
            name=f"{name}-{setup}",
            **extra,
        )
        data = load_dataset(cfg, progress=False)
        t0 = time.perf_counter()
        m = evaluate(data, cfg).metrics
        test = extra.get("test_corpora")
        row = {
            "section": "Frozen Whisper encoder (mean+std of every layer) with a logistic head",
            "model": name,
            "corpora": m["corpora"],
            "labels": label_set_name(data.labels),
            "protocol": protocol,
            "leaky": m["leaky"],
            "test": test,
            "wa": m["wa"],
            "ua": m["ua"],
            "macro_f1": m["macro_f1"],
            "per_class": m["per_class"],
            "folds": m["folds"],
            "n": m["n"],
            "wall_s": round(time.perf_counter() - t0, 2),
            "hardware": results_db.hardware(),
            "config": "bench/whisper_results.py",
            "command": f"emovox evaluate --model {args.model} --features {features} "
            + " ".join(f"--corpus {c}" for c in corpora)
            + f" --labels {labels} --protocol {protocol} --k {k}"
            + "".join(f" --train-corpora {c}" for c in extra.get("train_corpora", []))
            + "".join(f" --test-corpora {c}" for c in extra.get("test_corpora", [])),
        }
        results_db.upsert([row])
        tag = "LEAKY" if m["leaky"] else "speaker-independent"
        print(f"{setup:16s} {tag:20s} UA {m['ua']:.3f} WA {m['wa']:.3f} ({row['wall_s']:.0f} s)")
    results_db.write_section(
        results_db.ROOT / "docs" / "whisper.md", "whisper-results", whisper_table(name)
    )


TARGETS = {"ravdess": 0.78, "crema_d": 0.74, "four": 0.74}  # issue 4's done-when


def whisper_table(model: str) -> str:
    """The rows of ``model`` in docs/results.json as the table in docs/whisper.md."""
    rows = [r for r in results_db.load() if r["model"] == model]
    lines = [
        f"`{model}`, from `docs/results.json` (`python bench/whisper_results.py`):",
        "",
        "| setup | labels | protocol | UA % | target % |",
        "|---|---|---|---|---|",
    ]
    for setup, (corpora, _labels, protocol, _k, extra) in SETUPS.items():
        r = results_db.find(
            rows, corpora=corpora, protocol=protocol, test=extra.get("test_corpora")
        )
        if r is None:
            continue
        target = TARGETS.get(setup)
        lines.append(
            f"| {setup} | {r['labels']} | {results_db._proto(r)} | {100 * r['ua']:.1f} | "
            f"{'–' if target is None else f'{100 * target:.0f}'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
