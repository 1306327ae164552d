"""Registrations of the constrained methods (L1): ``CBO`` and the ``BO-penalty`` baseline (see
:mod:`tunebench.schedulers.registry` and :mod:`tunebench.searchers.cbo`).

Both are single-fidelity (FIFO: every trial runs to its end) and need at least one constraint
(``--constraint "NAME<=BOUND"``, ``MethodContext.constraints``); without one they refuse in one
line that names the fix.  Their options are BO's model and optimizer options
(:data:`tunebench.schedulers.methods_model.GP_OPTIONS`).
"""

from __future__ import annotations

from typing import Any

from tunebench.errors import UserError
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.methods_model import GP_OPTIONS, GP_QUICK
from tunebench.schedulers.registry import MethodContext, SchedulerFactory, method
from tunebench.types import Constraint


def _constraints_of(ctx: MethodContext, name: str) -> tuple[Constraint, ...]:
    """``ctx.constraints``, which a constrained method needs.

    Raises:
        UserError: there is none (the message names the option to pass).
    """
    if not ctx.constraints:
        raise UserError(f"method {name!r} optimizes under constraints and got none: pass --constraint "
                        f"\"NAME<=BOUND\" (a bound on a reported metric, e.g. \"time<=100\"; constraints=[...] "
                        f"in Python), or use BO")
    return ctx.constraints


def _constrained_factory(name: str, searcher_class: str) -> SchedulerFactory:
    """The factory of the constrained method ``name``: FIFO + the searcher class
    ``searcher_class`` of :mod:`tunebench.searchers.cbo` (imported when a scheduler is built)."""

    def factory(
        ctx: MethodContext,
        *,
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
        # deferred: scipy and the GP (import tunebench.schedulers stays fast)
        from tunebench.searchers import cbo

        options = dict(locals())
        constraints = _constraints_of(ctx, name)
        searcher = getattr(cbo, searcher_class)(
            ctx.config_space, ctx.metric, ctx.mode, seed=ctx.seed, constraints=constraints,
            points_to_evaluate=points_to_evaluate, num_init_random=num_init_random,
            **{k: options[k] for k in GP_OPTIONS})
        return FIFOScheduler(searcher, resource_attr=ctx.resource_attr, max_resource_attr=ctx.max_resource_attr)

    factory.__doc__ = f"FIFO + {searcher_class} (see :class:`tunebench.searchers.cbo.{searcher_class}`)."
    return factory


method("CBO", "Constrained BO: GP + expected improvement x probability of feasibility (a GP per constraint; "
       "Gardner et al. 2014), FIFO", listed=("input_warping",), quick_options=GP_QUICK, quick_trials=40,
       constrained=True)(_constrained_factory("CBO", "ConstrainedGPSearcher"))
method("BO-penalty", "BO whose infeasible results count as the worst value observed so far (a baseline for CBO), "
       "FIFO", listed=("input_warping",), quick_options=GP_QUICK, quick_trials=40,
       constrained=True)(_constrained_factory("BO-penalty", "PenaltyGPSearcher"))
