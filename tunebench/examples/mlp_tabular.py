"""Example training script: a numpy MLP on a tabular dataset that ships with scikit-learn.

No torch, no download: an epoch takes milliseconds, so whole tuning runs (and the tabulation
of this benchmark, see ``tunebench tabulate``) take seconds to minutes. It is written the way a
tunable script should be:

* its config space is ``CONFIG_SPACE`` (the tuner reads it; ``--epochs`` is the maximum resource)
  and ``add_to_argparse`` gives one typed ``--name`` argument per hyperparameter, so the script
  also runs on its own: ``python mlp_tabular.py --lr 0.01``;
* ``report(...)`` once per epoch: ``epoch``, ``val_error`` (``val_rmse`` for a regression
  dataset), ``val_loss``, ``train_loss`` and ``epoch_time`` (seconds of training and validation
  of that epoch: a tabulation uses it as the elapsed time);
* a checkpoint per epoch (weights, optimizer state, RNG state, epoch, metrics), written *before*
  the epoch is reported; a trial paused by promotion-type ASHA resumes from it instead of
  training again. The checkpoint, the ``trained epoch N`` line on stdout and the report of an
  epoch happen with SIGTERM blocked, so a pause never separates them; a checkpoint that cannot
  be read (corrupted, or from another architecture) is reported on stderr and the trial starts
  from scratch;
* a diverged run (a non-finite training loss) exits with status 3 and a message on stderr: the
  tuner records a failed trial and goes on (a few percent of the space diverge: SGD with momentum
  and a large learning rate in a deep, wide network; the benchmark's ``max_failures`` allows it);
* the data is prepared once per machine: the first trial loads the dataset with scikit-learn,
  splits and standardizes it, and caches the arrays (``.npz``) under a file lock; every other
  trial reads the cache (importing scikit-learn alone takes a second or more).

Datasets (``--dataset``): ``breast_cancer`` (default; 569 rows, 30 features, 2 classes),
``wine`` (178 x 13, 3 classes), ``digits`` (1797 x 64, 10 classes) and ``diabetes`` (442 x 10,
regression: the script reports ``val_rmse`` instead of ``val_error``; tune it with
``--metric val_rmse``). A fixed 80/20 train/validation split (the same for every trial and seed);
``--seed`` seeds the initialization, dropout and batch order.

The cache folder is ``--data-dir`` (it must exist), else ``$XDG_CACHE_HOME/tunebench/datasets``
(default ``~/.cache/tunebench/datasets``, created when needed).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tunebench import load_checkpoint, report, save_checkpoint
from tunebench.reporting import CHECKPOINT_FILENAME, add_checkpoint_argument, atomic_write
from tunebench.space import add_to_argparse, choice, loguniform, ordinal, randint, uniform

CONFIG_SPACE = {
    "lr": loguniform(1e-4, 0.3),
    "optimizer": choice(["adam", "sgd"]),
    "batch_size": ordinal([16, 32, 64, 128]),
    "n_units": ordinal([16, 32, 64, 128, 256]),
    "n_layers": randint(1, 3),
    "weight_decay": loguniform(1e-6, 1e-1),
    "dropout": uniform(0.0, 0.5),
    "epochs": 30,
}
METRIC, MODE, RESOURCE_ATTR, MAX_RESOURCE_ATTR = "val_error", "min", "epoch", "epochs"

#: dataset -> (scikit-learn loader, task)
DATASETS = {
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "digits": ("load_digits", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
#: bump when the preparation changes: older caches are then ignored
CACHE_VERSION = 1
#: exit status of a diverged run
EXIT_DIVERGED = 3
SGD_MOMENTUM = 0.9
ADAM_BETAS = (0.9, 0.999)


# -- data: prepared once per machine, under a file lock -------------------------------------------


def data_folder(data_dir: Path | None) -> Path:
    """The cache folder: ``data_dir`` (must exist), else ``$XDG_CACHE_HOME/tunebench/datasets``."""
    if data_dir is not None:
        if not data_dir.is_dir():
            raise SystemExit(f"mlp_tabular: the data folder {data_dir} does not exist; pass --data-dir an existing "
                             "folder, or leave --data-dir out to cache the data under $XDG_CACHE_HOME/tunebench/"
                             "datasets (default ~/.cache/tunebench/datasets)")
        return data_dir
    xdg = os.environ.get("XDG_CACHE_HOME")
    folder = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "tunebench" / "datasets"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"mlp_tabular: cannot create the data cache folder {folder} ({e}); pass --data-dir an "
                         "existing writable folder, or set XDG_CACHE_HOME") from None
    return folder


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), held by one process of the machine at a time."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic rename below still keeps the cache correct
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def prepare_dataset(name: str) -> dict[str, np.ndarray]:
    """Load ``name`` with scikit-learn, split it 80/20 (fixed permutation) and standardize it
    with the training statistics (the regression target too)."""
    import sklearn.datasets  # deferred: scikit-learn (heavy), only when its model is built

    loader, task = DATASETS[name]
    x, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    x = np.asarray(x, dtype=np.float64)
    order = np.random.default_rng(12345).permutation(len(x))
    n_train = int(round(0.8 * len(x)))
    train, val = order[:n_train], order[n_train:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    x = (x - mean) / std
    out = {"x_train": x[train], "x_val": x[val]}
    if task == "classification":
        y = np.asarray(y, dtype=np.int64)
        out.update(y_train=y[train], y_val=y[val], n_classes=np.array(int(y.max()) + 1))
    else:
        y = np.asarray(y, dtype=np.float64)
        y_mean, y_std = y[train].mean(), y[train].std()
        out.update(y_train=(y[train] - y_mean) / y_std, y_val=(y[val] - y_mean) / y_std, y_std=np.array(y_std))
    return out


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as e:  # a truncated or foreign file: prepared again
        print(f"mlp_tabular: data cache {path} is unreadable ({type(e).__name__}: {e}); preparing it again",
              file=sys.stderr)
        return None


def load_dataset(name: str, data_dir: Path | None) -> dict[str, np.ndarray]:
    """The prepared arrays of ``name``: read from the cache, or prepared and cached by the first
    process that takes the lock (the others wait, then read what it wrote)."""
    folder = data_folder(data_dir)
    path = folder / f"mlp_tabular-{name}-v{CACHE_VERSION}.npz"
    data = _read_cache(path)
    if data is not None:
        return data
    with file_lock(folder / f".mlp_tabular-{name}.lock"):
        data = _read_cache(path)  # prepared by another process while this one waited
        if data is None:
            data = prepare_dataset(name)
            arrays: dict[str, Any] = data  # Any: mypy would match savez's allow_pickle flag with them
            atomic_write(path, lambda f: np.savez(f, **arrays))
    return data


# -- the model ----------------------------------------------------------------------------------


def init_params(rng: np.random.Generator, sizes: list[int]) -> list[np.ndarray]:
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        params.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out)))
        params.append(np.zeros(fan_out))
    return params


def forward(params: list[np.ndarray], x: np.ndarray, dropout: float = 0.0,
            rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Output, the inputs of each layer, and the dropout masks (inverted dropout when training)."""
    acts = [x]
    masks: list[np.ndarray] = []
    n_layers = len(params) // 2
    for i in range(n_layers):
        z = acts[-1] @ params[2 * i] + params[2 * i + 1]
        if i == n_layers - 1:
            return z, acts, masks
        h = np.maximum(z, 0.0)
        if dropout > 0.0 and rng is not None:
            mask = (rng.random(h.shape) >= dropout) / (1.0 - dropout)
            h = h * mask
            masks.append(mask)
        else:
            masks.append(np.ones_like(h))
        acts.append(h)
    raise AssertionError("unreachable")


def loss_and_delta(out: np.ndarray, y: np.ndarray, task: str) -> tuple[float, np.ndarray]:
    """Mean loss of a batch (cross-entropy or squared error) and its gradient w.r.t. the output."""
    if task == "classification":
        shifted = out - out.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -float(np.mean(log_probs[np.arange(len(y)), y]))
        delta = np.exp(log_probs)
        delta[np.arange(len(y)), y] -= 1.0
        return loss, delta / len(y)
    diff = out[:, 0] - y
    return float(np.mean(diff ** 2)), (2.0 * diff / len(y))[:, None]


class Optimizer:
    """Adam or SGD with momentum, with L2 weight decay added to the gradients."""

    def __init__(self, kind: str, params: list[np.ndarray], lr: float, weight_decay: float) -> None:
        self.kind, self.lr, self.weight_decay = kind, lr, weight_decay
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params] if kind == "adam" else []
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        for j, (p, g) in enumerate(zip(params, grads, strict=True)):
            if j % 2 == 0:  # weights, not biases
                g = g + self.weight_decay * p
            if self.kind == "adam":
                b1, b2 = ADAM_BETAS
                self.m[j] = b1 * self.m[j] + (1 - b1) * g
                self.v[j] = b2 * self.v[j] + (1 - b2) * g * g
                m_hat = self.m[j] / (1 - b1 ** self.t)
                v_hat = self.v[j] / (1 - b2 ** self.t)
                p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)
            else:
                self.m[j] = SGD_MOMENTUM * self.m[j] - self.lr * g
                p += self.m[j]

    def state(self) -> dict[str, Any]:
        return {"m": self.m, "v": self.v, "t": self.t}

    def load(self, state: dict[str, Any]) -> None:
        self.m, self.v, self.t = state["m"], state["v"], int(state["t"])


def train_epoch(params: list[np.ndarray], opt: Optimizer, x: np.ndarray, y: np.ndarray, task: str,
                batch_size: int, dropout: float, rng: np.random.Generator) -> float:
    """One pass over the training set; returns the mean batch loss (NaN or inf if it diverged)."""
    order = rng.permutation(len(x))
    n_layers = len(params) // 2
    losses = []
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        out, acts, masks = forward(params, x[idx], dropout, rng)
        loss, delta = loss_and_delta(out, y[idx], task)
        if not math.isfinite(loss):
            return loss
        losses.append(loss)
        grads: list[np.ndarray] = [np.empty(0)] * len(params)
        for i in reversed(range(n_layers)):
            grads[2 * i] = acts[i].T @ delta
            grads[2 * i + 1] = delta.sum(axis=0)
            if i > 0:
                delta = (delta @ params[2 * i].T) * (acts[i] > 0) * masks[i - 1]
        opt.step(params, grads)
    return float(np.mean(losses))


def evaluate(params: list[np.ndarray], data: dict[str, np.ndarray], task: str) -> dict[str, float]:
    """Validation metrics: ``val_loss`` and ``val_error`` (classification) or ``val_rmse``
    (regression, in the target's units)."""
    out, _, _ = forward(params, data["x_val"])
    y = data["y_val"]
    loss, _ = loss_and_delta(out, y, task)
    if task == "classification":
        return {"val_error": float(np.mean(out.argmax(axis=1) != y)), "val_loss": loss}
    return {"val_rmse": float(math.sqrt(loss) * float(data["y_std"])), "val_loss": loss}


# -- checkpoints --------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_blocked() -> Iterator[None]:
    """SIGTERM (a pause or stop by the tuner) waits until the end of the block, then ends the
    process: an epoch's checkpoint, its log line and its report are never separated."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def restore(checkpoint_dir: Path, sizes: list[int], args: argparse.Namespace) -> dict[str, Any] | None:
    """The checkpoint of this trial if there is a usable one; None (and a line on stderr) if it
    is corrupted or does not fit this configuration: the trial then starts from scratch."""
    path = checkpoint_dir / CHECKPOINT_FILENAME
    state = load_checkpoint(checkpoint_dir)  # None for a torn or garbled file (set aside, said on stderr)
    if state is None:
        return None
    shapes: list[Any] | str
    try:
        shapes = [p.shape for p in state["params"]]
        expected = [s for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)
                    for s in ((fan_in, fan_out), (fan_out,))]
        epoch = int(state["epoch"])
        ok = shapes == expected and 1 <= epoch and state["optimizer_kind"] == args.optimizer \
            and isinstance(state["metrics"], dict) and "rng" in state and "optimizer" in state
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        ok, shapes = False, f"{type(e).__name__}: {e}"
    if not ok:
        print(f"mlp_tabular: checkpoint {path} does not fit this configuration (or is corrupted: {shapes}); "
              "starting this trial from scratch", file=sys.stderr, flush=True)
        return None
    return state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_to_argparse(parser, CONFIG_SPACE)
    add_checkpoint_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of initialization, dropout and batch order")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="breast_cancer")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder for the prepared data (default: $XDG_CACHE_HOME/tunebench/datasets)")
    args = parser.parse_args(argv)

    task = DATASETS[args.dataset][1]
    data = load_dataset(args.dataset, args.data_dir)
    n_out = int(data["n_classes"]) if task == "classification" else 1
    sizes = [data["x_train"].shape[1]] + [args.n_units] * args.n_layers + [n_out]

    rng = np.random.default_rng(args.seed)
    params = init_params(rng, sizes)
    opt = Optimizer(args.optimizer, params, args.lr, args.weight_decay)
    start_epoch = 1
    state = restore(args.checkpoint_dir, sizes, args) if args.checkpoint_dir else None
    if state is not None:  # resume where the last run of this trial stopped
        params = state["params"]
        opt.load(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        start_epoch = state["epoch"] + 1
        # the checkpoint is written before the report, so a run killed in between (SIGKILL) has
        # not reported its last epoch: report it again (the tuner ignores a repeated epoch)
        report(epoch=state["epoch"], **state["metrics"])

    for epoch in range(start_epoch, args.epochs + 1):
        t0 = time.perf_counter()
        with np.errstate(all="ignore"):
            train_loss = train_epoch(params, opt, data["x_train"], data["y_train"], task, args.batch_size,
                                     args.dropout, rng)
            if not math.isfinite(train_loss):
                print(f"mlp_tabular: the training loss is {train_loss} at epoch {epoch}: the model diverged "
                      f"(lr={args.lr:g} with {args.optimizer} is probably too large); giving up this trial",
                      file=sys.stderr, flush=True)
                sys.exit(EXIT_DIVERGED)
            metrics = {**evaluate(params, data, task), "train_loss": train_loss}
        metrics["epoch_time"] = time.perf_counter() - t0
        with sigterm_blocked():
            if args.checkpoint_dir:
                save_checkpoint({"params": params, "optimizer": opt.state(), "optimizer_kind": args.optimizer,
                                 "rng": rng.bit_generator.state, "epoch": epoch, "metrics": metrics},
                                args.checkpoint_dir)
            print(f"trained epoch {epoch}", flush=True)
            report(epoch=epoch, **metrics)


if __name__ == "__main__":
    main()
