"""Throughput of LocalBackend: how many short trials per minute, and how fast a freed worker
gets its next trial.

Each trial runs a trivial script that reports ``--epochs`` epochs without sleeping; a minimal
loop over the backend starts a new trial as soon as one ends (``drive_local_backend``, kept
separate so another driver, the Tuner, can be measured the same way). Reference: Syne Tune's
local backend runs about 190 such trials per minute with 4 workers, so 2 workers should reach
at least 380 per minute to be twice as fast per worker.

    python benchmarks/local_backend_throughput.py [--trials 100] [--workers 2] [--epochs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from tunebench.backends.local import LocalBackend
from tunebench.types import EventKind, Trial

SYNE_TUNE_TRIALS_PER_MIN_4_WORKERS = 190.0
GAP_TARGET_MS = 100.0

TRIVIAL_SCRIPT = """
import argparse
from tunebench import report
p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--x", type=float, default=0.0)
args = p.parse_args()
for epoch in range(1, args.epochs + 1):
    report(epoch=epoch, loss=args.x / epoch)
"""

FINAL = (EventKind.COMPLETED, EventKind.FAILED, EventKind.PAUSED, EventKind.STOPPED)


@dataclass
class DriveStats:
    """What one run of a driver measured."""

    n_trials: int
    n_workers: int
    wall_s: float
    n_results: int = 0
    n_failed: int = 0
    #: seconds between a trial's end being observed and the next trial started on its worker
    gaps_s: list[float] = field(default_factory=list)
    #: seconds between a trial's last report and its end being observed (interpreter exit
    #: plus exit detection)
    exit_latency_s: list[float] = field(default_factory=list)
    #: seconds from start() to the end being observed, per trial
    trial_s: list[float] = field(default_factory=list)

    @property
    def trials_per_minute(self) -> float:
        return 60.0 * self.n_trials / self.wall_s


def drive_local_backend(backend: LocalBackend, n_trials: int, n_workers: int, root: Path,
                        epochs: int = 10) -> DriveStats:
    """Run ``n_trials`` trials on ``n_workers`` workers, starting the next trial as soon as one
    ends; return the measurements."""
    started_at: dict[int, float] = {}
    last_report: dict[int, float] = {}
    next_id = 0
    done = 0
    stats = DriveStats(n_trials=n_trials, n_workers=n_workers, wall_s=0.0)

    def launch() -> float:
        nonlocal next_id
        tid = next_id
        next_id += 1
        folder = root / f"trial_{tid}"
        folder.mkdir(parents=True)
        backend.start(Trial(tid, {"epochs": epochs, "x": float(tid)}), folder)
        now = time.time()
        started_at[tid] = now
        return now

    t0 = time.perf_counter()
    for _ in range(min(n_workers, n_trials)):
        launch()
    while done < n_trials:
        for event in backend.poll(30.0):
            if event.kind is EventKind.RESULT:
                stats.n_results += 1
                last_report[event.trial_id] = event.result["_timestamp"]
                continue
            if event.kind not in FINAL:
                continue
            done += 1
            if event.kind is not EventKind.COMPLETED:
                stats.n_failed += 1
                print(f"trial {event.trial_id} {event.kind.value}: {event.error}", file=sys.stderr)
            stats.trial_s.append(event.time - started_at[event.trial_id])
            if event.trial_id in last_report:
                stats.exit_latency_s.append(event.time - last_report[event.trial_id])
            if next_id < n_trials:
                stats.gaps_s.append(launch() - event.time)
    stats.wall_s = time.perf_counter() - t0
    return stats


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def print_stats(name: str, stats: DriveStats) -> None:
    ms = 1000.0
    rate = stats.trials_per_minute
    print(f"== {name}: {stats.n_trials} trials x {stats.n_results // max(stats.n_trials, 1)} "
          f"reports, {stats.n_workers} workers, {stats.n_failed} failed")
    print(f"wall time               {stats.wall_s:8.2f} s")
    print(f"throughput              {rate:8.0f} trials/min")
    syne = SYNE_TUNE_TRIALS_PER_MIN_4_WORKERS
    per_worker, syne_per_worker = rate / stats.n_workers, syne / 4
    target = 2 * syne  # with half its workers (2), twice its rate
    print(f"vs Syne Tune            {rate / syne:8.1f} x its {syne:.0f} trials/min at 4 workers "
          f"(target >= {target:.0f}/min: {'OK' if rate >= target else 'MISSED'}); per worker "
          f"{per_worker:.0f} vs {syne_per_worker:.1f}/min = {per_worker / syne_per_worker:.1f} x")
    if stats.gaps_s:
        med, p90 = statistics.median(stats.gaps_s) * ms, percentile(stats.gaps_s, 0.9) * ms
        print(f"restart gap             median {med:6.2f} ms, p90 {p90:6.2f} ms, "
              f"max {max(stats.gaps_s) * ms:6.2f} ms (target <= {GAP_TARGET_MS:.0f} ms: "
              f"{'OK' if p90 <= GAP_TARGET_MS else 'MISSED'})")
    if stats.exit_latency_s:
        print(f"last report -> exit seen median {statistics.median(stats.exit_latency_s) * ms:6.1f} ms, "
              f"p90 {percentile(stats.exit_latency_s, 0.9) * ms:6.1f} ms")
    print(f"trial duration          median {statistics.median(stats.trial_s) * ms:6.1f} ms, "
          f"p90 {percentile(stats.trial_s, 0.9) * ms:6.1f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tunebench-bench-") as tmp:
        root = Path(tmp)
        script = root / "trivial.py"
        script.write_text(textwrap.dedent(TRIVIAL_SCRIPT))
        backend = LocalBackend(script=script, gpus=[])
        try:
            stats = drive_local_backend(backend, args.trials, args.workers, root / "trials",
                                        epochs=args.epochs)
        finally:
            backend.shutdown()
    print_stats("LocalBackend, minimal driver", stats)


if __name__ == "__main__":
    main()
