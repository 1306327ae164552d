"""Figures: one experiment (`tunebench plot PATH`), grids (simulated time, monotone aggregates over
seeds, regret on a log scale, legend outside, few-seed note), output formats and bad suffixes, and
the figures of `tunebench report`, on experiments run on the simulator."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.test_analysis import write_run
from tunebench.analysis.layout import experiment_path
from tunebench.analysis.plots import experiment_figure, grid_figures, plot_experiment, plot_grid
from tunebench.analysis.results import load_grid
from tunebench.cli import main
from tunebench.errors import UserError
from tunebench.store import load_experiment

pytest.importorskip("matplotlib")

TAG = "plots"
PNG = b"\x89PNG\r\n\x1a\n"


def _run(benchmark: str, method: str, seed: int, path: Path, budget: float = 120.0) -> Path:
    from tunebench.launch import build_tuner, spec_from_benchmark

    spec = spec_from_benchmark(benchmark)
    spec.method, spec.seed, spec.max_wallclock_time, spec.charge_decision_time = method, seed, budget, False
    build_tuner(spec, path, command_line=["test"]).run()
    return path


@pytest.fixture(scope="module")
def sim_root(tmp_path_factory) -> Path:
    """branin: RS and ASHA, two seeds each, 120 simulated seconds."""
    root = tmp_path_factory.mktemp("sim")
    for method in ("RS", "ASHA"):
        for seed in (0, 1):
            _run("branin", method, seed, experiment_path(root, TAG, "branin", method, seed))
    return root


@pytest.fixture(scope="module")
def mf_experiment(tmp_path_factory) -> Path:
    """One multi-fidelity simulated experiment (ASHA on synthetic-tabular)."""
    return _run("synthetic-tabular", "ASHA", 0, tmp_path_factory.mktemp("one") / "exp", budget=600.0)


def _format_ok(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000
    if path.suffix == ".png":
        assert data[:8] == PNG
    elif path.suffix == ".pdf":
        assert data[:5] == b"%PDF-"
    else:
        assert ET.fromstring(data).tag.endswith("svg")


def test_single_experiment_figure_and_formats(mf_experiment: Path, tmp_path: Path, capsys) -> None:
    exp = load_experiment(mf_experiment)
    fig = experiment_figure(exp)
    best_ax, curves_ax = fig.axes
    assert best_ax.get_xlabel() == "simulated time (s)" and curves_ax.get_xlabel() == exp.resource_attr
    assert best_ax.get_ylabel() == curves_ax.get_ylabel() == f"{exp.metric} ({exp.mode})"
    # the best-so-far line ends at the experiment's best value and never gets worse
    best_line = next(line for line in best_ax.get_lines() if line.get_label() == "best so far")
    y = np.asarray(best_line.get_ydata(), dtype=float)
    y = y[np.isfinite(y)]
    assert y[-1] == pytest.approx(exp.best()[2])
    assert np.all(np.diff(y) <= 0 if exp.mode == "min" else np.diff(y) >= 0)
    # learning curves: one line per trial with a result, styled by status
    statuses = {row["status"] for row in exp.trial_table() if row["n_results"]}
    labels = curves_ax.get_legend_handles_labels()[1]
    assert len(curves_ax.get_lines()) == exp.results["trial_id"].nunique()
    assert "stopped early" in labels and ("completed" in statuses) == ("completed" in labels)
    styles = {line.get_label(): line.get_linestyle() for line in curves_ax.get_lines()
              if not line.get_label().startswith("_")}
    assert len(set(styles.values())) == len(styles)  # statuses told apart
    for suffix in (".png", ".pdf", ".svg"):
        out = tmp_path / f"one{suffix}"
        assert main(["plot", str(mf_experiment), "--output", str(out)]) == 0
        assert capsys.readouterr().out.strip() == f"wrote {out}"
        _format_ok(out)
    # a folder output gets <experiment>.png
    assert plot_experiment(mf_experiment, tmp_path / "figs") == tmp_path / "figs" / "exp.png"


def test_multi_objective_experiment_has_its_pareto_front(tmp_path: Path) -> None:
    path = _run("zdt1-mo", "MOASHA", 0, tmp_path / "mo", budget=300.0)
    exp = load_experiment(path)
    fig = experiment_figure(exp)
    assert len(fig.axes) == 3
    ax = fig.axes[2]
    assert ax.get_title() == "Pareto front"
    m0, m1 = exp.objectives.metrics
    assert (ax.get_xlabel(), ax.get_ylabel()) == (f"{m0} ({exp.objectives.modes[0]})",
                                                  f"{m1} ({exp.objectives.modes[1]})")
    front = exp.pareto_front()
    line = next(line for line in ax.get_lines() if line.get_label().startswith("Pareto front"))
    assert line.get_label() == f"Pareto front ({len(front)} trials)"
    assert sorted(np.asarray(line.get_xdata(), dtype=float)) == pytest.approx(sorted(front[m0]))


def test_bad_suffix_is_one_line_and_creates_nothing(mf_experiment: Path, sim_root: Path, tmp_path: Path,
                                                    capsys) -> None:
    for argv in (["plot", str(mf_experiment)], ["plot", "--experiment-tag", TAG, "--results-root", str(sim_root)]):
        out = tmp_path / "x.gif"
        assert main([*argv, "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("tunebench: error: ")
        assert "'.gif'" in err and ".png, .pdf, .svg" in err
        assert not out.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="unknown format '.gif'"):
        plot_experiment(mf_experiment, tmp_path / "y.gif")
    assert main(["plot", str(tmp_path)]) == 2  # not an experiment folder
    assert "not a tunebench experiment folder" in capsys.readouterr().err
    assert main(["plot", str(mf_experiment), "--experiment-tag", TAG]) == 2
    assert "--experiment-tag goes with a grid" in capsys.readouterr().err


def test_grid_figure_simulated_time_regret_legend_and_seed_note(sim_root: Path) -> None:
    grid = load_grid(sim_root, TAG)
    [(path, fig)] = grid_figures(grid, "cmp.png", n_boot=50)
    assert path == Path("cmp.png")
    *panels, ranks = fig.axes
    assert len(panels) == 1  # RS and ASHA: one panel (asynchronous and single-fidelity)
    for ax in fig.axes:
        assert ax.get_xlabel() == "simulated time (s)"
        assert ax.get_legend() is None  # the legend is the figure's, outside the panels
    assert len(fig.legends) == 1 and {t.get_text() for t in fig.legends[0].get_texts()} == {"RS", "ASHA"}
    # branin's optimum is known: normalized regret on a log scale by default
    assert panels[0].get_ylabel() == "normalized regret of the best loss so far (log)"
    assert panels[0].get_yscale() == "log"
    title = fig._suptitle.get_text()
    assert "only 2 seeds" in title
    [(_, fig)] = grid_figures(grid, "cmp.png", y="metric", n_boot=50)
    assert fig.axes[0].get_ylabel() == "best loss so far" and fig.axes[0].get_yscale() == "linear"
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "known optimum" in labels


def test_aggregate_never_goes_against_the_seeds(tmp_path: Path) -> None:
    # maximize; seed 2 has no result until t=60 and then a poor one: an IQM over the seeds that
    # have a value would drop there
    runs = {0: [(1.0, 50.0), (30.0, 80.0), (90.0, 85.0)], 1: [(2.0, 60.0), (40.0, 82.0)],
            2: [(60.0, 10.0), (95.0, 70.0)], 3: [(1.5, 55.0), (20.0, 90.0)]}
    for seed, results in runs.items():
        write_run(tmp_path, "late", "A", seed, results, mode="max", budget=100.0, tag=TAG)
    grid = load_grid(tmp_path, TAG)
    for statistic in ("iqm", "mean", "median"):
        [(_, fig)] = grid_figures(grid, "late.png", statistic=statistic, y="metric", n_boot=200)
        line = next(line for line in fig.axes[0].get_lines() if line.get_label() == "A")
        x = np.asarray(line.get_xdata(), dtype=float)
        y = np.asarray(line.get_ydata(), dtype=float)
        drawn = np.isfinite(y)
        assert drawn.any() and np.all(np.diff(y[drawn]) >= 0)
        assert x[drawn].min() >= 60.0  # starts when every seed has a result
        assert "a curve starts when every seed of its method has a result" in fig._suptitle.get_text()
        assert "only 4 seeds" in fig._suptitle.get_text()


def test_grid_cli_formats_and_regret_switch(sim_root: Path, tmp_path: Path, capsys) -> None:
    for suffix in (".pdf", ".svg"):
        out = tmp_path / f"g{suffix}"
        assert main(["plot", "--experiment-tag", TAG, "--results-root", str(sim_root), "--output", str(out),
                     "--no-regret"]) == 0
        _format_ok(out)
    paths = plot_grid(load_grid(sim_root, TAG), tmp_path / "folder", n_boot=20, dpi=40)
    assert paths == [tmp_path / "folder" / "branin.png"]
    _format_ok(paths[0])
    assert main(["plot", "--results-root", str(sim_root)]) == 2
    assert "give an experiment folder" in capsys.readouterr().err


def test_report_writes_its_figures(sim_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "rep"
    assert main(["report", "--experiment-tag", TAG, "--results-root", str(sim_root), "--output-dir", str(out)]) == 0
    _format_ok(out / "figures" / "branin.png")
    text = (out / "report.md").read_text()
    assert "## Figures" in text and "![branin](figures/branin.png)" in text
    assert (out / "report.csv").stat().st_size > 0
