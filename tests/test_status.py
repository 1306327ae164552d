"""Honest outcomes: the exit status of a run where nothing worked, the status of a trial that never
reported, warnings for repeated or out-of-range resource values, and the best configuration taken
among the trials that reached the maximum resource (with the resource it was seen at)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_script

from tunebench.backends.local import LocalBackend
from tunebench.events import LogKind, Standing, TrialScore, rank_trials
from tunebench.schedulers import make_scheduler
from tunebench.space import choice, uniform
from tunebench.store import EVENTS_FILE, load_experiment
from tunebench.tuner import StopCriteria, Tuner
from tunebench.types import Status, Trial


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True, timeout=300)


def logged(exp: Path, kind: LogKind) -> list[dict]:
    lines = (exp / EVENTS_FILE).read_text().splitlines()
    return [ev for ev in map(json.loads, lines) if ev["event"] == kind.value]


def tuner(script: Path, exp: Path, space: dict, method: str = "RS", max_trials: int = 2, **kw) -> Tuner:
    scheduler = make_scheduler(method, space, metric="loss", mode="min", resource_attr="epoch",
                               max_resource_attr="epochs", seed=0)
    return Tuner(LocalBackend(script=script), scheduler, n_workers=2, stop=StopCriteria(max_trials=max_trials),
                 experiment_dir=exp, **kw)


# -- exit codes ---------------------------------------------------------------------------------

CRASHING = """
from tunebench.space import uniform
CONFIG_SPACE = {"x": uniform(0, 1)}
if __name__ == "__main__":
    raise RuntimeError("boom in the training script")
"""

#: the config space names --lr, which the script's (strict) parser does not take
LACKS_OPTION = """
import argparse
from tunebench import report
from tunebench.space import uniform
CONFIG_SPACE = {"x": uniform(0, 1), "lr": uniform(0.1, 1)}
if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float)
    args = p.parse_args()
    report(loss=args.x)
"""


@pytest.mark.parametrize("body, cause", [(CRASHING, "RuntimeError: boom in the training script"),
                                         (LACKS_OPTION, "unrecognized arguments: --lr")])
def test_a_run_where_every_trial_failed_exits_non_zero_with_a_final_line(tmp_path, body, cause):
    script = write_script(tmp_path, body)
    exp = tmp_path / "exp"
    run = cli("run", "--script", str(script), "--metric", "loss", "--max-trials", "3", "--n-workers", "1",
              "--experiment-dir", str(exp), "--no-progress")
    assert run.returncode == 1, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("tunebench: tuning failed: no trial reported a result (3 of 3 trials failed; last: ")
    assert cause in last and f"logs: {exp}/trials/2/" in last
    assert "Traceback" not in last
    # resume of that experiment: still nothing usable
    resumed = cli("resume", str(exp), "--max-trials", "4", "--no-progress")
    assert resumed.returncode == 1, resumed.stderr
    assert "(4 of 4 trials failed" in resumed.stderr.strip().splitlines()[-1]


def test_every_trial_failing_after_reporting_is_a_failed_run_too(tmp_path):
    script = write_script(tmp_path, """
        import argparse
        from tunebench import report
        p = argparse.ArgumentParser()
        p.add_argument("--x", type=float)
        p.add_argument("--epochs", type=int)
        args, _ = p.parse_known_args()
        report(epoch=1, loss=args.x)
        raise RuntimeError("diverged")
        """)
    result = tuner(script, tmp_path / "exp", {"x": uniform(0, 1), "epochs": 3}).run()
    assert result.n_results == 2 and result.n_failed == 2 and not result.ok
    assert result.failure is not None and result.failure.startswith("every trial failed (2 of 2 trials failed")
    assert "RuntimeError: diverged" in result.failure


def test_a_run_with_a_result_succeeds(tmp_path, quadratic_script):
    result = tuner(quadratic_script, tmp_path / "exp", {"x": uniform(0, 1), "epochs": 2}).run()
    assert result.ok and result.failure is None and result.n_completed == 2


# -- statuses -----------------------------------------------------------------------------------


def test_a_script_exiting_without_a_report_is_failed(tmp_path, caplog):
    script = write_script(tmp_path, "print('trained, but forgot to report')\n")
    exp = tmp_path / "exp"
    with caplog.at_level(logging.WARNING, logger="tunebench.tuner"):
        result = tuner(script, exp, {"x": uniform(0, 1), "epochs": 3}).run()
    assert result.n_completed == 0 and result.n_failed == 2 and not result.ok
    table = load_experiment(exp).trial_table()
    assert [t["status"] for t in table] == ["failed", "failed"]
    assert all(t["error"].startswith("exited without reporting") for t in table)
    assert "call tunebench.report(loss=...) with epoch=..." in table[0]["error"]
    assert logged(exp, LogKind.TRIAL_COMPLETE) == [] and len(logged(exp, LogKind.TRIAL_FAIL)) == 2
    assert sum("exited without reporting" in r.getMessage() for r in caplog.records) == 2


#: epochs 1, 2, 2 (again), 1 (back), 3, then 4 and 5 beyond the maximum of 3
ODD_EPOCHS = """
import argparse
from tunebench import report
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
p.add_argument("--epochs", type=int)
args, _ = p.parse_known_args()
for epoch in (1, 2, 2, 1, 3, 4, 5):
    report(epoch=epoch, loss=args.x + 1 / epoch)
"""


def test_repeated_and_beyond_max_resources_are_warned_once_per_trial_and_logged(tmp_path, caplog):
    script = write_script(tmp_path, ODD_EPOCHS)
    exp = tmp_path / "exp"
    with caplog.at_level(logging.WARNING, logger="tunebench.tuner"):
        result = tuner(script, exp, {"x": uniform(0, 1), "epochs": 3}).run()
    assert result.n_completed == 2 and result.n_results == 2 * 3  # epochs 1, 2, 3 of each trial decided
    ignored = logged(exp, LogKind.RESULT_IGNORED)
    for tid in (0, 1):
        reasons = [ev["reason"] for ev in ignored if ev["trial_id"] == tid]
        assert reasons == ["epoch=2 already reported", "epoch=1 already reported", "epoch=4 beyond the maximum 3",
                           "epoch=5 beyond the maximum 3"]
        messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"trial {tid} reported")]
        assert len(messages) == 2, messages
        assert "epoch=2 already reported" in messages[0] and "epoch=4 beyond the maximum 3" in messages[1]
    assert load_experiment(exp).results.groupby("trial_id")["epoch"].max().tolist() == [3, 3]


def test_the_documented_re_report_of_a_checkpointed_epoch_is_not_warned(tmp_path, quadratic_script, caplog):
    # promotion-type ASHA pauses and resumes trials; the script re-reports its checkpointed epoch
    exp = tmp_path / "exp"
    with caplog.at_level(logging.WARNING, logger="tunebench.tuner"):
        tuner(quadratic_script, exp, {"x": uniform(-1, 1), "epochs": 9}, method="ASHA-promotion", max_trials=6).run()
    reasons = [ev["reason"] for ev in logged(exp, LogKind.RESULT_IGNORED)]
    assert reasons and all(r.endswith("already reported") for r in reasons), "a resumed trial re-reported"
    assert not [r for r in caplog.records if "already reported" in r.getMessage()]


# -- the best configuration ---------------------------------------------------------------------

#: x < 0.5 gives up after 2 epochs with a tiny loss; the others train every epoch, best at epoch 5
SHORT_AND_FULL = """
import argparse
from tunebench import report
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
p.add_argument("--epochs", type=int)
if __name__ == "__main__":
    args, _ = p.parse_known_args()
    last = args.epochs if args.x >= 0.5 else 2
    for epoch in range(1, last + 1):
        report(epoch=epoch, loss=args.x / 10 if args.x < 0.5 else args.x + abs(epoch - 5) / 100)
"""


def test_the_best_is_taken_among_trials_that_reached_the_maximum_resource(tmp_path):
    script = write_script(tmp_path, SHORT_AND_FULL)
    exp = tmp_path / "exp"
    result = tuner(script, exp, {"x": choice([0.1, 0.7, 0.2, 0.9]), "epochs": 9}, method="Grid", max_trials=4).run()
    # trial 0 (x=0.1) has the lowest value of all (0.01, at epoch 2), but stopped at epoch 2 of 9
    assert result.best_config == {"x": 0.7, "epochs": 9} and result.best_metric == pytest.approx(0.7)
    assert (result.best_trial_id, result.best_resource, result.best_resource_reached) == (1, 5, 9)
    assert result.best_at_max_resource is True and result.best_trial_status == "completed"
    exp_ = load_experiment(exp)
    top = exp_.best_trial()
    assert top is not None and (top.trial_id, top.value, top.resource, top.reached) == (1, result.best_metric, 5, 9)
    summary = exp_.summary()
    assert (summary["best_trial_id"], summary["best_metric"], summary["best_resource"]) == (1, result.best_metric, 5)
    assert summary["best_trial_status"] == "completed" and summary["best_at_max_resource"] is True
    assert exp_.best()[2] == pytest.approx(0.01), "best() stays the best value of any result"
    board = summary["leaderboard"]
    assert [row["trial_id"] for row in board] == [1, 3, 0, 2]  # reached 9 first, then by value
    assert [row["resource_reached"] for row in board] == [9, 9, 2, 2]
    assert board[2] == {"trial_id": 0, "config": {"x": 0.1, "epochs": 9}, "value": pytest.approx(0.01),
                        "resource": 1, "resource_reached": 2, "max_resource": 9, "at_max_resource": False,
                        "status": "completed"}


def test_without_a_full_trial_the_best_is_at_the_highest_resource_reached_and_said_so(tmp_path):
    script = write_script(tmp_path, SHORT_AND_FULL)
    exp = tmp_path / "exp"
    run = cli("run", "--script", str(script), "--metric", "loss", "--resource-attr", "epoch",
              "--max-resource-attr", "epochs", "--max-resource", "9", "--method", "RS", "--max-trials", "2",
              "--config-space", str(write_script(tmp_path, "x: {type: uniform, low: 0, high: 0.4}\n", "s.yaml")),
              "--experiment-dir", str(exp), "--no-progress")
    assert run.returncode == 0, run.stderr
    result = load_experiment(exp).summary()
    assert result["best_at_max_resource"] is False and result["best_resource_reached"] == 2
    assert ("note: no trial reached the maximum epoch (9); this is the best at the highest epoch reached (2)"
            in run.stdout)
    assert f"(trial {result['best_trial_id']}, completed, at epoch 1, reached epoch 2 of 9)" in run.stdout


def test_show_prints_a_leaderboard_and_json_has_the_best_resource(tmp_path):
    script = write_script(tmp_path, SHORT_AND_FULL)
    exp = tmp_path / "exp"
    tuner(script, exp, {"x": choice([0.1, 0.7, 0.2, 0.9, 0.6, 0.3]), "epochs": 9}, method="Grid",
          max_trials=6).run()
    show = cli("show", str(exp))
    assert show.returncode == 0, show.stderr
    out = show.stdout
    assert "best loss (min): 0.6 (trial 4, completed, at epoch 5, reached epoch 9 of 9)" in out
    lines = out.splitlines()
    start = lines.index("  leaderboard (top 5):")
    header, rows = lines[start + 1].split(), [line.split() for line in lines[start + 2:start + 7]]
    assert header == ["trial", "loss", "epoch", "reached", "status", "config"]
    assert [r[0] for r in rows] == ["4", "1", "3", "0", "2"] and len(lines) == start + 7
    assert rows[0][1:4] == ["0.6", "9/9", "completed"] and rows[3][1:4] == ["0.01", "2/9", "completed"]
    assert "x=0.6," in lines[start + 2]
    summary = json.loads(cli("show", str(exp), "--json").stdout)
    assert summary["best_resource"] == 5 and summary["best_trial_status"] == "completed"
    assert [row["trial_id"] for row in summary["leaderboard"]] == [4, 1, 3, 0, 2]


def test_rank_trials_rule():
    def standing(tid: int, value: float, reached: float | None, top: float | None = 9) -> Standing | None:
        score = TrialScore()
        for r in range(1, int(reached) + 1) if reached is not None else [None]:
            score.observe(value, r, "max")
        return Standing.of(Trial(tid, {"epochs": top}), Status.STOPPED, score, "epochs")

    full, short, shorter = standing(0, 0.5, 9), standing(1, 0.9, 3), standing(2, 0.99, 1)
    assert [s.trial_id for s in rank_trials([shorter, short, full, None], "max")] == [0, 1, 2]
    assert [s.trial_id for s in rank_trials([shorter, short], "max", k=1)] == [1]
    assert full is not None and full.resource == 1, "the first epoch with the best value"
    tie = standing(3, 0.5, 9)
    assert [s.trial_id for s in rank_trials([tie, full], "max")] == [0, 3]
    no_resource = [standing(4, 0.2, None), standing(5, 0.3, None, top=None)]
    assert [s.trial_id for s in rank_trials(no_resource, "max")] == [5, 4]
    assert not any(s.at_max_resource for s in rank_trials(no_resource, "max"))
