"""Experiment grids on a Ray cluster (``tunebench experiment --launch-on-cluster`` / ``--backend ray``)
on a real multi-node cluster on this machine: experiments as tasks on both worker nodes, folders
shipped back under the results root, skip and resume, Ctrl-C, real trials as Ray actors, a node
dying under an experiment, and bad input caught before anything is launched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray grid tests need Ray: pip install 'tunebench[ray]'")

from tunebench import benchmarks as bm  # noqa: E402
from tunebench.analysis.results import load_grid  # noqa: E402
from tunebench.cli import main  # noqa: E402
from tunebench.experiments.grid import LOCK_FILE, experiment_state  # noqa: E402
from tunebench.testing.ray_cluster import LocalRayCluster  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    """A head without CPUs (it runs no experiment) and two worker nodes of 2 CPUs, for the module."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in RAY_ENV.items():
            mp.setenv(k, v)
        with LocalRayCluster(head_cpus=0, workers={"node_a": 2, "node_b": 2}) as c:
            yield c


@pytest.fixture(autouse=True)
def ray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for k, v in RAY_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("TUNEBENCH_RESULTS", raising=False)
    yield
    ray.shutdown()  # whatever a failed test left connected


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]


def metadata(path: Path) -> dict:
    return json.loads((path / "metadata.json").read_text())


def scratch_folders(tag: str) -> list[Path]:
    """Experiment folders of ``tag`` the tasks work in (the nodes share this machine's temp dir)."""
    return sorted(Path(tempfile.gettempdir()).glob(f"tunebench-grid-*/{tag}.*"))


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def grid_cli(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TUNEBENCH_RESULTS"}
    return subprocess.Popen([sys.executable, "-m", "tunebench", "experiment", *args, "--no-progress"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_unreachable_cluster_is_a_clear_error_before_anything_is_written(tmp_path, capsys):
    root = tmp_path / "results"
    for what in (["--preset", "synthetic-quick", "--launch-on-cluster"], ["--benchmark", "mlp_digits", "--backend",
                                                                          "ray"]):
        t0 = time.monotonic()
        code = main(["experiment", *what, "--experiment-tag", "t", "--results-root", str(root), "--ray-address",
                     "127.0.0.1:1", "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "tunebench: error: cannot reach the Ray cluster at 127.0.0.1:1" in err and "--ray-address" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert time.monotonic() - t0 < 30
    exp = tmp_path / "exp"
    code = main(["run", "--benchmark", "mlp_digits", "--backend", "ray", "--ray-address", "127.0.0.1:1",
                 "--experiment-dir", str(exp), "--no-progress"])
    assert code == 2 and "cannot reach the Ray cluster at 127.0.0.1:1" in capsys.readouterr().err
    assert not root.exists() and not exp.exists()
    assert not ray.is_initialized()


def test_without_ray_the_cluster_options_say_how_to_install_it(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    root = tmp_path / "results"
    for args in (["experiment", "--preset", "synthetic-quick", "--launch-on-cluster", "--results-root", str(root)],
                 ["experiment", "--benchmark", "mlp_digits", "--backend", "ray", "--experiment-tag", "t",
                  "--results-root", str(root)],
                 ["run", "--benchmark", "mlp_digits", "--backend", "ray", "--experiment-dir", str(tmp_path / "e")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.strip() == "tunebench: error: --backend ray needs Ray: pip install 'tunebench[ray]'", err
    assert not root.exists() and not (tmp_path / "e").exists()


def test_ray_options_where_nothing_runs_on_ray_are_errors(tmp_path, capsys):
    root = tmp_path / "results"
    for args, message in (
            (["experiment", "--preset", "synthetic-quick", "--ray-address", "127.0.0.1:1", "--no-warm-pool",
              "--results-root", str(root)],
             "--ray-address, --no-warm-pool go with --launch-on-cluster or --backend ray"),
            (["run", "--benchmark", "branin", "--storage", "s3://bucket/x", "--experiment-dir", str(tmp_path / "e")],
             "--storage goes with --backend ray")):
        assert main(args) == 2
        assert capsys.readouterr().err.strip() == f"tunebench: error: {message}"
    assert not root.exists() and not (tmp_path / "e").exists()


@pytest.mark.slow
def test_run_and_resume_on_the_ray_backend_rebuild_it_from_the_metadata(cluster, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(["run", "--benchmark", "mlp_digits", "--method", "RS", "--backend", "ray", "--ray-address",
                 cluster.address, "--gpus-per-trial", "0", "--n-workers", "2", "--max-trials", "2",
                 "--max-resource", "2", "--no-warm-pool", "--experiment-dir", str(exp), "--no-progress"]) == 0
    assert "(2 workers, Ray actors)" in capsys.readouterr().out
    spec = metadata(exp)["run_spec"]
    assert (spec["backend"], spec["ray_address"], spec["warm_pool"]) == ("ray", cluster.address, False)
    assert main(["resume", str(exp), "--max-trials", "3", "--no-progress"]) == 0
    assert "resuming mlp_digits with RS (2 workers, Ray actors)" in capsys.readouterr().out
    assert experiment_state(exp) == ("complete", "max_trials=3 reached")
    assert sorted(p.name for p in (exp / "trials").iterdir()) == ["0", "1", "2"]
    assert not ray.is_initialized()


@pytest.mark.slow
def test_a_simulated_grid_runs_as_tasks_on_both_nodes_and_a_rerun_skips_it(cluster, tmp_path, capsys):
    root = tmp_path / "results"
    args = ["experiment", "--preset", "synthetic-quick", "--experiment-tag", "quick", "--results-root", str(root),
            "--launch-on-cluster", "--ray-address", cluster.address, "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 experiments: 4 to start, 0 to resume, 0 already complete; 4 at a time" in out
    assert "4 experiments: 4 run, 0 resumed, 0 already complete, 0 failed, 0 interrupted" in out
    assert "[4/4] branin/" in out
    paths = [root / "quick" / "branin" / m / str(s) for m in ("RS", "ASHA") for s in (0, 1)]
    for path in paths:
        assert experiment_state(path)[0] == "complete"
        assert not (path / LOCK_FILE).exists()
        assert sorted(p.name for p in path.parent.iterdir()) == ["0", "1"]  # nothing left of the swaps
        meta = metadata(path)
        assert meta["experiment_tag"] == "quick" and meta["run_spec"]["backend"] == "simulator"
    grid = load_grid(root, "quick")
    assert len(grid.runs) == 4 and not grid.skipped
    assert sorted(grid.runs["method"].unique()) == ["ASHA", "RS"]
    ids = cluster.node_ids()
    assert {metadata(p)["ray_node_id"] for p in paths} == {ids["node_a"], ids["node_b"]}
    assert not scratch_folders("quick")  # the tasks cleaned up after themselves
    assert not ray.is_initialized()  # the grid let go of its connection

    stamps = [(p / "events.jsonl").stat().st_mtime_ns for p in paths]
    assert main(args) == 0
    assert "4 experiments: 0 run, 0 resumed, 4 already complete" in capsys.readouterr().out
    assert [(p / "events.jsonl").stat().st_mtime_ns for p in paths] == stamps


@pytest.mark.slow
def test_ctrl_c_interrupts_the_tasks_cleanly_and_the_grid_resumes(cluster, tmp_path, capsys):
    root = tmp_path / "results"
    tag = f"int{os.getpid()}"
    common = ["--benchmark", "branin", "--method", "RS", "--num-seeds", "2", "--experiment-tag", tag,
              "--results-root", str(root), "--launch-on-cluster", "--ray-address", cluster.address]
    proc = grid_cli(*common, "--max-wallclock-time", "1e9")
    try:
        wait_for(lambda: len([p for p in scratch_folders(tag) if (p / "events.jsonl").is_file()]) == 2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert "2 interrupted" in out
    paths = [root / tag / "branin" / "RS" / str(s) for s in (0, 1)]
    heads = []
    for path in paths:  # each experiment came back, ended cleanly
        log = events(path)
        assert log[-1]["event"] == "experiment_end" and log[-1]["reason"] == "interrupted"
        assert any(e["event"] == "result" for e in log)
        heads.append((path / "events.jsonl").read_bytes())
    assert not scratch_folders(tag)

    # a budget smaller than what already ran: each resumed experiment ends at once
    assert main(["experiment", *common, "--max-wallclock-time", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 experiments: 0 run, 2 resumed, 0 already complete" in out
    assert "resuming branin/RS/0 at" in out and "resuming branin/RS/1 at" in out  # the tasks' start messages
    for path, head in zip(paths, heads, strict=True):
        assert experiment_state(path)[0] == "complete"
        assert (path / "events.jsonl").read_bytes().startswith(head)
        assert [e["resumed"] for e in events(path) if e["event"] == "session_start"] == [False, True]


@pytest.mark.slow
def test_a_real_script_grid_runs_its_trials_as_ray_actors(cluster, tmp_path, capsys):
    root = tmp_path / "results"
    code = main(["experiment", "--benchmark", "mlp_digits", "--method", "RS", "ASHA", "--n-workers", "1",
                 "--max-trials", "3", "--max-resource", "3", "--experiment-tag", "real", "--results-root", str(root),
                 "--backend", "ray", "--ray-address", cluster.address, "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    # a tuner task (0.5 CPU) and one trial (1 CPU) each: two fit in the 4 CPUs at once
    assert "2 experiments: 2 to start, 0 to resume, 0 already complete; 2 at a time" in out
    ids = set(cluster.node_ids().values())
    for method in ("RS", "ASHA"):
        path = root / "real" / "mlp_digits" / method / "0"
        assert experiment_state(path) == ("complete", "max_trials=3 reached")
        meta = metadata(path)
        assert meta["backend"]["type"] == "ray" and meta["run_spec"]["ray_address"] == cluster.address
        assert meta["run_spec"]["gpus_per_trial"] == 0  # GPUs where there are GPUs: none here
        assert meta["ray_node_id"] in ids
        trials = sorted((path / "trials").iterdir())
        assert len(trials) == 3
        for trial in trials:  # the trial folders came back with the experiment
            assert (trial / "results.jsonl").read_text().count("\n") >= 1
            runs = [json.loads(line) for line in (trial / "nodes.jsonl").read_text().splitlines()]
            assert runs and all(r["node_id"] in ids for r in runs)
    grid = load_grid(root, "real")
    assert len(grid.runs) == 2 and not grid.skipped


@pytest.fixture
def clean_registry() -> Iterator[None]:
    from tunebench.schedulers import METHODS

    saved = dict(bm._REGISTRY), dict(METHODS), dict(bm._LOADED_MODULES)
    yield
    for registry, content in zip((bm._REGISTRY, METHODS, bm._LOADED_MODULES), saved, strict=True):
        registry.clear()
        registry.update(content)  # type: ignore[attr-defined]


CRASHY_MODULE = '''
import os, signal
from tunebench.schedulers import method, make_scheduler


@method("CrashyRay", "random search whose seed 1 kills its process and seed 2 raises")
def crashy(config_space, *, metric, mode, resource_attr, max_resource_attr, max_t, seed):
    if seed == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if seed == 2:
        raise RuntimeError("a bug in the method")
    return make_scheduler("RS", config_space, metric=metric, mode=mode, resource_attr=resource_attr,
                          max_resource_attr=max_resource_attr, max_t=max_t, seed=seed)
'''


@pytest.mark.slow
def test_a_failing_experiment_fails_alone_with_its_error_log(cluster, tmp_path, capsys, clean_registry):
    module = tmp_path / "crashy.py"
    module.write_text(textwrap.dedent(CRASHY_MODULE))
    root = tmp_path / "results"
    tag = f"crash{os.getpid()}"
    code = main(["experiment", "--benchmark", "branin", "--method", "CrashyRay", "--num-seeds", "3",
                 "--benchmark-module", str(module), "--max-wallclock-time", "100", "--experiment-tag", tag,
                 "--results-root", str(root), "--launch-on-cluster", "--ray-address", cluster.address,
                 "--max-retries", "0", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "3 experiments: 1 run, 0 resumed, 0 already complete, 2 failed" in out
    path = root / tag / "branin" / "CrashyRay"
    assert experiment_state(path / "0")[0] == "complete"
    # seed 1: its Ray worker process died (no retry asked): Ray's error, in the folder of that experiment
    assert "the experiment's Ray task failed" in (path / "1" / "error.log").read_text()
    assert "failed branin/CrashyRay/1: the experiment's Ray task failed" in out
    # seed 2: the error and its traceback came back with the experiment's folder
    log = (path / "2" / "error.log").read_text()
    assert "RuntimeError: a bug in the method" in log and "Traceback" in log
    assert not (path / "0" / "error.log").exists()
    leftovers = scratch_folders(tag)  # the task whose process was killed could not clean up
    assert [p.name for p in leftovers] == [f"{tag}.branin.CrashyRay.1"]
    shutil.rmtree(leftovers[0].parent)


GHOST_MODULE = '''
from tunebench.benchmarks import RealBenchmark
from tunebench.space import uniform


def benchmark_definitions():
    return {"ghost": RealBenchmark(name="ghost", script="{script}", metric="loss", mode="min",
                                   config_space={"x": uniform(0.0, 1.0)}, n_workers=1, max_wallclock_time=10.0,
                                   gpus_per_trial=0, method="RS")}
'''


@pytest.mark.slow
def test_resources_and_files_no_node_has_are_clear_errors_at_start(cluster, tmp_path, capsys, clean_registry):
    root = tmp_path / "results"
    common = ["--experiment-tag", "bad", "--results-root", str(root), "--ray-address", cluster.address,
              "--no-progress"]
    assert main(["experiment", "--benchmark", "mlp_digits", "--method", "RS", "--backend", "ray",
                 "--cpus-per-trial", "64", *common]) == 2
    err = capsys.readouterr().err
    assert (f"no node of the Ray cluster at {cluster.address} can hold one trial of mlp_digits/RS/0: it needs "
            "{CPU: 64}") in err and "--cpus-per-trial" in err
    assert len(err.strip().splitlines()) == 1

    missing = tmp_path / "elsewhere" / "train.py"  # on no node
    module = tmp_path / "ghost.py"
    module.write_text(textwrap.dedent(GHOST_MODULE.replace("{script}", str(missing))))
    assert main(["experiment", "--benchmark", "ghost", "--method", "RS", "--benchmark-module", str(module),
                 "--launch-on-cluster", *common]) == 2
    err = capsys.readouterr().err
    assert "every node that runs experiments or trials needs the grid's files at the same path" in err
    assert err.count(f"has no {missing}") == 2  # both worker nodes (the head runs nothing)
    assert not root.exists() and not ray.is_initialized()


@pytest.mark.slow
def test_a_node_dying_under_an_experiment_reruns_it_on_another_node(cluster, tmp_path):
    """Last in this module: it kills node_b."""
    root = tmp_path / "results"
    tag = f"death{os.getpid()}"
    proc = grid_cli("--benchmark", "branin", "--method", "RS", "--num-seeds", "2", "--max-trials", "1500",
                    "--max-wallclock-time", "1e9", "--experiment-tag", tag, "--results-root", str(root),
                    "--launch-on-cluster", "--ray-address", cluster.address, "--max-retries", "2")
    survivor = cluster.node_ids()["node_a"]
    try:
        wait_for(lambda: len([p for p in scratch_folders(tag) if (p / "events.jsonl").is_file()]) == 2)
        cluster.kill_node("node_b")  # one experiment runs there (tasks are spread over the nodes)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "2 experiments: 2 run, 0 resumed, 0 already complete, 0 failed" in out
    for seed in (0, 1):
        path = root / tag / "branin" / "RS" / str(seed)
        assert experiment_state(path) == ("complete", "max_trials=1500 reached")
        assert metadata(path)["ray_node_id"] == survivor
        assert [e["resumed"] for e in events(path) if e["event"] == "session_start"] == [False]
    leftovers = scratch_folders(tag)  # the task killed with its node could not clean up
    assert len(leftovers) == 1
    shutil.rmtree(leftovers[0].parent, ignore_errors=True)


@pytest.mark.slow
def test_a_conditional_space_runs_on_the_ray_backend_and_resumes(cluster, tmp_path, capsys):
    """A conditional YAML space (issue 18) through `tunebench run --backend ray` and `resume`: every
    trial's command line holds exactly its active parameters (the script asserts it, so a wrong one
    fails its trial), and the tables show inactive parameters as absent."""
    from conftest import write_script
    from test_space_conditions import COND_SCRIPT, COND_YAML

    from tunebench.store import load_experiment

    script = write_script(tmp_path, COND_SCRIPT)
    space = tmp_path / "space.yaml"
    space.write_text(COND_YAML)
    exp = tmp_path / "exp"
    common = ["--ray-address", cluster.address, "--no-progress"]
    assert main(["run", "--script", str(script), "--config-space", str(space), "--metric", "loss",
                 "--resource-attr", "epoch", "--max-resource-attr", "epochs", "--max-resource", "3", "--method", "BOHB",
                 "--backend", "ray", "--n-workers", "2", "--max-trials", "6", "--experiment-dir", str(exp),
                 *common]) == 0
    assert main(["resume", str(exp), "--max-trials", "10", "--no-progress"]) == 0
    summary = load_experiment(exp).summary()
    assert summary["n_trials"] == 10 and summary["n_failed"] == 0
    trials = load_experiment(exp).trials
    sgd = trials.config_optimizer == "sgd"
    assert trials[sgd].config_momentum.notna().all() and trials[~sgd].config_momentum.isna().all()
