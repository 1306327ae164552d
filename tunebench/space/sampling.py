"""Configurations drawn from a space: random samples, the default, the grid.

Imports no numpy itself: the random generator is the caller's, and the domains' batch methods
import the array kernels they need.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tunebench.errors import SpaceError
from tunebench.space.domains import Domain
from tunebench.space.validation import validate_space

if TYPE_CHECKING:  # pragma: no cover
    from tunebench.space.unit_cube import Generator

__all__ = ["MAX_GRID_SIZE", "sample_config", "sample_configs", "default_config", "grid_configs", "rows"]

#: :func:`grid_configs` refuses grids larger than this (they would not fit in memory).
MAX_GRID_SIZE = 1_000_000


def rows(names: list[str], columns: list[Iterable[Any]], n: int) -> list[dict[str, Any]]:
    """``n`` dicts from one column of values per name."""
    if not names:
        return [{} for _ in range(n)]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=False)]


def sample_config(space: Mapping[str, Any], rng: Generator) -> dict[str, Any]:
    """One random configuration (constants included, in the space's key order)."""
    return {k: v._sample_one(rng) if isinstance(v, Domain) else v for k, v in space.items()}


def sample_configs(
    space: Mapping[str, Any], rng: Generator, n: int
) -> list[dict[str, Any]]:
    """``n`` random configurations, drawn with one vectorized call per domain."""
    names = list(space)
    columns: list[Iterable[Any]] = [
        v.sample(rng, n) if isinstance(v, Domain) else itertools.repeat(v, n)
        for v in space.values()
    ]
    return rows(names, columns, n)


def default_config(space: Mapping[str, Any]) -> dict[str, Any]:
    """Every domain's :meth:`Domain.default`, constants included."""
    return {k: v.default() if isinstance(v, Domain) else v for k, v in space.items()}


def grid_configs(space: Mapping[str, Any], n_points: int = 5) -> list[dict[str, Any]]:
    """The cartesian product of every domain's ``grid(n_points)``, constants included.

    The first parameter varies slowest; the order is deterministic.

    Raises:
        SpaceError: the grid would have more than :data:`MAX_GRID_SIZE` configurations.
    """
    validate_space(space)
    names = list(space)
    axes = [v.grid(n_points) if isinstance(v, Domain) else [v] for v in space.values()]
    size = math.prod(len(axis) for axis in axes)
    if size > MAX_GRID_SIZE:
        raise SpaceError(
            f"the grid has {size} configurations (more than {MAX_GRID_SIZE}); "
            "lower n_points, fix some parameters as constants, or use random search"
        )
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
