"""The ``tunebench`` command line (L4): ``run``, ``resume``, ``show``, ``list``, ``experiment``
(a grid of benchmarks x methods x seeds, see :mod:`tunebench.experiments.grid`), ``plot`` and
``report`` (analysis of a grid).

User mistakes (a bad option, a missing script, an unknown method) end with one line
``tunebench: error: ...`` naming the problem and the fix, and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

from tunebench.backends.registry import LOCAL, RAY, backend_names, get_backend
from tunebench.errors import TuningError, UserError
from tunebench.events import LEADERBOARD_SIZE
from tunebench.lock import LockHolder
from tunebench.space.serialization import read_mapping_file
from tunebench.store import check_not_running, load_experiment, read_metadata

logger = logging.getLogger("tunebench")

#: exit status of ``run`` / ``resume`` when tuning produced nothing usable: no trial reported a
#: result, every trial failed, more than --max-failures trials failed, or the experiment folder
#: could not be written (2: a user error; 130: interrupted)
EXIT_TUNING_FAILED = 1


class _Parser(argparse.ArgumentParser):
    """The parser of every ``tunebench`` command: long options are never abbreviated (``--max-wall``
    is an unknown option, not ``--max-wallclock-time``), and a mistake is one line
    ``tunebench: error: ...`` with exit status 2 (no usage block). Subparsers are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        """Called by argparse on a bad command line; prints the one line and exits with status 2."""
        one_line = " ".join(message.split())
        self.exit(2, f"tunebench: error: {one_line} (see `{self.prog} --help`)\n")


# -- the types of numeric options: every number of the command line is parsed by one of these, which
# -- refuse what makes no sense there (nan and infinities always, negative counts, zero durations)


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
    return value


def _positive_int(text: str) -> int:
    """A count of at least 1 (workers, trials, results, epochs, seeds, CPUs)."""
    return _whole_number(text, 1)


def _nonnegative_int(text: str) -> int:
    """A count that may be 0 (failures tolerated, retries, GPUs) or a random seed."""
    return _whole_number(text, 0)


def _finite_float(text: str) -> float:
    """Any finite number (a metric threshold): nan and infinities are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got '{text}'")
    return value


def _nonnegative_float(text: str) -> float:
    """A finite number >= 0 (seconds to wait, where 0 means not at all)."""
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    """A finite number > 0 (seconds of a budget or a timeout)."""
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_run_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits")
    g.add_argument("--n-workers", type=_positive_int, help="trials running at the same time")
    g.add_argument("--max-wallclock-time", type=_positive_float, help="seconds of tuning")
    g.add_argument("--max-trials", type=_positive_int, help="number of trials to start")
    g.add_argument("--max-results", type=_positive_int, help="number of results to receive")
    g.add_argument("--metric-threshold", type=_finite_float, help="stop once the best metric reaches this value")
    g.add_argument("--max-failures", type=_nonnegative_int,
                   help="failed trials tolerated before tuning stops (default 5)")
    g.add_argument("--trial-timeout", type=_positive_float, help="seconds after which a trial run is failed")
    g.add_argument("--no-progress", action="store_true", help="no live progress display")


def _add_logging_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("logging to a tracker (one run per trial)")
    g.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help="log to MLflow (default URI: $MLFLOW_TRACKING_URI, else EXPERIMENT_DIR/mlruns; "
                        "needs tunebench[mlflow])")
    g.add_argument("--tensorboard", nargs="?", const="", default=None, metavar="DIR",
                   help="write TensorBoard event files (default DIR: EXPERIMENT_DIR/tensorboard; "
                        "needs tunebench[tensorboard])")


def _logging_callbacks(args: argparse.Namespace) -> list[Any]:
    """The callbacks of --mlflow and --tensorboard (a resumed experiment, given no URI/DIR, logs
    where its first session did)."""
    callbacks: list[Any] = []
    try:
        # deferred: each imports its heavy package, paid only by a run that logs to it
        if args.mlflow is not None:
            from tunebench.integrations.mlflow import MLflowCallback
            callbacks.append(MLflowCallback(tracking_uri=args.mlflow or None))
        if args.tensorboard is not None:
            from tunebench.integrations.tensorboard import TensorBoardCallback
            callbacks.append(TensorBoardCallback(logdir=args.tensorboard or None))
    except ImportError as e:
        extra = "mlflow" if "mlflow" in str(e) else "tensorboard"
        raise UserError(f"--{extra} needs the {extra} extra: pip install 'tunebench[{extra}]' ({e})") from None
    return callbacks


def _add_trial_options(p: argparse.ArgumentParser) -> None:
    """Options of how trial processes run (local backend) and of the heartbeat line."""
    g = p.add_argument_group("trial processes (local backend)")
    g.add_argument("--trial-cwd", metavar="DIR",
                   help="working directory of the trials (default: the directory tunebench is started from; "
                        "'trial': each trial's own folder)")
    g.add_argument("--trial-log-limit", metavar="SIZE",
                   help="bytes kept of each trial's stdout.log and stderr.log, the first and the last half "
                        "(e.g. 10MB, the default; 0: no limit)")
    g.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=None,
                   help="fork each trial run from a prepared interpreter that has imported the script's modules "
                        "once (default: yes; --no-warm-start: a new interpreter per run)")
    g.add_argument("--preload", action="append", metavar="MODULE",
                   help="a module the prepared interpreter imports besides the script's own imports "
                        "(repeatable)")
    g.add_argument("--heartbeat", type=_positive_float, default=30.0, metavar="SECONDS",
                   help="print a status line (running trials, seconds since each reported) after this long "
                        "without one (default 30)")


def _apply_trial_options(spec: Any, args: argparse.Namespace) -> None:
    # deferred: the local backend stays out of the CLI's start-up (`tunebench --help`)
    from tunebench.backends.local import parse_size

    if getattr(args, "trial_cwd", None) is not None:
        if args.trial_cwd == "trial":
            spec.trial_cwd = None
        elif not Path(args.trial_cwd).is_dir():
            raise UserError(f"--trial-cwd {args.trial_cwd}: no such directory; pass an existing one, or 'trial' "
                            "for each trial's own folder")
        else:
            spec.trial_cwd = str(Path(args.trial_cwd).resolve())
    if getattr(args, "warm_start", None) is not None:
        spec.warm_start = args.warm_start
    for module in getattr(args, "preload", None) or ():
        if not all(part.isidentifier() for part in module.split(".")):
            raise UserError(f"--preload {module}: not a module name; pass a dotted name such as torch or "
                            "torchvision.models")
        if module not in spec.preload:
            spec.preload.append(module)
    if getattr(args, "trial_log_limit", None) is not None:
        try:
            spec.trial_log_limit = parse_size(args.trial_log_limit)
        except ValueError as e:
            raise UserError(f"--trial-log-limit: {e}") from None


def _add_ray_options(p: argparse.ArgumentParser, title: str = "Ray cluster (--backend ray)") -> None:
    g = p.add_argument_group(title)
    g.add_argument("--ray-address", metavar="HOST:PORT",
                   help="the cluster's head (or auto, ray://...); default: $RAY_ADDRESS, else a Ray on this machine")
    g.add_argument("--warm-pool", action=argparse.BooleanOptionalAction, default=None,
                   help="reuse trial actors for the next trials (default: yes)")
    g.add_argument("--storage", metavar="URL",
                   help="fsspec URL (s3://..., file:///...) holding the trial folders, for nodes without a shared "
                        "filesystem (default: under the experiment folder)")
    g.add_argument("--max-retries", type=_nonnegative_int,
                   help="relaunches of a trial (and, on a cluster grid, of an experiment) whose node died (default 3)")
    g.add_argument("--ray-node-wait", type=_nonnegative_float, metavar="SECONDS",
                   help="wait this long at start for a node that can hold one trial, while worker nodes are "
                        "still joining (default 60; 0: fail at once)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tunebench",
        description="Tune the hyperparameters of expensive training scripts; compare tuning methods.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="tune a script or a benchmark (default: the mlp_digits example)",
                         description="Tune a training script (--script) or a named benchmark (--benchmark). "
                                     "With neither, tunes the mlp_digits example benchmark.")
    src = run.add_argument_group("what to tune")
    src.add_argument("--script", help="training script that calls tunebench.report(...)")
    src.add_argument("--benchmark", help="a named benchmark (see `tunebench list --benchmarks`)")
    src.add_argument("--config-space", help="YAML/JSON config space (default: CONFIG_SPACE in the script)")
    src.add_argument("--metric", nargs="+", metavar="NAME",
                     help="name of the reported metric to optimize; several for a multi-objective method "
                          "(--metric val_accuracy time)")
    src.add_argument("--mode", nargs="+", choices=["min", "max"],
                     help="minimize or maximize the metric: one for every metric, or one per --metric")
    src.add_argument("--constraint", action="append", default=[], metavar="NAME<=BOUND",
                     help="a bound a result must meet to count, e.g. \"latency<=20\" or \"accuracy>=0.9\" "
                          "(repeatable; the best trial and the Pareto front count only feasible results; CBO "
                          "models them)")
    src.add_argument("--cost-attr", metavar="NAME",
                     help="reported cost of a result (e.g. elapsed seconds): cost-aware methods optimize "
                          "improvement per unit of it")
    src.add_argument("--prior", metavar="FILE",
                     help="YAML/JSON prior over the space, e.g. 'lr: {value: 0.01, confidence: medium}' "
                          "(PiBO, PiBO-MOBSTER, PriorBand)")
    src.add_argument("--resource-attr", help="reported resource, e.g. epoch (multi-fidelity methods)")
    src.add_argument("--max-resource-attr", help="script argument carrying the maximum resource, e.g. epochs")
    src.add_argument("--max-resource", type=_positive_int, help="maximum resource, e.g. 27 epochs")
    how = run.add_argument_group("how")
    how.add_argument("--method", help="tuning method (see `tunebench list --methods`); default ASHA")
    how.add_argument("--method-arg", action="append", default=[], metavar="KEY=VALUE",
                     help="method option, e.g. reduction_factor=2 (repeatable; VALUE parsed as JSON)")
    how.add_argument("--seed", type=_nonnegative_int, help="random seed (default 0)")
    how.add_argument("--transfer-from", nargs="+", default=[], metavar="PATH|TAG",
                     help="earlier experiments of other tasks with the same config space, for the transfer methods "
                          "(ZeroShot, BoundingBox, CTS, ASHA-CTS): experiment folders or grid tags")
    _add_benchmark_options(src)
    how.add_argument("--backend", choices=backend_names(),
                     help="where trials run: processes here (local), Ray actors on a cluster (ray), or simulated "
                          "time (simulator); default: local for scripts, simulator for simulated benchmarks")
    how.add_argument("--data-dir", help="benchmark data folder (default: $TUNEBENCH_DATA)")
    how.add_argument("--no-charge-decision-time", action="store_true",
                     help="simulator: do not add the scheduler's real decision time to simulated time")
    how.add_argument("--gpus-per-trial", type=_nonnegative_int, help="GPUs per trial where there are GPUs")
    how.add_argument("--cpus-per-trial", type=_positive_int,
                     help="CPU threads per trial (sets OMP_NUM_THREADS and friends for the trials)")
    run.add_argument("--experiment-dir", help="experiment folder (default: $TUNEBENCH_RESULTS or "
                                              "~/tunebench-results, then <name>-<method>-<time>)")
    _add_run_limits(run)
    _add_logging_options(run)
    _add_trial_options(run)
    _add_ray_options(run)

    res = sub.add_parser("resume", help="continue a stopped or killed experiment",
                         description="Continue the experiment in PATH: completed results are kept, trials "
                                     "that were running restart from their checkpoints. Limits given here "
                                     "replace the stored ones.")
    res.add_argument("path", help="experiment folder")
    _add_run_limits(res)
    _add_logging_options(res)
    _add_trial_options(res)
    _add_ray_options(res)

    show = sub.add_parser("show", help="summarize an experiment")
    show.add_argument("path", help="experiment folder")
    show.add_argument("--json", action="store_true", help="print a JSON summary")
    show.add_argument("--csv", metavar="FILE", help="also export all results to a CSV file")
    show.add_argument("--parquet", metavar="FILE", help="also export all results to a parquet file")

    lst = sub.add_parser("list", help="list methods (with their groups and defaults), benchmarks and presets")
    lst.add_argument("--methods", action="store_true", help="only methods and method groups")
    lst.add_argument("--benchmarks", action="store_true", help="only benchmarks")
    lst.add_argument("--presets", action="store_true", help="only presets of `tunebench experiment`")
    lst.add_argument("--benchmark-module", action="append", default=[], metavar="FILE.py",
                     help="also list what this user module defines (repeatable)")

    _add_experiment_parser(sub)
    _add_analysis_parsers(sub)
    return parser


def _add_benchmark_options(g: Any) -> None:
    g.add_argument("--benchmark-module", action="append", default=[], metavar="FILE.py[:FUNCTION]",
                   help="user module whose benchmark_definitions() (or FUNCTION) returns benchmark definitions; "
                        "it may also register methods (repeatable)")
    g.add_argument("--benchmark-arg", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the benchmark definition, e.g. fidelities=[1,3,9,27] or "
                        "surrogate=knn (repeatable; VALUE parsed as JSON)")


def _add_experiment_parser(sub: Any) -> None:
    exp = sub.add_parser(
        "experiment", help="run a grid of benchmarks x methods x seeds (parallel, resumable)",
        description="Run every method on every benchmark for every seed, in parallel processes (or as tasks on a "
                    "Ray cluster: --launch-on-cluster, --backend ray). Results go to <results root>/<experiment "
                    "tag>/<benchmark>/<method>/<seed>/. Running the same command again skips complete experiments "
                    "and resumes interrupted ones.")
    what = exp.add_argument_group("what to run")
    what.add_argument("--preset", help="a named grid (see `tunebench list --presets`); options given here win")
    what.add_argument("--benchmark", action="extend", nargs="+", default=[], metavar="NAME",
                      help="one or several benchmarks (repeatable, or comma-separated)")
    _add_benchmark_options(what)
    what.add_argument("--method", action="extend", nargs="+", default=[], metavar="NAME",
                      help="one or several methods (default: those of --method-group)")
    what.add_argument("--method-group", help="run the methods of this group (see `tunebench list --methods`); "
                                             "default baselines")
    what.add_argument("--method-arg", action="append", default=[], metavar="[METHOD:]KEY=VALUE",
                      help="method option: METHOD:KEY=VALUE for one method, KEY=VALUE for every method that "
                           "takes it (repeatable; VALUE parsed as JSON)")
    what.add_argument("--transfer-from", nargs="+", default=[], metavar="PATH|TAG",
                      help="earlier experiments (folders, grid tags) for the transfer methods; a tag leaves out "
                           "each target's own benchmark")
    what.add_argument("--num-seeds", type=_positive_int, help="seeds per benchmark and method (default 1)")
    what.add_argument("--start-seed", type=_nonnegative_int, default=0, help="first seed (default 0)")
    lim = exp.add_argument_group("limits (default: each benchmark's)")
    lim.add_argument("--n-workers", type=_positive_int, help="trials running at the same time in each experiment")
    lim.add_argument("--max-wallclock-time", type=_positive_float, help="(simulated) seconds per experiment")
    lim.add_argument("--scale-max-wallclock-time", action="store_true",
                     help="with fewer workers than a benchmark's default, scale its default budget up by "
                          "default workers / workers (the same total worker time)")
    lim.add_argument("--max-trials", type=_positive_int, help="trials started per experiment")
    lim.add_argument("--max-results", type=_positive_int, help="results per experiment")
    lim.add_argument("--max-resource", type=_positive_int, help="maximum resource (e.g. epochs) of a trial")
    lim.add_argument("--max-failures", type=_nonnegative_int, help="failed trials tolerated per experiment")
    how = exp.add_argument_group("how")
    how.add_argument("--backend", choices=backend_names(),
                     help="local (real trials, one experiment at a time by default), simulator (simulated "
                          "benchmarks), or ray (real trials as Ray actors; each experiment a task on the cluster); "
                          "default: from each benchmark")
    how.add_argument("--launch-on-cluster", action="store_true",
                     help="run each experiment as a task on the Ray cluster (--ray-address); real benchmarks then "
                          "use --backend ray")
    how.add_argument("--parallel", type=_positive_int,
                     help="experiments running at once (default: the number of cores for simulations, 1 for real "
                          "trials; on a cluster: as many as its CPUs hold; more than the cores inflates the "
                          "decision time charged to simulated time)")
    how.add_argument("--data-dir", help="benchmark data folder (default: $TUNEBENCH_DATA)")
    how.add_argument("--no-charge-decision-time", action="store_true",
                     help="simulator: do not add the scheduler's real decision time to simulated time")
    how.add_argument("--gpus-per-trial", type=_nonnegative_int, help="GPUs per trial where there are GPUs")
    how.add_argument("--cpus-per-trial", type=_positive_int, help="CPU threads per trial (real trials)")
    where = exp.add_argument_group("where")
    where.add_argument("--experiment-tag", help="name of this grid: a folder under the results root "
                                                "(default with --preset: the preset's name)")
    where.add_argument("--results-root", help="results root (default: $TUNEBENCH_RESULTS or ~/tunebench-results)")
    exp.add_argument("--dry-run", action="store_true", help="show what would be started, resumed, skipped")
    exp.add_argument("--no-progress", action="store_true", help="no live progress display")
    _add_ray_options(exp, "Ray cluster (--backend ray, --launch-on-cluster)")


def _add_analysis_parsers(sub: Any) -> None:
    plot = sub.add_parser("plot", help="plot one experiment, or the best value over time of an experiment grid",
                          description="With PATH, an experiment folder: its best value so far over time and the "
                                      "learning curves of its trials (and its Pareto front with several "
                                      "objectives). Else the grid of --experiment-tag: the best value so far over "
                                      "(simulated) time, aggregated over seeds, one figure per benchmark (see "
                                      "tunebench.analysis.plots). The output's suffix picks the format: .png, "
                                      ".pdf, .svg (or .jpg).")
    plot.add_argument("path", nargs="?", help="an experiment folder (default: plot the grid of --experiment-tag)")
    plot.add_argument("--experiment-tag", help="the grid's tag")
    plot.add_argument("--benchmark", help="only this benchmark")
    plot.add_argument("--method-group", action="append", default=None, metavar="GROUP",
                      help="only/one panel per method group (repeatable)")
    plot.add_argument("--regret", action=argparse.BooleanOptionalAction, default=None,
                      help="plot the normalized regret on a log scale (default: for benchmarks whose optimum "
                           "is known) or the metric itself (--no-regret)")
    plot.add_argument("--output", help="image file .png/.pdf/.svg, or a folder (default: <tag>[-<benchmark>].png, "
                                       "or <experiment folder name>.png, here)")
    plot.add_argument("--results-root", help="results root (default: $TUNEBENCH_RESULTS or ~/tunebench-results)")
    rep = sub.add_parser("report", help="print a markdown report of an experiment grid",
                         description="Tables of the final results, ranks and failures of an experiment grid, "
                                     "printed as markdown (see tunebench.analysis.report).")
    rep.add_argument("--experiment-tag", help="the grid's tag")
    rep.add_argument("--results-root", help="results root (default: $TUNEBENCH_RESULTS or ~/tunebench-results)")
    rep.add_argument("--output-dir", help="also write the report, its CSV tables and its figures (those of "
                                          "`tunebench plot`, PNG) to this folder")
    dash = sub.add_parser("dashboard", help="a local web dashboard of experiments and grids, updated live",
                          description="Serve a read-only web dashboard of the experiments and grids under the "
                                      "given folders (see tunebench.dashboard); needs pip install "
                                      "'tunebench[dashboard]'.")
    dash.add_argument("paths", nargs="*", metavar="PATH",
                      help="experiment folders, or folders holding experiments or grids (default: the results root)")
    dash.add_argument("--results-root", help="also show this results root (default when no PATH is given: "
                                             "$TUNEBENCH_RESULTS or ~/tunebench-results)")
    dash.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default: %(default)s: this machine only)")
    dash.add_argument("--port", type=int, default=8765, help="port (default: %(default)s)")

    _add_tabulate_parser(sub)


def _add_tabulate_parser(subparsers: Any) -> None:
    """The ``tabulate`` command (run by :func:`cmd_tabulate`)."""
    p = subparsers.add_parser(
        "tabulate", help="run a real benchmark over many configurations and seeds into a simulated benchmark",
        description="Train N configurations of a real benchmark (sampled from its space, after the --config ones) "
                    "for all epochs and S seeds, then write their learning curves as a tabular blackbox, the "
                    "simulated benchmark NAME-tab (`tunebench run --benchmark NAME-tab`). Rerunning the same "
                    "command continues where it stopped.")
    p.add_argument("--benchmark", required=True, help="a real benchmark (see `tunebench list --benchmarks`)")
    p.add_argument("--num-configs", type=_nonnegative_int, required=True, help="configurations to sample")
    p.add_argument("--seeds", type=_positive_int, default=1, help="runs per configuration, seeds 0..S-1 (default 1)")
    p.add_argument("--config", action="append", default=[], metavar="JSON",
                   help='a configuration to tabulate too, e.g. \'{"lr": 0.01}\' (repeatable; missing '
                        "hyperparameters take their defaults)")
    p.add_argument("--configs-file", metavar="FILE", help="a JSON file with a list of configurations to tabulate too")
    p.add_argument("--backend", choices=backend_names(runs_scripts=True), default=LOCAL,
                   help=f"where trials run (default {LOCAL})")
    p.add_argument("--n-workers", type=_positive_int, help="trials at once (default: the benchmark's)")
    p.add_argument("--output", metavar="DIR", help="folder of the table (default: $TUNEBENCH_CACHE/NAME-tab, "
                                                  "else ~/.cache/tunebench/blackboxes/NAME-tab)")
    p.add_argument("--work-dir", metavar="DIR", help="folder of the runs (default: OUTPUT/run)")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue the runs of an earlier call")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of the configuration sampling (default 0)")
    p.add_argument("--max-resource", type=_positive_int, help="epochs per run (default: the benchmark's)")
    p.add_argument("--max-wallclock-time", type=_positive_float, metavar="SECONDS",
                   help="stop after this long (what is done is tabulated; rerun to continue)")
    p.add_argument("--max-failures", type=_nonnegative_int, help="failed trials tolerated (default: all)")
    p.add_argument("--trial-timeout", type=_positive_float, metavar="SECONDS",
                   help="end (and fail) a trial after this long")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep the checkpoints of finished trials")
    _add_benchmark_options(p)
    p.add_argument("--ray-address", help="ray: the cluster's head (default: $RAY_ADDRESS, else a Ray on this machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")


def _parse_method_args(items: list[str], option: str = "--method-arg") -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"{option} expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        if not key.strip():
            raise UserError(f"{option} expects KEY=VALUE, got '{item}'")
        try:
            kwargs[key.strip()] = json.loads(value, parse_constant=_no_constant)
        except _NonFinite:
            raise UserError(f"{option} {item}: {value.strip()} is not a finite number") from None
        except ValueError:
            kwargs[key.strip()] = value
    return kwargs


class _NonFinite(Exception):
    """NaN or an infinity in a JSON value of the command line (refused: no option makes sense with them)."""


def _no_constant(name: str) -> Any:
    raise _NonFinite(name)


#: what every method is given by its own command-line option, never by --method-arg
_COMMON_METHOD_OPTIONS = {"config_space": "--config-space", "metric": "--metric", "mode": "--mode",
                          "resource_attr": "--resource-attr", "max_resource_attr": "--max-resource-attr",
                          "max_t": "--max-resource", "seed": "--seed"}


def _parse_method_options(items: list[str]) -> dict[str, Any]:
    """The options of ``--method-arg KEY=VALUE`` items (VALUE parsed as JSON, else a string).

    Raises:
        UserError: an item without ``=``, or a KEY every method gets from its own option (``max_t``).
    """
    options = _parse_method_args(items)
    for key in options:
        if key in _COMMON_METHOD_OPTIONS:
            raise UserError(f"--method-arg {key}=...: {key} is no method option; pass {_COMMON_METHOD_OPTIONS[key]}")
    return options


def _parse_grid_method_args(items: list[str]) -> dict[str, dict[str, Any]]:
    """``[METHOD:]KEY=VALUE`` items -> method (``"*"``: all) -> options."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        head = item.split("=", 1)[0]
        method, key = head.split(":", 1) if ":" in head else ("*", head)
        rest = item[len(head):]
        out.setdefault(method.strip() or "*", {}).update(_parse_method_options([key + rest]))
    return out


def _split_names(values: list[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _apply_limits(spec: Any, args: argparse.Namespace) -> None:
    for name in ("n_workers", "max_wallclock_time", "max_trials", "max_results", "metric_threshold",
                 "max_failures", "trial_timeout", "ray_address", "warm_pool", "storage", "max_retries",
                 "ray_node_wait"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(spec, name, value)
    _apply_trial_options(spec, args)


def _check_ray_options(args: argparse.Namespace, uses_ray: bool, what: str) -> None:
    """A UserError for Ray options given where nothing runs on Ray."""
    given = [f"--{name.replace('_', '-')}" for name in ("ray_address", "storage", "max_retries", "ray_node_wait")
             if getattr(args, name, None) is not None]
    if getattr(args, "warm_pool", None) is not None:
        given.append("--warm-pool" if args.warm_pool else "--no-warm-pool")
    if given and not uses_ray:
        raise UserError(f"{', '.join(given)} {'go' if len(given) > 1 else 'goes'} with {what}")


def _one_or_several(values: list[str] | None) -> str | list[str] | None:
    """What ``nargs="+"`` gave: one name as a string (as a spec stores it), several as a list."""
    if values is None:
        return None
    return values[0] if len(values) == 1 else list(values)


def _make_spec(args: argparse.Namespace) -> Any:
    # deferred: numpy and the tuner stay out of the CLI's start-up (`tunebench --help`)
    from tunebench.benchmarks import DEFAULT_BENCHMARK, canonical_module_ref, load_benchmark_module
    from tunebench.launch import spec_from_benchmark, spec_from_script, use_backend
    from tunebench.types import parse_constraints

    if args.script and args.benchmark:
        raise UserError("give either --script or --benchmark, not both")
    modules = [canonical_module_ref(ref) for ref in args.benchmark_module]
    for ref in modules:
        load_benchmark_module(ref)
    benchmark_args = _parse_method_args(args.benchmark_arg, "--benchmark-arg")
    if args.script and benchmark_args:
        raise UserError("--benchmark-arg goes with --benchmark")
    args.metric, args.mode = _one_or_several(args.metric), _one_or_several(args.mode)
    if args.script:
        spec = spec_from_script(args.script, config_space_file=args.config_space, metric=args.metric,
                                mode=args.mode, resource_attr=args.resource_attr,
                                max_resource_attr=args.max_resource_attr)
        if args.max_wallclock_time is None and args.max_trials is None and args.max_results is None:
            spec.max_wallclock_time = 3600.0
            print("no limit given: tuning for at most 3600 s (set --max-wallclock-time or --max-trials)")
        if spec.method == "ASHA" and args.method is None and spec.resource_attr is None:
            spec.method = "RS"  # no resource reported: nothing for successive halving to work with
    else:
        if args.config_space:
            raise UserError("--config-space goes with --script")
        spec = spec_from_benchmark(args.benchmark or DEFAULT_BENCHMARK, data_dir=args.data_dir,
                                   benchmark_args=benchmark_args, benchmark_modules=modules)
        if args.metric and args.metric != spec.metric:
            if get_backend(spec.backend).runs_scripts:
                raise UserError(f"benchmark '{spec.benchmark}' reports '{spec.metric}'; drop --metric")
            if not args.mode:  # the benchmark's mode of each metric it optimizes already, else its first mode
                known = dict(zip(*(([m] if isinstance(m, str) else list(m)) for m in (spec.metric, spec.mode)),
                                 strict=False))
                first = spec.mode if isinstance(spec.mode, str) else spec.mode[0]
                modes = [known.get(m, first) for m in ([args.metric] if isinstance(args.metric, str) else args.metric)]
                spec.mode = modes[0] if len(modes) == 1 else modes
            spec.metric = args.metric  # another objective of the blackbox (checked when it is loaded)
        if args.mode:
            spec.mode = args.mode
        if args.resource_attr:
            spec.resource_attr = args.resource_attr
        if args.max_resource_attr:
            spec.max_resource_attr = args.max_resource_attr
    if args.backend is not None:
        use_backend(spec, args.backend)
    if args.data_dir is not None:
        spec.data_dir = args.data_dir
    if args.no_charge_decision_time:
        spec.charge_decision_time = False
    if args.max_resource is not None:
        spec.max_resource = args.max_resource
    if args.method:
        spec.method = args.method
    spec.method_kwargs.update(_parse_method_options(args.method_arg))
    if args.constraint:
        spec.constraints = [c.to_json() for c in parse_constraints(args.constraint)]
    if args.cost_attr is not None:
        spec.cost_attr = args.cost_attr
    if args.prior is not None:
        spec.prior = _read_prior(args.prior)
    if args.transfer_from:
        from tunebench.analysis.transfer import resolve_transfer_sources  # deferred: as the imports above

        spec.transfer_from = resolve_transfer_sources(args.transfer_from)
    if args.seed is not None:
        spec.seed = args.seed
    if args.gpus_per_trial is not None:
        spec.gpus_per_trial = args.gpus_per_trial
    if args.cpus_per_trial is not None:
        spec.cpus_per_trial = args.cpus_per_trial
    spec.benchmark_modules = modules
    _apply_limits(spec, args)
    return spec


def _read_prior(path: str) -> dict[str, Any]:
    """The mapping of ``--prior FILE`` (checked against the space when the run is built)."""
    return read_mapping_file(path, "prior file")


def _canonical_method(name: str) -> str:
    # deferred: numpy and the tuner stay out of the CLI's start-up (`tunebench --help`)
    from tunebench.schedulers import method_names

    for known in method_names():
        if known.lower() == name.lower():
            return known
    raise UserError(f"unknown method '{name}'; known methods: {', '.join(method_names())} "
                    "(see `tunebench list --methods`)")


def _tune(spec: Any, experiment_dir: Path, *, resume: bool, progress: bool, argv: list[str],
          heartbeat: float = 30.0, callbacks: list[Any] | None = None) -> int:
    # deferred: numpy and the tuner stay out of the CLI's start-up (`tunebench --help`)
    from tunebench.launch import build_tuner
    from tunebench.progress import ProgressDisplay

    check_not_running(experiment_dir)  # before building the tuner (seconds); the tuner's lock decides
    display = ProgressDisplay(heartbeat=heartbeat) if progress else None
    tuner = build_tuner(spec, experiment_dir, resume=resume,
                        callbacks=[*([display] if display else []), *(callbacks or [])],
                        command_line=["tunebench", *argv])
    where = get_backend(spec.backend).trials
    print(f"{'resuming' if resume else 'tuning'} {spec.benchmark or spec.trial_program} with {spec.method} "
          f"({spec.n_workers} workers, {where}); experiment folder: {experiment_dir}", flush=True)
    try:
        result = tuner.run()
    except KeyboardInterrupt:
        if display:
            display.close()
        print(f"\ninterrupted; everything so far is saved. Continue with: tunebench resume {experiment_dir}",
              file=sys.stderr)
        return 130
    except TuningError as e:
        if display:
            display.close()
        print(f"tunebench: tuning stopped: {e}", file=sys.stderr)
        return EXIT_TUNING_FAILED
    except OSError as e:
        if display:
            display.close()
        print(f"tunebench: error: cannot write to {experiment_dir}: {e.strerror or e}; free some space (or fix "
              f"the permissions), then continue with: tunebench resume {experiment_dir}", file=sys.stderr)
        return EXIT_TUNING_FAILED
    print(f"\ndone ({result.end_reason}): {result.n_trials} trials, {result.n_results} results, "
          f"{result.n_failed} failed, {result.elapsed_time:.1f} s")
    summary = result.to_dict()
    if result.pareto_front is not None:
        for line in _front_lines(summary):
            print(line)
    elif result.best_config is None:
        print(_no_best_line(summary))
    else:
        for line in _best_lines(summary):
            print(line)
        print("best configuration:")
        for k, v in result.best_config.items():
            print(f"  {k}: {v}")
    print(f"results: {experiment_dir}  (tunebench show {experiment_dir})", flush=True)
    if result.failure is not None:
        print(f"tunebench: tuning failed: {result.failure}", file=sys.stderr)
        return EXIT_TUNING_FAILED
    return 0


def _fmt_number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _no_best_line(summary: dict[str, Any]) -> str:
    """What is said when there is no best: no result at all, or none meeting the constraints."""
    if summary.get("constraints") and summary.get("n_results"):
        return (f"no result met the constraints ({', '.join(summary['constraints'])}): "
                f"{summary.get('n_infeasible') or 0} trials ended infeasible")
    return "no result was reported"


def _front_lines(summary: dict[str, Any]) -> list[str]:
    """The Pareto front of a :class:`TuningResult`'s ``to_dict()`` or of a summary (the same
    ``pareto_front``, ``objectives``, ``hypervolume``, ``reference_point`` keys): a headline and
    one row per trial of the front (its objective values, resource, status and config)."""
    front = summary.get("pareto_front") or []
    metrics, modes = summary["objectives"]["metric"], summary["objectives"]["mode"]
    if not front:
        return [_no_best_line(summary)]
    ref = ", ".join(_fmt_number(v) for v in summary["reference_point"])
    lines = [f"Pareto front ({', '.join(f'{m} ({mode})' for m, mode in zip(metrics, modes, strict=True))}): "
             f"{len(front)} trials, hypervolume {summary['hypervolume']:.6g} (reference point {ref})"]
    if summary.get("constraints"):
        lines.append(f"  feasible only ({', '.join(summary['constraints'])}); "
                     f"{summary.get('n_infeasible') or 0} trials ended infeasible")
    attr = summary.get("resource_attr")
    rows = [("trial", *metrics, attr or "", "status", "config")]
    for member in front:
        config = ", ".join(f"{k}={_fmt_number(v)}" for k, v in member["config"].items())
        values = tuple(f"{v:.6g}" if isinstance(v, (int, float)) else str(v) for v in member["values"].values())
        resource = "" if not attr or member["resource"] is None else _fmt_number(member["resource"])
        rows.append((str(member["trial_id"]), *values, resource, member["status"], config))
    n = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r[:n], widths, strict=True)) + "  " + r[n])
    return lines


def _best_lines(summary: dict[str, Any]) -> list[str]:
    """The headline best of a :class:`TuningResult`'s ``to_dict()`` or of a summary (the same
    ``best_*`` keys): its value, trial, the resource it was reported at and the one reached, and,
    when no trial reached its maximum resource, a line saying so."""
    attr = summary.get("resource_attr")
    where = [f"trial {summary['best_trial_id']}", str(summary["best_trial_status"])]
    reached, top = summary.get("best_resource_reached"), summary.get("best_max_resource")
    if attr and summary.get("best_resource") is not None:
        where.append(f"at {attr} {_fmt_number(summary['best_resource'])}")
    if attr and reached is not None:
        where.append(f"reached {attr} {_fmt_number(reached)}" + (f" of {_fmt_number(top)}" if top is not None else ""))
    lines = [f"best {summary['metric']} ({summary['mode']}): {summary['best_metric']:.6g} ({', '.join(where)})"]
    if top is not None and summary.get("best_at_max_resource") is False:
        lines.append(f"note: no trial reached the maximum {attr} ({_fmt_number(top)}); this is the best at the "
                     f"highest {attr} reached ({_fmt_number(reached)})")
    return lines


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    # deferred: numpy and the tuner stay out of the CLI's start-up (`tunebench --help`)
    from tunebench.launch import build_backend, build_space, check_backend, default_experiment_dir

    if args.backend is not None:
        check_backend(args.backend)
    spec = _make_spec(args)
    _check_ray_options(args, get_backend(spec.backend).cluster, "--backend ray")
    if not get_backend(spec.backend).runs_scripts or not spec.script:
        build_backend(spec)  # fail early: a real benchmark on the simulator, or the reverse
    spec.method = _canonical_method(spec.method)
    build_space(spec)  # fail early on a bad space or a missing --max-resource
    experiment_dir = Path(args.experiment_dir) if args.experiment_dir else default_experiment_dir(spec)
    return _tune(spec, experiment_dir, resume=False, progress=not args.no_progress, argv=argv,
                 heartbeat=args.heartbeat, callbacks=_logging_callbacks(args))


def cmd_resume(args: argparse.Namespace, argv: list[str]) -> int:
    # deferred: numpy and the tuner stay out of the CLI's start-up (`tunebench --help`)
    from tunebench.launch import RunSpec

    meta = read_metadata(args.path)
    if "run_spec" not in meta:
        raise UserError(f"{args.path} was not started by `tunebench run`; resume it from Python with "
                        "Tuner(..., experiment_dir=PATH, resume=True) (AskTell.load(PATH) for an ask/tell one)")
    spec = RunSpec.from_dict(meta["run_spec"])
    _check_ray_options(args, get_backend(spec.backend).cluster, f"an experiment on the Ray backend ({args.path} ran on "
                       f"{spec.backend})")
    _apply_limits(spec, args)
    return _tune(spec, Path(args.path), resume=True, progress=not args.no_progress, argv=argv,
                 heartbeat=args.heartbeat, callbacks=_logging_callbacks(args))


def cmd_show(args: argparse.Namespace) -> int:
    exp = load_experiment(args.path)
    summary = exp.summary()
    holder = exp.running_tuner()
    summary["running"] = holder.to_dict() if holder is not None else None
    if args.csv:
        exp.to_csv(args.csv)
    if args.parquet:
        exp.to_parquet(args.parquet)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"experiment {summary['path']}")
    if summary.get("objectives"):
        objectives = summary["objectives"]
        print(f"  method {summary['method']}, metrics "
              + ", ".join(f"{m} ({mode})" for m, mode in zip(objectives["metric"], objectives["mode"], strict=True)))
    else:
        print(f"  method {summary['method']}, metric {summary['metric']} ({summary['mode']})")
    if summary.get("constraints"):
        print(f"  constraints: {', '.join(summary['constraints'])} ({summary['n_infeasible']} trials ended infeasible)")
    print(f"  trials: {summary['n_trials']} ({summary['n_completed']} completed, {summary['n_stopped']} stopped, "
          f"{summary['n_paused']} paused, {summary['n_failed']} failed, {summary['n_running']} running)")
    print(f"  results: {summary['n_results']}, tuning time {summary['elapsed_time']:.1f} s, "
          f"{_run_state(summary, holder)}")
    if summary.get("pareto_front") is not None:
        for line in _front_lines(summary):
            print(f"  {line}")
    elif summary["best_config"] is None and summary.get("constraints"):
        print(f"  {_no_best_line(summary)}")
    if summary["best_config"] is not None and summary.get("pareto_front") is None:
        for line in _best_lines(summary):
            print(f"  {line}")
        for k, v in summary["best_config"].items():
            print(f"    {k}: {v}")
        attr = summary["resource_attr"]
        print(f"  leaderboard (top {LEADERBOARD_SIZE}):")
        rows = [("trial", summary["metric"], f"{attr} reached" if attr else "", "status", "config")]
        for row in summary["leaderboard"]:
            config = ", ".join(f"{k}={_fmt_number(v)}" for k, v in row["config"].items())
            reached = row["resource_reached"]
            shown = "" if not attr else "-" if reached is None else _fmt_number(reached) + (
                f"/{_fmt_number(row['max_resource'])}" if row["max_resource"] is not None else "")
            rows.append((str(row["trial_id"]), f"{row['value']:.6g}", shown, row["status"], config))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("    " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    for line in _lineage_lines(summary["lineage"], summary["resource_attr"]):
        print(f"  {line}")
    failed = [rec for rec in exp.trial_table() if rec["status"] == "failed"]
    for rec in failed[:5]:
        first = (rec["error"] or "").strip().splitlines()
        print(f"  trial {rec['trial_id']} failed: {first[0] if first else '?'}")
    return 0


#: exploits listed by ``tunebench show`` (the last ones; ``--json`` has them all)
LINEAGE_SHOWN = 20


def _lineage_lines(lineage: list[dict[str, Any]], resource_attr: str | None) -> list[str]:
    """The lines of ``tunebench show`` on a PBT run's exploits (none without one), e.g.
    ``trial 5 @ epoch 4 <- trial 2's weights: lr 0.1 -> 0.08``."""
    if not lineage:
        return []
    lines = [f"lineage ({len(lineage)} exploits" + (f", the last {LINEAGE_SHOWN}" if len(lineage) > LINEAGE_SHOWN
                                                    else "") + "):"]
    for e in lineage[-LINEAGE_SHOWN:]:
        at = f" @ {resource_attr or 'resource'} {_fmt_number(e['resource'])}" if e["resource"] is not None else ""
        changes = ", ".join(f"{k} {_fmt_number(old)} -> {_fmt_number(new)}" for k, (old, new) in e["changes"].items())
        lines.append(f"  trial {e['trial_id']}{at} <- trial {e['source']}'s weights: {changes or 'same config'}")
    return lines


def _run_state(summary: dict[str, Any], holder: LockHolder | None) -> str:
    """How far the experiment of ``summary`` is: running (and by whom), finished, or to resume."""
    if holder is not None:
        return f"running now ({holder.describe()})"
    if summary["finished"]:
        return f"finished: {summary['end_reason']}"
    return f"not finished (tunebench resume {summary['path']})"


def cmd_list(args: argparse.Namespace) -> int:
    # deferred: numpy and the tuner stay out of the CLI's start-up (`tunebench --help`)
    from tunebench.benchmarks import SimulatedBenchmark, benchmark_names, get_benchmark, load_benchmark_module
    from tunebench.experiments.presets import PRESETS
    from tunebench.schedulers import describe_methods, method_groups

    for ref in args.benchmark_module:
        load_benchmark_module(ref)
    everything = not args.methods and not args.benchmarks and not args.presets
    if args.methods or everything:
        print("methods (--method; [group; default options], override with --method-arg KEY=VALUE):")
        for line in describe_methods():
            print(f"  {line}")
        print("method groups (--method-group of `tunebench experiment`; default baselines):")
        for group, names in method_groups().items():
            print(f"  {group}: {', '.join(names) or '-'}")
    if args.benchmarks or everything:
        print("benchmarks (--benchmark):")
        for name in benchmark_names():
            b = get_benchmark(name)
            if isinstance(b, SimulatedBenchmark):
                low, high = b.fidelity_range
                extra = "".join(f", {k} {v}" for k, v in (("surrogate", b.surrogate),) if v)
                print(f"  {name}: {b.description} [simulator; {b.objective_summary}, {b.resource_attr} "
                      f"{low:g}-{high:g}, {b.n_workers} workers, {b.max_wallclock_time:g} "
                      f"simulated s, {b.method}{extra}]")
            else:
                cpus = f", {b.cpus_per_trial} CPUs/trial" if b.cpus_per_trial else ""
                print(f"  {name}: {b.description} [local; {b.objective_summary}, {b.resource_attr} "
                      f"up to {b.max_resource}, {b.n_workers} workers, {b.max_wallclock_time:g} s, {b.method}, "
                      f"{b.gpus_per_trial} GPU/trial where there are GPUs{cpus}]")
    if args.presets or everything:
        print("presets (tunebench experiment --preset NAME):")
        for p in PRESETS.values():
            methods = ", ".join(p.methods) if p.methods is not None else f"group {p.method_group}"
            budget = f", {p.max_wallclock_time:g} s" if p.max_wallclock_time else ""
            workers = f", {p.n_workers} workers" if p.n_workers else ""
            took = f"; {p.expected_wall_time}" if p.expected_wall_time else ""
            print(f"  {p.name}: {p.description} [{', '.join(p.benchmarks)} x {methods} x {p.num_seeds} seeds"
                  f"{workers}{budget}{took}]")
    return 0


def _grid_request(args: argparse.Namespace, argv: list[str]) -> Any:
    # deferred: numpy and the tuner stay out of the CLI's start-up (`tunebench --help`)
    from tunebench.benchmarks import load_benchmark_module
    from tunebench.experiments.grid import GridRequest
    from tunebench.experiments.presets import get_preset
    from tunebench.schedulers import methods_of_group

    for ref in args.benchmark_module:  # they may define presets, methods and groups' members
        load_benchmark_module(ref)
    preset = get_preset(args.preset) if args.preset else None
    benchmarks = _split_names(args.benchmark) or (list(preset.benchmarks) if preset else [])
    if not benchmarks:
        raise UserError("no benchmark given: pass --benchmark NAME [NAME ...] or --preset NAME (see `tunebench "
                        "list --benchmarks` and `tunebench list --presets`)")
    if args.method:
        if args.method_group:
            raise UserError("give either --method or --method-group, not both")
        methods = _split_names(args.method)
    elif args.method_group:
        methods = methods_of_group(args.method_group)
    elif preset is not None:
        methods = preset.resolved_methods()
    else:
        methods = methods_of_group("baselines")
    num_seeds = args.num_seeds or (preset.num_seeds if preset else 1)
    tag = args.experiment_tag if args.experiment_tag is not None else (preset.name if preset else None)
    method_args: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (preset.method_args if preset else {}).items()}
    for key, options in _parse_grid_method_args(args.method_arg).items():
        method_args.setdefault(key, {}).update(options)
    benchmark_args = dict(preset.benchmark_args) if preset else {}
    benchmark_args.update(_parse_method_args(args.benchmark_arg, "--benchmark-arg"))
    return GridRequest(
        benchmarks=benchmarks, methods=methods, seeds=list(range(args.start_seed, args.start_seed + num_seeds)),
        tag=tag, results_root=args.results_root,
        n_workers=args.n_workers if args.n_workers is not None else (preset.n_workers if preset else None),
        max_wallclock_time=args.max_wallclock_time if args.max_wallclock_time is not None else (
            preset.max_wallclock_time if preset else None),
        scale_max_wallclock_time=args.scale_max_wallclock_time, max_trials=args.max_trials,
        max_results=args.max_results, max_resource=args.max_resource, backend=args.backend, data_dir=args.data_dir,
        charge_decision_time=not args.no_charge_decision_time, method_args=method_args,
        benchmark_args=benchmark_args, benchmark_modules=list(args.benchmark_module),
        gpus_per_trial=args.gpus_per_trial, cpus_per_trial=args.cpus_per_trial, max_failures=args.max_failures,
        command_line=["tunebench", *argv], launch_on_cluster=args.launch_on_cluster, ray_address=args.ray_address,
        warm_pool=args.warm_pool, storage=args.storage, max_retries=args.max_retries,
        ray_node_wait=args.ray_node_wait,
        transfer_from=list(args.transfer_from or (preset.transfer_from if preset else ())))


def cmd_experiment(args: argparse.Namespace, argv: list[str]) -> int:
    # deferred: pandas/matplotlib stay out of the CLI's start-up
    from tunebench.analysis.layout import results_root
    from tunebench.experiments.display import GridDisplay
    from tunebench.experiments.grid import default_parallel, plan_grid, run_grid, summarize, usable_cores
    from tunebench.launch import check_backend

    if args.backend is not None:
        check_backend(args.backend)  # --backend ray without Ray: a clear error before anything else
    on_cluster = args.launch_on_cluster or (args.backend is not None and get_backend(args.backend).cluster)
    _check_ray_options(args, on_cluster, "--launch-on-cluster or --backend ray")
    if on_cluster:
        check_backend(RAY)
    request = _grid_request(args, argv)
    try:
        jobs = plan_grid(request)
    except KeyboardInterrupt:
        print("\ninterrupted before any experiment started", file=sys.stderr)
        return 130
    root = results_root(request.results_root)
    where = root / request.tag
    todo = [j for j in jobs if j.action in ("start", "resume")]
    if (todo and not on_cluster and args.parallel and args.parallel > usable_cores()
            and request.charge_decision_time and any(not get_backend(j.spec.backend).runs_scripts for j in todo)):
        print(f"warning: --parallel {args.parallel} is more than the {usable_cores()} usable cores: the decision "
              "time charged to simulated time will be inflated (see --no-charge-decision-time)", file=sys.stderr)
    cluster = f" on the Ray cluster {args.ray_address or '(default address)'}" if on_cluster else ""
    print(f"experiment grid '{request.tag}': {len(request.benchmarks)} benchmark(s) x {len(request.methods)} "
          f"method(s) x {len(request.seeds)} seed(s) -> {where}{cluster}")
    if args.dry_run:
        for job in jobs:
            note = f" ({job.note})" if job.note else ""
            print(f"  {job.action:6s} {job.key}{note}")
        return 0
    display = GridDisplay(live=False if args.no_progress else None)
    if on_cluster:
        # deferred: the cluster launcher, only for --launch-on-cluster (and numpy out of the CLI start-up)
        from tunebench.experiments.cluster import run_grid_on_cluster

        try:
            result = run_grid_on_cluster(jobs, address=args.ray_address, parallel=args.parallel, observer=display,
                                         tag=request.tag, command_line=request.command_line,
                                         max_retries=3 if args.max_retries is None else args.max_retries)
        except KeyboardInterrupt:
            print("\ninterrupted before any experiment started", file=sys.stderr)
            return 130
    else:
        result = run_grid(jobs, parallel=args.parallel or default_parallel(jobs), observer=display,
                          tag=request.tag, command_line=request.command_line)
    summarize(result)
    hint = "" if args.results_root is None else f" --results-root {args.results_root}"
    if result.interrupted:
        print(f"interrupted; run the same command again to resume the grid ({where})", file=sys.stderr)
        return 130
    print(f"results: {where}  (tunebench report --experiment-tag {request.tag}{hint})")
    return 0 if result.ok else 1


def _grid_for_analysis(args: argparse.Namespace, benchmark: str | None = None) -> Any:
    """The loaded grid of ``--experiment-tag`` under ``--results-root`` (load_grid's errors list the
    tags, benchmarks and methods that exist)."""
    # deferred: pandas/matplotlib stay out of the CLI's start-up
    from tunebench.analysis.layout import check_tag, results_root
    from tunebench.analysis.results import load_grid

    tag = check_tag(args.experiment_tag)
    root = results_root(args.results_root)
    if not root.is_dir():
        raise UserError(f"the results root {root} does not exist; pass --results-root (or set TUNEBENCH_RESULTS) "
                        "to where `tunebench experiment` wrote its results")
    return load_grid(root, tag, benchmarks=[benchmark] if benchmark else None)


def cmd_plot(args: argparse.Namespace) -> int:
    # deferred: pandas/matplotlib stay out of the CLI's start-up
    from tunebench.analysis.plots import check_output, plot_experiment, plot_grid

    if args.output:
        check_output(args.output)  # an unknown suffix fails before anything is read or created
    if args.path is not None:
        given = [o for o, v in (("--experiment-tag", args.experiment_tag), ("--benchmark", args.benchmark),
                                ("--method-group", args.method_group), ("--regret/--no-regret", args.regret),
                                ("--results-root", args.results_root)) if v is not None]
        if given:
            raise UserError(f"{', '.join(given)} {'go' if len(given) > 1 else 'goes'} with a grid "
                            "(--experiment-tag), not with an experiment folder PATH")
        path = Path(args.path).expanduser()
        output = Path(args.output) if args.output else Path(f"{path.resolve().name}.png")
        print(f"wrote {plot_experiment(path, output)}")
        return 0
    if args.experiment_tag is None:
        raise UserError("nothing to plot: give an experiment folder (tunebench plot PATH) or a grid's tag "
                        "(--experiment-tag NAME)")
    grid = _grid_for_analysis(args, args.benchmark)
    output = Path(args.output) if args.output else Path(
        f"{args.experiment_tag}{'-' + args.benchmark if args.benchmark else ''}.png")
    y = None if args.regret is None else ("regret" if args.regret else "metric")
    paths = plot_grid(grid, output, benchmark=args.benchmark, groups=args.method_group, y=y)
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    # deferred: pandas/matplotlib stay out of the CLI's start-up
    from tunebench.analysis.report import write_report

    grid = _grid_for_analysis(args)
    print(write_report(grid, output_dir=args.output_dir, figures=args.output_dir is not None))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard of ``PATH ...`` and ``--results-root`` until interrupted."""
    # deferred: the analysis package loads pandas; it stays out of the CLI's start-up
    from tunebench.analysis.layout import results_root

    roots = [Path(p).expanduser() for p in args.paths]
    if args.results_root or not roots:
        roots.append(results_root(args.results_root))
    try:
        # deferred: the web server and plotly load only for this command (an optional extra)
        from tunebench.dashboard import serve
    except ImportError as e:
        raise UserError(f"the dashboard needs {e.name}: pip install 'tunebench[dashboard]'") from None
    try:
        serve(roots, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    return 0


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    for h in [h for h in logger.handlers if getattr(h, "_tunebench_cli", False)]:
        # main() called again in the same process (tests, notebooks): the handler of the first call
        # writes to the stderr of that time, which may be closed by now
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._tunebench_cli = True  # type: ignore[attr-defined]  # our marker, found by the getattr above
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def _parse_configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = []
    for i, text in enumerate(args.config, start=1):
        try:
            value = json.loads(text)
        except ValueError as e:
            raise UserError(f"--config {i}: not JSON ({e}); write it like '{{\"lr\": 0.01}}'") from None
        if not isinstance(value, dict):
            raise UserError(f"--config {i}: expected a JSON object, got {text!r}")
        configs.append(value)
    if args.configs_file:
        try:
            value = json.loads(Path(args.configs_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"--configs-file {args.configs_file}: unreadable ({e})") from None
        if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
            raise UserError(f"--configs-file {args.configs_file}: expected a JSON list of objects")
        configs.extend(value)
    return configs


def cmd_tabulate(args: argparse.Namespace) -> int:
    """``tunebench tabulate``: runs :func:`tabulate_benchmark` and prints where the table is and
    how to use it. Returns the exit status (0; UserError propagates to the CLI's handler)."""
    # deferred: numpy and the tuner stay out of the CLI's start-up (`tunebench --help`)
    from tunebench.blackboxes.tabulated import find_tabulated
    from tunebench.progress import ProgressDisplay
    from tunebench.tabulate import tabulate_benchmark

    callbacks = []
    if not args.no_progress:
        callbacks.append(ProgressDisplay())
    try:
        result = tabulate_benchmark(
            args.benchmark, args.num_configs, args.seeds, configs=_parse_configs(args), backend=args.backend,
            n_workers=args.n_workers, output_dir=args.output, work_dir=args.work_dir, resume=not args.no_resume,
            seed=args.seed, max_resource=args.max_resource, max_wallclock_time=args.max_wallclock_time,
            max_failures=args.max_failures, keep_checkpoints=args.keep_checkpoints,
            benchmark_args=_parse_method_args(args.benchmark_arg, "--benchmark-arg"),
            benchmark_modules=args.benchmark_module,
            ray_address=args.ray_address, trial_timeout=args.trial_timeout, callbacks=callbacks)
    except KeyboardInterrupt:
        print("tunebench tabulate: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    print(f"tabulated {args.benchmark}: {result.n_configs} configurations x {result.n_seeds} seeds "
          f"({result.n_completed} runs completed, {result.n_failed} failed, {result.n_missing} not run yet; "
          f"{result.n_started} run now, in {result.elapsed:.1f} s)")
    print(f"table: {result.output_dir}")
    if result.n_missing:
        print("rerun the same command to run the rest")
    found = find_tabulated(args.benchmark)
    if found is not None and found.resolve() == result.output_dir.resolve():
        print(f"simulate it: tunebench run --benchmark {args.benchmark}-tab --backend simulator")
    else:
        print(f"simulate it: put the folder under $TUNEBENCH_DATA/tabulated/ (or the blackbox cache) to use "
              f"--benchmark {args.benchmark}-tab, or load it with tunebench.benchmarks.tabulated_benchmark(FOLDER)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tunebench`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    command = args.command or "run"
    if args.command is None:
        args = parser.parse_args([*argv, "run"])
    try:
        if command == "run":
            return cmd_run(args, argv)
        if command == "resume":
            return cmd_resume(args, argv)
        if command == "show":
            return cmd_show(args)
        if command == "list":
            return cmd_list(args)
        if command == "experiment":
            return cmd_experiment(args, argv)
        if command == "plot":
            return cmd_plot(args)
        if command == "report":
            return cmd_report(args)
        if command == "tabulate":
            return cmd_tabulate(args)
        if command == "dashboard":
            return cmd_dashboard(args)
    except UserError as e:
        print(f"tunebench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a command that stopped reading (`| head`)
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    parser.error(f"unknown command {command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
