"""YAHPO simulation speed: results per real second of ASHA simulated on generated YAHPO scenarios.

Two scenarios generated in YAHPO's data layout (tunebench.testing.yahpo_data; the real data of
these scenarios is not available here, the generated surrogates are small networks with the real
scenarios' interfaces): an rbv2_super-like scenario (38 hyperparameters with rbv2_super's
conditions, trainsize levels 1..20, repl pinned at 10; free batch dimension) and an nb301-like one
(34 conditional cell choices, epochs 1..98; a model with a fixed batch of 1, fed one row at a
time). ASHA, 4 workers, the benchmarks' default simulated budget, configs checked as in a run.

Targets: rbv2 >= 5,000 results/s, nb301 >= 1,000 results/s.

    python benchmarks/yahpo_speed.py [--budget-scale 1.0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes.yahpo import SCENARIOS, YahpoBlackbox
from tunebench.schedulers import make_scheduler
from tunebench.testing.yahpo_data import nb301_space, rbv2_super_space, write_scenario
from tunebench.tuner import StopCriteria, Tuner


def simulate(bb: YahpoBlackbox, budget: float, root: Path) -> dict:
    facts = bb.facts
    scheduler = make_scheduler("ASHA", dict(bb.config_space), metric=facts.metric, mode=facts.mode,
                               resource_attr=bb.fidelity_name, max_t=int(bb.fidelity_values[-1]), seed=0)
    tuner = Tuner(SimulatorBackend(bb, seed=0), scheduler, n_workers=4, stop=StopCriteria(max_wallclock_time=budget),
                  experiment_dir=root / f"{bb.name}-{time.monotonic_ns()}")
    t0 = time.perf_counter()
    result = tuner.run()
    wall = time.perf_counter() - t0
    return {"wall": wall, "results": result.n_results, "trials": result.n_trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply the default budgets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_scenario(root, "rbv2_super", rbv2_super_space())
        write_scenario(root, "nb301", nb301_space(), batch_size=1)
        for scenario, instance, target in (("rbv2_super", "1040", 5000), ("nb301", "CIFAR10", 1000)):
            bb = YahpoBlackbox(scenario, instance, data_dir=root)
            budget = SCENARIOS[scenario].budget * args.budget_scale
            runs = [simulate(bb, budget, root) for _ in range(3)]
            best = min(runs, key=lambda r: r["wall"] / max(r["results"], 1))
            rate = best["results"] / best["wall"]
            print(f"{bb.name}: {len(bb.config_space)} hyperparameters, batch {bb.batch_size or 'free'}, "
                  f"ASHA 4 workers, {budget:,.0f} simulated s: {rate:,.0f} results/s (best of 3; {best['results']:,} "
                  f"results, {best['trials']:,} trials, {best['wall']:.2f} s real) -> "
                  f"{rate / target:.2f}x the {target:,} target")


if __name__ == "__main__":
    main()
