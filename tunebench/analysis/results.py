"""Loading an experiment grid for analysis: one row per experiment, one best-so-far curve each.

A grid is the folder tree ``<results root>/<tag>/<benchmark>/<method>/<seed>/`` written by
``tunebench experiment`` (see :mod:`tunebench.analysis.layout`); each leaf is an ordinary
experiment folder (:mod:`tunebench.store`). :func:`load_grid` reads only what analysis needs,
fast: ``metadata.json`` and, from ``events.jsonl``, the ``result`` events (their tuning time and
metric value), the number of ``trial_start`` events and whether the log ends with
``experiment_end``. About a thousand folders of a few hundred results load in a second or two
(``benchmarks/analysis_load.py``).

What is loaded, what is skipped:

* a folder without a readable ``metadata.json`` (no metric/mode), without ``events.jsonl``, or
  whose log has an undecodable ``result`` line before its last line, is *skipped*: listed in
  :attr:`Grid.skipped` with the reason (and a logged warning), never an exception;
* a folder whose log has no final ``experiment_end`` event (still running, or killed) is loaded
  with ``complete=False``; a torn last line (the writer was killed, or is still writing) is
  dropped (the rule of :mod:`tunebench.events`) and noted in the ``note`` column;
* a run whose metric or mode differs from the other runs of its benchmark is skipped (its
  curve could not be compared with theirs).

Times are the ``time`` field of the events: tuning time in seconds since the start of the
experiment (simulated seconds on the simulator backend).

Constraints and several objectives (from ``metadata.json``: ``"constraints"``, and
``"objectives": {"metric": [...], "mode": [...]}``, whose first entries are ``metric``/``mode``):

* a run with constraints counts only its *feasible* results (every constraint met; a missing or
  non-numeric constrained value is infeasible): an infeasible result never is the best, and its
  curve is the best *feasible* value so far (``best``/``first`` likewise);
* a multi-objective run's curve is the **normalized hypervolume** of its feasible Pareto front
  so far (:mod:`tunebench.analysis.hypervolume`; larger is better, so :meth:`Grid.curve_mode`
  is ``"max"``), with scales common to every run of its benchmark; ``best``/``first`` are the
  normalized hypervolume at its last and first result, and :attr:`Grid.points` holds the
  run's objective vectors (its fronts);
* runs of one benchmark must share their objectives and constraints (else the less common are
  skipped, like a differing metric).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunebench.analysis.hypervolume import (
    HypervolumeBounds,
    RunPoints,
    feasible_mask,
    hypervolume_bounds,
    hypervolume_curve,
)
from tunebench.analysis.layout import check_tag, results_root
from tunebench.errors import UserError
from tunebench.events import LogKind, loads_line, split_lines
from tunebench.pareto import to_minimization
from tunebench.store import EVENTS_FILE, METADATA_FILE
from tunebench.types import Constraint, Objectives, parse_constraints

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson = None  # type: ignore[assignment]  # a module or None: checked before each use

__all__ = ["Grid", "Curve", "load_grid", "load_run", "best_so_far", "known_optimum", "known_front", "RUN_COLUMNS"]

logger = logging.getLogger(__name__)

#: (times, best-so-far values in the metric's own units), both 1-d float arrays of equal length
Curve = tuple[np.ndarray, np.ndarray]

#: columns of :attr:`Grid.runs`, in order
RUN_COLUMNS = ("benchmark", "method", "seed", "path", "metric", "mode", "budget", "n_trials", "n_results",
               "best", "first", "last_time", "complete", "end_reason", "note", "n_feasible")

# the byte tests that pick the lines worth decoding: only the result lines are decoded (in one
# call), which is what keeps a grid of a thousand logs loading in a second or two
_RESULT_KEY = LogKind.RESULT.key
_TRIAL_START_KEY = LogKind.TRIAL_START.key
_END_KEY = LogKind.EXPERIMENT_END.key
_RESULT = LogKind.RESULT.value
_NUMBERS = (float, int)


class _Unreadable(Exception):
    """An experiment folder analysis cannot use (the message is the reason)."""


@dataclass
class Grid:
    """The experiments of one grid, as :func:`load_grid` found them.

    Attributes:
        root: the results root.
        tag: the experiment tag (folder under the root).
        runs: one row per loaded experiment, columns :data:`RUN_COLUMNS`: ``benchmark``,
            ``method``, ``seed`` (int), ``path`` (str), ``metric``, ``mode`` ("min"/"max"),
            ``budget`` (the wallclock budget in seconds: the run's ``max_wallclock_time``, else
            the benchmark's, else NaN), ``n_trials``, ``n_results``, ``best`` (best metric value,
            NaN without results), ``first`` (first result's value), ``last_time`` (time of the
            last result), ``complete`` (the log ends with ``experiment_end``), ``end_reason``,
            ``note`` (e.g. a torn last line that was dropped), ``n_feasible`` (results meeting
            every constraint). Sorted by benchmark, method, seed. For a multi-objective
            benchmark ``metric``/``mode`` are its first objective's and ``best``/``first`` are
            normalized hypervolumes (see the module docstring).
        curves: ``(benchmark, method, seed) -> (times, values)``: for each result in time order
            its tuning time and the value analysis compares: the best (feasible) metric value so
            far (metric units; NaN until the first such result), or for a multi-objective
            benchmark the normalized hypervolume of the feasible front so far (0 until a
            feasible result lies in the reference box).
        skipped: ``(path, reason)`` of the folders that could not be used.
        optima: benchmark -> known optimum of its metric (None: unknown): the values given to
            :func:`load_grid`, and those :meth:`optimum` looked up so far.
        known_optima: whether :meth:`optimum` looks up the optimum of registered benchmarks.
        data_dir: benchmark data folder for those look-ups (None: ``$TUNEBENCH_DATA``).
        objectives: benchmark -> its :class:`~tunebench.types.Objectives` (one metric, or several).
        constraints: benchmark -> its constraints (empty: none).
        points: ``(benchmark, method, seed) -> RunPoints``: the objective vectors (minimization
            form) and feasibility of each result of the multi-objective runs.
        hv_bounds: benchmark -> the scales of its normalized hypervolume (multi-objective
            benchmarks with a feasible result; see :mod:`tunebench.analysis.hypervolume`).
        fronts: benchmark -> the known Pareto front of a multi-objective benchmark in metric
            units (None: unknown), as :meth:`known_front` looked it up.
    """

    root: Path
    tag: str
    runs: pd.DataFrame
    curves: dict[tuple[str, str, int], Curve]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    optima: dict[str, float | None] = field(default_factory=dict)
    known_optima: bool = True
    data_dir: str | Path | None = None
    objectives: dict[str, Objectives] = field(default_factory=dict)
    constraints: dict[str, tuple[Constraint, ...]] = field(default_factory=dict)
    points: dict[tuple[str, str, int], RunPoints] = field(default_factory=dict)
    hv_bounds: dict[str, HypervolumeBounds] = field(default_factory=dict)
    fronts: dict[str, np.ndarray | None] = field(default_factory=dict)

    def is_multi(self, benchmark: str) -> bool:
        """Whether ``benchmark``'s runs optimize several objectives (its curves are hypervolumes)."""
        objectives = self.objectives.get(benchmark)
        return objectives is not None and objectives.is_multi

    def objectives_of(self, benchmark: str) -> Objectives:
        """The objectives of ``benchmark``'s runs (one metric for a single-objective benchmark)."""
        objectives = self.objectives.get(benchmark)
        return objectives if objectives is not None else Objectives((self.metric(benchmark),),
                                                                    (self.mode(benchmark),))

    def curve_mode(self, benchmark: str) -> str:
        """Direction of ``benchmark``'s curves: its metric's mode, or ``"max"`` (hypervolume)."""
        return "max" if self.is_multi(benchmark) else self.mode(benchmark)

    def curve_label(self, benchmark: str) -> str:
        """What ``benchmark``'s curves show, for axis labels: ``"best <metric> so far"`` (with
        ``" (feasible)"`` under constraints) or ``"normalized hypervolume"``."""
        if self.is_multi(benchmark):
            return "normalized hypervolume"
        return f"best {'feasible ' if self.constraints.get(benchmark) else ''}{self.metric(benchmark)} so far"

    def front(self, benchmark: str, method: str, seed: int, until: float | None = None) -> np.ndarray:
        """The feasible Pareto front of a multi-objective run up to time ``until`` (None: its
        end), in metric units: ``(k, d)``, columns in the order of the objectives, sorted by the
        first column's minimization form.

        Raises:
            UserError: no such run, or it is single-objective.
        """
        key = (benchmark, method, int(seed))
        if key not in self.points:
            raise UserError(f"no multi-objective run {method} / seed {seed} on {benchmark} in this grid")
        signs = np.asarray(self.objectives_of(benchmark).signs)
        F: np.ndarray = self.points[key].front(until) * signs
        return F

    def known_front(self, benchmark: str) -> np.ndarray | None:
        """The known Pareto front of a multi-objective ``benchmark`` in metric units (from
        :attr:`fronts`, else, when :attr:`known_optima`, its blackbox's ``true_front``; see
        :func:`known_front`), or None."""
        if benchmark not in self.fronts:
            self.fronts[benchmark] = (known_front(benchmark, self.objectives_of(benchmark), self.data_dir)
                                      if self.known_optima and self.is_multi(benchmark) else None)
        return self.fronts[benchmark]

    def optimum(self, benchmark: str) -> float | None:
        """Known optimum of ``benchmark``'s metric: from :attr:`optima`, else (when
        :attr:`known_optima`) from the benchmark registry's blackbox (loaded once, then cached;
        see :func:`known_optimum`), else None. None for a multi-objective benchmark (its curves
        are normalized hypervolumes)."""
        if benchmark not in self.optima and self.is_multi(benchmark):
            self.optima[benchmark] = None  # no known optimum of a normalized hypervolume
        if benchmark not in self.optima:
            self.optima[benchmark] = (known_optimum(benchmark, self.metric(benchmark), self.data_dir)
                                      if self.known_optima else None)
        return self.optima[benchmark]

    @property
    def benchmarks(self) -> list[str]:
        """Benchmarks with at least one loaded run, sorted."""
        return sorted(set(self.runs["benchmark"]))

    @property
    def methods(self) -> list[str]:
        """Methods with at least one loaded run, in registry order (others after, sorted)."""
        return _order_methods(set(self.runs["method"]))

    def methods_of(self, benchmark: str) -> list[str]:
        """Methods run on ``benchmark``, in registry order."""
        return _order_methods(set(self.runs.loc[self.runs["benchmark"] == benchmark, "method"]))

    def seeds(self, benchmark: str, method: str) -> list[int]:
        """Seeds loaded for ``(benchmark, method)``, sorted."""
        rows = self.runs[(self.runs["benchmark"] == benchmark) & (self.runs["method"] == method)]
        return sorted(int(s) for s in rows["seed"])

    def metric(self, benchmark: str) -> str:
        """The metric of the runs of ``benchmark`` (one per benchmark: :func:`load_grid` checks)."""
        return str(self._row(benchmark)["metric"])

    def mode(self, benchmark: str) -> str:
        """``"min"`` or ``"max"``: the mode of ``benchmark``'s metric."""
        return str(self._row(benchmark)["mode"])

    def budget(self, benchmark: str) -> float:
        """The wallclock budget of ``benchmark``'s runs (their largest), else the time of the
        latest result of any of its runs."""
        rows = self.runs[self.runs["benchmark"] == benchmark]
        if rows.empty:
            raise UserError(f"no runs of benchmark {benchmark!r} in this grid; it has {', '.join(self.benchmarks)}")
        budget = rows["budget"].max()
        if np.isfinite(budget) and budget > 0:
            return float(budget)
        last = rows["last_time"].max()
        return float(last) if np.isfinite(last) and last > 0 else 1.0

    def _row(self, benchmark: str) -> Any:
        rows = self.runs[self.runs["benchmark"] == benchmark]
        if rows.empty:
            raise UserError(f"no runs of benchmark {benchmark!r} in this grid; it has {', '.join(self.benchmarks)}")
        return rows.iloc[0]


def _order_methods(names: set[str]) -> list[str]:
    # deferred: the method registry (~0.1 s with benchmarks) stays out of `import tunebench.analysis`
    from tunebench.schedulers import METHODS

    registered = [m for m in METHODS if m in names]
    return registered + sorted(names - set(registered))


def best_so_far(values: np.ndarray, mode: str) -> np.ndarray:
    """Running best of ``values`` (``"min"``: running minimum, ``"max"``: running maximum);
    NaN entries are ignored (NaN until the first number)."""
    values = np.asarray(values, dtype=float)
    if mode == "min":
        return np.fmin.accumulate(values) if values.size else values
    if mode == "max":
        return np.fmax.accumulate(values) if values.size else values
    raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")


def _number(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return math.nan


def _parse_lines(lines: list[bytes], path: Path) -> list[dict[str, Any]]:
    """JSON objects of ``lines``: one orjson call over all of them; line by line only if that fails
    (non-finite numbers, which orjson does not read, or a broken line)."""
    if not lines:
        return []
    if _orjson is not None:
        try:
            return _orjson.loads(b"[" + b",".join(lines) + b"]")
        except _orjson.JSONDecodeError:
            pass
    out = []
    for line in lines:
        try:
            out.append(loads_line(line))
        except ValueError:
            raise _Unreadable(f"{EVENTS_FILE} has an undecodable line: {line[:80]!r}") from None
    return out


def _column(results: list[Any], name: str) -> np.ndarray:
    """The values of metric ``name`` in ``results`` (result dicts, or anything else: NaN), as floats
    (NaN where missing or not a number)."""
    try:
        raw = [r.get(name, math.nan) for r in results]
        if all(v.__class__ in _NUMBERS for v in raw):
            return np.array(raw, dtype=float)
    except AttributeError:  # a result that is not a dict
        pass
    return np.array([_number(r.get(name)) if isinstance(r, dict) else math.nan for r in results], dtype=float)


def _read_log(path: Path, metric: str, mode: str, columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """What analysis needs of one event log (see :func:`load_run`); ``columns``: more metrics
    whose values are read too (objectives, constrained metrics), as ``"columns"``."""
    try:
        data = (path / EVENTS_FILE).read_bytes()
    except FileNotFoundError:
        raise _Unreadable(f"no {EVENTS_FILE} (the experiment never started)") from None
    except OSError as e:
        raise _Unreadable(f"cannot read {EVENTS_FILE}: {e.strerror}") from None
    note = ""
    lines, tail = split_lines(data)  # the log's rule: a torn last line is dropped
    if tail.strip():
        logger.warning("%s: ignoring a torn last line of %s (%d bytes)", path, EVENTS_FILE, len(tail))
        note = f"torn last line dropped ({len(tail)} bytes)"
    # the last complete line decides whether the experiment ended
    last = next((line for line in reversed(lines) if line.strip()), b"")
    complete, end_reason = False, None
    if _END_KEY in last:
        try:
            obj = loads_line(last)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("event") == LogKind.EXPERIMENT_END:
            complete, end_reason = True, obj.get("reason")
    # a cheap byte test picks the result lines; only those are decoded
    events = _parse_lines([line for line in lines if _RESULT_KEY in line], path)
    try:  # fast path: well-formed result events with numbers
        if any(ev["event"] != _RESULT for ev in events):
            raise TypeError
        raw_times = [ev["time"] for ev in events]
        raw_values = [ev["result"].get(metric, math.nan) for ev in events]
        if not all(v.__class__ in _NUMBERS for v in raw_times) or not all(v.__class__ in _NUMBERS
                                                                            for v in raw_values):
            raise TypeError  # None, a string, a bool: the careful path decides
        times = np.array(raw_times, dtype=float)
        values = np.array(raw_values, dtype=float)
        n = len(events)
        results = [ev["result"] for ev in events] if columns else []
    except (TypeError, ValueError, KeyError, AttributeError):
        times = np.empty(len(events))
        values = np.empty(len(events))
        results = []
        n = 0
        for ev in events:
            if not isinstance(ev, dict) or ev.get("event") != _RESULT:
                continue  # the key appeared inside some value: not a result event
            res = ev.get("result")
            times[n] = _number(ev.get("time"))
            values[n] = _number(res.get(metric)) if isinstance(res, dict) else math.nan
            results.append(res)
            n += 1
        times, values = times[:n], values[:n]
    extra = {name: _column(results, name) for name in columns}
    if n and np.any(np.diff(times) < 0):  # not expected (the log is in time order), but be safe
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        extra = {name: v[order] for name, v in extra.items()}
    return {
        "columns": extra,
        "times": times,
        "values": values,
        "n_trials": data.count(_TRIAL_START_KEY),
        "complete": complete,
        "end_reason": end_reason,
        "note": note,
    }


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        raw = (path / METADATA_FILE).read_bytes()
    except FileNotFoundError:
        raise _Unreadable(f"no {METADATA_FILE} (half-written or not an experiment folder)") from None
    except OSError as e:
        raise _Unreadable(f"cannot read {METADATA_FILE}: {e.strerror}") from None
    try:
        meta = json.loads(raw)
    except ValueError:
        raise _Unreadable(f"{METADATA_FILE} is not valid JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("metric"), str) or meta.get("mode") not in ("min", "max"):
        raise _Unreadable(f"{METADATA_FILE} lacks the metric or its mode")
    return meta


def _budget(meta: dict[str, Any], benchmark: str, registry_budgets: dict[str, float] | None) -> float:
    for source in (meta.get("stop"), meta.get("run_spec")):
        if isinstance(source, dict):
            value = _number(source.get("max_wallclock_time"))
            if value > 0:
                return value
    if registry_budgets is None:
        return math.nan
    if benchmark not in registry_budgets:
        registry_budgets[benchmark] = _registry_budget(benchmark)
    return registry_budgets[benchmark]


def _registry_budget(benchmark: str) -> float:
    # deferred: benchmarks (~0.1 s with the method registry) stay out of `import tunebench.analysis`
    from tunebench.benchmarks import benchmark_names, get_benchmark

    if benchmark not in benchmark_names():
        return math.nan
    return float(get_benchmark(benchmark).max_wallclock_time)


def load_run(path: str | Path, *, benchmark: str | None = None, method: str | None = None,
             seed: int | None = None) -> tuple[dict[str, Any], Curve]:
    """Read one experiment folder for analysis.

    Returns ``(row, (times, values))``: ``row`` has the columns of :attr:`Grid.runs`
    (``benchmark``/``method``/``seed`` from the arguments, else from ``metadata.json``; the
    budget from the run's stop criteria or run spec only, NaN if neither has one); the curve is
    the best feasible value so far, or for a multi-objective run its normalized hypervolume
    with scales from this run alone (:func:`load_grid` scales the runs of a benchmark together).

    Raises:
        UserError: the folder cannot be used (no metadata, unreadable log); the message says why.
    """
    path = Path(path)
    try:
        row, curve, points = _load_run(path, benchmark, method, seed, None)
    except _Unreadable as e:
        raise UserError(f"{path}: {e}") from None
    if points is not None:
        curve = hypervolume_curve(points, hypervolume_bounds([points]))
        _set_hypervolume(row, curve)
    return {k: row[k] for k in RUN_COLUMNS}, curve


def _run_objectives(meta: dict[str, Any]) -> tuple[Objectives, tuple[Constraint, ...]]:
    """The objectives and constraints a run's metadata records (one metric: ``metric``/``mode``)."""
    try:
        spec = meta.get("objectives")
        if isinstance(spec, dict) and spec.get("metric") is not None:
            objectives = Objectives.from_args(spec["metric"], spec.get("mode") or meta["mode"])
        else:
            objectives = Objectives((meta["metric"],), (meta["mode"],))
        constraints = parse_constraints(meta.get("constraints") or None)
    except (UserError, TypeError) as e:
        raise _Unreadable(f"{METADATA_FILE} has unreadable objectives or constraints: {e}") from None
    return objectives, constraints


def _set_hypervolume(row: dict[str, Any], curve: Curve) -> None:
    values = curve[1]
    row["best"] = float(values[-1]) if len(values) else math.nan
    row["first"] = float(values[0]) if len(values) else math.nan


def _load_run(path: Path, benchmark: str | None, method: str | None, seed: int | None,
              registry_budgets: dict[str, float] | None) -> tuple[dict[str, Any], Curve, RunPoints | None]:
    """The row and curve of one run, and (multi-objective runs) its points; a multi-objective
    run's curve is left empty here (it needs the scales of its whole benchmark)."""
    meta = _read_metadata(path)
    metric, mode = meta["metric"], meta["mode"]
    objectives, constraints = _run_objectives(meta)
    bench = benchmark if benchmark is not None else str(meta.get("benchmark") or "")
    names = tuple(dict.fromkeys([*(objectives.metrics if objectives.is_multi else ()),
                                 *(c.metric for c in constraints)]))
    log = _read_log(path, metric, mode, names)
    times, values = log["times"], log["values"]
    feasible = feasible_mask(log["columns"], constraints, len(times))
    points = None
    if objectives.is_multi:
        Y = to_minimization(np.column_stack([log["columns"][m] for m in objectives.metrics])
                            if len(times) else np.empty((0, len(objectives.metrics))), objectives)
        points = RunPoints(times, Y, feasible)
        curve: Curve = (times, np.full(len(times), math.nan))
        best = first = math.nan
    else:
        if constraints:
            values = np.where(feasible, values, math.nan)  # an infeasible result never counts
        curve = (times, best_so_far(values, mode))
        finite = values[np.isfinite(values)]
        best = float(curve[1][-1]) if len(times) else math.nan
        first = float(finite[0]) if len(finite) else math.nan
    row = {
        "benchmark": bench,
        "method": method if method is not None else str(meta.get("method") or ""),
        "seed": int(seed if seed is not None else meta.get("seed") or 0),
        "path": str(path),
        "metric": metric,
        "mode": mode,
        "budget": _budget(meta, bench, registry_budgets),
        "n_trials": log["n_trials"],
        "n_results": len(times),
        "best": best,
        "first": first,
        "last_time": float(times[-1]) if len(times) else math.nan,
        "complete": log["complete"],
        "end_reason": log["end_reason"],
        "note": log["note"],
        "n_feasible": int(feasible.sum()),
        "_objectives": objectives,
        "_constraints": constraints,
    }
    return row, curve, points


def known_optimum(benchmark: str, metric: str, data_dir: str | Path | None = None) -> float | None:
    """The known optimum of ``metric`` on the registered benchmark ``benchmark`` (its blackbox's
    ``optimum``), or None: not a registered simulated benchmark, no known optimum of this
    metric, or the blackbox cannot be loaded here (data missing; logged at debug level)."""
    # deferred: benchmarks (~0.1 s with the method registry) stay out of `import tunebench.analysis`
    from tunebench.benchmarks import SimulatedBenchmark, benchmark_names, get_benchmark

    if benchmark not in benchmark_names():
        return None
    bench = get_benchmark(benchmark)
    if not isinstance(bench, SimulatedBenchmark):
        return None
    try:
        blackbox = bench.load_blackbox(data_dir)
    except Exception as e:  # noqa: BLE001 - a missing optional extra or data set: no optimum
        logger.debug("no optimum for %s: its blackbox does not load (%s: %s)", benchmark, type(e).__name__, e)
        return None
    optimum = getattr(blackbox, "optimum", None) or {}
    value = _number(optimum.get(metric))
    return value if math.isfinite(value) else None


def known_front(benchmark: str, objectives: Objectives, data_dir: str | Path | None = None,
                n_points: int = 200) -> np.ndarray | None:
    """``n_points`` points of the known Pareto front of the registered benchmark ``benchmark``
    in metric units (columns in the order of ``objectives``): its blackbox's ``true_front``
    (the synthetic multi-objective blackboxes) when ``objectives`` are exactly the blackbox's
    front objectives with their modes; else None (as :func:`known_optimum`)."""
    # deferred: benchmarks (~0.1 s with the method registry) stay out of `import tunebench.analysis`
    from tunebench.benchmarks import SimulatedBenchmark, benchmark_names, get_benchmark

    if benchmark not in benchmark_names():
        return None
    bench = get_benchmark(benchmark)
    if not isinstance(bench, SimulatedBenchmark):
        return None
    try:
        blackbox = bench.load_blackbox(data_dir)
    except Exception as e:  # noqa: BLE001 - a missing optional extra or data set: no front
        logger.debug("no front for %s: its blackbox does not load (%s: %s)", benchmark, type(e).__name__, e)
        return None
    true_front = getattr(blackbox, "true_front", None)
    names = tuple(getattr(blackbox, "front_objectives", ()))
    modes = getattr(blackbox, "objective_modes", {})
    if (true_front is None or names != objectives.metrics
            or any(modes.get(m) != mode for m, mode in zip(objectives.metrics, objectives.modes, strict=True))):
        return None
    return np.asarray(true_front(n_points), dtype=float)


def _subdirs(path: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def _select(names: list[str], patterns: list[str] | None, what: str, option: str) -> list[str]:
    """``names`` matching any of ``patterns`` (exact names or shell patterns such as
    ``lcbench-*``, case-insensitive); UserError for a pattern that matches none."""
    if patterns is None:
        return names
    if isinstance(patterns, str):
        patterns = [patterns]
    chosen: set[str] = set()
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower())]
        if not hits:
            raise UserError(f"no {what} {pattern!r} in this grid; it has: {', '.join(names) or 'none'} "
                            f"(fix {option})")
        chosen.update(hits)
    return [n for n in names if n in chosen]


def load_grid(root: str | Path | None, tag: str, *, benchmarks: list[str] | None = None,
              methods: list[str] | None = None, optima: dict[str, float] | None = None,
              known_optima: bool = True, data_dir: str | Path | None = None,
              hv_bounds: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> Grid:
    """Load the experiments of grid ``tag`` under the results ``root``.

    Args:
        root: the results root (None: ``$TUNEBENCH_RESULTS``, else ``~/tunebench-results``).
        tag: the experiment tag (a folder under the root).
        benchmarks, methods: keep only these (names or shell patterns such as ``lcbench-*``;
            method names are matched case-insensitively); None keeps all.
        optima: benchmark -> known optimum of its metric, overriding the registry's.
        known_optima: look up the optimum of registered simulated benchmarks when needed (by
            :meth:`Grid.optimum`, for the regret: loads the blackbox once, up to a couple of
            seconds for a table); False: no known optima but those of ``optima``.
        data_dir: benchmark data folder for that look-up (default: ``$TUNEBENCH_DATA``).
        hv_bounds: benchmark -> ``(best, worst)``: the values of each objective (metric units,
            in the order of the objectives) that the normalized hypervolume maps to 0 and 1,
            instead of those of the loaded runs (see :mod:`tunebench.analysis.hypervolume`).

    Returns:
        The :class:`Grid`. Unusable folders are in :attr:`Grid.skipped`, with a warning logged.

    Raises:
        UserError: an empty or unknown tag (the message lists the tags under the root), a
            benchmark or method filter that matches nothing (it lists those that exist), or no
            usable experiment at all.
    """
    import pandas as pd  # deferred: pandas, only where a DataFrame is built

    base = results_root(root)
    if not base.is_dir():
        raise UserError(f"results root {base} does not exist; pass --results-root or set TUNEBENCH_RESULTS "
                        "to the folder holding your experiment tags")
    tags = _subdirs(base)
    if not tag:
        raise UserError(f"an experiment tag is needed (--experiment-tag); tags under {base}: "
                        f"{', '.join(tags) or 'none'}")
    check_tag(tag)
    grid_path = base / tag
    if not grid_path.is_dir():
        raise UserError(f"no experiment tag {tag!r} under {base}; tags there: {', '.join(tags) or 'none'}")
    bench_names = _select(_subdirs(grid_path), benchmarks, "benchmark", "--benchmark")
    if not bench_names:
        raise UserError(f"experiment tag {tag!r} ({grid_path}) holds no experiments yet; tags under {base}: "
                        f"{', '.join(tags)}")
    pairs: list[tuple[str, str]] = []
    all_methods = sorted({m for b in bench_names for m in _subdirs(grid_path / b)})
    chosen_methods = set(_select(all_methods, methods, "method", "--method"))
    for b in bench_names:
        pairs.extend((b, m) for m in _subdirs(grid_path / b) if m in chosen_methods)

    rows: list[dict[str, Any]] = []
    curves: dict[tuple[str, str, int], Curve] = {}
    points: dict[tuple[str, str, int], RunPoints] = {}
    skipped: list[tuple[Path, str]] = []
    registry_budgets: dict[str, float] = {}
    for b, m in pairs:
        for entry in _subdirs(grid_path / b / m):
            path = grid_path / b / m / entry
            try:
                seed = int(entry)
            except ValueError:
                _skip(skipped, path, "not a seed folder (its name is not an integer)")
                continue
            try:
                row, curve, run_points = _load_run(path, b, m, seed, registry_budgets)
            except _Unreadable as e:
                _skip(skipped, path, str(e))
                continue
            rows.append(row)
            curves[(b, m, seed)] = curve
            if run_points is not None:
                points[(b, m, seed)] = run_points
    rows = _consistent(rows, curves, skipped)
    objectives = {row["benchmark"]: row["_objectives"] for row in rows}
    constraints = {row["benchmark"]: row["_constraints"] for row in rows}
    points = {k: v for k, v in points.items() if k in curves}
    bounds = _hypervolume_curves(rows, curves, points, objectives, hv_bounds or {})
    if not rows:
        detail = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
        others = [t for t in tags if t != tag]
        raise UserError(
            f"no usable experiment under {grid_path} (benchmarks there: {', '.join(bench_names)}; methods: "
            f"{', '.join(sorted(chosen_methods)) or 'none'}; other tags under {base}: {', '.join(others) or 'none'})"
            + (f"; {len(skipped)} skipped: {detail}" if skipped else ""))
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    runs = runs.sort_values(["benchmark", "method", "seed"], kind="stable").reset_index(drop=True)
    given: dict[str, float | None] = {b: (None if v is None else float(v)) for b, v in (optima or {}).items()}
    grid = Grid(root=base, tag=tag, runs=runs, curves=curves, skipped=skipped, optima=given,
                known_optima=known_optima, data_dir=data_dir, objectives=objectives, constraints=constraints,
                points=points, hv_bounds=bounds)
    n_incomplete = int((~runs["complete"]).sum())
    logger.info("loaded %d experiments of %s (%d unfinished, %d skipped)", len(runs), grid_path, n_incomplete,
                len(skipped))
    return grid


def _skip(skipped: list[tuple[Path, str]], path: Path, reason: str) -> None:
    logger.warning("skipping %s: %s", path, reason)
    skipped.append((path, reason))


def _hypervolume_curves(rows: list[dict[str, Any]], curves: dict[tuple[str, str, int], Curve],
                        points: dict[tuple[str, str, int], RunPoints], objectives: dict[str, Objectives],
                        given: dict[str, tuple[Sequence[float], Sequence[float]]]) -> dict[str, HypervolumeBounds]:
    """Put the normalized hypervolume curves of the multi-objective runs in ``curves`` (and their
    first/last value in the rows), scaled per benchmark; returns the scales used."""
    bounds: dict[str, HypervolumeBounds] = {}
    for b in sorted({key[0] for key in points}):
        if b in given:
            bounds_b: HypervolumeBounds | None = _given_bounds(b, given[b], objectives[b])
        else:
            bounds_b = hypervolume_bounds(p for key, p in points.items() if key[0] == b)
        if bounds_b is None:
            logger.warning("%s: no run has a feasible result with finite objectives: its hypervolume is 0", b)
        else:
            bounds[b] = bounds_b
        for key, p in points.items():
            if key[0] == b:
                curves[key] = hypervolume_curve(p, bounds_b)
    for row in rows:
        key = (row["benchmark"], row["method"], row["seed"])
        if key in points:
            _set_hypervolume(row, curves[key])
    return bounds


def _given_bounds(benchmark: str, bounds: tuple[Sequence[float], Sequence[float]],
                  objectives: Objectives) -> HypervolumeBounds:
    try:
        best, worst = (np.asarray(v, dtype=float).reshape(-1) for v in bounds)
    except (TypeError, ValueError):
        best = worst = np.empty(0)
    d = len(objectives.metrics)
    if best.shape != (d,) or worst.shape != (d,) or not (np.isfinite(best).all() and np.isfinite(worst).all()):
        raise UserError(f"hv_bounds of {benchmark} must be (best, worst) with one finite value per objective "
                        f"({', '.join(objectives.metrics)}); got {bounds!r}")
    signs = np.asarray(objectives.signs)
    lower, upper = best * signs, worst * signs
    if (upper < lower).any():
        raise UserError(f"hv_bounds of {benchmark}: a 'worst' value is better than its 'best' "
                        f"(objectives {_objectives_text(objectives)})")
    return HypervolumeBounds(lower, upper)


def _consistent(rows: list[dict[str, Any]], curves: dict[tuple[str, str, int], Curve],
                skipped: list[tuple[Path, str]]) -> list[dict[str, Any]]:
    """Drop the runs whose (metric, mode, objectives, constraints) is not the most common one of
    their benchmark."""
    by_bench: dict[str, Counter[tuple[Any, ...]]] = {}

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return row["metric"], row["mode"], row["_objectives"], row["_constraints"]

    for row in rows:
        by_bench.setdefault(row["benchmark"], Counter())[key(row)] += 1
    kept = []
    for row in rows:
        (metric, mode, objectives, constraints), _ = by_bench[row["benchmark"]].most_common(1)[0]
        if (row["metric"], row["mode"]) != (metric, mode):
            _skip(skipped, Path(row["path"]), f"its metric {row['metric']} ({row['mode']}) differs from that of the "
                                              f"other runs of {row['benchmark']}: {metric} ({mode})")
        elif row["_objectives"] != objectives:
            _skip(skipped, Path(row["path"]), f"its objectives {_objectives_text(row['_objectives'])} differ from "
                                              f"those of the other runs of {row['benchmark']}: "
                                              f"{_objectives_text(objectives)}")
        elif row["_constraints"] != constraints:
            _skip(skipped, Path(row["path"]), f"its constraints ({', '.join(map(str, row['_constraints'])) or 'none'}) "
                                              f"differ from those of the other runs of {row['benchmark']}: "
                                              f"{', '.join(map(str, constraints)) or 'none'}")
        else:
            kept.append(row)
            continue
        del curves[(row["benchmark"], row["method"], row["seed"])]
    return kept


def _objectives_text(objectives: Objectives) -> str:
    return ", ".join(f"{m} ({o})" for m, o in zip(objectives.metrics, objectives.modes, strict=True))
