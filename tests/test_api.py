"""emovox.load / Recognizer: input kinds, batching, errors, the uncertain flag, long inputs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import soundfile as sf

import emovox
from emovox.audio import AudioError
from emovox.inference.recognizer import Prediction, Recognizer

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LABELS = ("neutral", "happy", "sad", "angry")
FREQ = {"neutral": 150.0, "happy": 350.0, "sad": 550.0, "angry": 750.0}


class FakeRecognizer:
    """Label = which 200 Hz band the loudest frequency is in; top probability ``top``."""

    labels = LABELS
    sample_rate = 16000
    card = {"name": "fake"}

    def __init__(self, top: float = 0.7, threshold: float = 0.5, min_seconds: float = 0.0):
        self.top, self.threshold, self.min_seconds = top, threshold, min_seconds
        self.calls: list[int] = []

    def predict_proba(self, wavs):
        self.calls.append(len(wavs))
        out = []
        for w in wavs:
            if len(w) < self.min_seconds * 16000:
                raise AudioError("<array>", "too short for the fake model")
            f = np.argmax(np.abs(np.fft.rfft(w))) * 16000 / len(w)
            k = min(len(LABELS) - 1, int(f // 200))
            p = np.full(len(LABELS), (1 - self.top) / (len(LABELS) - 1))
            p[k] = self.top
            out.append(p)
        return np.array(out)


def tone(freq: float, seconds: float = 1.0, sr: int = 16000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def model() -> Recognizer:
    return Recognizer(FakeRecognizer(), vad="energy")


def test_path_input(tmp_path, model):
    p = tmp_path / "x.wav"
    sf.write(p, tone(FREQ["sad"], 1.5), 16000)
    r = model.predict(p)
    assert isinstance(r, Prediction) and r.ok
    assert r.label == "sad" and r.path == str(p) and r.segments is None
    assert r.duration == pytest.approx(1.5, abs=1e-3)
    assert set(r.probabilities) == set(LABELS)
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-3)


def test_path_with_a_misleading_name_is_sniffed(tmp_path, model):
    p = tmp_path / "really_flac.wav"
    sf.write(p, tone(FREQ["angry"]), 16000, format="FLAC")
    assert model.predict(str(p)).label == "angry"


def test_array_is_resampled_and_downmixed(model):
    y = tone(FREQ["happy"], 2.0, sr=44100)
    r = model.predict(y, sr=44100)
    assert r.label == "happy" and r.path is None
    assert r.duration == pytest.approx(2.0, abs=1e-3)  # 16 kHz samples / 16000
    stereo = np.stack([y, y], axis=1)  # (frames, channels), as soundfile gives
    assert model.predict(stereo, sr=44100).label == "happy"
    assert model.predict(stereo.T.copy(), sr=44100).label == "happy"  # (channels, frames)
    pcm = (y * 32767).astype(np.int16)
    assert model.predict(pcm, sr=44100).label == "happy"


def test_array_needs_sr(model):
    with pytest.raises(ValueError, match="sr="):
        model.predict(tone(300))


def test_bytes_input_in_any_container(model):
    for fmt in ("WAV", "FLAC", "OGG"):
        buf = io.BytesIO()
        sf.write(buf, tone(FREQ["neutral"], 1.0, sr=22050), 22050, format=fmt)
        r = model.predict(buf.getvalue())
        assert r.label == "neutral", fmt
        assert r.duration == pytest.approx(1.0, abs=0.01)


def test_list_is_batched(model):
    items = [tone(FREQ[lab]) for lab in LABELS]
    res = model.predict(items, sr=16000)
    assert [r.label for r in res] == list(LABELS)
    assert model.recognizer.calls == [4]  # one call for the whole list


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not decodable"),  # a cut-off WAV header
        (b"hello, this is plain text and not audio at all\n" * 20, "not (decodable|audio)"),
    ],
)
def test_bad_bytes_are_clear_errors(model, data, reason):
    with pytest.raises(AudioError, match=reason) as exc:
        model.predict(data)
    assert f"{len(data)} bytes" in str(exc.value)  # names the input
    assert "0x" not in str(exc.value)  # no "<_io.BytesIO object at 0x...>" noise


def test_bad_bytes_leave_no_temporary_file(model, monkeypatch):
    made: list[str] = []
    real = tempfile.mkstemp

    def spy(*a, **k):
        fd, path = real(*a, **k)
        made.append(path)
        return fd, path

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    with pytest.raises(AudioError):
        model.predict(b"\x00\x01 not audio " * 50)
    assert made and not any(os.path.exists(p) for p in made)


def test_other_errors_name_the_input(tmp_path, model):
    with pytest.raises(AudioError, match="file not found"):
        model.predict(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="silent"):
        model.predict(np.zeros(16000, np.float32), sr=16000)
    with pytest.raises(AudioError, match="too short"):
        model.predict(tone(300, 0.05), sr=16000)
    with pytest.raises(AudioError, match="NaN"):
        model.predict(np.full(16000, np.nan, np.float32), sr=16000)
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(AudioError, match="notes.txt.*not (decodable|audio)"):
        model.predict(tmp_path / "notes.txt")
    with pytest.raises(TypeError, match="cannot predict from a int"):
        model.predict(42)  # type: ignore[arg-type]


def test_predict_many_records_errors_and_goes_on(tmp_path, model):
    good = tmp_path / "good.wav"
    sf.write(good, tone(FREQ["angry"]), 16000)
    res = model.predict_many(
        [str(good), b"", tmp_path / "missing.wav", tone(FREQ["happy"])], sr=16000
    )
    assert [r.ok for r in res] == [True, False, False, True]
    assert res[0].label == "angry" and res[3].label == "happy"
    assert "empty" in res[1].error and res[1].label is None
    assert res[2].error == "file not found" and res[2].path == str(tmp_path / "missing.wav")
    assert res[2].to_dict() == {"path": str(tmp_path / "missing.wav"), "error": "file not found"}
    with pytest.raises(AudioError):
        model.predict_many([str(good), b""], errors="raise")


def test_predict_errors_return_keeps_the_good_results(tmp_path, model):
    good, bad = tmp_path / "good.flac", tmp_path / "random.wav"
    sf.write(good, tone(FREQ["angry"]), 16000, format="FLAC")
    bad.write_bytes(np.random.default_rng(0).bytes(4000))  # noise bytes named .wav
    with pytest.raises(AudioError, match="random.wav"):  # the default: raise
        model.predict([str(good), str(bad)])
    res = model.predict([str(good), str(bad)], errors="return")
    assert [r.ok for r in res] == [True, False]
    assert res[0].label == "angry" and res[1].label is None and res[1].path == str(bad)
    assert res[1].error and res[1].to_dict() == {"path": str(bad), "error": res[1].error}
    one = model.predict(str(bad), errors="return")  # a single input too
    assert isinstance(one, Prediction) and not one.ok and one.error == res[1].error
    with pytest.raises(ValueError, match="errors must be 'raise' or 'return'"):
        model.predict(str(good), errors="ignore")  # type: ignore[arg-type]


def test_on_error_is_a_deprecated_name_of_errors(tmp_path, model):
    with pytest.warns(DeprecationWarning, match="errors='return'"):
        res = model.predict_many([tone(FREQ["sad"]), b""], sr=16000, on_error="record")
    assert [r.ok for r in res] == [True, False]
    with pytest.warns(DeprecationWarning), pytest.raises(AudioError, match="empty"):
        model.predict_many([b""], on_error="raise")


def test_a_model_failure_on_one_item_spares_the_batch():
    m = Recognizer(FakeRecognizer(min_seconds=0.5), vad="energy")
    items = [tone(FREQ["sad"]), tone(FREQ["happy"], 0.3), tone(FREQ["angry"])]
    res = m.predict_many(items, sr=16000)
    assert [r.label for r in res] == ["sad", None, "angry"]
    assert res[1].error == "<input 1: array (4800,) float32>: too short for the fake model"
    with pytest.raises(AudioError, match=r"^<input 1: array.*too short for the fake"):
        m.predict(items, sr=16000)  # raised, it names the input, not the model's "<array>"


def test_model_refusing_a_file_names_the_file(tmp_path):
    p = tmp_path / "short.wav"
    sf.write(p, tone(FREQ["sad"], 0.3), 16000)
    m = Recognizer(FakeRecognizer(min_seconds=0.5), vad="energy")
    with pytest.raises(AudioError, match="short.wav: too short for the fake model"):
        m.predict(p)
    (r,) = m.predict_many([p])
    assert r.to_dict() == {"path": str(p), "error": "too short for the fake model"}


@pytest.mark.parametrize("top, uncertain", [(0.45, True), (0.5, False), (0.9, False)])
def test_uncertain_is_top_probability_below_threshold(top, uncertain):
    m = Recognizer(FakeRecognizer(top=top, threshold=0.5), vad="energy")
    r = m.predict(tone(FREQ["sad"]), sr=16000)
    assert r.label == "sad" and r.uncertain is uncertain
    assert r.probabilities["sad"] == pytest.approx(top)


def test_long_input_gets_segments_and_weighted_overall(model):
    sr = 16000
    y = np.zeros(25 * sr, np.float32)
    y[2 * sr : 4 * sr] = tone(FREQ["happy"], 2.0)  # 2 s happy
    y[8 * sr : 14 * sr] = tone(FREQ["angry"], 6.0)  # 6 s angry
    r = model.predict(y, sr=sr)
    assert r.segments is not None and [s["label"] for s in r.segments] == ["happy", "angry"]
    assert r.label == "angry" and r.duration == pytest.approx(25.0)
    # duration-weighted: angry 0.7 over ~6 s, 0.1 over ~2 s
    assert 0.5 < r.probabilities["angry"] < 0.6
    d = r.to_dict()
    assert json.loads(json.dumps(d))["segments"][0]["start"] == pytest.approx(2.0, abs=0.15)


def test_silent_long_input_says_no_speech(model):
    y = np.random.default_rng(0).normal(0, 1e-4, 25 * 16000).astype(np.float32)
    for gate in (True, False):  # the VAD finds no segment: an answer, not an error
        model.speech_gate = gate
        r = model.predict(y, sr=16000)
        assert r.ok and r.no_speech and r.label is None and r.segments == []
        assert r.probabilities == {} and r.uncertain and r.duration == pytest.approx(25.0)
    assert model.recognizer.calls == []  # the model never saw it


def test_import_emovox_is_cheap_and_load_is_lazy():
    code = (
        "import sys, emovox; "
        "assert 'torch' not in sys.modules and 'emovox.inference.recognizer' not in sys.modules; "
        "f = emovox.load; import emovox.inference.loading as r; assert f is r.load; "
        "assert 'torch' not in sys.modules; print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_random_bundle_through_emovox_load(tmp_path):
    bundle = pytest.importorskip("emovox.inference.random_bundle")
    path = bundle.make_random_bundle(tmp_path / "m", labels=LABELS, seed=1)
    m = emovox.load(path, backend="numpy", speech_gate=False)  # tones stand in for speech
    assert m.labels == LABELS and m.card
    res = m.predict([tone(300, 1.0), tone(600, 1.5)], sr=16000)
    for r in res:
        assert r.label in LABELS
        assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert r.uncertain is (max(r.probabilities.values()) < m.threshold)


def test_long_bytes_are_streamed_and_timeline_works_on_short_input(model):
    sr = 22050
    y = np.zeros(22 * sr, np.float32)
    y[3 * sr : 5 * sr] = tone(FREQ["sad"], 2.0, sr)
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="FLAC")
    r = model.predict(buf.getvalue())
    assert r.segments is not None and [s["label"] for s in r.segments] == ["sad"]
    assert r.segments[0]["start"] == pytest.approx(3.0, abs=0.15)
    tl = model.timeline(tone(FREQ["happy"], 3.0), sr=16000)  # forced, though short
    assert [s["label"] for s in tl.segments] == ["happy"] and tl.duration == pytest.approx(3.0)


def test_recognizer_to_cpu_and_backend(model, tmp_path):
    assert model.to("cpu") is model and model.backend is None  # the fake has no backend
    with pytest.raises(ValueError, match="CPU only"):
        model.to("cuda")
    bundle = pytest.importorskip("emovox.inference.random_bundle")
    folder = bundle.make_random_bundle(tmp_path / "m", labels=LABELS)
    m = emovox.load(folder, backend="numpy", speech_gate=False)  # a tone stands in for speech
    assert m.backend == "numpy" and m.to("cpu") is m
    with pytest.raises(ValueError, match="backend='torch'"):
        m.to("cuda")
    assert m.predict(tone(300, 1.0), sr=16000).label in LABELS


def test_predictor_is_a_deprecated_alias_of_recognizer():
    from emovox.inference import recognizer

    with pytest.warns(DeprecationWarning, match="renamed"):
        assert emovox.Predictor is Recognizer
    with pytest.warns(DeprecationWarning, match="renamed"):
        assert recognizer.Predictor is Recognizer
    assert emovox.Recognizer is Recognizer and emovox.Prediction is Prediction
    assert "Predictor" not in emovox.__all__
    with pytest.raises(AttributeError):
        recognizer.Nothing  # noqa: B018


def test_array_helpers_are_public():
    from emovox.audio.decode import describe_input, resample, to_mono_float

    pcm = (np.ones((2, 100)) * 16384).astype(np.int16)  # (channels, frames)
    y = to_mono_float(pcm)
    assert y.shape == (100,) and y.dtype == np.float32 and y[0] == pytest.approx(0.5)
    assert len(resample(tone(300, 1.0, sr=8000), 8000)) == 16000
    with pytest.raises(AudioError, match="invalid sample rate"):
        resample(y, 0)
    assert describe_input(b"abc", 2) == "<input 2: 3 bytes>"


def test_prediction_and_input_preparation_are_public_modules():
    from emovox.audio.preprocess import Preprocess
    from emovox.inference import prediction
    from emovox.inference.inputs import LongRecording, ShortClip, check_clip, prepare

    assert prediction.Prediction is Prediction is emovox.Prediction
    pre = Preprocess()
    clip = prepare(tone(300, 1.0, sr=8000), 8000, None, long_seconds=20.0, preprocess=pre)
    assert isinstance(clip, ShortClip) and len(clip.wav) == 16000 and clip.warnings == []
    y = tone(300, 3.0)
    rec = prepare(y, 16000, 2, long_seconds=2.0, preprocess=pre)
    assert isinstance(rec, LongRecording) and rec.name.startswith("<input 2: array")
    assert np.array_equal(np.concatenate(list(rec.chunks())), y)
    forced = prepare(
        tone(300, 1.0), 16000, None, long_seconds=20.0, preprocess=pre, force_long=True
    )
    assert isinstance(forced, LongRecording)
    with pytest.raises(AudioError, match=r"clip\.wav: too short"):
        check_clip(tone(300, 0.01), "clip.wav", pre)
    with pytest.raises(AudioError, match="clip.wav: silent"):
        check_clip(np.zeros(16000, np.float32), "clip.wav", pre)
    with pytest.raises(TypeError, match="cannot predict from a dict"):
        prepare({}, None, None, long_seconds=20.0, preprocess=pre)
