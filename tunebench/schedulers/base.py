"""The scheduler and searcher contracts (L1).

A **scheduler** decides *when*: which trial to start or resume when a worker frees up, and
whether a running trial continues, pauses or stops after each result.  A **searcher** decides
*what*: the configuration of a new trial.  Schedulers own a searcher, so ASHA + random search,
ASHA + GP (MOBSTER), ASHA + KDE (BOHB) ... are compositions.

Rules every implementation follows (the contract suite in
:mod:`tunebench.testing.scheduler_contract` checks them):

* no sleeping, no I/O, no clock: given its seed and the sequence of calls, a scheduler is
  deterministic, so the simulator and the real backends run the very same code, and the tuner
  can rebuild a scheduler after a crash by loading a state snapshot and replaying the calls
  logged after it;
* :meth:`Scheduler.suggest` returning ``None`` does not change the state;
* ``state_dict()`` is JSON-able (no pickle anywhere), and
  ``load_state_dict(state_dict())`` on a freshly built scheduler with the same constructor
  arguments continues exactly as the original would.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from tunebench.searchers.base import Searcher, check_mode
from tunebench.types import Decision, Objectives, Result, Suggestion, Trial

__all__ = ["Scheduler", "Searcher", "check_mode"]

class Scheduler(ABC):
    """Decides which trials start, continue, pause, resume or stop.

    Attributes every scheduler sets: ``config_space``, ``metric``, ``mode``; multi-fidelity
    schedulers also set ``resource_attr`` (name of the reported resource, e.g. ``"epoch"``) and
    ``max_resource_attr`` (name of the config entry carrying the maximum resource, e.g.
    ``"epochs"``, passed to the script as ``--epochs``).
    """

    config_space: dict[str, Any]
    metric: str
    mode: str
    resource_attr: str | None = None
    max_resource_attr: str | None = None

    @property
    def objectives(self) -> Objectives:
        """Every metric this scheduler decides on, with its mode: ``metric`` and ``mode`` alone,
        unless a multi-objective scheduler overrides this (its ``metric``/``mode`` are then the
        first). Read by the tuner once, to check that each result carries them all."""
        return Objectives((self.metric,), (self.mode,))

    @abstractmethod
    def suggest(self, trial_id: int) -> Suggestion | None:
        """Called each time a worker is free.

        ``trial_id`` is the id the tuner gives the trial if a *new* one is started. Return
        ``Suggestion.start(config)`` for a new trial, ``Suggestion.resume(paused_id)`` to resume a
        paused trial, or ``None`` when there is nothing to run now (then the state must not change).
        """

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        """Called instead of :meth:`suggest` when a worker is free but the tuner may start no
        new trial (its ``max_trials`` are all started): the signal "no more new trials".

        Return ``Suggestion.resume(paused_id)`` if a paused trial is due to go on now (a
        promotion), else ``None`` (then the state must not change). A scheduler that pauses
        must let the trials it started finish their rungs here, as far as its rules allow
        without the arrivals it will no longer get: a rung that waits for more trials to
        decide decides with the trials it has (see each scheduler's rule: synchronous
        brackets close a first rung cut short once all its trials reported; promotion-type
        ASHA promotes the top ``max(1, floor(n / eta))`` of a rung of ``n`` values). The tuner
        calls it again each time a worker frees up, and tuning ends when it answers ``None``
        with no trial running. Default: ``None`` (schedulers that never pause)."""
        return None

    @abstractmethod
    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result of a running trial (in the order they were reported).

        Returns CONTINUE, PAUSE (the tuner stops the process but keeps its checkpoint, and the
        trial may be resumed by a later :meth:`suggest`) or STOP.
        """

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called once when a trial's script exits normally, with its last result. Default: nothing."""

    def on_error(self, trial: Trial) -> None:
        """Called once when a trial fails (crash, timeout, bad report). Default: nothing."""

    def on_restart(self, trial: Trial) -> None:
        """Called when the first result of a resumed or relaunched trial goes back before the last
        resource decided on: its script restarted without a checkpoint and retrains what it had
        trained (those results are ignored, never passed to :meth:`on_result`). A scheduler that
        pauses often may pause less from then on. Called at most once per resume, by the tuner,
        by :class:`~tunebench.ask_tell.AskTell` and when the log is replayed. Default: nothing."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot of the whole state (searcher and RNGs included)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot taken by :meth:`state_dict` on a scheduler built with the same arguments."""

    def _use_searcher(self, searcher: Searcher, resource_attr: str | None, max_resource_attr: str | None) -> None:
        """Take ``config_space``, ``metric`` and ``mode`` from ``searcher`` (for schedulers that
        delegate *what* to run to a searcher)."""
        self.searcher = searcher
        self.config_space = searcher.config_space
        self.metric = searcher.metric
        self.mode = searcher.mode
        self.resource_attr = resource_attr
        self.max_resource_attr = max_resource_attr
