"""Multi-objective Bayesian optimization on our GP: methods ``MOBO`` and ``MOASHA-BO`` (L1).

* :class:`MOBOSearcher` (single fidelity, with FIFO): one :class:`~tunebench.models.gp.GaussianProcess`
  per objective (each kept by a :class:`~tunebench.searchers.gp.GPSurrogate`, the model keeper of
  the single-objective GP searchers: the same refit schedule, subsampling and exact resume),
  fitted on the objective vectors of the finished trials in *minimization form*
  (:meth:`tunebench.types.Objectives.vector`: maximized metrics negated; a diverged value, NaN or
  infinite, replaced by the worst finite value of its objective seen so far).  Each GP
  standardizes its targets (mean 0, standard deviation 1).  The initial random phase is BO's
  (``points_to_evaluate``, then random configs for the first 3 suggestions, and until 2
  observations are in).  Trials suggested and not finished yet are *pending*: each GP is
  conditioned on them at its posterior mean (:meth:`GaussianProcess.fantasize`), as BO does, and
  these believed values join the front the improvement is measured against (the "Kriging
  believer": without it, the mean of the improvement near a pending trial is unchanged, and
  asynchronous workers pile onto the same spot of the front).

* :class:`MultiFidelityMOBOSearcher` (with MOASHA = ``MOASHA-BO``): the same model, fitted on the
  objective vectors recorded at one *rung level* (each trial's result at the highest level its
  resource reached, as MOASHA's rungs record it): the highest level with at least
  ``min_level_points`` observations, else the lowest (as BOHB picks the data of its densities).
  Running trials that have not reached that level are pending there.  When the level moves up,
  the GPs start afresh on its observations.

Acquisition, 2 or 3 objectives: **expected hypervolume improvement** (EHVI) over the current
observed Pareto front (the non-dominated finite observations of the modelled level) with respect
to :func:`tunebench.pareto.default_reference_point` of those observations.  The objectives are
scaled to ``[0, 1]`` between the front's ideal point and the reference point (EHVI's ranking does
not change under such a per-objective scaling; it only keeps the numbers well-conditioned).

*Exact, not Monte Carlo, in 2 and 3 dimensions.*  The region that a new point ``y`` can add to
the hypervolume (below the reference point, not dominated by the front) is cut into axis-aligned
cells ``[l_b, u_b)`` (:func:`nondominated_cells`: in 2-D the ``k + 1`` cells between consecutive
points of the sorted front of ``k`` points; in 3-D at most ``2 k + 1`` boxes from a sweep up the
third objective).  The improvement of ``y`` is then
``HVI(y) = sum_b prod_j (u_bj - max(y_j, l_bj))^+``, a sum of products of functions of one
coordinate each, so with independent Gaussian marginals (one GP per objective)
``EHVI = sum_b prod_j E[(u_bj - max(Y_j, l_bj))^+]``, and each factor is a difference of two
single-objective expected improvements: ``EI_j(u_bj) - EI_j(l_bj)`` (with
``EI_j(t) = E[(t - Y_j)^+]``, ``EI_j(-inf) = 0``).  This is the closed form of the 2-D EHVI
(Emmerich et al. 2006) and of the box-decomposition EHVI (Yang et al. 2019) in 3-D.  A Monte
Carlo estimate would need the same cells *per sample* (``S`` times the cost, ``S`` = 64 to 512
samples) and add sampling noise that makes the local search of the acquisition optimizer stall
on flat, noisy plateaus; the exact sum costs ``O(m * B * d)`` for ``m`` candidates and ``B``
cells (``B <= 2 k + 1``).  It is computed in the log domain
(:func:`log_expected_hypervolume_improvement`: log EIs, ``log1mexp`` of their differences,
``logsumexp`` over the cells), so that a candidate far behind the front still has a slope for the
local search instead of an underflowed 0.

More than 3 objectives (box decompositions grow quickly with the dimension): random augmented Chebyshev
scalarizations (ParEGO, Knowles 2006): at each suggestion a fresh weight vector ``w`` drawn
uniformly from the simplex; the objectives are scaled to ``[0, 1]`` over the observations and
``s(y) = max_j w_j y_j + 0.05 sum_j w_j y_j`` becomes the target of one GP (its hyperparameters
refitted when the observations grew by ``refit_factor``, else only re-conditioned), maximized by
log expected improvement below the best scalarized observation, pending trials fantasized.

Candidates are optimized by :class:`tunebench.models.acquisition.AcquisitionOptimizer` (random
configs, then local moves from the best of them and from up to 3 configs of the front), never
returning a config suggested before.

Determinism and resume: suggestions are a function of the seed and the calls.  ``state_dict``
(JSON-able) holds the RNG, the configs suggested, the pending trials, the observations and each
GP's hyperparameters and factorization batches; a resumed searcher answers exactly as the
original (``tests/test_mobo.py``).

Cost (``benchmarks/mobo_decision_time.py``, 4 workers, on a shared 2-CPU machine with a load
average of 8): 20 ms per decision at 500 observations with 2 objectives (target 100 ms: 0.20 x),
11 ms at 100, 28 ms at 250; with 3 objectives 18, 41 and 52 ms.  Two or three GPs of at most
``max_model_points`` points, refitted on the surrogate schedule (refits included, amortized), and
an EHVI over at most ``2 k + 1`` cells per candidate.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.special import logsumexp

from tunebench.errors import UserError
from tunebench.fidelity import FidelityLadder
from tunebench.models.acquisition import log_expected_improvement
from tunebench.models.gp import GaussianProcess
from tunebench.pareto import default_reference_point, nondominated_mask, pareto_ranks
from tunebench.searchers.gp import GPSurrogate, _check_positive_int, _FinalResultObservations, _GPSearcherBase, _Rows
from tunebench.space import hyperparameters
from tunebench.types import Config, Objectives, Result, float_from_json, json_float

logger = logging.getLogger(__name__)

__all__ = [
    "MOBOSearcher",
    "MultiFidelityMOBOSearcher",
    "chebyshev_scalarization",
    "expected_hypervolume_improvement",
    "log_expected_hypervolume_improvement",
    "nondominated_cells",
]

#: up to this many objectives: EHVI (exact, over the cells); above: random scalarizations
MAX_EHVI_OBJECTIVES = 3
#: weight of the augmentation term of the Chebyshev scalarization (ParEGO's rho)
CHEBYSHEV_RHO = 0.05
#: local searches of the acquisition optimizer also start from this many configs of the front
N_FRONT_STARTS = 3

_LN2 = math.log(2.0)


# -- EHVI -----------------------------------------------------------------------------------------


def nondominated_cells(front: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned cells ``[lower_b, upper_b)`` that partition the region below ``ref`` not
    dominated by any row of ``front`` (``(k, d)``, minimization form, ``d`` from 1 to 3; rows
    not strictly below ``ref`` and dominated rows change nothing): what a new point can add to
    the hypervolume.  Lower bounds may be ``-inf``.

    * 2-D: the ``k + 1`` cells between consecutive points of the sorted front (``k`` points):
      ``[a_i, a_{i+1}) x (-inf, b_i)`` with ``a_0 = -inf``, ``b_0 = ref_2``, ``a_{k+1} = ref_1``.
    * 3-D: a sweep up the third objective over the 2-D cells of the points below: inserting a
      point closes the cells it cuts (each becomes a box from the height where it opened to the
      point's) and opens 2, so there are at most ``2 k + 1`` boxes.

    Returns:
        ``(lower, upper)``, each ``(B, d)``.

    Raises:
        ValueError: shapes that do not match, or more than 3 objectives.
    """
    front = np.asarray(front, dtype=float)
    ref = np.asarray(ref, dtype=float).reshape(-1)
    d = ref.shape[0]
    if front.ndim != 2 or front.shape[1] != d:
        raise ValueError(f"front must be (k, {d}) for a reference point of {d} values, got shape {front.shape}")
    if not 1 <= d <= MAX_EHVI_OBJECTIVES:
        raise ValueError(f"cells are computed for 1 to {MAX_EHVI_OBJECTIVES} objectives, got {d}")
    P = front[(front < ref).all(axis=1)]
    if d == 1:
        top = float(P[:, 0].min()) if len(P) else float(ref[0])
        return np.array([[-math.inf]]), np.array([[top]])
    if d == 2:
        P = np.unique(P[nondominated_mask(P)], axis=0) if len(P) else P  # sorted by f1, so f2 decreasing
        a = np.concatenate([[-math.inf], P[:, 0], [ref[0]]])
        b = np.concatenate([[ref[1]], P[:, 1]])
        lower = np.stack([a[:-1], np.full(len(b), -math.inf)], axis=1)
        upper = np.stack([a[1:], b], axis=1)
        return lower, upper
    return _sweep_cells_3d(P, ref)


def _sweep_cells_3d(P: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3-D cells of :func:`nondominated_cells` (``P``: rows strictly below ``ref``)."""
    r1, r2, r3 = (float(v) for v in ref)
    xs: list[float] = []  # the 2-D staircase of the points swept so far: x increasing,
    ys: list[float] = []  # y decreasing
    #: open cells, cell i = [x_{i-1}, x_i) x (-inf, y_{i-1}) (x_{-1} = -inf, y_{-1} = r2, x_k = r1),
    #: each with the height where it opened
    starts: list[float] = [-math.inf]
    boxes: list[tuple[float, float, float, float, float]] = []  # x_lo, x_hi, y_hi, z_lo, z_hi

    def close(i: int, z: float) -> None:
        if z > starts[i]:
            lo = xs[i - 1] if i > 0 else -math.inf
            hi = xs[i] if i < len(xs) else r1
            boxes.append((lo, hi, ys[i - 1] if i > 0 else r2, starts[i], z))

    for p1, p2, p3 in P[np.lexsort((P[:, 1], P[:, 0], P[:, 2]))].tolist():
        j = bisect.bisect_right(xs, p1)
        if j > 0 and ys[j - 1] <= p2:
            continue  # dominated in 2-D by a point below: changes nothing
        j = bisect.bisect_left(xs, p1)
        e = j
        while e < len(xs) and ys[e] >= p2:  # points dominated by p (x >= p1, y >= p2)
            e += 1
        for i in range(j, e + 1):  # cells j..e are cut by p
            close(i, p3)
        xs[j:e] = [p1]
        ys[j:e] = [p2]
        starts[j:e + 1] = [p3, p3]
    for i in range(len(starts)):
        close(i, r3)
    arr = np.array(boxes, dtype=float).reshape(-1, 5)
    lower = np.stack([arr[:, 0], np.full(len(arr), -math.inf), arr[:, 3]], axis=1)
    upper = np.stack([arr[:, 1], arr[:, 2], arr[:, 4]], axis=1)
    return lower, upper


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x <= 0`` (accurate near 0 and far below; ``-inf`` at 0)."""
    x = np.minimum(x, 0.0)
    with np.errstate(divide="ignore"):
        out: np.ndarray = np.where(x > -_LN2, np.log(-np.expm1(np.maximum(x, -_LN2))),
                                   np.log1p(-np.exp(np.minimum(x, -_LN2))))
    return out


def log_expected_hypervolume_improvement(mean: np.ndarray, var: np.ndarray, lower: np.ndarray,
                                         upper: np.ndarray) -> np.ndarray:
    """``log EHVI`` of ``m`` points with independent Gaussian objectives (``mean`` and ``var``:
    ``(m, d)``, minimization form) over the cells ``(lower, upper)`` of
    :func:`nondominated_cells`: ``log sum_b prod_j (EI_j(upper_bj) - EI_j(lower_bj))`` with
    ``EI_j(t) = E[(t - Y_j)^+]`` (see the module docstring), computed from log EIs.  ``-inf``
    where the improvement is 0 (no cell)."""
    mean = np.asarray(mean, dtype=float)
    var = np.asarray(var, dtype=float)
    m, d = mean.shape
    B = lower.shape[0]
    if B == 0:
        return np.full(m, -math.inf)
    total = np.zeros((m, B))
    for j in range(d):
        values, inverse = np.unique(np.concatenate([upper[:, j], lower[:, j]]), return_inverse=True)
        finite = np.isfinite(values)
        log_ei = np.full((m, len(values)), -math.inf)
        log_ei[:, finite] = log_expected_improvement(mean[:, j, None], var[:, j, None], values[None, finite])
        lu = log_ei[:, inverse[:B]]
        ll = log_ei[:, inverse[B:]]
        with np.errstate(invalid="ignore"):  # -inf - -inf only where lu is -inf too: a 0 factor
            diff = ll - lu
        diff = np.where(np.isnan(diff), 0.0, diff)
        total += lu + _log1mexp(diff)
    out: np.ndarray = logsumexp(total, axis=1)
    return out


def expected_hypervolume_improvement(mean: np.ndarray, var: np.ndarray, front: np.ndarray,
                                     ref: np.ndarray) -> np.ndarray:
    """The expected hypervolume improvement of ``m`` points with independent Gaussian objectives
    (``mean``, ``var``: ``(m, d)``, minimization form) over ``front`` (``(k, d)``) with respect to
    ``ref``: exact (see the module docstring)."""
    lower, upper = nondominated_cells(front, ref)
    out: np.ndarray = np.exp(log_expected_hypervolume_improvement(mean, var, lower, upper))
    return out


def chebyshev_scalarization(Y: np.ndarray, weights: np.ndarray, rho: float = CHEBYSHEV_RHO) -> np.ndarray:
    """ParEGO's augmented Chebyshev scalarization of the rows of ``Y`` (``(n, d)``, minimization
    form): each objective scaled to ``[0, 1]`` over the rows (a constant one to 0), then
    ``max_j w_j y_j + rho * sum_j w_j y_j`` (lower is better)."""
    Y = np.asarray(Y, dtype=float)
    lo = Y.min(axis=0)
    width = Y.max(axis=0) - lo
    Z = (Y - lo) / np.where(width > 0, width, 1.0)
    W = Z * np.asarray(weights, dtype=float)
    out: np.ndarray = W.max(axis=1) + rho * W.sum(axis=1)
    return out


# -- observations ---------------------------------------------------------------------------------


class _Observations:
    """The objective vectors observed at one level (append-only), with their encoded configs."""

    def __init__(self, dim: int, n_objectives: int):
        self.tids: list[int] = []
        self.Y: list[list[float]] = []  #: non-finite values replaced by the worst finite one seen before
        self.finite: list[bool] = []  #: whether the vector was finite as reported
        self.X = _Rows(dim)
        self.recorded: set[int] = set()
        self._worst = np.full(n_objectives, -math.inf)

    def __len__(self) -> int:
        return len(self.tids)

    def add(self, tid: int, row: np.ndarray, vector: Sequence[float]) -> None:
        """Record ``vector`` of trial ``tid`` (left out when one of its non-finite values has no
        finite value of its objective to stand for it yet)."""
        v = np.asarray(vector, dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            if not np.isfinite(self._worst[bad]).all():
                return
            v = np.where(bad, self._worst, v)
        np.maximum(self._worst, v, out=self._worst)
        self.tids.append(tid)
        self.Y.append([float(x) for x in v])
        self.finite.append(not bool(bad.any()))
        self.X.append(row)
        self.recorded.add(tid)

    def to_json(self) -> list[list[Any]]:
        return [[t, y, f] for t, y, f in zip(self.tids, self.Y, self.finite, strict=True)]


# -- searchers ------------------------------------------------------------------------------------


class MOBOSearcher(_FinalResultObservations, _GPSearcherBase):
    """Asynchronous multi-objective Bayesian optimization with one GP per objective and EHVI
    (2-3 objectives) or random Chebyshev scalarizations (more), method ``MOBO``.  The objective
    vector of a trial is its final result (the one passed to :meth:`on_complete`, or the last
    one seen when :meth:`on_stop` ends it).  See the module docstring.

    Args:
        config_space: name -> domain or constant.
        objectives: the metrics and their modes (``metric``/``mode`` of the searcher are the first).
        seed: seed of the random number generator.
        points_to_evaluate: configs proposed first (missing keys take the space's defaults).
        num_init_random: suggestions (``points_to_evaluate`` included) before the model is used
            (it also waits for 2 observations); default 3, as BO.
        input_warping, refit_factor, refit_every, max_model_points, max_fit_points,
        n_candidates, n_starts, max_steps, blas_threads: as
            :class:`tunebench.searchers.gp.GPSearcher` (for each objective's GP).

    Raises:
        ValueError: an invalid argument (the message names it).
    """

    def _default_num_init_random(self, n_hp: int) -> int:
        """3 whatever the dimension, as BO."""
        return 3

    def __init__(
        self,
        config_space: dict[str, Any],
        objectives: Objectives,
        seed: int = 0,
        *,
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(objectives, Objectives):
            raise ValueError(f"objectives must be an Objectives, got {objectives!r}")
        super().__init__(config_space, objectives.metrics[0], objectives.modes[0], seed,
                         points_to_evaluate=points_to_evaluate, num_init_random=num_init_random, **options)
        self.objectives = objectives
        self.n_objectives = len(objectives.metrics)
        self._dim = self._encoder.encoded_dim + self._extra_dims
        self._surrogates: list[GPSurrogate] = self._new_surrogates()
        self._model_level: int | None = None  #: level the surrogates model (None: none yet)
        self._scalar_gp = GaussianProcess(self._dim, warp_dims=self._surrogate.gp.warp_dims.tolist())
        self._scalar_fit_n = 0  #: observations at the last fit of the scalarized GP (0: never)
        self._levels: list[_Observations] = [_Observations(self._dim, self.n_objectives)]
        self._start_life_cycle()  # (the last value of a running trial: its vector)

    def _new_surrogates(self) -> list[GPSurrogate]:
        self._surrogate = self._make_surrogate()
        if self.n_objectives > MAX_EHVI_OBJECTIVES:
            return []  # one scalarized GP instead
        return [self._surrogate] + [self._make_surrogate() for _ in range(self.n_objectives - 1)]

    # -- what the model sees (the multi-fidelity subclass changes these) ------------------------

    def _current_level(self) -> int:
        """Index in ``_levels`` of the observations the model is fitted on."""
        return 0

    def _pending_rows(self, data: _Observations) -> list[np.ndarray]:
        """Encoded configs of the trials pending at the modelled level."""
        return [self._rows[t] for t in self._pending if t in self._rows]

    def _n_observations(self) -> int:
        return len(self._levels[self._current_level()])

    # -- events ---------------------------------------------------------------------------------

    def _vector(self, trial_id: int, result: Result) -> tuple[float, ...]:
        return self.objectives.vector(result, trial_id)

    def _final_value(self, trial_id: int, result: Result) -> tuple[float, ...]:
        return self._vector(trial_id, result)

    def _observe(self, trial_id: int, config: Config | None, vector: Sequence[float], level: int = 0) -> None:
        self._levels[level].add(trial_id, self._row(trial_id, config), vector)

    # -- model ----------------------------------------------------------------------------------

    def _select(self, n: int, budget: int) -> np.ndarray:
        """Subsample of the first ``n`` observations of the modelled level: the first quarter
        of ``budget`` by non-dominated sorting rank (the front first), the rest drawn at random
        (seeded by the seed, ``n`` and the level: replayable)."""
        level = self._current_level()
        Y = np.asarray(self._levels[level].Y[:n])
        order = np.argsort(pareto_ranks(Y), kind="stable")
        n_top = budget // 4
        top, rest = order[:n_top], order[n_top:]
        drawn = self._sub_rng(n, budget, level).choice(len(rest), size=budget - n_top, replace=False)
        return np.sort(np.concatenate([top, rest[drawn]]))

    def _model_based_config(self) -> Config | None:
        level = self._current_level()
        if level != self._model_level:  # a new level: fresh models on its observations
            self._surrogates = self._new_surrogates()
            self._scalar_fit_n = 0
            self._model_level = level
        data = self._levels[level]
        X = data.X.array
        Y = np.asarray(data.Y)
        finite = np.asarray(data.finite)
        if not finite.any():
            return None
        pending = self._pending_rows(data)
        P = np.stack(pending) if pending else None
        if self.n_objectives > MAX_EHVI_OBJECTIVES:
            score, starts = self._scalarized_score(X, Y, P)
        else:
            score, starts = self._ehvi_score(X, Y, finite, P)
        return self._maximize(score, starts)

    def _ehvi_score(self, X: np.ndarray, Y: np.ndarray, finite: np.ndarray,
                    P: np.ndarray | None) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        gps = [s.update(X, Y[:, j], self._select) for j, s in enumerate(self._surrogates)]
        F = Y[finite]
        on_front = nondominated_mask(F)
        ref = default_reference_point(F)
        believed = F[on_front]
        if P is not None:
            # pending trials are believed to return their posterior means: on the front (so that
            # a worker does not chase the improvement another one is already evaluating), and
            # each GP conditioned on them (less variance near them)
            means = np.stack([gp.predict(P, return_var=False)[0] for gp in gps], axis=1)
            believed = np.concatenate([believed, means])
            gps = [gp.fantasize(P) for gp in gps]
        front = np.unique(believed[nondominated_mask(believed)], axis=0)
        ideal = np.minimum(front.min(axis=0), F[on_front].min(axis=0))
        scale = ref - ideal  # > 0: the reference point is beyond the front's nadir
        lower, upper = nondominated_cells((front - ideal) / scale, np.ones(self.n_objectives))

        def score(C: np.ndarray) -> np.ndarray:
            mean = np.empty((C.shape[0], self.n_objectives))
            var = np.empty_like(mean)
            for j, gp in enumerate(gps):
                mean[:, j], var[:, j] = gp.predict(C)
            return log_expected_hypervolume_improvement((mean - ideal) / scale, var / scale**2, lower, upper)

        front_rows = X[np.flatnonzero(finite)[on_front]]
        front_rows = front_rows[np.argsort(F[on_front][:, 0], kind="stable")]
        picks = np.unique(np.round(np.linspace(0, len(front_rows) - 1, N_FRONT_STARTS)).astype(np.intp))
        return score, front_rows[picks]

    def _scalarized_score(self, X: np.ndarray, Y: np.ndarray,
                          P: np.ndarray | None) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        weights = self._rng.dirichlet(np.ones(self.n_objectives))
        s = chebyshev_scalarization(Y, weights)
        n = len(s)
        budget = self._surrogate.max_model_points
        rows = np.arange(n) if n <= budget else self._select(n, budget)
        gp = self._scalar_gp
        if not self._scalar_fit_n or n >= self._scalar_fit_n * self._surrogate.refit_factor:
            k = self._surrogate.max_fit_points
            fit_rows = rows if len(rows) <= k else self._select(n, k)
            gp.fit(X[fit_rows], s[fit_rows], restart_from_default=n <= 100)
            self._scalar_fit_n = n
        gp.set_data(X[rows], s[rows])
        if P is not None:
            gp = gp.fantasize(P)
        best = float(s.min())

        def score(C: np.ndarray) -> np.ndarray:
            mean, var = gp.predict(C)
            return log_expected_improvement(mean, var, best)

        return score, X[[int(np.argmin(s))]]

    # -- state ----------------------------------------------------------------------------------

    def _model_state(self) -> dict[str, Any]:
        state = self._base_state()
        del state["surrogate"]  # (one of the surrogates below)
        state.update(
            model_level=self._model_level,
            surrogates=[s.state_dict() for s in self._surrogates],
            scalar_theta=[float(x) for x in self._scalar_gp.theta],
            scalar_fit_n=self._scalar_fit_n,
            levels=[data.to_json() for data in self._levels],
        )
        return state

    def _load_model_state(self, state: dict[str, Any]) -> None:
        self._load_base_state(state)
        self._levels = []
        for obs in state["levels"]:
            data = _Observations(self._dim, self.n_objectives)
            for t, y, _ in obs:
                data.add(int(t), self._rows[int(t)], [float(v) for v in y])
            data.finite = [bool(f) for _, _, f in obs]
            self._levels.append(data)
        self._model_level = state["model_level"]
        self._surrogates = self._new_surrogates()
        if self._model_level is not None:
            data = self._levels[self._model_level]
            Y = np.asarray(data.Y)
            for j, (s, saved) in enumerate(zip(self._surrogates, state["surrogates"], strict=True)):
                s.load_state_dict(saved, data.X.array, Y[:, j])
        self._scalar_gp.set_theta(state["scalar_theta"])
        self._scalar_fit_n = int(state["scalar_fit_n"])

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: RNG, configs suggested, pending trials, observations, models."""
        state = self._model_state()
        state.update(
            pending=list(self._pending),
            paused=sorted(self._paused),
            last={str(t): [json_float(v) for v in vec] for t, vec in self._last.items()},
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (on a searcher built with the same arguments); the GPs are
        rebuilt from the observations exactly as they were."""
        self._load_model_state(state)
        self._pending = {int(t): None for t in state["pending"]}
        self._paused = {int(t) for t in state["paused"]}
        self._last = {int(t): tuple(float_from_json(v) for v in vec) for t, vec in state["last"].items()}


class MultiFidelityMOBOSearcher(MOBOSearcher):
    """:class:`MOBOSearcher` on the results of a multi-fidelity scheduler (MOASHA: method
    ``MOASHA-BO``): a result counts at the highest rung level its resource reached (once per
    trial and level); the model is fitted on the highest level with at least
    ``min_level_points`` observations, else on the lowest (see the module docstring).

    Args:
        config_space, objectives, seed, points_to_evaluate: as :class:`MOBOSearcher`.
        resource_attr: name of the resource in results (e.g. ``"epoch"``).
        max_t, grace_period, reduction_factor, rung_levels: the scheduler's fidelity ladder
            (validated as :class:`~tunebench.fidelity.FidelityLadder` does); its levels and
            ``max_t`` are where observations are recorded.
        min_level_points: observations a level needs to be modelled; default the number of
            hyperparameters + 1 (BOHB's rule), at least 4.
        num_init_random: as :class:`MOBOSearcher`, but by default ``max(5, number of
            hyperparameters + 1)`` (early results are cheap, at the lowest rung), as MOBSTER.
        options: as :class:`MOBOSearcher`.

    Raises:
        ValueError: an invalid argument (the message names it).
    """

    def _default_num_init_random(self, n_hp: int) -> int:
        """``max(5, n_hp + 1)``, as MOBSTER."""
        return max(5, n_hp + 1)

    def __init__(
        self,
        config_space: dict[str, Any],
        objectives: Objectives,
        seed: int = 0,
        *,
        resource_attr: str,
        max_t: float,
        rung_levels: Sequence[float] | None = None,
        grace_period: float = 1,
        reduction_factor: float = 3,
        min_level_points: int | None = None,
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        **options: Any,
    ) -> None:
        if not resource_attr or not isinstance(resource_attr, str):
            raise ValueError(f"resource_attr must be the name of the reported resource, got {resource_attr!r}")
        ladder = FidelityLadder.geometric(max_t, grace_period, reduction_factor, rung_levels=rung_levels)
        super().__init__(config_space, objectives, seed, points_to_evaluate=points_to_evaluate,
                         num_init_random=num_init_random, **options)
        self.resource_attr = resource_attr
        self.levels = [float(r) for r in ladder.levels]  #: rung levels and max_t, increasing
        if min_level_points is None:
            min_level_points = max(4, len(hyperparameters(config_space)) + 1)
        self.min_level_points = _check_positive_int("min_level_points", min_level_points, 2)
        self._levels = [_Observations(self._dim, self.n_objectives) for _ in self.levels]
        self._running = self._pending  #: trials that will report more (ordered set)

    def _current_level(self) -> int:
        """The highest level with ``min_level_points`` observations, else the lowest."""
        for i in range(len(self._levels) - 1, -1, -1):
            if len(self._levels[i]) >= self.min_level_points:
                return i
        return 0

    def _pending_rows(self, data: _Observations) -> list[np.ndarray]:
        """Running trials without an observation at the modelled level."""
        return [self._rows[t] for t in self._running if t in self._rows and t not in data.recorded]

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for every result: its vector becomes an observation at the highest level its
        resource reached, unless the trial has one there already.

        Raises:
            UserError: the result lacks the resource or an objective, or one is not a number.
        """
        try:
            r = result[self.resource_attr]
        except KeyError:
            raise UserError(
                f"the result has no resource '{self.resource_attr}' (reported keys: {', '.join(sorted(result))})"
            ) from None
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise UserError(f"resource '{self.resource_attr}' = {r!r} is not a number")
        vector = self._vector(trial_id, result)
        level = int(np.searchsorted(self.levels, r, side="right")) - 1
        if level >= 0 and trial_id not in self._levels[level].recorded:
            self._observe(trial_id, config, vector, level)

    def on_complete(self, trial_id: int, config: Config, result: Result | None) -> None:
        """Called when the trial ends normally: no longer pending."""
        self._running.pop(trial_id, None)
        self._paused.discard(trial_id)

    def on_error(self, trial_id: int, config: Config) -> None:
        """Called when the trial failed: no longer pending (its results stay observations)."""
        self._running.pop(trial_id, None)
        self._paused.discard(trial_id)

    def on_stop(self, trial_id: int, config: Config, paused: bool) -> None:
        """Called when the scheduler stops or pauses the trial: no longer pending; a paused
        trial may come back (:meth:`on_resume`)."""
        self._running.pop(trial_id, None)
        if paused:
            self._paused.add(trial_id)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: RNG, configs suggested, running trials, observations per level, models."""
        state = self._model_state()
        state.update(running=list(self._running), paused=sorted(self._paused))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (on a searcher built with the same arguments)."""
        self._load_model_state(state)
        self._pending = {int(t): None for t in state["running"]}
        self._running = self._pending
        self._paused = {int(t) for t in state["paused"]}
