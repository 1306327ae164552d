"""The basic methods: random search, grid search, ASHA (stopping and promotion types),
asynchronous Hyperband and ASHA with learning-curve extrapolation stopping: ``RS``, ``Grid``,
``ASHA``, ``ASHA-promotion``, ``HB``, ``ASHA-LCE``.

Importing this module registers them (see :mod:`tunebench.schedulers.registry`).
"""

from __future__ import annotations

from typing import Any, Literal

from tunebench.schedulers.asha import ASHA
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.registry import MethodContext, SchedulerFactory, method
from tunebench.searchers import GridSearcher, RandomSearcher

__all__: list[str] = []


# random and grid search ignore the metrics: given several, they are the baselines of the
# multi-objective methods (results must carry every metric; the run ends with its Pareto front)
@method("RS", "Random search: every trial runs to the end (FIFO); any number of metrics", multi_objective=True)
def _random_search(ctx: MethodContext, *, points_to_evaluate: list[dict[str, Any]] | None = None) -> Scheduler:
    searcher = RandomSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                              points_to_evaluate=points_to_evaluate)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr,
                         objectives=ctx.objectives)


@method("Grid", "Grid search over the space, then stop; any number of metrics", listed=("n_points", "shuffle"),
        quick_options={"n_points": 2}, multi_objective=True)  # a small grid: it runs out and suggest() answers None
def _grid_search(ctx: MethodContext, *, n_points: int = 5, shuffle: bool = False) -> Scheduler:
    searcher = GridSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, n_points=n_points, shuffle=shuffle)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr,
                         objectives=ctx.objectives)


def _asha_factory(type: Literal["stopping", "promotion"], hyperband: bool) -> SchedulerFactory:
    def factory(
        ctx: MethodContext,
        *,
        grace_period: int = 1,
        reduction_factor: float = 3,
        rung_levels: list[int] | None = None,
        brackets: int | Literal["all"] | None = "all" if hyperband else 1,
        points_to_evaluate: list[dict[str, Any]] | None = None,
    ) -> Scheduler:
        resource_attr, max_t = ctx.resource_and_max_t()
        searcher = RandomSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                                  points_to_evaluate=points_to_evaluate)
        return ASHA(
            searcher,
            resource_attr=resource_attr,
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            rung_levels=rung_levels,
            type=type,
            max_resource_attr=ctx.max_resource_attr,
            brackets=brackets,
            seed=None,  # derived from the searcher seed (independent stream)
        )

    return factory


method(
    "ASHA",
    "Asynchronous successive halving, stopping type (Li et al. 2020) + random search",
    listed=("grace_period", "reduction_factor"),
    multi_fidelity=True,
)(_asha_factory("stopping", False))
method(
    "ASHA-promotion",
    "ASHA, promotion type: pause at rungs, resume the best (needs checkpoints) + random search",
    listed=("grace_period", "reduction_factor"),
    multi_fidelity=True,
)(_asha_factory("promotion", False))
method(
    "HB",
    "Asynchronous Hyperband (ASHA over brackets, stopping type) + random search",
    listed=("grace_period", "reduction_factor", "brackets"),
    multi_fidelity=True,
)(_asha_factory("stopping", True))


@method("ASHA-LCE",
        "ASHA (stopping type) + random search whose rung decisions also stop a trial whose power-law "
        "extrapolated curve is unlikely (P < p) to beat the quantile of the finished trials at max_t",
        listed=("grace_period", "reduction_factor", "p", "quantile"), multi_fidelity=True,
        quick_options={"min_finished": 1})
def _asha_lce_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    rung_levels: list[int] | None = None,
    brackets: int | Literal["all"] | None = 1,
    p: float = 0.05,
    quantile: float = 0.25,
    min_finished: int = 3,
    min_points: int = 3,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """ASHALCE + random search (see :class:`tunebench.schedulers.asha_lce.ASHALCE` for the options)."""
    from tunebench.schedulers.asha_lce import ASHALCE  # deferred: scipy (import tunebench.schedulers)

    resource_attr, max_t = ctx.resource_and_max_t()
    searcher = RandomSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                              points_to_evaluate=points_to_evaluate)
    return ASHALCE(searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
                   reduction_factor=reduction_factor, rung_levels=rung_levels,
                   max_resource_attr=ctx.max_resource_attr, brackets=brackets, seed=None, p=p, quantile=quantile,
                   min_finished=min_finished, min_points=min_points)
