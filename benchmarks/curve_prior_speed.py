"""Speed of the learning-curve prior (``tunebench.models.curve_prior``), its statistics, and a plot.

Prints, for a few batch shapes, tasks per second and curve points per second (best of
``--repeats`` runs) on CPU (and on CUDA when available); then statistics of the prior's curves
(start and end errors, the share of the improvement reached at 2/5/10/26 of 52 budgets, the share
of curves that end above their minimum, the correlation over a task's configs of early errors with
the last), for every version of its settings (``PRIOR_SETTINGS``), that can be set beside
LCBench's development tasks' with ``--lcbench`` (YAHPO lcbench surrogate, needs the yahpo extra
and ``$TUNEBENCH_DATA``); ``--plot FILE`` draws
nine sampled tasks (a few configs each, and a pair of nearby configs in each task) to a PNG.

    .venv/bin/python benchmarks/curve_prior_speed.py [--repeats R] [--threads T] [--plot FILE] [--lcbench]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tunebench.models.curve_prior import PRIOR_SETTINGS, sample_curve_tasks

SHAPES = [(64, 50, 52), (16, 1000, 52), (256, 20, 50)]  # (tasks, configs per task, budgets)
CHECKPOINTS = (2, 5, 10, 26)  # of 52 budgets


def best_time(fn: Callable[[], Any], repeats: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """The smallest of ``repeats`` timings of ``fn()`` on ``clock``, in seconds (the least disturbed run)."""
    best = math.inf
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best

#: budgets (of 52) whose errors are correlated with the last budget's over a task's configs
CORRELATION_BUDGETS = (1, 2, 5, 13, 26)


def _budget_index(c: int, n: int) -> int:
    """The index among ``n`` budgets of budget ``c`` of 52."""
    return min(n - 1, round(c / 52 * n) - 1)


def curve_statistics(err: np.ndarray, label: str) -> None:
    """Print statistics of error curves ``err`` (tasks, configs, budgets), lower is better."""
    first, last, best = err[..., 0], err[..., -1], err.min(axis=-1)
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    print(f"{label}: {err.shape[0]} tasks x {err.shape[1]} configs x {err.shape[2]} budgets")
    print(f"  error at the first budget, quantiles 5/25/50/75/95 %: {np.round(np.quantile(first, q), 3)}")
    print(f"  error at the last budget,  quantiles 5/25/50/75/95 %: {np.round(np.quantile(last, q), 3)}")
    print(f"  per-task spread (std over configs), median over tasks: first {np.median(first.std(axis=1)):.3f}, "
          f"last {np.median(last.std(axis=1)):.3f}")
    drop = first - best
    ok = drop > 1e-3
    frac = (first[..., None] - err) / np.where(ok, drop, 1.0)[..., None]
    n = err.shape[-1]
    reached = ", ".join(f"{c}/52: {np.median(frac[..., _budget_index(c, n)][ok]):.2f}" for c in CHECKPOINTS)
    print(f"  median share of the improvement reached at budget {reached}")
    print("  share of curves ending above their best by more than 0.01 / 0.05: "
          f"{np.mean(last - best > 0.01):.3f} / {np.mean(last - best > 0.05):.3f}")
    corr = []
    for c in CORRELATION_BUDGETS:
        k = _budget_index(c, n)
        per_task = [np.corrcoef(e[:, k], e[:, -1])[0, 1] for e in err if e[:, k].std() > 1e-6 and e[:, -1].std() > 1e-6]
        corr.append(f"{c}/52: {np.median(per_task):.2f}")
    print(f"  correlation over a task's configs of the error at budget k and at the last, median over tasks: "
          f"{', '.join(corr)}")


def lcbench_curves(n_configs: int) -> np.ndarray:
    """LCBench validation error curves (1 - val_accuracy / 100) of random configs, on the
    development tasks (the prior's settings may be chosen on these only)."""
    os.environ.setdefault("HOME", tempfile.mkdtemp())  # yahpo writes its settings under HOME
    from tunebench.blackboxes.yahpo import LCBENCH_DEVELOPMENT_TASKS, YahpoBlackbox
    from tunebench.space import sample_configs

    rng = np.random.default_rng(0)
    out = []
    for instance in LCBENCH_DEVELOPMENT_TASKS:
        bb = YahpoBlackbox("lcbench", instance)
        values = bb.evaluate(sample_configs(bb.config_space, rng, n_configs), seed=0)
        out.append(1.0 - values[:, :, bb.objectives.index("val_accuracy")] / 100.0)
    return np.stack(out)


def plot(path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    batch = sample_curve_tasks(9, 400, 52, seed=3)
    fig, axes = plt.subplots(3, 3, figsize=(15, 12), sharex=True)
    fid = batch.fidelities.numpy()
    for b, ax in enumerate(axes.flat):
        cfg = batch.configs[b]
        # a pair of nearby configs (the closest pair among the first 400), drawn thick in black
        dist = torch.cdist(cfg, cfg) + torch.eye(len(cfg)) * 1e9
        i, j = divmod(int(dist.argmin()), len(cfg))
        # nine curves that do not diverge and up to three that do
        chosen = (torch.nonzero(~batch.diverges[b]).flatten()[:9].tolist()
                  + torch.nonzero(batch.diverges[b]).flatten()[:3].tolist())
        palette = ["C0", "C1", "C2", "C4", "C5", "C6", "C7", "C8", "C9"]  # no red: red marks divergence
        for k, c in enumerate(chosen):
            color = "tab:red" if batch.diverges[b, c] else palette[k % len(palette)]
            ax.plot(fid, batch.observed[b, c].numpy(), ".", ms=2.5, color=color, alpha=0.6)
            ax.plot(fid, batch.curves[b, c].numpy(), "-", lw=1, color=color)
        for c, style in ((i, "-"), (j, "--")):
            ax.plot(fid, batch.curves[b, c].numpy(), style, lw=2.2, color="black")
        n_div = int(batch.diverges[b].sum())
        ax.set_title(f"task {b}: {int(batch.n_hparams[b])} hparams, start {float(batch.start[b]):.2f}, "
                     f"{n_div}/400 diverge\nblack: nearest pair, distance {float(dist[i, j]):.3f}", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
    for ax in axes[-1]:
        ax.set_xlabel("budget (fraction of the largest)")
    for ax in axes[:, 0]:
        ax.set_ylabel("error (lower is better)")
    fig.suptitle("tunebench curve prior: 12 curves per task (red: diverging), noiseless lines, observed dots")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timings per figure (the best is printed)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--plot", metavar="FILE", help="draw nine sampled tasks to this PNG")
    parser.add_argument("--lcbench", action="store_true", help="print LCBench's curve statistics beside the prior's")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, best of {args.repeats} runs")
    for device in devices:
        for B, C, F in SHAPES:
            sample_curve_tasks(B, C, F, seed=0, device=device)  # warm-up

            def run(B: int = B, C: int = C, F: int = F, device: str = device) -> None:
                sample_curve_tasks(B, C, F, seed=1, device=device)
                if device == "cuda":
                    torch.cuda.synchronize()

            s = best_time(run, args.repeats)
            points = B * C * F
            print(f"{device:4s} B={B:4d} tasks x C={C:5d} configs x F={F:3d} budgets: {s * 1e3:8.1f} ms wall, "
                  f"{B / s:9.1f} tasks/s, {points / s / 1e6:6.2f} M curve points/s "
                  f"({points / s / 1000:9.0f} tasks of 1000 points/s)")
            if device == "cpu":  # CPU time of one thread: a figure that other load on the machine disturbs less
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                cpu = best_time(run, args.repeats, time.process_time)
                wall = best_time(run, args.repeats)
                torch.set_num_threads(threads)
                print(f"     one thread: {wall * 1e3:8.1f} ms wall, {cpu * 1e3:8.1f} ms CPU time, "
                      f"{points / cpu / 1e6:6.2f} M curve points/s of CPU time "
                      f"({points / cpu / 1000:9.0f} tasks of 1000 points/s)")

    for version, settings in sorted(PRIOR_SETTINGS.items()):
        batch = sample_curve_tasks(64, 200, 52, seed=0, settings=settings)
        curve_statistics(batch.curves.numpy().astype(np.float64), f"prior version {version} (noiseless curves)")
        transient = float((batch.transient > 0).float().mean())
        print(f"  diverging share {batch.diverges.float().mean():.3f}; noise std median "
              f"{batch.noise_std.median():.4f}; tasks with an early transient {transient:.2f}")
    if args.lcbench:
        curve_statistics(lcbench_curves(200), "LCBench val error (YAHPO surrogate), development tasks")
    if args.plot:
        plot(args.plot)


if __name__ == "__main__":
    main()
