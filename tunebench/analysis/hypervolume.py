"""Multi-objective runs of an experiment grid: their objective vectors, the normalized
hypervolume of their feasible Pareto front over time, and attainment surfaces over seeds.

The arithmetic (dominance, exact hypervolume) is :mod:`tunebench.pareto`'s; this module only
applies it to the results of runs. Everything is in *minimization form* (maximized metrics
negated, see :meth:`tunebench.types.Objectives.vector`) until a figure converts back.

**Normalization.** Hypervolumes of different runs are comparable only with the same objective
scales and reference point, so they are fixed *per benchmark*, from every loaded run of it (all
methods, all seeds), by :func:`hypervolume_bounds`:

* ``lower`` (the ideal point): the best value of each objective over the feasible results of
  all the runs;
* ``upper`` (the nadir point): the worst value of each objective over the final feasible Pareto
  fronts of the runs (the largest of the runs' own nadir points): the region where the fronts
  the methods end with lie;
* objectives are scaled so that ``lower`` maps to 0 and ``upper`` to 1 (:func:`tunebench.pareto.normalize`),
  the reference point is ``1 + HV_MARGIN`` in every objective (the margin of
  :func:`tunebench.pareto.default_reference_point`, so the extreme points of the fronts count),
  and the hypervolume is divided by the volume of the box ``[0, ref]``: the **normalized
  hypervolume** is the share of that box the front dominates, in ``[0, 1]``.

Why bounds from the data rather than a blackbox's known ideal and nadir: they exist for every
benchmark (real ones too, and lcbench tasks whose front is unknown), and they frame the region
where the fronts are; a known nadir (ZDT1's ``(1, 1)``) would leave out most of what a short
run finds. The price: the scale depends on the runs analysed together (adding a method that
finds a wider front changes it), so normalized hypervolumes are comparable within one analysis
of a grid; pin the bounds (``load_grid(..., hv_bounds=...)``) to compare across analyses.

Only feasible results (every constraint of the run met, :func:`feasible_mask`) and results with
finite values count; a point outside the reference box dominates none of it and adds nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tunebench.pareto import hypervolume, nondominated_mask, normalize
from tunebench.types import Constraint

__all__ = [
    "HV_MARGIN",
    "RunPoints",
    "HypervolumeBounds",
    "feasible_mask",
    "hypervolume_bounds",
    "hypervolume_curve",
    "attainment_surfaces",
]

#: the reference point of the normalized hypervolume is ``1 + HV_MARGIN`` in every normalized objective
HV_MARGIN = 0.1


def feasible_mask(columns: Mapping[str, np.ndarray], constraints: Sequence[Constraint], n: int) -> np.ndarray:
    """Which of ``n`` results meet every one of ``constraints``, vectorized: ``columns`` maps a
    metric to its ``n`` values (NaN: missing or not a number). The rule of
    :func:`tunebench.types.is_feasible` (slack ``<= 0``), except that a missing value is
    infeasible here instead of an error."""
    ok = np.ones(n, dtype=bool)
    for c in constraints:
        values = np.asarray(columns.get(c.metric, np.full(n, np.nan)), dtype=float)
        with np.errstate(invalid="ignore"):
            ok &= (values <= c.bound) if c.op == "<=" else (values >= c.bound)  # NaN compares False
    return ok


@dataclass(frozen=True)
class RunPoints:
    """The results of one multi-objective run, in time order.

    Attributes:
        times: ``(n,)`` tuning time of each result (seconds).
        Y: ``(n, d)`` objective values in minimization form (NaN read as ``+inf``).
        feasible: ``(n,)`` whether each result met every constraint of the run.
    """

    times: np.ndarray
    Y: np.ndarray
    feasible: np.ndarray

    def usable(self, until: float | None = None) -> np.ndarray:
        """Rows that may be on a front: feasible, all values finite, and (``until``) at or
        before that time; a boolean mask."""
        mask = self.feasible & np.isfinite(self.Y).all(axis=1)
        if until is not None:
            mask &= self.times <= until
        return mask

    def front(self, until: float | None = None) -> np.ndarray:
        """The feasible Pareto front of the results up to ``until`` (None: all), minimization
        form: ``(k, d)``, duplicates removed, sorted by the first objective."""
        P = self.Y[self.usable(until)]
        if len(P) == 0:
            return P
        F = np.unique(P[nondominated_mask(P)], axis=0)  # unique also sorts the rows
        return F


@dataclass(frozen=True)
class HypervolumeBounds:
    """The scales of a benchmark's normalized hypervolume (see the module docstring), in
    minimization form: ``lower`` (mapped to 0) and ``upper`` (mapped to 1), one value per
    objective; the reference point is ``upper + HV_MARGIN * (upper - lower)``."""

    lower: np.ndarray
    upper: np.ndarray

    @property
    def reference(self) -> np.ndarray:
        """The reference point in minimization form (objective units)."""
        width = np.where(self.upper > self.lower, self.upper - self.lower, 1.0)
        ref: np.ndarray = self.upper + HV_MARGIN * width
        return ref

    def scale(self, Y: np.ndarray) -> np.ndarray:
        """``Y`` (``(n, d)``, minimization form) normalized: ``lower`` to 0, ``upper`` to 1."""
        return normalize(Y, self.lower, self.upper)

    def normalized_hypervolume(self, Y: np.ndarray) -> float:
        """The normalized hypervolume of the rows of ``Y`` (``(n, d)``, minimization form,
        finite): the hypervolume of the scaled rows up to ``1 + HV_MARGIN`` in every objective,
        divided by that box's volume."""
        d = self.lower.shape[0]
        if len(Y) == 0:
            return 0.0
        return hypervolume(self.scale(Y), np.full(d, 1.0 + HV_MARGIN)) / (1.0 + HV_MARGIN) ** d


def hypervolume_bounds(runs: Iterable[RunPoints]) -> HypervolumeBounds | None:
    """The common bounds of a benchmark's ``runs`` (see the module docstring): the ideal point of
    their feasible finite results and the largest of the nadir points of their final fronts.
    None when no run has a feasible result with finite values."""
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    for run in runs:
        F = run.front()
        if len(F):
            lows.append(F.min(axis=0))  # a front holds the best value of every objective
            highs.append(F.max(axis=0))
    if not lows:
        return None
    return HypervolumeBounds(np.min(lows, axis=0), np.max(highs, axis=0))


def hypervolume_curve(run: RunPoints, bounds: HypervolumeBounds | None) -> tuple[np.ndarray, np.ndarray]:
    """The normalized hypervolume of ``run``'s feasible front after each of its results:
    ``(times, values)``, one value per result (0 until a feasible result lies inside the
    reference box; non-decreasing).

    Incremental: a result weakly dominated by the current front (or outside the reference box,
    where it dominates none of the box) leaves the front's hypervolume as it is; only a result
    that changes the front triggers one exact hypervolume of the new front (moocore, O(k log k)
    for ``k`` front points in 2 and 3 objectives). ``bounds`` None (no feasible result in the
    whole benchmark): zeros.
    """
    n = len(run.times)
    values = np.zeros(n)
    if bounds is None or n == 0:
        return run.times, values
    d = run.Y.shape[1]
    ref = np.full(d, 1.0 + HV_MARGIN)
    box = (1.0 + HV_MARGIN) ** d
    Z = bounds.scale(np.where(np.isfinite(run.Y), run.Y, np.inf))
    inside = run.usable() & (Z < ref).all(axis=1)
    front = np.empty((0, d))
    for i in np.flatnonzero(inside):
        z = Z[i]
        if len(front) and (front <= z).all(axis=1).any():
            continue  # weakly dominated: the front (and its hypervolume) stays
        front = np.vstack([front[~(z <= front).all(axis=1)], z])
        values[i] = hypervolume(front, ref) / box
    return run.times, np.maximum.accumulate(values)


def attainment_surfaces(fronts: Sequence[np.ndarray], percentiles: Sequence[float]) -> dict[float, np.ndarray]:
    """Empirical attainment surfaces of the ``fronts`` of several runs (one ``(k_i, d)`` array per
    run, minimization form, finite; ``d`` = 2 or 3): for each percentile ``p``, the points of
    the surface attained by at least ``ceil(p / 100 * len(fronts))`` of the runs (moocore's
    ``eaf``; 50: the median attainment surface). A run without a point attains nothing.
    Returns ``p -> (m, d)`` array of the surface's points (possibly empty), sorted by the first
    objective."""
    import moocore  # deferred: ~35 ms of import, only where attainment surfaces are drawn

    d = next((F.shape[1] for F in fronts if F.ndim == 2 and F.shape[1]), 0)
    out = {float(p): np.empty((0, d)) for p in percentiles}
    parts = [(F, i + 1) for i, F in enumerate(fronts) if len(F)]
    if not parts or d == 0:
        return out
    n_sets = len(fronts)
    points = np.vstack([F for F, _ in parts])
    sets = np.concatenate([np.full(len(F), s) for F, s in parts])
    for p in percentiles:
        # moocore counts among the sets it is given: a run without points must still count in the total
        need = max(1, math.ceil(float(p) / 100.0 * n_sets - 1e-9))
        if need > len(parts):
            continue  # more runs than have a point: nothing is attained that often
        level = 100.0 * (need - 0.5) / len(parts)  # moocore attains at ceil(level * n / 100) sets: exactly `need`
        surface = np.asarray(moocore.eaf(points, sets, percentiles=[level]), dtype=float)
        S = surface[:, :d]
        out[float(p)] = S[np.lexsort(S.T[::-1])]
    return out
