"""The Ray backend on a real multi-node Ray cluster started on this machine (a head node without
CPUs and two worker nodes, each its own ``ray start`` process).

1. Per-trial overhead: a trivial script (one report, then exit) tuned with random search through
   the whole Tuner on ``--workers`` workers, ``--trials`` trials, on the local backend, on Ray with
   the warm pool, and on Ray with a new actor per trial. Printed: seconds of worker time per trial
   (wall time x workers / trials: all of it is overhead for a no-work script) and the ratio to
   the local backend's. Target: warm pool within 2x of local.
2. Scaling: a script that sleeps ``--epoch-time`` per epoch for ``--epochs`` epochs,
   ``--rounds`` trials per worker, with 1, 2, 4 and 8 workers (trial actors spread over the two
   nodes, warm pool). Printed: trials per minute and the parallel efficiency (throughput /
   (workers x throughput with 1 worker)), over the whole run and in the steady state (from the
   first trial completed on every worker to the last: the one-time start of the actors, 8
   Python processes at once on this 2-core machine, left out). Target: >= 90% at 8 workers.

    python benchmarks/ray_backend.py [--trials 60] [--workers 2] [--epoch-time 0.5] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

from tunebench.backends.local import LocalBackend  # noqa: E402
from tunebench.backends.ray_backend import RayBackend  # noqa: E402
from tunebench.schedulers import make_scheduler  # noqa: E402
from tunebench.space import uniform  # noqa: E402
from tunebench.testing.ray_cluster import LocalRayCluster  # noqa: E402
from tunebench.tuner import StopCriteria, Tuner  # noqa: E402

NOOP = """
import sys
from tunebench import report
report(epoch=1, loss=float(sys.argv[-1]))
"""

SLEEPER = """
import sys, time
from tunebench import report
epochs, epoch_time = int(sys.argv[1]), float(sys.argv[2])
for epoch in range(1, epochs + 1):
    time.sleep(epoch_time)
    report(epoch=epoch, loss=float(sys.argv[-1]) / epoch)
"""


def completion_times(exp: Path) -> list[float]:
    """Tuning times at which trials completed, in order."""
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    return sorted(e["time"] for e in events if e.get("event") == "trial_complete")


def tune(backend, n_trials: int, n_workers: int, exp: Path) -> float:
    """Wall seconds to run ``n_trials`` trials of random search on ``n_workers`` workers."""
    scheduler = make_scheduler("RS", {"x": uniform(0.0, 1.0)}, metric="loss", mode="min", seed=0)
    tuner = Tuner(backend, scheduler, n_workers=n_workers, stop=StopCriteria(max_trials=n_trials),
                  experiment_dir=exp)
    t0 = time.perf_counter()
    result = tuner.run()
    wall = time.perf_counter() - t0
    assert result.n_completed == n_trials, result
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epoch-time", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6, help="trials per worker in the scaling runs")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs per setting")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="tb-ray-bench-"))
    noop = root / "noop.py"
    noop.write_text(textwrap.dedent(NOOP))
    sleeper = root / "sleeper.py"
    sleeper.write_text(textwrap.dedent(SLEEPER))

    t0 = time.perf_counter()
    with LocalRayCluster(head_cpus=0, workers={"node_a": 4, "node_b": 4}) as cluster:
        print(f"cluster: head (0 CPU) + 2 worker nodes x 4 CPUs, up in {time.perf_counter() - t0:.1f} s")
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            print(f"\n1. per-trial overhead: no-work script, {args.trials} trials, {args.workers} workers "
                  f"(best of {args.repeats})")
            per_trial: dict[str, float] = {}
            saved = 0.0
            for i in range(args.repeats):
                for name in ("local", "ray warm pool", "ray cold"):
                    if name == "local":
                        backend = LocalBackend(script=noop)
                    else:
                        backend = RayBackend(script=noop, warm_pool=(name == "ray warm pool"))
                    wall = tune(backend, args.trials, args.workers, root / f"overhead-{name}-{i}")
                    value = wall * args.workers / args.trials
                    per_trial[name] = min(per_trial.get(name, float("inf")), value)
                    if name == "ray warm pool":
                        saved = max(saved, backend.startup_saved())
            local = per_trial["local"]
            print(f"{'backend':<16}{'s per trial':>12}{'x local':>9}")
            for name, value in per_trial.items():
                print(f"{name:<16}{value:>12.3f}{value / local:>9.2f}")
            print(f"warm pool: actor start-up saved {saved:.1f} s over {args.trials} trials "
                  f"({saved / args.trials * 1000:.0f} ms per trial)")
            ratio = per_trial["ray warm pool"] / local
            print(f"target: warm pool within 2x of local: {'yes' if ratio <= 2 else 'NO'} ({ratio:.2f}x)")

            trial_time = args.epochs * args.epoch_time
            rounds = args.rounds
            print(f"\n2. scaling: {args.epochs} epochs x {args.epoch_time:g} s sleep ({trial_time:g} s per "
                  f"trial), {rounds} trials per worker, warm pool")
            print(f"{'workers':>8}{'trials/min':>12}{'efficiency':>12}{'steady trials/min':>19}{'efficiency':>12}")
            base = steady_base = None
            efficiency = steady_efficiency = 0.0
            for n in (1, 2, 4, 8):
                backend = RayBackend(script=sleeper, extra_args=[str(args.epochs), str(args.epoch_time)])
                exp = root / f"scaling-{n}"
                wall = tune(backend, rounds * n, n, exp)
                throughput = rounds * n / wall * 60
                done = completion_times(exp)
                steady = (len(done) - n) / (done[-1] - done[n - 1]) * 60
                base = throughput if base is None else base
                steady_base = steady if steady_base is None else steady_base
                efficiency = throughput / (n * base)
                steady_efficiency = steady / (n * steady_base)
                print(f"{n:>8}{throughput:>12.1f}{efficiency:>11.0%}{steady:>19.1f}{steady_efficiency:>11.0%}")
            print(f"ideal: {60 / trial_time:.1f} trials/min per worker; target: >= 90% at 8 workers (steady "
                  f"state): {'yes' if steady_efficiency >= 0.9 else 'NO'} ({steady_efficiency:.0%}; whole run "
                  f"{efficiency:.0%})")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
