"""PBT and PB2 (tunebench/schedulers/pbt.py, pb2.py): the exploit and explore rules on small
hand-derived cases, PB2's GP-bandit on a synthetic problem, and end to end on the simulator
(lcbench), on the local backend (the digits MLP, through a SIGKILL and a resume) and on a Ray
cluster with a storage URL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import kill_when, logged_events

from tunebench.errors import UserError
from tunebench.schedulers import make_scheduler
from tunebench.schedulers.pb2 import PB2
from tunebench.schedulers.pbt import PBT, parse_mutable, perturb
from tunebench.space import choice, finrange, lograndint, loguniform, ordinal, randint, uniform
from tunebench.types import Decision, Suggestion, Trial

SCRIPT = str(Path(__file__).resolve().parents[1] / "tunebench" / "examples" / "mlp_digits.py")
SPACE = {"x": uniform(0.0, 1.0), "act": choice(["a", "b", "c"]), "epochs": 10}


def _pbt(**options: Any) -> PBT:
    kwargs: dict[str, Any] = dict(resource_attr="epoch", max_t=10, max_resource_attr="epochs", population_size=4,
                                  perturbation_interval=2, seed=0)
    kwargs.update(options)
    return PBT(SPACE, "loss", "min", **kwargs)


def _report(s: PBT, tid: int, config: dict[str, Any], epoch: int, loss: float) -> Decision:
    return s.on_result(Trial(tid, config), {"loss": loss, "epoch": epoch})


def _start_population(s: PBT, losses: list[float]) -> dict[int, dict[str, Any]]:
    """Start one trial per loss and take each to its first boundary (epoch 2) with that loss."""
    configs = {}
    for tid in range(len(losses)):
        sug = s.suggest(tid)
        assert sug is not None and not sug.is_resume
        configs[tid] = sug.config
    for tid, loss in enumerate(losses):
        assert _report(s, tid, configs[tid], 1, loss + 1.0) is Decision.CONTINUE
        assert _report(s, tid, configs[tid], 2, loss) is Decision.PAUSE
    return configs


# -- the exploit rule ------------------------------------------------------------------------------


def test_a_full_population_starts_first_then_the_bottom_quartile_exploits_the_top() -> None:
    s = _pbt()
    configs = _start_population(s, [0.1, 0.5, 0.3, 0.9])
    # paused in the order 0, 1, 2, 3 at the same boundary: decided in that order; n = 4, k = 1:
    # top = [0] (0.1), bottom = [3] (0.9)
    assert s.quantiles(0) == ([0], [3])
    assert s.suggest(4) == Suggestion.resume(0)
    assert s.suggest(4) == Suggestion.resume(1)
    assert s.suggest(4) == Suggestion.resume(2)
    exploit = s.suggest(4)
    assert exploit is not None and exploit.resume_trial_id == 3 and exploit.checkpoint_trial_id == 0
    assert exploit.config is not None and exploit.config["epochs"] == 10
    assert exploit.config["x"] != configs[0]["x"] or exploit.config["act"] != configs[0]["act"]
    assert s.suggest(4) is None  # nothing paused, population full
    # trial 3 goes on from trial 0's resource (2): its next boundary is 4
    assert _report(s, 3, exploit.config, 3, 0.05) is Decision.CONTINUE
    assert _report(s, 3, exploit.config, 4, 0.04) is Decision.PAUSE


def test_an_asynchronous_population_is_compared_at_the_deciding_trials_boundary() -> None:
    s = _pbt(population_size=8)
    configs = _start_population(s, [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80])
    for tid in range(8):
        assert s.suggest(8) == Suggestion.resume(tid)  # n = 8, k = 2: bottom = [6, 7]...
        if tid == 5:
            break
    # trials 0-5 run ahead to boundary 4; trial 0 gets much worse there
    for tid, loss in [(0, 0.95), (1, 0.15), (2, 0.25), (3, 0.35), (4, 0.45), (5, 0.55)]:
        assert _report(s, tid, configs[tid], 4, loss) is Decision.PAUSE
    # trial 6, decided at boundary 2, sees everyone at boundary 2: trial 0 was the best there
    top, bottom = s.quantiles(6)
    assert top == [0, 1] and bottom == [6, 7]
    # trial 0, decided at boundary 4: trials 6 and 7 (still at 2, 0.7 and 0.8) and 0 (0.95) rank last
    top, bottom = s.quantiles(0)
    assert top == [1, 2] and bottom == [7, 0]


def test_the_due_trial_with_the_lowest_boundary_is_decided_first() -> None:
    s = _pbt(population_size=3)  # floor(3 * 0.25) = 0: nobody exploits
    configs = _start_population(s, [0.1, 0.2, 0.3])
    assert s.suggest(3) == Suggestion.resume(0)
    assert _report(s, 0, configs[0], 4, 0.05) is Decision.PAUSE  # paused last, at boundary 4
    assert [s.suggest(3) for _ in range(2)] == [Suggestion.resume(1), Suggestion.resume(2)]
    assert s.suggest_resume(3) == Suggestion.resume(0)


def test_too_small_a_population_never_exploits() -> None:
    s = _pbt(population_size=3)  # floor(3 * 0.25) = 0
    _start_population(s, [0.1, 0.5, 0.9])
    assert [s.suggest(3) for _ in range(3)] == [Suggestion.resume(t) for t in range(3)]


def test_a_finished_or_failed_trial_is_replaced_by_a_new_one() -> None:
    s = _pbt(population_size=2)
    configs = _start_population(s, [0.1, 0.2])
    s.on_error(Trial(1, configs[1]))
    new = s.suggest(2)
    assert new is not None and not new.is_resume
    assert s.suggest(3) == Suggestion.resume(0)
    for epoch in range(3, 11):
        decision = _report(s, 0, configs[0], epoch, 0.05)
        if decision is Decision.PAUSE:
            assert s.suggest(3) == Suggestion.resume(0)  # trial 2 has no value yet: no quantiles
    assert decision is Decision.CONTINUE  # max_t: the script ends by itself (max_resource_attr)
    s.on_complete(Trial(0, configs[0]), None)
    fresh = s.suggest(3)
    assert fresh is not None and not fresh.is_resume


def test_without_max_resource_attr_a_trial_is_stopped_at_max_t() -> None:
    s = _pbt(population_size=1, max_resource_attr=None, perturbation_interval=20)
    config = s.suggest(0).config  # type: ignore[union-attr]
    decisions = [_report(s, 0, config, e, 1.0 / e) for e in range(1, 11)]
    assert decisions == [Decision.CONTINUE] * 9 + [Decision.STOP]


# -- explore -----------------------------------------------------------------------------------------


def _values(domain: Any, value: Any, n: int = 200) -> set[Any]:
    rng = np.random.default_rng(0)
    out = (perturb(domain, value, rng) for _ in range(n))
    return {round(v, 12) if isinstance(v, float) else v for v in out}


def test_perturbation_of_each_domain_type() -> None:
    assert _values(uniform(0.0, 1.0), 0.5) == {0.4, 0.6}
    assert _values(uniform(0.0, 1.0), 0.9) == {0.72, 1.0}  # clipped to the bound
    assert _values(loguniform(1e-3, 1.0), 0.01) == {0.008, 0.012}
    assert _values(randint(1, 100), 10) == {8, 12}
    assert _values(randint(1, 100), 1) == {1, 2}  # 1 * 0.8 rounds to 1: one step down, clipped; up: 2
    assert _values(lograndint(1, 100), 3) == {2, 4}
    assert _values(ordinal([16, 32, 64, 128]), 32) == {16, 64}
    assert _values(ordinal([16, 32, 64, 128]), 16) == {32}  # at an end: the other way
    assert _values(finrange(0.0, 1.0, 5), 0.5) == {0.25, 0.75}
    assert _values(choice(["a", "b", "c"]), "a") == {"b", "c"}  # unordered: another category


def test_explore_perturbs_or_resamples_only_the_mutable_hyperparameters() -> None:
    space = {"lr": loguniform(1e-4, 1.0), "n": randint(1, 10), "act": choice(["a", "b"]), "epochs": 10}
    source = {"lr": 0.01, "n": 5, "act": "a", "epochs": 10}

    def explored(resample: float, mutable: Any = None) -> list[dict[str, Any]]:
        s = PBT(space, "loss", resource_attr="epoch", max_t=10, resample_probability=resample, mutable=mutable,
                seed=1)
        return [s.explore(source, 0, 2) for _ in range(100)]

    perturbed = explored(0.0)
    assert {round(c["lr"], 12) for c in perturbed} == {0.008, 0.012}
    assert {c["n"] for c in perturbed} == {4, 6} and {c["act"] for c in perturbed} == {"b"}
    assert all(c["epochs"] == 10 for c in perturbed)
    resampled = explored(1.0)
    assert len({c["lr"] for c in resampled}) > 50  # fresh draws, not two factors
    assert all(1e-4 <= c["lr"] <= 1.0 for c in resampled)
    assert {c["act"] for c in resampled} == {"a", "b"}
    only_lr = explored(0.0, "lr")
    assert all(c["n"] == 5 and c["act"] == "a" for c in only_lr)
    assert {round(c["lr"], 12) for c in only_lr} == {0.008, 0.012}


def test_explore_in_a_conditional_space_keeps_exactly_the_active_parameters() -> None:
    space = {"optimizer": choice(["sgd", "momentum"]),
             "momentum": uniform(0.5, 0.99).when(optimizer="momentum"),
             "lr": loguniform(1e-4, 1.0), "epochs": 10}
    source = {"optimizer": "sgd", "lr": 0.01, "epochs": 10}
    for method in (PBT, PB2):
        s = method(space, "loss", resource_attr="epoch", max_t=10, resample_probability=0.0, seed=1)
        explored = [s.explore(source, 0, 2) for _ in range(20)]
        # the choice flips (perturbed: another category), and the momentum it switches on is drawn
        assert all(c["optimizer"] == "momentum" and 0.5 <= c["momentum"] <= 0.99 for c in explored), method
        assert len({c["momentum"] for c in explored}) > 10
        back = [s.explore({"optimizer": "momentum", "momentum": 0.9, "lr": 0.01, "epochs": 10}, 0, 2)
                for _ in range(20)]
        assert all(c["optimizer"] == "sgd" and "momentum" not in c for c in back), method


def test_mutable_from_the_command_line_and_its_errors() -> None:
    space = {"lr": loguniform(1e-4, 1.0), "momentum": uniform(0, 1), "n_units": randint(1, 9), "epochs": 5}
    assert parse_mutable(space, "lr, momentum") == ["lr", "momentum"]
    assert parse_mutable(space, ["momentum"]) == ["momentum"]
    assert parse_mutable(space, None) == ["lr", "momentum", "n_units"]
    with pytest.raises(UserError, match="epochs is no hyperparameter"):
        make_scheduler("PBT", space, metric="loss", resource_attr="epoch", max_t=5, mutable="lr,epochs")
    with pytest.raises(UserError, match="quantile_fraction"):
        make_scheduler("PBT", space, metric="loss", resource_attr="epoch", max_t=5, quantile_fraction=0.7)
    s = make_scheduler("PBT", space, metric="loss", resource_attr="epoch", max_t=20)
    assert isinstance(s, PBT) and s.perturbation_interval == 2 and s.population_size == 4  # max_t / 10


# -- PB2 ---------------------------------------------------------------------------------------------


def _drive(s: PBT, gain: Any, max_t: int, max_trials: int = 40) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Run ``s`` with one worker on a loss that falls by ``gain(config)`` per epoch from 10, up to
    ``max_trials`` trials; returns the (source config, explored config) of every exploit."""
    state: dict[int, list[Any]] = {}  # trial id -> [config, epoch, loss]
    exploits = []
    next_id = 0
    for _ in range(10_000):
        sug = s.suggest(next_id)
        if sug is None:
            break
        if sug.resume_trial_id is None:
            if next_id >= max_trials:
                break
            tid, next_id = next_id, next_id + 1
            assert sug.config is not None
            state[tid] = [sug.config, 0, 10.0]
        else:
            tid = sug.resume_trial_id
            if sug.checkpoint_trial_id is not None:
                src = state[sug.checkpoint_trial_id]
                assert sug.config is not None
                exploits.append((src[0], sug.config))
                state[tid] = [sug.config, src[1], src[2]]
        st = state[tid]
        while True:
            st[1] += 1
            st[2] -= gain(st[0])
            decision = s.on_result(Trial(tid, st[0]), {"loss": st[2], "epoch": st[1]})
            if st[1] >= max_t:
                s.on_complete(Trial(tid, st[0]), None)
                break
            if decision is not Decision.CONTINUE:
                break
    return exploits


def test_pb2_explores_towards_the_region_that_improves_fastest() -> None:
    space = {"x": uniform(0.0, 1.0), "epochs": 30}

    def gain(config: dict[str, Any]) -> float:
        return 0.1 * (1.0 - abs(config["x"] - 0.8))

    options: dict[str, Any] = dict(resource_attr="epoch", max_t=30, max_resource_attr="epochs", population_size=8,
                                   perturbation_interval=2, seed=3)
    # the exploits of the first population (8 trials), the later half (the GP has data by then)
    pb2 = _drive(PB2(space, "loss", "min", **options), gain, 30, max_trials=8)
    pbt = _drive(PBT(space, "loss", "min", **options), gain, 30, max_trials=8)
    assert len(pb2) >= 10 and len(pbt) >= 10
    pb2_dist = float(np.median([abs(new["x"] - 0.8) for _, new in pb2[len(pb2) // 2:]]))
    pbt_dist = float(np.median([abs(new["x"] - 0.8) for _, new in pbt[len(pbt) // 2:]]))
    assert pb2_dist < 0.05, pb2_dist
    assert pbt_dist > 0.1, pbt_dist  # PBT's x0.8 / x1.2 steps around the sources near 0.8


def test_pb2_is_deterministic_given_its_seed() -> None:
    """(Its state round trip mid-run is checked by the scheduler contract suite.)"""
    space = {"x": uniform(0.0, 1.0), "y": loguniform(1e-3, 1.0), "epochs": 20}
    options: dict[str, Any] = dict(resource_attr="epoch", max_t=20, max_resource_attr="epochs", population_size=8,
                                   perturbation_interval=2, seed=5)

    def gain(c: dict[str, Any]) -> float:
        return 0.1 * c["x"] * c["y"]

    runs = [_drive(PB2(space, "loss", "min", **options), gain, 20, max_trials=12) for _ in range(2)]
    assert len(runs[0]) >= 5 and runs[0] == runs[1]


# -- end to end ----------------------------------------------------------------------------------------


def _check_exploits(events: list[dict[str, Any]], ahead_ok: bool = False) -> list[dict[str, Any]]:
    """Every exploit names a source whose resource before it (its last result, or the resource it
    took with a checkpoint of its own) is the exploit's resource; the target's next result
    continues from there, or, with ``ahead_ok`` (real trial processes), later: the source was
    still running and had saved a later checkpoint by the time it was copied (or the tuner was
    killed before that result and redid the copy); returns the exploit resume events."""
    exploits = []
    last: dict[int, Any] = {}
    waiting: dict[int, Any] = {}  # target -> resource it goes on from
    for ev in events:
        if ev["event"] == "result":
            tid, r = ev["trial_id"], ev["result"]["epoch"]
            if tid in waiting:
                assert r == waiting[tid] + 1 or (ahead_ok and r > waiting[tid] + 1), (tid, r)
                del waiting[tid]
            last[tid] = r
        elif ev["event"] == "trial_resume" and ev.get("exploit"):
            ex = ev["exploit"]
            assert ex["source"] != ev["trial_id"] and ex["resource"] == last[ex["source"]]
            assert ex["changes"], "the explored config differs"
            assert ev["config"] is not None
            waiting[ev["trial_id"]] = last[ev["trial_id"]] = ex["resource"]
            exploits.append(ev)
    return exploits


@pytest.mark.parametrize("method", ["PBT", "PB2"])
def test_pbt_on_lcbench_in_the_simulator(tmp_path: Path, method: str, shared_data: Path) -> None:
    pytest.importorskip("onnxruntime", reason="lcbench needs the yahpo extra (onnxruntime)")
    from tunebench.launch import build_tuner, spec_from_benchmark
    from tunebench.store import load_experiment

    spec = spec_from_benchmark("lcbench-3945", data_dir=shared_data)
    spec.method, spec.method_kwargs = method, {"population_size": 8, "perturbation_interval": 5}
    spec.max_wallclock_time, spec.max_trials, spec.charge_decision_time = None, 12, False
    result = build_tuner(spec, tmp_path / "exp").run()
    assert result.n_failed == 0
    events = [json.loads(line) for line in (tmp_path / "exp" / "events.jsonl").read_text().splitlines()]
    exploits = _check_exploits(events)
    assert len(exploits) >= 5
    df = load_experiment(tmp_path / "exp").results
    assert df.groupby("trial_id")["epoch"].max().max() == 52  # lcbench's last epoch
    starts = {e["trial_id"]: e["config"] for e in events if e["event"] == "trial_start"}
    changed = {e["trial_id"] for e in exploits if e["config"] != starts[e["trial_id"]]}
    assert len(changed) >= 3


def _tunebench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_pbt_on_the_digits_mlp_copies_checkpoints_through_a_kill_and_resume(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    args = ["--script", SCRIPT, "--method", "PBT", "--method-arg", "mutable=lr,momentum,weight_decay",
            "--method-arg", "population_size=4", "--method-arg", "perturbation_interval=2", "--max-resource", "8",
            "--max-trials", "5", "--n-workers", "2", "--seed", "1"]
    logged = kill_when([sys.executable, "-m", "tunebench", "run", *args, "--experiment-dir", str(exp), "--no-progress"],
                       exp, lambda events: any(e.get("exploit") for e in events))
    before = [e for e in logged if e.get("event") == "result"]
    resumed = _tunebench("resume", str(exp), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = logged_events(exp)
    results = [e for e in events if e.get("event") == "result"]
    assert [(e["trial_id"], e["result"]["epoch"]) for e in results[: len(before)]] == \
           [(e["trial_id"], e["result"]["epoch"]) for e in before]
    assert not any(e.get("event") == "trial_fail" for e in events)
    exploits = _check_exploits(events, ahead_ok=True)
    assert exploits
    assert _checkpoint_came_from_the_source(events, exploits) >= 1
    for e in events:
        if e.get("event") in ("trial_start", "trial_resume") and e.get("config"):
            assert e["config"]["epochs"] == 8
    summary = json.loads(_tunebench("show", str(exp), "--json").stdout)
    assert summary["finished"] and summary["n_running"] == 0


def _lineage_values(events: list[dict[str, Any]], exploits: list[dict[str, Any]], trial: int, resource: float,
                    before: int) -> list[float]:
    """The value(s) ``trial``'s weights had at ``resource`` when event ``before`` was logged: a
    trial that had itself taken another's checkpoint at that resource or later has that one's."""
    own = [ex for ex in exploits if ex["trial_id"] == trial and ex["seq"] < before]
    if own and own[-1]["exploit"]["resource"] >= resource:
        last = own[-1]
        return _lineage_values(events, exploits, last["exploit"]["source"], resource, last["seq"])
    since = own[-1]["seq"] if own else -1
    return [e["result"]["val_error"] for e in events
            if e.get("event") == "result" and e["trial_id"] == trial and since < e["seq"] < before
            and e["result"]["epoch"] == resource]


def _checkpoint_came_from_the_source(events: list[dict[str, Any]], exploits: list[dict[str, Any]]) -> int:
    """How many exploits are proven by the digits MLP's re-report: it reports again the epoch of
    the checkpoint it resumes from, which after an exploit must be the source's weights: the
    source's epoch with the source's error, not the target's own (logged ignored: already
    reported), or, when the source was still running and had saved a later checkpoint by the
    time it was copied, that later epoch with the error the source reported for it. Asserts
    each one it finds."""
    by_trial: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        if e.get("event") in ("result", "result_ignored"):
            by_trial.setdefault(e["trial_id"], []).append(e)
    checked = 0
    for ex in exploits:
        target, source, resource = ex["trial_id"], ex["exploit"]["source"], ex["exploit"]["resource"]
        # (a result of the target's own run that was still on its way when the copy was decided
        # is logged ignored as such, after the exploit: not a result of the copied weights)
        after = [e for e in by_trial.get(target, []) if e["seq"] > ex["seq"]
                 and "took the checkpoint" not in e.get("reason", "")]
        if not after:
            continue
        first, epoch = after[0], after[0]["result"]["epoch"]
        assert epoch >= resource, (target, epoch, resource)
        if epoch == resource:
            values = _lineage_values(events, exploits, source, resource, ex["seq"])
            assert first["event"] == "result_ignored"
        else:  # the running source's later checkpoint: its own run's value at that epoch
            exploited = [x["seq"] for x in exploits if x["trial_id"] == source]
            since = max([q for q in exploited if q < ex["seq"]], default=-1)
            until = min([q for q in exploited if q > ex["seq"]], default=len(events))
            values = [e["result"]["val_error"] for e in by_trial[source]
                      if e["event"] == "result" and since < e["seq"] < until and e["result"]["epoch"] == epoch]
        if values:
            assert first["result"]["val_error"] == values[0], (target, source, epoch)
            checked += 1
    return checked


@pytest.mark.slow
def test_pbt_on_ray_copies_checkpoints_through_the_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray", reason="the Ray backend tests need Ray: pip install 'tunebench[ray]'")
    from tunebench.backends.ray_backend import RayBackend
    from tunebench.examples import mlp_digits
    from tunebench.testing.ray_cluster import LocalRayCluster
    from tunebench.tuner import StopCriteria, Tuner

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    storage, exp = tmp_path / "storage", tmp_path / "exp"
    space = {**mlp_digits.CONFIG_SPACE, "epochs": 8}
    scheduler = make_scheduler("PBT", space, metric="val_error", mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", seed=2, population_size=4, perturbation_interval=2,
                               mutable="lr,momentum,weight_decay")
    with LocalRayCluster(head_cpus=0, workers={"node_a": 2, "node_b": 2}) as cluster:
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            backend = RayBackend(script=str(Path(mlp_digits.__file__).resolve()), storage=f"file://{storage}")
            # (2 workers for 4 members: a member deciding at its boundary sees the others there)
            result = Tuner(backend, scheduler, n_workers=2, stop=StopCriteria(max_trials=4), experiment_dir=exp).run()
        finally:
            ray.shutdown()
    assert result.n_failed == 0
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    exploits = _check_exploits(events, ahead_ok=True)
    assert exploits, "PBT exploited"
    assert _checkpoint_came_from_the_source(events, exploits) >= 1
    prefix = json.loads((exp / "ray_storage.json").read_text())["prefix"]
    for ex in exploits:
        tid = ex["trial_id"]
        assert (storage / prefix / "trials" / str(tid) / "checkpoint").is_dir()
        assert not (exp / "trials" / str(tid) / "checkpoint").exists(), "the copy went through the storage"
