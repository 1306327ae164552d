"""Tune a Python function (L4): :func:`tune`.

The function is a training loop that takes a config and calls :func:`tunebench.report` (and may
use the checkpoint helpers), as a script would::

    def train(config):
        for epoch in range(1, config["epochs"] + 1):
            ...
            report(epoch=epoch, val_loss=loss)

    result = tune(train, {"lr": loguniform(1e-4, 1e-1), "epochs": 20}, metric="val_loss", mode="min",
                  resource_attr="epoch", max_resource_attr="epochs", max_trials=50)

It never runs in the tuner's process: each trial run is a worker process (forked from a prepared
interpreter that imported the function's module once, or a new interpreter with
``warm_start=False``), so a crash, a segfault or running out of memory fails that trial only.
The worker finds the function by reference (its module and qualified name; a function of the
main script is found by running that file as ``__mp_main__``, as ``multiprocessing``'s spawn
does), never by pickling it. Everything else is as for a script: the experiment folder, its event
log, resume (``tune(..., resume=True)`` or ``tunebench resume DIR``), ``tunebench show``, plots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunebench.analysis.transfer import resolve_transfer_sources
from tunebench.backends.registry import LOCAL
from tunebench.backends.warm import FunctionTarget
from tunebench.errors import UserError
from tunebench.launch import RunSpec, build_tuner, default_experiment_dir
from tunebench.space import space_to_json, validate_space
from tunebench.store import EVENTS_FILE
from tunebench.tuner import Callback, TuningResult
from tunebench.types import Objectives, parse_constraints

if TYPE_CHECKING:
    from tunebench.space import Prior

__all__ = ["tune"]

logger = logging.getLogger(__name__)


def tune(
    fn: Callable[[dict[str, Any]], Any],
    config_space: Mapping[str, Any],
    *,
    metric: str | Sequence[str],
    mode: str | Sequence[str] = "min",
    method: str = "ASHA",
    resource_attr: str | None = None,
    max_resource_attr: str | None = None,
    max_resource: int | None = None,
    n_workers: int = 2,
    max_trials: int | None = None,
    max_wallclock_time: float | None = None,
    max_results: int | None = None,
    max_failures: int = 5,
    trial_timeout: float | None = None,
    experiment_dir: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    backend: str = LOCAL,
    warm_start: bool = True,
    preload: Sequence[str] = (),
    gpus_per_trial: int = 1,
    cpus_per_trial: int | None = None,
    callbacks: Sequence[Callback] = (),
    constraints: Sequence[str] | str | None = None,
    cost_attr: str | None = None,
    prior: Mapping[str, Any] | Prior | None = None,
    transfer_from: Sequence[str | Path] = (),
    **method_options: Any,
) -> TuningResult:
    """Tune ``fn`` over ``config_space`` with ``method``; returns when a stop criterion is met
    (or every trial ended).

    Args:
        fn: a function defined at the top level of a module or of the main script, called in a
            worker process with the trial's config (a dict); it reports with
            :func:`tunebench.report`. What it returns is reported too: a dict as metrics, a number
            as ``metric`` (``return val_loss``, as for Optuna); None: nothing.
        config_space: name -> domain (:mod:`tunebench.space`) or constant.
        metric, mode: the reported metric to optimise, ``"min"`` or ``"max"``; several metrics (and
            one mode for all, or one each) for a multi-objective method.
        method: a registered method (``tunebench list --methods``); ``method_options`` are its
            options.
        resource_attr: the reported resource (``"epoch"``) of multi-fidelity methods.
        max_resource_attr: the config entry that holds the maximum resource (``"epochs"``);
            ``max_resource`` sets it (else the space must hold it as a constant).
        n_workers: trials running at the same time.
        max_trials, max_wallclock_time, max_results: stop criteria (at least one, unless the
            method ends by itself, as a grid does).
        max_failures, trial_timeout: as for ``tunebench run``.
        experiment_dir: the experiment folder (default: ``$TUNEBENCH_RESULTS/<fn>-<method>-<time>``).
        resume: continue the experiment in ``experiment_dir`` (started fresh when it holds none).
        backend: ``"local"`` (processes on this machine) or ``"ray"``.
        warm_start: fork trial runs from a prepared interpreter (False: a new one per run).
        preload: more modules the prepared interpreter imports.
        gpus_per_trial, cpus_per_trial: resources of one trial (GPUs where there are GPUs).
        callbacks: :class:`tunebench.tuner.Callback` objects.
        constraints: bounds on reported metrics (``"latency<=20"``; several allowed): the best
            trial and the Pareto front count only results that meet them all; ``CBO`` models them.
        cost_attr: the reported cost of a result, for cost-aware methods (BO, MOBSTER).
        prior: the user's prior over the space (a :class:`~tunebench.space.Prior` or its mapping,
            as in a ``--prior`` file), for PiBO, PiBO-MOBSTER and PriorBand.
        transfer_from: earlier experiments of other tasks on the same space (experiment folders,
            grid tags), for the transfer methods (ZeroShot, BoundingBox, CTS, ASHA-CTS).

    Returns:
        The :class:`~tunebench.tuner.TuningResult` (best config, trials, why it stopped).

    Raises:
        UserError: bad input (the message names the fix): ``fn`` cannot be found by a worker (a
            lambda, a nested function, a function typed into an interactive session), a bad
            space, an unknown method or option.
    """
    objectives = Objectives.from_args(metric, mode)  # one-line errors naming the fix
    try:
        # a number fn returns is reported as the metric; with several, return a dict of them
        target = FunctionTarget.of(fn, metric=None if objectives.is_multi else objectives.metrics[0])
    except ValueError as err:
        raise UserError(str(err)) from None
    metric = objectives.metrics[0] if not objectives.is_multi else list(objectives.metrics)
    mode = objectives.modes[0] if not objectives.is_multi else list(objectives.modes)
    space = dict(validate_space(dict(config_space)))
    spec = RunSpec(
        script="", function=target.to_dict(), config_space=space_to_json(space), metric=metric, mode=mode,
        resource_attr=resource_attr, max_resource_attr=max_resource_attr, max_resource=max_resource,
        method=method, method_kwargs=dict(method_options), seed=seed, n_workers=n_workers,
        max_wallclock_time=max_wallclock_time, max_trials=max_trials, max_results=max_results,
        max_failures=max_failures, trial_timeout=trial_timeout, gpus_per_trial=gpus_per_trial,
        cpus_per_trial=cpus_per_trial, backend=backend, warm_start=warm_start, preload=list(preload),
        trial_cwd=str(Path.cwd()), constraints=[c.to_json() for c in parse_constraints(constraints)],
        cost_attr=cost_attr,
        prior=None if prior is None else dict(prior) if isinstance(prior, Mapping) else prior.to_json(),
    )
    spec.transfer_from = resolve_transfer_sources(transfer_from)
    folder = Path(experiment_dir) if experiment_dir is not None else default_experiment_dir(spec)
    resuming = resume and (folder / EVENTS_FILE).exists()
    tuner = build_tuner(spec, folder, resume=resuming, callbacks=list(callbacks),
                        command_line=[f"tunebench.tune({target.name})"])
    logger.info("%s %s with %s (%d workers); experiment folder: %s", "resuming" if resuming else "tuning",
                target.name, spec.method, n_workers, folder)
    return tuner.run()
