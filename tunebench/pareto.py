"""Multi-objective arithmetic on arrays (L1, beside :mod:`tunebench.models`): Pareto dominance,
non-dominated sorting, crowding distance, the ε-net order, the total order of a rung and its
top-k question (:func:`is_in_top`), hypervolume and its contributions, reference points.

The one owner of this math: multi-objective schedulers and searchers (MOASHA, NSGA-II, MOREA,
MOBO), the store's summaries and the analysis all call these functions rather than writing
their own.

Every function takes an ``(n, d)`` array ``Y`` of objective values (``n`` points, ``d``
objectives) **in minimization form**: each column is minimized, so the caller negates the
columns of maximized metrics and maps NaN (a diverged trial) to ``+inf``, which is what
:meth:`tunebench.types.Objectives.vector` does for one result and :func:`to_minimization` for an
array. NaN in ``Y`` is rejected (``ValueError``); ``+inf`` is allowed (the worst value).

Dominance: ``a`` dominates ``b`` when ``a <= b`` in every objective and ``a < b`` in at least one;
equal points (duplicates) do not dominate each other, so both are on the same front.

The Pareto front, the non-dominated sorting ranks, the exact hypervolume and its exclusive
contributions come from `moocore <https://multi-objective.github.io/moocore/python/>`_ (C
implementations, O(n log n) in 2 and 3 objectives, maintained by the authors of the
dimension-sweep hypervolume algorithms): 5 to 30 times faster here than vectorized numpy. The
crowding distance and the ε-net order are written here (moocore has neither).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tunebench.types import Objectives

logger = logging.getLogger(__name__)

__all__ = [
    "TieBreak",
    "crowding_distance",
    "default_reference_point",
    "epsilon_net_order",
    "hypervolume",
    "hypervolume_contributions",
    "is_in_top",
    "nondominated_mask",
    "normalize",
    "pareto_ranks",
    "rank_by_nondominated_sorting",
    "to_minimization",
]

#: How :func:`rank_by_nondominated_sorting` orders the points of one front.
TieBreak = Literal["eps_net", "crowding"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

#: up to this many rows the ε-net order computes all pairwise distances at once (k x k floats:
#: 0.5 MB at 256), above it one row of distances per step
_PAIRWISE_MAX = 256


def _points(Y: ArrayLike) -> FloatArray:
    """``Y`` as a C-contiguous ``(n, d)`` float64 array, checked: 2-D, at least one column, no NaN."""
    arr = np.ascontiguousarray(Y, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"expected an (n, d) array of objective values with d >= 1, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError("objective values contain NaN: map NaN to +inf first (minimization form, see "
                         "Objectives.vector or to_minimization)")
    return arr


def _vector(v: ArrayLike, d: int, name: str) -> FloatArray:
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    if arr.shape != (d,):
        raise ValueError(f"{name} must have one value per objective ({d}), got {arr.shape[0]}")
    return arr


def to_minimization(values: ArrayLike, objectives: Objectives) -> FloatArray:
    """The ``(n, d)`` array ``values`` of metric values as reported (columns in the order of
    ``objectives.metrics``) in minimization form: maximized columns negated, NaN as ``+inf``;
    the array form of :func:`tunebench.types.to_minimize`.

    Raises:
        ValueError: ``values`` is not ``(n, len(objectives.metrics))``.
    """
    arr = np.array(values, dtype=np.float64, ndmin=2)
    if arr.ndim != 2 or arr.shape[1] != len(objectives.metrics):
        raise ValueError(f"expected an (n, {len(objectives.metrics)}) array (one column per metric), "
                         f"got shape {arr.shape}")
    arr *= np.asarray(objectives.signs)
    arr[np.isnan(arr)] = np.inf
    return arr


def _moocore() -> Any:
    """The moocore module, imported on first use: ~35 ms of import (its datasets module loads
    urllib), which ``import tunebench.schedulers`` and single-objective runs should not pay."""
    import moocore  # deferred: import cost (see above)

    return moocore


def _finite_for_dominance(Y: FloatArray) -> FloatArray:
    """``Y`` with ``+inf`` (``-inf``) replaced, per column, by the next float above (below) every
    finite value of the column: dominance between rows is unchanged. moocore's 3-D sorting
    misorders rows with infinite values (checked by tests/test_pareto.py against brute force)."""
    finite = np.isfinite(Y)
    if finite.all():
        return Y
    hi = np.where(finite, Y, -np.inf).max(axis=0)
    lo = np.where(finite, Y, np.inf).min(axis=0)
    hi = np.where(np.isfinite(hi), hi, 0.0)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    above = np.broadcast_to(np.nextafter(hi, np.inf), Y.shape)
    below = np.broadcast_to(np.nextafter(lo, -np.inf), Y.shape)
    return np.where(Y == np.inf, above, np.where(Y == -np.inf, below, Y))


def nondominated_mask(Y: ArrayLike) -> BoolArray:
    """``True`` for each row of ``Y`` (``(n, d)``, minimization form) that no other row dominates:
    the Pareto front. Duplicates of a non-dominated row are all ``True``.

    moocore's ``is_nondominated`` (C: O(n log n) for d = 2 and 3, 0.05 ms at n = 1000).
    """
    Y = _points(Y)
    if len(Y) == 0:
        return np.zeros(0, dtype=bool)
    mask: BoolArray = np.asarray(_moocore().is_nondominated(_finite_for_dominance(Y), keep_weakly=True), dtype=bool)
    return mask


def pareto_ranks(Y: ArrayLike) -> IntArray:
    """The non-dominated sorting rank of each row of ``Y`` (``(n, d)``, minimization form): 0 for
    the Pareto front, 1 for the front of the rest, and so on (NSGA-II's fronts). Equivalently,
    a row's rank is 1 + the highest rank among the rows dominating it (0 when none does).
    Duplicates get the same rank.

    moocore's ``pareto_rank`` (C: O(n log n) for d = 2, 0.08 ms at n = 1000; 0.2 ms for d = 3).
    """
    Y = _points(Y)
    if len(Y) == 0:
        return np.zeros(0, dtype=np.intp)
    ranks: IntArray = np.asarray(_moocore().pareto_rank(_finite_for_dominance(Y)), dtype=np.intp)
    return ranks


def crowding_distance(Y: ArrayLike) -> FloatArray:
    """NSGA-II's crowding distance of each row of ``Y`` (``(n, d)``, minimization form), all rows
    taken as one front (call it per front).

    For each objective whose values are not all equal, the rows are sorted by it (ties: lower row
    index first); the first and last get ``+inf``, every other row adds the gap between its two
    neighbours divided by the objective's range (max - min). An objective with a single value adds
    nothing. With ``n <= 2`` every row is ``+inf``. Larger = less crowded.
    """
    Y = _points(Y)
    n, d = Y.shape
    dist = np.zeros(n, dtype=np.float64)
    if n <= 2:
        dist[:] = np.inf
        return dist
    for c in range(d):
        order = np.argsort(Y[:, c], kind="stable")
        col = Y[order, c]
        width = col[-1] - col[0]
        if not width > 0:
            continue
        dist[order[0]] = dist[order[-1]] = np.inf
        if np.isfinite(width):
            dist[order[1:-1]] += (col[2:] - col[:-2]) / width
        else:  # an infinite value: only the extremes are told apart
            logger.debug("objective %d has an infinite value: its crowding gaps are left out", c)
    return dist


def _unit_scaled(Y: FloatArray) -> FloatArray:
    """``Y`` scaled per objective to [0, 1] over its finite values (an objective with one finite
    value maps to 0); non-finite values go one range beyond: +inf to 2, -inf to -1."""
    finite = np.isfinite(Y)
    lo = np.where(finite, Y, np.inf).min(axis=0)
    hi = np.where(finite, Y, -np.inf).max(axis=0)
    lo = np.where(np.isfinite(lo), lo, 0.0)  # an objective without a finite value
    width = np.where(hi > lo, hi - lo, 1.0)
    return np.clip((Y - lo) / width, -1.0, 2.0)


def _farthest_point_order(Z: FloatArray, first: int, count: int | None = None) -> IntArray:
    """The first ``count`` (default: all) rows of the greedy farthest-point traversal of the rows
    of ``Z``: ``first``, then each time the row whose distance to the rows already taken is the
    largest (ties: lowest index). O(count * k * d) for k rows; a k x k matrix of squared
    distances only up to ``_PAIRWISE_MAX`` rows (fewer numpy calls per step)."""
    k, d = Z.shape
    count = k if count is None else min(count, k)
    order = np.empty(count, dtype=np.intp)
    order[0] = first
    if count == 1:
        return order
    cols = [np.ascontiguousarray(Z[:, c]) for c in range(d)]
    gap = np.full(k, np.inf)  # squared distance of each row to the nearest row taken; -1 once taken
    nxt = first
    if k <= _PAIRWISE_MAX:  # small sets: all squared distances at once (same arithmetic), then row look-ups
        pairwise = np.subtract.outer(cols[0], cols[0])
        pairwise *= pairwise
        for col in cols[1:]:
            diff2 = np.subtract.outer(col, col)
            diff2 *= diff2
            pairwise += diff2
        for t in range(1, count):
            np.minimum(gap, pairwise[nxt], out=gap)  # rows taken stay at -1
            gap[nxt] = -1.0
            nxt = int(np.argmax(gap))
            order[t] = nxt
        return order
    step = np.empty(k)
    diff = np.empty(k)
    for t in range(1, count):
        # squared distances to the row just taken, a column at a time, in place (no (k, d) temporaries)
        np.subtract(cols[0], cols[0][nxt], out=step)
        np.multiply(step, step, out=step)
        for col in cols[1:]:
            np.subtract(col, col[nxt], out=diff)
            np.multiply(diff, diff, out=diff)
            np.add(step, diff, out=step)
        np.minimum(gap, step, out=gap)  # rows taken stay at -1
        gap[nxt] = -1.0
        nxt = int(np.argmax(gap))
        order[t] = nxt
    return order


def epsilon_net_order(Y: ArrayLike, first_objective: int = 0) -> IntArray:
    """The ε-net order of the rows of ``Y`` (``(n, d)``, minimization form), all rows taken as one
    set (call it per front): the tie-break of MO-ASHA (Schmucker, Donini, Zafar, Salinas,
    Archambeau, "Multi-objective asynchronous successive halving", 2021), a greedy
    farthest-point traversal (Gonzalez 1985; Clarkson 2006's ε-net) that spreads the first
    points of the order over the front.

    The first row is the one with the lowest value of objective ``first_objective`` (ties: lowest
    index); each next row is the one farthest (Euclidean) from all rows already taken (ties:
    lowest index), so every prefix of the order is an ε-net of the set with ε shrinking as it
    grows. Distances are measured after scaling each objective to [0, 1] over the finite values
    of ``Y`` (so seconds do not outweigh accuracies; a non-finite value counts as one range
    beyond). Deterministic: no random seed item. Returns a permutation of ``range(n)``. O(n² d).
    """
    Y = _points(Y)
    n, d = Y.shape
    if not 0 <= first_objective < d:
        raise ValueError(f"first_objective must be in [0, {d}), got {first_objective}")
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    return _farthest_point_order(_unit_scaled(Y), int(np.argmin(Y[:, first_objective])))


def _check_tie_break(tie_break: str) -> None:
    if tie_break not in ("eps_net", "crowding"):
        raise ValueError(f"tie_break must be 'eps_net' or 'crowding', got {tie_break!r}")


def _order_front(Y: FloatArray, Z: FloatArray, front: IntArray, tie_break: TieBreak, count: int) -> IntArray:
    """The first ``count`` rows of ``front`` (row indices of one front of ``Y``, in index order) in
    ``tie_break`` order; ``Z``: ``Y`` scaled by :func:`_unit_scaled` (for the ε-net)."""
    if len(front) <= 1:
        return front
    if tie_break == "eps_net":
        first = int(np.argmin(Y[front, 0]))
        return front[_farthest_point_order(Z[front], first, count)]
    return front[np.argsort(-crowding_distance(Y[front]), kind="stable")[:count]]


def rank_by_nondominated_sorting(
    Y: ArrayLike, tie_break: TieBreak = "eps_net", max_items: int | None = None
) -> IntArray:
    """A total order of the rows of ``Y`` (``(n, d)``, minimization form), best first: the rows of
    the Pareto front (:func:`pareto_ranks` 0), then those of rank 1, and so on; within a front,
    ``tie_break`` decides: ``"eps_net"`` (:func:`epsilon_net_order` of the front, with the
    objectives scaled over all of ``Y``: MO-ASHA's choice) or ``"crowding"`` (largest
    :func:`crowding_distance` within the front first, ties by lowest index: NSGA-II's).

    What MOASHA ranks a rung by (its top ``1/eta`` are the first ``ceil(n / eta)`` rows) and
    NSGA-II selects survivors by. ``max_items``: return only the first ``max_items`` rows of the
    order (fronts after the one reaching it are not ordered at all: cheaper for a top-k question;
    :func:`is_in_top` is cheaper still for one row). Returns row indices (a permutation of
    ``range(n)`` when ``max_items`` is None).
    """
    _check_tie_break(tie_break)
    Y = _points(Y)
    n = len(Y)
    limit = n if max_items is None else max(0, min(int(max_items), n))
    if limit == 0:
        return np.zeros(0, dtype=np.intp)
    ranks = pareto_ranks(Y)
    by_rank = np.argsort(ranks, kind="stable")
    bounds = np.flatnonzero(np.diff(ranks[by_rank])) + 1
    Z = _unit_scaled(Y) if tie_break == "eps_net" else Y
    out: list[IntArray] = []
    taken = 0
    for front in np.split(by_rank, bounds):
        front = _order_front(Y, Z, front, tie_break, limit - taken)  # the last one: only the rows needed
        out.append(front)
        taken += len(front)
        if taken >= limit:
            break
    return np.concatenate(out)[:limit]


def is_in_top(Y: ArrayLike, row: int, k: int, tie_break: TieBreak = "eps_net") -> bool:
    """Whether row ``row`` of ``Y`` (``(n, d)``, minimization form) is among the first ``k`` rows of
    :func:`rank_by_nondominated_sorting` (``Y``, ``tie_break``): MOASHA's rung question "is the
    new result in the top ``1/eta``?" (``k = ceil(n / eta)``), answered without ordering the
    rung: from the ranks, the rows of better fronts are counted; only when the row's front
    straddles the k-th place is that one front ordered, up to the place needed.

    Raises:
        ValueError: ``row`` is not a row of ``Y``, or ``tie_break`` is unknown.
    """
    _check_tie_break(tie_break)
    Y = _points(Y)
    n = len(Y)
    if not 0 <= row < n:
        raise ValueError(f"row {row} is not a row of the {n} rows given")
    if k <= 0:
        return False
    ranks = pareto_ranks(Y)
    rank = ranks[row]
    better = int(np.count_nonzero(ranks < rank))
    if better >= k:
        return False
    front = np.flatnonzero(ranks == rank)
    if better + len(front) <= k:
        return True
    Z = _unit_scaled(Y) if tie_break == "eps_net" else Y
    return bool(row in _order_front(Y, Z, front, tie_break, k - better))


def hypervolume(Y: ArrayLike, ref: ArrayLike) -> float:
    """The exact hypervolume of the rows of ``Y`` (``(n, d)``, minimization form) with respect to
    the reference point ``ref`` (``d`` finite values): the volume of the region dominated by the
    rows and bounded above by ``ref``. Rows that do not strictly dominate ``ref`` (``< ref`` in
    every objective) contribute nothing; an empty set has 0; a row with ``-inf`` gives ``+inf``.
    Dominated rows and duplicates change nothing.

    moocore's C code: O(n log n) for d = 2 and 3 (dimension sweep); the cost grows quickly with d
    beyond.
    """
    Y = _points(Y)
    d = Y.shape[1]
    r = _vector(ref, d, "ref")
    if not np.isfinite(r).all():
        raise ValueError(f"the reference point must be finite, got {r.tolist()}")
    P = Y[(Y < r).all(axis=1)]
    if len(P) == 0:
        return 0.0
    if not np.isfinite(P).all():
        return float("inf")
    if d == 1:
        return float(r[0] - P[:, 0].min())
    return float(_moocore().hypervolume(P, ref=r))


def hypervolume_contributions(Y: ArrayLike, ref: ArrayLike) -> FloatArray:
    """The exclusive hypervolume contribution of each row of ``Y`` (``(n, d)``, minimization form)
    to the hypervolume of the front, with respect to ``ref``: for a non-dominated row ``p``,
    ``hypervolume(F) - hypervolume(F without p)`` where ``F`` are the non-dominated rows.
    Dominated rows contribute 0 and are ignored (a row dominated by ``p`` alone does not reduce
    ``p``'s contribution, as it would under leave-one-out over all of ``Y``); duplicated rows
    contribute 0 (removing one copy leaves the other); so do rows not strictly dominating ``ref``.
    (For hypervolume-based selection, SMS-EMOA style, and EHVI checks.)

    moocore's C code (``hv_contributions``; O(n log n) for d = 2).
    """
    Y = _points(Y)
    n, d = Y.shape
    r = _vector(ref, d, "ref")
    if not np.isfinite(r).all():
        raise ValueError(f"the reference point must be finite, got {r.tolist()}")
    out = np.zeros(n, dtype=np.float64)
    inside = np.flatnonzero((Y < r).all(axis=1))
    if len(inside) == 0:
        return out
    P = Y[inside]
    if not np.isfinite(P).all():
        raise ValueError("a row with -inf has an infinite hypervolume: its contribution is undefined")
    if d == 1:  # the front is the best value; a single copy of it contributes the whole volume
        best = P[:, 0].min()
        winners = np.flatnonzero(P[:, 0] == best)
        if len(winners) == 1:
            out[inside[winners[0]]] = r[0] - best
        return out
    out[inside] = np.asarray(_moocore().hv_contributions(P, ref=r), dtype=np.float64)
    return out


def normalize(Y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> FloatArray:
    """``Y`` (``(n, d)``) scaled per objective so that ``lower`` maps to 0 and ``upper`` to 1 (one
    value per objective each; values outside stay outside). Where ``upper == lower`` the
    objective is only shifted (divided by 1). For comparing hypervolumes across benchmarks, with
    bounds fixed per benchmark (e.g. the ideal and nadir points over all methods and seeds).
    """
    Y = _points(Y)
    d = Y.shape[1]
    lo = _vector(lower, d, "lower")
    hi = _vector(upper, d, "upper")
    if (hi < lo).any():
        raise ValueError(f"upper {hi.tolist()} is below lower {lo.tolist()} in some objective")
    width = np.where(hi > lo, hi - lo, 1.0)
    result: FloatArray = (Y - lo) / width
    return result


def default_reference_point(Y: ArrayLike, margin: float = 0.1) -> FloatArray:
    """The reference point used when none is given: the nadir of the Pareto front of the finite
    rows of ``Y`` (``(n, d)``, minimization form; the worst value of each objective over the
    non-dominated rows) plus ``margin`` times the front's range in that objective (nadir - ideal),
    the common convention (as BoTorch's ``infer_reference_point``), so that every front point
    strictly dominates it and the extremes of the front count. Where the range is 0 (one point,
    or a flat front), ``margin * max(|nadir|, 1)`` is added instead.

    Rows with a non-finite value (a diverged trial: NaN as ``+inf``) are left out. Hypervolumes
    are comparable only under the same reference point: report it with the hypervolume.

    Raises:
        ValueError: ``margin <= 0``, or no row of ``Y`` is finite.
    """
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    Y = _points(Y)
    F = Y[np.isfinite(Y).all(axis=1)]
    if len(F) == 0:
        raise ValueError("no row with finite objective values: there is no front to take a reference point from")
    front = F[nondominated_mask(F)]
    nadir = front.max(axis=0)
    width = nadir - front.min(axis=0)
    width = np.where(width > 0, width, np.maximum(np.abs(nadir), 1.0))
    result: FloatArray = nadir + margin * width
    return result
