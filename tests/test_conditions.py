"""Recording-condition views (emovox.deep.conditions) and the training views built on them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from emovox.deep import conditions
from emovox.features.embeddings import apply_view, check_view

SR = 16_000


def _voice(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a wobbling pitch and some breath: energy from 100 Hz to 7 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 20 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 40))
    return (0.2 * y / np.max(np.abs(y)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _band_share(y: np.ndarray, lo: float, hi: float) -> float:
    f, p = scipy.signal.welch(y, SR, nperseg=1024)
    return float(p[(f >= lo) & (f <= hi)].sum() / p.sum())


def test_telephone_keeps_length_and_removes_what_lies_outside_the_band() -> None:
    y = _voice()
    z = conditions.telephone(y, SR)
    assert z.shape == y.shape and z.dtype == np.float32 and np.isfinite(z).all()
    assert _band_share(y, 4000, 8000) > 0.01
    assert _band_share(z, 4000, 8000) < 0.1 * _band_share(y, 4000, 8000)
    assert _band_share(z, 0, 200) < _band_share(y, 0, 200)


@pytest.mark.parametrize("name,kbps", [("opus", 8), ("mp3", 16)])
def test_codec_round_trip_is_lossy_but_close(name: str, kbps: int) -> None:
    y = _voice()
    z = conditions.codec(y, SR, name, kbps)
    assert z.shape == y.shape and z.dtype == np.float32 and np.isfinite(z).all()
    assert not np.allclose(z, y, atol=1e-3)  # something was lost
    assert 0.3 < np.sqrt(np.mean(z**2)) / np.sqrt(np.mean(y**2)) < 3  # the clip is still there


def test_codec_rejects_unknown_names_and_bitrates() -> None:
    with pytest.raises(ValueError, match="codec must be one of"):
        conditions.codec(_voice(), SR, "flac", 12)
    with pytest.raises(ValueError, match="bitrate"):
        conditions.codec(_voice(), SR, "opus", 500)


def test_clipping_flattens_peaks_and_keeps_the_level() -> None:
    y = _voice()
    z = conditions.clipping(y, 12.0)
    peak = np.max(np.abs(z))
    assert np.mean(np.abs(z) > 0.999 * peak) > 0.05  # many samples sit at the clip level
    assert np.isclose(np.sqrt(np.mean(z**2)), np.sqrt(np.mean(y**2)), rtol=1e-3)
    silent = np.zeros(100, np.float32)
    assert np.array_equal(conditions.clipping(silent), silent)


@pytest.mark.parametrize("kind", conditions.CONDITION_NOISES)
def test_condition_noise_sits_at_the_asked_snr(kind: str) -> None:
    y = _voice()
    z = conditions.add_condition_noise(y, 5.0, np.random.default_rng(1), kind, SR)
    noise = z - y
    snr = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert abs(snr - 5.0) < 0.5
    with pytest.raises(ValueError, match="noise kind"):
        conditions.add_condition_noise(y, 5.0, np.random.default_rng(1), "rain", SR)


def test_hum_is_mains_frequency() -> None:
    x = conditions.hum(SR, np.random.default_rng(0), SR)
    f, p = scipy.signal.welch(x, SR, nperseg=4096)
    assert f[np.argmax(p)] == pytest.approx(50, abs=5) or f[np.argmax(p)] == pytest.approx(
        60, abs=5
    )


def test_random_condition_is_seeded_and_says_what_it_did() -> None:
    y = _voice()
    runs = [conditions.random_condition(y, np.random.default_rng(s), SR) for s in range(12)]
    again = conditions.random_condition(y, np.random.default_rng(3), SR)
    assert np.array_equal(runs[3][0], again[0]) and runs[3][1] == again[1]
    assert all(steps for _, steps in runs)  # something is always applied
    kinds = {s.split(":")[0] for _, steps in runs for s in steps}
    assert len(kinds) >= 3  # the draws vary
    assert all(np.isfinite(z).all() and z.dtype == np.float32 for z, _ in runs)


@pytest.mark.parametrize(
    "view", ["phone", "codec:opus:12", "codec:mp3:24", "clip:10", "noise:babble:5", "condition:2"]
)
def test_new_training_views_are_valid_and_deterministic(view: str) -> None:
    y = _voice()
    assert check_view(view) == view
    a, b = apply_view(y, view, "hash-a"), apply_view(y, view, "hash-a")
    assert np.array_equal(a, b) and a.dtype == np.float32 and np.isfinite(a).all()


@pytest.mark.parametrize(
    "view", ["phone:3", "codec:flac:12", "codec:opus:999", "clip:0", "noise:rain:5", "condition:0"]
)
def test_bad_training_views_are_named(view: str) -> None:
    with pytest.raises(ValueError, match="unknown training view"):
        check_view(view)


def test_condition_views_differ_between_draws_and_clips() -> None:
    y = _voice()
    first = apply_view(y, "condition:1", "clip-a")
    assert not np.array_equal(first, apply_view(y, "condition:2", "clip-a"))
    assert not np.array_equal(first, apply_view(y, "condition:1", "clip-b"))


def test_crop_keeps_a_seeded_stretch_of_the_asked_length() -> None:
    y = _voice(3.0)
    z = conditions.crop(y, 1.0, np.random.default_rng(0), SR)
    assert len(z) == SR
    start = int(np.flatnonzero(np.isclose(y, z[0]))[0])
    np.testing.assert_array_equal(z, y[start : start + SR])  # a stretch of the clip itself
    again = conditions.crop(y, 1.0, np.random.default_rng(0), SR)
    assert np.array_equal(z, again)
    short = _voice(0.5)
    assert np.array_equal(conditions.crop(short, 1.0, np.random.default_rng(0), SR), short)
    assert check_view("crop:1.0") == "crop:1.0" and len(apply_view(y, "crop:1.0", "h")) == SR
    with pytest.raises(ValueError, match="unknown training view"):
        check_view("crop:0.1")
