"""Frozen Whisper encoder + heads, per corpus, merged and cross-corpus → docs/results.*.

Usage: python bench/whisper_results.py [--encoder tiny.en] [--methods logreg,logreg+speed,...]
                                        [--setups ravdess,crema_d,four,cross]

Methods (each a head over the same frozen encoder, all speaker-independent):
  logreg         mean+std of every layer → logistic regression (the baseline)
  logreg+speed   the same, trained also on speed-perturbed copies (0.9x, 1.1x) of the
                 TRAINING clips (`--train-view`); test clips are never augmented
  attentive      learned layer weights + attentive statistics pooling over frames
  attentive+speed  the attentive head with the same training views
  finetune       the encoder's top block fine-tuned (lower blocks frozen, their output cached)
                 + mean/std pooling + a linear classifier (`--model finetune`, FINETUNE below)
  finetune-3ep   the same for 3 epochs (the cross-corpus training sets are 8-10 times larger)
  logreg+speaker-norm  features standardised per speaker before the head (`--adapt speaker`):
                 no labels, but UNLABELED CLIPS OF EACH TEST SPEAKER are used (transductive)
  logreg+corpus-norm   the same per corpus (`--adapt corpus`): needs a batch of unlabeled
                 clips from the target collection
  logreg+cnn     late fusion (`emovox fuse`, equal weights) of the logreg run with the log-mel
                 CNN run on the same folds (CNN_RUNS: `emovox train` runs of
                 configs/paper-model2-12ep.toml (the first Model 2 recipe), cnn-crema_d.toml,
                 cnn-ravdess.toml)
  logreg+tiny.en with --encoder base: late fusion of base's and tiny.en's logreg runs
  logreg-C0.001  the logistic head with ten times stronger regularisation (C = 0.001)
  logreg-C0.001+speed  the same with the speed views

--encoder tiny.en+base puts both encoders' pooled layers side by side (one feature vector).

Embeddings come from the cache (the first run encodes all 12,162 clips, about 8 minutes on
one core per view). The ``random`` rows are the LEAKY reference.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import results_db

from emovox.data.labels import label_set_name
from emovox.evaluation.experiment import ExperimentConfig, evaluate, load_dataset
from emovox.evaluation.fusion import fuse_runs

SPEED = ["speed:0.9", "speed:1.1"]
STRONG = {"C": 0.001}  # ten times the default regularisation of the logistic head
# top block of the encoder trained, batch-normalised pooled statistics, 6 epochs (settings
# picked on held-out TRAINING speakers of fold 1; epochs cut from 12 to fit a shared CPU)
FINETUNE = {"blocks": 1, "norm": True, "epochs": 6}
METHODS = {  # name: (model, training views, adaptation, model settings)
    "logreg": ("logreg", [], "none", {}),
    "logreg-C0.001": ("logreg", [], "none", STRONG),
    "logreg+speed": ("logreg", SPEED, "none", {}),
    "logreg-C0.001+speed": ("logreg", SPEED, "none", STRONG),
    "attentive": ("attentive", [], "none", {}),
    "attentive+speed": ("attentive", SPEED, "none", {}),
    "finetune": ("finetune", [], "none", FINETUNE),
    "finetune-3ep": ("finetune", [], "none", FINETUNE | {"epochs": 3}),  # larger training sets
    "logreg+speaker-norm": ("logreg", [], "speaker", {}),
    "logreg+corpus-norm": ("logreg", [], "corpus", {}),
}
CNN_RUNS = {  # setup: the `emovox train` run of the log-mel CNN on the same folds
    "four": "runs/paper-model2-12ep-speaker-kfold",  # configs/paper-model2-12ep.toml
    "crema_d": "runs/cnn-crema_d-speaker-kfold",  # configs/cnn-crema_d.toml
    "ravdess": "runs/cnn-ravdess-speaker-kfold",  # configs/cnn-ravdess.toml
}
for _t in [
    "ravdess",
    "tess",
    "savee",
    "crema_d",
]:  # emovox train --config configs/paper-model2-12ep.toml
    # --protocol cross-corpus --train-corpora <the other three> --test-corpora _t
    # --name paper-model2-cross-_t
    CNN_RUNS[f"cross-{_t}"] = f"runs/paper-model2-cross-{_t}-cross-corpus"
FUSIONS = {  # name: the runs it fuses, given (runs folder, encoder, setup)
    "logreg+cnn": lambda out, enc, setup: [
        out / f"whisper-{enc}-logreg-{setup}",
        Path(CNN_RUNS[setup]) if setup in CNN_RUNS else None,
    ],
    # two encoders' logistic heads (e.g. --encoder base: base + tiny.en)
    "logreg+tiny.en": lambda out, enc, setup: [
        out / f"whisper-{enc}-logreg-{setup}",
        out / f"whisper-tiny.en-logreg-{setup}" if enc != "tiny.en" else None,
    ],
}
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


def _row(name: str, m: dict, data_labels, protocol: str, test, wall: float, command: str) -> dict:
    return {
        "section": "Frozen Whisper encoder with a head (per corpus, merged, cross-corpus)",
        "model": name,
        "corpora": m["corpora"],
        "labels": label_set_name(data_labels),
        "protocol": protocol,
        "leaky": m["leaky"],
        "test": test,
        "wa": m["wa"],
        "ua": m["ua"],
        "macro_f1": m["macro_f1"],
        "per_class": m["per_class"],
        "folds": m["folds"],
        "fold_ua": m.get("fold_ua"),
        "n": m["n"],
        "wall_s": round(wall, 2),
        "hardware": results_db.hardware(),
        "config": "bench/whisper_results.py",
        "command": command,
        "train_views": m.get("train_views", []),
        "adapt": m.get("adapt", "none"),
        "torch_threads": _torch_threads(),
    }


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", default="tiny.en")
    ap.add_argument("--methods", default="logreg,logreg+speed,attentive,logreg+cnn")
    ap.add_argument("--setups", default=",".join(SETUPS))
    ap.add_argument("--out", default="runs/whisper")
    ap.add_argument(
        "--render-only", action="store_true", help="only rewrite docs/whisper.md's table"
    )
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    features = f"whisper:{args.encoder}"
    methods = [] if args.render_only else args.methods.split(",")
    for method in methods:
        if method in FUSIONS:
            continue  # after the runs they fuse
        model, views, adapt, params = METHODS[method]
        name = f"whisper-{args.encoder}-{method}"
        for setup in args.setups.split(","):
            corpora, labels, protocol, k, extra = SETUPS[setup]
            cfg = ExperimentConfig(
                model=model,
                corpora=corpora,
                labels=labels,
                protocol=protocol,
                k=k,
                features=features,
                train_views=views,
                adapt=adapt,
                params=dict(params),
                out_dir=args.out,
                name=f"{name}-{setup}",
                **extra,
            )
            data = load_dataset(cfg, progress=False)
            t0 = time.perf_counter()
            m = evaluate(data, cfg).metrics
            command = (
                f"emovox evaluate --model {model} --features {features} "
                + " ".join(f"--corpus {c}" for c in corpora)
                + f" --labels {labels} --protocol {protocol} --k {k}"
                + "".join(f" --train-view {v}" for v in views)
                + (f" --adapt {adapt}" if adapt != "none" else "")
                + "".join(f" --param {key}={val}" for key, val in params.items())
                + "".join(f" --train-corpora {c}" for c in extra.get("train_corpora", []))
                + "".join(f" --test-corpora {c}" for c in extra.get("test_corpora", []))
            )
            row = _row(
                name,
                m,
                data.labels,
                protocol,
                extra.get("test_corpora"),
                time.perf_counter() - t0,
                command,
            )
            results_db.upsert([row])
            _say(method, setup, m, row["wall_s"])
    for method in methods:
        if method not in FUSIONS:
            continue
        for setup in args.setups.split(","):
            runs = FUSIONS[method](Path(args.out), args.encoder, setup)
            missing = [str(r) for r in runs if r is None or not (r / "metrics.json").is_file()]
            if missing:
                print(f"{method} {setup}: skipped, needs {', '.join(missing)}", flush=True)
                continue
            corpora, labels, protocol, k, extra = SETUPS[setup]
            t0 = time.perf_counter()
            name = f"whisper-{args.encoder}-{method}"
            m = fuse_runs(runs, out_dir=args.out, name=f"{name}-{setup}").metrics
            row = _row(
                name,
                m,
                tuple(m["labels"]),
                protocol,
                extra.get("test_corpora"),
                time.perf_counter() - t0,
                "emovox fuse " + " ".join(str(r) for r in runs),
            )
            results_db.upsert([row])
            _say(method, setup, m, row["wall_s"])
    results_db.write_section(
        results_db.ROOT / "docs" / "whisper.md",
        "whisper-results",
        whisper_table(),
    )


def _say(method: str, setup: str, m: dict, wall: float) -> None:
    tag = "LEAKY" if m["leaky"] else "speaker-independent"
    if m.get("adapt") not in (None, "none"):
        tag += f", ADAPTED/{m['adapt']}"
    print(
        f"{method:16s} {setup:16s} {tag:20s} UA {m['ua']:.3f} WA {m['wa']:.3f} ({wall:.0f} s)",
        flush=True,
    )


TARGETS = {"ravdess": 0.78, "crema_d": 0.74, "four": 0.74}  # issue 4's done-when


ENCODERS = ("tiny.en", "base", "tiny.en+base")  # table columns: each method with each encoder


def whisper_table(encoders: tuple[str, ...] = ENCODERS) -> str:
    """Every method's rows in docs/results.json as one table (setups x encoder/methods)."""
    rows = results_db.load()
    names = [f"whisper-{e}-{m}" for e in encoders for m in [*METHODS, *FUSIONS]]
    present = [n for n in names if any(r["model"] == n for r in rows)]
    short = [n.removeprefix("whisper-") for n in present]
    lines = [
        "UA % of each frozen encoder (`tiny.en`, `base`, and both side by side: "
        "`tiny.en+base`) with each head, from "
        "`docs/results.json` (`python bench/whisper_results.py --encoder ...`); – = not run:",
        "",
        "| setup | labels | protocol | " + " | ".join(f"`{s}`" for s in short) + " | target |",
        "|---|---|---|" + "---|" * len(short) + "---|",
    ]
    for setup, (corpora, _labels, protocol, _k, extra) in SETUPS.items():
        found = [
            results_db.find(
                [r for r in rows if r["model"] == n],
                corpora=corpora,
                protocol=protocol,
                test=extra.get("test_corpora"),
            )
            for n in present
        ]
        first = next((r for r in found if r is not None), None)
        if first is None:
            continue
        target = TARGETS.get(setup)
        cells = ["–" if r is None else f"{100 * r['ua']:.1f}" for r in found]
        lines.append(
            f"| {setup} | {first['labels']} | {results_db.proto(first)} | "
            + " | ".join(cells)
            + f" | {'–' if target is None else f'{100 * target:.0f}'} |"
        )
    lines += [
        "",
        "`*-norm` columns are **ADAPTED** (`--adapt speaker|corpus`): features standardised with "
        "the statistics of each test speaker's (corpus's) own unlabeled clips; see "
        "[protocols.md](protocols.md#training-views-and-adaptation-opt-in-marked). "
        "`logreg+cnn` fuses the `logreg` run with the log-mel CNN's run on the same folds "
        "(`emovox fuse`, equal weights; the CNN of the first Model 2 recipe, "
        "configs/paper-model2-12ep.toml, and configs/cnn-{crema_d,ravdess}.toml). "
        "`-C0.001`: the logistic head with C = 0.001 "
        "instead of 0.01; `+speed`: speed-perturbed copies of the training clips. "
        "`finetune`: the encoder's top block trained (`--model finetune`, 6 epochs; `-3ep`: 3).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
