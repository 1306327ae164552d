"""Transfer from earlier experiments (issue 17): the loader of ``--transfer-from`` (experiment
folders, grid tags, refusals), the normalizations, ZeroShot's portfolio against a hand-derived
example, BoundingBox's box, CTS's prior and its residual model, every transfer method end to end
on the simulator, a kill and resume through the CLI on the local backend, and the CLI's error
lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from conftest import kill_when, logged_events, n_results

from tunebench.analysis.transfer import load_transfer_tasks, resolve_transfer_sources
from tunebench.cli import main
from tunebench.errors import UserError
from tunebench.launch import build_space, build_tuner, spec_from_benchmark
from tunebench.schedulers import make_scheduler
from tunebench.searchers.transfer import (
    CTSSearcher,
    ZeroShotSearcher,
    bounding_box,
    empirical_quantiles,
    gaussian_quantiles,
)
from tunebench.space import choice, loguniform, randint, sample_configs, space_to_json, uniform
from tunebench.store import load_experiment
from tunebench.types import TransferTask

TRANSFER_METHODS = ["ZeroShot", "BoundingBox", "CTS", "ASHA-CTS"]


def _run_benchmark(path: Path, benchmark: str, method: str = "RS", seed: int = 0, trials: int = 8,
                   transfer_from: list[str] | None = None) -> Path:
    spec = spec_from_benchmark(benchmark)
    spec.method, spec.seed, spec.max_wallclock_time, spec.max_trials = method, seed, None, trials
    spec.charge_decision_time = False
    spec.transfer_from = list(transfer_from or [])
    build_tuner(spec, path, command_line=[]).run()
    return path


# -- normalizations --------------------------------------------------------------------------------


def test_empirical_quantiles_are_cdf_midpoints_with_tied_ranks_averaged() -> None:
    assert empirical_quantiles([3.0, 1.0, 2.0]) == pytest.approx([5 / 6, 1 / 6, 3 / 6])
    # ranks 1, 2.5, 2.5, 4 -> (rank - 0.5) / 4
    assert empirical_quantiles([1.0, 2.0, 2.0, 4.0]) == pytest.approx([0.125, 0.5, 0.5, 0.875])


def test_gaussian_quantiles_are_the_normal_inverse_cdf_of_the_ranks() -> None:
    inv = NormalDist().inv_cdf
    z = gaussian_quantiles([30.0, 10.0, 20.0, 1e6])
    assert z == pytest.approx([inv(5 / 8), inv(1 / 8), inv(3 / 8), inv(7 / 8)])
    # only ranks count: any increasing map of the values gives the same
    assert gaussian_quantiles(np.log([30.0, 10.0, 20.0, 1e6])) == pytest.approx(z)


# -- ZeroShot ------------------------------------------------------------------------------------

SPACE_X = {"x": uniform(0.0, 1.0), "epochs": 3}


def test_zero_shot_portfolio_order_matches_a_hand_derived_example() -> None:
    """Three tasks that evaluated the same four configs c0..c3 (exact quantiles, no model):

    quantiles (rank - 0.5) / 4      A      B      C
        c0                        .125   .875   .875
        c1                        .375   .125   .625
        c2                        .625   .625   .125
        c3                        .875   .375   .375

    step 1: mean of each row: .625, .375, .458, .542 -> c1 (best so far .375 .125 .625)
    step 2: c0 -> mean(.125 .125 .625) = .292, c2 -> mean(.375 .125 .125) = .208, c3 -> .292 -> c2
    step 3: c0 -> mean(.125 .125 .125) = .125 (better than .208), c3 -> .208 (no gain) -> c0
    step 4: nothing improves: a new round over what is left -> c3.
    """
    configs = tuple({"x": x, "epochs": 3} for x in (0.1, 0.3, 0.5, 0.7))
    tasks = [TransferTask("A", configs, (1.0, 2.0, 3.0, 4.0)),
             TransferTask("B", configs, (40.0, 10.0, 30.0, 20.0)),
             TransferTask("C", configs, (4.0, 3.0, 1.0, 2.0))]
    searcher = ZeroShotSearcher(SPACE_X, "loss", "min", seed=0, transfer=tasks)
    assert [c["x"] for c in searcher.portfolio] == [0.3, 0.5, 0.1, 0.7]
    suggested = [searcher.suggest(t) for t in range(6)]
    assert [c["x"] for c in suggested[:4]] == [0.3, 0.5, 0.1, 0.7]
    assert all(c["epochs"] == 3 for c in suggested)
    assert suggested[4]["x"] not in (0.1, 0.3, 0.5, 0.7)  # then random configs
    # a resumed searcher goes on with the same configs
    state = json.loads(json.dumps(searcher.state_dict()))
    again = ZeroShotSearcher(SPACE_X, "loss", "min", seed=0, transfer=tasks)
    again.load_state_dict(state)
    fresh = ZeroShotSearcher(SPACE_X, "loss", "min", seed=0, transfer=tasks)
    expected = [fresh.suggest(t) for t in range(8)][6:]
    assert [again.suggest(t) for t in (6, 7)] == expected


def test_zero_shot_predicts_configs_a_task_did_not_evaluate() -> None:
    """Tasks that evaluated different configs: the GP of each task fills in the others; the
    first portfolio config is near the common optimum (x = 0.3)."""
    rng = np.random.default_rng(0)
    tasks = []
    for k in range(3):
        xs = rng.uniform(0, 1, 25)
        tasks.append(TransferTask(f"t{k}", tuple({"x": float(x), "epochs": 3} for x in xs),
                                  tuple(float((x - 0.3) ** 2 * (k + 1) + k) for x in xs)))
    searcher = ZeroShotSearcher(SPACE_X, "loss", "min", seed=0, transfer=tasks)
    assert abs(searcher.portfolio[0]["x"] - 0.3) < 0.08


# -- BoundingBox ---------------------------------------------------------------------------------

SPACE4 = {"lr": loguniform(1e-4, 1e-1), "width": randint(8, 128), "act": choice(["relu", "gelu", "tanh"]),
          "dropout": uniform(0.0, 0.5), "epochs": 9}


def test_bounding_box_is_the_range_of_each_tasks_top_configs() -> None:
    def task(name: str, top: list[dict[str, Any]], n_rest: int) -> TransferTask:
        rest = sample_configs(SPACE4, np.random.default_rng(len(name)), n_rest)
        configs = tuple(top + rest)
        return TransferTask(name, configs, tuple([0.0, 0.1] + [1.0 + i for i in range(n_rest)]))

    a = task("a", [{"lr": 1e-3, "width": 32, "act": "relu", "dropout": 0.1, "epochs": 9},
                   {"lr": 3e-3, "width": 40, "act": "relu", "dropout": 0.2, "epochs": 9}], 18)
    b = task("bb", [{"lr": 2e-3, "width": 64, "act": "tanh", "dropout": 0.1, "epochs": 9},
                    {"lr": 5e-3, "width": 50, "act": "relu", "dropout": 0.1, "epochs": 9}], 18)
    box = bounding_box(SPACE4, [a, b], top_fraction=0.1)  # 2 of 20 per task
    assert box["lr"] == loguniform(1e-3, 5e-3)
    assert box["width"] == randint(32, 64)
    assert box["act"] == choice(["relu", "tanh"])  # in the domain's order
    assert box["dropout"] == uniform(0.1, 0.2)
    assert box["epochs"] == 9
    # one top config per task (the smallest fraction): a single value becomes a constant
    small = bounding_box(SPACE4, [a], top_fraction=0.01)
    assert small["act"] == "relu" and small["width"] == 32
    with pytest.raises(ValueError, match="top_fraction"):
        bounding_box(SPACE4, [a], top_fraction=0.0)


def test_bounding_box_method_suggests_only_inside_the_box() -> None:
    tasks = [TransferTask("t", tuple({"x": x, "epochs": 3} for x in np.linspace(0, 1, 21).tolist()),
                          tuple(abs(x - 0.6) for x in np.linspace(0, 1, 21).tolist()))]
    scheduler = make_scheduler("BoundingBox", SPACE_X, metric="loss", transfer=tasks, base="RS", top_fraction=0.15)
    xs = [scheduler.suggest(t).config["x"] for t in range(30)]  # type: ignore[union-attr]
    assert min(xs) >= 0.5 - 1e-12 and max(xs) <= 0.7 + 1e-12  # the 4 best: 0.55, 0.6, 0.65, 0.5 or 0.7


# -- CTS -----------------------------------------------------------------------------------------


def _quadratic_tasks(optimum: float, n_tasks: int = 2, n: int = 40) -> list[TransferTask]:
    rng = np.random.default_rng(1)
    tasks = []
    for k in range(n_tasks):
        xs = rng.uniform(0, 1, n)
        tasks.append(TransferTask(f"q{k}", tuple({"x": float(x), "epochs": 3} for x in xs),
                                  tuple(float(10 ** k * (x - optimum) ** 2) for x in xs)))
    return tasks


def test_cts_samples_near_the_sources_optimum_first_and_follows_the_target_later() -> None:
    searcher = CTSSearcher(SPACE_X, "loss", "min", seed=0, transfer=_quadratic_tasks(0.3))
    first = [searcher.suggest(t)["x"] for t in range(3)]
    assert all(abs(x - 0.3) < 0.15 for x in first), first
    # the target's optimum is elsewhere (0.8): its residual model takes over
    for t, x in enumerate(first):
        searcher.on_complete(t, {"x": x, "epochs": 3}, {"loss": (x - 0.8) ** 2, "epoch": 3})
    later = []
    for t in range(3, 25):
        x = searcher.suggest(t)["x"]
        searcher.on_complete(t, {"x": x, "epochs": 3}, {"loss": (x - 0.8) ** 2, "epoch": 3})
        later.append(x)
    assert min(abs(x - 0.8) for x in later) < 0.05
    assert np.median([abs(x - 0.8) for x in later[-8:]]) < 0.2


def test_transfer_methods_refuse_without_sources_or_with_another_space() -> None:
    for name in TRANSFER_METHODS:
        with pytest.raises(UserError, match="pass --transfer-from PATH"):
            make_scheduler(name, SPACE_X, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    other = [TransferTask("y", ({"y": 0.5, "epochs": 3},), (1.0,))]
    with pytest.raises(UserError, match="config space differs"):
        make_scheduler("CTS", SPACE_X, metric="loss", transfer=other)
    with pytest.raises(ValueError, match="3 configs but 2 values"):
        TransferTask("bad", ({"x": 0.1},) * 3, (1.0, 2.0))


# -- the loader ----------------------------------------------------------------------------------


def test_loader_reads_experiment_folders_with_values_at_the_largest_resource(tmp_path: Path) -> None:
    exp = _run_benchmark(tmp_path / "src", "branin", method="ASHA", trials=12)
    space = build_space(spec_from_benchmark("branin"))
    (task,) = load_transfer_tasks([str(exp)], space, "loss", "min")
    assert task.name == "branin"
    table = load_experiment(exp).trial_table()
    assert len(task.values) == len(table) == 12
    by_config = {json.dumps(r["config"], sort_keys=True): r for r in table}
    for config, value in zip(task.configs, task.values, strict=True):
        row = by_config[json.dumps(config, sort_keys=True)]
        assert value == pytest.approx(row["last"])  # ASHA: the value where the trial stopped
    # maximization form for mode "max": negated
    (neg,) = load_transfer_tasks([str(exp)], space, "loss", "max")
    assert neg.values == tuple(-v for v in task.values)


def test_loader_reads_a_grid_tag_one_task_per_benchmark_leaving_out_the_target(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for bench, seeds in (("branin", (0,)), ("branin-cost", (0, 1))):
        for seed in seeds:
            _run_benchmark(root / "src-tag" / bench / "RS" / str(seed), bench, seed=seed, trials=5)
    space = build_space(spec_from_benchmark("branin"))
    tasks = load_transfer_tasks(["src-tag"], space, "loss", "min", root=root)
    assert {t.name: len(t.values) for t in tasks} == {"branin": 5, "branin-cost": 10}  # seeds pooled
    (only,) = load_transfer_tasks([str(root / "src-tag")], space, "loss", "min", target="branin")
    assert only.name == "branin-cost"
    assert resolve_transfer_sources(["src-tag", str(root / "src-tag")], root) == [str((root / "src-tag").resolve())]


def test_loader_refuses_in_one_line(tmp_path: Path) -> None:
    branin = _run_benchmark(tmp_path / "branin", "branin", trials=3)
    hartmann = _run_benchmark(tmp_path / "hartmann", "hartmann6", trials=3)
    space = build_space(spec_from_benchmark("branin"))
    with pytest.raises(UserError, match="does not exist: pass an experiment folder or the tag"):
        load_transfer_tasks([str(tmp_path / "nope")], space, "loss", root=tmp_path)
    with pytest.raises(UserError, match="another config space .*transfer from tasks tuned on the same space"):
        load_transfer_tasks([str(hartmann)], space, "loss")
    with pytest.raises(UserError, match="no result with the metric 'accuracy'"):
        load_transfer_tasks([str(branin)], space, "accuracy")
    with pytest.raises(UserError, match="the target task itself"):
        load_transfer_tasks([str(branin)], space, "loss", target="branin")
    (tmp_path / "empty-tag").mkdir()
    with pytest.raises(UserError, match="holds no experiment"):
        load_transfer_tasks([str(tmp_path / "empty-tag")], space, "loss")


# -- end to end ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", TRANSFER_METHODS)
def test_every_transfer_method_runs_on_lcbench_and_resume_rebuilds_it(tmp_path: Path, method: str,
                                                                       shared_data: Path) -> None:
    pytest.importorskip("onnxruntime", reason="lcbench needs the yahpo extra (onnxruntime)")
    root = tmp_path / "results"
    for task in ("3945", "7593", "34539"):
        _run_benchmark(root / "rs" / f"lcbench-{task}" / "RS" / "0", f"lcbench-{task}", trials=15)
    exp = _run_benchmark(tmp_path / "target", "lcbench-167149", method=method, trials=12,
                         transfer_from=[str(root / "rs")])
    loaded = load_experiment(exp)
    assert loaded.metadata["run_spec"]["transfer_from"] == [str((root / "rs").resolve())]
    table = loaded.trial_table()
    assert len(table) >= 12 and all(r["error"] is None for r in table)
    if method == "ZeroShot":  # the first trials are source configs
        sources = load_transfer_tasks([str(root / "rs")], build_space(spec_from_benchmark("lcbench-167149")),
                                      "val_accuracy", "max")
        union = [json.dumps(c, sort_keys=True) for t in sources for c in t.configs]
        assert json.dumps(table[0]["config"], sort_keys=True) in union
    # resume to more trials: the scheduler is rebuilt from the stored spec (its transfer sources)
    spec = spec_from_benchmark("lcbench-167149")
    spec.method, spec.max_wallclock_time, spec.max_trials, spec.charge_decision_time = method, None, 18, False
    spec.transfer_from = [str(root / "rs")]
    build_tuner(spec, exp, resume=True, command_line=[]).run()
    assert len(load_experiment(exp).trial_table()) >= 18


def test_cli_error_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--benchmark", "branin", "--method", "CTS", "--max-trials", "2",
                 "--experiment-dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tunebench: error: method 'CTS' learns from earlier tasks and got none: pass "
                              "--transfer-from")
    assert main(["run", "--benchmark", "branin", "--method", "ZeroShot", "--transfer-from", str(tmp_path / "missing"),
                 "--max-trials", "2", "--experiment-dir", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"tunebench: error: transfer source '{tmp_path / 'missing'}' does not exist")
    hartmann = _run_benchmark(tmp_path / "h", "hartmann6", trials=2)
    assert main(["run", "--benchmark", "branin", "--method", "ZeroShot", "--transfer-from", str(hartmann),
                 "--max-trials", "2", "--experiment-dir", str(tmp_path / "c")]) == 2
    assert "was tuned on another config space" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_killed_cts_run_on_the_local_backend_resumes(tmp_path: Path, quadratic_script: Path) -> None:
    """Sources: an RS run of the quadratic script; target: CTS through the CLI, SIGKILLed after
    a few results, then ``tunebench resume``: the results before the kill are kept and tuning
    goes on with the same sources (recorded in the run spec)."""
    space = tmp_path / "space.json"
    space.write_text(json.dumps(space_to_json({"x": uniform(-1.0, 1.0), "epochs": 5, "sleep": 0.15})))
    base = [sys.executable, "-m", "tunebench", "run", "--script", str(quadratic_script), "--config-space", str(space),
            "--metric", "loss", "--mode", "min", "--no-progress"]
    src = tmp_path / "src"
    done = subprocess.run([*base, "--method", "RS", "--max-trials", "6", "--experiment-dir", str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    exp = tmp_path / "exp"
    logged = kill_when([*base, "--method", "CTS", "--transfer-from", str(src), "--max-trials", "14",
                        "--experiment-dir", str(exp)], exp, n_results(12))
    before = [e for e in logged if e.get("event") == "result"]
    resumed = subprocess.run([sys.executable, "-m", "tunebench", "resume", str(exp), "--no-progress"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = logged_events(exp)
    results = [e for e in after if e.get("event") == "result"]
    assert results[: len(before)] == before
    assert len(results) > len(before)
    starts = [e["trial_id"] for e in after if e.get("event") == "trial_start"]
    assert len(starts) == len(set(starts)) == 14
    assert load_experiment(exp).metadata["run_spec"]["transfer_from"] == [str(src.resolve())]


def test_an_experiment_grid_passes_its_sources_to_each_job(tmp_path: Path) -> None:
    """``tunebench experiment --transfer-from TAG``: each job learns from the tag less its own benchmark."""
    root = str(tmp_path / "results")
    common = ["--results-root", root, "--max-trials", "5", "--no-progress", "--parallel", "1"]
    assert main(["experiment", "--benchmark", "branin", "branin-cost", "--method", "RS", "--experiment-tag", "src",
                 *common]) == 0
    assert main(["experiment", "--benchmark", "branin", "--method", "ZeroShot", "RS", "--transfer-from", "src",
                 "--experiment-tag", "target", *common]) == 0
    exp = load_experiment(Path(root) / "target" / "branin" / "ZeroShot" / "0")
    assert exp.metadata["run_spec"]["transfer_from"] == [str((Path(root) / "src").resolve())]
    assert len(exp.trial_table()) == 5
    # its first config is branin-cost's best (the only source: branin, the target, is left out)
    (source,) = load_transfer_tasks(["src"], build_space(spec_from_benchmark("branin")), "loss", target="branin",
                                    root=root)
    assert source.name == "branin-cost"
    assert exp.trial_table()[0]["config"] == source.configs[int(np.argmin(source.values))]
