"""Run trials on a Ray cluster (L2): each trial in a Ray actor holding its own resources.

How a trial runs
----------------
The tuner's process is a Ray *driver*. Each running trial occupies one *trial actor*
(:class:`_TrialRunner`) created with the trial's resources (``num_cpus``, ``num_gpus``, custom
resources) on any node of the cluster (``SPREAD`` by default). The actor launches the very same
training script as the local backend, through a :class:`~tunebench.backends.local.LocalBackend`
of its own on that node: same command line, same environment variables, same
:func:`tunebench.report` and checkpoint helpers, same handling of crashes, timeouts and malformed
report lines, and the GPUs Ray gave the actor as ``CUDA_VISIBLE_DEVICES``. So any script that is
tunable locally is tunable on the cluster.

Results stream back: the actor's ``run`` method is a Ray *streaming generator*; it waits for the
script's reports (no polling: the local backend's pipe and pidfd) and yields each batch as it
comes. The driver waits on all running trials at once with ``ray.wait``. Pause and stop go to the
actor as a second, concurrent call (the actor runs two threads) that wakes its wait.

Warm pool
---------
With ``warm_pool=True`` (the default) an actor whose trial ended goes back to a pool and runs the
next trial, so a new trial does not pay for a Ray worker process start and the imports. The
backend measures the time from submitting a run to its first message for cold and warm actors
and reports the start-up time saved (:attr:`RayBackend.stats`, logged at shutdown). Idle actors
keep their resources reserved; they are ended at :meth:`~RayBackend.shutdown`.

Warm starts (``warm_start=True``, the default) go further: each actor keeps a prepared
interpreter (:mod:`tunebench.backends.warm`) that has imported the script's modules once, and
every run on that actor, a resume included, is forked from it instead of starting Python and
importing torch again.

Storage
-------
``storage=None``: trial folders are where the tuner puts them (under the experiment folder);
that path must be reachable from every node (true on one machine, or on a shared filesystem
mounted at the same path everywhere). ``storage="s3://bucket/prefix"`` (any fsspec URL): each run
works in a scratch folder on its node, filled from ``<storage>/<experiment id>/trials/<id>/``
when it starts (the experiment id, the folder's name plus a random suffix, is kept in the
experiment folder's ``ray_storage.json``); the folder is copied back to the storage *before*
each batch of results is sent to the tuner and when the run ends, so every result the tuner has
recorded is backed by the results file (and the checkpoint the script saved before reporting it)
on the storage. A paused trial can therefore resume on any node.

Fault tolerance
---------------
When an actor dies (its node died, it was killed, it ran out of memory), its trial is relaunched
on a new actor, which Ray places on a node that is alive, from the results offset the tuner has
consumed and the trial's last checkpoint: the tuner only sees the trial go on, a warning is
logged, and the trial folder's ``nodes.jsonl`` records each run (node, reason). After
``max_retries`` such relaunches of one trial, it FAILS. A pause or stop under way when the actor
died completes as PAUSED / STOPPED. The training script cannot outlive its actor: it is started
with ``PR_SET_PDEATHSIG`` (Linux), so a killed actor's script dies with it and never writes into
the folder of its relaunched run.

Bad input is caught when the backend is built, before any trial is launched: Ray not installed,
an unreachable cluster address, a per-trial resource request that no node of the cluster can
satisfy, a script (or interpreter) missing on a node that could run trials.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunebench.backends.base import CHECKPOINT_DIRNAME, Backend, is_partial_file
from tunebench.backends.local import LocalBackend
from tunebench.backends.warm import WARM_SERVER, FunctionTarget, PreparedInterpreter
from tunebench.errors import UserError
from tunebench.types import Config, Event, EventKind, Trial

__all__ = ["NODES_FILENAME", "STORAGE_MARKER", "RayBackend", "alive_nodes", "check_files_on_nodes", "connect",
           "format_nodes", "format_resources", "has_gpus", "node_fits"]

logger = logging.getLogger(__name__)

#: one JSON line per run of a trial, written by its actor: where and why it ran
NODES_FILENAME = "nodes.jsonl"
#: in an experiment folder whose trials live under a storage URL: their place there
STORAGE_MARKER = "ray_storage.json"

_CONNECT_TIMEOUT = 5.0  # seconds to reach the head's GCS port before saying it is unreachable
_PROBE_TIMEOUT = 60.0  # seconds for the per-node script check
_SHUTDOWN_GIVE_UP = 5.0  # seconds after the grace period to wait for the last final events
_PLACEMENT_PATIENCE = 2.0  # seconds a new actor may take to start before it counts as waiting for room

# driver-side run states
_RUNNING = "running"
_PAUSING = "pausing"
_STOPPING = "stopping"

_FINAL_KINDS = {
    "completed": EventKind.COMPLETED,
    "failed": EventKind.FAILED,
    "paused": EventKind.PAUSED,
    "stopped": EventKind.STOPPED,
}


def _import_ray() -> Any:
    try:
        import ray  # deferred: ray (optional extra, heavy), only on the Ray path
    except ImportError as err:
        raise UserError("the Ray backend needs Ray: pip install 'tunebench[ray]'") from err
    return ray


def _check_reachable(address: str) -> None:
    """Fail fast (a few seconds, not Ray's long retries) when nothing listens at ``address``."""
    if "://" in address or address in ("auto", "local"):
        return  # ray://, auto-discovery, a new local instance: left to Ray
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"bad Ray cluster address {address!r}: expected HOST:PORT (the head's GCS port, "
                        "6379 by default), 'auto', or a ray:// URL")
    try:
        with socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT):
            pass
    except OSError as err:
        raise UserError(f"cannot reach the Ray cluster at {address} ({err}): start its head with "
                        f"`ray start --head --port={port}` or give the right --ray-address") from err


def connect(address: str | None = None) -> bool:
    """Connect this process to a Ray cluster, unless Ray is already initialized here (inside a
    Ray task or actor it is; a caller may also have called ``ray.init`` itself).

    ``address``: ``HOST:PORT`` of the head node, ``"auto"``, a ``ray://`` URL, or None for
    ``ray.init()``'s defaults (``$RAY_ADDRESS``, else a cluster started on this machine, else a
    new local instance). Returns True when this call initialized Ray: the caller then owns the
    connection and calls ``ray.shutdown()`` when done.

    Raises:
        UserError: Ray is not installed, or nothing answers at ``address``.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=False)
    except (ConnectionError, TimeoutError, RuntimeError) as err:
        where = address or "the default address"
        raise UserError(f"cannot connect to the Ray cluster at {where}: {err}") from err
    return True


# -- the actor (runs on the cluster's nodes) --------------------------------------------------


class _Storage:
    """Where a trial folder lives: the path itself (``url`` None), or an fsspec URL whose copy a
    run works on in a scratch folder of its node."""

    def __init__(self, url: str | None) -> None:
        self.url = url.rstrip("/") if url else None
        self._fs: Any = None
        self._root = ""
        if self.url is not None:
            import fsspec  # deferred: fsspec (with ray), only for remote storage

            self._fs, self._root = fsspec.core.url_to_fs(self.url)
        self._pushed: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) pushed

    def remote(self, rel: str) -> str:
        return f"{self._root.rstrip('/')}/{rel}"

    def pull(self, trial_dir: str, rel: str) -> Path:
        """The folder the run works in: ``trial_dir`` itself, or a fresh scratch folder filled
        with the trial's files from ``<storage>/<rel>``."""
        if self.url is None:
            return Path(trial_dir)
        local = Path(tempfile.mkdtemp(prefix=f"tunebench-trial{Path(trial_dir).name}-"))
        remote = self.remote(rel)
        self._pushed = {}
        if self._fs.exists(remote):
            for path in self._fs.find(remote):
                if is_partial_file(path.rpartition("/")[2]):
                    continue
                rel = path[len(remote):].lstrip("/")
                target = local / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                self._fs.get_file(path, str(target))
                st = target.stat()
                self._pushed[rel] = (st.st_size, st.st_mtime_ns)
        return local

    def push(self, local: Path, rel: str) -> None:
        """Copy what changed in ``local`` to ``<storage>/<rel>`` (remove what was deleted here)."""
        if self.url is None:
            return
        remote = self.remote(rel)
        seen: set[str] = set()
        for path in sorted(local.rglob("*")):
            if not path.is_file() or is_partial_file(path.name):
                continue  # (a checkpoint file being written: pushed once renamed whole)
            rel = path.relative_to(local).as_posix()
            seen.add(rel)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # replaced meanwhile (an atomic checkpoint write): the next push has it
            stamp = (st.st_size, st.st_mtime_ns)
            if self._pushed.get(rel) == stamp:
                continue
            target = f"{remote}/{rel}"
            self._fs.makedirs(target.rpartition("/")[0], exist_ok=True)
            self.put_whole(str(path), target)
            self._pushed[rel] = stamp
        for rel in [r for r in self._pushed if r not in seen]:
            try:
                self._fs.rm_file(f"{remote}/{rel}")
            except FileNotFoundError:
                pass
            del self._pushed[rel]

    def put_whole(self, source: str, target: str, copy: bool = False) -> None:
        """Write the file ``source`` (local, or on the storage with ``copy``) to ``target`` on
        the storage so that a reader never sees it half written (a checkpoint is copied to
        another trial while its run pushes a newer one): on a file system through a temporary
        name renamed over the target; an object store replaces whole objects anyway."""
        protocols = self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
        if not {"file", "local"} & set(protocols):
            (self._fs.copy if copy else self._fs.put_file)(source, target)
            return
        head, _, name = target.rpartition("/")
        staging = f"{head}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            (self._fs.copy if copy else self._fs.put_file)(source, staging)
            os.replace(staging, target)
        finally:
            if os.path.exists(staging):
                os.remove(staging)

    def release(self, local: Path) -> None:
        if self.url is not None:
            shutil.rmtree(local, ignore_errors=True)


class _TrialRunner:
    """The trial actor's class (wrapped with ``ray.remote`` by :func:`_actor_class`): runs one
    trial at a time through a :class:`LocalBackend` of its own, and streams its events."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._controls: dict[int, str] = {}  # run id -> "pause" | "stop" not yet applied
        self._run_id = -1  # the run under way (or the last one)
        self._done_up_to = -1  # every run id <= this has ended on this actor
        self._local: Any = None  # LocalBackend of the run under way
        self._where: dict[str, Any] | None = None
        self._prepared: PreparedInterpreter | None = None  # warm starts: kept across runs

    def describe(self) -> dict[str, Any]:
        """Where this actor runs: node id and address, host name, pid, GPUs."""
        if self._where is None:
            import ray  # deferred: ray (optional extra, heavy), only on the Ray path

            self._where = {"node_id": ray.get_runtime_context().get_node_id(),
                           "node_ip": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]  # ray: unannotated
                           "hostname": socket.gethostname(),
                           "pid": os.getpid(), "gpus": [str(g) for g in ray.get_gpu_ids()]}
        return dict(self._where)

    def control(self, run_id: int, action: str) -> None:
        """Called (concurrently with :meth:`run`) to pause or stop run ``run_id``."""
        with self._lock:
            if run_id <= self._done_up_to:
                return  # that run has ended already: its final event is on its way
            self._controls[run_id] = action
            local = self._local if run_id == self._run_id else None
        if local is not None:
            local.wakeup()

    def run(self, run_id: int, trial_id: int, config: Config, trial_dir: str, storage_rel: str, offset: int,
            how: str, cold: bool) -> Iterator[list[dict[str, Any]]]:
        """Run one trial until its process ends, yielding lists of event dicts as they come; the
        last message holds the final event. ``storage_rel``: the trial folder's path under the
        storage URL (unused without one). ``how``: start, resume, restart or retry."""
        s = self.settings
        storage = _Storage(s["storage"])
        node = self.describe()
        gpus = node["gpus"]
        local = LocalBackend(script=None if s["function"] else s["script"], python=s["python"],
                             extra_args=s["extra_args"],
                             gpus_per_trial=len(gpus), gpus=gpus, trial_timeout=s["trial_timeout"],
                             kill_grace_period=s["kill_grace_period"], env=s["env"],
                             stderr_tail_lines=s["stderr_tail_lines"], kill_on_parent_death=True,
                             warm_start=s["warm_start"], preload=s["preload"], prepared=self._prepared,
                             function=FunctionTarget.from_dict(s["function"]) if s["function"] else None)
        if self._prepared is None and s["warm_start"]:
            self._prepared = local.share_prepared()
        work = storage.pull(trial_dir, storage_rel)
        try:
            work.mkdir(parents=True, exist_ok=True)
            record = {"time": time.time(), "how": how, "warm": not cold, **node}
            with open(work / NODES_FILENAME, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            with self._lock:
                self._run_id = run_id
                self._local = local
            local.start(Trial(trial_id, config), work, results_offset=offset)
            yield [{"kind": "started", **node}]
            while True:
                with self._lock:
                    action = self._controls.pop(run_id, None)
                if action == "pause":
                    local.pause(trial_id)
                elif action == "stop":
                    local.stop(trial_id)
                events = local.poll(3600.0)
                if not events:
                    continue
                messages = [_event_to_message(e) for e in events]
                storage.push(work, storage_rel)  # before the tuner records these results
                yield messages
                if any(m["kind"] != "result" for m in messages):
                    return
        finally:
            with self._lock:
                self._local = None
                self._done_up_to = max(self._done_up_to, run_id)
                self._controls = {k: v for k, v in self._controls.items() if k > run_id}
            local.shutdown()
            storage.release(work)


def _event_to_message(event: Event) -> dict[str, Any]:
    message: dict[str, Any] = {"kind": event.kind.value, "time": event.time}
    if event.result is not None:
        message["result"] = event.result
        message["offset"] = event.offset
    if event.error is not None:
        message["error"] = event.error
    if event.info:
        message["info"] = event.info
    return message


# -- the cluster's nodes (also used by the experiment launcher) --------------------------------


#: seconds between two looks at the cluster's nodes while waiting, and between two log lines saying so
NODE_WAIT_POLL = 0.5
NODE_WAIT_REPORT = 10.0


def alive_nodes() -> list[dict[str, Any]]:
    """The alive nodes of the cluster this process is connected to, as ``ray.nodes()`` gives them."""
    ray = _import_ray()
    return [n for n in ray.nodes() if n.get("Alive")]


def node_fits(node: Mapping[str, Any], request: Mapping[str, float]) -> bool:
    """Whether ``node`` has at least the resources of ``request`` (in total, busy or not)."""
    resources = node.get("Resources") or {}
    return all(resources.get(k, 0.0) >= v for k, v in request.items())


def has_gpus(nodes: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any of ``nodes`` has a GPU."""
    return any((n.get("Resources") or {}).get("GPU", 0.0) > 0 for n in nodes)


def format_resources(resources: Mapping[str, float]) -> str:
    """``{CPU: 2, GPU: 1, node_a: 1}``: Ray's per-node and memory entries left out."""
    keep = {k: v for k, v in resources.items()
            if not k.startswith("node:") and k not in ("memory", "object_store_memory")}
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(keep.items())) + "}"


def format_nodes(nodes: Sequence[Mapping[str, Any]]) -> str:
    """One line listing ``nodes``: address, short id and resources of each."""
    return "; ".join(f"{n.get('NodeManagerAddress', '?')} {n['NodeID'][:8]} "
                     f"{format_resources(n.get('Resources') or {})}" for n in nodes) or "no alive node"


def _probe_node(paths: list[str], files: list[str], interpreters: list[str]) -> dict[str, Any]:
    """Runs on one node: which of ``paths`` (anything), ``files`` (regular files) and
    ``interpreters`` it lacks, and its tunebench version."""

    def found(exe: str) -> bool:
        return os.path.exists(exe) if os.sep in exe else shutil.which(exe) is not None

    return {"missing": [p for p in paths if not os.path.exists(p)] + [f for f in files if not os.path.isfile(f)],
            "missing_interpreters": [exe for exe in interpreters if not found(exe)], "version": _tunebench_version()}


def _tunebench_version() -> str | None:
    """The version of the tunebench package this module belongs to (imported with it, as the
    parent of every submodule; read from ``sys.modules``, since this layer may not import the
    package's top, which imports the tuner)."""
    return getattr(sys.modules.get("tunebench"), "__version__", None)


def check_files_on_nodes(nodes: Sequence[Mapping[str, Any]], paths: Sequence[str], *, files: Sequence[str] = (),
                         interpreters: Sequence[str] = ()) -> list[str]:
    """Run a tiny task on each of ``nodes`` (nodes of a real cluster share no filesystem by
    default): ``paths`` must exist, ``files`` be regular files, ``interpreters`` be found (a path,
    or a name on the PATH). Returns what is wrong, one item per problem (``node ADDRESS (ID) has no PATH``,
    ``... has no interpreter EXE``, ``... cannot run tunebench (...)``); empty when all is there.
    Logs nodes that run another tunebench version, and nodes that did not answer in time."""
    # deferred: ray (optional extra, heavy), only on the Ray path
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray = _import_ray()
    here = _tunebench_version()
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe_node)

    def submit(node: Mapping[str, Any]) -> Any:
        return (probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                .remote(list(paths), list(files), list(interpreters)))

    refs = {submit(n): n for n in nodes}
    answered: list[tuple[Mapping[str, Any], Any]] = []  # (node, its answer or the error of its probe)
    deadline = time.monotonic() + _PROBE_TIMEOUT
    while refs and (left := deadline - time.monotonic()) > 0:
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=left)
        for ref in ready:
            node = refs.pop(ref)
            try:
                answered.append((node, ray.get(ref)))
            except ray.exceptions.TaskUnschedulableError:
                # a node that has just joined is alive before the scheduler knows it: ask again shortly
                time.sleep(NODE_WAIT_POLL)
                refs[submit(node)] = node
            except Exception as err:  # noqa: BLE001 - e.g. tunebench not importable there
                answered.append((node, err))
    not_ready = list(refs)
    for ref in not_ready:
        ray.cancel(ref, force=True)
    problems = []
    for node, answer in answered:
        name = f"node {node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"
        if isinstance(answer, Exception):
            first = str(answer).strip().splitlines()
            problems.append(f"{name} cannot run tunebench ({type(answer).__name__}: {first[-1] if first else ''}); "
                            "install tunebench on every node")
            continue
        problems.extend(f"{name} has no {path}" for path in answer["missing"])
        problems.extend(f"{name} has no interpreter {exe}" for exe in answer["missing_interpreters"])
        if answer["version"] != here:
            logger.warning("%s runs tunebench %s, this machine %s", name, answer["version"], here)
    if not_ready:
        logger.warning("%d node(s) did not answer the file check within %g s", len(not_ready), _PROBE_TIMEOUT)
    return problems


_ACTOR_CLASS: Any = None


def _actor_class() -> Any:
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        ray = _import_ray()
        # two threads: run() streams, control() pauses/stops it meanwhile
        _ACTOR_CLASS = ray.remote(max_concurrency=2, max_restarts=0)(_TrialRunner)
    return _ACTOR_CLASS


# -- the driver side --------------------------------------------------------------------------


@dataclass(eq=False)
class _Actor:
    handle: Any
    created: float  # monotonic time of its creation (driver)
    used: bool = False  # has run a trial already (warm)
    node_id: str | None = None


@dataclass(eq=False)
class _RayRun:
    trial: Trial
    trial_dir: Path
    offset: int
    run_id: int = -1
    state: str = _RUNNING
    actor: _Actor | None = None
    gen: Any = None  # ObjectRefGenerator of the actor's run()
    submitted: float = 0.0  # monotonic time of the run() call
    started: bool = False  # the actor said "started" (the script is launched)
    cold: bool = True
    retries: int = 0  # relaunches after the actor died under a started run
    lost_actors: int = 0  # actors found dead before the run started (an idle actor of a dead node)
    how: str = "start"  # why the current run was launched: start, resume, restart or retry
    node_id: str | None = None
    final: EventKind | None = None
    info: dict[str, Any] | None = None


class RayBackend(Backend):
    """Runs each trial of ``script`` in a Ray actor of a cluster (see the module docstring).

    Args:
        script: the training script (a Python file at the same path on every node).
        python: the interpreter that runs it on the nodes.
        extra_args: arguments put after the script and before the hyperparameters.
        address: the cluster (``HOST:PORT`` of the head, ``"auto"``, ``ray://...``); None:
            ``ray.init()``'s defaults. Ignored when Ray is already initialized in this process.
        num_cpus_per_trial, num_gpus_per_trial: resources each trial's actor holds (fractions
            allowed, as in Ray). As on the local backend, GPUs per trial are asked for only where
            there are GPUs: on a cluster without any, trials run without.
        resources_per_trial: custom Ray resources each trial holds (``{"node_a": 1}``).
        warm_pool: reuse actors across trials instead of starting one per trial.
        storage: None (trial folders at their own path, reachable from every node) or an
            fsspec URL (``s3://bucket/prefix``, ``file:///shared/path``) holding them.
        max_retries: relaunches of a trial whose actor died (its node died) before it FAILS.
        trial_timeout, kill_grace_period, env, stderr_tail_lines: as for the local backend.
        scheduling_strategy: Ray's placement of trial actors (``"SPREAD"``: over the nodes;
            ``"DEFAULT"``: packed).
        check_nodes: check at construction that the script and interpreter exist on every node
            that could run a trial.
        node_wait: seconds to wait at construction for a node that can hold one trial, when none
            of the alive nodes can yet (worker nodes still joining the cluster); 0 (the default
            here): fail at once. ``tunebench run`` waits 60 s (``--ray-node-wait``).

    Raises:
        UserError: Ray missing, cluster unreachable, resources no node has (after ``node_wait``
            seconds), script missing on a node (see the module docstring).
    """

    def __init__(
        self,
        *,
        script: str | os.PathLike[str],
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
        address: str | None = None,
        num_cpus_per_trial: float = 1.0,
        num_gpus_per_trial: float = 0.0,
        resources_per_trial: Mapping[str, float] | None = None,
        warm_pool: bool = True,
        storage: str | None = None,
        max_retries: int = 3,
        trial_timeout: float | None = None,
        kill_grace_period: float = 5.0,
        env: Mapping[str, str] | None = None,
        stderr_tail_lines: int = 20,
        scheduling_strategy: str = "SPREAD",
        check_nodes: bool = True,
        node_wait: float = 0.0,
        warm_start: bool = True,
        preload: Sequence[str] = (),
        function: FunctionTarget | None = None,
    ) -> None:
        if num_cpus_per_trial < 0 or num_gpus_per_trial < 0:
            raise UserError("num_cpus_per_trial and num_gpus_per_trial must be >= 0")
        if max_retries < 0:
            raise UserError(f"max_retries must be >= 0, got {max_retries}")
        if not node_wait >= 0 or node_wait == float("inf"):
            raise UserError(f"node_wait must be a finite number of seconds >= 0, got {node_wait}")
        # absolute, but not required to exist here: the driver may be a machine without it (a
        # ray:// client); the nodes are checked below
        self.function = function
        if function is not None:
            script = WARM_SERVER  # (what a cold run of a function executes)
        self.script = Path(os.path.abspath(script))
        if not check_nodes and not self.script.is_file():
            raise UserError(f"training script not found: {script}")
        self.python = os.path.abspath(python) if os.sep in python else python
        self.extra_args = [str(a) for a in extra_args]
        self.address = address
        self.num_cpus_per_trial = float(num_cpus_per_trial)
        self.num_gpus_per_trial = float(num_gpus_per_trial)
        self.resources_per_trial = {str(k): float(v) for k, v in (resources_per_trial or {}).items()}
        self.warm_pool = warm_pool
        self.storage = storage if storage and "://" in storage else None
        if storage and self.storage is None:
            raise UserError(f"storage must be an fsspec URL such as s3://bucket/prefix or file:///path, got "
                            f"{storage!r} (for a shared path, leave storage unset and put the experiment there)")
        if self.storage is not None:
            try:
                import fsspec  # deferred: fsspec (with ray), only for remote storage

                fsspec.core.url_to_fs(self.storage)
            except ImportError as err:
                raise UserError("storage URLs need fsspec: pip install 'tunebench[ray]'") from err
            except (ValueError, OSError) as err:
                raise UserError(f"cannot open the storage {self.storage}: {err}") from err
        self.max_retries = max_retries
        self.scheduling_strategy = scheduling_strategy
        self._settings = {
            "script": str(self.script), "python": self.python, "extra_args": self.extra_args,
            "trial_timeout": trial_timeout, "kill_grace_period": float(kill_grace_period),
            "env": {str(k): str(v) for k, v in (env or {}).items()},
            "stderr_tail_lines": stderr_tail_lines, "storage": self.storage,
            "warm_start": bool(warm_start), "preload": [str(m) for m in preload],
            "function": function.to_dict() if function is not None else None,
        }
        self.kill_grace_period = float(kill_grace_period)
        self._ray = _import_ray()
        self._owns_ray = connect(address)
        try:
            nodes = alive_nodes()
            if self.num_gpus_per_trial and not has_gpus(nodes):
                # as on the local backend, GPUs per trial means "where there are GPUs"
                logger.info("the Ray cluster has no GPU: trials run without one")
                self.num_gpus_per_trial = 0.0
            fit = self._wait_for_resources(nodes, node_wait)
            if check_nodes:
                self._check_nodes(fit)
        except BaseException:
            self._disconnect()
            raise
        self._live: dict[int, _RayRun] = {}
        self._ended: dict[int, _RayRun] = {}  # trial id -> its last run, process gone (resumable)
        self._idle: list[_Actor] = []
        self._actors: set[_Actor] = set()
        self._pending: list[Event] = []
        self._next_run_id = 0
        self._prefixes: dict[Path, str] = {}  # experiment folder -> its id under the storage URL
        self._closed = False
        #: counters: runs on cold/warm actors, their start-up latencies, relaunches after deaths
        self.stats: dict[str, float] = {"cold_runs": 0, "warm_runs": 0, "cold_startup_s": 0.0,
                                        "warm_startup_s": 0.0, "actors_created": 0, "retries": 0}

    # -- checks at construction ---------------------------------------------------------------

    def _request(self) -> dict[str, float]:
        request = {"CPU": self.num_cpus_per_trial, "GPU": self.num_gpus_per_trial, **self.resources_per_trial}
        return {k: v for k, v in request.items() if v > 0}

    def _wait_for_resources(self, nodes: list[dict[str, Any]], wait: float) -> list[dict[str, Any]]:
        """The alive nodes that can hold one trial, from ``nodes`` or, when none of them can,
        from the nodes that join within ``wait`` seconds (said on the log when it starts waiting,
        then every :data:`NODE_WAIT_REPORT` seconds); a UserError when none came."""
        request = self._request()
        fit = [n for n in nodes if node_fits(n, request)]
        deadline = time.monotonic() + wait
        next_report = 0.0
        while not fit and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_report:
                logger.warning("waiting up to %.0f s for a node of the Ray cluster that can hold one trial %s "
                               "(alive now: %s)", deadline - now, format_resources(request), format_nodes(nodes))
                next_report = now + NODE_WAIT_REPORT
            time.sleep(min(NODE_WAIT_POLL, max(0.0, deadline - now)))
            nodes = alive_nodes()
            fit = [n for n in nodes if node_fits(n, request)]
        if not fit:
            waited = f" within {wait:g} s" if wait > 0 else ""
            raise UserError(f"no node of the Ray cluster can hold one trial's resources "
                            f"{format_resources(request)}{waited} (nodes: {format_nodes(nodes)}); lower "
                            "--cpus-per-trial / --gpus-per-trial, add a node that has them, or wait longer for "
                            "joining nodes with --ray-node-wait SECONDS")
        return fit

    def _check_nodes(self, fit: list[dict[str, Any]]) -> None:
        """The script and the interpreter must be on every node that could host a trial (``fit``)."""
        problems = check_files_on_nodes(fit, [], files=[str(self.script)], interpreters=[self.python])
        if problems:
            raise UserError("the training script must exist at the same path on every node that runs trials: "
                            + "; ".join(problems) + " (copy it there, e.g. with a shared filesystem or the "
                            "cluster's file mounts)")

    def _disconnect(self) -> None:
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False

    # -- the Backend contract -----------------------------------------------------------------

    @property
    def n_busy(self) -> int:
        """Trials holding an actor (running, or asked to end but not yet reported gone)."""
        return len(self._live)

    def start(self, trial: Trial, trial_dir: Path | None, results_offset: int = 0) -> None:
        """Called to launch ``trial`` on an actor (from the warm pool, or a new one); returns at
        once. Results are streamed from byte ``results_offset`` of its results file."""
        self._check_open()
        tid = trial.trial_id
        if tid in self._live or tid in self._ended:
            raise ValueError(f"trial {tid} was already started by this backend")
        if trial_dir is None:
            raise ValueError("the Ray backend needs a trial folder")
        if results_offset < 0:
            raise ValueError(f"results_offset must be >= 0, got {results_offset}")
        run = _RayRun(trial=trial, trial_dir=Path(trial_dir), offset=results_offset)
        self._launch(run, "restart" if results_offset else "start")

    def pause(self, trial_id: int) -> None:
        """Called when the scheduler decided PAUSE: the actor ends the script (SIGTERM, SIGKILL
        after the grace period); a PAUSED event follows. A no-op for a trial not running."""
        run = self._live.get(trial_id)
        if run is None or run.state != _RUNNING:
            return
        run.state = _PAUSING
        self._control(run, "pause")

    def stop(self, trial_id: int) -> None:
        """Called to end a trial for good; a STOPPED event follows (for a paused trial, with the
        next :meth:`poll`). A no-op for an otherwise ended trial."""
        run = self._live.get(trial_id)
        if run is None:
            ended = self._ended.get(trial_id)
            if ended is not None and ended.final is EventKind.PAUSED:
                ended.final = EventKind.STOPPED
                self._pending.append(Event(EventKind.STOPPED, trial_id, time.time(), info=dict(ended.info or {})))
            return
        if run.state in (_RUNNING, _PAUSING):
            run.state = _STOPPING
            self._control(run, "stop")

    def resume(self, trial_id: int, config: Config | None = None) -> None:
        """Called to relaunch a trial this backend ran whose process is gone, on any actor (it
        continues from its checkpoint), optionally with a new ``config``."""
        self._check_open()
        self._wait_paused(trial_id)
        run = self._ended.pop(trial_id, None)
        if run is None:
            state = "still running" if trial_id in self._live else "unknown to this backend"
            raise ValueError(f"cannot resume trial {trial_id}: it is not paused ({state})")
        if config is not None:
            run.trial = Trial(trial_id, dict(config))
        run.state, run.final, run.started = _RUNNING, None, False
        self._launch(run, "resume")

    def copy_checkpoint(self, source_id: int, target_id: int, source_dir: Path | None,
                        target_dir: Path | None) -> None:
        """Called before ``target_id`` resumes from ``source_id``'s checkpoint: waits for the
        target's run if it is still ending, then copies the source's checkpoint folder: on the
        storage (what the source's run pushed with its last results) when there is one, else
        between the trial folders (see :meth:`Backend.copy_checkpoint`)."""
        self._check_open()
        self._wait_paused(target_id)
        if source_dir is None or target_dir is None:
            raise ValueError("the Ray backend needs trial folders")
        if self.storage is None:
            super().copy_checkpoint(source_id, target_id, source_dir, target_dir)
            return
        storage = _Storage(self.storage)
        src = storage.remote(f"{self._storage_rel(Path(source_dir))}/{CHECKPOINT_DIRNAME}")
        dst = storage.remote(f"{self._storage_rel(Path(target_dir))}/{CHECKPOINT_DIRNAME}")
        fs = storage._fs
        if fs.exists(dst):
            fs.rm(dst, recursive=True)
        if fs.exists(src):
            for path in fs.find(src):
                if is_partial_file(path.rpartition("/")[2]):
                    continue  # a push under way: the file it replaces is there whole
                target = f"{dst}/{path[len(src):].lstrip('/')}"
                fs.makedirs(target.rpartition("/")[0], exist_ok=True)
                storage.put_whole(path, target, copy=True)

    def _wait_paused(self, trial_id: int) -> None:
        """Wait for the final event of a trial paused a moment ago whose run is still ending
        (what it reported meanwhile goes out with the next poll)."""
        live = self._live.get(trial_id)
        if live is not None and live.state == _PAUSING:
            while trial_id in self._live:
                self._pending.extend(self._collect(1.0))

    def poll(self, timeout: float) -> list[Event]:
        """Called in the tuner's loop: the events since the last call, waiting up to ``timeout``
        seconds for at least one; wakes as soon as a trial reports or ends."""
        events = self._pending
        self._pending = []
        if events:
            events.extend(self._collect(0.0))
            return events
        end = time.monotonic() + max(0.0, timeout)
        while self._live:
            events = self._collect(max(0.0, end - time.monotonic()))
            if events or time.monotonic() >= end:
                return events
        return []

    def shutdown(self) -> None:
        """Called once at the end: stop every trial still running (they end as STOPPED, paused
        ones as PAUSED; their last events come with a later :meth:`poll`), end every actor, and
        disconnect from Ray if this backend connected. Logs the warm pool's savings. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            for run in self._live.values():
                if run.state == _RUNNING:
                    run.state = _STOPPING
                    self._control(run, "stop")
            give_up = time.monotonic() + self.kill_grace_period + _SHUTDOWN_GIVE_UP
            while self._live and time.monotonic() < give_up:
                self._pending.extend(self._collect(max(0.0, give_up - time.monotonic())))
            for run in list(self._live.values()):
                logger.error("trial %s: its actor did not end in time; killing it", run.trial.trial_id)
                self._pending.append(Event(EventKind.STOPPED, run.trial.trial_id, time.time(), info={}))
                del self._live[run.trial.trial_id]
            for actor in list(self._actors):
                self._kill(actor)
            self._idle.clear()
            self._ended.clear()
            self._log_stats()
        finally:
            self._disconnect()

    # -- internals ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this RayBackend was shut down")

    def _new_actor(self) -> _Actor:
        options: dict[str, Any] = {"num_cpus": self.num_cpus_per_trial, "num_gpus": self.num_gpus_per_trial,
                                   "scheduling_strategy": self.scheduling_strategy}
        if self.resources_per_trial:
            options["resources"] = self.resources_per_trial
        handle = _actor_class().options(**options).remote(self._settings)
        actor = _Actor(handle=handle, created=time.monotonic())
        self._actors.add(actor)
        self.stats["actors_created"] += 1
        return actor

    def _kill(self, actor: _Actor) -> None:
        self._actors.discard(actor)
        try:
            self._ray.kill(actor.handle, no_restart=True)
        except Exception as err:  # noqa: BLE001 - already dead
            logger.debug("killing an actor: %s", err)

    def _launch(self, run: _RayRun, how: str) -> None:
        actor = self._idle.pop() if self._idle else self._new_actor()
        run.how = how
        run.actor = actor
        run.cold = not actor.used
        actor.used = True
        run.run_id = self._next_run_id
        self._next_run_id += 1
        run.started = False
        run.submitted = time.monotonic()
        run.gen = actor.handle.run.remote(run.run_id, run.trial.trial_id, dict(run.trial.config),
                                          str(run.trial_dir.resolve()), self._storage_rel(run.trial_dir),
                                          run.offset, how, run.cold)
        self._live[run.trial.trial_id] = run
        if run.state in (_PAUSING, _STOPPING):  # a relaunch after a death, while ending: end it again
            self._control(run, "pause" if run.state == _PAUSING else "stop")
        logger.debug("trial %s: run %s submitted (%s, %s actor)", run.trial.trial_id, run.run_id, how,
                     "cold" if run.cold else "warm")

    def _storage_rel(self, trial_dir: Path) -> str:
        """``<experiment id>/trials/<trial id>``: where a trial folder lives under the storage URL.
        The experiment id (``<folder name>-<random hex>``) is made once and kept in the experiment
        folder (``ray_storage.json``), so it follows the folder when it is moved or resumed
        elsewhere and two experiments with the same folder name never share a place."""
        if self.storage is None:
            return ""
        trial_dir = trial_dir.resolve()
        exp = trial_dir.parent.parent
        prefix = self._prefixes.get(exp)
        if prefix is None:
            marker = exp / STORAGE_MARKER
            try:
                prefix = json.loads(marker.read_text())["prefix"]
            except FileNotFoundError:
                prefix = f"{exp.name}-{uuid.uuid4().hex[:12]}"
                tmp = marker.with_suffix(".tmp")
                tmp.write_text(json.dumps({"storage": self.storage, "prefix": prefix}))
                os.replace(tmp, marker)
            except (OSError, ValueError, KeyError) as err:
                raise UserError(f"{marker} is unreadable ({err}): it names this experiment's trial folders under "
                                f"{self.storage}; restore it or start a new experiment") from err
            self._prefixes[exp] = prefix
        return f"{prefix}/{trial_dir.parent.name}/{trial_dir.name}"

    def _control(self, run: _RayRun, action: str) -> None:
        assert run.actor is not None
        run.actor.handle.control.remote(run.run_id, action)

    def _collect(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` for messages of the live runs; returns their events."""
        ray = self._ray
        due = self._rebalance()
        if due is not None:
            timeout = min(timeout, due + 0.05)
        runs = list(self._live.values())
        if not runs:
            return []
        gens = [run.gen for run in runs]
        ready, _ = ray.wait(gens, num_returns=1, timeout=timeout)
        if not ready:
            return []
        if len(gens) > 1:
            ready, _ = ray.wait(gens, num_returns=len(gens), timeout=0)
        ready_ids = {id(g) for g in ready}
        events: list[Event] = []
        for run in runs:
            if id(run.gen) in ready_ids:
                self._advance(run, events)
        return events

    def _advance(self, run: _RayRun, events: list[Event]) -> None:
        """Take the next message of ``run`` (it is ready) and turn it into events."""
        ray = self._ray
        try:
            ref = next(run.gen)
            messages = ray.get(ref)
        except StopIteration:
            self._actor_lost(run, "its actor's run ended without a final event", events)
            return
        except ray.exceptions.RayActorError as err:
            self._actor_lost(run, f"{type(err).__name__}: {str(err).splitlines()[0]}", events)
            return
        except ray.exceptions.RayError as err:  # an error in the actor's own code
            self._finish(run, {"kind": "failed", "error": f"the trial's Ray actor failed: {err}"}, events)
            return
        tid = run.trial.trial_id
        for message in messages:
            kind = message["kind"]
            if kind == "result":
                run.offset = message["offset"]
                result = message["result"]
                stamp = result.get("_timestamp")
                when = float(stamp) if isinstance(stamp, (int, float)) else time.time()
                events.append(Event(EventKind.RESULT, tid, when, result=result, offset=run.offset))
            elif kind == "started":
                run.started = True
                run.node_id = message.get("node_id")
                assert run.actor is not None
                run.actor.node_id = run.node_id
                latency = time.monotonic() - run.submitted
                which = "cold" if run.cold else "warm"
                self.stats[f"{which}_runs"] += 1
                self.stats[f"{which}_startup_s"] += latency
            else:
                self._finish(run, message, events)

    def _finish(self, run: _RayRun, message: dict[str, Any], events: list[Event]) -> None:
        """The run's process is gone: emit its final event; its actor goes back to the pool."""
        tid = run.trial.trial_id
        kind = _FINAL_KINDS[message["kind"]]
        info = {**(message.get("info") or {}), "node_id": run.node_id}
        events.append(Event(kind, tid, time.time(), error=message.get("error"), info=info))
        run.final, run.info = kind, info
        del self._live[tid]
        self._ended[tid] = run
        actor, run.actor, run.gen = run.actor, None, None
        if actor is not None:
            if self.warm_pool and not self._closed:
                self._give(actor)
            else:
                self._kill(actor)

    def _give(self, actor: _Actor) -> None:
        """A warm actor is free: keep it idle for the next trial, unless a run waits for room."""
        self._idle.append(actor)
        self._rebalance()

    def _rebalance(self) -> float | None:
        """Hand idle actors to runs whose new actor has not been placed for much longer than a
        cold start-up takes (the cluster is full: e.g. trials relaunched after a node died).
        Idle actors keep their resources, so without this such a run could wait for ever.
        Moving a run kills its unplaced actor. Returns the seconds until the next waiting run
        is due to be moved (the caller caps its wait by it), or None."""
        if not self._idle or self._closed:
            return None
        patience = max(_PLACEMENT_PATIENCE, 3.0 * (self._mean_startup("cold") or 0.0))
        now = time.monotonic()
        waiting = sorted((r for r in self._live.values() if not r.started and r.cold and r.actor is not None),
                         key=lambda r: r.submitted)
        next_due: float | None = None
        for run in waiting:
            due = run.submitted + patience - now
            if due > 0:
                next_due = due if next_due is None else min(next_due, due)
            elif self._idle:
                assert run.actor is not None
                logger.info("trial %s: its new actor found no room for %.1f s; moved to a free actor",
                            run.trial.trial_id, now - run.submitted)
                self._kill(run.actor)
                self._launch(run, run.how)
        return next_due

    def _actor_lost(self, run: _RayRun, why: str, events: list[Event]) -> None:
        """The actor of ``run`` died (its node died, it was killed): relaunch the trial on another
        actor, end it if it was ending anyway, or fail it after ``max_retries`` relaunches."""
        tid = run.trial.trial_id
        dead = run.actor
        if dead is not None:
            self._kill(dead)
            # idle actors of the same node died with it: drop them rather than find out one by one
            if dead.node_id is not None:
                for actor in [a for a in self._idle if a.node_id == dead.node_id]:
                    self._idle.remove(actor)
                    self._kill(actor)
        run.actor, run.gen = None, None
        del self._live[tid]
        if run.state in (_PAUSING, _STOPPING):
            message = {"kind": "paused" if run.state == _PAUSING else "stopped", "info": {"lost_actor": why}}
            self._live[tid] = run
            self._finish(run, message, events)
            return
        if not run.started:
            run.lost_actors += 1
            if run.lost_actors <= 10:  # e.g. an idle actor of a node that died: not the trial's fault
                logger.warning("trial %s: the actor given to it was gone (%s); trying another", tid, why)
                self._launch(run, run.how)
                return
        elif run.retries < self.max_retries:
            run.retries += 1
            self.stats["retries"] += 1
            logger.warning("trial %s: its Ray actor on node %s died (%s); relaunching it from its checkpoint "
                           "on another actor (retry %d of %d)", tid, (run.node_id or "?")[:8], why,
                           run.retries, self.max_retries)
            self._launch(run, "retry")
            return
        self._live[tid] = run
        self._finish(run, {"kind": "failed", "error": f"its Ray actor died {run.retries + 1} time(s), the last "
                           f"time on node {(run.node_id or '?')[:8]}: {why} (max_retries={self.max_retries})"},
                     events)

    def _mean_startup(self, which: str) -> float | None:
        """Mean seconds from submitting a run to its first message, on ``"cold"`` (new) or
        ``"warm"`` (reused) actors; None before any such run."""
        n = self.stats[f"{which}_runs"]
        return self.stats[f"{which}_startup_s"] / n if n else None

    def _log_stats(self) -> None:
        cold, warm = self._mean_startup("cold"), self._mean_startup("warm")
        n_cold, n_warm = int(self.stats["cold_runs"]), int(self.stats["warm_runs"])
        if cold is not None and warm is not None:
            logger.info("warm pool: %d of %d runs reused an actor; start-up %.3f s warm vs %.3f s cold, about "
                        "%.1f s saved", n_warm, n_warm + n_cold, warm, cold, self.startup_saved())
        elif cold is not None or warm is not None:
            logger.info("%d runs, start-up %.3f s each on average", n_cold + n_warm, cold if cold is not None else warm)

    def startup_saved(self) -> float:
        """Seconds of actor start-up the warm pool saved so far: warm runs x (mean cold start-up
        - mean warm start-up); 0 without warm runs or without a cold one to compare with."""
        cold, warm = self._mean_startup("cold"), self._mean_startup("warm")
        if cold is None or warm is None:
            return 0.0
        return self.stats["warm_runs"] * max(0.0, cold - warm)
