"""The web service: a FastAPI app with a REST API and a browser page.

``POST /v1/predict`` (multipart field ``file``, or the audio as the raw body), ``GET /v1/health``,
``GET /v1/model`` (the model card), OpenAPI docs at ``/docs``, and the page at ``/``.

Safe under bad input and load: uploads are counted as they arrive and refused past the size limit;
the format is sniffed from content; the duration is read from the header before decoding; nothing
is written to disk; every failure is a JSON ``{"error": {"code", "message"}}`` with a 4xx status.
Decoding and inference run in a bounded pool of worker threads (one predictor each, sharing the
model), so the event loop and ``/v1/health`` stay responsive; requests beyond the pool wait their
turn, and only past ``max_pending`` requests in the server at once is one refused (503).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emovox import __version__
from emovox.audio import SAMPLE_RATE, AudioError
from emovox.audio.segment import LONG_SECONDS
from emovox.inference.adapt import MissingAdaptedHead
from emovox.inference.plots import label_colors
from emovox.inference.recognizer import Recognizer
from emovox.inference.timeline import RecognizerLike
from emovox.service.inputs import ServiceError, Upload, open_audio, read_upload

log = logging.getLogger("emovox.service")

DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_SECONDS = 600.0
DEFAULT_MAX_PENDING = 256
DEFAULT_READ_TIMEOUT = 120.0
STATIC_DIR = Path(__file__).resolve().parent / "static"

_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def default_workers() -> int:
    """Inference threads by default: the CPU count, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


# ------------------------------------------------------------------------------ schemas (docs)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class SegmentOut(BaseModel):
    start: float
    end: float
    label: str
    probabilities: dict[str, float]
    uncertain: bool
    speech: float | None = None  # seconds of speech the speech gate measured
    text: str | None = None  # what was said in the segment (?transcribe=true)


class PredictionOut(BaseModel):
    label: str | None  # None when no_speech
    probabilities: dict[str, float]  # empty when no_speech
    uncertain: bool
    duration: float
    threshold: float
    out_of_domain: bool | None = None  # audio unlike the training data; None: no domain score
    domain_score: float | None = None  # distance from the training data (about 1: typical)
    format: str
    no_speech: bool = False  # too little speech for an emotion (noise, music, ...)
    speech_seconds: float | None = None
    speech_gate: str | None = None  # the gate's detector (silero, energy); None: gate off
    filename: str | None = None
    segments: list[SegmentOut] | None = None
    text: str | None = None  # what was said (?transcribe=true; English only)
    text_warning: str | None = None  # e.g. probably not English
    warnings: list[str] = []  # decoding problems: "file ends early: 1.42 of 2.37 s read", ...


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "empty upload, malformed multipart, no `file` field"},
    413: {"model": ErrorOut, "description": "upload over the size limit, or audio too long"},
    415: {"model": ErrorOut, "description": "not audio, or a format the server cannot decode"},
    422: {"model": ErrorOut, "description": "corrupt or truncated audio; silent or too short"},
    408: {"model": ErrorOut, "description": "the upload took longer than the read timeout"},
    503: {"model": ErrorOut, "description": "too many requests in the server at once"},
    501: {"model": ErrorOut, "description": "transcribe=true but speech to text is not installed"},
}

_BODY = {
    "parameters": [
        {
            "name": "transcribe",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean", "default": False},
            "description": "Also what was said (English, Whisper tiny.en): `text`, and each "
            "segment's `text`.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


# ------------------------------------------------------------------------------ the service


class Service:
    """The model, a pool of predictors (one per worker thread) and the limits."""

    def __init__(
        self,
        recognizer: RecognizerLike,
        *,
        max_bytes: int,
        max_seconds: float,
        workers: int,
        max_pending: int,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        long_seconds: float = LONG_SECONDS,
        vad: str = "auto",
        speech_gate: bool = True,
    ) -> None:
        if max_bytes <= 0 or max_seconds <= 0:
            raise ValueError("max_bytes and max_seconds must be positive")
        if workers < 1 or max_pending < 1:
            raise ValueError("workers and max_pending must be at least 1")
        self.recognizer = recognizer
        self.max_bytes = int(max_bytes)
        self.max_seconds = float(max_seconds)
        self.workers = int(workers)
        self.max_pending = int(max_pending)
        self.read_timeout = float(read_timeout)
        # a Recognizer keeps a stateful speech detector: one per thread, the model is shared
        self._pool: queue.Queue[Recognizer] = queue.Queue()
        for _ in range(self.workers):
            self._pool.put(
                Recognizer(recognizer, long_seconds=long_seconds, vad=vad, speech_gate=speech_gate)
            )
        self._limiter: anyio.CapacityLimiter | None = None
        self.pending = 0  # requests being read, waiting or running (event-loop thread only)
        self.served = 0

    @property
    def labels(self) -> list[str]:
        return list(self.recognizer.labels)

    @property
    def card(self) -> dict[str, Any]:
        return dict(getattr(self.recognizer, "card", {}) or {})

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # made in the event loop, on first use
            self._limiter = anyio.CapacityLimiter(self.workers)
        return self._limiter

    async def predict(self, request: Request) -> dict[str, Any]:
        """Read, check and predict one upload (the blocking part in a worker thread)."""
        if self.pending >= self.max_pending:
            raise ServiceError(
                503, "busy", f"the server is handling {self.pending} requests; try again shortly",
                headers={"Retry-After": "1"},
            )  # fmt: skip
        transcribe = query_flag(request.query_params.get("transcribe"), "transcribe")
        adapt = adapt_option(request.query_params.get("adapt"))
        self.pending += 1
        try:
            try:
                with anyio.fail_after(self.read_timeout):  # a client dribbling its upload
                    upload = await read_upload(request.headers, request.stream(), self.max_bytes)
            except TimeoutError:
                raise ServiceError(
                    408, "timeout", f"the upload did not arrive within {self.read_timeout:g} s"
                ) from None
            except ClientDisconnect:
                raise ServiceError(400, "disconnected", "the client went away") from None
            out = await anyio.to_thread.run_sync(
                self._run, upload, transcribe, adapt, limiter=self.limiter
            )
            self.served += 1
            return out
        finally:
            self.pending -= 1

    def _run(
        self, upload: Upload, transcribe: bool = False, adapt: str | None = None
    ) -> dict[str, Any]:
        audio = open_audio(upload.data, self.max_seconds)
        predictor = self._pool.get()
        try:
            sr = SAMPLE_RATE if isinstance(audio.source, np.ndarray) else None
            p = predictor.predict(audio.source, sr=sr, transcribe=transcribe, adapt=adapt)
        except MissingAdaptedHead as exc:
            raise ServiceError(501, "adaptation_unavailable", str(exc)) from None
        except AudioError as exc:  # decodes badly past the header, or silent / too short
            code = "corrupt_audio" if "not decodable" in exc.reason else "unusable_audio"
            raise ServiceError(422, code, exc.reason) from None
        except ImportError as exc:  # transcribe=true without faster-whisper or the model
            raise ServiceError(501, "transcription_unavailable", str(exc)) from None
        finally:
            self._pool.put(predictor)
        assert not isinstance(p, list)
        out: dict[str, Any] = {
            "label": p.label,
            "probabilities": p.probabilities,
            "uncertain": p.uncertain,
            "duration": round(p.duration if p.duration is not None else audio.duration, 3),
            "threshold": float(self.recognizer.threshold),
            "out_of_domain": p.out_of_domain,
            "domain_score": None if p.domain_score is None else round(p.domain_score, 3),
            "format": audio.format,
            "no_speech": p.no_speech,
            "speech_seconds": p.speech_seconds,
            "speech_gate": p.speech_gate,
            "filename": upload.filename,
            "warnings": list(dict.fromkeys(audio.warnings + p.warnings)),  # once each, in order
            "adapted": p.adapted,
        }
        if p.adapt_note is not None:
            out["adapt_note"] = p.adapt_note
        if p.segments is not None:
            out["segments"] = p.segments
        if transcribe:
            out["text"], out["text_warning"] = p.text, p.text_warning
        return out

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "model": self.card.get("name"),
            "labels": self.labels,
            "backend": getattr(self.recognizer, "backend", None),
            "workers": self.workers,
            "running": 0 if self._limiter is None else int(self._limiter.borrowed_tokens),
            "pending": self.pending,
            "served": self.served,
            "limits": {
                "max_bytes": self.max_bytes,
                "max_seconds": self.max_seconds,
                "max_pending": self.max_pending,
            },
        }


class _SecurityHeaders:
    """ASGI middleware: ``nosniff`` everywhere, a strict CSP on the page and its assets (not on
    ``/docs``, whose Swagger UI FastAPI loads from a CDN)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                if page:
                    headers.append((b"content-security-policy", _PAGE_CSP.encode()))
                    headers.append((b"referrer-policy", b"no-referrer"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def query_flag(value: str | None, name: str) -> bool:
    """A true/false query parameter (``1``/``0``, ``yes``/``no``, ``on``/``off`` too);
    absent is false. A 400 error otherwise."""
    v = (value or "false").strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ServiceError(400, "invalid_request", f"{name} must be true or false, not {value!r}")


def adapt_option(value: str | None) -> str | None:
    """The ``adapt`` query parameter: ``recording`` (standardise over the upload's speech
    segments, :mod:`emovox.inference.adapt`) or ``none``/absent. A 400 error otherwise."""
    v = (value or "none").strip().lower()
    if v in ("none", ""):
        return None
    if v == "recording":
        return v
    raise ServiceError(400, "invalid_request", f"adapt must be recording or none, not {value!r}")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 408: "timeout", 413: "too_large"}


def create_app(
    model_path: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    *,
    workers: int | None = None,
    max_pending: int = DEFAULT_MAX_PENDING,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    vad: str = "auto",
    long_seconds: float = LONG_SECONDS,
    recognizer: RecognizerLike | None = None,
    speech_gate: bool = True,
) -> FastAPI:
    """The FastAPI app serving a model folder (``None``: the packaged default model; ``"fast"``:
    the packaged fast model).

    ``max_bytes``: largest upload; ``max_seconds``: longest recording; ``workers``: inference
    threads (default :func:`default_workers`); ``max_pending``: requests in the server at once
    before it answers 503; ``read_timeout``: seconds an upload may take to arrive (else 408);
    ``speech_gate``: audio with too little speech gets ``no_speech`` (label null), not an
    emotion. ``recognizer`` replaces loading a model (tests).
    """
    if recognizer is None:
        from emovox.inference.loading import load_engine

        recognizer = load_engine(model_path, backend)  # a bundle folder, or "fast"
    svc = Service(
        recognizer,
        max_bytes=max_bytes,
        max_seconds=max_seconds,
        workers=workers or default_workers(),
        max_pending=max_pending,
        read_timeout=read_timeout,
        long_seconds=long_seconds,
        vad=vad,
        speech_gate=speech_gate,
    )
    name = svc.card.get("name") or "model"
    app = FastAPI(
        title="emovox",
        version=__version__,
        description=f"Speech emotion recognition ({name}). Labels: {', '.join(svc.labels)}.",
    )
    app.state.service = svc
    app.add_middleware(_SecurityHeaders)
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", str(exc.errors()))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s %s failed", request.method, request.url.path)
        return _error(500, "internal_error", "the server failed on this request (see its log)")

    @app.post(
        "/v1/predict",
        response_model=None,
        responses={200: {"model": PredictionOut}, **_ERRORS},
        openapi_extra=_BODY,
        summary="Predict the emotion of a recording",
    )
    async def predict(request: Request) -> JSONResponse:
        """Upload audio as the multipart field ``file`` or as the raw request body (any content
        type; the format is sniffed from content). Recordings longer than the long-recording
        threshold (20 s) also get ``segments``: one emotion per speech segment. Audio with too
        little speech (noise, music, clicks) is answered 200 with ``no_speech`` true and
        ``label`` null. ``warnings`` lists decoding problems the audio was analysed despite (a
        file that ends early, a damaged MP3 frame). ``?transcribe=true``: also what was said
        (``text``, English only, and each segment's ``text``). ``?adapt=recording`` (a long
        upload): standardise over its speech segments and answer with the adapted head;
        ``adapted`` says whether it did (``adapt_note``: why not, e.g. too little speech)."""
        return JSONResponse(await svc.predict(request))

    @app.get("/v1/health", summary="Liveness and load")
    async def health() -> dict[str, Any]:
        return svc.health()

    @app.get("/v1/model", summary="The model card")
    async def model_card() -> dict[str, Any]:
        card = svc.card
        card.setdefault("labels", svc.labels)
        card.setdefault("threshold", float(recognizer.threshold))
        card.setdefault("backend", getattr(recognizer, "backend", None))
        card["colors"] = label_colors(svc.labels)  # the PNG plots' palette, for the page
        return card

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


@contextmanager
def serve_in_background(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread (port 0: a free one); yields the base URL."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="emovox-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
