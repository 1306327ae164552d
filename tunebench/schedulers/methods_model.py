"""Registration of tuning methods (filled in by the issue-4 work).

:func:`register` is called once at the end of :mod:`tunebench.schedulers`; it calls
``register_method(...)`` for each method of this module.  Heavy imports (scipy, scikit-learn)
stay inside the factories so that ``import tunebench.schedulers`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def register(register_method: Callable[..., Any]) -> None:
    """Register this module's methods with ``register_method`` (see :func:`tunebench.schedulers.register_method`)."""
