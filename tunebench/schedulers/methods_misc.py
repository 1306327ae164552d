"""Registration of the evolutionary, density-ratio and progressive methods: ``REA``, ``BORE``
and ``PASHA``.

:func:`register` is called once at the end of :mod:`tunebench.schedulers`; it calls
``register_method(...)`` for each method of this module.  The searcher and scheduler modules
(and scikit-learn, which BORE uses) are imported inside the factories so that
``import tunebench.schedulers`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tunebench.errors import user_errors

if TYPE_CHECKING:  # pragma: no cover
    from tunebench.schedulers.base import Scheduler

__all__ = ["register"]


def _rea(
    config_space: dict[str, Any],
    *,
    metric: str,
    mode: str,
    resource_attr: str | None,
    max_resource_attr: str | None,
    max_t: int | None,
    seed: int,
    population_size: int = 10,
    sample_size: int = 5,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """Regularized evolution (single fidelity): FIFO + :class:`~tunebench.searchers.rea.REASearcher`."""
    from tunebench.schedulers.fifo import FIFOScheduler
    from tunebench.searchers.rea import REASearcher

    def build() -> Scheduler:
        searcher = REASearcher(config_space, metric, mode, seed=seed, population_size=population_size,
                               sample_size=sample_size, points_to_evaluate=points_to_evaluate)
        return FIFOScheduler(searcher, resource_attr=resource_attr, max_resource_attr=max_resource_attr)

    return user_errors(build)


def _bore(
    config_space: dict[str, Any],
    *,
    metric: str,
    mode: str,
    resource_attr: str | None,
    max_resource_attr: str | None,
    max_t: int | None,
    seed: int,
    gamma: float = 0.25,
    classifier: str = "gb",
    num_init_random: int = 10,
    random_fraction: float = 0.1,
    classifier_kwargs: dict[str, Any] | None = None,
    num_candidates: int = 256,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """BORE (single fidelity): FIFO + :class:`~tunebench.searchers.bore.BORESearcher`."""
    from tunebench.schedulers.fifo import FIFOScheduler
    from tunebench.searchers.bore import BORESearcher

    def build() -> Scheduler:
        searcher = BORESearcher(config_space, metric, mode, seed=seed, gamma=gamma, classifier=classifier,
                                num_init_random=num_init_random, random_fraction=random_fraction,
                                classifier_kwargs=classifier_kwargs, num_candidates=num_candidates,
                                points_to_evaluate=points_to_evaluate)
        return FIFOScheduler(searcher, resource_attr=resource_attr, max_resource_attr=max_resource_attr)

    return user_errors(build)


def _pasha(
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
    epsilon: float | str = "auto",
    epsilon_percentile: float = 90.0,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """PASHA + random search: :class:`~tunebench.schedulers.pasha.PASHA`."""
    from tunebench.schedulers.pasha import PASHA
    from tunebench.searchers.random import RandomSearcher

    def build() -> Scheduler:
        searcher = RandomSearcher(config_space, metric, mode, seed=seed, points_to_evaluate=points_to_evaluate)
        return PASHA(searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
                     reduction_factor=reduction_factor, rung_levels=rung_levels,
                     max_resource_attr=max_resource_attr, epsilon=epsilon, epsilon_percentile=epsilon_percentile)

    return user_errors(build)


def register(register_method: Callable[..., Any]) -> None:
    """Register ``REA``, ``BORE`` and ``PASHA`` with ``register_method`` (see
    :func:`tunebench.schedulers.register_method`)."""
    register_method(
        "REA",
        _rea,
        "Regularized evolution (Real et al. 2019): mutate the best of a random tournament of recent trials (FIFO)",
        {"population_size": 10, "sample_size": 5},
    )
    register_method(
        "BORE",
        _bore,
        "BO by density-ratio estimation (Tiao et al. 2021): a classifier of the top gamma picks the next config (FIFO)",
        {"gamma": 0.25, "classifier": "gb", "num_init_random": 10, "random_fraction": 0.1},
    )
    register_method(
        "PASHA",
        _pasha,
        "Progressive ASHA (Bohdal et al. 2023): promotion ASHA whose max resource grows while top rankings change"
        " + random search",
        {"grace_period": 1, "reduction_factor": 3, "epsilon": "auto"},
        multi_fidelity=True,
    )
