"""The classical experiment API, split by concern: settings (experiment_config), data (dataset),
fitting and scoring (experiment), with the whole API still importable from experiment."""

import doctest
import subprocess
import sys
import warnings

import pytest

from emovox.evaluation import dataset, experiment, experiment_config

#: each public name of emovox.evaluation.experiment that lives elsewhere, and its home
HOMES = {
    "ExperimentConfig": experiment_config,
    "load_experiment_config": experiment_config,
    "check_config": experiment_config,
    "LIST_KEYS": experiment_config,
    "Dataset": dataset,
    "NoCorporaError": dataset,
    "load_dataset": dataset,
    "scan": dataset,
    "resolve_labels": dataset,
    "sequence_stats": dataset,
    "excluded_summary": dataset,
}


@pytest.mark.parametrize("name", sorted(HOMES))
def test_experiment_reexports_each_name_from_its_home(name):
    assert getattr(experiment, name) is getattr(HOMES[name], name)
    assert name in experiment.__all__


def test_old_path_gives_the_whole_api():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from emovox.experiment import (  # noqa: F401
            Dataset,
            ExperimentConfig,
            NoCorporaError,
            Result,
            evaluate,
            load_dataset,
            load_experiment_config,
            paper_and_honest,
        )
    assert ExperimentConfig is experiment_config.ExperimentConfig
    assert Dataset is dataset.Dataset and Result is experiment.Result


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("emovox.evaluation.experiment_config", ("dataset", "experiment", "reports")),
        ("emovox.evaluation.dataset", ("experiment", "reports")),
    ],
)
def test_settings_and_data_do_not_import_the_fitting_module(module, absent):
    code = (
        f"import sys, {module}\n"
        f"loaded = [m for m in {absent!r} if 'emovox.evaluation.' + m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout


def test_experiment_config_examples_run():
    assert doctest.testmod(experiment_config).failed == 0


def test_excluded_summary_lists_left_out_emotions():
    data = dataset.Dataset(
        clips=[], X=None, hashes=[], labels=(), skipped=[], excluded={"calm": 2}, problems=[]
    )
    assert dataset.excluded_summary(data) == "calm: 2"
    assert dataset.excluded_summary(dataset.Dataset([], None, [], (), [], {}, [])) == "none"


def test_layers_pick_the_pooled_columns_of_those_layers() -> None:
    from emovox.evaluation.dataset import layer_columns

    names = [f"L{li}_{s}_{j}" for li in range(3) for s in ("mean", "std") for j in range(2)]
    assert layer_columns(names, [0, 2]).tolist() == [0, 1, 2, 3, 8, 9, 10, 11]
    stacked = [f"tiny.en/{n}" for n in names] + [f"base/{n}" for n in names]
    assert len(layer_columns(stacked, [1])) == 8  # layer 1 of each encoder
    with pytest.raises(ValueError, match=r"layers \[5\] are not among the encoder's \(0-2\)"):
        layer_columns(names, [5])


def test_layers_are_checked_on_load(tmp_path) -> None:
    from emovox.evaluation.config import ConfigError
    from emovox.evaluation.experiment_config import load_experiment_config

    cfg = tmp_path / "c.toml"
    cfg.write_text('[experiment]\nmodel = "svm"\nlayers = [0, 1]\n')
    with pytest.raises(ConfigError, match="layers"):
        load_experiment_config(cfg)  # hand-made features have no layers
    cfg.write_text('[experiment]\nmodel = "logreg"\nfeatures = "whisper:tiny.en"\nlayers = 2\n')
    assert load_experiment_config(cfg).layers == [2]


def test_cli_layers_pool_only_those_layers(ravdess_tree, tmp_path) -> None:
    import json

    import torch
    from typer.testing import CliRunner

    from emovox.cli import app
    from emovox.encoders import WhisperDims, WhisperEncoder, export_encoder

    runner = CliRunner()
    base = ["evaluate", "--root", str(ravdess_tree), "--corpus", "ravdess", "--out",
            str(tmp_path / "runs"), "--json", "--model", "logreg"]  # fmt: skip
    res = runner.invoke(app, [*base, "--layers", "0,x"])
    assert res.exit_code != 0 and "--layers takes layer numbers" in res.output
    res = runner.invoke(app, [*base, "--layers", "0,1"])  # hand-made features have no layers
    assert res.exit_code != 0 and "layers pick pooled encoder layers" in res.output
    torch.manual_seed(0)
    enc = WhisperEncoder.from_dims(WhisperDims(n_mels=80, n_ctx=1500, n_state=16, n_head=2,
                                               n_layer=2)).eval()  # fmt: skip
    spec = f"whisper:{export_encoder(enc, tmp_path / 'enc.safetensors')}"
    res = runner.invoke(app, [*base, "--features", spec, "--layers", "2", "--name", "top"])
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "runs" / "top" / "config.json").read_text())
    assert config["layers"] == [2]
    res = runner.invoke(app, [*base, "--features", spec, "--layers", "5"])
    assert res.exit_code != 0 and "layers [5] are not among the encoder's (0-2)" in res.output
