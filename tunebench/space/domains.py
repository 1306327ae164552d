"""The domains of a config space and their constructors (:func:`uniform`, :func:`choice`, ...).

Building a domain, reading a value from the command line (:meth:`Domain.cast`), its default
and :meth:`Domain.contains` need no numpy: a training script that only parses its arguments
does not pay for importing it. The batch methods (:meth:`Domain.sample`, :meth:`Domain.encode`,
:meth:`Domain.decode`, :meth:`Domain.grid`) run on arrays: they call into
:mod:`tunebench.space.unit_cube`, imported on their first use.
"""

from __future__ import annotations

import bisect
import importlib.util
import math
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tunebench.errors import SpaceError
from tunebench.space.conditions import Condition
from tunebench.space.values import (
    FALSE_TEXT,
    TRUE_TEXT,
    argv_text,
    check_integer,
    check_log_low,
    check_number,
    check_order,
    is_numpy_array,
    native,
    parse_float,
    parse_int,
)
from tunebench.types import is_number

if TYPE_CHECKING:  # pragma: no cover
    from tunebench.space import unit_cube
    from tunebench.space.unit_cube import FloatArray, Generator

__all__ = [
    "DOMAIN_TYPES",
    "Domain",
    "Float",
    "Integer",
    "Choice",
    "Ordinal",
    "FiniteRange",
    "uniform",
    "loguniform",
    "randint",
    "lograndint",
    "choice",
    "ordinal",
    "finrange",
    "logfinrange",
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


def _lazy_module(name: str) -> ModuleType:
    """The module ``name``, executed (with its imports) on the first access to one of its
    attributes, and an ordinary module from then on (:class:`importlib.util.LazyLoader`)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:  # pragma: no cover - part of this package
        raise ImportError(f"cannot find {name}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


if not TYPE_CHECKING:
    # deferred: keeps numpy off the training-script import path. The batch methods (sample,
    # encode, decode, grid) call the array kernels of unit_cube, which is executed, and numpy
    # imported, on their first call; later calls are plain attribute lookups.
    unit_cube = _lazy_module("tunebench.space.unit_cube")


class Domain:
    """A set of values to search for one hyperparameter. Immutable and hashable.

    Build domains with the factory functions (:func:`uniform`, :func:`choice`, ...); give one a
    condition on other parameters with :meth:`when`.
    """

    __slots__ = ("_condition",)

    # -- conditions ----------------------------------------------------------
    @property
    def condition(self) -> Condition | None:
        """When the parameter exists (see :mod:`tunebench.space.conditions`); None: always."""
        return getattr(self, "_condition", None)

    def when(self, condition: Mapping[str, Any] | Condition | None = None, /, **clauses: Any) -> Domain:
        """This domain with a condition: the parameter exists only in configurations where it
        holds, e.g. ``uniform(0.5, 0.99).when(optimizer="sgd")``,
        ``lograndint(16, 256).when(n_layers={">=": 2})``, ``.when({"optimizer": ["sgd", "rmsprop"]})``
        (a mapping or keyword arguments: parent -> value, list of values, or ``{operator: operand}``).

        Returns a new domain (domains are immutable); calling :meth:`when` on a conditional domain
        replaces its condition. Whether the parents exist is checked with the whole space
        (:func:`tunebench.space.validate_space`).

        Raises:
            SpaceError: the condition is malformed (names the problem).
        """
        if condition is not None and clauses:
            raise SpaceError("when(): give the condition as one mapping or as keyword arguments, not both")
        parsed = Condition.parse(condition if condition is not None else clauses, where=repr(self))
        return _with_condition(self, parsed)

    # -- subclass interface ------------------------------------------------
    @property
    def value_type(self) -> type:
        """The Python type of the values (what ``argparse`` converts to)."""
        raise NotImplementedError

    @property
    def encoded_dim(self) -> int:
        """Number of columns of the unit-cube encoding."""
        return 1

    @property
    def cardinality(self) -> int | None:
        """Number of distinct values, None for a continuous domain."""
        raise NotImplementedError

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

    def _sample_one(self, rng: Generator) -> Any:
        """One draw: the same value as ``sample(rng, 1)[0]``, without building arrays."""
        return self.sample(rng, 1)[0]

    def sample(self, rng: Generator, size: int) -> list[Any]:
        """``size`` independent draws, as a list of Python-native values."""
        raise NotImplementedError

    def encode(self, values: Sequence[Any]) -> FloatArray:
        """Values -> array of shape ``(len(values), encoded_dim)`` in ``[0, 1]``."""
        raise NotImplementedError

    def decode(self, X: Any) -> list[Any]:
        """Array of shape ``(n, encoded_dim)`` (or ``(n,)`` if 1-d) -> ``n`` native values.

        Points outside ``[0, 1]`` are clipped, so any finite array decodes to valid values.
        """
        return self._decode(unit_cube.unit_matrix(self.type_name, X, self.encoded_dim))

    def _decode(self, X: FloatArray) -> list[Any]:
        """:meth:`decode` of an array already checked: finite, shape ``(n, encoded_dim)``."""
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
        count = native(n)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SpaceError(f"{self!r}: grid needs n >= 1 points, got {n!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} domains are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} domains are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        if self.condition is not None:
            return (_rebuild_conditional, (type(self), self._args(), self.condition))
        return (type(self), self._args())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Domain):
            return NotImplemented
        return type(self) is type(other) and self._key() == other._key() and self.condition == other.condition

    def __hash__(self) -> int:
        condition = self.condition
        return hash(self._key()) if condition is None else hash((self._key(), condition))

    def __repr__(self) -> str:
        return f"{self.type_name}({', '.join(repr(a) for a in self._args()[:2])})"


def _with_condition(domain: Domain, condition: Condition | None) -> Domain:
    """A copy of ``domain`` with ``condition`` (its slots copied; domains are immutable)."""
    new = object.__new__(type(domain))
    for cls in type(domain).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot != "_condition" and hasattr(domain, slot):
                object.__setattr__(new, slot, getattr(domain, slot))
    if condition is not None:
        object.__setattr__(new, "_condition", condition)
    return new


def _rebuild_conditional(cls: type[Domain], args: tuple[Any, ...], condition: Condition) -> Domain:
    """Unpickle a conditional domain."""
    return _with_condition(cls(*args), condition)


class Float(Domain):
    """Floats in ``[low, high]``, uniform or (``log=True``) log-uniform."""

    __slots__ = ("low", "high", "log", "_a", "_span")
    low: float
    high: float
    log: bool
    _a: float  # start of the range (of its logarithm for log=True)
    _span: float  # its length

    def __init__(self, low: float, high: float, log: bool = False) -> None:
        kind = "loguniform" if log else "uniform"
        low, high = check_number(kind, "low", low), check_number(kind, "high", high)
        check_order(kind, low, high)
        if log:
            check_log_low(kind, low, "uniform")
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
    def value_type(self) -> type:
        return float

    @property
    def cardinality(self) -> int | None:
        return None

    @property
    def type_name(self) -> str:
        return "loguniform" if self.log else "uniform"

    def _args(self) -> tuple[Any, ...]:
        return (self.low, self.high, self.log)

    def _from_unit(self, x: FloatArray) -> list[float]:
        return unit_cube.float_from_unit(x, self.low, self.high, self._a, self._span, self.log)

    def _sample_one(self, rng: Generator) -> float:
        v = self._a + self._span * rng.random()
        if self.log:
            v = math.exp(v)
        return min(max(v, self.low), self.high)

    def sample(self, rng: Generator, size: int) -> list[float]:
        return self._from_unit(rng.random(size))

    def encode(self, values: Sequence[Any]) -> FloatArray:
        return unit_cube.float_to_unit(values, self.low, self.high, self._a, self._span, self.log)

    def _decode(self, X: FloatArray) -> list[float]:
        return self._from_unit(X[:, 0])

    def contains(self, value: Any) -> bool:
        value = native(value)
        return is_number(value) and self.low <= value <= self.high

    def cast(self, value: Any) -> float:
        return parse_float(repr(self), value)

    def grid(self, n: int) -> list[float]:
        self._check_grid_n(n)
        if n == 1:
            return [self.default()]
        return unit_cube.float_grid(n, self.low, self.high, self._a, self._span, self.log)

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
    low: int
    high: int
    log: bool
    _n: int  # number of integers
    _a: float  # log(low) for log=True, else 0
    _span: float  # log(high + 1) - log(low) for log=True, else 0

    def __init__(self, low: int, high: int, log: bool = False) -> None:
        kind = "lograndint" if log else "randint"
        lo = check_integer(kind, "low", low)
        hi = check_integer(kind, "high", high)
        check_order(kind, lo, hi)
        if log:
            check_log_low(kind, lo, "randint")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "log", bool(log))
        object.__setattr__(self, "_n", hi - lo + 1)
        a = math.log(lo) if log else 0.0
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_span", math.log(hi + 1) - a if log else 0.0)

    @property
    def value_type(self) -> type:
        return int

    @property
    def cardinality(self) -> int | None:
        return self._n

    @property
    def type_name(self) -> str:
        return "lograndint" if self.log else "randint"

    def _args(self) -> tuple[Any, ...]:
        return (self.low, self.high, self.log)

    def _from_unit(self, x: FloatArray) -> list[int]:
        return unit_cube.int_from_unit(x, self.low, self.high, self._n, self._a, self._span, self.log)

    def _sample_one(self, rng: Generator) -> int:
        u = rng.random()
        if self.log:
            v = math.floor(math.exp(self._a + u * self._span))
        else:
            v = self.low + math.floor(u * self._n)
        return min(max(v, self.low), self.high)

    def sample(self, rng: Generator, size: int) -> list[int]:
        return self._from_unit(rng.random(size))

    def encode(self, values: Sequence[Any]) -> FloatArray:
        return unit_cube.int_to_unit(values, self.low, self.high, self._n, self._a, self._span, self.log)

    def _decode(self, X: FloatArray) -> list[int]:
        return self._from_unit(X[:, 0])

    def contains(self, value: Any) -> bool:
        value = native(value)
        if not is_number(value) or not self.low <= value <= self.high:
            return False
        return isinstance(value, int) or float(value).is_integer()

    def cast(self, value: Any) -> int:
        return parse_int(repr(self), value)

    def grid(self, n: int) -> list[int]:
        self._check_grid_n(n)
        if n >= self._n:
            return list(range(self.low, self.high + 1))
        if n == 1:
            return [self.default()]
        return unit_cube.int_grid(n, self.low, self.high, self.log)

    def default(self) -> int:
        mid = math.sqrt(self.low) * math.sqrt(self.high) if self.log else (self.low + self.high) / 2
        return min(max(round(mid), self.low), self.high)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_name, "low": self.low, "high": self.high}


class _Categories(Domain):
    """Shared by :class:`Choice` and :class:`Ordinal`: a finite list of categories."""

    __slots__ = ("categories", "_value_type", "_index", "_text", "_aliases", "_numbers")
    categories: tuple[Any, ...]
    _value_type: type
    _index: dict[Any, int]  # category -> its position
    _text: dict[str, Any]  # command-line text -> category
    _aliases: dict[str, Any]  # lenient spellings of bool categories -> category
    _numbers: dict[float, Any]  # float value of a numeric category -> category
    _kind = ""

    def __init__(self, categories: Sequence[Any]) -> None:
        kind = self._kind
        if isinstance(categories, (str, bytes, Mapping)) or not (
            isinstance(categories, Sequence) or is_numpy_array(categories)
        ):
            hint = " (sets have no fixed order)" if isinstance(categories, (set, frozenset)) else ""
            raise SpaceError(f"{kind}: categories must be a list, got {categories!r}{hint}")
        cats = tuple(native(c) for c in categories)
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
            t = argv_text(c)
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
            for alias in (TRUE_TEXT if c else FALSE_TEXT)
        }
        vtype: type
        if all(isinstance(c, bool) for c in cats):
            vtype = bool
        elif all(isinstance(c, int) and not isinstance(c, bool) for c in cats):
            vtype = int
        elif all(is_number(c) for c in cats):
            vtype = float
        else:
            vtype = str
        numbers = {float(c): c for c in cats if is_number(c)}
        object.__setattr__(self, "categories", cats)
        object.__setattr__(self, "_value_type", vtype)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_aliases", aliases)
        object.__setattr__(self, "_numbers", numbers)

    @property
    def value_type(self) -> type:
        return self._value_type

    @property
    def cardinality(self) -> int | None:
        return len(self.categories)

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

    def _sample_one(self, rng: Generator) -> Any:
        k = len(self.categories)
        return self.categories[min(int(rng.random() * k), k - 1)]

    def sample(self, rng: Generator, size: int) -> list[Any]:
        return unit_cube.pick(self.categories, rng.random(size))

    def contains(self, value: Any) -> bool:
        if type(value) is str:  # the common case, checked per parameter per simulated trial:
            return value in self._index  # a str equals only a str category
        value = native(value)
        if not self._hashable_in(value):
            return False
        cat = self.categories[self._index[value]]
        return isinstance(value, bool) == isinstance(cat, bool) and isinstance(
            value, str
        ) == isinstance(cat, str)

    def cast(self, value: Any) -> Any:
        value = native(value)
        if not isinstance(value, str) and self.contains(value):
            return self.categories[self._index[value]]
        text: str | None
        try:
            text = value if isinstance(value, str) else argv_text(value)
        except SpaceError:
            text = None
        if text is not None:
            stripped = text.strip()
            for key in (text, stripped):
                if key in self._text:
                    return self._text[key]
            if stripped.lower() in self._aliases:
                return self._aliases[stripped.lower()]
            number: float | None
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
    def encoded_dim(self) -> int:
        return len(self.categories)

    def encode(self, values: Sequence[Any]) -> FloatArray:
        return unit_cube.one_hot(self._indices(values), len(self.categories))

    def _decode(self, X: FloatArray) -> list[Any]:
        return unit_cube.pick_argmax(self.categories, X)

    def default(self) -> Any:
        return self.categories[0]


class Ordinal(_Categories):
    """Ordered categories; category ``i`` of ``k`` is encoded at ``(i + 0.5) / k``."""

    __slots__ = ()
    _kind = "ordinal"

    def encode(self, values: Sequence[Any]) -> FloatArray:
        return unit_cube.index_centres(self._indices(values), len(self.categories))

    def _decode(self, X: FloatArray) -> list[Any]:
        return unit_cube.pick(self.categories, X[:, 0])

    def default(self) -> Any:
        return self.categories[(len(self.categories) - 1) // 2]


def _spaced(low: float, high: float, size: int, log: bool) -> list[float]:
    """``size`` points from ``low`` to ``high``, equally spaced (in log space if ``log``), the
    ends exactly ``low`` and ``high``: the arithmetic of ``numpy.linspace``, in plain Python."""
    a, b = (math.log(low), math.log(high)) if log else (low, high)
    points = [a]
    if size > 1:
        delta = b - a
        step = delta / (size - 1)
        if step == 0:  # as numpy does for steps that underflow to 0
            points = [i / (size - 1) * delta + a for i in range(size)]
        else:
            points = [i * step + a for i in range(size)]
    if log:
        points = [math.exp(p) for p in points]
    points[0] = low
    points[-1] = high
    return points


class FiniteRange(Domain):
    """``size`` values from ``low`` to ``high`` inclusive, equally spaced (geometrically with
    ``log=True``), rounded to ints with ``cast_int=True``. Encoded like an ordinal."""

    __slots__ = ("low", "high", "size", "log", "cast_int", "values", "_sorted", "_sorted_array")
    low: float
    high: float
    size: int
    log: bool
    cast_int: bool
    values: tuple[Any, ...]
    _sorted: tuple[float, ...]  # the values as floats (their logarithms for log=True), ascending
    _sorted_array: FloatArray | None  # the same as an array, made on first use by the batch methods

    def __init__(
        self, low: float, high: float, size: int, log: bool = False, cast_int: bool = False
    ) -> None:
        kind = "logfinrange" if log else "finrange"
        low, high = check_number(kind, "low", low), check_number(kind, "high", high)
        check_order(kind, low, high)
        if log:
            check_log_low(kind, low, "finrange")
        lo, hi = float(low), float(high)
        size = native(size)
        if isinstance(size, bool) or not isinstance(size, int):
            raise SpaceError(f"{kind}: size must be an integer >= 1, got {size!r}")
        if size < 1:
            raise SpaceError(f"{kind}: size must be >= 1, got {size}; give the number of values")
        cast_int = native(cast_int)
        if not isinstance(cast_int, bool):
            raise SpaceError(f"{kind}: cast_int must be True or False, got {cast_int!r}")
        if cast_int and not (lo.is_integer() and hi.is_integer()):
            raise SpaceError(
                f"{kind}: cast_int=True needs integer bounds, got low {low!r} and high {high!r}"
            )
        points = _spaced(lo, hi, size, log)
        values: tuple[Any, ...] = tuple(round(p) for p in points) if cast_int else tuple(points)
        if len(set(values)) < size:
            fix = "use size 1" if lo == hi else f"use a smaller size (at most {hi - lo + 1:g})"
            raise SpaceError(
                f"{kind}: size {size} over [{low!r}, {high!r}] gives repeated values"
                f"{' with cast_int=True' if cast_int else ''}; {fix}"
            )
        srt = tuple(math.log(float(v)) if log else float(v) for v in values)
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "log", bool(log))
        object.__setattr__(self, "cast_int", cast_int)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_sorted", srt)
        object.__setattr__(self, "_sorted_array", None)

    @property
    def value_type(self) -> type:
        return int if self.cast_int else float

    @property
    def cardinality(self) -> int | None:
        return self.size

    @property
    def type_name(self) -> str:
        return "logfinrange" if self.log else "finrange"

    def _args(self) -> tuple[Any, ...]:
        return (self.low, self.high, self.size, self.log, self.cast_int)

    def __repr__(self) -> str:
        extra = ", cast_int=True" if self.cast_int else ""
        return f"{self.type_name}({self.low!r}, {self.high!r}, {self.size}{extra})"

    def _nearest_value(self, number: float) -> Any:
        """The value nearest to ``number`` (clipped into range; in log space for ``logfinrange``).
        One value at a time, in plain Python: the rule of ``unit_cube.nearest_index``."""
        v = min(max(float(number), self.low), self.high)
        t = math.log(v) if self.log else v
        srt = self._sorted
        if len(srt) == 1:
            return self.values[0]
        right = min(max(bisect.bisect_left(srt, t), 1), len(srt) - 1)
        left = right - 1
        return self.values[left if abs(t - srt[left]) <= abs(srt[right] - t) else right]

    def _sample_one(self, rng: Generator) -> Any:
        return self.values[min(int(rng.random() * self.size), self.size - 1)]

    def sample(self, rng: Generator, size: int) -> list[Any]:
        return unit_cube.pick(self.values, rng.random(size))

    def encode(self, values: Sequence[Any]) -> FloatArray:
        points = self._sorted_array
        if points is None:
            points = unit_cube.as_points(self._sorted)
            object.__setattr__(self, "_sorted_array", points)
        try:
            idx = unit_cube.nearest_index(values, self.low, self.high, points, self.log)
        except (TypeError, ValueError):
            raise SpaceError(f"{self!r}: cannot encode non-numeric values {values!r}") from None
        return unit_cube.index_centres(idx, self.size)

    def _decode(self, X: FloatArray) -> list[Any]:
        return unit_cube.pick(self.values, X[:, 0])

    def contains(self, value: Any) -> bool:
        value = native(value)
        if not is_number(value):
            return False
        nearest = self._nearest_value(value)
        return math.isclose(value, nearest, rel_tol=1e-9, abs_tol=1e-12)

    def cast(self, value: Any) -> Any:
        number: int | float
        if self.cast_int:
            number = parse_int(repr(self), value)
        else:
            number = parse_float(repr(self), value)
        nearest = self._nearest_value(number)
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
