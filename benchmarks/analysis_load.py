"""Loading speed of experiment grids for analysis (``tunebench.analysis.load_grid``).

Writes a synthetic grid (by default 1,000 experiment folders: 4 benchmarks x 10 methods x 25
seeds, 300 results each, event logs as the tuner writes them: session start, trial starts with
their configuration, results with simulated and real time and a decision, trial ends,
experiment end) into a temporary folder with the real experiment store, then times
``load_grid`` (twice: the files are in the OS cache, just written), the summary
table and the report.

Target: 1,000 folders of 300 results load in under 10 s.

    python benchmarks/analysis_load.py [--benchmarks 4] [--methods 10] [--seeds 25] [--results 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tunebench.analysis.aggregate import summarize
from tunebench.analysis.layout import experiment_path
from tunebench.analysis.report import write_report
from tunebench.analysis.results import load_grid
from tunebench.store import ExperimentStore


def write_experiment(path: Path, rng: np.random.Generator, n_results: int, budget: float, method: str,
                     seed: int, benchmark: str) -> None:
    """One experiment folder with ``n_results`` results of trials of 1 to 9 epochs."""
    meta = {"metric": "loss", "mode": "min", "method": method, "seed": seed, "benchmark": benchmark,
            "resource_attr": "epoch", "n_workers": 4,
            "stop": {"max_wallclock_time": budget, "max_trials": None, "max_results": None},
            "run_spec": {"max_wallclock_time": budget, "method": method, "seed": seed}}
    store = ExperimentStore.create(path, meta)
    store.flush_each = False
    t = 0.0
    store.append({"event": "session_start", "resumed": False, "time": 0.0, "real_time": 0.0})
    trial, epoch, n_epochs, quality = -1, 0, 0, 0.0
    for _ in range(n_results):
        if epoch == n_epochs:
            trial += 1
            epoch, n_epochs, quality = 0, int(rng.integers(1, 10)), float(rng.random())
            config = {"lr": float(rng.random()), "width": int(rng.integers(16, 512)), "act": "relu"}
            store.append({"event": "trial_start", "trial_id": trial, "config": config, "time": t,
                          "real_time": t / 1000})
        epoch += 1
        t += float(rng.exponential(budget / n_results))
        loss = quality + 1.0 / epoch + 0.01 * float(rng.standard_normal())
        store.append({"event": "result", "trial_id": trial,
                      "result": {"epoch": epoch, "loss": loss, "time": t, "elapsed_time": 10.0 * epoch},
                      "decision": "CONTINUE" if epoch < n_epochs else "STOP", "time": t, "real_time": t / 1000})
        if epoch == n_epochs:
            store.append({"event": "trial_complete", "trial_id": trial, "time": t, "real_time": t / 1000})
    store.append({"event": "experiment_end", "reason": "max_wallclock_time", "time": t, "real_time": t / 1000})
    store.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmarks", type=int, default=4)
    p.add_argument("--methods", type=int, default=10)
    p.add_argument("--seeds", type=int, default=25)
    p.add_argument("--results", type=int, default=300)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    n = args.benchmarks * args.methods * args.seeds
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for b in range(args.benchmarks):
            for m in range(args.methods):
                for s in range(args.seeds):
                    write_experiment(experiment_path(tmp, "bench", f"toy-{b}", f"M{m}", s), rng, args.results,
                                     3600.0, f"M{m}", s, f"toy-{b}")
        size = sum(f.stat().st_size for f in Path(tmp).rglob("events.jsonl"))
        print(f"wrote {n} experiment folders ({args.results} results each, {size / 2**20:.0f} MiB of event logs) "
              f"in {time.perf_counter() - t0:.1f} s")
        for label in ("first call", "second call"):
            t0, c0 = time.perf_counter(), time.process_time()
            grid = load_grid(tmp, "bench", known_optima=False)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"load_grid ({label}): {len(grid.runs)} experiments in {elapsed:.2f} s, {cpu:.2f} s CPU "
                  f"({1000 * elapsed / len(grid.runs):.2f} ms each; target: 1,000 in < 10 s)")
        t0 = time.perf_counter()
        table = summarize(grid)
        print(f"summarize: {len(table)} rows in {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        write_report(grid, Path(tmp) / "report")
        print(f"write_report: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
