"""The multi-fidelity model-based methods HyperTune (Hyperband + ranking-weighted per-level GP
ensemble + learned bracket distribution), DyHPO (one fidelity step at a time, resume or start
by EI) and SyncMOBSTER (synchronous Hyperband + MOBSTER's searcher): the scheduler contract,
the learned bracket distribution, DyHPO's decisions and step discipline, search quality, and
end-to-end runs on the simulator backend."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.synthetic import BRANIN_OPTIMUM, branin_blackbox
from tunebench.errors import UserError
from tunebench.schedulers import Scheduler, describe_methods, make_scheduler
from tunebench.schedulers.asha import hyperband_bracket_weights
from tunebench.schedulers.dyhpo import DyHPO, fidelity_steps
from tunebench.schedulers.hypertune import HyperTuneScheduler
from tunebench.schedulers.synchronous import SynchronousHyperband
from tunebench.searchers.gp import MOBSTERSearcher
from tunebench.searchers.hypertune import HyperTuneSearcher, learned_bracket_distribution, ranking_losses
from tunebench.space import uniform
from tunebench.store import EVENTS_FILE
from tunebench.testing.scheduler_contract import (
    CONTRACT_CHECKS,
    ContractSimulation,
    check_scheduler_contract,
    contract_space,
)
from tunebench.tuner import StopCriteria, Tuner
from tunebench.types import Decision, Trial

MAX_T = 27
SPACE = contract_space(MAX_T)
METHODS = ["HyperTune", "DyHPO", "SyncMOBSTER"]

#: small models so that the runs are quick; max_model_points below the number of observations,
#: so that subsampling is exercised too
SMALL: dict[str, Any] = {"refit_factor": 2.0, "n_candidates": 32, "max_steps": 3, "max_model_points": 40,
                         "max_fit_points": 20}


def maker(method: str, mode: str = "min", **extra: Any):
    def make(seed: int) -> Scheduler:
        return make_scheduler(method, SPACE, metric="loss" if mode == "min" else "accuracy", mode=mode,
                              resource_attr="epoch", max_resource_attr="epochs", seed=seed, **{**SMALL, **extra})

    return make


# -- the contract ---------------------------------------------------------------------------------


def test_contract_hypertune_promotion_mode_max() -> None:
    check_scheduler_contract(maker("HyperTune", mode="max", type="promotion"), n_trials=30, max_t=MAX_T, seed=3)


def test_contract_dyhpo_linear_steps_mode_max() -> None:
    check_scheduler_contract(maker("DyHPO", mode="max", step=4), n_trials=25, max_t=MAX_T, seed=2)


def test_contract_dyhpo_without_max_resource_attr() -> None:
    """Without max_resource_attr, a trial reaching max_t is stopped by the scheduler."""

    def make(seed: int) -> Scheduler:
        return make_scheduler("DyHPO", SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, seed=seed, **SMALL)

    for check in ("valid_run", "state_resume"):
        CONTRACT_CHECKS[check](make, n_trials=25, max_t=MAX_T, seed=1)


def test_contract_sync_mobster_mode_max() -> None:
    check_scheduler_contract(maker("SyncMOBSTER", mode="max"), n_trials=30, max_t=MAX_T, seed=4)


def test_hypertune_state_resume_with_learned_weights() -> None:
    """A longer run in which the weights are learned early: the mid-run snapshots carry them
    and a loaded scheduler goes on exactly (the check replays every later call)."""
    make = maker("HyperTune", min_level_points=4)
    CONTRACT_CHECKS["state_resume"](make, n_trials=40, max_t=MAX_T, seed=5)
    sim = ContractSimulation(make(5), n_trials=40, max_t=MAX_T, snapshot_at={400})
    sim.run()
    scheduler = sim.scheduler
    assert isinstance(scheduler, HyperTuneScheduler)
    weights = scheduler.searcher.level_weights
    assert weights is not None and math.isclose(sum(weights), 1.0)
    assert json.loads(sim.snapshots[400])["searcher"]["hypertune"]["theta"] is not None


def test_registry() -> None:
    lines = "\n".join(describe_methods())
    for name in METHODS:
        assert f"{name}: " in lines
    ht = make_scheduler("hypertune", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    assert isinstance(ht, HyperTuneScheduler) and isinstance(ht.searcher, HyperTuneSearcher)
    assert ht.type == "stopping" and ht.brackets == 4 and ht.grace_period == 1 and ht.reduction_factor == 3
    assert ht.searcher.levels == [1.0, 3.0, 9.0, 27.0] and ht.bracket_start_levels == [1, 3, 9, 27]
    dy = make_scheduler("DyHPO", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    assert isinstance(dy, DyHPO) and dy.levels == [1, 3, 9, 27]
    sync = make_scheduler("SyncMOBSTER", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    assert isinstance(sync, SynchronousHyperband) and isinstance(sync.searcher, MOBSTERSearcher)
    assert sync.searcher.levels == [float(x) for x in sync.levels] == [1.0, 3.0, 9.0, 27.0]
    for method in METHODS:
        with pytest.raises(UserError, match="resource-attr"):
            make_scheduler(method, SPACE, metric="loss", max_t=MAX_T)
        with pytest.raises(UserError, match="reduction_factor"):
            make_scheduler(method, SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, reduction_factor=1)
    with pytest.raises(UserError, match="min_level_points"):
        make_scheduler("HyperTune", SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, min_level_points=2)
    with pytest.raises(UserError, match="step"):
        make_scheduler("DyHPO", SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, step=0)
    with pytest.raises(UserError, match="does not take"):
        make_scheduler("SyncMOBSTER", SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, step=2)


def test_fidelity_ladder_errors_are_the_same_for_every_multi_fidelity_method() -> None:
    # one ladder validates for schedulers and GP searchers alike (MOBSTER's own rung formula once
    # looped forever on grace_period=0); booleans are refused, not read as 0/1
    for method in ("ASHA", "MOBSTER", "HyperTune", "SyncMOBSTER", "SyncHB", "DyHPO"):
        with pytest.raises(UserError, match="grace_period must be >= 1, got 0"):
            make_scheduler(method, SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, grace_period=0)
        with pytest.raises(UserError, match="max_t"):
            make_scheduler(method, SPACE, metric="loss", resource_attr="epoch", max_t=True)


# -- HyperTune: weights and the learned bracket distribution -------------------------------------


def test_ranking_losses() -> None:
    y = np.array([0.1, 0.5, 0.3])
    samples = np.array([[1.0, 3.0, 2.0],  # same order
                        [3.0, 1.0, 2.0],  # reversed
                        [1.0, 2.0, 3.0]])  # pair (1, 2) swapped
    assert ranking_losses(samples, y).tolist() == pytest.approx([0.0, 1.0, 1 / 3])


def test_learned_bracket_distribution() -> None:
    default = [27, 12, 6, 4]
    d = np.asarray(default) / sum(default)
    starts = [1, 3, 9, 27]
    # all weight on the lowest level: the head's mass goes to bracket 0; the tail is the default
    p = learned_bracket_distribution([1.0, 0.0], starts, default)
    assert p == pytest.approx([d[0] + d[1], 0.0, d[2], d[3]]) and sum(p) == pytest.approx(1.0)
    # all weight on the top level: everything in the last bracket
    assert learned_bracket_distribution([0, 0, 0, 1], starts, default) == pytest.approx([0, 0, 0, 1])
    # equal weights: proportional to 1 / r
    w = np.array([1, 1 / 3, 1 / 9, 1 / 27])
    assert learned_bracket_distribution([0.25] * 4, starts, default) == pytest.approx(w / w.sum())
    # weights on brackets the scheduler does not have: the default
    assert learned_bracket_distribution([0.0, 0.0, 1.0], starts[:2], default[:2]) == pytest.approx(
        [27 / 39, 12 / 39])


LEVEL_SPACE = {"x": uniform(0.0, 1.0)}


def _fed_searcher(level_value) -> HyperTuneSearcher:
    """A searcher over x in [0, 1] with levels 1, 3, 9 (max_t): 14 trials observed at every
    level, with ``level_value(x, r)`` as the metric; then one suggestion (computes the weights)."""
    searcher = HyperTuneSearcher(LEVEL_SPACE, "loss", seed=0, resource_attr="epoch", max_t=9,
                                 num_init_random=3, **SMALL)
    for tid, x in enumerate(np.linspace(0.02, 0.98, 14)):
        config = {"x": float(x)}
        for r in (1, 3, 9):
            searcher.on_result(tid, config, {"loss": level_value(x, r), "epoch": r})
        searcher.on_complete(tid, config, None)
    searcher.suggest(100)
    return searcher


def _bracket_frequencies(scheduler: HyperTuneScheduler, n: int = 3000) -> np.ndarray:
    draws = np.asarray([scheduler._draw_bracket() for _ in range(n)])
    return np.bincount(draws, minlength=scheduler.brackets) / n


def test_hypertune_bracket_distribution_follows_how_well_low_levels_rank_the_top() -> None:
    def final(x: float) -> float:
        return (x - 0.3) ** 2

    default = np.asarray(hyperband_bracket_weights(3, 3), dtype=float)
    default /= default.sum()
    # low levels rank the configurations as the top level does: more mass on the early brackets
    good = _fed_searcher(lambda x, r: final(x) + 1.0 / r)
    bad = _fed_searcher(lambda x, r: final(x) if r == 9 else 2.0 - final(x))  # reversed below the top
    for searcher in (good, bad):
        weights = searcher.level_weights
        assert weights is not None and len(weights) == 3 and sum(weights) == pytest.approx(1.0)
        assert min(weights) >= 0.0
    assert good.level_weights[0] > 0.3
    assert bad.level_weights[0] == 0.0 and bad.level_weights[1] == 0.0 and bad.level_weights[2] == 1.0
    for searcher, direction in ((good, +1), (bad, -1)):
        scheduler = HyperTuneScheduler(searcher, resource_attr="epoch", max_t=9, max_resource_attr="epochs")
        p = np.asarray(scheduler.bracket_probabilities)
        assert p.shape == (3,) and p.min() >= 0.0 and p.sum() == pytest.approx(1.0)
        assert direction * (p[0] - default[0]) > 0.05
        assert direction * (p[-1] - default[-1]) < -0.05
        assert _bracket_frequencies(scheduler) == pytest.approx(p, abs=0.03)
    assert HyperTuneScheduler(bad, resource_attr="epoch", max_t=9).bracket_probabilities == pytest.approx([0, 0, 1])


def test_hypertune_is_mobster_with_hyperband_until_it_has_weights() -> None:
    """With too few observations per level for weights, HyperTune makes exactly the
    suggestions and decisions of MOBSTER over Hyperband's brackets (default distribution)."""
    ht = maker("HyperTune", min_level_points=10**6)(1)
    mob = maker("MOBSTER", brackets="all")(1)
    a = ContractSimulation(ht, n_trials=25, max_t=MAX_T, check_none_state=False)
    b = ContractSimulation(mob, n_trials=25, max_t=MAX_T, check_none_state=False)
    assert [c.answer for c in a.run()] == [c.answer for c in b.run()]
    assert ht.searcher.level_weights is None
    assert ht.bracket_probabilities == pytest.approx(mob.bracket_probabilities)
    early = maker("HyperTune")(1)
    assert early.bracket_probabilities == pytest.approx(mob.bracket_probabilities)


def test_hypertune_scheduler_checks_its_searcher() -> None:
    searcher = HyperTuneSearcher(SPACE, "loss", resource_attr="epoch", max_t=MAX_T, rung_levels=[2, 6])
    with pytest.raises(ValueError, match="levels"):
        HyperTuneScheduler(searcher, resource_attr="epoch", max_t=MAX_T)
    with pytest.raises(ValueError, match="HyperTuneSearcher"):
        HyperTuneScheduler(MOBSTERSearcher(SPACE, "loss", resource_attr="epoch", max_t=MAX_T),  # type: ignore[arg-type]
                           resource_attr="epoch", max_t=MAX_T)


# -- DyHPO ----------------------------------------------------------------------------------------


def test_fidelity_steps() -> None:
    assert fidelity_steps(1, 3, 27) == [1, 3, 9, 27]
    assert fidelity_steps(1, 3, 10) == [1, 3, 9, 10]
    assert fidelity_steps(1, 3, 9, step=2) == [1, 3, 5, 7, 9]
    assert fidelity_steps(2, 3, 9, step=3) == [2, 5, 8, 9]
    assert fidelity_steps(1, 3, 1) == [1]


def _dyhpo(**extra: Any) -> DyHPO:
    return DyHPO(LEVEL_SPACE, "loss", resource_attr="epoch", max_t=9, max_resource_attr="epochs", seed=0,
                 **{**SMALL, "num_init_random": 6, **extra})


def test_dyhpo_resumes_the_candidate_with_the_best_expected_improvement() -> None:
    scheduler = _dyhpo()
    trials = []
    for tid in range(6):  # the initial random trials, each paused at its first step
        suggestion = scheduler.suggest(tid)
        assert suggestion is not None and not suggestion.is_resume
        trials.append(Trial(tid, suggestion.config))
    for trial in trials:
        loss = 0.05 if trial.trial_id == 3 else 2.0 + trial.trial_id  # trial 3 is far ahead
        assert scheduler.on_result(trial, {"loss": loss, "epoch": 1}) is Decision.PAUSE
    assert scheduler.paused_trials() == list(range(6))
    state = json.dumps(scheduler.state_dict(), sort_keys=True)
    scores = scheduler.candidate_scores()
    assert json.dumps(scheduler.state_dict(), sort_keys=True) == state  # inspection changes nothing
    paused = {t: s for t, s in scores.items() if t != "new"}
    assert set(paused) == set(range(6)) and "new" in scores
    assert max(paused, key=paused.get) == 3
    # no new trial may start: the best paused candidate is resumed
    resume = scheduler.suggest_resume(6)
    assert resume is not None and resume.resume_trial_id == 3
    assert scheduler.paused_trials() == [0, 1, 2, 4, 5]
    # it runs one step: epochs 2 and 3, paused at 3 (a restarted script's old epoch is ignored)
    assert scheduler.on_result(trials[3], {"loss": 0.05, "epoch": 1}) is Decision.CONTINUE
    assert scheduler.on_result(trials[3], {"loss": 0.04, "epoch": 2}) is Decision.CONTINUE
    assert scheduler.on_result(trials[3], {"loss": 0.03, "epoch": 3}) is Decision.PAUSE
    assert scheduler.trial_level(3) == 3
    # the free decision agrees with the scores: the best of the paused trials and a new config
    scores = scheduler.candidate_scores()
    best = max(scores, key=scores.get)
    suggestion = scheduler.suggest(6)
    assert suggestion is not None
    if best == "new":
        assert not suggestion.is_resume
    else:
        assert suggestion.resume_trial_id == best


def test_dyhpo_suggest_resume_answers_none_without_changing_state() -> None:
    scheduler = _dyhpo(num_init_random=2)
    assert scheduler.suggest_resume(0) is None  # nothing paused
    trials = [Trial(tid, scheduler.suggest(tid).config) for tid in range(2)]  # type: ignore[union-attr]
    for trial in trials:  # both far behind at their first step: resuming them is worth little
        assert scheduler.on_result(trial, {"loss": 50.0 + trial.trial_id, "epoch": 1}) is Decision.PAUSE
    for tid, x in zip(range(2, 6), (0.1, 0.4, 0.6, 0.9), strict=True):  # trials added by hand, run to the end
        trial = Trial(tid, {"x": x})
        for epoch in range(1, 10):
            assert scheduler.on_result(trial, {"loss": 1.0 + x / epoch, "epoch": epoch}) is not Decision.STOP
        scheduler.on_complete(trial, None)
    assert scheduler.paused_trials() == [0, 1]
    scores = scheduler.candidate_scores()
    assert scores["new"] > max(scores[0], scores[1])
    state = json.dumps(scheduler.state_dict(), sort_keys=True)
    assert scheduler.suggest_resume(6) is None
    assert json.dumps(scheduler.state_dict(), sort_keys=True) == state
    suggestion = scheduler.suggest(6)  # a new trial may start: the new configuration wins
    assert suggestion is not None and not suggestion.is_resume


def test_dyhpo_steps_past_the_next_level_and_nan_results() -> None:
    scheduler = _dyhpo(num_init_random=3)
    trials = [Trial(tid, scheduler.suggest(tid).config) for tid in range(3)]  # type: ignore[union-attr]
    t0, t1, t2 = trials
    assert scheduler.on_result(t0, {"loss": 1.0, "epoch": 5}) is Decision.PAUSE  # past steps 1, 3: level 3
    assert scheduler.trial_level(0) == 3
    assert scheduler.on_result(t0, {"loss": 1.0, "epoch": 6}) is Decision.PAUSE  # paused: not running
    assert scheduler.on_result(t1, {"loss": float("nan"), "epoch": 1}) is Decision.PAUSE
    with pytest.raises(UserError, match="loss"):
        scheduler.on_result(t2, {"epoch": 1})
    with pytest.raises(UserError, match="epoch"):
        scheduler.on_result(t2, {"loss": 1.0})
    assert scheduler.on_result(t2, {"loss": 0.5, "epoch": 9}) is Decision.CONTINUE  # ends by itself
    scheduler.on_complete(t2, {"loss": 0.5, "epoch": 9})
    assert scheduler.paused_trials() == [0, 1]
    assert scheduler.state_dict()["observations"]["resource"] == [5, 1, 9]
    for tid in range(3, 8):  # decisions go on with a NaN observation and a trial past its step
        suggestion = scheduler.suggest(tid)
        assert suggestion is not None
    without = DyHPO(LEVEL_SPACE, "loss", resource_attr="epoch", max_t=9, num_init_random=1, **SMALL)
    trial = Trial(0, without.suggest(0).config)  # type: ignore[union-attr]
    assert without.on_result(trial, {"loss": 1.0, "epoch": 9}) is Decision.STOP  # no max_resource_attr


def _segments(exp: Path) -> dict[int, list[list[int]]]:
    """Per trial: the epochs reported in each run (from a start or resume to its pause or end)."""
    runs: dict[int, list[list[int]]] = defaultdict(list)
    for line in (exp / EVENTS_FILE).read_text().splitlines():
        event = json.loads(line)
        if event["event"] in ("trial_start", "trial_resume"):
            runs[event["trial_id"]].append([])
        elif event["event"] == "result":
            runs[event["trial_id"]][-1].append(event["result"]["epoch"])
    return runs


@pytest.mark.parametrize("step", [None, 2])
def test_dyhpo_on_the_simulator_one_step_per_run_no_epoch_twice(tmp_path: Path, step: int | None) -> None:
    bb = branin_blackbox(max_fidelity=9)
    space = {**bb.config_space, "epochs": 9}
    scheduler = make_scheduler("DyHPO", space, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                               seed=0, step=step, **SMALL)
    assert isinstance(scheduler, DyHPO)
    levels = scheduler.levels
    backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
    result = Tuner(backend, scheduler, n_workers=3, stop=StopCriteria(max_trials=20),
                   experiment_dir=tmp_path / "exp").run()
    assert result.n_trials == 20 and result.n_failed == 0
    assert result.best_metric is not None and BRANIN_OPTIMUM <= result.best_metric < 20.0
    runs = _segments(tmp_path / "exp")
    n_resumes = 0
    for tid, segments in runs.items():
        done = 0
        for epochs in segments:
            assert epochs, f"trial {tid} ran without a result"
            assert epochs == list(range(done + 1, epochs[-1] + 1)), f"trial {tid}: epochs {epochs} after {done}"
            assert epochs[-1] == min(x for x in levels if x > done), (tid, segments)  # exactly one step
            done = epochs[-1]
        n_resumes += len(segments) - 1
    assert n_resumes >= 5
    assert any(segments[-1][-1] == 9 for segments in runs.values())  # some trials reached max_t
    assert any(segments[-1][-1] < 9 for segments in runs.values())  # and some did not


def _best_on_branin(method: str, seed: int, tmp: Path, **extra: Any) -> float:
    bb = branin_blackbox(max_fidelity=27)
    space = {**bb.config_space, "epochs": 27}
    scheduler = make_scheduler(method, space, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                               seed=seed, **extra)
    backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
    result = Tuner(backend, scheduler, n_workers=4, stop=StopCriteria(max_wallclock_time=1000.0),
                   experiment_dir=tmp / f"{method}-{seed}").run()
    assert result.best_metric is not None
    return result.best_metric


def test_dyhpo_beats_random_search_on_branin(tmp_path: Path) -> None:
    """Same simulated time (about 25 full trainings with 4 workers): DyHPO spends it on the
    promising configurations and finds better ones than random search, on average."""
    seeds = range(3)
    dyhpo = [_best_on_branin("DyHPO", s, tmp_path, **{**SMALL, "max_model_points": 80}) for s in seeds]
    rs = [_best_on_branin("RS", s, tmp_path) for s in seeds]
    assert np.mean(dyhpo) < np.mean(rs), (dyhpo, rs)
    assert np.mean(dyhpo) < BRANIN_OPTIMUM + 1.0, dyhpo


# -- end to end on the simulator ------------------------------------------------------------------


@pytest.mark.parametrize("method, extra", [("HyperTune", {}), ("HyperTune", {"type": "promotion"}),
                                           ("DyHPO", {}), ("SyncMOBSTER", {})])
def test_runs_end_to_end_on_the_simulator(tmp_path: Path, method: str, extra: dict[str, Any]) -> None:
    bb = branin_blackbox(max_fidelity=9)
    space = {**bb.config_space, "epochs": 9}
    scheduler = make_scheduler(method, space, metric="loss", mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", seed=0, **{**SMALL, **extra})
    backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
    result = Tuner(backend, scheduler, n_workers=3, stop=StopCriteria(max_trials=25),
                   experiment_dir=tmp_path / "exp").run()
    assert result.n_trials == 25 and result.n_failed == 0
    assert result.best_metric is not None and BRANIN_OPTIMUM <= result.best_metric < 20.0
    final = [epochs[-1] for segments in _segments(tmp_path / "exp").values() for epochs in segments if epochs]
    assert 9 in final, "no trial reached the last epoch"
    assert min(final) < 9, "every trial was trained to the end"
