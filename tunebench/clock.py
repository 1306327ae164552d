"""Clocks (L0). Schedulers never read a clock; the tuner reads the backend's clock, so a
simulated backend can inject simulated time without anything patching the tuner."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Source of time for the tuner, in seconds."""

    def time(self) -> float:
        """Current time in seconds (only differences are meaningful)."""
        ...


class RealClock:
    """Wall-clock time (``time.time``)."""

    def time(self) -> float:
        return time.time()
