"""tunebench.pareto and tunebench.types.Objectives, checked against independent references:
brute-force O(n²) dominance for the front and the ranks, hand-worked crowding distances and
hypervolumes, inclusion–exclusion over boxes and Monte Carlo for the hypervolume in 3-D."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tunebench.errors import UserError
from tunebench.pareto import (
    crowding_distance,
    default_reference_point,
    epsilon_net_order,
    hypervolume,
    hypervolume_contributions,
    is_in_top,
    nondominated_mask,
    normalize,
    pareto_ranks,
    rank_by_nondominated_sorting,
    to_minimization,
)
from tunebench.types import Objectives, metric_to_minimize

# -- independent references ------------------------------------------------------------------------


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def brute_mask(Y: np.ndarray) -> np.ndarray:
    return np.array([not any(dominates(Y[j], Y[i]) for j in range(len(Y))) for i in range(len(Y))], dtype=bool)


def brute_ranks(Y: np.ndarray) -> np.ndarray:
    """Fronts peeled off one at a time: the rows no remaining row dominates."""
    ranks = np.full(len(Y), -1)
    remaining = set(range(len(Y)))
    rank = 0
    while remaining:
        front = [i for i in remaining if not any(dominates(Y[j], Y[i]) for j in remaining)]
        for i in front:
            ranks[i] = rank
        remaining -= set(front)
        rank += 1
    return ranks


def box_union_volume(Y: np.ndarray, ref: np.ndarray) -> float:
    """Volume of the union of the boxes [y, ref] by inclusion–exclusion (2^n terms: small n only)."""
    P = [y for y in Y if np.all(y < ref)]
    total = 0.0
    for k in range(1, len(P) + 1):
        for subset in itertools.combinations(P, k):
            corner = np.max(subset, axis=0)  # the intersection of boxes [y, ref] is [max y, ref]
            total += (-1) ** (k + 1) * float(np.prod(ref - corner))
    return total


def random_sets(d: int):
    """Random point sets with many ties and duplicates (small integers), continuous ones, and
    ones with +inf (diverged trials)."""
    rng = np.random.default_rng(100 + d)
    for n in (1, 2, 3, 7, 20, 60):
        yield rng.integers(0, 4, size=(n, d)).astype(float)
        yield rng.random((n, d))
        Y = rng.integers(0, 6, size=(n, d)).astype(float)
        Y[rng.random((n, d)) < 0.1] = np.inf
        yield Y
    base = rng.random((10, d))
    yield np.concatenate([base, base, base[:3]])  # exact duplicates
    anti = np.linspace(0, 1, 15)[:, None] * np.ones((1, d))
    anti[:, 0] = 1 - anti[:, 0]  # 15 mutually non-dominated points
    yield anti


# -- non-dominated sorting --------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_mask_and_ranks_match_brute_force(d):
    for Y in random_sets(d):
        ranks = brute_ranks(Y)
        np.testing.assert_array_equal(nondominated_mask(Y), brute_mask(Y))
        np.testing.assert_array_equal(nondominated_mask(Y), ranks == 0)
        np.testing.assert_array_equal(pareto_ranks(Y), ranks)


def test_hand_worked_ranks_and_duplicates():
    Y = np.array([[1, 3], [2, 2], [3, 1], [2, 2], [3, 3], [4, 4], [1, 3], [0, 5]], dtype=float)
    np.testing.assert_array_equal(pareto_ranks(Y), [0, 0, 0, 0, 1, 2, 0, 0])
    np.testing.assert_array_equal(nondominated_mask(Y), [1, 1, 1, 1, 0, 0, 1, 1])


def test_infinite_values_keep_dominance():
    # a diverged trial (+inf) best in the other objectives is on the front (moocore alone ranks
    # the first row 1 here: tunebench.pareto maps infinities to finite values first)
    Y = np.array([[np.inf, 0, 3], [0, 0, 4], [1, 1, 1], [np.inf, 0, 3], [np.inf, np.inf, np.inf]])
    np.testing.assert_array_equal(pareto_ranks(Y), [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(nondominated_mask(Y), [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(pareto_ranks(-Y), [1, 1, 1, 1, 0])  # -inf is the best value


def test_empty_and_bad_input():
    empty = np.zeros((0, 2))
    assert nondominated_mask(empty).shape == (0,)
    assert pareto_ranks(empty).shape == (0,)
    assert rank_by_nondominated_sorting(empty).shape == (0,)
    assert hypervolume(empty, [1, 1]) == 0.0
    with pytest.raises(ValueError, match="NaN"):
        nondominated_mask([[1.0, math.nan]])
    with pytest.raises(ValueError, match="shape"):
        pareto_ranks([1.0, 2.0])
    with pytest.raises(ValueError, match="one value per objective"):
        hypervolume([[1.0, 2.0]], [3.0])
    with pytest.raises(ValueError, match="tie_break"):
        rank_by_nondominated_sorting([[1.0, 2.0]], tie_break="random")


# -- crowding distance ------------------------------------------------------------------------------


def test_crowding_distance_hand_worked():
    # objective 0: range 6, sorted rows 0,1,2,3: row 1 gap (3-0)/6, row 2 gap (6-1)/6
    # objective 1: range 5, sorted rows 3,2,1,0: row 2 gap (3-0)/5, row 1 gap (5-1)/5
    Y = np.array([[0, 5], [1, 3], [3, 1], [6, 0]], dtype=float)
    np.testing.assert_allclose(crowding_distance(Y), [np.inf, 0.5 + 0.8, 5 / 6 + 0.6, np.inf])
    np.testing.assert_array_equal(crowding_distance(Y[:2]), [np.inf, np.inf])
    # a constant objective adds nothing; the other gives the extremes +inf
    np.testing.assert_allclose(crowding_distance([[0, 1], [1, 1], [3, 1]]), [np.inf, 1.0, np.inf])


# -- epsilon net and the total order ---------------------------------------------------------------


def test_epsilon_net_spreads_a_line_front():
    x = np.arange(11, dtype=float)
    Y = np.stack([x, 10 - x], axis=1)  # rows 0..10 on one front
    order = epsilon_net_order(Y)
    assert sorted(order.tolist()) == list(range(11))
    assert order[:3].tolist() == [0, 10, 5]  # lowest first objective, the farthest end, the middle
    assert epsilon_net_order(Y, first_objective=1)[:3].tolist() == [10, 0, 5]
    # scale-free: measuring the second objective in other units changes nothing
    np.testing.assert_array_equal(epsilon_net_order(Y * [1.0, 1000.0]), order)


@pytest.mark.parametrize("tie_break", ["eps_net", "crowding"])
@pytest.mark.parametrize("d", [2, 3])
def test_total_order_properties(tie_break, d):
    for Y in random_sets(d):
        order = rank_by_nondominated_sorting(Y, tie_break=tie_break)
        assert sorted(order.tolist()) == list(range(len(Y)))  # a permutation
        ranks = brute_ranks(Y)
        assert ranks[order[0]] == 0  # the first row is on the front
        assert np.all(np.diff(ranks[order]) >= 0)  # fronts in rank order
        for k in (1, len(Y) // 3, len(Y)):
            np.testing.assert_array_equal(rank_by_nondominated_sorting(Y, tie_break, max_items=k), order[:k])


def brute_eps_net(Y: np.ndarray) -> list[int]:
    """Farthest-point traversal recomputing every distance at each step (finite Y)."""
    Z = (Y - Y.min(axis=0)) / np.where(np.ptp(Y, axis=0) > 0, np.ptp(Y, axis=0), 1.0)
    order = [int(np.argmin(Y[:, 0]))]
    while len(order) < len(Y):
        nearest = ((Z[:, None, :] - Z[None, order, :]) ** 2).sum(axis=-1).min(axis=1)
        nearest[order] = -1.0
        order.append(int(np.argmax(nearest)))
    return order


@pytest.mark.parametrize("n", [5, 50, 300])  # 300: above the size where all distances are computed at once
@pytest.mark.parametrize("d", [2, 3])
def test_epsilon_net_matches_brute_force(n, d):
    rng = np.random.default_rng(n + d)
    x = rng.random((n, d)) + 0.01
    Y = 1.0 - x / np.linalg.norm(x, axis=1, keepdims=True)  # one front
    Y *= np.arange(1, d + 1)  # objectives on different scales
    assert epsilon_net_order(Y).tolist() == brute_eps_net(Y)
    assert rank_by_nondominated_sorting(Y, "eps_net").tolist() == brute_eps_net(Y)


@pytest.mark.parametrize("tie_break", ["eps_net", "crowding"])
@pytest.mark.parametrize("d", [2, 3])
def test_is_in_top_agrees_with_the_total_order(tie_break, d):
    for Y in random_sets(d):
        n = len(Y)
        for k in {0, 1, (n + 2) // 3, n // 2, n}:
            top = set(rank_by_nondominated_sorting(Y, tie_break, max_items=k).tolist())
            assert [is_in_top(Y, i, k, tie_break) for i in range(n)] == [i in top for i in range(n)]
    with pytest.raises(ValueError, match="not a row"):
        is_in_top([[1.0, 2.0]], 1, 1)


def test_total_order_in_one_dimension_is_sorting():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, size=50).astype(float)  # with ties
    for tie_break in ("eps_net", "crowding"):
        order = rank_by_nondominated_sorting(y[:, None], tie_break=tie_break)
        np.testing.assert_array_equal(order, np.argsort(y, kind="stable"))


def test_crowding_tie_break_puts_the_extremes_first():
    Y = np.array([[1, 3], [0, 5], [6, 0], [3, 1], [7, 7]], dtype=float)
    # front: rows 0,1,2,3; crowding: rows 1 and 2 inf, row 0: 3/6+4/5 = 1.3, row 3: 5/6+3/5 = 1.43; then row 4
    assert rank_by_nondominated_sorting(Y, "crowding").tolist() == [1, 2, 3, 0, 4]
    # eps-net: lowest first objective (row 1), the farthest (row 2), then the one farther from both
    assert rank_by_nondominated_sorting(Y, "eps_net").tolist()[:2] == [1, 2]


# -- hypervolume -----------------------------------------------------------------------------------


def test_hypervolume_2d_staircase():
    # strips x in [1,2): height 4-3; [2,3): 4-2; [3,4): 4-1
    Y = np.array([[1, 3], [2, 2], [3, 1]], dtype=float)
    assert hypervolume(Y, [4, 4]) == pytest.approx(1 + 2 + 3)
    # a dominated row, a duplicate, a row beyond ref, a row on ref's boundary, a diverged one: no change
    more = np.concatenate([Y, [[3, 3], [2, 2], [5, 0], [0, 4], [np.inf, 0]]])
    assert hypervolume(more, [4, 4]) == pytest.approx(6)
    assert hypervolume([[5.0, 5.0]], [4, 4]) == 0.0
    assert hypervolume([[1.0], [2.5]], [4]) == pytest.approx(3)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(d):
    rng = np.random.default_rng(d)
    for n in (1, 2, 4, 7):
        for _ in range(5):
            Y = rng.integers(0, 5, size=(n, d)).astype(float) if _ % 2 else rng.random((n, d)) * 4
            ref = np.full(d, 4.0)
            assert hypervolume(Y, ref) == pytest.approx(box_union_volume(Y, ref), rel=1e-12, abs=1e-12)


def test_hypervolume_3d_matches_monte_carlo():
    rng = np.random.default_rng(0)
    Y = rng.random((40, 3)) ** 0.5  # a front-heavy random set in [0, 1]^3
    ref = np.ones(3)
    samples = rng.random((200_000, 3))  # uniform in the box [0, ref], volume 1
    covered = np.zeros(len(samples), dtype=bool)
    for y in Y:
        covered |= np.all(samples >= y, axis=1)
    p = covered.mean()
    stderr = math.sqrt(p * (1 - p) / len(samples))
    # tolerance: 5 standard errors of the Monte Carlo estimate (about 0.005 here)
    assert abs(hypervolume(Y, ref) - p) < 5 * stderr


@pytest.mark.parametrize("d", [1, 2, 3])
def test_contributions_match_leave_one_out_on_the_front(d):
    rng = np.random.default_rng(10 + d)
    for Y in (rng.random((12, d)), rng.integers(0, 3, size=(12, d)).astype(float), rng.random((30, d))):
        ref = np.full(d, 1.5 if Y.max() <= 1 else 2.5)
        front = brute_mask(Y)
        F = Y[front]
        total = hypervolume(F, ref)
        expected = np.zeros(len(Y))
        expected[front] = [total - hypervolume(np.delete(F, i, axis=0), ref) for i in range(len(F))]
        np.testing.assert_allclose(hypervolume_contributions(Y, ref), expected, atol=1e-12)


def test_contributions_hand_worked():
    Y = np.array([[1, 3], [2, 2], [3, 1], [2, 2], [3, 3], [5, 0]], dtype=float)
    # (1,3): strip [1,2) x [3,4) = 1; (2,2) twice: 0 each; (3,1): [3,4) x [1,2) = 1; dominated / outside: 0
    np.testing.assert_allclose(hypervolume_contributions(Y, [4, 4]), [1, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(hypervolume_contributions(Y[:3], [4, 4]), [1, 1, 1])
    # (3,3) is dominated by (2,2) alone, but is ignored: it does not reduce (2,2)'s contribution
    np.testing.assert_allclose(hypervolume_contributions([[2, 2], [3, 3]], [4, 4]), [4, 0])


# -- reference point, normalization, minimization form --------------------------------------------


def test_default_reference_point():
    Y = np.array([[0, 5], [1, 3], [3, 1], [6, 0], [7, 7], [np.inf, -1]], dtype=float)
    # front of the finite rows: nadir (6, 5), ideal (0, 0); the dominated (7, 7) and the diverged row are left out
    np.testing.assert_allclose(default_reference_point(Y), [6.6, 5.5])
    np.testing.assert_allclose(default_reference_point(Y, margin=0.5), [9, 7.5])
    # a single point: margin * max(|nadir|, 1)
    np.testing.assert_allclose(default_reference_point([[2.0, 0.0]]), [2.2, 0.1])
    ref = default_reference_point(Y)
    assert np.all(Y[:5][nondominated_mask(Y[:5])] < ref)  # every front point counts
    with pytest.raises(ValueError, match="margin"):
        default_reference_point(Y, margin=0)
    with pytest.raises(ValueError, match="finite"):
        default_reference_point([[np.inf, 1.0]])


def test_normalize():
    Y = np.array([[0, 10], [5, 20]], dtype=float)
    np.testing.assert_allclose(normalize(Y, [0, 10], [10, 30]), [[0, 0], [0.5, 0.5]])
    np.testing.assert_allclose(normalize(Y, [0, 10], [0, 30]), [[0, 0], [5, 0.5]])  # zero width: shifted only
    with pytest.raises(ValueError, match="below"):
        normalize(Y, [1, 1], [0, 2])


def test_to_minimization():
    obj = Objectives(("acc", "time"), ("max", "min"))
    np.testing.assert_array_equal(to_minimization([[0.9, 10], [math.nan, 5]], obj), [[-0.9, 10], [np.inf, 5]])
    with pytest.raises(ValueError, match="one column per metric"):
        to_minimization([[1.0, 2.0, 3.0]], obj)


# -- Objectives ------------------------------------------------------------------------------------


def test_objectives_vector_in_minimization_form():
    obj = Objectives.from_args(["val_accuracy", "time"], ["max", "min"])
    assert obj.metrics == ("val_accuracy", "time") and obj.modes == ("max", "min")
    assert obj.is_multi and obj.signs == (-1.0, 1.0)
    assert obj.vector({"val_accuracy": 0.8, "time": 12, "epoch": 3}) == (-0.8, 12.0)
    assert obj.vector({"val_accuracy": math.nan, "time": math.nan}) == (math.inf, math.inf)
    single = Objectives.from_args("loss", "min")
    assert not single.is_multi and single.vector({"loss": 0.5}) == (0.5,)
    assert single.vector({"loss": 0.5}) == (metric_to_minimize({"loss": 0.5}, "loss", "min"),)


def test_objectives_missing_metric_is_the_single_metric_error():
    obj = Objectives.from_args(["val_accuracy", "time"], "max")
    result = {"val_accuracy": 0.8, "epoch": 1}
    with pytest.raises(UserError) as multi:
        obj.vector(result, trial_id=7)
    with pytest.raises(UserError) as single:
        metric_to_minimize(result, "time", "max", 7)
    assert str(multi.value) == str(single.value)
    assert "trial 7" in str(multi.value) and "'time'" in str(multi.value)
    with pytest.raises(UserError, match="not a number"):
        obj.vector({"val_accuracy": "high", "time": 1})


def test_objectives_from_args_and_json():
    assert Objectives.from_args(("a", "b", "c"), "max").modes == ("max", "max", "max")
    assert Objectives.from_args(("a", "b"), ["min"]).modes == ("min", "min")
    obj = Objectives.from_args(["a", "b"], ["max", "min"])
    assert Objectives.from_args(**obj.to_json()) == obj
    assert Objectives(["a", "b"], ["max", "min"]) == obj  # lists are stored as tuples
    assert hash(obj) == hash(Objectives(("a", "b"), ("max", "min")))


@pytest.mark.parametrize(
    ("metric", "mode", "message"),
    [
        ([], "min", "no metric given"),
        (["a", "b"], ["min", "max", "min"], "2 metrics .* but 3 modes"),
        (["a", "b", "c"], ["min", "max"], "give one mode for all metrics or one per metric"),
        (["a", "b"], ["min", "maximize"], "mode 'maximize' of metric 'b'"),
        (["a", "b", "a"], "min", "metric 'a' is given twice"),
        (["a", ""], "min", "non-empty string"),
        (None, "min", "metric is not given"),
        ("a", None, "mode is not given"),
    ],
)
def test_objectives_validation(metric, mode, message):
    with pytest.raises(UserError, match=message) as err:
        Objectives.from_args(metric, mode)
    assert isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)


def test_metric_to_minimize_keeps_its_old_import_path():
    from tunebench.schedulers.fifo import metric_to_minimize as old

    assert old is metric_to_minimize
