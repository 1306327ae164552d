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


class SimulatedClock:
    """Simulated time, moved forward only by the simulator backend (and by charging the
    tuner's real decision time to it, when ``charge_decision_time`` is on).

    Attributes:
        simulated: always True; the tuner then also records real time in its event log.
        charge_decision_time: whether the tuner adds the real time its scheduler spends deciding
            to the simulated clock (a fair comparison of slow and fast methods).
    """

    simulated = True
    __slots__ = ("_now", "charge_decision_time")

    def __init__(self, start: float = 0.0, charge_decision_time: bool = True) -> None:
        self._now = float(start)
        self.charge_decision_time = charge_decision_time

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if seconds > 0:
            self._now += seconds
