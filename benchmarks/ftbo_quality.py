"""Quality of FTBO against the freeze-thaw and multi-fidelity baselines on YAHPO lcbench (issue 19).

Protocol (issue 19, "Protocol and targets"), in the simulator, decision time not charged (figures
independent of the machine's load):

* ``1w``: 1 worker, a budget of ``--epochs`` epochs trained in all (default 1000, as ifBO, DPL and
  DyHPO report): the run stops after that many results (one result per epoch trained; a resumed
  trial continues from its checkpoint), and the budget fraction is the share of those epochs;
* ``4w``: 4 workers on the simulator's clock (a decision is made whenever one of them frees, while
  the other three trials run), the same budget of ``--epochs`` epochs trained in all: equal compute,
  spent four at a time; with ``--time-budget S`` instead ``S`` simulated seconds, the budget
  fraction being the share of that time.  Why epochs by default: lcbench's tasks differ up to 30x
  in the time of an epoch, so a fixed time (Syne Tune's 7200 s) trains some 11,000 epochs on the
  fast tasks and 1,000 on the slow ones; one-epoch-per-step methods (FTBO) decide once per epoch,
  which makes a fast task cost minutes per run.

Methods are labels: ``FTBO-<surrogate>`` is the method ``FTBO`` with ``surrogate=<surrogate>``
(``--ftbo-surrogates pfn dpl`` makes the default FTBO labels), ``METHOD-tag`` the method ``METHOD``
with the options ``--method-arg LABEL.KEY=VALUE`` gives it (the label rules of
``benchmarks/method_quality.py``), any other label a registered method with its defaults. Nothing
is tuned here.

Normalized regret of a run at a budget fraction: ``(best - found) / (best - median)`` on
``val_accuracy`` (maximized), ``found`` the best value seen so far (any epoch), ``best`` and
``median`` the best and the median at the last epoch of a fixed random sample of 1,000,000
configurations of the task (:data:`tunebench.benchmarks.builtin.LCBENCH_REGRET_BOUNDS`, computed
once by :func:`~tunebench.benchmarks.builtin.lcbench_regret_bounds`): bounds fixed before any run,
from the blackbox alone.  A run that beats the sample's best has regret 0 in the means, medians
and the plot (clipped; how many, and by how much, is printed); ranks, wins/ties/losses and the
tests compare the unclipped values (per task a monotone function of the value found, so
independent of the clip). A run without a result yet has regret 1.

Figures, for the development tasks (:data:`tunebench.blackboxes.yahpo.LCBENCH_DEVELOPMENT_TASKS`),
the other (reporting) tasks and both pooled: the mean and median normalized regret at 25/50/100 % of
the budget per method; the mean rank (methods ranked by regret per task x seed, averaged); per task,
wins/ties/losses of FTBO-pfn against each method (medians over seeds at 100 %, a tie within
``--tie-tolerance``); a paired Wilcoxon signed-rank test over task x seed pairs (FTBO-pfn vs each,
two-sided). ``--plot FILE``: the mean normalized regret over the budget fraction per method with a
bootstrap 95 % band, one panel per setting. ``--started``: per method, the mean regret had each
run trained the best configuration it had started to the end (its value at the last epoch, from
the blackbox), beside the regret found, and the trials started: what the configurations a method
tried were worth, apart from how it spent the budget on them.

Targets (issue 19, on the 26 reporting tasks): FTBO-pfn has a lower mean normalized regret than
DyHPO, MOBSTER, HyperTune and ASHA at 50 % and 100 % of the budget.

Resumable: runs live under ``--results-root`` (default: a temporary folder), one experiment grid
per (setting, method label), tag ``ftbo-quality-<setting>-<label>``; complete runs are skipped.

    TUNEBENCH_DATA=../shared/data python benchmarks/ftbo_quality.py \\
        [--tasks dev|reporting|all|ID ...] [--methods FTBO-pfn DyHPO ...] [--ftbo-surrogates pfn dpl] \\
        [--seeds 10] [--setting 1w|4w|both] [--parallel 2] [--results-root DIR] [--plot FILE] [--started]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark script's label rules
from method_quality import method_of, parse_method_args  # noqa: E402

from tunebench.analysis import bootstrap_ci, load_grid
from tunebench.analysis.aggregate import resample
from tunebench.benchmarks.builtin import LCBENCH_REGRET_BOUNDS
from tunebench.blackboxes.yahpo import LCBENCH_DEVELOPMENT_TASKS, LCBENCH_INSTANCES
from tunebench.errors import UserError

FRACTIONS = (0.25, 0.5, 1.0)
BASELINES = ["DyHPO", "MOBSTER", "HyperTune", "ASHA"]
REFERENCE = "FTBO-pfn"
#: settings: their workers
SETTINGS = {"1w": 1, "4w": 4}
#: a run's wall-clock limit where the budget is in epochs (the result count ends it first)
UNLIMITED_TIME = 1e12


def reporting_tasks() -> list[str]:
    """The lcbench tasks other than the development ones (those the targets are judged on)."""
    return [t for t in LCBENCH_INSTANCES if t not in LCBENCH_DEVELOPMENT_TASKS]


def select_tasks(tokens: Sequence[str]) -> list[str]:
    """Task ids from ``dev``, ``reporting``, ``all`` and ids (in order, without repeats)."""
    out: list[str] = []
    for token in tokens:
        if token == "dev":
            out += LCBENCH_DEVELOPMENT_TASKS
        elif token == "reporting":
            out += reporting_tasks()
        elif token == "all":
            out += LCBENCH_INSTANCES
        elif token.removeprefix("lcbench-") in LCBENCH_INSTANCES:
            out.append(token.removeprefix("lcbench-"))
        else:
            raise UserError(f"--tasks {token}: not an lcbench task; use dev, reporting, all or ids among "
                            f"{', '.join(LCBENCH_INSTANCES)}")
    return list(dict.fromkeys(out))


def tag_of(setting: str, label: str) -> str:
    return f"ftbo-quality-{setting}-{label}"


def by_epochs(setting: str, time_budget: float | None) -> bool:
    """Whether ``setting``'s budget counts epochs (1w always; 4w without a ``time_budget``)."""
    return setting == "1w" or time_budget is None


def run_setting(setting: str, tasks: Sequence[str], labels: Sequence[str], seeds: int, root: Path, *,
                parallel: int, epochs: int, time_budget: float | None,
                options: dict[str, dict[str, Any]] | None = None) -> None:
    """Run (or resume, or skip where complete) every (task, label, seed) of ``setting`` under
    ``root``; ``options``: per label, its method's options (default: those the label implies)."""
    from tunebench.experiments.grid import GridRequest, plan_grid, run_grid

    workers, epoch_budget = SETTINGS[setting], by_epochs(setting, time_budget)
    jobs = []
    for label in labels:
        method, implied = method_of(label)
        given = implied if options is None else options[label]
        jobs += plan_grid(GridRequest(
            benchmarks=[f"lcbench-{t}" for t in tasks], methods=[method], seeds=list(range(seeds)),
            tag=tag_of(setting, label), results_root=root, n_workers=workers, charge_decision_time=False,
            max_wallclock_time=UNLIMITED_TIME if epoch_budget else time_budget,
            max_results=epochs if epoch_budget else None, method_args={method: given} if given else {}))
    todo = sum(job.action in ("start", "resume") for job in jobs)
    t0 = time.perf_counter()
    result = run_grid(jobs, parallel=parallel, tag=f"ftbo-quality-{setting}")
    failed = [o for o in result.outcomes if o.status not in ("complete", "skipped")]
    print(f"{setting}: {len(jobs)} runs ({todo} to run, {len(jobs) - todo} already complete) in "
          f"{time.perf_counter() - t0:.0f} s" + (f", {len(failed)} not complete" if failed else ""), flush=True)
    for o in failed[:5]:
        print(f"  {o.job.benchmark} {o.job.spec.method} {o.job.seed}: {o.status} {o.error[-300:]}")
    if result.interrupted or failed:
        raise SystemExit(f"{setting}: {len(failed)} runs did not complete (see above); rerun to resume them")


def normalized_regret(found: np.ndarray | float, bounds: tuple[float, float]) -> np.ndarray:
    """``(best - found) / (best - median)`` for a task's ``bounds = (best, median)`` (unclipped)."""
    best, median = bounds
    return np.asarray((best - np.asarray(found, dtype=float)) / (best - median))


@dataclass
class Regrets:
    """Normalized regret of every run of one setting: ``values[label]`` has shape
    ``(n_tasks, n_seeds, n_points)`` at the budget fractions ``points``, clipped at 0; ``raw``
    the same unclipped (below 0: better than the task's ``best`` bound)."""

    setting: str
    tasks: list[str]
    labels: list[str]
    points: np.ndarray
    unit: str = "epochs"  #: what the budget counts: epochs or simulated seconds
    values: dict[str, np.ndarray] = field(default_factory=dict)
    raw: dict[str, np.ndarray] = field(default_factory=dict)

    def at(self, label: str, fraction: float, tasks: Sequence[str] | None = None, *, raw: bool = False
           ) -> np.ndarray:
        """``(n_tasks, n_seeds)`` regrets of ``label`` at ``fraction`` (one of :data:`FRACTIONS`),
        clipped at 0 unless ``raw``."""
        i = int(np.argmin(np.abs(self.points - fraction)))
        rows = [self.tasks.index(t) for t in tasks] if tasks is not None else list(range(len(self.tasks)))
        return (self.raw if raw else self.values)[label][rows, :, i]

    def beyond_bound(self) -> tuple[int, int, float]:
        """``(runs, of, lowest)``: how many runs end with a negative unclipped regret, of how
        many, and the lowest final one."""
        final = np.concatenate([r[..., -1].ravel() for r in self.raw.values()])
        return int(np.sum(final < 0)), len(final), float(final.min())


def load_regrets(setting: str, tasks: Sequence[str], labels: Sequence[str], seeds: int, root: Path,
                 bounds: dict[str, tuple[float, float]], *, epochs: int, time_budget: float | None,
                 n_points: int = 100) -> Regrets:
    """The normalized regret of the runs of ``setting`` under ``root`` at ``n_points`` budget
    fractions (linear, to 1; the :data:`FRACTIONS` among them)."""
    points = np.unique(np.concatenate([np.linspace(1.0 / n_points, 1.0, n_points), FRACTIONS]))
    out = Regrets(setting, list(tasks), list(labels), points,
                  "epochs" if by_epochs(setting, time_budget) else "simulated seconds")
    for label in labels:
        grid = load_grid(root, tag_of(setting, label), benchmarks=[f"lcbench-{t}" for t in tasks],
                         known_optima=False)
        method, _ = method_of(label)
        values = np.empty((len(tasks), seeds, len(points)))
        for i, t in enumerate(tasks):
            for s in range(seeds):
                key = (f"lcbench-{t}", method, s)
                if key not in grid.curves:
                    raise UserError(f"no {setting} run of {label} on lcbench-{t} seed {s} under {root}")
                times, found = grid.curves[key]
                if by_epochs(setting, time_budget):  # the value after ceil(p * epochs) results
                    k = np.minimum(np.ceil(points * epochs - 1e-9).astype(int), len(found))
                    at = np.where(k > 0, found[np.maximum(k - 1, 0)], np.nan)
                else:
                    assert time_budget is not None
                    at = resample(times, found, points * time_budget)
                regret = normalized_regret(at, bounds[t])
                values[i, s] = np.where(np.isnan(regret), 1.0, regret)
        out.raw[label] = values
        out.values[label] = np.maximum(values, 0.0)
    return out


@dataclass
class StartedFigures:
    """What the configurations a method started were worth (``--started``): per label, the mean
    over runs of the regret found and of the regret of the best configuration started so far had it
    been trained to ``max_t`` (the blackbox's last-epoch value), at each of :data:`FRACTIONS`, and
    the mean number of trials started."""

    found: dict[str, list[float]] = field(default_factory=dict)
    started: dict[str, list[float]] = field(default_factory=dict)
    trials: dict[str, float] = field(default_factory=dict)


def started_figures(reg: Regrets, tasks: Sequence[str], seeds: int, root: Path,
                    bounds: dict[str, tuple[float, float]], *, epochs: int,
                    time_budget: float | None) -> StartedFigures:
    """:class:`StartedFigures` of the runs of ``reg``'s setting on ``tasks``: splits a method's regret
    into the configurations it tried (``started``: had it trained the best of them to the end) and
    how it spent the budget on them (the rest, ``found - started``). A trial counts as started at
    a fraction when its first result came before it (results for ``1w``, simulated time for ``4w``)."""
    from tunebench.blackboxes.registry import load_blackbox
    from tunebench.store import load_experiment

    out = StartedFigures()
    blackboxes = {t: load_blackbox("lcbench", t) for t in tasks}
    for label in reg.labels:
        method, _ = method_of(label)
        per_run, n_trials = [], []
        for t in tasks:
            box = blackboxes[t]
            names = list(box.config_space)
            for seed in range(seeds):
                exp = load_experiment(root / tag_of(reg.setting, label) / f"lcbench-{t}" / method / str(seed))
                firsts = exp.results.groupby("trial_id", sort=False).head(1)
                trials = exp.state.trials
                configs = [{k: trials[int(tid)].trial.config[k] for k in names} for tid in firsts["trial_id"]]
                final = box.level_values(configs, "val_accuracy")
                if by_epochs(reg.setting, time_budget):
                    start = firsts.index.to_numpy(dtype=float)  # results before the trial's first
                    limits = np.ceil(np.asarray(FRACTIONS) * epochs - 1e-9)
                else:
                    assert time_budget is not None
                    start = firsts["tuner_time"].to_numpy(dtype=float)
                    limits = np.asarray(FRACTIONS) * time_budget
                row = []
                for limit in limits:
                    seen = final[(start < limit) & np.isfinite(final)]
                    row.append(max(0.0, float(normalized_regret(seen.max(), bounds[t]))) if seen.size else 1.0)
                per_run.append(row)
                n_trials.append(len(firsts))
        rows = [reg.tasks.index(t) for t in tasks]
        out.found[label] = [float(np.mean(reg.at(label, f)[rows])) for f in FRACTIONS]
        out.started[label] = np.mean(per_run, axis=0).tolist()
        out.trials[label] = float(np.mean(n_trials))
    return out


def print_started(reg: Regrets, fig: StartedFigures) -> None:
    width = max(len(m) for m in reg.labels) + 2
    pct = "/".join(f"{f:.0%}" for f in FRACTIONS)
    print(f"\n[{reg.setting}] the configurations tried: mean regret found, and had each run trained the best "
          f"configuration it had started to the end, at {pct}; trials started")
    print(f"  {'method':<{width}}{'found':>24}{'best started':>24}{'trials':>9}")
    for m in sorted(reg.labels, key=lambda m: fig.found[m][-1]):
        cells = "".join(" ".join(f"{v:7.3f}" for v in vals).rjust(24) for vals in (fig.found[m], fig.started[m]))
        print(f"  {m:<{width}}{cells}{fig.trials[m]:9.0f}")


def mean_ranks(reg: Regrets, fraction: float, tasks: Sequence[str]) -> dict[str, float]:
    """Mean rank of each label (1 = lowest regret, ties averaged) over the task x seed runs."""
    from scipy.stats import rankdata

    stacked = np.stack([reg.at(label, fraction, tasks, raw=True).ravel() for label in reg.labels], axis=1)
    ranks = rankdata(stacked, axis=1)
    return dict(zip(reg.labels, ranks.mean(axis=0).tolist(), strict=True))


def win_tie_loss(reg: Regrets, label: str, tasks: Sequence[str], tolerance: float,
                 reference: str = REFERENCE, fraction: float = 1.0) -> tuple[int, int, int]:
    """Tasks where ``reference``'s median regret over seeds is lower than ``label``'s by more than
    ``tolerance`` (wins), within it (ties), higher (losses)."""
    ref = np.median(reg.at(reference, fraction, tasks, raw=True), axis=1)
    other = np.median(reg.at(label, fraction, tasks, raw=True), axis=1)
    diff = other - ref
    return int(np.sum(diff > tolerance)), int(np.sum(np.abs(diff) <= tolerance)), int(np.sum(diff < -tolerance))


def wilcoxon_p(reg: Regrets, label: str, tasks: Sequence[str], reference: str = REFERENCE,
               fraction: float = 1.0) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of ``reference`` vs ``label`` over the
    task x seed pairs (1 where every pair is equal)."""
    from scipy.stats import wilcoxon

    diff = (reg.at(reference, fraction, tasks, raw=True) - reg.at(label, fraction, tasks, raw=True)).ravel()
    if not np.any(diff != 0):
        return 1.0
    return float(wilcoxon(diff, zero_method="wilcox").pvalue)


@dataclass
class GroupFigures:
    """The figures of one task group of one setting."""

    name: str
    tasks: list[str]
    mean: dict[str, list[float]]  #: label -> mean regret at each of FRACTIONS
    median: dict[str, list[float]]
    rank: dict[str, list[float]]  #: label -> mean rank at each of FRACTIONS
    wtl: dict[str, tuple[int, int, int]]  #: label -> wins, ties, losses of the reference against it (at 100 %)
    p: dict[str, list[float]]  #: label -> Wilcoxon p of the reference vs it at each of FRACTIONS


def group_figures(reg: Regrets, name: str, tasks: Sequence[str], tolerance: float) -> GroupFigures:
    """Every figure of the task group ``tasks``."""
    tasks = list(tasks)
    others = [label for label in reg.labels if label != REFERENCE] if REFERENCE in reg.labels else []
    ranks = [mean_ranks(reg, f, tasks) for f in FRACTIONS]
    return GroupFigures(
        name=name, tasks=tasks,
        mean={m: [float(np.mean(reg.at(m, f, tasks))) for f in FRACTIONS] for m in reg.labels},
        median={m: [float(np.median(reg.at(m, f, tasks))) for f in FRACTIONS] for m in reg.labels},
        rank={m: [r[m] for r in ranks] for m in reg.labels},
        wtl={m: win_tie_loss(reg, m, tasks, tolerance) for m in others},
        p={m: [wilcoxon_p(reg, m, tasks, fraction=f) for f in FRACTIONS] for m in others},
    )


def setting_figures(reg: Regrets, tolerance: float) -> list[GroupFigures]:
    """The figures of the development tasks, the reporting tasks and both pooled (groups without a task left out)."""
    dev = [t for t in reg.tasks if t in LCBENCH_DEVELOPMENT_TASKS]
    rep = [t for t in reg.tasks if t not in LCBENCH_DEVELOPMENT_TASKS]
    groups = [("development", dev), ("reporting", rep)]
    if dev and rep:
        groups.append(("pooled", reg.tasks))
    return [group_figures(reg, name, tasks, tolerance) for name, tasks in groups if tasks]


def print_figures(reg: Regrets, groups: Sequence[GroupFigures], seeds: int, tolerance: float) -> None:
    width = max(len(m) for m in reg.labels) + 2
    pct = "/".join(f"{f:.0%}" for f in FRACTIONS)
    for g in groups:
        print(f"\n[{reg.setting}] {g.name} tasks ({len(g.tasks)} tasks x {seeds} seeds): normalized regret "
              f"(0: best of the sample, 1: its median) and mean rank at {pct} of the budget")
        print(f"  {'method':<{width}}{'mean':>24}{'median':>24}{'mean rank':>24}")
        for m in sorted(reg.labels, key=lambda m: g.mean[m][-1]):
            cells = "".join(" ".join(f"{v:7.3f}" for v in vals).rjust(24)
                            for vals in (g.mean[m], g.median[m], g.rank[m]))
            print(f"  {m:<{width}}{cells}")
        if g.wtl:
            print(f"  {REFERENCE} vs each: tasks won/tied/lost (median over seeds at 100%, tie within {tolerance:g}); "
                  f"Wilcoxon signed-rank p (two-sided, {len(g.tasks) * seeds} pairs) at {pct}")
            for m, (w, t, lo) in g.wtl.items():
                print(f"    vs {m:<{width}}{w:3d}/{t:d}/{lo:d}    p = " + " / ".join(f"{p:.3g}" for p in g.p[m]))


def print_targets(groups: Sequence[GroupFigures]) -> None:
    rep = next((g for g in groups if g.name == "reporting"), None)
    if rep is None or REFERENCE not in rep.mean:
        return
    print(f"  targets (reporting tasks): {REFERENCE} mean regret below each baseline at 50% and 100%")
    for m in BASELINES:
        if m in rep.mean:
            for i, f in ((1, 0.5), (2, 1.0)):
                ok = rep.mean[REFERENCE][i] < rep.mean[m][i]
                print(f"    {f:4.0%}: {REFERENCE} {rep.mean[REFERENCE][i]:.3f} < {m} {rep.mean[m][i]:.3f}: "
                      f"{'yes' if ok else 'NO'}")


def plot(regrets: Sequence[Regrets], output: Path, *, n_boot: int = 1000) -> Path:
    """Mean normalized regret over the budget fraction per method (bootstrap 95 % band over the
    task x seed runs), one panel per setting."""
    from matplotlib.figure import Figure  # deferred: matplotlib (heavy), only when plotting

    from tunebench.analysis.plots import method_colors

    colors = method_colors(list(dict.fromkeys(m for reg in regrets for m in reg.labels)))
    fig = Figure(figsize=(5.5 * len(regrets), 4.4), layout="constrained")
    axes = fig.subplots(1, len(regrets), squeeze=False)
    for ax, reg in zip(axes[0], regrets, strict=True):
        for m in reg.labels:
            runs = reg.values[m].reshape(-1, len(reg.points))
            lo, hi = bootstrap_ci(runs, np.mean, n_boot=n_boot)
            ax.plot(reg.points, runs.mean(axis=0), label=m, color=colors[m])
            ax.fill_between(reg.points, lo, hi, alpha=0.2, color=colors[m])
        workers = SETTINGS[reg.setting]
        ax.set_title(f"{reg.setting}: {workers} worker{'s' if workers > 1 else ''}, budget in {reg.unit}\n"
                     f"{len(reg.tasks)} lcbench tasks x {next(iter(reg.values.values())).shape[1]} seeds")
        ax.set_xlabel("fraction of the budget")
        ax.set_ylabel("mean normalized regret")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    return output


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["all"], help="task ids, dev, reporting or all")
    parser.add_argument("--ftbo-surrogates", nargs="+", default=["pfn", "dpl"],
                        help="FTBO surrogates of the default methods (one label FTBO-<surrogate> each)")
    parser.add_argument("--methods", nargs="+", help="method labels (default: FTBO-<surrogate> for each "
                        f"--ftbo-surrogates, then {' '.join(BASELINES)})")
    parser.add_argument("--method-arg", action="append", default=[], metavar="LABEL.KEY=VALUE",
                        help="a method option for one label of --methods (a label METHOD-tag runs METHOD), e.g. "
                             "--methods FTBO-ei --method-arg FTBO-ei.surrogate=pfn --method-arg FTBO-ei.acquisition=ei")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--setting", choices=["1w", "4w", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=1000, help="budget of the 1w setting: epochs in all")
    parser.add_argument("--time-budget", type=float, help="budget of the 4w setting in simulated s (default: the "
                        "--epochs of 1w, trained in all by the 4 workers)")
    parser.add_argument("--tie-tolerance", type=float, default=0.01,
                        help="median regrets closer than this are a tie (wins/ties/losses)")
    parser.add_argument("--parallel", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--results-root", type=Path, help="keep the runs there, resumable (default: a temporary "
                        "folder)")
    parser.add_argument("--plot", type=Path, help="write the comparison plot there (PNG, PDF, ...)")
    parser.add_argument("--started", action="store_true",
                        help="also print, per method, the regret had each run trained the best configuration it "
                             "started to the end (what the configurations tried were worth, apart from how the "
                             "budget was spent on them)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.epochs < 1 or (args.time_budget is not None and not args.time_budget > 0):
        parser.error("--seeds and --epochs must be >= 1 and --time-budget positive")
    return args


def budget_4w(args: argparse.Namespace) -> str:
    """The 4w budget in words."""
    return f"{args.epochs} epochs" if args.time_budget is None else f"{args.time_budget:g} simulated s"


def main(argv: Sequence[str] | None = None) -> dict[str, list[GroupFigures]]:
    """Run the protocol, print the figures; returns setting -> its group figures."""
    args = parse_args(argv)
    if not os.environ.get("TUNEBENCH_DATA"):
        raise SystemExit("set TUNEBENCH_DATA to the folder holding yahpo/ (e.g. ../shared/data)")
    tasks = select_tasks(args.tasks)
    labels = list(dict.fromkeys(args.methods or [f"FTBO-{s}" for s in args.ftbo_surrogates] + BASELINES))
    options = parse_method_args(args.method_arg, labels)
    settings = ["1w", "4w"] if args.setting == "both" else [args.setting]
    t0 = time.perf_counter()
    out: dict[str, list[GroupFigures]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.results_root or Path(tmp)
        bounds = {t: LCBENCH_REGRET_BOUNDS[t] for t in tasks}
        print(f"{len(labels)} methods x {len(tasks)} lcbench tasks x {args.seeds} seeds, settings "
              f"{', '.join(settings)} (1w: 1 worker, {args.epochs} epochs; 4w: 4 workers, {budget_4w(args)}); "
              f"decision time not charged; {args.parallel} runs at once", flush=True)
        regrets = []
        for setting in settings:
            run_setting(setting, tasks, labels, args.seeds, root, parallel=args.parallel, epochs=args.epochs,
                        time_budget=args.time_budget, options=options)
            reg = load_regrets(setting, tasks, labels, args.seeds, root, bounds, epochs=args.epochs,
                               time_budget=args.time_budget)
            regrets.append(reg)
            groups = setting_figures(reg, args.tie_tolerance)
            print_figures(reg, groups, args.seeds, args.tie_tolerance)
            beyond, n_runs, lowest = reg.beyond_bound()
            if beyond:
                print(f"  {beyond} of {n_runs} runs beat their task's sample best (final regret down to {lowest:.3f}; "
                      "0 in means, medians and the plot, unclipped in ranks, W/T/L and tests)")
            print_targets(groups)
            if args.started:
                print_started(reg, started_figures(reg, tasks, args.seeds, root, bounds, epochs=args.epochs,
                                                   time_budget=args.time_budget))
            out[setting] = groups
        if args.plot:
            print(f"\nplot: {plot(regrets, args.plot)}")
    print(f"\n{time.perf_counter() - t0:.0f} s in all")
    return out


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        sys.exit(f"tunebench: error: {e}")
