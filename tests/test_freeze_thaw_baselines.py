"""The baselines that keep FTBO honest (issue 19, item 5): OneEpochTopK trains exactly the top K to
max_t; the GP's exponential-decay kernel over the fidelity (PSD, its formula) and FreezeThawGP's
extrapolation of a curve; ASHA-LCE stops a trial that cannot beat the incumbent and keeps one that
can.  The scheduler contract and the every-method runs cover them from the registry."""

from __future__ import annotations

from typing import Any

from tunebench.schedulers import make_scheduler
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
