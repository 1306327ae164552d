"""Analysis of experiment grids: loading (skipped and unfinished folders), statistics (IQM,
bootstrap CI, mean/SE, median), normalized regret, ranks, the report and the figures."""

from __future__ import annotations

import itertools
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import trim_mean

from tunebench.analysis.aggregate import (
    ALL,
    aggregate,
    average_ranks,
    bootstrap_ci,
    curve_matrix,
    fraction_grid,
    iqm,
    normalized_regret,
    rank_curves,
    regret_bounds,
    resample,
    summarize,
)
from tunebench.analysis.layout import experiment_path
from tunebench.analysis.plots import output_paths, plot_grid, resolve_groups
from tunebench.analysis.report import write_report
from tunebench.analysis.results import best_so_far, load_grid, load_run
from tunebench.errors import UserError
from tunebench.schedulers import method_groups
from tunebench.store import EVENTS_FILE, METADATA_FILE, ExperimentStore, load_experiment

TAG = "grid"


def write_run(root: Path, benchmark: str, method: str, seed: int, results: list[tuple[float, float | None]], *,
              metric: str = "loss", mode: str = "min", budget: float | None = 100.0, end: bool = True,
              tag: str = TAG) -> Path:
    """An experiment folder as the tuner writes it: one trial per ``(time, value)`` result
    (``value`` None: a result without the metric), ``experiment_end`` if ``end``."""
    path = experiment_path(root, tag, benchmark, method, seed)
    meta = {"metric": metric, "mode": mode, "method": method, "seed": seed, "benchmark": benchmark}
    if budget is not None:
        meta["stop"] = {"max_wallclock_time": budget, "max_trials": None}
    store = ExperimentStore.create(path, meta)
    store.append({"event": "session_start", "resumed": False, "time": 0.0})
    for i, (t, value) in enumerate(results):
        store.append({"event": "trial_start", "trial_id": i, "config": {"x": i}, "time": t})
        result = {"epoch": 1} if value is None else {"epoch": 1, metric: value}
        store.append({"event": "result", "trial_id": i, "result": result, "decision": "CONTINUE", "time": t})
        store.append({"event": "trial_complete", "trial_id": i, "time": t})
    if end:
        store.append({"event": "experiment_end", "reason": "max_wallclock_time", "time": budget or 0.0})
    store.close()
    return path


#: two methods x three seeds on "toy" (minimize, budget 100 s); first results 5, 4, 6 / 8, 7, 6
#: (median 6), best found 1.0
TOY = {
    ("A", 0): [(10.0, 5.0), (50.0, 2.0)],
    ("A", 1): [(10.0, 4.0), (60.0, 1.0)],
    ("A", 2): [(20.0, 6.0), (70.0, 3.0)],
    ("B", 0): [(10.0, 8.0), (40.0, 3.0)],
    ("B", 1): [(10.0, 7.0), (60.0, 1.0)],
    ("B", 2): [(30.0, 6.0), (90.0, 3.5)],
}


@pytest.fixture
def toy_root(tmp_path: Path) -> Path:
    for (method, seed), results in TOY.items():
        write_run(tmp_path, "toy", method, seed, results)
    return tmp_path


# -- statistics ---------------------------------------------------------------------------------------


def test_iqm_by_hand() -> None:
    assert iqm([5, 1, 4, 2, 3]) == pytest.approx(3.0)  # cut 1 each side: mean of 2, 3, 4
    assert iqm([1, 2, 3, 4, 7, 8, 100, 200]) == pytest.approx(5.5)  # mean of 3, 4, 7, 8
    assert iqm([7.0]) == pytest.approx(7.0)
    assert iqm([np.nan, 1, 2, 3, 4, 100]) == pytest.approx(3.0)  # NaN ignored: five numbers, cut 1 each side
    assert np.isnan(iqm([np.nan, np.nan]))
    cols = iqm(np.array([[1, 10], [2, 20], [3, 30], [4, 40], [100, 1000]]), axis=0)
    np.testing.assert_allclose(cols, [3.0, 30.0])
    x = np.random.default_rng(0).standard_normal((13, 6))
    np.testing.assert_allclose(iqm(x, axis=0), trim_mean(x, 0.25, axis=0))
    np.testing.assert_allclose(iqm(x, axis=1), trim_mean(x, 0.25, axis=1))


def test_bootstrap_ci_of_two_points_by_hand() -> None:
    # resamples of (0, 4): (0,0) (0,4) (4,0) (4,4), IQM (= mean for two) 0, 2, 2, 4 with probability 1/4, 1/2, 1/4
    lo, hi = bootstrap_ci([0.0, 4.0], n_boot=4000, confidence=0.4)  # quantiles 0.3 and 0.7: both 2
    assert (lo, hi) == (2.0, 2.0)
    lo, hi = bootstrap_ci([0.0, 4.0], n_boot=4000, confidence=0.9)  # quantiles 0.05 and 0.95
    assert (lo, hi) == (0.0, 4.0)


def test_bootstrap_ci_matches_the_exhaustive_distribution() -> None:
    data = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    # all 5^5 equally likely resamples; the IQM of five values is the mean of the middle three
    resamples = np.sort(np.array(list(itertools.product(data, repeat=5))), axis=1)
    stats = resamples[:, 1:4].mean(axis=1)
    values, counts = np.unique(stats, return_counts=True)
    cdf = np.cumsum(counts) / len(stats)
    exact_lo, exact_hi = values[np.searchsorted(cdf, 0.025)], values[np.searchsorted(cdf, 0.975)]
    assert (exact_lo, exact_hi) == pytest.approx((4 / 3, 40 / 3))  # e.g. IQM(1, 1, 2, 1, 1) = 4/3
    # the quantiles are well inside their steps of the CDF, so a large bootstrap hits them exactly
    assert cdf[np.searchsorted(cdf, 0.025) - 1] < 0.02 and cdf[np.searchsorted(cdf, 0.025)] > 0.028
    lo, hi = bootstrap_ci(data, n_boot=40000, seed=3)
    assert (lo, hi) == pytest.approx((exact_lo, exact_hi))
    # columns are resampled together (one draw of seeds), each with its own values
    lo2, hi2 = bootstrap_ci(np.stack([data, 10 * data], axis=1), n_boot=40000, seed=3)
    np.testing.assert_allclose(lo2, [exact_lo, 10 * exact_lo])
    np.testing.assert_allclose(hi2, [exact_hi, 10 * exact_hi])
    assert bootstrap_ci(data, n_boot=500, seed=7) == bootstrap_ci(data, n_boot=500, seed=7)


def test_aggregate_mean_median_and_min_fraction() -> None:
    x = np.array([[1.0, 1.0], [2.0, np.nan], [3.0, np.nan], [4.0, np.nan]])
    mean = aggregate(x, "mean")
    se = np.std([1, 2, 3, 4], ddof=1) / 2  # 0.6455
    assert mean["center"][0] == pytest.approx(2.5)
    assert (mean["lower"][0], mean["upper"][0]) == pytest.approx((2.5 - se, 2.5 + se))
    np.testing.assert_array_equal(mean["n"], [4, 1])
    assert np.isnan(mean["center"][1])  # one seed of four has a value: below min_fraction=0.5
    med = aggregate(x, "median")
    assert (med["lower"][0], med["center"][0], med["upper"][0]) == pytest.approx((1.75, 2.5, 3.25))
    assert aggregate(x, "mean", min_fraction=0.25)["center"][1] == pytest.approx(1.0)
    with pytest.raises(UserError, match="median"):
        aggregate(x, "average")


def test_resample_is_a_step_function() -> None:
    out = resample(np.array([1.0, 3.0]), np.array([5.0, 2.0]), np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(out, [np.nan, 5.0, 5.0, 2.0, 2.0])
    assert np.isnan(resample(np.array([]), np.array([]), np.array([1.0]))).all()


def test_best_so_far_respects_mode() -> None:
    values = np.array([3.0, np.nan, 1.0, 2.0, 5.0])
    np.testing.assert_array_equal(best_so_far(values, "min"), [3, 3, 1, 1, 1])
    np.testing.assert_array_equal(best_so_far(values, "max"), [3, 3, 3, 3, 5])
    np.testing.assert_array_equal(best_so_far(np.array([np.nan, 2.0]), "min"), [np.nan, 2.0])


# -- loading ----------------------------------------------------------------------------------------------


def test_load_grid_rows_and_curves(toy_root: Path) -> None:
    write_run(toy_root, "toymax", "A", 0, [(1.0, 0.5), (2.0, 0.9), (3.0, 0.7), (4.0, None), (5.0, math.nan)],
              mode="max", metric="acc")
    write_run(toy_root, "toymax", "A", 1, [(1.0, 0.5), (2.0, "0.95"), (3.0, True), (4.0, 0.6)], mode="max",
              metric="acc")  # values that are not numbers count as missing
    grid = load_grid(toy_root, TAG)
    assert grid.benchmarks == ["toy", "toymax"]
    assert grid.methods == ["A", "B"]
    assert grid.skipped == []
    row = grid.runs[(grid.runs["benchmark"] == "toy") & (grid.runs["method"] == "B") & (grid.runs["seed"] == 2)]
    r = row.iloc[0]
    assert (r.metric, r["mode"], r.budget, r.n_trials, r.n_results, r.best, r.first, r.complete) == \
        ("loss", "min", 100.0, 2, 2, 3.5, 6.0, True)
    times, best = grid.curves[("toymax", "A", 0)]
    np.testing.assert_array_equal(times, [1, 2, 3, 4, 5])
    # max mode; a result without the metric, or NaN (written as NaN in the log), keeps the best
    np.testing.assert_array_equal(best, [0.5, 0.9, 0.9, 0.9, 0.9])
    np.testing.assert_array_equal(grid.curves[("toymax", "A", 1)][1], [0.5, 0.5, 0.5, 0.6])
    assert grid.mode("toymax") == "max" and grid.metric("toymax") == "acc"
    assert grid.optimum("toy") is None and grid.optimum("toymax") is None  # not registered benchmarks
    sub = load_grid(toy_root, TAG, benchmarks=["toy*"], methods=["b"])
    assert set(sub.runs["method"]) == {"B"} and sub.benchmarks == ["toy"]  # toymax has no B
    row, (t, v) = load_run(experiment_path(toy_root, TAG, "toy", "A", 1))
    assert (row["method"], row["seed"], row["best"]) == ("A", 1, 1.0)
    np.testing.assert_array_equal(v, [4.0, 1.0])


def test_half_written_and_broken_folders_are_skipped_and_reported(toy_root: Path, caplog) -> None:
    base = toy_root / TAG / "toy"
    (base / "A" / "7").mkdir()  # created, metadata never written
    (base / "A" / "8").mkdir()
    (base / "A" / "8" / METADATA_FILE).write_text('{"metric": "loss", "mo')  # not JSON
    broken = write_run(toy_root, "toy", "A", 9, [(1.0, 3.0), (2.0, 2.0)])
    lines = (broken / EVENTS_FILE).read_bytes().split(b"\n")
    i = next(k for k, line in enumerate(lines) if b'"event":"result"' in line)
    lines[i] = lines[i][: len(lines[i]) // 2]  # a result line cut in the middle of the log
    (broken / EVENTS_FILE).write_bytes(b"\n".join(lines))
    (base / "A" / "notes").mkdir()
    with caplog.at_level(logging.WARNING, logger="tunebench.analysis.results"):
        grid = load_grid(toy_root, TAG)
    reasons = {Path(p).name: r for p, r in grid.skipped}
    assert set(reasons) == {"7", "8", "9", "notes"}
    assert "no metadata.json" in reasons["7"]
    assert "not valid JSON" in reasons["8"]
    assert "undecodable" in reasons["9"]
    assert "not an integer" in reasons["notes"]
    assert sorted(grid.seeds("toy", "A")) == [0, 1, 2]  # the good ones are all there
    assert sum("skipping" in rec.getMessage() for rec in caplog.records) == 4


def test_unfinished_runs_are_loaded_and_marked(toy_root: Path, caplog) -> None:
    write_run(toy_root, "toy", "A", 3, [(5.0, 2.5)], end=False)
    torn = write_run(toy_root, "toy", "A", 4, [(5.0, 2.5), (6.0, 0.5)], end=False)
    data = (torn / EVENTS_FILE).read_bytes()
    (torn / EVENTS_FILE).write_bytes(data + b'{"event":"result","trial_id":1,"result":{"loss":0.1')  # killed mid-write
    with caplog.at_level(logging.WARNING, logger="tunebench.analysis.results"):
        grid = load_grid(toy_root, TAG)
    runs = grid.runs.set_index(["method", "seed"])
    assert not runs.loc[("A", 3), "complete"] and runs.loc[("A", 3), "n_results"] == 1
    assert not runs.loc[("A", 4), "complete"] and runs.loc[("A", 4), "best"] == 0.5  # torn line dropped
    assert "torn" in runs.loc[("A", 4), "note"]
    assert runs.loc[("A", 0), "complete"]
    assert any("torn" in rec.getMessage() for rec in caplog.records)
    text = write_report(grid)
    assert "## Unfinished runs" in text and "toy / A / seed 3" in text


def test_unknown_tag_benchmark_method_list_what_exists(toy_root: Path) -> None:
    (toy_root / "other").mkdir()
    with pytest.raises(UserError, match=r"no experiment tag 'gird'.*tags there: grid, other"):
        load_grid(toy_root, "gird")
    with pytest.raises(UserError, match="tags under .*: grid, other"):
        load_grid(toy_root, "")
    with pytest.raises(UserError, match=r"'other' .* holds no experiments yet"):
        load_grid(toy_root, "other")
    with pytest.raises(UserError, match=r"no benchmark 'lcbench-\*'.*it has: toy"):
        load_grid(toy_root, TAG, benchmarks=["lcbench-*"])
    with pytest.raises(UserError, match=r"no method 'ASHA'.*it has: A, B"):
        load_grid(toy_root, TAG, methods=["A", "ASHA"])
    with pytest.raises(UserError, match="does not exist"):
        load_grid(toy_root / "nowhere", TAG)


def test_runs_with_another_metric_are_skipped(toy_root: Path) -> None:
    write_run(toy_root, "toy", "B", 5, [(1.0, 0.3)], metric="acc", mode="max")
    grid = load_grid(toy_root, TAG)
    assert [Path(p).name for p, _ in grid.skipped] == ["5"]
    assert "differs" in grid.skipped[0][1] and grid.seeds("toy", "B") == [0, 1, 2]


# -- regret and ranks -------------------------------------------------------------------------------------


def test_normalized_regret_by_hand(toy_root: Path) -> None:
    grid = load_grid(toy_root, TAG)
    best, worst = regret_bounds(grid, "toy")
    assert (best, worst) == (1.0, 6.0)  # best found; median of the first results 5 4 6 8 7 6
    _, a = curve_matrix(grid, "toy", "A", [25.0, 100.0])
    np.testing.assert_allclose(normalized_regret(a, best, worst), [[0.8, 0.2], [0.6, 0.0], [1.0, 0.4]])
    table = summarize(grid, (0.25, 1.0), n_boot=200)
    t = table.set_index(["method", "fraction"])
    assert t.loc[("A", 1.0), "regret_iqm"] == pytest.approx(0.2)  # three seeds: IQM = mean
    assert t.loc[("B", 1.0), "regret_iqm"] == pytest.approx((0.4 + 0.0 + 0.5) / 3)
    assert t.loc[("B", 0.25), "regret_iqm"] == pytest.approx((1.4 + 1.2) / 2)  # seed 2 has no result at 25 s
    assert t.loc[("B", 0.25), "n_seeds"] == 2
    assert t.loc[("A", 1.0), "best_iqm"] == pytest.approx(2.0)
    assert t.loc[("A", 1.0), "regret_lo"] <= 0.2 <= t.loc[("A", 1.0), "regret_hi"]
    # a known optimum that is better replaces the best found; a worse one does not
    assert regret_bounds(load_grid(toy_root, TAG, optima={"toy": 0.0}), "toy") == (0.0, 6.0)
    assert regret_bounds(load_grid(toy_root, TAG, optima={"toy": 2.0}), "toy") == (1.0, 6.0)


def test_regret_in_max_mode_and_registry_optimum(tmp_path: Path) -> None:
    for seed, results in enumerate([[(1.0, 0.5), (5.0, 0.9)], [(1.0, 0.7), (5.0, 0.8)], [(1.0, 0.6)]]):
        write_run(tmp_path, "acc", "A", seed, results, metric="acc", mode="max")
    grid = load_grid(tmp_path, TAG)
    best, worst = regret_bounds(grid, "acc")
    assert (best, worst) == (0.9, 0.6)
    np.testing.assert_allclose(normalized_regret([0.9, 0.6, 0.75], best, worst), [0.0, 1.0, 0.5])
    # branin is registered: its blackbox knows the optimum, and the registry the budget
    write_run(tmp_path, "branin", "A", 0, [(10.0, 5.0), (20.0, 0.9)], budget=None)
    grid = load_grid(tmp_path, TAG, benchmarks=["branin"])
    assert grid.optimum("branin") == pytest.approx(0.397887)
    assert load_grid(tmp_path, TAG, known_optima=False).optimum("branin") is None
    assert grid.budget("branin") == 600.0
    assert regret_bounds(grid, "branin") == pytest.approx((0.397887, 5.0))


def test_ranks_with_ties_and_missing_results(toy_root: Path) -> None:
    grid = load_grid(toy_root, TAG)
    methods, seeds, ranks = rank_curves(grid, "toy", [25.0, 100.0])
    assert (methods, seeds) == (["A", "B"], [0, 1, 2])
    # at 25 s: A beats B on every seed (B's seed 2 has no result yet: last)
    np.testing.assert_array_equal(ranks[:, :, 0], [[1, 2], [1, 2], [1, 2]])
    # at 100 s: seed 0 A (2 < 3), seed 1 a tie (1 = 1), seed 2 A (3 < 3.5)
    np.testing.assert_array_equal(ranks[:, :, 1], [[1, 2], [1.5, 1.5], [1, 2]])
    # a second benchmark where B always wins: the average over benchmarks
    for seed in range(3):
        write_run(toy_root, "toy2", "A", seed, [(10.0, 9.0)])
        write_run(toy_root, "toy2", "B", seed, [(10.0, 1.0)])
    grid = load_grid(toy_root, TAG)
    table = average_ranks(grid, [0.25, 1.0])
    assert table.loc[1.0, "A"] == pytest.approx(((1 + 1.5 + 1) / 3 + 2) / 2)
    assert table.loc[1.0, "B"] == pytest.approx(((2 + 1.5 + 2) / 3 + 1) / 2)
    summary = summarize(grid, (1.0,), n_boot=100)
    all_rows = summary[summary["benchmark"] == ALL].set_index("method")
    assert all_rows.loc["A", "rank"] == pytest.approx(table.loc[1.0, "A"])
    assert all_rows.loc["A", "n_seeds"] == 6


def test_fraction_grid_is_log_spaced_over_orders_of_magnitude(tmp_path: Path) -> None:
    write_run(tmp_path, "wide", "A", 0, [(0.5, 3.0), (900.0, 1.0)], budget=1000.0)
    write_run(tmp_path, "narrow", "A", 0, [(200.0, 3.0)], budget=1000.0)
    grid = load_grid(tmp_path, TAG)
    fractions, log = fraction_grid(grid, ["wide"], 50)
    assert log and fractions[0] == pytest.approx(0.0005) and fractions[-1] == 1.0
    assert np.allclose(np.diff(np.log(fractions)), np.log(2000) / 49)
    fractions, log = fraction_grid(grid, ["narrow"], 5)
    assert not log
    np.testing.assert_allclose(fractions, [0.2, 0.4, 0.6, 0.8, 1.0])


# -- against the real tuner ----------------------------------------------------------------------------------


def test_grid_of_real_simulated_runs(tmp_path: Path) -> None:
    from tunebench.launch import build_tuner, spec_from_benchmark

    for method in ("RS", "ASHA"):
        for seed in (0, 1):
            spec = spec_from_benchmark("branin")
            spec.method, spec.seed, spec.max_wallclock_time, spec.charge_decision_time = method, seed, 120.0, False
            build_tuner(spec, experiment_path(tmp_path, TAG, "branin", method, seed), command_line=["test"]).run()
    grid = load_grid(tmp_path, TAG)
    assert len(grid.runs) == 4 and grid.runs["complete"].all() and grid.budget("branin") == 120.0
    for row in grid.runs.itertuples():
        exp = load_experiment(row.path)
        results = exp.results
        assert row.n_results == len(results) and row.n_trials == len(exp.trial_table())
        assert row.best == pytest.approx(exp.best()[2])
        times, best = grid.curves[(row.benchmark, row.method, row.seed)]
        np.testing.assert_allclose(times, results["tuner_time"])
        np.testing.assert_allclose(best, results["loss"].cummin())
    text = write_report(grid, n_boot=200)
    assert "| RS |" in text and "| ASHA |" in text and "known optimum 0.397887" in text


# -- report and figures ---------------------------------------------------------------------------------------


def test_write_report_markdown_and_csv(toy_root: Path, tmp_path: Path) -> None:
    grid = load_grid(toy_root, TAG)
    out = tmp_path / "report"
    text = write_report(grid, out, fractions=(0.25, 0.5, 1.0), n_boot=200)
    for needle in ("## toy", "| A |", "| B |", "regret @25%", "regret @50%", "regret @100%", "best loss @100% (IQM)",
                   "rank @100%"):
        assert needle in text
    assert (out / "report.md").read_text().strip() == text.strip()
    csv = pd.read_csv(out / "report.csv")
    assert set(csv["method"]) == {"A", "B"} and sorted(set(csv["fraction"])) == [0.25, 0.5, 1.0]
    assert csv.set_index(["method", "fraction"]).loc[("A", 1.0), "regret_iqm"] == pytest.approx(0.2)
    assert len(pd.read_csv(out / "report_toy.csv")) == 6
    a_line = next(line for line in text.splitlines() if line.startswith("| A |"))
    assert "**0.2**" in a_line and a_line.rstrip(" |").endswith("3")  # best at 100%, three seeds
    with pytest.raises(UserError, match="positive"):
        write_report(grid, fractions=(0.0, 1.0))


def test_plot_grid_writes_pngs(toy_root: Path, tmp_path: Path) -> None:
    for seed in range(3):
        write_run(toy_root, "toy2", "A", seed, [(0.05, 9.0), (80.0, 2.0)])
        write_run(toy_root, "toy2", "B", seed, [(0.05, 8.0), (90.0, 0.05)])
    grid = load_grid(toy_root, TAG)
    folder = plot_grid(grid, tmp_path / "figs", n_boot=100, dpi=50)
    assert folder == [tmp_path / "figs" / "toy.png", tmp_path / "figs" / "toy2.png", tmp_path / "figs" / "ranks.png"]
    one = plot_grid(grid, tmp_path / "one.png", benchmark="toy2", groups={"all": ["A", "B"]}, statistic="median",
                    y="regret", dpi=50)
    assert one == [tmp_path / "one.png"]
    for path in folder + one:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    # a file name with several benchmarks is a stem
    assert output_paths(tmp_path / "c.png", ["b1", "b2"]) == (
        {"b1": tmp_path / "c-b1.png", "b2": tmp_path / "c-b2.png"}, tmp_path / "c-ranks.png")
    with pytest.raises(UserError, match="iqm, mean, median"):
        plot_grid(grid, tmp_path / "x.png", statistic="max")
    with pytest.raises(UserError, match="no benchmark 'nope'"):
        plot_grid(grid, tmp_path / "x.png", benchmark="nope")
    with pytest.raises(UserError, match="none of the methods"):
        plot_grid(grid, tmp_path / "x.png", benchmark="toy", groups={"g": ["C"]})
    with pytest.raises(UserError, match="unknown method group.*known groups: single-fidelity"):
        plot_grid(grid, tmp_path / "x.png", groups=["asynchronus"])
    assert output_paths(tmp_path / "a.pdf", ["b"]) == ({"b": tmp_path / "a.pdf"}, None)
    # --method-group names: one panel per registry group
    assert resolve_groups(["synchronous", "all"]) == {"synchronous": method_groups()["synchronous"],
                                                      "all": method_groups()["all"]}
    assert resolve_groups({"mine": ("A",)}) == {"mine": ["A"]} and resolve_groups(None) is None


def test_plot_without_matplotlib_names_the_extra(toy_root: Path, monkeypatch) -> None:
    grid = load_grid(toy_root, TAG)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'tunebench\[plot\]'"):
        plot_grid(grid, toy_root / "x.png")


def test_loading_many_runs(tmp_path: Path) -> None:
    """A smoke version of benchmarks/analysis_load.py (which times it): 100 folders of 100 results each."""
    rng = np.random.default_rng(0)
    for i in range(100):
        t = np.cumsum(rng.exponential(1.0, 100))
        write_run(tmp_path, f"b{i % 4}", f"M{i // 4 % 5}", i // 20, list(zip(t.tolist(), rng.random(100).tolist(),
                                                                                strict=True)))
    grid = load_grid(tmp_path, TAG, known_optima=False)
    assert len(grid.runs) == 100 and (grid.runs["n_results"] == 100).all()
    assert not math.isnan(grid.runs["best"].max())


def test_a_tag_without_usable_runs_lists_what_exists(tmp_path):
    from tunebench.analysis.results import load_grid
    from tunebench.errors import UserError

    (tmp_path / "empty-tag" / "branin" / "ASHA" / "0").mkdir(parents=True)  # killed before metadata
    (tmp_path / "other-tag").mkdir()
    with pytest.raises(UserError) as info:
        load_grid(tmp_path, "empty-tag")
    message = str(info.value)
    assert "branin" in message and "ASHA" in message and "other-tag" in message and "skipped" in message
