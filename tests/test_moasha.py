"""MOASHA: multi-objective ASHA, checked against ASHA (one objective) and hand-derived rungs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tunebench.schedulers import make_scheduler
from tunebench.space import uniform
from tunebench.types import Decision, Trial

SPACE = {"x": uniform(0.0, 1.0), "epochs": 27}
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", ["", "-promotion"])
def test_with_one_objective_moasha_decides_as_asha(kind: str):
    """Non-dominated sorting of one objective is sorting, and the eps-net of a 1-D front is its
    order: every decision equals ASHA's on the same results (continuous values: no ties)."""
    rng = np.random.default_rng(0)
    schedulers = [make_scheduler(m + kind, SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                                 seed=1) for m in ("ASHA", "MOASHA")]
    answers: list[list[object]] = [[], []]
    config = {"x": 0.5, "epochs": 27}
    for tid in range(100):
        suggestions = [repr(s.suggest(tid)) for s in schedulers]
        assert suggestions[0] == suggestions[1]
        scale = rng.uniform(0.1, 1.0)
        for epoch in range(1, 5):
            decisions = [s.on_result(Trial(tid, config), {"epoch": epoch, "loss": scale / epoch}) for s in schedulers]
            for got, decision in zip(answers, decisions, strict=True):
                got.append(decision)
            assert decisions[0] is decisions[1], (tid, epoch, decisions)
            if decisions[0] is not Decision.CONTINUE:
                break
    assert answers[0] == answers[1]
    assert Decision.STOP in answers[0] or Decision.PAUSE in answers[0]


def test_a_dominated_result_stops_and_a_dominating_one_goes_on():
    scheduler = make_scheduler("MOASHA", SPACE, metric=["loss", "latency"], mode=["min", "min"],
                               resource_attr="epoch", max_resource_attr="epochs", seed=0)
    config = {"x": 0.5, "epochs": 27}
    for tid in range(3):
        scheduler.suggest(tid)
    # rung 1 (grace period 1, eta 3): with one or two results k = max(1, n // 3) = 1
    assert scheduler.on_result(Trial(0, config), {"epoch": 1, "loss": 0.5, "latency": 5.0}) is Decision.CONTINUE
    # trial 1 is dominated by trial 0 (worse in both): not the top 1 of 2
    assert scheduler.on_result(Trial(1, config), {"epoch": 1, "loss": 0.6, "latency": 6.0}) is Decision.STOP
    # trial 2 dominates trial 0: the top of 3
    assert scheduler.on_result(Trial(2, config), {"epoch": 1, "loss": 0.4, "latency": 4.0}) is Decision.CONTINUE
    levels = scheduler.rung_results()
    assert [t for _, t in levels[1]] == [2, 0, 1]  # best first: the front, then the dominated ones
    state = json.loads(json.dumps(scheduler.state_dict()))
    again = make_scheduler("MOASHA", SPACE, metric=["loss", "latency"], mode="min", resource_attr="epoch",
                           max_resource_attr="epochs", seed=0)
    again.load_state_dict(state)
    assert again.rung_results() == levels


def test_a_maximized_objective_counts_as_such_and_a_missing_one_is_named():
    scheduler = make_scheduler("MOASHA", SPACE, metric=["accuracy", "latency"], mode=["max", "min"],
                               resource_attr="epoch", max_resource_attr="epochs", seed=0)
    config = {"x": 0.5, "epochs": 27}
    for tid in range(2):
        scheduler.suggest(tid)
    scheduler.on_result(Trial(0, config), {"epoch": 1, "accuracy": 0.9, "latency": 5.0})
    # lower accuracy and higher latency: dominated
    assert scheduler.on_result(Trial(1, config), {"epoch": 1, "accuracy": 0.8, "latency": 6.0}) is Decision.STOP
    with pytest.raises(ValueError, match="latency"):
        scheduler.on_result(Trial(0, config), {"epoch": 2, "accuracy": 0.9})


def test_moasha_tunes_zdt1_on_the_simulator_from_the_cli(tmp_path: Path):
    exp = tmp_path / "exp"
    run = subprocess.run([sys.executable, "-m", "tunebench", "run", "--benchmark", "zdt1", "--method", "MOASHA",
                          "--metric", "f1", "f2", "--mode", "min", "--max-trials", "60", "--experiment-dir",
                          str(exp), "--no-progress"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["objectives"] == {"metric": ["f1", "f2"], "mode": ["min", "min"]}
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    decisions = [e["decision"] for e in events if e.get("event") == "result"]
    assert "STOP" in decisions and len({e["trial_id"] for e in events if e.get("event") == "trial_start"}) == 60
