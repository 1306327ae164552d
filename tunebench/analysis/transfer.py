"""Source tasks for transfer learning from earlier experiments (``--transfer-from PATH|TAG ...``).

A source is

* an experiment folder (``metadata.json`` and ``events.jsonl``, read with
  :func:`tunebench.store.load_experiment`): one source task, named by its benchmark (or, for a
  script's experiment, by its folder); or
* an experiment grid's tag: a folder ``<results root>/<tag>/`` (given by its name, looked up
  under the results root, or by its path) holding ``<benchmark>/<method>/<seed>/`` experiment
  folders; each benchmark is one source task, pooling its methods and seeds. The target's own
  benchmark is left out of a tag (leave-one-task-out: one grid over many tasks serves each of
  them as the target).

Experiments of the same task (by name) are pooled. Each trial gives one configuration and its
value of the target's metric, in minimization form for the target's mode, at the largest
resource the trial reported (its last result there): :class:`~tunebench.types.TransferTask`.

:func:`resolve_transfer_sources` turns what the user typed into absolute folders (what a run
spec stores, so ``tunebench resume`` rebuilds the same tasks); :func:`load_transfer_tasks` reads
them. Both refuse bad input in one line naming the fix (:class:`~tunebench.errors.UserError`).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunebench.analysis.layout import results_root
from tunebench.errors import UserError
from tunebench.space import hyperparameters, space_from_json
from tunebench.store import EVENTS_FILE, METADATA_FILE, Experiment, load_experiment
from tunebench.types import TransferTask, to_minimize

logger = logging.getLogger(__name__)

__all__ = ["load_transfer_tasks", "resolve_transfer_sources"]


def _is_experiment(path: Path) -> bool:
    return (path / METADATA_FILE).is_file()


def resolve_transfer_sources(sources: Sequence[str | os.PathLike[str]],
                             root: str | os.PathLike[str] | None = None) -> list[str]:
    """The absolute folders of ``sources``: each an experiment folder, a grid tag's folder, or a
    tag name under the results root ``root`` (default: ``$TUNEBENCH_RESULTS``, else
    ``~/tunebench-results``), in order, without duplicates.

    Raises:
        UserError: a source is none of these.
    """
    out: list[str] = []
    for source in sources:
        path = Path(source).expanduser()
        if not path.is_dir():
            under_root = results_root(root) / str(source)
            if str(source) and os.sep not in str(source) and under_root.is_dir():
                path = under_root
            else:
                raise UserError(f"transfer source '{source}' does not exist: pass an experiment folder or the tag of "
                                f"an experiment grid (a folder under the results root {results_root(root)})")
        resolved = str(path.resolve())
        if resolved not in out:
            out.append(resolved)
    return out


def _tag_experiments(tag: Path) -> dict[str, list[Path]]:
    """Benchmark -> its experiment folders (``<tag>/<benchmark>/<method>/<seed>/``), sorted."""
    found: dict[str, list[Path]] = {}
    for folder in sorted(tag.glob("*/*/*")):
        if _is_experiment(folder):
            found.setdefault(folder.parent.parent.name, []).append(folder)
    return found


def _check_space(path: Path, recorded: Any, config_space: dict[str, Any]) -> None:
    """A UserError unless the experiment of ``path`` was tuned (its ``recorded`` space) on the
    hyperparameters of ``config_space`` (same names, same domains; constants may differ)."""
    if not isinstance(recorded, dict):
        raise UserError(f"transfer source {path} records no config space (metadata.json): it cannot be "
                        "checked against the target's; transfer from experiments tunebench recorded")
    theirs, ours = hyperparameters(space_from_json(recorded)), hyperparameters(config_space)
    if set(theirs) != set(ours):
        extra, missing = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
        what = "; ".join(part for part in (f"only the source has {', '.join(extra)}" if extra else "",
                                           f"only the target has {', '.join(missing)}" if missing else "") if part)
        raise UserError(f"transfer source {path} was tuned on another config space ({what}): transfer from "
                        "tasks tuned on the same space")
    differ = [name for name in ours if theirs[name] != ours[name]]
    if differ:
        name = differ[0]
        raise UserError(f"transfer source {path} was tuned on another config space ({name}: {theirs[name]!r} "
                        f"there, {ours[name]!r} here): transfer from tasks tuned on the same space")


def _trial_values(exp: Experiment, metric: str, mode: str) -> tuple[list[dict[str, Any]], list[float]]:
    """Each trial's config and its ``metric`` (minimization form for ``mode``) at the largest
    resource it reported; trials without a finite value are left out."""
    resource_attr = exp.resource_attr
    last: dict[int, tuple[float, int, float]] = {}  # trial -> (resource, order, value)
    for order, ev in enumerate(exp.state.results):
        result = ev["result"]
        value = result.get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        value = to_minimize(float(value), mode)
        if not math.isfinite(value):
            continue
        r = result.get(resource_attr) if resource_attr else None
        resource = float(r) if isinstance(r, (int, float)) and not isinstance(r, bool) else 0.0
        tid = ev["trial_id"]
        if tid not in last or resource >= last[tid][0]:
            last[tid] = (resource, order, value)
    configs, values = [], []
    for tid, (_, _, value) in last.items():
        rec = exp.state.trials.get(tid)
        if rec is not None:
            configs.append(dict(rec.trial.config))
            values.append(value)
    return configs, values


@dataclass(frozen=True)
class _Source:
    """What a transfer source experiment gives: its benchmark, recorded space, trials' values."""

    path: Path
    benchmark: str | None
    config_space: Any
    configs: tuple[dict[str, Any], ...]
    values: tuple[float, ...]


@functools.lru_cache(maxsize=512)
def _read(path: str, stamp: tuple[int, int], metric: str, mode: str) -> _Source:
    """:class:`_Source` of the experiment ``path`` (``stamp``: its log's size and mtime, so a log
    that grew is read again). Cached: a grid's worker builds many runs from the same sources."""
    exp = load_experiment(path)
    configs, values = _trial_values(exp, metric, mode)
    bench = exp.metadata.get("benchmark")
    return _Source(Path(path), str(bench) if bench else None, exp.metadata.get("config_space"), tuple(configs),
                   tuple(values))


def _load(path: Path, metric: str, mode: str) -> _Source:
    try:
        st = (path / EVENTS_FILE).stat()
        stamp = (st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = (-1, -1)
    return _read(str(path), stamp, metric, mode)


def load_transfer_tasks(sources: Sequence[str | os.PathLike[str]], config_space: dict[str, Any], metric: str,
                        mode: str = "min", *, target: str | None = None,
                        root: str | os.PathLike[str] | None = None) -> tuple[TransferTask, ...]:
    """The source tasks of ``sources`` (see the module docstring) for a target tuning ``metric``
    (``mode``) on ``config_space``; ``target``: the target's benchmark, left out of grid tags.

    Raises:
        UserError: a source does not exist (see :func:`resolve_transfer_sources`), is an
            experiment of the target's own benchmark, was tuned on another space, has no result
            with the metric, or a tag holds no experiment of another task.
    """
    pooled: dict[str, tuple[list[dict[str, Any]], list[float]]] = {}
    for folder in map(Path, resolve_transfer_sources(sources, root)):
        if _is_experiment(folder):
            source = _load(folder, metric, mode)
            if target is not None and source.benchmark == target:
                raise UserError(f"transfer source {folder} is an experiment of the target task itself ({target}): "
                                "transfer from other tasks")
            members = [(source.benchmark or str(folder), source)]
        else:
            by_bench = _tag_experiments(folder)
            if not by_bench:
                raise UserError(f"transfer source {folder} holds no experiment: pass an experiment folder or the tag "
                                "of an experiment grid (<tag>/<benchmark>/<method>/<seed>/)")
            if target in by_bench:
                logger.info("transfer: %s of tag %s left out (the target task)", target, folder)
            members = [(bench, _load(p, metric, mode)) for bench, paths in by_bench.items() if bench != target
                       for p in paths]
            if not members:
                raise UserError(f"transfer source {folder} holds experiments of the target task {target} only: "
                                "transfer from other tasks")
        for name, source in members:
            _check_space(source.path, source.config_space, config_space)
            if not source.values:
                raise UserError(f"transfer source {source.path} has no result with the metric '{metric}': transfer "
                                "from experiments that report it (or pass the --metric they report)")
            got = pooled.setdefault(name, ([], []))
            got[0].extend(source.configs)
            got[1].extend(source.values)
    tasks = tuple(TransferTask(name, tuple(c), tuple(v)) for name, (c, v) in pooled.items())
    logger.info("transfer: %d source task(s), %d configurations", len(tasks), sum(len(t.values) for t in tasks))
    return tasks
