"""Friedman's (1989) regularized discriminant analysis (RDA).

Every class ``k`` gets a Gaussian with its own mean and a covariance regularised in two steps::

    Σ_k(α)    = (1 - α) Σ_k + α Σ_pooled                      # blend class and pooled covariance
    Σ_k(α, γ) = (1 - γ) Σ_k(α) + γ (tr Σ_k(α) / p) I          # shrink towards a scaled identity

``Σ_k`` is the maximum-likelihood covariance of class ``k`` (divided by ``n_k``) and ``Σ_pooled``
the within-class covariance ``Σ_k (n_k / n) Σ_k`` (divided by ``n``), the estimates scikit-learn's
``LinearDiscriminantAnalysis`` / ``QuadraticDiscriminantAnalysis`` use. The two corners are

* ``alpha=1, gamma=0``: linear discriminant analysis (one shared covariance);
* ``alpha=0, gamma=0``: quadratic discriminant analysis (one covariance per class);
* ``gamma=1``: spherical covariances, a (prior- and scale-aware) nearest-mean classifier.

``alpha`` is Friedman's λ. A small ridge ``reg_param · tr(Σ)/p`` is added to the diagonal so that a
class with fewer samples than features (``p > n_k``) still has a positive-definite covariance.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from emovox.models.bayes import (
    BayesClassifierMixin,
    check_priors,
    fit_classes,
    log_priors,
    validate_data,
)

__all__ = ["RDA"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class RDA(BayesClassifierMixin, ClassifierMixin, BaseEstimator):
    """Regularized discriminant analysis (Friedman, 1989) with both regularisation parameters.

    Parameters
    ----------
    alpha : float in [0, 1], default 0.5
        Friedman's λ: weight of the pooled covariance in ``(1-α) Σ_k + α Σ_pooled``
        (1 → LDA-like shared covariance, 0 → QDA-like per-class covariances).
    gamma : float in [0, 1], default 0.1
        Shrinkage of each blended covariance towards ``(tr Σ/p) I`` (1 → spherical covariances).
    priors : array-like of shape (n_classes,), optional
        Class priors in ``classes_`` order (normalised to sum 1); default: training frequencies.
    reg_param : float >= 0, default 1e-6
        Ridge added to the diagonal, relative to the covariance's mean variance ``tr Σ/p``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    priors_ : ndarray of shape (n_classes,)
    means_ : ndarray of shape (n_classes, n_features)
    cholesky_ : ndarray of shape (n_classes, n_features, n_features)
        Lower Cholesky factors of the regularised class covariances.
    log_det_ : ndarray of shape (n_classes,)
        ``log det`` of the regularised class covariances.
    n_features_in_ : int
    """

    def __init__(
        self,
        alpha: float = 0.5,
        gamma: float = 0.1,
        priors: Any = None,
        reg_param: float = 1e-6,
    ) -> None:
        self.alpha = alpha
        self.gamma = gamma
        self.priors = priors
        self.reg_param = reg_param

    def fit(self, X: Any, y: Any) -> RDA:
        """Estimate class means, priors and regularised covariances."""
        for name in ("alpha", "gamma"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not float(self.reg_param) >= 0.0:
            raise ValueError(f"reg_param must be >= 0, got {self.reg_param!r}")
        X, classes, y_idx, counts = fit_classes(self, X, y)
        n, p = X.shape
        n_classes = classes.size
        alpha, gamma, reg = float(self.alpha), float(self.gamma), float(self.reg_param)

        means = np.zeros((n_classes, p))
        # class covariances, overwritten below by the Cholesky factors of the regularised ones
        mats = np.empty((n_classes, p, p))
        for k in range(n_classes):
            Xk = X[y_idx == k]
            means[k] = Xk.mean(axis=0)
            Xc = Xk - means[k]
            mats[k] = Xc.T @ Xc / Xk.shape[0]
        pooled = np.tensordot(counts / n, mats, axes=1)
        pooled_scale = float(np.trace(pooled)) / p

        log_det = np.empty(n_classes)
        diag = np.arange(p)
        for k in range(n_classes):
            cov = (1.0 - alpha) * mats[k] + alpha * pooled
            scale = float(np.trace(cov)) / p
            if gamma > 0.0:
                cov *= 1.0 - gamma
                cov[diag, diag] += gamma * scale
            ridge_scale = scale if scale > 0 else (pooled_scale if pooled_scale > 0 else 1.0)
            cov[diag, diag] += reg * ridge_scale
            chol = _stable_cholesky(cov, ridge_scale, classes[k])
            mats[k] = chol
            log_det[k] = 2.0 * np.sum(np.log(np.diag(chol)))

        self.classes_ = classes
        self.priors_ = check_priors(self.priors, counts)
        self.means_ = means
        self.cholesky_ = mats
        self.log_det_ = log_det
        return self

    def _joint_log_likelihood(self, X: Any) -> np.ndarray:
        """``log p(x | k) + log π_k`` for every sample and class."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        p = X.shape[1]
        out = np.empty((X.shape[0], self.classes_.size))
        log_prior = log_priors(self.priors_)
        for k in range(self.classes_.size):
            z = solve_triangular(
                self.cholesky_[k], (X - self.means_[k]).T, lower=True, check_finite=False
            )
            maha = np.einsum("ij,ij->j", z, z)
            out[:, k] = -0.5 * (maha + self.log_det_[k] + p * _LOG_2PI) + log_prior[k]
        return out


def _stable_cholesky(cov: np.ndarray, scale: float, label: Any) -> np.ndarray:
    """Lower Cholesky factor; if ``cov`` is singular, add growing diagonal jitter and warn."""
    try:
        return cholesky(cov, lower=True, check_finite=False)
    except LinAlgError:
        pass
    eye = np.eye(cov.shape[0])
    for exponent in range(-10, 1):
        jitter = 10.0**exponent * scale
        try:
            chol = cholesky(cov + jitter * eye, lower=True, check_finite=False)
        except LinAlgError:
            continue
        warnings.warn(
            f"covariance of class {label!r} is singular; added {jitter:.3g} to its diagonal "
            "(use reg_param > 0 or gamma > 0)",
            RuntimeWarning,
            stacklevel=3,
        )
        return chol
    raise ValueError(f"covariance of class {label!r} is not positive definite")
