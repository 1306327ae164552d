"""The training-script side: :func:`report` metrics, and save or load checkpoints.

A training script needs only::

    from tunebench import report, load_checkpoint, save_checkpoint

    state = load_checkpoint() or {"epoch": 0}
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        ...
        save_checkpoint({"epoch": epoch, "weights": weights})
        report(epoch=epoch, accuracy=accuracy)

The backend that launches the script names, through environment variables, the file the
reports are appended to (one JSON line each), the trial's checkpoint folder, and a pipe
through which each report wakes the tuner at once.  Outside a tuner (no such variable) the
reports are printed and the checkpoint helpers do nothing, so the same script runs on its own.

This module is imported by ``import tunebench``; it must stay light: standard library only,
and only cheap modules at import time (``tempfile``, ``pickle`` and ``torch`` are imported
when first needed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

TYPE_CHECKING = False  # not ``typing.TYPE_CHECKING``: importing typing costs milliseconds
if TYPE_CHECKING:  # pragma: no cover
    import argparse
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "ENV_CHECKPOINT_DIR",
    "ENV_NOTIFY_FD",
    "ENV_RESULTS_FILE",
    "ENV_TRIAL_ID",
    "add_checkpoint_argument",
    "atomic_write",
    "checkpoint_dir",
    "load_checkpoint",
    "report",
    "save_checkpoint",
]

#: Path of the trial's results file; :func:`report` appends one JSON line per call to it.
ENV_RESULTS_FILE = "TUNEBENCH_RESULTS_FILE"
#: The trial's checkpoint folder (kept across pause and resume).
ENV_CHECKPOINT_DIR = "TUNEBENCH_CHECKPOINT_DIR"
#: The trial's id, for the script's own logging.
ENV_TRIAL_ID = "TUNEBENCH_TRIAL_ID"
#: The trial's folder (absolute path): where a script puts files of its own that belong to the
#: trial (its working directory is the one tunebench was started from, unless ``--trial-cwd trial``).
ENV_TRIAL_DIR = "TUNEBENCH_TRIAL_DIR"
#: Number of an inherited file descriptor (write end of a pipe): :func:`report` writes one byte
#: to it after each line, which wakes the tuner without any polling.
ENV_NOTIFY_FD = "TUNEBENCH_NOTIFY_FD"

_WAKE_BYTE = b"\x01"


class _Writer:
    """The open results file of this process (opened once, in append mode, unbuffered)."""

    __slots__ = ("fd", "iteration", "notify_fd", "path", "pid")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.pid = os.getpid()
        self.iteration = 0
        self.fd: int | None = None
        self.notify_fd: int | None = None
        if path is not None:
            # O_APPEND: every os.write lands at the end of the file as a whole, even when a
            # previous run of the trial (before a pause) or a subprocess writes to it too.
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            notify = os.environ.get(ENV_NOTIFY_FD)
            if notify:
                try:
                    self.notify_fd = int(notify)
                    # never let a full pipe block training: a wake-up already pending is enough
                    os.set_blocking(self.notify_fd, False)
                except (ValueError, OSError):
                    self.notify_fd = None

    def write(self, data: bytes) -> None:
        if self.fd is None:
            sys.stdout.write(data.decode())
            sys.stdout.flush()
            return
        view = memoryview(data)
        while view:  # one write call in practice; loop only on a (rare) short write
            written = os.write(self.fd, view)
            view = view[written:]
        if self.notify_fd is not None:
            try:
                os.write(self.notify_fd, _WAKE_BYTE)
            except OSError:  # EPIPE (tuner gone), EBADF (fd closed by the script), EAGAIN (full)
                pass


_writer: _Writer | None = None


def _get_writer() -> _Writer:
    """The writer for the current results file; reopened if the variable or the process changed
    (a forked process starts its own iteration count)."""
    global _writer
    path = os.environ.get(ENV_RESULTS_FILE) or None
    writer = _writer
    if writer is None or writer.path != path or writer.pid != os.getpid():
        if writer is not None and writer.fd is not None and writer.pid == os.getpid():
            try:
                os.close(writer.fd)
            except OSError:
                pass
        writer = _writer = _Writer(path)
    return writer


def _to_builtin(value: Any) -> Any:
    """``json.dumps`` hook: numpy / torch scalars and 0-d arrays become Python numbers
    (duck-typed through ``.item()`` so numpy is never imported here)."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            converted = item()
        except Exception as err:  # an array with more than one element, for instance
            raise TypeError(f"{type(value).__name__} is not a scalar: {err}") from None
        if converted is not value:
            return converted
    raise TypeError(f"object of type {type(value).__name__} is not JSON serializable")


def _dumps(metrics: dict[str, Any]) -> str:
    try:
        return json.dumps(metrics, default=_to_builtin, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        pass
    for key, value in metrics.items():  # find the culprit to name it
        try:
            json.dumps(value, default=_to_builtin, allow_nan=True)
        except (TypeError, ValueError, RecursionError) as err:
            raise TypeError(
                f"report(): value of {key!r} cannot be written as JSON ({err}); "
                "report numbers, strings, booleans, None, or lists/dicts of them"
            ) from None
    raise TypeError("report(): the metrics cannot be written as JSON")  # pragma: no cover


def report(**metrics: Any) -> None:
    """Report metrics of the current step, e.g. ``report(epoch=3, accuracy=0.91)``.

    Called by the training script, typically once per epoch. Appends one JSON line
    ``{...metrics, "_timestamp": time.time(), "_iteration": k}`` to the trial's results file
    (``k`` counts the calls of this process from 0) in a single write, then wakes the tuner.
    Outside a tuner the line is printed to stdout instead.

    numpy or torch scalars (anything with ``.item()``) are converted; NaN and infinities are
    written as ``NaN`` / ``Infinity`` (the tuner rejects them). Returns ``None``.

    Raises:
        ValueError: a metric name starts with ``_`` (reserved for tunebench).
        TypeError: a value cannot be written as JSON (the message names its key).
    """
    for key in metrics:
        if key.startswith("_"):
            raise ValueError(
                f"report(): metric name {key!r} starts with '_', which is reserved for tunebench"
            )
    writer = _get_writer()
    metrics["_timestamp"] = time.time()
    metrics["_iteration"] = writer.iteration
    line = _dumps(metrics) + "\n"
    writer.write(line.encode())
    writer.iteration += 1


# --------------------------------------------------------------------------- checkpoints


def checkpoint_dir() -> Path | None:
    """The trial's checkpoint folder (created if missing), or ``None`` outside a tuner.

    Called by the training script; the folder is the same when a paused trial is resumed."""
    value = os.environ.get(ENV_CHECKPOINT_DIR)
    if not value:
        return None
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> argparse.Action:
    """Add ``--checkpoint-dir`` to ``parser``, defaulting to the folder the tuner hands over
    (``None`` outside a tuner). Returns the argparse action."""
    default = os.environ.get(ENV_CHECKPOINT_DIR) or None
    return parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=Path(default) if default else None,
        help="folder where the trial keeps its checkpoints (set by tunebench when tuning)",
    )


def _resolve(directory: str | os.PathLike[str] | None) -> Path | None:
    if directory is not None:
        return Path(directory)
    return checkpoint_dir()


def _format_of(filename: str) -> str:
    suffix = os.path.splitext(filename)[1].lower()
    if suffix == ".json":
        return "json"
    if suffix in (".pt", ".pth"):
        return "torch"
    return "pickle"


def save_checkpoint(
    state: dict[str, Any],
    directory: str | os.PathLike[str] | None = None,
    filename: str = "checkpoint.pkl",
) -> Path | None:
    """Save ``state`` atomically as ``directory/filename`` and return its path.

    Called by the training script (for instance after each epoch). ``directory`` defaults to
    :func:`checkpoint_dir`; without one (outside a tuner) nothing is saved and ``None`` is
    returned. The format follows the suffix: ``.json`` → JSON, ``.pt``/``.pth`` →
    ``torch.save``, anything else → pickle. The state is written to a temporary file in the
    same folder, flushed and fsync'ed, then renamed over the old checkpoint: a crash at any
    point leaves either the old or the new checkpoint, never a truncated one.
    """
    folder = _resolve(directory)
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    fmt = _format_of(filename)

    def write(f: Any) -> None:
        if fmt == "json":
            f.write(json.dumps(state).encode())
        elif fmt == "torch":
            # deferred: torch (optional, heavy), only for torch objects; reporting stays standard-library only
            import torch

            torch.save(state, f)
        else:
            import pickle

            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)

    return atomic_write(folder / filename, write)


def atomic_write(target: Path, write: Callable[[Any], None]) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary binary file in the same folder,
    which is flushed, fsync'ed and renamed over ``target``. If ``write`` raises, the temporary
    file is removed and ``target`` keeps its old content. Returns ``target``."""
    import tempfile

    folder = target.parent
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return target


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort; not possible on every platform)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load_checkpoint(
    directory: str | os.PathLike[str] | None = None,
    filename: str = "checkpoint.pkl",
    *,
    on_error: str = "restart",
) -> dict[str, Any] | None:
    """Load the state saved by :func:`save_checkpoint`, or return ``None`` when there is none
    (first run of a trial, or outside a tuner).

    Called by the training script at its start, so a resumed trial continues where it paused.
    A checkpoint that cannot be read (truncated, garbled, written by other code) is, with
    ``on_error="restart"`` (the default), renamed to ``<filename>.corrupted``, said on stderr (the
    trial's log), and ``None`` is returned: the trial starts from scratch. ``on_error="raise"``
    lets the error through instead. Pickle and torch checkpoints execute code when loaded: load
    only your own checkpoints.
    """
    if on_error not in ("restart", "raise"):
        raise ValueError(f"on_error must be 'restart' or 'raise', got {on_error!r}")
    folder = _resolve(directory)
    if folder is None:
        return None
    path = folder / filename
    if not path.is_file():
        return None
    try:
        state: dict[str, Any] | None = _read_checkpoint(path, _format_of(filename))
        return state
    except Exception as err:  # noqa: BLE001 - unpickling can raise almost anything
        if on_error == "raise":
            raise
        bad = path.with_name(path.name + ".corrupted")
        try:
            os.replace(path, bad)
        except OSError:
            bad = path
        print(f"tunebench: checkpoint {path} is corrupted or unreadable ({type(err).__name__}: {err}); "
              f"starting this trial from scratch (the file is kept as {bad.name})", file=sys.stderr, flush=True)
        return None


def _read_checkpoint(path: Path, fmt: str) -> Any:
    with open(path, "rb") as f:
        if fmt == "json":
            return json.loads(f.read())
        if fmt == "torch":
            # deferred: torch (optional, heavy), only for torch objects; reporting stays standard-library only
            import torch

            try:
                return torch.load(f, weights_only=False)
            except TypeError:  # torch < 1.13 has no weights_only
                f.seek(0)
                return torch.load(f)
        import pickle

        return pickle.load(f)


def _reset_for_tests() -> None:
    """Forget the open results file and the iteration count (tests only)."""
    global _writer
    if _writer is not None and _writer.fd is not None and _writer.pid == os.getpid():
        try:
            os.close(_writer.fd)
        except OSError:
            pass
    _writer = None

