"""Tabulated real benchmarks: finding and reading the tables ``tunebench tabulate`` writes (L2).

A real benchmark ``NAME`` tabulated by ``tunebench tabulate`` (:mod:`tunebench.tabulate`, the
runner) becomes a table folder ``NAME-tab`` in the tabular blackbox format
(``docs/blackbox-format.md``), with a ``tabulated`` entry in its ``meta.json``. Such folders are
found by name along :func:`tabulated_search_path`; :func:`load_tabulated` (the loader of the
``tabulated`` blackbox family) reads one for the simulator, filling the cells of failed runs
(:func:`fill_failed_cells`) so that a replay never meets a NaN.

Failed trials
-------------
A tabulated trial that failed (a diverged run exits non-zero, a crash) keeps the epochs it
reported; its later epochs are NaN in ``values.npy`` ("missing", as the format says), and
``meta.json`` lists it under ``tabulated.failures``. :func:`load_tabulated` fills those cells: the
tuned metric and the other objectives get the worst value of the table at that epoch (max for a
minimized metric), and the elapsed time goes on at the trial's own pace; seeds of a configuration
that never ran copy another seed of the same configuration. Pass ``fill_failed=False`` to get the
raw table.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.blackboxes.hpobench import default_cache_dir
from tunebench.blackboxes.tabular import META_FILE, TabularBlackbox
from tunebench.errors import UserError

__all__ = [
    "ELAPSED_TIME",
    "TABULATED_KEY",
    "TABULATED_SUFFIX",
    "PACKAGE_TABLES_DIR",
    "tabulated_search_path",
    "find_tabulated",
    "read_meta",
    "quiet_nan_warnings",
    "fill_failed_cells",
    "load_tabulated",
]

#: name of the elapsed-time objective of a tabulated benchmark
ELAPSED_TIME = "elapsed_time"
#: entry of ``meta.json`` describing how the table was made
TABULATED_KEY = "tabulated"
#: a real benchmark NAME tabulated by ``tunebench tabulate`` becomes the simulated benchmark NAME-tab,
#: whose table lives in a folder of that name
TABULATED_SUFFIX = "-tab"
#: tables shipped inside the package (``tunebench/blackboxes/data/<name>-tab/``)
PACKAGE_TABLES_DIR = Path(__file__).resolve().parent / "data"


def tabulated_search_path(data_dir: str | Path | None = None) -> list[Path]:
    """Folders holding tabulated benchmarks (``<name>-tab/`` folders), searched in this order:

    1. ``<data_dir>/tabulated`` (``data_dir`` default: ``$TUNEBENCH_DATA``; skipped if unset);
    2. the blackbox cache: ``$TUNEBENCH_CACHE``, else ``$XDG_CACHE_HOME/tunebench/blackboxes``
       (default ``~/.cache/tunebench/blackboxes``): where ``tunebench tabulate`` writes by default;
    3. the tables shipped with tunebench (``tunebench/blackboxes/data``).
    """
    roots: list[Path] = []
    data = data_dir if data_dir is not None else os.environ.get("TUNEBENCH_DATA")
    if data:
        roots.append(Path(data).expanduser() / "tabulated")
    roots.append(default_cache_dir())
    roots.append(PACKAGE_TABLES_DIR)
    return roots


def _tab_folder_name(name: str) -> str:
    return name if name.endswith(TABULATED_SUFFIX) else f"{name}{TABULATED_SUFFIX}"


def find_tabulated(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The table folder of the tabulated benchmark ``name`` (``mlp_tabular`` or ``mlp_tabular-tab``):
    the first ``<name>-tab/`` holding a ``meta.json`` along :func:`tabulated_search_path`, or None."""
    folder_name = _tab_folder_name(name)
    for root in tabulated_search_path(data_dir):
        folder = root / folder_name
        if (folder / META_FILE).is_file():
            return folder
    return None


def read_meta(folder: Path) -> Any:
    """The ``meta.json`` of the table in ``folder``.

    Raises:
        UserError: the file is missing or not JSON.
    """
    path = folder / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is unreadable ({e}); remove it to start this tabulation over") from None


@contextlib.contextmanager
def quiet_nan_warnings() -> Iterator[None]:
    """Silence numpy's "mean of empty slice" warnings (all-NaN seeds are expected here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def fill_failed_cells(values: np.ndarray, objectives: Sequence[str], *, elapsed_time_attr: str | None,
                      objective_modes: Mapping[str, str] | None = None,
                      failures: Sequence[Mapping[str, Any]] = ()) -> np.ndarray:
    """A copy of ``values`` (``(n_configs, n_seeds, n_fidelities, n_objectives)``) without NaN, for
    a replay: see "Failed trials" in the module doc.

    ``failures`` are the ``tabulated.failures`` of ``meta.json`` (``{"config": row, "seed": j}``);
    ``objective_modes`` says which objectives are maximized (worst = min); the others are
    minimized (worst = max).
    """
    out = np.array(values, dtype=np.float64, copy=True)
    if not np.isnan(out).any():
        return out
    modes = dict(objective_modes or {})
    failed = {(int(f["config"]), int(f["seed"])) for f in failures}
    n_configs, n_seeds, n_fid, _ = out.shape
    names = list(objectives)
    e = names.index(elapsed_time_attr) if elapsed_time_attr is not None and elapsed_time_attr in names else None
    # seeds that never ran: another seed of the same configuration (seed j takes seed j mod n of the ran ones)
    for c in range(n_configs):
        ran = [s for s in range(n_seeds) if (c, s) in failed or not np.isnan(out[c, s]).all()]
        for s in range(n_seeds):
            if ran and s not in ran:
                out[c, s] = out[c, ran[s % len(ran)]]
    # the rest (failed runs, epochs never reached): worst value of the table at that fidelity
    with np.errstate(all="ignore"), quiet_nan_warnings():
        for o, name in enumerate(objectives):
            if o == e:
                continue
            column = out[..., o]
            worst = np.nanmin(column, axis=(0, 1)) if modes.get(name) == "max" else np.nanmax(column, axis=(0, 1))
            worst = np.where(np.isnan(worst), 0.0, worst)
            column[:] = np.where(np.isnan(column), worst[None, None, :], column)
        if e is not None:
            elapsed = out[..., e]
            steps = np.diff(elapsed, axis=2)
            first = np.nanmedian(elapsed[:, :, 0]) if not np.isnan(elapsed[:, :, 0]).all() else 1.0
            typical = np.nanmedian(steps) if steps.size and not np.isnan(steps).all() else first
            for c in range(n_configs):
                for s in range(n_seeds):
                    curve = elapsed[c, s]
                    known = np.flatnonzero(~np.isnan(curve))
                    if len(known) == n_fid:
                        continue
                    own = np.diff(curve[known])
                    step = float(np.mean(own)) if len(own) else float(typical)
                    t = curve[known[-1]] if len(known) else float(first) - step
                    for k in range(n_fid):
                        if np.isnan(curve[k]):
                            t = t + step
                            curve[k] = t
                        else:
                            t = curve[k]
    return out



def load_tabulated(source: str | Path, data_dir: str | Path | None = None, *, fill_failed: bool = True,
                   surrogate: Any = "knn", mmap: bool = False) -> TabularBlackbox:
    """The table of a tabulated benchmark: ``source`` is a folder, or a name (``mlp_tabular`` or
    ``mlp_tabular-tab``) found along :func:`tabulated_search_path`.

    ``fill_failed`` (default) fills the NaN cells of failed and missing runs for a replay (see
    :func:`fill_failed_cells`). The loader of the ``tabulated`` blackbox family.

    Raises:
        UserError: no such table (the message lists where it was searched and how to make one).
    """
    path = Path(str(source)).expanduser()
    if path.is_dir():
        folder: Path | None = path
    elif "/" in str(source) or str(source).startswith("."):
        raise UserError(f"tabulated blackbox folder {source} does not exist")
    else:
        folder = find_tabulated(str(source), data_dir)
    if folder is None:
        base = str(source).removesuffix(TABULATED_SUFFIX)
        where = ", ".join(map(str, tabulated_search_path(data_dir)))
        raise UserError(f"no table of {base}{TABULATED_SUFFIX} in {where}; make it with "
                        f" `tunebench tabulate --benchmark {base} --num-configs N --seeds S`")
    table = TabularBlackbox.load(folder, mmap=mmap and not fill_failed, surrogate=surrogate)
    if not fill_failed:
        return table
    meta = read_meta(folder)
    info = meta.get(TABULATED_KEY) if isinstance(meta.get(TABULATED_KEY), dict) else {}
    filled = fill_failed_cells(table.values, table.objectives, elapsed_time_attr=table.elapsed_time_attr,
                               objective_modes=info.get("objective_modes"), failures=info.get("failures") or ())
    if filled is table.values or np.array_equal(filled, table.values, equal_nan=True):
        return table
    return TabularBlackbox(filled, table.configs_dataframe(), table.config_space, objectives=table.objectives,
                           fidelity_name=table.fidelity_name, fidelity_values=table.fidelity_values,
                           elapsed_time_attr=table.elapsed_time_attr, name=table.name, optimum=table.optimum,
                           surrogate=surrogate)

