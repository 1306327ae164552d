"""Exceptions. :class:`UserError` and its subclasses are mistakes in the user's input:
the CLI prints their message on one line, without a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TunebenchError(Exception):
    """Base class of tunebench's exceptions."""


class UserError(TunebenchError, ValueError):
    """Bad input from the user: the message names the problem and the fix."""


class SpaceError(UserError):
    """An invalid configuration space (names the parameter at fault)."""


class TuningError(TunebenchError):
    """Tuning could not go on (for example: more failed trials than ``max_failures``)."""


def user_errors(build: Callable[[], T]) -> T:
    """``build()``, with a plain ``ValueError`` (a constructor rejecting an option) turned into a
    :class:`UserError` with the same message, so the CLI shows it as a one-line mistake."""
    try:
        return build()
    except ValueError as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(str(exc)) from exc
