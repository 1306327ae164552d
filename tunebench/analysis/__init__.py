"""Analysis of experiment grids (L4): loading, aggregation over seeds, regret, ranks, tables, plots."""
