"""Multi-objective methods on the synthetic fronts: hypervolume of the front found, relative to
the true front's.

Runs each method (default NSGA2, MOREA, MOASHA, RS) on the simulated benchmarks ``zdt1`` (6
hyperparameters, objectives f1, f2) and ``dtlz2`` (5 hyperparameters, f1, f2, f3) with each seed
(4 workers, the benchmark's 27 epochs and 1..10 simulated s per epoch, decision time charged to
the simulated clock), in parallel processes, for ``--budget`` simulated seconds, and prints the
interquartile mean (IQM) over seeds of

    relative hypervolume = HV(front of the run's results) / HV(true front)

with its bootstrap 95% band, and the mean number of trials. A run's results: each trial's last
reported objectives (at the last epoch for a trial that ran to its end: exactly the problem's
function there; lower epochs for trials MOASHA stopped, whose values are above the function's).
The reference point is the nadir of the true front plus 10% of its range, ``(1.1, ..., 1.1)``
(every objective is in [0, 1] on the front); the true front's hypervolume is exact
(:meth:`~tunebench.blackboxes.synthetic_mo.SyntheticMOBlackbox.front_hypervolume`).

Target (issue 15): NSGA2's front within 5% of the true front's hypervolume (relative
hypervolume >= 0.95) within the budget.

    TUNEBENCH_DATA=../shared/data python benchmarks/mo_synthetic.py \\
        [--methods NSGA2 MOREA MOASHA RS] [--benchmarks zdt1 dtlz2] [--seeds 10] [--budget 21600] \\
        [--method-arg NSGA2:population_size=30] [--parallel 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.analysis import bootstrap_ci, iqm

DEFAULT_METHODS = ["NSGA2", "MOREA", "MOASHA", "RS"]
DEFAULT_BENCHMARKS = ["zdt1", "dtlz2"]
OBJECTIVES = {"zdt1": ["f1", "f2"], "zdt2": ["f1", "f2"], "dtlz2": ["f1", "f2", "f3"]}
TARGET = 0.95
#: the reference point: the front's nadir (1, ..., 1) plus 10% of its range
REFERENCE = 1.1


def relative_hypervolume(benchmark: str, values: np.ndarray) -> float:
    """HV of ``values`` (``(n, d)``, every objective minimized) over HV of ``benchmark``'s true front."""
    from tunebench.blackboxes.registry import load_blackbox
    from tunebench.pareto import hypervolume

    blackbox = load_blackbox(benchmark, None)
    ref = np.full(len(OBJECTIVES[benchmark]), REFERENCE)
    return hypervolume(values, ref) / blackbox.front_hypervolume(ref)  # type: ignore[attr-defined]


def run_one(benchmark: str, method: str, seed: int, budget: float, options: dict[str, Any],
            root: str) -> tuple[str, str, int, float, int, float]:
    """One simulated experiment; returns (benchmark, method, seed, relative HV, trials, real seconds)."""
    from tunebench.launch import build_tuner, spec_from_benchmark
    from tunebench.schedulers import get_method
    from tunebench.store import load_experiment

    spec = spec_from_benchmark(benchmark)
    metrics = OBJECTIVES[benchmark]
    # a single-objective method (RS: blind to the metric anyway) is given the first; the simulator
    # reports every objective of the benchmark all the same
    spec.metric = metrics if get_method(method).multi_objective else metrics[0]
    spec.method, spec.seed, spec.mode = method, seed, "min"
    spec.max_wallclock_time, spec.method_kwargs = budget, dict(options)
    path = Path(root) / f"{benchmark}-{method}-{seed}"
    t0 = time.perf_counter()
    result = build_tuner(spec, path, command_line=[]).run()
    seconds = time.perf_counter() - t0
    last = load_experiment(path).results.groupby("trial_id").last()
    ratio = relative_hypervolume(benchmark, last[metrics].to_numpy(dtype=np.float64))
    return benchmark, method, seed, ratio, result.n_trials, seconds


def _method_args(items: list[str]) -> dict[str, dict[str, Any]]:
    """``METHOD:NAME=VALUE`` (VALUE as JSON, else a string) -> {method: {name: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        method, _, assignment = item.partition(":")
        name, _, text = assignment.partition("=")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out.setdefault(method, {})[name] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--benchmarks", nargs="+", default=DEFAULT_BENCHMARKS, choices=sorted(OBJECTIVES))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=21600.0, help="simulated seconds per run")
    parser.add_argument("--method-arg", action="append", default=[], metavar="METHOD:NAME=VALUE",
                        help="an option of a method (VALUE as JSON), e.g. NSGA2:population_size=30")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    options = _method_args(args.method_arg)

    jobs = [(b, m, s) for b in args.benchmarks for m in args.methods for s in range(args.seeds)]
    print(f"{len(jobs)} experiments ({len(args.methods)} methods x {len(args.benchmarks)} benchmarks x "
          f"{args.seeds} seeds), {args.parallel} at once; 4 workers, {args.budget:g} simulated s each; "
          f"options {options or 'default'}\n", flush=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_one, b, m, s, args.budget, options.get(m, {}), root) for b, m, s in jobs]
        runs = [f.result() for f in futures]

    print(f"\nhypervolume of the front found / the true front's (higher is better, 1 = the true front; "
          f"reference point {REFERENCE} in every objective; IQM over {args.seeds} seeds)")
    print(f"{'benchmark':<10}{'method':<10}{'IQM':>8}{'95% CI':>18}{'min':>8}{'trials':>8}{'real s':>8}")
    scores: dict[tuple[str, str], float] = {}
    for b in args.benchmarks:
        for m in args.methods:
            rows = [r for r in runs if r[0] == b and r[1] == m]
            x = np.array([r[3] for r in rows])
            lo, hi = bootstrap_ci(x)
            scores[(b, m)] = float(iqm(x))
            print(f"{b:<10}{m:<10}{scores[(b, m)]:>8.4f}   [{float(lo):6.4f}, {float(hi):6.4f}]{x.min():>8.4f}"
                  f"{np.mean([r[4] for r in rows]):>8.0f}{np.mean([r[5] for r in rows]):>8.1f}")
    print("targets:")
    for b in args.benchmarks:
        if (b, "NSGA2") in scores:
            ok = scores[(b, "NSGA2")] >= TARGET
            print(f"  {b}: NSGA2 within 5% of the true front's hypervolume: {'yes' if ok else 'NO'} "
                  f"({scores[(b, 'NSGA2')]:.4f} >= {TARGET})")
        if (b, "NSGA2") in scores and (b, "RS") in scores:
            ok = scores[(b, "NSGA2")] > scores[(b, "RS")]
            print(f"  {b}: NSGA2 > RS: {'yes' if ok else 'NO'} ({scores[(b, 'NSGA2')]:.4f} vs {scores[(b, 'RS')]:.4f})")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
