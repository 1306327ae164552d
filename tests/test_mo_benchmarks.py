"""Multi-objective and constrained benchmarks: definitions with several metrics and constraints
(normalized, copied into the run spec, one-line errors when bad), the lcbench problems
``lcbench-<task>-mo`` / ``-mo3`` / ``-constrained`` and ``zdt1-mo`` & co., their listing, runs on the
simulator, and the presets ``mo-lcbench`` / ``constrained-lcbench`` through ``tunebench experiment``.

The lcbench tests need the YAHPO data ($TUNEBENCH_DATA/yahpo) and onnxruntime; they skip with the
reason when either is absent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import tunebench.benchmarks as bm
from tunebench.benchmarks.builtin import LCBENCH_BOUND_SAMPLE, LCBENCH_TIME_BOUNDS, lcbench_time_bound
from tunebench.blackboxes.yahpo import LCBENCH_INSTANCES, development_tasks_among
from tunebench.cli import main
from tunebench.errors import UserError
from tunebench.experiments.presets import MO_LCBENCH_TASKS, get_preset
from tunebench.launch import spec_from_benchmark
from tunebench.space import sample_configs
from tunebench.store import load_experiment
from tunebench.types import Constraint, Objectives

REPO = Path(__file__).resolve().parent.parent
TASK = MO_LCBENCH_TASKS[0]


@pytest.fixture
def lcbench_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data folder holding yahpo/lcbench (skips without it or onnxruntime); HOME and the
    cache in a temporary folder, where onnxruntime writes its telemetry id."""
    data = Path(os.environ.get("TUNEBENCH_DATA", REPO.parent / "shared" / "data"))
    if not (data / "yahpo" / "lcbench" / "model.onnx").is_file():
        pytest.skip(f"YAHPO lcbench data is absent: no {data}/yahpo/lcbench/model.onnx (set TUNEBENCH_DATA to "
                    "the folder holding yahpo/)")
    pytest.importorskip("onnxruntime", reason="lcbench needs the yahpo extra (onnxruntime)")
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("TUNEBENCH_DATA", str(data))
    return data


@pytest.fixture
def clean_registry():
    """Undo what a test registers in the benchmark registry."""
    benchmarks, loaded = dict(bm._REGISTRY), dict(bm._LOADED_MODULES)
    yield
    bm._REGISTRY.clear()
    bm._REGISTRY.update(benchmarks)
    bm._LOADED_MODULES.clear()
    bm._LOADED_MODULES.update(loaded)


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI in-process expecting a user error; returns its one line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tunebench: error: ") and "Traceback" not in err
    return err


# -- definitions ---------------------------------------------------------------------------------


def test_several_metrics_and_constraints_are_normalized_and_round_trip():
    bench = bm.SimulatedBenchmark(name="zmo", blackbox="zdt1", task=None, metric=["f1", "f2"], mode="min",
                                  max_resource=27, constraints=["time <= 3", "f2>=0.1"])
    assert (bench.metric, bench.mode) == (("f1", "f2"), ("min", "min"))
    assert bench.objectives == Objectives(("f1", "f2"), ("min", "min"))
    assert bench.constraints == ("time<=3.0", "f2>=0.1")
    assert bench.constraint_bounds == (Constraint("time", "<=", 3.0), Constraint("f2", ">=", 0.1))
    assert bench.objective_summary == "metrics f1 (min), f2 (min) subject to time <= 3, f2 >= 0.1"
    # a definition built from its own fields is the same (what overrides and copies do)
    again = bm.override_benchmark(bench, {"metric": list(bench.metric), "constraints": list(bench.constraints)})
    assert again == bench
    # one metric in a list is that metric; a single constraint text is a tuple of one
    one = bm.override_benchmark(bench, {"metric": ["f1"], "mode": ["max"], "constraints": "time<=2"})
    assert (one.metric, one.mode, one.constraints) == ("f1", "max", ("time<=2.0",))
    assert one.objective_summary == "metric f1 (max) subject to time <= 2"
    real = bm.RealBenchmark(name="r", script="train.py", metric=("acc", "latency"), mode=("max", "min"),
                            constraints=("latency<=20",))
    assert (real.metric, real.mode, real.constraints) == (("acc", "latency"), ("max", "min"), ("latency<=20.0",))
    assert real.objectives.signs == (-1.0, 1.0)


def test_spec_from_benchmark_copies_metrics_modes_and_constraints():
    spec = spec_from_benchmark("zdt1-mo")
    assert (spec.metric, spec.mode, spec.constraints, spec.method) == (["f1", "f2"], ["min", "min"], [], "MOASHA")
    assert spec.objectives == Objectives(("f1", "f2"), ("min", "min"))
    spec = spec_from_benchmark("dtlz2-mo", benchmark_args={"constraints": ["time<=3"]})
    assert (spec.metric, spec.constraints) == (["f1", "f2", "f3"], ["time<=3.0"])
    assert spec.benchmark_args == {"constraints": ["time<=3"]}
    # the single-objective benchmarks are as they were
    spec = spec_from_benchmark("zdt1")
    assert (spec.metric, spec.mode, spec.constraints) == ("f1", "min", [])


def test_a_real_benchmark_passes_its_metrics_and_constraints_to_the_spec(tmp_path: Path, clean_registry):
    module = tmp_path / "mo_defs.py"
    module.write_text(
        "from tunebench.benchmarks import RealBenchmark\n"
        "from tunebench.space import uniform\n"
        "def benchmark_definitions():\n"
        "    return [RealBenchmark(name='mo-real', script='train.py', metric=['acc', 'latency'],\n"
        "                          mode=['max', 'min'], config_space={'x': uniform(0, 1)},\n"
        "                          constraints=['latency<=20'])]\n")
    spec = spec_from_benchmark("mo-real", benchmark_modules=[str(module)])
    assert (spec.metric, spec.mode, spec.constraints) == (["acc", "latency"], ["max", "min"], ["latency<=20.0"])


@pytest.mark.parametrize("fields, message", [
    ({"metric": ["f1", "f1"]}, "benchmark 'bad': metric 'f1' is given twice"),
    ({"metric": ["f1", "f2"], "mode": ["min", "min", "max"]}, "benchmark 'bad': 2 metrics (f1, f2) but 3 modes"),
    ({"metric": ["f1", "f2"], "mode": ["min", "low"]}, "benchmark 'bad': mode must be 'min' or 'max', got 'low'"),
    ({"metric": []}, "benchmark 'bad': metric must be a non-empty string or a list of them, got []"),
    ({"metric": ["f1", 2]}, "benchmark 'bad': metric must be a non-empty string or a list of them"),
    ({"constraints": ["time<=fast"]}, "benchmark 'bad': constraint on 'time': the bound 'fast' is not a finite number"),
    ({"constraints": ["time"]}, "benchmark 'bad': cannot read the constraint 'time'"),
    ({"constraints": ["time<=1", "time<=2"]}, "benchmark 'bad': two constraints 'time <= ...'"),
])
def test_bad_metrics_and_constraints_are_one_line_errors(fields: dict, message: str):
    args = {"metric": "f1", "mode": "min", **fields}
    with pytest.raises(UserError) as bad:
        bm.SimulatedBenchmark(name="bad", blackbox="zdt1", task=None, **args)
    assert message in str(bad.value) and "\n" not in str(bad.value)


def test_bad_benchmark_constraints_on_the_command_line_are_one_line_errors(capsys, tmp_path: Path):
    err = one_line_error(capsys, ["run", "--benchmark", "zdt1-mo", "--benchmark-arg", 'constraints=["latency<=3"]',
                                  "--experiment-dir", str(tmp_path / "x")])
    assert "has no objective 'latency'" in err and "f1, f2, time" in err
    err = one_line_error(capsys, ["run", "--benchmark", "zdt1-mo", "--benchmark-arg", 'metric=["f1", "f1"]',
                                  "--experiment-dir", str(tmp_path / "y")])
    assert "benchmark 'zdt1-mo': metric 'f1' is given twice" in err
    err = one_line_error(capsys, ["run", "--benchmark", "lcbench-1-mo"])
    assert "lcbench-<...> takes one of: 126025, 126026" in err
    assert "(each also as <...>-cond, <...>-constrained, <...>-flat, <...>-mo, <...>-mo3)" in err


# -- the built-in problems -------------------------------------------------------------------------


def test_every_lcbench_task_has_its_multi_objective_and_constrained_problems():
    assert set(LCBENCH_TIME_BOUNDS) == set(LCBENCH_INSTANCES)
    for task in LCBENCH_INSTANCES:
        base = bm.get_benchmark(f"lcbench-{task}")
        mo, mo3 = bm.get_benchmark(f"lcbench-{task}-mo"), bm.get_benchmark(f"lcbench-{task}-mo3")
        constrained = bm.get_benchmark(f"lcbench-{task}-constrained")
        assert (mo.metric, mo.mode, mo.method) == (("val_accuracy", "time"), ("max", "min"), "MOASHA")
        assert (mo3.metric, mo3.mode) == (("val_accuracy", "time", "val_cross_entropy"), ("max", "min", "min"))
        assert (constrained.metric, constrained.mode) == ("val_accuracy", "max")
        assert constrained.constraint_bounds == (Constraint("time", "<=", LCBENCH_TIME_BOUNDS[task]),)
        for variant in (mo, mo3, constrained):  # the same task, fidelities and defaults as lcbench-<task>
            assert (variant.blackbox, variant.task, variant.max_resource, variant.n_workers,
                    variant.max_wallclock_time) == (base.blackbox, base.task, base.max_resource, base.n_workers,
                                                    base.max_wallclock_time)
    for family, n in (("zdt1", 2), ("zdt2", 2), ("dtlz2", 3)):
        mo = bm.get_benchmark(f"{family}-mo")
        assert (mo.metric, mo.mode) == (tuple(f"f{i}" for i in range(1, n + 1)), ("min",) * n)
        assert mo.load_blackbox().objectives[:n] == mo.metric


def test_list_shows_several_metrics_and_constraints(capsys):
    assert main(["list", "--benchmarks"]) == 0
    lines = {line.split(":", 1)[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    bound = LCBENCH_TIME_BOUNDS[TASK]
    assert "[simulator; metrics val_accuracy (max), time (min), epoch 1-52" in lines[f"lcbench-{TASK}-mo"]
    assert "metrics val_accuracy (max), time (min), val_cross_entropy (min)," in lines[f"lcbench-{TASK}-mo3"]
    assert f"metric val_accuracy (max) subject to time <= {bound:g}," in lines[f"lcbench-{TASK}-constrained"]
    assert "[simulator; metrics f1 (min), f2 (min), f3 (min)," in lines["dtlz2-mo"]
    assert "[simulator; metric loss (min), epoch 1-27" in lines["branin"]


def test_presets_use_tasks_outside_development():
    for name, suffix in (("mo-lcbench", "-mo"), ("constrained-lcbench", "-constrained")):
        preset = get_preset(name)
        assert preset.benchmarks == tuple(f"lcbench-{t}{suffix}" for t in MO_LCBENCH_TASKS)
        assert (preset.num_seeds, preset.n_workers, preset.max_wallclock_time) == (10, 4, 7200.0)
        for b in preset.benchmarks:
            bm.get_benchmark(b)
    assert len(MO_LCBENCH_TASKS) == 3 and not development_tasks_among(MO_LCBENCH_TASKS)
    assert get_preset("mo-lcbench").methods == ("RS", "MOASHA", "NSGA2", "MOREA", "MOBO", "MOASHA-BO")
    assert get_preset("constrained-lcbench").methods == ("RS", "BO", "BO-penalty", "CBO")


def test_zdt1_mo_runs_with_moasha_without_data(tmp_path: Path, capsys):
    exp = tmp_path / "exp"
    assert main(["run", "--benchmark", "zdt1-mo", "--max-trials", "30", "--experiment-dir", str(exp),
                 "--no-progress"]) == 0
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["method"] == "MOASHA" and meta["objectives"] == {"metric": ["f1", "f2"], "mode": ["min", "min"]}
    df = load_experiment(exp).results
    assert df.trial_id.nunique() == 30 and df[["f1", "f2"]].notna().all().all()


# -- lcbench (needs the data) ---------------------------------------------------------------------


def test_lcbench_mo_runs_end_to_end_with_moasha(lcbench_data: Path, tmp_path: Path, capsys):
    exp = tmp_path / "exp"
    assert main(["run", "--benchmark", f"lcbench-{TASK}-mo", "--method", "MOASHA", "--max-wallclock-time", "900",
                 "--experiment-dir", str(exp), "--no-progress"]) == 0
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["objectives"] == {"metric": ["val_accuracy", "time"], "mode": ["max", "min"]}
    assert meta["run_spec"]["metric"] == ["val_accuracy", "time"] and meta["run_spec"]["constraints"] == []
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    decisions = {e["decision"] for e in events if e.get("event") == "result"}
    assert "STOP" in decisions  # MOASHA stopped some trials at a rung
    df = load_experiment(exp).results
    assert df.val_accuracy.between(0, 100).all() and (df.time > 0).all()
    assert df.epoch.max() == 52 and df.epoch.min() == 1


@pytest.mark.parametrize("task", [*MO_LCBENCH_TASKS, "189873"])
def test_the_constrained_bound_cuts_about_half_the_configurations(lcbench_data: Path, task: str):
    bench = bm.get_benchmark(f"lcbench-{task}-constrained")
    blackbox = bench.load_blackbox()
    (constraint,) = bench.constraint_bounds
    # configurations other than those the bound was computed from
    configs = sample_configs(blackbox.config_space, np.random.default_rng(LCBENCH_BOUND_SAMPLE[1] + 1), 600)
    time_at_end = blackbox.evaluate(configs, fidelities=[52])[:, 0, blackbox.objective_index("time")]
    infeasible = np.mean([not constraint.is_met({"time": t}) for t in time_at_end])
    assert 0.3 <= infeasible <= 0.7


@pytest.mark.parametrize("task", MO_LCBENCH_TASKS[:2])
def test_the_kept_bounds_are_what_the_blackbox_gives(lcbench_data: Path, task: str):
    assert LCBENCH_TIME_BOUNDS[task] == pytest.approx(lcbench_time_bound(task), abs=0.005)


def test_the_mo_lcbench_preset_runs_and_records_objectives_and_constraints(lcbench_data: Path, tmp_path: Path,
                                                                          capsys):
    root = tmp_path / "results"
    common = ["--num-seeds", "1", "--max-wallclock-time", "400", "--results-root", str(root), "--no-progress"]
    assert main(["experiment", "--preset", "mo-lcbench", "--benchmark", f"lcbench-{TASK}-mo",
                 "--method", "RS,MOASHA", *common]) == 0
    out = capsys.readouterr().out
    assert "2 experiments: 2 run" in out and "best val_accuracy " in out
    for method in ("RS", "MOASHA"):
        folder = root / "mo-lcbench" / f"lcbench-{TASK}-mo" / method / "0"
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["objectives"] == {"metric": ["val_accuracy", "time"], "mode": ["max", "min"]}
        assert meta["run_spec"]["constraints"] == [] and "constraints" not in meta
        assert meta["experiment_tag"] == "mo-lcbench" and meta["method"] == method
        assert load_experiment(folder).results[["val_accuracy", "time"]].notna().all().all()
    # the constrained preset: the bound in the metadata, the best counted among feasible results
    assert main(["experiment", "--preset", "constrained-lcbench", "--benchmark", f"lcbench-{TASK}-constrained",
                 "--method", "RS", *common]) == 0
    out = capsys.readouterr().out
    assert "best feasible " in out
    folder = root / "constrained-lcbench" / f"lcbench-{TASK}-constrained" / "RS" / "0"
    meta = json.loads((folder / "metadata.json").read_text())
    bound = LCBENCH_TIME_BOUNDS[TASK]
    assert meta["constraints"] == [f"time<={bound!r}"] == meta["run_spec"]["constraints"]
    assert meta["metric"] == "val_accuracy" and "objectives" not in meta
    # asking for the same grid with another bound is refused: a tag names one set of settings
    err = one_line_error(capsys, ["experiment", "--preset", "constrained-lcbench", "--benchmark",
                                  f"lcbench-{TASK}-constrained", "--method", "RS", "--benchmark-arg",
                                  'constraints=["time<=10"]', *common])
    assert "was run with other settings" in err and "constraints=" in err


def test_metric_of_a_multi_objective_benchmark_keeps_the_benchmarks_mode_for_it(lcbench_data: Path, tmp_path,
                                                                               capsys):
    # lcbench-<task>-mo maximizes val_accuracy and minimizes time: --metric without --mode keeps each one's mode;
    # a metric the benchmark does not optimize takes its first mode
    from tunebench.cli import main

    assert main(["run", "--benchmark", "lcbench-167149-mo", "--metric", "time", "val_accuracy",
                 "val_cross_entropy", "--method", "RS", "--max-trials", "3", "--experiment-dir", str(tmp_path / "e"),
                 "--no-progress"]) == 0
    meta = json.loads((tmp_path / "e" / "metadata.json").read_text())
    assert meta["objectives"] == {"metric": ["time", "val_accuracy", "val_cross_entropy"],
                                  "mode": ["min", "max", "max"]}
    assert "Pareto front (time (min), val_accuracy (max), val_cross_entropy (max))" in capsys.readouterr().out
