"""Several metrics at the method registry (issue 15, part 1): ``make_scheduler`` takes a list of
metrics and modes (:class:`tunebench.types.Objectives`); a method that optimizes one metric
refuses several with one line naming the fix; a method registered ``multi_objective=True`` gets
them all in its context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tunebench.errors import UserError
from tunebench.schedulers import make_scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.registry import METHODS, MethodContext, method, method_names, register_method
from tunebench.searchers.random import RandomSearcher
from tunebench.space import uniform
from tunebench.types import Objectives, Trial

SPACE = {"x": uniform(0.0, 1.0), "epochs": 9}


@pytest.mark.parametrize("name", method_names())
def test_a_single_objective_method_refuses_several_metrics_naming_the_fix(name: str):
    with pytest.raises(UserError) as refused:
        make_scheduler(name, SPACE, metric=["val_accuracy", "time"], mode=["max", "min"], resource_attr="epoch",
                       max_resource_attr="epochs")
    message = str(refused.value)
    assert f"method {METHODS[name].name!r} optimizes one metric, got 2 (val_accuracy, time)" in message
    assert "give one --metric" in message


@pytest.fixture
def registered() -> Iterator[dict[str, Any]]:
    """A multi-objective method of this test's own (random search that keeps its context), and
    it unregistered afterwards."""
    seen: dict[str, Any] = {}

    @method("TestMultiRS", "random search recording its objectives", multi_objective=True)
    def _factory(ctx: MethodContext) -> FIFOScheduler:
        seen["ctx"] = ctx
        return FIFOScheduler(RandomSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed))

    try:
        yield seen
    finally:
        METHODS.pop("TestMultiRS", None)


def test_a_multi_objective_method_gets_every_metric_and_the_others_name_it(registered: dict[str, Any]):
    scheduler = make_scheduler("testmultirs", SPACE, metric=["val_accuracy", "time"], mode=["max", "min"])
    ctx = registered["ctx"]
    assert ctx.objectives == Objectives(("val_accuracy", "time"), ("max", "min"))
    assert (ctx.metric, ctx.mode) == ("val_accuracy", "max")  # the first, for what reads one metric
    assert scheduler.suggest(0) is not None
    # one mode for all metrics
    make_scheduler("TestMultiRS", SPACE, metric=("a", "b", "c"), mode="min")
    assert registered["ctx"].objectives.modes == ("min", "min", "min")
    with pytest.raises(UserError, match=r"use a multi-objective method \(.*TestMultiRS"):
        make_scheduler("RS", SPACE, metric=["a", "b"])


def test_one_metric_in_a_list_is_the_same_as_the_name():
    by_name = make_scheduler("ASHA", SPACE, metric="loss", mode="min", resource_attr="epoch",
                             max_resource_attr="epochs", seed=3)
    by_list = make_scheduler("ASHA", SPACE, metric=["loss"], mode=["min"], resource_attr="epoch",
                             max_resource_attr="epochs", seed=3)
    decisions = []
    for scheduler in (by_name, by_list):
        got = []
        for tid in range(6):
            suggestion = scheduler.suggest(tid)
            assert suggestion is not None
            trial = Trial(tid, suggestion.config)
            got.append((suggestion.config, scheduler.on_result(trial, {"epoch": 1, "loss": suggestion.config["x"]})))
        decisions.append(got)
    assert decisions[0] == decisions[1]


@pytest.mark.parametrize("metric, mode, fragment", [
    (["a", "b"], ["max", "min", "min"], "2 metrics (a, b) but 3 modes"),
    (["a", "a"], "min", "metric 'a' is given twice"),
    ([], "min", "no metric given"),
    (["a"], "best", "mode 'best' of metric 'a' is not 'min' or 'max'"),
])
def test_bad_metric_lists_are_one_line_errors(metric: Any, mode: Any, fragment: str):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        make_scheduler("RS", SPACE, metric=metric, mode=mode)


def test_a_multi_objective_factory_must_take_the_context():
    def plain(config_space, *, metric, mode, resource_attr, max_resource_attr, max_t, seed):
        return FIFOScheduler(RandomSearcher(config_space, metric, mode, seed=seed))

    with pytest.raises(ValueError, match="must take a MethodContext"):
        register_method("TestPlainMO", plain, "plain", multi_objective=True)
    assert "TestPlainMO" not in METHODS
