"""The backend contract (L2): run trials somewhere and report what happens to them.

The tuner is the only caller. It gives every trial a folder (``trial_dir``) that holds its
checkpoints (``trial_dir/checkpoint``), its results file (``trial_dir/results.jsonl``, one JSON
line per report, appended by :func:`tunebench.report`) and its logs. A backend only reports
*events*; it never decides anything.
"""

from __future__ import annotations

import os
import shutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

from tunebench.clock import Clock, RealClock
from tunebench.types import Config, Event, Trial

RESULTS_FILENAME = "results.jsonl"
CHECKPOINT_DIRNAME = "checkpoint"
STDOUT_FILENAME = "stdout.log"
STDERR_FILENAME = "stderr.log"


class Backend(ABC):
    """Runs trials. Every method is called by the tuner's single thread."""

    #: the clock the tuner reads; a simulated backend supplies simulated time
    clock: Clock = RealClock()
    #: whether trials need their folder on disk (a simulator's trials have no files)
    uses_trial_dirs: bool = True

    @abstractmethod
    def start(self, trial: Trial, trial_dir: Path | None, results_offset: int = 0) -> None:
        """Called to launch ``trial``; returns at once.

        ``trial_dir`` is the trial's folder (created by the caller); None for a backend whose
        :attr:`uses_trial_dirs` is False. ``results_offset`` is the byte
        offset in its results file up to which results were already consumed: non-zero when the
        tuner restarts a trial that was running when a previous tuner process died (the script
        then resumes from its checkpoint folder if it has one).
        """

    @abstractmethod
    def pause(self, trial_id: int) -> None:
        """Called when the scheduler decided PAUSE: end the trial's process but keep its folder.
        A PAUSED event follows once the process is gone."""

    @abstractmethod
    def resume(self, trial_id: int, config: Config | None = None) -> None:
        """Called to relaunch a trial this backend paused, with the same folder (so it continues
        from its checkpoint), optionally with a changed ``config``. A trial paused by an earlier
        tuner process is relaunched with :meth:`start` and its ``results_offset`` instead."""

    def copy_checkpoint(self, source_id: int, target_id: int, source_dir: Path | None,
                        target_dir: Path | None) -> None:
        """Called just before the paused trial ``target_id`` is relaunched (by :meth:`resume`, or
        by :meth:`start` after a tuner restart) from the checkpoint of trial ``source_id`` instead
        of its own (PBT's exploit): make the target's checkpoint a copy of the source's. The
        source may be running (its checkpoint is copied as it is now); the target's process, if
        it is still ending, must be waited for first, so that it cannot write over the copy.

        ``source_dir`` / ``target_dir``: the trials' folders (None for a backend whose
        :attr:`uses_trial_dirs` is False). Default: :func:`copy_checkpoint_folder` of their
        ``checkpoint`` folders."""
        if source_dir is None or target_dir is None:
            raise ValueError(f"{type(self).__name__} has no trial folders: override copy_checkpoint")
        copy_checkpoint_folder(source_dir / CHECKPOINT_DIRNAME, target_dir / CHECKPOINT_DIRNAME)

    @abstractmethod
    def stop(self, trial_id: int) -> None:
        """Called to end a trial for good. A STOPPED event follows once the process is gone."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """Called in the tuner's loop: return the events since the last call, waiting up to
        ``timeout`` seconds for at least one (return ``[]`` when none came in time).

        Events of one trial are returned in the order they happened."""

    @abstractmethod
    def shutdown(self) -> None:
        """Called once at the end: end every process still running. Idempotent."""

    @property
    @abstractmethod
    def n_busy(self) -> int:
        """Number of trials occupying a worker (running, or asked to end but not yet gone)."""


def is_partial_file(name: str) -> bool:
    """Whether the file ``name`` is a temporary ``.NAME.*.tmp`` that a writer renames over
    ``NAME`` when it is whole (:func:`tunebench.save_checkpoint`, a storage push): copies of a
    checkpoint folder skip it."""
    return name.startswith(".") and name.endswith(".tmp")


def copy_checkpoint_folder(source: Path, target: Path) -> None:
    """Replace the folder ``target`` by a copy of the folder ``source`` (an empty folder when
    ``source`` does not exist: the source saved no checkpoint yet).

    The copy is made beside ``target`` and renamed over it, so ``target`` is never half
    written; files of a writer still running in ``source`` are taken as they are at that moment
    (:func:`tunebench.save_checkpoint` writes a temporary ``.NAME.*.tmp`` and renames it over the
    old file, so each file is copied whole, old or new; temporary files are skipped)."""
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.copy")
    staging.mkdir(parents=True)
    try:
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source)
                if is_partial_file(path.name):
                    continue
                dest = staging / rel
                if path.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(path, dest)
                except FileNotFoundError:
                    continue  # deleted by the writer meanwhile
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
