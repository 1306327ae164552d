"""Quantiles of a blackbox's objective over its config space (L2): the bound of a constraint that
a chosen share of the configurations meets.

A constrained benchmark puts a bound on a reported objective (e.g. ``time <= B``); a bound that
cuts, say, half the configurations is the median of that objective over the space.
:func:`objective_quantile` estimates it from configurations sampled uniformly from the space
(the space's own sampling), evaluated at one fidelity (by default the highest): a value a
benchmark definition computes once and writes down.
"""

from __future__ import annotations

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.errors import UserError
from tunebench.space import sample_configs

__all__ = ["objective_quantile"]


def objective_quantile(blackbox: Blackbox, objective: str, q: float, *, n_configs: int = 1000, seed: int = 0,
                       fidelity: float | None = None, blackbox_seed: int = 0) -> float:
    """The ``q``-quantile of ``objective`` over ``n_configs`` configurations sampled from the
    blackbox's space with ``numpy.random.default_rng(seed)``, evaluated at ``fidelity`` (None:
    the highest) with the blackbox's seed ``blackbox_seed``. Missing values (NaN) are left out.

    A constraint ``objective <= objective_quantile(bb, objective, q)`` is met by a share ``q``
    of the space's configurations, ``objective >= objective_quantile(bb, objective, 1 - q)`` too
    (up to the sampling error, about ``sqrt(q (1 - q) / n_configs)``).

    Raises:
        UserError: an unknown objective or fidelity, ``q`` outside ``[0, 1]``, ``n_configs < 1``,
            or no configuration with a value.
    """
    index = blackbox.objective_index(objective)
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
        raise UserError(f"{blackbox.name}: the quantile q must be a number in [0, 1], got {q!r}")
    if isinstance(n_configs, bool) or not isinstance(n_configs, int) or n_configs < 1:
        raise UserError(f"{blackbox.name}: n_configs must be an integer >= 1, got {n_configs!r}")
    at = float(blackbox.fidelity_values[-1]) if fidelity is None else fidelity
    configs = sample_configs(blackbox.config_space, np.random.default_rng(seed), n_configs)
    values = blackbox.evaluate(configs, fidelities=[at], seed=blackbox_seed)[:, 0, index]
    values = values[~np.isnan(values)]
    if len(values) == 0:
        raise UserError(f"{blackbox.name}: no sampled configuration has a value of {objective} at fidelity {at:g}")
    return float(np.quantile(values, q))
