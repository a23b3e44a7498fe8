"""Batch inference and embedding on a Ray cluster (or local Ray), written as sharded Parquet.

>>> from emovox.scale.ray_engine import predict, embed             # doctest: +SKIP
>>> predict(["../shared/corpora"], "out/preds", workers=2)          # doctest: +SKIP
>>> embed(paths, "out/emb", encoder="tiny.en")                      # doctest: +SKIP

The same run as ``emovox predict --engine ray INPUT... --out DIR``. How it works:

- **Shards.** The input files (found by the same rules as ``emovox predict``) are sorted and cut
  into shards of ``shard_size`` files. A shard's file name carries a hash of its paths and of the
  model and settings (``part-00003-1a2b3c4d5e6f.parquet``), so a rerun with the same inputs and
  model skips every shard whose file exists, and recomputes only shards whose inputs changed.
- **Actors.** ``workers`` Ray actors each load the model once (``emovox.load``; on a cluster
  with GPUs ``num_gpus=gpus_per_worker`` each and the torch backend on that GPU) and take
  batches of ``batch_size`` files: decode, long-recording segmentation and prediction are
  exactly :class:`emovox.inference.api.Predictor`'s, so the numbers equal a single-process
  ``Predictor.predict_many``. A batch that fails is retried file by file, each file alone on an
  actor, so a file that crashes its worker is the only one recorded as an error.
- **Output.** ``DIR/predictions/part-*.parquet`` (one row per file, ``scope = "file"``; long
  recordings add one row per speech segment, ``scope = "segment"``), ``DIR/errors/part-*.parquet``
  (``path``, ``reason``: every file that could not be used, never dropped) and
  ``DIR/_SUCCESS.json`` (counts). Each Parquet file is written to a temporary name and renamed;
  a shard's errors file is written before its predictions file, which marks the shard done.

The driver writes every file, so ``DIR`` only needs to be on the driver's machine; the input
paths must be readable under the same absolute paths on every node (a shared file system).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Files per shard (one Parquet file each); the unit of restart.
SHARD_SIZE = 256
#: Files per actor call; the unit of load balancing.
BATCH_SIZE = 16
#: Calls queued per actor, so an actor never waits for the driver.
IN_FLIGHT = 2
FORMAT = "emovox-ray/1"
SUCCESS = "_SUCCESS.json"
_PART = re.compile(r"^part-\d{5}-[0-9a-f]{12}\.parquet$")

Log = Callable[[str], None]
Item = tuple[str, str]  # (path as shown in the output, absolute path read by the worker)


def _require_ray() -> Any:
    try:
        import pyarrow  # noqa: F401
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Ray engine needs Ray Data and pyarrow: pip install 'emovox[ray]'"
        ) from exc
    return ray


# --------------------------------------------------------------------------- shards


@dataclass(frozen=True)
class Shard:
    """One restartable unit: ``paths`` (sorted) written to ``<name>.parquet``."""

    index: int
    name: str
    items: tuple[Item, ...]


def plan_shards(
    paths: Sequence[str | os.PathLike[str]], fingerprint: str, shard_size: int = SHARD_SIZE
) -> list[Shard]:
    """Sort and de-duplicate ``paths`` and cut them into shards named by their content.

    The name ``part-<index>-<hash>`` hashes ``fingerprint`` (model and settings) and the shard's
    paths, so the same inputs always give the same shards and a changed input or model gives
    a new name (the shard is recomputed)."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    shown = sorted({os.fspath(p) for p in paths})
    shards = []
    for i in range(0, len(shown), shard_size):
        chunk = shown[i : i + shard_size]
        digest = hashlib.sha1("\n".join([fingerprint, *chunk]).encode()).hexdigest()[:12]
        items = tuple((p, os.path.abspath(p)) for p in chunk)
        shards.append(Shard(i // shard_size, f"part-{i // shard_size:05d}-{digest}", items))
    return shards


def _write_parquet(table: Any, path: Path) -> None:
    """Write ``table`` to a temporary name beside ``path`` and rename it into place."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _num_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows) if path.exists() else 0


def _clean_stale(folder: Path, keep: set[str]) -> int:
    """Remove shard files of earlier plans (other inputs or model) and orphaned temp files."""
    removed = 0
    if not folder.is_dir():
        return 0
    for f in folder.iterdir():
        if (_PART.match(f.name) and f.name not in keep) or (
            f.name.startswith(".part-") and f.name.endswith(".tmp")
        ):
            f.unlink(missing_ok=True)
            removed += 1
    return removed


ERROR_SCHEMA_FIELDS = (("path", "string"), ("reason", "string"))


def errors_table(errors: Sequence[tuple[str, str]]) -> Any:
    """``(path, reason)`` pairs as an Arrow table."""
    import pyarrow as pa

    schema = pa.schema([(n, getattr(pa, t)()) for n, t in ERROR_SCHEMA_FIELDS])
    return pa.Table.from_pylist([{"path": p, "reason": r} for p, r in errors], schema=schema)


# --------------------------------------------------------------------------- jobs


@dataclass
class _Job:
    """What the engine runs: a worker class, its arguments, and how rows become a table."""

    kind: str  # output folder: "predictions" or "embeddings"
    worker: type
    args: dict[str, Any]
    fingerprint: str
    to_table: Callable[[list[dict[str, Any]], dict[str, Any]], Any]
    num_gpus: float = 0.0


@contextmanager
def _cache_lock() -> Iterator[None]:
    """Serialise model loading between actors on one node (the ONNX export is cached once)."""
    from emovox.io import cache_dir

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(folder / ".ray-load.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _one_thread() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - numpy backend without torch
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


class _CudaEncoder:
    """The torch backend's pooled encoder, moved to this actor's GPU."""

    def __init__(self, module: Any) -> None:
        self.module = module.cuda()

    def pooled(self, mel: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(mel)[None].cuda()
            return self.module(x)[0].float().cpu().numpy()


def prediction_rows(p: Any, shown: str, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Rows for one successful :class:`emovox.inference.api.Prediction`: a ``file`` row, plus one
    ``segment`` row per speech segment of a long recording."""
    dur = float(p.duration or 0.0)

    def row(scope: str, seg: int | None, start: float, end: float, d: dict[str, Any]) -> dict:
        r: dict[str, Any] = {
            "path": shown, "scope": scope, "segment": seg, "start": float(start),
            "end": float(end), "duration": dur, "label": d["label"],
        }  # fmt: skip
        r.update({f"p_{lab}": float(d["probabilities"][lab]) for lab in labels})
        r["uncertain"] = bool(d["uncertain"])
        return r

    head = {"label": p.label, "probabilities": p.probabilities, "uncertain": p.uncertain}
    rows = [row("file", None, 0.0, dur, head)]
    for i, s in enumerate(p.segments or []):
        rows.append(row("segment", i, s["start"], s["end"], s))
    return rows


class _PredictWorker:
    """One model per actor: ``run(items)`` → ``(rows, errors)`` for a batch of files."""

    def __init__(
        self, model: str | None, backend: str, vad: str, long_seconds: float, gpu: bool
    ) -> None:
        _one_thread()
        from emovox.inference import api

        with _cache_lock():
            self.pred = api.load(model, backend=backend, long_seconds=long_seconds, vad=vad)
        if gpu:
            import torch

            rec = self.pred.recognizer
            if torch.cuda.is_available() and getattr(rec, "backend", "") == "torch":
                rec._enc = _CudaEncoder(rec._enc.module)  # type: ignore[attr-defined]
        self.labels = self.pred.labels

    def cpu_seconds(self) -> float:
        """CPU time this actor's process has used (model loading included)."""
        return time.process_time()

    def run(self, items: list[Item]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        real = [r for _, r in items]
        try:
            preds = self.pred.predict_many(real, on_error="record")
        except Exception:  # noqa: BLE001 - isolate the file that broke the batch
            preds = []
            for r in real:
                try:
                    preds.extend(self.pred.predict_many([r], on_error="record"))
                except Exception as exc:  # noqa: BLE001 - one file's problem, recorded
                    preds.append(_failed(r, f"{type(exc).__name__}: {exc}"))
        rows: list[dict[str, Any]] = []
        errors: list[tuple[str, str]] = []
        for (shown, _), p in zip(items, preds, strict=True):
            if p.ok:
                rows.extend(prediction_rows(p, shown, self.labels))
            else:
                errors.append((shown, p.error or "unknown error"))
        return rows, errors


def _failed(path: str, reason: str) -> Any:
    from emovox.inference.api import Prediction

    return Prediction(None, {}, False, path=path, error=reason)


def predictions_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> Any:
    """Prediction rows as an Arrow table with a fixed schema (also for an empty shard)."""
    import pyarrow as pa

    labels = meta["labels"]
    schema = pa.schema(
        [("path", pa.string()), ("scope", pa.string()), ("segment", pa.int32()),
         ("start", pa.float64()), ("end", pa.float64()), ("duration", pa.float64()),
         ("label", pa.string())]
        + [(f"p_{lab}", pa.float64()) for lab in labels]
        + [("uncertain", pa.bool_())],
        metadata={"emovox": json.dumps(meta)},
    )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=schema)


class _EmbedWorker:
    """One encoder per actor: ``run(items)`` → ``(rows, errors)`` of pooled embeddings."""

    def __init__(self, encoder: str) -> None:
        _one_thread()
        from emovox.features.embeddings import EmbeddingConfig

        self.config = EmbeddingConfig(encoder)

    def cpu_seconds(self) -> float:
        """CPU time this actor's process has used."""
        return time.process_time()

    def run(self, items: list[Item]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        from emovox.features.embeddings import extract_embeddings

        res = extract_embeddings([r for _, r in items], self.config, progress=False, threads=1)
        shown = {r: s for s, r in items}
        rows, k = [], 0
        for i, (s, _) in enumerate(items):
            if res.ok[i]:
                rows.append(
                    {"path": s, "content_hash": res.hashes[i], "duration": float(res.durations[i]),
                     "embedding": res.X[k].astype(np.float32).tolist()}
                )  # fmt: skip
                k += 1
        return rows, [(shown.get(p, p), reason) for p, reason in res.errors]


def embeddings_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> Any:
    """Embedding rows as an Arrow table: path, content_hash, duration, embedding (float32)."""
    import pyarrow as pa

    schema = pa.schema(
        [("path", pa.string()), ("content_hash", pa.string()), ("duration", pa.float64()),
         ("embedding", pa.list_(pa.float32()))],
        metadata={"emovox": json.dumps(meta)},
    )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=schema)


# --------------------------------------------------------------------------- ray


def _init_ray(address: str | None, workers: int | None) -> bool:
    """Connect to ``address`` or start local Ray with ``workers`` CPUs; True if started here."""
    ray = _require_ray()
    if ray.is_initialized():
        return False
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "1"}
    if os.environ.get("EMOVOX_CACHE"):
        env["EMOVOX_CACHE"] = os.environ["EMOVOX_CACHE"]
    runtime_env = {"env_vars": env}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env=runtime_env,
        )
    return True


def _run(
    job: _Job,
    shards: list[Shard],
    out_dir: Path,
    meta: dict[str, Any],
    workers: int | None,
    address: str | None,
    batch_size: int,
    log: Log,
) -> dict[str, Any]:
    """Run ``job`` over the shards not yet written, then write ``_SUCCESS.json``."""
    from emovox.io import atomic_write_json

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUCCESS).unlink(missing_ok=True)
    rows_dir, err_dir = out_dir / job.kind, out_dir / "errors"
    keep = {f"{s.name}.parquet" for s in shards}
    stale = _clean_stale(rows_dir, keep) + _clean_stale(err_dir, keep)
    todo = [s for s in shards if not (rows_dir / f"{s.name}.parquet").exists()]
    n_skipped = len(shards) - len(todo)
    if n_skipped:
        log(f"{n_skipped} of {len(shards)} shard(s) already done, skipped")
    n_files = sum(len(s.items) for s in todo)

    started, cpu = False, 0.0
    if todo:
        ray = _require_ray()
        started = _init_ray(address, workers)
        try:
            cpu = _drive(ray, job, todo, rows_dir, err_dir, meta, workers, batch_size, log)
        finally:
            if started:
                ray.shutdown()
    seconds = time.perf_counter() - t0
    summary = {
        "format": FORMAT,
        "kind": job.kind,
        "files": sum(len(s.items) for s in shards),
        "rows": sum(_num_rows(rows_dir / f"{s.name}.parquet") for s in shards),
        "errors": sum(_num_rows(err_dir / f"{s.name}.parquet") for s in shards),
        "shards": len(shards),
        "shards_written": len(todo),
        "shards_skipped": n_skipped,
        "stale_files_removed": stale,
        "files_processed": n_files,
        "seconds": round(seconds, 2),
        "worker_cpu_s": round(cpu, 2),
        "workers": workers,
        "address": address,
        "fingerprint": job.fingerprint,
    } | {k: v for k, v in meta.items() if k not in ("fingerprint",)}
    summary["ok_files"] = summary["files"] - summary["errors"]
    atomic_write_json(out_dir / SUCCESS, summary)
    return summary


def _drive(
    ray: Any,
    job: _Job,
    shards: list[Shard],
    rows_dir: Path,
    err_dir: Path,
    meta: dict[str, Any],
    workers: int | None,
    batch_size: int,
    log: Log,
) -> float:
    """Feed batches to a pool of actors; write each shard as soon as all its batches are in.
    Returns the CPU seconds the (surviving) actors used."""
    from ray.exceptions import RayActorError, RayError

    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0)) if job.num_gpus else 0
    n = workers or (int(gpus / job.num_gpus) if gpus else max(1, int(res.get("CPU", 1))))
    opts: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0}
    if gpus:
        opts["num_gpus"] = job.num_gpus
    actor_cls = ray.remote(**opts)(job.worker)
    args = dict(job.args)
    if "gpu" in args:
        args["gpu"] = bool(gpus)
        if gpus and args.get("backend") == "auto":
            args["backend"] = "torch"  # the ONNX backend runs on CPU only

    # a task is (shard, key, files); key (batch, -1) for a batch, (batch, j) for its j-th file
    # when the batch failed and is retried file by file (each alone on an actor, so a file that
    # kills its worker is the only one blamed), so rows keep the sorted-path order
    Key = tuple[int, int]
    queue: deque[tuple[int, Key, list[Item]]] = deque()
    parts: dict[int, dict[Key, tuple[list, list]]] = {}
    expected: dict[int, int] = {}
    for si, s in enumerate(shards):
        batches = [list(s.items[i : i + batch_size]) for i in range(0, len(s.items), batch_size)]
        expected[si] = len(batches)
        parts[si] = {}
        queue.extend((si, (bi, -1), b) for bi, b in enumerate(batches))
    total = len(queue)
    actors = [actor_cls.remote(**args) for _ in range(min(n, total))]
    load = {id(a): 0 for a in actors}
    alone: set[int] = set()  # actors running a retried file, with nothing else queued
    pending: dict[Any, tuple[Any, tuple[int, Key, list[Item]]]] = {}
    t0, done_files, written = time.perf_counter(), 0, 0
    log(f"{len(shards)} shard(s), {total} batch(es) on {len(actors)} actor(s)")

    def submit() -> None:
        for a in actors:
            while queue and load[id(a)] < IN_FLIGHT and id(a) not in alone:
                retry = queue[0][1][1] >= 0
                if retry and load[id(a)]:
                    break
                task = queue.popleft()
                pending[a.run.remote(task[2])] = (a, task)
                load[id(a)] += 1
                if retry:
                    alone.add(id(a))

    submit()
    while pending:
        [ref], _ = ray.wait(list(pending), num_returns=1)
        actor, (si, key, items) = pending.pop(ref)
        if id(actor) in load:
            load[id(actor)] -= 1
        alone.discard(id(actor))
        try:
            parts[si][key] = ray.get(ref)
        except RayError as exc:
            if isinstance(exc, RayActorError) and actor in actors:  # replace a dead actor
                actors.remove(actor)
                load.pop(id(actor), None)
                alone.discard(id(actor))
                fresh = actor_cls.remote(**args)
                actors.append(fresh)
                load[id(fresh)] = 0
            if len(items) > 1:  # retry file by file: one poisonous file spoils nothing else
                log(f"a batch failed ({type(exc).__name__}); retrying its files one by one")
                expected[si] += len(items) - 1
                for j in reversed(range(len(items))):
                    queue.appendleft((si, (key[0], j), [items[j]]))
            else:
                reason = f"worker failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                parts[si][key] = ([], [(items[0][0], reason)])
        if len(parts[si]) == expected[si]:
            done = [parts[si][k] for k in sorted(parts[si])]
            rows = [r for part in done for r in part[0]]
            errs = [e for part in done for e in part[1]]
            shard = shards[si]
            _write_parquet(errors_table(errs), err_dir / f"{shard.name}.parquet")
            _write_parquet(job.to_table(rows, meta), rows_dir / f"{shard.name}.parquet")
            done_files += len(shard.items)
            written += 1
            rate = done_files / max(time.perf_counter() - t0, 1e-9)
            log(f"shard {written}/{len(shards)} ({shard.name}): {len(shard.items)} files, "
                f"{len(errs)} error(s); {rate:.1f} files/s")  # fmt: skip
            del parts[si]
        submit()
    cpu = 0.0
    if hasattr(job.worker, "cpu_seconds"):
        try:
            cpu = float(sum(ray.get([a.cpu_seconds.remote() for a in actors])))
        except RayError:  # pragma: no cover - an actor died at the very end
            cpu = float("nan")
    for a in actors:
        ray.kill(a)
    return cpu


# --------------------------------------------------------------------------- public


def model_fingerprint(model: str | os.PathLike[str] | None) -> str:
    """Hash of a model folder's weights and config (``None``: the packaged default model)."""
    from emovox.inference.bundle import CONFIG_FILE, MODEL_FILE, bundle_path

    folder = bundle_path(model)
    h = hashlib.sha1()
    for name in (CONFIG_FILE, MODEL_FILE):
        with open(folder / name, "rb") as fh:
            for block in iter(lambda f=fh: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def discover(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files, folders (recursive) and globs → files, by the rules of ``emovox predict``;
    plus ``(argument, reason)`` for arguments that gave no file."""
    from emovox.audio.files import expand_inputs

    return expand_inputs([os.fspath(x) for x in inputs])


def predict_files(
    files: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    vad: str = "auto",
    long_seconds: float = 20.0,
    workers: int | None = None,
    address: str | None = None,
    shard_size: int = SHARD_SIZE,
    batch_size: int = BATCH_SIZE,
    gpus_per_worker: float = 1.0,
    log: Log | None = None,
) -> dict[str, Any]:
    """Predict every file with Ray actors into ``out_dir`` (see the module docstring); returns
    the summary also written to ``out_dir/_SUCCESS.json``. On a cluster with GPUs each actor
    asks for ``gpus_per_worker`` of one (e.g. 0.25: four actors share a GPU) and runs the
    torch backend there; without GPUs actors use one CPU each."""
    from emovox.inference.bundle import read_bundle

    model_s = None if model is None else os.fspath(Path(model).expanduser().resolve())
    cfg, _, _ = read_bundle(model_s)
    settings = {"backend": backend, "vad": vad, "long_seconds": long_seconds}
    fp = hashlib.sha1(
        json.dumps([FORMAT, model_fingerprint(model_s), settings], sort_keys=True).encode()
    ).hexdigest()[:16]
    meta = {"labels": list(cfg.labels), "model": model_s or "default", "fingerprint": fp,
            "threshold": cfg.threshold} | settings  # fmt: skip
    job = _Job(
        "predictions",
        _PredictWorker,
        {"model": model_s, "backend": backend, "vad": vad, "long_seconds": long_seconds,
         "gpu": False},
        fp,
        predictions_table,
        num_gpus=gpus_per_worker if backend in ("auto", "torch") else 0.0,
    )  # fmt: skip
    shards = plan_shards(files, fp, shard_size)
    return _run(job, shards, Path(out_dir), meta, workers, address, batch_size, log or _quiet)


def predict(
    inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], **kw: Any
) -> dict[str, Any]:
    """:func:`predict_files` on files, folders (recursive) and globs, like ``emovox predict``."""
    files, _ = discover(inputs)
    return predict_files(files, out_dir, **kw)


def embed(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    encoder: str = "tiny.en",
    *,
    workers: int | None = None,
    address: str | None = None,
    shard_size: int = SHARD_SIZE,
    batch_size: int = BATCH_SIZE,
    log: Log | None = None,
) -> dict[str, Any]:
    """Frozen-encoder embeddings (:func:`emovox.features.embeddings.extract_embeddings`: every
    layer's
    mean and std over time) of ``paths`` as ``out_dir/embeddings/part-*.parquet`` with
    ``path``, ``content_hash``, ``duration``, ``embedding``; failures in ``out_dir/errors/``."""
    from emovox.features.embeddings import EmbeddingConfig

    config = EmbeddingConfig(encoder)
    fp = hashlib.sha1(json.dumps([FORMAT, config.key()]).encode()).hexdigest()[:16]
    meta = {"encoder": encoder, "stats": list(config.stats), "fingerprint": fp,
            "layout": "per layer (0 = stem), per stat, units: L<layer>_<stat>_<unit>"}  # fmt: skip
    job = _Job("embeddings", _EmbedWorker, {"encoder": encoder}, fp, embeddings_table)
    shards = plan_shards(paths, fp, shard_size)
    return _run(job, shards, Path(out_dir), meta, workers, address, batch_size, log or _quiet)


def _quiet(_msg: str) -> None:
    pass


def read_predictions(out_dir: str | os.PathLike[str]) -> Any:
    """All prediction shards of ``out_dir`` as one Arrow table (sorted by shard)."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(out_dir) / "predictions")


def read_errors(out_dir: str | os.PathLike[str]) -> Any:
    """The errors table (``path``, ``reason``) of ``out_dir``."""
    import pyarrow.parquet as pq

    folder = Path(out_dir) / "errors"
    if not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        return errors_table([])
    return pq.read_table(folder)
