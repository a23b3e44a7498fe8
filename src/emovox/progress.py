"""Shared helpers for long batch work: a rich progress bar and the worker-process count."""

from __future__ import annotations

import os
from typing import Any


def progress_bar(enabled: bool = True, console: Any = None, *extra: Any) -> Any:
    """A rich ``Progress`` (description, bar, done/total, elapsed, remaining, then any
    ``extra`` columns); silent when ``enabled`` is false. Use as a context manager."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *extra,
        disable=not enabled,
        console=console,
    )


def resolve_jobs(n_jobs: int) -> int:
    """Worker processes for ``n_jobs`` as joblib counts them (-1: every usable core)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    if n_jobs == 0:
        raise ValueError("n_jobs must not be 0")
    return max(1, cpus + 1 + n_jobs if n_jobs < 0 else n_jobs)
