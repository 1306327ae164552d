"""The multi-fidelity model-based methods built on the GP searchers: ``HyperTune``, ``DyHPO``,
``SyncMOBSTER``; importing this module registers them (see :mod:`tunebench.schedulers.registry`).

Heavy imports (scipy, the GP, the schedulers built on them) stay inside the factories so that
``import tunebench.schedulers`` stays fast.

* ``HyperTune`` (Li et al. 2022): asynchronous Hyperband (stopping type by default,
  ``type="promotion"`` pauses and resumes) + :class:`tunebench.searchers.hypertune.HyperTuneSearcher`
  (GP over config and resource, per-level predictions combined with ranking-loss weights) and
  brackets drawn from the distribution those weights induce
  (:class:`tunebench.schedulers.hypertune.HyperTuneScheduler`).
* ``DyHPO`` (Wistuba et al. 2022): :class:`tunebench.schedulers.dyhpo.DyHPO`; trials advance
  one fidelity step per run, each decision resumes a paused trial or starts a new config by
  expected improvement at its next step (GP over config and log resource).
* ``SyncMOBSTER``: synchronous Hyperband (:class:`tunebench.schedulers.synchronous.SynchronousHyperband`)
  + MOBSTER's searcher (:class:`tunebench.searchers.gp.MOBSTERSearcher`).
"""

from __future__ import annotations

from typing import Any, Literal

from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.methods_model import GP_OPTIONS, GP_QUICK
from tunebench.schedulers.registry import MethodContext, method
from tunebench.schedulers.synchronous import SynchronousHyperband

__all__: list[str] = []


@method("HyperTune",
        "Hyper-Tune (Li et al. 2022): async Hyperband, GP per-level ensemble with ranking-loss weights, "
        "learned bracket distribution",
        listed=("grace_period", "reduction_factor", "type", "brackets"), multi_fidelity=True,
        quick_options=GP_QUICK, quick_trials=40)
def _hypertune_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    rung_levels: list[int] | None = None,
    type: Literal["stopping", "promotion"] = "stopping",
    brackets: int | Literal["all"] | None = "all",
    points_to_evaluate: list[dict[str, Any]] | None = None,
    num_init_random: int | None = None,
    min_level_points: int = 6,
    n_weight_samples: int = 50,
    max_test_points: int = 100,
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
    """HyperTuneScheduler + HyperTuneSearcher (see :mod:`tunebench.searchers.hypertune`)."""
    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    # deferred: scipy and the GP stay out of `import tunebench.schedulers`
    from tunebench.schedulers.hypertune import HyperTuneScheduler
    from tunebench.searchers.hypertune import HyperTuneSearcher

    # the searcher validates the ladder as the scheduler does (same rules, same messages)
    resource_attr, max_t = ctx.resource_and_max_t()
    searcher = HyperTuneSearcher(
        ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, resource_attr=resource_attr, max_t=max_t,
        grace_period=grace_period, reduction_factor=reduction_factor, rung_levels=rung_levels,
        points_to_evaluate=points_to_evaluate,
        num_init_random=num_init_random, min_level_points=min_level_points, n_weight_samples=n_weight_samples,
        max_test_points=max_test_points, **gp_options,
    )
    return HyperTuneScheduler(
        searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
        reduction_factor=reduction_factor, rung_levels=rung_levels, type=type,
        max_resource_attr=ctx.max_resource_attr, brackets=brackets,
        seed=None,  # derived from the searcher seed (independent stream)
    )


@method("DyHPO",
        "DyHPO (Wistuba et al. 2022): one fidelity step at a time; resume or start by EI at the next step (GP)",
        listed=("grace_period", "reduction_factor", "step"), multi_fidelity=True,
        quick_options=GP_QUICK, quick_trials=40)
def _dyhpo_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    step: int | None = None,
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
    """DyHPO (see :class:`tunebench.schedulers.dyhpo.DyHPO` for the options)."""
    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    from tunebench.schedulers.dyhpo import DyHPO  # deferred: scipy and the GP (import tunebench.schedulers)

    resource_attr, max_t = ctx.resource_and_max_t()
    return DyHPO(
        ctx.config_space, ctx.metric, ctx.mode, resource_attr=resource_attr,
        max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor, step=step,
        max_resource_attr=ctx.max_resource_attr, seed=ctx.seed, points_to_evaluate=points_to_evaluate,
        num_init_random=num_init_random, **gp_options,
    )


@method("SyncMOBSTER", "Synchronous Hyperband + MOBSTER's GP searcher (EI at a rung level over config and resource)",
        listed=("grace_period", "reduction_factor", "brackets"), multi_fidelity=True, synchronous=True,
        quick_options=GP_QUICK, quick_trials=40)
def _sync_mobster_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    brackets: int | Literal["all"] | None = "all",
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
    """SynchronousHyperband + MOBSTERSearcher (see :mod:`tunebench.searchers.gp`)."""
    options = dict(locals())
    gp_options = {k: options[k] for k in GP_OPTIONS}
    from tunebench.searchers.gp import MOBSTERSearcher  # deferred: scipy and the GP (import tunebench.schedulers)

    # the searcher validates the ladder as the scheduler does (same rules, same messages)
    resource_attr, max_t = ctx.resource_and_max_t()
    searcher = MOBSTERSearcher(
        ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, resource_attr=resource_attr, max_t=max_t,
        grace_period=grace_period, reduction_factor=reduction_factor,
        points_to_evaluate=points_to_evaluate, num_init_random=num_init_random, **gp_options,
    )
    return SynchronousHyperband(searcher, resource_attr=resource_attr,
                                max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor,
                                brackets=brackets, max_resource_attr=ctx.max_resource_attr)
