"""Registration of the multi-fidelity model-based methods built on the GP searchers:
HyperTune, DyHPO, SyncMOBSTER.

:func:`register` is called once at the end of :mod:`tunebench.schedulers`; heavy imports stay
inside the factories so that ``import tunebench.schedulers`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def register(register_method: Callable[..., Any]) -> None:
    """Register this module's methods with ``register_method``."""
