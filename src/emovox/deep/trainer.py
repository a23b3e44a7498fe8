"""A resumable trainer for the deep models, independent of where the clips come from.

The trainer gets lists of 16 kHz float32 waveforms and integer labels. Features (log-mel by
default) are computed on the fly by :class:`~emovox.deep.data.ClipDataset`, which is also the
only place augmentation happens (training items only). Evaluation averages class probabilities
over sliding windows.

Checkpoints (:mod:`emovox.deep.checkpoint`) are pickle-free and written every epoch.
Per-epoch randomness is reseeded from ``(seed, epoch)`` and per-item randomness from
``(seed, epoch, index)``, so a resumed run ends with the same weights as an uninterrupted one.

Subclasses may override the documented extension points :meth:`Trainer.batches`,
:meth:`Trainer.train_forward` and :meth:`Trainer.run_epoch` (as
:class:`emovox.scale.ddp.DistributedTrainer` does).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from emovox.deep.augment import mixup
from emovox.deep.checkpoint import (
    CHECKPOINT,
    FORMAT,
    MODEL,
    MODEL_JSON,
    STATE,
    model_tensors,
    resume_checkpoint,
    save_checkpoint,
    save_safetensors,
)
from emovox.deep.config import TrainConfig
from emovox.deep.curves import plot_curves
from emovox.deep.data import (
    ClipDataset,
    FeatureFn,
    collate_segments,
    default_feature_fn,
    numpy_single_thread,
    worker_init,
)
from emovox.deep.nets import architecture_of, freeze_body, param_groups_for_finetune
from emovox.deep.predict import autocast, model_device, predict_dataset, resolve_device
from emovox.deep.progress import TrainingProgress
from emovox.deep.schedule import lr_factor
from emovox.evaluation.metrics import unweighted_accuracy
from emovox.io import atomic_write_text


@dataclass
class FitResult:
    """Outcome of :meth:`Trainer.fit`."""

    run_dir: Path
    best_ua: float | None
    best_epoch: int | None
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, Any]]


@dataclass
class FitContext:
    """What every epoch of one :meth:`Trainer.fit` shares (given to :meth:`Trainer.run_epoch`).

    ``state`` is the trainer state saved in checkpoints; an epoch advances its
    ``"global_step"``.
    """

    optimizer: torch.optim.Optimizer
    train_ds: ClipDataset
    val_ds: ClipDataset
    val_y: np.ndarray
    class_weights: torch.Tensor
    n_classes: int
    total_steps: int
    state: dict[str, Any]
    progress: TrainingProgress


class Trainer:
    """Train a model on waveform lists; see the module docstring for the data flow.

    ``on_epoch_end(record)`` (optional) is called after each epoch's checkpoint is written;
    an exception raised there interrupts training with the checkpoint intact.
    """

    def __init__(
        self,
        cfg: TrainConfig | None = None,
        feature_fn: FeatureFn | None = None,
        on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.cfg = cfg or TrainConfig()
        self.custom_features = feature_fn is not None
        self.feature_fn = feature_fn or default_feature_fn(self.cfg)
        self.on_epoch_end = on_epoch_end

    # ---- extension points

    def batches(self, n: int, rng: np.random.Generator) -> list[list[int]]:
        """One epoch's batches: index lists into the ``n`` training clips, in ``rng``'s order.

        Every batch this returns is one optimizer step (the schedule counts them); a last
        batch of one item is dropped (batch norm needs two).
        """
        order = rng.permutation(n).tolist()
        bs = self.cfg.batch_size
        out = [order[i : i + bs] for i in range(0, n, bs)]
        if out and len(out[-1]) < 2:  # BatchNorm needs 2+ items
            out.pop()
        return out

    def train_forward(self, model: nn.Module) -> nn.Module:
        """The module training batches go through, built once per epoch: ``model`` itself
        (:mod:`emovox.scale.ddp` wraps it in DistributedDataParallel)."""
        return model

    def run_epoch(self, model: nn.Module, epoch: int, ctx: FitContext) -> dict[str, Any]:
        """Train ``model`` for epoch ``epoch`` (0-based), then validate it.

        Returns the epoch's history record: ``epoch`` (1-based), ``train_loss``, ``val_loss``,
        ``val_ua``, ``val_wa`` (None without validation clips), ``lr``, ``frozen``,
        ``seconds``. :meth:`fit` decides on best epoch and early stopping from it.
        """
        cfg = self.cfg
        device = model_device(model)
        t0 = time.perf_counter()
        seed_seq = np.random.SeedSequence([cfg.seed, epoch, 2])
        rng = np.random.default_rng(seed_seq)
        torch.manual_seed(int(seed_seq.generate_state(1, np.uint64)[0] >> 1))
        frozen = epoch < cfg.freeze_epochs
        freeze_body(model, frozen)
        ctx.train_ds.set_epoch(epoch)
        loader = DataLoader(
            ctx.train_ds,
            batch_sampler=self.batches(len(ctx.train_ds), rng),
            num_workers=cfg.workers,
            worker_init_fn=worker_init if cfg.workers else None,
            collate_fn=collate_segments,
        )
        model.train()
        net = self.train_forward(model)
        opt, state, k = ctx.optimizer, ctx.state, ctx.n_classes
        ctx.progress.start_epoch(epoch)
        losses: list[float] = []
        lr = cfg.lr
        for x, y in loader:
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            y = y.to(device)
            target = F.one_hot(y, k).float()
            if cfg.mixup_alpha > 0:
                perm = torch.from_numpy(rng.permutation(len(y))).to(device)
                x, target, _ = mixup(x, target, x[perm], target[perm], cfg.mixup_alpha, rng)
            factor = lr_factor(state["global_step"], ctx.total_steps, cfg.schedule, cfg.warmup_frac)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * factor
            lr = opt.param_groups[-1]["lr"]
            with autocast(device, cfg.precision):
                logits = net(x)
            loss = F.cross_entropy(
                logits.float(),
                target,
                weight=ctx.class_weights,
                label_smoothing=cfg.label_smoothing,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], cfg.grad_clip
                )
            opt.step()
            state["global_step"] += 1
            losses.append(float(loss.detach()))
            ctx.progress.step(losses[-1])
        freeze_body(model, False)

        val_ua = val_wa = val_loss = None
        vy = ctx.val_y
        if len(ctx.val_ds):
            probs = predict_dataset(model, ctx.val_ds, cfg.eval_batch_size, device)
            pred = probs.argmax(axis=1)
            val_ua = unweighted_accuracy(vy, pred)
            val_wa = float(np.mean(pred == vy))
            val_loss = float(-np.mean(np.log(np.maximum(probs[np.arange(len(vy)), vy], 1e-12))))
        return {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_loss": val_loss,
            "val_ua": val_ua,
            "val_wa": val_wa,
            "lr": lr,
            "frozen": frozen,
            "seconds": round(time.perf_counter() - t0, 2),
        }

    # ---- helpers

    def _class_weights(self, y: np.ndarray, k: int) -> torch.Tensor:
        if not self.cfg.class_balanced_loss:
            return torch.ones(k)
        counts = np.bincount(y, minlength=k).astype(np.float64)
        w = np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 1.0)
        return torch.tensor(w, dtype=torch.float32)

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        cfg = self.cfg
        if cfg.layer_decay is not None:
            groups = param_groups_for_finetune(model, cfg.lr, cfg.layer_decay)
        else:
            groups = [{"params": list(model.parameters()), "lr": cfg.lr, "name": "all"}]
        for g in groups:
            g["base_lr"] = g["lr"]
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _model_meta(
        self, model: nn.Module, labels: list[str], state: dict[str, Any]
    ) -> dict[str, Any]:
        name, kwargs = architecture_of(model)
        cfg = self.cfg
        return {
            "format": FORMAT,
            "architecture": name,
            "kwargs": kwargs,
            "labels": labels,
            "n_classes": len(labels),
            "features": {
                "kind": "custom" if self.custom_features else "log_mel",
                "sample_rate": cfg.sample_rate,
                "n_mels": cfg.n_mels,
                "n_fft": cfg.n_fft,
                "hop": cfg.hop,
                "top_db": cfg.top_db,
                "normalization": "per-segment standardisation",
                "crop_seconds": cfg.crop_seconds,
                "eval_window": cfg.eval_window,
                "eval_hop": cfg.eval_hop,
            },
            "train_config": cfg.to_dict(),
            "best_epoch": state["best_epoch"],
            "val_ua": state["best_ua"],
            "torch_version": torch.__version__,
        }

    # ---- main entry

    def fit(
        self,
        train_wavs: Sequence[np.ndarray],
        train_y: Sequence[int],
        val_wavs: Sequence[np.ndarray],
        val_y: Sequence[int],
        model: nn.Module,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        labels: Sequence[str] | None = None,
    ) -> FitResult:
        """Train ``model`` in place, checkpointing to ``run_dir`` every epoch.

        ``resume=True`` continues from ``run_dir/checkpoint.safetensors`` (if present) and
        ends with the same weights as an uninterrupted run. ``labels`` names the classes
        (index order) in ``model.json``. Returns a :class:`FitResult`; the best weights (by val
        UA) are in ``run_dir/model.safetensors`` and, with ``restore_best``, in ``model``.
        """
        with numpy_single_thread():
            return self._fit(
                train_wavs, train_y, val_wavs, val_y, model, Path(run_dir), resume, progress, labels
            )

    def _fit(
        self,
        train_wavs: Sequence[np.ndarray],
        train_y: Sequence[int],
        val_wavs: Sequence[np.ndarray],
        val_y: Sequence[int],
        model: nn.Module,
        run_dir: Path,
        resume: bool,
        progress: bool,
        labels: Sequence[str] | None,
    ) -> FitResult:
        cfg = self.cfg
        torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        run_dir.mkdir(parents=True, exist_ok=True)
        ty = np.asarray(train_y, dtype=np.int64)
        vy = np.asarray(val_y, dtype=np.int64)
        if len(ty) != len(train_wavs) or len(vy) != len(val_wavs):
            raise ValueError("each clip needs exactly one label")
        if len(ty) < 2:
            raise ValueError("need at least 2 training clips")
        k = int(getattr(getattr(model, "fc", None), "out_features", 0)) or int(ty.max()) + 1
        if ty.min() < 0 or max(ty.max(), vy.max() if len(vy) else 0) >= k:
            raise ValueError(f"labels must be integers in [0, {k})")
        names = [str(x) for x in labels] if labels is not None else [str(i) for i in range(k)]
        if len(names) != k:
            raise ValueError(f"{len(names)} label names for {k} classes")
        architecture_of(model)  # fail now, not after an epoch, if model.json cannot be written

        model.to(device=device, memory_format=torch.channels_last)
        opt = self._optimizer(model)
        fingerprint = [len(ty), len(vy), int(ty.sum()), int(vy.sum())]
        state: dict[str, Any] = {
            "format": FORMAT,
            "epoch": 0,  # epochs completed
            "global_step": 0,
            "best_ua": None,
            "best_epoch": None,
            "bad_epochs": 0,
            "finished": False,
            "stopped_early": False,
            "history": [],
            "config": cfg.to_dict(),
            "data": fingerprint,
            "labels": names,
        }
        ckpt = run_dir / CHECKPOINT
        if resume and ckpt.exists():
            state = resume_checkpoint(ckpt, model, opt, cfg, state, fingerprint)
        elif not resume:
            for name in (CHECKPOINT, STATE, MODEL, MODEL_JSON):
                (run_dir / name).unlink(missing_ok=True)

        # a custom feature function may not be frame-based with cfg.hop: no frame crops then
        cache = cfg.feature_cache and not self.custom_features
        train_ds = ClipDataset(
            train_wavs,
            ty,
            cfg,
            self.feature_fn,
            train=True,
            augment_cfg=cfg.augment,
            babble_pool=train_wavs,  # babble is made of other TRAINING clips only
            cache_features=cache,
        )
        val_ds = ClipDataset(val_wavs, vy, cfg, self.feature_fn, train=False, cache_features=cache)
        if cfg.workers:  # worker processes start from this process's cache each epoch: fill it
            train_ds.fill_cache()
        weights = self._class_weights(ty, k).to(device)
        n_batches = len(self.batches(len(ty), np.random.default_rng(0)))
        bar = TrainingProgress(progress, cfg.epochs, n_batches)
        ctx = FitContext(
            optimizer=opt,
            train_ds=train_ds,
            val_ds=val_ds,
            val_y=vy,
            class_weights=weights,
            n_classes=k,
            total_steps=cfg.epochs * n_batches,
            state=state,
            progress=bar,
        )
        try:
            while not state["finished"] and state["epoch"] < cfg.epochs:
                epoch = state["epoch"]
                record = self.run_epoch(model, epoch, ctx)
                state["history"].append(record)
                state["epoch"] = epoch + 1
                improved = record["val_ua"] is None or (
                    state["best_ua"] is None or record["val_ua"] > state["best_ua"]
                )
                if improved:
                    state["best_ua"] = record["val_ua"]
                    state["best_epoch"] = epoch + 1
                    state["bad_epochs"] = 0
                    meta = self._model_meta(model, names, state)
                    save_safetensors(run_dir / MODEL, model_tensors(model), {"format": FORMAT})
                    atomic_write_text(run_dir / MODEL_JSON, json.dumps(meta, indent=2))
                else:
                    state["bad_epochs"] += 1
                if cfg.patience and state["bad_epochs"] >= cfg.patience:
                    state["stopped_early"] = True
                state["finished"] = state["stopped_early"] or state["epoch"] >= cfg.epochs
                bar.epoch_done(record, state)  # this epoch's val UA, shown before the saving
                save_checkpoint(run_dir, model, opt, state)
                atomic_write_text(run_dir / "history.json", json.dumps(state["history"], indent=2))
                plot_curves(state["history"], run_dir / "curves.png")
                if self.on_epoch_end is not None:
                    self.on_epoch_end(record)
        finally:
            bar.close()

        if cfg.restore_best and (run_dir / MODEL).exists():
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(run_dir / MODEL)))
        model.eval()
        return FitResult(
            run_dir=run_dir,
            best_ua=state["best_ua"],
            best_epoch=state["best_epoch"],
            epochs_run=state["epoch"],
            stopped_early=state["stopped_early"],
            history=state["history"],
        )
