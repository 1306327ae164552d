"""REA, BORE and PASHA: the scheduler contract, the behaviour of each method, and end-to-end
runs on the simulator backend."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.base import Blackbox
from tunebench.blackboxes.synthetic import branin_blackbox
from tunebench.errors import UserError
from tunebench.schedulers import METHODS, Scheduler, make_scheduler
from tunebench.schedulers.pasha import PASHA, ranking_deviation
from tunebench.searchers import RandomSearcher
from tunebench.searchers.bore import BORESearcher
from tunebench.searchers.rea import REASearcher
from tunebench.space import (
    choice,
    finrange,
    hyperparameters,
    logfinrange,
    lograndint,
    loguniform,
    ordinal,
    randint,
    uniform,
)
from tunebench.store import EVENTS_FILE
from tunebench.testing.scheduler_contract import CONTRACT_CHECKS, check_scheduler_contract, contract_space
from tunebench.tuner import StopCriteria, Tuner
from tunebench.types import Decision, Trial

MAX_T = 27
SPACE = contract_space(MAX_T)
C, P, S = Decision.CONTINUE, Decision.PAUSE, Decision.STOP


def maker(method: str, mode: str = "min", **extra: Any) -> Callable[[int], Scheduler]:
    def make(seed: int) -> Scheduler:
        return make_scheduler(method, SPACE, metric="loss" if mode == "min" else "accuracy", mode=mode,
                              resource_attr="epoch", max_resource_attr="epochs", seed=seed, **extra)

    return make


def inside(config: dict[str, Any], space: dict[str, Any]) -> bool:
    domains = hyperparameters(space)
    return set(config) == set(space) and all(
        domains[k].contains(v) if k in domains else v == space[k] for k, v in config.items()
    )


def events(exp: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (exp / EVENTS_FILE).read_text().splitlines()]


# -- registration and the contract ---------------------------------------------------------------


def test_methods_are_registered_with_their_defaults() -> None:
    assert METHODS["REA"].defaults == {"population_size": 10, "sample_size": 5}
    assert METHODS["BORE"].defaults["gamma"] == 0.25 and METHODS["BORE"].defaults["classifier"] == "gb"
    assert METHODS["PASHA"].defaults == {"grace_period": 1, "reduction_factor": 3, "epsilon": "auto"}
    assert not METHODS["REA"].multi_fidelity and not METHODS["BORE"].multi_fidelity
    assert METHODS["PASHA"].multi_fidelity
    rea = make_scheduler("REA", SPACE, metric="loss", seed=0)
    assert isinstance(rea.searcher, REASearcher)  # type: ignore[attr-defined]
    assert rea.searcher.population_size == 10 and rea.searcher.sample_size == 5  # type: ignore[attr-defined]
    pasha = make_scheduler("PASHA", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    assert isinstance(pasha, PASHA) and pasha.max_t == MAX_T and pasha.current_max_t == 3


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("REA", {"sample_size": 11}, "sample_size must be an integer in \\[1, population_size=10\\]"),
        ("REA", {"population_size": 0}, "population_size must be an integer >= 1"),
        ("BORE", {"gamma": 1.5}, "gamma must be in \\(0, 1\\)"),
        ("BORE", {"classifier": "svm"}, "classifier must be one of gb, rf, et, knn, mlp, logreg"),
        ("BORE", {"classifier_kwargs": {"depth": 3}}, "classifier_kwargs .* do not fit classifier 'gb'"),
        ("PASHA", {"epsilon": -1.0}, "epsilon must be a number >= 0 or 'auto'"),
        ("PASHA", {"reduction_factor": 1}, "reduction_factor must be >= 2"),
        ("PASHA", {"type": "stopping"}, "does not take option\\(s\\) type"),
    ],
)
def test_bad_options_raise_user_errors_naming_them(method: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        maker(method, **options)(0)


def test_pasha_needs_resource_and_max_t() -> None:
    with pytest.raises(UserError, match="--resource-attr"):
        make_scheduler("PASHA", {"x": uniform(0, 1)}, metric="loss", max_t=9)


def test_importing_the_registry_does_not_import_sklearn() -> None:
    code = "import sys, tunebench.schedulers; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("method", ["REA", "PASHA"])
def test_contract_mode_max_other_seed(method: str) -> None:
    check_scheduler_contract(maker(method, mode="max"), n_trials=40, max_t=MAX_T, seed=3)


def test_contract_bore_mode_max_and_other_classifier() -> None:
    make = maker("BORE", mode="max", classifier="knn", num_init_random=5)
    for check in ("valid_run", "state_resume"):
        CONTRACT_CHECKS[check](make, n_trials=20, max_t=MAX_T, seed=3)


def test_contract_pasha_fixed_epsilon_without_max_resource_attr() -> None:
    """Without max_resource_attr, PASHA stops trials at max_t itself."""

    def make(seed: int) -> Scheduler:
        return make_scheduler("PASHA", SPACE, metric="loss", resource_attr="epoch", max_t=MAX_T, seed=seed,
                              epsilon=0.0)

    check_scheduler_contract(make, n_trials=40, max_t=MAX_T)


def test_rea_inside_asha_contract() -> None:
    """REA works as the searcher of ASHA: stopped and paused trials join the population."""
    from tunebench.schedulers import ASHA

    def make(seed: int) -> Scheduler:
        searcher = REASearcher(SPACE, "loss", seed=seed, population_size=8, sample_size=3)
        return ASHA(searcher, resource_attr="epoch", max_t=MAX_T, max_resource_attr="epochs", type="promotion")

    check_scheduler_contract(make, n_trials=50, max_t=MAX_T)
    scheduler = make(0)
    trial = Trial(0, scheduler.suggest(0).config)  # type: ignore[union-attr, arg-type]
    assert scheduler.on_result(trial, {"loss": 0.7, "epoch": 1}) is P  # alone at rung 1: paused
    assert [(tid, value) for tid, _, value in scheduler.searcher.population] == [(0, 0.7)]  # type: ignore[attr-defined]


# -- REA -----------------------------------------------------------------------------------------

MIXED = {
    "f": uniform(-1.0, 1.0),
    "lf": loguniform(1e-5, 1.0),
    "i": randint(0, 1),
    "li": lograndint(1, 1000),
    "c": choice(["a", "b", "c"]),
    "o": ordinal([1, 2, 4, 8]),
    "fr": finrange(0.0, 1.0, 5),
    "lfr": logfinrange(1.0, 64.0, 7, cast_int=True),
    "one": choice(["only"]),  # a single value: never mutated
    "flat": uniform(2.0, 2.0),  # a single value too
    "const": 7,
}


def test_rea_mutation_changes_exactly_one_hyperparameter_and_stays_valid() -> None:
    rea = REASearcher(MIXED, "loss", seed=1)
    rng = np.random.default_rng(0)
    changed: dict[str, int] = {}
    parent = rea.suggest(0)
    for _ in range(1500):
        child = rea.mutate(parent)
        assert inside(child, MIXED), child
        diff = [k for k in MIXED if type(child[k]) is not type(parent[k]) or child[k] != parent[k]]
        assert len(diff) == 1, (parent, child)
        changed[diff[0]] = changed.get(diff[0], 0) + 1
        if rng.random() < 0.5:
            parent = child  # walk on, so mutations start from many different parents
    assert set(changed) == {"f", "lf", "i", "li", "c", "o", "fr", "lfr"}  # every mutable one, no other
    assert min(changed.values()) > 100  # chosen uniformly


def test_rea_mutation_of_numeric_values_makes_local_moves_and_fresh_draws() -> None:
    space = {"x": uniform(0.0, 1.0)}
    rea = REASearcher(space, "loss", seed=0, local_move_prob=0.5, local_scale=0.01)
    steps = np.array([abs(rea.mutate({"x": 0.5})["x"] - 0.5) for _ in range(400)])
    assert 0.3 < np.mean(steps < 0.05) < 0.7  # about half are local moves of scale 0.01
    assert np.mean(steps > 0.2) > 0.2  # the others are fresh draws from the whole domain


def test_rea_population_is_regularized_oldest_dies() -> None:
    rea = REASearcher({"x": uniform(0.0, 1.0)}, "loss", seed=0, population_size=3, sample_size=2)
    for tid, loss in enumerate([0.0, 5.0, 4.0, 3.0, 2.0]):  # trial 0 is the best by far
        rea.on_complete(tid, {"x": tid / 10}, {"loss": loss})
    assert [(tid, value) for tid, _, value in rea.population] == [(2, 4.0), (3, 3.0), (4, 2.0)]
    # the best one died of old age: no tournament can pick it any more
    assert all(rea.tournament()[0] != 0 for _ in range(50))


def test_rea_tournament_picks_the_best_of_a_random_sample() -> None:
    p, s, n = 10, 3, 6000
    rea = REASearcher({"x": uniform(0.0, 1.0)}, "loss", seed=0, population_size=p, sample_size=s)
    values = np.random.default_rng(1).permutation(p).astype(float)  # rank of member i = values[i]
    for tid, value in enumerate(values):
        rea.on_complete(tid, {"x": tid / p}, {"loss": value})
    ranks = np.array([rea.tournament()[2] for _ in range(n)], dtype=int)
    freq = np.bincount(ranks, minlength=p) / n
    # the winner has rank r iff the sample holds r's member and s - 1 of the p - 1 - r worse ones
    expected = np.array([math.comb(p - 1 - r, s - 1) / math.comb(p, s) for r in range(p)])
    assert np.abs(freq - expected).max() < 0.025, (freq, expected)
    assert freq[-2:].sum() == 0  # the two worst never win a tournament of three
    # a tournament of the whole population always picks the best; one of size 1 is uniform
    whole = REASearcher({"x": uniform(0.0, 1.0)}, "loss", seed=0, population_size=p, sample_size=p)
    for tid, value in enumerate(values):
        whole.on_complete(tid, {"x": tid / p}, {"loss": value})
    assert {whole.tournament()[2] for _ in range(100)} == {0.0}


def test_rea_first_suggestions_are_random_then_children_of_the_population() -> None:
    space = {"a": uniform(0.0, 1.0), "b": uniform(0.0, 1.0), "c": choice(["x", "y"]), "e": 9}
    rea = REASearcher(space, "loss", mode="max", seed=3, population_size=4, sample_size=2,
                      points_to_evaluate=[{"a": 0.5}])
    first = [rea.suggest(t) for t in range(4)]
    assert first[0] == {"a": 0.5, "b": 0.5, "c": "x", "e": 9}  # completed with the defaults
    assert rea.suggest(4) not in first  # nothing has ended yet: still random
    for tid, config in enumerate(first):
        rea.on_complete(tid, config, {"loss": config["a"]})  # mode max: the largest a is best
    for t in range(5, 40):
        child = rea.suggest(t)
        assert any(sum(child[k] != parent[k] for k in space) == 1 for parent in first), child
    # NaN counts as the worst value; a trial that failed never joins the population
    rea.on_complete(10, first[0], {"loss": float("nan")})
    rea.on_error(11, first[1])
    assert rea.population[-1][2] == math.inf and len(rea.population) == 4


def test_rea_uses_the_last_result_when_a_trial_is_stopped() -> None:
    rea = REASearcher({"x": uniform(0.0, 1.0)}, "loss", seed=0)
    rea.on_result(0, {"x": 0.1}, {"loss": 3.0, "epoch": 1})
    rea.on_result(0, {"x": 0.1}, {"loss": 2.0, "epoch": 2})
    rea.on_stop(0, {"x": 0.1}, paused=False)
    rea.on_complete(1, {"x": 0.2}, None)  # no result at all: no entry
    assert [(tid, value) for tid, _, value in rea.population] == [(0, 2.0)]


def test_rea_beats_random_search_on_average() -> None:
    space = {f"x{i}": uniform(0.0, 1.0) for i in range(4)}

    def loss(c: dict[str, Any]) -> float:
        return sum((c[f"x{i}"] - 0.2 * (i + 1)) ** 2 for i in range(4))

    def best(searcher: Any, budget: int = 80) -> float:
        values = []
        for t in range(budget):
            c = searcher.suggest(t)
            values.append(loss(c))
            searcher.on_complete(t, c, {"loss": values[-1]})
        return min(values)

    rea = [best(REASearcher(space, "loss", seed=s)) for s in range(8)]
    rs = [best(RandomSearcher(space, "loss", seed=s)) for s in range(8)]
    assert np.mean(rea) < 0.7 * np.mean(rs), (np.mean(rea), np.mean(rs))


# -- BORE ----------------------------------------------------------------------------------------

QUAD = {"x": uniform(0.0, 1.0), "y": uniform(0.0, 1.0), "z": uniform(0.0, 1.0), "w": uniform(0.0, 1.0), "epochs": 1}
OPT = {"x": 0.3, "y": 0.7, "z": 0.5, "w": 0.4}


def quad_loss(c: dict[str, Any]) -> float:
    return sum((c[k] - OPT[k]) ** 2 for k in OPT)


def run_searcher(searcher: Any, budget: int) -> list[float]:
    values = []
    for t in range(budget):
        c = searcher.suggest(t)
        values.append(quad_loss(c))
        searcher.on_complete(t, c, {"loss": values[-1]})
    return values


def test_bore_labels_the_best_gamma_fraction() -> None:
    bore = BORESearcher(QUAD, "loss", gamma=0.25, seed=0)
    for tid, loss in enumerate([5.0, 1.0, 3.0, 0.5, 4.0, 2.0, 6.0, 7.0]):
        bore.on_complete(tid, {"x": 0.1, "y": 0.1, "z": 0.1, "w": 0.1, "epochs": 1}, {"loss": loss})
    assert bore.labels().tolist() == [0, 1, 0, 1, 0, 0, 0, 0]  # ceil(0.25 * 8) = 2 best
    assert bore.labels(3).tolist() == [0, 1, 0]


def test_bore_classifier_favours_the_good_region() -> None:
    bore = BORESearcher(QUAD, "loss", seed=0)
    configs = RandomSearcher(QUAD, "loss", seed=1)
    for t in range(80):
        c = configs.suggest(t)
        bore.on_complete(t, c, {"loss": quad_loss(c)})
    test = [configs.suggest(100 + t) for t in range(300)]
    proba = bore.predict_proba(test)
    losses = np.array([quad_loss(c) for c in test])
    good, bad = losses <= np.quantile(losses, 0.25), losses >= np.quantile(losses, 0.5)
    assert proba[good].mean() > 2 * proba[bad].mean(), (proba[good].mean(), proba[bad].mean())
    p_opt, p_far = bore.predict_proba([{**OPT, "epochs": 1}, {"x": 1.0, "y": 0.0, "z": 1.0, "w": 1.0, "epochs": 1}])
    assert p_opt > 0.5 > p_far


def test_bore_beats_random_search_on_average() -> None:
    budget, seeds = 50, range(5)
    bore = [min(run_searcher(BORESearcher(QUAD, "loss", seed=s), budget)) for s in seeds]
    rs = [min(run_searcher(RandomSearcher(QUAD, "loss", seed=s), budget)) for s in seeds]
    assert np.mean(bore) < 0.5 * np.mean(rs), (np.mean(bore), np.mean(rs))
    # the nearest-neighbour classifier too
    knn = [min(run_searcher(BORESearcher(QUAD, "loss", seed=s, classifier="knn"), budget)) for s in seeds]
    assert np.mean(knn) < 0.5 * np.mean(rs), (np.mean(knn), np.mean(rs))


def test_bore_is_deterministic_and_resumes_exactly() -> None:
    def make(seed: int) -> BORESearcher:
        return BORESearcher(QUAD, "loss", seed=seed, num_init_random=5, classifier_kwargs={"n_estimators": 10})

    a, b = make(4), make(4)
    assert run_searcher(a, 20) == run_searcher(b, 20)
    assert run_searcher(make(5), 20) != run_searcher(make(4), 20)
    # a restored searcher refits the same model and goes on identically
    fresh = make(4)
    fresh.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert json.dumps(fresh.state_dict(), sort_keys=True) == json.dumps(a.state_dict(), sort_keys=True)
    assert [fresh.suggest(t) for t in range(20, 26)] == [a.suggest(t) for t in range(20, 26)]


def test_bore_refits_on_a_schedule_and_caps_the_training_set() -> None:
    bore = BORESearcher(QUAD, "loss", seed=0, refit_fraction=0.25, max_train=40, random_fraction=0.0,
                        num_init_random=2, classifier="rf", classifier_kwargs={"n_estimators": 3})
    configs = RandomSearcher(QUAD, "loss", seed=1)
    bore.suggest(0), bore.suggest(1)  # the initial random ones
    fits = []
    for t in range(100):
        c = configs.suggest(t)
        bore.on_complete(t, c, {"loss": quad_loss(c)})
        if t >= 9:
            bore.suggest(1000 + t)
            fits.append(bore.n_fitted)
    assert fits[0] == 10 and fits[-1] <= 100
    # refitted only once the observations grew by a quarter: 10 fits for 91 suggestions
    assert all(b == a or b - a >= max(1, math.floor(0.25 * a)) for a, b in zip(fits, fits[1:], strict=False))
    assert len(set(fits)) <= 12
    # past max_train observations, the model is fitted on a subsample of max_train (a bootstrap of 40)
    assert bore.n_fitted > 40 and bore._model.estimators_[0].tree_.weighted_n_node_samples[0] == 40


# -- PASHA ---------------------------------------------------------------------------------------


def drive(scheduler: Scheduler, curve: Callable[[dict[str, Any], int], float], n_trials: int,
          max_t: int = MAX_T) -> list[tuple[int, int, Decision]]:
    """One worker: each trial (new or resumed) reports epochs until it is paused, stopped or
    reaches ``max_t``; returns (trial id, epoch, decision) of every result."""
    log = []
    trials: dict[int, Trial] = {}
    epochs: dict[int, int] = {}
    while True:
        s = scheduler.suggest(len(trials))
        if s is None:
            break
        if s.is_resume:
            tid = s.resume_trial_id
        else:
            if len(trials) >= n_trials:
                break
            tid = len(trials)
            trials[tid] = Trial(tid, s.config)  # type: ignore[arg-type]
            epochs[tid] = 0
        while True:
            epochs[tid] += 1
            e = epochs[tid]
            result = {"loss": curve(trials[tid].config, e), "epoch": e}
            d = scheduler.on_result(trials[tid], result)
            log.append((tid, e, d))
            if d is not C:
                break
            if e >= max_t:
                scheduler.on_complete(trials[tid], result)
                break
    return log


def pasha(epsilon: float | str = 0.0, **kwargs: Any) -> PASHA:
    return PASHA(RandomSearcher({"x": uniform(0.0, 1.0), "epochs": MAX_T}, "loss", seed=0), resource_attr="epoch",
                 max_t=MAX_T, max_resource_attr="epochs", epsilon=epsilon, **kwargs)


def same_ranking(c: dict[str, Any], e: int) -> float:
    return c["x"] * (1.0 + 2.0 / e)  # the ranking is the same at every epoch


def alternating_ranking(c: dict[str, Any], e: int) -> float:
    x = c["x"] if 3 <= e < 9 else 1.0 - c["x"]  # the ranking reverses at epochs 3 and 9
    return x + 1.0 / e


def test_ranking_deviation() -> None:
    lower = {1: 0.1, 2: 0.2, 3: 0.3}
    assert ranking_deviation([(0.5, 1), (0.6, 2), (0.7, 3)], lower) == 0.0
    assert ranking_deviation([(0.5, 3), (0.6, 2), (0.7, 1)], lower) == pytest.approx(0.2)
    assert ranking_deviation([(0.5, 2), (0.6, 1), (0.7, 3)], lower) == pytest.approx(0.1)
    assert ranking_deviation([(0.5, 1)], lower) == 0.0


def test_pasha_keeps_its_maximum_while_the_rankings_agree() -> None:
    scheduler = pasha()
    log = drive(scheduler, same_ranking, n_trials=40)
    assert scheduler.current_max_t == 3 and scheduler.ranking_deviation == 0.0
    assert max(e for _, e, _ in log) == 3  # nobody trained beyond the second rung
    assert len(scheduler.rung_results()[3]) >= 4  # ... although several trials reached it
    at_top = [d for _, e, d in log if e == 3]
    assert at_top and set(at_top) == {P}  # paused at the maximum, not stopped


def test_pasha_adds_rungs_while_the_rankings_disagree_up_to_max_t() -> None:
    scheduler = pasha()
    log = drive(scheduler, alternating_ranking, n_trials=60)
    assert scheduler.current_max_t == MAX_T  # 3 -> 9 -> 27: every rung added
    assert max(e for _, e, _ in log) == MAX_T  # and trials trained up to max_t, never beyond
    assert all(e <= MAX_T for _, e, _ in log)
    resumed_at_3 = [tid for tid, e, _ in log if e == 4]
    assert resumed_at_3, "trials paused at the former maximum were resumed once it grew"


def two_at_the_top(epsilon: float | str) -> tuple[PASHA, list[Trial]]:
    """Six trials at rung 1 (losses 0.1 ... 0.6); the two best promoted to rung 3 (the initial
    maximum) in the same order (0.08, 0.18); three more trials, worse, at rung 1; then trial 2
    is promoted from rung 1."""
    scheduler = pasha(epsilon=epsilon)
    trials = [Trial(t, {"x": t / 10, "epochs": MAX_T}) for t in range(6)]  # started elsewhere (by hand)
    for t, loss in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]):
        assert scheduler.on_result(trials[t], {"epoch": 1, "loss": loss}) is P
    for t, loss in [(0, 0.08), (1, 0.18)]:
        assert scheduler.suggest(6).resume_trial_id == t  # type: ignore[union-attr]  # the top third of rung 1
        assert scheduler.on_result(trials[t], {"epoch": 2, "loss": loss + 0.01}) is C
        assert scheduler.on_result(trials[t], {"epoch": 3, "loss": loss}) is P  # at the maximum: paused
    assert scheduler.current_max_t == 3 and scheduler.ranking_deviation == 0.0  # same order at both rungs
    for t, loss in [(6, 0.7), (7, 0.8), (8, 0.9)]:
        s = scheduler.suggest(t)
        assert s is not None and not s.is_resume  # trial 2 (third of 6-8) is not promotable yet
        trials.append(Trial(t, s.config))  # type: ignore[arg-type]
        assert scheduler.on_result(trials[t], {"epoch": 1, "loss": loss}) is P
    assert scheduler.suggest(9).resume_trial_id == 2  # type: ignore[union-attr]  # third of 9: promoted
    return scheduler, trials


def test_pasha_grows_when_a_trial_changes_rank_between_the_top_two_rungs() -> None:
    scheduler, trials = two_at_the_top(epsilon=0.05)
    assert scheduler.on_result(trials[2], {"epoch": 2, "loss": 0.25}) is C
    assert scheduler.current_max_t == 3
    # trial 2 reaches rung 3 better than both, although it was worse than both at rung 1
    assert scheduler.on_result(trials[2], {"epoch": 3, "loss": 0.01}) is P
    # ranked by rung 3: 2, 0, 1 -> rung-1 values 0.3, 0.1, 0.2 against 0.1, 0.2, 0.3 sorted:
    # a deviation of 0.2 > epsilon, so the next rung is added (its top two rungs agree, so far)
    assert scheduler.current_max_t == 9 and scheduler.ranking_deviation == 0.0
    # trial 2, the best at rung 3, is resumed towards the new maximum; 0 and 1 wait their turn
    assert scheduler.suggest(10).resume_trial_id == 2  # type: ignore[union-attr]
    for e in range(4, 9):
        assert scheduler.on_result(trials[2], {"epoch": e, "loss": 0.01}) is C
    assert scheduler.on_result(trials[2], {"epoch": 9, "loss": 0.01}) is P  # the new maximum


def test_pasha_keeps_its_maximum_when_the_rankings_agree_at_the_top() -> None:
    scheduler, trials = two_at_the_top(epsilon=0.05)
    scheduler.on_result(trials[2], {"epoch": 2, "loss": 0.29})
    assert scheduler.on_result(trials[2], {"epoch": 3, "loss": 0.28}) is P  # third at both rungs
    assert scheduler.ranking_deviation == 0.0 and scheduler.current_max_t == 3
    nxt = scheduler.suggest(10)
    assert nxt is not None and not nxt.is_resume  # nobody goes beyond the maximum


def test_pasha_tolerates_rank_changes_within_epsilon() -> None:
    scheduler, trials = two_at_the_top(epsilon=0.25)
    scheduler.on_result(trials[2], {"epoch": 2, "loss": 0.25})
    scheduler.on_result(trials[2], {"epoch": 3, "loss": 0.01})
    assert scheduler.ranking_deviation == pytest.approx(0.2) and scheduler.current_max_t == 3


def test_pasha_automatic_epsilon_measures_crossing_curves() -> None:
    scheduler = pasha(epsilon="auto", rung_levels=[1, 9])  # the maximum starts at 9
    trials = [Trial(t, {"x": t / 20, "epochs": MAX_T}) for t in range(12)]
    for t in range(12):
        assert scheduler.on_result(trials[t], {"epoch": 1, "loss": 0.1 * (t + 1)}) is P
    # the best four are promoted in turn; from epoch 1 to 2, trials 0, 1, 2 cross each other
    # (0 falls behind 1 and 2, 1 behind 2), trial 3 stays behind them all
    epoch2 = {0: 0.35, 1: 0.3, 2: 0.25, 3: 0.45}
    for t, loss in epoch2.items():
        assert scheduler.suggest(12).resume_trial_id == t  # type: ignore[union-attr]
        assert scheduler.on_result(trials[t], {"epoch": 2, "loss": loss}) is C
        if t == 0:
            assert scheduler.current_epsilon == 0.0  # no crossing seen yet
    # distances at epoch 2: (0, 1) 0.05, (0, 2) 0.1, (1, 2) 0.05
    assert sorted(scheduler._crossings) == pytest.approx([0.05, 0.05, 0.1])
    assert scheduler.current_epsilon == pytest.approx(np.percentile([0.05, 0.05, 0.1], 90))
    assert scheduler.current_max_t == 9


def test_pasha_state_round_trip_keeps_the_grown_maximum() -> None:
    scheduler = pasha(epsilon="auto")
    drive(scheduler, alternating_ranking, n_trials=25)
    state = json.loads(json.dumps(scheduler.state_dict()))
    fresh = pasha(epsilon="auto")
    fresh.load_state_dict(state)
    assert fresh.current_max_t == scheduler.current_max_t > 3
    assert fresh.current_epsilon == scheduler.current_epsilon
    assert fresh.ranking_deviation == scheduler.ranking_deviation
    assert json.dumps(fresh.state_dict(), sort_keys=True) == json.dumps(scheduler.state_dict(), sort_keys=True)


# -- end to end on the simulator -----------------------------------------------------------------


class StableQuadratic(Blackbox):
    """loss = ((x - 0.3)^2 + 0.05) * (1 + 2 / epoch): the ranking never changes across epochs;
    each epoch takes 1 + |x| seconds."""

    name = "stable-quadratic"
    fidelity_name = "epoch"
    objectives = ("loss", "time")
    elapsed_time_attr = "time"

    def __init__(self, max_epoch: int = MAX_T) -> None:
        self.config_space = {"x": uniform(-1.0, 1.0)}
        self.fidelity_values = np.arange(1, max_epoch + 1)

    def _evaluate(self, configs, fidelity_index, seed):  # type: ignore[no-untyped-def]
        x = np.array([c["x"] for c in configs])[:, None]
        epochs = self.fidelity_values[fidelity_index][None, :].astype(float)
        loss = ((x - 0.3) ** 2 + 0.05) * (1 + 2 / epochs)
        return np.stack([loss, epochs * (1.0 + np.abs(x))], axis=-1)


def simulate(exp: Path, method: str, blackbox: Blackbox, max_trials: int, n_workers: int = 4,
             **options: Any) -> list[dict[str, Any]]:
    max_t = int(blackbox.fidelity_values[-1])
    scheduler = make_scheduler(method, {**blackbox.config_space, "epochs": max_t}, metric="loss", mode="min",
                               resource_attr="epoch", max_resource_attr="epochs", seed=0, **options)
    backend = SimulatorBackend(blackbox, charge_decision_time=False, max_resource_attr="epochs")
    Tuner(backend, scheduler, n_workers=n_workers, stop=StopCriteria(max_trials=max_trials),
          experiment_dir=exp).run()
    return events(exp)


@pytest.mark.parametrize("method", ["REA", "BORE"])
def test_single_fidelity_methods_run_on_the_simulator(tmp_path: Path, method: str) -> None:
    bb = branin_blackbox(max_fidelity=3, noise=0.0)
    evs = simulate(tmp_path / method, method, bb, max_trials=25)
    completed = [e for e in evs if e["event"] == "trial_complete"]
    assert len(completed) == 25
    finals = [e["result"]["loss"] for e in evs if e["event"] == "result" and e["result"]["epoch"] == 3]
    assert len(finals) == 25 and min(finals) < np.median(finals)
    configs = [e["config"] for e in evs if e["event"] == "trial_start"]
    assert all(inside(c, {**bb.config_space, "epochs": 3}) for c in configs)


def test_pasha_uses_fewer_epochs_than_asha_when_rankings_are_stable(tmp_path: Path) -> None:
    bb = StableQuadratic()
    runs = {m: simulate(tmp_path / m, m, bb, max_trials=60) for m in ("PASHA", "ASHA-promotion")}
    epochs = {m: sum(1 for e in evs if e["event"] == "result") for m, evs in runs.items()}
    top = {m: max(e["result"]["epoch"] for e in evs if e["event"] == "result") for m, evs in runs.items()}
    assert top["PASHA"] == 3 and top["ASHA-promotion"] > 3
    assert epochs["PASHA"] < 0.8 * epochs["ASHA-promotion"], epochs
    # the configuration PASHA ranks best at its maximum is as good as ASHA's best at max_t
    best_x = {m: min(((e["result"]["loss"], e["result"]["epoch"]) for e in evs if e["event"] == "result"),
                     key=lambda lv: lv[0] / (1 + 2 / lv[1]))
              for m, evs in runs.items()}
    assert best_x["PASHA"][0] / (1 + 2 / best_x["PASHA"][1]) <= 1.05 * (
        best_x["ASHA-promotion"][0] / (1 + 2 / best_x["ASHA-promotion"][1]))
    assert {e["decision"] for e in runs["PASHA"] if e["event"] == "result" and e["result"]["epoch"] == 3} == {"PAUSE"}


def test_pasha_runs_on_the_simulator_with_a_noisy_benchmark(tmp_path: Path) -> None:
    bb = branin_blackbox(max_fidelity=MAX_T, noise=0.3)
    evs = simulate(tmp_path / "pasha", "PASHA", bb, max_trials=50)
    results = [e for e in evs if e["event"] == "result"]
    assert len({e["trial_id"] for e in results}) == 50
    assert max(e["result"]["epoch"] for e in results) <= MAX_T
