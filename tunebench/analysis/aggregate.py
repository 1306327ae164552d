"""Aggregation of an experiment grid over seeds: curves on a common time grid, IQM with
bootstrap confidence intervals, mean and standard error, median and quartiles, normalized
regret and average ranks over time.

Conventions:

* **Time grid.** A benchmark's runs are compared at times given as *fractions of its budget*
  (``max_wallclock_time``): ``t = fraction * budget``. The fractions run from the first result
  of any run to 1; they are log-spaced when that range spans two orders of magnitude or more
  (:func:`fraction_grid`), linear otherwise. Fractions make benchmarks of different budgets
  comparable (average ranks over benchmarks).
* **Resampling.** A best-so-far curve is a step function: its value at ``t`` is the best after
  the last result at or before ``t``; NaN before the first result (:func:`resample`).
* **Seeds without a value.** Statistics at a time are over the seeds that have a value then,
  and NaN where fewer than ``min_fraction`` (default half) of the seeds have one.
* **Normalized regret** of a benchmark (:func:`regret_bounds`): ``(value - best) / (worst -
  best)``, the same formula in both modes with ``best``/``worst`` in metric units. ``best`` is
  the best value any run found, or the benchmark's known optimum where the registry's blackbox
  knows one and it is better. ``worst`` is the *median over runs of their first result*: what a
  typical first configuration gives, so regret 1 is "no better than a first guess" (robust to
  one diverged configuration, unlike the worst first result; early values can exceed 1). If it
  is no worse than ``best`` (all runs alike), the worst first result is used, else a scale of 1.
* **Ranks** (:func:`rank_curves`, :func:`average_ranks`): per benchmark and seed, the methods'
  best-so-far values at each time are ranked (1 = best; ties share the average rank, a method
  without a result yet ranks last); a seed counts if every compared method has it. Ranks are
  averaged over those seeds, then over benchmarks.
* **Multi-objective benchmarks** and **constraints**: a curve is what :attr:`Grid.curves` holds,
  the best *feasible* value so far, or for several objectives the normalized hypervolume of the
  feasible front so far (larger is better, :meth:`Grid.curve_mode`; see
  :mod:`tunebench.analysis.hypervolume`). Ranks and regret read the curves the same way;
  :func:`summarize_hypervolume` tabulates the hypervolume itself with its band.
* **IQM** (:func:`iqm`): the interquartile mean, the mean of the values left after cutting
  ``floor(n/4)`` of the lowest and as many of the highest (as ``scipy.stats.trim_mean(x, 0.25)``).
  Its confidence interval is the percentile bootstrap over seeds (:func:`bootstrap_ci`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tunebench.analysis.results import Grid
from tunebench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "STATISTICS",
    "iqm",
    "bootstrap_ci",
    "aggregate",
    "resample",
    "fraction_grid",
    "curve_matrix",
    "regret_bounds",
    "normalized_regret",
    "rank_curves",
    "average_ranks",
    "summarize",
    "summarize_hypervolume",
]

logger = logging.getLogger(__name__)

#: the statistics :func:`aggregate` computes: IQM with a bootstrap CI, mean +- standard error,
#: median with the quartiles
STATISTICS = ("iqm", "mean", "median")

#: ``benchmark`` of the rows of :func:`summarize` that aggregate over all benchmarks
ALL = "ALL"


# -- statistics ---------------------------------------------------------------------------------


def iqm(x: Any, axis: int = 0) -> np.ndarray:
    """Interquartile mean of ``x`` along ``axis``, ignoring NaN: of the ``k`` numbers, the
    ``floor(k/4)`` smallest and as many largest are cut and the rest averaged (NaN if ``k == 0``).
    Equals ``scipy.stats.trim_mean(x, 0.25, axis)`` on arrays without NaN."""
    a = np.moveaxis(np.asarray(x, dtype=float), axis, -1)
    n = a.shape[-1]
    s = np.sort(a, axis=-1)  # NaN sorts last
    k = np.sum(~np.isnan(a), axis=-1)
    cut = k // 4
    pos = np.arange(n)
    keep = (pos >= cut[..., None]) & (pos < (k - cut)[..., None])
    count = keep.sum(axis=-1)
    total = np.where(keep, s, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def bootstrap_ci(samples: Any, statistic: Callable[..., np.ndarray] = iqm, *, n_boot: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap confidence interval of ``statistic`` over the first axis of
    ``samples`` (the seeds), for every entry of the other axes at once.

    ``n_boot`` resamples of the seeds (with replacement, one draw of seed indices shared by all
    columns, so each resample keeps whole curves together) from ``numpy.random.default_rng(seed)``;
    ``statistic(resampled, axis=1)`` is evaluated vectorized, in chunks of bounded memory.
    Returns ``(lower, upper)``: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of the bootstrap distribution (NaN where every resample is NaN).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be a positive number of resamples, got {n_boot}")
    x = np.asarray(samples, dtype=float)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError("bootstrap_ci needs at least one sample along the first axis")
    n = x.shape[0]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    stats = np.empty((n_boot,) + x.shape[1:])
    per_chunk = max(1, 4_000_000 // max(1, x.size))  # resamples per chunk: about 32 MB at a time
    for start in range(0, n_boot, per_chunk):
        stats[start:start + per_chunk] = statistic(x[idx[start:start + per_chunk]], axis=1)
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    if np.isnan(stats).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as documented
            lo, hi = np.nanquantile(stats, q, axis=0)
    else:
        lo, hi = np.quantile(stats, q, axis=0)
    return lo, hi


def aggregate(samples: Any, statistic: str = "iqm", *, n_boot: int = 2000, confidence: float = 0.95,
              seed: int = 0, min_fraction: float = 0.5) -> dict[str, np.ndarray]:
    """Aggregate ``samples`` (shape ``(n_seeds, ...)``, NaN for a missing value) over seeds.

    ``statistic``: ``"iqm"`` (interval: bootstrap ``confidence`` interval), ``"mean"``
    (interval: mean +- one standard error) or ``"median"`` (interval: first to third quartile).
    Returns ``{"center", "lower", "upper", "n"}`` arrays of the shape of one sample; ``n`` is the
    number of seeds with a value; all are NaN where fewer than ``min_fraction`` of the seeds
    have one.
    """
    if statistic not in STATISTICS:
        raise UserError(f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    x = np.asarray(samples, dtype=float)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError("aggregate needs at least one seed (first axis)")
    n = np.sum(~np.isnan(x), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty columns: NaN
        if statistic == "iqm":
            center = iqm(x, axis=0)
            lower, upper = bootstrap_ci(x, iqm, n_boot=n_boot, confidence=confidence, seed=seed)
        elif statistic == "mean":
            center = np.nanmean(x, axis=0)
            sem = np.nanstd(x, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1))
            sem = np.where(n > 1, sem, 0.0)
            lower, upper = center - sem, center + sem
        else:
            lower, center, upper = np.nanpercentile(x, [25, 50, 75], axis=0)
    enough = n >= max(1, math.ceil(min_fraction * x.shape[0]))
    out = {k: np.where(enough, v, np.nan) for k, v in (("center", center), ("lower", lower), ("upper", upper))}
    out["n"] = n
    return out


# -- curves on a time grid ------------------------------------------------------------------------


def resample(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Step function through ``(times, values)`` (``times`` sorted) evaluated at ``at``: the
    value of the last point at or before each time, NaN before the first point."""
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    at = np.asarray(at, dtype=float)
    i = np.searchsorted(times, at, side="right") - 1
    out = values[np.maximum(i, 0)] if len(values) else np.full(at.shape, np.nan)
    return np.where(i >= 0, out, np.nan)


def _first_fraction(grid: Grid, benchmarks: Sequence[str]) -> float:
    """Smallest positive (time of a first result / budget) over the runs of ``benchmarks``."""
    first = math.inf
    for b in benchmarks:
        budget = grid.budget(b)
        rows = grid.runs[grid.runs["benchmark"] == b]
        for m, s in zip(rows["method"], rows["seed"], strict=True):
            times = grid.curves[(b, m, int(s))][0]
            positive = times[times > 0]
            if len(positive):
                first = min(first, float(positive[0]) / budget)
    return first if math.isfinite(first) and first < 1 else 1e-3


def fraction_grid(grid: Grid, benchmarks: Sequence[str] | None = None, n_points: int = 100,
                  log: bool | None = None) -> tuple[np.ndarray, bool]:
    """Fractions of the budget at which to compare the runs of ``benchmarks`` (default: all).

    From the earliest first result (as a fraction of its benchmark's budget) to 1, ``n_points``
    of them, log-spaced when ``log`` is True, or when ``log`` is None and that range spans two
    orders of magnitude or more. Returns ``(fractions, log)``.
    """
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    start = _first_fraction(grid, benchmarks if benchmarks is not None else grid.benchmarks)
    if log is None:
        log = start <= 0.01
    fractions = np.geomspace(start, 1.0, n_points) if log else np.linspace(start, 1.0, n_points)
    return fractions, bool(log)


def curve_matrix(grid: Grid, benchmark: str, method: str, times: Any,
                 seeds: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
    """Best-so-far values (metric units) of ``method`` on ``benchmark`` at ``times``: returns
    ``(seeds, matrix)``, one row per seed (default: every loaded seed)."""
    seeds = list(seeds) if seeds is not None else grid.seeds(benchmark, method)
    if not seeds:
        raise UserError(f"no runs of {method} on {benchmark} in this grid; methods there: "
                        f"{', '.join(grid.methods_of(benchmark)) or 'none'}")
    at = np.asarray(times, dtype=float)
    matrix = np.empty((len(seeds), at.size))
    for i, s in enumerate(seeds):
        t, v = grid.curves[(benchmark, method, int(s))]
        matrix[i] = resample(t, v, at.reshape(-1))
    return seeds, matrix


def regret_bounds(grid: Grid, benchmark: str) -> tuple[float, float]:
    """``(best, worst)`` in metric units for the normalized regret of ``benchmark`` (see the
    module docstring: best found or known optimum; median of the first results)."""
    rows = grid.runs[grid.runs["benchmark"] == benchmark]
    if rows.empty:
        raise UserError(f"no runs of benchmark {benchmark!r}; the grid has {', '.join(grid.benchmarks)}")
    sign = 1.0 if grid.curve_mode(benchmark) == "min" else -1.0  # to minimization terms and back
    found = sign * rows["best"].to_numpy(dtype=float)
    first = sign * rows["first"].to_numpy(dtype=float)
    candidates = found[np.isfinite(found)]
    optimum = grid.optimum(benchmark)
    if optimum is not None and math.isfinite(optimum):
        candidates = np.append(candidates, sign * optimum)
    if not len(candidates):
        return math.nan, math.nan
    best = float(candidates.min())
    first = first[np.isfinite(first)]
    worst = float(np.median(first)) if len(first) else math.nan
    if not worst > best:
        worst = float(first.max()) if len(first) else math.nan
    if not worst > best:
        worst = best + 1.0
    return sign * best, sign * worst


def normalized_regret(values: Any, best: float, worst: float) -> np.ndarray:
    """``(values - best) / (worst - best)`` (metric units; the same in both modes): 0 at
    ``best``, 1 at ``worst``."""
    return (np.asarray(values, dtype=float) - best) / (worst - best)


# -- ranks ----------------------------------------------------------------------------------------------


def _common_seeds(grid: Grid, benchmark: str, methods: Sequence[str]) -> list[int]:
    common: set[int] | None = None
    for m in methods:
        seeds = set(grid.seeds(benchmark, m))
        common = seeds if common is None else common & seeds
    return sorted(common or ())


def rank_curves(grid: Grid, benchmark: str, times: Any, methods: Sequence[str] | None = None
                ) -> tuple[list[str], list[int], np.ndarray]:
    """Rank of each method's best-so-far among ``methods`` (default: all run on ``benchmark``)
    at ``times``, per seed: returns ``(methods, seeds, ranks)`` with ``ranks`` of shape
    ``(n_seeds, n_methods, n_times)`` (1 = best, ties averaged, no result yet = last). Seeds are
    those every method has; UserError if there are none."""
    from scipy.stats import rankdata  # deferred: scipy.stats, only where ranks are computed

    methods = list(methods) if methods is not None else grid.methods_of(benchmark)
    missing = [m for m in methods if not grid.seeds(benchmark, m)]
    if missing:
        raise UserError(f"no runs of {', '.join(missing)} on {benchmark}; methods there: "
                        f"{', '.join(grid.methods_of(benchmark))}")
    seeds = _common_seeds(grid, benchmark, methods)
    if not seeds:
        raise UserError(f"the methods on {benchmark} share no seed: ranks compare runs of the same seed")
    sign = 1.0 if grid.curve_mode(benchmark) == "min" else -1.0
    at = np.asarray(times, dtype=float)
    values = np.stack([curve_matrix(grid, benchmark, m, at, seeds)[1] for m in methods], axis=1)
    values = np.where(np.isnan(values), np.inf, sign * values)  # no result yet: worst
    return methods, seeds, rankdata(values, axis=1)


def average_ranks(grid: Grid, fractions: Any, *, benchmarks: Sequence[str] | None = None,
                  methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Average rank of each method at each fraction of the budget, over seeds and then over
    ``benchmarks`` (default: all). Compared are ``methods`` (default: those run on every one of
    the benchmarks). Returns a DataFrame indexed by fraction, one column per method."""
    import pandas as pd  # deferred: pandas, only where a DataFrame is built

    benchmarks = list(benchmarks) if benchmarks is not None else grid.benchmarks
    if methods is None:
        methods = [m for m in grid.methods if all(grid.seeds(b, m) for b in benchmarks)]
        if not methods:
            raise UserError("no method was run on every benchmark; pass benchmarks= or methods= to compare")
    fractions = np.asarray(fractions, dtype=float)
    per_benchmark = []
    for b in benchmarks:
        _, _, ranks = rank_curves(grid, b, fractions * grid.budget(b), methods)
        per_benchmark.append(ranks.mean(axis=0))
    mean = np.mean(per_benchmark, axis=0)  # (n_methods, n_fractions)
    return pd.DataFrame(mean.T, index=pd.Index(fractions, name="fraction"), columns=list(methods))


# -- summary table ------------------------------------------------------------------------------------------


def _fractions(fractions: Sequence[float]) -> np.ndarray:
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or not len(fr) or np.any(fr <= 0):
        raise UserError(f"fractions of the budget must be positive numbers, got {list(fractions)}")
    return fr


def summarize(grid: Grid, fractions: Sequence[float] = (0.25, 0.5, 1.0), *, n_boot: int = 2000,
              confidence: float = 0.95, seed: int = 0, min_fraction: float = 0.5,
              benchmarks: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (benchmark, method, fraction of the budget), plus rows with benchmark
    :data:`ALL` aggregating every (benchmark, seed) run of a method that was run on all the
    benchmarks (normalized regret is comparable across benchmarks; ranks are averaged).
    ``benchmarks``: only these (default: all of the grid).

    Columns: ``benchmark``, ``method``, ``fraction``, ``time`` (seconds; NaN for ALL),
    ``n_seeds`` (runs with a value then), ``regret_iqm``, ``regret_lo``, ``regret_hi`` (bootstrap
    ``confidence`` interval of the IQM), ``regret_mean``, ``regret_sem``, ``regret_median``,
    ``regret_q25``, ``regret_q75``, ``best_iqm`` (IQM of the best metric value so far, metric
    units; NaN for ALL), ``rank`` (average rank among the benchmark's methods; for ALL among the
    methods run on every benchmark).
    """
    import pandas as pd  # deferred: pandas, only where a DataFrame is built

    fr = _fractions(fractions)
    benchmarks = list(benchmarks) if benchmarks is not None else grid.benchmarks
    rows: list[dict[str, Any]] = []
    common = [m for m in grid.methods if all(grid.seeds(b, m) for b in benchmarks)]
    pooled: dict[str, list[np.ndarray]] = {m: [] for m in common}
    kwargs = {"n_boot": n_boot, "confidence": confidence, "seed": seed, "min_fraction": min_fraction}
    for b in benchmarks:
        times = fr * grid.budget(b)
        best, worst = regret_bounds(grid, b)
        methods = grid.methods_of(b)
        mean_rank = _mean_ranks(grid, b, times, methods)
        for j, m in enumerate(methods):
            _, values = curve_matrix(grid, b, m, times)
            regret = normalized_regret(values, best, worst)
            if m in pooled:
                pooled[m].append(regret)
            rows.extend(_rows(b, m, fr, times, regret, values, mean_rank[j], kwargs))
    if len(benchmarks) > 1 and common:
        try:
            ranks_all = average_ranks(grid, fr, benchmarks=benchmarks, methods=common)
        except UserError as e:  # some benchmark's methods share no seed
            logger.warning("no average ranks over benchmarks: %s", e)
            ranks_all = pd.DataFrame(np.nan, index=fr, columns=common)
        for m in common:
            regret = np.concatenate(pooled[m], axis=0)
            rows.extend(_rows(ALL, m, fr, np.full(len(fr), np.nan), regret, None, ranks_all[m].to_numpy(), kwargs))
    return pd.DataFrame(rows)


def summarize_hypervolume(grid: Grid, fractions: Sequence[float] = (0.25, 0.5, 1.0), *, n_boot: int = 2000,
                          confidence: float = 0.95, seed: int = 0, min_fraction: float = 0.5,
                          benchmarks: Sequence[str] | None = None) -> pd.DataFrame:
    """The normalized hypervolume of the multi-objective ``benchmarks`` (default: every one of
    the grid) at ``fractions`` of their budget: one row per (benchmark, method, fraction), plus
    :data:`ALL` rows pooling every (benchmark, seed) run of the methods run on all of them
    (normalized hypervolumes share one scale, [0, 1]; ranks averaged over benchmarks).

    Columns: ``benchmark``, ``method``, ``fraction``, ``time`` (seconds; NaN for ALL),
    ``n_seeds``, ``hv_iqm``, ``hv_lo``, ``hv_hi`` (bootstrap ``confidence`` interval of the
    IQM), ``hv_mean``, ``hv_sem``, ``hv_median``, ``hv_q25``, ``hv_q75``, ``rank`` (average over
    seeds, 1 = largest hypervolume). The statistics are :func:`aggregate`'s.
    """
    import pandas as pd  # deferred: pandas, only where a DataFrame is built

    fr = _fractions(fractions)
    benchmarks = list(benchmarks) if benchmarks is not None else [b for b in grid.benchmarks if grid.is_multi(b)]
    single = [b for b in benchmarks if not grid.is_multi(b)]
    if single:
        raise UserError(f"{', '.join(single)}: single-objective, no hypervolume (use summarize)")
    kwargs: dict[str, Any] = {"n_boot": n_boot, "confidence": confidence, "seed": seed, "min_fraction": min_fraction}
    common = [m for m in grid.methods if all(grid.seeds(b, m) for b in benchmarks)]
    pooled: dict[str, list[np.ndarray]] = {m: [] for m in common}
    rows: list[dict[str, Any]] = []

    def add(benchmark: str, method: str, times: np.ndarray, values: np.ndarray, rank: np.ndarray) -> None:
        stats = {s: aggregate(values, s, **kwargs) for s in STATISTICS}
        for i, f in enumerate(fr):
            rows.append({
                "benchmark": benchmark, "method": method, "fraction": float(f), "time": float(times[i]),
                "n_seeds": int(stats["iqm"]["n"][i]),
                "hv_iqm": stats["iqm"]["center"][i], "hv_lo": stats["iqm"]["lower"][i],
                "hv_hi": stats["iqm"]["upper"][i], "hv_mean": stats["mean"]["center"][i],
                "hv_sem": stats["mean"]["upper"][i] - stats["mean"]["center"][i],
                "hv_median": stats["median"]["center"][i], "hv_q25": stats["median"]["lower"][i],
                "hv_q75": stats["median"]["upper"][i], "rank": float(rank[i]),
            })

    for b in benchmarks:
        times = fr * grid.budget(b)
        methods = grid.methods_of(b)
        mean_rank = _mean_ranks(grid, b, times, methods)
        for j, m in enumerate(methods):
            _, values = curve_matrix(grid, b, m, times)
            if m in pooled:
                pooled[m].append(values)
            add(b, m, times, values, mean_rank[j])
    if len(benchmarks) > 1 and common:
        try:
            ranks_all = average_ranks(grid, fr, benchmarks=benchmarks, methods=common)
        except UserError as e:  # some benchmark's methods share no seed
            logger.warning("no average ranks over benchmarks: %s", e)
            ranks_all = pd.DataFrame(np.nan, index=fr, columns=common)
        for m in common:
            add(ALL, m, np.full(len(fr), np.nan), np.concatenate(pooled[m], axis=0), ranks_all[m].to_numpy())
    return pd.DataFrame(rows)


def _mean_ranks(grid: Grid, benchmark: str, times: np.ndarray, methods: list[str]) -> np.ndarray:
    """Average rank over seeds, shape ``(n_methods, n_times)``; NaN (and a warning) if the
    methods share no seed."""
    try:
        _, _, ranks = rank_curves(grid, benchmark, times, methods)
    except UserError as e:
        logger.warning("no ranks on %s: %s", benchmark, e)
        return np.full((len(methods), len(times)), np.nan)
    return ranks.mean(axis=0)


def _rows(benchmark: str, method: str, fractions: np.ndarray, times: np.ndarray, regret: np.ndarray,
          values: np.ndarray | None, rank: np.ndarray, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    r_iqm = aggregate(regret, "iqm", **kwargs)
    r_mean = aggregate(regret, "mean", **kwargs)
    r_med = aggregate(regret, "median", **kwargs)
    v_iqm = iqm(values, axis=0) if values is not None else np.full(len(fractions), np.nan)
    if values is not None:
        v_iqm = np.where(np.isnan(r_iqm["center"]), np.nan, v_iqm)
    return [{
        "benchmark": benchmark, "method": method, "fraction": float(fractions[i]), "time": float(times[i]),
        "n_seeds": int(r_iqm["n"][i]),
        "regret_iqm": r_iqm["center"][i], "regret_lo": r_iqm["lower"][i], "regret_hi": r_iqm["upper"][i],
        "regret_mean": r_mean["center"][i], "regret_sem": r_mean["upper"][i] - r_mean["center"][i],
        "regret_median": r_med["center"][i], "regret_q25": r_med["lower"][i], "regret_q75": r_med["upper"][i],
        "best_iqm": float(v_iqm[i]), "rank": float(rank[i]),
    } for i in range(len(fractions))]
