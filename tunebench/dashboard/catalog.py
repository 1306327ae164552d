"""What the dashboard shows: the experiments and grids under its roots, and the refusal of anything else.

An experiment's id is ``<root index>/<its path relative to that root>`` (``<root index>`` alone
when the root is the experiment folder itself); a grid's id is the same for its tag folder. A grid
is recognised by its layout (:mod:`tunebench.analysis.layout`): an experiment at
``<tag>/<benchmark>/<method>/<seed>`` (the seed a number) under a root, or under a folder given as
a root, belongs to the grid ``<tag>``. :meth:`Catalog.resolve` turns an id back into a folder
and refuses (:class:`Refused`) one that resolves outside its root (``..``, a symbolic link out)
or is no experiment.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunebench.dashboard.live import LiveExperiment, check_readable, is_experiment
from tunebench.errors import UserError

__all__ = ["Catalog", "Refused", "GridRef"]

logger = logging.getLogger(__name__)


class Refused(Exception):
    """An id the dashboard does not serve: ``status`` 404 (nothing there) or 403 (outside the roots)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class GridRef:
    """A grid under a root: its id, the results root that holds it, its tag and its experiments' ids."""

    id: str
    root: Path
    tag: str
    experiments: tuple[str, ...]


class Catalog:
    """The roots given to ``tunebench dashboard`` and the :class:`LiveExperiment` of each
    experiment found under them (kept between requests: each log is read incrementally)."""

    def __init__(self, roots: list[Path]) -> None:
        if not roots:
            raise UserError("no folder to show: pass experiment folders or folders holding experiments, or "
                            "--results-root")
        for root in roots:
            check_readable(root)
        self.roots = [root.resolve() for root in roots]
        self._live: dict[Path, LiveExperiment] = {}
        self._lock = threading.Lock()

    def _id(self, index: int, folder: Path) -> str:
        rel = folder.relative_to(self.roots[index]).as_posix()
        return str(index) if rel == "." else f"{index}/{rel}"

    def scan(self) -> list[tuple[str, Path]]:
        """``(id, folder)`` of every experiment under the roots, sorted by id (the folders are
        walked again at each call: new experiments appear; an experiment's own folder is not
        walked into)."""
        found: list[tuple[str, Path]] = []
        for index, root in enumerate(self.roots):
            for folder in _experiment_folders(root):
                found.append((self._id(index, folder), folder))
        return sorted(found)

    def grids(self, experiments: list[tuple[str, Path]] | None = None) -> list[GridRef]:
        """The grids among ``experiments`` (default: :meth:`scan`'s), sorted by id."""
        experiments = self.scan() if experiments is None else experiments
        members: dict[tuple[int, Path], list[str]] = {}
        for exp_id, folder in experiments:
            index = int(exp_id.split("/", 1)[0])
            rel = folder.relative_to(self.roots[index]).parts
            if len(rel) >= 4 and rel[-1].isdigit():
                members.setdefault((index, folder.parents[2]), []).append(exp_id)
        out = []
        for (index, tag_dir), ids in members.items():
            out.append(GridRef(self._id(index, tag_dir), tag_dir.parent, tag_dir.name, tuple(sorted(ids))))
        return sorted(out, key=lambda g: g.id)

    def _folder(self, item_id: str) -> Path:
        """The folder of ``item_id`` inside its root; :class:`Refused` if it resolves outside."""
        head, _, rel = item_id.partition("/")
        if not head.isdigit() or int(head) >= len(self.roots):
            raise Refused(404, f"no root {head!r}")
        root = self.roots[int(head)]
        if rel.startswith("/") or "\\" in rel:
            raise Refused(403, "outside the dashboard's folders")
        folder = (root / rel).resolve() if rel else root
        if folder != root and not folder.is_relative_to(root):
            raise Refused(403, "outside the dashboard's folders")
        return folder

    def experiment(self, exp_id: str) -> LiveExperiment:
        """The :class:`LiveExperiment` of ``exp_id`` (created at its first request, then kept);
        :class:`Refused` for an id outside the roots or of no experiment."""
        folder = self._folder(exp_id)
        if not is_experiment(folder):
            raise Refused(404, f"no experiment {exp_id!r}")
        with self._lock:
            live = self._live.get(folder)
            if live is None:
                live = self._live[folder] = LiveExperiment(folder)
        return live

    def grid(self, grid_id: str) -> GridRef:
        """The :class:`GridRef` of ``grid_id``; :class:`Refused` for an id outside the roots or of no grid."""
        folder = self._folder(grid_id)
        for grid in self.grids():
            if grid.id == grid_id or self._folder(grid.id) == folder:
                return grid
        raise Refused(404, f"no grid {grid_id!r}")

    def overview(self) -> dict[str, Any]:
        """``experiments`` (id plus :meth:`LiveExperiment.overview`, or ``error`` for an unreadable
        one) and ``grids`` (id, tag, number of experiments)."""
        experiments = self.scan()
        rows = []
        for exp_id, _ in experiments:
            try:
                rows.append({"id": exp_id, **self.experiment(exp_id).overview()})
            except (UserError, OSError) as e:
                rows.append({"id": exp_id, "error": str(e)})
        grids = [{"id": g.id, "tag": g.tag, "n_experiments": len(g.experiments)} for g in self.grids(experiments)]
        return {"roots": [str(r) for r in self.roots], "experiments": rows, "grids": grids}


def _experiment_folders(root: Path) -> list[Path]:
    """The experiment folders at or under ``root`` (not walking into an experiment, nor following
    symbolic links out of it)."""
    if is_experiment(root):
        return [root]
    out = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if is_experiment(path):
                out.append(path)
            else:
                stack.append(path)
    return out
