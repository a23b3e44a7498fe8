"""Per-speaker / per-corpus feature standardisation (emovox.evaluation.adaptation, --adapt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.data.manifest import Clip
from emovox.evaluation.adaptation import standardize_by_group
from emovox.evaluation.experiment import Dataset, ExperimentConfig, adapt_features, evaluate


def test_each_group_gets_zero_mean_unit_variance() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 4)) * [1, 5, 0.1, 2] + [0, 10, -3, 7]
    X[:, 3] = 7.0  # a constant feature stays finite
    g = np.repeat(["a", "b", "c"], 30)
    Z = standardize_by_group(X, g)
    assert np.isfinite(Z).all()
    for k in "abc":
        np.testing.assert_allclose(Z[g == k, :3].mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(Z[g == k, :3].std(0), 1, atol=1e-4)
    one = standardize_by_group(np.array([[2.0, 3.0]]), ["solo"])
    np.testing.assert_allclose(one, 0)
    with pytest.raises(ValueError, match="one group per row"):
        standardize_by_group(X, g[:10])


def _voices(n_speakers: int = 8, per: int = 24, seed: int = 0) -> Dataset:
    """Each speaker has a large voice offset; the emotion shifts features a little."""
    rng = np.random.default_rng(seed)
    clips, rows = [], []
    for s in range(n_speakers):
        voice = rng.standard_normal(6) * 4
        for i in range(per):
            emo = ("happy", "sad")[i % 2]
            x = voice + rng.standard_normal(6) * 0.5 + (0.8 if emo == "happy" else -0.8)
            rows.append(x)
            clips.append(Clip(f"c{s}-{i}", "x", f"/c{s}-{i}.wav", emo, emo, f"spk{s}"))
    return Dataset(
        clips, np.array(rows, np.float32), [None] * len(clips), ("happy", "sad"), [], {}, []
    )


def test_speaker_adaptation_removes_the_voice_and_is_reported() -> None:
    data = _voices()
    base = ExperimentConfig(model="lda", k=4)
    plain = evaluate(data, base, write=False).metrics
    adapted_cfg = ExperimentConfig(model="lda", k=4, adapt="speaker")
    adapted = evaluate(data, adapted_cfg, write=False).metrics
    assert adapted["ua"] > plain["ua"] + 0.05
    assert adapted["adapt"] == "speaker" and plain["adapt"] == "none"
    assert adapted["leakage"]["shared_speakers"] == 0  # still speaker-disjoint folds
    assert adapt_features(data, "none") is data
    with pytest.raises(ValueError, match="adapt must be one of"):
        adapt_features(data, "session")


def test_cli_adapt_prints_what_it_assumes(ravdess_tree: Path, tmp_path: Path) -> None:
    args = ["evaluate", "--root", str(ravdess_tree), "--features", "mfcc", "--model", "lda"]
    res = CliRunner().invoke(app, [*args, "--adapt", "speaker", "--out", str(tmp_path), "--k", "3"])
    assert res.exit_code == 0, res.output
    assert "ADAPTED per speaker" in res.output
    summary = next(tmp_path.glob("*/summary.md")).read_text()
    assert "ADAPTED per speaker" in summary
