"""Loading user modules of benchmark definitions (L4): ``--benchmark-module REF``.

A user module defines ``benchmark_definitions()`` (or the function ``REF`` names), returning
definitions as :func:`~tunebench.benchmarks.registry.register_definitions` accepts them, and may
register methods, blackbox families, backends or presets when imported. Registries above this
layer (the presets of experiment grids) make themselves known with :func:`watch_registry`, so that
a module registering only into them is not taken for an empty one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunebench.backends.registry import backend_names
from tunebench.benchmarks.definitions import Benchmark
from tunebench.benchmarks.registry import _REGISTRY, get_benchmark, override_benchmark, register_definitions
from tunebench.blackboxes.registry import blackbox_families
from tunebench.errors import UserError
from tunebench.schedulers import METHODS

logger = logging.getLogger(__name__)

__all__ = ["load_benchmark_module", "canonical_module_ref", "resolve_benchmark", "watch_registry",
           "DEFINITIONS_FUNCTION"]

#: name of the function a benchmark module defines (unless ``FILE.py:function`` names another)
DEFINITIONS_FUNCTION = "benchmark_definitions"

#: kind -> function returning the names registered so far (see :func:`watch_registry`)
_WATCHED: dict[str, Callable[[], Iterable[str]]] = {
    "benchmark": lambda: _REGISTRY,
    "method": lambda: METHODS,
    "blackbox family": blackbox_families,
    "backend": backend_names,
}
#: kind -> names registered when it was first watched (its baseline, for a module importing it)
_BASELINES: dict[str, set[str]] = {}


def watch_registry(kind: str, names: Callable[[], Iterable[str]]) -> None:
    """Count registrations into the registry ``kind`` (``names()`` returns its names) as what a
    user module may do instead of defining benchmarks. Called by a registry module above this one
    (``tunebench.experiments.presets``) when it is imported, after its built-in entries."""
    _WATCHED[kind] = names
    _BASELINES.setdefault(kind, set(names()))


def _registered() -> dict[str, set[str]]:
    return {kind: set(names()) for kind, names in _WATCHED.items()}


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
    :func:`tunebench.schedulers.method`), blackbox families
    (:func:`~tunebench.blackboxes.registry.register_blackbox`), backends
    (:func:`~tunebench.backends.registry.register_backend`), presets
    (:func:`tunebench.experiments.presets.register_preset`) or benchmarks when imported; a module
    that does none of this is an error. A module is loaded once per process. Returns the benchmark
    names it registered.
    """
    key = canonical_module_ref(ref)
    if key in _LOADED_MODULES:
        return list(_LOADED_MODULES[key])
    target, func_name = _split_ref(key)
    before = _registered()
    module = _import_ref(target)
    for kind, baseline in _BASELINES.items():  # a registry the module imported for the first time
        before.setdefault(kind, baseline)
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
    registered = (set(_REGISTRY) - before["benchmark"]) | set(names)
    if not registered and _registered() == before:
        raise UserError(f"benchmark module {target} defines no {DEFINITIONS_FUNCTION}() function (returning "
                        "benchmark definitions) and registers nothing (no method, blackbox family or preset)")
    _LOADED_MODULES[key] = sorted(registered)
    logger.info("loaded %s: benchmarks %s", target, ", ".join(sorted(registered)) or "-")
    return sorted(registered)


def resolve_benchmark(name: str, overrides: Mapping[str, Any] | None = None,
                      modules: Sequence[str] = ()) -> Benchmark:
    """The definition ``name`` after loading the user ``modules`` (see
    :func:`load_benchmark_module`) and applying ``overrides`` (see
    :func:`~tunebench.benchmarks.registry.override_benchmark`)."""
    for ref in modules:
        load_benchmark_module(ref)
    return override_benchmark(get_benchmark(name), overrides)
