"""Trial processes with real processes: every descendant of a trial ends with it (stop, timeout,
pause, exit, the tuner SIGKILLed), capped trial logs, the trials' working directory, the heartbeat
line and SIGINT at random moments."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tunebench.backends.base import STDERR_FILENAME, STDOUT_FILENAME
from tunebench.backends.local import DEFAULT_LOG_LIMIT, LocalBackend, parse_size
from tunebench.backends.trial_supervisor import MARKER_PREFIX
from tunebench.types import Event, EventKind, Trial

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper and /proc: Linux")

ROOT = Path(__file__).resolve().parents[1]
FINAL = (EventKind.COMPLETED, EventKind.FAILED, EventKind.PAUSED, EventKind.STOPPED)

#: starts a child (subprocess.Popen) that starts a grandchild in its own session ignoring SIGTERM,
#: writes their pids to the trial folder, reports, then sleeps (or exits at once with --exit)
FAMILY_SCRIPT = """
import os, subprocess, sys, time
from tunebench import report
from tunebench.space import choice

CONFIG_SPACE = {"x": choice([1, 2, 3])}
METRIC = "loss"
GRANDCHILD = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
CHILD = (
    "import subprocess, sys, time; "
    f"g = subprocess.Popen([sys.executable, '-c', {GRANDCHILD!r}], start_new_session=True); "
    "print(g.pid, flush=True); time.sleep(300)"
)

if __name__ == "__main__":
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    pids = [os.getpid(), child.pid, grandchild]
    folder = os.environ["TUNEBENCH_TRIAL_DIR"]
    with open(os.path.join(folder, "pids.tmp"), "w") as f:
        f.write(" ".join(map(str, pids)))
    os.replace(os.path.join(folder, "pids.tmp"), os.path.join(folder, "pids"))
    report(loss=1.0, epoch=1)
    if "--exit" not in sys.argv:
        time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Wait until ``condition()`` (the timeout only keeps a broken run from hanging the suite)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def read_pids(trial_dir: Path) -> list[int]:
    wait_for(lambda: (trial_dir / "pids").exists(), f"{trial_dir}/pids")
    return [int(p) for p in (trial_dir / "pids").read_text().split()]


def write_script(folder: Path, body: str, name: str = "train.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def tunebench_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(params=["warm", "cold"])
def make_backend(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalBackend]]:
    """Backends whose runs are forked from a prepared interpreter (warm) or are new interpreters (cold)."""
    backends: list[LocalBackend] = []
    warm = request.param == "warm"

    def make(body: str = FAMILY_SCRIPT, **kwargs) -> LocalBackend:
        kwargs.setdefault("gpus", [])
        kwargs.setdefault("warm_start", warm)
        kwargs.setdefault("kill_grace_period", 0.5)
        backend = LocalBackend(script=write_script(tmp_path, body), env={"PYTHONPATH": str(ROOT)}, **kwargs)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.shutdown()
        if backend.warm_start:  # the runs were warm: no silent fall back to cold starts
            assert backend.prepared is None or backend.prepared.broken is None, backend.prepared.broken


def collect(backend: LocalBackend, until: Callable[[list[Event]], bool], timeout: float = 120.0) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while not until(events):
        assert time.monotonic() < deadline, f"timed out; events so far: {events}"
        events.extend(backend.poll(1.0))
    return events


def ended(events: list[Event]) -> bool:
    return any(e.kind in FINAL for e in events)


# -- every descendant ends with its trial --------------------------------------------------------


@pytest.mark.parametrize("how", ["stop", "pause", "timeout", "exit", "shutdown"])
def test_the_whole_process_tree_ends_before_the_final_event(make_backend, tmp_path: Path, how: str):
    backend = make_backend(trial_timeout=5.0 if how == "timeout" else None,
                           extra_args=["--exit"] if how == "exit" else [])
    trial_dir = tmp_path / "t0"
    backend.start(Trial(0, {"x": 1}), trial_dir)
    pids = read_pids(trial_dir)
    if how in ("stop", "pause", "shutdown"):
        assert all(alive(pid) for pid in pids)
        events = collect(backend, lambda ev: any(e.kind is EventKind.RESULT for e in ev))
        getattr(backend, how)(*([] if how == "shutdown" else [0]))
    else:
        events = []
    events += collect(backend, ended)
    final = next(e for e in events if e.kind in FINAL)
    expected = {"stop": EventKind.STOPPED, "pause": EventKind.PAUSED, "timeout": EventKind.FAILED,
                "exit": EventKind.COMPLETED, "shutdown": EventKind.STOPPED}[how]
    assert final.kind is expected
    assert final.info["pid"] == pids[0]  # the script's own pid, not its supervisor's
    # the final event comes once the whole tree is gone: no waiting here
    assert [pid for pid in pids if alive(pid)] == []


def test_a_killed_tuner_leaves_no_descendant_of_any_trial(tmp_path: Path):
    script = write_script(tmp_path, FAMILY_SCRIPT)
    exp = tmp_path / "exp"
    tuner = subprocess.Popen(
        [sys.executable, "-m", "tunebench", "run", "--script", str(script), "--method", "RS", "--n-workers", "2",
         "--max-trials", "2", "--experiment-dir", str(exp), "--no-progress"],
        cwd=tmp_path, env=tunebench_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pids = read_pids(exp / "trials" / "0") + read_pids(exp / "trials" / "1")
        assert all(alive(pid) for pid in pids)
        os.kill(tuner.pid, signal.SIGKILL)
        tuner.wait()
        time.sleep(3.0)  # the promise: none alive 3 s later
        assert [pid for pid in pids if alive(pid)] == []
    finally:
        if tuner.poll() is None:
            tuner.kill()
            tuner.wait()


# -- capped trial logs -----------------------------------------------------------------------------

NOISY_SCRIPT = """
import sys
from tunebench import report
n = int(sys.argv[1])
for stream in (sys.stdout, sys.stderr):
    for i in range(n):
        stream.write(f"{sys.argv[2]}{i:07d}\\n")  # 8 + len(tag) bytes a line
    stream.flush()
report(loss=1.0)
"""


def test_trial_logs_keep_the_head_and_the_tail(make_backend, tmp_path: Path):
    limit = 4096
    backend = make_backend(NOISY_SCRIPT, extra_args=["5000", "a"], log_limit=limit)
    trial_dir = tmp_path / "t0"
    backend.start(Trial(0, {}), trial_dir)
    assert collect(backend, ended)[-1].kind is EventKind.COMPLETED
    printed = "".join(f"a{i:07d}\n" for i in range(5000)).encode()
    for name in (STDOUT_FILENAME, STDERR_FILENAME):
        data = (trial_dir / name).read_bytes()
        head, _, rest = data.partition(MARKER_PREFIX)
        marker, _, tail = rest.partition(b"\n")
        assert head == printed[: limit // 2]
        assert tail == printed[-(limit // 2):]
        assert marker.startswith(b"%d bytes dropped" % (len(printed) - limit))
    # a second run of the trial (a resume) appends to the same capped file: the head stays
    backend.pause(0)
    backend.resume(0)
    assert collect(backend, ended)[-1].kind is EventKind.COMPLETED
    data = (trial_dir / STDOUT_FILENAME).read_bytes()
    again = "".join(f"a{i:07d}\n" for i in range(5000)).encode()
    assert data.startswith(printed[: limit // 2] + MARKER_PREFIX)
    assert data.endswith(again[-(limit // 2):])
    assert b"%d bytes dropped" % (2 * len(printed) - limit) in data
    assert data.count(MARKER_PREFIX) == 1


def test_a_zero_log_limit_keeps_everything(make_backend, tmp_path: Path):
    backend = make_backend(NOISY_SCRIPT, extra_args=["3000", "b"], log_limit=0)
    backend.start(Trial(0, {}), tmp_path / "t0")
    assert collect(backend, ended)[-1].kind is EventKind.COMPLETED
    assert (tmp_path / "t0" / STDOUT_FILENAME).read_bytes() == "".join(f"b{i:07d}\n" for i in range(3000)).encode()


def test_parse_size():
    assert parse_size("10MB") == 10 * 2**20 == DEFAULT_LOG_LIMIT
    assert parse_size("512k") == 512 * 1024
    assert parse_size("0") == 0
    assert parse_size("1.5 KiB") == 1536
    for bad in ("", "ten", "5 parsecs", "-1"):
        with pytest.raises(ValueError):
            parse_size(bad)


# -- working directory ------------------------------------------------------------------------------

READER_SCRIPT = """
import os
from pathlib import Path
from tunebench import report

METRIC = "value"
CONFIG_SPACE = {"x": 1}

if __name__ == "__main__":
    value = float(Path("data/train.csv").read_text())  # relative to the directory tunebench ran in
    Path(os.environ["TUNEBENCH_TRIAL_DIR"], "mine.txt").write_text("kept with the trial")
    report(value=value)
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], cwd=cwd, env=tunebench_env(),
                          capture_output=True, text=True, timeout=300)


def test_trials_run_in_the_launch_directory_and_resume_keeps_it(tmp_path: Path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "train.csv").write_text("0.25\n")
    write_script(project, READER_SCRIPT)
    exp = tmp_path / "exp"
    done = run_cli("run", "--script", "train.py", "--method", "RS", "--max-trials", "1", "--experiment-dir",
                   str(exp), "--no-progress", cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads((exp / "metadata.json").read_text())["run_spec"]["trial_cwd"] == str(project.resolve())
    assert "best value (min): 0.25" in done.stdout
    assert (exp / "trials" / "0" / "mine.txt").read_text() == "kept with the trial"
    # resumed from elsewhere: the trials still run in the recorded directory
    again = run_cli("resume", str(exp), "--max-trials", "2", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (exp / "trials" / "1" / "mine.txt").exists()
    assert not (exp / "trials" / "1" / "stderr.log").read_text()


def test_trial_cwd_trial_keeps_the_trial_folder_as_working_directory(tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    write_script(project, READER_SCRIPT.replace('"data/train.csv"', '"here.csv"').replace(
        "value = float", "Path('here.csv').write_text('1'); value = float"))
    exp = tmp_path / "exp"
    done = run_cli("run", "--script", "train.py", "--method", "RS", "--max-trials", "1", "--experiment-dir",
                   str(exp), "--no-progress", "--trial-cwd", "trial", "--trial-log-limit", "64KB", cwd=project)
    assert done.returncode == 0, done.stderr
    spec = json.loads((exp / "metadata.json").read_text())["run_spec"]
    assert spec["trial_cwd"] is None and spec["trial_log_limit"] == 64 * 1024
    assert (exp / "trials" / "0" / "here.csv").exists() and not (project / "here.csv").exists()


@pytest.mark.parametrize("args", [["--trial-cwd", "no/such/dir"], ["--trial-log-limit", "lots"]])
def test_bad_trial_options_are_one_line_errors(tmp_path: Path, args: list[str]):
    write_script(tmp_path, READER_SCRIPT)
    done = run_cli("run", "--script", "train.py", "--max-trials", "1", "--experiment-dir", str(tmp_path / "e"),
                   *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("tunebench: error: ") and len(done.stderr.splitlines()) == 1


# -- heartbeat and SIGINT -------------------------------------------------------------------------

QUIET_SCRIPT = """
import time
from tunebench import report
METRIC = "loss"
CONFIG_SPACE = {"x": 1}
if __name__ == "__main__":
    report(loss=1.0)
    time.sleep(300)  # a long epoch: nothing happens
"""


def test_heartbeat_names_the_running_trials_while_nothing_happens(tmp_path: Path):
    write_script(tmp_path, QUIET_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunebench", "run", "--script", "train.py", "--method", "RS", "--max-trials", "1",
         "--experiment-dir", str(tmp_path / "exp"), "--heartbeat", "0.2"],
        cwd=tmp_path, env=tunebench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # ends (with a failure below) if the run ends
            seen.append(line)
            if "running: trial 0 (" in line and "since its last report" in line:
                break
        assert "since its last report" in "".join(seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


SHORT_SCRIPT = """
from tunebench import report
METRIC = "loss"
CONFIG_SPACE = {"x": 1}
if __name__ == "__main__":
    report(loss=1.0)
"""


@pytest.mark.slow
def test_sigint_at_random_moments_always_ends_the_run(tmp_path: Path):
    """The bug: 1 SIGINT in 66 was swallowed while a trial was being launched, and the run went on
    to its end with exit code 0. Trials here last a moment, so launches go on all the time; 100 runs,
    each interrupted at a random moment (the issue's protocol)."""
    script = write_script(tmp_path, SHORT_SCRIPT)
    rng = random.Random(13)
    for i in range(100):
        exp = tmp_path / f"exp{i}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunebench", "run", "--script", str(script), "--method", "RS", "--n-workers",
             "2", "--max-trials", "100000", "--max-wallclock-time", "600", "--experiment-dir", str(exp),
             "--no-progress"],
            cwd=tmp_path, env=tunebench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            assert "experiment folder" in proc.stdout.readline()  # the tuner is about to start trials
            time.sleep(rng.uniform(0.0, 0.5))
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 130, f"run {i}: {err}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # a trial launched at the moment of the SIGINT is ended by its supervisor as the tuner dies
        # (PR_SET_PDEATHSIG), just after the tuner's exit: the same 3 s as after a kill -9 of the tuner
        left = [p for p in psutil.process_iter(["cmdline", "status"])
                if str(script) in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]
        _, alive = psutil.wait_procs(left, timeout=3)
        assert alive == [], f"run {i}: trial processes left 3 s after the tuner ended: {alive}"
