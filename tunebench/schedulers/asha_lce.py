"""ASHA with learning-curve extrapolation stopping (``ASHA-LCE``).

Stopping-type ASHA (:class:`~tunebench.schedulers.asha.ASHA`) whose rung decisions also stop a
trial that ASHA would keep when its learning curve, extrapolated to ``max_t``, is unlikely to
beat the best trials finished so far (after Domhan, Springenberg, Hutter: "Speeding up automatic
hyperparameter optimization of deep neural networks by extrapolation of learning curves", IJCAI
2015, here with one power law per curve):

* every accepted result of a trial is a point of its curve (the metric to minimize);
* at a rung where ASHA says CONTINUE, once ``min_finished`` trials reached ``max_t`` and the
  trial's curve has ``min_points`` points or more, the curve is extrapolated to ``max_t``
  (:class:`~tunebench.models.curves.PowerLawExtrapolation`: a mixture of power-law fits
  ``a + b * r**-c``) and the trial is stopped if ``P(value at max_t < threshold) < p``, where the
  threshold is the ``quantile`` of the values the finished trials reached at ``max_t`` (0: the
  incumbent);
* nothing else changes: the rungs, the brackets and the searcher are ASHA's.

Determinism and resume: the state is ASHA's plus the curves and the finished values.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np

from tunebench.models.curves import PowerLawExtrapolation
from tunebench.schedulers.asha import ASHA
from tunebench.searchers.base import Searcher
from tunebench.types import Decision, Result, Status, Trial

logger = logging.getLogger(__name__)

__all__ = ["ASHALCE"]

_CONTINUE = Decision.CONTINUE
_STOP = Decision.STOP
_RUNNING = Status.RUNNING


class ASHALCE(ASHA):
    """Stopping-type ASHA with learning-curve extrapolation stopping (see the module docstring).

    Args:
        searcher, resource_attr, max_t, grace_period, reduction_factor, rung_levels,
        max_resource_attr, brackets, seed: as in :class:`~tunebench.schedulers.asha.ASHA`.
        p: stop a trial whose probability of beating the threshold at ``max_t`` is below ``p``.
        quantile: the threshold is this quantile (in [0, 1]; lower is better) of the values
            finished trials reached at ``max_t``.
        min_finished: finished trials needed before extrapolation stops anything (>= 1).
        min_points: points a curve needs to be extrapolated (>= 3).

    Raises:
        ValueError: an invalid argument (the message names it).
    """

    def __init__(
        self,
        searcher: Searcher,
        *,
        resource_attr: str,
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        rung_levels: list[int] | None = None,
        max_resource_attr: str | None = None,
        brackets: int | Literal["all"] | None = 1,
        seed: int | None = None,
        p: float = 0.05,
        quantile: float = 0.25,
        min_finished: int = 3,
        min_points: int = 3,
    ) -> None:
        super().__init__(searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
                         reduction_factor=reduction_factor, rung_levels=rung_levels, type="stopping",
                         max_resource_attr=max_resource_attr, brackets=brackets, seed=seed)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p < 1.0:
            raise ValueError(f"p must be a probability in (0, 1), got {p!r}")
        if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0.0 <= quantile <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {quantile!r}")
        if isinstance(min_finished, bool) or not isinstance(min_finished, int) or min_finished < 1:
            raise ValueError(f"min_finished must be an integer >= 1, got {min_finished!r}")
        if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 3:
            raise ValueError(f"min_points must be an integer >= 3, got {min_points!r}")
        self.p = float(p)
        self.quantile = float(quantile)
        self.min_finished = min_finished
        self.min_points = min_points
        self._curves: dict[int, tuple[list[float], list[float]]] = {}
        self._finished: dict[int, float] = {}
        #: trials stopped by the extrapolation (not by ASHA's rule)
        self.lce_stopped: list[int] = []

    def threshold(self) -> float | None:
        """The value a trial must be likely to beat at ``max_t`` (``None``: too few finished)."""
        if len(self._finished) < self.min_finished:
            return None
        return float(np.quantile(np.fromiter(self._finished.values(), float), self.quantile))

    def prob_beats_threshold(self, trial_id: int) -> float | None:
        """The probability that the trial's extrapolated value at ``max_t`` is below
        :meth:`threshold` (``None``: no threshold yet, or too few points on its curve)."""
        thr = self.threshold()
        curve = self._curves.get(trial_id)
        if thr is None or curve is None or len(set(curve[0])) < self.min_points:
            return None
        r, v = curve
        return PowerLawExtrapolation.fit(np.asarray(r), np.asarray(v), float(self.max_t)).prob_below(thr)

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """ASHA's decision; at a rung where it is CONTINUE (below ``max_t``), STOP if the
        extrapolated curve is unlikely to beat the threshold (see the module docstring)."""
        tid = trial.trial_id
        st = self._trials.get(tid)
        before = (st.last, st.next_rung) if st is not None else (-math.inf, 0)
        decision = super().on_result(trial, result)
        st = self._trials[tid]
        r = result[self.resource_attr]
        if st.last != r or not r > before[0]:
            return decision  # ignored by ASHA (a trial not running, or a re-reported resource)
        value = float(result[self.metric])
        if value != value:
            return decision
        value = -value if self._negate else value
        rs, vs = self._curves.setdefault(tid, ([], []))
        rs.append(float(r))
        vs.append(value)
        if r >= self.max_t:
            self._finished.setdefault(tid, value)
            return decision
        if decision is not _CONTINUE or st.next_rung == before[1]:
            return decision
        prob = self.prob_beats_threshold(tid)
        if prob is None or prob >= self.p:
            return decision
        logger.debug("ASHA-LCE: trial %d stopped at %s (P(beat %.4g) = %.3g)", tid, r, self.threshold(), prob)
        st.status = Status.STOPPED
        self.lce_stopped.append(tid)
        if self._searcher_on_stop is not None:
            self._searcher_on_stop(tid, trial.config, False)
        return _STOP

    def state_dict(self) -> dict[str, Any]:
        """ASHA's snapshot plus the curves, the finished values and the trials stopped by extrapolation."""
        state = super().state_dict()
        state["lce"] = {
            "ids": list(self._curves),
            "resources": [c[0] for c in self._curves.values()],
            "values": [c[1] for c in self._curves.values()],
            "finished_ids": list(self._finished),
            "finished_values": list(self._finished.values()),
            "stopped": list(self.lce_stopped),
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (same constructor arguments)."""
        super().load_state_dict(state)
        lce = state["lce"]
        self._curves = {int(t): ([float(x) for x in r], [float(x) for x in v])
                        for t, r, v in zip(lce["ids"], lce["resources"], lce["values"], strict=True)}
        self._finished = {int(t): float(v) for t, v in zip(lce["finished_ids"], lce["finished_values"], strict=True)}
        self.lce_stopped = [int(t) for t in lce["stopped"]]
