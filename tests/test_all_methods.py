"""Every registered method runs end to end: on the simulator (a synthetic blackbox and lcbench),
on the local backend with real trial processes, and resumes a simulated experiment after a
crash. Methods come from the registry, so a newly registered one is covered at once."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tunebench.backends.local import LocalBackend
from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.synthetic import branin_blackbox
from tunebench.launch import build_space, build_tuner, spec_from_benchmark
from tunebench.schedulers import METHODS, make_scheduler, method_names
from tunebench.space import uniform
from tunebench.store import EVENTS_FILE, load_experiment
from tunebench.testing.scheduler_contract import contract_prior, contract_transfer_tasks
from tunebench.tuner import StopCriteria, Tuner

#: options that keep a method's run small (a grid that runs out, ...)
OPTIONS: dict[str, dict[str, Any]] = {"Grid": {"n_points": 5}}

ALL = method_names()


def _constraints(method: str, bound: str) -> list[str] | None:
    """A constrained method (CBO, ...) needs a constraint: ``bound``; the others get none."""
    return [bound] if METHODS[method].constrained else None


def _transfer(method: str, space: dict[str, Any]) -> Any:
    """A transfer method (ZeroShot, ...) needs source tasks: generated ones; the others get none."""
    return contract_transfer_tasks(space) if METHODS[method].transfer else ()


@pytest.fixture
def lcbench_source(tmp_path: Path, shared_data: Path) -> Path:
    """An RS experiment on another lcbench task (7593): the source of the transfer methods."""
    pytest.importorskip("onnxruntime", reason="lcbench needs the yahpo extra (onnxruntime)")
    spec = spec_from_benchmark("lcbench-7593", data_dir=shared_data)
    spec.method, spec.max_wallclock_time, spec.max_trials, spec.charge_decision_time = "RS", None, 20, False
    path = tmp_path / "rs-7593"
    build_tuner(spec, path).run()
    return path


def _events(exp: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (exp / EVENTS_FILE).read_text().splitlines()]


def _branin_tuner(exp: Path, method: str, max_trials: int, resume: bool = False, seed: int = 0) -> Tuner:
    bb = branin_blackbox()
    max_t = int(bb.fidelity_values[-1])
    space = {**bb.config_space, "epochs": max_t}
    scheduler = make_scheduler(method, space, metric="loss", mode="min", resource_attr=bb.fidelity_name,
                               max_resource_attr="epochs", seed=seed, constraints=_constraints(method, "time<=250"),
                               prior=contract_prior(method, space), transfer=_transfer(method, space),
                               **OPTIONS.get(method, {}))
    backend = SimulatorBackend(bb, charge_decision_time=False, max_resource_attr="epochs")
    return Tuner(backend, scheduler, n_workers=4, stop=StopCriteria(max_trials=max_trials), experiment_dir=exp,
                 resume=resume, constraints=_constraints(method, "time<=250"))


@pytest.mark.parametrize("method", ALL)
def test_every_method_runs_on_the_simulator(tmp_path: Path, method: str) -> None:
    result = _branin_tuner(tmp_path / "exp", method, max_trials=30).run()
    df = load_experiment(tmp_path / "exp").results
    assert result.n_failed == 0
    assert result.n_trials >= (25 if method == "Grid" else 30)
    assert len(df) == result.n_results > 0
    assert result.best_metric is not None and math.isfinite(result.best_metric)
    feasible = df[df["time"] <= 250] if METHODS[method].constrained else df  # the best counts feasible results
    assert result.best_metric == pytest.approx(feasible["loss"].min())
    if METHODS[method].multi_fidelity and not METHODS[method].population_based:
        # multi-fidelity methods do not train every trial to the end (PBT's population does)
        per_trial = df.groupby("trial_id")["epoch"].max()
        assert (per_trial < per_trial.max()).any()


@pytest.mark.parametrize("method", ALL)
def test_every_method_resumes_a_simulated_experiment(tmp_path: Path, method: str) -> None:
    """Stopped after 12 trials (as by a crash: running trials interrupted), resumed to 24: the
    resumed scheduler (snapshot + replayed log) goes on, and no result of the first part is lost."""
    exp = tmp_path / "exp"
    first = _branin_tuner(exp, method, max_trials=12).run()
    logged_before = [e for e in _events(exp) if e["event"] == "result"]
    second = _branin_tuner(exp, method, max_trials=24, resume=True).run()
    logged_after = [e for e in _events(exp) if e["event"] == "result"]
    assert logged_after[: len(logged_before)] == logged_before
    assert second.n_results > first.n_results
    assert second.n_trials >= 24


@pytest.mark.parametrize("method", ALL)
def test_every_method_runs_on_lcbench(tmp_path: Path, method: str, shared_data: Path,
                                      request: pytest.FixtureRequest) -> None:
    pytest.importorskip("onnxruntime", reason="lcbench needs the yahpo extra (onnxruntime)")
    spec = spec_from_benchmark("lcbench-3945", data_dir=shared_data)
    if METHODS[method].transfer:
        spec.transfer_from = [str(request.getfixturevalue("lcbench_source"))]
    spec.method, spec.method_kwargs = method, dict(OPTIONS.get(method, {}))
    spec.constraints = _constraints(method, "time<=185") or []
    prior = contract_prior(method, build_space(spec))
    spec.prior = None if prior is None else prior.to_json()
    spec.max_wallclock_time, spec.max_trials, spec.charge_decision_time = None, 25, False
    result = build_tuner(spec, tmp_path / "exp").run()
    assert result.n_failed == 0 and result.n_results > 0
    assert 0 < result.best_metric <= 100  # val_accuracy in percent


QUADRATIC_SPACE = {"x": uniform(-1.0, 1.0), "epochs": 9}


@pytest.mark.slow
@pytest.mark.parametrize("method", ALL)
def test_every_method_runs_on_the_local_backend(tmp_path: Path, method: str, quadratic_script: Path) -> None:
    """Real trial processes (the quadratic script, which checkpoints every epoch)."""
    constraints = _constraints(method, "loss<=0.2")  # (the script reports its loss and epoch only)
    scheduler = make_scheduler(method, QUADRATIC_SPACE, metric="loss", mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", seed=1, constraints=constraints,
                               prior=contract_prior(method, QUADRATIC_SPACE),
                               transfer=_transfer(method, QUADRATIC_SPACE), **OPTIONS.get(method, {}))
    exp = tmp_path / "exp"
    result = Tuner(LocalBackend(script=quadratic_script), scheduler, n_workers=2, stop=StopCriteria(max_trials=8),
                   experiment_dir=exp, constraints=constraints).run()
    assert result.n_failed == 0
    df = load_experiment(exp).results
    assert len(df) == result.n_results > 0
    # the reported losses are the script's: ((x - 0.3)^2 + 0.05) * (1 + 2 / epoch), with the x of the
    # config the trial ran with (its start's, or that of its last resume with a new config: PBT)
    configs: dict[int, dict[str, Any]] = {}
    n_checked = 0
    for e in _events(exp):
        if e["event"] in ("trial_start", "trial_resume") and e.get("config") is not None:
            configs[e["trial_id"]] = e["config"]
        elif e["event"] == "result":
            x, epoch = configs[e["trial_id"]]["x"], e["result"]["epoch"]
            assert e["result"]["loss"] == pytest.approx(((x - 0.3) ** 2 + 0.05) * (1 + 2 / epoch))
            n_checked += 1
    assert n_checked == len(df)
