"""Progress display of an experiment grid (L4).

On a terminal: a rich live panel with the grid's progress (experiments done of all, failed,
running, elapsed and estimated remaining time) and one row per running experiment (its
(simulated) time against its budget, trials, best value: of the first metric, among feasible
results). Elsewhere (a log file, CI): one plain
line per experiment that ends, and a status line every ``interval`` seconds. rich is imported
only for the live panel.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from tunebench.experiments.grid import GridObserver, GridResult, Job, JobOutcome


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _best_label(start: dict[str, Any]) -> str:
    """How the best value of a job is named, from its ``start`` message: ``best``, or ``best
    METRIC`` when it optimizes several metrics (the value is its first metric's), ``best
    feasible ...`` when it has constraints."""
    label = "best"
    if start.get("constraints"):
        label += " feasible"
    if len(start.get("metrics") or ()) > 1:
        label += f" {start.get('metric')}"
    return label


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


class GridDisplay(GridObserver):
    """Shows how a grid goes. ``live=None``: a live panel when ``stream`` is a terminal."""

    def __init__(self, live: bool | None = None, stream: IO[str] | None = None, interval: float = 30.0) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.interval = interval
        self.total = 0
        self.to_run = 0
        self.parallel = 1
        self.counts = {"complete": 0, "skipped": 0, "failed": 0, "interrupted": 0, "busy": 0}
        self.running: dict[str, dict[str, Any]] = {}
        self._t0 = time.monotonic()
        self._last_line = self._t0
        self._last_render = 0.0
        self._live: Any = None
        self._run_times: list[float] = []

    # -- text ----------------------------------------------------------------------------------

    def _done(self) -> int:
        return sum(self.counts.values())

    def _eta(self) -> str:
        ran = self.counts["complete"] + self.counts["failed"]
        left = self.total - self._done() - len(self.running)
        if not self._run_times or ran == 0:
            return "?"
        per_job = sum(self._run_times) / len(self._run_times)
        remaining = per_job * (left + 0.5 * len(self.running)) / max(1, self.parallel)
        return _duration(remaining)

    def status_line(self) -> str:
        c = self.counts
        return (f"[{_duration(time.monotonic() - self._t0)}] {self._done()}/{self.total} experiments done "
                f"({c['complete']} run, {c['skipped']} already complete, {c['failed']} failed), "
                f"{len(self.running)} running, about {self._eta()} left")

    def _print(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def _renderable(self) -> Any:
        from rich.console import Group  # deferred: rich, only when the live display is shown
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table(expand=False, box=None, pad_edge=False)
        for col in ("experiment", "progress", "time", "trials", "best"):
            table.add_column(col)
        for key, info in sorted(self.running.items()):
            elapsed, budget = info.get("elapsed") or 0.0, info.get("budget")
            frac = min(1.0, elapsed / budget) if budget else 0.0
            bar = ProgressBar(total=1.0, completed=frac, width=20)
            when = f"{_duration(elapsed)}/{_duration(budget)}" if budget else _duration(elapsed)
            table.add_row(key, bar, when, _num(info.get("trials")), _num(info.get("best")))
        overall = ProgressBar(total=max(1, self.total), completed=self._done(), width=40)
        return Group(Text(self.status_line()), overall, table)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._live is not None:
            if force or now - self._last_render >= 0.25:
                self._last_render = now
                self._live.update(self._renderable())
        elif force or now - self._last_line >= self.interval:
            self._last_line = now
            print(self.status_line(), file=self.stream, flush=True)

    # -- hooks ---------------------------------------------------------------------------------

    def on_grid_start(self, jobs: Sequence[Job], parallel: int) -> None:
        self.total = len(jobs)
        self.to_run = sum(1 for j in jobs if j.action in ("start", "resume"))
        self.parallel = parallel
        self._t0 = self._last_line = time.monotonic()
        skipped = sum(1 for j in jobs if j.action == "skip")
        resume = sum(1 for j in jobs if j.action == "resume")
        print(f"{self.total} experiments: {self.to_run - resume} to start, {resume} to resume, {skipped} already "
              f"complete; {parallel} at a time", file=self.stream, flush=True)
        if self.live and self.to_run:
            from rich.console import Console  # deferred: rich, only when the live display is shown
            from rich.live import Live

            self._live = Live(self._renderable(), console=Console(file=self.stream), refresh_per_second=4,
                              transient=True)
            self._live.start()

    def on_job_start(self, job: Job, info: dict[str, Any]) -> None:
        self.running[job.key] = dict(info, started=time.monotonic())
        if info.get("resumed") and self._live is None:
            self._print(f"resuming {job.key} at {_duration(info.get('elapsed') or 0.0)}")
        self._refresh()

    def on_job_progress(self, job: Job, info: dict[str, Any]) -> None:
        if job.key in self.running:
            self.running[job.key].update(info)
        self._refresh()

    def on_job_end(self, outcome: JobOutcome) -> None:
        start = self.running.pop(outcome.job.key, {})
        started = start.get("started")
        status = outcome.status
        self.counts[status if status in self.counts else "failed"] += 1
        if status in ("complete", "failed") and started is not None:
            self._run_times.append(time.monotonic() - started)
        if status == "complete":
            info = outcome.info
            self._print(f"[{self._done()}/{self.total}] {outcome.job.key}: {outcome.reason}; {info.get('trials')} "
                        f"trials, {_best_label(start)} {_num(info.get('best'))} ({_num(info.get('real_time'))} s)")
        elif status == "failed":
            self._print(f"[{self._done()}/{self.total}] {outcome.job.key} FAILED: {outcome.error or outcome.reason}")
        elif status == "busy":
            self._print(f"{outcome.job.key}: running in another process, left alone")
        self._refresh()

    def on_interrupt(self) -> None:
        self._print("interrupting the running experiments (Ctrl-C again to kill them)...")

    def tick(self) -> None:
        self._refresh()

    def on_grid_end(self, result: GridResult) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._last_line = 0.0
