"""Multi-GPU (or multi-process CPU) training of the deep models with DistributedDataParallel.

    torchrun --nproc_per_node=2 -m emovox.scale.ddp --config configs/paper-model2.toml
    torchrun --nproc_per_node=4 -m emovox.scale.ddp --config C.toml --folds 1 --epochs 40 --resume

The same configs, folds, reports and checkpoints as ``emovox train``: every rank runs
:func:`emovox.evaluation.deep_experiment.train_and_evaluate` with :class:`DistributedTrainer` in
place of
:class:`emovox.deep.trainer.Trainer`. What changes:

- **Data.** Each global batch of ``[train] batch_size`` clips (same seeded order as one process)
  is split across the ranks (rank r takes items r, r + W, ...), so every rank trains on its own
  share of the training clips while the optimisation (global batch, steps per epoch, learning-rate
  schedule, per-item augmentation) stays that of the one-process run: the same config gives the
  same model up to batch-norm statistics (per rank) and dropout masks. ``batch_size`` is the
  GLOBAL batch; each GPU holds ``batch_size / W`` clips.
- **Gradients** are all-reduced (averaged) by DDP; backend ``nccl`` on GPUs (one per rank,
  ``LOCAL_RANK``), ``gloo`` on CPU.
- **Consistency.** After every epoch rank 0's weights and batch-norm buffers are broadcast, and
  rank 0's validation record drives best-epoch and early-stopping decisions on every rank.
- **Files.** Rank 0 writes the run folder (checkpoints, ``model.safetensors``, reports); other
  ranks write to a temporary folder deleted at the end. ``--resume`` sends rank 0's finished-fold
  results and checkpoints to the other ranks first, so no shared file system is needed.

Validation and test predictions are computed on every rank (the same numbers; only rank 0's are
written). Each rank decodes the whole corpus (as ``emovox train`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import emovox.deep
import emovox.deep.trainer as trainer_mod
from emovox.deep.trainer import FitContext, Trainer

#: Files of a run that ``--resume`` needs on every rank.
_RESUME_FILES = ("fold_result.json", "checkpoint.safetensors", "model.safetensors", "model.json")


def shard_batches(batches: Sequence[Sequence[int]], rank: int, world: int) -> list[list[int]]:
    """Rank ``rank``'s share of each global batch (items ``rank, rank + world, ...``). Global
    batches with fewer than ``world`` items are dropped so every rank takes the same steps."""
    return [list(b[rank::world]) for b in batches if len(b) >= world]


def _broadcast_state(model: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_contiguous():
                dist.broadcast(t, src=0)
            else:  # channels_last weights
                c = t.contiguous()
                dist.broadcast(c, src=0)
                t.copy_(c)


class DistributedTrainer(Trainer):
    """:class:`Trainer` for one rank of a DDP job (``torch.distributed`` initialised)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()

    def batches(self, n: int, rng: np.random.Generator) -> list[list[int]]:
        """This rank's share (:func:`shard_batches`) of the one-process global batches."""
        return shard_batches(super().batches(n, rng), self.rank, self.world)

    def train_forward(self, model: nn.Module) -> nn.Module:
        """``model`` wrapped in DistributedDataParallel (gradients averaged over the ranks)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        dev = next(model.parameters()).device
        # rebuilt every epoch: fine-tuning configs change which parameters train (freeze_epochs)
        return DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def run_epoch(self, model: nn.Module, epoch: int, ctx: FitContext) -> dict[str, Any]:
        """One epoch on every rank, then rank 0's weights, buffers and validation record for
        all (the training loss is the mean over the ranks)."""
        record = super().run_epoch(model, epoch, ctx)
        _broadcast_state(model)
        dev = next(model.parameters()).device
        loss = torch.tensor([record["train_loss"]], dtype=torch.float64, device=dev)
        dist.all_reduce(loss)
        box = [record]
        dist.broadcast_object_list(box, src=0)
        record = dict(box[0])
        record["train_loss"] = float(loss.item()) / self.world  # mean over the ranks' batches
        record["world_size"] = self.world
        return record


# --------------------------------------------------------------------------- entry point


def _parse_value(text: str) -> Any:
    """``--set`` values: JSON (numbers, true/false, "strings", [lists]), else the plain text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _mirror_run(run_dir: Path, scratch_run: Path) -> None:
    """Send rank 0's resume files (finished folds, checkpoints) to the other ranks."""
    files: dict[str, bytes] = {}
    if dist.get_rank() == 0 and run_dir.is_dir():
        for name in _RESUME_FILES:
            for f in run_dir.rglob(name):
                files[str(f.relative_to(run_dir))] = f.read_bytes()
    box: list[Any] = [files]
    dist.broadcast_object_list(box, src=0)
    if dist.get_rank() != 0:
        for rel, data in box[0].items():
            dest = scratch_run / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m emovox.scale.ddp",
        description="emovox train on N processes (GPUs) with DistributedDataParallel.",
    )
    p.add_argument("--config", required=True, type=Path, help="TOML config, as emovox train")
    p.add_argument("--protocol", help="override the config's protocol")
    p.add_argument("--folds", type=int, help="run only the first N folds")
    p.add_argument("--epochs", type=int, help="override [train] epochs")
    p.add_argument("--resume", action="store_true", help="continue a run (see emovox train)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, help="torch CPU threads per rank")
    p.add_argument("--pretrained", help="initial weights: a .pth/.safetensors file or imagenet")
    p.add_argument("--root", action="append", type=Path, help="folder holding the corpora")
    p.add_argument("--out", default="runs", help="where run folders go (rank 0 writes)")
    p.add_argument("--name", help="run name (folder <out>/<name>-<protocol>)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any config value, e.g. --set experiment.n_jobs=2 --set model.dropout=0.2",
    )
    p.add_argument("--json", action="store_true", help="end with the metrics as JSON (rank 0)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``torchrun ... -m emovox.scale.ddp``; also runs as one plain process."""
    from emovox.evaluation.deep_experiment import ConfigError, load_config, train_and_evaluate
    from emovox.io import atomic_write_json

    a = _args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "WORLD_SIZE" not in os.environ:  # `python -m emovox.scale.ddp`: a world of one
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29511")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = a.device != "cpu" and torch.cuda.is_available()
    if a.device == "cuda" and not cuda:
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    overrides: dict[str, Any] = {
        "protocol": a.protocol, "folds": a.folds, "epochs": a.epochs, "threads": a.threads,
        "device": "cuda" if cuda else "cpu", "pretrained": a.pretrained, "name": a.name,
        "roots": [str(r) for r in a.root] if a.root else None,
    }  # fmt: skip
    scratch: Path | None = None
    try:
        for item in a.set:
            key, sep, value = item.partition("=")
            if not sep or "." not in key:
                raise ConfigError(f"--set needs SECTION.KEY=VALUE, got {item!r}")
            overrides[key.strip()] = _parse_value(value.strip())
        cfg = load_config(a.config, overrides)
        out_dir = Path(a.out)
        if rank != 0:
            scratch = Path(tempfile.mkdtemp(prefix=f"emovox-ddp-rank{rank}-"))
        if a.resume:
            _mirror_run(out_dir / cfg.run_name(), (scratch or out_dir) / cfg.run_name())

        def log(msg: str) -> None:
            if rank == 0:
                print(msg, file=sys.stderr, flush=True)

        log(f"DDP: {world} rank(s), backend {dist.get_backend()}, device {overrides['device']}")
        # train_and_evaluate builds its Trainer from emovox.deep(.trainer): this rank's instead
        with (
            mock.patch.object(trainer_mod, "Trainer", DistributedTrainer),
            mock.patch.object(emovox.deep, "Trainer", DistributedTrainer),
        ):
            m = train_and_evaluate(
                cfg,
                scratch or out_dir,
                resume=a.resume,
                progress=rank == 0 and not a.json and sys.stderr.isatty(),
                log=log,
            )
        if rank == 0:
            m["ddp"] = {"world_size": world, "backend": dist.get_backend()}
            metrics_path = Path(m["run_dir"]) / "metrics.json"
            stored = json.loads(metrics_path.read_text())
            atomic_write_json(metrics_path, stored | {"ddp": m["ddp"]})
            print(
                f"{m['model']}: UA {m['ua']:.3f}  WA {m['wa']:.3f}  ({m['folds']} fold(s), "
                f"{world} ranks); report: {m['run_dir']}",
                file=sys.stderr,
            )
            if a.json:
                print(json.dumps(m))
        dist.barrier()
        return 0
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error (rank {rank}): {exc}", file=sys.stderr)
        return 2
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
