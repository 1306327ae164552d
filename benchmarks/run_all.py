"""Run the benchmark scripts under ``benchmarks/`` and keep their printed figures per release.

Every ``benchmarks/*.py`` is a benchmark, found by listing the folder, except the tools in
``NOT_BENCHMARKS`` (each with its reason). Each script runs in its own interpreter (the one running
this file); what it prints goes to the terminal and to ``benchmarks/results/<version>/<script>.txt``
(``<version>`` is ``tunebench.__version__``), under a header line naming the date, the machine (CPU
model and count), the Python version, the git commit and the script's arguments, so that
``git diff`` of that folder between two releases shows a regression in review. A script whose
optional parts are missing (Ray, the YAHPO data and onnxruntime) is not run: its file says why.

    python benchmarks/run_all.py                          # every benchmark, full size (make bench)
    python benchmarks/run_all.py --only scheduler_overhead import_time    # some of them
    python benchmarks/run_all.py --quick                  # smaller sizes, figures printed only
    python benchmarks/run_all.py --note "2 other test runs in parallel: noisy figures"
    python benchmarks/run_all.py --list                   # the scripts, what each needs

Exit status: 0 when every script that ran succeeded (skipped ones included), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tunebench

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

#: scripts of ``benchmarks/`` that measure nothing, and why they are not run
NOT_BENCHMARKS = {
    "run_all": "this runner",
    "make_mlp_tabular_table": "a tool: builds the mlp_tabular-tab table shipped in tunebench/blackboxes/data "
    "(minutes of real training), measures nothing",
    "train_ftpfn": "a tool: trains the learning-curve PFN whose weights ship in tunebench/models/weights "
    "(minutes to tens of minutes), measures nothing",
}


def _needs_module(name: str, extra: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if importlib.util.find_spec(name) is None:
            return f"the package {name} is not installed (pip install 'tunebench[{extra}]')"
        return None

    return check


def _needs_yahpo() -> str | None:
    missing = _needs_module("onnxruntime", "yahpo")()
    if missing:
        return missing
    # deferred: only this check needs the blackboxes (and numpy); --list and the others do not
    from tunebench.blackboxes.yahpo import yahpo_data_dir
    from tunebench.errors import UserError

    try:
        yahpo_data_dir()
    except UserError as e:
        return f"no YAHPO data: {e}"
    return None


@dataclass(frozen=True)
class Script:
    """How to run one benchmark script: what it needs, and its arguments for ``--quick``."""

    needs: tuple[Callable[[], str | None], ...] = ()
    quick_args: tuple[str, ...] = ()


#: what each script needs and its quick sizes; a script not listed here runs with no check and its defaults
SCRIPTS: dict[str, Script] = {
    "scheduler_overhead": Script(quick_args=("--trials", "200")),
    "import_time": Script(quick_args=("--runs", "5")),
    "pfn_inference_speed": Script(quick_args=("--contexts", "300", "--queries", "1000", "--repeats", "3")),
    "local_backend_throughput": Script(quick_args=("--trials", "30")),
    "tuner_throughput": Script(quick_args=("--trials", "30")),
    "trial_start_latency": Script(needs=(_needs_module("torch", "torch"),), quick_args=("--runs", "3")),
    # two runs of the tuner on a torch benchmark, 300 s each by default
    "warm_start_epochs": Script(needs=(_needs_module("torch", "torch"),), quick_args=("--seconds", "60")),
    # lcbench inside is skipped by the script itself (with its reason) without the data
    "simulator_throughput": Script(quick_args=("--trials", "2000", "--big-trials", "10000")),
    "model_decision_time": Script(quick_args=("--observations", "200", "--reports", "200")),
    "ftbo_decision_time": Script(quick_args=("--observations", "100", "300")),
    "analysis_load": Script(quick_args=("--seeds", "2")),
    "pareto_speed": Script(quick_args=("--n", "300", "--repeats", "3")),
    "method_quality": Script(needs=(_needs_yahpo,), quick_args=("--tasks", "3945", "--seeds", "2")),
    "cost_aware": Script(needs=(_needs_yahpo,), quick_args=("--benchmarks", "branin-cost", "--seeds", "2")),
    "ftbo_quality": Script(needs=(_needs_yahpo,),
                           quick_args=("--tasks", "3945", "7593", "--seeds", "1", "--methods", "FTBO-pfn", "ASHA",
                                       "--setting", "both", "--epochs", "200", "--time-budget", "1800")),
    "surrogate_quality": Script(needs=(_needs_yahpo,),
                                quick_args=("--tasks", "167184", "--seeds", "1", "--sizes", "100", "300")),
    "ray_backend": Script(needs=(_needs_module("ray", "ray"),),
                          quick_args=("--trials", "10", "--rounds", "2", "--repeats", "1")),
}


def discover() -> list[str]:
    """Names (file stems) of the benchmark scripts under ``benchmarks/``, sorted."""
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in NOT_BENCHMARKS)


def _git_commit() -> str:
    """Short commit of the working tree, with ``+dirty`` when files other than results differ."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!benchmarks/results"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return sha + ("+dirty" if status.strip() else "")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(script: str, args: list[str], commit: str) -> str:
    """The first line of a results file: what ran, when, where."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = " ".join([f"benchmarks/{script}.py", *args])
    return (f"# {cmd} | tunebench {tunebench.__version__} | {date} | {os.cpu_count()} CPUs ({_cpu_model()}) | "
            f"Python {platform.python_version()} | commit {commit}")


def run_script(script: str, args: list[str], timeout: float | None) -> tuple[int | None, str, float]:
    """Run one script in a fresh interpreter, echoing its output; (exit status or None on timeout,
    output, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(BENCH_DIR / f"{script}.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    assert proc.stdout is not None
    timed_out = False

    def kill() -> None:  # the script and its children (its own session): the reads below then end
        nonlocal timed_out
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill) if timeout is not None else None
    if timer is not None:
        timer.start()
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        rc = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
    return (None if timed_out else rc), "".join(lines), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="SCRIPT", help="run these scripts only (names, .py optional)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes for a quick check; figures printed, no results file unless --output")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"folder of the results files (default: {RESULTS_DIR.relative_to(ROOT)}/<version>)")
    parser.add_argument("--note", default="", help="a line added under each file's header (e.g. why figures are noisy)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds after which a script is killed")
    parser.add_argument("--list", action="store_true", help="list the scripts and what each needs, run nothing")
    args = parser.parse_args(argv)

    scripts = discover()
    if args.list:
        for name in scripts:
            reasons = [r for check in SCRIPTS.get(name, Script()).needs if (r := check())]
            print(f"{name}: {'skipped, ' + '; '.join(reasons) if reasons else 'runs'}")
        for name, why in NOT_BENCHMARKS.items():
            print(f"{name}: not run ({why})")
        return 0
    if args.only:
        wanted = [name.removesuffix(".py").removeprefix("benchmarks/") for name in args.only]
        unknown = [name for name in wanted if name not in scripts]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(scripts)}")
        scripts = wanted
    out_dir = args.output
    if out_dir is None and not args.quick:
        out_dir = RESULTS_DIR / tunebench.__version__
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    commit = _git_commit()
    failed: list[str] = []
    for name in scripts:
        spec = SCRIPTS.get(name, Script())
        script_args = list(spec.quick_args) if args.quick else []
        head = header(name, script_args, commit)
        print(f"\n=== {name} ===", flush=True)
        reasons = [r for check in spec.needs if (r := check())]
        if reasons:
            body = f"skipped: {'; '.join(reasons)}\n"
            print(body, end="")
        else:
            rc, output, seconds = run_script(name, script_args, args.timeout)
            status = (f"killed after the {args.timeout:g} s timeout" if rc is None
                      else f"exit status {rc}")
            body = output + f"# {status}, {seconds:.1f} s\n"
            if rc != 0:
                failed.append(name)
                print(f"{name}: {status}", file=sys.stderr)
        if out_dir is not None:
            note = f"# note: {args.note}\n" if args.note else ""
            (out_dir / f"{name}.txt").write_text(head + "\n" + note + body, encoding="utf-8")
    if out_dir is not None:
        print(f"\nresults in {out_dir}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
