"""tunebench.tune(fn): a Python function tuned in worker processes, found by reference."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import logged_events

from tunebench import tune
from tunebench.errors import UserError
from tunebench.space import loguniform
from tunebench.store import load_experiment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes: Linux")

ROOT = Path(__file__).resolve().parents[1]

USER_MODULE = """
    import ctypes, math, os, time
    from tunebench import report

    def train(config):
        for epoch in range(1, config["epochs"] + 1):
            report(epoch=epoch, loss=(math.log10(config["lr"]) + 2) ** 2 + 1.0 / epoch, pid=os.getpid())

    def objective(config):
        if config["lr"] > 0.05:
            os.abort()  # a crash of the function: that trial fails, the tuner goes on
        return (math.log10(config["lr"]) + 3) ** 2  # a number: reported as the metric

    def slow(config):
        for epoch in range(1, config["epochs"] + 1):
            time.sleep(0.05)
            report(epoch=epoch, loss=config["lr"] / epoch)
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "user_fns.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(tmp_path)
    import importlib

    module = importlib.import_module("user_fns")
    yield module
    sys.modules.pop("user_fns", None)


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_tune_a_module_function_with_asha(user_module, tmp_path: Path, warm: bool):
    exp = tmp_path / "exp"
    result = tune(user_module.train, {"lr": loguniform(1e-4, 1.0), "epochs": 9}, metric="loss", mode="min",
                  resource_attr="epoch", max_resource_attr="epochs", max_trials=12, experiment_dir=exp,
                  warm_start=warm, seed=1)
    assert result.ok and result.n_trials == 12 and result.best_metric is not None
    experiment = load_experiment(exp)
    df = experiment.results
    assert len(df) == result.n_results and df["trial_id"].nunique() == 12
    best = df.loc[df["loss"].idxmin()]
    assert result.best_metric == pytest.approx(best["loss"])
    assert df["pid"].nunique() >= 12, "each trial run is a process of its own, never the tuner's"
    assert os.getpid() not in set(df["pid"])
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["run_spec"]["function"]["qualname"] == "train" and meta["run_spec"]["warm_start"] is warm
    show = subprocess.run([sys.executable, "-m", "tunebench", "show", str(exp), "--json"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert show.returncode == 0 and json.loads(show.stdout)["best_metric"] == pytest.approx(result.best_metric)


def test_a_crash_fails_that_trial_and_a_returned_number_is_the_metric(user_module, tmp_path: Path):
    result = tune(user_module.objective, {"lr": loguniform(1e-4, 1.0)}, metric="loss", method="RS",
                  max_trials=10, max_failures=10, experiment_dir=tmp_path / "exp", seed=3)
    table = load_experiment(tmp_path / "exp").trial_table()
    assert len(table) == 10 and 0 < result.n_failed < 10
    for row in table:
        lr = row["config"]["lr"]
        if lr > 0.05:
            assert row["status"] == "failed" and "SIGABRT" in row["error"], row
        else:
            assert row["status"] == "completed" and row["best"] == pytest.approx((math.log10(lr) + 3) ** 2), row


def test_functions_a_worker_cannot_find_are_refused_with_the_fix(user_module, tmp_path: Path):
    def nested(config):
        return 1.0

    for fn in (nested, lambda config: 1.0):
        with pytest.raises(UserError, match="top level of a module"):
            tune(fn, {"lr": loguniform(1e-4, 1.0)}, metric="loss", max_trials=1, experiment_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


MAIN_SCRIPT = """
    import sys, time
    from tunebench import report, tune
    from tunebench.space import loguniform

    def train(config):
        for epoch in range(1, config["epochs"] + 1):
            time.sleep(0.04)
            report(epoch=epoch, loss=config["lr"] + 1.0 / epoch)

    if __name__ == "__main__":
        print("main block ran", flush=True)  # never in the workers: they run this file as __mp_main__
        result = tune(train, {"lr": loguniform(1e-3, 1.0), "epochs": 12}, metric="loss", mode="min",
                      method="ASHA-promotion", resource_attr="epoch", max_resource_attr="epochs",
                      max_trials=int(sys.argv[2]), experiment_dir=sys.argv[1], resume=True, seed=0)
        print("done", result.n_trials, flush=True)
"""


_events = logged_events


def test_a_function_of_the_main_script_survives_sigkill_of_the_tuner_and_resumes(tmp_path: Path):
    script = tmp_path / "main_script.py"
    script.write_text(textwrap.dedent(MAIN_SCRIPT))
    exp = tmp_path / "exp"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(exp), "24"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while sum(e.get("event") == "result" for e in _events(exp)) < 15:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [e for e in _events(exp) if e.get("event") == "result"]
    time.sleep(0.5)  # the trials die with the tuner (parent-death signals)
    written = {int(d.name): [json.loads(line) for line in (d / "results.jsonl").read_text().splitlines() if line]
               for d in (exp / "trials").iterdir()}

    again = subprocess.run([sys.executable, str(script), str(exp), "24"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["main block ran", "done 24"]
    after = _events(exp)
    results_after = [e for e in after if e.get("event") == "result"]
    assert results_after[: len(before)] == before
    logged = {(e["trial_id"], e["result"]["epoch"]) for e in after
              if e.get("event") in ("result", "result_ignored", "result_deferred")}
    for tid, lines in written.items():
        for line in lines:
            assert (tid, line["epoch"]) in logged, f"trial {tid} epoch {line['epoch']} written before the kill is lost"
    starts = [e["trial_id"] for e in after if e.get("event") == "trial_start"]
    assert sorted(starts) == list(range(24))
    for d in (exp / "trials").iterdir():
        assert "main block ran" not in (d / "stdout.log").read_text()


def test_the_readme_example_runs_as_written(tmp_path: Path):
    import re

    section = re.search(r"^## Tune a Python function\n(.*?)^## ", (ROOT / "README.md").read_text(), re.S | re.M)
    assert section, "README.md has a '## Tune a Python function' section"
    code = re.search(r"```python\n(# tune_me\.py\n.*?)```", section.group(1), re.S)
    assert code
    (tmp_path / "tune_me.py").write_text(code.group(1))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "tune_me.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("best {'lr': ")
    summary = load_experiment(tmp_path / "results" / "tune-me").summary()
    assert summary["n_trials"] == 40 and summary["finished"]
    assert abs(math.log10(summary["best_config"]["lr"]) + 2) < 1.0
