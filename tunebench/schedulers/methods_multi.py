"""Registrations of the multi-objective methods (L1): MOASHA, NSGA2 and MOREA (see
:mod:`tunebench.schedulers.registry`)."""

from __future__ import annotations

from typing import Any, Literal

from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.moasha import MOASHA
from tunebench.schedulers.registry import MethodContext, SchedulerFactory, method
from tunebench.searchers.morea import MOREASearcher
from tunebench.searchers.nsga2 import NSGA2Searcher
from tunebench.searchers.random import RandomSearcher


def _moasha_factory(type: Literal["stopping", "promotion"]) -> SchedulerFactory:
    def factory(
        ctx: MethodContext,
        *,
        grace_period: int = 1,
        reduction_factor: float = 3,
        rung_levels: list[int] | None = None,
        brackets: int | Literal["all"] | None = 1,
        tie_break: Literal["eps_net", "crowding"] = "eps_net",
        points_to_evaluate: list[dict[str, Any]] | None = None,
    ) -> Scheduler:
        resource_attr, max_t = ctx.resource_and_max_t()
        assert ctx.objectives is not None  # (set by MethodContext itself)
        searcher = RandomSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                                  points_to_evaluate=points_to_evaluate)
        return MOASHA(searcher, objectives=ctx.objectives, tie_break=tie_break, resource_attr=resource_attr,
                      max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor,
                      rung_levels=rung_levels, type=type, max_resource_attr=ctx.max_resource_attr,
                      brackets=brackets, seed=None)

    return factory


method(
    "MOASHA",
    "Multi-objective ASHA (Schmucker et al. 2021): rungs ranked by non-dominated sorting + eps-net, "
    "stopping type, random search",
    listed=("grace_period", "reduction_factor", "tie_break"),
    multi_fidelity=True,
    multi_objective=True,
)(_moasha_factory("stopping"))
method(
    "MOASHA-promotion",
    "MOASHA, promotion type: pause at rungs, resume the best (needs checkpoints)",
    listed=("grace_period", "reduction_factor", "tie_break"),
    multi_fidelity=True,
    multi_objective=True,
)(_moasha_factory("promotion"))


@method("NSGA2",
        "NSGA-II (Deb et al. 2002), asynchronous: binary tournaments by non-dominated rank and crowding, "
        "SBX crossover and mutation in the unit cube, elitist survivors (FIFO)",
        listed=("population_size", "crossover_prob", "mutation_prob"),
        multi_objective=True)
def _nsga2(
    ctx: MethodContext,
    *,
    population_size: int = 10,
    crossover_prob: float = 0.9,
    mutation_prob: float | None = None,
    eta_crossover: float = 10.0,
    local_scale: float = 0.2,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """NSGA-II (single fidelity): FIFO + :class:`~tunebench.searchers.nsga2.NSGA2Searcher`."""
    assert ctx.objectives is not None  # (set by MethodContext itself)
    searcher = NSGA2Searcher(ctx.config_space, ctx.objectives, seed=ctx.seed, population_size=population_size,
                             crossover_prob=crossover_prob, mutation_prob=mutation_prob,
                             eta_crossover=eta_crossover, local_scale=local_scale,
                             points_to_evaluate=points_to_evaluate)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr,
                         objectives=ctx.objectives)


@method("MOREA",
        "Multi-objective regularized evolution: REA whose tournament winner is the sample's first by "
        "non-dominated sorting + eps-net (FIFO)",
        listed=("population_size", "sample_size", "tie_break"),
        multi_objective=True)
def _morea(
    ctx: MethodContext,
    *,
    population_size: int = 20,
    sample_size: int = 5,
    tie_break: Literal["eps_net", "crowding"] = "eps_net",
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """MOREA (single fidelity): FIFO + :class:`~tunebench.searchers.morea.MOREASearcher`."""
    assert ctx.objectives is not None  # (set by MethodContext itself)
    searcher = MOREASearcher(ctx.config_space, ctx.objectives, seed=ctx.seed, population_size=population_size,
                             sample_size=sample_size, points_to_evaluate=points_to_evaluate, tie_break=tie_break)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr,
                         objectives=ctx.objectives)
