"""The mlp_tabular example script, checkpointing proven useful (promotion-type ASHA resumes trials
from their checkpoints, no epoch trained twice), `tunebench tabulate` (a real benchmark written
as a tabular blackbox, resumable), and the shipped `mlp_tabular-tab` simulated benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tunebench.backends.local import LocalBackend
from tunebench.benchmarks import (
    PACKAGE_TABLES_DIR,
    RealBenchmark,
    SimulatedBenchmark,
    benchmark_names,
    find_tabulated,
    get_benchmark,
    tabulated_benchmark,
)
from tunebench.blackboxes.tabular import TabularBlackbox
from tunebench.errors import UserError
from tunebench.launch import build_tuner, spec_from_benchmark, thread_env
from tunebench.reporting import load_checkpoint
from tunebench.schedulers import make_scheduler
from tunebench.space import space_from_json
from tunebench.store import load_experiment
from tunebench.tabulate import (
    ELAPSED_TIME,
    fill_failed_cells,
    load_tabulated,
    tabulate_benchmark,
)
from tunebench.tuner import Callback, StopCriteria, Tuner

SCRIPT = Path(__file__).resolve().parent.parent / "tunebench" / "examples" / "mlp_tabular.py"
#: a configuration whose training loss becomes NaN in its first epoch
DIVERGING = {"lr": 0.3, "optimizer": "sgd", "n_layers": 3, "weight_decay": 0.01, "batch_size": 16, "n_units": 256,
             "dropout": 0.0}
GOOD = {"lr": 0.003, "optimizer": "adam", "n_layers": 2, "weight_decay": 1e-4, "batch_size": 32, "n_units": 32,
        "dropout": 0.1}


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dataset cache for the whole session (preparing it imports scikit-learn: seconds)."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_cache: Path) -> None:
    """Trials find the data cache of the session; tables are looked up in a cache of this test only."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(data_cache))
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path / "blackbox-cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("TUNEBENCH_DATA", raising=False)


def run_script(*args: str, checkpoint_dir: Path | None = None, results: Path | None = None,
               **config: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNEBENCH_")}
    if checkpoint_dir is not None:
        env["TUNEBENCH_CHECKPOINT_DIR"] = str(checkpoint_dir)
    if results is not None:
        env["TUNEBENCH_RESULTS_FILE"] = str(results)
    argv = [a for k, v in config.items() for a in (f"--{k}", str(v))]
    return subprocess.run([sys.executable, str(SCRIPT), *argv, *args], capture_output=True, text=True, env=env,
                          timeout=120)


def reports(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def trained(trial_dir: Path) -> list[int]:
    """The epochs a trial's processes trained, from their "trained epoch N" lines."""
    path = trial_dir / "stdout.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [int(line.split()[-1]) for line in lines if line.startswith("trained epoch ")]


def curve_without_time(rows: list[dict]) -> np.ndarray:
    return np.array([(r["epoch"], r["val_error"], r["val_loss"], r["train_loss"]) for r in rows])


# -- the script -------------------------------------------------------------------------------------


def test_script_reports_checkpoints_and_resumes_on_its_curve(tmp_path):
    whole = run_script("--epochs", "6", checkpoint_dir=tmp_path / "a", results=tmp_path / "a.jsonl", **GOOD)
    assert whole.returncode == 0, whole.stderr
    full = reports(tmp_path / "a.jsonl")
    assert [r["epoch"] for r in full] == [1, 2, 3, 4, 5, 6]
    assert all(0 <= r["val_error"] <= 1 and r["epoch_time"] > 0 and np.isfinite(r["val_loss"]) for r in full)
    assert (tmp_path / "a" / "checkpoint.npz").is_file()

    first = run_script("--epochs", "3", checkpoint_dir=tmp_path / "b", results=tmp_path / "b.jsonl", **GOOD)
    second = run_script("--epochs", "6", checkpoint_dir=tmp_path / "b", results=tmp_path / "b.jsonl", **GOOD)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert trained_lines(first.stdout) == [1, 2, 3] and trained_lines(second.stdout) == [4, 5, 6]
    resumed = reports(tmp_path / "b.jsonl")
    # epoch 3 is reported again from the checkpoint, then training goes on from there
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 3, 4, 5, 6]
    del resumed[3]
    assert curve_without_time(resumed) == pytest.approx(curve_without_time(full), rel=1e-9, abs=1e-12), \
        "weights, optimizer and random state come back from the checkpoint: the same curve as without a pause"


def trained_lines(stdout: str) -> list[int]:
    return [int(line.split()[-1]) for line in stdout.splitlines() if line.startswith("trained epoch ")]


def test_corrupted_or_foreign_checkpoint_restarts_from_scratch_and_says_so(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "checkpoint.npz").write_bytes(b"PK\x03\x04garbage, not an npz")
    run = run_script("--epochs", "2", checkpoint_dir=ckpt, results=tmp_path / "r.jsonl", **GOOD)
    assert run.returncode == 0, run.stderr
    assert "is corrupted" in run.stderr and "starting this trial from scratch" in run.stderr
    assert trained_lines(run.stdout) == [1, 2]
    assert [r["epoch"] for r in reports(tmp_path / "r.jsonl")] == [1, 2]
    # a checkpoint of another architecture (e.g. written by a trial of another config) is not used either
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 2
    wider = {**GOOD, "n_units": 64}
    run = run_script("--epochs", "3", checkpoint_dir=ckpt, results=tmp_path / "w.jsonl", **wider)
    assert run.returncode == 0, run.stderr
    assert "does not fit this configuration" in run.stderr and trained_lines(run.stdout) == [1, 2, 3]


def test_diverging_config_exits_with_a_message_and_missing_data_dir_names_the_flag(tmp_path):
    run = run_script("--epochs", "3", **DIVERGING)
    assert run.returncode == 3
    assert "the model diverged" in run.stderr and "lr=0.3 with sgd" in run.stderr and "Traceback" not in run.stderr
    run = run_script("--epochs", "1", "--data-dir", str(tmp_path / "nope"), **GOOD)
    assert run.returncode != 0 and "--data-dir" in run.stderr and str(tmp_path / "nope") in run.stderr


def test_a_diverging_trial_fails_and_the_tuner_goes_on(tmp_path):
    space = {**space_from_json(spec_from_benchmark("mlp_tabular").config_space), "epochs": 3}
    scheduler = make_scheduler("RS", space, metric="val_error", mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", points_to_evaluate=[DIVERGING, GOOD], seed=1)
    result = Tuner(LocalBackend(script=SCRIPT, gpus_per_trial=0, env=thread_env(1)), scheduler, n_workers=2,
                   stop=StopCriteria(max_trials=4), experiment_dir=tmp_path / "exp").run()
    assert result.n_trials == 4 and result.n_failed >= 1 and result.n_completed >= 2
    table = {t["trial_id"]: t for t in load_experiment(tmp_path / "exp").trial_table()}
    assert table[0]["status"] == "failed" and "exit code 3" in table[0]["error"]
    assert "the model diverged" in table[0]["error"]
    assert table[1]["status"] == "completed" and table[1]["n_results"] == 3


# -- checkpointing proven useful ------------------------------------------------------------------------


class _Launches(Callback):
    def __init__(self) -> None:
        self.resumed: list[int] = []

    def on_trial_start(self, tuner, trial, how):  # noqa: ANN001
        if how == "resume":
            self.resumed.append(trial.trial_id)


def test_promotion_asha_resumes_trials_from_their_checkpoints_without_retraining(tmp_path):
    exp = tmp_path / "exp"
    space = {**space_from_json(spec_from_benchmark("mlp_tabular").config_space), "epochs": 9}
    # a good configuration first: paused at epoch 1 while its rung has fewer than 3 results, then
    # promoted (resumed) once it is the best of 3
    slow = {**GOOD, "lr": 1e-4, "optimizer": "sgd"}
    scheduler = make_scheduler("ASHA-promotion", space, metric="val_loss", mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", seed=3, grace_period=1, reduction_factor=3,
                               points_to_evaluate=[GOOD, slow])
    launches = _Launches()
    Tuner(LocalBackend(script=SCRIPT, gpus_per_trial=0, env=thread_env(1)), scheduler, n_workers=2,
          stop=StopCriteria(max_trials=12), experiment_dir=exp, callbacks=[launches]).run()
    assert launches.resumed, "promotion-type ASHA resumed paused trials"
    events = load_experiment(exp).events
    reported = {(e["trial_id"], e["result"]["epoch"]) for e in events
                if e.get("event") in ("result", "result_deferred")}
    trained_epochs = {}
    for d in (exp / "trials").iterdir():
        epochs = trained(d)
        assert epochs == sorted(set(epochs)), f"trial {d.name} trained an epoch twice: {epochs}"
        trained_epochs[int(d.name)] = epochs
    assert sum(len(v) for v in trained_epochs.values()) == len(reported), \
        "every epoch trained was reported once, no epoch was trained again after a resume"
    assert {(t, e) for t, es in trained_epochs.items() for e in es} == reported
    # a resumed trial goes on along its curve: the very curve of the same config trained without pauses
    configs = {e["trial_id"]: e["config"] for e in events if e.get("event") == "trial_start"}
    tid = max(set(launches.resumed), key=lambda t: len(trained_epochs[t]))
    curve = sorted(((e["result"]["epoch"], e) for e in events
                    if e.get("event") == "result" and e["trial_id"] == tid), key=lambda x: x[0])
    before_resume = next(i for i, e in enumerate(events) if e.get("event") == "trial_resume" and e["trial_id"] == tid)
    # results reported while the trial was being paused are decided on (logged) after its resume
    last_before = max(e["result"]["epoch"] for e in events[:before_resume]
                      if e.get("event") == "result" and e["trial_id"] == tid)
    first_after = min(e["result"]["epoch"] for e in events[before_resume:]
                      if e.get("event") == "result" and e["trial_id"] == tid)
    assert first_after == last_before + 1
    config = {k: v for k, v in configs[tid].items() if k != "epochs"}
    alone = run_script("--epochs", str(curve[-1][0]), results=tmp_path / "alone.jsonl", checkpoint_dir=tmp_path / "c",
                       **config)
    assert alone.returncode == 0, alone.stderr
    uninterrupted = curve_without_time(reports(tmp_path / "alone.jsonl"))
    assert curve_without_time([e["result"] for _, e in curve]) == pytest.approx(uninterrupted, rel=1e-9, abs=1e-12)


# -- tabulate -----------------------------------------------------------------------------------------


class _Interrupt(Exception):
    pass


class _InterruptAfter(Callback):
    """Ends tuning (as a crash would) after ``n`` results."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_result(self, tuner, trial, result, decision):  # noqa: ANN001
        self.n -= 1
        if self.n == 0:
            raise _Interrupt


def cli(*argv: str) -> int:
    from tunebench.cli import main

    return main(["tabulate", *argv])


def test_tabulate_writes_the_runs_as_a_blackbox_and_resumes(tmp_path, capsys):
    common = {"max_resource": 4, "n_workers": 2, "configs": [DIVERGING]}
    # interrupted after 10 results (as a crash would): what ran is kept
    with pytest.raises(_Interrupt):
        tabulate_benchmark("mlp_tabular", 3, 2, callbacks=[_InterruptAfter(10)], **common)
    out = Path(os.environ["TUNEBENCH_CACHE"]) / "mlp_tabular-tab"
    exp = out / "run" / "experiment"
    first_session = load_experiment(exp).events
    # the same call again: resumes, restarting interrupted trials from their checkpoints
    result = tabulate_benchmark("mlp_tabular", 3, 2, **common)
    assert result.output_dir == out and result.n_jobs == 8 and result.n_missing == 0
    assert result.n_completed == 6 and result.n_failed == 2, "the diverging config fails on both seeds"
    events = load_experiment(exp).events
    starts = [e["trial_id"] for e in events if e.get("event") == "trial_start"]
    assert len(starts) == 8 and len(set(starts)) == 8, "each (config, seed) ran as one trial"
    restarted = {e["trial_id"] for e in events[len(first_session):] if e.get("event") == "trial_restart"}
    assert restarted, "trials interrupted in the first call were restarted"
    for tid in starts:
        epochs = trained(exp / "trials" / str(tid))
        assert epochs == sorted(set(epochs)), f"trial {tid} trained an epoch twice: {epochs}"
    assert not any((exp / "trials" / str(t) / "checkpoint").exists() for t in starts), "checkpoints cleaned up"

    bb = TabularBlackbox.load(out)
    assert bb.name == "mlp_tabular-tab" and bb.n_seeds == 2 and bb.fidelity_values.tolist() == [1, 2, 3, 4]
    assert bb.n_configs == 4 and bb.objectives[0] == "val_error" and bb.objectives[-1] == ELAPSED_TIME
    assert {"val_loss", "train_loss", "epoch_time"} <= set(bb.objectives)
    assert "epochs" not in bb.config_space and "seed" not in bb.config_space
    assert {k: bb.configs[0][k] for k in DIVERGING} == DIVERGING
    # every value is the one the trial reported, on the seed axis of its --seed
    df = load_experiment(exp).results
    checked = 0
    for _, row in df.iterrows():
        config = {k: row[f"config_{k}"] for k in DIVERGING}
        r = bb.row_of(config)
        for objective in ("val_error", "val_loss", "train_loss"):
            assert bb.values[r, int(row["config_seed"]), int(row["epoch"]) - 1, bb.objective_index(objective)] == \
                row[objective]
        checked += 1
    assert checked == 6 * 4
    elapsed = bb.values[1:, :, :, -1]
    assert np.all(elapsed > 0) and np.all(np.diff(elapsed, axis=2) > 0), "elapsed time grows along the epochs"
    assert np.isnan(bb.values[0]).all(), "the diverged configuration reported nothing"
    meta = json.loads((out / "meta.json").read_text())["tabulated"]
    assert meta["benchmark"] == "mlp_tabular" and meta["seeds"] == [0, 1] and meta["metric"] == "val_error"
    assert sorted((f["config"], f["seed"]) for f in meta["failures"]) == [(0, 0), (0, 1)]
    assert "diverged" in meta["failures"][0]["error"]

    # the simulated benchmark mlp_tabular-tab now is this table (it comes before the shipped one)
    bench = get_benchmark("mlp_tabular-tab")
    assert isinstance(bench, SimulatedBenchmark) and bench.max_resource == 4 and "4 configurations" in bench.description
    filled = bench.load_blackbox()
    assert not np.isnan(filled.values).any()
    worst = np.nanmax(bb.values[:, :, :, 0], axis=(0, 1))
    assert filled.values[0, :, :, 0] == pytest.approx(np.stack([worst, worst])), "a diverged run replays as the worst"
    assert np.all(np.diff(filled.values[0, :, :, -1], axis=1) > 0)

    # again, through the command line: nothing left to run, the same table
    before = bb.values.copy()
    assert cli("--benchmark", "mlp_tabular", "--num-configs", "3", "--seeds", "2", "--max-resource", "4",
               "--config", json.dumps(DIVERGING), "--no-progress") == 0
    printed = capsys.readouterr().out
    assert "4 configurations x 2 seeds" in printed and "0 run now" in printed
    assert "tunebench run --benchmark mlp_tabular-tab" in printed
    assert len(load_experiment(exp).events) == len(events), "no trial ran again"
    np.testing.assert_array_equal(TabularBlackbox.load(out).values, before)
    # one more sampled configuration: only its two runs happen
    grown = tabulate_benchmark("mlp_tabular", 4, 2, **common)
    assert grown.n_started == 2 and grown.blackbox.n_configs == 5
    np.testing.assert_array_equal(grown.blackbox.values[:4], before)


def test_tabulate_bad_input(tmp_path, capsys):
    with pytest.raises(UserError, match="already simulated"):
        tabulate_benchmark("branin", 2, 1, output_dir=tmp_path / "o")
    with pytest.raises(UserError, match="nothing to tabulate"):
        tabulate_benchmark("mlp_tabular", 0, 1, output_dir=tmp_path / "o")
    with pytest.raises(UserError, match="seeds must be an integer >= 1"):
        tabulate_benchmark("mlp_tabular", 2, 0, output_dir=tmp_path / "o")
    with pytest.raises(UserError, match="keys not in the config space: momentum"):
        tabulate_benchmark("mlp_tabular", 1, 1, configs=[{"momentum": 0.9}], output_dir=tmp_path / "o")
    with pytest.raises(UserError, match="lr=5.0 is outside its domain"):
        tabulate_benchmark("mlp_tabular", 1, 1, configs=[{"lr": 5.0}], output_dir=tmp_path / "o")
    with pytest.raises(UserError, match="unknown benchmark"):
        tabulate_benchmark("nope", 1, 1, output_dir=tmp_path / "o")
    (tmp_path / "o" / "run").mkdir(parents=True)
    (tmp_path / "o" / "run" / "plan.json").write_text(json.dumps({"benchmark": "mlp_digits", "jobs": []}))
    with pytest.raises(UserError, match="holds the runs of another tabulation"):
        tabulate_benchmark("mlp_tabular", 1, 1, output_dir=tmp_path / "o")
    with pytest.raises(UserError, match="already holds the runs of a tabulation"):
        tabulate_benchmark("mlp_tabular", 1, 1, output_dir=tmp_path / "o", resume=False)
    with pytest.raises(UserError, match=r"not tabulated yet: run `tunebench tabulate --benchmark mlp_digits"):
        get_benchmark("mlp_digits-tab")
    with pytest.raises(UserError, match="no table of resnet_images-tab"):
        load_tabulated("resnet_images")
    assert cli("--benchmark", "mlp_tabular", "--num-configs", "1", "--config", "{lr: 1}", "--output",
               str(tmp_path / "p")) == 2
    assert "--config 1: not JSON" in capsys.readouterr().err


def test_fixed_list_searcher_is_deterministic_and_resumable():
    from tunebench.tabulate import FixedListSearcher

    jobs = [{"x": 1, "seed": 0}, {"x": 2, "seed": 0}, {"x": 1, "seed": 1}]
    a = FixedListSearcher({}, "m", configs=jobs)
    assert a.suggest(0) == jobs[0]
    b = FixedListSearcher({}, "m", configs=jobs + [{"x": 3, "seed": 0}])  # a longer list: the same beginning
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert [b.suggest(i) for i in (1, 2, 3)] == [jobs[1], jobs[2], {"x": 3, "seed": 0}]
    state = b.state_dict()
    assert b.suggest(4) is None and b.state_dict() == state


def test_fill_failed_cells():
    values = np.full((3, 2, 3, 2), np.nan)  # 3 configs, 2 seeds, 3 epochs, (error, elapsed)
    values[0, :, :, 0] = [[0.3, 0.2, 0.1], [0.4, 0.3, 0.2]]
    values[0, :, :, 1] = [[1, 2, 3], [1, 3, 5]]
    values[1, 0, :1] = [[0.9, 2.0]]  # seed 0 failed after one epoch; seed 1 failed at once
    values[2, 0] = [[0.5, 1.0], [0.45, 1.5], [0.4, 2.0]]  # seed 1 never ran
    filled = fill_failed_cells(values, ["error", "elapsed"], elapsed_time_attr="elapsed",
                               failures=[{"config": 1, "seed": 0}, {"config": 1, "seed": 1}])
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[2, 1], filled[2, 0])  # a missing seed copies a seed that ran
    assert filled[1, 0, :, 0].tolist() == [0.9, 0.45, 0.4]  # then the worst of the table at each epoch
    assert filled[1, 1, :, 0].tolist() == [0.9, 0.45, 0.4]
    assert filled[1, 0, :, 1].tolist() == [2.0, 2.75, 3.5] and np.all(np.diff(filled[1, 1, :, 1]) > 0)
    np.testing.assert_array_equal(filled[0], values[0])  # complete runs untouched
    maximized = fill_failed_cells(values, ["acc", "elapsed"], elapsed_time_attr="elapsed",
                                  objective_modes={"acc": "max"})
    assert maximized[1, 0, 1, 0] == 0.2  # worst of a maximized objective: the smallest


# -- benchmark definitions and the shipped table ---------------------------------------------------------


def test_definitions_list_without_the_scripts_and_without_torch():
    names = benchmark_names()
    assert {"mlp_tabular", "resnet_images", "transformer_wikitext2", "mlp_tabular-tab"} <= set(names)
    resnet, transformer = get_benchmark("resnet_images"), get_benchmark("transformer_wikitext2")
    assert isinstance(resnet, RealBenchmark) and resnet.config_space is None
    assert (resnet.metric, resnet.max_resource, resnet.gpus_per_trial, resnet.max_wallclock_time) == \
        ("val_error", 20, 1, 1800.0)
    assert (transformer.metric, transformer.mode, transformer.max_wallclock_time) == ("val_ppl", "min", 3600.0)
    mlp = get_benchmark("mlp_tabular")
    assert mlp.backend_defaults("local") == {"n_workers": 2, "max_wallclock_time": 60.0, "cpus_per_trial": 1,
                                             "gpus_per_trial": 0}
    assert mlp.backend_defaults("ray")["n_workers"] == 8 and mlp.backend_defaults("ray")["max_wallclock_time"] == 60
    with pytest.raises(UserError, match="use --backend local or ray"):
        mlp.backend_defaults("simulator")
    with pytest.raises(UserError, match="ray_n_workers must be an integer >= 1"):
        RealBenchmark(name="x", script=SCRIPT, metric="m", mode="min", ray_n_workers=0)
    with pytest.raises(UserError, match="max_failures must be an integer >= 0"):
        RealBenchmark(name="x", script=SCRIPT, metric="m", mode="min", max_failures=-1)
    code = ("import sys, tunebench.benchmarks as b; [b.get_benchmark(n) for n in b.benchmark_names()]; "
            "assert 'torch' not in sys.modules, 'listing imported torch'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_the_shipped_table_was_made_by_tabulate_and_is_small():
    folder = PACKAGE_TABLES_DIR / "mlp_tabular-tab"
    assert find_tabulated("mlp_tabular") == folder
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_000_000
    bb = TabularBlackbox.load(folder)
    meta = json.loads((folder / "meta.json").read_text())["tabulated"]
    assert meta["benchmark"] == "mlp_tabular" and meta["n_jobs"] == 128 and meta["seeds"] == [0, 1]
    assert bb.n_configs == 64 and bb.n_seeds == 2 and bb.fidelity_values.tolist() == list(range(1, 31))
    done = [i for i in range(64) if not np.isnan(bb.values[i]).any()]
    assert len(done) >= 56, "most configurations trained to the end"
    assert np.all(np.diff(bb.values[done][..., -1], axis=2) > 0)
    assert 0 <= np.nanmin(bb.values[..., -1, 0]) < 0.05, "the best configurations reach a few % validation error"
    definition = tabulated_benchmark(folder)
    assert definition.metric == "val_error" and definition.max_resource == 30 and definition.n_workers == 2


def test_the_shipped_table_replays_with_asha_and_methods_compare_on_it(tmp_path):
    from tunebench.cli import main

    exp = tmp_path / "exp"
    assert main(["run", "--benchmark", "mlp_tabular-tab", "--method", "ASHA", "--experiment-dir", str(exp),
                 "--no-progress"]) == 0
    e = load_experiment(exp)
    df = e.results
    assert e.metadata["run_spec"]["backend"] == "simulator" and len(df) > 50
    assert set(df.loc[df["decision"] == "STOP", "epoch"]) <= {1, 3, 9, 27}, "ASHA stops trials at its rungs"
    assert df["val_error"].min() < 0.05
    # a comparison of methods on the table: a grid of experiments, then its report
    root = tmp_path / "grid"
    assert main(["experiment", "--benchmark", "mlp_tabular-tab", "--method", "RS", "ASHA", "--num-seeds", "2",
                 "--experiment-tag", "cmp", "--results-root", str(root), "--no-progress", "--parallel", "1"]) == 0
    runs = sorted(p.relative_to(root / "cmp") for p in (root / "cmp").glob("mlp_tabular-tab/*/*") if p.is_dir())
    assert [str(p) for p in runs] == ["mlp_tabular-tab/ASHA/0", "mlp_tabular-tab/ASHA/1", "mlp_tabular-tab/RS/0",
                                      "mlp_tabular-tab/RS/1"]
    assert main(["report", "--experiment-tag", "cmp", "--results-root", str(root)]) == 0


def test_a_table_in_another_folder_is_a_benchmark_through_its_definition(tmp_path):
    spec = spec_from_benchmark("mlp_tabular-tab")
    assert spec.backend == "simulator" and spec.max_resource == 30 and spec.max_resource_attr == "epochs"
    definition = tabulated_benchmark(PACKAGE_TABLES_DIR / "mlp_tabular-tab", name="my-table")
    assert definition.task == str((PACKAGE_TABLES_DIR / "mlp_tabular-tab").resolve())
    bb = definition.load_blackbox()
    assert bb.n_configs == 64 and not np.isnan(bb.values).any()
    tuner = build_tuner(spec, tmp_path / "exp", command_line=[])
    result = tuner.run()
    assert result.n_results > 0 and result.best_metric is not None


@pytest.mark.slow
def test_tabulate_on_a_ray_cluster_gives_the_curves_of_local_runs(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="tabulating on Ray needs Ray: pip install 'tunebench[ray]'")
    from tunebench.testing.ray_cluster import LocalRayCluster

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    with LocalRayCluster(head_cpus=0, workers={"node_a": 2}) as cluster:
        try:
            on_ray = tabulate_benchmark("mlp_tabular", 2, 2, backend="ray", ray_address=cluster.address,
                                        max_resource=3, output_dir=tmp_path / "ray")
        finally:
            if ray.is_initialized():
                ray.shutdown()
    assert on_ray.n_completed == 4 and on_ray.n_failed == 0
    meta = json.loads((tmp_path / "ray" / "meta.json").read_text())["tabulated"]
    assert meta["backend"] == "ray"
    local = tabulate_benchmark("mlp_tabular", 2, 2, max_resource=3, output_dir=tmp_path / "local")
    a, b = on_ray.blackbox, local.blackbox
    assert a.configs == b.configs and a.objectives == b.objectives
    same = [a.objective_index(o) for o in ("val_error", "val_loss", "train_loss")]
    np.testing.assert_allclose(a.values[..., same], b.values[..., same], rtol=1e-9)
    assert np.all(np.diff(a.values[..., -1], axis=2) > 0)
