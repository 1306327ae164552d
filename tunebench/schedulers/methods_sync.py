"""Registration of the synchronous Hyperband family and of the KDE-based and evolutionary
multi-fidelity methods: SyncHB, SyncSH, SyncBOHB, BOHB, DEHB.

:func:`register` is called once at the end of :mod:`tunebench.schedulers`; it calls
``register_method(...)`` for each method of this module.  The scheduler and searcher modules
(and scipy, through the KDE model) are imported inside the factories so that
``import tunebench.schedulers`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunebench.errors import UserError, user_errors
from tunebench.schedulers.base import Scheduler

#: options of the KDE searcher the BOHB factories accept (see tunebench.searchers.kde.KDESearcher)
_KDE_DEFAULTS: dict[str, Any] = {
    "gamma": 0.15,
    "random_fraction": 1.0 / 3.0,
    "n_candidates": 64,
    "bandwidth_factor": 3.0,
    "min_points": None,
}


def _random_searcher(config_space: dict[str, Any], metric: str, mode: str, seed: int,
                     points_to_evaluate: list[dict[str, Any]] | None) -> Any:
    from tunebench.searchers.random import RandomSearcher

    return RandomSearcher(config_space, metric, mode, seed=seed, points_to_evaluate=points_to_evaluate)


def _kde_searcher(config_space: dict[str, Any], metric: str, mode: str, seed: int, resource_attr: str | None,
                  points_to_evaluate: list[dict[str, Any]] | None, kde: dict[str, Any]) -> Any:
    from tunebench.searchers.kde import KDESearcher

    return KDESearcher(config_space, metric, mode, seed=seed, resource_attr=resource_attr,
                       points_to_evaluate=points_to_evaluate, **kde)


def _sync_factory(searcher_kind: str, one_bracket: bool) -> Callable[..., Scheduler]:
    def factory(
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
        brackets: int | str | None = 1 if one_bracket else "all",
        points_to_evaluate: list[dict[str, Any]] | None = None,
        gamma: float = _KDE_DEFAULTS["gamma"],
        random_fraction: float = _KDE_DEFAULTS["random_fraction"],
        n_candidates: int = _KDE_DEFAULTS["n_candidates"],
        bandwidth_factor: float = _KDE_DEFAULTS["bandwidth_factor"],
        min_points: int | None = _KDE_DEFAULTS["min_points"],
    ) -> Scheduler:
        from tunebench.schedulers.synchronous import SynchronousHyperband

        def build() -> Scheduler:
            if searcher_kind == "kde":
                kde = {"gamma": gamma, "random_fraction": random_fraction, "n_candidates": n_candidates,
                       "bandwidth_factor": bandwidth_factor, "min_points": min_points}
                searcher = _kde_searcher(config_space, metric, mode, seed, resource_attr, points_to_evaluate, kde)
            else:
                searcher = _random_searcher(config_space, metric, mode, seed, points_to_evaluate)
            return SynchronousHyperband(
                searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
                reduction_factor=reduction_factor, brackets=1 if one_bracket else brackets,  # type: ignore[arg-type]
                max_resource_attr=max_resource_attr,
            )

        if one_bracket and brackets != 1:
            raise UserError(f"SyncSH runs one bracket; got brackets={brackets!r} (use SyncHB for several)")
        return user_errors(build)

    return factory


def _bohb(
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
    brackets: int | str | None = "all",
    type: str = "stopping",
    rung_levels: list[int] | None = None,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    gamma: float = _KDE_DEFAULTS["gamma"],
    random_fraction: float = _KDE_DEFAULTS["random_fraction"],
    n_candidates: int = _KDE_DEFAULTS["n_candidates"],
    bandwidth_factor: float = _KDE_DEFAULTS["bandwidth_factor"],
    min_points: int | None = _KDE_DEFAULTS["min_points"],
) -> Scheduler:
    from tunebench.schedulers.asha import HyperbandScheduler

    def build() -> Scheduler:
        kde = {"gamma": gamma, "random_fraction": random_fraction, "n_candidates": n_candidates,
               "bandwidth_factor": bandwidth_factor, "min_points": min_points}
        searcher = _kde_searcher(config_space, metric, mode, seed, resource_attr, points_to_evaluate, kde)
        return HyperbandScheduler(
            searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
            reduction_factor=reduction_factor, rung_levels=rung_levels, type=type,  # type: ignore[arg-type]
            max_resource_attr=max_resource_attr, brackets=brackets,  # type: ignore[arg-type]
            seed=None,  # derived from the searcher seed (independent stream)
        )

    return user_errors(build)


def _dehb(
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
    brackets: int | str | None = "all",
    mutation_factor: float = 0.5,
    crossover_prob: float = 0.5,
) -> Scheduler:
    from tunebench.schedulers.dehb import DEHB

    return user_errors(lambda: DEHB(
        config_space, metric, mode, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
        reduction_factor=reduction_factor, brackets=brackets, max_resource_attr=max_resource_attr,  # type: ignore[arg-type]
        mutation_factor=mutation_factor, crossover_prob=crossover_prob, seed=seed,
    ))


def register(register_method: Callable[..., Any]) -> None:
    """Register this module's methods with ``register_method`` (see :func:`tunebench.schedulers.register_method`)."""
    register_method(
        "SyncHB",
        _sync_factory("random", one_bracket=False),
        "Synchronous Hyperband (Li et al. 2018): SH brackets in turn, rungs wait for all their trials + random search",
        {"grace_period": 1, "reduction_factor": 3, "brackets": "all"},
        multi_fidelity=True,
        synchronous=True,
    )
    register_method(
        "SyncSH",
        _sync_factory("random", one_bracket=True),
        "Synchronous successive halving: the most aggressive Hyperband bracket, repeated + random search",
        {"grace_period": 1, "reduction_factor": 3},
        multi_fidelity=True,
        synchronous=True,
    )
    register_method(
        "SyncBOHB",
        _sync_factory("kde", one_bracket=False),
        "BOHB as published (Falkner et al. 2018): synchronous Hyperband + TPE-style KDE searcher",
        {"grace_period": 1, "reduction_factor": 3, "brackets": "all"},
        multi_fidelity=True,
        synchronous=True,
    )
    register_method(
        "BOHB",
        _bohb,
        "Asynchronous Hyperband (stopping type) + TPE-style KDE searcher of BOHB",
        {"grace_period": 1, "reduction_factor": 3, "brackets": "all", "type": "stopping"},
        multi_fidelity=True,
    )
    register_method(
        "DEHB",
        _dehb,
        "DEHB (Awad et al. 2021): differential evolution on per-level subpopulations in synchronous Hyperband",
        {"grace_period": 1, "reduction_factor": 3, "brackets": "all", "mutation_factor": 0.5, "crossover_prob": 0.5},
        multi_fidelity=True,
        synchronous=True,
    )
