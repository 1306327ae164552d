"""Schedulers (L1) and the registry of tuning methods.

A *method* is a named recipe that builds a scheduler (with its searcher) from a config space
and a few common options; ``tunebench list`` shows them and experiments refer to them by name::

    scheduler = make_scheduler("ASHA", space, metric="loss", mode="min",
                               resource_attr="epoch", max_t=27)

New methods (BO, MOBSTER, ...) plug in with :func:`register_method`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunebench.errors import UserError
from tunebench.schedulers.asha import ASHA, HyperbandScheduler
from tunebench.schedulers.base import Scheduler
from tunebench.schedulers.fifo import FIFOScheduler
from tunebench.searchers import GridSearcher, RandomSearcher, Searcher

__all__ = [
    "Scheduler",
    "Searcher",
    "FIFOScheduler",
    "ASHA",
    "HyperbandScheduler",
    "MethodSpec",
    "METHODS",
    "register_method",
    "make_scheduler",
    "method_names",
    "method_groups",
    "METHOD_GROUPS",
    "describe_methods",
]

#: ``factory(config_space, *, metric, mode, resource_attr, max_resource_attr, max_t, seed,
#: **method_options) -> Scheduler``
SchedulerFactory = Callable[..., Scheduler]


@dataclass(frozen=True)
class MethodSpec:
    """A registered tuning method."""

    name: str
    factory: SchedulerFactory
    description: str  #: one line, for ``tunebench list``
    defaults: dict[str, Any] = field(default_factory=dict)  #: method options and their defaults
    multi_fidelity: bool = False  #: needs ``resource_attr`` and ``max_t``
    #: family, for experiment grids and plot panels: "single-fidelity", "asynchronous" or
    #: "synchronous" (multi-fidelity methods whose rungs wait for all their trials)
    group: str = "single-fidelity"


#: name -> method, in registration order
METHODS: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    factory: SchedulerFactory,
    description: str,
    defaults: dict[str, Any] | None = None,
    *,
    multi_fidelity: bool = False,
    synchronous: bool = False,
    replace: bool = False,
) -> MethodSpec:
    """Register a tuning method under ``name`` (matched case-insensitively by :func:`make_scheduler`).

    ``factory`` is called as ``factory(config_space, metric=..., mode=..., resource_attr=...,
    max_resource_attr=..., max_t=..., seed=..., **options)`` where ``options`` are ``defaults``
    updated with the caller's keyword arguments. The method's group (see :func:`method_groups`)
    is "single-fidelity" unless ``multi_fidelity`` ("asynchronous", or "synchronous" with
    ``synchronous=True``).

    Raises:
        ValueError: ``name`` is already registered (case-insensitively) and ``replace`` is false.
    """
    clash = _lookup(name)
    if clash is not None:
        if not replace:
            raise ValueError(f"method {clash.name!r} is already registered")
        del METHODS[clash.name]
    group = ("synchronous" if synchronous else "asynchronous") if multi_fidelity else "single-fidelity"
    spec = MethodSpec(name, factory, description, dict(defaults or {}), multi_fidelity, group)
    METHODS[name] = spec
    return spec


#: groups of methods by family, for experiment grids (``--method-group``) and plot panels
METHOD_GROUPS = ("single-fidelity", "asynchronous", "synchronous")


def method_groups() -> dict[str, list[str]]:
    """Group name -> registered methods in it, in registration order; ``"all"`` holds every
    method and ``"baselines"`` the classic comparison (those of BO, ASHA, MOBSTER, DyHPO, SyncHB,
    SyncMOBSTER that are registered)."""
    groups: dict[str, list[str]] = {g: [] for g in METHOD_GROUPS}
    for spec in METHODS.values():
        groups.setdefault(spec.group, []).append(spec.name)
    groups["all"] = list(METHODS)
    groups["baselines"] = [m for m in ("BO", "ASHA", "MOBSTER", "DyHPO", "SyncHB", "SyncMOBSTER") if m in METHODS]
    return groups


def method_names() -> list[str]:
    """Names of the registered methods, in registration order."""
    return list(METHODS)


def describe_methods() -> list[str]:
    """One line per method, for ``tunebench list``: name, description, then the group of
    multi-fidelity methods and the default options, e.g. ``"ASHA: Asynchronous successive halving ...
    [asynchronous; grace_period=1, reduction_factor=3]"``. Structured data: :data:`METHODS`."""
    lines = []
    for spec in METHODS.values():
        tags = [] if spec.group == "single-fidelity" else [spec.group]
        if spec.defaults:
            tags.append(", ".join(f"{k}={v!r}" for k, v in spec.defaults.items()))
        lines.append(f"{spec.name}: {spec.description}" + (f" [{'; '.join(tags)}]" if tags else ""))
    return lines


def _lookup(name: str) -> MethodSpec | None:
    spec = METHODS.get(name)
    if spec is not None:
        return spec
    lowered = name.lower()
    for key, spec in METHODS.items():
        if key.lower() == lowered:
            return spec
    return None


def get_method(name: str) -> MethodSpec:
    """The method registered as ``name`` (case-insensitive).

    Raises:
        UserError: unknown name (the message lists the known ones).
    """
    spec = _lookup(name)
    if spec is None:
        raise UserError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return spec


def _max_t_from_space(config_space: dict[str, Any], max_resource_attr: str) -> Any:
    from tunebench.space import hyperparameters

    if max_resource_attr not in config_space:
        return None
    if max_resource_attr in hyperparameters(config_space):
        raise UserError(
            f"max_resource_attr '{max_resource_attr}' is a hyperparameter of the config space, not a "
            f"constant: pass the maximum resource with --max-resource"
        )
    return config_space[max_resource_attr]


def make_scheduler(
    method: str,
    config_space: dict[str, Any],
    *,
    metric: str,
    mode: str = "min",
    resource_attr: str | None = None,
    max_resource_attr: str | None = None,
    max_t: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> Scheduler:
    """Build the scheduler of the registered ``method`` (see :func:`method_names`).

    ``kwargs`` override the method's defaults.  If ``max_t`` is ``None`` and
    ``max_resource_attr`` names a constant of ``config_space``, that constant is ``max_t``.

    Raises:
        UserError: unknown method, unknown option for it, or a multi-fidelity method without
            ``resource_attr`` / ``max_t`` (the message says which command-line option to pass).
    """
    spec = get_method(method)
    if max_t is None and max_resource_attr is not None:
        max_t = _max_t_from_space(config_space, max_resource_attr)
    if spec.multi_fidelity:
        if resource_attr is None:
            raise UserError(
                f"method {spec.name!r} is multi-fidelity: pass --resource-attr, the name of the resource "
                f"the script reports with its metric (e.g. epoch)"
            )
        if max_t is None:
            raise UserError(
                f"method {spec.name!r} is multi-fidelity: pass --max-resource, the resource at which a "
                f"trial ends (e.g. the number of epochs), or --max-resource-attr naming a constant of "
                f"the config space"
            )
    options = {**spec.defaults, **kwargs}
    params = inspect.signature(spec.factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            known = sorted(set(params) - set(_COMMON))
            raise UserError(
                f"method {spec.name!r} does not take option(s) {', '.join(unknown)}; "
                f"its options: {', '.join(known) or 'none'}"
            )
    return spec.factory(
        config_space,
        metric=metric,
        mode=mode,
        resource_attr=resource_attr,
        max_resource_attr=max_resource_attr,
        max_t=max_t,
        seed=seed,
        **options,
    )


_COMMON = ("config_space", "metric", "mode", "resource_attr", "max_resource_attr", "max_t", "seed")


# -- built-in methods ----------------------------------------------------------------------------


def _random_search(
    config_space: dict[str, Any],
    *,
    metric: str,
    mode: str,
    resource_attr: str | None,
    max_resource_attr: str | None,
    max_t: int | None,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
) -> Scheduler:
    searcher = RandomSearcher(config_space, metric, mode, seed=seed, points_to_evaluate=points_to_evaluate)
    return FIFOScheduler(searcher, resource_attr=resource_attr, max_resource_attr=max_resource_attr)


def _grid_search(
    config_space: dict[str, Any],
    *,
    metric: str,
    mode: str,
    resource_attr: str | None,
    max_resource_attr: str | None,
    max_t: int | None,
    seed: int,
    n_points: int = 5,
    shuffle: bool = False,
) -> Scheduler:
    searcher = GridSearcher(config_space, metric, mode, seed=seed, n_points=n_points, shuffle=shuffle)
    return FIFOScheduler(searcher, resource_attr=resource_attr, max_resource_attr=max_resource_attr)


def _asha_factory(type: str, hyperband: bool) -> SchedulerFactory:
    def factory(
        config_space: dict[str, Any],
        *,
        metric: str,
        mode: str,
        resource_attr: str,
        max_resource_attr: str | None,
        max_t: int,
        seed: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        rung_levels: list[int] | None = None,
        brackets: int | str | None = "all" if hyperband else 1,
        points_to_evaluate: list[dict[str, Any]] | None = None,
    ) -> Scheduler:
        searcher = RandomSearcher(config_space, metric, mode, seed=seed, points_to_evaluate=points_to_evaluate)
        try:
            return ASHA(
                searcher,
                resource_attr=resource_attr,
                max_t=max_t,
                grace_period=grace_period,
                reduction_factor=reduction_factor,
                rung_levels=rung_levels,
                type=type,  # type: ignore[arg-type]
                max_resource_attr=max_resource_attr,
                brackets=brackets,
                seed=None,  # derived from the searcher seed (independent stream)
            )
        except ValueError as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError(str(exc)) from exc

    return factory


register_method("RS", _random_search, "Random search: every trial runs to the end (FIFO)")
register_method("Grid", _grid_search, "Grid search over the space, then stop", {"n_points": 5, "shuffle": False})
register_method(
    "ASHA",
    _asha_factory("stopping", False),
    "Asynchronous successive halving, stopping type (Li et al. 2020) + random search",
    {"grace_period": 1, "reduction_factor": 3},
    multi_fidelity=True,
)
register_method(
    "ASHA-promotion",
    _asha_factory("promotion", False),
    "ASHA, promotion type: pause at rungs, resume the best (needs checkpoints) + random search",
    {"grace_period": 1, "reduction_factor": 3},
    multi_fidelity=True,
)
register_method(
    "HB",
    _asha_factory("stopping", True),
    "Asynchronous Hyperband (ASHA over brackets, stopping type) + random search",
    {"grace_period": 1, "reduction_factor": 3, "brackets": "all"},
    multi_fidelity=True,
)

# methods of the model-based, synchronous and evolutionary families live in their own modules
from tunebench.schedulers import methods_misc as _methods_misc  # noqa: E402
from tunebench.schedulers import methods_model as _methods_model  # noqa: E402
from tunebench.schedulers import methods_model_mf as _methods_model_mf  # noqa: E402
from tunebench.schedulers import methods_sync as _methods_sync  # noqa: E402

for _module in (_methods_model, _methods_model_mf, _methods_sync, _methods_misc):
    _module.register(register_method)
del _module


# -- registration by decorator ---------------------------------------------------------------------


def method(
    name: str,
    description: str | None = None,
    defaults: dict[str, Any] | None = None,
    *,
    multi_fidelity: bool = False,
    synchronous: bool = False,
    replace: bool = False,
) -> Callable[[SchedulerFactory], SchedulerFactory]:
    """Decorator form of :func:`register_method`: registers the decorated factory under ``name``
    and returns it unchanged. ``description`` defaults to the first line of its docstring::

        @method("MyRS", defaults={"points_to_evaluate": None})
        def my_random_search(config_space, *, metric, mode, resource_attr, max_resource_attr, max_t,
                             seed, points_to_evaluate=None):
            \"\"\"Random search with my twist.\"\"\"
            ...

    Raises:
        ValueError: ``name`` is already registered and ``replace`` is false.
    """

    def register(factory: SchedulerFactory) -> SchedulerFactory:
        text = description
        if text is None:
            doc = inspect.getdoc(factory) or ""
            text = doc.strip().splitlines()[0] if doc.strip() else name
        register_method(name, factory, text, defaults, multi_fidelity=multi_fidelity, synchronous=synchronous,
                        replace=replace)
        return factory

    return register


__all__.append("method")
