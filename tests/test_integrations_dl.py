"""The PyTorch Lightning and Hugging Face Transformers integrations, with the real packages on the CPU
(nothing downloaded): the callbacks report per epoch after writing the trial's checkpoint, a resumed
run continues from it (and reports the checkpointed epoch again), and a real `tunebench run` with
promotion-type ASHA pauses and resumes trials whose epochs trained equal the epochs reported.

Each test skips, saying so, when its package is absent. The tests that train are marked slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script, logged_events

from tunebench import reporting

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "tunebench" / "examples"
LIGHTNING_MLP = EXAMPLES / "lightning_mlp.py"
HF_TINY = EXAMPLES / "hf_tiny.py"


@pytest.fixture
def pl_integration():
    pytest.importorskip("lightning", reason="the lightning extra is not installed: pip install 'tunebench[lightning]'")
    from tunebench.integrations import lightning as integration

    return integration


@pytest.fixture
def hf_integration():
    pytest.importorskip("transformers",
                        reason="the transformers extra is not installed: pip install 'tunebench[transformers]'")
    pytest.importorskip("accelerate", reason="the Trainer needs accelerate: pip install 'tunebench[transformers]'")
    from tunebench.integrations import transformers as integration

    return integration


@pytest.fixture
def trial(tmp_path, monkeypatch) -> Path:
    """A trial's environment in this process: results file and checkpoint folder."""
    folder = tmp_path / "trial"
    folder.mkdir()
    monkeypatch.setenv(reporting.ENV_RESULTS_FILE, str(folder / "results.jsonl"))
    monkeypatch.setenv(reporting.ENV_CHECKPOINT_DIR, str(folder / "checkpoint"))
    monkeypatch.chdir(folder)
    reporting._reset_for_tests()
    yield folder
    reporting._reset_for_tests()


def reports(trial_dir: Path) -> list[dict]:
    path = trial_dir / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def runs(lines: list[dict]) -> list[list[dict]]:
    """The reports of a trial split by process run (each run counts ``_iteration`` from 0)."""
    out: list[list[dict]] = []
    for line in lines:
        if line["_iteration"] == 0:
            out.append([])
        out[-1].append(line)
    return out


load_example = load_script


def check_epochs_trained_equal_epochs_reported(lines: list[dict], trained_key: str) -> None:
    """Across the runs of one trial: each run continues where the previous one's checkpoint left off
    (its first report is the checkpointed epoch again, or the next one), epochs go up by one within a
    run, every report says as many epochs trained as its epoch, and a repeated epoch repeats its values."""
    by_epoch: dict[int, dict] = {}
    previous_last = 0
    for run in runs(lines):
        epochs = [r["epoch"] for r in run]
        assert epochs[0] in (previous_last, previous_last + 1) or (previous_last == 0 and epochs[0] == 1), lines
        assert epochs == list(range(epochs[0], epochs[0] + len(epochs))), f"a gap or a repeat within a run: {epochs}"
        previous_last = epochs[-1]
        for r in run:
            assert r[trained_key] == r["epoch"], f"epochs trained != epoch reported: {r}"
            values = {k: v for k, v in r.items() if not k.startswith("_")}
            assert by_epoch.setdefault(r["epoch"], values) == values, "a re-reported epoch changed"
    assert sorted(by_epoch) == list(range(1, max(by_epoch) + 1)), f"epochs reported: {sorted(by_epoch)}"


# --------------------------------------------------------------------------- Lightning


def test_lightning_callback_checks_its_arguments(pl_integration):
    with pytest.raises(ValueError, match="on='test_end' is not one of validation_end, train_epoch_end"):
        pl_integration.ReportCallback("val_error", on="test_end")
    with pytest.raises(ValueError, match="'epoch' is reported by the callback itself"):
        pl_integration.ReportCallback({"epoch": "val_epoch"})
    with pytest.raises(ValueError, match="name at least one metric"):
        pl_integration.ReportCallback([])
    assert pl_integration.ReportCallback({"error": "val_error"}).metrics == {"error": "val_error"}


def test_lightning_resume_path_is_none_outside_a_tuner_before_the_first_checkpoint_and_when_corrupted(
        pl_integration, trial, monkeypatch, caplog):
    import torch

    assert pl_integration.resume_checkpoint_path() is None  # a trial's first run
    path = trial / "checkpoint" / "last.ckpt"
    torch.save({"epoch": 0}, path)
    assert pl_integration.resume_checkpoint_path() == str(path)
    path.write_bytes(path.read_bytes()[:40])  # truncated on disk
    with caplog.at_level("WARNING", logger="tunebench.integrations.lightning"):
        assert pl_integration.resume_checkpoint_path() is None
    assert "is corrupted or unreadable" in caplog.text and "trains from scratch" in caplog.text
    assert not path.exists() and (trial / "checkpoint" / "last.ckpt.corrupted").is_file()
    torch.save({"epoch": 0}, path)
    monkeypatch.delenv(reporting.ENV_CHECKPOINT_DIR)
    assert pl_integration.resume_checkpoint_path() is None


@pytest.mark.slow
def test_lightning_callback_checkpoints_reports_and_resumes(pl_integration, trial):
    import torch

    example = load_example(LIGHTNING_MLP)
    example.main(["--epochs", "2", "--lr", "0.1", "--n_units", "32"])
    first = reports(trial)
    assert [(r["epoch"], r["trained_epochs"]) for r in first] == [(1, 1), (2, 2)]
    assert all(0.0 <= r["val_error"] < 0.9 for r in first)
    checkpoint = torch.load(trial / "checkpoint" / "last.ckpt", weights_only=False)
    assert checkpoint["epoch"] == 1  # Lightning's 0-based epoch of the checkpoint
    (state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("ReportCallback")]
    assert state == {"last_report": {"epoch": 2, "val_error": first[-1]["val_error"], "trained_epochs": 2.0}}

    reporting._reset_for_tests()  # as in a new process: _iteration counts from 0 again
    # a second run with more epochs continues: epoch 2 reported again (from the checkpoint), then 3 and 4
    example.main(["--epochs", "4", "--lr", "0.1", "--n_units", "32"])
    second = runs(reports(trial))[1]
    assert [(r["epoch"], r["trained_epochs"]) for r in second] == [(2, 2), (3, 3), (4, 4)]
    assert second[0]["val_error"] == first[-1]["val_error"]
    check_epochs_trained_equal_epochs_reported(reports(trial), "trained_epochs")


def digits_loader(example, n: int = 64):
    x, y = example.load_digits_data()
    tensors = example.torch.as_tensor(x[:n], dtype=example.torch.float32), example.torch.as_tensor(y[:n])
    return example.DataLoader(example.TensorDataset(*tensors), batch_size=32)


@pytest.mark.slow
def test_lightning_callback_can_report_at_the_end_of_each_training_epoch(pl_integration, trial):
    import lightning.pytorch as pl

    example = load_example(LIGHTNING_MLP)
    loader = digits_loader(example)
    callback = pl_integration.ReportCallback({"error": "val_error"}, on="train_epoch_end")
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(example.DigitsMLP(16, 0.1, 0.0), loader, loader)
    assert [sorted(r) for r in reports(trial)] == [["_iteration", "_timestamp", "epoch", "error"]] * 3
    assert [r["epoch"] for r in reports(trial)] == [1, 2, 3]
    assert callback.last_report == {k: v for k, v in reports(trial)[-1].items() if not k.startswith("_")}
    assert (trial / "checkpoint" / "last.ckpt").is_file()


@pytest.mark.slow
def test_lightning_callback_names_the_logged_metrics_when_one_is_missing(pl_integration, trial):
    import lightning.pytorch as pl

    example = load_example(LIGHTNING_MLP)
    loader = digits_loader(example)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[pl_integration.ReportCallback("val_accuracy")])
    with pytest.raises(KeyError, match=r"'val_accuracy' not logged by the LightningModule \(logged: "
                                       r"trained_epochs, val_error\)"):
        trainer.fit(example.DigitsMLP(16, 0.1, 0.0), loader, loader)
    assert reports(trial) == []


# --------------------------------------------------------------------------- Hugging Face


def test_hf_callback_checks_its_arguments(hf_integration):
    with pytest.raises(ValueError, match="'step' is reported by the callback itself"):
        hf_integration.ReportCallback(["eval_loss", "step"])
    with pytest.raises(ValueError, match="name at least one metric"):
        hf_integration.ReportCallback(())
    assert hf_integration.ReportCallback().metrics is None
    assert hf_integration.ReportCallback("eval_loss").metrics == {"eval_loss": "eval_loss"}


def test_hf_callback_warns_when_the_trainer_never_evaluates(hf_integration, trial, caplog):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    callback = hf_integration.ReportCallback()
    for strategy, warned in (("no", True), ("epoch", False)):
        caplog.clear()
        args = TrainingArguments(output_dir=str(trial / "out"), eval_strategy=strategy, use_cpu=True, report_to="none")
        with caplog.at_level("WARNING", logger="tunebench.integrations.transformers"):
            callback.on_train_begin(args, TrainerState(), TrainerControl())
        assert ("the Trainer never evaluates (eval_strategy='no')" in caplog.text) is warned
    assert reports(trial) == []


def test_hf_output_and_resume_paths_skip_an_incomplete_checkpoint(hf_integration, trial, monkeypatch):
    folder = trial / "checkpoint"
    assert hf_integration.trial_output_dir() == str(folder)
    assert hf_integration.resume_checkpoint_path() is None
    for step, complete in ((5, True), (12, True), (30, False)):  # 30: its save was cut short by a kill
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-99.tmp").mkdir()
    assert hf_integration.resume_checkpoint_path() == str(folder / "checkpoint-12")
    monkeypatch.delenv(reporting.ENV_CHECKPOINT_DIR)
    assert hf_integration.trial_output_dir("out") == "out"
    assert hf_integration.resume_checkpoint_path() is None


@pytest.mark.slow
def test_hf_callback_reports_after_the_checkpoint_and_resumes(hf_integration, trial):
    example = load_example(HF_TINY)
    example.main(["--epochs", "2", "--learning_rate", "0.01"])
    first = reports(trial)
    assert [(r["epoch"], r["step"], r["eval_trained_epochs"]) for r in first] == [(1, 6, 1), (2, 12, 2)]
    assert set(first[0]) == {"epoch", "step", "eval_error", "eval_trained_epochs", "_timestamp", "_iteration"}
    assert [p.name for p in (trial / "checkpoint").iterdir()] == ["checkpoint-12"]
    saved = json.loads((trial / "checkpoint" / "checkpoint-12" / "trainer_state.json").read_text())
    assert saved["log_history"][-1]["eval_error"] == first[-1]["eval_error"]

    reporting._reset_for_tests()  # as in a new process: _iteration counts from 0 again
    example.main(["--epochs", "4", "--learning_rate", "0.01"])
    second = runs(reports(trial))[1]
    assert [(r["epoch"], r["step"], r["eval_trained_epochs"]) for r in second] == [(2, 12, 2), (3, 18, 3), (4, 24, 4)]
    check_epochs_trained_equal_epochs_reported(reports(trial), "eval_trained_epochs")


# --------------------------------------------------------------------------- tunebench run, ASHA-promotion


def tune(script: Path, exp: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "tunebench", "run", "--script", str(script), "--method",
                          "ASHA-promotion", "--max-trials", "4", "--n-workers", "2", "--no-progress",
                          "--experiment-dir", str(exp)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]


def check_paused_trials_resume_where_they_stopped(exp: Path, trained_key: str) -> None:
    events = logged_events(exp)
    resumed = {e["trial_id"] for e in events if e["event"] == "trial_resume"}
    assert resumed, "promotion-type ASHA resumed no paused trial"
    completed = {e["trial_id"] for e in events if e["event"] == "trial_complete"}
    assert completed, "no trial reached the maximum number of epochs"
    for trial_id in range(4):
        lines = reports(exp / "trials" / str(trial_id))
        assert lines, f"trial {trial_id} reported nothing"
        check_epochs_trained_equal_epochs_reported(lines, trained_key)
        if trial_id in resumed:
            assert len(runs(lines)) >= 2, f"trial {trial_id} was resumed but ran once"
        if trial_id in completed:
            assert max(r["epoch"] for r in lines) == 9


@pytest.mark.slow
def test_asha_promotion_pauses_and_resumes_a_lightning_trainer(pl_integration, tmp_path):
    exp = tmp_path / "exp"
    tune(LIGHTNING_MLP, exp)
    check_paused_trials_resume_where_they_stopped(exp, "trained_epochs")
    assert json.loads((exp / "metadata.json").read_text())["method"] == "ASHA-promotion"


@pytest.mark.slow
def test_asha_promotion_pauses_and_resumes_a_hugging_face_trainer(hf_integration, tmp_path):
    exp = tmp_path / "exp"
    tune(HF_TINY, exp)
    check_paused_trials_resume_where_they_stopped(exp, "eval_trained_epochs")
