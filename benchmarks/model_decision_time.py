"""Decision time of the model-based methods ``BO`` and ``MOBSTER``.

Drives each method without any backend on a 6-dimensional mixed space (two floats, a log
float, two integers, a choice) with a smooth synthetic objective, ``--workers`` trials running
at once and completions in simulated-time order, and times the scheduler's own calls with
``time.perf_counter``.  Refits happen inside ``suggest`` and are included (amortized).

* ``BO`` (FIFO + GP): each trial reports once and completes; ``suggest`` time is reported
  around ``--observations`` finished trials (default 1000).  Target: <= 30 ms.
* ``MOBSTER`` (ASHA + GP over config and epoch): one report per epoch (``max_t`` = 27);
  ``suggest`` and ``on_result`` times are reported around ``--reports`` results (default
  1000), and at three times that many (the model is subsampled: time stays bounded).
  Target: <= 50 ms per decision.

    .venv/bin/python benchmarks/model_decision_time.py [--observations N] [--reports N] [--workers W]
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from tunebench.schedulers import make_scheduler
from tunebench.space import choice, loguniform, randint, uniform
from tunebench.types import Decision, Trial

BO_TARGET_MS = 30.0
MOBSTER_TARGET_MS = 50.0
MAX_T = 27

SPACE: dict[str, Any] = {
    "x1": uniform(0.0, 1.0),
    "x2": uniform(-2.0, 2.0),
    "lr": loguniform(1e-5, 1e-1),
    "units": randint(16, 512),
    "layers": randint(1, 8),
    "act": choice(["relu", "tanh", "gelu"]),
}
_ACT = {"relu": 0.0, "tanh": 0.3, "gelu": 0.1}


def objective(config: dict[str, Any]) -> float:
    """A smooth function of every hyperparameter (minimum about 0)."""
    return (
        (config["x1"] - 0.3) ** 2
        + 0.25 * math.sin(2.0 * config["x2"]) ** 2
        + 0.1 * (math.log10(config["lr"]) + 3.0) ** 2
        + 0.2 * (math.log2(config["units"]) - 7.0) ** 2 / 9.0
        + 0.02 * (config["layers"] - 3) ** 2
        + _ACT[config["act"]]
    )


def learning_curve(config: dict[str, Any], epoch: int) -> float:
    return objective(config) + (0.5 + 0.3 * config["x1"]) / math.sqrt(epoch)


def stats(ms: list[tuple[float, float]]) -> dict[str, float]:
    """Wall-clock and CPU milliseconds of timed calls -> summary."""
    if not ms:
        nan = float("nan")
        return {"n": 0, "mean": nan, "median": nan, "p90": nan, "max": nan, "cpu": nan}
    a = np.asarray([w for w, _ in ms])
    cpu = np.asarray([c for _, c in ms])
    return {"n": len(a), "mean": float(a.mean()), "median": float(np.median(a)), "p90": float(np.quantile(a, 0.9)),
            "max": float(a.max()), "cpu": float(cpu.mean())}


class Timer:
    """Times a call: wall clock and this process's CPU time, in ms."""

    def __call__(self, fn: Any, *args: Any) -> tuple[Any, tuple[float, float]]:
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        return out, ((time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3)


def bench_bo(n_obs: int, workers: int, seed: int, window: int = 100) -> dict[str, Any]:
    """Suggest times (ms) while the number of finished trials is in ``[n_obs - window/2, n_obs + window/2)``."""
    scheduler = make_scheduler("BO", SPACE, metric="loss", mode="min", seed=seed)
    rng = np.random.default_rng(seed)
    timed = Timer()
    running: list[tuple[float, int, Trial]] = []
    now = 0.0
    finished = 0
    next_id = 0
    lo, hi = n_obs - window // 2, n_obs + window // 2
    around: list[tuple[float, float]] = []
    early: dict[int, list[tuple[float, float]]] = {100: [], 300: []}
    while finished < hi:
        while len(running) < workers:
            suggestion, dt = timed(scheduler.suggest, next_id)
            if lo <= finished < hi:
                around.append(dt)
            for k in early:
                if k - 10 <= finished < k + 10:
                    early[k].append(dt)
            trial = Trial(next_id, suggestion.config)
            next_id += 1
            heapq.heappush(running, (now + rng.exponential(1.0), trial.trial_id, trial))
        now, _, trial = heapq.heappop(running)
        result = {"loss": objective(trial.config) + 0.01 * rng.standard_normal()}
        scheduler.on_result(trial, result)
        scheduler.on_complete(trial, result)
        finished += 1
    searcher = scheduler.searcher
    return {"around": stats(around), "early": {k: stats(v) for k, v in early.items()},
            "fits": searcher._surrogate.n_fits, "model_points": searcher._surrogate.gp.n}


def bench_mobster(n_reports: int, workers: int, seed: int, window: int = 200) -> dict[str, Any]:
    """Suggest and on_result times (ms) around ``n_reports`` and ``3 * n_reports`` results."""
    space = {**SPACE, "epochs": MAX_T}
    scheduler = make_scheduler("MOBSTER", space, metric="loss", mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", seed=seed)
    rng = np.random.default_rng(seed)
    timed = Timer()
    marks = [n_reports, 3 * n_reports]
    sug: dict[int, list[tuple[float, float]]] = {m: [] for m in marks}
    res: dict[int, list[tuple[float, float]]] = {m: [] for m in marks}
    running: list[tuple[float, int, Trial, int]] = []  # (time, seq, trial, epoch to report)
    now = 0.0
    reports = 0
    next_id = 0
    seq = 0
    trials = 0
    while reports < marks[-1] + window // 2:
        while len(running) < workers:
            suggestion, dt = timed(scheduler.suggest, next_id)
            for m in marks:
                if m - window // 2 <= reports < m + window // 2:
                    sug[m].append(dt)
            trial = Trial(next_id, suggestion.config)
            next_id += 1
            trials += 1
            seq += 1
            heapq.heappush(running, (now + rng.exponential(0.2), seq, trial, 1))
        now, _, trial, epoch = heapq.heappop(running)
        result = {"loss": learning_curve(trial.config, epoch) + 0.01 * rng.standard_normal(), "epoch": epoch}
        decision, dt = timed(scheduler.on_result, trial, result)
        for m in marks:
            if m - window // 2 <= reports < m + window // 2:
                res[m].append(dt)
        reports += 1
        if decision is Decision.CONTINUE and epoch < MAX_T:
            seq += 1
            heapq.heappush(running, (now + rng.exponential(0.2), seq, trial, epoch + 1))
        elif decision is Decision.CONTINUE:
            scheduler.on_complete(trial, result)
    searcher = scheduler.searcher
    return {"suggest": {m: stats(v) for m, v in sug.items()}, "result": {m: stats(v) for m, v in res.items()},
            "trials": trials, "fits": searcher._surrogate.n_fits, "model_points": searcher._surrogate.gp.n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=1000, help="BO: finished trials (default 1000)")
    parser.add_argument("--reports", type=int, default=1000, help="MOBSTER: reported results (default 1000)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["BO", "MOBSTER"], default=None)
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.workers} workers, load average {os.getloadavg()[0]:.1f} at the start")
    ok = True

    def line(name: str, s: dict[str, float]) -> str:
        return (f"{name}: {s['mean']:.1f} ms mean, {s['median']:.1f} median, {s['p90']:.1f} p90, "
                f"{s['max']:.1f} max over {s['n']} calls (CPU {s['cpu']:.1f} ms mean)")

    if args.only in (None, "BO"):
        t0 = time.perf_counter()
        bo = bench_bo(args.observations, args.workers, args.seed)
        total = time.perf_counter() - t0
        for k, s in bo["early"].items():
            print(line(f"BO suggest at ~{k} observations", s))
        s = bo["around"]
        print(line(f"BO suggest at ~{args.observations} observations", s)
              + f"  [target {BO_TARGET_MS:.0f} ms: {'OK' if s['mean'] <= BO_TARGET_MS else 'MISSED'}]")
        print(f"BO: {bo['fits']} hyperparameter fits, model on {bo['model_points']} points at the end, "
              f"whole run {total:.1f} s")
        ok &= s["mean"] <= BO_TARGET_MS
    if args.only in (None, "MOBSTER"):
        t0 = time.perf_counter()
        mo = bench_mobster(args.reports, args.workers, args.seed)
        total = time.perf_counter() - t0
        for m in mo["suggest"]:
            s = mo["suggest"][m]
            tag = f"  [target {MOBSTER_TARGET_MS:.0f} ms: {'OK' if s['mean'] <= MOBSTER_TARGET_MS else 'MISSED'}]"
            print(line(f"MOBSTER suggest at ~{m} reports", s) + tag)
            print(line(f"MOBSTER on_result at ~{m} reports", mo["result"][m]))
            ok &= s["mean"] <= MOBSTER_TARGET_MS
        print(f"MOBSTER: {mo['trials']} trials, {mo['fits']} hyperparameter fits, model on {mo['model_points']} "
              f"points at the end, whole run {total:.1f} s")
    print(f"load average {os.getloadavg()[0]:.1f} at the end (times grow when other processes share the CPUs)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
