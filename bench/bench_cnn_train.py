"""How long the paper's Model 2 (the CNN) takes to train on all four corpora on this CPU.

    python bench/bench_cnn_train.py [--threads 2] [--config configs/paper-model2.toml]

Trains fold 1 of the speaker 5-fold split of RAVDESS + TESS + SAVEE + CREMA-D (paper7: about
7,600 training and 1,200 validation clips, the config's epochs and augmentation) from scratch, then
evaluates its test speakers, and writes ``bench/results/cnn_train.json``. Decoding the audio is
timed apart from training. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from emovox.io import atomic_write_json  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(HERE.parent / "configs" / "paper-model2.toml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "cnn_train.json"))
    ap.add_argument(
        "--keep",
        metavar="RUNS_DIR",
        help="train into RUNS_DIR and keep the run, so `emovox train --config ... --out RUNS_DIR "
        "--resume` re-uses this fold and trains the others",
    )
    args = ap.parse_args()
    import platform

    from emovox.evaluation.deep_experiment import load_config, train_and_evaluate

    cfg = load_config(args.config, {"folds": 1, "threads": args.threads, "device": "cpu"})
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="emovox-bench-"))
    t0 = time.perf_counter()
    try:
        m = train_and_evaluate(cfg, tmp, progress=False, log=print)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - t0
    fold = m["fold_details"][0]
    res = {
        "config": os.path.relpath(args.config, HERE.parent),
        "threads": args.threads,
        "corpora": m["corpora"],
        "train_clips": fold["n_train"],
        "val_clips": fold["n_val"],
        "test_clips": fold["n_test"],
        "epochs": fold["epochs_run"],
        "precision": cfg.train.precision,
        "fold_seconds": fold["seconds"],
        "fold_minutes": round(fold["seconds"] / 60, 1),
        "wall_seconds_including_decoding": round(wall, 1),
        "test_ua": round(m["ua"], 4),
        "protocol": f"{m['protocol']}, fold 1 of {m['folds_total']}",
        "leaky": m["leaky"],
        "hardware": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    atomic_write_json(args.out, res)
    print(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
