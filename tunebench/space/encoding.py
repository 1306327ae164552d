"""Configurations to rows of the unit cube and back, in batches (models work on arrays).

The encoding of each domain is documented in :mod:`tunebench.space`; this module puts the
columns of a whole space side by side and caches one encoder per space.
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
