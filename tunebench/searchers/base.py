"""The searcher contract (L1): *what* configuration a new trial gets.

See :mod:`tunebench.schedulers.base` for the rules (determinism, JSON-able state) that
searchers follow too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from tunebench.types import Config, Result

_MODES = ("min", "max")


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is ``"min"`` or ``"max"``; raise a clear ``ValueError`` otherwise."""
    if mode not in _MODES:
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


class Searcher(ABC):
    """Proposes configurations for new trials.

    Args:
        config_space: name -> domain (see :mod:`tunebench.space`) or constant.
        metric: name of the metric to optimize, as reported by the training script.
        mode: ``"min"`` or ``"max"``.
        seed: seed of the searcher's random number generator.
    """

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str = "min", seed: int = 0):
        self.config_space = config_space
        self.metric = metric
        self.mode = check_mode(mode)
        self.seed = seed

    @abstractmethod
    def suggest(self, trial_id: int) -> Config | None:
        """Called when the scheduler wants a new configuration for trial ``trial_id``.

        Returns the configuration (constants of the space included), or ``None`` when the
        searcher has nothing left to propose (e.g. a grid is exhausted).
        """

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for every result of a trial this searcher proposed (multi-fidelity models use
        all of them). Default: nothing."""

    def on_complete(self, trial_id: int, config: Config, result: Result | None) -> None:
        """Called once when a trial ends normally, with its last result (if any). Default: nothing."""

    def on_error(self, trial_id: int, config: Config) -> None:
        """Called once when a trial failed. Default: nothing."""

    def on_stop(self, trial_id: int, config: Config, paused: bool) -> None:
        """Called when the scheduler decides to stop (``paused=False``) or pause
        (``paused=True``) a trial this searcher proposed, right after the result that led to the
        decision: the trial reports nothing more unless it is resumed (then :meth:`on_resume`).
        Model-based searchers use it to drop the trial from their pending evaluations.
        Default: nothing."""

    def on_resume(self, trial_id: int) -> None:
        """Called when the scheduler resumes a paused trial (promotion) of this searcher; the
        searcher knows its config from :meth:`suggest`. Default: nothing."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (RNG state included). Default: empty."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""
