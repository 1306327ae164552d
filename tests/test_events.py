"""The event-log module: reading rules, offsets, the fold, and resume's replay as a pure function."""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest

from tunebench.events import (
    ExperimentState,
    LogKind,
    dumps_line,
    fold,
    iter_events,
    parse_result_line,
    read_last_event,
    replay,
)
from tunebench.schedulers import make_scheduler
from tunebench.space import choice, uniform
from tunebench.types import Decision, Status, Trial

SPACE = {"x": uniform(0.0, 1.0), "opt": choice(["sgd", "adam"]), "epochs": 8}


def write(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(lines))
    return path


# -- reading ------------------------------------------------------------------------------------


def test_torn_last_line_is_dropped_with_a_warning(tmp_path, caplog):
    path = write(tmp_path / "e.jsonl", b'{"event":"session_start","seq":0}\n',
                 b'{"event":"trial_start","seq":1,"trial_id":0,"con')
    with caplog.at_level(logging.WARNING, logger="tunebench.events"):
        got = list(iter_events(path))
    assert got == [(34, {"event": "session_start", "seq": 0})]
    assert "torn last line" in caplog.text


def test_garbled_middle_line_is_skipped_and_reading_goes_on(tmp_path, caplog):
    path = write(tmp_path / "e.jsonl", b'{"a":1}\n', b"not json\n", b"[1,2]\n", b"\n", b'{"a":2}\n')
    with caplog.at_level(logging.WARNING, logger="tunebench.events"):
        got = list(iter_events(path))
    assert got == [(8, {"a": 1}), (32, {"a": 2})]  # offsets count the skipped lines' bytes
    assert caplog.text.count("not a JSON object; skipped") == 2  # the blank line is skipped silently


def test_a_read_resumes_from_an_offset_it_yielded(tmp_path):
    path = tmp_path / "e.jsonl"
    events = [{"event": "result", "seq": i, "result": {"loss": 1.0 / (i + 1)}} for i in range(4)]
    path.write_bytes(b"".join(dumps_line(ev) for ev in events[:2]) + b'{"event":"res')  # a writer mid-line
    first = list(iter_events(path))
    assert [ev for _, ev in first] == events[:2]
    offset = first[-1][0]
    assert offset == len(dumps_line(events[0])) + len(dumps_line(events[1]))
    assert list(iter_events(path, offset)) == []  # the torn line is not an event yet
    with open(path, "r+b") as f:  # the writer finishes its line and writes another
        f.truncate(offset)
        f.seek(offset)
        f.write(dumps_line(events[2]) + dumps_line(events[3]))
    rest = list(iter_events(path, offset))
    assert [ev for _, ev in rest] == events[2:]
    assert rest[-1][0] == path.stat().st_size
    assert [end for end, _ in first + rest] == [end for end, _ in iter_events(path)]


def test_non_finite_numbers_round_trip(tmp_path):
    path = write(tmp_path / "e.jsonl", dumps_line({"v": math.nan, "w": -math.inf, "n": 2**60}))
    [(_, ev)] = list(iter_events(path))
    assert math.isnan(ev["v"]) and ev["w"] == -math.inf and ev["n"] == 2**60


def test_last_event_reads_only_the_end_and_refuses_a_torn_or_garbled_end(tmp_path):
    end = dumps_line({"event": "experiment_end", "reason": "max_trials=3 reached"})
    filler = dumps_line({"event": "result", "result": {"pad": "x" * 500}}) * 400  # 200 kB
    path = write(tmp_path / "e.jsonl", filler, end)
    assert read_last_event(path) == {"event": "experiment_end", "reason": "max_trials=3 reached"}
    assert read_last_event(write(tmp_path / "t.jsonl", filler, end, b'{"event":"ses')) is None
    assert read_last_event(write(tmp_path / "g.jsonl", end, b"garbage\n")) is None
    assert read_last_event(write(tmp_path / "z.jsonl")) is None
    assert read_last_event(write(tmp_path / "long.jsonl", filler), max_bytes=100) is None  # one cut line


def test_results_lines():
    assert parse_result_line(b'{"loss": 0.5, "epoch": 1}') == {"loss": 0.5, "epoch": 1}
    assert math.isnan(parse_result_line(b'{"loss": NaN}')["loss"])  # type: ignore[index]
    assert parse_result_line(b"  ") is None
    with pytest.raises(ValueError, match="a JSON list, not an object"):
        parse_result_line(b"[1, 2]")
    with pytest.raises(ValueError):
        parse_result_line(b"{not json")
    with pytest.raises(ValueError):
        parse_result_line(b'{"loss": "\xff"}')  # not UTF-8


def test_kinds_are_the_logged_strings():
    assert LogKind.RESULT == "result" and LogKind("trial_fail") is LogKind.TRIAL_FAIL
    assert LogKind.EXPERIMENT_END.key in dumps_line({"event": LogKind.EXPERIMENT_END, "reason": "x"})


# -- the fold -----------------------------------------------------------------------------------

HAND_LOG: list[dict[str, Any]] = [
    {"event": "session_start", "seq": 0, "time": 0.0, "resumed": False},
    {"event": "trial_start", "seq": 1, "time": 0.0, "trial_id": 0, "config": {"x": 0.1}},
    {"event": "trial_start", "seq": 2, "time": 0.1, "trial_id": 1, "config": {"x": 0.2}},
    {"event": "result", "seq": 3, "time": 1.0, "trial_id": 0, "result": {"loss": 3.0, "epoch": 1},
     "decision": "PAUSE", "offset": 30},
    {"event": "result_deferred", "seq": 4, "time": 1.1, "trial_id": 0, "result": {"loss": 2.5, "epoch": 2},
     "offset": 60},
    {"event": "result", "seq": 5, "time": 1.5, "trial_id": 1, "result": {"loss": 1.0, "epoch": 1},
     "decision": "STOP", "offset": 31},
    {"event": "result_ignored", "seq": 6, "time": 1.6, "trial_id": 1, "result": {"loss": 0.9, "epoch": 2},
     "offset": 62, "reason": "trial is stopped"},
    {"event": "trial_start", "seq": 7, "time": 2.0, "trial_id": 2, "config": {"x": 0.3}},
    {"event": "trial_fail", "seq": 8, "time": 2.5, "trial_id": 2, "error": "boom"},
    {"event": "trial_start", "seq": 9, "time": 3.0, "trial_id": 3, "config": {"x": 0.4}},
    {"event": "trial_interrupt", "seq": 10, "time": 4.0, "trial_id": 3, "reason": "max_wallclock_time=4s reached"},
    {"event": "experiment_end", "seq": 11, "time": 4.0, "reason": "max_wallclock_time=4s reached"},
    {"event": "session_start", "seq": 12, "time": 4.0, "resumed": True},
    {"event": "trial_restart", "seq": 13, "time": 4.0, "trial_id": 3, "offset": 0},
    {"event": "trial_resume", "seq": 14, "time": 5.0, "trial_id": 0, "suggest_id": 4, "config": {"x": 0.15}},
    {"event": "result", "seq": 15, "time": 6.0, "trial_id": 0, "result": {"loss": 2.5, "epoch": 2},
     "decision": "CONTINUE", "offset": 60},
    {"event": "trial_complete", "seq": 16, "time": 7.5, "trial_id": 0},
    {"event": "result", "seq": 17, "time": 7.0, "trial_id": 9, "result": {"loss": 0.0}, "decision": "CONTINUE"},
]


def test_fold_of_a_hand_written_log():
    state = fold(HAND_LOG)
    assert isinstance(state, ExperimentState)
    assert list(state.trials) == [0, 1, 2, 3] and state.next_trial_id == 4
    t0, t1, t2, t3 = (state.trials[i] for i in range(4))
    assert t0.trial.config == {"x": 0.15}  # changed by its resume
    assert (t0.status, t0.n_results, t0.last_result, t0.offset, t0.deferred) == (
        Status.COMPLETED, 2, {"loss": 2.5, "epoch": 2}, 60, [])
    assert (t1.status, t1.n_results, t1.offset) == (Status.STOPPED, 1, 62)  # the ignored result's offset
    assert (t2.status, t2.error, t2.n_results) == (Status.FAILED, "boom", 0)
    assert t3.status is Status.RUNNING and not t3.interrupted  # interrupted, then restarted
    assert state.n_results == 4 and [ev["seq"] for ev in state.results] == [3, 5, 15, 17]  # all result events
    assert state.n_failed == 1 and state.n_events == len(HAND_LOG) and state.time == 7.5
    assert state.n_sessions == 2 and state.launches_in_last_session == 1
    assert state.end_reason == "max_wallclock_time=4s reached" and not state.finished

    before = fold(HAND_LOG[:12])  # the first session only
    assert before.finished and before.trials[3].interrupted and before.trials[3].status is Status.RUNNING
    assert before.trials[0].status is Status.PAUSED and before.trials[0].deferred == [({"loss": 2.5, "epoch": 2}, 60)]
    assert before.launches_in_last_session == 4
    assert fold(HAND_LOG[12:], fold(HAND_LOG[:12])) == state  # folding is incremental


# -- replay -------------------------------------------------------------------------------------


def _scheduler(method: str) -> Any:
    return make_scheduler(method, SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                          seed=3, reduction_factor=2, grace_period=1)


def _loss(config: dict[str, Any], epoch: int) -> float:
    return (config["x"] - 0.3) ** 2 + (0.1 if config["opt"] == "sgd" else 0.0) + 1.0 / epoch


def _drive(scheduler: Any, n_trials: int) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Run ``scheduler`` on one worker without any process, writing the log the tuner writes;
    returns it and the scheduler's state after each event (by seq)."""
    log: list[dict[str, Any]] = []
    snapshots: dict[int, dict[str, Any]] = {}
    configs: dict[int, dict[str, Any]] = {}
    epochs: dict[int, int] = {}

    def append(ev: dict[str, Any]) -> None:
        ev["seq"] = len(log)
        log.append(ev)
        snapshots[len(log)] = copy.deepcopy(scheduler.state_dict())

    next_id = 0
    while True:
        suggestion = scheduler.suggest(next_id) if next_id < n_trials else scheduler.suggest_resume(next_id)
        if suggestion is None:
            return log, snapshots
        if suggestion.is_resume:
            tid = suggestion.resume_trial_id
            ev = {"event": "trial_resume", "trial_id": tid, "suggest_id": next_id, "config": suggestion.config}
            if next_id >= n_trials:
                ev["resume_only"] = True
            append(ev)
        else:
            tid, next_id = next_id, next_id + 1
            configs[tid], epochs[tid] = suggestion.config, 0
            append({"event": "trial_start", "trial_id": tid, "config": suggestion.config})
        trial = Trial(tid, configs[tid])
        result: dict[str, Any] | None = None
        while epochs[tid] < SPACE["epochs"]:
            epochs[tid] += 1
            result = {"loss": _loss(configs[tid], epochs[tid]), "epoch": epochs[tid], "trial_id": tid}
            decision = scheduler.on_result(trial, result)
            append({"event": "result", "trial_id": tid, "result": result, "decision": decision})
            if decision is not Decision.CONTINUE:
                break
        else:
            scheduler.on_complete(trial, result)
            append({"event": "trial_complete", "trial_id": tid})


def _json(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True)


@pytest.mark.parametrize("method", ["ASHA", "ASHA-promotion"])
def test_replay_rebuilds_the_scheduler_without_processes(method, caplog):
    original = _scheduler(method)
    log, snapshots = _drive(original, n_trials=12)
    kinds = {ev["event"] for ev in log}
    decisions = {ev["decision"] for ev in log if ev["event"] == "result"}
    assert Decision.CONTINUE in decisions and (Decision.STOP in decisions or Decision.PAUSE in decisions)
    if method == "ASHA-promotion":
        assert "trial_resume" in kinds  # pauses and resumes are replayed too
    log = [json.loads(dumps_line(ev)) for ev in log]  # as read back from disk: decisions as strings

    with caplog.at_level(logging.WARNING):
        fresh = _scheduler(method)
        state = replay(fresh, log)
    assert "not deterministic" not in caplog.text
    assert _json(fresh.state_dict()) == _json(original.state_dict())
    assert state == fold(log) and len(state.trials) == 12

    # from a snapshot: only the calls logged after it are replayed
    middle = len(log) // 2
    resumed = _scheduler(method)
    resumed.load_state_dict(copy.deepcopy(snapshots[middle]))
    with caplog.at_level(logging.WARNING):
        replay(resumed, log, from_seq=middle)
    assert "not deterministic" not in caplog.text
    assert _json(resumed.state_dict()) == _json(original.state_dict())


def test_replayed_decision_that_differs_from_the_logged_one_is_reported(caplog):
    log, _ = _drive(_scheduler("ASHA"), n_trials=8)
    log = [json.loads(dumps_line(ev)) for ev in log]
    i, ev = next((i, ev) for i, ev in enumerate(log) if ev["event"] == "result" and ev["decision"] == "STOP")
    ev["decision"] = "CONTINUE"  # a log written by a scheduler that decided otherwise
    n = sum(1 for e in log[: i + 1] if e["event"] == "result" and e["trial_id"] == ev["trial_id"])
    with caplog.at_level(logging.WARNING, logger="tunebench.events"):
        state = replay(_scheduler("ASHA"), log)
    [record] = [r for r in caplog.records if "decided" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"replaying the log: the scheduler decided STOP on result {n} of trial "
                                          f"{ev['trial_id']} where the log has CONTINUE")
    assert state.trials[ev["trial_id"]].status is Status.RUNNING  # the logged history is kept
