"""Synchronous Hyperband / successive halving, SyncBOHB, BOHB and DEHB: the scheduler contract,
synchronous semantics, Hyperband tables, DE operators, and end-to-end simulated runs with a
crash and a resume."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.synthetic import branin, branin_blackbox
from tunebench.errors import UserError
from tunebench.schedulers import METHODS, Scheduler, make_scheduler
from tunebench.schedulers.asha import ASHA
from tunebench.schedulers.dehb import DEHB, binomial_crossover, fix_bounds, rand1_mutation
from tunebench.schedulers.synchronous import (
    SynchronousHyperband,
    SynchronousSuccessiveHalving,
    hyperband_brackets,
)
from tunebench.searchers import RandomSearcher
from tunebench.searchers.kde import KDESearcher
from tunebench.space import choice, encode_configs, hyperparameters, loguniform, randint, uniform
from tunebench.store import EVENTS_FILE, STATE_FILE, load_experiment
from tunebench.testing.scheduler_contract import (
    CONTRACT_CHECKS,
    ContractSimulation,
    check_scheduler_contract,
    contract_space,
    learning_curve,
)
from tunebench.tuner import Callback, StopCriteria, Tuner
from tunebench.types import Decision, Suggestion, Trial

MAX_T = 27
SPACE = contract_space(MAX_T)
SYNC_METHODS = ["SyncHB", "SyncSH", "SyncBOHB", "BOHB", "DEHB"]


def maker(method: str, mode: str = "min", **extra: Any):
    def make(seed: int) -> Scheduler:
        return make_scheduler(method, SPACE, metric="loss" if mode == "min" else "accuracy", mode=mode,
                              resource_attr="epoch", max_resource_attr="epochs", seed=seed, **extra)

    return make


# -- the contract ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_contract_mode_max_other_seed(method: str) -> None:
    check_scheduler_contract(maker(method, mode="max"), n_trials=40, max_t=MAX_T, seed=3)


@pytest.mark.parametrize("method", ["SyncBOHB", "DEHB", "SyncHB"])
def test_contract_long_run_resumes_exactly(method: str) -> None:
    """Long enough for a second Hyperband iteration (DE children, fitted KDE models)."""
    CONTRACT_CHECKS["state_resume"](maker(method), n_trials=150, max_t=MAX_T, seed=1)


@pytest.mark.parametrize("method", ["SyncHB", "DEHB"])
def test_contract_without_max_resource_attr(method: str) -> None:
    """Without max_resource_attr, trials are stopped at max_t by the scheduler."""

    def make(seed: int) -> Scheduler:
        return make_scheduler(method, SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, seed=seed)

    check_scheduler_contract(make, n_trials=40, max_t=MAX_T)


def test_registration() -> None:
    for name in SYNC_METHODS:
        spec = METHODS[name]
        assert spec.multi_fidelity
        assert spec.defaults["grace_period"] == 1 and spec.defaults["reduction_factor"] == 3
        assert "\n" not in spec.description
    assert isinstance(maker("SyncHB")(0), SynchronousHyperband)
    assert isinstance(maker("SyncBOHB")(0).searcher, KDESearcher)  # type: ignore[attr-defined]
    bohb = maker("BOHB")(0)
    assert isinstance(bohb, ASHA) and isinstance(bohb.searcher, KDESearcher) and bohb.brackets == 4
    assert isinstance(maker("DEHB")(0), DEHB)
    assert maker("SyncSH")(0).brackets == 1  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="reduction_factor"):
        maker("SyncHB", reduction_factor=1)(0)
    with pytest.raises(UserError, match="mutation_factor"):
        maker("DEHB", mutation_factor=3.0)(0)
    with pytest.raises(UserError, match="gamma"):
        maker("BOHB", gamma=1.5)(0)
    with pytest.raises(UserError, match="one bracket"):
        maker("SyncSH", brackets=2)(0)


# -- Hyperband tables -----------------------------------------------------------------------------

#: Li et al. 2018 (Algorithm 1) for R = 27, eta = 3: (n_i, r_i) of each bracket s = 3, 2, 1, 0
HYPERBAND_27 = [
    [(27, 1), (9, 3), (3, 9), (1, 27)],
    [(12, 3), (4, 9), (1, 27)],
    [(6, 9), (2, 27)],
    [(4, 27)],
]


def test_bracket_tables_match_hyperband() -> None:
    assert hyperband_brackets([1, 3, 9, 27], 3) == [[n for n, _ in b] for b in HYPERBAND_27]
    sched = SynchronousHyperband(RandomSearcher(SPACE, "loss"), resource_attr="epoch", max_t=27)
    assert sched.levels == [1, 3, 9, 27] and sched.brackets == 4
    assert [sched.bracket_table(b) for b in range(4)] == HYPERBAND_27
    sh = SynchronousSuccessiveHalving(RandomSearcher(SPACE, "loss"), resource_attr="epoch", max_t=27,
                                      grace_period=3)
    assert sh.levels == [3, 9, 27] and sh.bracket_table(0) == [(9, 3), (3, 9), (1, 27)]
    two = SynchronousHyperband(RandomSearcher(SPACE, "loss"), resource_attr="epoch", max_t=27, brackets=2)
    assert [two.bracket_table(b) for b in range(2)] == HYPERBAND_27[:2]


def _record_run(scheduler: Scheduler, n_trials: int, n_workers: int = 4, **kw: Any) -> list[tuple]:
    """(kind, trial id, answer, (iteration, bracket, rung) before the call) of every call."""
    log: list[tuple] = []

    def wrap(kind: str, fn: Any, *args: Any) -> Any:
        where = scheduler.current_bracket  # type: ignore[attr-defined]
        out = fn(*args)
        tid = args[0] if kind == "suggest" else args[0].trial_id
        if kind == "suggest" and isinstance(out, Suggestion) and out.is_resume:
            tid = out.resume_trial_id
        result = args[1] if kind == "result" else None
        log.append((kind, tid, out, where, result))
        return out

    ContractSimulation(scheduler, n_trials=n_trials, n_workers=n_workers, wrap=wrap, **kw).run()
    return log


def test_runs_follow_the_hyperband_table() -> None:
    """Per bracket of the first iteration: new trials and resumes per rung, and the resource at
    which each rung's trials pause, are those of the table; the next iteration starts again."""
    sched = SynchronousHyperband(RandomSearcher(SPACE, "loss", seed=1), resource_attr="epoch", max_t=27,
                                 max_resource_attr="epochs")
    log = _record_run(sched, n_trials=60, fail_every=0, restart_fraction=0.0)
    launched: dict[tuple[int, int, int], list[str]] = {}
    paused_at: dict[tuple[int, int], set] = {}
    rung_of: dict[int, tuple[int, int, int]] = {}
    for kind, tid, out, where, result in log:
        if kind == "suggest" and out is not None:
            launched.setdefault(where, []).append("resume" if out.is_resume else "start")
            rung_of[tid] = where
        if kind == "result" and out is Decision.PAUSE:
            it, b, _ = rung_of[tid]
            paused_at.setdefault((it, b), set()).add(result["epoch"])
    for b, table in enumerate(HYPERBAND_27):
        for k, (n, _) in enumerate(table):
            kinds = launched[(0, b, k)]
            assert len(kinds) == n, f"bracket {b} rung {k}: {len(kinds)} launches, table says {n}"
            assert set(kinds) == {"start" if k == 0 else "resume"}
        assert paused_at.get((0, b), set()) == {r for _, r in table[:-1]}
    assert launched[(1, 0, 0)] == ["start"] * (60 + 1 - 49)  # next iteration, bracket 0 again


def _drive_first_rung(sched: Scheduler, n: int, values: dict[int, float | None], epoch: int) -> list:
    """Start ``n`` trials, report ``values[tid]`` at ``epoch`` (``None``: the trial fails; no
    entry: nothing reported); returns the decisions."""
    trials = []
    for tid in range(n):
        s = sched.suggest(tid)
        assert s is not None and not s.is_resume
        trials.append(Trial(tid, s.config))  # type: ignore[arg-type]
    decisions = []
    for trial in trials:
        if trial.trial_id not in values:
            continue
        v = values[trial.trial_id]
        if v is None:
            sched.on_error(trial)
            decisions.append(None)
        else:
            decisions.append(sched.on_result(trial, {"loss": v, "epoch": epoch}))
    return decisions


def test_a_rung_promotes_only_once_all_its_trials_reported() -> None:
    sched = SynchronousSuccessiveHalving(RandomSearcher(SPACE, "loss", seed=0), resource_attr="epoch",
                                         max_t=27, grace_period=3, max_resource_attr="epochs")
    trials = [Trial(t, sched.suggest(t).config) for t in range(9)]  # type: ignore[union-attr]
    state = json.dumps(sched.state_dict())
    assert sched.suggest(9) is None and json.dumps(sched.state_dict()) == state  # rung full: wait
    values = [0.5, 0.1, 0.9, 0.3, 0.05, 0.7, 0.2, 0.8, 0.6]
    for trial in trials:
        assert sched.on_result(trial, {"loss": 2.0, "epoch": 1}) is Decision.CONTINUE
        assert sched.on_result(trial, {"loss": 2.0, "epoch": 1}) is Decision.CONTINUE  # re-report
    for i, trial in enumerate(trials[:8]):
        assert sched.on_result(trial, {"loss": values[i], "epoch": 3}) is Decision.PAUSE
        assert sched.suggest(9) is None, "promoted before every trial of the rung reported"
    # a re-report of an old epoch by the paused trial is answered PAUSE, never recorded
    assert sched.on_result(trials[0], {"loss": 0.0, "epoch": 3}) is Decision.PAUSE
    # the last one fails: it counts as the worst, the rung closes
    sched.on_error(trials[8])
    promoted = [sched.suggest(100 + k) for k in range(4)]
    assert [s.resume_trial_id for s in promoted[:3]] == [4, 1, 6]  # type: ignore[union-attr]
    assert promoted[3] is None  # the next rung waits for these three
    for tid, v in [(4, 0.04), (1, 0.01)]:
        assert sched.on_result(trials[tid], {"loss": v, "epoch": 9}) is Decision.PAUSE
    assert sched.suggest(100) is None
    # a trial that skips past its rung level (reports 12 for level 9) is recorded there
    assert sched.on_result(trials[6], {"loss": 0.02, "epoch": 12}) is Decision.PAUSE
    last = sched.suggest(100)
    assert last is not None and last.resume_trial_id == 1
    assert sched.on_result(trials[1], {"loss": 0.01, "epoch": 20}) is Decision.CONTINUE
    # the last rung launched: the next bracket starts at once, with new trials at level 3
    new = sched.suggest(100)
    assert new is not None and not new.is_resume and sched.trial_level(100) == 3
    assert sched.on_result(trials[1], {"loss": 0.01, "epoch": 27}) is Decision.CONTINUE  # ends by itself


def test_trials_that_end_early_or_fail_are_never_promoted() -> None:
    sched = SynchronousSuccessiveHalving(RandomSearcher(SPACE, "loss", seed=0), resource_attr="epoch",
                                         max_t=27, grace_period=3)
    values = {0: 0.1, 1: None, 2: 0.3, 3: 0.4, 4: None, 5: 0.6, 6: 0.7, 7: 0.8}
    decisions = _drive_first_rung(sched, 9, values, epoch=3)
    assert sched.suggest(20) is None  # trial 8 not reported yet
    s8 = Trial(8, {})
    sched.on_complete(s8, {"loss": 0.0, "epoch": 2})  # ended before its rung: counts, never resumed
    assert decisions.count(Decision.PAUSE) == 6
    promoted = [sched.suggest(20 + k).resume_trial_id for k in range(3)]  # type: ignore[union-attr]
    assert promoted == [0, 2, 3]
    # without max_resource_attr the scheduler stops the trial at max_t itself
    t0 = Trial(0, {})
    assert sched.on_result(t0, {"loss": 0.1, "epoch": 27}) is Decision.STOP


class _RecordingSearcher(RandomSearcher):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple] = []

    def on_result(self, trial_id, config, result):
        self.calls.append(("result", trial_id, result["epoch"]))

    def on_stop(self, trial_id, config, paused):
        self.calls.append(("stop", trial_id, paused))

    def on_resume(self, trial_id):
        self.calls.append(("resume", trial_id))

    def on_complete(self, trial_id, config, result):
        self.calls.append(("complete", trial_id))

    def on_error(self, trial_id, config):
        self.calls.append(("error", trial_id))


def test_the_searcher_hears_of_results_pauses_and_promotions() -> None:
    searcher = _RecordingSearcher(SPACE, "loss", seed=0)
    sched = SynchronousSuccessiveHalving(searcher, resource_attr="epoch", max_t=27, grace_period=3,
                                         max_resource_attr="epochs")
    values = {t: 0.1 * t for t in range(9)}
    values[5] = None
    _drive_first_rung(sched, 9, values, epoch=3)
    assert [c for c in searcher.calls if c[0] == "result"] == [("result", t, 3) for t in range(9) if t != 5]
    assert [c for c in searcher.calls if c[0] == "stop"] == [("stop", t, True) for t in range(9) if t != 5]
    assert ("error", 5) in searcher.calls
    s = sched.suggest(9)
    assert searcher.calls[-1] == ("resume", s.resume_trial_id) == ("resume", 0)  # type: ignore[union-attr]


# -- end to end on the simulator ------------------------------------------------------------------


def _events(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / EVENTS_FILE).read_text().splitlines()]


def _sim_tuner(exp: Path, method: str, stop: StopCriteria, n_workers: int = 4, seed: int = 0,
               callbacks: list[Callback] | None = None, snapshot_interval: float = 5.0, **kw: Any) -> Tuner:
    bb = branin_blackbox(max_fidelity=MAX_T)
    scheduler = make_scheduler(method, {**bb.config_space, "epochs": MAX_T}, metric="loss", mode="min",
                               resource_attr="epoch", max_resource_attr="epochs", seed=seed, **kw)
    backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
    return Tuner(backend, scheduler, n_workers=n_workers, stop=stop, experiment_dir=exp,
                 callbacks=callbacks or [], snapshot_interval=snapshot_interval)


def test_simulated_sync_sh_waits_for_whole_rungs(tmp_path: Path) -> None:
    """4 workers, 9 trials in the first rung (levels 3, 9, 27): no resume before all 9 reported
    at epoch 3; workers idle meanwhile; the best 3 are resumed and continue the curve."""
    exp = tmp_path / "exp"
    _sim_tuner(exp, "SyncSH", StopCriteria(max_results=70), grace_period=3).run()
    evs = _events(exp)
    at3 = {e["trial_id"]: (e["seq"], e["result"]["loss"]) for e in evs
           if e["event"] == "result" and e["result"]["epoch"] == 3 and e["trial_id"] < 9}
    assert sorted(at3) == list(range(9))
    assert all(e["decision"] == "PAUSE" for e in evs
               if e["event"] == "result" and e["trial_id"] < 9 and e["result"]["epoch"] == 3)
    resumes = [e for e in evs if e["event"] == "trial_resume"]
    first_resume = resumes[0]["seq"]
    assert first_resume > max(seq for seq, _ in at3.values())
    best3 = [tid for tid, _ in sorted(at3.items(), key=lambda kv: kv[1][1])[:3]]
    assert [e["trial_id"] for e in resumes[:3]] == best3
    starts = [e for e in evs if e["event"] == "trial_start"]
    assert [e["trial_id"] for e in starts[:9]] == list(range(9))
    assert all(e["seq"] > first_resume for e in starts[9:]), "no new trial while the rung waits"
    # the 4th worker idles while the three promoted trials train to epoch 9
    last_of_rung = max(e["time"] for e in evs if e["event"] == "result" and e["trial_id"] < 9
                       and e["result"]["epoch"] == 3)
    at9 = [e for e in evs if e["event"] == "result" and e["result"]["epoch"] == 9]
    assert all(e["time"] > last_of_rung for e in at9)
    assert starts[9]["time"] >= max(e["time"] for e in at9[:3])
    # resumed trials continue from epoch 4; the others are never resumed
    for tid in best3:
        epochs = [e["result"]["epoch"] for e in evs if e["event"] == "result" and e["trial_id"] == tid]
        assert epochs[:9] == list(range(1, 10))
    resumed = {e["trial_id"] for e in resumes}
    assert all(tid not in resumed for tid in range(9) if tid not in best3)


class _Crash(Callback):
    """Keeps a copy of the scheduler snapshot on disk at result ``copy_at``; raises at ``crash_at``."""

    def __init__(self, exp: Path, copy_at: int, crash_at: int):
        self.exp, self.copy_at, self.crash_at = exp, copy_at, crash_at
        self.n = 0
        self.saved: bytes | None = None

    def on_result(self, tuner: Tuner, trial: Trial, result: dict, decision: Decision) -> None:
        self.n += 1
        if self.n == self.copy_at:
            self.saved = (self.exp / STATE_FILE).read_bytes()
        if self.n == self.crash_at:
            raise RuntimeError("simulated crash")


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_method_runs_end_to_end_and_resumes_after_a_crash(tmp_path: Path, method: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A run crashes mid-rung; its last scheduler snapshot is an older one (the log after it is
    replayed through the scheduler on resume); the resumed run replays the log consistently and
    goes on to the end."""
    exp = tmp_path / "exp"
    crash = _Crash(exp, copy_at=150, crash_at=333)
    first = _sim_tuner(exp, method, StopCriteria(max_results=900), callbacks=[crash], snapshot_interval=0.0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.run()
    assert crash.saved is not None
    (exp / STATE_FILE).write_bytes(crash.saved)  # the crash came long after the last snapshot
    n_before = sum(1 for e in _events(exp) if e["event"] == "trial_start")
    again = _sim_tuner(exp, method, StopCriteria(max_results=900))
    again.resume = True
    with caplog.at_level(logging.WARNING, logger="tunebench.tuner"):
        second = again.run()
    assert not [r for r in caplog.records if "not deterministic" in r.getMessage()]
    assert second.n_results >= 900 and second.n_trials > n_before
    evs = _events(exp)
    starts = [e["trial_id"] for e in evs if e["event"] == "trial_start"]
    assert len(starts) == len(set(starts)) == second.n_trials
    summary = load_experiment(exp).summary()
    assert summary["finished"] and summary["n_running"] == 0
    # tuning finds good configurations: Branin's optimum is 0.398, its mean over the box about 54
    assert second.best_metric is not None and second.best_metric < 3.0


@pytest.mark.parametrize("method", ["SyncBOHB", "DEHB"])
def test_model_based_methods_beat_random_sampling_on_branin(tmp_path: Path, method: str) -> None:
    """Same budget of results: the configurations started in the second half of the run are
    better (median Branin value, the loss at max_t) than with synchronous Hyperband + random
    search, averaged over seeds."""

    def late_quality(m: str, seed: int) -> float:
        exp = tmp_path / f"{m}-{seed}"
        _sim_tuner(exp, m, StopCriteria(max_results=1500), seed=seed).run()
        configs = [e["config"] for e in _events(exp) if e["event"] == "trial_start"]
        late = np.array([[c["x1"], c["x2"]] for c in configs[len(configs) // 2:]])
        return float(np.median(branin(late)))

    ours = np.mean([late_quality(method, s) for s in range(3)])
    base = np.mean([late_quality("SyncHB", s) for s in range(3)])
    assert ours < 0.75 * base, (ours, base)


# -- DEHB -----------------------------------------------------------------------------------------

MIXED = {"lr": loguniform(1e-4, 1e-1), "width": randint(8, 128), "act": choice(["relu", "gelu", "tanh"]),
         "drop": uniform(0.0, 0.5), "epochs": MAX_T}


def test_de_operators_give_valid_vectors_and_configs() -> None:
    rng = np.random.default_rng(0)
    dehb = DEHB(MIXED, "loss", resource_attr="epoch", max_t=MAX_T)
    blocks = dehb.crossover_blocks
    assert blocks.tolist() == [0, 1, 2, 2, 2, 3]  # the one-hot "act" block is one hyperparameter
    pool = rng.random((5, 6))
    for _ in range(200):
        mutant = rand1_mutation(pool, 0.5, rng)
        assert mutant.shape == (6,)
        fixed = fix_bounds(mutant, rng)
        assert np.all((fixed >= 0) & (fixed <= 1))
        inside = (mutant >= 0) & (mutant <= 1)
        assert np.array_equal(fixed[inside], mutant[inside])  # in-range coordinates are kept
        target = rng.random(6)
        child = binomial_crossover(target, fixed, 0.5, blocks, rng)
        from_mutant = child == fixed
        for hp in range(4):  # each hyperparameter comes whole from one parent
            cols = blocks == hp
            assert np.all(from_mutant[cols]) or np.all(child[cols] == target[cols])
        assert any(np.all(from_mutant[blocks == hp]) for hp in range(4))
    # the three parents are distinct rows of the pool
    for _ in range(50):
        assert sorted(rand1_mutation(np.eye(3), 1.0, rng).tolist()) == [-1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="at least 3"):
        rand1_mutation(np.eye(2), 0.5, rng)
    # crossover rate 0: exactly one hyperparameter from the mutant; rate 1: the mutant
    t, m = np.zeros(6), np.ones(6)
    for _ in range(20):
        child = binomial_crossover(t, m, 0.0, blocks, rng)
        assert sorted({int(blocks[i]) for i in np.flatnonzero(child == 1)}) in ([0], [1], [2], [3])
    assert np.array_equal(binomial_crossover(t, m, 1.0, blocks, rng), m)
    # children of a running DEHB decode to valid configs
    doms = hyperparameters(MIXED)
    sim = ContractSimulation(make_scheduler("DEHB", MIXED, metric="loss", resource_attr="epoch",
                                            max_resource_attr="epochs", seed=2), n_trials=120)
    sim.run()
    for st in sim.trials.values():
        assert all(doms[k].contains(v) for k, v in st.trial.config.items() if k in doms)


def _run_dehb_manually(dehb: DEHB, n_calls: int, rng: np.random.Generator):
    """One worker; yields (trial id, level index, target slot, value, decision) per rung report."""
    running: dict[int, Trial] = {}
    next_id = 0
    for _ in range(n_calls):
        s = dehb.suggest(next_id)
        assert s is not None, "one worker: DEHB always has a job when the worker is free"
        if s.is_resume:
            tid = s.resume_trial_id
            trial = running[tid]  # type: ignore[index]
        else:
            tid, next_id = next_id, next_id + 1
            trial = Trial(tid, s.config)  # type: ignore[arg-type]
            running[tid] = trial
        level, target = dehb.pending_job(tid)  # type: ignore[misc]
        epoch = dehb.levels[level]
        value = learning_curve(trial.config, epoch) + 0.05 * rng.standard_normal()
        before = dehb.subpopulation(level)
        decision = dehb.on_result(trial, {"loss": value, "epoch": epoch})
        yield tid, level, target, value, decision, before, dehb.subpopulation(level)


def test_dehb_selection_keeps_the_better_and_promotions_resume() -> None:
    space = contract_space(MAX_T)
    dehb = DEHB(space, "loss", resource_attr="epoch", max_t=MAX_T, max_resource_attr="epochs", seed=0)
    assert dehb.population_sizes == [27, 12, 6, 4]
    rng = np.random.default_rng(0)
    replaced = kept = 0
    first_27 = []
    resumed_in_first_iteration = stopped_later = 0
    seen_ids: set[int] = set()
    for i, (tid, level, target, value, decision, before, after) in enumerate(_run_dehb_manually(dehb, 250, rng)):
        if i < 27:
            first_27.append(tid)
        old_vecs, old_fit = before
        new_vecs, new_fit = after
        assert np.all(new_fit <= old_fit), "selection never makes a member worse"
        others = np.arange(len(old_fit)) != target
        assert np.array_equal(new_fit[others], old_fit[others]) and np.array_equal(new_vecs[others], old_vecs[others])
        if value <= old_fit[target]:
            assert new_fit[target] == value
            replaced += 1
        else:
            assert new_fit[target] == old_fit[target] and np.array_equal(new_vecs[target], old_vecs[target])
            kept += 1
        if tid in seen_ids and dehb.current_bracket[0] == 0:
            resumed_in_first_iteration += 1
        seen_ids.add(tid)
        if dehb.current_bracket[0] >= 1 and level < 3 and i > 80:
            assert decision is Decision.STOP  # second iteration: children are stopped at their level
            stopped_later += 1
    assert replaced > 0 and kept > 0 and stopped_later > 0
    assert resumed_in_first_iteration >= 9  # successive-halving promotions of the first bracket resume
    # the first bracket of the first iteration evaluates the random initial subpopulation
    assert first_27 == list(range(27))


def test_dehb_first_rung_is_the_random_initial_population() -> None:
    dehb = DEHB(MIXED, "loss", resource_attr="epoch", max_t=MAX_T, seed=5)
    initial = dehb.subpopulation(0)[0]
    configs = [dehb.suggest(t).config for t in range(27)]  # type: ignore[union-attr]
    assert np.allclose(encode_configs(MIXED, configs), initial)
    assert dehb.suggest(27) is None  # synchronous: waits for the rung


def test_dehb_state_round_trip_mid_run_continues_identically() -> None:
    make = maker("DEHB")
    a = make(4)
    sim = ContractSimulation(a, n_trials=100, snapshot_at={700})
    sim.run()
    b = make(4)
    b.load_state_dict(json.loads(sim.snapshots[700]))
    assert json.dumps(b.state_dict(), sort_keys=True) == sim.snapshots[700]
    with pytest.raises(ValueError, match="same arguments"):
        maker("DEHB", brackets=2)(4).load_state_dict(json.loads(sim.snapshots[700]))


def test_sync_hb_rejects_bad_arguments() -> None:
    searcher = RandomSearcher(SPACE, "loss")
    for kwargs, name in [({"max_t": 0}, "max_t"), ({"grace_period": 0}, "grace_period"),
                         ({"reduction_factor": 1.5}, "reduction_factor"), ({"brackets": 0}, "brackets"),
                         ({"resource_attr": ""}, "resource_attr"), ({"grace_period": 30}, "grace_period")]:
        args = {"resource_attr": "epoch", "max_t": 27, **kwargs}
        with pytest.raises(ValueError, match=name):
            SynchronousHyperband(searcher, **args)
    assert SynchronousHyperband(searcher, resource_attr="epoch", max_t=27, brackets=10).brackets == 4
    with pytest.raises(ValueError, match="crossover_prob"):
        DEHB(SPACE, "loss", resource_attr="epoch", max_t=27, crossover_prob=2)
    with pytest.raises(ValueError, match="mode"):
        DEHB(SPACE, "loss", "best", resource_attr="epoch", max_t=27)
    assert math.isclose(DEHB(SPACE, "loss", resource_attr="epoch", max_t=27).mutation_factor, 0.5)
