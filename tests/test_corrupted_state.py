"""A damaged experiment folder (issue 13, "Corrupted state"): an unusable scheduler snapshot is
rebuilt from the event log with a warning; an emptied or lost event log beside trial folders is
refused, never overwritten; a malformed event or metadata.json is one line naming the file."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from conftest import QUADRATIC, write_script

from tunebench.cli import main
from tunebench.store import EVENTS_FILE, METADATA_FILE, STATE_FILE, load_experiment


def _one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit 2 and one line ``tunebench: error: ...`` without a traceback
    (besides the warnings logged on the way: a garbage line of the log is skipped with one)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("WARNING tunebench.")]
    assert len(lines) == 1 and lines[0].startswith("tunebench: error: ") and "Traceback" not in err, err
    return lines[0]


def _results(exp: Path) -> list[tuple]:
    df = load_experiment(exp).results
    return list(zip(df.trial_id, df.epoch, df.loss, df.decision, df.config_x1, df.config_x2, strict=True))


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """A finished simulated experiment (ASHA on branin, 12 trials) with its scheduler snapshot."""
    exp = tmp_path_factory.mktemp("sim") / "exp"
    assert main(["run", "--benchmark", "branin", "--method", "ASHA", "--max-trials", "12", "--experiment-dir",
                 str(exp), "--no-progress"]) == 0
    assert (exp / STATE_FILE).is_file()
    return exp


@pytest.fixture(scope="module")
def resumed_intact(simulated, tmp_path_factory) -> list[tuple]:
    """The results of resuming ``simulated`` to 24 trials with its snapshot intact."""
    exp = tmp_path_factory.mktemp("intact") / "exp"
    shutil.copytree(simulated, exp)
    assert main(["resume", str(exp), "--max-trials", "24", "--no-progress"]) == 0
    return _results(exp)


# -- the scheduler snapshot ---------------------------------------------------------------------


@pytest.mark.parametrize("snapshot", [
    b"\x00garbage{",
    b"[]",
    b"{}",
    b'{"seq": 79, "state": {"wrong": "keys"}}',
    b'{"seq": 79, "state": {"rungs": "not a rung list", "trials": 5}}',
    b'{"seq": 100000, "state": {}}',
    b'{"seq": "7", "state": []}',
], ids=["garbage", "list", "empty-object", "wrong-keys", "wrong-values", "seq-beyond-the-log", "wrong-types"])
def test_an_unusable_snapshot_is_rebuilt_from_the_event_log(simulated, resumed_intact, tmp_path, caplog, snapshot):
    exp = tmp_path / "exp"
    shutil.copytree(simulated, exp)
    (exp / STATE_FILE).write_bytes(snapshot)
    with caplog.at_level(logging.WARNING, logger="tunebench"):
        assert main(["resume", str(exp), "--max-trials", "24", "--no-progress"]) == 0
    warned = [r for r in caplog.records if "rebuilding the scheduler from the event log" in r.getMessage()]
    assert len(warned) == 1 and str(exp) in warned[0].getMessage() and warned[0].levelno == logging.WARNING
    # rebuilt by replaying the whole log, the scheduler decides as the one loaded from the snapshot
    assert _results(exp) == resumed_intact
    assert json.loads((exp / STATE_FILE).read_bytes())["seq"] > 0  # a good snapshot replaced it


# -- an emptied or lost event log beside trial folders --------------------------------------------


@pytest.fixture(scope="module")
def with_trials(tmp_path_factory) -> Path:
    """A finished experiment of a real script (3 trials), with its trial folders."""
    root = tmp_path_factory.mktemp("real")
    script = write_script(root, QUADRATIC)
    space = root / "space.yaml"
    space.write_text("x: {type: uniform, low: -1, high: 1}\n")
    exp = root / "exp"
    assert main(["run", "--script", str(script), "--config-space", str(space), "--metric", "loss",
                 "--resource-attr", "epoch", "--method", "RS", "--n-workers", "1", "--max-trials", "3",
                 "--experiment-dir", str(exp), "--no-progress"]) == 0
    assert sorted(p.name for p in (exp / "trials").iterdir()) == ["0", "1", "2"]
    return exp


def _trial_files(exp: Path) -> dict[str, bytes]:
    return {str(p.relative_to(exp)): p.read_bytes() for p in sorted((exp / "trials").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["emptied", "lost", "garbage"])
def test_a_log_emptied_or_lost_beside_trial_folders_is_refused_never_overwritten(with_trials, tmp_path, capsys,
                                                                                 damage):
    exp = tmp_path / "exp"
    shutil.copytree(with_trials, exp)
    log = exp / EVENTS_FILE
    if damage == "emptied":
        log.write_bytes(b"")
    elif damage == "lost":
        log.unlink()
    else:
        log.write_bytes(b"not an event\n")
    trials = _trial_files(exp)
    message = _one_line_error(capsys, ["resume", str(exp), "--no-progress"])
    assert "3 trial folders" in message and "overwrite" in message and str(exp) in message
    if damage == "lost":
        # and `run` into that folder does not start a new experiment over those trials either
        script = with_trials.parent / "train.py"
        message = _one_line_error(capsys, ["run", "--script", str(script), "--config-space",
                                           str(with_trials.parent / "space.yaml"), "--metric", "loss",
                                           "--max-trials", "1", "--experiment-dir", str(exp), "--no-progress"])
        assert "3 trial folders" in message and "no event log" in message
        assert not log.exists()
    assert _trial_files(exp) == trials


def test_an_empty_log_without_trial_folders_still_resumes(tmp_path):
    """A tuner killed right after creating its folder left an empty log and no trial: resumable."""
    exp = tmp_path / "exp"
    assert main(["run", "--benchmark", "branin", "--method", "RS", "--max-trials", "2", "--experiment-dir", str(exp),
                 "--no-progress"]) == 0
    (exp / EVENTS_FILE).write_bytes(b"")
    assert main(["resume", str(exp), "--no-progress"]) == 0
    assert load_experiment(exp).summary()["n_trials"] == 2


# -- malformed events ---------------------------------------------------------------------------


def _edit_line(exp: Path, kind: str, edit) -> int:
    """Apply ``edit`` to the first event of ``kind`` (after the first trial); returns its line number."""
    lines = (exp / EVENTS_FILE).read_bytes().splitlines(keepends=True)
    seen = 0
    for i, raw in enumerate(lines):
        ev = json.loads(raw)
        if ev["event"] == kind:
            seen += 1
            if seen == 2:
                edit(ev)
                lines[i] = json.dumps(ev).encode() + b"\n"
                (exp / EVENTS_FILE).write_bytes(b"".join(lines))
                return i + 1
    raise AssertionError(f"no second {kind}")


@pytest.mark.parametrize("kind, edit, problem", [
    ("trial_start", lambda ev: ev.update(trial_id="../../etc"), "trial_start of trial '../../etc'"),
    ("trial_start", lambda ev: ev.update(trial_id=-1), "trial_start of trial -1 where the next trial id is 1"),
    ("trial_start", lambda ev: ev.update(trial_id=10**30), " where the next trial id is 1"),
    ("trial_start", lambda ev: ev.update(trial_id=1.0), "trial_start of trial 1.0 where"),
    ("trial_start", lambda ev: ev.pop("config"), "trial_start of trial 1 without a config object"),
    ("result", lambda ev: ev.update(trial_id=10**30), ", which no trial_start before it started"),
    ("result", lambda ev: ev.update(trial_id=[1]), "result of trial [1], which no trial_start"),
    ("result", lambda ev: ev.pop("result"), "without a result object"),
    ("result", lambda ev: ev.update(decision="EXPLODE"), "unknown decision 'EXPLODE'"),
    ("result", lambda ev: ev.update(time="soon"), "'time' is 'soon'"),
], ids=["path-id", "negative-id", "huge-id", "float-id", "no-config", "huge-result-id", "list-id", "no-result",
        "bad-decision", "bad-time"])
def test_a_malformed_event_is_one_line_naming_the_file_and_line(simulated, tmp_path, capsys, kind, edit, problem):
    exp = tmp_path / "exp"
    shutil.copytree(simulated, exp)
    line = _edit_line(exp, kind, edit)
    before = (exp / EVENTS_FILE).read_bytes()
    for argv in (["show", str(exp)], ["show", str(exp), "--json"], ["resume", str(exp), "--no-progress"]):
        message = _one_line_error(capsys, argv)
        assert f"{exp / EVENTS_FILE}, line {line}: " in message and problem in message, message
        assert "edited or damaged" in message
    assert (exp / EVENTS_FILE).read_bytes() == before  # resume wrote nothing


# -- metadata.json ------------------------------------------------------------------------------


@pytest.mark.parametrize("content, problem", [
    (b"\x89garbage", "is not readable JSON"),
    (b"", "is not readable JSON"),
    (b"{}", "has no usable 'metric'"),
    (b"[1, 2]", "holds a JSON list, not an object"),
    (b'{"metric": "loss", "mode": "sideways"}', "has no usable 'mode'"),
], ids=["garbage", "empty", "empty-object", "list", "bad-mode"])
def test_damaged_metadata_is_one_line_for_show_and_resume(simulated, tmp_path, capsys, content, problem):
    exp = tmp_path / "exp"
    shutil.copytree(simulated, exp)
    (exp / METADATA_FILE).write_bytes(content)
    for argv in (["show", str(exp)], ["resume", str(exp), "--no-progress"]):
        message = _one_line_error(capsys, argv)
        assert f"{exp / METADATA_FILE} {problem}" in message and "damaged" in message
