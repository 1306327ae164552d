"""Transfer from earlier experiments on YAHPO lcbench in the simulator, leave-one-task-out (issue 17).

Two experiment grids, those of the presets ``transfer-lcbench-sources`` and ``transfer-lcbench``
(:mod:`tunebench.experiments.presets`), run through :mod:`tunebench.experiments.grid` like
``tunebench experiment --preset ...``:

1. *sources*: RS on 16 lcbench tasks (the 5 held-out targets and 11 others, among them the
   development tasks), one seed each, 4 workers, ``--source-budget`` simulated seconds;
2. *targets*: on each held-out target (167149, 168330, 189906, 167181, 189873: no development task),
   ZeroShot, BoundingBox (base BO), CTS and ASHA-CTS with ``--transfer-from`` the sources' tag, which
   leaves out the target's own benchmark (so each target learns from the 15 other tasks), against
   RS, BO and ASHA without transfer; 4 workers, ``--budget`` simulated seconds, ``--seeds`` seeds.

Decision time is not charged (figures independent of the machine's load).

Figure: the normalized regret of the best ``val_accuracy`` found so far at 10, 25 and 50 % of the
budget, ``(best - value) / (best - worst)`` with the target's bounds of
:func:`tunebench.analysis.regret_bounds` (best: the best found by any run on the target; worst: the
median of the runs' first results); a run without a result yet counts 1. Printed per method: the
interquartile mean (IQM) over every (target, seed) run with a bootstrap 95 % band over them
(:func:`tunebench.analysis.iqm`, :func:`tunebench.analysis.bootstrap_ci`), then per target.

Target (issue 17): at 10 % of the budget, ZeroShot and CTS have a lower regret IQM than RS and BO.

    TUNEBENCH_DATA=../shared/data python benchmarks/transfer_quality.py \\
        [--targets ...] [--seeds 10] [--budget 7200] [--source-budget 7200] [--parallel 2] [--results-root DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from tunebench.analysis import bootstrap_ci, curve_matrix, iqm, load_grid, normalized_regret, regret_bounds
from tunebench.blackboxes.yahpo import development_tasks_among
from tunebench.experiments.grid import GridRequest, plan_grid, run_grid
from tunebench.experiments.presets import TRANSFER_SOURCES_ONLY, TRANSFER_TARGETS, get_preset

FRACTIONS = (0.1, 0.25, 0.5)
SOURCES_TAG, TARGETS_TAG = "transfer-lcbench-sources", "transfer-lcbench"


def _run(request: GridRequest, parallel: int, what: str) -> None:
    jobs = plan_grid(request)
    t0 = time.perf_counter()
    result = run_grid(jobs, parallel=parallel, tag=str(request.tag))
    failed = [o for o in result.outcomes if o.status not in ("complete", "skipped")]
    print(f"{what}: {len(jobs)} runs in {time.perf_counter() - t0:.0f} s" + (f", {len(failed)} not complete" if failed
                                                                              else ""))
    for o in failed[:5]:
        print(f"  {o.job.benchmark} {o.job.method} {o.job.seed}: {o.status} {o.reason} {o.error[-300:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=list(TRANSFER_TARGETS))
    parser.add_argument("--sources", nargs="+", default=list(TRANSFER_SOURCES_ONLY),
                        help="tasks that are only sources (the targets are sources of each other too)")
    parser.add_argument("--methods", nargs="+", default=list(get_preset(TARGETS_TAG).methods or ()))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=7200.0, help="simulated seconds per target run")
    parser.add_argument("--source-budget", type=float, default=7200.0, help="simulated seconds per source run")
    parser.add_argument("--parallel", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--results-root", help="keep the grids there (default: a temporary folder)")
    args = parser.parse_args()
    if not os.environ.get("TUNEBENCH_DATA"):
        raise SystemExit("set TUNEBENCH_DATA to the folder holding yahpo/ (e.g. ../shared/data)")
    dev = development_tasks_among(args.targets)
    if dev:
        print(f"note: development task(s) {', '.join(dev)} among the targets: not a held-out figure")

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.results_root or tmp)
        all_tasks = list(dict.fromkeys(args.sources + args.targets))
        print(f"sources: RS on {len(all_tasks)} lcbench tasks, 1 seed, 4 workers, {args.source_budget:g} simulated s; "
              f"targets: {', '.join(args.targets)} (each learns from the {len(all_tasks) - 1} others), "
              f"{len(args.methods)} methods x {args.seeds} seeds, 4 workers, {args.budget:g} simulated s")
        _run(GridRequest(benchmarks=[f"lcbench-{t}" for t in all_tasks], methods=["RS"], seeds=[0], tag=SOURCES_TAG,
                         results_root=root, n_workers=4, max_wallclock_time=args.source_budget,
                         charge_decision_time=False), args.parallel, "sources")
        targets = [f"lcbench-{t}" for t in args.targets]
        _run(GridRequest(benchmarks=targets, methods=args.methods, seeds=list(range(args.seeds)), tag=TARGETS_TAG,
                         results_root=root, n_workers=4, max_wallclock_time=args.budget, charge_decision_time=False,
                         transfer_from=[SOURCES_TAG]), args.parallel, "targets")
        grid = load_grid(root, TARGETS_TAG, known_optima=False)

    times = np.asarray(FRACTIONS) * args.budget
    pooled: dict[str, list[np.ndarray]] = {m: [] for m in args.methods}
    per_target: dict[tuple[str, str], np.ndarray] = {}
    for bench in targets:
        best, worst = regret_bounds(grid, bench)
        for m in args.methods:
            _, values = curve_matrix(grid, bench, m, times)
            regret = normalized_regret(values, best, worst)
            regret = np.where(np.isnan(regret), 1.0, regret)  # no result yet: as bad as a first result
            pooled[m].append(regret)
            per_target[(bench, m)] = iqm(regret)

    width = max(len(m) for m in args.methods)
    head = "   ".join(f"{f:>4.0%} of the budget      " for f in FRACTIONS)
    print(f"\nnormalized regret of the best val_accuracy so far (0: best found on the target, 1: median first "
          f"result), IQM over {len(targets)} targets x {args.seeds} seeds [bootstrap 95% band]\n")
    print(f"  {'method':<{width}}   {head}")
    summary: dict[str, np.ndarray] = {}
    for m in args.methods:
        runs = np.concatenate(pooled[m])
        center = iqm(runs)
        lo, hi = bootstrap_ci(runs)
        summary[m] = center
        cells = "   ".join(f"{c:6.3f} [{a:6.3f}, {b:6.3f}]" for c, a, b in zip(center, lo, hi, strict=True))
        print(f"  {m:<{width}}   {cells}")
    print("\nper target (IQM over seeds at 10 / 25 / 50 %):")
    for bench in targets:
        cells = "  ".join(f"{m} " + "/".join(f"{v:.2f}" for v in per_target[(bench, m)]) for m in args.methods)
        print(f"  {bench}: {cells}")
    ok = [m for m in ("ZeroShot", "CTS") if m in summary]
    base = [m for m in ("RS", "BO") if m in summary]
    if ok and base:
        print("\ntarget: at 10% of the budget, ZeroShot and CTS below RS and BO")
        for m in ok:
            for b in base:
                verdict = "yes" if summary[m][0] < summary[b][0] else "NO"
                print(f"  {m} {summary[m][0]:.3f} < {b} {summary[b][0]:.3f}: {verdict}")
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
