"""Product-kernel density estimation on mixed data, for TPE-style searchers (BOHB).

Falkner, Klein, Hutter: "BOHB: Robust and Efficient Hyperparameter Optimization at Scale",
ICML 2018, Section 3.1: the good and the bad observations each get a multivariate kernel density
estimate; new configurations are drawn from the good one (with widened bandwidths) and the one
maximizing ``l(x) / g(x)`` is evaluated.

:class:`ProductKDE` works on a matrix of *model rows*, one column per hyperparameter:

* a **continuous** column (floats, integers, ordinals, finite ranges encoded in ``[0, 1]`` by
  :class:`tunebench.space.SpaceEncoder`) gets a Gaussian kernel truncated to ``[0, 1]`` (each
  kernel is renormalized on the interval, so the density integrates to 1 there). Bandwidth: the
  normal-reference rule of thumb ``1.06 * std * n ** (-1 / (4 + p))`` (``p`` = number of
  columns), at least ``min_bandwidth``;
* a **categorical** column holds category indices ``0 .. k-1`` and gets the Aitchison-Aitken
  kernel: probability ``1 - lam`` on the datum's own category and ``lam / (k - 1)`` on each
  other one. ``lam`` follows the same rule with the categorical spread
  ``sqrt(1 - sum_c f_c**2)`` (``f_c`` = category frequencies) in place of the standard
  deviation, between ``min_bandwidth`` and ``(k - 1) / k`` (the uniform distribution).

Everything is vectorized with numpy: evaluating the density of ``m`` points under ``n`` data
costs ``O(m * n * p)`` operations and ``O(m * n)`` memory (one pass per column).

**Conditional parameters** (a column named in ``conditional``): a cell holding :data:`INACTIVE`
means the parameter is inactive in that row (its condition does not hold). Such a column's
density is fitted on the rows where it is active only: its bandwidth comes from those rows, a
datum where it is inactive contributes the uniform density in that column (it says nothing about
the parameter), and a query point where it is inactive gets the factor 1 from every datum (the
column drops out of its density; the good and bad densities of a TPE ratio then compare it on
the parameters it has). Sampling draws an inactive datum's column uniformly. Columns that are
not conditional keep the fast path above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["ProductKDE", "DEFAULT_MIN_BANDWIDTH", "INACTIVE"]

#: the value of a model-row cell whose (conditional) parameter is inactive in that row
INACTIVE = -1.0

#: smallest bandwidth, as in BOHB (keeps the density finite when all data agree)
DEFAULT_MIN_BANDWIDTH = 1e-3

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
#: the truncated kernel's mass on [0, 1] is at least this (a datum on a bound keeps about half)
_MIN_MASS = 1e-300


class ProductKDE:
    """A product-kernel density estimate fitted on ``data``.

    Args:
        data: array ``(n, p)`` of model rows (``n >= 1``): continuous columns in ``[0, 1]``,
            categorical columns with integer category indices.
        n_categories: for each column, ``0`` for a continuous column, else its number of
            categories ``k >= 1``.
        min_bandwidth: lower bound of every bandwidth.
        bandwidths: explicit bandwidths per column (``None``: the rule of thumb of the module
            docstring); categorical ones are clipped into ``[0, (k - 1) / k]``.
        conditional: for each column, whether it may hold :data:`INACTIVE` cells (a
            conditional parameter; see the module docstring). ``None``: none may.

    Raises:
        ValueError: data of the wrong shape, values outside ``[0, 1]`` or not valid category
            indices, a non-positive ``min_bandwidth``.
    """

    def __init__(
        self,
        data: np.ndarray,
        n_categories: Sequence[int] | np.ndarray,
        *,
        min_bandwidth: float = DEFAULT_MIN_BANDWIDTH,
        bandwidths: Sequence[float] | np.ndarray | None = None,
        conditional: Sequence[bool] | np.ndarray | None = None,
    ):
        data = np.asarray(data, dtype=float)
        kinds = np.asarray(n_categories, dtype=np.int64).reshape(-1)
        cond = (np.zeros(kinds.size, dtype=bool) if conditional is None
                else np.asarray(conditional, dtype=bool).reshape(-1))
        if cond.size != kinds.size:
            raise ValueError(f"conditional must have one flag per column ({kinds.size}), got {cond.size}")
        if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] != kinds.size:
            raise ValueError(
                f"data must be an array (n >= 1, {kinds.size}) matching n_categories, got shape {data.shape}"
            )
        if not min_bandwidth > 0:
            raise ValueError(f"min_bandwidth must be > 0, got {min_bandwidth!r}")
        if np.any(kinds < 0):
            raise ValueError(f"n_categories must be 0 (continuous) or >= 1, got {kinds.tolist()}")
        if not np.isfinite(data).all():
            raise ValueError("data must be finite")
        self.data = data
        self.n_categories = kinds
        self.conditional = cond
        self.min_bandwidth = float(min_bandwidth)
        #: per column: the rows where it is active (all for a column that is not conditional)
        active = np.ones(data.shape, dtype=bool)
        active[:, cond] = data[:, cond] != INACTIVE
        self._active = active
        # the fast path: columns that are not conditional
        self._cont = np.flatnonzero((kinds == 0) & ~cond)
        self._cat = np.flatnonzero((kinds > 0) & ~cond)
        self._cond_cols = np.flatnonzero(cond)
        n, p = data.shape
        cont_all = np.flatnonzero(kinds == 0)
        cat_all = np.flatnonzero(kinds > 0)
        values = np.where(active, data, 0.0)  # inactive cells read as 0 only in the checks below
        if cont_all.size and (values[:, cont_all].min() < 0.0 or values[:, cont_all].max() > 1.0):
            raise ValueError("continuous columns of data must lie in [0, 1]")
        all_codes = values[:, cat_all]
        if cat_all.size and (np.any(all_codes != np.round(all_codes)) or np.any(all_codes < 0)
                             or np.any(all_codes >= kinds[cat_all])):
            raise ValueError("categorical columns of data must hold category indices 0 .. k-1")
        codes = data[:, self._cat]
        self._codes = codes.astype(np.int64)

        if bandwidths is None:
            bw = np.empty(p)
            for pcol in range(p):
                rows_active = active[:, pcol]
                column = data[rows_active, pcol]
                # the rule of thumb on the rows where the column is active (all of them but for a
                # conditional column)
                factor = max(column.size, 1) ** (-1.0 / (4.0 + p))
                if column.size == 0:
                    bw[pcol] = 1.0  # never active: the column is uniform anyway
                elif kinds[pcol] == 0:
                    bw[pcol] = 1.06 * column.std() * factor
                else:
                    n_k = int(kinds[pcol])
                    freq = np.bincount(column.astype(np.int64), minlength=n_k) / column.size
                    bw[pcol] = math.sqrt(max(0.0, 1.0 - float(freq @ freq))) * factor
        else:
            bw = np.asarray(bandwidths, dtype=float).reshape(-1).copy()
            if bw.size != p or not np.isfinite(bw).all():
                raise ValueError(f"bandwidths must be {p} finite numbers, got {bandwidths!r}")
        bw = np.maximum(bw, self.min_bandwidth)
        if cat_all.size:
            ks = kinds[cat_all].astype(float)
            bw[cat_all] = np.minimum(bw[cat_all], (ks - 1.0) / np.maximum(ks, 1.0))
        self.bandwidths = bw

        # continuous kernels: sum over columns of the log of each datum's normalizer (truncated
        # mass on [0, 1] times h sqrt(2 pi)), shape (n,); data scaled by the bandwidths
        centres = data[:, self._cont]
        h = bw[self._cont]
        mass = ndtr((1.0 - centres) / h) - ndtr(-centres / h)
        self._log_norm = -(np.log(np.maximum(mass, _MIN_MASS)) + np.log(h) + _LOG_SQRT_2PI).sum(axis=1)
        self._scaled = centres / h
        self._scaled_sq = (self._scaled**2).sum(axis=1)
        # categorical kernels: log-probability "other category" summed over columns, plus a
        # one-hot matrix of the data weighted by log(same) - log(other) per column, so that the
        # kernel sum of m points is one matrix product
        self._cat_cols = [col for col in self._cat if kinds[col] > 1]  # one category: kernel 1
        offsets = np.cumsum([0] + [int(kinds[col]) for col in self._cat_cols])
        self._cat_offsets = offsets[:-1]
        onehot = np.zeros((n, int(offsets[-1])))
        rows = np.arange(n)
        for j, col in enumerate(self._cat_cols):
            kf = float(kinds[col])
            lam = bw[col]
            log_same, log_other = math.log1p(-lam), math.log(lam / (kf - 1.0))
            onehot[rows, offsets[j] + data[:, col].astype(np.int64)] = log_same - log_other
            self._log_norm += log_other
        self._onehot_t = onehot.T.copy()
        # conditional columns, one at a time: per datum, its log kernel normalizer (continuous)
        # or its log-probabilities same/other (categorical); inactive data: the uniform density
        self._cond_terms: list[tuple[int, np.ndarray, np.ndarray, float]] = []
        for ccol in self._cond_cols.tolist():
            on = active[:, ccol]
            width = float(bw[ccol])
            n_cat = int(kinds[ccol])
            if n_cat == 0:
                centre = np.where(on, data[:, ccol], 0.5)
                mass = ndtr((1.0 - centre) / width) - ndtr(-centre / width)
                log_norm = -(np.log(np.maximum(mass, _MIN_MASS)) + math.log(width) + _LOG_SQRT_2PI)
                self._cond_terms.append((ccol, on, log_norm, width))
            else:
                log_same = math.log1p(-width) if n_cat > 1 else 0.0
                log_other = math.log(width / (n_cat - 1.0)) if n_cat > 1 else 0.0
                logs = np.array([log_same, log_other, -math.log(n_cat)])
                self._cond_terms.append((ccol, on, logs, width))

    @property
    def n(self) -> int:
        """Number of data points."""
        return int(self.data.shape[0])

    def log_pdf(self, X: np.ndarray) -> np.ndarray:
        """Log-density at each row of ``X`` (shape ``(m, p)``, same column layout as the data);
        returns an array ``(m,)``. Points outside ``[0, 1]`` in a continuous column get a
        finite (very low) value, not ``-inf``; category indices out of range count as "other"."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.data.shape[1]:
            raise ValueError(f"X must have shape (m, {self.data.shape[1]}), got {X.shape}")
        m = X.shape[0]
        # log kernel products (m, n): -|x/h - d/h|^2 / 2 by the expansion |x|^2 + |d|^2 - 2 x.d
        if self._cont.size:
            xs = X[:, self._cont] / self.bandwidths[self._cont]
            sq = np.add.outer((xs * xs).sum(axis=1), self._scaled_sq)
            sq -= 2.0 * (xs @ self._scaled.T)
            np.maximum(sq, 0.0, out=sq)
            total = sq
            total *= -0.5
            total += self._log_norm
        else:
            total = np.broadcast_to(self._log_norm, (m, self.n)).copy()
        for ccol, on, terms, width in self._cond_terms:
            x = X[:, ccol]
            query_on = x != INACTIVE  # an inactive query: factor 1 from every datum
            if int(self.n_categories[ccol]) == 0:
                diff = (x[:, None] - self.data[None, :, ccol]) / width
                term = np.where(on[None, :], -0.5 * diff * diff + terms[None, :], 0.0)
            else:
                same = np.round(x)[:, None] == self.data[None, :, ccol]
                term = np.where(on[None, :], np.where(same, terms[0], terms[1]), terms[2])
            total += np.where(query_on[:, None], term, 0.0)
        if self._cat_cols:
            onehot = np.zeros((m, self._onehot_t.shape[0]))
            rows = np.arange(m)
            for j, col in enumerate(self._cat_cols):
                k = int(self.n_categories[col])
                codes = np.round(X[:, col]).astype(np.int64)
                ok = (codes >= 0) & (codes < k)
                onehot[rows[ok], self._cat_offsets[j] + codes[ok]] = 1.0
            total += onehot @ self._onehot_t
        top = total.max(axis=1)
        total -= top[:, None]
        np.exp(total, out=total)
        log_density: np.ndarray = np.log(total.sum(axis=1)) + top - math.log(self.n)
        return log_density

    def pdf(self, X: np.ndarray) -> np.ndarray:
        """Density at each row of ``X`` (see :meth:`log_pdf`)."""
        density: np.ndarray = np.exp(self.log_pdf(X))
        return density

    def sample(self, rng: np.random.Generator, size: int, bandwidth_factor: float = 1.0) -> np.ndarray:
        """``size`` draws from the density with every bandwidth multiplied by
        ``bandwidth_factor`` (BOHB draws candidates with factor 3, to explore around the good
        points); categorical bandwidths stay at most ``(k - 1) / k``. Returns ``(size, p)``:
        continuous values in ``[0, 1]``, category indices as floats."""
        if not bandwidth_factor > 0:
            raise ValueError(f"bandwidth_factor must be > 0, got {bandwidth_factor!r}")
        idx = rng.integers(self.n, size=size)
        out: np.ndarray = self.data[idx].copy()
        if self._cont.size:
            centres = out[:, self._cont]
            h = self.bandwidths[self._cont] * bandwidth_factor
            lo = ndtr(-centres / h)
            hi = ndtr((1.0 - centres) / h)
            u = lo + rng.random(centres.shape) * (hi - lo)
            u = np.clip(u, 1e-300, 1.0 - 1e-16)
            out[:, self._cont] = np.clip(centres + h * ndtri(u), 0.0, 1.0)
        if self._cat.size:
            k = self.n_categories[self._cat]
            lam = np.minimum(self.bandwidths[self._cat] * bandwidth_factor, (k - 1.0) / np.maximum(k, 1))
            codes = self._codes[idx]
            move = rng.random(codes.shape) < lam
            shift = rng.integers(1, np.maximum(k, 2), size=codes.shape)  # another category, uniformly
            out[:, self._cat] = np.where(move & (k > 1), (codes + shift) % np.maximum(k, 1), codes)
        for ccol, on, _, width in self._cond_terms:
            n_cat = int(self.n_categories[ccol])
            centres = self.data[idx, ccol]
            drawn_on = on[idx]
            draws: np.ndarray
            uniform: np.ndarray
            if n_cat == 0:
                wf = width * bandwidth_factor
                safe = np.where(drawn_on, centres, 0.5)
                lo_c, hi_c = ndtr(-safe / wf), ndtr((1.0 - safe) / wf)
                u_c = np.clip(lo_c + rng.random(size) * (hi_c - lo_c), 1e-300, 1.0 - 1e-16)
                draws = np.clip(safe + wf * ndtri(u_c), 0.0, 1.0)
                uniform = rng.random(size)
            else:
                move_p = min(width * bandwidth_factor, (n_cat - 1.0) / n_cat) if n_cat > 1 else 0.0
                own = np.where(drawn_on, centres, 0).astype(np.int64)
                step = rng.integers(1, max(n_cat, 2), size=size)
                moved = (rng.random(size) < move_p) & (n_cat > 1)
                draws = np.where(moved, (own + step) % n_cat, own).astype(float)
                uniform = rng.integers(0, n_cat, size=size).astype(float)
            out[:, ccol] = np.where(drawn_on, draws, uniform)  # inactive datum: uniform in the column
        return out
