import json

import pytest

from emovox.evaluation.metrics import score
from emovox.evaluation.reports import summary_text, write_run


def test_score_ua_is_mean_recall_and_wa_accuracy():
    y = ["a"] * 8 + ["b"] * 2
    p = ["a"] * 8 + ["a", "b"]
    m = score(y, p, ["a", "b", "c"])
    assert m["wa"] == pytest.approx(0.9)
    assert m["ua"] == pytest.approx((1.0 + 0.5) / 2)  # absent class c is left out
    assert m["per_class"] == {"a": 1.0, "b": 0.5}
    assert m["confusion"][1] == [1, 1, 0]
    with pytest.raises(ValueError):
        score([], [], ["a"])


def test_write_run_marks_leaky(tmp_path):
    m = score(["a", "b"], ["a", "a"], ["a", "b"]) | {
        "protocol": "random",
        "leaky": True,
        "folds": 2,
        "leakage": {"shared_speakers": 3, "identical_audio": 1, "shared_sentences": 2},
    }
    d = write_run(
        tmp_path / "r",
        {"model": "svm", "corpora": ["x"]},
        m,
        [{"id": "1", "true": "a", "pred": "a"}],
        skipped=[("/bad.wav", "silent")],
    )
    for f in (
        "config.json",
        "metrics.json",
        "predictions.csv",
        "confusion.png",
        "confusion.json",
        "summary.md",
        "skipped.csv",
    ):
        assert (d / f).stat().st_size > 0
    assert json.loads((d / "metrics.json").read_text())["leaky"] is True
    assert "LEAKY" in (d / "summary.md").read_text()
    assert (d / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    honest = summary_text({"model": "svm"}, m | {"protocol": "speaker-kfold", "leaky": False})
    assert "LEAKY" not in honest and "speaker-independent" in honest


def test_atomic_writes_have_the_usual_file_mode(tmp_path):
    import os

    from emovox.io import atomic_write_text

    p = atomic_write_text(tmp_path / "x.txt", "hi")
    umask = os.umask(0)
    os.umask(umask)
    assert p.read_text() == "hi" and (p.stat().st_mode & 0o777) == (0o666 & ~umask)
    assert not list(tmp_path.glob(".*tmp"))
