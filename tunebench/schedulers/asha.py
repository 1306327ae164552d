"""Asynchronous successive halving (ASHA) and asynchronous Hyperband.

Li, Jamieson, Rostamizadeh, Gonina, Ben-tzur, Hardt, Recht, Talwalkar: "A System for Massively
Parallel Hyperparameter Tuning", MLSys 2020 (arXiv:1810.05934), Algorithm 2 and Section 3.3.

Trials are evaluated at *rung levels* of the resource (e.g. epochs 1, 3, 9 for ``max_t=27``,
``grace_period=1``, ``reduction_factor=3``).  At each rung, a trial whose metric is in the top
``1/eta`` of the values recorded there so far goes on; the others:

* ``type="stopping"``: are stopped at once (the variant Ray Tune and Syne Tune call "stopping"
  ASHA; no checkpoint needed);
* ``type="promotion"``: are paused; a paused trial is resumed ("promoted") by a later
  :meth:`ASHA.suggest` as soon as it is among the top ``1/eta`` of its rung (the paper's
  algorithm; needs the script to checkpoint).

**Small budgets** (promotion type): once no new trial may start (the tuner's ``max_trials``
are all started), :meth:`ASHA.suggest_resume` promotes the top ``max(1, floor(n / eta))`` of
each rung of ``n`` values (the stopping type's rule), without waiting for arrivals that will
not come: every rung with a value promotes at least its best, so the best trial of the rungs
reaches ``max_t``. With an unlimited budget nothing changes (``suggest`` keeps
``floor(n / eta)``).

With ``brackets > 1`` this is asynchronous Hyperband: each new trial is assigned a bracket
whose first rung is ``grace_period * eta**s``, so fewer trials are stopped very early.

Cost: :meth:`ASHA.on_result` is pure Python with two heaps per rung (see :class:`_Rung`) and
dicts keyed by trial id; about two microseconds per call, O(log n) in the size of the rung.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from heapq import heapify, heappop, heappush, heapreplace
from operator import attrgetter, itemgetter
from typing import Any, Literal

import numpy as np

from tunebench.fidelity import FidelityLadder, default_rung_levels, hyperband_bracket_weights
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import metric_to_minimize, result_resource
from tunebench.searchers.base import Searcher
from tunebench.types import Decision, Result, Status, Suggestion, Trial

logger = logging.getLogger(__name__)

__all__ = ["ASHA", "HyperbandScheduler", "default_rung_levels", "hyperband_bracket_weights"]

_CONTINUE = Decision.CONTINUE
_PAUSE = Decision.PAUSE
_STOP = Decision.STOP
_RUNNING = Status.RUNNING
_PAUSED = Status.PAUSED
_STOPPED = Status.STOPPED
_STATUS_VALUE = {status: status.value for status in Status}
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_NO_RESOURCE = -math.inf  #: last resource of a trial that reported none


class _Rung:
    """Results recorded at one rung level of one bracket.

    ASHA needs one question answered per result: is a value among the top ``k`` of the rung
    (fewer than ``k`` recorded values strictly better), where ``k`` grows with the number of
    values ``n`` (``k = int(n / eta)``, or ``max(1, int(n / eta))`` for the stopping type).  Two
    heaps answer it exactly in O(log n) with C-implemented ``heapq`` calls: ``_lower`` holds the
    ``k`` smallest values (negated: a max-heap), ``_upper`` the others; a value is in the top
    ``k`` iff it is <= the largest of the ``k`` smallest.  ``k`` grows by at most one per value
    (``eta >= 2``), so each insertion moves at most one value between the heaps.  (A sorted
    list with rank queries costs three times as much per result.)
    """

    __slots__ = ("level", "_entries", "_sorted", "promoted", "candidates", "_eta", "_min_one",
                 "_lower", "_upper", "n")

    def __init__(self, level: float, eta: float = 3, min_one: bool = False):
        self.level = level
        self._eta = eta
        self._min_one = min_one  #: k = max(1, int(n / eta)) (stopping type) instead of int(n / eta)
        self.n = 0  #: number of values recorded
        self._lower: list[float] = []  #: the k smallest values, negated (max-heap)
        self._upper: list[float] = []  #: the other values (min-heap)
        #: (value, trial id) in arrival order, sorted only when read (see :attr:`entries`)
        self._entries: list[tuple[float, int]] = []
        self._sorted = True
        #: trials that went on past this rung (promoted, or continued at once)
        self.promoted: set[int] = set()
        #: min-heap of (value, trial id) of the trials paused here: the promotion candidates.
        #: Entries that stopped being candidates (promoted, stopped, failed) are dropped when they
        #: reach the top, so finding the best candidate costs O(log n), not a scan of the rung.
        self.candidates: list[tuple[float, int]] = []

    def k(self, n: int) -> int:
        """How many of ``n`` values are "top" values."""
        k = int(n / self._eta)
        return 1 if self._min_one and k < 1 else k

    def add(self, value: float, tid: int) -> bool:
        """Record ``value`` (to minimize; not NaN) of trial ``tid``; returns whether it is in
        the top ``k`` of the rung, counting itself (fewer than ``k`` values strictly better)."""
        self._entries.append((value, tid))
        self._sorted = False
        n = self.n = self.n + 1
        k = int(n / self._eta)
        if self._min_one and k < 1:
            k = 1
        lower = self._lower
        upper = self._upper
        if len(lower) == k:  # k unchanged: the value enters one heap, or swaps with lower's max
            if lower and value < -lower[0]:
                heappush(upper, -heapreplace(lower, -value))
            else:
                heappush(upper, value)
        elif upper and upper[0] < value:  # k grew by one: the smallest of the others moves down
            heappush(lower, -heapreplace(upper, value))
        else:
            heappush(lower, -value)
        return k > 0 and value <= -lower[0]

    def in_top(self, value: float) -> bool:
        """Whether a recorded ``value`` is in the top ``k`` of the rung now."""
        lower = self._lower
        return bool(lower) and value <= -lower[0]

    def in_top_min_one(self, value: float) -> bool:
        """Whether a recorded ``value`` is in the top ``max(1, k)`` of the rung now (with
        ``k = 0`` the others are all in ``_upper``: the best value is its smallest)."""
        lower = self._lower
        if lower:
            return value <= -lower[0]
        upper = self._upper
        return bool(upper) and value <= upper[0]

    @property
    def values(self) -> list[float]:
        """The recorded values, sorted (a new list; for inspection and tests)."""
        return [v for v, _ in self.entries]

    @property
    def entries(self) -> list[tuple[float, int]]:
        """(value, trial id) sorted (best first, ties by trial id). Sorting on read is cheap:
        everything but the entries added since the last read is in order already."""
        if not self._sorted:
            self._entries.sort()
            self._sorted = True
        return self._entries

    def load(self, entries: list[tuple[float, int]]) -> None:
        """Replace the entries (those of a snapshot)."""
        self._entries = sorted(entries)
        self._sorted = True
        self._rebuild()

    def load_saved(self, values: list[Any], trials: list[Any]) -> None:
        """Replace the entries with those of :meth:`ASHA.state_dict` (JSON values)."""
        self.load(list(zip(map(float, values), map(int, trials), strict=True)))

    def add_candidate(self, value: float, tid: int) -> None:
        """Trial ``tid``, paused here with ``value``, may be promoted later."""
        heappush(self.candidates, (value, tid))

    def reset_candidates(self, paused: set[int]) -> None:
        """The candidates after a snapshot was loaded: the ``paused`` trials of this rung."""
        self.candidates = [(v, t) for v, t in self.entries if t in paused]
        heapify(self.candidates)

    def _rebuild(self) -> None:
        values = [v for v, _ in self._entries]  # sorted
        self.n = len(values)
        k = self.k(self.n)
        self._lower = [-v for v in reversed(values[:k])]  # a descending list negated is a heap
        self._upper = values[k:]  # an ascending list is a heap

    def remove(self, tid: int) -> None:
        """Forget the entry of trial ``tid`` (if any). O(n): failures are rare."""
        entries = self.entries
        for i, (_, t) in enumerate(entries):
            if t == tid:
                del entries[i]
                self._rebuild()
                return


class _TrialState:
    __slots__ = ("bracket", "last", "next_rung", "next_level", "status")

    def __init__(self, bracket: int, first_level: float):
        self.bracket = bracket
        self.last: float = -math.inf  #: last resource seen
        self.next_rung = 0  #: index (within the bracket) of the next rung to reach
        self.next_level = first_level  #: its level (inf past the last rung); derived, not saved
        self.status = _RUNNING


_BRACKET = attrgetter("bracket")
_LAST = attrgetter("last")
_NEXT_RUNG = attrgetter("next_rung")
_STATUS = attrgetter("status")


class ASHA(Scheduler):
    """Asynchronous successive halving (and asynchronous Hyperband with ``brackets > 1``).

    Args:
        searcher: proposes new configurations; its ``config_space``, ``metric`` and ``mode`` are
            the scheduler's.
        resource_attr: name of the reported resource (e.g. ``"epoch"``), increasing within a trial.
        max_t: resource at which a trial ends.  A result with resource ``>= max_t`` gets STOP
            (so a script that would go on is ended), unless ``max_resource_attr`` is set: then the
            script ends by itself and the decision is CONTINUE, so the trial ends *completed*.
        grace_period: first rung level (minimum resource before a trial can be stopped).
        reduction_factor: ``eta``; the top ``1/eta`` of a rung go on.
        rung_levels: explicit increasing rung levels in ``(0, max_t)``; by default
            ``grace_period * eta**k`` below ``max_t``.
        type: ``"stopping"`` (stop the others at once) or ``"promotion"`` (pause them; resume
            when they become promotable).
        max_resource_attr: name of the config entry the script reads its maximum resource
            from (e.g. ``"epochs"``).
        brackets: number of Hyperband brackets (1 = plain ASHA; ``"all"`` or ``None`` = as many as
            there are rungs + 1, i.e. full Hyperband; capped at that number).
        seed: seed of the scheduler's own RNG (bracket draws); by default derived from the
            searcher's seed.

    Raises:
        ValueError: invalid arguments (the message names the argument).
    """

    resource_attr: str  #: always set (a constructor argument): narrows the base class's ``str | None``
    #: what a rung records (a subclass may record other values: MOASHA, objective vectors)
    _rung_class: Any = _Rung

    def __init__(
        self,
        searcher: Searcher,
        *,
        resource_attr: str,
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        rung_levels: list[int] | None = None,
        type: Literal["stopping", "promotion"] = "stopping",
        max_resource_attr: str | None = None,
        brackets: int | Literal["all"] | None = 1,
        seed: int | None = None,
    ):
        if not resource_attr or not isinstance(resource_attr, str):
            raise ValueError(f"resource_attr must be the name of the reported resource, got {resource_attr!r}")
        if type not in ("stopping", "promotion"):
            raise ValueError(f"type must be 'stopping' or 'promotion', got {type!r}")
        ladder = FidelityLadder.geometric(max_t, grace_period, reduction_factor, rung_levels=rung_levels,
                                          brackets=brackets)
        levels = list(ladder.rung_levels)
        brackets = ladder.brackets
        #: the validated fidelity ladder (levels and brackets)
        self.ladder = ladder

        self._use_searcher(searcher, resource_attr, max_resource_attr)
        self.max_t = max_t
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.type = type
        self.brackets = brackets
        self.rung_levels: list[float] = levels  #: rung levels of bracket 0 (all rungs)
        self._promotion = type == "promotion"
        self._stop_at_max_t = max_resource_attr is None
        self._rungs: list[list[_Rung]] = [
            [self._rung_class(x, reduction_factor, min_one=type == "stopping") for x in levels[b:]]
            for b in range(brackets)
        ]
        # promotion search order: highest level first, then lowest bracket
        self._rung_order = sorted(
            ((rung.level, b, rung) for b, rungs in enumerate(self._rungs) for rung in rungs),
            key=lambda item: (-item[0], item[1]),
        )
        #: per bracket: rung levels followed by inf (so ``_levels[b][0]`` always exists)
        self._levels = [[rung.level for rung in rungs] + [math.inf] for rungs in self._rungs]
        self._negate = self.mode == "max"
        # skip the call when the searcher keeps the base class's no-op (saves time per report)
        self._searcher_on_result = (
            None if searcher.__class__.on_result is Searcher.on_result else searcher.on_result
        )
        self._searcher_on_stop = (
            None if searcher.__class__.on_stop is Searcher.on_stop else searcher.on_stop
        )
        self._searcher_on_resume = (
            None if searcher.__class__.on_resume is Searcher.on_resume else searcher.on_resume
        )
        self._trials: dict[int, _TrialState] = {}
        if seed is None:
            seed_seq = np.random.SeedSequence([int(searcher.seed), 0x5A5A])
            self._rng = np.random.Generator(np.random.PCG64(seed_seq))
        else:
            self._rng = np.random.default_rng(seed)
        weights = ladder.bracket_weights()
        self._cum_weights = [sum(weights[: i + 1]) for i in range(brackets)]

    # -- introspection -------------------------------------------------------------------------

    def bracket_levels(self, bracket: int) -> list[float]:
        """Rung levels of ``bracket`` (bracket ``s`` starts at the ``s``-th rung level)."""
        return [rung.level for rung in self._rungs[bracket]]

    @property
    def bracket_probabilities(self) -> list[float]:
        """Probability of each bracket for a new trial (see :func:`hyperband_bracket_weights`)."""
        total = self._cum_weights[-1]
        prev = 0
        probs = []
        for c in self._cum_weights:
            probs.append((c - prev) / total)
            prev = c
        return probs

    def trial_bracket(self, trial_id: int) -> int:
        """Bracket a known trial was assigned to."""
        return self._trials[trial_id].bracket

    def rung_results(self, bracket: int = 0) -> dict[float, list[tuple[float, int]]]:
        """Rung level -> sorted (metric to minimize, trial id) recorded there (a copy)."""
        return {rung.level: list(rung.entries) for rung in self._rungs[bracket]}

    # -- contract ------------------------------------------------------------------------------

    def suggest(self, trial_id: int) -> Suggestion | None:
        """Called when a worker is free.

        Promotion type: resumes the best promotable paused trial first (highest rung first, the
        best of a rung first), marking it promoted.  Otherwise asks the searcher for a new
        configuration (``None`` if it has none; then nothing changes) and assigns the new trial
        a bracket.
        """
        if self._promotion:
            promotion = self._promote(closing=False)
            if promotion is not None:
                return promotion
        config = self.searcher.suggest(trial_id)
        if config is None:
            return None
        bracket = self._draw_bracket()
        self._trials[trial_id] = _TrialState(bracket, self._levels[bracket][0])
        return Suggestion.start(config)

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        """Called when no new trial may start. Promotion type: resume the best paused trial
        that is in the top ``max(1, floor(n / eta))`` of its rung of ``n`` values (highest rung
        first), marking it promoted; ``None`` if there is none (always for the stopping type;
        then nothing changes)."""
        return self._promote(closing=True)

    def _promote(self, closing: bool) -> Suggestion | None:
        """Resume the best promotable paused trial (see :meth:`_find_promotable`), or ``None``."""
        if not self._promotion:
            return None
        found = self._find_promotable(closing)
        if found is None:
            return None
        rung, tid = found
        rung.promoted.add(tid)
        self._trials[tid].status = _RUNNING
        if self._searcher_on_resume is not None:
            self._searcher_on_resume(tid)
        return Suggestion.resume(tid)

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result of a running trial; records it at a rung when the trial
        reaches one and decides.

        Returns CONTINUE between rungs; at a rung CONTINUE if the trial is in the top
        ``1/eta`` there, else STOP (stopping type) or PAUSE (promotion type).  A result whose
        resource is not above the last one seen for the trial (re-reported after a restart
        without checkpoint) is ignored: CONTINUE, nothing recorded.

        Raises:
            UserError: the result lacks the metric or the resource.
        """
        # hot path: no numpy, no allocation, few calls (see the module docstring); the reading of
        # metric and resource is fifo.metric_and_resource, inlined to save a call per report
        tid = trial.trial_id
        try:
            value = float(result[self.metric])
            r = result[self.resource_attr]
        except (KeyError, TypeError, ValueError):
            metric_to_minimize(result, self.metric, self.mode, tid)  # raises a clear UserError
            result_resource(result, self.resource_attr, tid)
            raise
        st = self._trials.get(tid)
        if st is None:  # a trial this scheduler did not start (e.g. added by hand)
            st = self._trials[tid] = _TrialState(0, self._levels[0][0])
        if st.status is not _RUNNING:
            return _PAUSE if st.status is _PAUSED else _STOP
        try:
            if r <= st.last:
                return _CONTINUE  # re-reported after a restart without checkpoint
        except TypeError:
            result_resource(result, self.resource_attr, tid)
            raise
        st.last = r
        if self._searcher_on_result is not None:
            self._searcher_on_result(tid, trial.config, result)
        if r >= st.next_level:
            decision = self._on_rung(st, tid, self._rung_value(value, result, tid), r, self._rungs[st.bracket])
            if decision is not _CONTINUE and self._searcher_on_stop is not None:
                self._searcher_on_stop(tid, trial.config, decision is _PAUSE)
            return decision
        if r >= self.max_t and self._stop_at_max_t:
            st.status = _STOPPED
            if self._searcher_on_stop is not None:
                self._searcher_on_stop(tid, trial.config, False)
            return _STOP
        return _CONTINUE

    def _rung_value(self, value: float, result: Result, tid: int) -> Any:
        """What a rung records of a result reaching it: the metric ``value`` to minimize (NaN: the
        worst value). A subclass may record more of ``result`` (MOASHA: the vector of objectives)."""
        if self._negate:
            value = -value
        return math.inf if value != value else value

    def _on_rung(self, st: _TrialState, tid: int, value: float, r: float, rungs: list[_Rung]) -> Decision:
        k = st.next_rung
        n_rungs = len(rungs)
        while True:
            rung = rungs[k]
            top = rung.add(value, tid)  # in the top 1/eta of the rung
            k += 1
            st.next_rung = k
            st.next_level = rungs[k].level if k < n_rungs else math.inf
            if not self._promotion:
                if not top:
                    st.status = _STOPPED
                    return _STOP
            elif k < n_rungs and r >= rungs[k].level:
                rung.promoted.add(tid)  # skipped past this rung: it went on already
                continue
            elif top:
                rung.promoted.add(tid)  # promotable at once: no need to pause and resume
            else:
                st.status = _PAUSED
                rung.add_candidate(value, tid)
                return _PAUSE
            if k >= n_rungs or r < rungs[k].level:
                break
        if r >= self.max_t and self._stop_at_max_t:
            st.status = _STOPPED
            return _STOP
        return _CONTINUE

    def _find_promotable(self, closing: bool = False) -> tuple[_Rung, int] | None:
        """The paused trial to promote: highest rung first; in a rung, the best candidate if its
        rank (number of strictly better values) is below floor(n / eta) (``max(1, floor(n /
        eta))`` when ``closing``: no new trial will come). If the best candidate of a rung is
        not promotable, no worse one is."""
        trials = self._trials
        for _, _, rung in self._rung_order:
            heap = rung.candidates
            promoted = rung.promoted
            while heap:
                value, tid = heap[0]
                if tid in promoted or trials[tid].status is not _PAUSED:
                    heappop(heap)  # no longer a candidate (and never again)
                    continue
                if rung.in_top_min_one(value) if closing else rung.in_top(value):
                    return rung, tid
                break
        return None

    def _draw_bracket(self) -> int:
        if self.brackets == 1:
            return 0
        u = int(self._rng.integers(self._cum_weights[-1]))
        return bisect_right(self._cum_weights, u)

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called once when the trial's script exits normally; it is never promoted after."""
        st = self._trials.get(trial.trial_id)
        if st is not None:
            st.status = Status.COMPLETED
        self.searcher.on_complete(trial.trial_id, trial.config, result)

    def on_error(self, trial: Trial) -> None:
        """Called once when the trial failed: it is removed from the rungs (its results no
        longer count) and never promoted."""
        tid = trial.trial_id
        st = self._trials.get(tid)
        if st is not None:
            st.status = Status.FAILED
            for rung in self._rungs[st.bracket]:
                rung.remove(tid)
                rung.promoted.discard(tid)
        self.searcher.on_error(tid, trial.config)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot: rungs, per-trial state, RNG and searcher state.

        Columnar (one list per field, not one small list per entry): a simulation of 100,000
        trials snapshots in tens of milliseconds, and the JSON is written by orjson."""
        rungs = []
        for bracket_rungs in self._rungs:
            saved = []
            for rung in bracket_rungs:
                entries = rung.entries
                saved.append({
                    "level": rung.level,
                    "values": list(map(_FIRST, entries)),
                    "trials": list(map(_SECOND, entries)),
                    "promoted": sorted(rung.promoted),
                })
            rungs.append(saved)
        states = self._trials.values()
        return {
            "rungs": rungs,
            "trials": {
                "ids": list(self._trials),
                "bracket": list(map(_BRACKET, states)),
                # last resource reported; -1 with has_last 0 when none was
                "last": [-1 if last == _NO_RESOURCE else last for last in map(_LAST, states)],
                "has_last": [last != _NO_RESOURCE for last in map(_LAST, states)],
                "next_rung": list(map(_NEXT_RUNG, states)),
                "status": list(map(_STATUS_VALUE.__getitem__, map(_STATUS, states))),
            },
            "rng": self._rng.bit_generator.state,
            "searcher": self.searcher.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (taken with the same constructor arguments).

        Raises:
            ValueError: the snapshot's rungs do not match this scheduler's.
        """
        saved = state["rungs"]
        shape = [[r["level"] for r in rungs] for rungs in saved]
        if shape != [[r.level for r in rungs] for rungs in self._rungs]:
            raise ValueError(
                f"scheduler state has rung levels {shape}, but this scheduler has "
                f"{[[r.level for r in rungs] for rungs in self._rungs]}: build it with the same arguments"
            )
        for rungs, saved_rungs in zip(self._rungs, saved, strict=True):
            for rung, s in zip(rungs, saved_rungs, strict=True):
                rung.load_saved(s["values"], s["trials"])
                rung.promoted = {int(t) for t in s["promoted"]}
        self._trials = {}
        trials = state["trials"]
        rows = zip(trials["ids"], trials["bracket"], trials["last"], trials["has_last"],
                   trials["next_rung"], trials["status"], strict=True)
        for key, bracket, last, has_last, next_rung, status in rows:
            st = _TrialState(int(bracket), math.inf)
            st.last = last if has_last else _NO_RESOURCE
            st.next_rung = int(next_rung)
            levels = self._levels[st.bracket]
            st.next_level = levels[st.next_rung] if st.next_rung < len(levels) else math.inf
            st.status = Status(status)
            self._trials[int(key)] = st
        paused = {tid for tid, st in self._trials.items() if st.status is _PAUSED}
        for rungs in self._rungs:  # promotion candidates: the paused trials not promoted yet
            for rung in rungs:
                rung.reset_candidates(paused - rung.promoted)
        self._rng.bit_generator.state = state["rng"]
        self.searcher.load_state_dict(state["searcher"])


class HyperbandScheduler(ASHA):
    """Asynchronous Hyperband (Li et al. 2020, Section 3.3): :class:`ASHA` with every bracket
    by default (``brackets="all"`` -> number of rungs + 1); same arguments as :class:`ASHA`."""

    def __init__(self, searcher: Searcher, *, brackets: int | Literal["all"] | None = "all", **kwargs: Any):
        super().__init__(searcher, brackets=brackets, **kwargs)
