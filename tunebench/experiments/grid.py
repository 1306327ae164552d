"""Experiment grids: benchmarks x methods x seeds, run in parallel, resumable (L4).

:func:`plan_grid` turns a :class:`GridRequest` (what ``tunebench experiment`` was asked) into
one :class:`Job` per experiment, each with its folder
``<results root>/<tag>/<benchmark>/<method>/<seed>/`` (see :mod:`tunebench.analysis.layout`), its
:class:`~tunebench.launch.RunSpec` and what to do with it, decided from what is on disk:

* **skip**: the folder holds an experiment whose last session ended by a limit (its log ends
  with ``experiment_end`` and the reason is a budget, trial or result limit, a metric threshold,
  or a searcher with nothing left to try) at least as large as the one asked for now;
* **resume**: the experiment was interrupted (killed, Ctrl-C, crashed: no final
  ``experiment_end`` or another reason), or ended by a smaller limit than the one asked for now;
  it continues exactly as ``tunebench resume`` would (``build_tuner(..., resume=True)``);
* **start**: there is no experiment there yet;
* **busy**: another process is running it right now (it holds the folder's ``grid.lock``).

An existing experiment run with other settings (workers, method options, max resource, ...) is
an error: a tag names one set of settings, so that its runs can be compared.

:func:`run_grid` runs the jobs in ``parallel`` *worker processes* (``python -m
tunebench.experiments.worker``), each running one experiment at a time and then the next one it is
given (so a process loads the blackbox and the libraries once, not once per experiment). A job
whose worker crashes (killed, out of memory, segfault) is marked failed with what the worker
wrote to stderr, and a fresh worker takes the next jobs: one experiment cannot bring down the
grid. Ctrl-C (or SIGTERM) interrupts the running experiments cleanly (their logs end with
``experiment_end`` "interrupted") and a second Ctrl-C kills them; the next run of the same
command resumes them. A worker whose parent dies (its stdin closes) interrupts its experiment too.
:func:`tunebench.experiments.cluster.run_grid_on_cluster` runs the same jobs as Ray tasks on a
cluster instead (``--launch-on-cluster``, ``--backend ray``), with the same observer and outcomes.

**Parallel runs and decision time.** On the simulator backend, the real time a scheduler spends
deciding is added to the simulated clock (``charge_decision_time``), so that a slow method pays
for its decisions. That time is *wall* time: experiments running at once on fewer cores than
there are experiments slow each other down and are charged more than they would be alone.
:func:`default_parallel` therefore runs at most as many simulations at once as there are usable
cores (and one experiment at a time on the local backend, whose trials use the cores
themselves), and worker processes get one BLAS/OpenMP thread each. Asking for more with
``--parallel`` is allowed (with a warning); ``--no-charge-decision-time`` makes results
independent of the load, at the price of not counting decision time at all.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebench.analysis.layout import check_tag, experiment_path, results_root
from tunebench.analysis.transfer import load_transfer_tasks, resolve_transfer_sources
from tunebench.backends.registry import LOCAL, RAY, SIMULATOR, get_backend
from tunebench.benchmarks import SimulatedBenchmark, canonical_module_ref, load_benchmark_module, resolve_benchmark
from tunebench.errors import UserError
from tunebench.events import LogKind, read_last_event
from tunebench.launch import (
    RunSpec,
    build_prior,
    build_space,
    check_backend,
    spec_from_benchmark,
    thread_env,
    use_backend,
)
from tunebench.lock import hold, lock_holder
from tunebench.schedulers import canonical_method_names, get_method, make_scheduler
from tunebench.store import EVENTS_FILE, METADATA_FILE, TUNER_LOCK_FILE, read_metadata
from tunebench.types import TransferTask

logger = logging.getLogger(__name__)

__all__ = [
    "GridRequest",
    "Job",
    "GridResult",
    "plan_grid",
    "check_results_root",
    "run_grid",
    "experiment_state",
    "is_limit_reason",
    "default_parallel",
    "scaled_wallclock_time",
    "LOCK_FILE",
    "ERROR_FILE",
]

#: file in an experiment folder locked (``flock``) by the process running the experiment
LOCK_FILE = "grid.lock"
#: file in an experiment folder where a failed experiment's error and worker output are written
ERROR_FILE = "error.log"

#: ``experiment_end`` reasons of an experiment that ran to its end (a prefix, or the whole reason)
_LIMIT_PREFIXES = ("max_wallclock_time=", "max_trials=", "max_results=", "metric_threshold=")
_EXHAUSTED = "no more trials to run"

#: fields of a run spec that must match between an existing experiment and the grid asking for it
_IDENTITY_FIELDS = ("benchmark", "method", "seed", "metric", "mode", "resource_attr", "max_resource_attr",
                    "max_resource", "method_kwargs", "n_workers", "backend", "charge_decision_time",
                    "benchmark_args", "constraints", "cost_attr",
                    "prior")
_LIMIT_FIELDS = ("max_wallclock_time", "max_trials", "max_results")


def is_limit_reason(reason: str | None) -> bool:
    """True for the end reason of an experiment that ran to its end (a budget, trial or result
    limit, a metric threshold, or a searcher with nothing left to try)."""
    if not reason:
        return False
    return reason.startswith(_LIMIT_PREFIXES) or reason == _EXHAUSTED


def scaled_wallclock_time(default_time: float, default_workers: int, n_workers: int) -> float:
    """The default budget scaled up when fewer workers than the benchmark's default are used:
    ``default_time * default_workers / n_workers`` (the same total worker time); unchanged when
    ``n_workers >= default_workers``."""
    if n_workers < default_workers:
        return default_time * default_workers / n_workers
    return default_time


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_parallel(jobs: Sequence[Job]) -> int:
    """Experiments to run at once by default: the usable cores for simulations, 1 if any job runs
    real trials on the local backend (its trials use the cores); never more than the jobs."""
    todo = [j for j in jobs if j.action in ("start", "resume")]
    if not todo:
        return 1
    if any(get_backend(j.spec.backend).runs_scripts for j in todo):
        return 1
    return max(1, min(usable_cores(), len(todo)))


# -- the request and its plan --------------------------------------------------------------------


@dataclass
class GridRequest:
    """What an experiment grid is asked to run (``tunebench experiment``'s options).

    ``None`` for a limit or a resource means: the benchmark's default. ``method_args`` maps a
    method name (or ``"*"``: every method that takes the option) to options of that method.
    """

    benchmarks: list[str]
    methods: list[str]
    seeds: list[int]
    tag: str | None  #: checked by the grid (None: the error that asks for one)
    results_root: str | Path | None = None
    n_workers: int | None = None
    max_wallclock_time: float | None = None
    scale_max_wallclock_time: bool = False
    max_trials: int | None = None
    max_results: int | None = None
    max_resource: int | None = None
    backend: str | None = None
    data_dir: str | None = None
    charge_decision_time: bool = True
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    benchmark_args: dict[str, Any] = field(default_factory=dict)
    benchmark_modules: list[str] = field(default_factory=list)
    gpus_per_trial: int | None = None
    cpus_per_trial: int | None = None
    max_failures: int | None = None
    command_line: list[str] | None = None
    #: run the experiments as tasks on a Ray cluster; real benchmarks then default to backend "ray"
    launch_on_cluster: bool = False
    ray_address: str | None = None  #: backend "ray": the cluster (see RunSpec.ray_address)
    warm_pool: bool | None = None  #: backend "ray": reuse trial actors (None: RunSpec's default)
    storage: str | None = None  #: backend "ray": fsspec URL of the trial folders
    max_retries: int | None = None  #: backend "ray": relaunches of a trial (or experiment) lost with its node
    ray_node_wait: float | None = None  #: backend "ray": seconds to wait for a node that fits (None: RunSpec's)
    prior: dict[str, Any] | None = None  #: the user's prior (``--prior FILE``; RunSpec.prior) for every run
    #: earlier experiments (folders, grid tags under ``results_root``) for the transfer methods (``--transfer-from``)
    transfer_from: list[str] = field(default_factory=list)


@dataclass
class Job:
    """One experiment of a grid.

    Attributes:
        benchmark, method, seed: what it runs.
        path: its experiment folder.
        spec: how to build it (stored limits replaced by the grid's when resuming).
        action: "start", "resume", "skip" (complete) or "busy" (another process runs it).
        note: why (the end reason of the existing experiment, ...).
    """

    benchmark: str
    method: str
    seed: int
    path: Path
    spec: RunSpec
    action: str
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.benchmark}/{self.method}/{self.seed}"


def experiment_state(path: str | Path) -> tuple[str, str | None]:
    """``(state, end reason)`` of the experiment folder ``path``: ``("missing", None)`` (no
    experiment yet), ``("complete", reason)`` (the log ends with an ``experiment_end`` whose reason
    is a limit, see :func:`is_limit_reason`), or ``("interrupted", reason or None)``."""
    path = Path(path)
    events = path / EVENTS_FILE
    if not (path / METADATA_FILE).is_file() or not events.is_file():
        return "missing", None
    last = read_last_event(events)  # None: empty, torn or unreadable at its end
    if last is None or last.get("event") != LogKind.EXPERIMENT_END:
        return "interrupted", None
    reason = str(last.get("reason"))
    return ("complete" if is_limit_reason(reason) else "interrupted"), reason


def is_locked(path: Path) -> bool:
    """True if another process runs the experiment in ``path``: a grid process (it holds the
    folder's :data:`LOCK_FILE`) or a tuner (``tunebench run``/``resume``, which hold the store's
    :data:`~tunebench.store.TUNER_LOCK_FILE`)."""
    return lock_holder(path / LOCK_FILE) is not None or lock_holder(path / TUNER_LOCK_FILE) is not None


@contextlib.contextmanager
def experiment_lock(path: Path) -> Iterator[bool]:
    """Hold the experiment's :data:`LOCK_FILE` (yields False if another process holds it)."""
    with hold(path / LOCK_FILE) as locked:
        yield locked


def _json_norm(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _exceeds(requested: float | None, stored: float | None) -> bool:
    """True if the limit asked for now is larger than the stored one (None = no limit)."""
    if requested is None:
        return stored is not None
    return stored is not None and requested > stored * (1 + 1e-9)


def _decide(job_spec: RunSpec, path: Path) -> tuple[str, str, RunSpec]:
    """``(action, note, spec)`` for the experiment the grid wants in ``path``."""
    state, reason = experiment_state(path)
    if state == "missing":
        return "start", "", job_spec
    if is_locked(path):
        return "busy", "running in another process", job_spec
    meta = read_metadata(path)
    stored_dict = meta.get("run_spec")
    if not isinstance(stored_dict, dict):
        raise UserError(f"{path} holds an experiment that `tunebench experiment` did not start (no run_spec in "
                        "its metadata.json); move it away or use another --experiment-tag")
    stored = RunSpec.from_dict(stored_dict)
    want, have = _json_norm(job_spec.to_dict()), _json_norm(stored.to_dict())
    diffs = [f"{name}={have.get(name)!r} (asked: {want.get(name)!r})" for name in _IDENTITY_FIELDS
             if want.get(name) != have.get(name)]
    if diffs:
        raise UserError(f"{path} was run with other settings: {'; '.join(diffs[:3])}; use another --experiment-tag "
                        "for other settings (or move that folder away)")
    larger = [name for name in _LIMIT_FIELDS if _exceeds(getattr(job_spec, name), getattr(stored, name))]
    # resume the stored spec with the limits asked for now (everything else is the same)
    spec = copy.deepcopy(stored)
    for name in (*_LIMIT_FIELDS, "metric_threshold", "max_failures", "trial_timeout", "data_dir", "ray_address",
                 "warm_pool", "storage", "max_retries", "ray_node_wait"):
        setattr(spec, name, getattr(job_spec, name))
    spec.benchmark_modules = list(job_spec.benchmark_modules)
    if state == "complete":
        if reason == _EXHAUSTED or not larger:
            return "skip", f"complete ({reason})", spec
        return "resume", f"ended with {reason}; continuing to the larger {', '.join(larger)}", spec
    return "resume", f"interrupted ({reason or 'no end in its log'})", spec


def _method_kwargs(request: GridRequest, methods: list[str]) -> dict[str, dict[str, Any]]:
    """Options of each method: the ``"*"`` options it takes, then its own."""
    per_method: dict[str, dict[str, Any]] = {m: {} for m in methods}
    lowered = {m.lower(): m for m in methods}
    for key, options in request.method_args.items():
        if key == "*":
            continue
        target = lowered.get(key.lower())
        if target is None:
            raise UserError(f"--method-arg {key}:...: {key} is not a method of this grid ({', '.join(methods)})")
        per_method[target].update(options)
    for option, value in request.method_args.get("*", {}).items():
        takers = [m for m in methods if get_method(m).accepts(option)]
        if not takers:
            raise UserError(f"--method-arg {option}=...: no method of this grid ({', '.join(methods)}) takes "
                            f"option '{option}'")
        for m in takers:
            per_method[m].setdefault(option, value)
    return per_method


def _benchmark_spec(request: GridRequest, name: str) -> RunSpec:
    """The spec of benchmark ``name`` with the grid's overrides (method and seed set later)."""
    bench = resolve_benchmark(name, request.benchmark_args, request.benchmark_modules)
    simulated = isinstance(bench, SimulatedBenchmark)
    natural = SIMULATOR if simulated else LOCAL
    backend = check_backend(request.backend) if request.backend else natural
    if not simulated and request.launch_on_cluster and not request.backend:
        backend = RAY  # a real benchmark on a cluster: its trials run as Ray actors there
    entry = get_backend(backend)
    if simulated and entry.cluster:
        raise UserError(f"benchmark '{name}' is simulated: it runs on the {natural} backend, not {backend}; to run "
                        f"simulations on a Ray cluster, use --launch-on-cluster (without --backend {backend})")
    if entry.runs_scripts == simulated:
        raise UserError(f"benchmark '{name}' is {bench.kind}: it runs on the {natural} backend, not {backend} "
                        f"(drop --backend {backend}, or choose other benchmarks)")
    spec = spec_from_benchmark(name, request.data_dir, benchmark_args=request.benchmark_args,
                               benchmark_modules=request.benchmark_modules)
    use_backend(spec, backend)
    spec.prior = request.prior
    default_workers, default_time = spec.n_workers, spec.max_wallclock_time
    if request.n_workers is not None:
        spec.n_workers = request.n_workers
    if request.max_wallclock_time is not None:
        spec.max_wallclock_time = float(request.max_wallclock_time)
    elif request.scale_max_wallclock_time and default_time is not None:
        spec.max_wallclock_time = scaled_wallclock_time(default_time, default_workers, spec.n_workers)
    if request.max_trials is not None:
        spec.max_trials = request.max_trials
    if request.max_results is not None:
        spec.max_results = request.max_results
    if request.max_resource is not None:
        spec.max_resource = request.max_resource
    if request.max_failures is not None:
        spec.max_failures = request.max_failures
    if request.gpus_per_trial is not None:
        spec.gpus_per_trial = request.gpus_per_trial
    if request.cpus_per_trial is not None:
        spec.cpus_per_trial = request.cpus_per_trial
    spec.charge_decision_time = request.charge_decision_time
    if entry.cluster:
        spec.ray_address = request.ray_address
        spec.storage = request.storage
        if request.warm_pool is not None:
            spec.warm_pool = request.warm_pool
        if request.max_retries is not None:
            spec.max_retries = request.max_retries
        if request.ray_node_wait is not None:
            spec.ray_node_wait = request.ray_node_wait
    if request.transfer_from:
        spec.transfer_from = resolve_transfer_sources(request.transfer_from, request.results_root)
    if spec.max_wallclock_time is None and spec.max_trials is None and spec.max_results is None:
        raise UserError(f"benchmark '{name}' has no budget: pass --max-wallclock-time or --max-trials")
    return spec


def check_results_root(root: Path) -> Path:
    """``root`` if experiment folders can be made under it: it is a folder, or its nearest existing
    parent is one, writable (nothing is created here: ``--dry-run`` plans without writing).

    Raises:
        UserError: ``root`` (or a parent of it) is a file, or that folder is not writable.
    """
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is" if existing == root else f"is under {existing}, which is"
        raise UserError(f"the results root {root} {what} not a folder; pass --results-root (or set "
                        "TUNEBENCH_RESULTS) to a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"the results root {root} cannot be written ({existing} is not writable); pass "
                        "--results-root (or set TUNEBENCH_RESULTS) to a folder you can write")
    return root


def _transfer_of(spec: RunSpec, space: dict[str, Any],
                 cache: dict[str, tuple[TransferTask, ...]]) -> tuple[TransferTask, ...]:
    """The source tasks of ``spec`` (its ``transfer_from``), loaded once per benchmark."""
    key = str(spec.benchmark)
    if key not in cache:
        objectives = spec.objectives
        cache[key] = load_transfer_tasks(spec.transfer_from, space, objectives.metrics[0], objectives.modes[0],
                                         target=spec.benchmark) if spec.transfer_from else ()
    return cache[key]


def plan_grid(request: GridRequest) -> list[Job]:
    """One :class:`Job` per (seed, benchmark, method), seed-major (an interrupted grid has every
    method on its first seeds), with what to do about each (see the module docs).

    Raises:
        UserError: a bad tag, an unknown benchmark/method/option, a benchmark on the wrong
            backend, an existing experiment with other settings, a results
            root that is a file (:func:`check_results_root`).
    """
    tag = check_tag(request.tag)
    if not request.benchmarks:
        raise UserError("no benchmark given: pass --benchmark NAME (see `tunebench list --benchmarks`)")
    if not request.seeds:
        raise UserError("no seed to run: --num-seeds must be >= 1")
    if request.n_workers is not None and request.n_workers < 1:
        raise UserError(f"--n-workers must be >= 1, got {request.n_workers}")
    request.benchmark_modules = [canonical_module_ref(ref) for ref in request.benchmark_modules]
    for ref in request.benchmark_modules:
        load_benchmark_module(ref)
    methods = canonical_method_names(request.methods)
    if not methods:
        raise UserError("no method given: pass --method NAME or --method-group GROUP")
    benchmarks = list(dict.fromkeys(request.benchmarks))
    kwargs = _method_kwargs(request, methods)
    base_specs = {b: _benchmark_spec(request, b) for b in benchmarks}
    specs: dict[tuple[str, str], RunSpec] = {}
    transfer: dict[str, tuple[TransferTask, ...]] = {}  # benchmark -> its source tasks, loaded once
    for b in benchmarks:
        for m in methods:
            spec = copy.deepcopy(base_specs[b])
            bench_default = spec.method
            spec.method = m
            spec.method_kwargs = {**(spec.method_kwargs if bench_default.lower() == m.lower() else {}), **kwargs[m]}
            space = build_space(spec)
            make_scheduler(m, space, metric=spec.metric, mode=spec.mode, resource_attr=spec.resource_attr,
                           max_resource_attr=spec.max_resource_attr, max_t=spec.max_resource, seed=0,
                           constraints=spec.constraints, cost_attr=spec.cost_attr, prior=build_prior(spec, space),
                           transfer=_transfer_of(spec, space, transfer) if get_method(m).transfer else (),
                           **spec.method_kwargs)  # fails now, not in a worker, on a bad option or metric
            specs[(b, m)] = spec
    root = check_results_root(results_root(request.results_root))
    jobs: list[Job] = []
    for seed in request.seeds:
        for b in benchmarks:
            for m in methods:
                spec = copy.deepcopy(specs[(b, m)])
                spec.seed = int(seed)
                path = experiment_path(root, tag, b, m, seed)
                action, note, spec = _decide(spec, path)
                jobs.append(Job(b, m, int(seed), path, spec, action, note))
    return jobs


# -- running --------------------------------------------------------------------------------------


@dataclass
class JobOutcome:
    """How one job of a run ended."""

    job: Job
    status: str  #: "complete", "failed", "interrupted", "busy", "skipped"
    reason: str = ""
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class GridResult:
    """What :func:`run_grid` returns."""

    outcomes: list[JobOutcome]
    interrupted: bool
    wall_time: float

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(o.status in ("complete", "skipped") for o in self.outcomes)


class GridObserver:
    """Told what happens while a grid runs (a progress display is one). All hooks optional."""

    def on_grid_start(self, jobs: Sequence[Job], parallel: int) -> None:
        """Called once before any job starts; ``jobs`` includes the skipped ones."""

    def on_job_start(self, job: Job, info: dict[str, Any]) -> None:
        """A worker began the job (``info``: what the worker says, e.g. ``resumed``, ``elapsed``)."""

    def on_job_progress(self, job: Job, info: dict[str, Any]) -> None:
        """Progress of a running job: ``elapsed``, ``budget``, ``trials``, ``results``, ``best`` (of the
        first metric, feasible results only; see :mod:`tunebench.experiments.worker`)."""

    def on_job_end(self, outcome: JobOutcome) -> None:
        """The job ended (or was found complete/busy)."""

    def on_interrupt(self) -> None:
        """Ctrl-C: running jobs are being interrupted."""

    def tick(self) -> None:
        """Called a few times a second while jobs run."""

    def on_grid_end(self, result: GridResult) -> None:
        """Called once at the end."""


def settled_outcomes(jobs: Sequence[Job], observer: GridObserver) -> list[JobOutcome]:
    """The outcomes of the jobs there is nothing to run for (complete: skipped; busy), told to
    ``observer`` (call after its ``on_grid_start``)."""
    outcomes = []
    for job in jobs:
        if job.action == "skip":
            outcome = JobOutcome(job, "skipped", job.note)
        elif job.action == "busy":
            outcome = JobOutcome(job, "busy", job.note)
        else:
            continue
        outcomes.append(outcome)
        observer.on_job_end(outcome)
    return outcomes


def write_error(job: Job, error: str, tail: str = "", what: str = "worker stderr") -> None:
    """Append ``error`` (and ``tail``, the last output of what ran it) to the job's :data:`ERROR_FILE`."""
    with contextlib.suppress(OSError):
        job.path.mkdir(parents=True, exist_ok=True)
        with open(job.path / ERROR_FILE, "a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {job.key}\n{error}\n")
            if tail:
                f.write(f"{what} (last lines):\n{tail}\n")


class _Worker:
    """A worker process and what the grid knows of it."""

    def __init__(self, index: int, env: dict[str, str], python: str) -> None:
        self.index = index
        self.proc = subprocess.Popen(
            [python, "-m", "tunebench.experiments.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, start_new_session=True, bufsize=0)
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.stdin = self.proc.stdin
        self.job: Job | None = None
        self.buffers = {"out": b"", "err": b""}
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self.closed = {"out": False, "err": False}
        for stream in (self.proc.stdout, self.proc.stderr):
            os.set_blocking(stream.fileno(), False)

    def send(self, job_id: int, job: Job, tag: str, command_line: list[str] | None) -> None:
        message = {"id": job_id, "path": str(job.path), "resume": job.action == "resume", "spec": job.spec.to_dict(),
                   "metadata": {"experiment_tag": tag}, "command_line": command_line}
        self.job = job
        self.stderr_tail.clear()
        self.stdin.write((json.dumps(message) + "\n").encode())
        self.stdin.flush()

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()


def _worker_env(jobs: Sequence[Job]) -> dict[str, str]:
    env = dict(os.environ)
    # the worker imports this very tunebench (also when it is not installed, e.g. run from a checkout)
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    if all(not get_backend(j.spec.backend).runs_scripts for j in jobs):
        for k, v in thread_env(1).items():  # simulations: one core each (see the module docs)
            env.setdefault(k, v)
    return env


def run_grid(jobs: Sequence[Job], *, parallel: int | None = None, observer: GridObserver | None = None,
             tag: str = "", command_line: list[str] | None = None, python: str = sys.executable,
             interrupt_grace: float = 60.0) -> GridResult:
    """Run the jobs to start or resume, ``parallel`` at once (default :func:`default_parallel`),
    in worker processes; skipped and busy jobs are reported as such. Returns every job's outcome.

    Ctrl-C (KeyboardInterrupt) or SIGTERM interrupts the running experiments (SIGINT to their
    workers, which end them cleanly within ``interrupt_grace`` seconds, else are killed) and
    returns with ``interrupted=True``; a second Ctrl-C kills them at once.
    """
    observer = observer or GridObserver()
    t0 = time.monotonic()
    parallel = parallel or default_parallel(jobs)
    outcomes: list[JobOutcome] = []
    todo: deque[Job] = deque()
    for job in jobs:
        if job.action in ("start", "resume"):
            todo.append(job)
    observer.on_grid_start(jobs, parallel)
    outcomes.extend(settled_outcomes(jobs, observer))
    runner = _Runner(todo, parallel, observer, tag, command_line, python, _worker_env(list(todo)), outcomes)
    interrupted = runner.run(interrupt_grace)
    result = GridResult(outcomes, interrupted, time.monotonic() - t0)
    observer.on_grid_end(result)
    return result


class _Runner:
    """The event loop of :func:`run_grid`."""

    def __init__(self, todo: deque[Job], parallel: int, observer: GridObserver, tag: str,
                 command_line: list[str] | None, python: str, env: dict[str, str],
                 outcomes: list[JobOutcome]) -> None:
        self.todo = todo
        self.parallel = parallel
        self.observer = observer
        self.tag = tag
        self.command_line = command_line
        self.python = python
        self.env = env
        self.outcomes = outcomes
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.next_index = 0
        self.next_job_id = 0
        self.stopping = False
        self.spawn_failures = 0

    # -- workers ------------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        worker = _Worker(self.next_index, self.env, self.python)
        self.next_index += 1
        assert worker.proc.stdout is not None and worker.proc.stderr is not None
        self.selector.register(worker.proc.stdout, selectors.EVENT_READ, (worker, "out"))
        self.selector.register(worker.proc.stderr, selectors.EVENT_READ, (worker, "err"))
        self.workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None and worker.proc.stderr is not None
        for stream in (worker.proc.stdout, worker.proc.stderr):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(stream)
            with contextlib.suppress(OSError):
                stream.close()
        worker.close_stdin()
        if worker in self.workers:
            self.workers.remove(worker)

    def _assign(self) -> None:
        """Give the next jobs to idle workers, starting workers up to ``parallel``."""
        while self.todo and not self.stopping:
            idle = [w for w in self.workers if w.job is None and w.proc.poll() is None]
            if idle:
                worker = idle[0]
            elif len(self.workers) < self.parallel:
                worker = self._spawn()
            else:
                return
            job = self.todo.popleft()
            try:
                worker.send(self.next_job_id, job, self.tag, self.command_line)
            except OSError:  # the worker died before it got the job: give it to another one
                self.todo.appendleft(job)
                worker.job = None
                self._retire(worker)
                self.spawn_failures += 1
                if self.spawn_failures > 3 * self.parallel + 3:
                    raise RuntimeError("worker processes die at start; run `python -m tunebench.experiments.worker "
                                       "< /dev/null` to see why") from None
                continue
            self.next_job_id += 1

    # -- messages -----------------------------------------------------------------------------

    def _read(self, worker: _Worker, which: str) -> bool:
        """Read what the worker wrote on one of its pipes; False if nothing is there now."""
        if worker.closed[which]:
            return False
        stream = worker.proc.stdout if which == "out" else worker.proc.stderr
        assert stream is not None
        try:
            chunk = os.read(stream.fileno(), 1 << 16)
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            chunk = b""
        if not chunk:
            worker.closed[which] = True
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(stream)
            if worker.buffers[which]:
                self._line(worker, which, worker.buffers[which])
                worker.buffers[which] = b""
            return False
        data = worker.buffers[which] + chunk
        *lines, rest = data.split(b"\n")
        worker.buffers[which] = rest
        for line in lines:
            self._line(worker, which, line)
        return True

    def _line(self, worker: _Worker, which: str, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip()
        if which == "err":
            if text:
                worker.stderr_tail.append(text)
                logger.debug("worker %d: %s", worker.index, text)
            return
        try:
            message = json.loads(text)
        except ValueError:
            worker.stderr_tail.append(text)
            return
        job = worker.job
        if job is None or not isinstance(message, dict):
            return
        kind = message.get("event")
        if kind == "start":
            self.observer.on_job_start(job, message)
        elif kind == "progress":
            self.observer.on_job_progress(job, message)
        elif kind == "end":
            outcome = JobOutcome(job, str(message.get("status")), str(message.get("reason") or ""),
                                 str(message.get("error") or ""), message)
            if outcome.status == "failed":
                self._write_error(job, outcome.error, worker)
            worker.job = None
            self._finish(outcome)

    def _finish(self, outcome: JobOutcome) -> None:
        self.outcomes.append(outcome)
        self.observer.on_job_end(outcome)

    def _write_error(self, job: Job, error: str, worker: _Worker) -> None:
        write_error(job, error, "\n".join(worker.stderr_tail))

    def _reap(self) -> None:
        """Workers that exited: a job they held failed (crash), unless it was being interrupted."""
        for worker in list(self.workers):
            code = worker.proc.poll()
            if code is None:
                continue
            # read what is left in its pipes first (the job's end message may be there)
            for which in ("out", "err"):
                while self._read(worker, which):
                    pass
            job = worker.job
            if job is not None:
                worker.job = None
                if self.stopping:
                    outcome = JobOutcome(job, "interrupted", "grid interrupted")
                else:
                    how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
                    error = f"worker process {how} while running {job.key}"
                    last = worker.stderr_tail[-1] if worker.stderr_tail else ""
                    outcome = JobOutcome(job, "failed", how, error + (f": {last}" if last else ""))
                    self._write_error(job, error, worker)
                self._finish(outcome)
            self._retire(worker)

    # -- the loop -----------------------------------------------------------------------------

    def _pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            worker, which = key.data
            self._read(worker, which)
        self._reap()
        self.observer.tick()

    def run(self, interrupt_grace: float) -> bool:
        """Run every job; True if interrupted."""
        previous = _install_sigterm()
        try:
            try:
                while self.todo or any(w.job is not None for w in self.workers):
                    self._assign()
                    # idle workers with nothing left to do: let them go
                    if not self.todo:
                        for w in self.workers:
                            if w.job is None:
                                w.close_stdin()
                    self._pump(0.2)
                self._shutdown(5.0)
                return False
            except KeyboardInterrupt:
                self._interrupt(interrupt_grace)
                return True
        finally:
            _restore_sigterm(previous)
            for w in list(self.workers):
                w.signal(signal.SIGKILL)
                self._retire(w)
            self.selector.close()

    def _interrupt(self, grace: float) -> None:
        self.stopping = True
        self.todo.clear()
        self.observer.on_interrupt()
        for w in self.workers:
            w.signal(signal.SIGINT)  # each ends its experiment cleanly, then exits (stdin stays open)
        deadline = time.monotonic() + grace
        try:
            while any(w.proc.poll() is None for w in self.workers) and time.monotonic() < deadline:
                self._pump(0.2)
        except KeyboardInterrupt:  # a second Ctrl-C: kill them
            pass
        for w in self.workers:
            w.signal(signal.SIGKILL)
        for w in list(self.workers):
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(5.0)
        self._reap()

    def _shutdown(self, timeout: float) -> None:
        for w in self.workers:
            w.close_stdin()
        deadline = time.monotonic() + timeout
        while self.workers and time.monotonic() < deadline:
            self._pump(0.1)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _install_sigterm() -> Any:
    try:
        return signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        return None


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def summarize(result: GridResult, write: Callable[[str], Any] = print) -> None:
    """Write what happened to a grid: counts, then the failed and busy experiments."""
    n = len(result.outcomes)
    started = [o for o in result.outcomes if o.status == "complete" and o.job.action == "start"]
    resumed = [o for o in result.outcomes if o.status == "complete" and o.job.action == "resume"]
    write(f"{n} experiments: {len(started)} run, {len(resumed)} resumed, {result.count('skipped')} already complete, "
          f"{result.count('failed')} failed, {result.count('interrupted')} interrupted, {result.count('busy')} running "
          f"elsewhere ({result.wall_time:.1f} s)")
    for o in result.outcomes:
        if o.status == "failed":
            first = (o.error or o.reason).strip().splitlines()
            log = o.job.path / ERROR_FILE
            write(f"  failed {o.job.key}: {first[-1] if first else '?'}" + (f" (see {log})" if log.is_file() else ""))
        elif o.status == "busy":
            write(f"  running elsewhere: {o.job.key} ({o.job.path})")
