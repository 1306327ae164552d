"""Ask/tell (issue 14): every registered method driven from the caller's own loop through
:class:`tunebench.AskTell`, its decisions those the tuner takes for the same calls, its log the
tuner's (``tunebench show`` reads it), and a SIGKILL in the middle of a loop loses nothing."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench import AskTell, StopCriteria, Tuner, load_experiment
from tunebench.ask_tell import AskedTrial
from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.synthetic import branin_blackbox
from tunebench.errors import UserError
from tunebench.schedulers import METHODS, Scheduler, make_scheduler, method_names
from tunebench.space import loguniform, uniform
from tunebench.store import EVENTS_FILE, STATE_FILE
from tunebench.testing.scheduler_contract import (
    CONTRACT_CHECKS,
    CONTRACT_CONSTRAINT,
    ContractSimulation,
    contract_prior,
    contract_space,
    contract_transfer_tasks,
)
from tunebench.types import Decision, Result, Status, Suggestion, Trial

REPO = Path(__file__).resolve().parent.parent
MAX_T = 27
SPACE = contract_space(MAX_T)
# a quadratic bowl over (lr, momentum) whose loss falls with the epochs
QUAD = {"lr": loguniform(1e-4, 1.0), "momentum": uniform(0.0, 0.99), "epochs": 9}


def quad_loss(config: dict[str, Any], epoch: int) -> float:
    return (math.log10(config["lr"]) + 2.0) ** 2 + (config["momentum"] - 0.9) ** 2 + 1.0 / epoch


def _events(exp: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (exp / EVENTS_FILE).read_text().splitlines()]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def _train(at: AskTell, t: AskedTrial, max_epoch: int = 9) -> list[tuple[int, int, str]]:
    """Train the trial ``t`` handed out by ``at`` on :func:`quad_loss`, from the epoch after its
    last result, until a decision other than CONTINUE or its last epoch (then complete it);
    returns what was told as ``(trial_id, epoch, decision)``."""
    told = []
    last = at.trials[t.trial_id].last_result
    for e in range(last["epoch"] + 1 if last else 1, max_epoch + 1):
        decision = at.tell(t.trial_id, {"epoch": e, "loss": quad_loss(t.config, e)})
        told.append((t.trial_id, e, decision.value))
        if decision != "CONTINUE":
            return told
    at.complete(t.trial_id)
    return told


def _run_loop(at: AskTell, n_trials: int, max_asks: int | None = None) -> list[tuple[int, int, str]]:
    """A plain ask/tell loop (one trial at a time) until ``n_trials`` trials were started and no
    paused trial is due to go on (or ``max_asks`` asks); returns what was told."""
    told = []
    asks = 0
    while max_asks is None or asks < max_asks:
        t = at.ask(resume_only=len(at.trials) >= n_trials)
        asks += 1
        if t is None:
            break
        told += _train(at, t)
    return told


# -- the tuner's decisions ----------------------------------------------------------------------


def test_asha_through_ask_tell_decides_as_the_tuner(tmp_path: Path) -> None:
    """A tuner runs ASHA on the simulator (4 workers, so calls interleave); the same calls made
    through AskTell, in the order of the tuner's log, get the same suggestions and decisions, and
    AskTell writes the same log (kinds, trials, configs, results, decisions)."""
    bb = branin_blackbox()
    space = {**bb.config_space, "epochs": MAX_T}
    args = dict(metric="loss", mode="min", resource_attr=bb.fidelity_name, max_resource_attr="epochs", seed=3)
    tuner = Tuner(SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs"),
                  make_scheduler("ASHA", space, **args), n_workers=4, stop=StopCriteria(max_trials=25),
                  experiment_dir=tmp_path / "tuner")
    result = tuner.run()
    logged = _events(tmp_path / "tuner")
    assert "trial_complete" in {e["event"] for e in logged}

    with AskTell("asha", space, experiment_dir=tmp_path / "at", **args) as at:
        for ev in logged:
            kind = ev["event"]
            if kind == "trial_start":
                assert at.ask() == AskedTrial(ev["trial_id"], ev["config"])
            elif kind in ("result", "result_ignored"):
                told = {k: v for k, v in ev["result"].items() if k != "trial_id"}
                assert at.tell(ev["trial_id"], told) == ev.get("decision", "CONTINUE")
            elif kind == "trial_complete":
                at.complete(ev["trial_id"])
            elif kind == "trial_fail":
                at.fail(ev["trial_id"], ev["error"])
        assert at.best is not None and at.best.trial_id == result.best_trial_id
        assert at.best.config == result.best_config and at.best.value == result.best_metric

    def calls(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(e["event"], e.get("trial_id"), json.dumps(e.get("config"), sort_keys=True),
                 json.dumps(e.get("result"), sort_keys=True), e.get("decision"))
                for e in events if e["event"] not in ("session_start", "experiment_end")]

    assert calls(_events(tmp_path / "at")) == calls(logged)
    ours, theirs = load_experiment(tmp_path / "at").summary(), load_experiment(tmp_path / "tuner").summary()
    for key in ("n_trials", "n_completed", "n_stopped", "n_results", "best_trial_id", "best_config", "leaderboard"):
        assert ours[key] == theirs[key], key


# -- pause, resume, stop, complete, fail --------------------------------------------------------


def test_pause_then_resume_through_ask() -> None:
    """Promotion-type ASHA pauses every trial at its rung; a later ask() resumes one of the paused
    trials (same id, resumed=True), which then goes on from where it was."""
    at = AskTell("ASHA-promotion", QUAD, metric="loss", resource_attr="epoch", max_resource_attr="epochs", seed=1)
    paused: set[int] = set()
    resumed: AskedTrial | None = None
    while resumed is None:
        t = at.ask()
        assert t is not None
        if t.resumed:
            resumed = t
            break
        assert at.tell(t.trial_id, {"epoch": 1, "loss": quad_loss(t.config, 1)}) == "PAUSE"
        assert at.trials[t.trial_id].status is Status.PAUSED
        paused.add(t.trial_id)
        with pytest.raises(UserError, match=r"tell\(trial \d+\): the trial is paused, not running; wait for ask"):
            at.tell(t.trial_id, {"epoch": 2, "loss": 0.5})
    assert resumed.trial_id in paused and not resumed.restarted
    assert resumed.config == at.trials[resumed.trial_id].config
    assert at.trials[resumed.trial_id].status is Status.RUNNING
    best_paused = min(paused, key=lambda tid: quad_loss(at.trials[tid].config, 1))
    assert resumed.trial_id == best_paused  # the best of its rung is promoted
    decision = at.tell(resumed.trial_id, {"epoch": 2, "loss": quad_loss(resumed.config, 2)})
    assert decision in ("CONTINUE", "PAUSE")
    assert at.trials[resumed.trial_id].n_results == 2


def test_stop_complete_and_fail() -> None:
    at = AskTell("ASHA", QUAD, metric="loss", resource_attr="epoch", max_resource_attr="epochs", seed=0,
                 grace_period=1, reduction_factor=3)
    first = at.ask()
    assert first is not None and first == AskedTrial(0, first.config, resumed=False)
    for e in range(1, 10):
        assert at.tell(0, {"epoch": e, "loss": 0.1 / e}) == "CONTINUE"
    at.complete(0)
    assert at.trials[0].status is Status.COMPLETED and at.trials[0].n_results == 9
    with pytest.raises(UserError, match=r"complete\(trial 0\): the trial is completed, not running; it is over"):
        at.complete(0)
    second = at.ask()
    assert second is not None and second.trial_id == 1
    decision = at.tell(1, {"epoch": 1, "loss": 5.0})  # far worse than trial 0 at its first rung
    assert decision == "STOP" and decision is Decision.STOP
    assert at.trials[1].status is Status.STOPPED
    with pytest.raises(UserError, match="the trial is stopped, not running"):
        at.tell(1, {"epoch": 2, "loss": 4.0})
    third = at.ask()
    assert third is not None and third.trial_id == 2
    with pytest.raises(UserError, match=r"complete\(trial 2\): no result of it was told; .* or fail\(2\)"):
        at.complete(2)
    at.fail(2, error="CUDA out of memory")
    assert at.trials[2].status is Status.FAILED and at.trials[2].error == "CUDA out of memory"
    assert at.best is not None and at.best.trial_id == 0 and at.best.at_max_resource
    assert at.n_results == 10


def test_repeated_or_excess_resources_are_ignored_as_the_tuner_does(caplog: pytest.LogCaptureFixture) -> None:
    at = AskTell("RS", QUAD, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    t = at.ask()
    assert t is not None
    at.tell(t.trial_id, {"epoch": 1, "loss": 0.5})
    at.tell(t.trial_id, {"epoch": 2, "loss": 0.4})
    with caplog.at_level("WARNING", logger="tunebench.ask_tell"):
        assert at.tell(t.trial_id, {"epoch": 2, "loss": 0.1}) == "CONTINUE"
        assert at.tell(t.trial_id, {"epoch": 10, "loss": 0.1}) == "CONTINUE"  # epochs=9 is its maximum
    assert "epoch=2 already told: ignored" in caplog.text
    assert at.trials[t.trial_id].n_results == 2 and at.trials[t.trial_id].best == 0.4


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("result, message", [
    ({"epoch": 1, "accuracy": 0.3}, r"told \{'epoch': 1, 'accuracy': 0.3\} without the metric 'loss': pass "
                                    r"\{'loss': value, ...\} to tell\(\)"),
    ({"epoch": 1, "loss": float("nan")}, "told loss=nan, which is not a finite number"),
    ({"epoch": 1, "loss": "0.3"}, "told loss='0.3', which is not a number"),
    ({"loss": 0.3}, r"told loss without the resource 'epoch': pass \{'epoch': ..., 'loss': ...\} to tell\(\)"),
    ({"epoch": True, "loss": 0.3}, "told epoch=True, which is not a number"),
    ({"epoch": 1, "loss": 0.3, "trial_id": 4}, "told the reserved key 'trial_id'; rename that metric"),
    ({"epoch": 1, "loss": 0.3, "model": object()}, r"told a result that is not JSON-able \(Object of type object"),
    ([("epoch", 1)], "the result must be a dict of metric -> value, got list"),
])
def test_a_bad_result_is_refused_and_changes_nothing(result: Any, message: str) -> None:
    at = AskTell("ASHA", QUAD, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    t = at.ask()
    assert t is not None
    before = json.dumps(at.state_dict(), sort_keys=True)
    with pytest.raises(UserError, match=r"^tell\(trial 0\): " + message):
        at.tell(t.trial_id, result)
    assert json.dumps(at.state_dict(), sort_keys=True) == before
    # numpy scalars are numbers
    assert at.tell(t.trial_id, {"epoch": np.int64(1), "loss": np.float32(0.25)}) == "CONTINUE"
    assert at.trials[0].last_result == {"epoch": 1, "loss": 0.25, "trial_id": 0}


def test_bad_calls_name_the_fix(tmp_path: Path) -> None:
    at = AskTell("RS", QUAD, metric="loss")
    with pytest.raises(UserError, match=r"tell\(0\): no trial was asked yet; call ask\(\) first"):
        at.tell(0, {"loss": 1.0})
    at.ask()
    with pytest.raises(UserError, match=r"fail\(7\): no such trial; pass the trial_id of a trial ask\(\) handed "
                                        r"out \(0 to 0\)"):
        at.fail(7)
    with pytest.raises(UserError, match="unknown method 'nope'; known methods: RS, "):
        AskTell("nope", QUAD, metric="loss")
    with pytest.raises(UserError, match="method 'ASHA' is multi-fidelity: pass --resource-attr"):
        AskTell("ASHA", QUAD, metric="loss")
    with pytest.raises(UserError, match="method 'RS' does not take option"):
        AskTell("RS", QUAD, metric="loss", grace_period=2)
    with pytest.raises(UserError, match="options of method 'BO' must be JSON-able"):
        AskTell("BO", QUAD, metric="loss", points_to_evaluate=[{"lr": object()}])
    with pytest.raises(UserError, match="state_dict of AskTell"):
        at.load_state_dict({"scheduler": {}})
    with pytest.raises(UserError, match="not a tunebench experiment folder"):
        AskTell.load(tmp_path)


# -- persistence --------------------------------------------------------------------------------


def test_state_dict_round_trip_continues_identically() -> None:
    def make() -> AskTell:
        return AskTell("ASHA-promotion", QUAD, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                       seed=5)

    ref = make()
    told_ref = _run_loop(ref, 12)
    assert "PAUSE" in {d for _, _, d in told_ref} and len(ref.trials) == 12
    at = make()
    told = _run_loop(at, 12, max_asks=7)
    state = json.loads(json.dumps(at.state_dict()))
    fresh = make()
    fresh.load_state_dict(state)
    assert json.dumps(fresh.state_dict(), sort_keys=True) == json.dumps(state, sort_keys=True)
    told += _run_loop(fresh, 12)
    assert told == told_ref
    assert fresh.best == ref.best


def test_a_logged_experiment_is_locked_shown_and_loaded(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    at = AskTell("ASHA", QUAD, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                 experiment_dir=exp, seed=2)
    told = _run_loop(at, 10)
    with pytest.raises(UserError, match="is being tuned by another tuner") as refused:
        AskTell.load(exp)
    assert f"and then `AskTell.load({str(exp)!r})`" in str(refused.value)  # not `tunebench resume`
    running = at.ask()  # left running as the session ends: interrupted, handed out again after load
    assert running is not None
    best = at.best
    assert best is not None
    at.close()
    with pytest.raises(UserError, match="this AskTell is closed"):
        at.ask()
    with pytest.raises(UserError, match=r"already holds an experiment; continue it with AskTell.load"):
        AskTell("ASHA", QUAD, metric="loss", resource_attr="epoch", max_resource_attr="epochs", experiment_dir=exp)

    shown = subprocess.run([sys.executable, "-m", "tunebench", "show", str(exp)], env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "method ASHA, metric loss (min)" in shown.stdout
    assert f"results: {len(told)}," in shown.stdout and "finished: closed" in shown.stdout
    assert f"best loss (min): {best.value:.6g} (trial {best.trial_id}" in shown.stdout
    as_json = subprocess.run([sys.executable, "-m", "tunebench", "show", "--json", str(exp)], env=_env(),
                             capture_output=True, text=True, timeout=120)
    summary = json.loads(as_json.stdout)
    assert summary["best_trial_id"] == best.trial_id and summary["best_config"] == best.config
    assert summary["n_trials"] == 11 and summary["n_stopped"] >= 1 and summary["n_running"] == 0
    resumed = subprocess.run([sys.executable, "-m", "tunebench", "resume", str(exp)], env=_env(),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode != 0 and "AskTell.load(PATH)" in resumed.stderr

    again = AskTell.load(exp)
    assert again.n_results == len(told) and again.best == best
    t = again.ask()
    assert t == AskedTrial(running.trial_id, running.config, resumed=True, restarted=True)
    again.tell(t.trial_id, {"epoch": 1, "loss": quad_loss(t.config, 1)})
    again.close()
    assert load_experiment(exp).summary()["n_results"] == len(told) + 1


def test_load_refuses_a_tuner_experiment(tmp_path: Path) -> None:
    bb = branin_blackbox()
    space = {**bb.config_space, "epochs": MAX_T}
    Tuner(SimulatorBackend(bb, max_resource_attr="epochs"), make_scheduler("RS", space, metric="loss"),
          stop=StopCriteria(max_trials=2), experiment_dir=tmp_path / "t").run()
    with pytest.raises(UserError, match="was not written by AskTell.*tunebench resume"):
        AskTell.load(tmp_path / "t")


CRASHING_LOOP = """
import math, sys
from tunebench import AskTell
from tunebench.space import loguniform, uniform

space = {"lr": loguniform(1e-4, 1.0), "momentum": uniform(0.0, 0.99), "epochs": 9}
at = AskTell("ASHA-promotion", space, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
             experiment_dir=sys.argv[1], seed=4, snapshot_interval=0.0)
while (t := at.ask()) is not None:
    last = at.trials[t.trial_id].last_result
    for e in range((last["epoch"] + 1) if last else 1, 10):
        loss = (math.log10(t.config["lr"]) + 2.0) ** 2 + (t.config["momentum"] - 0.9) ** 2 + 1.0 / e
        d = at.tell(t.trial_id, {"epoch": e, "loss": loss})
        print(t.trial_id, e, d.value, flush=True)
        if d != "CONTINUE":
            break
    else:
        at.complete(t.trial_id)
"""


def test_sigkill_in_the_middle_of_a_loop_loses_nothing(tmp_path: Path) -> None:
    """A process running an ask/tell loop is killed with SIGKILL after it told 40 results;
    AskTell.load gets every result it told back, hands out the trial it was training again, and
    the loop goes on."""
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(CRASHING_LOOP))
    exp = tmp_path / "exp"
    proc = subprocess.Popen([sys.executable, str(script), str(exp)], stdout=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    told = []
    for line in proc.stdout:
        tid, epoch, decision = line.split()
        told.append((int(tid), int(epoch), decision))
        if len(told) == 40:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert len(told) == 40, "the loop ended before it was killed"

    at = AskTell.load(exp)
    logged = [(e["trial_id"], e["result"]["epoch"], e["decision"]) for e in _events(exp) if e["event"] == "result"]
    assert logged[:40] == told  # everything told is there (the kill may land after one more tell)
    assert at.n_results == len(logged)
    running = [tid for tid, info in at.trials.items() if info.status is Status.RUNNING]
    assert len(running) <= 1
    if running:
        t = at.ask()
        assert t is not None and t.trial_id == running[0] and t.resumed and t.restarted
        last = at.trials[t.trial_id].last_result
        assert last is not None and _train(at, t)[0][1] == last["epoch"] + 1  # goes on where it was
    _run_loop(at, 15)
    at.close()
    summary = load_experiment(exp).summary()
    assert summary["n_results"] >= 40 and summary["n_running"] == 0 and summary["finished"]
    assert [e["event"] for e in _events(exp)].count("session_start") == 2


# -- every method, through the scheduler contract suite -----------------------------------------


class ViaAskTell(Scheduler):
    """A scheduler whose every call goes through an :class:`AskTell` of the registered ``method``
    (with the quick options of its registration), so the contract suite checks the method as
    driven by ask/tell. ``experiment_dir`` and ``reload_at``: at call number ``reload_at``, the
    AskTell is closed and loaded back from the folder, its scheduler snapshot deleted (the whole
    log is replayed); the trials running then keep being told (``restart_running=False``)."""

    def __init__(self, method: str, seed: int, experiment_dir: Path | None = None, reload_at: int | None = None):
        self.at = AskTell(method, SPACE, metric="loss", mode="min", resource_attr="epoch", max_resource_attr="epochs",
                          seed=seed, experiment_dir=experiment_dir, **METHODS[method].quick_options,
                          **({"constraints": [CONTRACT_CONSTRAINT]} if METHODS[method].constrained else {}),
                          prior=contract_prior(method, SPACE),
                          **({"transfer": contract_transfer_tasks(SPACE)} if METHODS[method].transfer else {}))
        self.config_space, self.metric, self.mode = SPACE, self.at.metric, self.at.mode
        self.resource_attr, self.max_resource_attr = self.at.resource_attr, "epochs"
        self.experiment_dir, self.reload_at, self.n_calls = experiment_dir, reload_at, 0

    def _count(self) -> None:
        self.n_calls += 1
        if self.n_calls == self.reload_at:
            assert self.experiment_dir is not None
            self.at.close()
            (self.experiment_dir / STATE_FILE).unlink()
            self.at = AskTell.load(self.experiment_dir, restart_running=False)

    def _suggest(self, trial_id: int, resume_only: bool) -> Suggestion | None:
        self._count()
        t = self.at.ask(resume_only=resume_only)
        if t is None:
            return None
        assert not t.restarted
        if t.resumed:
            return Suggestion.resume(t.trial_id, t.config)
        assert t.trial_id == trial_id
        return Suggestion.start(t.config)

    def suggest(self, trial_id: int) -> Suggestion | None:
        return self._suggest(trial_id, False)

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        return self._suggest(trial_id, True)

    def on_result(self, trial: Trial, result: Result) -> Decision:
        self._count()
        return self.at.tell(trial.trial_id, {k: v for k, v in result.items() if k != "trial_id"})

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        self._count()
        self.at.complete(trial.trial_id)

    def on_error(self, trial: Trial) -> None:
        self._count()
        self.at.fail(trial.trial_id, "failed in the contract workload")

    def state_dict(self) -> dict[str, Any]:
        return self.at.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.at.load_state_dict(state)


@pytest.mark.parametrize("check", list(CONTRACT_CHECKS), ids=list(CONTRACT_CHECKS))
@pytest.mark.parametrize("method", method_names())
def test_every_method_passes_the_contract_through_ask_tell(method: str, check: str) -> None:
    """The scheduler contract suite, every check, every registered method, every call made by
    ask/tell: ids unique, configs in the space, decisions valid, resumes of paused trials only,
    None keeps the state, same seed same answers, state_dict round trip mid-run, bad results
    refused naming the key, sane results, small budgets finish their rungs."""
    CONTRACT_CHECKS[check](lambda seed: ViaAskTell(method, seed), n_trials=METHODS[method].quick_trials,
                           max_t=MAX_T, seed=0)


@pytest.mark.parametrize("method", method_names())
def test_every_method_continues_from_its_log_identically(tmp_path: Path, method: str) -> None:
    """Each method run through ask/tell with an experiment folder, closed mid-run and loaded back
    from its log (the whole log replayed: the snapshot is deleted), answers every later call as
    an uninterrupted run does, and its log reads back with every result."""
    n_trials = min(20, METHODS[method].quick_trials)
    ref = ContractSimulation(ViaAskTell(method, 0), n_trials=n_trials, max_t=MAX_T, check_none_state=False)
    ref.run()
    sim = ContractSimulation(ViaAskTell(method, 0, tmp_path / "exp", reload_at=len(ref.calls) // 2),
                             n_trials=n_trials, max_t=MAX_T, check_none_state=False)
    sim.run()
    assert [(c.kind, c.trial_id, c.answer) for c in sim.calls] == [(c.kind, c.trial_id, c.answer) for c in ref.calls]
    scheduler = sim.scheduler
    assert isinstance(scheduler, ViaAskTell) and scheduler.n_calls >= len(ref.calls) // 2
    assert json.dumps(scheduler.at.state_dict(), sort_keys=True) == json.dumps(ref.scheduler.state_dict(),
                                                                               sort_keys=True)
    scheduler.at.close()
    summary = load_experiment(tmp_path / "exp").summary()
    n_ignored = sum(1 for e in _events(tmp_path / "exp") if e["event"] == "result_ignored")
    assert summary["n_results"] + n_ignored == sum(1 for c in ref.calls if c.kind == "result")
    assert summary["n_trials"] == len(ref.trials)
