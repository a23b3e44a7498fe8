"""End-to-end inference speed of a bundled model on ONE CPU core, per backend.

    python bench/bench_predict.py [--model DIR] [--repeats 30] [--hour-minutes 60]

Measures, in one run (so the numbers are comparable with each other):
- real-time factor (audio seconds per processing second) for 3 s clips, path in → prediction
  out (decode, preprocess, encoder, head), per backend (onnx = fp32, onnx-int8, torch, numpy),
  each in its own child process so its peak memory (RSS) is its own;
- clips per second for a batch of 32 clips;
- the encoder alone (log-mel in → pooled statistics out) on 3 s;
- many files through ``predict``: sequential vs the decode thread, 1 and 2 cores
  (``bench_batch.measure_batch``);
- live streaming (``emovox listen``'s path): delay from the end of speech to the label
  (``bench_streaming.measure_streaming``), per backend;
- a long recording (default 1 h, built from the bundled demo clips with pauses) through
  ``emovox predict`` in a child process: wall time, real-time factor and peak memory (RSS);
- a fixed numpy reference workload, so a reader can scale the figures to another machine:
  each time is also given as a multiple of it.

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
#: The backend name that stands for the packaged fast model (``emovox.load("fast")``).
FAST = "fast"
sys.path.insert(0, str(HERE))


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


def load_model(model: str | None, backend: str):
    """``backend`` ``"fast"`` is the packaged fast model (its default backend); any other
    names a backend of ``model``."""
    import emovox

    if backend == FAST:
        return emovox.load("fast")
    return emovox.load(model, backend=backend)


def time_backend(model: str | None, backend: str, files: list[str], repeats: int) -> dict:
    from emovox.encoders.mel import log_mel_spectrogram
    from emovox.features.fast_mel import fast_log_mel

    pred = load_model(model, backend)
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
    y, _ = sf.read(files[0], dtype="float32")
    if rec is not None and hasattr(rec, "pooled"):
        out |= model_only(rec.pooled, log_mel_spectrogram(y), repeats)
    if rec is not None and hasattr(rec, "logits"):  # the fast model: its network alone
        out |= model_only(rec.logits, fast_log_mel(y), repeats)
        out["backend"] = f"fast ({pred.backend})"
    return out


def model_only(run, mel: np.ndarray, repeats: int) -> dict:
    """The model's own step on one 3 s log-mel (median of ``repeats`` after a warm-up)."""
    run(mel)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(mel)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"encoder_ms_3s": round(med * 1e3, 3), "encoder_rtf": round(3.0 / med, 1)}


def backend_child(model: str | None, backend: str, files: list[str], repeats: int) -> dict:
    """:func:`time_backend` in a fresh process, with that process's peak memory (RSS)."""
    cmd = [sys.executable, __file__, "--child", backend, "--repeats", str(repeats), *files]
    if model:
        cmd += ["--model", model]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"backend": backend, "error": proc.stderr.strip().splitlines()[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main(backend: str, files: list[str], model: str | None, repeats: int) -> int:
    try:
        r = time_backend(model, backend, files, repeats)
    except ImportError as exc:
        r = {"backend": backend, "error": str(exc)}
    r["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(r), flush=True)
    return 0


def streaming(model: str | None, backend: str, speech: np.ndarray) -> dict:
    """The live path (``emovox listen``'s pause setting) over the demo speech joined with 1 s
    pauses, three times over: end of speech → label, median and 95th percentile."""
    import bench_streaming

    from emovox.audio.segment import LIVE_MIN_SILENCE

    pred = load_model(model, backend)
    pred.segmenter = pred.segmenter.with_min_silence(LIVE_MIN_SILENCE)
    pause = np.zeros(SR, dtype=np.float32)
    audio = np.concatenate([pause, *[np.concatenate([speech, pause])] * 3])
    r = bench_streaming.measure_streaming(pred, audio)
    name = f"fast ({pred.backend})" if backend == FAST else pred.backend
    return {"backend": name, "min_silence_s": LIVE_MIN_SILENCE, **r}


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
        "| backend | ms per 3 s clip | × reference | real-time factor | encoder only, ms "
        "| batch of 32, clips/s | peak memory (RSS), MB |",
        "|---|---|---|---|---|---|---|",
    ]
    ref = res["reference_ms"]
    for b in res["backends"]:
        if "error" in b:
            lines.append(f"| {b['backend']} | – | – | – | – | – | {b['error']} |")
            continue
        lines.append(
            f"| {b['backend']} | {b['median_ms_per_clip']:.1f} | "
            f"{b['median_ms_per_clip'] / ref:.2f} | {b['rtf']:.0f}x | "
            f"{b.get('encoder_ms_3s', float('nan')):.2f} | {b['batch32_clips_per_s']:.1f} | "
            f"{b.get('peak_rss_mb', float('nan')):.0f} |"
        )
    lines += [
        "",
        "`onnx-int8` (the default backend, `auto`) is the exported graph with int8 weights in "
        "its matrix products (`emovox.inference.quantize`); `onnx` the same graph in float32 "
        '(`--backend onnx`). `fast (onnx)` is the fast model (`emovox.load("fast")`, '
        "`--model fast`): a small CNN distilled from the default model, on its own cheaper "
        "log-mel, with the energy speech gate on clips (its live path segments with Silero, as "
        "the default's does); its 'encoder only' column is the network alone. "
        "× reference: the time per clip as a multiple of the reference workload, measured in "
        "the same run. Peak memory is each backend's own child process.",
    ]
    st = res.get("streaming") or []
    if st:
        lines += [
            "",
            "## Live: end of speech to label",
            "",
            "`emovox listen`'s path (32 ms chunks, a segment ends after a "
            f"{st[0]['min_silence_s']:g} s pause) over the demo speech with 1 s pauses, fed as "
            "fast as it goes. Decision: the pause the segmenter waits for; compute: speech "
            "gate, model and head after that.",
            "",
            "| backend | segments | end of speech → label, median / p95 ms | decision ms | "
            "compute, median / p95 ms |",
            "|---|---|---|---|---|",
        ]
        for r in st:
            lines.append(
                f"| {r['backend']} | {r['n']} | {r['latency_median_ms']:.0f} / "
                f"{r['latency_p95_ms']:.0f} | {r['decision_median_ms']:.0f} | "
                f"{r['compute_median_ms']:.0f} / {r['compute_p95_ms']:.0f} |"
            )
    bt = res.get("batch")
    if bt:
        lines += [
            "",
            "## Many files: the decode thread",
            "",
            f"`predict` over {bt['files']} files ({bt['audio_seconds']:.0f} s of audio), "
            "sequential against decoding in a prefetch thread, the process pinned to 1 and 2 "
            "cores (default backend, `onnx-int8`):",
            "",
            "| cores | mode | clips/s (median of runs) | real-time factor | same answers |",
            "|---|---|---|---|---|",
        ]
        bound = bt.get("bound_2_cores")
        for key in sorted({(r["cores"], r["mode"]) for r in bt["runs"]}):
            runs = [r for r in bt["runs"] if (r["cores"], r["mode"]) == key]
            cps = statistics.median(r["clips_per_s"] for r in runs)
            rtf = statistics.median(r["rtf"] for r in runs)
            same = "yes" if all(r["identical"] for r in runs) else "NO"
            lines.append(f"| {key[0]} | {key[1]} | {cps:.1f} | {rtf:.0f}x | {same} |")
        if bound:
            lines += [
                "",
                f"From the CPU time of each stage, a second core can make it at most {bound:.2f}x "
                "faster (the decode thread takes decoding and the speech gate; the encoder "
                "stays on the main thread). A machine whose scheduler gives this process only "
                "one core's worth whatever it asks shows no gain.",
            ]
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
    ap.add_argument("--backends", default="onnx-int8,onnx,torch,numpy,fast")
    ap.add_argument("--streaming", default="onnx-int8,onnx,fast", help="backends for the live path")
    ap.add_argument("--batch-files", type=int, default=96, help="files for the batch test")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE / "results" / "predict.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs" / "speed.md"))
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    if args.child:
        return child_main(args.child, args.files, args.model, args.repeats)
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
            r = backend_child(args.model, backend, files, args.repeats)
            res["backends"].append(r)
            print(json.dumps(r), flush=True)
        res["streaming"] = []
        for backend in filter(None, args.streaming.split(",")):
            r = streaming(args.model, backend, speech)
            res["streaming"].append(r)
            print(json.dumps({k: v for k, v in r.items() if not isinstance(v, list)}), flush=True)
        if args.batch_files:
            import bench_batch

            many = []
            for i in range(args.batch_files):
                p = tmp / f"many{i}.wav"
                sf.write(p, clip_3s(speech, 1000 + i), SR)
                many.append(str(p))
            b = bench_batch.measure_batch(args.model, many, repeats=2)
            res["batch"] = {"files": len(many), "audio_seconds": 3.0 * len(many), **b}
            print(json.dumps(b.get("speedup_pipelined")), flush=True)
        if args.hour_minutes > 0:
            res["long_recording"] = long_recording(args.model, speech, args.hour_minutes, tmp)
            print(json.dumps(res["long_recording"]), flush=True)
    atomic_write_json(args.out, res)
    atomic_write_text(args.doc, render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
