"""Uploads for the web service: read a request body under a size limit, take the audio out of a
multipart form in memory, sniff the format from content and check the duration before decoding.

Nothing here touches the disk: the body is counted as it arrives (an oversized upload is refused
before it has all been read), multipart forms are parsed from memory with python-multipart's
streaming parser (not Starlette's, which spools large files to a temporary file), and audio is
opened from :class:`io.BytesIO`.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from emovox.audio import SAMPLE_RATE
from emovox.audio.stream import clean_reason

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
    """Audio ready for the predictor: bytes libsndfile reads, or a 16 kHz waveform."""

    source: bytes | np.ndarray
    duration: float
    format: str


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


# ------------------------------------------------------------------------------ format sniffing

#: (offset, magic bytes, name) of audio containers, to tell corrupt audio from non-audio.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "WAV"),
    (0, b"RIFX", "WAV"),
    (0, b"RF64", "WAV"),
    (0, b"BW64", "WAV"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "Ogg"),
    (0, b"FORM", "AIFF"),
    (0, b"ID3", "MP3"),
    (0, b"caff", "CAF"),
    (0, b".snd", "AU"),
    (0, b"#!AMR", "AMR"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (4, b"ftyp", "MP4/M4A"),
    (0, b"\x30\x26\xb2\x75", "WMA/ASF"),
)
#: Containers libsndfile does not read, with the FFmpeg demuxer PyAV opens them with (only
#: these: FFmpeg never probes unknown content, so playlist-style demuxers that fetch other files
#: or URLs are never reached).
NEEDS_FFMPEG = {"WebM/Matroska": "matroska", "MP4/M4A": "mp4", "WMA/ASF": "asf", "AMR": "amr",
                "AAC": "aac"}  # fmt: skip


def sniff(data: bytes) -> str | None:
    """The container named by the first bytes, or None when they look like no audio format."""
    for offset, magic, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0 and (data[1] & 0x06):
        return "MP3"  # an MPEG audio frame header (layer bits set)
    if len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xF6) == 0xF0:
        return "AAC"  # ADTS
    return None


def pyav_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("av") is not None


def open_audio(data: bytes, max_seconds: float) -> Audio:
    """Check uploaded bytes and make them ready for the predictor (runs in a worker thread).

    libsndfile reads the header from memory first (WAV, FLAC, Ogg Vorbis/Opus, AIFF, MP3, ...):
    the duration is known before anything is decoded. Other containers (WebM, MP4) are decoded
    with PyAV when installed, stopping as soon as they pass ``max_seconds``. Raises
    :class:`ServiceError`: 413 too long, 415 not audio, 422 corrupt or empty audio.
    """
    kind = sniff(data)
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = clean_reason(str(exc))
        if kind is None:
            raise ServiceError(
                415, "not_audio", "not a recognised audio format (the content is checked, not "
                "the file name); send WAV, FLAC, Ogg (Vorbis/Opus), MP3 or AIFF",
            ) from None  # fmt: skip
        if kind in NEEDS_FFMPEG:
            if not pyav_available():
                raise ServiceError(
                    415, "unsupported_format", f"{kind} audio needs FFmpeg on the server "
                    "(pip install av); send WAV, FLAC, Ogg (Vorbis/Opus), MP3 or AIFF instead",
                ) from None  # fmt: skip
            try:
                return _decode_pyav(data, NEEDS_FFMPEG[kind], max_seconds)
            except ServiceError:
                raise
            except Exception as av_exc:  # PyAV raises many kinds (av.error.*, ValueError, ...)
                reason = str(av_exc)
        raise ServiceError(
            422, "corrupt_audio", f"{kind} data that cannot be decoded: truncated or corrupt "
            f"({reason})",
        ) from None  # fmt: skip
    if info.samplerate <= 0 or info.frames <= 0:
        raise ServiceError(
            422, "corrupt_audio", f"{info.format} audio without samples: truncated or empty"
        )
    duration = info.frames / info.samplerate
    _check_duration(duration, max_seconds)
    return Audio(data, duration, str(info.format))


def _check_duration(seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise ServiceError(
            413, "too_long",
            f"recording too long: {seconds:.1f} s exceeds the {max_seconds:g} s limit of this "
            "server",
        )  # fmt: skip


def _decode_pyav(data: bytes, demuxer: str, max_seconds: float) -> Audio:
    """Decode audio in the container ``demuxer`` from memory to 16 kHz mono with PyAV (FFmpeg),
    stopping as soon as it passes ``max_seconds``."""
    import av

    parts: list[np.ndarray] = []
    n = 0
    with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
        streams = container.streams.audio
        if not streams:
            raise ServiceError(422, "corrupt_audio", "the container holds no audio stream")
        fmt = container.format.name
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in container.decode(streams[0]):
            for out in resampler.resample(frame):
                a = out.to_ndarray().reshape(-1)
                parts.append(a)
                n += len(a)
            _check_duration(n / SAMPLE_RATE, max_seconds)
        for out in resampler.resample(None):
            parts.append(out.to_ndarray().reshape(-1))
    y = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if y.size == 0:
        raise ServiceError(422, "corrupt_audio", f"{fmt} audio without samples")
    _check_duration(len(y) / SAMPLE_RATE, max_seconds)
    return Audio(y, len(y) / SAMPLE_RATE, fmt.split(",")[0].upper())
