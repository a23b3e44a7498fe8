"""Shared pieces of the generative (Bayes-rule) classifiers: input validation, class priors
and the predict / predict_proba / decision_function face built on a joint log-likelihood."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

__all__ = [
    "BayesClassifierMixin",
    "check_priors",
    "fit_classes",
    "log_priors",
    "validate_data",
]


def validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """``sklearn.utils.validation.validate_data`` with a fallback for scikit-learn < 1.6."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, *args, **kwargs)
    return estimator._validate_data(*args, **kwargs)  # pragma: no cover


def fit_classes(
    estimator: BaseEstimator, X: Any, y: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated float64 training data as ``(X, classes, y_idx, counts)``: the sorted class
    labels, each sample's class index and the samples per class; at least 2 samples and 2
    classes (a ``ValueError`` naming the estimator otherwise)."""
    X, y = validate_data(estimator, X, y, dtype=np.float64, ensure_min_samples=2)
    check_classification_targets(y)
    classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    if classes.size < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs at least 2 classes; got {classes.size} class"
        )
    return X, classes, y_idx, counts


def check_priors(priors: Any, counts: np.ndarray) -> np.ndarray:
    """Class priors: training frequencies if ``priors`` is None, else ``priors`` normalised."""
    if priors is None:
        return counts / counts.sum()
    out = np.asarray(priors, dtype=np.float64).ravel()
    if out.shape != counts.shape:
        raise ValueError(f"priors has {out.size} entries but there are {counts.size} classes")
    if not np.all(np.isfinite(out)) or np.any(out < 0) or out.sum() <= 0:
        raise ValueError("priors must be finite, non-negative and not all zero")
    return out / out.sum()


def log_priors(priors: np.ndarray) -> np.ndarray:
    """``log(priors)``, ``-inf`` (without a warning) for a zero prior."""
    with np.errstate(divide="ignore"):
        return np.log(priors)


class BayesClassifierMixin:
    """predict / predict_proba / decision_function from a ``_joint_log_likelihood``
    (log p(x | class) + log prior), shared by the generative classifiers."""

    classes_: np.ndarray

    def _joint_log_likelihood(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log posterior class probabilities, columns in ``classes_`` order."""
        jll = self._joint_log_likelihood(X)
        return jll - logsumexp(jll, axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior class probabilities, columns in ``classes_`` order."""
        return np.exp(self.predict_log_proba(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """Log posteriors (n_samples, n_classes); with 2 classes, the log-odds of classes_[1]."""
        log_proba = self.predict_log_proba(X)
        if self.classes_.size == 2:
            return log_proba[:, 1] - log_proba[:, 0]
        return log_proba

    def predict(self, X: Any) -> np.ndarray:
        """Maximum a posteriori class labels."""
        jll = self._joint_log_likelihood(X)  # checks fitted before touching classes_
        return self.classes_[np.argmax(jll, axis=1)]
