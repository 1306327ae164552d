"""Tables of an experiment grid: markdown for reading, CSV for further analysis.

Per benchmark, a table of methods x fractions of the budget with the IQM over seeds of the
normalized regret and its bootstrap confidence interval, the best metric value (IQM) and the
average rank at the end; then the same over all benchmarks (runs of the methods run on every
benchmark pooled; ranks averaged over benchmarks). See :mod:`tunebench.analysis.aggregate` for
the definitions.

A multi-objective benchmark gets instead a table of the normalized hypervolume of the feasible
front (IQM over seeds with its bootstrap interval, :func:`~tunebench.analysis.aggregate.summarize_hypervolume`)
at each fraction, and the average rank (1 = largest hypervolume), with the scales and reference
point used (:mod:`tunebench.analysis.hypervolume`). Under constraints only feasible results
count (the benchmark's constraints are listed).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tunebench.analysis.aggregate import ALL, summarize, summarize_hypervolume
from tunebench.analysis.hypervolume import HV_MARGIN
from tunebench.analysis.plots import plot_grid
from tunebench.analysis.results import Grid
from tunebench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["write_report", "report_markdown"]

logger = logging.getLogger(__name__)

#: how many skipped folders and unfinished runs the markdown lists by path
_MAX_LISTED = 20


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _pct(f: float) -> str:
    return f"{100 * f:g}%"


def _table(rows: pd.DataFrame, fractions: Sequence[float], metric: str | None, confidence: float) -> list[str]:
    """Markdown table of one benchmark's (or ALL's) summary rows."""
    last = fractions[-1]
    head = ["method"] + [f"regret @{_pct(f)}" for f in fractions]
    if metric is not None:
        head.append(f"best {metric} @{_pct(last)} (IQM)")
    head += [f"rank @{_pct(last)}", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    best_at = {f: rows.loc[rows["fraction"] == f, "regret_iqm"].min() for f in fractions}
    for method, sub in rows.groupby("method", sort=False):
        # a row's fields are its columns, of mixed types: read as Any
        by_f: dict[float, Any] = {float(r.fraction): r for r in cast("Iterable[Any]", sub.itertuples())}
        cells = [str(method)]
        for f in fractions:
            r = by_f[f]
            cell = f"{_num(r.regret_iqm)} [{_num(r.regret_lo)}, {_num(r.regret_hi)}]"
            if math.isfinite(r.regret_iqm) and r.regret_iqm == best_at[f]:
                cell = f"**{_num(r.regret_iqm)}** [{_num(r.regret_lo)}, {_num(r.regret_hi)}]"
            cells.append(cell)
        end = by_f[last]
        if metric is not None:
            cells.append(_num(end.best_iqm, 6))
        cells += [_num(end.rank, 3), str(end.n_seeds)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Regret: IQM over seeds [{100 * confidence:g}% bootstrap CI]; the lowest IQM in bold. "
                 f"Rank: average over seeds (1 = best).")
    return lines


def _hv_table(rows: pd.DataFrame, fractions: Sequence[float], confidence: float) -> list[str]:
    """Markdown table of one multi-objective benchmark's (or ALL's) hypervolume rows."""
    last = fractions[-1]
    head = ["method"] + [f"HV @{_pct(f)}" for f in fractions] + [f"rank @{_pct(last)}", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    best_at = {f: rows.loc[rows["fraction"] == f, "hv_iqm"].max() for f in fractions}
    for method, sub in rows.groupby("method", sort=False):
        # a row's fields are its columns, of mixed types: read as Any
        by_f: dict[float, Any] = {float(r.fraction): r for r in cast("Iterable[Any]", sub.itertuples())}
        cells = [str(method)]
        for f in fractions:
            r = by_f[f]
            center = _num(r.hv_iqm)
            if math.isfinite(r.hv_iqm) and r.hv_iqm == best_at[f]:
                center = f"**{center}**"
            cells.append(f"{center} [{_num(r.hv_lo)}, {_num(r.hv_hi)}]")
        end = by_f[last]
        cells += [_num(end.rank, 3), str(end.n_seeds)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"HV: normalized hypervolume of the feasible front, IQM over seeds [{100 * confidence:g}% bootstrap "
                 f"CI]; the highest IQM in bold. Rank: average over seeds (1 = largest hypervolume).")
    return lines


def _hv_facts(grid: Grid, b: str) -> str:
    """The objectives, scales and reference point of multi-objective benchmark ``b``, in words."""
    objectives = grid.objectives_of(b)
    names = ", ".join(f"{m} ({o})" for m, o in zip(objectives.metrics, objectives.modes, strict=True))
    bounds = grid.hv_bounds.get(b)
    if bounds is None:
        return f"objectives {names}; no feasible result: hypervolume 0"
    signs = objectives.signs

    def point(v: Any) -> str:
        return "(" + ", ".join(f"{sign * x:.4g}" for sign, x in zip(signs, v, strict=True)) + ")"

    return (f"objectives {names}; scales: best {point(bounds.lower)} → 0, worst {point(bounds.upper)} → 1; "
            f"reference point {point(bounds.reference)} ({1 + HV_MARGIN:g} in every scaled objective)")


def report_markdown(grid: Grid, table: pd.DataFrame, fractions: Sequence[float], confidence: float = 0.95,
                    hv_table: pd.DataFrame | None = None) -> str:
    """Markdown of the :func:`~tunebench.analysis.aggregate.summarize` ``table`` of ``grid``
    (its single-objective benchmarks) and of the
    :func:`~tunebench.analysis.aggregate.summarize_hypervolume` ``hv_table`` (its
    multi-objective ones)."""
    runs = grid.runs
    n_unfinished = int((~runs["complete"]).sum())
    multi = [b for b in grid.benchmarks if grid.is_multi(b)]
    single = [b for b in grid.benchmarks if not grid.is_multi(b)]
    out = [f"# Experiment `{grid.tag}`", "",
           f"{len(runs)} runs of {runs['method'].nunique()} methods on {runs['benchmark'].nunique()} benchmarks "
           f"({n_unfinished} unfinished, {len(grid.skipped)} folders skipped), from {grid.root / grid.tag}.", ""]
    if single:
        out += ["Normalized regret = (value − best) / (worst − best): 0 is the benchmark's known optimum or else "
                "the best value any run found, 1 the median over runs of their first result. Times are fractions "
                "of the benchmark's wallclock budget.", ""]
    if multi:
        out += ["Normalized hypervolume (multi-objective benchmarks): the share of the box between the best value "
                "of each objective over all runs of the benchmark (scaled to 0) and the reference point (each "
                f"objective's worst value on the runs' final fronts scaled to 1, plus {HV_MARGIN:g}) that the "
                "feasible Pareto front found so far dominates: one scale for every method and seed of a "
                "benchmark. Times are fractions of the benchmark's wallclock budget.", ""]
    for b in grid.benchmarks:
        seeds = sorted(set(runs.loc[runs["benchmark"] == b, "seed"]))
        constraints = grid.constraints.get(b, ())
        if b in multi:
            facts = [_hv_facts(grid, b), f"budget {grid.budget(b):g} s", f"{len(seeds)} seeds"]
            if constraints:
                facts.append("constraints " + ", ".join(map(str, constraints)) + " (only feasible results count)")
            out += [f"## {b}", "", "; ".join(facts), ""]
            if hv_table is not None:
                out += _hv_table(hv_table[hv_table["benchmark"] == b], fractions, confidence)
            out.append("")
            continue
        rows = table[table["benchmark"] == b]
        optimum = grid.optimum(b)
        facts = [f"{grid.metric(b)} ({grid.mode(b)})", f"budget {grid.budget(b):g} s", f"{len(seeds)} seeds"]
        if optimum is not None:
            facts.append(f"known optimum {optimum:.6g}")
        if constraints:
            facts.append("constraints " + ", ".join(map(str, constraints)) + " (only feasible results count)")
        out += [f"## {b}", "", "; ".join(facts), ""]
        out += _table(rows, fractions, grid.metric(b), confidence)
        out.append("")
    rows = table[table["benchmark"] == ALL] if not table.empty else table
    if not rows.empty:
        out += ["## All benchmarks", "",
                f"Normalized regret pooled over the runs of every benchmark ({len(single)}); ranks "
                "averaged over seeds, then benchmarks, among the methods run on all of them.", ""]
        out += _table(rows, fractions, None, confidence)
        out.append("")
    rows = hv_table[hv_table["benchmark"] == ALL] if hv_table is not None and not hv_table.empty else None
    if rows is not None and not rows.empty:
        out += ["## All multi-objective benchmarks", "",
                f"Normalized hypervolume pooled over the runs of every multi-objective benchmark ({len(multi)}); "
                "ranks averaged over seeds, then benchmarks, among the methods run on all of them.", ""]
        out += _hv_table(rows, fractions, confidence)
        out.append("")
    unfinished = runs[~runs["complete"]]
    if not unfinished.empty:
        out += ["## Unfinished runs", "", "No `experiment_end` in their log (still running, or killed); "
                "included up to their last result.", ""]
        out += [f"- {r.benchmark} / {r.method} / seed {r.seed}: {r.n_results} results"
                + (f" ({r.note})" if r.note else "") for r in unfinished.head(_MAX_LISTED).itertuples()]
        if len(unfinished) > _MAX_LISTED:
            out.append(f"- ... and {len(unfinished) - _MAX_LISTED} more")
        out.append("")
    if grid.skipped:
        out += ["## Skipped folders", ""]
        out += [f"- `{path}`: {reason}" for path, reason in grid.skipped[:_MAX_LISTED]]
        if len(grid.skipped) > _MAX_LISTED:
            out.append(f"- ... and {len(grid.skipped) - _MAX_LISTED} more")
        out.append("")
    return "\n".join(out)


def write_report(grid: Grid, output_dir: str | Path | None = None, *, fractions: Sequence[float] = (0.25, 0.5, 1.0),
                 n_boot: int = 2000, confidence: float = 0.95, seed: int = 0, figures: bool = False) -> str:
    """Summarize ``grid`` at ``fractions`` of each benchmark's budget; returns the markdown.

    If ``output_dir`` is given (created if needed), also writes there ``report.md`` (the
    markdown), ``report.csv`` (every row of :func:`~tunebench.analysis.aggregate.summarize`: one
    per benchmark, method and fraction, plus the ``ALL`` rows; single-objective benchmarks),
    ``report_hypervolume.csv`` (the rows of
    :func:`~tunebench.analysis.aggregate.summarize_hypervolume`; multi-objective benchmarks, if
    any) and ``report_<benchmark>.csv`` (that benchmark's rows). ``n_boot``, ``confidence``,
    ``seed``: of the bootstrap.

    With ``figures`` (and ``output_dir``), also the figures of
    :func:`~tunebench.analysis.plots.plot_grid` in ``<output_dir>/figures/`` (PNG: one per
    benchmark, a Pareto-front one per multi-objective benchmark, the ranks over benchmarks when
    there are several), shown in ``report.md`` under a last section "Figures"; without
    matplotlib they are left out with a logged warning.

    Raises:
        UserError: fractions that are not positive numbers; an output folder that cannot be written.
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(not (f > 0) for f in fractions):
        raise UserError(f"budget fractions must be positive numbers, got {fractions}")
    multi = [b for b in grid.benchmarks if grid.is_multi(b)]
    single = [b for b in grid.benchmarks if b not in multi]
    kwargs: dict[str, Any] = {"n_boot": n_boot, "confidence": confidence, "seed": seed}
    table = summarize(grid, fractions, benchmarks=single, **kwargs)
    hv_table = summarize_hypervolume(grid, fractions, benchmarks=multi, **kwargs) if multi else None
    text = report_markdown(grid, table, fractions, confidence, hv_table)
    if output_dir is not None:
        out = Path(output_dir).expanduser()
        written = _figures(grid, out, n_boot=n_boot, confidence=confidence, seed=seed) if figures else []
        if written:
            text += "\n## Figures\n\n" + "\n\n".join(
                f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in written) + "\n"
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "report.md").write_text(text + "\n")
            if single:
                table.to_csv(out / "report.csv", index=False)
            if hv_table is not None:
                hv_table.to_csv(out / "report_hypervolume.csv", index=False)
            for b in grid.benchmarks:
                rows = hv_table if b in multi and hv_table is not None else table
                rows[rows["benchmark"] == b].to_csv(out / f"report_{b}.csv", index=False)
        except OSError as e:
            raise UserError(f"cannot write the report to {out}: {e.strerror or e}; choose another output "
                            "folder") from e
    return text


def _figures(grid: Grid, out: Path, **kwargs: Any) -> list[Path]:
    """The figures of ``grid`` in ``out/figures`` (:func:`plot_grid`); none without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        logger.warning("the report's figures need matplotlib (pip install 'tunebench[plot]'); writing the tables only")
        return []
    return plot_grid(grid, out / "figures", **kwargs)
