"""Live latency of ``emovox listen``: end of speech to label, on ONE CPU core.

    python bench/bench_streaming.py [--model DIR] [--backend auto] [--clips 40] [--block-ms 32]
                                    [--min-silence S]

A recording of real CREMA-D clips joined with 1 s pauses goes through the streaming path
``emovox listen`` uses (:func:`emovox.inference.timeline.analyze_chunks`, one segment at a time,
speech gate on) in microphone-sized chunks, as fast as possible (no sleeping), in one thread.
For each segment ended by a pause it measures:

- decision delay: audio after the end of speech (as the VAD found it) the segmenter had heard when
  it closed the segment (its hangover, ``min_silence`` in whole 32 ms frames, plus up to a chunk);
- compute delay: wall time from feeding the chunk that decided the segment to its label being
  ready (the VAD on that chunk, the speech gate and the model; split out as ``gate_ms`` and
  ``model_ms``);
- latency = decision + compute, the delay a live user sees after they stop speaking.

Reports median and 95th percentile of each; writes ``bench/results/streaming.json``.
:func:`measure_streaming` and :func:`crema_recording` can be imported (bench_predict.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from emovox.audio import decode  # noqa: E402
from emovox.audio.decode import SAMPLE_RATE  # noqa: E402
from emovox.audio.segment import LIVE_MIN_SILENCE, StreamingSegmenter, latency_summary  # noqa: E402
from emovox.audio.stream import iter_array  # noqa: E402
from emovox.audio.vad import FRAME  # noqa: E402
from emovox.inference.timeline import analyze_chunks  # noqa: E402
from emovox.io import atomic_write_json, corpora_root  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def crema_recording(
    n_clips: int = 40, pause: float = 1.0, seed: int = 0, root: str | Path | None = None
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``n_clips`` CREMA-D clips (a seeded random draw) decoded at 16 kHz and joined with
    ``pause`` seconds of silence before, between and after them; also each clip's name and
    place (seconds) in the recording."""
    folder = Path(root) if root else corpora_root() / "crema-d" / "AudioWAV"
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise FileNotFoundError(f"no CREMA-D clips in {folder}")
    rng = np.random.default_rng(seed)
    picked = [files[i] for i in rng.choice(len(files), min(n_clips, len(files)), replace=False)]
    gap = np.zeros(int(pause * SAMPLE_RATE), np.float32)
    parts, clips, at = [gap], [], len(gap)
    for p in picked:
        y = decode(str(p), SAMPLE_RATE)
        clips.append(
            {"clip": p.stem, "start": at / SAMPLE_RATE, "end": (at + len(y)) / SAMPLE_RATE}
        )
        parts += [y, gap]
        at += len(y) + len(gap)
    return np.concatenate(parts), clips


class _Timed:
    """Wraps the engine or the speech gate, timing each call of ``method`` (ms)."""

    def __init__(self, inner: Any, method: str) -> None:
        self._inner, self._method = inner, method
        self.ms: list[float] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.ms.append(1000 * (time.perf_counter() - t))

        return timed


def _stats(v: Sequence[float]) -> dict[str, float | None]:
    a = np.asarray(v, dtype=float)
    if not a.size:
        return {"median": None, "p95": None}
    return {"median": round(float(np.median(a)), 2), "p95": round(float(np.percentile(a, 95)), 2)}


def measure_streaming(
    model: Any, audio: np.ndarray, block: int = FRAME, warmup: bool = True
) -> dict[str, Any]:
    """Stream 16 kHz ``audio`` through ``model`` (what :func:`emovox.load` returns) as
    ``emovox listen`` does, in chunks of ``block`` samples with no waiting, in this thread.

    Returns the latency summary (:func:`emovox.audio.segment.latency_summary`: medians and
    95th percentiles in ms over the segments ended by a pause), the segmenter's ``hangover_ms``,
    per-call ``gate_ms`` / ``model_ms`` statistics, wall and CPU time, and each segment's delays.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    engine = _Timed(model.engine, "predict_proba")
    gate = None if model.gate is None else _Timed(model.gate, "measure")
    if warmup:  # session set-up and first-call costs are not latency
        w = audio[: 3 * SAMPLE_RATE]
        model.engine.predict_proba([w])
        if model.gate is not None:
            model.gate.measure(w)
        model.vad.reset()
        model.vad(w[: (len(w) // FRAME) * FRAME].reshape(-1, FRAME))
    hangover = StreamingSegmenter(model.vad, model.segmenter).hangover
    t0, c0 = time.perf_counter(), time.process_time()
    tl = analyze_chunks(
        iter_array(audio, block), engine, vad=model.vad, config=model.segmenter,
        batch_size=1, gate=gate, latency=True,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    seconds = len(audio) / SAMPLE_RATE
    keys = ("start", "end", "closed_by", "decision_ms", "compute_ms", "latency_ms")
    return {
        "audio_s": round(seconds, 2),
        "block_ms": round(1000 * block / SAMPLE_RATE, 1),
        "hangover_ms": round(1000 * hangover / SAMPLE_RATE, 1),
        "vad": tl.vad,
        "speech_gate": tl.speech_gate,
        "segments": len(tl.segments),
        "gated": len(tl.gated),
        "skipped": len(tl.skipped),
        **latency_summary(tl.segments),
        "gate_ms": _stats(gate.ms) if gate is not None else None,
        "model_ms": _stats(engine.ms),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "real_time_factor": round(seconds / max(wall, 1e-9), 1),
        "per_segment": [{k: s[k] for k in keys} for s in tl.segments],
    }


def main() -> int:
    import bench_predict  # its reference workload, so the figures scale alike

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="bundle folder (default: the packaged one)")
    ap.add_argument("--backend", default="auto", help="auto (the model's default), onnx, ...")
    ap.add_argument("--vad", default="auto", help="auto, silero or energy")
    ap.add_argument("--clips", type=int, default=40, help="CREMA-D clips in the recording")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between clips")
    ap.add_argument("--block-ms", type=float, default=32.0, help="chunk size, as a microphone")
    ap.add_argument(
        "--min-silence", type=float, default=LIVE_MIN_SILENCE,
        help="pause (s) that ends a segment (default: emovox listen's)",
    )  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=None, help="CREMA-D AudioWAV folder")
    ap.add_argument("--out", default=str(HERE / "results" / "streaming.json"))
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    import emovox

    audio, clips = crema_recording(args.clips, args.pause, args.seed, args.root)
    model = emovox.load(args.model, backend=args.backend, vad=args.vad)
    model.segmenter = model.segmenter.with_min_silence(args.min_silence)
    block = max(1, round(args.block_ms * SAMPLE_RATE / 1000))
    res = {
        "model": args.model or "packaged default",
        "backend": model.backend,
        "recording": f"{len(clips)} CREMA-D clips (seed {args.seed}) with {args.pause:g} s pauses",
        "hardware": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "reference_ms": round(bench_predict.reference_ms(), 2),
        "min_silence_s": model.segmenter.min_silence,
        **measure_streaming(model, audio, block),
    }
    brief = {k: v for k, v in res.items() if k != "per_segment"}
    print(json.dumps(brief, indent=1), flush=True)
    atomic_write_json(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
