"""Training and evaluation items for the deep models: clips as standardised feature segments.

Each training item is a random crop of ``crop_seconds`` (short clips are zero-padded) and is the
ONLY place augmentation happens: the training :class:`ClipDataset` is built with ``train=True``
and an :class:`AugmentConfig`; validation and test datasets are built with ``train=False``,
which refuses any augmentation. Evaluation items are sliding windows over the whole clip.

Every feature segment (training crop or evaluation window) is floored at ``top_db`` below its
peak and standardised to zero mean and unit variance, so no dataset statistics need storing.
Per-item randomness comes from ``(seed, epoch, index)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from torch.utils.data import Dataset

from emovox.deep.augment import AugmentConfig, augment_spectrogram, augment_waveform
from emovox.deep.config import TrainConfig

#: waveform -> features ``(n_mels, T)``
FeatureFn = Callable[[np.ndarray], np.ndarray]

# log-mel of digital silence (what zero-padding the waveform gives): fills padded frames
_PAD_DB = float(10.0 * np.log10(1e-10))


def default_feature_fn(cfg: TrainConfig) -> FeatureFn:
    """Log-mel power in dB, ``(n_mels, T)``, with the config's settings."""
    from emovox.features import log_mel

    return partial(log_mel, sr=cfg.sample_rate, n_mels=cfg.n_mels, n_fft=cfg.n_fft, hop=cfg.hop)


def standardize(S: np.ndarray, top_db: float | None = 80.0, norm: str = "clip") -> np.ndarray:
    """Floor at ``top_db`` below the peak, then zero mean and unit variance (float32).

    ``norm="band"`` removes each mel band's own mean over time first (cepstral mean
    normalisation on the spectrogram: a speaker's or channel's fixed spectral tilt goes away).
    """
    S = np.asarray(S, dtype=np.float32)
    if top_db is not None:
        S = np.maximum(S, S.max() - np.float32(top_db))
    if norm == "band":
        S = S - S.mean(axis=1, keepdims=True)
        return (S / (S.std() + 1e-5)).astype(np.float32)
    return ((S - S.mean()) / (S.std() + 1e-5)).astype(np.float32)


def _samples(seconds: float, sr: int) -> int:
    return max(int(round(seconds * sr)), 1)


def _center_pad(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) >= n:
        return y
    out = np.zeros(n, dtype=np.float32)
    start = (n - len(y)) // 2
    out[start : start + len(y)] = y
    return out


def _random_crop(y: np.ndarray, n: int, rng: np.random.Generator, pad: bool) -> np.ndarray:
    """A random ``n``-sample segment (a view); shorter clips are zero-padded at a random offset
    when ``pad``, else returned whole."""
    if len(y) > n:
        start = int(rng.integers(0, len(y) - n + 1))
        return y[start : start + n]
    if not pad or len(y) == n:
        return y
    out = np.zeros(n, dtype=np.float32)
    start = int(rng.integers(0, n - len(y) + 1))
    out[start : start + len(y)] = y
    return out


def _random_crop_frames(S: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-frame segment of ``(F, T)`` features; shorter ones are padded at a random
    offset with the log-mel of silence (as zero-padding the waveform would give)."""
    T = S.shape[-1]
    if T > n:
        start = int(rng.integers(0, T - n + 1))
        return S[..., start : start + n]
    if T == n:
        return S
    out = np.full(S.shape[:-1] + (n,), _PAD_DB, dtype=np.float32)
    start = int(rng.integers(0, n - T + 1))
    out[..., start : start + T] = S
    return out


class ClipDataset(Dataset):
    """Clips as feature segments. ``dataset[i] -> (segments (S, n_mels, T) float32, label)``.

    ``train=True``: one random crop of ``crop_seconds`` per item (``S = 1``), augmented with
    ``augment`` (waveform then spectrogram). ``train=False``: sliding windows over the whole
    clip (short clips centre-padded to one window), never augmented; passing ``augment`` with a
    non-train dataset is an error. Item randomness comes from ``(seed, epoch, index)``.
    """

    def __init__(
        self,
        wavs: Sequence[np.ndarray],
        labels: Sequence[int] | None,
        cfg: TrainConfig,
        feature_fn: FeatureFn | None = None,
        *,
        train: bool,
        augment_cfg: AugmentConfig | None = None,
        babble_pool: Sequence[np.ndarray] | None = None,
        cache_features: bool = False,
    ):
        if not train and augment_cfg is not None and augment_cfg.enabled:
            raise ValueError("augmentation is for training data only (train=False given)")
        if labels is not None and len(labels) != len(wavs):
            raise ValueError(f"{len(wavs)} clips but {len(labels)} labels")
        self.wavs = wavs
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.cfg = cfg
        self.feature_fn = feature_fn or default_feature_fn(cfg)
        self.train = train
        self.augment = bool(train and augment_cfg is not None and augment_cfg.enabled)
        self.augment_cfg = augment_cfg if self.augment else None
        self.babble_pool = babble_pool if self.augment else None
        self.epoch = 0
        # whole-clip features, memoised: valid whenever the waveform itself is never changed
        wave_aug = self.augment_cfg is not None and self.augment_cfg.waveform_enabled
        self.cache_features = bool(cache_features and not wave_aug)
        self._features: dict[int, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s item randomness from now on."""
        self.epoch = epoch

    @property
    def n_cached(self) -> int:
        """How many clips' whole-clip features are cached (0 without ``cache_features``)."""
        return len(self._features)

    def __len__(self) -> int:
        return len(self.wavs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        label = -1 if self.labels is None else int(self.labels[i])
        y = np.asarray(self.wavs[i], dtype=np.float32)
        if self.train:
            return self._train_item(i, y)[None], label
        return self._eval_segments(i, y), label

    def _clip_features(self, i: int, y: np.ndarray) -> np.ndarray:
        """Features of the whole clip ``i``, computed once (evaluation: centre-padded to one
        window, as without the cache; training: as is, crops pad at a random offset)."""
        S = self._features.get(i)
        if S is None:
            S = self.feature_fn(y if self.train else self._eval_padded(y))
            self._features[i] = S
        return S

    def fill_cache(self) -> None:
        """Compute every clip's features now (DataLoader workers, which are new processes each
        epoch, then inherit them instead of filling copies that are thrown away)."""
        if self.cache_features:
            for i in range(len(self.wavs)):
                self._clip_features(i, np.asarray(self.wavs[i], dtype=np.float32))

    def _eval_padded(self, y: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        win_s = cfg.crop_seconds if cfg.eval_window is None else cfg.eval_window
        return _center_pad(y, _samples(win_s, cfg.sample_rate))

    def _train_item(self, i: int, y: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.epoch, 1, i])
        n = _samples(cfg.crop_seconds, cfg.sample_rate)
        if self.cache_features:
            full = self._clip_features(i, y)
            S = _random_crop_frames(full, 1 + n // cfg.hop, rng)
            S = standardize(S, cfg.top_db, cfg.norm)
            if self.augment:
                assert self.augment_cfg is not None
                S = augment_spectrogram(S, rng, self.augment_cfg)
            return S
        if self.augment:
            assert self.augment_cfg is not None
            y = _random_crop(y, int(n * 1.25), rng, pad=False)  # room for speed-up
            y = augment_waveform(y, cfg.sample_rate, rng, self.augment_cfg, self.babble_pool)
        S = standardize(self.feature_fn(_random_crop(y, n, rng, pad=True)), cfg.top_db, cfg.norm)
        if self.augment:
            assert self.augment_cfg is not None
            S = augment_spectrogram(S, rng, self.augment_cfg)
        return S

    def _eval_segments(self, i: int, y: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if self.cache_features:
            full = self._clip_features(i, y)
        else:
            full = self.feature_fn(self._eval_padded(y))
        if cfg.eval_window is None:
            return standardize(full, cfg.top_db, cfg.norm)[None]
        w = 1 + _samples(cfg.eval_window, cfg.sample_rate) // cfg.hop
        step = max(1, int(round(cfg.eval_hop * cfg.sample_rate / cfg.hop)))
        T = full.shape[-1]
        if T <= w:
            return standardize(full, cfg.top_db, cfg.norm)[None]
        starts = list(range(0, T - w + 1, step))
        if starts[-1] != T - w:
            starts.append(T - w)
        return np.stack([standardize(full[:, s : s + w], cfg.top_db, cfg.norm) for s in starts])


def collate_segments(
    items: list[tuple[np.ndarray, int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training items (one segment each) as a batch: ``(B, 1, n_mels, T)`` float32 features and
    ``(B,)`` int64 labels (the DataLoader's ``collate_fn``)."""
    x = torch.from_numpy(np.stack([seg[0] for seg, _ in items]))[:, None]
    return x, torch.tensor([lab for _, lab in items], dtype=torch.int64)


def numpy_single_thread() -> contextlib.AbstractContextManager:
    """Limit numpy/scipy BLAS to one thread: next to torch's OpenMP threads a multi-threaded
    OpenBLAS makes per-clip feature extraction ~20x slower on a small CPU."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def worker_init(_: int) -> None:
    """DataLoader worker start-up: numpy BLAS limited to one thread (``worker_init_fn``)."""
    numpy_single_thread()
