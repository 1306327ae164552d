"""Benchmark definitions (L4): the dataclasses a benchmark is written with.

A *real* benchmark (:class:`RealBenchmark`) is a training script with its metric, mode, resource
attributes, config space and defaults for a run; a *simulated* benchmark
(:class:`SimulatedBenchmark`) names a blackbox family replayed by the simulator backend. Both check
their fields when built (a :class:`~tunebench.errors.UserError` naming the benchmark and field).
:func:`tabulated_benchmark` reads the definition of a table written by ``tunebench tabulate``.

Both may optimize several metrics (``metric=("val_accuracy", "time")``, ``mode=("max", "min")``:
a multi-objective problem, validated as :class:`~tunebench.types.Objectives`) and bound reported
metrics (``constraints=("time<=120",)``: texts ``NAME<=BOUND`` / ``NAME>=BOUND``, read by
:func:`~tunebench.types.parse_constraints`); :attr:`objectives`, :attr:`constraint_bounds` and
:attr:`objective_summary` read them back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebench.backends.registry import backend_names, get_backend
from tunebench.blackboxes.base import Blackbox
from tunebench.blackboxes.registry import blackbox_families, load_blackbox
from tunebench.blackboxes.subset import FidelitySubset
from tunebench.blackboxes.surrogate import SURROGATE_MODELS, SurrogateBlackbox
from tunebench.blackboxes.tabular import META_FILE, TabularBlackbox
from tunebench.blackboxes.tabulated import TABULATED_SUFFIX
from tunebench.errors import UserError
from tunebench.types import Constraint, Objectives, parse_constraints

__all__ = ["RealBenchmark", "SimulatedBenchmark", "Benchmark", "SURROGATES", "tabulated_benchmark"]

#: surrogate models a simulated benchmark may ask for
SURROGATES = SURROGATE_MODELS


def _check_common(kind: str, b: Any) -> None:
    """Checks shared by both kinds of definitions (a UserError naming the benchmark and field)."""
    where = f"benchmark {b.name!r}"
    if not isinstance(b.name, str) or not b.name or "/" in b.name or b.name.startswith("."):
        raise UserError(f"{kind} name {b.name!r} must be a non-empty folder name (no '/')")
    _check_objectives(b, where)
    if isinstance(b.n_workers, bool) or not isinstance(b.n_workers, int) or b.n_workers < 1:
        raise UserError(f"{where}: n_workers must be an integer >= 1, got {b.n_workers!r}")
    if isinstance(b.max_wallclock_time, bool) or not isinstance(b.max_wallclock_time, (int, float)) \
            or not b.max_wallclock_time > 0 or math.isinf(b.max_wallclock_time):
        raise UserError(f"{where}: max_wallclock_time must be a positive number of seconds, got "
                        f"{b.max_wallclock_time!r}")
    if not isinstance(b.method, str) or not b.method:
        raise UserError(f"{where}: method must be a method name (see `tunebench list --methods`)")
    if not isinstance(b.method_kwargs, Mapping):
        raise UserError(f"{where}: method_kwargs must be a dict of method options")


def _names(value: Any, what: str, where: str) -> str | tuple[str, ...]:
    """``value`` (a name, or a list of names) as a string, or a tuple of several strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = tuple(value)
        if len(items) == 1 and isinstance(items[0], str):
            return items[0]
        if items and all(isinstance(v, str) for v in items):
            return items
    raise UserError(f"{where}: {what} must be a non-empty string or a list of them, got {value!r}")


def _check_objectives(b: Any, where: str) -> None:
    """Check and normalize ``metric``, ``mode`` and ``constraints`` of a definition: one metric
    stays a string (its mode too), several become tuples with one mode each; constraints become
    a tuple of :meth:`Constraint.to_json` texts."""
    metric = _names(b.metric, "metric", where)
    mode = _names(b.mode, "mode", where)
    for m in (mode,) if isinstance(mode, str) else mode:
        if m not in ("min", "max"):
            raise UserError(f"{where}: mode must be 'min' or 'max', got {m!r}")
    if isinstance(metric, str) and not metric:
        raise UserError(f"{where}: metric must be a non-empty string, got {metric!r}")
    try:
        objectives = Objectives.from_args(metric, mode)
        constraints = parse_constraints(b.constraints)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    if objectives.is_multi:
        object.__setattr__(b, "metric", objectives.metrics)
        object.__setattr__(b, "mode", objectives.modes)
    else:
        object.__setattr__(b, "metric", objectives.metrics[0])
        object.__setattr__(b, "mode", objectives.modes[0])
    object.__setattr__(b, "constraints", tuple(c.to_json() for c in constraints))


class _Problem:
    """What both kinds of definitions say about the problem they pose (their metric(s), mode(s)
    and constraints, normalized by their checks)."""

    metric: str | tuple[str, ...]
    mode: str | tuple[str, ...]
    constraints: tuple[str, ...]

    @property
    def objectives(self) -> Objectives:
        """The metric(s) to optimize and the direction of each."""
        return Objectives.from_args(self.metric, self.mode)

    @property
    def constraint_bounds(self) -> tuple[Constraint, ...]:
        """The constraints, parsed (a result is feasible when it meets each of them)."""
        return parse_constraints(self.constraints)

    @property
    def objective_summary(self) -> str:
        """One phrase for listings: ``metric val_error (min)``, or ``metrics val_accuracy (max),
        time (min)``, followed by `` subject to time <= 61.57`` when there are constraints."""
        objectives = self.objectives
        pairs = ", ".join(f"{m} ({d})" for m, d in zip(objectives.metrics, objectives.modes, strict=True))
        text = f"{'metrics' if objectives.is_multi else 'metric'} {pairs}"
        if self.constraints:
            text += f" subject to {', '.join(map(str, self.constraint_bounds))}"
        return text


@dataclass(frozen=True)
class RealBenchmark(_Problem):
    """A training script run as real processes.

    Attributes:
        name: the benchmark's name (``--benchmark NAME``; a folder name in experiment grids).
        script: the training script (it calls ``tunebench.report(...)``).
        metric: the reported metric to optimize, or several (a tuple: a multi-objective problem);
            ``mode``: "min" or "max", one for all metrics or one per metric.
        resource_attr: the reported resource (e.g. ``"epoch"``), for multi-fidelity methods.
        max_resource_attr: the script argument carrying the maximum resource (e.g. ``"epochs"``).
        max_resource: the maximum resource (e.g. 27 epochs).
        config_space: the space to tune; None means: read ``CONFIG_SPACE`` from the script.
        n_workers: default number of trials running at once.
        max_wallclock_time: default budget in seconds.
        method: default method of ``tunebench run``; ``method_kwargs`` its options.
        cpus_per_trial: CPU threads per trial (sets ``OMP_NUM_THREADS`` and friends on the local
            backend; CPUs requested per trial on a cluster); None: not limited.
        gpus_per_trial: GPUs per trial where there are GPUs (0: none).
        description: one line for ``tunebench list``.
        ray_n_workers, ray_max_wallclock_time, ray_cpus_per_trial, ray_gpus_per_trial: the same
            defaults for the Ray backend (a cluster usually runs more trials at once); None: the
            local value. :meth:`backend_defaults` gives the four values of a backend.
        max_failures: failed trials a run tolerates before it ends with an error; None: the
            run's default (5). Raise it for a space where some configurations diverge.
        constraints: bounds on reported metrics a result must meet to be feasible, as texts
            ``NAME<=BOUND`` / ``NAME>=BOUND`` (``--constraint``); stored normalized.
    """

    name: str
    script: Path
    metric: str | tuple[str, ...]
    mode: str | tuple[str, ...]
    resource_attr: str | None = None
    max_resource_attr: str | None = None
    max_resource: int | None = None
    config_space: dict[str, Any] | None = None
    n_workers: int = 2
    max_wallclock_time: float = 60.0
    method: str = "ASHA"
    gpus_per_trial: int = 1
    description: str = ""
    method_kwargs: dict[str, Any] = field(default_factory=dict)
    cpus_per_trial: int | None = None
    ray_n_workers: int | None = None
    ray_max_wallclock_time: float | None = None
    ray_cpus_per_trial: int | None = None
    ray_gpus_per_trial: int | None = None
    max_failures: int | None = None
    constraints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "script", Path(self.script))
        _check_common("a real benchmark", self)
        for name in ("cpus_per_trial", "gpus_per_trial", "max_resource", "ray_n_workers", "ray_cpus_per_trial",
                     "ray_gpus_per_trial", "max_failures"):
            value = getattr(self, name)
            low = 0 if name.endswith("gpus_per_trial") or name == "max_failures" else 1
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise UserError(f"benchmark {self.name!r}: {name} must be an integer >= {low}, got {value!r}")
        t = self.ray_max_wallclock_time
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0 or math.isinf(t)):
            raise UserError(f"benchmark {self.name!r}: ray_max_wallclock_time must be a positive number of seconds "
                            f"(or None: the local max_wallclock_time), got {t!r}")

    @property
    def kind(self) -> str:
        return "real"

    def backend_defaults(self, backend: str) -> dict[str, Any]:
        """The defaults of a run on ``backend`` (a backend running scripts, such as ``"local"`` or
        ``"ray"``): ``n_workers``, ``max_wallclock_time``, ``cpus_per_trial`` and
        ``gpus_per_trial``; on a cluster backend (``"ray"``) the ``ray_*`` fields where they are
        set, the local ones otherwise.

        Raises:
            UserError: an unknown backend, or one that does not run scripts (the simulator).
        """
        entry = get_backend(backend)
        if not entry.runs_scripts:
            raise UserError(f"benchmark {self.name!r} runs a real training script: use --backend "
                            f"{' or '.join(backend_names(runs_scripts=True))}, not {backend!r}")
        local = {"n_workers": self.n_workers, "max_wallclock_time": float(self.max_wallclock_time),
                 "cpus_per_trial": self.cpus_per_trial, "gpus_per_trial": self.gpus_per_trial}
        if not entry.cluster:
            return local
        ray = {"n_workers": self.ray_n_workers, "max_wallclock_time": self.ray_max_wallclock_time,
               "cpus_per_trial": self.ray_cpus_per_trial, "gpus_per_trial": self.ray_gpus_per_trial}
        return {k: (float(v) if k == "max_wallclock_time" else v) if v is not None else local[k]
                for k, v in ray.items()}


@dataclass(frozen=True)
class SimulatedBenchmark(_Problem):
    """A blackbox replayed on the simulator backend.

    Attributes:
        name: the benchmark's name (``--benchmark NAME``; a folder name in experiment grids).
        blackbox: a blackbox family (see :func:`~tunebench.blackboxes.registry.blackbox_families`,
            or one added with :func:`~tunebench.blackboxes.registry.register_blackbox`); ``task``
            its instance (an OpenML task id for lcbench, a dataset for fcnet/nb201), None for the
            synthetic ones. Or, without any registry, a :class:`~tunebench.blackboxes.base.Blackbox`
            itself or a function of no arguments returning one (called by :meth:`load_blackbox`;
            ``task``, ``data_dir`` and ``blackbox_kwargs`` are then not used).
        metric: the objective to optimize, or several (a tuple of objectives of the blackbox: a
            multi-objective problem); ``mode``: "min" or "max", one for all metrics or one per
            metric.
        resource_attr: the key results report the fidelity under (e.g. ``"epoch"``).
        min_resource, max_resource: the fidelity range (shown by ``tunebench list`` without
            loading any data).
        n_workers: default number of trials running at once; ``max_wallclock_time`` default
            budget in simulated seconds; ``method``/``method_kwargs`` default method of
            ``tunebench run``.
        elapsed_time_attr: the objective holding the cumulative training time that advances the
            simulated clock; None: the blackbox's own.
        fidelities: the fidelities to simulate, a subset of the blackbox's (e.g. ``(1, 3, 9, 27)``);
            None: all of them.
        surrogate: None to replay the blackbox as it is, or a model (``"knn"``,
            ``"random_forest"``) fitted on a tabulated blackbox to evaluate any configuration of
            its space (see :class:`~tunebench.blackboxes.surrogate.SurrogateBlackbox`);
            ``surrogate_kwargs`` its options (``n_neighbors``, ``n_estimators``, ``random_state``).
        blackbox_kwargs: options of the family's loader (e.g. ``max_fidelity``, ``noise`` of the
            synthetic blackboxes).
        max_resource_attr: the config entry that carries a trial's maximum fidelity; None: ``epochs``
            (or ``max_<resource_attr>`` if the space has an ``epochs`` hyperparameter).
        description: one line for ``tunebench list``.
        constraints: bounds on objectives of the blackbox a result must meet to be feasible, as
            texts ``NAME<=BOUND`` / ``NAME>=BOUND`` (``--constraint``); stored normalized.
    """

    name: str
    blackbox: str | Blackbox | Callable[[], Blackbox]
    task: str | None
    metric: str | tuple[str, ...]
    mode: str | tuple[str, ...]
    resource_attr: str = "epoch"
    min_resource: int = 1
    max_resource: int = 1
    n_workers: int = 4
    max_wallclock_time: float = 3600.0
    method: str = "ASHA"
    description: str = ""
    method_kwargs: dict[str, Any] = field(default_factory=dict)
    elapsed_time_attr: str | None = None
    fidelities: tuple[float, ...] | None = None
    surrogate: str | None = None
    surrogate_kwargs: dict[str, Any] = field(default_factory=dict)
    blackbox_kwargs: dict[str, Any] = field(default_factory=dict)
    max_resource_attr: str | None = None
    constraints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_common("a simulated benchmark", self)
        if not (isinstance(self.blackbox, Blackbox) or (isinstance(self.blackbox, str) and self.blackbox)
                or (callable(self.blackbox) and not isinstance(self.blackbox, str))):
            raise UserError(f"benchmark {self.name!r}: blackbox must name a blackbox family ("
                            f"{', '.join(blackbox_families())}), or be a Blackbox or a function returning one")
        if self.task is not None:
            object.__setattr__(self, "task", str(self.task))
        if self.fidelities is not None:
            if isinstance(self.fidelities, (str, bytes)) or not isinstance(self.fidelities, Iterable):
                raise UserError(f"benchmark {self.name!r}: fidelities must be a list of numbers, got "
                                f"{self.fidelities!r}")
            values = tuple(self.fidelities)
            if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
                raise UserError(f"benchmark {self.name!r}: fidelities must be a non-empty list of numbers, got "
                                f"{list(values)!r}")
            object.__setattr__(self, "fidelities", tuple(sorted(set(values))))
        if self.surrogate is not None and self.surrogate not in SURROGATE_MODELS:
            raise UserError(f"benchmark {self.name!r}: unknown surrogate {self.surrogate!r}; use one of "
                            f"{', '.join(SURROGATE_MODELS)} (or none)")
        for name in ("surrogate_kwargs", "blackbox_kwargs"):
            if not isinstance(getattr(self, name), Mapping):
                raise UserError(f"benchmark {self.name!r}: {name} must be a dict")

    @property
    def kind(self) -> str:
        return "simulated"

    @property
    def fidelity_range(self) -> tuple[float, float]:
        """``(lowest, highest)`` fidelity simulated (from :attr:`fidelities` when set)."""
        if self.fidelities:
            return self.fidelities[0], self.fidelities[-1]
        return self.min_resource, self.max_resource

    def load_blackbox(self, data_dir: str | Path | None = None) -> Blackbox:
        """Build the blackbox (may read data files; clear errors when they are missing), with
        the surrogate model and the subset of fidelities of this definition applied."""
        blackbox = self._base_blackbox(data_dir)
        if self.surrogate is not None:
            if not isinstance(blackbox, TabularBlackbox):
                raise UserError(f"benchmark {self.name!r}: surrogate={self.surrogate!r} needs a tabulated blackbox "
                                f"(fcnet, nb201, hpobench, synthetic-tabular); {blackbox.name} is evaluated "
                                "directly: drop the surrogate")
            try:
                blackbox = SurrogateBlackbox(blackbox, model=self.surrogate, **dict(self.surrogate_kwargs))
            except TypeError as e:
                raise UserError(f"benchmark {self.name!r}: bad surrogate_kwargs ({e}); the surrogate takes "
                                "n_neighbors, n_estimators, random_state") from None
        if self.fidelities is not None:
            blackbox = FidelitySubset(blackbox, self.fidelities)
        if self.elapsed_time_attr is not None:
            blackbox.objective_index(self.elapsed_time_attr)  # a UserError listing the objectives
        for constraint in self.constraint_bounds:
            blackbox.objective_index(constraint.metric)
        return blackbox

    def _base_blackbox(self, data_dir: str | Path | None) -> Blackbox:
        """The blackbox as named or given (before surrogate and fidelity subset)."""
        if isinstance(self.blackbox, Blackbox):
            return self.blackbox
        if isinstance(self.blackbox, str):
            return load_blackbox(self.blackbox, self.task, data_dir, **dict(self.blackbox_kwargs))
        made = self.blackbox()
        if not isinstance(made, Blackbox):
            raise UserError(f"benchmark {self.name!r}: its blackbox function returned a {type(made).__name__}, "
                            "not a Blackbox")
        return made



Benchmark = RealBenchmark | SimulatedBenchmark


def tabulated_benchmark(folder: str | Path, *, name: str | None = None, task: str | None = None) -> SimulatedBenchmark:
    """A simulated benchmark replaying the table in ``folder`` (written by ``tunebench tabulate``,
    or any tabular blackbox folder): metric, mode, fidelities and defaults (workers, simulated
    budget, method) are read from its ``meta.json`` (its ``tabulated`` entry, see
    ``docs/blackbox-format.md``). ``name`` defaults to the folder's name, ``task`` (what the
    ``tabulated`` blackbox family loads) to the folder's absolute path.

    Raises:
        UserError: no ``meta.json`` in ``folder``, or one that is not a JSON object.
    """
    folder = Path(folder).expanduser()
    path = folder / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path} cannot be read as a tabular blackbox's meta.json ({e}); pass the folder "
                        "`tunebench tabulate` wrote") from None
    if not isinstance(meta, dict) or not meta.get("objectives") or not meta.get("fidelity_values"):
        raise UserError(f"{path} is not the meta.json of a tabular blackbox (see docs/blackbox-format.md)")
    info = meta.get("tabulated")
    if not isinstance(info, dict):
        info = {}
    fidelities = meta["fidelity_values"]
    n_configs, n_seeds = meta.get("n_configs"), meta.get("n_seeds")
    source = info.get("benchmark") or folder.name.removesuffix(TABULATED_SUFFIX)
    unit = meta.get("fidelity_name") or "fidelities"
    size = f"{n_configs} configurations x {n_seeds} seeds x {len(fidelities)} {unit}s"
    return SimulatedBenchmark(
        name=name or folder.name, blackbox="tabulated", task=task or str(folder.resolve()),
        metric=info.get("metric") or meta["objectives"][0], mode=info.get("mode") or "min",
        resource_attr=meta.get("fidelity_name") or "epoch", min_resource=fidelities[0], max_resource=fidelities[-1],
        n_workers=int(info.get("n_workers") or 4), max_wallclock_time=float(info.get("max_wallclock_time") or 3600.0),
        method=info.get("method") or "ASHA", max_resource_attr=info.get("max_resource_attr") or None,
        description=f"real runs of {source} tabulated ({size}), replayed in simulated time",
    )

