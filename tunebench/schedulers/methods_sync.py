"""The synchronous Hyperband family and the KDE-based and evolutionary multi-fidelity methods:
``SyncHB``, ``SyncSH``, ``SyncBOHB``, ``BOHB``, ``DEHB``; importing this module registers them
(see :mod:`tunebench.schedulers.registry`).

The KDE searcher (scipy) is imported inside the factory so that
``import tunebench.schedulers`` stays fast. The KDE-based methods (``SyncBOHB``, ``BOHB``) take the
options of :data:`KDE_OPTIONS`; their defaults are those of
:class:`~tunebench.searchers.kde.KDESearcher`'s signature (the factories' ``None`` leaves them).
"""

from __future__ import annotations

from typing import Any, Literal

from tunebench.errors import UserError
from tunebench.schedulers.asha import HyperbandScheduler
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.dehb import DEHB
from tunebench.schedulers.registry import MethodContext, SchedulerFactory, method
from tunebench.schedulers.synchronous import SynchronousHyperband
from tunebench.searchers.random import RandomSearcher

__all__ = ["KDE_OPTIONS"]

#: options of the KDE searcher that the KDE-based methods pass through (see ``KDESearcher``); in
#: the factories' signatures their default is ``None``: KDESearcher's own default (its one owner)
KDE_OPTIONS = ("gamma", "random_fraction", "n_candidates", "bandwidth_factor", "min_points")


def _kde_searcher(ctx: MethodContext, points_to_evaluate: list[dict[str, Any]] | None,
                  options: dict[str, Any]) -> Any:
    """KDESearcher with the KDE options of ``options`` that are not ``None``."""
    from tunebench.searchers.kde import KDESearcher  # deferred: scipy (import tunebench.schedulers)

    kde = {k: options[k] for k in KDE_OPTIONS if options[k] is not None}
    return KDESearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, resource_attr=ctx.resource_attr,
                       points_to_evaluate=points_to_evaluate, **kde)


def _sync_factory(searcher_kind: str, one_bracket: bool) -> SchedulerFactory:
    def factory(
        ctx: MethodContext,
        *,
        grace_period: int = 1,
        reduction_factor: float = 3,
        brackets: int | Literal["all"] | None = 1 if one_bracket else "all",
        points_to_evaluate: list[dict[str, Any]] | None = None,
        gamma: float | None = None,
        random_fraction: float | None = None,
        n_candidates: int | None = None,
        bandwidth_factor: float | None = None,
        min_points: int | None = None,
    ) -> Scheduler:
        if one_bracket and brackets != 1:
            raise UserError(f"SyncSH runs one bracket; got brackets={brackets!r} (use SyncHB for several)")
        if searcher_kind == "kde":
            searcher = _kde_searcher(ctx, points_to_evaluate, locals())
        else:
            searcher = RandomSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                                      points_to_evaluate=points_to_evaluate)
        resource_attr, max_t = ctx.resource_and_max_t()
        return SynchronousHyperband(
            searcher, resource_attr=resource_attr, max_t=max_t,
            grace_period=grace_period, reduction_factor=reduction_factor, brackets=brackets,
            max_resource_attr=ctx.max_resource_attr,
        )

    return factory


method(
    "SyncHB",
    "Synchronous Hyperband (Li et al. 2018): SH brackets in turn, rungs wait for all their trials + random search",
    listed=("grace_period", "reduction_factor", "brackets"),
    multi_fidelity=True,
    synchronous=True,
)(_sync_factory("random", one_bracket=False))
method(
    "SyncSH",
    "Synchronous successive halving: the most aggressive Hyperband bracket, repeated + random search",
    listed=("grace_period", "reduction_factor"),
    multi_fidelity=True,
    synchronous=True,
)(_sync_factory("random", one_bracket=True))
method(
    "SyncBOHB",
    "BOHB as published (Falkner et al. 2018): synchronous Hyperband + TPE-style KDE searcher",
    listed=("grace_period", "reduction_factor", "brackets"),
    multi_fidelity=True,
    synchronous=True,
)(_sync_factory("kde", one_bracket=False))


@method("BOHB", "Asynchronous Hyperband (stopping type) + TPE-style KDE searcher of BOHB",
        listed=("grace_period", "reduction_factor", "brackets", "type"), multi_fidelity=True)
def _bohb(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    brackets: int | Literal["all"] | None = "all",
    type: Literal["stopping", "promotion"] = "stopping",
    rung_levels: list[int] | None = None,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    gamma: float | None = None,
    random_fraction: float | None = None,
    n_candidates: int | None = None,
    bandwidth_factor: float | None = None,
    min_points: int | None = None,
) -> Scheduler:
    searcher = _kde_searcher(ctx, points_to_evaluate, locals())
    resource_attr, max_t = ctx.resource_and_max_t()
    return HyperbandScheduler(
        searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
        reduction_factor=reduction_factor, rung_levels=rung_levels, type=type,
        max_resource_attr=ctx.max_resource_attr, brackets=brackets,
        seed=None,  # derived from the searcher seed (independent stream)
    )


@method("DEHB", "DEHB (Awad et al. 2021): differential evolution on per-level subpopulations in synchronous "
        "Hyperband", listed=("grace_period", "reduction_factor", "brackets", "mutation_factor", "crossover_prob"),
        multi_fidelity=True, synchronous=True)
def _dehb(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    brackets: int | Literal["all"] | None = "all",
    mutation_factor: float = 0.5,
    crossover_prob: float = 0.5,
) -> Scheduler:
    resource_attr, max_t = ctx.resource_and_max_t()
    return DEHB(
        ctx.config_space, ctx.metric, ctx.mode, resource_attr=resource_attr,
        max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor,
        brackets=brackets, max_resource_attr=ctx.max_resource_attr,
        mutation_factor=mutation_factor, crossover_prob=crossover_prob, seed=ctx.seed,
    )
