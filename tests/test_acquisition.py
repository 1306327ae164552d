"""Acquisition functions (EI against Monte Carlo, log-EI, LCB, Thompson sampling) and the
acquisition optimizer (valid configs, moves that respect parameter types, exclusion)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunebench.models.acquisition import (
    AcquisitionOptimizer,
    expected_improvement,
    log_expected_improvement,
    lower_confidence_bound,
    row_keys,
    thompson_sample,
)
from tunebench.models.gp import GaussianProcess
from tunebench.space import (
    active_config,
    choice,
    finrange,
    get_encoder,
    hyperparameters,
    logfinrange,
    lograndint,
    loguniform,
    ordinal,
    randint,
    uniform,
)

MIXED = {
    "lr": loguniform(1e-5, 1e-1),
    "x": uniform(-2.0, 3.0),
    "units": lograndint(4, 1024),
    "layers": randint(1, 6),
    "act": choice(["relu", "tanh", "gelu"]),
    "batch": ordinal([16, 32, 64, 128]),
    "wd": finrange(0.0, 0.1, 5),
    "mom": logfinrange(0.5, 0.99, 4),
    "big": randint(0, 10**9),  # too wide for a lookup table
    "epochs": 10,
}


@pytest.mark.parametrize("mean, var, best", [(0.0, 1.0, 0.0), (1.0, 0.25, 0.3), (-0.5, 4.0, 0.2), (2.0, 0.01, 1.5)])
def test_expected_improvement_matches_monte_carlo(mean, var, best):
    f = np.random.default_rng(0).normal(mean, math.sqrt(var), 2_000_000)
    mc = np.mean(np.maximum(best - f, 0.0))
    ei = expected_improvement(np.array([mean]), np.array([var]), best)[0]
    se = np.std(np.maximum(best - f, 0.0)) / math.sqrt(len(f))
    assert abs(ei - mc) < 5 * se + 1e-12


def test_log_expected_improvement_is_the_log_and_stays_finite():
    mean = np.linspace(-3.0, 8.0, 200)
    var = np.full(200, 0.7)
    ei = expected_improvement(mean, var, 0.5)
    log_ei = log_expected_improvement(mean, var, 0.5)
    ok = ei > 1e-250
    np.testing.assert_allclose(log_ei[ok], np.log(ei[ok]), rtol=1e-9, atol=1e-9)
    # far from the incumbent the EI underflows to 0, its log keeps ranking the points
    far = np.array([50.0, 100.0, 1e3, 1e5, 1e7])
    values = log_expected_improvement(far, np.ones(5), 0.0)
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) < 0)
    assert expected_improvement(far[:1], np.ones(1), 0.0)[0] == 0.0
    # larger variance -> larger EI at the same mean
    assert log_expected_improvement(np.array([3.0]), np.array([4.0]), 0.0)[0] > \
        log_expected_improvement(np.array([3.0]), np.array([1.0]), 0.0)[0]


def test_lower_confidence_bound():
    np.testing.assert_allclose(lower_confidence_bound(np.array([1.0, 2.0]), np.array([4.0, 0.25]), 2.0), [-3.0, 1.0])


def test_thompson_sample_is_a_joint_posterior_sample():
    rng = np.random.default_rng(0)
    X = rng.random((15, 2))
    gp = GaussianProcess(2).fit(X, np.sin(4 * X[:, 0]) + X[:, 1])
    C = rng.random((8, 2))
    a = thompson_sample(gp, C, np.random.default_rng(1))
    b = thompson_sample(gp, C, np.random.default_rng(1))
    assert a.shape == (8,) and np.array_equal(a, b)
    draws = np.stack([thompson_sample(gp, C, np.random.default_rng(s)) for s in range(3000)])
    mean, var = gp.predict(C)
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=5 * math.sqrt(var.max() / 3000) + 1e-6)


def valid(space, config) -> bool:
    for name, value in space.items():
        domain = hyperparameters(space).get(name)
        if domain is None:
            if config[name] != value:
                return False
        elif not domain.contains(config[name]):
            return False
    return set(config) == set(space)


def test_neighbors_are_valid_and_move_one_parameter_by_its_type():
    opt = AcquisitionOptimizer(MIXED)
    enc = get_encoder(MIXED)
    X = opt.sample(np.random.default_rng(0), 6)
    N, owner = opt.neighbors(X, np.full(6, 0.1))
    assert N.shape == (6 * opt.n_moves, enc.encoded_dim)
    np.testing.assert_array_equal(opt.snap(N), N)  # canonical encodings of valid configs
    base = opt.decode(X)
    for row, i in zip(opt.decode(N), owner, strict=True):
        assert valid(MIXED, row)
        changed = [k for k in row if row[k] != base[i][k]]
        assert len(changed) <= 1
        if changed == ["layers"]:
            assert abs(row["layers"] - base[i]["layers"]) >= 1
        if changed == ["batch"]:
            assert row["batch"] in (16, 32, 64, 128)
    # each integer / ordinal gets its neighbours one value up and down
    cfg = dict(base[0], layers=3, batch=32)
    N, _ = opt.neighbors(enc.encode([cfg]), np.array([0.1]))
    rows = opt.decode(N)
    assert {r["layers"] for r in rows} >= {2, 3, 4}
    assert {r["batch"] for r in rows} >= {16, 32, 64}
    assert {r["act"] for r in rows} == {"relu", "tanh", "gelu"}
    assert {r["big"] for r in rows} >= {cfg["big"] - 1, cfg["big"] + 1}


def test_local_search_improves_on_the_random_candidates_and_returns_valid_configs():
    opt = AcquisitionOptimizer(MIXED, n_candidates=100, max_steps=60)
    enc = get_encoder(MIXED)
    target = enc.encode([{"lr": 3e-3, "x": 0.7, "units": 200, "layers": 4, "act": "tanh", "batch": 64,
                          "wd": 0.025, "mom": 0.5, "big": 5}])[0]
    weights = np.ones(enc.encoded_dim)

    def score(X: np.ndarray) -> np.ndarray:
        return -np.sum(weights * (X - target) ** 2, axis=1)

    random_best = score(opt.sample(np.random.default_rng(5), 100)).max()
    row, value = opt.optimize(score, np.random.default_rng(5))
    assert value >= random_best
    assert value == pytest.approx(score(row[None, :])[0])
    config = opt.decode(row[None, :])[0]
    assert valid(MIXED, config)
    assert config["act"] == "tanh" and config["layers"] == 4 and config["batch"] == 64
    assert abs(config["x"] - 0.7) < 0.05 and config["units"] == 200 and config["wd"] == 0.025


def test_optimize_with_a_gp_acquisition_beats_random_candidates():
    space = {k: MIXED[k] for k in ("lr", "x", "layers", "act")}
    opt = AcquisitionOptimizer(space, n_candidates=50)
    rng = np.random.default_rng(0)
    X = opt.sample(rng, 30)
    y = np.sum((X - 0.4) ** 2, axis=1)
    gp = GaussianProcess(X.shape[1]).fit(X, y)

    def score(C: np.ndarray) -> np.ndarray:
        return log_expected_improvement(*gp.predict(C), float(y.min()))

    row, value = opt.optimize(score, np.random.default_rng(1), exclude=set(row_keys(X)), starts=X[np.argsort(y)[:1]])
    assert value > score(opt.sample(np.random.default_rng(1), 50)).max()
    assert row_keys(row[None, :])[0] not in set(row_keys(X))
    assert valid(space, opt.decode(row[None, :])[0])


def test_excluded_rows_are_never_returned():
    space = {"a": choice(["x", "y"]), "b": randint(0, 2)}  # 6 configs
    opt = AcquisitionOptimizer(space, n_candidates=20)
    enc = get_encoder(space)
    every = [{"a": a, "b": b} for a in ("x", "y") for b in (0, 1, 2)]
    best = {"a": "y", "b": 2}
    target = enc.encode([best])[0]

    def score(X: np.ndarray) -> np.ndarray:
        return -np.sum((X - target) ** 2, axis=1)

    row, _ = opt.optimize(score, np.random.default_rng(0))
    assert opt.decode(row[None, :])[0] == best
    exclude = set(row_keys(enc.encode([c for c in every if c != {"a": "x", "b": 0}])))
    row, _ = opt.optimize(score, np.random.default_rng(0), exclude=exclude)
    assert opt.decode(row[None, :])[0] == {"a": "x", "b": 0}
    assert opt.optimize(score, np.random.default_rng(0), exclude=set(row_keys(enc.encode(every)))) is None


def test_optimizer_is_deterministic_given_the_rng():
    opt = AcquisitionOptimizer(MIXED, n_candidates=30)

    def score(X: np.ndarray) -> np.ndarray:
        return -np.sum(np.sin(5 * X), axis=1)

    a = opt.optimize(score, np.random.default_rng(3))
    b = opt.optimize(score, np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_candidates": 0}, "n_candidates"),
    ({"max_steps": 0}, "max_steps"),
    ({"n_starts": -1}, "n_starts"),
    ({"initial_step": 0.001}, "min_step"),
])
def test_bad_optimizer_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AcquisitionOptimizer(MIXED, **kwargs)


# -- conditional spaces ---------------------------------------------------------------------------

COND = {
    "opt": choice(["sgd", "momentum"]),
    "m": uniform(0.1, 0.99).when({"opt": "momentum"}),
    "x": uniform(0.0, 1.0),
}


def valid_conditional(config: dict) -> bool:
    """``config`` holds exactly the parameters of :data:`COND` active in it, each in its domain."""
    if set(config) != set(active_config(COND, config)):
        return False
    return all(COND[k].contains(v) for k, v in config.items())


def test_conditional_rows_are_canonical_and_evaluated_configs_are_not_returned():
    """A score that also rewards a column of an inactive parameter (as a model fitted on the
    fill values may): moving that column makes no new configuration, so the optimizer must not
    return an evaluated config with its inactive column moved (issue 18: BO re-proposed them)."""
    opt = AcquisitionOptimizer(COND, n_candidates=50, max_steps=30)
    enc = get_encoder(COND)
    m_col = enc.slices["m"].start
    fill = enc.encode([{"opt": "sgd", "x": 0.3}])[0, m_col]
    best = {"opt": "sgd", "x": 0.3}
    target = enc.encode([best])[0]

    def score(X: np.ndarray) -> np.ndarray:  # best: sgd at x = 0.3, with the m column far from its fill
        return -np.sum((X - target) ** 2, axis=1) + 0.5 * np.abs(X[:, m_col] - fill)

    evaluated = set(row_keys(enc.encode([best])))
    starts = enc.encode([best])
    for seed in range(5):
        found = opt.optimize(score, np.random.default_rng(seed), exclude=evaluated, starts=starts)
        assert found is not None
        row, value = found
        np.testing.assert_array_equal(opt.snap(row[None, :])[0], row)  # canonical: inactive m at its fill
        config = opt.decode(row[None, :])[0]
        assert valid_conditional(config)
        assert config != best
        assert row_keys(row[None, :])[0] not in evaluated
        assert value == pytest.approx(score(row[None, :])[0])
        if config["opt"] == "sgd":
            assert row[m_col] == fill


def test_conditional_snap_puts_inactive_columns_at_their_fill_value():
    opt = AcquisitionOptimizer(COND)
    enc = get_encoder(COND)
    m = enc.slices["m"]
    X = opt.sample(np.random.default_rng(0), 40)
    X[:, m] = np.random.default_rng(1).random((40, 1))  # scramble the m column, active or not
    S = opt.snap(X)
    for row, config in zip(S, opt.decode(X), strict=True):
        np.testing.assert_array_equal(row, enc.encode([config])[0])
        if config["opt"] == "sgd":
            assert "m" not in config
            assert row[m.start] == pytest.approx(enc.encode([{"opt": "momentum", "m": 0.545, "x": 0.0}])[0, m.start])
