"""emovox.features on synthetic signals: shapes, pitch, LPC, functionals, cache, extraction."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from emovox import audio
from emovox.features import (
    PROSODIC_NAMES,
    SPECTRAL_SHAPE_NAMES,
    CacheEntry,
    FeatureCache,
    FeatureConfig,
    FeatureError,
    energy,
    extract,
    feature_names,
    functional_names,
    functionals,
    log_mel,
    lpc,
    mfcc,
    pitch,
    plp,
    power_spectrogram,
    prosodic,
    spectral_shape,
    spectrogram,
    utterance_vector,
    zero_crossing_rate,
)

# `emovox.features.extract` the attribute is the function; this is the module
extract_mod = importlib.import_module("emovox.features.extract")

SR = 16_000
RNG = np.random.default_rng(1234)


def tone(f0: float, seconds: float = 1.0, harmonics: int = 1, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, harmonics + 1))
    return (amp * y / np.max(np.abs(y))).astype(np.float32)


def noise(seconds: float = 1.0, amp: float = 0.1) -> np.ndarray:
    return (amp * RNG.standard_normal(int(seconds * SR))).astype(np.float32)


# --- frame-level features ------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.25, 0.5, 1.37, 3.0])
def test_frame_feature_shapes(seconds: float) -> None:
    y = tone(180, seconds, harmonics=4) + noise(seconds, 0.01)
    T = 1 + len(y) // 160
    S = power_spectrogram(y)
    assert S.shape == (T, 201)
    assert log_mel(y, SR).shape == (64, T)
    assert log_mel(y, SR, n_mels=40, S=S).shape == (40, T)
    assert spectrogram(y, SR).shape == (201, T)
    assert mfcc(y, SR).shape == (60, T)
    assert mfcc(y, SR, n_mfcc=13, deltas=False).shape == (13, T)
    assert spectral_shape(y, SR).shape == (len(SPECTRAL_SHAPE_NAMES), T)
    assert lpc(y, SR, order=12).shape == (12, T)
    assert lpc(y, SR, order=10, cepstra=True).shape == (10, T)
    assert plp(y, SR, order=12).shape == (13, T)
    f0, voiced = pitch(y, SR)
    assert f0.shape == voiced.shape == (T,)
    assert energy(y, SR).shape == zero_crossing_rate(y, SR).shape == (T,)


def test_a_shared_power_spectrum_is_reused_and_checked() -> None:
    from emovox.features.spectral import shared_power

    y = tone(180, 0.5, harmonics=4)
    S = power_spectrogram(y)
    assert shared_power(y, 400, 160, S) is S
    np.testing.assert_array_equal(shared_power(y, 400, 160, None), S)
    np.testing.assert_array_equal(lpc(y, SR, S=S), lpc(y, SR))
    with pytest.raises(ValueError, match=r"S must be \(T, 257\)"):
        plp(y, SR, n_fft=512, S=S)
    for x in (S, log_mel(y, SR), mfcc(y, SR), spectral_shape(y, SR), lpc(y, SR), plp(y, SR)):
        assert x.dtype == np.float32 and np.all(np.isfinite(x))


def test_tiny_and_silent_inputs_stay_finite() -> None:
    for y in (np.zeros(SR // 2, np.float32), tone(200, 0.01), np.zeros(1, np.float32)):
        T = 1 + len(y) // 160
        for x in (log_mel(y, SR), mfcc(y, SR), spectral_shape(y, SR), lpc(y, SR), plp(y, SR)):
            assert x.shape[1] == T and np.all(np.isfinite(x))
        assert not pitch(y, SR)[1].any()
        assert all(np.isfinite(v) for v in prosodic(y, SR).values())


@pytest.mark.parametrize("f0", [120.0, 200.0])
def test_pitch_recovers_harmonic_tone(f0: float) -> None:
    est, voiced = pitch(tone(f0, 1.0, harmonics=6), SR)
    assert voiced.mean() > 0.9
    assert abs(np.median(est[voiced]) - f0) / f0 < 0.02
    assert np.all(est[~voiced] == 0)


def test_pitch_pure_sine_and_range() -> None:
    est, voiced = pitch(tone(300.0), SR)
    assert abs(np.median(est[voiced]) - 300) < 6
    assert voiced.mean() > 0.9


def test_noise_and_silence_are_unvoiced() -> None:
    assert pitch(noise(1.0), SR)[1].mean() < 0.1
    assert prosodic(noise(1.0), SR)["voiced_ratio"] < 0.1
    assert not pitch(np.zeros(SR, np.float32), SR)[1].any()


def test_prosodic_keys_and_values() -> None:
    # 1 s tone, 0.3 s pause, 1 s tone: two voiced segments, two loudness peaks
    y = np.concatenate([tone(150, 1.0, 5), np.zeros(int(0.3 * SR), np.float32), tone(220, 1.0, 5)])
    p = prosodic(y, SR)
    assert list(p) == list(PROSODIC_NAMES)
    assert 0.7 < p["voiced_ratio"] < 0.9
    assert p["voiced_segments_per_s"] == pytest.approx(2 / 2.3, rel=0.01)
    assert p["f0_range_st"] > 5  # 150 -> 220 Hz is ~6.6 semitones
    assert p["f0_slope_st_per_s"] > 0
    assert p["duration_s"] == pytest.approx(2.3)


def test_energy_and_zcr_values() -> None:
    y = tone(1000, 1.0, amp=0.5)
    e = energy(y, SR)
    assert np.median(e) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)
    assert np.median(zero_crossing_rate(y, SR)) == pytest.approx(2000 / SR, rel=0.05)


def test_log_mel_peak_follows_tone_frequency() -> None:
    peaks = [int(np.argmax(log_mel(tone(f), SR).mean(axis=1))) for f in (300, 1000, 2500, 6000)]
    assert peaks == sorted(peaks) and len(set(peaks)) == 4


def test_spectral_centroid_and_flatness() -> None:
    lo = spectral_shape(tone(500), SR)
    hi = spectral_shape(tone(3000), SR)
    wn = spectral_shape(noise(), SR)
    i_c, i_f = SPECTRAL_SHAPE_NAMES.index("centroid"), SPECTRAL_SHAPE_NAMES.index("flatness")
    assert np.median(lo[i_c]) == pytest.approx(500, rel=0.1)
    assert np.median(hi[i_c]) == pytest.approx(3000, rel=0.1)
    assert np.median(wn[i_f]) > 0.3 > np.median(lo[i_f])


def test_lpc_recovers_ar2_process() -> None:
    e = RNG.standard_normal(2 * SR)
    y = scipy.signal.lfilter([1.0], [1.0, -1.5, 0.7], e).astype(np.float32)
    y /= np.abs(y).max()
    a = lpc(y, SR, order=2, preemph=0.0)
    assert np.median(a, axis=1) == pytest.approx([-1.5, 0.7], abs=0.05)
    c = lpc(y, SR, order=4, preemph=0.0, cepstra=True)
    assert np.median(c[0]) == pytest.approx(1.5, abs=0.05)  # c1 = -a1


def test_plp_finite_and_distinguishes_spectra() -> None:
    a, b = plp(tone(200, 1.0, 8), SR), plp(noise(), SR)
    assert a.shape == b.shape == (13, 101)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    assert np.linalg.norm(a[1:].mean(1) - b[1:].mean(1)) > 0.1


# --- functionals ---------------------------------------------------------------------------


def test_functionals_constant_short_and_ramp() -> None:
    const = np.full((3, 50), 2.5)
    out = functionals(const)
    assert out.shape == (3 * 8,) and np.all(np.isfinite(out))
    stats = dict(zip(functional_names(["a", "b", "c"]), out, strict=True))
    assert stats["a_std"] == 0 and stats["b_slope"] == 0 and stats["c_p50"] == 2.5
    one = functionals(np.array([[1.0], [np.nan]]))
    assert one.shape == (16,) and np.all(np.isfinite(one))
    assert np.all(np.isfinite(functionals(np.zeros((2, 0)))))
    ramp = np.arange(100.0)[None, :] * 0.5
    r = dict(zip(functional_names(["x"]), functionals(ramp, frame_rate=100.0), strict=True))
    assert r["x_slope"] == pytest.approx(50.0)  # 0.5 per frame at 100 frames/s
    assert r["x_min"] == 0 and r["x_max"] == pytest.approx(49.5)
    with pytest.raises(ValueError):
        functionals(ramp, stats=("mean", "kurtosis"))


# --- config and utterance vector -----------------------------------------------------------


def test_feature_config_key() -> None:
    a, b = FeatureConfig(), FeatureConfig()
    assert a.key() == b.key() and len(a.key()) == 12
    assert FeatureConfig(groups="mfcc,prosody").key() == FeatureConfig(groups="prosody, mfcc").key()
    assert FeatureConfig(groups=["prosody", "MFCC"]).groups == "mfcc,prosody"
    assert a.groups == "mfcc,logmel,lpc,plp,prosody,spectral"
    assert a.group_list == ("mfcc", "logmel", "lpc", "plp", "prosody", "spectral")
    keys = {
        a.key(),
        FeatureConfig(n_mfcc=13).key(),
        FeatureConfig(groups="mfcc").key(),
        FeatureConfig(stats=("mean", "std")).key(),
        FeatureConfig(lpc_cepstra=False).key(),
    }
    assert len(keys) == 5
    assert hash(a) == hash(b)  # frozen: usable as a dict key
    with pytest.raises(FeatureError):
        FeatureConfig(groups="mfcc,bogus")
    with pytest.raises(FeatureError):
        FeatureConfig(fmin=500, fmax=60)


@pytest.mark.parametrize("groups", [None, "mfcc", "prosody,spectral", "logmel,lpc,plp"])
def test_utterance_vector_matches_names(groups: str | None) -> None:
    cfg = FeatureConfig() if groups is None else FeatureConfig(groups=groups)
    names = feature_names(cfg)
    assert len(names) == len(set(names))
    for y in (tone(220, 0.25, 5), tone(150, 2.0, 5) + noise(2.0, 0.02), noise(0.5)):
        v = utterance_vector(y, SR, cfg)
        assert v.dtype == np.float32 and v.shape == (len(names),)
        assert np.all(np.isfinite(v))


def test_default_dimension_and_group_order() -> None:
    names = feature_names(FeatureConfig())
    assert len(names) == 1016
    assert names[0] == "mfcc0_mean" and names[-1] == "spectral_contrast5_slope"
    assert "prosody_f0_mean_st" in names and "logmel63_std" in names and "plp12_p90" in names


def test_egemaps_needs_opensmile() -> None:
    try:
        import opensmile  # noqa: F401
    except ImportError:
        with pytest.raises(FeatureError, match="opensmile"):
            utterance_vector(tone(200), SR, FeatureConfig(groups="egemaps"))
    else:  # pragma: no cover - only where opensmile is installed
        v = utterance_vector(tone(200), SR, FeatureConfig(groups="egemaps"))
        assert v.shape == (88,)


# --- cache and extraction ------------------------------------------------------------------


def test_cache_round_trip(tmp_path) -> None:
    cache = FeatureCache(tmp_path / "c")
    cfg, pre = FeatureConfig(groups="mfcc"), audio.Preprocess()
    sha = "ab" * 20
    assert cache.get(sha, cfg, pre) is None
    vec = np.arange(5, dtype=np.float32)
    cache.put(sha, cfg, pre, CacheEntry(vec, "f" * 40, 1.25))
    got = cache.get(sha, cfg, pre)
    assert got is not None
    np.testing.assert_array_equal(got.vector, vec)
    assert got.content_hash == "f" * 40 and got.duration == 1.25
    assert cache.get(sha, FeatureConfig(groups="mfcc", n_mfcc=13), pre) is None
    assert cache.get(sha, cfg, audio.Preprocess(trim=False)) is None
    assert (cache.directory(cfg, pre) / "settings.json").exists()
    assert not list(tmp_path.rglob(".tmp-*"))
    cache.path(sha, cfg, pre).write_bytes(b"garbage")  # a damaged entry is just a miss
    assert cache.get(sha, cfg, pre) is None


@pytest.fixture
def clip_dir(tmp_path):
    d = tmp_path / "clips"
    d.mkdir()
    sf.write(d / "a.wav", tone(200, 1.0, 5), SR)
    sf.write(d / "b.flac", tone(130, 0.8, 5) + noise(0.8, 0.01), 22_050)
    stereo = np.stack([tone(250, 1.2, 3), tone(250, 1.2, 3)], axis=1)
    sf.write(d / "c.wav", stereo, 44_100)
    (d / "corrupt.wav").write_bytes(RNG.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (d / "empty.wav").write_bytes(b"")
    sf.write(d / "silent.wav", np.zeros(SR, np.float32), SR)
    return d


def test_extract_records_failures(clip_dir) -> None:
    names = ["a.wav", "corrupt.wav", "b.flac", "empty.wav", "c.wav", "silent.wav", "missing.wav"]
    paths = [str(clip_dir / n) for n in names]
    cfg = FeatureConfig(groups="mfcc,prosody")
    res = extract(paths, cfg, n_jobs=1, progress=False)
    assert res.ok.tolist() == [True, False, True, False, True, False, False]
    assert res.X.shape == (3, len(feature_names(cfg))) and np.all(np.isfinite(res.X))
    failed = dict(res.errors)
    assert set(failed) == {paths[1], paths[3], paths[5], paths[6]}
    assert "empty" in failed[paths[3]] and "silent" in failed[paths[5]]
    assert "not found" in failed[paths[6]]
    assert res.hashes[1] is None and res.hashes[3] is None and np.isnan(res.durations[1])
    assert res.hashes[5] is not None  # decoded fine, then rejected: still hashed for audits
    y = audio.decode(paths[0])
    assert res.hashes[0] == audio.content_hash(y)
    # decoded durations are those of the files: 16000 samples at 16 kHz, 19200 at 44.1 kHz
    assert res.durations[0] == pytest.approx(1.0)
    assert res.durations[4] == pytest.approx(19200 / 44100, abs=1e-3)
    np.testing.assert_allclose(
        res.X[0], utterance_vector(audio.preprocess(y, audio.Preprocess()), SR, cfg), rtol=1e-5
    )


def test_extract_warm_cache_skips_work(clip_dir, tmp_path, monkeypatch) -> None:
    paths = [str(clip_dir / n) for n in ("a.wav", "b.flac", "c.wav", "corrupt.wav")]
    cfg = FeatureConfig(groups="mfcc,spectral")
    calls = []
    real = extract_mod.utterance_vector

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_mod, "utterance_vector", counting)
    cold = extract(paths, cfg, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert len(calls) == 3 and cold.n_cached == 0
    warm = extract(paths, cfg, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert len(calls) == 3 and warm.n_cached == 3
    np.testing.assert_array_equal(cold.X, warm.X)
    assert cold.hashes == warm.hashes and cold.ok.tolist() == warm.ok.tolist()
    np.testing.assert_array_equal(cold.durations, warm.durations)
    assert len(warm.errors) == 1
    # other preprocessing settings are a different cache entry
    extract(paths[:1], cfg, audio.Preprocess(normalize=False), tmp_path / "cache", 1, False)
    assert len(calls) == 4


def test_extract_parallel_matches_serial(clip_dir, tmp_path) -> None:
    paths = [str(clip_dir / n) for n in ("a.wav", "b.flac", "corrupt.wav", "c.wav")]
    cfg = FeatureConfig(groups="mfcc,lpc")
    serial = extract(paths, cfg, n_jobs=1, progress=False)
    par = extract(paths, cfg, cache_dir=tmp_path / "c", n_jobs=2, progress=True, chunk_size=1)
    np.testing.assert_allclose(serial.X, par.X, rtol=1e-6)
    assert serial.ok.tolist() == par.ok.tolist() == [True, True, False, True]
    assert [p for p, _ in par.errors] == [paths[2]]


def test_cache_misses_when_a_setting_or_the_code_changes(clip_dir, tmp_path, monkeypatch) -> None:
    """A cached vector is re-used only for the same settings AND the same feature code."""
    from emovox.features import utterance
    from emovox.features.code_version import source_version

    paths = [str(clip_dir / n) for n in ("a.wav", "b.flac")]
    cfg = FeatureConfig(groups="mfcc,prosody")
    calls = []
    real = extract_mod.utterance_vector

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    def run(config: FeatureConfig) -> int:
        before = len(calls)
        extract(paths, config, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
        return len(calls) - before  # clips computed, i.e. cache misses

    monkeypatch.setattr(extract_mod, "utterance_vector", counting)
    assert run(cfg) == 2  # cold
    assert run(cfg) == 0  # nothing changed: hits
    assert run(FeatureConfig(groups="mfcc,prosody", n_mfcc=13)) == 2  # a setting changed
    key = cfg.key()
    monkeypatch.setattr(utterance, "feature_code_version", lambda: "edited-code")
    assert cfg.key() != key
    assert run(cfg) == 2  # the feature code changed
    assert run(cfg) == 0
    monkeypatch.undo()
    assert cfg.key() == key and run(cfg) == 0  # back to the first code: its entries again
    # the version follows the modules' source; a module that appears changes it too
    base = source_version(utterance.FEATURE_MODULES)
    assert base == utterance.feature_code_version() and len(base) == 12
    assert source_version((*utterance.FEATURE_MODULES, "emovox.features.not_yet")) != base


def test_embedding_cache_key_follows_settings_and_code(tmp_path, monkeypatch) -> None:
    from emovox.features import embeddings

    cfg = embeddings.EmbeddingConfig(encoder=str(tmp_path / "enc"))
    cache, pre, sha = FeatureCache(tmp_path / "c"), audio.Preprocess(), "ab" * 20
    cache.put(sha, cfg, pre, CacheEntry(np.ones(4, np.float32), "f" * 40, 1.0))
    assert cache.get(sha, cfg, pre) is not None  # nothing changed: a hit
    other = embeddings.EmbeddingConfig(encoder=str(tmp_path / "enc"), stats=("mean",))
    assert cache.get(sha, other, pre) is None  # a setting changed
    key = cfg.key()
    monkeypatch.setattr(embeddings, "embedding_code_version", lambda view=False: "edited-mel")
    assert cfg.key() != key and cache.get(sha, cfg, pre) is None  # the code changed
    monkeypatch.undo()
    assert cfg.key() == key and cache.get(sha, cfg, pre) is not None
    assert "emovox.encoders.mel" in embeddings.EMBEDDING_MODULES


def test_view_code_versions_views_only(monkeypatch) -> None:
    """Editing a training view's augmentation moves the views' cache, not the plain clips'."""
    from emovox.features import code_version, embeddings

    plain, view = embeddings.EmbeddingConfig(), embeddings.EmbeddingConfig(view="phone")
    keys = plain.key(), view.key()
    real = code_version.module_source

    def edited(name: str) -> bytes | None:
        src = real(name)
        return src + b"# edited" if name == "emovox.deep.conditions" and src else src

    monkeypatch.setattr(code_version, "module_source", edited)
    embeddings.embedding_code_version.cache_clear()
    try:
        assert plain.key() == keys[0] and view.key() != keys[1]
    finally:
        monkeypatch.undo()
        embeddings.embedding_code_version.cache_clear()
    assert "emovox.deep.conditions" in embeddings.VIEW_MODULES


def test_feature_extraction_lists_a_named_pipe_instead_of_hanging(tmp_path):
    import os
    import threading

    from emovox.features import FeatureConfig, extract

    good = tmp_path / "good.wav"
    t = np.arange(16000) / 16000
    sf.write(good, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    pipe = tmp_path / "pipe.wav"
    os.mkfifo(pipe)
    out: dict = {}
    run = threading.Thread(
        target=lambda: out.update(
            r=extract([str(good), str(pipe)], FeatureConfig(), cache_dir=tmp_path / "c", n_jobs=1)
        ),
        daemon=True,
    )
    run.start()
    run.join(60)
    assert not run.is_alive(), "feature extraction blocked on a named pipe"
    reasons = dict(out["r"].errors)
    assert "not a regular file" in reasons[str(pipe)]
