"""The experiment event log (L1 persistence): its kinds, its line format, one reader, one fold.

``events.jsonl`` holds one JSON object per line, appended by the tuner through
:class:`tunebench.store.ExperimentStore`. Every event has ``event`` (a :class:`LogKind` value),
``seq`` (its position in the log, from 0), ``time`` (tuning seconds since the start of the
experiment, earlier sessions included: simulated seconds on the simulator backend) and, in a
simulation, ``real_time``. The other fields depend on the kind (see :class:`LogKind`).

This module owns, once for every reader (resume, :func:`tunebench.store.load_experiment`,
analysis, experiment grids, tabulation):

* the line format: :func:`dumps_line` / :func:`loads_line` (also the format of the results lines
  a training script appends, read by :func:`parse_result_line`);
* the reading rules, in :func:`iter_events` and :func:`read_last_event`: a last line without its
  newline was torn by a crash (the writer died, or is still writing) and is dropped; a complete
  line that is not a JSON object is skipped with a warning;
* the fold of events into the experiment's state (:func:`fold`, :class:`ExperimentState`);
* what a usable event is (:func:`event_problem`), checked by :func:`read_log` for the readers
  that act on a whole log (resume, :func:`tunebench.store.load_experiment`): an event the tuner
  cannot have written (a trial id that is not the next integer, an unknown trial, a missing
  config or result) is an error naming the file and the line, never a traceback;
* resume's replay of the logged scheduler calls into a fresh scheduler (:func:`replay`);
* which trial is the best and how trials rank (:class:`TrialScore`, :class:`Standing`,
  :func:`rank_trials`): the one rule behind the best configuration the tuner prints at its end,
  :class:`tunebench.tuner.TuningResult`, ``load_experiment(p).best()`` / ``.summary()`` and
  ``tunebench show``.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunebench.errors import UserError
from tunebench.types import Config, Decision, Result, Status, Suggestion, Trial, is_number

if TYPE_CHECKING:  # pragma: no cover
    from tunebench.schedulers.base import Scheduler

__all__ = [
    "LogKind", "TrialState", "ExperimentState", "dumps_line", "loads_line", "has_nonfinite", "split_lines",
    "iter_events", "read_last_event", "fold", "replay", "parse_result_line", "TrialScore", "Standing",
    "rank_trials", "rank_scored", "LEADERBOARD_SIZE", "event_problem", "read_log", "restore",
    "RESERVED_RESULT_KEYS", "result_problem", "consumed_offset",
]

logger = logging.getLogger(__name__)

try:  # a fast JSON library (~10x the standard one): the event log is on the simulator's hot path
    import orjson as _orjson

    _NEWLINE = _orjson.OPT_APPEND_NEWLINE
except ImportError:  # pragma: no cover - orjson is a dependency; stay correct without it
    _orjson = None  # type: ignore[assignment]  # a module or None: checked before each use


class LogKind(str, Enum):
    """Kinds of the events of the log (the ``event`` field), with the fields each carries besides
    ``event``, ``seq``, ``time`` and ``real_time``."""

    #: a tuner session began: ``resumed`` (bool)
    SESSION_START = "session_start"
    #: a new trial was suggested and launched: ``trial_id``, ``config``
    TRIAL_START = "trial_start"
    #: a paused trial was suggested again and relaunched: ``trial_id``, ``suggest_id`` (the id
    #: passed to ``suggest``), ``config`` (None: unchanged), ``resume_only`` (True when it came
    #: from ``suggest_resume``; absent otherwise), ``exploit`` (only for a resume from another
    #: trial's checkpoint, PBT's exploit: ``{"source": trial id, "resource": the resource the
    #: source had reached, where this trial goes on, "changes": {name: [old, new]}}``)
    TRIAL_RESUME = "trial_resume"
    #: a trial running when an earlier session ended was relaunched from its checkpoint (no
    #: scheduler call): ``trial_id``, ``offset`` (bytes of its results file already consumed)
    TRIAL_RESTART = "trial_restart"
    #: the scheduler decided on a result: ``trial_id``, ``result``, ``decision`` (a
    #: :class:`~tunebench.types.Decision` value), ``offset`` (absent without a results file)
    RESULT = "result"
    #: reported by a trial being paused; decided on when it resumes: ``trial_id``, ``result``, ``offset``
    RESULT_DEFERRED = "result_deferred"
    #: reported but not decided on: ``trial_id``, ``result``, ``offset``, ``reason``, ``restart``
    #: (only ``True``, on the first report of a resumed trial that went back: its script restarted
    #: without a checkpoint and :meth:`~tunebench.schedulers.base.Scheduler.on_restart` was called)
    RESULT_IGNORED = "result_ignored"
    #: the trial's script exited normally: ``trial_id``
    TRIAL_COMPLETE = "trial_complete"
    #: the trial failed: ``trial_id``, ``error``
    TRIAL_FAIL = "trial_fail"
    #: the tuner stopped a running trial as it ended; it restarts when the experiment resumes:
    #: ``trial_id``, ``reason``
    TRIAL_INTERRUPT = "trial_interrupt"
    #: the session ended: ``reason``
    EXPERIMENT_END = "experiment_end"

    @property
    def key(self) -> bytes:
        """The bytes that announce this kind in a line written by :func:`dumps_line` (compact
        JSON): a cheap test that picks lines to decode."""
        return b'"event":"' + self.value.encode() + b'"'


# plain strings, compared with the ``event`` field of decoded events (faster than the members)
_SESSION_START = LogKind.SESSION_START.value
_TRIAL_START = LogKind.TRIAL_START.value
_TRIAL_RESUME = LogKind.TRIAL_RESUME.value
_TRIAL_RESTART = LogKind.TRIAL_RESTART.value
_RESULT = LogKind.RESULT.value
_RESULT_DEFERRED = LogKind.RESULT_DEFERRED.value
_RESULT_IGNORED = LogKind.RESULT_IGNORED.value
_TRIAL_COMPLETE = LogKind.TRIAL_COMPLETE.value
_TRIAL_FAIL = LogKind.TRIAL_FAIL.value
_TRIAL_INTERRUPT = LogKind.TRIAL_INTERRUPT.value
_EXPERIMENT_END = LogKind.EXPERIMENT_END.value
_RUNNING, _PAUSED, _STOPPED = Status.RUNNING, Status.PAUSED, Status.STOPPED
_COMPLETED, _FAILED = Status.COMPLETED, Status.FAILED


# -- the line format ----------------------------------------------------------------------------


def has_nonfinite(obj: Any) -> bool:
    """True if ``obj`` (JSON-able: dicts, lists, numbers...) holds a NaN or an infinity."""
    if isinstance(obj, float):
        return obj != obj or obj in (math.inf, -math.inf)
    if isinstance(obj, dict):
        return any(has_nonfinite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(has_nonfinite(v) for v in obj)
    return False


def dumps_line(obj: Any) -> bytes:
    """One compact JSON line (with its newline). NaN and infinities are kept as the standard
    library writes them (``NaN``, ``Infinity``), never turned into ``null``."""
    if _orjson is not None:
        # encoded and written one at a time: each encoded line is freed at once and its memory
        # reused (holding a batch of them costs more than encoding them)
        data = _orjson.dumps(obj, option=_NEWLINE)
        # orjson writes non-finite floats as null: redo those rare lines with the standard library
        if b"null" not in data or not has_nonfinite(obj):
            return data
    return (json.dumps(obj, allow_nan=True, separators=(",", ":")) + "\n").encode()


def loads_line(raw: bytes) -> Any:
    """Parse one JSON line written by :func:`dumps_line` (or by ``report``); ValueError if it is
    not JSON."""
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            pass  # NaN/Infinity, or not JSON: the standard library decides
    return json.loads(raw)


def parse_result_line(line: bytes) -> Result | None:
    """The metrics of one line of a trial's results file (written by
    :func:`tunebench.reporting.report`), None for a blank line.

    Called by the backends as they tail a results file, and by the tuner on resume for the lines
    written after the last result it logged. Raises ValueError (its message says what is wrong)
    if the line is not JSON or not a JSON object.
    """
    if not line.strip():
        return None
    result = loads_line(line)  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    if not isinstance(result, dict):
        raise ValueError(f"a JSON {type(result).__name__}, not an object")
    return result


#: keys the tuner adds to results (a result that carries one itself cannot be decided on)
RESERVED_RESULT_KEYS = ("trial_id",)

#: how a result reaches the scheduler -> (its verb, how to give the metric, how to give the resource)
_RESULT_SOURCES = {
    "report": ("reported", "call report({metric}=...) in the script, or pass the metric it reports with --metric",
               "call report({resource}=..., {metric}=...), or pass --resource-attr"),
    "tell": ("told", "pass {{'{metric}': value, ...}} to tell(), or build AskTell with the metric you tell",
             "pass {{'{resource}': ..., '{metric}': ...}} to tell(), or build AskTell with the resource_attr you "
             "tell"),
}


def resource_not_decided(resource: float, last: float | None, top: Any, resource_attr: str,
                         verb: str = "reported") -> tuple[str, str] | None:
    """Why a running trial's result at ``resource`` is logged as ignored instead of decided on:
    ``("repeat", reason)`` when it is not beyond ``last``, the last resource decided on (a
    relaunched trial re-reporting its checkpointed epoch, or one going back); ``("beyond",
    reason)`` past ``top``, the trial's maximum resource from its config (a number; anything else
    sets no maximum). None: decide on it. The one rule of the tuner and of ask/tell, called for
    every result of a method with a resource."""
    if last is not None and resource <= last:
        return "repeat", f"{resource_attr}={resource} already {verb}"
    if is_number(top) and resource > top:
        return "beyond", f"{resource_attr}={resource} beyond the maximum {top}"
    return None


def consumed_offset(current: int, offset: int | None) -> int:
    """A trial's bytes of its results file consumed, after a line that ends at ``offset`` (None:
    a backend without offsets): offsets grow along the file, and a line decided on later (a
    deferred result, at its resume) never moves it back."""
    return current if offset is None else max(current, offset)


def restarted_without_checkpoint(resource: float, last: float | None, relaunched: bool) -> bool:
    """Whether the first result of a resumed or relaunched trial (``relaunched``) goes back before
    ``last``, the last resource decided on: its script started over without its checkpoint (an
    equal one is its checkpointed resource re-reported). The tuner and ask/tell then call
    :meth:`~tunebench.schedulers.base.Scheduler.on_restart` and log the ignored result with
    ``"restart": true``."""
    return relaunched and last is not None and resource < last


def result_problem(result: Result, metric: str | Sequence[str], resource_attr: str | None,
                   source: str = "report") -> str | None:
    """None if the scheduler can decide on ``result``, else what is wrong with it and how to fix it:
    the metric (each of them, when ``metric`` is a sequence: a multi-objective method) is missing
    or not a finite number, the resource (for a method with a ``resource_attr``) is missing or not
    a number, or it carries a key of :data:`RESERVED_RESULT_KEYS`.

    Called by the tuner for each report of a script (``source="report"``) and by
    :meth:`tunebench.ask_tell.AskTell.tell` (``source="tell"``); the fix named fits the source.
    """
    verb, fix_metric, fix_resource = _RESULT_SOURCES[source]
    metrics = (metric,) if isinstance(metric, str) else tuple(metric)
    for metric in metrics:
        if metric not in result:
            shown = {k: v for k, v in result.items() if not k.startswith("_")}
            return f"{verb} {shown} without the metric '{metric}': " + fix_metric.format(metric=metric)
        value = result[metric]
        if not is_number(value):
            return f"{verb} {metric}={value!r}, which is not a number"
        if not math.isfinite(value):
            return f"{verb} {metric}={value}, which is not a finite number"
    if resource_attr is not None:
        resource = result.get(resource_attr)
        if resource is None:
            return (f"{verb} {metric} without the resource '{resource_attr}': "
                    + fix_resource.format(metric=metric, resource=resource_attr))
        if not is_number(resource):
            return f"{verb} {resource_attr}={resource!r}, which is not a number"
    for key in RESERVED_RESULT_KEYS:
        if key in result:
            return f"{verb} the reserved key '{key}'; rename that metric"
    return None


# -- reading ------------------------------------------------------------------------------------


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """``(complete lines without their newlines, torn tail)`` of bytes read from a log at a line
    boundary; the tail is ``b""`` when ``data`` ends with a newline (or is empty)."""
    lines = data.split(b"\n")
    return lines, lines.pop()


def iter_events(path: str | Path, offset: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(byte offset just after the line, event)`` for each event of the log ``path``,
    reading from byte ``offset`` (0, or an offset this function yielded: a line boundary).

    The reading rules of the log: a last line without its newline (torn by a crash, or still
    being written) is dropped with a warning, and so is (skipped, reading goes on) a complete
    line that is not a JSON object; blank lines are skipped silently. Resuming a read from the
    last offset yielded gives the events appended since.
    """
    with open(path, "rb") as f:
        if offset:
            f.seek(offset)
        data = f.read()
    lines, torn = split_lines(data)
    end = offset
    for raw in lines:
        end += len(raw) + 1
        if not raw.strip():
            continue
        try:
            obj = loads_line(raw)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            logger.warning("%s: the line ending at byte %d is not a JSON object; skipped", path, end)
            continue
        yield end, obj
    if torn:
        logger.warning("%s: ignoring a torn last line (%d bytes)", path, len(torn))


def read_last_event(path: str | Path, max_bytes: int = 1 << 16) -> dict[str, Any] | None:
    """The last event of the log ``path``, read from its last ``max_bytes`` bytes; None if the
    log is empty, ends with a torn line, or its last line is not a JSON object (the rules of
    :func:`iter_events`, applied to the end of the file only: a long log is not read whole)."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        f.seek(start)
        data = f.read()
    lines, torn = split_lines(data)
    if torn or not lines or (start > 0 and len(lines) == 1):  # torn, empty, or one cut line
        return None
    try:
        obj = loads_line(lines[-1])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


# -- folding ------------------------------------------------------------------------------------


@dataclass(slots=True)
class TrialState:
    """One trial as the log tells it (built by :func:`fold`)."""

    trial: Trial  #: its id and its current configuration (changed by a resume with a new config)
    status: Status = _RUNNING
    #: the tuner stopped it as a session ended (``trial_interrupt``); its status stays RUNNING:
    #: it restarts from its checkpoint when the experiment resumes
    interrupted: bool = False
    n_results: int = 0  #: results decided on
    last_result: Result | None = None  #: the last result decided on
    offset: int = 0  #: bytes of its results file consumed (results decided on, deferred or ignored)
    error: str | None = None  #: why it failed
    #: results reported while it was being paused, not yet decided on: ``(result, offset)``
    deferred: list[tuple[Result, int | None]] = field(default_factory=list)
    #: the ``exploit`` of its last resume from another trial's checkpoint (PBT), None if none
    exploit: dict[str, Any] | None = None
    exploit_n_results: int = 0  #: ``n_results`` when that resume was logged
    #: its configs, each with the number of its decided results before it took over, once its
    #: config changed (a resume with a new config: PBT); None while it ran one config
    configs: list[tuple[int, Config]] | None = None

    @property
    def trial_id(self) -> int:
        return self.trial.trial_id

    def config_at(self, index: int) -> Config:
        """The config in force at its ``index``-th decided result (0-based): the one its
        result was trained with, not a later one."""
        if self.configs is None:
            return self.trial.config
        config = self.configs[0][1]
        for start, later in self.configs:
            if start > index:
                break
            config = later
        return config


@dataclass(slots=True)
class ExperimentState:
    """An experiment as its event log tells it (built by :func:`fold` or :func:`replay`)."""

    trials: dict[int, TrialState] = field(default_factory=dict)  #: by id, in order of start
    #: the ``result`` events (results the scheduler decided on), in log order, whatever their trial
    results: list[dict[str, Any]] = field(default_factory=list)
    n_events: int = 0
    next_trial_id: int = 0  #: one more than the largest trial id started
    n_failed: int = 0
    time: float = 0.0  #: the latest ``time`` of an event (tuning seconds, all sessions)
    real_time: float = 0.0  #: the latest ``real_time`` (simulations), else 0
    n_sessions: int = 0
    launches_in_last_session: int = 0  #: trials started or restarted since the last ``session_start``
    end_reason: str | None = None  #: ``reason`` of the last ``experiment_end``
    finished: bool = False  #: the last event is an ``experiment_end``
    #: the resumes from another trial's checkpoint (PBT's exploits), in log order: ``trial_id``,
    #: ``source``, ``resource`` (where the trial went on), ``changes`` (``{name: [old, new]}``),
    #: ``time`` and ``n_results`` (the trial's decided results before it: the later ones follow
    #: the source's training)
    exploits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_results(self) -> int:
        return len(self.results)


def _apply(state: ExperimentState, ev: dict[str, Any]) -> None:
    """Fold one event into ``state`` (events of unknown trials change only the counters)."""
    kind = ev.get("event")
    state.n_events += 1
    state.finished = kind == _EXPERIMENT_END
    t = ev.get("time")
    if isinstance(t, (int, float)) and t > state.time:
        state.time = float(t)
    t = ev.get("real_time")
    if isinstance(t, (int, float)) and t > state.real_time:
        state.real_time = float(t)
    tid: Any = ev.get("trial_id")
    if kind == _TRIAL_START:
        state.trials[tid] = TrialState(Trial(tid, ev["config"]))
        state.next_trial_id = max(state.next_trial_id, tid + 1)
        state.launches_in_last_session += 1
        return
    if kind == _SESSION_START:
        state.n_sessions += 1
        state.launches_in_last_session = 0
        return
    if kind == _EXPERIMENT_END:
        state.end_reason = ev.get("reason")
        return
    if kind == _RESULT:
        state.results.append(ev)
    rec = state.trials.get(tid)
    if rec is None:
        return
    offset = ev.get("offset")
    if rec.deferred and rec.status is _RUNNING and kind in (_RESULT, _RESULT_IGNORED):
        # a deferred result decided on after the resume (offsets grow along a trial's results file)
        if offset is None:
            rec.deferred = rec.deferred[1:]
        else:
            rec.deferred = [d for d in rec.deferred if d[1] is not None and d[1] > offset]
    if kind == _RESULT:
        rec.n_results += 1
        rec.last_result = ev["result"]
        rec.offset = consumed_offset(rec.offset, offset)
        decision = ev.get("decision")
        if decision == "PAUSE":
            rec.status = _PAUSED
        elif decision == "STOP":
            rec.status, rec.deferred = _STOPPED, []
    elif kind == _TRIAL_RESUME:
        exploit = ev.get("exploit")
        config = ev.get("config")
        if config is not None:
            if config != rec.trial.config:
                # its deferred results (trained with the old config) are decided right after this
                # line, unless it takes another trial's checkpoint (then they are ignored)
                start = rec.n_results + (0 if exploit is not None else len(rec.deferred))
                rec.configs = [*(rec.configs or [(0, rec.trial.config)]), (start, config)]
            rec.trial = Trial(tid, config)
        rec.status, rec.interrupted = _RUNNING, False
        # its deferred results are decided on right after the resume (results or ignored lines),
        # until a PAUSE; or ignored, when it takes another trial's checkpoint
        if exploit is not None:
            rec.deferred = []
            rec.exploit, rec.exploit_n_results = exploit, rec.n_results
            state.exploits.append({"trial_id": tid, "source": exploit.get("source"),
                                   "resource": exploit.get("resource"), "changes": exploit.get("changes") or {},
                                   "time": ev.get("time"), "n_results": rec.n_results})
    elif kind == _TRIAL_RESTART:
        rec.status, rec.interrupted = _RUNNING, False
        state.launches_in_last_session += 1
    elif kind == _RESULT_DEFERRED:
        rec.deferred.append((ev["result"], offset))
        rec.offset = consumed_offset(rec.offset, offset)
    elif kind == _RESULT_IGNORED:
        rec.offset = consumed_offset(rec.offset, offset)
    elif kind == _TRIAL_COMPLETE:
        rec.status = _COMPLETED
    elif kind == _TRIAL_FAIL:
        rec.status, rec.error = _FAILED, ev.get("error")
        state.n_failed += 1
    elif kind == _TRIAL_INTERRUPT:
        rec.interrupted = True


def fold(events: Iterable[dict[str, Any]], state: ExperimentState | None = None) -> ExperimentState:
    """The experiment's state after ``events`` (folded into ``state`` when given, else into a
    new one). Pure: reads nothing, calls nothing."""
    state = ExperimentState() if state is None else state
    for ev in events:
        _apply(state, ev)
    return state


# -- checking -----------------------------------------------------------------------------------

#: kinds whose events name a trial (``trial_id``) started by an earlier ``trial_start``
_OF_A_TRIAL = frozenset({_TRIAL_RESUME, _TRIAL_RESTART, _RESULT, _RESULT_DEFERRED, _RESULT_IGNORED,
                         _TRIAL_COMPLETE, _TRIAL_FAIL, _TRIAL_INTERRUPT})
_WITH_A_RESULT = frozenset({_RESULT, _RESULT_DEFERRED, _RESULT_IGNORED})
_DECISIONS = frozenset(d.value for d in Decision)


def _is_int(value: Any) -> bool:
    return type(value) is int


def event_problem(ev: dict[str, Any], state: ExperimentState) -> str | None:
    """What makes ``ev`` an event the tuner cannot have written after the events folded into
    ``state``, None if it is usable.

    Checked: the ``trial_id`` of a ``trial_start`` is the next trial id (the tuner numbers trials
    0, 1, 2, ... in order) and it has a ``config`` object; every other event of a trial names a
    trial started before it; results are objects, decisions known, offsets and ``suggest_id``
    non-negative integers, times numbers. Events of kinds this version does not know pass.
    """
    kind = ev.get("event")
    tid = ev.get("trial_id")
    t = ev.get("time")
    if t is not None and (type(t) not in (int, float)):
        return f"'time' is {t!r}, not a number"
    if kind == _TRIAL_START:
        if not _is_int(tid) or tid != state.next_trial_id:
            return f"trial_start of trial {tid!r} where the next trial id is {state.next_trial_id}"
        if not isinstance(ev.get("config"), dict):
            return f"trial_start of trial {tid} without a config object"
        return None
    if kind not in _OF_A_TRIAL:
        return None
    if not _is_int(tid) or tid not in state.trials:
        return f"{kind} of trial {tid!r}, which no trial_start before it started"
    if kind in _WITH_A_RESULT and not isinstance(ev.get("result"), dict):
        return f"{kind} of trial {tid} without a result object"
    if kind == _RESULT:
        decision = ev.get("decision")
        if decision is not None and decision not in _DECISIONS:
            return f"result of trial {tid} with the unknown decision {decision!r}"
    offset = ev.get("offset")
    if offset is not None and (not _is_int(offset) or offset < 0):
        return f"{kind} of trial {tid} with the offset {offset!r} (not a byte count)"
    if kind == _TRIAL_RESUME:
        suggest_id = ev.get("suggest_id")
        if suggest_id is not None and (not _is_int(suggest_id) or suggest_id < 0):
            return f"trial_resume of trial {tid} with the suggest_id {suggest_id!r}"
        config = ev.get("config")
        if config is not None and not isinstance(config, dict):
            return f"trial_resume of trial {tid} with a config that is not an object"
        exploit = ev.get("exploit")
        if exploit is not None:
            source = exploit.get("source") if isinstance(exploit, dict) else None
            if not _is_int(source) or source not in state.trials or source == tid:
                return f"trial_resume of trial {tid} from the checkpoint of {source!r}, which is no other trial"
    return None


def read_log(path: str | Path) -> tuple[list[dict[str, Any]], ExperimentState, int]:
    """``(events, their fold, byte offset just after the last one)`` of the event log ``path``,
    read by the rules of :func:`iter_events`, each event checked by :func:`event_problem`.

    Called by the readers that act on a whole experiment: resume and
    :func:`tunebench.store.load_experiment`. Raises :class:`~tunebench.errors.UserError`
    naming the file and the line of the first unusable event.
    """
    events: list[dict[str, Any]] = []
    state = ExperimentState()
    end = 0
    for offset, ev in iter_events(path):
        problem = event_problem(ev, state)
        if problem is not None:
            with open(path, "rb") as f:
                line = f.read(offset).count(b"\n")
            raise UserError(
                f"{path}, line {line}: {problem}; the event log was edited or damaged: restore it (or cut it "
                "before that line) to resume or show this experiment")
        _apply(state, ev)
        events.append(ev)
        end = offset
    return events, state, end


def replay(scheduler: Scheduler, events: Iterable[dict[str, Any]], from_seq: int = 0) -> ExperimentState:
    """Fold ``events`` and replay into ``scheduler`` the calls logged from sequence number
    ``from_seq`` on (0: all of them, into a fresh scheduler; a snapshot's ``seq``: those after
    the snapshot the scheduler was loaded from).

    Called by the tuner when it resumes an experiment. Each ``trial_start`` / ``trial_resume``
    replays ``suggest`` (``suggest_resume`` for a resume logged with ``resume_only``), each
    ``result`` replays ``on_result``, each ``trial_complete`` ``on_complete``, each ``trial_fail``
    ``on_error``. Schedulers are deterministic, so the answers should be the logged ones: a
    suggestion or a decision that differs is reported as a warning naming the trial and both
    answers, and the logged history is kept. Returns the folded state.
    """
    state = ExperimentState()
    for ev in events:
        if ev.get("seq", -1) >= from_seq:
            _replay_call(scheduler, state, ev)
        _apply(state, ev)
    return state


def restore(scheduler: Scheduler, events: list[dict[str, Any]], snapshot: tuple[int, dict[str, Any]] | None,
            where: str | Path) -> ExperimentState:
    """Bring ``scheduler`` (freshly built with the experiment's arguments) to the end of the log
    ``events``: load ``snapshot`` (``(seq, state)`` from
    :meth:`tunebench.store.ExperimentStore.load_scheduler_state`; None: there is none) and
    :func:`replay` the calls logged after it. A snapshot that does not fit the scheduler (its
    loading or the replay after it raises) is reported as a warning naming ``where`` (the
    experiment folder), and the whole log is replayed into the scheduler's fresh state instead.

    Called when an experiment continues: by the tuner's resume and by
    :meth:`tunebench.ask_tell.AskTell.load`. Returns the folded state of the log.
    """
    if snapshot is not None:
        fresh = scheduler.state_dict()  # the state to go back to if the snapshot does not fit
        seq, state = snapshot
        try:
            scheduler.load_state_dict(state)
            return replay(scheduler, events, from_seq=seq)
        except Exception as e:  # noqa: BLE001 - any failure of a scheduler on a damaged snapshot
            logger.warning("the scheduler snapshot of %s does not fit this scheduler (%s: %s); rebuilding the "
                           "scheduler from the event log", where, type(e).__name__, e)
            scheduler.load_state_dict(fresh)
    return replay(scheduler, events)


def _replay_call(scheduler: Scheduler, state: ExperimentState, ev: dict[str, Any]) -> None:
    """Make the scheduler call ``ev`` records (before ``ev`` is folded into ``state``)."""
    kind = ev.get("event")
    tid: Any = ev.get("trial_id")
    if kind == _TRIAL_START:
        _replay_suggest(scheduler, tid, Suggestion.start(ev["config"]), False)
        return
    rec = state.trials.get(tid)
    if rec is None:
        return
    if kind == _RESULT:
        decision = scheduler.on_result(rec.trial, ev["result"])
        logged = ev.get("decision")
        if logged is not None and decision != logged:
            logger.warning(
                "replaying the log: the scheduler decided %s on result %d of trial %d where the log has %s; "
                "the scheduler is not deterministic, continuing with the logged history",
                _decision_name(decision), rec.n_results + 1, tid, logged)
    elif kind == _TRIAL_RESUME:
        exploit = ev.get("exploit")
        _replay_suggest(scheduler, ev.get("suggest_id", state.next_trial_id),
                        Suggestion.resume(tid, ev.get("config"), None if exploit is None else exploit["source"]),
                        bool(ev.get("resume_only", False)))
    elif kind == _TRIAL_COMPLETE:
        scheduler.on_complete(rec.trial, rec.last_result)
    elif kind == _TRIAL_FAIL:
        scheduler.on_error(rec.trial)
    elif kind == _RESULT_IGNORED and ev.get("restart"):
        scheduler.on_restart(rec.trial)


def _decision_name(decision: Any) -> str:
    return decision.value if isinstance(decision, Decision) else repr(decision)


def _replay_suggest(scheduler: Scheduler, suggest_id: int, expected: Suggestion, resume_only: bool) -> None:
    got = (scheduler.suggest_resume if resume_only else scheduler.suggest)(suggest_id)
    if got != expected:
        logger.warning(
            "replaying the log: the scheduler suggested %s where the log has %s; the scheduler "
            "is not deterministic, continuing with the logged history", got, expected)



# -- the best trial -----------------------------------------------------------------------------

#: trials in the leaderboard of ``tunebench show`` and of :meth:`tunebench.store.Experiment.summary`
LEADERBOARD_SIZE = 5


@dataclass(slots=True)
class TrialScore:
    """A trial's standing as its decided results tell it, updated by :meth:`observe` for each
    result in log order (by the tuner as it decides, and by :class:`tunebench.store.Experiment`
    as it reads the log)."""

    best: float | None = None  #: its best metric value
    best_resource: float | None = None  #: the resource at which ``best`` was reported (None without one)
    reached: float | None = None  #: the highest resource it reported (None without a resource)
    #: the config in force when ``best`` was reported (None: its only config, given to observe
    #: by none); a PBT trial's config changes, and the config to recommend is the best one's
    best_config: Config | None = None

    def observe(self, value: float, resource: float | None, mode: str, config: Config | None = None) -> None:
        """Take one decided result: ``value`` of the metric, reported at ``resource``, trained
        with ``config`` (its config then; None: the trial's only config)."""
        best = self.best
        if best is None or (value < best if mode == "min" else value > best):
            self.best, self.best_resource, self.best_config = value, resource, config
        if resource is not None and (self.reached is None or resource > self.reached):
            self.reached = resource


@dataclass(frozen=True, slots=True)
class Standing:
    """One trial with a result, as :func:`rank_trials` ranks it."""

    trial_id: int
    config: Config  #: the config in force at its best result (a PBT trial's config changes)
    status: Status
    value: float  #: its best metric value
    resource: float | None  #: the resource at which ``value`` was reported
    reached: float | None  #: the highest resource it reported
    #: its maximum resource (its config's entry ``max_resource_attr``), None if unknown
    max_resource: float | None

    @property
    def at_max_resource(self) -> bool:
        """It reported its maximum resource (False when that maximum is unknown)."""
        return _reached_max(self.reached, self.max_resource)

    @classmethod
    def of(cls, trial: Trial, status: Status, score: TrialScore, max_resource_attr: str | None) -> Standing | None:
        """The standing of ``trial`` (None if it has no result). Its maximum resource is its
        config's ``max_resource_attr`` entry when that is a number."""
        if score.best is None:
            return None
        config = trial.config if score.best_config is None else score.best_config
        return cls(trial.trial_id, config, status, score.best, score.best_resource, score.reached,
                   _max_resource(trial.config, max_resource_attr))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (a row of the leaderboard of ``tunebench show --json``)."""
        return {"trial_id": self.trial_id, "config": self.config, "value": self.value, "resource": self.resource,
                "resource_reached": self.reached, "max_resource": self.max_resource,
                "at_max_resource": self.at_max_resource, "status": self.status.value}


def _max_resource(config: Config, max_resource_attr: str | None) -> float | None:
    """A trial's maximum resource: its config's ``max_resource_attr`` entry when that is a number."""
    top = config.get(max_resource_attr) if max_resource_attr is not None else None
    return top if is_number(top) else None


def _reached_max(reached: float | None, top: float | None) -> bool:
    return top is not None and reached is not None and reached >= top


def reached_max_resource(config: Config, reached: float | None, max_resource_attr: str | None) -> bool:
    """Whether a trial of ``config`` that reported up to resource ``reached`` got to its maximum
    resource (its config's ``max_resource_attr`` entry; False when that is unknown): the first
    criterion of the ranking rule (:func:`rank_trials`) and of the Pareto front of an experiment
    (:meth:`tunebench.store.Experiment.pareto_front`)."""
    return _reached_max(reached, _max_resource(config, max_resource_attr))


def _order(at_max: bool, reached: float | None, value: float, trial_id: int,
           sign: float) -> tuple[bool, float, float, int]:
    """The sort key of the ranking rule (see :func:`rank_trials`): smaller is better."""
    return (not at_max, -(reached if reached is not None else -math.inf), sign * value, trial_id)


def rank_trials(standings: Iterable[Standing | None], mode: str, k: int | None = None) -> list[Standing]:
    """The trials best first (the ``k`` first; all when ``k`` is None); None entries (trials
    without a result) are left out.

    The rule of the best configuration: trials that reached their maximum resource come first,
    ranked by their best value; then the others, by the highest resource they reached (a value
    seen after 27 epochs outranks one seen after 3), then by their best value. So the first is
    the best among the trials that reached the maximum resource when any did, else the best at
    the highest resource reached (``at_max_resource`` False: say so); without a resource, the
    trial with the best value. Ties go to the earlier trial.
    """
    sign = 1.0 if mode == "min" else -1.0

    def key(s: Standing) -> tuple[bool, float, float, int]:
        return _order(s.at_max_resource, s.reached, s.value, s.trial_id, sign)

    present = [s for s in standings if s is not None]
    if k is None:
        return sorted(present, key=key)
    return heapq.nsmallest(k, present, key=key)


def rank_scored(trials: Iterable[tuple[Trial, Status, TrialScore]], mode: str, max_resource_attr: str | None,
                k: int | None = None) -> list[Standing]:
    """:func:`rank_trials` of ``(trial, status, score)`` triples, building a :class:`Standing`
    only for the ``k`` ranked first (the tuner asks for its best among 100,000 trials at the end
    of a simulation). Called by :meth:`tunebench.tuner.Tuner.standings` and
    :meth:`tunebench.store.Experiment.standings`."""
    sign = 1.0 if mode == "min" else -1.0

    def key(item: tuple[Trial, Status, TrialScore]) -> tuple[bool, float, float, int]:
        trial, _, score = item
        reached = score.reached
        at_max = _reached_max(reached, _max_resource(trial.config, max_resource_attr))
        return _order(at_max, reached, score.best, trial.trial_id, sign)  # type: ignore[arg-type]  # not None: filtered below

    present = [item for item in trials if item[2].best is not None]
    chosen = sorted(present, key=key) if k is None else heapq.nsmallest(k, present, key=key)
    return [s for t, status, score in chosen if (s := Standing.of(t, status, score, max_resource_attr)) is not None]
