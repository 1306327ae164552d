"""Blackboxes: tabular lookups, the on-disk format, surrogates and synthetic problems."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest

from tunebench.blackboxes import (
    Blackbox,
    SurrogateBlackbox,
    TabularBlackbox,
    branin_blackbox,
    hartmann6_blackbox,
    synthetic_tabular_blackbox,
    tabulate,
)
from tunebench.blackboxes.synthetic import BRANIN_MINIMIZERS, HARTMANN6_MINIMIZER, branin, hartmann6
from tunebench.errors import UserError
from tunebench.space import choice, loguniform, randint, sample_configs, uniform

SPACE = {"lr": loguniform(1e-4, 1e-1), "units": randint(8, 64), "act": choice(["relu", "tanh"]), "epochs": 8}
FIDELITIES = [1, 2, 4, 8]
CONFIGS = [
    {"lr": 1e-3, "units": 16, "act": "relu"},
    {"lr": 0.01, "units": 32, "act": "tanh"},
    {"lr": 0.05, "units": 8, "act": "relu"},
    {"lr": 1e-4, "units": 64, "act": "tanh"},
    {"lr": 0.003, "units": 20, "act": "relu"},
]


def make_values(n_seeds: int = 2) -> np.ndarray:
    """(config, seed, fidelity, [error, time]) with cumulative time and seed-dependent errors."""
    rng = np.random.default_rng(0)
    values = np.empty((len(CONFIGS), n_seeds, len(FIDELITIES), 2))
    values[..., 0] = rng.random(values.shape[:3])
    values[..., 1] = np.cumsum(rng.uniform(1, 5, values.shape[:3]), axis=2)
    return values


def long_df(values: np.ndarray, shuffle: bool = True) -> pd.DataFrame:
    rows = []
    for c, config in enumerate(CONFIGS):
        for s in range(values.shape[1]):
            for f, fid in enumerate(FIDELITIES):
                rows.append({**config, "seed": s, "epoch": fid, "error": values[c, s, f, 0],
                             "time": values[c, s, f, 1], "extra": "ignored"})
    df = pd.DataFrame(rows)
    if shuffle:  # configs keep their order of first appearance: shuffle within the first block only
        first = df.groupby(["lr", "units", "act"], sort=False).head(1)
        rest = df.drop(first.index).sample(frac=1.0, random_state=1)
        df = pd.concat([first, rest])
    return df


@pytest.fixture
def table() -> TabularBlackbox:
    values = make_values()
    return TabularBlackbox.from_dataframe(long_df(values), config_space=SPACE, fidelity_name="epoch",
                                          objectives=["error", "time"], elapsed_time_attr="time", name="toy")


# --------------------------------------------------------------------------- from_dataframe / lookups


def test_from_dataframe_evaluates_to_the_table_values(table: TabularBlackbox) -> None:
    values = make_values()
    assert table.values.shape == (5, 2, 4, 2)
    assert table.configs == CONFIGS
    assert table.fidelity_values.tolist() == FIDELITIES and table.fidelity_values.dtype.kind == "i"
    assert table.objectives == ("error", "time") and table.n_seeds == 2
    for seed in range(2):
        np.testing.assert_array_equal(table.evaluate(CONFIGS, seed=seed), values[:, seed])
        reordered = [CONFIGS[i] for i in (3, 0, 4)]
        np.testing.assert_array_equal(table.evaluate(reordered, seed=seed), values[[3, 0, 4], seed])
        np.testing.assert_array_equal(table.evaluate(CONFIGS, [2, 8], seed=seed), values[:, seed][:, [1, 3]])
        one = {**CONFIGS[1], "epochs": 8}  # constants of the space are allowed and ignored
        np.testing.assert_array_equal(table.evaluate([one], seed=seed, check=False)[0], values[1, seed])
        np.testing.assert_array_equal(table.evaluate([one], [4], seed=seed, check=False)[0], values[1, seed, [2]])
    curve = table.learning_curve(CONFIGS[2], seed=1)
    np.testing.assert_array_equal(curve["time"], values[2, 1, :, 1])
    out = table.evaluate([CONFIGS[0]], check=False)
    out[:] = -1  # results are copies: the table is untouched
    assert table.values[0, 0, 0, 0] == values[0, 0, 0, 0]


def test_to_dataframe_round_trips(table: TabularBlackbox) -> None:
    again = TabularBlackbox.from_dataframe(table.to_dataframe(), config_space=SPACE, fidelity_name="epoch",
                                           objectives=["error", "time"], elapsed_time_attr="time")
    np.testing.assert_array_equal(again.values, table.values)
    assert again.configs == table.configs


def test_missing_cells_and_duplicate_rows() -> None:
    df = long_df(make_values(), shuffle=False)
    holed = df.drop(index=7)
    with pytest.raises(UserError, match=r"1 \(configuration, seed, fidelity\) cell.*missing='nan'"):
        TabularBlackbox.from_dataframe(holed, config_space=SPACE, fidelity_name="epoch", objectives=["error"])
    filled = TabularBlackbox.from_dataframe(holed, config_space=SPACE, fidelity_name="epoch", objectives=["error"],
                                            missing="nan")
    assert np.isnan(filled.values[0, 1, 3, 0]) and np.count_nonzero(np.isnan(filled.values)) == 1
    with pytest.raises(UserError, match="2 rows for configuration.*exactly one row"):
        TabularBlackbox.from_dataframe(pd.concat([df, df.iloc[[3]]]), config_space=SPACE, fidelity_name="epoch",
                                       objectives=["error"])
    with pytest.raises(UserError, match="seed_col"):  # repetitions without a seed column
        TabularBlackbox.from_dataframe(df.drop(columns="seed"), config_space=SPACE, fidelity_name="epoch",
                                       objectives=["error"])
    with pytest.raises(UserError, match=r"lacks the column\(s\) \['accuracy'\]"):
        TabularBlackbox.from_dataframe(df, config_space=SPACE, fidelity_name="epoch", objectives=["accuracy"])
    bad = df.copy()
    bad.loc[0, "units"] = 100
    with pytest.raises(UserError, match="units=100, outside its domain"):
        TabularBlackbox.from_dataframe(bad, config_space=SPACE, fidelity_name="epoch", objectives=["error"])


def test_single_fidelity_and_single_seed() -> None:
    df = pd.DataFrame([{**c, "error": i / 10} for i, c in enumerate(CONFIGS)])
    table = TabularBlackbox.from_dataframe(df, config_space=SPACE, fidelity_name=None, objectives=["error"])
    assert table.fidelity_values.tolist() == [1] and table.n_seeds == 1 and table.fidelity_name is None
    assert table.evaluate(CONFIGS)[:, 0, 0].tolist() == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_constructor_checks() -> None:
    values = make_values()
    with pytest.raises(UserError, match="appears more than once"):
        TabularBlackbox(values, [CONFIGS[0]] * 5, SPACE, objectives=["error", "time"])
    with pytest.raises(UserError, match="elapsed_time_attr 'seconds' is not one of the objectives"):
        TabularBlackbox(values, CONFIGS, SPACE, objectives=["error", "time"], elapsed_time_attr="seconds")
    with pytest.raises(UserError, match="4 configurations but values has 5 rows"):
        TabularBlackbox(values, CONFIGS[:4], SPACE, objectives=["error", "time"])
    with pytest.raises(UserError, match="lacks the hyperparameter 'act'"):
        TabularBlackbox(values, [{k: v for k, v in c.items() if k != "act"} for c in CONFIGS], SPACE,
                        objectives=["error", "time"])


def test_tolerant_lookup_matches_json_and_float32_values(table: TabularBlackbox) -> None:
    config = CONFIGS[4]
    assert table.row_of(json.loads(json.dumps(config))) == 4
    assert table.row_of({**config, "lr": float(np.float32(config["lr"]))}) == 4
    assert table.row_of({**config, "lr": np.float64(config["lr"]), "units": np.int64(20)}) == 4
    assert table.row_of({**config, "lr": 0.0031}) is None
    values = make_values()
    np.testing.assert_array_equal(table.evaluate([{**config, "lr": float(np.float32(0.003))}], seed=1)[0],
                                  values[4, 1])


# --------------------------------------------------------------------------- on-disk format


def test_save_load_round_trip_without_pickle(table: TabularBlackbox, tmp_path) -> None:
    folder = table.save(tmp_path / "toy")
    assert sorted(p.name for p in folder.iterdir()) == ["configs.parquet", "meta.json", "values.npy"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == "tunebench-tabular-blackbox" and meta["format_version"] == 1
    assert meta["fidelity_values"] == FIDELITIES and meta["n_seeds"] == 2
    np.testing.assert_array_equal(np.load(folder / "values.npy", allow_pickle=False), table.values)
    for mmap in (False, True):
        loaded = TabularBlackbox.load(folder, mmap=mmap)
        np.testing.assert_array_equal(loaded.values, table.values)
        assert loaded.configs == table.configs and loaded.config_space == SPACE
        assert (loaded.name, loaded.objectives, loaded.elapsed_time_attr) == ("toy", ("error", "time"), "time")
        assert loaded.fidelity_values.tolist() == FIDELITIES
        np.testing.assert_array_equal(loaded.evaluate(CONFIGS, seed=1), table.evaluate(CONFIGS, seed=1))
    small = TabularBlackbox.load(table.save(tmp_path / "f32", dtype=np.float32))
    assert small.values.dtype == np.float32
    assert small.evaluate(CONFIGS).dtype == np.float64


def test_save_load_mixed_categories_and_optimum(tmp_path) -> None:
    space = {"opt": choice(["sgd", 1, 2.5]), "x": uniform(0, 1)}
    configs = [{"opt": "sgd", "x": 0.25}, {"opt": 1, "x": 0.5}, {"opt": 2.5, "x": 0.75}]
    table = TabularBlackbox(np.arange(6.0).reshape(3, 1, 2, 1), configs, space, objectives=["loss"],
                            fidelity_name="epoch", optimum={"loss": 0.0})
    loaded = TabularBlackbox.load(table.save(tmp_path / "mixed"))
    assert loaded.configs == configs and [type(c["opt"]) for c in loaded.configs] == [str, int, float]
    assert loaded.optimum == {"loss": 0.0}


def test_load_errors_name_the_file(table: TabularBlackbox, tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        TabularBlackbox.load(tmp_path / "nowhere")
    folder = table.save(tmp_path / "t")
    (folder / "values.npy").unlink()
    with pytest.raises(UserError, match="has no values.npy"):
        TabularBlackbox.load(folder)

    def fresh(name: str):
        return table.save(tmp_path / name)

    folder = fresh("json")
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(UserError, match="meta.json is corrupt"):
        TabularBlackbox.load(folder)
    folder = fresh("pickle")
    np.save(folder / "values.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="values.npy is corrupt"):
        TabularBlackbox.load(folder)
    folder = fresh("shape")
    np.save(folder / "values.npy", np.zeros((5, 2, 3, 2)))
    with pytest.raises(UserError, match="do not belong together"):
        TabularBlackbox.load(folder)
    folder = fresh("parquet")
    (folder / "configs.parquet").write_bytes(b"garbage")
    with pytest.raises(UserError, match="configs.parquet is corrupt"):
        TabularBlackbox.load(folder)
    folder = fresh("version")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(UserError, match="upgrade tunebench"):
        TabularBlackbox.load(folder)
    del meta["objectives"]
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="lacks the entry 'objectives'"):
        TabularBlackbox.load(folder)


# --------------------------------------------------------------------------- surrogates


def test_off_table_configs_go_through_the_surrogate(table: TabularBlackbox, caplog) -> None:
    values = make_values()
    near = {"lr": 0.0011, "units": 17, "act": "relu"}  # nearest to CONFIGS[0]
    with caplog.at_level(logging.INFO, logger="tunebench.blackboxes.tabular"):
        out = table.evaluate([CONFIGS[1], near, CONFIGS[2]], seed=1)
        table.evaluate([near], seed=0)
    np.testing.assert_array_equal(out, values[[1, 0, 2], 1])
    assert sum("not in the table" in r.message for r in caplog.records) == 1
    no_surrogate = TabularBlackbox(values, CONFIGS, SPACE, objectives=["error", "time"], surrogate=None)
    with pytest.raises(UserError, match="not in the table"):
        no_surrogate.evaluate([near])


def test_knn_surrogate_reproduces_table_rows(table: TabularBlackbox) -> None:
    surrogate = SurrogateBlackbox(table)
    values = make_values()
    for seed in range(2):
        np.testing.assert_array_equal(surrogate.evaluate(CONFIGS, seed=seed), values[:, seed])
        np.testing.assert_array_equal(surrogate.evaluate(CONFIGS * 20, [1, 4], seed=seed),  # sklearn's path
                                      np.tile(values[:, seed][:, [0, 2]], (20, 1, 1)))
    three = SurrogateBlackbox(table, n_neighbors=3)
    assert three.evaluate([CONFIGS[0]]).shape == (1, 4, 2)


class _DecreasingTime:
    """A 'regressor' whose time curves decrease: the surrogate must make them monotone."""

    def fit(self, X, Y):
        self.n_outputs = Y.shape[1]
        return self

    def predict(self, X):
        out = np.zeros((len(X), self.n_outputs))
        out[:, 1::2] = np.array([5.0, 3.0, 4.0, 1.0] * 2)  # time of (seed, fidelity)
        return out


def test_surrogate_elapsed_time_is_monotone(table: TabularBlackbox) -> None:
    surrogate = SurrogateBlackbox(table, model=_DecreasingTime())
    out = surrogate.evaluate([{"lr": 0.02, "units": 40, "act": "tanh"}])
    assert out[0, :, 1].tolist() == [5.0, 5.0, 5.0, 5.0]
    assert surrogate.evaluate([CONFIGS[0]], [2, 8])[0, :, 1].tolist() == [5.0, 5.0]


def test_random_forest_surrogate_and_wider_space(table: TabularBlackbox) -> None:
    forest = SurrogateBlackbox(table, "random_forest", n_estimators=10)
    configs = sample_configs(SPACE, np.random.default_rng(3), 20)
    out = forest.evaluate(configs, seed=1)
    assert out.shape == (20, 4, 2) and np.isfinite(out).all()
    assert (out[:, :, 0] >= table.values[..., 0].min() - 1e-12).all()
    assert (np.diff(out[:, :, 1], axis=1) >= 0).all()
    from sklearn.linear_model import Ridge

    ridge = SurrogateBlackbox(table, Ridge(alpha=1.0), config_space={**SPACE, "units": randint(1, 128)})
    assert ridge.evaluate([{"lr": 0.02, "units": 100, "act": "tanh"}]).shape == (1, 4, 2)
    with pytest.raises(UserError, match="unknown surrogate model 'gp'"):
        SurrogateBlackbox(table, "gp")


# --------------------------------------------------------------------------- synthetic problems


def test_synthetic_curves_are_deterministic_and_converge() -> None:
    bb = branin_blackbox(n_seeds=3)
    configs = sample_configs(bb.config_space, np.random.default_rng(0), 50)
    first = bb.evaluate(configs, seed=1)
    np.testing.assert_array_equal(first, branin_blackbox(n_seeds=3).evaluate(configs, seed=1))
    one_by_one = np.concatenate([bb.evaluate([c], seed=1) for c in configs])
    np.testing.assert_allclose(one_by_one, first, rtol=1e-12)
    np.testing.assert_allclose(bb.evaluate(configs, [1, 9, 27], seed=1), first[:, [0, 8, 26]], rtol=1e-12)
    assert not np.array_equal(bb.evaluate(configs, seed=2)[:, :-1], first[:, :-1])  # seeds differ ...
    final = branin(np.array([[c["x1"], c["x2"]] for c in configs]))
    np.testing.assert_allclose(first[:, -1, 0], final, rtol=1e-12)  # ... but all converge to Branin
    assert (first[:, :, 0] >= final[:, None] - 1e-9).all()
    assert np.mean(first[:, 0, 0] - final) > 10 * np.mean(first[:, 20, 0] - final)  # the gap decays
    time_ = first[:, :, 1]
    assert (np.diff(time_, axis=1) > 0).all() and ((time_[:, 0] >= 1) & (time_[:, 0] <= 10)).all()
    np.testing.assert_allclose(time_, time_[:, :1] * np.arange(1, 28))
    smooth = branin_blackbox(noise=0.0).evaluate(configs)
    assert (np.diff(smooth[:, :, 0], axis=1) <= 1e-9).all()  # noise-free curves decrease


def test_synthetic_optima() -> None:
    bb = branin_blackbox()
    assert bb.optimum == {"loss": 0.397887}
    for minimizer in BRANIN_MINIMIZERS:
        assert bb.evaluate([minimizer])[0, -1, 0] == pytest.approx(0.397887, abs=1e-5)
    assert bb.evaluate([{"x1": math.pi, "x2": 2.275}])[0, -1, 0] == pytest.approx(0.397887, abs=1e-6)
    h6 = hartmann6_blackbox()
    assert h6.optimum == {"loss": -3.32237}
    assert h6.evaluate([HARTMANN6_MINIMIZER])[0, -1, 0] == pytest.approx(-3.32237, abs=1e-5)
    X = np.random.default_rng(1).random((2000, 6))
    assert hartmann6(X).min() > -3.32237
    assert h6.evaluate([HARTMANN6_MINIMIZER])[0, 0, 0] > -3.32237


def test_synthetic_tabular_blackbox() -> None:
    bb = synthetic_tabular_blackbox(n_configs=1000, max_fidelity=27)  # (benchmarks/simulator_throughput.py times it)
    assert bb.values.shape == (1000, 1, 27, 2) and bb.fidelity_name == "epoch"
    assert bb.objectives == ("loss", "time") and bb.elapsed_time_attr == "time"
    for config in sample_configs(bb.config_space, np.random.default_rng(0), 200):
        assert bb.row_of(config) is not None  # the full grid: samples are always tabulated
    assert bb.optimum["loss"] == pytest.approx(bb.values[:, 0, -1, 0].min())
    assert (np.diff(bb.values[..., 1], axis=2) > 0).all()
    again = synthetic_tabular_blackbox(n_configs=1000, max_fidelity=27)
    np.testing.assert_array_equal(again.values, bb.values)
    odd = synthetic_tabular_blackbox(n_configs=7, max_fidelity=3, n_seeds=2, seed=5)
    assert odd.values.shape == (7, 2, 3, 2)
    np.testing.assert_array_equal(odd.values[:, 0, -1], odd.values[:, 1, -1])


def test_tabulate_freezes_a_blackbox(tmp_path) -> None:
    bb = branin_blackbox(max_fidelity=9, n_seeds=2)
    configs = sample_configs(bb.config_space, np.random.default_rng(2), 30)
    table = TabularBlackbox.load(tabulate(bb, configs).save(tmp_path / "branin"))
    for seed in (0, 1):
        np.testing.assert_array_equal(table.evaluate(configs, seed=seed), bb.evaluate(configs, seed=seed))
    assert table.optimum == bb.optimum


# --------------------------------------------------------------------------- errors and speed


def _blackboxes() -> list[Blackbox]:
    table = TabularBlackbox(make_values(), CONFIGS, SPACE, objectives=["error", "time"], fidelity_name="epoch",
                            fidelity_values=FIDELITIES, elapsed_time_attr="time", name="toy")
    return [table, SurrogateBlackbox(table), branin_blackbox(n_seeds=2)]


@pytest.mark.parametrize("bb", _blackboxes(), ids=lambda b: type(b).__name__)
def test_errors_name_the_fix(bb: Blackbox) -> None:
    config = CONFIGS[0] if "lr" in bb.config_space else {"x1": 0.0, "x2": 1.0}
    name = next(iter(bb.config_space))
    with pytest.raises(UserError, match=f"{name}=.*outside its domain"):
        bb.evaluate([{**config, name: 1e6}])
    with pytest.raises(UserError, match=f"lacks the hyperparameter '{name}'"):
        bb.evaluate([{k: v for k, v in config.items() if k != name}])
    with pytest.raises(UserError, match="fidelity 0.5 is not available; epoch takes values in"):
        bb.evaluate([config], [0.5])
    with pytest.raises(UserError, match=r"seed 2 is out of range; it has 2 seed\(s\) \(0\.\.1\)"):
        bb.evaluate([config], seed=2)
    with pytest.raises(UserError, match="has no objective 'accuracy'; its objectives are"):
        bb.objective_index("accuracy")
    assert bb.evaluate([config], seed=1).shape == (1, len(bb.fidelity_values), 2)


def test_unchecked_single_lookups_match_checked_ones() -> None:
    """The fast path of the simulator (``check=False``; benchmarks/simulator_throughput.py times it)."""
    table = synthetic_tabular_blackbox(1000, 27)
    for i in (0, 123, 999):
        config = table.configs[i]
        np.testing.assert_array_equal(table.evaluate([config], seed=0, check=False), table.evaluate([config], seed=0))
