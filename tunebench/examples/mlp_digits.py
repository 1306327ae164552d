"""Example training script: a multi-layer perceptron on scikit-learn's digits, epoch by epoch.

It is written the way a tunable script should be:

* its config space is ``CONFIG_SPACE`` (the tuner reads it; ``--epochs`` is the maximum resource);
* ``add_to_argparse`` declares one typed ``--name`` argument per hyperparameter, so the script
  also runs on its own with the default configuration: ``python mlp_digits.py``;
* ``report(epoch=..., val_error=..., n_params=...)`` once per epoch (``n_params``, the model's size, is a
  second objective to trade against the error: ``--metric val_error n_params --mode min min``);
* a checkpoint per epoch (weights, momentum buffers, epoch, RNG state), written *before* the
  epoch is reported, in the folder the tuner gives it, and a resume from that checkpoint: a
  trial paused by promotion-type ASHA continues where it stopped instead of training again.

The network is written with numpy (forward, backward, SGD with momentum and weight decay) so a
trial starts in a fraction of a second; the data is read from the ``digits.csv.gz`` that ships
inside scikit-learn, without importing scikit-learn itself (which costs about a second).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from tunebench import load_checkpoint, report, save_checkpoint
from tunebench.reporting import add_checkpoint_argument
from tunebench.space import add_to_argparse, lograndint, loguniform, ordinal, randint, uniform

CONFIG_SPACE = {
    "lr": loguniform(1e-3, 1.0),
    "momentum": uniform(0.0, 0.99),
    "weight_decay": loguniform(1e-6, 1e-2),
    "batch_size": ordinal([16, 32, 64, 128, 256]),
    "n_units": lograndint(16, 256),
    "n_layers": randint(1, 3),
    "epochs": 27,
}
METRIC, MODE, RESOURCE_ATTR, MAX_RESOURCE_ATTR = "val_error", "min", "epoch", "epochs"


def load_digits_data() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 8x8 digits scikit-learn ships (read from its data file, offline)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("this example needs scikit-learn installed (it ships the digits data)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return data[:, :-1] / 16.0, data[:, -1].astype(np.int64)


def init_params(rng: np.random.Generator, sizes: list[int]) -> list[np.ndarray]:
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        params.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out)))
        params.append(np.zeros(fan_out))
    return params


def forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    activations = [x]
    n_layers = len(params) // 2
    for i in range(n_layers):
        z = activations[-1] @ params[2 * i] + params[2 * i + 1]
        activations.append(np.maximum(z, 0.0) if i < n_layers - 1 else z)
    return activations[-1], activations


def train_epoch(params, velocity, x, y, rng, lr, momentum, weight_decay, batch_size) -> None:
    order = rng.permutation(len(x))
    n_layers = len(params) // 2
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        logits, acts = forward(params, x[idx])
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[np.arange(len(idx)), y[idx]] -= 1.0
        delta = probs / len(idx)
        for i in reversed(range(n_layers)):
            grad_w = acts[i].T @ delta + weight_decay * params[2 * i]
            grad_b = delta.sum(axis=0)
            if i > 0:
                delta = (delta @ params[2 * i].T) * (acts[i] > 0)
            for j, g in ((2 * i, grad_w), (2 * i + 1, grad_b)):
                velocity[j] = momentum * velocity[j] - lr * g
                params[j] += velocity[j]


def error_rate(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    logits, _ = forward(params, x)
    if not np.all(np.isfinite(logits)):
        return 1.0
    return float(np.mean(logits.argmax(axis=1) != y))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_to_argparse(parser, CONFIG_SPACE)
    add_checkpoint_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x, y = load_digits_data()
    split = np.random.default_rng(12345).permutation(len(x))  # fixed train/validation split
    n_train = 1300
    x_train, y_train = x[split[:n_train]], y[split[:n_train]]
    x_val, y_val = x[split[n_train:]], y[split[n_train:]]

    rng = np.random.default_rng(args.seed)
    sizes = [x.shape[1]] + [args.n_units] * args.n_layers + [10]
    params = init_params(rng, sizes)
    velocity = [np.zeros_like(p) for p in params]
    n_params = int(sum(p.size for p in params))  # weights and biases
    start_epoch = 1
    state = load_checkpoint(args.checkpoint_dir) if args.checkpoint_dir else None
    if state is not None:  # resume where the last run of this trial stopped
        params, velocity = state["params"], state["velocity"]
        rng.bit_generator.state = state["rng"]
        start_epoch = state["epoch"] + 1
        # the checkpoint is written before the report, so a run killed in between has not
        # reported its last epoch: report it again (the tuner ignores a repeated epoch)
        report(epoch=state["epoch"], val_error=state["val_error"], n_params=n_params)

    for epoch in range(start_epoch, args.epochs + 1):
        with np.errstate(all="ignore"):
            train_epoch(params, velocity, x_train, y_train, rng, args.lr, args.momentum,
                        args.weight_decay, args.batch_size)
            val_error = error_rate(params, x_val, y_val)
        if args.checkpoint_dir:
            save_checkpoint({"params": params, "velocity": velocity, "rng": rng.bit_generator.state,
                             "epoch": epoch, "val_error": val_error}, args.checkpoint_dir)
        report(epoch=epoch, val_error=val_error, n_params=n_params)


if __name__ == "__main__":
    main()
