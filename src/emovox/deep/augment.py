"""Data augmentation for training clips: waveform, spectrogram and batch (mixup) level.

Every random function takes an explicit ``np.random.Generator`` so a run is reproducible, and
every array function returns finite ``float32``. Waveform functions keep the length unless
stated (``speed`` changes it by design). These are for TRAINING data only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import soxr
import torch

NOISE_KINDS = ("white", "pink", "babble")
# the probabilities of augmentations that work on the waveform (the rest work on spectrograms)
WAVEFORM_PROBS = ("p_speed", "p_pitch", "p_reverb", "p_noise", "p_gain", "p_shift")


def finite32(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 with NaN and infinities replaced by 0."""
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x


def rms(y: np.ndarray) -> float:
    """Root mean square level (0 for an empty array)."""
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad (at the end) to exactly ``n`` samples."""
    if len(y) >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - len(y), dtype=y.dtype)])


# --------------------------------------------------------------------------- waveform


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS 1/f noise (white noise shaped in the frequency domain)."""
    m = scipy.fft.next_fast_len(max(n, 2), real=True)
    spec = scipy.fft.rfft(rng.standard_normal(m))
    spec[1:] /= np.sqrt(np.arange(1, len(spec), dtype=np.float64))
    spec[0] = 0.0
    x = scipy.fft.irfft(spec, m)[:n]
    return (x / max(rms(x), 1e-12)).astype(np.float32)


def babble_noise(
    n: int, rng: np.random.Generator, source: Sequence[np.ndarray], n_talkers: int = 4
) -> np.ndarray:
    """Unit-RMS mix of ``n_talkers`` random clips from ``source`` (random segments, tiled).

    Costs O(n_talkers), not O(len(source)): silent picks are skipped and redrawn."""
    if not source:
        raise ValueError("babble noise needs a non-empty babble_source")
    out = np.zeros(n, dtype=np.float64)
    got = 0
    for _ in range(10 * n_talkers):
        c = np.asarray(source[int(rng.integers(0, len(source)))], dtype=np.float64)
        if len(c) == 0:
            continue
        if len(c) < n:
            c = np.tile(c, -(-n // len(c)))
        start = int(rng.integers(0, len(c) - n + 1))
        seg = c[start : start + n]
        level = rms(seg)
        if level > 0:
            out += seg / level
            got += 1
            if got == n_talkers:
                break
    if got == 0:
        raise ValueError("babble_source holds no non-silent audio")
    return (out / max(rms(out), 1e-12)).astype(np.float32)


def add_noise(
    y: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
    kind: str = "white",
    babble_source: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Add white, pink or babble noise (mix of other training clips) at ``snr_db``."""
    y = np.asarray(y, dtype=np.float32)
    level = rms(y)
    if level == 0.0 or len(y) == 0:
        return finite32(y.copy())
    if kind == "white":
        noise = rng.standard_normal(len(y)).astype(np.float32)
    elif kind == "pink":
        noise = pink_noise(len(y), rng)
    elif kind == "babble":
        noise = babble_noise(len(y), rng, babble_source or [])
    else:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    scale = level / (max(rms(noise), 1e-12) * 10 ** (snr_db / 20))
    return finite32(y + scale * noise)


def time_shift(y: np.ndarray, rng: np.random.Generator, max_frac: float = 0.1) -> np.ndarray:
    """Shift by up to ``max_frac`` of the length either way, filling with zeros."""
    y = np.asarray(y, dtype=np.float32)
    m = int(max_frac * len(y))
    s = int(rng.integers(-m, m + 1)) if m > 0 else 0
    out = np.zeros_like(y)
    if s >= 0:
        out[s:] = y[: len(y) - s]
    else:
        out[:s] = y[-s:]
    return finite32(out)


def gain(y: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels."""
    return finite32(np.asarray(y, dtype=np.float32) * np.float32(10 ** (db / 20)))


def speed(y: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together); length becomes ``len / factor``."""
    y = np.asarray(y, dtype=np.float32)
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if abs(factor - 1.0) < 1e-6 or len(y) < 2:
        return finite32(y.copy())
    return finite32(soxr.resample(y, 1000.0 * factor, 1000.0, quality="MQ"))


def wsola_stretch(
    y: np.ndarray,
    rate: float,
    sr: int = 16_000,
    frame_s: float = 0.03,
    tol_s: float = 0.008,
    decimate: int = 4,
) -> np.ndarray:
    """Time stretch to ``len * rate`` samples keeping the pitch (WSOLA: Hann overlap-add with
    each frame aligned to the previous one by cross-correlation, searched within ``tol_s`` on a
    ``decimate``-fold subsampled signal). About 2 ms for 3 s, much faster than a phase vocoder."""
    y = np.asarray(y, dtype=np.float32)
    n = max(2 * int(frame_s * sr / 2), 8)
    hs, tol, dec = n // 2, max(int(tol_s * sr), 1), max(int(decimate), 1)
    out_len = max(int(round(len(y) * rate)), 1)
    k = 1 + max(0, -(-(out_len - n) // hs))
    yp = np.concatenate([np.zeros(tol, np.float32), y, np.zeros(n + tol + hs, np.float32)])
    yd = yp[::dec]
    win = np.hanning(n + 2)[1:-1].astype(np.float32)
    out = np.zeros((k - 1) * hs + n, dtype=np.float32)
    wsum = np.zeros_like(out)
    prev = tol
    for i in range(k):
        pos = min(tol + int(round(i * hs / rate)), len(yp) - n - tol)
        if i > 0:  # best match to the natural continuation of the previous frame
            target = prev + hs
            tmpl = yd[target // dec : (target + hs) // dec]
            lo = (pos - tol) // dec
            seg = yd[lo : lo + (2 * tol + hs) // dec + 1]
            if len(tmpl) and len(seg) >= len(tmpl):
                pos = lo * dec + int(np.argmax(np.correlate(seg, tmpl, "valid"))) * dec
        pos = min(pos, len(yp) - n)
        out[i * hs : i * hs + n] += yp[pos : pos + n] * win
        wsum[i * hs : i * hs + n] += win
        prev = pos
    out /= np.maximum(wsum, 1e-3)
    return out[:out_len]


def pitch_shift(y: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping the length: WSOLA time stretch by the pitch ratio,
    then resampling back to the original length (a cheap stand-in for
    ``librosa.effects.pitch_shift``, good at a few semitones)."""
    y = np.asarray(y, dtype=np.float32)
    if abs(semitones) < 1e-6 or len(y) < 2:
        return finite32(y.copy())
    r = 2 ** (semitones / 12)
    return finite32(fit_length(speed(wsola_stretch(y, r, sr), r), len(y)))


def reverb(
    y: np.ndarray, rng: np.random.Generator, sr: int = 16_000, rt60: float = 0.4
) -> np.ndarray:
    """Convolve with a synthetic room response: direct path + exponentially decaying noise
    reaching -60 dB at ``rt60`` seconds. Length and RMS level are kept."""
    y = np.asarray(y, dtype=np.float32)
    level = rms(y)
    if level == 0.0 or rt60 <= 0:
        return finite32(y.copy())
    n = max(int(min(rt60, 2.0) * sr), 2)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-np.log(1000.0) * t / rt60)
    ir = tail / max(np.sqrt(np.sum(tail**2)), 1e-12)
    ir[0] += 1.0
    wet = scipy.signal.fftconvolve(y.astype(np.float64), ir)[: len(y)]
    return finite32(wet * (level / max(rms(wet), 1e-12)))


# --------------------------------------------------------------------------- spectrogram


def spec_augment(
    S: np.ndarray,
    rng: np.random.Generator,
    n_time_masks: int = 2,
    n_freq_masks: int = 2,
    max_t: int = 20,
    max_f: int = 8,
    value: float | None = None,
) -> np.ndarray:
    """SpecAugment masking on ``(F, T)``: bands of 1..``max_f`` rows and 1..``max_t`` frames set
    to ``value`` (default: the spectrogram's mean)."""
    S = np.array(S, dtype=np.float32, copy=True)
    F, T = S.shape[-2:]
    fill = np.float32(S.mean() if value is None else value)
    for _ in range(n_freq_masks):
        f = min(int(rng.integers(1, max_f + 1)), F)
        f0 = int(rng.integers(0, F - f + 1))
        S[..., f0 : f0 + f, :] = fill
    for _ in range(n_time_masks):
        t = min(int(rng.integers(1, max_t + 1)), T)
        t0 = int(rng.integers(0, T - t + 1))
        S[..., :, t0 : t0 + t] = fill
    return finite32(S)


def image_shift_scale(
    S: np.ndarray,
    rng: np.random.Generator,
    max_shift_frac: float = 0.1,
    scale_range: tuple[float, float] = (0.9, 1.1),
) -> np.ndarray:
    """Image-style augmentation of ``(F, T)``: random translation in frequency and time (up to
    ``max_shift_frac`` of each axis) and zoom (independent factors per axis) about the centre,
    bilinear, edges extended."""
    S = np.asarray(S, dtype=np.float32)
    shape = np.array(S.shape, dtype=np.float64)
    scale = rng.uniform(scale_range[0], scale_range[1], size=2)
    shift = rng.uniform(-max_shift_frac, max_shift_frac, size=2) * shape
    c = (shape - 1) / 2
    out = scipy.ndimage.affine_transform(
        S, 1.0 / scale, offset=c - c / scale - shift, order=1, mode="nearest"
    )
    return finite32(out)


def mixup(
    x1: torch.Tensor,
    y1: torch.Tensor,
    x2: torch.Tensor,
    y2: torch.Tensor,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup of two batches with one-hot (or soft) targets; ``lam ~ Beta(alpha, alpha)`` folded
    to ``>= 0.5`` so the first batch dominates. Returns ``(x, y, lam)``."""
    lam = float(rng.beta(alpha, alpha)) if alpha > 0 else 1.0
    lam = max(lam, 1.0 - lam)
    return lam * x1 + (1 - lam) * x2, lam * y1 + (1 - lam) * y2, lam


# --------------------------------------------------------------------------- chains


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation (``p_* = 0`` switches one off)."""

    p_speed: float = 0.3
    speed_range: tuple[float, float] = (0.9, 1.1)
    p_pitch: float = 0.3
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)
    p_reverb: float = 0.2
    rt60: tuple[float, float] = (0.2, 0.8)
    p_noise: float = 0.4
    snr_db: tuple[float, float] = (5.0, 30.0)
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    p_gain: float = 0.3
    gain_db: tuple[float, float] = (-6.0, 6.0)
    p_shift: float = 0.3
    max_shift_frac: float = 0.1
    p_image: float = 0.3
    image_max_shift_frac: float = 0.05
    image_scale_range: tuple[float, float] = (0.9, 1.1)
    p_specaug: float = 0.5
    n_time_masks: int = 2
    n_freq_masks: int = 2
    max_t: int = 20
    max_f: int = 8

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("p_") and not 0.0 <= v <= 1.0:
                raise ValueError(f"{f.name} must be a probability in [0, 1], got {v}")
            if isinstance(v, list):  # from JSON
                object.__setattr__(self, f.name, tuple(v))
        bad = set(self.noise_kinds) - set(NOISE_KINDS)
        if bad:
            raise ValueError(f"unknown noise kinds {sorted(bad)}; known: {NOISE_KINDS}")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all."""
        return cls(**{f.name: 0.0 for f in fields(cls) if f.name.startswith("p_")})

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.startswith("p_"))

    @property
    def waveform_enabled(self) -> bool:
        """Whether any waveform-level augmentation is on (spectrogram ones aside)."""
        return any(getattr(self, name) > 0 for name in WAVEFORM_PROBS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentConfig:
        return cls(**d)


def augment_waveform(
    y: np.ndarray,
    sr: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    babble_pool: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Apply speed, pitch, reverb, noise, gain, shift (each with its probability). Speed
    perturbation changes the length; crop afterwards."""
    y = np.asarray(y, dtype=np.float32)
    if rng.random() < cfg.p_speed:
        y = speed(y, rng.uniform(*cfg.speed_range))
    if rng.random() < cfg.p_pitch:
        y = pitch_shift(y, sr, rng.uniform(*cfg.pitch_semitones))
    if rng.random() < cfg.p_reverb:
        y = reverb(y, rng, sr, rng.uniform(*cfg.rt60))
    if rng.random() < cfg.p_noise:
        kinds = [k for k in cfg.noise_kinds if k != "babble" or babble_pool]
        if kinds:
            kind = kinds[int(rng.integers(0, len(kinds)))]
            y = add_noise(y, rng.uniform(*cfg.snr_db), rng, kind, babble_pool)
    if rng.random() < cfg.p_gain:
        y = gain(y, rng.uniform(*cfg.gain_db))
    if rng.random() < cfg.p_shift:
        y = time_shift(y, rng, cfg.max_shift_frac)
    return finite32(y)


def augment_spectrogram(S: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Apply image-style shift/zoom then SpecAugment masks (each with its probability)."""
    S = np.asarray(S, dtype=np.float32)
    if rng.random() < cfg.p_image:
        S = image_shift_scale(S, rng, cfg.image_max_shift_frac, cfg.image_scale_range)
    if rng.random() < cfg.p_specaug:
        S = spec_augment(S, rng, cfg.n_time_masks, cfg.n_freq_masks, cfg.max_t, cfg.max_f)
    return finite32(S)
