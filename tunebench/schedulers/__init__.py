"""Schedulers (L1) and the registry of tuning methods (see :mod:`tunebench.schedulers.registry`).

Importing the package registers the built-in methods, in this order: the basic ones, the
model-based ones, the multi-fidelity model-based ones, the synchronous Hyperband family, then
REA, BORE and PASHA, then the multi-objective ones (MOASHA, NSGA2, MOREA, MOBO, MOASHA-BO) and
the constrained ones (CBO, BO-penalty), then the ones with user priors (PiBO, PiBO-MOBSTER,
PriorBand), the transfer ones (ZeroShot, BoundingBox, CTS, ASHA-CTS), then the population-based
ones (PBT, PB2). The searcher and scheduler modules that need scipy (the GP, the KDE) are
imported inside the factories that use them, and scikit-learn inside BORE's searcher, so that
``import tunebench.schedulers`` stays fast.
"""

from __future__ import annotations

# isort: off
# imported for their registrations, in registration order (the order of `tunebench list`)
from tunebench.schedulers import methods_basic as _methods_basic  # noqa: F401
from tunebench.schedulers import methods_model as _methods_model  # noqa: F401
from tunebench.schedulers import methods_model_mf as _methods_model_mf  # noqa: F401
from tunebench.schedulers import methods_sync as _methods_sync  # noqa: F401
from tunebench.schedulers import methods_misc as _methods_misc  # noqa: F401
from tunebench.schedulers import methods_multi as _methods_multi  # noqa: F401
from tunebench.schedulers import methods_constrained as _methods_constrained  # noqa: F401
from tunebench.schedulers import methods_mobo as _methods_mobo  # noqa: F401
from tunebench.schedulers import methods_prior as _methods_prior  # noqa: F401
from tunebench.schedulers import methods_transfer as _methods_transfer  # noqa: F401
from tunebench.schedulers import methods_pbt as _methods_pbt  # noqa: F401
# isort: on
from tunebench.schedulers.asha import ASHA, HyperbandScheduler
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.schedulers.registry import (
    METHOD_GROUPS,
    METHODS,
    MethodContext,
    MethodSpec,
    canonical_method_names,
    describe_methods,
    get_method,
    make_scheduler,
    method,
    method_groups,
    method_names,
    methods_of_group,
    register_method,
)
from tunebench.searchers import Searcher

__all__ = [
    "Scheduler",
    "Searcher",
    "FIFOScheduler",
    "ASHA",
    "HyperbandScheduler",
    "MethodContext",
    "MethodSpec",
    "METHODS",
    "register_method",
    "method",
    "make_scheduler",
    "get_method",
    "method_names",
    "method_groups",
    "methods_of_group",
    "METHOD_GROUPS",
    "canonical_method_names",
    "describe_methods",
]
