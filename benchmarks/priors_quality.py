"""User priors on lcbench in the simulator (issue 17, part 3), following PriorBand's protocol.

For each lcbench task (by default three that are not development tasks) a *good* prior is
centred at the best of 2000 random configurations (evaluated at the last epoch with the
simulator's surrogate), a *bad* one at a configuration near the worst (the 2nd percentile of
val_accuracy), both with confidence ``medium``; the *medium* prior is the good config with
confidence ``low``. Each prior strength is one grid (tag ``priors-<strength>``, the task's prior
given to every run through ``GridRequest.prior``) of the prior-aware methods and their prior-free
counterparts: PiBO vs BO, PiBO-MOBSTER vs MOBSTER, PriorBand vs SyncHB (PriorBand runs on
synchronous Hyperband, as published), 4 workers, the benchmark's budget (7200 simulated s),
10 seeds, decision time not charged (figures independent of the machine's load).

It prints, per strength and pair, the normalized regret (IQM over seeds and tasks pooled, with its
bootstrap 95% band; :func:`tunebench.analysis.aggregate.summarize`, what ``tunebench report``
prints) at 10/25/50/100% of the budget, and checks the issue's targets:

* good prior: the prior-aware method has a lower regret IQM than its counterpart at 10% of the
  budget ("beats it early");
* bad prior: by the end its best val_accuracy (IQM over seeds, per task, averaged) is within 10%
  of its counterpart's.

The grids are resumable: run again with the same ``--results-root`` to finish, ``--analyse-only``
to print the tables of finished ones.

    TUNEBENCH_DATA=../shared/data python benchmarks/priors_quality.py --results-root /tmp/pq \\
        [--seeds 10] [--tasks 167149 168330 189906] [--budget 7200] [--parallel 2] [--pairs PriorBand]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FRACTIONS = (0.1, 0.25, 0.5, 1.0)
STRENGTHS = ("good", "medium", "bad")
#: (prior-aware method, its prior-free counterpart)
PAIRS = (("PiBO", "BO"), ("PiBO-MOBSTER", "MOBSTER"), ("PriorBand", "SyncHB"))
#: lcbench tasks that are not development tasks (those of benchmarks/mo_quality.py)
TASKS = ("167149", "168330", "189906")
N_CANDIDATES = 2000


def task_priors(task: str, data_dir: str | None) -> dict[str, dict[str, Any]]:
    """The good, medium and bad prior mappings of lcbench task ``task`` (see the module docs)."""
    from tunebench.blackboxes.registry import load_blackbox
    from tunebench.space import Prior, hyperparameters, sample_configs

    bb = load_blackbox("lcbench", task, data_dir)
    configs = sample_configs(bb.config_space, np.random.default_rng(0), N_CANDIDATES)
    acc = bb.evaluate(configs, fidelities=[float(bb.fidelity_values[-1])], seed=0)[:, 0,
                                                                                  bb.objective_index("val_accuracy")]
    acc = np.where(np.isnan(acc), -np.inf, acc)
    order = np.argsort(acc)
    good = configs[int(order[-1])]
    bad = configs[int(order[int(0.02 * len(order))])]
    names = hyperparameters(bb.config_space)
    at = lambda c, conf: Prior.centered(bb.config_space, {n: c[n] for n in names}, conf).to_json()  # noqa: E731
    worst = acc[order[int(0.02 * len(order))]]
    print(f"  lcbench-{task}: good prior at val_accuracy {acc[order[-1]]:.2f}, bad at {worst:.2f}"
          f" (of {N_CANDIDATES} random configs, median {np.median(acc[np.isfinite(acc)]):.2f})")
    return {"good": at(good, "medium"), "medium": at(good, "low"), "bad": at(bad, "medium")}


def selected_pairs(names: list[str] | None) -> tuple[tuple[str, str], ...]:
    """The pairs of :data:`PAIRS` whose prior-aware method is in ``names`` (all when None)."""
    if not names:
        return PAIRS
    unknown = sorted(set(names) - {a for a, _ in PAIRS})
    if unknown:
        raise SystemExit(f"priors_quality.py: error: unknown --pairs {', '.join(unknown)}; "
                         f"choose among {', '.join(a for a, _ in PAIRS)}")
    return tuple(p for p in PAIRS if p[0] in names)


def run_grids(root: Path, args: argparse.Namespace) -> float:
    """Run (or resume) one grid per prior strength and task; the wall time in seconds."""
    from tunebench.experiments.grid import GridRequest, plan_grid, run_grid

    methods = [m for pair in selected_pairs(args.pairs) for m in pair]
    t0 = time.perf_counter()
    for task in args.tasks:
        priors = task_priors(task, args.data_dir)
        for strength in STRENGTHS:
            request = GridRequest(benchmarks=[f"lcbench-{task}"], methods=methods, seeds=list(range(args.seeds)),
                                  tag=f"priors-{strength}", results_root=root, max_wallclock_time=args.budget,
                                  charge_decision_time=False, data_dir=args.data_dir, prior=priors[strength])
            outcome = run_grid(plan_grid(request), parallel=args.parallel, tag=request.tag or "")
            failed = [o for o in outcome.outcomes if o.status == "failed"]
            if failed:
                raise SystemExit(f"{len(failed)} experiments failed, e.g. {failed[0].job.path}: {failed[0].error}")
    return time.perf_counter() - t0


def _cell(iqm: float, lo: float, hi: float) -> str:
    return "-" if math.isnan(iqm) else f"{iqm:.3f} [{lo:.3f},{hi:.3f}]"


def analyse(root: Path) -> None:
    from tunebench.analysis import load_grid
    from tunebench.analysis.aggregate import ALL, summarize

    for strength in STRENGTHS:
        try:
            grid = load_grid(root, f"priors-{strength}")
        except Exception as e:  # noqa: BLE001 - a strength not run (yet): say so and go on
            print(f"\n{strength} prior: no grid ({e})")
            continue
        table = summarize(grid, FRACTIONS)
        pooled = table[table["benchmark"] == (ALL if len(grid.benchmarks) > 1 else grid.benchmarks[0])]
        n = int(pooled["n_seeds"].max())
        print(f"\n{strength} prior: normalized regret, IQM [95% band] over {n} runs "
              f"({len(grid.benchmarks)} tasks x seeds; lower is better)")
        print(f"  {'method':<13}" + "".join(f"{f'{f:.0%}':>22}" for f in FRACTIONS))
        for pair in PAIRS:
            for m in pair:
                rows = pooled[pooled["method"] == m].sort_values("fraction")
                if rows.empty:
                    continue
                cells = "".join(f"{_cell(r.regret_iqm, r.regret_lo, r.regret_hi):>22}" for r in rows.itertuples())
                print(f"  {m:<13}{cells}")
        print("  targets:")
        per_task = table[table["benchmark"] != ALL]
        for prior_method, plain in PAIRS:
            a = pooled[pooled["method"] == prior_method].set_index("fraction")
            b = pooled[pooled["method"] == plain].set_index("fraction")
            if a.empty or b.empty:
                continue
            early = a.loc[0.1, "regret_iqm"], b.loc[0.1, "regret_iqm"]
            ends = []
            for bench in dict.fromkeys(per_task["benchmark"]):
                rows = per_task[(per_task["benchmark"] == bench) & (per_task["fraction"] == 1.0)].set_index("method")
                ends.append(rows.loc[prior_method, "best_iqm"] / rows.loc[plain, "best_iqm"])
            ratio = float(np.mean(ends))
            if strength == "good":
                verdict = "yes" if early[0] < early[1] else "NO"
                print(f"    {prior_method} beats {plain} at 10%: {verdict} (regret {early[0]:.3f} vs {early[1]:.3f})")
            elif strength == "bad":
                verdict = "yes" if ratio >= 0.9 else "NO"
                print(f"    {prior_method} within 10% of {plain} at 100%: {verdict} (final val_accuracy ratio "
                      f"{ratio:.3f})")
            else:
                print(f"    {prior_method} vs {plain}: regret at 10% {early[0]:.3f} vs {early[1]:.3f}; final "
                      f"val_accuracy ratio {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-root", type=Path, help="where the grids go (default: a temporary folder)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="lcbench tasks (not development tasks)")
    parser.add_argument("--budget", type=float, default=7200.0, help="simulated seconds per experiment")
    parser.add_argument("--parallel", type=int, default=2, help="experiments at once")
    parser.add_argument("--data-dir", help="benchmark data (default: $TUNEBENCH_DATA)")
    parser.add_argument("--pairs", nargs="+", metavar="METHOD",
                        help="only these prior-aware methods and their counterparts, e.g. PriorBand (default: all)")
    parser.add_argument("--analyse-only", action="store_true", help="print the tables of finished grids")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.results_root or Path(tmp)
        if not args.analyse_only:
            seconds = run_grids(root, args)
            print(f"grids run in {seconds:.0f} s wall time ({root}/priors-*)")
        analyse(root)


if __name__ == "__main__":
    main()
