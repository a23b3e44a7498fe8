"""The web service (emovox.service): API happy paths, every kind of bad input, limits, nothing on
disk, concurrency (inference off the event loop), and the page's assets."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import os
import re
import socket
import tempfile
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the web service needs: pip install 'emovox[serve]'")
pytest.importorskip("httpx", reason="the service tests need httpx")

import httpx  # noqa: E402

with warnings.catch_warnings():  # Starlette >= 1.x would rather have httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from emovox.inference.random_bundle import make_random_bundle  # noqa: E402
from emovox.service import inputs  # noqa: E402
from emovox.service.app import create_app, serve_in_background  # noqa: E402
from emovox.service.inputs import ServiceError, read_upload  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LABELS = ("neutral", "happy", "sad", "angry")
SR = 16000
BACKEND = "torch" if importlib.util.find_spec("torch") else "numpy"


def speechy(seconds: float = 1.5, sr: int = SR, f0: float = 180.0, seed: int = 0) -> np.ndarray:
    """A harmonic, syllable-like tone (loud enough, not silent)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 + 30 * np.sin(2 * np.pi * 2 * t)) / sr
    y = sum(np.sin(h * phase) / h for h in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    y = 0.3 * y / np.max(np.abs(y)) + 0.002 * rng.standard_normal(len(t))
    return y.astype(np.float32)


def encode(y: np.ndarray, fmt: str = "WAV", subtype: str | None = None, sr: int = SR) -> bytes:
    b = io.BytesIO()
    sf.write(b, y, sr, format=fmt, subtype=subtype)
    return b.getvalue()


def with_pauses(n: int = 8, sr: int = SR) -> np.ndarray:
    """n two-second 'utterances' separated by one-second pauses (~24 s: the long path)."""
    gap = np.zeros(sr, np.float32)
    parts = []
    for i in range(n):
        parts += [speechy(2.0, sr, 150 + 40 * (i % 4), seed=i), gap]
    return np.concatenate(parts)


class SlowRecognizer:
    """A fake model that takes ``delay`` seconds per call (releasing the GIL, like real
    inference) and records how many calls overlap."""

    labels = LABELS
    sample_rate = SR
    threshold = 0.5
    card = {"name": "slow-fake"}

    def __init__(self, delay: float = 0.4) -> None:
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def predict_proba(self, wavs):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.active -= 1
        return np.tile([0.1, 0.6, 0.2, 0.1], (len(wavs), 1))


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_random_bundle(tmp_path_factory.mktemp("svc") / "model", labels=LABELS, seed=3)


@pytest.fixture(scope="module")
def app(bundle_dir):
    return create_app(
        bundle_dir, backend=BACKEND, max_bytes=2_000_000, max_seconds=60, workers=2, vad="energy"
    )


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def wav() -> bytes:
    return encode(speechy())


def assert_error(r: httpx.Response, status: int | tuple[int, ...], code: str | None = None):
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def assert_prediction(body: dict) -> None:
    assert body["label"] in LABELS
    assert set(body["probabilities"]) == set(LABELS)
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-3
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert isinstance(body["uncertain"], bool)
    assert body["uncertain"] == (body["probabilities"][body["label"]] < body["threshold"])
    assert body["duration"] > 0
    # the test bundle has no domain score: the fields are there, empty
    assert body["out_of_domain"] is None and body["domain_score"] is None


# ------------------------------------------------------------------------------ happy paths


def test_health_and_model_card(client):
    h = client.get("/v1/health")
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "ok" and body["labels"] == list(LABELS)
    assert body["limits"] == {"max_bytes": 2_000_000, "max_seconds": 60.0, "max_pending": 256}
    card = client.get("/v1/model").json()
    assert card["name"] == "random-test-model"
    assert card["labels"] == list(LABELS) and 0 < card["threshold"] <= 1


def test_predict_multipart_and_raw_body_agree_with_the_python_api(client, wav, bundle_dir):
    import emovox

    r = client.post("/v1/predict", files={"file": ("clip.wav", wav, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert_prediction(body)
    assert body["filename"] == "clip.wav" and body["format"] == "WAV"
    assert abs(body["duration"] - 1.5) < 1e-3 and "segments" not in body
    for ctype in ("application/octet-stream", "audio/wav", "text/plain", None):
        headers = {"content-type": ctype} if ctype else {}
        raw = client.post("/v1/predict", content=wav, headers=headers)
        assert raw.status_code == 200, raw.text
        assert raw.json()["probabilities"] == body["probabilities"]
    direct = emovox.load(bundle_dir, backend=BACKEND, vad="energy").predict(wav)  # as the app
    assert direct.label == body["label"] and direct.probabilities == body["probabilities"]


def test_format_is_sniffed_from_content_not_the_name(client):
    flac = encode(speechy(seed=1), "FLAC")
    r = client.post("/v1/predict", files={"file": ("song.mp3", flac, "audio/mpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["format"] == "FLAC"
    r = client.post("/v1/predict", files={"file": ("notes.txt", b"just text", "audio/wav")})
    assert_error(r, 415, "not_audio")


def test_ogg_opus_as_firefox_records_it(client):
    r = client.post("/v1/predict", content=encode(speechy(2.0, 48000), "OGG", "OPUS", 48000))
    assert r.status_code == 200, r.text
    assert r.json()["format"] == "OGG"


def test_other_fields_are_ignored_and_any_file_field_is_taken(client, wav):
    r = client.post("/v1/predict", data={"note": "hi"}, files={"file": ("a.wav", wav)})
    assert r.status_code == 200
    r = client.post("/v1/predict", files={"audio": ("b.wav", wav)})  # a file under another name
    assert r.status_code == 200 and r.json()["filename"] == "b.wav"


def test_long_recording_gets_a_timeline(client):
    r = client.post("/v1/predict", content=encode(with_pauses(), "FLAC"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert_prediction(body)
    assert body["duration"] == pytest.approx(24.0, abs=0.01)
    segs = body["segments"]
    assert len(segs) >= 2
    for s in segs:
        assert 0 <= s["start"] < s["end"] <= body["duration"] + 0.01
        assert s["label"] in LABELS and set(s["probabilities"]) == set(LABELS)


def _webm_opus(seconds: float = 2.0) -> bytes:
    import av

    buf = io.BytesIO()
    y = speechy(seconds, 48000)
    with av.open(buf, "w", format="webm") as c:
        stream = c.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        for i in range(0, len(y), 960):
            frame = av.AudioFrame.from_ndarray(y[None, i : i + 960], format="flt", layout="mono")
            frame.sample_rate = 48000
            for p in stream.encode(frame):
                c.mux(p)
        for p in stream.encode(None):
            c.mux(p)
    return buf.getvalue()


@pytest.mark.skipif(not inputs.pyav_available(), reason="PyAV (pip install av) not installed")
def test_webm_as_chrome_records_it_is_decoded_with_pyav(client, app, monkeypatch):
    webm = _webm_opus()
    r = client.post("/v1/predict", files={"file": ("recording.webm", webm, "audio/webm")})
    assert r.status_code == 200, r.text
    assert r.json()["duration"] == pytest.approx(2.0, abs=0.05)
    assert_error(client.post("/v1/predict", content=webm[:40]), 422, "corrupt_audio")
    monkeypatch.setattr(app.state.service, "max_seconds", 1.0)
    assert_error(client.post("/v1/predict", content=webm), 413, "too_long")


def test_decode_warnings_are_in_the_response(client, wav):
    cut = wav[: 44 + (len(wav) - 44) * 2 // 3]  # 1.0 of 1.5 s, the header unchanged
    r = client.post("/v1/predict", content=cut)
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == ["file ends early: 1.00 of 1.50 s read"]
    assert r.json()["label"] in LABELS
    assert client.post("/v1/predict", content=wav).json()["warnings"] == []
    if inputs.pyav_available():  # decoded by the upload checks, not by the recognizer
        webm = _webm_opus(2.0)
        r = client.post("/v1/predict", content=webm[: len(webm) // 2])
        assert r.status_code == 200, r.text
        (w,) = r.json()["warnings"]
        assert re.fullmatch(r"file ends early: 0\.9\d of 2\.0\d s read", w), w  # Opus pads
    spec = client.get("/openapi.json").json()["components"]["schemas"]["PredictionOut"]
    assert spec["properties"]["warnings"]["type"] == "array"


def test_webm_without_pyav_is_a_clear_415(client, monkeypatch):
    monkeypatch.setattr(inputs, "pyav_available", lambda: False)
    webm = b"\x1a\x45\xdf\xa3" + bytes(200)
    err = assert_error(client.post("/v1/predict", content=webm), 415, "unsupported_format")
    assert "pip install av" in err["message"]


# ------------------------------------------------------------------------------ bad input


def test_empty_input_is_400(client):
    assert_error(client.post("/v1/predict", content=b""), 400, "empty")
    assert_error(client.post("/v1/predict", files={"file": ("a.wav", b"")}), 400, "empty")


def test_multipart_problems_are_400(client):
    err = assert_error(client.post("/v1/predict", files={"note": (None, b"x")}), 400)
    assert err["code"] == "missing_file" and "'file'" in err["message"]
    h = {"content-type": "multipart/form-data; boundary=xyz"}
    assert_error(client.post("/v1/predict", content=b"--xyz\r\nnot a part", headers=h), 400,
                 "bad_multipart")  # fmt: skip
    h = {"content-type": "multipart/form-data"}
    assert_error(client.post("/v1/predict", content=b"abc", headers=h), 400, "bad_multipart")


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is text and not audio",
        b'{"json": true}',
        b"\x89PNG\r\n\x1a\n" + bytes(300),
        bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
    ],
    ids=["text", "json", "png", "random-bytes"],
)
def test_non_audio_is_415(client, data):
    assert_error(client.post("/v1/predict", content=data), 415, "not_audio")


@pytest.mark.parametrize(
    "fmt, subtype, cut",
    [
        ("WAV", None, 20),  # inside the header
        ("WAV", None, 44),  # header only, no samples
        ("FLAC", None, 60),  # inside the header
        ("FLAC", None, 0.5),  # half the frames: decoding loses sync
        ("OGG", "VORBIS", 300),  # inside the codec headers
        ("OGG", "OPUS", 200),
        ("MP3", None, 200),
    ],
)
def test_truncated_or_corrupt_audio_is_422(client, fmt, subtype, cut):
    data = encode(speechy(3.0), fmt, subtype)
    data = data[: int(len(data) * cut) if isinstance(cut, float) else cut]
    err = assert_error(client.post("/v1/predict", content=data), (400, 422))
    assert err["code"] in ("corrupt_audio", "unusable_audio")


def test_garbage_after_a_valid_header_is_422(client):
    data = bytearray(encode(speechy(2.0), "FLAC"))
    data[200:] = bytes(len(data) - 200)
    assert_error(client.post("/v1/predict", content=bytes(data)), 422)


def test_silent_and_too_short_audio_are_422(client):
    err = assert_error(client.post("/v1/predict", content=encode(np.zeros(SR))), 422)
    assert err["code"] == "unusable_audio" and "silent" in err["message"]
    err = assert_error(client.post("/v1/predict", content=encode(speechy(0.05))), 422)
    assert "too short" in err["message"]


def test_oversized_upload_is_413_from_content_length_alone(client):
    # the declared length decides before any byte is read
    r = client.post("/v1/predict", content=b"RIFF", headers={"content-length": str(50_000_000)})
    assert_error(r, 413, "too_large")
    big = encode(speechy(70.0))  # 2.2 MB > 2 MB
    assert_error(client.post("/v1/predict", content=big), 413, "too_large")
    assert_error(client.post("/v1/predict", files={"file": ("big.wav", big)}), 413, "too_large")


def test_oversized_upload_is_refused_while_streaming():
    """Without a Content-Length, counting stops reading as soon as the limit is passed."""
    consumed = []

    async def stream():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for i in range(100):
            consumed.append(i)
            yield bytes(1000)

    async def run(headers):
        with pytest.raises(ServiceError) as e:
            await read_upload(headers, stream(), max_bytes=5000)
        return e.value

    err = asyncio.run(run({}))  # 5 chunks + the part header are within the limit
    assert err.status == 413 and err.code == "too_large" and len(consumed) == 5
    consumed.clear()
    ctype = {"content-type": "multipart/form-data; boundary=b"}
    err = asyncio.run(run(ctype))  # the file part passes the limit: refused there
    assert err.status == 413 and err.code == "too_large" and len(consumed) == 6


def test_oversized_upload_is_refused_before_the_body_ends_on_a_live_server(bundle_dir):
    """A real client streaming a chunked body gets 413 while it is still sending."""
    app = create_app(bundle_dir, backend=BACKEND, max_bytes=100_000, workers=1)
    with serve_in_background(app) as url:
        u = urlparse(url)
        with socket.create_connection((u.hostname, u.port), timeout=10) as s:
            s.sendall(
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n"
            )
            chunk = bytes(32 * 1024)
            for _ in range(5):  # 160 KB of a body that never ends
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            reply = b""
            while b"too_large" not in reply and (data := s.recv(65536)):
                reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"too_large" in reply


def test_an_upload_dribbling_in_gets_408(wav):
    app = create_app(recognizer=SlowRecognizer(0.0), workers=1, read_timeout=0.3, vad="energy")

    async def slow_body():
        for i in range(0, len(wav), 1000):
            yield wav[i : i + 1000]
            await asyncio.sleep(0.1)

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
            return await c.post("/v1/predict", content=slow_body())

    assert_error(asyncio.run(run()), 408, "timeout")
    assert app.state.service.pending == 0


def test_too_long_recording_is_413_before_decoding(bundle_dir, monkeypatch):
    app = create_app(bundle_dir, backend=BACKEND, max_seconds=2.0, workers=1)
    decoded = []
    monkeypatch.setattr(
        "emovox.inference.inputs.decode_with_info", lambda *a, **k: decoded.append(1)
    )
    monkeypatch.setattr("emovox.service.inputs.decode_with_info", lambda *a, **k: decoded.append(1))
    with TestClient(app) as c:
        err = assert_error(c.post("/v1/predict", content=encode(speechy(3.0), "FLAC")), 413)
    assert err["code"] == "too_long" and "2 s" in err["message"]
    assert not decoded


def test_unknown_routes_and_methods_are_json_errors(client):
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.get("/v1/predict"), 405, "method_not_allowed")


def test_nothing_is_written_to_disk(client, wav, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    for var in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.setenv(var, str(tmp))
    calls = []
    for fn in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile"):
        orig = getattr(tempfile, fn)

        def spy(*a, _orig=orig, _fn=fn, **k):
            calls.append(_fn)
            return _orig(*a, **k)

        monkeypatch.setattr(tempfile, fn, spy)
    big = encode(speechy(30.0))  # ~1 MB: Starlette's form parser would spool this to disk
    uploads = [
        {"files": {"file": ("a.wav", wav)}},
        {"files": {"file": ("big.wav", big)}},
        {"content": big},
        {"content": b"not audio at all"},
        {"content": wav[:30]},
        {"content": encode(speechy(2.0), "FLAC")[:5000]},
        {"content": encode(np.zeros(SR))},
        {"content": b""},
    ]
    statuses = [client.post("/v1/predict", **kw).status_code for kw in uploads]
    assert statuses[:3] == [200, 200, 200] and all(s >= 400 for s in statuses[3:])
    assert list(tmp.iterdir()) == [] and calls == []


# ------------------------------------------------------------------------------ load


async def _gather_with_health(app, n: int, body: bytes) -> tuple[list, list[float], float]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc", timeout=60) as c:
        health_times: list[float] = []

        async def probe():
            await asyncio.sleep(0.1)
            for _ in range(5):
                t = time.perf_counter()
                r = await c.get("/v1/health")
                assert r.status_code == 200
                health_times.append(time.perf_counter() - t)
                await asyncio.sleep(0.05)

        t0 = time.perf_counter()
        results = await asyncio.gather(
            *[c.post("/v1/predict", content=body) for _ in range(n)], probe()
        )
        return list(results[:n]), health_times, time.perf_counter() - t0


def test_concurrent_requests_run_in_parallel_and_health_stays_responsive(wav):
    rec = SlowRecognizer(delay=0.8)
    app = create_app(recognizer=rec, workers=4, vad="energy")
    responses, health, wall = asyncio.run(_gather_with_health(app, 4, wav))
    assert [r.status_code for r in responses] == [200] * 4
    assert all(r.json()["label"] == "happy" for r in responses)
    assert rec.max_active == 4  # four inferences at once, none blocking another
    assert wall < 4 * 0.8  # not one after the other
    assert max(health) < 0.4  # the event loop is free while the model works


def test_requests_beyond_the_workers_wait_their_turn(wav):
    rec = SlowRecognizer(delay=0.2)
    app = create_app(recognizer=rec, workers=1, vad="energy")
    responses, _, wall = asyncio.run(_gather_with_health(app, 5, wav))
    assert [r.status_code for r in responses] == [200] * 5  # queued, none refused
    assert rec.max_active == 1 and wall >= 5 * 0.2


def test_too_many_pending_requests_get_503(wav):
    app = create_app(recognizer=SlowRecognizer(delay=0.3), workers=1, max_pending=2, vad="energy")
    responses, _, _ = asyncio.run(_gather_with_health(app, 4, wav))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 503, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.json()["error"]["code"] == "busy" and busy.headers["retry-after"] == "1"


def test_real_model_is_thread_safe_under_concurrent_requests(app):
    clips = [encode(speechy(1.5, seed=i, f0=150 + 50 * i)) for i in range(3)]

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc", timeout=120) as c:
            return await asyncio.gather(
                *[c.post("/v1/predict", content=clips[i % 3]) for i in range(9)]
            )

    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses)
    for i in range(3):  # the same clip gets the same answer whichever thread ran it
        probs = [responses[j].json()["probabilities"] for j in range(i, 9, 3)]
        assert all(p == probs[0] for p in probs)


# ------------------------------------------------------------------------------ page, docs, CLI


def test_page_and_assets_are_served_locally(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    html = r.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in html
        a = client.get(asset)
        assert a.status_code == 200 and a.headers["x-content-type-options"] == "nosniff"
        assert "http://" not in a.text and "https://" not in a.text  # no CDN, no web fonts
    assert "https://" not in html.replace('href="/docs"', "")
    ids = ("file-input", "drop-zone", "record-button", "result-label", "result-uncertain",
           "result-bars", "timeline", "status", "error", "transcribe", "result-text")  # fmt: skip
    for element_id in ids:
        assert f'id="{element_id}"' in html


def test_model_card_sends_the_plots_palette(client):
    from emovox.inference.plots import EMOTION_COLORS

    card = client.get("/v1/model").json()
    assert card["colors"] == {lab: EMOTION_COLORS[lab] for lab in LABELS}


def test_labels_outside_the_palette_get_distinct_spare_colours(monkeypatch):
    import sys

    from emovox.inference.plots import EMOTION_COLORS, SPARE_COLORS, label_colors

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the palette needs no matplotlib
    fake = SlowRecognizer()
    fake.labels = ("happy", "frustrated", "excited")
    with TestClient(create_app(recognizer=fake, workers=1)) as c:
        colors = c.get("/v1/model").json()["colors"]
    assert colors == label_colors(fake.labels)
    assert colors["happy"] == EMOTION_COLORS["happy"]
    assert colors["frustrated"] == SPARE_COLORS[0] != colors["excited"] == SPARE_COLORS[1]


def test_page_script_has_no_palette_of_its_own():
    """The page takes its colours from ``/v1/model``: no emotion colour table in the JS."""
    import re

    from emovox.inference.plots import EMOTION_COLORS
    from emovox.service.app import STATIC_DIR

    js = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    assert set(re.findall(r"#[0-9a-fA-F]{3,8}\b", js)) == {"#888888"}  # the one fallback grey
    assert not re.search(r"\b(rgba?|hsla?)\(", js)
    assert [lab for lab in EMOTION_COLORS if lab in js] == []
    assert "card.colors" in js


def test_openapi_documents_the_upload(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "file" in body["multipart/form-data"]["schema"]["properties"]
    responses = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422"} <= set(responses)
    assert client.get("/docs").status_code == 200


def test_serve_command(tmp_path):
    from typer.testing import CliRunner

    from emovox.cli import app as cli

    runner = CliRunner()
    help_text = runner.invoke(cli, ["serve", "--help"], terminal_width=200).output
    for opt in ("--host", "--port", "--model", "--max-mb", "--max-seconds", "--workers-threads"):
        assert opt in help_text
    r = runner.invoke(cli, ["serve", "--model", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "cannot load the model" in r.output
    r = runner.invoke(cli, ["serve", "--model", str(tmp_path), "--max-mb", "0"])
    assert r.exit_code == 2
