"""End-to-end throughput of the Tuner on the local backend (random search, no-work trials).

A trivial script (or function) reports 10 epochs with no sleep; the Tuner runs ``--trials`` of
them on ``--workers`` workers, for three cases: the script with cold starts (a new interpreter per
trial, as before warm starts), the script with warm starts (forked from a prepared interpreter,
the default), and the same work as a Python function through :func:`tunebench.tune` (warm).
Printed per case: trials per minute, and the gap between a trial's last report and the first
line of the next trial's code (the n-th end matched with the (n + workers)-th start): what a
freed worker waits for its next trial. Targets: gap <= 100 ms; throughput >= 2x Syne Tune's best
(about 190 no-work trials a minute with 4 workers, measured on this machine); ``tune(fn)`` >= 2x
the trials per minute of the same work as a cold-started script (issue 14).

    python benchmarks/tuner_throughput.py [--trials 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tunebench.backends.local import LocalBackend
from tunebench.schedulers import make_scheduler
from tunebench.space import uniform
from tunebench.store import load_experiment
from tunebench.tune_function import tune
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

FUNCTION_MODULE = """
import time
from tunebench import report

def noop(config):
    first_line = time.time()
    for epoch in range(1, 11):
        report(epoch=epoch, loss=config["x"] / epoch, first_line=first_line)
"""

CASES = ("script, cold", "script, warm", "tune(fn), warm")


def run(n_trials: int, n_workers: int, root: Path, case: str = "script, warm") -> dict[str, float]:
    root.mkdir(parents=True, exist_ok=True)
    space = {"x": uniform(0.0, 1.0)}
    gaps = LaunchGaps()
    exp = root / "exp"
    t0 = time.perf_counter()
    if case.startswith("tune(fn)"):
        (root / "tt_noop_fn.py").write_text(textwrap.dedent(FUNCTION_MODULE))
        sys.path.insert(0, str(root))
        try:
            module = importlib.import_module("tt_noop_fn")
            result = tune(module.noop, space, metric="loss", method="RS", n_workers=n_workers, max_trials=n_trials,
                          experiment_dir=exp, callbacks=[gaps])
        finally:
            sys.path.remove(str(root))
            sys.modules.pop("tt_noop_fn", None)
    else:
        script = root / "noop.py"
        script.write_text(textwrap.dedent(SCRIPT))
        scheduler = make_scheduler("RS", space, metric="loss", mode="min", seed=0)
        backend = LocalBackend(script=script, warm_start=case.endswith("warm"))
        tuner = Tuner(backend, scheduler, n_workers=n_workers, stop=StopCriteria(max_trials=n_trials),
                      experiment_dir=exp, callbacks=[gaps])
        result = tuner.run()
    wall = time.perf_counter() - t0
    assert result.n_completed == n_trials, result
    df = load_experiment(exp).results
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
    print(f"tuner + local backend, RS, {args.trials} no-work trials x 10 reports, {args.workers} workers")
    per_minute = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(CASES):
            figures = run(args.trials, args.workers, Path(tmp) / str(i), case)
            per_minute[case] = figures["trials_per_minute"]
            print(f"{case}:")
            print(f"  trials per minute:            {figures['trials_per_minute']:.0f}  "
                  f"(Syne Tune best, 4 workers: 190; ratio {figures['trials_per_minute'] / 190:.2f}x, target >= 2x)")
            print(f"  trial end seen -> next trial launched (the tuner's part), median "
                  f"{figures['launch_median_ms']:.1f} ms, p90 {figures['launch_p90_ms']:.1f} ms  (target <= 100 ms)")
            print(f"  last report -> next trial's first line (exit + start), median "
                  f"{figures['gap_median_ms']:.1f} ms, p90 {figures['gap_p90_ms']:.1f} ms")
            print(f"  wall time:                    {figures['wall_s']:.1f} s")
    cold = per_minute["script, cold"]
    print(f"warm script / cold script: {per_minute['script, warm'] / cold:.2f}x; "
          f"tune(fn) warm / cold script: {per_minute['tune(fn), warm'] / cold:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
