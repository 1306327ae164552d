"""An ensemble of deep power laws (DPL) over learning curves, in numpy (L1 models).

After Kadra, Janowski, Wistuba, Grabocka: "Scaling Laws for Hyperparameter Optimization",
NeurIPS 2023 (DPL).  Each member is a small MLP mapping an encoded config ``x`` to the three
parameters of a power law in the fidelity ``t`` in (0, 1]::

    y(x, t) = alpha(x) + beta(x) * t ** (-gamma(x)),   beta = softplus(b), gamma = softplus(c)

so every predicted curve decreases monotonically in ``t`` (values are losses: lower is better)
towards its asymptote ``alpha + beta`` reached at ``t = 1`` and ``alpha`` beyond.  (The paper squashes
``beta`` and ``gamma`` with a GLU, ``z * sigmoid(z)``; softplus keeps them strictly positive.  The
paper also feeds the curve observed so far through a small CNN; here the config alone sets the
curve, so a member is a plain MLP.)

Members differ only by the seed of their initial weights and minibatch order; each is trained on
every point given with the L1 loss and Adam.  The prediction at ``(x, t)`` is Gaussian
(:class:`~tunebench.models.curves.GaussianCurvePrediction`): the mean of the members, and a variance
that is the members' variance plus the noise of the fit (the ensemble mean's squared training
error, scaled from the mean absolute error: ``(pi / 2) * MAE**2``), with a floor of ``min_std**2``;
with ``noise=False`` the members' variance alone (the uncertainty about the curve, not about an
observation of it: what an acquisition weighs, as in DPL).

Training schedule (:meth:`DPLEnsemble.fit`; the paper's: 250 epochs from scratch, then 20 per
new observation, from the previous weights):

* a *full fit* trains every member from its initial weights for ``epochs`` passes over the data
  (minibatches of ``batch_size``); it runs at the first fit and whenever the scheduler's count of
  observations ``n_total`` reached ``refit_factor`` times that of the last full fit (the *anchor*)
  or ``refit_every`` more;
* in between, a *warm fit* starts from the anchor's weights (not from the last warm fit's, so that
  the model after any fit depends only on the anchor's data and the current data: a scheduler
  resumes by redoing the anchor's fit, :meth:`DPLEnsemble.load_state_dict`) and trains
  ``refine_epochs`` passes over the current data with a fresh Adam.

All members train at once (their weights stacked on a leading axis), so a pass costs a few numpy
calls per minibatch.  Deterministic given ``seed`` and the sequence of fits.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from tunebench.models.curves import GaussianCurvePrediction

logger = logging.getLogger(__name__)

__all__ = ["DPLEnsemble"]

_LEAK = 0.01  #: slope of the leaky ReLU below 0
_MAE_TO_VAR = math.pi / 2  #: variance of a zero-mean Gaussian over its squared mean absolute value


def _softplus(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.logaddexp(0.0, z)
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


class DPLEnsemble:
    """Ensemble of power-law MLPs (see the module docstring); implements
    :class:`~tunebench.models.curves.CurveSurrogate`.

    Args:
        n_inputs: dimension of the encoded configs.
        n_members: ensemble size (the paper's 5).
        hidden: units per hidden layer.
        n_layers: hidden layers (>= 1).
        epochs: passes of a full fit.
        refine_epochs: passes of a warm fit.
        batch_size: minibatch size.
        learning_rate: Adam's step size.
        refit_factor: a full fit when ``n_total >= refit_factor * anchor``.
        refit_every: also a full fit when ``n_total >= anchor + refit_every`` (``None``: never).
        min_std: floor of the predictive standard deviation (normalized values).
        seed: seeds the members' initial weights and minibatch orders.

    Raises:
        ValueError: an invalid argument (the message names it).
    """

    def __init__(
        self,
        n_inputs: int,
        *,
        n_members: int = 5,
        hidden: int = 32,
        n_layers: int = 2,
        epochs: int = 250,
        refine_epochs: int = 20,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        refit_factor: float = 1.5,
        refit_every: int | None = None,
        min_std: float = 1e-3,
        seed: int = 0,
    ) -> None:
        for name, value, low in (("n_inputs", n_inputs, 1), ("n_members", n_members, 1), ("hidden", hidden, 1),
                                 ("n_layers", n_layers, 1), ("epochs", epochs, 1), ("refine_epochs", refine_epochs, 0),
                                 ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        if not refit_factor > 1:
            raise ValueError(f"refit_factor must be > 1, got {refit_factor!r}")
        if refit_every is not None and (isinstance(refit_every, bool) or not isinstance(refit_every, int)
                                        or refit_every < 1):
            raise ValueError(f"refit_every must be an integer >= 1 or None, got {refit_every!r}")
        if not min_std > 0:
            raise ValueError(f"min_std must be > 0, got {min_std!r}")
        self.n_inputs = int(n_inputs)
        self.n_members = int(n_members)
        self.hidden = int(hidden)
        self.n_layers = int(n_layers)
        self.epochs = int(epochs)
        self.refine_epochs = int(refine_epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.refit_factor = float(refit_factor)
        self.refit_every = refit_every
        self.min_std = float(min_std)
        self.seed = int(seed)
        self._anchor_size: int | None = None
        self._anchor: list[np.ndarray] | None = None  #: weights after the last full fit
        self._params: list[np.ndarray] | None = None  #: current weights
        self._noise_var = 0.0

    # -- the network ---------------------------------------------------------------------------

    def _init_params(self) -> list[np.ndarray]:
        """Per layer ``W`` (m, in, out) and ``b`` (m, 1, out): He-initialized hidden layers, a small
        output layer (every member starts near ``alpha = 0``, ``beta = gamma = log 2``)."""
        m, h = self.n_members, self.hidden
        params: list[np.ndarray] = []
        sizes = [self.n_inputs] + [h] * self.n_layers + [3]
        for k in range(m):
            rng = np.random.default_rng([self.seed, k])
            for j, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
                scale = math.sqrt(2.0 / a) if j < self.n_layers else 0.1 / math.sqrt(a)
                W = rng.standard_normal((a, b)) * scale
                if k == 0:
                    params.append(np.empty((m, a, b)))
                    params.append(np.zeros((m, 1, b)))
                params[2 * j][k] = W
        return params

    @staticmethod
    def _inputs(X: np.ndarray) -> np.ndarray:
        return 2.0 * np.asarray(X, dtype=float) - 1.0  # unit cube -> [-1, 1]

    def _forward(self, params: list[np.ndarray], Z0: np.ndarray, log_t: np.ndarray,
                 keep: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """Predictions (m, q) of every member, and (if ``keep``) the activations for backprop."""
        acts: list[np.ndarray] = []
        A = np.broadcast_to(Z0, (self.n_members, *Z0.shape))
        n_hidden = self.n_layers
        for j in range(n_hidden):
            Z = A @ params[2 * j] + params[2 * j + 1]
            if keep:
                acts.append(A)
                acts.append(Z)
            A = np.where(Z > 0, Z, _LEAK * Z)
        Out = A @ params[2 * n_hidden] + params[2 * n_hidden + 1]
        alpha, b, c = Out[..., 0], Out[..., 1], Out[..., 2]
        beta, gamma = _softplus(b), _softplus(c)
        P = np.exp(-gamma * log_t)  # t ** -gamma
        y = alpha + beta * P
        if keep:
            acts.extend([A, b, c, beta, gamma, P])
        return y, acts

    def _grads(self, params: list[np.ndarray], acts: list[np.ndarray], dy: np.ndarray,
               log_t: np.ndarray) -> list[np.ndarray]:
        """Backprop of ``dL/dy`` (m, q) through :meth:`_forward`."""
        n_hidden = self.n_layers
        A, b, c, beta, gamma, P = acts[2 * n_hidden:]
        dO = np.empty((*dy.shape, 3))
        dO[..., 0] = dy
        dO[..., 1] = dy * P * _sigmoid(b)
        dO[..., 2] = -dy * beta * P * log_t * _sigmoid(c)
        grads: list[np.ndarray] = [np.empty(0)] * len(params)
        grads[2 * n_hidden] = A.transpose(0, 2, 1) @ dO
        grads[2 * n_hidden + 1] = dO.sum(axis=1, keepdims=True)
        dA = dO @ params[2 * n_hidden].transpose(0, 2, 1)
        for j in range(n_hidden - 1, -1, -1):
            A_in, Z = acts[2 * j], acts[2 * j + 1]
            dZ = np.where(Z > 0, dA, _LEAK * dA)
            grads[2 * j] = A_in.transpose(0, 2, 1) @ dZ
            grads[2 * j + 1] = dZ.sum(axis=1, keepdims=True)
            if j > 0:
                dA = dZ @ params[2 * j].transpose(0, 2, 1)
        return grads

    def _train(self, params: list[np.ndarray], Z0: np.ndarray, log_t: np.ndarray, y: np.ndarray,
               epochs: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Adam on the L1 loss (mean over a minibatch, per member), ``epochs`` passes."""
        params = [p.copy() for p in params]
        mom = [np.zeros_like(p) for p in params]
        vel = [np.zeros_like(p) for p in params]
        b1, b2, eps, lr = 0.9, 0.999, 1e-8, self.learning_rate
        n = len(y)
        bs = min(self.batch_size, n)
        step = 0
        for _ in range(epochs):
            perm = rng.permutation(n)
            for s in range(0, n, bs):
                idx = perm[s:s + bs]
                lt = log_t[idx]
                pred, acts = self._forward(params, Z0[idx], lt, keep=True)
                dy = np.sign(pred - y[idx]) / len(idx)
                grads = self._grads(params, acts, dy, lt)
                step += 1
                c1 = 1.0 - b1 ** step
                c2 = 1.0 - b2 ** step
                for p, g, m_, v_ in zip(params, grads, mom, vel, strict=True):
                    m_ *= b1
                    m_ += (1.0 - b1) * g
                    v_ *= b2
                    v_ += (1.0 - b2) * g * g
                    p -= lr * (m_ / c1) / (np.sqrt(v_ / c2) + eps)
        return params

    # -- the surrogate -------------------------------------------------------------------------

    @property
    def anchor_size(self) -> int | None:
        """``n_total`` of the last full fit (``None``: not fitted yet)."""
        return self._anchor_size

    def needs_full_fit(self, n_total: int) -> bool:
        """Whether :meth:`fit` with this ``n_total`` trains from scratch (see the schedule)."""
        a = self._anchor_size
        if a is None or self._anchor is None:
            return True
        if n_total >= self.refit_factor * a:
            return True
        return self.refit_every is not None and n_total >= a + self.refit_every

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray | None = None, *,
            n_total: int | None = None) -> None:
        """Train on the points ``(X, t) -> y`` (a full or a warm fit, by the schedule of the module
        docstring; ``n_total`` defaults to the number of points).  ``curve`` is not used (the
        power laws read the config alone).

        Raises:
            ValueError: no points, or arrays of different lengths or a wrong width.
        """
        X = np.asarray(X, dtype=float)
        t = np.asarray(t, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_inputs or len(X) == 0 or t.shape != (len(X),) or y.shape != t.shape:
            raise ValueError(f"fit needs X (n, {self.n_inputs}), t (n,), y (n,) with n >= 1; got "
                             f"{X.shape}, {t.shape}, {y.shape}")
        n_total = len(X) if n_total is None else int(n_total)
        Z0 = self._inputs(X)
        log_t = np.log(np.clip(t, 1e-6, None))
        rng = np.random.default_rng([self.seed, n_total, 1])
        if self.needs_full_fit(n_total):
            self._anchor = self._train(self._init_params(), Z0, log_t, y, self.epochs, rng)
            self._anchor_size = n_total
            self._params = self._anchor
            logger.debug("DPL full fit on %d points (n_total %d)", len(y), n_total)
        else:
            assert self._anchor is not None
            self._params = self._train(self._anchor, Z0, log_t, y, self.refine_epochs, rng)
        pred, _ = self._forward(self._params, Z0, log_t, keep=False)
        mae = float(np.mean(np.abs(pred.mean(axis=0) - y)))
        self._noise_var = _MAE_TO_VAR * mae * mae

    def member_predictions(self, X: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(n_members, q): every member's predicted value of each row of ``X`` at fidelity ``t``.

        Raises:
            RuntimeError: not fitted yet.
        """
        if self._params is None:
            raise RuntimeError("DPLEnsemble.fit must be called before predictions")
        X = np.asarray(X, dtype=float)
        log_t = np.log(np.clip(np.broadcast_to(np.asarray(t, dtype=float), (len(X),)), 1e-6, None))
        pred, _ = self._forward(self._params, self._inputs(X), log_t, keep=False)
        return pred

    def predict(self, X: np.ndarray, t: np.ndarray | float, *, noise: bool = True) -> GaussianCurvePrediction:
        """The Gaussian prediction of each row of ``X`` at fidelity ``t`` (an array or one value):
        of an observed value (``noise``: the members' spread plus the fit's noise), or of the
        curve itself (the members' spread alone, as DPL's acquisition uses it).

        Raises:
            RuntimeError: not fitted yet.
        """
        pred = self.member_predictions(X, np.asarray(t, dtype=float))
        mean = pred.mean(axis=0)
        var = pred.var(axis=0) + (self._noise_var if noise else 0.0)
        std = np.sqrt(np.maximum(var, self.min_std ** 2))
        return GaussianCurvePrediction(mean=mean, std=std)

    def power_law_parameters(self, X: np.ndarray) -> np.ndarray:
        """(n_members, q, 3): ``(alpha, beta, gamma)`` of every member for each row of ``X``.

        Raises:
            RuntimeError: not fitted yet.
        """
        if self._params is None:
            raise RuntimeError("DPLEnsemble.fit must be called before predictions")
        A = np.broadcast_to(self._inputs(X), (self.n_members, len(X), self.n_inputs))
        for j in range(self.n_layers):
            Z = A @ self._params[2 * j] + self._params[2 * j + 1]
            A = np.where(Z > 0, Z, _LEAK * Z)
        Out = A @ self._params[2 * self.n_layers] + self._params[2 * self.n_layers + 1]
        out: np.ndarray = np.stack([Out[..., 0], _softplus(Out[..., 1]), _softplus(Out[..., 2])], axis=-1)
        return out

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: ``{"anchor_size": n_total of the last full fit or None}`` (no weights:
        they are rebuilt from the anchor's data)."""
        return {"anchor_size": self._anchor_size}

    def load_state_dict(self, state: dict[str, Any], X: np.ndarray, t: np.ndarray, y: np.ndarray,
                        curve: np.ndarray | None = None) -> None:
        """Restore a :meth:`state_dict`: redo the full fit of the anchor on its data (the data the
        scheduler gave :meth:`fit` when ``n_total`` was ``state["anchor_size"]``)."""
        self._anchor = self._params = None
        self._anchor_size = None
        self._noise_var = 0.0
        n = state.get("anchor_size")
        if n is not None:
            self.fit(X, t, y, curve, n_total=int(n))
