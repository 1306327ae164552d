"""The tunebench command line: user errors are one clear line, run/show/list work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUADRATIC, write_script

from tunebench.cli import main


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["run", "--method", "NOPE"], "unknown method 'NOPE'; known methods: RS, Grid, ASHA"),
    (["run", "--benchmark", "nope"], "unknown benchmark 'nope'; known benchmarks: branin"),
    (["run", "--benchmark", "lcbench-1"], "unknown benchmark 'lcbench-1'; lcbench-<...> takes one of: 126025, 126026"),
    (["run", "--benchmark", "branni"], "unknown benchmark 'branni' (did you mean branin?)"),
    (["run", "--script", "missing.py", "--metric", "loss"], "training script 'missing.py' does not exist"),
    (["show", "."], "is not a tunebench experiment folder"),
    (["resume", "."], "is not a tunebench experiment folder"),
])
def test_user_errors_are_one_line_without_traceback(tmp_path, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_space_file_names_the_parameter(tmp_path, capsys):
    script = write_script(tmp_path, QUADRATIC)
    space = tmp_path / "space.yaml"
    space.write_text("x:\n  type: loguniform\n  low: 0\n  high: 1\n")
    assert main(["run", "--script", str(script), "--config-space", str(space), "--metric", "loss"]) == 2
    err = capsys.readouterr().err
    assert "'x'" in err and "loguniform" in err and "Traceback" not in err


def test_script_without_config_space_or_metric(tmp_path, capsys):
    script = write_script(tmp_path, QUADRATIC)
    assert main(["run", "--script", str(script), "--metric", "loss"]) == 2
    assert "defines no CONFIG_SPACE" in capsys.readouterr().err
    script2 = write_script(tmp_path, "from tunebench.space import uniform\nCONFIG_SPACE = {'x': uniform(0, 1)}\n",
                           name="s2.py")
    assert main(["run", "--script", str(script2)]) == 2
    assert "no metric given: pass --metric" in capsys.readouterr().err


def test_list_shows_methods_and_benchmarks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("RS", "Grid", "ASHA", "ASHA-promotion", "HB", "mlp_digits"):
        assert name in out


def test_run_a_script_with_a_yaml_space_then_show_json(tmp_path):
    script = write_script(tmp_path, QUADRATIC)
    space = tmp_path / "space.yaml"
    space.write_text("x: {type: uniform, low: -1, high: 1}\n")
    exp = tmp_path / "exp"
    run = cli("run", "--script", str(script), "--config-space", str(space), "--metric", "loss",
              "--resource-attr", "epoch", "--max-resource-attr", "epochs", "--max-resource", "9",
              "--method", "asha", "--n-workers", "2", "--max-trials", "6", "--experiment-dir", str(exp),
              "--no-progress")
    assert run.returncode == 0, run.stderr
    assert "best configuration:" in run.stdout and str(exp) in run.stdout
    show = cli("show", str(exp), "--json", "--csv", str(tmp_path / "r.csv"))
    assert show.returncode == 0, show.stderr
    summary = json.loads(show.stdout)
    assert summary["n_trials"] == 6 and summary["n_failed"] == 0 and summary["metric"] == "loss"
    assert summary["mode"] == "min" and set(summary["best_config"]) == {"x", "epochs"}
    assert summary["best_config"]["epochs"] == 9 and summary["method"] == "ASHA"
    assert isinstance(summary["best_metric"], float) and (tmp_path / "r.csv").stat().st_size > 0
    human = cli("show", str(exp))
    assert "best loss" in human.stdout


# -- experiment grids, presets, plot and report (issue 5) -----------------------------------------


def test_list_methods_shows_groups_and_defaults_and_presets(capsys):
    assert main(["list", "--methods"]) == 0
    out = capsys.readouterr().out
    assert "ASHA: Asynchronous successive halving" in out and "grace_period=1, reduction_factor=3" in out
    assert "method groups (--method-group" in out
    assert "  baselines: BO, ASHA, MOBSTER, DyHPO, SyncHB, SyncMOBSTER" in out
    groups = dict(line.strip().split(": ", 1) for line in out.split("method groups")[1].splitlines()[1:])
    assert "SyncHB" in groups["synchronous"].split(", ") and "ASHA" in groups["asynchronous"].split(", ")
    assert groups["all"].startswith("RS, Grid, ASHA") and "BO" in groups["single-fidelity"].split(", ")
    assert "mlp_digits" not in out  # only methods
    assert main(["list", "--presets"]) == 0
    out = capsys.readouterr().out
    for name in ("lcbench-baselines", "synthetic-quick", "synthetic-baselines"):
        assert f"  {name}: " in out
    assert "lcbench-7593, lcbench-168330 x BO, ASHA, MOBSTER, DyHPO, SyncHB, SyncMOBSTER x 10 seeds" in out


def test_list_benchmarks_of_a_user_module(tmp_path, capsys):
    module = tmp_path / "mine.py"
    module.write_text("from tunebench.benchmarks import SimulatedBenchmark\n"
                      "def benchmark_definitions():\n"
                      "    return [SimulatedBenchmark(name='cli-user-bench', blackbox='branin', task=None, "
                      "metric='loss', mode='min', max_resource=27, fidelities=(1, 3, 9, 27), description='mine')]\n")
    from tunebench import benchmarks

    try:
        assert main(["list", "--benchmarks", "--benchmark-module", str(module)]) == 0
        out = capsys.readouterr().out
        assert "  cli-user-bench: mine [simulator; metric loss (min), epoch 1-27, 4 workers" in out
    finally:
        benchmarks._REGISTRY.pop("cli-user-bench", None)
        benchmarks._LOADED_MODULES.clear()


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    root = tmp_path / "results"
    (root / "old-tag" / "branin").mkdir(parents=True)
    monkeypatch.delenv("TUNEBENCH_RESULTS", raising=False)
    return root


@pytest.mark.parametrize("args, message", [
    (["experiment", "--benchmark", "branin", "--method", "RS"], "an experiment tag is needed: pass --experiment-tag"),
    (["experiment", "--benchmark", "branin", "--experiment-tag", ""], "an experiment tag is needed"),
    (["experiment", "--benchmark", "branin", "--experiment-tag", "../x"], "is not a plain folder name"),
    (["experiment", "--method", "RS", "--experiment-tag", "t"], "no benchmark given: pass --benchmark NAME"),
    (["experiment", "--benchmark", "branin", "--method", "Nope", "--experiment-tag", "t"],
     "unknown method 'Nope'; known methods: RS, Grid, ASHA"),
    (["experiment", "--benchmark", "branin", "--method-group", "fast", "--experiment-tag", "t"],
     "unknown method group 'fast'; known groups: single-fidelity, asynchronous, synchronous, all, baselines"),
    (["experiment", "--benchmark", "brannin", "--experiment-tag", "t"], "unknown benchmark 'brannin' (did you mean"),
    (["experiment", "--preset", "nope"], "unknown preset 'nope'; known presets: lcbench-baselines"),
    (["experiment", "--benchmark", "branin", "--backend", "ray", "--experiment-tag", "t"],
     "benchmark 'branin' is simulated: it runs on the simulator backend, not ray; to run simulations on a Ray "
     "cluster, use --launch-on-cluster"),
    (["run", "--benchmark", "branin", "--backend", "ray"],
     "benchmark 'branin' is simulated: run it with --backend simulator"),
    (["experiment", "--benchmark", "branin", "--method", "RS", "--benchmark-arg", "workers=2",
      "--experiment-tag", "t"], "benchmark 'branin' (simulated) has no field(s) workers; --benchmark-arg takes:"),
    (["experiment", "--benchmark", "branin", "--method", "RS", "--method-arg", "RS:bogus=1", "--experiment-tag", "t"],
     "method 'RS' does not take option(s) bogus"),
    (["experiment", "--benchmark", "branin", "--benchmark-module", "missing.py", "--experiment-tag", "t"],
     "benchmark module file 'missing.py' does not exist"),
    (["report", "--experiment-tag", "nope"], "no experiment tag 'nope' under"),
    (["report"], "an experiment tag is needed"),
    (["plot", "--experiment-tag", "old-tag", "--benchmark", "hartmann6"], "'hartmann6'"),
])
def test_grid_user_errors_list_what_exists(empty_root, capsys, args, message):
    extra = ["--results-root", str(empty_root)] if args[0] in ("experiment", "report", "plot") else []
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    if args[:3] == ["report", "--experiment-tag", "nope"]:
        assert "old-tag" in err  # the tags that exist
    if args[0] == "plot":
        assert "branin" in err  # the benchmarks that exist


def test_run_overrides_benchmark_defaults_from_the_command_line(tmp_path):
    exp = tmp_path / "exp"
    assert main(["run", "--benchmark", "branin", "--benchmark-arg", "fidelities=[1,3,9,27]", "--benchmark-arg",
                 "n_workers=3", "--method", "ASHA", "--max-wallclock-time", "300", "--experiment-dir", str(exp),
                 "--no-progress"]) == 0
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["n_workers"] == 3 and meta["run_spec"]["benchmark_args"] == {"fidelities": [1, 3, 9, 27],
                                                                            "n_workers": 3}
    epochs = {json.loads(line)["result"]["epoch"] for line in (exp / "events.jsonl").read_text().splitlines()
              if '"event":"result"' in line}
    assert epochs == {1, 3, 9, 27}
    # resume rebuilds the same simulated benchmark (fidelity subset) from the stored spec
    resumed = cli("resume", str(exp), "--max-wallclock-time", "400", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    epochs = {json.loads(line)["result"]["epoch"] for line in (exp / "events.jsonl").read_text().splitlines()
              if '"event":"result"' in line}
    assert epochs == {1, 3, 9, 27}


def test_experiment_report_and_plot_of_a_grid(tmp_path, monkeypatch):
    root = tmp_path / "results"
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "--benchmark", "branin", "hartmann6", "--method", "RS,ASHA", "--num-seeds", "2",
                 "--start-seed", "3", "--n-workers", "2", "--scale-max-wallclock-time", "--experiment-tag", "small",
                 "--results-root", str(root), "--no-progress"]) == 0
    runs = sorted(str(p.relative_to(root / "small")) for p in (root / "small").glob("*/*/*"))
    assert runs == [f"{b}/{m}/{s}" for b in ("branin", "hartmann6") for m in ("ASHA", "RS") for s in (3, 4)]
    meta = json.loads((root / "small" / "branin" / "RS" / "3" / "metadata.json").read_text())
    assert meta["n_workers"] == 2 and meta["stop"]["max_wallclock_time"] == 1200.0  # 600 s x 4 / 2 workers

    report = cli("report", "--experiment-tag", "small", "--results-root", str(root), "--output-dir",
                 str(tmp_path / "rep"))
    assert report.returncode == 0, report.stderr
    assert "# Experiment `small`" in report.stdout and "| ASHA |" in report.stdout and "## hartmann6" in report.stdout
    assert (tmp_path / "rep" / "report.md").read_text().strip() == report.stdout.strip()

    plot = cli("plot", "--experiment-tag", "small", "--benchmark", "branin", "--output", str(tmp_path / "p.png"),
               "--results-root", str(root))
    assert plot.returncode == 0, plot.stderr
    written = [line.split(" ", 1)[1] for line in plot.stdout.splitlines() if line.startswith("wrote ")]
    assert written and all(Path(p).stat().st_size > 1000 for p in written)
