"""Long recordings: block decoding, VAD segmentation, windows, bounded memory, timelines."""

from __future__ import annotations

import csv
import io
import json
import os
import warnings

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import AudioError, decode
from emovox.audio import vad as vad_module
from emovox.audio.segment import SegmenterConfig, StreamingSegmenter, find_speech
from emovox.audio.speech_gate import SpeechGate
from emovox.audio.stream import iter_array, iter_blocks
from emovox.audio.vad import EnergyVAD
from emovox.inference.timeline import Timeline, analyze

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SR = 16000
LABELS = ("low", "mid", "high")


class BandRecognizer:
    """low / mid / high by the loudest frequency (< 400, < 800, else)."""

    labels = LABELS
    sample_rate = SR
    threshold = 0.5
    card: dict = {}

    def predict_proba(self, wavs):
        out = []
        for w in wavs:
            f = np.argmax(np.abs(np.fft.rfft(w))) * SR / len(w)
            k = 0 if f < 400 else 1 if f < 800 else 2
            p = np.full(3, 0.1)
            p[k] = 0.8
            out.append(p)
        return np.array(out)


def bursts(spec: list[tuple[float, float, float]], total: float, sr: int = SR) -> np.ndarray:
    """Tone bursts ``(start, end, Hz)`` over faint noise."""
    t = np.arange(int(total * sr)) / sr
    y = 0.0005 * np.random.default_rng(0).standard_normal(len(t))
    for a, b, f in spec:
        m = (t >= a) & (t < b)
        y[m] += 0.3 * np.sin(2 * np.pi * f * t[m])
    return y.astype(np.float32)


BURSTS = [(1.0, 3.0, 300.0), (5.5, 7.0, 600.0), (9.0, 12.5, 1000.0)]


@pytest.mark.parametrize("sr, channels", [(44100, 2), (16000, 1), (22050, 1)])
def test_blockwise_decode_equals_whole_file_decode(tmp_path, sr, channels):
    y = bursts(BURSTS, 13.0, sr)
    if channels == 2:
        y = np.stack([y, 0.5 * y], axis=1)
    p = tmp_path / "a.wav"
    sf.write(p, y, sr, subtype="FLOAT")
    whole = decode(p)
    blocks = list(iter_blocks(p, block_seconds=0.37))
    assert len(blocks) > 10
    joined = np.concatenate(blocks)
    assert joined.dtype == np.float32 and len(joined) == len(whole)
    np.testing.assert_allclose(joined, whole, atol=1e-6)


def test_tone_bursts_are_found_at_the_right_times(tmp_path):
    p = tmp_path / "bursts.flac"
    sf.write(p, bursts(BURSTS, 14.0, 22050), 22050)
    found = find_speech(iter_blocks(p, block_seconds=0.5), EnergyVAD())
    assert len(found) == 3
    for (a, b), (ta, tb, _) in zip(found, BURSTS, strict=True):
        assert a == pytest.approx(ta, abs=0.15) and b == pytest.approx(tb, abs=0.15)


def test_short_pauses_do_not_split_and_blips_are_dropped():
    y = bursts([(1.0, 2.0, 300), (2.2, 3.0, 300), (5.0, 5.1, 300)], 7.0)
    found = find_speech(iter_array(y, 1000), EnergyVAD(), SegmenterConfig(min_silence=0.4))
    assert len(found) == 1  # 0.2 s pause bridged; the 0.1 s blip is shorter than min_speech
    assert found[0][0] == pytest.approx(1.0, abs=0.15) and found[0][1] == pytest.approx(3.0, 0.15)


def test_long_speech_is_cut_into_bounded_contiguous_windows():
    y = bursts([(1.0, 21.0, 300)], 23.0)
    cfg = SegmenterConfig(max_window=8.0)
    found = find_speech(iter_array(y, 3000), EnergyVAD(), cfg)
    lengths = [b - a for a, b in found]
    assert len(found) == 3
    assert max(lengths) <= 8.0 + 2 * cfg.pad + 1e-6 and min(lengths) >= 4.0
    for (_, b), (a, _) in zip(found, found[1:], strict=False):
        assert a == pytest.approx(b)  # no gap, no overlap between windows
    assert found[0][0] == pytest.approx(1.0, abs=0.15)
    assert found[-1][1] == pytest.approx(21.0, abs=0.15)


def test_streaming_holds_bounded_audio():
    """Ten minutes fed in 1 s chunks: the segmenter never holds more than ~1.5 windows."""
    rng = np.random.default_rng(1)
    seg = StreamingSegmenter(EnergyVAD(), SegmenterConfig(max_window=8.0))
    n = 0
    t = np.arange(SR) / SR
    for i in range(600):
        speech = (i // 30) % 2 == 0  # 30 s of speech, 30 s of silence
        c = 0.3 * np.sin(2 * np.pi * 300 * t) if speech else 0.0005 * rng.standard_normal(SR)
        n += len(seg.feed(c.astype(np.float32)))
    n += len(seg.flush())
    assert n == 10 * 4  # each 30 s of speech: 8 + 8 + 2 x 7 s windows
    assert seg.position == 600 * SR
    assert seg.max_buffered < 14 * SR


def test_analyze_labels_each_segment(tmp_path):
    p = tmp_path / "b.wav"
    sf.write(p, bursts(BURSTS, 14.0), SR)
    tl = analyze(p, BandRecognizer(), vad=EnergyVAD())
    assert [s["label"] for s in tl.segments] == ["low", "mid", "high"]
    assert tl.duration == pytest.approx(14.0) and tl.vad == "energy" and tl.source == str(p)
    assert all(not s["uncertain"] for s in tl.segments)


def test_segments_the_model_refuses_are_skipped_not_fatal():
    class Picky(BandRecognizer):
        def predict_proba(self, wavs):
            if any(len(w) < 2 * SR for w in wavs):
                raise AudioError("<array>", "too short for this model")
            return super().predict_proba(wavs)

    y = bursts(BURSTS, 14.0)  # 2 s, 1.5 s and 3.5 s of tone
    tl = analyze(y, Picky(), vad=EnergyVAD())
    assert [s["label"] for s in tl.segments] == ["low", "high"]
    assert len(tl.skipped) == 1 and tl.skipped[0]["start"] == pytest.approx(5.5, abs=0.15)
    assert tl.to_dict()["skipped"][0]["reason"] == "too short for this model"


def test_the_speech_gate_takes_noise_segments_out_of_the_timeline():
    y = bursts(BURSTS, 14.0)
    a, b = int(5.5 * SR), int(7.0 * SR)  # the middle burst becomes loud white noise
    y[a:b] = np.random.default_rng(1).uniform(-0.5, 0.5, b - a)
    plain = analyze(y, BandRecognizer(), vad=EnergyVAD())
    assert len(plain.segments) == 3 and plain.gated == [] and plain.speech_gate is None
    tl = analyze(y, BandRecognizer(), vad=EnergyVAD(), gate=SpeechGate("energy"))
    assert [s["label"] for s in tl.segments] == ["low", "high"]
    assert [s["speech"] > 1.0 for s in tl.segments] == [True, True]
    (g,) = tl.gated
    assert g["start"] == pytest.approx(5.5, abs=0.15) and g["speech"] < 0.3
    d = tl.to_dict()
    assert d["speech_gate"] == "energy" and d["gated"] == tl.gated
    assert d["overall"]["label"] in ("low", "high")


def test_timeline_overall_and_files(tmp_path):
    tl = Timeline(
        labels=("a", "b"),
        threshold=0.6,
        duration=10.0,
        segments=[
            {
                "start": 0.0,
                "end": 1.0,
                "label": "a",
                "probabilities": {"a": 0.9, "b": 0.1},
                "uncertain": False,
            },
            {
                "start": 2.0,
                "end": 5.0,
                "label": "b",
                "probabilities": {"a": 0.2, "b": 0.8},
                "uncertain": False,
            },
        ],  # fmt: skip
        vad="energy",
    )
    ov = tl.overall()
    assert ov["label"] == "b" and ov["probabilities"]["b"] == pytest.approx(0.625)
    assert ov["uncertain"] is False  # 0.625 >= 0.6
    files = tl.write(tmp_path, "t")
    assert json.loads(files["json"].read_text())["overall"]["label"] == "b"
    rows = list(csv.DictReader(io.StringIO(files["csv"].read_text())))
    assert [r["label"] for r in rows] == ["a", "b"] and rows[1]["b"] == "0.8"
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_auto_vad_falls_back_to_energy_with_a_warning(monkeypatch):
    monkeypatch.setattr(vad_module, "silero_available", lambda: False)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        vad = vad_module.make_vad("auto")
    assert isinstance(vad, EnergyVAD)
    assert any("energy" in str(x.message) for x in w)
    with pytest.raises(RuntimeError, match="silero-vad"):
        vad_module.make_vad("silero")


def test_a_failing_silero_lookup_counts_as_not_installed(monkeypatch):
    def blocked(name, *args):
        raise ImportError(f"blocked: {name}")

    monkeypatch.setattr(vad_module.importlib.util, "find_spec", blocked)
    assert vad_module.silero_available() is False


needs_silero = pytest.mark.skipif(
    not vad_module.silero_available(), reason="silero-vad / onnxruntime not installed"
)


@needs_silero
def test_silero_state_carries_across_calls():
    from emovox.inference.demo import join_clips, load_clips

    y, _ = join_clips(load_clips()[:2])
    n = len(y) // 512
    frames = y[: n * 512].reshape(n, 512)
    whole = vad_module.SileroVAD()(frames)
    vad = vad_module.SileroVAD(max_frames=7)
    parts = np.concatenate([vad(frames[i : i + 13]) for i in range(0, n, 13)])
    np.testing.assert_allclose(parts, whole, atol=1e-5)
    assert whole.max() > 0.9 and whole[:20].max() < 0.2  # speech found; the lead-in is silence


@needs_silero
def test_silero_finds_each_demo_clip_in_the_joined_recording():
    from emovox.inference.demo import join_clips, load_clips

    y, spans = join_clips(load_clips())
    found = find_speech(iter_array(y, 1600), vad_module.SileroVAD())
    assert len(found) == len(spans) == 6
    for (a, b), s in zip(found, spans, strict=True):
        assert s["start"] - 0.15 <= a < b <= s["end"] + 0.15
        assert b - a > 0.5 * (s["end"] - s["start"])


@needs_silero
def test_the_silero_gate_keeps_every_demo_clip_of_the_joined_recording():
    from emovox.inference.demo import join_clips, load_clips

    y, spans = join_clips(load_clips())
    tl = analyze(y, BandRecognizer(), vad=vad_module.SileroVAD(), gate=SpeechGate("silero"))
    assert len(tl.segments) == len(spans) and tl.gated == []
    assert all(s["speech"] > 0.5 for s in tl.segments)
