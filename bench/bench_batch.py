"""Throughput of ``predict`` over many files: sequential vs pipelined, on 1 and 2 CPU cores.

    python bench/bench_batch.py [--model DIR] [--backend auto] [--crema 200] [--ravdess 40]

Measures, in one run (so the numbers are comparable with each other):
- per clip, the CPU time of each stage in one thread: decode + checks, speech gate,
  preprocess + log-mel, encoder (decode and gate are what the decode thread takes off the
  model's thread, so they bound what a second core can give: ``bound_2_cores``);
- ``Recognizer.predict_many`` over the files with ``workers=0`` (decode and model in turn, one
  thread) and ``workers=1`` (a thread decodes and gates the next files while the model runs),
  with the process pinned to 1 and to 2 cores: clips per second, real-time factor (audio
  seconds per wall second), CPU seconds (all threads; ``cores_busy`` = CPU / wall), and
  whether every answer equals the first sequential run's (labels, probabilities, errors,
  order);
- how well decoding runs in parallel threads (1 vs 2 decode threads on 2 cores: near 2x means
  libsndfile/PyAV release the GIL while they decode);
- batching the encoder: how many clips of a batch share their log-mel length (only those can be
  batched at all: the Whisper encoder has no attention mask, so padding changes the pooled
  statistics), and the speed and largest difference (float rounding: not bit-identical) of one
  call on 8 same-length clips against 8 calls on one, in torch and in ONNX (a graph exported
  here with a batch axis; the packaged graph has batch 1).

Writes ``bench/results/batch.json``. :func:`measure_batch` is importable (bench_predict.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from emovox.io import atomic_write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
CORPORA = Path(os.environ.get("EMOVOX_CORPORA", HERE.parent.parent / "shared" / "corpora"))
SR = 16_000


def corpus_files(n_crema: int = 200, n_ravdess: int = 40, seed: int = 0) -> list[str]:
    """``n_crema`` CREMA-D clips and ``n_ravdess`` RAVDESS clips, a fixed random draw, mixed."""
    rng = np.random.default_rng(seed)
    crema = sorted((CORPORA / "crema-d" / "AudioWAV").glob("*.*"))
    ravdess = sorted((CORPORA / "ravdess").rglob("03-01-*.*"))
    pick = [str(crema[i]) for i in rng.choice(len(crema), min(n_crema, len(crema)), False)]
    pick += [str(ravdess[i]) for i in rng.choice(len(ravdess), min(n_ravdess, len(ravdess)), False)]
    return [pick[i] for i in rng.permutation(len(pick))]


def _tids() -> list[int]:
    return (
        [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    )


@contextlib.contextmanager
def use_cores(n: int) -> Iterator[int]:
    """Pin every thread of this process (and the threads it starts) to ``n`` of its CPUs;
    yields how many it got. A no-op (all CPUs) where affinity cannot be set."""
    if not hasattr(os, "sched_setaffinity"):
        yield os.cpu_count() or 1
        return
    full = sorted(os.sched_getaffinity(0))
    chosen = set(full[: max(1, n)])
    for tid in _tids():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, chosen)
    try:
        yield len(chosen)
    finally:
        for tid in _tids():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, set(full))


def _answer(p: Any) -> tuple:
    return (p.path, p.label, tuple(sorted(p.probabilities.items())), p.error, p.no_speech)


def stage_times(rec: Any, files: list[str]) -> dict[str, float]:
    """Mean CPU ms per clip of each stage, run one after the other in this thread."""
    from emovox.audio.decode import AudioError
    from emovox.audio.preprocess import preprocess
    from emovox.encoders.mel import log_mel_spectrogram
    from emovox.inference.inputs import ShortClip, prepare

    eng, gate = rec.engine, rec.gate
    pre = getattr(eng, "preprocess_cfg", None)
    acc = dict.fromkeys(("decode", "gate", "preprocess_mel", "encoder"), 0.0)
    n = 0
    for f in files:
        t0 = time.thread_time()
        try:
            item = prepare(f, None, None, long_seconds=rec.long_seconds, preprocess=pre)
        except (AudioError, ValueError, OSError):
            continue
        if not isinstance(item, ShortClip) or pre is None:
            continue
        t1 = time.thread_time()
        if gate is not None:
            gate.measure(item.wav)
        t2 = time.thread_time()
        try:
            mel = log_mel_spectrogram(preprocess(item.wav, pre))
        except (AudioError, ValueError):
            continue
        t3 = time.thread_time()
        eng.pooled(mel)
        t4 = time.thread_time()
        for k, a, b in (("decode", t0, t1), ("gate", t1, t2), ("preprocess_mel", t2, t3),
                        ("encoder", t3, t4)):  # fmt: skip
            acc[k] += b - a
        n += 1
    return {f"{k}_ms": round(1e3 * v / max(n, 1), 2) for k, v in acc.items()} | {"clips": n}


def run_once(rec: Any, files: list[str], workers: int) -> tuple[dict[str, Any], list[tuple]]:
    """One ``predict_many`` pass: wall and CPU seconds, clips/s, real-time factor."""
    t, c = time.perf_counter(), time.process_time()
    preds = rec.predict_many(files, errors="return", workers=workers)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    audio = sum(p.duration or 0.0 for p in preds)
    row = {
        "workers": workers,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cores_busy": round(cpu / wall, 2),  # about 1.0: never two threads at work at once
        "clips_per_s": round(len(files) / wall, 1),
        "rtf": round(audio / wall, 1),
        "failed": sum(not p.ok for p in preds),
    }
    return row, [_answer(p) for p in preds]


def decode_thread_scaling(rec: Any, files: list[str]) -> dict[str, float]:
    """Seconds to decode and check every file with 1 and with 2 decode threads (the caller
    pins the cores): a ratio near 2 means decoding runs outside the GIL."""
    from emovox.inference.inputs import prepare
    from emovox.inference.pipeline import prefetch

    pre = getattr(rec.engine, "preprocess_cfg", None)

    def dec(f: str) -> Any:
        return prepare(f, None, None, long_seconds=rec.long_seconds, preprocess=pre)

    out: dict[str, float] = {}
    for w in (1, 2):
        t = time.perf_counter()
        for _ in prefetch(dec, files, workers=w, depth=32):
            pass
        out[f"decode_{w}_thread_s"] = round(time.perf_counter() - t, 2)
    out["speedup"] = round(out["decode_1_thread_s"] / out["decode_2_thread_s"], 2)
    return out


def measure_batch(
    model: Any,
    files: list[str],
    *,
    backend: str = "auto",
    cores: tuple[int, ...] = (1, 2),
    repeats: int = 1,
) -> dict[str, Any]:
    """Sequential vs pipelined ``predict_many`` over ``files`` with the process pinned to each
    of ``cores``; ``model`` is a bundle folder (None: the default model) or a loaded
    :class:`emovox.Recognizer`. Returns the rows, the speed-ups and the stage times."""
    import emovox

    rec = model if isinstance(model, emovox.Recognizer) else emovox.load(model, backend=backend)
    for f in files:  # the page cache warm for every run alike (cold reads favour prefetching)
        with contextlib.suppress(OSError):
            Path(f).read_bytes()
    rec.predict_many(files[:4], workers=0)  # warm-up: sessions, caches
    rec.predict_many(files[:4], workers=1)  # and the worker's own speech gate
    ref: list[tuple] | None = None
    rows: list[dict[str, Any]] = []
    for _ in range(repeats):  # interleaved, so drifting load hits every setting alike
        for n in cores:
            with use_cores(n) as got:
                for workers in (0, 1):
                    row, answers = run_once(rec, files, workers)
                    ref = answers if ref is None else ref
                    rows.append({"cores": got, "mode": "pipelined" if workers else "sequential",
                                 **row, "identical": answers == ref})  # fmt: skip
    speedup = {}
    for n in sorted({r["cores"] for r in rows}):
        med = {m: float(np.median([r["wall_s"] for r in rows if (r["cores"], r["mode"]) == (n, m)]))
               for m in ("sequential", "pipelined")}  # fmt: skip
        speedup[f"{n}_cores"] = round(med["sequential"] / med["pipelined"], 2)
    with use_cores(1):
        stages = stage_times(rec, files[:60])
    with use_cores(2):
        scaling = decode_thread_scaling(rec, files[:120])
    total = sum(v for k, v in stages.items() if k.endswith("_ms"))
    ahead = stages["decode_ms"] + stages["gate_ms"]  # what the decode thread takes off
    return {
        "backend": rec.backend,
        "model": rec.card.get("name"),
        "clips": len(files),
        "audio_s": round(sum(_clip_seconds(f) for f in files), 1),
        "runs": rows,
        "speedup_pipelined": speedup,
        "all_identical": all(r["identical"] for r in rows),
        "stages_cpu_ms_per_clip": stages,
        # the most a second core can give: the longer of the two threads' shares of a clip
        "bound_2_cores": round(total / max(total - ahead, ahead, 1e-9), 2),
        "decode_threads": scaling,
    }


def _clip_seconds(path: str) -> float:
    import soundfile as sf

    try:
        return float(sf.info(path).duration)
    except (RuntimeError, sf.LibsndfileError):
        return 0.0


def batching(model: Any, files: list[str], batch_size: int = 16, b: int = 8) -> dict[str, Any]:
    """Can batching the encoder help? How often clips of one predict batch share their log-mel
    length (the only exact batch), and one call on ``b`` same-length mels against ``b`` calls
    on one, in torch and ONNX (1 thread): ms per clip and the largest difference."""
    import torch

    from emovox.audio.decode import AudioError, decode
    from emovox.audio.preprocess import Preprocess, preprocess
    from emovox.encoders.mel import log_mel_spectrogram
    from emovox.inference.backends import pooled_encoder_module
    from emovox.inference.bundle import bundle_path, read_bundle

    torch.set_num_threads(1)
    folder = bundle_path(model)
    cfg, weights, _ = read_bundle(folder)
    pre = Preprocess(**cfg.preprocess)
    lengths = []
    for f in files:
        with contextlib.suppress(AudioError, ValueError, OSError):
            lengths.append(len(preprocess(decode(f), pre)) // 160)
    shared = 0
    for i in range(0, len(lengths), batch_size):
        chunk = lengths[i : i + batch_size]
        shared += sum(chunk.count(t) > 1 for t in chunk)
    out: dict[str, Any] = {
        "clips": len(lengths),
        "share_length_within_batch": round(shared / max(len(lengths), 1), 3),
        "distinct_lengths": len(set(lengths)),
    }
    T = 250  # 2.5 s: b real clips cut to one length
    mels = [log_mel_spectrogram(preprocess(decode(f), pre))[:, :T] for f in files[: 4 * b]]
    mels = [m for m in mels if m.shape[1] == T][:b]
    x = np.stack(mels).astype(np.float32)
    module = pooled_encoder_module(weights, cfg)

    def torch_run(arr: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(arr)).numpy()

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "batched.onnx"
        torch.onnx.export(module, (torch.from_numpy(x[:1]),), str(onnx_path), input_names=["mel"],
                          output_names=["pooled"], dynamic_axes={"mel": {0: "n", 2: "frames"}},
                          opset_version=17, dynamo=False)  # fmt: skip
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = 1, 1, 3
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])

        def onnx_run(arr: np.ndarray) -> np.ndarray:
            return sess.run(None, {"mel": arr})[0]

        for name, fn in (("torch", torch_run), ("onnx", onnx_run)):
            singles = np.concatenate([fn(x[i : i + 1]) for i in range(len(x))])
            batched = fn(x)
            t_single, t_batch = [], []
            for _ in range(5):
                t = time.perf_counter()
                for i in range(len(x)):
                    fn(x[i : i + 1])
                t_single.append(time.perf_counter() - t)
                t = time.perf_counter()
                fn(x)
                t_batch.append(time.perf_counter() - t)
            out[name] = {
                "batch": len(x),
                "frames": T,
                "single_ms_per_clip": round(1e3 * float(np.median(t_single)) / len(x), 2),
                "batched_ms_per_clip": round(1e3 * float(np.median(t_batch)) / len(x), 2),
                "max_abs_diff": float(np.abs(singles - batched).max()),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="bundle folder (default: the packaged model)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--crema", type=int, default=200)
    ap.add_argument("--ravdess", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--note", default="", help="a word on the machine's state (busy, quiet)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "batch.json")
    a = ap.parse_args()
    files = corpus_files(a.crema, a.ravdess)
    res = measure_batch(a.model, files, backend=a.backend, repeats=a.repeats)
    with use_cores(1):
        res["batching"] = batching(a.model, files[:64])
    res["machine"] = {
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "note": a.note,
    }
    res["files"] = {"crema-d": a.crema, "ravdess": a.ravdess, "seed": 0}
    atomic_write_json(a.out, res)
    for r in res["runs"]:
        print(f"{r['cores']} core(s) {r['mode']:<10} {r['clips_per_s']:6.1f} clips/s  "
              f"rtf {r['rtf']:6.1f}  cpu {r['cpu_s']:6.2f} s  wall {r['wall_s']:6.2f} s  "
              f"identical {r['identical']}")  # fmt: skip
    print(
        "speed-up pipelined:", res["speedup_pipelined"], "| stages:", res["stages_cpu_ms_per_clip"]
    )
    print("decode threads:", res["decode_threads"], "| batching:", res["batching"])
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
