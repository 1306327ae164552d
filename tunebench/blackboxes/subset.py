"""A blackbox restricted to some of its fidelities (L2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.errors import UserError

__all__ = ["FidelitySubset"]


class FidelitySubset(Blackbox):
    """``base`` restricted to ``fidelities`` (each one of its fidelity values); the elapsed time
    stays the cumulative time of the base blackbox at each kept fidelity.

    Raises:
        UserError: a fidelity that is not one of ``base``'s.
    """

    def __init__(self, base: Blackbox, fidelities: Sequence[float]) -> None:
        values = np.asarray(base.fidelity_values, dtype=float)
        index = []
        for f in fidelities:
            hits = np.flatnonzero(np.isclose(values, float(f)))
            if len(hits) == 0:
                raise UserError(f"{base.name}: fidelity {f:g} is not one of its {base.fidelity_name or 'fidelity'} "
                                f"values ({values[0]:g}..{values[-1]:g}, {len(values)} values); fix fidelities")
            index.append(int(hits[0]))
        self.base = base
        self._index = np.asarray(sorted(set(index)), dtype=np.intp)
        self.name = base.name
        self.config_space = base.config_space
        self.fidelity_name = base.fidelity_name
        self.fidelity_values = values[self._index]
        self.objectives = base.objectives
        self.elapsed_time_attr = base.elapsed_time_attr
        self.n_seeds = base.n_seeds
        self.optimum = base.optimum if self._index[-1] == len(values) - 1 else None
        self.cost_per_fidelity = base.cost_per_fidelity
        exact_row = getattr(base, "exact_row", None)
        if exact_row is not None:
            self.exact_row = exact_row

    def _evaluate(self, configs: Any, fidelity_index: Any, seed: int) -> Any:
        return self.base._evaluate(configs, self._index[fidelity_index], seed)
