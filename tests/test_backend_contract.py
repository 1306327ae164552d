"""Every built-in backend passes the backend contract suite, run on real implementations: the local
backend (real subprocesses of the suite's training script), the simulator (a real synthetic
blackbox) and Ray (a real LocalRayCluster: slow, like the other Ray tests). Then: the suite
catches deliberately broken backends (test-only wrappers around a real one)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tunebench.backends.base import Backend
from tunebench.backends.local import LocalBackend
from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes import branin_blackbox
from tunebench.testing.backend_contract import (
    CONTRACT_CHECKS,
    CONTRACT_SCRIPT,
    ContractWorkload,
    script_workload,
)
from tunebench.types import Config, Event, EventKind, Trial

MakeWorkload = Callable[[], ContractWorkload]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")

BRANIN_CONFIG = {"x1": 1.0, "x2": 2.0}


def write_contract_script(folder: Path) -> Path:
    path = folder / "contract_script.py"
    path.write_text(CONTRACT_SCRIPT)
    return path


def local_maker(tmp_path: Path, wrap: Callable[[Backend], Backend] = lambda b: b, *,
                warm_start: bool = True) -> MakeWorkload:
    script = write_contract_script(tmp_path)

    def make() -> ContractWorkload:
        backend = LocalBackend(script=script, gpus=[], kill_grace_period=10.0, warm_start=warm_start)
        return script_workload(wrap(backend), tmp_path / "trials")

    return make


def simulator_maker(wrap: Callable[[Backend], Backend] = lambda b: b) -> MakeWorkload:
    """Branin with learning curves over epochs 1..27; a trial's ``epochs`` caps its fidelity; a
    config outside the space FAILS (the simulator checks configs)."""

    def make() -> ContractWorkload:
        backend = SimulatorBackend(branin_blackbox(max_fidelity=27), max_resource_attr="epochs",
                                   charge_decision_time=False)
        return ContractWorkload(
            backend=wrap(backend), resource_attr="epoch",
            finite_config={**BRANIN_CONFIG, "epochs": 3}, finite_levels=[1, 2, 3],
            endless_config=dict(BRANIN_CONFIG), endless_levels=list(range(1, 28)),
            failing_config={"x1": 100.0, "x2": 2.0},
            poll_timeout=1e6, patience=30.0)

    return make


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A real Ray cluster (a head and one worker node with 4 CPUs), connected for the module."""
    ray = pytest.importorskip("ray", reason="the Ray backend tests need Ray: pip install 'tunebench[ray]'")
    from tunebench.testing.ray_cluster import LocalRayCluster

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setenv("RAY_AUTH_MODE", "disabled")
        if ray.is_initialized():
            ray.shutdown()
        with LocalRayCluster(head_cpus=0, workers={"node_a": 4}) as cluster:
            ray.init(address=cluster.address, log_to_driver=False)
            try:
                yield cluster.address
            finally:
                ray.shutdown()


def ray_maker(tmp_path: Path) -> MakeWorkload:
    from tunebench.backends.ray_backend import RayBackend

    script = write_contract_script(tmp_path)

    def make() -> ContractWorkload:
        backend = RayBackend(script=script, kill_grace_period=10.0, check_nodes=False)
        return script_workload(backend, tmp_path / "trials")

    return make


BACKENDS = [
    pytest.param("local", marks=POSIX, id="local"),
    pytest.param("local-cold", marks=POSIX, id="local-cold"),
    pytest.param("simulator", id="simulator"),
    pytest.param("ray", marks=[POSIX, pytest.mark.slow], id="ray"),
]


@pytest.mark.parametrize("check", list(CONTRACT_CHECKS), ids=list(CONTRACT_CHECKS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_contract(backend: str, check: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend.startswith("local"):
        make = local_maker(tmp_path, warm_start=backend == "local")
    elif backend == "simulator":
        make = simulator_maker()
    else:
        request.getfixturevalue("ray_cluster")
        make = ray_maker(tmp_path)
    CONTRACT_CHECKS[check](make)


# -- the suite catches broken backends ------------------------------------------------------------


class _Wrapper(Backend):
    """Delegates every call to a real backend; subclasses break one thing on purpose."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.clock = inner.clock
        self.uses_trial_dirs = inner.uses_trial_dirs

    def start(self, trial: Trial, trial_dir: Path | None, results_offset: int = 0) -> None:
        self.inner.start(trial, trial_dir, results_offset)

    def pause(self, trial_id: int) -> None:
        self.inner.pause(trial_id)

    def resume(self, trial_id: int, config: Config | None = None) -> None:
        self.inner.resume(trial_id, config)

    def stop(self, trial_id: int) -> None:
        self.inner.stop(trial_id)

    def poll(self, timeout: float) -> list[Event]:
        return self.inner.poll(timeout)

    def shutdown(self) -> None:
        self.inner.shutdown()

    @property
    def n_busy(self) -> int:
        return self.inner.n_busy


class _DropsAResultAfterResume(_Wrapper):
    """Loses the first result of each resumed run."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.drop: set[int] = set()

    def resume(self, trial_id: int, config: Config | None = None) -> None:
        self.drop.add(trial_id)
        super().resume(trial_id, config)

    def poll(self, timeout: float) -> list[Event]:
        out = []
        for e in super().poll(timeout):
            if e.kind is EventKind.RESULT and e.trial_id in self.drop:
                self.drop.discard(e.trial_id)
                continue
            out.append(e)
        return out


class _RestartsOnResume(_Wrapper):
    """Resumes a paused trial from its beginning (a relaunch without its checkpoint)."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.configs: dict[int, Config] = {}

    def start(self, trial: Trial, trial_dir: Path | None, results_offset: int = 0) -> None:
        self.configs[trial.trial_id] = trial.config
        super().start(trial, trial_dir, results_offset)

    def resume(self, trial_id: int, config: Config | None = None) -> None:
        self.inner.start(Trial(trial_id, config or self.configs[trial_id]), None)


class _EchoesAfterCompletion(_Wrapper):
    """Reports a completed trial's last result once more, after its COMPLETED event."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.echo: list[Event] = []
        self.last: dict[int, Event] = {}

    def poll(self, timeout: float) -> list[Event]:
        events, self.echo = self.echo, []
        for e in super().poll(timeout):
            events.append(e)
            if e.kind is EventKind.RESULT:
                self.last[e.trial_id] = e
            elif e.kind is EventKind.COMPLETED:
                self.echo.append(self.last[e.trial_id])
        return events


class _SecondShutdownFails(_Wrapper):
    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.closed = False

    def shutdown(self) -> None:
        if self.closed:
            raise RuntimeError("already shut down")
        self.closed = True
        super().shutdown()


class _BusyCountsStoppedTrials(_Wrapper):
    """Keeps counting a stopped trial as busy."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.stopped: set[int] = set()

    def stop(self, trial_id: int) -> None:
        self.stopped.add(trial_id)
        super().stop(trial_id)

    @property
    def n_busy(self) -> int:
        return self.inner.n_busy + len(self.stopped)


class _SilentFailures(_Wrapper):
    """Drops the error text of FAILED events."""

    def poll(self, timeout: float) -> list[Event]:
        events = super().poll(timeout)
        for e in events:
            if e.kind is EventKind.FAILED:
                e.error = None
        return events


class _StopCompletes(_Wrapper):
    """Reports a stopped trial as COMPLETED."""

    def poll(self, timeout: float) -> list[Event]:
        events = super().poll(timeout)
        for e in events:
            if e.kind is EventKind.STOPPED:
                e.kind = EventKind.COMPLETED
        return events


class _FrozenOffsets(_Wrapper):
    """Reports every result of a trial at the offset of its first one."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.first: dict[int, int | None] = {}

    def poll(self, timeout: float) -> list[Event]:
        events = super().poll(timeout)
        for e in events:
            if e.kind is EventKind.RESULT:
                e.offset = self.first.setdefault(e.trial_id, e.offset)
        return events


@pytest.mark.parametrize(
    "wrapper, check, message",
    [
        (_DropsAResultAfterResume, "pause_resume", "expected the levels"),
        (_RestartsOnResume, "pause_resume", "expected the levels"),
        (_EchoesAfterCompletion, "completes", "a result event after its final event completed"),
        (_SecondShutdownFails, "shutdown", "second shutdown"),
        (_BusyCountsStoppedTrials, "busy_count", "n_busy is"),
        (_SilentFailures, "failure", "FAILED without an error text"),
        (_StopCompletes, "stop", "ended completed while stopping"),
    ],
)
def test_suite_catches_broken_simulated_backends(wrapper: type[_Wrapper], check: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        CONTRACT_CHECKS[check](simulator_maker(wrapper))


@POSIX
@pytest.mark.parametrize(
    "wrapper, check, message",
    [
        (_FrozenOffsets, "completes", "result offsets must increase"),
        (_DropsAResultAfterResume, "pause_resume", "expected the levels"),
    ],
)
def test_suite_catches_broken_process_backends(wrapper: type[_Wrapper], check: str, message: str,
                                                tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=message):
        CONTRACT_CHECKS[check](local_maker(tmp_path, wrapper))
