"""The config-space language (layer L0).

A config space is a plain ``dict`` that maps a parameter name to a :class:`Domain` (a
range or a set of values to search) or to a constant (any ``str``, ``int``, ``float``,
``bool`` or ``None``)::

    space = {
        "lr": loguniform(1e-4, 1e-1),
        "n_units": lograndint(16, 512),
        "activation": choice(["relu", "tanh"]),
        "epochs": 27,  # a constant: passed to every trial, never searched
    }

Domains sample with a :class:`numpy.random.Generator`, encode to and decode from the
unit cube in batches (models work on arrays), round-trip to JSON, and add themselves to
an :mod:`argparse` parser. Key order is kept everywhere (sampled configs, encodings,
grids, JSON).

Every value a domain hands out is a Python-native ``float``/``int``/``str``/``bool``
(never a numpy scalar), so configurations are JSON-able as they are.

Encoding to ``[0, 1]``: floats map linearly (in log space for the log variants); every
integer, ordinal category and ``finrange`` value gets an equal share of ``[0, 1]`` and is
encoded at the centre of its share (integers of ``lograndint`` get equal shares in log
space); a ``choice`` of ``k`` categories is one-hot over ``k`` columns and decodes by
argmax. ``decode(encode(v)) == v`` holds exactly for every valid value of the discrete
domains, and up to floating-point rounding (relative 1e-12) for floats; the bounds of a
float domain decode exactly.

The package, by concept (each module imports only those above it):

- :mod:`~tunebench.space.values`: number checks and the command-line text of one value;
- :mod:`~tunebench.space.conditions`: conditions on parameters (``domain.when(...)``): which
  parameters are active in a configuration;
- :mod:`~tunebench.space.domains`: the domain classes and their constructors;
- :mod:`~tunebench.space.validation`: checks of a whole space, its domains and constants;
- :mod:`~tunebench.space.unit_cube`: the array kernels of the domains' batch methods (numpy);
- :mod:`~tunebench.space.sampling`: random, default and grid configurations;
- :mod:`~tunebench.space.encoding`: whole configurations to and from the unit cube (numpy);
- :mod:`~tunebench.space.serialization`: JSON and YAML round trip, space files;
- :mod:`~tunebench.space.command_line`: ``add_to_argparse`` and ``config_to_argv``;
- :mod:`~tunebench.space.prior`: user priors over a space (``Prior``, ``--prior FILE``; numpy, scipy).

Only ``unit_cube`` and ``encoding`` import numpy; the names of ``encoding`` are loaded on first
use, so ``from tunebench.space import uniform, add_to_argparse`` (a training script parsing its
arguments) does not import numpy.
"""

from __future__ import annotations

from tunebench.errors import SpaceError
from tunebench.space.command_line import add_to_argparse, config_to_argv
from tunebench.space.conditions import Condition, active_config, is_conditional
from tunebench.space.domains import (
    DOMAIN_TYPES,
    Choice,
    Domain,
    FiniteRange,
    Float,
    Integer,
    Ordinal,
    choice,
    finrange,
    logfinrange,
    lograndint,
    loguniform,
    ordinal,
    randint,
    uniform,
)
from tunebench.space.sampling import (
    MAX_GRID_SIZE,
    default_config,
    grid_configs,
    repair_config,
    sample_config,
    sample_configs,
)
from tunebench.space.serialization import load_space_file, space_from_json, space_to_json
from tunebench.space.validation import constants, hyperparameters, space_cardinality, validate_space

__all__ = [
    "Domain",
    "Float",
    "Integer",
    "Choice",
    "Ordinal",
    "FiniteRange",
    "SpaceEncoder",
    "uniform",
    "loguniform",
    "randint",
    "lograndint",
    "choice",
    "ordinal",
    "finrange",
    "logfinrange",
    "validate_space",
    "hyperparameters",
    "constants",
    "space_cardinality",
    "sample_config",
    "sample_configs",
    "repair_config",
    "Condition",
    "active_config",
    "is_conditional",
    "get_encoder",
    "encoded_dim",
    "encode_configs",
    "decode_configs",
    "default_config",
    "grid_configs",
    "space_to_json",
    "space_from_json",
    "load_space_file",
    "add_to_argparse",
    "config_to_argv",
    "DOMAIN_TYPES",
    "MAX_GRID_SIZE",
    "SpaceError",
    "Prior",
    "load_prior_file",
    "CONFIDENCE_LEVELS",
]

#: Names re-exported on first use (PEP 562): their module imports numpy.
_LAZY = {
    "SpaceEncoder": "tunebench.space.encoding",
    "get_encoder": "tunebench.space.encoding",
    "encoded_dim": "tunebench.space.encoding",
    "encode_configs": "tunebench.space.encoding",
    "decode_configs": "tunebench.space.encoding",
    # user priors (numpy and scipy)
    "Prior": "tunebench.space.prior",
    "load_prior_file": "tunebench.space.prior",
    "CONFIDENCE_LEVELS": "tunebench.space.prior",
}

TYPE_CHECKING = False  # (as in tunebench/__init__.py: this is a training script's import path)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from tunebench.space.encoding import (
        SpaceEncoder,
        decode_configs,
        encode_configs,
        encoded_dim,
        get_encoder,
    )
    from tunebench.space.prior import CONFIDENCE_LEVELS, Prior, load_prior_file


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tunebench.space' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
