"""The methods that use a user prior (``--prior FILE``, :class:`tunebench.space.Prior`):
``PiBO``, ``PiBO-MOBSTER``, ``PriorBand``; importing this module registers them (see
:mod:`tunebench.schedulers.registry`). Each is registered with ``needs_prior=True`` and refuses
to run without a prior.

* ``PiBO`` / ``PiBO-MOBSTER`` (Hvarfner et al. 2022): ``BO`` / ``MOBSTER`` whose GP searcher
  weights expected improvement by ``prior(x) ** (beta / n)`` and draws its initial design from
  the prior (:meth:`tunebench.searchers.gp.GPSearcher.use_prior`). They are methods of their
  own, not a ``prior=`` option of BO and MOBSTER, so that one grid with one ``--prior`` runs a
  prior-free method beside its prior-weighted twin (the comparison of
  ``benchmarks/priors_quality.py``), and so that ``BO`` keeps meaning the same thing whether
  or not a prior was passed. Their options are those of BO / MOBSTER plus ``prior_beta``.
* ``PriorBand`` (Mallik et al. 2023): synchronous Hyperband, new configs from the prior, the
  incumbent or uniformly (:mod:`tunebench.searchers.priorband`); the prior's mode first, run to
  ``max_t`` outside the brackets (``prior_at_target``, :mod:`tunebench.schedulers.priorband`).

Heavy imports (scipy, the GP) stay inside the factories so that ``import tunebench.schedulers``
stays fast.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from tunebench.fidelity import FidelityLadder
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.methods_model import GP_QUICK, _bo_factory, _mobster_factory
from tunebench.schedulers.registry import MethodContext, SchedulerFactory, method

__all__ = ["PIBO_BETA"]

#: piBO's default ``beta`` (Hvarfner et al. 2022 use 10)
PIBO_BETA = 10.0


def _with_prior(name: str, base: SchedulerFactory) -> SchedulerFactory:
    """The factory of ``base`` (BO or MOBSTER) whose GP searcher uses ``ctx.prior`` (piBO);
    its signature is ``base``'s plus ``prior_beta``, so the registry lists and checks the same
    options."""

    def factory(ctx: MethodContext, *, prior_beta: float = PIBO_BETA, **options: Any) -> Scheduler:
        prior = ctx.require_prior(name)
        scheduler = base(ctx, **options)
        scheduler.searcher.use_prior(prior, prior_beta)  # type: ignore[attr-defined]  # a GP searcher
        return scheduler

    signature = inspect.signature(base)
    beta = inspect.Parameter("prior_beta", inspect.Parameter.KEYWORD_ONLY, default=PIBO_BETA, annotation=float)
    factory.__signature__ = signature.replace(  # type: ignore[attr-defined]  # read by inspect.signature
        parameters=[*signature.parameters.values(), beta])
    factory.__doc__ = f"{name}: the factory of {base.__name__} + a prior on the acquisition (piBO)."
    return factory


method("PiBO", "piBO (Hvarfner et al. 2022): BO with EI times prior(x)^(beta/n), initial design from the prior",
       listed=("prior_beta",), quick_options=GP_QUICK, quick_trials=40,
       needs_prior=True)(_with_prior("PiBO", _bo_factory))
method("PiBO-MOBSTER", "piBO on MOBSTER: ASHA + GP, EI at a rung level times prior(x)^(beta/n)",
       listed=("grace_period", "reduction_factor", "prior_beta"), multi_fidelity=True,
       quick_options=GP_QUICK, quick_trials=40,
       needs_prior=True)(_with_prior("PiBO-MOBSTER", _mobster_factory))


@method("PriorBand",
        "PriorBand (Mallik et al. 2023): synchronous Hyperband, new configs from the prior, the incumbent "
        "or uniformly",
        listed=("grace_period", "reduction_factor", "brackets"), multi_fidelity=True, synchronous=True,
        needs_prior=True)
def _priorband_factory(
    ctx: MethodContext,
    *,
    grace_period: int = 1,
    reduction_factor: float = 3,
    brackets: int | Literal["all"] | None = "all",
    mutation_rate: float = 0.5,
    mutation_std: float = 0.25,
    prior_first: bool = True,
    prior_at_target: bool = True,
) -> Scheduler:
    """PriorBandScheduler + PriorBandSearcher (see :mod:`tunebench.searchers.priorband`).
    ``prior_first``: the first config is the prior's mode; ``prior_at_target`` (with
    ``prior_first``): that config runs straight to ``max_t`` outside the brackets (NePS's
    ``PriorBand`` defaults: ``sample_default_first`` and ``sample_default_at_target``)."""
    # deferred: the prior's numpy/scipy side stays out of `import tunebench.schedulers`
    from tunebench.schedulers.priorband import PriorBandScheduler
    from tunebench.searchers.priorband import PriorBandSearcher

    prior = ctx.require_prior("PriorBand")
    resource_attr, max_t = ctx.resource_and_max_t()
    # the ladder of the scheduler (same validation, same messages): the searcher takes its levels
    ladder = FidelityLadder.geometric(max_t, grace_period, reduction_factor, brackets=brackets)
    searcher = PriorBandSearcher(
        ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, prior=prior, resource_attr=resource_attr,
        levels=ladder.levels, reduction_factor=reduction_factor, bracket0_sizes=ladder.bracket_sizes()[0],
        mutation_rate=mutation_rate, mutation_std=mutation_std, prior_first=prior_first,
    )
    return PriorBandScheduler(searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
                              reduction_factor=reduction_factor, brackets=brackets,
                              max_resource_attr=ctx.max_resource_attr,
                              prior_at_target=prior_at_target and prior_first)
