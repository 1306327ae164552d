"""DEHB: differential evolution inside synchronous Hyperband brackets.

Awad, Mallik, Hutter: "DEHB: Evolutionary Hyperband for Scalable, Robust and Efficient
Hyperparameter Optimization", IJCAI 2021 (arXiv:2105.09821), Section 3 and Algorithm 1.

The brackets, rungs and their synchronization are those of synchronous Hyperband
(:class:`tunebench.schedulers.synchronous.SynchronousBracketScheduler`: a rung's jobs are
handed out only once the previous rung has all its results), with the bracket sizes of the
Hyperband paper (the DEHB reference rounds the first rung's size down instead: 9 instead of
12 in the second bracket for ``max_t=27, eta=3``). DEHB keeps one **subpopulation
per resource level**, of the largest size any bracket has at that level (27, 12, 6, 4 for
``max_t=27, eta=3``), as vectors of the unit cube (:class:`tunebench.space.SpaceEncoder`
encoding; a ``choice`` is a one-hot block, decoded by argmax), and fills each rung job as
follows (level ``l`` of the job, target = the next member of subpopulation ``l`` in
round-robin order):

* first bracket of the first iteration, first rung: the random initial members of the lowest
  level's subpopulation, one per job (random search);
* first iteration, later rungs: promotions as in successive halving: the best evaluated
  members of subpopulation ``l - 1`` that are not yet in subpopulation ``l`` (topped up with
  DE children if there are too few);
* otherwise a DE child: ``rand/1`` mutation ``a + F (b - c)`` of three distinct members of the
  *parent pool* -- the best ``n`` evaluated members of subpopulation ``l - 1`` (``l`` itself for
  the lowest level), ``n`` the size of the rung, topped up from all subpopulations and then
  with random points when fewer than three are evaluated -- out-of-range coordinates redrawn
  uniformly, then binomial crossover with the target (per hyperparameter, rate
  ``crossover_prob``, at least one hyperparameter from the mutant).

When the trial reports at its level, **selection** puts it in place of its target if its
value is at least as good (a failed trial never enters).

Resume or restart: as in the paper's reference implementation, a job is a new trial trained
from scratch to the job's level, except in the first iteration, whose promotions hand on the
*same* configuration: there, a trial that entered its subpopulation is paused at its level
(not stopped), and a job whose configuration equals that of a paused trial below the job's
level resumes it (``Suggestion.resume``) instead of retraining. From the second iteration on,
DE children are new configurations: trials are stopped at their level.

Small budgets: once no new trial may start, the brackets of the first iteration go on with
their promotions (resumes) as in synchronous Hyperband (a first rung cut short closes with the
trials it has; see :mod:`tunebench.schedulers.synchronous`); a job that would be a DE child (a
new trial) ends the run.

Cost: one job is a few small numpy operations on one subpopulation (tens of microseconds).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np

from tunebench.schedulers.synchronous import SynchronousBracketScheduler, _SyncTrial
from tunebench.searchers.base import check_mode
from tunebench.space import get_encoder, validate_space
from tunebench.types import Decision, Result, Status, Suggestion, Trial, float_from_json, json_float

logger = logging.getLogger(__name__)

__all__ = ["DEHB", "binomial_crossover", "fix_bounds", "rand1_mutation"]

_PAUSE = Decision.PAUSE
_STOP = Decision.STOP
_PAUSED = Status.PAUSED
_RUNNING = Status.RUNNING


def rand1_mutation(pool: np.ndarray, mutation_factor: float, rng: np.random.Generator) -> np.ndarray:
    """DE ``rand/1`` mutant ``a + F (b - c)`` of three distinct rows of ``pool`` (``>= 3`` rows)."""
    n = pool.shape[0]
    if n < 3:
        raise ValueError(f"rand/1 mutation needs a pool of at least 3 rows, got {n}")
    a, b, c = rng.integers(0, [n, n - 1, n - 2]).tolist()  # three distinct indices, uniformly
    b += b >= a
    lo, hi = (a, b) if a < b else (b, a)
    c += c >= lo
    c += c >= hi
    mutant: np.ndarray = pool[a] + mutation_factor * (pool[b] - pool[c])
    return mutant


def fix_bounds(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` with every coordinate outside ``[0, 1]`` redrawn uniformly in ``[0, 1]`` (DEHB's
    default repair; a new array)."""
    out = np.array(x, dtype=float)
    bad = (out < 0.0) | (out > 1.0)
    if bad.any():
        out[bad] = rng.random(int(bad.sum()))
    return out


def binomial_crossover(target: np.ndarray, mutant: np.ndarray, crossover_prob: float, blocks: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """Binomial crossover per hyperparameter: ``blocks[i]`` is the hyperparameter of column
    ``i`` (a one-hot ``choice`` spans several columns and moves as one); each hyperparameter
    comes from ``mutant`` with probability ``crossover_prob``, at least one always does."""
    n_blocks = int(blocks.max()) + 1 if blocks.size else 0
    if n_blocks == 0:
        return np.array(target, dtype=float)
    take = rng.random(n_blocks) < crossover_prob
    take[rng.integers(n_blocks)] = True
    return np.where(take[blocks], mutant, target)


class DEHB(SynchronousBracketScheduler):
    """DEHB (see the module docstring): differential evolution on per-level subpopulations,
    inside synchronous Hyperband brackets.

    Args:
        config_space: name -> domain or constant.
        metric: name of the metric to optimize.
        mode: ``"min"`` or ``"max"``.
        resource_attr: name of the reported resource (e.g. ``"epoch"``), increasing within a trial.
        max_t: resource at which a trial ends (last level). A result with resource ``>= max_t``
            gets STOP unless ``max_resource_attr`` is set (then the script ends by itself).
        grace_period: smallest resource level.
        reduction_factor: ``eta``.
        brackets: brackets per Hyperband iteration (``"all"``/``None``: every bracket).
        max_resource_attr: name of the config entry the script reads its maximum resource from.
        mutation_factor: ``F`` of the ``rand/1`` mutation, in ``(0, 2]``.
        crossover_prob: rate of the binomial crossover, in ``[0, 1]``.
        seed: seed of the random number generator.

    Raises:
        ValueError: invalid arguments (the message names the argument).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        *,
        resource_attr: str,
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        brackets: int | Literal["all"] | None = "all",
        max_resource_attr: str | None = None,
        mutation_factor: float = 0.5,
        crossover_prob: float = 0.5,
        seed: int = 0,
    ):
        validate_space(config_space)
        if not (isinstance(mutation_factor, (int, float)) and 0.0 < mutation_factor <= 2.0):
            raise ValueError(f"mutation_factor must be in (0, 2], got {mutation_factor!r}")
        if not (isinstance(crossover_prob, (int, float)) and 0.0 <= crossover_prob <= 1.0):
            raise ValueError(f"crossover_prob must be in [0, 1], got {crossover_prob!r}")
        super().__init__(resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
                         reduction_factor=reduction_factor, brackets=brackets,
                         max_resource_attr=max_resource_attr)
        self.config_space = config_space
        self.metric = metric
        self.mode = check_mode(mode)
        self.seed = seed
        self.mutation_factor = float(mutation_factor)
        self.crossover_prob = float(crossover_prob)
        self._encoder = get_encoder(config_space)
        dim = self._encoder.encoded_dim
        self._blocks: np.ndarray = np.empty(dim, dtype=np.int64)
        for i, name in enumerate(self._encoder.names):
            self._blocks[self._encoder.slices[name]] = i
        L = len(self.levels)
        #: subpopulation size per level: the largest rung any bracket has there
        self.population_sizes = [
            max(sizes[level - b] for b, sizes in enumerate(self.bracket_sizes) if b <= level) for level in range(L)
        ]
        self._rng = np.random.default_rng(seed)
        self._pop = [self._canonical(self._rng.random((n, dim))) for n in self.population_sizes]
        self._fit = [np.full(n, math.inf) for n in self.population_sizes]
        self._counter = [0] * L  #: next target (round robin) per level
        self._promo: list[np.ndarray] = []  #: first iteration: vectors promoted into the current rung
        self._jobs: dict[int, tuple[int, int, np.ndarray]] = {}  #: running trial -> (level, target, vector)
        self._paused: dict[tuple[float, ...], int] = {}  #: first iteration: vector -> paused trial
        self._keep: int | None = None  #: trial just recorded that is to be paused (within one on_result)

    # -- vectors ------------------------------------------------------------------------------

    def _canonical(self, X: np.ndarray) -> np.ndarray:
        """Rows moved to the encoding of the configuration they decode to."""
        return self._encoder.encode(self._encoder.decode(X))

    def _decode(self, vector: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """(canonical vector, configuration) of a vector of the unit cube."""
        config = self._encoder.decode(vector[None, :])[0]
        return self._encoder.encode([config])[0], config

    def subpopulation(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, values to minimize; inf = not evaluated) of the subpopulation of level
        index ``level`` (copies)."""
        return self._pop[level].copy(), self._fit[level].copy()

    @property
    def crossover_blocks(self) -> np.ndarray:
        """Hyperparameter index of each column of the encoding (a ``choice`` spans several
        columns), as :func:`binomial_crossover` takes it (a copy)."""
        blocks: np.ndarray = self._blocks.copy()
        return blocks

    def pending_job(self, trial_id: int) -> tuple[int, int] | None:
        """``(level index, target slot)`` of the job a running trial was launched for, until it
        reports at its level (``None`` for other trials)."""
        job = self._jobs.get(trial_id)
        return None if job is None else (job[0], job[1])

    def _parent_pool(self, level: int, n: int) -> np.ndarray:
        lower = max(level - 1, 0)
        fit = self._fit[lower]
        evaluated = np.flatnonzero(np.isfinite(fit))
        best = evaluated[np.argsort(fit[evaluated], kind="stable")][:n]
        pool = self._pop[lower][best]
        if pool.shape[0] < 3:  # too few evaluated: every evaluated member, then random points
            everyone = np.concatenate([p[np.isfinite(f)] for p, f in zip(self._pop, self._fit, strict=True)])
            pool = np.unique(np.concatenate([pool, everyone]), axis=0)
            if pool.shape[0] < 3:
                extra = self._canonical(self._rng.random((3 - pool.shape[0], pool.shape[1])))
                pool = np.concatenate([pool, extra])
        return pool

    def _child(self, level: int, target: int, n: int) -> np.ndarray:
        """A DE child (not canonical) of the target ``target`` of level ``level``, for a rung of
        ``n`` jobs."""
        pool = self._parent_pool(level, n)
        mutant = fix_bounds(rand1_mutation(pool, self.mutation_factor, self._rng), self._rng)
        return binomial_crossover(self._pop[level][target], mutant, self.crossover_prob, self._blocks, self._rng)

    # -- rung jobs ----------------------------------------------------------------------------

    def _launch(self, trial_id: int) -> Suggestion:
        b, rung = self._bracket, self._rung
        level = b + rung
        first_iteration = self._iteration == 0
        target = self._counter[level]
        self._counter[level] = (target + 1) % self.population_sizes[level]
        if first_iteration and b == 0 and rung == 0:
            vector = self._pop[level][target].copy()  # canonical already: kept as it is
            config = self._encoder.decode(vector[None, :])[0]
        elif first_iteration and rung > 0 and self._promo:
            vector = self._promo.pop(0)
            config = self._encoder.decode(vector[None, :])[0]
        else:
            vector, config = self._decode(self._child(level, target, self.bracket_sizes[b][rung]))
        if first_iteration:
            tid = self._resumes(vector, level)
            if tid is not None:
                del self._paused[tuple(vector.tolist())]
                st = self._trials[tid]
                st.status = _RUNNING
                st.level = level
                st.bracket = self._bracket_count
                self._jobs[tid] = (level, target, vector)
                return Suggestion.resume(tid)
        self._trials[trial_id] = _SyncTrial(self._bracket_count, level)
        self._jobs[trial_id] = (level, target, vector)
        return Suggestion.start(config)

    def _next_rung_jobs(self) -> int:
        n = self._rung_size(self._rung + 1)
        self._promo = self._promotions(n) if self._iteration == 0 else []
        return n

    def _promotions(self, n: int) -> list[np.ndarray]:
        """First iteration: the vectors promoted into the next rung (at most ``n``): the best
        of the level below not yet in the level above. Changes no state."""
        level = self._bracket + self._rung + 1
        fit = self._fit[level - 1]
        evaluated = np.flatnonzero(np.isfinite(fit))
        present = {tuple(v) for v in self._pop[level].tolist()}
        promo: list[np.ndarray] = []
        for i in evaluated[np.argsort(fit[evaluated], kind="stable")]:
            vector = self._pop[level - 1][i]
            key = tuple(vector.tolist())
            if key not in present:
                present.add(key)
                promo.append(vector.copy())
                if len(promo) == n:
                    break
        return promo

    def _resumes(self, vector: np.ndarray, level: int) -> int | None:
        """The paused trial (below ``level``) whose configuration is ``vector``, if any."""
        tid = self._paused.get(tuple(vector.tolist()))
        if tid is not None and self._trials[tid].status is _PAUSED and self._trials[tid].level < level:
            return tid
        return None

    def _next_job_is_resume(self) -> bool:
        # what _launch does for a job of a later rung of the first iteration
        if self._iteration != 0 or self._rung == 0 or not self._promo:
            return False
        return self._resumes(self._promo[0], self._bracket + self._rung) is not None

    def _can_promote_after_cut(self) -> bool:
        if self._iteration != 0:
            return False  # later iterations promote by new trials (DE children), never by resumes
        promo = self._promotions(1)
        return bool(promo) and self._resumes(promo[0], self._bracket + self._rung + 1) is not None

    def _open_bracket(self) -> None:
        super()._open_bracket()
        self._promo = []
        if self._iteration > 0 and self._paused:
            self._paused = {}  # no promotions after the first iteration: nothing is resumed

    def _record(self, trial_id: int, st: _SyncTrial, value: float) -> None:
        self._keep = None
        job = self._jobs.pop(trial_id, None)
        if job is None:
            return
        level, target, vector = job
        if value < math.inf and value <= self._fit[level][target]:
            self._pop[level][target] = vector
            self._fit[level][target] = value
            if st.bracket <= self.brackets and level < self._last_level:  # first iteration
                self._paused[tuple(vector.tolist())] = trial_id
                self._keep = trial_id

    def _rung_decision(self, trial_id: int, st: _SyncTrial) -> Decision:
        # paused only while it can be promoted: first iteration, and it entered its subpopulation
        keep, self._keep = self._keep, None
        return _PAUSE if keep == trial_id else _STOP

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called once when the trial's script exits normally (see the base class)."""
        self._jobs.pop(trial.trial_id, None)
        super().on_complete(trial, result)

    def on_error(self, trial: Trial) -> None:
        """Called once when the trial failed: it counts as the worst of its rung and never
        enters a subpopulation."""
        self._jobs.pop(trial.trial_id, None)
        super().on_error(trial)

    # -- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot: brackets, trials, subpopulations, pending jobs and the RNG."""
        state = super().state_dict()
        state.update({
            "pop": [p.tolist() for p in self._pop],
            "fit": [[json_float(v) for v in f.tolist()] for f in self._fit],
            "counter": list(self._counter),
            "promo": [v.tolist() for v in self._promo],
            "jobs": [[tid, level, target, v.tolist()] for tid, (level, target, v) in self._jobs.items()],
            "paused": [[tid, list(key)] for key, tid in self._paused.items()],
            "rng": self._rng.bit_generator.state,
        })
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict` (taken with the same constructor arguments).

        Raises:
            ValueError: the snapshot's subpopulations do not fit this scheduler.
        """
        sizes = [len(p) for p in state["pop"]]
        if sizes != self.population_sizes:
            raise ValueError(f"scheduler state has subpopulations of sizes {sizes}, this scheduler "
                             f"{self.population_sizes}: build it with the same arguments")
        super().load_state_dict(state)
        dim = self._encoder.encoded_dim
        self._pop = [np.asarray(p, dtype=float).reshape(-1, dim) for p in state["pop"]]
        self._fit = [np.array([float_from_json(v) for v in f], dtype=float) for f in state["fit"]]
        self._counter = [int(c) for c in state["counter"]]
        self._promo = [np.asarray(v, dtype=float) for v in state["promo"]]
        self._jobs = {int(tid): (int(level), int(target), np.asarray(v, dtype=float))
                      for tid, level, target, v in state["jobs"]}
        self._paused = {tuple(float(x) for x in key): int(tid) for tid, key in state["paused"]}
        self._rng.bit_generator.state = state["rng"]
