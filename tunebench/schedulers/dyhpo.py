"""DyHPO: a multi-fidelity race of configurations supervised by a GP over (config, resource).

Wistuba, Kadra, Grabocka: "Supervising the Multi-Fidelity Race of Hyperparameter
Configurations", NeurIPS 2022.  Every configuration advances one *fidelity step* at a time:

* the steps are fidelity levels ``r_0 < r_1 < ... < r_S = max_t``: by default geometric,
  ``grace_period * eta**k`` below ``max_t`` then ``max_t`` (Hyperband's rung levels: few pauses and
  resumes, each of which costs a restart from a checkpoint on a real backend); with ``step``,
  linear: ``grace_period, grace_period + step, ...`` then ``max_t`` (``grace_period=1, step=1``:
  one epoch per step, the paper's setting);
* a trial runs until it reports a resource at or above its next step, then it is paused
  (``Decision.PAUSE``) and goes back into the pool; a result past the next step (a script that
  reports coarsely, or raced ahead before being paused) moves the trial to the highest step at
  or below it; a trial reaching ``max_t`` ends (it completes, or is stopped when there is no
  ``max_resource_attr``);
* every decision (:meth:`DyHPO.suggest`) chooses among the *candidates*: each paused trial at its
  next step, and new configurations at the first step; the one with the largest expected
  improvement (EI) at its candidate fidelity wins: a paused trial is resumed (it continues from
  its checkpoint), a new configuration is started.  The EI at fidelity ``r_j`` is over the best
  value observed at ``r_j`` (each trial's first result at or above it); while nothing was
  observed there, over the best posterior mean at ``r_j`` among the configurations observed at
  the highest step below (the paper's "predicted" incumbent);
* the model is a GP (:class:`~tunebench.models.gp.GaussianProcess`, through
  :class:`~tunebench.searchers.gp.GPSurrogate`: the same refit schedule and subsampling as
  MOBSTER) over ``(encoded config, normalized log resource)``, fitted on every reported result;
  it replaces the paper's deep kernel (a GP whose kernel acts on learned features of the config,
  the budget and the learning curve so far): the resource column and the Matern kernel carry
  the correlation between fidelities, which is what the decision needs.  Running trials are
  fantasized at their next step (posterior mean), so parallel workers do not pile onto the same
  candidate;
* new configurations: ``points_to_evaluate``, then random ones during the first
  ``num_init_random`` trials; after that the new candidate is the maximizer of the EI at the first
  step (random candidates and a local search, :class:`~tunebench.models.acquisition.AcquisitionOptimizer`).

One bracket only: there is no rung, no quota, no promotion rule; the model decides everything.

:meth:`DyHPO.suggest_resume` (called when no new trial may start) makes the same decision but
answers only if a paused trial wins it (``None`` when a new configuration would be best, and
then nothing changes: the model update is made on a copy, the random draws are undone).  So
once the trial budget is spent, paused trials go on only while they are worth more than a fresh
start, and tuning ends when they are not.

Determinism and resume: given the seed and the calls the decisions are deterministic;
``state_dict`` holds the trials, observations, RNG and the GP's factorization schedule, and a
loaded scheduler rebuilds the very same model.
"""

from __future__ import annotations

import copy
import logging
import math
from bisect import bisect_right
from typing import Any

import numpy as np

from tunebench.errors import UserError
from tunebench.fidelity import FidelityLadder
from tunebench.models.acquisition import AcquisitionOptimizer, log_expected_improvement, row_keys
from tunebench.models.gp import GaussianProcess
from tunebench.schedulers.base import Scheduler, check_mode
from tunebench.schedulers.fifo import metric_to_minimize, result_resource
from tunebench.searchers.gp import GPSurrogate, _blas_threads
from tunebench.searchers.random import complete_config
from tunebench.space import Choice, get_encoder, hyperparameters, sample_configs, space_cardinality, validate_space
from tunebench.types import Config, Decision, Result, Status, Suggestion, Trial

logger = logging.getLogger(__name__)

__all__ = ["DyHPO", "fidelity_steps"]

_CONTINUE = Decision.CONTINUE
_PAUSE = Decision.PAUSE
_STOP = Decision.STOP
_RUNNING = Status.RUNNING
_PAUSED = Status.PAUSED
#: configs considered per step for a predicted incumbent (the best observed below it)
_PREDICTED_INCUMBENTS = 50


def _int_option(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def fidelity_steps(grace_period: float, reduction_factor: float, max_t: float,
                   step: float | None = None) -> list[float]:
    """The fidelity steps of DyHPO, ``max_t`` last: geometric (``step=None``: Hyperband's rung
    levels ``grace_period * eta**k`` below ``max_t``) or linear (``grace_period``,
    ``grace_period + step``, ... below ``max_t``).  E.g. ``(1, 3, 27) -> [1, 3, 9, 27]``,
    ``(1, 3, 5, step=2) -> [1, 3, 5]``.

    Raises:
        ValueError: invalid arguments (see :class:`~tunebench.fidelity.FidelityLadder`).
    """
    return _ladder(grace_period, reduction_factor, max_t, step).levels


def _ladder(grace_period: float, reduction_factor: float, max_t: float, step: float | None) -> FidelityLadder:
    if step is None:
        return FidelityLadder.geometric(max_t, grace_period, reduction_factor)
    return FidelityLadder.linear(max_t, grace_period, step)


class _DyTrial:
    __slots__ = ("config", "level", "last", "status")

    def __init__(self, config: Config):
        self.config = config
        self.level = -1  #: index of the highest step reached (-1: none yet)
        self.last: float = -math.inf  #: last resource reported
        self.status = _RUNNING


class _Candidates:
    """What one decision looked at (for :meth:`DyHPO.candidate_scores` and the decision)."""

    __slots__ = ("paused", "paused_scores", "new_config", "new_score", "surrogate")

    def __init__(self, surrogate: GPSurrogate) -> None:
        self.paused: list[int] = []
        self.paused_scores = np.empty(0)
        self.new_config: Config | None = None
        self.new_score = -math.inf
        self.surrogate = surrogate  #: the model that scored them


class DyHPO(Scheduler):
    """DyHPO (see the module docstring): trials advance one fidelity step per run; each
    decision resumes the paused trial or starts the new configuration with the largest
    expected improvement at its next step.

    Args:
        config_space: name -> domain or constant.
        metric: the metric to optimize.
        mode: ``"min"`` or ``"max"``.
        resource_attr: name of the reported resource (e.g. ``"epoch"``), increasing within a trial.
        max_t: resource at which a trial ends (the last step).
        grace_period: first step.
        reduction_factor: ``eta`` of the geometric steps.
        step: if given, linear steps ``step`` apart (from ``grace_period``) instead of geometric ones.
        max_resource_attr: name of the config entry the script reads its maximum resource from
            (e.g. ``"epochs"``); then a trial reaching ``max_t`` ends by itself (CONTINUE, then
            completed), else it is stopped there.
        seed: seed of the random number generator.
        points_to_evaluate: configs started first (missing keys take the space's defaults).
        num_init_random: trials (``points_to_evaluate`` included) started before the model
            decides; default ``max(5, number of hyperparameters + 1)``.
        n_candidates, n_starts, max_steps: the acquisition optimizer for new configurations (see
            :class:`~tunebench.models.acquisition.AcquisitionOptimizer`).
        input_warping, refit_factor, refit_every, max_model_points, max_fit_points: the GP and
            its schedule (see :class:`~tunebench.searchers.gp.GPSurrogate`).
        blas_threads: BLAS threads for the model (see :mod:`tunebench.searchers.gp`).

    Raises:
        ValueError: an invalid argument (the message names it).
    """

    resource_attr: str  #: always set (a constructor argument): narrows the base class's ``str | None``

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        *,
        resource_attr: str,
        max_t: float,
        grace_period: float = 1,
        reduction_factor: float = 3,
        step: float | None = None,
        max_resource_attr: str | None = None,
        seed: int = 0,
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        n_candidates: int = 200,
        n_starts: int = 2,
        max_steps: int = 8,
        input_warping: bool = False,
        refit_factor: float = 1.1,
        refit_every: int | None = None,
        max_model_points: int = 250,
        max_fit_points: int = 150,
        blas_threads: int | None = 1,
    ) -> None:
        validate_space(config_space)
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be the name of the reported metric, got {metric!r}")
        if not resource_attr or not isinstance(resource_attr, str):
            raise ValueError(f"resource_attr must be the name of the reported resource, got {resource_attr!r}")
        ladder = _ladder(grace_period, reduction_factor, max_t, step)
        self.config_space = config_space
        self.metric = metric
        self.mode = check_mode(mode)
        self.resource_attr = resource_attr
        self.max_resource_attr = max_resource_attr
        self.max_t = max_t
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.step = step
        self.seed = seed
        #: the fidelity steps, ``max_t`` last
        self.levels: list[float] = ladder.levels
        #: the validated fidelity ladder
        self.ladder = ladder
        self._stop_at_max_t = max_resource_attr is None
        self._encoder = get_encoder(config_space)
        if self._encoder.encoded_dim == 0:
            raise UserError("the config space has no hyperparameter to search (only constants)")
        self._points = [complete_config(config_space, p) for p in points_to_evaluate or []]
        if num_init_random is None:
            num_init_random = max(5, len(hyperparameters(config_space)) + 1)
        self.num_init_random = _int_option("num_init_random", num_init_random, 0)
        if blas_threads is not None:
            blas_threads = _int_option("blas_threads", blas_threads, 1)
        self.blas_threads = blas_threads
        self._optimizer = AcquisitionOptimizer(config_space, n_candidates=n_candidates, n_starts=n_starts,
                                               max_steps=max_steps)
        d = self._encoder.encoded_dim
        warp = None
        if input_warping:
            warp = [j for name in self._encoder.names if not isinstance(config_space[name], Choice)
                    for j in range(self._encoder.slices[name].start, self._encoder.slices[name].stop)] + [d]
        self._surrogate = GPSurrogate(d + 1, warp_dims=warp, refit_factor=refit_factor, refit_every=refit_every,
                                      max_model_points=max_model_points, max_fit_points=max_fit_points)
        self._min_r = float(self.levels[0])
        self._log_span = math.log(max_t / self._min_r) if max_t > self._min_r else 0.0
        self._cardinality = space_cardinality(config_space)
        self._rng = np.random.default_rng(seed)
        self._next_point = 0
        self._trials: dict[int, _DyTrial] = {}
        self._rows: dict[int, np.ndarray] = {}
        self._keys: set[bytes] = set()
        self._paused: dict[int, None] = {}  #: paused trials (ordered set)
        self._obs_tid: list[int] = []
        self._obs_r: list[float] = []
        self._obs_y: list[float] = []
        self._X = np.empty((64, d + 1))
        #: per step: trial id -> index of its first observation at or above the step
        self._level_obs: list[dict[int, int]] = [{} for _ in self.levels]

    # -- introspection -------------------------------------------------------------------------

    def normalize_resource(self, r: float) -> float:
        """Resource -> model input in [0, 1] (log scale between the first step and ``max_t``)."""
        if self._log_span == 0.0:
            return 1.0
        if r <= 0:
            return 0.0
        return min(1.0, max(0.0, math.log(r / self._min_r) / self._log_span))

    def trial_level(self, trial_id: int) -> float | None:
        """The highest step a known trial has reached (``None``: none yet)."""
        k = self._trials[trial_id].level
        return None if k < 0 else self.levels[k]

    def paused_trials(self) -> list[int]:
        """The paused trials (the resume candidates), in the order they were paused."""
        return list(self._paused)

    def candidate_scores(self) -> dict[int | str, float]:
        """For inspection and tests: the log EI of each paused trial at its next step and
        (key ``"new"``) of the best new configuration at the first step, with the model as the
        next decision would see it; empty before the model is used.  Changes nothing."""
        if len(self._obs_y) < 2:
            return {}
        state = self._rng.bit_generator.state
        try:
            cand = self._evaluate(allow_new=True, commit=False)
        finally:
            self._rng.bit_generator.state = state
        out: dict[int | str, float] = {t: float(s) for t, s in zip(cand.paused, cand.paused_scores, strict=True)}
        if cand.new_config is not None:
            out["new"] = float(cand.new_score)
        return out

    # -- observations --------------------------------------------------------------------------

    def _register(self, trial_id: int, config: Config) -> None:
        row = self._encoder.encode([config])[0]
        self._trials[trial_id] = _DyTrial(config)
        self._rows[trial_id] = row
        self._keys.add(row_keys(row[None, :])[0])

    def _observe(self, trial_id: int, r: float, value: float) -> None:
        if not math.isfinite(value):
            if not self._obs_y:
                return  # nothing to compare with yet: left out of the model
            value = max(self._obs_y)
        n = len(self._obs_y)
        if n == self._X.shape[0]:
            X = np.empty((2 * n, self._X.shape[1]))
            X[:n] = self._X
            self._X = X
        self._X[n, :-1] = self._rows[trial_id]
        self._X[n, -1] = self.normalize_resource(r)
        self._obs_tid.append(trial_id)
        self._obs_r.append(r)
        self._obs_y.append(float(value))
        for k, level in enumerate(self.levels):
            if r < level:
                break
            self._level_obs[k].setdefault(trial_id, n)

    def _select(self, n: int, budget: int) -> np.ndarray:
        """Subsample of the first ``n`` observations for the model: each trial's latest result
        (highest resources first, then best values), then an even spread of the others (highest
        resources first).  Deterministic."""
        tid = np.asarray(self._obs_tid[:n])
        r = np.asarray(self._obs_r[:n], dtype=float)
        y = np.asarray(self._obs_y[:n])
        latest = n - 1 - np.unique(tid[::-1], return_index=True)[1]
        latest = latest[np.lexsort((y[latest], -r[latest]))]
        if len(latest) >= budget:
            return np.sort(latest[:budget])
        others = np.setdiff1d(np.arange(n), latest, assume_unique=True)
        others = others[np.lexsort((others, -r[others]))]
        picks = np.unique(np.round(np.linspace(0, len(others) - 1, budget - len(latest))).astype(np.intp))
        return np.sort(np.concatenate([latest, others[picks]]))

    # -- decisions -----------------------------------------------------------------------------

    def _new_config_without_model(self) -> Config:
        if self._next_point < len(self._points):
            config = dict(self._points[self._next_point])
            self._next_point += 1
            return config
        exhausted = self._cardinality is not None and len(self._keys) >= self._cardinality
        config = sample_configs(self.config_space, self._rng, 1)[0]
        for _ in range(0 if exhausted else 100):
            if row_keys(self._encoder.encode([config]))[0] not in self._keys:
                break
            config = sample_configs(self.config_space, self._rng, 1)[0]
        return config

    def _incumbents(self, gp: GaussianProcess) -> np.ndarray:
        """Per step: the best value observed there, else the best posterior mean there among
        the configurations observed at the highest step below that has data."""
        y = self._obs_y
        best = np.full(len(self.levels), np.nan)
        below = -1
        for j, by_tid in enumerate(self._level_obs):
            if by_tid:
                best[j] = min(y[i] for i in by_tid.values())
                below = j
            elif below >= 0:
                src = self._level_obs[below]
                tids = sorted(src, key=lambda t: (y[src[t]], t))[:_PREDICTED_INCUMBENTS]
                Q = np.empty((len(tids), self._X.shape[1]))
                Q[:, :-1] = np.stack([self._rows[t] for t in tids])
                Q[:, -1] = self.normalize_resource(self.levels[j])
                best[j] = float(np.min(gp.predict(Q, return_var=False)[0]))
            else:  # nothing observed at or below this step (only before the first result)
                best[j] = min(y)
        return best

    def _evaluate(self, allow_new: bool, commit: bool) -> _Candidates:
        """Score the candidates with the model (updated on a copy unless ``commit``)."""
        n = len(self._obs_y)
        X = self._X[:n]
        y = np.asarray(self._obs_y)
        surrogate = self._surrogate if commit else copy.deepcopy(self._surrogate)
        cand = _Candidates(surrogate)
        with _blas_threads(self.blas_threads):
            gp = surrogate.update(X, y, self._select)
            running = [t for t, st in self._trials.items() if st.status is _RUNNING]
            if running:
                P = np.empty((len(running), X.shape[1]))
                for i, t in enumerate(running):
                    P[i, :-1] = self._rows[t]
                    P[i, -1] = self.normalize_resource(self._next_level(t))
                gp = gp.fantasize(P)
            best = self._incumbents(gp)
            cand.paused = list(self._paused)
            if cand.paused:
                nxt = [self._trials[t].level + 1 for t in cand.paused]
                Q = np.empty((len(cand.paused), X.shape[1]))
                Q[:, :-1] = np.stack([self._rows[t] for t in cand.paused])
                Q[:, -1] = [self.normalize_resource(self.levels[j]) for j in nxt]
                mean, var = gp.predict(Q)
                cand.paused_scores = log_expected_improvement(mean, var, best[nxt])
            if allow_new or cand.paused:
                r0 = self.normalize_resource(self.levels[0])
                best0 = float(best[0])

                def score(C: np.ndarray) -> np.ndarray:
                    Qn = np.empty((C.shape[0], C.shape[1] + 1))
                    Qn[:, :-1] = C
                    Qn[:, -1] = r0
                    mean, var = gp.predict(Qn)
                    return log_expected_improvement(mean, var, best0)

                found = self._optimizer.optimize(score, self._rng, exclude=self._keys)
                if found is not None:
                    cand.new_config = self._optimizer.decode(found[0][None, :])[0]
                    cand.new_score = float(found[1])
        return cand

    def _next_level(self, trial_id: int) -> float:
        k = self._trials[trial_id].level
        return self.levels[min(k + 1, len(self.levels) - 1)]

    def _start(self, trial_id: int, config: Config) -> Suggestion:
        self._register(trial_id, config)
        return Suggestion.start(dict(config))

    def _resume(self, trial_id: int) -> Suggestion:
        self._paused.pop(trial_id, None)
        self._trials[trial_id].status = _RUNNING
        return Suggestion.resume(trial_id)

    def _decide(self, trial_id: int, allow_new: bool) -> Suggestion | None:
        if allow_new and (self._next_point < len(self._points) or len(self._trials) < self.num_init_random
                          or len(self._obs_y) < 2):
            return self._start(trial_id, self._new_config_without_model())
        if not allow_new and (not self._paused or len(self._obs_y) < 2):
            return None
        rng_state = self._rng.bit_generator.state
        cand = self._evaluate(allow_new, commit=allow_new)
        i = int(np.argmax(cand.paused_scores)) if cand.paused else -1
        if i >= 0 and (cand.new_config is None or cand.paused_scores[i] >= cand.new_score):
            if not allow_new:
                self._surrogate = cand.surrogate
            return self._resume(cand.paused[i])
        if allow_new:
            config = cand.new_config if cand.new_config is not None else self._new_config_without_model()
            return self._start(trial_id, config)
        self._rng.bit_generator.state = rng_state  # a new configuration would be best: no change
        return None

    # -- contract ------------------------------------------------------------------------------

    def suggest(self, trial_id: int) -> Suggestion | None:
        """Called when a worker is free: the winner of the decision among the paused trials (at
        their next step) and a new configuration (at the first step), by expected improvement;
        a new configuration during the first ``num_init_random`` trials.  Never ``None``."""
        return self._decide(trial_id, allow_new=True)

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        """Called when no new trial may start: the same decision, answered only if a paused
        trial wins it (its resume); ``None`` (nothing changes) if a new configuration would be
        best or no trial is paused."""
        return self._decide(trial_id, allow_new=False)

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result: an observation of the model; PAUSE when the trial reached
        its next step (or went past it), CONTINUE below it; at ``max_t`` CONTINUE (the script
        ends by itself) or STOP (without ``max_resource_attr``).  A result whose resource is not
        above the trial's last one (re-reported after a restart) is ignored: CONTINUE.

        Raises:
            UserError: the result lacks the metric or the resource.
        """
        tid = trial.trial_id
        value = metric_to_minimize(result, self.metric, self.mode, tid)
        r = result_resource(result, self.resource_attr, tid)
        st = self._trials.get(tid)
        if st is None:  # a trial this scheduler did not start
            self._register(tid, dict(trial.config))
            st = self._trials[tid]
        if st.status is not _RUNNING:
            return _PAUSE if st.status is _PAUSED else _STOP
        if r <= st.last:
            return _CONTINUE
        st.last = r
        self._observe(tid, r, value)
        levels = self.levels
        if r >= levels[-1]:
            st.level = len(levels) - 1
            if self._stop_at_max_t:
                st.status = Status.STOPPED
                return _STOP
            return _CONTINUE
        if r >= levels[st.level + 1]:
            st.level = bisect_right(levels, r) - 1
            st.status = _PAUSED
            self._paused[tid] = None
            return _PAUSE
        return _CONTINUE

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called once when the trial's script exits normally: it is never resumed."""
        st = self._trials.get(trial.trial_id)
        if st is not None:
            st.status = Status.COMPLETED
            self._paused.pop(trial.trial_id, None)

    def on_error(self, trial: Trial) -> None:
        """Called once when the trial failed: it is never resumed (its results stay observations)."""
        st = self._trials.get(trial.trial_id)
        if st is not None:
            st.status = Status.FAILED
            self._paused.pop(trial.trial_id, None)

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot: trials, observations, RNG and the model's schedule."""
        trials = self._trials
        return {
            "rng": self._rng.bit_generator.state,
            "next_point": self._next_point,
            "trials": {
                "ids": list(trials),
                "configs": [st.config for st in trials.values()],
                "level": [st.level for st in trials.values()],
                "last": [None if st.last == -math.inf else st.last for st in trials.values()],
                "status": [st.status.value for st in trials.values()],
            },
            "paused": list(self._paused),
            "observations": {"trial": list(self._obs_tid), "resource": list(self._obs_r), "value": list(self._obs_y)},
            "surrogate": self._surrogate.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (taken with the same constructor arguments);
        the GP is rebuilt from the observations exactly as it was."""
        self._rng.bit_generator.state = state["rng"]
        self._next_point = int(state["next_point"])
        t = state["trials"]
        self._trials, self._rows, self._keys = {}, {}, set()
        configs = [dict(c) for c in t["configs"]]
        rows = self._encoder.encode(configs) if configs else np.empty((0, self._encoder.encoded_dim))
        for tid, config, row, key, level, last, status in zip(
                t["ids"], configs, rows, row_keys(rows), t["level"], t["last"], t["status"], strict=True):
            st = _DyTrial(config)
            st.level = int(level)
            st.last = -math.inf if last is None else last
            st.status = Status(status)
            self._trials[int(tid)] = st
            self._rows[int(tid)] = row
            self._keys.add(key)
        self._paused = {int(tid): None for tid in state["paused"]}
        obs = state["observations"]
        self._obs_tid, self._obs_r, self._obs_y = [], [], []
        self._X = np.empty((max(64, len(obs["value"])), self._X.shape[1]))
        self._level_obs = [{} for _ in self.levels]
        for tid, r, v in zip(obs["trial"], obs["resource"], obs["value"], strict=True):
            self._observe(int(tid), r, float(v))
        n = len(self._obs_y)
        self._surrogate.load_state_dict(state["surrogate"], self._X[:n], np.asarray(self._obs_y))
