"""Hyper-Tune's scheduler: asynchronous Hyperband whose brackets are drawn from a learned
distribution.

Li, Shen, Jiang, Gao, Zhang, Cui: "Hyper-Tune: Towards Efficient Hyper-parameter Tuning at
Scale", VLDB 2022.  :class:`HyperTuneScheduler` is :class:`~tunebench.schedulers.asha.HyperbandScheduler`
(stopping type by default, ``type="promotion"`` to pause and resume) with one change: the
bracket of a new trial is drawn from the distribution the
:class:`~tunebench.searchers.hypertune.HyperTuneSearcher` learns from how well each level's
model ranks the configurations of the highest supported level (brackets whose first level
predicts the top level well get more mass).  Until the searcher has weights, brackets follow
Hyperband's default distribution, drawn exactly as :class:`HyperbandScheduler` draws them.

The learned distribution is a function of the searcher's state, so this scheduler's state is
:class:`~tunebench.schedulers.asha.ASHA`'s.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from itertools import accumulate
from typing import Any, Literal

from tunebench.schedulers.asha import HyperbandScheduler
from tunebench.searchers.hypertune import HyperTuneSearcher

logger = logging.getLogger(__name__)

__all__ = ["HyperTuneScheduler"]


class HyperTuneScheduler(HyperbandScheduler):
    """Asynchronous Hyperband with Hyper-Tune's learned bracket distribution.

    Args:
        searcher: a :class:`~tunebench.searchers.hypertune.HyperTuneSearcher` whose levels are
            this scheduler's rung levels followed by ``max_t`` (so that its level ``b`` is where
            bracket ``b`` starts).
        brackets: as :class:`~tunebench.schedulers.asha.HyperbandScheduler` (default: all).
        **kwargs: the other arguments of :class:`~tunebench.schedulers.asha.ASHA`
            (``resource_attr``, ``max_t``, ``grace_period``, ``reduction_factor``,
            ``rung_levels``, ``type``, ``max_resource_attr``, ``seed``).

    Raises:
        ValueError: ``searcher`` is not a HyperTuneSearcher, or its levels do not match the
            brackets' first levels.
    """

    searcher: HyperTuneSearcher

    def __init__(self, searcher: HyperTuneSearcher, *, brackets: int | Literal["all"] | None = "all",
                 **kwargs: Any) -> None:
        if not isinstance(searcher, HyperTuneSearcher):
            raise ValueError(f"searcher must be a HyperTuneSearcher, got {type(searcher).__name__}")
        super().__init__(searcher, brackets=brackets, **kwargs)
        starts = self.bracket_start_levels
        if [float(x) for x in searcher.levels[: len(starts)]] != [float(x) for x in starts]:
            raise ValueError(
                f"the searcher's levels {searcher.levels} do not start with the brackets' first levels {starts}: "
                f"build the searcher with rung_levels={self.rung_levels} and max_t={self.max_t}"
            )
        self._default_cum = list(self._cum_weights)

    @property
    def bracket_start_levels(self) -> list[float]:
        """First rung level of each bracket (``max_t`` for a bracket without rungs)."""
        return [levels[0] if math.isfinite(levels[0]) else float(self.max_t) for levels in self._levels]

    def _default_probabilities(self) -> list[float]:
        total = self._default_cum[-1]
        return [(c - p) / total for c, p in zip(self._default_cum, [0, *self._default_cum[:-1]], strict=True)]

    def learned_probabilities(self) -> list[float] | None:
        """The searcher's learned bracket distribution, or ``None`` while it has no weights."""
        if self.brackets == 1:
            return None
        return self.searcher.bracket_distribution(self.bracket_start_levels, self._default_probabilities())

    @property
    def bracket_probabilities(self) -> list[float]:
        """Probability of each bracket for the next new trial: learned, else Hyperband's."""
        learned = self.learned_probabilities()
        return self._default_probabilities() if learned is None else learned

    def _draw_bracket(self) -> int:
        """Called for each new trial: a bracket drawn from :attr:`bracket_probabilities` (with
        no weights yet, exactly Hyperband's draw)."""
        learned = self.learned_probabilities()
        if learned is None:
            return super()._draw_bracket()
        cum = list(accumulate(learned))
        b = bisect_right(cum, float(self._rng.random()) * cum[-1])
        # b is never a zero-probability bracket (its cumulative sum equals the previous one);
        # only rounding at the top end can give len(learned): take the last possible bracket
        return min(b, max(i for i, p in enumerate(learned) if p > 0.0))
