"""TPE-style kernel density searcher, as in BOHB (Falkner et al., ICML 2018, Section 3.1).

Observations are kept per resource level (the value of ``resource_attr`` in each result). To
propose a configuration, the searcher takes the **highest** level with enough observations,
splits them into the best ``gamma`` fraction ("good") and the rest ("bad"), fits a product
kernel density to each (:class:`tunebench.models.kde.ProductKDE`, on the hyperparameters
encoded in the unit cube), draws ``n_candidates`` candidates from the good density with its
bandwidths widened by ``bandwidth_factor`` and returns the candidate that maximizes
``l(x) / g(x)``. In a conditional space, each conditional parameter's density is fitted on the
trials where it is active (see :mod:`tunebench.models.kde`). A ``random_fraction`` of the
proposals (and every proposal while no level has enough observations) is drawn at random
instead, which keeps the search global.

A level has enough observations when both sets have at least ``min_points`` members:
``n_good = max(min_points, floor(gamma * n))`` and ``n - n_good >= min_points``.
``min_points`` defaults to the number of hyperparameters + 1 (BOHB's default). Since a level
never loses observations, the model never goes back to a lower level once a higher one has
enough: observations below the highest such level are dropped (and no longer recorded).

The searcher relies only on the :class:`~tunebench.searchers.base.Searcher` contract, so it
works under FIFO (single fidelity: one level), ASHA / asynchronous Hyperband (BOHB) and
synchronous Hyperband (SyncBOHB). Pending evaluations are not modelled (BOHB relies on its
random draws for diversity).

Cost: :meth:`KDESearcher.on_result` is a dictionary insertion; :meth:`KDESearcher.suggest`
refits the two densities only when the chosen level got new observations and scores the
candidates in one vectorized pass (about a millisecond with a few hundred observations).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tunebench.models.kde import DEFAULT_MIN_BANDWIDTH, INACTIVE, ProductKDE
from tunebench.searchers.base import Searcher
from tunebench.searchers.random import RandomSearcher, complete_config
from tunebench.space import Choice, get_encoder, validate_space
from tunebench.space.conditions import conditions_of
from tunebench.types import Config, Result, float_from_json, json_float, to_minimize

logger = logging.getLogger(__name__)

__all__ = ["KDESearcher"]

_SINGLE_LEVEL = 0  #: level of every observation when there is no resource attribute
#: random draws tried for a configuration not proposed before
RANDOM_TRIES = 10


class KDESearcher(Searcher):
    """Proposes configurations with a TPE-style density ratio ``l(x) / g(x)`` (BOHB's model).

    Args:
        config_space: name -> domain or constant.
        metric: name of the metric to optimize.
        mode: ``"min"`` or ``"max"``.
        seed: seed of the random number generators.
        resource_attr: name of the resource in results (e.g. ``"epoch"``); observations are
            grouped by its value. ``None``: one level (each trial's latest value).
        points_to_evaluate: configurations proposed first, in order (missing keys take the
            space's defaults).
        gamma: fraction of the observations of a level that form the good set (BOHB's
            ``top_n_percent / 100``), in ``(0, 1)``.
        min_points: minimum size of the good and of the bad set before a level is used
            (default: number of hyperparameters + 1).
        random_fraction: fraction of proposals drawn at random, in ``[0, 1]``.
        n_candidates: candidates drawn from the good density per proposal.
        bandwidth_factor: widening of the good density's bandwidths when drawing candidates.
        min_bandwidth: lower bound of every kernel bandwidth.

    Raises:
        ValueError: an argument out of range (the message names it).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        *,
        resource_attr: str | None = None,
        points_to_evaluate: list[Config] | None = None,
        gamma: float = 0.15,
        min_points: int | None = None,
        random_fraction: float = 1.0 / 3.0,
        n_candidates: int = 64,
        bandwidth_factor: float = 3.0,
        min_bandwidth: float = DEFAULT_MIN_BANDWIDTH,
    ):
        super().__init__(config_space, metric, mode, seed)
        validate_space(config_space)
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}")
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
            raise ValueError(f"n_candidates must be an integer >= 1, got {n_candidates!r}")
        if not bandwidth_factor > 0:
            raise ValueError(f"bandwidth_factor must be > 0, got {bandwidth_factor!r}")
        if not min_bandwidth > 0:
            raise ValueError(f"min_bandwidth must be > 0, got {min_bandwidth!r}")
        encoder = get_encoder(config_space)
        self._encoder = encoder
        domains = [encoder.space[name] for name in encoder.names]
        if min_points is None:
            min_points = len(domains) + 1
        if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 1:
            raise ValueError(f"min_points must be an integer >= 1, got {min_points!r}")
        self.resource_attr = resource_attr
        self.gamma = float(gamma)
        self.min_points = min_points
        self.random_fraction = float(random_fraction)
        self.n_candidates = n_candidates
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)

        # model rows: one column per hyperparameter; a choice is its category index
        self._n_categories = np.array(
            [len(d.categories) if isinstance(d, Choice) else 0 for d in domains],
            dtype=np.int64
        )
        self._slices = [encoder.slices[name] for name in encoder.names]
        #: (model column, domain) of the discrete one-column domains: candidates are snapped to
        #: their values' encodings before scoring
        self._snap = [(j, d) for j, d in enumerate(domains)
                      if not isinstance(d, Choice) and d.cardinality is not None]
        self._choice_cols = [j for j, d in enumerate(domains) if isinstance(d, Choice)]
        self._plain_cols = [j for j, d in enumerate(domains) if not isinstance(d, Choice)]
        self._plain_enc = np.array([self._slices[j].start for j in self._plain_cols], dtype=np.int64)
        #: model columns of conditional parameters: INACTIVE where the parameter is absent, and
        #: densities fitted per column on the rows where it is active (see ProductKDE)
        conditional = conditions_of(config_space)
        self._cond_cols = [(j, name) for j, name in enumerate(encoder.names) if name in conditional]
        self._conditional = np.array([name in conditional for name in encoder.names], dtype=bool)

        self._points = [complete_config(config_space, p) for p in points_to_evaluate or []]
        self._next_point = 0
        self._random = RandomSearcher(config_space, metric, mode, seed=seed)
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0x4B4445])))
        self._row_of: dict[int, int] = {}  #: trial id -> its row in ``self._R``
        self._R = np.empty((64, len(self._slices)))  #: model rows of the trials (grown by doubling)
        self._seen: set[tuple[float, ...]] = set()  #: model rows proposed (to avoid duplicates)
        self._obs: dict[Any, dict[int, float]] = {}  #: level -> trial id -> value (to minimize)
        self._levels_desc: list[Any] = []  #: levels, highest first
        #: the highest level with enough observations so far: lower ones are not recorded
        self._floor: Any | None = None
        self._cache: tuple[Any, int, ProductKDE, ProductKDE] | None = None  # level, count, good, bad
        self._changes: dict[Any, int] = {}  #: level -> number of updates (invalidates the cache)

    # -- encoding ------------------------------------------------------------------------------

    def _to_model(self, configs: list[Config]) -> np.ndarray:
        """Configs -> model rows ``(n, p)``."""
        E = self._encoder.encode(configs)
        M = np.empty((len(configs), len(self._slices)))
        if self._plain_cols:
            M[:, self._plain_cols] = E[:, self._plain_enc]
        for j in self._choice_cols:
            M[:, j] = E[:, self._slices[j]].argmax(axis=1)
        for j, name in self._cond_cols:
            M[[name not in c for c in configs], j] = INACTIVE
        return M

    def _to_configs(self, M: np.ndarray) -> list[Config]:
        """Model rows -> configs (constants included)."""
        E = np.zeros((M.shape[0], self._encoder.encoded_dim))
        if self._plain_cols:
            E[:, self._plain_enc] = M[:, self._plain_cols]
        rows = np.arange(M.shape[0])
        for j in self._choice_cols:
            E[rows, self._slices[j].start + M[:, j].astype(np.int64)] = 1.0
        return self._encoder.decode(E)

    def _snap_rows(self, M: np.ndarray) -> np.ndarray:
        """Discrete columns moved to the encoding of the value they decode to (in place)."""
        for j, domain in self._snap:
            M[:, j] = domain.encode(domain.decode(M[:, j]))[:, 0]
        return M

    # -- contract ------------------------------------------------------------------------------

    def suggest(self, trial_id: int) -> Config:
        """Called for each new trial: the next point to evaluate, else (with probability
        ``1 - random_fraction``, when a level has enough observations) the best of the
        candidates by ``l(x) / g(x)``, else a random configuration. Never ``None``."""
        if self._next_point < len(self._points):
            config = dict(self._points[self._next_point])
            self._next_point += 1
        else:
            found = None
            if len(self._slices) and self._rng.random() >= self.random_fraction:
                found = self._model_suggest()
            config = found if found is not None else self._random_config(trial_id)
        self._add_row(trial_id, config)
        return config

    def _random_config(self, trial_id: int) -> Config:
        """A random configuration not proposed before (by the model either), if one is found in
        :data:`RANDOM_TRIES` draws (small discrete spaces run out)."""
        config = self._random.suggest(trial_id)
        if self._seen:
            for _ in range(RANDOM_TRIES):
                if tuple(self._to_model([config])[0].tolist()) not in self._seen:
                    break
                config = self._random.suggest(trial_id)
        return config

    def _add_row(self, trial_id: int, config: Config) -> None:
        row = self._to_model([config])[0]
        i = self._row_of.get(trial_id)
        if i is None:
            i = self._row_of[trial_id] = len(self._row_of)
            if i >= self._R.shape[0]:
                self._R = np.concatenate([self._R, np.empty_like(self._R)])
        self._R[i] = row
        self._seen.add(tuple(row.tolist()))

    def _usable(self, n: int) -> bool:
        n_good = max(self.min_points, int(self.gamma * n))
        return n - n_good >= self.min_points

    def model_level(self) -> Any | None:
        """The resource level the model is fitted on now: the highest with enough
        observations (``None`` if there is none)."""
        for level in self._levels_desc:
            if self._usable(len(self._obs[level])):
                return level
        return None

    def densities(self) -> tuple[ProductKDE, ProductKDE] | None:
        """The good and bad densities of :meth:`model_level` (``None`` when no level has enough
        observations); refitted only when that level changed since the last call."""
        level = self.model_level()
        if level is None:
            return None
        count = self._changes[level]
        if self._cache is not None and self._cache[0] == level and self._cache[1] == count:
            return self._cache[2], self._cache[3]
        obs = self._obs[level]
        tids = np.fromiter(obs.keys(), dtype=np.int64, count=len(obs))
        values = np.fromiter(obs.values(), dtype=float, count=len(obs))
        order = np.lexsort((tids, values))  # by value, ties by trial id: independent of arrival order
        row_of = self._row_of
        X = self._R[[row_of[t] for t in tids[order].tolist()]]
        n_good = max(self.min_points, int(self.gamma * len(obs)))
        good = ProductKDE(X[:n_good], self._n_categories, min_bandwidth=self.min_bandwidth,
                          conditional=self._conditional)
        bad = ProductKDE(X[n_good:], self._n_categories, min_bandwidth=self.min_bandwidth,
                         conditional=self._conditional)
        self._cache = (level, count, good, bad)
        return good, bad

    def _model_suggest(self) -> Config | None:
        fitted = self.densities()
        if fitted is None:
            return None
        good, bad = fitted
        candidates = good.sample(self._rng, self.n_candidates, self.bandwidth_factor)
        if self._cond_cols:
            # decoded (parameters whose condition fails dropped, values snapped) and encoded again:
            # each candidate is scored on the parameters it has
            candidates = self._to_model(self._to_configs(candidates))
        else:
            candidates = self._snap_rows(candidates)
        score = good.log_pdf(candidates) - bad.log_pdf(candidates)
        score = np.where(np.isnan(score), -np.inf, score)
        best = None
        for i in np.argsort(-score, kind="stable"):
            if tuple(candidates[i].tolist()) not in self._seen:
                best = i
                break
        if best is None:
            return None  # every candidate was proposed before (small discrete space): a random one
        return self._to_configs(candidates[best:best + 1])[0]

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for every result: records the metric at the result's resource level (a later
        value of the same trial at the same level replaces the earlier one). NaN counts as the
        worst value; results without the metric are ignored."""
        try:
            value = float(result[self.metric])
        except (KeyError, TypeError, ValueError):
            return
        value = to_minimize(value, self.mode)
        if self.resource_attr is None:
            level = _SINGLE_LEVEL
        else:
            level = result.get(self.resource_attr, _SINGLE_LEVEL)
        if trial_id not in self._row_of:  # a trial this searcher did not propose
            self._add_row(trial_id, config)
        floor = self._floor
        if floor is not None and level < floor:
            return  # below a level the model can use already: never used again
        obs = self._obs.get(level)
        if obs is None:
            obs = self._obs[level] = {}
            self._changes[level] = 0
            self._levels_desc = sorted(self._obs, reverse=True)
        obs[trial_id] = value
        self._changes[level] += 1
        if (floor is None or level > floor) and self._usable(len(obs)):
            # usability only grows with the number of observations, so the model never goes back
            # to a lower level: forget them (memory and time in simulations of many trials)
            self._floor = level
            for lower in [x for x in self._obs if x < level]:
                del self._obs[lower], self._changes[lower]
            self._levels_desc = sorted(self._obs, reverse=True)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: RNG states, position in ``points_to_evaluate``, the model rows of the
        trials and the observations per level (the densities are refitted from them)."""
        obs = []
        for level, values in self._obs.items():
            vals = [json_float(v) for v in values.values()]
            obs.append([level, list(values), vals, self._changes[level]])
        return {
            "rng": self._rng.bit_generator.state,
            "random": self._random.state_dict(),
            "next_point": self._next_point,
            "floor": self._floor,
            "row_ids": list(self._row_of),
            "rows": self._R[: len(self._row_of)].tolist(),
            "obs": obs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""
        self._rng.bit_generator.state = state["rng"]
        self._random.load_state_dict(state["random"])
        self._next_point = int(state["next_point"])
        ids = [int(t) for t in state["row_ids"]]
        self._row_of = {tid: i for i, tid in enumerate(ids)}
        rows = np.asarray(state["rows"], dtype=float).reshape(len(ids), len(self._slices))
        self._R = np.empty((max(64, 2 * len(ids)), len(self._slices)))
        self._R[: len(ids)] = rows
        self._seen = {tuple(row) for row in rows.tolist()}
        self._obs = {}
        self._changes = {}
        for level, tids, vals, count in state["obs"]:
            self._obs[level] = {int(t): float_from_json(v) for t, v in zip(tids, vals, strict=True)}
            self._changes[level] = int(count)
        self._levels_desc = sorted(self._obs, reverse=True)
        self._floor = state["floor"]
        self._cache = None
