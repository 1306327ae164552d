"""Shared fixtures: small real training scripts written to a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

#: a script reporting a curve that depends on x: loss = ((x - 0.3)^2 + 0.05) * (1 + 2 / epoch)
QUADRATIC = '''
import argparse, os, sys, time
from tunebench import report, load_checkpoint, save_checkpoint
from tunebench.reporting import add_checkpoint_argument
p = argparse.ArgumentParser()
p.add_argument("--x", type=float, default=0.0)
p.add_argument("--epochs", type=int, default=9)
p.add_argument("--sleep", type=float, default=0.0)
add_checkpoint_argument(p)
args, _ = p.parse_known_args()
start = 1
state = load_checkpoint(args.checkpoint_dir) if args.checkpoint_dir else None
def loss(epoch):
    return ((args.x - 0.3) ** 2 + 0.05) * (1 + 2 / epoch)
if state is not None:
    start = state["epoch"] + 1
    report(epoch=state["epoch"], loss=loss(state["epoch"]))  # in case the kill came before the report
for epoch in range(start, args.epochs + 1):
    time.sleep(args.sleep)
    if args.checkpoint_dir:
        save_checkpoint({"epoch": epoch}, args.checkpoint_dir)
        with open(os.path.join(args.checkpoint_dir, "..", "trained_epochs.txt"), "a") as f:
            f.write(f"{epoch}\\n")
    report(epoch=epoch, loss=loss(epoch))
'''


def write_script(directory: Path, body: str, name: str = "train.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def quadratic_script(tmp_path: Path) -> Path:
    return write_script(tmp_path, QUADRATIC)


@pytest.fixture
def shared_data() -> Path:
    path = Path(os.environ.get("TUNEBENCH_DATA", SHARED_DATA))
    if not path.is_dir():
        pytest.skip(f"benchmark data folder {path} is absent (set TUNEBENCH_DATA)")
    return path


def logged_events(exp: Path) -> list[dict]:
    """The events of ``exp``'s log, read while a tuner may be writing it (a line being written is
    left out); [] before the log exists."""
    path = exp / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return out


def kill_when(command: list[str], exp: Path, until: Callable[[list[dict]], bool], timeout: float = 120.0,
              **popen: Any) -> list[dict]:
    """Run ``command`` (a tuner writing to ``exp``) and SIGKILL it once ``until(events)`` holds
    on its event log; returns the events logged before the kill. Fails if the command ends
    first (with its stderr) or ``until`` does not hold within ``timeout`` seconds."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    deadline = time.monotonic() + timeout
    while not until(logged_events(exp)):
        assert proc.poll() is None, f"ended before the kill: {proc.communicate()[1][-2000:]!r}"
        assert time.monotonic() < deadline, f"the condition did not hold within {timeout} s"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return logged_events(exp)


def n_results(at_least: int) -> Callable[[list[dict]], bool]:
    """For :func:`kill_when`: at least ``at_least`` results logged."""
    return lambda events: sum(e.get("event") == "result" for e in events) >= at_least


def load_script(path: Path) -> ModuleType:
    """The Python file ``path`` (a benchmark script, an example) imported as module
    ``_script_<stem>``, registered in ``sys.modules`` (its dataclasses look their module up)."""
    name = f"_script_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: a small PFN architecture (random weights of it: :func:`random_pfn_weights`)
SMALL_PFN = {"d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32, "n_bins": 20, "n_ids": 32, "max_hparams": 10,
             "d_head_mlp": 24}


def random_pfn_weights(tmp_path: Path, arch: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Random PFN weights of ``arch`` (default :data:`SMALL_PFN`) saved as ``tmp_path/w.npz`` with
    its sidecar; returns the ``.npz`` path."""
    import numpy as np

    from tunebench.models.pfn import _expected_shapes, save_weights

    arch = SMALL_PFN if arch is None else arch
    rng = np.random.default_rng(seed)
    arrays = {k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in _expected_shapes(arch).items()}
    arrays["borders"] = np.linspace(0, 1, arch["n_bins"] + 1, dtype=np.float32)
    path = tmp_path / "w.npz"
    save_weights(path, arrays, architecture=arch, prior_version=1, training={"steps": 0})
    return path
