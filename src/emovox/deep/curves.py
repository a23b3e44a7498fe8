"""The training-curve plot of a deep run (``curves.png``): loss and validation accuracy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss (train, val) and val UA/WA per epoch of ``history``, as a PNG at ``path``
    (written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ep = [h["epoch"] for h in history]
    ax1.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    if any(h["val_loss"] is not None for h in history):
        ax1.plot(ep, [h["val_loss"] for h in history], "s-", label="val loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.legend()
    if any(h["val_ua"] is not None for h in history):
        ax2.plot(ep, [h["val_ua"] for h in history], "o-", label="val UA")
        ax2.plot(ep, [h["val_wa"] for h in history], "s--", label="val WA")
        ax2.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
