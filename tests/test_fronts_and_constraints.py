"""Pareto fronts and constraints in every view (issue 15, parts 3 and 5): ``--constraint``
parsing, the tuner's and the store's best counting only feasible results, ``show`` / ``show
--json`` listing the front with its hypervolume, ``load_experiment(p).pareto_front()``,
``TuningResult.pareto_front``, and constraints through ``tune``'s and ``AskTell``'s paths.

The fronts are checked against a brute-force dominance test written here, independent of
:mod:`tunebench.pareto`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench import AskTell, load_experiment
from tunebench.cli import main
from tunebench.errors import UserError
from tunebench.pareto import hypervolume
from tunebench.space import uniform
from tunebench.types import Constraint, is_feasible, parse_constraints

# -- Constraint ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, metric, op, bound", [
    ("latency<=20", "latency", "<=", 20.0),
    (" val_accuracy >= 0.9 ", "val_accuracy", ">=", 0.9),
    ("t<5", "t", "<=", 5.0),
    ("x>-1e-3", "x", ">=", -0.001),
])
def test_a_constraint_reads_from_its_text_and_back(text: str, metric: str, op: str, bound: float):
    c = Constraint.parse(text)
    assert (c.metric, c.op, c.bound) == (metric, op, bound)
    assert Constraint.parse(c.to_json()) == c


@pytest.mark.parametrize("text, fragment", [
    ("latency=20", "write it as NAME<=BOUND"),
    ("latency<=fast", "the bound 'fast' is not a finite number"),
    ("<=3", "needs the name of a reported metric"),
    ("latency<=inf", "not a finite number"),
    ("a<=b<=c", "cannot read the constraint"),
    ("a=<3", "cannot read the constraint"),
])
def test_a_bad_constraint_is_a_one_line_error_naming_the_form(text: str, fragment: str):
    with pytest.raises(UserError, match=fragment) as refused:
        Constraint.parse(text)
    assert "\n" not in str(refused.value)


def test_slack_feasibility_and_a_missing_metric():
    at_most, at_least = Constraint.parse("latency<=20"), Constraint.parse("acc>=0.9")
    assert at_most.slack({"latency": 25.0}) == 5.0 and not at_most.is_met({"latency": 25.0})
    assert at_most.slack({"latency": 20.0}) == 0.0 and at_most.is_met({"latency": 20.0})
    assert at_least.slack({"acc": 0.95}) == pytest.approx(-0.05) and at_least.is_met({"acc": 0.95})
    assert at_least.slack({"acc": float("nan")}) == float("inf")  # a diverged trial is infeasible
    assert is_feasible({"latency": 3, "acc": 0.91}, [at_most, at_least])
    assert not is_feasible({"latency": 3, "acc": 0.5}, [at_most, at_least])
    assert is_feasible({}, [])
    with pytest.raises(UserError, match="no metric 'latency'"):
        at_most.slack({"acc": 1.0}, trial_id=3)
    with pytest.raises(UserError, match="two constraints 'latency <= ...'"):
        parse_constraints(["latency<=20", "latency<=30"])
    assert parse_constraints(["latency<=20", "latency>=1"])[1].op == ">="


# -- fronts ------------------------------------------------------------------------------------


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def _brute_front(results: Any, metrics: list[str], signs: list[float]) -> set[int]:
    """Trial ids of the non-dominated last results (of the trials at the maximum epoch when any got there)."""
    last = results.groupby("trial_id").tail(1)
    if (last["epoch"] == 27).any():
        last = last[last["epoch"] == 27]
    Y = last[metrics].to_numpy(float) * np.array(signs)
    ids = last["trial_id"].to_numpy()
    return {int(ids[i]) for i in range(len(Y)) if not any(_dominates(Y[j], Y[i]) for j in range(len(Y)) if j != i)}


@pytest.fixture(scope="module")
def zdt1_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    exp = tmp_path_factory.mktemp("fronts") / "exp"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["run", "--benchmark", "zdt1", "--method", "RS", "--metric", "f1", "--max-trials", "1",
                       "--experiment-dir", str(exp / "probe"), "--no-progress"])
    assert status == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["run", "--benchmark", "zdt1", "--method", "MOASHA", "--metric", "f1", "f2", "--mode", "min",
                       "max", "--max-trials", "80", "--experiment-dir", str(exp / "mo"), "--no-progress"])
    assert status == 0
    return exp / "mo", out.getvalue()


def test_the_front_of_an_experiment_is_its_non_dominated_trials_at_the_maximum_resource(zdt1_run):
    path, _ = zdt1_run
    exp = load_experiment(path)
    front = exp.pareto_front()
    expected = _brute_front(exp.results, ["f1", "f2"], [1.0, -1.0])  # f2 is maximized in this run
    assert set(front["trial_id"]) == expected and len(expected) >= 2
    assert list(front["f1"]) == sorted(front["f1"])  # best first in the first objective
    assert (front["epoch"] == 27).all()
    assert {"status", "config_x1", "config_epochs"} <= set(front.columns)


def test_show_json_gives_the_front_and_its_hypervolume_with_the_reference_point(zdt1_run, capsys):
    path, _ = zdt1_run
    assert main(["show", "--json", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["objectives"] == {"metric": ["f1", "f2"], "mode": ["min", "max"]}
    front = summary["pareto_front"]
    exp = load_experiment(path)
    assert [m["trial_id"] for m in front] == list(exp.pareto_front()["trial_id"])
    Y = np.array([[m["values"]["f1"], -m["values"]["f2"]] for m in front])
    ref = summary["reference_point"]
    # the reference point is in the metrics' units: every front member is better in each metric
    assert all(m["values"]["f1"] < ref[0] and m["values"]["f2"] > ref[1] for m in front)
    assert summary["hypervolume"] == pytest.approx(hypervolume(Y, [ref[0], -ref[1]]))
    # in two dimensions, the dominated area is a sum of rectangles (sorted by f1)
    order = np.argsort(Y[:, 0])
    Ys = Y[order]
    area = sum((ref[0] - Ys[i, 0]) * ((Ys[i - 1, 1] if i else -ref[1]) - Ys[i, 1]) for i in range(len(Ys)))
    assert summary["hypervolume"] == pytest.approx(area)
    # a reference point of one's own
    hv, point = exp.hypervolume([1.0, -10.0])
    assert point == [1.0, -10.0] and hv == pytest.approx(hypervolume(Y, [1.0, 10.0]))


def test_run_and_show_print_the_front(zdt1_run, capsys):
    path, printed = zdt1_run
    exp = load_experiment(path)
    ids = list(exp.pareto_front()["trial_id"])
    assert f"Pareto front (f1 (min), f2 (max)): {len(ids)} trials, hypervolume" in printed
    assert main(["show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "metrics f1 (min), f2 (max)" in shown and "Pareto front" in shown
    rows = [line.split()[0] for line in shown.splitlines()[shown.splitlines().index(
        next(x for x in shown.splitlines() if "trial  f1" in x)) + 1:] if line.strip()]
    assert [int(r) for r in rows[:len(ids)]] == ids


# -- constraints through the tuner, the store and the views ------------------------------------


def _run_constrained(tmp_path: Path, method: str, *more: str) -> tuple[int, Path, str]:
    import contextlib
    import io

    exp = tmp_path / method
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["run", "--benchmark", "zdt1", "--method", method, "--metric", "f1", "--max-trials", "40",
                       "--experiment-dir", str(exp), "--no-progress", *more])
    return status, exp, out.getvalue()


def test_the_best_counts_only_feasible_results(tmp_path: Path, capsys):
    # f1 = x1 at every epoch; x2 decides f2 (through g): bound f2 so that some configs are feasible
    status, free, _ = _run_constrained(tmp_path / "free", "RS")
    assert status == 0
    results = load_experiment(free).results
    # (RS draws the same configs with or without constraints) every result of the trial with the best f1 is
    # infeasible, and about half of the others' final ones
    top = results.loc[results["f1"].idxmin(), "trial_id"]
    bound = min(float(results.groupby("trial_id").tail(1)["f2"].median()),
                float(results[results["trial_id"] == top]["f2"].min()) - 1e-9)
    status, path, printed = _run_constrained(tmp_path, "RS", "--constraint", f"f2<={bound}")
    assert status == 0
    exp = load_experiment(path)
    assert exp.metadata["constraints"] == [f"f2<={bound!r}"]
    assert exp.metadata["run_spec"]["constraints"] == [f"f2<={bound!r}"]
    res = exp.results
    feasible = res[res["f2"] <= bound]
    assert 0 < len(feasible) < len(res)
    best = exp.best_trial()
    # the best among the trials with a feasible result at the maximum epoch, over their feasible results
    full = feasible[feasible["trial_id"].isin(feasible[feasible["epoch"] == 27]["trial_id"])]
    assert best is not None and best.value == pytest.approx(full["f1"].min())
    assert best.value > res["f1"].min()  # an infeasible result was better: it does not count
    summary = exp.summary()
    assert summary["best_metric"] == best.value and summary["constraints"] == [f"f2<={bound!r}"]
    table = exp.trial_table()
    last = res.groupby("trial_id").tail(1).set_index("trial_id")["f2"]
    assert {r["trial_id"]: r["feasible"] for r in table} == {int(t): bool(v <= bound) for t, v in last.items()}
    assert summary["n_infeasible"] == int((last > bound).sum()) > 0
    assert f"best f1 (min): {best.value:.6g}" in printed
    assert main(["show", str(path)]) == 0
    assert f"constraints: f2<={bound!r} ({summary['n_infeasible']} trials ended infeasible)" in capsys.readouterr().out


def test_no_feasible_result_is_said_as_such(tmp_path: Path):
    status, path, printed = _run_constrained(tmp_path, "RS", "--constraint", "f2<=-1")
    assert status == 0
    assert "no result met the constraints (f2<=-1.0): 40 trials ended infeasible" in printed
    assert load_experiment(path).best_trial() is None


def test_a_constraint_on_a_metric_not_reported_fails_the_trials_naming_it(tmp_path: Path, capsys):
    status, path, _ = _run_constrained(tmp_path, "RS", "--constraint", "latency<=3", "--max-failures", "2")
    assert status == 1
    caught = capsys.readouterr()
    assert "without the metric 'latency'" in caught.err + caught.out


def test_a_bad_constraint_on_the_command_line_is_exit_2(tmp_path: Path, capsys):
    status, path, _ = _run_constrained(tmp_path, "RS", "--constraint", "f2==3")
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tunebench: error: cannot read the constraint 'f2==3'")
    assert not path.exists()


def test_constraints_survive_a_resume(tmp_path: Path):
    status, path, _ = _run_constrained(tmp_path, "RS", "--constraint", "f2<=3")
    assert status == 0
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["resume", str(path), "--max-trials", "60", "--no-progress"]) == 0
    exp = load_experiment(path)
    assert exp.metadata["constraints"] == ["f2<=3.0"]
    best = exp.best_trial()
    res = exp.results
    feasible = res[res["f2"] <= 3]
    full = feasible[feasible["trial_id"].isin(feasible[feasible["epoch"] == 27]["trial_id"])]
    assert best is not None and best.value == pytest.approx(full["f1"].min())


def test_ask_tell_with_a_constraint_counts_feasible_results_and_loads_it_back(tmp_path: Path):
    space = {"x": uniform(0.0, 1.0)}
    at = AskTell("RS", space, metric="loss", constraints=["size<=0.5"], experiment_dir=tmp_path / "at")
    for _ in range(12):
        asked = at.ask()
        assert asked is not None
        x = asked.config["x"]
        at.tell(asked.trial_id, {"loss": x, "size": 1.0 - x})  # small loss: large size
        at.complete(asked.trial_id)
    best = at.best
    xs = [info.config["x"] for info in at.trials.values()]
    assert best is not None and best.value == pytest.approx(min(x for x in xs if 1.0 - x <= 0.5))
    with pytest.raises(UserError, match="without the metric 'size'"):
        asked = at.ask()
        assert asked is not None
        at.tell(asked.trial_id, {"loss": 0.1})
    at.close()
    again = AskTell.load(tmp_path / "at")
    assert again.best is not None and again.best.value == best.value
    again.close()
    assert load_experiment(tmp_path / "at").metadata["constraints"] == ["size<=0.5"]


def test_ask_tell_gives_its_pareto_front_by_the_same_rule_as_the_store(tmp_path: Path):
    space = {"x": uniform(0.0, 1.0), "epochs": 3}
    at = AskTell("MOASHA", space, metric=["loss", "size"], mode=["min", "min"], resource_attr="epoch",
                 max_resource_attr="epochs", experiment_dir=tmp_path / "mo", constraints=["size<=0.9"])
    for _ in range(30):
        asked = at.ask()
        assert asked is not None
        x = asked.config["x"]
        for epoch in range(1, 4):
            decision = at.tell(asked.trial_id, {"epoch": epoch, "loss": (x - 0.2) ** 2 + 1 / epoch, "size": x})
            if decision.value != "CONTINUE":
                break
        else:
            at.complete(asked.trial_id)
    front = at.pareto_front()
    at.close()
    stored = load_experiment(tmp_path / "mo").pareto_front()
    assert [t.trial_id for t in front] == list(stored["trial_id"]) and len(front) >= 2
    # feasible, at the maximum epoch, and trading loss for size: sorted by loss, sizes go down
    assert all(t.last_result["size"] <= 0.9 and t.last_result["epoch"] == 3 for t in front)
    sizes = [t.last_result["size"] for t in front]
    assert sizes == sorted(sizes, reverse=True)
