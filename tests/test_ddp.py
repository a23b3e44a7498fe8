"""DDP training (``torchrun -m emovox.scale.ddp``): two CPU processes (gloo) against one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_ravdess_tree

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch = pytest.importorskip("torch", reason="DDP training needs PyTorch (emovox[deep])")
dist = pytest.importorskip("torch.distributed", reason="torch without torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with the gloo backend is not available", allow_module_level=True)

from emovox.evaluation.deep_experiment import load_config, train_and_evaluate  # noqa: E402
from emovox.scale.ddp import shard_batches  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
[experiment]
name = "ddp-test"
model = "cnn"
corpora = ["ravdess"]
labels = "auto"
protocol = "speaker-kfold"
k = 3
folds = 1
seed = 0
n_jobs = 1

[model]
width = 8
dropout = 0.0

[train]
epochs = 6
batch_size = 16
lr = 3e-3
crop_seconds = 0.5
eval_window = 0.5
eval_hop = 0.25
n_mels = 32
patience = 0
threads = 1
device = "cpu"

[augment]
p_reverb = 0.0
p_pitch = 0.0
"""


def test_shard_batches_split_every_global_batch_across_ranks():
    batches = [[5, 1, 7, 3, 0, 2, 6, 4], [9, 8, 10], [11]]
    parts = [shard_batches(batches, r, 2) for r in range(2)]
    assert parts[0] == [[5, 7, 0, 6], [9, 10]] and parts[1] == [[1, 3, 2, 4], [8]]
    # the ranks together see exactly the global batches that have an item for every rank
    for b, r0, r1 in zip(batches, *parts, strict=False):
        assert sorted(r0 + r1) == sorted(b)
    assert len(parts[0]) == len(parts[1]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def corpus(tmp_path) -> Path:
    """RAVDESS layout, 6 actors x 4 emotions x 2 statements x 2 takes of synthetic audio."""
    return write_ravdess_tree(tmp_path, repetitions=2)


def test_two_process_ddp_matches_one_process(corpus, tmp_path):
    """Same config, one process vs ``torchrun --nproc_per_node=2`` (gloo).

    Identical between the two: clip order, global batch (16 = 8 per rank), steps per epoch,
    learning-rate schedule, per-clip crops and augmentation, class weights, and the averaged
    gradients (DDP). Different: batch-norm statistics come from each rank's 8 clips instead of
    all 16, and float sums run in another order, so the weights drift apart a little each step.
    Tolerances for that drift: mean training loss within 0.15 in every epoch (seen: under
    0.05) and test UA within 0.15 (seen: equal), while one-process UA on toy sets like this one
    moves by up to 0.5 from one seed to another: a broken DDP (wrong shard, no all-reduce,
    another schedule) falls outside, the noise of per-rank batch norm does not.
    """
    cfg_path = tmp_path / "ddp.toml"
    cfg_path.write_text(CONFIG)
    one = train_and_evaluate(
        load_config(cfg_path, {"roots": [str(corpus)]}), tmp_path / "one", progress=False
    )
    env = os.environ | {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env["EMOVOX_CACHE"] = str(tmp_path / "cache")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           "-m", "emovox.scale.ddp", "--config", str(cfg_path), "--root", str(corpus),
           "--out", str(tmp_path / "two"), "--json"]  # fmt: skip
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    two = json.loads(res.stdout.strip().splitlines()[-1])
    assert two["ddp"] == {"world_size": 2, "backend": "gloo"}
    assert (two["n"], two["folds"]) == (one["n"], one["folds"]) == (32, 1)

    run1, run2 = Path(one["run_dir"]), Path(two["run_dir"])
    assert run2.parent == tmp_path / "two"  # rank 0 wrote the run; rank 1 only a scratch copy
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [run2.name]
    fold1, fold2 = (sorted(p for p in r.iterdir() if p.is_dir())[0] for r in (run1, run2))
    assert (fold2 / "model.safetensors").exists() and (fold2 / "checkpoint.safetensors").exists()
    h1 = json.loads((fold1 / "history.json").read_text())
    h2 = json.loads((fold2 / "history.json").read_text())
    assert len(h1) == len(h2) == 6
    loss1 = np.array([h["train_loss"] for h in h1])
    loss2 = np.array([h["train_loss"] for h in h2])
    assert np.abs(loss1 - loss2).max() < 0.15, (loss1, loss2)
    assert loss2[-1] < loss2[0]  # it learns
    assert abs(one["ua"] - two["ua"]) <= 0.15 + 1e-9, (one["ua"], two["ua"])
    stored = json.loads((run2 / "metrics.json").read_text())
    assert stored["ddp"]["world_size"] == 2 and stored["ua"] == pytest.approx(two["ua"])
