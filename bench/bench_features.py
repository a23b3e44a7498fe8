"""Time feature extraction over every audio file of the corpora: cold cache, then warm.

    python bench/bench_features.py [--limit N] [--n-jobs J] [--corpora DIR] [--out FILE]

Writes a JSON summary (default ``bench/results/features.json``) atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

AUDIO_EXTS = {".opus", ".ogg", ".wav", ".flac", ".aiff", ".aif", ".mp3", ".m4a", ".au", ".caf"}
HERE = Path(__file__).resolve().parent


def find_audio(root: Path) -> list[str]:
    """Every audio file under ``root`` (by extension), sorted."""
    return sorted(
        str(p) for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTS and p.is_file()
    )


def spread(paths: list[str], n: int) -> list[str]:
    """``n`` paths evenly spaced through the sorted list (so every corpus is represented)."""
    if n >= len(paths):
        return paths
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_corpora = os.environ.get("EMOVOX_CORPORA", str(HERE.parent.parent / "shared/corpora"))
    ap.add_argument("--corpora", type=Path, default=Path(default_corpora))
    ap.add_argument("--limit", type=int, default=None, help="only N clips, spread over the set")
    ap.add_argument("--n-jobs", type=int, default=-1)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "features.json")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    from emovox.features import FeatureConfig, extract

    paths = find_audio(args.corpora)
    if not paths:
        print(f"no audio files under {args.corpora}", file=sys.stderr)
        return 1
    if args.limit:
        paths = spread(paths, args.limit)
    config = FeatureConfig()
    cache = Path(tempfile.mkdtemp(prefix="emovox-bench-cache-"))
    try:
        t0 = time.perf_counter()
        cold = extract(paths, config, cache_dir=cache, n_jobs=args.n_jobs,
                       progress=not args.no_progress)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = extract(paths, config, cache_dir=cache, n_jobs=args.n_jobs,
                       progress=not args.no_progress)
        warm_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    import numpy as np

    from emovox.features.extract import _resolve_jobs

    audio_s = float(np.nansum(cold.durations))
    result = {
        "clips": len(paths),
        "clips_ok": int(cold.ok.sum()),
        "errors": len(cold.errors),
        "audio_seconds": round(audio_s, 1),
        "feature_dim": int(cold.X.shape[1]),
        "feature_key": config.key(),
        "cold_s": round(cold_s, 2),
        "warm_s": round(warm_s, 2),
        "cold_clips_per_s": round(len(paths) / cold_s, 1),
        "warm_clips_per_s": round(len(paths) / warm_s, 1),
        "cold_real_time_factor": round(cold_s / audio_s, 5) if audio_s else None,
        "cold_x_real_time": round(audio_s / cold_s, 1),
        "warm_cached": warm.n_cached,
        "warm_equals_cold": bool(np.array_equal(cold.X, warm.X)),
        "n_jobs": _resolve_jobs(args.n_jobs),
        "cpu_count": os.cpu_count(),
        "limit": args.limit,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for path, reason in cold.errors[:20]:
        print(f"error: {path}: {reason}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
