"""``emovox train`` end to end on a tiny synthetic RAVDESS tree (fast: tiny CNN, 2 epochs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.evaluation.deep_experiment import ConfigError, load_config, train_and_evaluate

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]

TINY = """
[experiment]
name = "tiny"
model = "cnn"
corpora = ["ravdess"]
labels = "auto"
protocol = "{protocol}"
k = 3
folds = 2
seed = 0
n_jobs = 1
{extra}

[model]
width = 8

[train]
epochs = 2
batch_size = 8
lr = 3e-3
crop_seconds = 0.5
eval_window = 0.5
eval_hop = 0.25
n_mels = 32
patience = 0
threads = 1

[augment]
p_reverb = 0.0
p_pitch = 0.0
"""


def write_config(tmp_path: Path, protocol: str = "speaker-kfold", extra: str = "") -> Path:
    path = tmp_path / f"tiny-{protocol}-{abs(hash(extra))}.toml"
    path.write_text(TINY.format(protocol=protocol, extra=extra))
    return path


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def train_args(cfg: Path, tree: Path, out: Path, *more: str) -> list[str]:
    return ["train", "--config", str(cfg), "--root", str(tree), "--out", str(out), *more]


def test_train_honest_writes_reports_and_resume_reuses_folds(ravdess_tree, tmp_path):
    cfg, out = write_config(tmp_path), tmp_path / "runs"
    res = runner.invoke(app, train_args(cfg, ravdess_tree, out, "--json"))
    assert res.exit_code == 0, res.output
    m = last_json(res.stdout)
    assert m["protocol"] == "speaker-kfold" and m["leaky"] is False
    assert m["leakage"]["shared_speakers"] == 0 and m["leakage"]["identical_audio"] == 0
    assert m["folds"] == 2 and m["folds_total"] == 3 and len(m["fold_ua"]) == 2
    assert {"wa", "ua", "macro_f1", "per_class", "confusion", "labels", "skipped"} <= set(m)
    assert {"excluded", "model", "corpora", "wall_s"} <= set(m)
    assert m["n"] == 32  # two of the three speaker folds hold 2 x 16 test clips
    run = out / "tiny-speaker-kfold"
    for name in ("metrics.json", "predictions.csv", "confusion.png", "summary.md", "config.json"):
        assert (run / name).exists(), name
    folds = sorted(p for p in run.iterdir() if p.is_dir())
    assert [p.name for p in folds] == ["fold1", "fold2"]
    for d in folds:
        for name in ("model.safetensors", "model.json", "curves.png", "fold_result.json"):
            assert (d / name).exists(), f"{d.name}/{name}"
    header = (run / "predictions.csv").read_text().splitlines()[0]
    assert header.startswith("id,corpus,speaker,fold,true,pred,path")

    stamps = {d.name: (d / "fold_result.json").stat().st_mtime_ns for d in folds}
    weights = {d.name: (d / "model.safetensors").stat().st_mtime_ns for d in folds}
    res = runner.invoke(app, train_args(cfg, ravdess_tree, out, "--resume", "--json"))
    assert res.exit_code == 0, res.output
    assert res.output.count("already done") == 2
    again = last_json(res.stdout)
    assert again["fold_ua"] == m["fold_ua"] and again["ua"] == m["ua"]
    assert stamps == {d.name: (d / "fold_result.json").stat().st_mtime_ns for d in folds}
    assert weights == {d.name: (d / "model.safetensors").stat().st_mtime_ns for d in folds}


def test_random_protocol_is_leaky(ravdess_tree, tmp_path):
    cfg = write_config(tmp_path)
    out = tmp_path / "runs"
    res = runner.invoke(
        app, train_args(cfg, ravdess_tree, out, "--protocol", "random", "--folds", "1", "--json")
    )
    assert res.exit_code == 0, res.output
    m = last_json(res.stdout)
    assert m["leaky"] is True and m["protocol"] == "random" and m["folds"] == 1
    assert m["leakage"]["shared_speakers"] > 0
    assert "LEAKY" in res.output
    assert "LEAKY" in (out / "tiny-random" / "summary.md").read_text()


def test_paper_augment_first_only_with_random(ravdess_tree, tmp_path):
    extra = "paper_augment_first = true\ncopies = 1"
    cfg = write_config(tmp_path, "speaker-kfold", extra)
    res = runner.invoke(app, train_args(cfg, ravdess_tree, tmp_path / "runs"))
    assert res.exit_code == 2
    msg = " ".join(res.output.split())
    assert "paper_augment_first" in msg and "random" in msg and str(cfg.name) in msg

    cfg = write_config(tmp_path, "random", extra)
    res = runner.invoke(
        app, train_args(cfg, ravdess_tree, tmp_path / "runs", "--folds", "1", "--json")
    )
    assert res.exit_code == 0, res.output
    m = last_json(res.stdout)
    assert m["leaky"] is True and m["paper_augment_first"] is True
    assert m["leakage"]["identical_audio"] > 0  # copies of one recording on both sides
    assert m["fold_details"][0]["n_train"] + m["fold_details"][0]["n_val"] + m["n"] == 96


def test_unknown_config_key_is_a_clear_error(ravdess_tree, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(TINY.format(protocol="speaker-kfold", extra="").replace("lr =", "learn_rate ="))
    res = runner.invoke(app, train_args(cfg, ravdess_tree, tmp_path / "runs"))
    assert res.exit_code == 2
    msg = " ".join(res.output.split())
    assert "learn_rate" in msg and "[train]" in msg and "bad.toml" in msg

    with pytest.raises(ConfigError, match=r"unknown section \[optim\]"):
        bad = tmp_path / "bad2.toml"
        bad.write_text("[experiment]\nmodel = 'cnn'\n[optim]\nlr = 1\n")
        load_config(bad)
    with pytest.raises(ConfigError, match="'depth'.*\\[model\\]"):
        bad.write_text("[experiment]\nmodel = 'cnn'\n[model]\ndepth = 3\n")
        load_config(bad)
    with pytest.raises(ConfigError, match="epochs .* must be a number"):
        bad.write_text("[train]\nepochs = 'ten'\n")
        load_config(bad)


def test_interrupted_fold_resumes_from_its_checkpoint(ravdess_tree, tmp_path):
    cfg = load_config(
        write_config(tmp_path), {"roots": [str(ravdess_tree)], "folds": 1, "epochs": 3}
    )

    def stop_after_first(fold: str, record: dict) -> None:
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(cfg, tmp_path / "runs", progress=False, on_epoch_end=stop_after_first)
    fold_dir = tmp_path / "runs" / "tiny-speaker-kfold" / "fold1"
    assert (fold_dir / "checkpoint.safetensors").exists()
    assert not (fold_dir / "fold_result.json").exists()
    first = json.loads((fold_dir / "history.json").read_text())
    assert len(first) == 1

    epochs: list[int] = []
    m = train_and_evaluate(
        cfg,
        tmp_path / "runs",
        resume=True,
        progress=False,
        on_epoch_end=lambda f, r: epochs.append(r["epoch"]),
    )
    assert epochs == [2, 3]  # epoch 1 came from the checkpoint
    history = json.loads((fold_dir / "history.json").read_text())
    assert len(history) == 3 and history[0] == first[0]
    assert m["fold_details"][0]["epochs_run"] == 3


@pytest.mark.parametrize(
    "name",
    [
        "paper-model1.toml",
        "paper-model2.toml",
        "paper-model2-32mel.toml",
        "paper-model2-12ep.toml",
        "tiny-test.toml",
    ],
)
def test_shipped_configs_parse(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.protocol == "speaker-kfold" and not cfg.leaky
    assert cfg.model in ("cnn", "resnet34")
    assert cfg.run_name() == f"{Path(name).stem}-speaker-kfold"  # configs never share runs


def test_paper_augment_first_needs_a_waveform_augmentation():
    """The paper's augment-first copies come from waveform augmentation; with all of it off
    (as in paper-model2.toml) the copies would be duplicates, so the config is refused."""
    with pytest.raises(ConfigError, match="identical clips"):
        load_config(
            REPO / "configs" / "paper-model2.toml",
            {"protocol": "random", "paper_augment_first": True},
        )
    cfg = load_config(
        REPO / "configs" / "paper-model2-12ep.toml",
        {"protocol": "random", "paper_augment_first": True},
    )
    assert cfg.leaky


def test_model2_config_trains_on_cached_features():
    """The shipped Model 2 recipe augments spectrograms only, so the trainer's cache is used."""
    cfg = load_config(REPO / "configs" / "paper-model2.toml")
    assert cfg.train.feature_cache and not cfg.train.augment.waveform_enabled
    assert cfg.train.augment.enabled and cfg.train.mixup_alpha > 0


def test_model2_config_builds_the_measured_network():
    """The current recipe: 64 bands, deltas as channels, time-only pooling (4 frequency rows
    left for the head); the second recipe keeps plain input and global pooling."""
    import torch

    from emovox.evaluation.deep_experiment import build_net

    cfg = load_config(REPO / "configs" / "paper-model2.toml")
    net = build_net(cfg, 7).eval()
    assert cfg.train.n_mels == 64 and net.deltas and net.pool == "time"
    assert net.fc.in_features == 2 * 256 * 4
    assert net(torch.randn(2, 1, 64, 101)).shape == (2, 7)
    old = build_net(load_config(REPO / "configs" / "paper-model2-32mel.toml"), 7)
    assert old.n_mels == 32 and not old.deltas and old.pool == "global"


def test_validation_speakers_come_per_corpus_from_training_only():
    import numpy as np

    from emovox.evaluation.splits import Fold, with_validation

    # corpus "big": 2 speakers x 100 clips; corpus "small": 10 speakers x 10 clips
    speakers = (
        ["big:1"] * 100 + ["big:2"] * 100 + [f"small:{i}" for i in range(10) for _ in "x" * 10]
    )
    corpora = [s.split(":")[0] for s in speakers]
    test = np.flatnonzero(np.isin(speakers, ["big:2", "small:9"]))
    train = np.setdiff1d(np.arange(len(speakers)), test)
    fold = with_validation(Fold("f", train, test), speakers, 0.15, seed=0, corpora=corpora)
    val_spk = {speakers[i] for i in fold.val}
    assert len(val_spk) == 1 and val_spk <= {f"small:{i}" for i in range(9)}
    assert not set(fold.val) & set(fold.test) and not set(fold.val) & set(fold.train)
    assert set(fold.val) | set(fold.train) == set(train)
    assert {speakers[i] for i in fold.train} >= {"big:1"}


def test_train_cross_corpus_options_reach_the_split(ravdess_tree, tmp_path):
    cfg, out = write_config(tmp_path), tmp_path / "runs"
    args = ["--protocol", "cross-corpus", "--train-corpora", "ravdess", "--test-corpora", "tess"]
    res = runner.invoke(app, train_args(cfg, ravdess_tree, out, *args))
    assert res.exit_code == 2
    assert "tess" in res.output  # the held-out corpus named on the command line is looked for


def test_folds_of_runs_made_before_a_setting_existed_are_reused(ravdess_tree, tmp_path):
    """A fold result written when ``norm`` existed but ``precision`` did not (its digest hashed
    ``norm`` only) is re-used by --resume; the same fold under another precision is not."""
    import hashlib

    from emovox.deep.config import ADDED_DEFAULTS
    from emovox.evaluation.deep_config import RESULT_FREE

    cfg_path, out = write_config(tmp_path), tmp_path / "runs"
    res = runner.invoke(app, train_args(cfg_path, ravdess_tree, out, "--folds", "1"))
    assert res.exit_code == 0, res.output
    cfg = load_config(cfg_path)
    d = {k: v for k, v in cfg.to_dict().items() if k not in RESULT_FREE | {"source"}}
    d["train"] = {
        k: v
        for k, v in d["train"].items()
        if k not in RESULT_FREE and k not in ("precision", "feature_cache")
    }
    assert "norm" in d["train"] and list(ADDED_DEFAULTS) == ["norm", "precision", "feature_cache"]
    legacy = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    assert legacy in cfg.digests()
    result = out / "tiny-speaker-kfold" / "fold1" / "fold_result.json"
    stored = json.loads(result.read_text())
    assert stored["config_digest"] == cfg.digest() != legacy
    result.write_text(json.dumps({**stored, "config_digest": legacy}))
    res = runner.invoke(app, train_args(cfg_path, ravdess_tree, out, "--folds", "1", "--resume"))
    assert res.exit_code == 0, res.output
    assert "already done" in res.output
    res = runner.invoke(
        app,
        train_args(cfg_path, ravdess_tree, out, "--folds", "1", "--resume", "--precision", "bf16"),
    )
    assert res.exit_code != 0 and "other settings" in res.output


def test_train_loco_scores_each_held_out_corpus_beside_chance(ravdess_tree, tmp_path):
    from test_loco import write_folder_corpus

    write_folder_corpus(ravdess_tree / "mine")  # corpus "custom": happy, sad, angry, calm
    cfg = tmp_path / "tiny-loco.toml"
    cfg.write_text(
        TINY.format(protocol="loco", extra="").replace(
            'corpora = ["ravdess"]', 'corpora = ["ravdess", "custom"]'
        )
    )
    res = runner.invoke(app, train_args(cfg, ravdess_tree, tmp_path / "runs", "--json"))
    assert res.exit_code == 0, res.output
    m = json.loads((Path(last_json(res.output)["run_dir"]) / "metrics.json").read_text())
    held = {h["corpus"]: h for h in m["loco"]["held_out"]}
    assert set(held) == {"ravdess", "custom"}
    # each corpus is scored on its own emotions that the other corpus has
    assert set(held["custom"]["labels"]) <= {"happy", "sad", "angry"}
    assert held["custom"]["chance"] == 1 / len(held["custom"]["labels"])
    assert held["ravdess"]["unscored"] > 0  # ravdess neutral: no training clip in "custom"
