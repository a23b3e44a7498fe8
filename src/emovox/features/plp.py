"""Perceptual Linear Prediction cepstra (Hermansky 1990), vectorised over frames.

Power spectrum -> Bark critical-band filterbank -> equal-loudness weighting -> cube-root
intensity-to-loudness -> inverse DFT to autocorrelation -> LPC -> cepstra. The filterbank and
loudness curve follow Dan Ellis' ``rastamat`` (``fft2barkmx``, ``postaud``, ``dolpc``,
``lpc2cep``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from emovox.features.lpc import levinson, lpc_to_cepstrum
from emovox.features.spectral import AMIN, shared_power


def hz_to_bark(f: np.ndarray | float) -> np.ndarray:
    """Bark scale of Schroeder / rastamat: ``6 asinh(f / 600)``."""
    return 6.0 * np.arcsinh(np.asarray(f, dtype=np.float64) / 600.0)


def bark_to_hz(z: np.ndarray | float) -> np.ndarray:
    return 600.0 * np.sinh(np.asarray(z, dtype=np.float64) / 6.0)


@lru_cache(maxsize=16)
def _plp_tables(sr: int, n_fft: int, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bark filterbank ``(F, B)`` with equal-loudness folded in, and the IDFT cosine table."""
    nyq_bark = float(hz_to_bark(sr / 2))
    n_bands = int(np.ceil(nyq_bark)) + 1
    step = nyq_bark / (n_bands - 1)
    bin_bark = hz_to_bark(np.arange(1 + n_fft // 2) * sr / n_fft)
    mids = np.arange(n_bands) * step
    lo = bin_bark[None, :] - mids[:, None] - 0.5
    hi = bin_bark[None, :] - mids[:, None] + 0.5
    wts = 10.0 ** np.minimum(0.0, np.minimum(hi, -2.5 * lo))  # (B, F)
    # equal-loudness curve (Hermansky 1990, eq. 5) at the band centres
    fsq = bark_to_hz(mids) ** 2
    eql = (fsq / (fsq + 1.6e5)) ** 2 * ((fsq + 1.44e6) / (fsq + 9.61e6))
    fb = (wts * eql[:, None]).T  # (F, B)
    # inverse DFT of the symmetric spectrum [x_0 .. x_{B-1}, x_{B-2} .. x_1] -> real autocorr.
    M = 2 * (n_bands - 1)
    w = np.full(n_bands, 2.0)
    w[0] = w[-1] = 1.0
    idft = w[:, None] * np.cos(2 * np.pi * np.outer(np.arange(n_bands), np.arange(order + 1)) / M)
    idft /= M
    for t in (fb, idft):
        t.setflags(write=False)
    return fb, idft, eql


def plp(
    y: np.ndarray,
    sr: int = 16_000,
    order: int = 12,
    *,
    n_fft: int = 400,
    hop: int = 160,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """PLP cepstra ``(order + 1, T)`` float32: row 0 is the log prediction gain, then ``c_k``."""
    P = shared_power(y, n_fft, hop, S).astype(np.float64)
    fb, idft, _ = _plp_tables(sr, n_fft, order)
    aud = np.maximum(P @ fb, AMIN) ** (1.0 / 3.0)  # (T, B) equal-loudness, cube root
    aud[:, 0] = aud[:, 1]  # the edge bands are unreliable: copy their neighbours (rastamat)
    aud[:, -1] = aud[:, -2]
    r = aud @ idft  # (T, order + 1)
    a, err = levinson(r, order)
    ceps = lpc_to_cepstrum(a, order)
    c0 = np.log(np.maximum(err, AMIN))
    return np.ascontiguousarray(np.column_stack([c0, ceps]).T, dtype=np.float32)
