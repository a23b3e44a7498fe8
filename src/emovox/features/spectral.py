"""Spectral features from one shared short-time power spectrum.

Every function takes a 1-D float signal and returns frames as ``(rows, T)`` with
``T = 1 + len(y) // hop`` (centred, zero-padded frames, like librosa's ``center=True``).
Pass a precomputed ``S`` (from :func:`power_spectrogram`, shape ``(T, 1 + n_fft // 2)``)
to share one STFT between features.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

AMIN = 1e-10  # floor for logarithms of power

#: Row names of :func:`spectral_shape`.
CONTRAST_EDGES_HZ: tuple[float, ...] = (0.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
SPECTRAL_SHAPE_NAMES: tuple[str, ...] = (
    "centroid",
    "bandwidth",
    "rolloff",
    "flatness",
    "flux",
    *(f"contrast{i}" for i in range(len(CONTRAST_EDGES_HZ))),
)


def frame_signal(
    y: np.ndarray, frame_length: int, hop: int, left_pad: int | None = None
) -> np.ndarray:
    """Frames ``(T, frame_length)`` (a strided view), ``T = 1 + len(y) // hop``.

    Frame ``t`` starts at sample ``t * hop - left_pad`` (zeros outside the signal); the default
    ``left_pad = frame_length // 2`` centres frame ``t`` on sample ``t * hop`` like librosa.
    """
    padded = pad_for_frames(y, frame_length, hop, left_pad)
    return np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop]


def pad_for_frames(
    y: np.ndarray, frame_length: int, hop: int, left_pad: int | None = None
) -> np.ndarray:
    """The zero-padded float32 signal that :func:`frame_signal` slices frames from."""
    y = np.asarray(y, dtype=np.float32).ravel()
    half = frame_length // 2 if left_pad is None else left_pad
    n_frames = 1 + len(y) // hop
    need = (n_frames - 1) * hop + frame_length
    padded = np.zeros(need, dtype=np.float32)
    n = max(0, min(len(y), need - half))
    padded[half : half + n] = y[:n]
    return padded


@lru_cache(maxsize=16)
def _hann(n: int) -> np.ndarray:
    w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic
    w.setflags(write=False)
    return w


def power_spectrogram(y: np.ndarray, n_fft: int = 400, hop: int = 160) -> np.ndarray:
    """Hann-windowed power spectrum ``|STFT|^2`` as ``(T, 1 + n_fft // 2)`` float32 (time-major)."""
    frames = frame_signal(y, n_fft, hop) * _hann(n_fft)
    spec = scipy.fft.rfft(frames, axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


def shared_power(y: np.ndarray, n_fft: int, hop: int, S: np.ndarray | None) -> np.ndarray:
    """The shared power spectrum: ``S`` when given (checked to be ``(T, 1 + n_fft // 2)``),
    else :func:`power_spectrogram` of ``y``."""
    if S is None:
        return power_spectrogram(y, n_fft, hop)
    if S.ndim != 2 or S.shape[1] != 1 + n_fft // 2:
        raise ValueError(f"S must be (T, {1 + n_fft // 2}) from power_spectrogram, got {S.shape}")
    return S


@lru_cache(maxsize=16)
def mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney mel filterbank ``(n_mels, 1 + n_fft // 2)`` (librosa's), cached."""
    import librosa

    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels).astype(np.float32)
    fb.setflags(write=False)
    return fb


def spectrogram(
    y: np.ndarray,
    sr: int = 16_000,
    n_fft: int = 400,
    hop: int = 160,
    log: bool = True,
    *,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Power spectrogram ``(1 + n_fft // 2, T)``; in dB (``10 log10``) when ``log``."""
    P = shared_power(y, n_fft, hop, S)
    out = 10.0 * np.log10(np.maximum(P, AMIN)) if log else P
    return np.ascontiguousarray(out.T, dtype=np.float32)


def log_mel(
    y: np.ndarray,
    sr: int = 16_000,
    n_mels: int = 64,
    n_fft: int = 400,
    hop: int = 160,
    *,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Log mel power spectrogram in dB, ``(n_mels, T)`` float32."""
    P = shared_power(y, n_fft, hop, S)
    mel = P @ mel_filterbank(sr, n_fft, n_mels).T
    return np.ascontiguousarray((10.0 * np.log10(np.maximum(mel, AMIN))).T, dtype=np.float32)


def delta(x: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas along time (last axis), edge-padded so any ``T >= 1`` works."""
    T = x.shape[-1]
    pad = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(width, width)], mode="edge")
    num = np.zeros_like(x, dtype=np.float32)
    for n in range(1, width + 1):
        num += n * (pad[..., width + n : width + n + T] - pad[..., width - n : width - n + T])
    return num / (2 * sum(n * n for n in range(1, width + 1)))


def mfcc(
    y: np.ndarray,
    sr: int = 16_000,
    n_mfcc: int = 20,
    deltas: bool = True,
    *,
    n_mels: int = 64,
    n_fft: int = 400,
    hop: int = 160,
    S: np.ndarray | None = None,
    mel_db: np.ndarray | None = None,
) -> np.ndarray:
    """MFCCs (DCT-II of log mel power), ``(n_mfcc * 3, T)`` with deltas, else ``(n_mfcc, T)``.

    ``mel_db`` may pass the output of :func:`log_mel` to skip recomputing it.
    """
    if mel_db is None:
        mel_db = log_mel(y, sr, n_mels, n_fft, hop, S=S)
    c = scipy.fft.dct(mel_db, type=2, norm="ortho", axis=0)[:n_mfcc].astype(np.float32)
    if not deltas:
        return c
    d1 = delta(c)
    return np.concatenate([c, d1, delta(d1)], axis=0)


def spectral_shape(
    y: np.ndarray,
    sr: int = 16_000,
    n_fft: int = 400,
    hop: int = 160,
    *,
    S: np.ndarray | None = None,
    rolloff_pct: float = 0.85,
    contrast_quantile: float = 0.02,
) -> np.ndarray:
    """Spectral shape per frame, ``(len(SPECTRAL_SHAPE_NAMES), T)`` float32.

    Rows: centroid (Hz), bandwidth (Hz), roll-off (Hz), flatness (0..1, of power),
    flux (L2 change of the normalised magnitude spectrum), and spectral contrast (dB) in
    octave bands starting at ``CONTRAST_EDGES_HZ`` (the last band runs to Nyquist).
    """
    P = shared_power(y, n_fft, hop, S).astype(np.float64)
    T, F = P.shape
    freqs = np.arange(F) * (sr / n_fft)
    M = np.sqrt(P)
    msum = M.sum(axis=1)
    safe = np.where(msum > 0, msum, 1.0)
    Mn = M / safe[:, None]
    centroid = Mn @ freqs
    bandwidth = np.sqrt(np.maximum(Mn @ (freqs**2) - centroid**2, 0.0))
    cum = np.cumsum(M, axis=1)
    reached = cum >= rolloff_pct * cum[:, -1:]
    rolloff = freqs[np.argmax(reached, axis=1)]
    Pf = np.maximum(P, AMIN)
    flatness = np.exp(np.mean(np.log(Pf), axis=1)) / np.mean(Pf, axis=1)
    flux = np.zeros(T)
    if T > 1:
        flux[1:] = np.sqrt(np.sum(np.diff(Mn, axis=0) ** 2, axis=1))
    silent = msum <= 0
    centroid[silent] = bandwidth[silent] = rolloff[silent] = 0.0

    edges = [int(round(e * n_fft / sr)) for e in CONTRAST_EDGES_HZ] + [F]
    contrast = np.zeros((len(CONTRAST_EDGES_HZ), T))
    for b in range(len(CONTRAST_EDGES_HZ)):
        lo, hi = min(edges[b], F), min(max(edges[b + 1], edges[b] + 1), F)
        if hi <= lo:
            continue
        band = np.sort(P[:, lo:hi], axis=1)
        k = max(1, int(round(contrast_quantile * (hi - lo))))
        valley = band[:, :k].mean(axis=1)
        peak = band[:, -k:].mean(axis=1)
        contrast[b] = 10.0 * (np.log10(np.maximum(peak, AMIN)) - np.log10(np.maximum(valley, AMIN)))

    rows = np.vstack([centroid, bandwidth, rolloff, flatness, flux, contrast])
    return rows.astype(np.float32)
