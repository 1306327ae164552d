"""Analysis of experiment grids (L4): loading, aggregation over seeds, regret, ranks, tables, plots.

Everything here imports pandas, scipy and matplotlib only inside the functions that need them.
"""

from tunebench.analysis.aggregate import (
    aggregate,
    average_ranks,
    bootstrap_ci,
    curve_matrix,
    fraction_grid,
    iqm,
    normalized_regret,
    rank_curves,
    regret_bounds,
    summarize,
)
from tunebench.analysis.plots import plot_grid
from tunebench.analysis.report import write_report
from tunebench.analysis.results import Grid, known_optimum, load_grid, load_run

__all__ = [
    "Grid",
    "load_grid",
    "load_run",
    "known_optimum",
    "aggregate",
    "iqm",
    "bootstrap_ci",
    "summarize",
    "average_ranks",
    "rank_curves",
    "regret_bounds",
    "normalized_regret",
    "fraction_grid",
    "curve_matrix",
    "write_report",
    "plot_grid",
]
