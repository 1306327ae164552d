"""Figures of an experiment grid: best metric so far over tuning time, and average ranks.

matplotlib is an optional extra (``pip install 'tunebench[plot]'``), imported only when a figure
is drawn; figures are drawn without pyplot (no global state, no display needed).

One figure per benchmark: a panel per group of methods (by default the asynchronous
multi-fidelity methods with the single-fidelity ones, and the synchronous ones), each method's
aggregate over seeds as a bold line with its band (IQM with a bootstrap confidence interval,
mean +- standard error, or median with quartiles), and a last panel with the methods' average
rank over time. With several benchmarks, one more figure: the average rank over all of them
against the fraction of the budget. A method has the same color in every panel and figure.

A multi-objective benchmark's curves are the normalized hypervolume of the feasible front so
far (:mod:`tunebench.analysis.hypervolume`), drawn the same way, and it gets one more figure,
its Pareto fronts (:func:`pareto_figure`): the empirical attainment surfaces over seeds of each
method's final feasible front (median, and the band between the 25% and 75% ones), with the
known front where the blackbox has one; pairwise projections for three objectives or more.
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
from tunebench.analysis.hypervolume import attainment_surfaces
from tunebench.analysis.results import Grid, best_so_far
from tunebench.errors import UserError
from tunebench.events import LogKind, iter_events
from tunebench.store import EVENTS_FILE, Experiment, load_experiment, metric_column, read_metadata

__all__ = ["plot_grid", "grid_figures", "plot_experiment", "experiment_figure", "check_output", "is_simulation",
           "time_label", "pareto_figure", "pareto_path", "default_groups", "resolve_groups", "method_colors",
           "output_paths"]

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


def pareto_path(path: Path) -> Path:
    """Where :func:`plot_grid` writes the Pareto-front figure of a multi-objective benchmark whose
    main figure goes to ``path``: ``<stem>-pareto<suffix>`` beside it."""
    return path.with_name(f"{path.stem}-pareto{path.suffix}")


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


def check_output(output: str | Path) -> Path:
    """``output`` as a path, checked: an image suffix (``.png``, ``.pdf``, ``.svg``, ``.jpg``,
    ``.jpeg``: the format drawn), or none (a folder).

    Raises:
        UserError: any other suffix (``x.gif``), naming the accepted ones.
    """
    out = Path(output).expanduser()
    if out.suffix and out.suffix.lower() not in _SUFFIXES:
        raise UserError(f"cannot write a figure as {out.name}: unknown format {out.suffix!r}; end the output "
                        f"with {', '.join(_SUFFIXES[:-1])} or {_SUFFIXES[-1]} (or give a folder without suffix)")
    return out


def is_simulation(path: str | Path) -> bool:
    """Whether the experiment folder ``path`` ran on the simulator (its ``metadata.json`` names
    the simulator backend, or its results carry ``real_time``): its times are simulated seconds.
    False for an unreadable folder."""
    try:
        backend = read_metadata(path).get("backend")
    except UserError:
        return False
    if isinstance(backend, Mapping):
        return backend.get("type") == "simulator"
    try:
        return any("real_time" in ev for _, ev in iter_events(Path(path) / EVENTS_FILE)
                   if ev.get("event") == LogKind.RESULT.value)
    except OSError:
        return False


def time_label(simulated: bool) -> str:
    """The time axis label: ``"simulated time (s)"`` or ``"tuning time (s)"``."""
    return "simulated time (s)" if simulated else "tuning time (s)"


def _grid_simulated(grid: Grid, benchmark: str) -> bool:
    paths = grid.runs.loc[grid.runs["benchmark"] == benchmark, "path"]
    return bool(len(paths)) and is_simulation(str(paths.iloc[0]))


#: fewer seeds than this: a note in the figure's title
FEW_SEEDS = 5


def _all_seeds_start(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """``values`` (seeds x times) with the columns where some seed has no value yet set to NaN
    (so an aggregate starts when every seed has a result and never moves against the curves);
    and whether any column with a value was dropped that way."""
    complete = np.isfinite(values).all(axis=0)
    partial = ~complete & np.isfinite(values).any(axis=0)
    return np.where(complete, values, np.nan), bool(partial.any())


def grid_figures(grid: Grid, output: str | Path, *, benchmark: str | None = None,
                 groups: Mapping[str, Sequence[str]] | Sequence[str] | None = None, statistic: str = "iqm",
                 y: str | None = None, n_points: int = 150, n_boot: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> list[tuple[Path, Any]]:
    """The figures of :func:`plot_grid`, not saved: ``(path it would be written to, matplotlib
    Figure)`` pairs, in the order :func:`plot_grid` writes them (arguments as there)."""
    mpl = _matplotlib()
    from matplotlib.figure import Figure  # deferred: matplotlib (heavy), only when plotting

    if statistic not in _STAT_LABEL:
        raise UserError(f"unknown statistic {statistic!r}; choose one of {', '.join(_STAT_LABEL)}")
    if y not in (None, "metric", "regret"):
        raise UserError(f"y must be 'metric' or 'regret', got {y!r}")
    if benchmark is not None and benchmark not in grid.benchmarks:
        raise UserError(f"no benchmark {benchmark!r} in this grid; it has {', '.join(grid.benchmarks)}")
    groups = resolve_groups(groups)
    benchmarks = [benchmark] if benchmark is not None else grid.benchmarks
    paths, ranks_path = output_paths(output, benchmarks)
    colors = method_colors(grid.methods)
    styles = _styles(grid.methods)
    stat_label = _STAT_LABEL[statistic].format(ci=100 * confidence)
    figures: list[tuple[Path, Any]] = []
    with mpl.rc_context(_STYLE):
        for b in benchmarks:
            panels = _panels(grid, b, groups)
            if not panels:
                raise UserError(f"the groups hold none of the methods run on {b}: "
                                f"{', '.join(grid.methods_of(b))}")
            y_b = y if y is not None else ("regret" if grid.optimum(b) is not None else "metric")
            x_label = time_label(_grid_simulated(grid, b))
            fig = Figure(figsize=(5.4 * (len(panels) + 1) + 2.2, 4.9), layout="constrained")
            axes = fig.subplots(1, len(panels) + 1, squeeze=False)[0]
            fractions, log_x = fraction_grid(grid, [b], n_points)
            times = fractions * grid.budget(b)
            best, worst = regret_bounds(grid, b)
            curves: dict[str, dict[str, np.ndarray]] = {}
            late_start = False
            for m in grid.methods_of(b):
                _, values = curve_matrix(grid, b, m, times)
                values, dropped = _all_seeds_start(values)
                late_start |= dropped
                if y_b == "regret":
                    values = normalized_regret(values, best, worst)
                curves[m] = aggregate(values, statistic, n_boot=n_boot, confidence=confidence, seed=seed)
            shown = np.concatenate([np.concatenate([c["center"], c["lower"], c["upper"]])
                                    for m, c in curves.items() if any(m in ms for _, ms in panels)])
            log_y = y_b == "regret" or (_log_span(shown) and grid.curve_mode(b) == "min")
            positive = shown[np.isfinite(shown) & (shown > 0)]
            floor = (float(positive.min()) if len(positive) else 1e-6) if log_y else None
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
                if y_b == "metric" and optimum is not None:
                    ax.axhline(optimum, color="0.35", linestyle="--", linewidth=1.2, label="known optimum")
                ax.set_title(f"{name} methods" if groups is None else name)
                ax.set_xlabel(x_label)
                ax.set_ylabel(grid.curve_label(b) if y_b == "metric" else
                              f"normalized regret of the {grid.curve_label(b)} (log)")
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
            ax.set_xlabel(x_label)
            ax.set_ylabel("rank (1 = best)")
            ax.set_xlim(axes[0].get_xlim())
            _figure_legend(fig, axes)
            title = f"{b}: {_curve_title(grid, b)}, {_seed_text(grid, b)}; {stat_label}"
            n_seeds = min(len(grid.seeds(b, m)) for m in grid.methods_of(b))
            if n_seeds < FEW_SEEDS:
                title += f"\n(only {n_seeds} seed{'s' if n_seeds != 1 else ''}: bands are rough; use "\
                         f"{FEW_SEEDS} or more to compare methods)"
            if late_start:
                title += "\n(a curve starts when every seed of its method has a result)"
            fig.suptitle(title)
            figures.append((paths[b], fig))
            if grid.is_multi(b):
                figures.append((pareto_path(paths[b]), pareto_figure(grid, b, colors=colors)))
        if ranks_path is not None:
            figures.append((ranks_path, _ranks_figure(grid, benchmarks, colors, styles, n_points)))
    return figures


def _figure_legend(fig: Any, axes: Sequence[Any]) -> None:
    """One legend for the whole figure, outside the panels (right): each label once."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside right center", frameon=False)


def plot_grid(grid: Grid, output: str | Path, *, benchmark: str | None = None,
              groups: Mapping[str, Sequence[str]] | Sequence[str] | None = None, statistic: str = "iqm",
              y: str | None = None,
              n_points: int = 150, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
              dpi: int = 130) -> list[Path]:
    """Draw the figures of ``grid`` (every benchmark, or ``benchmark``); returns their paths.

    Args:
        output: an image file name (its suffix picks the format: ``.png``, ``.pdf``, ``.svg``,
            ``.jpg``), or a stem for several benchmarks, or a folder (no suffix; see
            :func:`output_paths`); parent folders are created.
        benchmark: only this benchmark (one of ``grid.benchmarks``).
        groups: panel title -> methods in it, or a list of registry group names (one panel
            each, see :func:`resolve_groups`); default :func:`default_groups`. A method in no
            panel is not drawn (except in the rank panel, which has all the benchmark's methods).
        statistic: ``"iqm"`` (bootstrap ``confidence`` band over seeds), ``"mean"`` (+- standard
            error) or ``"median"`` (quartiles).
        y: ``"metric"``: the best metric value so far (known optimum dashed), or the
            normalized hypervolume of a multi-objective benchmark; ``"regret"``: the
            normalized regret of those (see :mod:`tunebench.analysis.aggregate`) on a log
            scale; None (default): regret for a benchmark whose optimum is known
            (:meth:`Grid.optimum`), else the metric.
        n_points: points of the time grid (log-spaced when the runs' first results and the
            budget are two orders of magnitude apart).
        n_boot, seed: bootstrap resamples and their random seed.

    A method's aggregate starts where every one of its seeds has a result (before that, some
    seeds would be missing from it, and it could move against every seed's curve); the figure
    says so when that cut anything. The time axis says "simulated time" for simulator runs; it
    is logarithmic with a log-spaced grid; the y axis is logarithmic for regret, and for metric
    curves that are positive and span two orders of magnitude (regret 0 is then drawn at the
    smallest positive value shown). Fewer than :data:`FEW_SEEDS` seeds: a note in the title.
    The legend is outside the panels. A multi-objective benchmark also gets its
    :func:`pareto_figure`, written to :func:`pareto_path` of its figure's path.

    Raises:
        UserError: matplotlib is missing, an unknown benchmark, statistic, group name, ``y``
            or output suffix (:func:`check_output`), or groups that hold none of the benchmark's
            methods.
    """
    output = check_output(output)
    return [_save(fig, path, dpi) for path, fig in
            grid_figures(grid, output, benchmark=benchmark, groups=groups, statistic=statistic, y=y,
                         n_points=n_points, n_boot=n_boot, confidence=confidence, seed=seed)]


def _curve_title(grid: Grid, benchmark: str) -> str:
    objectives = grid.objectives_of(benchmark)
    text = ", ".join(f"{m} ({o})" for m, o in zip(objectives.metrics, objectives.modes, strict=True))
    if objectives.is_multi:
        text = f"hypervolume of {text}"
    constraints = grid.constraints.get(benchmark, ())
    if constraints:
        text += " subject to " + ", ".join(map(str, constraints))
    return text


#: attainment levels drawn per method: the median as a line, the band between the other two
_LEVELS = (25.0, 50.0, 75.0)
#: most pairs of objectives drawn for three objectives or more
_MAX_PAIRS = 6


def _staircase(S: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the boundary of the region dominated by the 2-D points ``S`` (minimization
    form, sorted by the first objective, non-dominated) within the box up to ``ref``: from the
    top edge down and right to the right edge. An empty ``S``: the corner ``ref`` alone."""
    if len(S) == 0:
        return np.array([ref[0]]), np.array([ref[1]])
    x = np.repeat(S[:, 0], 2)
    y = np.repeat(S[:, 1], 2)
    xs = np.concatenate([x, [ref[0]]])
    ys = np.concatenate([[ref[1]], y])
    return xs, ys


def _axis_range(values: list[np.ndarray], ref: float, known: np.ndarray | None) -> tuple[float, float]:
    """``(low, high)`` of one objective's axis (minimization form): from a little below the
    smallest of ``values`` (and of the ``known`` front's) to the reference point (or the known
    front's largest value, if beyond)."""
    extra = [known] if known is not None else []
    finite = np.concatenate([v[np.isfinite(v)] for v in values + extra] + [np.array([ref])])
    low = float(finite.min())
    high = max(ref, float(known.max())) if known is not None and len(known) else ref
    return low - 0.03 * max(high - low, 1e-12), high


def pareto_figure(grid: Grid, benchmark: str, *, colors: dict[str, Any] | None = None,
                  levels: Sequence[float] = _LEVELS) -> Any:
    """The Pareto-front figure of the multi-objective ``benchmark`` (a matplotlib Figure, not
    saved): attainment surfaces over seeds (:func:`~tunebench.analysis.hypervolume.attainment_surfaces`)
    of the methods' final feasible fronts, in metric units, up to the benchmark's reference
    point, with the known front (dashed) when :meth:`Grid.known_front` has one.

    Two objectives: a first panel with every method's median surface, then one panel per method
    with its median surface and the band between its ``levels[0]``% and ``levels[-1]``% surfaces.
    Three or more: one panel per pair of objectives (up to six) with every method's median
    surface of the fronts projected on that pair (a projection: the front of the pair).

    Raises:
        UserError: matplotlib is missing, or ``benchmark`` is not a multi-objective benchmark of ``grid``.
    """
    _matplotlib()
    from matplotlib.figure import Figure  # deferred: matplotlib (heavy), only when plotting

    if benchmark not in grid.benchmarks or not grid.is_multi(benchmark):
        raise UserError(f"{benchmark!r} is not a multi-objective benchmark of this grid; those are: "
                        f"{', '.join(b for b in grid.benchmarks if grid.is_multi(b)) or 'none'}")
    objectives = grid.objectives_of(benchmark)
    d = len(objectives.metrics)
    signs = np.asarray(objectives.signs)
    methods = grid.methods_of(benchmark)
    colors = colors if colors is not None else method_colors(methods)
    fronts = {m: [grid.points[(benchmark, m, s)].front() for s in grid.seeds(benchmark, m)] for m in methods}
    known = grid.known_front(benchmark)
    known_min = known * signs if known is not None else None
    bounds = grid.hv_bounds.get(benchmark)
    all_points = [F for fs in fronts.values() for F in fs if len(F)]
    if bounds is not None:
        ref = bounds.reference
    elif all_points:
        ref = np.vstack(all_points).max(axis=0)
    else:
        ref = np.ones(d)
    pairs = [(0, 1)] if d == 2 else [(i, j) for i in range(d) for j in range(i + 1, d)][:_MAX_PAIRS]
    n_seeds = sorted({len(fs) for fs in fronts.values()})
    seeds_text = f"{n_seeds[0]}" if len(n_seeds) == 1 else f"{n_seeds[0]}–{n_seeds[-1]}"
    per_method = d == 2
    n_panels = (1 + len(methods)) if per_method else len(pairs)
    ncols = min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    with _matplotlib().rc_context(_STYLE):
        fig = Figure(figsize=(4.6 * ncols + 0.6, 4.1 * nrows + 0.7), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
        for ax in axes[n_panels:]:
            ax.set_visible(False)
        for k, (i, j) in enumerate(pairs if not per_method else [(0, 1)] * n_panels):
            ax = axes[k]
            cols = [i, j]
            projected = {m: [F[:, cols] for F in fs] for m, fs in fronts.items()}
            r = ref[cols]
            xr = _axis_range([F[:, 0] for fs in projected.values() for F in fs], r[0],
                             known_min[:, i] if known_min is not None else None)
            yr = _axis_range([F[:, 1] for fs in projected.values() for F in fs], r[1],
                             known_min[:, j] if known_min is not None else None)
            shown = methods if not per_method or k == 0 else [methods[k - 1]]
            for m in shown:
                surfaces = attainment_surfaces(projected[m], levels if per_method and k > 0 else [50.0])
                if per_method and k > 0:
                    lo_x, lo_y = _staircase(surfaces[float(levels[0])], r)
                    hi_x, hi_y = _staircase(surfaces[float(levels[-1])], r)
                    ax.fill(np.concatenate([lo_x, hi_x[::-1]]) * signs[i],
                            np.concatenate([lo_y, hi_y[::-1]]) * signs[j], color=colors[m], alpha=0.22,
                            linewidth=0, label=f"{levels[0]:g}–{levels[-1]:g}% attained")
                xs, ys = _staircase(surfaces[50.0], r)
                ax.plot(xs * signs[i], ys * signs[j], color=colors[m], linewidth=2.2,
                        label=f"{m} (median)" if k == 0 else "median attained")
            if known_min is not None:
                K = known_min[:, cols]
                K = K[np.lexsort(K.T[::-1])]
                ax.plot(K[:, 0] * signs[i], K[:, 1] * signs[j], color="0.3", linestyle="--", linewidth=1.3,
                        label="known front")
            ax.set_xlim(*sorted((xr[0] * signs[i], xr[1] * signs[i])))
            ax.set_ylim(*sorted((yr[0] * signs[j], yr[1] * signs[j])))
            ax.set_xlabel(f"{objectives.metrics[i]} ({objectives.modes[i]})")
            ax.set_ylabel(f"{objectives.metrics[j]} ({objectives.modes[j]})")
            if per_method:
                ax.set_title("median attainment, all methods" if k == 0 else methods[k - 1])
            else:
                ax.set_title(f"{objectives.metrics[i]} vs {objectives.metrics[j]} (projection)")
            ax.legend(loc="upper right", framealpha=0.85, edgecolor="none")
        what = ("median and 25–75% attainment surfaces" if per_method
                else "median attainment surfaces of the fronts projected on pairs of objectives")
        fig.suptitle(f"{benchmark}: final feasible Pareto fronts, {what} over {seeds_text} seeds\n"
                     "(the axes end at the reference point of the normalized hypervolume)", fontsize=13)
    return fig


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


# -- one experiment ---------------------------------------------------------------------------------

#: how each status's learning curves are drawn: (color, line style, line width, alpha, legend label)
_STATUS_STYLE = {
    "completed": ("tab:blue", "solid", 1.4, 0.8, "completed"),
    "stopped": ("tab:red", (0, (3, 1.5)), 0.9, 0.45, "stopped early"),
    "paused": ("tab:orange", (0, (1, 1.2)), 1.1, 0.7, "paused"),
    "running": ("tab:green", "solid", 1.6, 0.9, "running"),
    "failed": ("0.4", (0, (5, 2, 1, 2)), 0.9, 0.6, "failed"),
}


def experiment_figure(experiment: Experiment) -> Any:
    """The figure of one experiment (a matplotlib Figure, not saved): its best value so far over
    tuning time (simulated time for a simulation, see :func:`is_simulation`), with every result
    as a dot; the learning curves of all its trials (metric against the reported resource, or
    against time for a single-fidelity experiment), styled by the trial's status (completed,
    stopped early, paused, running, failed), or for a run with exploits (PBT) the population
    (:func:`_population_panel`: a color a trial, dashed lineage edges from the source's point to
    the trial's next one); and, with several objectives, a last panel with
    every trial's last result and the Pareto front (:meth:`Experiment.pareto_front`) on the
    first two objectives. The first objective's values; under constraints, the best so far
    counts feasible results only.

    Raises:
        UserError: matplotlib is missing, or the experiment has no result with its metric yet.
    """
    mpl = _matplotlib()
    from matplotlib.figure import Figure  # deferred: matplotlib (heavy), only when plotting

    objectives = experiment.objectives
    metric, mode = objectives.metrics[0], objectives.modes[0]
    results = experiment.results
    column = metric_column(metric, results.columns) if not results.empty else metric
    if results.empty or column not in results or not results[column].notna().any():
        raise UserError(f"{experiment.path} has no result with {metric} yet; plot it once a trial has reported")
    values = results[column].to_numpy(dtype=float)
    times = results["tuner_time"].to_numpy(dtype=float)
    feasible = np.array([experiment.feasible(ev["result"], ev["trial_id"]) for ev in experiment.state.results])
    resource = experiment.resource_attr
    resource_column = metric_column(resource, results.columns) if resource else None
    by_resource = resource_column is not None and resource_column in results
    status = {row["trial_id"]: row["status"] for row in experiment.trial_table()}
    simulated = is_simulation(experiment.path)
    multi = objectives.is_multi
    with mpl.rc_context(_STYLE):
        n_panels = 3 if multi else 2
        fig = Figure(figsize=(5.6 * n_panels + 1.6, 4.8), layout="constrained")
        axes = fig.subplots(1, n_panels)
        ax = axes[0]
        order = np.argsort(times, kind="stable")
        t, v, ok = times[order], values[order], feasible[order]
        ax.scatter(t[ok], v[ok], s=9, color="0.55", alpha=0.5, linewidths=0, label="results")
        if (~ok).any():
            ax.scatter(t[~ok], v[~ok], s=9, marker="x", color="tab:red", alpha=0.5, linewidths=0.8,
                       label="infeasible results")
        best = best_so_far(np.where(ok, v, np.nan), mode)
        ax.plot(t, best, color="tab:blue", linewidth=2.4, drawstyle="steps-post", label="best so far")
        ax.set_xlabel(time_label(simulated))
        ax.set_ylabel(f"{metric} ({mode})")
        ax.set_title(f"best {'feasible ' if experiment.constraints else ''}{metric} so far")
        _zoom(ax, best, v, mode)
        if len(t) > 1 and t[0] > 0 and t[-1] / t[0] >= 100:
            ax.set_xscale("log")
        ax.legend(loc="lower right" if mode == "max" else "upper right", framealpha=0.85, edgecolor="none")
        ax = axes[1]
        x_all = results[resource_column].to_numpy(dtype=float) if by_resource else times
        population = by_resource and bool(experiment.state.exploits)
        if population:
            _population_panel(ax, experiment, results, x_all, values)
        else:
            _curves_panel(ax, results, x_all, values, status)
        ax.set_xlabel(resource if by_resource and resource else time_label(simulated))
        ax.set_ylabel(f"{metric} ({mode})")
        if (not population and by_resource and x_all.size
                and np.nanmax(x_all) / max(np.nanmin(x_all), 1e-12) >= 30):
            ax.set_xscale("log")
        finite = values[np.isfinite(values)]
        if population and finite.size and finite.min() > 0 and finite.max() / finite.min() >= 5:
            ax.set_yscale("log")  # the whole population's training, on a log scale
        elif not population:
            _zoom(ax, best, values, mode)
        ax.legend(loc="lower right" if mode == "max" else "upper right", framealpha=0.85, edgecolor="none")
        if multi:
            _front_panel(axes[2], experiment, results)
        name = experiment.metadata.get("benchmark") or Path(str(experiment.metadata.get("script") or
                                                              experiment.path)).name
        method = experiment.metadata.get("method") or "?"
        fig.suptitle(f"{name}, {method}: {len(status)} trials, {len(results)} results"
                     + (" (simulated)" if simulated else ""))
    return fig


def _curves_panel(ax: Any, results: Any, x_all: np.ndarray, values: np.ndarray, status: dict[int, str]) -> None:
    """Every trial's learning curve (``values`` over ``x_all``), styled by its status."""
    drawn: set[str] = set()
    groups: dict[Any, Any] = dict(results.groupby("trial_id", sort=True).indices)
    for tid, idx in groups.items():
        st = status.get(int(tid), "stopped")
        color, dash, width, alpha, label = _STATUS_STYLE.get(st, _STATUS_STYLE["stopped"])
        x, yv = x_all[idx], values[idx]
        keep = np.isfinite(yv)
        if not keep.any():
            continue
        ax.plot(x[keep], yv[keep], color=color, linestyle=dash, linewidth=width, alpha=alpha,
                marker="o" if keep.sum() == 1 else None, markersize=2.5,
                label=None if st in drawn else label, zorder=3 if st in ("completed", "running") else 2)
        drawn.add(st)
    ax.set_title(f"learning curves of the {len(status)} trials")


def _population_panel(ax: Any, experiment: Experiment, results: Any, x_all: np.ndarray,
                      values: np.ndarray) -> None:
    """The population of a run with exploits (PBT): each trial's metric over the resource, one
    color a trial, its curve broken where it took another trial's checkpoint; a dashed lineage
    edge goes from the source's point at the exploit's resource to the trial's next point."""
    groups: dict[int, np.ndarray] = {int(t): idx for t, idx in results.groupby("trial_id", sort=True).indices.items()}
    cuts: dict[int, list[int]] = {}  # trial -> its decided results before each of its exploits
    for e in experiment.state.exploits:
        cuts.setdefault(e["trial_id"], []).append(e["n_results"])
    times = results["tuner_time"].to_numpy(dtype=float)
    cmap = _matplotlib().colormaps["tab20"]
    colors = {tid: cmap(i % 20) for i, tid in enumerate(groups)}
    for tid, idx in groups.items():
        bounds = [0, *cuts.get(tid, []), len(idx)]
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            part = idx[lo:hi]
            keep = np.isfinite(values[part])
            if keep.any():
                ax.plot(x_all[part][keep], values[part][keep], color=colors[tid], linewidth=1.3, alpha=0.85,
                        marker="o" if keep.sum() == 1 else None, markersize=2.5)
    label: str | None = "exploit: copy of a better trial"
    for e in experiment.state.exploits:
        tid, source, n = e["trial_id"], e["source"], e["n_results"]
        src, dst = groups.get(source), groups.get(tid)
        if src is None or dst is None or n >= len(dst):
            continue  # the trial reported nothing after it yet
        at = src[(x_all[src] == e["resource"]) & (times[src] <= e["time"])]  # reported before the copy
        if not len(at):
            continue
        i, j = at[-1], dst[n]
        ax.plot([x_all[i], x_all[j]], [values[i], values[j]], color="0.2", linestyle=(0, (2.5, 2)),
                linewidth=0.9, alpha=0.75, label=label, zorder=4)
        label = None
    ax.set_title(f"population: {len(groups)} trials, {len(experiment.state.exploits)} exploits")


def _zoom(ax: Any, best: np.ndarray, values: np.ndarray, mode: str) -> None:
    """The y range of a panel: from the median result to the best value, so that the many poor
    results of early-stopped trials do not squash the differences that matter (worse results
    are cut off)."""
    v = values[np.isfinite(values)]
    b = best[np.isfinite(best)]
    if not len(v) or not len(b):
        return
    sign = 1.0 if mode == "min" else -1.0
    top = float(np.median(sign * v))  # worse end, minimization terms
    low = float(np.min(sign * b))
    if not top > low:
        return
    pad = 0.05 * (top - low)
    lim = sorted((sign * (low - pad), sign * (top + pad)))
    ax.set_ylim(*lim)


def _front_panel(ax: Any, experiment: Experiment, results: Any) -> None:
    """Every trial's last result and the Pareto front on the first two objectives."""
    objectives = experiment.objectives
    (m0, m1), (o0, o1) = objectives.metrics[:2], objectives.modes[:2]
    last = results.groupby("trial_id", sort=True).tail(1)
    c0, c1 = metric_column(m0, results.columns), metric_column(m1, results.columns)
    if c0 in last and c1 in last:
        ax.scatter(last[c0], last[c1], s=12, color="0.6", alpha=0.6, linewidths=0, label="trials (last result)")
    front = experiment.pareto_front()
    if not front.empty and c0 in front and c1 in front:
        F = front[[c0, c1]].to_numpy(dtype=float)
        F = F[np.argsort(F[:, 0])]
        ax.plot(F[:, 0], F[:, 1], color="tab:purple", marker="o", markersize=5, linewidth=1.8,
                drawstyle="steps-post" if (o0 == "min") == (o1 == "min") else "steps-pre",
                label=f"Pareto front ({len(F)} trials)")
    ax.set_xlabel(f"{m0} ({o0})")
    ax.set_ylabel(f"{m1} ({o1})")
    ax.set_title("Pareto front" + (" (first two objectives)" if len(objectives.metrics) > 2 else ""))
    ax.legend(loc="best", framealpha=0.85, edgecolor="none")


def plot_experiment(experiment: Experiment | str | Path, output: str | Path, *, dpi: int = 130) -> Path:
    """Write the :func:`experiment_figure` of ``experiment`` (or of the experiment folder at that
    path) to ``output``: a file whose suffix picks the format (``.png``, ``.pdf``, ``.svg``,
    ``.jpg``), or a folder (no suffix) that gets ``<experiment folder name>.png``; returns the path.

    Raises:
        UserError: matplotlib is missing, an unknown suffix (:func:`check_output`), not an
            experiment folder, no result yet, or a file that cannot be written.
    """
    out = check_output(output)
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    if not out.suffix:
        out = out / f"{exp.path.resolve().name}.png"
    return _save(experiment_figure(exp), out, dpi)
