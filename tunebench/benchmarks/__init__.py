"""Benchmark definitions (L4): named, ready-to-run tuning problems.

A *real* benchmark is a training script with its metric, mode, resource attributes and
defaults for a run (workers, wallclock budget, method). ``tunebench run --benchmark NAME`` and
``tunebench list`` use this registry; users add their own with :func:`register_benchmark`.
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


_REGISTRY: dict[str, Callable[[], RealBenchmark]] = {}


def register_benchmark(name: str, factory: Callable[[], RealBenchmark]) -> None:
    """Make ``factory()`` available as ``--benchmark name`` (overrides an existing name)."""
    _REGISTRY[name] = factory


def benchmark_names() -> list[str]:
    return sorted(_REGISTRY)


def get_benchmark(name: str) -> RealBenchmark:
    """The benchmark called ``name``; a :class:`UserError` listing the known names otherwise."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UserError(f"unknown benchmark '{name}'; known benchmarks: {', '.join(benchmark_names())} "
                        "(see `tunebench list --benchmarks`)")
    return factory()


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
