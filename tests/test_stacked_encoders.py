"""Several frozen encoders side by side (``whisper:a+b``): parsing, clip alignment, and an
evaluation run on stacked features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emovox.encoders import WhisperDims, WhisperEncoder, export_encoder  # noqa: E402
from emovox.evaluation.experiment import ExperimentConfig, evaluate, load_dataset  # noqa: E402
from emovox.features.embeddings import encoder_names, stack_results  # noqa: E402
from emovox.features.extract import ExtractResult  # noqa: E402


def _result(ok: list[bool], d: int, fill: float, why: str = "bad") -> ExtractResult:
    ok_a = np.array(ok)
    n_ok = int(ok_a.sum())
    X = np.full((n_ok, d), fill, dtype=np.float32) + np.arange(n_ok, dtype=np.float32)[:, None]
    paths = [f"clip{i}.wav" for i in range(len(ok))]
    errors = [(paths[i], why) for i in np.flatnonzero(~ok_a)]
    return ExtractResult(
        X, ok_a, ["h"] * len(ok), np.ones(len(ok)), errors, [f"f{j}" for j in range(d)]
    )


def test_encoder_names_parse_and_reject_bad_specs(tmp_path: Path) -> None:
    assert encoder_names("whisper:tiny.en") == ["tiny.en"]
    assert encoder_names("whisper:tiny.en+base") == ["tiny.en", "base"]
    odd = tmp_path / "model+v2"
    odd.mkdir()
    assert encoder_names(f"whisper:{odd}") == [str(odd)]  # an existing path is one encoder
    with pytest.raises(ValueError, match="empty encoder"):
        encoder_names("whisper:tiny.en+")
    with pytest.raises(ValueError, match="twice"):
        encoder_names("whisper:base+base")


def test_stack_results_aligns_clips_and_keeps_every_failure() -> None:
    a = _result([True, True, False, True], 2, 10.0, "a failed")
    b = _result([True, False, True, True], 3, 100.0, "b failed")
    s = stack_results([a, b], ["a", "b"])
    assert s.ok.tolist() == [True, False, False, True]
    assert s.X.shape == (2, 5)
    # clip 0 is row 0 of both; clip 3 is row 2 of a and row 2 of b
    assert s.X[0].tolist() == [10.0, 10.0, 100.0, 100.0, 100.0]
    assert s.X[1].tolist() == [12.0, 12.0, 102.0, 102.0, 102.0]
    assert dict(s.errors) == {"clip2.wav": "a failed", "clip1.wav": "b failed"}
    assert s.names[:2] == ["a/f0", "a/f1"] and s.names[2] == "b/f0"
    with pytest.raises(ValueError, match="different numbers"):
        stack_results([a, _result([True], 1, 0.0)], ["a", "b"])


@pytest.fixture
def two_encoders(tmp_path: Path) -> tuple[str, str]:
    out = []
    for i, (state, layers) in enumerate([(32, 2), (48, 1)]):
        torch.manual_seed(i)
        enc = WhisperEncoder.from_dims(
            WhisperDims(n_mels=80, n_ctx=1500, n_state=state, n_head=2, n_layer=layers)
        )
        out.append(str(export_encoder(enc.eval(), tmp_path / f"enc{i}.safetensors")))
    return out[0], out[1]


@pytest.fixture
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.usefixtures("_one_thread")
def test_evaluate_on_stacked_encoders(ravdess_tree: Path, two_encoders: tuple[str, str]) -> None:
    a, b = two_encoders
    base = dict(model="logreg", roots=[str(ravdess_tree)], k=3)
    da = load_dataset(ExperimentConfig(**base, features=f"whisper:{a}"), progress=False)
    db = load_dataset(ExperimentConfig(**base, features=f"whisper:{b}"), progress=False)
    cfg = ExperimentConfig(**base, features=f"whisper:{a}+{b}", train_views=["speed:0.9"])
    both = load_dataset(cfg, progress=False)
    assert both.X.shape == (len(da.clips), da.X.shape[1] + db.X.shape[1])
    assert np.allclose(both.X, np.hstack([da.X, db.X]))
    Xv, okv = both.views["speed:0.9"]
    assert Xv.shape == both.X.shape and okv.all() and not np.allclose(Xv, both.X)
    m = evaluate(both, cfg, write=False).metrics
    assert m["n"] == len(both.clips) and 0.0 <= m["ua"] <= 1.0
    with pytest.raises(ValueError, match="one encoder's frames"):
        load_dataset(
            ExperimentConfig(**(base | {"model": "attentive"}), features=f"whisper:{a}+{b}"),
            progress=False,
        )


def test_model_settings_from_cli_and_config(ravdess_tree: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from emovox.cli import app

    conf = tmp_path / "c.toml"
    conf.write_text(
        f'[experiment]\nmodel = "logreg"\nroots = ["{ravdess_tree}"]\nk = 3\nfeatures = "mfcc"\n'
        f'params = {{ C = 0.5, max_iter = 50 }}\nout_dir = "{tmp_path}"\nname = "p"\n'
    )
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--config", str(conf), "--param", "C=0.02", "--json"])
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "p" / "config.json").read_text())
    assert saved["params"] == {"C": 0.02, "max_iter": 50}  # the command line wins
    res = runner.invoke(app, ["evaluate", "--config", str(conf), "--param", "C"])
    assert res.exit_code == 2 and "NAME=VALUE" in res.output
    res = runner.invoke(app, ["evaluate", "--config", str(conf), "--param", "nonsense=1"])
    assert res.exit_code == 2 and "nonsense" in res.output
