"""ConfigSpace JSON documents as tunebench config spaces, conditions included (L2).

`ConfigSpace <https://github.com/automl/ConfigSpace>`_ writes a space as JSON: a list of
``hyperparameters`` (``name``, ``type`` and bounds), a list of ``conditions`` and a list of
``forbiddens``. YAHPO Gym ships each scenario's space in that format (``config_space.json``).
:func:`space_from_configspace_json` reads such a document without the ConfigSpace package:

* hyperparameters: ``uniform_float`` -> :class:`~tunebench.space.Float`, ``uniform_int`` ->
  :class:`~tunebench.space.Integer` (both with ``log``), ``categorical`` ->
  :class:`~tunebench.space.Choice`, ``ordinal`` -> :class:`~tunebench.space.Ordinal`,
  ``constant`` -> a constant; quantized ones (``q``) are refused;
* conditions become the child's ``when`` condition (:mod:`tunebench.space.conditions`):
  ``EQ`` -> ``==``, ``NEQ`` -> ``!=``, ``IN`` -> ``in``, ``LT`` -> ``<``, ``GT`` -> ``>``; an
  ``AND`` conjunction -> all of its members' clauses (nested ones too);
* an ``OR`` disjunction: tunebench conditions are conjunctions, so an ``OR`` is accepted only
  where it is a membership in disguise: every member an ``EQ`` or ``IN`` on one and the same
  parent, read as one ``in`` clause over the union of their values. Any other ``OR`` (members on
  different parents, or comparisons) cannot be expressed and is refused with a
  :class:`~tunebench.errors.UserError` naming the child (none of YAHPO Gym's v1 spaces has one);
* ``forbiddens`` are refused (tunebench spaces have none; YAHPO's lists are empty).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tunebench.errors import UserError
from tunebench.space import Choice, Domain, Float, Integer, Ordinal
from tunebench.space.conditions import Clause, Condition

__all__ = ["space_from_configspace_json", "CONDITION_TYPES"]

#: ConfigSpace condition type -> tunebench operator (``AND``/``OR`` are handled apart)
CONDITION_TYPES: dict[str, str] = {"EQ": "==", "NEQ": "!=", "IN": "in", "LT": "<", "GT": ">"}


def _clean_float(x: Any) -> float:
    """``x`` without the float noise of JSON bounds (0.00010000000000000009 -> 1e-4)."""
    value = float(x)
    if value == 0.0 or not math.isfinite(value):
        return value
    rounded = float(f"{value:.10g}")
    return rounded if abs(rounded - value) <= 1e-12 * abs(value) else value


def _hyperparameter(hp: Mapping[str, Any], where: str) -> Any:
    name, kind = hp["name"], hp["type"]
    if hp.get("q") is not None:
        raise UserError(f"{where}: {name} is quantized (q={hp['q']}), which is not supported")
    if kind == "constant":
        return hp["value"]
    if kind == "uniform_float":
        return Float(_clean_float(hp["lower"]), _clean_float(hp["upper"]), log=bool(hp.get("log")))
    if kind == "uniform_int":
        return Integer(int(hp["lower"]), int(hp["upper"]), log=bool(hp.get("log")))
    if kind == "categorical":
        return Choice(list(hp["choices"]))
    if kind == "ordinal":
        return Ordinal(list(hp["sequence"]))
    raise UserError(f"{where}: {name} has the type {kind!r}, which tunebench cannot convert "
                    "(supported: uniform_float, uniform_int, categorical, ordinal, constant)")


def _clauses(entry: Mapping[str, Any], where: str) -> list[Clause]:
    """The clauses of one condition entry (a simple condition, an AND or an OR)."""
    kind = entry.get("type")
    child = entry.get("child", "?")
    if kind == "AND":
        return [c for member in entry.get("conditions", []) for c in _clauses(member, where)]
    if kind == "OR":
        members = entry.get("conditions", [])
        parents = {m.get("parent") for m in members}
        if not members or len(parents) != 1 or any(m.get("type") not in ("EQ", "IN") for m in members):
            raise UserError(f"{where}: the condition of {child!r} is an OR over {sorted(map(str, parents))} that "
                            "tunebench cannot express (its conditions are conjunctions; an OR is accepted only as "
                            "EQ/IN clauses on one parent)")
        values: list[Any] = []
        for m in members:
            for v in (m["values"] if m["type"] == "IN" else [m["value"]]):
                if v not in values:
                    values.append(v)
        return [Clause(parents.pop(), "in", tuple(values))]
    if kind not in CONDITION_TYPES:
        raise UserError(f"{where}: the condition of {child!r} has the type {kind!r}; supported: "
                        f"{', '.join([*CONDITION_TYPES, 'AND', 'OR'])}")
    op = CONDITION_TYPES[kind]
    operand = tuple(entry["values"]) if op == "in" else entry["value"]
    return [Clause(entry["parent"], op, operand)]


def space_from_configspace_json(spec: Mapping[str, Any], where: str = "config space") -> dict[str, Any]:
    """Name -> tunebench domain (or constant) of a ConfigSpace JSON document, conditional
    hyperparameters carrying their ``when`` condition (see the module docstring). ``where``
    names the document in error messages.

    Raises:
        UserError: forbidden clauses, an unsupported hyperparameter or condition type, an OR that
            is not a membership, a condition on a constant.
    """
    if spec.get("forbiddens"):
        raise UserError(f"{where}: forbidden clauses are not supported by tunebench's config spaces")
    space: dict[str, Any] = {hp["name"]: _hyperparameter(hp, where) for hp in spec.get("hyperparameters", [])}
    for entry in spec.get("conditions", []) or []:
        child = entry.get("child")
        if child not in space:
            raise UserError(f"{where}: a condition names the child {child!r}, which is not a hyperparameter")
        domain = space[child]
        if not isinstance(domain, Domain):
            raise UserError(f"{where}: the constant {child!r} has a condition; tunebench conditions apply to domains")
        clauses = _clauses(entry, where)
        if domain.condition is not None:  # ConfigSpace allows one condition a child; be lenient: conjoin
            clauses = [*domain.condition.clauses, *clauses]
        space[child] = domain.when(Condition(tuple(clauses)))
    return space
