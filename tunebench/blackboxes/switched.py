"""A blackbox with some parameters behind on/off switches: a conditional rewrite of a flat
problem (L2).

Real spaces are conditional (``momentum`` exists only for an optimizer that has one); most
tabulated and surrogate benchmarks have flat spaces. :class:`SwitchedBlackbox` makes an honest
conditional problem out of a flat one: each switched parameter ``p`` gets a categorical switch
``s`` with an *off* and an *on* value; with the switch on, ``p`` is passed to the base blackbox as
chosen; with the switch off, ``p`` takes a fixed value (a bound of its range that means "none of
it": momentum 0.1, dropout 0). The rewritten space holds the switch and ``p`` with the condition
``s == on`` (``conditional=True``), or ``p`` always (``conditional=False``: the *flattened*
space a user without conditions would write, where ``p`` is sampled and tuned even when it does
nothing). Both describe the very same problem, so methods can be compared on the two spaces.

``lcbench-<task>-cond`` and ``lcbench-<task>-flat`` (see :func:`lcbench_switches`) are built
on it: an ``optimizer`` switch (``sgd`` / ``momentum``) for lcbench's momentum and a ``dropout``
switch (``no`` / ``yes``) for its max_dropout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.errors import UserError
from tunebench.space import Domain, choice, validate_space
from tunebench.types import Config

__all__ = ["Switch", "SwitchedBlackbox", "lcbench_switches"]


@dataclass(frozen=True)
class Switch:
    """The switch of one parameter: its name and values, and the parameter's value when off."""

    name: str  #: the switch parameter (a categorical added to the space)
    off: str  #: its value that turns the parameter off
    on: str  #: its value that turns the parameter on
    off_value: Any  #: the value the base blackbox gets for the parameter when the switch is off


class SwitchedBlackbox(Blackbox):
    """``base`` with the parameters of ``switches`` behind their switches (see the module docs).

    Args:
        base: the flat blackbox.
        switches: parameter of ``base`` -> its :class:`Switch`.
        conditional: the parameters exist only when their switch is on (else: always, and
            ignored when off).
        name: the blackbox's name (default: the base's, with ``-cond`` or ``-flat``).

    Raises:
        UserError: a switched parameter the base does not have, an off value outside its domain,
            a switch name that clashes with a parameter.
    """

    def __init__(self, base: Blackbox, switches: Mapping[str, Switch], *, conditional: bool = True,
                 name: str | None = None) -> None:
        space: dict[str, Any] = {}
        for param, switch in switches.items():
            domain = base.config_space.get(param)
            if not isinstance(domain, Domain):
                raise UserError(f"{base.name} has no hyperparameter {param!r} to put behind a switch")
            if not domain.contains(switch.off_value):
                raise UserError(f"{base.name}: the off value {switch.off_value!r} of {param!r} is outside {domain!r}")
            if switch.name in base.config_space:
                raise UserError(f"{base.name}: switch {switch.name!r} clashes with a hyperparameter")
        for param, domain in base.config_space.items():
            own = switches.get(param)
            if own is not None:
                space[own.name] = choice([own.off, own.on])
                space[param] = domain.when({own.name: own.on}) if conditional else domain
            else:
                space[param] = domain
        self.base = base
        self.switches = dict(switches)
        self.conditional = conditional
        self.name = name or f"{base.name}-{'cond' if conditional else 'flat'}"
        self.config_space = validate_space(space)
        self.fidelity_name = base.fidelity_name
        self.fidelity_values = base.fidelity_values
        self.objectives = base.objectives
        self.elapsed_time_attr = base.elapsed_time_attr
        self.n_seeds = base.n_seeds
        self.optimum = base.optimum
        self.cost_per_fidelity = base.cost_per_fidelity

    def to_base(self, config: Mapping[str, Any]) -> Config:
        """The base blackbox's configuration of ``config``: switches dropped, a switched-off
        parameter at its off value."""
        out = {k: v for k, v in config.items() if k in self.base.config_space}
        for param, switch in self.switches.items():
            if config.get(switch.name) != switch.on:
                out[param] = switch.off_value
        return out

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        """The base's values for :meth:`to_base` of each config."""
        fidelities = self.base.fidelity_values[fidelity_index]
        return self.base.evaluate([self.to_base(c) for c in configs], fidelities=fidelities, seed=seed,
                                  check=False)


def lcbench_switches() -> dict[str, Switch]:
    """lcbench's momentum behind ``optimizer`` (``sgd``: momentum 0.1, its lower bound;
    ``momentum``: as chosen) and max_dropout behind ``dropout`` (``no``: 0; ``yes``: as chosen)."""
    return {"momentum": Switch("optimizer", "sgd", "momentum", 0.1),
            "max_dropout": Switch("dropout", "no", "yes", 0.0)}
