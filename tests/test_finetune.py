"""Fine-tuning the top blocks of a Whisper encoder (``--model finetune``): the cached input of
the top blocks, the trainable copy of those blocks, training, prediction on whole clips, and
evaluation end to end. Small random encoders and generated audio; one torch thread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from conftest import emotional_tone  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from emovox.audio import load_clip  # noqa: E402
from emovox.cli import app  # noqa: E402
from emovox.encoders import WhisperDims, WhisperEncoder, export_encoder  # noqa: E402
from emovox.encoders.mel import log_mel_spectrogram  # noqa: E402
from emovox.evaluation.experiment import (  # noqa: E402
    ExperimentConfig,
    evaluate,
    load_dataset,
    load_experiment_config,
    model_params,
)
from emovox.features.embeddings import (  # noqa: E402
    EmbeddingConfig,
    extract_embeddings,
    load_encoder,
    top_input_blocks,
    top_input_stats,
)
from emovox.models import make_model  # noqa: E402
from emovox.models.finetune import FinetuneHead  # noqa: E402

SR = 16_000
DIM = 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_encoder(seed: int = 0, n_ctx: int = 1500, n_layer: int = 3) -> WhisperEncoder:
    """A small random encoder whose norms and biases are perturbed too (not the identity)."""
    torch.manual_seed(seed)
    enc = WhisperEncoder.from_dims(
        WhisperDims(n_mels=80, n_ctx=n_ctx, n_state=DIM, n_head=2, n_layer=n_layer)
    ).eval()
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return enc


@pytest.fixture
def encoder_path(tmp_path: Path) -> str:
    return str(export_encoder(small_encoder(), tmp_path / "enc.safetensors"))


def _wavs(tmp_path: Path, seconds: tuple[float, ...]) -> list[str]:
    paths = []
    for i, sec in enumerate(seconds):
        y = np.concatenate([emotional_tone(i % 4, 1, 1)] * int(np.ceil(sec / 0.7)))
        p = tmp_path / f"c{i}.wav"
        sf.write(p, y[: int(sec * SR)], SR)
        paths.append(str(p))
    return paths


def _signal_frames(n: int, seed: int, dim: int = DIM) -> tuple[np.ndarray, np.ndarray]:
    """Three classes told apart by one unit's level over the first half of each clip."""
    rng = np.random.default_rng(seed)
    X = np.empty(n, dtype=object)
    y = []
    for i in range(n):
        c, t = i % 3, int(rng.integers(20, 80))
        x = rng.standard_normal((t, dim)).astype(np.float32)
        x[: t // 2, c] += 3.0
        X[i] = x.astype(np.float16)
        y.append("abc"[c])
    return X, np.array(y)


# ----------------------------------------------------------------------------- cached input


def test_top_input_stats_name_the_blocks() -> None:
    assert top_input_blocks(top_input_stats(2)) == 2
    assert top_input_blocks(("mean", "std")) is None
    assert top_input_blocks(("frames",)) is None
    with pytest.raises(ValueError, match="at least 1"):
        top_input_stats(0)
    keys = {
        EmbeddingConfig("tiny.en", stats=s).key()
        for s in (top_input_stats(1), top_input_stats(2), ("frames",))
    }
    assert len(keys) == 3  # each kind of input has its own cache folder


@pytest.mark.parametrize("n_top", [1, 3])
def test_cached_input_is_the_output_of_the_lower_blocks(
    tmp_path: Path, encoder_path: str, n_top: int
) -> None:
    paths = _wavs(tmp_path, (0.8, 1.9))
    cfg = EmbeddingConfig(encoder_path, stats=top_input_stats(n_top))
    res = extract_embeddings(paths, cfg, cache_dir=tmp_path / "cache", progress=False)
    enc = load_encoder(encoder_path)
    for p, x in zip(paths, res.X, strict=True):
        y = load_clip(p)  # decoded and preprocessed as extraction does
        with torch.no_grad():
            layers = enc(torch.from_numpy(log_mel_spectrogram(y))[None], return_layers=True)
        want = layers[3 - n_top][0].numpy()  # 3 blocks: the input of the top n_top
        assert x.dtype == np.float16 and x.shape == want.shape  # 50 frames per second
        np.testing.assert_allclose(x.astype(np.float32), want, rtol=2e-3, atol=2e-3)
    assert res.X[1].shape[0] > 2 * res.X[0].shape[0]
    again = extract_embeddings(paths, cfg, cache_dir=tmp_path / "cache", progress=False)
    assert again.n_cached == 2
    for a, b in zip(again.X, res.X, strict=True):
        np.testing.assert_array_equal(a, b)


def test_too_many_blocks_is_an_error_per_clip(tmp_path: Path, encoder_path: str) -> None:
    paths = _wavs(tmp_path, (0.8,))
    res = extract_embeddings(
        paths, EmbeddingConfig(encoder_path, stats=top_input_stats(4)), progress=False
    )
    assert not res.ok.any() and "cannot fine-tune 4 blocks" in res.errors[0][1]


# ----------------------------------------------------------------------------- the model


@pytest.mark.parametrize("blocks", [1, 2])
def test_untrained_model_reproduces_the_frozen_encoder(
    tmp_path: Path, encoder_path: str, blocks: int
) -> None:
    """Copied blocks + ln_post on the cached input give the encoder's own final output."""
    paths = _wavs(tmp_path, (1.3,))
    X = extract_embeddings(
        paths, EmbeddingConfig(encoder_path, stats=top_input_stats(blocks)), progress=False
    ).X
    head = FinetuneHead(encoder=encoder_path, blocks=blocks, epochs=0).fit(
        np.concatenate([X, X]), ["a", "b"]
    )
    y = load_clip(paths[0])
    with torch.no_grad():
        want = load_encoder(encoder_path)(torch.from_numpy(log_mel_spectrogram(y))[None])
        x = torch.from_numpy(X[0].astype(np.float32))[None]
        got = head.net_.encode(x, torch.ones(x.shape[:2], dtype=torch.bool))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-2, atol=1e-2)
    assert not np.allclose(got.numpy(), x.numpy(), atol=0.1)  # the blocks did something


def test_blocks_start_pretrained_change_with_training_and_leave_the_encoder(
    encoder_path: str,
) -> None:
    enc = load_encoder(encoder_path)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    X, y = _signal_frames(30, 0)
    start = FinetuneHead(encoder=encoder_path, epochs=0).fit(X, y).net_
    for k, v in start.blocks[0].state_dict().items():
        assert torch.equal(v, enc.blocks[-1].state_dict()[k]), k
    for k, v in start.ln_post.state_dict().items():
        assert torch.equal(v, enc.ln_post.state_dict()[k]), k
    trained = FinetuneHead(encoder=encoder_path, epochs=3, block_lr=1e-3).fit(X, y).net_
    changed = [
        k
        for k, v in trained.blocks[0].state_dict().items()
        if not torch.allclose(v, enc.blocks[-1].state_dict()[k])
    ]
    assert "attn.query.weight" in changed and "mlp.0.weight" in changed
    for k, v in enc.state_dict().items():  # the (shared, cached) encoder is untouched
        assert torch.equal(v, before[k]), k


def test_block_learning_rate_zero_keeps_the_blocks(encoder_path: str) -> None:
    X, y = _signal_frames(30, 0)
    enc = load_encoder(encoder_path)
    net = FinetuneHead(encoder=encoder_path, epochs=2, block_lr=0.0, weight_decay=0.0).fit(X, y)
    for k, v in net.net_.blocks[0].state_dict().items():
        assert torch.equal(v, enc.blocks[-1].state_dict()[k]), k


def test_training_lowers_the_loss_and_learns(encoder_path: str) -> None:
    X, y = _signal_frames(150, 0)
    Xt, yt = _signal_frames(60, 1)
    head = FinetuneHead(encoder=encoder_path, epochs=6, lr=3e-3, block_lr=1e-3, threads=1)
    head.fit(X, y)
    assert len(head.loss_curve_) == 6
    assert head.loss_curve_[-1] < 0.5 * head.loss_curve_[0]
    assert (head.predict(Xt) == yt).mean() > 0.8
    p = head.predict_proba(Xt)
    assert p.shape == (60, 3) and np.allclose(p.sum(1), 1)
    assert set(head.classes_) == {"a", "b", "c"}


def test_padding_is_masked_and_lengths_vary(encoder_path: str) -> None:
    X, y = _signal_frames(24, 0)
    for opts in ({"norm": False}, {"pool": "attentive"}, {"skip": True}):
        head = FinetuneHead(encoder=encoder_path, epochs=1, batch_size=8, **opts).fit(X, y)
        assert head.net_.out.in_features == (4 if opts.get("skip") else 2) * DIM
        together = head.predict_proba(X)  # batches of mixed lengths, padded
        alone = np.vstack([head.predict_proba(X[i : i + 1]) for i in range(len(X))])
        np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("skip", [False, True])
def test_clips_longer_than_the_context_run_in_pieces(skip: bool) -> None:
    enc = small_encoder(n_ctx=50)
    X, y = _signal_frames(12, 0)
    head = FinetuneHead(encoder=enc, epochs=1, skip=skip, norm=skip).fit(X, y)
    rng = np.random.default_rng(5)
    long = rng.standard_normal((120, DIM)).astype(np.float16)
    got = head.predict_proba([long, X[0]])
    with torch.no_grad():
        pieces = []
        for s in (0, 50, 100):
            x = torch.from_numpy(long[s : s + 50].astype(np.float32))[None]
            pieces.append(head.net_.encode(x, torch.ones(x.shape[:2], dtype=torch.bool)))
        h = torch.cat(pieces, 1)
        x = torch.from_numpy(long.astype(np.float32))[None]
        want = torch.softmax(head.net_.classify(h, torch.ones(1, 120, dtype=torch.bool), x), 1)
    np.testing.assert_allclose(got[0], want[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(got[1], head.predict_proba(X[:1])[0], atol=1e-6)


def test_a_last_batch_of_one_clip_trains(encoder_path: str) -> None:
    X, y = _signal_frames(17, 0)  # 16 + 1: batch normalisation cannot train on one clip
    head = FinetuneHead(encoder=encoder_path, epochs=1, batch_size=16).fit(X, y)
    assert len(head.loss_curve_) == 1 and np.isfinite(head.loss_curve_[0])


def test_schedule_counts_the_batches_that_run() -> None:
    from emovox.models.sequences import batch_bounds

    assert batch_bounds(17, 16, join_single=True) == [(0, 17)]  # the one-clip rest joins
    assert batch_bounds(18, 16, join_single=True) == [(0, 16), (16, 18)]
    assert batch_bounds(1, 16, join_single=True) == [(0, 1)]
    assert sum(b - a for a, b in batch_bounds(1000, 7, join_single=True)) == 1000
    assert batch_bounds(17, 16) == [(0, 16), (16, 17)]  # the attentive head keeps it apart


def test_batches_of_one_need_norm_off(encoder_path: str) -> None:
    X, y = _signal_frames(6, 0)
    with pytest.raises(ValueError, match="batch_size must be at least 2"):
        FinetuneHead(encoder=encoder_path, epochs=1, batch_size=1).fit(X, y)
    head = FinetuneHead(encoder=encoder_path, epochs=1, batch_size=1, norm=False).fit(X, y)
    assert np.isfinite(head.loss_curve_[0])


def test_same_seed_same_model_other_seed_other_model(encoder_path: str) -> None:
    X, y = _signal_frames(40, 0)
    Xt, _ = _signal_frames(10, 1)
    a = FinetuneHead(encoder=encoder_path, epochs=2).fit(X, y).predict_proba(Xt)
    b = FinetuneHead(encoder=encoder_path, epochs=2).fit(X, y).predict_proba(Xt)
    c = FinetuneHead(encoder=encoder_path, epochs=2, seed=1).fit(X, y).predict_proba(Xt)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_time_masks_hide_short_spans() -> None:
    head = FinetuneHead(time_masks=2, time_mask_width=10)
    rng = np.random.default_rng(0)
    hidden = [int((~head._mask_spans(100, rng)).sum()) for _ in range(200)]
    assert max(hidden) <= 20 and np.mean(hidden) > 3
    assert (~FinetuneHead(time_masks=0)._mask_spans(100, rng)).sum() == 0
    assert head._mask_spans(3, rng).all()  # too short to mask


def test_random_crops_in_training_only(encoder_path: str) -> None:
    head = FinetuneHead(encoder=encoder_path, max_frames=30)
    rng = np.random.default_rng(0)
    x = np.arange(100, dtype=np.float16)[:, None] * np.ones((1, DIM), np.float16)
    crops = [head._crop(x, rng) for _ in range(20)]
    assert all(c.shape == (30, DIM) for c in crops)
    assert len({float(c[0, 0]) for c in crops}) > 5
    assert head._crop(x[:20], rng).shape == (20, DIM)


def test_bad_input_and_settings(encoder_path: str) -> None:
    X, y = _signal_frames(6, 0)
    with pytest.raises(ValueError, match=r"\(T, D\) array"):
        FinetuneHead(encoder=encoder_path).fit(np.zeros((4, 3, 10, DIM)), list("abab"))
    with pytest.raises(ValueError, match="labels"):
        FinetuneHead(encoder=encoder_path).fit(X, y[:3])
    with pytest.raises(RuntimeError, match="not fitted"):
        FinetuneHead(encoder=encoder_path).predict(X)
    with pytest.raises(ValueError, match="between 1 and 3"):
        FinetuneHead(encoder=encoder_path, blocks=4).fit(X, y)
    with pytest.raises(ValueError, match="another encoder"):
        FinetuneHead(encoder=encoder_path).fit([x[:, :16] for x in X], y)
    with pytest.raises(ValueError, match="unknown parameter"):
        make_model("finetune", lr_head=1.0)
    assert make_model("finetune", blocks=2, epochs=3).get_params()["blocks"] == 2
    off = FinetuneHead(encoder=encoder_path, epochs=0, norm="false").fit(X, y)  # --param text
    assert isinstance(off.net_.norm, torch.nn.Identity)
    with pytest.raises(ValueError, match="yes/no"):
        FinetuneHead(encoder=encoder_path, epochs=0, skip="maybe").fit(X, y)


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_finetune_end_to_end(
    ravdess_tree: Path, encoder_path: str, tmp_path: Path
) -> None:
    res = CliRunner().invoke(
        app,
        [
            "evaluate", "--model", "finetune", "--features", f"whisper:{encoder_path}",
            "--root", str(ravdess_tree), "--k", "3", "--param", "epochs=2",
            "--param", "blocks=2", "--train-view", "speed:0.9",
            "--out", str(tmp_path / "runs"), "--name", "ft", "--json",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    run = tmp_path / "runs" / "ft"
    assert (run / "metrics.json").is_file() and (run / "predictions.csv").is_file()
    cfg = ExperimentConfig(
        model="finetune",
        roots=[str(ravdess_tree)],
        k=3,
        features=f"whisper:{encoder_path}",
        params={"epochs": 2, "blocks": 2},
        train_views=["speed:0.9"],
    )
    data = load_dataset(cfg, progress=False)
    assert data.X.dtype == object and data.X[0].ndim == 2 and data.X[0].shape[1] == DIM
    Xv, okv = data.views["speed:0.9"]
    assert okv.all() and Xv[0].shape[0] != data.X[0].shape[0]  # a slower copy: more frames
    m = evaluate(data, cfg, write=False).metrics
    assert m["n"] == len(data.clips) and m["folds"] == 3 and m["train_views"] == ["speed:0.9"]
    assert 0.0 <= m["ua"] <= 1.0
    bad = CliRunner().invoke(
        app,
        [
            "evaluate", "--model", "finetune", "--features", f"whisper:{encoder_path}",
            "--root", str(ravdess_tree), "--k", "3", "--param", "encoder=tiny.en",
        ],
    )  # fmt: skip
    assert bad.exit_code == 2 and "change --features" in bad.output


def test_finetune_needs_encoder_features(ravdess_tree: Path) -> None:
    cfg = ExperimentConfig(model="finetune", roots=[str(ravdess_tree)], features="mfcc")
    with pytest.raises(ValueError, match="encoder frames"):
        load_dataset(cfg, progress=False)


def test_shipped_finetune_config_loads() -> None:
    root = Path(__file__).resolve().parents[1]
    cfg = load_experiment_config(root / "configs" / "whisper-finetune-ravdess.toml")
    assert cfg.model == "finetune" and cfg.protocol == "speaker-kfold" and cfg.k == 6
    params = model_params(cfg)
    assert params["encoder"] == "tiny.en"
    head = make_model(cfg.model, **params)
    assert head.get_params()["blocks"] == int(params.get("blocks", 1))
    # the measured recipe of docs/whisper.md (RAVDESS row of the tiny.en-finetune column)
    assert params == {"blocks": 1, "norm": True, "epochs": 6, "encoder": "tiny.en"}
