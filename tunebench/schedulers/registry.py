"""The registry of tuning methods (L1).

A *method* is a named recipe that builds a scheduler (with its searcher) from a config space
and a few common options; ``tunebench list`` shows them and experiments refer to them by name::

    scheduler = make_scheduler("ASHA", space, metric="loss", mode="min",
                               resource_attr="epoch", max_t=27)

Every method, built-in or not, is registered with the :func:`method` decorator (or its
function form :func:`register_method`). A factory takes the common options either

* as one :class:`MethodContext` (its first parameter, annotated ``MethodContext``), followed by
  its own keyword-only options with their defaults: the form of the built-in methods::

      @method("MyASHA", listed=("grace_period",), multi_fidelity=True)
      def my_asha(ctx: MethodContext, *, grace_period: int = 1) -> Scheduler:
          \"\"\"ASHA with my twist.\"\"\"
          resource_attr, max_t = ctx.resource_and_max_t()  # both set for a multi-fidelity method
          ...

* or as the seven keyword arguments ``config_space`` (positional), ``metric``, ``mode``,
  ``resource_attr``, ``max_resource_attr``, ``max_t``, ``seed`` (the original form, kept for
  user factories).

The defaults of a method's options are those of its factory's signature; ``listed`` names the
ones ``tunebench list`` shows. A ``ValueError`` raised while a factory builds its scheduler (a
constructor rejecting an option) reaches the caller of :func:`make_scheduler` as a
:class:`~tunebench.errors.UserError` with the same message.

Methods are grouped by family (:func:`method_groups`) for experiment grids
(``--method-group``) and plot panels.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunebench.errors import UserError, user_errors
from tunebench.schedulers.base import Scheduler
from tunebench.space import hyperparameters
from tunebench.types import Constraint, Objectives, TransferTask, parse_constraints

if TYPE_CHECKING:
    from tunebench.space import Prior

__all__ = [
    "METHODS",
    "METHOD_GROUPS",
    "MethodContext",
    "MethodSpec",
    "canonical_method_names",
    "describe_methods",
    "get_method",
    "make_scheduler",
    "method",
    "method_groups",
    "method_names",
    "methods_of_group",
    "register_method",
]

#: ``factory(ctx: MethodContext, **options) -> Scheduler``, or (user factories of the original
#: form) ``factory(config_space, *, metric, mode, resource_attr, max_resource_attr, max_t, seed,
#: **options) -> Scheduler``
SchedulerFactory = Callable[..., Scheduler]


@dataclass(frozen=True)
class MethodContext:
    """The options every method receives (see :func:`make_scheduler`)."""

    config_space: dict[str, Any]
    metric: str
    mode: str = "min"
    resource_attr: str | None = None  #: reported resource (multi-fidelity methods always have one)
    max_resource_attr: str | None = None  #: config entry with the maximum resource, if any
    max_t: Any = None  #: maximum resource (multi-fidelity methods always have one)
    seed: int = 0
    #: every metric with its mode; ``metric`` and ``mode`` are the first. Several only for a method
    #: registered with ``multi_objective=True`` (:func:`make_scheduler` refuses them otherwise)
    objectives: Objectives | None = None
    #: bounds on reported metrics a result must meet to be feasible (``--constraint``); methods
    #: that model them (``CBO``) read them, the others ignore them (the best trial and the Pareto
    #: front still count only feasible results)
    constraints: tuple[Constraint, ...] = ()
    #: reported metric holding the cost of a result (``--cost-attr``, e.g. elapsed seconds), for
    #: cost-aware methods; ``None``: cost is not modelled
    cost_attr: str | None = None
    #: the user's prior over the space (``--prior FILE``), for methods registered with
    #: ``needs_prior=True`` (``PiBO``, ``PiBO-MOBSTER``, ``PriorBand``); the others ignore it
    prior: Prior | None = None
    #: results of earlier tasks (``--transfer-from``), for the transfer methods (``ZeroShot``,
    #: ``BoundingBox``, ``CTS``, ``ASHA-CTS``: registered with ``transfer=True``); others ignore them
    transfer: tuple[TransferTask, ...] = ()

    def __post_init__(self) -> None:
        if self.objectives is None:
            object.__setattr__(self, "objectives", Objectives((self.metric,), (self.mode,)))

    def resource_and_max_t(self) -> tuple[str, int]:
        """``(resource_attr, max_t)``, both set: what the factory of a multi-fidelity method
        reads (:func:`make_scheduler` checks that they are set before it calls one).

        Raises:
            ValueError: either is ``None`` (a factory called directly without them).
        """
        if self.resource_attr is None or self.max_t is None:
            raise ValueError(f"a multi-fidelity method needs resource_attr and max_t, got "
                             f"resource_attr={self.resource_attr!r}, max_t={self.max_t!r}")
        return self.resource_attr, self.max_t

    def require_prior(self, method: str) -> Prior:
        """The prior, for a factory of a method that needs one.

        Raises:
            UserError: no prior (the message names the fix: ``--prior FILE``).
        """
        if self.prior is None:
            raise UserError(f"method {method} needs a prior: pass --prior FILE (a YAML or JSON mapping such as "
                            "'learning_rate: {value: 0.01, confidence: medium}'), or prior= in Python")
        return self.prior


#: the fields of :class:`MethodContext`: the keyword arguments of a factory of the original form
_COMMON = ("config_space", "metric", "mode", "resource_attr", "max_resource_attr", "max_t", "seed")

#: groups of methods by family, for experiment grids (``--method-group``) and plot panels
METHOD_GROUPS = ("single-fidelity", "asynchronous", "synchronous")

#: the classic comparison (``--method-group baselines``), those of them that are registered
_BASELINES = ("BO", "ASHA", "MOBSTER", "DyHPO", "SyncHB", "SyncMOBSTER")


@dataclass(frozen=True)
class MethodSpec:
    """A registered tuning method."""

    name: str
    factory: SchedulerFactory
    description: str  #: one line, for ``tunebench list``
    #: options shown by ``tunebench list`` with their defaults (those of the factory's signature,
    #: or given at registration); they are passed to the factory unless the caller overrides them
    defaults: dict[str, Any] = field(default_factory=dict)
    multi_fidelity: bool = False  #: needs ``resource_attr`` and ``max_t``
    #: family, for experiment grids and plot panels: "single-fidelity", "asynchronous" or
    #: "synchronous" (multi-fidelity methods whose rungs wait for all their trials)
    group: str = "single-fidelity"
    #: the factory takes a :class:`MethodContext` (else the seven common keyword arguments)
    takes_context: bool = False
    #: names of the options the factory takes (its parameters past the common ones); ``None``
    #: when it takes any (``**kwargs``)
    options: tuple[str, ...] | None = ()
    #: options that keep a short run cheap (a small grid, small models), and that run's number of
    #: trials: what the scheduler contract suite (:mod:`tunebench.testing.scheduler_contract`)
    #: runs every method with
    quick_options: dict[str, Any] = field(default_factory=dict)
    quick_trials: int = 60
    #: optimizes several metrics at once (reads ``MethodContext.objectives``); other methods take one
    multi_objective: bool = False
    #: models the constraints (reads ``MethodContext.constraints``) and needs at least one; the
    #: scheduler contract suite runs it with a constraint on a metric its workload reports
    constrained: bool = False
    #: models the cost of its trials (reads ``MethodContext.cost_attr``, ``--cost-attr``); other
    #: methods refuse a cost (:func:`make_scheduler` raises a UserError)
    cost_aware: bool = False
    #: samples from / weights by the user's prior (reads ``MethodContext.prior``) and refuses to
    #: run without one; the scheduler contract suite gives it a prior at the space's defaults
    needs_prior: bool = False
    #: learns from earlier tasks (reads ``MethodContext.transfer``) and needs at least one; the
    #: scheduler contract suite gives it generated source tasks
    #: (:func:`tunebench.testing.scheduler_contract.contract_transfer_tasks`)
    transfer: bool = False
    #: trains a population: every trial runs to ``max_t`` (exploiting others' checkpoints on the
    #: way, PBT) instead of being stopped early, though the method is multi-fidelity
    population_based: bool = False

    def accepts(self, option: str) -> bool:
        """Whether ``option`` is an option of this method."""
        return self.options is None or option in self.options

    def build(self, ctx: MethodContext, options: dict[str, Any]) -> Scheduler:
        """The factory's scheduler for ``ctx`` and ``options`` (no checks, no conversion)."""
        if self.takes_context:
            return self.factory(ctx, **options)
        return self.factory(ctx.config_space, metric=ctx.metric, mode=ctx.mode, resource_attr=ctx.resource_attr,
                            max_resource_attr=ctx.max_resource_attr, max_t=ctx.max_t, seed=ctx.seed, **options)


#: name -> method, in registration order
METHODS: dict[str, MethodSpec] = {}


def _takes_context(params: list[inspect.Parameter]) -> bool:
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return False
    annotation = params[0].annotation
    return annotation is MethodContext or annotation == "MethodContext"


def register_method(
    name: str,
    factory: SchedulerFactory,
    description: str,
    defaults: dict[str, Any] | None = None,
    *,
    listed: Sequence[str] = (),
    multi_fidelity: bool = False,
    synchronous: bool = False,
    replace: bool = False,
    quick_options: dict[str, Any] | None = None,
    quick_trials: int = 60,
    multi_objective: bool = False,
    constrained: bool = False,
    cost_aware: bool = False,
    needs_prior: bool = False,
    transfer: bool = False,
    population_based: bool = False,
) -> MethodSpec:
    """Register a tuning method under ``name`` (matched case-insensitively by :func:`make_scheduler`).

    ``factory`` is called (see the module docstring) with the options ``defaults`` updated with
    the caller's keyword arguments. ``listed`` names options whose signature defaults ``tunebench
    list`` shows (with those of ``defaults``). The method's group (see :func:`method_groups`) is
    "single-fidelity" unless ``multi_fidelity`` ("asynchronous", or "synchronous" with
    ``synchronous=True``). ``quick_options`` and ``quick_trials``: see :class:`MethodSpec`.
    ``multi_objective``: the method optimizes every metric of ``MethodContext.objectives`` (its
    factory must take the context); only such methods are given several metrics. ``constrained``:
    the method models ``MethodContext.constraints`` and needs one (see :class:`MethodSpec`).
    ``cost_aware``: the method models the cost ``MethodContext.cost_attr`` (its factory must take
    the context); only such methods are given one. ``needs_prior``: the method reads
    ``MethodContext.prior`` (its factory must take the context) and refuses to run without one.
    ``transfer``: the method learns from
    ``MethodContext.transfer`` and needs it (see :class:`MethodSpec`; its factory must take the context).
    ``population_based``: see :class:`MethodSpec`.

    Raises:
        ValueError: ``name`` is already registered (case-insensitively) and ``replace`` is false,
            or ``listed`` names an option without a default in the factory's signature.
    """
    clash = _lookup(name)
    if clash is not None:
        if not replace:
            raise ValueError(f"method {clash.name!r} is already registered")
        del METHODS[clash.name]
    params = list(inspect.signature(factory).parameters.values())
    takes_context = _takes_context(params)
    own = params[1:] if takes_context else [p for p in params if p.name not in _COMMON]
    options: tuple[str, ...] | None = tuple(p.name for p in own if p.kind is not inspect.Parameter.VAR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own):
        options = None
    by_name = {p.name: p for p in own}
    shown: dict[str, Any] = {}
    for option in listed:
        param = by_name.get(option)
        if param is None or param.default is inspect.Parameter.empty:
            raise ValueError(f"method {name!r}: listed option {option!r} has no default in the factory's signature")
        shown[option] = param.default
    shown.update(defaults or {})
    group = ("synchronous" if synchronous else "asynchronous") if multi_fidelity else "single-fidelity"
    if multi_objective and not takes_context:
        raise ValueError(f"method {name!r} is multi-objective: its factory must take a MethodContext first "
                         "(it reads ctx.objectives)")
    if needs_prior and not takes_context:
        raise ValueError(f"method {name!r} needs a prior: its factory must take a MethodContext first "
                         "(it reads ctx.prior)")
    if cost_aware and not takes_context:
        raise ValueError(f"method {name!r} is cost-aware: its factory must take a MethodContext first "
                         "(it reads ctx.cost_attr)")
    if transfer and not takes_context:
        raise ValueError(f"method {name!r} learns from earlier tasks: its factory must take a MethodContext first "
                         "(it reads ctx.transfer)")
    spec = MethodSpec(name, factory, description, shown, multi_fidelity, group, takes_context, options,
                      dict(quick_options or {}), quick_trials, multi_objective, constrained,
                      cost_aware, needs_prior, transfer, population_based)
    METHODS[name] = spec
    return spec


def method(
    name: str,
    description: str | None = None,
    defaults: dict[str, Any] | None = None,
    *,
    listed: Sequence[str] = (),
    multi_fidelity: bool = False,
    synchronous: bool = False,
    replace: bool = False,
    quick_options: dict[str, Any] | None = None,
    quick_trials: int = 60,
    multi_objective: bool = False,
    constrained: bool = False,
    cost_aware: bool = False,
    needs_prior: bool = False,
    transfer: bool = False,
    population_based: bool = False,
) -> Callable[[SchedulerFactory], SchedulerFactory]:
    """Decorator form of :func:`register_method`: registers the decorated factory under ``name``
    and returns it unchanged. ``description`` defaults to the first line of its docstring::

        @method("MyRS", listed=("points_to_evaluate",))
        def my_random_search(ctx: MethodContext, *, points_to_evaluate=None):
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
        register_method(name, factory, text, defaults, listed=listed, multi_fidelity=multi_fidelity,
                        synchronous=synchronous, replace=replace, quick_options=quick_options,
                        quick_trials=quick_trials, multi_objective=multi_objective, constrained=constrained,
                        cost_aware=cost_aware, needs_prior=needs_prior, transfer=transfer,
                        population_based=population_based)
        return factory

    return register


def method_groups() -> dict[str, list[str]]:
    """Group name -> registered methods in it, in registration order; ``"all"`` holds every
    method and ``"baselines"`` the classic comparison (those of BO, ASHA, MOBSTER, DyHPO, SyncHB,
    SyncMOBSTER that are registered)."""
    groups: dict[str, list[str]] = {g: [] for g in METHOD_GROUPS}
    for spec in METHODS.values():
        groups.setdefault(spec.group, []).append(spec.name)
    groups["all"] = list(METHODS)
    groups["baselines"] = [m for m in _BASELINES if m in METHODS]
    return groups


def methods_of_group(group: str) -> list[str]:
    """Methods of the group ``group`` (see :func:`method_groups`).

    Raises:
        UserError: an unknown group (listing the groups) or an empty one.
    """
    groups = method_groups()
    if group not in groups:
        raise UserError(f"unknown method group '{group}'; known groups: {', '.join(groups)} "
                        "(see `tunebench list --methods`)")
    if not groups[group]:
        raise UserError(f"method group '{group}' has no registered method; pass --method NAME")
    return list(groups[group])


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


def canonical_method_names(names: Sequence[str]) -> list[str]:
    """Registered names of ``names`` (case-insensitive), without duplicates.

    Raises:
        UserError: an unknown name (the message lists the methods and the groups).
    """
    out: list[str] = []
    for name in names:
        spec = _lookup(name)
        if spec is None:
            groups = ", ".join(f"{g} ({len(ms)})" for g, ms in method_groups().items())
            raise UserError(f"unknown method '{name}'; known methods: {', '.join(METHODS)}; groups for "
                            f"--method-group: {groups} (see `tunebench list --methods`)")
        if spec.name not in out:
            out.append(spec.name)
    return out


def _max_t_from_space(config_space: dict[str, Any], max_resource_attr: str) -> Any:
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
    metric: str | Sequence[str],
    mode: str | Sequence[str] = "min",
    resource_attr: str | None = None,
    max_resource_attr: str | None = None,
    max_t: int | None = None,
    seed: int = 0,
    constraints: Sequence[str | Constraint] | None = None,
    cost_attr: str | None = None,
    prior: Prior | None = None,
    transfer: Sequence[TransferTask] = (),
    **kwargs: Any,
) -> Scheduler:
    """Build the scheduler of the registered ``method`` (see :func:`method_names`).

    ``metric``: the reported metric to optimize, or several (``["val_accuracy", "time"]``) for a
    multi-objective method; ``mode``: ``"min"`` or ``"max"``, one for all metrics or one each
    (:class:`~tunebench.types.Objectives`). ``kwargs`` override the method's defaults.  If
    ``max_t`` is ``None`` and ``max_resource_attr`` names a constant of ``config_space``, that
    constant is ``max_t``. ``constraints``: bounds on reported metrics (``"latency<=20"`` or
    :class:`~tunebench.types.Constraint`), given to the method as ``MethodContext.constraints``;
    ``cost_attr``: the reported cost, ``MethodContext.cost_attr``, for a method registered with
    ``cost_aware=True``; ``prior``: the user's prior (:class:`~tunebench.space.Prior`),
    ``MethodContext.prior``, for a method registered with ``needs_prior=True`` (the others
    ignore it); ``transfer``: results of earlier tasks
    (:func:`tunebench.analysis.transfer.load_transfer_tasks`), ``MethodContext.transfer``, read by
    the methods registered with ``transfer=True`` and ignored by the others.

    Raises:
        UserError: unknown method, unknown option for it, several metrics for a method that
            optimizes one, a cost for a method that does not use one, a multi-fidelity method
            without ``resource_attr`` / ``max_t`` (the message says which command-line option to
            pass), or an option the method rejects (any ``ValueError`` of its factory, same message).
    """
    spec = get_method(method)
    objectives = Objectives.from_args(metric, mode)
    if objectives.is_multi and not spec.multi_objective:
        several = [m.name for m in METHODS.values() if m.multi_objective]
        choice = (f"use a multi-objective method ({', '.join(several)})" if several
                  else "no multi-objective method is registered yet")
        raise UserError(f"method {spec.name!r} optimizes one metric, got {len(objectives.metrics)} "
                        f"({', '.join(objectives.metrics)}): give one --metric, or {choice}")
    if cost_attr is not None and not spec.cost_aware:
        aware = [m.name for m in METHODS.values() if m.cost_aware]
        use = f"use {' or '.join(aware)}, or " if aware else ""
        raise UserError(f"method {spec.name} does not use a cost: {use}drop --cost-attr")
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
    if spec.options is not None:
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            raise UserError(
                f"method {spec.name!r} does not take option(s) {', '.join(unknown)}; "
                f"its options: {', '.join(sorted(spec.options)) or 'none'}"
            )
    ctx = MethodContext(config_space, objectives.metrics[0], objectives.modes[0], resource_attr, max_resource_attr,
                        max_t, seed, objectives, parse_constraints(constraints), cost_attr,
                        prior=prior, transfer=tuple(transfer))
    if spec.needs_prior:
        ctx.require_prior(spec.name)  # no prior: one line naming --prior FILE
    # a constructor rejecting an option is the user's mistake: one line, not a traceback
    try:
        return user_errors(lambda: spec.build(ctx, options))
    except TypeError as exc:
        if not kwargs:
            raise  # no option of the user's: a bug of the factory
        # an option of the wrong type (a number for a list, a string for a number) is the user's mistake too
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UserError(f"method {spec.name!r} cannot use the option(s) {given}: {exc}") from exc
