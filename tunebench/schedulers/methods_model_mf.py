"""The multi-fidelity model-based methods: ``HyperTune``, ``DyHPO``, ``SyncMOBSTER`` (built on the
GP searchers), ``FTBO`` (a learning-curve surrogate) and its baselines ``FreezeThawGP`` (FTBO over
the freeze-thaw GP) and ``OneEpochTopK`` (screen at one epoch, train the top K); importing this
module registers them
(see :mod:`tunebench.schedulers.registry`).

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
* ``FTBO`` (after ifBO, Rakotoarison et al. 2024): :class:`tunebench.schedulers.ftbo.FTBO`; the same
  race as DyHPO, each decision resumes a paused trial or starts a new config by MFPI-random (the
  probability of beating a random threshold at a random horizon) under a learning-curve surrogate
  (``surrogate="dpl"``: an ensemble of deep power laws; ``"gp"``: the freeze-thaw GP; ``"pfn"``:
  not available yet).
* ``FreezeThawGP`` (Swersky et al. 2014): ``FTBO`` with ``surrogate="gp"``
  (:class:`tunebench.models.ftgp.FreezeThawGPSurrogate`).
* ``OneEpochTopK`` (Egele et al. 2023): :class:`tunebench.schedulers.one_epoch.OneEpochTopK`.
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
    step: int | str | None = None,
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


#: options that keep FTBO's tests and quick runs small (a smaller ensemble, fewer epochs)
FTBO_QUICK: dict[str, Any] = {"n_members": 3, "hidden": 16, "epochs": 40, "refine_epochs": 5, "max_context": 96,
                              "n_candidates": 32, "max_steps": 2}


@method("FTBO",
        "Freeze-thaw BO (after ifBO, 2024): one fidelity step at a time; resume or start by MFPI-random under a "
        "learning-curve surrogate (dpl: deep power-law ensemble; gp: the freeze-thaw GP; pfn: the shipped PFN)",
        listed=("grace_period", "reduction_factor", "step", "surrogate"), multi_fidelity=True,
        quick_options=FTBO_QUICK, quick_trials=40)
def _ftbo_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    step: int | str | None = "auto",
    surrogate: Literal["dpl", "gp", "pfn"] = "dpl",
    points_to_evaluate: list[dict[str, Any]] | None = None,
    num_init_random: int | None = None,
    max_context: int = 256,
    n_members: int = 5,
    hidden: int = 32,
    epochs: int = 250,
    refine_epochs: int = 10,
    batch_size: int = 256,
    refit_factor: float = 1.5,
    n_candidates: int = 128,
    n_starts: int = 2,
    max_steps: int = 4,
    acquisition_noise: bool = True,
    horizon: Literal["relative", "common"] = "relative",
    incumbent: Literal["global", "level"] = "global",
    acquisition: Literal["mfpi-random", "ei"] = "mfpi-random",
    new_config: Literal["gp", "acquisition"] = "gp",
    config_inputs: Literal["auto", "config", "gp"] = "auto",
    pfn_weights: str | None = None,
    value_bounds: tuple[float, float] | None = None,
    blas_threads: int | None = 1,
) -> Scheduler:
    """FTBO (see :class:`tunebench.schedulers.ftbo.FTBO` for the options)."""
    options = dict(locals())
    del options["ctx"]
    from tunebench.schedulers.ftbo import FTBO  # deferred: scipy (import tunebench.schedulers)

    resource_attr, max_t = ctx.resource_and_max_t()
    return FTBO(ctx.config_space, ctx.metric, ctx.mode, resource_attr=resource_attr, max_t=max_t,
                max_resource_attr=ctx.max_resource_attr, seed=ctx.seed, **options)


@method("FreezeThawGP",
        "Freeze-thaw BO (Swersky et al. 2014) with our GP: Matern over the config plus an exponential-decay kernel "
        "over the fidelity within a curve; FTBO's race and MFPI-random (FTBO with surrogate=gp)",
        listed=("grace_period", "reduction_factor", "step"), multi_fidelity=True,
        quick_options={"max_context": 96, "n_candidates": 32, "max_steps": 2}, quick_trials=40)
def _freeze_thaw_gp_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    step: int | str | None = "auto",
    points_to_evaluate: list[dict[str, Any]] | None = None,
    num_init_random: int | None = None,
    max_context: int = 256,
    refit_factor: float = 1.5,
    n_candidates: int = 128,
    n_starts: int = 2,
    max_steps: int = 4,
    acquisition_noise: bool = True,
    horizon: Literal["relative", "common"] = "relative",
    incumbent: Literal["global", "level"] = "global",
    acquisition: Literal["mfpi-random", "ei"] = "mfpi-random",
    new_config: Literal["gp", "acquisition"] = "gp",
    blas_threads: int | None = 1,
) -> Scheduler:
    """FTBO with ``surrogate="gp"`` (see :class:`tunebench.schedulers.ftbo.FTBO` for the options)."""
    options = dict(locals())
    del options["ctx"]
    return _ftbo_factory(ctx, surrogate="gp", **options)


@method("OneEpochTopK",
        "One-epoch baseline (Egele et al. 2023): screen n_configs random configs at the first step (one epoch), "
        "then train the top k to max_t from their checkpoints; repeated (rounds)",
        listed=("grace_period", "n_configs", "k", "rounds"), multi_fidelity=True,
        quick_options={"n_configs": 10, "k": 2}, quick_trials=40)
def _one_epoch_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    n_configs: int = 100,
    k: int = 3,
    rounds: int | None = None,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    """OneEpochTopK (see :class:`tunebench.schedulers.one_epoch.OneEpochTopK` for the options)."""
    from tunebench.schedulers.one_epoch import OneEpochTopK

    resource_attr, max_t = ctx.resource_and_max_t()
    return OneEpochTopK(
        ctx.config_space, ctx.metric, ctx.mode, resource_attr=resource_attr, max_t=max_t,
        grace_period=grace_period, n_configs=n_configs, k=k, rounds=rounds, max_resource_attr=ctx.max_resource_attr,
        seed=ctx.seed, points_to_evaluate=points_to_evaluate,
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
