"""PriorBand (Mallik et al. 2023): synchronous Hyperband whose new configs come from the user's
prior, the incumbent or uniformly (:class:`tunebench.searchers.priorband.PriorBandSearcher`).

The published method runs on *synchronous* Hyperband (NePS: Hyperband with synchronous
promotions), so this is :class:`~tunebench.schedulers.synchronous.SynchronousHyperband` with one
addition: before each new config it tells the searcher the first rung of the bracket being
filled (bracket ``b`` starts at rung ``b``), which sets the uniform share ``1 / (1 + eta**b)``.
"""

from __future__ import annotations

from typing import Any

from tunebench.schedulers.synchronous import SynchronousHyperband
from tunebench.types import Suggestion

__all__ = ["PriorBandScheduler"]


class PriorBandScheduler(SynchronousHyperband):
    """:class:`SynchronousHyperband` over a searcher with a ``set_bracket(base_rung)`` method
    (:class:`~tunebench.searchers.priorband.PriorBandSearcher`); same arguments."""

    def __init__(self, searcher: Any, **kwargs: Any):
        super().__init__(searcher, **kwargs)
        self._set_bracket = searcher.set_bracket

    def _launch(self, trial_id: int) -> Suggestion | None:
        if not self._queue:  # a new config, not a promotion: the searcher needs the bracket
            self._set_bracket(self._bracket)
        return super()._launch(trial_id)
