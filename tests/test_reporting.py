"""The training-script side: report() lines, the wake-up byte, checkpoint helpers."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tunebench import reporting
from tunebench.reporting import (
    ENV_CHECKPOINT_DIR,
    ENV_NOTIFY_FD,
    ENV_RESULTS_FILE,
    ENV_TRIAL_ID,
    add_checkpoint_argument,
    checkpoint_dir,
    load_checkpoint,
    report,
    save_checkpoint,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch):
    for name in (ENV_RESULTS_FILE, ENV_CHECKPOINT_DIR, ENV_NOTIFY_FD, ENV_TRIAL_ID):
        monkeypatch.delenv(name, raising=False)
    reporting._reset_for_tests()
    yield
    reporting._reset_for_tests()


@pytest.fixture
def results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results.jsonl"
    monkeypatch.setenv(ENV_RESULTS_FILE, str(path))
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_env_variable_names():
    assert ENV_RESULTS_FILE == "TUNEBENCH_RESULTS_FILE"
    assert ENV_CHECKPOINT_DIR == "TUNEBENCH_CHECKPOINT_DIR"
    assert ENV_TRIAL_ID == "TUNEBENCH_TRIAL_ID"
    assert ENV_NOTIFY_FD == "TUNEBENCH_NOTIFY_FD"


def test_line_format_and_iteration_counter(results_file: Path):
    before = time.time()
    report(epoch=1, loss=0.5, name="a")
    report(epoch=2, loss=0.25, name="b")
    report(epoch=3, loss=0.125, name="c", nested={"x": [1, 2]})
    after = time.time()
    raw = results_file.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 3
    lines = read_lines(results_file)
    assert [r["_iteration"] for r in lines] == [0, 1, 2]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert lines[0] == {"epoch": 1, "loss": 0.5, "name": "a", "_timestamp": lines[0]["_timestamp"],
                        "_iteration": 0}
    assert lines[2]["nested"] == {"x": [1, 2]}
    stamps = [r["_timestamp"] for r in lines]
    assert before <= stamps[0] <= stamps[1] <= stamps[2] <= after


def test_appends_to_an_existing_file(results_file: Path):
    results_file.write_text('{"epoch": 0, "_timestamp": 0, "_iteration": 0}\n')
    report(epoch=1)
    assert [r["epoch"] for r in read_lines(results_file)] == [0, 1]


def test_new_results_file_restarts_the_counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV_RESULTS_FILE, str(tmp_path / "a.jsonl"))
    report(x=1)
    report(x=2)
    monkeypatch.setenv(ENV_RESULTS_FILE, str(tmp_path / "b.jsonl"))
    report(x=3)
    assert [r["_iteration"] for r in read_lines(tmp_path / "a.jsonl")] == [0, 1]
    assert [r["_iteration"] for r in read_lines(tmp_path / "b.jsonl")] == [0]


def test_line_is_on_disk_while_the_writer_lives(tmp_path: Path):
    """A reader sees each line as soon as report() returns, with the writer still running."""
    path = tmp_path / "results.jsonl"
    script = textwrap.dedent("""
        import sys
        from tunebench import report
        report(epoch=1, acc=0.5)
        print("reported", flush=True)
        sys.stdin.readline()          # stay alive until the test has read the file
        report(epoch=2, acc=0.6)
    """)
    env = {**os.environ, ENV_RESULTS_FILE: str(path)}
    env.pop(ENV_NOTIFY_FD, None)
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "reported"
        lines = read_lines(path)
        assert [(r["epoch"], r["acc"]) for r in lines] == [(1, 0.5)]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
    assert [r["epoch"] for r in read_lines(path)] == [1, 2]


def test_numpy_scalars_and_0d_arrays(results_file: Path):
    report(f32=np.float32(0.5), f64=np.float64(0.25), i64=np.int64(7), b=np.bool_(True),
           arr0=np.array(3.5), in_list=[np.int32(1), np.float16(2.0)])
    (line,) = read_lines(results_file)
    assert line["f32"] == 0.5 and line["f64"] == 0.25 and line["i64"] == 7
    assert line["b"] is True and line["arr0"] == 3.5 and line["in_list"] == [1, 2.0]
    assert type(line["i64"]) is int


def test_nan_and_inf_are_written_as_json_nan(results_file: Path):
    report(loss=float("nan"), up=float("inf"), down=-math.inf, np_nan=np.float32("nan"))
    text = results_file.read_text()
    assert '"loss": NaN' in text and '"up": Infinity' in text and '"down": -Infinity' in text
    (line,) = read_lines(results_file)
    assert math.isnan(line["loss"]) and math.isnan(line["np_nan"]) and line["up"] == math.inf


@pytest.mark.parametrize("value", [object(), np.array([1.0, 2.0]), {1, 2}, b"bytes"])
def test_non_serializable_value_names_the_key(results_file: Path, value):
    with pytest.raises(TypeError, match="'weird'"):
        report(ok=1, weird=value)
    assert not results_file.exists() or results_file.read_text() == ""


def test_reserved_keys_are_rejected(results_file: Path):
    with pytest.raises(ValueError, match="'_secret'.*reserved"):
        report(acc=1.0, _secret=2)
    with pytest.raises(ValueError, match="_iteration"):
        report(_iteration=3)
    report(acc=1.0)
    (line,) = read_lines(results_file)
    assert line["_iteration"] == 0  # failed calls do not count


def test_prints_outside_a_tuner(capsys: pytest.CaptureFixture[str]):
    report(epoch=1, acc=0.5)
    report(epoch=2, acc=0.75)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    first, second = json.loads(out[0]), json.loads(out[1])
    assert (first["epoch"], first["acc"], first["_iteration"]) == (1, 0.5, 0)
    assert second["_iteration"] == 1


def test_notify_fd_gets_one_byte_per_report(results_file: Path, monkeypatch: pytest.MonkeyPatch):
    r, w = os.pipe()
    try:
        monkeypatch.setenv(ENV_NOTIFY_FD, str(w))
        report(a=1)
        assert os.read(r, 100) == b"\x01"
        report(a=2)
        report(a=3)
        assert len(os.read(r, 100)) == 2
    finally:
        os.close(r)
        os.close(w)


def test_notify_errors_are_ignored(results_file: Path, monkeypatch: pytest.MonkeyPatch):
    r, w = os.pipe()
    os.close(r)  # nobody listens: EPIPE
    try:
        monkeypatch.setenv(ENV_NOTIFY_FD, str(w))
        report(a=1)
    finally:
        os.close(w)
    reporting._reset_for_tests()
    monkeypatch.setenv(ENV_NOTIFY_FD, str(w))  # now closed: EBADF
    report(a=2)
    reporting._reset_for_tests()
    monkeypatch.setenv(ENV_NOTIFY_FD, "not-a-number")
    report(a=3)
    assert [r["a"] for r in read_lines(results_file)] == [1, 2, 3]


def test_full_notify_pipe_does_not_block(results_file: Path, monkeypatch: pytest.MonkeyPatch):
    r, w = os.pipe()
    try:
        monkeypatch.setenv(ENV_NOTIFY_FD, str(w))
        os.set_blocking(w, False)
        while True:  # fill the pipe
            try:
                os.write(w, b"x" * 65536)
            except BlockingIOError:
                break
        report(a=1)  # would hang if the write blocked
        assert read_lines(results_file)[0]["a"] == 1
    finally:
        os.close(r)
        os.close(w)


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoint_helpers_outside_a_tuner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert checkpoint_dir() is None
    assert save_checkpoint({"a": 1}) is None
    assert load_checkpoint() is None
    assert list(tmp_path.iterdir()) == []
    parser = argparse.ArgumentParser()
    add_checkpoint_argument(parser)
    assert parser.parse_args([]).checkpoint_dir is None
    assert parser.parse_args(["--checkpoint-dir", "x"]).checkpoint_dir == Path("x")


def test_checkpoint_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "trial" / "checkpoint"
    monkeypatch.setenv(ENV_CHECKPOINT_DIR, str(folder))
    assert checkpoint_dir() == folder
    assert folder.is_dir()  # created
    parser = argparse.ArgumentParser()
    add_checkpoint_argument(parser)
    assert parser.parse_args([]).checkpoint_dir == folder
    path = save_checkpoint({"epoch": 3})
    assert path == folder / "checkpoint.npz"
    assert load_checkpoint() == {"epoch": 3}


def test_default_round_trip_holds_arrays_and_plain_data_exactly(tmp_path: Path):
    rng = np.random.default_rng(3)
    rng.random(5)
    state = {"epoch": 4, "weights": np.arange(6.0).reshape(2, 3), "rng": rng.bit_generator.state, "t": (1, (2, "x")),
             "layers": [np.ones(3, np.float32), np.array([True, False]), np.array(["ab", "c"]), np.zeros((0, 2))],
             "scalars": [np.float32(0.5), np.int64(2**40), np.bool_(True)], 7: None, None: "none", (1, "a"): 1.5,
             "floats": [math.nan, math.inf, -0.0, 1e-310, 0.1 + 0.2], "big": 2**100, "empty": {}, "nested": [[], ()],
             "tricky keys": {"array": 1, "dict": 2, "tuple": 3, "scalar": 4}, True: False}
    path = save_checkpoint(state, tmp_path)
    assert path == tmp_path / "checkpoint.npz"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]
    loaded = load_checkpoint(tmp_path)
    assert set(loaded) == set(state)
    assert loaded["epoch"] == 4 and loaded["t"] == (1, (2, "x")) and loaded["big"] == 2**100
    assert loaded[7] is None and loaded[None] == "none" and loaded[(1, "a")] == 1.5 and loaded[True] is False
    assert loaded["empty"] == {} and loaded["nested"] == [[], ()] and loaded["tricky keys"] == state["tricky keys"]
    np.testing.assert_array_equal(loaded["weights"], state["weights"])
    for got, want in zip(loaded["layers"], state["layers"], strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape and (got == want).all()
    assert [type(v) for v in loaded["scalars"]] == [np.float32, np.int64, np.bool_]
    assert loaded["scalars"] == state["scalars"]
    assert math.isnan(loaded["floats"][0]) and loaded["floats"][1:] == state["floats"][1:]
    assert math.copysign(1.0, loaded["floats"][2]) == -1.0
    again = np.random.default_rng(0)
    again.bit_generator.state = loaded["rng"]
    assert again.random() == rng.random(), "a generator's state comes back exactly"


def test_the_default_format_refuses_other_objects_naming_the_key_and_the_fix(tmp_path: Path):
    save_checkpoint({"epoch": 1}, tmp_path)
    cases = [({"opt": {"m": [1, object()]}}, "state['opt']['m'][1] is a builtins.object"),
             ({"f": lambda: None}, "state['f'] is a builtins.function"),
             ({"s": {1, 2}}, "state['s'] is a builtins.set"),
             ({"a": np.array([{"x": 1}], dtype=object)}, "state['a'] is a numpy array of Python objects"),
             ({frozenset(): 1}, "key frozenset() of state is a builtins.frozenset")]
    for state, message in cases:
        with pytest.raises(TypeError, match="save_checkpoint") as info:
            save_checkpoint(state, tmp_path)
        assert message in str(info.value)
        assert "format='pickle'" in str(info.value) or "use strings" in str(info.value)
    with pytest.raises(TypeError, match="must be a dict"):
        save_checkpoint([1, 2], tmp_path)  # type: ignore[arg-type]  # a wrong type on purpose
    assert load_checkpoint(tmp_path) == {"epoch": 1}, "the old checkpoint is untouched"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_pickle_only_when_asked_for_by_name(tmp_path: Path):
    state = {"epoch": 2, "f": {1, 2}}
    for call in (lambda: save_checkpoint(state, tmp_path, "state.pkl"), lambda: load_checkpoint(tmp_path, "state.pkl")):
        with pytest.raises(ValueError, match="format='pickle'"):
            call()
    with pytest.raises(ValueError, match="cannot tell its format"):
        save_checkpoint(state, tmp_path, "state.ckpt")
    with pytest.raises(ValueError, match="not one of npz, json, torch, pickle"):
        save_checkpoint(state, tmp_path, format="yaml")
    path = save_checkpoint(state, tmp_path, format="pickle")
    assert path == tmp_path / "checkpoint.pkl"
    assert load_checkpoint(tmp_path, format="pickle") == state
    assert load_checkpoint(tmp_path, "checkpoint.pkl", format="pickle") == state


class _Plant:
    """Pickles into a call that writes ``marker`` when unpickled (the way a planted pickle runs code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def plant(path: Path, marker: Path) -> None:
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"epoch": 3, "x": _Plant(marker)}))


def test_a_planted_pickle_never_runs(tmp_path: Path, capsys):
    marker = tmp_path / "ran"
    folder = tmp_path / "ckpt"
    plant(folder / "checkpoint.pkl", marker)
    assert load_checkpoint(folder) is None  # the default looks for checkpoint.npz only
    assert "is not loaded: loading a pickle can run any code" in capsys.readouterr().err
    with pytest.raises(ValueError, match="format='pickle'"):
        load_checkpoint(folder, "checkpoint.pkl")
    # a pickle named like the default file is refused by allow_pickle=False: set aside as corrupted
    plant(folder / "checkpoint.npz", marker)
    assert load_checkpoint(folder) is None
    assert "is corrupted or unreadable" in capsys.readouterr().err
    assert (folder / "checkpoint.npz.corrupted").is_file()
    # an .npz whose member is a pickled object array is refused too
    tree = b'{"format": 1, "state": {"dict": [["x", {"array": "a0"}]]}}'
    np.savez(folder / "checkpoint.npz", tunebench_checkpoint=np.frombuffer(tree, dtype=np.uint8),
             a0=np.array([_Plant(marker)], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_checkpoint(folder, on_error="raise")
    plant(folder / "state.json", marker)
    assert load_checkpoint(folder, "state.json") is None
    assert not marker.exists(), "no load ran the planted code"
    load_checkpoint(folder, "checkpoint.pkl", format="pickle")
    assert marker.exists(), "the plant does run code when unpickled: asked for by name, it is loaded"


def test_a_planted_pickle_does_not_run_when_a_trial_resumes(tmp_path: Path):
    """A trial restarted by the local backend (what `tunebench resume` does) with a planted
    checkpoint.pkl in its checkpoint folder trains from scratch and never runs the plant."""
    from tunebench.backends.local import LocalBackend
    from tunebench.types import EventKind, Trial

    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        from tunebench import report, save_checkpoint, load_checkpoint
        state = load_checkpoint() or {"epoch": 0}
        for epoch in range(state["epoch"] + 1, 4):
            save_checkpoint({"epoch": epoch})
            report(epoch=epoch, loss=1.0 / epoch)
    """))
    marker = tmp_path / "ran"
    trial_folder = tmp_path / "trials" / "0"
    plant(trial_folder / "checkpoint" / "checkpoint.pkl", marker)
    backend = LocalBackend(script=script, gpus=[], kill_grace_period=1.0)
    try:
        backend.start(Trial(0, {}), trial_folder)
        events = []
        while not any(e.kind in (EventKind.COMPLETED, EventKind.FAILED) for e in events):
            events += backend.poll(30.0)
    finally:
        backend.shutdown()
    assert [e.result["epoch"] for e in events if e.kind == EventKind.RESULT] == [1, 2, 3]
    assert events[-1].kind == EventKind.COMPLETED
    assert not marker.exists()
    assert load_checkpoint(trial_folder / "checkpoint") == {"epoch": 3}


def test_a_torch_file_that_would_run_code_is_refused(tmp_path: Path, capsys):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"
    torch.save({"w": torch.ones(2), "x": _Plant(marker)}, tmp_path / "model.pt")
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        load_checkpoint(tmp_path, "model.pt", on_error="raise")
    assert load_checkpoint(tmp_path, "model.pt") is None
    assert "is corrupted or unreadable" in capsys.readouterr().err
    assert (tmp_path / "model.pt.corrupted").is_file() and not marker.exists()
    torch.load(tmp_path / "model.pt.corrupted", weights_only=False)
    assert marker.exists(), "the plant does run code when loaded without weights_only"


def test_json_round_trip(tmp_path: Path):
    state = {"epoch": 2, "history": [0.5, 0.25], "name": "x"}
    path = save_checkpoint(state, str(tmp_path), filename="state.json")
    assert json.loads(path.read_text()) == state
    assert load_checkpoint(tmp_path, filename="state.json") == state
    assert load_checkpoint(tmp_path, filename="other.json") is None


def test_torch_format(tmp_path: Path):
    torch = pytest.importorskip("torch")
    state = {"w": torch.ones(2), "epoch": 1}
    save_checkpoint(state, tmp_path, filename="model.pt")
    loaded = load_checkpoint(tmp_path, filename="model.pt")
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], state["w"])


def test_save_is_atomic(tmp_path: Path):
    save_checkpoint({"epoch": 1}, tmp_path, format="pickle")
    # pickling fails midway (the first entry is already written to the temp file)
    with pytest.raises(Exception):  # noqa: B017 - PicklingError or AttributeError
        save_checkpoint({"epoch": 2, "bad": lambda: None}, tmp_path, format="pickle")
    assert load_checkpoint(tmp_path, format="pickle") == {"epoch": 1}
    with pytest.raises(TypeError):
        save_checkpoint({"epoch": 2, "bad": object()}, tmp_path, filename="state.json")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pkl"]  # no temp files left
    save_checkpoint({"epoch": 3}, tmp_path)
    assert load_checkpoint(tmp_path) == {"epoch": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "checkpoint.pkl"]


def test_import_is_light():
    """``import tunebench`` (what a training script pays) loads none of the heavy libraries."""
    code = ("import sys, tunebench; from tunebench import report, save_checkpoint; "
            "heavy = {'numpy', 'pandas', 'rich', 'scipy', 'sklearn', 'torch', 'yaml', 'tempfile'}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("damage", [b"", b"garbage, not a pickle", "truncated"])
def test_a_corrupted_checkpoint_restarts_the_trial_and_says_so(tmp_path: Path, capsys, damage):
    path = save_checkpoint({"epoch": 5, "weights": np.arange(1000.0)}, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else damage)
    assert load_checkpoint(tmp_path) is None
    err = capsys.readouterr().err
    assert f"checkpoint {path} is corrupted or unreadable" in err and "starting this trial from scratch" in err
    assert not path.exists() and (tmp_path / "checkpoint.npz.corrupted").exists(), "kept aside, not read again"
    save_checkpoint({"epoch": 1}, tmp_path)  # the restarted trial checkpoints as usual
    assert load_checkpoint(tmp_path) == {"epoch": 1}


def test_a_corrupted_checkpoint_can_raise_instead(tmp_path: Path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ValueError):
        load_checkpoint(tmp_path, "state.json", on_error="raise")
    with pytest.raises(ValueError, match="on_error"):
        load_checkpoint(tmp_path, on_error="ignore")
