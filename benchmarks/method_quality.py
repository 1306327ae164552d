"""Quality of tuning methods on YAHPO lcbench in the simulator: normalized regret per method.

Runs each method on each lcbench task with each seed (the benchmark's defaults: 4 workers,
7200 simulated seconds, decision time charged to the simulated clock), in parallel processes,
and prints the interquartile mean (IQM) of the normalized regret over tasks x seeds per method,
with a bootstrap 95% confidence interval, plus the mean per task.

Normalized regret of a run: ``(best - found) / (best - worst)`` on ``val_accuracy`` (maximized),
where ``found`` is the best value the run observed (any epoch), ``best`` the best value any run
or a random sample of 2,000 configurations at the last epoch reached on the task, ``worst`` the
median of that sample (so that 1 means "no better than a typical random config").

Targets (issue 4): MOBSTER and HyperTune reach lower regret than ASHA; BO is no worse than RS.

    TUNEBENCH_DATA=../shared/data python benchmarks/method_quality.py \\
        [--methods RS ASHA BO MOBSTER HyperTune] [--tasks 3945 7593 34539] [--seeds 10] [--parallel 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

DEFAULT_METHODS = ["RS", "ASHA", "BO", "MOBSTER", "HyperTune"]
DEFAULT_TASKS = ["3945", "7593", "34539", "126025", "167184"]


def run_one(task: str, method: str, seed: int, root: str) -> tuple[str, str, int, float, int, float]:
    """One simulated experiment; returns (task, method, seed, best val_accuracy, trials, real seconds)."""
    from tunebench.launch import build_tuner, spec_from_benchmark

    spec = spec_from_benchmark(f"lcbench-{task}")
    spec.method, spec.seed = method, seed
    t0 = time.perf_counter()
    result = build_tuner(spec, Path(root) / f"{task}-{method}-{seed}", command_line=[]).run()
    return task, method, seed, float(result.best_metric), result.n_trials, time.perf_counter() - t0


def reference(task: str, n: int = 2000) -> tuple[float, float]:
    """(best, median) val_accuracy at the last epoch over ``n`` random configurations."""
    from tunebench.blackboxes.yahpo import YahpoBlackbox
    from tunebench.space import sample_configs

    bb = YahpoBlackbox("lcbench", task)
    configs = sample_configs(bb.config_space, np.random.default_rng(12345), n)
    values = bb.evaluate(configs, fidelities=[bb.fidelity_values[-1]], seed=0, check=False)[:, 0, :]
    acc = values[:, bb.objectives.index("val_accuracy")]
    return float(acc.max()), float(np.median(acc))


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the values."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    return float(x[lo:hi].mean()) if hi > lo else float(x.mean())


def bootstrap_ci(x: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    stats = [iqm(rng.choice(x, size=len(x), replace=True)) for _ in range(n_boot)]
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


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
    print(f"{len(jobs)} experiments ({len(args.methods)} methods x {len(args.tasks)} lcbench tasks x "
          f"{args.seeds} seeds), {args.parallel} at once", flush=True)
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
    order = sorted(args.methods, key=lambda m: iqm(np.array(regret[m])))
    for m in order:
        x = np.array(regret[m])
        lo, hi = bootstrap_ci(x)
        cells = "".join(f"{np.mean(per_task[(m, t)]):>9.3f}" for t in args.tasks)
        print(f"{m:<14}{iqm(x):>8.3f}   [{lo:6.3f}, {hi:6.3f}]{cells}"
              f"{np.mean(trials[m]):>8.0f}{np.mean(seconds[m]):>8.1f}")
    scores = {m: iqm(np.array(regret[m])) for m in args.methods}

    def verdict(a: str, b: str, strict: bool) -> None:
        if a in scores and b in scores:
            ok = scores[a] < scores[b] if strict else scores[a] <= scores[b] * 1.05 + 1e-3
            rel = "<" if strict else "<= (within 5%)"
            print(f"  {a} {rel} {b}: {'yes' if ok else 'NO'} ({scores[a]:.3f} vs {scores[b]:.3f})")

    print("targets:")
    verdict("MOBSTER", "ASHA", True)
    verdict("HyperTune", "ASHA", True)
    verdict("BO", "RS", False)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
