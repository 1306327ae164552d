"""The dashboard's grid page: the figures of ``tunebench plot`` and the tables of ``tunebench report``.

A grid is drawn again only when one of its experiments' logs changed (their sizes are the
grid's signature), so a page that polls costs a few ``stat`` calls between changes. The figures
are PNG files written by :func:`tunebench.analysis.plots.plot_grid` into a folder of the
server's own; the report is :func:`tunebench.analysis.report.write_report`'s markdown, turned
into HTML here (headings, paragraphs and tables: all it writes).
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebench.analysis.plots import plot_grid
from tunebench.analysis.report import write_report
from tunebench.analysis.results import load_grid
from tunebench.dashboard.catalog import GridRef
from tunebench.errors import UserError
from tunebench.store import EVENTS_FILE

__all__ = ["GridRenderer", "GridView", "markdown_to_html"]

logger = logging.getLogger(__name__)

_FIGURE_NAME = re.compile(r"^[A-Za-z0-9._-]+\.png$")


@dataclass(slots=True)
class GridView:
    """A grid as last drawn: ``signature`` (of its logs' sizes), ``figures`` (PNG file names in
    ``folder``), ``report_html``, ``n_experiments`` and ``error`` (why it could not be drawn)."""

    signature: str = ""
    folder: Path | None = None
    figures: list[str] = field(default_factory=list)
    report_html: str = ""
    n_experiments: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"signature": self.signature, "figures": self.figures, "report_html": self.report_html,
                "n_experiments": self.n_experiments, "error": self.error}


def _signature(grid: GridRef, folders: list[Path]) -> str:
    digest = hashlib.sha1(grid.id.encode())
    for folder in folders:
        try:
            size = os.stat(folder / EVENTS_FILE).st_size
        except OSError:
            size = -1
        digest.update(f"{folder}:{size};".encode())
    return digest.hexdigest()[:16]


class GridRenderer:
    """Draws grids into a temporary folder of its own (removed with the renderer's
    :meth:`close`), again whenever their logs grew."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="tunebench-dashboard-")
        self._views: dict[str, GridView] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Remove the drawn figures."""
        self._tmp.cleanup()

    def view(self, grid: GridRef, folders: list[Path]) -> GridView:
        """The :class:`GridView` of ``grid`` (whose experiments are in ``folders``), drawn again
        if a log changed since the last call."""
        with self._lock:
            lock = self._locks.setdefault(grid.id, threading.Lock())
        with lock:
            signature = _signature(grid, folders)
            view = self._views.get(grid.id)
            if view is not None and view.signature == signature:
                return view
            self._views[grid.id] = new = self._draw(grid, signature, len(folders))
            if view is not None and view.folder is not None:
                shutil.rmtree(view.folder, ignore_errors=True)  # the figures of the last drawing
            return new

    def _draw(self, grid: GridRef, signature: str, n_experiments: int) -> GridView:
        folder = Path(self._tmp.name) / signature
        view = GridView(signature=signature, folder=folder, n_experiments=n_experiments)
        try:
            loaded = load_grid(grid.root, grid.tag, known_optima=False)
            paths = plot_grid(loaded, folder)
            view.figures = [p.name for p in paths]
            view.report_html = markdown_to_html(write_report(loaded, n_boot=500))
        except UserError as e:
            view.error = str(e)
        except Exception as e:  # a grid mid-write can be unreadable for a moment: show why, draw it later
            logger.warning("could not draw the grid %s: %s", grid.id, e, exc_info=True)
            view.error = f"{type(e).__name__}: {e}"
        return view

    def figure(self, grid_id: str, name: str) -> Path | None:
        """The path of the figure ``name`` of the last drawing of ``grid_id``; None if there is none."""
        view = self._views.get(grid_id)
        if view is None or view.folder is None or not _FIGURE_NAME.match(name) or name not in view.figures:
            return None
        return view.folder / name


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(text: str) -> str:
    """The markdown :func:`~tunebench.analysis.report.write_report` writes, as HTML: ``#``
    headings, ``|`` tables (their second line the separator), ``-`` lists and paragraphs; every
    text escaped."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 6)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
            out.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head)
                       + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
            continue
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{html.escape(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
        i += 1
    return "\n".join(out)
