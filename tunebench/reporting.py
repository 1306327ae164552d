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

Checkpoints hold plain data and numpy arrays (``checkpoint.npz``) and load without running
code; pickle is used only when asked for by name (``format="pickle"``), torch files are loaded
with ``weights_only=True``.

This module is imported by ``import tunebench``; it must stay light: standard library only,
and only cheap modules at import time (``tempfile``, ``numpy``, ``torch`` and ``pickle`` are
imported when a checkpoint first needs them).
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
    "CHECKPOINT_FILENAME",
    "CHECKPOINT_FORMATS",
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


#: The default checkpoint file: plain data as JSON and numpy arrays, in one ``.npz`` (no pickle).
CHECKPOINT_FILENAME = "checkpoint.npz"
#: The formats of :func:`save_checkpoint` / :func:`load_checkpoint`, by name.
CHECKPOINT_FORMATS = ("npz", "json", "torch", "pickle")
_SUFFIX_FORMATS = {".npz": "npz", ".json": "json", ".pt": "torch", ".pth": "torch"}
_FORMAT_SUFFIXES = {"npz": ".npz", "json": ".json", "torch": ".pt", "pickle": ".pkl"}
#: the member of the .npz that holds the JSON tree (the arrays are ``a0``, ``a1``, ...)
_NPZ_TREE = "tunebench_checkpoint"
_NPZ_VERSION = 1


def _resolve(directory: str | os.PathLike[str] | None) -> Path | None:
    if directory is not None:
        return Path(directory)
    return checkpoint_dir()


def _format_and_name(filename: str | None, format: str | None) -> tuple[str, str]:
    """The checkpoint format and file name, from ``format`` when given, else from the suffix of
    ``filename``. Pickle is chosen only by name (``format="pickle"``), never by a suffix."""
    if format is not None:
        if format not in CHECKPOINT_FORMATS:
            raise ValueError(f"checkpoint format {format!r} is not one of {', '.join(CHECKPOINT_FORMATS)}")
        return format, filename or f"checkpoint{_FORMAT_SUFFIXES[format]}"
    if filename is None:
        return "npz", CHECKPOINT_FILENAME
    suffix = os.path.splitext(filename)[1].lower()
    fmt = _SUFFIX_FORMATS.get(suffix)
    if fmt is not None:
        return fmt, filename
    if suffix in (".pkl", ".pickle"):
        raise ValueError(f"checkpoint {filename!r}: loading a pickle can run any code, so pickle is used only "
                         "when asked for by name: pass format='pickle' (to save and to load), or use "
                         f"{CHECKPOINT_FILENAME!r} (arrays and plain data, no pickle)")
    raise ValueError(f"checkpoint {filename!r}: cannot tell its format from the suffix {suffix or '(none)'!r}; "
                     "use .npz (default: plain data and numpy arrays), .json, .pt/.pth (torch), or pass "
                     f"format= one of {', '.join(CHECKPOINT_FORMATS)}")


def save_checkpoint(
    state: dict[str, Any],
    directory: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    *,
    format: str | None = None,
) -> Path | None:
    """Save ``state`` atomically as ``directory/filename`` and return its path.

    Called by the training script (for instance after each epoch). ``directory`` defaults to
    :func:`checkpoint_dir`; without one (outside a tuner) nothing is saved and ``None`` is
    returned. The format is ``format`` when given, else it follows the suffix of ``filename``:

    * ``.npz`` (the default, ``checkpoint.npz``): nested dicts, lists and tuples of numbers,
      strings, booleans, ``None``, numpy arrays and numpy scalars, kept exactly (tuples stay
      tuples, dict keys may be strings, numbers, booleans, ``None`` or tuples of them); the
      structure is stored as JSON and the arrays as ``.npy`` members, read back with
      ``allow_pickle=False``: loading it never runs code.
    * ``.json``: plain JSON data (tuples come back as lists, keys as strings).
    * ``.pt`` / ``.pth``: ``torch.save``; loaded with ``weights_only=True`` (tensors, numbers,
      strings and containers of them).
    * ``format="pickle"`` only (no suffix selects it): any picklable object. Loading a pickle
      runs code; use it only for your own files.

    The state is written to a temporary file in the same folder, flushed and fsync'ed, then
    renamed over the old checkpoint: a crash at any point leaves either the old or the new
    checkpoint, never a truncated one.

    Raises:
        TypeError: ``state`` holds an object the format cannot store (the message names its key
            and how to fix it); the old checkpoint is left as it was.
        ValueError: an unknown ``format``, or a ``filename`` whose suffix names no format
            (``.pkl`` included: pass ``format="pickle"``).
    """
    fmt, name = _format_and_name(filename, format)
    folder = _resolve(directory)
    if folder is None:
        return None
    if fmt == "npz":
        writer = _npz_writer(state)  # refuses an unsupported object before anything is written
    elif fmt == "json":
        data = _json_bytes(state)

        def writer(f: Any) -> None:
            f.write(data)
    elif fmt == "torch":
        # deferred: torch (optional, heavy), only for torch checkpoints; `import tunebench` stays light
        import torch

        def writer(f: Any) -> None:
            torch.save(state, f)
    else:
        import pickle  # deferred: only when pickle is asked for by name

        def writer(f: Any) -> None:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write(folder / name, writer)


def _json_bytes(state: Any) -> bytes:
    try:
        return json.dumps(state).encode()
    except (TypeError, ValueError) as err:
        raise TypeError(f"save_checkpoint(): the state cannot be written as JSON ({err}); store numbers, "
                        "strings, booleans, None, lists and dicts, or use the default .npz format "
                        "(numpy arrays too)") from None


def _npz_writer(state: Any) -> Callable[[Any], None]:
    """Encode ``state`` for the .npz format (a TypeError naming what it cannot hold) and return
    the function that writes it."""
    # deferred: numpy, only when a checkpoint is saved; `from tunebench import report` loads no numpy
    import numpy as np

    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint(): the state must be a dict, not a {type(state).__name__}")
    arrays: dict[str, Any] = {}

    def array_ref(value: Any, where: str) -> str:
        if value.dtype.hasobject:
            raise TypeError(f"save_checkpoint(): {where} is a numpy array of Python objects, which only pickle "
                            "can store; convert it to a numeric array or a list, or pass format='pickle'")
        key = f"a{len(arrays)}"
        arrays[key] = value
        return key

    def encode(value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)) or type(value) in (int, float):
            return value
        if isinstance(value, np.ndarray):
            return {"array": array_ref(value, where)}
        if isinstance(value, np.generic):
            return {"scalar": array_ref(np.asarray(value), where)}
        if type(value) is list:
            return [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if type(value) is tuple:
            return {"tuple": [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]}
        if type(value) is dict:
            items = []
            for key, item in value.items():
                encoded_key = encode(key, f"key {key!r} of {where}")
                if isinstance(encoded_key, dict) and "tuple" not in encoded_key:
                    raise TypeError(f"save_checkpoint(): key {key!r} of {where} is a {type(key).__name__}; "
                                    "use strings, numbers, booleans, None or tuples of them")
                items.append([encoded_key, encode(item, f"{where}[{key!r}]")])
            return {"dict": items}
        raise TypeError(f"save_checkpoint(): {where} is a {type(value).__module__}.{type(value).__qualname__}, "
                        "which a checkpoint without pickle cannot hold; convert it (numbers, strings, "
                        "booleans, None, numpy arrays, and lists, tuples or dicts of them; a torch tensor as "
                        "tensor.numpy(), or a .pt file), or pass format='pickle' to save_checkpoint and "
                        "load_checkpoint (loading a pickle runs code: only for files you trust)")

    tree = {"format": _NPZ_VERSION, "state": encode(state, "state")}
    members = {_NPZ_TREE: np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8), **arrays}

    def write(f: Any) -> None:
        np.savez(f, **members)  # object arrays were refused above: nothing in it is pickled

    return write


def _read_npz(f: Any) -> dict[str, Any]:
    # deferred: numpy, only when a checkpoint is loaded; `from tunebench import report` loads no numpy
    import numpy as np

    with np.load(f, allow_pickle=False) as data:
        if _NPZ_TREE not in data.files:
            raise ValueError(f"not a checkpoint of save_checkpoint (no {_NPZ_TREE!r} member)")
        tree = json.loads(data[_NPZ_TREE].tobytes().decode())
        if not isinstance(tree, dict) or tree.get("format") != _NPZ_VERSION:
            raise ValueError(f"unknown checkpoint format {tree.get('format') if isinstance(tree, dict) else tree!r}")

        def array(key: Any) -> Any:
            if not isinstance(key, str) or key == _NPZ_TREE or key not in data.files:
                raise ValueError(f"the checkpoint refers to a missing array {key!r}")
            return data[key]

        def decode(node: Any) -> Any:
            if isinstance(node, list):
                return [decode(item) for item in node]
            if not isinstance(node, dict):
                return node
            if len(node) != 1:
                raise ValueError(f"malformed checkpoint entry {str(node)[:80]}")
            ((tag, body),) = node.items()
            if tag == "array":
                return array(body)
            if tag == "scalar":
                return array(body)[()]
            if tag == "tuple" and isinstance(body, list):
                return tuple(decode(item) for item in body)
            if tag == "dict" and isinstance(body, list):
                out = {}
                for pair in body:
                    if not isinstance(pair, list) or len(pair) != 2:
                        raise ValueError("malformed dict entry in the checkpoint")
                    out[decode(pair[0])] = decode(pair[1])
                return out
            raise ValueError(f"malformed checkpoint entry {tag!r}")

        state = decode(tree["state"])
    if not isinstance(state, dict):
        raise ValueError("the checkpoint does not hold a dict")
    return state


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
    filename: str | None = None,
    *,
    format: str | None = None,
    on_error: str = "restart",
) -> dict[str, Any] | None:
    """Load the state saved by :func:`save_checkpoint`, or return ``None`` when there is none
    (first run of a trial, or outside a tuner).

    Called by the training script at its start, so a resumed trial continues where it paused.
    ``filename`` and ``format`` are chosen as for :func:`save_checkpoint` (default
    ``checkpoint.npz``). Loading runs no code: ``.npz`` is read with ``allow_pickle=False``,
    ``.json`` as JSON, ``.pt``/``.pth`` with ``torch.load(weights_only=True)``; a pickle is
    loaded only with ``format="pickle"`` (it runs whatever code the file holds: only for files
    you trust). A ``checkpoint.pkl`` of an older tunebench is not loaded by default: stderr says
    so and the trial starts from scratch.

    A checkpoint that cannot be read (truncated, garbled, written by other code, or holding
    objects a safe load refuses) is, with ``on_error="restart"`` (the default), renamed to
    ``<filename>.corrupted``, said on stderr (the trial's log), and ``None`` is returned: the
    trial starts from scratch. ``on_error="raise"`` lets the error through instead.

    Raises:
        ValueError: ``on_error`` or ``format`` is unknown, or ``filename``'s suffix names no
            format (``.pkl`` included: pass ``format="pickle"``).
    """
    if on_error not in ("restart", "raise"):
        raise ValueError(f"on_error must be 'restart' or 'raise', got {on_error!r}")
    fmt, name = _format_and_name(filename, format)
    folder = _resolve(directory)
    if folder is None:
        return None
    path = folder / name
    if not path.is_file():
        legacy = folder / "checkpoint.pkl"
        if filename is None and format is None and legacy.is_file():
            print(f"tunebench: {legacy} (a pickle, written by an older tunebench) is not loaded: loading a pickle "
                  "can run any code; starting this trial from scratch (load_checkpoint(format='pickle', "
                  "filename='checkpoint.pkl') loads it, for a file you trust)", file=sys.stderr, flush=True)
        return None
    try:
        state: dict[str, Any] | None = _read_checkpoint(path, fmt)
        return state
    except Exception as err:  # noqa: BLE001 - a damaged file can raise almost anything
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
        if fmt == "npz":
            return _read_npz(f)
        if fmt == "json":
            return json.loads(f.read())
        if fmt == "torch":
            # deferred: torch (optional, heavy), only for torch checkpoints; `import tunebench` stays light
            import torch

            # weights_only: tensors, numbers, strings and containers only; a file holding any other
            # object (the way a pickle runs code) is refused
            return torch.load(f, weights_only=True)
        import pickle  # deferred: only when pickle is asked for by name

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

