"""Synchronous Hyperband and synchronous successive halving.

Li, Jamieson, DeSalvo, Rostamizadeh, Talwalkar: "Hyperband: A Novel Bandit-Based Approach to
Hyperparameter Optimization", JMLR 18(185), 2018, Algorithms 1 and 3.

The resource levels are ``grace_period * eta**k`` below ``max_t``, then ``max_t`` (e.g. 1, 3, 9,
27 for ``max_t=27``, ``eta=3``). Bracket ``b`` (``b = 0`` has every level) starts
``n_b = ceil(S / (S - b) * eta**(S - 1 - b))`` trials at level ``b`` (``S`` = number of levels)
and keeps the best ``floor(n_b / eta**k)`` at its ``k``-th rung. For ``max_t=27, eta=3``::

    bracket 0: 27 trials at 1 -> 9 at 3 -> 3 at 9 -> 1 at 27
    bracket 1: 12 trials at 3 -> 4 at 9 -> 1 at 27
    bracket 2:  6 trials at 9 -> 2 at 27
    bracket 3:  4 trials at 27

*Synchronous*: a trial reaching its rung level is paused (``Decision.PAUSE``); the best of a
rung are promoted (``Suggestion.resume``, best first; the backend resumes from the checkpoint)
only once **every** trial of the rung has reported there or failed (a failed trial counts as the
worst). Until then :meth:`SynchronousHyperband.suggest` answers ``None`` and workers idle.
Trials that are not promoted stay paused and are never resumed.

Brackets run one after another, in the order 0, 1, ..., ``brackets - 1``, then again from 0 (a
new Hyperband iteration). The last rung of a bracket (at ``max_t``) needs no synchronization
(nothing is promoted from it): as soon as all its trials are launched, the next bracket starts
filling the free workers while they run to the end.

New configurations come from any :class:`~tunebench.searchers.base.Searcher` (random search:
SyncHB; the KDE searcher: SyncBOHB; a GP: SyncMOBSTER). The searcher gets ``on_result`` for
every result, ``on_stop(paused=True)`` when a trial is paused at a rung, ``on_resume`` when it
is promoted, and ``on_complete`` / ``on_error``. A searcher that runs out (a finite grid)
leaves its first rung incomplete: the run ends there, with the rung's trials paused.

**Small budgets.** Once no new trial may start (the tuner's ``max_trials`` are all started,
signalled by :meth:`~SynchronousBracketScheduler.suggest_resume`), the first rung of the
current bracket cannot fill up. As soon as every trial launched there has reported (or failed,
or ended), the rung closes with the ``m`` trials it has, and the bracket goes on with its
planned proportions: rung ``k`` of a bracket planned ``n_0, n_1, ...`` gets
``max(1, floor(n_k * m / n_0))`` trials (``27 -> 9 -> 3 -> 1`` cut at 14 trials gives
``14 -> 4 -> 1 -> 1``), so the best trial of the bracket still reaches ``max_t``. Only
promotions (resumes) are handed out then; a job that would need a new trial ends the run.
With an unlimited budget nothing changes.

:class:`SynchronousBracketScheduler` holds the bracket bookkeeping shared with DEHB
(:mod:`tunebench.schedulers.dehb`), which fills the rungs its own way.

Cost: per result a few dictionary operations; per promotion a sort of one rung.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from tunebench.fidelity import FidelityLadder, hyperband_brackets
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import metric_and_resource, metric_to_minimize, result_resource
from tunebench.searchers.base import Searcher
from tunebench.types import Decision, Result, Status, Suggestion, Trial, to_minimize

logger = logging.getLogger(__name__)

__all__ = [
    "SynchronousBracketScheduler",
    "SynchronousHyperband",
    "SynchronousSuccessiveHalving",
    "hyperband_brackets",
]

_CONTINUE = Decision.CONTINUE
_PAUSE = Decision.PAUSE
_STOP = Decision.STOP
_RUNNING = Status.RUNNING
_PAUSED = Status.PAUSED
_STOPPED = Status.STOPPED
_COMPLETED = Status.COMPLETED
_FAILED = Status.FAILED


class _SyncTrial:
    __slots__ = ("bracket", "level", "last", "status")

    def __init__(self, bracket: int, level: int):
        self.bracket = bracket  #: number (1, 2, ...) of the bracket it was last launched in
        self.level = level  #: index of the level it runs to (its rung)
        self.last: float = -math.inf  #: last resource seen
        self.status = _RUNNING


class SynchronousBracketScheduler(Scheduler):
    """Bookkeeping of synchronous Hyperband brackets; subclasses decide what fills a rung.

    The current bracket has a current rung with ``to_launch`` jobs still to hand out and the
    *members* launched so far (trial id -> value at the rung, ``None`` until reported). When no
    job is left and every member has reported (or failed, or ended), the rung closes:
    :meth:`_next_rung_jobs` prepares the next rung, or the next bracket opens. The last rung
    of a bracket never closes: the next bracket opens as soon as its last job is launched.

    Subclasses implement :meth:`_launch` (hand out one job of the current rung) and
    :meth:`_next_rung_jobs`, and may override :meth:`_record` (a trial's value at its rung) and
    :meth:`_rung_decision` (PAUSE or STOP below ``max_t``).

    Args:
        resource_attr: name of the reported resource (e.g. ``"epoch"``), increasing within a trial.
        max_t: resource at which a trial ends (the last level of every bracket). A result with
            resource ``>= max_t`` gets STOP unless ``max_resource_attr`` is set (then the
            script ends by itself and the trial ends *completed*).
        grace_period: smallest level (resource of the first rung of bracket 0).
        reduction_factor: ``eta``: a rung keeps its best ``1/eta``.
        brackets: how many brackets an iteration has (bracket 0, 1, ... in turn); ``"all"``
            or ``None``: every bracket (number of levels); capped at that number.
        max_resource_attr: name of the config entry the script reads its maximum resource
            from (e.g. ``"epochs"``).

    Raises:
        ValueError: invalid arguments (the message names the argument).
    """

    resource_attr: str  #: always set (a constructor argument): narrows the base class's ``str | None``

    def __init__(
        self,
        *,
        resource_attr: str,
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        brackets: int | Literal["all"] | None = "all",
        max_resource_attr: str | None = None,
    ):
        if not resource_attr or not isinstance(resource_attr, str):
            raise ValueError(f"resource_attr must be the name of the reported resource, got {resource_attr!r}")
        ladder = FidelityLadder.geometric(max_t, grace_period, reduction_factor, brackets=brackets)
        levels: list[float] = ladder.levels
        S = len(levels)
        brackets = ladder.brackets
        #: the validated fidelity ladder (levels and brackets)
        self.ladder = ladder
        self.resource_attr = resource_attr
        self.max_resource_attr = max_resource_attr
        self.max_t = max_t
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.brackets = brackets
        #: resource levels, ``max_t`` last
        self.levels = levels
        #: rung sizes of each bracket (see :func:`hyperband_brackets`)
        self.bracket_sizes = ladder.bracket_sizes()
        self._stop_at_max_t = max_resource_attr is None
        self._last_level = S - 1
        self._trials: dict[int, _SyncTrial] = {}
        # the current bracket: number of brackets opened so far (the first one is open)
        self._bracket_count = 1
        self._rung = 0
        self._to_launch = self.bracket_sizes[0][0]
        self._members: dict[int, float | None] = {}
        self._waiting = 0  #: members that have not reported yet
        #: trials the first rung of the current bracket got when it was closed short (no new
        #: trial may start), or None: the later rungs keep the planned proportions of that number
        self._cut: int | None = None

    # -- introspection ----------------------------------------------------------------------

    def bracket_table(self, bracket: int) -> list[tuple[int, float]]:
        """``(number of trials, resource level)`` of each rung of ``bracket``, e.g. bracket 0
        of ``max_t=27, eta=3``: ``[(27, 1), (9, 3), (3, 9), (1, 27)]``."""
        sizes = self.bracket_sizes[bracket]
        return [(n, self.levels[bracket + k]) for k, n in enumerate(sizes)]

    @property
    def current_bracket(self) -> tuple[int, int, int]:
        """``(iteration, bracket, rung)`` being filled now (all counted from 0)."""
        iteration, bracket = divmod(self._bracket_count - 1, self.brackets)
        return iteration, bracket, self._rung

    @property
    def _bracket(self) -> int:
        return (self._bracket_count - 1) % self.brackets

    @property
    def _iteration(self) -> int:
        return (self._bracket_count - 1) // self.brackets

    def trial_level(self, trial_id: int) -> float:
        """The resource level (rung) a known trial runs to, or ran to last."""
        return self.levels[self._trials[trial_id].level]

    # -- hooks ------------------------------------------------------------------------------

    def _launch(self, trial_id: int) -> Suggestion | None:
        """Hand out one job of the current rung (register the trial in ``self._trials`` at
        level ``self._bracket + self._rung``); ``None`` (with no state change) if there is none
        to give now."""
        raise NotImplementedError

    def _next_rung_jobs(self) -> int:
        """Called when the current rung (not the last of its bracket) closes: prepare the jobs
        of the next rung (:meth:`_rung_size` of them) and return how many (0 ends the bracket)."""
        raise NotImplementedError

    def _can_promote_after_cut(self) -> bool:
        """Called when no new trial may start and the current first rung (not the last of its
        bracket) has all its results: whether closing it short now would make the first job
        of the next rung a resume. Must not change the state. Default: no."""
        return False

    def _next_job_is_resume(self) -> bool:
        """Whether the next job of the current rung (``_to_launch > 0``) is the resume of a
        paused trial (a promotion), not a new trial. Must not change the state. Default: no."""
        return False

    def _rung_size(self, rung: int) -> int:
        """Number of jobs of rung ``rung`` of the current bracket: the planned size, scaled down
        to the trials its first rung got if it was closed short (at least one)."""
        sizes = self.bracket_sizes[self._bracket]
        if self._cut is None:
            return sizes[rung]
        return max(1, sizes[rung] * self._cut // sizes[0])

    def _record(self, trial_id: int, st: _SyncTrial, value: float) -> None:
        """Called when a trial reaches its rung level (``value``: metric to minimize, inf for
        NaN), before the decision. Default: nothing."""

    def _rung_decision(self, trial_id: int, st: _SyncTrial) -> Decision:
        """Decision for a trial that reached a rung level below ``max_t``. Default: PAUSE."""
        return _PAUSE

    def _on_stop(self, trial: Trial, paused: bool) -> None:
        """Called after a PAUSE or STOP decision. Default: nothing."""

    def _on_trial_result(self, trial: Trial, result: Result) -> None:
        """Called for every result that is not a re-report. Default: nothing."""

    # -- bracket bookkeeping ----------------------------------------------------------------

    def _open_bracket(self) -> None:
        self._bracket_count += 1
        self._rung = 0
        self._to_launch = self.bracket_sizes[self._bracket][0]
        self._members = {}
        self._waiting = 0
        self._cut = None

    def _report_member(self, trial_id: int, value: float) -> None:
        """A member of the current rung has a value (reported, failed or ended)."""
        members = self._members
        if members.get(trial_id, 0.0) is None:
            members[trial_id] = value
            self._waiting -= 1
            if self._waiting == 0 and self._to_launch == 0:
                self._close_rung()

    def _close_rung(self) -> None:
        n_rungs = len(self.bracket_sizes[self._bracket])
        if self._rung + 1 < n_rungs:
            n_jobs = self._next_rung_jobs()
            if n_jobs > 0:
                self._rung += 1
                self._to_launch = n_jobs
                self._members = {}
                self._waiting = 0
                return
        self._open_bracket()

    # -- contract ---------------------------------------------------------------------------

    def suggest(self, trial_id: int) -> Suggestion | None:
        """Called when a worker is free: the next job of the current rung (a new trial or the
        resume of a promoted one), or ``None`` while the rung's trials are all launched and
        the rung waits for their results (then nothing changes)."""
        if self._to_launch <= 0:
            return None
        suggestion = self._launch(trial_id)
        if suggestion is None:
            return None
        tid = trial_id if suggestion.resume_trial_id is None else suggestion.resume_trial_id
        self._members[tid] = None
        self._waiting += 1
        self._to_launch -= 1
        if self._to_launch == 0 and self._rung == len(self.bracket_sizes[self._bracket]) - 1:
            self._open_bracket()  # the last rung needs no synchronization
        return suggestion

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        """Called when no new trial may start: the next job of the current rung if it is the
        promotion (resume) of a paused trial, else ``None`` (nothing changes). A first rung
        still waiting for new trials is closed short once all the trials launched there have
        reported (see the module docstring), when that promotes a paused trial."""
        if (self._to_launch > 0 and self._rung == 0 and self._waiting == 0 and self._members
                and len(self.bracket_sizes[self._bracket]) > 1 and self._can_promote_after_cut()):
            self._cut = len(self._members)
            self._to_launch = 0
            logger.debug("no new trial may start: bracket %d closes its first rung with %d trials",
                         self._bracket_count - 1, self._cut)
            self._close_rung()
        if self._to_launch <= 0 or not self._next_job_is_resume():
            return None
        return self.suggest(trial_id)

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result of a running trial.

        Returns CONTINUE below the trial's rung level; at the rung level (or past it) PAUSE (or
        what :meth:`_rung_decision` says) below ``max_t``, and at ``max_t`` STOP (without
        ``max_resource_attr``) or CONTINUE (the script ends by itself). A result whose
        resource is not above the last one seen for the trial (re-reported after a restart
        without checkpoint) is ignored: CONTINUE, nothing recorded.

        Raises:
            UserError: the result lacks the metric or the resource.
        """
        tid = trial.trial_id
        value, r = metric_and_resource(result, self.metric, self.mode, self.resource_attr, tid)
        st = self._trials.get(tid)
        if st is None:  # a trial this scheduler did not start
            self._on_trial_result(trial, result)
            if self._stop_at_max_t and r >= self.max_t:
                return _STOP
            return _CONTINUE
        if st.status is not _RUNNING:
            return _PAUSE if st.status is _PAUSED else _STOP
        try:
            if r <= st.last:
                return _CONTINUE  # re-reported after a restart without checkpoint
        except TypeError:
            result_resource(result, self.resource_attr, tid)
            raise
        st.last = r
        self._on_trial_result(trial, result)
        if r < self.levels[st.level]:
            return _CONTINUE
        value = to_minimize(value, self.mode)
        self._record(tid, st, value)
        if st.level == self._last_level or r >= self.max_t:
            if self._stop_at_max_t and r >= self.max_t:
                st.status = _STOPPED
                decision = _STOP
            else:
                decision = _CONTINUE  # the script ends by itself at max_t
        else:
            decision = self._rung_decision(tid, st)
            st.status = _PAUSED if decision is _PAUSE else _STOPPED
        if decision is not _CONTINUE:
            self._on_stop(trial, decision is _PAUSE)
        self._report_member(tid, value)
        return decision

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called once when the trial's script exits normally; if it had not reached its rung
        level, its last value counts there (it can never be promoted)."""
        st = self._trials.get(trial.trial_id)
        if st is not None:
            st.status = _COMPLETED
            value = math.inf
            if result is not None:
                try:
                    value = metric_to_minimize(result, self.metric, self.mode)
                except ValueError:
                    pass
            self._report_member(trial.trial_id, value)

    def on_error(self, trial: Trial) -> None:
        """Called once when the trial failed: it counts as the worst of its rung and is never
        promoted."""
        st = self._trials.get(trial.trial_id)
        if st is not None:
            st.status = _FAILED
            self._report_member(trial.trial_id, math.inf)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot of the bracket bookkeeping and every trial's state."""
        return {
            "bracket_count": self._bracket_count,
            "rung": self._rung,
            "to_launch": self._to_launch,
            "members": [[tid, v] for tid, v in self._members.items()],
            "cut": self._cut,
            "trials": {
                str(tid): [st.bracket, st.level, None if st.last == -math.inf else st.last, st.status.value]
                for tid, st in self._trials.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (taken with the same constructor arguments).

        Raises:
            ValueError: the snapshot does not fit this scheduler's brackets.
        """
        self._bracket_count = int(state["bracket_count"])
        self._rung = int(state["rung"])
        if self._rung >= len(self.bracket_sizes[self._bracket]):
            raise ValueError(
                f"scheduler state is at rung {self._rung} of bracket {self._bracket}, which this scheduler "
                f"does not have: build it with the same arguments"
            )
        self._to_launch = int(state["to_launch"])
        self._members = {int(tid): None if v is None else float(v) for tid, v in state["members"]}
        self._waiting = sum(1 for v in self._members.values() if v is None)
        cut = state.get("cut")  # absent from snapshots written before small budgets were handled
        self._cut = None if cut is None else int(cut)
        self._trials = {}
        for key, (bracket, level, last, status) in state["trials"].items():
            st = _SyncTrial(int(bracket), int(level))
            st.last = -math.inf if last is None else last
            st.status = Status(status)
            self._trials[int(key)] = st


class SynchronousHyperband(SynchronousBracketScheduler):
    """Synchronous Hyperband (see the module docstring): brackets of successive halving in
    turn; each rung waits for all its trials before promoting the best ``1/eta``.

    Args:
        searcher: proposes the configurations of new trials; its ``config_space``, ``metric``
            and ``mode`` are the scheduler's.
        resource_attr: name of the reported resource (e.g. ``"epoch"``), increasing within a trial.
        max_t: resource at which a trial ends (the last rung of every bracket). A result with
            resource ``>= max_t`` gets STOP unless ``max_resource_attr`` is set (then the
            script ends by itself and the trial ends *completed*).
        grace_period: smallest resource level (first rung of bracket 0).
        reduction_factor: ``eta``; a rung promotes its best ``1/eta``.
        brackets: brackets per iteration, run in turn from the most aggressive (bracket 0, every
            level); ``"all"`` or ``None``: every bracket (the number of levels).
        max_resource_attr: name of the config entry the script reads its maximum resource
            from (e.g. ``"epochs"``).

    Raises:
        ValueError: invalid arguments (the message names the argument).
    """

    def __init__(
        self,
        searcher: Searcher,
        *,
        resource_attr: str,
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        brackets: int | Literal["all"] | None = "all",
        max_resource_attr: str | None = None,
    ):
        super().__init__(resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
                         reduction_factor=reduction_factor, brackets=brackets,
                         max_resource_attr=max_resource_attr)
        self._use_searcher(searcher, resource_attr, max_resource_attr)
        # skip the calls when the searcher keeps the base class's no-ops
        cls = type(searcher)
        self._searcher_on_result = None if cls.on_result is Searcher.on_result else searcher.on_result
        self._searcher_on_stop = None if cls.on_stop is Searcher.on_stop else searcher.on_stop
        self._searcher_on_resume = None if cls.on_resume is Searcher.on_resume else searcher.on_resume
        #: trials to resume in the current rung, best first
        self._queue: list[int] = []

    def _launch(self, trial_id: int) -> Suggestion | None:
        level = self._bracket + self._rung
        if self._queue:
            tid = self._queue.pop(0)
            st = self._trials[tid]
            st.status = _RUNNING
            st.level = level
            st.bracket = self._bracket_count
            if self._searcher_on_resume is not None:
                self._searcher_on_resume(tid)
            return Suggestion.resume(tid)
        config = self.searcher.suggest(trial_id)
        if config is None:
            return None
        self._trials[trial_id] = _SyncTrial(self._bracket_count, level)
        return Suggestion.start(config)

    def _next_job_is_resume(self) -> bool:
        return bool(self._queue)

    def _can_promote_after_cut(self) -> bool:
        trials = self._trials
        return any(trials[tid].status is _PAUSED for tid in self._members)

    def _next_rung_jobs(self) -> int:
        trials = self._trials
        candidates = sorted((v, tid) for tid, v in self._members.items()
                            if trials[tid].status is _PAUSED)
        n = self._rung_size(self._rung + 1)
        self._queue = [tid for _, tid in candidates[:n]]
        if self._queue:
            logger.debug("bracket %d rung %d closed: promoting %s", self._bracket_count - 1, self._rung, self._queue)
        return len(self._queue)

    def _on_trial_result(self, trial: Trial, result: Result) -> None:
        if self._searcher_on_result is not None:
            self._searcher_on_result(trial.trial_id, trial.config, result)

    def _on_stop(self, trial: Trial, paused: bool) -> None:
        if self._searcher_on_stop is not None:
            self._searcher_on_stop(trial.trial_id, trial.config, paused)

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called once when the trial's script exits normally (see the base class); tells the
        searcher."""
        super().on_complete(trial, result)
        self.searcher.on_complete(trial.trial_id, trial.config, result)

    def on_error(self, trial: Trial) -> None:
        """Called once when the trial failed (see the base class); tells the searcher."""
        super().on_error(trial)
        self.searcher.on_error(trial.trial_id, trial.config)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot: brackets, trials, promotion queue and the searcher's state."""
        state = super().state_dict()
        state["queue"] = list(self._queue)
        state["searcher"] = self.searcher.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (taken with the same constructor arguments)."""
        super().load_state_dict(state)
        self._queue = [int(t) for t in state["queue"]]
        self.searcher.load_state_dict(state["searcher"])


class SynchronousSuccessiveHalving(SynchronousHyperband):
    """Synchronous successive halving: :class:`SynchronousHyperband` with its most aggressive
    bracket only (every level from ``grace_period``), repeated. Same arguments as
    :class:`SynchronousHyperband`, without ``brackets``."""

    def __init__(self, searcher: Searcher, **kwargs: Any):
        if "brackets" in kwargs:
            raise ValueError("SynchronousSuccessiveHalving has one bracket: do not pass brackets "
                             "(use SynchronousHyperband for several)")
        super().__init__(searcher, brackets=1, **kwargs)
