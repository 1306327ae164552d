"""Constrained BO (``CBO``: expected improvement x probability of feasibility, a GP per
constraint) and the ``BO-penalty`` baseline (issue 15): the probability of feasibility is the
GP's normal CDF, the acquisition prefers feasible points and looks for a feasible region first,
infeasible results never become the incumbent, a resumed searcher suggests exactly the same, and
end to end CBO finds feasible configs better than random search does."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from tunebench.blackboxes.bounds import objective_quantile
from tunebench.blackboxes.synthetic import branin_blackbox
from tunebench.cli import main
from tunebench.errors import UserError
from tunebench.models.acquisition import log_probability_of_feasibility
from tunebench.schedulers import make_scheduler
from tunebench.searchers.cbo import ConstrainedGPSearcher, PenaltyGPSearcher
from tunebench.searchers.gp import GPSearcher
from tunebench.space import uniform
from tunebench.store import load_experiment
from tunebench.types import Constraint, Trial

SPACE = {"x": uniform(0.0, 1.0)}
SMALL = {"n_candidates": 64, "max_steps": 4}


def _searcher(cls: type, constraints: list[str], mode: str = "min", seed: int = 0, **options: Any) -> Any:
    return cls(SPACE, "y", mode, seed=seed, constraints=[Constraint.parse(c) for c in constraints],
               num_init_random=0, **{**SMALL, **options})


def _tell(searcher: Any, points: list[tuple[float, dict[str, float]]], first_id: int = 0) -> None:
    """Observe each ``(x, result)`` as a finished trial (suggested by hand)."""
    for i, (x, result) in enumerate(points):
        searcher.on_complete(first_id + i, {"x": x}, result)


# -- the probability of feasibility -----------------------------------------------------------------


def test_log_probability_of_feasibility_is_the_log_normal_cdf_even_far_in_the_tail() -> None:
    mean = np.array([-3.0, -0.5, 0.0, 0.7, 4.0, 60.0])
    var = np.array([1.0, 0.25, 2.0, 0.04, 1.0, 1.0])
    expected = norm.logcdf(-mean / np.sqrt(var))
    np.testing.assert_allclose(log_probability_of_feasibility(mean, var), expected, rtol=1e-10)
    assert math.isfinite(log_probability_of_feasibility(np.array([60.0]), np.array([1.0]))[0])  # Phi underflows


def test_pof_is_the_normal_cdf_of_the_constraint_gps_on_hand_built_data() -> None:
    """Slack ``x - 0.5`` observed on a grid (feasible below 0.5): PoF at any x is
    ``Phi(-mean / sd)`` of that constraint's GP; with two constraints it is the product."""
    s = _searcher(ConstrainedGPSearcher, ["c<=0.5"])
    xs = [0.05, 0.25, 0.75, 0.95]  # none near the bound: the GP is unsure there
    _tell(s, [(x, {"y": x, "c": x}) for x in xs])
    queries = [{"x": q} for q in (0.0, 0.1, 0.4, 0.5, 0.6, 0.9, 1.0)]
    pof = s.probability_of_feasibility(queries)
    gp = s._constraint_models[0].gp
    mean, var = gp.predict(np.array([[q["x"]] for q in queries]))
    np.testing.assert_allclose(pof, norm.cdf(-mean / np.sqrt(var)), rtol=1e-9)
    np.testing.assert_allclose(mean, [q["x"] - 0.5 for q in queries], atol=0.1)  # the GP learned the slack
    assert pof[0] > 0.95 and pof[1] > 0.95 and pof[-1] < 0.05 and pof[-2] < 0.05
    assert 0.05 < pof[3] < 0.95 and pof[2] > pof[3] > pof[4]  # uncertain near the bound
    assert np.all(np.diff(pof) <= 1e-12)

    two = _searcher(ConstrainedGPSearcher, ["c<=0.5", "d>=0.3"])
    _tell(two, [(x, {"y": x, "c": x, "d": x}) for x in (*xs, 0.4)])
    pof2 = two.probability_of_feasibility(queries)
    each = []
    for model in two._constraint_models:
        m, v = model.gp.predict(np.array([[q["x"]] for q in queries]))
        each.append(norm.cdf(-m / np.sqrt(v)))
    np.testing.assert_allclose(pof2, each[0] * each[1], rtol=1e-9)
    assert pof2[2] > 0.5 and pof2[0] < 0.05 and pof2[-1] < 0.05  # only 0.3 <= x <= 0.5 is feasible


# -- the acquisition ----------------------------------------------------------------------------------

#: the objective improves with x (y = -x) but only x <= 0.5 is feasible
SLOPE = [(float(x), {"y": -float(x), "c": float(x)}) for x in np.linspace(0.05, 0.95, 10)]


def test_ei_times_pof_prefers_a_feasible_point_over_a_better_infeasible_one() -> None:
    s = _searcher(ConstrainedGPSearcher, ["c<=0.5"])
    _tell(s, SLOPE)
    assert s.incumbent() == pytest.approx(-0.45)  # the best feasible, not -0.95
    score = s.log_acquisition([{"x": 0.48}, {"x": 0.9}, {"x": 1.0}])
    assert score[0] > score[1] and score[0] > score[2]
    choice = s.suggest(100)["x"]
    assert 0.4 < choice < 0.6, f"CBO chose x={choice}, outside the edge of the feasible region"
    # plain BO on the same observations runs to the better, infeasible end
    bo = GPSearcher(SPACE, "y", "min", seed=0, num_init_random=0, **SMALL)
    _tell(bo, SLOPE)
    assert bo.suggest(100)["x"] > 0.9


def test_without_a_feasible_observation_the_choice_maximizes_pof() -> None:
    """Every observation infeasible (slack x - 0.1 > 0 for x >= 0.3): the acquisition is the
    probability of feasibility alone, whatever the objective says (here: go right)."""
    s = _searcher(ConstrainedGPSearcher, ["c<=0.1"])
    _tell(s, [(float(x), {"y": -float(x), "c": float(x)}) for x in np.linspace(0.3, 0.95, 8)])
    assert s.incumbent() is None and not s.feasible_mask().any()
    grid = [{"x": float(x)} for x in np.linspace(0.0, 1.0, 201)]
    pof = s.probability_of_feasibility(grid)
    np.testing.assert_allclose(np.exp(s.log_acquisition(grid)), pof, rtol=1e-12)  # no EI term
    choice = s.suggest(100)
    assert s.probability_of_feasibility([choice])[0] >= 0.99 * pof.max()
    assert choice["x"] < 0.15


@pytest.mark.parametrize("mode", ["min", "max"])
def test_infeasible_results_never_become_the_incumbent(mode: str) -> None:
    sign = 1.0 if mode == "min" else -1.0
    s = _searcher(ConstrainedGPSearcher, ["latency<=20"], mode=mode)
    results = [(0.1, 5.0, 30.0), (0.2, 3.0, 10.0), (0.3, 1.0, 25.0), (0.4, 4.0, 20.0), (0.5, 0.5, math.nan)]
    for i, (x, y, latency) in enumerate(results):  # y as a loss; for mode max reported as -y
        s.on_result(i, {"x": x}, {"y": sign * y, "latency": latency})
        s.on_complete(i, {"x": x}, None)  # the last result seen counts
    assert list(s.feasible_mask()) == [False, True, False, True, False]
    assert s.incumbent() == pytest.approx(3.0)  # the best feasible (min form); 1.0 and 0.5 are infeasible
    # the NaN latency is modelled as infeasible by the widest margin seen (|30 - 20| = 10)
    assert s._obs_slack[-1] == (10.0,)
    # BO-penalty: an infeasible value is the worst seen so far, its own included
    p = _searcher(PenaltyGPSearcher, ["latency<=20"], mode=mode)
    for i, (x, y, latency) in enumerate(results):
        p.on_complete(i, {"x": x}, {"y": sign * y, "latency": latency})
    assert p._obs_y == pytest.approx([5.0, 3.0, 5.0, 4.0, 5.0])


def test_results_without_a_constrained_metric_or_methods_without_constraints_are_refused() -> None:
    s = _searcher(ConstrainedGPSearcher, ["latency<=20"])
    with pytest.raises(UserError, match="latency"):
        s.on_result(0, {"x": 0.5}, {"y": 1.0})
    with pytest.raises(UserError, match="'y'"):
        s.on_result(0, {"x": 0.5}, {"latency": 1.0})
    for name in ("CBO", "BO-penalty"):
        with pytest.raises(UserError, match=r'got none: pass --constraint "NAME<=BOUND"') as refused:
            make_scheduler(name, SPACE, metric="y")
        assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="takes no option 'acquisition'"):
        _searcher(ConstrainedGPSearcher, ["c<=0"], acquisition="lcb")


# -- resume -------------------------------------------------------------------------------------------


def _problem(config: dict[str, Any]) -> dict[str, float]:
    x = config["x"]
    return {"y": (x - 0.8) ** 2, "c": math.nan if 0.62 < x < 0.64 else x, "d": -math.sin(6 * x)}


def test_resume_gives_identical_suggestions() -> None:
    """Asynchronous (2 pending trials), two constraints, a NaN constraint value: a searcher loaded
    from the JSON state of another, mid-run, suggests exactly what the original does."""

    def step(s: Any, tid: int, running: list[int], configs: dict[int, dict[str, Any]]) -> None:
        done = running.pop(0)
        s.on_result(done, configs[done], _problem(configs[done]))
        s.on_complete(done, configs[done], None)
        configs[tid] = s.suggest(tid)
        running.append(tid)

    def make() -> ConstrainedGPSearcher:
        return ConstrainedGPSearcher(SPACE, "y", "min", seed=3, constraints=[Constraint.parse("c<=0.7"),
                                     Constraint.parse("d<=0.5")], refit_factor=1.3, max_model_points=12,
                                     max_fit_points=8, **SMALL)

    original = make()
    configs = {t: original.suggest(t) for t in range(2)}
    running = [0, 1]
    for tid in range(2, 10):
        step(original, tid, running, configs)
    state = json.loads(json.dumps(original.state_dict()))
    resumed = make()
    resumed.load_state_dict(state)
    assert json.dumps(resumed.state_dict(), sort_keys=True) == json.dumps(state, sort_keys=True)
    running_b, configs_b = list(running), dict(configs)
    for tid in range(10, 24):
        step(original, tid, running, configs)
        step(resumed, tid, running_b, configs_b)
        assert configs_b[tid] == configs[tid]
    assert resumed.feasible_mask().tolist() == original.feasible_mask().tolist()
    assert any(math.isinf(c.slack(_problem(configs[t]))) for t in configs for c in original.constraints[:1])


# -- end to end ---------------------------------------------------------------------------------------


def test_cbo_end_to_end_through_the_cli_finds_a_feasible_best(tmp_path: Path) -> None:
    bound = 250.0  # about the median of branin's elapsed time at its last epoch (half the configs miss it)
    exp = tmp_path / "exp"
    assert main(["run", "--benchmark", "branin", "--method", "CBO", "--constraint", f"time<={bound}",
                 "--max-trials", "30", "--max-wallclock-time", "100000", "--experiment-dir", str(exp),
                 "--no-progress"]) == 0
    experiment = load_experiment(exp)
    df = experiment.results
    final = df.sort_values("epoch").groupby("trial_id").tail(1)
    assert len(final) >= 30
    feasible = final[final["time"] <= bound]
    assert 0 < len(feasible) < len(final)  # some trials missed the bound, most met it
    assert len(feasible) >= 0.6 * len(final), "CBO should mostly propose feasible configs"
    assert experiment.metadata["constraints"] == [f"time<={bound!r}"]
    best = feasible["loss"].min()
    assert best < final["loss"].median()


def _best_feasible(method: str, seed: int, n_trials: int, bound: float) -> float:
    """Best feasible final loss of ``method`` on branin under ``time <= bound`` (objective and
    constraint at the last epoch), trials run one after the other."""
    bb = branin_blackbox()
    top = float(bb.fidelity_values[-1])
    scheduler = make_scheduler(method, bb.config_space, metric="loss", mode="min", seed=seed,
                               constraints=[f"time<={bound}"], **({} if method == "RS" else SMALL))
    best = math.inf
    for tid in range(n_trials):
        suggestion = scheduler.suggest(tid)
        assert suggestion is not None and suggestion.config is not None
        values = bb.evaluate([suggestion.config], fidelities=[top])[0, 0]
        result = {name: float(v) for name, v in zip(bb.objectives, values, strict=True)}
        trial = Trial(tid, suggestion.config)
        scheduler.on_result(trial, result)
        scheduler.on_complete(trial, result)
        if result["time"] <= bound:
            best = min(best, result["loss"])
    return best


def test_cbo_beats_random_search_on_a_constrained_synthetic_problem() -> None:
    bb = branin_blackbox()
    bound = objective_quantile(bb, "time", 0.3)  # 70 % of the configs miss it
    seeds = range(4)
    cbo = [_best_feasible("CBO", seed, 25, bound) for seed in seeds]
    rs = [_best_feasible("RS", seed, 25, bound) for seed in seeds]
    assert all(math.isfinite(v) for v in cbo)
    gap_cbo = np.mean(np.asarray(cbo) - bb.optimum["loss"])
    gap_rs = np.mean(np.asarray(rs) - bb.optimum["loss"])
    assert gap_cbo < 0.5 * gap_rs, f"CBO {cbo} vs RS {rs}"
