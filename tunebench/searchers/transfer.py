"""Searchers that learn from earlier tasks (L1): transfer learning for hyperparameter tuning.

Each takes the results of source tasks as :class:`~tunebench.types.TransferTask` objects (the
configurations each task evaluated with their values in minimization form; ``--transfer-from``
loads them from experiment folders or grid tags, see :mod:`tunebench.analysis.transfer`). Source
values of different tasks are on different scales, so every method compares them through
per-task normalizations:

* :func:`empirical_quantiles`: a task's values mapped to the midpoints of their empirical CDF,
  ``(rank - 0.5) / n`` in ``(0, 1)`` (ties share their average rank);
* :func:`gaussian_quantiles`: those quantiles through the inverse CDF of the standard normal
  (Salinas, Shen, Perrone 2020, "A quantile-based approach for hyperparameter transfer
  learning"), so that every task's values follow a standard normal.

The searchers and helpers:

* :class:`ZeroShotSearcher`: a greedy portfolio (:func:`greedy_portfolio` over
  :func:`portfolio_scores`) suggested in order, then random configurations.
* :func:`bounding_box`: the config space shrunk to the box of the source tasks' top
  configurations (the ``BoundingBox`` method runs any method in it).
* :class:`CTSSearcher`: Thompson sampling from a GP over the union of the source tasks' Gaussian
  quantiles (the prior), plus a GP on the target's residuals once the target has observations.

All are deterministic given the seed, the source tasks and the calls; what they compute from the
source tasks is rebuilt identically at construction, so their state holds only what the target
run adds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from tunebench.errors import UserError
from tunebench.models.acquisition import row_keys
from tunebench.models.gp import GaussianProcess
from tunebench.searchers.base import Searcher
from tunebench.searchers.gp import GPSearcher, _blas_threads
from tunebench.space import Choice, Float, Integer, Ordinal, get_encoder, hyperparameters, sample_configs
from tunebench.types import Config, TransferTask

logger = logging.getLogger(__name__)

#: CTS refits its residual GP's hyperparameters when the target's observations grew by this factor
#: (in between: the same hyperparameters, the model conditioned on the new residuals)
_REFIT_FACTOR = 1.2

__all__ = [
    "CTSSearcher",
    "ZeroShotSearcher",
    "bounding_box",
    "empirical_quantiles",
    "gaussian_quantiles",
    "greedy_portfolio",
    "portfolio_scores",
    "source_rows",
]


# -- normalizations -------------------------------------------------------------------------------


def empirical_quantiles(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The midpoints of the empirical CDF of ``values``: ``(rank - 0.5) / n`` with ranks from 1
    (the smallest value) to ``n``, ties sharing their average rank; in ``(0, 1)``, lower is better
    for values in minimization form."""
    v = np.asarray(values, dtype=float)
    n = v.shape[0]
    if n == 0:
        return np.empty(0)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(1, n + 1, dtype=float)
    # ties: the average rank of each group of equal values
    uniq, inverse = np.unique(v, return_inverse=True)
    if len(uniq) < n:
        sums = np.bincount(inverse, weights=ranks)
        counts = np.bincount(inverse)
        ranks = (sums / counts)[inverse]
    return np.asarray((ranks - 0.5) / n)


def gaussian_quantiles(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``Phi^-1(empirical_quantiles(values))``: a task's values mapped onto a standard normal by
    their ranks (the copula transform of Salinas et al. 2020)."""
    inv = NormalDist().inv_cdf
    return np.asarray([inv(float(u)) for u in empirical_quantiles(values)])


def source_rows(config_space: dict[str, Any], task: TransferTask) -> np.ndarray:
    """The encoded configurations of ``task`` (rows in the unit cube of ``config_space``).

    Raises:
        UserError: a configuration lacks a hyperparameter of the space or holds a value outside
            its domain (the source task was tuned on another space).
    """
    domains = hyperparameters(config_space)
    names = sorted(domains)
    for config in task.configs:
        # (a conditional parameter inactive in the config is rightly absent)
        condition = {n: domains[n].condition for n in names}
        missing = [n for n in names if n not in config
                   and ((c := condition[n]) is None or c.holds(config))]
        if missing:
            raise UserError(f"transfer source {task.name!r} has configurations without {', '.join(missing)}: "
                            "its config space differs from the target's; transfer from tasks tuned on the same space")
    try:
        return np.asarray(get_encoder(config_space).encode([dict(c) for c in task.configs]), dtype=float)
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"transfer source {task.name!r} does not fit the target's config space ({exc}); "
                        "transfer from tasks tuned on the same space") from None


def _spread(order: np.ndarray, k: int) -> np.ndarray:
    """``k`` positions of ``order`` (best first): its best quarter of ``k``, then an even spread of
    the rest (deterministic)."""
    if len(order) <= k:
        return order
    n_top = k // 4
    rest = order[n_top:]
    picks = np.unique(np.round(np.linspace(0, len(rest) - 1, k - n_top)).astype(np.intp))
    return np.concatenate([order[:n_top], rest[picks]])


# -- ZeroShot ------------------------------------------------------------------------------------


def portfolio_scores(config_space: dict[str, Any], tasks: Sequence[TransferTask], *,
                     max_model_points: int = 200) -> tuple[list[Config], np.ndarray]:
    """The candidates of a zero-shot portfolio and their normalized value on every source task.

    Candidates: the union of the source tasks' configurations (task order, then each task's
    order; a configuration evaluated by several tasks once). Score of candidate ``c`` on task
    ``t``: the :func:`empirical_quantiles` of ``t``'s values where ``t`` evaluated ``c`` (their
    mean if several times); else the prediction of a GP fitted on ``t``'s quantiles (at most
    ``max_model_points`` of them), clipped to ``[0, 1]``. Lower is better.

    Returns:
        ``(candidates, scores)``, ``scores`` of shape ``(len(candidates), len(tasks))``.
    """
    encoded = [source_rows(config_space, task) for task in tasks]
    keys: dict[bytes, int] = {}
    candidates: list[Config] = []
    rows: list[np.ndarray] = []
    for task, X in zip(tasks, encoded, strict=True):
        for config, key, row in zip(task.configs, row_keys(X), X, strict=True):
            if key not in keys:
                keys[key] = len(candidates)
                candidates.append(dict(config))
                rows.append(row)
    C = np.stack(rows)
    scores = np.empty((len(candidates), len(tasks)))
    for j, (task, X) in enumerate(zip(tasks, encoded, strict=True)):
        u = empirical_quantiles(task.values)
        sums = np.zeros(len(candidates))
        counts = np.zeros(len(candidates))
        idx = np.asarray([keys[k] for k in row_keys(X)], dtype=np.intp)
        np.add.at(sums, idx, u)
        np.add.at(counts, idx, 1.0)
        seen = counts > 0
        if not seen.all():
            keep = _spread(np.argsort(u, kind="stable"), max_model_points)
            gp = GaussianProcess(C.shape[1]).fit(X[keep], u[keep])
            scores[:, j] = np.clip(gp.predict(C, return_var=False)[0], 0.0, 1.0)
        scores[seen, j] = sums[seen] / counts[seen]
    return candidates, scores


def greedy_portfolio(scores: np.ndarray, size: int | None = None) -> list[int]:
    """Greedy portfolio over ``scores`` (candidates x tasks, lower is better): repeatedly add the
    candidate that most lowers the mean over tasks of the best score in the portfolio (ties: the
    first candidate). When no candidate lowers it (every task has its best), a new round starts
    over the candidates left, as if the portfolio were empty, so the order goes on with the next
    best covering set. Returns at most ``size`` candidate indices (None: all), in order."""
    n, m = scores.shape
    size = n if size is None else min(size, n)
    left = np.ones(n, dtype=bool)
    best = np.full(m, math.inf)
    order: list[int] = []
    while len(order) < size:
        with np.errstate(invalid="ignore"):
            objective = np.minimum(scores, best[None, :]).mean(axis=1)
        objective[~left] = math.inf
        i = int(np.argmin(objective))
        current = float(best.mean()) if np.isfinite(best).all() else math.inf
        if not objective[i] < current:  # no candidate improves: a new round
            best = np.full(m, math.inf)
            continue
        order.append(i)
        left[i] = False
        best = np.minimum(best, scores[i])
    return order


class ZeroShotSearcher(Searcher):
    """Zero-shot transfer: the configurations of a greedy portfolio over the source tasks
    (:func:`portfolio_scores`, :func:`greedy_portfolio`), suggested in portfolio order, then
    random configurations (the space's own distributions). Learns nothing from the target's
    results: the best portfolio configurations are simply tried first.

    Args:
        config_space, metric, mode, seed: as :class:`~tunebench.searchers.base.Searcher`.
        transfer: the source tasks (at least one).
        portfolio_size: configurations in the portfolio (at most the number of distinct source
            configurations).
        max_model_points: see :func:`portfolio_scores`.
        blas_threads: BLAS threads while the portfolio is computed (see :mod:`tunebench.searchers.gp`).

    Raises:
        ValueError: no source task, or ``portfolio_size`` < 1.
        UserError: a source task does not fit the space.
    """

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str = "min", seed: int = 0, *,
                 transfer: Sequence[TransferTask], portfolio_size: int = 100, max_model_points: int = 200,
                 blas_threads: int | None = 1) -> None:
        super().__init__(config_space, metric, mode, seed)
        if not transfer:
            raise ValueError("ZeroShotSearcher needs at least one source task (transfer)")
        if isinstance(portfolio_size, bool) or not isinstance(portfolio_size, int) or portfolio_size < 1:
            raise ValueError(f"portfolio_size must be an integer >= 1, got {portfolio_size!r}")
        with _blas_threads(blas_threads):
            candidates, scores = portfolio_scores(config_space, transfer, max_model_points=max_model_points)
        constants = {k: v for k, v in config_space.items() if k not in hyperparameters(config_space)}
        self.portfolio: list[Config] = [{**candidates[i], **constants}
                                        for i in greedy_portfolio(scores, portfolio_size)]
        self._next = 0
        self._rng = np.random.default_rng(seed)

    def suggest(self, trial_id: int) -> Config:
        """Called for each new trial: the next portfolio configuration, then random ones."""
        if self._next < len(self.portfolio):
            config = dict(self.portfolio[self._next])
            self._next += 1
            return config
        return sample_configs(self.config_space, self._rng, 1)[0]

    def state_dict(self) -> dict[str, Any]:
        """Position in the portfolio and RNG state (the portfolio is rebuilt from the sources)."""
        return {"next": self._next, "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._next = int(state["next"])
        self._rng.bit_generator.state = state["rng"]


# -- BoundingBox ----------------------------------------------------------------------------------


def bounding_box(config_space: dict[str, Any], tasks: Sequence[TransferTask],
                 top_fraction: float = 0.1) -> dict[str, Any]:
    """``config_space`` shrunk to the box of the source tasks' top configurations.

    The top configurations of a task are its best ``max(1, ceil(top_fraction * n))`` of ``n``
    (by value); over all tasks' top configurations, a numeric hyperparameter (uniform,
    loguniform, randint, lograndint) keeps its type with the range ``[min, max]`` of their
    values, a categorical one (choice, ordinal, finrange: their values) the values they hold, in
    the domain's order; one left with a single value becomes that constant. Constants stay.

    Raises:
        ValueError: ``top_fraction`` not in ``(0, 1]``, or no task.
        UserError: a source task does not fit the space.
    """
    if isinstance(top_fraction, bool) or not isinstance(top_fraction, (int, float)) or not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction!r}")
    if not tasks:
        raise ValueError("bounding_box needs at least one source task")
    top: list[Config] = []
    for task in tasks:
        source_rows(config_space, task)  # the space check
        k = max(1, math.ceil(top_fraction * len(task.values)))
        order = np.argsort(np.asarray(task.values), kind="stable")[:k]
        top.extend(task.configs[int(i)] for i in order)
    hps = hyperparameters(config_space)
    box: dict[str, Any] = {}
    for name, domain in config_space.items():
        if name not in hps:
            box[name] = domain
            continue
        seen = [c[name] for c in top if name in c]
        condition = domain.condition
        if not seen:
            # a conditional parameter inactive in every top config: the box leaves it out (none
            # of the parent values the box keeps activates it)
            continue
        if isinstance(domain, (Float, Integer)):
            low, high = min(seen), max(seen)
            if condition is not None:  # a conditional one stays a domain (a constant has no condition)
                box[name] = type(domain)(low, high, log=domain.log).when(condition)
            else:
                box[name] = low if low == high else type(domain)(low, high, log=domain.log)
        elif condition is not None:
            box[name] = domain
        else:
            values: list[Any] = list(getattr(domain, "categories", None) or getattr(domain, "values", None) or ())
            kept = [v for v in values if v in seen]
            if not kept:  # values the domain does not list (a float of a finrange): keep the domain
                box[name] = domain
            elif len(kept) == 1:
                box[name] = kept[0]
            else:
                box[name] = Choice(kept) if isinstance(domain, Choice) else Ordinal(kept)
    return box


# -- CTS ------------------------------------------------------------------------------------------


class CTSSearcher(GPSearcher):
    """Quantile-based transfer with Thompson sampling (Salinas, Shen, Perrone 2020).

    *Prior* (built once, at construction, from the source tasks): each task's values are mapped
    to :func:`gaussian_quantiles`; a GP (:class:`~tunebench.models.gp.GaussianProcess`, the
    project's own, instead of the paper's MLP predicting a mean and a standard deviation) is
    fitted over the union of the tasks' encoded configurations and quantiles, at most
    ``max_source_points`` of them (per task an equal share: its best quarter and an even spread
    of the rest).

    *Target*: each trial's final value (the one :class:`GPSearcher` observes: its last result
    when completed or stopped) is mapped through the Gaussian quantiles of the target's own
    values; once there are ``min_target_points`` of them, a second GP models the target's
    *residuals* ``z - prior_mean(x)`` (the paper's CGP, a GP with the prior's mean), rebuilt at
    each suggestion (the quantiles change with every observation) on at most
    ``max_target_points`` observations (GPSearcher's subsample); its hyperparameters are refitted
    when the observations grew by 20 %, in between the last ones are kept. Target data thus take
    over where they disagree with the prior.

    *Suggestion*: Thompson sampling: one joint sample of ``prior + residual`` over
    ``n_candidates`` random configurations plus the ``source_candidates`` best configurations of
    each source task; the candidate with the lowest sample that was not suggested before wins.
    Every suggestion is model-based (no initial random phase); pending trials are not
    fantasized (the sampling spreads them).

    Args:
        config_space, metric, mode, seed, points_to_evaluate: as :class:`GPSearcher`.
        transfer: the source tasks (at least one).
        max_source_points: cap on the points of the prior GP.
        min_target_points: target observations before the residual model is used (>= 2).
        max_target_points: cap on the points of the residual GP (its ``max_model_points``).
        source_candidates: best configurations of each source task added to the candidates.
        n_candidates, blas_threads: as :class:`GPSearcher`.

    Raises:
        ValueError: no source task, or an invalid argument.
        UserError: a source task does not fit the space.
    """

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str = "min", seed: int = 0, *,
                 transfer: Sequence[TransferTask], points_to_evaluate: list[Config] | None = None,
                 max_source_points: int = 300, min_target_points: int = 3, max_target_points: int = 100,
                 source_candidates: int = 3, n_candidates: int = 200, blas_threads: int | None = 1) -> None:
        if not transfer:
            raise ValueError("CTSSearcher needs at least one source task (transfer)")
        checks = (("max_source_points", max_source_points, 2), ("min_target_points", min_target_points, 2),
                  ("max_target_points", max_target_points, 2), ("source_candidates", source_candidates, 0))
        for name, value, low in checks:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        super().__init__(config_space, metric, mode, seed, points_to_evaluate=points_to_evaluate, num_init_random=0,
                         acquisition="ts", max_model_points=max_target_points, max_fit_points=max_target_points,
                         n_candidates=n_candidates, blas_threads=blas_threads)
        self.min_target_points = min_target_points
        share = max(1, max_source_points // len(transfer))
        X_parts, z_parts, best_rows = [], [], []
        for task in transfer:
            X = source_rows(config_space, task)
            z = gaussian_quantiles(task.values)
            order = np.argsort(z, kind="stable")
            keep = _spread(order, share)
            X_parts.append(X[keep])
            z_parts.append(z[keep])
            best_rows.append(X[order[:source_candidates]])
        X_src, z_src = np.concatenate(X_parts), np.concatenate(z_parts)
        self._n_source = int(X_src.shape[0])
        self._source_best = np.concatenate(best_rows)
        with _blas_threads(self.blas_threads):
            self._source_gp = GaussianProcess(X_src.shape[1]).fit(X_src, z_src)
        self._target_theta: list[float] | None = None  #: the residual GP's hyperparameters at its last fit
        self._target_fit_n = 0  #: target observations at that fit

    def state_dict(self) -> dict[str, Any]:
        """:class:`GPSearcher`'s state and the residual GP's hyperparameters (the prior is rebuilt
        from the source tasks)."""
        state = super().state_dict()
        state.update(target_theta=self._target_theta, target_fit_n=self._target_fit_n)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (on a searcher built with the same arguments and sources)."""
        super().load_state_dict(state)
        theta = state.get("target_theta")
        self._target_theta = None if theta is None else [float(v) for v in theta]
        self._target_fit_n = int(state.get("target_fit_n", 0))

    def _n_observations(self) -> int:
        """The points the model rests on: the source points and the target's observations (so
        every suggestion after ``points_to_evaluate`` is model-based)."""
        return self._n_source + len(self._obs_y)

    def _model_based_config(self) -> Config | None:
        C = np.concatenate([self._optimizer.sample(self._rng, self._optimizer.n_candidates), self._source_best])
        sample = self._source_gp.sample_posterior(C, 1, self._rng)[0]
        n = len(self._obs_y)
        if n >= self.min_target_points:
            X = self._X.array
            keep = np.arange(n) if n <= self._surrogate.max_model_points else self._select(
                n, self._surrogate.max_model_points)
            z = gaussian_quantiles(np.asarray(self._obs_y)[keep])
            residual = z - self._source_gp.predict(X[keep], return_var=False)[0]
            target = GaussianProcess(X.shape[1])
            if self._target_theta is None or n >= self._target_fit_n * _REFIT_FACTOR:
                target.fit(X[keep], residual)
                self._target_theta, self._target_fit_n = [float(v) for v in target.theta], n
            else:
                target.set_theta(self._target_theta)
                target.set_data(X[keep], residual)
            sample = sample + target.sample_posterior(C, 1, self._rng)[0]
        for i in np.argsort(sample, kind="stable"):
            if row_keys(C[i:i + 1])[0] not in self._keys:
                return self._optimizer.decode(C[i:i + 1])[0]
        return None
