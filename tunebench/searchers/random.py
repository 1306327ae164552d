"""Random search: configurations drawn independently from the config space."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from tunebench.searchers.base import Searcher
from tunebench.space import Domain, active_config, sample_configs, space_cardinality, validate_space
from tunebench.types import Config

logger = logging.getLogger(__name__)

#: random configurations drawn at once
BATCH = 64

__all__ = ["RandomSearcher", "canonical_config", "complete_config"]


def _json_default(value: Any) -> Any:
    # numpy scalars (np.float64, np.int64, np.bool_) -> python scalars
    item = getattr(value, "item", None)
    if item is not None:
        return item()
    return repr(value)


try:  # ~20x faster than the standard library for this (one call per suggested config)
    import orjson as _orjson

    _SORTED = _orjson.OPT_SORT_KEYS | _orjson.OPT_SERIALIZE_NUMPY | _orjson.OPT_NON_STR_KEYS
except ImportError:  # pragma: no cover - orjson is a dependency
    # the module or None (then canonical_config uses json): mypy types the name as the module
    _orjson = None  # type: ignore[assignment]  # a module or None: checked before each use


def canonical_config(config: Config) -> str:
    """A canonical compact JSON string of ``config`` (sorted keys), used to detect duplicates
    (the same string with or without orjson)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(config, option=_SORTED, default=_json_default).decode()
        except TypeError:
            pass
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def complete_config(config_space: dict[str, Any], point: Config) -> Config:
    """``point`` completed with the default values (constants included) of the missing keys.

    Raises:
        ValueError: ``point`` has keys that are not in ``config_space``.
    """
    unknown = sorted(set(point) - set(config_space))
    if unknown:
        raise ValueError(
            f"point to evaluate {point!r} has keys not in the config space: {', '.join(unknown)}"
            f" (the space has: {', '.join(sorted(config_space))})"
        )
    # every default, inactive ones included, then the point, then (a conditional space) what the
    # point makes inactive dropped
    full = {k: v.default() if isinstance(v, Domain) else v for k, v in config_space.items()}
    full.update(point)
    return active_config(config_space, {name: full[name] for name in config_space})


class RandomSearcher(Searcher):
    """Proposes ``points_to_evaluate`` first, then configurations sampled uniformly at random
    (each domain with its own distribution, e.g. log-uniform for ``loguniform``).

    A sampled configuration identical to one proposed before is re-drawn (at most
    ``max_retries`` times, after which the duplicate is accepted: small discrete spaces
    can be exhausted). ``points_to_evaluate`` are always proposed as given, even if they repeat.

    Args:
        config_space: name -> domain or constant.
        metric: name of the metric (unused by random search, kept for the common interface).
        mode: ``"min"`` or ``"max"``.
        seed: seed of the random number generator.
        points_to_evaluate: configurations to propose first, in order; missing keys take the
            space's default values.
        max_retries: how many times a duplicate sample is re-drawn before being accepted.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        points_to_evaluate: list[Config] | None = None,
        max_retries: int = 100,
    ):
        super().__init__(config_space, metric, mode, seed)
        validate_space(config_space)
        self.max_retries = max_retries
        self._points = [complete_config(config_space, p) for p in points_to_evaluate or []]
        self._next_point = 0
        self._rng = np.random.default_rng(seed)
        self._seen: set[str] = set()
        self._buffer: list[Config] = []  # random configurations drawn ahead, next one last
        self._cardinality = space_cardinality(config_space)

    def suggest(self, trial_id: int) -> Config:
        """Called for each new trial: returns the next point to evaluate, else a fresh random
        configuration (never ``None``)."""
        if self._next_point < len(self._points):
            config = dict(self._points[self._next_point])
            self._next_point += 1
            self._seen.add(canonical_config(config))
            return config
        if self._cardinality is not None and len(self._seen) >= self._cardinality:
            return self._draw()  # every configuration was proposed already: duplicates it is
        for _ in range(self.max_retries + 1):
            config = self._draw()
            key = canonical_config(config)
            if key not in self._seen:
                break
        else:
            logger.debug("no new configuration after %d draws, proposing a duplicate", self.max_retries)
        self._seen.add(key)
        return config

    def _draw(self) -> Config:
        """The next random configuration. Drawn :data:`BATCH` at a time with one vectorized call
        per domain (a single draw costs about as much as a whole batch); the undrawn rest is part
        of the state, so a restored searcher continues identically."""
        if not self._buffer:
            self._buffer = sample_configs(self.config_space, self._rng, BATCH)
            self._buffer.reverse()
        return self._buffer.pop()

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: RNG state, position in ``points_to_evaluate``, configs proposed."""
        return {
            "rng": self._rng.bit_generator.state,
            "next_point": self._next_point,
            "seen": sorted(self._seen),
            "buffer": self._buffer,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""
        self._rng.bit_generator.state = state["rng"]
        self._next_point = int(state["next_point"])
        self._seen = set(state["seen"])
        self._buffer = [dict(c) for c in state.get("buffer", [])]
