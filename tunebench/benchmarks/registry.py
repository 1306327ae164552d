"""The benchmark registry (L4): name -> definition (or a function returning one).

``--benchmark NAME`` looks names up here (:func:`get_benchmark`); the built-in definitions
(:mod:`tunebench.benchmarks.builtin`), the user modules (:mod:`tunebench.benchmarks.loader`) and
the tables ``tunebench tabulate`` wrote (found along
:func:`~tunebench.blackboxes.tabulated.tabulated_search_path` and registered when first listed
or asked for, :func:`discover_tabulated_benchmarks`) all register here.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tunebench.benchmarks.definitions import Benchmark, RealBenchmark, SimulatedBenchmark, tabulated_benchmark
from tunebench.benchmarks.yahpo import YAHPO_PREFIX, yahpo_benchmark_definitions
from tunebench.blackboxes.tabular import META_FILE
from tunebench.blackboxes.tabulated import TABULATED_SUFFIX, find_tabulated, tabulated_search_path
from tunebench.errors import UserError

__all__ = [
    "register_benchmark",
    "register_definitions",
    "benchmark_names",
    "get_benchmark",
    "override_benchmark",
    "tabulated_factory",
    "discover_tabulated_benchmarks",
    "discover_yahpo_benchmarks",
]

_REGISTRY: dict[str, Callable[[], Benchmark]] = {}
#: ``<name>-tab`` entries registered by :func:`discover_tabulated_benchmarks` (not by a definition):
#: dropped again when their folder is gone, so the name reads as "not tabulated yet"
_DISCOVERED: set[str] = set()


def register_benchmark(name: str, factory: Callable[[], Benchmark] | Benchmark) -> None:
    """Make ``factory()`` (or the definition itself) available as ``--benchmark name``
    (overrides an existing name)."""
    _DISCOVERED.discard(name)
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
    discover_yahpo_benchmarks()
    return sorted(_REGISTRY)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; a :class:`UserError` listing the known names otherwise."""
    factory = _REGISTRY.get(name)
    if factory is None and name.startswith(YAHPO_PREFIX):
        discover_yahpo_benchmarks()
        factory = _REGISTRY.get(name)
    if name.endswith(TABULATED_SUFFIX) and (factory is None or name in _DISCOVERED):
        discover_tabulated_benchmarks()
        factory = _REGISTRY.get(name)
        base = name[: -len(TABULATED_SUFFIX)]
        if factory is None and isinstance(_REGISTRY.get(base, lambda: None)(), RealBenchmark):
            raise UserError(f"benchmark '{name}' is not tabulated yet: run `tunebench tabulate --benchmark {base} "
                            f"--num-configs N --seeds S` first (tables are searched in "
                            f"{', '.join(map(str, tabulated_search_path()))})")
    if factory is None:
        family = name.split("-", 1)[0] + "-"
        members = [n for n in benchmark_names() if n.startswith(family)] if "-" in name else []
        if members:
            raise UserError(f"unknown benchmark '{name}'; {family}<...> takes one of: "
                            f"{_family_members([n[len(family):] for n in members])}")
        close = difflib.get_close_matches(name, benchmark_names(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown benchmark '{name}'{hint}; known benchmarks: {_summary()} "
                        "(see `tunebench list --benchmarks`)")
    return factory()


def _family_members(suffixes: list[str]) -> str:
    """The members of a family, its variants written once: ``["1", "1-mo", "2", "2-mo"]`` reads
    ``1, 2 (each also as <...>-mo)``."""
    bases = [s for s in suffixes if "-" not in s] or suffixes
    known = set(bases)
    variants = sorted({s.split("-", 1)[1] for s in suffixes if "-" in s and s.split("-", 1)[0] in known})
    covered = {f"{b}-{v}" for b in bases for v in variants}
    rest = [s for s in suffixes if s not in known and s not in covered]
    text = ", ".join([*bases, *rest])
    if variants:
        text += f" (each also as {', '.join(f'<...>-{v}' for v in variants)})"
    return text


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


def tabulated_factory(base: str, fallback: SimulatedBenchmark | None = None) -> Callable[[], Benchmark]:
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
    for name in [n for n in _DISCOVERED if find_tabulated(n[: -len(TABULATED_SUFFIX)]) is None]:
        _DISCOVERED.discard(name)  # its folder is gone (deleted, or the search path changed)
        _REGISTRY.pop(name, None)
    added = []
    for root in tabulated_search_path():
        try:
            entries = sorted(p for p in root.iterdir() if p.name.endswith(TABULATED_SUFFIX))
        except OSError:
            continue
        for folder in entries:
            if folder.name not in _REGISTRY and (folder / META_FILE).is_file():
                register_benchmark(folder.name, tabulated_factory(folder.name[: -len(TABULATED_SUFFIX)]))
                _DISCOVERED.add(folder.name)
                added.append(folder.name)
    return added



def discover_yahpo_benchmarks() -> list[str]:
    """Register the ``yahpo-<scenario>-<instance>`` benchmarks of the YAHPO data in
    ``$TUNEBENCH_DATA`` not registered yet (see :mod:`tunebench.benchmarks.yahpo`). Returns the
    names registered now."""
    added = []
    for name, definition in yahpo_benchmark_definitions().items():
        if name not in _REGISTRY:
            register_benchmark(name, definition)
            added.append(name)
    return added
