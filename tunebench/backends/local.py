"""Run trials as processes of a training script on this machine (L2).

How a trial runs
----------------
``python SCRIPT [extra_args] --hp value ...`` is launched by a small supervisor process
(:mod:`tunebench.backends.trial_supervisor`, a child subreaper) in its own session, with:

* **cwd = ``cwd``** (the CLI passes the directory tunebench was started from, so relative paths
  work as when the script is run by hand), or **the trial's folder** (``trial_dir``) when
  ``cwd`` is None (``--trial-cwd trial``). Python puts the script's own folder first on
  ``sys.path``, so the user's modules beside the script import as usual; that folder is also
  prepended to ``PYTHONPATH`` so subprocesses the script starts find them too.
* stdout / stderr appended to ``trial_dir/stdout.log`` / ``stderr.log`` (``PYTHONUNBUFFERED=1``
  unless the caller's ``env`` says otherwise), each capped at ``log_limit`` bytes: its first
  and last halves, with a line saying how many bytes were dropped between;
* the environment variables of :mod:`tunebench.reporting`: the results file
  ``trial_dir/results.jsonl``, the checkpoint folder ``trial_dir/checkpoint``, the trial's id and
  folder (``TUNEBENCH_TRIAL_DIR``), and the write end of a pipe that :func:`tunebench.report`
  writes a byte to after each line;
* ``CUDA_VISIBLE_DEVICES`` set to the least-loaded GPUs when the machine has GPUs (not set at all
  otherwise).

How the backend waits (no sleep, no timer polling)
--------------------------------------------------
:meth:`LocalBackend.poll` blocks in one ``select`` (``selectors``, epoll on Linux) on the read
end of every trial's notify pipe and on a ``pidfd`` per process (``os.pidfd_open``, Linux >= 5.3),
with a timeout capped by the nearest deadline (trial timeout, SIGKILL after the grace period).
It thus wakes as soon as a trial reports or exits. The results files are also watched with
inotify (Linux, through ctypes), so lines written without :func:`tunebench.report` (by hand, or
by a subprocess of the script that lacks the notify pipe) wake it too. Where pidfds are not
available, the wait is capped at 20 ms while trials run and exits are found with
``waitid``/``Popen.poll``; where a results file cannot be watched, it is re-read at least every
second as well.

Results are tailed by byte offset: only the bytes after the last complete line are read, an
incomplete trailing fragment is kept for later, and every RESULT event carries the offset just
after its line. When a process ends, its last lines are read *before* its final event.

Decisions documented here
-------------------------
* Results reported after :meth:`~LocalBackend.pause` / :meth:`~LocalBackend.stop` (a script that
  saves and reports on SIGTERM, say) are still emitted as RESULT events, with their offsets, so
  the tuner's offsets stay exact; the tuner decides to ignore them.
* Final events: exit code 0 of a running trial → COMPLETED; any other end of a running trial →
  FAILED (``"exit code N"`` or ``"killed by signal SIGX"``, with the tail of the run's stderr);
  after ``pause()`` → PAUSED, after ``stop()`` → STOPPED, whatever the exit code; a trial timeout
  or a malformed report line → FAILED (the process is ended first).
* Every process a trial starts ends with it: the supervisor is a child subreaper, so even a
  grandchild that called ``setsid`` stays in its tree. SIGTERM (pause, stop, timeout) goes to
  every process of the tree; at the end of the grace period, and when the script's main process
  exits, the supervisor SIGKILLs whatever is left. The final event comes once the whole tree is
  gone (the supervisor exits last). The event's ``info["pid"]`` is the script's pid.
* Nothing runs in the tuner between ``fork`` and ``exec`` (no ``preexec_fn``): the supervisor
  sets ``PR_SET_PDEATHSIG`` itself. A ``preexec_fn`` once swallowed a SIGINT (logging's at-fork
  lock).
* ``pause``/``stop`` win over an ending already under way for a timeout or a malformed line
  (the final event is then PAUSED/STOPPED). On a trial whose process has already ended (its
  final event is already returned, or returned by the next poll) they do nothing, except that
  ``stop`` of a paused trial emits STOPPED. :meth:`~LocalBackend.resume` relaunches any trial
  whose process is gone, so a trial the tuner paused just as it completed on its own can be
  resumed (the script then finds its final checkpoint and exits).
* If the tuner process dies without calling :meth:`~LocalBackend.shutdown` (SIGKILL, OOM), its
  trials are killed too on Linux, with every process they started (``PR_SET_PDEATHSIG`` of the
  supervisors; ``kill_on_parent_death=False`` turns it off). Elsewhere they may run on; that
  corrupts nothing: report lines are appended whole with ``O_APPEND`` and checkpoints are
  replaced atomically, and a restarted tuner tails from the offset it persisted
  (:meth:`~LocalBackend.start` with ``results_offset``).
* A line torn by a crash in the middle of a write (no final newline) is closed with a newline
  and skipped, with a warning, when the trial is started or resumed again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunebench.backends.base import (
    CHECKPOINT_DIRNAME,
    RESULTS_FILENAME,
    STDERR_FILENAME,
    STDOUT_FILENAME,
    Backend,
)
from tunebench.backends.trial_supervisor import SIGKILL_ALL
from tunebench.backends.warm import WARM_SERVER, FunctionTarget, PreparedInterpreter, WarmStartError
from tunebench.errors import UserError
from tunebench.events import parse_result_line
from tunebench.reporting import (
    ENV_CHECKPOINT_DIR,
    ENV_NOTIFY_FD,
    ENV_RESULTS_FILE,
    ENV_TRIAL_DIR,
    ENV_TRIAL_ID,
)
from tunebench.space import config_to_argv
from tunebench.types import Config, Event, EventKind, Trial

if TYPE_CHECKING:  # pragma: no cover
    from ctypes import _NamedFuncPointer  # the type of a C library function (typeshed only)

__all__ = ["DEFAULT_LOG_LIMIT", "LocalBackend", "detect_gpus", "parse_size"]

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 16
_FALLBACK_TICK = 0.02  # seconds between exit checks where pidfds are not available
_RESCAN_INTERVAL = 1.0  # seconds between reads of results files inotify cannot watch
_STDERR_TAIL_BYTES = 1 << 16
_GIVE_UP_AFTER_KILL = 5.0  # shutdown: seconds to wait for processes after SIGKILL

_WAKEUP = "wakeup"  # selector key data of the wakeup pipe
_SUPERVISOR = str(Path(__file__).with_name("trial_supervisor.py"))

#: bytes kept of each of a trial's stdout.log and stderr.log (the first and the last half)
DEFAULT_LOG_LIMIT = 10 * 2**20
_SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
               "g": 2**30, "gb": 2**30, "gib": 2**30}

# run states
_RUNNING = "running"
_PAUSING = "pausing"
_STOPPING = "stopping"
_FAILING = "failing"  # we end it ourselves: timeout or malformed report
_ENDED = "ended"  # its process is gone and its final event emitted


def detect_gpus(timeout: float = 5.0) -> list[str]:
    """The GPUs trials may use, found once per backend.

    ``CUDA_VISIBLE_DEVICES`` of this process if set (``""`` or ``"-1"``: none), else the
    ``GPU N:`` lines of ``nvidia-smi -L`` when it is on the PATH, else none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [g.strip() for g in visible.split(",") if g.strip()]
        return [] if ids in ([], ["-1"]) else ids
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "-L"], capture_output=True, text=True, timeout=timeout, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        logger.warning("nvidia-smi -L failed (%s): trials run without GPUs", err)
        return []
    return re.findall(r"^GPU (\d+):", out, flags=re.MULTILINE)


def _libc_function(name: str) -> _NamedFuncPointer | None:
    """A function of the C library (Linux only), or ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function: _NamedFuncPointer = getattr(ctypes.CDLL(None, use_errno=True), name)
        return function
    except (OSError, AttributeError, ImportError):
        return None


class _FileWatcher:
    """inotify (Linux): one descriptor that becomes readable whenever a watched results file is
    written, also by writers that do not go through :func:`tunebench.report` (a subprocess of
    the script without the notify pipe, a hand-written line). Inactive where unavailable."""

    _IN_MODIFY = 0x2

    def __init__(self) -> None:
        self.fd: int | None = None
        init = _libc_function("inotify_init1")
        self._add = _libc_function("inotify_add_watch")
        self._rm = _libc_function("inotify_rm_watch")
        if init is None or self._add is None or self._rm is None:
            return
        import ctypes

        init.argtypes = [ctypes.c_int]
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._rm.argtypes = [ctypes.c_int, ctypes.c_int]
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        self.fd = fd if fd >= 0 else None

    def add(self, path: Path) -> int | None:
        """Watch ``path``; returns the watch id, or ``None`` if it cannot be watched."""
        if self.fd is None or self._add is None:
            return None
        wd = self._add(self.fd, os.fsencode(path), self._IN_MODIFY)
        return wd if wd >= 0 else None

    def remove(self, wd: int) -> None:
        if self.fd is not None and self._rm is not None:
            self._rm(self.fd, wd)

    def drain(self) -> None:
        while self.fd is not None:
            try:
                if not os.read(self.fd, 1 << 16):
                    return
            except BlockingIOError:
                return

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def parse_size(text: str) -> int:
    """Bytes of a size such as ``10MB``, ``512k``, ``2GiB`` or ``1000`` (units of 1024).

    Raises:
        ValueError: not a size.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"expected a size such as 10MB, 512KB or 0, got '{text}'")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


class _Forked:
    """The supervisor of a warm run, forked by the prepared interpreter (so not a child of this
    process): like the part of ``Popen`` the backend uses. It has exited when its status pipe
    reaches its end: it holds the pipe's only write end (the script's process closed its copy)."""

    def __init__(self, pid: int, run: _Run) -> None:
        self.pid = pid
        self.run = run
        self.returncode: int | None = None

    def poll(self) -> int | None:
        run = self.run
        while self.returncode is None and run.status_r is not None:
            if not select.select([run.status_r], [], [], 0)[0]:
                break
            self._read_once()
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None and self.run.status_r is not None:
            self._read_once()
        return self.returncode if self.returncode is not None else -signal.SIGKILL

    def _read_once(self) -> None:
        run = self.run
        assert run.status_r is not None
        chunk = os.read(run.status_r, 4096)
        run.status += chunk
        if not chunk:
            # a supervisor always writes its script's exit before ending; without it, it was
            # SIGKILLed (the one death it cannot report)
            self.returncode = 0 if b"exit " in run.status else -signal.SIGKILL


@dataclass(eq=False)
class _Run:
    """What the backend knows of one trial that is running or paused."""

    trial: Trial
    trial_dir: Path
    offset: int  # results file: bytes consumed (always at a line boundary)
    buffer: bytes = b""  # bytes read after ``offset``: an incomplete trailing line
    torn_end: int = -1  # a malformed line ending at this offset was torn by a crash: skip it
    state: str = _RUNNING
    error: str | None = None  # why we are ending it (state _FAILING)
    tail_stopped: bool = False  # after a malformed line: read nothing more
    popen: subprocess.Popen[bytes] | _Forked | None = None  # the run's supervisor (trial_supervisor.py)
    status_r: int | None = None  # read end of the supervisor's status pipe
    status: bytes = b""  # what the supervisor wrote to it so far
    script_pid: int | None = None  # also the id of the script's process group
    pidfd: int | None = None
    watch: int | None = None  # inotify watch of the results file
    notify_r: int | None = None
    results_fd: int | None = None
    timeout_deadline: float | None = None  # monotonic
    kill_deadline: float | None = None  # monotonic: SIGKILL the group if still alive
    gpus: tuple[str, ...] = ()
    stderr_start: int = 0  # size of stderr.log when this run was launched
    info: dict[str, Any] = field(default_factory=dict)
    final: EventKind | None = None  # kind of the final event of its last run

    @property
    def results_path(self) -> Path:
        return self.trial_dir / RESULTS_FILENAME


class LocalBackend(Backend):
    """Runs each trial as a process of ``script`` on this machine (see the module docstring).

    Args:
        script: the training script (a Python file).
        python: the interpreter that runs it.
        extra_args: arguments put after the script and before the hyperparameters.
        gpus_per_trial: GPUs given to each trial when the machine has GPUs (0: none, the trial
            gets an empty ``CUDA_VISIBLE_DEVICES``); ignored without GPUs.
        trial_timeout: seconds one run of a trial may last (counted again after a resume);
            past it the trial FAILS with ``"timed out after X s"``.
        kill_grace_period: seconds between SIGTERM and SIGKILL when a trial is ended.
        env: extra environment variables for the trials.
        stderr_tail_lines: lines of stderr quoted in the error of a FAILED event.
        gpus: the GPU ids to use instead of detecting them (``[]``: none).
        kill_on_parent_death: on Linux, trials (with every process they started) are SIGKILLed
            when the tuner dies without :meth:`shutdown` (``PR_SET_PDEATHSIG`` of their
            supervisor). Strictly, when the *thread* that started them ends: start trials from
            a thread that outlives them (the tuner's loop does).
        cwd: the working directory of the trials; ``None``: each trial's own folder.
        log_limit: bytes kept of each of a trial's ``stdout.log`` and ``stderr.log`` (the first
            and the last half, with a line saying what was dropped between); 0: no limit.
        function: run this Python function (called with the trial's config) instead of a
            script (``script`` must then be None): see :func:`tunebench.tune`.
        warm_start: fork each run from a prepared interpreter that has imported the script's
            modules once (:mod:`tunebench.backends.warm`); False: a new interpreter per run.
        preload: more modules the prepared interpreter imports.
        prepared: a prepared interpreter to use (and not close) instead of starting one; a Ray
            trial actor keeps one across the trials it runs.
    """

    def __init__(
        self,
        *,
        script: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
        gpus_per_trial: int = 1,
        trial_timeout: float | None = None,
        kill_grace_period: float = 5.0,
        env: Mapping[str, str] | None = None,
        stderr_tail_lines: int = 20,
        gpus: Sequence[str] | None = None,
        kill_on_parent_death: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        log_limit: int = DEFAULT_LOG_LIMIT,
        function: FunctionTarget | None = None,
        warm_start: bool = True,
        preload: Sequence[str] = (),
        prepared: PreparedInterpreter | None = None,
    ) -> None:
        if (script is None) == (function is None):
            raise ValueError("pass either a script or a function")
        script_path = Path(script if script is not None else WARM_SERVER).expanduser()
        if not script_path.is_file():
            raise UserError(
                f"training script '{script}' does not exist; pass --script PATH to an existing file"
            )
        if shutil.which(python) is None:
            raise UserError(f"python interpreter '{python}' not found; pass an existing one")
        if gpus_per_trial < 0:
            raise ValueError(f"gpus_per_trial must be >= 0, got {gpus_per_trial}")
        if trial_timeout is not None and not trial_timeout > 0:
            raise ValueError(f"trial_timeout must be > 0 seconds, got {trial_timeout}")
        if not kill_grace_period >= 0:
            raise ValueError(f"kill_grace_period must be >= 0 seconds, got {kill_grace_period}")
        if log_limit < 0:
            raise ValueError(f"log_limit must be >= 0 bytes, got {log_limit}")
        if cwd is not None and not Path(cwd).is_dir():
            raise UserError(f"the trials' working directory '{cwd}' is not a directory; pass --trial-cwd "
                            "with an existing directory (or 'trial' for each trial's folder)")
        if stderr_tail_lines < 0:
            raise ValueError(f"stderr_tail_lines must be >= 0, got {stderr_tail_lines}")
        self.script = script_path.resolve()
        # a relative path must not be looked up from the trial's folder (not resolved: a
        # virtual environment's python is a symlink that must stay as it is)
        self.python = os.path.abspath(python) if os.sep in python else python
        self.extra_args = [str(a) for a in extra_args]
        self.gpus_per_trial = gpus_per_trial
        self.trial_timeout = trial_timeout
        self.kill_grace_period = float(kill_grace_period)
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.stderr_tail_lines = stderr_tail_lines
        self.gpus: list[str] = [str(g) for g in (detect_gpus() if gpus is None else gpus)]
        if self.gpus and gpus_per_trial > len(self.gpus):
            raise UserError(
                f"gpus_per_trial={gpus_per_trial} but only {len(self.gpus)} GPU(s) are available "
                f"({','.join(self.gpus)}); lower --gpus-per-trial"
            )
        self._gpu_load = dict.fromkeys(self.gpus, 0)
        self.kill_on_parent_death = kill_on_parent_death
        self.cwd = Path(cwd).resolve() if cwd is not None else None
        self.log_limit = int(log_limit)
        self.function = function
        self.warm_start = warm_start
        self.preload = [str(m) for m in preload]
        self._prepared = prepared
        self._owns_prepared = prepared is None
        self._live: dict[int, _Run] = {}  # trial id -> run whose process is not yet reported gone
        self._ended: dict[int, _Run] = {}  # trial id -> run whose process is gone (resumable)
        self._pending: list[Event] = []
        self._selector = selectors.DefaultSelector()
        self._watcher = _FileWatcher()
        if self._watcher.fd is not None:
            self._selector.register(self._watcher.fd, selectors.EVENT_READ, None)
        # self-pipe: another thread's wakeup() makes a waiting poll() return at once
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKEUP)
        self._woken = False
        self._closed = False
        if self.gpus:
            logger.info("trials use GPUs %s, %d per trial", ",".join(self.gpus), gpus_per_trial)

    # -- the Backend contract ---------------------------------------------------------------

    @property
    def prepared(self) -> PreparedInterpreter | None:
        """The prepared interpreter of warm starts, once one was started (see its ``broken``)."""
        return self._prepared

    def share_prepared(self) -> PreparedInterpreter | None:
        """Hand the prepared interpreter (started now if need be) to the caller, who passes it
        to the next backends of the same script (``prepared=``) and closes it; None when warm
        starts are off. A Ray trial actor keeps one across the trials it runs."""
        prepared = self.prepared_interpreter()
        if prepared is not None:
            self._owns_prepared = False
        return prepared

    @property
    def n_busy(self) -> int:
        """Trials whose process has not been reported gone yet (running, or asked to end)."""
        return len(self._live)

    def start(self, trial: Trial, trial_dir: Path | None, results_offset: int = 0) -> None:
        """Called by the tuner to launch ``trial`` in ``trial_dir``; returns once the process is
        spawned. Results are tailed from byte ``results_offset`` of ``trial_dir/results.jsonl``
        (non-zero when a restarted tuner relaunches a trial of a dead one). A failure to spawn
        is reported as a FAILED event by the next :meth:`poll`."""
        self._check_open()
        tid = trial.trial_id
        if tid in self._live or tid in self._ended:
            raise ValueError(f"trial {tid} was already started by this backend")
        if trial_dir is None:
            raise ValueError("the local backend needs a trial folder")
        if results_offset < 0:
            raise ValueError(f"results_offset must be >= 0, got {results_offset}")
        run = _Run(trial=trial, trial_dir=Path(trial_dir), offset=results_offset)
        self._launch(run)

    def pause(self, trial_id: int) -> None:
        """Called when the scheduler decided PAUSE: SIGTERM the trial's process group (SIGKILL
        after the grace period); a PAUSED event follows once the process is gone (even if it
        was timing out or crashed meanwhile); the trial can then be given to :meth:`resume`.
        A no-op for a trial whose process is already gone (it stays resumable)."""
        run = self._live.get(trial_id)
        if run is None:
            logger.debug("pause(%s): no live process, nothing to do", trial_id)
            return
        if run.state in (_RUNNING, _FAILING):
            run.state = _PAUSING
            self._terminate(run)

    def stop(self, trial_id: int) -> None:
        """Called to end a trial for good: SIGTERM its process group (SIGKILL after the grace
        period); a STOPPED event follows once the process is gone. For a paused trial, the
        STOPPED event comes with the next :meth:`poll`. A no-op for an otherwise ended trial."""
        run = self._live.get(trial_id)
        if run is None:
            ended = self._ended.get(trial_id)
            if ended is not None and ended.final is EventKind.PAUSED:
                ended.final = EventKind.STOPPED
                self._pending.append(
                    Event(EventKind.STOPPED, trial_id, self.clock.time(), info=dict(ended.info or {}))
                )
            else:
                logger.debug("stop(%s): no live process, nothing to do", trial_id)
            return
        if run.state in (_RUNNING, _PAUSING, _FAILING):
            run.state = _STOPPING
            self._terminate(run)

    def resume(self, trial_id: int, config: Config | None = None) -> None:
        """Called to relaunch a paused trial in the same folder (the script finds its checkpoint
        there), optionally with a new ``config``; its results are tailed on from where they
        stopped. Any trial this backend ran whose process is gone can be resumed: a trial the
        tuner paused just as it completed or crashed on its own is paused for the tuner.
        (After a tuner restart, use :meth:`start` with the offset instead.)"""
        self._check_open()
        self._wait_paused(trial_id)
        run = self._ended.pop(trial_id, None)
        if run is None:
            state = "still running" if trial_id in self._live else "unknown to this backend"
            raise ValueError(f"cannot resume trial {trial_id}: it is not paused ({state})")
        if config is not None:
            run.trial = Trial(trial_id, dict(config))
        run.state, run.error, run.tail_stopped = _RUNNING, None, False
        run.buffer = b""
        self._launch(run)

    def copy_checkpoint(self, source_id: int, target_id: int, source_dir: Path | None,
                        target_dir: Path | None) -> None:
        """Called before ``target_id`` resumes from ``source_id``'s checkpoint: waits for the
        target's process if it is still ending, then copies the folder (see
        :meth:`Backend.copy_checkpoint`)."""
        self._wait_paused(target_id)
        super().copy_checkpoint(source_id, target_id, source_dir, target_dir)

    def _wait_paused(self, trial_id: int) -> None:
        """Wait for the process of a trial paused a moment ago that is still ending (SIGTERM sent,
        SIGKILL after the grace period); what it reported meanwhile goes out with the next poll."""
        live = self._live.get(trial_id)
        if live is not None and live.state == _PAUSING:
            while trial_id in self._live:
                self._pending.extend(self._collect())
                if trial_id in self._live:
                    self._wait(_FALLBACK_TICK)

    def poll(self, timeout: float) -> list[Event]:
        """Called in the tuner's loop: the events since the last call, in order per trial,
        waiting up to ``timeout`` seconds for at least one. Wakes as soon as a trial reports or
        ends, or another thread calls :meth:`wakeup`. Returns ``[]`` at once when no process is
        alive."""
        events = self._pending
        self._pending = []
        events.extend(self._collect())
        if events or not self._live:
            return events
        end = time.monotonic() + max(0.0, timeout)
        while True:
            now = time.monotonic()
            if now >= end:
                return []
            self._wait(end - now)
            events = self._collect()
            if events:
                return events
            if not self._live or self._woken:
                self._woken = False
                return []

    def wakeup(self) -> None:
        """Make a :meth:`poll` under way in another thread return now (with whatever events
        there are, maybe none). The only method that may be called from another thread."""
        try:
            os.write(self._wake_w, b"\x01")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (a wakeup is pending anyway) or closed by shutdown

    def shutdown(self) -> None:
        """Called once at the end: SIGTERM every trial's process group, SIGKILL those still
        alive after the grace period, and close every file descriptor. Trials still running
        end as STOPPED (paused ones as PAUSED); their last results and final events are
        returned by a later :meth:`poll`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for run in self._live.values():
            if run.state == _RUNNING:
                run.state = _STOPPING
            self._terminate(run)
        give_up = time.monotonic() + self.kill_grace_period + _GIVE_UP_AFTER_KILL
        while self._live:
            self._pending.extend(self._collect())
            now = time.monotonic()
            if not self._live:
                break
            if now >= give_up:
                for run in list(self._live.values()):
                    logger.error("trial %s (pid %s) did not die; giving up on it",
                                 run.trial.trial_id, run.popen.pid if run.popen else None)
                    self._release(run)
                    del self._live[run.trial.trial_id]
                break
            self._wait(give_up - now)
        self._ended.clear()
        if self._prepared is not None and self._owns_prepared:
            self._prepared.close()
        self._selector.close()
        self._watcher.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- launching --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this LocalBackend was shut down")

    def _assign_gpus(self) -> tuple[str, ...]:
        if not self.gpus or self.gpus_per_trial == 0:
            return ()
        order = sorted(range(len(self.gpus)), key=lambda i: (self._gpu_load[self.gpus[i]], i))
        chosen = tuple(self.gpus[i] for i in sorted(order[: self.gpus_per_trial]))
        for gpu in chosen:
            self._gpu_load[gpu] += 1
        return chosen

    def base_env(self) -> dict[str, str]:
        """The environment every run shares (and the prepared interpreter has): this process's,
        the backend's ``env``, ``PYTHONUNBUFFERED`` and the script's folder on ``PYTHONPATH``."""
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.function is None:
            script_dir = str(self.script.parent)
            pythonpath = env.get("PYTHONPATH")
            if not pythonpath:
                env["PYTHONPATH"] = script_dir
            elif script_dir not in pythonpath.split(os.pathsep):
                env["PYTHONPATH"] = script_dir + os.pathsep + pythonpath
        return env

    def _child_env(self, run: _Run, notify_w: int) -> dict[str, str]:
        env = self.base_env()
        env[ENV_RESULTS_FILE] = str(run.results_path.resolve())
        env[ENV_CHECKPOINT_DIR] = str((run.trial_dir / CHECKPOINT_DIRNAME).resolve())
        env[ENV_TRIAL_ID] = str(run.trial.trial_id)
        env[ENV_TRIAL_DIR] = str(run.trial_dir.resolve())
        env[ENV_NOTIFY_FD] = str(notify_w)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(run.gpus)
        return env

    def _prepare_results(self, run: _Run) -> None:
        """Open the results file for tailing (created if missing) and close a line torn by a
        crash, so the next report starts on a line of its own."""
        path = run.results_path
        read_fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            size = os.fstat(read_fd).st_size
            if run.offset > size:
                logger.warning(
                    "trial %s: results offset %d is past the end of %s (%d bytes); tailing from "
                    "its end", run.trial.trial_id, run.offset, path, size)
                run.offset = size
            if size > run.offset and os.pread(read_fd, 1, size - 1) != b"\n":
                write_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(write_fd, b"\n")
                finally:
                    os.close(write_fd)
                run.torn_end = size + 1
                logger.warning("trial %s: %s ends with an incomplete line (torn by a crash); "
                               "it will be skipped", run.trial.trial_id, path)
        except BaseException:
            os.close(read_fd)
            raise
        run.results_fd = read_fd

    def _argv(self, run: _Run) -> list[str]:
        """The command line of a run (what a cold start executes)."""
        if self.function is not None:
            return [self.python, WARM_SERVER, "run-function", json.dumps(self.function.to_dict()),
                    json.dumps(run.trial.config)]
        return [self.python, str(self.script), *self.extra_args, *config_to_argv(run.trial.config)]

    def prepared_interpreter(self) -> PreparedInterpreter | None:
        """The prepared interpreter runs are forked from (started on first use), or None when
        warm starts are off or it cannot be used."""
        if not self.warm_start:
            return None
        if self._prepared is None:
            target = (self.function.to_dict() if self.function is not None
                      else {"kind": "script", "path": str(self.script)})
            self._prepared = PreparedInterpreter(
                python=self.python, target=target, env=self.base_env(), cwd=str(self.cwd or Path.cwd()),
                preload=self.preload, kill_on_parent_death=self.kill_on_parent_death)
            self._prepared.start()
        return None if self._prepared.broken else self._prepared

    def _fork_warm(self, run: _Run, argv: list[str], env: dict[str, str], cwd: str,
                   fds: tuple[int, int, int, int]) -> _Forked | None:
        """Fork the run from the prepared interpreter; None when it cannot (start it cold)."""
        prepared = self.prepared_interpreter()
        if prepared is None:
            return None
        request = {"argv": argv, "env": env, "cwd": cwd, "log_limit": self.log_limit,
                   "config": argv[-1] if self.function is not None else None, "notify_env": ENV_NOTIFY_FD}
        try:
            return _Forked(prepared.fork(request, fds), run)
        except WarmStartError:
            return None

    def _launch(self, run: _Run) -> None:
        tid = run.trial.trial_id
        argv = self._argv(run)
        (run.trial_dir / CHECKPOINT_DIRNAME).mkdir(parents=True, exist_ok=True)
        self._prepare_results(run)
        run.gpus = self._assign_gpus()
        notify_r, notify_w = os.pipe()
        os.set_blocking(notify_r, False)
        os.set_blocking(notify_w, False)  # a full pipe must never block the training script
        status_r, status_w = os.pipe()
        # the supervisor runs the script and ends its whole process tree with it; no preexec_fn:
        # nothing runs in this process between fork and exec (logging's at-fork lock once
        # swallowed a SIGINT there)
        supervised = [sys.executable, "-I", "-S", _SUPERVISOR, str(status_w), str(os.getpid()),
                      "1" if self.kill_on_parent_death else "0", str(self.log_limit), *argv]
        popen: subprocess.Popen[bytes] | _Forked | None = None
        try:
            # read-write: the supervisor keeps the head and the tail of the logs in place
            with open(run.trial_dir / STDOUT_FILENAME, "a+b") as out, open(
                run.trial_dir / STDERR_FILENAME, "a+b"
            ) as err:
                run.stderr_start = os.fstat(err.fileno()).st_size
                env = self._child_env(run, notify_w)
                cwd = self.cwd or run.trial_dir
                popen = self._fork_warm(run, argv, env, str(cwd), (status_w, notify_w, out.fileno(), err.fileno()))
                if popen is None:
                    popen = subprocess.Popen(
                        supervised,
                        cwd=cwd,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        pass_fds=(notify_w, status_w),
                        start_new_session=True,
                    )
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(notify_r)
            os.close(status_r)
            self._release(run)
            logger.error("trial %s could not be started: %s", tid, exc)
            self._pending.append(Event(
                EventKind.FAILED, tid, self.clock.time(),
                error=f"could not start {' '.join(argv)}: {exc}", info={"gpus": list(run.gpus)},
            ))
            return
        finally:
            os.close(notify_w)
            os.close(status_w)
        run.popen = popen
        run.status_r, run.status, run.script_pid = status_r, b"", None
        run.notify_r = notify_r
        run.watch = self._watcher.add(run.results_path)
        run.info = {"pid": popen.pid, "gpus": list(run.gpus), "warm": isinstance(popen, _Forked)}
        self._selector.register(notify_r, selectors.EVENT_READ, run)
        run.pidfd = None
        if isinstance(popen, _Forked):  # not our child: its status pipe's end says it exited
            self._selector.register(status_r, selectors.EVENT_READ, run)
        else:
            try:
                run.pidfd = os.pidfd_open(popen.pid)  # type: ignore[attr-defined,unused-ignore]  # Linux only
            except (AttributeError, OSError):
                run.pidfd = None
        if run.pidfd is not None:
            self._selector.register(run.pidfd, selectors.EVENT_READ, run)
        now = time.monotonic()
        run.timeout_deadline = now + self.trial_timeout if self.trial_timeout else None
        run.kill_deadline = None
        self._live[tid] = run
        logger.debug("trial %s started: pid %s, gpus %s, %s", tid, popen.pid, run.gpus or "-",
                     "warm" if isinstance(popen, _Forked) else "cold")

    # -- ending -----------------------------------------------------------------------------

    def _signal_group(self, run: _Run, sig: signal.Signals) -> None:
        """``sig`` to the script's process group at once, and to its supervisor, which passes a
        SIGTERM on to the trial's other processes and SIGKILLs them all for a SIGKILL."""
        if run.popen is None or run.popen.returncode is not None:
            return
        script = self._script_pid(run)
        try:
            if script is not None:
                os.killpg(script, sig)
        except (ProcessLookupError, PermissionError):
            pass  # already gone
        try:
            os.kill(run.popen.pid, SIGKILL_ALL if sig == signal.SIGKILL else sig)
        except (ProcessLookupError, PermissionError):
            pass  # already gone

    @staticmethod
    def _read_status(run: _Run, until: bytes | None) -> None:
        """Read the supervisor's status pipe into ``run.status``: until a line starting with
        ``until`` arrived (it writes ``pid`` within its start-up), or up to its end."""
        while run.status_r is not None and not (until and until in run.status):
            chunk = os.read(run.status_r, 4096)
            if not chunk:
                break
            run.status += chunk

    def _script_pid(self, run: _Run) -> int | None:
        if run.script_pid is None:
            self._read_status(run, b"pid ")
            run.script_pid, _ = self._parse_status(run)
        return run.script_pid

    def _terminate(self, run: _Run) -> None:
        """SIGTERM the group now, SIGKILL it at the deadline (checked by poll)."""
        if run.kill_deadline is not None:
            return  # already on its way out
        if self.kill_grace_period <= 0:
            self._signal_group(run, signal.SIGKILL)
            run.kill_deadline = None
            return
        self._signal_group(run, signal.SIGTERM)
        run.kill_deadline = time.monotonic() + self.kill_grace_period
        run.timeout_deadline = None

    def _release(self, run: _Run) -> None:
        """Close the run's descriptors and give back its GPUs."""
        for fd in (run.notify_r, run.pidfd):
            if fd is not None:
                try:
                    self._selector.unregister(fd)
                except (KeyError, ValueError):
                    pass
                os.close(fd)
        if run.results_fd is not None:
            os.close(run.results_fd)
        if run.status_r is not None:
            try:
                self._selector.unregister(run.status_r)  # (a warm run's)
            except (KeyError, ValueError):
                pass
            os.close(run.status_r)
            run.status_r = None
        if run.watch is not None:
            self._watcher.remove(run.watch)
            run.watch = None
        run.notify_r = run.pidfd = run.results_fd = None
        for gpu in run.gpus:
            self._gpu_load[gpu] -= 1
        run.gpus = ()

    # -- waiting and collecting -------------------------------------------------------------

    def _wait(self, timeout: float) -> None:
        """Block until a trial reports or exits, a deadline passes, or ``timeout`` elapses."""
        now = time.monotonic()
        for run in self._live.values():
            for deadline in (run.timeout_deadline, run.kill_deadline):
                if deadline is not None:
                    timeout = min(timeout, deadline - now)
            if run.pidfd is None and not isinstance(run.popen, _Forked):
                timeout = min(timeout, _FALLBACK_TICK)
            if run.watch is None:
                timeout = min(timeout, _RESCAN_INTERVAL)
        for key, _ in self._selector.select(max(0.0, timeout)):
            run = key.data
            if run is None:
                self._watcher.drain()
            elif run is _WAKEUP:
                self._woken = True
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
            elif key.fd == run.notify_r:
                self._drain(run)

    def _drain(self, run: _Run) -> None:
        fd = run.notify_r
        assert fd is not None
        while True:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # every writer closed it: stop watching it (would spin otherwise)
                self._selector.unregister(fd)
                os.close(fd)
                run.notify_r = None
                return

    def _exited(self, run: _Run) -> bool:
        """Whether the main process has exited, without reaping it (so its pid, which is the
        group's id, cannot be reused while we sweep the group)."""
        popen = run.popen
        assert popen is not None
        if popen.returncode is not None:
            return True
        if isinstance(popen, _Forked):
            return popen.poll() is not None
        if hasattr(os, "waitid"):
            try:
                return os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
            except ChildProcessError:
                pass
        return popen.poll() is not None

    def _collect(self) -> list[Event]:
        """Read new results of every live trial, handle exits and deadlines; returns events."""
        events: list[Event] = []
        now = time.monotonic()
        for run in list(self._live.values()):
            exited = self._exited(run)
            if exited:  # its supervisor: the whole tree has ended
                assert run.popen is not None
                run.popen.wait()
            self._read_results(run, events)
            if exited:
                self._finish(run, events)
                continue
            if run.timeout_deadline is not None and now >= run.timeout_deadline:
                run.state = _FAILING
                run.error = f"timed out after {self.trial_timeout:g} s"
                logger.info("trial %s %s", run.trial.trial_id, run.error)
                self._terminate(run)
            elif run.kill_deadline is not None and now >= run.kill_deadline:
                logger.info("trial %s still alive %g s after SIGTERM: SIGKILL",
                            run.trial.trial_id, self.kill_grace_period)
                self._signal_group(run, signal.SIGKILL)
                run.kill_deadline = None
        return events

    def _read_results(self, run: _Run, events: list[Event]) -> None:
        fd = run.results_fd
        if fd is None or run.tail_stopped:
            return
        pos = run.offset + len(run.buffer)
        chunks = [run.buffer] if run.buffer else []
        while True:
            data = os.pread(fd, _READ_CHUNK, pos)
            if not data:
                break
            chunks.append(data)
            pos += len(data)
            if len(data) < _READ_CHUNK:
                break
        if not chunks or (len(chunks) == 1 and run.buffer):
            return
        data = b"".join(chunks)
        tid = run.trial.trial_id
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            line = data[start:newline]
            end_offset = run.offset + newline + 1 - start
            try:
                result = parse_result_line(line)
            except ValueError as err:  # JSONDecodeError and UnicodeDecodeError included
                if end_offset == run.torn_end:
                    logger.warning("trial %s: skipped the torn line %r", tid, line[:200])
                else:
                    self._malformed(run, line, err)
                    run.buffer = b""
                    return
            else:
                if result is not None:  # None: a blank line
                    stamp = result.get("_timestamp")
                    when = float(stamp) if isinstance(stamp, (int, float)) else self.clock.time()
                    events.append(Event(EventKind.RESULT, tid, when, result=result, offset=end_offset))
            run.offset = end_offset
            start = newline + 1
        run.buffer = data[start:]

    def _malformed(self, run: _Run, line: bytes, err: Exception) -> None:
        line_no = 1
        if run.results_fd is not None:
            line_no += os.pread(run.results_fd, run.offset, 0).count(b"\n") if run.offset else 0
        text = line[:200].decode("utf-8", errors="replace")
        more = "..." if len(line) > 200 else ""
        run.tail_stopped = True
        if run.state == _RUNNING:
            run.state = _FAILING
            run.error = (f"malformed report at line {line_no} of {run.results_path}: "
                         f"{text!r}{more} ({err})")
            logger.info("trial %s: %s", run.trial.trial_id, run.error)
            self._terminate(run)

    @staticmethod
    def _parse_status(run: _Run) -> tuple[int | None, int | None]:
        """The script's pid and exit code (negative: killed by that signal) in ``run.status``."""
        told = dict(line.split(b" ", 1) for line in run.status.splitlines() if b" " in line)
        return (int(told[b"pid"]) if b"pid" in told else None,
                int(told[b"exit"]) if b"exit" in told else None)

    def _supervisor_status(self, run: _Run) -> tuple[int | None, int]:
        """The script's pid and exit code told by its supervisor, which has exited; the
        supervisor's own exit code when it could not say."""
        assert run.popen is not None
        self._read_status(run, None)
        pid, code = self._parse_status(run)
        return pid, run.popen.wait() if code is None else code

    def _stderr_tail(self, run: _Run) -> str:
        if self.stderr_tail_lines == 0:
            return ""
        path = run.trial_dir / STDERR_FILENAME
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                # a capped log may have shrunk below where this run began
                start = run.stderr_start if run.stderr_start <= size else 0
                begin = max(start, size - _STDERR_TAIL_BYTES)
                f.seek(begin)
                data = f.read()
        except OSError:
            return ""
        lines = data.decode("utf-8", errors="replace").splitlines()
        if begin > start and lines:
            lines = lines[1:]  # first line is cut
        lines = lines[-self.stderr_tail_lines:]
        if not lines:
            return ""
        return f"\n--- last {len(lines)} lines of {path} ---\n" + "\n".join(lines)

    def _finish(self, run: _Run, events: list[Event]) -> None:
        """The main process is reaped and its last lines read: emit its final event."""
        popen = run.popen
        assert popen is not None
        tid = run.trial.trial_id
        script_pid, code = self._supervisor_status(run)
        run.info["pid"] = script_pid
        if run.buffer:
            logger.warning("trial %s ended in the middle of a report line: %r", tid, run.buffer[:200])
            run.buffer = b""
        info = {**run.info, "exit_code": code}
        self._release(run)
        del self._live[tid]
        now = self.clock.time()
        if run.state == _PAUSING:
            events.append(Event(EventKind.PAUSED, tid, now, info=info))
        elif run.state == _STOPPING:
            events.append(Event(EventKind.STOPPED, tid, now, info=info))
        elif run.state == _FAILING:
            events.append(Event(EventKind.FAILED, tid, now,
                                error=f"{run.error}{self._stderr_tail(run)}", info=info))
        elif code == 0:
            events.append(Event(EventKind.COMPLETED, tid, now, info=info))
        else:
            if code < 0:
                try:
                    name = signal.Signals(-code).name
                except ValueError:
                    name = f"signal {-code}"
                why = f"killed by {name} (exit code {code})"
            else:
                why = f"exit code {code}"
            events.append(Event(EventKind.FAILED, tid, now, error=why + self._stderr_tail(run),
                                info=info))
        run.final = events[-1].kind
        run.state, run.popen, run.info = _ENDED, None, info
        self._ended[tid] = run  # a few hundred bytes, no descriptor: kept so it can be resumed
        logger.debug("trial %s ended: %s, exit code %s", tid, run.final.value, code)
