"""Batch inference and embedding on a Ray cluster (or local Ray), written as sharded Parquet.

>>> from emovox.scale.ray_engine import predict, embed             # doctest: +SKIP
>>> predict(["../shared/corpora"], "out/preds", workers=2)          # doctest: +SKIP
>>> embed(paths, "out/emb", encoder="tiny.en")                      # doctest: +SKIP

The same run as ``emovox predict --engine ray INPUT... --out DIR``. How it works:

- **Shards** (:mod:`emovox.scale.shards`). The input files (found by the same rules as
  ``emovox predict``) are sorted and cut into shards of ``shard_size`` files. A shard's file
  name carries a hash of its paths and of the model and settings
  (``part-00003-1a2b3c4d5e6f.parquet``), so a rerun with the same inputs and model skips every
  shard whose file exists, and recomputes only shards whose inputs changed.
- **Actors** (:mod:`emovox.scale.workers`). ``workers`` Ray actors each load the model once
  (``emovox.load``; on a cluster with GPUs ``num_gpus=gpus_per_worker`` each and the torch
  backend on that GPU) and take batches of ``batch_size`` files: decode, long-recording
  segmentation and prediction are exactly those of the model ``emovox.load`` returns, so the
  numbers equal a single-process ``predict_many``. A batch that fails is retried file by file,
  each file alone on an actor, so a file that crashes its worker is the only one recorded as an
  error.
- **Output** (:mod:`emovox.scale.tables`). ``DIR/predictions/part-*.parquet`` (one row per
  file, ``scope = "file"``; long recordings add one row per speech segment,
  ``scope = "segment"``), ``DIR/errors/part-*.parquet`` (``path``, ``reason``: every file that
  could not be used, never dropped) and ``DIR/_SUCCESS.json`` (counts). Each Parquet file is
  written to a temporary name and renamed; a shard's errors file is written before its
  predictions file, which marks the shard done.

The driver (this module) writes every file, so ``DIR`` only needs to be on the driver's machine;
the input paths must be readable under the same absolute paths on every node (a shared file
system).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emovox.scale.shards import (
    SHARD_SIZE,
    Item,
    Shard,
    clean_stale,
    num_rows,
    plan_shards,
    write_parquet,
)
from emovox.scale.tables import (
    ERROR_SCHEMA_FIELDS,
    embeddings_table,
    errors_table,
    prediction_rows,
    predictions_table,
)
from emovox.scale.workers import EmbedWorker, PredictWorker

__all__ = [
    "BATCH_SIZE",
    "ERROR_SCHEMA_FIELDS",
    "FORMAT",
    "IN_FLIGHT",
    "SHARD_SIZE",
    "SUCCESS",
    "EmbedWorker",
    "Item",
    "Job",
    "Log",
    "PredictWorker",
    "Shard",
    "discover",
    "embed",
    "embeddings_table",
    "errors_table",
    "model_fingerprint",
    "plan_shards",
    "predict",
    "predict_files",
    "prediction_rows",
    "predictions_table",
    "read_errors",
    "read_predictions",
    "run_job",
]

#: Files per actor call; the unit of load balancing.
BATCH_SIZE = 16
#: Calls queued per actor, so an actor never waits for the driver.
IN_FLIGHT = 2
#: Output format tag, part of every fingerprint and of ``_SUCCESS.json``.
FORMAT = "emovox-ray/1"
#: Name of the summary file that marks a finished run.
SUCCESS = "_SUCCESS.json"

#: A progress logger: called with one line of text.
Log = Callable[[str], None]


def _require_ray() -> Any:
    try:
        import pyarrow  # noqa: F401
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Ray engine needs Ray Data and pyarrow: pip install 'emovox[ray]'"
        ) from exc
    return ray


@dataclass
class Job:
    """What the engine runs: a worker class, its arguments, and how rows become a table.

    ``kind`` names the output folder (``"predictions"`` or ``"embeddings"``); ``worker`` is a
    class like :class:`~emovox.scale.workers.PredictWorker` (built with ``**args`` on each
    actor, ``run(items)`` → ``(rows, errors)``); ``to_table(rows, meta)`` gives a shard's Arrow
    table; ``num_gpus`` is each actor's share of a GPU when the cluster has GPUs."""

    kind: str
    worker: type
    args: dict[str, Any]
    fingerprint: str
    to_table: Callable[[list[dict[str, Any]], dict[str, Any]], Any]
    num_gpus: float = 0.0


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


def run_job(
    job: Job,
    shards: list[Shard],
    out_dir: Path,
    meta: dict[str, Any],
    workers: int | None,
    address: str | None,
    batch_size: int,
    log: Log,
) -> dict[str, Any]:
    """Run ``job`` over the shards not yet written to ``out_dir``, then write
    ``_SUCCESS.json``; returns that summary. Starts local Ray (or connects to ``address``) only
    when a shard is left to do, and shuts down a Ray it started."""
    from emovox.io import atomic_write_json

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUCCESS).unlink(missing_ok=True)
    rows_dir, err_dir = out_dir / job.kind, out_dir / "errors"
    keep = {f"{s.name}.parquet" for s in shards}
    stale = clean_stale(rows_dir, keep) + clean_stale(err_dir, keep)
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
        "rows": sum(num_rows(rows_dir / f"{s.name}.parquet") for s in shards),
        "errors": sum(num_rows(err_dir / f"{s.name}.parquet") for s in shards),
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
    job: Job,
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
            write_parquet(errors_table(errs), err_dir / f"{shard.name}.parquet")
            write_parquet(job.to_table(rows, meta), rows_dir / f"{shard.name}.parquet")
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
    job = Job(
        "predictions",
        PredictWorker,
        {"model": model_s, "backend": backend, "vad": vad, "long_seconds": long_seconds,
         "gpu": False},
        fp,
        predictions_table,
        num_gpus=gpus_per_worker if backend in ("auto", "torch") else 0.0,
    )  # fmt: skip
    shards = plan_shards(files, fp, shard_size)
    return run_job(job, shards, Path(out_dir), meta, workers, address, batch_size, log or _quiet)


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
    layer's mean and std over time) of ``paths`` as ``out_dir/embeddings/part-*.parquet`` with
    ``path``, ``content_hash``, ``duration``, ``embedding``; failures in ``out_dir/errors/``."""
    from emovox.features.embeddings import EmbeddingConfig

    config = EmbeddingConfig(encoder)
    fp = hashlib.sha1(json.dumps([FORMAT, config.key()]).encode()).hexdigest()[:16]
    meta = {"encoder": encoder, "stats": list(config.stats), "fingerprint": fp,
            "layout": "per layer (0 = stem), per stat, units: L<layer>_<stat>_<unit>"}  # fmt: skip
    job = Job("embeddings", EmbedWorker, {"encoder": encoder}, fp, embeddings_table)
    shards = plan_shards(paths, fp, shard_size)
    return run_job(job, shards, Path(out_dir), meta, workers, address, batch_size, log or _quiet)


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
