"""Tabular blackboxes: learning curves looked up in a table (L2).

A :class:`TabularBlackbox` holds every objective of every tabulated configuration, for every
seed and fidelity, in one float array::

    values.shape == (n_configs, n_seeds, n_fidelities, n_objectives)

next to the configurations (row ``i`` of ``values`` belongs to ``configs[i]``) and the config
space. A lookup hashes the configuration's hyperparameter values (a tuple, in the order of the
space) into a dict of rows, so evaluating one tabulated configuration costs a few microseconds.
A configuration of the space that is not in the table is evaluated by a
:class:`~tunebench.blackboxes.surrogate.SurrogateBlackbox` fitted on the table the first time it
is needed (nearest neighbour by default: the curve of the closest tabulated configuration).

Build one from a long-format DataFrame with :meth:`TabularBlackbox.from_dataframe`, from arrays
with the constructor, or from any other blackbox with :func:`tabulate`; store it with
:meth:`TabularBlackbox.save` and read it back with :meth:`TabularBlackbox.load`.

On-disk format (version 1; also in ``docs/blackbox-format.md``)
----------------------------------------------------------------

A folder with exactly these three files; nothing is pickled, so a folder from an untrusted
source cannot run code when loaded:

``meta.json``
    A JSON object::

        {
          "format": "tunebench-tabular-blackbox",   # required, this exact string
          "format_version": 1,                      # required, an integer <= 1
          "name": "my-benchmark",                   # required
          "config_space": {...},                    # required, as tunebench.space.space_to_json writes it
          "fidelity_name": "epoch",                 # required, null for a single-fidelity table
          "fidelity_values": [1, 2, ..., 27],       # required, sorted, distinct numbers ([1] if single-fidelity)
          "objectives": ["loss", "time"],           # required, names of the last axis of values.npy
          "elapsed_time_attr": "time",              # optional, one of objectives or null
          "n_configs": 1000,                        # optional, checked when present
          "n_seeds": 1,                             # optional, checked when present
          "optimum": {"loss": 0.0123}               # optional, best known value of some objectives, or null
        }

``configs.parquet``
    One row per configuration, in the order of the first axis of ``values.npy``; one column per
    hyperparameter (the domains of the config space; constants need no column), named as in the
    space. Columns of other names are ignored. Categorical values that parquet cannot store in one
    column (a ``choice`` mixing strings and numbers) may be written as their text; they are read
    back with the domain's ``cast``.

``values.npy``
    A numpy ``.npy`` array (``np.save``) of dtype float32 or float64 (not object: it is read with
    ``allow_pickle=False``) and shape ``(n_configs, n_seeds, n_fidelities, n_objectives)``. NaN marks
    a missing value. The elapsed-time objective is the *cumulative* training time in seconds at
    each fidelity, non-decreasing along the fidelity axis.

Any tool that writes these files (pandas + numpy suffice) produces a folder that
:meth:`TabularBlackbox.load` reads. Problems are reported as :class:`~tunebench.errors.UserError`
naming the file at fault.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.blackboxes.surrogate import SurrogateBlackbox
from tunebench.errors import UserError
from tunebench.space import Domain, hyperparameters, space_from_json, space_to_json, validate_space
from tunebench.types import Config

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "TabularBlackbox",
    "tabulate",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "META_FILE",
    "CONFIGS_FILE",
    "VALUES_FILE",
]

#: The ``format`` entry of ``meta.json``.
FORMAT_NAME = "tunebench-tabular-blackbox"
#: The newest ``format_version`` this code reads and the one it writes.
FORMAT_VERSION = 1
META_FILE = "meta.json"
CONFIGS_FILE = "configs.parquet"
VALUES_FILE = "values.npy"
_FILES = (META_FILE, CONFIGS_FILE, VALUES_FILE)
_FORMAT_DOC = "docs/blackbox-format.md"

#: Significant digits kept when matching a configuration whose values differ from the table's
#: by rounding (a float32 column, a value printed with fewer digits).
_MATCH_DIGITS = 7


def _normalize(value: Any) -> Any:
    """A value as compared by the tolerant lookup: numbers rounded to 7 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            return number
        return float(f"{number:.{_MATCH_DIGITS}g}")
    return value


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_column(table: str, name: str, domain: Domain, values: Sequence[Any]) -> None:
    """UserError naming the first of ``values`` outside ``domain`` (each distinct value checked once)."""
    try:
        distinct: Sequence[Any] = list(dict.fromkeys(values))
    except TypeError:  # unhashable values
        distinct = values
    for value in distinct:
        if not domain.contains(value):
            raise UserError(f"{table}: the table has {name}={_native(value)!r}, outside its domain {domain!r}; "
                            "widen the config space or drop those configurations")


def _key_getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A fast function config -> tuple of its values of ``names``."""
    if not names:
        return lambda config: ()
    if len(names) == 1:
        only = names[0]
        return lambda config: (config[only],)
    return operator.itemgetter(*names)


def _as_float_array(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":
        raise UserError(f"{name}: values must be a numeric array, got dtype {array.dtype}")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    if array.ndim != 4:
        raise UserError(f"{name}: values must have shape (n_configs, n_seeds, n_fidelities, n_objectives), "
                        f"got shape {array.shape}")
    return array


class TabularBlackbox(Blackbox):
    """Learning curves of a fixed set of configurations, for every seed, fidelity and objective.

    Args:
        values: float array of shape ``(n_configs, n_seeds, n_fidelities, n_objectives)``; kept as
            given (float32 and memory-mapped arrays are fine), returned as float64 by
            :meth:`evaluate`.
        configs: the tabulated configurations, row ``i`` for ``values[i]``: a list of dicts or a
            DataFrame with one column per hyperparameter of ``config_space`` (other keys ignored).
        config_space: the space the configurations come from (constants need no column).
        objectives: names of the last axis of ``values``.
        fidelity_name: name of the fidelity (``"epoch"``), None for a single-fidelity table.
        fidelity_values: the fidelities of the third axis, sorted and distinct; default
            ``1..n_fidelities``.
        elapsed_time_attr: the objective holding cumulative training time (seconds), or None.
        name: identifier of the problem.
        optimum: best known value of some objectives (over configurations, at the last fidelity).
        surrogate: how configurations that are not in the table are evaluated: ``"knn"`` (nearest
            tabulated configuration), ``"random_forest"``, a scikit-learn regressor, or None to
            raise :class:`UserError` for them instead.

    Raises:
        UserError: inconsistent shapes, duplicate configurations, a configuration outside the space,
            an elapsed-time objective that is not one of ``objectives``.
    """

    def __init__(self, values: np.ndarray, configs: Sequence[Mapping[str, Any]] | pd.DataFrame,
                 config_space: Mapping[str, Any], *, objectives: Sequence[str],
                 fidelity_name: str | None = None, fidelity_values: Sequence[float] | np.ndarray | None = None,
                 elapsed_time_attr: str | None = None, name: str = "tabular",
                 optimum: Mapping[str, float] | None = None, surrogate: Any = "knn") -> None:
        self.name = str(name)
        self.config_space = dict(validate_space(config_space))
        self.values = _as_float_array(self.name, values)
        n_configs, n_seeds, n_fidelities, n_objectives = self.values.shape
        self.objectives = tuple(str(o) for o in objectives)
        if len(self.objectives) != n_objectives or len(set(self.objectives)) != n_objectives:
            raise UserError(f"{self.name}: objectives {list(self.objectives)} must be {n_objectives} distinct "
                            f"names, one per entry of the last axis of values (shape {self.values.shape})")
        if n_seeds < 1 or n_fidelities < 1:
            raise UserError(f"{self.name}: values of shape {self.values.shape} need at least one seed and "
                            "one fidelity")
        self.n_seeds = int(n_seeds)
        self.fidelity_name = fidelity_name
        if fidelity_values is None:
            fidelity_values = np.arange(1, n_fidelities + 1)
        fv = np.asarray(fidelity_values).reshape(-1)
        if fv.dtype.kind not in "fiu" or len(fv) != n_fidelities:
            raise UserError(f"{self.name}: fidelity_values must be {n_fidelities} numbers (the third axis of "
                            f"values), got {list(fv)[:5]}{'...' if len(fv) > 5 else ''}")
        if n_fidelities > 1 and not np.all(np.diff(fv) > 0):
            raise UserError(f"{self.name}: fidelity_values must be sorted and distinct, got {fv.tolist()}")
        self.fidelity_values = fv
        if elapsed_time_attr is not None and elapsed_time_attr not in self.objectives:
            raise UserError(f"{self.name}: elapsed_time_attr '{elapsed_time_attr}' is not one of the objectives "
                            f"{list(self.objectives)}")
        self.elapsed_time_attr = elapsed_time_attr
        self.optimum = {str(k): float(v) for k, v in optimum.items()} if optimum else None
        self.surrogate = surrogate

        self._names = list(hyperparameters(self.config_space))
        self._columns = self._read_columns(configs)
        n_rows = len(self._columns[self._names[0]]) if self._names else len(configs)
        if n_rows != n_configs:
            raise UserError(f"{self.name}: {n_rows} configurations but values has {n_configs} rows "
                            f"(shape {self.values.shape}); give one configuration per row")
        self._check_columns()
        keys = list(zip(*(self._columns[n] for n in self._names), strict=True)) if self._names \
            else [()] * n_configs
        self._rows: dict[tuple[Any, ...], int] = {key: i for i, key in enumerate(keys)}
        if len(self._rows) != n_configs:
            dup = next(k for i, k in enumerate(keys) if self._rows[k] != i)  # a later row replaced it
            raise UserError(f"{self.name}: configuration {dict(zip(self._names, dup, strict=True))} appears "
                            "more than once; each configuration must have a single row (put repetitions "
                            "on the seed axis)")
        self._key = _key_getter(self._names)
        self._normalized_rows: dict[tuple[Any, ...], int] | None = None
        self._surrogate: SurrogateBlackbox | None = None
        self._configs: list[Config] | None = None
        self._warned_off_table = False
        self._check_elapsed_time()

    # -- construction helpers -----------------------------------------------------------------

    def _read_columns(self, configs: Any) -> dict[str, list[Any]]:
        """Hyperparameter name -> list of its values, one per row (Python-native values)."""
        columns: dict[str, list[Any]] = {}
        if hasattr(configs, "columns") and hasattr(configs, "iloc"):  # a DataFrame
            missing = [n for n in self._names if n not in configs.columns]
            if missing:
                raise UserError(f"{self.name}: the configurations lack the column(s) {missing} of the config "
                                f"space; columns present: {list(configs.columns)}")
            for n in self._names:
                columns[n] = configs[n].tolist()
            return columns
        configs = list(configs)
        for n in self._names:
            try:
                columns[n] = [c[n] for c in configs]
            except KeyError:
                i = next(i for i, c in enumerate(configs) if n not in c)
                raise UserError(f"{self.name}: configuration {i} ({configs[i]}) lacks the hyperparameter "
                                f"'{n}'") from None
            columns[n] = [v.item() if isinstance(v, np.generic) else v for v in columns[n]]
        return columns

    def _check_columns(self) -> None:
        """UserError for a tabulated value outside its domain (checks each distinct value once)."""
        for n in self._names:
            _check_column(self.name, n, self.config_space[n], self._columns[n])

    def _check_elapsed_time(self) -> None:
        if self.elapsed_time_attr is None or len(self.fidelity_values) < 2:
            return
        elapsed = self.values[..., self.objective_index(self.elapsed_time_attr)]
        decreasing = int(np.count_nonzero(np.diff(elapsed, axis=2) < 0))
        if decreasing:
            logger.warning("%s: the elapsed-time objective '%s' decreases between fidelities in %d place(s); "
                           "it must hold the cumulative time (use a cumulative sum of per-fidelity times)",
                           self.name, self.elapsed_time_attr, decreasing)

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, *, config_space: Mapping[str, Any], fidelity_name: str | None,
                       objectives: Sequence[str], elapsed_time_attr: str | None = None,
                       seed_col: str | None = "seed", name: str = "tabular",
                       optimum: Mapping[str, float] | None = None, missing: str = "error",
                       surrogate: Any = "knn") -> TabularBlackbox:
        """A table from long-format data: one row per (configuration, seed, fidelity).

        ``df`` has one column per hyperparameter of ``config_space``, the fidelity column
        ``fidelity_name`` (None for single-fidelity data: the fidelity values are then ``[1]``),
        one column per objective, and the seed column ``seed_col`` (None, or a default ``"seed"``
        that is absent, for a single seed; seed labels are sorted and numbered ``0..n_seeds-1``).
        Configurations are numbered in order of first appearance; fidelities are sorted. Other
        columns are ignored.

        ``missing`` says what to do with (configuration, seed, fidelity) cells that have no row:
        ``"error"`` (default) raises :class:`UserError` naming one; ``"nan"`` fills them with NaN.

        Raises:
            UserError: a missing column, a duplicate row, a missing cell (with ``missing="error"``),
                a non-numeric objective or fidelity, a value outside the config space.
        """
        import pandas as pd  # deferred: pandas, only where a DataFrame is built

        if missing not in ("error", "nan"):
            raise UserError(f"{name}: missing={missing!r}; use 'error' or 'nan'")
        validate_space(config_space)
        names = list(hyperparameters(config_space))
        objectives = [str(o) for o in objectives]
        if not objectives:
            raise UserError(f"{name}: give at least one objective column")
        if seed_col is not None and seed_col not in df.columns and seed_col == "seed":
            seed_col = None
        needed = names + ([fidelity_name] if fidelity_name else []) + objectives + ([seed_col] if seed_col else [])
        absent = [c for c in needed if c not in df.columns]
        if absent:
            raise UserError(f"{name}: the DataFrame lacks the column(s) {absent}; its columns are {list(df.columns)}")
        if len(df) == 0:
            raise UserError(f"{name}: the DataFrame is empty")
        for n_ in names:
            _check_column(name, n_, config_space[n_], df[n_].unique().tolist())
        n = len(df)
        if names:
            config_codes = df.groupby(names, sort=False, dropna=False).ngroup().to_numpy()
        else:
            config_codes = np.zeros(n, dtype=np.int64)
        n_configs = int(config_codes.max()) + 1
        if fidelity_name:
            fid = pd.to_numeric(df[fidelity_name], errors="coerce").to_numpy()
            if np.isnan(fid.astype(float)).any():
                raise UserError(f"{name}: the fidelity column '{fidelity_name}' must hold numbers (no NaN)")
            fidelity_values, fid_codes = np.unique(fid, return_inverse=True)
        else:
            fidelity_values, fid_codes = np.array([1]), np.zeros(n, dtype=np.int64)
        if seed_col:
            seed_labels, seed_codes = np.unique(df[seed_col].to_numpy(), return_inverse=True)
        else:
            seed_labels, seed_codes = np.array([0]), np.zeros(n, dtype=np.int64)
        n_seeds, n_fid = len(seed_labels), len(fidelity_values)
        try:
            data = df[objectives].apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as e:
            raise UserError(f"{name}: objective columns must be numeric ({e})") from None

        cell = (config_codes * n_seeds + seed_codes.reshape(-1)) * n_fid + fid_codes.reshape(-1)
        counts = np.bincount(cell, minlength=n_configs * n_seeds * n_fid)
        first_rows = np.unique(config_codes, return_index=True)[1]
        configs = df.iloc[first_rows][names] if names else [{}] * n_configs

        def describe(flat: int) -> str:
            c, rest = divmod(int(flat), n_seeds * n_fid)
            s, f = divmod(rest, n_fid)
            config = {k: _native(df[k].iloc[first_rows[c]]) for k in names}
            where = f"configuration {config}"
            if seed_col:
                where += f", {seed_col}={_native(seed_labels[s])!r}"
            if fidelity_name:
                where += f", {fidelity_name}={_native(fidelity_values[f])!r}"
            return where

        if counts.max() > 1:
            flat = int(np.argmax(counts > 1))
            hint = "" if seed_col else " (if these are repetitions, name their seed column with seed_col=...)"
            raise UserError(f"{name}: {int(counts[flat])} rows for {describe(flat)}; each (configuration, seed, "
                            f"fidelity) needs exactly one row{hint}")
        n_missing = int(np.count_nonzero(counts == 0))
        if n_missing and missing == "error":
            flat = int(np.argmax(counts == 0))
            raise UserError(f"{name}: {n_missing} (configuration, seed, fidelity) cell(s) have no row, e.g. "
                            f"{describe(flat)}; complete the table, or pass missing='nan' to fill them with NaN")
        values = np.full((n_configs, n_seeds, n_fid, len(objectives)), np.nan)
        values.reshape(-1, len(objectives))[cell] = data
        fv = fidelity_values
        if fv.dtype.kind == "f" and np.all(np.mod(fv, 1) == 0):
            fv = fv.astype(np.int64)
        return cls(values, configs, config_space, objectives=objectives, fidelity_name=fidelity_name,
                   fidelity_values=fv, elapsed_time_attr=elapsed_time_attr, name=name, optimum=optimum,
                   surrogate=surrogate)

    # -- views of the table ---------------------------------------------------------------------

    @property
    def n_configs(self) -> int:
        """Number of tabulated configurations."""
        return int(self.values.shape[0])

    @property
    def configs(self) -> list[Config]:
        """The tabulated configurations (hyperparameters only), row ``i`` for ``values[i]``.

        Built on first access and cached; do not modify the dicts.
        """
        if self._configs is None:
            if self._names:
                self._configs = [dict(zip(self._names, row, strict=True))
                                 for row in zip(*(self._columns[n] for n in self._names), strict=True)]
            else:
                self._configs = [{} for _ in range(self.n_configs)]
        return self._configs

    def configs_dataframe(self) -> pd.DataFrame:
        """The tabulated configurations as a DataFrame, one column per hyperparameter."""
        import pandas as pd  # deferred: pandas, only where a DataFrame is built

        frame: pd.DataFrame = pd.DataFrame({n: self._columns[n] for n in self._names}, index=range(self.n_configs))
        return frame

    def to_dataframe(self) -> pd.DataFrame:
        """The table in long format (the inverse of :meth:`from_dataframe`).

        One row per (configuration, seed, fidelity): hyperparameter columns, ``seed``, the fidelity
        column (when there is a fidelity name) and one column per objective.
        """
        import pandas as pd  # deferred: pandas, only where a DataFrame is built

        n_configs, n_seeds, n_fid, _ = self.values.shape
        c, s, f = (a.reshape(-1) for a in np.meshgrid(np.arange(n_configs), np.arange(n_seeds),
                                                       np.arange(n_fid), indexing="ij"))
        out: dict[str, Any] = {n: np.asarray(self._columns[n], dtype=object)[c] for n in self._names}
        for n in self._names:
            out[n] = pd.Series(out[n]).infer_objects()
        out["seed"] = s
        if self.fidelity_name:
            out[self.fidelity_name] = self.fidelity_values[f]
        flat = np.asarray(self.values, dtype=np.float64).reshape(-1, len(self.objectives))
        for i, o in enumerate(self.objectives):
            out[o] = flat[:, i]
        frame: pd.DataFrame = pd.DataFrame(out)
        return frame

    def row_of(self, config: Mapping[str, Any]) -> int | None:
        """Row of ``config`` in the table, or None when it is not tabulated.

        Exact values match first; then values equal to 7 significant digits (a config that went
        through float32 or was printed with fewer digits). Called by :meth:`evaluate` for each config.
        """
        try:
            key = self._key(config)
            row = self._rows.get(key)
        except (KeyError, TypeError):
            self.check_config(config)
            raise
        if row is not None:
            return row
        if self._normalized_rows is None:
            normalized: dict[tuple[Any, ...], int] = {}
            for k, i in self._rows.items():
                nk = tuple(map(_normalize, k))
                normalized[nk] = -1 if nk in normalized else i  # -1: ambiguous, use the surrogate
            self._normalized_rows = normalized
        try:
            row = self._normalized_rows.get(tuple(map(_normalize, key)), -1)
        except TypeError:
            return None
        return row if row >= 0 else None

    # -- evaluation -----------------------------------------------------------------------------

    @property
    def surrogate_blackbox(self) -> SurrogateBlackbox:
        """The surrogate that evaluates configurations outside the table (fitted on first use).

        Raises:
            UserError: this table was built with ``surrogate=None``.
        """
        if self._surrogate is None:
            if self.surrogate is None:
                raise UserError(f"{self.name}: this configuration is not in the table and the table has no "
                                "surrogate; evaluate tabulated configurations only (see .configs) or build "
                                "the table with surrogate='knn'")
            self._surrogate = SurrogateBlackbox(self, model=self.surrogate)
        return self._surrogate

    def evaluate(self, configs: Sequence[Config], fidelities: Sequence[float] | np.ndarray | None = None,
                 seed: int = 0, check: bool = True) -> np.ndarray:
        """As :meth:`Blackbox.evaluate`; the simulator's call (one tabulated config, all fidelities)
        takes a shortcut of a few microseconds (a tabulated config needs no domain check)."""
        if fidelities is None and len(configs) == 1 and (not check or 0 <= seed < self.n_seeds):
            try:
                row = self._rows.get(self._key(configs[0]))
            except (KeyError, TypeError):
                row = None
            if row is not None:
                return np.array(self.values[row, seed], dtype=np.float64)[None]
        return super().evaluate(configs, fidelities, seed, check)

    def exact_row(self, config: Config) -> int | None:
        """Row of ``config`` when its values are exactly those of a table row, else None (no
        7-digit matching, unlike :meth:`row_of`). ``evaluate([config], seed=s)`` of such a config
        is ``values[row, s]``: the simulator caches curves per row with this."""
        try:
            return self._rows.get(self._key(config))
        except (KeyError, TypeError):
            return None

    def check_config(self, config: Mapping[str, Any]) -> None:
        """As :meth:`Blackbox.check_config`; a tabulated configuration passes at once."""
        try:
            if self._key(config) in self._rows:
                return
        except (KeyError, TypeError):
            pass
        super().check_config(config)

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        """Table rows of ``configs`` (one fancy-indexing call); off-table configs via the surrogate."""
        if len(configs) == 1:
            try:
                row = self._rows.get(self._key(configs[0]))
            except (KeyError, TypeError):
                row = None
            if row is not None:
                return np.asarray(self.values[row, seed].take(fidelity_index, axis=0), dtype=np.float64)[None]
        get = self._rows.get
        key = self._key
        rows = np.empty(len(configs), dtype=np.intp)
        off_table: list[int] = []
        for i, config in enumerate(configs):
            try:
                row = get(key(config))
            except (KeyError, TypeError):
                row = None
            if row is None:
                row = self.row_of(config)
                if row is None:
                    off_table.append(i)
                    row = 0
            rows[i] = row
        out = np.asarray(self.values[rows[:, None], seed, np.asarray(fidelity_index)[None, :]], dtype=np.float64)
        if off_table:
            surrogate = self.surrogate_blackbox
            if not self._warned_off_table:
                self._warned_off_table = True
                logger.info("%s: configuration %s is not in the table; evaluating such configurations with "
                            "a %s surrogate fitted on the table", self.name, dict(configs[off_table[0]]),
                            surrogate.model_name)
            out[off_table] = surrogate._evaluate([configs[i] for i in off_table], fidelity_index, seed)
        return out

    # -- files --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, dtype: Any = None) -> Path:
        """Write the table to the folder ``path`` (created if needed) in the format of this module.

        ``dtype`` (e.g. ``np.float32``) converts the values before writing; default: as they are.
        Existing files of the format in the folder are replaced (each written to a temporary name
        first). Returns the folder.
        """
        folder = Path(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the blackbox folder {folder}: {e}") from None
        values = np.asarray(self.values, dtype=dtype) if dtype is not None else np.asarray(self.values)
        if values.dtype.kind != "f":
            raise UserError(f"{self.name}: save needs a float dtype, got {values.dtype}")
        frame = self.configs_dataframe()
        for n in self._names:
            kinds = {type(v) for v in self._columns[n]}
            if len(kinds) > 1 and not kinds <= {int, float}:  # parquet needs one type per column
                frame[n] = [repr(v) if isinstance(v, float) else str(v) for v in self._columns[n]]
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "config_space": space_to_json(self.config_space),
            "fidelity_name": self.fidelity_name,
            "fidelity_values": self.fidelity_values.tolist(),
            "objectives": list(self.objectives),
            "elapsed_time_attr": self.elapsed_time_attr,
            "n_configs": self.n_configs,
            "n_seeds": self.n_seeds,
            "optimum": self.optimum,
        }
        tmp = {f: folder / f".{f}.tmp" for f in _FILES}
        try:
            frame.to_parquet(tmp[CONFIGS_FILE], index=False)
        except ImportError as e:
            raise UserError(f"writing {CONFIGS_FILE} needs pyarrow: pip install 'tunebench[parquet]' ({e})") from None
        with open(tmp[VALUES_FILE], "wb") as fh:
            np.save(fh, values, allow_pickle=False)
        tmp[META_FILE].write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        for f in (CONFIGS_FILE, VALUES_FILE, META_FILE):
            os.replace(tmp[f], folder / f)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = False, surrogate: Any = "knn") -> TabularBlackbox:
        """Read a folder written by :meth:`save` (or by any tool following the format).

        ``mmap=True`` memory-maps ``values.npy`` instead of reading it (large tables). Never
        unpickles anything.

        Raises:
            UserError: the folder or one of its files is missing or corrupt (the message names it).
        """
        folder = Path(path)
        if not folder.is_dir():
            raise UserError(f"blackbox folder {folder} does not exist (or is not a folder); it must hold "
                            f"{', '.join(_FILES)} (see {_FORMAT_DOC})")
        for f in _FILES:
            if not (folder / f).is_file():
                raise UserError(f"blackbox folder {folder} has no {f}; a tabular blackbox folder holds "
                                f"{', '.join(_FILES)} (see {_FORMAT_DOC})")
        meta = _read_meta(folder / META_FILE)
        where = folder / META_FILE
        try:
            space = space_from_json(meta["config_space"])
        except UserError as e:
            raise UserError(f"{where}: invalid config_space: {e}") from None
        try:
            values = np.load(folder / VALUES_FILE, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"{folder / VALUES_FILE} is corrupt or not a .npy array of floats: {e}") from None
        if not isinstance(values, np.ndarray) or values.dtype.kind != "f" or values.ndim != 4:
            raise UserError(f"{folder / VALUES_FILE} must hold a float array of shape (n_configs, n_seeds, "
                            f"n_fidelities, n_objectives), got {getattr(values, 'dtype', '?')} of shape "
                            f"{getattr(values, 'shape', '?')}")
        expected = {"n_configs": 0, "n_seeds": 1, "fidelity_values": 2, "objectives": 3}
        for key, axis in expected.items():
            if key not in meta or meta[key] is None:
                continue
            size = meta[key] if isinstance(meta[key], int) else len(meta[key])
            if values.shape[axis] != size:
                raise UserError(f"{folder / VALUES_FILE} has shape {values.shape} but {where} gives {key} of "
                                f"size {size} (axis {axis}); the files do not belong together")
        try:
            import pandas as pd  # deferred: pandas, only where a DataFrame is built

            frame = pd.read_parquet(folder / CONFIGS_FILE)
        except ImportError as e:
            raise UserError(f"reading {CONFIGS_FILE} needs pyarrow: pip install 'tunebench[parquet]' ({e})") from None
        except Exception as e:  # pyarrow raises its own error types for corrupt files
            raise UserError(f"{folder / CONFIGS_FILE} is corrupt or not a parquet file: {e}") from None
        if len(frame) != values.shape[0]:
            raise UserError(f"{folder / CONFIGS_FILE} has {len(frame)} rows but {folder / VALUES_FILE} has "
                            f"{values.shape[0]} configurations; the files do not belong together")
        for n, domain in hyperparameters(space).items():
            if n not in frame.columns:
                raise UserError(f"{folder / CONFIGS_FILE} has no column '{n}' (a hyperparameter of the config "
                                f"space); its columns are {list(frame.columns)}")
            if domain.type_name in ("choice", "ordinal"):
                column = frame[n].tolist()
                try:
                    mapping = {v: domain.cast(v) for v in set(column)}
                except UserError as e:
                    raise UserError(f"{folder / CONFIGS_FILE}, column '{n}': {e}") from None
                frame[n] = pd.Series([mapping[v] for v in column], dtype=object)
        try:
            return cls(values, frame, space, objectives=meta["objectives"], fidelity_name=meta["fidelity_name"],
                       fidelity_values=meta["fidelity_values"], elapsed_time_attr=meta.get("elapsed_time_attr"),
                       name=meta["name"], optimum=meta.get("optimum"), surrogate=surrogate)
        except UserError as e:
            raise UserError(f"blackbox folder {folder}: {e}") from None


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is corrupt (not valid JSON): {e}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT_NAME:
        raise UserError(f"{path}: 'format' must be {FORMAT_NAME!r}, got {meta.get('format')!r} "
                        f"(see {_FORMAT_DOC})")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UserError(f"{path}: 'format_version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise UserError(f"{path}: format_version {version} is newer than this tunebench reads "
                        f"({FORMAT_VERSION}); upgrade tunebench")
    for key in ("name", "config_space", "fidelity_name", "fidelity_values", "objectives"):
        if key not in meta:
            raise UserError(f"{path} lacks the entry '{key}' (see {_FORMAT_DOC})")
    if not isinstance(meta["objectives"], list) or not meta["objectives"]:
        raise UserError(f"{path}: 'objectives' must be a non-empty list of names")
    if not isinstance(meta["fidelity_values"], list) or not meta["fidelity_values"]:
        raise UserError(f"{path}: 'fidelity_values' must be a non-empty list of numbers")
    if not isinstance(meta["config_space"], dict):
        raise UserError(f"{path}: 'config_space' must be an object (as space_to_json writes it)")
    return meta


def tabulate(blackbox: Blackbox, configs: Sequence[Config], *, name: str | None = None,
             surrogate: Any = "knn") -> TabularBlackbox:
    """A :class:`TabularBlackbox` of ``configs`` evaluated on ``blackbox`` at every seed and fidelity.

    Useful to freeze a synthetic or surrogate problem into a table (and save it).
    """
    values = np.stack([blackbox.evaluate(configs, seed=s) for s in range(blackbox.n_seeds)], axis=1)
    names = list(hyperparameters(blackbox.config_space))
    rows = [{n: c[n] for n in names} for c in configs]
    return TabularBlackbox(values, rows, blackbox.config_space, objectives=blackbox.objectives,
                           fidelity_name=blackbox.fidelity_name, fidelity_values=blackbox.fidelity_values,
                           elapsed_time_attr=blackbox.elapsed_time_attr, name=name or f"{blackbox.name}-table",
                           optimum=blackbox.optimum, surrogate=surrogate)
