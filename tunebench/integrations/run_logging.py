"""What the logging callbacks share (layer L4): one run per trial, kept across resumes.

:class:`TrialRunLogger` is the base of :class:`tunebench.integrations.mlflow.MLflowCallback` and
:class:`tunebench.integrations.tensorboard.TensorBoardCallback`. It decides, once for both:

* **What is logged**: a run per trial, created when the trial starts, with its configuration;
  every *decided* report (one the scheduler saw: the ``result`` events of the log) as metrics,
  all its numbers but ``trial_id`` and the resource; the **step** is the resource (e.g. the
  epoch) when the experiment has one and it is a whole number, else the index of the report
  among the trial's decided reports (0, 1, ...); the trial's status each time it leaves the
  running state.
* **Resume**: the run of each trial is recorded in a small JSON-lines file in the experiment
  folder (``<name>_runs.jsonl``: a header line, then one line per run, appended and flushed as a
  run is created, so a kill loses nothing). When a callback opens (at the first hook of a
  session) it reads that file, asks its backend how many reports each run already holds, and
  logs what the event log has beyond that (results decided while the tuner was dying or before
  the callback was added). The resumed experiment continues the same runs, without repeats.
* **Never breaks tuning**: an exception of the backend is logged as one warning, and the
  callback does nothing more for the rest of the session.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tunebench.events import dumps_line, iter_events, read_log
from tunebench.store import EVENTS_FILE
from tunebench.tuner import Callback, Tuner, TuningResult
from tunebench.types import Decision, Result, Status, Trial

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

def report_step(result: Result, resource_attr: str | None, index: int) -> int:
    """The step of a report: its resource when it is a whole number, else ``index`` (the
    position of the report among its trial's decided reports)."""
    if resource_attr is not None:
        value = result.get(resource_attr)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
            return int(value)
    return index


def report_metrics(result: Result, resource_attr: str | None) -> dict[str, float]:
    """The numbers of a report logged as metrics: all but ``trial_id`` and the resource (the step)."""
    return {k: float(v) for k, v in result.items()
            if k != "trial_id" and k != resource_attr and isinstance(v, (int, float)) and not isinstance(v, bool)}


class TrialRunLogger(Callback):
    """A tuner callback that logs one run per trial to a tracking backend (see the module).

    Subclasses implement the ``_backend_*`` methods; each is called only while logging is on,
    and may raise: the first exception turns logging off with one warning.
    """

    #: the file of run ids in the experiment folder
    state_filename: ClassVar[str]
    #: the name used in warnings
    backend_name: ClassVar[str]

    def __init__(self) -> None:
        self._tuner: Tuner | None = None
        self._disabled = False
        self._runs: dict[int, str] = {}  #: trial id -> run id
        self._logged: dict[int, int] = {}  #: trial id -> decided reports logged
        self._header: dict[str, Any] | None = None
        self._resource_attr: str | None = None

    # -- the tuner's hooks ----------------------------------------------------------------------

    def on_tuning_start(self, tuner: Tuner) -> None:
        """Opens the backend (the parent run) and catches up with the event log."""
        self._guard(tuner, lambda: None)

    def on_trial_start(self, tuner: Tuner, trial: Trial, how: str) -> None:
        """Creates the trial's run (``start``), or marks it running again (``resume``, ``restart``)."""
        def act() -> None:
            if trial.trial_id not in self._runs:
                self._new_run(trial)
            elif how != "start":
                self._backend_trial_running(trial.trial_id, self._runs[trial.trial_id])
        self._guard(tuner, act)

    def on_result(self, tuner: Tuner, trial: Trial, result: Result, decision: Decision) -> None:
        """Logs a decided report (one already logged by the catch-up is skipped)."""
        def act() -> None:
            tid = trial.trial_id
            index = tuner.trials[tid].n_results - 1
            if index >= self._logged.get(tid, 0):
                if tid not in self._runs:
                    self._new_run(trial)
                self._log(tid, result, index)
        self._guard(tuner, act)

    def on_trial_end(self, tuner: Tuner, trial: Trial, status: Status) -> None:
        """Records the status the trial ended with (paused, completed, stopped, failed)."""
        def act() -> None:
            if trial.trial_id in self._runs:
                self._backend_trial_status(trial.trial_id, self._runs[trial.trial_id], status)
        self._guard(tuner, act)

    def on_tuning_end(self, tuner: Tuner, result: TuningResult) -> None:
        """Ends the runs (and the parent run) and releases the backend."""
        self._guard(tuner, lambda: self._backend_finish(result))
        if not self._disabled:
            self._close()

    # -- the machinery --------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        """The file of run ids (in the experiment folder of the tuner; known once open)."""
        assert self._tuner is not None
        return self._tuner.experiment_dir / self.state_filename

    def _guard(self, tuner: Tuner, act: Callable[[], None]) -> None:
        if self._disabled:
            return
        try:
            if self._tuner is not tuner:
                self._open(tuner)
            act()
        except Exception as e:  # noqa: BLE001 (a failing logger never ends tuning)
            self._disabled = True
            logger.warning("%s logging failed (%s: %s); nothing more is logged to it in this session (tuning goes "
                           "on; the runs catch up when the experiment resumes)", self.backend_name,
                           type(e).__name__, e)
            self._close()

    def _open(self, tuner: Tuner) -> None:
        self._tuner = tuner
        self._runs.clear()
        self._logged.clear()
        self._resource_attr = tuner.scheduler.resource_attr
        header: dict[str, Any] | None = None
        if self.state_path.exists():
            for _, line in iter_events(self.state_path):
                if "trial_id" in line and "run_id" in line:
                    self._runs[int(line["trial_id"])] = str(line["run_id"])
                elif header is None:
                    header = line
        self._header = self._backend_open(tuner, header)
        if header is None:
            self._append(self._header)
        self._catch_up(tuner.experiment_dir / EVENTS_FILE)

    def _catch_up(self, log_path: Path) -> None:
        """Log what the event log holds beyond what the runs hold (after a kill, or for a
        callback added to a resumed experiment)."""
        if not log_path.exists():
            return
        _, state, _ = read_log(log_path)
        by_trial: dict[int, list[Result]] = {}
        for ev in state.results:
            by_trial.setdefault(int(ev["trial_id"]), []).append(ev["result"])
        for tid, ts in state.trials.items():
            results = by_trial.get(tid, [])
            new = tid not in self._runs
            if new:
                self._new_run(ts.trial)
                logged = 0
            else:
                logged = self._backend_count_logged(tid, self._runs[tid]) if results else 0
            self._logged[tid] = logged
            for index in range(logged, len(results)):
                self._log(tid, results[index], index)
            # the status of a trial that ended unseen (a trial whose last report was logged before
            # the tuner died records its end when it ended while the callback ran, as it almost
            # always did: a kill between the two is not caught up)
            if ts.status is not Status.RUNNING and (new or logged < len(results)):
                self._backend_trial_status(tid, self._runs[tid], ts.status)

    def _new_run(self, trial: Trial) -> None:
        run_id = self._backend_create_run(trial)
        self._runs[trial.trial_id] = run_id
        self._logged[trial.trial_id] = 0
        self._append({"trial_id": trial.trial_id, "run_id": run_id})

    def _log(self, tid: int, result: Result, index: int) -> None:
        step = report_step(result, self._resource_attr, index)
        self._backend_log(tid, self._runs[tid], step, report_metrics(result, self._resource_attr))
        self._logged[tid] = index + 1

    def _append(self, obj: dict[str, Any]) -> None:
        with open(self.state_path, "ab") as f:
            f.write(dumps_line(obj))

    def _close(self) -> None:
        try:
            self._backend_close()
        except Exception as e:  # noqa: BLE001 (closing a broken backend must not end tuning either)
            logger.debug("%s: closing failed: %s", self.backend_name, e)

    # -- what a backend implements --------------------------------------------------------------

    def _backend_open(self, tuner: Tuner, header: dict[str, Any] | None) -> dict[str, Any]:
        """Called once per session, at the first hook; ``header`` is the header line of the state
        file (None on the first session). Opens the backend (continuing the parent run named in
        ``header``) and returns the header to keep (written only on the first session)."""
        raise NotImplementedError

    def _backend_create_run(self, trial: Trial) -> str:
        """Called when a trial without a run starts: creates its run with the configuration as
        parameters; returns the run's id."""
        raise NotImplementedError

    def _backend_count_logged(self, trial_id: int, run_id: str) -> int:
        """Called when a session opens, for each trial of an earlier session that has decided
        reports: how many of them the run holds."""
        raise NotImplementedError

    def _backend_log(self, trial_id: int, run_id: str, step: int, metrics: dict[str, float]) -> None:
        """Called for each decided report: log ``metrics`` at ``step``."""
        raise NotImplementedError

    def _backend_trial_running(self, trial_id: int, run_id: str) -> None:
        """Called when a paused or interrupted trial runs again."""

    def _backend_trial_status(self, trial_id: int, run_id: str, status: Status) -> None:
        """Called when the trial leaves the running state: record ``status``."""
        raise NotImplementedError

    def _backend_finish(self, result: TuningResult) -> None:
        """Called at the end of tuning: end the runs and the parent run."""

    def _backend_close(self) -> None:
        """Called last (or after a failure): release files and connections; must not raise twice."""
