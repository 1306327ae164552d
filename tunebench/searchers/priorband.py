"""PriorBand's ensemble sampling policy: where a new Hyperband config comes from.

Mallik, Bergman, Hvarfner, Stoll, Janowski, Lindauer, Nardi, Hutter: "PriorBand: Practical
Hyperparameter Optimization in the Age of Deep Learning", NeurIPS 2023 (Sec. 4; the NePS code
was read to check the details, this is our own implementation).

Each new configuration of a Hyperband bracket whose first rung is rung ``r`` (0: the lowest
level) is drawn

* uniformly at random with probability ``p_U = 1 / (1 + eta**r)`` (the geometric weighting:
  half the configs of the most exploratory bracket, fewer as brackets start higher),
* from the prior or around the incumbent with the rest, ``1 - p_U``, split ``w_pi : w_inc``.

Before the incumbent is trusted everything goes to the prior (``w_inc = 0``). It is trusted once
the results in hand have used at least the resources of one full bracket 0 (its rungs with
their continuations: ``sum_k n_k (level_k - level_{k-1})``; each trial counts the level of the
highest rung it reached) and some trial has reached the last rung. Then, before each draw,
``w_pi : w_inc`` is set *dynamically*: take the highest rung with at least ``eta`` results
(none: ``w_pi = eta / (1 + eta)``), its best ``max(len // eta, eta)`` configs, and score each
under the prior's density and under a density of the same spreads centred at the incumbent
(:meth:`~tunebench.space.Prior.recentered`); with rank weights (the best config ``top_n``, the
next ``top_n - 1``, ...) the two weighted sums are normalized into ``w_pi`` and ``w_inc``.
The incumbent is the best config at the last rung. Sampling around it mutates each
hyperparameter with probability ``mutation_rate`` (at least one): a numeric one moves by a
normal step of ``mutation_std`` in the unit scale (kept in ``[0, 1]``), a choice takes another
category. The very first config is the prior's mode (``prior_first``); the scheduler runs it
to ``max_t`` outside the brackets by default (``prior_at_target``, see
:mod:`tunebench.schedulers.priorband`).

:class:`tunebench.schedulers.priorband.PriorBandScheduler` tells the searcher the first rung
of the bracket before each new config (:meth:`PriorBandSearcher.set_bracket`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunebench.searchers.base import Searcher
from tunebench.space import Choice, Prior, get_encoder, sample_configs
from tunebench.types import Config, Result, float_from_json, json_float, to_minimize

logger = logging.getLogger(__name__)

__all__ = ["PriorBandSearcher", "SOURCES"]

#: where a config comes from, in the order of :meth:`PriorBandSearcher.mixing_weights`
SOURCES = ("random", "prior", "incumbent")


class PriorBandSearcher(Searcher):
    """New configs by PriorBand's ensemble sampling policy (see the module docstring).

    Args:
        config_space, metric, mode, seed: as for every searcher.
        prior: the user's prior over ``config_space``.
        resource_attr: the reported resource.
        levels: the resource levels of the Hyperband ladder (``max_t`` last).
        reduction_factor: ``eta``.
        bracket0_sizes: trials at each rung of bracket 0 (for when the incumbent is trusted).
        mutation_rate, mutation_std: the local search around the incumbent.
        prior_first: the first config is the prior's mode.

    Raises:
        ValueError: invalid options (the message names the option).
    """

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str = "min", seed: int = 0, *,
                 prior: Prior, resource_attr: str, levels: Sequence[float], reduction_factor: float,
                 bracket0_sizes: Sequence[int], mutation_rate: float = 0.5, mutation_std: float = 0.25,
                 prior_first: bool = True) -> None:
        super().__init__(config_space, metric, mode, seed)
        if dict(prior.config_space) != dict(config_space):
            raise ValueError("the prior is over another config space than the searcher's")
        if not 0 < mutation_rate <= 1:
            raise ValueError(f"mutation_rate must be in (0, 1], got {mutation_rate!r}")
        if not 0 < mutation_std < math.inf:
            raise ValueError(f"mutation_std must be a number > 0, got {mutation_std!r}")
        self.prior = prior
        self.resource_attr = resource_attr
        self.levels = [float(v) for v in levels]
        self.eta = float(reduction_factor)
        self.mutation_rate = float(mutation_rate)
        self.mutation_std = float(mutation_std)
        self.prior_first = bool(prior_first)
        previous = [0.0, *self.levels[:-1]]
        #: resources of one full bracket 0 (rungs with their continuations)
        self.bracket0_resources = math.fsum(n * (lv - lo) for n, lv, lo in
                                            zip(bracket0_sizes, self.levels, previous, strict=False))
        self._encoder = get_encoder(config_space)
        self._rng = np.random.default_rng(seed)
        self._base_rung = 0
        self._configs: dict[int, Config] = {}
        self._values: dict[int, dict[int, float]] = {}  #: trial -> rung index -> value to minimize
        self._n_suggested = 0
        #: the weights and source of the last draw (diagnostics, tests)
        self.last_weights: tuple[float, float, float] = (0.0, 1.0, 0.0)
        self.last_source = "prior"

    # -- what the scheduler tells ----------------------------------------------------------

    def set_bracket(self, base_rung: int) -> None:
        """Called by the scheduler before each new config: the first rung of the bracket it
        fills (0: the lowest level)."""
        self._base_rung = int(base_rung)

    def _rung_of(self, resource: Any) -> int | None:
        try:
            r = float(resource)
        except (TypeError, ValueError):
            return None
        for k, level in enumerate(self.levels):
            if abs(r - level) <= 1e-9 * max(1.0, level):
                return k
        return None

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Record the result's value when it is at a level of the ladder."""
        k = self._rung_of(result.get(self.resource_attr))
        if k is None or self.metric not in result:
            return
        try:
            value = to_minimize(float(result[self.metric]), self.mode)
        except (TypeError, ValueError):
            return
        if math.isnan(value):
            value = math.inf
        self._configs.setdefault(trial_id, dict(config))
        self._values.setdefault(trial_id, {})[k] = value

    # -- the policy --------------------------------------------------------------------------

    def rung_values(self, k: int) -> list[tuple[float, int]]:
        """``(value to minimize, trial id)`` of every result at rung ``k``, best first."""
        return sorted((v[k], tid) for tid, v in self._values.items() if k in v)

    def incumbent(self) -> Config | None:
        """The best config at the highest rung with a result (None before any result)."""
        for k in range(len(self.levels) - 1, -1, -1):
            values = self.rung_values(k)
            if values:
                return self._configs[values[0][1]]
        return None

    def incumbent_active(self) -> bool:
        """Whether sampling around the incumbent is on (see the module docstring)."""
        if not self.rung_values(len(self.levels) - 1):
            return False
        used = math.fsum(self.levels[max(v)] for v in self._values.values() if v)
        return used >= self.bracket0_resources

    def prior_incumbent_ratio(self) -> tuple[float, float]:
        """``(w_pi, w_inc)``, summing to 1: the dynamic split of the module docstring."""
        inc = self.incumbent()
        eta = self.eta
        for k in range(len(self.levels) - 1, -1, -1):
            values = self.rung_values(k)
            if len(values) >= eta and inc is not None:
                top_n = max(int(len(values) // eta), int(math.ceil(eta)))
                top = [self._configs[tid] for _, tid in values[:top_n]]
                X = self._encoder.encode(top)
                log_p = self.prior.log_pdf(X)
                log_q = self.prior.recentered(inc).log_pdf(X)
                log_w = np.log(np.arange(len(top), 0, -1, dtype=float))
                a, b = log_p + log_w, log_q + log_w
                shift = max(float(a.max()), float(b.max()))
                sp, sq = float(np.exp(a - shift).sum()), float(np.exp(b - shift).sum())
                return sp / (sp + sq), sq / (sp + sq)
        return eta / (1 + eta), 1 / (1 + eta)

    def mixing_weights(self) -> tuple[float, float, float]:
        """``(p_random, p_prior, p_incumbent)`` of the next new config (see the module docstring)."""
        p_random = 1.0 / (1.0 + self.eta ** self._base_rung)
        if self.incumbent_active():
            w_prior, w_inc = self.prior_incumbent_ratio()
        else:
            w_prior, w_inc = 1.0, 0.0
        return p_random, (1 - p_random) * w_prior, (1 - p_random) * w_inc

    def _mutate(self, config: Config) -> Config:
        x = self._encoder.encode([config])[0]
        names = self._encoder.names
        picked = self._rng.random(len(names)) < self.mutation_rate
        if not picked.any():
            picked[self._rng.integers(len(names))] = True
        for name, on in zip(names, picked, strict=True):
            if not on:
                continue
            cols = self._encoder.slices[name]
            if isinstance(self.config_space[name], Choice):
                k = cols.stop - cols.start
                if k > 1:
                    current = int(np.argmax(x[cols]))
                    other = int(self._rng.integers(k - 1))
                    x[cols] = 0.0
                    x[cols.start + (other if other < current else other + 1)] = 1.0
            else:
                x[cols.start] = float(np.clip(x[cols.start] + self.mutation_std * self._rng.normal(), 0.0, 1.0))
        return self._encoder.decode(x[None, :])[0]

    def suggest(self, trial_id: int) -> Config:
        """Called for each new trial: the prior's mode first, then a draw from the source
        picked with :meth:`mixing_weights`. Never ``None``."""
        self._n_suggested += 1
        if self._n_suggested == 1 and self.prior_first:
            self.last_source = "prior"
            return self.prior.mode_config()
        weights = self.mixing_weights()
        self.last_weights = weights
        source = SOURCES[int(self._rng.choice(3, p=np.asarray(weights) / sum(weights)))]
        self.last_source = source
        if source == "random":
            return sample_configs(self.config_space, self._rng, 1)[0]
        if source == "prior":
            return self.prior.sample(self._rng, 1)[0]
        inc = self.incumbent()
        assert inc is not None  # incumbent sampling is on only with a result at the last rung
        return self._mutate(inc)

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: RNG, bracket, configs and their values at each rung."""
        return {
            "rng": self._rng.bit_generator.state,
            "base_rung": self._base_rung,
            "n_suggested": self._n_suggested,
            "configs": {str(t): c for t, c in self._configs.items()},
            "values": {str(t): {str(k): json_float(v) for k, v in vs.items()} for t, vs in self._values.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state of :meth:`state_dict`."""
        self._rng.bit_generator.state = state["rng"]
        self._base_rung = int(state["base_rung"])
        self._n_suggested = int(state["n_suggested"])
        self._configs = {int(t): dict(c) for t, c in state["configs"].items()}
        self._values = {int(t): {int(k): float_from_json(v) for k, v in vs.items()}
                        for t, vs in state["values"].items()}
