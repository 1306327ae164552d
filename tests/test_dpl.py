"""The learning-curve surrogate interface (tunebench.models.curves) and the DPL power-law ensemble
(tunebench.models.dpl): context capping, the Gaussian prediction's consistency, backprop against
finite differences, extrapolation of synthetic power-law curves, determinism and the warm-start
schedule's resume."""

from __future__ import annotations

import numpy as np
import pytest

from tunebench.models.curves import (
    CurvePrediction,
    GaussianCurvePrediction,
    ValueScaling,
    cap_context,
    scale_fidelity,
)
from tunebench.models.dpl import DPLEnsemble

D = 3
MAX_T = 40


def power_law_task(seed: int, n_configs: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Configs (n, D) in the unit cube and their curves (n, MAX_T) at t = epoch / MAX_T: power
    laws whose parameters are smooth functions of the config."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_configs, D))
    alpha = 0.1 + 0.5 * X[:, 0]
    beta = 0.05 + 0.1 * X[:, 1]
    gamma = 0.3 + 0.4 * X[:, 2]
    t = np.arange(1, MAX_T + 1) / MAX_T
    Y = alpha[:, None] + beta[:, None] * (t[None, :] ** -gamma[:, None] - 1.0) / 2.0
    return X, Y


def observed(X: np.ndarray, Y: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, ...]:
    """The first ``lengths[i]`` points of each curve, as rows (X, t, y, curve)."""
    rows = [(i, j) for i in range(len(X)) for j in range(lengths[i])]
    i, j = np.array(rows).T
    return X[i], (j + 1) / MAX_T, Y[i, j], i


# -- curves.py -----------------------------------------------------------------------------------


def test_cap_context_keeps_every_last_point_then_log_spaced_earlier_ones() -> None:
    curve = np.repeat([0, 1, 2], [10, 5, 1])
    t = np.concatenate([np.arange(1, 11), np.arange(1, 6), [1]]) / 10.0
    assert cap_context(curve, t, 16).tolist() == list(range(16))  # within the budget: everything
    keep = cap_context(curve, t, 8)
    assert len(keep) == 8 and keep.tolist() == sorted(keep.tolist())
    # the last points (indices 9, 14, 15), then 1 before (8, 13), 2 before (7, 12), then 4 before (5 of curve 0)
    assert set(keep.tolist()) == {9, 14, 15, 8, 13, 7, 12, 5}
    # fewer points than curves: the last point of each curve stays
    assert set(cap_context(curve, t, 2).tolist()) == {9, 14, 15}


def test_cap_context_orders_points_by_fidelity_within_a_curve() -> None:
    curve = np.array([0, 0, 0, 0])
    t = np.array([0.4, 0.1, 0.3, 0.2])  # arrival order differs from fidelity order
    assert cap_context(curve, t, 2).tolist() == [0, 2]  # the highest fidelity and the one just below


def test_value_scaling_and_fidelity_scaling() -> None:
    s = ValueScaling.fit(np.array([3.0, 1.0, np.inf, 2.0]))
    assert (s.low, s.high) == (1.0, 3.0)
    assert s.transform(np.array([1.0, 3.0])).tolist() == [0.0, 1.0]
    assert s.to_raw(s.transform(np.array([2.5])))[0] == pytest.approx(2.5)
    assert ValueScaling.fit(np.array([5.0, 5.0])).span == 1.0
    assert scale_fidelity(np.array([0.0, 13.5, 27.0, 40.0]), 27).tolist() == [1e-6, 0.5, 1.0, 1.0]


def test_gaussian_prediction_is_consistent() -> None:
    p = GaussianCurvePrediction(mean=np.array([0.2, 0.5]), std=np.array([0.1, 0.3]))
    assert isinstance(p, CurvePrediction)
    assert p.prob_below(p.mean) == pytest.approx([0.5, 0.5])
    assert np.exp(p.log_prob_below(0.4)) == pytest.approx(p.prob_below(0.4))
    grid = np.linspace(-3.0, 4.0, 20001)
    dens = np.exp([p.log_pdf(np.array([g, g])) for g in grid])  # (grid, 2)
    assert np.trapezoid(dens, grid, axis=0) == pytest.approx([1.0, 1.0], abs=1e-6)
    # the CDF's slope is the density
    h = 1e-5
    slope = (p.prob_below(0.3 + h) - p.prob_below(0.3 - h)) / (2 * h)
    assert slope == pytest.approx(np.exp(p.log_pdf(np.array([0.3, 0.3]))), rel=1e-4)


# -- dpl.py --------------------------------------------------------------------------------------


def test_backprop_matches_finite_differences() -> None:
    model = DPLEnsemble(D, n_members=2, hidden=6, n_layers=2, seed=3)
    params = model._init_params()
    rng = np.random.default_rng(0)
    Z0 = model._inputs(rng.random((5, D)))
    log_t = np.log(rng.uniform(0.05, 1.0, 5))
    w = rng.standard_normal((2, 5))

    def loss(p: list[np.ndarray]) -> float:
        return float((model._forward(p, Z0, log_t, keep=False)[0] * w).sum())

    _, acts = model._forward(params, Z0, log_t, keep=True)
    grads = model._grads(params, acts, w, log_t)
    for k, p in enumerate(params):
        for idx in [tuple(rng.integers(0, s) for s in p.shape) for _ in range(3)]:
            up = [q.copy() for q in params]
            down = [q.copy() for q in params]
            up[k][idx] += 1e-6
            down[k][idx] -= 1e-6
            assert (loss(up) - loss(down)) / 2e-6 == pytest.approx(grads[k][idx], rel=1e-4, abs=1e-8)


def test_extrapolates_synthetic_power_laws() -> None:
    X, Y = power_law_task(0)
    rng = np.random.default_rng(1)
    lengths = rng.integers(2, 12, len(X))
    lengths[:10] = MAX_T  # a few curves observed to the end
    model = DPLEnsemble(D, seed=0)
    model.fit(*observed(X, Y, lengths))
    partial = np.arange(10, len(X))
    final = Y[partial, -1]
    pred = model.predict(X[partial], 1.0)
    err = np.abs(pred.mean - final).mean()
    last_seen = np.abs(Y[partial, lengths[partial] - 1] - final).mean()  # "the curve stays where it is"
    assert err < 0.5 * last_seen
    assert err < 0.35 * final.std()  # (0.25 here)
    # calibrated enough: most held-out final values within 3 predictive standard deviations
    assert np.mean(np.abs(pred.mean - final) <= 3 * pred.std) >= 0.8
    # every member's curve decreases in t (beta, gamma > 0)
    abg = model.power_law_parameters(X)
    assert (abg[..., 1] > 0).all() and (abg[..., 2] > 0).all()
    members = model.member_predictions(X[:5], np.full(5, 0.2))
    assert (members > model.member_predictions(X[:5], np.full(5, 0.9))).all()


def test_prediction_combines_the_members_spread_and_the_fit_noise() -> None:
    X, Y = power_law_task(2, n_configs=20)
    model = DPLEnsemble(D, n_members=4, epochs=60, seed=5)
    model.fit(*observed(X, Y, np.full(20, 6)))
    members = model.member_predictions(X, 0.5)
    pred = model.predict(X, 0.5)
    assert pred.mean == pytest.approx(members.mean(axis=0))
    assert (pred.std ** 2 >= members.var(axis=0) - 1e-12).all() and (pred.std >= model.min_std).all()
    assert pred.prob_below(pred.mean) == pytest.approx(np.full(20, 0.5))
    latent = model.predict(X, 0.5, noise=False)  # the curve itself: the members' spread alone
    assert latent.mean == pytest.approx(pred.mean)
    assert latent.std == pytest.approx(np.maximum(members.std(axis=0), model.min_std))
    assert (latent.std <= pred.std).all() and (latent.std < pred.std).any()


def test_deterministic_given_the_seed() -> None:
    X, Y = power_law_task(3, n_configs=15)
    data = observed(X, Y, np.full(15, 5))

    def fitted(seed: int) -> np.ndarray:
        model = DPLEnsemble(D, n_members=3, epochs=30, seed=seed)
        model.fit(*data)
        return model.member_predictions(X, 1.0)

    assert np.array_equal(fitted(7), fitted(7))
    assert not np.allclose(fitted(7), fitted(8))


def test_warm_fits_start_from_the_anchor_and_a_loaded_state_rebuilds_it() -> None:
    X, Y = power_law_task(4, n_configs=30)
    lengths = np.full(30, 4)
    first = observed(X, Y, lengths)
    more = observed(X, Y, lengths + 1)
    model = DPLEnsemble(D, n_members=3, epochs=40, refine_epochs=5, refit_factor=2.0, seed=1)
    model.fit(*first, n_total=100)
    assert model.anchor_size == 100 and not model.needs_full_fit(150) and model.needs_full_fit(200)
    model.fit(*more, n_total=150)  # warm: from the anchor's weights
    assert model.anchor_size == 100
    state = model.state_dict()
    assert state == {"anchor_size": 100}
    loaded = DPLEnsemble(D, n_members=3, epochs=40, refine_epochs=5, refit_factor=2.0, seed=1)
    loaded.load_state_dict(state, *first)
    loaded.fit(*more, n_total=150)
    assert np.array_equal(loaded.member_predictions(X, 1.0), model.member_predictions(X, 1.0))
    # a warm fit is not a full fit: it differs from training from scratch on the same data
    scratch = DPLEnsemble(D, n_members=3, epochs=40, refine_epochs=5, refit_factor=2.0, seed=1)
    scratch.fit(*more, n_total=150)
    assert not np.allclose(scratch.member_predictions(X, 1.0), model.member_predictions(X, 1.0))
    model.fit(*more, n_total=200)  # a full fit: a new anchor
    assert model.anchor_size == 200


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="n_members"):
        DPLEnsemble(3, n_members=0)
    with pytest.raises(ValueError, match="refit_factor"):
        DPLEnsemble(3, refit_factor=1.0)
    model = DPLEnsemble(3)
    with pytest.raises(RuntimeError, match="fit must be called"):
        model.predict(np.zeros((1, 3)), 0.5)
    with pytest.raises(ValueError, match=r"X \(n, 3\)"):
        model.fit(np.zeros((2, 4)), np.ones(2), np.ones(2))
