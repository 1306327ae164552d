"""Experiment grids: benchmark definitions (user files, overrides), planning, parallel runs through
the CLI, the results layout, skip of complete and resume of interrupted experiments, crashes,
Ctrl-C and a killed grid, presets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tunebench import benchmarks as bm
from tunebench.errors import UserError
from tunebench.experiments.grid import (
    GridRequest,
    experiment_state,
    is_limit_reason,
    is_locked,
    plan_grid,
    scaled_wallclock_time,
)
from tunebench.experiments.presets import PRESETS, get_preset

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TUNEBENCH_RESULTS"}
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]


def run_dirs(root: Path, tag: str) -> list[str]:
    return sorted(str(p.relative_to(root / tag)) for p in (root / tag).glob("*/*/*") if p.is_dir())


USER_MODULE = '''
import os, signal
from tunebench.benchmarks import SimulatedBenchmark
from tunebench.experiments.presets import Preset, register_preset
from tunebench.schedulers import method, make_scheduler


def benchmark_definitions():
    return {
        "my-branin": SimulatedBenchmark(
            name="my-branin", blackbox="branin", task=None, metric="loss", mode="min", max_resource=9,
            n_workers=2, max_wallclock_time=150.0, blackbox_kwargs={"max_fidelity": 9},
            description="a user benchmark: Branin with 9 epochs"),
    }


register_preset(Preset(name="my-preset", description="mine", benchmarks=("my-branin",), methods=("RS", "ASHA"),
                       num_seeds=2, max_wallclock_time=50.0))


@method("Crashy", "random search whose seed 1 kills its process and seed 2 raises")
def crashy(config_space, *, metric, mode, resource_attr, max_resource_attr, max_t, seed):
    if seed == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if seed == 2:
        raise RuntimeError("a bug in the method")
    return make_scheduler("RS", config_space, metric=metric, mode=mode, resource_attr=resource_attr,
                          max_resource_attr=max_resource_attr, max_t=max_t, seed=seed)
'''


@pytest.fixture
def user_module(tmp_path: Path) -> Path:
    path = tmp_path / "my_benchmarks.py"
    path.write_text(textwrap.dedent(USER_MODULE))
    return path


@pytest.fixture
def clean_registry():
    """Undo what a test registers in the process-wide registries."""
    from tunebench.schedulers import METHODS

    benchmarks, methods, loaded = dict(bm._REGISTRY), dict(METHODS), dict(bm._LOADED_MODULES)
    presets = dict(PRESETS)
    yield
    PRESETS.clear()
    PRESETS.update(presets)
    bm._REGISTRY.clear()
    bm._REGISTRY.update(benchmarks)
    METHODS.clear()
    METHODS.update(methods)
    bm._LOADED_MODULES.clear()
    bm._LOADED_MODULES.update(loaded)


# -- definitions ---------------------------------------------------------------------------------


def test_definitions_check_their_fields_and_overrides_list_the_fields():
    with pytest.raises(UserError, match="mode must be 'min' or 'max'"):
        bm.SimulatedBenchmark(name="x", blackbox="branin", task=None, metric="loss", mode="low")
    with pytest.raises(UserError, match="n_workers must be an integer >= 1"):
        bm.SimulatedBenchmark(name="x", blackbox="branin", task=None, metric="loss", mode="min", n_workers=0)
    with pytest.raises(UserError, match="unknown surrogate 'svm'"):
        bm.SimulatedBenchmark(name="x", blackbox="synthetic-tabular", task=None, metric="loss", mode="min",
                              surrogate="svm")
    with pytest.raises(UserError, match="cpus_per_trial must be an integer >= 1"):
        bm.RealBenchmark(name="r", script="train.py", metric="loss", mode="min", cpus_per_trial=0)
    branin = bm.get_benchmark("branin")
    with pytest.raises(UserError, match="has no field.*n_worker.*takes: blackbox, task, metric"):
        bm.override_benchmark(branin, {"n_worker": 2})
    changed = bm.override_benchmark(branin, {"n_workers": 2, "fidelities": [27, 1, 3, 9]})
    assert changed.n_workers == 2 and changed.fidelities == (1, 3, 9, 27) and branin.n_workers == 4
    assert changed.fidelity_range == (1, 27)
    real = bm.get_benchmark("mlp_digits")
    assert real.gpus_per_trial == 1 and real.kind == "real"
    assert bm.override_benchmark(real, {"cpus_per_trial": 2}).cpus_per_trial == 2


def test_fidelity_subset_surrogate_and_elapsed_time_attr():
    sub = bm.override_benchmark(bm.get_benchmark("branin"), {"fidelities": [1, 3, 9, 27]})
    box = sub.load_blackbox()
    full = bm.get_benchmark("branin").load_blackbox()
    assert box.fidelity_values.tolist() == [1, 3, 9, 27]
    config = {"x1": 1.0, "x2": 2.0}
    np.testing.assert_allclose(box.evaluate([config])[0], full.evaluate([config], fidelities=[1, 3, 9, 27])[0])
    with pytest.raises(UserError, match="fidelity 30 is not one of"):
        bm.override_benchmark(sub, {"fidelities": [1, 30]}).load_blackbox()

    knn = bm.override_benchmark(bm.get_benchmark("synthetic-tabular"), {"surrogate": "knn"}).load_blackbox()
    from tunebench.blackboxes.surrogate import SurrogateBlackbox

    assert isinstance(knn, SurrogateBlackbox)
    with pytest.raises(UserError, match="needs a tabulated blackbox"):
        bm.override_benchmark(bm.get_benchmark("branin"), {"surrogate": "knn"}).load_blackbox()
    with pytest.raises(UserError, match="has no objective 'walltime'"):
        bm.override_benchmark(bm.get_benchmark("branin"), {"elapsed_time_attr": "walltime"}).load_blackbox()


def test_user_module_defines_benchmarks_and_methods(user_module, clean_registry):
    from tunebench.schedulers import METHODS, method_groups

    names = bm.load_benchmark_module(str(user_module))
    assert names == ["my-branin"]
    assert bm.get_benchmark("my-branin").max_resource == 9
    assert "Crashy" in METHODS and "Crashy" in method_groups()["single-fidelity"]
    assert METHODS["Crashy"].description.startswith("random search whose seed 1")
    assert bm.load_benchmark_module(str(user_module)) == names  # loaded once
    assert get_preset("my-preset").benchmarks == ("my-branin",)
    with pytest.raises(UserError, match="does not exist"):
        bm.load_benchmark_module(str(user_module.parent / "missing.py"))
    empty = user_module.parent / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(UserError, match="defines no benchmark_definitions"):
        bm.load_benchmark_module(str(empty))
    broken = user_module.parent / "broken.py"
    broken.write_text("def benchmark_definitions():\n    return {'b': 42}\n")
    with pytest.raises(UserError, match="'b' is a int, not a RealBenchmark"):
        bm.load_benchmark_module(str(broken))
    other = user_module.parent / "other.py"
    other.write_text("from tunebench.benchmarks import SimulatedBenchmark\n"
                     "def mine():\n    return [SimulatedBenchmark(name='h6', blackbox='hartmann6', task=None, "
                     "metric='loss', mode='min', max_resource=27)]\n")
    assert bm.load_benchmark_module(f"{other}:mine") == ["h6"]


def test_method_decorator_registers_and_refuses_duplicates(clean_registry):
    from tunebench.schedulers import make_scheduler, method

    @method("MyRS", defaults={"points_to_evaluate": None})
    def my_rs(config_space, *, metric, mode, resource_attr, max_resource_attr, max_t, seed, points_to_evaluate):
        """My random search.

        More text."""
        return make_scheduler("RS", config_space, metric=metric, mode=mode, seed=seed,
                              points_to_evaluate=points_to_evaluate)

    from tunebench.schedulers import METHODS

    assert METHODS["MyRS"].description == "My random search." and METHODS["MyRS"].defaults == {
        "points_to_evaluate": None}
    scheduler = make_scheduler("myrs", {"x": 1}, metric="loss", points_to_evaluate=[{"x": 1}])
    assert scheduler.suggest(0).config == {"x": 1}
    with pytest.raises(ValueError, match="already registered"):
        method("MyRS")(my_rs)


# -- planning ------------------------------------------------------------------------------------


def test_limit_reasons_and_scaling():
    assert is_limit_reason("max_wallclock_time=600s reached") and is_limit_reason("max_trials=5 reached")
    assert is_limit_reason("no more trials to run") and is_limit_reason("metric_threshold=0.1 reached")
    assert not is_limit_reason("interrupted") and not is_limit_reason("error: RuntimeError: x")
    assert not is_limit_reason("too many failures") and not is_limit_reason(None)
    assert scaled_wallclock_time(600.0, 4, 2) == 1200.0
    assert scaled_wallclock_time(600.0, 4, 1) == 2400.0
    assert scaled_wallclock_time(600.0, 4, 8) == 600.0


def test_plan_scales_the_default_budget_with_fewer_workers(tmp_path):
    def budget(**kw):
        request = GridRequest(benchmarks=["branin"], methods=["rs"], seeds=[0], tag="t", results_root=tmp_path, **kw)
        (job,) = plan_grid(request)
        assert job.method == "RS" and job.action == "start"
        assert job.path == tmp_path / "t" / "branin" / "RS" / "0"
        return job.spec.max_wallclock_time, job.spec.n_workers

    assert budget() == (600.0, 4)
    assert budget(n_workers=2) == (600.0, 2)
    assert budget(n_workers=2, scale_max_wallclock_time=True) == (1200.0, 2)
    assert budget(n_workers=8, scale_max_wallclock_time=True) == (600.0, 8)
    assert budget(n_workers=1, scale_max_wallclock_time=True, max_wallclock_time=100.0) == (100.0, 1)


def test_plan_method_options_per_method_and_for_all(tmp_path):
    request = GridRequest(benchmarks=["branin"], methods=["ASHA", "BO", "HB"], seeds=[0, 1], tag="t",
                          results_root=tmp_path, method_args={"*": {"reduction_factor": 2},
                                                              "hb": {"grace_period": 3}})
    jobs = plan_grid(request)
    assert [j.key for j in jobs[:3]] == ["branin/ASHA/0", "branin/BO/0", "branin/HB/0"]  # seed-major
    kwargs = {j.method: j.spec.method_kwargs for j in jobs}
    assert kwargs == {"ASHA": {"reduction_factor": 2}, "BO": {}, "HB": {"reduction_factor": 2, "grace_period": 3}}
    with pytest.raises(UserError, match="no method of this grid .* takes option 'bogus'"):
        plan_grid(GridRequest(benchmarks=["branin"], methods=["ASHA"], seeds=[0], tag="t", results_root=tmp_path,
                              method_args={"*": {"bogus": 1}}))
    with pytest.raises(UserError, match="does not take option"):
        plan_grid(GridRequest(benchmarks=["branin"], methods=["ASHA"], seeds=[0], tag="t", results_root=tmp_path,
                              method_args={"ASHA": {"bogus": 1}}))


def test_plan_errors_list_what_exists(tmp_path):
    def plan(**kw):
        args = {"benchmarks": ["branin"], "methods": ["RS"], "seeds": [0], "tag": "t", "results_root": tmp_path}
        return plan_grid(GridRequest(**{**args, **kw}))

    with pytest.raises(UserError, match="unknown method 'Nope'; known methods: RS, Grid, ASHA.*groups"):
        plan(methods=["Nope"])
    with pytest.raises(UserError, match="unknown benchmark 'nope'.*known benchmarks"):
        plan(benchmarks=["nope"])
    with pytest.raises(UserError, match="experiment tag is needed"):
        plan(tag="")
    with pytest.raises(UserError, match="not a plain folder name"):
        plan(tag="a/b")
    with pytest.raises(UserError, match="is simulated: it runs on the simulator backend, not ray; .*--launch-on-clu"):
        plan(backend="ray")
    with pytest.raises(UserError, match="is simulated: it runs on the simulator backend, not local"):
        plan(backend="local")
    with pytest.raises(UserError, match="is real: it runs on the local backend, not simulator"):
        plan(benchmarks=["mlp_digits"], backend="simulator")


def test_experiment_state_reads_the_end_of_the_log(tmp_path):
    exp = tmp_path / "e"
    assert experiment_state(exp) == ("missing", None)
    exp.mkdir()
    (exp / "metadata.json").write_text("{}")
    (exp / "events.jsonl").write_text('{"event":"session_start"}\n')
    assert experiment_state(exp) == ("interrupted", None)
    (exp / "events.jsonl").write_text('{"event":"experiment_end","reason":"max_trials=3 reached"}\n')
    assert experiment_state(exp) == ("complete", "max_trials=3 reached")
    (exp / "events.jsonl").write_text('{"event":"experiment_end","reason":"interrupted"}\n')
    assert experiment_state(exp) == ("interrupted", "interrupted")
    (exp / "events.jsonl").write_text('{"event":"experiment_end","reason":"max_trials=3 reached"}\n{"eve')
    assert experiment_state(exp) == ("interrupted", None)  # torn: someone wrote after the end


# -- grids through the command line ---------------------------------------------------------------


def test_grid_end_to_end_in_parallel_then_skip_then_resume(tmp_path):
    root = tmp_path / "results"
    args = ["experiment", "--benchmark", "branin", "--method", "RS", "ASHA", "--num-seeds", "2", "--parallel", "2",
            "--max-wallclock-time", "200", "--experiment-tag", "e2e", "--results-root", str(root), "--no-progress"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "4 experiments: 4 run, 0 resumed, 0 already complete, 0 failed" in first.stdout
    assert run_dirs(root, "e2e") == ["branin/ASHA/0", "branin/ASHA/1", "branin/RS/0", "branin/RS/1"]
    for rel in run_dirs(root, "e2e"):
        path = root / "e2e" / rel
        meta = json.loads((path / "metadata.json").read_text())
        bench, method, seed = rel.split("/")
        assert (meta["benchmark"], meta["method"], meta["seed"]) == (bench, method, int(seed))
        assert meta["experiment_tag"] == "e2e" and meta["run_spec"]["max_wallclock_time"] == 200
        log = events(path)
        assert log[-1]["event"] == "experiment_end" and log[-1]["reason"] == "max_wallclock_time=200s reached"
        assert log[-2]["time"] <= 200 and not is_locked(path)
    # seeds differ, methods differ
    configs = {rel: events(root / "e2e" / rel)[1]["config"] for rel in run_dirs(root, "e2e")}
    assert configs["branin/RS/0"] != configs["branin/RS/1"]

    before = {rel: (root / "e2e" / rel / "events.jsonl").read_bytes() for rel in run_dirs(root, "e2e")}
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert "4 experiments: 0 run, 0 resumed, 4 already complete" in again.stdout
    assert before == {rel: (root / "e2e" / rel / "events.jsonl").read_bytes() for rel in run_dirs(root, "e2e")}

    # an interrupted experiment (its end cut off, as if killed) and a larger budget for all
    cut = root / "e2e" / "branin" / "ASHA" / "1" / "events.jsonl"
    lines = cut.read_bytes().splitlines(keepends=True)
    kept = b"".join(lines[: len(lines) // 2])
    cut.write_bytes(kept)
    dry = cli(*args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "resume branin/ASHA/1 (interrupted (no end in its log))" in dry.stdout
    assert "skip   branin/RS/0 (complete (max_wallclock_time=200s reached))" in dry.stdout
    third = cli(*args)
    assert third.returncode == 0, third.stderr
    assert "4 experiments: 0 run, 1 resumed, 3 already complete" in third.stdout
    resumed = events(root / "e2e" / "branin" / "ASHA" / "1")
    assert cut.read_bytes().startswith(kept)  # continued, not restarted
    starts = [e for e in resumed if e["event"] == "session_start"]
    assert [s["resumed"] for s in starts] == [False, True]
    assert resumed[-1]["reason"] == "max_wallclock_time=200s reached"
    for rel in ("branin/ASHA/0", "branin/RS/0", "branin/RS/1"):
        assert (root / "e2e" / rel / "events.jsonl").read_bytes() == before[rel]

    # a larger budget: every experiment continues from where it ended
    longer = cli(*[a if a != "200" else "300" for a in args])
    assert longer.returncode == 0, longer.stderr
    assert "4 experiments: 0 run, 4 resumed, 0 already complete" in longer.stdout
    log = events(root / "e2e" / "branin" / "RS" / "0")
    assert (root / "e2e" / "branin" / "RS" / "0" / "events.jsonl").read_bytes().startswith(before["branin/RS/0"])
    assert log[-1]["reason"] == "max_wallclock_time=300s reached" and log[-2]["time"] > 200

    # other settings under the same tag are refused
    other = cli(*args, "--n-workers", "2")
    assert other.returncode == 2 and "was run with other settings: n_workers=4 (asked: 2)" in other.stderr


def test_user_benchmark_file_overrides_and_crashing_experiments(tmp_path, user_module):
    """A user file's benchmark and method run in the workers; one experiment killed by a signal
    and one raising fail alone (the others complete), with their error logs."""
    root = tmp_path / "results"
    run = cli("experiment", "--benchmark-module", str(user_module), "--benchmark", "my-branin",
              "--method", "Crashy", "RS", "--num-seeds", "3", "--parallel", "2", "--experiment-tag", "user",
              "--results-root", str(root), "--benchmark-arg", "max_wallclock_time=100", "--no-progress")
    assert run.returncode == 1, run.stderr
    assert "6 experiments: 4 run, 0 resumed, 0 already complete, 2 failed" in run.stdout
    assert "failed my-branin/Crashy/1: worker process killed by signal 9" in run.stdout
    assert "failed my-branin/Crashy/2: RuntimeError: a bug in the method" in run.stdout
    for seed in (0, 1, 2):
        meta = json.loads((root / "user" / "my-branin" / "RS" / str(seed) / "metadata.json").read_text())
        assert meta["run_spec"]["benchmark_modules"] == [str(user_module.resolve())]
        assert meta["run_spec"]["benchmark_args"] == {"max_wallclock_time": 100}
        assert meta["run_spec"]["max_wallclock_time"] == 100 and meta["run_spec"]["n_workers"] == 2
        log = events(root / "user" / "my-branin" / "RS" / str(seed))
        assert {e["result"]["epoch"] for e in log if e["event"] == "result"} <= set(range(1, 10))
    assert experiment_state(root / "user" / "my-branin" / "Crashy" / "0")[0] == "complete"
    assert "killed by signal 9" in (root / "user" / "my-branin" / "Crashy" / "1" / "error.log").read_text()
    error = (root / "user" / "my-branin" / "Crashy" / "2" / "error.log").read_text()
    assert "Traceback" in error and "RuntimeError: a bug in the method" in error
    # resume by `tunebench resume` works from the folder alone (the user file is in the run spec)
    res = cli("resume", str(root / "user" / "my-branin" / "RS" / "0"), "--max-wallclock-time", "120",
              "--no-progress")
    assert res.returncode == 0, res.stderr
    assert events(root / "user" / "my-branin" / "RS" / "0")[-1]["reason"] == "max_wallclock_time=120s reached"


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _start_long_grid(root: Path, tag: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TUNEBENCH_RESULTS"}
    return subprocess.Popen(
        [sys.executable, "-m", "tunebench", "experiment", "--benchmark", "branin", "--method", "RS", "--num-seeds",
         "2", "--parallel", "1", "--max-wallclock-time", "1e9", "--experiment-tag", tag, "--results-root",
         str(root), "--no-progress"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _resume_short(root: Path, tag: str) -> subprocess.CompletedProcess:
    # a budget smaller than what already ran: the resumed experiment ends at once
    return cli("experiment", "--benchmark", "branin", "--method", "RS", "--num-seeds", "2", "--parallel", "1",
               "--max-wallclock-time", "1", "--experiment-tag", tag, "--results-root", str(root), "--no-progress")


def test_ctrl_c_interrupts_cleanly_and_the_grid_resumes(tmp_path):
    root = tmp_path / "results"
    proc = _start_long_grid(root, "int")
    exp = root / "int" / "branin" / "RS" / "0"
    _wait_for(lambda: (exp / "events.jsonl").is_file() and is_locked(exp))
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert events(exp)[-1] == {**events(exp)[-1], "event": "experiment_end", "reason": "interrupted"}
    assert not (root / "int" / "branin" / "RS" / "1").exists()  # never started
    head = (exp / "events.jsonl").read_bytes()
    again = _resume_short(root, "int")
    assert again.returncode == 0, again.stderr
    assert "2 experiments: 1 run, 1 resumed, 0 already complete" in again.stdout
    assert (exp / "events.jsonl").read_bytes().startswith(head)
    assert [e["resumed"] for e in events(exp) if e["event"] == "session_start"] == [False, True]


def test_a_killed_grid_leaves_its_experiment_resumable(tmp_path):
    """SIGKILL of the grid process: its worker sees its stdin close and ends the experiment cleanly."""
    root = tmp_path / "results"
    proc = _start_long_grid(root, "kill")
    exp = root / "kill" / "branin" / "RS" / "0"
    _wait_for(lambda: (exp / "events.jsonl").is_file() and is_locked(exp))
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=30)
    _wait_for(lambda: not is_locked(exp), timeout=30)  # the orphaned worker let go
    assert experiment_state(exp) == ("interrupted", "interrupted")
    again = _resume_short(root, "kill")
    assert again.returncode == 0, again.stderr
    assert "1 resumed" in again.stdout and experiment_state(exp)[0] == "complete"


def test_a_running_experiment_is_left_alone(tmp_path):
    from tunebench.experiments.grid import experiment_lock

    root = tmp_path / "results"
    first = cli("experiment", "--benchmark", "branin", "--method", "RS", "--max-wallclock-time", "50",
                "--experiment-tag", "busy", "--results-root", str(root), "--no-progress")
    assert first.returncode == 0, first.stderr
    exp = root / "busy" / "branin" / "RS" / "0"
    log = exp / "events.jsonl"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-1]))  # no end: "interrupted"
    with experiment_lock(exp) as locked:
        assert locked
        busy = cli("experiment", "--benchmark", "branin", "--method", "RS", "--max-wallclock-time", "50",
                   "--experiment-tag", "busy", "--results-root", str(root), "--no-progress")
    assert busy.returncode == 1 and "1 running elsewhere" in busy.stdout


# -- presets -------------------------------------------------------------------------------------


def test_presets_are_well_formed():
    from tunebench.schedulers import METHODS

    assert {"lcbench-baselines", "synthetic-quick", "synthetic-baselines"} <= set(PRESETS)
    lc = get_preset("lcbench-baselines")
    assert lc.resolved_methods() == ["BO", "ASHA", "MOBSTER", "DyHPO", "SyncHB", "SyncMOBSTER"]
    assert lc.num_seeds == 10 and lc.n_workers == 4
    for preset in PRESETS.values():
        assert all(m in METHODS for m in preset.resolved_methods())
        for name in preset.benchmarks:
            bm.get_benchmark(name)
    with pytest.raises(UserError, match="unknown preset 'nope'; known presets: lcbench-baselines"):
        get_preset("nope")


def test_fast_preset_end_to_end(tmp_path):
    root = tmp_path / "results"
    run = cli("experiment", "--preset", "synthetic-quick", "--results-root", str(root), "--no-progress")
    assert run.returncode == 0, run.stderr
    preset = get_preset("synthetic-quick")
    expected = sorted(f"{b}/{m}/{s}" for b in preset.benchmarks for m in preset.methods
                      for s in range(preset.num_seeds))
    assert run_dirs(root, "synthetic-quick") == expected
    assert all(experiment_state(root / "synthetic-quick" / rel)[0] == "complete" for rel in expected)


def test_lcbench_preset_plans_with_data(tmp_path, shared_data):
    request = GridRequest(benchmarks=list(get_preset("lcbench-baselines").benchmarks),
                          methods=get_preset("lcbench-baselines").resolved_methods(), seeds=list(range(10)),
                          tag="lc", results_root=tmp_path, n_workers=4, data_dir=str(shared_data / "yahpo"))
    jobs = plan_grid(request)
    assert len(jobs) == 120 and {j.spec.max_wallclock_time for j in jobs} == {7200.0}
    assert {j.spec.max_resource for j in jobs} == {52} and {j.action for j in jobs} == {"start"}


def test_a_user_preset_from_a_module(tmp_path, user_module, clean_registry, capsys):
    from tunebench.cli import main

    assert main(["experiment", "--benchmark-module", str(user_module), "--preset", "my-preset", "--results-root",
                 str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "experiment grid 'my-preset': 1 benchmark(s) x 2 method(s) x 2 seed(s)" in out
    assert "start  my-branin/ASHA/1" in out
