"""OneEpochTopK: train random configurations for one fidelity step, then fully train the top K.

After the "one-epoch" baseline of Egele, Guyon, Wu, Balaprakash: "Is One Epoch All You Need For
Multi-Fidelity Hyperparameter Optimization?" (ESANN 2023): a low-fidelity screen of many random
configurations followed by the full training of the few best is a strong and cheap baseline for
multi-fidelity methods, which it often matches.  On the freeze-thaw race of
:mod:`tunebench.schedulers.freeze_thaw` (two steps only: ``grace_period`` and ``max_t``):

* the first ``n_configs`` trials are random configurations (``points_to_evaluate`` first); each is
  paused when it reports ``grace_period`` (one epoch by default);
* once every screened trial has reported its first step (or ended), the ``k`` best of them (by the
  value at the first step; ties by trial id) are resumed, best first, from their checkpoints and
  trained to ``max_t``: exactly ``k`` (fewer if fewer were screened), never any other;
* while a screened trial is still running its first step, :meth:`OneEpochTopK.suggest` answers
  ``None`` (a worker waits: the top K are not known yet);
* that is one *round*; once its top K are resumed, the next round screens ``n_configs`` new
  configurations (``rounds``: how many rounds; ``None``, the default, as many as the tuner's
  budget allows, so that a time budget is used up; ``rounds=1`` is the paper's protocol, after
  which :meth:`OneEpochTopK.suggest` answers ``None`` and tuning ends when the top K are done).
  With ``max_trials`` cutting a round short, the round is the trials started.

With 1 worker the screen costs ``n_configs * grace_period`` and the full trainings
``k * (max_t - grace_period)`` per round; the default ``n_configs=100`` (``k=3``) makes a round
of about ``100 + 3 * max_t`` epochs (lcbench, ``max_t=52``: about 250 epochs); for one round
filling a budget set ``rounds=1`` and ``n_configs`` to ``budget - k * max_t``.

Determinism and resume: the decisions depend only on the seed and the observations; the state is
the race's.
"""

from __future__ import annotations

import logging
from typing import Any

from tunebench.schedulers.freeze_thaw import FreezeThawRace, int_option
from tunebench.types import Config, Status, Suggestion

logger = logging.getLogger(__name__)

__all__ = ["OneEpochTopK"]

_RUNNING = Status.RUNNING
_PAUSED = Status.PAUSED


class OneEpochTopK(FreezeThawRace):
    """Screen ``n_configs`` random configs at ``grace_period``, train the top ``k`` to ``max_t``
    (see the module docstring).

    Args:
        config_space, metric, mode, resource_attr, max_t, max_resource_attr, seed,
        points_to_evaluate: as in :class:`~tunebench.schedulers.dyhpo.DyHPO`.
        grace_period: the screening fidelity (the first step; one epoch by default).
        n_configs: configurations screened per round (>= 1).
        k: how many of the best screened ones of a round are trained to ``max_t`` (>= 1).
        rounds: how many rounds (>= 1); ``None``: no limit.

    Raises:
        ValueError: an invalid argument (the message names it).
        UserError: a space with no hyperparameter to search.
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
        n_configs: int = 100,
        k: int = 3,
        rounds: int | None = None,
        max_resource_attr: str | None = None,
        seed: int = 0,
        points_to_evaluate: list[Config] | None = None,
    ) -> None:
        step = max_t - grace_period if max_t > grace_period else max_t
        super().__init__(
            config_space, metric, mode, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
            step=step, max_resource_attr=max_resource_attr, seed=seed, points_to_evaluate=points_to_evaluate,
            num_init_random=0,
        )
        self.n_configs = int_option("n_configs", n_configs, 1)
        self.k = int_option("k", k, 1)
        self.rounds = None if rounds is None else int_option("rounds", rounds, 1)

    def _round(self, r: int) -> list[int]:
        """The trials of round ``r`` (the ``n_configs`` started after the previous rounds')."""
        return list(self._trials)[r * self.n_configs:(r + 1) * self.n_configs]

    def top_k(self, r: int | None = None) -> list[int]:
        """The ``k`` best trials of round ``r`` (default: the last one started) by their value at
        the first step (best first; ties by trial id), among those observed there so far."""
        if r is None:
            r = max(len(self._trials) - 1, 0) // self.n_configs
        first = self._level_obs[0]
        y = self._obs_y
        observed = [tid for tid in self._round(r) if tid in first]
        return sorted(observed, key=lambda tid: (y[first[tid]], tid))[: self.k]

    def _decide(self, trial_id: int, allow_new: bool) -> Suggestion | None:
        n = len(self._trials)
        r = max(n - 1, 0) // self.n_configs  # the current round
        if allow_new and n < (r + 1) * self.n_configs:
            return self._start(trial_id, self._new_config_without_model())
        trials = self._trials
        if any(trials[t].status is _RUNNING and trials[t].level < 0 for t in self._round(r)):
            return None  # the round's top K are not known yet
        for tid in self.top_k(r):
            if trials[tid].status is _PAUSED:
                logger.debug("OneEpochTopK: training trial %d to max_t", tid)
                return self._resume(tid)
        if allow_new and (self.rounds is None or r + 1 < self.rounds):
            return self._start(trial_id, self._new_config_without_model())  # the next round
        return None
