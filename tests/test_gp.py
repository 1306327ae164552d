"""The Gaussian process of tunebench.models.gp: against scikit-learn, analytic gradients against
finite differences, incremental Cholesky against a full factorization, fantasies, state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from tunebench.models.gp import GaussianProcess, matern52


def data(n: int, d: int, seed: int = 0, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    y = np.sin(6.0 * X[:, 0]) + 2.0 * X[:, 1 % d] ** 2 + noise * rng.standard_normal(n) + 3.0
    return X, y


def theta_of(gp: GaussianProcess, lengthscales, signal: float, mean: float, noise: float) -> np.ndarray:
    theta = gp.default_theta.copy()
    theta[: gp.dim] = np.log(lengthscales)
    theta[gp.dim] = math.log(signal)
    theta[gp.dim + 1] = mean
    theta[gp.dim + 2] = math.log(noise)
    return theta


@pytest.mark.parametrize("d, lengthscales, signal, noise", [
    (1, [0.2], 1.0, 1e-2),
    (3, [0.3, 0.7, 1.5], 1.3, 1e-2),
    (5, [0.5, 0.1, 2.0, 0.9, 0.4], 0.6, 1e-4),
])
def test_predictions_and_likelihood_match_scikit_learn(d, lengthscales, signal, noise):
    X, y = data(40, d, seed=d)
    gp = GaussianProcess(d)
    gp.set_theta(theta_of(gp, lengthscales, signal, 0.0, noise))
    gp.set_data(X, y)
    kernel = (ConstantKernel(signal, "fixed") * Matern(lengthscales, length_scale_bounds="fixed", nu=2.5)
              + WhiteKernel(noise, "fixed"))
    sk = GaussianProcessRegressor(kernel, alpha=0.0, optimizer=None, normalize_y=True).fit(X, y)
    Xq = np.random.default_rng(7).random((25, d))
    mean, var = gp.predict(Xq, include_noise=True)  # sklearn's variance includes the white noise
    sk_mean, sk_std = sk.predict(Xq, return_std=True)
    np.testing.assert_allclose(mean, sk_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(var, sk_std**2, rtol=1e-7, atol=1e-10)
    # sklearn's likelihood is that of its normalized targets: ours is on the standardized ones
    assert gp.log_marginal_likelihood() == pytest.approx(sk.log_marginal_likelihood_value_, rel=1e-9)
    # the latent variance is the same minus the noise (in the caller's units)
    _, latent = gp.predict(Xq)
    np.testing.assert_allclose(latent, np.maximum(sk_std**2 - noise * np.std(y) ** 2, 0), rtol=1e-6, atol=1e-9)


def test_matern52_values():
    r = np.array([0.0, 0.5, 1.0, 3.0])
    expected = (1 + math.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-math.sqrt(5) * r)
    np.testing.assert_allclose(matern52(r**2), expected)


@pytest.mark.parametrize("warp_dims", [None, [0, 2]])
def test_gradient_matches_finite_differences(warp_dims):
    X, y = data(30, 3, seed=1)
    ys = (y - y.mean()) / y.std()
    gp = GaussianProcess(3, warp_dims=warp_dims)
    rng = np.random.default_rng(3)
    for _ in range(3):
        theta = np.clip(gp.default_theta + rng.normal(0, 0.5, gp.n_params), gp.bounds[:, 0], gp.bounds[:, 1])
        value, grad = gp.log_marginal_likelihood(theta, X, ys, grad=True)
        eps = 1e-6
        numeric = np.array([
            (gp.log_marginal_likelihood(theta + eps * e, X, ys) - gp.log_marginal_likelihood(theta - eps * e, X, ys))
            / (2 * eps)
            for e in np.eye(gp.n_params)
        ])
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-5)
        assert value == gp.log_marginal_likelihood(theta, X, ys)


def test_fit_raises_the_likelihood_and_finds_the_relevant_input():
    rng = np.random.default_rng(0)
    X = rng.random((60, 3))
    y = np.sin(6.0 * X[:, 0]) + 0.01 * rng.standard_normal(60)  # only the first input matters
    gp = GaussianProcess(3)
    gp.set_data(X, y)
    before = gp.log_marginal_likelihood()
    gp.fit(X, y)
    assert gp.log_marginal_likelihood() > before + 10
    ls = gp.lengthscales
    assert ls[0] < 0.5 * min(ls[1], ls[2]), ls
    Xq = rng.random((200, 3))
    mean, var = gp.predict(Xq)
    truth = np.sin(6.0 * Xq[:, 0])
    assert np.sqrt(np.mean((mean - truth) ** 2)) < 0.05
    assert np.all(var > 0)
    # a refit warm-starts from the current hyperparameters and stays at the optimum
    theta = gp.theta.copy()
    gp.fit(X, y, restart_from_default=False)
    np.testing.assert_allclose(gp.theta, theta, atol=1e-2)


def test_fit_on_a_subset_conditions_on_everything():
    X, y = data(80, 2, seed=4)
    gp = GaussianProcess(2).fit(X, y, fit_indices=np.arange(0, 80, 2))
    assert gp.n == 80
    full = GaussianProcess(2)
    full.set_theta(gp.theta)
    full.set_data(X, y)
    Xq = np.random.default_rng(0).random((10, 2))
    np.testing.assert_allclose(gp.predict(Xq)[0], full.predict(Xq)[0], rtol=1e-10)


def test_input_warping_is_fitted_and_helps_on_a_warped_function():
    rng = np.random.default_rng(2)
    X = rng.random((50, 1))
    y = np.sin(12.0 * np.sqrt(X[:, 0]))  # fast on the left, slow on the right
    plain = GaussianProcess(1).fit(X, y)
    warped = GaussianProcess(1, warp_dims=[0]).fit(X, y)
    a, b = warped.warp_params
    assert not (a[0] == pytest.approx(1.0) and b[0] == pytest.approx(1.0))
    Xq = np.linspace(0, 1, 200)[:, None]
    truth = np.sin(12.0 * np.sqrt(Xq[:, 0]))
    err_plain = np.mean((plain.predict(Xq)[0] - truth) ** 2)
    err_warped = np.mean((warped.predict(Xq)[0] - truth) ** 2)
    assert err_warped < err_plain


@pytest.mark.parametrize("warp_dims", [None, [1]])
def test_incremental_cholesky_equals_full_factorization(warp_dims):
    X, y = data(120, 3, seed=5)
    gp = GaussianProcess(3, warp_dims=warp_dims).fit(X[:40], y[:40])
    for lo, hi in [(40, 41), (41, 60), (60, 61), (61, 120)]:
        gp.add_points(X[lo:hi], y[lo:hi])
    assert gp.n == 120
    full = GaussianProcess(3, warp_dims=warp_dims)
    full.set_theta(gp.theta)
    full.set_data(X, y, y_mean=gp.y_mean, y_scale=gp.y_scale)
    np.testing.assert_allclose(gp._Li, full._Li, rtol=1e-8, atol=1e-8)
    Xq = np.random.default_rng(1).random((30, 3))
    m1, v1 = gp.predict(Xq)
    m2, v2 = full.predict(Xq)
    np.testing.assert_allclose(m1, m2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(v1, v2, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(gp.y, y)


def test_fantasize_at_the_mean_keeps_the_mean_and_shrinks_the_variance():
    X, y = data(30, 2, seed=6)
    gp = GaussianProcess(2).fit(X, y)
    pending = np.array([[0.2, 0.8], [0.9, 0.1]])
    Xq = np.concatenate([pending, np.random.default_rng(2).random((20, 2))])
    mean, var = gp.predict(Xq)
    fantasy = gp.fantasize(pending)
    f_mean, f_var = fantasy.predict(Xq)
    assert fantasy.n == gp.n + 2 and gp.n == 30  # the original is unchanged
    np.testing.assert_allclose(gp.predict(Xq)[0], mean)
    np.testing.assert_allclose(f_mean, mean, rtol=1e-8, atol=1e-8)
    assert np.all(f_var <= var + 1e-12)
    # at a single pending input, the variance is that after one noisy observation there:
    # v' = v s2 / (v + s2), s2 the noise variance
    one = gp.fantasize(pending[:1])
    v = var[0]
    s2 = gp.noise_variance * gp.y_scale**2
    assert one.predict(pending[:1])[1][0] == pytest.approx(v * s2 / (v + s2), rel=1e-6)


def test_fantasize_with_values_equals_conditioning_on_them():
    X, y = data(30, 2, seed=8)
    gp = GaussianProcess(2).fit(X, y)
    pending = np.random.default_rng(3).random((3, 2))
    values = gp.sample_posterior(pending, 1, np.random.default_rng(4))[0]
    fantasy = gp.fantasize(pending, values)
    direct = GaussianProcess(2)
    direct.set_theta(gp.theta)
    direct.set_data(np.concatenate([X, pending]), np.concatenate([y, values]), y_mean=gp.y_mean, y_scale=gp.y_scale)
    Xq = np.random.default_rng(5).random((15, 2))
    for a, b in zip(fantasy.predict(Xq), direct.predict(Xq), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_sample_posterior_has_the_posterior_moments():
    X, y = data(20, 1, seed=9)
    gp = GaussianProcess(1).fit(X, y)
    Xq = np.linspace(0, 1, 6)[:, None]
    samples = gp.sample_posterior(Xq, 20000, np.random.default_rng(0))
    mean, cov = gp.predict_joint(Xq)
    assert samples.shape == (20000, 6)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(samples.mean(axis=0), mean, atol=4 * sd.max() / math.sqrt(20000) + 1e-9)
    np.testing.assert_allclose(np.cov(samples.T), cov, atol=0.05 * sd.max() ** 2 + 1e-9)
    np.testing.assert_allclose(np.diag(cov), gp.predict(Xq)[1], rtol=1e-8, atol=1e-12)


def test_state_round_trip_is_bitwise_exact():
    X, y = data(70, 3, seed=10)
    gp = GaussianProcess(3, warp_dims=[0]).fit(X[:50], y[:50])
    gp.add_points(X[50:55], y[50:55]).add_points(X[55:70], y[55:70])
    state = json.loads(json.dumps(gp.state_dict()))
    assert state["batches"] == [50, 55, 70]
    copy = GaussianProcess(3, warp_dims=[0]).load_state_dict(state)
    Xq = np.random.default_rng(0).random((40, 3))
    for a, b in zip(gp.predict(Xq), copy.predict(Xq), strict=True):
        assert np.array_equal(a, b)
    # without data in the state, the caller passes it
    light = gp.state_dict(include_data=False)
    assert "X" not in light
    again = GaussianProcess(3, warp_dims=[0]).load_state_dict(json.loads(json.dumps(light)), X, y)
    assert np.array_equal(gp.predict(Xq)[1], again.predict(Xq)[1])


def test_prior_without_data_and_constant_targets():
    gp = GaussianProcess(2)
    mean, var = gp.predict(np.zeros((3, 2)))
    assert np.all(np.isfinite(mean)) and np.all(var > 0)
    X = np.random.default_rng(0).random((5, 2))
    gp.fit(X, np.full(5, 2.5))  # zero spread: the scale falls back to 1
    mean, var = gp.predict(X)
    np.testing.assert_allclose(mean, 2.5, atol=1e-3)


def test_duplicate_inputs_and_tiny_noise_stay_stable():
    X = np.repeat(np.random.default_rng(0).random((10, 2)), 3, axis=0)
    y = np.arange(30, dtype=float)
    gp = GaussianProcess(2, noise_floor=1e-9)
    gp.set_theta(theta_of(gp, [0.5, 0.5], 1.0, 0.0, 1e-9))
    gp.set_data(X, y)  # singular without jitter
    mean, var = gp.predict(X)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(var))
    gp.add_points(X[:3], y[:3])  # appending duplicates too
    assert np.all(np.isfinite(gp.predict(X)[0]))


@pytest.mark.parametrize("kwargs, match", [
    ({"dim": 0}, "dim"),
    ({"dim": 2, "warp_dims": [2]}, "warp_dims"),
    ({"dim": 2, "noise_floor": 0}, "noise_floor"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianProcess(**kwargs)


def test_bad_data():
    gp = GaussianProcess(2)
    with pytest.raises(ValueError, match="shape"):
        gp.fit(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        gp.fit(np.zeros((2, 2)), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="one per row"):
        gp.set_data(np.zeros((3, 2)), np.zeros(2))
