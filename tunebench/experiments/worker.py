"""A worker process of an experiment grid: ``python -m tunebench.experiments.worker`` (L4).

It reads jobs from its stdin, one JSON object per line (``{"id", "path", "resume", "spec",
"metadata", "command_line"}``, written by :mod:`tunebench.experiments.grid`), runs them one after
the other and answers on its stdout, one JSON object per line:

* ``{"event": "start", "id", "resumed", "elapsed", "budget", "metric", "mode", "metrics", "modes",
  "constraints"}`` when a job starts (``metric``/``mode``: the first of ``metrics``/``modes``, every
  metric the experiment optimizes; ``constraints``: their texts, ``NAME<=BOUND``);
* ``{"event": "progress", "id", "elapsed", "budget", "trials", "results", "best"}`` at most every
  :data:`PROGRESS_INTERVAL` seconds; ``best`` is the best value of the first metric among the
  feasible results (those meeting every constraint), as the tuner keeps it, also for an
  experiment with several metrics (its hypervolume is for the analysis to compute);
* ``{"event": "end", "id", "status", "reason", ...}`` when it ends: status ``complete`` (a limit
  was reached), ``interrupted`` (SIGINT, or the grid went away), ``failed`` (with ``error``:
  the traceback is also in the experiment's ``error.log``), or ``busy`` (another process holds
  the experiment's lock).

Anything else the job prints goes to stderr (the protocol keeps the real stdout for itself). The
worker exits when its stdin closes; if that happens while a job runs (the grid process died), it
interrupts the job first, so the experiment ends cleanly and can be resumed.
"""

from __future__ import annotations

import _thread
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any, Protocol

from tunebench.errors import TuningError, UserError
from tunebench.experiments.grid import experiment_lock, is_limit_reason
from tunebench.launch import RunSpec, build_tuner
from tunebench.tuner import Callback

PROGRESS_INTERVAL = 0.5

logger = logging.getLogger("tunebench.experiments.worker")


class _Sender(Protocol):
    """Where a job's messages go: the worker's :class:`_Protocol`, or a Ray task's sink
    (:mod:`tunebench.experiments.cluster`)."""

    def send(self, **message: Any) -> None:
        """Send one message (best effort: never raises for a reader that went away)."""


class _Protocol:
    """The worker's answers, on the original stdout (fd 1 is pointed at stderr)."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # prints of the code being run land in stderr
        self._lock = threading.Lock()

    def send(self, **message: Any) -> None:
        line = json.dumps(message, default=str, allow_nan=True)
        with self._lock:
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except (BrokenPipeError, OSError):
                pass  # the grid went away; the stdin watcher interrupts us


class _Progress(Callback):
    """Sends the tuner's progress of job ``job_id`` to the grid, at most every PROGRESS_INTERVAL
    seconds."""

    def __init__(self, protocol: _Sender, job_id: int, spec: RunSpec | None = None) -> None:
        self.protocol = protocol
        self.job_id = job_id
        #: what the ``start`` message says of the objectives (from the job's spec)
        self._problem: dict[str, Any] = {}
        if spec is not None:
            objectives = spec.objectives
            self._problem = {"metrics": list(objectives.metrics), "modes": list(objectives.modes),
                             "constraints": list(spec.constraints)}
        self._last = 0.0
        self._count = 0

    def _send(self, tuner: Any, force: bool = False) -> None:
        self._count += 1
        if not force and self._count % 16:
            return
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        self.protocol.send(event="progress", id=self.job_id, elapsed=tuner.elapsed(),
                           budget=tuner.stop.max_wallclock_time, trials=len(tuner.trials), results=tuner.n_results,
                           best=tuner.best_value, failed=tuner.n_failed)

    def on_tuning_start(self, tuner: Any) -> None:
        """Called once the tuner starts: sends the job's ``start`` message."""
        self.protocol.send(event="start", id=self.job_id, resumed=tuner.resume, elapsed=tuner.elapsed(),
                           budget=tuner.stop.max_wallclock_time, metric=tuner.metric, mode=tuner.mode,
                           trials=len(tuner.trials), **self._problem)

    def on_result(self, tuner: Any, trial: Any, result: Any, decision: Any) -> None:
        """Called per result: may send a ``progress`` message."""
        self._send(tuner)

    def on_trial_end(self, tuner: Any, trial: Any, status: Any) -> None:
        """Called per ended trial: may send a ``progress`` message."""
        self._send(tuner)


def _write_error(path: Path, text: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(path / "error.log", "a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')}\n{text}\n")
    except OSError:
        pass


class _State:
    running = False  #: a job is running
    parent_gone = False  #: stdin closed: the grid went away
    interrupting = False  #: a KeyboardInterrupt was raised: later SIGINTs are ignored


def _sigint_once(state: _State) -> Any:
    """A SIGINT handler raising KeyboardInterrupt once: a second SIGINT (or the stdin watcher's)
    must not break the tuner while it ends the experiment cleanly (the grid kills the worker if
    that takes too long)."""

    def handler(signum: int, frame: Any) -> None:
        if state.interrupting:
            return
        state.interrupting = True
        raise KeyboardInterrupt

    return handler


def _watch_stdin(jobs: queue.Queue[dict[str, Any] | None], state: _State) -> None:
    """Read jobs until stdin closes; then interrupt a running job (the grid went away)."""
    for raw in sys.stdin.buffer:
        try:
            job = json.loads(raw)
        except ValueError:
            logger.error("worker: not a job: %r", raw[:200])
            continue
        jobs.put(job)
    state.parent_gone = True
    jobs.put(None)
    if state.running:
        _thread.interrupt_main()  # runs the SIGINT handler in the main thread


def run_job(job: dict[str, Any], protocol: _Sender, cache: dict[str, Any], state: _State) -> str:
    """Run one job; returns its status (and has sent its ``end`` message)."""
    job_id = job["id"]
    path = Path(job["path"])
    t0 = time.monotonic()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file in its path, no permission: no error.log can be written either
        reason = f"cannot create the experiment folder {path}: {e.strerror or e}"
        protocol.send(event="end", id=job_id, status="failed", reason=reason, error=reason,
                      real_time=time.monotonic() - t0)
        return "failed"
    with experiment_lock(path) as locked:
        if not locked:
            protocol.send(event="end", id=job_id, status="busy", reason="another process runs this experiment")
            return "busy"
        status, reason, error, info = "failed", "", "", {}
        try:
            spec = RunSpec.from_dict(job["spec"])
            state.running = True
            if state.parent_gone:
                raise KeyboardInterrupt
            tuner = build_tuner(spec, path, resume=bool(job.get("resume")),
                                callbacks=[_Progress(protocol, job_id, spec)],
                                command_line=job.get("command_line") or ["tunebench", "experiment"],
                                blackbox_cache=cache, metadata=job.get("metadata") or {})
            result = tuner.run()
            reason = result.end_reason
            status = "complete" if is_limit_reason(reason) else "failed"
            if status == "failed":
                error = f"tuning ended with: {reason}"
            info = {"best": result.best_metric, "trials": result.n_trials, "results": result.n_results,
                    "elapsed": result.elapsed_time, "failed_trials": result.n_failed}
        except KeyboardInterrupt:
            status, reason = "interrupted", "interrupted"
        except (TuningError, UserError) as e:
            reason, error = type(e).__name__, f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 - one experiment's bug must not end the worker
            reason = f"{type(e).__name__}: {e}"
            error = traceback.format_exc()
        finally:
            state.running = False
        if status == "failed":
            _write_error(path, error)
        protocol.send(event="end", id=job_id, status=status, reason=reason, error=error.strip().splitlines()[-1]
                      if error.strip() else "", real_time=time.monotonic() - t0, **info)
        return status


def main() -> int:
    """Entry point of the worker process."""
    logging.basicConfig(level=os.environ.get("TUNEBENCH_WORKER_LOG", "WARNING"), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    protocol = _Protocol()
    jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
    state = _State()
    signal.signal(signal.SIGINT, _sigint_once(state))
    threading.Thread(target=_watch_stdin, args=(jobs, state), daemon=True, name="stdin-watch").start()
    cache: dict[str, Any] = {}
    try:
        while True:
            job = jobs.get()
            if job is None:
                return 0
            if run_job(job, protocol, cache, state) == "interrupted":
                return 130
    except KeyboardInterrupt:  # between two jobs
        return 130


if __name__ == "__main__":
    sys.exit(main())
