"""Ask/tell (L3 orchestration): drive any registered method from your own loop.

The :class:`~tunebench.tuner.Tuner` runs trials itself, on a backend. :class:`AskTell` leaves the
running to the caller (a notebook, a cluster scheduler of its own, a training loop in the same
process) and keeps the rest: the method's scheduler, its decisions, and, with an
``experiment_dir``, the same experiment folder as the tuner's (``metadata.json``, the event log
of :mod:`tunebench.events`, scheduler snapshots, the folder lock of :mod:`tunebench.lock`), so
``tunebench show`` and :func:`tunebench.load_experiment` read it unchanged and
:meth:`AskTell.load` continues it after a crash::

    at = AskTell("ASHA", space, metric="val_error", mode="min", resource_attr="epoch", max_t=27)
    while (t := at.ask()) is not None:
        for epoch in range(1, 28):
            decision = at.tell(t.trial_id, {"epoch": epoch, "val_error": train_one_epoch(t.config)})
            if decision != "CONTINUE":
                break   # "PAUSE": a later ask() may resume it; "STOP": it is over
        else:
            at.complete(t.trial_id)

Each call maps to one scheduler call, logged as the tuner logs it: :meth:`AskTell.ask` to
``suggest`` (``trial_start`` or ``trial_resume``; ``suggest_resume`` with ``resume_only=True``),
:meth:`AskTell.tell` to ``on_result`` (``result``, with the decision), :meth:`AskTell.complete` to
``on_complete`` (``trial_complete``), :meth:`AskTell.fail` to ``on_error`` (``trial_fail``).
The tuner's rules apply to what is told: a result must hold the metric as a finite number (and
the resource, for a method with one; :func:`tunebench.events.result_problem`); a resource that is
not beyond the last one decided on (a trial restarted without its checkpoint re-telling epochs)
or beyond the trial's maximum is logged as ``result_ignored`` and answered ``CONTINUE`` without
asking the scheduler.

Crash semantics (:meth:`AskTell.load`): everything told before the crash is in the log (one
flushed line per call); the scheduler is rebuilt from the last snapshot plus the calls logged
after it, exactly as the tuner resumes. Trials that were running when the process died stay
running (their status in ``tunebench show``), and -- as the tuner restarts them from their
checkpoints -- the next :meth:`AskTell.ask` calls hand them out again first
(:attr:`AskedTrial.restarted`; logged ``trial_restart``), so a loop that died with its trials
simply goes on. A caller whose workers outlived the crash may instead keep telling their
results (a trial told a result is no longer handed out), or pass ``restart_running=False``.
Unlike Optuna, which leaves such trials running forever unless a heartbeat fails them, no trial
is lost or left hanging: a synchronous method waiting for them gets their results.
"""

from __future__ import annotations

import json
import logging
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunebench.errors import UserError
from tunebench.events import (
    LogKind,
    Standing,
    TrialScore,
    rank_scored,
    resource_not_decided,
    restarted_without_checkpoint,
    restore,
    result_problem,
)
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.registry import get_method, make_scheduler
from tunebench.space import space_from_json, space_to_json
from tunebench.store import EVENTS_FILE, ExperimentStore, pareto_members, read_metadata
from tunebench.tuner import TrialRecord
from tunebench.types import (
    Config,
    Constraint,
    Decision,
    Result,
    Status,
    Suggestion,
    TransferTask,
    Trial,
    is_feasible,
    parse_constraints,
)
from tunebench.version import run_versions

__all__ = ["AskTell", "AskedTrial", "TrialInfo", "DRIVER"]

logger = logging.getLogger(__name__)

#: the ``driver`` entry of the ``metadata.json`` of an experiment written by :class:`AskTell`
DRIVER = "ask_tell"

_RUNNING, _PAUSED, _COMPLETED, _STOPPED, _FAILED = (Status.RUNNING, Status.PAUSED, Status.COMPLETED,
                                                     Status.STOPPED, Status.FAILED)


@dataclass(frozen=True, slots=True)
class AskedTrial:
    """What :meth:`AskTell.ask` hands out: a trial to run now.

    Attributes:
        trial_id: its id (new trials are numbered 0, 1, 2, ...; a resumed trial keeps its id).
        config: the configuration to train (for a resumed trial, the method may have changed it,
            as PBT does).
        resumed: continue the trial from where it was (its checkpoint): a paused trial the
            method resumes, or one that was running when an earlier process died (``restarted``).
            False: a new trial, to train from scratch.
        restarted: it was running when the process that drove it died (see :meth:`AskTell.load`);
            not a scheduler decision. Implies ``resumed``.
        checkpoint_from: (PBT's exploit) continue from the checkpoint of this other trial
            instead of the trial's own: copy that trial's weights first; the trial goes on from
            the resource that trial had reached. None: from its own.
    """

    trial_id: int
    config: Config
    resumed: bool = False
    restarted: bool = False
    checkpoint_from: int | None = None


@dataclass(frozen=True, slots=True)
class TrialInfo:
    """One trial as :attr:`AskTell.trials` shows it."""

    trial_id: int
    config: Config
    status: Status
    n_results: int  #: results decided on
    best: float | None  #: its best metric value so far (None before its first decided result)
    last_result: Result | None  #: the last result decided on
    error: str | None  #: why it failed



def _prior(config_space: dict[str, Any], prior: Any) -> Any:
    """``prior`` (a :class:`~tunebench.space.Prior` or its mapping) as a Prior over the space, or None."""
    if prior is None or not isinstance(prior, Mapping):
        return prior
    from tunebench.space import Prior  # deferred: numpy and scipy, only for a run with a prior

    return Prior(config_space, prior)

class AskTell:
    """A tuning method driven by the caller's own loop: :meth:`ask` what to run, :meth:`tell` its
    results, and obey the decisions. Call it from one thread (or hold a lock around its calls):
    each call is one scheduler call, in the order made.

    Args:
        method: a registered method (:func:`tunebench.schedulers.method_names`; case-insensitive).
        config_space: the config space (a dict of name -> domain or constant).
        metric: the metric told with each result; ``mode``: ``"min"`` or ``"max"``.
        resource_attr: the resource told with each result (e.g. ``"epoch"``); required by the
            multi-fidelity methods.
        max_resource_attr: a config entry holding each trial's maximum resource (e.g. the
            constant ``"epochs"``); ``max_t`` defaults to it.
        max_t: the maximum resource (multi-fidelity methods need it, or ``max_resource_attr``).
        experiment_dir: log every call to this (new) experiment folder; ``None``: nothing is
            written (persist with :meth:`state_dict` instead). The folder is locked until
            :meth:`close`: one process at a time works on it.
        seed: the method's seed; the same seed and the same calls give the same answers.
        snapshot_interval: seconds between two scheduler snapshots in ``experiment_dir`` (they
            only shorten the replay of :meth:`load`).
        constraints: bounds on told metrics (``"latency<=20"``): each result must carry their
            metrics, the best counts only results meeting them all, and a constrained method
            (``CBO``) models them.
        prior: the user's prior (a :class:`~tunebench.space.Prior` or its mapping), for PiBO,
            PiBO-MOBSTER and PriorBand; stored in the metadata to rebuild it.
        transfer: earlier tasks' results for a transfer method (``ZeroShot``, ``CTS``, ...; see
            :func:`tunebench.analysis.transfer.load_transfer_tasks`), stored to rebuild it.
        method_options: the method's own options (JSON-able: they are stored to rebuild it).

    Raises:
        UserError: an unknown method or option, a multi-fidelity method without its resource, a
            folder that already holds an experiment (continue it with :meth:`load`) or that
            another process works on.
    """

    def __init__(
        self,
        method: str,
        config_space: dict[str, Any],
        *,
        metric: str | Sequence[str],
        mode: str | Sequence[str] = "min",
        resource_attr: str | None = None,
        max_resource_attr: str | None = None,
        max_t: int | None = None,
        experiment_dir: str | Path | None = None,
        seed: int = 0,
        snapshot_interval: float = 5.0,
        constraints: Sequence[str | Constraint] | None = None,
        prior: Any = None,
        transfer: Sequence[TransferTask] = (),
        **method_options: Any,
    ) -> None:
        try:
            json.dumps(method_options, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise UserError(f"the options of method {method!r} must be JSON-able (they are stored to rebuild it "
                            f"on load): {e}") from e
        self.method = get_method(method).name
        self.scheduler: Scheduler = make_scheduler(
            self.method, config_space, metric=metric, mode=mode, resource_attr=resource_attr,
            max_resource_attr=max_resource_attr, max_t=max_t, seed=seed, constraints=constraints,
            prior=_prior(config_space, prior), transfer=transfer, **method_options)
        self._constraints = parse_constraints(constraints)
        self.seed = seed
        self.experiment_dir = Path(experiment_dir) if experiment_dir is not None else None
        self.snapshot_interval = snapshot_interval
        # as the tuner does: what the scheduler reads (a method may do without a resource)
        self._metric, self._mode = self.scheduler.metric, self.scheduler.mode
        objectives = self.scheduler.objectives
        #: every metric a told result must carry (several for a multi-objective method)
        self._metrics: str | tuple[str, ...] = (
            (*objectives.metrics, *(c.metric for c in self._constraints if c.metric not in objectives.metrics))
            if objectives.is_multi or self._constraints else self._metric)
        self._resource_attr = self.scheduler.resource_attr
        self._max_resource_attr = self.scheduler.max_resource_attr
        self._trials: dict[int, TrialRecord] = {}
        self._next_trial_id = 0
        self._n_results = 0
        #: trials running when an earlier process died, to hand out again (in order); a trial
        #: told, completed or failed meanwhile is alive elsewhere and leaves it
        self._to_restart: dict[int, None] = {}
        self._store: ExperimentStore | None = None
        self._closed = False
        self._time_offset = 0.0
        self._t0 = time.monotonic()
        self._last_snapshot = self._t0
        self._metadata = {
            "driver": DRIVER, "method": self.method, "seed": seed, "metric": metric, "mode": mode,
            "resource_attr": resource_attr, "max_resource_attr": max_resource_attr, "max_t": max_t,
            "method_options": method_options, "config_space": space_to_json(config_space), "versions": run_versions(),
        }
        if objectives.is_multi:  # "metric" and "mode" are the first, for readers of one metric (as the tuner writes)
            self._metadata.update({"metric": self._metric, "mode": self._mode, "objectives": objectives.to_json()})
        if self._constraints:
            self._metadata["constraints"] = [c.to_json() for c in self._constraints]
        if prior is not None:
            self._metadata["prior"] = _prior(config_space, prior).to_json()
        if transfer:
            self._metadata["transfer"] = [t.to_json() for t in transfer]
        if self.experiment_dir is not None:
            if (self.experiment_dir / EVENTS_FILE).exists():
                raise UserError(f"{self.experiment_dir} already holds an experiment; continue it with "
                                f"AskTell.load({str(self.experiment_dir)!r}) or choose another experiment_dir")
            self._metadata["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self._store = ExperimentStore.create(self.experiment_dir, self._metadata)  # takes the folder's lock
            self._log({"event": LogKind.SESSION_START.value, "resumed": False})

    @classmethod
    def load(cls, experiment_dir: str | Path, *, restart_running: bool = True,
             snapshot_interval: float = 5.0) -> AskTell:
        """Continue the experiment an :class:`AskTell` logged to ``experiment_dir`` (after a
        crash, or after :meth:`close`): the method is rebuilt from ``metadata.json`` and brought
        to the end of the event log (last snapshot, then the logged calls replayed), every trial
        and result told is back.

        Trials that were running when the earlier process ended stay running; with
        ``restart_running`` the next :meth:`ask` calls hand them out again first
        (``resumed=True, restarted=True``), else the caller goes on telling their results.

        Raises:
            UserError: the folder holds no experiment, one not written by :class:`AskTell`
                (continue a ``tunebench run`` experiment with ``tunebench resume``), a damaged
                event log, or another process works on it.
        """
        path = Path(experiment_dir)
        meta = read_metadata(path)
        if meta.get("driver") != DRIVER:
            raise UserError(f"{path} was not written by AskTell (its metadata.json has no driver "
                            f"{DRIVER!r}); continue a `tunebench run` experiment with `tunebench resume {path}`")
        try:
            space = space_from_json(meta["config_space"])
            options = meta.get("method_options") or {}
            objectives = meta.get("objectives") or {"metric": meta["metric"], "mode": meta["mode"]}
            at = cls(meta["method"], space, metric=objectives["metric"], mode=objectives["mode"],
                     resource_attr=meta.get("resource_attr"), max_resource_attr=meta.get("max_resource_attr"),
                     max_t=meta.get("max_t"), seed=meta.get("seed", 0), snapshot_interval=snapshot_interval,
                     constraints=meta.get("constraints"), prior=meta.get("prior"),
                     transfer=[TransferTask.from_json(t) for t in meta.get("transfer") or ()], **options)
        except (KeyError, TypeError) as e:
            raise UserError(f"{path}/metadata.json is not the one AskTell writes ({type(e).__name__}: {e}); "
                            "restore it to continue this experiment") from e
        at.experiment_dir = path
        at._metadata = meta
        store, events = ExperimentStore.reopen(path)  # takes the folder's lock
        try:
            at._store = store
            at._restore(events, store.load_scheduler_state(), restart_running)
            at._log({"event": LogKind.SESSION_START.value, "resumed": True})
        except BaseException:
            at._store = None
            store.close()
            raise
        return at

    # -- the loop -------------------------------------------------------------------------------

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def resource_attr(self) -> str | None:
        return self._resource_attr

    def ask(self, *, resume_only: bool = False) -> AskedTrial | None:
        """What to run now: a new trial, a paused trial the method resumes, or (after
        :meth:`load`) a trial that was running when the earlier process died. Call it whenever
        you can run one more trial.

        ``resume_only``: your budget of new trials is spent; only a paused trial due to go on
        (a promotion) is handed out (the method's ``suggest_resume``), so the rungs started
        finish.

        Returns None when the method has nothing to start now (a synchronous method waiting for
        the results of running trials, a grid exhausted, nothing to promote): tell the results
        of the running trials, then ask again; None with no trial running means the method is
        done.
        """
        self._check_open()
        if self._to_restart:
            tid = next(iter(self._to_restart))
            del self._to_restart[tid]
            rec = self._trials[tid]
            rec.relaunched = True
            self._log({"event": LogKind.TRIAL_RESTART.value, "trial_id": tid})
            return AskedTrial(tid, rec.trial.config, resumed=True, restarted=True)
        suggest_id = self._next_trial_id
        suggestion = (self.scheduler.suggest_resume if resume_only else self.scheduler.suggest)(suggest_id)
        if suggestion is None:
            self._maybe_snapshot()
            return None
        asked = self._apply(suggestion, suggest_id, resume_only)
        self._maybe_snapshot()
        return asked

    def tell(self, trial_id: int, result: Mapping[str, Any]) -> Decision:
        """Report one result of the running trial ``trial_id`` (e.g. ``{"epoch": 3, "val_error":
        0.2}``: the metric, the resource for a method with one, and any other JSON-able metrics),
        in the order they were measured. Returns the method's decision, a
        :class:`~tunebench.types.Decision` (a ``str``: compare it with ``"CONTINUE"``):

        * ``"CONTINUE"``: go on training it, and tell its next result;
        * ``"PAUSE"``: stop training it, keep its checkpoint: a later :meth:`ask` may resume it;
        * ``"STOP"``: stop training it for good.

        A result whose resource is not beyond the last one decided on (a restart without a
        checkpoint re-telling epochs) or beyond the trial's maximum is logged as ignored and
        answered ``"CONTINUE"`` without asking the method.

        Raises:
            UserError: an unknown trial or one not running (paused, stopped, completed,
                failed), or a result that cannot be decided on (the metric missing or not a
                finite number, the resource missing or not a number, the reserved key
                ``trial_id``, a value that is not JSON-able); nothing is recorded then.
        """
        self._check_open()
        rec = self._running(trial_id, "tell")
        if not isinstance(result, Mapping):
            raise UserError(f"tell(trial {trial_id}): the result must be a dict of metric -> value, "
                            f"got {type(result).__name__}")
        told = {key: _plain(value) for key, value in result.items()}
        problem = result_problem(told, self._metrics, self._resource_attr, source="tell")
        if problem is None:
            try:
                json.dumps(told, allow_nan=True)
            except (TypeError, ValueError) as e:
                problem = f"told a result that is not JSON-able ({e}); tell numbers and strings"
        if problem is not None:
            raise UserError(f"tell(trial {trial_id}): {problem}")
        self._to_restart.pop(trial_id, None)  # told after a crash: alive elsewhere, not handed out again
        resource_attr = self._resource_attr
        if resource_attr is not None:
            resource = told[resource_attr]
            relaunched, rec.relaunched = rec.relaunched, False
            last = rec.last_resource
            top = rec.trial.config.get(self._max_resource_attr) if self._max_resource_attr is not None else None
            why = resource_not_decided(resource, last, top, resource_attr, verb="told")
            if why is not None:
                expected = why[0] == "repeat" and relaunched and resource == last
                restarted = restarted_without_checkpoint(resource, last, relaunched)
                self._ignore(rec, told, why[1], warn=not expected, restart=restarted)
                if restarted:
                    self.scheduler.on_restart(rec.trial)
                return Decision.CONTINUE
            rec.last_resource = resource
        told["trial_id"] = trial_id
        decision = self.scheduler.on_result(rec.trial, told)
        self._n_results += 1
        rec.n_results += 1
        rec.last_result = told
        self._log({"event": LogKind.RESULT.value, "trial_id": trial_id, "result": told, "decision": decision.value})
        if not self._constraints or is_feasible(told, self._constraints, trial_id):  # the best counts feasible ones
            rec.score.observe(float(told[self._metric]),
                              told.get(resource_attr) if resource_attr is not None else None, self._mode)
        if decision is Decision.PAUSE:
            rec.status = _PAUSED
        elif decision is Decision.STOP:
            rec.status = _STOPPED
        self._maybe_snapshot()
        return decision

    def complete(self, trial_id: int) -> None:
        """The running trial ``trial_id`` ended on its own (it reached its maximum resource, or
        your loop has nothing more to train) after its last result was told.

        Raises:
            UserError: an unknown trial, one not running, or one without any result told (tell
                its result first, or :meth:`fail` it).
        """
        self._check_open()
        rec = self._running(trial_id, "complete")
        if rec.n_results == 0:
            raise UserError(f"complete(trial {trial_id}): no result of it was told; tell(trial_id, "
                            f"{{'{self._metric}': ...}}) first, or fail({trial_id}) it")
        self._to_restart.pop(trial_id, None)
        self.scheduler.on_complete(rec.trial, rec.last_result)
        rec.status = _COMPLETED
        self._log({"event": LogKind.TRIAL_COMPLETE.value, "trial_id": trial_id})
        self._maybe_snapshot()

    def fail(self, trial_id: int, error: str = "failed") -> None:
        """The running trial ``trial_id`` failed (``error``: why, shown by ``tunebench show``);
        the method will not hear of it again.

        Raises:
            UserError: an unknown trial or one not running.
        """
        self._check_open()
        rec = self._running(trial_id, "fail")
        self._to_restart.pop(trial_id, None)
        self.scheduler.on_error(rec.trial)
        rec.status, rec.error = _FAILED, str(error)
        self._log({"event": LogKind.TRIAL_FAIL.value, "trial_id": trial_id, "error": str(error)})
        self._maybe_snapshot()

    # -- what is known --------------------------------------------------------------------------

    @property
    def trials(self) -> dict[int, TrialInfo]:
        """Every trial asked so far, by id in order of start, with its status."""
        return {tid: TrialInfo(tid, rec.trial.config, rec.status, rec.n_results, rec.score.best, rec.last_result,
                               rec.error) for tid, rec in self._trials.items()}

    @property
    def n_results(self) -> int:
        """Results decided on so far."""
        return self._n_results

    def standings(self, k: int | None = None) -> list[Standing]:
        """The trials with a result, best first (the ``k`` first): the rule of
        :func:`tunebench.events.rank_trials`, the one ``tunebench show`` follows."""
        return rank_scored(((rec.trial, rec.status, rec.score) for rec in self._trials.values()), self._mode,
                           self._max_resource_attr, k)

    @property
    def best(self) -> Standing | None:
        """The best trial so far (the first of :meth:`standings`; None before the first result):
        the best among the trials that reached their maximum resource when any did, else the
        best at the highest resource reached."""
        top = self.standings(1)
        return top[0] if top else None

    # -- persistence ----------------------------------------------------------------------------

    def pareto_front(self) -> list[TrialInfo]:
        """The trials of the Pareto front, best first in the first metric: the feasible,
        non-dominated ones by their last told result (the rule of
        :meth:`tunebench.store.Experiment.pareto_front`). With one metric, the best trial (ties
        included)."""
        members, _ = pareto_members(
            ((tid, rec.trial.config, rec.last_result) for tid, rec in self._trials.items()
             if rec.last_result is not None),
            self.scheduler.objectives, self._constraints, self._resource_attr, self._max_resource_attr)
        trials = self.trials
        return [trials[tid] for tid, _, _ in members]

    def state_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot of everything (the method's state and every trial), for
        :meth:`load_state_dict` on an :class:`AskTell` built with the same arguments and no
        ``experiment_dir``. (With an ``experiment_dir``, the folder is the state: :meth:`load`.)"""
        return {
            "scheduler": self.scheduler.state_dict(),
            "next_trial_id": self._next_trial_id,
            "n_results": self._n_results,
            "trials": [
                {"trial_id": tid, "config": rec.trial.config, "status": rec.status.value, "n_results": rec.n_results,
                 "last_result": rec.last_result, "last_resource": rec.last_resource, "error": rec.error,
                 "score": [rec.score.best, rec.score.best_resource, rec.score.reached]}
                for tid, rec in self._trials.items()
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (trials running then are running again: tell their
        results).

        Raises:
            UserError: this :class:`AskTell` logs to an experiment folder (continue one with
                :meth:`load`), or ``state`` is not a :meth:`state_dict`.
        """
        if self._store is not None:
            raise UserError(f"this AskTell logs to {self.experiment_dir}: continue a logged experiment with "
                            f"AskTell.load({str(self.experiment_dir)!r}), not load_state_dict")
        try:
            self.scheduler.load_state_dict(state["scheduler"])
            trials: dict[int, TrialRecord] = {}
            for t in state["trials"]:
                best, best_resource, reached = t["score"]
                trials[t["trial_id"]] = TrialRecord(
                    Trial(t["trial_id"], t["config"]), status=Status(t["status"]), last_resource=t["last_resource"],
                    last_result=t["last_result"], n_results=t["n_results"], error=t["error"],
                    score=TrialScore(best, best_resource, reached))
            self._next_trial_id = state["next_trial_id"]
            self._n_results = state["n_results"]
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"load_state_dict: not a state_dict of AskTell ({type(e).__name__}: {e})") from e
        self._trials = trials
        self._to_restart.clear()

    def close(self) -> None:
        """End this session: trials still running are logged as interrupted (they are handed
        out again by the :meth:`ask` of a later :meth:`load`), the scheduler is snapshotted, the
        log closed and the folder's lock released. Nothing more may be asked or told; called by
        ``with AskTell(...) as at:`` at its end. Does nothing a second time, or without an
        ``experiment_dir``."""
        if self._closed:
            return
        self._closed = True
        store = self._store
        if store is None:
            return
        try:
            for tid, rec in self._trials.items():
                if rec.status is _RUNNING:
                    self._log({"event": LogKind.TRIAL_INTERRUPT.value, "trial_id": tid, "reason": "closed"})
            store.save_scheduler_state(self.scheduler.state_dict())
            self._log({"event": LogKind.EXPERIMENT_END.value, "reason": "closed"})
        finally:
            self._store = None
            store.close()

    def __enter__(self) -> AskTell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside ---------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise UserError("this AskTell is closed; continue its experiment with AskTell.load(experiment_dir)")

    def _running(self, trial_id: int, call: str) -> TrialRecord:
        rec = self._trials.get(trial_id) if type(trial_id) is int else None
        if rec is None:
            raise UserError(f"{call}({trial_id!r}): no such trial; pass the trial_id of a trial ask() handed out "
                            f"(0 to {self._next_trial_id - 1})" if self._next_trial_id else
                            f"{call}({trial_id!r}): no trial was asked yet; call ask() first")
        if rec.status is not _RUNNING:
            raise UserError(f"{call}(trial {trial_id}): the trial is {rec.status.value}, not running; "
                            + ("wait for ask() to resume it" if rec.status is _PAUSED else "it is over")
                            + ", and run only the trials ask() hands out")
        return rec

    def _apply(self, suggestion: Suggestion, suggest_id: int, resume_only: bool) -> AskedTrial:
        """Record and log the scheduler's ``suggestion`` (as the tuner's ``_apply_suggestion``)."""
        tid = suggestion.resume_trial_id
        if tid is not None:
            rec = self._trials.get(tid)
            if rec is None or rec.status is not _PAUSED:
                raise RuntimeError(f"the method {self.method} asked to resume trial {tid}, which is not paused")
            source = suggestion.checkpoint_trial_id
            event: dict[str, Any] = {"event": LogKind.TRIAL_RESUME.value, "trial_id": tid, "suggest_id": suggest_id,
                                     "config": suggestion.config}
            if source is not None:
                src = self._trials.get(source)
                if src is None or src.last_result is None:
                    raise RuntimeError(f"the method {self.method} asked trial {tid} to take the checkpoint of "
                                       f"trial {source}, which has no result")
                new = rec.trial.config if suggestion.config is None else suggestion.config
                event["exploit"] = {"source": source, "resource": src.last_resource,
                                    "changes": {k: [rec.trial.config.get(k), v] for k, v in new.items()
                                                if rec.trial.config.get(k) != v}}
                rec.last_resource = src.last_resource  # it goes on from the source's resource
            if suggestion.config is not None:
                rec.trial = Trial(tid, suggestion.config)
            rec.status = _RUNNING
            rec.relaunched = True
            if resume_only:
                event["resume_only"] = True
            self._log(event)
            return AskedTrial(tid, rec.trial.config, resumed=True, checkpoint_from=source)
        if resume_only:
            raise RuntimeError(f"the method {self.method}'s suggest_resume started a new trial")
        assert suggestion.config is not None  # a Suggestion that is no resume has a config (checked at creation)
        trial = Trial(suggest_id, suggestion.config)
        self._next_trial_id = suggest_id + 1
        self._log({"event": LogKind.TRIAL_START.value, "trial_id": suggest_id, "config": trial.config})
        self._trials[suggest_id] = TrialRecord(trial)
        return AskedTrial(suggest_id, trial.config)

    def _ignore(self, rec: TrialRecord, result: Result, reason: str, *, warn: bool, restart: bool = False) -> None:
        """Log a result of a running trial that is not decided on (as the tuner's ``_ignore``)."""
        tid = rec.trial.trial_id
        event: dict[str, Any] = {"event": LogKind.RESULT_IGNORED.value, "trial_id": tid, "result": result,
                                 "offset": None, "reason": reason}
        if restart:
            event["restart"] = True
        self._log(event)
        if warn and not rec.warned_repeat:
            rec.warned_repeat = True
            logger.warning("trial %d: %s: ignored (tell each %s once, up to its maximum; further ones of this "
                           "trial are ignored without a word)", tid, reason, self._resource_attr)

    def _log(self, event: dict[str, Any]) -> None:
        if self._store is not None:
            event["time"] = self._time_offset + time.monotonic() - self._t0
            self._store.append(event)

    def _maybe_snapshot(self) -> None:
        if self._store is not None and time.monotonic() - self._last_snapshot >= self.snapshot_interval:
            self._store.save_scheduler_state(self.scheduler.state_dict())
            self._last_snapshot = time.monotonic()

    def _restore(self, events: list[dict[str, Any]], snapshot: tuple[int, dict[str, Any]] | None,
                 restart_running: bool) -> None:
        """Rebuild the scheduler and the trials from the log (as the tuner's resume)."""
        logged = restore(self.scheduler, events, snapshot, self.experiment_dir or "")
        for tid, ts in logged.trials.items():
            self._trials[tid] = TrialRecord(ts.trial, status=ts.status, last_result=ts.last_result,
                                            n_results=ts.n_results, error=ts.error)
        resource_attr = self._resource_attr
        for ev in logged.results:
            rec = self._trials[ev["trial_id"]]
            result = ev["result"]
            resource = result.get(resource_attr) if resource_attr is not None else None
            if resource is not None:
                rec.last_resource = resource
            if not self._constraints or is_feasible(result, self._constraints, ev["trial_id"]):
                rec.score.observe(float(result[self._metric]), resource, self._mode)
        for tid, ts in logged.trials.items():
            if ts.exploit is not None and ts.n_results == ts.exploit_n_results:
                self._trials[tid].last_resource = ts.exploit["resource"]  # goes on from its source's
        self._next_trial_id = logged.next_trial_id
        self._n_results = logged.n_results
        self._time_offset = logged.time
        self._t0 = time.monotonic()
        for tid, rec in self._trials.items():
            if rec.status is _RUNNING and restart_running:
                self._to_restart[tid] = None
        logger.info("loaded %s: %d trials, %d results, %d running to hand out again", self.experiment_dir,
                    len(self._trials), self._n_results, len(self._to_restart))


def _plain(value: Any) -> Any:
    """A told value as JSON writes it: a numpy (or other) integer or real scalar as a Python
    ``int`` or ``float``; anything else as is."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value
