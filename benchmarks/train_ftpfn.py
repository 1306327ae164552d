"""Train the learning-curve PFN (FT-PFN design) on tunebench's curve prior and export its weights.

    python benchmarks/train_ftpfn.py --device cpu --steps 2000 --minutes 15 --out /tmp/ftpfn \
        --preset cpu
    python benchmarks/train_ftpfn.py --device cuda --steps 20000 --minutes 8 --out /tmp/ftpfn-gpu

It checkpoints to ``OUT/checkpoint.pt`` every ``--checkpoint-every`` seconds (and at the end) and
resumes from it when started again with the same ``--out`` (SIGTERM or Ctrl-C: it checkpoints and
exports before exiting); it logs the training loss (mean over
the last steps) and a validation loss on fixed held-out prior batches; at the end it writes
``OUT/ftpfn.npz`` + ``OUT/ftpfn.json`` (the format :mod:`tunebench.models.pfn` loads; copy them to
``tunebench/models/weights/ftpfn-vN.{npz,json}`` and point ``tunebench.models.pfn.default_weights_path``
at them to ship them).  Losses are the mean negative log
density of held-out values under the predicted bar distribution (a uniform prediction on [0, 1]
scores 0; lower is better).  Training stops at ``--steps`` steps or after ``--minutes`` minutes of
training (summed over resumed runs), whichever comes first; the learning rate warms up, then
follows a cosine to 0 along whichever of the two budgets is used up faster.

``--init WEIGHTS.npz`` starts from exported weights instead of random ones (a warm restart of
their training: their architecture, a fresh optimizer and learning-rate schedule); the exported
sidecar then counts their steps and minutes too, and lists their training phases before this one:

    python benchmarks/train_ftpfn.py --init tunebench/models/weights/ftpfn-v4.npz --seq-len 256 \
        --lr 3e-4 --minutes 60 --steps 40000 --threads 1 --out /tmp/ftpfn-v5

The prior is the current version's (:data:`~tunebench.models.curve_prior.PRIOR_VERSION`, recorded in
the sidecar with its settings); ``--prior KEY=VALUE`` (repeatable, JSON values) changes one of its
:class:`~tunebench.models.curve_prior.PriorSettings` for an experiment, e.g. ``--prior
transient_prob=0 --prior 'roughness=[0.5,10]'``; the sidecar records the settings used.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunebench.errors import UserError
from tunebench.models.curve_prior import PRIOR_VERSION, PriorSettings
from tunebench.models.pfn import load_weights, save_weights
from tunebench.models.pfn_train import CurvePFN, PFNConfig, batch_loss, sample_training_batch, state_to_arrays

logger = logging.getLogger("train_ftpfn")

PRESETS = {
    # the "real" model (GPU): ~0.95M parameters
    "gpu": (PFNConfig(), {"batch_size": 32, "seq_len": 512, "lr": 5e-4}),
    # a CPU model (~0.54M parameters) for a shared 2-core machine
    "cpu": (PFNConfig(d_model=96, n_layers=3, d_ff=192, d_head_mlp=192),
            {"batch_size": 8, "seq_len": 128, "lr": 1e-3}),
    # a tiny smoke model (tests, a minute of CPU)
    "smoke": (PFNConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, d_head_mlp=64, n_bins=100, n_ids=256),
              {"batch_size": 4, "seq_len": 64, "lr": 2e-3}),
}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _lr(step: int, steps: int, time_used: float, base: float) -> float:
    """Linear warm-up over the first 5 % of the steps, then a cosine decay to 0 along the larger of
    the fractions of the steps and of the time budget used (so a run cut by time anneals too)."""
    warm = max(1, steps // 20)
    if step < warm:
        return base * (step + 1) / warm
    progress = max((step - warm) / max(1, steps - warm), time_used)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _after(before: dict[str, Any], run: dict[str, Any], name: str) -> dict[str, Any]:
    """The training record's totals and phases for a run started from weights trained as ``before``
    (their sidecar's ``training``; ``name``: their file)."""
    steps0, minutes0 = int(before.get("steps") or 0), float(before.get("minutes") or 0.0)
    phases = list(before.get("phases") or [{"steps": [0, steps0], "minutes": [0, minutes0],
                                            "batch_size": before.get("batch_size"), "seq_len": before.get("seq_len"),
                                            "lr": before.get("lr")}])
    phases.append({"steps": [steps0, steps0 + run["steps"]],
                   "minutes": [minutes0, round(minutes0 + run["minutes"], 2)], "batch_size": run["batch_size"],
                   "seq_len": run["seq_len"], "lr": run["lr"], "torch_threads": torch.get_num_threads(),
                   "prior_version": PRIOR_VERSION, "prior": run["prior"],
                   "note": f"warm restart from {name}"})
    return {"steps": steps0 + run["steps"], "steps_planned": steps0 + run["steps_planned"],
            "minutes": round(minutes0 + run["minutes"], 2), "phases": phases}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (the LR schedule's length)")
    p.add_argument("--minutes", type=float, default=15.0,
                   help="training-time budget, summed over resumed runs (the LR anneals to it)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="default: gpu on cuda, cpu on cpu")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--checkpoint-every", type=float, default=60.0, help="seconds")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--val-every", type=int, default=200)
    p.add_argument("--init", type=Path, default=None,
                   help="start from these exported weights (.npz with its .json sidecar): a warm restart")
    p.add_argument("--prior", action="append", default=[], metavar="KEY=VALUE",
                   help="a field of curve_prior.PriorSettings (JSON value), e.g. transient_prob=0.7")
    args = p.parse_args(argv)
    try:
        prior = PriorSettings(**{k: json.loads(v) for k, _, v in (item.partition("=") for item in args.prior)})
    except (TypeError, ValueError, UserError) as exc:
        print(f"tunebench: error: --prior {' '.join(args.prior)}: {exc}; give KEY=VALUE with KEY a field of "
              "PriorSettings and VALUE JSON", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("tunebench: error: --device cuda but torch sees no GPU; use --device cpu", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cfg, hp = PRESETS[args.preset or ("gpu" if args.device == "cuda" else "cpu")]
    init = load_weights(args.init) if args.init is not None else None
    if init is not None:
        cfg = PFNConfig(**init.architecture)
    bs = args.batch_size or hp["batch_size"]
    seq = args.seq_len or hp["seq_len"]
    base_lr = args.lr or hp["lr"]
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "checkpoint.pt"

    torch.manual_seed(args.seed)
    model = CurvePFN(cfg).to(dev)
    if init is not None:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in init.arrays.items()})
        logger.info("starting from %s (%s steps, %s min trained)", args.init, init.training.get("steps"),
                    init.training.get("minutes"))
    opt = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=0.0)
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    step, elapsed, history = 0, 0.0, {"train": [], "val": []}
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if ck["config"] != cfg.to_dict():
            print(f"tunebench: error: {ckpt_path} holds another architecture; use another --out", file=sys.stderr)
            return 2
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"].to("cpu") if dev.type == "cpu" else ck["gen"])
        step, elapsed, history = ck["step"], ck["elapsed"], ck["history"]
        logger.info("resumed from %s at step %d (%.1f min trained)", ckpt_path, step, elapsed / 60)
    n_params = sum(q.numel() for q in model.parameters())
    logger.info("model %s: %d parameters; batch %d x %d tokens; device %s", cfg.to_dict(), n_params, bs, seq, dev)

    val_gen = torch.Generator(device=dev)
    val_gen.manual_seed(10_000 + args.seed)
    val_batches = [sample_training_batch(bs, seq, generator=val_gen, cfg=cfg, device=dev, prior=prior)
                   for _ in range(8)]

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            v = float(np.mean([batch_loss(model, b).item() for b in val_batches]))
        model.train()
        return v

    def save_checkpoint() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(), "step": step,
                    "elapsed": elapsed, "history": history, "config": cfg.to_dict()}, tmp)
        os.replace(tmp, ckpt_path)

    stop = []  # SIGTERM / SIGINT: finish the step, checkpoint, export, exit
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    t_run = time.monotonic()
    t_last_ckpt = t_run
    recent: list[float] = []
    budget_s = args.minutes * 60
    while step < args.steps and elapsed < budget_s and not stop:
        t0 = time.monotonic()
        for group in opt.param_groups:
            group["lr"] = _lr(step, args.steps, elapsed / budget_s, base_lr)
        batch = sample_training_batch(bs, seq, generator=gen, cfg=cfg, device=dev, prior=prior)
        loss = batch_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        recent.append(loss.item())
        elapsed += time.monotonic() - t0
        if step % args.log_every == 0:
            history["train"].append([step, float(np.mean(recent))])
            logger.info("step %d  train %.4f  lr %.2e  %.2f s/step  %.1f min", step, np.mean(recent),
                        opt.param_groups[0]["lr"], elapsed / step, elapsed / 60)
            recent = []
        if step % args.val_every == 0:
            history["val"].append([step, validate()])
            logger.info("step %d  val %.4f", step, history["val"][-1][1])
        if time.monotonic() - t_last_ckpt > args.checkpoint_every:
            save_checkpoint()
            t_last_ckpt = time.monotonic()
    if recent and (len(recent) * 2 >= args.log_every or not history["train"]):  # not a noisy few steps
        history["train"].append([step, float(np.mean(recent))])
    if not history["val"] or history["val"][-1][0] != step:
        history["val"].append([step, validate()])
    save_checkpoint()
    training = {
        "steps": step, "steps_planned": args.steps, "minutes": round(elapsed / 60, 2), "device": str(dev),
        "hardware": (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                     else f"{_cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"),
        "batch_size": bs, "seq_len": seq, "lr": base_lr, "seed": args.seed, "n_parameters": n_params,
        "final_train_loss": history["train"][-1][1] if history["train"] else None,
        "final_val_loss": history["val"][-1][1], "history": history, "prior": prior.to_dict(),
    }
    if init is not None:
        training.update(_after(init.training, training, args.init.name))
    arrays = dict(state_to_arrays(model))
    save_weights(args.out / "ftpfn.npz", arrays, architecture=cfg.to_dict(), prior_version=PRIOR_VERSION,
                 training=training)
    logger.info("wrote %s (+ .json): step %d, train %.4f, val %.4f", args.out / "ftpfn.npz", step,
                training["final_train_loss"] or float("nan"), training["final_val_loss"])
    print(json.dumps({k: v for k, v in training.items() if k != "history"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
