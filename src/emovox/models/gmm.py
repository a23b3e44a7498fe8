"""A generative classifier: one Gaussian mixture per class, combined by Bayes' rule."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from emovox.models.bayes import (
    BayesClassifierMixin,
    check_priors,
    fit_classes,
    log_priors,
    validate_data,
)

__all__ = ["GaussianMixtureClassifier"]


class GaussianMixtureClassifier(BayesClassifierMixin, ClassifierMixin, BaseEstimator):
    """One :class:`sklearn.mixture.GaussianMixture` per class; posteriors via Bayes' rule.

    Parameters
    ----------
    n_components : int, default 2
        Mixture components per class (capped at the class's sample count).
    covariance_type : {"diag", "full", "tied", "spherical"}, default "diag"
    reg_covar : float, default 1e-6
        Added to the covariance diagonals (as in ``GaussianMixture``).
    max_iter : int, default 100
    n_init : int, default 1
    priors : array-like of shape (n_classes,), optional
        Class priors in ``classes_`` order (normalised); default: training frequencies.
    random_state : int, RandomState or None
        Seeds the per-class mixtures (each class draws its own seed from it).

    Attributes
    ----------
    classes_, priors_, estimators_ (one fitted ``GaussianMixture`` per class), n_iter_ (the
    largest EM iteration count over the classes), n_features_in_
    """

    def __init__(
        self,
        n_components: int = 2,
        covariance_type: str = "diag",
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        priors: Any = None,
        random_state: Any = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.priors = priors
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> GaussianMixtureClassifier:
        """Fit one mixture per class on that class's samples."""
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components!r}")
        X, classes, y_idx, counts = fit_classes(self, X, y)
        if counts.min() < 2:
            raise ValueError(
                f"class {classes[np.argmin(counts)]!r} has a single sample; need at least 2"
            )
        rng = check_random_state(self.random_state)
        estimators = []
        for k in range(classes.size):
            gm = GaussianMixture(
                n_components=min(int(self.n_components), int(counts[k])),
                covariance_type=self.covariance_type,
                reg_covar=self.reg_covar,
                max_iter=self.max_iter,
                n_init=self.n_init,
                random_state=int(rng.randint(np.iinfo(np.int32).max)),
            )
            estimators.append(gm.fit(X[y_idx == k]))
        self.classes_ = classes
        self.priors_ = check_priors(self.priors, counts)
        self.estimators_ = estimators
        self.n_iter_ = max(gm.n_iter_ for gm in estimators)
        return self

    def _joint_log_likelihood(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        jll = np.column_stack([gm.score_samples(X) for gm in self.estimators_])
        return jll + log_priors(self.priors_)
