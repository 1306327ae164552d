"""End-to-end: the example benchmark tuned by the real CLI, and a tuner killed with SIGKILL
then resumed. Marked slow: `make test` runs them, a plain `pytest` does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import kill_when, logged_events, n_results

pytestmark = pytest.mark.slow


events = logged_events


def tunebench(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True,
                          timeout=300, **kw)


def test_default_run_tunes_the_example_with_asha_on_two_workers(tmp_path):
    exp = tmp_path / "exp"
    run = tunebench("run", "--max-wallclock-time", "25", "--experiment-dir", str(exp))
    assert run.returncode == 0, run.stderr
    assert "best configuration:" in run.stdout and "lr:" in run.stdout
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["method"] == "ASHA" and meta["n_workers"] == 2 and meta["run_spec"]["benchmark"] == "mlp_digits"
    summary = json.loads(tunebench("show", str(exp), "--json").stdout)
    assert summary["n_trials"] >= 10 and summary["n_failed"] == 0
    assert summary["best_metric"] < 0.1, "ASHA finds a config with under 10% validation error on digits"
    assert summary["n_stopped"] > 0, "ASHA stopped poor trials"


def _killed_and_resumed(command, exp, until, timeout):
    """Run ``command`` (a tuner writing to ``exp``), SIGKILL it once ``until(events)`` holds, then
    ``tunebench resume`` the experiment. Checks that nothing is lost: the results logged before the
    kill stay the log's first, and every line the trials had written by the kill is logged. Returns
    the results logged before the kill, those lines per trial id, and the whole log after."""
    kill_when(command, exp, until, timeout=timeout)
    before = [e for e in events(exp) if e.get("event") == "result"]
    # what the trials themselves had written by the kill (the tuner may not have logged it yet)
    time.sleep(0.5)  # trial processes die with their parent (parent-death signal)
    reported = {int(d.name): [json.loads(line) for line in (d / "results.jsonl").read_text().splitlines()]
                for d in (exp / "trials").iterdir()}

    res = tunebench("resume", str(exp), "--no-progress")
    assert res.returncode == 0, res.stderr
    after = events(exp)
    results_after = [e for e in after if e.get("event") == "result"]
    key = lambda e: (e["trial_id"], e["result"]["epoch"], e["result"]["val_error"])  # noqa: E731
    assert [key(e) for e in results_after[: len(before)]] == [key(e) for e in before]
    # decided on, ignored (repeats), or deferred (reported while its trial was being paused: decided on at
    # its resume, which may not come before the experiment ends)
    logged = {(e["trial_id"], e["result"]["epoch"]) for e in after
              if e.get("event") in ("result", "result_ignored", "result_deferred")}
    for tid, lines in reported.items():
        for r in lines:
            assert (tid, r["epoch"]) in logged, f"trial {tid} epoch {r['epoch']} reported before the kill is lost"
    return before, reported, after


def test_killed_tuner_resumes_without_losing_results(tmp_path):
    exp = tmp_path / "exp"
    before, reported, after = _killed_and_resumed(
        [sys.executable, "-m", "tunebench", "run", "--method", "ASHA-promotion", "--max-wallclock-time", "30",
         "--experiment-dir", str(exp), "--no-progress"], exp, n_results(40), timeout=60)
    assert len(before) >= 40
    starts = [e["trial_id"] for e in after if e.get("event") == "trial_start"]
    assert len(starts) == len(set(starts)), "no trial id reused"
    summary = json.loads(tunebench("show", str(exp), "--json").stdout)
    assert summary["finished"] and summary["end_reason"].startswith("max_wallclock_time")
    assert summary["n_running"] == 0
    # the resumed session went on tuning
    session_starts = [i for i, e in enumerate(after) if e.get("event") == "session_start"]
    assert len(session_starts) == 2
    assert any(e.get("event") == "trial_start" for e in after[session_starts[1]:])
    # trials running at the kill were restarted (from their checkpoints) under their own ids
    restarts = [e for e in after[session_starts[1]:] if e.get("event") == "trial_restart"]
    assert restarts and all(e["trial_id"] in reported for e in restarts)


def test_lcbench_on_the_simulator_from_the_cli(tmp_path, shared_data):
    pytest.importorskip("onnxruntime", reason="the yahpo extra (onnxruntime) is not installed")
    exp = tmp_path / "exp"
    env = {**os.environ, "TUNEBENCH_DATA": str(shared_data), "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    t0 = time.time()
    run = tunebench("run", "--benchmark", "lcbench-3945", "--method", "ASHA", "--n-workers", "4",
                    "--max-wallclock-time", "7200", "--experiment-dir", str(exp), "--no-progress", env=env)
    assert run.returncode == 0, run.stderr
    assert time.time() - t0 < 120, "7200 simulated seconds take far less real time"
    summary = json.loads(tunebench("show", str(exp), "--json").stdout)
    assert summary["finished"] and summary["end_reason"].startswith("max_wallclock_time=7200")
    assert summary["n_trials"] > 100 and summary["mode"] == "max" and summary["metric"] == "val_accuracy"
    evs = events(exp)
    results = [e for e in evs if e.get("event") == "result"]
    assert all("real_time" in e and e["time"] <= 7200 for e in results), "simulated and real time recorded"
    assert max(e["time"] for e in results) > 10 * max(e["real_time"] for e in results)
    stops = {e["result"]["epoch"] for e in results if e["decision"] == "STOP"}
    assert stops and stops <= {1, 3, 9, 27}, "ASHA stops trials at its rungs only"
    # the same results folder as a real run: metadata, event log, scheduler snapshot
    assert {p.name for p in exp.iterdir()} >= {"metadata.json", "events.jsonl", "scheduler_state.json"}


@pytest.mark.parametrize("surrogate", ["pfn", "dpl"])
def test_killed_ftbo_resumes_its_trials_from_their_checkpoints(tmp_path, surrogate):
    """FTBO over either surrogate (the shipped PFN; the DPL ensemble, small) on the local backend
    (the mlp_digits example, real trial processes that checkpoint every epoch): trials are paused
    and thawed one epoch at a time, each thaw going on from the trial's checkpoint; the tuner is
    killed with SIGKILL after a thaw and resumed: no result is lost, and every trial's epochs are
    logged once each, in order, across both sessions."""
    exp = tmp_path / "exp"
    small = ["n_members=3", "hidden=16", "epochs=40", "refine_epochs=5"] if surrogate == "dpl" else []
    run = [sys.executable, "-m", "tunebench", "run", "--method", "FTBO", "--method-arg", f"surrogate={surrogate}",
           *[a for kv in small for a in ("--method-arg", kv)],
           "--n-workers", "2", "--max-trials", "10", "--experiment-dir", str(exp), "--no-progress"]

    def thawed_and(at_least: int):
        return lambda evs: n_results(at_least)(evs) and any(e.get("event") == "trial_resume" for e in evs)

    _, _, after = _killed_and_resumed(run, exp, thawed_and(20), timeout=240)
    results = [e for e in after if e.get("event") == "result"]
    # one epoch per step from checkpoints: no script restarted from epoch 1, each trial's epochs 1, 2, ... once
    assert not any(e.get("event") == "result_ignored" and e.get("restart") for e in after)
    per_trial: dict[int, list[int]] = {}
    for e in results:
        per_trial.setdefault(e["trial_id"], []).append(e["result"]["epoch"])
    assert sorted(per_trial) == list(range(10))
    for tid, epochs in per_trial.items():
        assert epochs == list(range(1, len(epochs) + 1)), (tid, epochs)
    thawed = {e["trial_id"] for e in after if e.get("event") == "trial_resume"}
    assert thawed and all(len(per_trial[tid]) >= 2 for tid in thawed)
    session_starts = [i for i, e in enumerate(after) if e.get("event") == "session_start"]
    assert len(session_starts) == 2
    second = after[session_starts[1]:]
    assert any(e.get("event") in ("trial_start", "trial_resume") for e in second), "the resumed session tuned on"
    summary = json.loads(tunebench("show", str(exp), "--json").stdout)
    assert summary["finished"] and summary["n_trials"] == 10 and summary["n_running"] == 0
    assert json.loads((exp / "metadata.json").read_text())["run_spec"]["method_kwargs"]["surrogate"] == surrogate
