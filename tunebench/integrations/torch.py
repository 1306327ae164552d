"""PyTorch helpers for a training script tuned by tunebench (layer L4; needs the ``torch`` extra).

A script written with them (see ``tunebench/examples/resnet_images.py``)::

    from tunebench import report
    from tunebench.integrations.torch import (check_finite, load_training_state, pick_device,
                                              save_training_state, seed_everything)

    seed_everything(args.seed)
    device = pick_device()                 # the GPU the backend assigned, else the CPU
    model, optimizer, scheduler = ...
    state = load_training_state(model, optimizer, scheduler, directory=args.checkpoint_dir)
    start = 1 if state is None else state["epoch"] + 1
    if state is not None:                  # re-report the checkpointed epoch (see below)
        report(**state["extra"]["metrics"])
    for epoch in range(start, args.epochs + 1):
        ...                                # train; check_finite(loss) ends a diverged trial
        metrics = {"epoch": epoch, "val_error": val_error}
        save_training_state(model, optimizer, scheduler, epoch=epoch, extra={"metrics": metrics},
                            directory=args.checkpoint_dir)
        report(**metrics)

The checkpoint is written *before* the report: a run killed between the two has not reported
its last epoch, so the resumed run reports it again (the tuner ignores an epoch it already has).

What this module decides
------------------------
* **One file per trial**, ``training_state.pt`` in the trial's checkpoint folder, replaced
  atomically every epoch (:func:`tunebench.reporting.atomic_write`): a kill at any moment leaves
  the previous or the new checkpoint, never a torn one. It holds the model, optimizer and LR
  scheduler ``state_dict()``, the epoch, the ``extra`` dict of the script, and the states of
  every random number generator a script usually draws from (Python's ``random``, numpy's global
  one, torch's CPU generator and, when the script uses CUDA, every CUDA generator), so a resumed
  trial continues the very run it interrupted (same batches, same dropout masks).
* **Safe loading**: ``torch.load(weights_only=True)``; it unpickles tensors, numbers, strings,
  ``None`` and containers of them, never arbitrary objects, so :func:`save_training_state`
  refuses an ``extra`` holding anything else.
* **The config wins over the checkpoint** for the optimizer's hyperparameters: a trial resumed
  with a changed config (PBT's explore, maybe from another trial's checkpoint) trains with the
  learning rate, momentum, weight decay... its optimizer was built with, the learning rate at
  the same place of its LR schedule (:data:`OPTIMIZER_HYPERPARAMETERS`).
* **A corrupted checkpoint** (truncated, overwritten, unreadable, or not matching the model)
  does not end the trial: :func:`load_training_state` logs a warning that says so and returns
  ``None``, the model and optimizer keep their fresh state, and the trial trains from scratch.
* **Divergence**: :func:`check_finite` raises :class:`TrainingDiverged`, a ``SystemExit`` with a
  message, so the script exits with code 1 before reporting a NaN; the backend marks that trial
  FAILED and the tuner goes on with the others (a reported NaN or infinite metric is also a
  failed trial for the tuner, but a message saying why is better).
* **Data prepared once**: :func:`data_lock` is an exclusive ``fcntl.flock`` on ``PATH.lock``;
  :func:`cached_arrays` uses it so that, of several trials starting together, the first one
  prepares a dataset and writes it to the data cache (:func:`data_cache_dir`) while the others
  wait, then read the file.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import math
import os
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunebench.reporting import atomic_write, checkpoint_dir

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FILENAME",
    "OPTIMIZER_HYPERPARAMETERS",
    "TrainingDiverged",
    "cached_arrays",
    "check_finite",
    "data_cache_dir",
    "data_lock",
    "load_training_state",
    "pick_device",
    "save_training_state",
    "seed_everything",
    "set_deterministic",
]

#: name of the checkpoint file in the trial's checkpoint folder
CHECKPOINT_FILENAME = "training_state.pt"
_FORMAT = "tunebench.training_state/1"
_SAFE_SCALARS = (str, int, float, bool, type(None))


# --------------------------------------------------------------------------- device, seeds


def pick_device(device: str | None = None) -> torch.device:
    """The device to train on: ``device`` if given (``"cpu"``, ``"cuda"``, ``"cuda:1"``), else
    the first visible CUDA GPU when there is one, else the CPU.

    Called once at the start of a script. The local backend makes the GPUs of a trial visible
    through ``CUDA_VISIBLE_DEVICES``, so ``cuda`` (= ``cuda:0``) is the trial's own GPU.

    Raises:
        ValueError: ``device`` names CUDA but no CUDA GPU is visible (the message says so).
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA GPU is visible here "
                         f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); use 'cpu' or 'auto'")
    return chosen


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and every CUDA GPU).

    Called once at the start of a script, before the model is built; a checkpoint restores the
    generators' states afterwards, so a resumed trial continues the same random sequence."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: what cuBLAS needs to be deterministic on CUDA >= 10.2 (set unless the user set it already)
CUBLAS_WORKSPACE = ":4096:8"


def set_deterministic() -> None:
    """Make this process's training reproducible run to run, on CUDA too.

    Called once at the start of a script (``--deterministic`` in the example scripts), before
    the first CUDA operation. Sets ``CUBLAS_WORKSPACE_CONFIG`` (if unset),
    ``torch.use_deterministic_algorithms(True)``, ``torch.backends.cudnn.deterministic = True``
    and ``torch.backends.cudnn.benchmark = False``. Slower on a GPU; an operation without a
    deterministic implementation then raises a RuntimeError naming it. Without it, cuDNN may pick
    a different (non-deterministic) algorithm on each run, and a trial resumed from a checkpoint
    no longer continues the curve of the uninterrupted run exactly."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


# --------------------------------------------------------------------------- divergence


class TrainingDiverged(SystemExit):
    """The training loss (or another quantity) is NaN or infinite.

    A ``SystemExit``: left uncaught, Python prints the message to stderr and exits with code 1,
    so the trial ends as FAILED with that message in its log and the tuner continues."""


def check_finite(value: Any, what: str = "training loss", *, epoch: int | None = None,
                 hint: str = "lower the learning rate, or narrow its range in the config space") -> float:
    """``value`` (a number or a one-element tensor) as a float, if it is finite.

    Called by the script on its loss, every few batches and before it reports an epoch.

    Raises:
        TrainingDiverged: the value is NaN or infinite; the message names ``what``, the epoch and
            the ``hint``, and says that the trial fails.
    """
    number = float(value.item() if hasattr(value, "item") else value)
    if math.isfinite(number):
        return number
    where = f" in epoch {epoch}" if epoch is not None else ""
    raise TrainingDiverged(f"training diverged: the {what} is {number}{where}; this trial fails "
                           f"(exit code 1) without reporting it. Hint: {hint}.")


# --------------------------------------------------------------------------- checkpoints


def _rng_states() -> dict[str, Any]:
    state = np.random.get_state()
    assert isinstance(state, tuple)  # the global RandomState's MT19937 state, in the legacy form
    name, keys, pos, has_gauss, cached = state
    return {
        "python": random.getstate(),
        # as plain lists: weights_only loading refuses numpy arrays
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        # only when the script uses CUDA: reading the states would create a CUDA context
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized()
        else None,
    }


def _set_rng_states(states: Mapping[str, Any]) -> None:
    random.setstate(_as_tuple(states["python"]))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("cuda")
    if cuda and torch.cuda.is_available():
        # a trial resumed on a machine with fewer GPUs restores those it has
        for index, state in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state.cpu(), index)


def _as_tuple(value: Any) -> Any:
    """``random.setstate`` wants the nested tuples back (a loader may hand lists)."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value


def _clean_extra(value: Any, where: str) -> Any:
    """``value`` with numpy scalars made Python numbers; a TypeError naming anything else that a
    safe load would refuse (a numpy float64 *is* a float, but is pickled as a numpy object)."""
    if type(value) in _SAFE_SCALARS or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.generic) and not isinstance(value, (np.void, np.object_)):
        return value.item()
    if isinstance(value, Mapping):
        cleaned = {}
        for key, item in value.items():
            if type(key) not in _SAFE_SCALARS:
                raise TypeError(f"save_training_state(): key {key!r} of {where} is a {type(key).__name__}; "
                                "use strings or numbers")
            cleaned[key] = _clean_extra(item, f"{where}[{key!r}]")
        return cleaned
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_clean_extra(item, f"{where}[{i}]") for i, item in enumerate(value))
    raise TypeError(f"save_training_state(): {where} is a {type(value).__name__}, which a safe "
                    "(weights_only) load refuses; store tensors, numbers, strings, None, and lists or "
                    "dicts of them (a numpy array as array.tolist() or torch.from_numpy(array))")


def save_training_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    *,
    epoch: int,
    extra: Mapping[str, Any] | None = None,
    directory: str | os.PathLike[str] | None = None,
    filename: str = CHECKPOINT_FILENAME,
) -> Path | None:
    """Write the trial's checkpoint after epoch ``epoch`` (completed) and return its path.

    Called by the script at the end of every epoch, before it reports the epoch. ``scheduler``
    is the LR scheduler, or None. ``extra``: anything else the script needs back on resume (the
    epoch's metrics, to report them again; a ``numpy.random.Generator``'s
    ``bit_generator.state``), made of tensors, numbers, strings, ``None``, lists and dicts
    (numpy scalars are stored as Python numbers).
    ``directory`` defaults to the trial's checkpoint folder
    (:func:`tunebench.reporting.checkpoint_dir`); without one (the script runs outside a tuner)
    nothing is written and ``None`` is returned. The file is replaced atomically.

    Raises:
        TypeError: ``extra`` holds an object a safe load would refuse (the message names it).
        ValueError: ``epoch`` is not a non-negative integer.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"save_training_state(): epoch must be an integer >= 0, got {epoch!r}")
    extra = _clean_extra(dict(extra or {}), "extra")
    folder = Path(directory) if directory is not None else checkpoint_dir()
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "format": _FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": _rng_states(),
        "extra": extra,
    }
    return atomic_write(folder / filename, lambda f: torch.save(state, f))


def load_training_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    *,
    directory: str | os.PathLike[str] | None = None,
    filename: str = CHECKPOINT_FILENAME,
) -> dict[str, Any] | None:
    """Restore the trial's checkpoint into ``model``, ``optimizer``, ``scheduler`` and the RNGs.

    Called by the script once, after building the model, optimizer and LR scheduler (on the
    device it trains on) and before its first epoch. Returns ``{"epoch": last completed epoch,
    "extra": the dict given to save_training_state, "path": the file}``, or ``None`` when there
    is nothing to resume: no checkpoint folder (outside a tuner), no checkpoint yet (a new
    trial), or a checkpoint that cannot be used. In that last case a warning ``checkpoint PATH
    is corrupted (why): starting this trial from scratch`` is logged (to stderr unless logging
    is configured otherwise) and ``model``/``optimizer``/``scheduler`` are left as they were
    given, so the script simply trains from its first epoch.

    The optimizer's hyperparameters (learning rate, momentum, weight decay...: those it was
    built with, from the trial's config) win over the checkpoint's: a trial resumed with a
    changed config (PBT) trains with its new values; the learning rate keeps its place in the
    LR schedule (scaled by new base / old base).
    """
    folder = Path(directory) if directory is not None else checkpoint_dir()
    if folder is None:
        return None
    path = folder / filename
    if not path.is_file():
        return None
    try:
        state = _read_state(path, scheduler is not None)
    except Exception as err:  # any unreadable file means: start again
        _corrupted(path, err)
        return None
    model_backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
    given = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer_backup = copy.deepcopy(optimizer.state_dict())
    scheduler_backup = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        _set_rng_states(state["rng"])
    except Exception as err:  # a checkpoint of another model, or damaged content
        model.load_state_dict(model_backup)
        optimizer.load_state_dict(optimizer_backup)
        if scheduler is not None:
            scheduler.load_state_dict(scheduler_backup)
        _corrupted(path, err)
        return None
    _keep_given_hyperparameters(optimizer, scheduler, given)
    logger.info("resuming from %s (epoch %d completed)", path, state["epoch"])
    return {"epoch": state["epoch"], "extra": state["extra"], "path": path}


#: the optimizer hyperparameters of a param group that the script's config sets and that a
#: resume keeps from the config rather than from the checkpoint (besides the learning rate)
OPTIMIZER_HYPERPARAMETERS = ("momentum", "weight_decay", "betas", "eps", "dampening", "alpha", "lr_decay", "rho")


def _keep_given_hyperparameters(optimizer: torch.optim.Optimizer, scheduler: Any,
                                given: list[dict[str, Any]]) -> None:
    """After a checkpoint was loaded: the hyperparameters the optimizer was built with (``given``,
    from the trial's config) win over the checkpoint's, since a resumed trial's config may have
    changed (PBT's explore). The learning rate keeps its place in the LR schedule: the current
    rate is scaled by new base / old base, and the scheduler's base rates become the new ones."""
    base_lrs = getattr(scheduler, "base_lrs", None)
    for i, (group, fresh) in enumerate(zip(optimizer.param_groups, given, strict=False)):
        new_base = fresh.get("initial_lr", fresh.get("lr"))
        old_base = group.get("initial_lr", group.get("lr"))
        if isinstance(new_base, (int, float)) and isinstance(old_base, (int, float)) and new_base != old_base:
            group["lr"] = group["lr"] * new_base / old_base if old_base else new_base
            if "initial_lr" in group:
                group["initial_lr"] = new_base
            if isinstance(base_lrs, list) and i < len(base_lrs):
                base_lrs[i] = new_base
            logger.info("resuming with the config's learning rate %g (the checkpoint's was %g)", new_base, old_base)
        for key in OPTIMIZER_HYPERPARAMETERS:
            if key in fresh and key in group and group[key] != fresh[key]:
                logger.info("resuming with the config's %s %s (the checkpoint's was %s)", key, fresh[key], group[key])
                group[key] = fresh[key]


def _read_state(path: Path, with_scheduler: bool) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ValueError(f"not a checkpoint written by save_training_state (format {_FORMAT})")
    missing = [k for k in ("epoch", "model", "optimizer", "scheduler", "rng", "extra") if k not in state]
    if missing:
        raise ValueError(f"entries {missing} are missing")
    epoch = state["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch {epoch!r} is not an integer >= 0")
    if with_scheduler and state["scheduler"] is None:
        raise ValueError("it has no LR scheduler state, but the script has an LR scheduler")
    if not isinstance(state["extra"], dict):
        raise ValueError("its 'extra' entry is not a dict")
    return state


def _corrupted(path: Path, err: BaseException) -> None:
    why = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else 'no detail'}"
    logger.warning("checkpoint %s is corrupted (%s): starting this trial from scratch", path, why[:300])


# --------------------------------------------------------------------------- data preparation


def data_cache_dir(create: bool = True) -> Path:
    """Where prepared datasets are cached: ``$TUNEBENCH_CACHE/datasets``, else
    ``$XDG_CACHE_HOME/tunebench/datasets``, else ``~/.cache/tunebench/datasets`` (created when
    ``create``). Shared by all trials and experiments of the user."""
    env = os.environ.get("TUNEBENCH_CACHE")
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "tunebench"
    path = root / "datasets"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def data_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``PATH.lock`` (created if missing) for the ``with`` block.

    Used around the preparation of a dataset (download, parse, cache): of several trials that
    start together on one machine, one prepares while the others wait for it. The lock is an
    ``fcntl.flock``: the system releases it when its holder dies, so a killed trial never leaves
    the others waiting. Logs (INFO) when it has to wait."""
    import fcntl

    lock_path = Path(f"{os.fspath(path)}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process preparing %s", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fingerprint(sources: tuple[Path, ...], version: str) -> str:
    digest = hashlib.sha256(version.encode())
    for source in sources:
        st = source.stat()
        digest.update(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def cached_arrays(
    name: str,
    build: Callable[[], Mapping[str, np.ndarray]],
    *,
    sources: tuple[str | os.PathLike[str], ...] = (),
    version: str = "1",
    cache_dir: str | os.PathLike[str] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays ``build()`` returns, computed once and cached as ``NAME-HASH.npz``.

    Called by the script to prepare its data. The hash covers ``version`` and the path, size
    and modification time of every file in ``sources``, so a changed source (or a new
    ``version`` of the preparation code) prepares again. The cache is read without locking when
    it exists (it is written atomically); otherwise the caller takes :func:`data_lock`, checks
    again, builds and writes it, so concurrent trials build it once. An unreadable cache file is
    rebuilt. Arrays are stored without pickle (numbers and fixed-width strings only).
    ``cache_dir`` defaults to :func:`data_cache_dir`.
    """
    paths = tuple(Path(s) for s in sources)
    folder = Path(cache_dir) if cache_dir is not None else data_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}-{_fingerprint(paths, version)}.npz"
    if target.is_file():
        try:
            return _read_npz(target)
        except Exception as err:  # rebuilt below, under the lock
            logger.warning("cached data %s is unreadable (%s): preparing it again", target, err)
    with data_lock(target):
        if target.is_file():  # prepared by another process while this one waited
            try:
                return _read_npz(target)
            except Exception:
                pass
        # Any: mypy would match savez's allow_pickle flag with the arrays
        arrays: dict[str, Any] = {key: np.asarray(value) for key, value in build().items()}
        atomic_write(target, lambda f: np.savez(f, **arrays))
        logger.info("prepared %s and cached it in %s", name, target)
        return arrays
