"""Registrations of the multi-objective model-based methods ``MOBO`` and ``MOASHA-BO``; importing
this module registers them (see :mod:`tunebench.schedulers.registry`).

Heavy imports (scipy, the GP) stay inside the factories so that ``import tunebench.schedulers``
stays fast.

* ``MOBO``: FIFO + :class:`tunebench.searchers.mobo.MOBOSearcher` (a GP per objective, expected
  hypervolume improvement in 2-3 objectives, random Chebyshev scalarizations beyond, pending
  trials fantasized); single fidelity.
* ``MOASHA-BO``: MOASHA (stopping type; :class:`tunebench.schedulers.moasha.MOASHA`) +
  :class:`tunebench.searchers.mobo.MultiFidelityMOBOSearcher` (the same model, fitted on the
  highest rung level with enough observations).
"""

from __future__ import annotations

from typing import Any, Literal

from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.methods_model import GP_OPTIONS, GP_QUICK
from tunebench.schedulers.moasha import MOASHA
from tunebench.schedulers.registry import MethodContext, method


@method("MOBO",
        "Multi-objective BO: a GP per objective, expected hypervolume improvement (2-3 objectives) or random "
        "Chebyshev scalarizations, pending trials fantasized (FIFO)",
        listed=("input_warping",), quick_options=GP_QUICK, quick_trials=40, multi_objective=True)
def _mobo_factory(
    ctx: MethodContext,
    *,
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
    """FIFO + MOBOSearcher (see :class:`tunebench.searchers.mobo.MOBOSearcher` for the options)."""
    from tunebench.searchers.mobo import MOBOSearcher  # deferred: scipy and the GP (import tunebench.schedulers)

    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    assert ctx.objectives is not None  # (set by MethodContext itself)
    searcher = MOBOSearcher(ctx.config_space, ctx.objectives, seed=ctx.seed, points_to_evaluate=points_to_evaluate,
                            num_init_random=num_init_random, **gp_options)
    return FIFOScheduler(searcher, objectives=ctx.objectives, resource_attr=ctx.resource_attr,
                         max_resource_attr=ctx.max_resource_attr)


@method("MOASHA-BO",
        "MOASHA (stopping type) + multi-objective BO fitted on the highest rung level with enough observations",
        listed=("grace_period", "reduction_factor", "tie_break"), multi_fidelity=True, quick_options=GP_QUICK,
        quick_trials=40, multi_objective=True)
def _moasha_bo_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    rung_levels: list[int] | None = None,
    brackets: int | Literal["all"] | None = 1,
    tie_break: Literal["eps_net", "crowding"] = "eps_net",
    min_level_points: int | None = None,
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
    """MOASHA + MultiFidelityMOBOSearcher (see :mod:`tunebench.searchers.mobo`)."""
    from tunebench.searchers.mobo import MultiFidelityMOBOSearcher  # deferred: scipy and the GP

    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    assert ctx.objectives is not None  # (set by MethodContext itself)
    # the searcher validates the ladder as MOASHA does (same rules, same messages)
    resource_attr, max_t = ctx.resource_and_max_t()
    searcher = MultiFidelityMOBOSearcher(
        ctx.config_space, ctx.objectives, seed=ctx.seed, resource_attr=resource_attr, max_t=max_t,
        grace_period=grace_period, reduction_factor=reduction_factor, rung_levels=rung_levels,
        min_level_points=min_level_points, points_to_evaluate=points_to_evaluate,
        num_init_random=num_init_random, **gp_options,
    )
    return MOASHA(searcher, objectives=ctx.objectives, tie_break=tie_break, resource_attr=resource_attr,
                  max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor,
                  rung_levels=rung_levels, type="stopping", max_resource_attr=ctx.max_resource_attr,
                  brackets=brackets, seed=None)
