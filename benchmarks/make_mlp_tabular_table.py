"""Make the tabulated benchmark ``mlp_tabular-tab`` shipped in ``tunebench/blackboxes/data``.

Runs the real ``mlp_tabular`` benchmark (numpy MLP on scikit-learn's breast cancer data) over 64
sampled configurations x 2 seeds x 30 epochs with tunebench's own tabulation, the same as::

    tunebench tabulate --benchmark mlp_tabular --num-configs 64 --seeds 2 \\
        --output tunebench/blackboxes/data/mlp_tabular-tab --work-dir $TMPDIR/tunebench-mlp_tabular-run

It takes two to four minutes on 2 cores. The runs (logs, event log) stay in ``--work-dir``; running
the script again continues an interrupted tabulation there. Prints the table's size and the time
taken.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from tunebench.benchmarks import PACKAGE_TABLES_DIR
from tunebench.tabulate import tabulate_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-configs", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=PACKAGE_TABLES_DIR / "mlp_tabular-tab")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "tunebench-mlp_tabular-run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    # prepare the dataset cache first, so that the first trials' elapsed times do not include it
    from tunebench.examples.mlp_tabular import load_dataset

    load_dataset("breast_cancer", None)
    t0 = time.perf_counter()
    result = tabulate_benchmark("mlp_tabular", args.num_configs, args.seeds, n_workers=args.n_workers,
                                output_dir=args.output, work_dir=args.work_dir)
    took = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in args.output.iterdir() if p.is_file())
    print(f"{result.output_dir}: {result.n_configs} configurations x {result.n_seeds} seeds, "
          f"{result.n_completed} runs completed, {result.n_failed} failed, {result.n_missing} missing; "
          f"{size / 1024:.0f} KiB; {took:.0f} s ({result.n_started} runs started now)")


if __name__ == "__main__":
    main()
