"""The model registry: every evaluable model by its CLI name (:func:`make_model`), the
classical scikit-learn pipelines (:func:`make_classical`) and their hyper-parameter grids
(:func:`default_param_grid`).

:func:`make_classical` returns an *unfitted* ``Pipeline(StandardScaler -> estimator)``, so feature
scaling is always learnt inside the training fold. :func:`default_param_grid` gives a small grid
for an inner (speaker-grouped) hyper-parameter search over that pipeline, e.g.::

    GridSearchCV(make_classical("svm"), default_param_grid("svm"), cv=GroupKFold(3))
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from emovox.models.gmm import GaussianMixtureClassifier
from emovox.models.rda import RDA

__all__ = [
    "CLASSICAL",
    "CLF_STEP",
    "FRAME_MODELS",
    "SCALER_STEP",
    "SEQUENCE_MODELS",
    "default_param_grid",
    "make_classical",
    "make_model",
]

#: Names accepted by :func:`make_classical`.
CLASSICAL: frozenset[str] = frozenset({"knn", "lda", "svm", "rda", "gmm", "logreg"})

#: Models that take frame sequences ``(n_layers, T, D)`` per clip instead of one vector.
SEQUENCE_MODELS: frozenset[str] = frozenset({"attentive", "finetune"})

#: Models that take hand-made frame features, one ``(T, d)`` matrix per clip
#: (:func:`emovox.features.frames.frame_features`), and standardise them themselves.
FRAME_MODELS: frozenset[str] = frozenset({"hmm"})

#: Step names of the pipeline built by :func:`make_classical`.
SCALER_STEP = "scale"
CLF_STEP = "clf"

#: Folds of the sigmoid (Platt) calibration that gives the SVM its ``predict_proba``.
_SVM_CALIBRATION_CV = 5


def _check_name(name: str, known: frozenset[str] = CLASSICAL) -> str:
    key = str(name).strip().lower()
    if key not in known:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(known))}")
    return key


def make_model(name: str, seed: int = 0, probability: bool = True, **params: Any) -> Any:
    """Any evaluable model by its CLI name: a :func:`make_classical` pipeline, the
    :class:`~emovox.models.attentive.AttentiveHead` for ``"attentive"`` (frame input), the
    :class:`~emovox.models.finetune.FinetuneHead` for ``"finetune"`` (the hidden states
    entering the encoder's top blocks; ``params`` name the ``encoder`` and the ``blocks``), or
    the :class:`~emovox.models.hmm.HMMClassifier` for ``"hmm"`` (hand-made frame features;
    no pipeline: it standardises the training frames itself)."""
    key = _check_name(name, CLASSICAL | SEQUENCE_MODELS | FRAME_MODELS)
    if key == "hmm":
        from emovox.models.hmm import HMMClassifier

        return HMMClassifier(random_state=seed).set_params(**params)
    if key == "finetune":
        from emovox.models.finetune import FinetuneHead

        return FinetuneHead(seed=seed).set_params(**params)  # unknown names: ValueError
    if key == "attentive":
        from emovox.models.attentive import AttentiveHead

        return AttentiveHead(seed=seed, **params)
    return make_classical(key, seed=seed, probability=probability, **params)


def _param_prefix(key: str, probability: bool = True) -> str:
    """Where the estimator's own parameters live inside the pipeline."""
    return f"{CLF_STEP}__estimator__" if key == "svm" and probability else f"{CLF_STEP}__"


def make_classical(name: str, seed: int = 0, probability: bool = True, **params: Any) -> Pipeline:
    """Unfitted ``Pipeline([("scale", StandardScaler()), ("clf", estimator)])``.

    ``name`` is one of :data:`CLASSICAL` (case-insensitive); ``seed`` seeds the stochastic models
    (SVM calibration, GMM); ``params`` override the estimator's defaults. For ``"svm"`` the
    estimator is ``CalibratedClassifierCV(SVC(...), method="sigmoid", ensemble=False)`` (the
    replacement scikit-learn recommends for the deprecated ``SVC(probability=True)``) and
    ``params`` go to the inner ``SVC``. ``probability=False`` gives the bare ``SVC`` (no
    ``predict_proba``, six times cheaper to fit): what evaluation, which only predicts, uses.
    """
    key = _check_name(name)
    estimator: BaseEstimator
    if key == "knn":
        estimator = KNeighborsClassifier(n_neighbors=10, weights="distance")
    elif key == "lda":
        estimator = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    elif key == "rda":
        estimator = RDA(alpha=0.5, gamma=0.1)
    elif key == "logreg":  # the usual head for frozen encoder embeddings
        estimator = LogisticRegression(C=0.01, max_iter=1000, class_weight="balanced")
    elif key == "gmm":
        estimator = GaussianMixtureClassifier(
            n_components=2, covariance_type="diag", random_state=seed
        )
    else:
        svc = SVC(kernel="rbf", C=10.0, gamma="scale", class_weight="balanced", random_state=seed)
        svc.set_params(**params)
        params = {}
        estimator = (
            CalibratedClassifierCV(svc, method="sigmoid", cv=_SVM_CALIBRATION_CV, ensemble=False)
            if probability
            else svc
        )
    estimator.set_params(**params)
    return Pipeline([(SCALER_STEP, StandardScaler()), (CLF_STEP, estimator)])


def default_param_grid(
    name: str, prefix: str | None = None, probability: bool = True
) -> dict[str, list[Any]]:
    """A small hyper-parameter grid for :func:`make_classical`'s pipeline.

    Keys carry the pipeline prefix (``"clf__"``, or ``"clf__estimator__"`` for the SVM) unless
    ``prefix`` is given (``prefix=""`` gives the bare estimator parameter names).
    """
    key = _check_name(name)
    grid: dict[str, list[Any]]
    if key == "knn":
        grid = {"n_neighbors": [5, 15]}
    elif key == "lda":
        grid = {"shrinkage": ["auto", 0.1, 0.5]}
    elif key == "svm":
        grid = {"C": [1.0, 10.0], "gamma": ["scale"]}
    elif key == "rda":
        grid = {"alpha": [0.0, 0.5, 1.0], "gamma": [0.05, 0.25]}
    elif key == "logreg":
        grid = {"C": [0.001, 0.01, 0.1]}
    else:
        grid = {"n_components": [1, 2, 4]}
    pre = _param_prefix(key, probability) if prefix is None else prefix
    return {f"{pre}{param}": values for param, values in grid.items()}
