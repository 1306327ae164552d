"""FTBO: asynchronous freeze-thaw Bayesian optimization over a learning-curve surrogate.

After ifBO (Rakotoarison, Adriaensen, Mallik, Garibov, Bergman, Hutter: "In-Context Freeze-Thaw
Bayesian Optimization for Hyperparameter Optimization", ICML 2024), on the freeze-thaw race of
:mod:`tunebench.schedulers.freeze_thaw` (the same fidelity steps, pausing and resuming as DyHPO):

* every decision (a worker is free) resumes a paused trial for one more fidelity step, or starts
  a new configuration at the first step;
* the model is a learning-curve surrogate (:class:`~tunebench.models.curves.CurveSurrogate`) fitted
  before each decision on the observed points: encoded configs, fidelities ``resource / max_t``,
  values min-max normalized (lower is better); ``surrogate="dpl"``: the power-law ensemble
  :class:`~tunebench.models.dpl.DPLEnsemble`; ``surrogate="gp"``: our GP with freeze-thaw's
  exponential-decay kernel over the fidelity (:class:`~tunebench.models.ftgp.FreezeThawGPSurrogate`,
  hyperparameters refitted every ``refit_factor`` times more observations; registered as
  ``FreezeThawGP``: the same race and acquisition as FTBO, so that a comparison isolates the
  surrogate).  The DPL ensemble's schedule with FTBO's defaults: a full fit (250
  full-batch Adam steps from the initial weights) whenever the observations grew 1.5x since the
  last one, else a warm fit (10 steps from the last full fit's weights); a decision at 1000
  observations is a warm fit of 5 members on 256 points plus the scoring of about 200 candidates
  (``benchmarks/ftbo_decision_time.py``).
  The context is capped at ``max_context`` points (:func:`~tunebench.models.curves.cap_context`:
  every curve's last point, then log-spaced earlier ones);
* the acquisition is ifBO's MFPI-random: per decision one random *horizon* ``h`` (uniform over
  ``1 .. number of steps``) and one random *threshold* ``y* - tau`` with ``log10 tau ~ U(-4, -1)``
  (``y*``: the incumbent, the best normalized value observed or expected of a running trial;
  ifBO takes ``tau`` times the distance from the incumbent to the best possible value, which a
  loss does not have: the observed range, 1 after normalization, stands in for it); each
  candidate is scored by the probability that its value ``h`` steps on (capped at ``max_t``) is
  below the threshold, ``log P(y < threshold)``, under the predictive of an observation (the
  members' spread plus the fit's noise; ``acquisition_noise=False``: the members' spread alone,
  DPL's choice.  On lcbench 7593/3945/34539, seeds 0-2, 1 worker, 7200 simulated s, the default
  won 5 of 9 runs, lost 3; a known weakness of it: trials whose flat curves sit at the incumbent
  keep a probability near 1/2 and are thawed on);
* candidates: every paused trial (from its current step), and one new configuration (from before
  the first step), never a config already started.  ``new_config="gp"`` (the default, *ours*):
  the maximizer of the expected improvement at ``max_t`` over the best value observed, under a GP
  over (config, log resource) fitted on every result (DyHPO's model; running trials fantasized);
  ``new_config="acquisition"`` (ifBO's rule): the maximizer of the acquisition under the curve
  surrogate.  Either way a search over random samples of the space and a local search from them
  and from the best observed configs (:class:`~tunebench.models.acquisition.AcquisitionOptimizer`),
  and the new configuration is then scored by the acquisition like the paused trials: the curve
  surrogate decides between starting it and thawing;
* running trials are never candidates, and they are *fantasized*: the surrogate's mean of each at
  its next step counts for the incumbent, so that a promising trial in flight raises the bar;
* the first ``num_init_random`` trials (and ``points_to_evaluate``) start without the model.

:meth:`FTBO.suggest_resume` (no new trial may start) makes the same decision but answers only
if a paused trial wins it (``None`` and no change otherwise).

``surrogate="pfn"``: the prior-data fitted network shipped with tunebench
(:class:`~tunebench.models.pfn.PFNSurrogate`, numpy inference of the ``ftpfn-v4`` weights): its
"fit" conditions it on the context in one forward pass, no training; it takes spaces of at most
10 encoded columns.  By default (``config_inputs="auto"``) it is given, for each configuration,
the value at ``max_t`` that the proposing GP predicts for it instead of its encoded columns: the
GP, fitted with a lengthscale per hyperparameter on every result, tells configurations apart,
which the small PFN does poorly in context, and the PFN extrapolates each curve from that value
and the curve's own points.

Figures (README, "Where FTBO stands"; ``benchmarks/ftbo_quality.py --tasks dev --seeds 10
--setting 1w --started``: lcbench 3945, 7593, 34539, 126025, 126026, 126029, 146212, 167104 x 10
seeds, 1 worker, 1000 epochs; mean normalized regret at 25 / 50 / 100 % of the budget, trials
started, and the regret had each run trained the best configuration it started to the end):

* PFN (``ftpfn-v4``), ``new_config="acquisition"``: 0.503 / 0.402 / 0.288, 47 trials, best
  started 0.225 (47 random configurations: 0.258): the curve surrogate's choice of new
  configurations is hardly better than chance.  The PFN ranks untried configurations poorly
  (Spearman correlation of its predicted final value with the true one over 1000 random
  configurations, at 300 results of these runs: 0.10, the GP's 0.41; at the first epoch 0.13
  against 0.60; on its own prior, 40 configurations observed at the first budget: 0.44 against
  0.78), while it extrapolates observed curves well;
* PFN, ``new_config="gp"``, geometric steps (``step=None``): 0.470 / 0.310 / 0.162, 30 trials,
  best started 0.142 (Wilcoxon p = 0.006 at 50 %, 1e-6 at 100 %, 7 of 8 tasks won); with one
  epoch per step (ifBO's setting; ``step=1``, and the default ``step="auto"`` where trials resume
  from checkpoints, as in the simulator) 0.385 / 0.228 / 0.139, 86 trials (p = 0.001 / < 0.001 /
  0.04 against geometric steps); with ``incumbent="level"`` (geometric steps) 0.451 /
  0.298 / 0.184 (no gain);
* PFN, ``new_config="gp"``, one epoch per step, and the PFN given the proposing GP's predicted
  final value instead of the encoded config (``config_inputs="gp"``, the default with the PFN):
  0.370 / 0.192 / 0.112, 56 trials, best started 0.092 (p = 0.61 / 0.46 / 0.36 against the
  encoded configs; with the value clipped to [0, 1] instead of :data:`~tunebench.models.curves.GP_FEATURE_RANGE`
  0.422 / 0.242 / 0.151, 52 trials, to [-0.5, 1.5] 0.376 / 0.198 / 0.119).  As a surrogate it is
  the better model on held-out lcbench curves than the PFN on encoded configs, the GP and the DPL
  ensemble at 100, 300 and 1000 observed points (``benchmarks/surrogate_quality.py``, README);
* ``step=1`` with ``new_config="acquisition"``: 0.521 / 0.381 / 0.241, 158 trials;
* DPL ensemble (geometric steps): ``new_config="acquisition"`` 0.516 / 0.406 / 0.300 (49 trials),
  ``"gp"`` 0.443 / 0.275 / 0.136 (30 trials; p = 0.007 at 50 %, < 0.001 at 100 %); with one epoch
  per step (the default on the simulator) 0.355 / 0.244 / 0.112 (39 trials; p = 0.001 / 0.08 /
  0.29 against geometric steps);
* baselines with their defaults: HyperTune 0.467 / 0.268 / 0.127, DyHPO 0.444 / 0.243 / 0.136,
  MOBSTER 0.371 / 0.255 / 0.162.

Earlier (3 seeds, ``new_config="acquisition"``): ``ftpfn-v3`` 0.295 / 0.389 at 100 / 50 %,
``ftpfn-v2`` 0.296 / 0.397, ``ftpfn-v1`` 0.282 / 0.414; ``horizon="common"`` and
``incumbent="level"`` no better than ifBO's rule beyond the noise; DyHPO's own rule
(``acquisition="ei"``) worse, starting many times as many trials (README, "Where FTBO stands").
Tried and not adopted: another value range for the PFN ([0.5, 0.95]), moving each curve's
prediction by the model's error at its last observation, ``max_context`` 64 or 128, a fixed value
scale (``value_bounds``: no change, kept as an option), the new configuration with the best
PFN mean at ``max_t`` (0.569 / 0.414 / 0.286), the proposing GP's EI at MOBSTER's target level
instead of ``max_t``, candidates scored under a product of experts of the PFN and the proposing
GP, MFPI-random's ``tau`` scaled by 0.01-10, and the new configuration given the GP's optimistic
value (mean minus 1 or 2 standard deviations) with ``config_inputs="gp"`` (more trials started,
none better), and every candidate judged at ``max_t`` instead of a random horizon (none better
beyond the noise; README).

Determinism and resume: given the seed and the calls the decisions are deterministic;
``state_dict`` holds the race, the surrogate's anchor (see :mod:`tunebench.models.dpl`) and the
proposing GP's state (``new_config="gp"``), and a loaded scheduler rebuilds the very same models.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, Literal

import numpy as np

from tunebench.errors import UserError
from tunebench.models.acquisition import AcquisitionOptimizer, log_expected_improvement
from tunebench.models.curves import (
    CurveSurrogate,
    MappedInputs,
    ValueScaling,
    cap_context,
    gp_value_feature,
    scale_fidelity,
)
from tunebench.models.dpl import DPLEnsemble
from tunebench.models.ftgp import FreezeThawGPSurrogate
from tunebench.models.pfn import PFNSurrogate
from tunebench.schedulers.freeze_thaw import ModelBasedRace, RaceScores, int_option
from tunebench.searchers.gp import GPSurrogate, _blas_threads
from tunebench.types import Config, Status, to_minimize

logger = logging.getLogger(__name__)

__all__ = ["ACQUISITIONS", "FTBO", "SURROGATES"]

#: the surrogates FTBO can use
SURROGATES = ("dpl", "gp", "pfn")
#: the acquisition functions FTBO can use
ACQUISITIONS = ("mfpi-random", "ei")
#: how FTBO picks the new configuration that competes with the paused trials
NEW_CONFIG_RULES = ("gp", "acquisition")
#: what the curve surrogate is given of a configuration ("auto": "gp" with the PFN, else "config")
CONFIG_INPUTS = ("auto", "config", "gp")
_RUNNING = Status.RUNNING
#: with ``surrogate="pfn"``: the normalized values are mapped into [0.1, 0.9]
PFN_VALUE_MARGIN = 0.1
#: observed configs a new-config local search starts from (the best ones)
_LOCAL_STARTS = 3


class _Decision(RaceScores):
    """What one decision looked at, with MFPI-random's draws."""

    __slots__ = ("horizon", "threshold")

    def __init__(self, surrogate: CurveSurrogate) -> None:
        super().__init__(surrogate)
        self.horizon = 1
        self.threshold = 0.0


class FTBO(ModelBasedRace):
    """Freeze-thaw BO with MFPI-random over a learning-curve surrogate (see the module docstring).

    Args:
        config_space, metric, mode, resource_attr, max_t, grace_period, reduction_factor, step,
        max_resource_attr, seed, points_to_evaluate, num_init_random: the race, as in
        :class:`~tunebench.schedulers.dyhpo.DyHPO`, except the default ``step="auto"``: one grace
        period per step (one epoch, ifBO's setting, better than geometric steps: the module
        docstring has the figures) while resumed trials continue from their checkpoints; from the
        first resumed script that restarts from the start instead, trials pause only at the
        geometric levels (one-epoch steps would make a script without checkpoints retrain
        quadratically in ``max_t``; see :mod:`tunebench.schedulers.freeze_thaw`).  ``step=None``:
        geometric steps from the start.
        surrogate: ``"dpl"`` (the power-law ensemble), ``"gp"`` (the freeze-thaw GP: ``n_members``,
            ``hidden``, ``epochs``, ``refine_epochs`` and ``batch_size`` do not apply), ``"pfn"`` (the
            shipped PFN, in context; those options and ``refit_factor`` do not apply).
        max_context: points the surrogate is fitted on at most (see
            :func:`~tunebench.models.curves.cap_context`).
        n_members, hidden, epochs, refine_epochs, batch_size, refit_factor: the ensemble and its
            schedule (see :class:`~tunebench.models.dpl.DPLEnsemble`); with the default
            ``batch_size == max_context`` an epoch is one Adam step over the whole context.
        n_candidates, n_starts, max_steps: random new configurations scored per decision and the
            local search from the best of them (see
            :class:`~tunebench.models.acquisition.AcquisitionOptimizer`).
        acquisition_noise: score candidates under the predictive of an observation (the fit's
            noise included; the default) rather than of the curve (see the module docstring).
        horizon: where MFPI-random predicts a candidate, given the decision's random horizon ``h``
            (in steps): ``"relative"`` (ifBO's rule) ``h`` steps past where each candidate is (a new
            configuration: step ``h - 1``); ``"common"``: at step ``h - 1`` for every candidate, or
            its next step if that is further (a paused trial is not credited with ``h`` more steps
            of training than a new configuration).
        incumbent: the value MFPI-random's threshold is drawn below: ``"global"`` (ifBO's rule)
            the best observed value at any fidelity; ``"level"``: DyHPO's budget-wise incumbent
            at the candidate's target step (the best of each trial's first value at or above the
            step; predicted where no trial reached it, see
            :meth:`~tunebench.schedulers.freeze_thaw.ModelBasedRace._level_incumbents`).
        acquisition: ``"mfpi-random"`` (ifBO's, see the module docstring) or ``"ei"`` (DyHPO's
            rule under this surrogate: each candidate's expected improvement at its next step, a
            new configuration at the first, over DyHPO's budget-wise incumbent there, running
            trials fantasized; ``horizon`` and ``incumbent`` do not apply).
        new_config: which new configuration competes with the paused trials (scored by the
            acquisition like them): ``"gp"`` (the default) the maximizer of the expected improvement
            at ``max_t`` over the best value observed under a GP over (config, log resource) fitted
            on every result (DyHPO's model, :class:`~tunebench.searchers.gp.GPSurrogate`; running
            trials fantasized), see the module docstring; ``"acquisition"`` (ifBO's rule): the
            maximizer of the acquisition under the curve surrogate.
        config_inputs: what the curve surrogate is given of a configuration: ``"auto"`` (the
            default) ``"gp"`` with the PFN, ``"config"`` with the others; ``"config"``: its encoded
            columns; ``"gp"`` (with ``surrogate="pfn"`` only) one column, the
            value at ``max_t`` that the GP over (config, resource) of ``new_config="gp"`` predicts
            for it (fitted for this even with ``new_config="acquisition"``), min-max scaled over
            the configurations in the context (:func:`~tunebench.models.curves.gp_value_feature`):
            the GP, fitted with a lengthscale per hyperparameter, tells configurations apart, the
            PFN extrapolates curves in context (the module docstring has the figures).  The PFN
            conditions afresh at each decision, so nothing of a decision's map is kept.
        pfn_weights: with ``surrogate="pfn"``: the path of a ``.npz`` of PFN weights (its JSON
            sidecar beside it, as ``benchmarks/train_ftpfn.py`` writes them); ``None``: the shipped
            ``ftpfn-v4``.
        value_bounds: ``(low, high)``, the range the metric's values lie in as reported (for
            example ``(0, 100)`` for an accuracy in percent; ifBO assumes ``[0, 1]``): values are then
            normalized on that fixed scale (clipped into it) instead of by the min and max observed
            so far, which move as the run goes on.  None (the default): the observed range.
        blas_threads: BLAS threads for the model (see :mod:`tunebench.searchers.gp`; 1: the
            small matrices gain nothing from more, and a loaded machine loses).

    Raises:
        ValueError: an invalid argument (the message names it).
        UserError: an unknown surrogate, or ``surrogate="pfn"`` on a space of more encoded
            columns, or with a larger context, than the network takes.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        *,
        resource_attr: str,
        max_t: float,
        grace_period: float = 1,
        reduction_factor: float = 3,
        step: float | str | None = "auto",
        max_resource_attr: str | None = None,
        seed: int = 0,
        points_to_evaluate: list[Config] | None = None,
        num_init_random: int | None = None,
        surrogate: Literal["dpl", "gp", "pfn"] = "dpl",
        max_context: int = 256,
        n_members: int = 5,
        hidden: int = 32,
        epochs: int = 250,
        refine_epochs: int = 10,
        batch_size: int = 256,
        refit_factor: float = 1.5,
        n_candidates: int = 128,
        n_starts: int = 2,
        max_steps: int = 4,
        acquisition_noise: bool = True,
        horizon: Literal["relative", "common"] = "relative",
        incumbent: Literal["global", "level"] = "global",
        acquisition: Literal["mfpi-random", "ei"] = "mfpi-random",
        new_config: Literal["gp", "acquisition"] = "gp",
        config_inputs: Literal["auto", "config", "gp"] = "auto",
        pfn_weights: str | None = None,
        value_bounds: tuple[float, float] | None = None,
        blas_threads: int | None = 1,
    ) -> None:
        if surrogate not in SURROGATES:
            raise UserError(f"unknown FTBO surrogate {surrogate!r}: use one of {', '.join(SURROGATES)}")
        super().__init__(
            config_space, metric, mode, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
            reduction_factor=reduction_factor, step=step, max_resource_attr=max_resource_attr, seed=seed,
            points_to_evaluate=points_to_evaluate, num_init_random=num_init_random,
        )
        self.surrogate = surrogate
        self.max_context = int_option("max_context", max_context, 1)
        self.acquisition_noise = bool(acquisition_noise)
        if horizon not in ("relative", "common"):
            raise ValueError(f"horizon must be 'relative' or 'common', got {horizon!r}")
        if incumbent not in ("global", "level"):
            raise ValueError(f"incumbent must be 'global' or 'level', got {incumbent!r}")
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {', '.join(map(repr, ACQUISITIONS))}, got {acquisition!r}")
        if new_config not in NEW_CONFIG_RULES:
            raise ValueError(f"new_config must be one of {', '.join(map(repr, NEW_CONFIG_RULES))}, got {new_config!r}")
        self.horizon = horizon
        self.incumbent = incumbent
        self.acquisition = acquisition
        if config_inputs not in CONFIG_INPUTS:
            raise ValueError(f"config_inputs must be one of {', '.join(map(repr, CONFIG_INPUTS))}, "
                             f"got {config_inputs!r}")
        if config_inputs == "auto":
            config_inputs = "gp" if surrogate == "pfn" else "config"
        if config_inputs == "gp" and surrogate != "pfn":
            raise ValueError("config_inputs='gp' takes surrogate='pfn' (a surrogate trained across decisions would "
                             f"have to keep each decision's map); got surrogate={surrogate!r}")
        self.new_config = new_config
        self.config_inputs = config_inputs
        #: the GP over (config, resource) that proposes new configurations and, with
        #: ``config_inputs="gp"``, gives the curve surrogate its input (DyHPO's model and schedule)
        self._proposer = GPSurrogate(self._encoder.encoded_dim + 1, refit_factor=1.1, max_model_points=250,
                                     max_fit_points=150) if "gp" in (new_config, config_inputs) else None
        self.blas_threads = None if blas_threads is None else int_option("blas_threads", blas_threads, 1)
        self.value_bounds = _value_bounds(value_bounds)
        #: the fixed scaling of ``value_bounds`` (minimization values), None: fitted per decision
        self._fixed_scaling = None if self.value_bounds is None else ValueScaling(
            *sorted(to_minimize(b, self.mode) for b in self.value_bounds))
        self._optimizer = AcquisitionOptimizer(config_space, n_candidates=n_candidates, n_starts=n_starts,
                                               max_steps=max_steps)
        self._model: CurveSurrogate
        #: normalized values are mapped into [margin, 1 - margin] for the surrogate: the PFN's bar
        #: distribution lives on [0, 1], so the incumbent at 0 would leave no room below it for the
        #: MFPI threshold
        self._margin = PFN_VALUE_MARGIN if surrogate == "pfn" else 0.0
        if surrogate == "gp":
            self._model = FreezeThawGPSurrogate(self._encoder.encoded_dim, refit_factor=refit_factor)
        elif surrogate == "pfn":
            pfn = PFNSurrogate(pfn_weights)
            width, n_ids = pfn.net.arch["max_hparams"], pfn.net.arch["n_ids"]
            if self._encoder.encoded_dim > width:
                raise UserError(f"FTBO surrogate 'pfn' takes configs of at most {width} encoded columns and this "
                                f"space has {self._encoder.encoded_dim} (a choice takes one column per category): "
                                "use surrogate=dpl or surrogate=gp")
            if self.max_context >= n_ids:
                raise UserError(f"FTBO surrogate 'pfn' tells at most {n_ids - 1} curves apart: give "
                                f"max_context <= {n_ids - 1} (got {self.max_context})")
            self._model = pfn
        else:
            self._model = DPLEnsemble(self._encoder.encoded_dim, n_members=n_members, hidden=hidden, epochs=epochs,
                                      refine_epochs=refine_epochs, batch_size=batch_size,
                                      refit_factor=refit_factor, seed=seed)
        #: the fidelity of each step, scaled to (0, 1]
        self._level_t = scale_fidelity(np.asarray(self.levels, dtype=float), max_t)

    # -- the model -----------------------------------------------------------------------------

    def _model_data(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, ValueScaling]:
        """The surrogate's data from the first ``n`` observations: configs, fidelities, normalized
        values, curve ids (capped to ``max_context`` points) and the value scaling."""
        raw = np.asarray(self._obs_y[:n])
        scaling = self._fixed_scaling or ValueScaling.fit(raw)
        curve = np.asarray(self._obs_tid[:n])
        t = scale_fidelity(np.asarray(self._obs_r[:n], dtype=float), self.max_t)
        keep = cap_context(curve, t, self.max_context)
        return self._X[:n, :-1][keep], t[keep], self._for_model(raw[keep], scaling), curve[keep], scaling

    def _for_model(self, raw: np.ndarray, scaling: ValueScaling) -> np.ndarray:
        """Raw values -> the surrogate's: normalized by ``scaling`` (clipped to ``[0, 1]`` under fixed
        ``value_bounds``), mapped into ``[margin, 1 - margin]``."""
        norm = scaling.transform(raw)
        if self._fixed_scaling is not None:
            norm = np.clip(norm, 0.0, 1.0)
        out: np.ndarray = self._margin + (1.0 - 2.0 * self._margin) * norm
        return out

    def _evaluate(self, allow_new: bool, commit: bool) -> _Decision:
        """Fit the surrogate (on a copy unless ``commit``) and score the candidates."""
        with _blas_threads(self.blas_threads):
            return self._evaluate_inner(allow_new, commit)

    def _evaluate_inner(self, allow_new: bool, commit: bool) -> _Decision:
        n = len(self._obs_y)
        X, t, y, curve, scaling = self._model_data(n)
        gp = None
        if self._proposer is not None:
            prop = self._proposer if commit else copy.deepcopy(self._proposer)
            gp = prop.update(self._X[:n], np.asarray(self._obs_y[:n]), self._select)
        inner: CurveSurrogate = self._model if commit else copy.deepcopy(self._model)
        dec = _Decision(inner)  # the model kept (adopted) is the surrogate itself, not this decision's map
        model: CurveSurrogate | MappedInputs = inner
        if self.config_inputs == "gp" and gp is not None:
            model = MappedInputs(inner, gp_value_feature(gp, X))
        model.fit(X, t, y, curve, n_total=n)
        n_levels = len(self.levels)
        dec.horizon = int(self._rng.integers(1, n_levels + 1))
        tau = 10.0 ** self._rng.uniform(-4.0, -1.0) * (1.0 - 2.0 * self._margin)
        # the incumbents (normalized and mapped for the surrogate): per step (DyHPO's rule, see
        # _level_incumbents), or the best value observed at any fidelity ("global"); running trials
        # fantasized at their next step (the model's mean) can only lower them
        scaled = self._for_model(np.asarray(self._obs_y[:n]), scaling)
        per_step = self.acquisition == "ei" or self.incumbent == "level"
        if per_step:
            best = self._level_incumbents(scaled, lambda rows, j: model.predict(rows, self._level_t[j]).mean)
        else:
            best = np.full(n_levels, float(scaled.min()))
        running = [tid for tid, st in self._trials.items() if st.status is _RUNNING]
        if running:
            R = np.stack([self._rows[tid] for tid in running])
            kr = np.asarray([min(self._trials[tid].level + 1, n_levels - 1) for tid in running])
            fantasy = model.predict(R, self._level_t[kr]).mean
            if per_step:
                np.minimum.at(best, kr, fantasy)
            else:
                best = np.minimum(best, float(fantasy.min()))
        dec.paused = list(self._paused)
        ks = np.asarray([self._trials[tid].level for tid in dec.paused], dtype=int)
        if self.acquisition == "ei":  # each candidate at its next step, over the per-step incumbent there
            dec.horizon = 1
            target, bar, j = np.minimum(ks + 1, n_levels - 1), best, 0
        else:  # MFPI-random: at the random horizon, below a random threshold
            h = dec.horizon
            if self.horizon == "relative":
                target = np.minimum(ks + h, n_levels - 1)
            else:
                target = np.maximum(h - 1, np.minimum(ks + 1, n_levels - 1))
            bar, j = best - tau, min(h - 1, n_levels - 1)
        dec.threshold = float(bar[-1] if self.acquisition != "ei" else bar[0])
        noise = self.acquisition_noise

        def acquire(C: np.ndarray, t: np.ndarray | float, threshold: np.ndarray | float) -> np.ndarray:
            pred = model.predict(C, t, noise=noise)
            if self.acquisition == "ei":
                return pred.log_expected_improvement(threshold)
            return pred.log_prob_below(threshold)

        if dec.paused:
            P = np.stack([self._rows[tid] for tid in dec.paused])
            dec.paused_scores = acquire(P, self._level_t[target], bar[target])
        if allow_new or dec.paused:
            t_new, threshold = float(self._level_t[j]), float(bar[j])
            if self.new_config == "gp" and gp is not None:
                if running:  # at their next step (posterior mean), as DyHPO: no pile-up next to them
                    gp = gp.fantasize(np.column_stack([R, [self.normalize_resource(self.levels[k]) for k in kr]]))
                y_best = float(min(self._obs_y[:n]))

                def gp_ei(C: np.ndarray) -> np.ndarray:
                    Q = np.column_stack([C, np.ones(len(C))])
                    m, v = gp.predict(Q)
                    return log_expected_improvement(m, v, y_best)

                found = self._optimizer.optimize(gp_ei, self._rng, exclude=self._keys, starts=self._best_rows())
                if found is not None:
                    found = (found[0], float(acquire(found[0][None, :], t_new, threshold)[0]))
            else:
                found = self._optimizer.optimize(lambda C: acquire(C, t_new, threshold), self._rng,
                                                 exclude=self._keys, starts=self._best_rows())
            if found is not None:
                dec.new_config = self._optimizer.decode(found[0][None, :])[0]
                dec.new_score = float(found[1])
        return dec

    def _best_rows(self) -> np.ndarray:
        """Encoded configs of the best observed trials (local search starts)."""
        best: dict[int, float] = {}
        for tid, v in zip(self._obs_tid, self._obs_y, strict=True):
            if v < best.get(tid, math.inf):
                best[tid] = v
        top = sorted(best, key=lambda k: (best[k], k))[:_LOCAL_STARTS]
        return np.stack([self._rows[tid] for tid in top]) if top else np.empty((0, self._encoder.encoded_dim))

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot: the race, the surrogate's anchor and (``new_config="gp"``) the GP's state."""
        state = super().state_dict()
        if self._proposer is not None:
            state["proposer"] = self._proposer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (same constructor arguments); the surrogate is
        rebuilt by redoing its anchor fit on the observations of then (the GP of
        ``new_config="gp"`` from its own state, as DyHPO's)."""
        super().load_state_dict(state)
        if self._proposer is not None:
            with _blas_threads(self.blas_threads):
                self._proposer.load_state_dict(state.get("proposer", {"fitted": False}), self._X[:len(self._obs_y)],
                                               np.asarray(self._obs_y))
        sur = state["surrogate"]
        n = sur.get("anchor_size")
        if n is None:
            self._model.load_state_dict(sur, np.empty((0, self._encoder.encoded_dim)), np.empty(0), np.empty(0),
                                        np.empty(0, dtype=int))
            return
        X, t, y, curve, _ = self._model_data(int(n))
        with _blas_threads(self.blas_threads):  # the same threads as the fit it redoes (same rounding)
            self._model.load_state_dict(sur, X, t, y, curve)


def _value_bounds(bounds: Any) -> tuple[float, float] | None:
    """``value_bounds`` checked: None, or two finite numbers ``(low, high)`` with ``low < high``."""
    if bounds is None:
        return None
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"value_bounds must be (low, high), two numbers, got {bounds!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"value_bounds must be finite with low < high, got {bounds!r}")
    return low, high
