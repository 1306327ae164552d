"""The registry of backends (L2): name -> factory and the options it takes.

``--backend NAME`` (its choices come from :func:`backend_names`), a run's ``RunSpec.backend`` and
an experiment grid all name a backend registered here; :func:`tunebench.launch.build_backend`
builds it by calling its factory with the options the factory's keyword parameters name
(:attr:`BackendEntry.options`): fields of the run specification (``script``, ``trial_timeout``,
``gpus_per_trial``, ``ray_address``, ...) and, for a backend that does not run scripts, the
simulated benchmark's ``blackbox`` and ``elapsed_time_attr``; ``env`` is the environment added to
a trial's. A backend of one's own is added with :func:`register_backend`, called or used as a
decorator (the same shape as :func:`tunebench.blackboxes.registry.register_blackbox`)::

    @register_backend("slurm", runs_scripts=True, cluster=True, trials="Slurm jobs")
    def make_slurm(*, script, trial_timeout, gpus_per_trial, env):
        return SlurmBackend(script, ...)

This module imports no backend: the command line reads it at start-up, and a backend's module
(numpy, Ray) is imported by its factory when a run builds it.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from tunebench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from tunebench.backends.base import Backend

__all__ = [
    "BackendEntry",
    "register_backend",
    "get_backend",
    "backend_names",
    "LOCAL",
    "RAY",
    "SIMULATOR",
]

#: the built-in backends: real processes here, Ray actors on a cluster, simulated time
LOCAL, RAY, SIMULATOR = "local", "ray", "simulator"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend.

    Attributes:
        name: ``--backend NAME``.
        factory: called with keyword options (see :attr:`options`) when a run is built; returns a
            :class:`~tunebench.backends.base.Backend`.
        runs_scripts: True if its trials run a training script (a real benchmark); False if it
            replays a simulated benchmark's blackbox.
        cluster: its trials run on a cluster (a real benchmark's ``ray_*`` defaults apply, and the
            ``--ray-*`` options).
        requires: a Python module it needs (checked by :meth:`check`), or None; ``install`` says
            how to get it.
        trials: how its trials run, for messages ("local processes", "Ray actors", ...).
    """

    name: str
    factory: Callable[..., Backend]
    runs_scripts: bool
    cluster: bool = False
    requires: str | None = None
    install: str = ""
    trials: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        """The names of the factory's keyword parameters: the options a run passes it."""
        return tuple(p.name for p in inspect.signature(self.factory).parameters.values()
                     if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))

    def check(self) -> BackendEntry:
        """This entry, if this installation can run it.

        Raises:
            UserError: its required package is not installed.
        """
        if self.requires is not None and importlib.util.find_spec(self.requires) is None:
            raise UserError(f"--backend {self.name} needs {self.install or self.requires}")
        return self


_BACKENDS: dict[str, BackendEntry] = {}


@overload
def register_backend(name: str, factory: None = None, *, runs_scripts: bool, cluster: bool = False,
                     requires: str | None = None, install: str = "", trials: str = "") -> Callable[[F], F]: ...
@overload
def register_backend(name: str, factory: F, *, runs_scripts: bool, cluster: bool = False,
                     requires: str | None = None, install: str = "", trials: str = "") -> F: ...
def register_backend(name: str, factory: Any = None, *, runs_scripts: bool, cluster: bool = False,
                     requires: str | None = None, install: str = "", trials: str = "") -> Any:
    """Make ``factory(**options)`` (returning a :class:`~tunebench.backends.base.Backend`)
    available as ``--backend name`` (replaces a backend of that name). Without ``factory``, a
    decorator registering the function it decorates. Returns the factory."""

    def add(function: F) -> F:
        if not callable(function):
            raise UserError(f"backend {name!r}: the factory must be a function, got {type(function).__name__}")
        _BACKENDS[name] = BackendEntry(name, function, runs_scripts=runs_scripts, cluster=cluster,
                                       requires=requires, install=install, trials=trials or f"{name} trials")
        return function

    return add if factory is None else add(factory)


def get_backend(name: str) -> BackendEntry:
    """The backend ``name``.

    Raises:
        UserError: an unknown backend (listing the known ones).
    """
    entry = _BACKENDS.get(name)
    if entry is None:
        raise UserError(f"unknown backend '{name}'; known backends: {', '.join(_BACKENDS)}")
    return entry


def backend_names(*, runs_scripts: bool | None = None) -> list[str]:
    """Registered backend names, in registration order (only those running scripts, or only the
    simulated ones, when ``runs_scripts`` is given)."""
    return [n for n, e in _BACKENDS.items() if runs_scripts is None or e.runs_scripts == runs_scripts]


# -- the built-in backends -----------------------------------------------------------------------


@register_backend(LOCAL, runs_scripts=True, trials="local processes")
def _local(*, script: str, trial_timeout: float | None, gpus_per_trial: int,
           env: dict[str, str] | None, trial_cwd: str | None, trial_log_limit: int | None,
           warm_start: bool, preload: list[str], function: dict[str, Any] | None) -> Backend:
    from tunebench.backends.local import DEFAULT_LOG_LIMIT, LocalBackend  # deferred: keeps this registry light
    from tunebench.backends.warm import FunctionTarget  # deferred: as above

    return LocalBackend(script=None if function else script, trial_timeout=trial_timeout,
                        gpus_per_trial=gpus_per_trial, env=env, cwd=trial_cwd,
                        log_limit=DEFAULT_LOG_LIMIT if trial_log_limit is None else trial_log_limit,
                        warm_start=warm_start, preload=preload,
                        function=FunctionTarget.from_dict(function) if function else None)


@register_backend(RAY, runs_scripts=True, cluster=True, requires="ray",
                  install="Ray: pip install 'tunebench[ray]'", trials="Ray actors")
def _ray(*, script: str, ray_address: str | None, cpus_per_trial: int | None, gpus_per_trial: int,
         warm_pool: bool, storage: str | None, max_retries: int, trial_timeout: float | None,
         env: dict[str, str] | None, ray_node_wait: float, warm_start: bool, preload: list[str],
         function: dict[str, Any] | None) -> Backend:
    from tunebench.backends.ray_backend import RayBackend  # deferred: keeps this registry (CLI start-up) light
    from tunebench.backends.warm import FunctionTarget  # deferred: as above

    return RayBackend(script=script, address=ray_address, num_cpus_per_trial=cpus_per_trial or 1,
                      num_gpus_per_trial=gpus_per_trial, warm_pool=warm_pool, storage=storage,
                      max_retries=max_retries, trial_timeout=trial_timeout, env=env, node_wait=ray_node_wait,
                      warm_start=warm_start, preload=preload,
                      function=FunctionTarget.from_dict(function) if function else None)


@register_backend(SIMULATOR, runs_scripts=False, trials="simulated time")
def _simulator(*, blackbox: Any, seed: int, elapsed_time_attr: str | None, resource_attr: str | None,
               max_resource_attr: str | None, charge_decision_time: bool) -> Backend:
    from tunebench.backends.simulator import SimulatorBackend  # deferred: numpy; keeps the CLI start-up light

    return SimulatorBackend(blackbox, seed=None if blackbox.n_seeds > 1 else 0, rng_seed=seed,
                            elapsed_time_attr=elapsed_time_attr, resource_attr=resource_attr,
                            max_resource_attr=max_resource_attr, charge_decision_time=charge_decision_time)
