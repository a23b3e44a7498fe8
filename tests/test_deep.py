"""Deep models, augmentation and the resumable trainer (fast: tiny nets on synthetic tones)."""

from __future__ import annotations

import json
import os
import urllib.error
from dataclasses import replace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import torch
from conftest import emotional_tone
from safetensors.torch import load_file, save_file

import emovox.deep.data as data_mod
import emovox.deep.trainer as trainer_mod
from emovox.deep import (
    AugmentConfig,
    ClipDataset,
    EmotionCNN,
    FitContext,
    TrainConfig,
    TrainedNet,
    Trainer,
    add_noise,
    augment_spectrogram,
    augment_waveform,
    freeze_body,
    gain,
    image_shift_scale,
    load_model,
    load_torchvision_weights,
    lr_factor,
    mixup,
    n_parameters,
    param_groups_for_finetune,
    pitch_shift,
    predict_proba,
    resnet34,
    reverb,
    spec_augment,
    speed,
    time_shift,
)
from emovox.deep.nets import architecture_of, build_model, time_delta
from emovox.features import log_mel

torch.set_num_threads(2)

SR = 16_000
N_MELS = 32
LIGHT_AUG = replace(AugmentConfig(), p_reverb=0.3, p_pitch=0.3, max_t=5, max_f=3)
FAST = TrainConfig(
    epochs=4,
    batch_size=8,
    lr=3e-3,
    crop_seconds=0.5,
    eval_window=0.5,
    eval_hop=0.25,
    n_mels=N_MELS,
    patience=0,
    threads=2,
    device="cpu",
    augment=LIGHT_AUG,
)


def _tiny(seed: int = 0, n_classes: int = 4) -> EmotionCNN:
    torch.manual_seed(seed)
    return EmotionCNN(n_classes, n_mels=N_MELS, width=8)


@pytest.fixture(scope="module")
def tones():
    """4 classes x 5 speakers x 2 takes; speaker 0 is validation."""
    tr, ty, va, vy = [], [], [], []
    for e in range(4):
        for spk in range(5):
            for take in range(2):
                y = emotional_tone(e, spk, take)
                (va if spk == 0 else tr).append(y)
                (vy if spk == 0 else ty).append(e)
    return tr, ty, va, vy


# --------------------------------------------------------------------------- nets


@pytest.mark.parametrize("T", [8, 20, 101, 333])
def test_emotion_cnn_any_length(T):
    m = EmotionCNN(7).eval()
    assert 300_000 <= n_parameters(m) <= 1_000_000
    assert m(torch.randn(2, 1, 64, T)).shape == (2, 7)


@pytest.mark.parametrize("T", [1, 8, 101, 333])
@pytest.mark.parametrize("pool", ["global", "time"])
def test_emotion_cnn_deltas_and_time_pooling_any_length(T, pool):
    m = EmotionCNN(7, n_mels=N_MELS, deltas=True, pool=pool).eval()
    assert m.blocks[0][0].in_channels == 3  # log-mel, delta, delta-delta
    assert m(torch.randn(2, 1, N_MELS, T)).shape == (2, 7)
    name, kwargs = architecture_of(m)
    rebuilt = build_model(name, **kwargs)
    rebuilt.load_state_dict(m.state_dict())
    x = torch.randn(1, 1, N_MELS, 50)
    torch.testing.assert_close(rebuilt.eval()(x), m(x))


def test_time_delta_matches_the_numpy_delta():
    from emovox.features import delta

    x = torch.randn(2, 1, 5, 40)
    np.testing.assert_allclose(time_delta(x).numpy(), delta(x.numpy()), atol=1e-5)
    ramp = torch.arange(20.0).expand(1, 1, 3, 20)
    assert torch.allclose(time_delta(ramp)[..., 2:-2], torch.ones(1, 1, 3, 16))


def test_time_pooling_keeps_frequency_position():
    """pool="time" lets the head tell a pattern low in frequency from the same one high up;
    pool="global" cannot (it averages over frequency too)."""
    torch.manual_seed(0)
    low, high = torch.zeros(1, 1, N_MELS, 40), torch.zeros(1, 1, N_MELS, 40)
    low[..., 2:6, :] = 3.0
    high[..., 26:30, :] = 3.0
    m = EmotionCNN(2, n_mels=N_MELS, width=8, pool="time").eval()
    h_low, h_high = m.blocks(low), m.blocks(high)
    rows_low, rows_high = h_low.mean(dim=(0, 1, 3)), h_high.mean(dim=(0, 1, 3))
    assert rows_low.shape == (2,)  # 32 bands -> 2 rows after four pools
    assert rows_low[0] > rows_low[1] and rows_high[1] > rows_high[0]
    assert m.fc.in_features == 2 * 8 * 8 * 2  # 32 bands -> 2 rows after four pools
    with pytest.raises(ValueError, match="pool"):
        EmotionCNN(2, pool="freq")
    with pytest.raises(ValueError, match="mel bands"):
        m(torch.randn(1, 1, 64, 40))


def test_resnet34_any_length_and_torchvision_names():
    m = resnet34(7).eval()
    for T in (20, 101, 333):
        assert m(torch.randn(2, 1, 64, T)).shape == (2, 7)
    rgb = resnet34(1000, in_channels=3)
    sd = rgb.state_dict()
    assert len(sd) == 218  # torchvision's resnet34 state dict, num_batches_tracked included
    assert n_parameters(rgb) == 21_797_672
    for key, shape in {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_mean": (64,),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_var": (128,),
        "layer3.5.bn2.weight": (256,),
        "layer4.2.conv2.weight": (512, 512, 3, 3),
        "fc.weight": (1000, 512),
        "fc.bias": (1000,),
    }.items():
        assert tuple(sd[key].shape) == shape


@pytest.fixture(scope="module")
def torchvision_sd():
    torch.manual_seed(1)
    src = resnet34(1000, in_channels=3)
    for m in src.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
    return src.state_dict()


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_load_torchvision_weights(tmp_path, torchvision_sd, fmt):
    path = tmp_path / f"resnet34.{fmt}"
    if fmt == "pth":
        torch.save(torchvision_sd, path)
    else:
        save_file({k: v.contiguous() for k, v in torchvision_sd.items()}, str(path))
    model = resnet34(7, in_channels=1)
    report = load_torchvision_weights(model, path)
    expected = torchvision_sd["conv1.weight"].sum(dim=1, keepdim=True)
    assert torch.allclose(model.conv1.weight, expected)
    assert report["adapted"] == ["conv1.weight"]
    assert sorted(report["skipped"]) == ["fc.bias", "fc.weight"]
    assert sorted(report["missing"]) == ["fc.bias", "fc.weight"]
    assert report["unexpected"] == []
    got = model.state_dict()
    for key in ("layer3.1.conv2.weight", "layer2.0.downsample.1.running_var", "bn1.weight"):
        assert torch.equal(got[key], torchvision_sd[key])


def test_load_torchvision_weights_same_head_and_no_pickle(tmp_path, torchvision_sd):
    path = tmp_path / "r.pth"
    torch.save(torchvision_sd, path)
    model = resnet34(1000, in_channels=3)
    report = load_torchvision_weights(model, path)
    assert report["skipped"] == report["missing"] == report["adapted"] == []
    assert torch.equal(model.fc.weight, torchvision_sd["fc.weight"])
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "thing": _Opaque()}, evil)
    with pytest.raises(ValueError, match="weights_only"):
        load_torchvision_weights(model, evil)


class _Opaque:
    pass


def test_imagenet_download_failure_is_clear(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="--pretrained PATH"):
        load_torchvision_weights(resnet34(7), "imagenet")


def test_finetune_param_groups_and_freeze():
    m = resnet34(5)
    groups = param_groups_for_finetune(m, 1e-3, decay=0.5)
    assert [g["name"] for g in groups] == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert groups[-1]["lr"] == 1e-3 and groups[0]["lr"] == pytest.approx(1e-3 * 0.5**5)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(m.parameters()))
    freeze_body(m, True)
    assert {n for n, p in m.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}
    freeze_body(m, False)
    assert all(p.requires_grad for p in m.parameters())
    cnn = [g["name"] for g in param_groups_for_finetune(EmotionCNN(4), 1e-3)]
    assert cnn == ["blocks.0", "blocks.1", "blocks.2", "blocks.3", "fc"]


# --------------------------------------------------------------------------- augmentation


@pytest.fixture(scope="module")
def clip():
    return emotional_tone(2, 1, 3)


WAVE_AUGS = {
    "white": lambda y, r: add_noise(y, 10.0, r, "white"),
    "pink": lambda y, r: add_noise(y, 10.0, r, "pink"),
    "babble": lambda y, r: add_noise(y, 5.0, r, "babble", [emotional_tone(0, 3, 0), y[:900]]),
    "shift": lambda y, r: time_shift(y, r, 0.2),
    "gain": lambda y, r: gain(y, -6.0),
    "pitch": lambda y, r: pitch_shift(y, SR, 2.0),
    "reverb": lambda y, r: reverb(y, r, SR, 0.5),
    "chain": lambda y, r: augment_waveform(
        y, SR, r, replace(AugmentConfig(), p_speed=0.0), [emotional_tone(1, 2, 0)]
    ),
}


@pytest.mark.parametrize("name", sorted(WAVE_AUGS))
def test_waveform_augmentations(clip, name):
    f = WAVE_AUGS[name]
    a, b = f(clip, np.random.default_rng(7)), f(clip, np.random.default_rng(7))
    assert a.shape == clip.shape and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, clip)


def test_speed_and_pitch_do_what_they_say():
    t = np.arange(SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)

    def peak(x):
        return np.argmax(np.abs(np.fft.rfft(x))) * SR / len(x)

    fast = speed(y, 1.25)
    assert fast.dtype == np.float32 and abs(len(fast) - SR / 1.25) < 5
    assert peak(fast) == pytest.approx(250, abs=3)
    up = pitch_shift(y, SR, 2.0)
    assert len(up) == len(y) and peak(up) == pytest.approx(200 * 2 ** (2 / 12), abs=3)


def test_spectrogram_augmentations():
    rng = np.random.default_rng(0)
    S = rng.standard_normal((N_MELS, 120)).astype(np.float32) + 5
    masked = spec_augment(S, np.random.default_rng(3), 2, 2, max_t=10, max_f=4, value=-99.0)
    assert masked.shape == S.shape and masked.dtype == np.float32
    assert np.all(masked[:, (masked == -99).all(axis=0)] == -99)
    assert (masked == -99).all(axis=0).sum() >= 1 and (masked == -99).all(axis=1).sum() >= 1
    np.testing.assert_array_equal(
        masked, spec_augment(S, np.random.default_rng(3), 2, 2, max_t=10, max_f=4, value=-99.0)
    )
    for f in (
        lambda r: image_shift_scale(S, r, 0.1, (0.8, 1.2)),
        lambda r: augment_spectrogram(S, r, replace(AugmentConfig(), p_image=1, p_specaug=1)),
    ):
        a, b = f(np.random.default_rng(5)), f(np.random.default_rng(5))
        assert a.shape == S.shape and a.dtype == np.float32 and np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, S)


def test_mixup_and_no_augmentation(clip):
    x1, x2 = torch.zeros(4, 1, 8, 8), torch.ones(4, 1, 8, 8)
    y1 = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    y2 = torch.nn.functional.one_hot(torch.tensor([1, 1, 0, 2]), 3).float()
    x, y, lam = mixup(x1, y1, x2, y2, 0.4, np.random.default_rng(0))
    assert 0.5 <= lam <= 1 and x.shape == x1.shape
    assert torch.allclose(x, torch.full_like(x, 1 - lam))
    assert torch.allclose(y.sum(1), torch.ones(4))
    none = AugmentConfig.none()
    assert not none.enabled and AugmentConfig().enabled
    np.testing.assert_array_equal(augment_waveform(clip, SR, np.random.default_rng(0), none), clip)
    with pytest.raises(ValueError):
        AugmentConfig(p_noise=1.5)


# --------------------------------------------------------------------------- trainer


def test_lr_schedules():
    f = [lr_factor(s, 100, "onecycle", 0.3) for s in range(100)]
    assert f[0] == pytest.approx(1 / 25) and max(f) == pytest.approx(1.0) and f[-1] < 1e-3
    c = [lr_factor(s, 100, "cosine") for s in range(100)]
    assert max(c) == pytest.approx(1.0) and c[-1] < 1e-2


def test_band_norm_removes_a_fixed_spectral_tilt():
    rng = np.random.default_rng(0)
    S = rng.standard_normal((16, 50)).astype(np.float32) * 5 - 40
    tilt = np.linspace(0, 30, 16, dtype=np.float32)[:, None]  # a channel/speaker colouring
    a, b = data_mod.standardize(S, None, "band"), data_mod.standardize(S + tilt, None, "band")
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.abs(a.mean(1)).max() < 1e-4
    c, d = data_mod.standardize(S, None), data_mod.standardize(S + tilt, None)  # clip norm
    assert np.abs(c - d).max() > 0.5
    with pytest.raises(ValueError, match="norm"):
        TrainConfig(norm="frame")


def test_config_json_roundtrip():
    cfg = replace(FAST, eval_window=None, layer_decay=0.3)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_training_lowers_loss_and_saves_a_loadable_model(tones, tmp_path):
    tr, ty, va, vy = tones
    cfg = replace(FAST, epochs=8, augment=AugmentConfig.none())
    model = _tiny()
    result = Trainer(cfg).fit(
        tr, ty, va, vy, model, tmp_path / "run", progress=False, labels=["neu", "hap", "sad", "ang"]
    )
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0]
    assert result.best_ua is not None and result.best_ua > 0.5  # chance is 0.25
    for name in (
        "model.safetensors",
        "model.json",
        "checkpoint.safetensors",
        "trainer_state.json",
        "history.json",
        "curves.png",
    ):
        assert (tmp_path / "run" / name).stat().st_size > 0
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["architecture"] == "emotion_cnn" and meta["labels"][3] == "ang"
    loaded = load_model(tmp_path / "run")
    assert isinstance(loaded, TrainedNet)
    p = loaded.predict_proba(va)
    assert p.shape == (len(va), 4) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(p, predict_proba(model, va, cfg), atol=1e-5)
    assert len(loaded.predict(va[:2])) == 2


class _Interrupt(Exception):
    pass


def test_resume_gives_the_same_weights(tones, tmp_path):
    tr, ty, va, vy = tones
    cfg = replace(FAST, epochs=4, mixup_alpha=0.4, restore_best=False)
    full = _tiny(seed=0)
    Trainer(cfg).fit(tr, ty, va, vy, full, tmp_path / "full", progress=False)

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        Trainer(cfg, on_epoch_end=stop_after_two).fit(
            tr, ty, va, vy, _tiny(seed=0), tmp_path / "cut", progress=False
        )
    assert json.loads((tmp_path / "cut" / "trainer_state.json").read_text())["epoch"] == 2
    resumed = _tiny(seed=99)  # different init: everything must come from the checkpoint
    result = Trainer(cfg).fit(
        tr, ty, va, vy, resumed, tmp_path / "cut", resume=True, progress=False
    )
    assert result.epochs_run == 4 and len(result.history) == 4
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float()) for k in a)
    ca = load_file(str(tmp_path / "full" / "checkpoint.safetensors"))
    cb = load_file(str(tmp_path / "cut" / "checkpoint.safetensors"))
    assert ca.keys() == cb.keys() and any(k.startswith("__optimizer__.") for k in ca)
    assert all(torch.allclose(ca[k].float(), cb[k].float()) for k in ca)
    again = Trainer(cfg).fit(
        tr, ty, va, vy, _tiny(seed=5), tmp_path / "full", resume=True, progress=False
    )
    assert again.epochs_run == 4 and len(again.history) == 4  # finished: nothing re-run
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in result.history]


def test_frozen_body_first_then_whole_net(tones, tmp_path):
    tr, ty, va, vy = tones
    cfg = replace(FAST, epochs=2, freeze_epochs=1, layer_decay=0.5, augment=AugmentConfig.none())
    model = _tiny()
    first = model.blocks[0][0].weight.detach().clone()
    head = model.fc.weight.detach().clone()
    seen = []

    def snapshot(record):
        seen.append((record["frozen"], model.blocks[0][0].weight.detach().clone()))

    Trainer(cfg, on_epoch_end=snapshot).fit(tr, ty, va, vy, model, tmp_path / "ft", progress=False)
    assert seen[0][0] and not seen[1][0]
    assert torch.equal(seen[0][1], first) and not torch.equal(seen[1][1], first)
    assert not torch.equal(model.fc.weight, head)


def test_augmentation_never_reaches_validation(tones, tmp_path, monkeypatch):
    tr, ty, va, vy = tones
    calls = {"wave": [], "spec": 0, "marked": 0, "clean": 0}

    def spy_wave(y, sr, rng, cfg, babble_pool=None):
        calls["wave"].append(y)
        assert babble_pool is tr
        return y + np.float32(100.0)  # a marker no real clip has

    def spy_spec(S, rng, cfg):
        calls["spec"] += 1
        return S

    def features(y):
        calls["marked" if np.mean(y) > 50 else "clean"] += 1
        return log_mel(y, SR, n_mels=N_MELS)

    monkeypatch.setattr(data_mod, "augment_waveform", spy_wave)
    monkeypatch.setattr(data_mod, "augment_spectrogram", spy_spec)
    cfg = replace(FAST, epochs=2)
    Trainer(cfg, feature_fn=features).fit(tr, ty, va, vy, _tiny(), tmp_path / "r", progress=True)
    assert len(calls["wave"]) == calls["spec"] == calls["marked"] == 2 * len(tr)
    assert calls["clean"] == 2 * len(va)  # each validation clip once per epoch, unmarked
    for y in calls["wave"]:
        assert any(np.shares_memory(y, w) for w in tr)
        assert not any(np.shares_memory(y, v) for v in va)
    n = len(calls["wave"])
    predict_proba(_tiny(), va, cfg, features)
    assert len(calls["wave"]) == n
    with pytest.raises(ValueError, match="training data only"):
        ClipDataset(va, vy, cfg, features, train=False, augment_cfg=AugmentConfig())
    assert not ClipDataset(va, vy, cfg, features, train=False).augment


def test_bf16_training_learns_and_predicts(tones, tmp_path):
    tr, ty, va, vy = tones
    cfg = replace(FAST, epochs=8, augment=AugmentConfig.none(), precision="bf16")
    model = _tiny()
    result = Trainer(cfg).fit(tr, ty, va, vy, model, tmp_path / "run", progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    p = load_model(tmp_path / "run").predict_proba(va)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1, atol=1e-4)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


# --------------------------------------------------------------------------- feature cache

SPEC_ONLY = replace(AugmentConfig.none(), p_image=0.5, p_specaug=0.5, max_t=5, max_f=3)


def _counting_log_mel(counter: list[int]):
    def features(y: np.ndarray) -> np.ndarray:
        counter.append(len(y))
        return log_mel(y, SR, n_mels=N_MELS)

    return features


def test_feature_cache_only_without_waveform_augmentation(tones):
    tr, ty, _, _ = tones
    assert not SPEC_ONLY.waveform_enabled and AugmentConfig().waveform_enabled
    on = ClipDataset(tr, ty, FAST, train=True, augment_cfg=SPEC_ONLY, cache_features=True)
    wave = ClipDataset(tr, ty, FAST, train=True, augment_cfg=LIGHT_AUG, cache_features=True)
    assert on.cache_features and not wave.cache_features


def test_cached_training_crops_are_windows_of_the_whole_clip(tones):
    tr, ty, _, _ = tones
    calls: list[int] = []
    ds = ClipDataset(
        tr, ty, FAST, _counting_log_mel(calls), train=True, augment_cfg=None, cache_features=True
    )
    n_frames = 1 + int(FAST.crop_seconds * SR) // FAST.hop
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(tr)):
            seg, _ = ds[i]
            assert seg.shape == (1, N_MELS, n_frames)
            full = log_mel(tr[i], SR, n_mels=N_MELS)
            windows = [
                data_mod.standardize(full[:, s : s + n_frames], FAST.top_db, FAST.norm)
                for s in range(full.shape[1] - n_frames + 1)
            ]
            assert any(np.allclose(seg[0], w, atol=1e-5) for w in windows)
    assert len(calls) == len(tr)  # each clip's features computed once, not once per epoch


def test_cached_crops_pad_short_clips_with_silence():
    y = emotional_tone(0, 1, 0)[: SR // 10]  # 0.1 s, shorter than the 0.5 s crop
    ds = ClipDataset([y], [0], FAST, train=True, cache_features=True)
    seg = ds[0][0][0]
    direct = data_mod.standardize(log_mel(y, SR, n_mels=N_MELS), FAST.top_db, FAST.norm)
    floor = seg.min()
    padded = np.all(np.isclose(seg, floor), axis=0)  # frames holding only the floor
    assert padded.sum() >= seg.shape[1] - direct.shape[1]
    assert seg.shape[1] == 1 + int(FAST.crop_seconds * SR) // FAST.hop


def test_cached_evaluation_matches_uncached(tones):
    _, _, va, vy = tones
    calls: list[int] = []
    cached = ClipDataset(va, vy, FAST, _counting_log_mel(calls), train=False, cache_features=True)
    plain = ClipDataset(va, vy, FAST, train=False)
    for _ in range(2):
        for i in range(len(va)):
            np.testing.assert_array_equal(cached[i][0], plain[i][0])
    assert len(calls) == len(va)


def test_cached_training_keeps_augmentation_off_validation(tones, tmp_path, monkeypatch):
    tr, ty, va, vy = tones
    seen: list[tuple[int, ...]] = []
    real = data_mod.augment_spectrogram

    def spy(S, rng, cfg):
        seen.append(S.shape)
        return real(S, rng, cfg)

    calls: list[int] = []
    monkeypatch.setattr(data_mod, "augment_spectrogram", spy)
    monkeypatch.setattr(trainer_mod, "default_feature_fn", lambda cfg: _counting_log_mel(calls))
    cfg = replace(FAST, epochs=2, augment=SPEC_ONLY, feature_cache=True)
    fit = Trainer(cfg).fit(tr, ty, va, vy, _tiny(), tmp_path / "r", progress=False)
    assert len(seen) == 2 * len(tr)  # training items only: validation never augmented
    assert fit.epochs_run == 2 and fit.best_ua is not None
    assert len(calls) == len(tr) + len(va)  # the trainer used the cache: once per clip


def test_cached_training_resume_matches_uninterrupted(tones, tmp_path):
    tr, ty, va, vy = tones
    cfg = replace(FAST, epochs=3, augment=SPEC_ONLY, mixup_alpha=0.2, feature_cache=True)
    full = _tiny()
    Trainer(cfg).fit(tr, ty, va, vy, full, tmp_path / "a", progress=False)

    class Stop(Exception):
        pass

    def stop_after_first(rec):
        if rec["epoch"] == 1:
            raise Stop

    part = _tiny()
    with pytest.raises(Stop):
        Trainer(cfg, on_epoch_end=stop_after_first).fit(
            tr, ty, va, vy, part, tmp_path / "b", progress=False
        )
    resumed = _tiny(seed=5)
    Trainer(cfg).fit(tr, ty, va, vy, resumed, tmp_path / "b", resume=True, progress=False)
    a = load_file(str(tmp_path / "a" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoint.safetensors"))
    for k in a:
        if not k.startswith("__"):
            torch.testing.assert_close(a[k], b[k])


def test_every_augmentation_is_classed_waveform_or_spectrogram():
    from dataclasses import fields

    from emovox.deep.augment import WAVEFORM_PROBS

    probs = {f.name for f in fields(AugmentConfig) if f.name.startswith("p_")}
    assert probs == set(WAVEFORM_PROBS) | {"p_image", "p_specaug"}  # a new p_* must be classed


def test_cache_is_filled_before_worker_processes_start(tones, tmp_path, monkeypatch):
    tr, ty, va, vy = tones
    calls: list[int] = []
    made: list[ClipDataset] = []
    real_init = ClipDataset.__init__

    def record(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(ClipDataset, "__init__", record)
    monkeypatch.setattr(trainer_mod, "default_feature_fn", lambda cfg: _counting_log_mel(calls))
    cfg = replace(FAST, epochs=2, augment=SPEC_ONLY, feature_cache=True, workers=1)
    Trainer(cfg).fit(tr, ty, va, vy, _tiny(), tmp_path / "r", progress=False)
    train_ds = next(d for d in made if d.train)
    assert train_ds.n_cached == len(tr)  # filled in this process, inherited by workers
    assert len(calls) == len(tr) + len(va)  # workers found every clip computed already


# --------------------------------------------------------------------------- public surface


def test_loaded_model_is_a_deprecated_alias_of_trained_net():
    import emovox.deep

    with pytest.warns(DeprecationWarning, match="TrainedNet"):
        assert emovox.deep.LoadedModel is TrainedNet
    with pytest.raises(AttributeError):
        emovox.deep.NoSuchName  # noqa: B018


def test_one_unweighted_accuracy_for_deep_runs_and_reports():
    from sklearn.metrics import balanced_accuracy_score

    import emovox.deep
    from emovox.evaluation import metrics

    assert emovox.deep.unweighted_accuracy is metrics.unweighted_accuracy
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    ua = metrics.unweighted_accuracy(y, p)
    assert ua == pytest.approx(balanced_accuracy_score(y, p))
    names = np.array(["neu", "hap", "sad", "ang"])
    report = metrics.score(names[y], names[p], ["ang", "sad", "hap", "neu", "fea"])
    assert report["ua"] == pytest.approx(ua)  # the same classes, summed in another order
    # classes outside ``labels`` do not count in a report's UA
    assert metrics.unweighted_accuracy(["a", "a", "b"], ["a", "b", "b"], ["a"]) == 0.5


def test_trainer_extension_points_are_public(tones, tmp_path):
    tr, ty, va, vy = tones
    seen: dict[str, int] = {"forward": 0}

    class OneBatch(Trainer):
        def batches(self, n, rng):
            return super().batches(n, rng)[:1]

        def train_forward(self, model):
            seen["forward"] += 1
            return super().train_forward(model)

        def run_epoch(self, model, epoch, ctx):
            assert isinstance(ctx, FitContext) and ctx.n_classes == 4
            assert ctx.total_steps == 2  # 2 epochs x the one batch ``batches`` gives
            record = super().run_epoch(model, epoch, ctx)
            return record | {"marked": True}

    cfg = replace(FAST, epochs=2, augment=AugmentConfig.none())
    fit = OneBatch(cfg).fit(tr, ty, va, vy, _tiny(), tmp_path / "r", progress=False)
    assert seen["forward"] == 2 and all(h["marked"] for h in fit.history)
    state = json.loads((tmp_path / "r" / "trainer_state.json").read_text())
    assert state["global_step"] == 2


def _epoch(n: int, ua: float | None, loss: float = 1.0) -> dict:
    return {"epoch": n, "train_loss": loss, "val_loss": 1.2, "val_ua": ua, "seconds": 0.1}


def test_progress_bar_shows_the_epoch_just_finished():
    """The bar shows the last epoch's val UA as soon as it is known (it used to keep the
    previous epoch's until the next step: the bar read 0.211 while the epoch line said 0.250)."""
    import io

    from rich.console import Console

    from emovox.deep.progress import TrainingProgress

    out = io.StringIO()
    bar = TrainingProgress(True, 3, 2, console=Console(file=out, width=160, record=True))
    state = {"best_ua": None}
    for epoch, ua in enumerate([0.211, 0.250, 0.180]):
        bar.start_epoch(epoch)
        bar.step(1.5)
        bar.step(0.5)
        state["best_ua"] = max(ua, state["best_ua"] or 0.0)
        bar.epoch_done(_epoch(epoch + 1, ua), state)
        assert f"val UA {ua:.3f}" in bar.shown  # the last epoch's value, not the best
        assert f"(best {state['best_ua']:.3f})" in bar.shown
    bar.close()
    final_bar = [line for line in out.getvalue().splitlines() if "epoch 3/3" in line][-1]
    assert "val UA 0.180 (best 0.250)" in final_bar and "0.211" not in final_bar


def test_training_run_bar_matches_each_epoch(tones, tmp_path, monkeypatch):
    from emovox.deep.progress import TrainingProgress

    seen: list[str] = []

    class Spy(TrainingProgress):
        def epoch_done(self, record, state):
            super().epoch_done(record, state)
            seen.append(self.shown)

    monkeypatch.setattr(trainer_mod, "TrainingProgress", Spy)
    tr, ty, va, vy = tones
    fit = Trainer(replace(FAST, epochs=3)).fit(tr, ty, va, vy, _tiny(), tmp_path / "r")
    assert len(seen) == len(fit.history) == 3
    for shown, record in zip(seen, fit.history, strict=True):
        assert f"val UA {record['val_ua']:.3f}" in shown, (shown, record)
        assert f"loss {record['train_loss']:.3f}" in shown
