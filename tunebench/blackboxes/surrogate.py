"""Surrogate blackboxes: a regression model fitted on a table evaluates any configuration (L2).

A :class:`SurrogateBlackbox` wraps a :class:`~tunebench.blackboxes.tabular.TabularBlackbox` and
a scikit-learn regressor. The model's input is the configuration encoded to the unit cube
(:func:`tunebench.space.encode_configs`: log scales, one-hot categories); its output is the
configuration's *whole* table slice, flattened: ``n_seeds × n_fidelities × n_objectives``
numbers. One multi-output model thus predicts every seed's learning curves at once, and a
1-nearest-neighbour model (the default) returns exactly the table's row for a tabulated
configuration, for every seed. Missing (NaN) table values are replaced by the mean of their
column (over configurations) before fitting.

After prediction, the elapsed-time objective is made non-decreasing along the fidelities
(``np.maximum.accumulate``), as the simulator needs.

``model="knn"`` fits a ``KNeighborsRegressor`` (kept in :attr:`SurrogateBlackbox.model`) but, for
calls with few configurations, predicts the same thing with a direct numpy nearest-neighbour
search: scikit-learn's ``predict`` costs about half a millisecond per call, too slow for a
simulator evaluating one configuration per trial.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.errors import UserError
from tunebench.space import get_encoder, hyperparameters, validate_space
from tunebench.types import Config

logger = logging.getLogger(__name__)

__all__ = ["SurrogateBlackbox", "SURROGATE_MODELS"]

#: The model names :class:`SurrogateBlackbox` accepts (besides a regressor instance).
SURROGATE_MODELS = ("knn", "random_forest")

#: Up to this many configurations per call, ``model="knn"`` predicts with numpy directly.
_FAST_KNN_MAX = 64


class Table(Protocol):
    """What a surrogate learns from: a :class:`~tunebench.blackboxes.tabular.TabularBlackbox`
    (written as a protocol so that this module does not import the table's, which imports this one
    to evaluate configurations outside its rows)."""

    name: str
    config_space: dict[str, Any]
    fidelity_name: str | None
    fidelity_values: np.ndarray
    objectives: tuple[str, ...]
    elapsed_time_attr: str | None
    n_seeds: int
    optimum: dict[str, float] | None
    values: np.ndarray

    @property
    def configs(self) -> Sequence[Config]: ...

    @property
    def n_configs(self) -> int: ...

    def objective_index(self, name: str) -> int: ...


def _make_model(model: Any, random_state: int, n_neighbors: int, n_estimators: int) -> tuple[Any, str]:
    """A fresh (unfitted) regressor for ``model`` and a short name for messages."""
    # deferred: scikit-learn (heavy): each branch imports what it builds the model with
    if isinstance(model, str):
        if model == "knn":
            from sklearn.neighbors import KNeighborsRegressor

            return KNeighborsRegressor(n_neighbors=n_neighbors, algorithm="brute"), f"knn-{n_neighbors}"
        if model == "random_forest":
            from sklearn.ensemble import RandomForestRegressor

            return RandomForestRegressor(n_estimators=n_estimators, random_state=random_state,
                                         n_jobs=1), "random_forest"
        raise UserError(f"unknown surrogate model {model!r}; use one of {', '.join(SURROGATE_MODELS)} or a "
                        "scikit-learn regressor instance")
    if not (callable(getattr(model, "fit", None)) and callable(getattr(model, "predict", None))):
        raise UserError(f"surrogate model {model!r} has no fit/predict methods; use one of "
                        f"{', '.join(SURROGATE_MODELS)} or a scikit-learn regressor instance")
    from sklearn.base import clone

    try:
        fresh = clone(model)
    except TypeError:  # not a scikit-learn estimator: use it as it is
        fresh = model
    return fresh, type(model).__name__


class SurrogateBlackbox(Blackbox):
    """Any configuration of the space evaluated by a regressor fitted on a table.

    Args:
        table: the tabular blackbox to learn from (fidelities, objectives, seeds are its own).
        model: ``"knn"`` (``KNeighborsRegressor``, ``n_neighbors`` neighbours; 1 by default, which
            reproduces table rows exactly), ``"random_forest"`` (``RandomForestRegressor`` with
            ``n_estimators`` trees), or any scikit-learn regressor supporting multi-output targets
            (cloned before fitting).
        config_space: the space to evaluate (default the table's); it may be wider than the table's,
            for example a continuous range over a table computed on a grid.
        name: identifier (default ``"<table name>-surrogate"``).
        random_state: seed of the random forest.

    The model is fitted on the first :meth:`evaluate` (or by calling :meth:`fit`).
    """

    def __init__(self, table: Table, model: Any = "knn", *, config_space: Mapping[str, Any] | None = None,
                 name: str | None = None, n_neighbors: int = 1, n_estimators: int = 50,
                 random_state: int = 0) -> None:
        self.table = table
        self.name = name or f"{table.name}-surrogate"
        self.config_space = dict(validate_space(config_space)) if config_space is not None else table.config_space
        missing = [n for n in hyperparameters(self.config_space) if n not in hyperparameters(table.config_space)]
        if missing:
            raise UserError(f"{self.name}: the hyperparameter(s) {missing} are not in the table {table.name}, so "
                            "the surrogate cannot learn them")
        self.fidelity_name = table.fidelity_name
        self.fidelity_values = table.fidelity_values
        self.objectives = table.objectives
        self.elapsed_time_attr = table.elapsed_time_attr
        self.n_seeds = table.n_seeds
        self.optimum = table.optimum  # of the table; the surrogate's own optimum may differ
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int) or n_neighbors < 1:
            raise UserError(f"{self.name}: n_neighbors must be an integer >= 1, got {n_neighbors!r}")
        self._unfitted, self.model_name = _make_model(model, random_state, n_neighbors, n_estimators)
        self._builtin_knn = isinstance(model, str) and model == "knn"
        self._knn: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None
        self.model: Any = None  #: the fitted regressor (None until :meth:`fit`)
        self._encoder = get_encoder(self.config_space)
        self._elapsed = None if table.elapsed_time_attr is None else table.objective_index(table.elapsed_time_attr)
        self._shape = table.values.shape[1:]

    def _encode(self, configs: Sequence[Config]) -> np.ndarray:
        X = self._encoder.encode(configs)
        return X if X.shape[1] else np.zeros((len(configs), 1))

    def fit(self) -> SurrogateBlackbox:
        """Fit the model on the table (called by the first :meth:`evaluate`); returns self."""
        table = self.table
        X = self._encode(table.configs)
        Y = np.asarray(table.values, dtype=np.float64).reshape(table.n_configs, -1)
        if np.isnan(Y).any():
            means = np.nanmean(np.where(np.isnan(Y).all(axis=0), 0.0, Y), axis=0)
            Y = np.where(np.isnan(Y), means, Y)
        model = self._unfitted
        if getattr(model, "n_neighbors", 0) > len(X):  # fewer configurations than neighbours
            model.set_params(n_neighbors=len(X))
        try:
            model.fit(X, Y)
        except ValueError as e:
            raise UserError(f"{self.name}: fitting the {self.model_name} surrogate failed ({e}); use a regressor "
                            "that supports multi-output targets") from None
        logger.debug("%s: fitted a %s surrogate on %d configurations", self.name, self.model_name, len(X))
        self.model = model
        if self._builtin_knn:
            # the same prediction as KNeighborsRegressor (uniform weights, euclidean), without its
            # per-call overhead (~0.5 ms): squared distances as |x'|^2 - 2 x.x' (+ |x|^2, same for all)
            self._knn = (X, np.einsum("ij,ij->i", X, X), Y, int(model.n_neighbors))
        return self

    def _predict(self, X: np.ndarray) -> np.ndarray:
        """Model outputs for encoded configurations ``X``, shape ``(len(X), n_outputs)``."""
        if self._knn is not None and len(X) <= _FAST_KNN_MAX:
            X_train, sq_norms, Y, k = self._knn
            distances = sq_norms - 2.0 * (X @ X_train.T)
            if k == 1:
                predicted: np.ndarray = Y[np.argmin(distances, axis=1)]
                return predicted
            nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
            predicted = Y[nearest].mean(axis=1)
            return predicted
        return np.asarray(self.model.predict(X), dtype=np.float64)

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        """Predicted curves of ``configs`` (elapsed time made monotone), at the given fidelities."""
        if self.model is None:
            self.fit()
        n = len(configs)
        out = self._predict(self._encode(configs)).reshape(n, *self._shape)[:, seed]
        if self._elapsed is not None:
            out[:, :, self._elapsed] = np.maximum.accumulate(out[:, :, self._elapsed], axis=1)
        return out[:, fidelity_index]
