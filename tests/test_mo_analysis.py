"""Analysis of multi-objective and constrained experiment grids, on grids of real simulated runs:
normalized hypervolume curves (checked against a brute-force front and tunebench.pareto's exact
hypervolume), common scales per benchmark, the Pareto-front figures, the hypervolume report, and
feasible-only bests under constraints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunebench.analysis.aggregate import curve_matrix, summarize, summarize_hypervolume
from tunebench.analysis.hypervolume import HV_MARGIN, attainment_surfaces, hypervolume_curve
from tunebench.analysis.layout import experiment_path
from tunebench.analysis.plots import pareto_figure, plot_grid
from tunebench.analysis.report import write_report
from tunebench.analysis.results import load_grid, load_run
from tunebench.cli import main
from tunebench.launch import build_tuner, spec_from_benchmark
from tunebench.pareto import hypervolume
from tunebench.types import is_feasible, parse_constraints

METHODS = ("MOASHA", "MOASHA-promotion")
SEEDS = (0, 1)


def run_grid(root: Path, tag: str, benchmark: str, methods: tuple[str, ...], seeds: tuple[int, ...], *,
             metric: str | list[str], mode: str | list[str], budget: float = 300.0,
             constraints: tuple[str, ...] = ()) -> None:
    """Run every (method, seed) of ``benchmark`` on the simulator into the grid ``tag``."""
    for method in methods:
        for seed in seeds:
            spec = spec_from_benchmark(benchmark)
            spec.metric, spec.mode = metric, mode
            spec.method, spec.method_kwargs, spec.seed = method, {}, seed
            spec.max_wallclock_time = budget
            spec.constraints = list(constraints)
            build_tuner(spec, experiment_path(root, tag, benchmark, method, seed), command_line=[]).run()


def results_of(path: str | Path) -> tuple[np.ndarray, list[dict]]:
    """Times and result dicts of the ``result`` events of an experiment folder, read by hand."""
    times, results = [], []
    for line in (Path(path) / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev["event"] == "result":
            times.append(ev["time"])
            results.append(ev["result"])
    return np.array(times), results


def brute_force_front(Y: np.ndarray) -> np.ndarray:
    """The rows of ``Y`` (minimized) that no other row dominates, by comparing all pairs."""
    le = (Y[:, None, :] >= Y[None, :, :]).all(axis=2)  # le[a, b]: b <= a everywhere
    lt = (Y[:, None, :] > Y[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=1)
    return Y[~dominated]


@pytest.fixture(scope="module")
def zdt1_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mo")
    run_grid(root, "mo", "zdt1", METHODS, SEEDS, metric=["f1", "f2"], mode=["min", "min"])
    return root


@pytest.fixture(scope="module")
def zdt1_grid(zdt1_root: Path):
    return load_grid(zdt1_root, "mo")


# -- hypervolume curves ---------------------------------------------------------------------------------------


def test_a_grid_of_multi_objective_runs_is_read_as_such(zdt1_grid) -> None:
    grid = zdt1_grid
    assert grid.is_multi("zdt1") and grid.curve_mode("zdt1") == "max"
    assert grid.objectives_of("zdt1").metrics == ("f1", "f2")
    assert grid.optimum("zdt1") is None  # no known optimum of a normalized hypervolume
    assert set(grid.points) == {("zdt1", m, s) for m in METHODS for s in SEEDS}
    assert (grid.runs["n_results"] > 50).all() and (grid.runs["n_feasible"] == grid.runs["n_results"]).all()


def test_hypervolume_curve_never_decreases_and_ends_at_the_hypervolume_of_the_final_front(zdt1_grid) -> None:
    grid = zdt1_grid
    bounds = grid.hv_bounds["zdt1"]
    width = bounds.upper - bounds.lower
    ref = np.full(2, 1 + HV_MARGIN)
    for row in grid.runs.itertuples():
        times, values = grid.curves[("zdt1", row.method, row.seed)]
        hand_times, results = results_of(row.path)
        np.testing.assert_array_equal(times, hand_times)
        assert np.all(np.diff(values) >= 0) and values[0] >= 0 and values[-1] <= 1
        assert len(np.unique(values)) > 5  # it grows in many steps over the run
        Y = np.array([[r["f1"], r["f2"]] for r in results])
        front = brute_force_front(Y)
        expected = hypervolume((front - bounds.lower) / width, ref) / (1 + HV_MARGIN) ** 2
        assert values[-1] == pytest.approx(expected, rel=1e-12)
        assert row.best == pytest.approx(expected, rel=1e-12)
        # the incremental curve equals the hypervolume recomputed from scratch at any point of the run
        for i in (0, len(Y) // 7, len(Y) // 3, len(Y) - 2):
            partial = brute_force_front(Y[:i + 1])
            assert values[i] == pytest.approx(hypervolume((partial - bounds.lower) / width, ref)
                                              / (1 + HV_MARGIN) ** 2, rel=1e-12, abs=1e-15)
        np.testing.assert_allclose(grid.front("zdt1", row.method, row.seed),
                                   np.unique(front, axis=0))


def test_every_run_of_a_benchmark_is_normalized_with_the_same_scales(zdt1_grid) -> None:
    grid = zdt1_grid
    fronts, points = [], []
    for row in grid.runs.itertuples():
        Y = np.array([[r["f1"], r["f2"]] for r in results_of(row.path)[1]])
        points.append(Y)
        fronts.append(brute_force_front(Y))
    bounds = grid.hv_bounds["zdt1"]
    # the ideal point over all results of all runs; the worst value over the runs' final fronts
    np.testing.assert_array_equal(bounds.lower, np.vstack(points).min(axis=0))
    np.testing.assert_array_equal(bounds.upper, np.vstack(fronts).max(axis=0))
    assert not np.array_equal(bounds.upper, np.vstack(points).max(axis=0))  # not the worst result overall
    # one scale: the front of all runs together dominates at least what each run does, within [0, 1]
    union = brute_force_front(np.vstack(fronts))
    width = bounds.upper - bounds.lower
    total = hypervolume((union - bounds.lower) / width, np.full(2, 1 + HV_MARGIN)) / (1 + HV_MARGIN) ** 2
    finals = grid.runs["best"].to_numpy()
    assert np.all(finals <= total + 1e-12) and total <= 1.0 and np.all(finals > 0.3)
    # a run read alone is scaled by its own front: another number than in the grid
    alone = [load_run(row.path)[1][1][-1] for row in grid.runs.itertuples()]
    assert not np.allclose(alone, finals)
    # bounds pinned by hand (metric units) that equal the computed ones give the same curves
    pinned = load_grid(grid.root, grid.tag, hv_bounds={"zdt1": (bounds.lower.tolist(), bounds.upper.tolist())})
    for key, (_, values) in grid.curves.items():
        np.testing.assert_array_equal(pinned.curves[key][1], values)
    wider = load_grid(grid.root, grid.tag, hv_bounds={"zdt1": ([0.0, 0.0], (bounds.upper * 2).tolist())})
    assert all(wider.curves[k][1][-1] != v[1][-1] for k, v in grid.curves.items())


def test_hypervolume_of_results_outside_the_box_or_infeasible_is_zero() -> None:
    from tunebench.analysis.hypervolume import HypervolumeBounds, RunPoints

    bounds = HypervolumeBounds(np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    Y = np.array([[2.0, 2.0], [0.5, 0.5], [0.25, 0.25], [0.6, 0.6], [0.0, 0.0]])
    run = RunPoints(np.arange(5.0), Y, np.array([True, True, True, True, False]))
    _, values = hypervolume_curve(run, bounds)
    box = (1 + HV_MARGIN) ** 2
    np.testing.assert_allclose(values, [0.0, 0.6 ** 2 / box, 0.85 ** 2 / box, 0.85 ** 2 / box, 0.85 ** 2 / box])


def test_attainment_surfaces_count_runs_without_a_point() -> None:
    a = np.array([[1.0, 3.0], [3.0, 1.0]])
    b = np.array([[2.0, 2.0]])
    surfaces = attainment_surfaces([a, b, np.empty((0, 2)), np.empty((0, 2))], [25, 50, 75])
    np.testing.assert_array_equal(surfaces[25.0], [[1, 3], [2, 2], [3, 1]])  # attained by one run of four
    np.testing.assert_array_equal(surfaces[50.0], [[2, 3], [3, 2]])  # by two of four
    assert surfaces[75.0].shape == (0, 2)  # three of four: never


# -- aggregation, report, figures ------------------------------------------------------------------------------


def test_summarize_hypervolume_uses_the_iqm_and_bootstrap_of_the_curves(zdt1_grid) -> None:
    grid = zdt1_grid
    table = summarize_hypervolume(grid, (0.25, 0.5, 1.0), n_boot=200)
    assert len(table) == len(METHODS) * 3
    for m in METHODS:
        rows = table[table["method"] == m].sort_values("fraction")
        _, values = curve_matrix(grid, "zdt1", m, np.array([0.25, 0.5, 1.0]) * grid.budget("zdt1"))
        np.testing.assert_allclose(rows["hv_iqm"], values.mean(axis=0))  # IQM of two seeds: their mean
        assert (rows["hv_lo"] <= rows["hv_iqm"]).all() and (rows["hv_iqm"] <= rows["hv_hi"]).all()
        assert rows["hv_iqm"].is_monotonic_increasing
    ranks = table[table["fraction"] == 1.0]["rank"]
    assert ranks.between(1.0, 2.0).all() and ranks.sum() == pytest.approx(3.0)  # two methods: ranks 1 and 2


def test_report_prints_hypervolume_tables_at_25_50_100_percent(zdt1_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "rep"
    assert main(["report", "--experiment-tag", "mo", "--results-root", str(zdt1_root), "--output-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "## zdt1" in text and "objectives f1 (min), f2 (min)" in text and "reference point" in text
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert header.split("|")[2:5] == [" HV @25% ", " HV @50% ", " HV @100% "]
    for m in METHODS:
        row = next(line for line in text.splitlines() if line.startswith(f"| {m} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 6 and all("[" in c and "]" in c for c in cells[1:4])
        assert cells[5] == str(len(SEEDS))
    assert "regret" not in text
    csv = pd.read_csv(out / "report_hypervolume.csv")
    assert set(csv["method"]) == set(METHODS) and sorted(set(csv["fraction"])) == [0.25, 0.5, 1.0]
    assert (out / "report_zdt1.csv").exists() and not (out / "report.csv").exists()


def test_plot_writes_hypervolume_and_pareto_figures(zdt1_grid, zdt1_root: Path, tmp_path: Path, capsys) -> None:
    import matplotlib.image as mpimg

    paths = plot_grid(zdt1_grid, tmp_path / "figs", n_boot=100)
    assert [p.name for p in paths] == ["zdt1.png", "zdt1-pareto.png"]
    for p in paths:
        image = mpimg.imread(p)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
        assert image[..., :3].std() > 0.05  # not a blank image
    fig = pareto_figure(zdt1_grid, "zdt1")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 1 + len(METHODS)  # all medians, then one panel per method
    assert [ax.get_title() for ax in visible[1:]] == list(METHODS)
    labels = visible[0].get_legend_handles_labels()[1]
    assert labels == [f"{m} (median)" for m in METHODS] + ["known front"]
    # the CLI writes a PDF too
    pdf = tmp_path / "mo.pdf"
    assert main(["plot", "--experiment-tag", "mo", "--results-root", str(zdt1_root), "--output", str(pdf)]) == 0
    assert f"wrote {tmp_path / 'mo-pareto.pdf'}" in capsys.readouterr().out
    for p in (pdf, tmp_path / "mo-pareto.pdf"):
        assert p.read_bytes()[:5] == b"%PDF-" and p.stat().st_size > 5000


def test_three_objectives_give_pairwise_projections(tmp_path: Path) -> None:
    run_grid(tmp_path, "mo3", "dtlz2", ("MOASHA",), (0, 1), metric=["f1", "f2", "f3"], mode="min", budget=200.0)
    grid = load_grid(tmp_path, "mo3")
    for _, values in grid.curves.values():
        assert np.all(np.diff(values) >= 0) and 0 < values[-1] <= 1
    fig = pareto_figure(grid, "dtlz2")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["f1 vs f2 (projection)", "f1 vs f3 (projection)",
                                                  "f2 vs f3 (projection)"]
    paths = plot_grid(grid, tmp_path / "d.png", n_boot=50)
    assert [p.name for p in paths] == ["d.png", "d-pareto.png"] and all(p.stat().st_size > 10_000 for p in paths)


# -- constraints ------------------------------------------------------------------------------------------------


def test_a_constrained_grid_counts_only_feasible_results(tmp_path: Path) -> None:
    # zdt1 tuned on f1 alone under f2 <= 3: the smallest f1 values come with a large f2 (f2 = g >= 1 at
    # f1 = 0), so the best infeasible f1 beats the best feasible one
    constraint = "f2<=3"
    run_grid(tmp_path, "con", "zdt1", ("ASHA", "RS"), (0, 1), metric="f1", mode="min", constraints=(constraint,))
    grid = load_grid(tmp_path, "con")
    assert grid.constraints["zdt1"] == parse_constraints([constraint]) and not grid.is_multi("zdt1")
    checked = 0
    for row in grid.runs.itertuples():
        _, results = results_of(row.path)
        feasible = [r for r in results if is_feasible(r, grid.constraints["zdt1"])]
        best_feasible = min(r["f1"] for r in feasible)
        best_any = min(r["f1"] for r in results)
        assert best_any < best_feasible  # the case the test is about
        assert row.best == best_feasible and row.n_feasible == len(feasible) < row.n_results
        assert row.first == next(r["f1"] for r in results if r["f2"] <= 3)
        times, values = grid.curves[("zdt1", row.method, row.seed)]
        running = [min((r["f1"] for r in results[:i + 1] if r["f2"] <= 3), default=math.nan)
                   for i in range(len(results))]
        np.testing.assert_array_equal(values, running)
        checked += 1
    assert checked == 4
    table = summarize(grid, (1.0,), n_boot=100)
    for m in ("ASHA", "RS"):
        bests = grid.runs.loc[grid.runs["method"] == m, "best"]
        assert table.loc[table["method"] == m, "best_iqm"].item() == pytest.approx(bests.mean())
    text = write_report(grid, n_boot=100)
    assert "constraints f2 <= 3 (only feasible results count)" in text


def test_runs_with_other_objectives_or_constraints_are_skipped(zdt1_root: Path, tmp_path: Path) -> None:
    import shutil

    for m in METHODS:
        shutil.copytree(zdt1_root / "mo" / "zdt1" / m, tmp_path / "mo" / "zdt1" / m)
    meta_path = tmp_path / "mo" / "zdt1" / METHODS[0] / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["constraints"] = ["f2<=3"]
    meta_path.write_text(json.dumps(meta))
    grid = load_grid(tmp_path, "mo")
    assert len(grid.runs) == 3 and ("zdt1", METHODS[0], 1) not in grid.points
    assert len(grid.skipped) == 1 and "constraints (f2 <= 3) differ" in grid.skipped[0][1]
