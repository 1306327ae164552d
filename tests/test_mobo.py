"""MOBO and MOASHA-BO: the exact EHVI checked against brute-force Monte Carlo with moocore's
hypervolume, the searcher's pending trials, scalarizations and resume, and runs on the simulator
(MOBO's front beats random search's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench.cli import main
from tunebench.pareto import hypervolume
from tunebench.schedulers import make_scheduler
from tunebench.searchers.mobo import (
    MOBOSearcher,
    MultiFidelityMOBOSearcher,
    chebyshev_scalarization,
    expected_hypervolume_improvement,
    nondominated_cells,
)
from tunebench.space import uniform
from tunebench.store import load_experiment
from tunebench.types import Objectives

FRONT_2D = np.array([[0.1, 0.9], [0.3, 0.5], [0.6, 0.35], [0.8, 0.1]])
FRONT_3D = np.array([[0.1, 0.8, 0.5], [0.5, 0.2, 0.6], [0.7, 0.6, 0.1], [0.3, 0.4, 0.4], [0.9, 0.1, 0.3]])
SPACE = {"x1": uniform(0.0, 1.0), "x2": uniform(0.0, 1.0), "x3": uniform(0.0, 1.0)}


def _improvement(front: np.ndarray, ref: np.ndarray, y: np.ndarray) -> float:
    """Hypervolume improvement of point ``y`` by moocore (independent of the cells)."""
    return hypervolume(np.vstack([front, y[None]]), ref) - hypervolume(front, ref)


def _monte_carlo(front: np.ndarray, ref: np.ndarray, mean: np.ndarray, sd: np.ndarray, n: int,
                 seed: int) -> tuple[float, float]:
    """Brute-force EHVI of one Gaussian point: mean and standard error over ``n`` samples."""
    samples = mean + sd * np.random.default_rng(seed).standard_normal((n, len(mean)))
    hvi = np.array([_improvement(front, ref, y) for y in samples])
    return float(hvi.mean()), float(hvi.std() / np.sqrt(n))


def _zdt_like(x: dict[str, Any]) -> list[float]:
    f1 = x["x1"]
    g = 1.0 + 4.5 * (x["x2"] + x["x3"])
    return [f1, g * (1.0 - np.sqrt(f1 / g))]


def _points_improve_in_cells(front: np.ndarray, ref: np.ndarray, seed: int) -> None:
    lower, upper = nondominated_cells(front, ref)
    Y = np.random.default_rng(seed).uniform(-0.1, 1.1, (50, front.shape[1]))
    by_cells = np.clip(upper[None] - np.maximum(lower[None], Y[:, None]), 0.0, None).prod(axis=2).sum(axis=1)
    np.testing.assert_allclose(by_cells, [_improvement(front, ref, y) for y in Y], atol=1e-12)


@pytest.mark.parametrize("front", [FRONT_2D, FRONT_3D, FRONT_2D[:1], FRONT_3D[:0]], ids=["2d", "3d", "one", "none"])
def test_the_cells_give_moocores_improvement_of_any_point(front: np.ndarray) -> None:
    ref = np.full(front.shape[1], 1.0)
    _points_improve_in_cells(front, ref, seed=0)
    # with dominated points, duplicates and ties in every objective
    rng = np.random.default_rng(1)
    for _ in range(20):
        messy = np.round(rng.uniform(0.0, 1.2, (12, front.shape[1])) * 4) / 4
        _points_improve_in_cells(messy, ref, seed=2)
    if front.shape[1] == 3 and len(front):
        assert len(nondominated_cells(front, ref)[0]) <= 2 * len(front) + 1


@pytest.mark.parametrize(
    "mean, sd",
    [([0.4, 0.4], [0.15, 0.2]), ([0.2, 0.2], [0.05, 0.05]), ([0.7, 0.8], [0.3, 0.1]), ([1.2, 0.0], [0.2, 0.2])],
)
def test_exact_2d_ehvi_matches_brute_force_monte_carlo(mean: list[float], sd: list[float]) -> None:
    ref = np.array([1.0, 1.0])
    exact = expected_hypervolume_improvement(np.array([mean]), np.array([sd]) ** 2, FRONT_2D, ref)[0]
    mc, se = _monte_carlo(FRONT_2D, ref, np.array(mean), np.array(sd), 20000, seed=0)
    assert exact == pytest.approx(mc, abs=4 * se + 1e-6)
    assert exact > 0


def test_exact_3d_ehvi_matches_monte_carlo_with_moocore_hypervolume() -> None:
    ref = np.array([1.0, 1.0, 1.0])
    for mean, sd in (([0.3, 0.3, 0.3], [0.2, 0.1, 0.15]), ([0.6, 0.5, 0.2], [0.1, 0.3, 0.1])):
        exact = expected_hypervolume_improvement(np.array([mean]), np.array([sd]) ** 2, FRONT_3D, ref)[0]
        mc, se = _monte_carlo(FRONT_3D, ref, np.array(mean), np.array(sd), 10000, seed=1)
        assert exact == pytest.approx(mc, abs=4 * se + 1e-6)


@pytest.mark.parametrize("front", [FRONT_2D, FRONT_3D], ids=["2d", "3d"])
def test_ehvi_is_nil_far_behind_the_front_and_large_beyond_it(front: np.ndarray) -> None:
    d = front.shape[1]
    ref = np.ones(d)
    var = np.full((1, d), 1e-4)
    behind = expected_hypervolume_improvement(np.full((1, d), 0.95), var, front, ref)[0]
    beyond = expected_hypervolume_improvement(np.full((1, d), 0.05), var, front, ref)[0]
    assert behind < 1e-12
    # a sure point: its improvement; beyond the front it adds most of the space left
    assert beyond == pytest.approx(_improvement(front, ref, np.full(d, 0.05)), rel=1e-3)
    assert beyond > 0.1
    # far behind, the log form still ranks (a slope for the local search): nearer is better
    lower, upper = nondominated_cells(front, ref)
    from tunebench.searchers.mobo import log_expected_hypervolume_improvement

    logs = log_expected_hypervolume_improvement(np.array([[3.0] * d, [5.0] * d]), np.full((2, d), 0.01),
                                                lower, upper)
    assert np.all(np.isfinite(logs)) and logs[0] > logs[1]


def _drive(searcher: MOBOSearcher, n: int, start: int = 0, f=_zdt_like) -> list[dict[str, Any]]:
    """Suggest and complete ``n`` trials one at a time (a second one always pending)."""
    configs = []
    for tid in range(start, start + n):
        config = searcher.suggest(tid)
        configs.append(config)
        if tid > start:
            prev = tid - 1
            values = f(searcher._configs[prev])
            result = {m: v for m, v in zip(searcher.objectives.metrics, values, strict=True)}
            searcher.on_result(prev, searcher._configs[prev], result)
            searcher.on_complete(prev, searcher._configs[prev], result)
    return configs


OBJ2 = Objectives(("f1", "f2"), ("min", "min"))


def test_state_resume_gives_identical_suggestions() -> None:
    options = {"n_candidates": 32, "max_steps": 3, "max_model_points": 12, "max_fit_points": 8}
    a = MOBOSearcher(SPACE, OBJ2, seed=3, **options)
    _drive(a, 15)
    state = json.loads(json.dumps(a.state_dict()))
    b = MOBOSearcher(SPACE, OBJ2, seed=3, **options)
    b.load_state_dict(state)
    assert json.dumps(b.state_dict(), sort_keys=True) == json.dumps(state, sort_keys=True)
    assert _drive(a, 10, start=15) == _drive(b, 10, start=15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pending_trials_change_the_next_suggestion(seed: int) -> None:
    """Two searchers with the same history; in one, trial 10 is still running (believed at its
    posterior mean), in the other it failed: the next suggestion differs, and moves away from
    the running trial's config (instead of right next to it, where the improvement was)."""
    searchers = [MOBOSearcher(SPACE, OBJ2, seed=seed, n_candidates=64) for _ in range(2)]
    for s in searchers:
        _drive(s, 10)
        s.on_error(9, s._configs[9])
        s.suggest(10)
    searchers[1].on_error(10, searchers[1]._configs[10])
    assert searchers[0]._pending.keys() == {10} and not searchers[1]._pending
    running = searchers[0]._configs[10]
    first, second = (s.suggest(11) for s in searchers)
    assert first != second

    def distance(config: dict[str, Any]) -> float:
        return float(np.linalg.norm([config[k] - running[k] for k in SPACE]))

    assert distance(first) > 2 * distance(second)


def test_four_objectives_use_random_chebyshev_scalarizations() -> None:
    weights = np.array([0.5, 0.5])
    Y = np.array([[0.0, 10.0], [1.0, 0.0], [0.5, 5.0]])
    # scaled to [0, 1]: (0, 1), (1, 0), (0.5, 0.5) -> max + 0.05 * sum of w * y
    np.testing.assert_allclose(chebyshev_scalarization(Y, weights), [0.525, 0.525, 0.275])
    obj4 = Objectives(("f1", "f2", "f3", "f4"), ("min", "max", "min", "min"))

    def four(x: dict[str, Any]) -> list[float]:
        return [x["x1"], -(1.0 - x["x1"]) * (1 + x["x2"]), x["x2"] + x["x3"], (x["x3"] - 0.5) ** 2]

    a = MOBOSearcher(SPACE, obj4, seed=1, n_candidates=32, max_steps=3)
    configs = _drive(a, 14, f=four)
    assert a._scalar_fit_n > 0 and a._surrogates == []  # the scalarized GP, no GP per objective
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == 14
    state = json.loads(json.dumps(a.state_dict()))
    b = MOBOSearcher(SPACE, obj4, seed=1, n_candidates=32, max_steps=3)
    b.load_state_dict(state)
    assert _drive(a, 6, start=14, f=four) == _drive(b, 6, start=14, f=four)


def test_multi_fidelity_searcher_models_the_highest_level_with_enough_points() -> None:
    s = MultiFidelityMOBOSearcher(SPACE, OBJ2, seed=0, resource_attr="epoch", max_t=9, min_level_points=4,
                                  n_candidates=32, max_steps=3)
    assert s.levels == [1.0, 3.0, 9.0]
    for tid in range(12):
        config = s.suggest(tid)
        f1, f2 = _zdt_like(config)
        top = 9 if tid < 3 else (3 if tid < 6 else 1)  # 3 reach epoch 9, 6 reach epoch 3, all epoch 1
        for epoch in range(1, top + 1):
            s.on_result(tid, config, {"epoch": epoch, "f1": f1 + 1 / epoch, "f2": f2 + 1 / epoch})
        s.on_stop(tid, config, paused=False)
    assert [len(level) for level in s._levels] == [12, 6, 3]
    assert s._current_level() == 1  # epoch 3: the highest with 4 observations
    s.suggest(12)
    assert s._model_level == 1 and s._surrogates[0].gp.n == 6  # the 6 observations at epoch 3
    assert len(s._pending_rows(s._levels[1])) == 1  # trial 12 runs: pending at epoch 3
    config = s._configs[12]
    s.on_result(12, config, {"epoch": 3, "f1": 0.5, "f2": 0.5})
    assert not s._pending_rows(s._levels[1])  # it has its observation there
    with pytest.raises(ValueError, match="no resource 'epoch'"):
        s.on_result(12, s._configs[12], {"f1": 0.1, "f2": 0.2})
    with pytest.raises(ValueError, match="f2"):
        s.on_result(12, s._configs[12], {"epoch": 1, "f1": 0.1})


def _run(tmp: Path, method: str, seed: int, *extra: str) -> tuple[Path, int]:
    exp = tmp / f"{method}-{seed}"
    metric = ["--metric", "f1"] if method == "RS" else ["--metric", "f1", "f2", "--mode", "min", "min"]
    rc = main(["run", "--benchmark", "zdt1", "--method", method, *metric, "--max-trials", "40", "--seed", str(seed),
               "--experiment-dir", str(exp), "--no-progress", *extra])
    return exp, rc


def _front_hypervolume(exp: Path) -> float:
    df = load_experiment(exp).results
    last = df.sort_values("epoch", kind="stable").groupby("trial_id").tail(1)  # each trial's objectives
    return hypervolume(last[["f1", "f2"]].to_numpy(), [1.1, 10.0])


@pytest.mark.parametrize("method, extra", [("MOBO", ()), ("MOASHA-BO", ("--resource-attr", "epoch"))])
def test_runs_on_the_simulator_from_the_cli(tmp_path: Path, method: str, extra: tuple[str, ...]) -> None:
    exp, rc = _run(tmp_path, method, 0, *extra)
    assert rc == 0
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["objectives"] == {"metric": ["f1", "f2"], "mode": ["min", "min"]}
    df = load_experiment(exp).results
    assert df.trial_id.nunique() == 40
    if method == "MOASHA-BO":
        assert "STOP" in set(df.decision)
        assert df.groupby("trial_id").epoch.max().min() < 27  # some trials were stopped early
    else:
        assert (df.groupby("trial_id").epoch.max() == 27).all()


@pytest.mark.parametrize("method, extra", [("MOBO", ()), ("MOASHA-BO", ("--resource-attr", "epoch"))])
def test_a_run_resumes_from_its_folder(tmp_path: Path, method: str, extra: tuple[str, ...]) -> None:
    exp = tmp_path / "exp"
    assert main(["run", "--benchmark", "zdt1", "--method", method, "--metric", "f1", "f2", "--mode", "min", "min",
                 "--max-trials", "12", "--experiment-dir", str(exp), "--no-progress", *extra]) == 0
    assert main(["resume", str(exp), "--max-trials", "20", "--no-progress"]) == 0
    df = load_experiment(exp).results
    assert df.trial_id.nunique() == 20 and {"f1", "f2"} <= set(df.columns)


def test_mobo_front_beats_random_search(tmp_path: Path) -> None:
    """ZDT1 (6 hyperparameters), 40 trials, 3 seeds: MOBO's front has a clearly larger
    hypervolume than random search's (reference point (1.1, 10); the true front has 10.67)."""
    mobo, rs = [], []
    for seed in range(3):
        for method, out in (("MOBO", mobo), ("RS", rs)):
            exp, rc = _run(tmp_path, method, seed)
            assert rc == 0
            out.append(_front_hypervolume(exp))
    assert min(mobo) > max(rs) and np.mean(mobo) > np.mean(rs) + 1.0, (mobo, rs)


def test_registered_methods_refuse_bad_options() -> None:
    with pytest.raises(ValueError, match="min_level_points must be an integer >= 2"):
        make_scheduler("MOASHA-BO", {**SPACE, "epochs": 9}, metric=["f1", "f2"], mode="min", resource_attr="epoch",
                       max_t=9, min_level_points=1)
    scheduler = make_scheduler("MOBO", SPACE, metric=["f1", "f2"], mode=["min", "max"])
    assert scheduler.objectives == Objectives(("f1", "f2"), ("min", "max"))
