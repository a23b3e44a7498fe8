"""Prosody: a fast vectorised YIN pitch tracker, frame energy, zero-crossing rate, and
utterance-level pitch / loudness / rhythm statistics.

Frames are centred on ``t * hop`` like the spectral features, so all share ``T = 1 + len // hop``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.signal

from emovox.features.spectral import frame_signal, pad_for_frames

#: Keys of :func:`prosodic`, in order.
PROSODIC_NAMES: tuple[str, ...] = (
    "f0_mean_st",
    "f0_std_st",
    "f0_p10_st",
    "f0_p50_st",
    "f0_p90_st",
    "f0_range_st",
    "f0_slope_st_per_s",
    "f0_delta_abs_st",
    "voiced_ratio",
    "voiced_segments_per_s",
    "voiced_segment_mean_s",
    "unvoiced_segment_mean_s",
    "energy_mean_db",
    "energy_std_db",
    "energy_p10_db",
    "energy_p50_db",
    "energy_p90_db",
    "energy_range_db",
    "energy_slope_db_per_s",
    "energy_voiced_minus_unvoiced_db",
    "energy_peaks_per_s",
    "zcr_mean",
    "zcr_std",
    "duration_s",
)


_TOL = 0.05


def _frames(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    return frame_signal(y, frame_length + (frame_length % 2), hop)


def energy(y: np.ndarray, sr: int = 16_000, frame_length: int = 400, hop: int = 160) -> np.ndarray:
    """Frame RMS level in dB (re full scale 1.0; silence floors at -100 dB), ``(T,)`` float32."""
    fr = _frames(y, frame_length, hop).astype(np.float64)
    rms = np.sqrt(np.einsum("tn,tn->t", fr, fr) / fr.shape[1])
    return (20.0 * np.log10(np.maximum(rms, 1e-5))).astype(np.float32)


def zero_crossing_rate(
    y: np.ndarray, sr: int = 16_000, frame_length: int = 400, hop: int = 160
) -> np.ndarray:
    """Fraction of adjacent sample pairs that change sign in each frame, ``(T,)`` float32."""
    sb = np.signbit(_frames(y, frame_length, hop))
    return np.mean(sb[:, 1:] != sb[:, :-1], axis=1).astype(np.float32)


@lru_cache(maxsize=8)
def _yin_sizes(sr: int, fmin: float, fmax: float) -> tuple[int, int, int, int]:
    tau_min = max(2, int(np.floor(sr / fmax)))
    tau_max = int(np.ceil(sr / fmin))
    win = max(tau_max, int(0.025 * sr))
    length = win + tau_max + 1
    length += length % 2
    return tau_min, tau_max, win, length


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the True runs of a boolean vector."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def pitch(
    y: np.ndarray,
    sr: int = 16_000,
    fmin: float = 60.0,
    fmax: float = 500.0,
    hop: int = 160,
    *,
    threshold: float = 0.1,
    voicing_threshold: float = 0.35,
    silence_db: float = 40.0,
    min_voiced_frames: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """F0 by YIN (de Cheveigne & Kawahara 2002), all frames at once via FFT correlation.

    Returns ``(f0, voiced)``, each ``(T,)``: F0 in Hz (0 where unvoiced) and the voicing mask.
    A frame is voiced when its aperiodicity (the YIN dip) is below ``voicing_threshold``, its
    level is within ``silence_db`` of the loudest frame, and it sits in a voiced run of at least
    ``min_voiced_frames`` frames.
    """
    tau_min, tau_max, win, length = _yin_sizes(sr, float(fmin), float(fmax))
    # the integration window (first ``win`` samples) is centred on t * hop; lags reach right
    padded = pad_for_frames(y, length, hop, left_pad=win // 2)
    fr = np.lib.stride_tricks.sliding_window_view(padded, length)[::hop]
    T = fr.shape[0]
    n = scipy.fft.next_fast_len(length, real=True)
    spec_full = scipy.fft.rfft(fr, n=n, axis=1)
    spec_head = scipy.fft.rfft(fr[:, :win], n=n, axis=1)
    corr = scipy.fft.irfft(np.conj(spec_head) * spec_full, n=n, axis=1)[:, : tau_max + 2]
    # windowed energies E_tau = sum_{j=tau}^{tau+win-1} x_j^2 from one running sum of the signal
    p64 = padded.astype(np.float64)
    cs = np.concatenate([[0.0], np.cumsum(p64 * p64)])
    taus = np.arange(tau_max + 2)
    at = (np.arange(T) * hop)[:, None] + taus
    e_tau = cs[at + win] - cs[at]
    corr = corr.astype(np.float64)
    diff = np.maximum(e_tau[:, :1] + e_tau - 2.0 * corr, 0.0)  # d(tau), (T, tau_max + 2)
    cum = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    safe = cum > 1e-12 * (e_tau[:, :1] + 1e-30)
    cmnd[:, 1:] = np.where(safe, diff[:, 1:] * taus[1:] / np.where(safe, cum, 1.0), 1.0)

    lo, hi = tau_min, tau_max  # candidate lags lo..hi, with neighbours for minima/interpolation
    c = cmnd[:, lo - 1 : hi + 2]
    mid = c[:, 1:-1]
    local_min = (mid < c[:, :-2]) & (mid <= c[:, 2:])
    # YIN's absolute threshold, relaxed to "near the best dip" in noisy frames: taking the
    # first such dip rather than the global minimum avoids most octave-down errors
    gmin = mid.min(axis=1, keepdims=True)
    cand = local_min & (mid < np.maximum(threshold, gmin + _TOL))
    first = np.argmax(cand, axis=1)
    best = np.where(cand.any(axis=1), first, np.argmin(mid, axis=1))
    rows = np.arange(T)
    c0, c1, c2 = c[rows, best], c[rows, best + 1], c[rows, best + 2]
    den = c0 - 2.0 * c1 + c2
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (c0 - c2) / np.where(den == 0, 1.0, den), 0.0)
    shift = np.clip(shift, -1.0, 1.0)
    tau = lo + best + shift
    aperiodicity = gmin[:, 0]

    level = 10.0 * np.log10(np.maximum(e_tau[:, 0] / win, 1e-10))
    voiced = (aperiodicity < voicing_threshold) & (level > level.max() - silence_db)
    voiced &= level > -70.0
    f0 = sr / np.maximum(tau, 1.0)
    voiced &= (f0 >= fmin * 0.97) & (f0 <= fmax * 1.03)
    if min_voiced_frames > 1 and voiced.any():
        run_s, run_e = _runs(voiced)
        short = (run_e - run_s) < min_voiced_frames
        if short.any():
            mark = np.zeros(T + 1, dtype=np.int32)
            np.add.at(mark, run_s[short], 1)
            np.add.at(mark, run_e[short], -1)
            voiced &= np.cumsum(mark)[:T] == 0
    f0 = np.where(voiced, f0, 0.0).astype(np.float32)
    return f0, voiced


def _slope(x: np.ndarray, t: np.ndarray) -> float:
    if len(x) < 2:
        return 0.0
    tc = t - t.mean()
    den = float(tc @ tc)
    return float(tc @ (x - x.mean()) / den) if den > 0 else 0.0


def prosodic(
    y: np.ndarray,
    sr: int = 16_000,
    fmin: float = 60.0,
    fmax: float = 500.0,
    hop: int = 160,
    frame_length: int = 400,
) -> dict[str, float]:
    """Utterance-level prosody (keys :data:`PROSODIC_NAMES`): F0 statistics in semitones re
    27.5 Hz over voiced frames, voicing, loudness contour statistics, zero-crossing rate and
    rhythm (voiced segments and energy peaks per second). Never NaN (0 where undefined).
    """
    f0, voiced = pitch(y, sr, fmin, fmax, hop)
    e = energy(y, sr, frame_length, hop).astype(np.float64)
    z = zero_crossing_rate(y, sr, frame_length, hop).astype(np.float64)
    T = len(e)
    rate = sr / hop
    dur = len(y) / sr
    t = np.arange(T) / rate
    out = dict.fromkeys(PROSODIC_NAMES, 0.0)
    out["duration_s"] = dur

    if voiced.any():
        st = 12.0 * np.log2(f0[voiced].astype(np.float64) / 27.5)
        p10, p50, p90 = np.percentile(st, [10, 50, 90])
        out.update(
            f0_mean_st=st.mean(),
            f0_std_st=st.std(),
            f0_p10_st=p10,
            f0_p50_st=p50,
            f0_p90_st=p90,
            f0_range_st=p90 - p10,
            f0_slope_st_per_s=_slope(st, t[voiced]),
        )
        # mean absolute semitone change between consecutive voiced frames within a segment
        both = voiced[1:] & voiced[:-1]
        if both.any():
            fv = np.where(voiced, f0, 1.0).astype(np.float64)
            d = np.abs(12.0 * np.log2(fv[1:] / fv[:-1]))[both]
            out["f0_delta_abs_st"] = float(d.mean())
    starts, ends = _runs(voiced)
    out["voiced_ratio"] = float(voiced.mean())
    out["voiced_segments_per_s"] = len(starts) / max(dur, 1e-3)
    if len(starts):
        out["voiced_segment_mean_s"] = float((ends - starts).mean() / rate)
    us, ue = _runs(~voiced)
    if len(us):
        out["unvoiced_segment_mean_s"] = float((ue - us).mean() / rate)

    p10, p50, p90 = np.percentile(e, [10, 50, 90])
    out.update(
        energy_mean_db=e.mean(),
        energy_std_db=e.std(),
        energy_p10_db=p10,
        energy_p50_db=p50,
        energy_p90_db=p90,
        energy_range_db=p90 - p10,
        energy_slope_db_per_s=_slope(e, t),
        zcr_mean=z.mean(),
        zcr_std=z.std(),
    )
    if voiced.any() and not voiced.all():
        out["energy_voiced_minus_unvoiced_db"] = float(e[voiced].mean() - e[~voiced].mean())
    # rhythm: syllable-like peaks of the smoothed loudness contour
    if T >= 5:
        k = np.ones(5) / 5.0
        sm = np.convolve(np.pad(e, 2, mode="edge"), k, mode="valid")
        peaks, _ = scipy.signal.find_peaks(
            sm, prominence=3.0, distance=max(1, int(0.1 * rate)), height=sm.max() - 30.0
        )
        out["energy_peaks_per_s"] = len(peaks) / max(dur, 1e-3)
    return {k: float(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)) for k, v in out.items()}
