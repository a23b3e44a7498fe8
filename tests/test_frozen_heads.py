"""Frozen-encoder heads: training views (augmented embeddings of training clips only), frame
embeddings, the attentive head, and evaluation configs read from TOML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from conftest import emotional_tone  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from emovox.cli import app  # noqa: E402
from emovox.data.manifest import Clip  # noqa: E402
from emovox.encoders import WhisperDims, WhisperEncoder, export_encoder  # noqa: E402
from emovox.evaluation.experiment import (  # noqa: E402
    Dataset,
    ExperimentConfig,
    evaluate,
    load_dataset,
    load_experiment_config,
    training_rows,
)
from emovox.features.embeddings import (  # noqa: E402
    FRAMES,
    EmbeddingConfig,
    apply_view,
    check_view,
    extract_embeddings,
)
from emovox.models import make_model  # noqa: E402
from emovox.models.attentive import AttentiveHead  # noqa: E402

SR = 16_000


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def encoder_path(tmp_path: Path) -> str:
    torch.manual_seed(0)
    enc = WhisperEncoder.from_dims(
        WhisperDims(n_mels=80, n_ctx=1500, n_state=32, n_head=2, n_layer=2)
    )
    return str(export_encoder(enc.eval(), tmp_path / "enc.safetensors"))


# ----------------------------------------------------------------------------- views


def test_views_are_validated_with_a_clear_message() -> None:
    assert check_view(" speed:0.9 ") == "speed:0.9"
    for bad in ("speed:5", "speed", "pitch:x", "noise:rain:10", "echo:1", ""):
        with pytest.raises(ValueError, match="training view"):
            check_view(bad)
    with pytest.raises(ValueError, match="training view"):
        EmbeddingConfig(view="speed:9")


def test_views_are_deterministic_and_do_what_they_say() -> None:
    y = emotional_tone(1, 1, 1)
    slow = apply_view(y, "speed:0.9", "abc")
    assert abs(len(slow) - len(y) / 0.9) < 5
    a = apply_view(y, "noise:white:10", "clip-a")
    assert np.array_equal(a, apply_view(y, "noise:white:10", "clip-a"))
    assert not np.array_equal(a, apply_view(y, "noise:white:10", "clip-b"))
    snr = 10 * np.log10(np.mean(y**2) / np.mean((a - y) ** 2))
    assert 9 < snr < 11
    assert len(apply_view(y, "pitch:2", "x")) == len(y)


def test_view_changes_the_cache_key_but_the_plain_key_is_stable() -> None:
    plain = EmbeddingConfig("tiny.en")
    assert plain.key() == EmbeddingConfig("tiny.en", view="").key()
    assert plain.key() != EmbeddingConfig("tiny.en", view="speed:0.9").key()
    assert EmbeddingConfig(view="speed:0.9").key() != EmbeddingConfig(view="speed:1.1").key()


def _dataset(n: int, views: int) -> Dataset:
    clips = [
        Clip(
            id=f"c{i}",
            path=f"/x/c{i}.wav",
            corpus="ravdess",
            speaker=f"s{i % 4}",
            emotion=("happy", "sad")[i % 2],
            label="x",
        )
        for i in range(n)
    ]
    X = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    vs = {}
    for v in range(views):
        ok = np.ones(n, bool)
        ok[1] = False  # one view failed for clip 1: that row must not appear
        vs[f"speed:{0.9 + 0.2 * v}"] = (X + 1000 * (v + 1), ok)
    return Dataset(clips, X, [None] * n, ("happy", "sad"), [], {}, [], views=vs)


def test_training_rows_take_views_of_training_clips_only() -> None:
    data = _dataset(12, views=2)
    train = np.array([0, 1, 2, 3, 4, 5])
    speakers = np.array(data.column("speaker"), dtype=object)
    X, y, g = training_rows(data, train, speakers)
    ids = sorted({int(v) % 1000 for v in X[:, 0]})
    assert ids == train.tolist()  # no test clip (6..11), not even as a view
    assert len(X) == 6 + 2 * 5  # clip 1's views failed and are left out
    assert y.tolist() == [data.clips[int(v) % 1000].emotion for v in X[:, 0]]
    assert g.tolist() == [data.clips[int(v) % 1000].speaker for v in X[:, 0]]


# ----------------------------------------------------------------------------- frames


def test_frame_embeddings_keep_time_and_are_cached(tmp_path: Path, encoder_path: str) -> None:
    paths = []
    for i, sec in enumerate((0.8, 1.6)):
        p = tmp_path / f"c{i}.wav"
        y = np.concatenate([emotional_tone(i, 1, 1)] * int(np.ceil(sec / 0.7)))[: int(sec * SR)]
        sf.write(p, y, SR)
        paths.append(str(p))
    cfg = EmbeddingConfig(encoder_path, stats=FRAMES)
    res = extract_embeddings(paths, cfg, cache_dir=tmp_path / "cache", progress=False)
    assert res.X.dtype == object and len(res.X) == 2
    a, b = res.X
    assert a.dtype == np.float16 and a.shape[0] == 3 and a.shape[2] == 32
    assert b.shape[1] > 1.6 * a.shape[1]  # longer clip, more frames (25 per second)
    again = extract_embeddings(paths, cfg, cache_dir=tmp_path / "cache", progress=False)
    assert again.n_cached == 2
    np.testing.assert_array_equal(again.X[1], b)
    pooled = extract_embeddings(paths, EmbeddingConfig(encoder_path), progress=False).X
    np.testing.assert_allclose(
        b.astype(np.float32).mean(1).ravel(), pooled[1].reshape(3, 2, 32)[:, 0].ravel(), atol=0.05
    )


# ----------------------------------------------------------------------------- attentive


def _frames(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes told apart by one unit of layer 2 in the first half of each clip."""
    rng = np.random.default_rng(seed)
    X = np.empty(n, dtype=object)
    y = []
    for i in range(n):
        c, t = i % 3, int(rng.integers(15, 60))
        x = rng.standard_normal((4, t, 16)).astype(np.float16)
        x[2, : t // 2, c] += 2.0
        X[i], _ = x, y.append("abc"[c])
    return X, np.array(y)


def test_attentive_head_learns_and_finds_the_informative_layer() -> None:
    X, y = _frames(240, 0)
    Xt, yt = _frames(90, 1)
    head = AttentiveHead(epochs=25, lr=1e-2, threads=1).fit(X, y)
    assert head.loss_curve_[-1] < 0.5 * head.loss_curve_[0]
    assert (head.predict(Xt) == yt).mean() > 0.8
    assert int(np.argmax(head.layer_weights_)) == 2
    p = head.predict_proba(Xt)
    assert p.shape == (90, 3) and np.allclose(p.sum(1), 1)
    again = AttentiveHead(epochs=25, lr=1e-2, threads=1).fit(X, y)  # same seed, same model
    np.testing.assert_allclose(again.predict_proba(Xt), p, atol=1e-6)


def test_attentive_head_rejects_bad_input() -> None:
    head = make_model("attentive")
    with pytest.raises(ValueError, match="frame array"):
        head.fit(np.zeros((4, 10), np.float32), ["a", "b", "a", "b"])
    X, y = _frames(6, 0)
    with pytest.raises(ValueError, match="labels"):
        head.fit(X, y[:3])
    with pytest.raises(RuntimeError, match="not fitted"):
        head.predict(X)
    with pytest.raises(ValueError, match="valid names"):
        make_model("transformer")


# ----------------------------------------------------------------------------- configs / CLI


def test_experiment_config_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "e.toml"
    p.write_text(
        '[experiment]\nmodel = "logreg"\ncorpora = "ravdess"\nk = 6\n'
        'features = "whisper:tiny.en"\ntrain_views = ["speed:0.9"]\n'
    )
    cfg = load_experiment_config(p, k=3, name=None)
    assert (cfg.model, cfg.corpora, cfg.k, cfg.train_views) == (
        "logreg",
        ["ravdess"],
        3,
        ["speed:0.9"],
    )
    (tmp_path / "bad.toml").write_text('[experiment]\nmodle = "svm"\n')
    with pytest.raises(ValueError, match="modle"):
        load_experiment_config(tmp_path / "bad.toml")
    with pytest.raises(ValueError, match="not found"):
        load_experiment_config(tmp_path / "missing.toml")


def test_views_need_encoder_features(ravdess_tree: Path) -> None:
    cfg = ExperimentConfig(
        model="svm", roots=[str(ravdess_tree)], features="mfcc", train_views=["speed:0.9"]
    )
    with pytest.raises(ValueError, match="encoder embeddings"):
        load_dataset(cfg, progress=False)
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--root",
            str(ravdess_tree),
            "--features",
            "mfcc",
            "--train-view",
            "speed:0.9",
        ],
    )
    assert res.exit_code == 2 and "encoder embeddings" in res.output


def test_evaluate_with_views_and_attentive_end_to_end(
    ravdess_tree: Path, encoder_path: str, tmp_path: Path
) -> None:
    conf = tmp_path / "w.toml"
    conf.write_text(
        f'[experiment]\nmodel = "logreg"\nroots = ["{ravdess_tree}"]\nk = 3\n'
        f'features = "whisper:{encoder_path}"\ntrain_views = ["speed:0.9", "noise:pink:20"]\n'
        f'out_dir = "{tmp_path / "runs"}"\nname = "w"\n'
    )
    res = CliRunner().invoke(app, ["evaluate", "--config", str(conf), "--json"])
    assert res.exit_code == 0, res.output
    cfg = load_experiment_config(conf)
    data = load_dataset(cfg, progress=False)
    assert set(data.views) == {"speed:0.9", "noise:pink:20"}
    for X, ok in data.views.values():
        assert X.shape == data.X.shape and ok.all()
        assert not np.allclose(X, data.X)
    m = evaluate(data, cfg, write=False).metrics
    assert m["train_views"] == ["speed:0.9", "noise:pink:20"]
    assert m["train_view_failures"] == {"speed:0.9": 0, "noise:pink:20": 0}
    assert m["n"] == len(data.clips)  # test rows: the original clips only, once each
    att = ExperimentConfig(
        model="attentive", roots=[str(ravdess_tree)], k=3, features=f"whisper:{encoder_path}"
    )
    data = load_dataset(att, progress=False)
    assert data.X.dtype == object and data.X[0].ndim == 3
    m = evaluate(data, att, write=False).metrics
    assert m["n"] == len(data.clips) and 0.0 <= m["ua"] <= 1.0


@pytest.mark.parametrize(
    "name",
    [
        "whisper-ravdess",
        "whisper-crema_d",
        "whisper-four",
        "whisper-stack-ravdess",
        "whisper-stack-crema_d",
        "whisper-stack-four",
    ],
)
def test_shipped_whisper_configs_load(name: str) -> None:
    root = Path(__file__).resolve().parents[1]
    cfg = load_experiment_config(root / "configs" / f"{name}.toml")
    assert cfg.features.startswith("whisper:") and cfg.protocol == "speaker-kfold"
    assert all(check_view(v) == v for v in cfg.train_views)
    make_model(cfg.model, **cfg.params)  # the settings are ones the model takes


def test_sequence_checks_name_the_clip_and_the_problem():
    from emovox.models.sequences import check_sequences

    kw = dict(ndim=3, time_axis=1, expected="an (n_layers, T, D) frame array", hint="see docs")
    ok = [np.zeros((2, 5, 4)), np.zeros((2, 9, 4))]  # lengths may differ
    assert len(check_sequences(ok, **kw)) == 2
    with pytest.raises(ValueError, match="no clips"):
        check_sequences([], **kw)
    with pytest.raises(ValueError, match=r"clip 1: expected an \(n_layers, T, D\).*T > 0"):
        check_sequences([ok[0], np.zeros((2, 0, 4))], **kw)
    with pytest.raises(ValueError, match=r"clip 1: sizes \(2, 3\)"):
        check_sequences([ok[0], np.zeros((2, 5, 3))], **kw)
    with pytest.raises(ValueError, match="clip 0: expected"):
        check_sequences(["not an array"], **kw)


def test_sequence_heads_share_labels_batches_and_class_weights():
    from emovox.models.sequences import encode_labels, length_bucketed_batches
    from emovox.models.torch_utils import balanced_cross_entropy

    classes, yi = encode_labels(["b", "a", "b", "b"], 4)
    assert list(classes) == ["a", "b"] and list(yi) == [1, 0, 1, 1]
    with pytest.raises(ValueError, match="3 clips but 4 labels"):
        encode_labels(list("abab"), 3)
    with pytest.raises(ValueError, match="two classes"):
        encode_labels(list("aaa"), 3)
    lengths = np.array([50, 10, 30, 20, 40])
    batches = length_bucketed_batches(lengths, [(0, 2), (2, 5)], 0.5, np.random.default_rng(0))
    assert [list(b) for b in batches] == [[1, 3], [2, 4, 0]]  # shortest first, then cut
    weight = balanced_cross_entropy(yi, 2).weight.numpy()
    np.testing.assert_allclose(weight, [4 / (2 * 1), 4 / (2 * 3)])  # n / (k * n_class)
