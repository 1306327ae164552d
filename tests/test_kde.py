"""The product-kernel density (tunebench.models.kde) and the TPE-style KDE searcher of BOHB."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import truncnorm

from tunebench.blackboxes.synthetic import HARTMANN6_OPTIMUM, hartmann6
from tunebench.models.kde import ProductKDE
from tunebench.schedulers import make_scheduler
from tunebench.searchers import RandomSearcher
from tunebench.searchers.kde import KDESearcher
from tunebench.space import choice, hyperparameters, loguniform, ordinal, randint, uniform
from tunebench.testing.scheduler_contract import ContractSimulation, contract_space, true_quality

# -- the density ----------------------------------------------------------------------------------


def _naive_log_pdf(kde: ProductKDE, x: np.ndarray) -> float:
    """Mean over the data of the product of the kernels, one datum and one column at a time."""
    total = 0.0
    for datum in kde.data:
        p = 1.0
        for j, (k, h) in enumerate(zip(kde.n_categories, kde.bandwidths, strict=True)):
            if k == 0:
                p *= truncnorm.pdf(x[j], -datum[j] / h, (1 - datum[j]) / h, loc=datum[j], scale=h)
            elif k > 1:
                p *= (1 - h) if x[j] == datum[j] else h / (k - 1)
        total += p
    return math.log(total / kde.n)


def test_density_matches_the_product_of_truncated_gaussian_and_aitchison_aitken_kernels() -> None:
    rng = np.random.default_rng(0)
    n = 25
    data = np.column_stack([rng.random(n), rng.integers(0, 3, n), 0.2 * rng.random(n), np.zeros(n)])
    kde = ProductKDE(data, [0, 3, 0, 1])
    X = np.column_stack([rng.random(6), rng.integers(0, 3, 6), rng.random(6), np.zeros(6)])
    X[0, 0] = 0.0  # on a bound
    np.testing.assert_allclose(kde.log_pdf(X), [_naive_log_pdf(kde, x) for x in X], rtol=1e-9, atol=1e-9)
    assert kde.bandwidths[3] == 0.0  # a single category: no smoothing needed
    assert 0 < kde.bandwidths[1] <= 2 / 3


def test_density_integrates_to_one_and_peaks_at_the_data() -> None:
    rng = np.random.default_rng(1)
    data = np.clip(0.3 + 0.05 * rng.standard_normal((200, 1)), 0, 1)
    kde = ProductKDE(data, [0])
    xs = np.linspace(0.0, 1.0, 20001)
    pdf = kde.pdf(xs[:, None])
    assert np.trapezoid(pdf, xs) == pytest.approx(1.0, abs=1e-6)
    assert abs(xs[np.argmax(pdf)] - 0.3) < 0.03
    # the rule of thumb: about 1.06 * 0.05 * 200 ** (-1/5)
    assert kde.bandwidths[0] == pytest.approx(1.06 * data.std() * 200 ** -0.2)
    # a datum on the bound keeps its whole mass inside [0, 1]
    edge = ProductKDE(np.array([[0.0], [1.0]]), [0])
    assert np.trapezoid(edge.pdf(xs[:, None]), xs) == pytest.approx(1.0, abs=1e-4)
    # 2-d: a grid integral
    two = ProductKDE(rng.random((15, 2)), [0, 0])
    g = np.linspace(0, 1, 401)
    G = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    assert np.trapezoid(np.trapezoid(two.pdf(G).reshape(401, 401), g), g) == pytest.approx(1.0, abs=1e-3)


def test_categorical_probabilities_sum_to_one_and_favour_frequent_categories() -> None:
    codes = np.array([[0], [0], [0], [0], [0], [0], [1], [2]], dtype=float)
    kde = ProductKDE(codes, [4])
    probs = kde.pdf(np.arange(4, dtype=float)[:, None])
    assert probs.sum() == pytest.approx(1.0)
    assert probs[1] == pytest.approx(probs[2])
    assert probs[0] > probs[1] > probs[3] > 0
    same = ProductKDE(np.zeros((10, 1)), [4])
    assert same.bandwidths[0] == pytest.approx(1e-3)  # all data agree: the minimum bandwidth
    assert ProductKDE(np.zeros((10, 1)), [4], min_bandwidth=0.1).bandwidths[0] == pytest.approx(0.1)


def test_bandwidths_shrink_with_more_data() -> None:
    rng = np.random.default_rng(2)
    small = ProductKDE(rng.random((10, 2)), [0, 0]).bandwidths
    large = ProductKDE(rng.random((1000, 2)), [0, 0]).bandwidths
    assert np.all(large < small)


def test_samples_follow_the_density_and_stay_valid() -> None:
    rng = np.random.default_rng(3)
    data = np.column_stack([np.clip(0.8 + 0.05 * rng.standard_normal(50), 0, 1), rng.integers(0, 2, 50)])
    data[:, 1] = 0
    data[:5, 1] = 1
    kde = ProductKDE(data, [0, 3])
    draws = kde.sample(rng, 20000)
    assert np.all((draws[:, 0] >= 0) & (draws[:, 0] <= 1))
    assert set(np.unique(draws[:, 1]).tolist()) <= {0.0, 1.0, 2.0}
    # the sample's histogram matches the density of the continuous column
    hist, edges = np.histogram(draws[:, 0], bins=20, range=(0, 1), density=True)
    mids = 0.5 * (edges[1:] + edges[:-1])
    marginal = ProductKDE(data[:, :1], [0], bandwidths=kde.bandwidths[:1]).pdf(mids[:, None])
    assert np.abs(hist - marginal).max() < 0.15 * marginal.max()
    # category frequencies match the Aitchison-Aitken marginal
    lam = kde.bandwidths[1]
    expected = np.array([0.9 * (1 - lam) + 0.1 * lam / 2, 0.1 * (1 - lam) + 0.9 * lam / 2, lam / 2])
    freq = np.bincount(draws[:, 1].astype(int), minlength=3) / len(draws)
    np.testing.assert_allclose(freq, expected, atol=0.01)
    # a bandwidth factor widens the draws
    wide = kde.sample(rng, 20000, bandwidth_factor=3.0)
    assert wide[:, 0].std() > draws[:, 0].std()


def test_bad_inputs_to_the_density() -> None:
    with pytest.raises(ValueError, match="shape"):
        ProductKDE(np.zeros((3, 2)), [0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ProductKDE(np.array([[1.5]]), [0])
    with pytest.raises(ValueError, match="category indices"):
        ProductKDE(np.array([[3.0]]), [3])
    with pytest.raises(ValueError, match="min_bandwidth"):
        ProductKDE(np.array([[0.5]]), [0], min_bandwidth=0)
    with pytest.raises(ValueError, match="bandwidth_factor"):
        ProductKDE(np.array([[0.5]]), [0]).sample(np.random.default_rng(0), 3, bandwidth_factor=0)


# -- the searcher ---------------------------------------------------------------------------------

SPACE_1D = {"x": uniform(0.0, 1.0)}


def _feed(searcher: KDESearcher, xs: list[float], fn, level: int | None = None, start: int = 0) -> None:
    for i, x in enumerate(xs):
        result = {"loss": fn(x)}
        if level is not None:
            result["epoch"] = level
        searcher.on_result(start + i, {"x": x}, result)


def test_the_density_ratio_picks_candidates_in_the_good_region() -> None:
    searcher = KDESearcher(SPACE_1D, "loss", seed=0, random_fraction=0.0)
    xs = np.linspace(0.0, 1.0, 41).tolist()
    _feed(searcher, xs, lambda x: (x - 0.2) ** 2)
    good, bad = searcher.densities()  # type: ignore[misc]
    assert good.n == 6 and bad.n == 35  # floor(0.15 * 41) = 6 good
    proposals = [searcher.suggest(100 + i)["x"] for i in range(30)]
    assert all(abs(x - 0.2) < 0.12 for x in proposals), proposals
    # random search would land that close a quarter of the time
    assert np.mean(np.abs(np.array(proposals) - 0.2)) < 0.06


def test_mode_max_and_nan_results() -> None:
    searcher = KDESearcher(SPACE_1D, "acc", "max", seed=0, random_fraction=0.0)
    xs = np.linspace(0.0, 1.0, 41).tolist()
    _feed_acc = [searcher.on_result(i, {"x": x}, {"acc": 1 - (x - 0.7) ** 2}) for i, x in enumerate(xs)]
    assert len(_feed_acc) == 41
    searcher.on_result(50, {"x": 0.69}, {"acc": float("nan")})  # NaN: the worst, in the bad set
    proposals = [searcher.suggest(100 + i)["x"] for i in range(20)]
    assert np.mean(np.abs(np.array(proposals) - 0.7)) < 0.08


def test_the_model_uses_the_highest_level_with_enough_observations() -> None:
    searcher = KDESearcher(SPACE_1D, "loss", seed=0, random_fraction=0.0, resource_attr="epoch")
    assert searcher.model_level() is None
    low = np.linspace(0, 1, 40).tolist()
    _feed(searcher, low, lambda x: (x - 0.8) ** 2, level=1)
    assert searcher.model_level() == 1
    high = low[::2]
    _feed(searcher, high[:3], lambda x: (x - 0.2) ** 2, level=3)  # 3 points at epoch 3: too few
    assert searcher.model_level() == 1
    _feed(searcher, high[3:], lambda x: (x - 0.2) ** 2, level=3, start=3)
    assert searcher.model_level() == 3
    # the model never goes back to epoch 1: its observations are dropped, new ones not kept
    assert [level for level, *_ in searcher.state_dict()["obs"]] == [3]
    searcher.on_result(99, {"x": 0.5}, {"loss": 0.0, "epoch": 1})
    assert [level for level, *_ in searcher.state_dict()["obs"]] == [3]
    proposals = [searcher.suggest(100 + i)["x"] for i in range(20)]
    assert np.mean(np.abs(np.array(proposals) - 0.2)) < 0.1  # the optimum at epoch 3, not at 1


def test_enough_observations_rule() -> None:
    space = {"a": uniform(0, 1), "b": uniform(0, 1)}  # 2 hyperparameters: min_points = 3
    searcher = KDESearcher(space, "loss", seed=0)
    assert searcher.min_points == 3
    rng = np.random.default_rng(0)
    for i in range(5):
        searcher.on_result(i, {"a": rng.random(), "b": rng.random()}, {"loss": float(i)})
    assert searcher.model_level() is None  # 3 good + 2 bad
    searcher.on_result(5, {"a": 0.5, "b": 0.5}, {"loss": 9.0})
    assert searcher.model_level() == 0  # no resource attribute: one level
    with pytest.raises(ValueError, match="gamma"):
        KDESearcher(space, "loss", gamma=0.0)
    with pytest.raises(ValueError, match="random_fraction"):
        KDESearcher(space, "loss", random_fraction=1.5)
    with pytest.raises(ValueError, match="min_points"):
        KDESearcher(space, "loss", min_points=0)
    with pytest.raises(ValueError, match="n_candidates"):
        KDESearcher(space, "loss", n_candidates=0)


def test_searcher_beats_random_search_on_hartmann6() -> None:
    space = {f"x{i}": uniform(0.0, 1.0) for i in range(1, 7)}

    def best_found(searcher, n: int = 100) -> float:
        best = math.inf
        for t in range(n):
            config = searcher.suggest(t)
            value = float(hartmann6(np.array([[config[f"x{i}"] for i in range(1, 7)]]))[0])
            best = min(best, value)
            searcher.on_result(t, config, {"loss": value})
        return best - HARTMANN6_OPTIMUM

    kde = [best_found(KDESearcher(space, "loss", seed=s)) for s in range(8)]
    rnd = [best_found(RandomSearcher(space, "loss", seed=s)) for s in range(8)]
    assert np.mean(kde) < 0.75 * np.mean(rnd), (kde, rnd)


MIXED = {"lr": loguniform(1e-4, 1e-1), "width": randint(8, 128), "act": choice(["relu", "gelu", "tanh"]),
         "opt": ordinal(["sgd", "adam", "adamw"]), "const": "c"}


def test_mixed_spaces_give_valid_configs_and_avoid_duplicates() -> None:
    domains = hyperparameters(MIXED)
    searcher = KDESearcher(MIXED, "loss", seed=1, random_fraction=0.0)
    rng = np.random.default_rng(0)
    configs = []
    for t in range(60):
        config = searcher.suggest(t)
        assert set(config) == set(MIXED) and config["const"] == "c"
        assert all(domains[k].contains(v) for k, v in config.items() if k in domains)
        configs.append(json.dumps(config, sort_keys=True))
        loss = abs(math.log10(config["lr"]) + 2) + (config["act"] != "gelu") + 0.1 * rng.random()
        searcher.on_result(t, config, {"loss": loss})
    assert len(set(configs)) == len(configs)  # no duplicate in a space this large
    assert searcher.model_level() == 0
    late = [json.loads(c) for c in configs[-20:]]
    assert sum(c["act"] == "gelu" for c in late) >= 12  # the model learned the good category
    # a tiny discrete space: duplicates only once everything was proposed
    tiny = {"a": choice([1, 2]), "b": randint(0, 1)}
    s = KDESearcher(tiny, "loss", seed=0, random_fraction=0.0, min_points=1)
    seen = []
    for t in range(6):
        c = s.suggest(t)
        seen.append((c["a"], c["b"]))
        s.on_result(t, c, {"loss": float(c["a"] + c["b"])})
    assert len(set(seen[:4])) == 4


def test_points_to_evaluate_come_first() -> None:
    searcher = KDESearcher(MIXED, "loss", seed=0, points_to_evaluate=[{"lr": 0.01}, {"width": 9}])
    first, second = searcher.suggest(0), searcher.suggest(1)
    assert first["lr"] == 0.01 and second["width"] == 9


def test_state_round_trip_continues_identically() -> None:
    a = KDESearcher(MIXED, "loss", seed=3, resource_attr="epoch")
    rng = np.random.default_rng(0)

    def step(s: KDESearcher, t: int, noise: float) -> dict:
        config = s.suggest(t)
        for epoch in (1, 2):
            loss = abs(math.log10(config["lr"]) + 2) / epoch + noise
            s.on_result(t, config, {"loss": loss if t % 7 else float("nan"), "epoch": epoch})
        return config

    for t in range(40):
        step(a, t, float(rng.random()))
    state = json.dumps(a.state_dict())
    b = KDESearcher(MIXED, "loss", seed=3, resource_attr="epoch")
    b.load_state_dict(json.loads(state))
    assert json.dumps(b.state_dict()) == state
    noise = rng.random(30).tolist()
    assert [step(a, 40 + i, noise[i]) for i in range(30)] == [step(b, 40 + i, noise[i]) for i in range(30)]


@pytest.mark.parametrize("method", ["BOHB", "SyncBOHB"])
def test_under_asha_and_synchronous_hyperband_the_model_improves_the_trials(method: str) -> None:
    """Same simulated workload: trials proposed after the first 100 are better on average than
    with random search inside the same scheduler."""
    space = contract_space(27)
    random_twin = {"BOHB": "HB", "SyncBOHB": "SyncHB"}[method]

    def late_quality(m: str, seed: int) -> float:
        scheduler = make_scheduler(m, space, metric="loss", resource_attr="epoch", max_resource_attr="epochs",
                                   seed=seed)
        sim = ContractSimulation(scheduler, n_trials=250, fail_every=0, check_none_state=False)
        sim.run()
        return float(np.mean([true_quality(st.trial.config) for tid, st in sim.trials.items() if tid >= 100]))

    ours = np.mean([late_quality(method, s) for s in range(2)])
    base = np.mean([late_quality(random_twin, s) for s in range(2)])
    assert ours < 0.8 * base, (ours, base)


# -- conditional parameters (INACTIVE cells) ------------------------------------------------------


def _tn_pdf(x: float, centre: float, h: float) -> float:
    return float(truncnorm.pdf(x, (0 - centre) / h, (1 - centre) / h, loc=centre, scale=h))


def test_an_inactive_datum_contributes_the_uniform_density_and_an_inactive_query_drops_the_column() -> None:
    from tunebench.models.kde import INACTIVE

    data = np.array([[0.2, INACTIVE], [0.8, 0.5], [0.4, 0.1]])
    bw = [0.3, 0.2]
    kde = ProductKDE(data, [0, 0], bandwidths=bw, conditional=[False, True])
    x = np.array([[0.25, 0.6]])
    expected = (_tn_pdf(0.25, 0.2, 0.3) * 1.0 + _tn_pdf(0.25, 0.8, 0.3) * _tn_pdf(0.6, 0.5, 0.2)
                + _tn_pdf(0.25, 0.4, 0.3) * _tn_pdf(0.6, 0.1, 0.2)) / 3
    assert kde.pdf(x)[0] == pytest.approx(expected, rel=1e-9)
    # a query where the parameter is inactive: the density of the other columns alone
    only_first = ProductKDE(data[:, :1], [0], bandwidths=bw[:1])
    assert kde.pdf(np.array([[0.25, INACTIVE]]))[0] == pytest.approx(only_first.pdf(np.array([[0.25]]))[0])
    # categorical: an inactive datum gives 1/k, an active one the Aitchison-Aitken kernel
    cat = ProductKDE(np.array([[INACTIVE], [2.0]]), [3], bandwidths=[0.3], conditional=[True])
    assert cat.pdf(np.array([[2.0], [0.0]])) == pytest.approx([(1 / 3 + 0.7) / 2, (1 / 3 + 0.15) / 2])


def test_conditional_bandwidths_come_from_the_rows_where_the_parameter_is_active() -> None:
    from tunebench.models.kde import INACTIVE

    rng = np.random.default_rng(0)
    active = rng.uniform(0.4, 0.6, size=40)
    column = np.concatenate([active, np.full(60, INACTIVE)])
    data = np.column_stack([rng.random(100), column])
    kde = ProductKDE(data, [0, 0], conditional=[False, True])
    expected = 1.06 * active.std() * 40 ** (-1 / 6)
    assert kde.bandwidths[1] == pytest.approx(expected)
    draws = kde.sample(rng, 4000)
    # draws from the 60 inactive data are uniform on [0, 1], those from the 40 active ones near 0.5
    outside = np.mean((draws[:, 1] < 0.3) | (draws[:, 1] > 0.7))
    assert outside == pytest.approx(0.6 * 0.6, abs=0.04)
    assert ((draws >= 0) & (draws <= 1)).all()


def test_bohb_learns_a_conditional_parameter_only_from_the_trials_where_it_exists() -> None:
    """Good trials use sgd with momentum near 0.9; adam trials (no momentum) are bad. The model's
    proposals are mostly sgd with a high momentum: the density of momentum is fitted on sgd trials
    only (the adam trials' absent momentum does not pull it toward the default 0.745)."""
    space = {"optimizer": choice(["sgd", "adam"]), "momentum": uniform(0.5, 0.99).when(optimizer="sgd"),
             "lr": uniform(0.0, 1.0)}
    searcher = KDESearcher(space, "loss", seed=0, random_fraction=0.0)
    rng = np.random.default_rng(1)
    for tid in range(60):
        if tid % 2:
            m = float(rng.uniform(0.5, 0.99))
            config = {"optimizer": "sgd", "momentum": m, "lr": float(rng.random())}
            loss = abs(m - 0.92)
        else:
            config = {"optimizer": "adam", "lr": float(rng.random())}
            loss = 1.0 + float(rng.random())
        searcher.on_result(tid, config, {"loss": loss})
    proposals = [searcher.suggest(100 + i) for i in range(40)]
    sgd = [p for p in proposals if p["optimizer"] == "sgd"]
    assert len(sgd) >= 30 and all(("momentum" in p) == (p["optimizer"] == "sgd") for p in proposals)
    assert np.median([p["momentum"] for p in sgd]) > 0.85
