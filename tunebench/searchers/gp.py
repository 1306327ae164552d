"""Gaussian-process searchers: asynchronous BO (method ``BO``) and MOBSTER's searcher.

* :class:`GPSearcher` (single fidelity, with FIFO): the first ``num_init_random`` (default 3)
  configurations are ``points_to_evaluate`` then random ones; after that, a GP over the encoded
  configurations of the finished trials (their final metric) and expected improvement (EI)
  over the best value observed, with the *pending* trials (suggested, not finished yet)
  fantasized at the posterior mean, so that asynchronous workers do not all pile onto the same
  spot.

* :class:`MOBSTERSearcher` (multi-fidelity; with ASHA = MOBSTER, Klein, Tiao, Lienart,
  Archambeau, Seeger: "Model-based Asynchronous Hyperparameter and Neural Architecture
  Search", arXiv:2003.10865): one GP over ``(encoded config, normalized resource)`` fitted on
  every reported result.  A resource ``r`` is normalized as
  ``log(r / min_resource) / log(max_t / min_resource)`` (rung levels equally spaced;
  ``min_resource``: the smallest of the grace period and the rung levels), clipped to ``[0, 1]``.
  Running trials are pending at their next rung level (the next one above their last result;
  ``on_stop`` / ``on_resume`` take them out and put them back).  A new config is chosen by EI
  at a *target resource*: the largest level among the rung levels and ``max_t`` that at least
  ``d`` trials (``d`` = encoded dimension of the config space, as in Syne Tune) have reached,
  else the lowest rung.  The incumbent for EI is the best value observed at the target (each
  trial's first result at or above it).  The searcher only relies on the Searcher contract, so
  a synchronous Hyperband scheduler can use it too.

Cost-aware search (``cost_attr``, ``--cost-attr``; Snoek et al. 2012's EI per second, CArBO:
Lee et al., "Cost-aware Bayesian Optimization", arXiv:2003.10870): each result reports a cost
(``cost_attr``, e.g. the simulator's ``time``), *cumulative*: what the trial has cost up to that
result.  A second GP, on the same inputs as the objective's, models the log cost of each
observation (BO: the trial's cost at its final result; MOBSTER: the cost at each reported
resource); the acquisition is ``log EI - alpha * m(x)``, ``m`` the cost GP's posterior mean of
the log cost, i.e. EI per unit of cost ``EI / cost^alpha`` (:func:`~tunebench.models.acquisition.log_ei_per_cost`).
``alpha`` is ``cost_exponent`` (default 1), or, with a ``cost_budget`` (the total cost the run
may spend, in the cost's units: with elapsed time, workers x seconds), CArBO's *cost cooling*:
``alpha = cost_exponent * (budget - spent) / (budget - spent_init)`` clipped to ``[0, 1]``,
going from 1 to 0 as the budget is spent (``spent``: the sum of each trial's last reported
cost; ``spent_init``: what was spent at the first model-based suggestion, the initial design),
so that the search favours cheap configs early and ends as plain EI.  A result without the cost
is a :class:`~tunebench.errors.UserError`.  The cost GP is refitted on the same schedule as the
objective's and is not fantasized (pending trials do not change its mean).

User priors (piBO, Hvarfner et al. 2022, "piBO: Augmenting Acquisition Functions with User
Beliefs for Bayesian Optimization", ICLR): after :meth:`~_GPSearcherBase.use_prior` the initial
random configs are drawn from the prior (:class:`~tunebench.space.Prior`) and the acquisition is
multiplied by ``prior(x) ** (beta / n)``, ``n`` the number of observations, i.e. ``beta / n *
log prior(x)`` is added to ``log EI``: the prior steers the early search and fades as data
comes in (``beta``: 10 in the paper).  Needs ``acquisition="ei"`` (a product with a score of
any sign, such as ``-LCB``, is no weighting).

Both keep their model in a :class:`GPSurrogate`: hyperparameters are refitted when the number
of observations has grown by ``refit_factor`` (default 10 %, or every ``refit_every`` new
points), on at most ``max_fit_points`` of them, warm-started; in between, new observations are
appended to the Cholesky factor (O(n^2) each).  Above ``max_model_points`` observations the model
is conditioned on a subsample (BO: the best quarter and a random rest; MOBSTER: the latest
result of each trial, highest resources first, and an even spread of the others), re-drawn
when it has grown by 10 %.  Decision time stays bounded (about 10 to 20 ms at 1000
observations, see ``benchmarks/model_decision_time.py``).

Determinism and resume: given the seed and the calls, suggestions are deterministic.
``state_dict`` holds the observations, RNG state, the GP hyperparameters and which
observations the model was factorized on in which batches; ``load_state_dict`` rebuilds the
GP with the same floating-point operations, so a resumed run continues exactly.

BLAS threads: the model's linear algebra runs with ``blas_threads`` BLAS threads (default 1,
through ``threadpoolctl``, restored after each call): matrices are at most a few hundred rows,
where one thread is as fast as several and does not collapse when the machine is busy.
``blas_threads=None`` leaves BLAS alone.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tunebench.errors import UserError
from tunebench.fidelity import FidelityLadder
from tunebench.models.acquisition import (
    AcquisitionOptimizer,
    log_ei_per_cost,
    log_expected_improvement,
    lower_confidence_bound,
    row_keys,
)
from tunebench.models.gp import GaussianProcess
from tunebench.searchers.base import Searcher
from tunebench.searchers.random import complete_config
from tunebench.space import Choice, get_encoder, hyperparameters, sample_configs, space_cardinality, validate_space
from tunebench.types import Config, Result, float_from_json, json_float, to_minimize

if TYPE_CHECKING:
    from tunebench.space import Prior

logger = logging.getLogger(__name__)

__all__ = ["GPSearcher", "GPSurrogate", "MOBSTERSearcher"]

_ACQUISITIONS = ("ei", "lcb", "ts")
#: costs below this are taken as this (the cost model works on log costs)
_MIN_COST = 1e-9

# -- BLAS threads ---------------------------------------------------------------------------------

_CONTROLLER: Any = None
_CONTROLLER_FAILED = False


@contextlib.contextmanager
def _blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` BLAS threads (no-op if ``n`` is None or threadpoolctl is missing)."""
    global _CONTROLLER, _CONTROLLER_FAILED
    if n is None or _CONTROLLER_FAILED:
        yield
        return
    if _CONTROLLER is None:
        try:
            # deferred: threadpoolctl, only when BLAS threads are limited
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        except Exception:  # pragma: no cover - threadpoolctl ships with scikit-learn
            _CONTROLLER_FAILED = True
            yield
            return
    with _CONTROLLER.limit(limits=n, user_api="blas"):
        yield


# -- helpers --------------------------------------------------------------------------------------


class _Rows:
    """A growable 2-d float array (amortized O(1) appends)."""

    def __init__(self, dim: int):
        self._buf = np.empty((16, dim))
        self.n = 0

    def append(self, row: np.ndarray) -> None:
        if self.n == self._buf.shape[0]:
            buf = np.empty((2 * self.n, self._buf.shape[1]))
            buf[: self.n] = self._buf[: self.n]
            self._buf = buf
        self._buf[self.n] = row
        self.n += 1

    @property
    def array(self) -> np.ndarray:
        return self._buf[: self.n]


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# -- the model keeper -----------------------------------------------------------------------------

#: ``select(n, budget)``: indices (sorted) of at most ``budget`` of the first ``n`` observations
Selector = Callable[[int, int], np.ndarray]


class GPSurrogate:
    """Keeps a :class:`GaussianProcess` in step with an append-only list of observations.

    Call :meth:`update` with all observations so far (rows never change or move; new ones are
    appended) each time the model is needed; it refits, resamples or appends as needed and
    returns the up-to-date GP.

    Args:
        dim: input columns.
        warp_dims: columns with input warping (see :class:`GaussianProcess`).
        refit_factor: refit the hyperparameters when the number of observations reached
            ``refit_factor`` times the number at the last fit.
        refit_every: also refit after this many new observations (None: only ``refit_factor``).
        max_model_points: above this many observations, the model is conditioned on a subsample
            of this size (chosen by the ``select`` function given to :meth:`update`), re-drawn
            when appends made it 10 % larger.
        max_fit_points: hyperparameters are fitted on at most this many observations.
        noise_floor: see :class:`GaussianProcess`.
    """

    def __init__(
        self,
        dim: int,
        *,
        warp_dims: list[int] | None = None,
        refit_factor: float = 1.1,
        refit_every: int | None = None,
        max_model_points: int = 250,
        max_fit_points: int = 150,
        noise_floor: float = 1e-6,
    ) -> None:
        if not refit_factor > 1.0:
            raise ValueError(f"refit_factor must be > 1, got {refit_factor!r}")
        if refit_every is not None:
            refit_every = _check_positive_int("refit_every", refit_every)
        self.max_model_points = _check_positive_int("max_model_points", max_model_points, 2)
        self.max_fit_points = _check_positive_int("max_fit_points", max_fit_points, 2)
        self.refit_factor = float(refit_factor)
        self.refit_every = refit_every
        self.gp = GaussianProcess(dim, warp_dims=warp_dims, noise_floor=noise_floor)
        self._fitted = False
        self.last_fit_n = 0  #: observations at the last hyperparameter fit
        self._base: list[int] = []  #: observations the model was last factorized on from scratch
        self._base_seen = 0  #: observations known at that factorization
        self._seen = 0  #: observations the model includes (base + every one in [base_seen, seen))
        self.n_fits = 0

    def _refit_due(self, n: int) -> bool:
        if not self._fitted:
            return True
        if n <= self.last_fit_n:
            return False
        if n >= self.last_fit_n * self.refit_factor:
            return True
        return self.refit_every is not None and n - self.last_fit_n >= self.refit_every

    def update(self, X: np.ndarray, y: np.ndarray, select: Selector) -> GaussianProcess:
        """Bring the model up to date with the observations ``(X, y)`` (all of them so far)
        and return it.  ``select(n, budget)`` picks the subsample when there are more than
        ``max_model_points`` (or ``max_fit_points`` for the fit)."""
        n = X.shape[0]
        if n == 0:
            raise ValueError("the surrogate needs at least one observation")
        if self._refit_due(n):
            base = np.arange(n) if n <= self.max_model_points else np.asarray(select(n, self.max_model_points))
            fit_idx = self._fit_positions(y[base]) if len(base) > self.max_fit_points else None
            self.gp.fit(X[base], y[base], fit_indices=fit_idx, restart_from_default=n <= 100)
            self._fitted = True
            self.last_fit_n = n
            self.n_fits += 1
            self._set_base(base, n)
        elif n > self._seen:
            size = len(self._base) + n - self._base_seen
            if size > 1.1 * self.max_model_points:
                base = np.asarray(select(n, self.max_model_points))
                self.gp.set_data(X[base], y[base])
                self._set_base(base, n)
            else:
                self.gp.add_points(X[self._seen:n], y[self._seen:n])
                self._seen = n
        return self.gp

    def _fit_positions(self, y: np.ndarray) -> np.ndarray:
        """Positions of the rows the hyperparameters are fitted on: the best quarter of
        ``max_fit_points`` by value, then an even spread of the others (in arrival order)."""
        k = self.max_fit_points
        n_top = k // 4
        top = np.argsort(y, kind="stable")[:n_top]
        rest = np.setdiff1d(np.arange(len(y)), top, assume_unique=True)
        picks = np.unique(np.round(np.linspace(0, len(rest) - 1, k - n_top)).astype(np.intp))
        return np.sort(np.concatenate([top, rest[picks]]))

    def _set_base(self, base: np.ndarray, n: int) -> None:
        self._base = [int(i) for i in base]
        self._base_seen = n
        self._seen = n

    def state_dict(self) -> dict[str, Any]:
        """JSON-able: GP hyperparameters and factorization batches, and which observations the
        model holds (the observations themselves are the searcher's)."""
        if not self._fitted:
            return {"fitted": False}
        return {
            "fitted": True,
            "gp": self.gp.state_dict(include_data=False),
            "last_fit_n": self.last_fit_n,
            "n_fits": self.n_fits,
            "base": self._base,
            "base_seen": self._base_seen,
            "seen": self._seen,
        }

    def load_state_dict(self, state: dict[str, Any], X: np.ndarray, y: np.ndarray) -> None:
        """Rebuild the model from :meth:`state_dict` and the same observations: the same
        factorization and appends as the original, so its predictions are bitwise equal."""
        if not state.get("fitted"):
            self._fitted = False
            self.last_fit_n = 0
            self._base, self._base_seen, self._seen = [], 0, 0
            self.n_fits = 0
            return
        self._fitted = True
        self.last_fit_n = int(state["last_fit_n"])
        self.n_fits = int(state["n_fits"])
        self._base = [int(i) for i in state["base"]]
        self._base_seen = int(state["base_seen"])
        self._seen = int(state["seen"])
        rows = np.concatenate([np.asarray(self._base, dtype=np.intp), np.arange(self._base_seen, self._seen)])
        self.gp.load_state_dict(state["gp"], X[rows], y[rows])


# -- searchers ------------------------------------------------------------------------------------


class _GPSearcherBase(Searcher):
    """What :class:`GPSearcher` and :class:`MOBSTERSearcher` share: the initial random phase,
    bookkeeping of suggested configs, the surrogate and the acquisition optimizer, state."""

    #: extra input columns after the encoded config (MOBSTER: the resource)
    _extra_dims = 0
    acquisition = "ei"
    kappa = 2.0

    def _default_num_init_random(self, n_hp: int) -> int:
        """``num_init_random`` when none is given, for a space of ``n_hp`` hyperparameters."""
        return max(5, n_hp + 1)

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        *,
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        input_warping: bool = False,
        refit_factor: float = 1.1,
        refit_every: int | None = None,
        max_model_points: int = 250,
        max_fit_points: int = 150,
        n_candidates: int = 200,
        n_starts: int = 2,
        max_steps: int = 8,
        blas_threads: int | None = 1,
        cost_attr: str | None = None,
        cost_exponent: float = 1.0,
        cost_budget: float | None = None,
    ) -> None:
        super().__init__(config_space, metric, mode, seed)
        validate_space(config_space)
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be the name of the reported metric, got {metric!r}")
        self._encoder = get_encoder(config_space)
        if self._encoder.encoded_dim == 0:
            raise UserError("the config space has no hyperparameter to search (only constants)")
        self._points = [complete_config(config_space, p) for p in points_to_evaluate or []]
        n_hp = len(hyperparameters(config_space))
        if num_init_random is None:
            num_init_random = self._default_num_init_random(n_hp)
        self.num_init_random = _check_positive_int("num_init_random", num_init_random, 0)
        if blas_threads is not None:
            blas_threads = _check_positive_int("blas_threads", blas_threads)
        self.blas_threads = blas_threads
        self.input_warping = bool(input_warping)
        if cost_attr is not None and (not isinstance(cost_attr, str) or not cost_attr):
            raise ValueError(f"cost_attr must be the name of the reported cost, got {cost_attr!r}")
        if isinstance(cost_exponent, bool) or not isinstance(cost_exponent, (int, float)) or not (
                0 <= cost_exponent < math.inf):
            raise ValueError(f"cost_exponent must be a number >= 0, got {cost_exponent!r}")
        if cost_budget is not None and (isinstance(cost_budget, bool) or not isinstance(cost_budget, (int, float))
                                        or not 0 < cost_budget < math.inf):
            raise ValueError(f"cost_budget must be a number > 0, got {cost_budget!r}")
        self.cost_attr = cost_attr
        self.cost_exponent = float(cost_exponent)
        self.cost_budget = None if cost_budget is None else float(cost_budget)
        self._optimizer = AcquisitionOptimizer(
            config_space, n_candidates=n_candidates, n_starts=n_starts, max_steps=max_steps
        )
        dim = self._encoder.encoded_dim + self._extra_dims
        warp = None
        if self.input_warping:  # every column but one-hot ones
            warp = [j for name in self._encoder.names if not isinstance(config_space[name], Choice)
                    for j in range(self._encoder.slices[name].start, self._encoder.slices[name].stop)]
            warp += list(range(self._encoder.encoded_dim, dim))
        #: how :meth:`_make_surrogate` builds a model (its input columns and schedule)
        self._surrogate_options: dict[str, Any] = dict(
            warp_dims=warp,
            refit_factor=refit_factor,
            refit_every=refit_every,
            max_model_points=max_model_points,
            max_fit_points=max_fit_points,
        )
        self._surrogate = self._make_surrogate()
        #: the cost model: a GP on the log costs of the observations (same inputs), with cost_attr
        self._cost_surrogate = self._make_surrogate() if cost_attr is not None else None
        self._obs_logc: list[float] = []  #: log cost of each observation (with cost_attr)
        self._spent: dict[int, float] = {}  #: last cost reported by each trial (with cost_attr)
        self._spent_at_model: float | None = None  #: cost spent before the first model-based suggestion
        self._cardinality = space_cardinality(config_space)
        self._rng = np.random.default_rng(seed)
        self._next_point = 0
        self._configs: dict[int, Config] = {}  #: every config suggested, by trial id
        self._rows: dict[int, np.ndarray] = {}  #: their encodings
        self._keys: set[bytes] = set()  #: row_keys of every config suggested
        self._prior: Prior | None = None  #: piBO's prior (see :meth:`use_prior`)
        self.prior_beta = 0.0

    def use_prior(self, prior: Prior, beta: float = 10.0) -> None:
        """Weight the acquisition by ``prior(x) ** (beta / n)`` and draw the initial random
        configs from ``prior`` (piBO, see the module docstring). Called once, after construction
        and before the first suggestion (the factories of ``PiBO`` and ``PiBO-MOBSTER``).

        Raises:
            ValueError: ``beta`` is not a number >= 0, the acquisition is not ``"ei"``, or the
                prior is over another space.
        """
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < math.inf:
            raise ValueError(f"prior_beta must be a number >= 0, got {beta!r}")
        if self.acquisition != "ei":
            raise ValueError(f"a prior weights expected improvement: it needs acquisition='ei', got "
                             f"{self.acquisition!r}")
        if dict(prior.config_space) != dict(self.config_space):
            raise ValueError("the prior is over another config space than the searcher's")
        self._prior = prior
        self.prior_beta = float(beta)

    def prior_weight(self) -> float:
        """The exponent ``beta / n`` of the prior in the next acquisition (0 without a prior;
        ``n`` the number of observations, at least 1)."""
        if self._prior is None:
            return 0.0
        return self.prior_beta / max(1, self._n_observations())

    def _make_surrogate(self) -> GPSurrogate:
        """A fresh :class:`GPSurrogate` over this searcher's inputs (encoded config and extra
        columns), with its options (warping, refit schedule, sizes): the objective's model, and
        any other one a subclass keeps beside it (e.g. one per constraint)."""
        return GPSurrogate(self._encoder.encoded_dim + self._extra_dims, **self._surrogate_options)

    # -- subclass interface --------------------------------------------------------------------

    def _n_observations(self) -> int:
        raise NotImplementedError

    def _acquisition_model(self) -> tuple[GaussianProcess, float, np.ndarray | None, np.ndarray | None]:
        """``(gp, best, starts, extra)`` for the next model-based suggestion: the objective's GP
        (pending trials fantasized), the incumbent, rows to start local searches from, the
        columns appended to each encoded config (see :meth:`_acquire`)."""
        raise NotImplementedError

    def _model_based_config(self) -> Config | None:
        return self._acquire(*self._acquisition_model())

    def acquisition_scores(self, configs: Sequence[Config]) -> np.ndarray:
        """The acquisition scores (higher is better) the next model-based suggestion gives to
        ``configs``: ``log EI`` (``acquisition="ei"``), ``log EI - alpha * log cost`` (with
        ``cost_attr``) or ``-LCB``.  For diagnostics and tests; changes no state except the
        model, brought up to date as a suggestion would.

        Raises:
            ValueError: fewer than 2 observations, or Thompson sampling (random scores).
        """
        if self._n_observations() < 2:
            raise ValueError("the model needs at least 2 observations")
        if self.acquisition == "ts":
            raise ValueError("Thompson sampling has no deterministic score")
        with _blas_threads(self.blas_threads):
            gp, best, _, extra = self._acquisition_model()
            score = self._score_function(gp, best, extra)
            return np.asarray(score(self._encoder.encode([dict(c) for c in configs])), dtype=float)

    #: the model's input rows, one per observation (the subclasses fill them)
    _X: _Rows

    def _select(self, n: int, budget: int) -> np.ndarray:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------

    def _value(self, result: Result) -> float:
        """The result's metric to minimize; NaN -> inf.

        Raises:
            UserError: the result has no such metric, or it is not a number.
        """
        try:
            value = float(result[self.metric])
        except KeyError:
            raise UserError(
                f"the result has no metric '{self.metric}' (reported keys: {', '.join(sorted(result))})"
            ) from None
        except (TypeError, ValueError):
            raise UserError(f"metric '{self.metric}' = {result[self.metric]!r} is not a number") from None
        return to_minimize(value, self.mode)

    def _note_cost(self, trial_id: int, result: Result) -> float | None:
        """With ``cost_attr``: the result's cost, remembered as the trial's cost so far (costs
        are cumulative: what the trial has cost up to this result); without: None.

        Raises:
            UserError: the result has no such metric, or it is not a finite number >= 0.
        """
        if self.cost_attr is None:
            return None
        try:
            raw = result[self.cost_attr]
        except KeyError:
            raise UserError(
                f"the result has no cost '{self.cost_attr}' (reported keys: {', '.join(sorted(result))}): "
                f"report it with every result, or drop --cost-attr"
            ) from None
        if isinstance(raw, bool) or not isinstance(raw, (int, float, np.integer, np.floating)) or not (
                0 <= raw < math.inf):
            raise UserError(f"cost '{self.cost_attr}' = {raw!r} is not a finite number >= 0")
        cost = float(raw)
        self._spent[trial_id] = cost
        return cost

    def _append_log_cost(self, cost: float | None) -> None:
        """Record the cost of the observation just appended (with ``cost_attr``)."""
        if self.cost_attr is not None:
            self._obs_logc.append(math.log(max(float(cost if cost is not None else 0.0), _MIN_COST)))

    def cost_exponent_now(self) -> float:
        """The exponent ``alpha`` of the cost in ``EI / cost^alpha`` for the next suggestion:
        ``cost_exponent``, or with ``cost_budget`` CArBO's cost cooling
        ``cost_exponent * (budget - spent) / (budget - spent_init)`` clipped to ``[0, 1]`` times
        it, where ``spent`` sums the last cost each trial reported and ``spent_init`` is what
        was spent when the first model-based suggestion was made (the initial design)."""
        if self.cost_budget is None:
            return self.cost_exponent
        spent = math.fsum(self._spent.values())
        start = self._spent_at_model if self._spent_at_model is not None else spent
        room = self.cost_budget - start
        if room <= 0:
            return 0.0
        return self.cost_exponent * min(1.0, max(0.0, (self.cost_budget - spent) / room))

    def _cost_model(self) -> GaussianProcess | None:
        """The cost GP brought up to date with every observation (None without ``cost_attr``)."""
        if self._cost_surrogate is None:
            return None
        return self._cost_surrogate.update(self._X.array, np.asarray(self._obs_logc), self._select)

    def _register(self, trial_id: int, config: Config) -> None:
        row = self._encoder.encode([config])[0]
        self._configs[trial_id] = config
        self._rows[trial_id] = row
        self._keys.add(row_keys(row[None, :])[0])

    def _row(self, trial_id: int, config: Config | None) -> np.ndarray:
        row = self._rows.get(trial_id)
        if row is None:  # a trial this searcher did not suggest (added by hand)
            if config is None:
                raise ValueError(f"trial {trial_id} is unknown to the searcher and came without its config")
            self._register(trial_id, dict(config))
            row = self._rows[trial_id]
        return row

    def _random_config(self) -> Config:
        """A random config not suggested before (up to 100 draws; then a duplicate)."""
        exhausted = self._cardinality is not None and len(self._keys) >= self._cardinality
        prior = self._prior

        def draw() -> Config:
            if prior is not None:  # piBO: the initial design comes from the prior
                return prior.sample(self._rng, 1)[0]
            return sample_configs(self.config_space, self._rng, 1)[0]

        config = draw()
        if exhausted:
            return config
        for _ in range(100):
            key = row_keys(self._encoder.encode([config]))[0]
            if key not in self._keys:
                break
            config = draw()
        return config

    def suggest(self, trial_id: int) -> Config:
        """Called for each new trial: the next of ``points_to_evaluate``, else a random config
        during the first ``num_init_random`` suggestions (or while fewer than 2 observations
        are in), else the config maximizing the acquisition.  Never ``None``."""
        if self._next_point < len(self._points):
            config = dict(self._points[self._next_point])
            self._next_point += 1
        elif len(self._configs) < self.num_init_random or self._n_observations() < 2:
            config = self._random_config()
        else:
            if self.cost_attr is not None and self._spent_at_model is None:
                self._spent_at_model = math.fsum(self._spent.values())
            with _blas_threads(self.blas_threads):
                found = self._model_based_config()
            config = found if found is not None else self._random_config()
        self._register(trial_id, config)
        self._on_suggested(trial_id)
        return dict(config)

    def _on_suggested(self, trial_id: int) -> None:
        """Hook: the trial was just registered."""

    @staticmethod
    def _inputs(extra: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
        """Encoded configs -> model inputs (``extra`` columns appended to each, if any)."""
        extra_row = None if extra is None else np.asarray(extra, dtype=float)[None, :]

        def inputs(C: np.ndarray) -> np.ndarray:
            if extra_row is None:
                return C
            return np.concatenate([C, np.repeat(extra_row, C.shape[0], axis=0)], axis=1)

        return inputs

    def _acquire(self, gp: GaussianProcess, best: float, starts: np.ndarray | None,
                 extra: np.ndarray | None) -> Config | None:
        """Maximize the acquisition of ``gp`` over configs (``extra``: columns appended to each
        encoded config, e.g. the target resource) and decode the winner."""
        if self.acquisition == "ts":
            inputs = self._inputs(extra)
            C = self._optimizer.sample(self._rng, self._optimizer.n_candidates)
            sample = gp.sample_posterior(inputs(C), 1, self._rng)[0]
            for i in np.argsort(sample, kind="stable"):
                if row_keys(C[i:i + 1])[0] not in self._keys:
                    return self._optimizer.decode(C[i:i + 1])[0]
            return None
        return self._maximize(self._score_function(gp, best, extra), starts)

    def _score_function(self, gp: GaussianProcess, best: float,
                        extra: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
        """The acquisition score of encoded configs (higher is better; not Thompson sampling)."""
        inputs = self._inputs(extra)
        if self.acquisition == "lcb":
            kappa = self.kappa

            def score(C: np.ndarray) -> np.ndarray:
                mean, var = gp.predict(inputs(C))
                return -lower_confidence_bound(mean, var, kappa)
        elif self._cost_surrogate is not None:
            cost_gp = self._cost_model()
            assert cost_gp is not None  # with a cost surrogate
            alpha = self.cost_exponent_now()

            def score(C: np.ndarray) -> np.ndarray:
                Q = inputs(C)
                mean, var = gp.predict(Q)
                return log_ei_per_cost(mean, var, best, cost_gp.predict(Q, return_var=False)[0], alpha)
        else:

            def score(C: np.ndarray) -> np.ndarray:
                mean, var = gp.predict(inputs(C))
                return log_expected_improvement(mean, var, best)

        if self._prior is not None:
            return self._prior_weighted(score, self._prior, self.prior_weight())
        return score

    @staticmethod
    def _prior_weighted(score: Callable[[np.ndarray], np.ndarray], prior: Prior,
                        weight: float) -> Callable[[np.ndarray], np.ndarray]:
        """piBO: ``score + weight * log prior`` (the acquisition times ``prior ** weight``)."""

        def weighted(C: np.ndarray) -> np.ndarray:
            return score(C) + weight * prior.log_pdf(C)

        return weighted

    def _maximize(self, score: Callable[[np.ndarray], np.ndarray], starts: np.ndarray | None) -> Config | None:
        """The config maximizing ``score`` (encoded rows -> higher-is-better values) among
        those not suggested before (the acquisition optimizer, local searches also from
        ``starts``), decoded; ``None`` when every row visited was suggested before."""
        found = self._optimizer.optimize(score, self._rng, exclude=self._keys, starts=starts)
        if found is None:
            return None
        return self._optimizer.decode(found[0][None, :])[0]

    def _sub_rng(self, *salt: int) -> np.random.Generator:
        """A generator determined by the seed and ``salt`` (subsampling; does not touch the
        main RNG, so subsampling decisions can be replayed)."""
        return np.random.default_rng([int(self.seed) & 0xFFFFFFFF, *[int(s) for s in salt]])

    def _base_state(self) -> dict[str, Any]:
        state = {
            "rng": self._rng.bit_generator.state,
            "next_point": self._next_point,
            "configs": {str(tid): c for tid, c in self._configs.items()},
            "surrogate": self._surrogate.state_dict(),
        }
        if self._cost_surrogate is not None:
            state["cost"] = {
                "spent": {str(t): c for t, c in self._spent.items()},
                "spent_at_model": self._spent_at_model,
                "log_costs": list(self._obs_logc),
                "surrogate": self._cost_surrogate.state_dict(),
            }
        return state

    def _load_cost_state(self, state: dict[str, Any]) -> None:
        """Restore the cost model of :meth:`_base_state` (after the observations ``_X``)."""
        if self._cost_surrogate is None:
            return
        cost = state.get("cost")
        if cost is None:
            raise ValueError("the state has no cost model: it was saved by a searcher without cost_attr")
        self._spent = {int(t): float(c) for t, c in cost["spent"].items()}
        at = cost["spent_at_model"]
        self._spent_at_model = None if at is None else float(at)
        self._obs_logc = [float(v) for v in cost["log_costs"]]
        self._cost_surrogate.load_state_dict(cost["surrogate"], self._X.array, np.asarray(self._obs_logc))

    def _load_base_state(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self._next_point = int(state["next_point"])
        self._configs, self._rows, self._keys = {}, {}, set()
        tids = [int(key) for key in state["configs"]]
        configs = [dict(config) for config in state["configs"].values()]
        if configs:
            rows = self._encoder.encode(configs)  # one batch: the same values as one at a time
            for tid, config, row, key in zip(tids, configs, rows, row_keys(rows), strict=True):
                self._configs[tid] = config
                self._rows[tid] = row
                self._keys.add(key)


class _FinalResultObservations:
    """The trial life cycle of a searcher whose observation of a trial is its final result (the
    one :meth:`on_complete` gets, or the last one seen when :meth:`on_stop` ends the trial): the
    trials suggested and not finished (``_pending``, fantasized by the model), the paused ones, and
    the last value of each running trial. Shared by :class:`GPSearcher` (one value) and
    :class:`tunebench.searchers.mobo.MOBOSearcher` (a vector of objectives); a subclass gives
    :meth:`_final_value` and ``_observe(trial_id, config, value)``, and calls
    :meth:`_start_life_cycle` in its ``__init__``."""

    _pending: dict[int, None]
    _paused: set[int]
    _last: dict[int, Any]

    def _start_life_cycle(self) -> None:
        self._pending = {}  #: trials suggested and not finished (ordered set)
        self._paused = set()
        self._last = {}  #: last value of each running trial

    def _final_value(self, trial_id: int, result: Result) -> Any:
        """What ``result`` tells the model of the trial (raises a UserError when it cannot)."""
        raise NotImplementedError

    if TYPE_CHECKING:  # given by the subclass and by _GPSearcherBase (later in the MRO: not defined here)
        def _observe(self, trial_id: int, config: Config | None, value: Any) -> None: ...

        def _note_cost(self, trial_id: int, result: Result) -> float | None: ...

    def _on_suggested(self, trial_id: int) -> None:
        self._pending[trial_id] = None

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for every result: remembers the trial's last value (its observation if the
        scheduler stops it) and, with ``cost_attr``, its cost so far.

        Raises:
            UserError: the result lacks the metric (an objective) or the cost.
        """
        self._last[trial_id] = self._final_value(trial_id, result)
        self._note_cost(trial_id, result)

    def on_complete(self, trial_id: int, config: Config, result: Result | None) -> None:
        """Called when the trial ends normally: its final result becomes an observation (with
        ``cost_attr``, its cost that of the cost model)."""
        if result is not None:
            self._note_cost(trial_id, result)
        value = self._final_value(trial_id, result) if result is not None else self._last.get(trial_id)
        self._pending.pop(trial_id, None)
        self._paused.discard(trial_id)
        self._last.pop(trial_id, None)
        if value is not None:
            self._observe(trial_id, config, value)

    def on_error(self, trial_id: int, config: Config) -> None:
        """Called when the trial failed: no observation, no longer pending."""
        self._pending.pop(trial_id, None)
        self._paused.discard(trial_id)
        self._last.pop(trial_id, None)

    def on_stop(self, trial_id: int, config: Config, paused: bool) -> None:
        """Called when the scheduler stops or pauses the trial: its last value becomes an
        observation; a paused trial may come back (:meth:`on_resume`)."""
        self._pending.pop(trial_id, None)
        value = self._last.pop(trial_id, None)
        if value is not None:
            self._observe(trial_id, config, value)
        if paused:
            self._paused.add(trial_id)

    def on_resume(self, trial_id: int) -> None:
        """Called when a paused trial is resumed: pending again."""
        if trial_id in self._paused:
            self._paused.discard(trial_id)
            self._pending[trial_id] = None


class GPSearcher(_FinalResultObservations, _GPSearcherBase):
    """Asynchronous single-fidelity Bayesian optimization with a GP (method ``BO``).

    The objective of a trial is its final result: the result passed to :meth:`on_complete`
    (or the last one seen, when :meth:`on_stop` ends it early).  See the module docstring.

    Args:
        config_space: name -> domain or constant.
        metric: the metric to optimize.
        mode: ``"min"`` or ``"max"``.
        seed: seed of the random number generator.
        points_to_evaluate: configs proposed first (missing keys take the space's defaults).
        num_init_random: suggestions (``points_to_evaluate`` included) before the model is used
            (it also waits for 2 observations); default 3, whatever the dimension, as Syne Tune:
            with a budget of 15 to 25 trials (lcbench in 7,200 s on 4 workers), the former
            ``max(5, number of hyperparameters + 1)`` spent a third of them at random, and the
            model proves useful from 2 observations on (``benchmarks/method_quality.py``).
        acquisition: ``"ei"`` (expected improvement, default), ``"lcb"`` (lower confidence
            bound ``mean - kappa * sd``) or ``"ts"`` (Thompson sampling over ``n_candidates``
            random configs).
        kappa: exploration weight of ``"lcb"``.
        input_warping: learn a Kumaraswamy warping of each non-categorical input.
        refit_factor, refit_every, max_model_points, max_fit_points: model schedule and sizes
            (see :class:`GPSurrogate`).
        n_candidates, n_starts, max_steps: acquisition optimizer (see
            :class:`tunebench.models.acquisition.AcquisitionOptimizer`).
        blas_threads: BLAS threads for the model (see the module docstring).
        cost_attr: reported metric holding the trial's cost so far (cumulative, e.g. elapsed
            seconds); given, a trial's cost is the one its final result reports, a GP models its
            log and the acquisition is EI per unit of cost (see the module docstring; needs
            ``acquisition="ei"``).  ``None``: plain EI.
        cost_exponent: ``alpha`` of ``EI / cost^alpha`` (>= 0; 0 ignores the cost); with
            ``cost_budget``, its value at the start of the cost cooling.
        cost_budget: total cost of the run (in the cost's units); given, ``alpha`` cools from
            ``cost_exponent`` to 0 as it is spent (CArBO); ``None``: ``alpha`` stays fixed.

    Raises:
        ValueError: an invalid argument (the message names it).
    """

    def _default_num_init_random(self, n_hp: int) -> int:
        """3 whatever the dimension (see ``num_init_random`` above)."""
        return 3

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        *,
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        acquisition: str = "ei",
        kappa: float = 2.0,
        **options: Any,
    ) -> None:
        if acquisition not in _ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {', '.join(_ACQUISITIONS)}, got {acquisition!r}")
        if not kappa >= 0:
            raise ValueError(f"kappa must be >= 0, got {kappa!r}")
        if options.get("cost_attr") is not None and acquisition != "ei":
            raise ValueError(f"a cost (cost_attr) needs acquisition='ei' (EI per unit of cost), got {acquisition!r}")
        super().__init__(config_space, metric, mode, seed, points_to_evaluate=points_to_evaluate,
                         num_init_random=num_init_random, **options)
        self.acquisition = acquisition
        self.kappa = float(kappa)
        self._start_life_cycle()
        self._obs_tid: list[int] = []
        self._obs_y: list[float] = []  #: targets (non-finite values replaced by the worst finite one)
        self._X = _Rows(self._encoder.encoded_dim)

    def _n_observations(self) -> int:
        return len(self._obs_y)

    def _observe(self, trial_id: int, config: Config | None, value: float) -> None:
        if not math.isfinite(value):
            if not self._obs_y:
                return  # nothing to compare with yet: left out of the model
            value = max(self._obs_y)
        self._X.append(self._row(trial_id, config))
        self._obs_tid.append(trial_id)
        self._obs_y.append(float(value))
        self._append_log_cost(self._spent.get(trial_id))

    def _final_value(self, trial_id: int, result: Result) -> float:
        return self._value(result)

    def _select(self, n: int, budget: int) -> np.ndarray:
        """Subsample of the first ``n`` observations: the best quarter of ``budget``, the rest
        drawn at random (seeded by the seed and ``n``: replayable)."""
        y = np.asarray(self._obs_y[:n])
        order = np.argsort(y, kind="stable")
        n_top = budget // 4
        top = order[:n_top]
        rest = order[n_top:]
        drawn = self._sub_rng(n, budget).choice(len(rest), size=budget - n_top, replace=False)
        return np.sort(np.concatenate([top, rest[drawn]]))

    def _acquisition_model(self) -> tuple[GaussianProcess, float, np.ndarray | None, np.ndarray | None]:
        X = self._X.array
        y = np.asarray(self._obs_y)
        gp = self._surrogate.update(X, y, self._select)
        if self._pending:
            gp = gp.fantasize(np.stack([self._rows[t] for t in self._pending]))
        best = float(np.min(y))
        k = min(len(y), 1)
        starts = X[np.argsort(y, kind="stable")[:k]]
        return gp, best, starts, None

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: RNG, configs suggested, pending trials, observations, model."""
        state = self._base_state()
        state.update(
            pending=list(self._pending),
            paused=sorted(self._paused),
            last={str(t): json_float(v) for t, v in self._last.items()},
            observations=[[t, v] for t, v in zip(self._obs_tid, self._obs_y, strict=True)],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (on a searcher built with the same arguments); the GP is
        rebuilt from the observations exactly as it was."""
        self._load_base_state(state)
        self._pending = {int(t): None for t in state["pending"]}
        self._paused = {int(t) for t in state["paused"]}
        self._last = {int(t): float_from_json(v) for t, v in state["last"].items()}
        self._obs_tid, self._obs_y = [], []
        self._X = _Rows(self._encoder.encoded_dim)
        for t, v in state["observations"]:
            self._X.append(self._rows[int(t)])
            self._obs_tid.append(int(t))
            self._obs_y.append(float(v))
        self._surrogate.load_state_dict(state["surrogate"], self._X.array, np.asarray(self._obs_y))
        self._load_cost_state(state)


class MOBSTERSearcher(_GPSearcherBase):
    """The searcher of MOBSTER: a GP over (config, resource) and EI at a target resource (see
    the module docstring).  Use it with :class:`tunebench.schedulers.ASHA` (or any scheduler
    that calls :meth:`on_result` for every result and :meth:`on_stop` / :meth:`on_resume`).

    Args:
        config_space, metric, mode, seed, points_to_evaluate: as :class:`GPSearcher`.
        num_init_random: as :class:`GPSearcher`, but by default ``max(5, number of
            hyperparameters + 1)`` (MOBSTER's early results are cheap, at the lowest rung).
        resource_attr: name of the resource in results (e.g. ``"epoch"``).
        max_t, grace_period, reduction_factor, rung_levels: the scheduler's fidelity ladder
            (validated as :class:`~tunebench.fidelity.FidelityLadder` does: same rules, same
            messages); the rung levels are where the scheduler decides (pending trials are
            modelled at the next one), by default ``grace_period * reduction_factor**k`` below
            ``max_t``; the smallest of ``grace_period`` and the rung levels is the low end of
            the log-resource scale.
        input_warping, refit_factor, refit_every, max_model_points, max_fit_points,
        n_candidates, n_starts, max_steps, blas_threads: as :class:`GPSearcher`.
        cost_attr, cost_exponent, cost_budget: as :class:`GPSearcher`, with this cost model: the
            GP on log cost takes the same inputs as the objective's (config, normalized
            resource) and is fitted on every observation, each with the cost its result reports
            (the trial's cumulative cost up to that resource); a new config is scored by EI at
            the target resource divided by ``cost^alpha``, the cost predicted at the *target
            resource*: what training the new config from scratch up to that resource costs.

    Raises:
        ValueError: an invalid argument (the message names it).
    """

    _extra_dims = 1

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        *,
        resource_attr: str,
        max_t: float,
        rung_levels: Sequence[float] | None = None,
        grace_period: float = 1,
        reduction_factor: float = 3,
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        **options: Any,
    ) -> None:
        if not resource_attr or not isinstance(resource_attr, str):
            raise ValueError(f"resource_attr must be the name of the reported resource, got {resource_attr!r}")
        ladder = FidelityLadder.geometric(max_t, grace_period, reduction_factor, rung_levels=rung_levels)
        min_resource = ladder.min_resource
        super().__init__(config_space, metric, mode, seed, points_to_evaluate=points_to_evaluate,
                         num_init_random=num_init_random, **options)
        self.resource_attr = resource_attr
        self.max_t = max_t
        self.min_resource = min_resource
        self.levels = [float(r) for r in ladder.levels]  #: rung levels and max_t, increasing
        self._log_span = math.log(max_t / min_resource) if max_t > min_resource else 0.0
        self.target_threshold = self._encoder.encoded_dim
        self._running: dict[int, None] = {}  #: trials that will report more (ordered set)
        self._last_r: dict[int, float] = {}  #: last resource reported, per trial
        self._obs_tid: list[int] = []
        self._obs_r: list[float] = []
        self._obs_y: list[float] = []
        self._X = _Rows(self._encoder.encoded_dim + 1)

    def normalize_resource(self, r: float) -> float:
        """Resource -> model input in [0, 1] (log scale between ``min_resource`` and ``max_t``)."""
        if self._log_span == 0.0:
            return 1.0
        if r <= 0:
            return 0.0
        return min(1.0, max(0.0, math.log(r / self.min_resource) / self._log_span))

    def _n_observations(self) -> int:
        return len(self._obs_y)

    def _on_suggested(self, trial_id: int) -> None:
        self._running[trial_id] = None

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for every result: becomes an observation at its resource (a result at a
        resource not above the trial's last one, re-reported after a restart, is ignored)."""
        try:
            r = result[self.resource_attr]
        except KeyError:
            raise UserError(
                f"the result has no resource '{self.resource_attr}' (reported keys: {', '.join(sorted(result))})"
            ) from None
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise UserError(f"resource '{self.resource_attr}' = {r!r} is not a number")
        value = self._value(result)
        cost = self._note_cost(trial_id, result)
        row = self._row(trial_id, config)
        last = self._last_r.get(trial_id)
        if last is not None and r <= last:
            return
        self._last_r[trial_id] = r
        if not math.isfinite(value):
            if not self._obs_y:
                return
            value = max(self._obs_y)
        x = np.empty(row.shape[0] + 1)
        x[:-1] = row
        x[-1] = self.normalize_resource(r)
        self._X.append(x)
        self._obs_tid.append(trial_id)
        self._obs_r.append(r)
        self._obs_y.append(float(value))
        self._append_log_cost(cost)

    def on_complete(self, trial_id: int, config: Config, result: Result | None) -> None:
        """Called when the trial ends normally: no longer pending."""
        self._running.pop(trial_id, None)

    def on_error(self, trial_id: int, config: Config) -> None:
        """Called when the trial failed: no longer pending (its results stay observations)."""
        self._running.pop(trial_id, None)

    def on_stop(self, trial_id: int, config: Config, paused: bool) -> None:
        """Called when the scheduler stops or pauses the trial: no longer pending."""
        self._running.pop(trial_id, None)

    def on_resume(self, trial_id: int) -> None:
        """Called when a paused trial is resumed: pending again, at its next rung level."""
        if trial_id in self._configs:
            self._running[trial_id] = None

    def _next_level(self, trial_id: int) -> float:
        last = self._last_r.get(trial_id)
        if last is None:
            return self.levels[0]
        for level in self.levels:
            if level > last:
                return level
        return self.levels[-1]

    def _select(self, n: int, budget: int) -> np.ndarray:
        """Subsample of the first ``n`` observations: each trial's latest result (highest
        resources first, then best values), then an even spread of the others (ordered by
        resource, highest first).  Deterministic."""
        tid = np.asarray(self._obs_tid[:n])
        r = np.asarray(self._obs_r[:n], dtype=float)
        y = np.asarray(self._obs_y[:n])
        # latest result of each trial: the last occurrence of each trial id
        rev_first = np.unique(tid[::-1], return_index=True)[1]
        latest = n - 1 - rev_first
        latest = latest[np.lexsort((y[latest], -r[latest]))]
        if len(latest) >= budget:
            return np.sort(latest[:budget])
        others = np.setdiff1d(np.arange(n), latest, assume_unique=True)
        others = others[np.lexsort((others, -r[others]))]
        k = budget - len(latest)
        picks = np.unique(np.round(np.linspace(0, len(others) - 1, k)).astype(np.intp))
        return np.sort(np.concatenate([latest, others[picks]]))

    def _target_level(self) -> float:
        reached = np.asarray(list(self._last_r.values()), dtype=float)
        for level in reversed(self.levels):
            if np.count_nonzero(reached >= level) >= self.target_threshold:
                return level
        return self.levels[0]

    def _acquisition_model(self) -> tuple[GaussianProcess, float, np.ndarray | None, np.ndarray | None]:
        X = self._X.array
        y = np.asarray(self._obs_y)
        gp = self._surrogate.update(X, y, self._select)
        pending = [t for t in self._running if t in self._rows]
        if pending:
            P = np.empty((len(pending), X.shape[1]))
            for i, t in enumerate(pending):
                P[i, :-1] = self._rows[t]
                P[i, -1] = self.normalize_resource(self._next_level(t))
            gp = gp.fantasize(P)
        target = self._target_level()
        # incumbent: each trial's first result at or above the target, best of them
        tid = np.asarray(self._obs_tid)
        r = np.asarray(self._obs_r, dtype=float)
        at = np.flatnonzero(r >= target)
        starts = None
        if len(at):
            at = at[np.lexsort((r[at], tid[at]))]
            first = at[np.unique(tid[at], return_index=True)[1]]
            first = first[np.argsort(y[first], kind="stable")]
            best = float(y[first[0]])
            starts = np.stack([self._rows[int(t)] for t in tid[first[:1]]])
        else:
            best = float(np.min(y))
        return gp, best, starts, np.array([self.normalize_resource(target)])

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: RNG, configs suggested, running trials, observations, model."""
        state = self._base_state()
        state.update(
            running=list(self._running),
            last_r={str(t): r for t, r in self._last_r.items()},
            observations=[[t, r, v] for t, r, v in zip(self._obs_tid, self._obs_r, self._obs_y, strict=True)],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (on a searcher built with the same arguments); the GP is
        rebuilt from the observations exactly as it was."""
        self._load_base_state(state)
        self._running = {int(t): None for t in state["running"]}
        self._last_r = {int(t): r for t, r in state["last_r"].items()}
        self._obs_tid, self._obs_r, self._obs_y = [], [], []
        self._X = _Rows(self._encoder.encoded_dim + 1)
        for t, r, v in state["observations"]:
            x = np.empty(self._encoder.encoded_dim + 1)
            x[:-1] = self._rows[int(t)]
            x[-1] = self.normalize_resource(r)
            self._X.append(x)
            self._obs_tid.append(int(t))
            self._obs_r.append(r)
            self._obs_y.append(float(v))
        self._surrogate.load_state_dict(state["surrogate"], self._X.array, np.asarray(self._obs_y))
        self._load_cost_state(state)
