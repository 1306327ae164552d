"""ASHA (stopping and promotion), asynchronous Hyperband, FIFO and the method registry."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tunebench.errors import UserError
from tunebench.schedulers import (
    ASHA,
    METHODS,
    FIFOScheduler,
    HyperbandScheduler,
    MethodContext,
    describe_methods,
    make_scheduler,
    method_names,
    register_method,
)
from tunebench.schedulers.asha import default_rung_levels, hyperband_bracket_weights
from tunebench.searchers import GridSearcher, RandomSearcher
from tunebench.space import choice, uniform
from tunebench.types import Decision, Suggestion, Trial

C, P, S = Decision.CONTINUE, Decision.PAUSE, Decision.STOP
SPACE = {"x": uniform(0.0, 1.0), "epochs": 27}


def make_asha(**kwargs: Any) -> ASHA:
    kwargs.setdefault("resource_attr", "epoch")
    kwargs.setdefault("max_t", 27)
    mode = kwargs.pop("mode", "min")
    return ASHA(RandomSearcher(SPACE, "loss", mode, seed=0), **kwargs)


def start(scheduler: ASHA, n: int, first: int = 0) -> list[Trial]:
    trials = []
    for tid in range(first, first + n):
        suggestion = scheduler.suggest(tid)
        assert suggestion is not None and not suggestion.is_resume
        trials.append(Trial(tid, suggestion.config))  # type: ignore[arg-type]
    return trials


def report(scheduler: ASHA, trial: Trial, epoch: int, loss: float) -> Decision:
    return scheduler.on_result(trial, {"epoch": epoch, "loss": loss})


# -- rung levels and arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    "grace, eta, max_t, expected",
    [
        (1, 3, 27, [1, 3, 9]),  # max_t itself is the end, not a rung
        (1, 3, 28, [1, 3, 9, 27]),
        (1, 3, 81, [1, 3, 9, 27]),
        (1, 2, 16, [1, 2, 4, 8]),
        (2, 3, 100, [2, 6, 18, 54]),
        (4, 4, 200, [4, 16, 64]),
        (1, 3, 1, []),
        (5, 3, 5, []),
    ],
)
def test_default_rung_levels(grace: int, eta: float, max_t: int, expected: list[int]) -> None:
    assert default_rung_levels(grace, eta, max_t) == expected
    assert make_asha(grace_period=grace, reduction_factor=eta, max_t=max_t).rung_levels == expected


def test_explicit_rung_levels() -> None:
    assert make_asha(rung_levels=[2, 5, 10]).rung_levels == [2, 5, 10]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"grace_period": 0}, "grace_period must be >= 1"),
        ({"grace_period": 30}, "must be <= max_t"),
        ({"reduction_factor": 1.5}, "reduction_factor must be >= 2"),
        ({"rung_levels": [3, 3, 9]}, "strictly increasing"),
        ({"rung_levels": [1, 27]}, "within \\(0, max_t=27\\)"),
        ({"rung_levels": [0, 3]}, "within"),
        ({"type": "halving"}, "'stopping' or 'promotion'"),
        ({"brackets": 0}, "brackets must be"),
        ({"max_t": 0}, "max_t must be > 0"),
        ({"resource_attr": ""}, "resource_attr"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_asha(**kwargs)


def test_takes_metric_mode_space_from_searcher() -> None:
    scheduler = make_asha(mode="max")
    assert (scheduler.metric, scheduler.mode, scheduler.config_space) == ("loss", "max", SPACE)


# -- stopping type --------------------------------------------------------------------------------


def test_stopping_hand_made_sequence() -> None:
    scheduler = make_asha()  # rungs 1, 3, 9; eta 3; continue iff rank < max(1, floor(n/3))
    t = start(scheduler, 8)
    losses = [5.0, 6.0, 4.0, 4.5, 3.0, 7.0, 4.2, 3.5]
    # n:        1    2    3    4    5    6    7    8
    # keep:     1    1    1    1    1    2    2    2
    # rank:     0    1    0    1    0    5    2    1
    expected = [C, S, C, S, C, S, S, C]
    assert [report(scheduler, t[i], 1, loss) for i, loss in enumerate(losses)] == expected
    assert report(scheduler, t[0], 2, 9.9) == C  # between rungs: never stopped
    assert report(scheduler, t[0], 3, 2.0) == C  # first at rung 3
    assert report(scheduler, t[2], 3, 2.5) == S  # rank 1 >= max(1, floor(2/3))
    assert report(scheduler, t[4], 3, 1.0) == C  # best at rung 3
    assert report(scheduler, t[1], 2, 0.0) == S  # stopped trials stay stopped
    assert [tid for _, tid in scheduler.rung_results()[1]] == [4, 7, 2, 6, 3, 0, 1, 5]


def test_stopping_mode_max() -> None:
    scheduler = make_asha(mode="max")
    t = start(scheduler, 3)
    assert report(scheduler, t[0], 1, 0.5) == C
    assert report(scheduler, t[1], 1, 0.4) == S  # lower accuracy is worse
    assert report(scheduler, t[2], 1, 0.9) == C


def test_skipped_rung_uses_first_result_past_it() -> None:
    scheduler = make_asha()
    t = start(scheduler, 2)
    assert report(scheduler, t[0], 2, 1.0) == C  # epoch 2 passes rung 1
    assert scheduler.rung_results()[1] == [(1.0, 0)]
    assert report(scheduler, t[0], 4, 0.8) == C  # epoch 4 is its rung-3 result
    assert scheduler.rung_results()[3] == [(0.8, 0)]
    assert report(scheduler, t[1], 10, 0.5) == C  # jumps over rungs 1, 3 and 9
    rungs = scheduler.rung_results()
    assert (0.5, 1) in rungs[1] and (0.5, 1) in rungs[3] and rungs[9] == [(0.5, 1)]


def test_stops_at_max_t_unless_script_ends_by_itself() -> None:
    scheduler = make_asha(rung_levels=[3])
    (trial,) = start(scheduler, 1)
    assert [report(scheduler, trial, e, 1.0) for e in (1, 26, 27)] == [C, C, S]
    scheduler = make_asha(rung_levels=[3], max_resource_attr="epochs")
    (trial,) = start(scheduler, 1)
    assert report(scheduler, trial, 27, 1.0) == C  # the script stops at --epochs 27: completed


def test_missing_metric_or_resource_raises() -> None:
    scheduler = make_asha()
    (trial,) = start(scheduler, 1)
    with pytest.raises(UserError, match="no metric 'loss'"):
        scheduler.on_result(trial, {"epoch": 1, "acc": 0.3})
    with pytest.raises(UserError, match="no resource 'epoch'"):
        scheduler.on_result(trial, {"loss": 0.3})
    with pytest.raises(UserError, match="not a number"):
        scheduler.on_result(trial, {"loss": "high", "epoch": 1})


def test_nan_counts_as_worst() -> None:
    scheduler = make_asha()
    t = start(scheduler, 2)
    assert report(scheduler, t[0], 1, 1.0) == C
    assert report(scheduler, t[1], 1, float("nan")) == S


# -- promotion type -------------------------------------------------------------------------------


def test_promotion_pauses_then_promotes_best_first() -> None:
    scheduler = make_asha(type="promotion")
    t = start(scheduler, 9)
    # each arrives worse than everything before it: never promotable at once -> PAUSE
    order = [8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert [report(scheduler, t[tid], 1, float(i)) for i, tid in enumerate(order)] == [P] * 9
    # floor(9/3) = 3 promotable, best first: trials 8, 7, 6
    assert [scheduler.suggest(9) for _ in range(3)] == [Suggestion.resume(i) for i in (8, 7, 6)]
    new = scheduler.suggest(9)
    assert new is not None and not new.is_resume  # nothing else promotable: a new trial


def test_promotion_continues_at_once_when_promotable() -> None:
    scheduler = make_asha(type="promotion")
    t = start(scheduler, 4)
    assert report(scheduler, t[0], 1, 5.0) == P  # floor(1/3) = 0: nobody promotable yet
    assert report(scheduler, t[1], 1, 4.0) == P
    assert report(scheduler, t[2], 1, 6.0) == P  # n=3: top 1 is trial 1, not trial 2
    assert report(scheduler, t[3], 1, 1.0) == C  # n=4: trial 3 is the top 1 -> goes on at once
    new = scheduler.suggest(4)  # the single slot is taken by trial 3: nothing to resume
    assert new is not None and not new.is_resume


def test_promotion_when_a_worker_frees() -> None:
    scheduler = make_asha(type="promotion")
    t = start(scheduler, 3)
    assert report(scheduler, t[0], 1, 5.0) == P
    assert report(scheduler, t[1], 1, 4.0) == P
    assert report(scheduler, t[2], 1, 6.0) == P
    assert scheduler.suggest(3) == Suggestion.resume(1)  # the worker freed by trial 2 resumes trial 1
    new = scheduler.suggest(3)
    assert new is not None and not new.is_resume
    # trial 1 restarted without checkpoint: old epochs are ignored (CONTINUE, nothing recorded)
    assert report(scheduler, t[1], 1, 99.0) == C
    assert len(scheduler.rung_results()[1]) == 3
    assert report(scheduler, t[1], 2, 3.0) == C
    assert report(scheduler, t[1], 3, 2.0) == P  # first at rung 3: floor(1/3) = 0


def test_promotion_highest_rung_first() -> None:
    scheduler = make_asha(type="promotion")
    t = start(scheduler, 12)
    for i, trial in enumerate(t[:9]):
        assert report(scheduler, trial, 1, float(i)) == P
    for tid in (0, 1, 2):
        assert scheduler.suggest(12) == Suggestion.resume(tid)
    assert report(scheduler, t[0], 3, 0.5) == P
    assert report(scheduler, t[1], 3, 0.4) == P
    assert report(scheduler, t[2], 3, 0.6) == P  # rung 3: top 1 = trial 1
    for trial in t[9:]:
        assert report(scheduler, trial, 1, 50.0) == P  # rung 1: n=12 -> top 4: trial 3 promotable
    assert scheduler.suggest(12) == Suggestion.resume(1)  # highest rung first
    assert scheduler.suggest(12) == Suggestion.resume(3)
    new = scheduler.suggest(12)
    assert new is not None and not new.is_resume


def test_failed_and_completed_trials_never_promoted() -> None:
    scheduler = make_asha(type="promotion")
    t = start(scheduler, 6)
    for i, trial in enumerate(t):
        assert report(scheduler, trial, 1, float(i)) == P
    scheduler.on_error(t[0])  # best paused trial fails: removed from the rung (n=5 -> top 1)
    scheduler.on_complete(t[1], {"epoch": 1, "loss": 1.0})  # e.g. its script ended early
    assert [tid for _, tid in scheduler.rung_results()[1]] == [1, 2, 3, 4, 5]
    suggestion = scheduler.suggest(6)
    assert suggestion is not None and not suggestion.is_resume  # trial 1 holds the only slot
    assert report(scheduler, t[0], 2, 0.0) == S  # late result of a failed trial


def test_promotion_state_roundtrip_mid_run() -> None:
    scheduler = make_asha(type="promotion", brackets=3, seed=5)
    t = start(scheduler, 9)
    for i, trial in enumerate(t):
        report(scheduler, trial, 1, float(i))
    snapshot = json.loads(json.dumps(scheduler.state_dict()))
    fresh = make_asha(type="promotion", brackets=3, seed=5)
    fresh.load_state_dict(snapshot)
    assert fresh.state_dict() == scheduler.state_dict()
    for tid in range(9, 15):
        assert fresh.suggest(tid) == scheduler.suggest(tid)
    with pytest.raises(ValueError, match="rung levels"):
        make_asha(type="promotion", max_t=81).load_state_dict(snapshot)


# -- asynchronous Hyperband -----------------------------------------------------------------------


def test_hyperband_bracket_weights_match_hyperband_paper() -> None:
    # Li et al. 2018, R=27 (in units of the grace period), eta=3: n = 27, 12, 6, 4
    assert hyperband_bracket_weights(4, 3) == [27, 12, 6, 4]
    # R=81, eta=3: n = 81, 34, 15, 8, 5
    assert hyperband_bracket_weights(5, 3) == [81, 34, 15, 8, 5]
    assert hyperband_bracket_weights(1, 3) == [1]


def test_hyperband_brackets_levels_and_cap() -> None:
    scheduler = HyperbandScheduler(RandomSearcher(SPACE, "loss"), resource_attr="epoch", max_t=27)
    assert scheduler.brackets == 4
    assert [scheduler.bracket_levels(b) for b in range(4)] == [[1, 3, 9], [3, 9], [9], []]
    assert make_asha(brackets=10).brackets == 4
    assert make_asha().brackets == 1


def test_hyperband_bracket_frequencies() -> None:
    scheduler = make_asha(brackets="all", seed=1)
    n = 4000
    for tid in range(n):
        scheduler.suggest(tid)
    counts = Counter(scheduler.trial_bracket(tid) for tid in range(n))
    expected = [w / 49 for w in (27, 12, 6, 4)]
    assert scheduler.bracket_probabilities == pytest.approx(expected)
    for b, p in enumerate(expected):
        assert abs(counts[b] / n - p) < 0.03, (b, counts[b] / n, p)


def test_hyperband_bracket_rungs() -> None:
    scheduler = make_asha(brackets=None, seed=0)
    trials = start(scheduler, 200)
    by_bracket: dict[int, list[Trial]] = {}
    for trial in trials:
        by_bracket.setdefault(scheduler.trial_bracket(trial.trial_id), []).append(trial)
    assert set(by_bracket) == {0, 1, 2, 3}
    # bracket 1 starts at rung 3: two trials with terrible losses at epoch 1..2 go on
    a, b = by_bracket[1][:2]
    for trial in (a, b):
        assert report(scheduler, trial, 1, 100.0) == C
        assert report(scheduler, trial, 2, 100.0) == C
    assert report(scheduler, a, 3, 1.0) == C
    assert report(scheduler, b, 3, 2.0) == S  # its own rung at 3 (bracket 0's rung 3 is separate)
    # the last bracket has no rungs: plain full-fidelity evaluation
    (c,) = by_bracket[3][:1]
    assert all(report(scheduler, c, e, 1000.0) == C for e in range(1, 27))
    assert scheduler.rung_results(bracket=0)[3] == []


# -- FIFO and the registry ------------------------------------------------------------------------


def test_fifo_always_continues_and_ends_with_the_grid() -> None:
    space = {"a": choice([1, 2]), "epochs": 3}
    scheduler = FIFOScheduler(GridSearcher(space, "loss", "min"))
    suggestions = [scheduler.suggest(i) for i in range(2)]
    assert [s.config for s in suggestions] == [{"a": 1, "epochs": 3}, {"a": 2, "epochs": 3}]  # type: ignore[union-attr]
    trial = Trial(0, suggestions[0].config)  # type: ignore[union-attr, arg-type]
    assert scheduler.on_result(trial, {"loss": 1e9}) == C
    state = scheduler.state_dict()
    assert scheduler.suggest(2) is None and scheduler.state_dict() == state


def test_method_registry_builds_the_builtins() -> None:
    assert method_names()[:5] == ["RS", "Grid", "ASHA", "ASHA-promotion", "HB"]
    lines = describe_methods()
    assert lines[0].startswith("RS: Random search") and "multi-fidelity" not in lines[0]
    assert lines[1].endswith("[n_points=5, shuffle=False]")
    assert lines[2].startswith("ASHA: ") and lines[2].endswith("[asynchronous; grace_period=1, reduction_factor=3]")
    assert METHODS["HB"].defaults["brackets"] == "all" and METHODS["HB"].multi_fidelity
    common = {"metric": "loss", "mode": "min", "resource_attr": "epoch", "max_t": 27}
    assert isinstance(make_scheduler("RS", SPACE, **common), FIFOScheduler)
    assert isinstance(make_scheduler("grid", SPACE, **common).searcher, GridSearcher)  # type: ignore[attr-defined]
    asha = make_scheduler("asha", SPACE, **common)
    assert isinstance(asha, ASHA) and asha.type == "stopping" and asha.brackets == 1
    promotion = make_scheduler("ASHA-promotion", SPACE, **common, reduction_factor=2)
    assert isinstance(promotion, ASHA) and promotion.type == "promotion" and promotion.rung_levels == [1, 2, 4, 8, 16]
    hb = make_scheduler("HB", SPACE, **common)
    assert isinstance(hb, ASHA) and hb.brackets == 4


def test_make_scheduler_max_t_from_space_constant() -> None:
    scheduler = make_scheduler("ASHA", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    assert scheduler.max_t == 27 and scheduler.max_resource_attr == "epochs"  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="--max-resource"):
        make_scheduler("ASHA", SPACE, metric="loss", resource_attr="epoch", max_resource_attr="x")


def test_make_scheduler_errors() -> None:
    with pytest.raises(UserError, match="unknown method 'XYZ'; known methods: RS, Grid, ASHA, ASHA-promotion, HB"):
        make_scheduler("XYZ", SPACE, metric="loss")
    with pytest.raises(UserError, match="--resource-attr"):
        make_scheduler("ASHA", SPACE, metric="loss", max_t=27)
    with pytest.raises(UserError, match="--max-resource"):
        make_scheduler("HB", SPACE, metric="loss", resource_attr="epoch")
    with pytest.raises(UserError, match="does not take option.*reduction_factor"):
        make_scheduler("RS", SPACE, metric="loss", reduction_factor=3)
    with pytest.raises(UserError, match="grace_period"):
        make_scheduler("ASHA", SPACE, metric="loss", resource_attr="epoch", max_t=27, grace_period=0)


def test_method_context_gives_a_multi_fidelity_factory_its_resource_and_max_t() -> None:
    assert MethodContext(SPACE, "loss", resource_attr="epoch", max_t=27).resource_and_max_t() == ("epoch", 27)
    # a multi-fidelity factory called without make_scheduler's checks: a ValueError naming what is missing
    with pytest.raises(ValueError, match="resource_attr=None, max_t=27"):
        METHODS["ASHA"].build(MethodContext(SPACE, "loss", max_t=27), {})
    with pytest.raises(ValueError, match="resource_attr='epoch', max_t=None"):
        METHODS["SyncHB"].build(MethodContext(SPACE, "loss", resource_attr="epoch"), {})


def test_register_method() -> None:
    def factory(config_space: dict[str, Any], **kwargs: Any) -> FIFOScheduler:
        return FIFOScheduler(RandomSearcher(config_space, kwargs["metric"], kwargs["mode"], seed=kwargs["seed"]))

    register_method("MyRS", factory, "my random search", {"flavour": 1})
    try:
        assert "MyRS" in method_names()
        assert isinstance(make_scheduler("myrs", SPACE, metric="loss", flavour=2), FIFOScheduler)
        with pytest.raises(ValueError, match="already registered"):
            register_method("myRS", factory, "again")
        register_method("myRS", factory, "replaced", replace=True)
        assert METHODS["myRS"].description == "replaced"
    finally:
        METHODS.pop("MyRS", None)
        METHODS.pop("myRS", None)


def test_nan_counts_as_worst_in_mode_max() -> None:
    scheduler = make_asha(mode="max")
    t = start(scheduler, 2)
    assert report(scheduler, t[0], 1, 0.1) == C
    assert report(scheduler, t[1], 1, float("nan")) == S


def test_method_groups_sort_methods_by_family():
    from tunebench.schedulers import METHODS, method_groups

    groups = method_groups()
    assert {"RS", "BO"} <= set(groups["single-fidelity"])
    assert {"ASHA", "MOBSTER"} <= set(groups["asynchronous"])
    assert {"SyncHB", "DEHB"} <= set(groups["synchronous"])
    assert groups["all"] == list(METHODS)
    for name, spec in METHODS.items():  # every method in exactly one family
        assert sum(name in groups[g] for g in ("single-fidelity", "asynchronous", "synchronous")) == 1
        assert (spec.group == "single-fidelity") == (not spec.multi_fidelity)
