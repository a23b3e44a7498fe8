"""The Ray actors' work: one model (or encoder) per actor, loaded once, then batches of files.

Each worker's ``run(items)`` returns ``(rows, errors)`` for a batch of
:data:`emovox.scale.shards.Item`; the driver (:mod:`emovox.scale.ray_engine`) wraps the class
with ``ray.remote``. Nothing here imports Ray.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from emovox.scale.shards import Item
from emovox.scale.tables import prediction_rows


@contextmanager
def cache_lock() -> Iterator[None]:
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


def one_thread() -> None:
    """Limit this process to one compute thread (torch and BLAS): one actor per CPU."""
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


def failed_prediction(path: str, reason: str) -> Any:
    """A failed :class:`emovox.Prediction` for ``path`` with the error ``reason``."""
    import emovox

    return emovox.Prediction(None, {}, False, path=path, error=reason)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - numpy backend without torch
        return False
    return bool(torch.cuda.is_available())


class PredictWorker:
    """One model per actor: ``run(items)`` → ``(rows, errors)`` for a batch of files."""

    def __init__(
        self, model: str | None, backend: str, vad: str, long_seconds: float, gpu: bool
    ) -> None:
        one_thread()
        import emovox

        with cache_lock():
            self.pred = emovox.load(model, backend=backend, long_seconds=long_seconds, vad=vad)
        self.pred.workers = 0  # Ray already runs one actor per CPU: no decode thread per actor
        if gpu and _cuda_available() and self.pred.backend == "torch":
            self.pred.to("cuda")
        self.labels = self.pred.labels

    def cpu_seconds(self) -> float:
        """CPU time this actor's process has used (model loading included)."""
        return time.process_time()

    def run(self, items: list[Item]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Predict a batch; a batch that raises is retried file by file."""
        real = [r for _, r in items]
        try:
            preds = self.pred.predict_many(real, errors="return")
        except Exception:  # noqa: BLE001 - isolate the file that broke the batch
            preds = []
            for r in real:
                try:
                    preds.extend(self.pred.predict_many([r], errors="return"))
                except Exception as exc:  # noqa: BLE001 - one file's problem, recorded
                    preds.append(failed_prediction(r, f"{type(exc).__name__}: {exc}"))
        rows: list[dict[str, Any]] = []
        errors: list[tuple[str, str]] = []
        for (shown, _), p in zip(items, preds, strict=True):
            if p.ok:
                rows.extend(prediction_rows(p, shown, self.labels))
            else:
                errors.append((shown, p.error or "unknown error"))
        return rows, errors


class EmbedWorker:
    """One encoder per actor: ``run(items)`` → ``(rows, errors)`` of pooled embeddings."""

    def __init__(self, encoder: str) -> None:
        one_thread()
        from emovox.features.embeddings import EmbeddingConfig

        self.config = EmbeddingConfig(encoder)

    def cpu_seconds(self) -> float:
        """CPU time this actor's process has used."""
        return time.process_time()

    def run(self, items: list[Item]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Embed a batch; files that cannot be used come back as errors."""
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
