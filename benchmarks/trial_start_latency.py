"""Trial start and resume latency, cold vs warm, for scripts and functions (issue 14).

Measured: the time from the backend's ``start()`` (and ``resume()``) of a trial to the first
line of user code after ``import torch`` (the script's, or the tuned function's first line; its
module imports torch at the top). Cold: a new interpreter per run (``warm_start=False``), which
imports torch every time. Warm: each run is forked from the prepared interpreter, which imported
torch once (its start-up is not counted: it happens once per experiment, like the first cold
start; its import time is printed).

Printed: median and spread of each, and the cold/warm ratio. Target: warm <= 150 ms on the
2-core CPU machine (cold ~3 s).

    python benchmarks/trial_start_latency.py [--runs 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tunebench.backends.local import LocalBackend
from tunebench.backends.warm import FunctionTarget
from tunebench.types import EventKind, Trial

SCRIPT = """
import argparse, time
import torch
first_line = time.time()  # the first line of user code after import torch
from tunebench import report
p = argparse.ArgumentParser()
p.add_argument("--hold", type=float, default=0.0)
args = p.parse_args()
report(epoch=1, first_line=first_line)
time.sleep(args.hold)  # a trial still running when it is paused
"""

FUNCTION_MODULE = """
import time
import torch
from tunebench import report

def train(config):
    first_line = time.time()
    report(epoch=1, first_line=first_line)
    time.sleep(config["hold"])
"""


def _first_line(backend: LocalBackend, timeout: float = 120.0) -> tuple[float, int]:
    """Poll until the first result; its ``first_line`` stamp and the trial id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in backend.poll(1.0):
            if event.kind is EventKind.RESULT:
                return float(event.result["first_line"]), event.trial_id
            if event.kind is EventKind.FAILED:
                raise RuntimeError(event.error)
    raise TimeoutError("no result")


def _wait_end(backend: LocalBackend, kinds: set[EventKind]) -> None:
    while True:
        if any(e.kind in kinds for e in backend.poll(1.0)):
            return


def measure(kind: str, warm: bool, runs: int, root: Path) -> dict[str, list[float] | float]:
    folder = root / f"{kind}-{'warm' if warm else 'cold'}"
    folder.mkdir()
    if kind == "script":
        script = folder / "train.py"
        script.write_text(textwrap.dedent(SCRIPT))
        backend = LocalBackend(script=script, gpus=[], warm_start=warm, kill_grace_period=5.0)
    else:
        (folder / "tl_fn_module.py").write_text(textwrap.dedent(FUNCTION_MODULE))
        sys.path.insert(0, str(folder))
        import importlib

        module = importlib.import_module("tl_fn_module")
        sys.path.remove(str(folder))
        backend = LocalBackend(function=FunctionTarget.of(module.train), gpus=[], warm_start=warm,
                               kill_grace_period=5.0)
        sys.modules.pop("tl_fn_module", None)
    prepare = 0.0
    if warm:
        t0 = time.perf_counter()
        prepared = backend.prepared_interpreter()
        assert prepared is not None and prepared.wait_ready(), "the prepared interpreter cannot be used"
        prepare = time.perf_counter() - t0
    starts, resumes = [], []
    try:
        for i in range(runs):
            trial_dir = folder / "trials" / str(i)
            trial_dir.mkdir(parents=True)
            config = {"hold": 30.0}
            t0 = time.time()
            backend.start(Trial(i, config), trial_dir)
            first, _ = _first_line(backend)
            starts.append(first - t0)
            backend.pause(i)
            _wait_end(backend, {EventKind.PAUSED})
            t0 = time.time()
            backend.resume(i, {"hold": 0.0})
            first, _ = _first_line(backend)
            resumes.append(first - t0)
            _wait_end(backend, {EventKind.COMPLETED})
    finally:
        backend.shutdown()
    return {"start": starts, "resume": resumes, "prepare": prepare}


def _fmt(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{1000 * statistics.median(values):8.0f} ms  (IQR {1000 * q[0]:.0f}-{1000 * q[2]:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8, help="trials per case (each started, paused, resumed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"time from start()/resume() to the first line after `import torch`, median of {args.runs}")
        for kind in ("script", "function"):
            cold = measure(kind, False, args.runs, root)
            warm = measure(kind, True, args.runs, root)
            for what in ("start", "resume"):
                c, w = cold[what], warm[what]
                assert isinstance(c, list) and isinstance(w, list)
                print(f"{kind:8s} {what:6s}  cold {_fmt(c)}   warm {_fmt(w)}   "
                      f"cold/warm {statistics.median(c) / statistics.median(w):6.1f}x")
            print(f"{kind:8s} prepared interpreter ready after {warm['prepare']:.2f} s (once per experiment)")


if __name__ == "__main__":
    main()
