"""End-to-end throughput of the Tuner on the local backend (random search, no-work trials).

A trivial script reports 10 epochs with no sleep; the Tuner runs ``--trials`` of them on
``--workers`` workers. Printed: trials per minute, and the gap between a trial's last report and
the first line of the next trial's script (the n-th end matched with the (n + workers)-th start):
what a freed worker waits for its next trial, Python's own start-up (~20 ms) included. Targets: gap <= 100 ms;
throughput >= 2x Syne Tune's best (about 190 no-work trials a minute with 4 workers, measured on
this machine).

    python benchmarks/tuner_throughput.py [--trials 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from tunebench.backends.local import LocalBackend
from tunebench.schedulers import make_scheduler
from tunebench.space import uniform
from tunebench.store import load_experiment
from tunebench.tuner import Callback, StopCriteria, Tuner


class LaunchGaps(Callback):
    """Times, in the tuner, from handling a trial's end to launching the next trial."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.gaps: list[float] = []

    def on_trial_end(self, tuner, trial, status) -> None:
        self.ends.append(time.perf_counter())

    def on_trial_start(self, tuner, trial, how) -> None:
        if self.ends:
            self.gaps.append(time.perf_counter() - self.ends.pop(0))

SCRIPT = """
import time
first_line = time.time()  # before any import: the process is up and running the script
import sys
from tunebench import report
for epoch in range(1, 11):
    report(epoch=epoch, loss=float(sys.argv[2]) / epoch, first_line=first_line)
"""


def run(n_trials: int, n_workers: int, root: Path) -> dict[str, float]:
    script = root / "noop.py"
    script.write_text(textwrap.dedent(SCRIPT))
    space = {"x": uniform(0.0, 1.0)}
    scheduler = make_scheduler("RS", space, metric="loss", mode="min", seed=0)
    gaps = LaunchGaps()
    tuner = Tuner(LocalBackend(script=script), scheduler, n_workers=n_workers,
                  stop=StopCriteria(max_trials=n_trials), experiment_dir=root / "exp", callbacks=[gaps])
    t0 = time.perf_counter()
    result = tuner.run()
    wall = time.perf_counter() - t0
    assert result.n_completed == n_trials, result
    df = load_experiment(root / "exp").results
    per_trial = df.groupby("trial_id").agg(first_line=("first_line", "first"), last=("_timestamp", "max"))
    ends = sorted(per_trial["last"].tolist())
    starts = sorted(per_trial["first_line"].tolist())[n_workers:]  # the first n_workers start at t=0
    worker_gaps = [s - e for s, e in zip(starts, ends, strict=False)]
    return {"trials_per_minute": n_trials / wall * 60, "wall_s": wall,
            "gap_median_ms": statistics.median(worker_gaps) * 1000,
            "gap_p90_ms": sorted(worker_gaps)[int(0.9 * (len(worker_gaps) - 1))] * 1000,
            "launch_median_ms": statistics.median(gaps.gaps) * 1000,
            "launch_p90_ms": sorted(gaps.gaps)[int(0.9 * (len(gaps.gaps) - 1))] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(args.trials, args.workers, Path(tmp))
    print(f"tuner + local backend, RS, {args.trials} no-work trials x 10 reports, {args.workers} workers")
    print(f"  trials per minute:            {figures['trials_per_minute']:.0f}  "
          f"(Syne Tune best, 4 workers: 190; ratio {figures['trials_per_minute'] / 190:.2f}x, target >= 2x)")
    print(f"  trial end seen -> next trial launched (the tuner's part), median "
          f"{figures['launch_median_ms']:.1f} ms, p90 {figures['launch_p90_ms']:.1f} ms  (target <= 100 ms)")
    print(f"  last report -> next script's first line (exit + spawn + Python start-up), median "
          f"{figures['gap_median_ms']:.1f} ms, p90 {figures['gap_p90_ms']:.1f} ms")
    print(f"  wall time:                    {figures['wall_s']:.1f} s")


if __name__ == "__main__":
    main()
