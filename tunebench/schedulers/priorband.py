"""PriorBand (Mallik et al. 2023): synchronous Hyperband whose new configs come from the user's
prior, the incumbent or uniformly (:class:`tunebench.searchers.priorband.PriorBandSearcher`).

The published method runs on *synchronous* Hyperband (NePS: Hyperband with synchronous
promotions), so this is :class:`~tunebench.schedulers.synchronous.SynchronousHyperband` with two
additions:

* before each new config it tells the searcher the first rung of the bracket being filled
  (bracket ``b`` starts at rung ``b``), which sets the uniform share ``1 / (1 + eta**b)``;
* ``prior_at_target`` (on by default, as NePS's ``PriorBand`` class, whose
  ``sample_default_at_target`` the paper's experiments used): the very first new config (the
  searcher's first, the prior's mode) runs straight to ``max_t`` *outside* the brackets: it takes
  no slot of any rung, is never paused or promoted, and closes no rung; its results reach the
  searcher (incumbent, dynamic prior/incumbent split) like any other. The other workers fill
  bracket 0 as usual, so a good prior shows at ``max_t`` after one full-length training instead
  of after bracket 0's first rungs close.
"""

from __future__ import annotations

import logging
from typing import Any

from tunebench.schedulers.synchronous import SynchronousHyperband, _SyncTrial
from tunebench.types import Suggestion

logger = logging.getLogger(__name__)

__all__ = ["PriorBandScheduler"]


class PriorBandScheduler(SynchronousHyperband):
    """:class:`SynchronousHyperband` over a searcher with a ``set_bracket(base_rung)`` method
    (:class:`~tunebench.searchers.priorband.PriorBandSearcher`); same arguments, plus:

    Args:
        prior_at_target: run the first new config (the prior's mode when the searcher starts
            from it) to ``max_t`` outside the bracket accounting (see the module docstring).
    """

    def __init__(self, searcher: Any, *, prior_at_target: bool = True, **kwargs: Any):
        super().__init__(searcher, **kwargs)
        self._set_bracket = searcher.set_bracket
        self.prior_at_target = bool(prior_at_target)
        #: the first config is still to start outside the brackets
        self._target_pending = self.prior_at_target
        #: the trial that runs the first config to ``max_t`` outside the brackets, once started
        self.target_trial: int | None = None

    def suggest(self, trial_id: int) -> Suggestion | None:
        """The first call (with ``prior_at_target``) starts the first config at ``max_t``,
        outside the brackets; then the next job of the current rung (see the base class)."""
        if self._target_pending:
            self._set_bracket(self._bracket)
            config = self.searcher.suggest(trial_id)
            if config is None:
                return None
            self._target_pending = False
            self.target_trial = trial_id
            # bracket number 0: launched in no bracket; its level is the last: never paused
            self._trials[trial_id] = _SyncTrial(0, self._last_level)
            logger.debug("trial %d runs the first config to max_t=%s outside the brackets", trial_id, self.max_t)
            return Suggestion.start(config)
        return super().suggest(trial_id)

    def _launch(self, trial_id: int) -> Suggestion | None:
        if not self._queue:  # a new config, not a promotion: the searcher needs the bracket
            self._set_bracket(self._bracket)
        return super()._launch(trial_id)

    def state_dict(self) -> dict[str, Any]:
        """The base class's snapshot plus the trial run outside the brackets."""
        state = super().state_dict()
        state["target_pending"] = self._target_pending
        state["target_trial"] = self.target_trial
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (one written before ``prior_at_target``
        existed has no trial outside the brackets, and starts none)."""
        super().load_state_dict(state)
        self._target_pending = bool(state.get("target_pending", False))
        target = state.get("target_trial")
        self.target_trial = None if target is None else int(target)
