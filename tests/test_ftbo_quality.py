"""benchmarks/ftbo_quality.py: its figures on a tiny real setting (2 lcbench development tasks, 1 seed,
2 methods, a few epochs), and its task selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

from tunebench.analysis import load_grid
from tunebench.blackboxes.registry import load_blackbox
from tunebench.blackboxes.yahpo import LCBENCH_DEVELOPMENT_TASKS, LCBENCH_INSTANCES
from tunebench.errors import UserError
from tunebench.store import load_experiment

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "ftbo_quality.py"


@pytest.fixture(scope="module")
def fq():
    return load_script(SCRIPT)


def test_task_selection(fq):
    assert fq.select_tasks(["dev"]) == list(LCBENCH_DEVELOPMENT_TASKS)
    reporting = fq.select_tasks(["reporting"])
    assert len(reporting) == 26 and not set(reporting) & set(LCBENCH_DEVELOPMENT_TASKS)
    assert sorted(fq.select_tasks(["all"])) == sorted(LCBENCH_INSTANCES)
    assert fq.select_tasks(["3945", "lcbench-167149", "dev"])[:3] == ["3945", "167149", "7593"]
    with pytest.raises(UserError, match="not an lcbench task"):
        fq.select_tasks(["12"])
    assert fq.method_of("FTBO-dpl") == ("FTBO", {"surrogate": "dpl"})
    assert fq.method_of("ASHA") == ("ASHA", {})
    assert fq.method_of("FTBO-ei") == ("FTBO", {})  # a tag that is no surrogate implies nothing
    assert fq.parse_method_args(["FTBO-ei.acquisition=ei", "FTBO-pfn.max_context=64"], ["FTBO-ei", "FTBO-pfn"]) == \
        {"FTBO-ei": {"acquisition": "ei"}, "FTBO-pfn": {"surrogate": "pfn", "max_context": 64}}


def test_figures_on_a_tiny_setting(fq, shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUNEBENCH_DATA", str(shared_data))
    tasks, methods, epochs = ["3945", "34539"], ["FTBO-pfn", "ASHA"], 30
    argv = ["--tasks", *tasks, "--seeds", "1", "--methods", *methods, "--setting", "both", "--epochs", str(epochs),
            "--parallel", "2", "--results-root", str(tmp_path), "--plot", str(tmp_path / "plot.png")]
    figures = fq.main(argv)
    assert set(figures) == {"1w", "4w"}
    for groups in figures.values():
        assert [g.name for g in groups] == ["development"]  # both tasks are development tasks
        g = groups[0]
        for m in methods:
            for column in (g.mean[m], g.median[m]):
                assert len(column) == len(fq.FRACTIONS) and all(np.isfinite(v) and v >= 0 for v in column)
            # best-so-far regret never grows with the budget
            assert g.mean[m][0] >= g.mean[m][1] >= g.mean[m][2]
        for i in range(len(fq.FRACTIONS)):
            assert np.mean([g.rank[m][i] for m in methods]) == pytest.approx((len(methods) + 1) / 2)
        assert set(g.wtl) == {"ASHA"} and sum(g.wtl["ASHA"]) == len(tasks)
        assert all(0.0 <= p <= 1.0 for p in g.p["ASHA"])
    # the budget is epochs, with 1 worker and with 4: every run stopped after exactly that many results
    for setting in ("1w", "4w"):
        grid = load_grid(tmp_path, fq.tag_of(setting, "FTBO-pfn"), known_optima=False)
        assert sorted(grid.runs["n_results"]) == [epochs, epochs]
    assert (tmp_path / "plot.png").stat().st_size > 0
    # resumable: a second call runs nothing and prints the same figures
    first = capsys.readouterr().out
    again = fq.main(argv)
    second = capsys.readouterr().out
    assert "(0 to run, 4 already complete)" in second
    assert again["1w"][0].mean == figures["1w"][0].mean
    strip = [line for line in first.splitlines() if " s in all" not in line and " runs (" not in line]
    assert strip == [line for line in second.splitlines() if " s in all" not in line and " runs (" not in line]

    # --started: the configurations each run tried, valued at their last epoch
    bounds = {t: fq.LCBENCH_REGRET_BOUNDS[t] for t in tasks}
    reg = fq.load_regrets("1w", tasks, methods, 1, tmp_path, bounds, epochs=epochs, time_budget=300)
    fig = fq.started_figures(reg, tasks, 1, tmp_path, bounds, epochs=epochs, time_budget=300)
    boxes = {t: load_blackbox("lcbench", t) for t in tasks}
    for m in methods:
        assert fig.found[m] == pytest.approx(figures["1w"][0].mean[m])
        assert fig.started[m][0] >= fig.started[m][1] >= fig.started[m][2] >= 0.0
        # at 100 %: every trial of the run counts; its configs from the trial table, valued by the blackbox
        method = fq.method_of(m)[0]
        expected, n_trials = [], []
        for t in tasks:
            table = load_experiment(tmp_path / fq.tag_of("1w", m) / f"lcbench-{t}" / method / "0").trial_table()
            configs = [{k: row["config"][k] for k in boxes[t].config_space} for row in table]
            best, median = bounds[t]
            top = np.nanmax(boxes[t].level_values(configs, "val_accuracy"))
            expected.append(max(0.0, (best - top) / (best - median)))
            n_trials.append(len(table))
        assert fig.started[m][-1] == pytest.approx(np.mean(expected))
        assert fig.trials[m] == pytest.approx(np.mean(n_trials))
    fq.print_started(reg, fig)
    assert "best started" in capsys.readouterr().out

    # --time-budget: the 4w runs end at that simulated time instead, the fractions are of that time
    timed = fq.main(["--tasks", "3945", "--seeds", "1", "--methods", *methods, "--setting", "4w", "--time-budget",
                     "300", "--results-root", str(tmp_path / "timed")])
    out = capsys.readouterr().out
    assert "4w: 4 workers, 300 simulated s" in out
    grid = load_grid(tmp_path / "timed", fq.tag_of("4w", "ASHA"), known_optima=False)
    assert len(grid.runs) == 1 and grid.runs["n_results"].iloc[0] != epochs
    assert 0.0 <= timed["4w"][0].mean["ASHA"][-1] <= timed["4w"][0].mean["ASHA"][0]


def test_lcbench_regret_chunk_is_the_last_epoch_of_its_sample(shared_data):
    """Chunk 0 of the fixed sample: the configurations of ``default_rng([seed, 0])`` at the last
    epoch; its best is at most the table's (the best of all chunks) and its median close to the
    table's (of 10 such chunks)."""
    from tunebench.benchmarks.builtin import LCBENCH_REGRET_BOUNDS, LCBENCH_REGRET_SAMPLE, lcbench_regret_chunk
    from tunebench.blackboxes.registry import load_blackbox
    from tunebench.space import sample_configs

    n_chunks, size, seed = LCBENCH_REGRET_SAMPLE
    assert n_chunks * size == 1_000_000
    assert sorted(LCBENCH_REGRET_BOUNDS) == sorted(LCBENCH_INSTANCES)
    assert all(best > median for best, median in LCBENCH_REGRET_BOUNDS.values())
    bb = load_blackbox("lcbench", "34539", shared_data)
    chunk = lcbench_regret_chunk("34539", 0, shared_data)
    assert chunk.shape == (size,)
    configs = sample_configs(bb.config_space, np.random.default_rng([seed, 0]), size)[:200]
    acc = bb.evaluate(configs, fidelities=[bb.fidelity_values[-1]], seed=0)[:, 0, bb.objective_index("val_accuracy")]
    np.testing.assert_allclose(chunk[:200], acc, rtol=1e-5)
    best, median = LCBENCH_REGRET_BOUNDS["34539"]
    assert np.nanmax(chunk) <= best + 5e-4
    assert abs(float(np.nanmedian(chunk)) - median) < 0.2
    with pytest.raises(UserError, match="chunk 10 does not exist"):
        lcbench_regret_chunk("34539", n_chunks, shared_data)


@pytest.mark.slow
def test_lcbench_regret_bounds_table_is_the_sample_best_and_median(shared_data):
    """The table's entry of one task recomputed from the sample definition (1,000,000 configurations:
    about 20 s)."""
    from tunebench.benchmarks.builtin import LCBENCH_REGRET_BOUNDS, lcbench_regret_bounds

    best, median = lcbench_regret_bounds("34539", shared_data)
    assert LCBENCH_REGRET_BOUNDS["34539"] == (pytest.approx(best, abs=5e-4), pytest.approx(median, abs=5e-4))
