"""Blackboxes (L2): tuning problems evaluated by lookup, surrogate model or formula.

* :class:`Blackbox` — the contract (config space, fidelities, objectives, vectorized ``evaluate``).
* :class:`TabularBlackbox` — learning curves looked up in a table; saved to / loaded from a
  documented folder format (``docs/blackbox-format.md``); off-table configurations go through a
  surrogate.
* :class:`SurrogateBlackbox` — a scikit-learn regressor fitted on a table evaluates any configuration.
* :func:`branin_blackbox`, :func:`hartmann6_blackbox`, :func:`synthetic_tabular_blackbox` — cheap
  synthetic problems with learning curves and a known optimum.

Benchmark-specific loaders (YAHPO Gym, HPOBench tables) live in their own modules and are imported
only when used.
"""

from __future__ import annotations

from tunebench.blackboxes.base import Blackbox
from tunebench.blackboxes.surrogate import SurrogateBlackbox
from tunebench.blackboxes.synthetic import (
    SyntheticBlackbox,
    branin_blackbox,
    hartmann6_blackbox,
    synthetic_tabular_blackbox,
)
from tunebench.blackboxes.tabular import TabularBlackbox, tabulate

__all__ = [
    "Blackbox",
    "TabularBlackbox",
    "SurrogateBlackbox",
    "SyntheticBlackbox",
    "tabulate",
    "branin_blackbox",
    "hartmann6_blackbox",
    "synthetic_tabular_blackbox",
]
