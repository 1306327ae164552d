"""Conditional vs flattened spaces on YAHPO lcbench in the simulator: BO and BOHB (issue 18).

``lcbench-<task>-cond`` and ``lcbench-<task>-flat`` are the same problem
(:mod:`tunebench.blackboxes.switched`): lcbench's momentum behind an ``optimizer`` switch (``sgd``:
momentum 0.1, its lower bound; ``momentum``: as chosen) and its max_dropout behind a ``dropout``
switch (``no``: 0; ``yes``: as chosen). The conditional space declares ``momentum`` only when
``optimizer == "momentum"`` and ``max_dropout`` only when ``dropout == "yes"``; the flattened space
has both always (sampled, modelled and tuned even when they do nothing), as a user without
conditions would write it. A synthetic but honest test: both spaces reach exactly the same
configurations.

Every method runs on both spaces of every task with every seed: the benchmark's 4 workers,
``--budget`` simulated seconds (default 7200), decision time not charged. Figure of a run: the
best ``val_accuracy`` (max) of the trials trained to the last epoch, and the anytime best at 25%
and 50% of the budget (any epoch; read from the results table). Printed per method: IQM over
tasks x seeds of the regret to the best value any run found on the task, with a bootstrap 95%
band, per space, and the per-task IQM of the final value.

Target (issue 18): BO and BOHB with conditions are at least as good as with the flattened space
(IQM over 10 seeds). Default tasks: five lcbench tasks, none a development task (3945, 7593,
34539, 126025, 126026, 126029, 146212, 167104).

    TUNEBENCH_DATA=../shared/data python benchmarks/conditional_quality.py \\
        [--tasks 167149 167152 168330 189906 189909] [--seeds 10] [--budget 7200] [--parallel 2]
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
from tunebench.blackboxes.yahpo import development_tasks_among

METHODS = ["BO", "BOHB"]
SPACES = ("cond", "flat")
DEFAULT_TASKS = ["167149", "167152", "168330", "189906", "189909"]
METRIC = "val_accuracy"
FRACTIONS = (0.25, 0.5, 1.0)


def run_one(task: str, space: str, method: str, seed: int, budget: float, root: str) -> tuple[str, str, str, int,
                                                                                               list[float], float]:
    """One simulated experiment: (task, space, method, seed, best val_accuracy at each fraction of
    the budget (the last one: over trials at the last epoch), real seconds)."""
    from tunebench import load_experiment
    from tunebench.launch import build_tuner, spec_from_benchmark

    spec = spec_from_benchmark(f"lcbench-{task}-{space}")
    spec.method, spec.seed, spec.max_wallclock_time, spec.charge_decision_time = method, seed, budget, False
    path = Path(root) / f"{task}-{space}-{method}-{seed}"
    t0 = time.perf_counter()
    build_tuner(spec, path, command_line=[]).run()
    seconds = time.perf_counter() - t0
    df = load_experiment(path).results
    values = []
    for fraction in FRACTIONS[:-1]:
        early = df[df["tuner_time"] <= fraction * budget]
        values.append(float(early[METRIC].max()) if len(early) else math.nan)
    final = df[df[spec.resource_attr] >= spec.max_resource]
    values.append(float(final[METRIC].max()) if len(final) else math.nan)
    return task, space, method, seed, values, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=7200.0, help="simulated seconds per run")
    parser.add_argument("--parallel", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    if not os.environ.get("TUNEBENCH_DATA"):
        raise SystemExit("set TUNEBENCH_DATA to the folder holding yahpo/ (e.g. ../shared/data)")
    dev = development_tasks_among(args.tasks)
    if dev:
        print(f"note: development task(s) {', '.join(dev)} among the tasks: not a held-out figure")

    t0 = time.perf_counter()
    jobs = [(t, sp, m, s) for t in args.tasks for sp in SPACES for m in args.methods for s in range(args.seeds)]
    print(f"{len(jobs)} runs ({len(args.tasks)} tasks x 2 spaces x {len(args.methods)} methods x {args.seeds} "
          f"seeds), 4 workers, {args.budget:g} simulated s, {args.parallel} processes")
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_one, t, sp, m, s, args.budget, root) for t, sp, m, s in jobs]
        rows = [f.result() for f in futures]

    values: dict[tuple[str, str, str], list[list[float]]] = {}
    for task, space, method, _seed, vals, _sec in rows:
        values.setdefault((task, space, method), []).append(vals)
    # the best value any run found on a task (at the end): the reference of the regret
    best = {t: max(max(v[-1] for v in values[(t, sp, m)] if not math.isnan(v[-1]))
                   for sp in SPACES for m in args.methods) for t in args.tasks}

    print(f"\nregret of {METRIC} (best found on the task minus the run's best), IQM over tasks x seeds "
          "[bootstrap 95% band]; lower is better")
    header = "  ".join(f"{int(f * 100):>3}% of the budget{'':>12}" for f in FRACTIONS)
    print(f"  {'method':<6} {'space':<5}  {header}")
    summary: dict[tuple[str, str], list[float]] = {}
    for method in args.methods:
        for space in SPACES:
            cells = []
            for i, _fraction in enumerate(FRACTIONS):
                regrets = np.array([best[t] - v[i] for t in args.tasks for v in values[(t, space, method)]
                                    if not math.isnan(v[i])])
                center = float(iqm(regrets))
                lo, hi = bootstrap_ci(regrets)
                summary.setdefault((method, space), []).append(center)
                cells.append(f"{center:7.3f} [{float(lo):6.3f}, {float(hi):6.3f}]")
            print(f"  {method:<6} {space:<5}  " + "  ".join(f"{c:<29}" for c in cells))

    print(f"\nfinal best {METRIC} per task, IQM over seeds (cond / flat)")
    for task in args.tasks:
        parts = []
        for method in args.methods:
            a, b = (float(iqm(np.array([v[-1] for v in values[(task, sp, method)]]))) for sp in SPACES)
            parts.append(f"{method} {a:6.2f} / {b:6.2f}")
        print(f"  lcbench-{task}: " + "   ".join(parts))

    print("\ntarget: with conditions at least as good as flattened (final regret IQM, lower is better)")
    for method in args.methods:
        cond, flat = summary[(method, "cond")][-1], summary[(method, "flat")][-1]
        print(f"  {method}: cond {cond:.3f} vs flat {flat:.3f} -> {'met' if cond <= flat else 'NOT met'}"
              f" (ratio flat/cond {flat / cond if cond > 0 else math.inf:.2f})")
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
