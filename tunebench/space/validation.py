"""Checks of a whole config space, and its parts: the domains and the constants."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from tunebench.errors import SpaceError
from tunebench.space.conditions import ORDER_OPERATORS, condition_order, conditions_of, is_conditional
from tunebench.space.domains import Domain
from tunebench.space.values import is_numpy_scalar
from tunebench.types import is_number

__all__ = ["check_name", "validate_space", "hyperparameters", "constants", "space_cardinality"]

_SpaceT = TypeVar("_SpaceT", bound=Mapping[str, Any])


def check_name(name: Any) -> None:
    """:class:`SpaceError` unless ``name`` can be a parameter (and so a ``--name`` option)."""
    if not isinstance(name, str) or not name:
        raise SpaceError(f"parameter names must be non-empty strings, got {name!r}")
    if name.startswith("-") or "=" in name or any(ch.isspace() for ch in name):
        raise SpaceError(
            f"parameter {name!r}: names become command-line options (--name); "
            "use no whitespace or '=' and do not start with '-'"
        )


def _check_constant(name: str, value: Any) -> None:
    if is_numpy_scalar(value):  # np.float64 is a float subclass, yet not JSON-native
        raise SpaceError(
            f"parameter {name!r}: constant {value!r} is a numpy scalar; use the Python value "
            f"{value.item()!r} instead"
        )
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpaceError(f"parameter {name!r}: constant {value!r} must be finite")
        return
    hint = ""
    if isinstance(value, (list, tuple)):
        hint = f"; use choice({list(value)!r}) to search over these values"
    raise SpaceError(
        f"parameter {name!r}: {value!r} ({type(value).__name__}) is neither a domain nor a "
        f"constant str, int, float, bool or None{hint}"
    )


def validate_space(space: _SpaceT) -> _SpaceT:
    """Check a whole space; returns it unchanged.

    Names must be non-empty strings usable as ``--name``; values are domains or constants
    (str/int/float/bool/None). Domains are checked again, and their problems re-raised with
    the parameter's name, e.g. ``parameter 'lr': loguniform needs low > 0, got 0; ...``.

    Raises:
        SpaceError: the first problem found.
    """
    if not isinstance(space, Mapping):
        raise SpaceError(
            f"a config space must be a dict name -> domain or constant, got "
            f"{type(space).__name__}"
        )
    for name, value in space.items():
        check_name(name)
        if isinstance(value, Domain):
            try:
                type(value)(*value._args())
            except SpaceError as e:
                raise SpaceError(f"parameter {name!r}: {e}") from None
        else:
            _check_constant(name, value)
    if is_conditional(space):
        _check_conditions(space)
    return space


def _check_conditions(space: Mapping[str, Any]) -> None:
    """Parents exist, no cycle (:func:`condition_order`), and each clause can hold: equality and
    membership name values of the parent (categories of a categorical, numbers in a numeric
    range), order comparisons apply to numeric parents."""
    condition_order(space)
    for name, condition in conditions_of(space).items():
        for clause in condition.clauses:
            parent = space[clause.name]
            if clause.name == name:
                raise SpaceError(f"parameter {name!r}: its condition names itself")
            if clause.op in ORDER_OPERATORS:
                if not _is_numeric(parent):
                    raise SpaceError(f"parameter {name!r}: the condition '{clause}' compares {clause.name!r}, which "
                                     "is not numeric; use == or in with its values")
                continue
            if clause.op in ("==", "in"):
                values = clause.operand if clause.op == "in" else (clause.operand,)
                possible = [v for v in values if (parent.contains(v) if isinstance(parent, Domain) else v == parent)]
                if not possible:
                    allowed = (f"one of {parent.categories!r}" if _is_categorical(parent)
                               else repr(parent))
                    raise SpaceError(f"parameter {name!r}: the condition '{clause}' can never hold: {clause.name!r} "
                                     f"takes {allowed}")


def _is_categorical(domain: Any) -> bool:
    return hasattr(domain, "categories")


def _is_numeric(parent: Any) -> bool:
    """A number constant, a numeric range, or categories that are all numbers."""
    if not isinstance(parent, Domain):
        return is_number(parent)
    categories = getattr(parent, "categories", None)
    if categories is not None:
        return all(is_number(c) for c in categories)
    return parent.value_type in (int, float)


def hyperparameters(space: Mapping[str, Any]) -> dict[str, Domain]:
    """The entries of ``space`` that are domains (in key order)."""
    return {k: v for k, v in space.items() if isinstance(v, Domain)}


def constants(space: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``space`` that are constants (in key order)."""
    return {k: v for k, v in space.items() if not isinstance(v, Domain)}


def space_cardinality(space: Mapping[str, Any]) -> int | None:
    """Number of distinct configurations of ``space``, None if a domain is continuous."""
    total = 1
    for domain in hyperparameters(space).values():
        n = domain.cardinality
        if n is None:
            return None
        total *= n
    return total
