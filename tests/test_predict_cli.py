"""emovox predict / listen / demo, and the bundled demo clips."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emovox.audio import microphone, stream
from emovox.cli import app
from emovox.inference import loading
from emovox.inference import recognizer as api

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SR = 16000
LABELS = ("neutral", "happy", "sad", "angry")
runner = CliRunner()


class FakeRecognizer:
    """Label = which 200 Hz band holds the loudest frequency."""

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


@pytest.fixture
def fake_model(monkeypatch):
    loaded = []

    def fake_load(path, backend):
        loaded.append((path, backend))
        return FakeRecognizer()

    monkeypatch.setattr(loading, "load_engine", fake_load)
    return loaded


def tone(freq: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def long_recording(path: Path) -> Path:
    y = 0.0005 * np.random.default_rng(0).standard_normal(25 * SR)
    for a, f in ((2, 350), (10, 550), (18, 750)):
        y[a * SR : (a + 3) * SR] += tone(f, 3)
    sf.write(path, y.astype(np.float32), SR)
    return path


@pytest.fixture
def audio_dir(tmp_path) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    sf.write(d / "a.wav", tone(150, 1.0), SR)
    sf.write(d / "sub" / "b.flac", tone(550, 1.0, 22050), 22050)
    (d / "sub" / "broken.wav").write_bytes(b"RIFF....WAVE this is not audio")
    (d / "notes.txt").write_text("ignored: not an audio extension")
    return d


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_predict_json_one_object_per_file(fake_model, audio_dir, tmp_path):
    extra = tmp_path / "c.wav"
    sf.write(extra, tone(750, 1.2), SR)
    pattern = str(tmp_path / "*.wav")
    res = runner.invoke(
        app,
        ["predict", str(audio_dir), pattern, "--json", "--backend", "numpy", "--no-speech-gate"],
    )  # fmt: skip  (tones stand in for speech)
    assert res.exit_code == 3, res.output  # broken.wav failed, the others gave results
    rows = json_lines(res.stdout)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert sorted(by_name) == ["a.wav", "b.flac", "broken.wav", "c.wav"]  # no notes.txt
    assert len(rows) == 4
    for name, label in (("a.wav", "neutral"), ("b.flac", "sad"), ("c.wav", "angry")):
        r = by_name[name]
        assert {"path", "label", "probabilities", "uncertain"} <= set(r)
        assert r["label"] == label and set(r["probabilities"]) == set(LABELS)
        assert r["uncertain"] is False and "segments" not in r
    assert set(by_name["broken.wav"]) == {"path", "error"}
    assert "not decodable" in by_name["broken.wav"]["error"]
    assert "1 of 4 file(s) skipped" in res.stderr and "broken.wav" in res.stderr
    assert fake_model == [(None, "numpy")]


def test_predict_long_recording_has_segments_and_timeline_files(fake_model, tmp_path):
    rec = long_recording(tmp_path / "talk.wav")
    out = tmp_path / "timelines"
    res = runner.invoke(
        app, ["predict", str(rec), "--json", "--vad", "energy", "--timeline-dir", str(out)]
    )
    assert res.exit_code == 0, res.output
    (row,) = json_lines(res.stdout)
    assert [s["label"] for s in row["segments"]] == ["happy", "sad", "angry"]
    assert row["segments"][1]["start"] == pytest.approx(10.0, abs=0.15)
    for ext in ("json", "csv", "png"):
        assert (out / f"talk.timeline.{ext}").stat().st_size > 0
    tl = json.loads((out / "talk.timeline.json").read_text())
    assert tl["vad"] == "energy" and len(tl["segments"]) == 3


def test_predict_all_failed_exits_nonzero(fake_model, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    res = runner.invoke(app, ["predict", str(bad), str(tmp_path / "missing.wav"), "--json"])
    assert res.exit_code == 1
    rows = json_lines(res.stdout)
    assert [set(r) for r in rows] == [{"path", "error"}] * 2
    assert rows[1]["error"] == "file not found"


def test_predict_nothing_to_do_is_a_failed_input(fake_model, tmp_path):
    res = runner.invoke(app, ["predict", str(tmp_path / "*.mp3")])
    assert res.exit_code == 1 and "no audio files" in res.stderr
    assert "*.mp3: pattern matches no audio file" in res.stderr


# ------------------------------------------------------------------ inputs and exit codes


def write_tree(root: Path, names: list[str]) -> None:
    """Tiny tones at ROOT/NAME (any extension soundfile writes); ``bad*`` files are not audio."""
    for name in names:
        f = root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        if f.name.startswith("bad"):
            f.write_bytes(b"RIFF....WAVE not audio")
        else:
            sf.write(f, tone(150, 0.3), SR)


def test_a_pattern_after_a_folder_filters_that_folder(tmp_path, monkeypatch):
    from emovox.audio.files import expand_inputs

    write_tree(tmp_path, ["stray.flac", "top.wav", "d/a.mp3", "d/b.flac", "d/sub/c.flac",
                          "d/parts/x.wav", "d/p1.wav", "e/f.flac", "e/g.wav"])  # fmt: skip
    monkeypatch.chdir(tmp_path)
    # The README's example: FLACs of d at any depth; not d's MP3, not the current folder's FLAC.
    assert expand_inputs(["d", "*.flac"]) == (["d/b.flac", "d/sub/c.flac"], [])
    # By file name or path inside the folder: "p*.wav" is not "parts/x.wav".
    assert expand_inputs(["d", "p*.wav"]) == (["d/p1.wav"], [])
    assert expand_inputs(["d", "sub/*.flac"]) == (["d/sub/c.flac"], [])
    # Several folders, several patterns; a folder after the patterns is not filtered.
    assert expand_inputs(["d", "e", "*.flac"])[0] == ["d/b.flac", "d/sub/c.flac", "e/f.flac"]
    assert expand_inputs(["e", "*.wav", "*.flac"])[0] == ["e/f.flac", "e/g.wav"]
    assert expand_inputs(["e", "*.wav", "d", "*.mp3"])[0] == ["e/g.wav", "d/a.mp3"]
    # Files named explicitly are kept; an absolute pattern is a path.
    assert expand_inputs(["d", "top.wav", "*.mp3"])[0] == ["d/a.mp3", "top.wav"]
    assert expand_inputs(["e", str(tmp_path / "*.flac")])[0] == [
        "e/f.flac", "e/g.wav", str(tmp_path / "stray.flac")]  # fmt: skip
    # With no folder before it, a pattern is expanded from the current folder.
    assert expand_inputs(["*.flac"]) == (["stray.flac"], [])
    assert expand_inputs(["top.wav", "*.flac"])[0] == ["top.wav", "stray.flac"]
    assert expand_inputs(["*.flac", "e"])[0] == ["stray.flac", "e/f.flac", "e/g.wav"]
    assert expand_inputs(["**/c.flac"])[0] == ["d/sub/c.flac"]


def test_a_pattern_that_matches_nothing_is_reported(tmp_path, monkeypatch):
    from emovox.audio.files import expand_inputs

    write_tree(tmp_path, ["stray.flac", "d/a.wav", "take[1]/sub/b.wav", "e/g.wav"])
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    assert expand_inputs(["d", "*.flac"]) == ([], [("*.flac", "pattern matches no audio file in "
        "d (to take it from the current folder, put it before the folders)")])  # fmt: skip
    assert expand_inputs(["d", "e", "*.mp3"]) == (
        [], [("*.mp3", "pattern matches no audio file in d, e")])  # fmt: skip
    assert expand_inputs(["*.ogg"]) == ([], [("*.ogg", "pattern matches no audio file")])
    files, empty = expand_inputs(["empty", "d", "*.wav"])
    assert files == ["d/a.wav"] and empty == [("empty", "folder holds no audio files")]
    # A folder whose name looks like a pattern is a folder, and its name is not a pattern.
    assert expand_inputs(["take[1]", "sub/*.wav"]) == (["take[1]/sub/b.wav"], [])


def test_predict_filters_a_folder_and_counts_unmatched_patterns(fake_model, tmp_path, monkeypatch):
    write_tree(tmp_path, ["stray.flac", "d/a.wav", "d/sub/b.flac", "d/c.mp3"])
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["predict", "d", "*.flac", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["path"] for r in json_lines(res.stdout)] == ["d/sub/b.flac"]
    res = runner.invoke(app, ["predict", "d", "*.flac", "*.ogg", "--json"])
    assert res.exit_code == 3, res.output  # one input gave nothing, one gave a result
    assert [r["path"] for r in json_lines(res.stdout)] == ["d/sub/b.flac"]
    assert "error: *.ogg: pattern matches no audio file in d" in " ".join(res.stderr.split())


def test_predict_exit_codes(fake_model, tmp_path):
    mixed, bad = tmp_path / "mixed", tmp_path / "bad"
    write_tree(mixed, ["a.wav", "b.wav", "bad1.wav", "sub/bad2.wav"])
    write_tree(bad, ["bad1.wav", "bad2.flac"])
    res = runner.invoke(app, ["predict", str(mixed), "--csv"])
    assert res.exit_code == 3, res.output  # some failed: the good results are still printed
    rows = list(csv.DictReader(res.stdout.splitlines()))
    assert len(rows) == 4 and sorted(Path(r["path"]).name for r in rows if not r["error"]) == [
        "a.wav", "b.wav"]  # fmt: skip
    assert "2 of 4 file(s) skipped" in res.stderr
    res = runner.invoke(app, ["predict", str(bad), "--json"])
    assert res.exit_code == 1 and len(json_lines(res.stdout)) == 2  # all failed
    res = runner.invoke(app, ["predict", str(mixed), "--bogus"])
    assert res.exit_code == 2  # a usage error
    res = runner.invoke(app, ["predict", str(mixed), "--json", "--csv"])
    assert res.exit_code == 2 and "choose one" in res.stderr


def test_predict_help_states_the_input_rule_and_exit_codes():
    res = runner.invoke(app, ["predict", "--help"], env={"COLUMNS": "200"})
    text = " ".join(res.stdout.split())
    assert "that follows folders filters the files found in them" in text
    assert "Exit codes: 0 every input gave a result; 3 some inputs failed" in text


def test_predict_table_and_csv(fake_model, audio_dir):
    res = runner.invoke(app, ["predict", str(audio_dir / "a.wav"), "--no-speech-gate"])
    assert res.exit_code == 0 and "a.wav" in res.stdout and "neutral" in res.stdout
    res = runner.invoke(app, ["predict", str(audio_dir / "a.wav"), "--csv", "--no-speech-gate"])
    header, row = res.stdout.strip().splitlines()
    assert header.split(",")[:3] == ["path", "label", "uncertain"]
    assert header.endswith(",".join(LABELS)) and ",neutral,0," in row


def test_predict_missing_model_is_a_clear_error(tmp_path, audio_dir):
    pytest.importorskip("emovox.inference.bundle")
    res = runner.invoke(app, ["predict", str(audio_dir), "--model", str(tmp_path / "nomodel")])
    assert res.exit_code == 2 and "cannot load the model" in res.stderr


def test_predict_with_a_random_bundle(tmp_path, audio_dir):
    bundle = pytest.importorskip("emovox.inference.random_bundle")
    path = bundle.make_random_bundle(tmp_path / "m", labels=LABELS)
    res = runner.invoke(
        app, ["predict", str(audio_dir / "a.wav"), "--model", str(path), "--json",
              "--backend", "numpy", "--no-speech-gate"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    (row,) = json_lines(res.stdout)
    assert row["label"] in LABELS and abs(sum(row["probabilities"].values()) - 1) < 1e-3


def test_listen_file_prints_a_line_per_segment(fake_model, tmp_path):
    rec = long_recording(tmp_path / "talk.flac")
    t0 = time.monotonic()
    res = runner.invoke(
        app, ["listen", "--file", str(rec), "--speed", "0", "--vad", "energy", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert time.monotonic() - t0 < 20  # 25 s of audio, not played in real time
    segs = json_lines(res.stdout)
    assert [s["label"] for s in segs] == ["happy", "sad", "angry"]
    assert [round(s["start"]) for s in segs] == [2, 10, 18]
    res = runner.invoke(app, ["listen", "--file", str(rec), "--speed", "0", "--vad", "energy"])
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 3 and "angry" in lines[2] and "3 speech segment(s)" in res.stderr


def test_paced_plays_in_real_time_times_speed():
    chunks = [np.zeros(1600, np.float32)] * 10  # 1 s of audio
    t0 = time.monotonic()
    assert len(list(stream.paced(chunks, speed=5.0))) == 10
    assert time.monotonic() - t0 >= 0.17  # 1 s / 5, less the first chunk


def test_listen_without_microphone_needs_a_file(fake_model, monkeypatch):
    monkeypatch.setattr(microphone, "microphone_available", lambda: False)
    res = runner.invoke(app, ["listen"])
    assert res.exit_code == 2 and "--file" in res.stderr


def test_listen_on_a_bad_file_is_a_failed_input(fake_model, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVE not audio")
    res = runner.invoke(app, ["listen", "--file", str(bad), "--speed", "0", "--vad", "energy"])
    assert res.exit_code == 1 and "bad.wav" in res.stderr and "not decodable" in res.stderr


# ------------------------------------------------------------------ the bundled demo


def test_demo_clips_are_small_credited_and_labelled():
    from emovox.inference.demo import demo_dir, load_clips

    codes = {"NEU": "neutral", "HAP": "happy", "SAD": "sad", "ANG": "angry",
             "FEA": "fearful", "DIS": "disgust"}  # fmt: skip
    clips = load_clips()
    assert sorted(c.label for c in clips) == sorted(codes.values())
    total = 0
    for c in clips:
        info = sf.info(str(c.path))
        assert info.samplerate == SR and info.channels == 1 and info.duration < 3.0
        assert codes[c.file.split("_")[2]] == c.label  # CREMA-D name agrees with the label
        total += c.path.stat().st_size
    assert total < 300_000
    credits = (demo_dir() / "CREDITS.md").read_text()
    assert "Cao" in credits and "5, no. 4" in credits and "Open Database License" in credits
    package_data = (REPO / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    assert '"assets/demo/*"' in package_data.split("\n[")[0]  # shipped in the wheel


def test_demo_command_writes_the_report(fake_model, tmp_path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--out", str(out), "--vad", "energy"])
    assert res.exit_code == 0, res.output
    assert "clips right:" in res.stdout and "1074_IOM_NEU_XX.opus" in res.stdout
    for f in ("predictions.json", "timeline.json", "timeline.csv", "timeline.png", "summary.md"):
        assert (out / f).stat().st_size > 0, f
    preds = json.loads((out / "predictions.json").read_text())
    assert [p["true"] for p in preds] == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert all(p["label"] in LABELS for p in preds)
    tl = json.loads((out / "timeline.json").read_text())
    assert len(tl["segments"]) == 6 and {s["true"] for s in tl["segments"]} == set(
        p["true"] for p in preds
    )
    assert "fake-model" in (out / "summary.md").read_text()


def test_prediction_csv_rows_and_unique_timeline_stems():
    from emovox.inference.outputs import csv_header, csv_row, unique_stem

    ok = api.Prediction("sad", {"sad": 0.7, "angry": 0.3}, False, path="a.wav", duration=1.23456)
    bad = api.Prediction(None, {}, False, path="b.wav", error="unreadable")
    quiet = api.Prediction(None, {}, True, path="c.wav", duration=2.0, no_speech=True,
                           warnings=["file ends early: 2.00 of 3.00 s read", "x"])  # fmt: skip
    assert csv_header(["sad", "angry"]) == [
        "path", "label", "uncertain", "no_speech", "duration", "segments", "error", "warnings",
        "sad", "angry",
    ]  # fmt: skip
    assert csv_row(ok, ["sad", "angry"]) == ["a.wav", "sad", 0, 0, 1.235, "", "", "", 0.7, 0.3]
    assert csv_row(bad, ["sad", "angry"]) == [
        "b.wav", "", "", "", "", "", "unreadable", "", "", ""
    ]  # fmt: skip
    assert csv_row(quiet, ["sad", "angry"]) == [
        "c.wav", "", 1, 1, 2.0, "", "", "file ends early: 2.00 of 3.00 s read; x", "", ""
    ]  # fmt: skip
    used: set[str] = set()
    names = [unique_stem(p, used) for p in ("x/talk.wav", "y/talk.mp3", "talk", "/")]
    assert names == ["talk", "talk-2", "talk-3", "recording"]


def truncated_wav(path: Path, y: np.ndarray) -> Path:
    """``y`` as a WAV file cut halfway through its bytes (its header still says the full length)."""
    sf.write(path, y, SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_decode_warnings_in_the_table_csv_and_json(fake_model, tmp_path):
    cut = truncated_wav(tmp_path / "cut.wav", tone(350, 2.0))
    whole = tmp_path / "whole.wav"
    sf.write(whole, tone(550, 1.0), SR)
    args = ["predict", str(cut), str(whole), "--no-speech-gate"]
    warning = "file ends early: 1.00 of 2.00 s read"
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert f"warning: {cut}: {warning}" in " ".join(res.stderr.split())
    assert "whole.wav" not in res.stderr
    res = runner.invoke(app, [*args, "--csv"])
    rows = {Path(r["path"]).name: r for r in csv.DictReader(res.stdout.splitlines())}
    assert rows["cut.wav"]["warnings"] == warning and rows["cut.wav"]["label"] == "happy"
    assert rows["whole.wav"]["warnings"] == "" and rows["whole.wav"]["no_speech"] == "0"
    assert warning not in res.stderr  # in the rows, not repeated
    res = runner.invoke(app, [*args, "--json"])
    assert [r.get("warnings") for r in json_lines(res.stdout)] == [[warning], None]


def test_csv_marks_no_speech(fake_model, tmp_path):
    noise = tmp_path / "noise.wav"
    sf.write(noise, np.random.default_rng(0).uniform(-1, 1, 3 * SR).astype(np.float32), SR)
    res = runner.invoke(app, ["predict", str(noise), "--csv", "--vad", "energy"])
    assert res.exit_code == 0, res.output
    (row,) = csv.DictReader(res.stdout.splitlines())
    assert row["no_speech"] == "1" and row["label"] == "" and row["neutral"] == ""


def test_timeline_files_keep_the_segments_the_speech_gate_refused(fake_model, tmp_path):
    rec = long_recording(tmp_path / "talk.wav")
    y, _ = sf.read(rec, dtype="float32")
    y[6 * SR : 8 * SR] = np.random.default_rng(1).uniform(-0.5, 0.5, 2 * SR)  # loud noise
    sf.write(rec, y, SR)
    out = tmp_path / "timelines"
    res = runner.invoke(
        app, ["predict", str(rec), "--json", "--vad", "energy", "--timeline-dir", str(out)]
    )
    assert res.exit_code == 0, res.output
    (row,) = json_lines(res.stdout)
    assert [s["label"] for s in row["segments"]] == ["happy", "sad", "angry"]
    (gated,) = row["gated"]
    assert gated["start"] == pytest.approx(6.0, abs=0.15) and "of speech" in gated["reason"]
    tl = json.loads((out / "talk.timeline.json").read_text())
    assert tl["speech_gate"] == "energy" and tl["gated"] == row["gated"]
    rows = list(csv.DictReader((out / "talk.timeline.csv").read_text().splitlines()))
    assert [(r["label"], r["no_speech"]) for r in rows] == [
        ("happy", "0"), ("", "1"), ("sad", "0"), ("angry", "0")
    ]  # fmt: skip
    assert float(rows[1]["start"]) == gated["start"] and rows[1]["neutral"] == ""
    assert float(rows[1]["speech"]) == gated["speech"] and float(rows[0]["speech"]) > 1.0
