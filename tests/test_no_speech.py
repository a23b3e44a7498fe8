"""The speech gate: white noise, a music-like chord and clicks get no emotion (``no_speech``),
real speech (the bundled demo clips) does; in the Python API, long recordings, the CLI, the REST
service and the Ray tables."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import emovox
from emovox.audio import speech_gate
from emovox.audio.decode import decode
from emovox.audio.speech_gate import MIN_SPEECH_SECONDS, SpeechGate
from emovox.audio.vad import silero_available
from emovox.cli import app as cli_app
from emovox.inference import loading
from emovox.inference.recognizer import Prediction, Recognizer

SR = 16000
LABELS = ("neutral", "happy", "sad", "angry")
DEMO = sorted((Path(emovox.__file__).parent / "assets" / "demo").glob("*.opus"))
needs_silero = pytest.mark.skipif(not silero_available(), reason="silero-vad not installed")


class ConfidentModel:
    """Says "happy" at 0.7 to anything it is given, and counts the clips it saw."""

    labels = LABELS
    sample_rate = SR
    threshold = 0.5
    card = {"name": "confident-fake"}

    def __init__(self) -> None:
        self.seen = 0

    def predict_proba(self, wavs):
        self.seen += len(wavs)
        return np.tile([0.1, 0.7, 0.1, 0.1], (len(wavs), 1))


def white_noise(seconds: float = 5.0) -> np.ndarray:
    """Full-scale white noise (the input of the bug report)."""
    return np.random.default_rng(0).uniform(-1, 1, int(seconds * SR)).astype(np.float32)


def chord(seconds: float = 5.0) -> np.ndarray:
    """A C major chord of harmonic tones, notes re-struck every half second: music-like."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * h * f * t) / h for f in (261.6, 329.6, 392.0) for h in (1, 2, 3))
    y = y * np.exp(-3 * (t % 0.5))
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def clicks(seconds: float = 5.0) -> np.ndarray:
    """A 10 Hz click train."""
    y = np.zeros(int(seconds * SR), np.float32)
    y[:: SR // 10] = 0.9
    return y


def wav_bytes(y: np.ndarray) -> bytes:
    b = io.BytesIO()
    sf.write(b, y, SR, format="WAV")
    return b.getvalue()


def assert_no_speech(r: Prediction, detector: str) -> None:
    assert r.ok and r.no_speech, r
    assert r.label is None and r.probabilities == {} and r.uncertain
    assert r.speech_gate == detector and r.speech_seconds is not None
    assert r.speech_seconds < MIN_SPEECH_SECONDS


def test_demo_clips_are_there():
    assert len(DEMO) >= 4


# ------------------------------------------------------------------ the Python API


@needs_silero
@pytest.mark.parametrize("sound", [white_noise, chord, clicks], ids=lambda f: f.__name__)
def test_non_speech_gets_no_emotion_with_silero(sound):
    engine = ConfidentModel()
    r = Recognizer(engine, vad="silero").predict(sound(), sr=SR)
    assert_no_speech(r, "silero")
    assert engine.seen == 0  # the model was not asked
    d = json.loads(json.dumps(r.to_dict()))
    assert d["no_speech"] is True and d["label"] is None and d["speech_gate"] == "silero"


@needs_silero
def test_real_speech_is_not_gated_by_silero():
    m = Recognizer(ConfidentModel(), vad="silero")
    for r in m.predict([str(p) for p in DEMO]):
        assert r.label == "happy" and not r.no_speech and r.speech_gate == "silero"
        assert r.speech_seconds is not None and r.speech_seconds > 0.5
        assert r.to_dict()["no_speech"] is False


def test_energy_fallback_gates_noise_and_clicks_not_speech():
    engine = ConfidentModel()
    m = Recognizer(engine, vad="energy")
    for sound in (white_noise(), 0.05 * white_noise(), clicks()):
        assert_no_speech(m.predict(sound, sr=SR), "energy")
    assert engine.seen == 0
    for p in DEMO:
        r = m.predict(str(p))
        assert r.label == "happy" and not r.no_speech and r.speech_gate == "energy", p.name
    # its documented limit: tones pass it, and the output says which gate was applied
    r = m.predict(chord(), sr=SR)
    assert r.label == "happy" and r.speech_gate == "energy"


def test_energy_detector_measures_flatness_only_where_it_decides():
    """The spectrum is computed for loud frames only; the verdicts are those of measuring it on
    every frame."""
    y = np.concatenate([0.3 * chord()[:8000], np.zeros(4000, np.float32), white_noise()[:8000],
                        decode(str(DEMO[0]), SR)[:16000], 1e-4 * white_noise()[:6000]])  # fmt: skip
    frames = speech_gate.frames_of(y)
    got = speech_gate.energy_speech_frames(frames)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = (db > speech_gate.ENERGY_MIN_DB) & (db > db.max() - speech_gate.ENERGY_RANGE_DB)
    full = loud & (speech_gate.spectral_flatness(frames) < speech_gate.MAX_FLATNESS)
    np.testing.assert_array_equal(got, full)
    assert 0 < got.sum() < loud.sum() < len(frames)  # quiet frames and noisy loud ones drop out
    assert not speech_gate.energy_speech_frames(np.zeros((5, 512), np.float32)).any()


def test_auto_without_silero_falls_back_to_energy_and_says_so(monkeypatch):
    monkeypatch.setattr(speech_gate, "silero_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="only catches noise-like sounds"):
        gate = SpeechGate("auto")
    assert gate.detector == "energy"
    assert not gate.measure(white_noise()).passed
    with pytest.raises(ValueError, match="unknown speech detector"):
        SpeechGate("nonsense")


def test_both_thresholds_apply():
    """Too little speech in absolute terms, or as a share of the clip, is refused."""
    y = decode(DEMO[0])
    padded = np.concatenate([y, np.zeros(30 * SR - len(y), np.float32)])
    gate = SpeechGate("energy")
    a = gate.measure(padded)
    assert a.seconds >= MIN_SPEECH_SECONDS and a.fraction < 0.1 and not a.passed
    assert SpeechGate("energy", min_fraction=0.05).measure(padded).passed
    assert not SpeechGate("energy", min_seconds=10.0, min_fraction=0).measure(y).passed
    assert "of speech" in a.reason() and "energy" in a.reason()


def test_speech_gate_off_labels_everything():
    engine = ConfidentModel()
    m = emovox.Recognizer(engine, vad="energy", speech_gate=False)
    r = m.predict(white_noise(), sr=SR)
    assert r.label == "happy" and not r.no_speech and engine.seen == 1
    assert r.speech_gate is None and r.speech_seconds is None
    m.speech_gate = True  # settable after loading
    assert m.predict(white_noise(), sr=SR).no_speech


def test_load_takes_speech_gate(monkeypatch):
    monkeypatch.setattr(loading, "load_engine", lambda path, backend: ConfidentModel())
    assert loading.load(vad="energy").speech_gate is True
    m = loading.load(vad="energy", speech_gate=False)
    assert m.gate is None and m.predict(clicks(), sr=SR).label == "happy"


def test_a_batch_with_noise_speech_and_a_broken_file_goes_on(tmp_path):
    noise = tmp_path / "noise.wav"
    sf.write(noise, white_noise(), SR)
    broken = tmp_path / "random.wav"
    broken.write_bytes(np.random.default_rng(1).bytes(3000))
    m = Recognizer(ConfidentModel(), vad="energy")
    res = m.predict([str(noise), str(DEMO[0]), str(broken)], errors="return")
    assert [(r.ok, r.no_speech, r.label) for r in res] == [
        (True, True, None),
        (True, False, "happy"),
        (False, False, None),
    ]
    assert res[2].error and res[2].path == str(broken)


# ------------------------------------------------------------------ long recordings


def test_long_noise_recording_is_no_speech_not_an_error():
    engine = ConfidentModel()
    m = Recognizer(engine, vad="energy")  # the energy VAD takes loud noise for speech...
    r = m.predict(white_noise(25.0), sr=SR)
    assert_no_speech(r, "energy")  # ...the gate does not
    assert r.segments == [] and r.duration == pytest.approx(25.0) and engine.seen == 0
    tl = m.timeline(white_noise(25.0), sr=SR)
    assert tl.segments == [] and tl.gated and tl.speech_gate == "energy"
    assert "of speech" in tl.gated[0]["reason"] and tl.to_dict()["gated"] == tl.gated


@needs_silero
def test_long_chord_recording_is_no_speech_with_silero():
    r = Recognizer(ConfidentModel(), vad="silero").predict(chord(25.0), sr=SR)
    assert_no_speech(r, "silero")
    assert r.segments == []


# ------------------------------------------------------------------ CLI, REST, Ray tables


@pytest.fixture
def fake_engine(monkeypatch):
    monkeypatch.setattr(loading, "load_engine", lambda path, backend: ConfidentModel())


def test_cli_json_and_table_show_no_speech(fake_engine, tmp_path):
    noise = tmp_path / "noise.wav"
    sf.write(noise, white_noise(), SR)
    runner = CliRunner()
    res = runner.invoke(cli_app, ["predict", str(noise), str(DEMO[0]), "--json", "--vad", "energy"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    assert [(r["no_speech"], r["label"]) for r in rows] == [(True, None), (False, "happy")]
    assert rows[0]["speech_gate"] == "energy" and rows[0]["probabilities"] == {}
    res = runner.invoke(cli_app, ["predict", str(noise), "--vad", "energy"])
    assert res.exit_code == 0, res.output
    assert "no speech" in res.stdout
    res = runner.invoke(cli_app, ["predict", str(noise), "--json", "--vad", "energy",
                                  "--no-speech-gate"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["label"] == "happy"


def test_cli_long_noise_recording_writes_an_empty_timeline(fake_engine, tmp_path):
    noise = tmp_path / "long.wav"
    sf.write(noise, white_noise(22.0), SR)
    out = tmp_path / "tl"
    res = CliRunner().invoke(
        cli_app, ["predict", str(noise), "--json", "--vad", "energy", "--timeline-dir", str(out)]
    )
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["no_speech"] is True and row["segments"] == []
    assert row["gated"] and all("of speech" in g["reason"] for g in row["gated"])
    assert (out / "long.timeline.png").stat().st_size > 0
    tl = json.loads((out / "long.timeline.json").read_text())  # why it is empty is kept
    assert tl["speech_gate"] == "energy" and tl["gated"] == row["gated"]
    rows = list(csv.DictReader((out / "long.timeline.csv").read_text().splitlines()))
    assert len(rows) == len(row["gated"]) and {r["no_speech"] for r in rows} == {"1"}


def test_rest_response_shows_no_speech():
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from emovox.service.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    app = create_app(recognizer=ConfidentModel(), workers=1, vad="energy")
    with TestClient(app) as client:
        r = client.post("/v1/predict", content=wav_bytes(white_noise()))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["no_speech"] is True and body["label"] is None
        assert body["probabilities"] == {} and body["uncertain"] is True
        assert body["speech_gate"] == "energy"
        r = client.post("/v1/predict", content=DEMO[0].read_bytes())
        assert r.status_code == 200, r.text
        assert r.json()["no_speech"] is False and r.json()["label"] == "happy"
    app = create_app(recognizer=ConfidentModel(), workers=1, vad="energy", speech_gate=False)
    with TestClient(app) as client:
        body = client.post("/v1/predict", content=wav_bytes(white_noise())).json()
        assert body["label"] == "happy" and body["speech_gate"] is None


def test_ray_rows_of_a_no_speech_prediction():
    from emovox.scale.tables import prediction_rows

    p = Prediction(None, {}, True, path="n.wav", duration=5.0, no_speech=True, speech_seconds=0.0)
    (row,) = prediction_rows(p, "n.wav", LABELS)
    assert row["label"] is None and row["p_happy"] is None and row["uncertain"] is True
