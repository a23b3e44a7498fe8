"""Frame-wise linear prediction (LPC) and LPC cepstra, vectorised over frames.

Autocorrelations come from the shared Hann power spectrum (Wiener-Khinchin); the circular
aliasing of an ``n_fft``-point spectrum only touches lags near ``n_fft``, where the window is
~0, so lags up to the model order are exact for practical purposes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from emovox.features.spectral import shared_power


def levinson(r: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Levinson-Durbin on many autocorrelation rows at once.

    ``r`` is ``(N, >= order + 1)``; returns ``(a, err)`` with ``a`` ``(N, order + 1)``,
    ``a[:, 0] == 1`` (prediction error filter ``A(z) = 1 + sum_k a_k z^-k``, librosa's sign
    convention) and the final prediction error power ``err`` ``(N,)``. Rows with no energy get
    ``a = [1, 0, ...]`` and ``err = 0``.
    """
    r = np.asarray(r, dtype=np.float64)
    N = r.shape[0]
    a = np.zeros((N, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0] * (1.0 + 1e-9)  # a tiny white-noise correction keeps it well conditioned
    tiny = 1e-30
    for i in range(1, order + 1):
        acc = r[:, i] + np.einsum("nj,nj->n", a[:, 1:i], r[:, i - 1 : 0 : -1])
        ok = err > tiny
        k = np.where(ok, -acc / np.where(ok, err, 1.0), 0.0)
        k = np.clip(k, -0.999999, 0.999999)
        prev = a[:, 1:i].copy()
        a[:, 1:i] = prev + k[:, None] * prev[:, ::-1]
        a[:, i] = k
        err = err * (1.0 - k * k)
    return a, np.maximum(err, 0.0)


def lpc_to_cepstrum(a: np.ndarray, n_ceps: int) -> np.ndarray:
    """Cepstrum ``c_1..c_n`` of ``1 / A(z)`` for rows of ``a`` (``(N, p + 1)``, ``a[:, 0] = 1``)."""
    p = a.shape[1] - 1
    c = np.zeros((a.shape[0], n_ceps + 1))
    for n in range(1, n_ceps + 1):
        acc = -a[:, n] if n <= p else np.zeros(a.shape[0])
        for k in range(max(1, n - p), n):
            acc = acc - (k / n) * c[:, k] * a[:, n - k]
        c[:, n] = acc
    return c[:, 1:]


@lru_cache(maxsize=16)
def _cos_matrix(n_fft: int, n_lags: int, preemph: float) -> np.ndarray:
    """Maps a one-sided power spectrum to autocorrelation lags ``0..n_lags-1`` (irfft rows)."""
    F = 1 + n_fft // 2
    f = np.arange(F)
    w = np.full(F, 2.0)
    w[0] = 1.0
    if n_fft % 2 == 0:
        w[-1] = 1.0
    omega = 2 * np.pi * f / n_fft
    # |1 - preemph e^{-jw}|^2: the pre-emphasis filter applied in the power domain
    gain = 1.0 + preemph**2 - 2.0 * preemph * np.cos(omega)
    m = (w * gain)[:, None] * np.cos(np.outer(omega, np.arange(n_lags))) / n_fft
    m.setflags(write=False)
    return m


def autocorrelation(
    y: np.ndarray,
    order: int,
    n_fft: int = 400,
    hop: int = 160,
    preemph: float = 0.97,
    *,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Autocorrelation lags ``0..order`` of each pre-emphasised Hann frame, ``(T, order + 1)``."""
    P = shared_power(y, n_fft, hop, S)
    return P.astype(np.float64) @ _cos_matrix(n_fft, order + 1, float(preemph))


def lpc(
    y: np.ndarray,
    sr: int = 16_000,
    order: int = 12,
    *,
    n_fft: int = 400,
    hop: int = 160,
    preemph: float = 0.97,
    cepstra: bool = False,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Frame-wise LPC coefficients ``a_1..a_order`` as ``(order, T)`` float32.

    With ``cepstra=True`` the LPC-derived cepstra ``c_1..c_order`` are returned instead.
    Set ``preemph=0`` for the plain signal (pre-emphasis is standard for speech).
    """
    r = autocorrelation(y, order, n_fft, hop, preemph, S=S)
    a, _ = levinson(r, order)
    out = lpc_to_cepstrum(a, order) if cepstra else a[:, 1:]
    return np.ascontiguousarray(out.T, dtype=np.float32)
