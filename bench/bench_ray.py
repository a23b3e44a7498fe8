"""Throughput of the Ray engine (``emovox predict --engine ray``) with 1 and 2 workers.

    python bench/bench_ray.py [--root ../shared/corpora] [--n 600] [--workers 1,2]
                              [--model DIR] [--baseline-n 200]

On a fixed sample of corpus clips (seeded), for each worker count: wall time, files per second,
audio hours per hour, and core-seconds per audio hour (workers x wall / audio hours: what a
cluster bills). A single-process :class:`emovox.Recognizer` on the first
``--baseline-n``
clips of the sample gives the CPU time per audio hour without Ray. Model: the packaged default
model when ``src/emovox/assets/default_model/`` exists, else a random bundle (said in the output).
Writes ``bench/results/ray.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


def sample_clips(root: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` audio files drawn without replacement (seeded) from every corpus under ``root``."""
    from emovox.data.corpora import iter_audio_files

    files = [str(p) for p in iter_audio_files(root)]
    if not files:
        raise SystemExit(f"no audio files under {root}")
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return sorted(files[i] for i in pick)


def pick_model(arg: str | None, tmp: Path) -> tuple[str | None, str]:
    """The model to benchmark and how to describe it."""
    from emovox.inference.bundle import default_bundle_path
    from emovox.inference.random_bundle import make_random_bundle

    if arg:
        return arg, f"model folder {arg}"
    if (default_bundle_path() / "model.json").is_file():
        return None, "packaged default model (Whisper tiny.en encoder + linear head)"
    path = make_random_bundle(tmp / "random-model", n_state=384, n_head=6, n_layer=4)
    return str(path), "random bundle with tiny.en's shape (the default model is not installed)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path("../shared/corpora"))
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--model")
    ap.add_argument("--baseline-n", type=int, default=200)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ray.json")
    a = ap.parse_args()

    import pyarrow.parquet as pq
    import ray

    import emovox
    from emovox.io import atomic_write_json
    from emovox.scale.ray_engine import predict_files

    tmp = Path(tempfile.mkdtemp(prefix="emovox-bench-ray-"))
    try:
        model, model_desc = pick_model(a.model, tmp)
        clips = sample_clips(a.root, a.n)
        workers = [int(w) for w in a.workers.split(",")]
        print(f"{len(clips)} clips from {a.root}; {model_desc}", file=sys.stderr)
        load_before = os.getloadavg()

        # one process, no Ray: CPU time per audio hour of the same pipeline
        pred = emovox.load(model)
        pred.predict_many(clips[:2])  # warm-up: ONNX export / session
        base = clips[: a.baseline_n]
        c0, t0 = time.process_time(), time.perf_counter()
        got = pred.predict_many(base)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        base_audio = sum(p.duration or 0.0 for p in got if p.ok)
        baseline = {
            "files": len(base),
            "audio_hours": round(base_audio / 3600, 4),
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "files_per_s": round(len(base) / wall, 2),
            "cpu_s_per_audio_hour": round(cpu / (base_audio / 3600), 1),
            "realtime_factor": round(base_audio / cpu, 1),
        }
        print(f"single process: {baseline}", file=sys.stderr)

        t = time.perf_counter()
        ray.init(num_cpus=max(workers), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t
        runs = []
        for w in workers:
            out = tmp / f"out-{w}"
            t = time.perf_counter()
            s = predict_files(clips, out, model=model, workers=w)
            wall = time.perf_counter() - t
            rows = pq.read_table(out / "predictions", columns=["scope", "duration"]).to_pylist()
            audio = sum(r["duration"] for r in rows if r["scope"] == "file")
            t = time.perf_counter()
            again = predict_files(clips, out, model=model, workers=w)
            rerun = time.perf_counter() - t
            run = {
                "workers": w,
                "files": s["files"],
                "errors": s["errors"],
                "audio_hours": round(audio / 3600, 4),
                "wall_s": round(wall, 2),
                "files_per_s": round(s["files"] / wall, 2),
                "audio_hours_per_hour": round(audio / wall, 1),
                "core_s_per_audio_hour": round(w * wall / (audio / 3600), 1),
                "worker_cpu_s": s["worker_cpu_s"],
                "worker_cpu_s_per_audio_hour": round(s["worker_cpu_s"] / (audio / 3600), 1),
                "rerun_all_skipped_s": round(rerun, 2),
                "rerun_shards_skipped": again["shards_skipped"],
            }
            runs.append(run)
            print(f"ray: {run}", file=sys.stderr)
        ray.shutdown()
        result = {
            "sample": {"root": str(a.root), "n": len(clips), "seed": 0},
            "model": model_desc,
            "backend": pred.recognizer.backend,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                "note": "shared with a long training job; numbers are per allocated core",
            },
            "ray_version": ray.__version__,
            "ray_start_s": round(ray_start, 2),
            "single_process": baseline,
            "ray": runs,
        }
        atomic_write_json(a.out, result)
        print(f"wrote {a.out}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
