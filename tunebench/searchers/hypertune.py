"""The searcher of Hyper-Tune: a ranking-weighted ensemble of per-level GP predictions, and the
weights that drive Hyper-Tune's learned bracket distribution.

Li, Shen, Jiang, Gao, Zhang, Cui: "Hyper-Tune: Towards Efficient Hyper-parameter Tuning at
Scale", VLDB 2022.  Hyper-Tune runs asynchronous Hyperband (see
:class:`tunebench.schedulers.hypertune.HyperTuneScheduler`) and, instead of one model at one
target level, combines one surrogate per resource level ("rung") into an ensemble whose weights
``theta`` say how well each level's model ranks the configurations observed at the highest
supported level; the same weights reshape the distribution of Hyperband brackets.

Design choices (documented deviations from the paper):

* **One GP over (config, resource), queried per level.**  The model is
  :class:`~tunebench.searchers.gp.MOBSTERSearcher`'s GP over ``(encoded config, normalized log
  resource)``, fitted on every reported result, with its subsampling and refit schedule (so
  decision time stays bounded as for MOBSTER).  The *level model* of level ``r_k`` is that GP's
  kernel (hyperparameters shared, fitted jointly) conditioned only on the observations made at
  level ``k`` (each trial's first result at or above ``r_k``) and queried at resource ``r_k``:
  independent per-level posteriors as in the paper, without fitting one set of hyperparameters
  per level.  In the ensemble that scores new configurations, each member is the *joint* GP
  queried at ``r_k`` (conditioned on all the data, pending trials fantasized at their next rung):
  it is at least as informed as the level model and needs no extra factorization per decision.
* **Ranking-loss weights (the paper, Section 4).**  With ``D_K`` the configurations observed at
  the highest level ``K`` that has at least ``min_level_points`` of them, the ranking loss of a
  model is the fraction of pairs of ``D_K`` that it orders differently from their observed
  values at ``K``.  Level models ``k < K`` are scored on ``D_K`` (they were trained on level ``k``
  data only); the level-``K`` model by cross-validation over ``D_K`` (at most 5 folds of at least
  2 points).  ``n_weight_samples`` joint posterior samples of each model give
  ``n_weight_samples`` losses per level; ``theta_k`` is the fraction of samples in which level
  ``k`` has the smallest loss (ties split evenly).  The weights are recomputed when ``K``
  changes or ``|D_K|`` has grown by 10 % (at least one trial) since the last time, with a
  generator seeded by the searcher's seed and ``(K, |D_K|)`` (so a resumed run recomputes
  nothing and would draw the same samples).
* **Ensemble: generalized product of experts** (gPoE, as in Hyper-Tune and MFES-HB): member
  predictions are first standardized over ``D_K`` (mean and standard deviation of the observed
  level-``k`` values of the configurations in ``D_K``), so that members of different levels
  speak the same units, then combined as ``var = 1 / sum_k theta_k / var_k`` and
  ``mean = var * sum_k theta_k mean_k / var_k``.  Members with ``theta_k < 0.01`` are dropped.
  New configurations maximize expected improvement over the smallest ensemble mean among the
  configurations observed at the ensemble's levels.
* **Learned bracket distribution**: bracket ``b`` starts at level ``r_b``; its probability is
  proportional to ``theta_b / r_b`` (with equally informative levels this is close to
  Hyperband's own ``n_b``, which also falls as ``1 / r_b``).  Brackets whose first level is
  above ``K`` (no weight yet) keep their default Hyperband probability; the brackets with a
  weight share the rest of the mass.  See :func:`learned_bracket_distribution`.
* **Until there is enough data** (fewer than two levels with ``min_level_points``
  observations), the searcher is exactly MOBSTER's (EI at a target level) and the scheduler
  draws brackets from Hyperband's default distribution.

Cost: the weights need one factorization per level and five for the cross-validation (each on
at most ``max_model_points`` rows) plus joint samples at most ``max_test_points`` configs; they
are recomputed only when the top level's data change.  A decision costs one prediction per
ensemble member per acquisition batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunebench.models.acquisition import log_expected_improvement
from tunebench.models.gp import GaussianProcess
from tunebench.searchers.gp import MOBSTERSearcher
from tunebench.types import Config, Result

logger = logging.getLogger(__name__)

__all__ = ["HyperTuneSearcher", "learned_bracket_distribution", "ranking_losses"]

#: members of the ensemble with a smaller weight are dropped
_MIN_MEMBER_WEIGHT = 0.01
#: the weights are recomputed when the number of trials at the top supported level has grown by
#: this factor (at least one more trial), or the top supported level changed
_WEIGHTS_GROWTH = 1.1
#: configurations per member level considered for the incumbent, besides those of D_K
_INCUMBENT_PER_LEVEL = 20


def _positive_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def ranking_losses(samples: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fraction of the pairs ``i < j`` of ``targets`` (m,) ordered differently by each row of
    ``samples`` (s, m): ``(s_i < s_j) xor (y_i < y_j)``, averaged over the ``m (m - 1) / 2``
    pairs.  Returns one loss per row, in [0, 1]; rows of fewer than 2 values give 0."""
    samples = np.atleast_2d(np.asarray(samples, dtype=float))
    y = np.asarray(targets, dtype=float).reshape(-1)
    m = y.shape[0]
    if samples.shape[1] != m:
        raise ValueError(f"samples have {samples.shape[1]} columns, targets {m} values")
    if m < 2:
        return np.zeros(samples.shape[0])
    iu, ju = np.triu_indices(m, k=1)
    y_less = y[iu] < y[ju]
    s_less = samples[:, iu] < samples[:, ju]
    errors: np.ndarray = np.count_nonzero(s_less != y_less[None, :], axis=1) / len(iu)
    return errors


def learned_bracket_distribution(
    theta: Sequence[float], start_levels: Sequence[float], default: Sequence[float]
) -> list[float]:
    """Bracket probabilities from level weights (see the module docstring).

    Args:
        theta: weight of each of the first ``len(theta)`` levels (non-negative).
        start_levels: first rung level of each bracket (increasing), one per bracket.
        default: the default (Hyperband) probability of each bracket.

    Returns:
        One probability per bracket, summing to 1: brackets ``b < len(theta)`` (the *head*)
        share the default mass of the head in proportion to ``theta[b] / start_levels[b]``; the
        others keep their default probability.  If the head's weights are all zero, the default.
    """
    n = len(start_levels)
    if len(default) != n:
        raise ValueError(f"default has {len(default)} entries for {n} brackets")
    dflt = np.asarray(default, dtype=float)
    dflt = dflt / dflt.sum()
    head = min(len(theta), n)
    w = np.asarray(theta[:head], dtype=float) / np.asarray(start_levels[:head], dtype=float)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    out = dflt.copy()
    if head == 0 or not w.sum() > 0:
        return [float(p) for p in out]
    out[:head] = dflt[:head].sum() * w / w.sum()
    out /= out.sum()
    return [float(p) for p in out]


class HyperTuneSearcher(MOBSTERSearcher):
    """Hyper-Tune's searcher: MOBSTER's GP over (config, resource), an ensemble of per-level
    predictions weighted by ranking losses, and the level weights that the
    :class:`~tunebench.schedulers.hypertune.HyperTuneScheduler` turns into a bracket
    distribution (see the module docstring).

    Args:
        config_space, metric, mode, seed, resource_attr, max_t, rung_levels, grace_period,
            reduction_factor, points_to_evaluate, num_init_random: as
            :class:`~tunebench.searchers.gp.MOBSTERSearcher` (``rung_levels`` must be the
            scheduler's, so that level ``b`` is where bracket ``b`` starts).
        min_level_points: a level is *supported* (gets a weight) once this many trials were
            observed there (at least 4: the cross-validation needs two folds of two).
        n_weight_samples: posterior samples drawn per level model to estimate the weights.
        max_test_points: at most this many configurations of the top supported level (an even
            spread in arrival order) are used to score the level models.
        **options: the GP options of :class:`~tunebench.searchers.gp.MOBSTERSearcher`
            (``refit_factor``, ``max_model_points``, ``n_candidates``, ...).

    Raises:
        ValueError: an invalid argument (the message names it).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        *,
        resource_attr: str,
        max_t: float,
        min_level_points: int = 6,
        n_weight_samples: int = 50,
        max_test_points: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(config_space, metric, mode, seed, resource_attr=resource_attr, max_t=max_t, **kwargs)
        self.min_level_points = _positive_int("min_level_points", min_level_points, 4)
        self.n_weight_samples = _positive_int("n_weight_samples", n_weight_samples, 1)
        self.max_test_points = _positive_int("max_test_points", max_test_points, 4)
        #: per level: trial id -> index of its first observation at or above the level
        self._level_obs: list[dict[int, int]] = [{} for _ in self.levels]
        self._theta: list[float] | None = None  #: weights of levels 0..K, or None (not enough data)
        self._signature: list[int] | None = None  #: (K, |D_K|) the weights were computed for
        #: per level 0..K: (mean, sd) of the level's values over D_K (member standardization)
        self._stats: list[list[float]] = []

    # -- data per level ------------------------------------------------------------------------

    def _index_level_obs(self, start: int) -> None:
        """File the observations from index ``start`` on under the levels they reach."""
        levels = self.levels
        for i in range(start, len(self._obs_y)):
            tid, r = self._obs_tid[i], self._obs_r[i]
            for k, level in enumerate(levels):
                if r < level:
                    break
                by_tid = self._level_obs[k]
                if tid not in by_tid:
                    by_tid[tid] = i

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for every result: an observation of the GP (see MOBSTERSearcher), filed under
        every level it reaches for the trial's first time."""
        n = len(self._obs_y)
        super().on_result(trial_id, config, result)
        if len(self._obs_y) > n:
            self._index_level_obs(n)

    def supported_top_level(self) -> int:
        """Index of the highest level with at least ``min_level_points`` trials, or -1."""
        top = -1
        for k, by_tid in enumerate(self._level_obs):
            if len(by_tid) >= self.min_level_points:
                top = k
        return top

    # -- weights -------------------------------------------------------------------------------

    @property
    def level_weights(self) -> list[float] | None:
        """The ensemble weights ``theta`` of levels ``0..K`` (a copy; sums to 1), or ``None``
        while fewer than two levels are supported (then the searcher is MOBSTER's)."""
        return None if self._theta is None else list(self._theta)

    def bracket_distribution(self, start_levels: Sequence[float], default: Sequence[float]) -> list[float] | None:
        """Called by the scheduler when it draws a new trial's bracket: the learned bracket
        probabilities (see :func:`learned_bracket_distribution`) for brackets starting at
        ``start_levels`` with default probabilities ``default``, or ``None`` (no weights yet:
        use the default)."""
        if self._theta is None:
            return None
        return learned_bracket_distribution(self._theta, start_levels, default)

    def _level_model(self, gp: GaussianProcess, idx: np.ndarray) -> GaussianProcess:
        """A GP with ``gp``'s hyperparameters conditioned on the observations ``idx`` only."""
        model = GaussianProcess(gp.dim, warp_dims=gp.warp_dims.tolist(), noise_floor=gp.noise_floor)
        model.set_theta(gp.theta)
        X = self._X.array
        y = np.asarray(self._obs_y)
        return model.set_data(X[idx], y[idx])

    def _level_rows(self, k: int, first: list[int], budget: int) -> np.ndarray:
        """Observation indices of level ``k``: those of the trials ``first`` (when observed at
        ``k``), then an even spread of the others, at most ``budget`` in all."""
        by_tid = self._level_obs[k]
        chosen = [by_tid[t] for t in first if t in by_tid][:budget]
        taken = set(chosen)
        rest = [i for i in by_tid.values() if i not in taken]
        room = budget - len(chosen)
        if room > 0 and rest:
            if len(rest) > room:
                picks = np.unique(np.round(np.linspace(0, len(rest) - 1, room)).astype(np.intp))
                rest = [rest[int(p)] for p in picks]
            chosen += rest
        return np.asarray(sorted(chosen), dtype=np.intp)

    def _query_rows(self, tids: Sequence[int], level: float) -> np.ndarray:
        Q = np.empty((len(tids), self._X.array.shape[1]))
        for i, t in enumerate(tids):
            Q[i, :-1] = self._rows[t]
        Q[:, -1] = self.normalize_resource(level)
        return Q

    def compute_level_losses(self, top: int, gp: GaussianProcess) -> np.ndarray:
        """Sampled ranking losses ``(top + 1, n_weight_samples)`` of the level models
        ``0..top`` on the trials observed at level ``top`` (see the module docstring)."""
        y = np.asarray(self._obs_y)
        test_all = list(self._level_obs[top])  # arrival order at the top level
        if len(test_all) > self.max_test_points:
            picks = np.unique(np.round(np.linspace(0, len(test_all) - 1, self.max_test_points)).astype(np.intp))
            test_all = [test_all[int(p)] for p in picks]
        tids = test_all
        y_top = y[[self._level_obs[top][t] for t in tids]]
        S = self.n_weight_samples
        rng = self._sub_rng(0x4854, top, len(self._level_obs[top]))
        budget = self._surrogate.max_model_points
        losses = np.zeros((top + 1, S))
        for k in range(top):
            idx = self._level_rows(k, tids, budget)
            model = self._level_model(gp, idx)
            samples = model.sample_posterior(self._query_rows(tids, self.levels[k]), S, rng)
            losses[k] = ranking_losses(samples, y_top)
        # the top level's model: cross-validation over D_K (at most 5 folds of >= 2 points)
        m = len(tids)
        n_folds = min(m // 2, 5)
        folds = np.array_split(rng.permutation(m), n_folds)
        top_obs = np.asarray([self._level_obs[top][t] for t in tids], dtype=np.intp)
        Q = self._query_rows(tids, self.levels[top])
        acc = np.zeros(S)
        for fold in folds:
            train = np.setdiff1d(np.arange(m), fold)
            model = self._level_model(gp, np.sort(top_obs[train]))
            samples = model.sample_posterior(Q[np.sort(fold)], S, rng)
            acc += ranking_losses(samples, y_top[np.sort(fold)])
        losses[top] = acc / n_folds
        return losses

    @staticmethod
    def weights_from_losses(losses: np.ndarray) -> np.ndarray:
        """``theta_k``: the fraction of samples (columns) in which level ``k`` (row) has the
        smallest loss, ties split evenly.  Sums to 1."""
        losses = np.asarray(losses, dtype=float)
        best = losses.min(axis=0, keepdims=True)
        wins = (losses <= best + 1e-12).astype(float)
        wins /= wins.sum(axis=0, keepdims=True)
        weights: np.ndarray = wins.mean(axis=1)
        return weights

    def _update_weights(self, gp: GaussianProcess) -> None:
        """Recompute the weights if the top supported level or its data changed."""
        top = self.supported_top_level()
        if top < 1:
            return
        signature = [top, len(self._level_obs[top])]
        if self._signature is not None and signature[0] == self._signature[0] \
                and signature[1] < math.ceil(self._signature[1] * _WEIGHTS_GROWTH - 1e-9):
            return
        losses = self.compute_level_losses(top, gp)
        theta = self.weights_from_losses(losses)
        y = np.asarray(self._obs_y)
        tids = list(self._level_obs[top])
        stats = []
        for k in range(top + 1):
            values = np.asarray([y[self._level_obs[k][t]] for t in tids if t in self._level_obs[k]])
            mean = float(values.mean()) if len(values) else 0.0
            sd = float(values.std()) if len(values) > 1 else 1.0
            stats.append([mean, sd if sd > 1e-12 else 1.0])
        self._theta = [float(v) for v in theta]
        self._signature = signature
        self._stats = stats
        logger.debug("Hyper-Tune weights at levels %s: %s (mean losses %s)", self.levels[: top + 1],
                     np.round(theta, 3).tolist(), np.round(losses.mean(axis=1), 3).tolist())

    # -- suggestions ---------------------------------------------------------------------------

    def _model_based_config(self) -> Config | None:
        X = self._X.array
        y = np.asarray(self._obs_y)
        base = self._surrogate.update(X, y, self._select)
        self._update_weights(base)
        if self._theta is None:
            return super()._model_based_config()  # MOBSTER (the update above is not repeated)
        gp = base
        pending = [t for t in self._running if t in self._rows]
        if pending:
            P = np.empty((len(pending), X.shape[1]))
            for i, t in enumerate(pending):
                P[i, :-1] = self._rows[t]
                P[i, -1] = self.normalize_resource(self._next_level(t))
            gp = gp.fantasize(P)
        members = [k for k, w in enumerate(self._theta) if w >= _MIN_MEMBER_WEIGHT]
        weights = np.asarray([self._theta[k] for k in members])
        weights /= weights.sum()
        res = np.asarray([self.normalize_resource(self.levels[k]) for k in members])
        stats = np.asarray([self._stats[k] for k in members])

        n_members = len(members)

        def ensemble(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            m = C.shape[0]
            Q = np.empty((n_members * m, C.shape[1] + 1))  # one prediction call for every member
            for j in range(n_members):
                Q[j * m:(j + 1) * m, :-1] = C
                Q[j * m:(j + 1) * m, -1] = res[j]
            mean, var = gp.predict(Q)
            z = (mean.reshape(n_members, m) - stats[:, :1]) / stats[:, 1:]
            v = np.maximum(var.reshape(n_members, m) / stats[:, 1:] ** 2, 1e-12)
            precision = weights @ (1.0 / v)
            var_e = 1.0 / precision
            return (weights @ (z / v)) * var_e, var_e

        # incumbent: the smallest ensemble mean among the configs observed at the member levels
        top = len(self._theta) - 1
        inc = list(self._level_obs[top])
        for k in members:
            by_tid = self._level_obs[k]
            tids = list(by_tid)
            order = np.argsort([y[by_tid[t]] for t in tids], kind="stable")[:_INCUMBENT_PER_LEVEL]
            inc += [tids[int(i)] for i in order]
        inc = list(dict.fromkeys(inc))
        C_inc = np.stack([self._rows[t] for t in inc])
        inc_mean, _ = ensemble(C_inc)
        best_i = int(np.argmin(inc_mean))
        best = float(inc_mean[best_i])

        def score(C: np.ndarray) -> np.ndarray:
            mean, var = ensemble(C)
            return log_expected_improvement(mean, var, best)

        found = self._optimizer.optimize(score, self._rng, exclude=self._keys, starts=C_inc[best_i:best_i + 1])
        if found is None:
            return None
        return self._optimizer.decode(found[0][None, :])[0]

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: MOBSTER's, plus the level weights and their standardization."""
        state = super().state_dict()
        state["hypertune"] = {"theta": self._theta, "signature": self._signature, "stats": self._stats}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (on a searcher built with the same arguments)."""
        super().load_state_dict(state)
        self._level_obs = [{} for _ in self.levels]
        self._index_level_obs(0)
        ht = state.get("hypertune") or {}
        theta = ht.get("theta")
        self._theta = None if theta is None else [float(v) for v in theta]
        signature = ht.get("signature")
        self._signature = None if signature is None else [int(v) for v in signature]
        self._stats = [[float(a), float(b)] for a, b in ht.get("stats") or []]
