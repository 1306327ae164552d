"""The fidelity ladder (L0): maximum resource, grace period, reduction factor, rung levels and
Hyperband brackets, validated once.

Every multi-fidelity scheduler (ASHA and asynchronous Hyperband, synchronous Hyperband and DEHB,
PASHA, HyperTune, DyHPO) and the multi-fidelity GP searchers (MOBSTER's, Hyper-Tune's) build a
:class:`FidelityLadder` from their arguments, so they accept and reject the same values with the
same messages (booleans are rejected wherever a number is expected); the rung levels come from one
formula (:func:`default_rung_levels`) and the Hyperband bracket sizes from another
(:func:`hyperband_bracket_weights`). It sits below the schedulers and the searchers so that both
can import it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from tunebench.types import is_number

logger = logging.getLogger(__name__)

__all__ = ["FidelityLadder", "default_rung_levels", "hyperband_bracket_weights", "hyperband_brackets"]


def default_rung_levels(grace_period: float, reduction_factor: float, max_t: float) -> list[int]:
    """Rung levels ``round(grace_period * eta**k)`` for k = 0, 1, ... that lie below ``max_t``.

    ``max_t`` itself is not a rung: it is where a trial ends. E.g. ``(1, 3, 27) -> [1, 3, 9]``.
    """
    levels: list[int] = []
    k = 0
    while True:
        level = int(round(grace_period * reduction_factor**k))
        if level >= max_t:
            return levels
        if not levels or level > levels[-1]:
            levels.append(level)
        k += 1


def hyperband_bracket_weights(n_brackets: int, reduction_factor: float) -> list[int]:
    """Number of trials each bracket gets in one round of synchronous Hyperband.

    Li, Jamieson, DeSalvo, Rostamizadeh, Talwalkar, "Hyperband", JMLR 2018, Algorithm 1:
    bracket ``s`` in ``s_max, ..., 0`` (``s`` = number of halvings) starts
    ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` trials.  Our bracket ``b = s_max - s`` (bracket 0
    has every rung), with ``S = s_max + 1`` brackets:
    ``n_b = ceil(S / (S - b) * eta**(S - 1 - b))``.  Asynchronous Hyperband samples the bracket of
    each new trial with probabilities proportional to these counts (as Syne Tune's default
    bracket distribution does).  E.g. ``(4, 3) -> [27, 12, 6, 4]``.
    """
    S = n_brackets
    return [math.ceil(S / (S - b) * reduction_factor ** (S - 1 - b) - 1e-9) for b in range(S)]


def hyperband_brackets(levels: list[float], reduction_factor: float) -> list[list[int]]:
    """Rung sizes of every Hyperband bracket over ``levels`` (the last one is ``max_t``).

    Bracket ``b`` has a rung at each of ``levels[b:]``; its sizes are ``floor(n_b / eta**k)``
    with ``n_b`` from :func:`hyperband_bracket_weights`. E.g. ``([1, 3, 9, 27], 3) ->
    [[27, 9, 3, 1], [12, 4, 1], [6, 2], [4]]``.
    """
    S = len(levels)
    weights = hyperband_bracket_weights(S, reduction_factor)
    return [[max(1, math.floor(n / reduction_factor**k + 1e-9)) for k in range(S - b)]
            for b, n in enumerate(weights)]


def _check_number(name: str, value: Any, bound: float, strict: bool) -> None:
    op = ">" if strict else ">="
    if not is_number(value):
        raise ValueError(f"{name} must be a number {op} {bound}, got {value!r}")
    if not (value > bound if strict else value >= bound):
        raise ValueError(f"{name} must be {op} {bound}, got {value!r}")


@dataclass(frozen=True)
class FidelityLadder:
    """The resource levels of a multi-fidelity scheduler, validated (build it with
    :meth:`geometric` or :meth:`linear`, which raise ``ValueError`` naming the bad argument).

    Attributes:
        max_t: resource at which a trial ends (not a rung: the end of every bracket).
        grace_period: first level (minimum resource before a trial can be stopped or paused).
        reduction_factor: ``eta``: a rung keeps its best ``1/eta``.
        rung_levels: increasing levels in ``(0, max_t)``.
        brackets: number of Hyperband brackets, in ``[1, len(rung_levels) + 1]`` (bracket ``b``
            has the rungs ``rung_levels[b:]``).
        step: distance of linear levels (``None``: geometric or explicit levels).
    """

    max_t: float
    grace_period: float
    reduction_factor: float
    rung_levels: tuple[float, ...]
    brackets: int = 1
    step: float | None = None

    @classmethod
    def geometric(
        cls,
        max_t: Any,
        grace_period: Any = 1,
        reduction_factor: Any = 3,
        *,
        rung_levels: Any = None,
        brackets: Any = 1,
    ) -> FidelityLadder:
        """Levels ``grace_period * eta**k`` below ``max_t`` (rounded to integers; see
        :func:`default_rung_levels`), or the explicit ``rung_levels``; ``brackets``: an integer
        >= 1, or ``"all"`` / ``None`` for every bracket (capped at that number).

        Raises:
            ValueError: an invalid argument (the message names it).
        """
        _check_number("max_t", max_t, 0, strict=True)
        _check_number("grace_period", grace_period, 1, strict=False)
        if grace_period > max_t:
            raise ValueError(f"grace_period ({grace_period}) must be <= max_t ({max_t})")
        _check_number("reduction_factor", reduction_factor, 2, strict=False)
        if rung_levels is None:
            levels: list[float] = list(default_rung_levels(grace_period, reduction_factor, max_t))
        else:
            levels = list(rung_levels)
            if not all(is_number(x) for x in levels):
                raise ValueError(f"rung_levels must be numbers, got {rung_levels!r}")
            if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
                raise ValueError(f"rung_levels must be strictly increasing, got {rung_levels!r}")
            if levels and (levels[0] <= 0 or levels[-1] >= max_t):
                raise ValueError(
                    f"rung_levels must lie within (0, max_t={max_t}) (max_t is the end, not a rung), "
                    f"got {rung_levels!r}"
                )
        return cls(max_t, grace_period, reduction_factor, tuple(levels), _brackets(brackets, len(levels) + 1))

    @classmethod
    def linear(cls, max_t: Any, grace_period: Any = 1, step: Any = 1) -> FidelityLadder:
        """Levels ``grace_period, grace_period + step, ...`` below ``max_t`` (one bracket;
        ``grace_period`` may be any number > 0, ``reduction_factor`` is unused and left at 3).

        Raises:
            ValueError: an invalid argument (the message names it).
        """
        _check_number("max_t", max_t, 0, strict=True)
        _check_number("grace_period", grace_period, 0, strict=True)
        if grace_period > max_t:
            raise ValueError(f"grace_period ({grace_period}) must be <= max_t ({max_t})")
        if not is_number(step) or not step > 0:
            raise ValueError(f"step must be a number > 0 (or None for geometric steps), got {step!r}")
        count = int(math.ceil((max_t - grace_period) / step - 1e-9))
        levels = [grace_period + k * step for k in range(max(count, 0))]
        return cls(max_t, grace_period, 3, tuple(x for x in levels if x < max_t), 1, step)

    @property
    def min_resource(self) -> float:
        """The smallest level: the grace period, or the first rung level where explicit rung levels
        start below it (the low end of the GP searchers' log-resource scale)."""
        return min(self.grace_period, *self.rung_levels)

    @property
    def levels(self) -> list[float]:
        """The rung levels followed by ``max_t`` (the resource levels of synchronous Hyperband)."""
        return [*self.rung_levels, self.max_t]

    def bracket_weights(self) -> list[int]:
        """Relative number of new trials per bracket of asynchronous Hyperband: Hyperband's
        counts for :attr:`brackets` brackets (see :func:`hyperband_bracket_weights`)."""
        return hyperband_bracket_weights(self.brackets, self.reduction_factor)

    def bracket_sizes(self) -> list[list[int]]:
        """Rung sizes of the first :attr:`brackets` brackets of synchronous Hyperband over
        :attr:`levels` (see :func:`hyperband_brackets`)."""
        return hyperband_brackets(self.levels, self.reduction_factor)[: self.brackets]


def _brackets(brackets: Any, most: int) -> int:
    if brackets is None or brackets == "all":
        return most
    if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
        raise ValueError(f"brackets must be an integer >= 1 or 'all', got {brackets!r}")
    if brackets > most:
        logger.info("brackets=%d capped at %d (number of rung levels + 1)", brackets, most)
        return most
    return brackets
