"""YAHPO Gym scenarios other than lcbench, on small scenarios generated in YAHPO's data layout
(tunebench.testing.yahpo_data; the real lcbench data in $TUNEBENCH_DATA is covered by
tests/test_yahpo.py): nb301's batch-1 model, rbv2_super's conditions and how inactive parameters
reach the surrogate, trainsize levels and the pinned repl, the cumulative elapsed time, ConfigSpace
OR conditions and forbidden clauses, data that does not match, the yahpo- benchmarks through the
CLI, a Blackbox given directly to a SimulatedBenchmark, the maximum-resource key, several tasks of
the yahpo family."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import onnxruntime as ort  # noqa: E402

from tunebench.benchmarks import SimulatedBenchmark  # noqa: E402
from tunebench.blackboxes.configspace_json import space_from_configspace_json  # noqa: E402
from tunebench.blackboxes.registry import load_blackboxes  # noqa: E402
from tunebench.blackboxes.yahpo import ELAPSED_TIME, MIN_LEVEL_TIME, SCENARIOS, YahpoBlackbox  # noqa: E402
from tunebench.cli import main  # noqa: E402
from tunebench.errors import UserError  # noqa: E402
from tunebench.space import sample_configs  # noqa: E402
from tunebench.space.conditions import Clause  # noqa: E402
from tunebench.store import load_experiment  # noqa: E402
from tunebench.testing.blackbox_contract import check_blackbox_contract, check_pieces  # noqa: E402
from tunebench.testing.yahpo_data import (  # noqa: E402
    TASKS,
    nb301_space,
    rbv2_super_space,
    rbv2_svm_space,
    write_scenario,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark data folder with generated rbv2_svm, rbv2_super and (batch-1) nb301 scenarios."""
    root = tmp_path_factory.mktemp("yahpo-data")
    write_scenario(root, "rbv2_svm", rbv2_svm_space())
    write_scenario(root, "rbv2_super", rbv2_super_space(), seed=1)
    write_scenario(root, "nb301", nb301_space(), batch_size=1, seed=2)
    return root


@pytest.fixture(scope="module")
def nb301(data: Path) -> YahpoBlackbox:
    return YahpoBlackbox("nb301", "CIFAR10", data_dir=data)


@pytest.fixture(scope="module")
def super_bb(data: Path) -> YahpoBlackbox:
    return YahpoBlackbox("rbv2_super", "1040", data_dir=data)


@pytest.fixture
def registry():
    """The benchmark registry as it was before the test (yahpo- names are discovered into it)."""
    from tunebench.benchmarks import registry as bm

    saved = dict(bm._REGISTRY)
    yield bm
    bm._REGISTRY.clear()
    bm._REGISTRY.update(saved)


def scenario_copy(data: Path, tmp_path: Path, scenario: str) -> Path:
    """A data folder holding a copy of ``scenario`` only (to damage in a test)."""
    shutil.copytree(data / "yahpo" / scenario, tmp_path / "yahpo" / scenario)
    return tmp_path


def one_line_error(call: Any, *parts: str) -> str:
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message
    return message


# -- the surrogate's input, built by hand as YAHPO's objective_function builds it ------------------------------------

def json_condition_holds(entry: dict[str, Any], config: dict[str, Any]) -> bool:
    """A ConfigSpace JSON condition evaluated by hand (an absent parent: false)."""
    kind = entry["type"]
    if kind == "AND":
        return all(json_condition_holds(m, config) for m in entry["conditions"])
    if kind == "OR":
        return any(json_condition_holds(m, config) for m in entry["conditions"])
    if entry["parent"] not in config:
        return False
    value = config[entry["parent"]]
    return value in entry["values"] if kind == "IN" else value == entry["value"]


def hand_rows(scenario: str, data: Path, config: dict[str, Any], instance: str,
              fidelities: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(x_cat, x_cont)`` of one config at the model's fidelity values ``fidelities``: every
    input in the scenario's order, an absent (inactive) categorical as the code of ``#na#``, an
    absent numeric as 0, the instance's code, repl at 10."""
    facts = SCENARIOS[scenario]
    encoding = json.loads((data / "yahpo" / scenario / "encoding.json").read_text())
    fixed = {facts.instance_param: instance, "repl": 10}
    cat, cont = [], []
    for fid in fidelities:
        row = {**config, **fixed, facts.fidelity: fid}
        cat.append([encoding[n][str(row[n])] if n in row else encoding[n]["#na#"] for n in facts.cat_names])
        cont.append([float(row.get(n, 0.0)) for n in facts.cont_names])
    return np.array(cat, dtype=np.int32), np.array(cont, dtype=np.float32)


def run_model(data: Path, scenario: str, x_cat: np.ndarray, x_cont: np.ndarray) -> np.ndarray:
    """The ONNX model run directly, one row at a time (works for a fixed and a free batch)."""
    session = ort.InferenceSession(str(data / "yahpo" / scenario / "model.onnx"), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"x_cat": x_cat[i:i + 1], "x_cont": x_cont[i:i + 1]})[0]
                           for i in range(len(x_cat))])


# -- nb301: a model with a fixed batch of 1 ---------------------------------------------------------------------------

def test_nb301_batch1_model_refuses_more_rows_and_the_blackbox_feeds_one_at_a_time(data: Path,
                                                                                     nb301: YahpoBlackbox) -> None:
    session = ort.InferenceSession(str(data / "yahpo" / "nb301" / "model.onnx"), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="dimensions"):  # the generated model is batch-1 like nb301's real one
        session.run(None, {"x_cat": np.ones((2, 34), np.int32), "x_cont": np.ones((2, 1), np.float32)})
    assert nb301.batch_size == 1
    assert list(nb301.fidelity_values) == list(range(1, 99))
    assert "dataset" not in nb301.config_space and len(nb301.config_space) == 34

    configs = sample_configs(nb301.config_space, np.random.default_rng(0), 40)
    values = nb301.evaluate(configs)  # 40 x 98 rows, one ONNX run each
    assert values.shape == (40, 98, 2) and np.all(np.isfinite(values))
    single = np.stack([nb301.evaluate([c])[0] for c in configs[:3]])
    np.testing.assert_array_equal(values[:3], single)
    # the first config by hand, straight through onnxruntime: accuracy as predicted, runtime clipped and monotone
    x_cat, x_cont = hand_rows("nb301", data, configs[0], "CIFAR10", list(range(1, 99)))
    raw = run_model(data, "nb301", x_cat, x_cont)
    np.testing.assert_allclose(values[0, :, 0], raw[:, 0], rtol=1e-6)
    np.testing.assert_allclose(values[0, :, 1], np.maximum.accumulate(np.maximum(raw[:, 1], 0.0)), rtol=1e-6)


def test_nb301_with_a_free_batch_gives_the_same_values(tmp_path: Path, nb301: YahpoBlackbox) -> None:
    free = YahpoBlackbox("nb301", "CIFAR10", data_dir=write_scenario(tmp_path, "nb301", nb301_space(), seed=2))
    assert free.batch_size is None
    configs = sample_configs(nb301.config_space, np.random.default_rng(1), 7)  # 686 rows: pads nothing, one run
    np.testing.assert_allclose(free.evaluate(configs), nb301.evaluate(configs), rtol=1e-6)


def test_nb301_conditions_are_the_inputs_nodes_memberships(nb301: YahpoBlackbox) -> None:
    edge = "NetworkSelectorDatasetInfo_COLON_darts_COLON_edge_normal_2"
    (clause,) = nb301.config_space[edge].condition.clauses
    assert clause.name == "NetworkSelectorDatasetInfo_COLON_darts_COLON_inputs_node_normal_3"
    assert clause.op == "in" and clause.operand == ("0_1",)


# -- rbv2_super: 38 hyperparameters and conditions ---------------------------------------------------------------------

def test_rbv2_super_samples_hold_exactly_the_active_parameters(super_bb: YahpoBlackbox) -> None:
    spec = rbv2_super_space()
    conditions = {c["child"]: c for c in spec["conditions"]}
    assert len(super_bb.config_space) == 38
    assert set(super_bb.config_space) == {hp["name"] for hp in spec["hyperparameters"]} - {"task_id", "trainsize",
                                                                                           "repl"}
    configs = sample_configs(super_bb.config_space, np.random.default_rng(0), 300)
    seen: set[str] = set()
    for config in configs:
        for name in super_bb.config_space:
            expected = name not in conditions or json_condition_holds(conditions[name], config)
            assert (name in config) == expected, (name, config)
        seen.update(config)
    assert seen == set(super_bb.config_space)  # every parameter active somewhere
    assert {c["learner_id"] for c in configs} == {"aknn", "glmnet", "ranger", "rpart", "svm", "xgboost"}


def test_rbv2_super_inputs_match_a_hand_built_row(data: Path, super_bb: YahpoBlackbox) -> None:
    configs = sample_configs(super_bb.config_space, np.random.default_rng(3), 24)
    values = super_bb.evaluate(configs)
    n_targets = len(SCENARIOS["rbv2_super"].targets)
    for i, config in enumerate(configs):
        # trainsize level k is 0.05 k; repl pinned at 10; inactive: #na# (code 0) and 0.0
        x_cat, x_cont = hand_rows("rbv2_super", data, config, "1040", [0.05 * k for k in range(1, 21)])
        np.testing.assert_allclose(values[i, :, :n_targets], run_model(data, "rbv2_super", x_cat, x_cont),
                                   rtol=1e-5, err_msg=str(config))
    assert {"svm", "xgboost"} <= {c["learner_id"] for c in configs}


def test_an_inactive_value_in_a_config_is_not_fed_to_the_surrogate(super_bb: YahpoBlackbox) -> None:
    config = {"learner_id": "glmnet", "glmnet.alpha": 0.5, "glmnet.s": 0.1, "num.impute.selected.cpo": "impute.hist"}
    with_inactive = {**config, "svm.cost": 0.3, "svm.kernel": "radial", "xgboost.booster": "dart"}
    np.testing.assert_array_equal(super_bb.evaluate([with_inactive]), super_bb.evaluate([config]))
    one_line_error(lambda: super_bb.evaluate([{k: v for k, v in config.items() if k != "glmnet.s"}]),
                   "lacks the hyperparameter 'glmnet.s'")


# -- fidelities and elapsed time ---------------------------------------------------------------------------------------

def test_trainsize_levels_and_pinned_repl(data: Path) -> None:
    bb = YahpoBlackbox("rbv2_svm", "11", data_dir=data)
    assert list(bb.fidelity_values) == list(range(1, 21)) and bb.fidelity_scale == 0.05
    assert bb.pinned == {"repl": 10}
    assert not {"trainsize", "repl", "task_id"} & set(bb.config_space)
    config = {"cost": 1.0, "kernel": "polynomial", "degree": 3, "tolerance": 0.01,
              "num.impute.selected.cpo": "impute.median"}
    x_cat, x_cont = bb._inputs([config], np.array([1.0, 7.0, 20.0]))
    cont = list(SCENARIOS["rbv2_svm"].cont_names)
    np.testing.assert_allclose(x_cont[:, cont.index("trainsize")], [0.05, 0.35, 1.0], rtol=1e-6)
    assert list(x_cont[:, cont.index("repl")]) == [10.0, 10.0, 10.0]
    assert list(x_cont[:, cont.index("gamma")]) == [0.0, 0.0, 0.0]  # inactive for a polynomial kernel
    encoding = json.loads((data / "yahpo" / "rbv2_svm" / "encoding.json").read_text())
    cat = list(SCENARIOS["rbv2_svm"].cat_names)
    assert list(x_cat[:, cat.index("task_id")]) == [encoding["task_id"]["11"]] * 3
    # the same rows by hand, through the model: levels 1, 7, 20 are trainsize 0.05, 0.35, 1
    hand_cat, hand_cont = hand_rows("rbv2_svm", data, config, "11", [0.05, 0.35, 1.0])
    np.testing.assert_allclose(bb.evaluate([config], fidelities=[1, 7, 20])[0, :, :9],
                               run_model(data, "rbv2_svm", hand_cat, hand_cont), rtol=1e-5)
    one_line_error(lambda: bb.evaluate([config], fidelities=[0.5]), "fidelity 0.5 is not available", "1..20")


def test_elapsed_time_is_cumulative_strictly_increasing_and_equal_in_pieces(super_bb: YahpoBlackbox) -> None:
    configs = sample_configs(super_bb.config_space, np.random.default_rng(5), 30)
    values = super_bb.evaluate(configs)
    timetrain = values[:, :, super_bb.objective_index("timetrain")]
    elapsed = values[:, :, super_bb.objective_index(ELAPSED_TIME)]
    assert super_bb.elapsed_time_attr == ELAPSED_TIME
    np.testing.assert_allclose(elapsed, np.cumsum(np.maximum(timetrain, MIN_LEVEL_TIME), axis=1))
    assert np.all(np.diff(elapsed, axis=1) > 0) and np.all(elapsed > 0)
    # a level's elapsed time does not depend on the levels asked for with it
    np.testing.assert_allclose(super_bb.evaluate(configs, fidelities=[4, 20]), values[:, [3, 19]])
    check_pieces(lambda: super_bb)


@pytest.mark.parametrize("scenario", ["rbv2_super", "nb301"])
def test_generated_scenarios_pass_the_blackbox_contract(data: Path, scenario: str) -> None:
    instance = "CIFAR10" if scenario == "nb301" else "1049"
    check_blackbox_contract(lambda: YahpoBlackbox(scenario, instance, data_dir=data), n_configs=6)


# -- ConfigSpace JSON: OR, forbidden clauses ---------------------------------------------------------------------------

def test_an_or_on_one_parent_is_a_membership(tmp_path: Path) -> None:
    spec = rbv2_svm_space()
    spec["conditions"][0] = {"child": "degree", "type": "OR", "conditions": [
        {"child": "degree", "parent": "kernel", "type": "EQ", "value": "polynomial"},
        {"child": "degree", "parent": "kernel", "type": "IN", "values": ["radial", "polynomial"]}]}
    space = space_from_configspace_json(spec)
    assert space["degree"].condition.clauses == (Clause("kernel", "in", ("polynomial", "radial")),)
    bb = YahpoBlackbox("rbv2_svm", "1040", data_dir=write_scenario(tmp_path, "rbv2_svm", spec))
    configs = sample_configs(bb.config_space, np.random.default_rng(0), 60)
    assert all(("degree" in c) == (c["kernel"] != "linear") for c in configs)


def test_an_or_that_is_no_membership_and_forbidden_clauses_are_refused(tmp_path: Path) -> None:
    spec = rbv2_svm_space()
    spec["conditions"][0] = {"child": "degree", "type": "OR", "conditions": [
        {"child": "degree", "parent": "kernel", "type": "EQ", "value": "polynomial"},
        {"child": "degree", "parent": "num.impute.selected.cpo", "type": "EQ", "value": "impute.mean"}]}
    one_line_error(lambda: space_from_configspace_json(spec, "rbv2_svm"), "rbv2_svm", "'degree'", "OR",
                   "kernel", "num.impute.selected.cpo")
    compare = copy.deepcopy(spec)
    compare["conditions"][0]["conditions"][1] = {"child": "degree", "parent": "kernel", "type": "NEQ",
                                                 "value": "linear"}
    one_line_error(lambda: space_from_configspace_json(compare), "'degree'", "OR")
    root = write_scenario(tmp_path, "rbv2_svm", spec)
    one_line_error(lambda: YahpoBlackbox("rbv2_svm", "1040", data_dir=root), "rbv2_svm", "'degree'", "OR")

    forbidden = rbv2_svm_space()
    forbidden["forbiddens"] = [{"name": "kernel", "type": "EQUALS", "value": "linear"}]
    one_line_error(lambda: space_from_configspace_json(forbidden, "mine"), "mine: forbidden clauses")


# -- data that does not match ------------------------------------------------------------------------------------------

def test_a_config_space_without_an_input_is_a_one_line_error(data: Path, tmp_path: Path) -> None:
    root = scenario_copy(data, tmp_path, "rbv2_svm")
    path = root / "yahpo" / "rbv2_svm" / "config_space.json"
    spec = json.loads(path.read_text())
    spec["hyperparameters"] = [hp for hp in spec["hyperparameters"] if hp["name"] != "tolerance"]
    path.write_text(json.dumps(spec))
    one_line_error(lambda: YahpoBlackbox("rbv2_svm", "1040", data_dir=root), "rbv2_svm",
                   "only in the inputs ['tolerance']", "v1.0.2")


def test_an_encoding_without_a_categorical_is_a_one_line_error(data: Path, tmp_path: Path) -> None:
    root = scenario_copy(data, tmp_path, "rbv2_svm")
    path = root / "yahpo" / "rbv2_svm" / "encoding.json"
    encoding = json.loads(path.read_text())
    del encoding["kernel"]
    path.write_text(json.dumps(encoding))
    one_line_error(lambda: YahpoBlackbox("rbv2_svm", "1040", data_dir=root), "encoding.json has no codes",
                   "kernel")


def test_targets_that_differ_from_the_statistics_are_a_one_line_error(tmp_path: Path) -> None:
    root = write_scenario(tmp_path, "rbv2_svm", rbv2_svm_space())
    stats = root / "yahpo" / "global_statistics" / "instance_target_statistics.csv"
    stats.write_text(stats.read_text().replace("timepredict,", "predicttime,"))
    one_line_error(lambda: YahpoBlackbox("rbv2_svm", "1040", data_dir=root), "targets", "predicttime",
                   "instance_target_statistics.csv")


def test_a_fractional_fidelity_that_is_no_whole_number_of_steps_is_a_one_line_error(tmp_path: Path) -> None:
    spec = rbv2_svm_space()
    for hp in spec["hyperparameters"]:
        if hp["name"] == "trainsize":
            hp["upper"] = 0.97
    root = write_scenario(tmp_path, "rbv2_svm", spec)
    one_line_error(lambda: YahpoBlackbox("rbv2_svm", "1040", data_dir=root), "trainsize 0.05..0.97",
                   "whole number of steps")


def test_a_model_of_another_width_and_unknown_names_are_one_line_errors(data: Path, tmp_path: Path) -> None:
    root = scenario_copy(data, tmp_path, "rbv2_svm")
    shutil.copy(data / "yahpo" / "rbv2_super" / "model.onnx", root / "yahpo" / "rbv2_svm" / "model.onnx")
    one_line_error(lambda: YahpoBlackbox("rbv2_svm", "1040", data_dir=root), "columns", "v1.0.2")
    one_line_error(lambda: YahpoBlackbox("rbv2_svm", "999", data_dir=data), "no instance '999'", ", ".join(TASKS))
    one_line_error(lambda: YahpoBlackbox("rbv2_nope", "1", data_dir=data), "unsupported YAHPO scenario 'rbv2_nope'")
    one_line_error(lambda: YahpoBlackbox("rbv2_glmnet", "1040", data_dir=data), "rbv2_glmnet", "missing",
                   "nb301, rbv2_super, rbv2_svm")


# -- benchmarks, the simulator, the family ----------------------------------------------------------------------------

def test_yahpo_benchmarks_listed_and_run_through_the_cli(data: Path, tmp_path: Path, registry: Any,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("TUNEBENCH_DATA", str(data))
    assert main(["list", "--benchmarks"]) == 0
    listed = capsys.readouterr().out
    for scenario, instances in (("rbv2_svm", TASKS), ("rbv2_super", TASKS), ("nb301", ("CIFAR10",))):
        for instance in instances:
            assert f"yahpo-{scenario}-{instance}" in listed, listed
    assert "yahpo-rbv2_glmnet" not in listed  # no data, no benchmark

    exp_dir = tmp_path / "run"
    assert main(["run", "--benchmark", "yahpo-rbv2_svm-1049", "--method", "ASHA", "--max-wallclock-time", "900",
                 "--experiment-dir", str(exp_dir)]) == 0
    df = load_experiment(exp_dir).results
    assert len(df) > 20 and set(df["trainsize"]) <= set(range(1, 21)) and df["trainsize"].max() > 1
    polynomial = df["config_kernel"] == "polynomial"
    assert df.loc[polynomial, "config_degree"].notna().all() and df.loc[~polynomial, "config_degree"].isna().all()
    assert df["elapsed_time"].notna().all() and df["tuner_time"].max() <= 900 + 1e-6
    assert "config_epochs" not in df.columns  # the trial's maximum level is max_trainsize
    per_trial = df.groupby("trial_id")["elapsed_time"]
    assert per_trial.apply(lambda s: bool(np.all(np.diff(s.to_numpy()) > 0))).all()


class Recording(YahpoBlackbox):
    """Records every config its surrogate is asked about."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[dict[str, Any]] = []

    def _evaluate(self, configs, fidelity_index, seed):  # type: ignore[no-untyped-def]
        self.seen.extend(dict(c) for c in configs)
        return super()._evaluate(configs, fidelity_index, seed)


@pytest.mark.parametrize("max_resource_attr", [None, "max_trainsize"])
def test_a_blackbox_given_directly_runs_and_never_sees_the_max_resource_key(data: Path, tmp_path: Path,
                                                                           registry: Any,
                                                                           max_resource_attr: str | None) -> None:
    from tunebench.launch import build_tuner, spec_from_benchmark

    bb = Recording("rbv2_super", "11", data_dir=data)
    bench = SimulatedBenchmark(name="direct-super", blackbox=bb, task=None, metric="acc", mode="max",
                               resource_attr="trainsize", max_resource=20, max_wallclock_time=600.0,
                               max_resource_attr=max_resource_attr)
    assert bench.load_blackbox() is bb
    assert SimulatedBenchmark(name="made", blackbox=lambda: bb, task=None, metric="acc", mode="max").load_blackbox() \
        is bb
    registry.register_benchmark("direct-super", bench)
    spec = spec_from_benchmark("direct-super")
    assert spec.max_resource_attr == (max_resource_attr or "epochs") and spec.max_resource == 20
    result = build_tuner(spec, tmp_path / "exp", command_line=[]).run()
    assert result.n_results > 20 and len(bb.seen) >= result.n_trials
    key = spec.max_resource_attr
    assert all(key not in c and set(c) <= set(bb.config_space) for c in bb.seen)
    df = load_experiment(tmp_path / "exp").results
    assert (df[f"config_{key}"] == 20).all()  # the trial's config has it; the blackbox does not


def test_the_yahpo_family_loads_several_tasks(data: Path) -> None:
    loaded = load_blackboxes("yahpo", ["rbv2_svm-1040", "rbv2_svm-11", "nb301-CIFAR10", "rbv2_super/1049"],
                             data_dir=data)
    assert list(loaded) == ["rbv2_svm-1040", "rbv2_svm-11", "nb301-CIFAR10", "rbv2_super/1049"]
    assert [bb.name for bb in loaded.values()] == ["rbv2_svm-1040", "rbv2_svm-11", "nb301-CIFAR10",
                                                   "rbv2_super-1049"]
    config = {"cost": 1.0, "kernel": "linear", "tolerance": 0.1, "num.impute.selected.cpo": "impute.mean"}
    first, second = (loaded[t].evaluate([config]) for t in ("rbv2_svm-1040", "rbv2_svm-11"))
    assert not np.allclose(first, second)  # the instance is an input of the surrogate
    one_line_error(lambda: load_blackboxes("yahpo", ["rbv2_svm"], data_dir=data), "<scenario>-<instance>")
