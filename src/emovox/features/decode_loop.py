"""The per-clip step every extractor shares: decode a file, hash the decoded audio, preprocess
it (then optionally compute something from it), and report a failure as a reason instead of
raising; plus the chunked, optionally parallel loop that runs it over many files.

Used by :func:`emovox.features.extract`, :func:`emovox.features.embeddings.extract_embeddings`
and :func:`emovox.evaluation.waveforms.load_waveforms`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

from emovox.audio import AudioError, Preprocess, content_hash, decode, preprocess

T = TypeVar("T")


class ClipOutcome(NamedTuple):
    """What happened to one file: ``value`` is None exactly when ``error`` says why."""

    value: Any  # the preprocessed waveform, or what ``compute`` made of it
    content_hash: str | None  # hash of the decoded audio (None: not decodable)
    duration: float  # decoded duration in seconds (NaN: not decodable)
    error: str | None  # the reason the clip cannot be used


def load_clip(
    path: str,
    pre: Preprocess,
    compute: Callable[[np.ndarray, str], Any] | None = None,
    step: str = "preprocessing",
    passthrough: tuple[type[BaseException], ...] = (),
) -> ClipOutcome:
    """Decode -> :func:`~emovox.audio.content_hash` -> preprocess -> ``compute(y, hash)``.

    Never raises for one clip's problem: a decoder failure gives ``"decoding failed: ..."``,
    an :class:`~emovox.audio.AudioError` its own reason, any other exception after decoding
    ``"<step> failed: ..."``. Exceptions of the ``passthrough`` types (say, a missing model)
    are not the clip's problem and propagate.
    """
    try:
        y = decode(path, pre.sample_rate, pre.max_seconds)
    except AudioError as exc:
        return ClipOutcome(None, None, float("nan"), exc.reason)
    except Exception as exc:  # noqa: BLE001 - anything a decoder throws is the clip's problem
        return ClipOutcome(
            None, None, float("nan"), f"decoding failed: {type(exc).__name__}: {exc}"
        )
    chash = content_hash(y)
    duration = len(y) / pre.sample_rate
    try:
        value = preprocess(y, pre, path)
        if compute is not None:
            value = compute(value, chash)
    except AudioError as exc:
        return ClipOutcome(None, chash, duration, exc.reason)
    except passthrough:
        raise
    except Exception as exc:  # noqa: BLE001 - one clip's bug must not end the run
        return ClipOutcome(None, chash, duration, f"{step} failed: {type(exc).__name__}: {exc}")
    return ClipOutcome(value, chash, duration, None)


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in consecutive lists of ``size`` (the last may be shorter)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run_chunks(
    work: Callable[..., T], chunks: Sequence[Any], n_jobs: int, *args: Any
) -> Iterator[T]:
    """``work(chunk, *args, worker=...)`` for every chunk: in this process (``worker=False``)
    when ``n_jobs == 1`` or there is at most one chunk, else in ``n_jobs`` loky worker processes
    (``worker=True``), results in the order they finish."""
    if n_jobs == 1 or len(chunks) <= 1:
        for ch in chunks:
            yield work(ch, *args, worker=False)
        return
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    yield from par(delayed(work)(ch, *args, worker=True) for ch in chunks)
