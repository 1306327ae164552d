"""The tuner driving real trial processes on the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_script

from tunebench.backends.local import LocalBackend
from tunebench.errors import TuningError, UserError
from tunebench.reporting import save_checkpoint
from tunebench.schedulers import make_scheduler
from tunebench.space import uniform
from tunebench.store import EVENTS_FILE, load_experiment
from tunebench.tuner import Callback, StopCriteria, Tuner

SPACE = {"x": uniform(-1.0, 1.0), "epochs": 9}


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / EVENTS_FILE).read_text().splitlines()]


def make_tuner(script: Path, exp: Path, method: str = "RS", n_workers: int = 2, space=None, **kw) -> Tuner:
    stop = kw.pop("stop", StopCriteria(max_trials=6))
    scheduler = make_scheduler(method, space or SPACE, metric=kw.pop("metric", "loss"), mode="min",
                               resource_attr="epoch", max_resource_attr="epochs", seed=kw.pop("seed", 1),
                               **kw.pop("method_kwargs", {}))
    backend = LocalBackend(script=script, trial_timeout=kw.pop("trial_timeout", None))
    return Tuner(backend, scheduler, n_workers=n_workers, stop=stop, experiment_dir=exp, **kw)


def test_random_search_runs_every_trial_to_the_end(quadratic_script, tmp_path):
    exp = tmp_path / "exp"
    result = make_tuner(quadratic_script, exp).run()
    assert result.n_trials == 6 and result.n_completed == 6 and result.n_failed == 0
    df = load_experiment(exp).results
    assert len(df) == 6 * 9
    assert sorted(df.groupby("trial_id")["epoch"].max().tolist()) == [9] * 6
    # the best reported value belongs to the config closest to 0.3
    final = df[df.epoch == 9]
    best_row = final.loc[final.loss.idxmin()]
    assert result.best_metric == pytest.approx(best_row.loss)
    assert result.best_config["x"] == pytest.approx(best_row.config_x)
    assert abs(result.best_config["x"] - 0.3) == pytest.approx(min(abs(final.config_x - 0.3)))
    # --epochs was passed to every trial from the constant in the space
    assert set(df.config_epochs) == {9}


def test_asha_stops_poor_trials_and_records_decisions(quadratic_script, tmp_path):
    exp = tmp_path / "exp"
    result = make_tuner(quadratic_script, exp, method="ASHA", stop=StopCriteria(max_trials=12)).run()
    table = load_experiment(exp).trial_table()
    statuses = [t["status"] for t in table]
    assert "stopped" in statuses and "completed" in statuses
    stopped_results = [e for e in events(exp) if e["event"] == "result" and e["decision"] == "STOP"]
    assert stopped_results and all(e["result"]["epoch"] in (1, 3) for e in stopped_results)
    assert result.n_trials == 12


def test_promotion_asha_resumes_from_checkpoint_without_retraining(quadratic_script, tmp_path):
    exp = tmp_path / "exp"
    space = {"x": uniform(-1.0, 1.0), "epochs": 9, "sleep": 0.05}
    make_tuner(quadratic_script, exp, method="ASHA-promotion", space=space, stop=StopCriteria(max_trials=9)).run()
    evs = events(exp)
    assert any(e["event"] == "trial_resume" for e in evs), "some paused trial was promoted"
    for trial_dir in (exp / "trials").iterdir():
        tid = int(trial_dir.name)
        trained = [int(v) for v in (trial_dir / "trained_epochs.txt").read_text().split()]
        # decided on, or reported while being paused (decided on if it resumes)
        reported = [e["result"]["epoch"] for e in evs
                    if e["event"] in ("result", "result_deferred") and e["trial_id"] == tid]
        # every epoch trained once, and reported once, in order: the resumed trial continued its curve
        assert trained == reported == list(range(1, len(trained) + 1))


def test_crashing_trials_are_failed_with_stderr_and_tuning_goes_on(tmp_path):
    script = write_script(tmp_path, """
        import argparse, sys
        from tunebench import report
        p = argparse.ArgumentParser(); p.add_argument("--x", type=float); p.add_argument("--epochs", type=int)
        a = p.parse_args()
        report(epoch=1, loss=a.x)
        if a.x > 0:
            raise RuntimeError(f"exploded at x={a.x}")
        report(epoch=2, loss=a.x)
    """)
    exp = tmp_path / "exp"
    result = make_tuner(script, exp, stop=StopCriteria(max_trials=8), max_failures=100).run()
    fails = [e for e in events(exp) if e["event"] == "trial_fail"]
    assert result.n_failed == len(fails) > 0
    assert result.n_completed == 8 - len(fails)
    assert all("exploded at x=" in e["error"] and "exit code 1" in e["error"] for e in fails)
    # results reported before the crash are kept
    failed_ids = {e["trial_id"] for e in fails}
    df = load_experiment(exp).results
    assert set(df[df.trial_id.isin(failed_ids)].epoch) == {1}


def test_more_failures_than_allowed_ends_tuning_with_clear_error(tmp_path):
    script = write_script(tmp_path, "import sys\nsys.exit('bad things')\n")
    exp = tmp_path / "exp"
    with pytest.raises(TuningError, match=r"3 trials failed \(max_failures=2\).*bad things"):
        make_tuner(script, exp, stop=StopCriteria(max_trials=20), max_failures=2).run()
    summary = load_experiment(exp).summary()
    assert summary["n_failed"] == 3 and summary["finished"]


@pytest.mark.parametrize("line, message", [
    ("report(epoch=1, accuracy=0.3)", "without the metric 'loss'"),
    ("report(epoch=1, loss=float('nan'))", "not a finite number"),
    ("report(loss=0.3)", "without the resource 'epoch'"),
    ("import os; open(os.environ['TUNEBENCH_RESULTS_FILE'], 'a').write('{oops\\n')", "malformed"),
])
def test_bad_reports_fail_the_trial(tmp_path, line, message):
    script = write_script(tmp_path, f"from tunebench import report\n{line}\nimport time; time.sleep(30)\n")
    exp = tmp_path / "exp"
    result = make_tuner(script, exp, stop=StopCriteria(max_trials=2), max_failures=5).run()
    fails = [e for e in events(exp) if e["event"] == "trial_fail"]
    assert result.n_failed == 2 and len(fails) == 2
    assert all(message in e["error"] for e in fails)
    assert result.elapsed_time < 20, "the hanging script was stopped, not waited for"


def test_trial_timeout_fails_a_hanging_trial(tmp_path):
    script = write_script(tmp_path, "import time\nfrom tunebench import report\nreport(epoch=1, loss=1.0)\n"
                                    "time.sleep(60)\n")
    exp = tmp_path / "exp"
    result = make_tuner(script, exp, stop=StopCriteria(max_trials=1), trial_timeout=1.0).run()
    fails = [e for e in events(exp) if e["event"] == "trial_fail"]
    assert result.n_failed == 1 and "timed out" in fails[0]["error"]
    assert len(load_experiment(exp).results) == 1


@pytest.mark.parametrize("stop, check", [
    (StopCriteria(max_results=10), lambda r: r.n_results == 10),
    (StopCriteria(metric_threshold=10.0), lambda r: r.n_results < 9 and r.end_reason.startswith("metric_threshold")),
    (StopCriteria(max_wallclock_time=2.0), lambda r: 2.0 <= r.elapsed_time < 6.0),
])
def test_stop_criteria(quadratic_script, tmp_path, stop, check):
    exp = tmp_path / "exp"
    space = {"x": uniform(-1.0, 1.0), "epochs": 9, "sleep": 0.05}
    result = make_tuner(quadratic_script, exp, stop=stop, space=space).run()
    assert check(result), result
    assert load_experiment(exp).summary()["finished"]


def test_resume_continues_without_reusing_ids_or_losing_results(quadratic_script, tmp_path):
    exp = tmp_path / "exp"
    space = {"x": uniform(-1.0, 1.0), "epochs": 9, "sleep": 0.02}
    first = make_tuner(quadratic_script, exp, method="ASHA", space=space, stop=StopCriteria(max_results=20)).run()
    before = [(e["trial_id"], e["result"]["epoch"]) for e in events(exp) if e["event"] == "result"]
    assert len(before) >= 20
    with pytest.raises(UserError, match="already holds an experiment"):
        make_tuner(quadratic_script, exp, method="ASHA", space=space).run()
    second = make_tuner(quadratic_script, exp, method="ASHA", space=space, resume=True,
                        stop=StopCriteria(max_trials=first.n_trials + 4)).run()
    evs = events(exp)
    after = [(e["trial_id"], e["result"]["epoch"]) for e in evs if e["event"] == "result"]
    assert after[: len(before)] == before
    assert second.n_trials == first.n_trials + 4
    starts = [e["trial_id"] for e in evs if e["event"] == "trial_start"]
    assert len(starts) == len(set(starts)) == second.n_trials
    # trials interrupted at the end of the first session restarted and never re-reported an epoch
    assert len(after) == len(set(after))
    assert [e["seq"] for e in evs] == list(range(len(evs)))


def test_callbacks_see_every_step(quadratic_script, tmp_path):
    seen: dict[str, int] = {}

    class Counter(Callback):
        def on_tuning_start(self, tuner):
            seen["tuning_start"] = seen.get("tuning_start", 0) + 1

        def on_trial_start(self, tuner, trial, how):
            seen[f"trial_{how}"] = seen.get(f"trial_{how}", 0) + 1

        def on_result(self, tuner, trial, result, decision):
            seen["result"] = seen.get("result", 0) + 1

        def on_trial_end(self, tuner, trial, status):
            seen[status.value] = seen.get(status.value, 0) + 1

        def on_tuning_end(self, tuner, result):
            seen["tuning_end"] = seen.get("tuning_end", 0) + 1

    make_tuner(quadratic_script, tmp_path / "exp", stop=StopCriteria(max_trials=3), callbacks=[Counter()]).run()
    assert seen == {"tuning_start": 1, "trial_start": 3, "result": 27, "completed": 3, "tuning_end": 1}


def test_no_pickle_in_the_experiment_folder(quadratic_script, tmp_path):
    exp = tmp_path / "exp"
    make_tuner(quadratic_script, exp, stop=StopCriteria(max_trials=2)).run()
    for path in exp.iterdir():
        if path.is_file():
            json.loads(path.read_text()) if path.suffix == ".json" else [
                json.loads(line) for line in path.read_text().splitlines()]
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["metric"] == "loss" and meta["mode"] == "min"
    assert meta["config_space"]["x"]["type"] == "uniform"
    assert "numpy" in meta["versions"]


def test_resume_replays_the_whole_log_when_the_snapshot_is_lost(quadratic_script, tmp_path, caplog):
    exp = tmp_path / "exp"
    space = {"x": uniform(-1.0, 1.0), "epochs": 9}
    make_tuner(quadratic_script, exp, method="ASHA-promotion", space=space, stop=StopCriteria(max_trials=8)).run()
    (exp / "scheduler_state.json").unlink()
    caplog.set_level("WARNING", logger="tunebench")
    tuner = make_tuner(quadratic_script, exp, method="ASHA-promotion", space=space, resume=True,
                       stop=StopCriteria(max_trials=12))
    result = tuner.run()
    assert "not deterministic" not in caplog.text, "replaying the log rebuilt the same scheduler"
    assert result.n_trials == 12
    # the rebuilt scheduler knows the old trials: their rung results were replayed into it
    rung_ids = {tid for rung in tuner.scheduler.rung_results().values() for _, tid in rung}
    assert set(range(8)) <= rung_ids


def test_progress_display_shows_counts_and_best(quadratic_script, tmp_path):
    import io

    from tunebench.progress import ProgressDisplay

    for live in (True, False):
        out = io.StringIO()
        display = ProgressDisplay(live=live, stream=out, interval=0.0)
        make_tuner(quadratic_script, tmp_path / f"exp{live}", stop=StopCriteria(max_trials=3),
                   callbacks=[display]).run()
        text = out.getvalue()
        assert "3 completed" in text and "0 failed" in text and "best loss (min)" in text
        if live:
            assert "best trials" in text and "x=" in text


def test_resume_keeps_results_a_paused_or_stopped_trial_wrote_that_the_dead_tuner_never_read(quadratic_script,
                                                                                            tmp_path):
    """A trial may report between the PAUSE/STOP decision and its process ending; if the tuner dies
    before reading that line, resume must still log it (deferred for a paused trial, ignored for an
    ended one), as a live session does: no reported result is lost."""
    exp = tmp_path / "exp"
    make_tuner(quadratic_script, exp, method="ASHA-promotion", stop=StopCriteria(max_trials=8)).run()
    state = {}
    for ev in events(exp):
        if ev["event"] == "result":
            state[ev["trial_id"]] = ev["decision"]
    paused = [tid for tid, d in state.items() if d == "PAUSE"]
    assert paused, state
    tid = paused[-1]
    results = exp / "trials" / str(tid) / "results.jsonl"
    last = json.loads(results.read_text().splitlines()[-1])
    written = {**last, "epoch": last["epoch"] + 1}
    with open(results, "a") as f:  # what the process wrote after the decision, unread by the tuner
        f.write(json.dumps(written) + "\n")
    n_before = len(events(exp))
    make_tuner(quadratic_script, exp, method="ASHA-promotion", resume=True, stop=StopCriteria(max_trials=8)).run()
    new = events(exp)[n_before:]
    kept = [ev for ev in new if ev.get("trial_id") == tid and ev["event"] in ("result_deferred", "result_ignored",
                                                                              "result")]
    assert any(ev["result"]["epoch"] == written["epoch"] for ev in kept), new


def test_resume_logs_every_line_a_running_trial_wrote_after_the_one_that_pauses_it(quadratic_script, tmp_path):
    """A trial running when its tuner died wrote lines the tuner never read; resume decides on them
    in order. When one of them pauses the trial, the lines after it were reported while it was being
    paused: they are deferred to its resume and logged now (as a live session logs them), not left
    unread until a resume that may never come (the experiment may end first)."""
    from tunebench.types import Decision

    def scheduler_pausing_on_mark():
        scheduler = make_scheduler("RS", {**SPACE, "sleep": 0.2}, metric="loss", mode="min", resource_attr="epoch",
                                   max_resource_attr="epochs", seed=1)
        decide = scheduler.on_result
        scheduler.on_result = lambda trial, result: Decision.PAUSE if result.get("pause_here") else decide(trial,
                                                                                                           result)
        return scheduler

    exp = tmp_path / "exp"
    Tuner(LocalBackend(script=quadratic_script), scheduler_pausing_on_mark(), n_workers=1,
          stop=StopCriteria(max_results=3), experiment_dir=exp).run()
    assert [e["event"] for e in events(exp) if e.get("trial_id") == 0][-1] == "trial_interrupt"
    results = exp / "trials" / "0" / "results.jsonl"
    epoch = json.loads(results.read_text().splitlines()[-1])["epoch"] + 1
    with open(results, "a") as f:  # as if written by the trial after its tuner died
        f.write(json.dumps({"epoch": epoch, "loss": 1.0, "pause_here": True}) + "\n")
        f.write(json.dumps({"epoch": epoch + 1, "loss": 0.9}) + "\n")
    n_before = len(events(exp))
    Tuner(LocalBackend(script=quadratic_script), scheduler_pausing_on_mark(), n_workers=1,
          stop=StopCriteria(max_results=4), experiment_dir=exp, resume=True).run()
    new = [e for e in events(exp)[n_before:] if e.get("trial_id") == 0 and "result" in e]
    assert [(e["event"], e["result"]["epoch"], e.get("decision")) for e in new] == [
        ("result", epoch, "PAUSE"), ("result_deferred", epoch + 1, None)]


TRAINS_ON_AFTER_SIGTERM = """
import argparse, os, signal, sys, time
from tunebench import report, load_checkpoint, save_checkpoint
from tunebench.reporting import add_checkpoint_argument
p = argparse.ArgumentParser()
p.add_argument("--x", type=float, default=0.0)
p.add_argument("--epochs", type=int, default=9)
add_checkpoint_argument(p)
args, _ = p.parse_known_args()
with open(os.path.join(args.checkpoint_dir, "..", "launches.txt"), "a") as f:
    f.write("launch\\n")
told = []
signal.signal(signal.SIGTERM, lambda *_: told.append(1))
state = load_checkpoint(args.checkpoint_dir)
if state is not None:
    report(epoch=state["epoch"], loss=1.0 / state["epoch"])
for epoch in range(1 if state is None else state["epoch"] + 1, args.epochs + 1):
    save_checkpoint({"epoch": epoch}, args.checkpoint_dir)
    report(epoch=epoch, loss=1.0 / epoch)
    if state is None and epoch == 2:  # the first process: paused here, it trains three more epochs
        deadline = time.monotonic() + 60
        while not told:
            assert time.monotonic() < deadline, "no SIGTERM"
            time.sleep(0.01)
    if told and epoch == 5:
        sys.exit(0)
"""


def _pausing_at_2_and_3(decided: list[int] | None = None):
    """RS on one trial (``max_trials=1``) that PAUSEs at epochs 2 and 3 and resumes the trial
    whenever it is paused (``decided``: the epochs decided on, appended)."""
    from tunebench.types import Decision, Suggestion

    sched = make_scheduler("RS", SPACE, metric="loss", mode="min", resource_attr="epoch",
                           max_resource_attr="epochs", seed=0)
    paused: list[int] = []

    def on_result(trial, result):
        if decided is not None:
            decided.append(result["epoch"])
        if result["epoch"] in (2, 3):
            paused.append(trial.trial_id)
            return Decision.PAUSE
        return Decision.CONTINUE

    sched.on_result = on_result
    sched.suggest_resume = lambda trial_id: Suggestion.resume(paused.pop()) if paused else None
    return sched


def test_results_reported_after_a_pause_are_decided_in_order_over_later_resumes(tmp_path: Path) -> None:
    """A script that trains on after its PAUSE (here epochs 3-5, checkpointed, after the PAUSE at 2)
    gets those results deferred to its resume; the scheduler pauses it again at the first of them
    (3): the trial is then not launched, and the rest (4, 5) stay deferred for its next resume,
    which decides on them before the process is launched from the checkpoint of epoch 5. Every
    epoch is decided once, in order, with two processes in all; the log replays to the same state
    at each step."""
    from tunebench.events import fold

    script = write_script(tmp_path, TRAINS_ON_AFTER_SIGTERM)
    decided: list[int] = []
    scheduler = _pausing_at_2_and_3(decided)
    exp = tmp_path / "exp"
    result = Tuner(LocalBackend(script=script), scheduler, n_workers=1, stop=StopCriteria(max_trials=1),
                   experiment_dir=exp).run()
    assert result.n_failed == 0 and decided == list(range(1, 10))
    log = [e for e in events(exp) if e.get("trial_id") == 0]
    assert [(e["event"], e.get("result", {}).get("epoch"), e.get("decision"))
            for e in log if e["event"] != "trial_start"] == [
        ("result", 1, "CONTINUE"), ("result", 2, "PAUSE"),
        ("result_deferred", 3, None), ("result_deferred", 4, None), ("result_deferred", 5, None),
        ("trial_resume", None, None), ("result", 3, "PAUSE"),
        ("trial_resume", None, None), ("result", 4, "CONTINUE"), ("result", 5, "CONTINUE"),
        ("result_ignored", 5, None),  # the relaunched process's re-report of its checkpointed epoch
        *[("result", epoch, "CONTINUE") for epoch in range(6, 10)], ("trial_complete", None, None)]
    assert (exp / "trials" / "0" / "launches.txt").read_text().split() == ["launch", "launch"]
    assert list(load_experiment(exp).results["epoch"]) == list(range(1, 10))
    every = events(exp)
    at = {e["seq"]: i for i, e in enumerate(every)}
    second_resume = [e for e in log if e["event"] == "trial_resume"][1]
    before = fold(every[: at[second_resume["seq"]]]).trials[0]  # between the resumes, as a new session sees it
    assert before.status.value == "paused" and [r["epoch"] for r, _ in before.deferred] == [4, 5]
    assert fold(every).trials[0].deferred == []


def test_a_session_that_died_while_deferred_results_were_decided_leaves_the_rest_to_the_next(tmp_path: Path) -> None:
    """The tuner dies after the resume's first deferred result (4 of 4, 5; see above), before the
    trial is launched: the resumed experiment decides on the rest (5) before it relaunches the
    trial from its checkpoint. Every epoch is decided once, in order."""
    script = write_script(tmp_path, TRAINS_ON_AFTER_SIGTERM)
    exp = tmp_path / "exp"
    Tuner(LocalBackend(script=script), _pausing_at_2_and_3(), n_workers=1, stop=StopCriteria(max_trials=1),
          experiment_dir=exp).run()
    # the log and the files as the tuner left them when it died right after deciding on epoch 4
    # (the first process's lines only: the trial was not relaunched)
    log = (exp / EVENTS_FILE).read_text().splitlines()
    cut = next(i for i, line in enumerate(log) if json.loads(line).get("event") == "result"
               and json.loads(line)["result"]["epoch"] == 4)
    (exp / EVENTS_FILE).write_text("\n".join(log[: cut + 1]) + "\n")
    (exp / "scheduler_state.json").unlink(missing_ok=True)
    trial = exp / "trials" / "0"
    lines = (trial / "results.jsonl").read_text().splitlines(keepends=True)
    (trial / "results.jsonl").write_text("".join(lines[:5]))  # epochs 1-5 of the first process
    save_checkpoint({"epoch": 5}, trial / "checkpoint")
    (trial / "launches.txt").write_text("launch\n")
    result = Tuner(LocalBackend(script=script), _pausing_at_2_and_3(), n_workers=1,
                   stop=StopCriteria(max_trials=1), experiment_dir=exp, resume=True).run()
    assert result.n_failed == 0
    decided = [(e["result"]["epoch"], e["decision"]) for e in events(exp) if e["event"] == "result"]
    assert decided == [(1, "CONTINUE"), (2, "PAUSE"), (3, "PAUSE"), *[(epoch, "CONTINUE") for epoch in range(4, 10)]]
    assert list(load_experiment(exp).results["epoch"]) == list(range(1, 10))
    assert (trial / "launches.txt").read_text().split() == ["launch", "launch"]
    # epoch 5 decided is the first process's line, deferred; the relaunched process's re-report is ignored
    fifth = {e["event"]: e["offset"] for e in events(exp) if e.get("result", {}).get("epoch") == 5}
    assert fifth["result"] == fifth["result_deferred"] < fifth["result_ignored"]
