"""Experiment grids (L4): methods x benchmarks x seeds, launched in parallel, resumable."""
