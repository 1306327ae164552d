"""PyTorch Lightning: report a trial's metrics and pause/resume its trainer (layer L4; needs the
``lightning`` extra: ``pip install 'tunebench[lightning]'``).

A script written with it (see ``tunebench/examples/lightning_mlp.py``)::

    import lightning.pytorch as pl
    from tunebench.integrations.lightning import ReportCallback, resume_checkpoint_path

    trainer = pl.Trainer(max_epochs=args.epochs, callbacks=[ReportCallback("val_error")],
                         enable_checkpointing=False, logger=False)
    trainer.fit(model, train_loader, val_loader, ckpt_path=resume_checkpoint_path())

What this module decides
------------------------
* **One report per epoch**, at the end of the validation epoch (or of the training epoch with
  ``on="train_epoch_end"``): the named metrics of ``trainer.callback_metrics`` (what the module
  logged with ``self.log``) and ``epoch``, the number of epochs trained (``current_epoch + 1``).
  The sanity-check validation before training reports nothing.
* **The checkpoint is written before the report**, with Lightning's own
  ``trainer.save_checkpoint`` (model, optimizers, LR schedulers, loops' progress, callbacks'
  states), as ``last.ckpt`` in the trial's checkpoint folder
  (:func:`tunebench.reporting.checkpoint_dir`), replaced atomically. A trial that the tuner
  pauses (the backend ends its process) and resumes later is started again with
  ``ckpt_path=resume_checkpoint_path()``, so Lightning continues with the next epoch: the epochs
  trained equal the epochs reported, none is trained twice.
* **A run killed between checkpoint and report** has not reported its last epoch: the callback
  keeps the last report in its own state (saved in the checkpoint), and the resumed run reports it
  again when training starts (the tuner ignores an epoch it already has).
* **A corrupted checkpoint** (truncated or garbled on disk) is set aside by
  :func:`resume_checkpoint_path`, with a warning, and the trial trains from scratch.
* Outside a tuner (no checkpoint folder) nothing is written and :func:`resume_checkpoint_path`
  returns ``None``; the reports are printed (:func:`tunebench.report`).
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from tunebench.reporting import checkpoint_dir, report

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_FILENAME", "ReportCallback", "resume_checkpoint_path"]

#: the trainer's checkpoint in the trial's checkpoint folder
CHECKPOINT_FILENAME = "last.ckpt"
_HOOKS = ("validation_end", "train_epoch_end")


def resume_checkpoint_path(filename: str = CHECKPOINT_FILENAME) -> str | None:
    """The trial's last trainer checkpoint, for ``trainer.fit(..., ckpt_path=...)``, or ``None``
    (first run of the trial, or outside a tuner): training then starts from scratch.

    Called by the script once, before ``trainer.fit``. A checkpoint that is not a readable torch
    archive (truncated or overwritten on disk) is renamed ``<filename>.corrupted``, a warning says
    so, and ``None`` is returned: the trial trains from scratch instead of failing."""
    folder = checkpoint_dir()
    if folder is None:
        return None
    path = folder / filename
    if not path.is_file():
        return None
    try:  # torch saves a zip archive: reading its directory catches a truncated or garbled file
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        bad = path.with_name(path.name + ".corrupted")
        os.replace(path, bad)
        logger.warning("checkpoint %s is corrupted or unreadable (%s); this trial trains from scratch "
                       "(the file is kept as %s)", path, err, bad.name)
        return None
    return str(path)


def _as_mapping(metrics: str | Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """``{reported name: logged name}`` from one name, a list of names, or a mapping."""
    if isinstance(metrics, str):
        return {metrics: metrics}
    if isinstance(metrics, Mapping):
        mapping = {str(k): str(v) for k, v in metrics.items()}
    else:
        mapping = {str(name): str(name) for name in metrics}
    if not mapping:
        raise ValueError("ReportCallback: name at least one metric to report")
    if "epoch" in mapping:
        raise ValueError("ReportCallback: 'epoch' is reported by the callback itself (the epochs trained); "
                         "report the metric under another name")
    return mapping


class ReportCallback(pl.Callback):
    """Report the monitored metric(s) to tunebench once per epoch, after checkpointing the trainer.

    ``metrics``: the name of a metric the LightningModule logs (``self.log("val_error", ...)``),
    several names, or a mapping ``{reported name: logged name}``. ``on``: ``"validation_end"``
    (default; validation must run once per epoch) or ``"train_epoch_end"``. ``filename``: the
    checkpoint's name in the trial's checkpoint folder (pass the same to
    :func:`resume_checkpoint_path`).

    Raises:
        ValueError: ``on`` is unknown, or no metric is named.
        KeyError: (at the first report) a named metric was not logged; the message lists those that were.
    """

    def __init__(self, metrics: str | Sequence[str] | Mapping[str, str], *, on: str = "validation_end",
                 filename: str = CHECKPOINT_FILENAME) -> None:
        if on not in _HOOKS:
            raise ValueError(f"ReportCallback: on={on!r} is not one of {', '.join(_HOOKS)}")
        self.metrics = _as_mapping(metrics)
        self.on = on
        self.filename = filename
        #: the last report of this trial (restored from the checkpoint on resume)
        self.last_report: dict[str, Any] | None = None
        self._restored: dict[str, Any] | None = None

    # ------------------------------------------------------------------ Lightning hooks

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Called by Lightning after each validation epoch: checkpoint, then report."""
        if self.on == "validation_end" and not trainer.sanity_checking:
            self._checkpoint_and_report(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Called by Lightning after each training epoch: checkpoint, then report."""
        if self.on == "train_epoch_end":
            self._checkpoint_and_report(trainer)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Called by Lightning when training starts: a resumed run reports the checkpointed epoch
        again (its report may have been lost when the previous run was ended)."""
        restored, self._restored = self._restored, None
        if restored is not None and trainer.is_global_zero:
            report(**restored)

    def state_dict(self) -> dict[str, Any]:
        """Called by Lightning when it writes a checkpoint: the report being made."""
        return {"last_report": self.last_report}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Called by Lightning when it restores a checkpoint."""
        last = state_dict.get("last_report")
        self.last_report = dict(last) if isinstance(last, Mapping) else None
        self._restored = self.last_report

    # ------------------------------------------------------------------ internals

    def _values(self, trainer: pl.Trainer) -> dict[str, float]:
        logged = trainer.callback_metrics
        missing = [name for name in self.metrics.values() if name not in logged]
        if missing:
            raise KeyError(f"ReportCallback: metric(s) {', '.join(map(repr, missing))} not logged by the "
                           f"LightningModule (logged: {', '.join(sorted(logged)) or 'none'}); "
                           "log them with self.log(name, value) in validation_step")
        return {reported: float(logged[name]) for reported, name in self.metrics.items()}

    def _checkpoint_and_report(self, trainer: pl.Trainer) -> None:
        metrics: dict[str, Any] = {"epoch": trainer.current_epoch + 1, **self._values(trainer)}
        self.last_report = metrics  # in the checkpoint written next
        folder = checkpoint_dir()
        if folder is not None:
            self._save(trainer, folder / self.filename)
        if trainer.is_global_zero:
            report(**metrics)

    @staticmethod
    def _save(trainer: pl.Trainer, target: Path) -> None:
        """``trainer.save_checkpoint`` to a temporary name, renamed over ``target``: a kill leaves
        the previous checkpoint or the new one, never a torn file."""
        tmp = target.with_name(f".{target.name}.tmp")
        trainer.save_checkpoint(tmp)  # collective in multi-process training: every rank calls it
        if trainer.is_global_zero:
            os.replace(tmp, target)
            logger.debug("checkpoint of epoch %d written to %s", trainer.current_epoch + 1, target)
