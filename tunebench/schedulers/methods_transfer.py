"""Registrations of the transfer methods (L1): ``ZeroShot``, ``BoundingBox``, ``CTS`` and
``ASHA-CTS`` (see :mod:`tunebench.schedulers.registry` and :mod:`tunebench.searchers.transfer`).

Each learns from the results of earlier tasks tuned on the same config space,
``MethodContext.transfer`` (``--transfer-from PATH|TAG ...`` on the command line,
``transfer_from=[...]`` in :func:`tunebench.tune`; loaded by
:func:`tunebench.analysis.transfer.load_transfer_tasks`), and refuses in one line without them.

* ``ZeroShot``: FIFO + :class:`~tunebench.searchers.transfer.ZeroShotSearcher` (a greedy portfolio
  of the source configurations best across the source tasks, then random configurations).
* ``BoundingBox``: the method ``base`` (default ``BO``; any registered single-objective method, its
  options in ``base_options``) run on the space shrunk to the box of the source tasks' top
  ``top_fraction`` (default 10 %, at least one per task) configurations
  (:func:`~tunebench.searchers.transfer.bounding_box`).
* ``CTS``: FIFO + :class:`~tunebench.searchers.transfer.CTSSearcher` (Thompson sampling from a GP
  over the source tasks' Gaussian quantiles, the target's residuals modelled once it has results).
* ``ASHA-CTS``: ASHA (stopping type) whose searcher is ``CTS``'s.

The searchers (scipy, the GP) are imported inside the factories, so that ``import
tunebench.schedulers`` stays fast.
"""

from __future__ import annotations

from typing import Any, Literal

from tunebench.errors import UserError
from tunebench.schedulers.asha import ASHA
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.registry import MethodContext, make_scheduler, method
from tunebench.types import TransferTask

__all__: list[str] = []

#: a quick run of CTS (the contract suite): a small prior and few candidates
_CTS_QUICK: dict[str, Any] = {"max_source_points": 60, "n_candidates": 48, "max_target_points": 30}


def _transfer_of(ctx: MethodContext, name: str) -> tuple[TransferTask, ...]:
    """``ctx.transfer``, which a transfer method needs.

    Raises:
        UserError: there is none (the message names the option to pass).
    """
    if not ctx.transfer:
        raise UserError(f"method {name!r} learns from earlier tasks and got none: pass --transfer-from PATH|TAG "
                        "(experiment folders or grid tags of other tasks with the same config space; "
                        "transfer_from=[...] in Python)")
    return ctx.transfer


@method("ZeroShot", "Zero-shot transfer: a greedy portfolio of the configs best across earlier tasks, then random "
        "(FIFO); needs --transfer-from", listed=("portfolio_size",), quick_trials=40, transfer=True)
def _zero_shot_factory(ctx: MethodContext, *, portfolio_size: int = 100, max_model_points: int = 200,
                       blas_threads: int | None = 1) -> Scheduler:
    """FIFO + ZeroShotSearcher (see :class:`tunebench.searchers.transfer.ZeroShotSearcher`)."""
    from tunebench.searchers.transfer import ZeroShotSearcher  # deferred: scipy and the GP

    searcher = ZeroShotSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                                transfer=_transfer_of(ctx, "ZeroShot"), portfolio_size=portfolio_size,
                                max_model_points=max_model_points, blas_threads=blas_threads)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr)


@method("BoundingBox", "A method (base, default BO) on the space shrunk to the box of earlier tasks' top configs; "
        "needs --transfer-from", listed=("base", "top_fraction"), quick_options={"base": "RS"}, quick_trials=40,
        transfer=True)
def _bounding_box_factory(ctx: MethodContext, *, base: str = "BO", top_fraction: float = 0.1,
                          base_options: dict[str, Any] | None = None) -> Scheduler:
    """The method ``base`` with ``base_options`` on :func:`tunebench.searchers.transfer.bounding_box`
    of the space (the top ``top_fraction`` of each source task, at least one config each)."""
    from tunebench.searchers.transfer import bounding_box  # deferred: scipy and the GP

    box = bounding_box(ctx.config_space, _transfer_of(ctx, "BoundingBox"), top_fraction)
    if not isinstance(base, str) or base.lower() == "boundingbox":
        raise ValueError(f"base must name another registered method (e.g. BO or RS), got {base!r}")
    assert ctx.objectives is not None  # set by MethodContext
    return make_scheduler(base, box, metric=list(ctx.objectives.metrics), mode=list(ctx.objectives.modes),
                          resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr, max_t=ctx.max_t,
                          seed=ctx.seed, constraints=ctx.constraints, **(base_options or {}))


@method("CTS", "Quantile-based transfer: Thompson sampling from a GP over earlier tasks' Gaussian quantiles, target "
        "residuals modelled (Salinas et al. 2020), FIFO; needs --transfer-from", listed=("max_source_points",),
        quick_options=_CTS_QUICK, quick_trials=40, transfer=True)
def _cts_factory(ctx: MethodContext, *, points_to_evaluate: list[dict[str, Any]] | None = None,
                 max_source_points: int = 300, min_target_points: int = 3, max_target_points: int = 100,
                 source_candidates: int = 3, n_candidates: int = 200, blas_threads: int | None = 1) -> Scheduler:
    """FIFO + CTSSearcher (see :class:`tunebench.searchers.transfer.CTSSearcher` for the options)."""
    options = {k: v for k, v in locals().items() if k != "ctx"}
    from tunebench.searchers.transfer import CTSSearcher  # deferred: scipy and the GP

    searcher = CTSSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, transfer=_transfer_of(ctx, "CTS"),
                           **options)
    return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr)


@method("ASHA-CTS", "ASHA whose searcher is CTS (quantile-based transfer from earlier tasks); needs --transfer-from",
        listed=("grace_period", "reduction_factor"), multi_fidelity=True, quick_options=_CTS_QUICK, quick_trials=40,
        transfer=True)
def _asha_cts_factory(ctx: MethodContext, *, grace_period: int = 1, reduction_factor: float = 3,
                      rung_levels: list[int] | None = None, type: Literal["stopping", "promotion"] = "stopping",
                      brackets: int | Literal["all"] | None = 1,
                      points_to_evaluate: list[dict[str, Any]] | None = None, max_source_points: int = 300,
                      min_target_points: int = 3, max_target_points: int = 100, source_candidates: int = 3,
                      n_candidates: int = 200, blas_threads: int | None = 1) -> Scheduler:
    """ASHA + CTSSearcher: the searcher observes each trial's last result (at whatever rung ASHA
    stopped it, or its end); see :class:`tunebench.searchers.transfer.CTSSearcher`."""
    from tunebench.searchers.transfer import CTSSearcher  # deferred: scipy and the GP

    resource_attr, max_t = ctx.resource_and_max_t()
    searcher = CTSSearcher(ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed,
                           transfer=_transfer_of(ctx, "ASHA-CTS"), points_to_evaluate=points_to_evaluate,
                           max_source_points=max_source_points, min_target_points=min_target_points,
                           max_target_points=max_target_points, source_candidates=source_candidates,
                           n_candidates=n_candidates, blas_threads=blas_threads)
    return ASHA(searcher, resource_attr=resource_attr, max_t=max_t, grace_period=grace_period,
                reduction_factor=reduction_factor, rung_levels=rung_levels, type=type,
                max_resource_attr=ctx.max_resource_attr, brackets=brackets,
                seed=None)  # derived from the searcher seed (independent stream)
