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
from tunebench.space.conditions import active_config, condition_order, is_conditional
from tunebench.space.domains import Domain
from tunebench.space.validation import validate_space

if TYPE_CHECKING:  # pragma: no cover
    from tunebench.space.unit_cube import Generator

__all__ = ["MAX_GRID_SIZE", "sample_config", "sample_configs", "default_config", "grid_configs", "rows",
           "repair_config"]

#: :func:`grid_configs` refuses grids larger than this (they would not fit in memory).
MAX_GRID_SIZE = 1_000_000


def rows(names: list[str], columns: list[Iterable[Any]], n: int) -> list[dict[str, Any]]:
    """``n`` dicts from one column of values per name."""
    if not names:
        return [{} for _ in range(n)]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=False)]


def sample_config(space: Mapping[str, Any], rng: Generator) -> dict[str, Any]:
    """One random configuration (constants included, in the space's key order; the parameters
    whose condition does not hold left out: every domain is drawn, so the draws of a space do
    not depend on which parameters end up active)."""
    config = {k: v._sample_one(rng) if isinstance(v, Domain) else v for k, v in space.items()}
    return active_config(space, config) if is_conditional(space) else config


def sample_configs(
    space: Mapping[str, Any], rng: Generator, n: int
) -> list[dict[str, Any]]:
    """``n`` random configurations, drawn with one vectorized call per domain."""
    names = list(space)
    columns: list[Iterable[Any]] = [
        v.sample(rng, n) if isinstance(v, Domain) else itertools.repeat(v, n)
        for v in space.values()
    ]
    configs = rows(names, columns, n)
    if is_conditional(space):
        return [active_config(space, c) for c in configs]
    return configs


def repair_config(space: Mapping[str, Any], config: Mapping[str, Any], rng: Generator) -> dict[str, Any]:
    """``config`` made a configuration of ``space`` after a change (a mutation, a crossover): the
    parameters whose condition no longer holds are dropped, those that became active get a random
    value drawn with ``rng``, constants their value (in the space's key order; keys not in the
    space are kept at the end). For a space without conditions: ``config`` with the missing
    parameters drawn."""
    out = dict(config)
    for name in condition_order(space) if is_conditional(space) else list(space):
        domain = space[name]
        condition = getattr(domain, "condition", None)
        if condition is not None and not condition.holds(out):
            out.pop(name, None)
        elif name not in out:
            out[name] = domain._sample_one(rng) if isinstance(domain, Domain) else domain
    ordered = {name: out[name] for name in space if name in out}
    ordered.update((k, v) for k, v in config.items() if k not in space)
    return ordered


def default_config(space: Mapping[str, Any]) -> dict[str, Any]:
    """Every domain's :meth:`Domain.default`, constants included (inactive parameters left out)."""
    config = {k: v.default() if isinstance(v, Domain) else v for k, v in space.items()}
    return active_config(space, config) if is_conditional(space) else config


def grid_configs(space: Mapping[str, Any], n_points: int = 5) -> list[dict[str, Any]]:
    """The cartesian product of every domain's ``grid(n_points)``, constants included.

    The first parameter varies slowest; the order is deterministic. In a conditional space,
    the parameters inactive in a configuration are left out and the repeats this makes dropped
    (the size limit applies to the product before that).

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
    configs = (dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes))
    if not is_conditional(space):
        return list(configs)
    # an inactive parameter's values all give the same configuration: keep the first of each
    unique: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for config in configs:
        active = active_config(space, config)
        unique.setdefault(tuple((k, type(v), v) for k, v in active.items()), active)  # type: ignore[misc]
    return list(unique.values())
