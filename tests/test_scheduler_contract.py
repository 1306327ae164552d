"""Every registered method passes the scheduler contract suite (parametrized over the registry,
so a newly registered method is covered at once), and the suite catches broken schedulers."""

from __future__ import annotations

from typing import Any

import pytest

from tunebench.schedulers import ASHA, METHODS, FIFOScheduler, Scheduler, make_scheduler, method_names
from tunebench.schedulers.synchronous import SynchronousHyperband
from tunebench.searchers import RandomSearcher
from tunebench.testing.scheduler_contract import (
    CONTRACT_CHECKS,
    check_scheduler_contract,
    contract_space,
    method_maker,
)
from tunebench.types import Decision, Status, Suggestion, Trial

MAX_T = 27
SPACE = contract_space(MAX_T)


@pytest.mark.parametrize("check", list(CONTRACT_CHECKS), ids=list(CONTRACT_CHECKS))
@pytest.mark.parametrize("method", method_names())
def test_contract(method: str, check: str) -> None:
    """Every registered method (with the quick options of its registration) passes every check."""
    CONTRACT_CHECKS[check](method_maker(method), n_trials=METHODS[method].quick_trials, max_t=MAX_T, seed=0)


@pytest.mark.parametrize("check", list(CONTRACT_CHECKS), ids=list(CONTRACT_CHECKS))
def test_contract_ftbo_with_the_pfn(check: str) -> None:
    """FTBO over its other surrogate, the shipped PFN (given the GP's value of each configuration,
    its default there), passes every check too (the registry's FTBO is the DPL ensemble's). With
    geometric steps: the race's steps are checked with the registry's FTBO; one epoch per step
    would make ``small_budget`` decide about 1000 times."""
    CONTRACT_CHECKS[check](method_maker("FTBO", surrogate="pfn", step=None), n_trials=METHODS["FTBO"].quick_trials,
                           max_t=MAX_T, seed=0)


@pytest.mark.parametrize("method", ["ASHA", "ASHA-promotion", "HB"])
def test_contract_mode_max_other_seed(method: str) -> None:
    check_scheduler_contract(method_maker(method, mode="max"), n_trials=40, max_t=MAX_T, seed=3)


def test_contract_asha_without_max_resource_attr() -> None:
    """Without max_resource_attr, ASHA stops trials at max_t itself (STOP instead of completion)."""

    def make(seed: int) -> Scheduler:
        return make_scheduler("ASHA-promotion", SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, seed=seed)

    check_scheduler_contract(make, n_trials=40, max_t=MAX_T)


# -- the suite catches broken schedulers ----------------------------------------------------------


class _ForgetfulFIFO(FIFOScheduler):
    """Loses the searcher's RNG state: a resumed run would propose other configs."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class _LaxFIFO(FIFOScheduler):
    """Decides on results it cannot read."""

    def on_result(self, trial: Trial, result: dict[str, Any]) -> Decision:
        return Decision.CONTINUE


class _ZombieASHA(ASHA):
    """Resumes trials it stopped."""

    def suggest(self, trial_id: int) -> Suggestion | None:
        for tid, st in self._trials.items():
            if st.status is Status.STOPPED:
                return Suggestion.resume(tid)
        return super().suggest(trial_id)


@pytest.mark.parametrize(
    "cls, check, message",
    [
        (_ForgetfulFIFO, "state_resume", "lost state|answered"),
        (_LaxFIFO, "missing_metric", "accepted a result without the metric"),
        (_ZombieASHA, "valid_run", "which is stopped, not paused"),
    ],
)
def test_suite_catches_broken_schedulers(cls: type, check: str, message: str) -> None:
    def make(seed: int) -> Scheduler:
        searcher = RandomSearcher(SPACE, "loss", "min", seed=seed)
        if issubclass(cls, ASHA):
            return cls(searcher, resource_attr="epoch", max_t=MAX_T, max_resource_attr="epochs")
        return cls(searcher)

    with pytest.raises(AssertionError, match=message):
        CONTRACT_CHECKS[check](make, n_trials=30, max_t=MAX_T)


# -- the small-budget check (the tuner's max_trials) catches broken schedulers -------------------


class _ImpatientSyncHB(SynchronousHyperband):
    """Starts new trials after the trial budget."""

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        return self.suggest(trial_id)


class _StrandingSyncHB(SynchronousHyperband):
    """Never promotes once no new trial may start (every trial waits at its first rung)."""

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        return None


class _CutForgettingSyncHB(SynchronousHyperband):
    """Loses the size of a first rung cut short: a resumed run promotes more trials."""

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["cut"] = None
        return state


class _StatefulNoneASHA(ASHA):
    """Changes its state in a suggest_resume that answers None."""

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        answer = super().suggest_resume(trial_id)
        if answer is None:
            self._rng.random()
        return answer


@pytest.mark.parametrize(
    "cls, message",
    [
        (_ImpatientSyncHB, "started a new trial"),
        (_StrandingSyncHB, "did not promote"),
        (_CutForgettingSyncHB, "lost state|answered"),
        (_StatefulNoneASHA, "suggest_resume\\(\\) returned None but changed state_dict"),
    ],
)
def test_small_budget_check_catches_broken_schedulers(cls: type, message: str) -> None:
    def make(seed: int) -> Scheduler:
        searcher = RandomSearcher(SPACE, "loss", "min", seed=seed)
        options: dict[str, Any] = {"type": "promotion", "brackets": 2} if issubclass(cls, ASHA) else {}
        return cls(searcher, resource_attr="epoch", max_t=MAX_T, max_resource_attr="epochs", **options)

    with pytest.raises(AssertionError, match=message):
        CONTRACT_CHECKS["small_budget"](make, n_trials=14, max_t=MAX_T)


def test_small_budget_check_passes_the_real_ones() -> None:
    """The same schedulers, unbroken, pass (so the failures above are the breakages')."""
    for cls, options in ((SynchronousHyperband, {}), (ASHA, {"type": "promotion", "brackets": 2})):
        def make(seed: int, cls: type = cls, options: dict[str, Any] = options) -> Scheduler:
            searcher = RandomSearcher(SPACE, "loss", "min", seed=seed)
            return cls(searcher, resource_attr="epoch", max_t=MAX_T, max_resource_attr="epochs", **options)

        CONTRACT_CHECKS["small_budget"](make, n_trials=14, max_t=MAX_T)


@pytest.mark.parametrize("check", ["valid_run", "state_resume"])
@pytest.mark.parametrize("method", method_names())
def test_contract_on_a_conditional_space(method: str, check: str) -> None:
    """Every method proposes only the active parameters of a conditional space (a chain of
    conditions on a categorical and an integer), each inside its domain, and resumes exactly."""
    CONTRACT_CHECKS[check](method_maker(method, conditional=True), n_trials=METHODS[method].quick_trials,
                           max_t=MAX_T, seed=0)
