"""The dashboard's view of one experiment folder, kept up to date by reading its log incrementally.

A :class:`LiveExperiment` remembers the byte offset it has read ``events.jsonl`` up to; each
:meth:`LiveExperiment.refresh` reads only the bytes appended since (by
:func:`tunebench.events.iter_events`, which drops a torn last line: it is read again, whole, at
the next refresh) and folds the new events into its :class:`~tunebench.events.ExperimentState`
(:func:`tunebench.events.fold`). The summaries and tables come from
:class:`tunebench.store.Experiment` built on that state (:meth:`Experiment.from_state`), so the
dashboard shows the same best trial, trial statuses and Pareto front as ``tunebench show``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunebench.errors import UserError
from tunebench.events import ExperimentState, fold, iter_events
from tunebench.lock import LockHolder
from tunebench.store import EVENTS_FILE, METADATA_FILE, Experiment, read_metadata, running_tuner
from tunebench.types import is_number

__all__ = ["LiveExperiment", "RunStatus", "run_status"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunStatus:
    """Where an experiment stands: ``state`` is ``running`` (a tuner holds its lock: ``holder``),
    ``finished``, ``failed`` (its last session ended on an error) or ``interrupted`` (stopped by a
    signal or Ctrl-C, or killed: its log has no end)."""

    state: str
    holder: LockHolder | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "holder": self.holder.to_dict() if self.holder else None,
                "holder_text": self.holder.describe() if self.holder else None, "reason": self.reason}


def run_status(path: Path, state: ExperimentState) -> RunStatus:
    """The :class:`RunStatus` of the experiment folder ``path`` whose log folds to ``state``."""
    holder = running_tuner(path)
    if holder is not None:
        return RunStatus("running", holder)
    reason = state.end_reason
    if not state.finished:
        return RunStatus("interrupted", None, "the log has no end: the tuner was killed")
    if reason is not None and reason.startswith("error"):
        return RunStatus("failed", None, reason)
    if reason == "interrupted":
        return RunStatus("interrupted", None, reason)
    return RunStatus("finished", None, reason)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, None if it is not a finite number (JSON has no NaN)."""
    return float(value) if is_number(value) and math.isfinite(value) else None


def _json_safe(obj: Any) -> Any:
    """``obj`` with its non-finite floats as None (the JSON the browser parses has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


class LiveExperiment:
    """One experiment folder as the dashboard sees it (thread-safe: the server's worker threads
    share it).

    Attributes:
        path: the folder.
        offset: bytes of ``events.jsonl`` read and folded so far (a line boundary).
        state: the events read so far, folded.
        metadata: its ``metadata.json`` (read again when the file changes: a resume rewrites it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.state = ExperimentState()
        self.metadata: dict[str, Any] = {}
        self._metadata_mtime: int | None = None
        self._log_identity: tuple[int, int] | None = None  # (device, inode) of the log read
        self._lock = threading.Lock()
        self._summary: tuple[tuple[Any, ...], dict[str, Any]] | None = None  # (what it was computed from, it)

    def refresh(self) -> int:
        """Read what was appended to the log since the last call and fold it; returns the number of
        new events. A log replaced by another one (a new inode, or a shorter file) is read again
        from its start. Raises :class:`~tunebench.errors.UserError` for an unreadable
        ``metadata.json``."""
        with self._lock:
            mtime = os.stat(self.path / METADATA_FILE).st_mtime_ns
            if mtime != self._metadata_mtime:
                self.metadata = read_metadata(self.path)
                self._metadata_mtime = mtime
            log = self.path / EVENTS_FILE
            try:
                st = os.stat(log)
            except FileNotFoundError:
                return 0
            identity = (st.st_dev, st.st_ino)
            if identity != self._log_identity or st.st_size < self.offset:
                if self._log_identity is not None:
                    logger.info("%s was replaced; reading it again from its start", log)
                self.offset, self.state, self._log_identity = 0, ExperimentState(), identity
            if st.st_size == self.offset:
                return 0
            new = list(iter_events(log, self.offset))
            if new:
                fold((ev for _, ev in new), self.state)
                self.offset = new[-1][0]
            return len(new)

    def _experiment(self) -> Experiment:
        return Experiment.from_state(self.path, self.metadata, self.state)

    def status(self) -> RunStatus:
        """Its :class:`RunStatus` now."""
        return run_status(self.path, self.state)

    def overview(self) -> dict[str, Any]:
        """The overview's row: ``status``, ``benchmark`` or ``script``, ``method``, ``trials`` by
        status, ``best`` (the best trial's value, as ``tunebench show``), ``last_activity`` (the
        log's modification time, seconds since the epoch), ``elapsed_time`` (tuning seconds)."""
        self.refresh()
        with self._lock:
            try:
                last_activity: float | None = os.stat(self.path / EVENTS_FILE).st_mtime
            except OSError:
                last_activity = None
            key = (self.offset, self._metadata_mtime, self._log_identity)
            if self._summary is None or self._summary[0] != key:  # a poll of an unchanged log computes nothing
                self._summary = key, self._summarize()
            return {"status": self.status().to_dict(), **self._summary[1], "last_activity": last_activity}

    def _summarize(self) -> dict[str, Any]:
        """The entries of :meth:`overview` that follow from the log and the metadata alone."""
        exp = self._experiment()
        table = exp.trial_table()
        best = exp.best_trial()
        counts: dict[str, int] = {}
        for row in table:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        metadata = self.metadata
        objectives = exp.objectives
        run_spec = metadata.get("run_spec")
        script = run_spec.get("script") if isinstance(run_spec, dict) else None
        backend = metadata.get("backend")
        summary: dict[str, Any] = _json_safe({
            "benchmark": metadata.get("benchmark"),
            "script": script or None,
            "method": metadata.get("method"),
            "metrics": list(objectives.metrics),
            "modes": list(objectives.modes),
            "n_trials": len(table),
            "trials": counts,
            "n_results": self.state.n_results,
            "best": best.value if best is not None else None,
            "best_trial_id": best.trial_id if best is not None else None,
            "elapsed_time": self.state.time,
            "simulated": isinstance(backend, dict) and backend.get("type") == "simulator",
            "offset": self.offset,
        })
        return summary

    def detail(self) -> dict[str, Any]:
        """Everything the experiment page draws: the :meth:`overview` entries plus ``trial_table``
        (:meth:`Experiment.trial_table`), ``curves`` (per trial: its status and the ``time``,
        ``resource`` and ``value`` of each decided result: the learning curves), ``best_so_far``
        (``time`` and ``value``: the best metric value of any result so far), ``resource_attr``,
        ``config_space`` and, with several objectives or constraints, the entries of
        :meth:`Experiment.front_summary` (the Pareto front)."""
        out = self.overview()
        with self._lock:
            exp = self._experiment()
            metric, mode = exp.metric, exp.mode
            resource_attr = exp.resource_attr
            table = exp.trial_table()
            statuses = {row["trial_id"]: row["status"] for row in table}
            curves: dict[int, dict[str, Any]] = {
                tid: {"status": statuses[tid], "time": [], "resource": [], "value": []}
                for tid in self.state.trials}
            best_t: list[float] = []
            best_v: list[float] = []
            best: float | None = None
            for ev in self.state.results:
                curve = curves.get(ev["trial_id"])
                result = ev["result"]
                value = _number(result.get(metric))
                if curve is None or value is None:
                    continue
                t = float(ev.get("time", 0.0))
                curve["time"].append(t)
                curve["resource"].append(_number(result.get(resource_attr)) if resource_attr else None)
                curve["value"].append(value)
                if best is None or (value < best if mode == "min" else value > best):
                    best = value
                    best_t.append(t)
                    best_v.append(value)
            if best is not None:
                best_t.append(self.state.time)
                best_v.append(best)
            out.update(_json_safe({
                "path": str(self.path),
                "metric": metric,
                "mode": mode,
                "resource_attr": resource_attr,
                "trial_table": table,
                "curves": [{"trial_id": tid, **c} for tid, c in curves.items()],
                "best_so_far": {"time": best_t, "value": best_v},
                "config_space": self.metadata.get("config_space"),
                **exp.front_summary(),
            }))
        return out


def is_experiment(path: Path) -> bool:
    """True if ``path`` is an experiment folder (it holds ``metadata.json``)."""
    return (path / METADATA_FILE).is_file()


def check_readable(path: Path) -> None:
    """Raise :class:`UserError` if ``path`` is not a readable folder (a dashboard root)."""
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; pass experiment folders or folders holding experiments "
                        "(or --results-root)")
