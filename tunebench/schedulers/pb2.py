"""PB2: population-based bandits (Parker-Holder et al. 2020), PBT with a GP-bandit explore.

Everything is :class:`~tunebench.schedulers.pbt.PBT` (boundaries, quantiles, exploit) except
the config an exploiting trial takes: instead of a random perturbation, the mutable
*continuous* hyperparameters (floats and integers, log or not) are chosen by GP-UCB, within
the space's bounds; the other hyperparameters are copied from the source.

The model: each time a trial reaches a perturbation boundary ``b`` having been at boundary
``b'`` before (its lineage's previous one), the improvement of the metric over that interval
per resource unit, ``(v(b') - v(b)) / (b - b')`` (for a metric to minimize; the opposite for
one to maximize), is an observation at input ``(b / max_t, x)``, ``x`` the trial's continuous
hyperparameters encoded to the unit cube (log domains in the log space). The latest
``max_observations`` are kept; those within ``window`` intervals of the boundary that ends the
interval about to run (before or after it: the population is asynchronous, and a member that
joined late is modelled with the intervals at its own stage of training, not the leaders') are
fitted by the project's GP (:class:`tunebench.models.gp.GaussianProcess`, Matern 5/2 with one
lengthscale per input).

Time-varying kernel: PB2 multiplies a kernel on ``x`` by ``(1 - eps)^(|t - t'| / 2)`` so that
old intervals count less. Here time is one more input column with its own (fitted)
lengthscale: the product of the ARD Matern over ``(t, x)`` plays that part (a short
lengthscale in ``t`` forgets old intervals quickly), together with the window.

The new config maximizes ``mean + kappa * sd`` at ``t`` of the interval about to run, over
``n_candidates`` uniform points and as many points near the source's config (Gaussian steps of
0.1 in the unit cube) and the source's config itself. With fewer than ``min_observations``
observations (or no continuous mutable hyperparameter), PBT's random explore is used. The GP is
fitted afresh from its default hyperparameters at each exploit (deterministic given the
observations: nothing of it is kept in the state).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunebench.models.gp import GaussianProcess
from tunebench.schedulers.pbt import PBT, _Member
from tunebench.searchers.gp import _blas_threads
from tunebench.space import Float, Integer, repair_config
from tunebench.types import Config

logger = logging.getLogger(__name__)

__all__ = ["PB2"]


class PB2(PBT):
    """PBT whose explore step is a time-varying GP-UCB (see the module docstring).

    Args (besides those of :class:`~tunebench.schedulers.pbt.PBT`):
        kappa: weight of the standard deviation in the UCB (fixed; 1.0 rather than a growing
            GP-UCB schedule: with the nearly noise-free improvements of a population, 2.0 sent
            about half the explored configs to the corners of the space in the tests).
        n_candidates: uniform candidates (and as many local ones) scored by the UCB.
        window: the observations within this many intervals of the query's boundary are modelled.
        min_observations: fewer observations: PBT's random explore.
        max_observations: at most this many (the latest) observations are kept.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        *,
        kappa: float = 1.0,
        n_candidates: int = 256,
        window: int = 3,
        min_observations: int = 4,
        max_observations: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(config_space, metric, mode, **kwargs)
        if not kappa >= 0:
            raise ValueError(f"kappa must be >= 0, got {kappa!r}")
        for name, value in (("n_candidates", n_candidates), ("window", window),
                            ("min_observations", min_observations), ("max_observations", max_observations)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.kappa = kappa
        self.n_candidates = n_candidates
        self.window = window
        self.min_observations = min_observations
        self.max_observations = max_observations
        #: the mutable hyperparameters the GP-bandit chooses
        self.continuous = [n for n in self.mutable if isinstance(self._domains[n], (Float, Integer))]
        #: ``[boundary, {name: value of each continuous mutable}, improvement per resource unit]``
        self._observations: list[list[Any]] = []

    def _record(self, tid: int, m: _Member, boundary: float, score: float | None) -> None:
        """Keep the value and, when the lineage had a finite value at an earlier boundary, the
        improvement since as an observation."""
        previous = [v for v in m.values if v[0] < boundary]
        if previous and previous[-1][1] is not None and score is not None and self.continuous:
            b0, v0 = previous[-1]
            self._observations.append([boundary, {n: m.config[n] for n in self.continuous if n in m.config},
                                       (v0 - score) / (boundary - b0)])
            del self._observations[:-self.max_observations]
        super()._record(tid, m, boundary, score)

    def _encode(self, configs: Sequence[dict[str, Any]]) -> np.ndarray:
        # a parameter inactive in a config (a conditional space) at its default, as the GP encoder fills it
        cols = [self._domains[n].encode([c.get(n, self._domains[n].default()) for c in configs])[:, 0]
                for n in self.continuous]
        return np.stack(cols, axis=1)

    def explore(self, config: Config, source_id: int, resource: float) -> Config:
        """The source's config with its continuous mutable hyperparameters chosen by GP-UCB (the
        others copied); PBT's random explore while the model has too few observations."""
        if not self.continuous or not self._observations:
            return super().explore(config, source_id, resource)
        target = self._next_boundary(resource)  # the end of the interval about to run
        reach = self.window * self.perturbation_interval
        recent = [o for o in self._observations if abs(o[0] - target) < reach]
        if len(recent) < self.min_observations:
            return super().explore(config, source_id, resource)
        X = np.column_stack([np.array([o[0] / self.max_t for o in recent]), self._encode([o[1] for o in recent])])
        y = np.array([o[2] for o in recent], dtype=float)
        with _blas_threads(1):  # small matrices: one BLAS thread is fastest (see tunebench.models.gp)
            gp = GaussianProcess(X.shape[1]).fit(X, y, restart_from_default=False)
        d = len(self.continuous)
        here = self._encode([config])
        local = np.clip(here + self._rng.normal(0.0, 0.1, (self.n_candidates, d)), 0.0, 1.0)
        candidates = np.vstack([here, self._rng.random((self.n_candidates, d)), local])
        t = target / self.max_t
        with _blas_threads(1):
            mean, var = gp.predict(np.column_stack([np.full(len(candidates), t), candidates]))
        ucb = mean + self.kappa * np.sqrt(var)
        best = candidates[int(np.argmax(ucb))]
        new = dict(config)
        for j, name in enumerate(self.continuous):
            if name in config:  # (inactive ones stay absent)
                new[name] = self._domains[name].decode(best[j:j + 1].reshape(1, 1))[0]
        logger.debug("PB2: %d observations, UCB %.4g at %s", len(recent), float(np.max(ucb)), new)
        # a changed parent (e.g. an integer a width is conditioned on) switches others on or off
        return repair_config(self.config_space, new, self._rng)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: PBT's and the observations."""
        return {**super().state_dict(), "observations": self._observations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict`."""
        super().load_state_dict(state)
        self._observations = [[o[0], dict(o[1]), o[2]] for o in state["observations"]]

