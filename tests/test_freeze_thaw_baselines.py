"""The baselines that keep FTBO honest (issue 19, item 5): OneEpochTopK trains exactly the top K to
max_t; the GP's exponential-decay kernel over the fidelity (PSD, its formula) and FreezeThawGP's
extrapolation of a curve; ASHA-LCE stops a trial that cannot beat the incumbent and keeps one that
can.  The scheduler contract and the every-method runs cover them from the registry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tunebench.models.curves import PowerLawExtrapolation
from tunebench.schedulers import make_scheduler
from tunebench.schedulers.asha_lce import ASHALCE
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
    sched = one_epoch(n_configs=6, k=2)
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
