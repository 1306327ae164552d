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


@pytest.mark.parametrize("name", [m for m in method_names() if not METHODS[m].multi_objective])
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
    with pytest.raises(UserError, match=r"use a multi-objective method \(RS, Grid, MOASHA, .*TestMultiRS"):
        make_scheduler("BO", SPACE, metric=["a", "b"])
    # random and grid search ignore the metrics: given several, they require each in every result
    for baseline in ("RS", "Grid"):
        assert make_scheduler(baseline, SPACE, metric=["a", "b"], mode=["min", "max"]).objectives == Objectives(
            ("a", "b"), ("min", "max"))


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


class _MultiFIFO(FIFOScheduler):
    """Random search that declares several objectives (the tuner checks each result carries them)."""

    def __init__(self, searcher: RandomSearcher, objectives: Objectives, **kwargs: Any) -> None:
        super().__init__(searcher, **kwargs)
        self._objectives = objectives

    @property
    def objectives(self) -> Objectives:
        return self._objectives


@pytest.fixture
def multi_rs() -> Iterator[str]:
    @method("TestMultiFIFO", "random search declaring every objective", multi_objective=True)
    def _factory(ctx: MethodContext) -> FIFOScheduler:
        assert ctx.objectives is not None
        return _MultiFIFO(RandomSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed), ctx.objectives,
                          resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr)

    try:
        yield "TestMultiFIFO"
    finally:
        METHODS.pop("TestMultiFIFO", None)


def test_the_tuner_records_every_objective_of_a_multi_objective_method(multi_rs: str, tmp_path):
    import json

    from tunebench.launch import build_tuner, spec_from_benchmark

    spec = spec_from_benchmark("zdt1")
    spec.method, spec.metric, spec.mode = multi_rs, ["f1", "f2"], "min"
    spec.max_trials, spec.max_wallclock_time = 12, None
    result = build_tuner(spec, tmp_path / "exp").run()
    assert result.n_trials == 12 and result.n_failed == 0
    meta = json.loads((tmp_path / "exp" / "metadata.json").read_text())
    assert meta["objectives"] == {"metric": ["f1", "f2"], "mode": ["min", "min"]}
    assert (meta["metric"], meta["mode"]) == ("f1", "min")
    from tunebench.store import load_experiment

    df = load_experiment(tmp_path / "exp").results
    assert {"f1", "f2"} <= set(df.columns) and df[["f1", "f2"]].notna().all().all()


def test_a_result_without_one_of_the_objectives_fails_its_trial_naming_it(multi_rs: str, tmp_path):
    from conftest import write_script

    from tunebench.backends.local import LocalBackend
    from tunebench.tuner import StopCriteria, Tuner

    script = write_script(tmp_path, """
        import sys
        from tunebench import report
        report(epoch=1, loss=0.5)  # no "size"
    """)
    scheduler = make_scheduler(multi_rs, {"x": uniform(0.0, 1.0)}, metric=["loss", "size"], mode="min")
    result = Tuner(LocalBackend(script=script, gpus=[]), scheduler, n_workers=1, stop=StopCriteria(max_trials=1),
                   experiment_dir=tmp_path / "exp", max_failures=1).run()
    assert result.n_failed == 1
    from tunebench.store import load_experiment

    (trial,) = load_experiment(tmp_path / "exp").trial_table()
    assert trial["status"] == "failed" and "without the metric 'size'" in trial["error"], trial["error"]


def test_ask_tell_with_several_metrics_checks_each_and_loads_them_back(multi_rs: str, tmp_path):
    from tunebench.ask_tell import AskTell

    space = {"x": uniform(0.0, 1.0)}
    at = AskTell(multi_rs, space, metric=["loss", "size"], mode=["min", "max"], experiment_dir=tmp_path / "exp")
    t = at.ask()
    assert t is not None
    with pytest.raises(UserError, match="without the metric 'size'"):
        at.tell(t.trial_id, {"loss": 0.3})
    assert at.tell(t.trial_id, {"loss": 0.3, "size": 2.0}) == "CONTINUE"
    at.complete(t.trial_id)
    at.close()
    import json

    meta = json.loads((tmp_path / "exp" / "metadata.json").read_text())
    assert meta["objectives"] == {"metric": ["loss", "size"], "mode": ["min", "max"]}
    assert (meta["metric"], meta["mode"]) == ("loss", "min")
    again = AskTell.load(tmp_path / "exp")
    assert again.scheduler.objectives == Objectives(("loss", "size"), ("min", "max"))
    again.close()
