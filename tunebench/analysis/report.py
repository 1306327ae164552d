"""Tables of an experiment grid: markdown for reading, CSV for further analysis.

Per benchmark, a table of methods x fractions of the budget with the IQM over seeds of the
normalized regret and its bootstrap confidence interval, the best metric value (IQM) and the
average rank at the end; then the same over all benchmarks (runs of the methods run on every
benchmark pooled; ranks averaged over benchmarks). See :mod:`tunebench.analysis.aggregate` for
the definitions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tunebench.analysis.aggregate import ALL, summarize
from tunebench.analysis.results import Grid
from tunebench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["write_report", "report_markdown"]

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


def report_markdown(grid: Grid, table: pd.DataFrame, fractions: Sequence[float], confidence: float = 0.95) -> str:
    """Markdown of the :func:`~tunebench.analysis.aggregate.summarize` ``table`` of ``grid``."""
    runs = grid.runs
    n_unfinished = int((~runs["complete"]).sum())
    out = [f"# Experiment `{grid.tag}`", "",
           f"{len(runs)} runs of {runs['method'].nunique()} methods on {runs['benchmark'].nunique()} benchmarks "
           f"({n_unfinished} unfinished, {len(grid.skipped)} folders skipped), from {grid.root / grid.tag}.", "",
           "Normalized regret = (value − best) / (worst − best): 0 is the benchmark's known optimum or else the "
           "best value any run found, 1 the median over runs of their first result. Times are fractions of "
           "the benchmark's wallclock budget.", ""]
    for b in grid.benchmarks:
        rows = table[table["benchmark"] == b]
        optimum = grid.optimum(b)
        seeds = sorted(set(runs.loc[runs["benchmark"] == b, "seed"]))
        facts = [f"{grid.metric(b)} ({grid.mode(b)})", f"budget {grid.budget(b):g} s", f"{len(seeds)} seeds"]
        if optimum is not None:
            facts.append(f"known optimum {optimum:.6g}")
        out += [f"## {b}", "", "; ".join(facts), ""]
        out += _table(rows, fractions, grid.metric(b), confidence)
        out.append("")
    rows = table[table["benchmark"] == ALL]
    if not rows.empty:
        out += ["## All benchmarks", "",
                f"Normalized regret pooled over the runs of every benchmark ({len(grid.benchmarks)}); ranks "
                "averaged over seeds, then benchmarks, among the methods run on all of them.", ""]
        out += _table(rows, fractions, None, confidence)
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
                 n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> str:
    """Summarize ``grid`` at ``fractions`` of each benchmark's budget; returns the markdown.

    If ``output_dir`` is given (created if needed), also writes there ``report.md`` (the
    markdown), ``report.csv`` (every row of :func:`~tunebench.analysis.aggregate.summarize`: one
    per benchmark, method and fraction, plus the ``ALL`` rows) and ``report_<benchmark>.csv``
    (that benchmark's rows). ``n_boot``, ``confidence``, ``seed``: of the bootstrap.

    Raises:
        UserError: fractions that are not positive numbers; an output folder that cannot be written.
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(not (f > 0) for f in fractions):
        raise UserError(f"budget fractions must be positive numbers, got {fractions}")
    table = summarize(grid, fractions, n_boot=n_boot, confidence=confidence, seed=seed)
    text = report_markdown(grid, table, fractions, confidence)
    if output_dir is not None:
        out = Path(output_dir).expanduser()
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "report.md").write_text(text + "\n")
            table.to_csv(out / "report.csv", index=False)
            for b in grid.benchmarks:
                table[table["benchmark"] == b].to_csv(out / f"report_{b}.csv", index=False)
        except OSError as e:
            raise UserError(f"cannot write the report to {out}: {e.strerror or e}; choose another output "
                            "folder") from e
    return text
