"""Configurations to rows of the unit cube and back, in batches (models work on arrays).

The encoding of each domain is documented in :mod:`tunebench.space`; this module puts the
columns of a whole space side by side and caches one encoder per space.

**Inactive conditional parameters** (issue 18 asks for "a fixed value plus an activity
indicator, or a kernel that ignores them", and which and why): a parameter inactive in a
configuration is encoded at one fixed value, its domain's default (:attr:`SpaceEncoder.fill`),
inside the unit cube, with no activity column.  Why no indicator: whether a parameter is active
is a function of its parents' columns, which every model sees (for ``momentum`` active when
``optimizer == "momentum"``, the indicator *is* that category's one-hot column), so a kernel
over all columns already tells active from inactive configurations.  Why inside the cube: every
row stays a point of ``[0, 1]^D``, which the acquisition optimizer's moves, the GP's input
warping (it clips to the cube), DEHB's bounds repair and the priors' densities assume.  This is
the single place that decides it: every model (GP searchers, the acquisition optimizer, BORE,
DEHB, PriorBand) gets its rows from :meth:`SpaceEncoder.encode`; KDE/TPE marks inactive cells on
its own model rows (``tunebench.models.kde.INACTIVE``).

Measured (BO, ``benchmarks/conditional_quality.py --methods BO`` on the 8 lcbench development
tasks, 7200 simulated s; final regret IQM [bootstrap 95% band], seeds 0-9, every variant against
one reference per task): default fill (kept) 0.463 [0.187, 0.869]; fill outside the cube, at
-0.5: 0.548 [0.207, 0.987], at -1: 0.571 [0.234, 1.031]; default fill plus a 0/1 activity column
per conditional parameter: 0.330 [0.126, 0.711]; the flattened space: 0.563 [0.194, 1.000].  The
indicator's lower IQM is noise: paired by task and seed it beats the default fill in 35 runs and
loses in 38 (median difference 0), it is worse at 25% of the budget (1.710 vs 1.363), and on
seeds 10-19 it is 0.380 [0.152, 0.887] vs 0.442 [0.192, 0.889] with 33 wins and 37 losses.  The
fill outside the cube is worse.  So the simplest encoding stays.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tunebench.errors import SpaceError
from tunebench.space.conditions import active_config, conditions_of, is_conditional
from tunebench.space.domains import Domain
from tunebench.space.sampling import rows
from tunebench.space.unit_cube import FloatArray, unit_matrix
from tunebench.space.validation import validate_space

__all__ = ["SpaceEncoder", "get_encoder", "encoded_dim", "encode_configs", "decode_configs"]


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
        self.space: dict[str, Any] = dict(space)
        self.names = [k for k, v in self.space.items() if isinstance(v, Domain)]
        self.slices: dict[str, slice] = {}
        start = 0
        for name in self.names:
            dim = self.space[name].encoded_dim
            self.slices[name] = slice(start, start + dim)
            start += dim
        self.encoded_dim = start
        self.conditional = is_conditional(self.space)
        #: the value an inactive (absent) conditional parameter is encoded as: its default
        self.fill: dict[str, Any] = {name: self.space[name].default() for name in conditions_of(self.space)}
        self._conditions = list(conditions_of(self.space).items())

    def _canonical(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` holds no inactive parameter: the condition of each conditional
        parameter it holds is true on it (then, parents first, each of them is active; fast, for
        the usual case of configs from sampling or decoding)."""
        return all(condition.holds(config) for name, condition in self._conditions if name in config)

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Configs -> array of shape ``(len(configs), encoded_dim)``; extra keys are ignored.

        A conditional parameter inactive in a config is encoded as its domain's default, also
        when the config carries a value for it (a config given by hand, or one whose parent
        was changed): a fixed point, so every configuration has one encoding (the rows of equal
        configurations are equal, which the exclusion of evaluated configs relies on) and
        models see the same value for every inactive case; no activity column is added, since
        whether it is active is a function of its parents' columns, which the model sees."""
        if self.conditional:
            configs = [c if self._canonical(c) else active_config(self.space, c) for c in configs]
        X = np.empty((len(configs), self.encoded_dim))
        fill = self.fill
        for name in self.names:
            try:
                column = [c[name] for c in configs]
            except KeyError:
                if name in fill:
                    default = fill[name]
                    column = [c.get(name, default) for c in configs]
                else:
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
        """Array of shape ``(n, encoded_dim)`` -> ``n`` configs (constants added back, inactive
        conditional parameters left out)."""
        M = unit_matrix("config space", X, self.encoded_dim)
        n = M.shape[0]
        names = list(self.space)
        columns: list[Iterable[Any]] = [
            v._decode(M[:, self.slices[k]]) if isinstance(v, Domain) else itertools.repeat(v, n)
            for k, v in self.space.items()
        ]
        configs = rows(names, columns, n)
        if self.conditional:
            return [active_config(self.space, c) for c in configs]
        return configs


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


def encode_configs(space: Mapping[str, Any], configs: Sequence[Mapping[str, Any]]) -> FloatArray:
    """Configs -> array of shape ``(len(configs), encoded_dim(space))`` in ``[0, 1]``."""
    return get_encoder(space).encode(configs)


def decode_configs(space: Mapping[str, Any], X: Any) -> list[dict[str, Any]]:
    """Rows of the unit cube -> configs (values clipped into range, constants added)."""
    return get_encoder(space).decode(X)
