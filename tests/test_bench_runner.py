"""benchmarks/run_all.py (make bench): every benchmark script is run, and its figures are kept per
release with a header naming the version, the machine and the commit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tunebench

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
RUNNER = BENCH / "run_all.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNNER), *args], capture_output=True, text=True, timeout=300)


def test_list_names_every_script_of_the_folder():
    out = _run("--list")
    assert out.returncode == 0, out.stderr
    listed = {line.split(":", 1)[0] for line in out.stdout.splitlines() if line.strip()}
    scripts = {p.stem for p in BENCH.glob("*.py")}
    assert listed == scripts
    not_run = {line.split(":", 1)[0] for line in out.stdout.splitlines() if ": not run (" in line}
    # only the runner and tools are left out; every measuring script runs (or says why it cannot)
    assert not_run == {"run_all", "make_mlp_tabular_table", "train_ftpfn"}


def test_one_script_writes_its_figures_under_the_version(tmp_path):
    out = _run("--only", "import_time", "--quick", "--output", str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    text = (tmp_path / "import_time.txt").read_text()
    header = text.splitlines()[0]
    assert header.startswith("# benchmarks/import_time.py --runs 5 | ")  # the script, with its quick arguments
    assert f"| tunebench {tunebench.__version__} |" in header
    assert "commit" in header and "Python" in header
    assert "import cost" in text  # the script's own figures follow the header


def test_unknown_script_is_refused_with_the_known_ones():
    out = _run("--only", "no_such_bench")
    assert out.returncode == 2
    assert "unknown benchmark(s) no_such_bench" in out.stderr and "scheduler_overhead" in out.stderr
