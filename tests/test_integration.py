"""Real-data checks on ../shared/corpora (skipped when the corpora are absent)."""

import pytest
from conftest import CORPORA

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (CORPORA / "savee").exists(), reason="no corpora at ../shared/corpora"),
]


def test_svm_on_savee_leave_one_speaker_out(tmp_path):
    from emovox.evaluation.experiment import ExperimentConfig, evaluate, load_dataset

    cfg = ExperimentConfig(
        model="svm", corpora=["savee"], roots=[str(CORPORA)], protocol="loso", out_dir=str(tmp_path)
    )
    data = load_dataset(cfg, progress=False)
    assert len(data.clips) == 480 and not data.skipped
    m = evaluate(data, cfg).metrics
    assert m["folds"] == 4 and m["leakage"]["shared_speakers"] == 0
    # 7 classes (chance 0.14); published speaker-independent SAVEE results sit around 0.4-0.6.
    assert 0.30 <= m["ua"] <= 0.80, m["ua"]
