"""Live progress display of a tuning run (a :class:`~tunebench.tuner.Callback`).

On a terminal it shows a rich live panel: elapsed time against the budget, trials running,
paused, completed, stopped and failed, the number of results, the best value so far and its
configuration, and the best trials. Elsewhere (a log file, CI) it prints one plain line every
``interval`` seconds while events come.

Heartbeat: while nothing happens (a trial trains a long epoch, or hangs), a thread prints a status
line every ``heartbeat`` seconds anyway, naming the running trials and how many seconds ago each
last reported (or started); on a live panel, that line is shown under the header. rich is
imported only when a live panel is shown.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from tunebench.events import Standing
from tunebench.tuner import Callback, Tuner, TuningResult
from tunebench.types import Decision, Result, Status, Trial


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt_config(config: dict[str, Any] | None, limit: int = 6) -> str:
    if not config:
        return "-"
    items = [f"{k}={_fmt(v)}" for k, v in list(config.items())[:limit]]
    if len(config) > limit:
        items.append("...")
    return ", ".join(items)


def _at(standing: Standing, resource_attr: str | None) -> str:
    """``", epoch 9"``: where a trial's best value was reported ("" without a resource)."""
    if resource_attr is None or standing.resource is None:
        return ""
    return f", {resource_attr} {_fmt(standing.resource)}"


class ProgressDisplay(Callback):
    """Shows how tuning goes. ``live=None`` picks a live panel when ``stream`` is a terminal.

    ``interval``: seconds between plain lines while events come; ``heartbeat``: seconds without any
    output after which a line is printed anyway (None: never)."""

    def __init__(self, live: bool | None = None, interval: float = 10.0, stream: IO[str] | None = None,
                 top_k: int = 5, heartbeat: float | None = 30.0) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.interval = interval
        self.top_k = top_k
        self._live: Any = None
        self._tuner: Tuner | None = None
        self._last_line = 0.0
        self._last_render = 0.0
        self.live_interval = 0.25
        self.heartbeat = heartbeat
        self._since: dict[int, tuple[float, bool]] = {}  # running trial -> (monotonic time, has reported)
        self._output_lock = threading.Lock()  # the tuner's thread and the heartbeat's both print
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    # -- rendering -------------------------------------------------------------------------

    def counts(self, tuner: Tuner) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for rec in tuner.trials.values():
            counts[rec.status.value] += 1
        return counts

    def line(self, tuner: Tuner) -> str:
        """One plain-text status line."""
        c = self.counts(tuner)
        budget = tuner.stop.max_wallclock_time
        elapsed = f"{tuner.elapsed():.0f}s" + (f"/{budget:.0f}s" if budget else "")
        top = tuner.best()
        at = "" if top is None else _at(top, tuner.scheduler.resource_attr)
        best = "-" if top is None else f"{top.value:.6g} (trial {top.trial_id}{at})"
        return (f"[{elapsed}] trials: {c['running']} running, {c['paused']} paused, {c['completed']} completed, "
                f"{c['stopped']} stopped, {c['failed']} failed | results: {tuner.n_results} | "
                f"best {tuner.metric} ({tuner.mode}): {best}")

    def running_line(self) -> str:
        """The running trials and the seconds since each last reported (or started)."""
        now = time.monotonic()
        parts = []
        for tid, (when, reported) in sorted(dict(self._since).items()):
            what = "since its last report" if reported else "since it started, no report yet"
            parts.append(f"trial {tid} ({now - when:.0f} s {what})")
        if len(parts) > 8:
            parts = [*parts[:8], f"... {len(parts) - 8} more"]
        return "running: " + (", ".join(parts) if parts else "none")

    def _renderable(self) -> Any:
        from rich.console import Group  # deferred: rich, only when the live display is shown
        from rich.table import Table
        from rich.text import Text

        tuner = self._tuner
        assert tuner is not None
        header = Text(self.line(tuner) + "\n" + self.running_line())
        table = Table(title=f"best trials ({tuner.metric}, {tuner.mode})", expand=False)
        resource_attr = tuner.scheduler.resource_attr
        for col in ("trial", "status", "results", f"best {tuner.metric}", f"{resource_attr or 'resource'} reached",
                    "config"):
            table.add_column(col)
        for s in tuner.standings(self.top_k):  # ranked as the final best is chosen
            table.add_row(str(s.trial_id), s.status.value, str(tuner.trials[s.trial_id].n_results),
                          _fmt(s.value) + _at(s, resource_attr), _fmt(s.reached) if s.reached is not None else "-",
                          _fmt_config(s.config))
        return Group(header, table)

    def _refresh(self, force: bool = False) -> None:
        tuner = self._tuner
        if tuner is None:
            return
        now = time.monotonic()
        if self._live is not None:
            # rebuilding the panel sorts every trial: at most a few times a second, not per event
            # (a simulation produces tens of thousands of events a second)
            if force or now - self._last_render >= self.live_interval:
                self._last_render = now
                self._live.update(self._renderable())
            return
        if force or now - self._last_line >= self.interval:
            self._last_line = now
            with self._output_lock:
                print(self.line(tuner), file=self.stream, flush=True)

    def _beat(self) -> None:
        """The heartbeat thread: a line (or a panel update) whenever ``heartbeat`` seconds pass
        without output."""
        assert self.heartbeat is not None
        while True:
            last = self._last_render if self._live is not None else self._last_line
            if self._stop_heartbeat.wait(max(0.01, last + self.heartbeat - time.monotonic())):
                return
            now = time.monotonic()
            tuner = self._tuner
            if tuner is None:
                continue
            for _ in range(3):  # the tuner's thread may change its trials meanwhile: try again
                try:
                    if self._live is not None:
                        if now - self._last_render >= self.heartbeat:
                            self._last_render = now
                            self._live.update(self._renderable())
                    elif now - self._last_line >= self.heartbeat:
                        text = f"{self.line(tuner)}\n  {self.running_line()}"
                        self._last_line = now
                        with self._output_lock:
                            print(text, file=self.stream, flush=True)
                    break
                except RuntimeError:  # "dictionary changed size during iteration"
                    continue

    def _end_heartbeat(self) -> None:
        self._stop_heartbeat.set()
        thread, self._heartbeat_thread = self._heartbeat_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- callback hooks --------------------------------------------------------------------

    def on_tuning_start(self, tuner: Tuner) -> None:
        self._tuner = tuner
        self._last_line = time.monotonic()
        if self.live:
            from rich.console import Console  # deferred: rich, only when the live display is shown
            from rich.live import Live

            self._live = Live(self._renderable(), console=Console(file=self.stream), refresh_per_second=4,
                              transient=False)
            self._live.start()
        if self.heartbeat is not None and self._heartbeat_thread is None:
            self._stop_heartbeat.clear()
            self._heartbeat_thread = threading.Thread(target=self._beat, name="tunebench-heartbeat", daemon=True)
            self._heartbeat_thread.start()

    def on_trial_start(self, tuner: Tuner, trial: Trial, how: str) -> None:
        self._since[trial.trial_id] = (time.monotonic(), False)
        self._refresh()

    def on_result(self, tuner: Tuner, trial: Trial, result: Result, decision: Decision) -> None:
        self._since[trial.trial_id] = (time.monotonic(), True)
        self._refresh()

    def on_trial_end(self, tuner: Tuner, trial: Trial, status: Status) -> None:
        self._since.pop(trial.trial_id, None)
        self._refresh()

    def on_tuning_end(self, tuner: Tuner, result: TuningResult) -> None:
        self._end_heartbeat()
        if self._live is not None:
            self._refresh(force=True)
            self._live.stop()
            self._live = None
        else:
            self._refresh(force=True)

    def close(self) -> None:
        """Stop the live panel (and the heartbeat) if tuning ended with an exception."""
        self._end_heartbeat()
        if self._live is not None:
            self._live.stop()
            self._live = None
