"""The Arrow tables a Ray run writes: predictions, embeddings and errors, each with a fixed
schema (also for an empty shard); the run's metadata rides along in the schema (``emovox``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

#: Columns of the errors table: every file that could not be used, with the reason.
ERROR_SCHEMA_FIELDS = (("path", "string"), ("reason", "string"))


def errors_table(errors: Sequence[tuple[str, str]]) -> Any:
    """``(path, reason)`` pairs as an Arrow table."""
    import pyarrow as pa

    schema = pa.schema([(n, getattr(pa, t)()) for n, t in ERROR_SCHEMA_FIELDS])
    return pa.Table.from_pylist([{"path": p, "reason": r} for p, r in errors], schema=schema)


def prediction_rows(p: Any, shown: str, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Rows for one successful :class:`emovox.Prediction`: a ``file`` row, plus one
    ``segment`` row per speech segment of a long recording."""
    dur = float(p.duration or 0.0)

    def row(scope: str, seg: int | None, start: float, end: float, d: dict[str, Any]) -> dict:
        r: dict[str, Any] = {
            "path": shown, "scope": scope, "segment": seg, "start": float(start),
            "end": float(end), "duration": dur, "label": d["label"],
        }  # fmt: skip
        r.update({f"p_{lab}": d["probabilities"].get(lab) for lab in labels})  # none: no_speech
        r["uncertain"] = bool(d["uncertain"])
        return r

    head = {"label": p.label, "probabilities": p.probabilities, "uncertain": p.uncertain}
    rows = [row("file", None, 0.0, dur, head)]
    for i, s in enumerate(p.segments or []):
        rows.append(row("segment", i, s["start"], s["end"], s))
    return rows


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


def embeddings_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> Any:
    """Embedding rows as an Arrow table: path, content_hash, duration, embedding (float32)."""
    import pyarrow as pa

    schema = pa.schema(
        [("path", pa.string()), ("content_hash", pa.string()), ("duration", pa.float64()),
         ("embedding", pa.list_(pa.float32()))],
        metadata={"emovox": json.dumps(meta)},
    )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=schema)
