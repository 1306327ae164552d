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
The race (steps, pausing, observations, their state) is :class:`~tunebench.schedulers.freeze_thaw.FreezeThawRace`,
shared with FTBO; this module adds the GP and the EI decision.

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
from typing import Any

import numpy as np

from tunebench.models.acquisition import AcquisitionOptimizer, log_expected_improvement
from tunebench.models.gp import GaussianProcess
from tunebench.schedulers.freeze_thaw import ModelBasedRace, RaceScores, fidelity_steps, int_option
from tunebench.searchers.gp import GPSurrogate, _blas_threads
from tunebench.space import Choice
from tunebench.types import Config, Status

logger = logging.getLogger(__name__)

__all__ = ["DyHPO", "fidelity_steps"]

_RUNNING = Status.RUNNING

class DyHPO(ModelBasedRace):
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
        step: if given, linear steps ``step`` apart (from ``grace_period``) instead of geometric ones;
            ``"auto"``: one grace period per step until a resumed script restarts without its
            checkpoint, then geometric pauses (see :mod:`tunebench.schedulers.freeze_thaw`).
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
        super().__init__(
            config_space, metric, mode, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
            reduction_factor=reduction_factor, step=step, max_resource_attr=max_resource_attr, seed=seed,
            points_to_evaluate=points_to_evaluate, num_init_random=num_init_random,
        )
        if blas_threads is not None:
            blas_threads = int_option("blas_threads", blas_threads, 1)
        self.blas_threads = blas_threads
        self._optimizer = AcquisitionOptimizer(config_space, n_candidates=n_candidates, n_starts=n_starts,
                                               max_steps=max_steps)
        d = self._encoder.encoded_dim
        warp = None
        if input_warping:
            warp = [j for name in self._encoder.names if not isinstance(config_space[name], Choice)
                    for j in range(self._encoder.slices[name].start, self._encoder.slices[name].stop)] + [d]
        self._model: GPSurrogate = GPSurrogate(d + 1, warp_dims=warp, refit_factor=refit_factor,
                                               refit_every=refit_every, max_model_points=max_model_points,
                                               max_fit_points=max_fit_points)

    # -- decisions -----------------------------------------------------------------------------

    def _incumbents(self, gp: GaussianProcess) -> np.ndarray:
        """Per step: the race's incumbents (:meth:`_level_incumbents`) under the GP's mean."""

        def predict_mean(rows: np.ndarray, j: int) -> np.ndarray:
            Q = np.empty((len(rows), self._X.shape[1]))
            Q[:, :-1] = rows
            Q[:, -1] = self.normalize_resource(self.levels[j])
            mean: np.ndarray = gp.predict(Q, return_var=False)[0]
            return mean

        return self._level_incumbents(np.asarray(self._obs_y), predict_mean)

    def _evaluate(self, allow_new: bool, commit: bool) -> RaceScores:
        """Score the candidates with the model (updated on a copy unless ``commit``)."""
        n = len(self._obs_y)
        X = self._X[:n]
        y = np.asarray(self._obs_y)
        surrogate = self._model if commit else copy.deepcopy(self._model)
        cand = RaceScores(surrogate)
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

    # -- state ---------------------------------------------------------------------------------

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (taken with the same constructor arguments);
        the GP is rebuilt from the observations exactly as it was."""
        super().load_state_dict(state)
        n = len(self._obs_y)
        self._model.load_state_dict(state["surrogate"], self._X[:n], np.asarray(self._obs_y))
