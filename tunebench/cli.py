"""The ``tunebench`` command line (L4): ``run``, ``resume``, ``show``, ``list``.

User mistakes (a bad option, a missing script, an unknown method) end with one line
``tunebench: error: ...`` naming the problem and the fix, and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tunebench.errors import TuningError, UserError

logger = logging.getLogger("tunebench")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_run_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits")
    g.add_argument("--n-workers", type=_positive_int, help="trials running at the same time")
    g.add_argument("--max-wallclock-time", type=_positive_float, help="seconds of tuning")
    g.add_argument("--max-trials", type=_positive_int, help="number of trials to start")
    g.add_argument("--max-results", type=_positive_int, help="number of results to receive")
    g.add_argument("--metric-threshold", type=float, help="stop once the best metric reaches this value")
    g.add_argument("--max-failures", type=int, help="failed trials tolerated before tuning stops (default 5)")
    g.add_argument("--trial-timeout", type=_positive_float, help="seconds after which a trial run is failed")
    g.add_argument("--no-progress", action="store_true", help="no live progress display")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    src.add_argument("--metric", help="name of the reported metric to optimize")
    src.add_argument("--mode", choices=["min", "max"], help="minimize or maximize the metric")
    src.add_argument("--resource-attr", help="reported resource, e.g. epoch (multi-fidelity methods)")
    src.add_argument("--max-resource-attr", help="script argument carrying the maximum resource, e.g. epochs")
    src.add_argument("--max-resource", type=_positive_int, help="maximum resource, e.g. 27 epochs")
    how = run.add_argument_group("how")
    how.add_argument("--method", help="tuning method (see `tunebench list --methods`); default ASHA")
    how.add_argument("--method-arg", action="append", default=[], metavar="KEY=VALUE",
                     help="method option, e.g. reduction_factor=2 (repeatable; VALUE parsed as JSON)")
    how.add_argument("--seed", type=int, help="random seed (default 0)")
    how.add_argument("--backend", choices=["local", "simulator"],
                     help="where trials run: real processes (local) or simulated time (simulator); default: "
                          "local for scripts, simulator for simulated benchmarks")
    how.add_argument("--data-dir", help="benchmark data folder (default: $TUNEBENCH_DATA)")
    how.add_argument("--no-charge-decision-time", action="store_true",
                     help="simulator: do not add the scheduler's real decision time to simulated time")
    how.add_argument("--gpus-per-trial", type=_positive_int, help="GPUs per trial where there are GPUs")
    run.add_argument("--experiment-dir", help="experiment folder (default: $TUNEBENCH_RESULTS or "
                                              "~/tunebench-results, then <name>-<method>-<time>)")
    _add_run_limits(run)

    res = sub.add_parser("resume", help="continue a stopped or killed experiment",
                         description="Continue the experiment in PATH: completed results are kept, trials "
                                     "that were running restart from their checkpoints. Limits given here "
                                     "replace the stored ones.")
    res.add_argument("path", help="experiment folder")
    _add_run_limits(res)

    show = sub.add_parser("show", help="summarize an experiment")
    show.add_argument("path", help="experiment folder")
    show.add_argument("--json", action="store_true", help="print a JSON summary")
    show.add_argument("--csv", metavar="FILE", help="also export all results to a CSV file")
    show.add_argument("--parquet", metavar="FILE", help="also export all results to a parquet file")

    lst = sub.add_parser("list", help="list methods and benchmarks")
    lst.add_argument("--methods", action="store_true", help="only methods")
    lst.add_argument("--benchmarks", action="store_true", help="only benchmarks")
    return parser


def _parse_method_args(items: list[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--method-arg expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        try:
            kwargs[key.strip()] = json.loads(value)
        except ValueError:
            kwargs[key.strip()] = value
    return kwargs


def _apply_limits(spec: Any, args: argparse.Namespace) -> None:
    for name in ("n_workers", "max_wallclock_time", "max_trials", "max_results", "metric_threshold",
                 "max_failures", "trial_timeout"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(spec, name, value)


def _make_spec(args: argparse.Namespace) -> Any:
    from tunebench.benchmarks import DEFAULT_BENCHMARK
    from tunebench.launch import spec_from_benchmark, spec_from_script

    if args.script and args.benchmark:
        raise UserError("give either --script or --benchmark, not both")
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
        spec = spec_from_benchmark(args.benchmark or DEFAULT_BENCHMARK, data_dir=args.data_dir)
        if args.metric and args.metric != spec.metric:
            if spec.backend != "simulator":
                raise UserError(f"benchmark '{spec.benchmark}' reports '{spec.metric}'; drop --metric")
            spec.metric = args.metric  # another objective of the blackbox (checked when it is loaded)
        if args.mode:
            spec.mode = args.mode
        if args.resource_attr:
            spec.resource_attr = args.resource_attr
        if args.max_resource_attr:
            spec.max_resource_attr = args.max_resource_attr
    if args.backend is not None:
        spec.backend = args.backend
    if args.data_dir is not None:
        spec.data_dir = args.data_dir
    if args.no_charge_decision_time:
        spec.charge_decision_time = False
    if args.max_resource is not None:
        spec.max_resource = args.max_resource
    if args.method:
        spec.method = args.method
    spec.method_kwargs.update(_parse_method_args(args.method_arg))
    if args.seed is not None:
        spec.seed = args.seed
    if args.gpus_per_trial is not None:
        spec.gpus_per_trial = args.gpus_per_trial
    _apply_limits(spec, args)
    return spec


def _canonical_method(name: str) -> str:
    from tunebench.schedulers import method_names

    for known in method_names():
        if known.lower() == name.lower():
            return known
    raise UserError(f"unknown method '{name}'; known methods: {', '.join(method_names())} "
                    "(see `tunebench list --methods`)")


def _tune(spec: Any, experiment_dir: Path, *, resume: bool, progress: bool, argv: list[str]) -> int:
    from tunebench.launch import build_tuner
    from tunebench.progress import ProgressDisplay

    display = ProgressDisplay() if progress else None
    tuner = build_tuner(spec, experiment_dir, resume=resume, callbacks=[display] if display else [],
                        command_line=["tunebench", *argv])
    where = "simulated time" if spec.backend == "simulator" else "local processes"
    print(f"{'resuming' if resume else 'tuning'} {spec.benchmark or spec.script} with {spec.method} "
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
        return 1
    except OSError as e:
        if display:
            display.close()
        print(f"tunebench: error: cannot write to {experiment_dir}: {e.strerror or e}; free some space (or fix "
              f"the permissions), then continue with: tunebench resume {experiment_dir}", file=sys.stderr)
        return 1
    print(f"\ndone ({result.end_reason}): {result.n_trials} trials, {result.n_results} results, "
          f"{result.n_failed} failed, {result.elapsed_time:.1f} s")
    if result.best_config is None:
        print("no result was reported")
    else:
        print(f"best {result.metric} ({result.mode}): {result.best_metric:.6g} (trial {result.best_trial_id})")
        print("best configuration:")
        for k, v in result.best_config.items():
            print(f"  {k}: {v}")
    print(f"results: {experiment_dir}  (tunebench show {experiment_dir})")
    return 0


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from tunebench.launch import build_backend, build_space, default_experiment_dir

    spec = _make_spec(args)
    if spec.backend == "simulator" or not spec.script:
        build_backend(spec)  # fail early: a real benchmark on the simulator, or the reverse
    spec.method = _canonical_method(spec.method)
    build_space(spec)  # fail early on a bad space or a missing --max-resource
    experiment_dir = Path(args.experiment_dir) if args.experiment_dir else default_experiment_dir(spec)
    return _tune(spec, experiment_dir, resume=False, progress=not args.no_progress, argv=argv)


def cmd_resume(args: argparse.Namespace, argv: list[str]) -> int:
    from tunebench.launch import RunSpec
    from tunebench.store import read_metadata

    meta = read_metadata(args.path)
    if "run_spec" not in meta:
        raise UserError(f"{args.path} was not started by `tunebench run`; resume it from Python with "
                        "Tuner(..., experiment_dir=PATH, resume=True)")
    spec = RunSpec.from_dict(meta["run_spec"])
    _apply_limits(spec, args)
    return _tune(spec, Path(args.path), resume=True, progress=not args.no_progress, argv=argv)


def cmd_show(args: argparse.Namespace) -> int:
    from tunebench.store import load_experiment

    exp = load_experiment(args.path)
    summary = exp.summary()
    if args.csv:
        exp.to_csv(args.csv)
    if args.parquet:
        exp.to_parquet(args.parquet)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"experiment {summary['path']}")
    print(f"  method {summary['method']}, metric {summary['metric']} ({summary['mode']})")
    print(f"  trials: {summary['n_trials']} ({summary['n_completed']} completed, {summary['n_stopped']} stopped, "
          f"{summary['n_paused']} paused, {summary['n_failed']} failed, {summary['n_running']} running)")
    print(f"  results: {summary['n_results']}, tuning time {summary['elapsed_time']:.1f} s, "
          f"{'finished: ' + str(summary['end_reason']) if summary['finished'] else 'not finished (tunebench resume)'}")
    if summary["best_config"] is not None:
        print(f"  best {summary['metric']}: {summary['best_metric']:.6g} (trial {summary['best_trial_id']})")
        for k, v in summary["best_config"].items():
            print(f"    {k}: {v}")
    failed = [rec for rec in exp.trial_table() if rec["status"] == "failed"]
    for rec in failed[:5]:
        first = (rec["error"] or "").strip().splitlines()
        print(f"  trial {rec['trial_id']} failed: {first[0] if first else '?'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from tunebench.benchmarks import SimulatedBenchmark, benchmark_names, get_benchmark
    from tunebench.schedulers import describe_methods

    both = not args.methods and not args.benchmarks
    if args.methods or both:
        print("methods (--method):")
        for line in describe_methods():
            print(f"  {line}")
    if args.benchmarks or both:
        print("benchmarks (--benchmark):")
        for name in benchmark_names():
            b = get_benchmark(name)
            if isinstance(b, SimulatedBenchmark):
                print(f"  {name}: {b.description} [simulator; metric {b.metric} ({b.mode}), {b.resource_attr} "
                      f"{b.min_resource}-{b.max_resource}, {b.n_workers} workers, {b.max_wallclock_time:g} "
                      f"simulated s, {b.method}]")
            else:
                print(f"  {name}: {b.description} [local; metric {b.metric} ({b.mode}), {b.resource_attr} "
                      f"up to {b.max_resource}, {b.n_workers} workers, {b.max_wallclock_time:g} s, {b.method}]")
    return 0


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    if any(getattr(h, "_tunebench_cli", False) for h in logger.handlers):
        logger.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._tunebench_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


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
    except UserError as e:
        print(f"tunebench: error: {e}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
