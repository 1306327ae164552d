"""`tunebench run --backend ray` against a cluster whose worker nodes are still joining: the Ray
backend waits (``--ray-node-wait``, 60 s by default for the command line) for a node that can hold
one trial, saying what it waits for, instead of failing at once (issue 13).

A real cluster of ``ray start`` processes on this machine (slow: ``make test`` runs it)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray backend tests need Ray: pip install 'tunebench[ray]'")

from tunebench.backends.ray_backend import alive_nodes, format_nodes, node_fits  # noqa: E402
from tunebench.errors import UserError  # noqa: E402
from tunebench.examples import mlp_digits  # noqa: E402
from tunebench.launch import RunSpec, build_backend  # noqa: E402
from tunebench.testing.ray_cluster import LocalRayCluster  # noqa: E402

SCRIPT = str(Path(mlp_digits.__file__).resolve())


def ray_spec(address: str, wait: float) -> RunSpec:
    return RunSpec(script=SCRIPT, config_space={}, metric="val_error", backend="ray", ray_address=address,
                   ray_node_wait=wait, cpus_per_trial=1)


def test_the_command_line_waits_a_minute_by_default():
    assert RunSpec(script="x.py", config_space={}, metric="loss").ray_node_wait == 60.0


@pytest.mark.slow
def test_the_ray_backend_waits_for_a_node_that_joins_late(monkeypatch, caplog):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    # only a head without CPUs: no node can hold a trial yet
    with LocalRayCluster(head_cpus=0, workers={}) as cluster:
        with pytest.raises(UserError, match=r"no node of the Ray cluster can hold one trial's resources \{CPU: 1\} "
                                            r"within 1 s .*--ray-node-wait SECONDS"):
            build_backend(ray_spec(cluster.address, 1.0))
        assert not ray.is_initialized(), "the refused backend disconnected"

        # the backend waits in a thread; the node is started from this one (a node dies with the thread
        # that started it: LocalRayCluster's nodes get PR_SET_PDEATHSIG)
        built: dict[str, object] = {}

        def build() -> None:
            try:
                built["backend"] = build_backend(ray_spec(cluster.address, 300.0))
            except BaseException as err:  # noqa: BLE001 - re-raised below, in the test's thread
                built["error"] = err

        with caplog.at_level(logging.WARNING, logger="tunebench.backends.ray_backend"):
            builder = threading.Thread(target=build)
            builder.start()
            while builder.is_alive() and not any("waiting up to" in r.getMessage() for r in caplog.records):
                time.sleep(0.1)
            assert builder.is_alive(), f"the backend waits while no node can hold a trial: {built}"
            time.sleep(2.0)  # a few looks at the cluster while it waits
            cluster.workers["late"] = 2
            cluster.restart_node("late")  # starts it (it never ran), as a new Ray node
            builder.join(300)
        if "error" in built:
            raise built["error"]  # type: ignore[misc]
        backend = built["backend"]
        try:
            said = [r.getMessage() for r in caplog.records if "waiting up to" in r.getMessage()]
            assert said, "the backend said what it waits for"
            assert "a node of the Ray cluster that can hold one trial {CPU: 1}" in said[0]
            nodes = alive_nodes()
            assert [n for n in nodes if node_fits(n, {"CPU": 1})], f"built once a node fits: {format_nodes(nodes)}"
        finally:
            backend.shutdown()  # type: ignore[attr-defined]
