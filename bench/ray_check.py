"""Does `emovox predict --engine ray` give the same labels as one process, on every clip?

    python bench/ray_check.py [ROOT] [--workers 2]
    python bench/ray_check.py --local local.jsonl --ray-out DIR --local-seconds S --ray-seconds S

The first form runs both (``emovox predict ROOT --json`` and ``emovox predict --engine ray ROOT
--out DIR``), timing each; the second compares the outputs of runs made before, with the wall
times their logs recorded. Writes ``bench/results/ray_check.json`` and the matching block of
``docs/scaling.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import results_db


def run_both(root: str, workers: int, tmp: Path) -> tuple[Path, Path, float, float]:
    exe = [sys.executable, "-m", "emovox.cli", "predict"]
    local = tmp / "local.jsonl"
    t = time.perf_counter()
    with open(local, "w") as fh:
        subprocess.run([*exe, root, "--json"], stdout=fh, check=False)
    local_s = time.perf_counter() - t
    out = tmp / "rayout"
    t = time.perf_counter()
    subprocess.run(
        [*exe, "--engine", "ray", root, "--out", str(out), "--workers", str(workers), "--json"],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return local, out, local_s, time.perf_counter() - t


def compare(local: Path, ray_out: Path) -> dict:
    import pyarrow.parquet as pq

    one = {}
    for line in local.read_text().splitlines():
        d = json.loads(line)
        one[os.path.abspath(d["path"])] = d
    table = pq.read_table(ray_out / "predictions").to_pandas()
    table = table[table["scope"] == "file"]
    errors = (
        pq.read_table(ray_out / "errors").to_pandas() if (ray_out / "errors").exists() else None
    )
    same = compared = missing = 0
    max_dp = 0.0
    for _, r in table.iterrows():
        d = one.get(os.path.abspath(r["path"]))
        if d is None or "error" in d:
            missing += 1
            continue
        compared += 1
        same += d["label"] == r["label"]
        for k, v in d["probabilities"].items():
            max_dp = max(max_dp, abs(v - float(r[f"p_{k}"])))
    summary = json.loads((ray_out / "_SUCCESS.json").read_text())
    return {
        "files": summary["files"],
        "compared": compared,
        "same_label": same,
        "missing_in_local": missing,
        "max_abs_probability_difference": max_dp,
        "local_errors": sorted(p for p, d in one.items() if "error" in d),
        "ray_errors": [] if errors is None else sorted(map(str, errors["path"])),
        "ray_worker_cpu_s": summary.get("worker_cpu_s"),
        "workers": summary.get("workers"),
    }


def render(res: dict) -> str:
    hours = res.get("audio_hours")
    cpu = res.get("ray_worker_cpu_s")
    return "\n".join(
        [
            f"From `python bench/ray_check.py` (`bench/results/ray_check.json`), "
            f"{res['date']}, on the 2-core machine"
            + (" while other jobs shared it" if res.get("shared_machine") else "")
            + ":",
            "",
            f"- one process (`emovox predict ROOT --json`): {res['local_seconds']:.0f} s; "
            f"Ray with {res['workers']} actors: {res['ray_seconds']:.0f} s, "
            f"{res['files']} files;",
            f"- labels equal on {res['same_label']} of {res['compared']} clips; largest "
            f"probability difference {res['max_abs_probability_difference']:.4f} (at the 4 "
            "decimals both outputs carry);",
            f"- unusable clips: {len(res['local_errors'])} in the one-process run, "
            f"{len(res['ray_errors'])} in Ray's errors table"
            + (
                " (the same files)"
                if {os.path.abspath(p) for p in res["ray_errors"]} == set(res["local_errors"])
                else ""
            )
            + ";",
            f"- Ray worker CPU time {cpu:.0f} s for {hours:.2f} hours of audio: "
            f"{cpu / hours:.0f} CPU-seconds per audio hour."
            if cpu and hours
            else "",
        ]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", nargs="?", default=str(results_db.ROOT.parent / "shared" / "corpora"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--local")
    ap.add_argument("--ray-out")
    ap.add_argument("--local-seconds", type=float)
    ap.add_argument("--ray-seconds", type=float)
    ap.add_argument("--shared-machine", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if args.local and args.ray_out:
            local, out = Path(args.local), Path(args.ray_out)
            local_s, ray_s = args.local_seconds, args.ray_seconds
        else:
            local, out, local_s, ray_s = run_both(args.root, args.workers, Path(d))
        res = compare(local, out)
    from emovox.data.corpora import scan

    clips = scan([Path(args.root)]).clips
    res |= {
        "local_seconds": local_s,
        "ray_seconds": ray_s,
        "audio_hours": sum(c.duration or 0 for c in clips) / 3600,
        "date": time.strftime("%Y-%m-%d"),
        "shared_machine": args.shared_machine,
    }
    from emovox.io import atomic_write_json

    atomic_write_json(results_db.ROOT / "bench" / "results" / "ray_check.json", res)
    results_db.write_section(results_db.ROOT / "docs" / "scaling.md", "ray-check", render(res))
    print(json.dumps({k: v for k, v in res.items() if k not in ("local_errors", "ray_errors")}))
    return 0 if res["same_label"] == res["compared"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
