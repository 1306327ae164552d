"""PASHA: ASHA with a maximum resource that grows only while it is needed.

Bohdal, Balles, Wistuba, Ermis, Archambeau, Zappella: "PASHA: Efficient HPO and NAS with
Progressive Resource Allocation", ICLR 2023 (arXiv:2207.06940).

PASHA is promotion-type :class:`~tunebench.schedulers.asha.ASHA` whose *current maximum
resource* starts at the second rung level (for ``grace_period=1, reduction_factor=3,
max_t=27``: rungs 1, 3, 9, end 27 -> start at 3).  A trial reaching the current maximum is
paused there (not stopped: it can be resumed later) and is not promoted further.  After each
result, PASHA compares the rankings of the configurations in the *top two current rungs*: the
trials recorded at the top rung, ranked by their value there, against the same trials ranked by
their value at the rung below.  While the two rankings agree, the maximum stays (a longer
training would not change which configurations look best); when they disagree, the next rung
is added (the maximum becomes the next rung level, up to ``max_t``), and the trials paused at
the former top become promotion candidates like in ASHA.

**Soft ranking** (the paper's criterion).  Two configurations whose values differ by at most
``epsilon`` are considered tied.  With both rankings listed best first, the rankings agree if,
for every position ``i``, the configuration at position ``i`` of the top-rung ranking has a
lower-rung value within ``epsilon`` of the value at position ``i`` of the lower-rung ranking
(i.e. it lies in the group of configurations equivalent to the ``i``-th one).
``epsilon=0`` is the hard criterion (identical rankings up to exact ties).

**epsilon="auto"** (default, as in the paper): ``epsilon`` is the ``epsilon_percentile``-th
percentile (default 90) of the distances between the values of pairs of configurations whose
learning curves cross between two consecutive reports, i.e. whose order at resource ``r``
differs from their order at the previous resource ``r'`` (distance measured at ``r``): a
measure of how much noise reorders configurations from one epoch to the next, over all the
learning curves seen.  To keep the cost of a report bounded, each report is compared with the
last :data:`NOISE_WINDOW` reports made at the same pair ``(r', r)``, and the percentile is
taken over the last :data:`NOISE_CROSSINGS` distances found.  With no crossing seen yet,
``epsilon`` is 0 (the hard criterion).

Cost: the ranking test needs the largest deviation between the two rankings, recomputed (a
sort of the top rung) only when the top rung gains or loses a trial; each result then costs a
comparison with ``epsilon``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from heapq import heappush
from typing import Any

import numpy as np

from tunebench.schedulers.asha import ASHA, _Rung, _TrialState
from tunebench.searchers.base import Searcher
from tunebench.types import Decision, Result, Status, Trial, json_float, to_minimize

logger = logging.getLogger(__name__)

__all__ = ["PASHA", "NOISE_CROSSINGS", "NOISE_WINDOW"]

#: reports at the same pair of consecutive resources that a new report is compared with
NOISE_WINDOW = 64
#: most recent crossing distances the automatic epsilon is the percentile of
NOISE_CROSSINGS = 2000

_PAUSE = Decision.PAUSE
_STOP = Decision.STOP
_RUNNING = Status.RUNNING
_PAUSED = Status.PAUSED


def ranking_deviation(top: list[tuple[float, int]], lower: dict[int, float]) -> float:
    """Largest deviation between two rankings of the trials of the top rung.

    ``top``: (value at the top rung, trial id) sorted best first; ``lower``: trial id -> value
    at the rung below.  Returns ``max_i |lower[top[i]] - sorted(lower values)[i]|`` over the
    trials present in both (0 if fewer than 2): the rankings agree under soft ranking with
    ``epsilon`` iff this is ``<= epsilon``.
    """
    ranked = [lower[tid] for _, tid in top if tid in lower]
    if len(ranked) < 2:
        return 0.0
    a = np.asarray(ranked)
    b = np.sort(a)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    diff[a == b] = 0.0  # equal infinities
    return float(diff.max())


class PASHA(ASHA):
    """Progressive ASHA (see the module docstring): promotion-type ASHA with one bracket whose
    maximum resource grows from the second rung level towards ``max_t`` only while the rankings
    of the top two current rungs disagree.

    Args:
        searcher: proposes new configurations.
        resource_attr: name of the reported resource (e.g. ``"epoch"``).
        max_t: the largest resource a trial may reach; PASHA never trains beyond it.
        grace_period: first rung level.
        reduction_factor: ``eta``; the top ``1/eta`` of a rung are promoted.
        rung_levels: explicit rung levels in ``(0, max_t)`` (default ``grace_period * eta**k``).
        max_resource_attr: name of the config entry with the maximum resource (the script then
            ends by itself at ``max_t``).
        epsilon: tolerance of the soft ranking in units of the metric (``>= 0``), or ``"auto"``
            (estimated from crossing learning curves, see the module docstring).
        epsilon_percentile: percentile (in ``[0, 100]``) of the crossing distances used by
            ``epsilon="auto"``.
        seed: seed of ASHA's own RNG (unused with one bracket; kept for symmetry).

    Raises:
        ValueError: invalid arguments (the message names the argument).
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
        epsilon: float | str = "auto",
        epsilon_percentile: float = 90.0,
        seed: int | None = None,
    ):
        if isinstance(epsilon, str):
            if epsilon != "auto":
                raise ValueError(f"epsilon must be a number >= 0 or 'auto', got {epsilon!r}")
        elif isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon >= 0:
            raise ValueError(f"epsilon must be a number >= 0 or 'auto', got {epsilon!r}")
        if not 0 <= epsilon_percentile <= 100:
            raise ValueError(f"epsilon_percentile must be in [0, 100], got {epsilon_percentile!r}")
        super().__init__(
            searcher,
            resource_attr=resource_attr,
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            rung_levels=rung_levels,
            type="promotion",
            max_resource_attr=max_resource_attr,
            brackets=1,
            seed=seed,
        )
        self.epsilon = epsilon
        self.epsilon_percentile = float(epsilon_percentile)
        self._auto = epsilon == "auto"
        n_rungs = len(self.rung_levels)
        #: index of the rung where trials are capped (the current maximum); ``n_rungs``: no cap,
        #: the maximum is ``max_t``
        self._top = min(1, n_rungs)
        self._deviation = 0.0  #: ranking_deviation of the current top two rungs (derived)
        self._top_dirty = False
        #: trial id -> (resource, value) of its last accepted report (trials not ended)
        self._last_report: dict[int, tuple[float, float]] = {}
        #: (previous resource, resource) -> recent (value there, value here) pairs
        self._windows: dict[tuple[float, float], deque[tuple[float, float]]] = {}
        self._crossings: deque[float] = deque(maxlen=NOISE_CROSSINGS)
        self._eps_cache: float | None = 0.0 if self._auto else float(epsilon)

    # -- introspection -----------------------------------------------------------------------------

    @property
    def current_max_t(self) -> float:
        """The current maximum resource: trials reaching it are paused (``max_t`` at the end)."""
        return self.rung_levels[self._top] if self._top < len(self.rung_levels) else self.max_t

    @property
    def current_epsilon(self) -> float:
        """The soft-ranking tolerance in force (estimated with ``epsilon="auto"``)."""
        if self._eps_cache is None:
            self._eps_cache = (
                float(np.percentile(np.fromiter(self._crossings, float), self.epsilon_percentile))
                if self._crossings else 0.0
            )
        return self._eps_cache

    @property
    def ranking_deviation(self) -> float:
        """Largest deviation between the rankings of the top two current rungs (see
        :func:`ranking_deviation`); the maximum grows when it exceeds :attr:`current_epsilon`."""
        return self._deviation

    # -- contract ----------------------------------------------------------------------------------

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result: ASHA's decision (with trials paused at the current maximum),
        then the noise estimate is updated and, if the rankings of the top two rungs disagree
        by more than epsilon, the maximum resource grows by one rung.

        Raises:
            UserError: the result lacks the metric or the resource.
        """
        tid = trial.trial_id
        st = self._trials.get(tid)
        accepted_before = st is None or st.status is _RUNNING
        last_before = -math.inf if st is None else st.last
        decision = super().on_result(trial, result)
        st = self._trials[tid]
        if not accepted_before or st.last == last_before:
            return decision  # ignored by ASHA (paused/stopped trial, or an old resource re-reported)
        r = st.last
        value = to_minimize(float(result[self.metric]), self.mode)
        if self._auto and self._top < len(self.rung_levels):  # the noise estimate is still needed
            self._update_noise(tid, r, value)
            if decision is _STOP:
                self._last_report.pop(tid, None)
            else:
                self._last_report[tid] = (r, value)
        self._check_rankings()
        return decision

    def _on_rung(self, st: _TrialState, tid: int, value: float, r: float, rungs: list[_Rung]) -> Decision:
        """ASHA's decision at a rung, with the trial paused at the rung of the current maximum
        (it goes no further there, whatever its rank, until the maximum grows)."""
        top = self._top
        if top >= len(rungs) or st.next_rung > top:
            return super()._on_rung(st, tid, value, r, rungs)
        # a resource beyond the maximum (coarse reports) counts as reaching the maximum
        decision = super()._on_rung(st, tid, value, min(r, rungs[top].level), rungs)
        if st.next_rung == top + 1:  # recorded at the current maximum
            self._top_dirty = True
            if decision is not _PAUSE:  # ASHA promoted it at once: undo, it waits here
                rung = rungs[top]
                rung.promoted.discard(tid)
                st.status = _PAUSED
                heappush(rung.candidates, (value, tid))
                decision = _PAUSE
        return decision

    def _find_promotable(self, closing: bool = False) -> tuple[_Rung, int] | None:
        """ASHA's choice among the rungs below the current maximum: the candidates of the rungs
        at or above it (trials paused at the maximum) are hidden while ASHA searches."""
        capped = self._rungs[0][self._top:]
        saved = [rung.candidates for rung in capped]
        for rung in capped:
            rung.candidates = []
        try:
            return super()._find_promotable(closing)
        finally:
            for rung, candidates in zip(capped, saved, strict=True):
                rung.candidates = candidates

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called once when the trial's script exits normally."""
        self._last_report.pop(trial.trial_id, None)
        super().on_complete(trial, result)

    def on_error(self, trial: Trial) -> None:
        """Called once when the trial failed: removed from the rungs (the ranking test is
        recomputed without it)."""
        self._last_report.pop(trial.trial_id, None)
        super().on_error(trial)
        self._update_deviation()

    # -- ranking test and noise ----------------------------------------------------------------------

    def _update_deviation(self) -> None:
        self._top_dirty = False
        top = self._top
        if top >= len(self.rung_levels) or top < 1:
            self._deviation = 0.0
            return
        rungs = self._rungs[0]
        lower = {tid: v for v, tid in rungs[top - 1].entries}
        self._deviation = ranking_deviation(rungs[top].entries, lower)

    def _check_rankings(self) -> None:
        if self._top_dirty:
            self._update_deviation()
        while self._top < len(self.rung_levels) and self._deviation > 0.0 and self._deviation > self.current_epsilon:
            old = self.current_max_t
            self._top += 1
            logger.info("PASHA: rankings of the top two rungs disagree (deviation %.4g > epsilon): "
                        "maximum resource %s -> %s", self._deviation, old, self.current_max_t)
            self._update_deviation()
        if self._top >= len(self.rung_levels) and self._last_report:  # max_t reached: no more tests
            self._last_report.clear()
            self._windows.clear()

    def _update_noise(self, tid: int, r: float, value: float) -> None:
        """Compare the report (r, value) of ``tid`` with recent reports at the same pair of
        consecutive resources; record the distances of the pairs whose order changed."""
        prev = self._last_report.get(tid)
        if prev is None or not math.isfinite(value):
            return
        r0, v0 = prev
        if not math.isfinite(v0):
            return
        key = (r0, r)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = deque(maxlen=NOISE_WINDOW)
        found = False
        for a0, a in window:
            if (v0 - a0) * (value - a) < 0:  # the order changed between r0 and r
                self._crossings.append(abs(value - a))
                found = True
        window.append((v0, value))
        if found:
            self._eps_cache = None

    # -- state ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot: ASHA's, plus the current maximum and the noise estimate's data."""
        state = super().state_dict()
        state["pasha"] = {
            "top": self._top,
            "last_report": {str(tid): [r, json_float(v)] for tid, (r, v) in self._last_report.items()},
            "windows": [[r0, r, [[a0, a] for a0, a in w]] for (r0, r), w in self._windows.items()],
            "crossings": list(self._crossings),
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (taken with the same constructor arguments)."""
        super().load_state_dict(state)
        pasha = state["pasha"]
        self._top = int(pasha["top"])
        self._last_report = {int(tid): (r, float(v)) for tid, (r, v) in pasha["last_report"].items()}
        self._windows = {
            (r0, r): deque(((float(a0), float(a)) for a0, a in w), maxlen=NOISE_WINDOW)
            for r0, r, w in pasha["windows"]
        }
        self._crossings = deque((float(x) for x in pasha["crossings"]), maxlen=NOISE_CROSSINGS)
        self._eps_cache = None if self._auto else float(self.epsilon)
        self._update_deviation()

