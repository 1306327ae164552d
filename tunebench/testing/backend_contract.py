"""Contract test suite for backends (plain functions; pytest is not needed).

Usage, in a test module::

    from tunebench.testing.backend_contract import CONTRACT_CHECKS, CONTRACT_SCRIPT, script_workload

    @pytest.fixture
    def make(tmp_path):
        script = tmp_path / "contract_script.py"
        script.write_text(CONTRACT_SCRIPT)
        return lambda: script_workload(MyBackend(script=script), tmp_path / "trials")

    @pytest.mark.parametrize("check", CONTRACT_CHECKS.values(), ids=CONTRACT_CHECKS.keys())
    def test_contract(check, make):
        check(make)

or simply ``check_backend_contract(make)``, which runs every check. ``make()`` must build a fresh
backend (each check shuts its backend down) and say, in a :class:`ContractWorkload`, which trials
it can run: one that reports a few results and completes, one that runs longer than any check
waits (the checks pause, resume and stop it), and one that fails. A backend that runs training
scripts runs :data:`CONTRACT_SCRIPT` (:func:`script_workload` describes its trials); a simulated
backend runs a blackbox (its trials are configurations of it).

The checks drive the backend through its public methods only (``start``, ``pause``, ``resume``,
``stop``, ``poll``, ``shutdown``, ``n_busy``), polling until the events they wait for have come
(a generous real-time :attr:`ContractWorkload.patience` only keeps a broken backend from hanging
the suite). Contract checked (see each ``check_*``), after every call:

* every event names a started trial; per trial, its results come before its final event
  (COMPLETED, FAILED, PAUSED, STOPPED) and nothing comes after a final event, until a
  ``resume`` of a paused trial; PAUSED only after ``pause``, STOPPED only after ``stop`` (or
  ``shutdown``), COMPLETED/FAILED only for a trial that was asked neither;
* a result is a dict holding the resource; for backends with trial folders, every result
  carries the byte offset just after its line in the trial's results file, increasing over the
  whole trial (resumes included), and that line is the result;
* ``n_busy`` lies between the trials running that were not asked to end and the trials whose
  final event has not come yet (a backend may free a worker as soon as it is asked to end);
* a trial that completes reports its resource levels in order, then COMPLETED;
* pause -> PAUSED; resume -> results go on from the level after the last one reported (none
  repeated, none lost), through repeated pause/resume cycles;
* stop -> STOPPED and nothing more; ``stop`` of a stopped trial is a no-op; ``stop`` of a paused
  trial -> STOPPED (with the next polls);
* a failing trial ends FAILED with a non-empty error text;
* ``shutdown`` twice is safe; trials running at shutdown end STOPPED (reported by a later
  ``poll``), paused ones report nothing more.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tunebench.backends.base import RESULTS_FILENAME, Backend
from tunebench.types import Config, Event, EventKind, Trial

__all__ = [
    "CONTRACT_CHECKS",
    "CONTRACT_SCRIPT",
    "ContractDriver",
    "ContractWorkload",
    "check_backend_contract",
    "check_busy_count",
    "check_completes",
    "check_concurrent_trials",
    "check_failure",
    "check_pause_resume",
    "check_shutdown",
    "check_stop",
    "check_stop_paused",
    "script_workload",
]

FINAL_KINDS = (EventKind.COMPLETED, EventKind.FAILED, EventKind.PAUSED, EventKind.STOPPED)

#: A training script for backends that run scripts: reports ``epoch`` = 1..``--epochs`` (a
#: checkpoint saved with each), sleeping ``--sleep`` seconds before each; resumes after its last
#: checkpointed epoch; raises at epoch ``--fail_at``. On SIGTERM it ends at the next epoch
#: boundary, so a pause never falls between a checkpoint and its report: a resumed run goes on
#: exactly where the paused one stopped.
CONTRACT_SCRIPT = '''\
import argparse
import signal
import sys
import time

from tunebench import load_checkpoint, report, save_checkpoint

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--fail_at", type=int, default=0)
args = parser.parse_args()
asked_to_end = []
signal.signal(signal.SIGTERM, lambda *_: asked_to_end.append(True))
state = load_checkpoint() or {"epoch": 0}
for epoch in range(state["epoch"] + 1, args.epochs + 1):
    time.sleep(args.sleep)
    if asked_to_end:
        sys.exit(0)
    if epoch == args.fail_at:
        raise RuntimeError(f"deliberate failure at epoch {epoch}")
    save_checkpoint({"epoch": epoch})
    report(epoch=epoch, loss=1.0 / epoch)
'''


@dataclass
class ContractWorkload:
    """A backend under test and the trials it can run (built by the ``make()`` of a test).

    Attributes:
        backend: a fresh backend (the check shuts it down).
        resource_attr: the key under which results report the resource level.
        finite_config: a trial that reports :attr:`finite_levels`, in order, then completes.
        finite_levels: the resource levels of :attr:`finite_config` (at least one).
        endless_config: a trial that runs longer than any check waits for it (the checks pause,
            resume and stop it after a few results).
        endless_levels: the first resource levels :attr:`endless_config` reports, in order (at
            least 8).
        failing_config: a trial that ends FAILED (it may report results first).
        trial_root: where the checks make trial folders (``backend.uses_trial_dirs``); one
            subfolder per call of ``make()``.
        poll_timeout: the ``timeout`` of each ``poll`` (seconds of the backend's clock: simulated
            seconds for a simulator).
        patience: real seconds a check waits for an event before it gives up (only so that a
            broken backend cannot hang the suite; never a measure of speed).
    """

    backend: Backend
    resource_attr: str
    finite_config: Config
    finite_levels: Sequence[Any]
    endless_config: Config
    endless_levels: Sequence[Any]
    failing_config: Config
    trial_root: Path | None = None
    poll_timeout: float = 1.0
    patience: float = 120.0


def script_workload(backend: Backend, trial_root: Path, *, sleep: float = 0.05, resource_attr: str = "epoch",
                    **kwargs: Any) -> ContractWorkload:
    """The :class:`ContractWorkload` of a backend running :data:`CONTRACT_SCRIPT` (the config's
    entries become ``--name value`` arguments); ``sleep``: seconds per epoch of the endless
    trial; ``kwargs`` go to :class:`ContractWorkload` (``poll_timeout``, ``patience``)."""
    return ContractWorkload(
        backend=backend,
        resource_attr=resource_attr,
        finite_config={"epochs": 3},
        finite_levels=[1, 2, 3],
        endless_config={"epochs": 10**9, "sleep": sleep},
        endless_levels=list(range(1, 101)),
        failing_config={"epochs": 5, "fail_at": 2},
        trial_root=trial_root,
        **kwargs,
    )


_MakeWorkload = Callable[[], ContractWorkload]
_N_WORKLOADS = [0]  # subfolder counter: trial folders of successive make() calls never collide


@dataclass
class _TrialLog:
    config: Config
    folder: Path | None
    state: str = "running"  #: running, pausing, stopping, paused, ended
    events: list[Event] = field(default_factory=list)
    runs: list[list[Any]] = field(default_factory=lambda: [[]])  #: resource levels per run
    last_offset: int = -1


class ContractDriver:
    """Drives one backend through its public methods, checking the contract on every call.

    Each trial's events are kept in :attr:`trials`; every call re-checks ``n_busy``.
    """

    def __init__(self, workload: ContractWorkload) -> None:
        self.w = workload
        self.backend = workload.backend
        self.trials: dict[int, _TrialLog] = {}
        root = workload.trial_root
        if self.backend.uses_trial_dirs:
            assert root is not None, "the backend uses trial folders: the workload needs a trial_root"
            _N_WORKLOADS[0] += 1
            root = Path(root) / f"backend{_N_WORKLOADS[0]}"
        self.root = root

    # -- calls ---------------------------------------------------------------------------------

    def start(self, trial_id: int, config: Config) -> None:
        assert trial_id not in self.trials
        folder = None
        if self.backend.uses_trial_dirs:
            assert self.root is not None
            folder = self.root / str(trial_id)
            folder.mkdir(parents=True)
        self.trials[trial_id] = _TrialLog(dict(config), folder)
        self.backend.start(Trial(trial_id, dict(config)), folder)
        self.check_busy(f"start({trial_id})")

    def pause(self, trial_id: int) -> None:
        log = self.trials[trial_id]
        assert log.state == "running", f"the check pauses trial {trial_id} only while it runs ({log.state})"
        log.state = "pausing"
        self.backend.pause(trial_id)
        self.check_busy(f"pause({trial_id})")

    def resume(self, trial_id: int) -> None:
        log = self.trials[trial_id]
        assert log.state == "paused", f"the check resumes trial {trial_id} only once it is paused ({log.state})"
        log.state = "running"
        log.runs.append([])
        self.backend.resume(trial_id)
        self.check_busy(f"resume({trial_id})")

    def stop(self, trial_id: int) -> None:
        log = self.trials[trial_id]
        if log.state in ("running", "pausing", "paused"):
            log.state = "stopping"
        self.backend.stop(trial_id)
        self.check_busy(f"stop({trial_id})")

    def shutdown(self) -> None:
        for log in self.trials.values():
            if log.state == "running":  # a trial being paused still ends PAUSED
                log.state = "stopping"
        self.backend.shutdown()

    def poll(self) -> list[Event]:
        events = self.backend.poll(self.w.poll_timeout)
        assert isinstance(events, list), f"poll() returned {type(events).__name__}, not a list"
        for event in events:
            self._record(event)
        self.check_busy("poll()")
        return events

    def poll_until(self, done: Callable[[], bool], what: str) -> None:
        """Poll until ``done()`` holds; AssertionError (naming ``what``) after ``patience``
        real seconds without it."""
        give_up = time.monotonic() + self.w.patience
        while not done():
            assert time.monotonic() < give_up, (
                f"waited {self.w.patience:g} s for {what}; events so far: {self.describe()}")
            self.poll()

    def drain(self, n_polls: int = 3) -> None:
        """A few more polls: whatever they return is checked (nothing may follow a final event)."""
        for _ in range(n_polls):
            self.poll()

    # -- what happened -------------------------------------------------------------------------

    def levels(self, trial_id: int) -> list[Any]:
        """Resource levels trial ``trial_id`` reported, in order, over all its runs."""
        return [level for run in self.trials[trial_id].runs for level in run]

    def n_results(self, trial_id: int) -> int:
        return len(self.levels(trial_id))

    def final(self, trial_id: int) -> Event | None:
        """The trial's last final event, if it has one."""
        finals = [e for e in self.trials[trial_id].events if e.kind in FINAL_KINDS]
        return finals[-1] if finals else None

    def final_kind(self, trial_id: int) -> EventKind | None:
        """The kind of the trial's last final event, if it has one."""
        final = self.final(trial_id)
        return None if final is None else final.kind

    def ended(self, trial_id: int) -> Callable[[], bool]:
        return lambda: self.trials[trial_id].state in ("ended", "paused")

    def describe(self) -> str:
        return "; ".join(
            f"trial {tid} ({log.state}): " + ", ".join(
                f"{e.kind.value}" + (f"@{e.result.get(self.w.resource_attr)}" if e.result else "")
                for e in log.events)
            for tid, log in self.trials.items())

    # -- checks on every call ------------------------------------------------------------------

    def check_busy(self, after: str) -> None:
        states = [log.state for log in self.trials.values()]
        low = states.count("running")
        high = low + states.count("pausing") + states.count("stopping")
        busy = self.backend.n_busy
        assert isinstance(busy, int), f"n_busy is {busy!r}, not an int"
        assert low <= busy <= high, (
            f"after {after}: n_busy is {busy}, but {low} trial(s) run and {high} have no final event yet "
            f"(n_busy must lie between); {self.describe()}")

    def _record(self, event: Event) -> None:
        assert isinstance(event, Event), f"poll() returned {event!r}, not an Event"
        assert isinstance(event.kind, EventKind), f"event kind {event.kind!r} is not an EventKind"
        tid = event.trial_id
        log = self.trials.get(tid)
        assert log is not None, f"{event.kind.value} event for trial {tid}, which was never started"
        if log.state in ("ended", "paused"):
            last = self.final(tid)
            raise AssertionError(
                f"trial {tid}: a {event.kind.value} event after its final event "
                f"{last.kind.value if last else '?'} ({self.describe()})")
        log.events.append(event)
        if event.kind is EventKind.RESULT:
            self._check_result(log, event)
            return
        expected = {"running": (EventKind.COMPLETED, EventKind.FAILED), "pausing": (EventKind.PAUSED,),
                    "stopping": (EventKind.STOPPED,)}[log.state]
        assert event.kind in expected, (
            f"trial {tid} ended {event.kind.value} while {log.state}; expected "
            f"{' or '.join(k.value for k in expected)}")
        if event.kind is EventKind.FAILED:
            assert isinstance(event.error, str) and event.error.strip(), (
                f"trial {tid} FAILED without an error text (error={event.error!r})")
        log.state = "paused" if event.kind is EventKind.PAUSED else "ended"

    def _check_result(self, log: _TrialLog, event: Event) -> None:
        tid = event.trial_id
        result = event.result
        assert isinstance(result, dict), f"trial {tid}: a RESULT event whose result is {result!r}, not a dict"
        assert self.w.resource_attr in result, (
            f"trial {tid}: result {result} lacks the resource {self.w.resource_attr!r}")
        log.runs[-1].append(result[self.w.resource_attr])
        if log.folder is None and event.offset is None:
            return
        offset = event.offset
        assert isinstance(offset, int) and not isinstance(offset, bool), (
            f"trial {tid}: a result without its byte offset in the results file (offset={offset!r})")
        assert offset > log.last_offset, (
            f"trial {tid}: result offsets must increase, got {offset} after {log.last_offset}")
        log.last_offset = offset
        if log.folder is not None:
            data = (log.folder / RESULTS_FILENAME).read_bytes()[:offset]
            assert data.endswith(b"\n"), f"trial {tid}: offset {offset} is not at the end of a line of its results file"
            line = data[data.rfind(b"\n", 0, len(data) - 1) + 1:]
            assert json.loads(line) == result, (
                f"trial {tid}: the line ending at offset {offset} of its results file is {line!r}, not the "
                f"result {result}")


# -- checks ------------------------------------------------------------------------------------


def _run(make: _MakeWorkload, body: Callable[[ContractDriver], None]) -> None:
    """Build a backend, run ``body`` on it, shut it down (also when ``body`` fails)."""
    driver = ContractDriver(make())
    try:
        body(driver)
    finally:
        driver.backend.shutdown()


def _has_results(d: ContractDriver, trial_id: int, n: int) -> bool:
    return d.n_results(trial_id) >= n


def check_completes(make: _MakeWorkload) -> None:
    """A trial reports its resource levels in order, then COMPLETED; then nothing more, and the
    backend is idle."""

    def body(d: ContractDriver) -> None:
        d.start(0, d.w.finite_config)
        d.poll_until(d.ended(0), "trial 0 to complete")
        kinds = [e.kind for e in d.trials[0].events]
        n = len(d.w.finite_levels)
        assert kinds == [EventKind.RESULT] * n + [EventKind.COMPLETED], (
            f"expected {n} results then COMPLETED, got {[k.value for k in kinds]}")
        assert d.levels(0) == list(d.w.finite_levels), (
            f"levels reported {d.levels(0)}, expected {list(d.w.finite_levels)}")
        d.drain()
        assert d.backend.n_busy == 0

    _run(make, body)


def check_concurrent_trials(make: _MakeWorkload) -> None:
    """Trials running at once: each one's events in order, whatever the interleaving."""

    def body(d: ContractDriver) -> None:
        d.start(0, d.w.finite_config)
        d.start(1, d.w.endless_config)
        d.start(2, d.w.failing_config)
        d.start(3, d.w.finite_config)
        d.poll_until(lambda: all(d.ended(t)() for t in (0, 2, 3)), "trials 0, 2 and 3 to end")
        assert d.trials[1].state == "running", f"the endless trial ended on its own: {d.describe()}"
        d.poll_until(lambda: d.n_results(1) >= 1, "a result of trial 1")
        d.stop(1)
        d.poll_until(d.ended(1), "trial 1 to stop")
        for tid in (0, 3):
            assert d.levels(tid) == list(d.w.finite_levels), f"trial {tid} reported {d.levels(tid)}"
            assert d.final_kind(tid) is EventKind.COMPLETED
        assert d.final_kind(2) is EventKind.FAILED
        assert d.final_kind(1) is EventKind.STOPPED
        d.drain()
        assert d.backend.n_busy == 0

    _run(make, body)


def check_busy_count(make: _MakeWorkload) -> None:
    """``n_busy`` counts each trial started (1, 2, 3 right after the starts) and falls back to 0
    as their final events come."""

    def body(d: ContractDriver) -> None:
        assert d.backend.n_busy == 0, f"a fresh backend has n_busy={d.backend.n_busy}"
        for tid in range(3):
            d.start(tid, d.w.endless_config)
            assert d.backend.n_busy == tid + 1, f"after {tid + 1} start(s), n_busy is {d.backend.n_busy}"
        d.poll_until(lambda: all(d.n_results(t) >= 1 for t in range(3)), "a result of every trial")
        assert d.backend.n_busy == 3
        for tid in range(3):
            d.stop(tid)
            d.poll_until(d.ended(tid), f"trial {tid} to stop")
            assert d.backend.n_busy == 2 - tid, f"{2 - tid} trial(s) still run, n_busy is {d.backend.n_busy}"

    _run(make, body)


def check_pause_resume(make: _MakeWorkload, *, n_cycles: int = 2, per_run: int = 2) -> None:
    """pause -> PAUSED; resume -> results go on from the next level, none repeated or lost
    (``n_cycles`` pause/resume cycles, ``per_run`` results awaited in each run); then stop."""

    def body(d: ContractDriver) -> None:
        d.start(0, d.w.endless_config)
        for cycle in range(n_cycles + 1):
            target = per_run * (cycle + 1)
            d.poll_until(partial(_has_results, d, 0, target), f"{target} results of trial 0")
            if cycle == n_cycles:
                break
            d.pause(0)
            d.poll_until(d.ended(0), "trial 0 to pause")
            assert d.final_kind(0) is EventKind.PAUSED
            d.drain(1)
            d.resume(0)
        d.stop(0)
        d.poll_until(d.ended(0), "trial 0 to stop")
        levels = d.levels(0)
        expected = list(d.w.endless_levels)[:len(levels)]
        runs = d.trials[0].runs
        assert levels == expected, (
            f"over {len(runs)} runs (pause/resume between them) trial 0 reported {runs}; expected the "
            f"levels {expected} once each, in order")

    _run(make, body)


def check_stop(make: _MakeWorkload) -> None:
    """stop -> STOPPED and nothing more (another ``stop`` is a no-op), while other trials go on."""

    def body(d: ContractDriver) -> None:
        d.start(0, d.w.endless_config)
        d.start(1, d.w.endless_config)
        d.poll_until(lambda: d.n_results(0) >= 1, "a result of trial 0")
        d.stop(0)
        d.poll_until(d.ended(0), "trial 0 to stop")
        assert d.final_kind(0) is EventKind.STOPPED
        d.stop(0)
        seen = d.n_results(1)
        d.poll_until(lambda: d.n_results(1) >= seen + 2, "trial 1 to report on")
        assert d.trials[1].state == "running"
        d.stop(1)
        d.poll_until(d.ended(1), "trial 1 to stop")
        d.drain()
        assert d.backend.n_busy == 0

    _run(make, body)


def check_stop_paused(make: _MakeWorkload) -> None:
    """``stop`` of a paused trial ends it for good: STOPPED comes with the next ``poll``s (at the
    latest by the time another trial, started just before, completes)."""

    def body(d: ContractDriver) -> None:
        d.start(0, d.w.endless_config)
        d.poll_until(lambda: d.n_results(0) >= 1, "a result of trial 0")
        d.pause(0)
        d.poll_until(d.ended(0), "trial 0 to pause")
        d.start(1, d.w.finite_config)
        d.stop(0)
        d.poll_until(d.ended(1), "trial 1 to complete")
        assert d.final_kind(0) is EventKind.STOPPED, (
            f"stop() of the paused trial 0: no STOPPED event by the time trial 1 completed ({d.describe()})")
        d.drain()
        assert d.backend.n_busy == 0

    _run(make, body)


def check_failure(make: _MakeWorkload) -> None:
    """A failing trial ends FAILED with a non-empty error text; nothing follows."""

    def body(d: ContractDriver) -> None:
        d.start(0, d.w.failing_config)
        d.poll_until(d.ended(0), "trial 0 to fail")
        final = d.final(0)
        assert final is not None and final.kind is EventKind.FAILED
        d.drain()
        assert d.backend.n_busy == 0

    _run(make, body)


def check_shutdown(make: _MakeWorkload) -> None:
    """``shutdown`` twice is safe (also on a backend that ran nothing); a trial running at
    shutdown ends STOPPED, reported by a later ``poll``; a paused one reports nothing more."""
    idle = make().backend
    for call in ("first", "second"):
        try:
            idle.shutdown()
        except Exception as exc:
            raise AssertionError(f"the {call} shutdown() of a backend that ran nothing raised {exc!r}") from exc

    def body(d: ContractDriver) -> None:
        d.start(0, d.w.endless_config)
        d.start(1, d.w.endless_config)
        d.poll_until(lambda: d.n_results(0) >= 1 and d.n_results(1) >= 1, "a result of trials 0 and 1")
        d.pause(1)
        d.poll_until(d.ended(1), "trial 1 to pause")
        for call in ("first", "second"):
            try:
                d.shutdown()
            except Exception as exc:
                raise AssertionError(f"the {call} shutdown() raised {exc!r}") from exc
        d.poll_until(d.ended(0), "the STOPPED event of trial 0, running at shutdown")
        assert d.final_kind(0) is EventKind.STOPPED
        d.drain()
        assert d.backend.n_busy == 0, f"n_busy is {d.backend.n_busy} after shutdown"

    _run(make, body)


#: name -> check, each called as ``check(make)``
CONTRACT_CHECKS: dict[str, Callable[[_MakeWorkload], None]] = {
    "completes": check_completes,
    "concurrent_trials": check_concurrent_trials,
    "busy_count": check_busy_count,
    "pause_resume": check_pause_resume,
    "stop": check_stop,
    "stop_paused": check_stop_paused,
    "failure": check_failure,
    "shutdown": check_shutdown,
}


def check_backend_contract(make: _MakeWorkload) -> None:
    """Run every check of :data:`CONTRACT_CHECKS`; raises ``AssertionError`` on the first failure."""
    for check in CONTRACT_CHECKS.values():
        check(make)
