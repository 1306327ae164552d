"""Speed of the multi-objective arithmetic of ``tunebench.pareto`` at ``--n`` points (default 1000).

Two kinds of point sets in minimization form: ``uniform`` (uniform in the unit cube: few points
per front, many fronts, like a rung's results) and ``front`` (every point on one concave front:
the worst case of the tie-breaks and of the hypervolume).

* non-dominated sorting (``pareto_ranks``), d = 2 and 3;
* exact hypervolume (``hypervolume``, moocore's C code), d = 2 and 3;
* ``rank_by_nondominated_sorting`` with the ε-net tie-break (MOASHA's rung order), full and
  top ``1/eta`` only (``max_items``), d = 2;
* the MOASHA estimate: issue 15's target is <= 50 µs per report at 1000 trials. A rung decision
  asks whether the new result is in the top ``1/eta`` of its rung (``is_in_top``, ε-net); the
  script times it, recomputed from scratch on the rung's results, at rung sizes s up to ``--n``
  (the new result a random one of them) and integrates over an experiment of ``--n`` trials with
  eta = 3, max_t = 27 (rungs 1, 3, 9: about n, n/3, n/9 decisions), one report per epoch,
  stopping type (about 3 n reports: n at epoch 1, then 2 n/3, 6 n/9 and 18 n/27), and prints
  the mean cost per rung decision and per report.

    .venv/bin/python benchmarks/pareto_speed.py [--n N] [--repeats R]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tunebench.pareto import hypervolume, is_in_top, pareto_ranks, rank_by_nondominated_sorting

TARGET_US_PER_REPORT = 50.0
ETA = 3


def point_set(kind: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.random((n, d))
    x = rng.random((n, d)) + 1e-9  # on the unit sphere's positive part: all mutually non-dominated
    return 1.0 - x / np.linalg.norm(x, axis=1, keepdims=True)


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    """The smallest of ``repeats`` timings of ``fn()``, in seconds (the least disturbed run)."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def rung_decision_time(s: int, repeats: int) -> float:
    """Mean seconds of "is this result in the top 1/eta of a rung of ``s`` results (2 objectives)?",
    over 20 results of the rung (the best of ``repeats`` timings each)."""
    Y = point_set("uniform", s, 2, seed=s)
    k = math.ceil(s / ETA)
    rows = np.random.default_rng(s).integers(0, s, size=20)
    return float(np.mean([best_time(lambda i=int(i): is_in_top(Y, i, k), repeats) for i in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of points (trials)")
    parser.add_argument("--repeats", type=int, default=20, help="timings per figure (the best is printed)")
    args = parser.parse_args()
    n, repeats = args.n, args.repeats

    print(f"n = {n} points, best of {repeats} runs")
    for kind in ("uniform", "front"):
        for d in (2, 3):
            Y = point_set(kind, n, d)
            fronts = int(pareto_ranks(Y).max()) + 1
            sort_s = best_time(lambda Y=Y: pareto_ranks(Y), repeats)
            ref = np.full(d, 1.1)
            hv_s = best_time(lambda Y=Y, ref=ref: hypervolume(Y, ref), repeats)
            print(f"{kind:8s} d={d}: non-dominated sorting {sort_s * 1e3:8.3f} ms ({fronts} fronts)   "
                  f"hypervolume {hv_s * 1e3:8.3f} ms")
    for kind in ("uniform", "front"):
        Y = point_set(kind, n, 2)
        full = best_time(lambda Y=Y: rank_by_nondominated_sorting(Y, "eps_net"), repeats)
        top = best_time(lambda Y=Y: rank_by_nondominated_sorting(Y, "eps_net", max_items=math.ceil(n / ETA)), repeats)
        crowd = best_time(lambda Y=Y: rank_by_nondominated_sorting(Y, "crowding"), repeats)
        print(f"{kind:8s} d=2: rank_by_nondominated_sorting eps_net {full * 1e3:8.3f} ms, "
              f"top 1/{ETA} only {top * 1e3:8.3f} ms; crowding {crowd * 1e3:8.3f} ms")

    # MOASHA: the mean cost of a rung decision over an experiment of n trials
    sizes = sorted({s for s in np.unique(np.geomspace(1, n, 12).astype(int)) if s >= 1})
    cost = {s: rung_decision_time(s, max(3, repeats // 2)) for s in sizes}
    print("rung decision (is_in_top, top 1/eta, eps_net), d=2: "
          + ", ".join(f"s={s}: {cost[s] * 1e6:.0f} us" for s in sizes))
    grid = np.array(sizes, dtype=float)
    values = np.array([cost[s] for s in sizes])
    total = 0.0
    decisions = 0
    for rung_size in (n, n // ETA, n // ETA**2):
        s = np.arange(1, rung_size + 1, dtype=float)
        total += float(np.interp(s, grid, values).sum())
        decisions += rung_size
    reports = n + 2 * n / ETA + 6 * n / ETA**2 + 18 * n / ETA**3
    per_decision = total / max(decisions, 1)
    per_report = total / reports
    print(f"MOASHA estimate at {n} trials (eta={ETA}, max_t=27, stopping type): {decisions} rung decisions, "
          f"{reports:.0f} reports: mean {per_decision * 1e6:.0f} us per rung decision, "
          f"{per_report * 1e6:.0f} us per report amortized (target <= {TARGET_US_PER_REPORT:.0f} us per report); "
          f"a decision recomputed from scratch at the largest rung: {cost[sizes[-1]] * 1e6:.0f} us")


if __name__ == "__main__":
    main()
