"""A full disk: the tuner stops with a clear message, the log stays valid up to its last
complete line, and `tunebench resume` continues once there is space again. Needs a small
tmpfs, so root (as in CI); skipped with the reason elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import write_script

pytestmark = pytest.mark.slow

SCRIPT = '''
import argparse
from tunebench import report
from tunebench.space import uniform
CONFIG_SPACE = {"x": uniform(-1, 1), "epochs": 20}
METRIC = "loss"
if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--x", type=float); p.add_argument("--epochs", type=int)
    a = p.parse_args()
    for e in range(1, a.epochs + 1):
        report(epoch=e, loss=(a.x - 0.3) ** 2 + 1 / e)
'''


@pytest.fixture
def tiny_fs(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


def tunebench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True, timeout=300)


def test_full_disk_stops_cleanly_and_resume_continues(tmp_path, tiny_fs):
    script = write_script(tmp_path, SCRIPT)
    exp = tiny_fs / "exp"
    run = tunebench("run", "--script", str(script), "--method", "RS", "--max-trials", "80", "--n-workers", "2",
                    "--max-failures", "50", "--experiment-dir", str(exp), "--no-progress")
    assert run.returncode == 1
    assert "No space left on device" in run.stderr and f"tunebench resume {exp}" in run.stderr
    assert "Traceback" not in run.stderr
    lines = (exp / "events.jsonl").read_bytes().split(b"\n")
    complete = [json.loads(line) for line in lines[:-1]]  # all but a possibly torn last line parse
    before = [(e["trial_id"], e["result"]["epoch"]) for e in complete if e["event"] == "result"]
    assert len(before) > 100

    subprocess.run(["mount", "-o", "remount,size=20m", str(tiny_fs)], check=True)
    res = tunebench("resume", str(exp), "--no-progress")
    assert res.returncode == 0, res.stderr
    after = [json.loads(line) for line in (exp / "events.jsonl").read_text().splitlines()]
    results = [(e["trial_id"], e["result"]["epoch"]) for e in after if e["event"] == "result"]
    assert results[: len(before)] == before, "nothing recorded before the disk filled up is lost"
    summary = json.loads(tunebench("show", str(exp), "--json").stdout)
    assert summary["finished"] and summary["n_trials"] == 80 and summary["n_running"] == 0
