"""Hugging Face Transformers: report a ``Trainer``'s evaluations and pause/resume it (layer L4;
needs the ``transformers`` extra: ``pip install 'tunebench[transformers]'``).

A script written with it (see ``tunebench/examples/hf_tiny.py``)::

    from transformers import Trainer, TrainingArguments
    from tunebench.integrations.transformers import ReportCallback, resume_checkpoint_path, trial_output_dir

    training_args = TrainingArguments(output_dir=trial_output_dir("hf-output"), num_train_epochs=args.epochs,
                                      eval_strategy="epoch", save_strategy="epoch", save_total_limit=1,
                                      report_to="none")
    trainer = Trainer(model=model, args=training_args, train_dataset=train, eval_dataset=val,
                      compute_metrics=compute_metrics, callbacks=[ReportCallback("eval_accuracy")])
    trainer.train(resume_from_checkpoint=resume_checkpoint_path())

What this module decides
------------------------
* **One report per evaluation**: the named eval metrics (all of them by default) with ``epoch``
  (the Trainer's epoch count, a whole number when it evaluates once per epoch) and ``step``
  (optimizer steps).
* **The checkpoints are the Trainer's own** (``checkpoint-<step>`` folders), written to the
  trial's checkpoint folder (:func:`tunebench.reporting.checkpoint_dir`) when the script uses
  :func:`trial_output_dir` as ``output_dir``. When the Trainer saves right after an evaluation
  (``save_strategy`` equal to ``eval_strategy``), the evaluation is reported *after* the
  checkpoint is written (``on_save``), so a paused trial resumed with
  ``resume_from_checkpoint=resume_checkpoint_path()`` continues after the last reported epoch and
  trains none twice.
* **A run killed between checkpoint and report** has not reported its last evaluation: the
  checkpoint's ``trainer_state.json`` holds it (``log_history``), and the resumed run reports it
  again when training begins (the tuner ignores an epoch it already has).
* **A torn checkpoint** (the run was killed while the Trainer wrote it) is skipped:
  :func:`resume_checkpoint_path` returns the newest ``checkpoint-<step>`` folder that holds its
  ``trainer_state.json``, which the Trainer writes last.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from tunebench.reporting import checkpoint_dir, report

logger = logging.getLogger(__name__)

__all__ = ["ReportCallback", "resume_checkpoint_path", "trial_output_dir"]

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
#: the file the Trainer writes last into a checkpoint folder
_STATE_FILE = "trainer_state.json"


def trial_output_dir(default: str = "hf-output") -> str:
    """The Trainer's ``output_dir``: the trial's checkpoint folder under a tuner, else ``default``.

    Called by the script when it builds its ``TrainingArguments``; the folder is the same when a
    paused trial is resumed, so its ``checkpoint-<step>`` folders are found again."""
    folder = checkpoint_dir()
    return str(folder) if folder is not None else default


def resume_checkpoint_path(output_dir: str | Path | None = None) -> str | None:
    """The newest complete ``checkpoint-<step>`` folder of ``output_dir`` (default: the trial's
    checkpoint folder), for ``trainer.train(resume_from_checkpoint=...)``, or ``None`` when there
    is none (first run of a trial, or outside a tuner): training then starts from scratch.

    Called by the script once, before ``trainer.train``. A folder without its
    ``trainer_state.json`` (a save cut short by a kill) is skipped, with a warning."""
    folder = Path(output_dir) if output_dir is not None else checkpoint_dir()
    if folder is None or not folder.is_dir():
        return None
    found = sorted(((int(m.group(1)), path) for path in folder.iterdir()
                    if (m := _CHECKPOINT.match(path.name)) and path.is_dir()), reverse=True)
    for _, path in found:
        if (path / _STATE_FILE).is_file():
            return str(path)
        logger.warning("skipping the incomplete checkpoint %s (no %s: its save was cut short)", path, _STATE_FILE)
    return None


def _as_mapping(metrics: str | Sequence[str] | Mapping[str, str] | None) -> dict[str, str] | None:
    """``{reported name: eval metric name}``, or ``None`` for every eval metric."""
    if metrics is None:
        return None
    if isinstance(metrics, str):
        mapping = {metrics: metrics}
    elif isinstance(metrics, Mapping):
        mapping = {str(k): str(v) for k, v in metrics.items()}
    else:
        mapping = {str(name): str(name) for name in metrics}
    if not mapping:
        raise ValueError("ReportCallback: name at least one metric to report, or pass None for all of them")
    for reserved in ("epoch", "step"):
        if reserved in mapping:
            raise ValueError(f"ReportCallback: {reserved!r} is reported by the callback itself; "
                             "report the metric under another name")
    return mapping


def _epoch(value: float | None) -> float | int:
    """The Trainer's (float) epoch count, as an int when it is a whole number."""
    if value is None:
        return 0
    rounded = round(value)
    return int(rounded) if math.isclose(value, rounded, abs_tol=1e-6) else float(value)


class ReportCallback(TrainerCallback):
    """Report a ``transformers.Trainer``'s evaluations to tunebench.

    ``metrics``: an eval metric's name as the Trainer logs it (``"eval_loss"``,
    ``"eval_accuracy"`` for a ``compute_metrics`` returning ``accuracy``), several names, a
    mapping ``{reported name: eval metric name}``, or ``None`` (default) for every numeric eval
    metric. Each report also holds ``epoch`` and ``step``.

    Raises:
        ValueError: no metric is named, or ``epoch``/``step`` is used as a reported name.
        KeyError: (at an evaluation) a named metric is not among the eval metrics; the message lists them.
    """

    def __init__(self, metrics: str | Sequence[str] | Mapping[str, str] | None = None) -> None:
        self.metrics = _as_mapping(metrics)
        self._pending: dict[str, Any] | None = None

    def _select(self, metrics: Mapping[str, Any], state: TrainerState) -> dict[str, Any]:
        if self.metrics is None:
            chosen = {k: v for k, v in metrics.items()
                      if k.startswith("eval_") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        else:
            missing = [name for name in self.metrics.values() if name not in metrics]
            if missing:
                raise KeyError(f"ReportCallback: metric(s) {', '.join(map(repr, missing))} not among the eval "
                               f"metrics ({', '.join(sorted(metrics)) or 'none'})")
            chosen = {reported: metrics[name] for reported, name in self.metrics.items()}
        return {"epoch": _epoch(state.epoch), "step": state.global_step, **chosen}

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        """Called by the Trainer when training begins: a run resumed from a checkpoint reports that
        checkpoint's last evaluation again (the report may have been lost when the previous run ended).
        Warns when the Trainer never evaluates (nothing would be reported)."""
        self._pending = None
        if str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "no":
            logger.warning("ReportCallback: the Trainer never evaluates (eval_strategy='no'), so nothing is "
                           "reported to tunebench; set eval_strategy='epoch' (and save_strategy='epoch')")
        if state.global_step == 0 or not state.is_world_process_zero:
            return
        for entry in reversed(state.log_history):
            if any(key.startswith("eval_") for key in entry) and entry.get("step") == state.global_step:
                metrics = {k: v for k, v in entry.items() if k not in ("epoch", "step")}
                report(**self._select(metrics, state))
                return

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, float] | None = None, **kwargs: Any) -> None:
        """Called by the Trainer after each evaluation: report now, or after the checkpoint the
        Trainer is about to write (``control.should_save``), so that the checkpoint comes first."""
        selected = self._select(metrics or {}, state)
        if control.should_save and state.is_world_process_zero:
            self._pending = selected
        elif state.is_world_process_zero:
            report(**selected)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:
        """Called by the Trainer after it wrote a checkpoint: report the evaluation it holds."""
        self._flush()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        """Called by the Trainer when training ends: an evaluation still waiting is reported."""
        self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            report(**pending)
