"""FTBO (freeze-thaw BO over the DPL ensemble): its decisions on a crafted race (a promising paused
trial is thawed before a poor one), MFPI-random's draws, state round trip, options, and an end to end
run on lcbench through the CLI.  The scheduler contract (tests/test_scheduler_contract.py) and the
every-method runs (tests/test_all_methods.py) cover it too, from the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import random_pfn_weights

from tunebench.errors import UserError
from tunebench.models.curves import GP_FEATURE_RANGE, gp_value_feature
from tunebench.schedulers import make_scheduler
from tunebench.schedulers.dyhpo import DyHPO
from tunebench.schedulers.freeze_thaw import FreezeThawRace
from tunebench.schedulers.ftbo import FTBO
from tunebench.space import finrange, uniform
from tunebench.types import Suggestion, Trial

MAX_T = 9
SPACE: dict[str, Any] = {"x": uniform(0.0, 1.0), "epochs": MAX_T}
SMALL = {"n_members": 3, "hidden": 16, "epochs": 80, "refine_epochs": 10, "n_candidates": 32, "max_steps": 2}


def curve(x: float, epoch: int) -> float:
    """Loss of config ``x`` after ``epoch`` epochs: lower for small x, decreasing in the epoch."""
    return x + 0.5 / epoch


def ftbo(**options: Any) -> FTBO:
    sched = make_scheduler("FTBO", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                           **{"seed": 0, "step": 1, **SMALL, **options})
    assert isinstance(sched, FTBO)
    return sched


def race_state(sched: FTBO, paused: dict[int, tuple[float, int]], done: list[float]) -> dict[str, Any]:
    """A state of ``sched``: trials ``done`` (configs x) completed at MAX_T, and the ``paused``
    ones (id -> (x, epochs observed)) paused at their last epoch."""
    ids, configs, level, last, status, obs_t, obs_r, obs_v = [], [], [], [], [], [], [], []
    trials = [(100 + i, x, MAX_T, "completed") for i, x in enumerate(done)]
    trials += [(tid, x, e, "paused") for tid, (x, e) in paused.items()]
    for tid, x, e, st in trials:
        ids.append(tid)
        configs.append({"x": x, "epochs": MAX_T})
        level.append(e - 1)  # steps 1, 2, ..., MAX_T: index e - 1 is epoch e
        last.append(e)
        status.append(st)
        for k in range(1, e + 1):
            obs_t.append(tid)
            obs_r.append(k)
            obs_v.append(curve(x, k))
    state = sched.state_dict()
    state.update({"trials": {"ids": ids, "configs": configs, "level": level, "last": last, "status": status},
                  "paused": list(paused),
                  "observations": {"trial": obs_t, "resource": obs_r, "value": obs_v}})
    return state


def test_ftbo_shares_dyhpo_race() -> None:
    assert issubclass(FTBO, FreezeThawRace) and issubclass(DyHPO, FreezeThawRace)
    sched = ftbo()
    assert sched.levels == list(range(1, MAX_T + 1))


#: the crafted race of :func:`assert_thaws_good_first`: a promising and a poor paused trial
GOOD, POOR = 1, 2


def assert_thaws_good_first(sched: FTBO) -> None:
    """Load a race with a promising (x = 0.08) and a poor (x = 0.9) trial paused after 3 epochs
    and 6 completed ones; the promising one must score higher."""
    sched.load_state_dict(race_state(sched, {GOOD: (0.08, 3), POOR: (0.9, 3)},
                                     done=[0.15, 0.3, 0.45, 0.6, 0.75, 0.95]))
    scores = sched.candidate_scores()
    assert scores[GOOD] > scores[POOR]


@pytest.mark.parametrize("noise", [True, False])
def test_thaws_a_promising_paused_trial_over_a_poor_one(noise: bool) -> None:
    assert_thaws_good_first(ftbo(acquisition_noise=noise))

    # every config of a finite space started: the decision is between the paused trials alone
    finite = make_scheduler("FTBO", {"x": finrange(0.0, 1.0, 6), "epochs": MAX_T}, metric="loss",
                            resource_attr="epoch", max_resource_attr="epochs", step=1, seed=0,
                            acquisition_noise=noise, **SMALL)
    assert isinstance(finite, FTBO)
    finite.load_state_dict(race_state(finite, {GOOD: (0.0, 3), POOR: (1.0, 3)}, done=[0.2, 0.4, 0.6, 0.8]))
    assert "new" not in finite.candidate_scores()
    assert finite.suggest(7) == Suggestion.resume(GOOD)
    assert finite.paused_trials() == [POOR]


def test_suggest_resume_answers_none_without_change_when_a_new_config_wins() -> None:
    sched = ftbo()
    # the only paused trial is the worst: a new configuration is worth more
    sched.load_state_dict(race_state(sched, {5: (0.99, 2)}, done=[0.05, 0.3, 0.6]))
    scores = sched.candidate_scores()
    assert scores["new"] > scores[5]
    before = json.dumps(sched.state_dict(), sort_keys=True)
    assert sched.suggest_resume(8) is None
    assert json.dumps(sched.state_dict(), sort_keys=True) == before


def test_state_round_trip_rebuilds_the_same_model_and_decisions() -> None:
    sched = ftbo(refit_factor=1.2)
    rng = np.random.default_rng(0)
    epochs: dict[int, int] = {}
    configs: dict[int, dict[str, Any]] = {}
    for tid in range(30):  # a sequential run: each decision, one epoch, a pause
        s = sched.suggest(tid)
        assert s is not None
        t = tid if s.resume_trial_id is None else s.resume_trial_id
        if s.resume_trial_id is None:
            configs[t] = dict(s.config or {})
            epochs[t] = 0
        epochs[t] += 1
        sched.on_result(Trial(t, configs[t]), {"epoch": epochs[t],
                                                "loss": curve(configs[t]["x"], epochs[t]) + 0.01 * rng.random()})
    state = json.loads(json.dumps(sched.state_dict()))
    assert state["surrogate"]["anchor_size"] is not None
    assert state["proposer"]["fitted"]  # the GP of new_config="gp" (the default) travels with it
    fresh = ftbo(refit_factor=1.2)
    fresh.load_state_dict(state)
    assert json.dumps(fresh.state_dict(), sort_keys=True) == json.dumps(state, sort_keys=True)
    assert fresh.candidate_scores() == sched.candidate_scores()
    assert [fresh.suggest(100 + i) for i in range(3)] == [sched.suggest(100 + i) for i in range(3)]


def test_mfpi_random_draws_a_horizon_and_a_threshold_per_decision() -> None:
    sched = ftbo()
    sched.load_state_dict(race_state(sched, {1: (0.2, 2), 2: (0.5, 4)}, done=[0.1, 0.7]))
    seen = set()
    for _ in range(12):
        dec = sched._evaluate(allow_new=True, commit=False)
        assert 1 <= dec.horizon <= MAX_T
        # threshold: below the incumbent (0 after normalization) by 1e-4 to 1e-1 of the value range
        assert -0.1 <= dec.threshold <= -1e-4
        seen.add(dec.horizon)
    assert len(seen) > 3


@pytest.mark.parametrize("surrogate", ["gp", "pfn"])
def test_the_other_surrogates_thaw_the_promising_trial_and_survive_a_state_round_trip(surrogate: str) -> None:
    sched = ftbo(surrogate=surrogate)
    assert_thaws_good_first(sched)
    decision = sched.suggest(50)
    assert decision is not None and decision != Suggestion.resume(POOR)
    state = json.loads(json.dumps(sched.state_dict()))
    fresh = ftbo(surrogate=surrogate)
    fresh.load_state_dict(state)
    assert fresh.candidate_scores() == sched.candidate_scores()


def test_pfn_weights_option_loads_other_weights(tmp_path: Path) -> None:
    path = random_pfn_weights(tmp_path)  # n_ids 32: tells 31 curves apart
    sched = ftbo(surrogate="pfn", pfn_weights=str(path), max_context=24)
    sched.load_state_dict(race_state(sched, {1: (0.08, 3), 2: (0.9, 3)}, done=[0.15, 0.5]))
    assert sched._model.state_dict()["weights_sha256"] == json.loads(path.with_suffix(".json").read_text())["sha256"]
    assert np.isfinite(list(sched.candidate_scores().values())).all()
    with pytest.raises(UserError, match="max_context <= 31"):
        ftbo(surrogate="pfn", pfn_weights=str(path), max_context=40)
    with pytest.raises(UserError, match="does not exist"):
        ftbo(surrogate="pfn", pfn_weights=str(tmp_path / "missing.npz"))


def test_level_incumbent_lowers_the_bar_for_new_configs_and_horizon_options_are_checked() -> None:
    # "level": a new configuration predicted at step h - 1 is compared with the best observed up
    # to that step, not with the best at MAX_T: its probability can only rise
    higher = 0
    for seed in range(4):
        scores = {}
        for incumbent in ("global", "level"):
            sched = ftbo(incumbent=incumbent, seed=seed)
            sched.load_state_dict(race_state(sched, {1: (0.2, 2), 2: (0.5, 4)}, done=[0.1, 0.7]))
            scores[incumbent] = sched.candidate_scores()["new"]
        assert scores["level"] >= scores["global"] - 1e-9
        higher += scores["level"] > scores["global"] + 1e-9
    assert higher >= 1
    for horizon in ("relative", "common"):  # both thaw the promising trial first
        sched = ftbo(horizon=horizon)
        sched.load_state_dict(race_state(sched, {1: (0.08, 3), 2: (0.9, 3)}, done=[0.15, 0.3, 0.45, 0.6]))
        s = sched.candidate_scores()
        assert s[1] > s[2]
    with pytest.raises(ValueError, match="horizon must be"):
        ftbo(horizon="absolute")
    with pytest.raises(ValueError, match="incumbent must be"):
        ftbo(incumbent="best")


@pytest.mark.parametrize("surrogate", ["dpl", "pfn"])
def test_ei_acquisition_thaws_the_promising_trial_and_scores_new_configs_at_the_first_step(surrogate: str) -> None:
    sched = ftbo(surrogate=surrogate, acquisition="ei")
    assert_thaws_good_first(sched)
    dec = sched._evaluate(allow_new=True, commit=False)
    # the incumbent of the first step is the best first-epoch value (normalized, mapped for a PFN)
    observed = [curve(x, e) for x, n in [(0.08, 3), (0.9, 3)] + [(x, MAX_T) for x in (0.15, 0.3, 0.45, 0.6, 0.75, 0.95)]
                for e in range(1, n + 1)]
    first, low, high = curve(0.08, 1), min(observed), max(observed)
    margin = 0.1 if surrogate == "pfn" else 0.0
    assert dec.threshold == pytest.approx(margin + (1 - 2 * margin) * (first - low) / (high - low))
    assert dec.new_score is not None and np.isfinite(dec.new_score)
    with pytest.raises(ValueError, match="acquisition must be one of"):
        ftbo(acquisition="pi")


def test_per_step_incumbents_take_each_trials_first_value_at_the_step_else_a_prediction() -> None:
    sched = ftbo()
    sched.load_state_dict(race_state(sched, {GOOD: (0.08, 3), POOR: (0.9, 3)}, done=[0.15, 0.6]))
    values = np.asarray(sched._obs_y)
    best = sched._level_incumbents(values, lambda rows, j: pytest.fail("every step was reached"))
    # step index 3 (epoch 4): the completed trials' epoch-4 values; GOOD's better epoch 3 does not count
    assert best[3] == pytest.approx(curve(0.15, 4)) and curve(0.08, 3) < best[3]
    assert best[0] == pytest.approx(curve(0.08, 1)) and best[-1] == pytest.approx(curve(0.15, MAX_T))
    # steps no trial reached: the best prediction there over the configs observed at the highest step below
    sched = ftbo()
    sched.load_state_dict(race_state(sched, {GOOD: (0.08, 3), POOR: (0.9, 3)}, done=[]))
    asked = []

    def predict(rows: np.ndarray, j: int) -> np.ndarray:
        asked.append((sorted(rows[:, 0].round(2).tolist()), j))
        return rows[:, 0] + 10.0 * j

    best = sched._level_incumbents(np.asarray(sched._obs_y), predict)
    assert best[2] == pytest.approx(curve(0.08, 3))
    assert [j for _, j in asked] == list(range(3, MAX_T)) and all(x == [0.08, 0.9] for x, _ in asked)
    assert best[5] == pytest.approx(0.08 + 50.0)


@pytest.mark.parametrize("rule", ["gp", "acquisition"])
def test_new_configurations_proposed_by_the_gp_or_the_acquisition(rule: str) -> None:
    """The new configuration that competes with the paused trials: the GP's (EI at max_t over
    the best value) or the curve surrogate's acquisition maximizer; either is scored by the
    acquisition like the paused trials, and the GP's lies where the completed trials were best."""
    sched = ftbo(new_config=rule)
    sched.load_state_dict(race_state(sched, {5: (0.99, 2)}, done=[0.05, 0.3, 0.6, 0.8]))
    assert ("proposer" in sched.state_dict()) == (rule == "gp")
    assert sched.suggest_resume(8) is None  # the poor paused trial loses to the new configuration
    s = sched.suggest(8)
    assert s is not None and s.resume_trial_id is None and s.config is not None
    if rule == "gp":
        assert s.config["x"] < 0.3  # where the completed trials were best (loss grows with x)
    with pytest.raises(ValueError, match="new_config"):
        ftbo(new_config="mean")


def test_config_inputs_gp_gives_the_pfn_the_gps_predicted_final_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """``config_inputs="gp"``: the curve surrogate sees each config as one column, the proposing
    GP's predicted value at max_t scaled over the context's configs to [0, 1] (best config 0,
    worst 1: the loss grows with x), whatever rule proposes new configs; decisions and a state
    round trip as with the encoded configs."""
    import tunebench.schedulers.ftbo as ftbo_module

    maps: list[tuple[np.ndarray, Any]] = []

    def recording(gp: Any, context: np.ndarray) -> Any:
        features = gp_value_feature(gp, context)
        maps.append((context, features))
        return features

    monkeypatch.setattr(ftbo_module, "gp_value_feature", recording)
    sched = ftbo(surrogate="pfn", config_inputs="gp", new_config="acquisition")
    assert "proposer" in sched.state_dict()  # the GP is needed for the inputs alone
    assert_thaws_good_first(sched)
    context, features = maps[-1]
    f = features(context)
    assert f.shape == (len(context), 1) and f.min() == 0.0 and f.max() == 1.0
    x = context[:, 0]
    assert f[np.isclose(x, 0.08), 0].max() < 0.2 < 0.7 < f[np.isclose(x, 0.9), 0].min()
    ends = features(np.array([[0.0], [1.0]]))  # beyond the context: clipped to GP_FEATURE_RANGE
    assert np.all((ends >= GP_FEATURE_RANGE[0]) & (ends <= GP_FEATURE_RANGE[1]))
    decision = sched.suggest(50)
    assert decision is not None and decision != Suggestion.resume(POOR)
    state = json.loads(json.dumps(sched.state_dict()))
    fresh = ftbo(surrogate="pfn", config_inputs="gp", new_config="acquisition")
    fresh.load_state_dict(state)
    assert fresh.candidate_scores() == sched.candidate_scores()
    with pytest.raises(ValueError, match="config_inputs"):
        ftbo(surrogate="pfn", config_inputs="mean")
    with pytest.raises(ValueError, match="config_inputs='gp' takes surrogate='pfn'"):
        ftbo(surrogate="dpl", config_inputs="gp")
    # the default ("auto"): the GP's value for the PFN, the encoded configs for the others
    assert [ftbo(surrogate=s).config_inputs for s in ("pfn", "dpl", "gp")] == ["gp", "config", "config"]
    assert ftbo(surrogate="pfn", config_inputs="config").config_inputs == "config"


def _drive_until_resume(sched: FTBO, next_id: list[int], last: dict[int, int]) -> int:
    """Answer ``suggest`` until it resumes a trial; new trials run their first epoch (and pause
    there). Returns the resumed trial."""
    from tunebench.types import Decision

    for _ in range(40):
        s = sched.suggest(next_id[0])
        assert s is not None
        if s.resume_trial_id is not None:
            return s.resume_trial_id
        tid, next_id[0] = next_id[0], next_id[0] + 1
        assert sched.on_result(Trial(tid, s.config), {"epoch": 1, "loss": curve(s.config["x"], 1)}) is Decision.PAUSE
        last[tid] = 1
    raise AssertionError("no resume in 40 decisions")


def test_auto_steps_are_one_epoch_until_a_resumed_script_restarts_then_geometric() -> None:
    """FTBO's default ``step="auto"``: one epoch per step while resumed trials continue from their
    checkpoints; the first resume that goes back to epoch 1 (no checkpoint) switches to pauses at the
    geometric levels 1, 3, 9 only, for every trial from then on, and a snapshot keeps the switch."""
    from tunebench.types import Decision

    sched = make_scheduler("FTBO", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                           seed=0, **SMALL)
    assert isinstance(sched, FTBO) and sched.step == "auto" and sched.levels == list(range(1, MAX_T + 1))
    next_id, last = [0], {}

    def report(tid: int, epoch: int) -> Decision:
        return sched.on_result(Trial(tid, sched._trials[tid].config),
                               {"epoch": epoch, "loss": curve(sched._trials[tid].config["x"], epoch)})

    # a resume that continues from its checkpoint (re-reporting its checkpointed epoch first) pauses
    # after one more epoch
    tid = _drive_until_resume(sched, next_id, last)
    assert report(tid, last[tid]) is Decision.CONTINUE
    assert report(tid, last[tid] + 1) is Decision.PAUSE
    last[tid] += 1
    assert sched.state_dict()["coarse_pauses"] is False
    # a resume whose script starts over (at epoch 1, below its last): its old epochs are ignored, it
    # runs on to the next geometric level
    tid = _drive_until_resume(sched, next_id, last)
    while last[tid] < 2:  # (a restart of a trial at epoch 1 cannot be told from a checkpointed resume)
        assert report(tid, last[tid] + 1) is Decision.PAUSE
        last[tid] += 1
        tid = _drive_until_resume(sched, next_id, last)
    target = 3 if last[tid] < 3 else 9
    for epoch in range(1, target):
        assert report(tid, epoch) is Decision.CONTINUE
    assert report(tid, target) is Decision.PAUSE
    assert sched.trial_level(tid) == target and sched.state_dict()["coarse_pauses"] is True
    last[tid] = target
    # from now on every resume runs to the next geometric level, with or without a checkpoint
    tid = _drive_until_resume(sched, next_id, last)
    target = 3 if last[tid] < 3 else 9
    for epoch in range(last[tid] + 1, target):
        assert report(tid, epoch) is Decision.CONTINUE
    restored = make_scheduler("FTBO", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                              seed=0, **SMALL)
    restored.load_state_dict(json.loads(json.dumps(sched.state_dict())))
    end = Decision.PAUSE if target < MAX_T else Decision.CONTINUE  # at max_t the script ends by itself
    assert report(tid, target) is end
    assert restored.on_result(Trial(tid, sched._trials[tid].config),
                              {"epoch": target, "loss": curve(sched._trials[tid].config["x"], target)}) is end
    # the default geometric steps, and a bad step, for comparison
    assert ftbo(step=None).levels == [1, 3, 9]
    with pytest.raises(ValueError, match="step must be a number > 0, 'auto' or None"):
        ftbo(step="sometimes")


#: the quadratic script of conftest without checkpoints: a resumed trial trains from epoch 1 again
#: (each epoch trained is appended to trained_epochs.txt in its trial folder)
NO_CHECKPOINT = """
import argparse, os
from tunebench import report
from tunebench.reporting import add_checkpoint_argument
p = argparse.ArgumentParser()
p.add_argument("--x", type=float, default=0.0)
p.add_argument("--epochs", type=int, default=9)
add_checkpoint_argument(p)
args, _ = p.parse_known_args()
for epoch in range(1, args.epochs + 1):
    with open(os.path.join(args.checkpoint_dir, "..", "trained_epochs.txt"), "a") as f:
        f.write(f"{epoch}\\n")
    report(epoch=epoch, loss=((args.x - 0.3) ** 2 + 0.05) * (1 + 2 / epoch))
"""


@pytest.mark.slow
def test_auto_steps_on_the_local_backend_with_a_script_without_checkpoints(tmp_path: Path) -> None:
    """Real trial processes that restart from epoch 1 when resumed: the tuner drops the re-reported
    epochs before FTBO sees them and tells it of the restart (logged, and replayed from the log);
    from then on trials pause only at the geometric levels 1 and 3, so the run ends with each trial
    resumed at most twice after the switch."""
    from conftest import write_script

    from tunebench.backends.local import LocalBackend
    from tunebench.events import restore
    from tunebench.store import load_experiment
    from tunebench.tuner import StopCriteria, Tuner

    script = write_script(tmp_path, NO_CHECKPOINT)
    space = {"x": uniform(0.0, 1.0), "epochs": MAX_T}

    def scheduler() -> FTBO:
        sched = make_scheduler("FTBO", space, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                               seed=0, **SMALL)
        assert isinstance(sched, FTBO) and sched.step == "auto"
        return sched

    exp = tmp_path / "exp"
    sched = scheduler()
    result = Tuner(LocalBackend(script=script), sched, n_workers=1, stop=StopCriteria(max_trials=6),
                   experiment_dir=exp).run()
    assert result.n_failed == 0
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    switch = next(i for i, e in enumerate(events) if e["event"] == "result_ignored" and e.get("restart"))
    assert events[switch]["result"]["epoch"] == 1 and sched.state_dict()["coarse_pauses"] is True
    before = [e["result"]["epoch"] for e in events[:switch] if e["event"] == "result" and e["decision"] == "PAUSE"]
    after = [e["result"]["epoch"] for e in events[switch:] if e["event"] == "result" and e["decision"] == "PAUSE"]
    assert 2 in before  # one epoch per step until the restart (the restarted trial was paused at 2 or more)
    assert set(after) <= {1, 3}
    resumes_after: dict[int, int] = {}
    for e in events[switch:]:
        if e["event"] == "trial_resume":
            resumes_after[e["trial_id"]] = resumes_after.get(e["trial_id"], 0) + 1
    assert max(resumes_after.values(), default=0) <= 2
    # each process of a trial trained from epoch 1 (the script really restarts); the replayed log has the switch
    n_resumes = {tid: sum(1 for e in events if e["event"] == "trial_resume" and e["trial_id"] == tid)
                 for tid in range(6)}
    for tid in range(6):
        trained = (exp / "trials" / str(tid) / "trained_epochs.txt").read_text().split()
        assert 1 <= trained.count("1") <= 1 + n_resumes[tid]  # (a process paused before its first epoch: less)
    assert any(trained.count("1") > 1 for trained in (
        (exp / "trials" / str(tid) / "trained_epochs.txt").read_text().split() for tid in range(6)))
    replayed = scheduler()
    restore(replayed, events, None, exp)
    assert replayed.state_dict()["coarse_pauses"] is True
    assert load_experiment(exp).summary()["n_trials"] == 6


def test_options_are_checked() -> None:
    wide = {f"c{i}": finrange(0.0, 1.0, 3) for i in range(11)}
    with pytest.raises(UserError, match="at most 10 encoded columns and this space has 11"):
        make_scheduler("FTBO", {**wide, "epochs": MAX_T}, metric="loss", resource_attr="epoch",
                       max_resource_attr="epochs", surrogate="pfn")
    with pytest.raises(UserError, match="max_context <= 1023"):
        ftbo(surrogate="pfn", max_context=2000)
    with pytest.raises(UserError, match="unknown FTBO surrogate"):
        ftbo(surrogate="gpx")
    with pytest.raises(ValueError, match="max_context"):
        ftbo(max_context=0)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_value_bounds_fix_the_scaling_of_the_surrogates_values(mode: str) -> None:
    sign = 1.0 if mode == "min" else -1.0
    fitted = ftbo(surrogate="pfn", mode=mode)
    fixed = ftbo(surrogate="pfn", mode=mode, value_bounds=(-2.0, 4.0))
    for sched in (fitted, fixed):
        sched.load_state_dict(race_state(sched, {GOOD: (0.08, 3)}, done=[0.3, 0.9]))
        # race_state reports losses; for mode="max" the same numbers are read as values to maximize
    raw = np.asarray(fixed._obs_y)
    _, _, y_fit, _, _ = fitted._model_data(len(raw))
    _, _, y_fix, _, scaling = fixed._model_data(len(raw))
    # fitted: min-max of the observed values onto [0.1, 0.9]
    assert y_fit.min() == pytest.approx(0.1) and y_fit.max() == pytest.approx(0.9)
    # fixed: the value v (a loss, or a score to maximize) sits where it lies in [-2, 4], errors as
    # "lower is better" (a score near its upper bound maps near 0)
    value = sign * raw  # the metric as reported
    norm = (value + 2.0) / 6.0 if mode == "min" else (4.0 - value) / 6.0
    assert scaling.low == pytest.approx(-2.0 if mode == "min" else -4.0)
    assert np.allclose(np.sort(y_fix), np.sort(0.1 + 0.8 * norm))
    # a value outside the bounds is clipped into them (values to minimize, as _obs_y holds them)
    assert fixed._for_model(np.asarray([10.0, -10.0]), scaling).tolist() == pytest.approx([0.9, 0.1])
    assert fixed.candidate_scores()[GOOD] > -np.inf


def test_value_bounds_are_checked() -> None:
    for bad in [(1.0, 1.0), (2.0, 1.0), (0.0, float("inf")), (0.0,), "ab"]:
        with pytest.raises(ValueError, match="value_bounds"):
            ftbo(value_bounds=bad)


def test_runs_on_lcbench_from_the_cli(tmp_path: Path, shared_data: Path) -> None:
    pytest.importorskip("onnxruntime", reason="lcbench needs the yahpo extra (onnxruntime)")
    exp = tmp_path / "exp"
    env = {**os.environ, "TUNEBENCH_DATA": str(shared_data), "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    quick = [a for k, v in {**SMALL, "step": 3}.items() for a in ("--method-arg", f"{k}={json.dumps(v)}")]
    run = subprocess.run([sys.executable, "-m", "tunebench", "run", "--benchmark", "lcbench-3945", "--method", "FTBO",
                          *quick, "--n-workers", "2", "--max-trials", "25", "--experiment-dir", str(exp),
                          "--no-progress"], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    results = [e for e in events if e.get("event") == "result"]
    assert results and all(e["result"]["epoch"] >= 1 for e in results)
    pauses = [e for e in results if e["decision"] == "PAUSE"]
    assert pauses and {e["result"]["epoch"] for e in pauses} <= {1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37,
                                                                     40, 43, 46, 49}
    resumed = {e["trial_id"] for e in events if e.get("event") == "trial_resume"}
    assert resumed, "FTBO thawed paused trials"
    summary = json.loads(subprocess.run([sys.executable, "-m", "tunebench", "show", str(exp), "--json"],
                                        capture_output=True, text=True, timeout=120, env=env).stdout)
    assert summary["n_trials"] == 25 and summary["metric"] == "val_accuracy"
