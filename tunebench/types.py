"""Value objects shared by every layer (L0): trials, results, decisions, suggestions, the
objectives of an experiment (:class:`Objectives`: one metric or several, each minimized or
maximized), and the conventions for numbers that schedulers and searchers share (metric to
minimize, non-finite numbers in JSON state).

Nothing here imports numpy, and of tunebench only :mod:`tunebench.errors` (L0, standard library
only), so every layer may use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeGuard

from tunebench.errors import UserError

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
    #: resume from the checkpoint of this other trial instead of the trial's own (PBT's exploit)
    checkpoint_trial_id: int | None = None

    def __post_init__(self) -> None:
        if self.config is None and self.resume_trial_id is None:
            raise ValueError("a Suggestion needs a config to start or a trial id to resume")
        if self.checkpoint_trial_id is not None:
            if self.resume_trial_id is None:
                raise ValueError("a Suggestion takes another trial's checkpoint only to resume a trial")
            if self.checkpoint_trial_id == self.resume_trial_id:
                raise ValueError(f"trial {self.resume_trial_id} cannot take its own checkpoint from itself")

    @property
    def is_resume(self) -> bool:
        return self.resume_trial_id is not None

    @classmethod
    def start(cls, config: Config) -> Suggestion:
        """Start a new trial with ``config``."""
        return cls(config=config)

    @classmethod
    def resume(cls, trial_id: int, config: Config | None = None, checkpoint_from: int | None = None) -> Suggestion:
        """Resume the paused trial ``trial_id``, optionally with a changed ``config`` and from the
        checkpoint of the trial ``checkpoint_from`` (PBT's exploit: the tuner copies that trial's
        checkpoint over ``trial_id``'s own before the relaunch, and the trial goes on from the
        resource that trial had reached)."""
        return cls(config=config, resume_trial_id=trial_id, checkpoint_trial_id=checkpoint_from)

    @property
    def is_exploit(self) -> bool:
        """A resume from another trial's checkpoint."""
        return self.checkpoint_trial_id is not None


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


def metric_to_minimize(result: Result, metric: str, mode: str, trial_id: int | None = None) -> float:
    """The value of ``metric`` in ``result`` as a float to minimize (negated for ``mode="max"``).

    NaN (a diverged trial) counts as the worst value, ``+inf``.

    Raises:
        UserError: (a ``ValueError``) the result has no ``metric`` or its value is not a number;
            the message names the metric. Schedulers never silently skip such a result.
    """
    try:
        value = float(result[metric])
    except KeyError:
        who = "" if trial_id is None else f" of trial {trial_id}"
        keys = ", ".join(sorted(k for k in result if not k.startswith("_"))) or "none"
        raise UserError(
            f"the result{who} has no metric '{metric}' (reported keys: {keys}); report it from the "
            f"script, or pass the metric the script reports with --metric"
        ) from None
    except (TypeError, ValueError):
        raise UserError(f"metric '{metric}' = {result[metric]!r} is not a number") from None
    return to_minimize(value, mode)


_MODES = ("min", "max")


@dataclass(frozen=True, slots=True)
class Objectives:
    """The metrics an experiment optimizes and the direction of each (``"min"`` or ``"max"``),
    validated once: one metric (single-objective) or several (multi-objective).

    Build it from what ``--metric`` / ``--mode`` (or ``metric=`` / ``mode=`` of the Python API)
    received with :meth:`from_args`, or directly, e.g.
    ``Objectives(("val_accuracy", "time"), ("max", "min"))``. :meth:`vector` turns a result into
    the *minimization form* every function of :mod:`tunebench.pareto` works on: maximized metrics
    negated, NaN as ``+inf`` (as :func:`to_minimize` does for one value).

    Raises:
        UserError: (a ``ValueError``) no metric, a name that is not a non-empty string, a name
            given twice, a mode other than ``"min"`` / ``"max"``, or not one mode per metric;
            the message names the fix.
    """

    metrics: tuple[str, ...]
    modes: tuple[str, ...]

    def __post_init__(self) -> None:
        # lists are accepted and stored as tuples (the object stays hashable and immutable)
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "modes", tuple(self.modes))
        if not self.metrics:
            raise UserError("no metric given: pass the name of at least one reported metric (--metric NAME ...)")
        for name in self.metrics:
            if not isinstance(name, str) or not name:
                raise UserError(f"a metric name must be a non-empty string, got {name!r}: pass the name "
                                f"the training script reports")
        if len(self.modes) != len(self.metrics):
            raise UserError(
                f"{len(self.metrics)} metrics ({', '.join(self.metrics)}) but {len(self.modes)} modes "
                f"({', '.join(map(str, self.modes))}): give one mode for all metrics or one per metric "
                f"(--mode max min ...)"
            )
        for name, mode in zip(self.metrics, self.modes, strict=True):
            if mode not in _MODES:
                raise UserError(f"mode {mode!r} of metric '{name}' is not 'min' or 'max': "
                                f"pass --mode min or --mode max")
        seen: set[str] = set()
        for name in self.metrics:
            if name in seen:
                raise UserError(f"metric '{name}' is given twice: name each metric once")
            seen.add(name)

    @classmethod
    def from_args(cls, metric: str | Sequence[str], mode: str | Sequence[str]) -> Objectives:
        """The objectives of ``metric`` (one name or a sequence of names) and ``mode`` (one mode,
        which then applies to every metric, or one per metric), as the command line and the
        Python API receive them. Reads back what :meth:`to_json` wrote.

        Raises:
            UserError: see the class.
        """
        if metric is None or mode is None:
            raise UserError(f"{'metric' if metric is None else 'mode'} is not given: pass --metric NAME "
                            f"[NAME ...] and --mode min|max [min|max ...]")
        metrics = (metric,) if isinstance(metric, str) else tuple(metric)
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        if len(modes) == 1 and len(metrics) > 1:
            modes = modes * len(metrics)
        return cls(metrics, modes)

    @property
    def is_multi(self) -> bool:
        """Several metrics (a multi-objective problem)."""
        return len(self.metrics) > 1

    @property
    def signs(self) -> tuple[float, ...]:
        """``+1.0`` per minimized metric, ``-1.0`` per maximized one: the factors of the
        minimization form (:func:`tunebench.pareto.to_minimization` applies them to arrays)."""
        return tuple(-1.0 if mode == "max" else 1.0 for mode in self.modes)

    def vector(self, result: Result, trial_id: int | None = None) -> tuple[float, ...]:
        """The metrics of ``result`` in minimization form, in the order of :attr:`metrics`: a
        maximized metric negated, NaN (a diverged trial) as ``+inf``.

        Raises:
            UserError: (a ``ValueError``) ``result`` lacks one of the metrics or its value is not
                a number (the message of :func:`metric_to_minimize`, naming the metric and
                ``trial_id`` when given).
        """
        return tuple(metric_to_minimize(result, m, mode, trial_id)
                     for m, mode in zip(self.metrics, self.modes, strict=True))

    def to_json(self) -> dict[str, list[str]]:
        """``{"metric": [...], "mode": [...]}`` for metadata and state files; read back by
        ``Objectives.from_args(**d)``."""
        return {"metric": list(self.metrics), "mode": list(self.modes)}


_CONSTRAINT_OPS = ("<=", ">=")
#: NAME, operator, BOUND of a constraint's text
_CONSTRAINT_TEXT = re.compile(r"^\s*([^<>=]*?)\s*(<=|>=|<|>)\s*([^<>=]*?)\s*$")


@dataclass(frozen=True, slots=True)
class Constraint:
    """A bound on a reported metric that a result must meet to be *feasible*, e.g.
    ``latency <= 20`` or ``accuracy >= 0.9`` (``--constraint "latency<=20"``, several allowed).

    A result is feasible when it meets every constraint of the experiment: the best trial and the
    Pareto front count only feasible results, and constrained methods (``CBO``) model the
    constraints. Build one from its text with :meth:`parse`.

    Attributes:
        metric: the reported metric bounded.
        op: ``"<="`` (the metric must be at most ``bound``) or ``">="`` (at least ``bound``).
        bound: a finite number.

    Raises:
        UserError: (a ``ValueError``) an empty metric name, an operator other than ``<=`` / ``>=``,
            or a bound that is not a finite number.
    """

    metric: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric.strip():
            raise UserError(f"a constraint needs the name of a reported metric, got {self.metric!r}: "
                            f"write it as NAME<=BOUND or NAME>=BOUND, e.g. --constraint \"latency<=20\"")
        object.__setattr__(self, "metric", self.metric.strip())
        if self.op not in _CONSTRAINT_OPS:
            raise UserError(f"constraint on '{self.metric}': operator {self.op!r} is not <= or >=: "
                            f"write it as {self.metric}<=BOUND or {self.metric}>=BOUND")
        try:
            bound = float(self.bound)
        except (TypeError, ValueError):
            bound = math.nan
        if isinstance(self.bound, bool) or not math.isfinite(bound):
            raise UserError(f"constraint on '{self.metric}': the bound {self.bound!r} is not a finite number: "
                            f"write it as {self.metric}{self.op}NUMBER")
        object.__setattr__(self, "bound", bound)

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """The constraint written ``NAME<=BOUND`` or ``NAME>=BOUND`` (spaces allowed; ``<`` and
        ``>`` read as ``<=`` and ``>=``, since reported values are real numbers). Reads back
        :meth:`to_json`'s text.

        Raises:
            UserError: the text has no such form (the message shows the expected one).
        """
        match = _CONSTRAINT_TEXT.match(text) if isinstance(text, str) else None
        if match is None:
            raise UserError(f"cannot read the constraint {text!r}: write it as NAME<=BOUND or NAME>=BOUND, "
                            f"e.g. --constraint \"latency<=20\"")
        name, op, bound = match.groups()
        return cls(name, op if op.endswith("=") else op + "=", bound)  # type: ignore[arg-type]  # checked in __post_init__

    def slack(self, result: Result, trial_id: int | None = None) -> float:
        """How far ``result`` is from violating the constraint, in the metric's units: ``<= 0``
        when it is met, ``> 0`` by how much it is exceeded (``value - bound`` for ``<=``,
        ``bound - value`` for ``>=``); NaN reads as ``+inf`` (infeasible). The form constrained
        models learn (feasible iff the slack is at most 0).

        Raises:
            UserError: the result lacks the metric or its value is not a number (as for an objective).
        """
        value = metric_to_minimize(result, self.metric, "min" if self.op == "<=" else "max", trial_id)
        return value - self.bound if self.op == "<=" else value + self.bound

    def is_met(self, result: Result, trial_id: int | None = None) -> bool:
        """Whether ``result`` meets the constraint (its :meth:`slack` is at most 0)."""
        return self.slack(result, trial_id) <= 0.0

    def to_json(self) -> str:
        """``"NAME<=BOUND"``, for metadata and state files; read back by :meth:`parse`."""
        return f"{self.metric}{self.op}{self.bound!r}"

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_constraints(constraints: Sequence[str | Constraint] | str | Constraint | None) -> tuple[Constraint, ...]:
    """The constraints of ``--constraint`` / ``constraints=`` (texts or :class:`Constraint`
    objects, one or a sequence; ``None``: none), checked to name each metric once.

    Raises:
        UserError: a text cannot be read, or two constraints bound the same metric the same way.
    """
    if constraints is None:
        return ()
    items = [constraints] if isinstance(constraints, (str, Constraint)) else list(constraints)
    parsed = tuple(c if isinstance(c, Constraint) else Constraint.parse(c) for c in items)
    seen: set[tuple[str, str]] = set()
    for c in parsed:
        if (c.metric, c.op) in seen:
            raise UserError(f"two constraints '{c.metric} {c.op} ...': keep the one bound you mean")
        seen.add((c.metric, c.op))
    return parsed


def is_feasible(result: Result, constraints: Sequence[Constraint], trial_id: int | None = None) -> bool:
    """Whether ``result`` meets every constraint (always, without constraints)."""
    return all(c.slack(result, trial_id) <= 0.0 for c in constraints)


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


# -- transfer learning: results of earlier tasks -------------------------------------------------


@dataclass(frozen=True)
class TransferTask:
    """What an earlier experiment (or several, pooled) tells a transfer method about one source
    task: the configurations it evaluated and their metric values, in *minimization* form
    (``-value`` for a maximized metric), each at the largest resource its trial reached.

    Built by :func:`tunebench.analysis.transfer.load_transfer_tasks` (``--transfer-from``) and
    given to transfer methods as ``MethodContext.transfer``.

    Attributes:
        name: the task (its benchmark's name, or the experiment folder).
        configs: the configurations (constants of the space included), one per trial.
        values: their values, same order, finite.
    """

    name: str
    configs: tuple[dict[str, Any], ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.configs) != len(self.values):
            raise ValueError(f"transfer task {self.name!r}: {len(self.configs)} configs but {len(self.values)} values")
        if not self.configs:
            raise ValueError(f"transfer task {self.name!r} has no evaluated configuration")
        if not all(math.isfinite(v) for v in self.values):
            raise ValueError(f"transfer task {self.name!r}: values must be finite")

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (read back by :meth:`from_json`)."""
        return {"name": self.name, "configs": [dict(c) for c in self.configs], "values": list(self.values)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TransferTask:
        """The task of :meth:`to_json`."""
        return cls(str(d["name"]), tuple(dict(c) for c in d["configs"]), tuple(float(v) for v in d["values"]))
