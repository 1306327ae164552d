"""A config space as JSON: :func:`space_to_json` and its inverse, and space files (``.json``,
``.yaml``, ``.yml``) in that format."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunebench.errors import SpaceError
from tunebench.space.conditions import Condition
from tunebench.space.domains import DOMAIN_TYPES, Choice, Domain, FiniteRange, Float, Integer, Ordinal
from tunebench.space.validation import check_name, validate_space

__all__ = ["space_to_json", "space_from_json", "load_space_file", "read_mapping_file"]


def space_to_json(space: Mapping[str, Any]) -> dict[str, Any]:
    """The space as a JSON-able dict; constants become ``{"type": "constant", "value": v}``."""
    validate_space(space)
    return {
        k: _domain_json(v) if isinstance(v, Domain) else {"type": "constant", "value": v}
        for k, v in space.items()
    }


def _domain_json(domain: Domain) -> dict[str, Any]:
    """The domain's spec, with its condition under ``when``."""
    spec = domain.to_json()
    if domain.condition is not None:
        spec["when"] = domain.condition.to_json()
    return spec


_NUMERIC_KEYS = frozenset({"low", "high", "log"})
_SPEC_KEYS: dict[str, frozenset[str]] = {
    "uniform": _NUMERIC_KEYS,
    "loguniform": _NUMERIC_KEYS,
    "randint": _NUMERIC_KEYS,
    "lograndint": _NUMERIC_KEYS,
    "choice": frozenset({"categories", "values"}),
    "ordinal": frozenset({"categories", "values"}),
    "finrange": _NUMERIC_KEYS | {"size", "cast_int"},
    "logfinrange": _NUMERIC_KEYS | {"size", "cast_int"},
    "constant": frozenset({"value"}),
}
_LOG_VARIANT = {"uniform": "loguniform", "randint": "lograndint", "finrange": "logfinrange"}


def _json_number(value: Any) -> Any:
    """Numbers written as strings (YAML reads ``1e-4`` as a string) become numbers."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value


def _domain_from_spec(name: str, spec: Mapping[str, Any]) -> Any:
    if "when" in spec:
        if spec.get("type") == "constant":
            raise SpaceError(f"parameter {name!r}: a constant cannot have a condition ('when'); make it a domain")
        domain = _domain_from_spec(name, {k: v for k, v in spec.items() if k != "when"})
        return domain.when(Condition.parse(spec["when"], where=f"parameter {name!r}"))
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in _SPEC_KEYS:
        raise SpaceError(
            f"parameter {name!r}: unknown type {kind!r}; valid types: {', '.join(DOMAIN_TYPES)}"
        )
    allowed = _SPEC_KEYS[kind]
    extra = sorted(str(k) for k in spec if k != "type" and k not in allowed)
    if extra:
        raise SpaceError(
            f"parameter {name!r}: unexpected key(s) {', '.join(map(repr, extra))} for {kind}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )

    def need(key: str) -> Any:
        if key not in spec:
            raise SpaceError(f"parameter {name!r}: {kind} needs {key!r}")
        return spec[key]

    if kind == "constant":
        return need("value")
    if kind in ("choice", "ordinal"):
        if "categories" in spec and "values" in spec:
            raise SpaceError(f"parameter {name!r}: give 'categories' or 'values', not both")
        if "categories" not in spec and "values" not in spec:
            raise SpaceError(f"parameter {name!r}: {kind} needs 'categories' (or 'values')")
        cats = spec["categories"] if "categories" in spec else spec["values"]
        return (Choice if kind == "choice" else Ordinal)(cats)

    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"parameter {name!r}: 'log' must be true or false, got {log!r}")
    if log:
        kind = _LOG_VARIANT.get(kind, kind)
    elif "log" in spec and kind.startswith("log"):
        raise SpaceError(f"parameter {name!r}: type {kind} contradicts 'log': false")
    low, high = _json_number(need("low")), _json_number(need("high"))
    is_log = kind.startswith("log")
    if kind in ("uniform", "loguniform"):
        return Float(low, high, log=is_log)
    if kind in ("randint", "lograndint"):
        return Integer(low, high, log=is_log)
    size = _json_number(need("size"))
    cast_int = spec.get("cast_int", False)
    return FiniteRange(low, high, size, log=is_log, cast_int=cast_int)


def space_from_json(d: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`space_to_json`, also accepting friendly forms.

    A constant may be a bare value; ``"values"`` is an alias of ``"categories"``; ``"when"``
    gives a domain a condition (see :mod:`tunebench.space.conditions`);
    ``"log": true`` on ``uniform``/``randint``/``finrange`` selects the log variant; bounds
    written as strings (``"1e-4"``) are read as numbers.

    Raises:
        SpaceError: naming the parameter at fault.
    """
    if not isinstance(d, Mapping):
        raise SpaceError(
            f"a config space spec must be a mapping name -> spec, got {type(d).__name__}"
        )
    space: dict[str, Any] = {}
    for name, spec in d.items():
        check_name(name)
        if isinstance(spec, Mapping):
            try:
                space[name] = _domain_from_spec(name, spec)
            except SpaceError as e:
                msg = str(e)
                raise SpaceError(
                    msg if msg.startswith("parameter ") else f"parameter {name!r}: {msg}"
                ) from None
        else:
            space[name] = spec
    validate_space(space)
    return space


def read_mapping_file(path: str | Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a ``.json``, ``.yaml`` or ``.yml`` file; ``what`` names the kind
    of file in the messages (``"space file"``, ``"prior file"``).

    Raises:
        SpaceError: missing file, unknown extension, parse error (with line), top level not a
            mapping; the message names the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise SpaceError(f"{what} {path}: unknown extension {suffix!r}; use .json, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpaceError(f"{what} {path} cannot be read: {e}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpaceError(
                f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}"
            ) from None
    else:
        import yaml  # deferred: only YAML files need it

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
            problem = getattr(e, "problem", None) or str(e)
            raise SpaceError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise SpaceError(
            f"{what} {path}: the top level must be a mapping name -> spec, got {got}"
        )
    return data


def load_space_file(path: str | Path) -> dict[str, Any]:
    """Read a config space from a ``.json``, ``.yaml`` or ``.yml`` file (see
    :func:`space_from_json` for the format: a top-level mapping name -> spec).

    Raises:
        SpaceError: missing file, unknown extension, parse error (with line), top level not a
            mapping, or an invalid parameter; the message names the file.
    """
    data = read_mapping_file(path, "space file")
    try:
        return space_from_json(data)
    except SpaceError as e:
        raise SpaceError(f"space file {path}: {e}") from None
