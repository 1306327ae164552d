"""Registrations of the multi-objective methods (L1): MOASHA (see :mod:`tunebench.schedulers.registry`)."""

from __future__ import annotations

from typing import Any, Literal

from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.moasha import MOASHA
from tunebench.schedulers.registry import MethodContext, SchedulerFactory, method
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
