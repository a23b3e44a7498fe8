"""The page at / in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright
against a live server on 127.0.0.1 with a random-weights model (and, for the "transcribe"
option, a stand-in for the speech-to-text model: one word per loud stretch of the audio).

Skipped when chromium or the playwright package is missing (``.ci/run`` installs both:
``apt-get install chromium`` and ``pip install playwright``; no ``playwright install``).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the web service needs: pip install 'emovox[serve]'")
pytest.importorskip("uvicorn", reason="the web service needs: pip install 'emovox[serve]'")
httpx = pytest.importorskip("httpx", reason="needs httpx (pip install 'emovox[serve]')")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)

from emovox.inference.random_bundle import make_random_bundle  # noqa: E402
from emovox.service.app import create_app, serve_in_background  # noqa: E402
from emovox.text import transcribe as tx  # noqa: E402
from emovox.text.transcribe import (  # noqa: E402
    TextSegment,
    TranscriberUnavailable,
    Transcription,
    Word,
    language_warning,
)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CHROMIUM = os.environ.get("EMOVOX_CHROMIUM", "/usr/bin/chromium")
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
    found = shutil.which("chromium")
    if found is None:
        pytest.skip(
            f"chromium is not installed ({CHROMIUM}; apt-get install chromium)",
            allow_module_level=True,
        )
    CHROMIUM = found

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_MIC = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
LABELS = ("neutral", "happy", "sad", "angry")
SR = 16000
TIMEOUT_MS = 60_000


def speechy(seconds: float, f0: float = 180.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 + 30 * np.sin(2 * np.pi * 2 * t)) / SR
    y = sum(np.sin(h * phase) / h for h in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.3 * y / np.max(np.abs(y)) + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


def with_pauses(n: int = 8) -> np.ndarray:
    """n two-second 'utterances' with one-second pauses after each (24 s: a timeline)."""
    gap = np.zeros(SR, np.float32)
    return np.concatenate([p for i in range(n) for p in (speechy(2.0, 150 + 40 * i, i), gap)])


class FakeTranscriber:
    """Stands in for Whisper tiny.en: one word (``w1``, ``w2``...) in the middle of each loud
    stretch of the audio."""

    def transcribe_samples(self, y: np.ndarray, *, offset: float = 0.0) -> Transcription:
        hop = SR // 20  # 50 ms frames
        frames = y[: len(y) // hop * hop].reshape(-1, hop)
        loud = np.sqrt((frames**2).mean(axis=1)) > 0.05
        edges = np.flatnonzero(np.diff(np.r_[0, loud.astype(int), 0]))
        segs = []
        for k, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True), start=1):
            mid = offset + (a + b) / 2 * hop / SR
            w = Word(round(mid - 0.2, 3), round(mid + 0.2, 3), f" w{k}", 0.9)
            segs.append(TextSegment(w.start, w.end, f"w{k}", (w,), -0.3, 0.01))
        lp, warning = language_warning(segs)
        return Transcription(" ".join(s.text for s in segs), segs, len(y) / SR, lp, warning)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_random_bundle(tmp_path_factory.mktemp("browser") / "model", labels=LABELS)


@pytest.fixture(scope="module")
def server(bundle):
    app = create_app(bundle, backend="numpy", workers=2, vad="energy")
    with serve_in_background(app) as url:
        yield url


@pytest.fixture(scope="module")
def text_server(bundle):
    """A server whose speech-to-text model is :class:`FakeTranscriber`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tx, "default_transcriber", FakeTranscriber)
        app = create_app(bundle, backend="numpy", workers=2, vad="energy")
        with serve_in_background(app) as url:
            yield url


@pytest.fixture(scope="module")
def playwright():
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS + FAKE_MIC)
    yield b
    b.close()


@contextmanager
def open_page(browser, server: str):
    """The page of ``server`` in a fresh context, once the model's name is shown; no errors on
    the page or its console may happen while it is open."""
    context = browser.new_context()
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    pg.goto(server + "/")
    playwright_api.expect(pg.locator("#model-name")).to_have_text(
        "random-test-model", timeout=TIMEOUT_MS
    )
    yield pg
    context.close()
    # a 4xx/5xx answer shows up as a console error for the failed fetch; anything else is a bug
    assert [p for p in problems if "status of 4" not in p and "status of 501" not in p] == []


@pytest.fixture
def page(browser, server):
    with open_page(browser, server) as pg:
        yield pg


@pytest.fixture
def text_page(browser, text_server):
    with open_page(browser, text_server) as pg:
        yield pg


def wait_done(page) -> str:
    """The page's state once the upload is answered (selector waits: the page's CSP forbids
    the string evaluation behind ``wait_for_function``)."""
    page.locator("body[data-state=done], body[data-state=error]").wait_for(timeout=TIMEOUT_MS)
    return page.locator("body").get_attribute("data-state")


def api_predict(server: str, path: Path, transcribe: bool = False) -> dict:
    params = {"transcribe": "true"} if transcribe else {}
    r = httpx.post(server + "/v1/predict", content=path.read_bytes(), params=params, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_upload_through_the_file_input_shows_the_apis_label(page, server, tmp_path):
    clip = tmp_path / "clip.wav"
    sf.write(clip, speechy(1.5), SR)
    page.set_input_files("#file-input", str(clip))
    assert wait_done(page) == "done", page.text_content("#error")
    shown = page.text_content("#result-label")
    api = api_predict(server, clip)
    assert shown in LABELS
    assert shown == api["label"]
    uncertain = page.text_content("#result-uncertain")
    assert uncertain.startswith("uncertain") == api["uncertain"]
    rows = page.locator("#result-bars li")
    assert rows.count() == len(LABELS)
    assert rows.first.get_attribute("data-label") == api["label"]  # sorted, top first
    top = 100 * api["probabilities"][api["label"]]
    assert rows.first.locator(".bar-value").text_content() == f"{top:.1f} %"
    assert page.locator("#timeline-section").is_hidden()


def test_long_recording_draws_a_timeline(page, server, tmp_path):
    y = with_pauses()
    path = tmp_path / "long.flac"
    sf.write(path, y, SR)
    page.set_input_files("#file-input", str(path))
    assert wait_done(page) == "done", page.text_content("#error")
    api = api_predict(server, path)
    assert page.text_content("#result-label") == api["label"]
    assert page.locator("#timeline-section").is_visible()
    assert page.locator("#timeline-table tbody tr").count() == len(api["segments"])
    painted = page.evaluate(
        """() => { const c = document.getElementById('timeline');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert painted > 1000


def test_drag_and_drop(page, server):
    buf = io.BytesIO()
    sf.write(buf, speechy(1.2, 260, 4), SR, format="WAV")
    b64 = base64.b64encode(buf.getvalue()).decode()
    page.evaluate(
        """(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.wav', { type: 'audio/wav' }));
        document.getElementById('drop-zone').dispatchEvent(
            new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""",
        b64,
    )
    assert wait_done(page) == "done", page.text_content("#error")
    r = httpx.post(server + "/v1/predict", content=buf.getvalue(), timeout=120).json()
    assert page.text_content("#result-label") == r["label"]
    assert page.text_content("#result-file") == "dropped.wav"


def test_a_bad_file_shows_the_servers_message(page, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("these are not sounds")
    page.set_input_files("#file-input", str(bad))
    assert wait_done(page) == "error"
    msg = page.text_content("#error")
    assert "notes.wav" in msg and "not audio: the content holds text" in msg and "415" in msg
    assert page.locator("#error").is_visible()


def rgb(hex_color: str) -> str:
    """``#rrggbb`` as the browser's computed style writes it."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_a_failed_upload_clears_the_previous_result_and_names_the_file(page, tmp_path):
    from emovox.inference.plots import EMOTION_COLORS

    y = with_pauses()
    good = tmp_path / "good.flac"
    sf.write(good, y, SR)
    page.set_input_files("#file-input", str(good))
    assert wait_done(page) == "done", page.text_content("#error")
    assert page.locator("#result-bars li").count() == len(LABELS)
    assert page.locator("#timeline-section").is_visible()
    assert page.locator("#timeline-table tbody tr").count() > 0
    swatches = page.locator("#timeline-legend .swatch")
    shown = swatches.evaluate_all("(els) => els.map((e) => getComputedStyle(e).backgroundColor)")
    assert shown == [rgb(EMOTION_COLORS[lab]) for lab in LABELS]

    bad = tmp_path / "broken take.wav"
    bad.write_text("these are not sounds")
    page.set_input_files("#file-input", str(bad))
    page.locator("body[data-state=error]").wait_for(timeout=TIMEOUT_MS)
    msg = page.text_content("#error")
    assert "broken take.wav" in msg and "not audio: the content holds text" in msg, msg
    assert page.locator("#result").is_hidden()
    assert page.locator("#result-bars li").count() == 0
    assert page.locator("#timeline-section").is_hidden()
    assert page.locator("#timeline-table tbody tr").count() == 0
    assert page.text_content("#result-label") == ""

    empty = tmp_path / "nothing.wav"  # refused in the page itself, before any upload
    empty.write_bytes(b"")
    page.set_input_files("#file-input", str(empty))
    page.locator("#error", has_text="nothing.wav").wait_for(timeout=TIMEOUT_MS)
    assert "empty" in page.text_content("#error")


def test_bars_and_legend_use_the_plots_palette(page, server, tmp_path):
    from emovox.inference.plots import EMOTION_COLORS

    served = httpx.get(server + "/v1/model").json()["colors"]
    assert served == {lab: EMOTION_COLORS[lab] for lab in LABELS}
    clip = tmp_path / "clip.wav"
    sf.write(clip, speechy(1.5), SR)
    page.set_input_files("#file-input", str(clip))
    assert wait_done(page) == "done", page.text_content("#error")
    rows = page.locator("#result-bars li")
    assert rows.count() == len(LABELS)
    for i in range(rows.count()):
        label = rows.nth(i).get_attribute("data-label")
        fill = rows.nth(i).locator(".bar-fill")
        shown = fill.evaluate("(el) => getComputedStyle(el).backgroundColor")
        assert shown == rgb(EMOTION_COLORS[label]), (label, shown)


def test_microphone_recording_is_uploaded_and_decoded(page):
    """Chromium's fake microphone (a beeping tone) → MediaRecorder (WebM/Opus) → WAV in the
    page → the server."""
    page.click("#record-button")
    page.locator("body[data-state=recording]").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(2500)
    page.click("#record-button")
    state = wait_done(page)
    assert state == "done", page.text_content("#error")
    assert page.text_content("#result-label") in LABELS
    # Chromium records WebM/Opus, which the page converts to WAV before uploading
    assert page.text_content("#result-file") == "recording.wav"
    assert float(page.text_content("#result-duration").split()[0]) > 1.5


# ------------------------------------------------------------------------------ transcription


def test_transcribe_shows_the_text_under_the_label(text_page, text_server, tmp_path):
    clip = tmp_path / "clip.wav"
    sf.write(clip, speechy(1.5), SR)
    assert text_page.locator("#transcribe").is_checked() is False  # off unless asked
    text_page.check("#transcribe")
    with text_page.expect_request("**/v1/predict?transcribe=true"):
        text_page.set_input_files("#file-input", str(clip))
    assert wait_done(text_page) == "done", text_page.text_content("#error")
    api = api_predict(text_server, clip, transcribe=True)
    assert api["text"].startswith("w1 ")  # the fake's words: one per loud stretch
    assert text_page.locator("#result-text").is_visible()
    assert text_page.text_content("#result-text") == api["text"]
    assert text_page.text_content("#result-label") == api["label"]

    text_page.uncheck("#transcribe")  # without the option: no text, and none left over
    with text_page.expect_request("**/v1/predict"):
        text_page.set_input_files("#file-input", str(clip))
    assert wait_done(text_page) == "done", text_page.text_content("#error")
    assert text_page.locator("#result-text-block").is_hidden()
    assert text_page.text_content("#result-text") == ""


def test_transcribe_fills_the_text_of_each_timeline_segment(text_page, text_server, tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, with_pauses(), SR)
    text_page.check("#transcribe")
    text_page.set_input_files("#file-input", str(path))
    assert wait_done(text_page) == "done", text_page.text_content("#error")
    api = api_predict(text_server, path, transcribe=True)
    texts = [s["text"] for s in api["segments"]]
    assert any(texts) and " ".join(t for t in texts if t) == api["text"]
    assert text_page.text_content("#result-text") == api["text"]
    assert text_page.locator("#timeline-text-col").text_content() == "text"
    text_page.click("#timeline-section summary")  # open the table
    assert text_page.locator("#timeline-text-col").is_visible()
    rows = text_page.locator("#timeline-table tbody tr")
    assert rows.count() == len(texts)
    shown = [rows.nth(i).locator("td").last.text_content() for i in range(rows.count())]
    assert shown == texts

    text_page.uncheck("#transcribe")  # a timeline without text has no text column
    text_page.set_input_files("#file-input", str(path))
    assert wait_done(text_page) == "done", text_page.text_content("#error")
    assert text_page.locator("#timeline-text-col").is_hidden()
    assert text_page.locator("#timeline-table tbody tr").first.locator("td").count() == 4


def test_transcribe_without_speech_to_text_shows_the_servers_501(page, tmp_path, monkeypatch):
    def unavailable():
        raise TranscriberUnavailable(
            "transcription needs faster-whisper: pip install 'emovox[text]'"
        )

    monkeypatch.setattr(tx, "default_transcriber", unavailable)  # the server runs in-process
    clip = tmp_path / "clip.wav"
    sf.write(clip, speechy(1.5), SR)
    page.check("#transcribe")
    page.set_input_files("#file-input", str(clip))
    assert wait_done(page) == "error"
    msg = page.text_content("#error")
    assert "Could not transcribe clip.wav" in msg and "pip install 'emovox[text]'" in msg, msg
    assert "501" in msg and "transcription_unavailable" in msg
    assert page.locator("#result").is_hidden()
