"""A real multi-node Ray cluster on this machine, for tests and benchmarks.

Each node is its own ``ray start --block`` process (a head node and any number of worker nodes,
each with its own CPUs and custom resources), so killing one node's process tree is what
happens when a machine of a real cluster dies: its raylet, its object store and every worker
process on it (and the training scripts they run) disappear at once.

Usage::

    with LocalRayCluster(head_cpus=0, workers={"node_a": 2, "node_b": 2}) as cluster:
        backend = RayBackend(script=..., address=cluster.address)
        ...
        cluster.kill_node("node_b")

Every worker node gets a custom resource named after it (``{"node_a": 1}``) so work can be
pinned to it, and :meth:`LocalRayCluster.node_ids` maps names to Ray node ids. Needs the
``ray`` extra and psutil.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LocalRayCluster"]

logger = logging.getLogger(__name__)

#: environment of every node: no usage reporting, no token prompt, quick detection of dead nodes
NODE_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    # a dead node is noticed within about 2 s instead of the default 15 s or more
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


def _terminate_with_parent() -> Any:
    """A ``preexec_fn``: on Linux, SIGTERM the node's ``ray start --block`` process when the
    process that started the cluster dies without stopping it (a test run killed by a timeout);
    it then ends its node's processes itself."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)

    return preexec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_executable() -> str:
    exe = Path(sys.executable).with_name("ray")
    if exe.exists():
        return str(exe)
    found = shutil.which("ray")
    if found is None:
        raise RuntimeError("the `ray` command is not installed (pip install 'tunebench[ray]')")
    return found


class LocalRayCluster:
    """Start a head node and worker nodes as separate ``ray start`` processes on this machine.

    Args:
        head_cpus: CPUs of the head node (0: no work scheduled there, only the tuner's driver).
        workers: worker node name -> CPUs; each gets the custom resource ``{name: 1}``.
        object_store_memory: bytes of object store per node (Ray's default reserves ~30% of RAM).
        env: extra environment variables for every node process.
        start_timeout: seconds to wait for all nodes to join.
    """

    def __init__(
        self,
        *,
        head_cpus: int = 0,
        workers: Mapping[str, int] | None = None,
        object_store_memory: int = 80 * 2**20,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.head_cpus = head_cpus
        self.workers = dict(workers if workers is not None else {"node_a": 2, "node_b": 2})
        self.object_store_memory = object_store_memory
        self.env = {**os.environ, **NODE_ENV, **(env or {})}
        self.start_timeout = start_timeout
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        # short: Ray puts unix sockets under it (107-byte limit on their paths)
        self.temp_dir = tempfile.mkdtemp(prefix="tbray", dir="/tmp")
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Path] = {}
        self._node_ids: dict[str, str] = {}

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> LocalRayCluster:
        """Start every node and wait until all have joined; returns self. On failure, what was
        started is stopped again."""
        try:
            self._spawn("head", [_ray_executable(), "start", "--head", f"--port={self.port}",
                                 f"--num-cpus={self.head_cpus}", "--include-dashboard=false",
                                 f"--temp-dir={self.temp_dir}", *self._common_args()])
            self._wait_for_nodes(1)
            for name in self.workers:  # one at a time: nodes joining at once can time out on a busy machine
                self._spawn_worker(name)
                self._wait_for_nodes(1)
        except BaseException:
            self.stop()
            raise
        return self

    def _common_args(self) -> list[str]:
        # ports chosen by the system, not Ray's fixed defaults (dashboard agent 52365, workers from
        # 10002): several clusters on one machine (parallel test runs) must not collide
        return ["--block", "--disable-usage-stats", f"--object-store-memory={self.object_store_memory}",
                "--min-worker-port=0", "--max-worker-port=0", "--dashboard-agent-listen-port=0"]

    def _spawn_worker(self, name: str) -> None:
        self._spawn(name, [_ray_executable(), "start", f"--address={self.address}", f"--num-cpus={self.workers[name]}",
                           f"--resources={{\"{name}\": 1}}", *self._common_args()])

    def restart_node(self, name: str) -> None:
        """Start worker node ``name`` again (after :meth:`kill_node`), as a new Ray node."""
        if name in self._procs:
            raise RuntimeError(f"ray node {name} is running")
        self._node_ids.clear()
        self._spawn_worker(name)
        self._wait_for_nodes(1)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = Path(self.temp_dir) / f"{name}.log"
        self._logs[name] = log
        with open(log, "wb") as out:
            self._procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                                 preexec_fn=_terminate_with_parent())

    def _wait_for_nodes(self, n: int) -> None:
        """Wait until the last ``n`` nodes spawned said "Ray runtime started." (``ray start``
        says so once its node has registered with the head)."""
        deadline = time.monotonic() + self.start_timeout
        names = list(self._procs)[-n:]
        while True:
            waiting = []
            for name in names:
                proc = self._procs[name]
                text = self._logs[name].read_text(errors="replace")
                if proc.poll() is not None:
                    raise RuntimeError(f"ray node {name} exited with code {proc.returncode}:\n{text[-3000:]}")
                if "Ray runtime started" not in text:
                    waiting.append(name)
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray nodes {waiting} did not start within {self.start_timeout:g} s; "
                                   f"logs under {self.temp_dir}")
            time.sleep(0.1)

    def node_ids(self) -> dict[str, str]:
        """Node name (``"head"`` or a worker's name) -> Ray node id (hex) of the alive nodes.

        Asked through a short-lived driver process (the state API needs the dashboard), once:
        the result is cached until a node is killed."""
        if not self._node_ids:
            code = (f"import json, ray; ray.init(address={self.address!r}, log_to_driver=False); "
                    "print(json.dumps([n for n in ray.nodes() if n['Alive']]))")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=self.env,
                                 timeout=60, check=True).stdout
            nodes = json.loads(out.strip().splitlines()[-1])
            for node in nodes:
                resources = node.get("Resources") or {}
                names = [name for name in self.workers if name in resources]
                self._node_ids[names[0] if names else "head"] = node["NodeID"]
        return dict(self._node_ids)

    def kill_node(self, name: str) -> None:
        """SIGKILL every process of node ``name`` at once (raylet, object store, workers and the
        training scripts they run), as when its machine dies."""
        proc = self._procs.pop(name)
        self._node_ids.clear()
        n = _end_tree(proc, graceful=False)
        logger.info("killed ray node %s (%d processes)", name, n)

    def stop(self) -> None:
        """End every node (workers first, then the head); idempotent."""
        for name in [n for n in self._procs if n != "head"] + (["head"] if "head" in self._procs else []):
            _end_tree(self._procs.pop(name), graceful=True)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _end_tree(proc: subprocess.Popen[bytes], *, graceful: bool, timeout: float = 5.0) -> int:
    """End a ``ray start`` process, its process group (it was started in a session of its own:
    raylet, GCS, agents, workers) and every descendant that left the group (training scripts
    run in sessions of their own). ``graceful``: SIGTERM first, SIGKILL after ``timeout``.
    Returns the number of processes signalled."""
    import psutil  # deferred: psutil (optional), only at teardown

    def members() -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(proc.pid)
            for p in [root, *root.children(recursive=True)]:
                found[p.pid] = p
        except psutil.NoSuchProcess:
            pass
        for p in psutil.process_iter():
            try:
                if os.getpgid(p.pid) == proc.pid:
                    found[p.pid] = p
            except (ProcessLookupError, PermissionError, psutil.Error):
                pass
        return list(found.values())

    victims = members()
    for p in victims:
        try:
            p.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    if graceful:
        _, alive = psutil.wait_procs(victims, timeout=timeout)
        for p in alive + [m for m in members() if m not in victims]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return len(victims)
