"""Contract test suite for blackboxes (plain functions; pytest is not needed).

Usage, in a test module::

    from tunebench.testing.blackbox_contract import CONTRACT_CHECKS

    @pytest.mark.parametrize("check", CONTRACT_CHECKS.values(), ids=CONTRACT_CHECKS.keys())
    def test_contract(check):
        check(lambda: MyBlackbox(...))

or simply ``check_blackbox_contract(make)``, which runs every check. ``make()`` returns the
blackbox under test (the same object each time is fine: the checks do not modify it). Each
check takes keyword options: ``n_configs`` (configurations sampled from the space, with
``seed`` for the sampling) and, for :func:`check_finite`, ``allow_nan`` (a table whose ``NaN``
cells mark missing values, see ``docs/blackbox-format.md``).

Contract checked (see each ``check_*``; :mod:`tunebench.blackboxes.base` defines it):

* attributes: a name; a valid config space that samples configurations the blackbox accepts;
  fidelity values a sorted, distinct, finite 1-d array (one value when ``fidelity_name`` is
  None); distinct objective names, ``objective_index`` agreeing with them (a UserError for an
  unknown one); an elapsed-time objective among them (or None); ``n_seeds >= 1``; an optimum of
  known objectives;
* ``evaluate(configs, fidelities, seed)`` returns float64 of shape ``(n_configs, n_fidelities,
  n_objectives)``; a configuration's values do not depend on the other configurations of the
  batch nor on the other fidelities asked for;
* a curve evaluated in pieces (a first piece of one or two fidelities, then the next few, then
  the rest, as the simulator asks for it) equals the curve evaluated in one call;
* values are finite (unless ``allow_nan``), the elapsed time finite, ``>= 0`` and
  non-decreasing over the fidelities for every configuration and seed;
* the same seed gives the same values, whatever was evaluated in between; every seed in
  ``0..n_seeds-1`` evaluates; a seed outside it is a UserError (different seeds may differ);
* a configuration outside the space (a value outside a domain, a missing hyperparameter) or a
  fidelity that is not one of ``fidelity_values`` is a UserError naming it; for a
  :class:`~tunebench.blackboxes.tabular.TabularBlackbox`, a configuration of the space that is
  not in the table is answered by its surrogate (``"knn"``: the values of a tabulated
  configuration) or, for a table built with ``surrogate=None``, is a UserError.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.blackboxes.tabular import TabularBlackbox
from tunebench.errors import UserError
from tunebench.space import hyperparameters, sample_configs, space_to_json, validate_space
from tunebench.types import Config

__all__ = [
    "CONTRACT_CHECKS",
    "check_attributes",
    "check_blackbox_contract",
    "check_elapsed_time",
    "check_finite",
    "check_outside",
    "check_pieces",
    "check_seeds",
    "check_shapes",
    "outside_value",
]

MakeBlackbox = Callable[[], Blackbox]

#: relative tolerance when comparing a configuration evaluated alone and in a batch (a float32
#: neural surrogate may round differently in another batch size)
BATCH_RTOL = 1e-5
#: a table larger than this is not scanned for the row a "knn" surrogate answered with
_MAX_SCANNED_ROWS = 20_000


def _configs(bb: Blackbox, n_configs: int, seed: int) -> list[Config]:
    return sample_configs(bb.config_space, np.random.default_rng(seed), n_configs)


def _raises_user_error(call: Callable[[], Any], what: str, *names: str) -> None:
    try:
        call()
    except UserError as exc:
        for name in names:
            assert name in str(exc), f"{what}: the UserError does not name {name!r}: {exc}"
    else:
        raise AssertionError(f"{what}: accepted, expected a UserError")


def outside_value(domain: Any) -> Any:
    """A value outside ``domain`` (a number far beyond any bound, or a foreign category)."""
    for value in (1e12, -1e12, "__outside_the_space__", None):
        if not domain.contains(value):
            return value
    raise AssertionError(f"found no value outside {domain!r}")


# -- checks ---------------------------------------------------------------------------------------


def check_attributes(make: MakeBlackbox, *, n_configs: int = 16, seed: int = 0) -> None:
    """Name, config space (valid, JSON-able, sampleable, its samples accepted), fidelity values,
    objectives, elapsed-time objective, seeds and optimum are as :class:`Blackbox` documents."""
    bb = make()
    assert isinstance(bb, Blackbox), f"{bb!r} is not a Blackbox"
    assert isinstance(bb.name, str) and bb.name, f"name {bb.name!r} must be a non-empty string"
    validate_space(bb.config_space)
    json.dumps(space_to_json(bb.config_space))
    for config in _configs(bb, n_configs, seed):
        bb.check_config(config)
    fv = bb.fidelity_values
    assert isinstance(fv, np.ndarray) and fv.ndim == 1 and len(fv) >= 1, (
        f"{bb.name}: fidelity_values must be a non-empty 1-d array, got {fv!r}")
    assert np.all(np.isfinite(fv)), f"{bb.name}: fidelity_values {fv.tolist()} must be finite"
    assert np.all(np.diff(fv) > 0), f"{bb.name}: fidelity_values {fv.tolist()} must be sorted and distinct"
    if bb.fidelity_name is None:
        assert len(fv) == 1, f"{bb.name}: no fidelity_name, but {len(fv)} fidelity values"
    else:
        assert isinstance(bb.fidelity_name, str) and bb.fidelity_name, f"{bb.name}: bad fidelity_name"
    objectives = tuple(bb.objectives)
    assert objectives and all(isinstance(o, str) and o for o in objectives), (
        f"{bb.name}: objectives {objectives} must be non-empty names")
    assert len(set(objectives)) == len(objectives), f"{bb.name}: objectives {objectives} repeat a name"
    for i, name in enumerate(objectives):
        assert bb.objective_index(name) == i, f"{bb.name}: objective_index({name!r}) != {i}"
    _raises_user_error(lambda: bb.objective_index("__no_such_objective__"), "objective_index of an unknown name")
    assert bb.elapsed_time_attr is None or bb.elapsed_time_attr in objectives, (
        f"{bb.name}: elapsed_time_attr {bb.elapsed_time_attr!r} is not one of the objectives {objectives}")
    assert isinstance(bb.n_seeds, int) and not isinstance(bb.n_seeds, bool) and bb.n_seeds >= 1, (
        f"{bb.name}: n_seeds must be an integer >= 1, got {bb.n_seeds!r}")
    for name, value in (bb.optimum or {}).items():
        assert name in objectives, f"{bb.name}: optimum of {name!r}, which is not an objective"
        assert isinstance(value, float) and math.isfinite(value), f"{bb.name}: optimum {name}={value!r}"


def check_shapes(make: MakeBlackbox, *, n_configs: int = 16, seed: int = 0) -> None:
    """``evaluate`` returns float64 ``(n_configs, n_fidelities, n_objectives)``, for all fidelities
    and for a subset; a configuration's values do not depend on the rest of the batch nor on
    the other fidelities asked for."""
    bb = make()
    configs = _configs(bb, n_configs, seed)
    n_fid, n_obj = len(bb.fidelity_values), len(bb.objectives)
    full = bb.evaluate(configs)
    assert isinstance(full, np.ndarray) and full.dtype == np.float64, (
        f"{bb.name}: evaluate returned {type(full).__name__} of {getattr(full, 'dtype', '?')}, not float64")
    assert full.shape == (n_configs, n_fid, n_obj), (
        f"{bb.name}: evaluate of {n_configs} configs returned shape {full.shape}, expected "
        f"{(n_configs, n_fid, n_obj)}")
    subset = bb.fidelity_values[::2] if n_fid > 1 else bb.fidelity_values
    part = bb.evaluate(configs, fidelities=subset)
    assert part.shape == (n_configs, len(subset), n_obj), (
        f"{bb.name}: evaluate at {len(subset)} fidelities returned shape {part.shape}")
    np.testing.assert_allclose(part, full[:, ::2] if n_fid > 1 else full, rtol=BATCH_RTOL, equal_nan=True,
                               err_msg=f"{bb.name}: values at a subset of the fidelities differ from the same "
                                       "fidelities of the whole curve")
    for i in (0, n_configs - 1):
        alone = bb.evaluate([configs[i]])
        assert alone.shape == (1, n_fid, n_obj), f"{bb.name}: evaluate of one config returned {alone.shape}"
        np.testing.assert_allclose(alone[0], full[i], rtol=BATCH_RTOL, equal_nan=True,
                                   err_msg=f"{bb.name}: config {i} evaluated alone differs from the batch")


def check_pieces(make: MakeBlackbox, *, n_configs: int = 16, seed: int = 0) -> None:
    """A curve evaluated in pieces equals the curve evaluated in one call, for every seed (the
    simulator evaluates a ``cost_per_fidelity`` blackbox's curves piece by piece)."""
    bb = make()
    configs = _configs(bb, n_configs, seed)
    fv = bb.fidelity_values
    n = len(fv)
    cuts = sorted({0, min(1, n), min(2, n), min(8, n), n})
    for s in range(min(bb.n_seeds, 2)):
        whole = bb.evaluate(configs, seed=s)
        for config_index in (0, n_configs - 1):
            pieces = [bb.evaluate([configs[config_index]], fidelities=fv[a:b], seed=s)[0]
                      for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
            joined = np.concatenate(pieces, axis=0)
            np.testing.assert_allclose(joined, whole[config_index], rtol=BATCH_RTOL, equal_nan=True,
                                       err_msg=f"{bb.name}: the curve of config {config_index} evaluated in pieces "
                                               f"{cuts} differs from the curve evaluated in one call (seed {s})")


def check_finite(make: MakeBlackbox, *, n_configs: int = 16, seed: int = 0, allow_nan: bool = False) -> None:
    """Values are finite (``allow_nan``: NaN cells allowed, never infinities); the elapsed time is
    finite and ``>= 0`` for every seed."""
    bb = make()
    configs = _configs(bb, n_configs, seed)
    for s in range(min(bb.n_seeds, 3)):
        values = bb.evaluate(configs, seed=s)
        if allow_nan:
            assert not np.any(np.isinf(values)), f"{bb.name}: infinite values (seed {s})"
        else:
            bad = np.argwhere(~np.isfinite(values))
            assert len(bad) == 0, (
                f"{bb.name}: {len(bad)} non-finite values (seed {s}), the first for config {configs[bad[0][0]]} at "
                f"fidelity {bb.fidelity_values[bad[0][1]]:g}, objective {bb.objectives[bad[0][2]]}")
        if bb.elapsed_time_attr is not None:
            elapsed = values[:, :, bb.objective_index(bb.elapsed_time_attr)]
            assert np.all(np.isfinite(elapsed)) and np.all(elapsed >= 0), (
                f"{bb.name}: the elapsed time {bb.elapsed_time_attr} must be finite and >= 0 (seed {s})")


def check_elapsed_time(make: MakeBlackbox, *, n_configs: int = 16, seed: int = 0) -> None:
    """The elapsed-time objective never decreases over the fidelities, for every configuration
    and seed (the simulator advances its clock with it)."""
    bb = make()
    if bb.elapsed_time_attr is None:
        return
    configs = _configs(bb, n_configs, seed)
    index = bb.objective_index(bb.elapsed_time_attr)
    for s in range(min(bb.n_seeds, 3)):
        elapsed = bb.evaluate(configs, seed=s)[:, :, index]
        drops = np.argwhere(np.diff(elapsed, axis=1) < 0)
        if len(drops):
            i, j = drops[0]
            raise AssertionError(
                f"{bb.name}: {bb.elapsed_time_attr} decreases from {elapsed[i, j]:g} at fidelity "
                f"{bb.fidelity_values[j]:g} to {elapsed[i, j + 1]:g} at {bb.fidelity_values[j + 1]:g} "
                f"for config {configs[i]} (seed {s})")


def check_seeds(make: MakeBlackbox, *, n_configs: int = 16, seed: int = 0) -> None:
    """The same seed gives the same values, also after other seeds were evaluated; every seed in
    range evaluates; a seed out of range is a UserError. (Different seeds may differ.)"""
    bb = make()
    configs = _configs(bb, n_configs, seed)
    first = bb.evaluate(configs, seed=0)
    np.testing.assert_array_equal(bb.evaluate(configs, seed=0), first,
                                  err_msg=f"{bb.name}: the same seed gave other values")
    last = bb.n_seeds - 1
    if last > 0:
        other = bb.evaluate(configs, seed=last)
        assert other.shape == first.shape
        np.testing.assert_array_equal(bb.evaluate(configs, seed=0), first,
                                      err_msg=f"{bb.name}: seed 0 gave other values after seed {last}")
        np.testing.assert_array_equal(bb.evaluate(configs, seed=last), other,
                                      err_msg=f"{bb.name}: seed {last} gave other values the second time")
    for bad in (bb.n_seeds, -1):
        _raises_user_error(partial(bb.evaluate, configs[:1], seed=bad), f"{bb.name}: evaluate with seed {bad}")


def check_outside(make: MakeBlackbox, *, n_configs: int = 16, seed: int = 0, max_params: int = 4) -> None:
    """A value outside its domain or a missing (active) hyperparameter (checked for the first
    ``max_params``), or a fidelity not offered, is a UserError naming it; a tabular blackbox
    answers a configuration of the space it does not hold with its surrogate (``"knn"``: the
    values of a tabulated configuration) or, without a surrogate, with a UserError."""
    bb = make()
    configs = _configs(bb, n_configs, seed)
    base = configs[0]
    for name, domain in list(hyperparameters(bb.config_space).items())[:max_params]:
        value = outside_value(domain)
        _raises_user_error(partial(bb.evaluate, [{**base, name: value}]),
                           f"{bb.name}: evaluate of a config with {name}={value!r}", name)
        if name not in base:
            continue  # inactive in this config (a conditional space): its absence is right
        missing = {k: v for k, v in base.items() if k != name}
        _raises_user_error(partial(bb.evaluate, [missing]),
                           f"{bb.name}: evaluate of a config without {name}", name)
    beyond = float(bb.fidelity_values[-1]) + 1.0
    _raises_user_error(lambda: bb.evaluate(configs[:1], fidelities=[beyond]),
                       f"{bb.name}: evaluate at fidelity {beyond:g}")
    if isinstance(bb, TabularBlackbox):
        _check_off_table(bb, configs, seed)


def _check_off_table(bb: TabularBlackbox, configs: list[Config], seed: int) -> None:
    """The documented answer for a configuration of the space that is not a row of the table."""
    off = next((c for c in configs if bb.row_of(c) is None), None)
    if off is None:
        more = _configs(bb, 256, seed + 1)
        off = next((c for c in more if bb.row_of(c) is None), None)
    if off is None:
        return  # the table holds every configuration the space samples (a full grid)
    if bb.surrogate is None:
        _raises_user_error(lambda: bb.evaluate([off]), f"{bb.name}: evaluate of the off-table config {off}")
        return
    answer = bb.evaluate([off])
    assert answer.shape == (1, len(bb.fidelity_values), len(bb.objectives)), (
        f"{bb.name}: the off-table config {off} got values of shape {answer.shape}")
    if bb.surrogate == "knn" and bb.n_configs <= _MAX_SCANNED_ROWS:
        table = bb.evaluate(bb.configs, seed=0)
        same = np.all(np.isclose(table, answer, equal_nan=True), axis=(1, 2))
        assert same.any(), (
            f"{bb.name}: the knn surrogate answered the off-table config {off} with values of no tabulated "
            "configuration")


#: name -> check, each called as ``check(make, n_configs=..., seed=...)``
CONTRACT_CHECKS: dict[str, Callable[..., None]] = {
    "attributes": check_attributes,
    "shapes": check_shapes,
    "pieces": check_pieces,
    "finite": check_finite,
    "elapsed_time": check_elapsed_time,
    "seeds": check_seeds,
    "outside": check_outside,
}


def check_blackbox_contract(make: MakeBlackbox, *, n_configs: int = 16, seed: int = 0) -> None:
    """Run every check of :data:`CONTRACT_CHECKS`; raises ``AssertionError`` on the first failure."""
    for check in CONTRACT_CHECKS.values():
        check(make, n_configs=n_configs, seed=seed)
