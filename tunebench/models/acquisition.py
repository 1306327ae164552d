"""Acquisition functions and their optimizer over an encoded config space (L1 models).

Conventions: the objective is *minimized*; models give a posterior ``mean`` and variance ``var``
per encoded row; an *acquisition score* is higher-is-better (the optimizer maximizes it).

* :func:`expected_improvement` ``E[max(best - f, 0)]`` and its numerically safe logarithm
  :func:`log_expected_improvement` (the same ranking, but no underflow to 0 far from the
  incumbent, so local search still has a slope to climb);
* :func:`log_ei_per_cost`: ``log(EI / cost^alpha)`` (EI per unit of cost, cost-aware BO);
* :func:`lower_confidence_bound` ``mean - kappa * sd`` (lower is better: score it negated);
* :func:`log_probability_of_feasibility` ``log P(g <= 0)`` for a constraint's slack ``g`` (constrained
  BO multiplies EI by it: adds the logs);
* :func:`thompson_sample`: one joint posterior sample over a batch of candidates.

:class:`AcquisitionOptimizer` maximizes a score over a config space: random configurations
(sampled from the space with its own distributions, then encoded) are scored in one batch,
then a local search runs from the best few (and from extra starts such as the incumbents),
with moves that respect parameter types: a continuous column moves by +-step in the unit cube,
integer / ordinal / ``finrange`` values move one value up or down (or by +-step, snapped to a
valid value), a ``choice`` switches category.  Every row it visits is a valid encoding
(``encode(decode(row)) == row`` for the discrete columns), so decoded configs are always valid.
Rows whose key (:func:`row_keys`) is in ``exclude`` (configs already evaluated or pending) are
never returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

from tunebench.space import Choice, Float, Integer, SpaceEncoder, get_encoder, sample_configs

__all__ = [
    "AcquisitionOptimizer",
    "expected_improvement",
    "log_ei_per_cost",
    "log_expected_improvement",
    "log_probability_of_feasibility",
    "lower_confidence_bound",
    "row_keys",
    "thompson_sample",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_SQRT_HALF = math.sqrt(0.5)

ScoreFn = Callable[[np.ndarray], np.ndarray]


def _sd(var: np.ndarray) -> np.ndarray:
    sd: np.ndarray = np.sqrt(np.maximum(np.asarray(var, dtype=float), 1e-300))
    return sd


def expected_improvement(mean: np.ndarray, var: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` for minimization: ``E[max(best - f, 0)]`` with
    ``f ~ N(mean, var)``, i.e. ``sd * (z Phi(z) + phi(z))``, ``z = (best - mean) / sd``."""
    mean = np.asarray(mean, dtype=float)
    sd = _sd(var)
    z = (best - mean) / sd
    ei: np.ndarray = sd * (z * ndtr(z) + _INV_SQRT_2PI * np.exp(-0.5 * z * z))
    return ei


def log_expected_improvement(mean: np.ndarray, var: np.ndarray, best: float | np.ndarray) -> np.ndarray:
    """``log`` of :func:`expected_improvement`, accurate where the EI underflows (``z`` far
    below 0): for ``z <= -1``, ``z Phi(z) + phi(z) = phi(z) (1 + z * Phi(z) / phi(z))`` with the
    ratio computed by ``erfcx`` (no cancellation), and the asymptote ``phi(z) / z^2`` below
    ``z = -1e4``. ``best``: one number, or one per entry of ``mean``."""
    mean = np.asarray(mean, dtype=float)
    sd = _sd(var)
    z = (best - mean) / sd
    zh = np.maximum(z, -1.0)
    high = np.log(zh * ndtr(zh) + _INV_SQRT_2PI * np.exp(-0.5 * zh * zh))
    zl = np.clip(z, -1e4, -1.0)
    low = np.log1p(zl * (_SQRT_HALF_PI * erfcx(-_SQRT_HALF * zl)))
    low -= 0.5 * zl * zl + _LOG_SQRT_2PI
    out: np.ndarray = np.where(z > -1.0, high, low)
    tail = z < -1e4
    if np.any(tail):
        out = np.where(tail, -0.5 * z * z - _LOG_SQRT_2PI - 2.0 * np.log(np.maximum(-z, 1.0)), out)
    out += np.log(sd)
    return out


def log_probability_of_feasibility(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``log P(g <= 0)`` with ``g ~ N(mean, var)``: the log of ``Phi(-mean / sd)``, computed by
    ``log_ndtr`` (accurate far in the lower tail, where ``Phi`` underflows to 0, so that a search
    outside the feasible region still has a slope towards it). ``g`` is a constraint's slack,
    feasible when at most 0 (:meth:`tunebench.types.Constraint.slack`)."""
    mean = np.asarray(mean, dtype=float)
    out: np.ndarray = log_ndtr(-mean / _sd(var))
    return out


def log_ei_per_cost(mean: np.ndarray, var: np.ndarray, best: float | np.ndarray, log_cost: np.ndarray,
                    alpha: float = 1.0) -> np.ndarray:
    """``log(EI / cost^alpha) = log EI - alpha * log cost``: expected improvement per unit of
    cost (EIpu), as in cost-aware BO (Snoek et al. 2012; CArBO, Lee et al. 2020, whose cost
    cooling lowers ``alpha`` from 1 to 0 over the budget).  ``mean``, ``var``, ``best``: as
    :func:`log_expected_improvement`; ``log_cost``: the predicted log cost of each row (e.g. the
    posterior mean of a GP on log costs); ``alpha`` >= 0 (0: plain EI)."""
    out: np.ndarray = log_expected_improvement(mean, var, best) - alpha * np.asarray(log_cost, dtype=float)
    return out


def lower_confidence_bound(mean: np.ndarray, var: np.ndarray, kappa: float = 2.0) -> np.ndarray:
    """``mean - kappa * sd`` (lower is better; use its negation as a score)."""
    lcb: np.ndarray = np.asarray(mean, dtype=float) - kappa * _sd(var)
    return lcb


def thompson_sample(model: Any, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One joint posterior sample of ``f`` at the rows of ``X`` (shape ``(m,)``); ``model``
    has ``sample_posterior(X, n_samples, rng)`` (a :class:`tunebench.models.gp.GaussianProcess`).
    Its argmin is the Thompson-sampling choice among the candidates."""
    sample: np.ndarray = model.sample_posterior(X, 1, rng)[0]
    return sample


def row_keys(X: np.ndarray) -> list[bytes]:
    """Hashable keys of encoded rows (rounded to 1e-9, so that a config and its re-encoding
    match); used to exclude configurations already evaluated or pending."""
    R = np.round(np.asarray(X, dtype=float), 9) + 0.0  # + 0.0: no negative zeros
    R = np.ascontiguousarray(R)
    return [row.tobytes() for row in R]


#: discrete domains with at most this many values get a lookup table of their encodings
_MAX_TABLE = 100_000


class _Param:
    """How one hyperparameter's columns move in local search."""

    __slots__ = ("name", "domain", "start", "stop", "kind", "table")

    def __init__(self, name: str, domain: Any, sl: slice):
        self.name = name
        self.domain = domain
        self.start, self.stop = sl.start, sl.stop
        #: encodings of every value, increasing (encodings are monotone in the value order)
        self.table: np.ndarray | None = None
        if isinstance(domain, Float):
            self.kind = "float"
        elif isinstance(domain, Choice):
            self.kind = "choice"
        else:  # Integer, Ordinal, FiniteRange: ordered values, one column
            self.kind = "ordered"
            k = domain.cardinality
            if k <= _MAX_TABLE:
                if isinstance(domain, Integer):
                    values: list[Any] = list(range(domain.low, domain.high + 1))
                else:
                    values = list(getattr(domain, "categories", None) or domain.values)
                self.table = domain.encode(values)[:, 0]

    def index(self, x: np.ndarray) -> np.ndarray:
        """Index in :attr:`table` of the value nearest to each encoded ``x`` (any shape)."""
        table = self.table
        assert table is not None  # called by moves() for tabled parameters only
        if len(table) == 1:
            return np.zeros(x.shape, dtype=np.intp)
        j = np.searchsorted(table, x)
        np.maximum(j, 1, out=j)
        np.minimum(j, len(table) - 1, out=j)
        left = j - 1
        return np.where(x - table[left] <= table[j] - x, left, j)

    def moves(self, x: np.ndarray, steps: np.ndarray) -> list[np.ndarray]:
        """Encodings of the values one down, one up, and nearest to ``x - step`` and
        ``x + step`` in the unit cube (longer jumps for wide ranges), for each encoding ``x``."""
        if self.table is not None:
            table = self.table
            i = self.index(np.stack([x, np.maximum(x - steps, 0.0), np.minimum(x + steps, 1.0)]))
            cur = i[0]
            return [table[np.maximum(cur - 1, 0)], table[np.minimum(cur + 1, len(table) - 1)],
                    table[i[1]], table[i[2]]]
        dom = self.domain  # huge integer range: through the domain (decode is exact)
        values = np.asarray(dom.decode(x), dtype=np.int64)
        out = [dom.encode(np.clip(values + d, dom.low, dom.high).tolist())[:, 0] for d in (-1, 1)]
        out += [dom.encode(dom.decode(np.clip(x + sign * steps, 0.0, 1.0)))[:, 0] for sign in (-1.0, 1.0)]
        return out


class AcquisitionOptimizer:
    """Maximizes an acquisition score over the configurations of ``config_space``.

    Args:
        config_space: the space (constants are carried along by decoding).
        n_candidates: random configurations scored in one batch.
        n_starts: local searches, from the best random candidates (plus any ``starts`` given to
            :meth:`optimize`).
        max_steps: iterations of each local search (one batch of neighbours per iteration).
        initial_step: first move size of continuous columns in the unit cube (halved when no
            neighbour improves; a search stops below ``min_step``).
        min_step: see ``initial_step``.

    Raises:
        ValueError: a non-positive count or step.
    """

    def __init__(
        self,
        config_space: Mapping[str, Any],
        *,
        n_candidates: int = 200,
        n_starts: int = 2,
        max_steps: int = 8,
        initial_step: float = 0.1,
        min_step: float = 0.01,
    ) -> None:
        for name, value in (("n_candidates", n_candidates), ("max_steps", max_steps)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(n_starts, (int, np.integer)) or n_starts < 0:
            raise ValueError(f"n_starts must be an integer >= 0, got {n_starts!r}")
        if not 0 < min_step <= initial_step <= 1:
            raise ValueError(
                f"need 0 < min_step <= initial_step <= 1, got min_step={min_step!r}, initial_step={initial_step!r}"
            )
        self.config_space = dict(config_space)
        self.encoder: SpaceEncoder = get_encoder(self.config_space)
        self.dim = self.encoder.encoded_dim
        self.n_candidates = int(n_candidates)
        self.n_starts = int(n_starts)
        self.max_steps = int(max_steps)
        self.initial_step = float(initial_step)
        self.min_step = float(min_step)
        self._params = [_Param(n, self.config_space[n], self.encoder.slices[n]) for n in self.encoder.names]
        #: a conditional space: the rows visited are made canonical (see :meth:`snap`), so a move
        #: of an inactive parameter's column is no new configuration, and the rows of evaluated
        #: configurations are recognized (``exclude``)
        self.conditional = self.encoder.conditional
        self._discrete_only = all(p.kind != "float" for p in self._params)
        self._build_moves()

    # -- encoded rows ----------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random configurations of the space, encoded (rows of shape ``(n, dim)``)."""
        return self.encoder.encode(sample_configs(self.config_space, rng, n))

    def decode(self, X: np.ndarray) -> list[dict[str, Any]]:
        """Encoded rows -> configs (constants included)."""
        return self.encoder.decode(X)

    def snap(self, X: np.ndarray) -> np.ndarray:
        """Rows of the unit cube -> the canonical encodings of the configs they decode to (in a
        conditional space, the columns of parameters inactive in a row at their fill value)."""
        X = np.clip(np.array(X, dtype=float, ndmin=2), 0.0, 1.0)
        if self.conditional:
            return self.encoder.encode(self.encoder.decode(X))
        for p in self._params:
            if p.kind == "float":
                continue
            cols = X[:, p.start:p.stop]
            X[:, p.start:p.stop] = p.domain.encode(p.domain.decode(cols))
        return X

    def _build_moves(self) -> None:
        """The fixed list of moves every row gets (see :meth:`neighbors`)."""
        self._float_cols = np.array([p.start for p in self._params if p.kind == "float"], dtype=np.intp)
        nf = len(self._float_cols)
        self._float_moves = (np.arange(nf) * 2, np.arange(nf) * 2 + 1)
        k = 2 * nf
        # ordered columns with a table: one search over all of them, in a concatenation of their
        # tables shifted by 2 * position (so that it stays sorted)
        tabled = [p for p in self._params if p.kind == "ordered" and p.table is not None]
        q = len(tabled)
        self._ord_cols = np.array([p.start for p in tabled], dtype=np.intp)
        self._ord_shift = 2.0 * np.arange(q)
        tables = [p.table for p in tabled if p.table is not None]  # all of them
        sizes = np.array([len(t) for t in tables], dtype=np.intp)
        self._ord_lo = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp) if q else sizes
        self._ord_hi = self._ord_lo + sizes - 1
        self._ord_values = np.concatenate(tables) if q else np.empty(0)
        self._ord_sorted = np.concatenate([t + 2.0 * i for i, t in enumerate(tables)]) if q else np.empty(0)
        self._ord_moves = [k + 4 * np.arange(q) + m for m in range(4)]
        k += 4 * q
        self._other: list[tuple[_Param, int]] = []  # ordered without a table (huge integer ranges)
        for p in self._params:
            if p.kind == "ordered" and p.table is None:
                self._other.append((p, k))
                k += 4
        self._choices: list[tuple[_Param, int]] = []
        for p in self._params:
            if p.kind == "choice":
                self._choices.append((p, k))
                k += p.stop - p.start
        self.n_moves = k

    def neighbors(self, X: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The neighbours of each row of ``X``, all valid encodings: each continuous column
        moved by ``-step`` and ``+step`` (clipped), each ordered column one value down, one up
        and to the values nearest ``-+step`` away, each ``choice`` set to each of its
        categories.  Every row gets the same :attr:`n_moves` moves (a move may leave the row
        unchanged, e.g. at a bound).  Returns the neighbours ``(len(X) * n_moves, dim)`` and,
        for each, the index of its row in ``X``."""
        s, K = X.shape[0], self.n_moves
        N = np.repeat(X[:, None, :], K, axis=1)  # (s, K, dim)
        st = steps[:, None]
        fc = self._float_cols
        if len(fc):
            base = X[:, fc]
            down, up = self._float_moves
            N[:, down, fc] = np.maximum(base - st, 0.0)
            N[:, up, fc] = np.minimum(base + st, 1.0)
        oc = self._ord_cols
        if len(oc):
            xo = X[:, oc]  # (s, q)
            Z = np.stack([xo, np.maximum(xo - st, 0.0), np.minimum(xo + st, 1.0)])
            Z += self._ord_shift
            G = self._ord_sorted
            lo, hi = self._ord_lo, self._ord_hi
            j = np.searchsorted(G, Z)
            np.maximum(j, lo + 1, out=j)
            np.minimum(j, hi, out=j)
            left = j - 1
            idx = np.where(Z - G[left] <= G[j] - Z, left, j)
            idx = np.where(lo == hi, lo, idx)  # single-valued domains
            cur = idx[0]
            V = self._ord_values
            for moves, i in zip(self._ord_moves,
                                (np.maximum(cur - 1, lo), np.minimum(cur + 1, hi), idx[1], idx[2]), strict=True):
                N[:, moves, oc] = V[i]
        for p, k in self._other:
            for i, col in enumerate(p.moves(X[:, p.start], steps)):
                N[:, k + i, p.start] = col
        for p, k in self._choices:
            width = p.stop - p.start
            N[:, k:k + width, p.start:p.stop] = np.eye(width)[None, :, :]
        return N.reshape(s * K, -1), np.repeat(np.arange(s), K)

    # -- optimization ----------------------------------------------------------------------------

    def optimize(
        self,
        score: ScoreFn,
        rng: np.random.Generator,
        *,
        exclude: Collection[bytes] = (),
        starts: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float] | None:
        """Maximize ``score`` (a function of a batch of encoded rows, higher is better).

        Args:
            score: batch of rows (m, dim) -> scores (m,).
            rng: draws the random candidates.
            exclude: :func:`row_keys` of rows never to return (evaluated or pending configs).
            starts: extra encoded rows to start local searches from (e.g. the best observed
                configs; they may be excluded themselves).

        Returns:
            ``(row, score)`` of the best row found that is not excluded, or ``None`` if every
            row visited was excluded (a small discrete space, fully evaluated).
        """
        C = self.sample(rng, self.n_candidates)
        if starts is not None and len(starts):
            C = np.concatenate([self.snap(starts), C])
        s = np.asarray(score(C), dtype=float)
        s = np.where(np.isnan(s), -np.inf, s)
        best_row: np.ndarray | None = None
        best_score = -math.inf
        best_row, best_score = self._best_allowed(C, s, exclude, best_row, best_score)
        n_extra = 0 if starts is None else len(starts)
        order = np.argsort(-s[n_extra:], kind="stable")[: self.n_starts] + n_extra
        start_idx = np.concatenate([np.arange(n_extra), order]) if n_extra else order
        cur = C[start_idx]
        cur_s = s[start_idx]
        steps = np.full(len(start_idx), self.initial_step)
        active = np.isfinite(cur_s)
        for _ in range(self.max_steps):
            if not active.any():
                break
            act = np.flatnonzero(active)
            N, _ = self.neighbors(cur[act], steps[act])
            if self.conditional:
                N = self.snap(N)
            sN = np.asarray(score(N), dtype=float)
            sN = np.where(np.isnan(sN), -np.inf, sN)
            best_row, best_score = self._best_allowed(N, sN, exclude, best_row, best_score)
            S = sN.reshape(len(act), self.n_moves)
            j = np.argmax(S, axis=1)
            top = S[np.arange(len(act)), j]
            improved = top > cur_s[act] + 1e-12 * np.abs(cur_s[act])
            moved = act[improved]
            cur[moved] = N.reshape(len(act), self.n_moves, -1)[np.flatnonzero(improved), j[improved]]
            cur_s[moved] = top[improved]
            stuck = act[~improved]
            steps[stuck] *= 0.5
            if self._discrete_only:
                active[stuck] = False
            else:
                active[stuck] = steps[stuck] >= self.min_step
        if best_row is None:
            return None
        return best_row, best_score

    @staticmethod
    def _best_allowed(
        X: np.ndarray, s: np.ndarray, exclude: Collection[bytes], best_row: np.ndarray | None, best_score: float
    ) -> tuple[np.ndarray | None, float]:
        order = np.argsort(-s, kind="stable")
        if not exclude:
            i = order[0]
            if s[i] > best_score or best_row is None:
                return X[i].copy(), float(s[i])
            return best_row, best_score
        for i in order:
            if s[i] <= best_score and best_row is not None:
                break
            if row_keys(X[i:i + 1])[0] not in exclude:
                return X[i].copy(), float(s[i])
        return best_row, best_score
