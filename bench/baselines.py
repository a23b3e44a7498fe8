"""The paper's Table 2 baselines (KNN, LDA, SVM, RDA), honest beside LEAKY, into docs/results.*.

Usage: python bench/baselines.py [--setup ravdess|four] [--models knn,lda,svm,rda]
Runs on the corpora at $EMOVOX_CORPORA (default ../shared/corpora).
"""

from __future__ import annotations

import argparse
import os
import time

import results_db

from emovox.data.labels import label_set_name
from emovox.evaluation.experiment import ExperimentConfig, load_dataset, paper_and_honest

SETUPS = {  # name: (corpora, labels)
    "ravdess": (["ravdess"], "auto"),
    "four": (["ravdess", "tess", "savee", "crema_d"], "paper7"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--setup", choices=sorted(SETUPS), action="append")
    ap.add_argument("--models", default="knn,lda,svm,rda")
    ap.add_argument("--out", default="runs/baselines")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for setup in args.setup or ["ravdess", "four"]:
        corpora, labels = SETUPS[setup]
        cfg = ExperimentConfig(corpora=corpora, labels=labels, out_dir=f"{args.out}/{setup}")
        data = load_dataset(cfg)
        labels = label_set_name(data.labels)
        t0 = time.perf_counter()
        rows = paper_and_honest(data, cfg, models=args.models.split(","))
        print(f"{setup}: {len(rows)} runs in {time.perf_counter() - t0:.0f} s")
        results_db.upsert(
            [
                {
                    "section": "Classical baselines (Table 2), utterance statistics of MFCC, "
                    "log-mel, "
                    "LPC, PLP, prosodic and spectral-shape features",
                    "model": r["model"],
                    "corpora": r["corpora"],
                    "labels": labels,
                    "protocol": r["protocol"],
                    "leaky": r["leaky"],
                    "test": None,
                    "wa": r["wa"],
                    "ua": r["ua"],
                    "macro_f1": r["macro_f1"],
                    "per_class": r["per_class"],
                    "folds": r["folds"],
                    "fold_ua": r.get("fold_ua"),
                    "n": r["n"],
                    "wall_s": r["wall_s"],
                    "hardware": results_db.hardware(),
                    "config": "bench/baselines.py",
                    "command": f"emovox evaluate --model {r['model']} "
                    + " ".join(f"--corpus {c}" for c in corpora)
                    + f" --labels {labels} --protocol {r['protocol']}",
                }
                for r in rows
            ]
        )
        for r in rows:
            tag = "LEAKY" if r["leaky"] else "speaker-independent"
            print(
                f"  {r['model']:4s} {r['protocol']:14s} {tag:20s} UA {r['ua']:.3f} WA {r['wa']:.3f}"
            )


if __name__ == "__main__":
    main()
