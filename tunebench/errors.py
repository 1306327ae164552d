"""Exceptions. :class:`UserError` and its subclasses are mistakes in the user's input:
the CLI prints their message on one line, without a traceback."""

from __future__ import annotations


class TunebenchError(Exception):
    """Base class of tunebench's exceptions."""


class UserError(TunebenchError, ValueError):
    """Bad input from the user: the message names the problem and the fix."""


class SpaceError(UserError):
    """An invalid configuration space (names the parameter at fault)."""


class TuningError(TunebenchError):
    """Tuning could not go on (for example: more failed trials than ``max_failures``)."""
