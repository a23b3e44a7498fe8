"""Reading audio with libsndfile (through soundfile): the fast path of :mod:`.decode`.

libsndfile's MPEG decoder (mpg123) writes its complaints ("Illegal Audio-MPEG-Header ...
Trying to resync") straight to file descriptor 2, naming no file; :class:`SndReader` catches
them while it reads MPEG data and keeps them as notes for the caller to report with the file's
name. It also reads libsndfile's header log, where a WAV/AIFF/AU file that was cut short shows
its data chunk as promising more bytes than the file holds.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import numpy as np
import soundfile as sf

#: What soundfile raises for data it cannot open or read.
SND_ERRORS: tuple[type[Exception], ...] = (sf.LibsndfileError, RuntimeError, TypeError, ValueError)

_OPENING = re.compile(r"Error opening (<[^>]*>|'[^']*'|\S+): ")
#: libsndfile's reason when its MPEG decoder finds no frame, misleading for a regular file.
_NOT_REGULAR = "File does not exist or is not a regular file (possibly a pipe?)."
#: A data chunk size the header declares, with the size the file can hold ("should be").
_PROMISE = re.compile(r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)
#: Declared sizes that mean "unknown" (written by streaming recorders), not a promise.
_PLACEHOLDER = 0x7FFF0000
#: A line C decoders write to stderr: mpg123's "Note: ...", "[src/...:12] warning: ...".
_DECODER_LINE = re.compile(r"^(?:\[[^\]]*\]\s*)?(?:note|warning|error)\s*:\s*(.+)$", re.I)
#: Decoder lines that only say the file is shorter than its header (reported as such).
_SIZE_ONLY = re.compile(r"Xing stream size|fuzzy seeking", re.I)

_FD2 = threading.Lock()


def clean_reason(text: str) -> str:
    """libsndfile's message without its ``Error opening <object at 0x...>:`` or ``Error :``
    prefix, and with its pipe guess (given for any MPEG data without frames) replaced."""
    text = _OPENING.sub("", text).strip()
    text = re.sub(r"^Error\s*:\s*", "", text)
    return text.replace(_NOT_REGULAR, "no valid MPEG audio frame found")


def _memory_file() -> IO[bytes]:
    """A file in memory (Linux ``memfd``; elsewhere a temporary file, deleted at once)."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("emovox-stderr"), "w+b")
    return tempfile.TemporaryFile()


@contextmanager
def captured_fd2(lines: list[str]) -> Iterator[None]:
    """Send what is written to file descriptor 2 (C libraries' stderr) inside the block to
    ``lines`` instead of the terminal. One block at a time in the process (a lock): what other
    threads print meanwhile is caught too, so callers write back the lines they do not use."""
    with _FD2, _memory_file() as tmp:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all
            yield
            return
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def header_promise(log: str, frames: int) -> int | None:
    """Frames the header promises when its data chunk declares more bytes than the file holds
    (libsndfile logs ``data : 64000 (should be 31978)`` and reads the 31978); None otherwise."""
    for m in _PROMISE.finditer(log):
        declared, held = int(m.group(1)), int(m.group(2))
        if held < declared < _PLACEHOLDER and held > 0:
            return round(frames * declared / held)
    return None


class SndReader:
    """An open libsndfile source read as mono float32 blocks at its own rate.

    ``frames``: length from the header (None when unknown); ``promised``: what the header
    promises, more than ``frames`` for a file cut short; ``notes``: decoder complaints.
    """

    def __init__(self, handle: str | io.IOBase, listen: bool = False) -> None:
        # opening always listens: libsndfile tries its MPEG decoder on unknown content (random
        # bytes, text), which writes "Illegal Audio-MPEG-Header" lines to fd 2
        self._listen = True
        self._said: list[str] = []
        with self._decoder_output():
            self._f = sf.SoundFile(handle)
        f = self._f
        self.samplerate = int(f.samplerate)
        self.format = str(f.format)
        self._listen = listen or self.format == "MP3"
        self.frames: int | None = int(f.frames) if f.frames > 0 else None
        self.promised = self.frames
        if self.frames is not None:
            self.promised = header_promise(f.extra_info, self.frames) or self.frames

    @property
    def notes(self) -> list[str]:
        """What the decoder complained about, as one line (empty when it said nothing)."""
        if not self._said:
            return []
        more = f" (+{len(self._said) - 4} more)" if len(self._said) > 4 else ""
        return [f"{self.format} decoder: " + "; ".join(self._said[:4]) + more]

    @contextmanager
    def _decoder_output(self) -> Iterator[None]:
        if not self._listen:
            yield
            return
        lines: list[str] = []
        try:
            with captured_fd2(lines):
                yield
        finally:
            others = []
            for line in lines:
                m = _DECODER_LINE.match(line.strip())
                said = None if m is None else m.group(1).strip().rstrip(".")
                if said is None:
                    others.append(line)
                elif said not in self._said and not _SIZE_ONLY.search(said):
                    self._said.append(said)
            if others:  # another thread's output: back where it was going
                os.write(2, ("\n".join(others) + "\n").encode())

    def read(self, n: int = -1) -> np.ndarray:
        """Up to ``n`` frames (all that is left for -1), mono; empty at the end."""
        with self._decoder_output():
            y = self._f.read(n, dtype="float32", always_2d=True)
        return y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]

    def close(self) -> None:
        self._f.close()
