"""A sequence classifier: one Gaussian hidden Markov model per class over a clip's frames,
combined by Bayes' rule (the classic HMM emotion recogniser).

Each class gets an :class:`hmmlearn.hmm.GaussianHMM` trained by Baum-Welch on that class's
frame sequences; a clip goes to the class with the highest sequence log-likelihood (forward
algorithm) plus log prior. Frames are standardised with statistics of the training frames
only, so inside an evaluation fold nothing is learnt from the test clips.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from emovox.models.bayes import BayesClassifierMixin, check_priors, log_priors
from emovox.models.sequences import check_sequences, encode_labels

__all__ = ["COVARIANCE_TYPES", "TOPOLOGIES", "HMMClassifier"]

#: ``left-right``: each state loops or moves to the next (Bakis, starting in the first);
#: ``ergodic``: any state may follow any other.
TOPOLOGIES = ("left-right", "ergodic")

#: Shapes of each state's Gaussian covariance (as in ``hmmlearn``).
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")

_HINT = "give one (T, d) frame matrix per clip (emovox.features.frames.frame_features)"


class HMMClassifier(BayesClassifierMixin, ClassifierMixin, BaseEstimator):
    """One Gaussian HMM per class; ``X`` is a sequence of ``(T_i, d)`` frame matrices.

    Parameters
    ----------
    n_states : int, default 5
        Hidden states per class model.
    topology : {"left-right", "ergodic"}, default "left-right"
    covariance_type : {"full", "diag", "spherical", "tied"}, default "full"
        Of each state's Gaussian (as in ``hmmlearn``). MFCCs, their deltas, energy and pitch
        are correlated; on RAVDESS, speaker-independent, full covariances scored clearly above
        diagonal ones.
    n_iter : int, default 10
        Baum-Welch iterations (at most; stops earlier when the gain is below ``tol``).
    tol : float, default 1e-2
        Convergence threshold on the training log-likelihood gain.
    min_covar : float, default 1e-3
        Floor of the (standardised) variances.
    standardize : bool, default True
        Scale every feature to zero mean and unit variance over the training frames first.
    priors : array-like of shape (n_classes,), optional
        Class priors in ``classes_`` order (normalised); default: training frequencies.
    random_state : int, RandomState or None
        Seeds each class model (each draws its own seed). Training itself starts from a
        deterministic linear segmentation: state ``k`` takes the ``k``-th of ``n_states``
        equal stretches of every sequence.

    Attributes
    ----------
    classes_, priors_, estimators_ (one fitted ``GaussianHMM`` per class), scaler_ (the
    ``StandardScaler`` of the training frames, or None), n_iter_ (the most Baum-Welch iterations
    any class model ran), n_features_in_
    """

    def __init__(
        self,
        n_states: int = 5,
        topology: str = "left-right",
        covariance_type: str = "full",
        n_iter: int = 10,
        tol: float = 1e-2,
        min_covar: float = 1e-3,
        standardize: bool = True,
        priors: Any = None,
        random_state: Any = None,
    ) -> None:
        self.n_states = n_states
        self.topology = topology
        self.covariance_type = covariance_type
        self.n_iter = n_iter
        self.tol = tol
        self.min_covar = min_covar
        self.standardize = standardize
        self.priors = priors
        self.random_state = random_state

    def _check_params(self) -> None:
        if int(self.n_states) < 1:
            raise ValueError(f"n_states must be >= 1, got {self.n_states!r}")
        if int(self.n_iter) < 1:
            raise ValueError(f"n_iter must be >= 1, got {self.n_iter!r}")
        if self.topology not in TOPOLOGIES:
            raise ValueError(
                f"topology must be one of {', '.join(TOPOLOGIES)}, got {self.topology!r}"
            )
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)}, "
                f"got {self.covariance_type!r}"
            )

    def _sequences(self, X: Any, reset: bool) -> list[np.ndarray]:
        """``X`` as checked float64 ``(T, d)`` arrays, standardised when fitted so."""
        if isinstance(X, np.ndarray) and X.dtype != object:
            raise ValueError(
                f"expected a list of (T, d) frame matrices, got one array {X.shape}; {_HINT}"
            )
        seqs = [np.asarray(x, dtype=np.float64) if isinstance(x, np.ndarray) else x for x in X]
        seqs = check_sequences(
            seqs, ndim=2, time_axis=0, expected="a (T, d) frame matrix", hint=_HINT
        )
        d = seqs[0].shape[1]
        if d == 0:
            raise ValueError("frame matrices have no feature columns (d = 0)")
        if reset:
            self.n_features_in_ = d
        elif d != self.n_features_in_:
            raise ValueError(
                f"frames have {d} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_}"
            )
        for i, x in enumerate(seqs):
            if not np.all(np.isfinite(x)):
                raise ValueError(f"clip {i}: frames hold NaN or infinite values")
        if reset:
            self.scaler_ = StandardScaler().fit(np.concatenate(seqs)) if self.standardize else None
        if self.scaler_ is not None:
            seqs = [self.scaler_.transform(x) for x in seqs]
        return seqs

    def _initial_model(self, seqs: Sequence[np.ndarray], seed: int) -> Any:
        """An unfitted ``GaussianHMM`` started from the linear segmentation of ``seqs``."""
        from hmmlearn.hmm import GaussianHMM

        n = int(self.n_states)
        parts: list[list[np.ndarray]] = [[] for _ in range(n)]
        for x in seqs:
            for k, chunk in enumerate(np.array_split(x, n)):
                parts[k].append(chunk)
        frames = np.concatenate(seqs)
        d = frames.shape[1]
        means = np.empty((n, d))
        covs = np.empty((n, d, d))
        for k, chunks in enumerate(parts):
            block = np.concatenate(chunks) if sum(len(c) for c in chunks) > 1 else frames
            means[k] = block.mean(axis=0)
            covs[k] = np.cov(block, rowvar=False, bias=True).reshape(d, d)
        covs += float(self.min_covar) * np.eye(d)
        variances = np.diagonal(covs, axis1=1, axis2=2)
        stay = 1.0 - 1.0 / max(np.mean([len(x) for x in seqs]) / n, 2.0)
        if self.topology == "left-right":
            trans = np.diag(np.full(n, stay)) + np.diag(np.full(n - 1, 1.0 - stay), 1)
            trans[-1, -1] = 1.0
            start = np.eye(n)[0]
        else:
            trans = np.full((n, n), (1.0 - stay) / max(n - 1, 1))
            np.fill_diagonal(trans, stay if n > 1 else 1.0)
            start = np.full(n, 1.0 / n)
        hmm = GaussianHMM(
            n_components=n,
            covariance_type=self.covariance_type,
            min_covar=float(self.min_covar),
            n_iter=int(self.n_iter),
            tol=float(self.tol),
            init_params="",
            params="stmc",
            random_state=seed,
        )
        hmm.startprob_, hmm.transmat_, hmm.means_ = start, trans, means
        if self.covariance_type == "diag":
            hmm.covars_ = variances
        elif self.covariance_type == "spherical":
            hmm.covars_ = variances.mean(axis=1)
        elif self.covariance_type == "full":
            hmm.covars_ = covs
        else:  # tied
            hmm.covars_ = covs.mean(axis=0)
        return hmm

    def fit(self, X: Sequence[np.ndarray], y: Sequence[Any]) -> HMMClassifier:
        """Train one HMM per class on that class's frame sequences."""
        self._check_params()
        seqs = self._sequences(X, reset=True)
        classes, y_idx = encode_labels(y, len(seqs))
        counts = np.bincount(y_idx, minlength=classes.size)
        rng = check_random_state(self.random_state)
        estimators = []
        hmm_log = logging.getLogger("hmmlearn")
        level = hmm_log.level
        hmm_log.setLevel(logging.ERROR)  # "not converging" notes on tiny likelihood dips
        try:
            for k in range(classes.size):
                mine = [seqs[i] for i in np.flatnonzero(y_idx == k)]
                hmm = self._initial_model(mine, int(rng.randint(np.iinfo(np.int32).max)))
                estimators.append(hmm.fit(np.concatenate(mine), [len(x) for x in mine]))
        finally:
            hmm_log.setLevel(level)
        self.classes_ = classes
        self.priors_ = check_priors(self.priors, counts)
        self.estimators_ = estimators
        self.n_iter_ = max(hmm.monitor_.iter for hmm in estimators)
        return self

    def _joint_log_likelihood(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        seqs = self._sequences(X, reset=False)
        jll = np.array([[hmm.score(x) for hmm in self.estimators_] for x in seqs])
        return jll + log_priors(self.priors_)
