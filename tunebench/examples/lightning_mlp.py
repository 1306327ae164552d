"""Example training script: a PyTorch Lightning MLP on scikit-learn's digits, tuned by tunebench.

It shows :mod:`tunebench.integrations.lightning` (``pip install 'tunebench[lightning]'``)::

    tunebench run --script tunebench/examples/lightning_mlp.py --method ASHA-promotion --max-trials 8

* ``ReportCallback(["val_error", "trained_epochs"])`` reports, after each validation epoch, the
  validation error and ``epoch`` (epochs trained), having first written the trainer's checkpoint in
  the trial's checkpoint folder;
* ``trainer.fit(..., ckpt_path=resume_checkpoint_path())``: a trial paused by promotion-type ASHA
  continues from its last checkpoint instead of training again;
* ``trained_epochs`` is a counter in the model (a buffer, so it travels in the checkpoint),
  incremented at the first batch of each training epoch: it equals ``epoch`` in every report when
  no epoch is trained twice or skipped across pauses.

Runs on its own too (``python lightning_mlp.py --lr 0.05``): the reports are printed.
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tunebench.examples.mlp_digits import load_digits_data
from tunebench.integrations.lightning import ReportCallback, resume_checkpoint_path
from tunebench.space import add_to_argparse, lograndint, loguniform, ordinal, uniform

CONFIG_SPACE = {
    "lr": loguniform(1e-3, 0.5),
    "momentum": uniform(0.0, 0.95),
    "batch_size": ordinal([32, 64, 128]),
    "n_units": lograndint(16, 128),
    "epochs": 9,
}
METRIC, MODE, RESOURCE_ATTR, MAX_RESOURCE_ATTR = "val_error", "min", "epoch", "epochs"


class DigitsMLP(pl.LightningModule):
    """A one-hidden-layer MLP trained with SGD; logs ``val_error`` and ``trained_epochs``."""

    trained_epochs: torch.Tensor

    def __init__(self, n_units: int, lr: float, momentum: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lr, self.momentum = lr, momentum
        self.net = nn.Sequential(nn.Linear(64, n_units), nn.ReLU(), nn.Linear(n_units, 10))
        self.register_buffer("trained_epochs", torch.zeros((), dtype=torch.long))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if batch_idx == 0:
            self.trained_epochs += 1
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        error = (self.net(x).argmax(dim=1) != y).float().mean()
        self.log("val_error", error, on_epoch=True, batch_size=len(y))
        self.log("trained_epochs", self.trained_epochs.float(), on_epoch=True, reduce_fx="max")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_to_argparse(parser, CONFIG_SPACE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    pl.seed_everything(args.seed, verbose=False)
    x, y = load_digits_data()
    split = np.random.default_rng(12345).permutation(len(x))  # fixed train/validation split
    n_train = 1300
    tensors = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    train = TensorDataset(*(t[split[:n_train]] for t in tensors))
    val = TensorDataset(*(t[split[n_train:]] for t in tensors))
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(val, batch_size=512)

    model = DigitsMLP(args.n_units, args.lr, args.momentum)
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, callbacks=[ReportCallback(["val_error", "trained_epochs"])])
    trainer.fit(model, train_loader, val_loader, ckpt_path=resume_checkpoint_path())


if __name__ == "__main__":
    main()
