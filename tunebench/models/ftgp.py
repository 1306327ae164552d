"""The freeze-thaw GP as a learning-curve surrogate (L1 models).

:class:`FreezeThawGPSurrogate` implements :class:`~tunebench.models.curves.CurveSurrogate` with
our :class:`~tunebench.models.gp.GaussianProcess` over ``(encoded config, fidelity t)`` and its
freeze-thaw kernel (``decay_dim``: a Matern 5/2 over the config plus, within one curve, the
exponential-decay kernel ``beta^alpha / (t + t' + beta)^alpha`` over the fidelity; Swersky, Snoek,
Adams 2014).  A paused trial's prediction extrapolates its own curve towards its config's
asymptote; a new config's prediction is its asymptote, correlated with the observed ones.

Schedule: the hyperparameters are fitted (MAP, warm-started) whenever the scheduler's observations
grew ``refit_factor`` times since the last fit; in between the GP is conditioned on the new data
with the hyperparameters kept.  The state is the hyperparameters and the size of the last fit
(JSON, no data): a loaded surrogate repeats the same fits.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tunebench.models.curves import GaussianCurvePrediction
from tunebench.models.gp import GaussianProcess

logger = logging.getLogger(__name__)

__all__ = ["FreezeThawGPSurrogate"]


class FreezeThawGPSurrogate:
    """A GP with the freeze-thaw kernel as a :class:`~tunebench.models.curves.CurveSurrogate`
    (see the module docstring).

    Args:
        dim: encoded config columns (the fidelity is one more).
        refit_factor: refit the hyperparameters when the observations grew this many times
            since the last fit (>= 1).

    Raises:
        ValueError: ``dim < 1`` or ``refit_factor < 1``.
    """

    def __init__(self, dim: int, *, refit_factor: float = 1.5) -> None:
        if not refit_factor >= 1.0:
            raise ValueError(f"refit_factor must be >= 1, got {refit_factor!r}")
        self.gp = GaussianProcess(dim + 1, decay_dim=dim)
        self.refit_factor = float(refit_factor)
        self._anchor: int | None = None

    @property
    def anchor_size(self) -> int | None:
        """The observations of the last hyperparameter fit (``None``: not fitted yet)."""
        return self._anchor

    @staticmethod
    def _inputs(X: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        out = np.empty((X.shape[0], X.shape[1] + 1))
        out[:, :-1] = X
        out[:, -1] = t
        return out

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None:
        """Refit the hyperparameters on schedule, else condition on the data with them kept
        (``curve`` is not needed: a curve is the points of one config)."""
        Q = self._inputs(X, t)
        if self._anchor is None or n_total >= self.refit_factor * self._anchor:
            self.gp.fit(Q, y)
            self._anchor = int(n_total)
            logger.debug("freeze-thaw GP refit at %d observations: decay %s", n_total, self.gp.decay_params)
        else:
            self.gp.set_data(Q, y)

    def predict(self, X: np.ndarray, t: np.ndarray | float, *, noise: bool = True) -> GaussianCurvePrediction:
        """The GP's Gaussian predictive at ``(X, t)``, of an observation (``noise``) or of the curve."""
        mean, var = self.gp.predict(self._inputs(X, t), include_noise=noise)
        return GaussianCurvePrediction(mean, np.sqrt(np.maximum(var, 1e-300)))

    def state_dict(self) -> dict[str, Any]:
        """The hyperparameters and the size of the last fit (JSON)."""
        return {"theta": [float(v) for v in self.gp.theta], "anchor_size": self._anchor}

    def load_state_dict(self, state: dict[str, Any], X: np.ndarray, t: np.ndarray, y: np.ndarray,
                        curve: np.ndarray) -> None:
        """Restore :meth:`state_dict` (the data is not needed: the next :meth:`fit` conditions)."""
        self.gp.set_theta(state["theta"])
        anchor = state.get("anchor_size")
        self._anchor = None if anchor is None else int(anchor)
