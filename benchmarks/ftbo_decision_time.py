"""Decision time of ``FTBO`` (freeze-thaw BO over the DPL power-law ensemble; ``--surrogate pfn``:
over the shipped PFN), or of ``FreezeThawGP`` (the same race over the freeze-thaw GP) with
``--method FreezeThawGP``.  FTBO's defaults otherwise: the new configuration that competes with
the paused trials is the GP's (``new_config="gp"``), whose fit is in the time too.

Drives FTBO without any backend on the 6-dimensional mixed space of ``model_decision_time.py``
(its objective and learning curves), one epoch per fidelity step (``step=1``, ``max_t`` 27, the
freeze-thaw setting of DyHPO/DPL/ifBO), ``--workers`` trials running at once and results in
simulated-time order: every decision (``suggest``) starts or resumes a trial for one step, whose
result pauses it.  Each ``suggest`` is timed with ``time.perf_counter``; the surrogate's fits
happen inside it and are included (a full fit from scratch every 1.5x more observations, a warm
fit otherwise: the median is a warm decision, the max a full fit).

Figures: median, p90 and max decision time in windows of calls around 100, 300 and 1000
observations (``--observations``), wall clock and this process's CPU time (the CPU time is the
figure to read on a shared, loaded machine).  Target: median <= 50 ms at 1000 observations.

    .venv/bin/python benchmarks/ftbo_decision_time.py [--observations 100 300 1000] [--workers 4]
        [--method FTBO|FreezeThawGP] [--surrogate dpl|pfn] [--config-inputs config|gp]
"""

from __future__ import annotations

import argparse
import heapq
import os
import platform
import sys
import time

import numpy as np
from model_decision_time import SPACE, Timer, learning_curve, stats  # the shared synthetic problem

from tunebench.schedulers import make_scheduler
from tunebench.types import Decision, Trial

TARGET_MS = 50.0
MAX_T = 27


def bench(marks: list[int], workers: int, seed: int, window: int = 40,
          method: str = "FTBO", surrogate: str = "dpl", config_inputs: str = "config") -> dict[int, dict[str, float]]:
    """Suggest times (ms) while the number of observations is within ``window / 2`` of each mark
    (``surrogate``, ``config_inputs``: FTBO's; FreezeThawGP has its own)."""
    options = {"surrogate": surrogate, "config_inputs": config_inputs} if method == "FTBO" else {}
    scheduler = make_scheduler(method, {**SPACE, "epochs": MAX_T}, metric="loss", mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", seed=seed, step=1, **options)
    rng = np.random.default_rng(seed)
    timed = Timer()
    configs: dict[int, dict[str, object]] = {}
    epoch: dict[int, int] = {}
    running: list[tuple[float, int]] = []
    now = 0.0
    n_obs = 0
    next_id = 0
    times: dict[int, list[tuple[float, float]]] = {m: [] for m in marks}
    end = max(marks) + window // 2
    while n_obs < end:
        while len(running) < workers:
            suggestion, dt = timed(scheduler.suggest, next_id)
            for m in marks:
                if abs(n_obs - m) <= window // 2:
                    times[m].append(dt)
            if suggestion is None:
                break
            if suggestion.resume_trial_id is None:  # a new trial
                tid = next_id
                next_id += 1
                configs[tid] = dict(suggestion.config)
                epoch[tid] = 0
            else:
                tid = suggestion.resume_trial_id
            heapq.heappush(running, (now + rng.exponential(1.0), tid))
        if not running:
            break
        now, tid = heapq.heappop(running)
        trial = Trial(tid, configs[tid])
        while True:  # the trial trains until the scheduler pauses (or ends) it
            epoch[tid] += 1
            result = {"epoch": epoch[tid], "loss": learning_curve(configs[tid], epoch[tid])
                      + 0.01 * rng.standard_normal()}
            decision = scheduler.on_result(trial, result)
            n_obs += 1
            if epoch[tid] >= MAX_T:
                scheduler.on_complete(trial, result)
                break
            if decision is not Decision.CONTINUE:
                break
    return {m: {**stats(v), "cpu_median": float(np.median([c for _, c in v])) if v else float("nan")}
            for m, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, nargs="+", default=[100, 300, 1000],
                        help="observation counts at which decisions are timed (default 100 300 1000)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", choices=["FTBO", "FreezeThawGP"], default="FTBO",
                        help="FTBO (the DPL ensemble; default) or FreezeThawGP (FTBO over the freeze-thaw GP)")
    parser.add_argument("--surrogate", choices=["dpl", "pfn"], default="dpl",
                        help="FTBO's surrogate (default dpl)")
    parser.add_argument("--config-inputs", choices=["config", "gp"], default="config",
                        help="FTBO's config_inputs (gp: the PFN given the GP's predicted value; with --surrogate pfn)")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.workers} workers, load average {os.getloadavg()[0]:.1f} at the start")
    t0 = time.perf_counter()
    if args.config_inputs == "gp" and (args.method != "FTBO" or args.surrogate != "pfn"):
        print("tunebench: error: --config-inputs gp takes --method FTBO --surrogate pfn", file=sys.stderr)
        return 2
    res = bench(sorted(args.observations), args.workers, args.seed, method=args.method, surrogate=args.surrogate,
                config_inputs=args.config_inputs)
    label = (f"FTBO ({args.surrogate}{', GP inputs' if args.config_inputs == 'gp' else ''})" if args.method == "FTBO"
             else args.method)
    total = time.perf_counter() - t0
    ok = True
    for m, s in res.items():
        line = (f"{label} suggest at ~{m} observations: {s['median']:.1f} ms median, {s['p90']:.1f} p90, "
                f"{s['max']:.1f} max, {s['mean']:.1f} mean over {s['n']} calls (CPU {s['cpu_median']:.1f} ms median, "
                f"{s['cpu']:.1f} mean)")
        if m == max(res):
            met = s["median"] <= TARGET_MS
            ok &= met
            line += f"  [target median {TARGET_MS:.0f} ms: {'OK' if met else 'MISSED'}]"
        print(line)
    print(f"whole run {total:.1f} s; load average {os.getloadavg()[0]:.1f} at the end "
          "(times grow when other processes share the CPUs)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
