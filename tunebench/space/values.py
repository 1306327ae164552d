"""Single values of a config space: number checks, how a value is written on a command line
and read back from one. Imports no numpy (the training-script path, see ``add_to_argparse``).

A numpy scalar or array can only exist once numpy has been imported, so the numpy checks here
look numpy up in :data:`sys.modules` instead of importing it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

from tunebench.errors import SpaceError
from tunebench.types import is_number

#: Integers beyond this lose exactness in the float encoding.
MAX_INT = 2**53

#: Spellings of bools accepted on a command line (any case), besides ``True``/``False``.
TRUE_TEXT = frozenset({"true", "1"})
FALSE_TEXT = frozenset({"false", "0"})


def is_numpy_scalar(value: Any) -> bool:
    """Whether ``value`` is a numpy scalar (``np.float64(1.0)``, ``np.int64(3)``, ...)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.generic)


def is_numpy_array(value: Any) -> bool:
    """Whether ``value`` is a :class:`numpy.ndarray`."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def native(value: Any) -> Any:
    """``value`` with numpy scalars turned into the equivalent Python scalar."""
    return value.item() if is_numpy_scalar(value) else value


def check_number(kind: str, what: str, value: Any) -> int | float:
    """A finite real number (bools and strings rejected) or :class:`SpaceError`."""
    value = native(value)
    if not is_number(value):
        raise SpaceError(f"{kind}: {what} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpaceError(f"{kind}: {what} must be finite, got {value!r}; give finite bounds")
    number: int | float = value
    return number


def check_integer(kind: str, what: str, value: Any) -> int:
    """An integer (an integral float is accepted) within ``+-2**53``, or :class:`SpaceError`."""
    number = check_number(kind, what, value)
    if isinstance(number, float):
        if not number.is_integer():
            raise SpaceError(
                f"{kind}: {what} must be an integer, got {number!r}; "
                "use uniform/loguniform for a float range"
            )
        number = int(number)
    if abs(number) > MAX_INT:
        raise SpaceError(f"{kind}: {what} ({number}) must be within +-2**53")
    return number


def check_order(kind: str, low: float, high: float) -> None:
    """:class:`SpaceError` unless ``low <= high``."""
    if low > high:
        raise SpaceError(f"{kind}: low ({low!r}) must be <= high ({high!r}); swap the bounds")


def check_log_low(kind: str, low: float, linear: str) -> None:
    """:class:`SpaceError` unless ``low > 0`` (a log domain); ``linear`` names the fix."""
    if low <= 0:
        raise SpaceError(
            f"{kind} needs low > 0, got {low!r}; use {linear} for ranges that include 0"
        )


def argv_text(value: Any) -> str:
    """How a value is written on a command line (parsed back exactly by ``add_to_argparse``)."""
    value = native(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    if value is None:
        return "None"
    raise SpaceError(
        f"cannot write {value!r} ({type(value).__name__}) on a command line; "
        "config values must be str, int, float, bool or None"
    )


def parse_bool(value: Any) -> bool:
    """``True``/``False``/``true``/``false``/``1``/``0`` (any case) as a bool."""
    value = native(value)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_TEXT:
        return True
    if text in FALSE_TEXT:
        return False
    raise SpaceError(f"cannot read {value!r} as a bool; use True/False, true/false or 1/0")


def parse_float(kind: str, value: Any) -> float:
    """``value`` (a number or its text) as a finite float, or :class:`SpaceError`."""
    value = native(value)
    if isinstance(value, bool):
        raise SpaceError(f"{kind}: cannot use the bool {value!r} as a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SpaceError(f"{kind}: cannot read {value!r} as a number") from None
    if not math.isfinite(out):
        raise SpaceError(f"{kind}: {value!r} is not a finite number")
    return out


def parse_int(kind: str, value: Any) -> int:
    """``value`` (an int, an integral float, or their text) as an int, or :class:`SpaceError`."""
    value = native(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = parse_float(kind, value)
    if not number.is_integer():
        raise SpaceError(f"{kind}: {value!r} is not an integer")
    return int(number)


def dedupe(values: Iterable[Any]) -> list[Any]:
    """``values`` without repeats, first occurrences kept in order."""
    seen: set[Any] = set()
    out = []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out
