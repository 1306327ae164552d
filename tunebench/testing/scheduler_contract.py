"""Contract test suite that every scheduler runs (plain functions; pytest is not needed).

Usage, in a test module::

    from tunebench.testing.scheduler_contract import CONTRACT_CHECKS, contract_space

    SPACE = contract_space(max_t=27)

    def make(seed):
        return make_scheduler("ASHA", SPACE, metric="loss", mode="min",
                              resource_attr="epoch", max_resource_attr="epochs", seed=seed)

    @pytest.mark.parametrize("check", CONTRACT_CHECKS.values(), ids=CONTRACT_CHECKS.keys())
    def test_contract(check):
        check(make)

or simply ``check_scheduler_contract(make)`` which runs every check.  :func:`method_maker` builds
``make`` for a registered method (with the quick options it is registered with), so a suite
parametrized over :func:`tunebench.schedulers.method_names` covers every method, new ones included::

    @pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=CONTRACT_CHECKS.keys())
    @pytest.mark.parametrize("method", method_names())
    def test_contract(method, check):
        CONTRACT_CHECKS[check](method_maker(method), n_trials=METHODS[method].quick_trials)
  ``make(seed)`` must build a
fresh scheduler, always with the same arguments apart from the seed.  The scheduler's
``config_space`` should be :func:`contract_space` (other spaces work, with a hashed learning
curve instead of a meaningful one).

The workload is simulated (:class:`ContractSimulation`): no backend, no processes.  ``n_workers``
workers; each trial's metric follows a synthetic learning curve derived from its config and is
reported once per epoch under ``scheduler.metric`` (as a loss for ``mode="min"``, as ``1 - loss``
for ``"max"``) with the resource under ``scheduler.resource_attr`` (or ``"epoch"``) and a ``"cost"``
(the second objective of multi-objective methods, bounded for constrained ones); events are
ordered by simulated time like a real asynchronous run.  CONTINUE / PAUSE / STOP are honoured,
trials complete at ``max_t`` (``on_complete``), some fail at their second epoch (``on_error``), and
some resumed trials restart without checkpoint and re-report old epochs. A resume from another
trial's checkpoint (``Suggestion.resume(tid, config, checkpoint_from=source)``, PBT's exploit)
continues from the source's last reported epoch; the source must have reported and be running
or paused.

Contract checked (see each ``check_*``):

* ``suggest`` returns ``None`` or a :class:`Suggestion`; a new config has exactly the space's keys,
  each value inside its domain (constants equal); a resume names a currently paused trial (never
  a stopped, completed or failed one); ``suggest`` returning ``None`` leaves ``state_dict()``
  unchanged;
* ``on_result`` returns a :class:`Decision` member;
* same seed -> identical sequence of suggestions and decisions;
* ``json.dumps(state_dict())`` works; ``load_state_dict(json.loads(...))`` on a fresh scheduler
  gives back the same state and, mid-run, exactly the same later answers (crash-resume);
* a result without the metric (or, for multi-fidelity schedulers, without the resource) raises
  ``KeyError`` or ``ValueError`` (``tunebench.errors.UserError`` is one) whose message names the
  missing key: schedulers never silently decide on a result they cannot read;
* sanity: the best trials found (by reported metric at the largest resource) have a better true
  quality than the average trial;
* small budget (as the tuner runs with ``max_trials``): once the budget of new trials is spent,
  ``suggest_resume`` only resumes paused trials (``None`` keeps the state), and a scheduler that
  paused trials lets the rungs it started go on: some trial gets past the lowest resource at
  which a trial was paused (the run does not end with every trial waiting at its first rung).
"""

from __future__ import annotations

import heapq
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.registry import get_method, make_scheduler
from tunebench.space import Prior, choice, hyperparameters, loguniform, randint, sample_configs, uniform
from tunebench.space.conditions import conditions_of
from tunebench.types import Constraint, Decision, Result, Suggestion, TransferTask, Trial

__all__ = [
    "contract_transfer_tasks",
    "CONTRACT_CHECKS",
    "CONTRACT_CONSTRAINT",
    "contract_prior",
    "Call",
    "ContractSimulation",
    "check_deterministic",
    "check_missing_metric",
    "check_sanity",
    "check_small_budget",
    "check_scheduler_contract",
    "check_state_resume",
    "check_valid_run",
    "contract_space",
    "learning_curve",
    "method_maker",
    "true_quality",
]

MakeScheduler = Callable[[int], Scheduler]


def contract_space(max_t: int = 27, conditional: bool = False) -> dict[str, Any]:
    """The config space the contract workload knows a meaningful learning curve for; the
    constant ``epochs`` holds ``max_t`` (use it as ``max_resource_attr``). ``conditional``: with
    three conditional parameters besides (``momentum`` only when ``optimizer == "sgd"``,
    ``width_2`` only when ``n_layers >= 2``, ``width_3`` only when ``n_layers >= 3`` and
    ``optimizer`` is ``"adam"``: a chain of conditions)."""
    space: dict[str, Any] = {
        "lr": loguniform(1e-4, 1e-1),
        "width": randint(8, 128),
        "act": choice(["relu", "gelu", "tanh"]),
        "dropout": uniform(0.0, 0.5),
    }
    if conditional:
        space.update({
            "optimizer": choice(["sgd", "adam"]),
            "momentum": uniform(0.0, 0.99).when(optimizer="sgd"),
            "n_layers": randint(1, 3),
            "width_2": randint(8, 128).when(n_layers={">=": 2}),
            "width_3": randint(8, 128).when(n_layers={">=": 3}, optimizer="adam"),
        })
    space["epochs"] = max_t
    return space


#: the constraint :func:`method_maker` gives a constrained method (``MethodSpec.constrained``): on the
#: cost every result of :class:`ContractSimulation` carries (``0.5 - dropout + 0.01 * epoch``)
CONTRACT_CONSTRAINT = "cost<=0.6"


def contract_prior(method: str, space: dict[str, Any]) -> Prior | None:
    """The prior a test gives ``method``: for a method that needs one (``MethodSpec.needs_prior``)
    a prior of medium confidence at the space's default config (each domain's middle), else None."""
    if not get_method(method).needs_prior:
        return None
    return Prior.centered(space)


def method_maker(method: str, *, mode: str = "min", max_t: int = 27, conditional: bool = False,
                 **options: Any) -> MakeScheduler:
    """``make(seed)`` building the registered ``method`` on :func:`contract_space` (``max_t``
    epochs, ``max_resource_attr="epochs"``, ``resource_attr="epoch"``), metric ``"loss"`` for
    ``mode="min"``, ``"accuracy"`` for ``"max"`` (and ``"cost"`` for a multi-objective method; a
    constrained one gets :data:`CONTRACT_CONSTRAINT`), with the method's ``quick_options`` (see
    :class:`tunebench.schedulers.MethodSpec`) updated with ``options``; ``conditional``: on the
    conditional variant of the space.

    Raises:
        UserError: unknown method.
    """
    spec = get_method(method)
    space = contract_space(max_t, conditional)
    merged = {**spec.quick_options, **options}

    first = "loss" if mode == "min" else "accuracy"
    # a multi-objective method gets a second objective, reported by the simulation (ContractSimulation)
    metric: str | list[str] = [first, "cost"] if spec.multi_objective else first
    # a constrained method gets a bound on the cost that about a third of the configs miss at max_t
    # (those with little dropout, the best ones otherwise: a real trade-off)
    constraints = [CONTRACT_CONSTRAINT] if spec.constrained else None
    prior = contract_prior(spec.name, space)
    # a transfer method gets source tasks related to the workload (contract_transfer_tasks)
    transfer = contract_transfer_tasks(space) if spec.transfer else ()

    def make(seed: int) -> Scheduler:
        return make_scheduler(spec.name, space, metric=metric, mode=mode, resource_attr="epoch",
                              max_resource_attr="epochs", seed=seed, constraints=constraints, prior=prior,
                              transfer=transfer,
                              **merged)

    return make


def contract_transfer_tasks(space: dict[str, Any], n_tasks: int = 3, n_configs: int = 30) -> tuple[TransferTask, ...]:
    """Source tasks for a transfer method (``MethodSpec.transfer``; :func:`method_maker` gives them):
    ``n_tasks`` tasks of ``n_configs`` random configurations of ``space`` each (seeded by the task),
    valued by :func:`true_quality` scaled and shifted per task with a small per-task hash noise:
    related to the workload's learning curves, on other scales."""
    tasks = []
    for k in range(n_tasks):
        configs = sample_configs(space, np.random.default_rng(1000 + k), n_configs)
        values = tuple((1.0 + 0.5 * k) * true_quality(c) + 0.1 * k + 0.05 * _hash01("task", k, c) for c in configs)
        tasks.append(TransferTask(f"contract-source-{k}", tuple(configs), values))
    return tuple(tasks)


def _hash01(*parts: Any) -> float:
    text = json.dumps(parts, sort_keys=True, default=str)
    return zlib.crc32(text.encode()) / 2**32


_ACT = {"relu": 0.0, "gelu": 0.1, "tanh": 0.4}


def true_quality(config: dict[str, Any]) -> float:
    """Asymptotic loss of ``config`` in [0, 1] (lower is better): a smooth function of the
    :func:`contract_space` hyperparameters, or a hash of the config for other spaces."""
    terms = []
    if isinstance(config.get("lr"), (int, float)) and config["lr"] > 0:
        terms.append(min(1.0, (math.log10(config["lr"]) + 2.5) ** 2 / 2.25))
    if isinstance(config.get("width"), (int, float)) and config["width"] > 0:
        terms.append(min(1.0, (math.log2(config["width"]) - 6.0) ** 2 / 9.0))
    if config.get("act") in _ACT:
        terms.append(_ACT[config["act"]])
    if isinstance(config.get("dropout"), (int, float)):
        terms.append(min(1.0, (config["dropout"] - 0.1) ** 2 / 0.16))
    if not terms:
        return _hash01(config)
    return sum(terms) / len(terms)


def learning_curve(config: dict[str, Any], epoch: int) -> float:
    """Loss of ``config`` after ``epoch`` epochs: decreases towards :func:`true_quality`, with a
    config-dependent speed and small deterministic noise."""
    q = true_quality(config)
    speed = 0.3 + 0.4 * _hash01("speed", config)
    noise = 0.01 * (_hash01("noise", config, epoch) - 0.5)
    return q + speed / math.sqrt(epoch) + noise


@dataclass
class Call:
    """One call the simulation made to the scheduler, its arguments and its (normalized) answer."""

    kind: str  #: "suggest", "suggest_resume", "result", "complete" or "error"
    trial_id: int
    trial: Trial | None = None
    result: Result | None = None
    answer: Any = None


@dataclass
class _SimTrial:
    trial: Trial
    epoch: int = 0  #: last epoch reported (training progress)
    status: str = "running"  #: running, paused, stopped, completed, failed
    failed_once: bool = False
    restarts: int = 0
    last_result: Result | None = None
    best_at: dict[int, float] = field(default_factory=dict)  #: epoch -> loss reported


def _space_check(space: dict[str, Any], config: dict[str, Any], what: str) -> None:
    assert isinstance(config, dict), f"{what}: config must be a dict, got {type(config).__name__}"
    conditions = conditions_of(space)
    if conditions:
        # exactly the active parameters: those without a condition, and those whose condition
        # holds on the config (absent parents make it false)
        expected = {name for name in space if name not in conditions or conditions[name].holds(config)}
        assert set(config) == expected, (
            f"{what}: config keys {sorted(config)} are not the active parameters {sorted(expected)} of the "
            f"conditional space")
    else:
        assert set(config) == set(space), (
            f"{what}: config keys {sorted(config)} differ from the space's {sorted(space)}"
        )
    domains = hyperparameters(space)
    for name, value in space.items():
        if name not in config:
            continue
        if name in domains:
            assert domains[name].contains(config[name]), f"{what}: {name}={config[name]!r} is outside {value!r}"
        else:
            assert config[name] == value, f"{what}: constant {name}={config[name]!r}, expected {value!r}"
    json.dumps(config)  # configs are logged as JSON


def _normalize(answer: Suggestion | Decision | None) -> Any:
    if answer is None:
        return None
    if isinstance(answer, Decision):
        return answer.value
    if answer.is_resume:
        if answer.checkpoint_trial_id is not None:  # PBT's exploit: from another trial's checkpoint
            return ("resume", answer.resume_trial_id, json.dumps(answer.config, sort_keys=True),
                    answer.checkpoint_trial_id)
        return ("resume", answer.resume_trial_id, json.dumps(answer.config, sort_keys=True))
    return ("start", json.dumps(answer.config, sort_keys=True))


def _state_json(scheduler: Scheduler) -> str:
    return json.dumps(scheduler.state_dict(), sort_keys=True)


class ContractSimulation:
    """Drives a scheduler with a deterministic simulated asynchronous workload (see the module
    docstring), asserting the per-call contract as it goes.

    Args:
        scheduler: the scheduler under test.
        n_trials: budget of new trials; once reached, ``suggest`` is still called for free
            workers while it answers resumes, and the first new trial it answers after that
            (trial ``n_trials``) is the last one started (with ``trial_budget``: see there).
        max_t: epochs after which a trial's script exits by itself (``on_complete``).
        resource_attr: key of the epoch in results when the scheduler has no ``resource_attr``.
        n_workers: trials running at once.
        fail_every: trials with ``trial_id % fail_every == fail_every - 1`` fail at epoch 2
            (0 = no failures).
        restart_fraction: fraction of resumes (drawn by a hash of trial id and resume count)
            after which the script restarts without checkpoint and re-reports epochs from 1.
        check_none_state: compare ``state_dict()`` before and after a ``suggest`` returning ``None``.
        snapshot_at: call indices (0-based, counting every scheduler call) before which a JSON
            snapshot of ``state_dict()`` is taken (kept in :attr:`snapshots`).
        wrap: optional ``f(kind, callable, *args)`` through which every scheduler call is made
            (timing in benchmarks).
        validate: check every new config against the space (off in benchmarks).
        record: keep every call in :attr:`calls` (off in benchmarks, to keep memory flat).
        trial_budget: do as the tuner does with ``max_trials``: once ``n_trials`` trials were
            started, free workers call ``suggest_resume`` (the "no more new trials" signal)
            instead of ``suggest``; it must answer resumes or ``None``, and the run ends when it
            answers ``None`` with no trial running.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        n_trials: int = 60,
        max_t: int = 27,
        resource_attr: str = "epoch",
        n_workers: int = 4,
        fail_every: int = 11,
        restart_fraction: float = 0.5,
        check_none_state: bool = True,
        snapshot_at: set[int] | None = None,
        wrap: Callable[..., Any] | None = None,
        validate: bool = True,
        record: bool = True,
        trial_budget: bool = False,
    ):
        self.scheduler = scheduler
        self.n_trials = n_trials
        self.max_t = max_t
        self.metric = scheduler.metric
        self.mode = scheduler.mode
        objectives = getattr(scheduler, "objectives", None)
        #: the other objectives of a multi-objective scheduler, and ``"cost"`` always (what a
        #: constraint bounds, see :data:`CONTRACT_CONSTRAINT`): reported as a cost that shrinks
        #: with the config's dropout and grows with its epoch (a trade-off with the loss, not a copy of it)
        self.other_metrics = list(objectives.metrics[1:]) if objectives is not None else []
        if "cost" not in self.other_metrics:
            self.other_metrics.append("cost")
        self.resource_attr = scheduler.resource_attr or resource_attr
        self.n_workers = n_workers
        self.fail_every = fail_every
        self.restart_fraction = restart_fraction
        self.check_none_state = check_none_state
        self.snapshot_at = snapshot_at or set()
        self.snapshots: dict[int, str] = {}
        self.validate = validate
        self.record = record
        self._wrap = wrap
        self.calls: list[Call] = []
        self.trials: dict[int, _SimTrial] = {}
        self.time = 0.0
        self._events: list[tuple[float, int, int]] = []  # (time, seq, trial_id)
        self._seq = 0
        self._next_id = 0
        self.trial_budget = trial_budget
        self._closed = n_trials <= 0  #: no new trial may start
        self.n_events = 0
        self.n_calls = 0

    # -- scheduler calls -------------------------------------------------------------------------

    def _call(self, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        if self.n_calls in self.snapshot_at:
            self.snapshots[self.n_calls] = _state_json(self.scheduler)
        self.n_calls += 1
        if self._wrap is not None:
            return self._wrap(kind, fn, *args)
        return fn(*args)

    def _suggest(self, trial_id: int) -> Suggestion | None:
        kind = "suggest_resume" if self._closed else "suggest"  # closed: only with trial_budget
        before = _state_json(self.scheduler) if self.check_none_state else None
        answer = self._call(kind, getattr(self.scheduler, kind), trial_id)
        if self.record:
            self.calls.append(Call(kind, trial_id, answer=_normalize(answer)))
        if answer is None:
            if before is not None:
                assert _state_json(self.scheduler) == before, f"{kind}() returned None but changed state_dict()"
            return None
        assert isinstance(answer, Suggestion), f"{kind}() returned {answer!r}, not a Suggestion or None"
        if self._closed:
            assert answer.is_resume, f"suggest_resume() started a new trial ({answer!r}) after the trial budget"
        return answer

    def _on_result(self, st: _SimTrial, result: Result) -> Decision:
        sent = dict(result)
        decision = self._call("result", self.scheduler.on_result, st.trial, sent)
        if self.record:
            self.calls.append(Call("result", st.trial.trial_id, st.trial, dict(result), answer=_normalize(decision)))
        assert isinstance(decision, Decision), f"on_result() returned {decision!r}, not a Decision member"
        return decision

    # -- simulation ------------------------------------------------------------------------------

    def _duration(self, trial: Trial) -> float:
        return 1.0 + _hash01("duration", trial.config)

    def _schedule(self, st: _SimTrial) -> None:
        self._seq += 1
        heapq.heappush(self._events, (self.time + self._duration(st.trial), self._seq, st.trial.trial_id))

    def _fill_workers(self) -> None:
        running = len(self._events)  # each running trial has exactly one pending event
        while running < self.n_workers and not (self._closed and not self.trial_budget):
            s = self._suggest(self._next_id)
            if s is None:
                return
            tid = s.resume_trial_id
            if tid is not None:  # s.is_resume
                st = self.trials.get(tid)
                assert st is not None, f"suggest() resumes unknown trial {tid}"
                assert st.status == "paused", f"suggest() resumes trial {tid}, which is {st.status}, not paused"
                if s.config is not None:
                    if self.validate:
                        _space_check(self.scheduler.config_space, s.config, f"resume of trial {tid}")
                    st.trial = Trial(tid, dict(s.config))
                source = s.checkpoint_trial_id
                if source is not None:
                    # PBT's exploit: the trial goes on from the source's checkpoint (its last epoch)
                    src = self.trials.get(source)
                    assert src is not None and src.last_result is not None, (
                        f"suggest() resumes trial {tid} from the checkpoint of trial {source}, which has no result")
                    assert src.status in ("running", "paused"), (
                        f"suggest() resumes trial {tid} from the checkpoint of trial {source}, which is {src.status} "
                        f"(its checkpoint may be gone)")
                    st.epoch = src.epoch
                st.status = "running"
                st.restarts += 1
                if _hash01("restart", tid, st.restarts) < self.restart_fraction:
                    st.epoch = 0  # no checkpoint: the script starts over and re-reports old epochs
            else:
                tid = self._next_id
                assert s.config is not None  # a Suggestion that is no resume has a config (checked at creation)
                if self.validate:
                    _space_check(self.scheduler.config_space, s.config, f"new trial {tid}")
                st = _SimTrial(Trial(tid, dict(s.config)))
                self.trials[tid] = st
                self._next_id += 1
                if self.trial_budget:
                    self._closed = self._next_id >= self.n_trials  # then only suggest_resume is called
                else:
                    # past the budget, suggest is still called while it resumes paused trials;
                    # the first new trial after the budget is the last one
                    self._closed = self._next_id > self.n_trials
            self._schedule(st)
            running += 1

    def _result(self, st: _SimTrial) -> Result:
        loss = learning_curve(st.trial.config, st.epoch)
        st.best_at[st.epoch] = loss
        value = loss if self.mode == "min" else 1.0 - loss
        result: Result = {self.metric: value, self.resource_attr: st.epoch, "trial_id": st.trial.trial_id}
        for i, name in enumerate(self.other_metrics):
            dropout = st.trial.config.get("dropout", 0.25)
            result[name] = (1.0 + i) * (0.5 - dropout if isinstance(dropout, float) else 0.25) + 0.01 * st.epoch
        return result

    def run(self) -> list[Call]:
        """Run to the end (every trial started and ended or paused); returns the calls made."""
        max_events = self.n_trials * self.max_t * 4 + 1000
        self._fill_workers()
        while self._events:
            self.n_events += 1
            assert self.n_events <= max_events, "the run does not end: trials are resumed over and over"
            self.time, _, tid = heapq.heappop(self._events)
            st = self.trials[tid]
            st.epoch += 1
            fails = self.fail_every and tid % self.fail_every == self.fail_every - 1
            if fails and st.epoch == 2 and not st.failed_once:
                st.failed_once = True
                st.status = "failed"
                self._call("error", self.scheduler.on_error, st.trial)
                if self.record:
                    self.calls.append(Call("error", tid, st.trial))
            else:
                result = self._result(st)
                st.last_result = result
                decision = self._on_result(st, result)
                if decision is Decision.STOP:
                    st.status = "stopped"
                elif decision is Decision.PAUSE:
                    st.status = "paused"
                elif st.epoch >= self.max_t:
                    st.status = "completed"
                    self._call("complete", self.scheduler.on_complete, st.trial, dict(result))
                    if self.record:
                        self.calls.append(Call("complete", tid, st.trial, dict(result)))
                else:
                    self._schedule(st)
            self._fill_workers()
        return self.calls


def _replay(scheduler: Scheduler, calls: list[Call]) -> list[Any]:
    answers: list[Any] = []
    for call in calls:
        if call.kind in ("suggest", "suggest_resume"):
            answers.append(_normalize(getattr(scheduler, call.kind)(call.trial_id)))
            continue
        trial = call.trial
        assert trial is not None, f"a {call.kind} call without its trial"  # only suggest calls have none
        if call.kind == "result":
            assert call.result is not None, "a result call without its result"
            answers.append(_normalize(scheduler.on_result(trial, dict(call.result))))
        elif call.kind == "complete":
            scheduler.on_complete(trial, dict(call.result) if call.result else None)
            answers.append(None)
        else:
            scheduler.on_error(trial)
            answers.append(None)
    return answers


def _run(make: MakeScheduler, seed: int, **kwargs: Any) -> ContractSimulation:
    sim = ContractSimulation(make(seed), **kwargs)
    sim.run()
    return sim


# -- checks -------------------------------------------------------------------------------------


def check_valid_run(make: MakeScheduler, *, n_trials: int = 60, max_t: int = 27, resource_attr: str = "epoch",
                    seed: int = 0) -> None:
    """A whole simulated run: valid suggestions and decisions, resumes only of paused trials,
    ``suggest`` returning ``None`` keeps the state, and the run ends."""
    sim = _run(make, seed, n_trials=n_trials, max_t=max_t, resource_attr=resource_attr)
    assert sim.trials, "the scheduler started no trial"
    n_results = sum(1 for c in sim.calls if c.kind == "result")
    assert n_results > 0, "no result was reported"
    json.dumps(sim.scheduler.state_dict())


def check_deterministic(make: MakeScheduler, *, n_trials: int = 60, max_t: int = 27, resource_attr: str = "epoch",
                        seed: int = 0) -> None:
    """Two runs with the same seed make exactly the same suggestions and decisions."""
    a = _run(make, seed, n_trials=n_trials, max_t=max_t, resource_attr=resource_attr, check_none_state=False)
    b = _run(make, seed, n_trials=n_trials, max_t=max_t, resource_attr=resource_attr, check_none_state=False)
    answers_a = [(c.kind, c.trial_id, c.answer) for c in a.calls]
    answers_b = [(c.kind, c.trial_id, c.answer) for c in b.calls]
    for i, (x, y) in enumerate(zip(answers_a, answers_b, strict=False)):
        assert x == y, f"same seed, different answers at call {i}: {x} vs {y}"
    assert len(answers_a) == len(answers_b), "same seed, runs of different lengths"


def check_state_resume(make: MakeScheduler, *, n_trials: int = 60, max_t: int = 27, resource_attr: str = "epoch",
                       seed: int = 0, n_snapshots: int = 5) -> None:
    """Snapshots taken mid-run survive ``json.dumps`` / ``json.loads``; a fresh scheduler that
    loads one has the same state and answers every later call exactly as the original did."""
    _check_resumes(make, seed, n_snapshots, n_trials=n_trials, max_t=max_t, resource_attr=resource_attr)


def _check_resumes(make: MakeScheduler, seed: int, n_snapshots: int, **sim_options: Any) -> None:
    """:func:`check_state_resume` of a :class:`ContractSimulation` with ``sim_options``."""
    ref = _run(make, seed, check_none_state=False, **sim_options)
    n = len(ref.calls)
    points = {0, n} | {n * k // (n_snapshots + 1) for k in range(1, n_snapshots + 1)}
    sim = ContractSimulation(make(seed), check_none_state=False, snapshot_at=points, **sim_options)
    sim.run()
    sim.snapshots[n] = _state_json(sim.scheduler)
    assert [c.answer for c in sim.calls] == [c.answer for c in ref.calls], "taking state_dict() changed the answers"
    for at, snapshot in sorted(sim.snapshots.items()):
        fresh = make(seed)
        fresh.load_state_dict(json.loads(snapshot))
        assert _state_json(fresh) == snapshot, f"load_state_dict(state_dict()) lost state (snapshot at call {at})"
        expected = [c.answer for c in sim.calls[at:]]
        got = _replay(fresh, sim.calls[at:])
        for i, (x, y) in enumerate(zip(expected, got, strict=True)):
            assert x == y, (
                f"after loading the snapshot taken at call {at}, call {at + i} ({sim.calls[at + i].kind} "
                f"of trial {sim.calls[at + i].trial_id}) answered {y}, the uninterrupted run {x}"
            )
        assert _state_json(fresh) == _state_json(sim.scheduler), f"final state differs (snapshot at call {at})"


#: the metric :data:`CONTRACT_CONSTRAINT` bounds (the workload reports it with every result)
_CONSTRAINED_METRIC = Constraint.parse(CONTRACT_CONSTRAINT).metric


def check_missing_metric(make: MakeScheduler, *, n_trials: int = 60, max_t: int = 27, resource_attr: str = "epoch",
                         seed: int = 0) -> None:
    """A result without the metric (each of them, for a multi-objective scheduler; or without the
    resource, for multi-fidelity schedulers) raises ``KeyError`` or ``ValueError`` naming it."""
    scheduler = make(seed)
    suggestion = scheduler.suggest(0)
    assert suggestion is not None and suggestion.config is not None
    trial = Trial(0, suggestion.config)
    res_attr = scheduler.resource_attr or resource_attr
    result = {"some_other_value": 1.0, res_attr: 1}
    try:
        scheduler.on_result(trial, result)
    except (KeyError, ValueError) as exc:
        assert scheduler.metric in str(exc), f"the error does not name the metric {scheduler.metric!r}: {exc}"
    else:
        raise AssertionError(f"on_result() accepted a result without the metric {scheduler.metric!r}")
    objectives = getattr(scheduler, "objectives", None)
    metrics = objectives.metrics if objectives is not None else (scheduler.metric,)
    for missing in metrics[1:]:  # a multi-objective scheduler needs each of its metrics
        try:
            scheduler.on_result(trial, {**{m: 1.0 for m in metrics if m != missing}, res_attr: 1})
        except (KeyError, ValueError) as exc:
            assert missing in str(exc), f"the error does not name the metric {missing!r}: {exc}"
        else:
            raise AssertionError(f"on_result() accepted a result without the metric {missing!r}")
    if scheduler.resource_attr is not None:
        try:  # (every metric of the workload there, the bounded one included: only the resource is missing)
            scheduler.on_result(trial, {**dict.fromkeys(metrics, 1.0), _CONSTRAINED_METRIC: 1.0})
        except (KeyError, ValueError) as exc:
            assert scheduler.resource_attr in str(exc), f"the error does not name {scheduler.resource_attr!r}: {exc}"
        else:
            raise AssertionError(f"on_result() accepted a result without the resource {scheduler.resource_attr!r}")


def check_sanity(make: MakeScheduler, *, n_trials: int = 60, max_t: int = 27, resource_attr: str = "epoch",
                 seed: int = 0) -> None:
    """The 3 best trials (by loss at the largest epoch reached) have a better true quality, on
    average, than the trials started."""
    sim = _run(make, seed, n_trials=n_trials, max_t=max_t, resource_attr=resource_attr, check_none_state=False)
    reported = [st for st in sim.trials.values() if st.best_at]
    top_epoch = max(max(st.best_at) for st in reported)
    finalists = sorted((st.best_at[top_epoch], st.trial.trial_id) for st in reported if top_epoch in st.best_at)
    best = [true_quality(sim.trials[tid].trial.config) for _, tid in finalists[:3]]
    everyone = [true_quality(st.trial.config) for st in sim.trials.values()]
    mean_best, mean_all = sum(best) / len(best), sum(everyone) / len(everyone)
    assert mean_best < mean_all, (
        f"the best trials found have mean true loss {mean_best:.3f}, not better than all trials' {mean_all:.3f}"
    )


def check_small_budget(make: MakeScheduler, *, n_trials: int = 14, max_t: int = 27, resource_attr: str = "epoch",
                       seed: int = 0) -> None:
    """Run as the tuner does with ``max_trials=n_trials`` (then only ``suggest_resume``): it
    resumes only paused trials, ``None`` keeps the state, and if any trial was paused, some
    trial went on past the lowest resource at which one was paused (the started rungs finish).
    Snapshots taken during such a run resume it exactly (as :func:`check_state_resume`)."""
    options: dict[str, Any] = dict(n_trials=n_trials, max_t=max_t, resource_attr=resource_attr, trial_budget=True,
                                   fail_every=0, restart_fraction=0.0)
    sim = _run(make, seed, **options)
    started = sum(1 for c in sim.calls if c.kind == "suggest" and c.answer is not None and c.answer[0] == "start")
    assert started <= n_trials, f"{started} trials started with a budget of {n_trials}"
    paused_at = [c.result[sim.resource_attr] for c in sim.calls
                 if c.kind == "result" and c.answer == Decision.PAUSE.value and c.result is not None]
    if not paused_at:
        return  # a scheduler that never pauses has no rung to finish
    lowest = min(paused_at)
    reached = max(st.epoch for st in sim.trials.values())
    assert reached > lowest, (
        f"with a budget of {n_trials} trials the run ended with no trial past epoch {lowest}, where trials "
        f"were paused: suggest_resume() did not promote any of them"
    )
    _check_resumes(make, seed, 5, **options)


#: name -> check, each called as ``check(make, n_trials=..., max_t=..., resource_attr=..., seed=...)``
CONTRACT_CHECKS: dict[str, Callable[..., None]] = {
    "valid_run": check_valid_run,
    "deterministic": check_deterministic,
    "state_resume": check_state_resume,
    "missing_metric": check_missing_metric,
    "sanity": check_sanity,
    "small_budget": check_small_budget,
}


def check_scheduler_contract(make: MakeScheduler, *, n_trials: int = 60, max_t: int = 27,
                             resource_attr: str = "epoch", seed: int = 0) -> None:
    """Run every check of :data:`CONTRACT_CHECKS`; raises ``AssertionError`` on the first failure."""
    for check in CONTRACT_CHECKS.values():
        check(make, n_trials=n_trials, max_t=max_t, resource_attr=resource_attr, seed=seed)
