"""The population-based training methods ``PBT`` and ``PB2``; importing this module registers
them (see :mod:`tunebench.schedulers.registry`).

PB2's module imports the GP (scipy) at its top, so it is imported inside its factory: ``import
tunebench.schedulers`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.pbt import PBT
from tunebench.schedulers.registry import MethodContext, method

__all__: list[str] = []

#: a quick run (the contract suite): a population of 8 deciding every 3 epochs (of 27)
_QUICK = {"population_size": 8, "perturbation_interval": 3}


def _common(ctx: MethodContext) -> dict[str, Any]:
    resource_attr, max_t = ctx.resource_and_max_t()
    return {"resource_attr": resource_attr, "max_t": max_t, "max_resource_attr": ctx.max_resource_attr,
            "seed": ctx.seed}


@method("PBT", "Population-based training (Jaderberg et al. 2017): bottom trials copy top trials' checkpoints "
        "and perturb their configs at each interval", listed=("population_size", "perturbation_interval",
                                                              "quantile_fraction", "resample_probability"),
        multi_fidelity=True, population_based=True, quick_options=_QUICK, quick_trials=30)
def _pbt(
    ctx: MethodContext,
    *,
    population_size: int = 4,
    perturbation_interval: float | None = None,
    quantile_fraction: float = 0.25,
    resample_probability: float = 0.25,
    mutable: str | Sequence[str] | None = None,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """PBT: :class:`~tunebench.schedulers.pbt.PBT` (``mutable``: the hyperparameters it may
    change, e.g. ``--method-arg mutable=lr,momentum``; default all)."""
    return PBT(ctx.config_space, ctx.metric, ctx.mode, population_size=population_size,
               perturbation_interval=perturbation_interval, quantile_fraction=quantile_fraction,
               resample_probability=resample_probability, mutable=mutable, points_to_evaluate=points_to_evaluate,
               **_common(ctx))


@method("PB2", "Population-based bandits (Parker-Holder et al. 2020): PBT whose explore step is a time-varying "
        "GP-UCB over the last intervals' improvements", listed=("population_size", "perturbation_interval", "kappa"),
        multi_fidelity=True, population_based=True, quick_options={**_QUICK, "n_candidates": 32},
        quick_trials=30)
def _pb2(
    ctx: MethodContext,
    *,
    population_size: int = 4,
    perturbation_interval: float | None = None,
    quantile_fraction: float = 0.25,
    resample_probability: float = 0.25,
    mutable: str | Sequence[str] | None = None,
    kappa: float = 1.0,
    n_candidates: int = 256,
    window: int = 3,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """PB2: :class:`~tunebench.schedulers.pb2.PB2`."""
    from tunebench.schedulers.pb2 import PB2  # deferred: the GP imports scipy

    return PB2(ctx.config_space, ctx.metric, ctx.mode, population_size=population_size,
               perturbation_interval=perturbation_interval, quantile_fraction=quantile_fraction,
               resample_probability=resample_probability, mutable=mutable, points_to_evaluate=points_to_evaluate,
               kappa=kappa, n_candidates=n_candidates, window=window, **_common(ctx))
