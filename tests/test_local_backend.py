"""LocalBackend with real subprocesses running small training scripts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tunebench.backends import local as local_module
from tunebench.backends.base import RESULTS_FILENAME, STDOUT_FILENAME
from tunebench.backends.local import LocalBackend, detect_gpus
from tunebench.errors import UserError
from tunebench.reporting import load_checkpoint, save_checkpoint
from tunebench.types import Event, EventKind, Trial

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")

FINAL = (EventKind.COMPLETED, EventKind.FAILED, EventKind.PAUSED, EventKind.STOPPED)

#: reports ``epochs`` epochs, resuming from its checkpoint; ``--sleep`` seconds per epoch
EPOCHS_SCRIPT = """
import argparse, os, time
from tunebench import report, save_checkpoint, load_checkpoint
p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--lr", type=float, default=0.1)
args = p.parse_args()
state = load_checkpoint() or {"epoch": 0}
for epoch in range(state["epoch"] + 1, args.epochs + 1):
    time.sleep(args.sleep)
    save_checkpoint({"epoch": epoch})
    report(epoch=epoch, loss=args.lr / epoch, pid=os.getpid())
"""


def write_script(tmp_path: Path, body: str, name: str = "train.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture(params=["warm", "cold"])
def make_backend(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalBackend]]:
    """Backends whose runs are forked from a prepared interpreter (warm) or are new interpreters (cold)."""
    backends: list[LocalBackend] = []
    warm = request.param == "warm"

    def make(body: str = EPOCHS_SCRIPT, **kwargs) -> LocalBackend:
        kwargs.setdefault("gpus", [])
        kwargs.setdefault("warm_start", warm)
        kwargs.setdefault("kill_grace_period", 1.0)
        backend = LocalBackend(script=write_script(tmp_path, body), **kwargs)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.shutdown()
        if backend.warm_start:  # the runs were warm: no silent fall back to cold starts
            assert backend.prepared is None or backend.prepared.broken is None, backend.prepared.broken


def trial_dir(tmp_path: Path, trial_id: int) -> Path:
    path = tmp_path / "trials" / str(trial_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def collect(backend: LocalBackend, until: Callable[[list[Event]], bool], timeout: float = 10.0
            ) -> list[Event]:
    """Poll until ``until(events so far)`` holds."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while not until(events):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; events so far: {events}"
        events.extend(backend.poll(left))
    return events


def ended(*trial_ids: int) -> Callable[[list[Event]], bool]:
    return lambda events: {e.trial_id for e in events if e.kind in FINAL} >= set(trial_ids)


def results_of(events: list[Event], trial_id: int = 0) -> list[dict]:
    return [e.result for e in events if e.kind is EventKind.RESULT and e.trial_id == trial_id]


def final_of(events: list[Event], trial_id: int = 0) -> Event:
    (event,) = [e for e in events if e.kind in FINAL and e.trial_id == trial_id]
    return event


def test_results_stream_in_order_with_offsets(make_backend, tmp_path: Path):
    backend = make_backend()
    folder = trial_dir(tmp_path, 0)
    backend.start(Trial(0, {"epochs": 5, "lr": 0.5}), folder)
    assert backend.n_busy == 1
    events = collect(backend, ended(0))
    assert [e.kind for e in events] == [EventKind.RESULT] * 5 + [EventKind.COMPLETED]
    results = results_of(events)
    assert [r["epoch"] for r in results] == [1, 2, 3, 4, 5]
    assert [r["_iteration"] for r in results] == [0, 1, 2, 3, 4]
    assert results[1]["loss"] == 0.25
    raw = (folder / RESULTS_FILENAME).read_bytes()
    line_ends = [i + 1 for i, byte in enumerate(raw) if byte == ord("\n")]
    assert [e.offset for e in events[:5]] == line_ends
    assert events[0].time == results[0]["_timestamp"]
    done = events[-1]
    assert done.info["exit_code"] == 0 and done.info["pid"] == results[0]["pid"]
    assert done.info["gpus"] == []
    assert backend.n_busy == 0
    assert (folder / "checkpoint" / "checkpoint.npz").is_file()
    assert backend.poll(5.0) == []  # nothing running: returns at once


def test_parallel_trials_and_argv(make_backend, tmp_path: Path):
    backend = make_backend(EPOCHS_SCRIPT, extra_args=["--sleep", "0.01"])
    for tid in range(3):
        backend.start(Trial(tid, {"epochs": 3, "lr": 0.1 * (tid + 1)}), trial_dir(tmp_path, tid))
    assert backend.n_busy == 3
    events = collect(backend, ended(0, 1, 2))
    for tid in range(3):
        results = results_of(events, tid)
        assert [r["epoch"] for r in results] == [1, 2, 3]
        assert results[0]["loss"] == pytest.approx(0.1 * (tid + 1))
        assert final_of(events, tid).kind is EventKind.COMPLETED


def test_crash_is_failed_with_stderr_tail(make_backend, tmp_path: Path):
    backend = make_backend("""
        import sys
        from tunebench import report
        report(epoch=1)
        for i in range(10):
            print(f"warning line {i}", file=sys.stderr)
        raise RuntimeError("boom in training")
    """, stderr_tail_lines=3)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    events = collect(backend, ended(0))
    assert len(results_of(events)) == 1  # the report before the crash is not lost
    failed = final_of(events)
    assert failed.kind is EventKind.FAILED
    assert failed.error.startswith("exit code 1")
    assert "RuntimeError: boom in training" in failed.error
    assert "warning line" not in failed.error  # only the last 3 lines
    assert failed.info["exit_code"] == 1


def test_killed_by_a_signal_is_failed(make_backend, tmp_path: Path):
    backend = make_backend("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    failed = final_of(collect(backend, ended(0)))
    assert failed.kind is EventKind.FAILED and "SIGSEGV" in failed.error
    assert failed.info["exit_code"] == -signal.SIGSEGV


def test_malformed_line_fails_the_trial(make_backend, tmp_path: Path):
    backend = make_backend("""
        import os, time
        from tunebench import report
        report(epoch=1)
        with open(os.environ["TUNEBENCH_RESULTS_FILE"], "a") as f:
            f.write("{not json at all\\n")
        time.sleep(30)
    """, kill_grace_period=0.2)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    events = collect(backend, ended(0), timeout=20.0)  # (ended long before its 30 s sleep)
    assert [r["epoch"] for r in results_of(events)] == [1]  # the bad line is line 2
    failed = final_of(events)
    assert failed.kind is EventKind.FAILED
    assert "malformed report at line 2" in failed.error and "{not json at all" in failed.error


def test_non_object_line_is_malformed(make_backend, tmp_path: Path):
    backend = make_backend("""
        import os
        with open(os.environ["TUNEBENCH_RESULTS_FILE"], "a") as f:
            f.write("[1, 2]\\n")
    """)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    failed = final_of(collect(backend, ended(0)))
    assert failed.kind is EventKind.FAILED and "line 1" in failed.error and "not an object" in failed.error


def test_timeout_fails_the_trial(make_backend, tmp_path: Path):
    backend = make_backend("""
        import time
        from tunebench import report
        report(epoch=1)
        time.sleep(30)
    """, trial_timeout=0.5, kill_grace_period=0.5)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    t0 = time.monotonic()
    events = collect(backend, ended(0), timeout=20.0)  # (ended long before its 30 s sleep)
    assert time.monotonic() - t0 > 0.4
    failed = final_of(events)
    assert failed.kind is EventKind.FAILED and failed.error.startswith("timed out after 0.5 s")
    assert len(results_of(events)) == 1


def test_pause_then_resume_continues_from_the_checkpoint(make_backend, tmp_path: Path):
    backend = make_backend()
    folder = trial_dir(tmp_path, 0)
    backend.start(Trial(0, {"epochs": 200, "sleep": 0.02}), folder)
    events = collect(backend, lambda ev: len(results_of(ev)) >= 3)
    backend.pause(0)
    assert backend.n_busy == 1  # until its PAUSED event
    events += collect(backend, ended(0))
    paused = final_of(events)
    assert paused.kind is EventKind.PAUSED and backend.n_busy == 0
    before = [r["epoch"] for r in results_of(events)]
    assert before == list(range(1, len(before) + 1))
    saved = load_checkpoint(folder / "checkpoint")["epoch"]
    assert saved >= before[-1]

    backend.resume(0, {"epochs": saved + 3, "sleep": 0.0})
    after = collect(backend, ended(0))
    assert final_of(after).kind is EventKind.COMPLETED
    epochs = [r["epoch"] for r in results_of(after)]
    assert epochs == [saved + 1, saved + 2, saved + 3]  # only the later epochs
    assert results_of(after)[0]["_iteration"] == 0  # a new process
    offsets = [e.offset for e in events + after if e.kind is EventKind.RESULT]
    assert offsets == sorted(offsets) and offsets[-1] == (folder / RESULTS_FILENAME).stat().st_size
    assert results_of(after)[0]["pid"] != results_of(events)[0]["pid"]


def test_resume_right_after_pause_waits_for_the_old_process(make_backend, tmp_path: Path):
    """A scheduler may resume a trial it paused a moment ago (DyHPO does), before its process
    has exited: the backend waits for the old process, then relaunches from the checkpoint."""
    backend = make_backend()
    folder = trial_dir(tmp_path, 0)
    backend.start(Trial(0, {"epochs": 200, "sleep": 0.02}), folder)
    events = collect(backend, lambda ev: len(results_of(ev)) >= 2)
    backend.pause(0)
    backend.resume(0, {"epochs": 200, "sleep": 0.0})  # no PAUSED event polled yet
    events += collect(backend, ended(0))  # the old process's PAUSED
    events += collect(backend, ended(0))  # the new one's completion
    kinds = [e.kind for e in events if e.kind is not EventKind.RESULT]
    assert kinds == [EventKind.PAUSED, EventKind.COMPLETED]
    epochs = [r["epoch"] for r in results_of(events)]
    assert epochs[-1] == 200 and len(set(r["pid"] for r in results_of(events))) == 2
    assert sorted(set(epochs)) == list(range(1, 201))


def test_resume_and_stop_of_a_paused_trial(make_backend, tmp_path: Path):
    backend = make_backend("import time; time.sleep(30)", kill_grace_period=0.5)
    with pytest.raises(ValueError, match="not paused"):
        backend.resume(7)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    with pytest.raises(ValueError, match="already started"):
        backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    with pytest.raises(ValueError, match="still running"):
        backend.resume(0)
    backend.pause(0)
    assert final_of(collect(backend, ended(0))).kind is EventKind.PAUSED
    backend.stop(0)  # a paused trial: STOPPED at the next poll
    (event,) = backend.poll(1.0)
    assert event.kind is EventKind.STOPPED and event.trial_id == 0
    backend.stop(0)  # no-op
    backend.pause(0)  # no-op
    assert backend.poll(0.1) == []


def test_pause_racing_with_completion(make_backend, tmp_path: Path):
    """The tuner pauses a trial whose process has just completed: it can still be resumed."""
    backend = make_backend()
    backend.start(Trial(0, {"epochs": 2}), trial_dir(tmp_path, 0))
    events = collect(backend, ended(0))
    assert final_of(events).kind is EventKind.COMPLETED
    backend.pause(0)  # decided on the last result, too late: no-op
    assert backend.poll(0.1) == []
    backend.resume(0, {"epochs": 4})
    events = collect(backend, ended(0))
    assert [r["epoch"] for r in results_of(events)] == [3, 4]
    assert final_of(events).kind is EventKind.COMPLETED


def test_pause_wins_over_a_timeout(make_backend, tmp_path: Path):
    backend = make_backend("""
        import signal, time
        from tunebench import report
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        report(epoch=1)
        time.sleep(30)
    """, trial_timeout=0.2, kill_grace_period=0.5)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    collect(backend, lambda ev: len(results_of(ev)) == 1)
    time.sleep(0.3)
    assert backend.poll(0.05) == []  # the timeout fired: SIGTERM sent (ignored)
    backend.pause(0)
    assert final_of(collect(backend, ended(0))).kind is EventKind.PAUSED


def test_stop_kills_a_script_ignoring_sigterm(make_backend, tmp_path: Path):
    backend = make_backend("""
        import signal, time
        from tunebench import report
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        report(ready=1)
        time.sleep(30)
    """, kill_grace_period=0.4)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    collect(backend, lambda ev: len(results_of(ev)) == 1)
    t0 = time.monotonic()
    backend.stop(0)
    backend.pause(0)  # does not turn the stop into a pause
    events = collect(backend, ended(0))
    elapsed = time.monotonic() - t0
    stopped = final_of(events)
    assert stopped.kind is EventKind.STOPPED
    assert stopped.info["exit_code"] == -signal.SIGKILL  # killed, long before its 30 s sleep ends
    assert elapsed > 0.35, "the grace period was given"


def test_results_reported_on_sigterm_are_emitted(make_backend, tmp_path: Path):
    backend = make_backend("""
        import signal, sys, time
        from tunebench import report
        def on_term(*_):
            report(final=1)
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        report(ready=1)
        time.sleep(30)
    """, kill_grace_period=30.0)  # (the handler's report and exit must not race a SIGKILL on a loaded machine)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    events = collect(backend, lambda ev: len(results_of(ev)) == 1)
    backend.stop(0)
    events += collect(backend, ended(0))
    assert [e.kind for e in events] == [EventKind.RESULT, EventKind.RESULT, EventKind.STOPPED]
    assert events[1].result["final"] == 1 and events[1].offset > events[0].offset
    assert events[2].info["exit_code"] == 0


def test_results_offset_skips_old_lines(make_backend, tmp_path: Path):
    folder = trial_dir(tmp_path, 0)
    old = [json.dumps({"epoch": e, "_timestamp": 1.0, "_iteration": e - 1}) + "\n" for e in (1, 2, 3)]
    (folder / RESULTS_FILENAME).write_text("".join(old))
    (folder / "checkpoint").mkdir()
    save_checkpoint({"epoch": 3}, folder / "checkpoint")
    backend = make_backend()
    consumed = len(old[0]) + len(old[1])  # the dead tuner had consumed two lines
    backend.start(Trial(0, {"epochs": 5}), folder, results_offset=consumed)
    events = collect(backend, ended(0))
    assert [r["epoch"] for r in results_of(events)] == [3, 4, 5]
    assert events[0].offset == consumed + len(old[2])
    assert events[2].offset == (folder / RESULTS_FILENAME).stat().st_size


def test_torn_line_is_skipped_on_restart(make_backend, tmp_path: Path):
    folder = trial_dir(tmp_path, 0)
    good = json.dumps({"epoch": 1, "_timestamp": 1.0, "_iteration": 0}) + "\n"
    (folder / RESULTS_FILENAME).write_text(good + '{"epoch": 2, "lo')  # crash mid-write
    backend = make_backend("from tunebench import report; report(epoch=9)")
    backend.start(Trial(0, {}), folder, results_offset=len(good))
    events = collect(backend, ended(0))
    assert final_of(events).kind is EventKind.COMPLETED
    assert [r["epoch"] for r in results_of(events)] == [9]


def test_poll_wakes_promptly(make_backend, tmp_path: Path):
    backend = make_backend("""
        import time
        from tunebench import report
        report(step=0)
        time.sleep(0.3)
        report(step=1)
        time.sleep(0.3)
    """)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    collect(backend, lambda ev: len(results_of(ev)) == 1)
    t0 = time.monotonic()
    events = backend.poll(30.0)  # blocks until the second report
    assert [e.result["step"] for e in events] == [1]
    assert time.monotonic() - t0 < 15.0, "woken by the report, not the timeout"
    t0 = time.monotonic()
    events = backend.poll(30.0)  # blocks until the exit
    assert [e.kind for e in events] == [EventKind.COMPLETED]
    assert time.monotonic() - t0 < 15.0, "woken by the exit, not the timeout"


FOREIGN_WRITER = """
import json, os, time
# written without report(): no wake-up byte through the notify pipe
with open(os.environ["TUNEBENCH_RESULTS_FILE"], "a") as f:
    f.write(json.dumps({"step": 1, "_timestamp": time.time(), "_iteration": 0}) + "\\n")
time.sleep(30)
"""


def test_lines_written_without_report_wake_poll(make_backend, tmp_path: Path):
    backend = make_backend(FOREIGN_WRITER)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    events = collect(backend, lambda ev: len(results_of(ev)) == 1)
    # inotify: within a second of the write (the re-read of unwatched files is every second, the
    # process ends after 30 s)
    assert time.time() - events[0].result["_timestamp"] < 1.0
    assert events[0].result["step"] == 1


def test_unwatchable_results_file_is_rescanned(make_backend, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(local_module._FileWatcher, "add", lambda self, path: None)
    backend = make_backend(FOREIGN_WRITER)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    collect(backend, lambda ev: len(results_of(ev)) == 1, timeout=20.0)  # the periodic re-read, not the 30 s end


def test_works_without_pidfd(make_backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    backend = make_backend()
    backend.start(Trial(0, {"epochs": 3}), trial_dir(tmp_path, 0))
    events = collect(backend, ended(0))
    assert [r["epoch"] for r in results_of(events)] == [1, 2, 3]
    assert final_of(events).kind is EventKind.COMPLETED


def test_cwd_is_the_trial_dir_and_user_modules_import(make_backend, tmp_path: Path):
    (tmp_path / "helper_mod.py").write_text("VALUE = 42\n")
    backend = make_backend("""
        import os, subprocess, sys
        from tunebench import report
        import helper_mod
        child = subprocess.run([sys.executable, "-c", "import helper_mod; print(helper_mod.VALUE)"],
                               capture_output=True, text=True).stdout.strip()
        print("hello stdout")
        report(cwd=os.getcwd(), value=helper_mod.VALUE, child=child,
               trial=os.environ["TUNEBENCH_TRIAL_ID"], unbuffered=os.environ.get("PYTHONUNBUFFERED"),
               extra=os.environ.get("MY_VAR"))
    """, env={"MY_VAR": "x"})
    folder = trial_dir(tmp_path, 3)
    backend.start(Trial(3, {}), folder)
    events = collect(backend, ended(3))
    (result,) = results_of(events, 3)
    assert Path(result["cwd"]).resolve() == folder.resolve()
    assert result["value"] == 42 and result["child"] == "42"
    assert result["trial"] == "3" and result["unbuffered"] == "1" and result["extra"] == "x"
    assert (folder / STDOUT_FILENAME).read_text() == "hello stdout\n"


def test_relative_python_path(make_backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    python = os.path.relpath(sys.executable)
    assert os.sep in python
    backend = make_backend(python=python)
    backend.start(Trial(0, {"epochs": 1}), trial_dir(tmp_path, 0))
    assert final_of(collect(backend, ended(0))).kind is EventKind.COMPLETED


def test_process_group_is_swept_when_the_trial_ends(make_backend, tmp_path: Path):
    backend = make_backend("""
        import subprocess, sys
        from tunebench import report
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        report(child=child.pid)
    """)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    events = collect(backend, ended(0))
    assert final_of(events).kind is EventKind.COMPLETED
    assert not process_alive(results_of(events)[0]["child"])


def process_alive(pid: int, wait: float = 2.0) -> bool:
    """Whether ``pid`` is still alive (not a zombie) after up to ``wait`` seconds."""
    import psutil

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.02)
    return True


def test_shutdown_ends_everything_and_is_idempotent(make_backend, tmp_path: Path):
    backend = make_backend("""
        import signal, time
        from tunebench import report
        report(ready=1)
        time.sleep(30)
    """, kill_grace_period=0.3)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    backend.start(Trial(1, {}), trial_dir(tmp_path, 1))
    collect(backend, lambda ev: len([e for e in ev if e.kind is EventKind.RESULT]) == 2)
    t0 = time.monotonic()
    backend.shutdown()
    assert time.monotonic() - t0 < 15, "killed after the grace period, not after the scripts' 30 s sleep"
    backend.shutdown()
    assert backend.n_busy == 0
    final = backend.poll(1.0)
    assert sorted((e.trial_id, e.kind) for e in final) == [(0, EventKind.STOPPED), (1, EventKind.STOPPED)]
    assert backend.poll(1.0) == []
    with pytest.raises(RuntimeError, match="shut down"):
        backend.start(Trial(2, {}), trial_dir(tmp_path, 2))


def test_trials_die_with_a_killed_tuner(tmp_path: Path):
    """A SIGKILLed tuner process leaves no trial behind (Linux: PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal is Linux only")
    write_script(tmp_path, """
        import os, time
        from tunebench import report
        report(pid=os.getpid())
        time.sleep(60)
    """)
    driver = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from tunebench.backends.local import LocalBackend
        from tunebench.types import Trial
        b = LocalBackend(script={str(tmp_path / 'train.py')!r}, gpus=[])
        d = Path({str(tmp_path / 't')!r}); d.mkdir()
        b.start(Trial(0, {{}}), d)
        while not b.poll(5.0):
            pass
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        pid = json.loads((tmp_path / "t" / RESULTS_FILENAME).read_text())["pid"]
        assert process_alive(pid, wait=0.05)
        proc.kill()
        proc.wait()
        assert not process_alive(pid)
    finally:
        proc.kill()
        proc.wait()


GPU_SCRIPT = """
import os, time
from tunebench import report
report(cuda=os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
time.sleep(float(os.environ.get("HOLD", "0")))
"""


def gpus_seen(events: list[Event], trial_id: int) -> str:
    return results_of(events, trial_id)[0]["cuda"]


def test_gpu_assignment_least_loaded(make_backend, tmp_path: Path):
    backend = make_backend(GPU_SCRIPT, gpus=["0", "1", "2"], env={"HOLD": "30"},
                           kill_grace_period=0.2)
    for tid in range(3):
        backend.start(Trial(tid, {}), trial_dir(tmp_path, tid))
    events = collect(backend, lambda ev: len(results_of(ev, 0) + results_of(ev, 1) + results_of(ev, 2)) == 3)
    assert [gpus_seen(events, t) for t in range(3)] == ["0", "1", "2"]
    backend.start(Trial(3, {}), trial_dir(tmp_path, 3))  # all busy: shares GPU 0
    backend.stop(1)  # frees GPU 1
    events = collect(backend, lambda ev: bool(results_of(ev, 3)) and any(e.kind in FINAL for e in ev))
    assert gpus_seen(events, 3) == "0"
    assert final_of(events, 1).info["gpus"] == ["1"]
    backend.start(Trial(4, {}), trial_dir(tmp_path, 4))
    events = collect(backend, lambda ev: bool(results_of(ev, 4)))
    assert gpus_seen(events, 4) == "1"


def test_gpu_assignment_several_per_trial(make_backend, tmp_path: Path):
    backend = make_backend(GPU_SCRIPT, gpus=["0", "1", "2"], gpus_per_trial=2)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    backend.start(Trial(1, {}), trial_dir(tmp_path, 1))
    events = collect(backend, ended(0, 1))
    assert gpus_seen(events, 0) == "0,1"
    assert gpus_seen(events, 1) == "0,2"  # GPU 2 is free, then the lowest of the loaded ones
    assert backend._gpu_load == {"0": 0, "1": 0, "2": 0}  # released


def test_no_gpus_leaves_cuda_visible_devices_alone(make_backend, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    backend = make_backend(GPU_SCRIPT, gpus=[])
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    assert gpus_seen(collect(backend, ended(0)), 0) == "<unset>"


def test_zero_gpus_per_trial_hides_the_gpus(make_backend, tmp_path: Path):
    backend = make_backend(GPU_SCRIPT, gpus=["0", "1"], gpus_per_trial=0)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    assert gpus_seen(collect(backend, ended(0)), 0) == ""


def test_detect_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert detect_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert detect_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\n"
                    "echo '  MIG 1g.10gb Device 0: (UUID: MIG-b)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-c)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert detect_gpus() == ["0", "1"]
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert detect_gpus() == []


def test_constructor_checks(tmp_path: Path):
    with pytest.raises(UserError, match="training script 'missing.py' does not exist; pass --script"):
        LocalBackend(script="missing.py")
    script = write_script(tmp_path, "pass")
    with pytest.raises(UserError, match="gpus_per_trial=2 but only 1 GPU"):
        LocalBackend(script=script, gpus=["0"], gpus_per_trial=2)
    with pytest.raises(UserError, match="python interpreter"):
        LocalBackend(script=script, python="/no/such/python")
    with pytest.raises(ValueError, match="trial_timeout"):
        LocalBackend(script=script, trial_timeout=0)
    LocalBackend(script=script, gpus_per_trial=5, gpus=[]).shutdown()  # no GPUs: ignored


def test_spawn_failure_is_a_failed_event(make_backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    backend = make_backend(warm_start=False)  # (no process can start: the warm path falls back to this one)

    def broken_popen(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(local_module.subprocess, "Popen", broken_popen)
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    assert backend.n_busy == 0
    (event,) = backend.poll(1.0)
    assert event.kind is EventKind.FAILED and "Resource temporarily unavailable" in event.error


def test_wakeup_from_another_thread_ends_a_waiting_poll(make_backend, tmp_path: Path):
    import threading

    backend = make_backend("import time\ntime.sleep(30)\n")
    backend.start(Trial(0, {}), trial_dir(tmp_path, 0))
    threading.Timer(0.3, backend.wakeup).start()
    t0 = time.monotonic()
    assert backend.poll(20.0) == []
    assert 0.2 < time.monotonic() - t0 < 15.0, "poll returned on the wakeup, long before its timeout"
    assert backend.n_busy == 1
    backend.stop(0)
    events = collect(backend, ended(0))
    assert final_of(events).kind is EventKind.STOPPED
