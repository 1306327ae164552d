"""Cost-aware BO and MOBSTER (``--cost-attr``): the cost GP, EI per unit of cost, the cost
exponent and its cooling, resume, errors, and end to end on ``branin-cost`` (whose per-epoch
cost grows with ``x1``), where cost-aware search reaches a good loss for less cost."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench.blackboxes import branin_cost_blackbox
from tunebench.cli import main
from tunebench.errors import UserError
from tunebench.schedulers import make_scheduler
from tunebench.schedulers.base import Scheduler
from tunebench.searchers.gp import GPSearcher, MOBSTERSearcher
from tunebench.space import uniform
from tunebench.store import load_experiment
from tunebench.types import Decision, Trial

SPACE = {"x": uniform(0.0, 1.0), "y": uniform(0.0, 1.0)}
#: observed configs, symmetric under y -> 1 - y: the objective's GP is too
POINTS = [{"x": x, "y": y} for x in (0.1, 0.35, 0.6, 0.9) for y in (0.2, 0.8)]
CHEAP, DEAR = {"x": 0.3, "y": 0.25}, {"x": 0.3, "y": 0.75}


def _loss(config: dict[str, Any]) -> float:
    return (config["x"] - 0.3) ** 2  # y does not matter


def _cost(config: dict[str, Any]) -> float:
    return 10.0 * math.exp(3.0 * config["y"])  # log cost linear in y


def _observed(**options: Any) -> GPSearcher:
    """A BO searcher that observed :data:`POINTS` (loss, and cost ``"cost"`` in every result)."""
    searcher = GPSearcher(SPACE, "loss", seed=0, points_to_evaluate=POINTS, num_init_random=len(POINTS), **options)
    for tid in range(len(POINTS)):
        config = searcher.suggest(tid)
        result = {"loss": _loss(config), "cost": _cost(config)}
        searcher.on_result(tid, config, result)
        searcher.on_complete(tid, config, result)
    return searcher


def test_equal_ei_the_cheaper_candidate_ranks_first() -> None:
    plain = _observed().acquisition_scores([CHEAP, DEAR])
    assert plain[0] == pytest.approx(plain[1], abs=1e-6)  # the same EI (symmetric data)
    aware = _observed(cost_attr="cost")
    scores = aware.acquisition_scores([CHEAP, DEAR])
    assert aware.state_dict()["cost"]["surrogate"]["fitted"]  # the cost GP was fitted
    assert scores[0] > scores[1] + 0.5
    # the gap is the predicted log-cost difference, 3 * (0.75 - 0.25) for this cost
    assert scores[0] - scores[1] == pytest.approx(1.5, abs=0.3)
    # and the next suggestion is on the cheap side
    assert aware.suggest(len(POINTS))["y"] < 0.5


def test_the_cost_exponent_scales_log_cost() -> None:
    plain = _observed().acquisition_scores([CHEAP, DEAR])
    penalty = {a: _observed(cost_attr="cost", cost_exponent=a).acquisition_scores([CHEAP, DEAR]) - plain
               for a in (0.0, 0.5, 1.0)}
    # log EI - alpha * log cost: the objective's GP is the same, the penalty linear in alpha
    np.testing.assert_allclose(penalty[0.0], 0.0, atol=1e-9)
    np.testing.assert_allclose(penalty[1.0], 2.0 * penalty[0.5], rtol=1e-9)
    predicted_log_cost = -penalty[1.0]
    assert 2.0 < predicted_log_cost[0] < predicted_log_cost[1] < 6.0  # log(10 e^(3y)) in [2.3, 5.3]


def test_cost_cooling_goes_from_the_exponent_to_zero_as_the_budget_is_spent() -> None:
    searcher = GPSearcher(SPACE, "loss", seed=0, num_init_random=2, cost_attr="cost", cost_exponent=0.8,
                          cost_budget=120.0)
    for tid in range(2):  # the initial design: 20 spent
        config = searcher.suggest(tid)
        searcher.on_complete(tid, config, {"loss": _loss(config), "cost": 10.0})
    assert searcher.cost_exponent_now() == pytest.approx(0.8)
    config = searcher.suggest(2)  # model-based: the cooling starts from 20 spent
    assert searcher.cost_exponent_now() == pytest.approx(0.8)
    searcher.on_result(2, config, {"loss": 1.0, "cost": 50.0})  # 70 spent: half of the 100 left
    assert searcher.cost_exponent_now() == pytest.approx(0.4)
    searcher.on_result(2, config, {"loss": 1.0, "cost": 100.0})  # costs are cumulative: 120 spent
    assert searcher.cost_exponent_now() == 0.0
    searcher.on_result(2, config, {"loss": 1.0, "cost": 150.0})
    assert searcher.cost_exponent_now() == 0.0  # past the budget: plain EI


def _drive(scheduler: Scheduler, first: int, n: int, max_t: int) -> list[dict[str, Any]]:
    """Run trials ``first .. first + n - 1`` one after the other on branin-cost; their configs."""
    bb = branin_cost_blackbox(max_fidelity=max_t)
    configs = []
    for tid in range(first, first + n):
        suggestion = scheduler.suggest(tid)
        assert suggestion is not None and suggestion.config is not None
        trial = Trial(tid, suggestion.config)
        configs.append(dict(suggestion.config))
        values = bb.evaluate([trial.config])[0]
        for epoch in range(1, max_t + 1):
            result = {"loss": float(values[epoch - 1, 0]), "time": float(values[epoch - 1, 1]), "epoch": epoch}
            if scheduler.on_result(trial, result) is not Decision.CONTINUE:
                break
        else:
            scheduler.on_complete(trial, result)
    return configs


@pytest.mark.parametrize("method", ["BO", "MOBSTER"])
def test_resume_gives_the_same_suggestions(method: str) -> None:
    bb = branin_cost_blackbox(max_fidelity=9)

    def make() -> Scheduler:
        return make_scheduler(method, bb.config_space, metric="loss", resource_attr="epoch", max_t=9, seed=3,
                              cost_attr="time", cost_budget=4000.0, n_candidates=32, max_steps=3)

    original = make()
    _drive(original, 0, 8, 9)
    state = json.loads(json.dumps(original.state_dict()))
    assert "cost" in json.dumps(state)
    resumed = make()
    resumed.load_state_dict(state)
    assert _drive(resumed, 8, 5, 9) == _drive(original, 8, 5, 9)


def test_a_method_without_cost_refuses_one() -> None:
    with pytest.raises(UserError) as info:
        make_scheduler("RS", SPACE, metric="loss", cost_attr="time")
    message = str(info.value)
    assert message == "method RS does not use a cost: use BO or MOBSTER, or drop --cost-attr"
    assert "\n" not in message
    # the cost-aware ones take it
    make_scheduler("BO", SPACE, metric="loss", cost_attr="time")
    make_scheduler("MOBSTER", SPACE, metric="loss", resource_attr="epoch", max_t=9, cost_attr="time")


@pytest.mark.parametrize("searcher_class", [GPSearcher, MOBSTERSearcher])
def test_a_result_without_the_cost_is_a_user_error(searcher_class: type) -> None:
    options = {"resource_attr": "epoch", "max_t": 9} if searcher_class is MOBSTERSearcher else {}
    searcher = searcher_class(SPACE, "loss", cost_attr="time", **options)
    config = searcher.suggest(0)
    with pytest.raises(UserError) as info:
        searcher.on_result(0, config, {"loss": 1.0, "epoch": 1})
    message = str(info.value)
    assert "'time'" in message and "drop --cost-attr" in message and "\n" not in message
    with pytest.raises(UserError, match="not a finite number"):
        searcher.on_result(0, config, {"loss": 1.0, "epoch": 1, "time": -1.0})


def test_cost_needs_expected_improvement() -> None:
    with pytest.raises(UserError, match="acquisition='ei'"):
        make_scheduler("BO", SPACE, metric="loss", cost_attr="time", acquisition="lcb")


def _cost_to_reach(tmp_path: Path, method: str, seed: int, cost_aware: bool, threshold: float,
                   budget: float) -> float:
    """Simulated cost (one worker: the simulated time) until the best loss is <= threshold
    (``budget`` if never), with ``tunebench run`` in process."""
    folder = tmp_path / f"{method}-{seed}-{cost_aware}"
    argv = ["run", "--benchmark", "branin-cost", "--method", method, "--n-workers", "1",
            "--max-wallclock-time", str(budget), "--seed", str(seed), "--experiment-dir", str(folder),
            "--no-progress", "--no-charge-decision-time"]
    if cost_aware:
        argv += ["--cost-attr", "time"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    results = load_experiment(folder).results.sort_values("tuner_time")
    assert results["time"].notna().all()
    hit = results[results["loss"] <= threshold]
    return float(hit["tuner_time"].iloc[0]) if len(hit) else budget


def test_cost_aware_bo_reaches_a_good_loss_for_less_cost(tmp_path: Path) -> None:
    # branin-cost: optimum 0.398 at three minimizers costing about 1.5, 6.3 and 26 s per epoch
    plain = sum(_cost_to_reach(tmp_path, "BO", s, False, 0.5, 8000.0) for s in range(5))
    aware = sum(_cost_to_reach(tmp_path, "BO", s, True, 0.5, 8000.0) for s in range(5))
    assert aware < 0.6 * plain  # measured: 11,909 vs 26,712 simulated seconds


@pytest.mark.slow
def test_cost_aware_mobster_reaches_a_good_loss_for_less_cost(tmp_path: Path) -> None:
    plain = sum(_cost_to_reach(tmp_path, "MOBSTER", s, False, 0.5, 8000.0) for s in range(4))
    aware = sum(_cost_to_reach(tmp_path, "MOBSTER", s, True, 0.5, 8000.0) for s in range(4))
    assert aware < 0.6 * plain  # measured: 5,000 vs 24,400 simulated seconds
