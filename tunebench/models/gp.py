"""A small, fast Gaussian process regressor for model-based searchers (L1 models).

Model, on inputs in the unit cube (rows of :class:`tunebench.space.SpaceEncoder` encodings,
possibly with extra columns such as a normalized resource)::

    y = f(w(x)) + noise,   f ~ GP(c, s2 * k52(r)),   r^2 = sum_j ((w_j(x) - w_j(x')) / l_j)^2,
    k52(r) = (1 + sqrt(5) r + 5/3 r^2) exp(-sqrt(5) r)          (Matern 5/2, ARD)
    noise ~ N(0, sigma2),  sigma2 >= noise_floor

with one lengthscale ``l_j`` per input column, signal variance ``s2``, constant mean ``c`` and
optional input warping ``w_j(x) = 1 - (1 - x^a_j)^b_j`` (the Kumaraswamy CDF; identity for
``a = b = 1``) on the columns listed in ``warp_dims``.

Freeze-thaw kernel (``decay_dim=j``: column ``j`` is a fidelity ``t >= 0``, the other columns a
config; Swersky, Snoek, Adams: "Freeze-Thaw Bayesian Optimization", 2014): the Matern term acts
on the config columns only, and points of the *same config* (equal config columns: one learning
curve) also share an exponential-decay term over the fidelity::

    k((x, t), (x', t')) = s2 * k52(r(x, x')) + [x == x'] * s2d * beta^alpha / (t + t' + beta)^alpha

(the covariance of ``integral exp(-lambda t) dphi(lambda)`` with a Gamma(alpha, beta) mixing
measure: each curve decays to its config's asymptote, which the Matern term correlates across
configs).  The mean is then ``c + m * (beta / (t + beta))^alpha``: the average transient above
the asymptote, so that a curve is expected to decrease (prior ``m ~ N(0.5, 1)``, standardized
units) rather than regress to the mean, and a new config's prediction at a low fidelity is its
asymptote's plus that transient.  ``s2d, alpha, beta, m`` are fitted with the other
hyperparameters.  Targets are standardized internally (mean
0, standard deviation 1 over the data of the last :meth:`GaussianProcess.fit` /
:meth:`GaussianProcess.set_data`); every method takes and returns values in the caller's units.

Hyperparameters live in one vector ``theta`` (see :attr:`GaussianProcess.theta`):
``[log l_1..l_d, log s2, c, log sigma2, log a_1..a_w, log b_1..b_w]``, then with ``decay_dim``
``[log s2d, log alpha, log beta, m]`` (the decay column's lengthscale is unused).  :meth:`~GaussianProcess.fit`
maximizes the log marginal likelihood plus weak Gaussian log-priors on ``theta`` (a MAP estimate)
with L-BFGS-B inside box bounds, using analytic gradients, warm-started from the current
``theta``.

The API (all a searcher needs):

* :meth:`~GaussianProcess.fit` (optimize hyperparameters on the data, or a subset of it, then
  factorize), :meth:`~GaussianProcess.set_data` (factorize with the current hyperparameters);
* :meth:`~GaussianProcess.add_points`: condition on new observations by appending rows to the
  (inverse) Cholesky factor, O(n^2) per point, no refactorization, hyperparameters unchanged;
* :meth:`~GaussianProcess.predict` (mean and variance, vectorized over query rows),
  :meth:`~GaussianProcess.sample_posterior` (joint samples over a batch of rows);
* :meth:`~GaussianProcess.fantasize`: a copy conditioned on pending inputs (at the posterior mean
  by default, or at given values such as posterior samples); the original is unchanged;
* :meth:`~GaussianProcess.state_dict` / :meth:`~GaussianProcess.load_state_dict`: JSON-able
  hyperparameters, standardization and the sizes of the factorization batches, so that a rebuilt
  model repeats exactly the same floating-point operations as the original (bitwise-equal
  predictions);
* :meth:`~GaussianProcess.log_marginal_likelihood` (with its gradient; for tests and diagnostics).

The model stores the inverse ``L^-1`` of the Cholesky factor of the kernel matrix rather than
the factor itself: predictive variances are then one matrix product (``k(Xq, X) L^-T``, BLAS
GEMM speed) instead of a triangular solve, and appending points updates ``L^-1`` by blocks.

Cost: a hyperparameter evaluation is O(n^3) (Cholesky and inverse); predictions are O(n^2) per
query row.  Callers keep ``n`` bounded (subsample) and refit rarely; see
:class:`tunebench.searchers.gp.GPSurrogate`.  With matrices of a few hundred rows, one BLAS
thread is as fast as several and much faster on a busy machine; the searchers limit BLAS
threads around their model calls (``blas_threads``), code using this class directly may want
to do the same (``threadpoolctl``).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
from scipy.linalg import lapack

logger = logging.getLogger(__name__)

__all__ = ["GaussianProcess", "exp_decay_kernel", "matern52"]

_LOG_2PI = math.log(2.0 * math.pi)
_WARP_EPS = 1e-6  #: inputs are clipped to [eps, 1 - eps] before warping (finite derivatives)
_MAX_JITTER_TRIES = 6


def matern52(sqdist: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """The unit-variance Matern 5/2 kernel as a function of squared scaled distances
    (``overwrite=True`` computes it in place of ``sqdist``: large temporaries are slow)."""
    r5 = np.multiply(sqdist, 5.0)
    np.sqrt(r5, out=r5)
    K: np.ndarray = sqdist if overwrite else sqdist.copy()
    K *= 5.0 / 3.0
    K += 1.0
    K += r5
    np.negative(r5, out=r5)
    np.exp(r5, out=r5)
    K *= r5
    return K


def exp_decay_kernel(t: np.ndarray, t2: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Freeze-thaw's exponential-decay kernel ``beta^alpha / (t + t' + beta)^alpha`` between the
    fidelities ``t`` (m,) and ``t2`` (n,), (m, n) (Swersky et al. 2014; unit variance at ``t = 0``)."""
    S = np.add.outer(np.asarray(t, dtype=float), np.asarray(t2, dtype=float))
    out: np.ndarray = (beta / (S + beta)) ** alpha
    return out


def _matern_fresh(sqdist: np.ndarray) -> np.ndarray:
    return matern52(sqdist, overwrite=True)


def _sqdist(A: np.ndarray, B: np.ndarray, a2: np.ndarray | None = None, b2: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``A`` (m, d) and ``B`` (n, d), (m, n)."""
    if a2 is None:
        a2 = np.einsum("ij,ij->i", A, A)
    if b2 is None:
        b2 = np.einsum("ij,ij->i", B, B)
    D: np.ndarray = A @ B.T
    D *= -2.0
    D += a2[:, None]
    D += b2[None, :]
    np.maximum(D, 0.0, out=D)
    return D


def _tri_inverse(L: np.ndarray) -> np.ndarray:
    """Inverse of a lower triangular matrix (C-contiguous, zeros above the diagonal)."""
    Li, info = lapack.dtrtri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"singular triangular factor (dtrtri info {info})")
    return np.ascontiguousarray(np.tril(Li))


def _cholesky(K: np.ndarray) -> tuple[np.ndarray, int]:
    """Lower Cholesky factor (zeros above the diagonal) and LAPACK's info (0 = success)."""
    L, info = lapack.dpotrf(K, lower=1, clean=1, overwrite_a=0)
    return L, int(info)


class GaussianProcess:
    """Gaussian process regressor with a Matern 5/2 ARD kernel (see the module docstring).

    Args:
        dim: number of input columns.
        warp_dims: input columns warped by a Kumaraswamy CDF (their parameters are fitted with
            the other hyperparameters); ``None`` or empty = no warping.  Warp only columns in
            ``[0, 1]`` (continuous or integer encodings, a normalized resource).
        noise_floor: smallest noise variance (standardized units); keeps the factorization stable.
        max_iter: L-BFGS-B iterations per start in :meth:`fit`.
        decay_dim: the fidelity column of the freeze-thaw kernel (see the module docstring);
            ``None``: a plain Matern over every column.

    Raises:
        ValueError: ``dim < 1``, ``warp_dims`` or ``decay_dim`` out of range (or warped), or
            ``noise_floor <= 0``.
    """

    def __init__(
        self,
        dim: int,
        *,
        warp_dims: Sequence[int] | None = None,
        noise_floor: float = 1e-6,
        max_iter: int = 100,
        decay_dim: int | None = None,
    ) -> None:
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        if not noise_floor > 0:
            raise ValueError(f"noise_floor must be > 0, got {noise_floor!r}")
        warp = sorted({int(j) for j in (warp_dims or ())})
        if any(j < 0 or j >= dim for j in warp):
            raise ValueError(f"warp_dims must be column indices in [0, {dim}), got {list(warp_dims or ())}")
        if decay_dim is not None and (not 0 <= decay_dim < dim or decay_dim in warp or dim < 2):
            raise ValueError(f"decay_dim must be an unwarped column index in [0, {dim}) with another column "
                             f"beside it, got {decay_dim!r}")
        self.dim = int(dim)
        self.decay_dim = None if decay_dim is None else int(decay_dim)
        #: the config columns (all but the decay column)
        self._cfg_cols = np.asarray([j for j in range(self.dim) if j != self.decay_dim], dtype=np.intp)
        self.warp_dims = np.asarray(warp, dtype=np.intp)
        self.noise_floor = float(noise_floor)
        self.max_iter = int(max_iter)
        d, w = self.dim, len(warp)
        n_decay = 0 if decay_dim is None else 4
        self.n_params = d + 3 + 2 * w + n_decay
        # layout of theta
        self._i_s2, self._i_mean, self._i_noise = d, d + 1, d + 2
        self._sl_a = slice(d + 3, d + 3 + w)
        self._sl_b = slice(d + 3 + w, d + 3 + 2 * w)
        self._i_decay = d + 3 + 2 * w  #: log s2d, log alpha, log beta, m from here
        # bounds, priors (Gaussian in theta space) and the default start
        lo = np.empty(self.n_params)
        hi = np.empty(self.n_params)
        mu = np.empty(self.n_params)
        sd = np.empty(self.n_params)
        lo[:d], hi[:d], mu[:d], sd[:d] = math.log(1e-2), math.log(50.0), math.log(0.5), 1.5
        lo[d], hi[d], mu[d], sd[d] = math.log(1e-2), math.log(1e2), 0.0, 1.5
        lo[d + 1], hi[d + 1], mu[d + 1], sd[d + 1] = -3.0, 3.0, 0.0, 1.0
        lo[d + 2], hi[d + 2], mu[d + 2], sd[d + 2] = math.log(self.noise_floor), math.log(2.0), math.log(1e-3), 3.0
        lo[d + 3:], hi[d + 3:], mu[d + 3:], sd[d + 3:] = math.log(0.2), math.log(5.0), 0.0, 0.75
        if n_decay:
            i = self._i_decay
            lo[i], hi[i], mu[i], sd[i] = math.log(1e-3), math.log(1e2), 0.0, 1.5  # s2d
            lo[i + 1], hi[i + 1], mu[i + 1], sd[i + 1] = math.log(0.1), math.log(10.0), 0.0, 1.0  # alpha
            lo[i + 2], hi[i + 2], mu[i + 2], sd[i + 2] = math.log(1e-3), math.log(10.0), math.log(0.1), 1.5  # beta
            lo[i + 3], hi[i + 3], mu[i + 3], sd[i + 3] = -5.0, 5.0, 0.5, 1.0  # m, the mean transient
        self.bounds = np.stack([lo, hi], axis=1)
        self.prior_mean = mu
        self.prior_sd = sd
        default = mu.copy()
        default[d + 2] = max(math.log(1e-3), lo[d + 2])
        self.default_theta = np.clip(default, lo, hi)
        self.theta = self.default_theta.copy()
        self.y_mean = 0.0
        self.y_scale = 1.0
        self._clear_data()

    # -- hyperparameters -----------------------------------------------------------------------

    @property
    def lengthscales(self) -> np.ndarray:
        scales: np.ndarray = np.exp(self.theta[: self.dim])
        return scales

    @property
    def signal_variance(self) -> float:
        """In standardized units (multiply by ``y_scale**2`` for the caller's units)."""
        return float(math.exp(self.theta[self._i_s2]))

    @property
    def mean_constant(self) -> float:
        """Constant mean in standardized units."""
        return float(self.theta[self._i_mean])

    @property
    def noise_variance(self) -> float:
        """In standardized units."""
        return float(math.exp(self.theta[self._i_noise]))

    @property
    def warp_params(self) -> tuple[np.ndarray, np.ndarray]:
        """Kumaraswamy ``(a, b)`` of the warped columns."""
        return np.exp(self.theta[self._sl_a]), np.exp(self.theta[self._sl_b])

    @property
    def decay_params(self) -> tuple[float, float, float] | None:
        """``(s2d, alpha, beta)`` of the freeze-thaw kernel (``s2d`` standardized); ``None``
        without ``decay_dim``."""
        if self.decay_dim is None:
            return None
        i = self._i_decay
        return (math.exp(self.theta[i]), math.exp(self.theta[i + 1]), math.exp(self.theta[i + 2]))

    def _decay(self, A: np.ndarray, B: np.ndarray, theta: np.ndarray, scaled: bool = True) -> np.ndarray | None:
        """The freeze-thaw term between the rows of ``A`` and ``B`` (times ``s2d`` if ``scaled``),
        ``None`` without ``decay_dim``."""
        if self.decay_dim is None:
            return None
        cols = self._cfg_cols
        _, ids = np.unique(np.concatenate([A[:, cols], B[:, cols]]), axis=0, return_inverse=True)
        ids = ids.reshape(-1)
        same = ids[: A.shape[0], None] == ids[None, A.shape[0]:]
        i = self._i_decay
        D = exp_decay_kernel(A[:, self.decay_dim], B[:, self.decay_dim], math.exp(theta[i + 1]),
                             math.exp(theta[i + 2]))
        D *= same
        if scaled:
            D *= math.exp(theta[i])
        return D

    def _mean(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray | float:
        """The prior mean at the rows of ``X`` (standardized): ``c``, plus the mean transient
        ``m * (beta / (t + beta))^alpha`` with ``decay_dim``."""
        c = float(theta[self._i_mean])
        if self.decay_dim is None:
            return c
        i = self._i_decay
        alpha, beta = math.exp(theta[i + 1]), math.exp(theta[i + 2])
        out: np.ndarray = c + theta[i + 3] * (beta / (X[:, self.decay_dim] + beta)) ** alpha
        return out

    def _decay_diag(self, A: np.ndarray) -> np.ndarray | float:
        """The freeze-thaw term's prior variance at the rows of ``A`` (0 without ``decay_dim``)."""
        if self.decay_dim is None:
            return 0.0
        s2d, alpha, beta = self.decay_params  # type: ignore[misc]  # not None with decay_dim
        out: np.ndarray = s2d * (beta / (2.0 * A[:, self.decay_dim] + beta)) ** alpha
        return out

    def set_theta(self, theta: Sequence[float]) -> None:
        """Set the hyperparameter vector (clipped into the bounds). Drops the data: call
        :meth:`set_data` after."""
        values = np.asarray(theta, dtype=float).reshape(-1)
        if values.shape != (self.n_params,):
            raise ValueError(f"theta must have {self.n_params} entries, got {values.shape[0]}")
        self.theta = np.clip(values, self.bounds[:, 0], self.bounds[:, 1])
        self._clear_data()

    # -- data ----------------------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of points the model is conditioned on (fantasies included)."""
        return 0 if self._X is None else self._X.shape[0]

    @property
    def X(self) -> np.ndarray:
        """The inputs conditioned on, (n, dim) (empty before any data)."""
        return np.empty((0, self.dim)) if self._X is None else self._X

    @property
    def y(self) -> np.ndarray:
        """The targets conditioned on, in the caller's units."""
        if self._y is None:
            return np.empty(0)
        return self._y * self.y_scale + self.y_mean

    def _clear_data(self) -> None:
        self._X: np.ndarray | None = None
        self._Xs: np.ndarray | None = None  # warped and divided by the lengthscales
        self._sq: np.ndarray | None = None  # squared norms of the rows of _Xs
        self._y: np.ndarray | None = None  # standardized
        self._Li: np.ndarray | None = None  # inverse of the lower Cholesky factor L of K
        self._z: np.ndarray | None = None  # L^-1 (y - c)
        self._alpha: np.ndarray | None = None  # K^-1 (y - c)
        self._jitter = 0.0
        self._batches: list[int] = []

    def _check_X(self, X: Any, what: str = "X") -> np.ndarray:
        arr: np.ndarray = np.asarray(X, dtype=float)
        if arr.ndim == 1 and self.dim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape (n, {self.dim}), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} has non-finite values")
        return arr

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        arr: np.ndarray = np.asarray(y, dtype=float).reshape(-1)
        if arr.shape[0] != n:
            raise ValueError(f"y must have {n} values (one per row of X), got {arr.shape[0]}")
        if not np.isfinite(arr).all():
            raise ValueError("y has non-finite values; replace them (e.g. by the worst finite value) first")
        return arr

    def _warp(
        self, X: np.ndarray, theta: np.ndarray, grad: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Warped inputs, and (with ``grad``) d w / d log a, d w / d log b of the warped columns."""
        if not len(self.warp_dims):
            return X, None, None
        a = np.exp(theta[self._sl_a])
        b = np.exp(theta[self._sl_b])
        xc = np.clip(X[:, self.warp_dims], _WARP_EPS, 1.0 - _WARP_EPS)
        xa = xc**a
        oma = 1.0 - xa
        omab = oma**b
        Xw = X.copy()
        Xw[:, self.warp_dims] = 1.0 - omab
        if not grad:
            return Xw, None, None
        d_loga = a * b * (omab / oma) * xa * np.log(xc)
        d_logb = -b * omab * np.log(oma)
        return Xw, d_loga, d_logb

    def _scaled(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        Xw, _, _ = self._warp(X, theta)
        scaled: np.ndarray = Xw / np.exp(theta[: self.dim])
        if self.decay_dim is not None:
            scaled[:, self.decay_dim] = 0.0  # the fidelity enters through the decay term only
        return scaled

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        optimize: bool = True,
        fit_indices: Sequence[int] | np.ndarray | None = None,
        restart_from_default: bool = True,
    ) -> GaussianProcess:
        """Standardize ``y``, fit the hyperparameters (MAP, L-BFGS-B with analytic gradients,
        warm-started from the current ones) and condition on ``(X, y)``.

        Args:
            X: inputs (n, dim) in the unit cube.
            y: targets (n,), finite.
            optimize: fit the hyperparameters (False: only standardize and factorize).
            fit_indices: fit the hyperparameters on these rows only (a subsample, to bound the
                O(n^3) cost); the model is then conditioned on every row.
            restart_from_default: also start L-BFGS-B from the default hyperparameters and keep
                the better optimum (guards against a warm start stuck in a poor local optimum).

        Returns:
            ``self``.
        """
        X = self._check_X(X)
        y = self._check_y(y, X.shape[0])
        if X.shape[0] == 0:
            raise ValueError("fit needs at least one observation")
        y_mean, y_scale = float(np.mean(y)), float(np.std(y))
        if not y_scale > 1e-12:
            y_scale = 1.0
        if optimize:
            idx = slice(None) if fit_indices is None else np.asarray(fit_indices, dtype=np.intp)
            ys = (y[idx] - y_mean) / y_scale
            self.theta = self._optimize(X[idx], ys, restart_from_default)
        return self.set_data(X, y, y_mean=y_mean, y_scale=y_scale)

    def set_data(self, X: Any, y: Any, *, y_mean: float | None = None, y_scale: float | None = None) -> GaussianProcess:
        """Condition on ``(X, y)`` with the current hyperparameters (full Cholesky
        factorization, O(n^3)).  ``y`` is standardized with ``y_mean`` / ``y_scale`` when given,
        else with its own mean and standard deviation.  Returns ``self``."""
        X = self._check_X(X)
        y = self._check_y(y, X.shape[0])
        if y_mean is None or y_scale is None:
            y_mean = float(np.mean(y)) if len(y) else 0.0
            y_scale = float(np.std(y)) if len(y) else 1.0
            if not y_scale > 1e-12:
                y_scale = 1.0
        self._clear_data()
        self.y_mean, self.y_scale = float(y_mean), float(y_scale)
        if X.shape[0] == 0:
            return self
        theta = self.theta
        s2 = math.exp(theta[self._i_s2])
        Xs = self._scaled(X, theta)
        sq = np.einsum("ij,ij->i", Xs, Xs)
        K = _matern_fresh(_sqdist(Xs, Xs, sq, sq))
        K *= s2
        np.fill_diagonal(K, s2 + math.exp(theta[self._i_noise]))
        D = self._decay(X, X, theta)
        if D is not None:
            K += D
        L, jitter = self._factor_with_jitter(K, s2)
        Li = _tri_inverse(L)
        ys = (y - self.y_mean) / self.y_scale
        z = Li @ (ys - self._mean(X, theta))
        self._X, self._Xs, self._sq, self._y = X, Xs, sq, ys
        self._Li = Li
        self._z = z
        self._alpha = Li.T @ z
        self._jitter = jitter
        self._batches = [X.shape[0]]
        return self

    def _factor_with_jitter(self, K: np.ndarray, s2: float) -> tuple[np.ndarray, float]:
        """Cholesky factor of ``K``, adding jitter to the diagonal (growing tenfold, from
        ``1e-9 * s2``) if ``K`` is numerically not positive definite; returns it and the jitter."""
        L, info = _cholesky(K)
        if info == 0:
            return L, 0.0
        diag = np.diag(K).copy()
        idx = np.diag_indices_from(K)
        for k in range(_MAX_JITTER_TRIES):
            jitter = s2 * 10.0 ** (k - 9)
            K2 = K.copy()
            K2[idx] = diag + jitter
            L, info = _cholesky(K2)
            if info == 0:
                logger.debug("GP factorization needed jitter %.3g", jitter)
                return L, jitter
        raise np.linalg.LinAlgError("kernel matrix is not positive definite even with jitter")

    def add_points(self, X_new: Any, y_new: Any) -> GaussianProcess:
        """Condition on more observations without refitting: the Cholesky factor (kept as its
        inverse) is extended by the new rows, O(n^2 p) for p points, no refactorization; equal
        up to rounding to a full
        :meth:`set_data` on all the data with the same hyperparameters and standardization.
        Returns ``self`` (the arrays are replaced, never modified in place, so copies made by
        :meth:`fantasize` stay valid)."""
        X_new = self._check_X(X_new, "X_new")
        y_new = self._check_y(y_new, X_new.shape[0])
        p = X_new.shape[0]
        if p == 0:
            return self
        if self._X is None:
            return self.set_data(X_new, y_new, y_mean=self.y_mean, y_scale=self.y_scale)
        theta = self.theta
        s2 = math.exp(theta[self._i_s2])
        noise = math.exp(theta[self._i_noise])
        Xs_new = self._scaled(X_new, theta)
        sq_new = np.einsum("ij,ij->i", Xs_new, Xs_new)
        assert self._Xs is not None and self._Li is not None  # set with self._X
        Kx = _matern_fresh(_sqdist(self._Xs, Xs_new, self._sq, sq_new))
        Kx *= s2
        D = self._decay(self._X, X_new, theta)
        if D is not None:
            Kx += D
        B = self._Li @ Kx
        S = _matern_fresh(_sqdist(Xs_new, Xs_new, sq_new, sq_new))
        S *= s2
        np.fill_diagonal(S, s2 + noise + self._jitter)
        D = self._decay(X_new, X_new, theta)
        if D is not None:
            S += D
        S -= B.T @ B
        C, info = _cholesky(S)
        ys_new = (y_new - self.y_mean) / self.y_scale
        if info != 0:  # numerically not positive definite: refactorize everything
            logger.debug("incremental Cholesky failed, refactorizing %d points", self.n + p)
            batches = self._batches
            X_all = np.concatenate([self._X, X_new])
            y_all = np.concatenate([self.y, y_new])
            self.set_data(X_all, y_all, y_mean=self.y_mean, y_scale=self.y_scale)
            self._batches = batches + [X_all.shape[0]]
            return self
        # [[L, 0], [B^T, C]]^-1 = [[L^-1, 0], [-C^-1 B^T L^-1, C^-1]]
        n = self.n
        Ci = _tri_inverse(C)
        Li = np.zeros((n + p, n + p))
        Li[:n, :n] = self._Li
        Li[n:, :n] = -(Ci @ (B.T @ self._Li))
        Li[n:, n:] = Ci
        z_new = Ci @ (ys_new - self._mean(X_new, theta) - B.T @ self._z)
        self._X = np.concatenate([self._X, X_new])
        self._Xs = np.concatenate([self._Xs, Xs_new])
        self._sq = np.concatenate([self._sq, sq_new])
        self._y = np.concatenate([self._y, ys_new])
        self._Li = Li
        self._z = np.concatenate([self._z, z_new])
        self._alpha = Li.T @ self._z
        self._batches = self._batches + [n + p]
        return self

    def fantasize(self, X_pending: Any, values: Any = None) -> GaussianProcess:
        """A copy of this model conditioned on pending inputs, hyperparameters unchanged (cheap:
        :meth:`add_points` on a shallow copy; this model is left as it was).

        Args:
            X_pending: inputs of the pending evaluations (p, dim).
            values: their fantasized targets (p,), e.g. one posterior sample from
                :meth:`sample_posterior`; default: the posterior mean (then the predicted mean
                is unchanged everywhere and only the variance shrinks near pending inputs).
        """
        X_pending = self._check_X(X_pending, "X_pending")
        fantasy = copy.copy(self)
        if X_pending.shape[0] == 0:
            return fantasy
        if values is None:
            values = self.predict(X_pending, return_var=False)[0]
        return fantasy.add_points(X_pending, values)

    # -- prediction ----------------------------------------------------------------------------

    def _kq(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scaled query rows and the cross-covariances (m, n) (standardized units)."""
        theta = self.theta
        Xqs = self._scaled(Xq, theta)
        assert self._Xs is not None  # called with data only
        Kq = _matern_fresh(_sqdist(Xqs, self._Xs, None, self._sq))
        Kq *= math.exp(theta[self._i_s2])
        assert self._X is not None
        D = self._decay(Xq, self._X, theta)
        if D is not None:
            Kq += D
        return Xqs, Kq

    @overload
    def predict(
        self, Xq: Any, *, return_var: Literal[True] = True, include_noise: bool = False
    ) -> tuple[np.ndarray, np.ndarray]: ...
    @overload
    def predict(
        self, Xq: Any, *, return_var: Literal[False], include_noise: bool = False
    ) -> tuple[np.ndarray, None]: ...
    @overload
    def predict(
        self, Xq: Any, *, return_var: bool, include_noise: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]: ...
    def predict(
        self, Xq: Any, *, return_var: bool = True, include_noise: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Posterior mean and variance of ``f`` (plus the noise variance with
        ``include_noise``) at the rows of ``Xq``, in the caller's units.

        Returns:
            ``(mean, var)``, each of shape ``(m,)``; ``var`` is ``None`` if not ``return_var``.
            Without data, the prior.
        """
        Xq = self._check_X(Xq, "Xq")
        m = Xq.shape[0]
        s2: np.ndarray | float = self.signal_variance + self._decay_diag(Xq)
        extra = self.noise_variance if include_noise else 0.0
        if self._X is None:
            mean = np.broadcast_to(self._mean(Xq, self.theta) * self.y_scale + self.y_mean, (m,)).copy()
            var = np.broadcast_to((s2 + extra) * self.y_scale**2, (m,)).copy() if return_var else None
            return mean, var
        assert self._alpha is not None and self._Li is not None  # set with self._X
        _, Kq = self._kq(Xq)
        mean = Kq @ self._alpha
        mean += self._mean(Xq, self.theta)
        mean *= self.y_scale
        mean += self.y_mean
        if not return_var:
            return mean, None
        V = Kq @ self._Li.T  # rows: L^-1 k(x, X)
        del Kq
        var = np.einsum("ij,ij->i", V, V)
        np.subtract(s2, var, out=var)
        np.maximum(var, 1e-12 * s2, out=var)
        var += extra
        var *= self.y_scale**2
        return mean, var

    def predict_joint(self, Xq: Any, *, include_noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (m,) and covariance (m, m) of ``f`` at the rows of ``Xq`` (caller's units)."""
        Xq = self._check_X(Xq, "Xq")
        s2 = self.signal_variance
        Xqs = self._scaled(Xq, self.theta)
        Kqq = _matern_fresh(_sqdist(Xqs, Xqs)) * s2
        D = self._decay(Xq, Xq, self.theta)
        if D is not None:
            Kqq += D
        if self._X is None:
            mean = np.broadcast_to(self._mean(Xq, self.theta), (Xq.shape[0],)).copy()
            cov = Kqq
        else:
            assert self._Xs is not None and self._alpha is not None and self._Li is not None  # set with self._X
            Kq = _matern_fresh(_sqdist(Xqs, self._Xs, None, self._sq)) * s2
            D = self._decay(Xq, self._X, self.theta)
            if D is not None:
                Kq += D
            mean = Kq @ self._alpha + self._mean(Xq, self.theta)
            V = Kq @ self._Li.T
            cov = Kqq - V @ V.T
        if include_noise:
            cov[np.diag_indices_from(cov)] += self.noise_variance
        return mean * self.y_scale + self.y_mean, cov * self.y_scale**2

    def sample_posterior(self, Xq: Any, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Joint samples of ``f`` at the rows of ``Xq``: array (n_samples, m) (Thompson
        sampling, sampled fantasies). O(m^3) for the joint covariance: keep ``m`` moderate."""
        mean, cov = self.predict_joint(Xq)
        m = mean.shape[0]
        scale = max(float(np.max(np.diag(cov))) if m else 1.0, 1e-300)
        cov[np.diag_indices_from(cov)] += 1e-9 * scale
        L, info = _cholesky(cov)
        tries = 0
        while info != 0 and tries < _MAX_JITTER_TRIES:
            tries += 1
            cov[np.diag_indices_from(cov)] += scale * 10.0 ** (-8 + tries)
            L, info = _cholesky(cov)
        if info != 0:  # give up on correlations: independent marginals
            L = np.diag(np.sqrt(np.maximum(np.diag(cov), 0.0)))
        Z = rng.standard_normal((n_samples, m))
        samples: np.ndarray = mean[None, :] + Z @ L.T
        return samples

    # -- marginal likelihood -------------------------------------------------------------------

    def log_marginal_likelihood(
        self, theta: Sequence[float] | None = None, X: Any = None, y: Any = None, *, grad: bool = False
    ) -> float | tuple[float, np.ndarray]:
        """Log marginal likelihood of the *standardized* targets (no prior term).

        Args:
            theta: hyperparameters (default: the current ones).
            X, y: data, ``y`` already standardized (default: the conditioned data).
            grad: also return the gradient with respect to ``theta``.
        """
        th = self.theta if theta is None else np.asarray(theta, dtype=float)
        if X is None:
            X, ys = self.X, (self._y if self._y is not None else np.empty(0))
        else:
            X = self._check_X(X)
            ys = self._check_y(y, X.shape[0])
        value, g = self._lml(th, X, ys, grad)
        return (value, g) if grad else value

    def _lml(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, need_grad: bool) -> tuple[float, np.ndarray]:
        d = self.dim
        n = X.shape[0]
        ls = np.exp(theta[:d])
        s2 = math.exp(theta[self._i_s2])
        c = self._mean(X, theta)
        noise = math.exp(theta[self._i_noise])
        Xw, dw_a, dw_b = self._warp(X, theta, grad=need_grad)
        Xs = Xw / ls
        if self.decay_dim is not None:
            Xs[:, self.decay_dim] = 0.0
        sq = np.einsum("ij,ij->i", Xs, Xs)
        C = _sqdist(Xs, Xs, sq, sq)
        np.fill_diagonal(C, 0.0)
        # in place (n x n temporaries are slow): C <- matern(D2), A <- (1 + r5) exp(-r5)
        A = np.multiply(C, 5.0)
        np.sqrt(A, out=A)
        E = np.negative(A)
        np.exp(E, out=E)
        C *= 5.0 / 3.0
        C += 1.0
        C += A
        C *= E
        A += 1.0
        A *= E
        del E
        K = C * s2
        K[np.diag_indices_from(K)] += noise
        E = self._decay(X, X, theta, scaled=False)  # the decay term over s2d
        if E is not None:
            K += math.exp(theta[self._i_decay]) * E
        L, info = _cholesky(K)
        if info != 0:
            L, _ = self._factor_with_jitter(K, s2)
        del K
        resid = y - c
        alpha, _ = lapack.dpotrs(L, resid, lower=1)
        value = -0.5 * float(resid @ alpha) - float(np.sum(np.log(np.diag(L)))) - 0.5 * n * _LOG_2PI
        g = np.zeros(self.n_params)
        if not need_grad:
            return value, g
        Kinv, _ = lapack.dpotri(L, lower=1, overwrite_c=1)  # lower triangle; zeros above (clean L)
        del L
        W = np.outer(alpha, alpha)
        W -= Kinv
        W -= Kinv.T
        W[np.diag_indices_from(W)] += np.diag(Kinv)  # W = alpha alpha^T - K^-1
        del Kinv
        g[self._i_s2] = 0.5 * s2 * float(np.vdot(W, C))
        g[self._i_mean] = float(np.sum(alpha))
        g[self._i_noise] = 0.5 * noise * float(np.trace(W))
        if E is not None:
            assert self.decay_dim is not None
            i = self._i_decay
            s2d, a_d, b_d = (math.exp(v) for v in theta[i:i + 3])
            t = X[:, self.decay_dim]
            S = np.add.outer(t, t)
            WE = W * E
            WE *= s2d
            g[i] = 0.5 * float(np.sum(WE))
            g[i + 1] = 0.5 * a_d * float(np.vdot(WE, np.log(b_d / (S + b_d))))
            g[i + 2] = 0.5 * a_d * float(np.vdot(WE, S / (S + b_d)))
            # the mean transient m * (b_d / (t + b_d))^a_d: d lml / d mean = alpha
            shape = (b_d / (t + b_d)) ** a_d
            am = alpha * (theta[i + 3] * shape)
            g[i + 1] += a_d * float(am @ np.log(b_d / (t + b_d)))
            g[i + 2] += a_d * float(am @ (t / (t + b_d)))
            g[i + 3] = float(alpha @ shape)
        M = W
        M *= A
        M *= s2 * (5.0 / 3.0)
        Mrow = M.sum(axis=1)
        MXs = M @ Xs
        # d lml / d Xs (n, d); lengthscale and warping gradients follow by the chain rule
        G = MXs - Mrow[:, None] * Xs
        g[:d] = -np.einsum("ij,ij->j", G, Xs)
        if len(self.warp_dims):
            Gw = G[:, self.warp_dims] / ls[self.warp_dims]
            assert dw_a is not None and dw_b is not None  # _warp with grad=True and warped columns
            g[self._sl_a] = np.einsum("ij,ij->j", Gw, dw_a)
            g[self._sl_b] = np.einsum("ij,ij->j", Gw, dw_b)
        return value, g

    def _neg_log_posterior(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            value, g = self._lml(theta, X, y, True)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return 1e10, np.zeros_like(theta)
        diff = (theta - self.prior_mean) / self.prior_sd
        value -= 0.5 * float(diff @ diff)
        g = g - diff / self.prior_sd
        if not (math.isfinite(value) and np.all(np.isfinite(g))):
            return 1e10, np.zeros_like(theta)
        return -value, -g

    def _optimize(self, X: np.ndarray, y: np.ndarray, restart_from_default: bool) -> np.ndarray:
        # deferred: scipy.optimize (heavier than scipy.linalg), only when hyperparameters are fitted
        from scipy.optimize import minimize

        starts = [np.clip(self.theta, self.bounds[:, 0], self.bounds[:, 1])]
        if restart_from_default and not np.array_equal(starts[0], self.default_theta):
            starts.append(self.default_theta.copy())
        best_theta, best_value = starts[0], math.inf
        for x0 in starts:
            with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
                res = minimize(
                    self._neg_log_posterior,
                    x0,
                    args=(X, y),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=self.bounds,
                    options={"maxiter": self.max_iter},
                )
            value = float(res.fun)
            if math.isfinite(value) and value < best_value:
                best_theta, best_value = np.clip(res.x, self.bounds[:, 0], self.bounds[:, 1]), value
        return np.asarray(best_theta, dtype=float)

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self, include_data: bool = True) -> dict[str, Any]:
        """JSON-able state: ``theta``, standardization, the sizes after each factorization batch
        (one :meth:`set_data` then one entry per :meth:`add_points`) and, with
        ``include_data``, the data (``X`` as lists, ``y`` in the caller's units)."""
        state: dict[str, Any] = {
            "theta": [float(v) for v in self.theta],
            "y_mean": self.y_mean,
            "y_scale": self.y_scale,
            "batches": list(self._batches),
        }
        if include_data:
            state["X"] = self.X.tolist()
            state["y"] = self.y.tolist()
        return state

    def load_state_dict(self, state: dict[str, Any], X: Any = None, y: Any = None) -> GaussianProcess:
        """Restore a :meth:`state_dict` (on a model built with the same arguments), replaying the
        same factorization batches so that predictions are bitwise equal to the original's.
        Pass ``X`` and ``y`` (in the caller's units) if the state was taken without data.
        Returns ``self``."""
        self.set_theta(state["theta"])
        self.y_mean, self.y_scale = float(state["y_mean"]), float(state["y_scale"])
        batches = [int(b) for b in state.get("batches", [])]
        if not batches:
            return self
        X = np.asarray(state["X"] if X is None else X, dtype=float).reshape(-1, self.dim)
        y = np.asarray(state["y"] if y is None else y, dtype=float).reshape(-1)
        if X.shape[0] < batches[-1] or y.shape[0] < batches[-1]:
            raise ValueError(f"the GP state needs {batches[-1]} observations, got {X.shape[0]}")
        self.set_data(X[: batches[0]], y[: batches[0]], y_mean=self.y_mean, y_scale=self.y_scale)
        for lo, hi in zip(batches, batches[1:], strict=False):
            self.add_points(X[lo:hi], y[lo:hi])
        return self
