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


def test_the_readme_ask_tell_example_runs_end_to_end(tmp_path: Path):
    """The "Ask/tell" section's ``asktell_demo.py`` and its commands, run as written."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"^## Ask/tell: drive any method from your own loop\n(.*?)^## ", text, re.S | re.M)
    assert match, "README.md has no '## Ask/tell: drive any method from your own loop' section"
    code = re.search(r"```python\n(# asktell_demo\.py\n.*?)```", match.group(1), re.S)
    commands = re.search(r"```bash\n(.*?)```", match.group(1), re.S)
    assert code and commands, "the section shows asktell_demo.py and the commands that run it"
    (tmp_path / "asktell_demo.py").write_text(code.group(1))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    outputs = []
    for line in commands.group(1).splitlines():
        argv = shlex.split(line, comments=True)
        assert argv[0] in ("python", "tunebench"), line
        prefix = [sys.executable] if argv[0] == "python" else [sys.executable, "-m", "tunebench"]
        out = subprocess.run([*prefix, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
        outputs.append(out.stdout)
    best = load_experiment(tmp_path / "results" / "asktell-demo").best_trial()
    assert best is not None and best.at_max_resource
    assert f"best: trial {best.trial_id} {best.config} val_error {best.value:.4f}" in outputs[0]
    assert "method ASHA-promotion, metric val_error (min)" in outputs[1] and "finished: closed" in outputs[1]
    assert abs(np.log10(best.config["lr"]) + 2.0) < 0.5, best
