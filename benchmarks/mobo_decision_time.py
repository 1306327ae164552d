"""Decision time of ``MOBO`` (a GP per objective, expected hypervolume improvement).

Drives the method without any backend on ZDT1 (2 objectives) and DTLZ2 (3 objectives), each over
6 hyperparameters in [0, 1], ``--workers`` trials running at once (pending trials fantasized)
and completions in simulated-time order, and times ``suggest`` (the decision: model update,
refits included and amortized, EHVI optimization) with ``time.perf_counter`` while the number of
finished trials is within ``--window / 2`` of 100, 250 and 500.  Target (issue 15): <= 100 ms
per decision at 500 observations with 2 objectives.

    .venv/bin/python benchmarks/mobo_decision_time.py [--workers W] [--window N] [--seed S]
"""

from __future__ import annotations

import argparse
import heapq
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from tunebench.blackboxes.synthetic_mo import dtlz2, zdt1
from tunebench.schedulers import make_scheduler
from tunebench.space import uniform
from tunebench.types import Trial

TARGET_MS = 100.0
MARKS = (100, 250, 500)
SPACE: dict[str, Any] = {f"x{i}": uniform(0.0, 1.0) for i in range(1, 7)}
PROBLEMS = {2: zdt1, 3: dtlz2}


def bench(n_objectives: int, workers: int, window: int, seed: int) -> dict[int, list[float]]:
    """Suggest times (ms) per mark: those made while the finished trials were within ``window / 2``."""
    metrics = [f"f{j}" for j in range(1, n_objectives + 1)]
    scheduler = make_scheduler("MOBO", SPACE, metric=metrics, mode="min", seed=seed)
    function = PROBLEMS[n_objectives]
    rng = np.random.default_rng(seed)
    times: dict[int, list[float]] = {m: [] for m in MARKS}
    running: list[tuple[float, int, Trial]] = []
    now, finished, next_id = 0.0, 0, 0
    while finished < MARKS[-1] + window // 2:
        while len(running) < workers:
            t0 = time.perf_counter()
            suggestion = scheduler.suggest(next_id)
            ms = (time.perf_counter() - t0) * 1e3
            for m in MARKS:
                if m - window // 2 <= finished < m + window // 2:
                    times[m].append(ms)
            assert suggestion is not None
            trial = Trial(next_id, suggestion.config)
            next_id += 1
            heapq.heappush(running, (now + rng.exponential(1.0), trial.trial_id, trial))
        now, _, trial = heapq.heappop(running)
        x = np.array([[trial.config[name] for name in SPACE]])
        values = function(x)[0] + 0.01 * rng.standard_normal(n_objectives)
        result = dict(zip(metrics, values.tolist(), strict=True))
        scheduler.on_result(trial, result)
        scheduler.on_complete(trial, result)
        finished += 1
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--window", type=int, default=40, help="finished trials around each mark (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.workers} workers, load average {os.getloadavg()[0]:.1f} at the start")
    ok = True
    for d in (2, 3):
        t0 = time.perf_counter()
        times = bench(d, args.workers, args.window, args.seed)
        for m, ms in times.items():
            a = np.asarray(ms)
            mean = float(a.mean())
            line = (f"MOBO, {d} objectives, ~{m} observations: {mean:.1f} ms per decision mean, "
                    f"{np.median(a):.1f} median, {a.max():.1f} max over {len(a)} decisions; "
                    f"{mean / TARGET_MS:.2f} x the {TARGET_MS:.0f} ms target")
            if d == 2 and m == MARKS[-1]:
                line += f"  [{'OK' if mean <= TARGET_MS else 'MISSED'}]"
                ok &= mean <= TARGET_MS
            print(line)
        print(f"MOBO, {d} objectives: whole run {time.perf_counter() - t0:.1f} s")
    print(f"load average {os.getloadavg()[0]:.1f} at the end (times grow when other processes share the CPUs)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
