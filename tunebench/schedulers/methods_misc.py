"""The evolutionary, density-ratio and progressive methods ``REA``, ``BORE`` and ``PASHA``;
importing this module registers them (see :mod:`tunebench.schedulers.registry`).

BORE's searcher module imports scikit-learn only when it builds a classifier, so that
``import tunebench.schedulers`` stays fast.
"""

from __future__ import annotations

from typing import Any

from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.pasha import PASHA
from tunebench.schedulers.registry import MethodContext, method
from tunebench.searchers.bore import BORESearcher
from tunebench.searchers.random import RandomSearcher
from tunebench.searchers.rea import REASearcher

__all__: list[str] = []


@method("REA",
        "Regularized evolution (Real et al. 2019): mutate the best of a random tournament of recent trials (FIFO)",
        listed=("population_size", "sample_size"))
def _rea(
    ctx: MethodContext,
    *,
    population_size: int = 10,
    sample_size: int = 5,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """Regularized evolution (single fidelity): FIFO + :class:`~tunebench.searchers.rea.REASearcher`."""
    searcher = REASearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, population_size=population_size,
                           sample_size=sample_size, points_to_evaluate=points_to_evaluate)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr)


#: BORE fits a classifier per suggestion early on: fewer trials and boosting stages keep a quick
#: run quick (the API is the same)
@method("BORE",
        "BO by density-ratio estimation (Tiao et al. 2021): a classifier of the top gamma picks the next config "
        "(FIFO)", listed=("gamma", "classifier", "num_init_random", "random_fraction"),
        quick_options={"classifier_kwargs": {"n_estimators": 10}}, quick_trials=30)
def _bore(
    ctx: MethodContext,
    *,
    gamma: float = 0.25,
    classifier: str = "gb",
    num_init_random: int = 10,
    random_fraction: float = 0.1,
    classifier_kwargs: dict[str, Any] | None = None,
    num_candidates: int = 256,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """BORE (single fidelity): FIFO + :class:`~tunebench.searchers.bore.BORESearcher`."""
    searcher = BORESearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, gamma=gamma,
                            classifier=classifier, num_init_random=num_init_random,
                            random_fraction=random_fraction, classifier_kwargs=classifier_kwargs,
                            num_candidates=num_candidates, points_to_evaluate=points_to_evaluate)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr)


@method("PASHA",
        "Progressive ASHA (Bohdal et al. 2023): promotion ASHA whose max resource grows while top rankings change"
        " + random search", listed=("grace_period", "reduction_factor", "epsilon"), multi_fidelity=True)
def _pasha(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    rung_levels: list[int] | None = None,
    epsilon: float | str = "auto",
    epsilon_percentile: float = 90.0,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """PASHA + random search: :class:`~tunebench.schedulers.pasha.PASHA`."""
    resource_attr, max_t = ctx.resource_and_max_t()
    searcher = RandomSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                              points_to_evaluate=points_to_evaluate)
    return PASHA(searcher, resource_attr=resource_attr, max_t=max_t,
                 grace_period=grace_period, reduction_factor=reduction_factor, rung_levels=rung_levels,
                 max_resource_attr=ctx.max_resource_attr, epsilon=epsilon, epsilon_percentile=epsilon_percentile)
