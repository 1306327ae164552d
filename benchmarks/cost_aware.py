"""Cost-aware search (``--cost-attr time``) against the plain methods, in the simulator.

For each benchmark, runs BO, cost-aware BO, MOBSTER and cost-aware MOBSTER with each seed (the
benchmark's workers and simulated-time budget; decision time not charged, so the figures do not
depend on this machine's speed) and prints the best value reached at 25%, 50% and 100% of the
budget: the IQM over seeds with its bootstrap 95% band (:mod:`tunebench.analysis.aggregate`).

The cost-aware variants use CArBO's cost cooling: ``cost_budget`` = workers x simulated seconds
(the cost is the elapsed training time, so that is what the run can spend), the exponent of
``EI / cost^alpha`` going from 1 to 0 as it is spent.  No default was tuned.

Benchmarks: ``branin-cost`` (synthetic Branin, per-epoch cost log-linear in ``x1`` from 1 to
30 s: its three minimizers cost 1.5, 6.3 and 26 s per epoch) and lcbench tasks outside the
development set (default 167184 and 189906; ``time`` varies with the config there too).

    TUNEBENCH_DATA=../shared/data python benchmarks/cost_aware.py [--benchmarks branin-cost lcbench-167184]
        [--seeds 10] [--parallel 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from tunebench.analysis import bootstrap_ci, iqm

FRACTIONS = (0.25, 0.5, 1.0)
#: name -> (method, cost-aware)
VARIANTS = {"BO": ("BO", False), "BO+cost": ("BO", True), "MOBSTER": ("MOBSTER", False),
            "MOBSTER+cost": ("MOBSTER", True)}
DEFAULT_BENCHMARKS = ["branin-cost", "lcbench-167184", "lcbench-189906"]


def run_one(benchmark: str, variant: str, seed: int, root: str) -> tuple[str, str, int, list[float], str]:
    """One simulated experiment: the best value (in the benchmark's mode) at each budget fraction."""
    from tunebench.launch import build_tuner, spec_from_benchmark
    from tunebench.store import load_experiment

    method, cost_aware = VARIANTS[variant]
    spec = spec_from_benchmark(benchmark)
    spec.method, spec.seed, spec.charge_decision_time = method, seed, False
    budget = float(spec.max_wallclock_time or 0.0)
    if cost_aware:
        spec.cost_attr = "time"
        spec.method_kwargs["cost_budget"] = spec.n_workers * budget
    folder = Path(root) / f"{benchmark}-{variant}-{seed}"
    build_tuner(spec, folder, command_line=[]).run()
    results = load_experiment(folder).results.sort_values("tuner_time")
    sign = 1.0 if spec.mode == "min" else -1.0
    best = np.minimum.accumulate(sign * results[spec.metric].to_numpy(dtype=float))
    times = results["tuner_time"].to_numpy(dtype=float)
    values = []
    for f in FRACTIONS:
        reached = times <= f * budget
        values.append(float(sign * best[reached][-1]) if reached.any() else float("nan"))
    return benchmark, variant, seed, values, spec.mode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", nargs="+", default=DEFAULT_BENCHMARKS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    jobs = [(b, v, s) for b in args.benchmarks for v in args.variants for s in range(args.seeds)]
    table: dict[tuple[str, str], list[list[float]]] = {}
    modes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_one, b, v, s, root) for b, v, s in jobs]
        for future in futures:
            benchmark, variant, _, values, mode = future.result()
            table.setdefault((benchmark, variant), []).append(values)
            modes[benchmark] = mode
    print(f"best value at 25/50/100% of the simulated budget: IQM over {args.seeds} seeds [bootstrap 95% band]")
    for benchmark in args.benchmarks:
        print(f"\n{benchmark} ({modes[benchmark]})")
        print(f"  {'method':<14}" + "".join(f"{f'{int(f * 100)}%':>26}" for f in FRACTIONS))
        for variant in args.variants:
            samples = np.asarray(table[(benchmark, variant)])
            center = iqm(samples, axis=0)
            lo, hi = bootstrap_ci(samples)
            cells = "".join(f"{f'{c:.4g} [{a:.4g}, {b:.4g}]':>26}" for c, a, b in zip(center, lo, hi, strict=True))
            print(f"  {variant:<14}{cells}")


if __name__ == "__main__":
    main()
