"""Example training script: a tiny BERT classifier (built from a config, randomly initialised) on
synthetic token sequences, trained with the Hugging Face ``Trainer`` and tuned by tunebench.

It shows :mod:`tunebench.integrations.transformers` (``pip install 'tunebench[transformers]'``);
nothing is downloaded::

    tunebench run --script tunebench/examples/hf_tiny.py --method ASHA-promotion --max-trials 8

* the task: does token 5 occur in a sequence of 16 tokens (vocabulary of 32)? 96 training and 64
  validation sequences, drawn with a fixed seed;
* ``ReportCallback(["eval_error", "eval_trained_epochs"])`` reports each evaluation (once per
  epoch) with ``epoch``, after the Trainer wrote its checkpoint into the trial's checkpoint folder
  (``output_dir=trial_output_dir()``);
* ``trainer.train(resume_from_checkpoint=resume_checkpoint_path())``: a trial paused by
  promotion-type ASHA continues from its last checkpoint;
* ``trained_epochs`` is a counter in the model (a buffer, saved with the weights), incremented when
  a training epoch begins: it equals ``epoch`` in every report when no epoch is trained twice or
  skipped across pauses.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    EvalPrediction,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from tunebench.integrations.transformers import ReportCallback, resume_checkpoint_path, trial_output_dir
from tunebench.space import add_to_argparse, loguniform, ordinal, uniform

CONFIG_SPACE = {
    "learning_rate": loguniform(1e-4, 3e-2),
    "weight_decay": uniform(0.0, 0.1),
    "per_device_train_batch_size": ordinal([8, 16, 32]),
    "hidden_size": ordinal([16, 32]),
    "epochs": 9,
}
METRIC, MODE, RESOURCE_ATTR, MAX_RESOURCE_ATTR = "eval_error", "min", "epoch", "epochs"
VOCAB, LENGTH = 32, 16


class SequenceDataset(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """``n`` random sequences labelled 1 when token 5 occurs in them."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.ids = torch.as_tensor(rng.integers(3, VOCAB, size=(n, LENGTH)))
        self.labels = (self.ids == 5).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


class CountEpochs(TrainerCallback):
    """Increments the model's ``trained_epochs`` buffer when a training epoch begins."""

    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: torch.nn.Module | None = None, **kwargs: Any) -> None:
        assert model is not None
        model.get_buffer("trained_epochs").add_(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_to_argparse(parser, CONFIG_SPACE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=args.hidden_size, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=2 * args.hidden_size, max_position_embeddings=LENGTH)
    config.num_labels = 2
    model = BertForSequenceClassification(config)
    model.register_buffer("trained_epochs", torch.zeros((), dtype=torch.long))

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        error = float(np.mean(np.argmax(prediction.predictions, axis=1) != prediction.label_ids))
        return {"error": error, "trained_epochs": int(model.get_buffer("trained_epochs"))}

    training_args = TrainingArguments(
        output_dir=trial_output_dir("hf-output"), num_train_epochs=args.epochs,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        per_device_train_batch_size=args.per_device_train_batch_size, per_device_eval_batch_size=64,
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, logging_strategy="no",
        report_to="none", disable_tqdm=True, use_cpu=True, seed=args.seed, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=training_args, train_dataset=SequenceDataset(96, seed=1),
                      eval_dataset=SequenceDataset(64, seed=2), compute_metrics=compute_metrics,
                      callbacks=[CountEpochs(), ReportCallback(["eval_error", "eval_trained_epochs"])])
    trainer.train(resume_from_checkpoint=resume_checkpoint_path())


if __name__ == "__main__":
    main()
