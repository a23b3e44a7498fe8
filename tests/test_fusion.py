"""Late fusion of finished runs (emovox.evaluation.fusion / `emovox fuse`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.evaluation.fusion import FusionError, fuse_runs
from emovox.evaluation.metrics import score
from emovox.evaluation.reports import write_run

LABELS = ("happy", "sad", "angry")


def _run(
    path: Path, proba: np.ndarray, folds: list[str], true: list[str], with_proba: bool = True
) -> Path:
    preds = []
    for i, (p, f, t) in enumerate(zip(proba, folds, true, strict=True)):
        rec = {"id": f"c{i}", "corpus": "x", "speaker": f"s{i % 3}", "fold": f, "true": t}
        rec |= {"pred": LABELS[int(np.argmax(p))], "path": f"/c{i}.wav"}
        if with_proba:
            rec |= {f"p_{lab}": float(v) for lab, v in zip(LABELS, p, strict=True)}
        preds.append(rec)
    m = score(true, [r["pred"] for r in preds], LABELS) | {
        "protocol": "speaker-kfold",
        "leaky": False,
    }
    return write_run(path, {"model": "m"}, m, preds)


def _data(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    true = [LABELS[i % 3] for i in range(n)]
    folds = [f"fold{1 + i % 2}" for i in range(n)]
    return rng, true, folds


def test_fusion_averages_probabilities_and_can_beat_each_run(tmp_path: Path) -> None:
    rng, true, folds = _data(0)
    onehot = np.eye(3)[[LABELS.index(t) for t in true]]
    # two noisy experts whose errors are independent: their mean is better than either
    a = 0.5 * onehot + rng.random((60, 3))
    b = 0.5 * onehot + rng.random((60, 3))
    a, b = a / a.sum(1, keepdims=True), b / b.sum(1, keepdims=True)
    ra, rb = _run(tmp_path / "a", a, folds, true), _run(tmp_path / "b", b, folds, true)
    res = fuse_runs([ra, rb], out_dir=tmp_path / "runs", name="ab")
    expect = [LABELS[k] for k in ((a + b) / 2).argmax(1)]
    assert [r["pred"] for r in res.predictions] == expect
    ua = [score(true, [LABELS[k] for k in x.argmax(1)], LABELS)["ua"] for x in (a, b)]
    assert res.metrics["ua"] >= max(ua) - 1e-9
    assert (res.run_dir / "metrics.json").is_file() and res.metrics["weights"] == [0.5, 0.5]
    only_a = fuse_runs([ra, rb], weights=[1, 0])
    assert only_a.metrics["ua"] == pytest.approx(ua[0])


def test_fusion_refuses_runs_on_different_folds_or_without_probabilities(tmp_path: Path) -> None:
    rng, true, folds = _data(1)
    p = rng.random((60, 3))
    ra = _run(tmp_path / "a", p, folds, true)
    other = ["fold1" if f == "fold2" else "fold2" for f in folds]
    rb = _run(tmp_path / "b", p, other, true)
    with pytest.raises(FusionError, match="different folds"):
        fuse_runs([ra, rb])
    rc = _run(tmp_path / "c", p, folds, true, with_proba=False)
    with pytest.raises(FusionError, match="no class probabilities"):
        fuse_runs([ra, rc])
    with pytest.raises(FusionError, match="at least two"):
        fuse_runs([ra])
    with pytest.raises(FusionError, match="one non-negative weight"):
        fuse_runs([ra, ra], weights=[1.0])
    res = CliRunner().invoke(app, ["fuse", str(ra), str(rb)])
    assert res.exit_code == 2 and "different folds" in res.output
    res = CliRunner().invoke(
        app, ["fuse", str(ra), str(ra), "--out", str(tmp_path / "o"), "--json"]
    )
    assert res.exit_code == 0, res.output


def test_evaluate_writes_probabilities_that_fuse_end_to_end(ravdess_tree: Path, tmp_path: Path):
    import csv

    out = tmp_path / "runs"
    for model in ("logreg", "lda", "svm"):
        args = ["evaluate", "--root", str(ravdess_tree), "--model", model, "--k", "3"]
        res = CliRunner().invoke(app, [*args, "--features", "mfcc", "--out", str(out)])
        assert res.exit_code == 0, res.output
    runs = sorted(out.iterdir())
    rows = list(csv.DictReader((out / runs[1].name / "predictions.csv").open()))
    p = np.array([[float(r[c]) for c in r if c.startswith("p_")] for r in rows])
    assert p.shape == (len(rows), 4) and np.allclose(p.sum(1), 1, atol=1e-3)
    lda, logreg, svm = (
        next(r for r in runs if r.name.startswith(m)) for m in ("lda", "logreg", "svm")
    )
    res = CliRunner().invoke(app, ["fuse", str(logreg), str(lda), "--out", str(out), "--name", "f"])
    assert res.exit_code == 0, res.output
    assert (out / "f" / "predictions.csv").is_file()
    res = CliRunner().invoke(app, ["fuse", str(logreg), str(svm)])
    assert res.exit_code == 2 and "no class probabilities" in res.output


def test_fused_run_summary_names_the_run_and_corpora(tmp_path: Path) -> None:
    rng, true, folds = _data(2)
    p = rng.random((60, 3))
    ra, rb = _run(tmp_path / "a", p, folds, true), _run(tmp_path / "b", p[::-1], folds, true)
    res = fuse_runs([ra, rb], out_dir=tmp_path / "o", name="ab")
    assert (res.run_dir / "summary.md").read_text().startswith("# ab: fusion on x")
