"""End-to-end inference speed of a bundled model on ONE CPU core, per backend.

    python bench/bench_predict.py [--model DIR] [--repeats 30] [--hour-minutes 60]

Measures, in one run (so the numbers are comparable with each other):
- real-time factor (audio seconds per processing second) for 3 s clips, path in → prediction
  out (decode, preprocess, encoder, head), per backend (onnx, torch, numpy);
- clips per second for a batch of 32 clips;
- the encoder alone (log-mel in → pooled statistics out) on 3 s;
- a long recording (default 1 h, built from the bundled demo clips with pauses) through
  ``emovox predict`` in a child process: wall time, real-time factor and peak memory (RSS);
- a fixed numpy reference workload, so a reader can scale the figures to another machine.

Writes ``bench/results/predict.json`` and ``docs/speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from emovox.io import atomic_write_json, atomic_write_text  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SR = 16_000


def reference_ms(repeats: int = 20) -> float:
    """A fixed single-core workload: 20 products of 384x1536 float32 matrices (median ms)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((150, 384), dtype=np.float32)
    b = rng.standard_normal((384, 1536), dtype=np.float32)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(20):
            a @ b
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def demo_speech() -> np.ndarray:
    """The bundled demo clips joined (real speech, 16 kHz mono)."""
    from importlib import resources

    from emovox.audio import decode

    folder = Path(str(resources.files("emovox") / "assets" / "demo"))
    meta = json.loads((folder / "clips.json").read_text())
    return np.concatenate([decode(str(folder / c["file"]), SR) for c in meta["clips"]])


def clip_3s(speech: np.ndarray, i: int) -> np.ndarray:
    start = (i * 7919) % max(1, len(speech) - 3 * SR)
    return speech[start : start + 3 * SR]


def time_backend(model: str | None, backend: str, files: list[str], repeats: int) -> dict:
    import emovox
    from emovox.encoders.mel import log_mel_spectrogram

    pred = emovox.load(model, backend=backend)
    rec = pred.recognizer if hasattr(pred, "recognizer") else None
    pred.predict(files[0])  # warm-up (ONNX export / session creation happen here)
    per = []
    for i in range(repeats):
        t = time.perf_counter()
        pred.predict(files[i % len(files)])
        per.append(time.perf_counter() - t)
    med = statistics.median(per)
    batch = files[:32]
    t = time.perf_counter()
    pred.predict(batch)
    batch_s = time.perf_counter() - t
    out = {
        "backend": backend,
        "clip_seconds": 3.0,
        "median_ms_per_clip": round(med * 1e3, 2),
        "rtf": round(3.0 / med, 1),
        "batch32_clips_per_s": round(len(batch) / batch_s, 1),
    }
    if rec is not None and hasattr(rec, "pooled"):
        y, _ = sf.read(files[0], dtype="float32")
        mel = log_mel_spectrogram(y)
        rec.pooled(mel)
        enc = []
        for _ in range(repeats):
            t = time.perf_counter()
            rec.pooled(mel)
            enc.append(time.perf_counter() - t)
        out["encoder_ms_3s"] = round(statistics.median(enc) * 1e3, 2)
        out["encoder_rtf"] = round(3.0 / statistics.median(enc), 1)
    return out


def long_recording(model: str | None, speech: np.ndarray, minutes: float, tmp: Path) -> dict:
    """A long FLAC of speech with pauses, through `emovox predict` in a child process."""
    path = tmp / "long.flac"
    pause = np.zeros(SR, dtype=np.float32)
    unit = np.concatenate([speech, pause])
    n = int(minutes * 60 * SR)
    with sf.SoundFile(path, "w", SR, 1, format="FLAC") as f:
        written = 0
        while written < n:
            piece = unit[: n - written]
            f.write(piece)
            written += len(piece)
    cmd = [sys.executable, "-m", "emovox.cli", "predict", str(path), "--json"]
    if model:
        cmd += ["--model", model]
    cmd += ["--timeline-dir", str(tmp / "timeline")]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = {
        "audio_minutes": minutes,
        "wall_s": round(wall, 1),
        "rtf": round(minutes * 60 / wall, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "returncode": proc.returncode,
    }
    if proc.returncode == 0:
        line = json.loads(proc.stdout.strip().splitlines()[-1])
        out["segments"] = len(line.get("segments") or [])
    else:
        out["stderr_tail"] = proc.stderr[-800:]
    return out


def render(res: dict) -> str:
    lines = [
        "# Inference speed",
        "",
        "Generated by `python bench/bench_predict.py` (do not edit by hand). One CPU core "
        "(`OMP_NUM_THREADS=1`, one intra-op thread), 3 s clips of real speech (the bundled demo "
        "clips), path in → label out: decoding, silence trimming, loudness normalisation, "
        "Whisper log-mel, encoder, head.",
        "",
        f"Model: {res['model']}. Machine: {res['hardware']}. Reference workload (20 products of "
        f"150x384 by 384x1536 float32 matrices): {res['reference_ms']:.1f} ms.",
        "",
        "| backend | ms per 3 s clip | real-time factor | encoder only, ms "
        "| batch of 32, clips/s |",
        "|---|---|---|---|---|",
    ]
    for b in res["backends"]:
        if "error" in b:
            lines.append(f"| {b['backend']} | – | – | – | {b['error']} |")
            continue
        lines.append(
            f"| {b['backend']} | {b['median_ms_per_clip']:.1f} | {b['rtf']:.0f}x | "
            f"{b.get('encoder_ms_3s', float('nan')):.1f} | {b['batch32_clips_per_s']:.1f} |"
        )
    lr = res.get("long_recording")
    if lr:
        lines += [
            "",
            f"Long recording: {lr['audio_minutes']:.0f} min of speech with pauses through "
            f"`emovox predict --json` (default backend): {lr['wall_s']:.0f} s wall, "
            f"{lr['rtf']:.0f}x real time, peak memory {lr['peak_rss_mb']:.0f} MB, "
            f"{lr.get('segments', '?')} segments.",
        ]
    lines += [
        "",
        "The real-time factor is audio duration divided by processing time (higher is faster). "
        "Numbers from a shared 2-core machine; the reference workload lets you scale them.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="bundle folder (default: the packaged one)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--hour-minutes", type=float, default=60.0)
    ap.add_argument("--backends", default="onnx,torch,numpy")
    ap.add_argument("--out", default=str(HERE / "results" / "predict.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs" / "speed.md"))
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    speech = demo_speech()
    res: dict = {
        "model": args.model or "packaged default",
        "hardware": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "reference_ms": round(reference_ms(), 2),
        "backends": [],
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = []
        for i in range(32):
            p = tmp / f"clip{i}.wav"
            sf.write(p, clip_3s(speech, i), SR)
            files.append(str(p))
        for backend in args.backends.split(","):
            try:
                r = time_backend(args.model, backend, files, args.repeats)
            except ImportError as exc:
                r = {"backend": backend, "error": str(exc)}
            res["backends"].append(r)
            print(json.dumps(r), flush=True)
        if args.hour_minutes > 0:
            res["long_recording"] = long_recording(args.model, speech, args.hour_minutes, tmp)
            print(json.dumps(res["long_recording"]), flush=True)
    atomic_write_json(args.out, res)
    atomic_write_text(args.doc, render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
