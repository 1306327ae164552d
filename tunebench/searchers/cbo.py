"""Bayesian optimization under constraints: ``CBO`` and the ``BO-penalty`` baseline (L1).

A *constraint* bounds a reported metric (``--constraint "latency<=20"``,
:class:`tunebench.types.Constraint`); a result is feasible when the *slack* of every constraint
(:meth:`~tunebench.types.Constraint.slack`: ``value - bound`` for ``<=``, ``bound - value`` for
``>=``) is at most 0.  Both searchers are single-fidelity, like :class:`~tunebench.searchers.gp.GPSearcher`
(whose bookkeeping they inherit: initial random phase, pending trials, observations at the end of
a trial, model schedule, exact resume): a trial's objective *and* slacks are those of its final
result.

* :class:`ConstrainedGPSearcher` (method ``CBO``; Gardner et al. 2014, "Bayesian Optimization
  with Inequality Constraints"; Gelbart, Snoek, Adams 2014, "Bayesian Optimization with Unknown
  Constraints"; as Syne Tune's constrained BO): one GP on the objective (every observation,
  feasible or not: the objective is measured either way) and one GP per constraint on its slack.
  The acquisition is expected improvement times the probability of feasibility,
  ``EI(x) * prod_i P(slack_i(x) <= 0)``, computed as a sum of logarithms
  (:func:`~tunebench.models.acquisition.log_expected_improvement`,
  :func:`~tunebench.models.acquisition.log_probability_of_feasibility`): no underflow to 0 far
  from the incumbent or deep in the infeasible region, so the local search keeps a slope.  EI is
  taken over the best *feasible* observed value (an infeasible result never becomes the
  incumbent); while no observation is feasible, the acquisition is the probability of
  feasibility alone (find a feasible region first).  Pending trials are fantasized at the
  posterior mean in every model, as BO does.

* :class:`PenaltyGPSearcher` (method ``BO-penalty``, the baseline): plain BO (one GP, EI) on
  penalized values.  The rule: an infeasible result's value (in minimization form: negated for
  ``mode="max"``) is replaced by the worst value observed so far, feasible or not, its own
  included (``max(value, max(observed))``).  The replacement is made once, when the observation
  comes in, so observations are append-only like BO's (the model is never refactorized for
  an old row).

A non-finite slack (a NaN constraint metric reads as ``+inf``: infeasible) is modelled as
``+-scale``, ``scale`` the largest finite ``|slack|`` of that constraint observed so far (at least
1): infeasible (or feasible, for ``-inf``) by the widest margin seen, without breaking the GP.

Results must carry every constrained metric (the tuner checks it too); a result without one
raises a :class:`~tunebench.errors.UserError` naming it.

Determinism and resume: as :class:`~tunebench.searchers.gp.GPSearcher`; ``state_dict`` adds each
observation's slacks, the last slacks of running trials and the constraint models' states, so a
resumed searcher makes exactly the same suggestions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunebench.models.acquisition import log_expected_improvement, log_probability_of_feasibility
from tunebench.models.gp import GaussianProcess
from tunebench.searchers.gp import GPSearcher, GPSurrogate
from tunebench.types import Config, Constraint, Result, float_from_json, json_float

logger = logging.getLogger(__name__)

__all__ = ["ConstrainedGPSearcher", "PenaltyGPSearcher"]

Slacks = tuple[float, ...]


class _SlackGPSearcher(GPSearcher):
    """A :class:`GPSearcher` that also reads the slack of each constraint from every result and
    hands each new observation to :meth:`_observe_with` together with the slacks of the same
    result.  Subclasses decide what the slacks do."""

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        *,
        constraints: Sequence[Constraint],
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        **options: Any,
    ) -> None:
        constraints = tuple(constraints)
        if not constraints or not all(isinstance(c, Constraint) for c in constraints):
            raise ValueError(f"{type(self).__name__} needs at least one Constraint, got {constraints!r}")
        super().__init__(config_space, metric, mode, seed, points_to_evaluate=points_to_evaluate,
                         num_init_random=num_init_random, **options)
        self.constraints = constraints
        self._last_slacks: dict[int, Slacks] = {}  #: slacks of the last result of running trials
        self._final: Slacks | None = None  #: slacks of the result being observed (see _observe)

    def _slacks(self, result: Result, trial_id: int) -> Slacks:
        """The slack of each constraint in ``result`` (raises a ``UserError`` naming a missing metric)."""
        return tuple(c.slack(result, trial_id) for c in self.constraints)

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for every result: remembers the trial's last metric value and slacks (its
        observation if the scheduler stops it).

        Raises:
            UserError: the result lacks the metric or a constrained metric (the message names it).
        """
        value = self._value(result)
        slacks = self._slacks(result, trial_id)
        self._last[trial_id] = value
        self._last_slacks[trial_id] = slacks

    def on_complete(self, trial_id: int, config: Config, result: Result | None) -> None:
        """Called when the trial ends normally: its final result (value and slacks) becomes an
        observation."""
        if result is not None:
            self._value(result)  # a missing metric is named before a missing constrained metric
            slacks: Slacks | None = self._slacks(result, trial_id)
        else:
            slacks = self._last_slacks.get(trial_id)
        self._last_slacks.pop(trial_id, None)
        self._final = slacks
        try:
            super().on_complete(trial_id, config, result)
        finally:
            self._final = None

    def on_error(self, trial_id: int, config: Config) -> None:
        """Called when the trial failed: no observation, no longer pending."""
        self._last_slacks.pop(trial_id, None)
        super().on_error(trial_id, config)

    def on_stop(self, trial_id: int, config: Config, paused: bool) -> None:
        """Called when the scheduler stops or pauses the trial: its last value and slacks become
        an observation."""
        self._final = self._last_slacks.pop(trial_id, None)
        try:
            super().on_stop(trial_id, config, paused)
        finally:
            self._final = None

    def _observe(self, trial_id: int, config: Config | None, value: float) -> None:
        slacks = self._final
        assert slacks is not None, "an observation without the slacks of its result"  # set with the value
        self._observe_with(trial_id, config, value, slacks)

    def _observe_with(self, trial_id: int, config: Config | None, value: float, slacks: Slacks) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: :class:`GPSearcher`'s and the last slacks of running trials."""
        state = super().state_dict()
        state["last_slacks"] = {str(t): [json_float(s) for s in v] for t, v in self._last_slacks.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (on a searcher built with the same arguments)."""
        super().load_state_dict(state)
        self._last_slacks = {int(t): tuple(float_from_json(s) for s in v) for t, v in state["last_slacks"].items()}


class ConstrainedGPSearcher(_SlackGPSearcher):
    """Constrained Bayesian optimization (method ``CBO``): EI over the best feasible value times
    the probability of feasibility, one GP per constraint (see the module docstring).

    Args:
        config_space, metric, mode, seed, points_to_evaluate, num_init_random: as
            :class:`~tunebench.searchers.gp.GPSearcher`.
        constraints: at least one; each gets a GP on its slack.
        options: the model and optimizer options of :class:`~tunebench.searchers.gp.GPSearcher`
            (``input_warping``, ``refit_factor``, ``max_model_points``, ``n_candidates``, ...),
            shared by the objective's and the constraints' models.  The acquisition is always
            constrained EI.

    Raises:
        ValueError: no constraint, or an invalid option (the message names it).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        *,
        constraints: Sequence[Constraint],
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        **options: Any,
    ) -> None:
        for fixed in ("acquisition", "kappa"):
            if fixed in options:
                raise ValueError(f"{type(self).__name__} takes no option {fixed!r}: its acquisition is EI "
                                 "times the probability of feasibility")
        super().__init__(config_space, metric, mode, seed, constraints=constraints,
                         points_to_evaluate=points_to_evaluate, num_init_random=num_init_random, **options)
        self._constraint_models: list[GPSurrogate] = [self._make_surrogate() for _ in self.constraints]
        self._obs_slack: list[Slacks] = []  #: modelled slacks of each observation (finite)

    def _observe_with(self, trial_id: int, config: Config | None, value: float, slacks: Slacks) -> None:
        n = len(self._obs_y)
        GPSearcher._observe(self, trial_id, config, value)  # appends, unless left out
        if len(self._obs_y) > n:
            self._obs_slack.append(self._finite_slacks(slacks))

    def _finite_slacks(self, slacks: Slacks) -> Slacks:
        """``slacks`` with each non-finite one replaced by ``+-scale`` (see the module docstring)."""
        if all(math.isfinite(s) for s in slacks):
            return slacks
        out = []
        for j, s in enumerate(slacks):
            if not math.isfinite(s):
                scale = max([1.0, *(abs(row[j]) for row in self._obs_slack)])
                s = -scale if s < 0 else scale  # NaN cannot come (slack() reads it as +inf): infeasible
            out.append(s)
        return tuple(out)

    def _slack_matrix(self) -> np.ndarray:
        return np.asarray(self._obs_slack, dtype=float).reshape(len(self._obs_slack), len(self.constraints))

    def feasible_mask(self) -> np.ndarray:
        """Whether each observation (in arrival order) met every constraint."""
        mask: np.ndarray = np.all(self._slack_matrix() <= 0.0, axis=1)
        return mask

    def incumbent(self) -> float | None:
        """The best feasible observed value in minimization form (EI's incumbent), or ``None``
        while no observation is feasible."""
        feasible = self.feasible_mask()
        if not feasible.any():
            return None
        return float(np.min(np.asarray(self._obs_y)[feasible]))

    def _models(self) -> tuple[GaussianProcess, list[GaussianProcess]]:
        """The objective's and the constraints' GPs, up to date with the observations, the
        pending trials fantasized at their posterior means."""
        X = self._X.array
        S = self._slack_matrix()
        gp = self._surrogate.update(X, np.asarray(self._obs_y), self._select)
        models = [m.update(X, S[:, j], self._select) for j, m in enumerate(self._constraint_models)]
        if self._pending:
            P = np.stack([self._rows[t] for t in self._pending])
            gp = gp.fantasize(P)
            models = [m.fantasize(P) for m in models]
        return gp, models

    @staticmethod
    def _score(gp: GaussianProcess, models: list[GaussianProcess], best: float | None, C: np.ndarray) -> np.ndarray:
        """log EI(best) + sum of log PoF at the encoded rows ``C`` (PoF alone when ``best`` is None)."""
        total = np.zeros(C.shape[0])
        for model in models:
            mean, var = model.predict(C)
            total += log_probability_of_feasibility(mean, var)
        if best is not None:
            mean, var = gp.predict(C)
            total += log_expected_improvement(mean, var, best)
        return total

    def _check_ready(self) -> None:
        if len(self._obs_y) == 0:
            raise ValueError("the models need at least one observation")

    def log_acquisition(self, configs: Sequence[Config]) -> np.ndarray:
        """The logarithm of the acquisition at ``configs``: ``log EI + sum_i log P(slack_i <= 0)``
        over the best feasible value, or the log probability of feasibility alone while no
        observation is feasible.  For tests and diagnostics (:meth:`suggest` maximizes it): the
        models are brought up to date as :meth:`suggest` does (the same refits).

        Raises:
            ValueError: no observation yet.
        """
        self._check_ready()
        gp, models = self._models()
        return self._score(gp, models, self.incumbent(), self._encoder.encode(list(configs)))

    def probability_of_feasibility(self, configs: Sequence[Config]) -> np.ndarray:
        """``prod_i P(slack_i <= 0)`` at ``configs`` under the constraints' GPs (pending trials
        fantasized).  For tests and diagnostics, as :meth:`log_acquisition`.

        Raises:
            ValueError: no observation yet.
        """
        self._check_ready()
        _, models = self._models()
        pof: np.ndarray = np.exp(self._score(models[0], models, None, self._encoder.encode(list(configs))))
        return pof

    def _model_based_config(self) -> Config | None:
        gp, models = self._models()
        best = self.incumbent()
        starts = None
        if best is not None:  # the local search also starts from the best feasible config
            y = np.asarray(self._obs_y)
            feasible = np.flatnonzero(self.feasible_mask())
            i = feasible[np.argmin(y[feasible])]
            starts = self._X.array[i:i + 1]
        found = self._optimizer.optimize(lambda C: self._score(gp, models, best, C), self._rng, exclude=self._keys,
                                         starts=starts)
        if found is None:
            return None
        return self._optimizer.decode(found[0][None, :])[0]

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: :class:`GPSearcher`'s, each observation's slacks and the constraint
        models."""
        state = super().state_dict()
        state["slacks"] = [list(s) for s in self._obs_slack]
        state["constraint_models"] = [m.state_dict() for m in self._constraint_models]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (on a searcher built with the same arguments and
        constraints); every model is rebuilt exactly as it was."""
        super().load_state_dict(state)
        self._obs_slack = [tuple(float(s) for s in row) for row in state["slacks"]]
        if len(self._obs_slack) != len(self._obs_y) or len(state["constraint_models"]) != len(self.constraints):
            raise ValueError("the state does not match this searcher: slacks of "
                             f"{len(self._obs_slack)} observations for {len(self._obs_y)}, models of "
                             f"{len(state['constraint_models'])} constraints for {len(self.constraints)}")
        X, S = self._X.array, self._slack_matrix()
        for j, (model, model_state) in enumerate(zip(self._constraint_models, state["constraint_models"],
                                                     strict=True)):
            model.load_state_dict(model_state, X, S[:, j])


class PenaltyGPSearcher(_SlackGPSearcher):
    """BO with a penalty for infeasible results (method ``BO-penalty``, a baseline for ``CBO``):
    :class:`~tunebench.searchers.gp.GPSearcher` whose observation of an infeasible result is the
    worst value observed so far, feasible or not, its own included (see the module docstring).

    Args:
        constraints: at least one; a result is infeasible when it misses any.
        the others: as :class:`~tunebench.searchers.gp.GPSearcher` (``acquisition`` included).

    Raises:
        ValueError: no constraint, or an invalid option (the message names it).
    """

    def _observe_with(self, trial_id: int, config: Config | None, value: float, slacks: Slacks) -> None:
        if any(s > 0.0 for s in slacks) and math.isfinite(value):
            value = max([value, *self._obs_y])
        GPSearcher._observe(self, trial_id, config, value)  # a non-finite value: the worst one too

