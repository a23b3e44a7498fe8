"""Work ahead of the model: :func:`prefetch` runs a function (decoding, checks, the speech gate)
over the inputs in worker threads while the caller encodes earlier ones, and yields the results
in input order, each failure carried as a :class:`Failed` item instead of raised.

At most ``depth`` results wait ahead of the caller (a bounded window), so memory stays bounded
on any number of inputs. Decoding (libsndfile, PyAV) and onnxruntime release the GIL while they
work, so one worker thread lets a second core decode the next files while the encoder runs
(``bench/bench_batch.py`` measures it). When the caller stops early (``break``, an exception,
``close()``), the inputs not started are dropped and the worker threads end before the
generator returns: no thread is left behind.

>>> for r in prefetch(str.upper, ["a", "b"]):
...     print(r)
A
B
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: The worker threads' name prefix (tests look for them).
THREAD_NAME = "emovox-prefetch"


@dataclass(frozen=True)
class Failed(Generic[T]):
    """An input whose function raised: the ``item`` and the ``error`` it raised."""

    item: T
    error: Exception


def default_workers() -> int:
    """Decode threads worth running by default: 1 when this process may use two CPUs or more,
    else 0 (on one core a thread only adds switching: ``bench/bench_batch.py``)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 1 if (cpus or 1) >= 2 else 0


def _call(fn: Callable[[T], R], item: T) -> R | Failed[T]:
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - carried to the caller, who decides
        return Failed(item, exc)


def prefetch(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int = 1, depth: int = 32
) -> Iterator[R | Failed[T]]:
    """``fn(item)`` for each of ``items``, in their order, computed by ``workers`` threads up to
    ``depth`` items ahead of the caller; an item whose ``fn`` raised comes as :class:`Failed`.
    ``workers=0``: no thread, each item computed when it is asked for (the same results).
    ``items`` is read on the caller's thread, as the window moves."""
    if workers < 1:
        for item in items:
            yield _call(fn, item)
        return
    it = iter(items)
    pool = ThreadPoolExecutor(workers, thread_name_prefix=THREAD_NAME)
    pending: deque[Future[R | Failed[T]]] = deque()
    try:
        for item in islice(it, max(1, depth)):
            pending.append(pool.submit(_call, fn, item))
        while pending:
            result = pending.popleft().result()
            for item in islice(it, 1):
                pending.append(pool.submit(_call, fn, item))
            yield result
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
