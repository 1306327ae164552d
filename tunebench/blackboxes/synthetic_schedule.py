"""A path-dependent synthetic training where learning-rate schedules matter (L2), for PBT.

:class:`ScheduleBlackbox` simulates a noisy optimizer epoch by epoch. Its state is the excess loss
``d`` over a floor (1 at the start); each epoch applies the hyperparameters *in force at that
epoch*:

* the best learning rate of epoch ``t`` falls log-linearly from ``LR_START`` (0.3) at the first
  epoch to ``LR_END`` (0.003) at the last;
* an epoch removes a share ``K * exp(-off^2 / (2 WIDTH^2)) * exp(-4 (momentum - 0.8)^2)`` of
  ``d``, ``off`` the distance in e-folds between its rate and the best one: the best momentum is
  0.8, and a rate makes progress only within about ``WIDTH`` e-folds of the best one;
* a rate more than ``DIVERGE`` e-folds above the best one makes ``d`` grow instead (capped);
* a log-normal factor per epoch (its config, the seed and the epoch pick it) makes it noisy.

So every constant rate is good for a part of the training only: a decaying schedule beats
every constant rate (the best constant ends with about 10 times the excess loss of a step
decay, see :func:`step_schedule`). The reported ``loss`` at epoch ``t`` is ``FLOOR + d`` after
``t`` epochs; ``time`` is the cumulative training time, ``1 + momentum`` seconds an epoch (a
momentum buffer costs a little).

:meth:`ScheduleBlackbox.evaluate` gives the curve of one configuration kept for the whole
training (a stateless blackbox, as the contract suite wants); :meth:`ScheduleBlackbox.evaluate_schedule`
gives the curve of a schedule of configurations, what the simulator replays for a trial whose
configuration changed (PBT's explore, after an exploit: see
:class:`~tunebench.blackboxes.base.PathDependentBlackbox`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.errors import UserError
from tunebench.space import loguniform, uniform
from tunebench.types import Config

__all__ = ["ScheduleBlackbox", "schedule_blackbox", "step_schedule"]

#: the floor of the loss (no schedule gets below it)
FLOOR = 0.05
#: excess loss at the start, and its cap once diverged
D0, D_MAX = 1.0, 2.0
#: the best learning rate of the first and of the last epoch (log-linear in between)
LR_START, LR_END = 0.3, 0.003
#: the share of the excess loss an epoch at the best rate and momentum removes; the width (in
#: e-folds of the rate) of the window where an epoch makes progress; a rate more than DIVERGE
#: e-folds above the best one makes the loss grow by GROWTH per e-fold beyond
K, WIDTH, DIVERGE, GROWTH = 0.12, 0.8, 1.5, 0.1
_NAMES = ("lr", "momentum")


class ScheduleBlackbox(Blackbox):
    """The path-dependent training of the module docstring over ``epoch = 1..max_fidelity``.

    Args:
        max_fidelity: number of epochs.
        noise: standard deviation of the log-normal factor on the noise ball (0: deterministic).
        n_seeds: number of seeds (noise realizations).
    """

    def __init__(self, max_fidelity: int = 50, noise: float = 0.05, n_seeds: int = 1) -> None:
        if isinstance(max_fidelity, bool) or not isinstance(max_fidelity, (int, np.integer)) or max_fidelity < 1:
            raise UserError(f"pbt-schedule: max_fidelity must be an integer >= 1, got {max_fidelity!r}")
        if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
            raise UserError(f"pbt-schedule: noise must be a finite number >= 0, got {noise!r}")
        if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
            raise UserError(f"pbt-schedule: n_seeds must be an integer >= 1, got {n_seeds!r}")
        self.name = "pbt-schedule"
        self.config_space: dict[str, Any] = {"lr": loguniform(1e-3, 1.0), "momentum": uniform(0.0, 0.95)}
        self.fidelity_name = "epoch"
        self.fidelity_values = np.arange(1, int(max_fidelity) + 1)
        self.objectives = ("loss", "time")
        self.elapsed_time_attr = "time"
        self.n_seeds = int(n_seeds)
        self.noise = float(noise)
        self.optimum = None  # FLOOR is approached, never reached

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        """Each configuration kept for the whole training (a one-segment schedule), vectorized."""
        n = len(configs)
        try:
            X = np.array([[c[k] for k in _NAMES] for c in configs], dtype=np.float64).reshape(n, len(_NAMES))
        except (KeyError, TypeError, ValueError):
            for c in configs:
                self.check_config(c)
            raise
        T = len(self.fidelity_values)
        steps = np.broadcast_to(X[:, None, :], (n, T, len(_NAMES)))
        return self._simulate(steps, _hashes(X, seed), seed)[:, fidelity_index, :]

    def evaluate_schedule(self, segments: Sequence[tuple[Config, int]],
                          fidelities: Sequence[float] | np.ndarray | None = None, seed: int = 0,
                          check: bool = True) -> np.ndarray:
        """The curve of one training whose configuration changes: ``segments`` are
        ``(config, first fidelity index)`` pairs, the first starting at index 0, sorted by index;
        ``config`` trains the epochs that lead to the fidelities from its index up to the next
        segment's. Called by the simulator for a trial whose configuration changed (PBT). Returns
        an array ``(n_fidelities, n_objectives)`` at ``fidelities`` (default: all); a single
        segment gives :meth:`evaluate`'s curve of its config exactly."""
        if not segments or segments[0][1] != 0:
            raise ValueError(f"{self.name}: a schedule starts with a segment at fidelity index 0, got {segments!r}")
        starts = [int(i) for _, i in segments]
        if any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            raise ValueError(f"{self.name}: the segments of a schedule must have increasing indices, got {starts}")
        if check:
            if not 0 <= seed < self.n_seeds:
                raise UserError(f"{self.name}: seed {seed} is out of range; it has {self.n_seeds} seed(s)")
            for config, _ in segments:
                self.check_config(config)
        T = len(self.fidelity_values)
        X = np.array([[c[k] for k in _NAMES] for c, _ in segments], dtype=np.float64)
        which = np.searchsorted(np.asarray(starts), np.arange(T), side="right") - 1  # segment of each epoch
        hashes = np.asarray(_hashes(X, seed))[which]
        out = self._simulate(X[which][None], [hashes], seed)[0]
        index = np.arange(T) if fidelities is None else (
            self.fidelity_index(fidelities) if check else np.searchsorted(self.fidelity_values, np.asarray(fidelities)))
        curve: np.ndarray = out[index]
        return curve

    def _simulate(self, steps: np.ndarray, hashes: Any, seed: int) -> np.ndarray:
        """The training of ``steps`` ``(n, T, 2)`` (lr, momentum per epoch) with the noise of
        ``hashes`` (per config ``(n,)`` or per config and epoch ``(n, T)``): ``(n, T, 2)`` of
        loss and cumulative time."""
        n, T, _ = steps.shape
        lr, mom = steps[:, :, 0], steps[:, :, 1]
        # how far (in e-folds) each epoch's rate is from the best rate of that epoch
        off = np.log(lr) - (math.log(LR_START) + np.linspace(0.0, 1.0, T) * math.log(LR_END / LR_START))
        progress = K * np.exp(-0.5 * (off / WIDTH) ** 2 - 4.0 * (mom - 0.8) ** 2)
        factor = np.where(off > DIVERGE, 1.0 + GROWTH * (off - DIVERGE), 1.0 - progress)
        if self.noise:
            factor = factor * _noise(np.asarray(hashes, dtype=np.int64), T, seed, self.noise)
        out = np.empty((n, T, 2))
        d = np.full(n, D0)
        for t in range(T):
            d = np.minimum(d * factor[:, t], D_MAX)
            out[:, t, 0] = d
        out[:, :, 0] += FLOOR
        np.cumsum(1.0 + mom, axis=1, out=out[:, :, 1])
        return out


def _hashes(X: np.ndarray, seed: int) -> list[int]:
    """A 31-bit hash of each row's float64 bits and the seed (stable across processes)."""
    data = (np.asarray(X, dtype=np.float64) + 0.0).tobytes()
    width = 8 * X.shape[1]
    start = zlib.crc32(int(seed).to_bytes(8, "little"))
    return [zlib.crc32(data[i:i + width], start) & 0x7FFFFFFF for i in range(0, len(data), width)]


def _noise(hashes: np.ndarray, T: int, seed: int, noise: float) -> np.ndarray:
    """Log-normal factors ``exp(noise z - noise^2 / 2)`` per (config hash, epoch): ``(n, T)``.
    ``hashes`` is ``(n,)`` (one config a row) or ``(n, T)`` (the config in force at each epoch);
    an epoch's factor depends on its config, the seed and the epoch only."""
    table = np.random.default_rng([seed, 0x5C4ED]).standard_normal((1024, T))
    h = np.broadcast_to(hashes.reshape(len(hashes), -1), (len(hashes), T))
    z = table[h % 1024, np.arange(T)[None, :]] * np.where((h >> 10) % 2 == 0, 1.0, -1.0)
    factor: np.ndarray = np.exp(noise * z - 0.5 * noise * noise)
    return factor


def step_schedule(config: Config, epochs: Sequence[int], factor: float = 0.3) -> list[tuple[Config, int]]:
    """A step-decay schedule: ``config``, its ``lr`` multiplied by ``factor`` at each epoch of
    ``epochs`` (1-based: the epoch from which the smaller rate trains), as the ``segments`` of
    :meth:`ScheduleBlackbox.evaluate_schedule`."""
    segments = [(dict(config), 0)]
    lr = float(config["lr"])
    for epoch in sorted(epochs):
        lr *= factor
        segments.append(({**config, "lr": lr}, int(epoch) - 1))
    return segments


def schedule_blackbox(max_fidelity: int = 50, noise: float = 0.05, n_seeds: int = 1) -> ScheduleBlackbox:
    """The ``pbt-schedule`` blackbox (see :class:`ScheduleBlackbox`)."""
    return ScheduleBlackbox(max_fidelity=max_fidelity, noise=noise, n_seeds=n_seeds)
