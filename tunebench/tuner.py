"""The tuner (L3): the only place that knows both a scheduler and a backend.

It asks the scheduler what to run whenever a worker is free, starts it on the backend, feeds
every result back to the scheduler and applies its decision at once, and logs everything to the
experiment store. It never sleeps on a timer: it waits in :meth:`Backend.poll` for the next event.

Crash safety: every scheduler interaction is logged, in order, to the append-only event log
(flushed per event), and the scheduler state is snapshotted periodically. To resume, the tuner
loads the last snapshot and replays the scheduler calls logged after it (schedulers are
deterministic), ingests results trials wrote after the last logged one, and restarts the trials
that were running from their checkpoints.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, cast

from tunebench.backends.base import RESULTS_FILENAME, STDERR_FILENAME, Backend
from tunebench.clock import SimulatedClock
from tunebench.errors import TuningError, UserError
from tunebench.events import (  # noqa: F401 (RESERVED_RESULT_KEYS: also importable from here, where it was)
    RESERVED_RESULT_KEYS,
    LogKind,
    Standing,
    TrialScore,
    consumed_offset,
    parse_result_line,
    rank_scored,
    resource_not_decided,
    restarted_without_checkpoint,
    restore,
    result_problem,
)
from tunebench.schedulers.base import Scheduler
from tunebench.space import space_to_json
from tunebench.store import Experiment, ExperimentStore
from tunebench.types import (
    Config,
    Constraint,
    Decision,
    Event,
    EventKind,
    Objectives,
    Result,
    Status,
    Suggestion,
    Trial,
    is_feasible,
    parse_constraints,
)
from tunebench.version import run_versions

logger = logging.getLogger(__name__)

# enum members as module constants: attribute access on an Enum class is slow on the hot path
_RUNNING = Status.RUNNING
_PAUSED = Status.PAUSED
_COMPLETED = Status.COMPLETED
_STOPPED = Status.STOPPED
_FAILED = Status.FAILED
_PAUSE = Decision.PAUSE
_STOP = Decision.STOP
_EV_RESULT = EventKind.RESULT
_EV_COMPLETED = EventKind.COMPLETED
_EV_FAILED = EventKind.FAILED
# the kinds of the event log as plain strings: the members would cost their encoding per event
_LOG_SESSION_START = LogKind.SESSION_START.value
_LOG_TRIAL_START = LogKind.TRIAL_START.value
_LOG_TRIAL_RESUME = LogKind.TRIAL_RESUME.value
_LOG_TRIAL_RESTART = LogKind.TRIAL_RESTART.value
_LOG_RESULT = LogKind.RESULT.value
_LOG_RESULT_DEFERRED = LogKind.RESULT_DEFERRED.value
_LOG_RESULT_IGNORED = LogKind.RESULT_IGNORED.value
_LOG_TRIAL_COMPLETE = LogKind.TRIAL_COMPLETE.value
_LOG_TRIAL_FAIL = LogKind.TRIAL_FAIL.value
_LOG_TRIAL_INTERRUPT = LogKind.TRIAL_INTERRUPT.value
_LOG_EXPERIMENT_END = LogKind.EXPERIMENT_END.value


@dataclass
class StopCriteria:
    """When tuning ends (the first criterion met wins; None = no limit).

    Attributes:
        max_wallclock_time: seconds of tuning (summed over sessions of a resumed experiment).
        max_trials: number of trials started; once reached no new trial starts, paused trials
            the scheduler promotes still resume (``Scheduler.suggest_resume``: the started rungs
            finish), and tuning ends when no trial runs.
        max_results: number of results received.
        metric_threshold: end as soon as the best metric reaches this value (<= for ``min``,
            >= for ``max``).
    """

    max_wallclock_time: float | None = None
    max_trials: int | None = None
    max_results: int | None = None
    metric_threshold: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_wallclock_time", "max_trials", "max_results"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"{name} must be positive, got {value}")


@dataclass(slots=True)
class TrialRecord:
    """What the tuner knows about one trial."""

    trial: Trial
    status: Status = _RUNNING
    offset: int = 0  #: bytes of its results file consumed
    last_resource: float | None = None
    last_result: Result | None = None
    n_results: int = 0
    #: its best value, where it was seen and the highest resource reached (decided results)
    score: TrialScore = field(default_factory=TrialScore)
    error: str | None = None
    ending: bool = False  #: the tuner asked the backend to end its process (pause/stop/fail)
    #: results reported while the trial was being paused, decided on when it resumes
    deferred: list[tuple[Result, int | None]] = field(default_factory=list)
    #: its process was (re)launched from a checkpoint and has not reported yet: a first report of
    #: the last decided resource is the documented re-report of a checkpointed epoch, not a repeat
    relaunched: bool = False
    warned_repeat: bool = False  #: a repeated resource value was warned about (once per trial)
    warned_range: bool = False  #: a resource beyond the maximum was warned about (once per trial)
    #: (resume) the ``exploit`` of its last resume when no result came after it: its restart
    #: copies the source's checkpoint again (the dead session may have died before copying)
    exploit_pending: dict[str, Any] | None = None
    #: the config its results were trained with while they are decided after a resume with a new
    #: config (its deferred results) or scored from the log (None otherwise: its current one)
    deferred_config: Config | None = None

    @property
    def best(self) -> float | None:
        """Its best metric value so far (None before its first decided result)."""
        return self.score.best


@dataclass
class TuningResult:
    """What :meth:`Tuner.run` returns.

    The best configuration (``best_*``) follows :func:`tunebench.events.rank_trials`: the best
    among the trials that reached their maximum resource when any did (``best_at_max_resource``),
    else the best at the highest resource reached; ``best_metric`` is that trial's best value and
    ``best_resource`` the resource at which it reported it (None without a resource). The same
    rule gives ``load_experiment(path).best()`` and ``tunebench show``.

    ``failure`` says why tuning produced nothing usable (no trial reported a result, or every
    trial failed), None otherwise; ``tunebench run`` / ``resume`` then end with exit status 1.
    """

    experiment_dir: Path
    metric: str
    mode: str
    best_trial_id: int | None
    best_config: Config | None
    best_metric: float | None
    n_trials: int
    n_completed: int
    n_failed: int
    n_results: int
    elapsed_time: float
    end_reason: str
    resource_attr: str | None = None
    best_resource: float | None = None
    best_resource_reached: float | None = None  #: the highest resource the best trial reported
    best_max_resource: float | None = None  #: the best trial's maximum resource, if known
    best_at_max_resource: bool | None = None  #: None without a best trial
    best_trial_status: str | None = None  #: a :class:`~tunebench.types.Status` value
    failure: str | None = None
    #: several objectives: ``{"metric": [...], "mode": [...]}`` (``metric`` and ``mode`` above are
    #: the first, and the ``best_*`` fields are the best in it); None for one
    objectives: dict[str, list[str]] | None = None
    #: several objectives: the Pareto front, one dict per feasible non-dominated trial (``trial_id``,
    #: ``status``, ``values``, ``resource``, ``config``; see
    #: :meth:`tunebench.store.Experiment.front_summary`), its ``hypervolume`` and the
    #: ``reference_point`` used; None for one objective
    pareto_front: list[dict[str, Any]] | None = None
    hypervolume: float | None = None
    reference_point: list[float] | None = None
    constraints: list[str] = field(default_factory=list)  #: the constraints, as texts
    n_infeasible: int | None = None  #: with constraints: trials whose last result misses one

    @property
    def ok(self) -> bool:
        """Tuning produced a usable result (``failure`` is None)."""
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["experiment_dir"] = str(self.experiment_dir)
        return d


class Callback:
    """Hooks called by the tuner's loop (all optional; override what you need).

    Callbacks observe; they must not change the tuner. Exceptions they raise end tuning.
    """

    def on_tuning_start(self, tuner: "Tuner") -> None:
        """Called once, after the experiment folder is ready and before any trial starts."""

    def on_trial_start(self, tuner: "Tuner", trial: Trial, how: str) -> None:
        """Called when a trial is launched; ``how`` is ``"start"``, ``"resume"`` or ``"restart"``."""

    def on_result(self, tuner: "Tuner", trial: Trial, result: Result, decision: Decision) -> None:
        """Called after the scheduler decided on a result."""

    def on_trial_end(self, tuner: "Tuner", trial: Trial, status: Status) -> None:
        """Called when a trial leaves the running state (completed, paused, stopped, failed)."""

    def on_tuning_end(self, tuner: "Tuner", result: TuningResult) -> None:
        """Called once at the end, after every process has ended."""


class Tuner:
    """Runs a scheduler against a backend, logging everything to an experiment folder.

    Args:
        backend: where trials run (local processes, Ray, simulator).
        scheduler: what runs and when (see :func:`tunebench.make_scheduler`).
        n_workers: trials running at the same time.
        stop: when to end.
        experiment_dir: the experiment folder (created; must not hold another experiment unless
            ``resume=True``). One tuner at a time: :meth:`run` holds the folder's lock
            (``tuner.lock``) until it returns, and refuses a folder another tuner holds.
        resume: continue the experiment in ``experiment_dir`` (the scheduler must be built with
            the same arguments as the first time; ``tunebench resume`` does that from metadata).
        max_failures: tuning ends with :class:`TuningError` once more trials than this failed.
        callbacks: observers (a progress display is one).
        metadata: extra JSON-able facts stored in ``metadata.json`` (method name, command line...).
        snapshot_interval: seconds of real time between scheduler snapshots.
        shutdown_timeout: seconds to wait at the end for trials to exit after being stopped.
        constraints: bounds on reported metrics (``"latency<=20"`` or
            :class:`~tunebench.types.Constraint`): every result must report their metrics, and the
            best trial counts only results that meet them all (feasible ones). Give the same
            ones to the scheduler for a method that models them (``CBO``).
    """

    def __init__(
        self,
        backend: Backend,
        scheduler: Scheduler,
        *,
        n_workers: int = 4,
        stop: StopCriteria | None = None,
        experiment_dir: str | Path,
        resume: bool = False,
        max_failures: int = 5,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        metadata: dict[str, Any] | None = None,
        snapshot_interval: float = 5.0,
        shutdown_timeout: float = 30.0,
        constraints: Sequence[str | Constraint] | None = None,
    ) -> None:
        if n_workers < 1:
            raise UserError(f"n_workers must be >= 1, got {n_workers}")
        if max_failures < 0:
            raise UserError(f"max_failures must be >= 0, got {max_failures}")
        self.backend = backend
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.stop = stop or StopCriteria()
        self.experiment_dir = Path(experiment_dir)
        self.resume = resume
        self.max_failures = max_failures
        self.callbacks = list(callbacks)
        self.metadata = dict(metadata or {})
        self.snapshot_interval = snapshot_interval
        self.shutdown_timeout = shutdown_timeout

        self.trials: dict[int, TrialRecord] = {}
        self.next_trial_id = 0
        self.n_started = 0
        self.n_results = 0
        self.n_failed = 0
        self.best_value: float | None = None  # in the scheduler's mode
        self.best_trial_id: int | None = None
        self._restart_queue: deque[int] = deque()
        self._launched: set[int] = set()  # trials the backend has run in this session
        self._warned_restart = False  # a resumed script that started over was warned about (once)
        self._metric: str = scheduler.metric
        #: every metric a result must carry (several for a multi-objective scheduler; the first is ``_metric``)
        # (a duck-typed scheduler may lack the property: then it has one metric)
        self._objectives: Objectives = (getattr(scheduler, "objectives", None)
                                        or Objectives((scheduler.metric,), (scheduler.mode,)))
        self._constraints: tuple[Constraint, ...] = parse_constraints(constraints)
        # (the fast path of _check_result and _update_best: one metric, no constraint)
        self._one_metric = not self._objectives.is_multi and not self._constraints
        self._metrics: str | tuple[str, ...] = self._metric if self._one_metric else (
            *self._objectives.metrics,
            *(c.metric for c in self._constraints if c.metric not in self._objectives.metrics))
        self._resource_attr: str | None = scheduler.resource_attr
        self._max_resource_attr: str | None = scheduler.max_resource_attr
        self._mode: str = scheduler.mode
        self._events_since_check = 0
        self._snapshot_every = snapshot_interval
        clock = backend.clock
        self._clock_time = clock.time  # bound once: read for every logged event
        #: simulated time: real time is logged too, and decision time may be charged to the clock
        self._simulated = bool(getattr(clock, "simulated", False))
        self._charging = self._simulated and bool(getattr(clock, "charge_decision_time", False))
        #: bound once (per decision): a charged clock is simulated, with ``advance(seconds)``;
        #: never called when not charging
        self._advance_clock: Callable[[float], None] = (
            cast(SimulatedClock, clock).advance if self._charging else lambda seconds: None
        )
        self._real_t0 = perf_counter()
        self._real_offset = 0.0  # real time of earlier sessions
        self._store: ExperimentStore | None = None
        self._time_offset = 0.0  # tuning time of earlier sessions
        self._t0 = 0.0
        self._last_snapshot = 0.0
        self._failure_error: str | None = None
        self._interrupted: list[TrialRecord] = []  #: trials asked to stop as the session ends

    # -- public -----------------------------------------------------------------------------

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def mode(self) -> str:
        return self._mode

    def elapsed(self) -> float:
        """Seconds of tuning so far (earlier sessions of a resumed experiment included)."""
        return self._time_offset + self.backend.clock.time() - self._t0

    def count(self, status: Status) -> int:
        return sum(1 for rec in self.trials.values() if rec.status is status)

    def standings(self, k: int | None = None) -> list[Standing]:
        """The trials with a result, best first (the ``k`` first; see
        :func:`tunebench.events.rank_trials`). Called by displays and at the end of :meth:`run`."""
        return rank_scored(((rec.trial, rec.status, rec.score) for rec in self.trials.values()), self._mode,
                           self._max_resource_attr, k)

    def best(self) -> Standing | None:
        """The best trial so far by the rule of :func:`tunebench.events.rank_trials` (None
        before the first result)."""
        top = self.standings(1)
        return top[0] if top else None

    def run(self) -> TuningResult:
        """Tune until a stop criterion is met; returns the best configuration found.

        Raises :class:`TuningError` when more than ``max_failures`` trials failed (everything
        recorded so far stays in the experiment folder), and :class:`~tunebench.errors.UserError`
        before anything runs when another tuner works on the folder (naming its pid, host and
        start) or the folder cannot be resumed (a damaged event log or metadata).
        """
        self._open()
        reason = "unknown"
        try:
            for cb in self.callbacks:
                cb.on_tuning_start(self)
            reason = self._loop()
        except KeyboardInterrupt:
            reason = "interrupted"
            logger.warning("interrupted: resume with `tunebench resume %s`", self.experiment_dir)
            raise
        except BaseException as e:
            reason = f"error: {type(e).__name__}: {e}"
            raise
        finally:
            try:
                self._finish(reason)
            except OSError as e:
                if reason != "interrupted":
                    raise
                # a Ctrl-C may land inside the backend's or the store's I/O: the interrupt (what the
                # user asked for) goes on; the log stays valid up to its last complete line
                logger.error("while ending the interrupted session of %s: %s", self.experiment_dir, e)
        result = self._result(reason)
        for cb in self.callbacks:
            cb.on_tuning_end(self, result)
        if self._failure_error is not None:
            raise TuningError(self._failure_error)
        return result

    # -- setup ------------------------------------------------------------------------------

    def _open(self) -> None:
        meta = {
            **self.metadata,
            "metric": self.metric,
            "mode": self.mode,
            "resource_attr": self.scheduler.resource_attr,
            "max_resource_attr": self.scheduler.max_resource_attr,
            "n_workers": self.n_workers,
            "stop": asdict(self.stop),
            "max_failures": self.max_failures,
        }
        if self._objectives.is_multi:  # "metric" and "mode" above are the first, for readers of one metric
            meta["objectives"] = self._objectives.to_json()
        if self._constraints:
            meta["constraints"] = [c.to_json() for c in self._constraints]
        if "config_space" not in meta:
            meta["config_space"] = space_to_json(self.scheduler.config_space)
        meta.setdefault("versions", run_versions())
        self._t0 = self.backend.clock.time()
        # the store takes the folder's lock (a UserError naming the tuner that holds it)
        if self.resume:
            self._store, events = ExperimentStore.reopen(self.experiment_dir)
        else:
            meta["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self._store = ExperimentStore.create(self.experiment_dir, meta)
        try:
            if self.resume:
                self._restore(events)
                self._store.update_metadata(meta)
            # a simulation is cheap to redo: buffer its log (flushed at snapshots and at the end)
            self._store.flush_each = not self._simulated
            self._log({"event": _LOG_SESSION_START, "resumed": self.resume})
        except BaseException:
            store, self._store = self._store, None
            store.close()  # releases the lock: a failed start leaves the folder to the next tuner
            raise
        self._last_snapshot = time.monotonic()

    def _log(self, event: dict[str, Any]) -> None:
        event["time"] = self._time_offset + self._clock_time() - self._t0
        if self._simulated:
            event["real_time"] = perf_counter() - self._real_t0 + self._real_offset
        self._store.append(event)  # type: ignore[union-attr]  # opened before the first event; no check per event

    def _trial_dir(self, trial_id: int) -> Path | None:
        assert self._store is not None
        if self.backend.uses_trial_dirs:
            return self._store.trial_dir(trial_id)
        return None  # a simulated trial has no files

    def _charge(self, t0: float) -> None:
        """Add the real time since ``t0`` (a scheduler decision) to a simulated clock."""
        self._advance_clock(perf_counter() - t0)

    # -- main loop --------------------------------------------------------------------------

    def _loop(self) -> str:
        backend = self.backend
        clock = backend.clock
        handle = self._handle
        n_workers = self.n_workers
        max_time = self.stop.max_wallclock_time
        # seconds of this session's clock at which the wallclock budget is spent
        deadline = math.inf if max_time is None else max_time + self._t0 - self._time_offset
        other_limits = self.stop.max_results is not None or self.stop.metric_threshold is not None
        while True:
            now = clock.time()
            if now >= deadline or other_limits:
                reason = self._stop_reason()
                if reason is not None:
                    return reason
            if backend.n_busy < n_workers:
                self._fill_workers()
                if backend.n_busy == 0:
                    if self.stop.max_trials is not None and self.n_started >= self.stop.max_trials:
                        return f"max_trials={self.stop.max_trials} reached"
                    return "no more trials to run"
            events = backend.poll(3600.0 if max_time is None else max(0.0, deadline - clock.time()))
            for event in events:
                handle(event)
            if self._failure_error is not None:
                return "too many failures"
            self._events_since_check += len(events)
            if self._events_since_check >= 64:  # reading the clock per event would show in simulations
                self._events_since_check = 0
                self._maybe_snapshot()
                # the tuner's long-lived objects (trial records, scheduler state) would otherwise be
                # scanned again and again by the cyclic garbage collector: a third of the time of a
                # 100,000-trial simulation. They hold no reference cycles; unfrozen at the end.
                gc.freeze()

    def _stop_reason(self) -> str | None:
        s = self.stop
        if s.max_wallclock_time is not None and self.elapsed() >= s.max_wallclock_time:
            return f"max_wallclock_time={s.max_wallclock_time:g}s reached"
        if s.max_results is not None and self.n_results >= s.max_results:
            return f"max_results={s.max_results} reached"
        if s.metric_threshold is not None and self.best_value is not None:
            reached = (self.best_value <= s.metric_threshold) if self.mode == "min" else (
                self.best_value >= s.metric_threshold)
            if reached:
                return f"metric_threshold={s.metric_threshold:g} reached"
        return None

    def _fill_workers(self) -> None:
        backend = self.backend
        while backend.n_busy < self.n_workers:
            if self._restart_queue:
                self._restart(self._restart_queue.popleft())
                continue
            if self.stop.max_trials is not None and self.n_started >= self.stop.max_trials:
                # no new trial may start, but paused trials due for promotion still resume
                suggest_resume = getattr(self.scheduler, "suggest_resume", None)  # absent: a duck-typed scheduler
                if suggest_resume is None:
                    return
                t0 = perf_counter()
                suggestion = suggest_resume(self.next_trial_id)
                if self._charging:
                    self._charge(t0)
                if suggestion is None:
                    return
                if not suggestion.is_resume:
                    raise RuntimeError(f"{type(self.scheduler).__name__}.suggest_resume returned a new trial")
                self._apply_suggestion(suggestion, self.next_trial_id, resume_only=True)
                continue
            if self._charging:
                t0 = perf_counter()
                suggestion = self.scheduler.suggest(self.next_trial_id)
                self._charge(t0)
            else:
                suggestion = self.scheduler.suggest(self.next_trial_id)
            if suggestion is None:
                return
            self._apply_suggestion(suggestion, self.next_trial_id)

    def _apply_suggestion(self, suggestion: Suggestion, suggest_id: int, resume_only: bool = False) -> None:
        tid = suggestion.resume_trial_id
        if tid is not None:  # suggestion.is_resume
            rec = self.trials.get(tid)
            if rec is None or rec.status is not _PAUSED:
                raise RuntimeError(f"scheduler asked to resume trial {tid}, which is not paused")
            source = suggestion.checkpoint_trial_id
            exploit = None if source is None else self._exploit_record(rec, source, suggestion.config)
            old_config = rec.trial.config
            if suggestion.config is not None:
                rec.trial = Trial(rec.trial.trial_id, suggestion.config)
            rec.status = _RUNNING
            rec.ending = False
            event = {"event": _LOG_TRIAL_RESUME, "trial_id": tid, "suggest_id": suggest_id, "config": suggestion.config}
            if resume_only:
                event["resume_only"] = True  # from suggest_resume (max_trials reached): replayed so
            if exploit is not None:
                # on the resume's own line: a crash cannot log one without the other
                event["exploit"] = exploit
            self._log(event)
            if exploit is not None:
                self._take_checkpoint(rec, exploit)
            for cb in self.callbacks:
                cb.on_trial_start(self, rec.trial, "resume")
            if not self._decide_deferred(rec, old_config):
                return
            if tid in self._launched:
                # its config now (a new one may have come with a resume that did not launch it)
                self.backend.resume(tid, rec.trial.config)
            else:  # paused in an earlier session of the experiment: unknown to this backend
                assert self._store is not None
                self._launched.add(tid)
                self.backend.start(rec.trial, self._trial_dir(tid), results_offset=rec.offset)
            rec.relaunched = True  # after its deferred results: its new process reports next
            return
        assert suggestion.config is not None  # a Suggestion that is no resume has a config (checked at creation)
        trial = Trial(suggest_id, suggestion.config)
        self.next_trial_id = suggest_id + 1
        self.n_started += 1
        # logged before the record exists: a Ctrl-C between the two must not leave a record that the
        # end of the session would log as interrupted without its trial_start (an invalid log)
        self._log({"event": _LOG_TRIAL_START, "trial_id": trial.trial_id, "config": trial.config})
        self.trials[trial.trial_id] = TrialRecord(trial)
        assert self._store is not None
        self._launched.add(trial.trial_id)
        self.backend.start(trial, self._trial_dir(trial.trial_id))
        for cb in self.callbacks:
            cb.on_trial_start(self, trial, "start")

    def _decide_deferred(self, rec: TrialRecord, trained_with: Config) -> bool:
        """Before a paused (or interrupted) trial is launched again: decide on what its last
        process reported after the PAUSE (its deferred results, trained with ``trained_with``; the
        checkpoint may hold them), in order, with no process running.  Those left after another
        PAUSE stay deferred, for its next resume (none is dropped).  Returns whether the trial is
        still running after them (then it is launched from its checkpoint)."""
        if rec.deferred_config is not None:  # left from an earlier resume: trained before it
            trained_with = rec.deferred_config
        deferred, rec.deferred = rec.deferred, []
        rec.deferred_config = trained_with if deferred and trained_with != rec.trial.config else None
        for i, (result, offset) in enumerate(deferred):
            if rec.status is not _RUNNING:
                if rec.status is _PAUSED:
                    rec.deferred = deferred[i:]
                break
            self._on_result(rec, result, offset, has_process=False)
        if not rec.deferred:
            rec.deferred_config = None
        return rec.status is _RUNNING

    def _exploit_record(self, rec: TrialRecord, source: int, config: Config | None) -> dict[str, Any]:
        """The ``exploit`` field of the ``trial_resume`` event of ``rec``'s resume from the
        checkpoint of trial ``source``: the source, the resource it had reached (where ``rec``
        goes on) and the hyperparameters that change (``{name: [old, new]}``)."""
        src = self.trials.get(source)
        if src is None or src.n_results == 0:
            raise RuntimeError(f"scheduler asked trial {rec.trial.trial_id} to take the checkpoint of trial "
                               f"{source}, which has no decided result")
        new = rec.trial.config if config is None else config
        old = rec.trial.config
        changes = {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}
        return {"source": source, "resource": src.last_resource, "changes": changes}

    def _take_checkpoint(self, rec: TrialRecord, exploit: dict[str, Any]) -> None:
        """Replace ``rec``'s checkpoint by a copy of its exploit source's, and forget what its
        own lineage reported and was not decided on (its deferred results: that checkpoint is
        gone). Its next report continues from the source's resource."""
        tid = rec.trial.trial_id
        source = exploit["source"]
        self.backend.copy_checkpoint(source, tid, self._trial_dir(source), self._trial_dir(tid))
        deferred, rec.deferred = rec.deferred, []
        for result, offset in deferred:
            self._log({"event": _LOG_RESULT_IGNORED, "trial_id": tid, "result": result, "offset": offset,
                       "reason": f"reported before trial {tid} took the checkpoint of trial {source}"})
        rec.last_resource = exploit["resource"]
        rec.exploit_pending = None

    def _restart(self, trial_id: int) -> None:
        rec = self.trials[trial_id]
        rec.status = _RUNNING
        rec.ending = False
        rec.relaunched = True
        self._log({"event": _LOG_TRIAL_RESTART, "trial_id": trial_id, "offset": rec.offset})
        if rec.exploit_pending is not None:
            # the last session logged its resume from another trial's checkpoint and ended before
            # a result of it: the copy may not have been made; make it (again) before the relaunch
            self._take_checkpoint(rec, rec.exploit_pending)
        assert self._store is not None
        self._launched.add(trial_id)
        self.backend.start(rec.trial, self._trial_dir(trial_id), results_offset=rec.offset)
        for cb in self.callbacks:
            cb.on_trial_start(self, rec.trial, "restart")

    # -- events -----------------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        rec = self.trials.get(event.trial_id)
        if rec is None:
            logger.warning("event for unknown trial %s ignored", event.trial_id)
            return
        kind = event.kind
        if kind is _EV_RESULT:
            assert event.result is not None
            self._on_result(rec, event.result, event.offset)
        elif kind is _EV_COMPLETED:
            if rec.status is _RUNNING and not rec.ending and rec.n_results == 0:
                self._fail(rec, f"exited without reporting: its script ended normally (exit status 0) without a "
                                f"report the tuner could decide on; call tunebench.report({self._metric}=...)"
                                + (f" with {self._resource_attr}=..." if self._resource_attr else "")
                                + " in it", stop_process=False, quote_stderr=True)
            elif rec.status is _RUNNING and not rec.ending:
                t0 = perf_counter()
                self.scheduler.on_complete(rec.trial, rec.last_result)
                if self._charging:
                    self._charge(t0)
                rec.status = _COMPLETED
                self._log({"event": _LOG_TRIAL_COMPLETE, "trial_id": rec.trial.trial_id})
                self._trial_ended(rec)
        elif kind is _EV_FAILED:
            if rec.status is _RUNNING and not rec.ending:
                self._fail(rec, event.error or "failed", stop_process=False)
        # PAUSED / STOPPED: the process is gone; the status was set when the decision was taken

    def _on_result(self, rec: TrialRecord, result: Result, offset: int | None, has_process: bool = True) -> None:
        """Decide on one result and apply the decision (``has_process=False``: the result was
        written by a process that died with the previous tuner, so there is nothing to pause/stop)."""
        tid = rec.trial.trial_id
        if rec.status is _PAUSED:
            # reported between the PAUSE decision and the process ending: the checkpoint may
            # already hold this epoch, so the scheduler gets the result when the trial resumes
            rec.deferred.append((result, offset))
            self._log({"event": _LOG_RESULT_DEFERRED, "trial_id": tid, "result": result, "offset": offset})
            rec.offset = consumed_offset(rec.offset, offset)
            return
        if rec.status is not _RUNNING or rec.ending:
            # reported after the tuner asked the process to end: kept in the log, not decided on
            self._log({"event": _LOG_RESULT_IGNORED, "trial_id": tid, "result": result, "offset": offset,
                       "reason": f"trial is {rec.status.value}"})
            rec.offset = consumed_offset(rec.offset, offset)
            return
        problem = self._check_result(result)
        if problem is not None:
            rec.offset = consumed_offset(rec.offset, offset)
            self._fail(rec, problem, stop_process=has_process)
            return
        resource_attr = self._resource_attr
        if resource_attr is not None:
            resource = result[resource_attr]
            relaunched, rec.relaunched = rec.relaunched, False
            last = rec.last_resource
            max_attr = self._max_resource_attr
            top = rec.trial.config.get(max_attr) if max_attr is not None else None
            why = resource_not_decided(resource, last, top, resource_attr)
            if why is not None:
                if why[0] == "repeat":
                    # the first report of a relaunched trial repeating its last epoch: the documented
                    # re-report of a checkpointed epoch (and so may be a repeat of the last epoch in
                    # the file of a dead tuner's trial: its relaunches are not known); anything else
                    # repeats or goes back
                    expected = (relaunched or not has_process) and resource == last
                    # the first report of a relaunched trial going back: its script restarted
                    # without a checkpoint (documented; the scheduler may pause it less often)
                    restarted = restarted_without_checkpoint(resource, last, relaunched)
                    self._ignore(rec, result, offset, why[1],
                                 warn=not (expected or restarted) and not rec.warned_repeat, restart=restarted)
                    if not expected:
                        rec.warned_repeat = True
                    if restarted:
                        if not self._warned_restart:
                            self._warned_restart = True
                            logger.warning(
                                "trial %d started over from %s=%s when it was resumed at %s=%s: its script does "
                                "not load its checkpoint, so every resume trains it again from the start (and "
                                "its repeated reports are ignored); load the state with load_checkpoint (see the "
                                "README, checkpoints); said once", tid, resource_attr, resource, resource_attr, last)
                        self.scheduler.on_restart(rec.trial)
                else:
                    self._ignore(rec, result, offset, why[1], warn=not rec.warned_range)
                    rec.warned_range = True
                return
            rec.last_resource = resource
        result["trial_id"] = tid
        if self._charging:
            t0 = perf_counter()
            decision = self.scheduler.on_result(rec.trial, result)
            self._charge(t0)
        else:
            decision = self.scheduler.on_result(rec.trial, result)
        self.n_results += 1
        rec.n_results += 1
        rec.last_result = result
        rec.offset = consumed_offset(rec.offset, offset)
        event = {"event": _LOG_RESULT, "trial_id": tid, "result": result, "decision": decision}  # str enum
        if offset is not None:
            event["offset"] = offset
        self._log(event)
        self._update_best(rec, result)
        for cb in self.callbacks:
            cb.on_result(self, rec.trial, result, decision)
        if decision is _PAUSE:
            rec.status, rec.ending = _PAUSED, has_process
            if has_process:
                self.backend.pause(tid)
            self._trial_ended(rec)
        elif decision is _STOP:
            rec.status, rec.ending = _STOPPED, has_process
            if has_process:
                self.backend.stop(tid)
            self._trial_ended(rec)

    def _ignore(self, rec: TrialRecord, result: Result, offset: int | None, reason: str, *, warn: bool,
                restart: bool = False) -> None:
        """Log a report of a running trial that is not decided on (``reason``: why; ``restart``:
        it tells the scheduler of a restart without checkpoint), and say so on the console when
        ``warn`` (the first of its kind for the trial)."""
        tid = rec.trial.trial_id
        event = {"event": _LOG_RESULT_IGNORED, "trial_id": tid, "result": result, "offset": offset, "reason": reason}
        if restart:
            event["restart"] = True
        self._log(event)
        rec.offset = consumed_offset(rec.offset, offset)
        if warn:
            logger.warning("trial %d reported %s: ignored (the script should report each %s once, up to its "
                           "maximum; further ones of this trial are ignored without a word, see %s)", tid, reason,
                           self._resource_attr, self.experiment_dir / "events.jsonl")

    def _check_result(self, result: Result) -> str | None:
        """None if ``result`` can be decided on, else what is wrong with it."""
        metric = self._metric
        # fast path (every result of a well-behaved script): finite float metric and numeric resource
        value = result.get(metric)
        resource_attr = self._resource_attr
        if (type(value) is float and value - value == 0.0 and "trial_id" not in result and self._one_metric
                and (resource_attr is None or type(result.get(resource_attr)) in (int, float))):
            return None
        return result_problem(result, self._metrics, resource_attr)

    def _update_best(self, rec: TrialRecord, result: Result) -> None:
        """Take a decided result into the trial's score and the best value of any result (what
        ``metric_threshold`` is checked against; the headline best is :meth:`best`). A result
        that misses a constraint counts for neither."""
        if self._constraints and not is_feasible(result, self._constraints, rec.trial.trial_id):
            return
        value = float(result[self._metric])
        resource_attr = self._resource_attr
        rec.score.observe(value, result.get(resource_attr) if resource_attr is not None else None, self._mode,
                          rec.deferred_config or rec.trial.config)  # its config then: PBT changes it
        if self._mode == "min":
            if self.best_value is None or value < self.best_value:
                self.best_value, self.best_trial_id = value, rec.trial.trial_id
        elif self.best_value is None or value > self.best_value:
            self.best_value, self.best_trial_id = value, rec.trial.trial_id

    def _fail(self, rec: TrialRecord, error: str, *, stop_process: bool, quote_stderr: bool = False) -> None:
        """Mark a trial failed. ``stop_process``: the tuner found the problem (bad report), so
        it ends the process and quotes the tail of its stderr itself (``quote_stderr``: quote it
        for a process that has ended)."""
        tid = rec.trial.trial_id
        if (stop_process or quote_stderr) and self._store is not None and self.backend.uses_trial_dirs:
            tail = _file_tail(self._store.trial_dir(tid) / STDERR_FILENAME)
            if tail:
                error = f"{error}\n--- end of stderr ---\n{tail}"
        rec.status, rec.error = _FAILED, error
        t0 = perf_counter()
        self.scheduler.on_error(rec.trial)
        if self._charging:
            self._charge(t0)
        self.n_failed += 1
        self._log({"event": _LOG_TRIAL_FAIL, "trial_id": tid, "error": error})
        logger.warning("trial %d failed: %s", tid, error)
        if stop_process:
            rec.ending = True
            self.backend.stop(tid)
        self._trial_ended(rec)
        if self.n_failed > self.max_failures and self._failure_error is None:
            # said as the limit is crossed (a failure in the same batch of events does not change it)
            self._failure_error = (
                f"{self.n_failed} trials failed (max_failures={self.max_failures}); last: trial {tid}: "
                f"{_error_gist(error)}. Logs: {self.experiment_dir}/trials/{tid}/stderr.log. "
                f"Fix the script (or raise --max-failures), then `tunebench resume {self.experiment_dir}`"
            )
            # tuning ends here: a trial failing in the same batch of events is interrupted, not counted
            self._interrupt_running("too many failures")

    def _trial_ended(self, rec: TrialRecord) -> None:
        for cb in self.callbacks:
            cb.on_trial_end(self, rec.trial, rec.status)

    # -- snapshots, end ---------------------------------------------------------------------

    def _maybe_snapshot(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_snapshot >= self._snapshot_every:
            assert self._store is not None
            self._store.save_scheduler_state(self.scheduler.state_dict())
            self._last_snapshot = time.monotonic()
            # a big state (a simulation of 100,000 trials) takes a while to write: keep snapshots
            # under 5% of the time (2% in a simulation, which is cheap to replay); the log replay
            # after the snapshot covers the rest
            factor = 50 if self._simulated else 20
            self._snapshot_every = max(self.snapshot_interval, factor * (self._last_snapshot - now))

    def _interrupt_running(self, reason: str) -> None:
        """Ask every running trial to stop as the session ends (``trial_interrupt``: they restart
        from their checkpoints when the experiment resumes); what they report or how they exit
        from now on is not decided on."""
        for rec in self.trials.values():
            if rec.status is _RUNNING and not rec.ending:
                rec.ending = True
                self.backend.stop(rec.trial.trial_id)
                self._log({"event": _LOG_TRIAL_INTERRUPT, "trial_id": rec.trial.trial_id, "reason": reason})
                self._interrupted.append(rec)

    def _finish(self, reason: str) -> None:
        """Stop what still runs, wait for it, snapshot, log the end. Never raises past a real error."""
        store = self._store
        if store is None:
            gc.unfreeze()
            return
        try:
            self._interrupt_running(reason)
            deadline = time.monotonic() + self.shutdown_timeout
            while self.backend.n_busy > 0 and time.monotonic() < deadline:
                for event in self.backend.poll(max(0.0, deadline - time.monotonic())):
                    if event.kind is _EV_RESULT and event.trial_id in self.trials:
                        self._on_result(self.trials[event.trial_id], event.result or {}, event.offset)
            for rec in self._interrupted:
                rec.status = _STOPPED
                self._trial_ended(rec)
        finally:
            try:
                self.backend.shutdown()
            finally:
                try:
                    self._maybe_snapshot(force=True)
                    self._log({"event": _LOG_EXPERIMENT_END, "reason": reason})
                except OSError as e:  # e.g. disk full: what is logged so far stays valid
                    logger.error("could not write the end of %s: %s", self.experiment_dir, e)
                finally:
                    # unfrozen only now: the final snapshot allocates one object per trial, and
                    # each garbage collection it triggers would scan every unfrozen object
                    gc.unfreeze()
                    try:
                        store.close()
                    except OSError as e:
                        logger.error("could not close the event log of %s: %s", self.experiment_dir, e)

    def _result(self, reason: str) -> TuningResult:
        best = self.best()
        # several objectives or constraints: the front as the experiment folder tells it (read once)
        extra = (Experiment(self.experiment_dir).front_summary()
                 if self._objectives.is_multi or self._constraints else {})
        return TuningResult(
            experiment_dir=self.experiment_dir,
            metric=self.metric,
            mode=self.mode,
            best_trial_id=best.trial_id if best else None,
            best_config=dict(best.config) if best else None,
            best_metric=best.value if best else None,
            n_trials=len(self.trials),
            n_completed=self.count(_COMPLETED),
            n_failed=self.n_failed,
            n_results=self.n_results,
            elapsed_time=self.elapsed(),
            end_reason=reason,
            resource_attr=self._resource_attr,
            best_resource=best.resource if best else None,
            best_resource_reached=best.reached if best else None,
            best_max_resource=best.max_resource if best else None,
            best_at_max_resource=best.at_max_resource if best else None,
            best_trial_status=best.status.value if best else None,
            failure=self._failure(),
            **extra,
        )

    def _failure(self) -> str | None:
        """Why tuning produced nothing usable (no trial reported a result, or every trial
        failed), None if it did."""
        n_trials, n_failed = len(self.trials), self.n_failed
        if self.n_results and n_failed < n_trials:
            return None
        what = "no trial reported a result" if not self.n_results else "every trial failed"
        if not n_trials:
            return f"{what}: no trial was started"
        failed = [rec for rec in self.trials.values() if rec.status is _FAILED and rec.error]
        if not failed:
            return f"{what} ({n_trials} trials)"
        last = failed[-1]
        tid = last.trial.trial_id
        logs = f"; logs: {self.experiment_dir}/trials/{tid}/" if self.backend.uses_trial_dirs else ""
        return (f"{what} ({n_failed} of {n_trials} trials failed; last: trial {tid}: "
                f"{_error_gist(last.error or '')}{logs})")

    # -- resume -----------------------------------------------------------------------------

    def _restore(self, events: list[dict[str, Any]]) -> None:
        """Rebuild trials and the scheduler from the log; queue interrupted trials for restart."""
        assert self._store is not None
        # the snapshot is None when there is none, or when it is unusable (warned)
        logged = restore(self.scheduler, events, self._store.load_scheduler_state(), self.experiment_dir)
        for tid, ts in logged.trials.items():
            self.trials[tid] = TrialRecord(ts.trial, status=ts.status, offset=ts.offset, last_result=ts.last_result,
                                           n_results=ts.n_results, error=ts.error, deferred=list(ts.deferred))
        resource_attr = self.scheduler.resource_attr
        seen: dict[int, int] = {}  # per trial whose config changed: its results so far
        for ev in logged.results:
            tid = ev["trial_id"]
            rec = self.trials.get(tid)
            if rec is None:
                continue
            result = ev["result"]
            if resource_attr is not None and resource_attr in result:
                rec.last_resource = result[resource_attr]
            configs = logged.trials[tid].configs
            if configs is None:
                self._update_best(rec, result)
                continue
            # scored with the config it was trained with (the record holds its last one)
            index = seen[tid] = seen.get(tid, -1) + 1
            rec.deferred_config = logged.trials[tid].config_at(index)
            self._update_best(rec, result)
            rec.deferred_config = None
        for tid, ts in logged.trials.items():
            if ts.deferred and ts.configs is not None:
                # deferred results left by a PAUSE while they were decided: trained with the config then
                trained_with = ts.config_at(ts.n_results)
                if trained_with != ts.trial.config:
                    self.trials[tid].deferred_config = trained_with
            if ts.exploit is not None and ts.n_results == ts.exploit_n_results:
                # resumed from another trial's checkpoint, nothing decided since: it goes on from there
                self.trials[tid].last_resource = ts.exploit["resource"]
                if ts.status is _RUNNING:
                    self.trials[tid].exploit_pending = ts.exploit
        self.next_trial_id = logged.next_trial_id
        self.n_started = len(logged.trials)
        self.n_results = logged.n_results
        self.n_failed = logged.n_failed
        self._time_offset = logged.time
        self._real_offset = logged.real_time
        # trials running when the last session ended (killed, or stopped by the tuner at its end:
        # "trial_interrupt" leaves them running in the log) continue from their checkpoints
        # every trial's results file may hold lines the dead tuner did not read: a running trial's are
        # decided on; a paused trial's (reported between the PAUSE decision and its process ending)
        # are deferred to its resume; an ended trial's are logged as ignored -- as in a live session
        for rec in list(self.trials.values()):
            running = rec.status is _RUNNING
            if running and rec.deferred:  # the last session ended while it decided on them after a resume
                self._decide_deferred(rec, rec.trial.config)
            self._ingest_unlogged_results(rec)
            if running and rec.status is _RUNNING:
                self._restart_queue.append(rec.trial.trial_id)
        logger.info("resumed %s: %d trials, %d results, %d to restart", self.experiment_dir,
                    len(self.trials), self.n_results, len(self._restart_queue))

    def _ingest_unlogged_results(self, rec: TrialRecord) -> None:
        """Feed results a trial wrote after the last one the dead tuner logged (see :meth:`_on_result`
        for what happens to a result of a paused or ended trial)."""
        assert self._store is not None
        if not self.backend.uses_trial_dirs:
            return
        path = self._store.trial_dir(rec.trial.trial_id) / RESULTS_FILENAME
        if not path.exists():
            return
        with open(path, "rb") as f:
            f.seek(rec.offset)
            data = f.read()
        start = rec.offset
        pos = 0
        # every line, as a live session would have seen them: once a line's decision pauses the
        # trial, the lines after it were reported while it was being paused (deferred to its
        # resume); after a STOP they are logged as ignored. (Stopping at that decision would leave
        # them unlogged for good when the trial is not resumed before the experiment ends.)
        while True:
            end = data.find(b"\n", pos)
            if end < 0:
                break
            line = data[pos:end]
            pos = end + 1
            try:
                result = parse_result_line(line)
            except ValueError as err:
                if rec.status is _RUNNING:
                    self._fail(rec, f"malformed report line in {path}: {line[:200]!r} ({err})", stop_process=False)
                return  # an ended trial's garbage tail changes nothing
            if result is not None:
                self._on_result(rec, result, start + pos, has_process=False)


def _file_tail(path: Path, n_lines: int = 20, max_bytes: int = 8192) -> str:
    """The last ``n_lines`` lines of a (log) file, "" if it is absent or empty."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-n_lines:])


def _error_gist(error: str) -> str:
    """First line of an error, plus its last line (the exception, at the end of a stderr tail)."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    if not lines:
        return "no error message"
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1].strip()}"

