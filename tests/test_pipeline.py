"""Decoding ahead of the model (emovox.inference.pipeline): the same answers in the same order as
the sequential path, errors per input, and no thread left behind however the caller stops."""

from __future__ import annotations

import json
import os
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import emovox
from emovox.audio import AudioError
from emovox.cli import app
from emovox.inference import loading, pipeline
from emovox.inference import recognizer as api
from emovox.inference.pipeline import THREAD_NAME, Failed, prefetch
from emovox.inference.random_bundle import make_random_bundle

SR = 16000
LABELS = ("neutral", "happy", "sad", "angry")
DEMO = Path(str(resources.files("emovox") / "assets" / "demo"))


def live_workers() -> list[threading.Thread]:
    """The prefetch threads alive now (no garbage collection first: stopping must not wait
    for it)."""
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]


@pytest.fixture(autouse=True)
def _no_thread_left():
    assert not live_workers()
    yield
    assert not live_workers(), "a prefetch thread outlived its caller"


# ---------------------------------------------------------------- prefetch itself


def slow_square(x: int) -> int:
    time.sleep(0.002 * (x % 3))  # later items often finish first
    if x == 5:
        raise ValueError("five")
    return x * x


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_prefetch_keeps_order_and_carries_errors(workers):
    out = list(prefetch(slow_square, range(12), workers=workers, depth=4))
    assert [r for i, r in enumerate(out) if i != 5] == [i * i for i in range(12) if i != 5]
    assert isinstance(out[5], Failed) and out[5].item == 5 and str(out[5].error) == "five"


def test_prefetch_runs_at_most_depth_ahead():
    started: list[int] = []
    gen = prefetch(lambda x: started.append(x) or x, range(100), workers=2, depth=5)
    assert next(gen) == 0
    time.sleep(0.05)
    assert len(started) <= 6  # the window, and the one that moved in as the first came out
    gen.close()
    assert len(started) <= 6


def test_prefetch_stops_when_the_caller_breaks_or_raises():
    calls: list[int] = []

    def slow(x: int) -> int:
        calls.append(x)
        time.sleep(0.01)
        return x

    for r in prefetch(slow, range(1000), workers=2, depth=8):
        if r == 2:
            break
    assert not live_workers() and len(calls) < 20
    with pytest.raises(KeyError):
        for _ in prefetch(slow, range(1000), workers=2, depth=8):
            raise KeyError("consumer failed")
    assert len(calls) < 40


def test_a_decode_thread_by_default_only_with_two_cores(monkeypatch):
    for cpus, want in (({0}, 0), ({0, 1}, 1), (set(range(8)), 1)):
        monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda _, c=cpus: c, raising=False)
        assert pipeline.default_workers() == want


# ---------------------------------------------------------------- the recognizer


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """Real speech (the demo clips, passing the speech gate), generated WAV/FLAC tones and noise
    at several rates, a long recording, and the broken ones: corrupt, missing, too short,
    silent."""
    d = tmp_path_factory.mktemp("audio")
    speech = sorted(str(p) for p in DEMO.glob("*.opus"))
    rng = np.random.default_rng(0)
    made = []
    kinds = [(220, 1.0, 16000, "WAV"), (440, 2.2, 22050, "FLAC"), (700, 1.5, 44100, "WAV"),
             (330, 0.9, 8000, "WAV")]  # fmt: skip
    for k, (freq, secs, sr, fmt) in enumerate(kinds):
        p = d / f"tone{k}.{fmt.lower()}"
        sf.write(p, tone(freq, secs, sr), sr, format=fmt)
        made.append(str(p))
    sf.write(d / "noise.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
    long = np.concatenate([sf.read(f, dtype="float32")[0] for f in speech[:3]] * 2)
    sf.write(d / "long.wav", long, SR)  # ~13 s: over the long_seconds the model is given
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + os.urandom(300))
    sf.write(d / "short.wav", tone(300, 0.05), SR)
    sf.write(d / "silent.wav", np.zeros(SR, np.float32), SR)
    broken = [str(d / n) for n in ("corrupt.wav", "short.wav", "silent.wav")]
    files = speech[:3] + made[:2] + broken[:1] + [str(d / "missing.wav"), str(d / "long.wav")]
    return files + [str(d / "noise.wav")] + made[2:] + broken[1:] + speech[3:]


@pytest.fixture(scope="module", params=["numpy", "onnx"])
def model(request, tmp_path_factory) -> emovox.Recognizer:
    if request.param == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("torch")
    folder = make_random_bundle(tmp_path_factory.mktemp("m"), labels=LABELS, seed=3)
    old = os.environ.get("EMOVOX_CACHE")
    os.environ["EMOVOX_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # the ONNX export
    try:
        m = emovox.load(folder, backend=request.param, long_seconds=8.0)
    finally:
        os.environ.pop("EMOVOX_CACHE") if old is None else os.environ.update(EMOVOX_CACHE=old)
    m.batch_size = 4  # several batches, windows smaller and larger than a batch
    return m


def answers(preds: list) -> list[str]:
    return [json.dumps(p.to_dict(), sort_keys=True) for p in preds]


def test_pipelined_answers_equal_sequential(model, inputs):
    seq = model.predict_many(inputs, workers=0)
    assert [p.path for p in seq] == inputs
    got = {p.path.rsplit("/", 1)[-1]: p for p in seq}
    assert (
        not got["corrupt.wav"].ok
        and not got["missing.wav"].ok
        and "too short" in got["short.wav"].error
    )
    assert not got["silent.wav"].ok and got["noise.wav"].no_speech
    assert got["long.wav"].segments and sum(p.label is not None for p in seq) >= 4
    for workers, depth in ((1, 32), (1, 2), (3, 5)):
        pipe = model.predict_many(inputs, workers=workers, prefetch=depth)
        assert answers(pipe) == answers(seq), (workers, depth)
    assert answers(model.predict(inputs, errors="return")) == answers(seq)  # on by default
    mixed = [Path(inputs[0]).read_bytes(), inputs[1], b"not audio", Path(inputs[3]).read_bytes()]
    assert answers(model.predict(mixed, errors="return", workers=2)) == answers(
        model.predict(mixed, errors="return", workers=0)
    )
    assert answers([model.predict(inputs[0])]) == answers(seq[:1])  # one input: no thread


def test_errors_raise_is_the_same_pipelined(model, inputs):
    for workers in (0, 1):
        with pytest.raises(AudioError) as caught:
            model.predict(inputs, errors="raise", workers=workers)
        assert "corrupt.wav" in str(caught.value)


def test_a_generator_of_inputs_is_read_lazily(model, inputs):
    seen: list[str] = []

    def gen():
        for f in inputs:
            seen.append(f)
            yield f

    it = model.iter_predict(gen(), workers=1, prefetch=3)
    first = next(it)
    assert first.path == inputs[0] and len(seen) < len(inputs)
    it.close()


def test_the_worker_stops_when_the_caller_stops_early(model, inputs):
    it = model.iter_predict(inputs * 3, workers=2, prefetch=4)
    next(it)
    it.close()
    assert not live_workers()
    for _ in model.iter_predict(inputs * 3, workers=1):
        break
    assert not live_workers()
    with pytest.raises(ZeroDivisionError):
        for _ in model.iter_predict(inputs * 3, workers=1):
            1 / 0  # noqa: B018
    assert not live_workers()


def test_an_unexpected_error_in_the_worker_is_raised_in_order(model, inputs, monkeypatch):
    real = api.prepare

    def flaky(x, *a, **k):
        if str(x).endswith("tone1.flac"):
            raise RuntimeError("disk on fire")
        return real(x, *a, **k)

    monkeypatch.setattr(api, "prepare", flaky)
    for workers in (0, 1):
        done = []
        with pytest.raises(RuntimeError, match="disk on fire"):
            for p in model.iter_predict(inputs, workers=workers):
                done.append(p.path)
        assert done == inputs[:4]  # the batch before the one that failed
        assert not live_workers()


# ---------------------------------------------------------------- the command line


class FakeEngine:
    labels = LABELS
    sample_rate = SR
    threshold = 0.5
    card = {"name": "fake-model"}

    def predict_proba(self, wavs):
        return np.array([np.roll([0.7, 0.1, 0.1, 0.1], len(w) % 4) for w in wavs])


def test_predict_threads_option(monkeypatch, tmp_path, inputs):
    monkeypatch.setattr(loading, "load_engine", lambda path, backend: FakeEngine())
    runner = CliRunner()
    outs = []
    for threads in ("1", "3"):
        res = runner.invoke(app, ["predict", "--json", "--threads", threads, *inputs])
        assert res.exit_code == 3, res.output  # some inputs fail
        outs.append([line for line in res.stdout.splitlines() if line.startswith("{")])
    assert outs[0] == outs[1] and len(outs[0]) == len(inputs)
    res = runner.invoke(app, ["predict", "--engine", "ray", "--out", str(tmp_path), "--threads",
                              "2", inputs[0]])  # fmt: skip
    assert res.exit_code == 2 and "--threads is for --engine local" in res.output
