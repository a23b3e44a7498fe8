"""Shards of a Ray run: planning them from the input paths and their Parquet files on disk.

A shard is the unit of restart: its file name carries a hash of its paths and of the model and
settings, so a rerun skips every shard whose file exists. Files are written to a temporary name
and renamed, and files of earlier plans are cleaned away.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Files per shard (one Parquet file each); the unit of restart.
SHARD_SIZE = 256
#: File names of shard Parquet files: ``part-<index>-<hash>.parquet``.
PART_NAME = re.compile(r"^part-\d{5}-[0-9a-f]{12}\.parquet$")

#: One input file: (path as shown in the output, absolute path read by the worker).
Item = tuple[str, str]


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


def write_parquet(table: Any, path: Path) -> None:
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


def num_rows(path: Path) -> int:
    """Rows of the Parquet file ``path`` (0 when it does not exist), read from its footer."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows) if path.exists() else 0


def clean_stale(folder: Path, keep: set[str]) -> int:
    """Remove shard files of earlier plans (other inputs or model) and orphaned temp files
    from ``folder``, keeping the file names in ``keep``; returns how many were removed."""
    removed = 0
    if not folder.is_dir():
        return 0
    for f in folder.iterdir():
        if (PART_NAME.match(f.name) and f.name not in keep) or (
            f.name.startswith(".part-") and f.name.endswith(".tmp")
        ):
            f.unlink(missing_ok=True)
            removed += 1
    return removed
