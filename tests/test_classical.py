"""Classical classifiers: RDA vs its LDA/QDA/spherical corners, the GMM classifier, registry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.discriminant_analysis import (
    LinearDiscriminantAnalysis,
    QuadraticDiscriminantAnalysis,
)
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from emovox.models import (
    CLASSICAL,
    CLF_STEP,
    RDA,
    GaussianMixtureClassifier,
    default_param_grid,
    make_classical,
)


def _gaussian_classes(
    n_per_class: int = 80,
    p: int = 4,
    n_classes: int = 3,
    shared: bool = True,
    seed: int = 0,
    sep: float = 1.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes with a shared (or, if not ``shared``, per-class) random covariance."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    base = rng.normal(size=(p, p))
    for k in range(n_classes):
        mix = base if shared else rng.normal(size=(p, p))
        mean = rng.normal(scale=sep, size=p)
        X.append(rng.normal(size=(n_per_class + 10 * k, p)) @ mix.T + mean)
        y.append(np.full(n_per_class + 10 * k, k))
    return np.vstack(X), np.concatenate(y)


def _direct_log_posterior(
    X: np.ndarray, means: list[np.ndarray], covs: list[np.ndarray], priors: np.ndarray
) -> np.ndarray:
    jll = np.column_stack(
        [
            multivariate_normal(m, c).logpdf(X) + np.log(pk)
            for m, c, pk in zip(means, covs, priors, strict=True)
        ]
    )
    return jll - logsumexp(jll, axis=1, keepdims=True)


def _ml_stats(X: np.ndarray, y: np.ndarray) -> tuple[list, list, np.ndarray, np.ndarray]:
    classes, counts = np.unique(y, return_counts=True)
    means = [X[y == c].mean(axis=0) for c in classes]
    covs = [np.cov(X[y == c].T, bias=True) for c in classes]
    pooled = sum(n / len(y) * c for n, c in zip(counts, covs, strict=True))
    return means, covs, pooled, counts / len(y)


# (1) alpha=1, gamma=0 is LDA ------------------------------------------------------------------
def test_rda_alpha1_gamma0_is_lda() -> None:
    X, y = _gaussian_classes(shared=True)
    Xt, _ = _gaussian_classes(shared=True, seed=1)
    rda = RDA(alpha=1.0, gamma=0.0, reg_param=0.0).fit(X, y)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)
    np.testing.assert_array_equal(rda.predict(Xt), lda.predict(Xt))
    np.testing.assert_allclose(rda.predict_proba(Xt), lda.predict_proba(Xt), atol=1e-8)
    np.testing.assert_allclose(rda.priors_, lda.priors_)


# (2) alpha=0, gamma=0 is QDA ------------------------------------------------------------------
def test_rda_alpha0_gamma0_is_qda_direct() -> None:
    X, y = _gaussian_classes(shared=False)
    Xt, _ = _gaussian_classes(shared=False, seed=1)
    rda = RDA(alpha=0.0, gamma=0.0, reg_param=0.0).fit(X, y)
    means, covs, _, priors = _ml_stats(X, y)
    expected = _direct_log_posterior(Xt, means, covs, priors)
    np.testing.assert_allclose(rda.predict_log_proba(Xt), expected, atol=1e-8)


def test_rda_alpha0_gamma0_matches_sklearn_qda() -> None:
    X, y = _gaussian_classes(shared=False)
    Xt, _ = _gaussian_classes(shared=False, seed=1)
    qda = QuadraticDiscriminantAnalysis(reg_param=0.0, store_covariance=True).fit(X, y)
    if not np.allclose(qda.covariance_[0], np.cov(X[y == 0].T, bias=True)):
        pytest.skip("this scikit-learn's QDA divides class covariances by n_k - 1, not n_k")
    rda = RDA(alpha=0.0, gamma=0.0, reg_param=0.0).fit(X, y)
    np.testing.assert_array_equal(rda.predict(Xt), qda.predict(Xt))
    np.testing.assert_allclose(rda.predict_proba(Xt), qda.predict_proba(Xt), atol=1e-6)


# (3) gamma=1 is spherical / nearest mean ------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_rda_gamma1_is_spherical(alpha: float) -> None:
    X, y = _gaussian_classes(shared=False)
    Xt, _ = _gaussian_classes(shared=False, seed=1)
    rda = RDA(alpha=alpha, gamma=1.0, reg_param=0.0).fit(X, y)
    means, covs, pooled, priors = _ml_stats(X, y)
    p = X.shape[1]
    spherical = [np.trace((1 - alpha) * c + alpha * pooled) / p * np.eye(p) for c in covs]
    expected = _direct_log_posterior(Xt, means, spherical, priors)
    np.testing.assert_allclose(rda.predict_log_proba(Xt), expected, atol=1e-8)


def test_rda_alpha1_gamma1_equal_priors_is_nearest_mean() -> None:
    X, y = _gaussian_classes(shared=False)
    Xt, _ = _gaussian_classes(shared=False, seed=1)
    rda = RDA(alpha=1.0, gamma=1.0, priors=[1, 1, 1], reg_param=0.0).fit(X, y)
    means = np.stack([X[y == k].mean(axis=0) for k in range(3)])
    nearest = np.argmin(((Xt[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(rda.predict(Xt), nearest)
    np.testing.assert_allclose(rda.priors_, np.full(3, 1 / 3))


def test_rda_intermediate_matches_formula() -> None:
    X, y = _gaussian_classes(shared=False, p=5)
    Xt, _ = _gaussian_classes(shared=False, p=5, seed=1)
    alpha, gamma = 0.3, 0.2
    rda = RDA(alpha=alpha, gamma=gamma, reg_param=0.0).fit(X, y)
    means, covs, pooled, priors = _ml_stats(X, y)
    reg = []
    for c in covs:
        blend = (1 - alpha) * c + alpha * pooled
        reg.append((1 - gamma) * blend + gamma * np.trace(blend) / 5 * np.eye(5))
    expected = _direct_log_posterior(Xt, means, reg, priors)
    np.testing.assert_allclose(rda.predict_log_proba(Xt), expected, atol=1e-8)
    # decision_function is the log posterior (multi-class)
    np.testing.assert_allclose(rda.decision_function(Xt), expected, atol=1e-8)


# (4) p > n_k: regularisation keeps probabilities finite ---------------------------------------
@pytest.mark.parametrize(("alpha", "gamma"), [(0.0, 0.0), (1.0, 0.0), (0.5, 0.1), (0.0, 1.0)])
def test_rda_more_features_than_samples(alpha: float, gamma: float) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 40))
    X[:10] += 1.0
    y = np.repeat(["a", "b", "c"], 10)
    rda = RDA(alpha=alpha, gamma=gamma).fit(X, y)
    proba = rda.predict_proba(rng.normal(size=(15, 40)))
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all(np.isfinite(rda.log_det_))


def test_rda_singular_without_ridge_warns_not_nan() -> None:
    X = np.random.default_rng(4).normal(size=(12, 20))
    y = np.repeat([0, 1], 6)
    with pytest.warns(RuntimeWarning, match="singular"):
        rda = RDA(alpha=0.0, gamma=0.0, reg_param=0.0).fit(X, y)
    assert np.all(np.isfinite(rda.predict_proba(X)))


def test_rda_priors_and_validation() -> None:
    X, y = _gaussian_classes()
    rda = RDA(priors=[2, 1, 1]).fit(X, y)
    np.testing.assert_allclose(rda.priors_, [0.5, 0.25, 0.25])
    with pytest.raises(ValueError, match="priors"):
        RDA(priors=[1, 1]).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        RDA(alpha=1.5).fit(X, y)
    with pytest.raises(ValueError, match="gamma"):
        RDA(gamma=-0.1).fit(X, y)
    with pytest.raises(ValueError, match="2 classes"):
        RDA().fit(X, np.zeros(len(X)))


def test_rda_binary_decision_function_is_log_odds() -> None:
    X, y = _gaussian_classes(n_classes=2)
    rda = RDA().fit(X, y)
    log_proba = rda.predict_log_proba(X)
    np.testing.assert_allclose(rda.decision_function(X), log_proba[:, 1] - log_proba[:, 0])


# (5) every registry model ---------------------------------------------------------------------
LABELS = np.array(["sad", "angry", "happy"])


@pytest.fixture(scope="module")
def three_class_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = _gaussian_classes(n_per_class=60, p=6, shared=False, seed=5, sep=2.0)
    X = X * np.array([1, 10, 100, 0.1, 1, 1000])  # unscaled features: the pipeline must scale
    yl = LABELS[y]
    rng = np.random.default_rng(6)
    test = rng.random(len(y)) < 0.3
    return X[~test], yl[~test], X[test], yl[test]


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_registry_model_fits_and_predicts(name: str, three_class_split: tuple) -> None:
    X, y, Xt, yt = three_class_split
    pipe = make_classical(name, seed=0)
    assert isinstance(pipe, Pipeline)
    assert isinstance(pipe.steps[0][1], StandardScaler)
    with pytest.raises(NotFittedError):
        pipe.predict(Xt)
    pipe.fit(X, y)
    np.testing.assert_array_equal(pipe.classes_, np.sort(LABELS))
    pred = pipe.predict(Xt)
    assert np.mean(pred == yt) > 0.7  # chance is 1/3
    proba = pipe.predict_proba(Xt)
    assert proba.shape == (len(Xt), 3)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # columns follow classes_: the most probable column is (nearly always) the predicted label
    assert np.mean(pipe.classes_[np.argmax(proba, axis=1)] == pred) > 0.95


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_param_grid_keys_fit_pipeline(name: str) -> None:
    pipe = make_classical(name)
    grid = default_param_grid(name)
    assert grid and all(isinstance(v, list) and v for v in grid.values())
    valid = pipe.get_params()
    assert set(grid) <= set(valid), set(grid) - set(valid)
    pipe.set_params(**{k: v[-1] for k, v in grid.items()})
    bare = default_param_grid(name, prefix="")
    tuned = pipe.named_steps[CLF_STEP]
    tuned = tuned.estimator if name == "svm" else tuned  # SVC inside the calibration wrapper
    assert set(bare) <= set(tuned.get_params())


def test_grid_search_runs_on_rda(three_class_split: tuple) -> None:
    X, y, _, _ = three_class_split
    search = GridSearchCV(make_classical("rda"), default_param_grid("rda"), cv=3).fit(X, y)
    assert set(search.best_params_) == set(default_param_grid("rda"))


def test_make_classical_params_and_seed() -> None:
    svm = make_classical("svm", seed=7, C=1.0)
    assert svm.get_params()[f"{CLF_STEP}__estimator__C"] == 1.0
    assert svm.get_params()[f"{CLF_STEP}__estimator__random_state"] == 7
    assert svm.get_params()[f"{CLF_STEP}__estimator__class_weight"] == "balanced"
    assert make_classical("gmm", seed=3).get_params()[f"{CLF_STEP}__random_state"] == 3
    assert make_classical("RDA", alpha=0.9).get_params()[f"{CLF_STEP}__alpha"] == 0.9
    knn = make_classical("knn").named_steps[CLF_STEP]
    assert (knn.n_neighbors, knn.weights) == (10, "distance")
    with pytest.raises(ValueError):
        make_classical("knn", not_a_param=1)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="knn.*lda.*rda.*svm"):
        make_classical("xgboost")
    with pytest.raises(ValueError, match="gmm"):
        default_param_grid("cnn")


# (6) scikit-learn estimator contract ----------------------------------------------------------
@pytest.mark.parametrize(
    "estimator",
    [RDA(alpha=0.2, gamma=0.3, priors=[0.5, 0.5], reg_param=1e-4), GaussianMixtureClassifier(3)],
)
def test_clone_get_params_round_trip(estimator) -> None:
    params = estimator.get_params()
    twin = clone(estimator)
    assert twin is not estimator
    assert twin.get_params() == params
    rebuilt = type(estimator)(**params)
    assert rebuilt.get_params() == params
    twin.set_params(**{next(iter(params)): params[next(iter(params))]})
    assert twin.get_params() == params


def test_pipeline_clone_round_trip() -> None:
    pipe = make_classical("rda", alpha=0.25)
    assert clone(pipe).get_params()[f"{CLF_STEP}__alpha"] == 0.25


@pytest.mark.parametrize("cls", [RDA, GaussianMixtureClassifier])
def test_not_fitted_and_string_labels(cls) -> None:
    X, y = _gaussian_classes()
    est = cls()
    with pytest.raises(NotFittedError):
        est.predict(X)
    with pytest.raises(NotFittedError):
        est.predict_proba(X)
    est.fit(X, LABELS[y])
    assert list(est.classes_) == sorted(LABELS)
    assert est.n_features_in_ == X.shape[1]
    assert set(est.predict(X)) <= set(LABELS)


@pytest.mark.parametrize(
    "estimator", [RDA(), RDA(alpha=0.0, gamma=0.0), GaussianMixtureClassifier(random_state=0)]
)
def test_sklearn_check_estimator(estimator) -> None:
    check_estimator(estimator, on_skip=None)


# (7) GMM classifier -----------------------------------------------------------------------------
def test_gmm_classifier_beats_chance() -> None:
    X, y = _gaussian_classes(n_per_class=100, shared=False, seed=8, sep=3.0)
    test = np.random.default_rng(9).random(len(y)) < 0.4
    gmm = GaussianMixtureClassifier(n_components=2, random_state=0).fit(X[~test], y[~test])
    assert np.mean(gmm.predict(X[test]) == y[test]) > 0.8  # chance is 1/3
    proba = gmm.predict_proba(X[test])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    again = GaussianMixtureClassifier(n_components=2, random_state=0).fit(X[~test], y[~test])
    np.testing.assert_allclose(again.predict_proba(X[test]), proba)


def test_gmm_caps_components_and_rejects_singletons() -> None:
    X, y = _gaussian_classes(n_per_class=3, n_classes=2)
    gmm = GaussianMixtureClassifier(n_components=8, random_state=0).fit(X, y)
    assert [g.n_components for g in gmm.estimators_] == [3, 8]
    with pytest.raises(ValueError, match="single sample"):
        GaussianMixtureClassifier().fit(X[:4], np.array([0, 0, 0, 1]))


def test_svm_without_probability_is_a_bare_svc_with_matching_grid():
    from sklearn.svm import SVC

    from emovox.models import default_param_grid, make_classical

    pipe = make_classical("svm", probability=False)
    assert isinstance(pipe.steps[-1][1], SVC)
    pipe.set_params(**{k: v[0] for k, v in default_param_grid("svm", probability=False).items()})


def test_bayes_helpers_check_priors_and_name_the_estimator() -> None:
    from emovox.models.bayes import check_priors, fit_classes, log_priors

    counts = np.array([1.0, 3.0])
    np.testing.assert_allclose(check_priors(None, counts), [0.25, 0.75])
    np.testing.assert_allclose(check_priors([2, 2], counts), [0.5, 0.5])
    with pytest.raises(ValueError, match="2 classes"):
        check_priors([1, 1, 1], counts)
    with pytest.raises(ValueError, match="non-negative"):
        check_priors([-1, 2], counts)
    assert log_priors(np.array([0.0, 1.0]))[0] == -np.inf
    X, classes, y_idx, n = fit_classes(RDA(), [[0.0], [1.0], [2.0]], ["a", "b", "a"])
    assert X.dtype == np.float64 and list(classes) == ["a", "b"] and list(n) == [2, 1]
    assert list(y_idx) == [0, 1, 0]
    with pytest.raises(ValueError, match="GaussianMixtureClassifier needs at least 2 classes"):
        GaussianMixtureClassifier().fit([[0.0], [1.0]], ["a", "a"])
