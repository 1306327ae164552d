"""One tuner per experiment folder (issue 13, item 1): the folder lock of :mod:`tunebench.lock`,
held by the store for a whole tuning session, checked with real tuner processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_script

from tunebench.errors import UserError
from tunebench.lock import FolderLock, LockHolder, hold, lock_holder
from tunebench.store import TUNER_LOCK_FILE, ExperimentStore, load_experiment, running_tuner

META = {"metric": "loss", "mode": "min", "method": "RS"}

#: a trial that reports epoch 1, then waits for the file GATE before reporting epochs 2 and 3:
#: the tuner keeps running for as long as the test wants
GATED = '''
import argparse, os, time
from tunebench import report
from tunebench.space import uniform
CONFIG_SPACE = {"x": uniform(0, 1)}
if __name__ == "__main__":  # the tuner imports the script for its CONFIG_SPACE
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, default=0.0)
    args, _ = p.parse_known_args()
    report(epoch=1, loss=args.x + 1.0)
    while not os.path.exists(GATE):
        time.sleep(0.02)
    for epoch in (2, 3):
        report(epoch=epoch, loss=args.x + 1.0 / epoch)
'''


def _script(tmp_path: Path) -> tuple[Path, Path]:
    gate = tmp_path / "gate"
    return write_script(tmp_path, f"GATE = {str(gate)!r}\n" + GATED), gate


def _tunebench(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tunebench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True, timeout=300)


def _wait_for(predicate, timeout: float = 120.0) -> None:
    """Poll ``predicate`` (the timeout only guards against a hang; nothing is timed)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _results_logged(exp: Path) -> int:
    path = exp / "events.jsonl"
    if not path.exists():
        return 0
    return path.read_bytes().count(b'"event":"result"')


def _start_run(script: Path, exp: Path) -> subprocess.Popen:
    return _tunebench("run", "--script", str(script), "--metric", "loss", "--resource-attr", "epoch",
                      "--method", "RS", "--n-workers", "2", "--max-trials", "2", "--experiment-dir", str(exp),
                      "--no-progress")


def _assert_refused_by(proc: subprocess.CompletedProcess, pid: int) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("tunebench: error: ") and f"pid {pid} on {socket.gethostname()} since " in lines[0]
    assert "wait for it to end" in lines[0] and f"kill {pid}" in lines[0]


def _no_duplicate_results(exp: Path) -> None:
    results = load_experiment(exp).results
    assert not results.duplicated(["trial_id", "epoch"]).any(), results[["trial_id", "epoch"]]


# -- the lock itself ----------------------------------------------------------------------------


def test_a_lock_names_its_holder_while_held_and_nobody_after(tmp_path):
    path = tmp_path / "sub" / "x.lock"
    assert lock_holder(path) is None  # no file
    lock = FolderLock(path)
    assert lock.acquire() is None and lock.held
    holder = lock_holder(path)
    assert holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname()
    assert holder.since is not None and holder.since[:4].isdigit()
    assert FolderLock(path).acquire() == holder  # refused (the same process too), naming the holder
    with hold(path) as locked:
        assert not locked
    lock.release()
    assert not lock.held and lock_holder(path) is None and path.read_bytes() == b""
    with hold(path) as locked:
        assert locked and lock_holder(path).pid == os.getpid()
    assert lock_holder(path) is None


def test_holder_description():
    assert LockHolder(12, "h", "2024-01-02T03:04:05+0000").describe() == "pid 12 on h since 2024-01-02T03:04:05+0000"
    assert LockHolder(None, None, None).describe() == "a process"


def test_the_store_holds_the_folder_until_closed(tmp_path):
    exp = tmp_path / "e"
    store = ExperimentStore.create(exp, META)
    assert running_tuner(exp).pid == os.getpid()
    with pytest.raises(UserError, match=rf"is being tuned by another tuner \(pid {os.getpid()} on "):
        ExperimentStore.reopen(exp)
    with pytest.raises(UserError, match=rf"pid {os.getpid()} "):
        ExperimentStore.create(exp, META)
    store.close()
    assert running_tuner(exp) is None
    again, events = ExperimentStore.reopen(exp)
    assert running_tuner(exp).pid == os.getpid() and events == []
    again.close()
    assert (exp / TUNER_LOCK_FILE).is_file()


def test_a_grid_lock_and_a_tuner_lock_share_the_owner_but_not_the_file(tmp_path):
    from tunebench.experiments.grid import LOCK_FILE, experiment_lock, is_locked

    exp = tmp_path / "e"
    with experiment_lock(exp) as locked:
        assert locked and lock_holder(exp / LOCK_FILE).pid == os.getpid() and running_tuner(exp) is None
        store = ExperimentStore.create(exp, META)  # the grid's worker runs a tuner in its folder
        store.close()
    assert not is_locked(exp)
    store = ExperimentStore.create(tmp_path / "f", META)
    assert is_locked(tmp_path / "f")  # a tuner alone (tunebench run) makes the folder busy for a grid
    store.close()


# -- real tuners --------------------------------------------------------------------------------


def test_a_second_tuner_on_a_running_experiment_is_refused_and_resume_works_after_a_kill(tmp_path):
    script, gate = _script(tmp_path)
    exp = tmp_path / "exp"
    first = _start_run(script, exp)
    try:
        _wait_for(lambda: _results_logged(exp) >= 2 or first.poll() is not None)
        assert first.poll() is None, first.communicate()
        _assert_refused_by(_run("resume", str(exp), "--no-progress"), first.pid)
        again = _run("run", "--script", str(script), "--metric", "loss", "--experiment-dir", str(exp),
                     "--no-progress")
        _assert_refused_by(again, first.pid)

        show = _run("show", str(exp))
        assert show.returncode == 0, show.stderr
        assert f"running now (pid {first.pid} on {socket.gethostname()} since " in show.stdout
        assert "not finished" not in show.stdout
        summary = json.loads(_run("show", str(exp), "--json").stdout)
        assert summary["running"]["pid"] == first.pid and summary["running"]["host"] == socket.gethostname()
    finally:
        first.kill()
        first.communicate()
    # the kernel released the lock of the killed tuner: nothing to clean up
    assert running_tuner(exp) is None
    show = _run("show", str(exp))
    assert "not finished (tunebench resume" in show.stdout and "running now" not in show.stdout
    assert json.loads(_run("show", str(exp), "--json").stdout)["running"] is None
    gate.touch()
    resumed = _run("resume", str(exp), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(_run("show", str(exp), "--json").stdout)
    assert summary["finished"] and summary["n_trials"] == 2 and summary["n_results"] == 6
    _no_duplicate_results(exp)


def test_two_resumes_of_a_killed_run_at_once_one_runs_the_other_refuses(tmp_path):
    script, gate = _script(tmp_path)
    exp = tmp_path / "exp"
    first = _start_run(script, exp)
    _wait_for(lambda: _results_logged(exp) >= 2 or first.poll() is not None)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    both = [_tunebench("resume", str(exp), "--no-progress") for _ in range(2)]
    try:
        # the trials wait for the gate: the resume that got the folder keeps running
        _wait_for(lambda: any(p.poll() is not None for p in both))
        refused = next(p for p in both if p.poll() is not None)
        running = next(p for p in both if p is not refused)
        out, err = refused.communicate()
        _assert_refused_by(subprocess.CompletedProcess(refused.args, refused.returncode, out, err), running.pid)
        assert running.poll() is None and running_tuner(exp).pid == running.pid
        gate.touch()
        out, err = running.communicate(timeout=300)
        assert running.returncode == 0, err
    finally:
        for p in both:
            if p.poll() is None:
                p.kill()
                p.communicate()
    events = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    assert [e["resumed"] for e in events if e["event"] == "session_start"] == [False, True]
    assert sum(e["event"] == "experiment_end" for e in events) == 1
    starts = [e["trial_id"] for e in events if e["event"] == "trial_start"]
    assert starts == [0, 1]
    _no_duplicate_results(exp)


def test_the_python_tuner_refuses_a_folder_a_running_tuner_holds(tmp_path):
    from tunebench import StopCriteria, Tuner, make_scheduler
    from tunebench.backends.local import LocalBackend
    from tunebench.space import uniform

    script, gate = _script(tmp_path)
    exp = tmp_path / "exp"
    first = _start_run(script, exp)
    try:
        _wait_for(lambda: _results_logged(exp) >= 1 or first.poll() is not None)
        assert first.poll() is None
        scheduler = make_scheduler("RS", {"x": uniform(0, 1)}, metric="loss", resource_attr="epoch", seed=0)
        tuner = Tuner(LocalBackend(script=script), scheduler, n_workers=1, stop=StopCriteria(max_trials=2),
                      experiment_dir=exp, resume=True)
        with pytest.raises(UserError, match=rf"pid {first.pid} on "):
            tuner.run()
        assert running_tuner(exp).pid == first.pid  # the refused tuner touched nothing
    finally:
        gate.touch()
        first.communicate(timeout=300)
    assert first.returncode == 0
    _no_duplicate_results(exp)
