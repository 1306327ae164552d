"""benchmarks/surrogate_quality.py: the observed sets and the scores of its core function, on generated curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import load_script, random_pfn_weights

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "surrogate_quality.py"


@pytest.fixture(scope="module")
def sq():
    return load_script(SCRIPT)


def power_law_curves(sq, n_curves: int = 240, n_epochs: int = 20, seed: int = 0):
    """Exact power laws in the epoch, their level and decay set by a 2-d config (values in [0, 1])."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n_curves, 2))
    t = np.arange(1, n_epochs + 1) / n_epochs
    g = 0.3 + 0.7 * X[:, 1:2]
    k = (t[0] ** -g - 1.0)
    y = 0.1 + 0.4 * X[:, :1] + 0.5 * (t[None, :] ** -g - 1.0) / k
    assert np.all((y >= 0) & (y <= 1.0 + 1e-12))
    return sq.Curves(X=X, t=t, y=y)


def test_observed_set_is_prefixes_and_held_out_points_are_not_observed(sq):
    rng = np.random.default_rng(3)
    obs = sq.observed_set(300, 20, 150, rng, unseen=30, unseen_epochs=4)
    assert len(obs.curve) == 150
    seen = set(zip(obs.curve.tolist(), obs.epoch.tolist(), strict=True))
    for c in np.unique(obs.curve):  # each observed curve: its first epochs, each once
        assert sorted(obs.epoch[obs.curve == c].tolist()) == list(range(int(np.sum(obs.curve == c))))
    ec, ee = obs.extrap
    assert len(ec) > 0 and set(ec.tolist()) <= set(obs.curve.tolist())
    assert not seen & set(zip(ec.tolist(), ee.tolist(), strict=True))
    for c, e in zip(ec, ee, strict=True):  # later than every observed epoch of its curve
        assert e > obs.epoch[obs.curve == c].max()
    uc, ue = obs.unseen
    assert len(uc) == 30 * 4 and not set(uc.tolist()) & set(obs.curve.tolist())
    assert len(set(zip(uc.tolist(), ue.tolist(), strict=True))) == len(uc)


def test_scores_of_every_surrogate_are_finite_on_a_drawn_observed_set(sq):
    res = sq.score_surrogates(power_law_curves(sq), [100], sq.DEFAULT_SURROGATES, seed=1, unseen=40)
    assert sorted(res) == [("constant", 100), ("dpl", 100), ("gp", 100), ("pfn", 100), ("pfn-gp", 100)]
    for key, scores in res.items():
        assert set(scores) == set(sq.METRICS)
        assert all(np.isfinite(v) for v in scores.values()), (key, scores)


def test_pfn_with_other_weights_by_name(sq, tmp_path):
    path = random_pfn_weights(tmp_path)
    res = sq.score_surrogates(power_law_curves(sq, n_curves=60), [20], ["pfn", f"pfn:{path}"], seed=1, unseen=10)
    other = res[(f"pfn:{path}", 20)]
    assert all(np.isfinite(v) for v in other.values())
    assert other["ll_extrap"] != res[("pfn", 20)]["ll_extrap"]  # another model was used
    with pytest.raises(KeyError):
        sq.factory_of("nope")


@pytest.mark.parametrize("seed", [0, 1])
def test_models_fitted_on_exact_power_laws_beat_a_constant_mean(sq, seed):
    """Half of every observed curve seen (epochs 1-10 of 20): the ensemble of power laws and the GP
    extrapolate the rest, and predict unseen curves, better than the constant mean does."""
    curves = power_law_curves(sq, n_curves=100)
    seen = np.arange(60)
    obs = sq.ObservedSet(curve=np.repeat(seen, 10), epoch=np.tile(np.arange(10), 60),
                         extrap=(np.repeat(seen, 10), np.tile(np.arange(10, 20), 60)),
                         unseen=(np.repeat(np.arange(60, 100), 20), np.tile(np.arange(20), 40)))
    res = sq.score_observed_set(curves, obs, ["constant", "dpl", "gp"], seed)
    const = res["constant"]
    for name in ("dpl", "gp"):
        for metric in ("ll_extrap", "ll_unseen"):
            assert res[name][metric] > const[metric] + 0.5, (name, metric, res)
        for metric in ("mse_extrap", "mse_unseen"):
            assert res[name][metric] < const[metric] / 5, (name, metric, res)
        # which unseen configuration ends best: ranked, where the constant mean cannot tell
        assert res[name]["rank_unseen"] > 0.5 + const["rank_unseen"], (name, res)
    assert const["rank_unseen"] == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_the_gps_value_as_the_pfns_input_tells_unseen_configs_apart_where_one_of_8_hyperparameters_matters(sq, seed):
    """``pfn-gp`` (FTBO's ``config_inputs="gp"``): on curves whose level is set by one of 8
    hyperparameters, with 60 curves seen for 3 of 20 epochs, the PFN given the GP's predicted final
    value predicts the 40 unseen curves better than the PFN given the 8 columns, and no worse the
    rest of the seen ones."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(100, 8))
    t = np.arange(1, 21) / 20
    y = 0.1 + 0.4 * X[:, :1] ** 2 + 0.5 * (t[None, :] ** -0.5 - 1.0) / (t[0] ** -0.5 - 1.0)
    seen = np.arange(60)
    obs = sq.ObservedSet(curve=np.repeat(seen, 3), epoch=np.tile(np.arange(3), 60),
                         extrap=(np.repeat(seen, 17), np.tile(np.arange(3, 20), 60)),
                         unseen=(np.repeat(np.arange(60, 100), 20), np.tile(np.arange(20), 40)))
    res = sq.score_observed_set(sq.Curves(X=X, t=t, y=y), obs, ["pfn", "pfn-gp"], seed)
    pfn, hybrid = res["pfn"], res["pfn-gp"]
    assert hybrid["ll_unseen"] > pfn["ll_unseen"] + 0.15, res
    assert hybrid["mse_unseen"] < 0.7 * pfn["mse_unseen"], res
    assert hybrid["ll_extrap"] > pfn["ll_extrap"] - 0.05, res


def test_max_context_caps_what_the_surrogate_sees(sq):
    curves = power_law_curves(sq, n_curves=140)
    sizes: list[int] = []

    class Recorder(sq.ConstantSurrogate):
        def fit(self, X, t, y, curve, *, n_total):
            sizes.append((len(y), n_total))
            super().fit(X, t, y, curve, n_total=n_total)

    sq.score_surrogates(curves, [100], ["rec"], seed=0, unseen=20, max_context=30,
                        factories={"rec": lambda d, min_t, seed: Recorder()})
    sq.score_surrogates(curves, [100], ["rec"], seed=0, unseen=20,
                        factories={"rec": lambda d, min_t, seed: Recorder()})
    obs = sq.observed_set(140, 20, 100, np.random.default_rng([0, 100]), unseen=20)
    capped = len(sq.cap_context(obs.curve, curves.t[obs.epoch], 30))
    assert capped < 100  # this set has fewer than 100 curves: capping drops points
    assert sizes == [(capped, 100), (100, 100)]


def test_mapped_prediction_reads_back_in_normalized_units(sq):
    """A Gaussian made in mapped units (v = m + (1 - 2m) y) read back is the Gaussian of y: its
    mean mapped back, its log density the mapped one plus log(1 - 2m) (the Jacobian)."""
    m = 0.1
    mu, s = np.array([0.2, 0.5, 0.9]), np.array([0.05, 0.1, 0.3])
    direct = sq.GaussianCurvePrediction(mean=mu, std=s)
    mapped = sq.MappedPrediction(sq.GaussianCurvePrediction(mean=m + (1 - 2 * m) * mu, std=(1 - 2 * m) * s), m)
    y = np.array([0.25, 0.4, 1.0])
    np.testing.assert_allclose(mapped.mean, mu)
    np.testing.assert_allclose(mapped.log_pdf(y), direct.log_pdf(y))
    np.testing.assert_allclose(mapped.prob_below(y), direct.prob_below(y))
    np.testing.assert_allclose(mapped.log_prob_below(y), direct.log_prob_below(y))


def test_pfn_density_in_normalized_units_integrates_to_one(sq):
    """The PFN's bar distribution lives on [0, 1] in mapped units: in normalized units it covers
    [-m / (1 - 2m), (1 - m) / (1 - 2m)] and its density integrates to 1 there, its mean the
    mapped mean mapped back."""
    curves = power_law_curves(sq, n_curves=30)
    model = sq.PFNCurveSurrogate()
    m = model.margin
    c, e = np.repeat(np.arange(20), 5), np.tile(np.arange(5), 20)
    model.fit(curves.X[c], curves.t[e], curves.y[c, e], c, n_total=len(c))
    pred = model.predict(curves.X[[0, 25]], curves.t[[15, 3]])
    from tunebench.models.pfn import BarPrediction

    b = np.asarray(pred.inner.borders, dtype=float)
    y_mid = ((b[:-1] + b[1:]) / 2 - m) / (1 - 2 * m)  # the bins' midpoints, in normalized units
    width = np.diff(b) / (1 - 2 * m)
    for i in range(2):
        one = BarPrediction(log_probs=np.repeat(pred.inner.log_probs[i:i + 1], len(y_mid), axis=0), borders=b)
        dens = np.exp(sq.MappedPrediction(one, m).log_pdf(y_mid))
        assert float(np.sum(dens * width)) == pytest.approx(1.0, abs=1e-3)
        assert float(np.sum(dens * width * y_mid)) == pytest.approx(float(pred.mean[i]), abs=1e-3)
    np.testing.assert_allclose(pred.mean, (np.asarray(pred.inner.mean) - m) / (1 - 2 * m))
