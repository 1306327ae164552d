"""Warm vs cold starts through the whole tuner, on a real torch benchmark (issue 14).

Runs ``tunebench run --benchmark resnet_images --method ASHA-promotion --n-workers N
--max-wallclock-time S`` alternately with warm starts (the default) and ``--no-warm-start``,
``--pairs`` times, and prints for each run: epochs trained (results), trial runs started
(starts, resumes, restarts), and the fraction of worker time spent inside training epochs
(sum of the reported ``epoch_time`` over n_workers x the tuning time); then the warm/cold ratio
of the epochs. Targets: on the 2-core CPU machine, >= 25% more epochs warm; on a GPU machine with
4 workers for 100 s, the training fraction >= 60% warm.

    python benchmarks/warm_start_epochs.py [--pairs 1] [--seconds 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(folder: Path, warm: bool, seconds: float, workers: int, method: str) -> dict[str, float]:
    exp = folder / ("warm" if warm else "cold")
    command = [sys.executable, "-m", "tunebench", "run", "--benchmark", "resnet_images", "--method", method,
               "--n-workers", str(workers), "--max-wallclock-time", str(seconds), "--experiment-dir", str(exp),
               "--no-progress", "--warm-start" if warm else "--no-warm-start"]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines() if line.strip()]
    results = [e for e in events if e.get("event") == "result"]
    runs = [e for e in events if e.get("event") in ("trial_start", "trial_resume", "trial_restart")]
    elapsed = max(e.get("time", 0.0) for e in events)
    train = sum(float(e["result"].get("epoch_time", 0.0)) for e in results)
    return {"epochs": len(results), "runs": len(runs), "elapsed": elapsed,
            "train_fraction": train / (workers * elapsed) if elapsed > 0 else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1, help="warm/cold pairs, alternating")
    parser.add_argument("--seconds", type=float, default=300.0, help="--max-wallclock-time of each run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--method", default="ASHA-promotion")
    args = parser.parse_args()
    figures: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for warm in ((True, False) if pair % 2 == 0 else (False, True)):
                folder = Path(tmp) / f"{pair}"
                folder.mkdir(exist_ok=True)
                run = one_run(folder, warm, args.seconds, args.workers, args.method)
                figures[warm].append(run)
                print(f"pair {pair} {'warm' if warm else 'cold'}: {run['epochs']} epochs, {run['runs']} trial runs, "
                      f"{100 * run['train_fraction']:.0f}% of worker time in training epochs "
                      f"({run['elapsed']:.0f} s)", flush=True)
    warm_epochs = statistics.median(r["epochs"] for r in figures[True])
    cold_epochs = statistics.median(r["epochs"] for r in figures[False])
    print(f"resnet_images, {args.method}, {args.workers} workers, {args.seconds:g} s, {args.pairs} pair(s): "
          f"epochs warm {warm_epochs:g} vs cold {cold_epochs:g} = {warm_epochs / max(cold_epochs, 1):.2f}x "
          f"(target >= 1.25x on CPU); training fraction warm "
          f"{100 * statistics.median(r['train_fraction'] for r in figures[True]):.0f}% vs cold "
          f"{100 * statistics.median(r['train_fraction'] for r in figures[False]):.0f}%")


if __name__ == "__main__":
    main()
