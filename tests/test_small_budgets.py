"""Small budgets: after ``max_trials`` trials were started, the schedulers that pause trials
finish the rungs of the trials they started (``Scheduler.suggest_resume``, the tuner's "no more
new trials" signal), on the simulator and with a real training script.

Rules (see ``tunebench/schedulers/synchronous.py`` and ``asha.py``):

* synchronous brackets (SyncHB, SyncSH, SyncBOHB, SyncMOBSTER, DEHB): a first rung cut short by
  the budget closes once all its trials reported, with ``m`` trials; rung ``k`` then gets
  ``max(1, floor(n_k * m / n_0))`` (bracket ``27 -> 9 -> 3 -> 1`` cut at 14: ``14 -> 4 -> 1 -> 1``);
* promotion-type ASHA and its relatives: each rung of ``n`` values promotes its top
  ``max(1, floor(n / eta))`` without waiting for more arrivals.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import QUADRATIC, write_script

from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.synthetic import branin_blackbox
from tunebench.schedulers import ASHA, Scheduler, make_scheduler
from tunebench.schedulers.pasha import PASHA
from tunebench.store import load_experiment
from tunebench.testing.scheduler_contract import check_small_budget, method_maker
from tunebench.tuner import StopCriteria, Tuner

MAX_T = 27
MAX_TRIALS = 14
#: model-based methods with their quick options (small GP fits)
QUICK = {"refit_factor": 2.0, "n_candidates": 32, "max_steps": 3, "max_model_points": 40, "max_fit_points": 20}


def run_simulated(tmp_path: Path, method: str, **options: Any) -> tuple[Scheduler, pd.DataFrame]:
    """Tune the simulated Branin (27 epochs) with ``method`` on 4 workers, ``max_trials=14``;
    returns the scheduler and the results."""
    bb = branin_blackbox(max_fidelity=MAX_T)
    scheduler = make_scheduler(method, {**bb.config_space, "epochs": MAX_T}, metric="loss", mode="min",
                               resource_attr="epoch", max_resource_attr="epochs", seed=0, **options)
    backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
    exp = tmp_path / "exp"
    tuner = Tuner(backend, scheduler, n_workers=4, stop=StopCriteria(max_trials=MAX_TRIALS), experiment_dir=exp)
    summary = tuner.run()
    assert summary.n_trials == MAX_TRIALS
    results = load_experiment(exp).results
    assert results["trial_id"].nunique() == MAX_TRIALS
    return scheduler, results


def reached(results: pd.DataFrame) -> dict[int, int]:
    """Trial id -> highest epoch reported."""
    return {int(t): int(e) for t, e in results.groupby("trial_id")["epoch"].max().items()}


def loss_at(results: pd.DataFrame, epoch: int) -> dict[int, float]:
    """Trial id -> loss reported at ``epoch`` (trials that reached it)."""
    rows = results[results["epoch"] == epoch]
    return {int(t): float(v) for t, v in zip(rows["trial_id"], rows["loss"], strict=True)}


@pytest.mark.parametrize("method", ["SyncHB", "SyncSH", "SyncBOHB", "SyncMOBSTER", "DEHB"])
def test_synchronous_bracket_cut_by_max_trials_finishes(tmp_path: Path, method: str) -> None:
    """The first bracket (27 -> 9 -> 3 -> 1) gets 14 trials: 14 -> 4 -> 1 -> 1, the best of
    each rung promoted, the best trial of epoch 9 trained to epoch 27."""
    _, results = run_simulated(tmp_path, method, **(QUICK if method == "SyncMOBSTER" else {}))
    top = reached(results)
    assert sum(e >= 3 for e in top.values()) == 4, top
    assert sum(e >= 9 for e in top.values()) == 1, top
    assert sum(e >= MAX_T for e in top.values()) == 1, top
    for level, next_level, k in ((1, 3, 4), (3, 9, 1), (9, MAX_T, 1)):
        values = loss_at(results, level)
        best = sorted(values, key=values.__getitem__)[:k]
        assert all(top[t] >= next_level for t in best), (level, best, top)


@pytest.mark.parametrize("method, options", [
    ("ASHA-promotion", {}),
    ("ASHA-promotion", {"brackets": "all"}),  # asynchronous Hyperband, promotion type
    ("BOHB", {"type": "promotion"}),
    ("HyperTune", {"type": "promotion", **QUICK}),
    ("MOBSTER", {"type": "promotion", **QUICK}),
    ("PASHA", {}),
])
def test_promotion_rungs_promote_their_top_after_max_trials(tmp_path: Path, method: str,
                                                           options: dict[str, Any]) -> None:
    """At the end, in every rung (of every bracket) below the maximum resource, the top
    ``max(1, floor(n / 3))`` of its ``n`` values went on past it (PASHA: the rungs below its
    current maximum)."""
    scheduler, results = run_simulated(tmp_path, method, **options)
    assert isinstance(scheduler, ASHA)
    top = reached(results)
    cap = scheduler.current_max_t if isinstance(scheduler, PASHA) else MAX_T
    checked = 0
    for bracket in range(scheduler.brackets):
        for level, entries in scheduler.rung_results(bracket).items():
            if not entries or level >= cap:
                continue
            k = max(1, len(entries) // 3)
            for _, tid in entries[:k]:
                assert top[tid] > level, f"trial {tid}, top {k} of rung {level} (bracket {bracket}), stopped there"
            checked += 1
    assert checked > 0
    if not isinstance(scheduler, PASHA):
        assert max(top.values()) == MAX_T, "the best of the last rung reached the maximum resource"


@pytest.mark.parametrize("method", ["SyncHB", "ASHA-promotion", "DEHB", "PASHA"])
@pytest.mark.parametrize("n_trials", [5, MAX_TRIALS, 30])
def test_contract_small_budget_other_sizes(method: str, n_trials: int) -> None:
    """The contract suite's small-budget check with other budgets (a cut first rung of 5, the
    second bracket cut at 30)."""
    check_small_budget(method_maker(method), n_trials=n_trials, max_t=MAX_T, seed=1)


def test_unlimited_budget_never_asks_suggest_resume(tmp_path: Path) -> None:
    """Without max_trials the tuner never gives the signal (so decisions with an unlimited
    budget are the ones they always were)."""
    calls: list[int] = []
    bb = branin_blackbox(max_fidelity=MAX_T)
    scheduler = make_scheduler("SyncHB", {**bb.config_space, "epochs": MAX_T}, metric="loss", mode="min",
                               resource_attr="epoch", max_resource_attr="epochs", seed=0)
    original = scheduler.suggest_resume

    def spy(trial_id: int) -> Any:
        calls.append(trial_id)
        return original(trial_id)

    scheduler.suggest_resume = spy  # type: ignore[method-assign]  # a spy on the instance
    backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
    Tuner(backend, scheduler, n_workers=4, stop=StopCriteria(max_results=200), experiment_dir=tmp_path / "e").run()
    assert calls == []


def test_synchronous_hyperband_resumes_a_cut_bracket_after_a_crash(tmp_path: Path) -> None:
    """A run cut by max_trials, stopped mid-way through its late promotions (max_results) and
    resumed, ends as the uninterrupted run did."""
    bb = branin_blackbox(max_fidelity=MAX_T)

    def tuner(exp: Path, stop: StopCriteria, resume: bool = False) -> Tuner:
        scheduler = make_scheduler("SyncHB", {**bb.config_space, "epochs": MAX_T}, metric="loss", mode="min",
                                   resource_attr="epoch", max_resource_attr="epochs", seed=0)
        backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
        return Tuner(backend, scheduler, n_workers=4, stop=stop, experiment_dir=exp, resume=resume)

    tuner(tmp_path / "a", StopCriteria(max_trials=MAX_TRIALS)).run()
    whole = load_experiment(tmp_path / "a").results
    tuner(tmp_path / "b", StopCriteria(max_trials=MAX_TRIALS, max_results=30)).run()  # 14 first results + some
    tuner(tmp_path / "b", StopCriteria(max_trials=MAX_TRIALS), resume=True).run()
    parts = load_experiment(tmp_path / "b").results
    assert reached(parts) == reached(whole)
    assert sum(e >= MAX_T for e in reached(parts).values()) == 1


def test_real_script_synchronous_hyperband_promotes_after_max_trials(tmp_path: Path) -> None:
    """`tunebench run --method SyncHB --max-trials 14` on a real script (local processes): the
    bracket cut at 14 trials is promoted (4 trials resumed past epoch 1, the best to the end)."""
    script = write_script(tmp_path, QUADRATIC)
    exp = tmp_path / "exp"
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"x": {"type": "uniform", "low": -1.0, "high": 1.0}, "epochs": MAX_T}))
    run = subprocess.run(
        [sys.executable, "-m", "tunebench", "run", "--script", str(script), "--config-space", str(space),
         "--metric", "loss", "--mode", "min", "--resource-attr", "epoch", "--max-resource-attr", "epochs",
         "--max-resource", str(MAX_T), "--method", "SyncHB", "--max-trials", str(MAX_TRIALS),
         "--n-workers", "4", "--experiment-dir", str(exp), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    results = load_experiment(exp).results
    top = reached(results)
    assert len(top) == MAX_TRIALS
    assert sum(e >= 3 for e in top.values()) == 4, top
    assert sum(e >= MAX_T for e in top.values()) == 1, top
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    resumes = [e for e in events if e["event"] == "trial_resume"]
    assert len(resumes) == 4 + 1 + 1 and all(e.get("resume_only") for e in resumes)
    losses = loss_at(results, 1)
    finalist = next(t for t, e in top.items() if e >= MAX_T)
    assert finalist in sorted(losses, key=losses.__getitem__)[:4]
