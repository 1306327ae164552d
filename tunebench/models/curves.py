"""Learning-curve surrogates: the interface freeze-thaw BO (:class:`~tunebench.schedulers.ftbo.FTBO`)
decides with, and the data conventions every such surrogate shares (L1 models, numpy only).

Data conventions (one row per observed point of a learning curve):

* ``X``: (n, d) the trial's config encoded in the unit cube (the project's encoder,
  :func:`tunebench.space.get_encoder`); the rows of one curve are equal;
* ``t``: (n,) the fidelity scaled to (0, 1]: ``resource / max_t`` (:func:`scale_fidelity`);
* ``y``: (n,) the value normalized to about [0, 1], *lower is better* (:class:`ValueScaling`:
  the observed minimum maps to 0, the observed maximum to 1);
* ``curve``: (n,) an integer id per curve (the trial id), used to cap the context
  (:func:`cap_context`) and by surrogates that read a curve as a whole.

A surrogate (:class:`CurveSurrogate`) is *fitted* on such data (a prior-data fitted network
conditions on it in context; an ensemble such as :class:`~tunebench.models.dpl.DPLEnsemble`
trains on it) and *predicts* a distribution (:class:`CurvePrediction`) of the value of any config
at any fidelity: its ``mean``, ``prob_below(threshold)`` (the probability of improvement that
MFPI needs) and ``log_pdf(y)`` (the log-likelihood of held-out points, for the surrogate-quality
benchmark).  :class:`GaussianCurvePrediction` is the one for surrogates with a mean and a spread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.special import log_ndtr, ndtr

from tunebench.models.acquisition import log_expected_improvement

__all__ = [
    "CurvePrediction",
    "CurveSurrogate",
    "GP_FEATURE_RANGE",
    "GaussianCurvePrediction",
    "MappedInputs",
    "PowerLawExtrapolation",
    "ValueScaling",
    "cap_context",
    "gp_value_feature",
    "scale_fidelity",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def scale_fidelity(resource: np.ndarray | float, max_t: float) -> np.ndarray:
    """Resource -> fidelity in (0, 1]: ``resource / max_t`` clipped to ``[1e-6, 1]``."""
    out: np.ndarray = np.clip(np.asarray(resource, dtype=float) / float(max_t), 1e-6, 1.0)
    return out


@dataclass(frozen=True)
class ValueScaling:
    """Affine map of raw values (lower is better) to ``[0, 1]``: ``(v - low) / (high - low)``.

    Built from the observed values with :meth:`fit` (``low`` their minimum, ``high`` their
    maximum; a span of 0 counts as 1).  Predictions map back with :meth:`to_raw`.
    """

    low: float
    high: float

    @classmethod
    def fit(cls, values: np.ndarray) -> ValueScaling:
        """The scaling of these values (finite ones; ``(0, 1)`` if there is none)."""
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return cls(0.0, 1.0)
        low, high = float(v.min()), float(v.max())
        return cls(low, high if high > low else low + 1.0)

    @property
    def span(self) -> float:
        """``high - low`` (positive)."""
        return self.high - self.low

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Raw values -> normalized values (not clipped)."""
        out: np.ndarray = (np.asarray(values, dtype=float) - self.low) / self.span
        return out

    def to_raw(self, values: np.ndarray) -> np.ndarray:
        """Normalized values -> raw values."""
        out: np.ndarray = np.asarray(values, dtype=float) * self.span + self.low
        return out


def cap_context(curve: np.ndarray, t: np.ndarray, max_points: int) -> np.ndarray:
    """The points a surrogate is fitted on when there are too many: every curve's last point
    (its highest fidelity), then earlier points log-spaced back from it: the points 1, 2, 4, 8,
    ... positions before the last (in fidelity order), level by level over all curves (first
    every curve's point 1 before its last, then every curve's point 2 before, ...) while
    ``max_points`` is not reached.  If there are more curves than ``max_points``, only the last
    points are kept (all of them: a curve is never dropped).

    Args:
        curve: (n,) curve id of each point.
        t: (n,) fidelity of each point.
        max_points: target size of the context (>= 1).

    Returns:
        The sorted indices of the points kept (all of them if ``n <= max_points``).  Deterministic.
    """
    curve = np.asarray(curve)
    t = np.asarray(t, dtype=float)
    n = len(t)
    if n <= max_points:
        return np.arange(n)
    order = np.lexsort((np.arange(n), t, curve))  # by curve, then fidelity, then arrival
    c_sorted = curve[order]
    ends = np.flatnonzero(np.r_[c_sorted[1:] != c_sorted[:-1], True])  # last point of each curve
    starts = np.r_[0, ends[:-1] + 1]
    keep = [order[ends]]
    room = max_points - len(ends)
    back = 1
    lengths = ends - starts + 1
    while room > 0 and back < lengths.max():
        has = lengths > back
        idx = order[(ends - back)[has]]
        if len(idx) > room:
            idx = idx[:room]
        keep.append(idx)
        room -= len(idx)
        back *= 2
    out: np.ndarray = np.sort(np.concatenate(keep))
    return out


@runtime_checkable
class CurvePrediction(Protocol):
    """A predictive distribution of normalized values (lower is better), one per queried point."""

    @property
    def mean(self) -> np.ndarray:
        """(q,) the predictive means."""
        ...

    def prob_below(self, threshold: float | np.ndarray) -> np.ndarray:
        """(q,) ``P(y < threshold)``: the probability of improvement over ``threshold``."""
        ...

    def log_prob_below(self, threshold: float | np.ndarray) -> np.ndarray:
        """(q,) ``log P(y < threshold)``, accurate far in the tail (an acquisition ranks with it)."""
        ...

    def log_expected_improvement(self, threshold: float | np.ndarray) -> np.ndarray:
        """(q,) ``log E[max(threshold - y, 0)]``, accurate far in the tail (``-inf`` where no
        value below ``threshold`` is possible)."""
        ...

    def log_pdf(self, y: np.ndarray) -> np.ndarray:
        """(q,) the log density of the values ``y`` (a held-out point's log-likelihood)."""
        ...


@dataclass(frozen=True)
class GaussianCurvePrediction:
    """A Gaussian prediction: per point a mean and a standard deviation (> 0)."""

    mean: np.ndarray
    std: np.ndarray

    def prob_below(self, threshold: float | np.ndarray) -> np.ndarray:
        """``Phi((threshold - mean) / std)``."""
        out: np.ndarray = ndtr((np.asarray(threshold, dtype=float) - self.mean) / self.std)
        return out

    def log_prob_below(self, threshold: float | np.ndarray) -> np.ndarray:
        """``log Phi((threshold - mean) / std)``."""
        out: np.ndarray = log_ndtr((np.asarray(threshold, dtype=float) - self.mean) / self.std)
        return out

    def log_expected_improvement(self, threshold: float | np.ndarray) -> np.ndarray:
        """The Gaussian's log EI below ``threshold``
        (:func:`~tunebench.models.acquisition.log_expected_improvement`)."""
        return log_expected_improvement(self.mean, self.std * self.std, threshold)

    def log_pdf(self, y: np.ndarray) -> np.ndarray:
        """The Gaussian log density at ``y``."""
        z = (np.asarray(y, dtype=float) - self.mean) / self.std
        out: np.ndarray = -0.5 * z * z - np.log(self.std) - _LOG_SQRT_2PI
        return out


#: the exponents ``c`` of the power laws :meth:`PowerLawExtrapolation.fit` weighs
_POWER_GRID = np.geomspace(0.02, 5.0, 64)


@dataclass(frozen=True)
class PowerLawExtrapolation:
    """The extrapolation of *one* learning curve by a power law ``y(r) = a + b * r**-c``: a mixture
    over a grid of exponents ``c`` (``geomspace(0.02, 5, 64)``, plus the best one refined by a
    golden-section search), each component the least-squares fit of ``a, b`` with its Gaussian
    predictive at the target resource (the residual variance, floored, times
    ``1 + x'(X'X)^-1 x``), weighted by its profile likelihood ``SSE_c ** (-n / 2)`` (``SSE_c``
    floored at ``n * (1e-6 * range)**2``).

    Build it with :meth:`fit`; :attr:`mean` and :meth:`prob_below` describe the value at the target.
    """

    means: np.ndarray  #: (m,) the components' predictive means at the target
    stds: np.ndarray  #: (m,) their predictive standard deviations (> 0)
    weights: np.ndarray  #: (m,) their weights (sum 1)

    @classmethod
    def fit(cls, r: np.ndarray, y: np.ndarray, target: float, *, min_std: float = 0.0) -> PowerLawExtrapolation:
        """Fit the points ``(r, y)`` of one curve (resources > 0, at least 3 distinct) and
        extrapolate to resource ``target``; ``min_std``: a floor of the residual standard
        deviation (besides ``1e-3`` times the curve's range, and ``1e-12``).

        Raises:
            ValueError: fewer than 3 distinct resources, or a resource <= 0.
        """
        r = np.asarray(r, dtype=float)
        y = np.asarray(y, dtype=float)
        if np.any(r <= 0) or len(np.unique(r)) < 3:
            raise ValueError("a power-law extrapolation needs at least 3 distinct resources > 0")
        n = len(r)
        floor = max(min_std, 1e-3 * float(np.ptp(y)), 1e-12)
        tiny = (1e-6 * float(np.ptp(y))) ** 2 + 1e-300  # the weights tell exact fits apart

        def components(cs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            # simple linear regression of y on u = r**-c, for every c at once
            u = r[None, :] ** -cs[:, None]
            um = u.mean(axis=1)
            du = u - um[:, None]
            suu = np.maximum(np.einsum("ij,ij->i", du, du), 1e-300)
            b = du @ (y - y.mean()) / suu
            a = y.mean() - b * um
            resid = y[None, :] - a[:, None] - b[:, None] * u
            sse = np.einsum("ij,ij->i", resid, resid)
            var = np.maximum(sse / max(n - 2, 1), floor * floor)
            ut = float(target) ** -cs
            lever = 1.0 / n + (ut - um) ** 2 / suu
            return a + b * ut, np.sqrt(var * (1.0 + lever)), -0.5 * n * np.log(np.maximum(sse, n * tiny))

        m, sd, lw = components(_POWER_GRID)
        # the best exponent, refined between its grid neighbours (golden section on the SSE)
        i = int(np.argmax(lw))
        lo, hi = _POWER_GRID[max(i - 1, 0)], _POWER_GRID[min(i + 1, len(_POWER_GRID) - 1)]
        g = (math.sqrt(5.0) - 1.0) / 2.0
        for _ in range(40):
            c1, c2 = hi - g * (hi - lo), lo + g * (hi - lo)
            l1, l2 = components(np.array([c1, c2]))[2]
            lo, hi = (c1, hi) if l2 > l1 else (lo, c2)
        mb, sb, lb = components(np.array([(lo + hi) / 2.0]))
        means, stds, logw = np.r_[m, mb], np.r_[sd, sb], np.r_[lw, lb]
        w = np.exp(logw - logw.max())
        return cls(means, stds, w / w.sum())

    @property
    def mean(self) -> float:
        """The mixture's mean at the target."""
        return float(self.weights @ self.means)

    def prob_below(self, threshold: float) -> float:
        """``P(y(target) < threshold)`` under the mixture."""
        return float(self.weights @ ndtr((threshold - self.means) / self.stds))


class CurveSurrogate(Protocol):
    """A model of learning curves over configs (see the module docstring for the data).

    The scheduler calls :meth:`fit` before each decision with all the data it wants the model to
    use (already capped by :func:`cap_context`), then :meth:`predict` for its candidates.  A
    surrogate keeps whatever it learned between fits (warm starts) but must be deterministic
    given the sequence of fits; :meth:`state_dict` is JSON-able and small, and
    :meth:`load_state_dict` rebuilds the model given the data of the fit the state refers to
    (see :attr:`anchor_size`).
    """

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None:
        """Fit (or condition) on the data; ``n_total``: how many observations the scheduler had
        when it built the data (its schedule of full refits counts them)."""
        ...

    def predict(self, X: np.ndarray, t: np.ndarray | float, *, noise: bool = True) -> CurvePrediction:
        """The predictive distribution of the value of each row of ``X`` at fidelity ``t`` (one per
        row, or one for all): of an observation (``noise``), or of the noise-free curve where the
        model tells them apart (``noise=False``; a model that cannot, such as a PFN, ignores it)."""
        ...

    @property
    def anchor_size(self) -> int | None:
        """``n_total`` of the fit the model state depends on (``None``: not fitted yet); a
        loaded model is rebuilt by :meth:`load_state_dict` with the data of that fit."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (small: no weights)."""
        ...

    def load_state_dict(self, state: dict[str, Any], X: np.ndarray, t: np.ndarray, y: np.ndarray,
                        curve: np.ndarray) -> None:
        """Restore from :meth:`state_dict`, given the data of the fit at :attr:`anchor_size`."""
        ...


class MappedInputs:
    """A :class:`CurveSurrogate` fed ``features(X)`` instead of the encoded configs ``X``, for one
    decision: :meth:`fit` and :meth:`predict` map the rows and pass them on to ``inner`` (whose own
    state is what the scheduler keeps; this adaptor is rebuilt with each decision's map).
    ``features(X)`` must return one row per config (values in about ``[0, 1]``, where the
    surrogate was trained)."""

    def __init__(self, inner: CurveSurrogate, features: Callable[[np.ndarray], np.ndarray]) -> None:
        self.inner = inner
        self.features = features

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None:
        """Fit ``inner`` on the mapped configs (see :meth:`CurveSurrogate.fit`)."""
        self.inner.fit(self.features(X), t, y, curve, n_total=n_total)

    def predict(self, X: np.ndarray, t: np.ndarray | float, *, noise: bool = True) -> CurvePrediction:
        """``inner``'s prediction at the mapped configs (see :meth:`CurveSurrogate.predict`)."""
        return self.inner.predict(self.features(X), t, noise=noise)


#: the range :func:`gp_value_feature` clips to: the context's configs span ``[0, 1]``, others may lie
#: up to one span beyond (a proposed config predicted better than every one tried stays better)
GP_FEATURE_RANGE = (-1.0, 2.0)


def gp_value_feature(gp: Any, context: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The map from encoded configs to one column that a :class:`MappedInputs` surrogate takes
    with FTBO's ``config_inputs="gp"``: ``gp``'s predicted value of each config at the largest
    fidelity (a :class:`~tunebench.models.gp.GaussianProcess` over the config columns plus a
    fidelity column that is 1 at ``max_t``), min-max scaled over the configs of ``context`` (so
    that they span ``[0, 1]``; other configs are clipped to :data:`GP_FEATURE_RANGE`).  Lower is
    better, as the GP's values."""

    def mean(C: np.ndarray) -> np.ndarray:
        m, _ = gp.predict(np.column_stack([C, np.ones(len(C))]))
        return np.asarray(m, dtype=float)

    ref = mean(np.unique(context, axis=0)) if len(context) else np.zeros(1)
    lo, span = float(ref.min()), float(np.ptp(ref)) or 1.0

    def features(C: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.clip((mean(C) - lo) / span, *GP_FEATURE_RANGE)[:, None]
        return out

    return features
