"""Conditions on hyperparameters: a parameter that exists only when others have given values.

A domain gets a condition with :meth:`tunebench.space.Domain.when`::

    space = {
        "optimizer": choice(["sgd", "adam"]),
        "momentum": uniform(0.5, 0.99).when(optimizer="sgd"),
        "n_layers": randint(1, 3),
        "width_2": lograndint(16, 256).when(n_layers={">=": 2}),
        "beta": uniform(0, 1).when(optimizer=["adam", "adamw"], n_layers={"<=": 2}),
    }

A condition is a conjunction of clauses, one per named parameter (its *parents*): a plain value
means equality, a list means membership, and a dict maps operators (``==``, ``!=``, ``in``,
``not in``, ``<``, ``<=``, ``>``, ``>=``) to operands (several operators on one parameter all
hold). The same mapping is the ``when`` entry of a space file::

    momentum: {type: uniform, low: 0.5, high: 0.99, when: {optimizer: sgd}}

A parameter whose condition does not hold is *inactive*: it is absent from the configuration
(and from the trial's command line). A clause on a parameter that is itself inactive does not
hold, so conditions chain. :func:`active_config` drops the inactive parameters of a
configuration; :func:`condition_order` orders parameters so that parents come first. The checks
of a whole space (unknown parents, cycles, clauses that can never hold) are in
:mod:`tunebench.space.validation`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tunebench.errors import SpaceError

__all__ = ["Clause", "Condition", "OPERATORS", "active_config", "condition_order", "conditions_of", "is_conditional"]

#: operator -> its test of (value, operand)
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda value, operand: value in operand,
    "not in": lambda value, operand: value not in operand,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
#: operators that compare numbers (the parent must be numeric)
ORDER_OPERATORS = frozenset({"<", "<=", ">", ">="})
#: operators whose operand is a list of values
SET_OPERATORS = frozenset({"in", "not in"})


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


@dataclass(frozen=True, slots=True)
class Clause:
    """``name <op> operand``: holds for a configuration where ``name`` is present and the test
    is true (an absent, i.e. inactive, parent makes the clause false)."""

    name: str
    op: str
    operand: Any  #: a value, or a tuple of values for ``in`` / ``not in``

    def holds(self, config: Mapping[str, Any]) -> bool:
        """Whether the clause is true for ``config``."""
        if self.name not in config:
            return False
        try:
            return bool(OPERATORS[self.op](config[self.name], self.operand))
        except TypeError:  # e.g. a string compared with a number: not met
            return False

    def __str__(self) -> str:
        operand = list(self.operand) if self.op in SET_OPERATORS else self.operand
        return f"{self.name} {self.op} {operand!r}"


@dataclass(frozen=True, slots=True)
class Condition:
    """A conjunction of :class:`Clause` objects; build it with :meth:`parse`."""

    clauses: tuple[Clause, ...]

    @property
    def parents(self) -> tuple[str, ...]:
        """The parameters the condition reads, in order, each once."""
        return tuple(dict.fromkeys(c.name for c in self.clauses))

    def holds(self, config: Mapping[str, Any]) -> bool:
        """Whether every clause holds for ``config``."""
        for clause in self.clauses:  # a loop, not all(genexpr): run once per parameter per config
            if not clause.holds(config):
                return False
        return True

    @classmethod
    def parse(cls, spec: Any, where: str = "condition") -> Condition:
        """The condition of ``spec``, a mapping parent -> value | list of values | {op: operand}
        (see the module docstring). ``where`` names the parameter in error messages.

        Raises:
            SpaceError: ``spec`` is not such a mapping, is empty, or uses an unknown operator or
                an operand of the wrong kind.
        """
        if isinstance(spec, Condition):
            return spec
        if not isinstance(spec, Mapping) or not spec:
            raise SpaceError(f"{where}: a condition is a non-empty mapping parameter -> value, list of values or "
                             f"{{operator: operand}}, e.g. when={{'optimizer': 'sgd'}}; got {spec!r}")
        clauses: list[Clause] = []
        for name, test in spec.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"{where}: condition on {name!r}: name a parameter of the space")
            if isinstance(test, Mapping):
                if not test:
                    raise SpaceError(f"{where}: the condition on {name!r} has no operator")
                for op, operand in test.items():
                    clauses.append(_clause(where, name, op, operand))
            elif isinstance(test, (list, tuple)):
                clauses.append(_clause(where, name, "in", test))
            else:
                clauses.append(_clause(where, name, "==", test))
        return cls(tuple(clauses))

    def to_json(self) -> dict[str, Any]:
        """The mapping form :meth:`parse` reads (equality as a plain value, membership as a list)."""
        out: dict[str, Any] = {}
        for c in self.clauses:
            operand = list(c.operand) if c.op in SET_OPERATORS else c.operand
            if c.op in ("==", "in") and c.name not in out:
                out[c.name] = operand
                continue
            entry = out.get(c.name)
            if not isinstance(entry, dict):
                entry = {} if entry is None else {("in" if isinstance(entry, list) else "=="): entry}
                out[c.name] = entry
            entry[c.op] = operand
        return out

    def __str__(self) -> str:
        return " and ".join(str(c) for c in self.clauses)


def _clause(where: str, name: str, op: Any, operand: Any) -> Clause:
    if op not in OPERATORS:
        raise SpaceError(f"{where}: unknown operator {op!r} in the condition on {name!r}; use one of "
                         f"{', '.join(OPERATORS)}")
    if op in SET_OPERATORS:
        if not isinstance(operand, (list, tuple)) or not operand or not all(_is_plain(v) for v in operand):
            raise SpaceError(f"{where}: the condition '{name} {op}' needs a non-empty list of values, got {operand!r}")
        return Clause(name, op, tuple(operand))
    if op in ORDER_OPERATORS:
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            raise SpaceError(f"{where}: the condition '{name} {op}' needs a number, got {operand!r}")
        return Clause(name, op, operand)
    if not _is_plain(operand):
        raise SpaceError(f"{where}: the condition '{name} {op}' needs a str, number, bool or None, got {operand!r}")
    return Clause(name, op, operand)


def conditions_of(space: Mapping[str, Any]) -> dict[str, Condition]:
    """Parameter -> its condition, for the conditional parameters of ``space`` (key order)."""
    out: dict[str, Condition] = {}
    for name, value in space.items():
        condition = getattr(value, "condition", None)
        if condition is not None:
            out[name] = condition
    return out


def is_conditional(space: Mapping[str, Any]) -> bool:
    """Whether some parameter of ``space`` has a condition."""
    return any(getattr(v, "condition", None) is not None for v in space.values())


def condition_order(space: Mapping[str, Any]) -> list[str]:
    """The names of ``space`` with every parameter after the parents of its condition, otherwise
    in key order.

    Raises:
        SpaceError: a condition names a parameter the space does not have, or conditions form a
            cycle (both named).
    """
    conditions = conditions_of(space)
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> None:
        mark = state.get(name)
        if mark == 2:
            return
        if mark == 1:
            cycle = path[path.index(name):] + [name]
            raise SpaceError(f"the conditions form a cycle: {' -> '.join(cycle)}; a parameter cannot depend on "
                             "itself, even through others")
        state[name] = 1
        condition = conditions.get(name)
        if condition is not None:
            for parent in condition.parents:
                if parent not in space:
                    raise SpaceError(f"parameter {name!r}: its condition names {parent!r}, which is not a parameter "
                                     f"of the space; use one of {', '.join(map(repr, space))}")
                visit(parent, [*path, name])
        state[name] = 2
        order.append(name)

    for name in space:
        visit(name, [])
    return order


@dataclass(frozen=True, slots=True)
class _Plan:
    """How :func:`active_config` filters a configuration of one space: the parameters in
    :func:`condition_order` with their conditions, and whether that is the key order."""

    names: frozenset[str]
    keys: tuple[str, ...]
    steps: tuple[tuple[str, Condition | None], ...]
    in_key_order: bool


#: (space keys, ids of its values) -> (the values, held so that their ids stay theirs; the plan)
_PLANS: dict[tuple[tuple[str, ...], tuple[int, ...]], tuple[tuple[Any, ...], _Plan | None]] = {}
_PLANS_SIZE = 256


def _plan(space: Mapping[str, Any]) -> _Plan | None:
    """The :class:`_Plan` of ``space`` (None: no conditions), computed once per space: a space's
    domains are immutable, so its keys and the identity of its values determine the plan (the
    cache holds the values, so their ids cannot be reused while the entry lives)."""
    values = tuple(space.values())
    key = (tuple(space), tuple(map(id, values)))
    entry = _PLANS.get(key)
    if entry is not None:
        return entry[1]
    conditions = conditions_of(space)
    plan = None
    if conditions:
        order = condition_order(space)
        plan = _Plan(frozenset(space), key[0], tuple((n, conditions.get(n)) for n in order), tuple(order) == key[0])
    if len(_PLANS) >= _PLANS_SIZE:
        _PLANS.clear()
    _PLANS[key] = (values, plan)
    return plan


def active_config(space: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without the parameters whose condition does not hold (in the space's key
    order; keys not in the space are kept at the end, e.g. a resource added by a scheduler).
    A space without conditions returns a plain copy."""
    plan = _plan(space)
    if plan is None:
        return dict(config)
    active: dict[str, Any] = {}
    for name, condition in plan.steps:
        if name in config and (condition is None or condition.holds(active)):
            active[name] = config[name]
    if not plan.in_key_order:
        active = {name: active[name] for name in plan.keys if name in active}
    if len(active) < len(config):  # some inactive keys or keys not in the space
        names = plan.names
        active.update((k, v) for k, v in config.items() if k not in names)
    return active
