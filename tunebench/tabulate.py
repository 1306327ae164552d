"""Tabulate a real benchmark into a blackbox the simulator replays (L4).

``tunebench tabulate --benchmark NAME --num-configs N --seeds S`` trains ``N`` configurations of
the real benchmark ``NAME`` (sampled from its config space, after the ones given with
``--config``) for all its epochs, once per seed ``0..S-1`` (passed to the script as ``--seed``),
on the local backend or on a Ray cluster, with the ordinary :class:`~tunebench.tuner.Tuner`: a
FIFO scheduler over a fixed list of jobs (:class:`FixedListSearcher`). It then writes the
learning curves as a tabular blackbox (``docs/blackbox-format.md``): every reported metric per
epoch and seed, plus the elapsed-time objective ``elapsed_time``. The table is the simulated
benchmark ``NAME-tab``: ``tunebench run --benchmark NAME-tab`` replays it in simulated time, and
``tunebench experiment --benchmark NAME-tab`` compares methods on it.

Folders
-------
``--output DIR`` (default: ``<blackbox cache>/NAME-tab``, the cache being ``$TUNEBENCH_CACHE``,
else ``~/.cache/tunebench/blackboxes``) receives the table: ``meta.json``, ``configs.parquet``,
``values.npy``. The runs go to ``--work-dir`` (default ``DIR/run``): ``plan.json`` (the list of
jobs) and ``experiment/``, an ordinary experiment folder (``tunebench show`` reads it) whose
trial folders keep the logs. Checkpoints of finished trials are deleted at the end (unless
``keep_checkpoints``). Tables are found by name in ``$TUNEBENCH_DATA/tabulated/NAME-tab``, in
the blackbox cache, then among the tables shipped in ``tunebench/blackboxes/data`` (see
:func:`tunebench.blackboxes.tabulated.tabulated_search_path`).

Resuming
--------
Running the same command again continues: finished jobs (completed or failed) are not run
again, jobs interrupted by a crash or by ``--max-wallclock-time`` restart from their checkpoints
(the tuner's own resume: it replays the scheduler's log). Configurations are sampled one at a
time from generators seeded by ``(seed, index)``, so a later run with a larger ``--num-configs``
or more ``--seeds`` keeps the jobs already done and adds the others; the table holds the
configurations and seeds of the latest call.

Elapsed time
------------
``elapsed_time`` at epoch ``k`` is the real time from the trial's start to its ``k``-th report:
the first epoch counts from the tuner's ``trial_start`` (process start-up and data loading
included), later ones add the differences of the reports' timestamps (training, validation,
checkpoint and report of each epoch); across a restart from a checkpoint the reported
``epoch_time`` (``time_attr``) is used instead.

Failed trials
-------------
A trial that fails (a diverged run exits non-zero, a crash) keeps the epochs it reported; its
later epochs are NaN in ``values.npy`` ("missing", as the format says), and ``meta.json`` lists it
under ``tabulated.failures``. :func:`~tunebench.blackboxes.tabulated.load_tabulated` (what the
simulator uses) fills those cells so a replay never meets a NaN (see
:mod:`tunebench.blackboxes.tabulated`, the reader of the tables this module writes).
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.backends.base import CHECKPOINT_DIRNAME
from tunebench.backends.registry import LOCAL, backend_names, get_backend
from tunebench.benchmarks import RealBenchmark, canonical_module_ref, resolve_benchmark
from tunebench.blackboxes.hpobench import default_cache_dir
from tunebench.blackboxes.tabular import META_FILE, VALUES_FILE, TabularBlackbox
from tunebench.blackboxes.tabulated import (
    ELAPSED_TIME,
    TABULATED_KEY,
    fill_failed_cells,
    load_tabulated,
    quiet_nan_warnings,
)
from tunebench.errors import UserError
from tunebench.events import ExperimentState, LogKind, fold, iter_events
from tunebench.launch import build_backend, check_backend, spec_from_benchmark
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.searchers.base import Searcher
from tunebench.searchers.random import canonical_config, complete_config
from tunebench.space import Domain, sample_config, space_from_json
from tunebench.store import EVENTS_FILE, TRIALS_DIR, atomic_write_json
from tunebench.tuner import StopCriteria, Tuner
from tunebench.types import Config, Status, is_number
from tunebench.version import __version__

logger = logging.getLogger(__name__)

__all__ = [
    "FixedListSearcher",
    "TabulationResult",
    "tabulate_benchmark",
    "check_parquet_writer",
    "build_table",
    "load_tabulated",
    "fill_failed_cells",
    "default_output_dir",
    "ELAPSED_TIME",
    "TABULATED_KEY",
]

PLAN_FILE = "plan.json"
EXPERIMENT_DIRNAME = "experiment"
#: keys of a result that are not objectives
_NOT_OBJECTIVES = ("trial_id",)


# -- the scheduler's searcher ---------------------------------------------------------------------


class FixedListSearcher(Searcher):
    """Proposes the given configurations, in order, then nothing (``None``).

    With a :class:`~tunebench.schedulers.fifo.FIFOScheduler` every configuration runs once, to
    its end. The state is the position in the list, so a tuner resumed with a longer list whose
    beginning is the same list continues with the new configurations.

    Args:
        config_space: the space (for the tuner's metadata; the configurations are not checked).
        metric, mode: as every searcher.
        configs: the configurations to propose (copied).
    """

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str = "min", *,
                 configs: Sequence[Config]) -> None:
        super().__init__(config_space, metric, mode, seed=0)
        self.configs = [dict(c) for c in configs]
        self._next = 0

    def suggest(self, trial_id: int) -> Config | None:
        """Called for each new trial: the next configuration, or ``None`` once all were proposed
        (the state is then unchanged)."""
        if self._next >= len(self.configs):
            return None
        config = dict(self.configs[self._next])
        self._next += 1
        return config

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the position in the list."""
        return {"next": self._next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._next = int(state["next"])


# -- planning ---------------------------------------------------------------------------------------


def _key(config: Mapping[str, Any]) -> str:
    return canonical_config(dict(config))


def _plan_configs(hp_space: dict[str, Any], num_configs: int, given: Sequence[Mapping[str, Any]],
                  seed: int) -> list[Config]:
    """The given configurations (completed with defaults, checked) then ``num_configs`` sampled
    ones, each drawn by its own generator seeded by ``(seed, index)``; duplicates dropped."""
    configs: list[Config] = []
    for i, point in enumerate(given):
        if not isinstance(point, Mapping):
            raise UserError(f"--config {i + 1}: expected a JSON object of hyperparameters, got {point!r}")
        try:
            config = complete_config(hp_space, dict(point))
        except ValueError as e:
            raise UserError(f"--config {i + 1}: {e}") from None
        for name, domain in hp_space.items():
            if isinstance(domain, Domain):
                try:
                    config[name] = domain.cast(config[name])
                except UserError as e:
                    raise UserError(f"--config {i + 1}: {name}: {e}") from None
                if not domain.contains(config[name]):
                    raise UserError(f"--config {i + 1}: {name}={config[name]!r} is outside its domain {domain!r}")
        configs.append(config)
    for i in range(num_configs):
        configs.append(sample_config(hp_space, np.random.default_rng([seed, i])))
    unique: dict[str, Config] = {}
    for c in configs:
        unique.setdefault(_key(c), c)
    return list(unique.values())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is unreadable ({e}); remove it to start this tabulation over") from None


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, obj)


# -- reading the runs -------------------------------------------------------------------------------


@dataclass
class _TrialRun:
    config: Config
    status: str = "running"
    error: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    #: per result: whether the process restarted (from a checkpoint) since the previous one
    restarted: list[bool] = field(default_factory=list)
    launched_at: float = 0.0
    first_latency: float | None = None
    _restart_pending: bool = False


def _read_log(experiment_dir: Path) -> tuple[dict[str, _TrialRun], ExperimentState]:
    """Job key -> what happened to its trial, and the experiment's folded state, from one read of
    the experiment's event log."""
    path = experiment_dir / EVENTS_FILE
    if not path.exists():
        return {}, ExperimentState()
    events = [ev for _, ev in iter_events(path)]
    return _runs(events), fold(events)


def _read_runs(experiment_dir: Path) -> dict[str, _TrialRun]:
    """Job key -> what happened to its trial, from the experiment's event log."""
    return _read_log(experiment_dir)[0]


def _runs(events: Iterable[dict[str, Any]]) -> dict[str, _TrialRun]:
    """Job key -> its trial's results with their timing (which the fold does not keep)."""
    by_id: dict[int, _TrialRun] = {}
    for ev in events:
        kind = ev.get("event")
        tid: Any = ev.get("trial_id")
        if kind == LogKind.TRIAL_START:
            by_id[tid] = _TrialRun(config=ev["config"], launched_at=float(ev.get("time", 0.0)))
            continue
        run = by_id.get(tid)
        if run is None:
            continue
        if kind in (LogKind.TRIAL_RESTART, LogKind.TRIAL_RESUME):
            run.launched_at = float(ev.get("time", 0.0))
            run._restart_pending = True
            run.status = "running"
        elif kind == LogKind.RESULT:
            run.results.append(ev["result"])
            run.restarted.append(run._restart_pending)
            if run.first_latency is None:
                run.first_latency = max(0.0, float(ev.get("time", 0.0)) - run.launched_at)
            run._restart_pending = False
        elif kind == LogKind.TRIAL_COMPLETE:
            run.status = "completed"
        elif kind == LogKind.TRIAL_FAIL:
            run.status, run.error = "failed", ev.get("error")
    return {_key(run.config): run for run in by_id.values()}


def _elapsed(run: _TrialRun, time_attr: str | None) -> list[float]:
    """Cumulative seconds from the trial's start to each of its results (see the module doc)."""
    if not run.results:
        return []
    out = [run.first_latency or 0.0]
    steps: list[float | None] = []
    for prev, cur, restarted in zip(run.results[:-1], run.results[1:], run.restarted[1:], strict=True):
        step: float | None = None
        same_process = (not restarted and isinstance(cur.get("_iteration"), int)
                        and cur.get("_iteration") == (prev.get("_iteration") or 0) + 1)
        if same_process and isinstance(cur.get("_timestamp"), (int, float)) \
                and isinstance(prev.get("_timestamp"), (int, float)):
            step = float(cur["_timestamp"]) - float(prev["_timestamp"])
        elif time_attr is not None and is_number(cur.get(time_attr)):
            step = float(cur[time_attr])
        steps.append(step if step is None else max(0.0, step))
    known = [s for s in steps if s is not None]
    fallback = float(np.median(known)) if known else 0.0
    for s in steps:
        out.append(out[-1] + (fallback if s is None else s))
    return out


def _gist(error: str | None) -> str:
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return "failed"
    gist = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return gist[:300]


# -- the table --------------------------------------------------------------------------------------


def build_table(experiment_dir: str | Path, configs: Sequence[Config], seeds: Sequence[int], *,
                hp_space: dict[str, Any], name: str, metric: str, mode: str, resource_attr: str,
                seed_attr: str = "seed", max_resource_attr: str | None = None, max_resource: int | None = None,
                time_attr: str | None = "epoch_time",
                runs: Mapping[str, _TrialRun] | None = None) -> tuple[Any, dict[str, Any]]:
    """The tabular blackbox of the runs in ``experiment_dir`` for ``configs`` x ``seeds``, and the
    ``tabulated`` entry of its ``meta.json`` (without the benchmark's defaults).

    Row ``i`` is ``configs[i]`` (configurations none of whose jobs ran are left out), seed axis
    ``j`` is the script's seed ``seeds[j]``. Objectives: ``metric``, then the other numbers every
    result reports (sorted), then :data:`ELAPSED_TIME`. Fidelities: the resource values reported.

    ``runs``: the runs of ``experiment_dir`` when the caller has just read its log (else read here).

    Raises:
        UserError: no job has reported anything.
    """
    if runs is None:
        runs = _read_runs(Path(experiment_dir))
    extra = {max_resource_attr: max_resource} if max_resource_attr is not None else {}
    rows: list[tuple[Config, list[_TrialRun | None]]] = []
    for config in configs:
        per_seed = [runs.get(_key({**config, **extra, seed_attr: s})) for s in seeds]
        if any(r is not None and (r.results or r.status == "failed") for r in per_seed):
            rows.append((config, per_seed))
    used = [r for _, per_seed in rows for r in per_seed if r is not None]
    if not any(r.results for r in used):
        raise UserError(f"{name}: no trial has reported a result yet; nothing to tabulate (see the trials' "
                        f"stderr.log under {experiment_dir}/trials)")
    fidelities = sorted({r[resource_attr] for run in used for r in run.results if is_number(r.get(resource_attr))})
    reference = [run for run in used if run.status == "completed"] or [run for run in used if run.results]
    common: set[str] | None = None
    run: _TrialRun | None
    for run in reference:
        for r in run.results:
            keys = {k for k, v in r.items() if is_number(v) and not k.startswith("_")}
            common = keys if common is None else common & keys
    others = sorted((common or set()) - {metric, resource_attr, ELAPSED_TIME, *_NOT_OBJECTIVES})
    objectives = [metric, *others, ELAPSED_TIME]
    f_index = {f: i for i, f in enumerate(fidelities)}
    values = np.full((len(rows), len(seeds), len(fidelities), len(objectives)), np.nan)
    failures: list[dict[str, Any]] = []
    for i, (_, per_seed) in enumerate(rows):
        for j, run in enumerate(per_seed):
            if run is None:
                continue
            elapsed = _elapsed(run, time_attr)
            for result, t in zip(run.results, elapsed, strict=True):
                k = f_index.get(result.get(resource_attr))
                if k is None:
                    continue
                for o, objective in enumerate(objectives[:-1]):
                    value = result.get(objective)
                    if is_number(value):
                        values[i, j, k, o] = float(value)
                values[i, j, k, -1] = t
            if run.status == "failed":
                failures.append({"config": i, "seed": j, "n_results": len(run.results), "error": _gist(run.error)})
    fv: list[Any] = [int(f) if float(f).is_integer() else float(f) for f in fidelities]
    last = values[:, :, -1, 0]
    optimum = None
    with np.errstate(all="ignore"), quiet_nan_warnings():
        finite_rows = ~np.all(np.isnan(last), axis=1)
        if finite_rows.any():
            means = np.nanmean(last[finite_rows], axis=1)
            optimum = {metric: float(np.min(means) if mode == "min" else np.max(means))}
    table = TabularBlackbox(values, [c for c, _ in rows], hp_space, objectives=objectives,
                            fidelity_name=resource_attr, fidelity_values=fv, elapsed_time_attr=ELAPSED_TIME,
                            name=f"{name}-tab", optimum=optimum)
    info = {"benchmark": name, "metric": metric, "mode": mode, "resource_attr": resource_attr,
            "max_resource_attr": max_resource_attr, "seed_attr": seed_attr, "seeds": list(seeds),
            "objective_modes": {metric: mode}, "failures": failures,
            "elapsed_time": "seconds from the trial's start (process start-up included) to each report"}
    return table, info


# -- tabulating -----------------------------------------------------------------------------------


def default_output_dir(name: str) -> Path:
    """``<blackbox cache>/<name>-tab`` (``$TUNEBENCH_CACHE``, else ``~/.cache/tunebench/blackboxes``)."""
    return default_cache_dir() / f"{name}-tab"


@dataclass
class TabulationResult:
    """What :func:`tabulate_benchmark` returns."""

    output_dir: Path  #: the table's folder
    experiment_dir: Path  #: the runs (an experiment folder)
    n_configs: int  #: rows of the table
    n_seeds: int
    n_jobs: int  #: (configuration, seed) runs asked for
    n_completed: int
    n_failed: int
    n_missing: int  #: jobs not run (or not finished) yet: a budget ran out
    n_started: int  #: jobs this call started or restarted
    elapsed: float  #: seconds this call spent running trials
    blackbox: Any = None  #: the table written (a TabularBlackbox, not filled)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items() if k != "blackbox"}


#: the libraries pandas writes parquet files with (``engine="auto"``), in its order of preference
PARQUET_ENGINES = ("pyarrow", "fastparquet")


def check_parquet_writer() -> str:
    """The name of an installed parquet engine, which the table's ``configs.parquet`` is written
    with. Called by :func:`tabulate_benchmark` before it runs anything, so a base install learns it
    needs the extra before hours of training rather than after.

    Raises:
        UserError: none is installed (names ``pip install 'tunebench[parquet]'``).
    """
    for engine in PARQUET_ENGINES:
        try:
            importlib.import_module(engine)
        except ImportError:
            continue
        return engine
    raise UserError("tabulate writes its table as parquet, which needs pyarrow: pip install 'tunebench[parquet]' "
                    "(nothing was run)")


def tabulate_benchmark(
    name: str,
    num_configs: int,
    seeds: int,
    *,
    configs: Sequence[Mapping[str, Any]] | None = None,
    backend: str = LOCAL,
    n_workers: int | None = None,
    output_dir: str | Path | None = None,
    work_dir: str | Path | None = None,
    resume: bool = True,
    seed: int = 0,
    max_resource: int | None = None,
    max_wallclock_time: float | None = None,
    max_failures: int | None = None,
    seed_attr: str = "seed",
    time_attr: str | None = "epoch_time",
    keep_checkpoints: bool = False,
    benchmark_args: Mapping[str, Any] | None = None,
    benchmark_modules: Sequence[str] = (),
    ray_address: str | None = None,
    trial_timeout: float | None = None,
    callbacks: Sequence[Any] = (),
) -> TabulationResult:
    """Run every (configuration, seed) of the real benchmark ``name`` for all its epochs and
    write the learning curves as a tabular blackbox (see the module doc).

    Args:
        name: a registered real benchmark (``tunebench list --benchmarks``).
        num_configs: configurations sampled from its config space (after ``configs``).
        seeds: runs per configuration, with ``--seed 0..seeds-1`` (``seed_attr``).
        configs: configurations to tabulate first (missing hyperparameters take their defaults).
        backend: a backend running scripts: ``"local"`` (processes here) or ``"ray"`` (a Ray
            cluster: ``ray_address``).
        n_workers: trials at once (default: the benchmark's, for that backend).
        output_dir: the table's folder (default :func:`default_output_dir`).
        work_dir: the runs' folder (default ``output_dir/run``).
        resume: continue the runs in ``work_dir`` (False: refuse a folder that holds runs).
        seed: seed of the sampling of configurations.
        max_resource: epochs per run (default: the benchmark's).
        max_wallclock_time: seconds this call may run trials (None: until every job is done);
            what is done is tabulated, a later call goes on.
        max_failures: failed trials tolerated (default: all: a diverging configuration is a row
            of the table, not an error).
        time_attr: the reported per-epoch seconds, used across restarts (see the module doc).
        keep_checkpoints: keep the checkpoints of finished trials.
        benchmark_args, benchmark_modules: as ``--benchmark-arg`` / ``--benchmark-module``.
        trial_timeout: seconds after which a trial is ended (and fails).
        callbacks: tuner callbacks (a progress display).

    Returns:
        A :class:`TabulationResult`; the table is in ``output_dir`` (``NAME-tab``).

    Raises:
        UserError: an unknown or simulated benchmark, a benchmark without resource, bad numbers,
            a ``work_dir`` of another tabulation, no parquet writer (:func:`check_parquet_writer`), or
            nothing reported at all.
    """
    for what, value, low in (("num_configs", num_configs, 0), ("seeds", seeds, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"{what} must be an integer >= {low}, got {value!r}")
    if num_configs == 0 and not configs:
        raise UserError("nothing to tabulate: pass --num-configs N >= 1 or --config JSON")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise UserError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    check_parquet_writer()  # before anything trains: the table is written at the end
    modules = [canonical_module_ref(ref) for ref in benchmark_modules]
    bench = resolve_benchmark(name, dict(benchmark_args or {}), modules)
    if not isinstance(bench, RealBenchmark):
        raise UserError(f"benchmark '{name}' is already simulated; tabulate a real benchmark (see `tunebench list "
                        "--benchmarks`: the ones marked [local])")
    if not get_backend(backend).runs_scripts:
        raise UserError(f"--backend {backend!r}: tabulation runs real trials, use "
                        f"{' or '.join(backend_names(runs_scripts=True))}")
    check_backend(backend)
    spec = spec_from_benchmark(name, benchmark_args=dict(benchmark_args or {}), benchmark_modules=modules)
    defaults = bench.backend_defaults(backend)
    spec.backend = backend
    spec.n_workers = n_workers or defaults["n_workers"]
    spec.cpus_per_trial, spec.gpus_per_trial = defaults["cpus_per_trial"], defaults["gpus_per_trial"]
    spec.trial_timeout = trial_timeout
    if ray_address is not None:
        spec.ray_address = ray_address
    resource_attr, max_attr = spec.resource_attr, spec.max_resource_attr
    if not resource_attr or not max_attr:
        raise UserError(f"benchmark '{name}' has no resource_attr/max_resource_attr: tabulation needs learning "
                        "curves (a script reporting per epoch, with --epochs); set them in its definition")
    space = space_from_json(spec.config_space)
    if max_resource is None:
        max_resource = spec.max_resource if spec.max_resource is not None else space.get(max_attr)
    if isinstance(max_resource, bool) or not isinstance(max_resource, int) or max_resource < 1:
        raise UserError(f"benchmark '{name}': the maximum resource must be an integer >= 1 (pass --max-resource), "
                        f"got {max_resource!r}")
    hp_space = {k: v for k, v in space.items() if k != max_attr}
    if seed_attr in hp_space:
        raise UserError(f"benchmark '{name}' has a hyperparameter '{seed_attr}', the script argument that takes "
                        "the seed of a run; rename it or pass another seed_attr")

    out = Path(output_dir).expanduser() if output_dir is not None else default_output_dir(name)
    work = Path(work_dir).expanduser() if work_dir is not None else out / "run"
    experiment_dir = work / EXPERIMENT_DIRNAME
    plan_path = work / PLAN_FILE
    table_configs = _plan_configs(hp_space, num_configs, list(configs or ()), seed)
    seed_values = list(range(seeds))
    jobs = [{**c, max_attr: max_resource, seed_attr: s} for s in seed_values for c in table_configs]
    old = _read_json(plan_path) if plan_path.exists() else None
    if old is not None:
        if not resume:
            raise UserError(f"{work} already holds the runs of a tabulation; run again with resume (the default) to "
                            "continue them, or choose another --work-dir")
        now = {"benchmark": name, "max_resource": max_resource, "resource_attr": resource_attr, "seed_attr": seed_attr}
        mismatch = ", ".join(f"{k}={old.get(k)!r}" for k, v in now.items() if old.get(k) != v)
        if mismatch:
            raise UserError(f"{work} holds the runs of another tabulation ({mismatch}); choose another --work-dir "
                            "(or --output)")
        known = {_key(j) for j in old["jobs"]}
        all_jobs = list(old["jobs"]) + [j for j in jobs if _key(j) not in known]
    else:
        all_jobs = jobs
    _write_json(plan_path, {"benchmark": name, "max_resource": max_resource, "resource_attr": resource_attr,
                            "max_resource_attr": max_attr, "seed_attr": seed_attr, "jobs": all_jobs})

    runs, state = _read_log(experiment_dir)
    todo = [j for j in all_jobs if runs.get(_key(j)) is None or runs[_key(j)].status not in ("completed", "failed")]
    n_started, elapsed = 0, 0.0
    if todo:
        exists = (experiment_dir / EVENTS_FILE).exists()
        previous = state.time
        first = spec.objectives  # a table records every reported metric; its runs are decided on the first
        searcher = FixedListSearcher({**hp_space, max_attr: max_resource}, first.metrics[0], first.modes[0],
                                                configs=all_jobs)
        scheduler = FIFOScheduler(searcher, resource_attr=resource_attr, max_resource_attr=max_attr)
        stop = StopCriteria(max_wallclock_time=None if max_wallclock_time is None else previous + max_wallclock_time)
        metadata = {"method": "tabulate", "seed": seed, "benchmark": name,
                    "backend": {"type": backend, "script": spec.script},
                    "tabulate": {"num_configs": num_configs, "seeds": seeds, "max_resource": max_resource}}
        tuner = Tuner(build_backend(spec), scheduler, n_workers=spec.n_workers, stop=stop,
                      experiment_dir=experiment_dir, resume=exists,
                      max_failures=len(all_jobs) if max_failures is None else max_failures,
                      callbacks=list(callbacks), metadata=metadata)
        t0 = time.monotonic()
        tuner.run()
        elapsed = time.monotonic() - t0
        runs, state = _read_log(experiment_dir)
        n_started = state.launches_in_last_session

    statuses = [runs[_key(j)].status if _key(j) in runs else "missing" for j in jobs]
    n_done = statuses.count("completed") + statuses.count("failed")
    if not any(runs[_key(j)].results for j in jobs if _key(j) in runs) and n_done < len(jobs):
        logger.warning("%s: no trial has reported yet, no table written; run again to continue", name)
        return TabulationResult(output_dir=out, experiment_dir=experiment_dir, n_configs=0, n_seeds=seeds,
                                n_jobs=len(jobs), n_completed=statuses.count("completed"),
                                n_failed=statuses.count("failed"), n_missing=len(jobs) - n_done,
                                n_started=n_started, elapsed=elapsed)
    table, info = build_table(experiment_dir, table_configs, seed_values, hp_space=hp_space, name=name,
                              metric=spec.objectives.metrics[0], mode=spec.objectives.modes[0],
                              resource_attr=resource_attr, seed_attr=seed_attr, max_resource_attr=max_attr,
                              max_resource=max_resource, time_attr=time_attr,
                              runs=runs)
    info.update(_simulation_defaults(bench, table))
    info.update({"script": Path(spec.script).name, "backend": backend, "n_jobs": len(jobs),
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tunebench": __version__})
    _save_table(table, info, out)
    if not keep_checkpoints:
        finished = [tid for tid, t in state.trials.items() if t.status in (Status.COMPLETED, Status.FAILED)]
        for run_id in finished:
            shutil.rmtree(experiment_dir / TRIALS_DIR / str(run_id) / CHECKPOINT_DIRNAME, ignore_errors=True)
    result = TabulationResult(
        output_dir=out, experiment_dir=experiment_dir, n_configs=table.n_configs, n_seeds=seeds, n_jobs=len(jobs),
        n_completed=statuses.count("completed"), n_failed=statuses.count("failed"), n_missing=len(jobs) - n_done,
        n_started=n_started, elapsed=elapsed, blackbox=table)
    logger.info("tabulated %s: %d configurations x %d seeds in %s (%d failed, %d missing)", name, result.n_configs,
                seeds, out, result.n_failed, result.n_missing)
    return result


def _simulation_defaults(bench: Any, table: Any) -> dict[str, Any]:
    """Defaults of the simulated benchmark: the real one's workers and method, and a simulated
    budget of a quarter of the time that training every tabulated configuration to the end
    takes on those workers."""
    elapsed = np.asarray(table.values[:, :, -1, table.objective_index(ELAPSED_TIME)], dtype=float)
    with quiet_nan_warnings():
        full = float(np.nanmedian(elapsed)) if not np.isnan(elapsed).all() else 1.0
    budget = max(full, full * table.n_configs / (4 * bench.n_workers))
    return {"n_workers": bench.n_workers, "method": bench.method, "max_resource_attr": bench.max_resource_attr,
            "max_wallclock_time": float(f"{budget:.3g}")}


def _save_table(table: Any, info: dict[str, Any], folder: Path) -> None:
    """Write the table, then add the ``tabulated`` entry to its ``meta.json``."""
    table.save(folder)
    meta = _read_json(folder / META_FILE)
    meta[TABULATED_KEY] = info
    atomic_write_json(folder / META_FILE, meta, indent=2)
    shutil.copymode(folder / VALUES_FILE, folder / META_FILE)  # the temporary file it was written to was private

