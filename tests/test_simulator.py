"""The simulator backend: results at the right simulated times, pause/resume accounting,
determinism, and the same scheduler code as on real trials."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_script

from tunebench.backends.local import LocalBackend
from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.base import Blackbox
from tunebench.errors import UserError
from tunebench.schedulers import make_scheduler
from tunebench.space import uniform
from tunebench.store import EVENTS_FILE, load_experiment
from tunebench.tuner import StopCriteria, Tuner
from tunebench.types import Decision, Trial


class QuadraticBlackbox(Blackbox):
    """loss = ((x - 0.3)^2 + 0.05) * (1 + 2 / epoch); each epoch takes 1 + 10 * |x| seconds."""

    name = "quadratic"
    fidelity_name = "epoch"
    objectives = ("loss", "time")
    elapsed_time_attr = "time"

    def __init__(self, max_epoch: int = 9) -> None:
        self.config_space = {"x": uniform(-1.0, 1.0)}
        self.fidelity_values = np.arange(1, max_epoch + 1)

    @staticmethod
    def epoch_time(x: float) -> float:
        return 1.0 + 10.0 * abs(x)

    def _evaluate(self, configs, fidelity_index, seed):
        x = np.array([c["x"] for c in configs])[:, None]
        epochs = self.fidelity_values[fidelity_index][None, :].astype(float)
        loss = ((x - 0.3) ** 2 + 0.05) * (1 + 2 / epochs)
        elapsed = epochs * (1.0 + 10.0 * np.abs(x))
        return np.stack([loss, elapsed], axis=-1)


SCRIPT = '''
import argparse
from tunebench import report
p = argparse.ArgumentParser(); p.add_argument("--x", type=float); p.add_argument("--epochs", type=int)
a = p.parse_args()
for epoch in range(1, a.epochs + 1):
    report(epoch=epoch, loss=((a.x - 0.3) ** 2 + 0.05) * (1 + 2 / epoch))
'''


def events(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / EVENTS_FILE).read_text().splitlines()]


def sim_tuner(exp: Path, method: str = "RS", n_workers: int = 1, charge: bool = False, seed: int = 0,
              stop: StopCriteria | None = None, resume: bool = False, **kw) -> Tuner:
    bb = QuadraticBlackbox()
    scheduler = make_scheduler(method, {**bb.config_space, "epochs": 9}, metric="loss", mode="min",
                               resource_attr="epoch", max_resource_attr="epochs", seed=seed, **kw)
    backend = SimulatorBackend(bb, charge_decision_time=charge, max_resource_attr="epochs")
    return Tuner(backend, scheduler, n_workers=n_workers, stop=stop or StopCriteria(max_trials=5),
                 experiment_dir=exp, resume=resume)


def test_results_are_the_blackbox_values_at_the_blackbox_times(tmp_path):
    exp = tmp_path / "exp"
    result = sim_tuner(exp).run()
    assert result.n_completed == 5
    bb = QuadraticBlackbox()
    evs = events(exp)
    clock = 0.0
    for tid in range(5):
        start = next(e for e in evs if e["event"] == "trial_start" and e["trial_id"] == tid)
        assert start["time"] == pytest.approx(clock)  # one worker: starts when the previous ends
        curve = bb.learning_curve(start["config"])
        results = [e for e in evs if e["event"] == "result" and e["trial_id"] == tid]
        assert [r["result"]["epoch"] for r in results] == list(range(1, 10))
        assert [r["result"]["loss"] for r in results] == pytest.approx(curve["loss"].tolist())
        assert [r["time"] for r in results] == pytest.approx((clock + curve["time"]).tolist())
        clock += curve["time"][-1]
    assert result.elapsed_time == pytest.approx(clock)
    assert all("real_time" in e for e in evs), "real time is recorded beside simulated time"
    assert not (exp / "trials").exists() or not any((exp / "trials").iterdir()), "no trial files in simulation"


def test_several_workers_interleave_by_simulated_time(tmp_path):
    exp = tmp_path / "exp"
    sim_tuner(exp, n_workers=3, stop=StopCriteria(max_trials=12)).run()
    evs = events(exp)
    times = [e["time"] for e in evs if e["event"] == "result"]
    assert times == sorted(times) and len(times) == 12 * 9
    # a worker frees when its trial completes, and the next trial starts at that very time
    completes = [e["time"] for e in evs if e["event"] == "trial_complete"]
    starts = [e["time"] for e in evs if e["event"] == "trial_start"]
    assert starts[:3] == [0.0, 0.0, 0.0]
    assert starts[3:] == pytest.approx(completes[: len(starts) - 3])


def test_pause_and_resume_charge_only_the_remaining_training_time(tmp_path):
    exp = tmp_path / "exp"
    sim_tuner(exp, method="ASHA-promotion", n_workers=2, stop=StopCriteria(max_trials=12)).run()
    evs = events(exp)
    bb = QuadraticBlackbox()
    resumed = [e for e in evs if e["event"] == "trial_resume"]
    assert resumed, "promotion ASHA resumed paused trials"
    for res in resumed:
        tid = res["trial_id"]
        config = next(e["config"] for e in evs if e["event"] == "trial_start" and e["trial_id"] == tid)
        before = [e for e in evs if e["event"] == "result" and e["trial_id"] == tid and e["seq"] < res["seq"]]
        after = next(e for e in evs if e["event"] == "result" and e["trial_id"] == tid and e["seq"] > res["seq"])
        last_epoch = before[-1]["result"]["epoch"]
        assert after["result"]["epoch"] == last_epoch + 1, "continues from the fidelity it was paused at"
        assert after["time"] == pytest.approx(res["time"] + QuadraticBlackbox.epoch_time(config["x"]))
        assert after["result"]["loss"] == pytest.approx(bb.learning_curve(config)["loss"][last_epoch])


def test_same_seed_gives_identical_runs(tmp_path):
    def run(path: Path) -> list:
        sim_tuner(path, method="HB", n_workers=4, seed=3, stop=StopCriteria(max_trials=40)).run()
        return [{k: v for k, v in e.items() if k != "real_time"} for e in events(path)]

    assert run(tmp_path / "a") == run(tmp_path / "b")
    other = sim_tuner(tmp_path / "d", method="HB", n_workers=4, seed=4, stop=StopCriteria(max_trials=40))
    other.run()
    assert [e.get("config") for e in events(tmp_path / "d")] != [e.get("config") for e in events(tmp_path / "a")]


def test_the_same_scheduler_code_decides_the_same_on_real_and_simulated_trials(tmp_path):
    """One worker: the sequence of results is the same on both backends, so the decisions are too."""
    script = write_script(tmp_path, SCRIPT)
    space = {"x": uniform(-1.0, 1.0), "epochs": 9}

    def decisions(backend, exp: Path) -> list:
        scheduler = make_scheduler("ASHA", space, metric="loss", mode="min", resource_attr="epoch",
                                   max_resource_attr="epochs", seed=7)
        Tuner(backend, scheduler, n_workers=1, stop=StopCriteria(max_trials=10), experiment_dir=exp).run()
        return [(e["trial_id"], e["result"]["epoch"], e["decision"]) for e in events(exp) if e["event"] == "result"]

    real = decisions(LocalBackend(script=script), tmp_path / "real")
    simulated = decisions(SimulatorBackend(QuadraticBlackbox(), charge_decision_time=False,
                                           max_resource_attr="epochs"), tmp_path / "sim")
    assert real == simulated
    assert any(d == "STOP" for _, _, d in real)


def test_decision_time_is_charged_to_the_simulated_clock(tmp_path):
    class Slow:
        """Wraps a scheduler; every decision on a result takes 50 ms of real time."""

        def __init__(self, inner):
            self.inner = inner
            self.__dict__.update({k: getattr(inner, k) for k in ("config_space", "metric", "mode",
                                                                 "resource_attr", "max_resource_attr")})

        def suggest(self, trial_id):
            return self.inner.suggest(trial_id)

        def on_result(self, trial: Trial, result) -> Decision:
            time.sleep(0.05)
            return self.inner.on_result(trial, result)

        def on_complete(self, trial, result):
            self.inner.on_complete(trial, result)

        def on_error(self, trial):
            self.inner.on_error(trial)

        def state_dict(self):
            return self.inner.state_dict()

        def load_state_dict(self, state):
            self.inner.load_state_dict(state)

    def elapsed(charge: bool, exp: Path) -> float:
        bb = QuadraticBlackbox()
        scheduler = Slow(make_scheduler("RS", {"x": uniform(-1.0, 1.0), "epochs": 9}, metric="loss", mode="min",
                                        resource_attr="epoch", seed=0))
        backend = SimulatorBackend(bb, charge_decision_time=charge, max_resource_attr="epochs")
        return Tuner(backend, scheduler, n_workers=1, stop=StopCriteria(max_trials=4), experiment_dir=exp).run(
        ).elapsed_time

    free, charged = elapsed(False, tmp_path / "a"), elapsed(True, tmp_path / "b")
    # a running trial trains on while the scheduler decides (its results keep their times), but
    # the next trial starts only once the decision on the last result of the previous one is
    # made: one worker, 4 trials -> 4 decisions of 50 ms delay the end
    assert charged - free == pytest.approx(4 * 0.05, abs=0.08)


@pytest.mark.parametrize("charge", [False, True])
def test_simulated_experiment_resumes(tmp_path, charge):
    exp = tmp_path / "exp"
    first = sim_tuner(exp, method="ASHA", n_workers=4, charge=charge, stop=StopCriteria(max_results=50)).run()
    again = sim_tuner(exp, method="ASHA", n_workers=4, charge=charge,
                      stop=StopCriteria(max_trials=first.n_trials + 10))
    again.resume = True
    second = again.run()
    evs = events(exp)
    assert second.n_trials == first.n_trials + 10
    starts = [e["trial_id"] for e in evs if e["event"] == "trial_start"]
    assert len(starts) == len(set(starts))
    summary = load_experiment(exp).summary()
    assert summary["finished"] and summary["n_running"] == 0


def test_bad_input_to_the_simulator(tmp_path):
    bb = QuadraticBlackbox()
    with pytest.raises(UserError, match="outside its domain"):
        bb.evaluate([{"x": 3.0}])
    with pytest.raises(UserError, match="fidelity 12 is not available; epoch takes values in 1..9"):
        bb.evaluate([{"x": 0.0}], fidelities=[12])
    with pytest.raises(UserError, match="no objective 'acc'"):
        SimulatorBackend(bb, elapsed_time_attr="acc")
    # a config outside the blackbox's space fails that trial with the reason; tuning goes on
    exp = tmp_path / "exp"
    scheduler = make_scheduler("RS", {"x": uniform(-2.0, 2.0), "epochs": 9}, metric="loss", mode="min", seed=0)
    result = Tuner(SimulatorBackend(bb, max_resource_attr="epochs"), scheduler, n_workers=2,
                   stop=StopCriteria(max_trials=10), experiment_dir=exp, max_failures=10).run()
    fails = [e for e in events(exp) if e["event"] == "trial_fail"]
    assert result.n_failed == len(fails) > 0 and all("outside its domain" in e["error"] for e in fails)


def test_trials_that_cannot_start_end_tuning_at_max_failures(tmp_path):
    from tunebench.errors import TuningError

    scheduler = make_scheduler("RS", {"x": uniform(2.0, 3.0), "epochs": 9}, metric="loss", mode="min", seed=0)
    tuner = Tuner(SimulatorBackend(QuadraticBlackbox(), max_resource_attr="epochs"), scheduler, n_workers=4,
                  stop=StopCriteria(max_wallclock_time=3600), experiment_dir=tmp_path / "exp", max_failures=3)
    with pytest.raises(TuningError, match="trials failed .max_failures=3.*outside its domain"):
        tuner.run()
    assert tuner.n_failed <= 3 + 4  # stopped at the first poll past the limit, not after endless starts


class _CountingQuadratic(QuadraticBlackbox):
    """QuadraticBlackbox with noisy, non-monotone per-epoch times; counts the rows evaluated."""

    def __init__(self, lazy: bool) -> None:
        super().__init__(max_epoch=30)
        self.cost_per_fidelity = lazy
        self.rows = 0

    def _evaluate(self, configs, fidelity_index, seed):
        self.rows += len(configs) * len(fidelity_index)
        values = super()._evaluate(configs, fidelity_index, seed)
        x = np.array([c["x"] for c in configs])[:, None]
        wobble = np.sin(7 * self.fidelity_values[fidelity_index][None, :] + 10 * x)  # time goes down at times
        values[:, :, 1] += 3 * wobble
        return values


@pytest.mark.parametrize("method", ["ASHA", "ASHA-promotion", "RS"])
def test_curves_evaluated_piece_by_piece_give_the_same_run(tmp_path, method):
    """A blackbox with cost_per_fidelity is evaluated only as far as trials get; the run (results,
    simulated times, decisions) is exactly the one of whole-curve evaluation."""
    runs = {}
    for lazy in (False, True):
        bb = _CountingQuadratic(lazy)
        scheduler = make_scheduler(method, {**bb.config_space, "epochs": 30}, metric="loss", mode="min",
                                   resource_attr="epoch", max_resource_attr="epochs", seed=3)
        backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
        exp = tmp_path / f"{method}-{lazy}"
        Tuner(backend, scheduler, n_workers=3, stop=StopCriteria(max_trials=40), experiment_dir=exp).run()
        logged = [(e["event"], e.get("trial_id"), e["time"], e.get("result"), e.get("decision"))
                  for e in events(exp) if e["event"] not in ("session_start", "experiment_end")]
        runs[lazy] = (logged, bb.rows)
    assert runs[True][0] == runs[False][0]
    if method == "RS":  # every trial runs to the end: pieces cost at most 8 rows more per trial
        assert runs[True][1] <= runs[False][1] + 40 * 8
    else:  # most trials stop early: far fewer rows evaluated
        assert runs[True][1] < 0.5 * runs[False][1]


@pytest.mark.parametrize("method", ["SyncSH", "ASHA-promotion"])
def test_promotions_go_on_after_max_trials_started(tmp_path, method, caplog):
    """max_trials bounds the trials *started*: paused trials due for promotion still resume
    (through suggest_resume), and a resumed experiment replays those resumes faithfully."""
    exp = tmp_path / "exp"
    result = sim_tuner(exp, method=method, n_workers=2, stop=StopCriteria(max_trials=9)).run()
    assert result.n_trials == 9
    logged = events(exp)
    resumes = [e for e in logged if e["event"] == "trial_resume"]
    assert resumes and all(e.get("resume_only") for e in resumes if e["seq"] > max(
        ev["seq"] for ev in logged if ev["event"] == "trial_start"))
    top_epoch = max(e["result"]["epoch"] for e in logged if e["event"] == "result")
    assert top_epoch == 9  # the best trial was promoted all the way
    (exp / "scheduler_state.json").unlink()  # replay the whole log, resume_only events included
    with caplog.at_level("WARNING", logger="tunebench.tuner"):
        again = sim_tuner(exp, method=method, n_workers=2, stop=StopCriteria(max_trials=9), resume=True).run()
    assert "not deterministic" not in caplog.text
    assert again.n_trials == 9
