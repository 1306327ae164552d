"""The tunebench command line: user errors are one clear line, run/show/list work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import QUADRATIC, write_script

from tunebench.cli import main


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["run", "--method", "NOPE"], "unknown method 'NOPE'; known methods: RS, Grid, ASHA"),
    (["run", "--benchmark", "nope"], "unknown benchmark 'nope'; known benchmarks: branin"),
    (["run", "--benchmark", "lcbench-1"], "unknown benchmark 'lcbench-1'; lcbench-<...> takes one of: 126025, 126026"),
    (["run", "--benchmark", "branni"], "unknown benchmark 'branni' (did you mean branin?)"),
    (["run", "--script", "missing.py", "--metric", "loss"], "training script 'missing.py' does not exist"),
    (["show", "."], "is not a tunebench experiment folder"),
    (["resume", "."], "is not a tunebench experiment folder"),
])
def test_user_errors_are_one_line_without_traceback(tmp_path, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_space_file_names_the_parameter(tmp_path, capsys):
    script = write_script(tmp_path, QUADRATIC)
    space = tmp_path / "space.yaml"
    space.write_text("x:\n  type: loguniform\n  low: 0\n  high: 1\n")
    assert main(["run", "--script", str(script), "--config-space", str(space), "--metric", "loss"]) == 2
    err = capsys.readouterr().err
    assert "'x'" in err and "loguniform" in err and "Traceback" not in err


def test_script_without_config_space_or_metric(tmp_path, capsys):
    script = write_script(tmp_path, QUADRATIC)
    assert main(["run", "--script", str(script), "--metric", "loss"]) == 2
    assert "defines no CONFIG_SPACE" in capsys.readouterr().err
    script2 = write_script(tmp_path, "from tunebench.space import uniform\nCONFIG_SPACE = {'x': uniform(0, 1)}\n",
                           name="s2.py")
    assert main(["run", "--script", str(script2)]) == 2
    assert "no metric given: pass --metric" in capsys.readouterr().err


def test_list_shows_methods_and_benchmarks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("RS", "Grid", "ASHA", "ASHA-promotion", "HB", "mlp_digits"):
        assert name in out


def test_run_a_script_with_a_yaml_space_then_show_json(tmp_path):
    script = write_script(tmp_path, QUADRATIC)
    space = tmp_path / "space.yaml"
    space.write_text("x: {type: uniform, low: -1, high: 1}\n")
    exp = tmp_path / "exp"
    run = cli("run", "--script", str(script), "--config-space", str(space), "--metric", "loss",
              "--resource-attr", "epoch", "--max-resource-attr", "epochs", "--max-resource", "9",
              "--method", "asha", "--n-workers", "2", "--max-trials", "6", "--experiment-dir", str(exp),
              "--no-progress")
    assert run.returncode == 0, run.stderr
    assert "best configuration:" in run.stdout and str(exp) in run.stdout
    show = cli("show", str(exp), "--json", "--csv", str(tmp_path / "r.csv"))
    assert show.returncode == 0, show.stderr
    summary = json.loads(show.stdout)
    assert summary["n_trials"] == 6 and summary["n_failed"] == 0 and summary["metric"] == "loss"
    assert summary["mode"] == "min" and set(summary["best_config"]) == {"x", "epochs"}
    assert summary["best_config"]["epochs"] == 9 and summary["method"] == "ASHA"
    assert isinstance(summary["best_metric"], float) and (tmp_path / "r.csv").stat().st_size > 0
    human = cli("show", str(exp))
    assert "best loss" in human.stdout
