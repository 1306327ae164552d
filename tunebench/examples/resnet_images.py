"""Example training script: a small ResNet trained with SGD on images (MNIST-5k, digits, CIFAR-10).

Written the way a tunable PyTorch script should be (see ``mlp_digits.py`` for the same without
torch):

* its config space is ``CONFIG_SPACE`` (``--epochs`` is the maximum resource) and
  ``add_to_argparse`` gives one typed ``--name`` option per entry, so
  ``python resnet_images.py`` trains the default configuration on its own;
* ``report(epoch=..., val_error=..., val_loss=..., train_loss=..., epoch_time=...)`` once per
  epoch, after a checkpoint of the model, optimizer, LR scheduler, epoch and RNG states
  (:func:`tunebench.integrations.torch.save_training_state`); a paused or killed trial resumes
  from it and reports its last checkpointed epoch again (the tuner ignores the repeat);
* a corrupted checkpoint starts the trial from scratch (a warning in its log says so), and a
  diverged run (NaN or infinite loss) ends with exit code 1 and a message, before it reports
  anything: the tuner marks that trial failed and goes on;
* the data is prepared once into the data cache under a file lock, whatever the number of
  trials starting together; the script trains on the GPU when one is visible (the local
  backend gives each trial its own through ``CUDA_VISIBLE_DEVICES``).

Data (``--dataset``):

* ``mnist`` — 5,000 MNIST digits from ``$TUNEBENCH_DATA/mnist-5k/mnist_5k.csv.gz`` (784 pixel
  columns then the label), or from ``--data-dir``; a fixed split of 4,500 training and 500
  validation images;
* ``digits`` — the 1,797 8x8 digits that ship with scikit-learn (1,500 / 297);
* ``cifar10`` — the CIFAR-10 "python version" folder given by ``--data-dir`` (or found at
  ``$TUNEBENCH_DATA/cifar-10-batches-py``): ``data_batch_1`` ... ``data_batch_5`` and
  ``test_batch``; 45,000 training and 5,000 validation images (a fixed split of the training
  batches), the test batch evaluated after the last epoch (``test_error``);
* ``auto`` (default) — MNIST-5k when its folder is found, else digits (with a note saying so).

The CIFAR-10 batches are Python pickles (that is the dataset's own format); they are read with
an unpickler that only accepts the numpy array constructors those files use, so a batch file
cannot run code.

No data augmentation; the LR follows a cosine schedule over ``--epochs`` (per batch). The
default network (width 16, one block per stage: 78k parameters) trained with the default
configuration reaches about 2% validation error on MNIST-5k in 20 epochs; on a 2-core CPU an
epoch takes about 10 s with one thread (``OMP_NUM_THREADS=1``, what ``cpus_per_trial=1`` sets),
and a trial stays under 0.6 GB of memory.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import logging
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tunebench import report
from tunebench.integrations.torch import (
    cached_arrays,
    check_finite,
    load_training_state,
    pick_device,
    save_training_state,
    seed_everything,
    set_deterministic,
)
from tunebench.reporting import add_checkpoint_argument
from tunebench.space import add_to_argparse, loguniform, ordinal, uniform

CONFIG_SPACE = {
    "batch_size": ordinal([32, 64, 128, 256]),
    "lr": loguniform(1e-3, 1.0),
    "momentum": uniform(0.5, 0.99),
    "weight_decay": loguniform(1e-6, 1e-2),
    "epochs": 20,
}
METRIC, MODE, RESOURCE_ATTR, MAX_RESOURCE_ATTR = "val_error", "min", "epoch", "epochs"

DATA_ENV = "TUNEBENCH_DATA"
MNIST_FOLDER, MNIST_FILE = "mnist-5k", "mnist_5k.csv.gz"
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"

log = logging.getLogger("resnet_images")


class DataError(SystemExit):
    """A dataset that cannot be found or read: the script ends with this message (exit code 1)."""


# --------------------------------------------------------------------------- data


def default_data_root() -> Path | None:
    """``$TUNEBENCH_DATA``, else ``../shared/data`` beside the project checkout, else None."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    beside = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return beside if beside.is_dir() else None


def _split(n: int, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed (seed-independent) train/validation split of ``n`` examples."""
    order = np.random.default_rng(12345).permutation(n)
    return order[n_val:], order[:n_val]


def load_mnist_5k(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-5k as uint8 images (N, 1, 28, 28) and int64 labels, parsed once and cached."""
    path = folder / MNIST_FILE

    def build() -> dict[str, np.ndarray]:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float32)
        if table.ndim != 2 or table.shape[1] != 785:
            raise DataError(f"{path}: expected 785 columns (784 pixels, then the label), got {table.shape}")
        return {"x": table[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28),
                "y": table[:, 784].astype(np.int64)}

    try:
        arrays = cached_arrays("mnist-5k", build, sources=(path,))
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    return arrays["x"], arrays["y"]


def load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (values 0-16) as uint8 images (N, 1, 8, 8), read from the data
    file inside the installed package (importing scikit-learn itself costs about a second)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits dataset needs scikit-learn installed (it ships the data)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"

    def build() -> dict[str, np.ndarray]:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float32)
        return {"x": table[:, :64].astype(np.uint8).reshape(-1, 1, 8, 8), "y": table[:, 64].astype(np.int64)}

    arrays = cached_arrays("sklearn-digits", build, sources=(path,))
    return arrays["x"], arrays["y"]


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch: a dict of bytes/str, lists of ints and numpy arrays; any other
    global (the way a pickle runs code) is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes the bytes of an array with pickle protocol 2
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # numpy >= 2 moved it
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: uint8 images (N, 3, 32, 32) and int64 labels.

    Raises:
        DataError: the file is missing, not a CIFAR-10 batch, or malformed (the message names it).
    """
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 batch {path} is missing") from None
    except Exception as err:
        raise DataError(f"{path} is not a readable CIFAR-10 batch ({type(err).__name__}: {err})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch (a {type(batch).__name__}, not a dict)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{path} is not a CIFAR-10 batch: it has no 'data' and 'labels' entries")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise DataError(f"{path}: 'labels' must be {len(data)} integers from 0 to 9")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The five training batches, and the test batch when present (else None, None)."""
    missing = [name for name in CIFAR_TRAIN if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder} is not a CIFAR-10 folder: {', '.join(missing)} missing (the python "
                        "version of CIFAR-10 has data_batch_1 ... data_batch_5 and test_batch)")
    parts = [read_cifar_batch(folder / name) for name in CIFAR_TRAIN]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if (folder / CIFAR_TEST).is_file():
        x_test, y_test = read_cifar_batch(folder / CIFAR_TEST)
        return x, y, x_test, y_test
    return x, y, None, None


def _missing(what: str, where: Path | None) -> DataError:
    place = f" at {where}" if where is not None else ""
    return DataError(f"{what} not found{place}: pass --data-dir FOLDER, or set {DATA_ENV} to the folder "
                     f"holding {MNIST_FOLDER}/ (or {CIFAR_FOLDER}/)")


def load_dataset(name: str, data_dir: Path | None) -> dict[str, Any]:
    """The dataset ``--dataset`` asks for, split: a dict with ``name``, ``x_train``, ``y_train``,
    ``x_val``, ``y_val``, ``x_test``/``y_test`` (or None) as uint8 images / int64 labels, and
    ``scale`` (the largest pixel value). A folder given with ``--data-dir`` must exist."""
    if data_dir is not None and not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} does not exist; give the dataset's folder "
                        f"(e.g. .../{MNIST_FOLDER} or .../{CIFAR_FOLDER}), or leave --data-dir out to use "
                        f"${DATA_ENV}")
    root = default_data_root()
    if name == "auto":
        if data_dir is not None:
            name = "cifar10" if (data_dir / CIFAR_TRAIN[0]).is_file() or (data_dir / CIFAR_FOLDER).is_dir() \
                else "mnist"
        elif root is not None and (root / MNIST_FOLDER / MNIST_FILE).is_file():
            name = "mnist"
        else:
            shown = f"{root / MNIST_FOLDER}" if root is not None else f"${DATA_ENV}/{MNIST_FOLDER} ({DATA_ENV} unset)"
            log.warning("note: MNIST-5k not found at %s; training on scikit-learn's 8x8 digits instead "
                        "(set %s to the folder holding %s/, or pass --data-dir)", shown, DATA_ENV, MNIST_FOLDER)
            name = "digits"
    x_test = y_test = None
    if name == "mnist":
        folder = data_dir if data_dir is not None else (root / MNIST_FOLDER if root is not None else None)
        if folder is not None and (folder / MNIST_FOLDER / MNIST_FILE).is_file():
            folder = folder / MNIST_FOLDER
        if folder is None or not (folder / MNIST_FILE).is_file():
            raise _missing(f"MNIST-5k ({MNIST_FILE})", folder)
        x, y = load_mnist_5k(folder)
        n_val, scale = 500, 255.0
    elif name == "digits":
        x, y = load_sklearn_digits()
        n_val, scale = 297, 16.0
    elif name == "cifar10":
        folder = data_dir if data_dir is not None else (root / CIFAR_FOLDER if root is not None else None)
        if folder is not None and (folder / CIFAR_FOLDER).is_dir():
            folder = folder / CIFAR_FOLDER
        if folder is None or not folder.is_dir():
            raise _missing("the CIFAR-10 folder (cifar-10-batches-py)", folder)
        x, y, x_test, y_test = load_cifar10(folder)
        n_val, scale = max(1, len(x) // 10), 255.0
    else:  # argparse restricts the choices
        raise DataError(f"unknown dataset {name!r}")
    train, val = _split(len(x), n_val)
    return {"name": name, "x_train": x[train], "y_train": y[train], "x_val": x[val], "y_val": y[val],
            "x_test": x_test, "y_test": y_test, "scale": scale}


# --------------------------------------------------------------------------- model


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, and the identity (or a 1x1 projection) added."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A 3x3 stem, then three stages of ``blocks`` residual blocks with ``width``, 2x and 4x
    channels (the last two halve the resolution), global average pooling, a linear layer."""

    def __init__(self, in_channels: int, n_classes: int = 10, width: int = 16, blocks: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        layers: list[nn.Module] = []
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks):
                layers.append(BasicBlock(c_in, c_out, 2 if stage > 0 and b == 0 else 1))
                c_in = c_out
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(x))
        # global average pooling as a mean: deterministic on CUDA, unlike adaptive_avg_pool2d's backward
        return self.head(h.mean(dim=(2, 3)))


# --------------------------------------------------------------------------- training


class Normalizer:
    """uint8 images of a batch → float tensors standardized per channel (training-set statistics)."""

    def __init__(self, x_train: np.ndarray, scale: float, device: torch.device) -> None:
        sample = x_train[:10000].astype(np.float32) / scale
        self.mean = torch.tensor(sample.mean(axis=(0, 2, 3)), device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(sample.std(axis=(0, 2, 3)) + 1e-6, device=device).view(1, -1, 1, 1)
        self.scale = scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / self.scale - self.mean) / self.std


def train_epoch(model, optimizer, scheduler, x, y, batch_size, normalize, epoch) -> float:
    """One pass over the training set in a random order; returns the mean training loss.

    Ends the script (:class:`TrainingDiverged`) as soon as the loss is no longer finite."""
    model.train()
    n = len(x)
    order = torch.randperm(n).to(x.device)
    total = torch.zeros((), device=x.device)
    seen = 0
    for i, start in enumerate(range(0, n, batch_size)):
        idx = order[start:start + batch_size]
        if len(idx) < 2 and seen:  # batch norm needs more than one example
            break
        loss = F.cross_entropy(model(normalize(x[idx])), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.detach() * len(idx)
        seen += len(idx)
        if i % 10 == 9:  # an early exit of a diverged run (one sync every 10 batches on a GPU)
            check_finite(total, epoch=epoch)
    return check_finite(total / seen, epoch=epoch)


@torch.no_grad()
def evaluate(model, x, y, normalize, batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, error rate) on ``x``, ``y``."""
    model.eval()
    loss = torch.zeros((), device=x.device)
    wrong = torch.zeros((), device=x.device)
    for start in range(0, len(x), batch_size):
        logits = model(normalize(x[start:start + batch_size]))
        target = y[start:start + batch_size]
        loss += F.cross_entropy(logits, target, reduction="sum")
        wrong += (logits.argmax(dim=1) != target).sum()
    return float(loss) / len(x), float(wrong) / len(x)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_to_argparse(parser, CONFIG_SPACE)
    add_checkpoint_argument(parser)
    parser.add_argument("--dataset", choices=("auto", "mnist", "digits", "cifar10"), default="auto",
                        help="auto: MNIST-5k if found, else scikit-learn's digits (default: auto)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"the dataset's folder (default: ${DATA_ENV}/{MNIST_FOLDER}, or "
                             f"${DATA_ENV}/{CIFAR_FOLDER} for cifar10)")
    parser.add_argument("--width", type=int, default=16, help="channels of the first stage (default: 16)")
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks per stage (default: 1)")
    parser.add_argument("--max-train-samples", type=int, default=None,
                        help="train on the first N training images only (quick runs, tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads of torch (default 0: torch's choice, which follows OMP_NUM_THREADS)")
    parser.add_argument("--device", default="auto", help="auto (a visible GPU, else the CPU), cpu, cuda, cuda:N")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic algorithms and cuDNN settings (slower on a GPU): a resumed trial "
                             "then continues exactly the curve of an uninterrupted one")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for name in ("width", "blocks", "epochs"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.deterministic:
        set_deterministic()
    seed_everything(args.seed)
    device = pick_device(args.device)

    data = load_dataset(args.dataset, args.data_dir)
    x_train, y_train = data["x_train"], data["y_train"]
    if args.max_train_samples is not None:
        x_train, y_train = x_train[: args.max_train_samples], y_train[: args.max_train_samples]
    if len(x_train) < 2:
        raise DataError(f"{len(x_train)} training image(s): need at least 2 (--max-train-samples)")
    normalize = Normalizer(x_train, data["scale"], device)

    def to_device(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    x_train, y_train = to_device(x_train), to_device(y_train)
    x_val, y_val = to_device(data["x_val"]), to_device(data["y_val"])
    log.info("%s: %d training and %d validation images %s on %s, %d thread(s)", data["name"], len(x_train),
             len(x_val), tuple(x_train.shape[1:]), device, torch.get_num_threads())

    model = ResNet(x_train.shape[1], width=args.width, blocks=args.blocks).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)

    start_epoch = 1
    state = load_training_state(model, optimizer, scheduler, directory=args.checkpoint_dir)
    if state is not None:
        start_epoch = state["epoch"] + 1
        log.info("resuming after epoch %d from %s", state["epoch"], state["path"])
        # the checkpoint is written before the report: report that epoch again in case the
        # previous run was killed in between (the tuner ignores an epoch it already has)
        report(**state["extra"]["metrics"])

    for epoch in range(start_epoch, args.epochs + 1):
        t0 = time.perf_counter()
        train_loss = train_epoch(model, optimizer, scheduler, x_train, y_train, args.batch_size, normalize, epoch)
        val_loss, val_error = evaluate(model, x_val, y_val, normalize)
        check_finite(val_loss, "validation loss", epoch=epoch)
        metrics = {"epoch": epoch, "val_error": val_error, "val_loss": val_loss, "train_loss": train_loss,
                   "epoch_time": time.perf_counter() - t0}
        if epoch == args.epochs and data["x_test"] is not None:
            _, metrics["test_error"] = evaluate(model, to_device(data["x_test"]), to_device(data["y_test"]),
                                                normalize)
        save_training_state(model, optimizer, scheduler, epoch=epoch, extra={"metrics": metrics},
                            directory=args.checkpoint_dir)
        log.info("epoch %d: train_loss %.4f, val_loss %.4f, val_error %.4f (%.1f s)", epoch, train_loss, val_loss,
                 val_error, metrics["epoch_time"])
        report(**metrics)


if __name__ == "__main__":
    main()
