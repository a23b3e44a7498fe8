"""The learning-rate schedules of the deep trainer (one-cycle and cosine)."""

from __future__ import annotations

import math


def cosine_between(a: float, b: float, p: float) -> float:
    """Cosine interpolation from ``a`` (``p = 0``) to ``b`` (``p = 1``); ``p`` is clipped."""
    return b + (a - b) * (1 + math.cos(math.pi * min(max(p, 0.0), 1.0))) / 2


def lr_factor(step: int, total: int, schedule: str, warmup_frac: float = 0.3) -> float:
    """Learning-rate multiplier at optimizer ``step`` of ``total``.

    ``onecycle``: cosine rise from 1/25 to 1 over ``warmup_frac`` of the steps, then cosine
    decay to 1/25e4 (torch's OneCycleLR defaults); ``cosine``: 2 % linear warm-up, then
    cosine decay to 0.
    """
    if schedule == "onecycle":
        w = max(1, int(warmup_frac * total))
        if step < w:
            return cosine_between(1 / 25, 1.0, step / w)
        return cosine_between(1.0, 1 / 25e4, (step - w) / max(1, total - w))
    w = max(1, int(0.02 * total))
    if step < w:
        return (step + 1) / w
    return cosine_between(1.0, 0.0, (step - w) / max(1, total - w))
