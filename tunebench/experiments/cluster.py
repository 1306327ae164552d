"""Experiment grids on a Ray cluster (L4): ``tunebench experiment --launch-on-cluster`` and
``tunebench experiment --backend ray``.

:func:`run_grid_on_cluster` runs the jobs of :func:`~tunebench.experiments.grid.plan_grid` (same
plan: complete experiments skipped, interrupted ones resumed, busy ones left alone) as Ray tasks,
one task per (benchmark, method, seed) experiment, so that as many run at once as the cluster
holds. The observer, the outcomes and the summary are those of
:func:`~tunebench.experiments.grid.run_grid`.

How one experiment runs
-----------------------
The task runs the experiment exactly as a grid worker process does
(:func:`tunebench.experiments.worker.run_job`: ``build_tuner(spec, ...)`` then ``Tuner.run``) in a
scratch folder on its node, then returns the finished experiment folder as a gzipped tar through
Ray's object store: nodes need not share a filesystem with the machine that launched the grid.
As each task finishes (``ray.wait``), the folder is unpacked beside its place under the results
root and renamed into it, so a reader never sees half an experiment. An experiment to resume
(interrupted, or asked for a larger budget) travels to its task the same way, and continues
there as ``tunebench resume`` would. ``metadata.json`` records the node of the last session
(``ray_node_id``, ``ray_node_ip``).

* **Simulations** (``--launch-on-cluster``): a task holds :data:`SIMULATION_CPUS` CPU, and its
  numerical libraries use one thread, as in the worker processes of the local grid.
* **Real training scripts** (``--backend ray``, or a real benchmark with ``--launch-on-cluster``):
  the task is the tuner and holds :data:`TUNER_CPUS` CPU; its trials run as
  :class:`~tunebench.backends.ray_backend.RayBackend` actors on the same cluster, each with its
  own CPUs/GPUs. The training script must be at the same path on every node. Trial folders live
  under the experiment folder on the tuner's node unless ``--storage`` names a URL: on a cluster of
  several machines without a shared filesystem, give ``--storage`` so that every trial's
  checkpoints can be found from any node.

At most ``parallel`` experiments are in flight at once (default: as many as the cluster's CPUs
and GPUs hold, trials included, see :func:`default_cluster_parallel`), so that tuner tasks never
take the CPUs their own trials wait for.

Failures and interruptions
--------------------------
An experiment that fails (a bug, too many failed trials) fails alone: its folder comes back with
its ``error.log``. A task whose node dies (or whose worker process is killed) is run again by Ray,
up to ``max_retries`` times, from the folder it was given; after that the experiment is failed,
with Ray's error in its ``error.log``. Ctrl-C (or SIGTERM) cancels the tasks not yet started and
interrupts the running ones (Ray raises KeyboardInterrupt in them): each ends its experiment
cleanly and its folder comes back, to be resumed by the next run of the same command; a second
Ctrl-C, or ``interrupt_grace`` seconds, kills what is left (those keep the folder they started from).

While a task runs, the driver holds the experiment's ``grid.lock`` under the results root, so
another grid started meanwhile reports it as busy.

Bad input fails at the start, before any experiment or trial is launched: Ray missing, an
unreachable address (:func:`tunebench.backends.ray_backend.connect`), a task or trial resource
request no node can hold, a training script or user module missing on a node.

Ray is imported only inside functions (``import tunebench.experiments.cluster`` stays light).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import socket
import tarfile
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunebench.backends.ray_backend import (
    alive_nodes,
    check_files_on_nodes,
    connect,
    format_nodes,
    format_resources,
    has_gpus,
    node_fits,
)
from tunebench.backends.registry import LOCAL, get_backend
from tunebench.errors import UserError
from tunebench.experiments.grid import (
    LOCK_FILE,
    GridObserver,
    GridResult,
    Job,
    JobOutcome,
    _install_sigterm,
    _restore_sigterm,
    experiment_lock,
    settled_outcomes,
    write_error,
)
from tunebench.experiments.worker import _State, run_job
from tunebench.launch import RunSpec, thread_env

logger = logging.getLogger(__name__)

__all__ = ["run_grid_on_cluster", "default_cluster_parallel", "task_resources", "experiment_footprint",
           "pack_folder", "unpack_folder", "install_folder", "SIMULATION_CPUS", "TUNER_CPUS"]

#: CPUs held by the task of a simulated experiment
SIMULATION_CPUS = 1.0
#: CPUs held by the task of a real-script experiment (the tuner; its trials hold their own)
TUNER_CPUS = 0.5
#: seconds between two reads of the running experiments' progress
_PROGRESS_INTERVAL = 0.5

#: blackboxes loaded by the tasks run in one Ray worker process (a process runs many experiments)
_BLACKBOX_CACHE: dict[str, Any] = {}


# -- resources -------------------------------------------------------------------------------------


def _trial_gpus(spec: RunSpec) -> float:
    return float(spec.gpus_per_trial or 0) if get_backend(spec.backend).cluster else 0.0


def task_resources(spec: RunSpec) -> dict[str, float]:
    """Ray resources the task of the experiment ``spec`` holds: :data:`TUNER_CPUS` for real trials
    on the Ray backend (they hold their own), the CPUs of all its trials on the local backend
    (they run as processes of the task's node), :data:`SIMULATION_CPUS` for a simulation."""
    entry = get_backend(spec.backend)
    if entry.cluster:
        return {"CPU": TUNER_CPUS}
    if entry.runs_scripts:
        return {"CPU": float(spec.n_workers * (spec.cpus_per_trial or 1))}
    return {"CPU": SIMULATION_CPUS}


def _trial_resources(spec: RunSpec) -> dict[str, float]:
    request = {"CPU": float(spec.cpus_per_trial or 1), "GPU": _trial_gpus(spec)}
    return {k: v for k, v in request.items() if v > 0}


def experiment_footprint(spec: RunSpec) -> dict[str, float]:
    """Resources a running experiment takes on the cluster: its task, plus ``n_workers`` trials
    on the Ray backend."""
    out = dict(task_resources(spec))
    if get_backend(spec.backend).cluster:
        for k, v in _trial_resources(spec).items():
            out[k] = out.get(k, 0.0) + spec.n_workers * v
    return out


def default_cluster_parallel(jobs: Sequence[Job], totals: dict[str, float]) -> int:
    """Experiments in flight at once by default: as many of the largest footprint (see
    :func:`experiment_footprint`) as the cluster's total resources ``totals`` hold; at least 1,
    never more than the jobs to run."""
    todo = [j for j in jobs if j.action in ("start", "resume")]
    if not todo:
        return 1
    worst: dict[str, float] = {}
    for job in todo:
        for k, v in experiment_footprint(job.spec).items():
            worst[k] = max(worst.get(k, 0.0), v)
    fits = [int(totals.get(k, 0.0) // v + 1e-9) for k, v in worst.items() if v > 0]
    return max(1, min([len(todo), *fits]))


def _check_resources(jobs: Sequence[Job], nodes: list[dict[str, Any]], address: str | None) -> None:
    """A UserError unless some node can hold each job's task, and each real job's trial."""
    where = f"the Ray cluster at {address}" if address else "the Ray cluster"
    for job in jobs:
        task = task_resources(job.spec)
        if not any(node_fits(n, task) for n in nodes):
            raise UserError(f"no node of {where} can run an experiment task: it needs {format_resources(task)} "
                            f"(nodes: {format_nodes(nodes)}); add nodes with CPUs (a head started with --num-cpus=0 "
                            "runs none)")
        if get_backend(job.spec.backend).cluster:
            trial = _trial_resources(job.spec)
            if not any(node_fits(n, trial) for n in nodes):
                raise UserError(f"no node of {where} can hold one trial of {job.key}: it needs "
                                f"{format_resources(trial)} (nodes: {format_nodes(nodes)}); lower --cpus-per-trial / "
                                "--gpus-per-trial or add a node that has them")


def _where_there_are_gpus(jobs: Sequence[Job], nodes: list[dict[str, Any]]) -> None:
    """GPUs per trial count where there are GPUs (as on the local backend): none on a cluster
    without any GPU."""
    if has_gpus(nodes):
        return
    for job in jobs:
        if get_backend(job.spec.backend).cluster and job.spec.gpus_per_trial:
            logger.info("%s: the cluster has no GPU; its trials run without one", job.key)
            job.spec.gpus_per_trial = 0


# -- the per-node check of files ---------------------------------------------------------------------


def _needed_paths(jobs: Sequence[Job]) -> list[str]:
    """Files the nodes must have: training scripts (Ray backend), user modules, data folders given."""
    paths: list[str] = []
    for job in jobs:
        spec = job.spec
        if get_backend(spec.backend).cluster and spec.script:
            paths.append(spec.script)
        for ref in spec.benchmark_modules:
            if ref.startswith(os.sep):  # a file (stored absolute, maybe with ":function"), not a module name
                paths.append(ref if os.path.exists(ref) else ref.rpartition(":")[0] or ref)
        if spec.data_dir:
            paths.append(spec.data_dir)
    return list(dict.fromkeys(paths))


def _check_paths(jobs: Sequence[Job], nodes: list[dict[str, Any]]) -> None:
    """A UserError naming the nodes that lack a script, user module or data folder of the grid,
    or cannot run tunebench at all; only the nodes that can run a task or a trial are asked."""
    paths = _needed_paths(jobs)
    if not paths:
        return
    need_cpu = min(min(task_resources(j.spec)["CPU"], _trial_resources(j.spec).get("CPU", 1.0)) for j in jobs)
    workers = [n for n in nodes if (n.get("Resources") or {}).get("CPU", 0.0) >= need_cpu]
    if not workers:
        return  # _check_resources says why
    problems = check_files_on_nodes(workers, paths)
    if problems:
        raise UserError("every node that runs experiments or trials needs the grid's files at the same path: "
                        + "; ".join(problems) + " (copy them there, e.g. with a shared filesystem or the cluster's "
                        "file mounts)")


# -- experiment folders as bytes ---------------------------------------------------------------------


def pack_folder(path: Path) -> bytes:
    """The folder ``path`` (without its lock file) as gzipped tar bytes, names relative to it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for item in sorted(path.rglob("*")):
            rel = item.relative_to(path)
            if rel.as_posix() == LOCK_FILE:
                continue
            tar.add(str(item), arcname=rel.as_posix(), recursive=False)
    return buf.getvalue()


def unpack_folder(data: bytes, path: Path) -> None:
    """Unpack :func:`pack_folder`'s bytes into ``path`` (created); refuses names leaving it."""
    path.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(path, filter="data")
            return
        root = path.resolve()
        for member in tar.getmembers():  # pragma: no cover - Python without extraction filters
            target = (root / member.name).resolve()
            if root not in (target, *target.parents) or member.issym() or member.islnk():
                raise tarfile.TarError(f"unsafe name in an experiment archive: {member.name!r}")
        tar.extractall(path)  # noqa: S202 - names checked above


def install_folder(data: bytes, target: Path) -> None:
    """Put the experiment folder ``data`` at ``target``: unpacked into a hidden folder beside it,
    then renamed into place (the folder that was there is moved aside first, then deleted)."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    incoming = parent / f".{target.name}.incoming-{uuid.uuid4().hex[:8]}"
    try:
        unpack_folder(data, incoming)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
    try:
        os.rename(incoming, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)  # put the previous folder back
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- the task (runs on a node of the cluster) --------------------------------------------------------


class _SinkProtocol:
    """What :func:`~tunebench.experiments.worker.run_job` talks to: start and progress messages
    go to the driver's progress sink (best effort), the end message is kept for the task's result."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.end: dict[str, Any] | None = None

    def send(self, **message: Any) -> None:
        import ray  # deferred: ray (optional extra, heavy), only on the Ray path

        if message.get("event") == "end":
            self.end = message
            return
        with contextlib.suppress(Exception):  # progress must never break an experiment
            ref = self.sink.push.remote(message)
            if message.get("event") == "start":  # delivered before the task can end: no job ends unstarted
                ray.get(ref, timeout=5)


def _interrupt_handler(state: Any) -> Any:
    """SIGINT handler of a task (``ray.cancel`` arrives as SIGINT): KeyboardInterrupt while the
    tuner runs, once; before it runs, the job ends at once as interrupted; after it, ignored (the
    folder is being packed)."""

    def handler(signum: int, frame: Any) -> None:
        if state.running and not state.interrupting:
            state.interrupting = True
            raise KeyboardInterrupt
        state.parent_gone = True

    return handler


def _one_thread() -> Any:
    """Numerical libraries already loaded in this process limited to one thread (a context)."""
    from threadpoolctl import threadpool_limits  # deferred: threadpoolctl, only when BLAS threads are limited

    return threadpool_limits(limits=1)


def _run_experiment(payload: dict[str, Any], folder: bytes | None) -> dict[str, Any]:
    """The Ray task of one experiment: run it in a scratch folder (unpacked from ``folder`` to
    resume it), return its end message and the finished folder as bytes."""
    import ray  # deferred: ray (optional extra, heavy), only on the Ray path

    ctx = ray.get_runtime_context()
    node = {"ray_node_id": ctx.get_node_id(), "ray_node_ip": ray.util.get_node_ip_address()}
    scratch = Path(tempfile.mkdtemp(prefix="tunebench-grid-"))
    path = scratch / payload["name"]
    state = _State()
    protocol = _SinkProtocol(payload["sink"])
    previous = signal.signal(signal.SIGINT, _interrupt_handler(state))
    simulation = not get_backend(payload["spec"].get("backend", LOCAL)).runs_scripts
    if simulation:  # one core each, as the local grid's workers (see its docs)
        for k, v in thread_env(1).items():  # libraries loaded later in this (reused) process
            os.environ.setdefault(k, v)
    try:
        if folder is not None:
            unpack_folder(folder, path)
        job = {"id": payload["job_id"], "path": str(path), "resume": payload["resume"], "spec": payload["spec"],
               "metadata": {"experiment_tag": payload["tag"], **node}, "command_line": payload["command_line"]}
        with _one_thread() if simulation else contextlib.nullcontext():
            run_job(job, protocol, _BLACKBOX_CACHE, state)
        end = protocol.end or {"status": "failed", "reason": "no end message", "error": "no end message"}
        return {"end": end, "folder": pack_folder(path), "hostname": socket.gethostname(), **node}
    finally:
        signal.signal(signal.SIGINT, previous)
        shutil.rmtree(scratch, ignore_errors=True)


class _ProgressSink:
    """A Ray actor (on the driver's node) collecting the tasks' start and progress messages."""

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []

    def push(self, message: dict[str, Any]) -> None:
        self._messages.append(message)

    def drain(self) -> list[dict[str, Any]]:
        messages, self._messages = self._messages, []
        return messages


_REMOTES: dict[str, Any] = {}


def _remote(ray: Any, name: str) -> Any:
    """The Ray remote function/actor class ``name``, made once per process."""
    if name not in _REMOTES:
        target = {"task": _run_experiment, "sink": _ProgressSink}[name]
        _REMOTES[name] = ray.remote(target)
    return _REMOTES[name]


# -- the driver ----------------------------------------------------------------------------------------


def run_grid_on_cluster(jobs: Sequence[Job], *, address: str | None = None, parallel: int | None = None,
                        observer: GridObserver | None = None, tag: str = "",
                        command_line: list[str] | None = None, max_retries: int = 3,
                        interrupt_grace: float = 60.0) -> GridResult:
    """Run the jobs to start or resume as Ray tasks on the cluster at ``address`` (``HOST:PORT``,
    ``"auto"``, ``ray://...``; None: Ray's default, see
    :func:`tunebench.backends.ray_backend.connect`), ``parallel`` in flight at once (default
    :func:`default_cluster_parallel`); skipped and busy jobs are reported as such. Returns every
    job's outcome, as :func:`~tunebench.experiments.grid.run_grid` does.

    ``max_retries``: times Ray reruns a task whose node or worker process died. Ctrl-C (or
    SIGTERM): see the module docs; returns with ``interrupted=True``.

    Raises:
        UserError: Ray missing, the cluster unreachable, resources or files no node has (before
            any experiment is launched).
    """
    if max_retries < 0:
        raise UserError(f"--max-retries must be >= 0, got {max_retries}")
    observer = observer or GridObserver()
    t0 = time.monotonic()
    todo = [j for j in jobs if j.action in ("start", "resume")]
    outcomes: list[JobOutcome] = []
    if not todo:
        observer.on_grid_start(jobs, parallel or 1)
        outcomes.extend(settled_outcomes(jobs, observer))
        result = GridResult(outcomes, False, time.monotonic() - t0)
        observer.on_grid_end(result)
        return result
    owns = connect(address)
    import ray  # deferred: ray (optional extra, heavy), only on the Ray path

    runner = None
    try:
        nodes = alive_nodes()
        _where_there_are_gpus(todo, nodes)
        _check_resources(todo, nodes, address)
        _check_paths(todo, nodes)
        totals: dict[str, float] = {}
        for n in nodes:
            for k, v in (n.get("Resources") or {}).items():
                totals[k] = totals.get(k, 0.0) + v
        parallel = parallel or default_cluster_parallel(todo, totals)
        observer.on_grid_start(jobs, parallel)
        outcomes.extend(settled_outcomes(jobs, observer))
        runner = _ClusterRunner(ray, deque(todo), parallel, observer, tag, command_line, max_retries, outcomes)
        interrupted = runner.run(interrupt_grace)
    finally:
        if runner is not None:
            runner.close()
        if owns:
            ray.shutdown()
    result = GridResult(outcomes, interrupted, time.monotonic() - t0)
    observer.on_grid_end(result)
    return result


@dataclass(eq=False)
class _Flight:
    """A submitted task and what the driver holds for it."""

    job: Job
    job_id: int
    lock: contextlib.ExitStack
    submitted: float


class _ClusterRunner:
    """The event loop of :func:`run_grid_on_cluster`."""

    def __init__(self, ray: Any, todo: deque[Job], parallel: int, observer: GridObserver, tag: str,
                 command_line: list[str] | None, max_retries: int, outcomes: list[JobOutcome]) -> None:
        self.ray = ray
        self.todo = todo
        self.parallel = parallel
        self.observer = observer
        self.tag = tag
        self.command_line = command_line or ["tunebench", "experiment"]
        self.max_retries = max_retries
        self.outcomes = outcomes
        self.flights: dict[Any, _Flight] = {}  # ObjectRef of the task's result -> its flight
        self.by_id: dict[int, _Flight] = {}
        self.next_job_id = 0
        self.stopping = False
        self._last_progress = 0.0
        self._drain: Any = None  # the sink's drain call under way
        # the progress sink lives on the driver's node (soft: anywhere if that node cannot host it)
        # deferred: ray (optional extra, heavy), only on the Ray path
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        self.sink: Any = _remote(ray, "sink").options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True)).remote()

    # -- submitting ---------------------------------------------------------------------------

    def _submit(self, job: Job) -> None:
        lock = contextlib.ExitStack()
        if not lock.enter_context(experiment_lock(job.path)):
            lock.close()
            self._finish(JobOutcome(job, "busy", "another process runs this experiment"))
            return
        try:
            folder = None
            if any(p.name != LOCK_FILE for p in job.path.iterdir()):  # to resume (or an error.log to keep)
                folder = self.ray.put(pack_folder(job.path))
            payload = {"job_id": self.next_job_id, "name": f"{self.tag}.{job.benchmark}.{job.method}.{job.seed}",
                       "resume": job.action == "resume", "spec": job.spec.to_dict(), "tag": self.tag,
                       "command_line": self.command_line, "sink": self.sink}
            resources = task_resources(job.spec)
            ref = _remote(self.ray, "task").options(
                num_cpus=resources["CPU"], max_retries=self.max_retries, retry_exceptions=False,
                scheduling_strategy="SPREAD", name=f"tunebench {job.key}").remote(payload, folder)
        except BaseException:
            lock.close()
            raise
        flight = _Flight(job, self.next_job_id, lock, time.monotonic())
        self.next_job_id += 1
        self.flights[ref] = flight
        self.by_id[flight.job_id] = flight

    def _assign(self) -> None:
        while self.todo and not self.stopping and len(self.flights) < self.parallel:
            self._submit(self.todo.popleft())

    # -- results ------------------------------------------------------------------------------

    def _finish(self, outcome: JobOutcome) -> None:
        self.outcomes.append(outcome)
        self.observer.on_job_end(outcome)

    def _land(self, ref: Any) -> None:
        """The task of ``ref`` ended: put its folder in place, report its outcome."""
        ray = self.ray
        flight = self.flights[ref]
        job = flight.job
        try:
            answer = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            answer = None
        except Exception as err:  # noqa: BLE001 - a RayError (node died too often, worker killed, ...)
            answer = err
        del self.flights[ref]
        self.by_id.pop(flight.job_id, None)
        try:
            if answer is None:
                outcome = JobOutcome(job, "interrupted", "grid interrupted")
            elif isinstance(answer, Exception):
                if self.stopping:
                    outcome = JobOutcome(job, "interrupted", "grid interrupted")
                else:
                    lines = str(answer).strip().splitlines()
                    error = f"the experiment's Ray task failed ({type(answer).__name__}; retries: {self.max_retries})"
                    outcome = JobOutcome(job, "failed", type(answer).__name__,
                                         f"{error}: {lines[-1] if lines else ''}")
                    write_error(job, error, "\n".join(lines[-40:]), what="Ray error")
            else:
                end = answer["end"]
                status, reason = str(end.get("status")), str(end.get("reason") or "")
                error = str(end.get("error") or "")
                info = {k: v for k, v in end.items() if k not in ("event", "id", "status", "reason", "error")}
                info.update({k: answer.get(k) for k in ("ray_node_id", "ray_node_ip", "hostname")})
                try:
                    install_folder(answer["folder"], job.path)
                except (OSError, tarfile.TarError) as err:
                    status, reason = "failed", type(err).__name__
                    error = f"could not write the experiment folder {job.path}: {err}"
                    write_error(job, error)
                outcome = JobOutcome(job, status, reason, error, info)
        finally:
            flight.lock.close()
        self._finish(outcome)

    def _progress(self, block: bool = False) -> None:
        """Pass the tasks' start and progress messages to the observer: asked for every
        :data:`_PROGRESS_INTERVAL` seconds without waiting; ``block``: everything the sink holds
        now (before tasks that ended are landed, so that their start comes before their end)."""
        for _ in range(2 if block else 1):  # block: a drain sent earlier may predate the last messages
            if self.sink is None:
                return
            now = time.monotonic()
            if self._drain is None:
                if not block and now - self._last_progress < _PROGRESS_INTERVAL:
                    return
                self._drain = self.sink.drain.remote()
                self._last_progress = now
            ready, _ = self.ray.wait([self._drain], num_returns=1, timeout=10.0 if block else 0)
            if not ready:
                return
            ref, self._drain = self._drain, None
            try:
                messages = self.ray.get(ref)
            except Exception as err:  # noqa: BLE001 - progress is best effort
                logger.warning("progress of the running experiments is no longer available: %s", err)
                self.sink = None
                return
            self._dispatch(messages)

    def _dispatch(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            job_id: Any = message.get("id")  # a JSON value from the task (None: none)
            flight = self.by_id.get(job_id)
            if flight is None:
                continue  # its task has ended meanwhile
            if message.get("event") == "start":
                self.observer.on_job_start(flight.job, message)
            elif message.get("event") == "progress":
                self.observer.on_job_progress(flight.job, message)

    def _pump(self, timeout: float) -> None:
        refs = list(self.flights)
        if refs:
            ready, rest = self.ray.wait(refs, num_returns=1, timeout=timeout)
            if ready and rest:
                more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
                ready = [*ready, *more]
            self._progress(block=bool(ready))
            for ref in ready:
                self._land(ref)
        else:
            time.sleep(timeout)
        self.observer.tick()

    # -- the loop -----------------------------------------------------------------------------

    def run(self, interrupt_grace: float) -> bool:
        """Run every job; True if interrupted."""
        previous = _install_sigterm()
        try:
            try:
                while self.todo or self.flights:
                    self._assign()
                    self._pump(0.2)
                return False
            except KeyboardInterrupt:
                self._interrupt(interrupt_grace)
                return True
        finally:
            _restore_sigterm(previous)

    def _interrupt(self, grace: float) -> None:
        """Cancel what has not started; interrupt the running experiments, take their folders back."""
        ray = self.ray
        self.stopping = True
        self.todo.clear()
        self.observer.on_interrupt()
        for ref in self.flights:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False, recursive=False)  # KeyboardInterrupt in the task
        deadline = time.monotonic() + grace
        try:
            while self.flights and time.monotonic() < deadline:
                self._pump(0.2)
        except KeyboardInterrupt:  # a second Ctrl-C: kill them
            pass
        for ref in list(self.flights):
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
            flight = self.flights.pop(ref)
            self.by_id.pop(flight.job_id, None)
            flight.lock.close()
            self._finish(JobOutcome(flight.job, "interrupted", "grid interrupted (killed)"))

    def close(self) -> None:
        """Release what is left (locks of tasks not landed, the progress sink)."""
        for flight in self.flights.values():
            flight.lock.close()
        self.flights.clear()
        if self.sink is not None:
            with contextlib.suppress(Exception):
                self.ray.kill(self.sink)
            self.sink = None
