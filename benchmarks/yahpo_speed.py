"""YAHPO simulation speed: results per real second of ASHA simulated on generated YAHPO scenarios.

Two scenarios generated in YAHPO's data layout (tunebench.testing.yahpo_data; the real data of
these scenarios is not available here, the generated surrogates are small networks with the real
scenarios' interfaces): an rbv2_super-like scenario (38 hyperparameters with rbv2_super's
conditions, trainsize levels 1..20, repl pinned at 10; free batch dimension) and an nb301-like one
(34 conditional cell choices, epochs 1..98; a model with a fixed batch of 1, fed one row at a
time). ASHA, 4 workers, the benchmarks' default simulated budget (rbv2: 3,600 s, about 7,500
results; nb301: 12 h, about 890,000 results, so it stops at ``--max-results``), configs checked as
in a run. Best of three runs, in wall and in CPU time (this machine's wall-clock rates vary from
run to run: other virtual machines on the host).

Targets: rbv2 >= 5,000 results/s, nb301 >= 1,000 results/s.

    python benchmarks/yahpo_speed.py [--budget-scale 1.0] [--max-results 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.yahpo import SCENARIOS, YahpoBlackbox
from tunebench.schedulers import make_scheduler
from tunebench.tuner import StopCriteria, Tuner

TARGETS = {"rbv2_super": 5000, "nb301": 1000}


def simulate(bb: YahpoBlackbox, budget: float, max_results: int | None, root: Path) -> dict:
    facts = bb.facts
    scheduler = make_scheduler("ASHA", dict(bb.config_space), metric=facts.metric, mode=facts.mode,
                               resource_attr=bb.fidelity_name, max_t=int(bb.fidelity_values[-1]), seed=0)
    stop = StopCriteria(max_wallclock_time=budget, max_results=max_results)
    tuner = Tuner(SimulatorBackend(bb, seed=0), scheduler, n_workers=4, stop=stop,
                  experiment_dir=root / f"{bb.name}-{time.monotonic_ns()}")
    t0, c0 = time.perf_counter(), time.process_time()
    result = tuner.run()
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "results": result.n_results,
            "trials": result.n_trials, "simulated": result.elapsed_time}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply the default budgets")
    parser.add_argument("--max-results", type=int, default=20000,
                        help="stop a run after this many results (0: the budget alone)")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (the best one is reported)")
    args = parser.parse_args()
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"skipped: the generated scenarios need {', '.join(missing)} (pip install 'tunebench[dev]')")
        return
    from tunebench.testing.yahpo_data import nb301_space, rbv2_super_space, write_scenario

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_scenario(root, "rbv2_super", rbv2_super_space())
        write_scenario(root, "nb301", nb301_space(), batch_size=1)
        print(f"ASHA, 4 workers, simulator; best of {args.runs} runs")
        for scenario, instance in (("rbv2_super", "1040"), ("nb301", "CIFAR10")):
            bb = YahpoBlackbox(scenario, instance, data_dir=root)
            budget = SCENARIOS[scenario].budget * args.budget_scale
            runs = [simulate(bb, budget, args.max_results or None, root) for _ in range(args.runs)]
            wall = max(r["results"] / r["wall"] for r in runs)
            cpu = max(r["results"] / r["cpu"] for r in runs)
            fig, target = runs[0], TARGETS[scenario]
            print(f"  {bb.name:<18} {len(bb.config_space)} hyperparameters, batch {bb.batch_size or 'free'}: "
                  f"{wall:>8,.0f} results/s ({cpu:,.0f} per CPU s) -> {wall / target:.2f}x the {target:,} target")
            print(f"  {'':<18} ({fig['results']:,} results, {fig['trials']:,} trials, "
                  f"{fig['simulated']:,.0f} of {budget:,.0f} s simulated)")


if __name__ == "__main__":
    main()
