"""scikit-learn integration (issue 16): :class:`tunebench.integrations.sklearn.TuneSearchCV` with the
real scikit-learn: GridSearchCV's result format checked against scikit-learn's own cross-validation,
the multi-fidelity resources (subsets of the training folds, ``max_iter`` continued with
``warm_start``), scikit-learn's estimator checks, and one-line errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import BaseEstimator, ClassifierMixin, clone  # noqa: E402
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.exceptions import FitFailedWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from tunebench import load_experiment  # noqa: E402
from tunebench.errors import UserError  # noqa: E402
from tunebench.integrations.sklearn import MAX_ATTR, TuneSearchCV  # noqa: E402
from tunebench.space import choice, loguniform, randint  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def check_cv_results(search: TuneSearchCV, n_trials: int) -> dict:
    """The invariants of GridSearchCV's ``cv_results_`` and the ``best_*`` attributes."""
    r = search.cv_results_
    assert search.n_trials_ == n_trials
    for key in ("params", "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time", "std_fit_time",
                "mean_score_time", "std_score_time", "n_resources", "status", "trial_id"):
        assert len(r[key]) == n_trials, key
    splits = np.column_stack([r[f"split{k}_test_score"] for k in range(search.n_splits_)])
    assert f"split{search.n_splits_}_test_score" not in r
    np.testing.assert_allclose(r["mean_test_score"], splits.mean(axis=1))
    np.testing.assert_allclose(r["std_test_score"], splits.std(axis=1))
    assert sorted(r["rank_test_score"]) == list(range(1, n_trials + 1))
    assert r["rank_test_score"][search.best_index_] == 1
    assert search.best_score_ == r["mean_test_score"][search.best_index_]
    assert search.best_params_ == r["params"][search.best_index_]
    for name in search.config_space:
        assert [p[name] for p in r["params"]] == list(r[f"param_{name}"])
    assert all(MAX_ATTR not in p for p in r["params"])
    assert (r["mean_fit_time"] > 0).all()
    return r


def test_single_fidelity_matches_cross_val_score_and_refits():
    X, y = load_iris(return_X_y=True)
    space = {"C": loguniform(1e-3, 10.0), "max_iter": 500}
    search = TuneSearchCV(LogisticRegression(), space, resource=None, cv=3, max_trials=4, n_workers=1,
                          random_state=0)
    assert search.fit(X, y) is search
    r = check_cv_results(search, 4)
    assert set(r["status"]) == {"completed"} and search.n_splits_ == 3
    # the ranking of one fidelity is by score: the best is the highest mean test score
    assert search.best_score_ == max(r["mean_test_score"])
    # every row is scikit-learn's own cross-validation of that config (same default splits)
    for params, mean in zip(r["params"], r["mean_test_score"], strict=True):
        ref = cross_val_score(LogisticRegression(**params), X, y, cv=3)
        assert mean == pytest.approx(ref.mean(), abs=1e-12)
    # refit on all of the data with the best parameters
    ref = LogisticRegression(**search.best_params_).fit(X, y)
    assert search.best_estimator_.get_params() == ref.get_params()
    np.testing.assert_array_equal(search.predict(X), ref.predict(X))
    np.testing.assert_allclose(search.predict_proba(X[:10]), ref.predict_proba(X[:10]))
    np.testing.assert_allclose(search.decision_function(X[:10]), ref.decision_function(X[:10]))
    assert search.score(X, y) == pytest.approx(ref.score(X, y))
    assert search.n_features_in_ == 4 and list(search.classes_) == [0, 1, 2]
    assert search.refit_time_ > 0 and search.scorer_ is not None


def test_same_random_state_same_search(digits):
    X, y = digits
    X, y = X[:600], y[:600]
    space = {"alpha": loguniform(1e-5, 1e-1)}

    def run(seed):
        s = TuneSearchCV(SGDClassifier(random_state=0), space, resource="n_samples", cv=3, max_trials=6,
                         n_workers=1, random_state=seed, refit=False)
        return s.fit(X, y).cv_results_

    a, b, c = run(3), run(3), run(4)
    assert a["params"] == b["params"]
    np.testing.assert_array_equal(a["mean_test_score"], b["mean_test_score"])
    assert a["params"] != c["params"]


def test_n_samples_resource_stops_trials_early_on_subsets(digits, tmp_path):
    X, y = digits
    space = {"alpha": loguniform(1e-6, 1.0), "penalty": choice(["l2", "l1"])}
    search = TuneSearchCV(SGDClassifier(random_state=0), space, resource="n_samples", max_resource=9, cv=3,
                          max_trials=12, n_workers=1, random_state=0, experiment_dir=tmp_path / "exp")
    search.fit(X, y)
    r = check_cv_results(search, 12)
    levels = set(r["n_resources"])
    assert levels <= {1, 3, 9} and 1 in levels and 9 in levels
    stopped = r["status"] == "stopped"
    assert stopped.sum() >= 6 and (r["n_resources"][stopped] < 9).all()
    assert (r["status"][r["n_resources"] == 9] == "completed").all()
    # level r trains on r/9 of a training fold (the first fold holds 2/3 of the 1797 samples)
    fold = 1198
    for level in (1, 3, 9):
        assert set(r["n_samples"][r["n_resources"] == level]) <= {math.ceil(fold * level / 9)}
    # the ranking puts trials that reached the full data first
    best = search.best_index_
    assert r["n_resources"][best] == 9
    assert all(r["rank_test_score"][i] > r["rank_test_score"][best] for i in range(12) if i != best)
    # the experiment folder is tunebench's: its event log holds the same trials
    exp = load_experiment(tmp_path / "exp")
    trials = exp.trials
    assert len(trials) == 12
    top = exp.best_trial()
    assert top is not None and top.trial_id == r["trial_id"][best] and top.value == search.best_score_
    assert search.predict(X[:5]).shape == (5,)


class IterCounter(ClassifierMixin, BaseEstimator):
    """A classifier that counts its training: ``score`` is ``iterations + 100 * fits`` since the
    last cold start (plus ``a / 100``, to rank the configs), so a test reads from the score how a
    trial was trained."""

    def __init__(self, a=1.0, max_iter=100, warm_start=False):
        self.a = a
        self.max_iter = max_iter
        self.warm_start = warm_start

    def fit(self, X, y):
        warm = self.warm_start and hasattr(self, "iters_")
        self.iters_ = (self.iters_ if warm else 0) + self.max_iter
        self.fits_ = (self.fits_ if warm else 0) + 1
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])

    def score(self, X, y):
        return self.iters_ + 100 * self.fits_ + 0.01 * self.a


def test_max_iter_resource_continues_with_warm_start():
    X, y = load_iris(return_X_y=True)
    search = TuneSearchCV(IterCounter(), {"a": loguniform(0.1, 1.0)}, resource="max_iter", max_resource=27, cv=2,
                          max_trials=9, n_workers=1, random_state=0)
    search.fit(X, y)
    r = check_cv_results(search, 9)
    rungs = [1, 3, 9, 27]
    for level, score, params in zip(r["n_resources"], r["mean_test_score"], r["params"], strict=True):
        # trained exactly `level` iterations, in one warm-started fit per rung
        assert score == pytest.approx(level + 100 * (rungs.index(level) + 1) + 0.01 * params["a"])
    assert (r["status"] == "stopped").any() and 27 in set(r["n_resources"])
    assert search.best_estimator_.max_iter == 27 and search.best_estimator_.iters_ == 27


def test_max_iter_resource_sgd_stops_some_trials_early(digits):
    X, y = digits
    search = TuneSearchCV(SGDClassifier(random_state=0), {"alpha": loguniform(1e-6, 1.0)}, resource="max_iter",
                          max_resource=9, cv=3, max_trials=9, n_workers=1, random_state=1)
    search.fit(X, y)
    r = check_cv_results(search, 9)
    assert (r["n_resources"] < 9).sum() >= 4 and (r["n_resources"] == 9).any()
    assert search.best_estimator_.max_iter == 9
    assert search.score(X, y) > 0.8


@pytest.mark.slow
def test_worker_processes_random_forest_and_promotion(digits, tmp_path):
    X, y = load_iris(return_X_y=True)
    space = {"n_estimators": randint(5, 30), "max_depth": randint(1, 6)}
    search = TuneSearchCV(RandomForestClassifier(random_state=0), space, resource="n_samples", max_resource=9,
                          cv=3, max_trials=8, n_workers=2, random_state=0, experiment_dir=tmp_path / "rf")
    search.fit(X, y)
    check_cv_results(search, 8)
    assert search.score(X, y) > 0.9 and len(load_experiment(tmp_path / "rf").trials) == 8
    # promotion-type ASHA through the pool: paused trials are resumed with their fold models
    X, y = digits
    search = TuneSearchCV(SGDClassifier(random_state=0), {"alpha": loguniform(1e-6, 1.0)}, method="ASHA-promotion",
                          resource="max_iter", max_resource=9, cv=3, max_trials=9, n_workers=2, random_state=0)
    search.fit(X, y)
    r = check_cv_results(search, 9)
    assert "paused" in set(r["status"]) and (r["n_resources"] == 9).any()


def test_failed_fits_rank_last_and_all_failed_is_one_line_error(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    space = {"C": loguniform(0.1, 1.0), "solver": choice(["lbfgs", "no-such-solver"])}
    search = TuneSearchCV(LogisticRegression(max_iter=200), space, resource=None, cv=2, max_trials=8, n_workers=1,
                          random_state=0)
    with pytest.warns(FitFailedWarning, match="no-such-solver"):
        search.fit(X, y)
    r = search.cv_results_
    failed = r["status"] == "failed"
    assert failed.any() and (~failed).any()
    assert np.isnan(r["mean_test_score"][failed]).all()
    assert r["rank_test_score"][failed].min() > r["rank_test_score"][~failed].max()
    bad = TuneSearchCV(LogisticRegression(), {"solver": choice(["nope", "neither"])}, resource=None, cv=2,
                       max_trials=2, n_workers=1, random_state=0)
    with pytest.warns(FitFailedWarning), pytest.raises(UserError, match="every config failed") as err:
        bad.fit(X, y)
    assert "\n" not in str(err.value) and "solver" in str(err.value)
    with pytest.raises(ValueError):  # error_score="raise": the fit's own error
        bad.set_params(error_score="raise").fit(X, y)


def test_bad_input_is_one_line_user_error(digits):
    X, y = digits
    with pytest.raises(UserError, match="'learning_rat' is not a parameter of LogisticRegression") as err:
        TuneSearchCV(LogisticRegression(), {"learning_rat": loguniform(0.1, 1.0)}).fit(X, y)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="max_iter parameter; RandomForestClassifier has none"):
        TuneSearchCV(RandomForestClassifier(), {"max_depth": randint(1, 5)}, resource="max_iter").fit(X, y)
    with pytest.raises(UserError, match="must not hold 'max_iter'"):
        TuneSearchCV(SGDClassifier(), {"max_iter": randint(1, 5)}, resource="max_iter").fit(X, y)
    with pytest.raises(UserError, match="resource must be"):
        TuneSearchCV(SGDClassifier(), {"alpha": 0.1}, resource="epochs").fit(X, y)
    with pytest.raises(UserError, match="stop criterion"):
        TuneSearchCV(SGDClassifier(), {"alpha": 0.1}, max_trials=None).fit(X, y)
    with pytest.raises(UserError, match="no config was evaluated"):
        TuneSearchCV(SGDClassifier(), {"alpha": loguniform(0.1, 1.0)}, max_wallclock_time=0, n_workers=1).fit(X, y)
    with pytest.raises(UserError, match="unknown method|NOPE"):
        TuneSearchCV(SGDClassifier(), {"alpha": loguniform(0.1, 1.0)}, method="NOPE", n_workers=1).fit(X, y)


# scikit-learn's own checks of an estimator (those that apply to a meta-estimator: fit/predict
# contracts, clone and get_params invariance, input validation, pickling, idempotent fits, ...),
# on small searches in this process (n_workers=1). Expected to fail: none. Each search estimator
# here passes every check that scikit-learn runs on it (the array-API checks skip themselves
# where their optional packages are absent).
EXPECTED_FAILED: dict[str, str] = {}
QUICK_SEARCHES = [
    TuneSearchCV(Ridge(), {"alpha": loguniform(0.01, 10.0)}, resource="n_samples", max_resource=3, cv=2,
                 max_trials=3, n_workers=1, random_state=0),
    TuneSearchCV(SGDClassifier(random_state=0), {"alpha": loguniform(1e-5, 1e-1)}, resource="max_iter",
                 max_resource=3, cv=2, max_trials=3, n_workers=1, random_state=0),
]


@parametrize_with_checks(QUICK_SEARCHES, expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    [TuneSearchCV(LogisticRegression(), {"C": loguniform(0.01, 10.0)}, resource=None, cv=2, max_trials=2,
                  n_workers=1, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_estimator_checks_single_fidelity(estimator, check):
    check(estimator)


def test_get_params_and_clone_keep_the_space():
    space = {"alpha": loguniform(1e-5, 1e-1)}
    search = TuneSearchCV(SGDClassifier(), space, max_trials=3)
    params = search.get_params()
    assert params["config_space"] is space and params["estimator__alpha"] == 0.0001
    assert clone(search).get_params()["max_trials"] == 3
