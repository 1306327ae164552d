"""Named experiment grids: ``tunebench experiment --preset NAME`` (L4).

A preset gives defaults for a grid (benchmarks, methods, seeds, workers, budget); every option
given on the command line wins over it. :func:`register_preset` adds one (from a user module
loaded with ``--benchmark-module``, for example).

The built-in presets reproduce, in simulation, the comparisons of the classic Syne Tune
tutorials (single-fidelity BO against asynchronous and synchronous multi-fidelity methods, with
and without a model, 4 workers, 10 seeds), compare multi-objective and constrained methods on
lcbench (``mo-lcbench``, ``constrained-lcbench``) and give quick checks on synthetic benchmarks
that need no data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunebench.benchmarks import watch_registry
from tunebench.errors import UserError
from tunebench.schedulers import methods_of_group

__all__ = ["Preset", "PRESETS", "register_preset", "get_preset", "preset_names", "MO_LCBENCH_TASKS",
           "TRANSFER_TARGETS", "TRANSFER_SOURCES_ONLY"]


@dataclass(frozen=True)
class Preset:
    """Defaults of an experiment grid.

    Attributes:
        name: ``--preset NAME``; also the default ``--experiment-tag``.
        description: one line for ``tunebench list --presets``.
        benchmarks: the benchmarks.
        methods: the methods; None: those of ``method_group``.
        method_group: a group of :func:`tunebench.schedulers.method_groups` (when ``methods`` is None).
        num_seeds: seeds 0..num_seeds-1.
        n_workers: workers per experiment (None: each benchmark's default).
        max_wallclock_time: budget per experiment in (simulated) seconds (None: the benchmark's).
        benchmark_args: overrides of the benchmark definitions (``--benchmark-arg``).
        method_args: options per method (``"*"``: every method that takes the option).
        expected_wall_time: rough wall time of the whole grid on 2 cores, for the listing.
        transfer_from: earlier experiments (``--transfer-from``: folders, grid tags) for the transfer methods.
    """

    name: str
    description: str
    benchmarks: tuple[str, ...]
    methods: tuple[str, ...] | None = None
    method_group: str | None = "baselines"
    num_seeds: int = 1
    n_workers: int | None = None
    max_wallclock_time: float | None = None
    benchmark_args: dict[str, Any] = field(default_factory=dict)
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    expected_wall_time: str = ""
    #: earlier experiments for the transfer methods (``--transfer-from``): folders or grid tags
    transfer_from: tuple[str, ...] = ()

    def resolved_methods(self) -> list[str]:
        """The preset's methods (those of its group when it names none)."""
        if self.methods is not None:
            return list(self.methods)
        return methods_of_group(self.method_group or "baselines")


#: name -> preset, in registration order
PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset, *, replace: bool = False) -> Preset:
    """Make ``preset`` available as ``--preset preset.name``.

    Raises:
        ValueError: the name is taken and ``replace`` is false.
    """
    if preset.name in PRESETS and not replace:
        raise ValueError(f"preset {preset.name!r} is already registered")
    PRESETS[preset.name] = preset
    return preset


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """The preset ``name``; a UserError listing the presets otherwise."""
    preset = PRESETS.get(name)
    if preset is None:
        raise UserError(f"unknown preset '{name}'; known presets: {', '.join(PRESETS)} "
                        "(see `tunebench list --presets`)")
    return preset


BASELINES = ("BO", "ASHA", "MOBSTER", "DyHPO", "SyncHB", "SyncMOBSTER")

register_preset(Preset(
    name="lcbench-baselines",
    description="the classic Syne Tune comparison in simulation: BO, ASHA, MOBSTER, DyHPO, SyncHB, SyncMOBSTER "
                "on lcbench tasks 7593 and 168330, 4 workers, 10 seeds, 3600 simulated seconds each (half the "
                "benchmarks' default: the GP methods' time grows faster than the number of trials, and the "
                "default budget takes about 10 minutes on 2 cores); needs TUNEBENCH_DATA",
    benchmarks=("lcbench-7593", "lcbench-168330"),
    methods=BASELINES,
    num_seeds=10,
    n_workers=4,
    max_wallclock_time=3600.0,
    expected_wall_time="about 5.5 minutes on 2 cores",
))
register_preset(Preset(
    name="synthetic-quick",
    description="smoke test without data: RS and ASHA on Branin, 2 seeds, 4 workers, 300 simulated seconds",
    benchmarks=("branin",),
    methods=("RS", "ASHA"),
    num_seeds=2,
    n_workers=4,
    max_wallclock_time=300.0,
    expected_wall_time="a few seconds",
))
register_preset(Preset(
    name="synthetic-baselines",
    description="the six baselines (BO, ASHA, MOBSTER, DyHPO, SyncHB, SyncMOBSTER) on Branin and Hartmann6, "
                "3 seeds, 4 workers, the benchmarks' 600 simulated seconds; no data needed",
    benchmarks=("branin", "hartmann6"),
    methods=BASELINES,
    num_seeds=3,
    n_workers=4,
    expected_wall_time="about a minute on 2 cores",
))

#: lcbench tasks of the multi-objective and constrained presets: none of the development tasks
#: (3945, 7593, 34539, 126025, 126026, 126029, 146212, 167104), of short (167149: about 60 s per
#: full training), middle (189906: 100 s) and longer (168330: 180 s) training times
MO_LCBENCH_TASKS = ("167149", "168330", "189906")

register_preset(Preset(
    name="mo-lcbench",
    description="two objectives (val_accuracy max, training time min) on lcbench tasks "
                f"{', '.join(MO_LCBENCH_TASKS)}: RS, MOASHA, NSGA2, MOREA, MOBO, MOASHA-BO, "
                "4 workers, 10 seeds, 7200 simulated seconds each; compared by hypervolume; needs TUNEBENCH_DATA",
    benchmarks=tuple(f"lcbench-{task}-mo" for task in MO_LCBENCH_TASKS),
    methods=("RS", "MOASHA", "NSGA2", "MOREA", "MOBO", "MOASHA-BO"),
    num_seeds=10,
    n_workers=4,
    max_wallclock_time=7200.0,
))
register_preset(Preset(
    name="constrained-lcbench",
    description="val_accuracy (max) subject to training time <= the task's median (about half the configurations "
                f"exceed it) on lcbench tasks {', '.join(MO_LCBENCH_TASKS)}: RS, BO, BO-penalty, CBO, 4 workers, "
                "10 seeds, 7200 simulated seconds each; needs TUNEBENCH_DATA",
    benchmarks=tuple(f"lcbench-{task}-constrained" for task in MO_LCBENCH_TASKS),
    methods=("RS", "BO", "BO-penalty", "CBO"),
    num_seeds=10,
    n_workers=4,
    max_wallclock_time=7200.0,
))

#: lcbench tasks of the transfer presets: the held-out targets (none a development task) and the
#: tasks that are only sources (the development tasks and three more); the sources' grid holds them all,
#: and each target learns from the 15 others (leave-one-task-out: a tag leaves out the target's benchmark)
TRANSFER_TARGETS = ("167149", "168330", "189906", "167181", "189873")
TRANSFER_SOURCES_ONLY = ("3945", "7593", "34539", "126025", "126026", "126029", "146212", "167104", "167152",
                         "167161", "167168")

register_preset(Preset(
    name="transfer-lcbench-sources",
    description="the earlier experiments of transfer-lcbench: RS on 16 lcbench tasks (its 5 targets and 11 others), "
                "1 seed, 4 workers, 7200 simulated seconds each; needs TUNEBENCH_DATA",
    benchmarks=tuple(f"lcbench-{t}" for t in TRANSFER_SOURCES_ONLY + TRANSFER_TARGETS),
    methods=("RS",),
    num_seeds=1,
    n_workers=4,
    max_wallclock_time=7200.0,
))
register_preset(Preset(
    name="transfer-lcbench",
    description="transfer from earlier experiments, leave-one-task-out: ZeroShot, BoundingBox, CTS, ASHA-CTS "
                "(sources: the grid transfer-lcbench-sources, run it first, less the target) vs RS, BO, ASHA on "
                f"lcbench tasks {', '.join(TRANSFER_TARGETS)}, 4 workers, 10 seeds, 7200 simulated seconds; needs "
                "TUNEBENCH_DATA",
    benchmarks=tuple(f"lcbench-{t}" for t in TRANSFER_TARGETS),
    methods=("ZeroShot", "BoundingBox", "CTS", "ASHA-CTS", "RS", "BO", "ASHA"),
    num_seeds=10,
    n_workers=4,
    max_wallclock_time=7200.0,
    transfer_from=("transfer-lcbench-sources",),
))

# a user module that only registers presets is not an empty one (see tunebench.benchmarks.loader)
watch_registry("preset", preset_names)
