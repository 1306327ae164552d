"""The experiment store: append-only log, torn lines, snapshots, reading back, export."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tunebench.errors import UserError
from tunebench.store import (
    EVENTS_FILE,
    STATE_FILE,
    ExperimentStore,
    atomic_write_json,
    load_experiment,
    metric_column,
    read_json_lines,
)

META = {"metric": "loss", "mode": "min", "method": "RS"}


def fill(store: ExperimentStore) -> None:
    store.append({"event": "trial_start", "trial_id": 0, "config": {"x": 0.5, "opt": "sgd"}, "time": 0.0})
    store.append({"event": "trial_start", "trial_id": 1, "config": {"x": 0.1, "opt": 3}, "time": 0.1})
    store.append({"event": "result", "trial_id": 0, "result": {"epoch": 1, "loss": 2.0}, "decision": "CONTINUE",
                  "time": 1.0})
    store.append({"event": "result", "trial_id": 1, "result": {"epoch": 1, "loss": 1.5}, "decision": "STOP",
                  "time": 1.1})
    store.append({"event": "result", "trial_id": 0, "result": {"epoch": 2, "loss": 1.0}, "decision": "CONTINUE",
                  "time": 2.0})
    store.append({"event": "trial_complete", "trial_id": 0, "time": 2.1})
    store.append({"event": "trial_start", "trial_id": 2, "config": {"x": 0.9, "opt": "sgd"}, "time": 2.2})
    store.append({"event": "trial_fail", "trial_id": 2, "error": "exit code 1\nTraceback...", "time": 3.0})


def test_events_are_flushed_per_event_and_numbered(tmp_path):
    store = ExperimentStore.create(tmp_path / "e", META)
    fill(store)
    # readable by another reader before close: flushed to the OS per event
    lines = (tmp_path / "e" / EVENTS_FILE).read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(8))
    store.close()


def test_create_refuses_an_existing_experiment(tmp_path):
    ExperimentStore.create(tmp_path / "e", META).close()
    with pytest.raises(UserError, match="already holds an experiment.*tunebench resume"):
        ExperimentStore.create(tmp_path / "e", META)


def test_reopen_cuts_a_torn_last_line_and_keeps_the_rest(tmp_path):
    store = ExperimentStore.create(tmp_path / "e", META)
    fill(store)
    store.close()
    with open(tmp_path / "e" / EVENTS_FILE, "a") as f:
        f.write('{"event": "result", "trial_id": 1, "res')  # killed mid-write
    store, events = ExperimentStore.reopen(tmp_path / "e")
    assert len(events) == 8
    assert store.append({"event": "experiment_end", "reason": "x", "time": 4.0}) == 8
    store.close()
    lines = (tmp_path / "e" / EVENTS_FILE).read_text().splitlines()
    assert len(lines) == 9 and json.loads(lines[-1])["event"] == "experiment_end"


def test_reopen_of_a_folder_that_is_no_experiment(tmp_path):
    with pytest.raises(UserError, match="not a tunebench experiment folder"):
        ExperimentStore.reopen(tmp_path)


def test_scheduler_snapshot_is_atomic_json(tmp_path):
    store = ExperimentStore.create(tmp_path / "e", META)
    assert store.load_scheduler_state() is None
    fill(store)
    store.save_scheduler_state({"rungs": {"1": [[0.5, 3]]}})
    assert store.load_scheduler_state() == (8, {"rungs": {"1": [[0.5, 3]]}})
    (tmp_path / "e" / STATE_FILE).write_text("{broken")
    assert store.load_scheduler_state() is None  # unreadable: replay the whole log instead
    assert not [p for p in (tmp_path / "e").iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_keeps_the_old_file_when_serialization_fails(tmp_path):
    path = tmp_path / "f.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_read_json_lines_skips_garbage_and_reports_offsets(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\nnot json\n{"a": 2}\n{"a": 3')
    assert list(read_json_lines(path)) == [(9, {"a": 1}), (27, {"a": 2})]


def test_experiment_tables_summary_and_export(tmp_path):
    store = ExperimentStore.create(tmp_path / "e", META)
    fill(store)
    store.append({"event": "experiment_end", "reason": "max_trials=3 reached", "time": 3.1})
    store.close()
    exp = load_experiment(tmp_path / "e")
    df = exp.results
    assert list(df.trial_id) == [0, 1, 0] and list(df.loss) == [2.0, 1.5, 1.0]
    assert list(df.config_x) == [0.5, 0.1, 0.5] and list(df.decision) == ["CONTINUE", "STOP", "CONTINUE"]
    status = {t["trial_id"]: t["status"] for t in exp.trial_table()}
    assert status == {0: "completed", 1: "stopped", 2: "failed"}
    summary = exp.summary()
    assert summary["n_trials"] == 3 and summary["n_completed"] == 1 and summary["n_failed"] == 1
    assert summary["best_metric"] == 1.0 and summary["best_config"] == {"x": 0.5, "opt": "sgd"}
    assert summary["finished"] and summary["end_reason"] == "max_trials=3 reached"
    assert json.loads(json.dumps(summary)) == summary
    exp.to_csv(tmp_path / "r.csv")
    assert pd.read_csv(tmp_path / "r.csv").shape == df.shape
    exp.to_parquet(tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert back.shape == df.shape and list(back.loss) == [2.0, 1.5, 1.0]
    assert set(back.config_opt) == {"sgd", "3"}  # mixed-type column stored as text


def test_max_mode_best(tmp_path):
    store = ExperimentStore.create(tmp_path / "e", {**META, "mode": "max"})
    fill(store)
    store.close()
    assert load_experiment(tmp_path / "e").best()[2] == 2.0


def test_event_lines_keep_nan_and_infinity_exactly(tmp_path):
    import math

    from tunebench.store import dumps_line, loads_line

    for obj in ({"a": 1.5, "b": None, "c": [1, 2]}, {"r": {"x": float("nan"), "y": math.inf, "z": None}}):
        line = dumps_line(obj)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        back = loads_line(line)
        assert json.dumps(back, allow_nan=True) == json.dumps(obj, allow_nan=True)
    assert b"NaN" in dumps_line({"x": float("nan")}) and b"Infinity" in dumps_line({"x": -math.inf})
    assert loads_line(b'{"x": 0.30000000000000004}') == {"x": 0.1 + 0.2}


def test_compact_json_keeps_big_integers_and_non_finite_floats_exactly():
    import math

    import numpy as np

    from tunebench.store import dumps_compact

    state = {
        "values": [0.1, math.inf, -math.inf, 2.5],
        "nan": [float("nan")],
        "rng": np.random.default_rng(7).bit_generator.state,  # 128-bit integers
        "nested": {"none": None, "big": [2**80, 3], "text": "null"},
        "int_keys": {1: "a"},
        "plain": {"x": [1, 2, 3]},
    }
    back = json.loads(dumps_compact(state))
    assert back["values"] == [0.1, math.inf, -math.inf, 2.5]
    assert math.isnan(back["nan"][0])
    assert back["rng"] == state["rng"]
    assert back["nested"] == {"none": None, "big": [2**80, 3], "text": "null"}
    assert back["int_keys"] == {"1": "a"}
    assert back["plain"] == {"x": [1, 2, 3]}
    rng = np.random.default_rng()
    rng.bit_generator.state = back["rng"]
    assert rng.random() == np.random.default_rng(7).random()


def test_buffered_event_log_of_simulations_writes_every_event_exactly(tmp_path):
    """With flush_each off (simulations) events are buffered: all of them reach the file in order,
    non-finite floats stay exact, and a snapshot is never ahead of the log."""
    import math

    from tunebench.store import EVENTS_FILE, ExperimentStore, read_json_lines

    PENDING_BATCH = 512

    store = ExperimentStore.create(tmp_path / "exp", {"metric": "loss"})
    store.flush_each = False
    n = 2 * PENDING_BATCH + 7
    for i in range(n):
        loss = math.nan if i == PENDING_BATCH + 3 else (math.inf if i == 5 else i / 10)
        store.append({"event": "result", "trial_id": i, "result": {"loss": loss, "note": None}})
        if i == PENDING_BATCH + 10:
            store.save_scheduler_state({"n": i})
            logged = [obj for _, obj in read_json_lines(tmp_path / "exp" / EVENTS_FILE)]
            assert len(logged) == i + 1 == store.load_scheduler_state()[0]
    store.close()
    logged = [obj for _, obj in read_json_lines(tmp_path / "exp" / EVENTS_FILE)]
    assert [e["seq"] for e in logged] == list(range(n))
    assert logged[5]["result"]["loss"] == math.inf
    assert math.isnan(logged[PENDING_BATCH + 3]["result"]["loss"])
    assert logged[7]["result"] == {"loss": 0.7, "note": None}


def test_a_metric_named_like_a_tuner_column_never_overwrites_it(tmp_path):
    store = ExperimentStore.create(tmp_path / "e", META)
    store.append({"event": "trial_start", "trial_id": 0, "config": {"x": 0.5}, "time": 0.0, "real_time": 0.01})
    result = {"epoch": 1, "loss": 2.0, "time": 40.0, "trial_id": 7, "decision": "mine", "tuner_time": -1.0,
              "tuner_real_time": -2.0, "config_x": "metric", "result_decision": "taken"}
    store.append({"event": "result", "trial_id": 0, "result": result, "decision": "CONTINUE", "time": 1.5,
                  "real_time": 0.02})
    store.close()
    row = load_experiment(tmp_path / "e").results.iloc[0].to_dict()
    assert row == {"trial_id": 0, "epoch": 1, "loss": 2.0, "time": 40.0, "result_trial_id": 7,
                   "result_result_decision": "mine", "result_tuner_time": -1.0, "result_tuner_real_time": -2.0,
                   "result_config_x": "metric", "result_decision": "taken", "decision": "CONTINUE",
                   "tuner_time": 1.5, "tuner_real_time": 0.02, "config_x": 0.5}
    assert metric_column("val_error") == "val_error" and metric_column("time") == "time"
    assert metric_column("decision", {"decision": 1}) == "result_decision"
