"""Live latency: each streamed segment's delay from the end of speech to its label."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emovox.audio.segment import SegmenterConfig, StreamingSegmenter, latency_summary
from emovox.audio.stream import iter_array
from emovox.audio.vad import FRAME, EnergyVAD
from emovox.inference.random_bundle import make_random_bundle
from emovox.inference.timeline import analyze_chunks

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SR = 16000
BURSTS = [(1.0, 2.5, 300.0), (4.0, 5.2, 600.0), (7.0, 9.0, 1000.0)]


def bursts(spec: list[tuple[float, float, float]], total: float) -> np.ndarray:
    """Tone bursts ``(start, end, Hz)`` over faint noise."""
    t = np.arange(int(total * SR)) / SR
    y = 0.0005 * np.random.default_rng(0).standard_normal(len(t))
    for a, b, f in spec:
        m = (t >= a) & (t < b)
        y[m] += 0.3 * np.sin(2 * np.pi * f * t[m])
    return y.astype(np.float32)


def stream(seg: StreamingSegmenter, y: np.ndarray, block: int) -> list:
    found = []
    for c in iter_array(y, block):
        found += seg.feed(c)
    return found + seg.flush()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_random_bundle(tmp_path_factory.mktemp("m") / "random")


@pytest.mark.parametrize("min_silence", [0.1, 0.25, 0.4, 0.5])
def test_hangover_is_min_silence_in_whole_frames(min_silence):
    seg = StreamingSegmenter(EnergyVAD(), SegmenterConfig(min_silence=min_silence))
    assert seg.hangover == math.ceil(min_silence * SR / FRAME) * FRAME
    assert seg.hangover >= min_silence * SR


@pytest.mark.parametrize("block", [FRAME, 1600, 3 * FRAME + 7])
def test_decision_delay_is_the_hangover_within_a_block(block):
    seg = StreamingSegmenter(EnergyVAD(), SegmenterConfig(min_silence=0.4))
    found = stream(seg, bursts(BURSTS, 11.0), block)
    assert [s.closed_by for s in found] == ["pause"] * 3
    for s, (_, end, _) in zip(found, BURSTS, strict=True):
        assert s.speech_end == pytest.approx(end * SR, abs=FRAME)  # before the right pad
        assert s.end == s.speech_end + int(0.1 * SR)
        assert seg.hangover <= s.decided - s.speech_end < seg.hangover + block
        if block == FRAME:  # chunks on frame boundaries: exactly the hangover
            assert s.decided - s.speech_end == seg.hangover
        lat = s.latency(s.fed_at + 0.02)
        assert lat["decision_ms"] == pytest.approx(1000 * (s.decided - s.speech_end) / SR, 0.01)
        assert lat["compute_ms"] == pytest.approx(20.0, abs=0.1)
        assert lat["latency_ms"] == pytest.approx(lat["decision_ms"] + 20.0, abs=0.1)


def test_windows_and_the_end_of_input_are_told_apart():
    seg = StreamingSegmenter(EnergyVAD(), SegmenterConfig(max_window=4.0))
    found = stream(seg, bursts([(1.0, 13.0, 300.0), (15.0, 17.0, 500.0)], 17.0), FRAME)
    assert [s.closed_by for s in found] == ["window", "window", "window", "pause", "end"]
    assert found[-1].decided - found[-1].speech_end < FRAME  # flushed at once
    entries = [s.latency() | {"start": s.start} for s in found]
    summary = latency_summary(entries)
    assert summary["n"] == 1 and summary["n_other"] == 4
    assert summary["decision_median_ms"] == pytest.approx(1000 * seg.hangover / SR, abs=0.1)


def test_latency_summary_of_nothing():
    s = latency_summary([{"start": 0.0, "end": 1.0, "label": "sad"}])
    assert s["n"] == 0 and s["latency_median_ms"] is None and s["compute_p95_ms"] is None


@pytest.mark.parametrize("block", [FRAME, 1600])
def test_streamed_entries_carry_their_latency(bundle, block):
    from emovox.inference.engine import load_bundle

    engine = load_bundle(bundle, backend="numpy")
    y = bursts(BURSTS, 11.0)
    tl = analyze_chunks(iter_array(y, block), engine, vad=EnergyVAD(), batch_size=1, latency=True)
    assert len(tl.segments) == 3
    hang_ms = 1000 * StreamingSegmenter(EnergyVAD()).hangover / SR
    for e in tl.segments:
        assert e["closed_by"] == "pause"
        assert hang_ms <= e["decision_ms"] < hang_ms + 1000 * block / SR
        assert e["compute_ms"] > 0
        assert e["latency_ms"] == pytest.approx(e["decision_ms"] + e["compute_ms"], abs=0.11)
    plain = analyze_chunks(iter_array(y, block), engine, vad=EnergyVAD(), batch_size=1)
    assert all("latency_ms" not in e for e in plain.segments)  # opt-in: timelines unchanged


def test_listen_prints_latency_per_segment_and_a_summary(bundle, tmp_path):
    from emovox.cli import app

    rec = tmp_path / "talk.wav"
    sf.write(rec, bursts(BURSTS, 11.0), SR)
    args = ["listen", "--file", str(rec), "--speed", "0", "--vad", "energy"]
    args += ["--model", str(bundle), "--backend", "numpy"]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(ln) for ln in res.stdout.splitlines() if ln.strip()]
    assert len(rows) == 3
    for r in rows:
        # live default: a 0.25 s pause, 8 VAD frames of 32 ms
        assert r["decision_ms"] >= 256 and r["compute_ms"] > 0 and r["closed_by"] == "pause"
    assert "latency, end of speech to label (3 segment(s)" in res.stderr
    res = CliRunner().invoke(app, [*args, "--min-silence", "0.4"])
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 3 and all(" ms (416 + " in ln for ln in lines)  # 13 frames of 32 ms
    res = CliRunner().invoke(app, [*args, "--min-silence", "0"])
    assert res.exit_code == 2 and "--min-silence" in res.output


def test_bench_measure_streaming_runs(bundle):
    import emovox

    spec = importlib.util.spec_from_file_location(
        "bench_streaming", REPO / "bench" / "bench_streaming.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = emovox.load(bundle, backend="numpy", vad="energy")
    res = bench.measure_streaming(model, bursts(BURSTS, 11.0))
    assert res["n"] == 3 and res["hangover_ms"] == 416.0 and res["block_ms"] == 32.0
    assert res["decision_median_ms"] == 416.0 and res["compute_median_ms"] > 0
    assert res["model_ms"]["median"] > 0 and len(res["per_segment"]) == 3
