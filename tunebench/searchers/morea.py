"""Multi-objective regularized evolution (MOREA) as a searcher.

REA (:class:`~tunebench.searchers.rea.REASearcher`: an aging population of the last
``population_size`` evaluations, random tournaments of ``sample_size`` members, the winner
mutated in one hyperparameter) where a trial's value is its vector of objectives in
minimization form (:meth:`tunebench.types.Objectives.vector`) and the tournament winner is the
member ranked first by non-dominated sorting *within the sample*
(:func:`tunebench.pareto.rank_by_nondominated_sorting`): a member of the sample's Pareto front,
the tie among them broken by the ε-net order (the one with the lowest first objective; MO-ASHA's
tie-break) or by crowding distance (an extreme of the front first). As Syne Tune's
``MultiObjectiveRegularizedEvolution``, with the ranks taken over the sample rather than the whole
population (the same rule as REA's "best of the sample").
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tunebench.pareto import TieBreak, rank_by_nondominated_sorting
from tunebench.searchers.rea import REASearcher, objective_vector
from tunebench.types import Config, Objectives, Result

logger = logging.getLogger(__name__)

__all__ = ["MOREASearcher"]


class MOREASearcher(REASearcher):
    """Regularized evolution with non-dominated selection (see the module docstring).

    Args:
        config_space: name -> domain or constant.
        objectives: the metrics and their modes (every result must carry each; a result lacking
            one gives the trial no value).
        seed: seed of the random number generators.
        population_size, sample_size, points_to_evaluate, local_move_prob, local_scale: as for
            :class:`~tunebench.searchers.rea.REASearcher`.
        tie_break: ``"eps_net"`` or ``"crowding"``: the order within the sample's front.

    Raises:
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        objectives: Objectives,
        seed: int = 0,
        population_size: int = 10,
        sample_size: int = 5,
        points_to_evaluate: list[Config] | None = None,
        tie_break: TieBreak = "eps_net",
        local_move_prob: float = 0.5,
        local_scale: float = 0.1,
    ):
        if tie_break not in ("eps_net", "crowding"):
            raise ValueError(f"tie_break must be 'eps_net' or 'crowding', got {tie_break!r}")
        super().__init__(config_space, objectives.metrics[0], objectives.modes[0], seed, population_size,
                         sample_size, points_to_evaluate, local_move_prob, local_scale)
        self.objectives = objectives
        self.tie_break: TieBreak = tie_break

    def _value(self, result: Result | None) -> Any:
        return objective_vector(result, self.objectives)

    def _winner(self, picks: list[int]) -> int:
        """The member of ``picks`` (indices, oldest first) ranked first by non-dominated sorting
        of the sample with the tie-break (ties in the order itself: the oldest)."""
        Y = np.array([self._population[i][2] for i in picks], dtype=np.float64)
        return picks[int(rank_by_nondominated_sorting(Y, self.tie_break, max_items=1)[0])]
