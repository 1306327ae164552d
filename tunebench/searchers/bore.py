"""BORE: Bayesian optimization by density-ratio estimation, as a searcher.

Tiao, Klein, Seeger, Bonilla, Archambeau, Ramos: "BORE: Bayesian Optimization by Density-Ratio
Estimation", ICML 2021 (arXiv:2102.09009).

Expected improvement at the ``gamma``-quantile ``tau`` of the observed values is, up to a
monotone transformation, the density ratio ``l(x) / g(x)`` of the configurations whose value is
below ``tau`` (``l``) and above it (``g``); that ratio is in turn a monotone function of the
probability ``P(y <= tau | x)`` that a probabilistic classifier learns from the observations
labelled ``1`` (the best ``gamma`` fraction) and ``0`` (the rest).  So each suggestion

1. labels the observations (best ``ceil(gamma * n)`` -> 1, ties by arrival order),
2. trains a scikit-learn classifier on their unit-cube encodings (:mod:`tunebench.space`),
3. proposes the candidate with the highest predicted class-1 probability among
   ``num_candidates`` random configurations plus ``num_local`` local moves (Gaussian steps in
   the encoding) around the best observed configurations; a candidate proposed before is
   skipped.

The first ``num_init_random`` suggestions (``points_to_evaluate`` first) and a fraction
``random_fraction`` of the later ones are random (exploration).

**Classifier.** The default is scikit-learn's ``GradientBoostingClassifier`` (50 trees of
depth 3, ``subsample=0.8``): it needs no feature scaling, picks the relevant hyperparameters by
itself (unimportant ones do not dilute it), copes with the one-hot columns of categorical
hyperparameters, is deterministic given its ``random_state`` (single-threaded), and scores a
batch of a few hundred candidates in about 2 ms.  Its fit is dominated by a per-tree overhead
(about 0.1 s on a slow 2-core machine, whether on 30 or 500 observations), hence the refit
schedule below.  Random forests and extra-trees cost as much to fit and several times more to
predict (a Python loop over the trees); a small MLP fits three to four times slower and needs
more data before its probabilities are useful.  ``"knn"`` (distance-weighted 5 nearest
neighbours) fits in well under a millisecond and is a good choice for small budgets and
low-dimensional spaces; ``"rf"``, ``"et"``, ``"mlp"`` and ``"logreg"`` are available too.
Classifiers give plateaus of equal probability: among equal scores a local move is preferred
(exploitation), and ``random_fraction`` keeps exploring.

**Cost.** The searcher reads no clock, so training time is capped by construction: at most
``max_train`` observations are used per fit (a random subsample keeping the class proportions),
and the classifier is refitted only when the number of observations has grown by
``refit_fraction`` since the last fit (every new observation while there are fewer than
``1 / refit_fraction``), so fits are amortized over many suggestions when there are many
observations.  The model is not part of :meth:`BORESearcher.state_dict`: a restored searcher
refits it on the same observations with the same ``random_state``, which gives the same model.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np

from tunebench.searchers.base import Searcher
from tunebench.searchers.random import RandomSearcher, canonical_config
from tunebench.space import SpaceEncoder, sample_configs, validate_space
from tunebench.types import Config, Result, float_from_json, json_float, to_minimize

logger = logging.getLogger(__name__)

__all__ = ["BORESearcher", "CLASSIFIERS", "make_classifier"]

#: names accepted by ``classifier``
CLASSIFIERS = ("gb", "rf", "et", "knn", "mlp", "logreg")


def make_classifier(name: str, random_state: int, **kwargs: Any) -> Any:
    """A fresh scikit-learn classifier with ``predict_proba`` (see the module docstring);
    ``kwargs`` override its default parameters.

    Raises:
        ValueError: unknown ``name`` (the message lists :data:`CLASSIFIERS`).
    """
    # deferred: scikit-learn (heavy): each branch imports its classifier's module when it builds one
    if name == "gb":
        from sklearn.ensemble import GradientBoostingClassifier

        params: dict[str, Any] = {"n_estimators": 50, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8}
        return GradientBoostingClassifier(**{**params, **kwargs}, random_state=random_state)
    if name in ("rf", "et"):
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        cls = RandomForestClassifier if name == "rf" else ExtraTreesClassifier
        params = {"n_estimators": 50, "min_samples_leaf": 2, "n_jobs": 1}
        return cls(**{**params, **kwargs}, random_state=random_state)
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        params = {"n_neighbors": 5, "weights": "distance"}
        return KNeighborsClassifier(**{**params, **kwargs})  # deterministic: no random_state
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        params = {"hidden_layer_sizes": (32, 32), "max_iter": 200, "alpha": 1e-3}
        return MLPClassifier(**{**params, **kwargs}, random_state=random_state)
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(**{"C": 1.0, **kwargs}, random_state=random_state)
    raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {name!r}")


def _value_to_minimize(result: Result | None, metric: str, mode: str) -> float | None:
    if not result:
        return None
    try:
        value = float(result[metric])
    except (KeyError, TypeError, ValueError):
        return None
    return to_minimize(value, mode)


class BORESearcher(Searcher):
    """Bayesian optimization by density-ratio estimation (see the module docstring).

    Args:
        config_space: name -> domain or constant.
        metric: name of the metric to optimize.
        mode: ``"min"`` or ``"max"``.
        seed: seed of the random number generators (and of the classifier's ``random_state``).
        gamma: fraction of the observations labelled "good" (class 1), in ``(0, 1)``.
        num_init_random: number of random suggestions before the model is used (at least 2).
        classifier: one of :data:`CLASSIFIERS` (default ``"gb"``, gradient boosting).
        classifier_kwargs: parameters of the classifier overriding the defaults of
            :func:`make_classifier` (e.g. ``{"n_estimators": 100}``).
        random_fraction: probability that a suggestion past the initial ones is random.
        num_candidates: random candidates scored per suggestion.
        num_local: local-move candidates per suggestion, Gaussian steps of ``local_scale`` (in
            the unit-cube encoding) around the ``num_local_parents`` best observations.
        local_scale: standard deviation of those steps.
        num_local_parents: how many of the best observations local moves start from.
        refit_fraction: refit when the observations have grown by this fraction since the last
            fit (0: refit at every new observation).
        max_train: observations used per fit at most (a random subsample beyond).
        points_to_evaluate: configurations proposed first (they count among the initial random
            ones); missing keys take the space's default values.

    Raises:
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metric: str,
        mode: str = "min",
        seed: int = 0,
        gamma: float = 0.25,
        num_init_random: int = 10,
        classifier: str = "gb",
        classifier_kwargs: dict[str, Any] | None = None,
        random_fraction: float = 0.1,
        num_candidates: int = 256,
        num_local: int = 64,
        local_scale: float = 0.1,
        num_local_parents: int = 5,
        refit_fraction: float = 0.1,
        max_train: int = 2000,
        points_to_evaluate: list[Config] | None = None,
    ):
        super().__init__(config_space, metric, mode, seed)
        validate_space(config_space)
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
        if isinstance(num_init_random, bool) or not isinstance(num_init_random, int) or num_init_random < 2:
            raise ValueError(f"num_init_random must be an integer >= 2, got {num_init_random!r}")
        if classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}")
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or num_candidates < 1:
            raise ValueError(f"num_candidates must be an integer >= 1, got {num_candidates!r}")
        for name, value in (("num_local", num_local), ("num_local_parents", num_local_parents)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not local_scale > 0:
            raise ValueError(f"local_scale must be > 0, got {local_scale!r}")
        if not refit_fraction >= 0:
            raise ValueError(f"refit_fraction must be >= 0, got {refit_fraction!r}")
        if isinstance(max_train, bool) or not isinstance(max_train, int) or max_train < 2:
            raise ValueError(f"max_train must be an integer >= 2, got {max_train!r}")
        self.gamma = float(gamma)
        self.num_init_random = num_init_random
        self.classifier = classifier
        self.classifier_kwargs = dict(classifier_kwargs or {})
        try:
            make_classifier(classifier, 0, **self.classifier_kwargs)  # unknown parameters fail here
        except TypeError as exc:
            raise ValueError(f"classifier_kwargs {self.classifier_kwargs!r} do not fit classifier {classifier!r}: "
                             f"{exc}") from None
        self.random_fraction = float(random_fraction)
        self.num_candidates = num_candidates
        self.num_local = num_local
        self.local_scale = float(local_scale)
        self.num_local_parents = num_local_parents
        self.refit_fraction = float(refit_fraction)
        self.max_train = max_train
        self._encoder = SpaceEncoder(config_space)
        self._random = RandomSearcher(config_space, metric, mode, seed=seed, points_to_evaluate=points_to_evaluate)
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0xB0BE])))
        self._configs: list[Config] = []  #: observed configurations, in arrival order
        self._values: list[float] = []  #: their values to minimize
        self._X_buf = np.empty((16, self._encoder.encoded_dim))  #: their encodings (derived), grown by doubling
        self._last: dict[int, float] = {}  #: last value of each running or paused trial
        self._seen: set[str] = set()  #: canonical configs suggested so far
        self._n_suggested = 0
        self._fit_n = 0  #: number of observations the model was (or is to be) fitted on
        self._model: Any = None

    # -- model ------------------------------------------------------------------------------------

    @property
    def n_fitted(self) -> int:
        """Number of observations the current model was fitted on (0: no model yet)."""
        return self._fit_n

    def labels(self, n: int | None = None) -> np.ndarray:
        """Class labels of the first ``n`` observations (all by default): 1 for the best
        ``ceil(gamma * n)`` (at most ``n - 1``; ties by arrival order), 0 for the others."""
        n = len(self._values) if n is None else n
        values = np.asarray(self._values[:n], dtype=float)
        k = min(max(1, math.ceil(self.gamma * n)), n - 1)
        z = np.zeros(n, dtype=int)
        z[np.argsort(values, kind="stable")[:k]] = 1
        return z

    @property
    def _X(self) -> np.ndarray:
        """Encodings of the observations, one row each (a view)."""
        return self._X_buf[: len(self._values)]

    def _random_state(self, n: int) -> int:
        return int(np.random.SeedSequence([int(self.seed), n, 0xB0BE]).generate_state(1)[0] & 0x7FFFFFFF)

    def _fit(self, n: int) -> None:
        """Fit the classifier on the first ``n`` observations (deterministic given them)."""
        X = self._X[:n]
        z = self.labels(n)
        random_state = self._random_state(n)
        if n > self.max_train:
            # a random subsample keeping the class proportions (stratified), same seed as the model
            sub = np.random.default_rng(random_state)
            idx = np.concatenate([
                sub.choice(np.flatnonzero(z == c), size=max(1, round(self.max_train * np.mean(z == c))), replace=False)
                for c in (0, 1)
            ])
            idx.sort()
            X, z = X[idx], z[idx]
        model = make_classifier(self.classifier, random_state, **self.classifier_kwargs)
        if self.classifier == "knn":  # no more neighbours than training points
            model.set_params(n_neighbors=min(model.n_neighbors, len(z)))
        from sklearn.exceptions import ConvergenceWarning  # deferred: scikit-learn (heavy), as make_classifier

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # (MLP) the probabilities are usable
            model.fit(X, z)
        self._model = model
        self._fit_n = n

    def _ensure_model(self) -> None:
        n = len(self._values)
        if self._model is None and self._fit_n >= 2:
            self._fit(self._fit_n)  # rebuilt after load_state_dict: the same fit as before
        if self._model is None or n - self._fit_n >= max(1, math.floor(self.refit_fraction * self._fit_n)):
            self._fit(n)

    def predict_proba(self, configs: list[Config]) -> np.ndarray:
        """Predicted probability that each config is among the best ``gamma`` (the acquisition
        function, a monotone transform of expected improvement), from the current model (fitted
        first if needed).

        Raises:
            ValueError: fewer than 2 observations (no model yet).
        """
        if len(self._values) < 2:
            raise ValueError(f"BORE needs at least 2 observations to fit its classifier, it has {len(self._values)}")
        self._ensure_model()
        return self._proba(self._encoder.encode(configs))

    def _proba(self, X: np.ndarray) -> np.ndarray:
        classes = list(self._model.classes_)
        proba: np.ndarray = self._model.predict_proba(X)[:, classes.index(1)]
        return proba

    # -- contract ---------------------------------------------------------------------------------

    def suggest(self, trial_id: int) -> Config:
        """Called for each new trial: random for the first ``num_init_random`` suggestions, with
        probability ``random_fraction``, or while fewer than 2 observations exist; else the
        candidate that the classifier rates most likely to be among the best (never ``None``)."""
        self._n_suggested += 1
        if (
            self._n_suggested <= self.num_init_random
            or len(self._values) < 2
            or self._rng.random() < self.random_fraction
        ):
            config = self._random.suggest(trial_id)
        else:
            config = self._model_suggestion()
        self._seen.add(canonical_config(config))
        return config

    def _model_suggestion(self) -> Config:
        self._ensure_model()
        rng = self._rng
        encoder = self._encoder
        candidates: list[Config] = sample_configs(self.config_space, rng, self.num_candidates)
        X = encoder.encode(candidates)
        n_parents = min(self.num_local_parents, len(self._values))
        if self.num_local and n_parents:
            best = np.argsort(np.asarray(self._values), kind="stable")[:n_parents]
            parents = self._X[best[rng.integers(n_parents, size=self.num_local)]]
            moved = np.clip(parents + self.local_scale * rng.standard_normal(parents.shape), 0.0, 1.0)
            local: list[Config] = encoder.decode(moved)
            # local moves first: among equal scores (trees give plateaus) the first is taken
            candidates = local + candidates
            X = np.vstack([encoder.encode(local), X])
        scores = self._proba(X)
        order: list[int] = np.argsort(-scores, kind="stable").tolist()
        for i in order:
            if canonical_config(candidates[i]) not in self._seen:
                return candidates[i]
        logger.debug("every BORE candidate was proposed before: a random configuration instead")
        return self._random.suggest(-1)

    def on_result(self, trial_id: int, config: Config, result: Result) -> None:
        """Called for each result: remembers the trial's last value (used by :meth:`on_stop`)."""
        value = _value_to_minimize(result, self.metric, self.mode)
        if value is not None:
            self._last[trial_id] = value

    def on_complete(self, trial_id: int, config: Config, result: Result | None) -> None:
        """Called when the trial ends normally: records the observation (config, final value;
        the last reported value if ``result`` has none; nothing if there is none)."""
        value = _value_to_minimize(result, self.metric, self.mode)
        last = self._last.pop(trial_id, None)
        self._observe(config, value if value is not None else last)

    def on_stop(self, trial_id: int, config: Config, paused: bool) -> None:
        """Called when the scheduler stops or pauses the trial: records its last value."""
        self._observe(config, self._last.pop(trial_id, None))

    def on_error(self, trial_id: int, config: Config) -> None:
        """Called when the trial failed: no observation."""
        self._last.pop(trial_id, None)

    def _observe(self, config: Config, value: float | None) -> None:
        if value is None:
            return
        row = self._encoder.encode([config])
        n = len(self._values)
        if n == len(self._X_buf):
            self._X_buf = np.vstack([self._X_buf, np.empty_like(self._X_buf)])
        self._X_buf[n] = row[0]
        self._configs.append(dict(config))
        self._values.append(value)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: observations, last values, suggested configs, counters, RNG states,
        and the number of observations the model was fitted on (the model is refitted on load)."""
        return {
            "configs": self._configs,
            "values": [json_float(v) for v in self._values],
            "last": {str(tid): json_float(v) for tid, v in self._last.items()},
            "seen": sorted(self._seen),
            "n_suggested": self._n_suggested,
            "fit_n": self._fit_n,
            "rng": self._rng.bit_generator.state,
            "random": self._random.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`; the model is refitted lazily."""
        self._configs = [dict(c) for c in state["configs"]]
        self._values = [float_from_json(v) for v in state["values"]]
        X = self._encoder.encode(self._configs)
        self._X_buf = np.vstack([X, np.empty((max(16, len(X)), X.shape[1]))])
        self._last = {int(tid): float_from_json(v) for tid, v in state["last"].items()}
        self._seen = set(state["seen"])
        self._n_suggested = int(state["n_suggested"])
        self._fit_n = int(state["fit_n"])
        self._model = None
        self._rng.bit_generator.state = state["rng"]
        self._random.load_state_dict(state["random"])
