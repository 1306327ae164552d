"""Scheduler overhead: microseconds of scheduler time per reported result and per suggest.

Drives RS, ASHA (stopping and promotion), asynchronous Hyperband and MOASHA (two objectives: the
loss and the simulation's "cost") without any backend over a
simulated asynchronous run (default: 1000 trials x 27 epochs of a synthetic learning curve,
4 workers, events ordered by simulated time like a real run, a few failures), and times only
the scheduler's own calls with ``time.perf_counter_ns`` around ``on_result`` and ``suggest``.
The target is 10 us per ``on_result`` at 1000 trials (MOASHA: 50 us, issue 15).

    .venv/bin/python benchmarks/scheduler_overhead.py [--trials N] [--epochs E] [--workers W]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from tunebench.schedulers import get_method, make_scheduler
from tunebench.testing.scheduler_contract import ContractSimulation, contract_space

TARGET_US = 10.0
TARGET_MULTI_US = 50.0  #: a multi-objective method (a non-dominated sort of the rung per rung result)
METHODS = ["RS", "ASHA", "ASHA-promotion", "HB", "MOASHA", "MOASHA-promotion"]


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def measure(method: str, n_trials: int, epochs: int, workers: int, seed: int) -> dict[str, Any]:
    space = contract_space(epochs)
    # a multi-objective method gets the simulation's second objective too (see ContractSimulation)
    metric: str | list[str] = ["loss", "cost"] if get_method(method).multi_objective else "loss"
    scheduler = make_scheduler(method, space, metric=metric, mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", seed=seed)
    times: dict[str, list[int]] = {"result": [], "suggest": [], "complete": [], "error": []}
    clock = time.perf_counter_ns

    def timed(kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = clock()
        out = fn(*args)
        times[kind].append(clock() - t0)
        return out

    sim = ContractSimulation(scheduler, n_trials=n_trials, max_t=epochs, n_workers=workers,
                             check_none_state=False, validate=False, record=False, wrap=timed)
    sim.run()
    report, suggest = times["result"], times["suggest"]
    return {
        "method": method,
        "trials": len(sim.trials),
        "reports": len(report),
        "report_mean": sum(report) / len(report) / 1000,
        "report_p99": percentile(report, 0.99) / 1000,
        "suggests": len(suggest),
        "suggest_mean": sum(suggest) / len(suggest) / 1000,
        "suggest_p99": percentile(suggest, 0.99) / 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="new trials per method (default 1000)")
    parser.add_argument("--epochs", type=int, default=27, help="max epochs (max_t) per trial (default 27)")
    parser.add_argument("--workers", type=int, default=4, help="simulated workers (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=METHODS, help=f"default: {' '.join(METHODS)}")
    args = parser.parse_args(argv)

    print(f"scheduler overhead: {args.trials} trials x {args.epochs} epochs, {args.workers} workers "
          f"(Python {platform.python_version()}, {platform.machine()})")
    header = (f"{'method':<16}{'trials':>7}{'reports':>9}{'us/report':>11}{'p99':>8}{'suggests':>10}"
              f"{'us/suggest':>12}{'p99':>8}{'report/target':>15}")
    print(header)
    print("-" * len(header))
    worst = 0.0
    for method in args.methods:
        r = measure(method, args.trials, args.epochs, args.workers, args.seed)
        ratio = r["report_mean"] / (TARGET_MULTI_US if get_method(method).multi_objective else TARGET_US)
        worst = max(worst, ratio)
        print(f"{r['method']:<16}{r['trials']:>7}{r['reports']:>9}{r['report_mean']:>11.2f}{r['report_p99']:>8.2f}"
              f"{r['suggests']:>10}{r['suggest_mean']:>12.2f}{r['suggest_p99']:>8.2f}{ratio:>15.2f}")
    print(f"target: <= {TARGET_US:.0f} us per on_result ({TARGET_MULTI_US:.0f} us for a multi-objective method); "
          f"worst mean is {worst:.2f}x its target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
