"""The config-space language (layer L0).

A config space is a plain ``dict`` that maps a parameter name to a :class:`Domain` (a
range or a set of values to search) or to a constant (any ``str``, ``int``, ``float``,
``bool`` or ``None``)::

    space = {
        "lr": loguniform(1e-4, 1e-1),
        "n_units": lograndint(16, 512),
        "activation": choice(["relu", "tanh"]),
        "epochs": 27,  # a constant: passed to every trial, never searched
    }

Domains sample with a :class:`numpy.random.Generator`, encode to and decode from the
unit cube in batches (models work on arrays), round-trip to JSON, and add themselves to
an :mod:`argparse` parser. Key order is kept everywhere (sampled configs, encodings,
grids, JSON).

Every value a domain hands out is a Python-native ``float``/``int``/``str``/``bool``
(never a numpy scalar), so configurations are JSON-able as they are.

Encoding to ``[0, 1]``: floats map linearly (in log space for the log variants); every
integer, ordinal category and ``finrange`` value gets an equal share of ``[0, 1]`` and is
encoded at the centre of its share (integers of ``lograndint`` get equal shares in log
space); a ``choice`` of ``k`` categories is one-hot over ``k`` columns and decodes by
argmax. ``decode(encode(v)) == v`` holds exactly for every valid value of the discrete
domains, and up to floating-point rounding (relative 1e-12) for floats; the bounds of a
float domain decode exactly.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from tunebench.errors import SpaceError

if TYPE_CHECKING:  # pragma: no cover
    import argparse

__all__ = [
    "Domain",
    "Float",
    "Integer",
    "Choice",
    "Ordinal",
    "FiniteRange",
    "SpaceEncoder",
    "uniform",
    "loguniform",
    "randint",
    "lograndint",
    "choice",
    "ordinal",
    "finrange",
    "logfinrange",
    "validate_space",
    "hyperparameters",
    "constants",
    "sample_config",
    "sample_configs",
    "get_encoder",
    "encoded_dim",
    "encode_configs",
    "decode_configs",
    "default_config",
    "grid_configs",
    "space_to_json",
    "space_from_json",
    "load_space_file",
    "add_to_argparse",
    "config_to_argv",
    "DOMAIN_TYPES",
    "MAX_GRID_SIZE",
    "SpaceError",
]

#: The ``type`` names of the JSON format, in the order error messages list them.
DOMAIN_TYPES = (
    "uniform",
    "loguniform",
    "randint",
    "lograndint",
    "choice",
    "ordinal",
    "finrange",
    "logfinrange",
    "constant",
)

#: :func:`grid_configs` refuses grids larger than this (they would not fit in memory).
MAX_GRID_SIZE = 1_000_000

_SpaceT = TypeVar("_SpaceT", bound=Mapping[str, Any])

# Integers beyond this lose exactness in the float encoding.
_MAX_INT = 2**53


# --------------------------------------------------------------------------- helpers


def _native(value: Any) -> Any:
    """``value`` with numpy scalars turned into the equivalent Python scalar."""
    return value.item() if isinstance(value, np.generic) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(kind: str, what: str, value: Any) -> int | float:
    """A finite real number (bools and strings rejected) or :class:`SpaceError`."""
    value = _native(value)
    if not _is_number(value):
        raise SpaceError(f"{kind}: {what} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpaceError(f"{kind}: {what} must be finite, got {value!r}; give finite bounds")
    return value


def _check_integer(kind: str, what: str, value: Any) -> int:
    value = _check_number(kind, what, value)
    if isinstance(value, float):
        if not value.is_integer():
            raise SpaceError(
                f"{kind}: {what} must be an integer, got {value!r}; "
                "use uniform/loguniform for a float range"
            )
        value = int(value)
    if abs(value) > _MAX_INT:
        raise SpaceError(f"{kind}: {what} ({value}) must be within +-2**53")
    return value


def _check_order(kind: str, low: Any, high: Any) -> None:
    if low > high:
        raise SpaceError(f"{kind}: low ({low!r}) must be <= high ({high!r}); swap the bounds")


def _check_log_low(kind: str, low: Any, linear: str) -> None:
    if low <= 0:
        raise SpaceError(
            f"{kind} needs low > 0, got {low!r}; use {linear} for ranges that include 0"
        )


def _argv_text(value: Any) -> str:
    """How a value is written on a command line (parsed back exactly by ``add_to_argparse``)."""
    value = _native(value)
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


_TRUE_TEXT = frozenset({"true", "1"})
_FALSE_TEXT = frozenset({"false", "0"})


def _parse_bool(value: Any) -> bool:
    """``True``/``False``/``true``/``false``/``1``/``0`` (any case) as a bool."""
    value = _native(value)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE_TEXT:
        return True
    if text in _FALSE_TEXT:
        return False
    raise SpaceError(f"cannot read {value!r} as a bool; use True/False, true/false or 1/0")


def _parse_float(kind: str, value: Any) -> float:
    value = _native(value)
    if isinstance(value, bool):
        raise SpaceError(f"{kind}: cannot use the bool {value!r} as a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SpaceError(f"{kind}: cannot read {value!r} as a number") from None
    if not math.isfinite(out):
        raise SpaceError(f"{kind}: {value!r} is not a finite number")
    return out


def _parse_int(kind: str, value: Any) -> int:
    value = _native(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = _parse_float(kind, value)
    if not number.is_integer():
        raise SpaceError(f"{kind}: {value!r} is not an integer")
    return int(number)


def _unit_matrix(kind: str, X: Any, dim: int) -> np.ndarray:
    """``X`` as a finite float array of shape ``(n, dim)``; ``(n,)`` is accepted if dim is 1."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1 and dim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != dim:
        raise SpaceError(f"{kind}: cannot decode an array of shape {X.shape}; expected (n, {dim})")
    if not np.isfinite(X).all():
        raise SpaceError(f"{kind}: cannot decode non-finite values (NaN or inf)")
    return X


def _index_from_unit(x: np.ndarray, k: int) -> np.ndarray:
    """Index of the equal share of ``[0, 1]`` that each ``x`` falls in, for ``k`` shares."""
    return np.clip(np.floor(x * k), 0, k - 1).astype(np.intp)


def _rows(names: list[str], columns: list[Iterable[Any]], n: int) -> list[dict[str, Any]]:
    """``n`` dicts from one column of values per name."""
    if not names:
        return [{} for _ in range(n)]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=False)]


def _dedupe(values: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


# --------------------------------------------------------------------------- domains


class Domain:
    """A set of values to search for one hyperparameter. Immutable and hashable.

    Build domains with the factory functions (:func:`uniform`, :func:`choice`, ...).
    """

    __slots__ = ()

    #: The Python type of the values (what ``argparse`` converts to).
    value_type: type
    #: Number of columns of the unit-cube encoding.
    encoded_dim: int = 1

    @property
    def cardinality(self) -> int | None:
        """Number of distinct values, None for a continuous domain."""
        if isinstance(self, Float):
            return None
        if isinstance(self, Integer):
            return self.high - self.low + 1
        if isinstance(self, FiniteRange):
            return self.size
        return len(self.categories)  # type: ignore[attr-defined]

    # -- subclass interface ------------------------------------------------
    @property
    def type_name(self) -> str:
        """The ``type`` of the JSON format (``"uniform"``, ``"choice"``, ...)."""
        raise NotImplementedError

    def _args(self) -> tuple[Any, ...]:
        """Constructor arguments that rebuild an equal domain."""
        raise NotImplementedError

    def _key(self) -> tuple[Any, ...]:
        """What equality and hashing compare (type-aware: ``True`` differs from ``1``)."""
        return (self.type_name, *self._args())

    def _sample_one(self, rng: np.random.Generator) -> Any:
        return self.sample(rng, 1)[0]

    def sample(self, rng: np.random.Generator, size: int) -> list[Any]:
        """``size`` independent draws, as a list of Python-native values."""
        raise NotImplementedError

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        """Values -> array of shape ``(len(values), encoded_dim)`` in ``[0, 1]``."""
        raise NotImplementedError

    def decode(self, X: Any) -> list[Any]:
        """Array of shape ``(n, encoded_dim)`` (or ``(n,)`` if 1-d) -> ``n`` native values.

        Points outside ``[0, 1]`` are clipped, so any finite array decodes to valid values.
        """
        return self._decode(_unit_matrix(self.type_name, X, self.encoded_dim))

    def _decode(self, X: np.ndarray) -> list[Any]:
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of this domain's values."""
        raise NotImplementedError

    def cast(self, value: Any) -> Any:
        """``value`` (for example a string from the command line) as this domain's type.

        Numeric domains convert the type without checking the range (use :meth:`contains`);
        categorical domains return the matching category.

        Raises:
            SpaceError: ``value`` cannot be read as this domain's type / is no category.
        """
        raise NotImplementedError

    def grid(self, n: int) -> list[Any]:
        """Values for grid search: ``n`` for float ranges, at most ``n`` for int ranges,
        every value for categorical domains and ``finrange``."""
        raise NotImplementedError

    def default(self) -> Any:
        """A sensible single value: the (geometric, for log domains) midpoint, the first
        ``choice`` category, the middle ``ordinal`` category or ``finrange`` value."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The JSON spec, e.g. ``{"type": "loguniform", "low": 0.0001, "high": 0.1}``."""
        raise NotImplementedError

    # -- common behaviour ------------------------------------------------------
    def _check_grid_n(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise SpaceError(f"{self!r}: grid needs n >= 1 points, got {n!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} domains are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} domains are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._args())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Domain):
            return NotImplemented
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"{self.type_name}({', '.join(repr(a) for a in self._args()[:2])})"


class Float(Domain):
    """Floats in ``[low, high]``, uniform or (``log=True``) log-uniform."""

    __slots__ = ("low", "high", "log", "_a", "_span")
    value_type = float

    def __init__(self, low: float, high: float, log: bool = False) -> None:
        kind = "loguniform" if log else "uniform"
        low, high = _check_number(kind, "low", low), _check_number(kind, "high", high)
        _check_order(kind, low, high)
        if log:
            _check_log_low(kind, low, "uniform")
        lo, hi = float(low), float(high)
        if not math.isfinite(hi - lo):
            raise SpaceError(f"{kind}: the range [{low!r}, {high!r}] is too wide for floats; narrow it")
        a = math.log(lo) if log else lo
        b = math.log(hi) if log else hi
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "log", bool(log))
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_span", b - a)

    @property
    def type_name(self) -> str:
        return "loguniform" if self.log else "uniform"

    def _args(self) -> tuple[Any, ...]:
        return (self.low, self.high, self.log)

    def _from_unit(self, x: np.ndarray) -> list[float]:
        x = np.clip(x, 0.0, 1.0)
        v = self._a + x * self._span
        if self.log:
            v = np.exp(v)
        v = np.where(x <= 0.0, self.low, np.where(x >= 1.0, self.high, v))
        return np.clip(v, self.low, self.high).tolist()

    def _sample_one(self, rng: np.random.Generator) -> float:
        v = self._a + self._span * rng.random()
        if self.log:
            v = math.exp(v)
        return min(max(v, self.low), self.high)

    def sample(self, rng: np.random.Generator, size: int) -> list[float]:
        return self._from_unit(rng.random(size))

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        v = np.clip(np.asarray(values, dtype=float).reshape(-1), self.low, self.high)
        if self._span == 0.0:
            return np.full((v.shape[0], 1), 0.5)
        t = np.log(v) if self.log else v
        return np.clip((t - self._a) / self._span, 0.0, 1.0)[:, None]

    def _decode(self, X: np.ndarray) -> list[float]:
        return self._from_unit(X[:, 0])

    def contains(self, value: Any) -> bool:
        value = _native(value)
        return _is_number(value) and self.low <= value <= self.high

    def cast(self, value: Any) -> float:
        return _parse_float(repr(self), value)

    def grid(self, n: int) -> list[float]:
        self._check_grid_n(n)
        if n == 1:
            return [self.default()]
        return _dedupe(self._from_unit(np.linspace(0.0, 1.0, n)))

    def default(self) -> float:
        if self.log:
            mid = math.sqrt(self.low) * math.sqrt(self.high)
        else:
            mid = self.low + 0.5 * (self.high - self.low)
        return min(max(mid, self.low), self.high)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_name, "low": self.low, "high": self.high}


class Integer(Domain):
    """Integers in ``[low, high]`` (both inclusive), uniform or (``log=True``) log-uniform.

    ``randint`` gives every integer an equal share of ``[0, 1]``; ``lograndint`` gives
    integer ``v`` the share ``[log v, log(v + 1))`` of ``[log low, log(high + 1))``.
    """

    __slots__ = ("low", "high", "log", "_n", "_a", "_span")
    value_type = int

    def __init__(self, low: int, high: int, log: bool = False) -> None:
        kind = "lograndint" if log else "randint"
        lo = _check_integer(kind, "low", low)
        hi = _check_integer(kind, "high", high)
        _check_order(kind, lo, hi)
        if log:
            _check_log_low(kind, lo, "randint")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "log", bool(log))
        object.__setattr__(self, "_n", hi - lo + 1)
        a = math.log(lo) if log else 0.0
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_span", math.log(hi + 1) - a if log else 0.0)

    @property
    def type_name(self) -> str:
        return "lograndint" if self.log else "randint"

    def _args(self) -> tuple[Any, ...]:
        return (self.low, self.high, self.log)

    def _from_unit(self, x: np.ndarray) -> list[int]:
        x = np.clip(x, 0.0, 1.0)
        if self.log:
            v = np.floor(np.exp(self._a + x * self._span))
        else:
            v = self.low + np.floor(x * self._n)
        return np.clip(v, self.low, self.high).astype(np.int64).tolist()

    def _sample_one(self, rng: np.random.Generator) -> int:
        u = rng.random()
        if self.log:
            v = math.floor(math.exp(self._a + u * self._span))
        else:
            v = self.low + math.floor(u * self._n)
        return min(max(v, self.low), self.high)

    def sample(self, rng: np.random.Generator, size: int) -> list[int]:
        return self._from_unit(rng.random(size))

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        v = np.clip(np.asarray(values, dtype=float).reshape(-1), self.low, self.high)
        if self.log:
            centre = 0.5 * (np.log(v) + np.log(v + 1.0))
            x = (centre - self._a) / self._span
        else:
            x = (v - self.low + 0.5) / self._n
        return np.clip(x, 0.0, 1.0)[:, None]

    def _decode(self, X: np.ndarray) -> list[int]:
        return self._from_unit(X[:, 0])

    def contains(self, value: Any) -> bool:
        value = _native(value)
        if not _is_number(value) or not self.low <= value <= self.high:
            return False
        return isinstance(value, int) or float(value).is_integer()

    def cast(self, value: Any) -> int:
        return _parse_int(repr(self), value)

    def grid(self, n: int) -> list[int]:
        self._check_grid_n(n)
        if n >= self._n:
            return list(range(self.low, self.high + 1))
        if n == 1:
            return [self.default()]
        if self.log:
            points = np.geomspace(self.low, self.high, n)
        else:
            points = np.linspace(self.low, self.high, n)
        ints = np.clip(np.rint(points), self.low, self.high).astype(np.int64).tolist()
        return _dedupe(ints)

    def default(self) -> int:
        mid = math.sqrt(self.low) * math.sqrt(self.high) if self.log else (self.low + self.high) / 2
        return min(max(round(mid), self.low), self.high)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_name, "low": self.low, "high": self.high}


class _Categories(Domain):
    """Shared by :class:`Choice` and :class:`Ordinal`: a finite list of categories."""

    __slots__ = ("categories", "value_type", "_index", "_text", "_aliases", "_numbers")
    _kind = ""

    def __init__(self, categories: Sequence[Any]) -> None:
        kind = self._kind
        if isinstance(categories, (str, bytes, Mapping)) or not isinstance(
            categories, (Sequence, np.ndarray)
        ):
            hint = " (sets have no fixed order)" if isinstance(categories, (set, frozenset)) else ""
            raise SpaceError(f"{kind}: categories must be a list, got {categories!r}{hint}")
        cats = tuple(_native(c) for c in categories)
        if not cats:
            raise SpaceError(f"{kind}: categories must not be empty; give at least one value")
        index: dict[Any, int] = {}
        text: dict[str, Any] = {}
        for i, c in enumerate(cats):
            if not isinstance(c, (str, int, float)):
                raise SpaceError(
                    f"{kind}: category {c!r} ({type(c).__name__}) must be a str, int, float "
                    "or bool"
                )
            if isinstance(c, float) and not math.isfinite(c):
                raise SpaceError(f"{kind}: category {c!r} must be finite")
            if c in index:
                other = cats[index[c]]
                same = "" if repr(other) == repr(c) else f" (equal to {other!r})"
                raise SpaceError(
                    f"{kind}: duplicate category {c!r}{same}; list each category once"
                )
            t = _argv_text(c)
            if t in text:
                raise SpaceError(
                    f"{kind}: categories {text[t]!r} and {c!r} are both written {t!r} on the "
                    "command line; rename one of them"
                )
            index[c] = i
            text[t] = c
        # lenient spellings of bools (true/1/false/0), any case
        aliases = {
            alias: c
            for c in cats
            if isinstance(c, bool)
            for alias in (_TRUE_TEXT if c else _FALSE_TEXT)
        }
        if all(isinstance(c, bool) for c in cats):
            vtype: type = bool
        elif all(isinstance(c, int) and not isinstance(c, bool) for c in cats):
            vtype = int
        elif all(_is_number(c) for c in cats):
            vtype = float
        else:
            vtype = str
        numbers = {float(c): c for c in cats if _is_number(c)}
        object.__setattr__(self, "categories", cats)
        object.__setattr__(self, "value_type", vtype)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_aliases", aliases)
        object.__setattr__(self, "_numbers", numbers)

    @property
    def type_name(self) -> str:
        return self._kind

    def _args(self) -> tuple[Any, ...]:
        return (list(self.categories),)

    def _key(self) -> tuple[Any, ...]:
        return (self._kind, tuple((type(c).__name__, c) for c in self.categories))

    def __repr__(self) -> str:
        return f"{self._kind}({list(self.categories)!r})"

    def _indices(self, values: Sequence[Any]) -> list[int]:
        index = self._index
        try:
            return [index[v] for v in values]
        except (KeyError, TypeError):
            bad = next(v for v in values if not self._hashable_in(v))
            raise SpaceError(
                f"{self!r}: {bad!r} is not one of the categories {list(self.categories)!r}"
            ) from None

    def _hashable_in(self, value: Any) -> bool:
        try:
            return value in self._index
        except TypeError:
            return False

    def _sample_one(self, rng: np.random.Generator) -> Any:
        k = len(self.categories)
        return self.categories[min(int(rng.random() * k), k - 1)]

    def sample(self, rng: np.random.Generator, size: int) -> list[Any]:
        cats = self.categories
        return [cats[i] for i in _index_from_unit(rng.random(size), len(cats)).tolist()]

    def contains(self, value: Any) -> bool:
        value = _native(value)
        if not self._hashable_in(value):
            return False
        cat = self.categories[self._index[value]]
        return isinstance(value, bool) == isinstance(cat, bool) and isinstance(
            value, str
        ) == isinstance(cat, str)

    def cast(self, value: Any) -> Any:
        value = _native(value)
        if not isinstance(value, str) and self.contains(value):
            return self.categories[self._index[value]]
        try:
            text = value if isinstance(value, str) else _argv_text(value)
        except SpaceError:
            text = None
        if text is not None:
            stripped = text.strip()
            for key in (text, stripped):
                if key in self._text:
                    return self._text[key]
            if stripped.lower() in self._aliases:
                return self._aliases[stripped.lower()]
            try:
                number = float(stripped)
            except ValueError:
                number = None
            if number is not None and number in self._numbers:
                return self._numbers[number]
        raise SpaceError(
            f"{self!r}: {value!r} is not one of the categories {list(self.categories)!r}"
        )

    def grid(self, n: int) -> list[Any]:
        self._check_grid_n(n)
        return list(self.categories)

    def to_json(self) -> dict[str, Any]:
        return {"type": self._kind, "categories": list(self.categories)}


class Choice(_Categories):
    """Unordered categories; one-hot encoded over ``len(categories)`` columns."""

    __slots__ = ()
    _kind = "choice"

    @property
    def encoded_dim(self) -> int:  # type: ignore[override]
        return len(self.categories)

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        idx = self._indices(values)
        X = np.zeros((len(idx), len(self.categories)))
        X[np.arange(len(idx)), idx] = 1.0
        return X

    def _decode(self, X: np.ndarray) -> list[Any]:
        cats = self.categories
        return [cats[i] for i in np.argmax(X, axis=1).tolist()]

    def default(self) -> Any:
        return self.categories[0]


class Ordinal(_Categories):
    """Ordered categories; category ``i`` of ``k`` is encoded at ``(i + 0.5) / k``."""

    __slots__ = ()
    _kind = "ordinal"

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        idx = np.asarray(self._indices(values), dtype=float)
        return ((idx + 0.5) / len(self.categories))[:, None]

    def _decode(self, X: np.ndarray) -> list[Any]:
        cats = self.categories
        return [cats[i] for i in _index_from_unit(X[:, 0], len(cats)).tolist()]

    def default(self) -> Any:
        return self.categories[(len(self.categories) - 1) // 2]


class FiniteRange(Domain):
    """``size`` values from ``low`` to ``high`` inclusive, equally spaced (geometrically with
    ``log=True``), rounded to ints with ``cast_int=True``. Encoded like an ordinal."""

    __slots__ = ("low", "high", "size", "log", "cast_int", "values", "_sorted")

    def __init__(
        self, low: float, high: float, size: int, log: bool = False, cast_int: bool = False
    ) -> None:
        kind = "logfinrange" if log else "finrange"
        low, high = _check_number(kind, "low", low), _check_number(kind, "high", high)
        _check_order(kind, low, high)
        if log:
            _check_log_low(kind, low, "finrange")
        lo, hi = float(low), float(high)
        size = _native(size)
        if isinstance(size, bool) or not isinstance(size, int):
            raise SpaceError(f"{kind}: size must be an integer >= 1, got {size!r}")
        if size < 1:
            raise SpaceError(f"{kind}: size must be >= 1, got {size}; give the number of values")
        cast_int = _native(cast_int)
        if not isinstance(cast_int, bool):
            raise SpaceError(f"{kind}: cast_int must be True or False, got {cast_int!r}")
        if cast_int and not (lo.is_integer() and hi.is_integer()):
            raise SpaceError(
                f"{kind}: cast_int=True needs integer bounds, got low {low!r} and high {high!r}"
            )
        if log:
            points = np.exp(np.linspace(math.log(lo), math.log(hi), size))
        else:
            points = np.linspace(lo, hi, size)
        points[0] = lo
        points[-1] = hi
        values: tuple[Any, ...]
        if cast_int:
            values = tuple(np.rint(points).astype(np.int64).tolist())
        else:
            values = tuple(points.tolist())
        if len(set(values)) < size:
            fix = "use size 1" if lo == hi else f"use a smaller size (at most {hi - lo + 1:g})"
            raise SpaceError(
                f"{kind}: size {size} over [{low!r}, {high!r}] gives repeated values"
                f"{' with cast_int=True' if cast_int else ''}; {fix}"
            )
        srt = np.log(np.asarray(values, float)) if log else np.asarray(values, float)
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "log", bool(log))
        object.__setattr__(self, "cast_int", cast_int)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_sorted", srt)

    @property
    def type_name(self) -> str:
        return "logfinrange" if self.log else "finrange"

    @property
    def value_type(self) -> type:  # type: ignore[override]
        return int if self.cast_int else float

    def _args(self) -> tuple[Any, ...]:
        return (self.low, self.high, self.size, self.log, self.cast_int)

    def __repr__(self) -> str:
        extra = ", cast_int=True" if self.cast_int else ""
        return f"{self.type_name}({self.low!r}, {self.high!r}, {self.size}{extra})"

    def _nearest(self, values: Any) -> np.ndarray:
        """Index of the nearest value (in log space for ``logfinrange``)."""
        v = np.clip(np.asarray(values, dtype=float).reshape(-1), self.low, self.high)
        t = np.log(v) if self.log else v
        srt = self._sorted
        right = np.clip(np.searchsorted(srt, t), 1, max(len(srt) - 1, 1))
        left = right - 1
        if len(srt) == 1:
            return np.zeros(t.shape, dtype=np.intp)
        return np.where(np.abs(t - srt[left]) <= np.abs(srt[right] - t), left, right)

    def _sample_one(self, rng: np.random.Generator) -> Any:
        return self.values[min(int(rng.random() * self.size), self.size - 1)]

    def sample(self, rng: np.random.Generator, size: int) -> list[Any]:
        vals = self.values
        return [vals[i] for i in _index_from_unit(rng.random(size), self.size).tolist()]

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        try:
            idx = self._nearest(values)
        except (TypeError, ValueError):
            raise SpaceError(f"{self!r}: cannot encode non-numeric values {values!r}") from None
        return ((idx + 0.5) / self.size)[:, None]

    def _decode(self, X: np.ndarray) -> list[Any]:
        vals = self.values
        return [vals[i] for i in _index_from_unit(X[:, 0], self.size).tolist()]

    def contains(self, value: Any) -> bool:
        value = _native(value)
        if not _is_number(value):
            return False
        nearest = self.values[int(self._nearest([value])[0])]
        return math.isclose(value, nearest, rel_tol=1e-9, abs_tol=1e-12)

    def cast(self, value: Any) -> Any:
        number: int | float
        if self.cast_int:
            number = _parse_int(repr(self), value)
        else:
            number = _parse_float(repr(self), value)
        nearest = self.values[int(self._nearest([number])[0])]
        return nearest if math.isclose(number, nearest, rel_tol=1e-9, abs_tol=1e-12) else number

    def grid(self, n: int) -> list[Any]:
        self._check_grid_n(n)
        return list(self.values)

    def default(self) -> Any:
        return self.values[(self.size - 1) // 2]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "low": self.low,
            "high": self.high,
            "size": self.size,
            "cast_int": self.cast_int,
        }


# --------------------------------------------------------------------------- factories


def uniform(low: float, high: float) -> Float:
    """Floats drawn uniformly from ``[low, high]``."""
    return Float(low, high)


def loguniform(low: float, high: float) -> Float:
    """Floats in ``[low, high]`` (``0 < low``) drawn uniformly in log space."""
    return Float(low, high, log=True)


def randint(low: int, high: int) -> Integer:
    """Integers from ``low`` to ``high``, both inclusive, each equally likely."""
    return Integer(low, high)


def lograndint(low: int, high: int) -> Integer:
    """Integers from ``low`` to ``high`` (``1 <= low``), both inclusive, log-uniform."""
    return Integer(low, high, log=True)


def choice(categories: Sequence[Any]) -> Choice:
    """One of ``categories`` (str/int/float/bool values), unordered."""
    return Choice(categories)


def ordinal(categories: Sequence[Any]) -> Ordinal:
    """One of ``categories``, whose order matters (neighbours are similar)."""
    return Ordinal(categories)


def finrange(low: float, high: float, size: int, cast_int: bool = False) -> FiniteRange:
    """``size`` equally spaced values from ``low`` to ``high`` inclusive (ints if cast_int)."""
    return FiniteRange(low, high, size, log=False, cast_int=cast_int)


def logfinrange(low: float, high: float, size: int, cast_int: bool = False) -> FiniteRange:
    """``size`` geometrically spaced values from ``low`` to ``high`` inclusive (``0 < low``)."""
    return FiniteRange(low, high, size, log=True, cast_int=cast_int)


# --------------------------------------------------------------------------- spaces


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise SpaceError(f"parameter names must be non-empty strings, got {name!r}")
    if name.startswith("-") or "=" in name or any(ch.isspace() for ch in name):
        raise SpaceError(
            f"parameter {name!r}: names become command-line options (--name); "
            "use no whitespace or '=' and do not start with '-'"
        )


def _check_constant(name: str, value: Any) -> None:
    if isinstance(value, np.generic):  # np.float64 is a float subclass, yet not JSON-native
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
        _check_name(name)
        if isinstance(value, Domain):
            try:
                type(value)(*value._args())
            except SpaceError as e:
                raise SpaceError(f"parameter {name!r}: {e}") from None
        else:
            _check_constant(name, value)
    return space


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


def sample_config(space: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One random configuration (constants included, in the space's key order)."""
    return {k: v._sample_one(rng) if isinstance(v, Domain) else v for k, v in space.items()}


def sample_configs(
    space: Mapping[str, Any], rng: np.random.Generator, n: int
) -> list[dict[str, Any]]:
    """``n`` random configurations, drawn with one vectorized call per domain."""
    names = list(space)
    columns = [
        v.sample(rng, n) if isinstance(v, Domain) else itertools.repeat(v, n)
        for v in space.values()
    ]
    return _rows(names, columns, n)


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


class SpaceEncoder:
    """Encodes configurations of one space to rows of the unit cube and back.

    Attributes:
        space: a snapshot of the space.
        names: the hyperparameters, in key order (constants take no columns).
        slices: parameter name -> its columns in the encoding.
        encoded_dim: total number of columns.
    """

    def __init__(self, space: Mapping[str, Any]) -> None:
        validate_space(space)
        self.space = dict(space)
        self.names = [k for k, v in self.space.items() if isinstance(v, Domain)]
        self.slices: dict[str, slice] = {}
        start = 0
        for name in self.names:
            dim = self.space[name].encoded_dim
            self.slices[name] = slice(start, start + dim)
            start += dim
        self.encoded_dim = start

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Configs -> array of shape ``(len(configs), encoded_dim)``; extra keys are ignored."""
        X = np.empty((len(configs), self.encoded_dim))
        for name in self.names:
            try:
                column = [c[name] for c in configs]
            except KeyError:
                i = next(i for i, c in enumerate(configs) if name not in c)
                raise SpaceError(f"config {i} has no value for parameter {name!r}") from None
            try:
                X[:, self.slices[name]] = self.space[name].encode(column)
            except SpaceError as e:
                raise SpaceError(f"parameter {name!r}: {e}") from None
            except (TypeError, ValueError) as e:
                raise SpaceError(f"parameter {name!r}: cannot encode its values ({e})") from None
        return X

    def decode(self, X: Any) -> list[dict[str, Any]]:
        """Array of shape ``(n, encoded_dim)`` -> ``n`` configs (constants added back)."""
        X = _unit_matrix("config space", X, self.encoded_dim)
        n = X.shape[0]
        names = list(self.space)
        columns = [
            v._decode(X[:, self.slices[k]]) if isinstance(v, Domain) else itertools.repeat(v, n)
            for k, v in self.space.items()
        ]
        return _rows(names, columns, n)


@functools.lru_cache(maxsize=64)
def _cached_encoder(key: tuple[Any, ...]) -> SpaceEncoder:
    return SpaceEncoder({name: value for name, _, value in key})


def get_encoder(space: Mapping[str, Any]) -> SpaceEncoder:
    """The :class:`SpaceEncoder` of ``space``, cached for equal spaces."""
    try:
        key = tuple((k, type(v), v) for k, v in space.items())
        hash(key)
    except (TypeError, AttributeError):
        validate_space(space)  # raises the precise error
        return SpaceEncoder(space)  # pragma: no cover - validate_space raised already
    return _cached_encoder(key)


def encoded_dim(space: Mapping[str, Any]) -> int:
    """Number of columns of the encoding of ``space`` (constants take none)."""
    return get_encoder(space).encoded_dim


def encode_configs(space: Mapping[str, Any], configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Configs -> array of shape ``(len(configs), encoded_dim(space))`` in ``[0, 1]``."""
    return get_encoder(space).encode(configs)


def decode_configs(space: Mapping[str, Any], X: Any) -> list[dict[str, Any]]:
    """Rows of the unit cube -> configs (values clipped into range, constants added)."""
    return get_encoder(space).decode(X)


# --------------------------------------------------------------------------- JSON / files


def space_to_json(space: Mapping[str, Any]) -> dict[str, Any]:
    """The space as a JSON-able dict; constants become ``{"type": "constant", "value": v}``."""
    validate_space(space)
    return {
        k: v.to_json() if isinstance(v, Domain) else {"type": "constant", "value": v}
        for k, v in space.items()
    }


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

    A constant may be a bare value; ``"values"`` is an alias of ``"categories"``;
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
        _check_name(name)
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


def load_space_file(path: str | Path) -> dict[str, Any]:
    """Read a config space from a ``.json``, ``.yaml`` or ``.yml`` file (see
    :func:`space_from_json` for the format: a top-level mapping name -> spec).

    Raises:
        SpaceError: missing file, unknown extension, parse error (with line), top level not a
            mapping, or an invalid parameter; the message names the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise SpaceError(f"space file {path}: unknown extension {suffix!r}; use .json, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceError(f"space file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpaceError(f"space file {path} cannot be read: {e}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpaceError(
                f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}"
            ) from None
    else:
        import yaml

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
            f"space file {path}: the top level must be a mapping name -> spec, got {got}"
        )
    try:
        return space_from_json(data)
    except SpaceError as e:
        raise SpaceError(f"space file {path}: {e}") from None


# --------------------------------------------------------------------------- command line


def _converter(parse: Callable[[Any], Any], type_name: str) -> Callable[[str], Any]:
    import argparse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except SpaceError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = type_name
    return convert


def _constant_parser(value: Any) -> tuple[Callable[[Any], Any], str]:
    if isinstance(value, bool):
        return _parse_bool, "bool"
    if isinstance(value, int):
        return (lambda s: _parse_int("int", s)), "int"
    if isinstance(value, float):
        return (lambda s: _parse_float("float", s)), "float"
    if value is None:
        return (lambda s: None if s == "None" else s), "str"
    return str, "str"


def add_to_argparse(parser: argparse.ArgumentParser, space: Mapping[str, Any]) -> None:
    """Add ``--name`` (with ``dest=name``) for every entry of ``space``.

    Each option converts to the entry's type (bools accept True/False/true/false/1/0) and
    defaults to the constant's value, or the domain's :meth:`Domain.default`. Parses back
    exactly what :func:`config_to_argv` writes.
    """
    validate_space(space)
    for name, value in space.items():
        if isinstance(value, Domain):
            parse: Callable[[Any], Any] = value.cast
            type_name = value.value_type.__name__
            default = value.default()
            shown = repr(value)
        else:
            parse, type_name = _constant_parser(value)
            default = value
            shown = "constant"
        help_text = f"{shown} (default: {default!r})".replace("%", "%%")
        try:
            parser.add_argument(
                f"--{name}",
                dest=name,
                type=_converter(parse, type_name),
                default=default,
                help=help_text,
            )
        except Exception as e:  # argparse.ArgumentError: conflicting option string
            raise SpaceError(f"parameter {name!r}: cannot add --{name} to the parser: {e}") from None


def config_to_argv(config: Mapping[str, Any]) -> list[str]:
    """``["--lr", "0.01", "--n_units", "64", ...]`` for a training script's command line.

    Floats are written with ``repr`` (exact round trip), bools as ``True``/``False``,
    ``None`` as ``None``; a value starting with ``-`` is written ``--name=value`` so that it
    is not mistaken for an option.
    """
    argv: list[str] = []
    for name, value in config.items():
        _check_name(name)
        try:
            text = _argv_text(value)
        except SpaceError as e:
            raise SpaceError(f"parameter {name!r}: {e}") from None
        if text.startswith("-"):
            argv.append(f"--{name}={text}")
        else:
            argv += [f"--{name}", text]
    return argv
