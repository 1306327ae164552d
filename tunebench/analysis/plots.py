"""Figures of an experiment grid: best metric so far over tuning time, and average ranks.

matplotlib is an optional extra (``pip install 'tunebench[plot]'``), imported only when a figure
is drawn; figures are drawn without pyplot (no global state, no display needed).

One figure per benchmark: a panel per group of methods (by default the asynchronous
multi-fidelity methods with the single-fidelity ones, and the synchronous ones), each method's
aggregate over seeds as a bold line with its band (IQM with a bootstrap confidence interval,
mean +- standard error, or median with quartiles), and a last panel with the methods' average
rank over time. With several benchmarks, one more figure: the average rank over all of them
against the fraction of the budget. A method has the same color in every panel and figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.analysis.aggregate import (
    aggregate,
    average_ranks,
    curve_matrix,
    fraction_grid,
    normalized_regret,
    rank_curves,
    regret_bounds,
)
from tunebench.analysis.results import Grid
from tunebench.errors import UserError

__all__ = ["plot_grid", "default_groups", "resolve_groups", "method_colors", "output_paths"]

_STAT_LABEL = {"iqm": "IQM, {ci:g}% bootstrap CI", "mean": "mean ± standard error", "median": "median, quartiles"}
_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
_STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9.5,
          "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.titlesize": 14, "axes.grid": True,
          "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}


def _matplotlib() -> Any:
    try:
        import matplotlib  # deferred: matplotlib (heavy), only when plotting
    except ImportError as e:
        raise UserError("plots need matplotlib: pip install 'tunebench[plot]'") from e
    return matplotlib


def default_groups(methods: Sequence[str]) -> dict[str, list[str]]:
    """Panels of ``methods`` by their registry group: ``"asynchronous"`` (asynchronous
    multi-fidelity methods, single-fidelity ones and unregistered names) and ``"synchronous"``;
    empty groups are left out."""
    # deferred: the method registry (~0.1 s with benchmarks) stays out of `import tunebench.analysis`
    from tunebench.schedulers import METHODS

    groups: dict[str, list[str]] = {"asynchronous": [], "synchronous": []}
    for m in methods:
        spec = METHODS.get(m)
        groups["synchronous" if spec is not None and spec.group == "synchronous" else "asynchronous"].append(m)
    return {g: ms for g, ms in groups.items() if ms}


def method_colors(methods: Sequence[str]) -> dict[str, Any]:
    """A distinct color per method (tab10, or tab20 beyond ten methods), in the given order."""
    import matplotlib as mpl  # deferred: matplotlib (heavy), only when plotting

    cmap = mpl.colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


#: line styles cycled over the methods (with their colors), so that curves that coincide (two
#: methods drawing the same first configurations) stay visible
_DASHES = ("solid", (0, (6, 2)), (0, (2, 1.5)), (0, (7, 2, 2, 2)))


def _styles(methods: Sequence[str]) -> dict[str, Any]:
    return {m: _DASHES[i % len(_DASHES)] for i, m in enumerate(methods)}


def output_paths(output: str | Path, benchmarks: Sequence[str]) -> tuple[dict[str, Path], Path | None]:
    """Where :func:`plot_grid` writes: ``(benchmark -> figure path, ranks figure path or None)``.

    ``output`` with an image suffix (``.png``, ``.pdf``, ``.svg``, ``.jpg``): for one benchmark
    that very file; for several, a stem: ``<stem>-<benchmark><suffix>`` beside it, and
    ``<stem>-ranks<suffix>``. Without a suffix, a folder: ``<output>/<benchmark>.png`` and
    ``<output>/ranks.png``. The ranks figure (over benchmarks) is drawn for two or more
    benchmarks only.
    """
    out = Path(output).expanduser()
    several = len(benchmarks) > 1
    if out.suffix.lower() in _SUFFIXES:
        if not several:
            return {benchmarks[0]: out}, None
        paths = {b: out.with_name(f"{out.stem}-{b}{out.suffix}") for b in benchmarks}
        return paths, out.with_name(f"{out.stem}-ranks{out.suffix}")
    return {b: out / f"{b}.png" for b in benchmarks}, (out / "ranks.png" if several else None)


def resolve_groups(groups: Mapping[str, Sequence[str]] | Sequence[str] | None) -> dict[str, list[str]] | None:
    """Panels from ``groups``: a mapping (title -> methods) as is; a list of group names of
    :func:`tunebench.schedulers.method_groups` (``--method-group``: "asynchronous",
    "synchronous", "single-fidelity", "all", "baselines") as one panel per group; None: None
    (the default panels).

    Raises:
        UserError: an unknown group name (the message lists the known ones).
    """
    if groups is None:
        return None
    if isinstance(groups, Mapping):
        return {str(k): list(v) for k, v in groups.items()}
    if isinstance(groups, str):
        groups = [groups]
    # deferred: the method registry (~0.1 s with benchmarks) stays out of `import tunebench.analysis`
    from tunebench.schedulers import method_groups

    known = method_groups()
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise UserError(f"unknown method group(s) {', '.join(unknown)}; known groups: {', '.join(known)}")
    return {g: known[g] for g in groups}


def _panels(grid: Grid, benchmark: str, groups: dict[str, list[str]] | None) -> list[tuple[str, list[str]]]:
    present = grid.methods_of(benchmark)
    if groups is None:
        # deferred: the method registry (~0.1 s with benchmarks) stays out of `import tunebench.analysis`
        from tunebench.schedulers import METHODS

        panels = []
        for name, ms in default_groups(present).items():
            single = any(m in METHODS and METHODS[m].group == "single-fidelity" for m in ms)
            multi = any(m not in METHODS or METHODS[m].group != "single-fidelity" for m in ms)
            title = f"{name} and single-fidelity" if single and multi else (
                "single-fidelity" if single and name == "asynchronous" else name)
            panels.append((title, ms))
        return panels
    panels = []
    for name, members in groups.items():
        ms = [m for m in present if m in set(members)]
        if ms:
            panels.append((name, ms))
    return panels


def _log_span(values: np.ndarray) -> bool:
    """True if the positive finite ``values`` span two orders of magnitude or more."""
    v = values[np.isfinite(values) & (values > 0)]
    return len(v) > 1 and v.max() / v.min() >= 100


def plot_grid(grid: Grid, output: str | Path, *, benchmark: str | None = None,
              groups: Mapping[str, Sequence[str]] | Sequence[str] | None = None, statistic: str = "iqm",
              y: str = "metric",
              n_points: int = 150, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
              dpi: int = 130) -> list[Path]:
    """Draw the figures of ``grid`` (every benchmark, or ``benchmark``); returns their paths.

    Args:
        output: an image file name, or a stem for several benchmarks, or a folder (see
            :func:`output_paths`); parent folders are created.
        benchmark: only this benchmark (one of ``grid.benchmarks``).
        groups: panel title -> methods in it, or a list of registry group names (one panel
            each, see :func:`resolve_groups`); default :func:`default_groups`. A method in no
            panel is not drawn (except in the rank panel, which has all the benchmark's methods).
        statistic: ``"iqm"`` (bootstrap ``confidence`` band over seeds), ``"mean"`` (+- standard
            error) or ``"median"`` (quartiles).
        y: ``"metric"``: the best metric value so far (known optimum dashed), or ``"regret"``:
            the normalized regret (see :mod:`tunebench.analysis.aggregate`).
        n_points: points of the time grid (log-spaced when the runs' first results and the
            budget are two orders of magnitude apart).
        n_boot, seed: bootstrap resamples and their random seed.

    The time axis is logarithmic with a log-spaced grid; the y axis is logarithmic when the
    curves are positive and span two orders of magnitude (regret 0 is then drawn at the
    smallest positive value shown).

    Raises:
        UserError: matplotlib is missing, an unknown benchmark, statistic, group name or ``y``,
            or groups that hold none of the benchmark's methods.
    """
    mpl = _matplotlib()
    from matplotlib.figure import Figure  # deferred: matplotlib (heavy), only when plotting

    if statistic not in _STAT_LABEL:
        raise UserError(f"unknown statistic {statistic!r}; choose one of {', '.join(_STAT_LABEL)}")
    if y not in ("metric", "regret"):
        raise UserError(f"y must be 'metric' or 'regret', got {y!r}")
    if benchmark is not None and benchmark not in grid.benchmarks:
        raise UserError(f"no benchmark {benchmark!r} in this grid; it has {', '.join(grid.benchmarks)}")
    groups = resolve_groups(groups)
    benchmarks = [benchmark] if benchmark is not None else grid.benchmarks
    paths, ranks_path = output_paths(output, benchmarks)
    colors = method_colors(grid.methods)
    styles = _styles(grid.methods)
    stat_label = _STAT_LABEL[statistic].format(ci=100 * confidence)
    written: list[Path] = []
    with mpl.rc_context(_STYLE):
        for b in benchmarks:
            panels = _panels(grid, b, groups)
            if not panels:
                raise UserError(f"the groups hold none of the methods run on {b}: "
                                f"{', '.join(grid.methods_of(b))}")
            fig = Figure(figsize=(5.4 * (len(panels) + 1) + 1.2, 4.6), layout="constrained")
            axes = fig.subplots(1, len(panels) + 1, squeeze=False)[0]
            fractions, log_x = fraction_grid(grid, [b], n_points)
            times = fractions * grid.budget(b)
            best, worst = regret_bounds(grid, b)
            curves: dict[str, dict[str, np.ndarray]] = {}
            for m in grid.methods_of(b):
                _, values = curve_matrix(grid, b, m, times)
                if y == "regret":
                    values = normalized_regret(values, best, worst)
                curves[m] = aggregate(values, statistic, n_boot=n_boot, confidence=confidence, seed=seed)
            shown = np.concatenate([np.concatenate([c["center"], c["lower"], c["upper"]])
                                    for m, c in curves.items() if any(m in ms for _, ms in panels)])
            log_y = _log_span(shown) and (y == "regret" or grid.mode(b) == "min")
            floor = np.nanmin(shown[shown > 0]) if log_y else None
            for ax, (name, methods) in zip(axes, panels, strict=False):
                for m in methods:
                    c = curves[m]
                    lo, hi, center = c["lower"], c["upper"], c["center"]
                    if floor is not None:
                        lo, hi, center = (np.maximum(a, floor) for a in (lo, hi, center))
                    ax.fill_between(times, lo, hi, color=colors[m], alpha=0.18, linewidth=0, step="post")
                    ax.plot(times, center, color=colors[m], linestyle=styles[m], linewidth=2.4, label=m,
                            drawstyle="steps-post")
                optimum = grid.optimum(b)
                if y == "metric" and optimum is not None:
                    ax.axhline(optimum, color="0.35", linestyle="--", linewidth=1.2, label="known optimum")
                ax.set_title(f"{name} methods" if groups is None else name)
                ax.set_xlabel("tuning time (s)")
                ax.set_ylabel(f"best {grid.metric(b)} so far" if y == "metric" else "normalized regret")
                ax.legend(loc="best", framealpha=0.85, edgecolor="none")
            for ax in axes[:len(panels)]:
                ax.set_xscale("log" if log_x else "linear")
                if log_y:
                    ax.set_yscale("log")
            if len(panels) > 1:  # panels of one benchmark share the y range
                lows, highs = zip(*(ax.get_ylim() for ax in axes[:len(panels)]), strict=True)
                for ax in axes[:len(panels)]:
                    ax.set_ylim(min(lows), max(highs))
            ax = axes[-1]
            try:
                methods, seeds, ranks = rank_curves(grid, b, times)
            except UserError as e:  # the methods share no seed
                methods, seeds, ranks = [], [], np.empty((0, 0, len(times)))
                ax.text(0.5, 0.5, str(e), ha="center", va="center", wrap=True, transform=ax.transAxes)
            for j, m in enumerate(methods):
                ax.plot(times, ranks[:, j].mean(axis=0), color=colors[m], linestyle=styles[m], linewidth=2.2,
                        label=m, drawstyle="steps-post")
            ax.set_xscale("log" if log_x else "linear")
            ax.set_ylim(0.8, max(len(methods), 1) + 0.2)
            ax.set_title(f"average rank over {len(seeds)} seeds")
            ax.set_xlabel("tuning time (s)")
            ax.set_ylabel("rank (1 = best)")
            ax.set_xlim(axes[0].get_xlim())
            if methods:
                ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
            fig.suptitle(f"{b}: {grid.metric(b)} ({grid.mode(b)}), {_seed_text(grid, b)}; {stat_label}")
            written.append(_save(fig, paths[b], dpi))
        if ranks_path is not None:
            written.append(_save(_ranks_figure(grid, benchmarks, colors, styles, n_points), ranks_path, dpi))
    return written


def _seed_text(grid: Grid, benchmark: str) -> str:
    counts = {len(grid.seeds(benchmark, m)) for m in grid.methods_of(benchmark)}
    lo, hi = min(counts), max(counts)
    return f"{hi} seeds" if lo == hi else f"{lo}–{hi} seeds"


def _ranks_figure(grid: Grid, benchmarks: Sequence[str], colors: dict[str, Any], styles: dict[str, Any],
                  n_points: int) -> Any:
    from matplotlib.figure import Figure  # deferred: matplotlib (heavy), only when plotting

    fractions, log_x = fraction_grid(grid, benchmarks, n_points)
    table = average_ranks(grid, fractions, benchmarks=benchmarks)
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    for m in table.columns:
        ax.plot(fractions, table[m].to_numpy(), color=colors[m], linestyle=styles[m], linewidth=2.4, label=m,
                drawstyle="steps-post")
    ax.set_xscale("log" if log_x else "linear")
    ax.set_ylim(0.8, len(table.columns) + 0.2)
    ax.set_xlabel("fraction of the budget")
    ax.set_ylabel("average rank (1 = best)")
    ax.set_title(f"Average rank over {len(benchmarks)} benchmarks (methods run on all of them)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def _save(fig: Any, path: Path, dpi: int) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    except OSError as e:
        raise UserError(f"cannot write the figure {path}: {e.strerror or e}; choose another output") from e
    return path
