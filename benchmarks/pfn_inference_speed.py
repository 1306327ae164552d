"""Numpy inference time of the learning-curve PFN (issue 19: a freeze-thaw decision <= 50 ms at
1000 observations, with the context capped).

    python benchmarks/pfn_inference_speed.py [--weights PATH] [--repeats 7] [--threads 1]

For context sizes 100 / 300 / 1000 and 1000 / 2000 query points it prints the median wall time of
conditioning on the context (once per decision), of predicting the queries, and of one decision
(condition + predict + ``log_prob_below``), for the shipped weights (or ``--weights``) and for the
"gpu" architecture of ``benchmarks/train_ftpfn.py`` with random weights (same cost as trained
ones).  Inputs: a task of 1..10 hyperparameters, curves observed up to random budgets.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=None, help="a .npz (default: the shipped ftpfn-v4)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (set before numpy loads)")
    p.add_argument("--contexts", type=int, nargs="+", default=[100, 300, 1000])
    p.add_argument("--queries", type=int, nargs="+", default=[1000, 2000])
    args = p.parse_args(argv)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np

    from tunebench.models.pfn import PFNSurrogate, PFNWeights, _expected_shapes, load_weights

    shipped = load_weights(args.weights)
    gpu_arch = {"d_model": 128, "n_heads": 4, "n_layers": 4, "d_ff": 256, "n_bins": 1000, "n_ids": 1024,
                "max_hparams": 10, "d_head_mlp": 256}
    rng = np.random.default_rng(0)
    arrays = {k: (rng.normal(0, 0.05, s)).astype(np.float32) for k, s in _expected_shapes(gpu_arch).items()}
    arrays["borders"] = np.linspace(0, 1, gpu_arch["n_bins"] + 1, dtype=np.float32)
    random_gpu = PFNWeights(arrays=arrays, architecture=gpu_arch, prior_version=1, training={}, sha256="-",
                            path=Path("random"))
    print(f"threads: {args.threads or 'default'}; repeats {args.repeats}; median milliseconds")
    for label, w in (("shipped " + str(shipped.path.name), shipped), ("gpu architecture (random)", random_gpu)):
        n_par = sum(a.size for k, a in w.arrays.items() if k != "borders")
        print(f"\n{label}: {w.architecture}, {n_par} parameters")
        print(f"{'context':>8} {'queries':>8} {'condition':>10} {'predict':>9} {'decision':>9}")
        d = 5
        for n_ctx in args.contexts:
            n_curves = max(1, n_ctx // 5)
            curve = rng.integers(0, n_curves, n_ctx)
            configs = rng.random((n_curves, d))
            X, t, y = configs[curve], rng.integers(1, 52, n_ctx) / 52, rng.random(n_ctx)
            for n_q in args.queries:
                Xq = np.concatenate([configs, rng.random((max(0, n_q - n_curves), d))])[:n_q]
                tq = np.ones(n_q)
                s = PFNSurrogate(w)
                times = {"condition": [], "predict": [], "decision": []}
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    s.fit(X, t, y, curve, n_total=n_ctx)
                    t1 = time.perf_counter()
                    pred = s.predict(Xq, tq)
                    pred.log_prob_below(0.1)  # as FTBO ranks its candidates
                    t2 = time.perf_counter()
                    times["condition"].append(t1 - t0)
                    times["predict"].append(t2 - t1)
                    times["decision"].append(t2 - t0)
                med = {k: 1000 * float(np.median(v)) for k, v in times.items()}
                print(f"{n_ctx:>8} {n_q:>8} {med['condition']:>10.1f} {med['predict']:>9.1f} {med['decision']:>9.1f}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
