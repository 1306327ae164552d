"""Constrained tuning on YAHPO lcbench in the simulator: CBO vs BO-penalty vs RS (issue 15).

The benchmarks ``lcbench-<task>-constrained`` of the ``constrained-lcbench`` preset: val_accuracy
(max) subject to ``time <= B``, where ``B`` is the median of ``time`` (cumulative training
seconds) at the last epoch over 1,000 random configurations of the task
(:data:`tunebench.benchmarks.builtin.LCBENCH_TIME_BOUNDS`), so the constraint cuts about half
the configs.  Every method runs on every task with every seed: the benchmark's 4 workers,
``--budget`` simulated seconds (default 7200, the preset's), ``max_t`` = the benchmark's 52 epochs,
decision time not charged (figures independent of the machine's load; a GP decision takes
milliseconds against minutes of simulated training).

Figure of a run: its best *feasible* ``val_accuracy`` (maximized), over the trials trained to
the last epoch (their final result is what a single-fidelity method observes, and its ``time``
is the training time the constraint bounds); read from the experiment's results DataFrame
(``tunebench.load_experiment(path).results``).  A run with no feasible finished trial counts as
NaN (left out of the IQM) and is reported.

Printed per task and method: the interquartile mean (IQM) over seeds with a bootstrap 95% band
(:func:`tunebench.analysis.iqm`, :func:`tunebench.analysis.bootstrap_ci`), the median, the share
of finished trials that were feasible, and the mean number of trials.

Target (issue 15): CBO's best feasible value >= BO-penalty's and >= RS's (IQM, 10 seeds).

Default tasks: the preset's three lcbench tasks, none a development task (3945, 7593, 34539,
126025, 126026, 126029, 146212, 167104: defaults are tuned on those only). With default
arguments (90 runs), about 10 minutes on 2 cores.

    TUNEBENCH_DATA=../shared/data python benchmarks/constrained_quality.py \\
        [--tasks 167149 168330 189906] [--seeds 10] [--budget 7200] [--parallel 2]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from tunebench.analysis import bootstrap_ci, iqm
from tunebench.benchmarks import get_benchmark
from tunebench.blackboxes.yahpo import development_tasks_among
from tunebench.experiments.presets import MO_LCBENCH_TASKS
from tunebench.types import Constraint

METHODS = ["CBO", "BO-penalty", "RS"]
DEFAULT_TASKS = list(MO_LCBENCH_TASKS)  # the tasks of the constrained-lcbench preset
METRIC, CONSTRAINED = "val_accuracy", "time"


def constraint_bound(task: str) -> float:
    """``B`` of ``lcbench-<task>-constrained``'s constraint ``time <= B`` (the median of ``time`` at the
    last epoch over random configs of the task: :data:`tunebench.benchmarks.builtin.LCBENCH_TIME_BOUNDS`)."""
    (constraint,) = (Constraint.parse(c) for c in get_benchmark(f"lcbench-{task}-constrained").constraints)
    assert constraint.metric == CONSTRAINED and constraint.op == "<="
    return constraint.bound


def run_one(task: str, method: str, seed: int, bound: float, budget: float,
            root: str) -> tuple[str, str, int, float, float, int, float]:
    """One simulated experiment; returns (task, method, seed, best feasible val_accuracy (NaN if
    none), feasible share of finished trials, trials, real seconds)."""
    from tunebench import load_experiment
    from tunebench.launch import build_tuner, spec_from_benchmark

    spec = spec_from_benchmark(f"lcbench-{task}-constrained")  # its constraint: time <= bound
    spec.method, spec.seed, spec.max_wallclock_time, spec.charge_decision_time = method, seed, budget, False
    path = Path(root) / f"{task}-{method}-{seed}"
    t0 = time.perf_counter()
    result = build_tuner(spec, path, command_line=[]).run()
    seconds = time.perf_counter() - t0
    df = load_experiment(path).results
    final = df[df[spec.resource_attr] >= spec.max_resource]
    feasible = final[final[CONSTRAINED] <= bound]
    best = float(feasible[METRIC].max()) if len(feasible) else math.nan
    share = len(feasible) / len(final) if len(final) else math.nan
    return task, method, seed, best, share, result.n_trials, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=7200.0, help="simulated seconds per run (the preset's)")
    parser.add_argument("--parallel", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    if not os.environ.get("TUNEBENCH_DATA"):
        raise SystemExit("set TUNEBENCH_DATA to the folder holding yahpo/ (e.g. ../shared/data)")
    dev = development_tasks_among(args.tasks)
    if dev:
        print(f"note: development task(s) {', '.join(dev)} among the tasks: not a held-out figure")

    t0 = time.perf_counter()
    bounds = {task: constraint_bound(task) for task in args.tasks}
    jobs = [(t, m, s) for t in args.tasks for m in args.methods for s in range(args.seeds)]
    print(f"{len(jobs)} runs ({len(args.tasks)} tasks x {len(args.methods)} methods x {args.seeds} seeds), "
          f"4 workers, {args.budget:g} simulated s, constraint {CONSTRAINED} <= B (median at the last epoch), "
          f"{args.parallel} processes")
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_one, t, m, s, bounds[t], args.budget, root) for t, m, s in jobs]
        rows = [f.result() for f in futures]

    best: dict[tuple[str, str], list[float]] = {}
    share: dict[tuple[str, str], list[float]] = {}
    trials: dict[tuple[str, str], list[int]] = {}
    for task, method, _seed, value, frac, n, _sec in rows:
        best.setdefault((task, method), []).append(value)
        share.setdefault((task, method), []).append(frac)
        trials.setdefault((task, method), []).append(n)

    width = max(len(m) for m in args.methods)
    print(f"\nbest feasible {METRIC} (max) after {args.budget:g} s: IQM over seeds [bootstrap 95% band], median; "
          "feasible share of finished trials; mean trials")
    iqms: dict[tuple[str, str], float] = {}
    for task in args.tasks:
        print(f"\nlcbench-{task}   B = {bounds[task]:.2f} s")
        for method in args.methods:
            values = np.asarray(best[(task, method)])
            ok = values[~np.isnan(values)]
            missing = len(values) - len(ok)
            center = float(iqm(ok)) if len(ok) else math.nan
            lo, hi = bootstrap_ci(ok) if len(ok) > 1 else (np.array(center), np.array(center))
            iqms[(task, method)] = center
            note = f"  ({missing} run(s) without a feasible finished trial)" if missing else ""
            print(f"  {method:<{width}}  IQM {center:7.3f} [{float(lo):7.3f}, {float(hi):7.3f}]  "
                  f"median {float(np.median(ok)) if len(ok) else math.nan:7.3f}  "
                  f"feasible {np.nanmean(share[(task, method)]):5.1%}  trials {np.mean(trials[(task, method)]):6.1f}"
                  f"{note}")

    if "CBO" in args.methods:
        print("\ntarget: CBO's IQM >= each other method's, per task")
        for other in (m for m in args.methods if m != "CBO"):
            wins = [t for t in args.tasks if iqms[(t, "CBO")] >= iqms[(t, other)]]
            print(f"  CBO >= {other}: {len(wins)}/{len(args.tasks)} tasks"
                  + (f" (not on {', '.join(t for t in args.tasks if t not in wins)})" if len(wins) < len(args.tasks)
                     else ""))
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
