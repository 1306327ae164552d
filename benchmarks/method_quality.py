"""Quality of tuning methods on YAHPO lcbench in the simulator: normalized regret per method.

Runs each method on each lcbench task with each seed (the benchmark's defaults: 4 workers,
7200 simulated seconds, decision time charged to the simulated clock), in parallel processes,
and prints the interquartile mean (IQM) of the normalized regret over tasks x seeds per method,
with a bootstrap 95% confidence interval, plus the mean per task.

Normalized regret of a run: ``(best - found) / (best - worst)`` on ``val_accuracy`` (maximized),
where ``found`` is the best value the run observed (any epoch), ``best`` the best value any run
or a fixed random sample of 1,000,000 configurations at the last epoch reached on the task,
``worst`` the median of that sample (so that 1 means "no better than a typical random config"):
the sample's best and median are :data:`tunebench.benchmarks.builtin.LCBENCH_REGRET_BOUNDS`, the
bounds of ``benchmarks/ftbo_quality.py`` too (earlier versions of this script drew a sample of
2,000 configurations: its best was lower, on some tasks by several points, so their regrets are
not comparable with these).

A second table gives the best ``val_accuracy`` itself per task and method: the median over all
seeds, the median over seeds 0-4 (the protocol of issue 13) and the IQM with its bootstrap 95%
band.

Options for issue 19's protocol: ``--workers 1 --max-results 1000`` (1 worker, a budget of 1000
results: 1000 epochs on lcbench, instead of the simulated time); a label ``METHOD-tag`` in
``--methods`` runs ``METHOD`` with the options given by ``--method-arg LABEL.KEY=VALUE``
(``FTBO-<surrogate>``: FTBO with that surrogate unless an option says otherwise); the
table's ``mean 50%`` is the mean regret at half the budget (of the best value seen by then, any
epoch); ``--save PATH`` writes every run with its best-so-far steps as JSON.

Targets (issue 4): MOBSTER and HyperTune reach lower regret than ASHA; BO is no worse than RS.
Targets (issue 13) on lcbench-7593: BO's best val_accuracy at or above RS's (IQM) and BO's median
at or above 81.3, the median of Syne Tune 0.13's BO on the same protocol (seeds 0-4).

    TUNEBENCH_DATA=../shared/data python benchmarks/method_quality.py \\
        [--methods RS ASHA BO MOBSTER HyperTune] [--tasks 3945 7593 34539] [--seeds 10] [--parallel 2]
    TUNEBENCH_DATA=../shared/data python benchmarks/method_quality.py --methods BO RS --tasks 7593 --seeds 10
    TUNEBENCH_DATA=../shared/data python benchmarks/method_quality.py --methods FTBO-dpl FTBO-pfn FTBO-ei \
        DyHPO --method-arg FTBO-ei.surrogate=pfn --method-arg FTBO-ei.acquisition=ei --workers 1 \
        --max-results 1000 --tasks 3945 7593 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.analysis import bootstrap_ci, iqm

DEFAULT_METHODS = ["RS", "ASHA", "BO", "MOBSTER", "HyperTune"]
DEFAULT_TASKS = ["3945", "7593", "34539", "126025", "167184"]
#: median best val_accuracy of Syne Tune 0.13's BO on lcbench-7593 (4 workers, 7200 s, seeds 0-4)
SYNETUNE_BO_7593 = 81.3


def method_of(label: str) -> tuple[str, dict[str, Any]]:
    """``(method, options)`` of a method label: the registered method is the part before the
    first ``-`` (``FTBO-pfn`` -> ``FTBO``), a plain name itself; an FTBO label whose tag is a
    surrogate (``FTBO-pfn``, ``FTBO-dpl``, ``FTBO-gp``) implies that ``surrogate`` (options given
    with ``--method-arg`` come on top)."""
    from tunebench.schedulers.ftbo import SURROGATES

    method, _, tag = label.partition("-")
    return method, ({"surrogate": tag} if method == "FTBO" and tag in SURROGATES else {})


def parse_method_args(items: list[str], labels: list[str]) -> dict[str, dict[str, Any]]:
    """``LABEL.KEY=VALUE`` items -> per label, its method options (a value is read as JSON if it
    parses, else kept as text), on top of the options the label implies (:func:`method_of`)."""
    out: dict[str, dict[str, Any]] = {label: dict(method_of(label)[1]) for label in labels}
    for item in items:
        name, sep, value = item.partition("=")
        label, dot, key = name.rpartition(".")
        if not sep or not dot or label not in out:
            raise SystemExit(f"tunebench: error: --method-arg {item!r}: give LABEL.KEY=VALUE with LABEL one of "
                             f"--methods ({', '.join(labels)})")
        try:
            out[label][key] = json.loads(value)
        except json.JSONDecodeError:
            out[label][key] = value
    return out


def run_one(task: str, label: str, seed: int, root: str, options: dict[str, Any], n_workers: int | None,
            max_results: int | None) -> tuple[str, str, int, float, int, float, list[tuple[int, float, float]]]:
    """One simulated experiment; returns (task, label, seed, best val_accuracy, trials, real seconds,
    the best val_accuracy's steps, see :func:`best_so_far`)."""
    from tunebench.launch import build_tuner, spec_from_benchmark

    spec = spec_from_benchmark(f"lcbench-{task}")
    spec.method, spec.seed = method_of(label)[0], seed
    spec.method_kwargs = {**spec.method_kwargs, **options}
    if n_workers is not None:
        spec.n_workers = n_workers
    if max_results is not None:
        spec.max_results, spec.max_wallclock_time = max_results, None
    t0 = time.perf_counter()
    result = build_tuner(spec, Path(root) / f"{task}-{label}-{seed}", command_line=[]).run()
    return (task, label, seed, float(result.best_metric), result.n_trials, time.perf_counter() - t0,
            best_so_far(result))


def best_so_far(result: Any) -> list[tuple[int, float, float]]:
    """The run's best val_accuracy after each result (in arrival order), as (result count,
    simulated time, value) steps."""
    from tunebench.store import load_experiment

    frame = load_experiment(result.experiment_dir).results
    best, out = -math.inf, []
    for i, (v, when) in enumerate(zip(frame["val_accuracy"], frame["tuner_time"], strict=True), 1):
        if v == v and v > best:
            best = float(v)
            out.append((i, float(when), best))
    return out


def best_at(steps: list[tuple[int, float, float]], count: float, when: float) -> float:
    """The best value after ``count`` results and ``when`` simulated seconds (nan before any)."""
    ok = [v for i, w, v in steps if i <= count and w <= when]
    return ok[-1] if ok else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--method-arg", action="append", default=[], metavar="LABEL.KEY=VALUE",
                        help="a method option for one label of --methods (a label LABEL-tag runs method LABEL), "
                             "e.g. --methods FTBO FTBO-pfn --method-arg FTBO-pfn.surrogate=pfn")
    parser.add_argument("--workers", type=int, default=None, help="workers (default: the benchmark's)")
    parser.add_argument("--max-results", type=int, default=None,
                        help="a budget of results (epochs on lcbench) instead of the benchmark's simulated time")
    parser.add_argument("--save", default=None, metavar="PATH",
                        help="also write every run (task, label, seed, best, trials, seconds, steps) as JSON")
    args = parser.parse_args()
    options = parse_method_args(args.method_arg, args.methods)
    if not os.environ.get("TUNEBENCH_DATA"):
        raise SystemExit("set TUNEBENCH_DATA to the folder holding yahpo/ (e.g. ../shared/data)")

    jobs = [(t, m, s) for t in args.tasks for m in args.methods for s in range(args.seeds)]
    from tunebench.launch import spec_from_benchmark

    protocol = spec_from_benchmark(f"lcbench-{args.tasks[0]}")
    n_workers = args.workers or protocol.n_workers
    budget = (f"{args.max_results} results" if args.max_results else f"{protocol.max_wallclock_time:g} simulated s")
    print(f"{len(jobs)} experiments ({len(args.methods)} methods x {len(args.tasks)} lcbench tasks x "
          f"{args.seeds} seeds), {args.parallel} at once; {n_workers} workers, {budget} each", flush=True)
    t0 = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_one, t, m, s, root, options[m], args.workers, args.max_results)
                   for t, m, s in jobs]
        for i, f in enumerate(futures, 1):
            runs.append(f.result())
            if i % 20 == 0 or i == len(futures):
                print(f"  {i}/{len(futures)} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    from tunebench.benchmarks.builtin import LCBENCH_REGRET_BOUNDS

    ref = {t: LCBENCH_REGRET_BOUNDS[t] for t in args.tasks}
    if args.save:
        Path(args.save).write_text(json.dumps({"runs": runs, "reference": ref}))

    best = {t: max(ref[t][0], max(r[3] for r in runs if r[0] == t)) for t in args.tasks}
    regret: dict[str, list[float]] = {m: [] for m in args.methods}
    per_task: dict[tuple[str, str], list[float]] = {}
    seconds: dict[str, list[float]] = {m: [] for m in args.methods}
    trials: dict[str, list[int]] = {m: [] for m in args.methods}
    half: dict[str, list[float]] = {m: [] for m in args.methods}
    half_count = args.max_results / 2 if args.max_results else math.inf
    half_time = math.inf if args.max_results else float(protocol.max_wallclock_time or math.inf) / 2
    for task, method, _seed, found, n_trials, secs, steps in runs:
        r = (best[task] - found) / max(best[task] - ref[task][1], 1e-12)
        regret[method].append(r)
        found_half = best_at(steps, half_count, half_time)
        half[method].append((best[task] - found_half) / max(best[task] - ref[task][1], 1e-12)
                            if found_half == found_half else 1.0)
        per_task.setdefault((method, task), []).append(r)
        seconds[method].append(secs)
        trials[method].append(n_trials)

    print(f"\nnormalized regret on lcbench (lower is better; IQM over {len(args.tasks)} tasks x {args.seeds} seeds)")
    header = f"{'method':<14}{'IQM':>8}{'95% CI':>18}" + "".join(f"{t:>9}" for t in args.tasks)
    print(header + f"{'mean':>8}{'mean 50%':>9}{'trials':>8}{'real s':>8}")
    scores = {m: float(iqm(np.array(regret[m]))) for m in args.methods}
    for m in sorted(args.methods, key=scores.__getitem__):
        lo, hi = bootstrap_ci(np.array(regret[m]))
        cells = "".join(f"{np.mean(per_task[(m, t)]):>9.3f}" for t in args.tasks)
        print(f"{m:<14}{scores[m]:>8.3f}   [{float(lo):6.3f}, {float(hi):6.3f}]{cells}"
              f"{np.mean(regret[m]):>8.3f}{np.mean(half[m]):>9.3f}{np.mean(trials[m]):>8.0f}{np.mean(seconds[m]):>8.1f}")

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
