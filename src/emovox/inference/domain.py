"""How unlike the training data an input is: the domain score behind ``out_of_domain``.

The score lives in the head's standardised feature space (``(x - head.mean) / head.scale``)
and uses the ``k`` main directions (PCA) of the training clips. Two kinds:

``residual`` (the default; what the bundle ships)
    the distance of the input from that subspace (what the ``k`` directions cannot explain),
    relative to the training clips' root mean square distance: about 1 for a typical training
    clip. Audio from another studio, channel or language leaves the subspace: under leave one
    corpus out this flags new corpora far better than ``mahalanobis``
    (bench/domain_score.py, docs/generalization.md).
``mahalanobis``
    the root mean square of the whitened coordinates inside the subspace (about 1 in domain).

An input scoring above the threshold (set on held-out speakers of the training corpora, e.g.
their 95th percentile) is flagged ``out_of_domain``: its probabilities come from a region the
head never learnt from and deserve less trust.

A bundle stores it as ``domain.mean``, ``domain.components``, ``domain.scale`` and
``domain.residual`` tensors and ``domain_threshold`` / ``domain_method`` in ``model.json``
(:mod:`emovox.inference.bundle`); all optional.

>>> dom = fit_domain(Xs_train, k=64)                       # doctest: +SKIP
>>> dom = dom.with_threshold(dom.score(Xs_validation))     # doctest: +SKIP
>>> dom.flag(dom.score(Xs_new))                            # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: The tensor names (without the ``domain.`` prefix) a bundle stores.
TENSORS = ("mean", "components", "scale", "residual")
#: The kinds of score.
METHODS = ("residual", "mahalanobis")
#: Default share of in-domain held-out clips left unflagged by the threshold.
DEFAULT_QUANTILE = 0.95
#: Default number of principal components.
DEFAULT_COMPONENTS = 64


@dataclass(frozen=True)
class DomainScore:
    """A fitted domain score: ``mean (F,)``, ``components (k, F)`` (orthonormal rows),
    ``scale (k,)`` (training standard deviation along each component) and ``residual (1,)``
    (training RMS distance off the subspace), over standardised features; ``method`` (one of
    :data:`METHODS`); ``threshold`` (None: score only, nothing flagged)."""

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    residual: np.ndarray
    threshold: float | None = None
    method: str = "residual"

    def __post_init__(self) -> None:
        k, f = np.shape(self.components)
        if np.shape(self.mean) != (f,) or np.shape(self.scale) != (k,):
            raise ValueError(
                f"domain tensors do not fit: mean {np.shape(self.mean)}, components "
                f"{np.shape(self.components)}, scale {np.shape(self.scale)}"
            )
        if np.shape(self.residual) != (1,):
            raise ValueError(f"domain residual must have shape (1,), got {np.shape(self.residual)}")
        if not (np.all(np.asarray(self.scale) > 0) and float(self.residual[0]) > 0):
            raise ValueError("domain scale and residual must be positive")
        if self.method not in METHODS:
            raise ValueError(
                f"domain method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )

    @property
    def n_features(self) -> int:
        return int(np.shape(self.components)[1])

    def score(self, Xs: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` of standardised features ``(n, F)`` (about 1 for training-like
        data, larger the further away)."""
        Xs = np.atleast_2d(np.asarray(Xs, dtype=np.float64))
        if Xs.shape[1] != self.n_features:
            raise ValueError(f"features have {Xs.shape[1]} columns, the score {self.n_features}")
        D = Xs - np.asarray(self.mean, dtype=np.float64)
        Z = D @ np.asarray(self.components, dtype=np.float64).T
        if self.method == "mahalanobis":
            Z /= np.asarray(self.scale, dtype=np.float64)
            return np.sqrt(np.mean(Z * Z, axis=1))
        off = np.maximum(np.einsum("ij,ij->i", D, D) - np.sum(Z * Z, axis=1), 0.0)
        return np.sqrt(off) / float(self.residual[0])

    def flag(self, scores: np.ndarray) -> np.ndarray:
        """``scores > threshold`` (all False without a threshold)."""
        s = np.asarray(scores, dtype=np.float64)
        if self.threshold is None:
            return np.zeros(s.shape, dtype=bool)
        return s > self.threshold

    def with_threshold(
        self, in_domain_scores: np.ndarray, quantile: float = DEFAULT_QUANTILE
    ) -> DomainScore:
        """A copy whose threshold is the ``quantile`` of scores of in-domain held-out data."""
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
        s = np.asarray(in_domain_scores, dtype=np.float64)
        if s.size == 0:
            raise ValueError("no in-domain scores to set the threshold on")
        return replace(self, threshold=float(np.quantile(s, quantile)))

    def tensors(self) -> dict[str, np.ndarray]:
        """``{"mean", "components", "scale"}`` as C-ordered float32 (a bundle stores them as
        ``domain.*``; safetensors writes a Fortran-ordered array's buffer transposed)."""
        return {k: np.ascontiguousarray(getattr(self, k), dtype=np.float32) for k in TENSORS}

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, np.ndarray], threshold: float | None, method: str = "residual"
    ) -> DomainScore:
        """The score stored in a bundle (``ValueError`` when tensors are missing or misfit)."""
        missing = [k for k in TENSORS if k not in tensors]
        if missing:
            raise ValueError(f"missing domain tensors {missing}")
        return cls(
            *(np.asarray(tensors[k], dtype=np.float64) for k in TENSORS),
            threshold=None if threshold is None else float(threshold),
            method=method,
        )


def fit_domain(
    Xs: np.ndarray, k: int = DEFAULT_COMPONENTS, seed: int = 0, method: str = "residual"
) -> DomainScore:
    """Fit the score (no threshold yet) on standardised training features ``(n, F)``."""
    from sklearn.decomposition import PCA

    Xs = np.asarray(Xs, dtype=np.float64)
    k = int(min(k, Xs.shape[0] - 1, Xs.shape[1]))
    if k < 1:
        raise ValueError(f"need at least 2 training rows to fit a domain score, got {len(Xs)}")
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(Xs)
    scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
    D = Xs - pca.mean_
    off = np.einsum("ij,ij->i", D, D) - np.sum((D @ pca.components_.T) ** 2, axis=1)
    residual = np.array([np.sqrt(max(float(np.mean(np.maximum(off, 0.0))), 1e-12))])
    return DomainScore(pca.mean_, pca.components_, scale, residual, method=method)
