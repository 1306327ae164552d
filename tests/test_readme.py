"""The README's "Your own benchmarks" example, run exactly as written: its ``my_bench.py`` block
is written to a folder and its commands are run there, so the documentation cannot rot."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tunebench.store import load_experiment

REPO = Path(__file__).resolve().parent.parent


def own_benchmarks_section() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"^## Your own benchmarks\n(.*?)^## ", text, re.S | re.M)
    assert match, "README.md has no '## Your own benchmarks' section"
    return match.group(1)


def test_the_readme_custom_blackbox_example_runs_end_to_end(tmp_path: Path):
    section = own_benchmarks_section()
    code = re.search(r"```python\n(# my_bench\.py\n.*?)```", section, re.S)
    commands = re.search(r"```bash\n(.*?)```", section, re.S)
    assert code and commands, "the section shows my_bench.py and the commands that run it"
    (tmp_path / "my_bench.py").write_text(code.group(1))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    outputs = []
    for line in commands.group(1).splitlines():
        argv = shlex.split(line, comments=True)
        assert argv[0] == "tunebench", line
        out = subprocess.run([sys.executable, "-m", "tunebench", *argv[1:]], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
        outputs.append(out.stdout)
    assert "  my-quadratic: toy curves of my_bench.py [simulator; metric val_error (min), epoch 1-27" in outputs[0]
    assert "best val_error (min): " in outputs[-1]

    exp = load_experiment(tmp_path / "results" / "mine")
    df = exp.results
    columns = {"trial_id", "epoch", "val_error", "time", "decision", "tuner_time", "tuner_real_time",
               "config_lr", "config_momentum"}
    assert columns <= set(df.columns)
    # the benchmark's own "time" (10 s per epoch) and the tuner's simulated clock are distinct columns
    np.testing.assert_allclose(df["time"], df["epoch"] * 10.0)
    assert df["tuner_time"].is_monotonic_increasing and df["tuner_time"].max() <= 2000.0
    assert not np.allclose(df["time"], df["tuner_time"])
    best = exp.summary()["best_config"]
    assert abs(np.log10(best["lr"]) + 2.0) < 0.5 and abs(best["momentum"] - 0.9) < 0.3, best


@pytest.mark.parametrize("name", ["trial_id", "decision", "tuner_time", "tuner_real_time", "config_"])
def test_the_readme_names_every_tuner_column(name: str):
    from tunebench.store import TUNER_COLUMNS

    assert f"`{name}" in own_benchmarks_section()
    assert name in TUNER_COLUMNS or name == "config_"


def run_section_example(title: str, filename: str, folder: Path) -> list[str]:
    """The README section ``title``'s Python block (starting ``# filename``) written to ``folder``
    and its bash block's commands (``python`` / ``tunebench``) run there, in order; their outputs."""
    text = (REPO / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)^## ", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    code = re.search(rf"```python\n(# {re.escape(filename)}\n.*?)```", match.group(1), re.S)
    commands = re.search(r"```bash\n(.*?)```", match.group(1), re.S)
    assert code and commands, f"the section shows {filename} and the commands that run it"
    (folder / filename).write_text(code.group(1))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    outputs = []
    for line in commands.group(1).splitlines():
        argv = shlex.split(line, comments=True)
        assert argv[0] in ("python", "tunebench"), line
        prefix = [sys.executable] if argv[0] == "python" else [sys.executable, "-m", "tunebench"]
        out = subprocess.run([*prefix, *argv[1:]], cwd=folder, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
        outputs.append(out.stdout)
    return outputs


def test_the_readme_ask_tell_example_runs_end_to_end(tmp_path: Path):
    """The "Ask/tell" section's ``asktell_demo.py`` and its commands, run as written."""
    outputs = run_section_example("Ask/tell: drive any method from your own loop", "asktell_demo.py", tmp_path)
    best = load_experiment(tmp_path / "results" / "asktell-demo").best_trial()
    assert best is not None and best.at_max_resource
    assert f"best: trial {best.trial_id} {best.config} val_error {best.value:.4f}" in outputs[0]
    assert "method ASHA-promotion, metric val_error (min)" in outputs[1] and "finished: closed" in outputs[1]
    assert abs(np.log10(best.config["lr"]) + 2.0) < 0.5, best


def test_the_readme_custom_blackbox_end_to_end_example_runs(tmp_path: Path):
    """The "A custom blackbox end to end" section's ``curves_demo.py`` and its commands, run as
    written: the contract check passes, ASHA and (through --benchmark-module) RS run on the
    blackbox given directly to the SimulatedBenchmark, whose evaluate asserts that no
    maximum-resource key reaches it."""
    outputs = run_section_example("A custom blackbox end to end", "curves_demo.py", tmp_path)
    exp = load_experiment(tmp_path / "results" / "warmup-demo")
    summary = exp.summary()
    best = summary["best_config"]
    assert f"{summary['n_trials']} trials, {len(exp.results)} results in 3,000 simulated s" in outputs[0]
    assert f"best best_error {summary['best_metric']:.4f} (trial {summary['best_trial_id']})" in outputs[0]
    assert "method ASHA, metric best_error (min)" in outputs[1]
    assert abs(np.log10(best["lr"]) + 2.0) < 0.5 and best["schedule"] == "cosine", best
    df = exp.results
    # the inactive warmup is absent from constant-schedule configs, present otherwise
    constant = df["config_schedule"] == "constant"
    assert constant.any() and df.loc[constant, "config_warmup"].isna().all()
    assert df.loc[~constant, "config_warmup"].notna().all()
    # best_error is the running minimum of val_error along each trial's curve
    for _, trial in df.groupby("trial_id"):
        np.testing.assert_allclose(trial["best_error"], np.minimum.accumulate(trial["val_error"]))
    rs = load_experiment(tmp_path / "results" / "warmup-rs")
    assert len(rs.results) > 0 and rs.summary()["best_metric"] is not None


def test_the_readme_custom_blackbox_contract_catches_a_running_best_over_the_asked_fidelities(tmp_path: Path):
    """The section's claim: a running best computed over the fidelities asked for only fails the
    contract suite (pieces differ from the whole), while the example as written passes it."""
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## A custom blackbox end to end\n(.*?)^## ", text, re.S | re.M)
    assert section
    code = re.search(r"```python\n(# curves_demo\.py\n.*?)```", section.group(1), re.S)
    assert code
    namespace: dict = {"__name__": "curves_demo"}
    exec(compile(code.group(1), "curves_demo.py", "exec"), namespace)  # the definitions only
    from tunebench.testing.blackbox_contract import check_blackbox_contract

    good = namespace["WarmupCurves"]
    check_blackbox_contract(good)

    class RunningBestOfAskedFidelities(good):  # type: ignore[misc, valid-type]
        def _evaluate(self, configs, fidelity_index, seed):  # type: ignore[no-untyped-def]
            every = np.arange(len(self.fidelity_values))
            values = super()._evaluate(configs, every, seed)[:, fidelity_index, :].copy()
            values[:, :, 1] = np.minimum.accumulate(values[:, :, 0], axis=1)
            return values

    with pytest.raises(AssertionError, match="differ"):
        check_blackbox_contract(RunningBestOfAskedFidelities)


def test_the_readme_conditional_space_example_runs_and_its_file_form_is_the_same_space(tmp_path: Path):
    """The "Conditional search spaces" section's script and commands, run as written; its YAML
    block is the script's space."""
    from tunebench.space import load_space_file, space_to_json

    outputs = run_section_example("Conditional search spaces", "cond_train.py", tmp_path)
    exp = load_experiment(tmp_path / "cond-run")
    df = exp.results
    assert len(set(df["trial_id"])) == 12
    sgd = df["config_optimizer"] == "sgd"
    assert df.loc[sgd, "config_momentum"].notna().all() and df.loc[~sgd, "config_momentum"].isna().all()
    deep = df["config_n_layers"] >= 2
    assert df.loc[deep, "config_width_2"].notna().all() and df.loc[~deep, "config_width_2"].isna().all()
    assert "leaderboard" in outputs[1]
    for line in outputs[1].splitlines():  # only the active parameters are shown
        if "optimizer=adam" in line:
            assert "momentum=" not in line
        if "n_layers=1" in line:
            assert "width_2=" not in line
    section = re.search(r"^## Conditional search spaces\n(.*?)^## ", (REPO / "README.md").read_text(), re.S | re.M)
    assert section
    yaml_block = re.search(r"```yaml\n(.*?)```", section.group(1), re.S)
    assert yaml_block
    (tmp_path / "space.yaml").write_text(yaml_block.group(1))
    import importlib.util

    spec = importlib.util.spec_from_file_location("cond_train", tmp_path / "cond_train.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from_file = space_to_json(load_space_file(tmp_path / "space.yaml"))
    assert from_file == space_to_json(module.CONFIG_SPACE) and "when" in str(from_file)
