"""Population-based training (Jaderberg et al. 2017), asynchronous, and its explore step.

A population of ``population_size`` trials trains side by side. Every trial runs to its next
*perturbation boundary* (a multiple of ``perturbation_interval`` resource units) and pauses
there. When a worker frees up, the paused trial due first (lowest boundary, then earliest
paused) is decided on:

* **exploit**: if it is in the bottom ``quantile_fraction`` of the population, it takes the
  checkpoint of a trial drawn from the top ``quantile_fraction``
  (``Suggestion.resume(tid, config, checkpoint_from=top)``: the tuner copies the checkpoint and
  the trial goes on from the resource the source had reached; a source that is still running
  may have saved a later checkpoint meanwhile, which is the one copied: the trial then reports
  that later resource next, with the weights it holds);
* **explore**: its new config is the source's with every mutable hyperparameter either drawn
  afresh (probability ``resample_probability``) or perturbed (:func:`perturb`);
* otherwise it goes on with its own checkpoint and config (``Suggestion.resume(tid)``).

**What is compared** (the population is asynchronous: members stand at different resources).
At boundary ``b`` the deciding trial's value at ``b`` is ranked with, for every other live
member (running or paused), its value at the largest boundary ``<= b`` it has reached; members
without any boundary yet are left out. A member that is ahead is thus compared at ``b`` itself
(never at a resource the deciding trial has not reached); one that lags is compared at its
latest boundary (it trained less, so it rather ranks low; it is decided on in turn when it
reaches its own boundary). ``k = floor(n * quantile_fraction)`` of the ``n`` ranked members form
each quantile; with ``k = 0`` (too few members) nobody exploits. Members' values follow their
*lineage*: a trial that takes another's checkpoint takes that trial's boundary values too.
Finished trials (``max_t`` reached) and failed ones leave the population (their checkpoints may
be gone) and a new random trial takes each one's place, so the population keeps its size while
the tuner's budget (``max_trials``, time) allows: a new member lags behind, so at its first
boundaries it rather ranks low and copies the checkpoint of a member that is ahead.

New trials come first: while fewer than ``population_size`` trials are live (running or
paused), a free worker starts one (with fewer workers than members, every member gets to train before the
first ones run ahead); then the due paused trials resume, lowest boundary first, which keeps
the population roughly in step.

Defaults: ``population_size=4``, ``quantile_fraction=0.25``, ``resample_probability=0.25`` are
Syne Tune's (Ray Tune has the same two fractions and no population size of its own: its
``num_samples``). Syne Tune and Ray perturb every 60 units of their time attribute (seconds or
iterations); tunebench's resource is usually epochs, so the default interval is ``max_t / 10``
rounded (at least 1).

:class:`PB2` (in :mod:`tunebench.schedulers.pb2`) is this scheduler with a GP-bandit explore.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunebench.schedulers.base import Scheduler, check_mode
from tunebench.schedulers.fifo import metric_and_resource, result_resource
from tunebench.searchers.random import RandomSearcher
from tunebench.space import Choice, Domain, FiniteRange, Float, Integer, Ordinal, hyperparameters, repair_config
from tunebench.types import Config, Decision, Result, Suggestion, Trial

logger = logging.getLogger(__name__)

__all__ = ["PBT", "PERTURBATION_FACTORS", "parse_mutable", "perturb"]

#: a perturbed number is multiplied by one of these (drawn with equal probability)
PERTURBATION_FACTORS = (0.8, 1.2)

_RUNNING, _PAUSED, _DONE, _FAILED = "running", "paused", "done", "failed"


def _perturb_float(domain: Float, value: Any, rng: np.random.Generator) -> float:
    factor = PERTURBATION_FACTORS[int(rng.integers(2))]
    return float(min(domain.high, max(domain.low, float(value) * factor)))


def _perturb_integer(domain: Integer, value: Any, rng: np.random.Generator) -> int:
    factor = PERTURBATION_FACTORS[int(rng.integers(2))]
    new = round(int(value) * factor)
    if new == value:  # too small to move by a factor: one step in its direction
        new = int(value) + (1 if factor > 1 else -1)
    return int(min(domain.high, max(domain.low, new)))


def _neighbour(values: Sequence[Any], value: Any, rng: np.random.Generator) -> Any:
    """A neighbour of ``value`` in the ordered ``values``: one step down or up (equally likely),
    the other way at an end."""
    if len(values) < 2:
        return value
    i = values.index(value)
    step = 1 if rng.integers(2) else -1
    j = i + step if 0 <= i + step < len(values) else i - step
    return values[j]


def _perturb_finite_range(domain: FiniteRange, value: Any, rng: np.random.Generator) -> Any:
    return _neighbour(list(domain.values), domain.cast(value), rng)


def _perturb_ordinal(domain: Ordinal, value: Any, rng: np.random.Generator) -> Any:
    return _neighbour(list(domain.categories), value, rng)


def _perturb_choice(domain: Choice, value: Any, rng: np.random.Generator) -> Any:
    others = [c for c in domain.categories if c != value]
    return others[int(rng.integers(len(others)))] if others else value


#: how each domain type is perturbed (an unordered choice has no neighbours: another category)
_PERTURB: dict[type, Any] = {Float: _perturb_float, Integer: _perturb_integer, FiniteRange: _perturb_finite_range,
                             Ordinal: _perturb_ordinal, Choice: _perturb_choice}


def perturb(domain: Domain, value: Any, rng: np.random.Generator) -> Any:
    """PBT's perturbation of one hyperparameter's ``value`` inside ``domain``.

    Floats: times 0.8 or 1.2 (:data:`PERTURBATION_FACTORS`; for a log domain this is a step of
    ``log 1.2`` or ``log 0.8`` in the log domain), clipped to the bounds. Integers: the same,
    rounded (one step of 1 in the factor's direction when rounding would not move it), clipped.
    ``finrange`` values and ordinal categories: a neighbour (one step down or up). Choices
    (unordered): another category, uniformly. Any other domain: a fresh sample."""
    fn = _PERTURB.get(type(domain))
    if fn is None:
        return domain.sample(rng, 1)[0]
    return fn(domain, value, rng)


def parse_mutable(config_space: dict[str, Any], mutable: str | Sequence[str] | None) -> list[str]:
    """The hyperparameters PBT may change: ``mutable`` as names (a list, or one string of names
    separated by commas as ``--method-arg mutable=lr,momentum`` gives), or every hyperparameter
    of the space (not its constants) for ``None``.

    Raises:
        ValueError: a name that is no hyperparameter of the space, or an empty list.
    """
    domains = hyperparameters(config_space)
    if mutable is None:
        return list(domains)
    names = [n.strip() for n in mutable.split(",")] if isinstance(mutable, str) else [str(n) for n in mutable]
    names = [n for n in names if n]
    if not names:
        raise ValueError("mutable names no hyperparameter; give some (mutable=lr,momentum) or leave it out for all")
    unknown = [n for n in names if n not in domains]
    if unknown:
        raise ValueError(f"mutable: {', '.join(unknown)} is no hyperparameter of the config space "
                         f"(its hyperparameters: {', '.join(domains)})")
    return list(dict.fromkeys(names))


@dataclass
class _Member:
    config: Config
    status: str = _RUNNING
    last: float = -math.inf  #: largest resource reported (of its lineage)
    next_boundary: float = 0.0  #: the resource at which it pauses next
    boundary: float = 0.0  #: the boundary at which it is paused
    seq: int = 0  #: order of its pause (ties between equal boundaries)
    #: its lineage's value (to minimize; None: not a finite number) at each boundary, ascending
    values: list[list[Any]] = field(default_factory=list)

    def value_at_or_before(self, b: float) -> float | None:
        """Its value at the largest boundary ``<= b`` (inf for a non-finite one), None if none."""
        found: float | None = None
        for boundary, value in self.values:
            if boundary > b:
                break
            found = math.inf if value is None else value
        return found

    def to_json(self) -> list[Any]:
        return [self.config, self.status, self.last, self.next_boundary, self.boundary, self.seq, self.values]

    @classmethod
    def from_json(cls, row: list[Any]) -> _Member:
        config, status, last, next_boundary, boundary, seq, values = row
        return cls(dict(config), status, last, next_boundary, boundary, seq, [list(v) for v in values])


class PBT(Scheduler):
    """Asynchronous population-based training (see the module docstring for the rules).

    Args:
        config_space: name -> domain or constant.
        metric: the reported metric; ``mode``: ``"min"`` or ``"max"``.
        resource_attr: the reported resource (e.g. ``"epoch"``).
        max_t: the resource at which trials end.
        max_resource_attr: config entry holding ``max_t`` (the script ends by itself there);
            without one, a result at ``max_t`` gets STOP.
        population_size: trials training side by side (a new random trial is started whenever
            fewer are running or paused).
        perturbation_interval: resource units between two decisions of a trial (``None``:
            ``max_t / 10`` rounded, at least 1).
        quantile_fraction: size of the bottom and top quantiles, in ``(0, 0.5]``.
        resample_probability: probability that an explored hyperparameter is drawn afresh
            rather than perturbed.
        mutable: the hyperparameters PBT may change (see :func:`parse_mutable`); the others keep
            the source's values. ``None``: all.
        seed: seed of the random draws (configs, sources, explore).
        points_to_evaluate: configs the first trials start with.

    Raises:
        ValueError: an option out of range or a ``mutable`` name that is no hyperparameter.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        *,
        resource_attr: str,
        max_t: float,
        max_resource_attr: str | None = None,
        population_size: int = 4,
        perturbation_interval: float | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        mutable: str | Sequence[str] | None = None,
        seed: int = 0,
        points_to_evaluate: list[Config] | None = None,
    ) -> None:
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 1:
            raise ValueError(f"population_size must be an integer >= 1, got {population_size!r}")
        if perturbation_interval is None:
            perturbation_interval = max(1, round(max_t / 10))
        if not isinstance(perturbation_interval, (int, float)) or not perturbation_interval > 0:
            raise ValueError(f"perturbation_interval must be a number > 0 (resource units), "
                             f"got {perturbation_interval!r}")
        if not 0 < quantile_fraction <= 0.5:
            raise ValueError(f"quantile_fraction must be in (0, 0.5], got {quantile_fraction!r}")
        if not 0 <= resample_probability <= 1:
            raise ValueError(f"resample_probability must be in [0, 1], got {resample_probability!r}")
        self.searcher: RandomSearcher = RandomSearcher(config_space, metric, mode, seed=seed,
                                                       points_to_evaluate=points_to_evaluate)
        self.config_space = config_space
        self.metric = metric
        self.mode = check_mode(mode)
        self.resource_attr = resource_attr
        self._resource = resource_attr  # (typed str: resource_attr of the base class may be None)
        self.max_resource_attr = max_resource_attr
        self.max_t = max_t
        self.population_size = population_size
        self.perturbation_interval = perturbation_interval
        self.quantile_fraction = quantile_fraction
        self.resample_probability = resample_probability
        self.mutable = parse_mutable(config_space, mutable)
        self._domains = hyperparameters(config_space)
        self._stop_at_max_t = max_resource_attr is None
        self._rng = np.random.default_rng(seed)
        self._members: dict[int, _Member] = {}
        self._seq = 0

    # -- the population ----------------------------------------------------------------------

    def _n_live(self) -> int:
        return sum(1 for m in self._members.values() if m.status in (_RUNNING, _PAUSED))

    def _due(self) -> int | None:
        """The paused trial to decide on next: lowest boundary, then earliest paused."""
        paused = [(m.boundary, m.seq, tid) for tid, m in self._members.items() if m.status == _PAUSED]
        return min(paused)[2] if paused else None

    def quantiles(self, trial_id: int) -> tuple[list[int], list[int]]:
        """``(top, bottom)``: the trial ids of the top and bottom quantiles of the population
        as seen by the paused trial ``trial_id`` at its boundary (see the module docstring),
        best first in ``top``, worst last in ``bottom``; both empty when too few members
        have values. Called when that trial is decided on (and by tests)."""
        me = self._members[trial_id]
        ranked = []
        for tid, m in self._members.items():
            if m.status not in (_RUNNING, _PAUSED):
                continue
            value = m.value_at_or_before(me.boundary)
            if value is not None:
                ranked.append((value, tid))
        ranked.sort()
        k = int(len(ranked) * self.quantile_fraction)
        if k == 0:
            return [], []
        return [tid for _, tid in ranked[:k]], [tid for _, tid in ranked[-k:]]

    def _decide(self, tid: int) -> Suggestion:
        """Resume the paused ``tid``: exploit and explore if it is in the bottom quantile."""
        m = self._members[tid]
        top, bottom = self.quantiles(tid)
        sources = [s for s in top if s != tid]
        if tid not in bottom or not sources:
            m.status = _RUNNING
            return Suggestion.resume(tid)
        source_id = sources[int(self._rng.integers(len(sources)))]
        source = self._members[source_id]
        config = self.explore(source.config, source_id, source.last)
        m.config = config
        m.status = _RUNNING
        m.last = source.last
        m.values = [list(v) for v in source.values if v[0] <= source.last]
        m.next_boundary = self._next_boundary(source.last)
        logger.debug("PBT: trial %s (bottom at %s) takes the checkpoint of trial %s at %s", tid, m.boundary,
                     source_id, source.last)
        return Suggestion.resume(tid, config, checkpoint_from=source_id)

    def _next_boundary(self, resource: float) -> float:
        k = math.floor(resource / self.perturbation_interval + 1e-9) + 1
        return k * self.perturbation_interval

    def explore(self, config: Config, source_id: int, resource: float) -> Config:
        """The config a trial takes with the checkpoint of ``source_id`` (whose config is
        ``config``, at ``resource``): every mutable hyperparameter drawn afresh with probability
        ``resample_probability``, else perturbed (:func:`perturb`). Called at an exploit;
        :class:`~tunebench.schedulers.pb2.PB2` overrides it."""
        new = dict(config)
        for name in self.mutable:
            if name not in config:  # inactive in this config (a conditional space)
                continue
            domain = self._domains[name]
            if self._rng.random() < self.resample_probability:
                new[name] = domain.sample(self._rng, 1)[0]
            else:
                new[name] = perturb(domain, config[name], self._rng)
        # a changed parent may switch others on (drawn) or off (dropped)
        return repair_config(self.config_space, new, self._rng)

    # -- the scheduler contract ----------------------------------------------------------------

    def suggest(self, trial_id: int) -> Suggestion | None:
        """Called when a worker is free: a new random trial while fewer than
        ``population_size`` trials are running or paused, else the resume (exploit or not) of the
        paused trial due first, else ``None``."""
        if self._n_live() < self.population_size:
            config = self.searcher.suggest(trial_id)
            self._members[trial_id] = _Member(dict(config), next_boundary=self._next_boundary(0))
            return Suggestion.start(config)
        return self.suggest_resume(trial_id)

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        """Called when a worker is free and no new trial may start: the resume of the paused
        trial due first (every paused trial is due), else ``None``."""
        tid = self._due()
        return None if tid is None else self._decide(tid)

    def on_result(self, trial: Trial, result: Result) -> Decision:
        """Called for each result: PAUSE at the trial's next perturbation boundary (its value
        there recorded), STOP at ``max_t`` when the script does not know ``max_t``, else
        CONTINUE. A result at a resource not above the trial's last (re-reported after a
        restart without checkpoint, or before the resource its source had reached) is ignored.

        Raises:
            UserError: the result lacks the metric or the resource.
        """
        tid = trial.trial_id
        value, r = metric_and_resource(result, self.metric, self.mode, self._resource, tid)
        r = result_resource(result, self._resource, tid)
        m = self._members.get(tid)
        if m is None:  # a trial this scheduler did not start
            m = self._members[tid] = _Member(dict(trial.config), next_boundary=self._next_boundary(0))
        if m.status == _PAUSED:
            return Decision.PAUSE
        if m.status != _RUNNING:
            return Decision.STOP
        if r <= m.last:
            return Decision.CONTINUE
        m.last = r
        score = value if self.mode == "min" else -value
        if r >= self.max_t:
            m.status = _DONE
            return Decision.STOP if self._stop_at_max_t else Decision.CONTINUE
        if r < m.next_boundary:
            return Decision.CONTINUE
        boundary = self._next_boundary(r) - self.perturbation_interval
        self._record(tid, m, boundary, score if math.isfinite(score) else None)
        m.status = _PAUSED
        m.boundary = boundary
        self._seq += 1
        m.seq = self._seq
        m.next_boundary = boundary + self.perturbation_interval
        return Decision.PAUSE

    def _record(self, tid: int, m: _Member, boundary: float, score: float | None) -> None:
        """Keep ``score`` as ``m``'s value at ``boundary`` (PB2 also learns from it)."""
        m.values = [v for v in m.values if v[0] < boundary] + [[boundary, score]]

    def on_complete(self, trial: Trial, result: Result | None) -> None:
        """Called when a trial's script ends by itself: it leaves the population (a new trial
        replaces it)."""
        m = self._members.get(trial.trial_id)
        if m is not None:
            m.status = _DONE

    def on_error(self, trial: Trial) -> None:
        """Called when a trial fails: it leaves the population (a new trial replaces it)."""
        m = self._members.get(trial.trial_id)
        if m is not None:
            m.status = _FAILED

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the members, the pause counter, the RNG and the searcher."""
        return {"members": [[tid, m.to_json()] for tid, m in self._members.items()], "seq": self._seq,
                "rng": self._rng.bit_generator.state, "searcher": self.searcher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of :meth:`state_dict`."""
        self._members = {int(tid): _Member.from_json(row) for tid, row in state["members"]}
        self._seq = int(state["seq"])
        self._rng.bit_generator.state = state["rng"]
        self.searcher.load_state_dict(state["searcher"])
