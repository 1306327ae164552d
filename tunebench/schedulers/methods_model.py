"""The model-based tuning methods ``BO`` and ``MOBSTER``; importing this module registers them
(see :mod:`tunebench.schedulers.registry`).

Heavy imports (scipy, the GP) stay inside the factories so that ``import tunebench.schedulers``
stays fast.

* ``BO``: FIFO + :class:`tunebench.searchers.gp.GPSearcher` (GP, expected improvement, pending
  trials fantasized); single fidelity: every trial runs to its end.

Both are cost-aware (``cost_attr`` / ``--cost-attr``): given a reported cost, they maximize EI
per unit of cost, ``EI / cost^cost_exponent``, with a second GP on the log cost; with
``cost_budget`` (total cost of the run, e.g. workers x seconds) the exponent cools from
``cost_exponent`` to 0 as the budget is spent (CArBO); see :mod:`tunebench.searchers.gp`.
* ``MOBSTER``: ASHA + :class:`tunebench.searchers.gp.MOBSTERSearcher` (GP over config and
  resource, EI at a target rung level); stopping type by default, ``type="promotion"`` pauses
  and resumes instead.
"""

from __future__ import annotations

from typing import Any, Literal

from tunebench.schedulers.asha import ASHA
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.registry import MethodContext, method

__all__ = ["GP_OPTIONS", "GP_QUICK"]

#: options of the GP searchers that the GP-based methods pass through (see ``GPSearcher``)
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

#: small models for a quick run of a GP-based method (the contract suite); ``max_model_points``
#: below the number of observations, so that subsampling and re-drawing it are exercised too
GP_QUICK: dict[str, Any] = {"refit_factor": 2.0, "n_candidates": 32, "max_steps": 3, "max_model_points": 40,
                            "max_fit_points": 20}


@method("BO", "Bayesian optimization: GP + expected improvement, pending trials fantasized (FIFO)",
        listed=("acquisition", "input_warping"), quick_options=GP_QUICK, quick_trials=40, cost_aware=True)
def _bo_factory(
    ctx: MethodContext,
    *,
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
    cost_exponent: float = 1.0,
    cost_budget: float | None = None,
) -> Scheduler:
    """FIFO + GPSearcher (see :class:`tunebench.searchers.gp.GPSearcher` for the options;
    ``ctx.cost_attr`` is its ``cost_attr``)."""
    from tunebench.searchers.gp import GPSearcher  # deferred: scipy and the GP (import tunebench.schedulers)

    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    searcher = GPSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                          points_to_evaluate=points_to_evaluate, num_init_random=num_init_random,
                          acquisition=acquisition, kappa=kappa, cost_attr=ctx.cost_attr,
                          cost_exponent=cost_exponent, cost_budget=cost_budget, **gp_options)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr)


@method("MOBSTER",
        "MOBSTER: ASHA (stopping type) + GP over config and resource, EI at a rung level (Klein et al. 2020)",
        listed=("grace_period", "reduction_factor", "type", "input_warping"), multi_fidelity=True,
        quick_options=GP_QUICK, quick_trials=40, cost_aware=True)
def _mobster_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    rung_levels: list[int] | None = None,
    type: Literal["stopping", "promotion"] = "stopping",
    brackets: int | Literal["all"] | None = 1,
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
    cost_exponent: float = 1.0,
    cost_budget: float | None = None,
) -> Scheduler:
    """ASHA + MOBSTERSearcher (see :class:`tunebench.searchers.gp.MOBSTERSearcher`; ``ctx.cost_attr``
    is its ``cost_attr``)."""
    from tunebench.searchers.gp import MOBSTERSearcher  # deferred: scipy and the GP (import tunebench.schedulers)

    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    # the searcher validates the ladder as ASHA does (same rules, same messages)
    resource_attr, max_t = ctx.resource_and_max_t()
    searcher = MOBSTERSearcher(
        ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, resource_attr=resource_attr, max_t=max_t,
        grace_period=grace_period, reduction_factor=reduction_factor, rung_levels=rung_levels,
        points_to_evaluate=points_to_evaluate, num_init_random=num_init_random, cost_attr=ctx.cost_attr,
        cost_exponent=cost_exponent, cost_budget=cost_budget, **gp_options,
    )
    return ASHA(
        searcher, resource_attr=resource_attr, max_t=max_t,
        grace_period=grace_period, reduction_factor=reduction_factor, rung_levels=rung_levels,
        type=type, max_resource_attr=ctx.max_resource_attr, brackets=brackets,
        seed=None,  # derived from the searcher seed (independent stream)
    )
