"""One decoding path for every input: M4A/WebM through PyAV, non-regular files never opened,
truncated files and decoder complaints reported as warnings, precise messages for non-audio."""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import emovox
from emovox.audio.decode import (
    AudioError,
    AudioTooLong,
    AudioWarning,
    bytes_source,
    decode,
    decode_with_info,
)
from emovox.audio.files import BROKEN_LINK, regular_file_problem
from emovox.audio.stream import iter_blocks, probe_seconds
from emovox.cli import app
from emovox.inference.random_bundle import make_random_bundle

SR = 16000
LABELS = ("neutral", "happy", "sad", "angry")


def tone(seconds: float, sr: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode_av(fmt: str, codec: str, rate: int, seconds: float = 2.0, channels: int = 1) -> bytes:
    """A tone encoded with PyAV (FFmpeg) in memory: AAC in MP4 (M4A), Opus in WebM."""
    y = tone(seconds, rate)
    layout = "stereo" if channels == 2 else "mono"
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        stream = c.add_stream(codec, rate=rate)
        stream.layout = layout
        for i in range(0, len(y), 1024):
            block = np.repeat(y[i : i + 1024], channels)[None]  # packed (interleaved) samples
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout=layout)
            frame.sample_rate = rate
            for p in stream.encode(frame):
                c.mux(p)
        for p in stream.encode(None):
            c.mux(p)
    return buf.getvalue()


def peak_hz(y: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(y))) * SR / len(y))


@pytest.fixture(scope="module")
def m4a() -> bytes:
    return encode_av("mp4", "aac", 44100)


@pytest.fixture(scope="module")
def webm() -> bytes:
    return encode_av("webm", "libopus", 48000)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_random_bundle(tmp_path_factory.mktemp("dec") / "model", labels=LABELS, seed=1)


def wav_bytes(seconds: float = 2.0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(seconds, SR), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# ------------------------------------------------------------------------------ PyAV formats


@pytest.mark.parametrize("kind", ["m4a", "webm"])
def test_m4a_and_webm_decode_from_path_and_bytes(request, tmp_path, kind):
    data = request.getfixturevalue(kind)
    path = tmp_path / f"clip.{kind}"
    path.write_bytes(data)
    for source in (path, str(path), data, io.BytesIO(data)):
        d = decode_with_info(source)
        assert d.sample_rate == SR and d.samples.dtype == np.float32 and d.samples.ndim == 1
        assert len(d.samples) / SR == pytest.approx(2.0, abs=0.06)
        assert peak_hz(d.samples) == pytest.approx(440, abs=3) and d.warnings == []
    assert probe_seconds(path) == pytest.approx(2.0, abs=0.06)
    blocks = np.concatenate(list(iter_blocks(path, block_seconds=0.5)))
    assert np.allclose(blocks, decode(path), atol=1e-5)  # streamed == one shot


def test_stereo_m4a_is_averaged_like_libsndfile_input(tmp_path):
    mono = decode(encode_av("mp4", "aac", 44100))
    stereo = decode(encode_av("mp4", "aac", 44100, channels=2))
    assert np.max(np.abs(stereo)) == pytest.approx(np.max(np.abs(mono)), rel=0.05)


def test_m4a_and_webm_through_emovox_load_and_the_cli(tmp_path, m4a, webm, bundle):
    model = emovox.load(bundle, backend="numpy")
    (tmp_path / "a.m4a").write_bytes(m4a)
    (tmp_path / "b.webm").write_bytes(webm)
    for source in (tmp_path / "a.m4a", m4a, str(tmp_path / "b.webm"), webm):
        p = model.predict(source)
        assert p.ok and p.duration == pytest.approx(2.0, abs=0.06) and p.warnings == []
    res = CliRunner().invoke(app, ["predict", str(tmp_path), "--json", "--model", str(bundle)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2 and not any("error" in r for r in rows), rows


def test_ffmpeg_is_told_the_container_and_never_probes(tmp_path, monkeypatch, m4a):
    calls: list[tuple[object, object]] = []
    real = av.open

    def spy(file, *args, **kwargs):
        calls.append((file, kwargs.get("format")))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", spy)
    playlist = tmp_path / "list.m4a"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nhttp://example.invalid/a.aac\n")
    with pytest.raises(AudioError, match="not audio: the file holds text"):
        decode(playlist)
    with pytest.raises(AudioError, match="not audio: not a recognised audio format"):
        decode(os.urandom(3000).replace(b"\xff", b"\x00"))
    assert calls == []  # unknown content never reaches FFmpeg
    path = tmp_path / "a.m4a"
    path.write_bytes(m4a)
    decode(path)
    (file, fmt), *_ = calls
    assert fmt == "mp4" and not isinstance(file, (str, Path))  # a file object, not a URL


def test_damaged_m4a_and_webm_name_the_container(tmp_path, m4a, webm):
    with pytest.raises(AudioError, match=r"MP4/M4A data not decodable: truncated or corrupt"):
        decode(m4a[: len(m4a) // 2])  # the index (moov) is at the end: cut off
    d = decode_with_info(webm[: len(webm) // 2])
    assert d.warnings == [f"file ends early: {len(d.samples) / SR:.2f} of 2.01 s read"]
    with pytest.raises(AudioError, match="AAC data not decodable"):
        decode(b"\xff\xf1" + bytes(300))


# ------------------------------------------------------------------------------ file kinds


def run_quickly(fn, timeout: float = 10.0):
    """``fn()`` in a thread; fails (rather than hanging the suite) if it blocks."""
    out: dict[str, object] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked on a named pipe"
    return out


def test_named_pipe_is_never_opened(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for fn in (decode, probe_seconds, lambda p: list(iter_blocks(p))):
        out = run_quickly(lambda fn=fn: fn(fifo))
        err = out["error"]
        assert isinstance(err, AudioError)
        assert str(err) == f"{fifo}: not a regular file (named pipe)"


def test_broken_link_and_folder_get_the_corpus_scan_message(tmp_path):
    link = tmp_path / "gone.wav"
    link.symlink_to(tmp_path / "missing.wav")
    for fn in (decode, probe_seconds, lambda p: list(iter_blocks(p))):
        with pytest.raises(AudioError) as exc:
            fn(link)
        assert exc.value.reason == BROKEN_LINK == regular_file_problem(link)
    with pytest.raises(AudioError, match=r"not a regular file \(folder\)"):
        decode(tmp_path)


def test_predict_names_pipes_links_and_text_like_corpora_scan(tmp_path, bundle):
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "missing.wav")
    (tmp_path / "notes.mp3").write_text("these are my notes, not a song\n" * 5)
    (tmp_path / "noise.wav").write_bytes(os.urandom(5000).replace(b"\xff", b"\x00"))
    names = ["pipe.wav", "gone.wav", "notes.mp3", "noise.wav"]
    args = ["predict", *(str(tmp_path / n) for n in names), "--json", "--model", str(bundle)]
    out = run_quickly(lambda: CliRunner().invoke(app, args), timeout=60)
    res = out["value"]
    rows = {Path(r["path"]).name: r["error"] for r in map(json.loads, res.stdout.splitlines())}
    assert rows == {
        "pipe.wav": "not a regular file (named pipe)",
        "gone.wav": BROKEN_LINK,
        "notes.mp3": "not audio: the file holds text",
        "noise.wav": "not audio: not a recognised audio format (the content is checked, "
        "not the file name)",
    }


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"hello, plain text\n" * 30, "not audio: the content holds text"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "not audio: the content is a PNG image"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "WAV data not decodable: truncated or corrupt"),
        (b"\xff\xfb\x90\x00" + bytes(300), "MP3 data not decodable: truncated or corrupt"),
    ],
)
def test_undecodable_bytes_say_what_they_are(data, reason):
    with pytest.raises(AudioError, match=reason) as exc:
        decode(data)
    assert "regular file" not in str(exc.value) and "0x" not in str(exc.value)


def test_text_bytes_are_refused_without_a_temporary_file(monkeypatch):
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: pytest.fail("temp file made"))
    with pytest.raises(AudioError, match="holds text"), bytes_source(b"just words\n" * 40):
        pass


# ------------------------------------------------------------------------------ warnings


def test_truncated_wav_is_decoded_with_a_warning(tmp_path):
    data = wav_bytes(2.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    d = decode_with_info(cut)
    assert len(d.samples) / SR == pytest.approx(1.0, abs=0.01)
    assert d.warnings == ["file ends early: 1.00 of 2.00 s read"]
    with pytest.warns(AudioWarning, match=r"cut.wav: file ends early: 1.00 of 2.00 s read"):
        decode(cut)
    notes: list[str] = []
    list(iter_blocks(cut, notes=notes))
    assert notes == d.warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert decode_with_info(wav_bytes(2.0)).warnings == []  # a whole file: no warning


def test_streaming_wav_with_unknown_size_is_not_called_truncated(tmp_path):
    data = bytearray(wav_bytes(1.0))
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # a live recorder's "size unknown"
    assert decode_with_info(bytes(data)).warnings == []


def test_truncated_mp3_and_aiff_are_decoded_with_a_warning():
    for fmt in ("MP3", "AIFF"):
        buf = io.BytesIO()
        sf.write(buf, tone(2.0, SR), SR, format=fmt)
        data = buf.getvalue()
        d = decode_with_info(data[: len(data) // 2])
        assert len(d.warnings) == 1 and d.warnings[0].startswith("file ends early: "), fmt
        assert d.warnings[0].endswith(" of 2.00 s read"), d.warnings


def test_mpeg_decoder_complaints_name_the_file_instead_of_going_to_stderr(tmp_path, capfd):
    buf = io.BytesIO()
    sf.write(buf, tone(3.0, SR), SR, format="MP3")
    data = bytearray(buf.getvalue())
    mid = len(data) // 2
    data[mid : mid + 400] = np.random.default_rng(1).integers(0, 256, 400, np.uint8).tobytes()
    bad = tmp_path / "damaged.mp3"
    bad.write_bytes(bytes(data))
    d = decode_with_info(bad)
    assert "Illegal Audio-MPEG-Header" not in capfd.readouterr().err  # nothing on fd 2
    assert d.warnings[0].startswith("MP3 decoder: ") and "resync" in d.warnings[0]
    with pytest.warns(AudioWarning) as caught:
        decode(bad)
    assert [str(w.message) for w in caught] == [f"{bad}: {w}" for w in d.warnings]
    assert "Illegal Audio-MPEG-Header" in d.warnings[0] and d.warnings[1].endswith(" decoded")


def test_mpeg_bytes_are_checked_without_touching_the_disk(monkeypatch):
    for fn in ("mkstemp", "TemporaryFile", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, fn, lambda *a, _fn=fn, **k: pytest.fail(f"{_fn} called"))
    buf = io.BytesIO()
    sf.write(buf, tone(1.0, SR), SR, format="MP3")
    assert len(decode(buf.getvalue())) / SR == pytest.approx(1.0, abs=0.05)


def test_prediction_carries_the_warnings(tmp_path, bundle):
    data = wav_bytes(2.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    model = emovox.load(bundle, backend="numpy")
    for source in (cut, cut.read_bytes()):
        p = model.predict(source)
        assert p.ok and p.warnings == ["file ends early: 1.00 of 2.00 s read"]
        assert p.to_dict()["warnings"] == p.warnings
    assert "warnings" not in model.predict(data).to_dict()
    long_cut = tmp_path / "long_cut.wav"
    whole = wav_bytes(3.0)
    long_cut.write_bytes(whole[: len(whole) * 2 // 3])
    p = emovox.load(bundle, backend="numpy", long_seconds=1.0).predict(long_cut)
    assert p.warnings == ["file ends early: 2.00 of 3.00 s read"]


def test_too_long_stops_early_and_says_so(webm):
    with pytest.raises(AudioTooLong) as exc:
        decode_with_info(webm, max_seconds=1.0)
    assert exc.value.seconds > 1.0 and "exceeds the 1 s limit" in exc.value.reason


# ------------------------------------------------------------------------------ the service


def test_service_decodes_m4a_through_the_shared_path(m4a):
    pytest.importorskip("fastapi")
    from emovox.service.inputs import ServiceError, open_audio

    audio = open_audio(m4a, max_seconds=60)
    assert isinstance(audio.source, np.ndarray) and audio.duration == pytest.approx(2.0, abs=0.06)
    assert np.allclose(audio.source, decode(m4a))
    with pytest.raises(ServiceError) as exc:
        open_audio(m4a, max_seconds=1)
    assert exc.value.status == 413
    with pytest.raises(ServiceError) as exc:
        open_audio(b"some text, not audio\n" * 20, max_seconds=60)
    assert exc.value.status == 415 and "not audio: the content holds text" in exc.value.message
    with pytest.raises(ServiceError) as exc:
        open_audio(m4a[: len(m4a) // 2], max_seconds=60)
    assert exc.value.status == 422 and "MP4/M4A data not decodable" in exc.value.message


def test_undecodable_file_leaves_nothing_on_stderr(tmp_path, capfd):
    # text named .mp3: libsndfile tries its MPEG decoder, which complains on fd 2 ("Illegal
    # Audio-MPEG-Header"); the failure has its own message naming the file, nothing else is said
    bad = tmp_path / "notes.mp3"
    bad.write_text("hello, not audio\n" * 50)
    with pytest.raises(AudioError, match="notes.mp3: not audio: the file holds text"):
        decode(str(bad))
    assert "MPEG" not in capfd.readouterr().err
