"""From a run specification to a ready :class:`~tunebench.tuner.Tuner` (L4).

A :class:`RunSpec` holds everything needed to (re)build a tuning run: the script, its config
space, metric and mode, resources, method, seed, workers, stop criteria and backend (with the Ray
cluster's address and options for ``backend="ray"``). It is stored
in ``metadata.json`` so that ``tunebench resume PATH`` rebuilds the very same scheduler and
backend from the experiment folder alone.
"""

from __future__ import annotations

import json
import runpy
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tunebench.analysis.layout import RESULTS_ENV, results_root
from tunebench.analysis.transfer import load_transfer_tasks
from tunebench.backends.base import Backend
from tunebench.backends.registry import LOCAL, SIMULATOR, get_backend
from tunebench.benchmarks import (
    Benchmark,
    RealBenchmark,
    SimulatedBenchmark,
    canonical_module_ref,
    load_benchmark_module,
    resolve_benchmark,
)
from tunebench.errors import SpaceError, UserError
from tunebench.schedulers import make_scheduler
from tunebench.space import load_space_file, space_from_json, space_to_json, validate_space
from tunebench.tuner import Callback, StopCriteria, Tuner
from tunebench.types import Objectives

__all__ = ["RunSpec", "RESULTS_ENV", "spec_from_script", "spec_from_benchmark", "build_space", "build_backend",
           "build_tuner", "use_backend", "check_backend", "thread_env", "default_experiment_dir", "script_namespace"]


@dataclass
class RunSpec:
    """Everything needed to build a tuning run (JSON-able)."""

    script: str
    config_space: dict[str, Any]  #: in JSON form (see :func:`tunebench.space.space_to_json`)
    #: the reported metric to optimize, or several (a multi-objective method: ``--metric a b``)
    metric: str | list[str]
    #: "min" or "max": one for all metrics, or one per metric
    mode: str | list[str] = "min"
    resource_attr: str | None = None
    max_resource_attr: str | None = None
    max_resource: int | None = None
    method: str = "ASHA"
    method_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    n_workers: int = 2
    max_wallclock_time: float | None = None
    max_trials: int | None = None
    max_results: int | None = None
    metric_threshold: float | None = None
    max_failures: int = 5
    trial_timeout: float | None = None
    gpus_per_trial: int = 1
    benchmark: str | None = None
    #: a registered backend (:mod:`tunebench.backends.registry`): "local" (real processes), "ray" (Ray actors) or
    #: "simulator" (a simulated benchmark)
    backend: str = LOCAL
    data_dir: str | None = None  #: benchmark data folder (default: $TUNEBENCH_DATA)
    charge_decision_time: bool = True  #: simulator: add scheduler decision time to simulated time
    cpus_per_trial: int | None = None  #: CPU threads per trial (OMP_NUM_THREADS etc.; ray: the CPUs its actor holds)
    #: fields of the benchmark definition overridden (``--benchmark-arg FIELD=VALUE``)
    benchmark_args: dict[str, Any] = field(default_factory=dict)
    #: user modules loaded before building (benchmark definitions, methods; absolute file paths)
    benchmark_modules: list[str] = field(default_factory=list)
    ray_address: str | None = None  #: ray: the cluster (HOST:PORT of its head, "auto", ray://...); None: Ray's default
    warm_pool: bool = True  #: ray: reuse trial actors across trials
    storage: str | None = None  #: ray: fsspec URL holding the trial folders (None: under the experiment folder)
    max_retries: int = 3  #: ray: relaunches of a trial whose actor (node) died
    #: local: the trials' working directory (absolute; set to the directory tunebench was started from by
    #: :func:`spec_from_script` and :func:`spec_from_benchmark`); None: each trial's own folder
    #: (``--trial-cwd trial``, and experiments recorded before this field existed)
    trial_cwd: str | None = None
    #: local: bytes kept of each trial log (stdout.log, stderr.log: head and tail); None: the backend's
    #: default (10 MiB); 0: no limit
    trial_log_limit: int | None = None
    #: ray: seconds to wait at start for a node that can hold one trial (worker nodes still joining)
    ray_node_wait: float = 60.0
    #: local, ray: fork each trial run from a prepared interpreter that imported the script's modules once
    #: (``--no-warm-start``: a new interpreter per run)
    warm_start: bool = True
    #: local, ray: more modules the prepared interpreter imports (``--preload MODULE``)
    preload: list[str] = field(default_factory=list)
    #: a Python function run by the trials instead of ``script`` (:func:`tunebench.tune`):
    #: :meth:`tunebench.backends.warm.FunctionTarget.to_dict`
    function: dict[str, Any] | None = None
    #: bounds on reported metrics a result must meet to be feasible (``--constraint "latency<=20"``;
    #: :class:`~tunebench.types.Constraint` texts)
    constraints: list[str] = field(default_factory=list)
    #: reported metric holding each result's cost, for cost-aware methods (``--cost-attr``)
    cost_attr: str | None = None
    #: the user's prior over the space (``--prior FILE``: its mapping, see
    #: :class:`tunebench.space.Prior`), for the methods that need one (PiBO, PriorBand)
    prior: dict[str, Any] | None = None
    #: earlier experiments to learn from, for the transfer methods (``--transfer-from``): absolute
    #: experiment folders and grid tag folders (:func:`tunebench.analysis.transfer.resolve_transfer_sources`)
    transfer_from: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def objectives(self) -> Objectives:
        """The metric(s) and mode(s) of this spec, validated (a UserError naming the fix)."""
        return Objectives.from_args(self.metric, self.mode)

    @property
    def trial_program(self) -> str:
        """What the trials run: the script's path, or ``module:function`` (the function's
        ``main_path:qualname`` when it was defined in the main script)."""
        if self.function:
            return f"{self.function.get('main_path') or self.function['module']}:{self.function['qualname']}"
        return self.script

    def load_modules(self) -> None:
        """Load the user modules of this spec (their benchmarks and methods get registered);
        done by everything that builds from a spec, so a worker process or ``tunebench resume``
        knows them too."""
        for ref in self.benchmark_modules:
            load_benchmark_module(ref)

    def resolve_benchmark(self) -> Benchmark | None:
        """The benchmark definition of this spec (user modules loaded, overrides applied), or None."""
        if not self.benchmark:
            return None
        return resolve_benchmark(self.benchmark, self.benchmark_args, self.benchmark_modules)

    def stop_criteria(self) -> StopCriteria:
        return StopCriteria(max_wallclock_time=self.max_wallclock_time, max_trials=self.max_trials,
                            max_results=self.max_results, metric_threshold=self.metric_threshold)


def script_namespace(script: str | Path) -> dict[str, Any]:
    """Top-level names of a training script, run with ``__name__ != "__main__"`` (so its training,
    guarded by ``if __name__ == "__main__":``, does not run). Used to read ``CONFIG_SPACE`` and the
    optional ``METRIC``, ``MODE``, ``RESOURCE_ATTR``, ``MAX_RESOURCE_ATTR`` defaults."""
    path = Path(script)
    if not path.is_file():
        raise UserError(f"training script '{script}' does not exist; pass --script PATH to an existing file")
    sys.path.insert(0, str(path.resolve().parent))
    try:
        return runpy.run_path(str(path), run_name="__tunebench_inspect__")
    except SystemExit as e:
        raise UserError(f"reading {script} exited ({e}); guard the training code with "
                        "`if __name__ == \"__main__\":` so tunebench can read CONFIG_SPACE") from e
    except Exception as e:
        raise UserError(f"reading {script} to find its CONFIG_SPACE failed: {type(e).__name__}: {e}; "
                        "fix the script or pass --config-space FILE") from e
    finally:
        sys.path.pop(0)


#: the optional constants of a training script that tunebench reads (each a string when set)
SCRIPT_CONSTANTS = {"METRIC": "--metric", "MODE": "--mode", "RESOURCE_ATTR": "--resource-attr",
                    "MAX_RESOURCE_ATTR": "--max-resource-attr"}


def _check_script_constants(namespace: dict[str, Any], script: str | Path) -> None:
    """Refuse a constant of :data:`SCRIPT_CONSTANTS` that is set but is no non-empty string (``METRIC = 5``).

    Raises:
        UserError: naming the constant, its value and the option that can replace it.
    """
    for name, option in SCRIPT_CONSTANTS.items():
        value = namespace.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise UserError(f"{name} of {script} must be a non-empty string, got {value!r}; fix it or "
                            f"pass {option}")


def spec_from_script(script: str | Path, *, config_space_file: str | Path | None = None,
                     metric: str | list[str] | None = None, mode: str | list[str] | None = None,
                     resource_attr: str | None = None,
                     max_resource_attr: str | None = None) -> RunSpec:
    """A spec for ``script``: its space from ``config_space_file`` or the script's ``CONFIG_SPACE``;
    metric, mode and resource attributes from the arguments, else from the script's constants."""
    path = Path(script)
    if not path.is_file():
        raise UserError(f"training script '{script}' does not exist; pass --script PATH to an existing file")
    namespace: dict[str, Any] = {}
    if config_space_file is not None:
        space = load_space_file(config_space_file)
        if metric is None or mode is None:
            namespace = script_namespace(path)
    else:
        namespace = script_namespace(path)
        if "CONFIG_SPACE" not in namespace:
            raise UserError(f"{script} defines no CONFIG_SPACE; define one in the script or pass "
                            "--config-space FILE (YAML or JSON)")
        try:
            space = dict(validate_space(namespace["CONFIG_SPACE"]))
        except SpaceError as e:
            raise SpaceError(f"CONFIG_SPACE of {script}: {e}") from e
    _check_script_constants(namespace, script)
    metric = metric or namespace.get("METRIC")
    if not metric:
        raise UserError("no metric given: pass --metric NAME (the name the script reports with report(NAME=...))")
    mode = mode or namespace.get("MODE") or "min"
    if isinstance(mode, str) and mode not in ("min", "max"):
        raise UserError(f"--mode must be 'min' or 'max', got '{mode}'")
    Objectives.from_args(metric, mode)  # several metrics: as many modes, distinct names
    return RunSpec(
        trial_cwd=str(Path.cwd()),
        script=str(path.resolve()),
        config_space=space_to_json(space),
        metric=metric,
        mode=mode,
        resource_attr=resource_attr or namespace.get("RESOURCE_ATTR"),
        max_resource_attr=max_resource_attr or namespace.get("MAX_RESOURCE_ATTR"),
    )


def spec_from_benchmark(name: str, data_dir: str | Path | None = None, *,
                        benchmark_args: dict[str, Any] | None = None,
                        benchmark_modules: list[str] | tuple[str, ...] = ()) -> RunSpec:
    """A spec for the registered benchmark ``name`` with its defaults (a simulated benchmark
    loads its blackbox from ``data_dir`` to read its config space).

    ``benchmark_modules`` are user modules defining benchmarks (loaded first; stored in the spec
    as absolute paths), ``benchmark_args`` overrides of the definition's fields (stored too).
    The definition's metric(s), mode(s) and constraints become the spec's (several metrics as
    lists, constraints as their texts).
    """
    modules = [canonical_module_ref(ref) for ref in benchmark_modules]
    args = dict(benchmark_args or {})
    bench = resolve_benchmark(name, args, modules)
    metric, mode = _benchmark_objectives(bench)
    if isinstance(bench, SimulatedBenchmark):
        blackbox = bench.load_blackbox(data_dir)
        # the maximum fidelity travels in the config, as --epochs does for a script: schedulers then
        # let trials end by themselves there, and --max-resource caps the simulated curves
        max_attr = bench.max_resource_attr or (
            "epochs" if "epochs" not in blackbox.config_space else f"max_{bench.resource_attr}")
        top = blackbox.fidelity_values[-1]
        spec = RunSpec(
            script="", config_space=space_to_json(blackbox.config_space), metric=metric, mode=mode,
            resource_attr=bench.resource_attr, max_resource_attr=max_attr,
            max_resource=int(top) if float(top).is_integer() else top, method=bench.method,
            method_kwargs=dict(bench.method_kwargs), n_workers=bench.n_workers,
            max_wallclock_time=float(bench.max_wallclock_time), benchmark=name, backend=SIMULATOR,
            data_dir=str(data_dir) if data_dir is not None else None,
        )
    else:
        if bench.config_space is not None:
            spec = RunSpec(script=str(bench.script), config_space=space_to_json(bench.config_space),
                           metric=metric, mode=mode)
        else:
            spec = spec_from_script(bench.script, metric=metric, mode=mode)
        spec.resource_attr = bench.resource_attr
        spec.max_resource_attr = bench.max_resource_attr
        spec.max_resource = bench.max_resource
        spec.method = bench.method
        spec.method_kwargs = dict(bench.method_kwargs)
        spec.n_workers = bench.n_workers
        spec.max_wallclock_time = float(bench.max_wallclock_time)
        spec.gpus_per_trial = bench.gpus_per_trial
        spec.cpus_per_trial = bench.cpus_per_trial
        if bench.max_failures is not None:
            spec.max_failures = bench.max_failures
        spec.benchmark = name
    spec.benchmark_args = args
    spec.benchmark_modules = modules
    spec.trial_cwd = str(Path.cwd())
    spec.constraints = list(bench.constraints)
    return spec


def _benchmark_objectives(bench: Benchmark) -> tuple[str | list[str], str | list[str]]:
    """``(metric, mode)`` of a definition as a spec holds them: strings for one metric, lists
    (one mode per metric) for several."""
    if isinstance(bench.metric, str) and isinstance(bench.mode, str):
        return bench.metric, bench.mode
    objectives = bench.objectives
    return list(objectives.metrics), list(objectives.modes)


def build_space(spec: RunSpec) -> dict[str, Any]:
    """The config space of ``spec`` with the maximum resource set as a constant (``--epochs``)."""
    space = space_from_json(spec.config_space)
    if spec.max_resource_attr is not None:
        if spec.max_resource is not None:
            space[spec.max_resource_attr] = int(spec.max_resource)
        elif spec.max_resource_attr not in space:
            raise UserError(f"max resource attribute '{spec.max_resource_attr}' is not in the config space; "
                            "pass --max-resource N")
    return space


def default_experiment_dir(spec: RunSpec) -> Path:
    """``$TUNEBENCH_RESULTS`` (default ``~/tunebench-results``) / ``<name>-<method>-<date-time>``."""
    root = results_root()
    name = spec.benchmark or (spec.function["qualname"] if spec.function else Path(spec.script).stem)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{name}-{spec.method}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{name}-{spec.method}-{stamp}-{n}"
    return path


def use_backend(spec: RunSpec, backend: str) -> None:
    """Run ``spec`` on ``backend``: for a real benchmark, that backend's defaults of the benchmark
    definition (workers, budget, CPUs and GPUs per trial: e.g. more workers on a Ray cluster)
    replace the ones in ``spec``. Called before command-line limits are applied, so they win."""
    spec.backend = backend
    if spec.benchmark and spec.script and get_backend(backend).runs_scripts:
        bench = resolve_benchmark(spec.benchmark, spec.benchmark_args, spec.benchmark_modules)
        if isinstance(bench, RealBenchmark):
            for key, value in bench.backend_defaults(backend).items():
                setattr(spec, key, value)

#: environment variables that bound the threads of a trial's numerical libraries
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS")


def check_backend(name: str) -> str:
    """``name`` if this installation can run it (see :meth:`BackendEntry.check
    <tunebench.backends.registry.BackendEntry.check>`).

    Raises:
        UserError: ``ray`` without Ray installed, or an unknown backend (listing the known ones).
    """
    return get_backend(name).check().name


def thread_env(n_threads: int) -> dict[str, str]:
    """Environment that limits numerical libraries (OpenMP, BLAS) to ``n_threads`` threads."""
    return dict.fromkeys(THREAD_ENV_VARS, str(int(n_threads)))


def _blackbox_key(spec: RunSpec) -> str:
    return json.dumps([spec.benchmark, spec.benchmark_args, spec.benchmark_modules, spec.data_dir],
                      sort_keys=True, default=str)


def build_backend(spec: RunSpec, *, blackbox_cache: dict[str, Any] | None = None) -> Backend:
    """The backend ``spec`` asks for, built by the factory registered under ``spec.backend``
    (:mod:`tunebench.backends.registry`) from the options it takes: fields of ``spec``, ``env``
    (thread limits, ``TUNEBENCH_DATA``) and, for a backend that does not run scripts, the
    ``blackbox`` of the (simulated) benchmark and its ``elapsed_time_attr``.

    ``blackbox_cache``: a dict in which loaded blackboxes are kept and reused by later calls (a
    process running many simulations of one benchmark loads its blackbox once).
    """
    entry = get_backend(spec.backend).check()
    options: dict[str, Any] = spec.to_dict()
    if entry.runs_scripts:
        if not spec.script and not spec.function:
            hint = (" (`tunebench experiment --launch-on-cluster` runs simulations on a Ray cluster)"
                    if entry.cluster else "")
            raise UserError(f"benchmark '{spec.benchmark}' is simulated: run it with --backend {SIMULATOR}{hint}")
        env = thread_env(spec.cpus_per_trial) if spec.cpus_per_trial else None
        if spec.data_dir:  # --data-dir reaches real training scripts as the variable they read
            env = {**(env or {}), "TUNEBENCH_DATA": str(Path(spec.data_dir).resolve())}
        options["env"] = env
    else:
        bench = spec.resolve_benchmark()
        if not isinstance(bench, SimulatedBenchmark):
            raise UserError(f"'{spec.benchmark or spec.script}' runs real training scripts; the simulator needs a "
                            "simulated benchmark (see `tunebench list --benchmarks`), or use --backend local")
        options["blackbox"] = _simulated_blackbox(spec, bench, blackbox_cache)
        options["elapsed_time_attr"] = bench.elapsed_time_attr
    return entry.factory(**{name: options[name] for name in entry.options})


def _simulated_blackbox(spec: RunSpec, bench: SimulatedBenchmark, blackbox_cache: dict[str, Any] | None) -> Any:
    """The blackbox of ``bench`` (from ``blackbox_cache`` when it holds it), checked against ``spec``."""
    key = _blackbox_key(spec)
    blackbox = blackbox_cache.get(key) if blackbox_cache is not None else None
    if blackbox is None:
        blackbox = bench.load_blackbox(spec.data_dir)
        if blackbox_cache is not None:
            blackbox_cache[key] = blackbox
    low, top = blackbox.fidelity_values[0], blackbox.fidelity_values[-1]
    if spec.max_resource is not None and not low <= spec.max_resource <= top:
        raise UserError(f"{spec.benchmark} has {spec.resource_attr} {low:g}..{top:g}; "
                        f"pass --max-resource within that range (got {spec.max_resource})")
    for metric in [spec.metric] if isinstance(spec.metric, str) else spec.metric:
        if metric not in blackbox.objectives:
            raise UserError(f"{spec.benchmark} has no objective '{metric}'; pass --metric with one of "
                            f"{', '.join(blackbox.objectives)}")
    return blackbox


def build_prior(spec: RunSpec, space: dict[str, Any]) -> Any:
    """The :class:`~tunebench.space.Prior` of ``spec.prior`` over ``space``, or ``None``.

    Raises:
        UserError: a bad prior (the message starts with ``--prior``).
    """
    if spec.prior is None:
        return None
    from tunebench.space import Prior  # deferred: numpy and scipy (only runs with a prior)

    try:
        return Prior(space, spec.prior)
    except UserError as e:
        raise UserError(f"--prior: {e}") from None


def build_tuner(spec: RunSpec, experiment_dir: str | Path, *, resume: bool = False,
                callbacks: list[Callback] | None = None, command_line: list[str] | None = None,
                blackbox_cache: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> Tuner:
    """A tuner for ``spec`` on its backend, writing to ``experiment_dir`` (``resume``: continue
    the experiment there). ``metadata``: extra facts stored in ``metadata.json`` (an experiment
    grid adds its tag); ``blackbox_cache``: see :func:`build_backend`."""
    spec.load_modules()  # user methods and benchmarks
    space = build_space(spec)
    transfer = load_transfer_tasks(spec.transfer_from, space, spec.objectives.metrics[0], spec.objectives.modes[0],
                                   target=spec.benchmark) if spec.transfer_from else ()
    scheduler = make_scheduler(
        spec.method, space, metric=spec.metric, mode=spec.mode, resource_attr=spec.resource_attr,
        max_resource_attr=spec.max_resource_attr, max_t=spec.max_resource, seed=spec.seed,
        constraints=spec.constraints, cost_attr=spec.cost_attr, prior=build_prior(spec, space),
        transfer=transfer, **spec.method_kwargs,
    )
    backend = build_backend(spec, blackbox_cache=blackbox_cache)
    metadata = {
        **(metadata or {}),
        "method": spec.method,
        "seed": spec.seed,
        "benchmark": spec.benchmark,
        "command_line": command_line if command_line is not None else sys.argv,
        "backend": {"type": spec.backend, "script": spec.trial_program} if get_backend(spec.backend).runs_scripts else {
            "type": spec.backend, "blackbox": repr(getattr(backend, "blackbox", None))},
        "run_spec": spec.to_dict(),
    }
    return Tuner(backend, scheduler, n_workers=spec.n_workers, stop=spec.stop_criteria(),
                 experiment_dir=experiment_dir, resume=resume, max_failures=spec.max_failures,
                 callbacks=callbacks or [], metadata=metadata, constraints=spec.constraints)
