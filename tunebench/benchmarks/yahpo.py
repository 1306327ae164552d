"""The ``yahpo-<scenario>-<instance>`` benchmarks (L4): one per instance of every YAHPO Gym scenario
present in the YAHPO data folder (``$TUNEBENCH_DATA/yahpo``), with the scenario's default metric,
mode and budget (:class:`~tunebench.blackboxes.yahpo.ScenarioFacts`). Read from the data when the
registry is listed or asked for a ``yahpo-`` name (:func:`tunebench.benchmarks.registry.benchmark_names`),
so nothing is registered where the data is absent. ``lcbench-<task>`` stays as it is.
"""

from __future__ import annotations

from tunebench.benchmarks.definitions import SimulatedBenchmark
from tunebench.blackboxes.yahpo import SCENARIOS, yahpo_fidelity_levels, yahpo_instances, yahpo_scenarios
from tunebench.errors import UserError

__all__ = ["yahpo_benchmark_definitions", "YAHPO_PREFIX"]

YAHPO_PREFIX = "yahpo-"


def yahpo_benchmark_definitions(data_dir: str | None = None) -> dict[str, SimulatedBenchmark]:
    """``yahpo-<scenario>-<instance>`` -> its definition, for the scenarios whose data is in
    ``data_dir`` (default ``$TUNEBENCH_DATA``); empty without data."""
    defs: dict[str, SimulatedBenchmark] = {}
    for scenario in yahpo_scenarios(data_dir):
        facts = SCENARIOS[scenario]
        try:
            instances = yahpo_instances(scenario, data_dir)
            low, high = yahpo_fidelity_levels(scenario, data_dir)
        except UserError:
            continue
        trainsize = facts.fidelity != "epoch"
        for instance in instances:
            name = f"{YAHPO_PREFIX}{scenario}-{instance}"
            defs[name] = SimulatedBenchmark(
                name=name, blackbox="yahpo", task=f"{scenario}-{instance}", metric=facts.metric, mode=facts.mode,
                resource_attr=facts.fidelity, min_resource=low, max_resource=high,
                n_workers=4, max_wallclock_time=facts.budget, method="ASHA",
                # the trial's maximum level travels as max_<fidelity>, never as 'epochs'
                max_resource_attr=f"max_{facts.fidelity}",
                description=f"YAHPO Gym {scenario} surrogate, instance {instance}"
                            + (" (trainsize levels 1..20 = 5%..100% of the data)" if trainsize else ""))
    return defs
