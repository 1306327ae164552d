"""Multi-objective asynchronous successive halving, MOASHA (Schmucker et al. 2021) (L1).

:class:`~tunebench.schedulers.asha.ASHA` with rungs that record each trial's vector of
objectives (minimization form, :meth:`tunebench.types.Objectives.vector`) instead of one value,
and "top ``1/eta`` of the rung" decided by non-dominated sorting with a tie-break inside a front
(the ε-net of the paper, or NSGA-II's crowding distance): :func:`tunebench.pareto.is_in_top`.
Stopping and promotion types, brackets, ``max_t`` and the state snapshot are ASHA's.

Cost: one non-dominated sort of the rung per result at a rung level (moocore, in C), ordering
only the front that straddles the cut; see ``benchmarks/pareto_speed.py``.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np

from tunebench.pareto import TieBreak, is_in_top, rank_by_nondominated_sorting
from tunebench.schedulers.asha import ASHA
from tunebench.searchers.base import Searcher
from tunebench.types import Decision, Objectives, Result, Status, Trial, json_float

__all__ = ["MOASHA"]

_PAUSED = Status.PAUSED


class _VectorRung:
    """The results recorded at one rung level: objective vectors (minimization form) in arrival
    order, with the same questions answered as ASHA's scalar rung."""

    __slots__ = ("level", "_eta", "_min_one", "vectors", "tids", "_rows", "_Y", "n", "promoted", "candidates",
                 "tie_break", "_order")

    def __init__(self, level: float, eta: float = 3, min_one: bool = False):
        self.level = level
        self._eta = eta
        self._min_one = min_one
        self.tie_break: TieBreak = "eps_net"  #: set by MOASHA
        self.vectors: list[tuple[float, ...]] = []
        self.tids: list[int] = []
        self._rows: dict[int, int] = {}
        self._Y: np.ndarray | None = None  # rows 0..n-1 hold the vectors (capacity doubles)
        self.n = 0
        self.promoted: set[int] = set()
        self.candidates: list[int] = []  #: trials paused here (some may have been promoted since)
        self._order: tuple[int, list[int]] | None = None  #: (n, order()) cached until the rung changes

    def k(self, n: int) -> int:
        """How many of ``n`` results are "top" results (as ASHA's rung)."""
        k = int(n / self._eta)
        return 1 if self._min_one and k < 1 else k

    def add(self, value: tuple[float, ...], tid: int) -> bool:
        """Record the vector of trial ``tid``; whether it is in the top ``k`` now."""
        self._append(value, tid)
        return is_in_top(self._Y[: self.n], self.n - 1, self.k(self.n), self.tie_break)  # type: ignore[index]

    def _append(self, value: tuple[float, ...], tid: int) -> None:
        if self._Y is None or self.n == len(self._Y):
            grown = np.empty((max(16, 2 * self.n), len(value)))
            if self._Y is not None:
                grown[: self.n] = self._Y[: self.n]
            self._Y = grown
        self._Y[self.n] = value
        self._rows[tid] = self.n
        self.vectors.append(tuple(value))
        self.tids.append(tid)
        self.n += 1

    def in_top_of(self, tid: int, closing: bool) -> bool:
        """Whether trial ``tid``'s vector is in the top ``k`` (``max(1, k)`` when ``closing``)."""
        k = self.k(self.n)
        if closing and k < 1:
            k = 1
        assert self._Y is not None
        return is_in_top(self._Y[: self.n], self._rows[tid], k, self.tie_break)

    def order(self) -> list[int]:
        """The trials of the rung, best first (non-dominated sorting, then the tie-break); sorted
        again only when the rung got an entry since the last call (promotion asks at each
        suggest). A copy: the caller may keep it."""
        if not self.n:
            return []
        cached = self._order
        if cached is None or cached[0] != self.n:
            assert self._Y is not None
            cached = self._order = (self.n, [self.tids[i] for i in rank_by_nondominated_sorting(
                self._Y[: self.n], self.tie_break)])
        return list(cached[1])

    @property
    def entries(self) -> list[tuple[tuple[float, ...], int]]:
        """(vector, trial id) in arrival order (what a snapshot saves)."""
        return list(zip(self.vectors, self.tids, strict=True))

    def load_saved(self, values: list[Any], trials: list[Any]) -> None:
        self.vectors, self.tids, self._rows, self._Y, self.n, self._order = [], [], {}, None, 0, None
        for value, tid in zip(values, trials, strict=True):
            self._append(tuple(float(v) for v in value), int(tid))

    def add_candidate(self, value: tuple[float, ...], tid: int) -> None:
        self.candidates.append(tid)

    def reset_candidates(self, paused: set[int]) -> None:
        self.candidates = [t for t in self.tids if t in paused]

    def remove(self, tid: int) -> None:
        """Forget the entry of trial ``tid`` (a failed trial). O(n): failures are rare."""
        if tid not in self._rows:
            return
        kept = [(v, t) for v, t in self.entries if t != tid]
        self.load_saved([list(v) for v, _ in kept], [t for _, t in kept])


class MOASHA(ASHA):
    """Multi-objective ASHA: ASHA's arguments, plus ``objectives`` (the metrics and their modes;
    ``searcher`` proposes the configs and is told the first metric) and ``tie_break``
    (``"eps_net"``, the paper's, or ``"crowding"``).

    Raises:
        ValueError: invalid arguments (the message names the argument).
    """

    _rung_class = _VectorRung

    def __init__(self, searcher: Searcher, *, objectives: Objectives,
                 tie_break: Literal["eps_net", "crowding"] = "eps_net", **asha_options: Any):
        if tie_break not in ("eps_net", "crowding"):
            raise ValueError(f"tie_break must be 'eps_net' or 'crowding', got {tie_break!r}")
        self._objectives = objectives
        self.tie_break = tie_break
        super().__init__(searcher, **asha_options)
        for rungs in self._rungs:
            for rung in cast("list[_VectorRung]", rungs):
                rung.tie_break = tie_break

    @property
    def objectives(self) -> Objectives:
        """The metrics this scheduler decides on (every result must carry each)."""
        return self._objectives

    def state_dict(self) -> dict[str, Any]:
        """ASHA's snapshot, each recorded vector a list (an infinite value, a diverged trial's, as
        the string ``"inf"``: JSON has no infinity)."""
        state = super().state_dict()
        for rungs in state["rungs"]:
            for rung in rungs:
                rung["values"] = [[json_float(x) for x in vector] for vector in rung["values"]]
        return state

    def rung_results(self, bracket: int = 0) -> dict[float, list[tuple[float, int]]]:
        """Rung level -> (vector in minimization form, trial id) recorded there, best first."""
        out: dict[float, list[Any]] = {}
        for rung in cast("list[_VectorRung]", self._rungs[bracket]):
            rows = dict(zip(rung.tids, rung.vectors, strict=True))
            out[rung.level] = [(rows[t], t) for t in rung.order()]
        return out

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result of a running trial: ASHA's decision, a rung recording the
        trial's vector of objectives (a result must carry every metric: a UserError names the
        missing one)."""
        self._objectives.vector(result, trial.trial_id)  # each metric there and a number, else a UserError
        return super().on_result(trial, result)

    def _rung_value(self, value: float, result: Result, tid: int) -> Any:
        """The vector of objectives in minimization form (ASHA records one value)."""
        return self._objectives.vector(result, tid)

    def _find_promotable(self, closing: bool = False) -> tuple[Any, int] | None:
        """The paused trial to promote: highest rung first; in a rung, the candidate ranked
        first, if it is in the top ``k`` (``max(1, k)`` when ``closing``); if it is not, no other
        candidate of that rung is."""
        trials = self._trials
        for _, _, scalar_typed in self._rung_order:
            rung = cast("_VectorRung", scalar_typed)  # (this class's rungs: _rung_class)
            live = [t for t in rung.candidates if t not in rung.promoted and trials[t].status is _PAUSED]
            rung.candidates = live
            if not live:
                continue
            waiting = set(live)
            best = next(t for t in rung.order() if t in waiting)
            if rung.in_top_of(best, closing):
                return rung, best
        return None

