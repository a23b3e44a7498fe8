"""Recording-condition views of a training clip: the channels and places real audio comes from.

Studio corpora are clean, full-band and unclipped; users record on phones, in streets, over
calls and through lossy codecs. These functions turn a clean clip into such a recording: a
telephone channel, a low-bitrate codec round trip, gain with clipping, non-speech noise (brown
noise, mains hum) and babble, :func:`crop` (a short utterance out of a longer one), and
:func:`random_condition`, which draws one or two of the others (with
:mod:`emovox.deep.augment`'s noise, reverberation, speed and pitch). Every function but speed
and crop keeps the length; all return finite ``float32`` and take an explicit generator where
they are random. For TRAINING data only.

>>> import numpy as np
>>> y = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
>>> telephone(y).shape
(16000,)
"""

from __future__ import annotations

import io

import numpy as np
import scipy.signal
import soxr

from emovox.deep import augment
from emovox.deep.augment import finite32, fit_length, rms

#: Codecs :func:`codec` round-trips through, with their container and bitrate range (kbit/s).
CODECS = {"opus": ("ogg", "libopus", (6, 64)), "mp3": ("mp3", "libmp3lame", (8, 64))}
#: Noise kinds :func:`add_condition_noise` adds, beyond :data:`emovox.deep.augment.NOISE_KINDS`.
CONDITION_NOISES = ("white", "pink", "brown", "hum", "babble")


def telephone(y: np.ndarray, sr: int = 16_000) -> np.ndarray:
    """A narrow-band call: 8 kHz sampling, 300-3400 Hz band, 8-bit mu-law, back to ``sr``."""
    y = np.asarray(y, dtype=np.float32)
    if len(y) < 16:
        return finite32(y.copy())
    narrow = soxr.resample(y, sr, 8000, quality="MQ").astype(np.float64)
    sos = scipy.signal.butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos")
    narrow = scipy.signal.sosfilt(sos, narrow)
    peak = max(float(np.max(np.abs(narrow))), 1e-9)
    x = narrow / peak
    mu = 255.0
    q = np.round((np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)) * 127) / 127
    x = np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu * peak
    return finite32(fit_length(soxr.resample(x, 8000, sr, quality="MQ"), len(y)))


def codec(y: np.ndarray, sr: int = 16_000, name: str = "opus", kbps: int = 12) -> np.ndarray:
    """Encode with a lossy codec at ``kbps`` kbit/s and decode again (in memory, PyAV)."""
    import av

    if name not in CODECS:
        raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {name!r}")
    fmt, encoder, (lo, hi) = CODECS[name]
    if not lo <= kbps <= hi:
        raise ValueError(f"{name} bitrate must lie in {lo}-{hi} kbit/s, got {kbps}")
    y = np.asarray(y, dtype=np.float32)
    if len(y) < 16:
        return finite32(y.copy())
    rate = sr if name == "mp3" else 16_000
    x = y if rate == sr else soxr.resample(y, sr, rate, quality="MQ")
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.bit_rate = int(kbps) * 1000
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.clip(x, -1, 1).astype(np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    parts = []
    with av.open(buf, "r") as inp:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in inp.decode(audio=0):
            for f in resampler.resample(frame):
                parts.append(f.to_ndarray().reshape(-1))
    z = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if rate != sr:
        z = soxr.resample(z, rate, sr, quality="MQ")
    return finite32(fit_length(z, len(y)))


def clipping(y: np.ndarray, db: float = 12.0) -> np.ndarray:
    """An overdriven input: gain so the peak sits ``db`` dB above full scale, hard clipping at
    full scale, then the original RMS level back."""
    y = np.asarray(y, dtype=np.float32)
    peak, level = float(np.max(np.abs(y))) if y.size else 0.0, rms(y)
    if peak == 0.0:
        return finite32(y.copy())
    z = np.clip(y * (10 ** (db / 20) / peak), -1.0, 1.0)
    return finite32(z * (level / max(rms(z), 1e-12)))


def brown_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS brown (1/f^2, rumble-like) noise: leaky-integrated white noise."""
    x = scipy.signal.lfilter([1.0], [1.0, -0.995], rng.standard_normal(max(n, 1)))[:n]
    x = x - np.mean(x)
    return (x / max(rms(x), 1e-12)).astype(np.float32)


def hum(n: int, rng: np.random.Generator, sr: int = 16_000) -> np.ndarray:
    """Unit-RMS mains hum: 50 or 60 Hz and its odd harmonics with random phases, plus a
    little hiss."""
    t = np.arange(n) / sr
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    x = sum(
        rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
        for k in (1, 3, 5, 7)
    )
    x = np.asarray(x, dtype=np.float64) + 0.05 * rng.standard_normal(n)
    return (x / max(rms(x), 1e-12)).astype(np.float32)


def add_condition_noise(
    y: np.ndarray, snr_db: float, rng: np.random.Generator, kind: str, sr: int = 16_000
) -> np.ndarray:
    """Add ``kind`` noise at ``snr_db``: white, pink, brown, mains hum, or babble. Babble is
    made of time-reversed stretches of the clip itself (unintelligible talkers with its voice
    and channel), since one clip's view cannot see other clips."""
    y = np.asarray(y, dtype=np.float32)
    level = rms(y)
    if level == 0.0 or len(y) == 0:
        return finite32(y.copy())
    if kind in ("white", "pink"):
        return augment.add_noise(y, snr_db, rng, kind=kind)
    if kind == "brown":
        noise = brown_noise(len(y), rng)
    elif kind == "hum":
        noise = hum(len(y), rng, sr)
    elif kind == "babble":
        rev = y[::-1].copy()
        source = [rev, augment.speed(rev, 1.1), augment.speed(rev, 0.9)]
        noise = augment.babble_noise(len(y), rng, source, n_talkers=4)
    else:
        raise ValueError(f"noise kind must be one of {', '.join(CONDITION_NOISES)}, got {kind!r}")
    return finite32(y + noise * (level / 10 ** (snr_db / 20)))


def crop(y: np.ndarray, seconds: float, rng: np.random.Generator, sr: int = 16_000) -> np.ndarray:
    """A random ``seconds``-long stretch of the clip (the whole clip when it is shorter): a
    short utterance, such as a single word or command, from a longer one."""
    y = np.asarray(y, dtype=np.float32)
    n = int(round(seconds * sr))
    if n <= 0 or len(y) <= n:
        return finite32(y.copy())
    start = int(rng.integers(0, len(y) - n + 1))
    return finite32(y[start : start + n])


def random_condition(
    y: np.ndarray, rng: np.random.Generator, sr: int = 16_000
) -> tuple[np.ndarray, list[str]]:
    """One random recording condition for a clip: a channel (telephone, codec, reverberation,
    clipping, or none), then noise at 0-20 dB SNR with probability 0.6, then speed or pitch
    with probability 0.3; at least one of these is applied. Returns the view and what was
    done (e.g. ``["phone", "noise:babble:7.5"]``)."""
    y = np.asarray(y, dtype=np.float32)
    steps: list[str] = []
    channel = ["phone", "opus", "mp3", "reverb", "clip", "none"][int(rng.integers(0, 6))]
    if channel == "phone":
        y = telephone(y, sr)
        steps.append("phone")
    elif channel in CODECS:
        lo, hi = (6, 16) if channel == "opus" else (8, 32)
        kbps = int(rng.integers(lo, hi + 1))
        y = codec(y, sr, channel, kbps)
        steps.append(f"codec:{channel}:{kbps}")
    elif channel == "reverb":
        rt60 = float(rng.uniform(0.3, 1.0))
        y = augment.reverb(y, rng, sr, rt60=rt60)
        steps.append(f"reverb:{rt60:.2f}")
    elif channel == "clip":
        db = float(rng.uniform(6, 20))
        y = clipping(y, db)
        steps.append(f"clip:{db:.1f}")
    if rng.random() < 0.6 or not steps:
        kind = CONDITION_NOISES[int(rng.integers(0, len(CONDITION_NOISES)))]
        snr = float(rng.uniform(0, 20))
        y = add_condition_noise(y, snr, rng, kind, sr)
        steps.append(f"noise:{kind}:{snr:.1f}")
    if rng.random() < 0.3:
        if rng.random() < 0.5:
            f = float(rng.uniform(0.9, 1.1))
            y = augment.speed(y, f)
            steps.append(f"speed:{f:.2f}")
        else:
            s = float(rng.uniform(-2, 2))
            y = augment.pitch_shift(y, sr, s)
            steps.append(f"pitch:{s:.1f}")
    return finite32(y), steps
