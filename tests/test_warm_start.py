"""Warm starts: trial runs forked from a prepared interpreter (tunebench/backends/warm_server.py)
start as a cold run would (argv, environment, descriptors, signals, seeds, process group), end as
an interpreter would (exit codes, tracebacks, threads, atexit), survive fork-unsafe libraries (BLAS
thread pools), and fall back to cold starts when the prepared interpreter cannot be used."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tunebench.backends.local import LocalBackend
from tunebench.backends.warm_server import top_level_imports
from tunebench.types import Event, EventKind, Trial

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork server and /proc: Linux")

ROOT = Path(__file__).resolve().parents[1]
FINAL = {EventKind.COMPLETED, EventKind.FAILED, EventKind.STOPPED, EventKind.PAUSED}


@pytest.fixture
def make_backend(tmp_path: Path) -> Iterator[Callable[..., LocalBackend]]:
    backends: list[LocalBackend] = []

    def make(body: str, *, name: str = "train.py", **kwargs) -> LocalBackend:
        script = tmp_path / name
        script.write_text(textwrap.dedent(body))
        kwargs.setdefault("gpus", [])
        kwargs.setdefault("kill_grace_period", 1.0)
        kwargs.setdefault("env", {"PYTHONPATH": str(ROOT)})
        backend = LocalBackend(script=script, **kwargs)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.shutdown()


def run_trials(backend: LocalBackend, tmp_path: Path, configs: list[dict], timeout: float = 120.0,
               first_id: int = 0) -> dict[int, list[Event]]:
    """Start one trial per config, poll until all ended; the events of each."""
    events: dict[int, list[Event]] = {}
    for tid, config in enumerate(configs, start=first_id):
        folder = tmp_path / "trials" / f"{backend.warm_start}-{tid}"
        folder.mkdir(parents=True, exist_ok=True)
        backend.start(Trial(tid, config), folder)
        events[tid] = []
    deadline = time.monotonic() + timeout
    while not all(evs and evs[-1].kind in FINAL for evs in events.values()):
        assert time.monotonic() < deadline, f"trials did not end: {events}"
        for event in backend.poll(1.0):
            events[event.trial_id].append(event)
    return events


def results(evs: list[Event]) -> list[dict]:
    return [e.result for e in evs if e.kind is EventKind.RESULT]


PROBE = """
    import json, os, signal, sys, threading
    from tunebench import report
    def kind(fd):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return "gone"  # (the descriptor listdir used)
        return "proc" if target.startswith("/proc/") else target.split(":")[0]
    fds = os.listdir("/proc/self/fd")
    report(
        argv=sys.argv, cwd=os.getcwd(), path0=sys.path[0], name=__name__, file=__file__,
        fds=sorted(kind(fd) for fd in fds),
        env={k: v for k, v in os.environ.items()
             if k.startswith(("TUNEBENCH_", "CUDA_")) and k != "TUNEBENCH_NOTIFY_FD"},
        notify_ok=os.fstat(int(os.environ["TUNEBENCH_NOTIFY_FD"])) is not None,
        own_group=os.getpgid(0) == os.getpid(), threads=threading.active_count(),
        sigint=signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        sigterm=signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        sigchld=signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL,
        wakeup_fd=signal.set_wakeup_fd(-1), stdin=os.readlink("/proc/self/fd/0"),
    )
"""


def test_a_warm_run_starts_as_a_cold_run_would(make_backend, tmp_path: Path):
    seen = {}
    for warm in (True, False):
        backend = make_backend(PROBE, warm_start=warm, gpus=["0", "1"], gpus_per_trial=1)
        events = run_trials(backend, tmp_path, [{"lr": 0.5}])
        assert events[0][-1].kind is EventKind.COMPLETED, events[0][-1].error
        assert events[0][-1].info["warm"] is warm
        (probe,) = results(events[0])
        folder = str(tmp_path / "trials" / f"{warm}-0")
        probe["env"] = {k: v.replace(folder, "<trial>") for k, v in probe["env"].items()}
        probe["cwd"] = probe["cwd"].replace(folder, "<trial>")
        for key in ("_timestamp", "_iteration"):
            probe.pop(key)
        seen[warm] = probe
    assert seen[True] == seen[False]
    probe = seen[True]
    assert probe["argv"] == [str(tmp_path / "train.py"), "--lr", "0.5"]
    assert probe["name"] == "__main__" and probe["path0"] == str(tmp_path)
    assert probe["env"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert probe["own_group"] and probe["sigint"] and probe["sigterm"] and probe["sigchld"]
    assert probe["wakeup_fd"] == -1 and probe["stdin"] == "/dev/null" and probe["threads"] == 1


BLAS = """
    import random, sys
    import numpy as np
    from tunebench import report
    a = np.random.default_rng(0).standard_normal((600, 600))
    product = a @ a.T  # a multi-threaded BLAS call in the forked child
    expected = sum(a[3, k] * a[5, k] for k in range(600))
    checks = {"numpy_ok": bool(abs(product[3, 5] - expected) < 1e-8), "legacy": np.random.rand(),
              "stdlib": random.random()}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(2)
        t = torch.from_numpy(a)
        checks["torch_ok"] = bool(abs((t @ t.T)[3, 5].item() - expected) < 1e-8)
        checks["torch_conv"] = float(torch.nn.functional.conv2d(torch.ones(1, 1, 8, 8), torch.ones(1, 1, 3, 3)).sum())
    report(**checks)
"""


def test_blas_and_torch_thread_pools_work_in_forked_runs_and_seeds_are_fresh(make_backend, tmp_path: Path):
    backend = make_backend(BLAS, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"})
    events = run_trials(backend, tmp_path, [{}, {}, {}])
    assert backend.prepared is not None and backend.prepared.broken is None
    assert "numpy" in backend.prepared.info["imported"]  # the BLAS pool was started before the forks
    probes = []
    for tid, evs in events.items():
        assert evs[-1].kind is EventKind.COMPLETED and evs[-1].info["warm"], (tid, evs[-1].error)
        (probe,) = results(evs)
        assert probe["numpy_ok"]
        if "torch_ok" in probe:
            assert probe["torch_ok"] and probe["torch_conv"] == 36 * 9
        probes.append(probe)
    assert len({p["legacy"] for p in probes}) == 3, "numpy's global generator is reseeded in each run"
    assert len({p["stdlib"] for p in probes}) == 3, "random is reseeded in each run"


def test_a_failing_import_fails_the_trial_as_a_cold_start_does(make_backend, tmp_path: Path):
    body = "import json\nimport no_such_module_for_tunebench\n"
    errors = {}
    for warm in (True, False):
        backend = make_backend(body, warm_start=warm)
        events = run_trials(backend, tmp_path, [{}])
        final = events[0][-1]
        assert final.kind is EventKind.FAILED and final.info["warm"] is warm
        errors[warm] = final.error
        if warm:
            assert "no_such_module_for_tunebench" in backend.prepared.info["failed"]
    for error in errors.values():
        assert error.startswith("exit code 1")
        assert "ModuleNotFoundError: No module named 'no_such_module_for_tunebench'" in error
    warm_trace = errors[True].splitlines()
    assert not any("warm_server" in line or "runpy" in line for line in warm_trace), errors[True]


ENDINGS = """
    import argparse, atexit, os, sys, threading, time
    from tunebench import report
    p = argparse.ArgumentParser()
    p.add_argument("--how")
    how = p.parse_args().how
    atexit.register(lambda: report(step="atexit"))
    def late():
        time.sleep(0.3)
        report(step="thread")
    threading.Thread(target=late).start()  # not a daemon: the interpreter waits for it
    report(step="main")
    if how == "exit3":
        sys.exit(3)
    if how == "message":
        sys.exit("bad input")
    if how == "raise":
        def inner():
            raise ValueError("boom")
        inner()
"""


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_a_run_ends_as_an_interpreter_would(make_backend, tmp_path: Path, warm: bool):
    backend = make_backend(ENDINGS, warm_start=warm)
    events = run_trials(backend, tmp_path, [{"how": h} for h in ("ok", "exit3", "message", "raise")])
    for evs in events.values():
        assert [r["step"] for r in results(evs)] == ["main", "thread", "atexit"]
        assert evs[-1].info["warm"] is warm
    assert events[0][-1].kind is EventKind.COMPLETED
    assert events[1][-1].error.startswith("exit code 3")
    assert events[2][-1].error.startswith("exit code 1") and "bad input" in events[2][-1].error
    trace = events[3][-1].error
    assert trace.startswith("exit code 1") and "ValueError: boom" in trace
    frames = [line.strip() for line in trace.splitlines() if line.strip().startswith("File ")]
    assert frames and all(str(tmp_path / "train.py") in f for f in frames), trace


def test_the_scripts_imports_are_found_without_running_it(tmp_path: Path):
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent("""
        import os, json as j
        from collections import abc, OrderedDict
        from . import sibling
        try:
            import fractions
        except ImportError:
            fractions = None
        if True:
            import decimal
        def later():
            import zipfile
        raise SystemExit("never run")
    """))
    assert top_level_imports(str(script)) == [
        "os", "json", "collections", "collections.abc", "collections.OrderedDict", "fractions", "decimal"]


def test_prepared_interpreter_imports_third_party_modules_not_the_users_own(make_backend, tmp_path: Path):
    (tmp_path / "helper.py").write_text("import fractions\nVALUE = 7\n")
    body = """
        import helper
        from tunebench import report
        report(value=helper.VALUE)
    """
    backend = make_backend(body, preload=["xml.dom.minidom"])
    events = run_trials(backend, tmp_path, [{}])
    assert events[0][-1].kind is EventKind.COMPLETED and results(events[0])[0]["value"] == 7
    imported = backend.prepared.info["imported"]
    assert "fractions" in imported and "xml.dom.minidom" in imported and "tunebench" in imported
    assert "helper" not in imported  # the user's module is parsed, not imported: it may change


def test_an_unusable_prepared_interpreter_means_cold_starts(make_backend, tmp_path: Path, caplog):
    (tmp_path / "dies_on_import.py").write_text("import os\nos._exit(3)\n")
    body = "from tunebench import report\nreport(x=1)\n"
    backend = make_backend(body, preload=["dies_on_import"])
    with caplog.at_level(logging.WARNING, logger="tunebench.backends.warm"):
        events = run_trials(backend, tmp_path, [{}, {}])
    for evs in events.values():
        assert evs[-1].kind is EventKind.COMPLETED and evs[-1].info["warm"] is False
    assert backend.prepared.broken.startswith("exited")
    warnings = [r for r in caplog.records if "warm starts are off" in r.getMessage()]
    assert len(warnings) == 1


def test_pause_and_resume_of_a_warm_run_continue_from_the_checkpoint(make_backend, tmp_path: Path):
    body = """
        import time
        from tunebench import report, load_checkpoint, save_checkpoint
        state = load_checkpoint() or {"epoch": 0}
        for epoch in range(state["epoch"] + 1, 6):
            time.sleep(0.1)
            save_checkpoint({"epoch": epoch})
            report(epoch=epoch)
    """
    backend = make_backend(body, kill_grace_period=2.0)
    folder = tmp_path / "trials" / "0"
    folder.mkdir(parents=True)
    backend.start(Trial(0, {}), folder)
    seen: list[Event] = []
    while not any(e.kind is EventKind.RESULT and e.result["epoch"] >= 2 for e in seen):
        seen.extend(backend.poll(5.0))
    backend.pause(0)
    while not seen or seen[-1].kind is not EventKind.PAUSED:
        seen.extend(backend.poll(5.0))
    backend.resume(0)
    while seen[-1].kind is not EventKind.COMPLETED:
        seen.extend(backend.poll(5.0))
    epochs = [e.result["epoch"] for e in seen if e.kind is EventKind.RESULT]
    assert epochs == sorted(epochs) and epochs[-1] == 5 and set(epochs) == {1, 2, 3, 4, 5}
    assert seen[-1].info["warm"] is True


def test_the_trial_tree_dies_with_the_tuner(tmp_path: Path):
    """SIGKILL of the tuner: the prepared interpreter dies (parent-death signal), so does every
    supervisor it forked, and with it each trial's whole process tree."""
    import signal
    import subprocess

    script = tmp_path / "train.py"
    script.write_text("import os, subprocess, sys, time\n"
                      "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                      "print(os.getpid(), child.pid, flush=True)\n"
                      "time.sleep(60)\n")
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import time
        from pathlib import Path
        from tunebench.backends.local import LocalBackend
        from tunebench.types import Trial
        b = LocalBackend(script={str(script)!r}, gpus=[])
        for i in range(2):
            d = Path({str(tmp_path)!r}) / "trials" / str(i)
            d.mkdir(parents=True)
            b.start(Trial(i, {{}}), d)
        print(b.prepared.pid, flush=True)
        time.sleep(60)
    """))
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    zygote = int(proc.stdout.readline())
    pids = [zygote]
    deadline = time.monotonic() + 60
    for i in range(2):
        log = tmp_path / "trials" / str(i) / "stdout.log"
        while not log.exists() or not log.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pids += [int(p) for p in log.read_text().split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 20
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if alive(p)]
        time.sleep(0.05)


def test_threads_a_preloaded_module_started_do_not_reach_or_block_the_runs(make_backend, tmp_path: Path):
    """A module that starts a thread at import (telemetry, a log shipper) leaves it in the prepared
    interpreter: the forked runs have one thread, and the locks that thread takes (the logging
    module's, stdout's) are usable in them."""
    (tmp_path / "chatty.py").write_text(textwrap.dedent("""
        import logging, sys, threading, time
        log = logging.getLogger("chatty")
        def loop():
            while True:
                log.warning("tick")  # the logging module's locks, taken all the time
                sys.stdout.write("")
                time.sleep(0.0005)
        threading.Thread(target=loop, daemon=True).start()
    """))
    body = """
        import logging, threading
        import chatty
        from tunebench import report
        logging.getLogger("trial").warning("logging works")
        print("stdout works", flush=True)
        report(threads=threading.active_count())
    """
    backend = make_backend(body, preload=["chatty"])
    events = run_trials(backend, tmp_path, [{} for _ in range(6)], timeout=60.0)
    assert backend.prepared.info["threads"] >= 2 and "chatty" in backend.prepared.info["imported"]
    for evs in events.values():
        assert evs[-1].kind is EventKind.COMPLETED and evs[-1].info["warm"], evs[-1].error
        assert results(evs)[0]["threads"] == 1


def test_a_dead_prepared_interpreter_fails_its_runs_and_later_runs_start_cold(make_backend, tmp_path: Path,
                                                                              caplog):
    """If the prepared interpreter dies (the OOM killer, a kill -9), the runs it forked die with it
    (their supervisors' parent-death signal: nothing is left behind), each reported FAILED, and the
    backend goes on with cold starts."""
    import signal

    body = """
        import sys, time
        from tunebench import report
        report(step=1)
        time.sleep(float(sys.argv[-1]) if len(sys.argv) > 2 else 0)
    """
    backend = make_backend(body)
    folder = tmp_path / "trials" / "0"
    folder.mkdir(parents=True)
    backend.start(Trial(0, {"hold": 30}), folder)
    seen: list[Event] = []
    while not any(e.kind is EventKind.RESULT for e in seen):
        seen.extend(backend.poll(5.0))
    os.kill(backend.prepared.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not any(e.kind in FINAL for e in seen):
        assert time.monotonic() < deadline
        seen.extend(backend.poll(1.0))
    assert seen[-1].kind is EventKind.FAILED and "SIGKILL" in seen[-1].error
    with caplog.at_level(logging.WARNING, logger="tunebench.backends.warm"):
        events = run_trials(backend, tmp_path, [{"hold": 0}], first_id=1)
    assert events[1][-1].kind is EventKind.COMPLETED and events[1][-1].info["warm"] is False
    assert any("warm starts are off" in r.getMessage() for r in caplog.records)
