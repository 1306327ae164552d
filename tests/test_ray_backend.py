"""The Ray backend on a real multi-node Ray cluster started on this machine: a head node and two
worker nodes, each its own ``ray start`` process with its own CPUs and a custom resource naming
it. Trials run the example training script (and small scripts written here) as real processes
launched by Ray actors; a node is killed by SIGKILLing its whole process tree.

Everything but the first test is marked slow (a cluster takes ~10 s to start): ``make test``
runs them. They need Ray (``make test`` installs it through the dev extras)."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray backend tests need Ray: pip install 'tunebench[ray]'")

from tunebench.backends.ray_backend import NODES_FILENAME, RayBackend  # noqa: E402
from tunebench.errors import UserError  # noqa: E402
from tunebench.examples import mlp_digits  # noqa: E402
from tunebench.schedulers import make_scheduler  # noqa: E402
from tunebench.store import load_experiment  # noqa: E402
from tunebench.testing.ray_cluster import LocalRayCluster  # noqa: E402
from tunebench.tuner import Callback, StopCriteria, Tuner  # noqa: E402
from tunebench.types import EventKind, Trial  # noqa: E402

SCRIPT = str(Path(mlp_digits.__file__).resolve())


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="module")
def cluster():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setenv("RAY_AUTH_MODE", "disabled")
        if ray.is_initialized():
            ray.shutdown()
        with LocalRayCluster(head_cpus=0, workers={"node_a": 2, "node_b": 2}) as c:
            ray.init(address=c.address, log_to_driver=False)
            try:
                yield c
            finally:
                ray.shutdown()


def node_runs(trial_dir: Path) -> list[dict]:
    path = trial_dir / NODES_FILENAME
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def digits_scheduler(method: str = "RS", **kw):
    return make_scheduler(method, config_space=mlp_digits.CONFIG_SPACE, metric="val_error", mode="min",
                          resource_attr="epoch", max_resource_attr="epochs", max_t=27, seed=0, **kw)


def write_script(path: Path, body: str) -> str:
    path.write_text("import sys, time\nfrom tunebench import report\n" + textwrap.dedent(body))
    return str(path)


def test_unreachable_address_is_a_clear_error_before_anything_runs():
    if ray.is_initialized():
        ray.shutdown()
    t0 = time.monotonic()
    with pytest.raises(UserError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1 .*ray start --head"):
        RayBackend(script=SCRIPT, address="127.0.0.1:1")
    assert time.monotonic() - t0 < 30  # (the probe gives up after 5 s; ray.init would wait minutes)
    assert not ray.is_initialized()
    with pytest.raises(UserError, match="expected HOST:PORT"):
        RayBackend(script=SCRIPT, address="no-port-here")


@pytest.mark.slow
def test_resource_requests_no_node_can_hold_are_refused(cluster):
    with pytest.raises(UserError, match=r"no node of the Ray cluster can hold one trial's resources \{CPU: 1, node_b"):
        RayBackend(script=SCRIPT, resources_per_trial={"node_b": 2})
    with pytest.raises(UserError, match=r"\{CPU: 3\}.*node_a: 1.*--cpus-per-trial"):
        RayBackend(script=SCRIPT, num_cpus_per_trial=3)
    with pytest.raises(UserError, match="node_c"):
        RayBackend(script=SCRIPT, resources_per_trial={"node_c": 1})
    # a request one node can hold is fine, even if the other cannot
    RayBackend(script=SCRIPT, resources_per_trial={"node_b": 1}).shutdown()
    # GPUs per trial mean "where there are GPUs", as on the local backend: none here
    backend = RayBackend(script=SCRIPT, num_gpus_per_trial=1)
    assert backend.num_gpus_per_trial == 0
    backend.shutdown()
    assert ray.is_initialized(), "a backend does not disconnect a Ray connection it did not make"


@pytest.mark.slow
def test_a_script_or_interpreter_missing_on_the_nodes_is_refused(cluster):
    ids = cluster.node_ids()

    with pytest.raises(UserError, match="same path on every node") as info:
        RayBackend(script="/nonexistent/train.py")
    message = str(info.value)
    assert "has no /nonexistent/train.py" in message
    assert ids["node_a"][:8] in message and ids["node_b"][:8] in message
    assert ids["head"][:8] not in message, "the head has no CPU: no trial runs there, it is not checked"
    with pytest.raises(UserError, match="has no interpreter /nonexistent/python"):
        RayBackend(script=SCRIPT, python="/nonexistent/python")


@pytest.mark.slow
def test_results_stream_back_while_the_trial_runs_and_stop_ends_it(cluster, tmp_path):
    script = write_script(tmp_path / "slow.py", """
        report(step=1, loss=0.5)
        time.sleep(60)
        report(step=2, loss=0.25)
    """)
    backend = RayBackend(script=script, kill_grace_period=1.0)
    try:
        trial_dir = tmp_path / "exp" / "trials" / "0"
        trial_dir.mkdir(parents=True)
        t0 = time.monotonic()
        backend.start(Trial(0, {"x": 1}), trial_dir)
        events = []
        while not events and time.monotonic() - t0 < 30:
            events = backend.poll(1.0)
        assert [e.kind for e in events] == [EventKind.RESULT]
        assert events[0].result["loss"] == 0.5
        assert backend.n_busy == 1, "the first result arrives while the script still runs"
        backend.stop(0)
        final = []
        while not final and time.monotonic() - t0 < 30:
            final = backend.poll(1.0)
        assert [e.kind for e in final] == [EventKind.STOPPED]
        assert time.monotonic() - t0 < 20, "stopped long before the script's 60 s sleep ended"
        assert backend.n_busy == 0
        runs = node_runs(trial_dir)
        assert len(runs) == 1 and runs[0]["node_id"] in set(cluster.node_ids().values())
    finally:
        backend.shutdown()


@pytest.mark.slow
def test_warm_pool_reuses_actors_and_reports_the_start_up_saved(cluster, tmp_path):
    script = write_script(tmp_path / "quick.py", "report(epoch=1, loss=float(sys.argv[-1]))\n")
    space = {"x": __import__("tunebench").space.uniform(0, 1)}
    figures = {}
    for warm in (True, False):
        # (the cold case also starts each run as a new interpreter: the Ray path of --no-warm-start)
        backend = RayBackend(script=script, warm_pool=warm, warm_start=warm)
        scheduler = make_scheduler("RS", config_space=space, metric="loss", mode="min", seed=0)
        tuner = Tuner(backend, scheduler, n_workers=2, stop=StopCriteria(max_trials=12),
                      experiment_dir=tmp_path / f"warm{warm}")
        result = tuner.run()
        assert result.n_completed == 12 and result.n_failed == 0
        figures[warm] = dict(backend.stats), backend.startup_saved()
    (warm_stats, saved), (cold_stats, cold_saved) = figures[True], figures[False]
    assert warm_stats["actors_created"] <= 3, "two workers: two actors (a third at most, created while one frees)"
    assert warm_stats["warm_runs"] >= 9
    assert cold_stats["actors_created"] == 12 and cold_stats["warm_runs"] == 0
    assert saved > 0 and cold_saved == 0
    mean = lambda s, k: s[f"{k}_startup_s"] / s[f"{k}_runs"]  # noqa: E731
    assert mean(warm_stats, "warm") < mean(cold_stats, "cold"), "a warm actor starts a trial sooner"


def test_the_storage_gets_whole_files_and_never_partial_ones(tmp_path):
    """A push writes each file through a temporary name renamed over it (a checkpoint is copied
    to another trial while its run pushes a newer one), skips a checkpoint file still being
    written, and a pull skips another push's temporary file."""
    from tunebench.backends.ray_backend import _Storage

    local, storage = tmp_path / "run", tmp_path / "storage"
    (local / "checkpoint").mkdir(parents=True)
    (local / "checkpoint" / "model.pt").write_bytes(b"epoch 1")
    (local / "checkpoint" / ".model.pt.x1y2.tmp").write_bytes(b"half of epo")
    store = _Storage(f"file://{storage}")
    store.push(local, "trials/0")
    remote = storage / "trials" / "0" / "checkpoint"
    assert sorted(p.name for p in remote.iterdir()) == ["model.pt"]
    (local / "checkpoint" / "model.pt").write_bytes(b"epoch 2, longer")
    store.push(local, "trials/0")
    assert (remote / "model.pt").read_bytes() == b"epoch 2, longer"
    assert sorted(p.name for p in remote.iterdir()) == ["model.pt"], "no temporary file is left"
    (remote / ".model.pt.a1b2.tmp").write_bytes(b"epoch 3 on its wa")
    pulled = _Storage(f"file://{storage}").pull(str(tmp_path / "unused"), "trials/0")
    assert sorted(p.name for p in (pulled / "checkpoint").iterdir()) == ["model.pt"]
    assert (pulled / "checkpoint" / "model.pt").read_bytes() == b"epoch 2, longer"


@pytest.mark.slow
def test_paused_trials_resume_from_checkpoints_kept_on_a_storage_url(cluster, tmp_path):
    storage = tmp_path / "storage"
    backend = RayBackend(script=SCRIPT, storage=f"file://{storage}")
    scheduler = digits_scheduler("ASHA-promotion", grace_period=1, reduction_factor=3)
    exp = tmp_path / "exp"
    result = Tuner(backend, scheduler, n_workers=4, stop=StopCriteria(max_trials=12), experiment_dir=exp).run()
    assert result.n_failed == 0
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    resumed = {e["trial_id"] for e in events if e.get("event") == "trial_resume"}
    assert resumed, "promotion-type ASHA paused and resumed trials"
    df = load_experiment(exp).results
    for tid in resumed:
        epochs = df[df.trial_id == tid].epoch.tolist()
        assert epochs == list(range(1, len(epochs) + 1)), f"trial {tid} went on from its checkpoint: {epochs}"
        prefix = json.loads((exp / "ray_storage.json").read_text())["prefix"]
        assert prefix.startswith(exp.name + "-")
        remote = storage / prefix / "trials" / str(tid)
        assert (remote / "checkpoint").is_dir() and any((remote / "checkpoint").iterdir())
        lines = (remote / "results.jsonl").read_text().splitlines()
        # the storage holds every report the tuner logged for the trial, in order: the decided ones,
        # the checkpointed epoch a resumed run reports again (result_ignored) and one reported while
        # the trial was being paused (result_deferred, then logged again as the result decided on at
        # its resume, with the same offset: one line of the file)
        logged, offsets = [], set()
        for e in events:
            if e.get("trial_id") == tid and e.get("event") in ("result", "result_deferred", "result_ignored"):
                if e.get("offset") is not None and e["offset"] in offsets:
                    continue
                offsets.add(e.get("offset"))
                logged.append(e["result"]["epoch"])
        assert [json.loads(x)["epoch"] for x in lines] == logged and set(epochs) <= set(logged)
        runs = node_runs(remote)
        assert [r["how"] for r in runs][:2] == ["start", "resume"]
        assert not (exp / "trials" / str(tid) / "checkpoint").exists(), "runs work on scratch copies"
    # every trial folder lives on the storage, whichever node ran it: 4 one-CPU actors on two nodes of 2 CPUs
    # each ran on both (which node a resumed trial lands on is Ray's choice, not asserted: it once was one)
    trial_dirs = list((storage / prefix / "trials").iterdir())
    nodes = {r["node_id"] for d in trial_dirs for r in node_runs(d)}
    assert len(trial_dirs) == 12 and len(nodes) == 2, "the actors of both worker nodes ran trials from the storage"


class _KillNodeB(Callback):
    """Kills worker node_b as soon as two trials run there and have reported."""

    def __init__(self, cluster: LocalRayCluster, exp: Path) -> None:
        self.cluster, self.exp = cluster, exp
        self.node_b = cluster.node_ids()["node_b"]
        self.victims: dict[int, int] = {}  # trial id -> results recorded before the kill
        self.killed_at: float | None = None

    def on_result(self, tuner, trial, result, decision) -> None:
        if self.killed_at is not None:
            return
        running = [r for r in tuner.trials.values() if r.status.value == "running"]
        on_b = [r for r in running if (runs := node_runs(self.exp / "trials" / str(r.trial.trial_id)))
                and runs[-1]["node_id"] == self.node_b and r.n_results >= 3]
        if len(on_b) >= 2:
            self.victims = {r.trial.trial_id: r.n_results for r in on_b}
            self.cluster.kill_node("node_b")
            self.killed_at = time.time()


@pytest.mark.slow
def test_trials_spread_over_both_nodes_and_survive_a_node_death(cluster, tmp_path):
    exp = tmp_path / "exp"
    backend = RayBackend(script=SCRIPT, max_retries=2)
    killer = _KillNodeB(cluster, exp)
    tuner = Tuner(backend, digits_scheduler("RS"), n_workers=4, stop=StopCriteria(max_trials=10),
                  experiment_dir=exp, callbacks=[killer])
    try:
        result = tuner.run()
    finally:
        if "node_b" not in cluster._procs:
            cluster.restart_node("node_b")

    assert killer.killed_at is not None, "two trials ran on node_b at once"
    assert result.n_failed == 0 and result.n_completed == 10, "the tuner went on after the node died"
    first_nodes = {node_runs(exp / "trials" / str(t))[0]["node_id"] for t in range(10)}
    assert len(first_nodes) == 2, "trials were spread over both worker nodes"
    df = load_experiment(exp).results
    for tid, n_before in killer.victims.items():
        runs = node_runs(exp / "trials" / str(tid))
        assert [r["how"] for r in runs] == ["start", "retry"]
        assert runs[1]["node_id"] not in (runs[0]["node_id"],), "resumed elsewhere"
        epochs = df[df.trial_id == tid].epoch.tolist()
        assert len(epochs) >= n_before, "nothing recorded before the kill was lost"
        assert epochs == list(range(1, 28)), f"trial {tid} completed every epoch once: {epochs}"
    assert backend.stats["retries"] == len(killer.victims)


RAY_FUNCTION_MODULE = """
import os
from tunebench import report

def parent_program():
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
        return f.read().replace(b"\\0", b" ").decode()

def train(config):
    for epoch in range(1, config["epochs"] + 1):
        report(epoch=epoch, loss=config["x"] / epoch, parent=parent_program())
"""


@pytest.mark.slow
def test_tune_a_function_on_ray_with_warm_starts_in_the_actors(cluster, tmp_path, monkeypatch):
    from tunebench import tune

    (tmp_path / "ray_fn_module.py").write_text(RAY_FUNCTION_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("ray_fn_module")
    try:
        result = tune(module.train, {"x": __import__("tunebench").space.uniform(0, 1), "epochs": 3}, metric="loss",
                      method="ASHA", resource_attr="epoch", max_resource_attr="epochs", n_workers=2, max_trials=8,
                      backend="ray", experiment_dir=tmp_path / "exp")
    finally:
        __import__("sys").modules.pop("ray_fn_module", None)
    assert result.n_trials == 8 and result.n_failed == 0
    df = load_experiment(tmp_path / "exp").results
    # each run's process is the child of a supervisor forked by its actor's prepared interpreter
    # (whose command line is warm_server.py's), not of a supervisor started as a new interpreter
    assert df["parent"].str.contains("warm_server.py").all(), df["parent"].unique()
    assert len(df) == result.n_results and df["trial_id"].nunique() == 8
