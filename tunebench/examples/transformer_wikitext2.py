"""Example training script: a small causal transformer language model on WikiText-2 (word level).

Written the way a tunable PyTorch script should be (``CONFIG_SPACE``, ``add_to_argparse``,
``report`` per epoch after a checkpoint per epoch, resume, data prepared once under a file
lock, GPU when visible; see ``resnet_images.py``, which explains each point). It reports
``epoch``, ``val_ppl`` (the perplexity to minimize), ``val_loss`` (nats per token),
``train_loss`` and ``epoch_time``.

Data: the WikiText-2 folder of ``--data-dir``, else ``$TUNEBENCH_DATA/wikitext-2``. The copy
kept beside this project has only the validation and test splits, so the model trains on
``valid.txt`` and is evaluated on ``test.txt``; given a full copy (with ``train.txt``) it
trains on ``train.txt`` and is evaluated on ``valid.txt``, the usual splits. Words are split on
whitespace with ``<eos>`` at the end of each line; the vocabulary holds every word of the two
splits read (ordered by frequency in the training split), so the perplexity is exact. The token
ids are prepared once and cached (:func:`tunebench.integrations.torch.cached_arrays`).

Model: token embeddings scaled by sqrt(d_model) plus sinusoidal positions, ``n_layers``
pre-norm ``nn.TransformerEncoderLayer`` (4 heads, feed-forward 4 x d_model) with a causal mask
over windows of ``--bptt`` tokens, and an adaptive softmax (``nn.AdaptiveLogSoftmaxWithLoss``,
cutoffs 2,000 and 10,000) as output layer: it computes the exact log-likelihood at a fraction of
the cost of a full softmax over about 18,000 words, which is what makes an epoch affordable on
a CPU. AdamW with gradient clipping (norm 1), a linear warm-up over the first 100 steps, then a
cosine decay to zero at ``--epochs``.

An epoch is one pass over the training split, or ``--max-tokens-per-epoch`` tokens of it
(successive epochs then continue through the split and wrap around); the evaluation covers the
whole evaluation split, or its first ``--max-eval-tokens`` tokens. On a 2-core CPU with one
thread, a full epoch (218k training tokens, 246k evaluation tokens) takes about 28 s for the
smallest model (d_model 64, 1 layer), 46 s for the default configuration (128, 2 layers,
batch size 32) and 160 s for the largest (256, 4 layers, batch size 16); a trial stays under
1.1 GB of memory.
"""

from __future__ import annotations

import argparse
import collections
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
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
from tunebench.space import add_to_argparse, finrange, loguniform, ordinal, randint, uniform

CONFIG_SPACE = {
    "lr": loguniform(1e-4, 1e-2),
    "dropout": uniform(0.0, 0.5),
    "d_model": finrange(64, 256, 4, cast_int=True),
    "n_layers": randint(1, 4),
    "batch_size": ordinal([16, 32, 64]),
    "epochs": 20,
}
METRIC, MODE, RESOURCE_ATTR, MAX_RESOURCE_ATTR = "val_ppl", "min", "epoch", "epochs"

DATA_ENV = "TUNEBENCH_DATA"
FOLDER = "wikitext-2"
EOS = "<eos>"
CUTOFFS = (2000, 10000)
EVAL_BATCH_SIZE = 32
WARMUP_STEPS = 100

log = logging.getLogger("transformer_wikitext2")


class DataError(SystemExit):
    """A dataset that cannot be found or read: the script ends with this message (exit code 1)."""


# --------------------------------------------------------------------------- data


def data_folder(data_dir: Path | None) -> Path:
    """The WikiText-2 folder: ``--data-dir``, else ``$TUNEBENCH_DATA/wikitext-2``, else
    ``../shared/data/wikitext-2`` beside the project checkout.

    Raises:
        DataError: the folder (or its ``valid.txt`` and ``test.txt``) is missing; the message
            names ``--data-dir`` and ``TUNEBENCH_DATA``.
    """
    if data_dir is not None:
        folder, source = data_dir, f"--data-dir {data_dir}"
        if (folder / FOLDER).is_dir() and not (folder / "valid.txt").is_file():
            folder = folder / FOLDER
    elif os.environ.get(DATA_ENV):
        folder = Path(os.environ[DATA_ENV]).expanduser() / FOLDER
        source = f"{DATA_ENV}={os.environ[DATA_ENV]}"
    else:
        folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / FOLDER
        source = f"{DATA_ENV} is not set"
    hint = (f"pass --data-dir with the WikiText-2 folder (valid.txt and test.txt, or train.txt, valid.txt "
            f"and test.txt), or set {DATA_ENV} to the folder holding {FOLDER}/")
    if not folder.is_dir():
        raise DataError(f"WikiText-2 not found: {folder} does not exist ({source}); {hint}")
    needed = ("train.txt", "valid.txt") if (folder / "train.txt").is_file() else ("valid.txt", "test.txt")
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise DataError(f"WikiText-2 folder {folder} lacks {', '.join(missing)} ({source}); {hint}")
    return folder


def _words(path: Path) -> list[str]:
    words: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words.extend(line.split())
            words.append(EOS)
    return words


def load_corpus(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(training ids, evaluation ids, vocabulary, description of the splits), tokenized once and
    cached."""
    full = (folder / "train.txt").is_file()
    train_path, eval_path = (folder / "train.txt", folder / "valid.txt") if full else \
        (folder / "valid.txt", folder / "test.txt")

    def build() -> dict[str, np.ndarray]:
        train_words, eval_words = _words(train_path), _words(eval_path)
        counts = collections.Counter(train_words)
        vocab = [w for w, _ in counts.most_common()]
        vocab += [w for w, _ in collections.Counter(w for w in eval_words if w not in counts).most_common()]
        index = {w: i for i, w in enumerate(vocab)}
        return {"train": np.fromiter((index[w] for w in train_words), dtype=np.int32, count=len(train_words)),
                "eval": np.fromiter((index[w] for w in eval_words), dtype=np.int32, count=len(eval_words)),
                "vocab": np.array(vocab, dtype=str)}

    try:
        arrays = cached_arrays(f"wikitext2-{'full' if full else 'valid-test'}", build, sources=(train_path, eval_path))
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read WikiText-2 from {folder}: {err}") from None
    splits = f"trains on {train_path.name}, evaluates on {eval_path.name}"
    return arrays["train"].astype(np.int64), arrays["eval"].astype(np.int64), arrays["vocab"].tolist(), splits


def batchify(ids: np.ndarray, batch_size: int, device: torch.device) -> torch.Tensor:
    """The token stream cut into ``batch_size`` contiguous rows (the remainder is dropped)."""
    n = len(ids) // batch_size
    if n < 2:
        raise DataError(f"{len(ids)} tokens are too few for a batch size of {batch_size}")
    return torch.from_numpy(ids[: n * batch_size].reshape(batch_size, n)).to(device)


# --------------------------------------------------------------------------- model


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


class TransformerLM(nn.Module):
    """Causal transformer over windows of at most ``max_len`` tokens with an adaptive softmax."""

    positions: torch.Tensor  # a buffer (register_buffer in __init__)

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, dropout: float, max_len: int,
                 nhead: int = 4) -> None:
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        cutoffs = [c for c in CUTOFFS if c < vocab_size - 1] or [max(1, vocab_size // 2)]
        self.head = nn.AdaptiveLogSoftmaxWithLoss(d_model, vocab_size, cutoffs=cutoffs, div_value=4.0)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood (nats) of the next tokens ``y`` given the windows ``x``."""
        length = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=x.device)
        h = self.dropout(self.embed(x) * math.sqrt(self.d_model) + self.positions[:length])
        h = self.norm(self.encoder(h, mask=mask, is_causal=True))
        return self.head(h.reshape(-1, self.d_model), y.reshape(-1)).loss


# --------------------------------------------------------------------------- training


def windows(data: torch.Tensor, bptt: int) -> list[int]:
    """Start columns of the ``bptt``-token windows of a batchified stream."""
    return list(range(0, data.shape[1] - 1, bptt))


def train_epoch(model, optimizer, scheduler, data, starts, bptt, epoch) -> float:
    """Train on the windows starting at ``starts``; the mean training loss per token."""
    model.train()
    total = torch.zeros((), device=data.device)
    tokens = 0
    for i, start in enumerate(starts):
        x = data[:, start:start + bptt]
        y = data[:, start + 1:start + 1 + bptt]
        x = x[:, : y.shape[1]]
        loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        total += loss.detach() * y.numel()
        tokens += y.numel()
        if i % 10 == 9:  # an early exit of a diverged run
            check_finite(total, epoch=epoch)
    return check_finite(total / tokens, epoch=epoch)


@torch.no_grad()
def evaluate(model, data, bptt) -> float:
    """Mean negative log-likelihood per token of the whole batchified stream ``data``."""
    model.eval()
    total = torch.zeros((), device=data.device, dtype=torch.float64)
    tokens = 0
    for start in windows(data, bptt):
        x = data[:, start:start + bptt]
        y = data[:, start + 1:start + 1 + bptt]
        x = x[:, : y.shape[1]]
        total += model(x, y).double() * y.numel()
        tokens += y.numel()
    return float(total) / tokens


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_to_argparse(parser, CONFIG_SPACE)
    add_checkpoint_argument(parser)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"the WikiText-2 folder (default: ${DATA_ENV}/{FOLDER})")
    parser.add_argument("--bptt", type=int, default=35, help="tokens per training window (default: 35)")
    parser.add_argument("--max-tokens-per-epoch", type=int, default=None,
                        help="train on this many tokens per epoch (default: the whole training split)")
    parser.add_argument("--max-eval-tokens", type=int, default=None,
                        help="evaluate on the first N tokens of the evaluation split (default: all of it)")
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
    for name in ("bptt", "epochs", "max_tokens_per_epoch", "max_eval_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.d_model % 4:
        raise SystemExit(f"--d_model must be a multiple of the 4 attention heads, got {args.d_model}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.deterministic:
        set_deterministic()
    seed_everything(args.seed)
    device = pick_device(args.device)

    train_ids, eval_ids, vocab, splits = load_corpus(data_folder(args.data_dir))
    if args.max_eval_tokens is not None:
        eval_ids = eval_ids[: args.max_eval_tokens + 1]
    train_data = batchify(train_ids, args.batch_size, device)
    eval_data = batchify(eval_ids, min(EVAL_BATCH_SIZE, max(1, len(eval_ids) // 2)), device)
    all_starts = windows(train_data, args.bptt)
    steps_per_epoch = len(all_starts)
    if args.max_tokens_per_epoch is not None:
        steps_per_epoch = max(1, min(steps_per_epoch, args.max_tokens_per_epoch // (args.batch_size * args.bptt)))
    width = train_data.shape[1] - 1  # the targets of a row
    epoch_tokens = args.batch_size * sum(min(args.bptt, width - s) for s in all_starts[:steps_per_epoch])
    log.info("WikiText-2 (%s): %d words, %d training tokens (%d per epoch), %d evaluation tokens, on %s, "
             "%d thread(s)", splits, len(vocab), len(train_ids), epoch_tokens, eval_data.numel(), device,
             torch.get_num_threads())

    model = TransformerLM(len(vocab), args.d_model, args.n_layers, args.dropout, args.bptt).to(device)
    try:  # the fused implementation is several times faster on a CPU too
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, fused=True)
    except (RuntimeError, ValueError):  # a device without it
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    total_steps = args.epochs * steps_per_epoch

    def lr_factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / WARMUP_STEPS)
        return warmup * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    start_epoch = 1
    state = load_training_state(model, optimizer, scheduler, directory=args.checkpoint_dir)
    if state is not None:
        start_epoch = state["epoch"] + 1
        log.info("resuming after epoch %d from %s", state["epoch"], state["path"])
        report(**state["extra"]["metrics"])  # again, in case the last run died before reporting it

    for epoch in range(start_epoch, args.epochs + 1):
        t0 = time.perf_counter()
        first = (epoch - 1) * steps_per_epoch
        starts = [all_starts[(first + i) % len(all_starts)] for i in range(steps_per_epoch)]
        train_loss = train_epoch(model, optimizer, scheduler, train_data, starts, args.bptt, epoch)
        val_loss = check_finite(evaluate(model, eval_data, args.bptt), "evaluation loss", epoch=epoch)
        metrics = {"epoch": epoch, "val_ppl": math.exp(min(val_loss, 700.0)), "val_loss": val_loss,
                   "train_loss": train_loss, "epoch_time": time.perf_counter() - t0}
        save_training_state(model, optimizer, scheduler, epoch=epoch, extra={"metrics": metrics},
                            directory=args.checkpoint_dir)
        log.info("epoch %d: train_loss %.3f, val_loss %.3f, val_ppl %.1f (%.1f s)", epoch, train_loss, val_loss,
                 metrics["val_ppl"], metrics["epoch_time"])
        report(**metrics)


if __name__ == "__main__":
    main()
