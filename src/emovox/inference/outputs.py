"""What ``emovox predict`` makes from predictions besides printing: CSV rows, and each long
recording's timeline files under a name unique among the inputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emovox.inference.recognizer import Prediction, Recognizer


def csv_header(labels: Sequence[str]) -> list[str]:
    """The columns of :func:`csv_row`: path, label, uncertain, no_speech, duration, segments,
    error, warnings, and one probability column per label."""
    return [
        "path", "label", "uncertain", "no_speech", "duration", "segments", "error", "warnings",
        *labels,
    ]  # fmt: skip


def csv_row(p: Prediction, labels: Sequence[str]) -> list[object]:
    """One CSV row for a prediction; empty cells where a failed input has no value. ``no_speech``
    is 1 when the speech gate refused the input an emotion; ``warnings`` are its decoding
    warnings, joined by ``"; "``."""
    return [
        p.path,
        p.label or "",
        "" if not p.ok else int(p.uncertain),
        "" if not p.ok else int(p.no_speech),
        "" if p.duration is None else round(p.duration, 3),
        "" if p.segments is None else len(p.segments),
        p.error or "",
        "; ".join(p.warnings),
        *[p.probabilities.get(lab, "") for lab in labels],
    ]


def unique_stem(path: str, used: set[str]) -> str:
    """``path``'s file stem (``recording`` if it has none), with ``-2``, ``-3``... added until it
    is not in ``used``; the name returned is added to ``used``."""
    stem = Path(path).stem or "recording"
    name, i = stem, 1
    while name in used:
        i += 1
        name = f"{stem}-{i}"
    used.add(name)
    return name


def write_timeline(
    p: Prediction, predictor: Recognizer, folder: str | Path, used: set[str]
) -> dict[str, Path]:
    """Write a long recording's timeline (``<stem>.timeline.json``, ``.csv`` and ``.png``, the
    stem from :func:`unique_stem`) into ``folder``, with the segments the speech gate refused
    (``gated``) and its detector (``speech_gate``); ``p.segments`` must be set."""
    from emovox.inference.timeline import Timeline

    path = p.path or "recording"
    tl = Timeline(
        predictor.labels, predictor.threshold, p.duration or 0.0, p.segments or [], source=path,
        vad=predictor.vad.name, gated=list(p.gated), speech_gate=p.speech_gate,
    )  # fmt: skip
    return tl.write(folder, unique_stem(path, used) + ".timeline")
