"""NSGA-II as an asynchronous searcher.

Deb, Pratap, Agarwal, Meyarivan: "A fast and elitist multiobjective genetic algorithm: NSGA-II",
IEEE Trans. Evol. Comp. 6(2), 2002, made asynchronous (steady state) as Syne Tune and Optuna run
it beside parallel workers: there are no generations, each finished trial enters the population
at once and each new trial is bred from the population of the moment.

* A trial's value is its vector of objectives in minimization form
  (:meth:`tunebench.types.Objectives.vector`) of its final result (:meth:`~NSGA2Searcher.on_complete`),
  or of its last result when the scheduler stops or pauses it; failed trials are dropped
  (:class:`~tunebench.searchers.rea.EvolutionarySearcher` does this for REA too).
* The first ``population_size`` suggestions are random (``points_to_evaluate`` first), as is
  any suggestion made while no evaluation has finished.
* **Elitist survivor selection**: when a member joins a full population, the ``population_size``
  best by non-dominated rank, then larger crowding distance within the front, survive
  (:func:`tunebench.pareto.rank_by_nondominated_sorting` with ``tie_break="crowding"``): the
  steady-state form of the paper's ``(P + Q) -> P`` step.
* **Parents** are picked by binary tournament with the *crowded-comparison operator*: of two
  members drawn at random, the one of lower rank (:func:`tunebench.pareto.pareto_ranks` over the
  population) wins, then the one of larger crowding distance within its front
  (:func:`tunebench.pareto.crowding_distance`), then the older one.
* **Crossover** (probability ``crossover_prob``, else the child is a copy of the first parent),
  per hyperparameter in the unit-cube encoding of its domain (:meth:`Domain.encode` /
  :meth:`Domain.decode`): with probability 1/2 simulated binary crossover (SBX, Deb & Agrawal
  1995, bounded to [0, 1], distribution index ``eta_crossover``) of the two parents' values, one
  of its two children taken at random, else the first parent's value; a categorical (``choice``)
  hyperparameter takes one parent's category at random.
* **Mutation**: each hyperparameter changes with probability ``mutation_prob`` (default
  ``1 / number of hyperparameters``) by :func:`tunebench.searchers.rea.mutate_value` (REA's
  mutation: a local Gaussian step in the encoding or a fresh draw); a child equal to a parent is
  mutated again in one hyperparameter
  (:meth:`~tunebench.searchers.rea.EvolutionarySearcher.mutate`) until it differs from both, so
  every child differs from its parents whenever the space allows it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tunebench.pareto import crowding_distance, pareto_ranks, rank_by_nondominated_sorting
from tunebench.searchers.rea import EvolutionarySearcher, mutate_value, objective_vector
from tunebench.space import Choice, repair_config
from tunebench.types import Config, Objectives, Result

logger = logging.getLogger(__name__)

__all__ = ["NSGA2Searcher", "sbx"]

#: one-hyperparameter mutations tried at most to make a child that equals a parent differ from both
MAX_REPAIRS = 32


def sbx(x1: float, x2: float, u: float, eta: float) -> tuple[float, float]:
    """The two children of simulated binary crossover (Deb & Agrawal 1995) of ``x1`` and ``x2``
    in ``[0, 1]``, bounded to ``[0, 1]`` (the variant of Deb's NSGA-II code: the spread factor's
    distribution is cut where a child would leave the interval), for the uniform draw ``u`` in
    ``[0, 1)`` and the distribution index ``eta`` (larger: children closer to their parents).
    Returns ``(lower child, upper child)``; equal parents give themselves back."""
    lo, hi = min(x1, x2), max(x1, x2)
    span = hi - lo
    if span < 1e-14:
        return x1, x2
    power = 1.0 / (eta + 1.0)

    def spread(beta: float) -> float:
        alpha = 2.0 - beta ** -(eta + 1.0)
        if u <= 1.0 / alpha:
            return float((u * alpha) ** power)
        return float((1.0 / (2.0 - u * alpha)) ** power)

    c1 = 0.5 * (lo + hi - spread(1.0 + 2.0 * lo / span) * span)
    c2 = 0.5 * (lo + hi + spread(1.0 + 2.0 * (1.0 - hi) / span) * span)
    return min(max(c1, 0.0), 1.0), min(max(c2, 0.0), 1.0)


class NSGA2Searcher(EvolutionarySearcher):
    """Asynchronous NSGA-II (see the module docstring).

    Args:
        config_space: name -> domain or constant.
        objectives: the metrics and their modes (a result lacking one gives the trial no value).
        seed: seed of the random number generators.
        population_size: the number of evaluated configurations kept (the elite); also the number
            of random configurations proposed first.
        crossover_prob: probability that a child is the crossover of two parents (else a copy of
            one, then mutated).
        mutation_prob: probability that each hyperparameter of a child is mutated; ``None``:
            ``1 / number of hyperparameters``.
        eta_crossover: SBX distribution index (> 0; larger: children closer to their parents).
        points_to_evaluate: configurations proposed first (they count among the random ones).
        local_move_prob, local_scale: of the mutation of a value
            (:func:`tunebench.searchers.rea.mutate_value`).

    Raises:
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        objectives: Objectives,
        seed: int = 0,
        population_size: int = 10,
        crossover_prob: float = 0.9,
        mutation_prob: float | None = None,
        eta_crossover: float = 10.0,
        points_to_evaluate: list[Config] | None = None,
        local_move_prob: float = 0.5,
        local_scale: float = 0.2,
    ):
        super().__init__(config_space, objectives.metrics[0], objectives.modes[0], seed, population_size,
                         points_to_evaluate, local_move_prob, local_scale)
        if not 0.0 <= crossover_prob <= 1.0:
            raise ValueError(f"crossover_prob must be in [0, 1], got {crossover_prob!r}")
        if mutation_prob is not None and not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be in [0, 1] or None, got {mutation_prob!r}")
        if not eta_crossover > 0:
            raise ValueError(f"eta_crossover must be > 0, got {eta_crossover!r}")
        self.objectives = objectives
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = (1.0 / max(1, len(self._mutable)) if mutation_prob is None else float(mutation_prob))
        self.eta_crossover = float(eta_crossover)

    # -- the steps of NSGA-II ---------------------------------------------------------------------

    def _value(self, result: Result | None) -> Any:
        return objective_vector(result, self.objectives)

    def _values(self) -> np.ndarray:
        return np.array([v for _, _, v in self._population], dtype=np.float64)

    def _select(self) -> None:
        """Keep the ``population_size`` best members by rank, then crowding (in age order)."""
        keep = sorted(int(i) for i in rank_by_nondominated_sorting(self._values(), "crowding",
                                                                   max_items=self.population_size))
        members = list(self._population)
        self._population.clear()
        self._population.extend(members[i] for i in keep)

    def fitness(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ranks, crowding)`` of the population's members (in :attr:`population` order): the
        non-dominated rank over the population (0: its Pareto front) and the crowding distance
        within the member's front (``+inf`` at the front's extremes)."""
        Y = self._values()
        ranks = pareto_ranks(Y)
        crowding = np.empty(len(Y), dtype=np.float64)
        for rank in np.unique(ranks):
            front = np.flatnonzero(ranks == rank)
            crowding[front] = crowding_distance(Y[front])
        return ranks, crowding

    def tournament(self, ranks: np.ndarray, crowding: np.ndarray) -> int:
        """A binary tournament: two distinct members drawn at random (the one member of a
        population of one), the winner's index by the crowded comparison: lower rank, then larger
        crowding distance, then the older one."""
        n = len(ranks)
        if n == 1:
            return 0
        i, j = sorted(int(k) for k in self._rng.choice(n, size=2, replace=False))
        if ranks[j] < ranks[i] or (ranks[j] == ranks[i] and crowding[j] > crowding[i]):
            return j
        return i

    def crossover(self, a: Config, b: Config) -> Config:
        """A child of the parents ``a`` and ``b`` (see the module docstring); constants and
        one-value domains as in ``a``."""
        child = dict(a)
        rng = self._rng
        for name in self._mutable:
            domain = self._domains[name]
            if name not in a or name not in b:  # inactive in a parent (a conditional space)
                if name in b and rng.random() < 0.5:
                    child[name] = b[name]
                continue
            if isinstance(domain, Choice):
                child[name] = a[name] if rng.random() < 0.5 else b[name]
                continue
            if rng.random() >= 0.5:
                continue
            x = domain.encode([a[name], b[name]])[:, 0]
            pair = sbx(float(x[0]), float(x[1]), float(rng.random()), self.eta_crossover)
            child[name] = domain.decode(np.array([[pair[int(rng.integers(2))]]]))[0]
        return child

    def _offspring(self) -> Config:
        ranks, crowding = self.fitness()
        members = self._population
        a = members[self.tournament(ranks, crowding)][1]
        b = members[self.tournament(ranks, crowding)][1]
        rng = self._rng
        child = self.crossover(a, b) if rng.random() < self.crossover_prob else dict(a)
        for name in self._mutable:
            if name in child and rng.random() < self.mutation_prob:
                child[name] = mutate_value(self._domains[name], child[name], rng, self.local_move_prob,
                                           self.local_scale)
        if self._conditional:  # drop what the changes made inactive, draw what they made active
            child = repair_config(self.config_space, child, rng)
        for _ in range(MAX_REPAIRS):  # (a space of few configurations may need more than one step)
            if child != a and child != b:
                break
            child = self.mutate(child)
        return child
