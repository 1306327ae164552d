"""Conditional parameters: declaring them (Python, JSON, YAML), the checks of a space, sampling,
the grid, the encoding models use, completing a changed config, and the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from tunebench.errors import SpaceError
from tunebench.space import (
    Condition,
    active_config,
    add_to_argparse,
    choice,
    config_to_argv,
    decode_configs,
    default_config,
    encode_configs,
    grid_configs,
    load_space_file,
    lograndint,
    ordinal,
    randint,
    repair_config,
    sample_config,
    sample_configs,
    space_from_json,
    space_to_json,
    uniform,
    validate_space,
)

SPACE = {
    "optimizer": choice(["sgd", "adam", "rmsprop"]),
    "momentum": uniform(0.5, 0.99).when(optimizer="sgd"),
    "n_layers": randint(1, 3),
    "width_2": lograndint(16, 256).when(n_layers={">=": 2}),
    "beta": uniform(0.0, 1.0).when(optimizer=["adam", "rmsprop"], width_2={"<=": 64}),
    "epochs": 10,
}


def _is_active_set(config: dict) -> bool:
    """The config holds exactly the parameters whose condition holds (by hand, for SPACE)."""
    expected = {"optimizer", "n_layers", "epochs"}
    if config["optimizer"] == "sgd":
        expected.add("momentum")
    if config["n_layers"] >= 2:
        expected.add("width_2")
        if config["optimizer"] != "sgd" and config["width_2"] <= 64:
            expected.add("beta")
    return set(config) == expected


def test_samples_hold_exactly_the_active_parameters_and_cover_every_case() -> None:
    configs = sample_configs(SPACE, np.random.default_rng(0), 2000)
    assert all(_is_active_set(c) for c in configs)
    kinds = {tuple(sorted(c)) for c in configs}
    assert len(kinds) == 5  # with or without momentum / width_2 / beta, as the chain allows
    one = sample_config(SPACE, np.random.default_rng(1))
    assert _is_active_set(one)
    assert list(one) == [k for k in SPACE if k in one]  # the space's key order


def test_conditions_chain_through_an_inactive_parent() -> None:
    # beta reads width_2, which is inactive with one layer: beta is then inactive too
    config = {"optimizer": "adam", "momentum": 0.9, "n_layers": 1, "width_2": 32, "beta": 0.5, "epochs": 10}
    assert active_config(SPACE, config) == {"optimizer": "adam", "n_layers": 1, "epochs": 10}
    assert active_config(SPACE, {**config, "n_layers": 2}) == {
        "optimizer": "adam", "n_layers": 2, "width_2": 32, "beta": 0.5, "epochs": 10}


def test_active_config_keeps_key_order_and_extra_keys_and_follows_a_changed_space() -> None:
    # a child declared before its parent: filtered in condition order, returned in key order,
    # keys the space does not have (a resource a scheduler added) kept at the end
    space = {"m": uniform(0.0, 1.0).when(opt="sgd"), "opt": choice(["sgd", "adam"]), "lr": uniform(0.0, 1.0)}
    config = {"lr": 0.1, "epochs": 3, "opt": "sgd", "m": 0.5}
    out = active_config(space, config)
    assert out == config and list(out) == ["m", "opt", "lr", "epochs"]
    assert list(active_config(space, {**config, "opt": "adam"})) == ["opt", "lr", "epochs"]
    # the same keys with a replaced domain (another condition): the new condition counts
    space["m"] = uniform(0.0, 1.0).when(opt="adam")
    assert list(active_config(space, config)) == ["opt", "lr", "epochs"]
    assert list(active_config(space, {**config, "opt": "adam"})) == ["m", "opt", "lr", "epochs"]
    space["m"] = uniform(0.0, 1.0)  # no condition left: a plain copy
    assert active_config(space, config) == config


def test_a_string_is_a_category_only_of_a_string_category() -> None:
    domain = choice(["1", 2, True])
    assert domain.contains("1") and not domain.contains("2") and not domain.contains("True")
    assert domain.contains(2) and domain.contains(True) and not domain.contains(1)


def test_default_and_grid_leave_inactive_parameters_out_without_repeats() -> None:
    assert default_config(SPACE) == {"optimizer": "sgd", "momentum": 0.745, "n_layers": 2,
                                     "width_2": 64, "epochs": 10}
    grid = grid_configs({"opt": choice(["sgd", "adam"]), "m": ordinal([0.5, 0.9]).when(opt="sgd")})
    assert grid == [{"opt": "sgd", "m": 0.5}, {"opt": "sgd", "m": 0.9}, {"opt": "adam"}]


def test_json_and_yaml_round_trip_with_when(tmp_path: Path) -> None:
    spec = space_to_json(SPACE)
    assert spec["momentum"]["when"] == {"optimizer": "sgd"}
    assert spec["beta"]["when"] == {"optimizer": ["adam", "rmsprop"], "width_2": {"<=": 64}}
    assert space_from_json(json.loads(json.dumps(spec))) == SPACE
    path = tmp_path / "space.yaml"
    path.write_text("optimizer: {type: choice, values: [sgd, adam]}\n"
                    "momentum: {type: uniform, low: 0.5, high: 0.99, when: {optimizer: sgd}}\n")
    space = load_space_file(path)
    assert space["momentum"].condition == Condition.parse({"optimizer": "sgd"})
    assert space["momentum"] != uniform(0.5, 0.99)  # the condition is part of the domain
    assert space["momentum"] == uniform(0.5, 0.99).when(optimizer="sgd")


@pytest.mark.parametrize("space, message", [
    ({"a": uniform(0, 1).when(b=1)}, "its condition names 'b', which is not a parameter"),
    ({"a": uniform(0, 1).when(b=0.5), "b": uniform(0, 1).when(a=0.5)}, "cycle: a -> b -> a"),
    ({"o": choice(["x", "y"]), "a": uniform(0, 1).when(o="z")}, "can never hold: 'o' takes one of"),
    ({"o": choice(["x", "y"]), "a": uniform(0, 1).when(o={">": 1})}, "compares 'o', which is not numeric"),
    ({"n": randint(1, 3), "a": uniform(0, 1).when(n=7)}, "can never hold"),
])
def test_bad_conditions_are_refused_with_one_line_naming_the_fix(space: dict, message: str) -> None:
    with pytest.raises(SpaceError, match=message) as err:
        validate_space(space)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec, message", [
    ({}, "non-empty mapping"),
    ({"o": {"~": 1}}, "unknown operator '~'"),
    ({"n": {">=": "two"}}, "needs a number"),
    ({"o": {"in": []}}, "non-empty list"),
])
def test_malformed_conditions_fail_when_declared(spec: dict, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        uniform(0, 1).when(spec)
    with pytest.raises(SpaceError, match="constant cannot have a condition"):
        space_from_json({"o": {"type": "constant", "value": 1, "when": {"x": 1}}})


def test_the_encoding_fills_inactive_parameters_and_decoding_drops_them() -> None:
    configs = sample_configs(SPACE, np.random.default_rng(2), 50)
    X = encode_configs(SPACE, configs)
    assert np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1
    assert decode_configs(SPACE, X) == configs
    # an inactive parameter is encoded as its default, whatever it would have been
    sgd = {"optimizer": "sgd", "momentum": 0.7, "n_layers": 1, "epochs": 10}
    with_width = encode_configs(SPACE, [sgd, {**sgd, "width_2": 200}])
    assert np.array_equal(with_width[0], encode_configs(SPACE, [{**sgd, "width_2": 64}])[0])
    # also when the config carries a value for it: one encoding per configuration
    assert np.array_equal(with_width[1], with_width[0])
    adam = {"optimizer": "adam", "n_layers": 2, "width_2": 32, "beta": 0.9, "epochs": 10}
    X = encode_configs(SPACE, [adam, {**adam, "optimizer": "sgd", "momentum": 0.6},
                               {**adam, "optimizer": "sgd", "momentum": 0.6, "beta": 0.1}])
    assert np.array_equal(X[1], X[2]) and not np.array_equal(X[0], X[1])
    with pytest.raises(SpaceError, match="no value for parameter 'n_layers'"):
        encode_configs(SPACE, [{"optimizer": "sgd"}])


def test_complete_config_after_a_change_of_a_parent() -> None:
    rng = np.random.default_rng(3)
    adam = {"optimizer": "adam", "n_layers": 1, "epochs": 10}
    changed = repair_config(SPACE, {**adam, "optimizer": "sgd"}, rng)
    assert _is_active_set(changed) and 0.5 <= changed["momentum"] <= 0.99
    back = repair_config(SPACE, {**changed, "optimizer": "adam", "n_layers": 3}, rng)
    assert _is_active_set(back) and "momentum" not in back and 16 <= back["width_2"] <= 256


def test_inactive_parameters_stay_off_the_command_line() -> None:
    config = {"optimizer": "adam", "n_layers": 1, "epochs": 10}
    argv = config_to_argv(config)
    assert "--momentum" not in argv and "--width_2" not in argv
    parser = argparse.ArgumentParser()
    add_to_argparse(parser, SPACE)
    args = parser.parse_args(argv)
    assert args.optimizer == "adam" and args.n_layers == 1


COND_SCRIPT = """
    import argparse, sys
    from tunebench import report, load_checkpoint, save_checkpoint
    def main():
        argv = sys.argv[1:]
        # the script sees exactly the active parameters on its command line
        has = {a[2:].split("=")[0] for a in argv if a.startswith("--")}
        p = argparse.ArgumentParser()
        p.add_argument("--optimizer"); p.add_argument("--momentum", type=float, default=None)
        p.add_argument("--n_layers", type=int); p.add_argument("--width_2", type=int, default=None)
        p.add_argument("--beta", type=float, default=None); p.add_argument("--epochs", type=int)
        a = p.parse_args()
        assert ("momentum" in has) == (a.optimizer == "sgd"), argv
        assert ("width_2" in has) == (a.n_layers >= 2), argv
        state = load_checkpoint() or {"epoch": 0}
        for epoch in range(state["epoch"] + 1, a.epochs + 1):
            loss = (0.1 if a.optimizer == "sgd" else 0.3) + (a.momentum or 0.0) * 0.01 + 1.0 / epoch
            save_checkpoint({"epoch": epoch})
            report(epoch=epoch, loss=loss)

    if __name__ == "__main__":
        main()
"""

COND_YAML = """
optimizer: {type: choice, values: [sgd, adam, rmsprop]}
momentum: {type: uniform, low: 0.5, high: 0.99, when: {optimizer: sgd}}
n_layers: {type: randint, low: 1, high: 3}
width_2: {type: lograndint, low: 16, high: 256, when: {n_layers: {">=": 2}}}
beta: {type: uniform, low: 0.0, high: 1.0, when: {optimizer: [adam, rmsprop], width_2: {"<=": 64}}}
"""


@pytest.mark.parametrize("method", ["BO", "BOHB", "REA"])
def test_a_conditional_space_file_through_the_cli_on_real_processes(tmp_path: Path, method: str) -> None:
    """`tunebench run --config-space` with conditions: every trial's command line holds exactly its
    active parameters (the script asserts it), the results table shows inactive ones as absent
    (NaN), and `show --json` reports a best configuration with only its active parameters."""
    import subprocess
    import sys

    from conftest import write_script

    from tunebench.store import load_experiment

    script = write_script(tmp_path, COND_SCRIPT)
    space = tmp_path / "space.yaml"
    space.write_text(COND_YAML)
    exp = tmp_path / "exp"
    run = subprocess.run([sys.executable, "-m", "tunebench", "run", "--script", str(script), "--config-space",
                          str(space), "--metric", "loss", "--resource-attr", "epoch", "--max-resource-attr", "epochs",
                          "--max-resource", "3", "--method", method, "--n-workers", "2", "--max-trials", "14",
                          "--experiment-dir", str(exp), "--no-progress", "--seed", "1"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    exp_data = load_experiment(exp)
    assert exp_data.summary()["n_failed"] == 0
    trials = exp_data.trials
    sgd = trials.config_optimizer == "sgd"
    assert trials[sgd].config_momentum.notna().all() and trials[~sgd].config_momentum.isna().all()
    assert (trials.config_width_2.notna() == (trials.config_n_layers >= 2)).all()
    show = subprocess.run([sys.executable, "-m", "tunebench", "show", str(exp), "--json"], capture_output=True,
                          text=True, timeout=300)
    best = json.loads(show.stdout)["best_config"]
    assert ("momentum" in best) == (best["optimizer"] == "sgd")


@pytest.fixture
def lcbench_data() -> Path:
    import os

    data = Path(os.environ.get("TUNEBENCH_DATA", ""))
    if not (data / "yahpo" / "lcbench" / "model.onnx").is_file():
        pytest.skip("YAHPO lcbench data is absent (set TUNEBENCH_DATA)")
    return data


def test_the_conditional_and_flattened_lcbench_rewrites_are_the_same_problem(lcbench_data: Path) -> None:
    from tunebench.blackboxes.registry import load_blackbox

    cond = load_blackbox("lcbench-switched", "167149", lcbench_data, conditional=True)
    flat = load_blackbox("lcbench-switched", "167149", lcbench_data, conditional=False)
    base = load_blackbox("lcbench", "167149", lcbench_data)
    assert cond.config_space["momentum"].condition == Condition.parse({"optimizer": "momentum"})
    assert flat.config_space["momentum"].condition is None and "optimizer" in flat.config_space
    configs = sample_configs(cond.config_space, np.random.default_rng(0), 20)
    off = [c for c in configs if c["optimizer"] == "sgd"]
    assert off and all("momentum" not in c for c in off)
    # the flattened space's dead momentum changes nothing; the off value is momentum 0.1
    padded = [{**c, "momentum": 0.7 if "momentum" not in c else c["momentum"],
               "max_dropout": 0.3 if "max_dropout" not in c else c["max_dropout"]} for c in configs]
    np.testing.assert_array_equal(cond.evaluate(configs), flat.evaluate(padded))
    as_base = [{k: v for k, v in p.items() if k not in ("optimizer", "dropout")} for p in padded]
    for c, b in zip(configs, as_base, strict=True):
        if c["optimizer"] == "sgd":
            b["momentum"] = 0.1
        if c["dropout"] == "no":
            b["max_dropout"] = 0.0
    np.testing.assert_array_equal(cond.evaluate(configs), base.evaluate(as_base))


def test_bohb_on_the_conditional_lcbench_benchmark_in_the_simulator(lcbench_data: Path, tmp_path: Path) -> None:
    from tunebench.launch import build_tuner, spec_from_benchmark
    from tunebench.store import load_experiment

    spec = spec_from_benchmark("lcbench-167149-cond")
    spec.method, spec.seed, spec.max_wallclock_time = "BOHB", 0, 3000.0
    build_tuner(spec, tmp_path / "exp", command_line=[]).run()
    trials = load_experiment(tmp_path / "exp").trials
    assert len(trials) > 20
    on = trials.config_optimizer == "momentum"
    assert trials[on].config_momentum.notna().all() and trials[~on].config_momentum.isna().all()
    yes = trials.config_dropout == "yes"
    assert trials[yes].config_max_dropout.notna().all() and trials[~yes].config_max_dropout.isna().all()


def test_bo_never_reproposes_an_evaluated_config_in_a_conditional_space() -> None:
    """BO (GPSearcher) on a conditional space whose optimum has the conditional parameter
    inactive: a move of an inactive column is no new configuration, so no config is proposed
    twice (issue 18: before the acquisition optimizer made its rows canonical, BO re-proposed
    the incumbent with its inactive column moved)."""
    from tunebench.searchers.gp import GPSearcher

    space = {"opt": choice(["sgd", "momentum"]), "m": uniform(0.1, 0.99).when(opt="momentum"),
             "x": uniform(0.0, 1.0)}

    def loss(config: dict) -> float:  # best: sgd near x = 0.3; momentum is worse whatever m
        return (config["x"] - 0.3) ** 2 + (0.0 if config["opt"] == "sgd" else 0.2 + 0.1 * config["m"])

    searcher = GPSearcher(space, metric="loss", mode="min", seed=0, n_candidates=50)
    seen: list[dict] = []
    for trial_id in range(30):
        config = searcher.suggest(trial_id)
        assert set(config) == set(active_config(space, config))
        assert config not in seen
        seen.append(config)
        searcher.on_complete(trial_id, config, {"loss": loss(config)})
    assert min(loss(c) for c in seen) < 1e-3
