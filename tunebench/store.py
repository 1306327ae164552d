"""Crash-safe experiment store (L1 persistence).

One folder per experiment::

    <experiment>/
        metadata.json           what was run: space, metric, mode, method, seed, versions, command line
        events.jsonl            append-only log, one JSON object per line, flushed per event
        scheduler_state.json    periodic JSON snapshot of the scheduler: {"seq": n, "state": {...}}
        trials/<id>/            each trial's results.jsonl, checkpoint/, stdout.log, stderr.log

Nothing in it is pickled. The event log is the source of truth: a tuner that was killed is
rebuilt from it (the snapshot only saves replaying the whole history). A torn last line (the
process died in the middle of a write) is dropped on reopening; everything before it is kept.

:func:`load_experiment` reads a folder for analysis: results as a pandas DataFrame, a per-trial
table, the best configuration, CSV/parquet export. pandas is imported only there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunebench.errors import UserError
from tunebench.reporting import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
EVENTS_FILE = "events.jsonl"
STATE_FILE = "scheduler_state.json"
EVENTS_BUFFER = 1 << 18  #: bytes of events buffered before a write system call
TRIALS_DIR = "trials"

#: seconds between two fsyncs of the event log (each event is flushed to the OS at once,
#: which is enough to survive the tuner being killed; fsync covers a machine crash)
FSYNC_INTERVAL = 2.0


try:  # a fast JSON library (~10x the standard one): the event log is on the simulator's hot path
    import orjson as _orjson

    _NEWLINE = _orjson.OPT_APPEND_NEWLINE
except ImportError:  # pragma: no cover - orjson is a dependency; stay correct without it
    _orjson = None


def _has_nonfinite(obj: Any) -> bool:
    if isinstance(obj, float):
        return obj != obj or obj in (math.inf, -math.inf)
    if isinstance(obj, dict):
        return any(_has_nonfinite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_nonfinite(v) for v in obj)
    return False


def dumps_line(obj: Any) -> bytes:
    """One compact JSON line (with its newline). NaN and infinities are kept as the standard
    library writes them (``NaN``, ``Infinity``), never turned into ``null``."""
    if _orjson is not None:
        # encoded and written one at a time: each encoded line is freed at once and its memory
        # reused (holding a batch of them costs more than encoding them)
        data = _orjson.dumps(obj, option=_NEWLINE)
        # orjson writes non-finite floats as null: redo those rare lines with the standard library
        if b"null" not in data or not _has_nonfinite(obj):
            return data
    return (json.dumps(obj, allow_nan=True, separators=(",", ":")) + "\n").encode()


def loads_line(raw: bytes) -> Any:
    """Parse one JSON line written by :func:`dumps_line` (or by ``report``)."""
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            pass  # NaN/Infinity, or not JSON: the standard library decides
    return json.loads(raw)


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
        if data is not None and (b"null" not in data or not _has_nonfinite(obj)):
            return data
        if all(isinstance(k, str) for k in obj):
            return b"{" + b",".join(_orjson.dumps(k) + b":" + dumps_compact(v) for k, v in obj.items()) + b"}"
    if _orjson is not None and isinstance(obj, list):
        try:
            data = _orjson.dumps(obj)
        except TypeError:
            data = None
        if data is not None and (b"null" not in data or not _has_nonfinite(obj)):
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


def read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(byte offset after the line, object)`` for each complete line of a JSON-lines file.

    A last line without its newline (torn by a crash) and undecodable lines are skipped with a
    warning; everything else is yielded.
    """
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            offset += len(raw)
            if not raw.endswith(b"\n"):
                logger.warning("%s: ignoring a torn last line (%d bytes)", path, len(raw))
                break
            try:
                obj = loads_line(raw)
            except ValueError:
                logger.warning("%s: line %d is not valid JSON; skipped", path, lineno)
                continue
            yield offset, obj


class ExperimentStore:
    """Writes one experiment folder. Used by the tuner only.

    Open with :meth:`create` for a new experiment or :meth:`reopen` to continue one.
    """

    def __init__(self, path: Path, n_events: int) -> None:
        self.path = path
        self.trials_path = path / TRIALS_DIR
        self.n_events = n_events
        # a large buffer: a simulation writes tens of thousands of events a second, flushed only at
        # snapshots (real runs flush every event anyway)
        self._events = open(path / EVENTS_FILE, "ab", buffering=EVENTS_BUFFER)  # noqa: SIM115 (closed by close())
        self._last_fsync = time.monotonic()
        #: flush every event to the OS (survives the tuner being killed); off: flushed by
        #: :meth:`flush`, before each scheduler snapshot and at :meth:`close`
        self.flush_each = True

    @classmethod
    def create(cls, path: str | Path, metadata: dict[str, Any]) -> "ExperimentStore":
        """Create a new experiment folder; refuses a folder that already holds an experiment."""
        path = Path(path)
        if (path / EVENTS_FILE).exists():
            raise UserError(
                f"{path} already holds an experiment; resume it with `tunebench resume {path}` "
                "or choose another --experiment-dir"
            )
        try:
            (path / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(
                f"cannot create experiment folder {path}: {e.strerror}; choose another --experiment-dir"
            ) from e
        atomic_write_json(path / METADATA_FILE, metadata)
        (path / EVENTS_FILE).touch()
        return cls(path, 0)

    @classmethod
    def reopen(cls, path: str | Path) -> tuple["ExperimentStore", list[dict[str, Any]]]:
        """Reopen an experiment for appending; returns the store and the events logged so far.

        A torn last line of the event log is cut off so new events start on a fresh line.
        """
        path = Path(path)
        events_path = path / EVENTS_FILE
        if not (path / METADATA_FILE).exists() or not events_path.exists():
            raise UserError(f"{path} is not a tunebench experiment folder (no {METADATA_FILE} / {EVENTS_FILE})")
        events: list[dict[str, Any]] = []
        good_end = 0
        for offset, obj in read_json_lines(events_path):
            events.append(obj)
            good_end = offset
        if events_path.stat().st_size != good_end:
            with open(events_path, "r+b") as f:
                f.truncate(good_end)
        return cls(path, len(events)), events

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
        if not self._events.closed:
            try:
                self._events.flush()
                os.fsync(self._events.fileno())
            finally:
                self._events.close()

    # -- reading -------------------------------------------------------------------------

    def load_scheduler_state(self) -> tuple[int, dict[str, Any]] | None:
        """The last snapshot as ``(seq, state)``, or None if there is none (or it is unreadable)."""
        p = self.path / STATE_FILE
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text())
            return int(data["seq"]), data["state"]
        except (ValueError, KeyError, TypeError) as e:
            logger.warning("ignoring unreadable scheduler snapshot %s (%s); replaying the whole log", p, e)
            return None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Read ``metadata.json`` of an experiment folder, with a clear error if it is not one."""
    p = Path(path) / METADATA_FILE
    if not p.exists():
        raise UserError(f"{path} is not a tunebench experiment folder (no {METADATA_FILE})")
    return json.loads(p.read_text())


def _is_better(a: float, b: float | None, mode: str) -> bool:
    if b is None:
        return True
    return a < b if mode == "min" else a > b


class Experiment:
    """A finished or running experiment read back from its folder (for analysis)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        events_path = self.path / EVENTS_FILE
        self.events: list[dict[str, Any]] = (
            [obj for _, obj in read_json_lines(events_path)] if events_path.exists() else []
        )

    @property
    def metric(self) -> str:
        return self.metadata["metric"]

    @property
    def mode(self) -> str:
        return self.metadata["mode"]

    @property
    def results(self) -> "pd.DataFrame":
        """One row per result the scheduler saw: ``trial_id``, the reported metrics, ``decision``,
        ``tuner_time`` (tuner seconds since the start: simulated seconds in a simulation, which
        also has ``tuner_real_time``), and the configuration as ``config_<name>``."""
        import pandas as pd

        configs = self._configs()
        rows = []
        for ev in self.events:
            if ev.get("event") != "result":
                continue
            row = {"trial_id": ev["trial_id"], **ev["result"], "decision": ev.get("decision"),
                   "tuner_time": ev.get("time")}
            if "real_time" in ev:
                row["tuner_real_time"] = ev["real_time"]
            for k, v in configs.get(ev["trial_id"], {}).items():
                row[f"config_{k}"] = v
            rows.append(row)
        return pd.DataFrame(rows)

    def _configs(self) -> dict[int, dict[str, Any]]:
        configs: dict[int, dict[str, Any]] = {}
        for ev in self.events:
            if ev.get("event") in ("trial_start", "trial_resume") and ev.get("config") is not None:
                configs[ev["trial_id"]] = ev["config"]
        return configs

    def trial_table(self) -> list[dict[str, Any]]:
        """One dict per trial: id, status, config, number of results, best and last metric, error."""
        metric, mode = self.metric, self.mode
        trials: dict[int, dict[str, Any]] = {}
        for ev in self.events:
            kind = ev.get("event")
            tid = ev.get("trial_id")
            if kind == "trial_start":
                trials[tid] = {"trial_id": tid, "status": "running", "config": ev["config"], "n_results": 0,
                               "best": None, "last": None, "error": None}
                continue
            rec = trials.get(tid)
            if rec is None:
                continue
            if kind == "trial_resume":
                rec["status"] = "running"
                if ev.get("config") is not None:
                    rec["config"] = ev["config"]
            elif kind == "trial_restart":
                rec["status"] = "running"
            elif kind == "result":
                rec["n_results"] += 1
                value = ev["result"].get(metric)
                if isinstance(value, (int, float)) and not math.isnan(value):
                    rec["last"] = value
                    if _is_better(value, rec["best"], mode):
                        rec["best"] = value
                decision = ev.get("decision")
                if decision == "PAUSE":
                    rec["status"] = "paused"
                elif decision == "STOP":
                    rec["status"] = "stopped"
            elif kind == "trial_complete":
                rec["status"] = "completed"
            elif kind == "trial_fail":
                rec["status"] = "failed"
                rec["error"] = ev.get("error")
            elif kind == "trial_interrupt":
                rec["status"] = "stopped"
        return list(trials.values())

    @property
    def trials(self) -> "pd.DataFrame":
        """The :meth:`trial_table` as a DataFrame (config flattened into ``config_<name>``)."""
        import pandas as pd

        rows = []
        for rec in self.trial_table():
            row = {k: v for k, v in rec.items() if k != "config"}
            row.update({f"config_{k}": v for k, v in rec["config"].items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def best(self) -> tuple[int | None, dict[str, Any] | None, float | None]:
        """``(trial_id, config, metric)`` of the best result over all results (None if none)."""
        best_id, best_value = None, None
        for rec in self.trial_table():
            if rec["best"] is not None and _is_better(rec["best"], best_value, self.mode):
                best_id, best_value = rec["trial_id"], rec["best"]
        configs = self._configs()
        return best_id, (configs.get(best_id) if best_id is not None else None), best_value

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (what ``tunebench show --json`` prints)."""
        table = self.trial_table()
        counts: dict[str, int] = {}
        for rec in table:
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        best_id, best_config, best_value = self.best()
        end = [ev for ev in self.events if ev.get("event") == "experiment_end"]
        n_results = sum(1 for ev in self.events if ev.get("event") == "result")
        last_time = max((ev.get("time", 0.0) for ev in self.events), default=0.0)
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
            "n_results": n_results,
            "best_trial_id": best_id,
            "best_config": best_config,
            "best_metric": best_value,
            "elapsed_time": last_time,
            "finished": bool(end) and end[-1].get("seq", -1) == self.events[-1].get("seq"),
            "end_reason": end[-1].get("reason") if end else None,
        }

    def to_csv(self, path: str | Path) -> Path:
        """Write :attr:`results` to a CSV file; returns the path."""
        self.results.to_csv(path, index=False)
        return Path(path)

    def to_parquet(self, path: str | Path) -> Path:
        """Write :attr:`results` to a parquet file (needs pyarrow: ``pip install tunebench[parquet]``)."""
        try:
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
