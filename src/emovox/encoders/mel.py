"""Whisper's log-mel front end in numpy (no torch): what the encoder and bundled models read."""

from __future__ import annotations

import functools

import numpy as np

from emovox.audio.decode import SAMPLE_RATE

N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80
#: Mel frames per second (100) and encoder output frames per second (50).
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH
TOKENS_PER_SECOND = FRAMES_PER_SECOND // 2
#: The encoder sees at most 30 s at once; longer audio is split into 30 s chunks.
CHUNK_SECONDS = 30.0


def split_chunks(y: np.ndarray) -> list[np.ndarray]:
    """16 kHz audio as consecutive pieces of at most 30 s (views). A remainder under 0.5 s
    after the last full chunk is dropped rather than encoded alone."""
    step = int(CHUNK_SECONDS * SAMPLE_RATE)
    out = [y[i : i + step] for i in range(0, len(y), step)]
    if len(out) > 1 and len(out[-1]) < SAMPLE_RATE // 2:
        out.pop()
    return out


@functools.lru_cache(maxsize=4)
def mel_filters(n_mels: int = N_MELS) -> np.ndarray:
    """Whisper's mel filterbank (n_mels, 201): ``librosa.filters.mel(sr=16000, n_fft=400)``.

    Slaney-style mel scale and area normalisation, as in Whisper's ``mel_filters.npz``.
    """
    import librosa

    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels)
    fb = fb.astype(np.float32)
    fb.setflags(write=False)
    return fb


@functools.lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    """Periodic Hann window of N_FFT samples (as ``torch.hann_window(400)``)."""
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float64)


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = N_MELS) -> np.ndarray:
    """Whisper's log-mel front end: 16 kHz mono audio -> (n_mels, len(audio) // 160) float32.

    Centred STFT (reflect padding, n_fft 400, hop 160, periodic Hann), power spectrum with
    the last frame dropped, mel filterbank, ``log10(clamp(x, 1e-10))``, dynamic range
    limited to 8 (``max(x, x.max() - 8)``), then ``(x + 4) / 4``. Values lie in about [-1, 2].

    Args:
        audio: 1-D waveform at 16 kHz (resample first; nothing here checks the rate).
        n_mels: 80, or 128 for large-v3.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected 1-D mono audio, got shape {audio.shape}")
    n_frames = len(audio) // HOP_LENGTH
    if n_frames < 1:
        raise ValueError(f"audio too short: {len(audio)} samples < hop {HOP_LENGTH}")
    pad = N_FFT // 2
    if len(audio) <= pad:
        raise ValueError(f"audio too short for reflect padding: {len(audio)} samples")
    padded = np.pad(audio.astype(np.float64), pad, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    spectrum = np.fft.rfft(frames * _hann_window(), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)  # (n_frames, 201)
    mel = mel_filters(n_mels) @ power.T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)
