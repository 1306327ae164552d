"""FIFO scheduling: every trial runs to its end; the searcher alone decides what runs."""

from __future__ import annotations

from typing import Any

from tunebench.errors import UserError
from tunebench.schedulers.base import Scheduler
from tunebench.searchers.base import Searcher
from tunebench.types import Decision, Objectives, Result, Suggestion, Trial, metric_to_minimize

# metric_to_minimize: defined in tunebench.types (L0, beside Objectives.vector), importable from here too
__all__ = ["FIFOScheduler", "metric_and_resource", "metric_to_minimize", "result_resource"]

_CONTINUE = Decision.CONTINUE


def result_resource(result: Result, resource_attr: str, trial_id: int | None = None) -> float:
    """The value of ``resource_attr`` in ``result`` (e.g. the epoch).

    Raises:
        UserError: (a ``ValueError``) the result has no ``resource_attr``, or it is not a number.
    """
    try:
        value = result[resource_attr]
    except KeyError:
        who = "" if trial_id is None else f" of trial {trial_id}"
        raise UserError(
            f"the result{who} has no resource '{resource_attr}' (reported keys: "
            f"{', '.join(sorted(result))}); report it from the script, or pass --resource-attr"
        ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"resource '{resource_attr}' = {value!r} is not a number")
    return value


def metric_and_resource(result: Result, metric: str, mode: str, resource_attr: str, trial_id: int) -> tuple[float, Any]:
    """``(float(result[metric]), result[resource_attr])``, as reported (not negated, NaN kept).

    Raises:
        UserError: (a ``ValueError``) the metric or the resource is missing or not a number.
    """
    try:
        return float(result[metric]), result[resource_attr]
    except (KeyError, TypeError, ValueError):
        metric_to_minimize(result, metric, mode, trial_id)  # raises a clear UserError
        result_resource(result, resource_attr, trial_id)
        raise


class FIFOScheduler(Scheduler):
    """Starts the searcher's configurations in order and lets every trial run to its end.

    Args:
        searcher: proposes the configurations; its ``config_space``, ``metric`` and ``mode``
            become the scheduler's.
        resource_attr: name of the reported resource; when set, results must carry it.
        max_resource_attr: name of the config entry with the maximum resource (informational).
        objectives: every metric the searcher optimizes, for a multi-objective searcher (NSGA-II,
            MOREA); results must carry each. ``None``: the searcher's metric alone.
    """

    def __init__(
        self,
        searcher: Searcher,
        *,
        resource_attr: str | None = None,
        max_resource_attr: str | None = None,
        objectives: Objectives | None = None,
    ):
        self._use_searcher(searcher, resource_attr, max_resource_attr)
        self._objectives = objectives if objectives is not None and objectives.is_multi else None
        # skip the call when the searcher keeps the base class's no-op (saves time per report)
        self._searcher_on_result = (
            None if type(searcher).on_result is Searcher.on_result else searcher.on_result
        )

    @property
    def objectives(self) -> Objectives:
        """The metrics results must carry: ``objectives`` if given, else the searcher's metric."""
        return self._objectives if self._objectives is not None else super().objectives

    def suggest(self, trial_id: int) -> Suggestion | None:
        """Called when a worker is free: start the searcher's next configuration, or ``None``
        when the searcher has nothing left (never resumes: FIFO never pauses)."""
        config = self.searcher.suggest(trial_id)
        if config is None:
            return None
        return Suggestion.start(config)

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result: forwards it to the searcher and returns CONTINUE.

        Raises:
            UserError: the result lacks the metric (or one of the objectives; see
                :func:`metric_to_minimize`), or no
                resource when ``resource_attr`` is set.
        """
        try:
            float(result[self.metric])
            if self.resource_attr is not None:
                result[self.resource_attr]
        except (KeyError, TypeError, ValueError):
            metric_to_minimize(result, self.metric, self.mode, trial.trial_id)  # raises a clear UserError
            if self.resource_attr is not None:
                result_resource(result, self.resource_attr, trial.trial_id)
            raise
        if self._objectives is not None:
            self._objectives.vector(result, trial.trial_id)  # each metric there and a number, else a UserError
        if self._searcher_on_result is not None:
            self._searcher_on_result(trial.trial_id, trial.config, result)
        return _CONTINUE

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called once when the trial's script exits normally: tells the searcher."""
        self.searcher.on_complete(trial.trial_id, trial.config, result)

    def on_error(self, trial: Trial) -> None:
        """Called once when the trial failed: tells the searcher."""
        self.searcher.on_error(trial.trial_id, trial.config)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the searcher's."""
        return {"searcher": self.searcher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict`."""
        self.searcher.load_state_dict(state["searcher"])
