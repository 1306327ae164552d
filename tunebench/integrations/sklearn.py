"""scikit-learn integration (layer L4; needs the ``sklearn`` extra): :class:`TuneSearchCV`.

A search estimator with scikit-learn's conventions (those of ``GridSearchCV``) whose trials are
chosen by a tunebench method::

    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier
    from tunebench.integrations.sklearn import TuneSearchCV
    from tunebench.space import choice, loguniform

    X, y = load_digits(return_X_y=True)
    search = TuneSearchCV(SGDClassifier(), {"alpha": loguniform(1e-6, 1e-1), "penalty": choice(["l2", "l1"])},
                          resource="max_iter", max_resource=27, max_trials=20, cv=3, random_state=0)
    search.fit(X, y)
    search.best_params_, search.best_score_, search.predict(X[:5])

What this module decides
------------------------
* **How trials run**: :class:`~tunebench.ask_tell.AskTell` driving a process pool of
  ``n_workers`` (joblib's loky executor, scikit-learn's own: fresh interpreters, no ``fork`` of a
  process whose OpenMP threads could hang the child, and no re-run of the main script, so no
  ``if __name__ == "__main__"`` guard is needed), not
  :func:`tunebench.tune`. The method's decisions, the event log and the experiment folder
  (``experiment_dir``: ``tunebench show`` reads it) are the same as the tuner's; what differs is
  who runs the work. ``tune(fn)`` would need the estimator and the data pickled to a file that
  each trial process reads again at every start, and a worker that re-fits from scratch on a
  promotion; here the estimator, the data and the CV splits reach each worker process once (the
  pool's initializer) and the models fitted at one rung travel back, so ``max_iter`` continues
  with ``warm_start`` where the estimator has it. It also keeps the import layers
  (``integrations`` sits below ``tune_function``). ``n_workers=1`` runs the folds in this
  process (no pool): what scikit-learn's own estimator checks and small searches want. The cost:
  a worker that crashes (segfault, out of memory) breaks the pool and ends :meth:`fit` with the
  error, where the local backend would fail that trial only.
* **One evaluation = one rung**: the config is cross-validated (every fold) at one resource
  level; its metric is the mean test score (``score``, maximized, scikit-learn's convention), its
  resource ``resource`` is the level (1, 3, 9, ... up to ``max_resource``: the levels of
  :class:`tunebench.fidelity.FidelityLadder`, which every multi-fidelity method shares). After
  each rung the method says go on (the next level), pause (a later promotion goes on) or stop.
* **Resources**: ``"n_samples"``: level ``r`` trains on ``r / max_resource`` of each training
  fold (a stratified subsample for classifiers, the same for every config; the test fold is
  whole); ``"max_iter"``: level ``r`` trains ``max_iter = r`` iterations, continuing the models
  of the previous level with ``warm_start`` when the estimator has that parameter (for the
  estimators of ``sklearn.ensemble``, whose ``max_iter`` counts all iterations, the total is set;
  for the others, SGD, logistic regression, MLP, the remaining iterations); ``None``: one
  evaluation per config, with the estimator's own settings (the method defaults to ``RS``).
* **Ranking** (``rank_test_score``, ``best_index_``): :meth:`AskTell.standings`, the rule of
  ``tunebench show``: trials that reached the highest resource first, then by score. Each
  trial's row in ``cv_results_`` holds the rung at which it scored its best.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from joblib.externals.loky import ProcessPoolExecutor  # type: ignore[import-untyped]  # joblib ships no types
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing, check_random_state, resample
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, indexable

from tunebench.ask_tell import AskTell
from tunebench.errors import UserError
from tunebench.fidelity import FidelityLadder
from tunebench.space import validate_space

__all__ = ["TuneSearchCV"]

logger = logging.getLogger(__name__)

#: the metric and the resource told to the method
METRIC, RESOURCE = "score", "resource"
RESOURCES = ("n_samples", "max_iter")
#: a constant of the space the method sees (never an estimator parameter): each trial's maximum
#: resource, so that a trial reaching it is told CONTINUE and completed (not stopped) and ranks
#: as having reached its maximum
MAX_ATTR = "tunebench_max_resource"
#: default ``max_resource`` of each resource (levels 1, 3, 9 and 27 / 9 with reduction factor 3)
_DEFAULT_MAX = {"n_samples": 9, "max_iter": 27}


@dataclass
class _Job:
    """What every evaluation needs besides the config: sent once to each worker process."""

    estimator: Any
    X: Any
    y: Any
    splits: list[tuple[np.ndarray, np.ndarray]]
    scorer: Any
    resource: str | None
    max_resource: int
    error_score: Any
    fit_params: dict[str, Any]
    seed: int
    warm_start: bool = False
    total_iter: bool = False  #: warm start counts all iterations (sklearn.ensemble), not the remaining ones


@dataclass
class _Outcome:
    """One rung of one config: per-fold scores and times (and the fitted models for a warm start)."""

    scores: list[float]
    fit_times: list[float]
    score_times: list[float]
    n_samples: int  #: training samples of the first fold
    models: list[Any] | None = None
    errors: list[str] = field(default_factory=list)  #: why fits failed (one line each)


def _subset_params(params: Mapping[str, Any], indices: np.ndarray, n: int) -> dict[str, Any]:
    """``fit_params`` for the rows ``indices``: array-likes of one entry per sample are indexed."""
    return {k: _safe_indexing(v, indices) if hasattr(v, "__len__") and not isinstance(v, str) and len(v) == n
            else v for k, v in params.items()}


def _evaluate(job: _Job, config: Mapping[str, Any], level: int, previous: int,
              models: list[Any] | None) -> _Outcome:
    """Cross-validate ``config`` at resource ``level`` (``previous``: the level of ``models``, the
    fitted fold models of a warm start, or None)."""
    n = job.X.shape[0] if hasattr(job.X, "shape") else len(job.X)
    scores, fit_times, score_times, fitted, errors = [], [], [], [], []
    n_train = 0
    for k, (train, test) in enumerate(job.splits):
        if job.resource == "n_samples" and level < job.max_resource:
            size = max(1, int(math.ceil(len(train) * level / job.max_resource)))
            strat = _safe_indexing(job.y, train) if is_classifier(job.estimator) and job.y is not None else None
            try:
                train = resample(train, replace=False, n_samples=size, stratify=strat, random_state=job.seed + k)
            except ValueError:  # too few samples to stratify: a plain subsample
                train = resample(train, replace=False, n_samples=size, random_state=job.seed + k)
        if models is not None:
            est = models[k]
            step = level if job.total_iter else level - previous
            est.set_params(max_iter=step)
        else:
            est = clone(job.estimator).set_params(**config)
            if job.resource == "max_iter":
                est.set_params(max_iter=level, **({"warm_start": True} if job.warm_start else {}))
        X_train, X_test = _safe_indexing(job.X, train), _safe_indexing(job.X, test)
        y_train = None if job.y is None else _safe_indexing(job.y, train)
        y_test = None if job.y is None else _safe_indexing(job.y, test)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                if job.resource == "max_iter":  # stopping short of convergence is what a low rung is
                    warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X_train, y_train, **_subset_params(job.fit_params, train, n))
        except Exception as e:
            if isinstance(job.error_score, str) and job.error_score == "raise":
                raise
            error = f"{type(e).__name__}: {e}".replace("\n", " ")
            warnings.warn(f"fitting {est!r} failed on fold {k}, its score is error_score={job.error_score}: "
                          f"{error}", FitFailedWarning, stacklevel=2)
            errors.append(error)
            fit_times.append(time.perf_counter() - t0)
            score_times.append(0.0)
            scores.append(float(job.error_score))
            fitted.append(est)
            continue
        fit_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scores.append(float(job.scorer(est, X_test, y_test)))
        score_times.append(time.perf_counter() - t0)
        fitted.append(est)
        n_train = n_train or len(train)
    return _Outcome(scores, fit_times, score_times, n_train, fitted if job.warm_start else None, errors)


_WORKER_JOB: _Job | None = None


def _worker_init(job: _Job) -> None:
    """The pool's initializer: keep the job in the worker process."""
    global _WORKER_JOB
    _WORKER_JOB = job


def _worker_evaluate(config: Mapping[str, Any], level: int, previous: int, models: list[Any] | None) -> _Outcome:
    """A pool task: :func:`_evaluate` with this worker's job."""
    assert _WORKER_JOB is not None, "the pool's initializer sets the job"
    return _evaluate(_WORKER_JOB, config, level, previous, models)


class _InlineExecutor(Executor):
    """Runs each task at once in this process (``n_workers=1``) and returns a done future; the
    task is always :func:`_worker_evaluate`'s, evaluated with this executor's job (no global)."""

    def __init__(self, job: _Job) -> None:
        self._job = job

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(_evaluate(self._job, *args))
        except BaseException as e:
            future.set_exception(e)
        return future


@dataclass
class _TrialRun:
    """One trial as the search drives it."""

    config: dict[str, Any]
    level_index: int = -1  #: the index in the ladder of the last level evaluated
    outcomes: dict[int, _Outcome] = field(default_factory=dict)  #: level -> outcome
    models: list[Any] | None = None  #: fitted fold models of the last level (warm start)
    error: str | None = None


def _estimator_has(attr: str) -> Any:
    """For :func:`available_if`: the fitted best estimator (else the unfitted one) has ``attr``."""

    def check(self: TuneSearchCV) -> bool:
        if hasattr(self, "best_estimator_"):
            getattr(self.best_estimator_, attr)
            return True
        getattr(self.estimator, attr)
        return True

    return check


class TuneSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search ``config_space`` for the best parameters of ``estimator`` by cross-validation,
    with a tunebench method (ASHA by default: configs that score badly on a small resource stop
    early).

    Args:
        estimator: a scikit-learn estimator (or one that follows its API).
        config_space: parameter name (as ``estimator.set_params`` takes it) -> domain of
            :mod:`tunebench.space` or constant.
        method: a registered method (``tunebench list --methods``); None: ``"ASHA"`` with a
            resource, ``"RS"`` without.
        resource: ``"n_samples"`` (growing subsets of each training fold), ``"max_iter"`` (the
            estimator's ``max_iter``), or None (every config evaluated once, in full).
        max_resource: the highest level: with ``"max_iter"`` the full ``max_iter``, with
            ``"n_samples"`` the number of parts of a training fold (level ``r`` trains on
            ``r / max_resource`` of it). Default 27 for ``"max_iter"``, 9 for ``"n_samples"``.
        cv, scoring, error_score: as for ``GridSearchCV`` (``cv`` an int, a splitter or an
            iterable of splits; ``scoring`` one scorer: a name, a callable or None for the
            estimator's ``score``).
        n_workers: configs evaluated at the same time (worker processes; 1: in this process).
        max_trials: configs started at most; ``max_wallclock_time``: seconds after which no more
            work starts (work running then finishes). Trials paused by a promotion-type method
            may still be promoted after ``max_trials`` is reached.
        refit: fit ``best_estimator_`` on all of ``X`` with the best parameters (and the full
            resource).
        random_state: seeds the method and the subsamples (an int for a repeatable search).
        experiment_dir: a new folder for the experiment (its event log, ``tunebench show``);
            None: nothing is written.
        method_options: the method's own options (e.g. ``grace_period``, ``reduction_factor``,
            ``type="promotion"``); JSON-able.

    Attributes (after :meth:`fit`): ``best_params_``, ``best_score_``, ``best_index_``,
    ``best_estimator_`` and ``refit_time_`` (with ``refit``), ``cv_results_`` (``GridSearchCV``'s
    format, one row per trial, plus ``trial_id``, ``status``, ``n_resources`` and ``n_samples``),
    ``n_splits_``, ``scorer_``, ``n_features_in_``, ``classes_`` (classifiers).
    """

    def __init__(
        self,
        estimator: Any,
        config_space: Mapping[str, Any],
        *,
        method: str | None = None,
        resource: str | None = "n_samples",
        max_resource: int | None = None,
        cv: Any = 5,
        scoring: Any = None,
        n_workers: int = 2,
        max_trials: int | None = 20,
        max_wallclock_time: float | None = None,
        refit: bool = True,
        random_state: Any = None,
        experiment_dir: str | Path | None = None,
        error_score: Any = np.nan,
        method_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.estimator = estimator
        self.config_space = config_space
        self.method = method
        self.resource = resource
        self.max_resource = max_resource
        self.cv = cv
        self.scoring = scoring
        self.n_workers = n_workers
        self.max_trials = max_trials
        self.max_wallclock_time = max_wallclock_time
        self.refit = refit
        self.random_state = random_state
        self.experiment_dir = experiment_dir
        self.error_score = error_score
        self.method_options = method_options

    # -- scikit-learn's estimator protocol ------------------------------------------------------

    def __sklearn_tags__(self) -> Any:
        """The tags of ``estimator`` where they say what the search is (classifier, regressor,
        its input)."""
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = deepcopy(inner.classifier_tags)
        tags.regressor_tags = deepcopy(inner.regressor_tags)
        tags.target_tags = deepcopy(inner.target_tags)
        tags.input_tags.pairwise = inner.input_tags.pairwise
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.array_api_support = inner.array_api_support
        return tags

    def _check_args(self) -> tuple[dict[str, Any], str, int | None]:
        """The validated space, method and maximum resource; UserError naming what is wrong."""
        space = dict(validate_space(dict(self.config_space)))
        valid = self.estimator.get_params(deep=True)
        for name in space:
            if name not in valid:
                raise UserError(f"config_space entry {name!r} is not a parameter of {type(self.estimator).__name__} "
                                f"(its parameters: {', '.join(sorted(valid))})")
        if self.resource not in (None, *RESOURCES):
            raise UserError(f"resource must be 'n_samples', 'max_iter' or None, got {self.resource!r}")
        if self.resource == "max_iter":
            if "max_iter" not in valid:
                raise UserError(f"resource='max_iter' needs an estimator with a max_iter parameter; "
                                f"{type(self.estimator).__name__} has none (use resource='n_samples')")
            if "max_iter" in space:
                raise UserError("config_space must not hold 'max_iter' with resource='max_iter' (the search sets it)")
        if self.max_trials is None and self.max_wallclock_time is None:
            raise UserError("give max_trials or max_wallclock_time (or both): the search needs a stop criterion")
        if not isinstance(self.n_workers, int) or self.n_workers < 1:
            raise UserError(f"n_workers must be an integer >= 1, got {self.n_workers!r}")
        if not isinstance(self.refit, bool):
            raise UserError(f"refit must be True or False, got {self.refit!r} (one scorer only)")
        if isinstance(self.scoring, (dict, list, tuple, set)):
            raise UserError("scoring must be one scorer (a name, a callable or None); several are not supported")
        method = self.method or ("RS" if self.resource is None else "ASHA")
        max_t = None
        if self.resource is not None:
            max_t = self.max_resource if self.max_resource is not None else _DEFAULT_MAX[self.resource]
            if not isinstance(max_t, int) or max_t < 1:
                raise UserError(f"max_resource must be an integer >= 1, got {max_t!r}")
        return space, method, max_t

    def fit(self, X: Any, y: Any = None, *, groups: Any = None, **fit_params: Any) -> TuneSearchCV:
        """Run the search on ``X``, ``y`` (``groups`` for a group splitter; ``fit_params`` go to
        ``estimator.fit``, indexed like ``X`` when they hold one entry per sample), then refit the
        best config on all of them. Returns ``self``.

        Raises:
            UserError: bad arguments (a space entry that is not a parameter of the estimator, an
                unknown method or resource, no stop criterion).
        """
        space, method, max_t = self._check_args()
        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, y, groups)]
        self.n_splits_ = len(splits)
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        rs = self.random_state
        seed = int(rs) if isinstance(rs, (int, np.integer)) else int(check_random_state(rs).randint(2**31 - 1))
        est_params = self.estimator.get_params()
        warm = self.resource == "max_iter" and "warm_start" in est_params
        job = _Job(self.estimator, X, y, splits, self.scorer_, self.resource, max_t or 1, self.error_score,
                   dict(fit_params), seed, warm_start=warm,
                   total_iter=type(self.estimator).__module__.startswith("sklearn.ensemble"))
        levels = ([int(x) for x in FidelityLadder.geometric(max_t, **_ladder_options(self.method_options)).levels]
                  if max_t is not None else [0])
        told_space = dict(space) if max_t is None else {**space, MAX_ATTR: max_t}
        at = AskTell(method, told_space, metric=METRIC, mode="max",
                     resource_attr=RESOURCE if max_t is not None else None,
                     max_resource_attr=MAX_ATTR if max_t is not None else None, max_t=max_t,
                     experiment_dir=self.experiment_dir, seed=seed, **dict(self.method_options or {}))
        try:
            runs = self._search(at, job, levels)
            standings = at.standings()
        finally:
            at.close()
        self._set_results(runs, standings, levels)
        if self.refit:
            best = clone(self.estimator).set_params(**self.best_params_)
            if self.resource == "max_iter":
                best.set_params(max_iter=max_t)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                if self.resource == "max_iter":  # the search set max_iter: not converging is its budget
                    warnings.simplefilter("ignore", ConvergenceWarning)
                best.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - t0
            self.best_estimator_ = best
            if hasattr(best, "n_features_in_"):
                self.n_features_in_ = best.n_features_in_
            if hasattr(best, "feature_names_in_"):
                self.feature_names_in_ = best.feature_names_in_
        return self

    def _search(self, at: AskTell, job: _Job, levels: list[int]) -> dict[int, _TrialRun]:
        """The ask/tell loop over the pool; returns every trial started."""
        runs: dict[int, _TrialRun] = {}
        deadline = None if self.max_wallclock_time is None else time.monotonic() + self.max_wallclock_time
        executor: Executor
        if self.n_workers == 1:
            executor = _InlineExecutor(job)
        else:
            executor = ProcessPoolExecutor(self.n_workers, initializer=_worker_init, initargs=(job,))
        running: dict[Future[_Outcome], tuple[int, int]] = {}

        def submit(tid: int) -> None:
            run = runs[tid]
            index = run.level_index + 1
            previous = levels[run.level_index] if run.level_index >= 0 else 0
            future = executor.submit(_worker_evaluate, run.config, levels[index], previous, run.models)
            running[future] = (tid, index)

        try:
            while True:
                out_of_time = deadline is not None and time.monotonic() >= deadline
                while len(running) < self.n_workers and not out_of_time:
                    may_start = self.max_trials is None or len(runs) < self.max_trials
                    asked = at.ask(resume_only=not may_start)
                    if asked is None:
                        break
                    config = {k: v for k, v in asked.config.items() if k != MAX_ATTR}
                    if asked.trial_id not in runs:
                        runs[asked.trial_id] = _TrialRun(config)
                    else:  # resumed: the method may have changed its config (PBT)
                        runs[asked.trial_id].config = config
                    submit(asked.trial_id)
                if not running:
                    return runs
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    tid, index = running.pop(future)
                    self._decide(at, runs[tid], tid, index, future, levels, submit, deadline)
        finally:
            for future in running:
                future.cancel()
            executor.shutdown(wait=True)

    def _decide(self, at: AskTell, run: _TrialRun, tid: int, index: int, future: Future[_Outcome],
                levels: list[int], submit: Any, deadline: float | None) -> None:
        """Tell the method one rung's result and act on its decision (past the ``deadline``, a
        trial to go on stays where it is: logged as interrupted when the search closes)."""
        outcome = future.result()  # an error_score="raise" failure ends fit here
        run.level_index = index
        run.models = outcome.models
        level = levels[index]
        run.outcomes[level] = outcome
        score = float(np.mean(outcome.scores))
        if not math.isfinite(score):
            run.error = outcome.errors[0] if outcome.errors else f"mean test score {score}"
            run.models = None
            at.fail(tid, run.error)
            return
        result: dict[str, Any] = {METRIC: score, "std_score": float(np.std(outcome.scores)),
                                  "fit_time": float(np.mean(outcome.fit_times)), "n_samples": outcome.n_samples}
        if at.resource_attr is not None:
            result[RESOURCE] = level
        decision = at.tell(tid, result)
        if decision == "CONTINUE" and index + 1 < len(levels):
            if deadline is None or time.monotonic() < deadline:
                submit(tid)
        elif decision == "CONTINUE":
            run.models = None
            at.complete(tid)
        elif decision == "STOP":
            run.models = None

    def _set_results(self, runs: dict[int, _TrialRun], standings: list[Any], levels: list[int]) -> None:
        """``cv_results_`` and the ``best_*`` attributes from the trials and their ranking."""
        if not runs:
            raise UserError(f"no config was evaluated (max_wallclock_time={self.max_wallclock_time} s, "
                            f"max_trials={self.max_trials}): give the search more time or trials")
        if not standings:
            first = next((r.error for r in runs.values() if r.error), "no result")
            raise UserError(f"every config failed ({len(runs)} tried); the first error: {first}")
        ids = sorted(runs)
        row = {tid: i for i, tid in enumerate(ids)}
        n = len(ids)
        rank = np.full(n, n, dtype=np.int32)
        chosen: dict[int, int | None] = {tid: None for tid in ids}
        status = {tid: "failed" for tid in ids}
        for position, s in enumerate(standings):
            rank[row[s.trial_id]] = position + 1
            chosen[s.trial_id] = int(s.resource) if s.resource is not None else levels[0]
            status[s.trial_id] = s.status.value
        n_splits = self.n_splits_
        scores = np.full((n, n_splits), np.nan)
        fit_t, score_t = np.full((n, n_splits), np.nan), np.full((n, n_splits), np.nan)
        n_resources = np.zeros(n, dtype=np.int64)
        n_samples = np.zeros(n, dtype=np.int64)
        for tid in ids:
            run = runs[tid]
            level = chosen[tid]
            if level is None and run.outcomes:  # failed: its last rung
                level = max(run.outcomes)
            if level is None:
                continue
            o = run.outcomes[level]
            i = row[tid]
            scores[i], fit_t[i], score_t[i] = o.scores, o.fit_times, o.score_times
            n_resources[i], n_samples[i] = level, o.n_samples
        results: dict[str, Any] = {"trial_id": np.asarray(ids), "status": np.asarray([status[t] for t in ids])}
        results["mean_fit_time"], results["std_fit_time"] = _mean_std(fit_t)
        results["mean_score_time"], results["std_score_time"] = _mean_std(score_t)
        params = [runs[tid].config for tid in ids]
        names = sorted({k for p in params for k in p})
        for name in names:
            column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
            for i, p in enumerate(params):
                if name in p:
                    column[i] = p[name]
            results[f"param_{name}"] = column
        results["params"] = params
        for k in range(n_splits):
            results[f"split{k}_test_score"] = scores[:, k]
        results["mean_test_score"], results["std_test_score"] = _mean_std(scores)
        results["rank_test_score"] = rank
        results["n_resources"] = n_resources
        results["n_samples"] = n_samples
        self.cv_results_ = results
        self.best_index_ = row[standings[0].trial_id]
        self.best_params_ = dict(params[self.best_index_])
        self.best_score_ = float(results["mean_test_score"][self.best_index_])
        self.n_trials_ = n

    # -- delegation to the best estimator -------------------------------------------------------

    @property
    def classes_(self) -> Any:
        """The classes of the best estimator (classifiers)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    def _best(self) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    @available_if(_estimator_has("predict"))
    def predict(self, X: Any) -> Any:
        """``best_estimator_.predict(X)``."""
        return self._best().predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """``best_estimator_.predict_proba(X)``."""
        return self._best().predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """``best_estimator_.predict_log_proba(X)``."""
        return self._best().predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """``best_estimator_.decision_function(X)``."""
        return self._best().decision_function(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        """``best_estimator_.transform(X)``."""
        return self._best().transform(X)

    @available_if(_estimator_has("inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        """``best_estimator_.inverse_transform(X)``."""
        return self._best().inverse_transform(X)

    @available_if(_estimator_has("score_samples"))
    def score_samples(self, X: Any) -> Any:
        """``best_estimator_.score_samples(X)``."""
        return self._best().score_samples(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The search's scorer (``scoring``) on ``X``, ``y`` with ``best_estimator_``."""
        return float(self.scorer_(self._best(), X, y))


def _ladder_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method options that shape the resource levels (as the multi-fidelity methods read them)."""
    options = options or {}
    return {k: options[k] for k in ("grace_period", "reduction_factor", "rung_levels") if k in options}


def _mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row means and standard deviations (NaN where a fold has none, as ``GridSearchCV``)."""
    return np.mean(values, axis=1), np.std(values, axis=1)

