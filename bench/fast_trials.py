"""Choose the fast model's network on VALIDATION speakers, never on test folds.

    python bench/fast_trials.py --tag w16x5 --widths 16,32,64,128,256 --epochs 14 [--threads 1]

The split is the final fast model's (``emovox.inference.build.validation_mask``: 15 % of each
corpus's speakers held back); a student of the given network is distilled from the packaged
default model's head on the other speakers' clips and their ``condition:1`` views (as
``emovox build-fast-model`` does), then scored on the validation speakers' plain clips beside
the teacher and, with ``--packaged``, the packaged fast model (the same split and teacher,
so its validation score is comparable). Each trial adds one entry to
``bench/results/fast_trials.json`` (checkpoints in ``runs/fast-trials/TAG``, resumable); the
inference cost of each network (ONNX, one thread, 3 s) is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from emovox.io import atomic_write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "fast_trials.json"


def onnx_ms(net, n_mels: int, repeats: int = 300) -> float:
    """Median ms of one 3 s forward pass of ``net`` through onnxruntime on one thread."""
    import onnxruntime as ort

    from emovox.inference.fast import export_fast_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = export_fast_onnx(net, Path(tmp) / "net.onnx", n_mels)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal((1, 1, n_mels, 150)).astype(np.float32)
        for _ in range(30):
            sess.run(None, {name: x})
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            sess.run(None, {name: x})
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", required=True)
    ap.add_argument("--widths", default="16,32,64,128")
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--packaged", action="store_true", help="also score the packaged model")
    args = ap.parse_args()

    import torch

    from emovox.deep.distill import DistillConfig, predict_logits
    from emovox.evaluation.metrics import score
    from emovox.features.fast_mel import N_MELS
    from emovox.inference.build import logits, training_data, validation_mask
    from emovox.inference.build_fast import DEFAULT_VIEWS, distill_on, student_mels
    from emovox.inference.bundle import read_bundle

    torch.set_num_threads(args.threads)
    say = print
    tcfg, _, head = read_bundle(None)
    data = training_data(None, (), "paper7", "tiny.en", None, False, say, list(DEFAULT_VIEWS))
    mels, view_mels = student_mels(data, list(DEFAULT_VIEWS), N_MELS, False, say)
    labels = [lab for lab in tcfg.labels if lab in {c.emotion for c in data.clips}]
    speakers = np.array([c.speaker for c in data.clips], dtype=object)
    corp = np.array([c.corpus for c in data.clips], dtype=object)
    y = np.array([c.emotion for c in data.clips], dtype=object)
    is_val, _ = validation_mask(speakers, list(corp), 0.15, 0)
    usable = np.array([m is not None for m in mels])
    train = np.flatnonzero(~is_val & usable)
    val = np.flatnonzero(is_val & usable)
    paper = np.isin(corp[val], ["ravdess", "tess", "savee", "crema_d"])

    def ua(pred: np.ndarray) -> dict:
        return {
            "ua_all": round(score(list(y[val]), list(pred), labels)["ua"], 4),
            "ua_paper4": round(score(list(y[val][paper]), list(pred[paper]), labels)["ua"], 4),
        }

    def student_pred(net) -> np.ndarray:
        Z = predict_logits(net, [mels[i] for i in val])
        return np.array([labels[k] for k in Z.argmax(1)], dtype=object)

    widths = tuple(int(w) for w in args.widths.split(","))
    cfg = DistillConfig(epochs=args.epochs, widths=widths, threads=args.threads)
    t0 = time.perf_counter()
    run_dir = HERE.parent / "runs" / "fast-trials" / args.tag
    net = distill_on(data, mels, view_mels, train, head, labels, cfg, run_dir, say)
    entry = {
        "tag": args.tag,
        "widths": list(widths),
        "epochs": args.epochs,
        "train_clips": len(train),
        "validation_clips": len(val),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "student": ua(student_pred(net)),
        "network_ms_3s": round(onnx_ms(net, N_MELS), 3),
        "teacher": ua(np.array([labels[k] for k in logits(head, data.X[val]).argmax(1)], object)),
    }
    if args.packaged:
        from safetensors.torch import load_file

        from emovox.inference.fast import WEIGHTS_FILE, build_net, fast_bundle_path

        folder = fast_bundle_path()
        packaged = build_net(json.loads((folder / "model.json").read_text()))
        packaged.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        entry["packaged"] = ua(student_pred(packaged.eval()))
    res = json.loads(OUT.read_text()) if OUT.is_file() else {}
    res[args.tag] = entry
    atomic_write_json(OUT, res)
    print(json.dumps(entry))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
