"""The baselines that keep FTBO honest (issue 19, item 5): OneEpochTopK trains exactly the top K to
max_t; the GP's exponential-decay kernel over the fidelity (PSD, its formula) and FreezeThawGP's
extrapolation of a curve; ASHA-LCE stops a trial that cannot beat the incumbent and keeps one that
can.  The scheduler contract and the every-method runs cover them from the registry."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from tunebench.models.curves import PowerLawExtrapolation
from tunebench.models.ftgp import FreezeThawGPSurrogate
from tunebench.models.gp import GaussianProcess, exp_decay_kernel
from tunebench.schedulers import make_scheduler
from tunebench.schedulers.asha_lce import ASHALCE
from tunebench.schedulers.ftbo import FTBO
from tunebench.schedulers.one_epoch import OneEpochTopK
from tunebench.space import uniform
from tunebench.types import Decision, Trial

MAX_T = 9
SPACE: dict[str, Any] = {"x": uniform(0.0, 1.0), "epochs": MAX_T}


# -- OneEpochTopK ------------------------------------------------------------------------------


def one_epoch(**options: Any) -> OneEpochTopK:
    sched = make_scheduler("OneEpochTopK", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                           seed=0, **options)
    assert isinstance(sched, OneEpochTopK)
    return sched


def test_one_epoch_trains_exactly_the_top_k_to_max_t() -> None:
    sched = one_epoch(n_configs=6, k=2, rounds=1)
    assert sched.levels == [1, MAX_T]
    trials = {}
    for tid in range(6):
        sug = sched.suggest(tid)
        assert sug is not None and not sug.is_resume
        trials[tid] = Trial(tid, sug.config)
    # the screen: one epoch each; the loss is the config's x (so the top 2 are the 2 smallest x)
    order = sorted(trials, key=lambda t: trials[t].config["x"])
    for tid in trials:
        if tid == order[0]:
            continue  # the best one is still running its first epoch
        assert sched.on_result(trials[tid], {"epoch": 1, "loss": trials[tid].config["x"]}) is Decision.PAUSE
    assert sched.suggest(6) is None  # waits for the screen: the top K are not known yet
    assert sched.on_result(trials[order[0]], {"epoch": 1, "loss": trials[order[0]].config["x"]}) is Decision.PAUSE
    resumed = []
    for tid in (6, 7):
        sug = sched.suggest(tid)
        assert sug is not None and sug.is_resume
        resumed.append(sug.resume_trial_id)
    assert resumed == order[:2]  # best first
    assert sched.suggest(8) is None and sched.suggest_resume(8) is None  # never any other
    for tid in resumed:
        for epoch in range(2, MAX_T + 1):
            assert sched.on_result(trials[tid], {"epoch": epoch, "loss": 0.1}) is Decision.CONTINUE
        sched.on_complete(trials[tid], {"epoch": MAX_T, "loss": 0.1})
    assert sched.suggest(8) is None
    assert sorted(t for t in trials if sched.trial_level(t) == MAX_T) == sorted(order[:2])


def test_one_epoch_repeats_rounds_each_with_its_own_top_k() -> None:
    sched = one_epoch(n_configs=3, k=1)  # rounds=None: as many as the budget allows
    trials: dict[int, Trial] = {}

    def screen(ids: range, losses: list[float]) -> None:
        for tid in ids:
            sug = sched.suggest(tid)
            assert sug is not None and not sug.is_resume
            trials[tid] = Trial(tid, sug.config)
        for tid, loss in zip(ids, losses, strict=True):
            assert sched.on_result(trials[tid], {"epoch": 1, "loss": loss}) is Decision.PAUSE

    screen(range(3), [0.5, 0.2, 0.9])
    assert sched.suggest(3).resume_trial_id == 1  # type: ignore[union-attr]
    screen(range(3, 6), [0.4, 0.3, 0.6])  # round 2 starts at once, even though 0.2 beat all of it
    assert sched.suggest(6).resume_trial_id == 4  # type: ignore[union-attr]  # round 2's best, not trial 0
    assert sched.top_k(0) == [1] and sched.top_k(1) == [4]
    assert not sched.suggest(6).is_resume  # type: ignore[union-attr]  # round 3


def test_one_epoch_closes_a_screen_cut_short_by_the_trial_budget() -> None:
    """With fewer trials than n_configs (max_trials reached), the top K of those screened go on."""
    sched = one_epoch(n_configs=50, k=3)
    trials = [Trial(t, sched.suggest(t).config) for t in range(4)]  # type: ignore[union-attr]
    for trial in trials:
        sched.on_result(trial, {"epoch": 1, "loss": trial.config["x"]})
    best = sorted(range(4), key=lambda t: trials[t].config["x"])[:3]
    got = [sched.suggest_resume(4) for _ in range(4)]
    assert [s.resume_trial_id for s in got[:3]] == best  # type: ignore[union-attr]
    assert got[3] is None


# -- ASHA-LCE ----------------------------------------------------------------------------------


def test_power_law_extrapolation_recovers_a_power_law() -> None:
    r = np.arange(1.0, 10.0)
    fit = PowerLawExtrapolation.fit(r, 0.2 + 0.8 * r**-0.7, 81.0)
    assert fit.mean == pytest.approx(0.2 + 0.8 * 81.0**-0.7, abs=0.01)
    assert fit.prob_below(0.15) < 0.01 < 0.99 < fit.prob_below(0.3)


def run_curve(sched: ASHALCE, tid: int, losses: dict[int, float]) -> tuple[Decision, int]:
    """Report ``losses`` (epoch -> loss) in order until a decision is not CONTINUE: that decision
    and its epoch (the last epoch's decision if all are CONTINUE)."""
    sug = sched.suggest(tid)
    assert sug is not None
    trial = Trial(tid, sug.config)
    decision, epoch = Decision.CONTINUE, 0
    for epoch, loss in losses.items():
        decision = sched.on_result(trial, {"epoch": epoch, "loss": loss})
        if decision is not Decision.CONTINUE:
            break
    return decision, epoch


def test_asha_lce_stops_a_curve_that_cannot_beat_the_incumbent_and_keeps_one_that_can() -> None:
    sched = make_scheduler("ASHA-LCE", {"x": uniform(0.0, 1.0)}, metric="loss", resource_attr="epoch", max_t=27,
                           seed=0, min_finished=1, quantile=0.0)
    assert isinstance(sched, ASHALCE) and sched.rung_levels == [1, 3, 9]
    # a finished trial: poor at the rungs (so it never outranks the others there), 0.1 at max_t
    decision, _ = run_curve(sched, 0, {e: (2.0 if e < 27 else 0.1) for e in range(1, 28)})
    assert decision is Decision.STOP and sched.threshold() == pytest.approx(0.1)  # STOP: max_t, no max_resource_attr
    # best at every rung so far (ASHA keeps it), but flattening at 0.5: it cannot reach 0.1
    decision, epoch = run_curve(sched, 1, {e: 0.5 + 0.5 / e for e in range(1, 28)})
    assert (decision, epoch) == (Decision.STOP, 3) and sched.lce_stopped == [1]
    # best at every rung and heading below 0.1: kept to max_t
    decision, epoch = run_curve(sched, 2, {e: 0.9 / e for e in range(1, 28)})
    assert (decision, epoch) == (Decision.STOP, 27) and sched.lce_stopped == [1]
    assert sched.prob_beats_threshold(2) is not None
    # without the extrapolation (p tiny), ASHA alone keeps the flattening curve
    plain = make_scheduler("ASHA-LCE", {"x": uniform(0.0, 1.0)}, metric="loss", resource_attr="epoch", max_t=27,
                           seed=0, min_finished=1, quantile=0.0, p=1e-300)
    run_curve(plain, 0, {e: (2.0 if e < 27 else 0.1) for e in range(1, 28)})
    assert run_curve(plain, 1, {e: 0.5 + 0.5 / e for e in range(1, 28)}) == (Decision.STOP, 27)


# -- the freeze-thaw GP ------------------------------------------------------------------------


def test_exp_decay_kernel_matches_its_formula_and_is_psd() -> None:
    t = np.array([0.0, 0.05, 0.3, 1.0, 4.0])
    K = exp_decay_kernel(t, t, 1.7, 0.2)
    assert K[1, 3] == pytest.approx(0.2**1.7 / (0.05 + 1.0 + 0.2) ** 1.7)
    assert K[0, 0] == pytest.approx(1.0) and np.allclose(K, K.T)
    assert np.linalg.eigvalsh(K).min() > -1e-12
    # the GP's freeze-thaw covariance (Matern over configs + decay within a curve) is PSD too
    rng = np.random.default_rng(0)
    X = np.column_stack([np.repeat(rng.random((4, 2)), 5, axis=0), np.tile(np.linspace(0.05, 1.0, 5), 4)])
    gp = GaussianProcess(3, decay_dim=2)
    mean, cov = gp.predict_joint(X)
    assert np.linalg.eigvalsh(cov).min() > -1e-9
    s2d, alpha, beta = gp.decay_params  # type: ignore[misc]
    same, other = cov[0, 4], cov[0, 5]  # one curve (config 0, fidelities 0.05 and 1.0); another config
    matern_same = gp.signal_variance
    assert same == pytest.approx(matern_same + s2d * beta**alpha / (0.05 + 1.0 + beta) ** alpha)
    assert other < matern_same  # only the Matern term across configs


def test_freeze_thaw_gp_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    X = np.column_stack([np.repeat(rng.random((5, 2)), 4, axis=0), np.tile([0.1, 0.2, 0.4, 0.7], 5)])
    y = X[:, 0] + 0.5 * np.exp(-3 * X[:, 2]) + 0.01 * rng.standard_normal(20)
    ys = (y - y.mean()) / y.std()
    gp = GaussianProcess(3, decay_dim=2)
    theta = gp.default_theta + 0.1 * rng.standard_normal(gp.n_params)
    _, grad = gp.log_marginal_likelihood(theta, X, ys, grad=True)  # type: ignore[misc]
    for i in range(gp.n_params):
        e = np.zeros_like(theta)
        e[i] = 1e-6
        num = (gp.log_marginal_likelihood(theta + e, X, ys) - gp.log_marginal_likelihood(theta - e, X, ys)) / 2e-6
        assert grad[i] == pytest.approx(num, rel=1e-4, abs=1e-6)


def test_freeze_thaw_gp_extrapolates_an_exponential_decay_curve() -> None:
    """Seven configs observed to t = 1, one only to t = 0.3: its value at t = 1 is predicted close
    to the truth, far closer than its last observed value (a flat extrapolation)."""
    rng = np.random.default_rng(0)
    configs = rng.random((8, 2))

    def value(c: np.ndarray, t: np.ndarray) -> np.ndarray:
        return 0.3 + 0.4 * c[0] + 0.5 * np.exp(-5.0 * t)

    ts = np.arange(1, 11) / 10.0
    rows, t, y, curve = [], [], [], []
    for i, c in enumerate(configs):
        seen = ts if i < 7 else ts[ts <= 0.3]
        rows += [c] * len(seen)
        t += list(seen)
        y += list(value(c, seen) + 0.002 * rng.standard_normal(len(seen)))
        curve += [i] * len(seen)
    sur = FreezeThawGPSurrogate(2)
    with threadpool_limits(1):  # as FTBO fits it (blas_threads=1): small matrices, a loaded machine
        sur.fit(np.array(rows), np.array(t), np.array(y), np.array(curve), n_total=len(y))
    pred = sur.predict(configs[7:], np.array([1.0]), noise=False)
    truth = float(value(configs[7], np.array(1.0)))
    last = y[-1]
    assert abs(float(pred.mean[0]) - truth) < 0.02 < abs(last - truth) / 3
    assert abs(float(pred.mean[0]) - truth) < 3 * float(pred.std[0])  # the truth is within its spread
    # FTBO's surrogate="gp" uses it; a state round trip keeps the hyperparameters
    copy_ = FreezeThawGPSurrogate(2)
    copy_.load_state_dict(json.loads(json.dumps(sur.state_dict())), np.empty((0, 2)), np.empty(0), np.empty(0),
                          np.empty(0))
    with threadpool_limits(1):
        copy_.fit(np.array(rows), np.array(t), np.array(y), np.array(curve), n_total=len(y))
    assert np.array_equal(copy_.predict(configs[7:], 1.0).mean, sur.predict(configs[7:], 1.0).mean)


def test_freeze_thaw_gp_is_ftbo_over_the_gp() -> None:
    sched = make_scheduler("FreezeThawGP", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                           seed=0)
    assert isinstance(sched, FTBO) and sched.surrogate == "gp"
    assert isinstance(sched._model, FreezeThawGPSurrogate)
