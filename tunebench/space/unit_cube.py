"""The numpy side of the domains: batches of values to and from the unit cube ``[0, 1]``.

These are the array kernels behind :meth:`Domain.sample`, :meth:`Domain.encode`,
:meth:`Domain.decode` and :meth:`Domain.grid` (see the encoding rules in
:mod:`tunebench.space`). They take a domain's numbers, not the domain, so that this module
imports nothing of :mod:`tunebench.space.domains`, which imports it lazily: the domains'
constructors, ``cast`` and ``default`` stay free of numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from tunebench.errors import SpaceError
from tunebench.space.values import dedupe

#: A float array: encodings (``(n, dim)``) and columns of points of ``[0, 1]`` (``(n,)``).
FloatArray = npt.NDArray[np.float64]
#: Indices into a domain's values.
IndexArray = npt.NDArray[np.intp]
#: The random generator the domains sample with (the numpy type, named here for the modules
#: that only annotate with it and must not import numpy).
Generator = np.random.Generator

T = TypeVar("T")


def unit_matrix(kind: str, X: Any, dim: int) -> FloatArray:
    """``X`` as a finite float array of shape ``(n, dim)``; ``(n,)`` is accepted if dim is 1."""
    M: FloatArray = np.asarray(X, dtype=float)
    if M.ndim == 1 and dim == 1:
        M = M[:, None]
    if M.ndim != 2 or M.shape[1] != dim:
        raise SpaceError(f"{kind}: cannot decode an array of shape {M.shape}; expected (n, {dim})")
    if not np.isfinite(M).all():
        raise SpaceError(f"{kind}: cannot decode non-finite values (NaN or inf)")
    return M


def index_from_unit(x: FloatArray, k: int) -> IndexArray:
    """Index of the equal share of ``[0, 1]`` that each ``x`` falls in, for ``k`` shares."""
    return np.clip(np.floor(x * k), 0, k - 1).astype(np.intp)


def pick(items: Sequence[T], x: FloatArray) -> list[T]:
    """The item of each ``x``, every item owning an equal share of ``[0, 1]``."""
    return [items[i] for i in index_from_unit(x, len(items)).tolist()]


def pick_argmax(items: Sequence[T], X: FloatArray) -> list[T]:
    """The item of each row of a one-hot style ``(n, len(items))`` array: its largest column."""
    return [items[i] for i in np.argmax(X, axis=1).tolist()]


def one_hot(indices: Sequence[int], k: int) -> FloatArray:
    """``(len(indices), k)``: a 1 in column ``indices[i]`` of row ``i``, zeros elsewhere."""
    X = np.zeros((len(indices), k))
    X[np.arange(len(indices)), indices] = 1.0
    return X


def index_centres(indices: Sequence[int] | IndexArray, k: int) -> FloatArray:
    """``(n, 1)``: index ``i`` of ``k`` at the centre ``(i + 0.5) / k`` of its share."""
    idx = np.asarray(indices, dtype=float)
    return ((idx + 0.5) / k)[:, None]


# --------------------------------------------------------------------------- Float


def float_from_unit(x: FloatArray, low: float, high: float, a: float, span: float, log: bool) -> list[float]:
    """Floats of ``[low, high]`` for points ``x`` of ``[0, 1]`` (clipped); ``a`` and ``span``
    are the start and length of the range (of its logarithm if ``log``). The ends map exactly
    to ``low`` and ``high``."""
    x = np.clip(x, 0.0, 1.0)
    v = a + x * span
    if log:
        v = np.exp(v)
    v = np.where(x <= 0.0, low, np.where(x >= 1.0, high, v))
    out: list[float] = np.clip(v, low, high).tolist()
    return out


def float_to_unit(values: Sequence[Any], low: float, high: float, a: float, span: float,
                  log: bool) -> FloatArray:
    """``(n, 1)``: the inverse of :func:`float_from_unit` (values clipped into range)."""
    v = np.clip(np.asarray(values, dtype=float).reshape(-1), low, high)
    if span == 0.0:
        return np.full((v.shape[0], 1), 0.5)
    t = np.log(v) if log else v
    unit: FloatArray = np.clip((t - a) / span, 0.0, 1.0)[:, None]
    return unit


def float_grid(n: int, low: float, high: float, a: float, span: float, log: bool) -> list[float]:
    """``n`` points equally spaced over ``[0, 1]``, as distinct floats (``n >= 2``)."""
    return dedupe(float_from_unit(np.linspace(0.0, 1.0, n), low, high, a, span, log))


# --------------------------------------------------------------------------- Integer


def int_from_unit(x: FloatArray, low: int, high: int, n: int, a: float, span: float, log: bool) -> list[int]:
    """Integers of ``[low, high]`` for points ``x`` of ``[0, 1]`` (clipped): ``n`` equal shares,
    or with ``log`` the share ``[log v, log(v + 1))`` of ``[a, a + span)`` for integer ``v``."""
    x = np.clip(x, 0.0, 1.0)
    if log:
        v = np.floor(np.exp(a + x * span))
    else:
        v = low + np.floor(x * n)
    out: list[int] = np.clip(v, low, high).astype(np.int64).tolist()
    return out


def int_to_unit(values: Sequence[Any], low: int, high: int, n: int, a: float, span: float,
                log: bool) -> FloatArray:
    """``(n, 1)``: each integer at the centre of its share (see :func:`int_from_unit`)."""
    v = np.clip(np.asarray(values, dtype=float).reshape(-1), low, high)
    if log:
        centre = 0.5 * (np.log(v) + np.log(v + 1.0))
        x = (centre - a) / span
    else:
        x = (v - low + 0.5) / n
    unit: FloatArray = np.clip(x, 0.0, 1.0)[:, None]
    return unit


def int_grid(n: int, low: int, high: int, log: bool) -> list[int]:
    """At most ``n`` distinct integers spread (geometrically if ``log``) from low to high."""
    points = np.geomspace(low, high, n) if log else np.linspace(low, high, n)
    ints: list[int] = np.clip(np.rint(points), low, high).astype(np.int64).tolist()
    return dedupe(ints)


# --------------------------------------------------------------------------- FiniteRange


def as_points(points: Sequence[float]) -> FloatArray:
    """A domain's sorted points (see :func:`nearest_index`) as an array, made once per domain."""
    return np.asarray(points, dtype=float)


def nearest_index(values: Any, low: float, high: float, points: FloatArray, log: bool) -> IndexArray:
    """Index of the nearest of the sorted ``points`` to each value (clipped into ``[low, high]``;
    compared in log space if ``log``, where ``points`` are logarithms)."""
    v = np.clip(np.asarray(values, dtype=float).reshape(-1), low, high)
    t = np.log(v) if log else v
    if len(points) == 1:
        return np.zeros(t.shape, dtype=np.intp)
    right = np.clip(np.searchsorted(points, t), 1, len(points) - 1)
    left = right - 1
    nearest: IndexArray = np.where(np.abs(t - points[left]) <= np.abs(points[right] - t), left, right)
    return nearest
