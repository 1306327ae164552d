"""The blackbox contract (L2): a tuning problem evaluated by lookup or formula, not training.

A blackbox has a config space, fidelity values (e.g. epochs 1..52; a single value for a
single-fidelity problem), named objectives, and :meth:`Blackbox.evaluate`, vectorized over many
configurations: one call returns a whole learning curve per configuration. One objective, the
*elapsed-time* objective, holds the cumulative training time (seconds) at each fidelity; the
simulator backend uses it to advance simulated time.

The contract (checked by :mod:`tunebench.testing.blackbox_contract`):

* a configuration's values do not depend on the other configurations of the call, nor on the
  other fidelities asked for;
* **pieces equal the whole**: evaluating a curve in pieces (``fidelities=values[:k]``, then
  ``values[k:]``) gives the same values as evaluating it in one call. The simulator evaluates a
  ``cost_per_fidelity`` blackbox's curves piece by piece, as far as each trial gets; a blackbox
  that post-processes along the fidelities (a cumulative time, a running best) must compute each
  value from the fidelities up to it, whatever the call asks for;
* the elapsed-time objective is finite, ``>= 0`` and non-decreasing along the fidelities;
* ``evaluate`` receives the configuration alone: the simulator leaves the maximum-resource entry
  (``max_resource_attr``, e.g. ``epochs``) out of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tunebench.errors import UserError
from tunebench.space import Domain, hyperparameters
from tunebench.space.conditions import Condition
from tunebench.types import Config


class Blackbox(ABC):
    """A tabulated, surrogate or synthetic tuning problem.

    Attributes (set by subclasses):
        name: short identifier (e.g. ``"lcbench-3945"``).
        config_space: the hyperparameters (a tunebench config space; no fidelity in it).
        fidelity_name: name of the fidelity as reported (e.g. ``"epoch"``), None if single-fidelity.
        fidelity_values: sorted 1-d array of the fidelities that can be evaluated.
        objectives: names of the objectives, in the order of the last axis of :meth:`evaluate`.
        elapsed_time_attr: the objective with the cumulative training time in seconds at each
            fidelity (monotone non-decreasing along the fidelities), or None.
        n_seeds: number of seeds (repetitions) available; ``seed`` ranges over ``0..n_seeds-1``.
        optimum: known best value of some objectives (over configs, at the highest fidelity).
        cost_per_fidelity: evaluating the first ``k`` fidelities costs markedly less than the
            whole curve (a neural surrogate evaluates one input row per fidelity), and a value at
            a fidelity does not depend on which other fidelities are evaluated with it; the
            simulator then evaluates a trial's curve piece by piece, as far as the trial gets.
    """

    name: str = "blackbox"
    config_space: dict[str, Any]
    fidelity_name: str | None = None
    fidelity_values: np.ndarray
    objectives: tuple[str, ...]
    elapsed_time_attr: str | None = None
    n_seeds: int = 1
    optimum: dict[str, float] | None = None
    cost_per_fidelity: bool = False

    @abstractmethod
    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        """Values of every objective for ``configs`` at ``fidelity_values[fidelity_index]``.

        Called by :meth:`evaluate` with checked arguments. Returns a float array of shape
        ``(len(configs), len(fidelity_index), len(objectives))``.
        """

    def evaluate(self, configs: Sequence[Config], fidelities: Sequence[float] | np.ndarray | None = None,
                 seed: int = 0, check: bool = True) -> np.ndarray:
        """Evaluate ``configs`` (dicts of hyperparameter values) at ``fidelities`` (default: all).

        Returns an array of shape ``(n_configs, n_fidelities, n_objectives)``. Raises
        :class:`UserError` naming the problem for a config outside the space, a fidelity that is
        not one of :attr:`fidelity_values`, or a seed out of range (``check=False`` skips the
        checks, for callers that already validated their input).
        """
        if fidelities is None:
            index = np.arange(len(self.fidelity_values))
        else:
            index = self.fidelity_index(fidelities) if check else np.searchsorted(
                self.fidelity_values, np.asarray(fidelities))
        if check:
            if not 0 <= seed < self.n_seeds:
                raise UserError(f"{self.name}: seed {seed} is out of range; it has {self.n_seeds} seed(s) "
                                f"(0..{self.n_seeds - 1})")
            for config in configs:
                self.check_config(config)
        return self._evaluate(configs, index, seed)

    def fidelity_index(self, fidelities: Sequence[float] | np.ndarray) -> np.ndarray:
        """Positions of ``fidelities`` in :attr:`fidelity_values`; UserError for any other value."""
        values = np.asarray(fidelities, dtype=float).reshape(-1)
        index = np.searchsorted(self.fidelity_values, values)
        index_clipped = np.minimum(index, len(self.fidelity_values) - 1)
        bad = self.fidelity_values[index_clipped] != values
        if np.any(bad):
            lo, hi = self.fidelity_values[0], self.fidelity_values[-1]
            raise UserError(f"{self.name}: fidelity {values[bad][0]:g} is not available; "
                            f"{self.fidelity_name or 'fidelity'} takes values in {lo:g}..{hi:g} "
                            f"({len(self.fidelity_values)} values)")
        return index_clipped

    def check_config(self, config: Mapping[str, Any]) -> None:
        """UserError if ``config`` lacks an active hyperparameter or has a value outside its
        domain (an inactive conditional hyperparameter may be absent)."""
        for name, domain, condition in self._checked_parameters():
            if name not in config:
                if condition is not None and not condition.holds(config):
                    continue
                raise UserError(f"{self.name}: config {config} lacks the hyperparameter '{name}'")
            if not domain.contains(config[name]):
                raise UserError(f"{self.name}: {name}={config[name]!r} is outside its domain {domain!r}")

    def _checked_parameters(self) -> list[tuple[str, Domain, Condition | None]]:
        """``(name, domain, condition)`` of every hyperparameter, computed once per config space
        (:meth:`check_config` runs once per simulated trial). Recomputed when ``config_space`` is
        replaced or an entry of it is."""
        space = self.config_space
        key = (id(space), *map(id, space.values()))
        cached = self.__dict__.get("_checked")
        if cached is None or cached[0] != key:
            cached = (key, [(n, d, d.condition) for n, d in hyperparameters(space).items()])
            self.__dict__["_checked"] = cached
        return cached[1]

    def objective_index(self, name: str) -> int:
        """Position of objective ``name``; UserError listing the objectives otherwise."""
        try:
            return self.objectives.index(name)
        except ValueError:
            raise UserError(f"{self.name} has no objective '{name}'; its objectives are "
                            f"{', '.join(self.objectives)}") from None

    def learning_curve(self, config: Config, seed: int = 0) -> dict[str, np.ndarray]:
        """Objective name -> values over all fidelities for one configuration."""
        values = self.evaluate([config], seed=seed)[0]
        return {name: values[:, i] for i, name in enumerate(self.objectives)}

    def __repr__(self) -> str:
        fid = (f"{self.fidelity_name} {self.fidelity_values[0]:g}..{self.fidelity_values[-1]:g}"
               if self.fidelity_name else "single fidelity")
        return f"{type(self).__name__}({self.name!r}, {len(self.config_space)} params, {fid}, " \
               f"objectives={list(self.objectives)})"


@runtime_checkable
class PathDependentBlackbox(Protocol):
    """A blackbox whose training has a state (e.g. the synthetic ``pbt-schedule``): a value at a
    fidelity depends on the configurations in force at the epochs before it, not on the last
    one alone. The simulator replays a trial whose configuration changed (PBT) through
    :meth:`evaluate_schedule`; a stateless blackbox needs none (the curve of the new
    configuration from the same fidelity is exact for it)."""

    def evaluate_schedule(self, segments: Sequence[tuple[Config, int]],
                          fidelities: Sequence[float] | np.ndarray | None = None, seed: int = 0,
                          check: bool = True) -> np.ndarray:
        """The curve of one training whose configuration changes: ``segments`` are ``(config,
        first fidelity index)`` pairs sorted by index, the first at 0. Called by the simulator
        when a trial's configuration changes or it takes another trial's checkpoint. Returns an
        array ``(n_fidelities, n_objectives)``; one segment gives ``evaluate``'s curve."""
        ...
