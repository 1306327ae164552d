"""End-to-end, issue 15: every multi-objective and constrained method tunes a real training
script (the digits MLP, trading its error against its size) on the local backend from the CLI,
through a SIGKILL of the tuner and a resume, and ``show --json`` gives the Pareto front (or the
feasible best) afterwards. Marked slow: `make test` runs them, a plain `pytest` does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import kill_when, logged_events, n_results

from tunebench.schedulers.registry import METHODS

pytestmark = pytest.mark.slow

SCRIPT = str(Path(__file__).resolve().parents[1] / "tunebench" / "examples" / "mlp_digits.py")
#: the constraint given to the constrained methods: about half the digits MLPs are larger
SIZE_BOUND = "n_params<=12000"


def _methods() -> list[str]:
    # (random and grid search take several metrics too; tests/test_all_methods.py runs them through a kill)
    chosen = [m.name for m in METHODS.values() if m.multi_objective and m.name not in ("RS", "Grid")]
    chosen += [m.name for m in METHODS.values() if getattr(m, "constrained", False)]
    return sorted(chosen)


def _tunebench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", _methods())
def test_a_killed_run_of_the_method_resumes_and_shows_its_front(name: str, tmp_path: Path):
    exp = tmp_path / "exp"
    spec = METHODS[name]
    if spec.multi_objective:
        objective = ["--metric", "val_error", "n_params", "--mode", "min", "min"]
    else:
        objective = ["--metric", "val_error", "--mode", "min", "--constraint", SIZE_BOUND]
    logged = kill_when([sys.executable, "-m", "tunebench", "run", "--script", SCRIPT, "--method", name,
                        *objective, "--max-wallclock-time", "16", "--experiment-dir", str(exp), "--no-progress"],
                       exp, n_results(15), timeout=90)
    before = [e for e in logged if e.get("event") == "result"]
    assert len(before) >= 15

    resumed = _tunebench("resume", str(exp), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = logged_events(exp)
    results = [e for e in after if e.get("event") == "result"]
    key = lambda e: (e["trial_id"], e["result"]["epoch"], e["result"]["val_error"])  # noqa: E731
    assert [key(e) for e in results[: len(before)]] == [key(e) for e in before], "results before the kill kept"
    assert len(results) > len(before), "the resumed session went on tuning"
    starts = [e["trial_id"] for e in after if e.get("event") == "trial_start"]
    assert len(starts) == len(set(starts)), "no trial id reused"
    assert not any(e.get("event") == "trial_fail" for e in after)

    summary = json.loads(_tunebench("show", str(exp), "--json").stdout)
    assert summary["finished"] and summary["n_running"] == 0
    if spec.multi_objective:
        front = summary["pareto_front"]
        assert front and summary["hypervolume"] > 0
        values = [(m["values"]["val_error"], m["values"]["n_params"]) for m in front]
        for a in values:  # no member dominates another
            assert not any(b != a and b[0] <= a[0] and b[1] <= a[1] for b in values)
    else:
        assert summary["constraints"] == [SIZE_BOUND.replace("12000", "12000.0")]
        best = summary["best_config"]
        assert best is not None
        n_params = next(e["result"]["n_params"] for e in results if e["trial_id"] == summary["best_trial_id"])
        assert n_params <= 12000, "the best is feasible"
