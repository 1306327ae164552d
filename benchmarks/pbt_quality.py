"""Population-based training in the simulator: PBT and PB2 against ASHA and RS (issue 17).

Every method runs on every benchmark with every seed, with the benchmark's own workers and
budget (``--budget`` overrides the simulated seconds) and decision time not charged (figures
independent of the machine's load). PBT and PB2 run with a population of ``--population``
(default 16) and their default interval (``max_t / 10``: 5 of lcbench's 52 epochs); ASHA and RS
with their defaults.

Figure of a run: its best value of the metric among the results at the benchmark's last
resource (a model trained to the end, what one would deploy; PBT's population trains all its
members there), read from the experiment's results DataFrame. Printed per benchmark and method:
the interquartile mean (IQM) over seeds with a bootstrap 95% band
(:func:`tunebench.analysis.iqm`, :func:`tunebench.analysis.bootstrap_ci`), the median and the
mean number of trials; then the ratio of the IQMs PBT/ASHA and PB2/ASHA (above 1 is better for a
metric to maximize, below 1 for one to minimize; the script says which).

Targets (issue 17): PBT beats ASHA's final value on the synthetic schedule benchmark
(``pbt-schedule``, whose best learning rate changes with the epoch) and matches it on lcbench.

Default benchmarks: ``pbt-schedule`` (skipped with a note when it is not registered) and lcbench
tasks 167149 and 168330, which are not development tasks (3945, 7593, 34539, 126025, 126026,
126029, 146212, 167104: defaults are tuned on those only).

    TUNEBENCH_DATA=../shared/data python benchmarks/pbt_quality.py \\
        [--benchmarks pbt-schedule lcbench-167149 lcbench-168330] [--methods PBT PB2 ASHA RS] \\
        [--seeds 10] [--budget SECONDS] [--population 16] [--parallel 2]
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
from tunebench.errors import UserError

METHODS = ["PBT", "PB2", "ASHA", "RS"]
DEFAULT_BENCHMARKS = ["pbt-schedule", "lcbench-167149", "lcbench-168330"]
POPULATION_METHODS = ("PBT", "PB2")


def run_one(benchmark: str, method: str, seed: int, budget: float | None, population: int,
            root: str) -> tuple[str, str, int, float, int, int, str]:
    """One simulated experiment; returns (benchmark, method, seed, final value (NaN if no trial
    reached the last resource), trials, exploits, mode)."""
    import json

    from tunebench import load_experiment
    from tunebench.launch import build_tuner, spec_from_benchmark

    spec = spec_from_benchmark(benchmark)
    spec.method, spec.seed, spec.charge_decision_time = method, seed, False
    if method in POPULATION_METHODS:
        spec.method_kwargs = {**spec.method_kwargs, "population_size": population}
    if budget is not None:
        spec.max_wallclock_time = budget
    path = Path(root) / f"{benchmark}-{method}-{seed}"
    result = build_tuner(spec, path, command_line=[]).run()
    df = load_experiment(path).results
    mode = spec.mode if isinstance(spec.mode, str) else spec.mode[0]
    metric = spec.metric if isinstance(spec.metric, str) else spec.metric[0]
    final = df[df[spec.resource_attr] >= spec.max_resource][metric]
    value = math.nan if final.empty else float(final.max() if mode == "max" else final.min())
    exploits = sum(1 for line in (path / "events.jsonl").read_text().splitlines() if '"exploit"' in line
                   and json.loads(line).get("exploit"))
    return benchmark, method, seed, value, result.n_trials, exploits, mode


def _known(names: list[str]) -> list[str]:
    known = []
    for name in names:
        try:
            get_benchmark(name)
        except UserError:
            print(f"note: benchmark {name} is not registered here: skipped")
            continue
        task = name.split("-")[1] if name.startswith("lcbench-") else None
        if task is not None and development_tasks_among([task]):
            print(f"note: {name} is a development task: not a held-out figure")
        known.append(name)
    return known


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", nargs="+", default=DEFAULT_BENCHMARKS)
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, help="simulated seconds per run (default: the benchmark's)")
    parser.add_argument("--population", type=int, default=16, help="population size of PBT and PB2")
    parser.add_argument("--parallel", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    if not os.environ.get("TUNEBENCH_DATA"):
        raise SystemExit("set TUNEBENCH_DATA to the folder holding yahpo/ (e.g. ../shared/data)")
    benchmarks = _known(args.benchmarks)

    t0 = time.perf_counter()
    jobs = [(b, m, s) for b in benchmarks for m in args.methods for s in range(args.seeds)]
    print(f"{len(jobs)} runs ({len(benchmarks)} benchmarks x {len(args.methods)} methods x {args.seeds} seeds), "
          f"budget {'the benchmark' + chr(39) + 's' if args.budget is None else f'{args.budget:g} simulated s'}, "
          f"population {args.population}, {args.parallel} processes")
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_one, b, m, s, args.budget, args.population, root) for b, m, s in jobs]
        rows = [f.result() for f in futures]

    values: dict[tuple[str, str], list[float]] = {}
    trials: dict[tuple[str, str], list[int]] = {}
    exploits: dict[tuple[str, str], list[int]] = {}
    modes: dict[str, str] = {}
    for bench, method, _seed, value, n, n_exploits, mode in rows:
        values.setdefault((bench, method), []).append(value)
        trials.setdefault((bench, method), []).append(n)
        exploits.setdefault((bench, method), []).append(n_exploits)
        modes[bench] = mode

    width = max(len(m) for m in args.methods)
    print("\nfinal value (best at the last resource): IQM over seeds [bootstrap 95% band], median; mean trials, "
          "mean exploits")
    iqms: dict[tuple[str, str], float] = {}
    for bench in benchmarks:
        print(f"\n{bench} ({modes.get(bench, '?')})")
        for method in args.methods:
            v = np.asarray(values[(bench, method)])
            ok = v[~np.isnan(v)]
            center = float(iqm(ok)) if len(ok) else math.nan
            lo, hi = bootstrap_ci(ok) if len(ok) > 1 else (np.array(center), np.array(center))
            iqms[(bench, method)] = center
            missing = len(v) - len(ok)
            note = f"  ({missing} run(s) without a trial at the last resource)" if missing else ""
            print(f"  {method:<{width}}  IQM {center:9.4f} [{float(lo):9.4f}, {float(hi):9.4f}]  "
                  f"median {float(np.median(ok)) if len(ok) else math.nan:9.4f}  "
                  f"trials {np.mean(trials[(bench, method)]):6.1f}  exploits {np.mean(exploits[(bench, method)]):6.1f}"
                  f"{note}")
    if "ASHA" in args.methods:
        print("\nIQM ratios against ASHA (> 1 is better for max, < 1 for min):")
        for bench in benchmarks:
            parts = [f"{m}/ASHA {iqms[(bench, m)] / iqms[(bench, 'ASHA')]:.4f}" for m in POPULATION_METHODS
                     if m in args.methods]
            print(f"  {bench:<18} ({modes[bench]})  " + "; ".join(parts))
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
