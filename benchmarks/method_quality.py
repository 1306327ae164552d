"""Quality of tuning methods on YAHPO lcbench in the simulator: normalized regret per method.

Runs each method on each lcbench task with each seed (the benchmark's defaults: 4 workers,
7200 simulated seconds, decision time charged to the simulated clock), in parallel processes,
and prints the interquartile mean (IQM) of the normalized regret over tasks x seeds per method,
with a bootstrap 95% confidence interval, plus the mean per task.

Normalized regret of a run: ``(best - found) / (best - worst)`` on ``val_accuracy`` (maximized),
where ``found`` is the best value the run observed (any epoch), ``best`` the best value any run
or a random sample of 2,000 configurations at the last epoch reached on the task, ``worst`` the
median of that sample (so that 1 means "no better than a typical random config").

A second table gives the best ``val_accuracy`` itself per task and method: the median over all
seeds, the median over seeds 0-4 (the protocol of issue 13) and the IQM with its bootstrap 95%
band.

Targets (issue 4): MOBSTER and HyperTune reach lower regret than ASHA; BO is no worse than RS.
Targets (issue 13) on lcbench-7593: BO's best val_accuracy at or above RS's (IQM) and BO's median
at or above 81.3, the median of Syne Tune 0.13's BO on the same protocol (seeds 0-4).

    TUNEBENCH_DATA=../shared/data python benchmarks/method_quality.py \\
        [--methods RS ASHA BO MOBSTER HyperTune] [--tasks 3945 7593 34539] [--seeds 10] [--parallel 2]
    TUNEBENCH_DATA=../shared/data python benchmarks/method_quality.py --methods BO RS --tasks 7593 --seeds 10
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from tunebench.analysis import bootstrap_ci, iqm

DEFAULT_METHODS = ["RS", "ASHA", "BO", "MOBSTER", "HyperTune"]
DEFAULT_TASKS = ["3945", "7593", "34539", "126025", "167184"]
#: median best val_accuracy of Syne Tune 0.13's BO on lcbench-7593 (4 workers, 7200 s, seeds 0-4)
SYNETUNE_BO_7593 = 81.3


def run_one(task: str, method: str, seed: int, root: str) -> tuple[str, str, int, float, int, float]:
    """One simulated experiment; returns (task, method, seed, best val_accuracy, trials, real seconds)."""
    from tunebench.launch import build_tuner, spec_from_benchmark

    spec = spec_from_benchmark(f"lcbench-{task}")
    spec.method, spec.seed = method, seed
    t0 = time.perf_counter()
    result = build_tuner(spec, Path(root) / f"{task}-{method}-{seed}", command_line=[]).run()
    return task, method, seed, float(result.best_metric), result.n_trials, time.perf_counter() - t0


def reference(task: str) -> tuple[float, float]:
    """(best, median) val_accuracy at the last epoch over 2,000 random configurations."""
    from tunebench.benchmarks.builtin import lcbench_regret_bounds

    return lcbench_regret_bounds(task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not os.environ.get("TUNEBENCH_DATA"):
        raise SystemExit("set TUNEBENCH_DATA to the folder holding yahpo/ (e.g. ../shared/data)")

    jobs = [(t, m, s) for t in args.tasks for m in args.methods for s in range(args.seeds)]
    from tunebench.launch import spec_from_benchmark

    protocol = spec_from_benchmark(f"lcbench-{args.tasks[0]}")
    print(f"{len(jobs)} experiments ({len(args.methods)} methods x {len(args.tasks)} lcbench tasks x "
          f"{args.seeds} seeds), {args.parallel} at once; {protocol.n_workers} workers, "
          f"{protocol.max_wallclock_time:g} simulated s each", flush=True)
    t0 = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_one, t, m, s, root) for t, m, s in jobs]
        refs = {t: pool.submit(reference, t) for t in args.tasks}
        for i, f in enumerate(futures, 1):
            runs.append(f.result())
            if i % 20 == 0 or i == len(futures):
                print(f"  {i}/{len(futures)} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        ref = {t: f.result() for t, f in refs.items()}

    best = {t: max(ref[t][0], max(r[3] for r in runs if r[0] == t)) for t in args.tasks}
    regret: dict[str, list[float]] = {m: [] for m in args.methods}
    per_task: dict[tuple[str, str], list[float]] = {}
    seconds: dict[str, list[float]] = {m: [] for m in args.methods}
    trials: dict[str, list[int]] = {m: [] for m in args.methods}
    for task, method, _seed, found, n_trials, secs in runs:
        r = (best[task] - found) / max(best[task] - ref[task][1], 1e-12)
        regret[method].append(r)
        per_task.setdefault((method, task), []).append(r)
        seconds[method].append(secs)
        trials[method].append(n_trials)

    print(f"\nnormalized regret on lcbench (lower is better; IQM over {len(args.tasks)} tasks x {args.seeds} seeds)")
    header = f"{'method':<14}{'IQM':>8}{'95% CI':>18}" + "".join(f"{t:>9}" for t in args.tasks)
    print(header + f"{'trials':>8}{'real s':>8}")
    scores = {m: float(iqm(np.array(regret[m]))) for m in args.methods}
    for m in sorted(args.methods, key=scores.__getitem__):
        lo, hi = bootstrap_ci(np.array(regret[m]))
        cells = "".join(f"{np.mean(per_task[(m, t)]):>9.3f}" for t in args.tasks)
        print(f"{m:<14}{scores[m]:>8.3f}   [{float(lo):6.3f}, {float(hi):6.3f}]{cells}"
              f"{np.mean(trials[m]):>8.0f}{np.mean(seconds[m]):>8.1f}")

    found = {(t, m): np.array([r[3] for r in sorted(runs, key=lambda r: r[2]) if r[0] == t and r[1] == m])
             for t in args.tasks for m in args.methods}
    print(f"\nbest val_accuracy (higher is better; {args.seeds} seeds)")
    print(f"{'task':<9}{'method':<14}{'median':>8}{'median 0-4':>12}{'IQM':>8}{'95% CI':>18}")
    for t in args.tasks:
        for m in sorted(args.methods, key=lambda m: -float(iqm(found[(t, m)]))):
            x = found[(t, m)]
            lo, hi = bootstrap_ci(x)
            print(f"{t:<9}{m:<14}{np.median(x):>8.2f}{np.median(x[:5]):>12.2f}{float(iqm(x)):>8.2f}"
                  f"   [{float(lo):6.2f}, {float(hi):6.2f}]")

    def verdict(a: str, b: str, strict: bool) -> None:
        if a in scores and b in scores:
            ok = scores[a] < scores[b] if strict else scores[a] <= scores[b] * 1.05 + 1e-3
            rel = "<" if strict else "<= (within 5%)"
            print(f"  {a} {rel} {b}: {'yes' if ok else 'NO'} ({scores[a]:.3f} vs {scores[b]:.3f})")

    print("targets:")
    verdict("MOBSTER", "ASHA", True)
    verdict("HyperTune", "ASHA", True)
    verdict("BO", "RS", False)
    if "7593" in args.tasks and "BO" in args.methods:
        bo = found[("7593", "BO")]
        if "RS" in args.methods:
            rs = found[("7593", "RS")]
            ok = float(iqm(bo)) >= float(iqm(rs))
            print(f"  lcbench-7593: BO >= RS (IQM val_accuracy): {'yes' if ok else 'NO'} "
                  f"({float(iqm(bo)):.2f} vs {float(iqm(rs)):.2f})")
        for label, x in (("all seeds", bo), ("seeds 0-4", bo[:5])):
            ok = float(np.median(x)) >= SYNETUNE_BO_7593
            print(f"  lcbench-7593: BO median >= Syne Tune 0.13's {SYNETUNE_BO_7593} ({label}): "
                  f"{'yes' if ok else 'NO'} ({np.median(x):.2f})")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
