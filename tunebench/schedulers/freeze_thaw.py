"""The freeze-thaw race shared by DyHPO and FTBO: trials advance one fidelity step per run.

* the steps are fidelity levels ``r_0 < r_1 < ... < r_S = max_t``: by default geometric,
  ``grace_period * eta**k`` below ``max_t`` then ``max_t`` (Hyperband's rung levels: few pauses and
  resumes, each of which costs a restart from a checkpoint on a real backend); with ``step``,
  linear: ``grace_period, grace_period + step, ...`` then ``max_t`` (``grace_period=1, step=1``:
  one epoch per step); ``step="auto"``: linear with ``step = grace_period`` (one epoch per step
  where the grace period is one epoch) as long as resumed trials continue from their checkpoints,
  geometric pauses from the first resume whose script restarted instead (see below);
* a trial runs until it reports a resource at or above its next step, then it is paused
  (``Decision.PAUSE``) and goes back into the pool; a result past the next step (a script that
  reports coarsely, or raced ahead before being paused) moves the trial to the highest step at
  or below it; a trial reaching ``max_t`` ends (it completes, or is stopped when there is no
  ``max_resource_attr``);
* a resumed trial whose first result goes back before its last one restarted without a checkpoint
  (it retrains from the start, re-reporting what it reported before: ignored; the tuner and
  ask/tell drop those results and call :meth:`FreezeThawRace.on_restart` instead).  With ``step="auto"``
  the first such restart switches the race to coarse pauses for the rest of the run: a trial then
  runs on to the next geometric level (Hyperband's rung levels, ``grace_period * eta**k``) before
  it pauses, the steps between stay observations, so a script without checkpoints retrains
  ``O(log max_t)`` times per trial instead of once per step.  The simulator and scripts that
  checkpoint never restart: they keep one step per pause.

:class:`FreezeThawRace` owns that bookkeeping (trials, the paused pool, the observations, the
state of all of it); a subclass owns the model and the decision (:meth:`FreezeThawRace._decide`):
which paused trial to resume or which new configuration to start.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

import numpy as np

from tunebench.errors import UserError
from tunebench.fidelity import FidelityLadder
from tunebench.models.acquisition import row_keys
from tunebench.schedulers.base import Scheduler, check_mode
from tunebench.schedulers.fifo import metric_to_minimize, result_resource
from tunebench.searchers.random import complete_config
from tunebench.space import get_encoder, hyperparameters, sample_configs, space_cardinality, validate_space
from tunebench.types import Config, Decision, Result, Status, Suggestion, Trial

logger = logging.getLogger(__name__)

__all__ = ["FreezeThawRace", "ModelBasedRace", "RaceScores", "fidelity_steps", "int_option"]

_CONTINUE = Decision.CONTINUE
_PAUSE = Decision.PAUSE
_STOP = Decision.STOP
_RUNNING = Status.RUNNING
_PAUSED = Status.PAUSED


def int_option(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int, checked ``>= minimum``.

    Raises:
        ValueError: not an integer, or below ``minimum`` (the message names ``name``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


#: ``step`` of a race whose steps are the grace period until a resumed script restarts (see the module docstring)
AUTO_STEP = "auto"


def fidelity_steps(grace_period: float, reduction_factor: float, max_t: float,
                   step: float | str | None = None) -> list[float]:
    """The fidelity steps of a freeze-thaw race, ``max_t`` last: geometric (``step=None``:
    Hyperband's rung levels ``grace_period * eta**k`` below ``max_t``) or linear
    (``grace_period``, ``grace_period + step``, ... below ``max_t``; ``step="auto"``: ``step =
    grace_period``).  E.g. ``(1, 3, 27) -> [1, 3, 9, 27]``, ``(1, 3, 5, step=2) -> [1, 3, 5]``.

    Raises:
        ValueError: invalid arguments (see :class:`~tunebench.fidelity.FidelityLadder`).
    """
    return _ladder(grace_period, reduction_factor, max_t, step).levels


def _ladder(grace_period: float, reduction_factor: float, max_t: float,
            step: float | str | None) -> FidelityLadder:
    if step == AUTO_STEP:
        return FidelityLadder.linear(max_t, grace_period, grace_period)
    if isinstance(step, str):
        raise ValueError(f"step must be a number > 0, 'auto' or None (geometric steps), got {step!r}")
    if step is None:
        return FidelityLadder.geometric(max_t, grace_period, reduction_factor)
    return FidelityLadder.linear(max_t, grace_period, step)


class _RaceTrial:
    __slots__ = ("config", "level", "last", "status", "resumed")

    def __init__(self, config: Config):
        self.config = config
        self.level = -1  #: index of the highest step reached (-1: none yet)
        self.last: float = -math.inf  #: last resource reported
        self.status = _RUNNING
        self.resumed = False  #: resumed and no result since (its first one tells a restart)


class FreezeThawRace(Scheduler):
    """Base of the freeze-thaw schedulers (see the module docstring).

    A subclass implements :meth:`_decide` (the decision of :meth:`suggest` and
    :meth:`suggest_resume`) and extends :meth:`state_dict` / :meth:`load_state_dict` with its
    model's state.

    Args:
        config_space, metric, mode, resource_attr, max_t, grace_period, reduction_factor, step,
        max_resource_attr, seed, points_to_evaluate, num_init_random: as in
        :class:`~tunebench.schedulers.dyhpo.DyHPO`.

    Raises:
        ValueError: an invalid argument (the message names it).
        UserError: a space with no hyperparameter to search.
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
        step: float | str | None = None,
        max_resource_attr: str | None = None,
        seed: int = 0,
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
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
        #: ``step="auto"``: where a trial pauses once a script restarted (the geometric levels)
        self._coarse: list[float] | None = (
            _ladder(grace_period, reduction_factor, max_t, None).levels if step == AUTO_STEP else None)
        #: ``step="auto"``: a resumed script restarted, pauses are coarse from now on
        self._coarse_pauses = False
        self._stop_at_max_t = max_resource_attr is None
        self._encoder = get_encoder(config_space)
        if self._encoder.encoded_dim == 0:
            raise UserError("the config space has no hyperparameter to search (only constants)")
        self._points = [complete_config(config_space, p) for p in points_to_evaluate or []]
        if num_init_random is None:
            num_init_random = max(5, len(hyperparameters(config_space)) + 1)
        self.num_init_random = int_option("num_init_random", num_init_random, 0)
        self._min_r = float(self.levels[0])
        self._log_span = math.log(max_t / self._min_r) if max_t > self._min_r else 0.0
        self._cardinality = space_cardinality(config_space)
        self._rng = np.random.default_rng(seed)
        self._next_point = 0
        self._trials: dict[int, _RaceTrial] = {}
        self._rows: dict[int, np.ndarray] = {}
        self._keys: set[bytes] = set()
        self._paused: dict[int, None] = {}  #: paused trials (ordered set)
        self._obs_tid: list[int] = []
        self._obs_r: list[float] = []
        self._obs_y: list[float] = []
        #: per observation: the encoded config, then the normalized log resource
        self._X = np.empty((64, self._encoder.encoded_dim + 1))
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

    # -- observations --------------------------------------------------------------------------

    def _register(self, trial_id: int, config: Config) -> None:
        row = self._encoder.encode([config])[0]
        self._trials[trial_id] = _RaceTrial(config)
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

    # -- decisions -----------------------------------------------------------------------------

    def _new_config_without_model(self) -> Config:
        """The next of ``points_to_evaluate``, else a random config not seen yet (if any is left)."""
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

    def _in_initial_design(self) -> bool:
        """Whether a new trial now is one of the initial ones (chosen without the model)."""
        return (self._next_point < len(self._points) or len(self._trials) < self.num_init_random
                or len(self._obs_y) < 2)

    def _next_level(self, trial_id: int) -> float:
        k = self._trials[trial_id].level
        return self.levels[min(k + 1, len(self.levels) - 1)]

    def _start(self, trial_id: int, config: Config) -> Suggestion:
        self._register(trial_id, config)
        return Suggestion.start(dict(config))

    def _resume(self, trial_id: int) -> Suggestion:
        self._paused.pop(trial_id, None)
        st = self._trials[trial_id]
        st.status = _RUNNING
        st.resumed = True
        return Suggestion.resume(trial_id)

    def _pause_level(self, st: _RaceTrial) -> float:
        """The resource at which a running trial pauses: its next step, or with coarse pauses
        (``step="auto"`` after a restart) the next geometric level above its step."""
        nxt = self.levels[st.level + 1]
        if not self._coarse_pauses or self._coarse is None:
            return nxt
        return next(level for level in self._coarse if level >= nxt)

    def _restarted(self, trial_id: int) -> None:
        """A resumed trial re-reported an old resource: its script has no checkpoint."""
        if self._coarse is not None and not self._coarse_pauses:
            self._coarse_pauses = True
            logger.info("trial %s restarted from the start when resumed (no checkpoint): from now on trials run "
                        "to the next of the levels %s before they pause (step='auto')", trial_id, self._coarse)

    @abstractmethod
    def _decide(self, trial_id: int, allow_new: bool) -> Suggestion | None:
        """The decision: a new config (only if ``allow_new``) or the resume of a paused trial;
        ``None`` (with no change of state) if ``allow_new`` is false and no paused trial wins."""

    # -- contract ------------------------------------------------------------------------------

    def suggest(self, trial_id: int) -> Suggestion | None:
        """Called when a worker is free: the winner of the decision among the paused trials and
        a new configuration; a new configuration during the initial design.  Never ``None``."""
        return self._decide(trial_id, allow_new=True)

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        """Called when no new trial may start: the same decision, answered only if a paused
        trial wins it (its resume); ``None`` (nothing changes) if a new configuration would be
        best or no trial is paused."""
        return self._decide(trial_id, allow_new=False)

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result: an observation of the model; PAUSE when the trial reached
        its next step (or went past it; with coarse pauses, see the module docstring: the next
        geometric level), CONTINUE below it; at ``max_t`` CONTINUE (the script ends by itself) or
        STOP (without ``max_resource_attr``).  A result whose resource is not above the trial's last
        one (re-reported after a restart) is ignored: CONTINUE.

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
            if r < st.last and st.resumed:  # went back: restarted (equal: its checkpointed resource re-reported)
                self._restarted(tid)
                st.resumed = False
            return _CONTINUE
        st.resumed = False
        st.last = r
        self._observe(tid, r, value)
        levels = self.levels
        if r >= levels[-1]:
            st.level = len(levels) - 1
            if self._stop_at_max_t:
                st.status = Status.STOPPED
                return _STOP
            return _CONTINUE
        if r >= self._pause_level(st):
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

    def on_restart(self, trial: Trial) -> None:
        """Called by the tuner or ask/tell when the resumed trial's script restarted without its
        checkpoint (its old results re-reported are dropped before :meth:`on_result`): with
        ``step="auto"`` the race switches to coarse pauses (see the module docstring)."""
        st = self._trials.get(trial.trial_id)
        if st is not None:
            st.resumed = False
        self._restarted(trial.trial_id)

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot of the race: trials, observations, RNG (a subclass adds its model's)."""
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
                "resumed": [st.resumed for st in trials.values()],
            },
            "coarse_pauses": self._coarse_pauses,
            "paused": list(self._paused),
            "observations": {"trial": list(self._obs_tid), "resource": list(self._obs_r), "value": list(self._obs_y)},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the race from a snapshot of :meth:`state_dict` (same constructor arguments)."""
        self._rng.bit_generator.state = state["rng"]
        self._next_point = int(state["next_point"])
        t = state["trials"]
        self._trials, self._rows, self._keys = {}, {}, set()
        configs = [dict(c) for c in t["configs"]]
        rows = self._encoder.encode(configs) if configs else np.empty((0, self._encoder.encoded_dim))
        resumed = t.get("resumed", [False] * len(configs))  # absent from snapshots before step="auto"
        for tid, config, row, key, level, last, status, res in zip(
                t["ids"], configs, rows, row_keys(rows), t["level"], t["last"], t["status"], resumed, strict=True):
            st = _RaceTrial(config)
            st.resumed = bool(res)
            st.level = int(level)
            st.last = -math.inf if last is None else last
            st.status = Status(status)
            self._trials[int(tid)] = st
            self._rows[int(tid)] = row
            self._keys.add(key)
        self._paused = {int(tid): None for tid in state["paused"]}
        self._coarse_pauses = bool(state.get("coarse_pauses", False))
        obs = state["observations"]
        self._obs_tid, self._obs_r, self._obs_y = [], [], []
        self._X = np.empty((max(64, len(obs["value"])), self._X.shape[1]))
        self._level_obs = [{} for _ in self.levels]
        for tid, r, v in zip(obs["trial"], obs["resource"], obs["value"], strict=True):
            self._observe(int(tid), r, float(v))


class RaceScores:
    """What one model-based decision looked at: the paused trials and their scores, the best new
    configuration and its score (higher is better), and the model that scored them."""

    __slots__ = ("paused", "paused_scores", "new_config", "new_score", "surrogate")

    def __init__(self, surrogate: Any) -> None:
        self.paused: list[int] = []
        self.paused_scores = np.empty(0)
        self.new_config: Config | None = None
        self.new_score = -math.inf
        self.surrogate = surrogate  #: the model that scored them


#: configurations a predicted per-step incumbent is taken over (:meth:`ModelBasedRace._level_incumbents`)
PREDICTED_INCUMBENTS = 50


class ModelBasedRace(FreezeThawRace):
    """A race whose every decision scores the paused trials and the best new configuration under
    a model and takes the highest (DyHPO, FTBO): the decision and :meth:`candidate_scores` are
    here; a subclass sets ``_model`` (an object with ``state_dict()``, held in this race's
    :meth:`state_dict` under ``"surrogate"``), scores (:meth:`_evaluate`) and restores the model in
    :meth:`load_state_dict`."""

    _model: Any  #: the subclass's model (set in its constructor)

    @abstractmethod
    def _evaluate(self, allow_new: bool, commit: bool) -> RaceScores:
        """Called at each decision (and by :meth:`candidate_scores`): fit the model (in place if
        ``commit``, else on a copy) and score each paused trial and, if ``allow_new`` or a trial
        is paused, the best new configuration. Must return the scores with the model used."""

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

    def _level_incumbents(self, values: np.ndarray, predict_mean: Callable[[np.ndarray, int], np.ndarray]
                          ) -> np.ndarray:
        """Per step ``j``, the incumbent an acquisition at ``j`` improves on (DyHPO's rule): the
        best of ``values`` (one per observation, in the model's units) among each trial's first
        observation at or above the step; for a step nothing reached yet, the best
        ``predict_mean(rows, j)`` of the (at most :data:`PREDICTED_INCUMBENTS`) best configurations
        observed at the highest step below (the paper's "predicted" incumbent); before any
        observation reached the first step, the best value observed."""
        best = np.full(len(self.levels), np.nan)
        below = -1
        for j, by_tid in enumerate(self._level_obs):
            if by_tid:
                best[j] = min(values[i] for i in by_tid.values())
                below = j
            elif below >= 0:
                src = self._level_obs[below]
                tids = sorted(src, key=lambda t: (values[src[t]], t))[:PREDICTED_INCUMBENTS]
                best[j] = float(np.min(predict_mean(np.stack([self._rows[t] for t in tids]), j)))
            else:
                best[j] = float(np.min(values))
        return best

    def _adopt(self, surrogate: Any) -> None:
        """Called when a decision made on a copy of the model (``commit=False``) resumes a trial:
        keep that copy as the model."""
        self._model = surrogate

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot: the race (trials, observations, RNG) and the model's own state."""
        state = super().state_dict()
        state["surrogate"] = self._model.state_dict()
        return state

    def candidate_scores(self) -> dict[int | str, float]:
        """For inspection and tests: the score of each paused trial and (key ``"new"``) of the best
        new configuration, as the next decision would see them; empty before the model is used.
        Changes nothing."""
        if len(self._obs_y) < 2:
            return {}
        state = self._rng.bit_generator.state
        try:
            scores = self._evaluate(allow_new=True, commit=False)
        finally:
            self._rng.bit_generator.state = state
        out: dict[int | str, float] = {t: float(v) for t, v in zip(scores.paused, scores.paused_scores, strict=True)}
        if scores.new_config is not None:
            out["new"] = float(scores.new_score)
        return out

    def _decide(self, trial_id: int, allow_new: bool) -> Suggestion | None:
        if allow_new and self._in_initial_design():
            return self._start(trial_id, self._new_config_without_model())
        if not allow_new and (not self._paused or len(self._obs_y) < 2):
            return None
        rng_state = self._rng.bit_generator.state
        scores = self._evaluate(allow_new, commit=allow_new)
        i = int(np.argmax(scores.paused_scores)) if scores.paused else -1
        if i >= 0 and (scores.new_config is None or scores.paused_scores[i] >= scores.new_score):
            if not allow_new:
                self._adopt(scores.surrogate)
            return self._resume(scores.paused[i])
        if allow_new:
            config = scores.new_config if scores.new_config is not None else self._new_config_without_model()
            return self._start(trial_id, config)
        self._rng.bit_generator.state = rng_state  # a new configuration would be best: no change
        return None
