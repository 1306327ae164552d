"""A config space on the command line: a training script's parser gets one ``--name`` option per
parameter (:func:`add_to_argparse`), and a backend writes a configuration as those options
(:func:`config_to_argv`). Imports no numpy: this is a training script's import path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tunebench.errors import SpaceError
from tunebench.space.domains import Domain
from tunebench.space.validation import check_name, validate_space
from tunebench.space.values import argv_text, parse_bool, parse_float, parse_int

if TYPE_CHECKING:  # pragma: no cover
    import argparse

__all__ = ["add_to_argparse", "config_to_argv"]


def _converter(parse: Callable[[Any], Any], type_name: str) -> Callable[[str], Any]:
    import argparse  # deferred: config_to_argv (the backends' side) does not need argparse (~1 ms)

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except SpaceError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = type_name
    return convert


def _constant_parser(value: Any) -> tuple[Callable[[Any], Any], str]:
    if isinstance(value, bool):
        return parse_bool, "bool"
    if isinstance(value, int):
        return (lambda s: parse_int("int", s)), "int"
    if isinstance(value, float):
        return (lambda s: parse_float("float", s)), "float"
    if value is None:
        return (lambda s: None if s == "None" else s), "str"
    return str, "str"


def add_to_argparse(parser: argparse.ArgumentParser, space: Mapping[str, Any]) -> None:
    """Add ``--name`` (with ``dest=name``) for every entry of ``space``.

    Each option converts to the entry's type (bools accept True/False/true/false/1/0) and
    defaults to the constant's value, or the domain's :meth:`Domain.default`. Parses back
    exactly what :func:`config_to_argv` writes.
    """
    validate_space(space)
    for name, value in space.items():
        if isinstance(value, Domain):
            parse: Callable[[Any], Any] = value.cast
            type_name = value.value_type.__name__
            default = value.default()
            shown = repr(value)
        else:
            parse, type_name = _constant_parser(value)
            default = value
            shown = "constant"
        help_text = f"{shown} (default: {default!r})".replace("%", "%%")
        try:
            parser.add_argument(
                f"--{name}",
                dest=name,
                type=_converter(parse, type_name),
                default=default,
                help=help_text,
            )
        except Exception as e:  # argparse.ArgumentError: conflicting option string
            raise SpaceError(f"parameter {name!r}: cannot add --{name} to the parser: {e}") from None


def config_to_argv(config: Mapping[str, Any]) -> list[str]:
    """``["--lr", "0.01", "--n_units", "64", ...]`` for a training script's command line.

    Floats are written with ``repr`` (exact round trip), bools as ``True``/``False``,
    ``None`` as ``None``; a value starting with ``-`` is written ``--name=value`` so that it
    is not mistaken for an option.
    """
    argv: list[str] = []
    for name, value in config.items():
        check_name(name)
        try:
            text = argv_text(value)
        except SpaceError as e:
            raise SpaceError(f"parameter {name!r}: {e}") from None
        if text.startswith("-"):
            argv.append(f"--{name}={text}")
        else:
            argv += [f"--{name}", text]
    return argv
