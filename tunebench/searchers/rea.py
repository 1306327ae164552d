"""Regularized evolution (REA) as a searcher, and what evolutionary searchers share.

Real, Aggarwal, Huang, Le: "Regularized Evolution for Image Classifier Architecture Search",
AAAI 2019 (arXiv:1802.01548), Algorithm 1, made asynchronous:

* the *population* is the last ``population_size`` evaluated configurations with their values
  (to minimize); when a new one enters a full population, the **oldest** member dies (not the
  worst: this is the "regularization" of the paper's title, which favours configurations that
  stay good when re-evaluated and keeps the search moving);
* the first ``population_size`` suggestions are random (``points_to_evaluate`` first), and so
  is any suggestion made while no evaluation has finished yet;
* afterwards a *tournament* of ``sample_size`` members is drawn at random (without
  replacement), its best member is the parent, and the child is the parent with exactly one
  hyperparameter changed (:meth:`REASearcher.mutate`).

The value of a trial is its final result (:meth:`REASearcher.on_complete`), or its last result
when the scheduler stops or pauses it (:meth:`REASearcher.on_stop`), so REA also works inside
ASHA (stopped trials enter with their value at the rung they reached).

:class:`EvolutionarySearcher` holds what REA shares with the multi-objective evolutionary
searchers (MOREA in :mod:`tunebench.searchers.morea`, NSGA-II in :mod:`tunebench.searchers.nsga2`):
the random start, the population of evaluated configurations and how trials join it, the
mutation, and the JSON state. A subclass says what a trial's value is (:meth:`~EvolutionarySearcher._value`),
who survives when a member joins (:meth:`~EvolutionarySearcher._select`) and how a child is made
(:meth:`~EvolutionarySearcher._offspring`).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections import deque
from typing import Any

import numpy as np

from tunebench.searchers.base import Searcher
from tunebench.searchers.random import RandomSearcher
from tunebench.space import Choice, Domain, hyperparameters, is_conditional, repair_config, validate_space
from tunebench.types import Config, Objectives, Result, float_from_json, json_float, to_minimize

logger = logging.getLogger(__name__)

__all__ = ["EvolutionarySearcher", "REASearcher", "mutate_value", "mutation_candidates", "objective_vector"]

#: draws of a new value before falling back to a neighbouring one (see :func:`mutate_value`)
MAX_MUTATION_TRIES = 32


def mutation_candidates(config_space: dict[str, Any]) -> list[str]:
    """Names of the hyperparameters a mutation can change: the domains with at least two
    values (constants and one-value domains such as ``uniform(1, 1)`` are left out)."""
    names = []
    for name, domain in hyperparameters(config_space).items():
        n = domain.cardinality
        if n is None:
            # no count: a continuous domain (Float), which has bounds
            if domain.low < domain.high:  # type: ignore[attr-defined]  # bounds: not on the Domain base class
                names.append(name)
        elif n > 1:
            names.append(name)
    return names


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same type (``True`` is not ``1``)."""
    return type(a) is type(b) and a == b


def mutate_value(domain: Domain, value: Any, rng: np.random.Generator, local_move_prob: float,
                 local_scale: float) -> Any:
    """Another value of ``domain`` than ``value`` (when the domain has one), drawn with ``rng``.

    A categorical (``choice``) value becomes one of its *other* categories; a numeric or ordinal
    one is, with probability ``local_move_prob``, moved by a Gaussian step of standard deviation
    ``local_scale`` in the unit-cube encoding (a multiplicative step for log domains), else drawn
    afresh from the domain; draws equal to ``value`` are repeated (then a neighbouring value is
    taken). The result is always inside the domain.
    """
    if isinstance(domain, Choice):
        categories = domain.categories
        k = len(categories)
        i = int(np.argmax(domain.encode([value])[0]))
        return categories[(i + 1 + int(rng.integers(k - 1))) % k]
    x = float(domain.encode([value])[0, 0])
    for _ in range(MAX_MUTATION_TRIES):
        if rng.random() < local_move_prob:
            new = domain.decode(np.array([[x + local_scale * rng.standard_normal()]]))[0]
        else:
            new = domain.sample(rng, 1)[0]
        if not _same(new, value):
            return new
    # (practically never reached) the neighbouring value on the unit interval
    n = domain.cardinality or 1_000_000
    for step in (1.0 / n, -1.0 / n):
        new = domain.decode(np.array([[x + step]]))[0]
        if not _same(new, value):
            return new
    logger.debug("no other value of %r found for a mutation of %r", domain, value)
    return value


def _value_to_minimize(result: Result | None, metric: str, mode: str) -> float | None:
    """``result[metric]`` as a float to minimize (NaN -> +inf), ``None`` if absent or not a number."""
    if not result:
        return None
    try:
        value = float(result[metric])
    except (KeyError, TypeError, ValueError):
        return None
    return to_minimize(value, mode)


def objective_vector(result: Result | None, objectives: Objectives) -> tuple[float, ...] | None:
    """``objectives.vector(result)`` (minimization form, NaN as ``+inf``), or ``None`` when
    ``result`` is empty or lacks a metric: the value of a trial for a multi-objective searcher."""
    if not result:
        return None
    try:
        return objectives.vector(result)
    except ValueError:  # a missing metric or not a number (a UserError)
        return None


def _value_to_json(value: Any) -> Any:
    """A population value (a float or a tuple of floats) as JSON (infinities as strings)."""
    if isinstance(value, tuple):
        return [json_float(v) for v in value]
    return json_float(value)


def _value_from_json(data: Any) -> Any:
    """The inverse of :func:`_value_to_json`."""
    if isinstance(data, list):
        return tuple(float_from_json(v) for v in data)
    return float_from_json(data)


class EvolutionarySearcher(Searcher):
    """What evolutionary searchers share (see the module docstring): random suggestions first,
    then children of a population of evaluated configurations.

    Args:
        config_space, metric, mode, seed: as for :class:`~tunebench.searchers.base.Searcher`.
        population_size: the number of evaluations the population holds at most; also the number
            of random configurations proposed first.
        points_to_evaluate: configurations proposed first (they count among the random ones);
            missing keys take the space's default values.
        local_move_prob, local_scale: of the mutation (see :func:`mutate_value`).

    Raises:
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        population_size: int = 10,
        points_to_evaluate: list[Config] | None = None,
        local_move_prob: float = 0.5,
        local_scale: float = 0.1,
    ):
        super().__init__(config_space, metric, mode, seed)
        validate_space(config_space)
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 1:
            raise ValueError(f"population_size must be an integer >= 1, got {population_size!r}")
        if not 0.0 <= local_move_prob <= 1.0:
            raise ValueError(f"local_move_prob must be in [0, 1], got {local_move_prob!r}")
        if not local_scale > 0:
            raise ValueError(f"local_scale must be > 0, got {local_scale!r}")
        self.population_size = population_size
        self.local_move_prob = float(local_move_prob)
        self.local_scale = float(local_scale)
        self._random = RandomSearcher(config_space, metric, mode, seed=seed, points_to_evaluate=points_to_evaluate)
        self._domains: dict[str, Domain] = hyperparameters(config_space)
        self._mutable = mutation_candidates(config_space)
        self._conditional = is_conditional(config_space)
        # an independent stream for selections, crossovers and mutations
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0x5EA])))
        #: (trial id, config, value to minimize: a float or a tuple of floats)
        self._population: deque[tuple[int, Config, Any]] = deque()
        #: last value reported by each trial still running or paused
        self._last: dict[int, Any] = {}
        self._n_suggested = 0

    # -- what subclasses define -------------------------------------------------------------------

    @abstractmethod
    def _value(self, result: Result | None) -> Any:
        """The value to minimize of ``result`` (a float, or a tuple for several objectives), or
        ``None`` when it has none. Called for each result and at a trial's end."""

    @abstractmethod
    def _select(self) -> None:
        """Called after a member joined the population: remove members so that at most
        ``population_size`` remain."""

    @abstractmethod
    def _offspring(self) -> Config:
        """Called by :meth:`suggest` past the random start, with a non-empty population: the
        configuration of the new trial."""

    # -- introspection ----------------------------------------------------------------------------

    @property
    def population(self) -> list[tuple[int, Config, Any]]:
        """The population, oldest first: (trial id, config, value to minimize) (a copy)."""
        return [(tid, dict(c), v) for tid, c, v in self._population]

    # -- contract ---------------------------------------------------------------------------------

    def suggest(self, trial_id: int) -> Config:
        """Called for each new trial: a random configuration for the first ``population_size``
        suggestions (``points_to_evaluate`` first) and while no evaluation has finished, else
        a child of the population (never ``None``)."""
        self._n_suggested += 1
        if self._n_suggested <= self.population_size or not self._population:
            return self._random.suggest(trial_id)
        return self._offspring()

    def mutate(self, parent: Config) -> Config:
        """A copy of ``parent`` with exactly one hyperparameter changed (:func:`mutate_value`),
        chosen uniformly among those with at least two values (and active in ``parent``), so the
        child differs from its parent whenever the space allows it. A space without such a
        hyperparameter gives a copy of the parent. In a conditional space, the parameters the
        change makes inactive are dropped and those it makes active drawn at random."""
        child = dict(parent)
        mutable = [n for n in self._mutable if n in parent]  # the active ones, in a conditional space
        if not mutable:
            return child
        name = mutable[int(self._rng.integers(len(mutable)))]
        child[name] = mutate_value(self._domains[name], parent[name], self._rng, self.local_move_prob,
                                   self.local_scale)
        # a changed parent of a condition: drop what became inactive, draw what became active
        return repair_config(self.config_space, child, self._rng) if self._conditional else child

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for each result: remembers the trial's last value (used by :meth:`on_stop`)."""
        value = self._value(result)
        if value is not None:
            self._last[trial_id] = value

    def on_complete(self, trial_id: int, config: Config, result: Result | None) -> None:
        """Called when the trial ends normally: it joins the population with its final value
        (that of ``result``, else its last reported one; no value, no entry)."""
        value = self._value(result)
        last = self._last.pop(trial_id, None)
        self._add(trial_id, config, value if value is not None else last)

    def on_stop(self, trial_id: int, config: Config, paused: bool) -> None:
        """Called when the scheduler stops or pauses the trial: it joins the population with its
        last reported value (a paused trial that is resumed joins again when it ends)."""
        self._add(trial_id, config, self._last.pop(trial_id, None))

    def on_error(self, trial_id: int, config: Config) -> None:
        """Called when the trial failed: it does not join the population."""
        self._last.pop(trial_id, None)

    def _add(self, trial_id: int, config: Config, value: Any) -> None:
        if value is None:
            return
        self._population.append((trial_id, dict(config), value))
        if len(self._population) > self.population_size:
            self._select()

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: population, last values, counters, RNG states (infinite values as strings)."""
        return {
            "population": [[tid, c, _value_to_json(v)] for tid, c, v in self._population],
            "last": {str(tid): _value_to_json(v) for tid, v in self._last.items()},
            "n_suggested": self._n_suggested,
            "rng": self._rng.bit_generator.state,
            "random": self._random.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""
        self._population = deque(
            (int(tid), dict(c), _value_from_json(v)) for tid, c, v in state["population"]
        )
        self._last = {int(tid): _value_from_json(v) for tid, v in state["last"].items()}
        self._n_suggested = int(state["n_suggested"])
        self._rng.bit_generator.state = state["rng"]
        self._random.load_state_dict(state["random"])


class REASearcher(EvolutionarySearcher):
    """Regularized evolution: mutate the best of a random tournament of the most recent
    evaluations (see the module docstring).

    Args:
        config_space: name -> domain or constant.
        metric: name of the metric to optimize.
        mode: ``"min"`` or ``"max"``.
        seed: seed of the random number generators.
        population_size: number of most recent evaluations kept (``P``); also the number of
            random configurations proposed first.
        sample_size: tournament size (``S``), ``1 <= S <= P``.
        points_to_evaluate: configurations proposed first (they count among the random ones);
            missing keys take the space's default values.
        local_move_prob: probability that the mutation of a numeric hyperparameter is a local
            move (a Gaussian step in the unit-cube encoding, so a multiplicative one for log
            domains) rather than a fresh draw from the domain.
        local_scale: standard deviation of that step, in the unit-cube encoding.

    Raises:
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        population_size: int = 10,
        sample_size: int = 5,
        points_to_evaluate: list[Config] | None = None,
        local_move_prob: float = 0.5,
        local_scale: float = 0.1,
    ):
        super().__init__(config_space, metric, mode, seed, population_size, points_to_evaluate,
                         local_move_prob, local_scale)
        if isinstance(sample_size, bool) or not isinstance(sample_size, int) or not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be an integer in [1, population_size={population_size}], got {sample_size!r}"
            )
        self.sample_size = sample_size

    def _value(self, result: Result | None) -> Any:
        return _value_to_minimize(result, self.metric, self.mode)

    def _select(self) -> None:
        self._population.popleft()  # the oldest dies

    def _offspring(self) -> Config:
        return self.mutate(self.tournament()[1])

    def tournament(self) -> tuple[int, Config, Any]:
        """Draw ``min(sample_size, len(population))`` distinct members at random and return the
        best one (:meth:`_winner`: the lowest value to minimize, the oldest among equals):
        (trial id, config, value).

        Raises:
            ValueError: the population is empty.
        """
        n = len(self._population)
        if n == 0:
            raise ValueError("the population is empty: no evaluation has finished yet")
        picks = self._rng.choice(n, size=min(self.sample_size, n), replace=False)
        return self._population[self._winner(sorted(int(i) for i in picks))]

    def _winner(self, picks: list[int]) -> int:
        """The index of the best population member among ``picks`` (indices, oldest first)."""
        return min((self._population[i][2], i) for i in picks)[1]
