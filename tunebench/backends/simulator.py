"""Simulator backend (L2): replays a blackbox in simulated time, no processes at all.

When a trial starts, its whole learning curve is looked up in the blackbox in one call; its
results are then scheduled on an event heap at the simulated times the blackbox's elapsed-time
objective gives (the cumulative training time at each fidelity). :meth:`SimulatorBackend.poll`
pops the next event and moves the :class:`~tunebench.clock.SimulatedClock` to it, so the tuner
(which reads this backend's clock) never sleeps and the very same scheduler code runs as on real
trials.

* Only the *next* result of each running trial sits on the heap: a trial stopped after its first
  rung costs one heap entry, not a whole curve.
* Pause keeps the trial's position: a resumed trial continues from the fidelity it was paused at,
  and its next result comes after the *remaining* training time (elapsed time differences).
* A trial restarted by a new tuner process (``start`` of a known id) begins again from its first
  fidelity, as a real script without a checkpoint would; the tuner ignores the repeated results.
* The trial's maximum fidelity is ``config[max_resource_attr]`` when that is set, else the
  blackbox's largest fidelity; that entry is left out of the config given to the blackbox.
* A ``cost_per_fidelity`` blackbox's curve is evaluated in pieces, as far as the trial gets;
  the blackbox contract makes the pieces equal the whole curve.
* A resume with a changed config (PBT) continues on the new config's curve from the same
  fidelity; :meth:`SimulatorBackend.copy_checkpoint` gives a paused trial another trial's
  position. For a path-dependent blackbox
  (:class:`~tunebench.blackboxes.base.PathDependentBlackbox`) the trial keeps its history of
  configs (``(config, first fidelity index)`` segments; a copy inherits the source's up to the
  source's position) and its curve is the blackbox's curve of that schedule.
"""

from __future__ import annotations

import logging
from heapq import heappop, heappush
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.backends.base import Backend
from tunebench.blackboxes.base import Blackbox, PathDependentBlackbox
from tunebench.clock import SimulatedClock
from tunebench.errors import UserError
from tunebench.types import Config, Event, EventKind, Trial

logger = logging.getLogger(__name__)

_RESULT, _COMPLETED, _FAILED, _PAUSED, _STOPPED = (
    EventKind.RESULT, EventKind.COMPLETED, EventKind.FAILED, EventKind.PAUSED, EventKind.STOPPED)


#: curves of tabulated configurations kept at most (a bound on memory for huge tables)
CURVE_CACHE_SIZE = 20_000
#: a ``cost_per_fidelity`` blackbox's curve is evaluated in three pieces: fidelities up to
#: FIRST_PIECE (the first result and the time of the second: most trials of an early-stopping
#: method end there), up to SECOND_PIECE, then the rest
FIRST_PIECE = 2
SECOND_PIECE = 8


class _Curve:
    """A learning curve: objective values and cumulative training time per fidelity, and the
    result dicts reported from it. The trials of one table row share one (see
    :meth:`SimulatorBackend._curve`): its conversions to Python objects are done once, not per trial.

    A curve of a blackbox with ``cost_per_fidelity`` is known only up to the fidelities the trial
    has needed so far (``len(elapsed)`` of them) and extended by :meth:`SimulatorBackend._extend`:
    most trials of an early-stopping method end after a fidelity or two.
    """

    __slots__ = ("values", "elapsed", "results", "config", "seed")

    def __init__(self, values: np.ndarray, elapsed_index: int, config: Config | None = None, seed: int = 0) -> None:
        self.values = values  # (fidelities known, objectives)
        self.elapsed: list[float] = np.maximum.accumulate(values[:, elapsed_index]).tolist()
        #: result per fidelity, built when first reported (most trials report only a few);
        #: callers get a copy (the tuner adds keys to it)
        self.results: list[dict[str, Any] | None] = [None] * len(self.elapsed)
        self.config = config  #: set while the curve is partial: what to evaluate further
        self.seed = seed


class _SimTrial:
    __slots__ = ("trial", "curve", "elapsed", "pos", "last", "generation", "running", "stopped", "base", "seed",
                 "segments")

    def __init__(self, trial: Trial, curve: _Curve, last: int, seed: int) -> None:
        self.trial = trial
        self.seed = seed  # the blackbox seed its curves are looked up with
        self.curve = curve
        self.elapsed = curve.elapsed  # cumulative training time per fidelity
        self.pos = 0  # index of the next fidelity to report
        self.last = last  # index of the trial's maximum fidelity
        self.generation = 0  # bumped on pause/stop: heap entries of older generations are stale
        self.running = False
        self.stopped = False  # stopped for good: not resumable, a second stop is a no-op
        self.base = 0.0  # simulated time the trial (re)started, minus the training already done
        #: (path-dependent blackbox, once its config changed) its schedule: (config, first fidelity index)
        self.segments: list[tuple[Config, int]] | None = None


class SimulatorBackend(Backend):
    """Runs trials as lookups in ``blackbox`` on a simulated clock.

    Args:
        blackbox: what to replay (tabular, surrogate, synthetic, YAHPO...).
        seed: which of the blackbox's seeds (repetitions) to replay (``None``: a random seed
            per trial drawn with ``rng_seed``).
        elapsed_time_attr: the objective holding cumulative training time; default the
            blackbox's ``elapsed_time_attr``.
        resource_attr: the key results report the fidelity under; default the blackbox's
            ``fidelity_name``.
        max_resource_attr: config entry capping a trial's fidelity (e.g. ``"epochs"``).
        charge_decision_time: add the scheduler's real decision time to the simulated clock.
        rng_seed: seed of the per-trial seed draws (when ``seed`` is None).
        check_configs: check each trial's config against the blackbox's space (a trial with a
            config outside it FAILS with the reason).
    """

    uses_trial_dirs = False
    clock: SimulatedClock  # moved by this backend (it sets the clock's time directly, for speed)

    def __init__(self, blackbox: Blackbox, *, seed: int | None = 0, elapsed_time_attr: str | None = None,
                 resource_attr: str | None = None, max_resource_attr: str | None = None,
                 charge_decision_time: bool = True, rng_seed: int = 0, check_configs: bool = True) -> None:
        self.blackbox = blackbox
        self.check_configs = check_configs
        self.clock = SimulatedClock(charge_decision_time=charge_decision_time)
        elapsed_time_attr = elapsed_time_attr or blackbox.elapsed_time_attr
        if elapsed_time_attr is None:
            raise UserError(f"blackbox {blackbox.name} has no elapsed-time objective; the simulator needs one "
                            "to advance time (pass elapsed_time_attr=...)")
        self._elapsed_index = blackbox.objective_index(elapsed_time_attr)
        self.resource_attr = resource_attr or blackbox.fidelity_name or "epoch"
        self.max_resource_attr = max_resource_attr
        if seed is not None and not 0 <= seed < blackbox.n_seeds:
            raise UserError(f"seed {seed} is out of range for {blackbox.name} ({blackbox.n_seeds} seeds)")
        self.seed = seed
        self._rng = np.random.default_rng(rng_seed)
        self._objectives = list(blackbox.objectives)
        fv = blackbox.fidelity_values
        self._fidelities: list[Any] = [int(v) if float(v).is_integer() else float(v) for v in fv]
        self._fidelity_array = np.asarray(fv, dtype=float)
        self._trials: dict[int, _SimTrial] = {}
        self._last_index: dict[Any, int] = {}  # maximum resource -> index of the last fidelity
        self._heap: list[tuple[float, int, int, int]] = []  # (time, seq, trial id, generation)
        self._seq = 0
        self._pending: list[Event] = []
        self._n_running = 0
        self._failing = 0  # trials whose start failed, not yet reported
        #: tabulated curves by (table row, seed); only for blackboxes that tell a config's row
        self._exact_row = getattr(blackbox, "exact_row", None)
        self._lazy = bool(getattr(blackbox, "cost_per_fidelity", False))
        self._curves: dict[tuple[int, int], _Curve] = {}
        #: the blackbox's evaluate_schedule when its training has a state, else None
        self._schedule = blackbox if isinstance(blackbox, PathDependentBlackbox) else None

    # -- the Backend contract ---------------------------------------------------------------

    @property
    def n_busy(self) -> int:
        return self._n_running

    def start(self, trial: Trial, trial_dir: Path | None, results_offset: int = 0) -> None:
        """Called to launch ``trial``: looks its curve up and schedules its first result."""
        tid = trial.trial_id
        old = self._trials.get(tid)
        if old is not None and old.running:
            raise ValueError(f"trial {tid} is already running")
        seed = self.seed if self.seed is not None else int(self._rng.integers(self.blackbox.n_seeds))
        try:
            curve = self._curve(self._blackbox_config(trial.config), seed, self.check_configs)
        except UserError as e:
            self._fail_start(tid, str(e))
            return
        last = len(self._fidelities) - 1
        if self.max_resource_attr is not None and self.max_resource_attr in trial.config:
            cap = trial.config[self.max_resource_attr]
            cached = self._last_index.get(cap)
            if cached is None:
                cached = self._last_index[cap] = int(
                    np.searchsorted(self._fidelity_array, float(cap), side="right")) - 1
            last = cached
            if last < 0:
                self._fail_start(tid, f"{self.max_resource_attr}={cap:g} is below the smallest fidelity "
                                      f"{self._fidelities[0]} of {self.blackbox.name}")
                return
        sim = _SimTrial(trial, curve, last, seed)
        if old is not None:  # restarted: heap entries of its earlier runs must stay stale
            sim.generation = old.generation + 1
        self._trials[tid] = sim
        self._launch(sim, 0)

    def pause(self, trial_id: int) -> None:
        """Called on a PAUSE decision: its future results are dropped; it keeps its position."""
        self._end(trial_id, _PAUSED)

    def stop(self, trial_id: int) -> None:
        """Called on a STOP decision (or at the end of tuning)."""
        self._end(trial_id, _STOPPED)

    def resume(self, trial_id: int, config: Config | None = None) -> None:
        """Called to continue a paused trial from the fidelity it was paused at."""
        sim = self._trials.get(trial_id)
        if sim is None or sim.running or sim.stopped:
            raise ValueError(f"cannot resume trial {trial_id}: it is not paused")
        if config is not None and config != sim.trial.config:
            # a changed config (PBT): continue with the new config's curve from the same fidelity
            sim.trial = Trial(trial_id, dict(config))
            if self._schedule is not None:
                self._set_schedule(sim, self._history(sim, sim.pos))
            else:
                sim.curve = self._curve(self._blackbox_config(config), sim.seed, True)
                sim.elapsed = sim.curve.elapsed
        self._launch(sim, sim.pos)

    def copy_checkpoint(self, source_id: int, target_id: int, source_dir: Path | None,
                        target_dir: Path | None) -> None:
        """Called before the paused ``target_id`` resumes from ``source_id``'s checkpoint (PBT's
        exploit): the target takes the source's position (the fidelity after the source's last
        reported result, a running source included); its next :meth:`resume` continues from
        there on the curve of its (new) config."""
        src = self._trials.get(source_id)
        dst = self._trials.get(target_id)
        if dst is not None and (dst.running or dst.stopped):
            raise ValueError(f"cannot give trial {target_id} the checkpoint of trial {source_id}: it is not paused")
        if src is None or dst is None:
            # a trial of an earlier tuner process: it starts again from its first fidelity, as a
            # simulated trial without a checkpoint does (the tuner ignores what it repeats)
            logger.debug("copy_checkpoint(%s, %s): unknown to this simulator, nothing to copy", source_id, target_id)
            return
        dst.pos = src.pos
        if self._schedule is not None:
            # the target's training state is the source's: its history up to there, then its own config
            self._set_schedule(dst, self._history(src, src.pos))

    def _history(self, sim: _SimTrial, pos: int) -> list[tuple[Config, int]]:
        """The schedule of ``sim``'s training up to fidelity index ``pos``, followed by
        ``sim``'s (current) config from ``pos`` on."""
        segments = sim.segments if sim.segments is not None else [(sim.trial.config, 0)]
        return [seg for seg in segments if seg[1] < pos] + [(sim.trial.config, pos)]

    def _set_schedule(self, sim: _SimTrial, segments: list[tuple[Config, int]]) -> None:
        """Replace ``sim``'s schedule by ``segments`` (see :meth:`_history`) and its curve by the
        path-dependent blackbox's curve of that schedule."""
        assert self._schedule is not None
        sim.segments = segments
        values = self._schedule.evaluate_schedule(segments, seed=sim.seed, check=self.check_configs)
        sim.curve = _Curve(values, self._elapsed_index)
        sim.elapsed = sim.curve.elapsed

    def poll(self, timeout: float) -> list[Event]:
        """Pops the next event, moving the simulated clock to it; if it lies more than
        ``timeout`` simulated seconds ahead, moves the clock by ``timeout`` and returns []."""
        events: list[Event] = []
        if self._pending:
            events, self._pending = self._pending, []
            if self._failing:
                # trials that could not start held their worker until now: let the tuner refill
                # them before anything else happens
                self._n_running -= self._failing
                self._failing = 0
                return events
            # PAUSED/STOPPED: their workers were freed when the decision was taken, so these go
            # out with the next result (one round of the tuner's loop instead of two)
        heap = self._heap
        trials = self._trials
        clock = self.clock
        while heap:
            t, _, tid, gen = heap[0]
            sim = trials[tid]
            if gen != sim.generation:
                heappop(heap)  # the trial was paused or stopped since
                continue
            now = clock._now
            if t > now + timeout:
                if not events:
                    clock._now = now + timeout
                return events
            heappop(heap)
            if t > now:
                clock._now = t
            pos = sim.pos
            template = sim.curve.results[pos]
            if template is None:
                template = self._result(sim.curve, pos)
            result = template.copy()
            sim.pos = pos + 1
            if pos >= sim.last:
                sim.running = False
                self._n_running -= 1
                events.append(Event(_RESULT, tid, t, result))
                events.append(Event(_COMPLETED, tid, t))
                return events
            self._seq += 1
            if pos + 1 >= len(sim.elapsed):
                self._extend(sim.curve, pos + 1)
            heappush(heap, (sim.base + sim.elapsed[pos + 1], self._seq, tid, gen))
            events.append(Event(_RESULT, tid, t, result))
            return events
        return events

    def shutdown(self) -> None:
        """Called at the end: every running trial is stopped."""
        for tid, sim in self._trials.items():
            if sim.running:
                self._end(tid, _STOPPED)

    # -- internals ------------------------------------------------------------------------

    def _blackbox_config(self, config: Config) -> Config:
        """``config`` without the maximum-resource entry: it caps the simulated curve and never
        reaches the blackbox's ``evaluate``."""
        attr = self.max_resource_attr
        return {k: v for k, v in config.items() if k != attr} if attr is not None and attr in config else config

    def _fail_start(self, trial_id: int, error: str) -> None:
        """A trial that cannot start: FAILED at the next poll, holding a worker until then (so the
        tuner does not start trial after trial before it hears of the failures)."""
        self._pending.append(Event(_FAILED, trial_id, self.clock.time(), error=error))
        self._n_running += 1
        self._failing += 1

    def _curve(self, config: Config, seed: int, check: bool) -> _Curve:
        """The learning curve of ``config``: shared by the trials of a table row (the common case
        of a tabular benchmark: its configs are drawn from the table), else looked up anew."""
        row = self._exact_row(config) if self._exact_row is not None else None
        if row is None:
            if self._lazy:
                n = min(FIRST_PIECE, len(self._fidelities))
                values = self.blackbox.evaluate([config], fidelities=self._fidelities[:n], seed=seed, check=check)[0]
                return _Curve(values, self._elapsed_index, config if n < len(self._fidelities) else None, seed)
            return _Curve(self.blackbox.evaluate([config], seed=seed, check=check)[0], self._elapsed_index)
        curve = self._curves.get((row, seed))
        if curve is None:
            if len(self._curves) >= CURVE_CACHE_SIZE:
                self._curves.clear()
            # a tabulated config needs no check: evaluate would skip it too
            values = self.blackbox.evaluate([config], seed=seed, check=False)[0]
            curve = self._curves[(row, seed)] = _Curve(values, self._elapsed_index)
        return curve

    def _extend(self, curve: _Curve, pos: int) -> None:
        """Evaluate the partial ``curve`` further, to at least fidelity index ``pos``: to
        SECOND_PIECE, then to the end (a trial that got that far often goes on)."""
        assert curve.config is not None  # a partial curve keeps its config (see _curve)
        known = len(curve.elapsed)
        total = len(self._fidelities)
        stop = total if known >= SECOND_PIECE else min(total, max(pos + 1, SECOND_PIECE))
        more = self.blackbox.evaluate([curve.config], fidelities=self._fidelities[known:stop], seed=curve.seed,
                                      check=False)[0]
        elapsed = np.maximum.accumulate(np.maximum(more[:, self._elapsed_index], curve.elapsed[-1]))
        curve.values = np.concatenate([curve.values, more], axis=0)
        curve.elapsed.extend(elapsed.tolist())  # in place: the trial holds this list
        curve.results.extend([None] * (stop - known))
        if stop == total:
            curve.config = None

    def _result(self, curve: _Curve, pos: int) -> dict[str, Any]:
        """The result at fidelity index ``pos`` of ``curve`` (built once, kept in the curve)."""
        result = dict(zip(self._objectives, curve.values[pos].tolist(), strict=True))
        result[self.resource_attr] = self._fidelities[pos]
        curve.results[pos] = result
        return result

    def _launch(self, sim: _SimTrial, pos: int) -> None:
        if pos < len(self._fidelities) and pos >= len(sim.elapsed):
            self._extend(sim.curve, pos)
        done = sim.elapsed[pos - 1] if pos > 0 else 0.0
        sim.pos = pos
        sim.base = self.clock.time() - done
        sim.running = True
        self._n_running += 1
        if pos > sim.last:  # nothing left to train: completes at once
            sim.running = False
            self._n_running -= 1
            self._pending.append(Event(_COMPLETED, sim.trial.trial_id, self.clock.time()))
            return
        self._push(sim, sim.base + sim.elapsed[pos])

    def _push(self, sim: _SimTrial, t: float) -> None:
        self._seq += 1
        heappush(self._heap, (t, self._seq, sim.trial.trial_id, sim.generation))

    def _end(self, trial_id: int, kind: EventKind) -> None:
        sim = self._trials.get(trial_id)
        if sim is None:
            return
        if sim.running:
            sim.running = False
            sim.generation += 1
            self._n_running -= 1
            sim.stopped = kind is _STOPPED
            self._pending.append(Event(kind, trial_id, self.clock.time()))
        elif kind is _STOPPED and sim.pos <= sim.last and not sim.stopped:
            # a paused trial stopped for good: STOPPED goes out with the next poll, as on the
            # other backends (Backend.stop: "a STOPPED event follows")
            sim.generation += 1
            sim.stopped = True
            self._pending.append(Event(kind, trial_id, self.clock.time()))
