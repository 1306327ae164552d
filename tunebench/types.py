"""Value objects shared by every layer (L0): trials, results, decisions, suggestions, and the
conventions for numbers that schedulers and searchers share (metric to minimize, non-finite
numbers in JSON state).

Nothing here imports numpy or any other tunebench module, so every layer may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeGuard

#: One report of a training script: metric name -> value, plus the keys the
#: reporting side adds (``_timestamp``, ``_iteration``) and those the tuner adds
#: (``trial_id``, ``_time``).  Plain dicts keep the hot path fast.
Result = dict[str, Any]

#: A configuration: hyperparameter name -> value (constants included).
Config = dict[str, Any]


class Decision(str, Enum):
    """What a scheduler wants done with a running trial after one of its results."""

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"  #: stop the process, keep its checkpoint; may be resumed later
    STOP = "STOP"  #: stop the process for good


class Status(str, Enum):
    """Life-cycle state of a trial as the tuner records it."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"  #: the script exited normally
    STOPPED = "stopped"  #: stopped by the scheduler or at the end of tuning
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Trial:
    """One configuration being evaluated; ids are unique within an experiment and never reused."""

    trial_id: int
    config: Config


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Answer of :meth:`Scheduler.suggest`: start a new configuration, or resume a paused trial.

    Build it with :meth:`start` or :meth:`resume`.
    """

    config: Config | None = None
    resume_trial_id: int | None = None

    def __post_init__(self) -> None:
        if self.config is None and self.resume_trial_id is None:
            raise ValueError("a Suggestion needs a config to start or a trial id to resume")

    @property
    def is_resume(self) -> bool:
        return self.resume_trial_id is not None

    @classmethod
    def start(cls, config: Config) -> Suggestion:
        """Start a new trial with ``config``."""
        return cls(config=config)

    @classmethod
    def resume(cls, trial_id: int, config: Config | None = None) -> Suggestion:
        """Resume the paused trial ``trial_id`` (optionally with a changed config, as PBT does)."""
        return cls(config=config, resume_trial_id=trial_id)


class EventKind(str, Enum):
    """Kinds of events a backend reports from :meth:`Backend.poll`."""

    RESULT = "result"  #: the trial reported one line of metrics
    COMPLETED = "completed"  #: the trial's script exited with status 0 on its own
    FAILED = "failed"  #: crashed, timed out, or wrote a malformed report line
    PAUSED = "paused"  #: the process of a trial asked to pause has ended
    STOPPED = "stopped"  #: the process of a trial asked to stop has ended


@dataclass(slots=True)
class Event:
    """Something that happened to a trial, as reported by a backend (not frozen: a simulator
    creates one per result, and a frozen dataclass costs three times as much to build)."""

    kind: EventKind
    trial_id: int
    time: float  #: backend clock time at which it happened
    result: Result | None = None  #: for RESULT
    offset: int | None = None  #: for RESULT: byte offset in the results file just after this line
    error: str | None = None  #: for FAILED: what went wrong, with the tail of stderr
    info: dict[str, Any] | None = None  #: backend-specific extras (e.g. exit code)


# -- numbers shared by schedulers and searchers ----------------------------------------------------


def is_number(value: Any) -> TypeGuard[float]:
    """An ``int`` or ``float`` that is not a bool (a bool is an ``int`` to Python, never a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_minimize(value: float, mode: str) -> float:
    """A metric's ``value`` as a value to minimize: negated for ``mode="max"``; NaN (a diverged
    trial) is the worst value, ``+inf``, in both modes. The hot loop of ASHA inlines it."""
    if value != value:  # NaN
        return math.inf
    return -value if mode == "max" else value


def json_float(value: float) -> float | str:
    """``value`` for JSON scheduler and searcher state: a finite float as is, non-finite ones as
    the strings ``"inf"``, ``"-inf"``, ``"nan"`` (strict JSON has no such numbers; read back by
    :func:`float_from_json`)."""
    if math.isfinite(value):
        return value
    return "nan" if value != value else ("inf" if value > 0 else "-inf")


def float_from_json(value: float | str | None) -> float:
    """The float :func:`json_float` wrote; ``None`` (written for ``+inf`` by snapshots of older
    versions) reads as ``+inf``."""
    return math.inf if value is None else float(value)
