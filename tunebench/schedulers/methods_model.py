"""Registration of the model-based tuning methods: ``BO`` and ``MOBSTER``.

:func:`register` is called once at the end of :mod:`tunebench.schedulers`; it calls
``register_method(...)`` for each method of this module.  Heavy imports (scipy, the GP) stay
inside the factories so that ``import tunebench.schedulers`` stays fast.

* ``BO``: FIFO + :class:`tunebench.searchers.gp.GPSearcher` (GP, expected improvement, pending
  trials fantasized); single fidelity: every trial runs to its end.
* ``MOBSTER``: ASHA + :class:`tunebench.searchers.gp.MOBSTERSearcher` (GP over config and
  resource, EI at a target rung level); stopping type by default, ``type="promotion"`` pauses
  and resumes instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunebench.errors import UserError
from tunebench.schedulers.base import Scheduler

#: options of the GP searchers that both methods pass through (see ``GPSearcher``)
GP_OPTIONS = (
    "input_warping",
    "refit_factor",
    "refit_every",
    "max_model_points",
    "max_fit_points",
    "n_candidates",
    "n_starts",
    "max_steps",
    "blas_threads",
)


def searcher_rung_levels(rung_levels: list[int] | None, grace_period: int, reduction_factor: float,
                         max_t: int | None) -> list[int] | None:
    """Rung levels a GP searcher targets: ``rung_levels`` if given, else ASHA's default levels
    (``None`` when the arguments cannot define them: the scheduler then reports the problem)."""
    from tunebench.schedulers.asha import default_rung_levels

    if rung_levels is None and max_t is not None and grace_period is not None and reduction_factor >= 2:
        return default_rung_levels(grace_period, reduction_factor, max_t)
    return rung_levels


def _user_error(exc: ValueError) -> UserError:
    return exc if isinstance(exc, UserError) else UserError(str(exc))


def _bo_factory(
    config_space: dict[str, Any],
    *,
    metric: str,
    mode: str,
    resource_attr: str | None,
    max_resource_attr: str | None,
    max_t: int | None,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    num_init_random: int | None = None,
    acquisition: str = "ei",
    kappa: float = 2.0,
    input_warping: bool = False,
    refit_factor: float = 1.1,
    refit_every: int | None = None,
    max_model_points: int = 250,
    max_fit_points: int = 150,
    n_candidates: int = 200,
    n_starts: int = 2,
    max_steps: int = 8,
    blas_threads: int | None = 1,
) -> Scheduler:
    """FIFO + GPSearcher (see :class:`tunebench.searchers.gp.GPSearcher` for the options)."""
    from tunebench.schedulers.fifo import FIFOScheduler
    from tunebench.searchers.gp import GPSearcher

    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    try:
        searcher = GPSearcher(
            config_space,
            metric,
            mode,
            seed=seed,
            points_to_evaluate=points_to_evaluate,
            num_init_random=num_init_random,
            acquisition=acquisition,
            kappa=kappa,
            **gp_options,
        )
    except ValueError as exc:
        raise _user_error(exc) from exc
    return FIFOScheduler(searcher, resource_attr=resource_attr, max_resource_attr=max_resource_attr)


def _mobster_factory(
    config_space: dict[str, Any],
    *,
    metric: str,
    mode: str,
    resource_attr: str,
    max_resource_attr: str | None,
    max_t: int,
    seed: int,
    grace_period: int = 1,
    reduction_factor: float = 3,
    rung_levels: list[int] | None = None,
    type: str = "stopping",
    brackets: int | str | None = 1,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    num_init_random: int | None = None,
    input_warping: bool = False,
    refit_factor: float = 1.1,
    refit_every: int | None = None,
    max_model_points: int = 250,
    max_fit_points: int = 150,
    n_candidates: int = 200,
    n_starts: int = 2,
    max_steps: int = 8,
    blas_threads: int | None = 1,
) -> Scheduler:
    """ASHA + MOBSTERSearcher (see :class:`tunebench.searchers.gp.MOBSTERSearcher`)."""
    from tunebench.schedulers.asha import ASHA
    from tunebench.searchers.gp import MOBSTERSearcher

    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    try:
        levels = searcher_rung_levels(rung_levels, grace_period, reduction_factor, max_t)
        searcher = MOBSTERSearcher(
            config_space,
            metric,
            mode,
            seed=seed,
            resource_attr=resource_attr,
            max_t=max_t,
            rung_levels=levels,
            min_resource=grace_period if levels is None else min([grace_period, *levels]),
            reduction_factor=reduction_factor,
            points_to_evaluate=points_to_evaluate,
            num_init_random=num_init_random,
            **gp_options,
        )
        return ASHA(
            searcher,
            resource_attr=resource_attr,
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            rung_levels=rung_levels,
            type=type,  # type: ignore[arg-type]
            max_resource_attr=max_resource_attr,
            brackets=brackets,  # type: ignore[arg-type]
            seed=None,  # derived from the searcher seed (independent stream)
        )
    except ValueError as exc:
        raise _user_error(exc) from exc


def register(register_method: Callable[..., Any]) -> None:
    """Register this module's methods with ``register_method`` (see :func:`tunebench.schedulers.register_method`)."""
    register_method(
        "BO",
        _bo_factory,
        "Bayesian optimization: GP + expected improvement, pending trials fantasized (FIFO)",
        {"acquisition": "ei", "input_warping": False},
    )
    register_method(
        "MOBSTER",
        _mobster_factory,
        "MOBSTER: ASHA (stopping type) + GP over config and resource, EI at a rung level (Klein et al. 2020)",
        {"grace_period": 1, "reduction_factor": 3, "type": "stopping", "input_warping": False},
        multi_fidelity=True,
    )
