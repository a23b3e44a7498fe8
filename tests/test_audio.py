import io

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import (
    AudioError,
    Preprocess,
    content_hash,
    decode,
    load_clip,
    normalize_loudness,
    trim_silence,
)


def tone(sr=16000, seconds=1.0, f=220.0, amp=0.3):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_decode_resamples_and_downmixes(tmp_path):
    y = tone(sr=48000, seconds=0.5)
    stereo = np.stack([y, y], axis=1)
    p = tmp_path / "a.flac"
    sf.write(p, stereo, 48000)
    out = decode(p)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 8000) <= 2


def test_decode_sniffs_content_not_extension(tmp_path):
    p = tmp_path / "looks_like.wav"
    sf.write(p, tone(sr=24414, seconds=0.3), 24414, format="AIFF")  # TESS quirk: AIFF named .wav
    assert abs(len(decode(p)) - int(0.3 * 16000)) <= 2


def test_decode_bytes_and_same_hash_across_containers(tmp_path):
    y = (tone(seconds=0.4) * 32767).astype(np.int16)
    sf.write(tmp_path / "a.wav", y, 16000, subtype="PCM_16")
    sf.write(tmp_path / "b.flac", y, 16000, subtype="PCM_16")
    data = (tmp_path / "a.wav").read_bytes()
    assert content_hash(decode(io.BytesIO(data))) == content_hash(decode(tmp_path / "b.flac"))
    assert content_hash(decode(data)) != content_hash(decode(data) * 0.5)


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "not decodable"),
        (lambda p: sf.write(p, np.zeros(16000, np.float32), 16000), "silent"),
        (lambda p: sf.write(p, tone(seconds=0.05), 16000), "too short"),
    ],
)
def test_bad_clips_name_the_file_and_problem(tmp_path, make, reason):
    p = tmp_path / "bad.wav"
    make(p)
    with pytest.raises(AudioError, match=reason) as info:
        load_clip(p)
    assert str(p) in str(info.value)


def test_too_long_and_missing(tmp_path):
    p = tmp_path / "long.wav"
    sf.write(p, tone(seconds=3), 16000)
    with pytest.raises(AudioError, match="too long"):
        load_clip(p, Preprocess(max_seconds=2))
    with pytest.raises(AudioError, match="not found"):
        decode(tmp_path / "nope.wav")


def test_trim_and_normalize():
    y = np.concatenate([np.zeros(8000, np.float32), tone(seconds=0.5), np.zeros(8000, np.float32)])
    t = trim_silence(y)
    assert 7600 <= len(t) <= 8800
    n = normalize_loudness(tone(amp=0.01), target_dbfs=-23)
    assert abs(20 * np.log10(np.sqrt(np.mean(n**2))) + 23) < 0.1
    loud = normalize_loudness(np.array([0.0, 1.0, 0.0, 0.0] * 100, np.float32), target_dbfs=0)
    assert np.max(np.abs(loud)) <= 0.99 + 1e-6


def test_denoise_improves_snr():
    rng = np.random.default_rng(0)
    clean = np.concatenate([np.zeros(16000, np.float32), tone(seconds=1.0)])
    noisy = clean + 0.02 * rng.standard_normal(len(clean)).astype(np.float32)
    from emovox.audio import reduce_noise

    den = reduce_noise(noisy)
    assert np.mean(den[:16000] ** 2) < 0.5 * np.mean(noisy[:16000] ** 2)


def test_sniff_names_containers_text_and_other_files():
    from emovox.audio.sniff import is_text, not_audio_reason, sniff

    assert sniff(b"RIFF\x00\x00\x00\x00WAVE") == "WAV" and sniff(b"fLaC") == "FLAC"
    assert sniff(b"\x00\x00\x00\x20ftypM4A ") == "MP4/M4A" and sniff(b"\xff\xf1\x50") == "AAC"
    assert sniff(b"\xff\xfb\x90\x00") == "MP3" and sniff(b"hello") is None
    cut = ("émotion " * 600).encode()[:4095]  # ends inside a two-byte character
    assert is_text(cut) and not is_text(b"text\x00with a NUL") and not is_text(bytes(range(256)))
    assert not_audio_reason(b"%PDF-1.7") == "not audio: the file is a PDF document"
    assert not_audio_reason(b"notes\n", "content") == "not audio: the content holds text"
