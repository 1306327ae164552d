"""Synthetic multi-objective problems with learning curves and a known Pareto front (L2).

For testing multi-objective methods and the Pareto front / hypervolume code against an exact
answer. Each problem is a classic closed-form test function over ``d`` hyperparameters
``x1..xd`` in ``[0, 1]``, every objective minimized:

* ``zdt1`` (Zitzler, Deb & Thiele 2000), objectives ``f1, f2``: ``f1 = x1``,
  ``g = 1 + 9 (x2 + ... + xd) / (d - 1)``, ``f2 = g (1 - sqrt(f1 / g))``. Pareto set
  ``x2 = ... = xd = 0``; convex front ``f2 = 1 - sqrt(f1)``, ``f1`` in ``[0, 1]``.
* ``zdt2``: the same with ``f2 = g (1 - (f1 / g)^2)``; concave front ``f2 = 1 - f1^2``.
* ``dtlz2`` (Deb, Thiele, Laumanns & Zitzler 2002) with 3 objectives ``f1, f2, f3``:
  ``g = sum_{i >= 3} (xi - 0.5)^2``, ``f1 = (1 + g) cos(x1 pi/2) cos(x2 pi/2)``,
  ``f2 = (1 + g) cos(x1 pi/2) sin(x2 pi/2)``, ``f3 = (1 + g) sin(x1 pi/2)``. Pareto set
  ``x3 = ... = xd = 0.5``; front the positive octant of the unit sphere.

Ideal point ``(0, ..., 0)``, nadir point ``(1, ..., 1)`` for all three. Each objective follows the
learning-curve model of :mod:`tunebench.blackboxes.synthetic` (the same shape and decay rate for
all objectives of a configuration, independent noise per objective): it decreases towards its
closed-form value, never goes below it, and *is* it at the last epoch, so the front at the
highest fidelity is exactly the known one. The last objective, ``time``, is the cumulative
training time, ``cost * epoch``, with a per-epoch cost that varies with the configuration over
the whole range ``time_per_epoch = (lo, hi)`` (1..10 s by default), along the front and across it:
``cost = lo (hi / lo)^u``, ``u = (1 + sin(2 pi (x1 + x2))) / 2``. A problem where the cost of a
trial depends on its configuration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tunebench.blackboxes.synthetic import SyntheticBlackbox
from tunebench.errors import UserError
from tunebench.types import Config

__all__ = [
    "ParetoProblem",
    "SyntheticMOBlackbox",
    "zdt1",
    "zdt2",
    "dtlz2",
    "ZDT1",
    "ZDT2",
    "DTLZ2",
    "zdt1_blackbox",
    "zdt2_blackbox",
    "dtlz2_blackbox",
]

_HALF_PI = 0.5 * math.pi
#: 1 / golden ratio: spreads the azimuths of DTLZ2's front points evenly
_GOLDEN = 0.5 * (math.sqrt(5.0) - 1.0)


def _zdt_g(X: np.ndarray) -> np.ndarray:
    g: np.ndarray = 1.0 + 9.0 * X[:, 1:].sum(axis=1) / (X.shape[1] - 1)
    return g


def zdt1(X: np.ndarray) -> np.ndarray:
    """ZDT1 on rows of ``[0, 1]^d`` (``d >= 2``): array ``(n, 2)`` of ``(f1, f2)``."""
    f1 = X[:, 0]
    g = _zdt_g(X)
    return np.stack([f1, g * (1.0 - np.sqrt(f1 / g))], axis=1)


def zdt2(X: np.ndarray) -> np.ndarray:
    """ZDT2 on rows of ``[0, 1]^d`` (``d >= 2``): array ``(n, 2)`` of ``(f1, f2)``."""
    f1 = X[:, 0]
    g = _zdt_g(X)
    return np.stack([f1, g * (1.0 - (f1 / g) ** 2)], axis=1)


def dtlz2(X: np.ndarray) -> np.ndarray:
    """DTLZ2 with 3 objectives on rows of ``[0, 1]^d`` (``d >= 3``): array ``(n, 3)``."""
    radius = 1.0 + ((X[:, 2:] - 0.5) ** 2).sum(axis=1)
    a, b = X[:, 0] * _HALF_PI, X[:, 1] * _HALF_PI
    return np.stack([radius * np.cos(a) * np.cos(b), radius * np.cos(a) * np.sin(b), radius * np.sin(a)],
                    axis=1)


def _zdt_pareto_set(n_points: int, d: int) -> np.ndarray:
    """``x1`` evenly spaced over ``[0, 1]`` (both ends included), the other coordinates 0."""
    X = np.zeros((n_points, d))
    X[:, 0] = np.linspace(0.0, 1.0, n_points)
    return X


def _dtlz2_pareto_set(n_points: int, d: int) -> np.ndarray:
    """Points spread evenly over the area of the unit sphere's octant (``f3`` uniform, azimuths
    on a golden-ratio sequence, as on a sphere ``z`` uniform gives uniform area); ``x3..xd = 0.5``."""
    u = (np.arange(n_points) + 0.5) / n_points
    X = np.full((n_points, d), 0.5)
    X[:, 0] = np.arcsin(u) / _HALF_PI
    X[:, 1] = np.mod((np.arange(n_points) + 0.5) * _GOLDEN, 1.0)
    return X


@dataclass(frozen=True)
class ParetoProblem:
    """A closed-form multi-objective test problem on ``[0, 1]^d`` with a known Pareto front.

    Attributes:
        name: identifier (``"zdt1"``).
        objectives: names of the objectives (all minimized), in the column order of ``function``.
        function: ``(n, d)`` array -> ``(n, len(objectives))`` array of objective values.
        pareto_set: ``(n_points, d)`` -> ``(n_points, d)`` array of points of the Pareto set
            (their images are spread over the whole front).
        ideal: the minimum of each objective over the front.
        nadir: the maximum of each objective over the front.
        excluded_volume: volume of the box ``[ideal, nadir]`` that the front does not dominate
            (the hypervolume of the front for a reference point ``r >= nadir`` is
            ``prod(r - ideal) - excluded_volume``).
        min_params: the fewest hyperparameters ``d`` the problem is defined for.
        front: the front in words, for listings and messages.
    """

    name: str
    objectives: tuple[str, ...]
    function: Callable[[np.ndarray], np.ndarray]
    pareto_set: Callable[[int, int], np.ndarray]
    ideal: tuple[float, ...]
    nadir: tuple[float, ...]
    excluded_volume: float
    min_params: int
    front: str


ZDT1 = ParetoProblem("zdt1", ("f1", "f2"), zdt1, _zdt_pareto_set, (0.0, 0.0), (1.0, 1.0),
                     excluded_volume=1.0 / 3.0, min_params=2, front="f2 = 1 - sqrt(f1), f1 in [0, 1] (convex)")
ZDT2 = ParetoProblem("zdt2", ("f1", "f2"), zdt2, _zdt_pareto_set, (0.0, 0.0), (1.0, 1.0),
                     excluded_volume=2.0 / 3.0, min_params=2, front="f2 = 1 - f1^2, f1 in [0, 1] (concave)")
DTLZ2 = ParetoProblem("dtlz2", ("f1", "f2", "f3"), dtlz2, _dtlz2_pareto_set, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
                      excluded_volume=math.pi / 6.0, min_params=3,
                      front="f1^2 + f2^2 + f3^2 = 1, f >= 0 (the unit sphere's positive octant)")


def _cost_model(time_per_epoch: tuple[float, float]) -> Callable[[np.ndarray], np.ndarray]:
    """The per-epoch cost of the module docstring, on configurations scaled to ``[0, 1]``."""
    lo, hi = (float(t) for t in time_per_epoch)

    def cost(U: np.ndarray) -> np.ndarray:
        u = 0.5 * (1.0 + np.sin(2.0 * math.pi * (U[:, 0] + U[:, 1])))
        value: np.ndarray = lo * (hi / lo) ** u
        return value

    return cost


def _check_count(name: str, what: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise UserError(f"{name}: {what} must be an integer >= {low}, got {value!r}")
    return int(value)


class SyntheticMOBlackbox(SyntheticBlackbox):
    """A :class:`ParetoProblem` over ``x1..xd`` in ``[0, 1]`` with learning curves over ``epoch``.

    Objectives: the problem's (all minimized), then ``time`` (the elapsed time). At the last
    epoch the objectives are exactly the problem's function, so :meth:`true_front` is the front
    a method's results at full fidelity converge to.

    Attributes (besides :class:`SyntheticBlackbox`'s):
        problem: the :class:`ParetoProblem`.
        n_params: the number of hyperparameters ``d``.
        front_objectives: the objectives of the front (``objectives`` without ``time``).
        objective_modes: objective -> ``"min"`` (every objective, ``time`` included).
        ideal, nadir: the ideal and nadir points of the front (arrays over ``front_objectives``);
            ``optimum`` holds the ideal point by name.

    Args:
        problem: the test problem.
        n_params: the number of hyperparameters (at least ``problem.min_params``).
        max_fidelity, noise, gap_scale, time_per_epoch, n_seeds, seed: as for
            :class:`SyntheticBlackbox`.
    """

    def __init__(self, problem: ParetoProblem, n_params: int, *, max_fidelity: int = 27, noise: float = 0.2,
                 gap_scale: float = 1.0, time_per_epoch: tuple[float, float] = (1.0, 10.0), n_seeds: int = 1,
                 seed: int = 0) -> None:
        d = _check_count(problem.name, "n_params", n_params, problem.min_params)
        super().__init__(problem.name, problem.function, {f"x{i}": (0.0, 1.0) for i in range(1, d + 1)},
                         optimum_value=problem.ideal, max_fidelity=max_fidelity, noise=noise, gap_scale=gap_scale,
                         time_per_epoch=time_per_epoch, n_seeds=n_seeds, seed=seed, objectives=problem.objectives,
                         cost=_cost_model(time_per_epoch))
        self.problem = problem
        self.n_params = d
        self.front_objectives = problem.objectives
        self.objective_modes = {name: "min" for name in self.objectives}
        self.ideal = np.array(problem.ideal, dtype=np.float64)
        self.nadir = np.array(problem.nadir, dtype=np.float64)

    def pareto_set(self, n_points: int) -> list[Config]:
        """``n_points`` configurations of the Pareto set, spread over the whole front (for ZDT:
        ``x1`` evenly spaced over ``[0, 1]``, the others 0; for DTLZ2: ``x3..xd = 0.5``)."""
        X = self.problem.pareto_set(_check_count(self.name, "n_points", n_points, 1), self.n_params)
        return [dict(zip(self._names, map(float, row), strict=True)) for row in X]

    def true_front(self, n_points: int) -> np.ndarray:
        """``(n_points, len(front_objectives))`` points of the true Pareto front: the values of
        :meth:`pareto_set` at the highest fidelity (for ZDT1, ``(f1, 1 - sqrt(f1))`` for ``f1``
        evenly spaced over ``[0, 1]``)."""
        X = self.problem.pareto_set(_check_count(self.name, "n_points", n_points, 1), self.n_params)
        front: np.ndarray = self.problem.function(X)
        return front

    def front_hypervolume(self, reference: Sequence[float] | np.ndarray) -> float:
        """The exact hypervolume of the whole true front (every objective minimized) up to
        ``reference``, a point ``>= nadir`` in every objective: ``prod(reference - ideal)``
        less the volume of ``[ideal, nadir]`` the front does not dominate (1/3 for ZDT1, 2/3
        for ZDT2, pi/6 for DTLZ2). The hypervolume of ``true_front(n)`` tends to it from below.

        Raises:
            UserError: a reference of the wrong length or below the nadir point.
        """
        r = np.asarray(reference, dtype=np.float64).reshape(-1)
        if r.shape != self.nadir.shape or not np.all(r >= self.nadir):
            raise UserError(f"{self.name}: the reference point must have one value per objective "
                            f"{list(self.front_objectives)}, each >= the nadir point {self.nadir.tolist()}; "
                            f"got {np.asarray(reference).tolist()}")
        return float(np.prod(r - self.ideal) - self.problem.excluded_volume)


def zdt1_blackbox(n_params: int = 6, max_fidelity: int = 27, noise: float = 0.2, n_seeds: int = 1,
                  seed: int = 0) -> SyntheticMOBlackbox:
    """ZDT1 over ``x1..x{n_params}`` in [0, 1] with learning curves over ``epoch``; objectives
    ``f1, f2`` (minimized) and ``time``; front ``f2 = 1 - sqrt(f1)``."""
    return SyntheticMOBlackbox(ZDT1, n_params, max_fidelity=max_fidelity, noise=noise, n_seeds=n_seeds, seed=seed)


def zdt2_blackbox(n_params: int = 6, max_fidelity: int = 27, noise: float = 0.2, n_seeds: int = 1,
                  seed: int = 0) -> SyntheticMOBlackbox:
    """ZDT2 over ``x1..x{n_params}`` in [0, 1] with learning curves over ``epoch``; objectives
    ``f1, f2`` (minimized) and ``time``; front ``f2 = 1 - f1^2``."""
    return SyntheticMOBlackbox(ZDT2, n_params, max_fidelity=max_fidelity, noise=noise, n_seeds=n_seeds, seed=seed)


def dtlz2_blackbox(n_params: int = 5, max_fidelity: int = 27, noise: float = 0.2, n_seeds: int = 1,
                   seed: int = 0) -> SyntheticMOBlackbox:
    """DTLZ2 (3 objectives) over ``x1..x{n_params}`` in [0, 1] with learning curves over
    ``epoch``; objectives ``f1, f2, f3`` (minimized) and ``time``; front the unit sphere's
    positive octant."""
    return SyntheticMOBlackbox(DTLZ2, n_params, max_fidelity=max_fidelity, noise=noise, n_seeds=n_seeds, seed=seed)
