"""YAHPO Gym blackboxes (lcbench surrogate). Need onnxruntime and the data folder ($TUNEBENCH_DATA/yahpo)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tunebench.blackboxes.yahpo import (
    LCBENCH_OBJECTIVE_MODES,
    YahpoBlackbox,
    lcbench_instances,
    resolve_data_dir,
)
from tunebench.errors import UserError
from tunebench.space import Float, Integer, sample_configs, space_to_json

# Checked without importing it: onnxruntime writes a file under ~/.cache when imported, which the
# tests keep in a temporary HOME (fixture `home`).
if importlib.util.find_spec("onnxruntime") is None:
    pytest.skip("onnxruntime is not installed (pip install 'tunebench[yahpo]')", allow_module_level=True)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TUNEBENCH_DATA") or REPO.parent / "shared" / "data")
LCBENCH_PARAMS = {"batch_size", "learning_rate", "max_dropout", "max_units", "momentum", "num_layers",
                  "weight_decay"}
OBJECTIVES = ("time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "test_cross_entropy",
              "test_balanced_accuracy")

REF_CONFIGS = [
    {"batch_size": 64, "learning_rate": 0.01, "max_dropout": 0.2, "max_units": 256, "momentum": 0.9,
     "num_layers": 3, "weight_decay": 0.001},
    {"batch_size": 16, "learning_rate": 0.0001, "max_dropout": 0.0, "max_units": 64, "momentum": 0.1,
     "num_layers": 1, "weight_decay": 1e-05},
    {"batch_size": 512, "learning_rate": 0.1, "max_dropout": 1.0, "max_units": 1024, "momentum": 0.99,
     "num_layers": 5, "weight_decay": 0.1},
    {"batch_size": 181, "learning_rate": 0.0023, "max_dropout": 0.55, "max_units": 97, "momentum": 0.42,
     "num_layers": 2, "weight_decay": 0.031},
]
# yahpo-gym 1.0.2 (numpy 1.26, onnxruntime 1.32): BenchmarkSet("lcbench", instance=...).objective_function
# of each config at epochs 1, 10, 52; columns in the order of OBJECTIVES
REF_VALUES = {
    "3945": [
        [20.7833328, 40.4073143, 0.683315516, 0.470651537, 0.653953493, 0.472262949],
        [49.1398888, 88.6944275, 0.490923047, 0.703849614, 0.466672659, 0.681078911],
        [155.768082, 90.6468658, 0.353664845, 0.71765101, 0.434974283, 0.689734519],
        [2.06116962, 42.6379471, 0.627317011, 0.475040972, 0.680630565, 0.451750904],
        [9.91064453, 74.6121597, 0.603660882, 0.63654983, 0.581272483, 0.633386433],
        [43.7544441, 79.0096283, 0.511199415, 0.692950666, 0.530791104, 0.682349324],
        [28.9591141, 35.8525391, 0.586464167, 0.526064157, 0.683598995, 0.514407456],
        [304.389374, 79.9748306, 0.517648578, 0.571349919, 0.672305226, 0.557162702],
        [1514.15112, 85.0302048, 0.651446879, 0.54194808, 0.669022202, 0.528661311],
        [7.4996047, 37.2328453, 0.625663638, 0.498868078, 0.690834284, 0.506776273],
        [51.5843964, 76.826149, 0.527892649, 0.685374081, 0.60483402, 0.678470254],
        [148.834778, 80.9360733, 0.430153459, 0.723298967, 0.559043169, 0.715730429],
    ],
    "189909": [
        [4.72042513, 29.7641544, 1.00975597, 0.35310328, 1.09833372, 0.366725594],
        [36.3414383, 76.0306625, 0.527053058, 0.799379945, 0.804518819, 0.80330956],
        [175.39386, 77.7915268, 0.447957456, 0.819995999, 0.795079172, 0.822350085],
        [1.71255195, 42.2086945, 0.862469554, 0.336345375, 1.12746692, 0.324153125],
        [16.6054993, 52.278286, 0.829142809, 0.42369324, 1.0599395, 0.422129989],
        [77.3528214, 58.3140793, 0.83578819, 0.514816761, 1.05244946, 0.512301326],
        [2.60919642, 25.970068, 0.935541451, 0.356831074, 1.08720577, 0.354052842],
        [92.3071213, 30.0330925, 0.92180872, 0.353493452, 1.09338224, 0.352992177],
        [877.607361, 33.3030701, 0.997691095, 0.327902228, 1.09349442, 0.325112253],
        [4.31323957, 35.2939377, 1.09146881, 0.345358819, 1.10277033, 0.348285317],
        [23.7019577, 63.9195442, 0.839362144, 0.644528866, 1.00034809, 0.652108967],
        [82.0229034, 64.2495728, 0.790572226, 0.652422428, 0.979010582, 0.656788647],
    ],
}


if not (DATA / "yahpo" / "lcbench" / "model.onnx").is_file():
    pytest.skip(f"YAHPO lcbench data is absent: no {DATA}/yahpo/lcbench/model.onnx "
                "(set TUNEBENCH_DATA to the folder holding yahpo/)", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def home(tmp_path_factory: pytest.TempPathFactory):
    """HOME and XDG_CACHE_HOME in a temporary folder: nothing of the tests lands in the real ones."""
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(path))
        mp.setenv("XDG_CACHE_HOME", str(path / ".cache"))
        yield path


@pytest.fixture(scope="module")
def bb(home: Path) -> YahpoBlackbox:
    return YahpoBlackbox("lcbench", "3945", data_dir=DATA)


@pytest.fixture(scope="module")
def configs(bb: YahpoBlackbox) -> list[dict]:
    return sample_configs(bb.config_space, np.random.default_rng(0), 100)


def test_lcbench_instances(bb: YahpoBlackbox) -> None:
    ids = lcbench_instances()
    assert len(ids) == 34 and len(set(ids)) == 34
    spec = json.loads((DATA / "yahpo" / "lcbench" / "config_space.json").read_text())
    task = next(h for h in spec["hyperparameters"] if h["name"] == "OpenML_task_id")
    assert ids == task["choices"]  # the data's list


def test_attributes_and_space(bb: YahpoBlackbox) -> None:
    assert bb.name == "lcbench-3945" and bb.instance == "3945"
    assert set(bb.config_space) == LCBENCH_PARAMS
    space = bb.config_space
    assert space["learning_rate"] == Float(1e-4, 0.1, log=True)
    assert space["batch_size"] == Integer(16, 512, log=True)
    assert space["max_units"] == Integer(64, 1024, log=True)
    assert space["num_layers"] == Integer(1, 5)
    assert space["momentum"] == Float(0.1, 0.99)
    json.dumps(space_to_json(space))
    assert bb.fidelity_name == "epoch"
    np.testing.assert_array_equal(bb.fidelity_values, np.arange(1, 53))
    assert bb.objectives == OBJECTIVES
    assert bb.elapsed_time_attr == "time"
    assert bb.modes == LCBENCH_OBJECTIVE_MODES
    assert bb.modes["val_accuracy"] == "max" and bb.n_seeds == 1
    assert "Zimmer" in bb.citation


def test_evaluate_shape_range_and_monotone_time(bb: YahpoBlackbox, configs: list[dict]) -> None:
    values = bb.evaluate(configs)
    assert values.shape == (100, 52, 6) and values.dtype == np.float64
    assert np.isfinite(values).all()
    time = values[:, :, bb.objective_index("time")]
    assert (time >= 0).all()
    assert (np.diff(time, axis=1) >= 0).all()
    acc = values[:, -1, bb.objective_index("val_accuracy")]
    assert 0 < acc.min() and acc.max() <= 101 and acc.std() > 1  # percent, and configs differ


@pytest.mark.parametrize("instance", sorted(REF_VALUES))
def test_matches_yahpo_gym(home: Path, instance: str) -> None:
    """Same outputs as YAHPO Gym's own objective_function (values computed with yahpo-gym 1.0.2)."""
    blackbox = YahpoBlackbox("lcbench", instance, data_dir=DATA)
    values = blackbox.evaluate(REF_CONFIGS, fidelities=[1, 10, 52])
    expected = np.array(REF_VALUES[instance]).reshape(len(REF_CONFIGS), 3, 6)
    np.testing.assert_allclose(values[:, :, 1:], expected[:, :, 1:], rtol=1e-5, atol=1e-6)
    # time: YAHPO's prediction made monotone along the epochs, so never below it
    assert (values[:, :, 0] >= expected[:, :, 0] * (1 - 1e-6)).all()
    np.testing.assert_allclose(values[:, 0, 0], expected[:, 0, 0], rtol=1e-5)  # epoch 1: nothing before it


def test_time_is_yahpos_prediction_made_monotone(bb: YahpoBlackbox, configs: list[dict]) -> None:
    x_cat, x_cont = bb._inputs(configs, bb.fidelity_values)
    raw = bb._predict(x_cat, x_cont).astype(float).reshape(len(configs), 52, 6)[:, :, 0]
    assert (np.diff(raw, axis=1) < 0).any()  # the surrogate alone is not monotone
    time = bb.evaluate(configs)[:, :, 0]
    np.testing.assert_allclose(time, np.maximum.accumulate(np.maximum(raw, 0), axis=1), rtol=1e-12)


def test_deterministic_and_batch_equals_single_calls(bb: YahpoBlackbox, configs: list[dict]) -> None:
    batch = bb.evaluate(configs)
    np.testing.assert_array_equal(batch, bb.evaluate(configs))
    single = np.concatenate([bb.evaluate([c]) for c in configs])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)
    again = YahpoBlackbox("lcbench", 3945, data_dir=DATA)  # an int id works too
    np.testing.assert_allclose(again.evaluate(configs[:5]), batch[:5], rtol=1e-6)


def test_fidelity_subset_matches_full_curve(bb: YahpoBlackbox, configs: list[dict]) -> None:
    full = bb.evaluate(configs[:10])
    sub = bb.evaluate(configs[:10], fidelities=[52, 3, 27])
    np.testing.assert_allclose(sub, full[:, [51, 2, 26]], rtol=1e-5, atol=1e-6)
    assert bb.learning_curve(configs[0])["val_accuracy"].shape == (52,)


def test_level_values_are_evaluate_at_one_level(bb: YahpoBlackbox, configs: list[dict]) -> None:
    full = bb.evaluate(configs)
    for name in ("val_accuracy", "val_cross_entropy", "test_balanced_accuracy"):
        i = bb.objective_index(name)
        np.testing.assert_allclose(bb.level_values(configs, name), full[:, -1, i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bb.level_values(configs, name, bb.fidelity_values[4]), full[:, 4, i],
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="time is cumulative over the fidelity levels; use evaluate"):
        bb.level_values(configs, "time")
    with pytest.raises(UserError, match="fidelity 0.5 is not available"):
        bb.level_values(configs, "val_accuracy", 0.5)
    assert bb.level_values([], "val_accuracy").shape == (0,)


def test_instances_differ(bb: YahpoBlackbox, configs: list[dict]) -> None:
    other = YahpoBlackbox("lcbench", "7593", data_dir=DATA)
    assert other.name == "lcbench-7593"
    assert not np.allclose(other.evaluate(configs[:5]), bb.evaluate(configs[:5]))


def test_bad_input_is_a_user_error(bb: YahpoBlackbox, configs: list[dict]) -> None:
    with pytest.raises(UserError, match="epoch takes values in 1..52"):
        bb.evaluate(configs[:1], fidelities=[53])
    with pytest.raises(UserError, match="fidelity 0.5 is not available"):
        bb.evaluate(configs[:1], fidelities=[0.5])
    with pytest.raises(UserError, match="learning_rate"):
        bb.evaluate([dict(configs[0], learning_rate=1.0)])
    with pytest.raises(UserError, match="lacks the hyperparameter 'momentum'"):
        bb.evaluate([{k: v for k, v in configs[0].items() if k != "momentum"}])


def test_unknown_instance_lists_the_valid_ones(home: Path) -> None:
    with pytest.raises(UserError, match="no instance '12345'.*3945, 7593"):
        YahpoBlackbox("lcbench", "12345", data_dir=DATA)
    with pytest.raises(UserError, match="needs an instance; valid instances: 3945"):
        YahpoBlackbox("lcbench", data_dir=DATA)
    with pytest.raises(UserError, match="unsupported YAHPO scenario 'lcbenc'; supported: lcbench"):
        YahpoBlackbox("lcbenc", "3945", data_dir=DATA)


def test_scenario_without_data(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "yahpo" / "lcbench").mkdir(parents=True)
    with pytest.raises(UserError, match="model.onnx, config_space.json, encoding.json missing in"):
        YahpoBlackbox("lcbench", "3945", data_dir=tmp_path)


def test_missing_data_dir_names_the_fix(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNEBENCH_DATA", raising=False)
    with pytest.raises(UserError, match="set TUNEBENCH_DATA to the folder holding yahpo/"):
        YahpoBlackbox("lcbench", "3945")
    with pytest.raises(UserError, match="does not exist; set TUNEBENCH_DATA"):
        YahpoBlackbox("lcbench", "3945", data_dir=tmp_path / "nowhere")
    with pytest.raises(UserError, match="has no yahpo/ subfolder; set TUNEBENCH_DATA"):
        YahpoBlackbox("lcbench", "3945", data_dir=tmp_path)
    monkeypatch.setenv("TUNEBENCH_DATA", str(DATA))
    assert resolve_data_dir() == DATA.resolve()
    assert YahpoBlackbox("lcbench", "3945").name == "lcbench-3945"
    # the yahpo folder itself is accepted too
    assert YahpoBlackbox("lcbench", "3945", data_dir=DATA / "yahpo").data_path == (DATA / "yahpo").resolve()


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(UserError, match=r"onnxruntime .*pip install 'tunebench\[yahpo\]'"):
        YahpoBlackbox("lcbench", "3945", data_dir=DATA)


def test_nothing_printed_and_nothing_written(home: Path, capsys: pytest.CaptureFixture) -> None:
    YahpoBlackbox("lcbench", "3945", data_dir=DATA)
    assert capsys.readouterr().out == ""
    assert not (home / ".config").exists()  # no ~/.config/yahpo_gym
    assert "yahpo_gym" not in sys.modules


def test_module_imports_without_loading_onnxruntime() -> None:
    code = ("import sys, tunebench.blackboxes.yahpo; "
            "assert not {'onnxruntime', 'yahpo_gym'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
