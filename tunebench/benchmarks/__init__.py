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
with :func:`~tunebench.blackboxes.registry.register_blackbox`.

A real benchmark has defaults for the local backend and, in its ``ray_*`` fields, for a Ray
cluster (see :meth:`RealBenchmark.backend_defaults`). ``tunebench tabulate --benchmark NAME``
(:mod:`tunebench.tabulate`) turns a real benchmark into the simulated benchmark ``NAME-tab``
(blackbox family ``tabulated``); such tables are found by name along
:func:`~tunebench.blackboxes.tabulated.tabulated_search_path` (``$TUNEBENCH_DATA/tabulated``, the
blackbox cache, the tables shipped in ``tunebench/blackboxes/data`` such as ``mlp_tabular-tab``)
and registered when first listed or asked for (:func:`discover_tabulated_benchmarks`).

The package re-exports its modules: :mod:`~tunebench.benchmarks.definitions` (the dataclasses),
:mod:`~tunebench.benchmarks.registry` (register, get, override), :mod:`~tunebench.benchmarks.loader`
(user modules, :func:`resolve_benchmark`) and :mod:`~tunebench.benchmarks.builtin` (the built-in
definitions, registered on import); the blackbox family registry and the tabulated-table reader it
names live in :mod:`tunebench.blackboxes`.
"""

from __future__ import annotations

from tunebench.benchmarks.builtin import (
    DEFAULT_BENCHMARK,
    EXAMPLES_DIR,
    FCNET_DATASETS,
    HPOBENCH_DATASETS,
    NB201_DATASETS,
    builtin_benchmark_definitions,
    real_benchmark_definitions,
    simulated_benchmark_definitions,
    tabulated_benchmark_definitions,
)
from tunebench.benchmarks.definitions import (
    SURROGATES,
    Benchmark,
    RealBenchmark,
    SimulatedBenchmark,
    tabulated_benchmark,
)
from tunebench.benchmarks.loader import (
    _LOADED_MODULES,
    DEFINITIONS_FUNCTION,
    canonical_module_ref,
    load_benchmark_module,
    resolve_benchmark,
    watch_registry,
)
from tunebench.benchmarks.registry import (
    _REGISTRY,
    benchmark_names,
    discover_tabulated_benchmarks,
    get_benchmark,
    override_benchmark,
    register_benchmark,
    register_definitions,
)
from tunebench.blackboxes.registry import BLACKBOX_FAMILIES, blackbox_families, load_blackbox, register_blackbox
from tunebench.blackboxes.subset import FidelitySubset
from tunebench.blackboxes.tabulated import (
    PACKAGE_TABLES_DIR,
    TABULATED_SUFFIX,
    find_tabulated,
    tabulated_search_path,
)

__all__ = [
    "RealBenchmark",
    "SimulatedBenchmark",
    "Benchmark",
    "SURROGATES",
    "register_benchmark",
    "register_definitions",
    "register_blackbox",
    "benchmark_names",
    "get_benchmark",
    "override_benchmark",
    "resolve_benchmark",
    "load_benchmark_module",
    "canonical_module_ref",
    "watch_registry",
    "load_blackbox",
    "blackbox_families",
    "FidelitySubset",
    "builtin_benchmark_definitions",
    "real_benchmark_definitions",
    "simulated_benchmark_definitions",
    "tabulated_benchmark_definitions",
    "tabulated_benchmark",
    "tabulated_search_path",
    "find_tabulated",
    "discover_tabulated_benchmarks",
    "BLACKBOX_FAMILIES",
    "DEFAULT_BENCHMARK",
    "DEFINITIONS_FUNCTION",
    "EXAMPLES_DIR",
    "FCNET_DATASETS",
    "NB201_DATASETS",
    "HPOBENCH_DATASETS",
    "PACKAGE_TABLES_DIR",
    "TABULATED_SUFFIX",
    "_REGISTRY",
    "_LOADED_MODULES",
]
