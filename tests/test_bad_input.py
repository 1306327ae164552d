"""Every user mistake on the command line is one line ``tunebench: error: ...`` with exit status 2:
no traceback, no usage block, nothing on stdout that looks like a traceback (issue 13).

The table runs in-process (:func:`tunebench.cli.main`); only what needs the experiment grid's
worker processes runs them for real.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUADRATIC, write_script

from tunebench.cli import main

#: a script whose CONFIG_SPACE is no dict
BAD_SPACE = """
CONFIG_SPACE = 5
METRIC = "loss"
"""

#: a script whose METRIC is no string
BAD_METRIC = """
from tunebench.space import uniform
CONFIG_SPACE = {"x": uniform(0, 1)}
METRIC = 5
"""

#: a script whose MODE is neither min nor max
BAD_MODE = """
from tunebench.space import uniform
CONFIG_SPACE = {"x": uniform(0, 1)}
METRIC = "loss"
MODE = "best"
"""

B = ["--benchmark", "branin"]  # a simulated benchmark: cheap to resolve
TAB = ["tabulate", "--benchmark", "mlp_digits", "--num-configs", "1"]
EXP = ["experiment", "--benchmark", "branin", "--method", "RS", "--experiment-tag", "t"]

#: (argv, a fragment of the expected message); {script}, {bad_space}, {bad_metric}, {bad_mode}, {file},
#: {empty} and {root} are filled in by the test (a good script, bad scripts, a plain file, an empty folder,
#: the results root)
CASES: list[tuple[list[str], str]] = [
    # numbers: parsed by the option's type, refused when they make no sense there
    (["run", *B, "--seed", "-1"], "argument --seed: expected a number >= 0, got -1"),
    (["run", *B, "--seed", "1.5"], "argument --seed: expected a whole number, got '1.5'"),
    (["run", *B, "--seed", "abc"], "argument --seed: expected a whole number"),
    (["run", *B, "--metric-threshold", "nan"], "argument --metric-threshold: expected a finite number, got 'nan'"),
    (["run", *B, "--metric-threshold", "inf"], "argument --metric-threshold: expected a finite number"),
    (["run", *B, "--metric-threshold=-Infinity"], "argument --metric-threshold: expected a finite number"),
    (["run", *B, "--metric-threshold", "low"], "argument --metric-threshold: expected a number, got 'low'"),
    (["run", *B, "--max-wallclock-time", "0"], "argument --max-wallclock-time: expected a positive number"),
    (["run", *B, "--max-wallclock-time", "nan"], "argument --max-wallclock-time: expected a finite number"),
    (["run", *B, "--max-wallclock-time", "inf"], "argument --max-wallclock-time: expected a finite number"),
    (["run", *B, "--max-wallclock-time=-5"], "argument --max-wallclock-time: expected a positive number"),
    (["run", *B, "--trial-timeout", "-1"], "argument --trial-timeout: expected a positive number"),
    (["run", *B, "--trial-timeout", "NaN"], "argument --trial-timeout: expected a finite number"),
    (["run", *B, "--max-trials", "0"], "argument --max-trials: expected a number >= 1, got 0"),
    (["run", *B, "--max-trials", "2.5"], "argument --max-trials: expected a whole number"),
    (["run", *B, "--max-results", "-1"], "argument --max-results: expected a number >= 1"),
    (["run", *B, "--n-workers", "0"], "argument --n-workers: expected a number >= 1"),
    (["run", *B, "--max-resource", "0"], "argument --max-resource: expected a number >= 1"),
    (["run", *B, "--max-resource", "inf"], "argument --max-resource: expected a whole number"),
    (["run", *B, "--max-failures", "-1"], "argument --max-failures: expected a number >= 0"),
    (["run", *B, "--gpus-per-trial", "-1"], "argument --gpus-per-trial: expected a number >= 0"),
    (["run", *B, "--cpus-per-trial", "0"], "argument --cpus-per-trial: expected a number >= 1"),
    (["run", *B, "--max-retries", "-2"], "argument --max-retries: expected a number >= 0"),
    # no abbreviations of long options
    (["run", *B, "--max-wall", "5"], "unrecognized arguments: --max-wall 5"),
    (["run", *B, "--max-tri", "5"], "unrecognized arguments: --max-tri 5"),
    (["run", "--bench", "branin"], "unrecognized arguments: --bench branin"),
    (["run", *B, "--meth", "RS"], "unrecognized arguments: --meth RS"),
    (["list", "--method"], "unrecognized arguments: --method"),
    (["experiment", "--bench", "branin"], "unrecognized arguments: --bench branin"),
    (["resume", "{empty}", "--max-wall", "5"], "unrecognized arguments: --max-wall 5"),
    # other argparse mistakes: one line too
    (["run", *B, "--mode", "best"], "argument --mode: invalid choice: 'best'"),
    (["run", *B, "--backend", "gpu"], "argument --backend: invalid choice: 'gpu'"),
    (["run", *B, "--seed"], "argument --seed: expected one argument"),
    (["show"], "the following arguments are required: path"),
    (["nope"], "invalid choice: 'nope'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["tabulate", "--num-configs", "1"], "the following arguments are required: --benchmark"),
    # method options: parsed once, checked by the method
    (["run", *B, "--method-arg", "reduction_factor=abc"], "reduction_factor must be a number >= 2, got 'abc'"),
    (["run", *B, "--method-arg", "reduction_factor=NaN"], "--method-arg reduction_factor=NaN: NaN is not a finite"),
    (["run", *B, "--method-arg", "grace_period=Infinity"], "Infinity is not a finite number"),
    (["run", *B, "--method-arg", "grace_period=0"], "grace_period"),
    (["run", *B, "--method-arg", "max_t=3"], "--method-arg max_t=...: max_t is no method option; pass --max-resource"),
    (["run", *B, "--method-arg", "seed=3"], "seed is no method option; pass --seed"),
    (["run", *B, "--method-arg", "metric=loss"], "metric is no method option; pass --metric"),
    (["run", *B, "--method-arg", "noequals"], "--method-arg expects KEY=VALUE, got 'noequals'"),
    (["run", *B, "--method-arg", "=3"], "--method-arg expects KEY=VALUE"),
    (["run", *B, "--method-arg", "bogus=1"], "method 'ASHA' does not take option(s) bogus"),
    (["run", *B, "--method-arg", "points_to_evaluate=5"], "cannot use the option(s) points_to_evaluate=5"),
    (["run", *B, "--method", "BO", "--method-arg", "num_init_random=-3"], "num_init_random must be an integer >= 0"),
    (["run", *B, "--method", "BOHB", "--method-arg", "bandwidth_factor=abc"], "bandwidth_factor='abc'"),
    (["run", *B, "--method", "NOPE"], "unknown method 'NOPE'"),
    # what to tune
    (["run", "--benchmark", "nope"], "unknown benchmark 'nope'"),
    (["run", "--script", "{missing}"], "does not exist"),
    (["run", "--script", "{bad_space}"], "a config space must be a dict name -> domain or constant, got int"),
    (["run", "--script", "{bad_metric}"], "METRIC of"),
    (["run", "--script", "{bad_mode}"], "--mode must be 'min' or 'max', got 'best'"),
    (["run", "--script", "{script}", "--metric", "loss", *B], "give either --script or --benchmark, not both"),
    (["run", *B, "--preload", "torch vision"], "--preload torch vision: not a module name"),
    (["run", "--benchmark", "zdt1", "--metric", "f1", "f2"], "method 'ASHA' optimizes one metric, got 2 (f1, f2)"),
    (["run", "--benchmark", "zdt1", "--metric", "f1", "f2", "--mode", "min", "min", "max"],
     "2 metrics (f1, f2) but 3 modes"),
    (["run", *B, "--config-space", "space.yaml"], "--config-space goes with --script"),
    (["run", *B, "--max-resource", "1000"], "pass --max-resource within that range"),
    (["run", *B, "--metric", "nope"], "branin has no objective 'nope'"),
    (["run", *B, "--benchmark-arg", "nokey"], "--benchmark-arg expects KEY=VALUE"),
    (["run", *B, "--benchmark-arg", "max_wallclock_time=NaN"], "NaN is not a finite number"),
    (["run", *B, "--ray-address", "localhost:1"], "--ray-address goes with --backend ray"),
    # resume, show
    (["resume", "{empty}"], "is not a tunebench experiment folder"),
    (["resume", "{empty}", "--metric-threshold", "nan"], "argument --metric-threshold: expected a finite number"),
    (["resume", "{empty}", "--trial-timeout", "0"], "argument --trial-timeout: expected a positive number"),
    (["show", "{empty}"], "is not a tunebench experiment folder"),
    # experiment grids
    ([*EXP, "--results-root", "{file}"], "the results root {file} is not a folder"),
    ([*EXP, "--results-root", "{file}/below"], "is under {file}, which is not a folder"),
    ([*EXP, "--num-seeds", "0"], "argument --num-seeds: expected a number >= 1"),
    ([*EXP, "--start-seed", "-1"], "argument --start-seed: expected a number >= 0"),
    ([*EXP, "--max-wallclock-time", "nan"], "argument --max-wallclock-time: expected a finite number"),
    ([*EXP, "--parallel", "0"], "argument --parallel: expected a number >= 1"),
    ([*EXP, "--max-failures", "-1"], "argument --max-failures: expected a number >= 0"),
    ([*EXP, "--max-wall", "5"], "unrecognized arguments: --max-wall 5"),
    ([*EXP, "--method-arg", "RS:max_t=3"], "max_t is no method option; pass --max-resource"),
    ([*EXP, "--method-arg", "RS:bogus=NaN"], "NaN is not a finite number"),
    (["experiment", *B, "--method", "ASHA", "--method-arg", "reduction_factor=abc", "--experiment-tag", "t"],
     "reduction_factor must be a number >= 2"),
    ([*EXP, "--method-group", "baselines"], "give either --method or --method-group, not both"),
    (["experiment", *B, "--experiment-tag", "../x"], "is not a plain folder name"),
    # tabulate: refused before anything trains
    ([*TAB[:3], "--num-configs", "-1"], "argument --num-configs: expected a number >= 0"),
    ([*TAB, "--seeds", "0"], "argument --seeds: expected a number >= 1"),
    ([*TAB, "--seed", "-1"], "argument --seed: expected a number >= 0"),
    ([*TAB, "--max-wallclock-time", "nan"], "argument --max-wallclock-time: expected a finite number"),
    ([*TAB, "--max-wallclock-time", "-1"], "argument --max-wallclock-time: expected a positive number"),
    ([*TAB, "--trial-timeout", "0"], "argument --trial-timeout: expected a positive number"),
    ([*TAB, "--config", "lr=0.1"], "--config 1: not JSON"),
    ([*TAB, "--config", "[1]"], "--config 1: expected a JSON object"),
    ([*TAB, "--num-conf", "3"], "unrecognized arguments: --num-conf 3"),
    # analysis
    (["report", "--experiment-tag", "../x"], "is not a plain folder name"),
    (["plot", "--experiment-tag", "nope"], "no experiment tag 'nope'"),
]


@pytest.fixture
def places(tmp_path, monkeypatch) -> dict[str, str]:
    """What the placeholders of :data:`CASES` name; the working directory and the results root
    are in ``tmp_path`` (nothing is written elsewhere, should a case be accepted)."""
    root = tmp_path / "results"
    root.mkdir()
    monkeypatch.setenv("TUNEBENCH_RESULTS", str(root))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("not a folder\n")
    return {
        "script": str(write_script(tmp_path, QUADRATIC)),
        "bad_space": str(write_script(tmp_path, BAD_SPACE, "bad_space.py")),
        "bad_metric": str(write_script(tmp_path, BAD_METRIC, "bad_metric.py")),
        "bad_mode": str(write_script(tmp_path, BAD_MODE, "bad_mode.py")),
        "missing": str(tmp_path / "missing.py"),
        "file": str(tmp_path / "a-file"),
        "empty": str(tmp_path / "empty"),
        "root": str(root),
    }


def assert_one_line_error(rc: int | None, out: str, err: str, message: str) -> None:
    """Exit status 2, exactly one line on stderr (``tunebench: error: ...`` with ``message`` in it),
    and nothing that looks like a traceback on either stream."""
    assert rc == 2, (rc, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tunebench: error: "), err
    assert message in lines[0], err
    for text in (out, err):
        assert "Traceback" not in text and 'File "' not in text, text


def test_the_table_holds_sixty_distinct_mistakes():
    assert len(CASES) >= 60
    assert len({tuple(argv) for argv, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_a_mistake_is_one_line_and_exit_2(places, capsys, argv, message):
    argv = [a.format(**places) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's error ends the process (with our one line printed)
        rc = e.code
    out, err = capsys.readouterr()
    assert_one_line_error(rc, out, err, message.format(**places))


@pytest.mark.parametrize("argv, message", [
    (["run", "--benchmark", "branin", "--max-wall", "5"], "unrecognized arguments: --max-wall 5"),
    (["run", "--benchmark", "branin", "--seed", "-1"], "argument --seed: expected a number >= 0"),
    (["experiment", "--benchmark", "branin", "--method", "RS", "--experiment-tag", "t", "--results-root", "{file}"],
     "is not a folder"),
])
def test_the_command_prints_one_line_and_exits_2(places, argv, message):
    """The same through the installed entry point (``python -m tunebench``), in a process of its own."""
    argv = [a.format(**places) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "tunebench", *argv], capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, message.format(**places))


def test_a_worker_that_cannot_create_its_experiment_folder_says_so(tmp_path):
    """The results root becomes a file between planning and running: the grid's worker process
    reports the folder it cannot create (it used to die by SIGABRT and name an error.log that
    cannot exist), and the grid goes on."""
    from tunebench.experiments.grid import GridRequest, plan_grid, run_grid

    root = tmp_path / "results"
    jobs = plan_grid(GridRequest(benchmarks=["branin"], methods=["RS"], seeds=[0], tag="t", results_root=root,
                                 max_trials=2))
    assert [j.action for j in jobs] == ["start"]
    root.write_text("now a file\n")
    result = run_grid(jobs, parallel=1, tag="t")
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert "cannot create the experiment folder" in outcome.reason and str(jobs[0].path) in outcome.reason
    assert "signal" not in outcome.reason
    assert not result.ok


def test_check_results_root_accepts_a_folder_to_be_made(tmp_path):
    from tunebench.experiments.grid import check_results_root

    assert check_results_root(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_results_root(tmp_path) == tmp_path
    assert not (tmp_path / "new").exists()  # nothing created: a dry run writes nothing


def test_tabulate_without_a_parquet_writer_refuses_before_training(tmp_path, capsys, monkeypatch):
    """A base install (no pyarrow) learns it before any configuration trains, not after."""
    from tunebench.tabulate import PARQUET_ENGINES

    for engine in PARQUET_ENGINES:
        monkeypatch.setitem(sys.modules, engine, None)  # `import pyarrow` raises ImportError
    out = tmp_path / "table"
    rc = main(["tabulate", "--benchmark", "mlp_tabular", "--num-configs", "1", "--max-resource", "1",
               "--output", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert_one_line_error(rc, captured.out, captured.err, "pip install 'tunebench[parquet]'")
    assert not out.exists(), "nothing ran: no folder of runs"


def test_the_all_extra_holds_every_optional_feature():
    """``pip install 'tunebench[all]'``: every extra but the development tools, at their own pins."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    (entry,) = extras["all"]
    assert entry.startswith("tunebench[") and entry.endswith("]")
    assert set(entry[len("tunebench["):-1].split(",")) == set(extras) - {"all", "dev"}
    assert "torch==2.13.0" in extras["torch"]
    assert project["license"] == "Apache-2.0", "the SPDX form (the table form floods installs with warnings)"
