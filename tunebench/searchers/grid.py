"""Grid search: every combination of a grid over the config space, then nothing."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunebench.searchers.base import Searcher
from tunebench.space import grid_configs
from tunebench.types import Config

__all__ = ["GridSearcher"]


class GridSearcher(Searcher):
    """Proposes the configurations of :func:`tunebench.space.grid_configs` one by one, then
    ``None`` once the grid is exhausted.

    Args:
        config_space: name -> domain or constant.
        metric: name of the metric (unused, kept for the common interface).
        mode: ``"min"`` or ``"max"``.
        seed: seed of the shuffle (used only with ``shuffle=True``).
        n_points: points per continuous (or large integer) domain; categorical domains use
            all their values.
        shuffle: walk the grid in a random order instead of the lexicographic one.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        n_points: int = 5,
        shuffle: bool = False,
    ):
        super().__init__(config_space, metric, mode, seed)
        if n_points < 1:
            raise ValueError(f"n_points must be >= 1, got {n_points}")
        self.n_points = n_points
        self.shuffle = shuffle
        self._grid = grid_configs(config_space, n_points=n_points)
        if shuffle:
            order = np.random.default_rng(seed).permutation(len(self._grid))
            self._grid = [self._grid[int(i)] for i in order]
        self._next = 0

    def __len__(self) -> int:
        """Number of configurations in the grid."""
        return len(self._grid)

    def suggest(self, trial_id: int) -> Config | None:
        """Called for each new trial: the next grid configuration, or ``None`` when exhausted
        (then the state is unchanged)."""
        if self._next >= len(self._grid):
            return None
        config = dict(self._grid[self._next])
        self._next += 1
        return config

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the position in the grid (the grid itself is rebuilt from the
        constructor arguments)."""
        return {"next": self._next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""
        self._next = int(state["next"])
