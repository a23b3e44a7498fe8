"""Uploads for the web service: read a request body under a size limit, take the audio out of a
multipart form in memory, check it through :mod:`emovox.audio.decode` (format sniffed from the
content, duration checked before decoding) and map its problems to HTTP errors.

Nothing here touches the disk: the body is counted as it arrives (an oversized upload is refused
before it has all been read), multipart forms are parsed from memory with python-multipart's
streaming parser (not Starlette's, which spools large files to a temporary file), and audio is
opened from :class:`io.BytesIO`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emovox.audio.decode import (
    SAMPLE_RATE,
    AudioError,
    AudioTooLong,
    decode_with_info,
    open_reader,
)
from emovox.audio.ffmpeg import pyav_available
from emovox.audio.libsndfile import SndReader
from emovox.audio.sniff import HEAD_BYTES, NEEDS_FFMPEG, sniff

__all__ = ["NEEDS_FFMPEG", "Audio", "ServiceError", "Upload", "open_audio", "pyav_available",
           "read_upload", "sniff"]  # fmt: skip

#: Room allowed for the multipart envelope (boundaries, part headers, small form fields).
MULTIPART_OVERHEAD = 64 * 1024


class ServiceError(Exception):
    """An error answered as ``{"error": {"code": ..., "message": ...}}`` with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass
class Upload:
    """The audio bytes of a request, with the file name and type the client gave (if any)."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass
class Audio:
    """Audio ready for the predictor: bytes libsndfile reads, or a 16 kHz waveform (with the
    ``warnings`` its decoding gave: a file that ends early ...)."""

    source: bytes | np.ndarray
    duration: float
    format: str
    warnings: list[str] = field(default_factory=list)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def _too_large(max_bytes: int) -> ServiceError:
    return ServiceError(
        413, "too_large", f"upload larger than the {_mb(max_bytes)} limit of this server"
    )


async def read_upload(headers: Any, stream: AsyncIterator[bytes], max_bytes: int) -> Upload:
    """The audio of a request: the ``file`` field of a ``multipart/form-data`` body, or else the
    whole body (any content type). Refuses (413) as soon as the declared or counted size passes
    ``max_bytes`` (plus :data:`MULTIPART_OVERHEAD` for a multipart envelope)."""
    ctype = headers.get("content-type") or ""
    multipart = ctype.lower().startswith("multipart/form-data")
    limit = max_bytes + (MULTIPART_OVERHEAD if multipart else 0)
    declared = headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise ServiceError(400, "bad_request", "invalid Content-Length header") from None
        if n > limit:
            raise _too_large(max_bytes)
    if multipart:
        return await _read_multipart(ctype, stream, limit, max_bytes)
    buf = bytearray()
    async for chunk in stream:
        buf += chunk
        if len(buf) > limit:
            raise _too_large(max_bytes)
    if not buf:
        raise ServiceError(400, "empty", "empty upload: the request carried no audio (0 bytes)")
    return Upload(bytes(buf), None, ctype or None)


def _multipart_parser() -> tuple[Any, Any, type[Exception]]:
    try:
        from python_multipart.exceptions import MultipartParseError
        from python_multipart.multipart import MultipartParser, parse_options_header
    except ImportError:  # python-multipart < 0.0.13
        from multipart.exceptions import MultipartParseError  # type: ignore[no-redef]
        from multipart.multipart import (  # type: ignore[no-redef]
            MultipartParser,
            parse_options_header,
        )
    return MultipartParser, parse_options_header, MultipartParseError


async def _read_multipart(
    ctype: str, stream: AsyncIterator[bytes], limit: int, max_bytes: int
) -> Upload:
    MultipartParser, parse_options_header, ParseError = _multipart_parser()
    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ServiceError(400, "bad_multipart", "multipart/form-data without a boundary")

    parts: list[dict[str, Any]] = []
    state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "ended": False}

    def on_part_begin() -> None:
        state["headers"] = {}
        parts.append({"name": None, "filename": None, "type": None, "data": bytearray()})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        part = parts[-1]
        _, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        part["name"] = opts.get(b"name", b"").decode("utf-8", "replace")
        fn = opts.get(b"filename")
        part["filename"] = None if fn is None else fn.decode("utf-8", "replace")
        part["type"] = state["headers"].get(b"content-type", b"").decode("latin-1") or None
        # keep the bytes of file parts only; other fields are small and ignored
        part["keep"] = part["name"] == "file" or part["filename"] is not None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        if part.get("keep"):
            part["data"] += data[start:end]
            if len(part["data"]) > max_bytes:
                raise _too_large(max_bytes)

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_end": on_end,
        },
    )
    total = 0
    try:
        async for chunk in stream:
            total += len(chunk)
            if total > limit:
                raise _too_large(max_bytes)
            parser.write(chunk)
        if total == 0:
            raise ServiceError(400, "empty", "empty upload: the request carried no audio (0 bytes)")
        parser.finalize()
    except ParseError as exc:
        raise ServiceError(400, "bad_multipart", f"malformed multipart body ({exc})") from None
    if not state["ended"]:
        raise ServiceError(400, "bad_multipart", "multipart body ends before its closing boundary")
    chosen = next((p for p in parts if p["name"] == "file"), None)
    chosen = chosen or next((p for p in parts if p["filename"] is not None), None)
    if chosen is None:
        raise ServiceError(
            400, "missing_file", "multipart upload without a file: send the audio in the field "
            "'file' (or send the audio itself as the request body)",
        )  # fmt: skip
    if not chosen["data"]:
        raise ServiceError(400, "empty", "empty upload: the file sent is 0 bytes")
    return Upload(bytes(chosen["data"]), chosen["filename"], chosen["type"])


# ------------------------------------------------------------------------------ audio checks

#: The formats the errors suggest.
_SEND = "send WAV, FLAC, Ogg (Vorbis/Opus), MP3, AIFF, M4A/AAC or WebM"


def open_audio(data: bytes, max_seconds: float) -> Audio:
    """Check uploaded bytes and make them ready for the predictor (runs in a worker thread),
    through the package's one decoding path (:func:`emovox.audio.decode.open_reader`).

    What libsndfile reads (WAV, FLAC, Ogg Vorbis/Opus, AIFF, MP3, ...) is checked from its
    header, so the duration is known before anything is decoded, and left as bytes for the
    predictor; other containers (M4A/AAC, WebM, MP4 ...) are decoded here with PyAV, stopping
    as soon as they pass ``max_seconds``. Raises :class:`ServiceError`: 413 too long, 415 not
    audio, 422 corrupt or empty audio.
    """
    kind = sniff(data[:HEAD_BYTES])
    if kind in NEEDS_FFMPEG and not pyav_available():
        raise ServiceError(
            415, "unsupported_format", f"{kind} audio needs FFmpeg on the server "
            "(pip install av); send WAV, FLAC, Ogg (Vorbis/Opus), MP3 or AIFF instead",
        )  # fmt: skip
    try:
        reader = open_reader(data, "<upload>")
    except AudioError as exc:
        if kind is None:
            raise ServiceError(415, "not_audio", f"{exc.reason}; {_SEND}") from None
        raise ServiceError(422, "corrupt_audio", exc.reason) from None
    try:
        fmt, frames, rate = reader.format, reader.frames, reader.samplerate
        pyav = not isinstance(reader, SndReader)
    finally:
        reader.close()
    if not pyav:
        if rate <= 0 or not frames:
            raise ServiceError(
                422, "corrupt_audio", f"{fmt} audio without samples: truncated or empty"
            )
        _check_duration(frames / rate, max_seconds)
        return Audio(data, frames / rate, fmt)
    try:
        decoded = decode_with_info(data, max_seconds=max_seconds, name="<upload>")
    except AudioTooLong as exc:
        _check_duration(exc.seconds, max_seconds)
        raise  # not reached: _check_duration raised
    except AudioError as exc:
        raise ServiceError(422, "corrupt_audio", exc.reason) from None
    y = decoded.samples
    return Audio(y, len(y) / SAMPLE_RATE, decoded.format, decoded.warnings)


def _check_duration(seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise ServiceError(
            413, "too_long",
            f"recording too long: {seconds:.1f} s exceeds the {max_seconds:g} s limit of this "
            "server",
        )  # fmt: skip
