"""Calibrating the head's probabilities: one softmax temperature for every input, or one that
rises with the input's domain score.

A single temperature fitted on validation speakers of the training corpora (:func:`fit_temperature`)
makes probabilities honest on audio like the training data, but on speech from elsewhere the head
is as sure of itself as at home while being right far less often, so few of its wrong answers
fall under the ``uncertain`` threshold. :class:`DomainTemperature` lets the temperature grow with
the domain score (:mod:`emovox.inference.domain`), ``T(s) = exp(intercept + slope * s)``, and
:func:`fit_domain_temperature` fits it on two groups at once, each with half the weight: in-domain
predictions (validation speakers) and held-out-corpus predictions (each corpus scored by a head
that never saw it, leave one corpus out). Familiar audio keeps about the validation temperature;
unfamiliar audio gets the flatter probabilities that held-out corpora call for.

>>> T = fit_temperature(Z_val, y_val)                                        # doctest: +SKIP
>>> dt = fit_domain_temperature([(Z_val, y_val, s_val)], held_out_groups)   # doctest: +SKIP
>>> P = softmax(Z / dt(scores)[:, None])                                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: One group of predictions: logits ``(n, k)``, true labels as indices ``(n,)``, domain scores
#: ``(n,)``. Groups may have different ``k`` (a head that never saw some emotion).
Group = tuple[np.ndarray, np.ndarray, np.ndarray]


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits ``(n, k)``."""
    Z = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    return P / P.sum(axis=1, keepdims=True)


def log_softmax_at(Z: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """``log softmax(Z)[i, y_idx[i]]`` for every row."""
    Z = Z - Z.max(axis=1, keepdims=True)
    return Z[np.arange(len(y_idx)), y_idx] - np.log(np.exp(Z).sum(axis=1))


def fit_temperature(Z: np.ndarray, y_idx: np.ndarray) -> float:
    """The softmax temperature minimising the negative log-likelihood of ``y_idx``."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax_at(Z / np.exp(log_t), y_idx)))

    res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(res.x))


def expected_calibration_error(P: np.ndarray, y_idx: np.ndarray, bins: int = 10) -> float:
    """Mean gap between confidence and accuracy over ``bins`` confidence bins."""
    conf = P.max(1)
    right = P.argmax(1) == y_idx
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(ece)


@dataclass(frozen=True)
class DomainTemperature:
    """``T(s) = exp(intercept + slope * s)``, clipped to ``[low, high]``, for domain scores
    ``s``."""

    intercept: float
    slope: float
    low: float = 0.25
    high: float = 8.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.intercept) and np.isfinite(self.slope)):
            raise ValueError("domain temperature: intercept and slope must be finite")
        if not 0 < self.low <= self.high:
            raise ValueError(
                f"domain temperature: need 0 < low <= high, got {self.low}, {self.high}"
            )

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Temperatures ``(n,)`` for domain scores ``(n,)``."""
        s = np.asarray(scores, dtype=np.float64)
        return np.clip(np.exp(self.intercept + self.slope * s), self.low, self.high)

    def to_dict(self) -> dict[str, float]:
        return {"intercept": self.intercept, "slope": self.slope, "low": self.low,
                "high": self.high}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DomainTemperature:
        return cls(**{k: float(d[k]) for k in ("intercept", "slope", "low", "high") if k in d})


def fit_domain_temperature(
    in_domain: Sequence[Group], held_out: Sequence[Group], held_out_weight: float = 0.5
) -> DomainTemperature:
    """The :class:`DomainTemperature` minimising the negative log-likelihood of both kinds of
    prediction: ``in_domain`` groups (e.g. validation speakers) and ``held_out`` groups (e.g.
    each corpus scored by a head trained without it), ``held_out_weight`` of the total weight
    on the second kind, every clip of a kind weighted alike."""
    from scipy.optimize import minimize

    if not 0 < held_out_weight < 1:
        raise ValueError(f"held_out_weight must be between 0 and 1, got {held_out_weight}")
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
    for groups, weight in ((in_domain, 1 - held_out_weight), (held_out, held_out_weight)):
        n = sum(len(y) for _, y, _ in groups)
        if n == 0:
            raise ValueError("fit_domain_temperature needs predictions of both kinds")
        for Z, y, s in groups:
            Z, y, s = np.asarray(Z, np.float64), np.asarray(y, np.int64), np.asarray(s, np.float64)
            if not (len(Z) == len(y) == len(s)):
                raise ValueError(f"a group has {len(Z)} logits, {len(y)} labels, {len(s)} scores")
            if len(y):
                parts.append((Z, y, s, weight / n))

    def nll(params: np.ndarray) -> float:
        a, b = params
        total = 0.0
        for Z, y, s, w in parts:
            T = np.exp(np.clip(a + b * s, -5, 5))[:, None]
            total -= w * float(log_softmax_at(Z / T, y).sum())
        return total

    res = minimize(nll, np.zeros(2), method="Nelder-Mead",
                   options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 2000})  # fmt: skip
    return DomainTemperature(float(res.x[0]), float(res.x[1]))


def uncertain_flags(
    Z: np.ndarray, y_idx: np.ndarray, T: float | np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each answer is right and whether it is ``uncertain`` (top probability under
    ``threshold``) at temperature ``T`` (one, or one per row)."""
    T = np.asarray(T, dtype=np.float64)
    P = softmax(np.asarray(Z, np.float64) / (T[:, None] if T.ndim else T))
    return P.argmax(1) == np.asarray(y_idx), P.max(1) < threshold


def domain_temperature_summary(
    dt: DomainTemperature, in_domain: Group, held_out: Sequence[Group], threshold: float
) -> dict[str, Any]:
    """What a fitted :class:`DomainTemperature` does with the predictions it was fitted on
    (in-sample; bench/domain_score.py measures it nested): its parameters, the temperature of
    typical in-domain audio, and the share of answers flagged ``uncertain`` in domain and on
    the held-out corpora, with the held-out accuracy of flagged and unflagged answers."""
    Z, y, s = in_domain
    right_in, unc_in = uncertain_flags(Z, y, dt(s), threshold)
    parts = [uncertain_flags(Zh, yh, dt(sh), threshold) for Zh, yh, sh in held_out]
    right = np.concatenate([r for r, _ in parts])
    unc = np.concatenate([u for _, u in parts])

    def share(x: np.ndarray) -> float | None:
        return round(float(x.mean()), 4) if len(x) else None

    return {
        "intercept": round(dt.intercept, 4),
        "slope": round(dt.slope, 4),
        "temperature_validation_median": round(float(dt(np.array([np.median(s)]))[0]), 3),
        "share_uncertain_validation": share(unc_in),
        "held_out_clips": int(len(right)),
        "share_uncertain_held_out": share(unc),
        "wrong_flagged_held_out": share(unc[~right]),
        "accuracy_held_out_uncertain": share(right[unc]),
        "accuracy_held_out_certain": share(right[~unc]),
    }
