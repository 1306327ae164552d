"""The synthetic multi-objective blackboxes (ZDT1, ZDT2, DTLZ2 with learning curves): their values at
the last epoch are the closed-form test functions (computed here independently, row by row), the
Pareto set lands on the known front that no configuration dominates, the curves approach the final
values from above, the cost varies with the configuration, and the benchmarks run on the simulator."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tunebench.benchmarks import get_benchmark
from tunebench.blackboxes import SyntheticMOBlackbox, dtlz2_blackbox, zdt1_blackbox, zdt2_blackbox
from tunebench.blackboxes.bounds import objective_quantile
from tunebench.blackboxes.registry import load_blackbox
from tunebench.errors import UserError
from tunebench.space import sample_configs
from tunebench.store import load_experiment

REPO = Path(__file__).resolve().parent.parent
BUILDERS = {"zdt1": zdt1_blackbox, "zdt2": zdt2_blackbox, "dtlz2": dtlz2_blackbox}


def reference_values(problem: str, x: list[float]) -> list[float]:
    """The test function from its definition in the literature, one configuration at a time."""
    d = len(x)
    if problem in ("zdt1", "zdt2"):
        g = 1.0 + 9.0 / (d - 1) * sum(x[1:])
        ratio = x[0] / g
        return [x[0], g * (1.0 - (math.sqrt(ratio) if problem == "zdt1" else ratio * ratio))]
    g = sum((xi - 0.5) ** 2 for xi in x[2:])
    t1, t2 = x[0] * math.pi / 2, x[1] * math.pi / 2
    return [(1 + g) * math.cos(t1) * math.cos(t2), (1 + g) * math.cos(t1) * math.sin(t2), (1 + g) * math.sin(t1)]


def configs_of(bb: SyntheticMOBlackbox, n: int, seed: int = 0) -> list[dict[str, float]]:
    return sample_configs(bb.config_space, np.random.default_rng(seed), n)


def as_rows(bb: SyntheticMOBlackbox, configs: list[dict[str, float]]) -> list[list[float]]:
    return [[c[f"x{i}"] for i in range(1, bb.n_params + 1)] for c in configs]


@pytest.mark.parametrize("problem, n_params", [("zdt1", 6), ("zdt1", 2), ("zdt2", 6), ("zdt2", 9), ("dtlz2", 5),
                                               ("dtlz2", 3)])
def test_the_last_epoch_is_the_closed_form_function(problem: str, n_params: int) -> None:
    bb = BUILDERS[problem](n_params=n_params, noise=0.3, n_seeds=2)
    m = len(bb.front_objectives)
    assert bb.objectives == (*(f"f{i}" for i in range(1, m + 1)), "time") and bb.elapsed_time_attr == "time"
    assert list(bb.config_space) == [f"x{i}" for i in range(1, n_params + 1)]
    assert bb.objective_modes == dict.fromkeys(bb.objectives, "min")
    assert bb.optimum == dict.fromkeys(bb.front_objectives, 0.0)
    configs = configs_of(bb, 200)
    expected = np.array([reference_values(problem, x) for x in as_rows(bb, configs)])
    for seed in (0, 1):
        final = bb.evaluate(configs, fidelities=[27], seed=seed)[:, 0, :m]
        np.testing.assert_allclose(final, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("problem", list(BUILDERS))
def test_the_pareto_set_lands_on_the_known_front(problem: str) -> None:
    bb = BUILDERS[problem]()
    n = 101
    front = bb.true_front(n)
    assert front.shape == (n, len(bb.front_objectives))
    reached = bb.evaluate(bb.pareto_set(n), fidelities=[27])[:, 0, :-1]
    np.testing.assert_allclose(reached, front, rtol=0, atol=1e-15)
    x = as_rows(bb, bb.pareto_set(n))
    np.testing.assert_allclose(front, [reference_values(problem, row) for row in x], atol=1e-12)
    if problem == "dtlz2":
        assert all(row[2:] == [0.5] * (bb.n_params - 2) for row in x)
        np.testing.assert_allclose(np.linalg.norm(front, axis=1), 1.0, atol=1e-12)
        assert np.all(front >= 0)
        # spread over the whole octant: every objective nearly reaches 0 and 1
        assert np.all(front.min(axis=0) < 0.1) and np.all(front.max(axis=0) > 0.9)
    else:
        assert all(row[1:] == [0.0] * (bb.n_params - 1) for row in x)
        f1, f2 = front[:, 0], front[:, 1]
        np.testing.assert_allclose(f1, np.linspace(0, 1, n))
        np.testing.assert_allclose(f2, 1 - np.sqrt(f1) if problem == "zdt1" else 1 - f1**2, atol=1e-15)
        np.testing.assert_allclose(front.min(axis=0), bb.ideal)
        np.testing.assert_allclose(front.max(axis=0), bb.nadir)


@pytest.mark.parametrize("problem", list(BUILDERS))
def test_no_configuration_dominates_the_true_front(problem: str) -> None:
    bb = BUILDERS[problem]()
    m = len(bb.front_objectives)
    values = bb.evaluate(configs_of(bb, 3000, seed=1), fidelities=[27])[:, 0, :m]
    front = bb.true_front(400)
    weakly = np.all(values[:, None, :] <= front[None, :, :], axis=2)
    strictly = np.any(values[:, None, :] < front[None, :, :] - 1e-12, axis=2)
    assert not np.any(weakly & strictly), "a random configuration dominates a point of the true front"
    # every configuration lies on or behind the front
    if problem == "dtlz2":
        assert np.all(np.linalg.norm(values, axis=1) >= 1 - 1e-12)
    else:
        curve = 1 - np.sqrt(values[:, 0]) if problem == "zdt1" else 1 - values[:, 0] ** 2
        assert np.all(values[:, 1] >= curve - 1e-12)
        assert np.mean(values[:, 1] - curve > 0.5) > 0.9  # random configurations are mostly far from it


@pytest.mark.parametrize("problem", list(BUILDERS))
def test_curves_decrease_to_the_final_values(problem: str) -> None:
    smooth = BUILDERS[problem](noise=0.0)
    noisy = BUILDERS[problem](noise=0.5, n_seeds=3)
    m = len(smooth.front_objectives)
    configs = configs_of(smooth, 50, seed=2)
    s = smooth.evaluate(configs)[:, :, :m]
    assert np.all(np.diff(s, axis=1) < 0), "without noise each objective strictly decreases over the epochs"
    gap0 = s[:, 0] - s[:, -1]
    assert np.all(gap0 > 0.05)
    for seed in range(3):
        v = noisy.evaluate(configs, seed=seed)[:, :, :m]
        np.testing.assert_array_equal(v[:, -1], s[:, -1])  # the last epoch is exact, noise or not
        assert np.all(v >= v[:, -1:, :]), "with noise the curves stay above the final values"
        assert not np.allclose(v[:, :-1], s[:, :-1])
        # independent noise per objective: the noise factors on the gaps differ between objectives
        factor = (v[:, :-1] - v[:, -1:]) / (s[:, :-1] - s[:, -1:])
        assert not np.allclose(factor[:, :, 0], factor[:, :, 1])
    assert not np.array_equal(noisy.evaluate(configs, seed=0), noisy.evaluate(configs, seed=1))


@pytest.mark.parametrize("problem", list(BUILDERS))
def test_the_elapsed_time_is_cumulative_and_its_cost_varies_with_the_config(problem: str) -> None:
    bb = BUILDERS[problem](noise=0.2)
    configs = configs_of(bb, 300, seed=3)
    time = bb.evaluate(configs)[:, :, -1]
    per_epoch = time[:, :1]
    np.testing.assert_allclose(time, per_epoch * bb.fidelity_values[None, :])
    assert per_epoch.min() >= 1.0 and per_epoch.max() <= 10.0
    assert per_epoch.max() / per_epoch.min() > 5.0  # some configurations cost several times more than others
    x1, x2 = (np.array([c[k] for c in configs]) for k in ("x1", "x2"))
    np.testing.assert_allclose(per_epoch[:, 0], 10.0 ** ((1 + np.sin(2 * math.pi * (x1 + x2))) / 2), rtol=1e-12)
    # the cost varies along the true front too
    front_cost = bb.evaluate(bb.pareto_set(50), fidelities=[1])[:, 0, -1]
    assert front_cost.max() / front_cost.min() > 5.0


@pytest.mark.parametrize("problem", list(BUILDERS))
def test_evaluate_is_vectorized_and_deterministic_per_seed(problem: str) -> None:
    bb = BUILDERS[problem](n_seeds=2)
    configs = configs_of(bb, 20, seed=4)
    batch = bb.evaluate(configs, seed=1)
    assert batch.shape == (20, 27, len(bb.objectives)) and batch.dtype == np.float64
    for i in (0, 7, 19):
        # alone or in a batch, up to the rounding of a matrix product
        np.testing.assert_allclose(bb.evaluate([configs[i]], seed=1)[0], batch[i], rtol=1e-13)
    np.testing.assert_array_equal(bb.evaluate(configs, fidelities=[3, 9], seed=1), batch[:, [2, 8]])
    np.testing.assert_array_equal(BUILDERS[problem](n_seeds=2).evaluate(configs, seed=1), batch)  # a new instance
    other_salt = BUILDERS[problem](n_seeds=2, seed=5).evaluate(configs, seed=1)
    assert not np.array_equal(other_salt[:, :-1], batch[:, :-1])
    np.testing.assert_array_equal(other_salt[:, -1], batch[:, -1])
    assert bb.evaluate([], seed=0).shape == (0, 27, len(bb.objectives))


def sweep_hypervolume_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume of 2-d points (minimized) by a sweep over f1."""
    volume, best_f2 = 0.0, reference[1]
    order = np.argsort(points[:, 0])
    xs = list(points[order, 0]) + [reference[0]]
    for k, i in enumerate(order):
        best_f2 = min(best_f2, points[i, 1])
        volume += (xs[k + 1] - xs[k]) * (reference[1] - best_f2)
    return volume


@pytest.mark.parametrize("problem, excluded", [("zdt1", 1 / 3), ("zdt2", 2 / 3)])
def test_front_hypervolume_of_the_zdt_fronts(problem: str, excluded: float) -> None:
    bb = BUILDERS[problem]()
    for reference in ([1.0, 1.0], [1.1, 1.1], [2.0, 11.0]):
        exact = bb.front_hypervolume(reference)
        assert exact == pytest.approx(np.prod(reference) - excluded)
        coarse = sweep_hypervolume_2d(bb.true_front(50), np.array(reference))
        fine = sweep_hypervolume_2d(bb.true_front(4001), np.array(reference))
        assert coarse < fine <= exact + 1e-12 and exact - fine < 1e-3


def test_front_hypervolume_of_dtlz2_against_monte_carlo() -> None:
    bb = dtlz2_blackbox()
    reference = np.array([1.2, 1.1, 1.0])
    exact = bb.front_hypervolume(reference)
    assert exact == pytest.approx(1.2 * 1.1 - math.pi / 6)
    front = bb.true_front(3000)
    samples = np.random.default_rng(0).uniform(0, 1, (20000, 3)) * reference
    dominated = np.concatenate([np.any(np.all(front[None] <= chunk[:, None], axis=2), axis=1)
                                for chunk in np.array_split(samples, 40)])
    estimate = dominated.mean() * np.prod(reference)
    sd = math.sqrt(dominated.mean() * (1 - dominated.mean()) / len(samples)) * np.prod(reference)
    # a finite front dominates a little less than the whole front (1.7% less for these 3000 points)
    assert exact - 0.03 * exact - 3 * sd < estimate < exact + 3 * sd


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(UserError, match="zdt1: n_params must be an integer >= 2, got 1"):
        zdt1_blackbox(n_params=1)
    with pytest.raises(UserError, match="dtlz2: n_params must be an integer >= 3"):
        dtlz2_blackbox(n_params=2)
    with pytest.raises(UserError, match="n_points must be an integer >= 1"):
        zdt2_blackbox().true_front(0)
    with pytest.raises(UserError, match="each >= the nadir point"):
        zdt1_blackbox().front_hypervolume([0.5, 1.0])
    with pytest.raises(UserError, match="one value per objective"):
        dtlz2_blackbox().front_hypervolume([1.0, 1.0])
    with pytest.raises(UserError, match="x3=1.5 is outside its domain"):
        dtlz2_blackbox().evaluate([{"x1": 0.1, "x2": 0.2, "x3": 1.5, "x4": 0.5, "x5": 0.5}])


@pytest.mark.parametrize("problem, n_objectives", [("zdt1", 2), ("zdt2", 2), ("dtlz2", 3)])
def test_families_and_benchmarks(problem: str, n_objectives: int) -> None:
    bb = load_blackbox(problem, None, n_params=4, max_fidelity=9)
    assert isinstance(bb, SyntheticMOBlackbox) and bb.n_params == 4
    assert bb.fidelity_values.tolist() == list(range(1, 10))
    bench = get_benchmark(problem)
    assert (bench.metric, bench.mode, bench.blackbox, bench.max_resource) == ("f1", "min", problem, 27)
    loaded = bench.load_blackbox()
    assert loaded.objectives == (*(f"f{i}" for i in range(1, n_objectives + 1)), "time")


def test_zdt1_runs_on_the_simulator_through_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    exp = tmp_path / "exp"
    out = subprocess.run([sys.executable, "-m", "tunebench", "run", "--benchmark", "zdt1", "--backend", "simulator",
                          "--method", "ASHA", "--max-trials", "16", "--experiment-dir", str(exp), "--no-progress"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert "best f1 (min): " in out.stdout
    df = load_experiment(exp).results
    assert {"f1", "f2", "time", "epoch", "config_x1", "config_x6"} <= set(df.columns)
    assert df.trial_id.nunique() == 16
    final = df[df.epoch == 27]
    assert len(final) > 0
    np.testing.assert_allclose(final.f1, final.config_x1, rtol=1e-12)  # f1 = x1 at the last epoch
    x = final[[f"config_x{i}" for i in range(1, 7)]].to_numpy()
    np.testing.assert_allclose(final.f2, [reference_values("zdt1", list(row))[1] for row in x], rtol=1e-12)
    assert np.all(df.f1 >= df.config_x1)  # earlier epochs are above the final values


# -- the bound of a constraint: a quantile of an objective over the space ----------------------------


@pytest.mark.parametrize("q", [0.5, 0.2])
def test_objective_quantile_bounds_cut_the_share_asked_for(q: float) -> None:
    bb = zdt1_blackbox()
    bound = objective_quantile(bb, "time", q, n_configs=2000, seed=0)
    fresh = bb.evaluate(configs_of(bb, 4000, seed=9), fidelities=[27])[:, 0, bb.objective_index("time")]
    assert abs(np.mean(fresh <= bound) - q) < 0.04
    lower = objective_quantile(bb, "f2", 1 - q, n_configs=2000, seed=0)
    f2 = bb.evaluate(configs_of(bb, 4000, seed=9), fidelities=[27])[:, 0, 1]
    assert abs(np.mean(f2 >= lower) - q) < 0.04
    # at epoch 1 the elapsed time is 27 times smaller
    assert objective_quantile(bb, "time", q, n_configs=2000, seed=0, fidelity=1) == pytest.approx(bound / 27)
    assert objective_quantile(bb, "time", q, n_configs=2000, seed=0) == bound  # deterministic


def test_objective_quantile_bad_input() -> None:
    bb = dtlz2_blackbox()
    with pytest.raises(UserError, match="has no objective 'latency'"):
        objective_quantile(bb, "latency", 0.5)
    with pytest.raises(UserError, match=r"q must be a number in \[0, 1\], got 1.5"):
        objective_quantile(bb, "time", 1.5)
    with pytest.raises(UserError, match="n_configs must be an integer >= 1"):
        objective_quantile(bb, "time", 0.5, n_configs=0)
    with pytest.raises(UserError, match="fidelity 30 is not available"):
        objective_quantile(bb, "time", 0.5, fidelity=30)
