"""The logging callbacks (issue 16, part 4): ``tunebench run --mlflow / --tensorboard`` on a
simulated experiment, read back with MLflow's own client from the local file store and with
TensorBoard's own ``EventAccumulator`` from the event files, and compared with the experiment's
event log read here with ``json`` (one run per trial, its config as params, each decided report
as metrics at the step of its epoch, its end status); through an interrupted tuner and
``tunebench resume``; and a backend that fails, which must not break tuning."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tunebench.cli as cli
from tunebench import load_experiment
from tunebench.cli import main
from tunebench.tuner import Callback

mlflow_tracking = pytest.importorskip("mlflow.tracking")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
from tensorboard.plugins.hparams import api_pb2, metadata  # noqa: E402 (after the skip)

from tunebench.integrations.mlflow import MLflowCallback  # noqa: E402

RUN = ["run", "--benchmark", "zdt1", "--method", "ASHA", "--max-trials", "10", "--no-progress"]


def _log_facts(exp: Path) -> tuple[dict[int, dict[str, Any]], dict[int, list[dict[str, Any]]], dict[int, str]]:
    """(config, decided reports in order, final status) of each trial, from the event log."""
    configs: dict[int, dict[str, Any]] = {}
    results: dict[int, list[dict[str, Any]]] = {}
    for line in (exp / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev["event"] == "trial_start":
            configs[ev["trial_id"]] = ev["config"]
            results[ev["trial_id"]] = []
        elif ev["event"] == "result":
            results[ev["trial_id"]].append(ev["result"])
    trials = load_experiment(exp).trials
    statuses = {int(t): str(s) for t, s in zip(trials["trial_id"], trials["status"], strict=True)}
    return configs, results, statuses


def _metric_names(reports: list[dict[str, Any]]) -> set[str]:
    return {k for r in reports for k, v in r.items()
            if k not in ("trial_id", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _check_mlflow(exp: Path) -> None:
    configs, results, statuses = _log_facts(exp)
    client = mlflow_tracking.MlflowClient(tracking_uri=(exp / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name(exp.resolve().name)
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, "one parent run for the experiment"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1
    by_trial = {int(r.data.tags["tunebench.trial_id"]): r for r in children}
    assert len(by_trial) == len(children) == len(configs), "one run per trial"
    for tid, run in by_trial.items():
        assert run.info.run_name == f"trial {tid}"
        assert run.data.params == {k: str(v) for k, v in configs[tid].items()}
        assert run.data.tags["tunebench.status"] == statuses[tid]
        assert run.info.status == ("FAILED" if statuses[tid] == "failed" else "FINISHED")
        names = _metric_names(results[tid])
        assert names and set(run.data.metrics) == names
        for name in names:
            history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]
            assert history == [(int(r["epoch"]), float(r[name])) for r in results[tid]], (tid, name)
    assert parents[0].info.status == "FINISHED"


def _check_tensorboard(exp: Path) -> None:
    configs, results, statuses = _log_facts(exp)
    root = exp / "tensorboard"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(f"trial_{t}" for t in configs)
    top = event_accumulator.EventAccumulator(str(root))
    top.Reload()
    experiment = metadata.parse_experiment_plugin_data(top.SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content)
    assert {h.name for h in experiment.hparam_infos} == set(next(iter(configs.values())))
    for tid, config in configs.items():
        acc = event_accumulator.EventAccumulator(str(root / f"trial_{tid}"), size_guidance={"scalars": 0})
        acc.Reload()
        names = _metric_names(results[tid])
        assert set(acc.Tags()["scalars"]) == names
        for name in names:
            # TensorBoard keeps scalars as 32-bit floats
            assert [(s.step, s.value) for s in acc.Scalars(name)] == \
                [(int(r["epoch"]), float(np.float32(r[name]))) for r in results[tid]], (tid, name)
        start = metadata.parse_session_start_info_plugin_data(
            acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content)
        assert {k: v.number_value for k, v in start.hparams.items()} == {k: float(v) for k, v in config.items()}
        end = metadata.parse_session_end_info_plugin_data(
            acc.SummaryMetadata(metadata.SESSION_END_INFO_TAG).plugin_data.content)
        want = {"failed": api_pb2.STATUS_FAILURE, "paused": api_pb2.STATUS_RUNNING}.get(statuses[tid],
                                                                                         api_pb2.STATUS_SUCCESS)
        assert end.status == want


def test_mlflow_logs_one_nested_run_per_trial_with_its_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    exp = tmp_path / "exp"
    assert main([*RUN, "--experiment-dir", str(exp), "--mlflow"]) == 0
    _check_mlflow(exp)
    lines = (exp / "mlflow_runs.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 10 and json.loads(lines[0])["tracking_uri"] == (exp / "mlruns").resolve().as_uri()


def test_tensorboard_writes_one_run_per_trial_with_an_hparams_summary(tmp_path: Path):
    exp = tmp_path / "exp"
    assert main([*RUN, "--experiment-dir", str(exp), "--tensorboard"]) == 0
    _check_tensorboard(exp)


class _Interrupt(Callback):
    """Plays Ctrl-C at the ``n``-th decided report (before the loggers see it: the catch-up of the
    resumed session must log it)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_result(self, tuner: Any, trial: Any, result: Any, decision: Any) -> None:
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt


def test_an_interrupted_and_resumed_experiment_continues_the_same_runs(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    exp = tmp_path / "exp"
    loggers = cli._logging_callbacks
    monkeypatch.setattr(cli, "_logging_callbacks", lambda args: [_Interrupt(40), *loggers(args)])
    assert main([*RUN, "--experiment-dir", str(exp), "--mlflow", "--tensorboard"]) == 130
    _, before, _ = _log_facts(exp)
    assert 0 < len(before) < 10 and sum(map(len, before.values())) == 40
    header = (exp / "mlflow_runs.jsonl").read_text().splitlines()[0]
    monkeypatch.setattr(cli, "_logging_callbacks", loggers)
    assert main(["resume", str(exp), "--no-progress", "--mlflow", "--tensorboard"]) == 0
    _, after, _ = _log_facts(exp)
    assert len(after) == 10 and sum(map(len, after.values())) > 40
    _check_mlflow(exp)  # one run per trial; every decided report once, in order
    _check_tensorboard(exp)
    lines = (exp / "mlflow_runs.jsonl").read_text().splitlines()
    assert lines[0] == header and len(lines) == 1 + 10


def test_a_logger_added_on_resume_logs_the_earlier_trials_too(tmp_path: Path):
    exp = tmp_path / "exp"
    assert main([*RUN[:-3], "--max-trials", "4", "--no-progress", "--experiment-dir", str(exp)]) == 0
    assert main(["resume", str(exp), "--max-trials", "10", "--no-progress", "--tensorboard"]) == 0
    _check_tensorboard(exp)


class _BrokenMLflow(MLflowCallback):
    """MLflow whose store fails at the fourth report."""

    calls = 0

    def _backend_log(self, trial_id: int, run_id: str, step: int, metrics: dict[str, float]) -> None:
        type(self).calls += 1
        if type(self).calls == 4:
            raise OSError("No space left on device")
        super()._backend_log(trial_id, run_id, step, metrics)


def test_a_failing_logger_warns_once_and_tuning_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    plain, logged, blocked = tmp_path / "plain", tmp_path / "logged", tmp_path / "blocked"
    assert main([*RUN, "--experiment-dir", str(plain)]) == 0
    monkeypatch.setattr(cli, "_logging_callbacks", lambda args: [_BrokenMLflow()])
    with caplog.at_level(logging.WARNING, logger="tunebench.integrations"):
        assert main([*RUN, "--experiment-dir", str(logged)]) == 0
    warnings = [r for r in caplog.records if r.name.startswith("tunebench.integrations")]
    assert len(warnings) == 1 and "MLflow logging failed (OSError: No space left on device)" in warnings[0].message
    columns = ["trial_id", "status", "n_results", "best"]
    assert load_experiment(logged).trials[columns].equals(load_experiment(plain).trials[columns])
    client = mlflow_tracking.MlflowClient(tracking_uri=(logged / "mlruns").resolve().as_uri())
    runs = client.search_runs([client.get_experiment_by_name("logged").experiment_id])
    assert sum(len(client.get_metric_history(r.info.run_id, "f1")) for r in runs) == 3, "nothing after the failure"

    # a log folder that cannot be created: one warning at the start, the same tuning
    caplog.clear()
    monkeypatch.undo()
    (tmp_path / "a-file").write_text("")
    with caplog.at_level(logging.WARNING, logger="tunebench.integrations"):
        assert main([*RUN, "--experiment-dir", str(blocked), "--tensorboard", str(tmp_path / "a-file")]) == 0
    warnings = [r for r in caplog.records if r.name.startswith("tunebench.integrations")]
    assert len(warnings) == 1 and "TensorBoard logging failed" in warnings[0].message
    assert load_experiment(blocked).trials[columns].equals(load_experiment(plain).trials[columns])



SCRIPT = """
import argparse, json, os, signal, time
from pathlib import Path
from tunebench import report
from tunebench.space import uniform
CONFIG_SPACE = {"x": uniform(0, 1)}
if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float)
    args, _ = p.parse_known_args()
    report(epoch=1, loss=(args.x - 0.3) ** 2 + 1.0)
    marker = Path(__file__).with_name("killed")
    if not marker.exists():  # the first run: SIGKILL the tuner once it decided epoch 1, then report 2 and 3
        exp = Path(os.environ["TUNEBENCH_RESULTS_FILE"]).parents[2]
        log = exp / "events.jsonl"
        while not any(json.loads(line)["event"] == "result" for line in log.read_text().splitlines()):
            time.sleep(0.02)
        marker.write_text("")
        os.kill(json.loads((exp / "tuner.lock").read_text())["pid"], signal.SIGKILL)
    for epoch in (2, 3):
        report(epoch=epoch, loss=(args.x - 0.3) ** 2 + 1.0 / epoch)
"""


def test_reports_a_killed_tuner_never_read_are_logged_once_on_resume(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    """The script kills the tuner (SIGKILL) once it decided epoch 1, then reports epochs 2 and 3:
    the resumed tuner decides them from the results file before its callbacks'
    ``on_tuning_start``, while the loggers catch up with the event log; each is logged once."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    exp = tmp_path / "exp"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "tunebench", "run", "--script", str(script), "--metric", "loss",
                          "--resource-attr", "epoch", "--method", "RS", "--n-workers", "1", "--max-trials", "2",
                          "--experiment-dir", str(exp), "--no-progress", "--mlflow",
                          "--tensorboard"], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    _, results, _ = _log_facts(exp)
    assert [len(r) for r in results.values()] == [1]
    for _ in range(200):  # the orphaned trial writes its last reports
        if (exp / "trials" / "0" / "results.jsonl").read_text().count("\n") == 3:
            break
        time.sleep(0.05)
    resumed = subprocess.run([sys.executable, "-m", "tunebench", "resume", str(exp), "--no-progress", "--mlflow",
                              "--tensorboard"], capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _, results, _ = _log_facts(exp)
    assert [len(r) for r in results.values()] == [3, 3]
    _check_mlflow(exp)
    _check_tensorboard(exp)
