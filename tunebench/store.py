"""Crash-safe experiment store (L1 persistence).

One folder per experiment::

    <experiment>/
        metadata.json           what was run: space, metric, mode, method, seed, versions, command line
        events.jsonl            append-only log, one JSON object per line, flushed per event
        scheduler_state.json    periodic JSON snapshot of the scheduler: {"seq": n, "state": {...}}
        tuner.lock              locked (flock) by the tuner working on the folder; says its pid, host, start
        trials/<id>/            each trial's results.jsonl, checkpoint/, stdout.log, stderr.log

One tuner at a time: :class:`ExperimentStore` holds ``tuner.lock`` (:mod:`tunebench.lock`) from
:meth:`~ExperimentStore.create` or :meth:`~ExperimentStore.reopen` to :meth:`~ExperimentStore.close`;
the kernel releases it when the tuner dies, however it dies. Another tuner on the same folder is
refused with a :class:`~tunebench.errors.UserError` naming the holder (:func:`running_tuner`).

Nothing in it is pickled. The event log is the source of truth: a tuner that was killed is
rebuilt from it (the snapshot only saves replaying the whole history). A torn last line (the
process died in the middle of a write) is dropped on reopening; everything before it is kept.
An unusable snapshot is ignored with a warning (the log is replayed from its start instead); an
event the tuner cannot have written, a log emptied or lost beside trial folders, or a
``metadata.json`` that is not the tuner's are refused with one line that names the file.

:func:`load_experiment` reads a folder for analysis: results as a pandas DataFrame, a per-trial
table, the best configuration, CSV/parquet export. pandas is imported only there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunebench.errors import UserError
from tunebench.events import (  # noqa: F401 (loads_line: also importable from here, where it was)
    LEADERBOARD_SIZE,
    ExperimentState,
    Standing,
    TrialScore,
    dumps_line,
    has_nonfinite,
    iter_events,
    loads_line,
    rank_scored,
    reached_max_resource,
    read_log,
)
from tunebench.lock import FolderLock, LockHolder, lock_holder
from tunebench.reporting import atomic_write
from tunebench.types import Config, Constraint, Objectives, Result, Status, is_feasible, parse_constraints

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
EVENTS_FILE = "events.jsonl"
STATE_FILE = "scheduler_state.json"
EVENTS_BUFFER = 1 << 18  #: bytes of events buffered before a write system call
TRIALS_DIR = "trials"
#: file locked by the tuner working on the folder (see :mod:`tunebench.lock`)
TUNER_LOCK_FILE = "tuner.lock"

#: seconds between two fsyncs of the event log (each event is flushed to the OS at once,
#: which is enough to survive the tuner being killed; fsync covers a machine crash)
FSYNC_INTERVAL = 2.0


try:  # a fast JSON library: a big scheduler snapshot is megabytes
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; stay correct without it
    _orjson = None  # type: ignore[assignment]  # a module or None: checked before each use

#: the reader of the event log under its former name
read_json_lines = iter_events


def dumps_compact(obj: Any) -> bytes:
    """Compact JSON of ``obj`` (dict keys as strings), NaN and infinities kept as the standard
    library writes them, integers of any size. Written by orjson (about ten times faster than the
    standard library on the megabytes of a big scheduler snapshot) wherever it can: the parts it
    cannot write exactly (integers beyond 64 bits such as a random generator's state, non-finite
    floats, which it would write as ``null``) are found by descending into the dicts that
    contain them and written by the standard library."""
    if _orjson is not None and isinstance(obj, dict):
        try:
            data = _orjson.dumps(obj)
        except TypeError:  # orjson.JSONEncodeError: a big integer, a non-str key, an odd type
            data = None
        if data is not None and (b"null" not in data or not has_nonfinite(obj)):
            return data
        if all(isinstance(k, str) for k in obj):
            return b"{" + b",".join(_orjson.dumps(k) + b":" + dumps_compact(v) for k, v in obj.items()) + b"}"
    if _orjson is not None and isinstance(obj, list):
        try:
            data = _orjson.dumps(obj)
        except TypeError:
            data = None
        if data is not None and (b"null" not in data or not has_nonfinite(obj)):
            return data
    return json.dumps(obj, allow_nan=True, separators=(",", ":"), check_circular=False).encode()


def atomic_write_json(path: Path, obj: Any, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + fsync + rename)."""
    # fails before touching the file; compact through orjson when not indented (the scheduler
    # snapshot of a big simulation is megabytes)
    if indent is None:
        data = dumps_compact(obj)
    else:
        data = json.dumps(obj, indent=indent, allow_nan=True).encode()
    atomic_write(Path(path), lambda f: f.write(data))



#: the columns of :attr:`Experiment.results` that the tuner fills (besides ``config_<name>``)
TUNER_COLUMNS = ("trial_id", "decision", "tuner_time", "tuner_real_time")
#: the prefix of the configuration's columns, and of a metric renamed away from a tuner column
CONFIG_PREFIX, RENAMED_METRIC_PREFIX = "config_", "result_"


def metric_column(name: str, metrics: Any = ()) -> str:
    """The column of the results table that holds the metric ``name``: ``name`` itself, unless it
    is a tuner column (:data:`TUNER_COLUMNS`) or starts with ``config_``; then ``result_<name>``,
    prefixed again while that is the name of another metric in ``metrics``. Called for each key of
    a result when the table is built, so a benchmark's objective never overwrites a tuner column."""
    if name not in TUNER_COLUMNS and not name.startswith(CONFIG_PREFIX):
        return name
    column = RENAMED_METRIC_PREFIX + name
    while column in metrics:
        column = RENAMED_METRIC_PREFIX + column
    return column


class ExperimentStore:
    """Writes one experiment folder. Used by the tuner only.

    Open with :meth:`create` for a new experiment or :meth:`reopen` to continue one; both take
    the folder's :data:`TUNER_LOCK_FILE` (refusing a folder another tuner works on), which
    :meth:`close` releases.
    """

    def __init__(self, path: Path, n_events: int, lock: FolderLock | None = None) -> None:
        self.path = path
        self.trials_path = path / TRIALS_DIR
        self.n_events = n_events
        self._lock = lock
        # a large buffer: a simulation writes tens of thousands of events a second, flushed only at
        # snapshots (real runs flush every event anyway)
        self._events = open(path / EVENTS_FILE, "ab", buffering=EVENTS_BUFFER)  # noqa: SIM115 (closed by close())
        self._last_fsync = time.monotonic()
        #: flush every event to the OS (survives the tuner being killed); off: flushed by
        #: :meth:`flush`, before each scheduler snapshot and at :meth:`close`
        self.flush_each = True

    @classmethod
    def create(cls, path: str | Path, metadata: dict[str, Any]) -> "ExperimentStore":
        """Create a new experiment folder; refuses a folder that already holds an experiment (or
        its trial folders), or that another tuner works on."""
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(
                f"cannot create experiment folder {path}: {e.strerror}; choose another --experiment-dir"
            ) from e
        lock = _lock(path)
        try:
            if (path / EVENTS_FILE).exists():
                raise UserError(
                    f"{path} already holds an experiment; resume it with `tunebench resume {path}` "
                    "or choose another --experiment-dir"
                )
            n_trials = _count_trial_dirs(path)
            if n_trials:
                raise UserError(
                    f"{path} holds {n_trials} trial folders in {path / TRIALS_DIR} but no event log ({EVENTS_FILE}): "
                    "an experiment whose log was lost; a new one would overwrite them: choose another "
                    "--experiment-dir (or move that folder away)"
                )
            try:
                (path / TRIALS_DIR).mkdir(exist_ok=True)
            except OSError as e:
                raise UserError(
                    f"cannot create experiment folder {path}: {e.strerror}; choose another --experiment-dir"
                ) from e
            atomic_write_json(path / METADATA_FILE, metadata)
            (path / EVENTS_FILE).touch()
            return cls(path, 0, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def reopen(cls, path: str | Path) -> tuple["ExperimentStore", list[dict[str, Any]]]:
        """Reopen an experiment for appending; returns the store and the events logged so far.

        A torn last line of the event log is cut off so new events start on a fresh line.
        Refused (:class:`~tunebench.errors.UserError`): a folder another tuner works on, an
        event the tuner cannot have written (:func:`tunebench.events.read_log`), an event log
        that is missing or holds no event while trial folders exist (resuming would start over
        and overwrite them).
        """
        path = Path(path)
        events_path = path / EVENTS_FILE
        if not (path / METADATA_FILE).exists() or not events_path.exists():
            n_trials = _count_trial_dirs(path) if (path / METADATA_FILE).exists() else 0
            if n_trials:
                raise UserError(
                    f"{path} has no event log ({EVENTS_FILE}) but {n_trials} trial folders in {path / TRIALS_DIR}: "
                    "the log was lost, and resuming would start over and overwrite them; restore "
                    f"{events_path} (or move the folder away and start a new experiment)"
                )
            raise UserError(f"{path} is not a tunebench experiment folder (no {METADATA_FILE} / {EVENTS_FILE})")
        lock = _lock(path)
        try:
            events, _, good_end = read_log(events_path)
            if not events:
                n_trials = _count_trial_dirs(path)
                if n_trials:
                    raise UserError(
                        f"{events_path} holds no event but {path / TRIALS_DIR} holds {n_trials} trial folders: the "
                        "log was emptied or cut, and resuming would start over and overwrite them; restore the log "
                        "(or move the folder away and start a new experiment)"
                    )
            if events_path.stat().st_size != good_end:
                with open(events_path, "r+b") as f:
                    f.truncate(good_end)
            return cls(path, len(events), lock), events
        except BaseException:
            lock.release()
            raise

    # -- writing ---------------------------------------------------------------------------

    def append(self, event: dict[str, Any]) -> int:
        """Append one event (a JSON-able dict) and flush it; returns its sequence number.

        Raises OSError (e.g. disk full) after which the log is still valid up to the last
        complete line.
        """
        seq = event["seq"] = self.n_events
        self.n_events = seq + 1
        if self.flush_each:
            self._events.write(dumps_line(event))
            self._events.flush()
            now = time.monotonic()
            if now - self._last_fsync > FSYNC_INTERVAL:
                os.fsync(self._events.fileno())
                self._last_fsync = now
        else:
            self._events.write(dumps_line(event))
        return seq

    def flush(self) -> None:
        """Flush buffered events to the OS."""
        self._events.flush()

    def save_scheduler_state(self, state: dict[str, Any]) -> None:
        """Snapshot the scheduler state, valid after the events logged so far (which are
        flushed first, so the snapshot is never ahead of the log)."""
        self.flush()
        # compact: a large state (thousands of trials) is written by the C encoder in milliseconds
        atomic_write_json(self.path / STATE_FILE, {"seq": self.n_events, "state": state}, indent=None)

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        atomic_write_json(self.path / METADATA_FILE, metadata)

    def trial_dir(self, trial_id: int) -> Path:
        """Folder of trial ``trial_id`` (created)."""
        d = self.trials_path / str(trial_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def close(self) -> None:
        """Flush and close the event log, then release the folder's lock (also when closing fails)."""
        try:
            if not self._events.closed:
                try:
                    self._events.flush()
                    os.fsync(self._events.fileno())
                finally:
                    self._events.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    # -- reading -------------------------------------------------------------------------

    def load_scheduler_state(self) -> tuple[int, dict[str, Any]] | None:
        """The last snapshot as ``(seq, state)``, or None if there is none, or if it is unusable
        (not JSON, not ``{"seq": n, "state": {...}}``, or ``seq`` beyond the log: a warning says
        so, and the whole log is replayed instead)."""
        p = self.path / STATE_FILE
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_bytes())
            seq, state = data["seq"], data["state"]
            if type(seq) is not int or not 0 <= seq <= self.n_events:
                raise ValueError(f"'seq' is {seq!r}, not an event count between 0 and {self.n_events}")
            if not isinstance(state, dict):
                raise ValueError(f"'state' is a JSON {type(state).__name__}, not an object")
        except (ValueError, KeyError, TypeError) as e:
            logger.warning("ignoring the unusable scheduler snapshot %s (%s: %s); rebuilding the scheduler from the "
                           "event log", p, type(e).__name__, e)
            return None
        return seq, state


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Read ``metadata.json`` of an experiment folder; a :class:`~tunebench.errors.UserError`
    if there is none, or if it is not the JSON object the tuner writes (with the ``metric``
    and the ``mode``)."""
    p = Path(path) / METADATA_FILE
    if not p.exists():
        raise UserError(f"{path} is not a tunebench experiment folder (no {METADATA_FILE})")
    damaged = "the file is damaged: restore it (the tuner writes it when an experiment starts and resumes)"
    try:
        metadata = json.loads(p.read_bytes())
    except (OSError, ValueError) as e:
        raise UserError(f"{p} is not readable JSON ({type(e).__name__}: {e}); {damaged}") from None
    if not isinstance(metadata, dict):
        raise UserError(f"{p} holds a JSON {type(metadata).__name__}, not an object; {damaged}")
    metric, mode = metadata.get("metric"), metadata.get("mode")
    if not isinstance(metric, str) or not metric:
        raise UserError(f"{p} has no usable 'metric' ({metric!r}); {damaged}")
    if mode not in ("min", "max"):
        raise UserError(f"{p} has no usable 'mode' ({mode!r}, not 'min' or 'max'); {damaged}")
    return metadata


def running_tuner(path: str | Path) -> LockHolder | None:
    """The tuner working on the experiment folder ``path`` now (it holds :data:`TUNER_LOCK_FILE`),
    None if none does. Its answer may be out of date at once; only taking the lock decides."""
    return lock_holder(Path(path) / TUNER_LOCK_FILE)


def busy_message(path: str | Path, holder: LockHolder) -> str:
    """The one-line refusal of a folder ``holder`` works on: who, since when, what to do (how to
    continue it depends on what wrote it: ``tunebench resume``, or ``AskTell.load`` for an
    experiment driven by ask/tell, whose ``metadata.json`` says ``"driver": "ask_tell"``)."""
    pid = f"kill {holder.pid}" if holder.pid is not None else "stop it"
    try:
        driver = json.loads((Path(path) / METADATA_FILE).read_text()).get("driver")
    except (OSError, ValueError, AttributeError):
        driver = None
    resume = f"AskTell.load({str(path)!r})" if driver == "ask_tell" else f"tunebench resume {path}"
    return (f"{path} is being tuned by another tuner ({holder.describe()}); wait for it to end, or stop it "
            f"({pid}) and then `{resume}`; `tunebench show {path}` shows how far it is")


def check_not_running(path: str | Path) -> None:
    """Raise :class:`~tunebench.errors.UserError` (:func:`busy_message`) if a tuner works on the
    folder ``path`` now. A quick check before building a tuner; the tuner's lock decides."""
    holder = running_tuner(path)
    if holder is not None:
        raise UserError(busy_message(path, holder))


def _lock(path: Path) -> FolderLock:
    """The folder's tuner lock, taken; a UserError naming the holder if another process has it."""
    lock = FolderLock(path / TUNER_LOCK_FILE)
    try:
        holder = lock.acquire()
    except OSError as e:
        raise UserError(f"cannot lock {path / TUNER_LOCK_FILE}: {e.strerror or e}; check the folder's "
                        "permissions") from e
    if holder is not None:
        raise UserError(busy_message(path, holder))
    return lock


def _count_trial_dirs(path: Path) -> int:
    """Number of trial folders in ``path/trials`` (0 if there is none)."""
    try:
        return sum(1 for entry in os.scandir(path / TRIALS_DIR) if entry.is_dir())
    except OSError:
        return 0


def pareto_members(
    finals: Iterable[tuple[int, Config, Result]],
    objectives: Objectives,
    constraints: Sequence[Constraint] = (),
    resource_attr: str | None = None,
    max_resource_attr: str | None = None,
) -> tuple[list[tuple[int, Result, tuple[float, ...]]], Any]:
    """The Pareto front of trials given as ``(trial id, config, last result)``: ``(members, Y)``
    with ``members`` the ``(trial id, result, objective vector)`` of each non-dominated trial,
    best first in the first objective (then the next; then by id), and ``Y`` their vectors
    (minimization form, an ``(n, d)`` array).

    The rule (of :meth:`Experiment.pareto_front` and :meth:`tunebench.AskTell.pareto_front`): a
    trial counts with its last result, only if that meets every constraint and every objective
    is a finite number; when some trials reached their maximum resource, only those count (as for
    the best trial, :func:`tunebench.events.rank_trials`)."""
    # deferred: numpy and moocore, only where a front is computed (not for every experiment read)
    import numpy as np

    from tunebench.pareto import nondominated_mask

    candidates: list[tuple[int, Result, tuple[float, ...], bool]] = []
    for tid, config, result in finals:
        try:
            if constraints and not is_feasible(result, constraints, tid):
                continue
            vector = objectives.vector(result, tid)
        except ValueError:  # a metric missing or not a number: the trial does not count
            continue
        if not all(math.isfinite(v) for v in vector):
            continue  # a diverged trial
        reached = result.get(resource_attr) if resource_attr is not None else None
        reached = reached if isinstance(reached, (int, float)) and not isinstance(reached, bool) else None
        candidates.append((tid, result, vector, reached_max_resource(config, reached, max_resource_attr)))
    if any(c[3] for c in candidates):
        candidates = [c for c in candidates if c[3]]
    if not candidates:
        return [], np.empty((0, len(objectives.metrics)))
    Y = np.array([c[2] for c in candidates], dtype=float)
    keep = np.flatnonzero(nondominated_mask(Y))
    keep = keep[np.lexsort((np.array([candidates[i][0] for i in keep]), *Y[keep].T[::-1]))]
    return [(candidates[i][0], candidates[i][1], candidates[i][2]) for i in keep], Y[keep]


class Experiment:
    """A finished or running experiment read back from its folder (for analysis).

    Attributes:
        path: the folder.
        metadata: its ``metadata.json``.
        events: the events of its log (read by :func:`tunebench.events.iter_events`).
        state: those events folded (:func:`tunebench.events.fold`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        events_path = self.path / EVENTS_FILE
        if events_path.exists():
            self.events, self.state, _ = read_log(events_path)
        else:
            self.events, self.state = [], ExperimentState()

    @classmethod
    def from_state(cls, path: str | Path, metadata: dict[str, Any], state: ExperimentState) -> "Experiment":
        """An experiment of the folder ``path`` from its ``metadata`` and its log already folded
        into ``state`` elsewhere (the dashboard folds each log incrementally): reads no file. Its
        ``events`` is empty; what it computes follows ``state`` as that grows."""
        exp = cls.__new__(cls)
        exp.path, exp.metadata, exp.events, exp.state = Path(path), metadata, [], state
        return exp

    def running_tuner(self) -> LockHolder | None:
        """The tuner working on this experiment now (:func:`running_tuner`), None if none."""
        return running_tuner(self.path)

    @property
    def metric(self) -> str:
        metric: str = self.metadata["metric"]
        return metric

    @property
    def mode(self) -> str:
        mode: str = self.metadata["mode"]
        return mode

    @property
    def objectives(self) -> Objectives:
        """The metric(s) the experiment optimizes with their modes (one for a single-objective
        experiment: :attr:`metric`, :attr:`mode`)."""
        recorded = self.metadata.get("objectives")
        if isinstance(recorded, dict):
            return Objectives.from_args(recorded["metric"], recorded["mode"])
        return Objectives((self.metric,), (self.mode,))

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        """The bounds a result must meet to count (``--constraint``; none: every result counts)."""
        return parse_constraints(self.metadata.get("constraints"))

    def feasible(self, result: Result, trial_id: int | None = None) -> bool:
        """Whether ``result`` meets every constraint (a result lacking a bounded metric does not)."""
        constraints = self.constraints
        if not constraints:
            return True
        try:
            return is_feasible(result, constraints, trial_id)
        except ValueError:
            return False

    @property
    def results(self) -> "pd.DataFrame":
        """One row per result the scheduler saw: ``trial_id``, the reported metrics (a
        benchmark's objectives included, e.g. its own ``time``), ``decision``, ``tuner_time``
        (the event's ``time``: tuner seconds since the start, simulated seconds in a simulation),
        ``tuner_real_time`` (the event's ``real_time``; simulations only) and the configuration
        the result was trained with (a PBT trial's changes) as ``config_<name>``. A metric named
        like one of these columns (see :func:`metric_column`) is the column ``result_<name>``: it
        never overwrites them."""
        import pandas as pd  # deferred: pandas, only where a DataFrame is built

        trials = self.state.trials
        seen: dict[int, int] = {}
        rows = []
        for ev in self.state.results:
            tid = ev["trial_id"]
            row = {"trial_id": tid}
            for key, value in ev["result"].items():
                row[metric_column(key, ev["result"])] = value
            row["decision"] = ev.get("decision")
            row["tuner_time"] = ev.get("time")
            if "real_time" in ev:
                row["tuner_real_time"] = ev["real_time"]
            rec = trials.get(tid)
            if rec is not None:
                index = seen[tid] = seen.get(tid, -1) + 1
                for k, v in rec.config_at(index).items():
                    row[f"config_{k}"] = v
            rows.append(row)
        frame: pd.DataFrame = pd.DataFrame(rows)
        return frame

    def _configs(self) -> dict[int, dict[str, Any]]:
        """Trial id -> its configuration (the last one it ran with)."""
        return {tid: rec.trial.config for tid, rec in self.state.trials.items()}

    @property
    def resource_attr(self) -> str | None:
        """The reported resource (e.g. ``"epoch"``), None for a single-fidelity experiment."""
        value = self.metadata.get("resource_attr")
        return value if isinstance(value, str) else None

    def _scores(self) -> tuple[dict[int, TrialScore], dict[int, float]]:
        """Per trial: its :class:`~tunebench.events.TrialScore` and its last metric value, over
        its feasible results (all of them without constraints)."""
        metric, mode, resource_attr = self.metric, self.mode, self.resource_attr
        constrained = bool(self.constraints)
        scores: dict[int, TrialScore] = {}
        last: dict[int, float] = {}
        trials = self.state.trials
        seen: dict[int, int] = {}  # per trial whose config changed: its results so far
        for ev in self.state.results:
            tid = ev["trial_id"]
            result = ev["result"]
            rec = trials.get(tid)
            config = None
            if rec is not None and rec.configs is not None:
                index = seen[tid] = seen.get(tid, -1) + 1
                config = rec.config_at(index)
            if constrained and not self.feasible(result, tid):
                continue
            value = result.get(metric)
            if isinstance(value, (int, float)) and not math.isnan(value):
                last[tid] = value
                resource = result.get(resource_attr) if resource_attr is not None else None
                if isinstance(resource, bool) or not isinstance(resource, (int, float)):
                    resource = None
                score = scores.get(tid)
                if score is None:
                    score = scores[tid] = TrialScore()
                score.observe(value, resource, mode, config)
        return scores, last

    def _status(self, tid: int) -> Status:
        """A trial's status; one the tuner stopped as its last session ended shows as ``stopped``."""
        rec = self.state.trials[tid]
        return Status.STOPPED if rec.interrupted and rec.status is Status.RUNNING else rec.status

    def trial_table(self) -> list[dict[str, Any]]:
        """One dict per trial: id, status, config, number of results, best and last metric,
        ``best_resource`` (where the best was reported), ``resource_reached`` (the highest
        resource reported), error. A trial the tuner stopped as its last session ended shows as
        ``stopped``. With constraints, ``best``/``last``/``best_resource``/``resource_reached``
        are over the feasible results only, and ``feasible`` says whether the trial's last result
        met every constraint (None without a result)."""
        scores, last = self._scores()
        final = self._final_results() if self.constraints else {}
        table = []
        for tid, rec in self.state.trials.items():
            score = scores.get(tid, TrialScore())
            row = {"trial_id": tid, "status": self._status(tid).value, "config": rec.trial.config,
                   "n_results": rec.n_results, "best": score.best, "last": last.get(tid),
                   "best_resource": score.best_resource, "resource_reached": score.reached,
                   "error": rec.error}
            if self.constraints:
                result = final.get(tid)
                row["feasible"] = None if result is None else self.feasible(result, tid)
            table.append(row)
        return table

    def _final_results(self) -> dict[int, Result]:
        """Trial id -> its last decided result (at the highest resource it reported)."""
        return {ev["trial_id"]: ev["result"] for ev in self.state.results}

    def _front(self) -> tuple[list[tuple[int, Result, tuple[float, ...]]], Any]:
        """:func:`pareto_members` of this experiment's trials with their last results."""
        max_attr = self.metadata.get("max_resource_attr")
        trials = self.state.trials
        finals = [(tid, trials[tid].trial.config, result) for tid, result in self._final_results().items()
                  if tid in trials]
        return pareto_members(finals, self.objectives, self.constraints, self.resource_attr,
                              max_attr if isinstance(max_attr, str) else None)

    def pareto_front(self) -> "pd.DataFrame":
        """The Pareto front: one row per feasible, non-dominated trial, best first in the first
        objective, with ``trial_id``, ``status``, each objective's value as reported (its column
        named as in :attr:`results`), the resource it reached (``resource_attr``'s column, when
        the experiment has one) and its configuration as ``config_<name>``.

        A trial counts with its last result (at the highest resource it reached), and only if that
        result meets every constraint; when some trials reached their maximum resource, only those
        count (the rule of :meth:`best_trial`). A single-objective experiment's front is its best
        trial (ties included)."""
        import pandas as pd  # deferred: pandas, only where a DataFrame is built

        frame: pd.DataFrame = pd.DataFrame([self._front_row(tid, result) for tid, result, _ in self._front()[0]])
        return frame

    def _front_row(self, tid: int, result: Result) -> dict[str, Any]:
        row: dict[str, Any] = {"trial_id": tid, "status": self._status(tid).value}
        resource_attr = self.resource_attr
        for name in (*self.objectives.metrics, *([resource_attr] if resource_attr else [])):
            row[metric_column(name, result)] = result.get(name)
        for k, v in self.state.trials[tid].trial.config.items():
            row[f"config_{k}"] = v
        return row

    def hypervolume(self, reference_point: Any = None) -> tuple[float | None, list[float] | None]:
        """``(hypervolume, reference point)`` of :meth:`pareto_front`: the exact volume the front
        dominates up to the reference point (both in the metrics' units; for a maximized metric the
        point bounds it from below). ``reference_point``: one value per objective; by default the
        front's nadir plus 10% of its range (:func:`tunebench.pareto.default_reference_point`).
        ``(None, None)`` without a feasible result."""
        return self._hypervolume_of(self._front()[1], reference_point)

    def _hypervolume_of(self, Y: Any, reference_point: Any = None) -> tuple[float | None, list[float] | None]:
        """:meth:`hypervolume` of the front ``Y`` (:meth:`_front`'s, minimization form)."""
        import numpy as np  # deferred: numpy, only where a front is computed

        from tunebench.pareto import default_reference_point, hypervolume

        if len(Y) == 0:
            return None, None
        signs = np.array(self.objectives.signs)
        ref = default_reference_point(Y) if reference_point is None else signs * np.asarray(reference_point, float)
        return hypervolume(Y, ref), [float(v) for v in signs * ref]

    def standings(self, k: int | None = None) -> list[Standing]:
        """The trials with a result, best first (the ``k`` first): the rule of
        :func:`tunebench.events.rank_trials`, the one the tuner's final best follows."""
        scores, _ = self._scores()
        max_attr = self.metadata.get("max_resource_attr")
        trials = self.state.trials
        return rank_scored(((trials[tid].trial, self._status(tid), score) for tid, score in scores.items()
                            if tid in trials), self.mode, max_attr if isinstance(max_attr, str) else None, k)

    def best_trial(self) -> Standing | None:
        """The best trial (:meth:`standings`' first; None without a result): the best among the
        trials that reached their maximum resource when any did, else the best at the highest
        resource reached, with the resource its value was reported at, the resource it reached
        and its status. The configuration ``tunebench run`` and ``tunebench show`` recommend."""
        top = self.standings(1)
        return top[0] if top else None

    @property
    def trials(self) -> "pd.DataFrame":
        """The :meth:`trial_table` as a DataFrame (config flattened into ``config_<name>``)."""
        import pandas as pd  # deferred: pandas, only where a DataFrame is built

        rows = []
        for rec in self.trial_table():
            row = {k: v for k, v in rec.items() if k != "config"}
            row.update({f"config_{k}": v for k, v in rec["config"].items()})
            rows.append(row)
        frame: pd.DataFrame = pd.DataFrame(rows)
        return frame

    def best(self) -> tuple[int | None, dict[str, Any] | None, float | None]:
        """``(trial_id, config, metric)`` of the best value of any result, at any resource (Nones
        without a result): where the best-so-far curves of :mod:`tunebench.analysis` end. It may
        come from a trial stopped early; the configuration to use is :meth:`best_trial`'s."""
        scores, _ = self._scores()
        mode = self.mode
        best_id, best_value = None, None
        for tid, score in scores.items():
            value = score.best
            if value is not None and (best_value is None or (value < best_value if mode == "min"
                                                             else value > best_value)):
                best_id, best_value = tid, value
        if best_id is None:
            return None, None, None
        config = scores[best_id].best_config
        return best_id, (self._configs().get(best_id) if config is None else config), best_value

    def lineage_records(self) -> list[dict[str, Any]]:
        """The exploits of the experiment (PBT: a trial resumed from another trial's checkpoint),
        in log order: ``trial_id``, ``source`` (whose checkpoint it took), ``resource`` (the
        resource the source had reached, where the trial went on), ``changes`` (``{name: [old,
        new]}``: its config before and after) and ``time`` (tuning seconds). Empty without one."""
        return [{k: v for k, v in e.items() if k != "n_results"} for e in self.state.exploits]

    def lineage(self) -> "pd.DataFrame":
        """:meth:`lineage_records` as a DataFrame (columns ``trial_id``, ``source``,
        ``resource``, ``changes``, ``time``; no rows without an exploit)."""
        import pandas as pd  # deferred: pandas, only where a DataFrame is built

        frame: pd.DataFrame = pd.DataFrame(self.lineage_records(),
                                           columns=["trial_id", "source", "resource", "changes", "time"])
        return frame

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (what ``tunebench show --json`` prints): counts, the best trial
        (``best_*``, see :meth:`best`), the ``leaderboard`` of the first
        :data:`~tunebench.events.LEADERBOARD_SIZE` trials (:meth:`standings`) and the
        ``lineage`` of a PBT run (:meth:`lineage_records`; empty without exploits)."""
        table = self.trial_table()
        counts: dict[str, int] = {}
        for rec in table:
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        leaderboard = self.standings(LEADERBOARD_SIZE)
        top = leaderboard[0] if leaderboard else None
        state = self.state
        return {
            "path": str(self.path),
            "method": self.metadata.get("method"),
            "metric": self.metric,
            "mode": self.mode,
            "n_trials": len(table),
            "n_completed": counts.get("completed", 0),
            "n_failed": counts.get("failed", 0),
            "n_stopped": counts.get("stopped", 0),
            "n_paused": counts.get("paused", 0),
            "n_running": counts.get("running", 0),
            "n_results": state.n_results,
            "resource_attr": self.resource_attr,
            "best_trial_id": top.trial_id if top else None,
            "best_config": top.config if top else None,
            "best_metric": top.value if top else None,
            "best_resource": top.resource if top else None,
            "best_resource_reached": top.reached if top else None,
            "best_max_resource": top.max_resource if top else None,
            "best_at_max_resource": top.at_max_resource if top else None,
            "best_trial_status": top.status.value if top else None,
            "leaderboard": [s.to_dict() for s in leaderboard],
            "lineage": self.lineage_records(),
            **self.front_summary(table),
            "elapsed_time": state.time,
            "finished": state.finished,
            "end_reason": state.end_reason,
        }

    def front_summary(self, table: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The entries of :meth:`summary` (and of the tuner's final
        :class:`~tunebench.tuner.TuningResult`) for several objectives: ``objectives``,
        ``pareto_front`` (per trial of :meth:`pareto_front`: ``trial_id``, ``status``,
        ``values`` of the objectives, ``resource``, ``config``), ``hypervolume`` and the
        ``reference_point`` it was computed with (:meth:`hypervolume`); and for constraints:
        ``constraints`` and ``n_infeasible`` (trials whose last result misses one). Empty for
        one unconstrained metric. ``table``: the :meth:`trial_table` when the caller has it."""
        out: dict[str, Any] = {}
        objectives = self.objectives
        if self.constraints:
            out["constraints"] = [c.to_json() for c in self.constraints]
            rows = table if table is not None else self.trial_table()
            out["n_infeasible"] = sum(1 for rec in rows if rec.get("feasible") is False)
        if objectives.is_multi:
            out["objectives"] = objectives.to_json()
            members, Y = self._front()
            front = []
            for tid, result, _ in members:
                front.append({"trial_id": tid, "status": self._status(tid).value,
                              "values": {m: result.get(m) for m in objectives.metrics},
                              "resource": result.get(self.resource_attr) if self.resource_attr else None,
                              "config": self.state.trials[tid].trial.config})
            out["pareto_front"] = front
            out["hypervolume"], out["reference_point"] = self._hypervolume_of(Y)
        return out

    def to_csv(self, path: str | Path) -> Path:
        """Write :attr:`results` to a CSV file; returns the path."""
        self.results.to_csv(path, index=False)
        return Path(path)

    def to_parquet(self, path: str | Path) -> Path:
        """Write :attr:`results` to a parquet file (needs pyarrow: ``pip install tunebench[parquet]``)."""
        try:
            # deferred: pyarrow (optional), only to export parquet
            import pyarrow  # noqa: F401
        except ImportError as e:
            raise UserError("parquet export needs pyarrow: pip install 'tunebench[parquet]'") from e
        df = self.results
        for col in df.columns:  # mixed-type object columns (e.g. choice of str and int) -> str
            if df[col].dtype == object:
                df[col] = df[col].map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v))
        df.to_parquet(path, index=False)
        return Path(path)


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment folder; ``load_experiment(p).results`` is a pandas DataFrame."""
    return Experiment(path)
