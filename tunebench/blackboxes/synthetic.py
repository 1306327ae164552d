"""Cheap synthetic multi-fidelity problems with learning curves and a known optimum (L2).

For tests, examples and quick comparisons of tuning methods. Every problem has the objectives
``("loss", "time")`` over the fidelity ``epoch = 1..max_fidelity`` (a multi-objective problem, see
:mod:`tunebench.blackboxes.synthetic_mo`, has one curve of this shape per objective before
``time``, each with its own noise):

* ``loss(f) = final + gap(f) * exp(noise * z - noise**2 / 2)`` where ``final`` is the test
  function's value (Branin, Hartmann6, ...), ``gap(f) = a * (f**-b - F**-b)`` a power law that
  decays to 0 at the last fidelity ``F`` (``a`` and ``b`` vary smoothly with the configuration)
  and ``z`` standard normal noise, independent across epochs. The noise is deterministic given
  (configuration, seed): a CRC of the configuration's float64 values and the seed picks two rows
  of a fixed table of log-normal factors (one column per epoch), so repeated evaluations agree,
  in this process or another. Since it multiplies the gap, it shrinks as the epoch grows, the
  loss never goes below ``final``, and at the last epoch the loss *is* the test function:
  ``optimum`` is exact.
* ``time(f) = cost * f``: the cumulative training time in seconds, with a per-epoch ``cost``
  between 1 and 10 s (by default) that varies smoothly with the configuration; the simulator
  advances its clock with it.

:func:`synthetic_tabular_blackbox` tabulates curves of the same shape for the full grid of a
small discrete space, for benchmarks that need a :class:`TabularBlackbox`.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.blackboxes.tabular import TabularBlackbox
from tunebench.errors import UserError
from tunebench.space import finrange, logfinrange, uniform
from tunebench.types import Config

__all__ = [
    "SyntheticBlackbox",
    "branin",
    "hartmann6",
    "branin_blackbox",
    "branin_cost_blackbox",
    "hartmann6_blackbox",
    "synthetic_tabular_blackbox",
    "BRANIN_OPTIMUM",
    "BRANIN_MINIMIZERS",
    "HARTMANN6_OPTIMUM",
    "HARTMANN6_MINIMIZER",
]

BRANIN_OPTIMUM = 0.397887
BRANIN_MINIMIZERS = ({"x1": -math.pi, "x2": 12.275}, {"x1": math.pi, "x2": 2.275}, {"x1": 9.42478, "x2": 2.475})
HARTMANN6_OPTIMUM = -3.32237
HARTMANN6_MINIMIZER = {f"x{i + 1}": v for i, v in enumerate((0.20169, 0.150011, 0.476874, 0.275332, 0.311652,
                                                             0.6573))}

OBJECTIVES = ("loss", "time")
#: The elapsed-time objective of every synthetic problem (its last objective).
TIME = "time"

#: Rows of the noise tables: a configuration's noise is the product of two rows picked by its hash,
#: so about half a million distinct noise patterns.
_NOISE_ROWS = 1024
_TWO_PI = 2.0 * math.pi
#: Added to the noise hash's salt per objective (objective ``j`` adds ``j`` times it), so the
#: objectives of a multi-objective problem get independent noise; objective 0 adds nothing.
_OBJECTIVE_SALT = 0x9E3779B97F4A7C15


def _config_hashes(X: np.ndarray, salt: int) -> list[int]:
    """A 32-bit hash of each row's float64 bits and ``salt`` (stable across processes)."""
    data = (np.asarray(X, dtype=np.float64) + 0.0).tobytes()  # + 0.0 turns -0.0 into 0.0
    width = 8 * X.shape[1]
    start = zlib.crc32((salt & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))
    return [(zlib.crc32(data[i:i + width], start) * 0x9E3779B1) & 0xFFFFFFFF
            for i in range(0, len(data), width)] if width else [start] * len(X)


def _noise_table(noise: float, n_fidelities: int, seed: int) -> np.ndarray:
    """Log-normal factors ``exp(s z - s^2 / 2)``, ``s = noise / sqrt(2)``, shape (rows, fidelities):
    the product of two rows is ``exp(noise z - noise^2 / 2)`` with ``z`` standard normal."""
    s = noise / math.sqrt(2.0)
    z = np.random.default_rng([seed, 0x5EED]).standard_normal((_NOISE_ROWS, n_fidelities))
    return np.exp(s * z - 0.5 * s * s)


def _smooth_weights(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(d, 3)`` and phases ``(3,)`` of three smooth functions of the unit cube
    (``sin(U @ W + phase)``) that shape the gap size, the decay rate and the per-epoch cost."""
    base = np.linspace(0.7, 1.3, d) / max(d, 1)
    W = _TWO_PI * np.stack([base * 1.0, base[::-1] * 1.3, base * 0.5], axis=1)
    return W, np.array([0.3, 1.7, 0.5])


def _loss_curves(final: np.ndarray, a: np.ndarray, b: np.ndarray, dlog: np.ndarray, log_max_f: float,
                 factor: np.ndarray | None) -> np.ndarray:
    """``final + a (f^-b - F^-b) * factor`` of shape (n, k) from per-config (n,) ``final, a, b`` and
    ``dlog = log F - log f`` (k,). Written ``a F^-b expm1(b (log F - log f))``: exactly 0 at ``f = F``."""
    gap: np.ndarray = (a * np.exp(-b * log_max_f))[:, None] * np.expm1(np.multiply.outer(b, dlog))
    if factor is not None:
        gap *= factor
    gap += final[:, None]
    return gap


def branin(X: np.ndarray) -> np.ndarray:
    """Branin function on rows ``(x1, x2)``; minimum 0.397887 at (-pi, 12.275), (pi, 2.275),
    (9.42478, 2.475)."""
    x1, x2 = X[:, 0], X[:, 1]
    b, c, t = 5.1 / (4.0 * math.pi**2), 5.0 / math.pi, 1.0 / (8.0 * math.pi)
    value: np.ndarray = (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1.0 - t) * np.cos(x1) + 10.0
    return value


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(X: np.ndarray) -> np.ndarray:
    """Hartmann 6-d function on rows in ``[0, 1]^6``; minimum -3.32237 at
    (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)."""
    inner = np.einsum("ij,nij->ni", _H6_A, (X[:, None, :] - _H6_P[None, :, :]) ** 2)
    value: np.ndarray = -np.exp(-inner) @ _H6_ALPHA
    return value


def _check_common(name: str, max_fidelity: int, noise: float, n_seeds: int) -> None:
    if isinstance(max_fidelity, bool) or not isinstance(max_fidelity, (int, np.integer)) or max_fidelity < 1:
        raise UserError(f"{name}: max_fidelity must be an integer >= 1, got {max_fidelity!r}")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise UserError(f"{name}: noise must be a finite number >= 0, got {noise!r}")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
        raise UserError(f"{name}: n_seeds must be an integer >= 1, got {n_seeds!r}")


class SyntheticBlackbox(Blackbox):
    """A test function with learning curves (see the module docstring for the curve model).

    Args:
        name: identifier.
        function: vectorized test function: array ``(n, d)`` of hyperparameter values (in the
            order of ``bounds``) -> array ``(n,)`` of final losses, or ``(n, m)`` final values
            of the ``m`` objectives named by ``objectives``.
        bounds: hyperparameter name -> ``(low, high)``; the config space is ``uniform`` on each.
        optimum_value: the minimum of ``function`` (``optimum["loss"]``); with several
            objectives, the minimum of each (``optimum[name]``, the ideal point).
        minimizers: configurations where ``function`` reaches its minimum (for tests and plots).
        max_fidelity: number of epochs (fidelities ``1..max_fidelity``).
        noise: standard deviation of the log-normal factor on the gap (0: smooth curves).
        gap_scale: size of the gap between the loss at epoch 1 and the final loss (0.3..1 times it).
        time_per_epoch: range of the per-epoch cost in seconds.
        n_seeds: number of seeds (noise realizations).
        seed: salt of the noise hash: another value gives other noise for every seed.
        objectives: names of ``function``'s values (all minimized), in its column order;
            ``"time"`` follows them.
        cost: the per-epoch cost in seconds (> 0) of each configuration: array ``(n, d)`` of
            hyperparameters scaled to ``[0, 1]`` -> array ``(n,)``; None: a smooth function of
            the configuration within ``time_per_epoch``.
    """

    def __init__(self, name: str, function: Callable[[np.ndarray], np.ndarray],
                 bounds: Mapping[str, tuple[float, float]], *, optimum_value: float | Sequence[float],
                 minimizers: Sequence[Config] = (), max_fidelity: int = 27, noise: float = 0.2,
                 gap_scale: float = 1.0, time_per_epoch: tuple[float, float] = (1.0, 10.0),
                 n_seeds: int = 1, seed: int = 0, objectives: Sequence[str] = OBJECTIVES[:1],
                 cost: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        _check_common(name, max_fidelity, noise, n_seeds)
        lo_t, hi_t = (float(t) for t in time_per_epoch)
        if not 0 < lo_t <= hi_t:
            raise UserError(f"{name}: time_per_epoch must be (low, high) with 0 < low <= high, got {time_per_epoch}")
        names = tuple(objectives)
        if not names or len(set(names)) != len(names) or TIME in names:
            raise UserError(f"{name}: objectives must be distinct names other than {TIME!r}, got {list(names)}")
        optima = (optimum_value,) if isinstance(optimum_value, (int, float)) else tuple(optimum_value)
        if len(optima) != len(names):
            raise UserError(f"{name}: optimum_value needs one value per objective {list(names)}, got {optimum_value}")
        self.name = name
        self.function = function
        self.config_space: dict[str, Any] = {k: uniform(lo, hi) for k, (lo, hi) in bounds.items()}
        self.fidelity_name = "epoch"
        self.fidelity_values = np.arange(1, int(max_fidelity) + 1)
        self.objectives = (*names, TIME)
        self.elapsed_time_attr = TIME
        self.n_seeds = int(n_seeds)
        self.optimum = {k: float(v) for k, v in zip(names, optima, strict=True)}
        self.minimizers = [dict(m) for m in minimizers]
        self.noise = float(noise)
        self.gap_scale = float(gap_scale)
        self.time_per_epoch = (lo_t, hi_t)
        self.seed = int(seed)
        self.cost = cost
        self._names = list(bounds)
        self._low = np.array([b[0] for b in bounds.values()], dtype=np.float64)
        span = np.array([b[1] - b[0] for b in bounds.values()], dtype=np.float64)
        self._inv_span = 1.0 / np.where(span > 0, span, 1.0)
        self._W, self._phase = _smooth_weights(len(self._names))
        # a in gap_scale * [0.3, 1], b in [0.4, 1.6], cost in time_per_epoch, as mid + half * sin(...)
        self._mid = np.array([self.gap_scale * 0.65, 1.0, 0.5 * (lo_t + hi_t)])
        self._half = np.array([self.gap_scale * 0.35, 0.6, 0.5 * (hi_t - lo_t)])
        self._f = self.fidelity_values.astype(np.float64)
        log_f = np.log(self._f)
        self._log_max_f = float(log_f[-1])
        self._dlog = log_f[-1] - log_f  # log F - log f: 0 at the last fidelity
        self._noise_table = _noise_table(self.noise, len(self._f), self.seed) if self.noise else None
        self._salt = self.seed * 1_000_003

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        """Objectives and elapsed time of ``configs`` at ``fidelity_values[fidelity_index]`` (vectorized)."""
        names = self._names
        n = len(configs)
        try:
            X = np.array([[c[k] for k in names] for c in configs], dtype=np.float64).reshape(n, len(names))
        except (KeyError, TypeError, ValueError):
            for c in configs:
                self.check_config(c)
            raise
        U = (X - self._low) * self._inv_span
        S = np.sin(U @ self._W + self._phase)  # (n, 3) in [-1, 1]
        S *= self._half
        S += self._mid
        a, b = S[:, 0], S[:, 1]
        cost = S[:, 2] if self.cost is None else np.asarray(self.cost(U), dtype=np.float64).reshape(n)
        m = len(self.objectives) - 1
        finals = np.asarray(self.function(X), dtype=np.float64).reshape(n, m)
        f = self._f[fidelity_index]
        dlog = self._dlog[fidelity_index]
        out = np.empty((n, len(f), m + 1))
        for j in range(m):
            factor = None
            if self._noise_table is not None:
                hashes = _config_hashes(X, self._salt + seed + j * _OBJECTIVE_SALT)
                table = self._noise_table
                factor = table[[h >> 22 for h in hashes]]
                factor *= table[[(h >> 12) & (_NOISE_ROWS - 1) for h in hashes]]
                factor = factor.take(fidelity_index, axis=1)
            out[:, :, j] = _loss_curves(finals[:, j], a, b, dlog, self._log_max_f, factor)
        np.multiply.outer(cost, f, out=out[:, :, m])
        return out


def branin_blackbox(max_fidelity: int = 27, noise: float = 0.2, n_seeds: int = 1, seed: int = 0) -> SyntheticBlackbox:
    """Branin (``x1`` in [-5, 10], ``x2`` in [0, 15]) with learning curves over ``epoch``.

    ``optimum = {"loss": 0.397887}``, reached at the last epoch at each of
    :data:`BRANIN_MINIMIZERS` (e.g. ``x1 = pi, x2 = 2.275``).
    """
    return SyntheticBlackbox("branin", branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)},
                             optimum_value=BRANIN_OPTIMUM, minimizers=BRANIN_MINIMIZERS,
                             max_fidelity=max_fidelity, noise=noise, gap_scale=50.0, n_seeds=n_seeds, seed=seed)


def branin_cost_blackbox(max_fidelity: int = 27, noise: float = 0.2, n_seeds: int = 1, seed: int = 0,
                         time_per_epoch: tuple[float, float] = (1.0, 30.0)) -> SyntheticBlackbox:
    """Branin with learning curves whose per-epoch cost grows with ``x1`` alone, for cost-aware
    search: ``cost = lo * (hi / lo)^u``, ``u = (x1 + 5) / 15`` (log-linear from ``lo`` at
    ``x1 = -5`` to ``hi`` at ``x1 = 10``; by default 1 to 30 s), as when a hyperparameter sets the
    size of the model.  The loss is :func:`branin_blackbox`'s; its three minimizers
    (:data:`BRANIN_MINIMIZERS`) cost about 1.5, 6.3 and 26 s per epoch: a cost-aware method can
    reach the optimum for a fraction of what a cost-blind one may spend.
    """
    lo, hi = (float(t) for t in time_per_epoch)
    if not 0 < lo <= hi:
        raise UserError(f"branin-cost: time_per_epoch must be (low, high) with 0 < low <= high, got {time_per_epoch}")

    def cost(U: np.ndarray) -> np.ndarray:
        value: np.ndarray = lo * (hi / lo) ** U[:, 0]
        return value

    return SyntheticBlackbox("branin-cost", branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)},
                             optimum_value=BRANIN_OPTIMUM, minimizers=BRANIN_MINIMIZERS,
                             max_fidelity=max_fidelity, noise=noise, gap_scale=50.0, n_seeds=n_seeds, seed=seed,
                             time_per_epoch=(lo, hi), cost=cost)


def hartmann6_blackbox(max_fidelity: int = 27, noise: float = 0.2, n_seeds: int = 1,
                       seed: int = 0) -> SyntheticBlackbox:
    """Hartmann6 (``x1..x6`` in [0, 1]) with learning curves over ``epoch``.

    ``optimum = {"loss": -3.32237}``, reached at the last epoch at :data:`HARTMANN6_MINIMIZER`.
    """
    return SyntheticBlackbox("hartmann6", hartmann6, {f"x{i}": (0.0, 1.0) for i in range(1, 7)},
                             optimum_value=HARTMANN6_OPTIMUM, minimizers=[HARTMANN6_MINIMIZER],
                             max_fidelity=max_fidelity, noise=noise, gap_scale=1.0, n_seeds=n_seeds, seed=seed)


def _grid_sizes(n: int, k: int = 3) -> list[int]:
    """``k`` axis sizes whose product is ``n``, as even as the prime factors of ``n`` allow."""
    factors: list[int] = []
    m, p = n, 2
    while p * p <= m:
        while m % p == 0:
            factors.append(p)
            m //= p
        p += 1
    if m > 1:
        factors.append(m)
    sizes = [1] * k
    for q in sorted(factors, reverse=True):
        sizes[sizes.index(min(sizes))] *= q
    return sorted(sizes, reverse=True)


def synthetic_tabular_blackbox(n_configs: int = 1000, max_fidelity: int = 27, n_seeds: int = 1, seed: int = 0,
                               noise: float = 0.1) -> TabularBlackbox:
    """A :class:`TabularBlackbox` of ``n_configs`` configurations × ``max_fidelity`` epochs.

    The config space is discrete: ``lr`` (logfinrange 1e-4..1e-1), ``dropout`` (finrange 0..0.5)
    and ``momentum`` (finrange 0.5..0.99), with axis sizes whose product is ``n_configs``; the
    table holds its *full grid*, so every configuration a searcher samples from the space is
    tabulated (pure lookups, no surrogate). The final loss is a smooth bowl in the encoded
    hyperparameters (best near lr 6e-3, dropout 0.15, momentum 0.85) plus per-configuration
    jitter; large learning rates with high momentum diverge (loss 0.9, flat curves). Curves and
    times follow the module's curve model, with the noise drawn per seed; everything is a
    function of ``seed``. ``optimum["loss"]`` is the best final loss of the table.
    Builds in a few milliseconds for 1000 × 27.
    """
    name = "synthetic-tabular"
    if isinstance(n_configs, bool) or not isinstance(n_configs, (int, np.integer)) or n_configs < 1:
        raise UserError(f"{name}: n_configs must be an integer >= 1, got {n_configs!r}")
    _check_common(name, max_fidelity, noise, n_seeds)
    sizes = _grid_sizes(int(n_configs))
    space: dict[str, Any] = {
        "lr": logfinrange(1e-4, 1e-1, sizes[0]),
        "dropout": finrange(0.0, 0.5, sizes[1]),
        "momentum": finrange(0.5, 0.99, sizes[2]),
    }
    names = list(space)
    axes = [space[n].values for n in names]
    configs = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
    centres = [(np.arange(k) + 0.5) / k for k in sizes]
    U = np.stack([g.reshape(-1) for g in np.meshgrid(*centres, indexing="ij")], axis=1)  # (n, 3), grid order
    rng = np.random.default_rng(seed)
    n = len(configs)
    u_lr, u_do, u_mo = U[:, 0], U[:, 1], U[:, 2]
    final = (0.06 + 0.5 * (u_lr - 0.75) ** 2 + 0.15 * (u_do - 0.3) ** 2 + 0.12 * (u_mo - 0.75) ** 2
             + 0.3 * np.maximum(u_lr - 0.75, 0) * np.maximum(u_mo - 0.75, 0)
             + 0.01 * np.abs(rng.standard_normal(n)))
    diverged = (u_lr > 0.9) & (u_mo > 0.85)
    final = np.where(diverged, 0.9, np.minimum(final, 0.9))
    a = np.where(diverged, 0.02, (0.3 + 0.4 * rng.random(n)) * (1.0 - final))
    W, phase = _smooth_weights(3)
    b = 0.4 + 0.6 * (1.0 + np.sin(U @ W[:, 1] + phase[1])) * (0.75 + 0.25 * rng.random(n))
    cost = 1.0 + 9.0 * rng.random(n)
    f = np.arange(1, int(max_fidelity) + 1, dtype=np.float64)
    log_f = np.log(f)
    values = np.empty((n, int(n_seeds), len(f), 2))
    for s in range(int(n_seeds)):
        factor = np.exp(noise * rng.standard_normal((n, len(f))) - 0.5 * noise * noise) if noise else None
        values[:, s, :, 0] = _loss_curves(final, a, b, log_f[-1] - log_f, float(log_f[-1]), factor)
        values[:, s, :, 1] = cost[:, None] * f[None, :]
    return TabularBlackbox(values, configs, space, objectives=OBJECTIVES, fidelity_name="epoch",
                           fidelity_values=np.arange(1, int(max_fidelity) + 1), elapsed_time_attr="time",
                           name=name, optimum={"loss": float(final.min())})
