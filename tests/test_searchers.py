"""Random and grid searchers."""

from __future__ import annotations

import json

import pytest

from tunebench.searchers import GridSearcher, RandomSearcher, Searcher
from tunebench.searchers.random import canonical_config
from tunebench.space import choice, grid_configs, hyperparameters, loguniform, randint, uniform

SPACE = {"lr": loguniform(1e-4, 1e-1), "width": randint(8, 64), "act": choice(["relu", "tanh"]), "epochs": 9}


def inside(config: dict, space: dict) -> bool:
    domains = hyperparameters(space)
    return set(config) == set(space) and all(
        domains[k].contains(v) if k in domains else v == space[k] for k, v in config.items()
    )


# -- random ---------------------------------------------------------------------------------------


def test_random_samples_inside_space_with_constants() -> None:
    searcher = RandomSearcher(SPACE, "loss", seed=0)
    assert isinstance(searcher, Searcher)
    configs = [searcher.suggest(i) for i in range(50)]
    assert all(inside(c, SPACE) for c in configs)
    assert all(c["epochs"] == 9 for c in configs)
    assert len({canonical_config(c) for c in configs}) == 50


def test_random_points_to_evaluate_first_and_completed() -> None:
    points = [{"lr": 0.01}, {"lr": 0.001, "act": "tanh", "width": 32}]
    searcher = RandomSearcher(SPACE, "loss", seed=0, points_to_evaluate=points)
    first, second = searcher.suggest(0), searcher.suggest(1)
    assert first["lr"] == 0.01 and inside(first, SPACE) and first["epochs"] == 9
    assert second == {"lr": 0.001, "width": 32, "act": "tanh", "epochs": 9}
    assert list(first) == list(SPACE)  # key order of the space
    third = searcher.suggest(2)
    assert inside(third, SPACE) and third not in (first, second)


def test_random_points_to_evaluate_unknown_key() -> None:
    with pytest.raises(ValueError, match="not in the config space: depth"):
        RandomSearcher(SPACE, "loss", points_to_evaluate=[{"depth": 3}])


def test_random_avoids_duplicates_then_allows_them() -> None:
    space = {"a": choice([1, 2, 3]), "b": 0}
    searcher = RandomSearcher(space, "loss", seed=0, max_retries=20)
    first = [searcher.suggest(i)["a"] for i in range(3)]
    assert sorted(first) == [1, 2, 3]  # each value once before any repeat
    assert searcher.suggest(3)["a"] in (1, 2, 3)  # exhausted: a duplicate, no endless loop


def test_random_same_seed_same_sequence_other_seed_differs() -> None:
    a = [RandomSearcher(SPACE, "loss", seed=1).suggest(i) for i in range(1)]
    b = [RandomSearcher(SPACE, "loss", seed=1).suggest(i) for i in range(1)]
    c = [RandomSearcher(SPACE, "loss", seed=2).suggest(i) for i in range(1)]
    assert a == b and a != c


def test_random_state_roundtrip() -> None:
    searcher = RandomSearcher(SPACE, "loss", seed=3, points_to_evaluate=[{"lr": 0.01}, {"lr": 0.02}])
    searcher.suggest(0)
    for i in range(1, 5):
        searcher.suggest(i)
    state = json.loads(json.dumps(searcher.state_dict()))
    fresh = RandomSearcher(SPACE, "loss", seed=3, points_to_evaluate=[{"lr": 0.01}, {"lr": 0.02}])
    fresh.load_state_dict(state)
    assert fresh.state_dict() == searcher.state_dict()
    assert [fresh.suggest(i) for i in range(5, 10)] == [searcher.suggest(i) for i in range(5, 10)]

    # a snapshot taken while points remain resumes at the right point
    early = RandomSearcher(SPACE, "loss", seed=3, points_to_evaluate=[{"lr": 0.01}, {"lr": 0.02}])
    early.suggest(0)
    fresh = RandomSearcher(SPACE, "loss", seed=3, points_to_evaluate=[{"lr": 0.01}, {"lr": 0.02}])
    fresh.load_state_dict(json.loads(json.dumps(early.state_dict())))
    assert fresh.suggest(1)["lr"] == 0.02


def test_random_invalid_mode() -> None:
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        RandomSearcher(SPACE, "loss", mode="minimize")


# -- grid -----------------------------------------------------------------------------------------


def test_grid_walks_every_point_then_none() -> None:
    space = {"x": uniform(0.0, 1.0), "act": choice(["relu", "tanh"]), "epochs": 3}
    searcher = GridSearcher(space, "loss", "min", n_points=3)
    expected = grid_configs(space, n_points=3)
    assert len(searcher) == len(expected) == 6
    got = [searcher.suggest(i) for i in range(6)]
    assert got == expected and all(inside(c, space) for c in got)
    state = searcher.state_dict()
    assert searcher.suggest(6) is None
    assert searcher.suggest(7) is None
    assert searcher.state_dict() == state  # returning None changes nothing


def test_grid_shuffle_is_a_seeded_permutation() -> None:
    space = {"x": uniform(0.0, 1.0), "y": randint(1, 4)}
    plain = [GridSearcher(space, "loss", "min", n_points=4).suggest(0)]
    a = GridSearcher(space, "loss", "min", seed=1, n_points=4, shuffle=True)
    b = GridSearcher(space, "loss", "min", seed=1, n_points=4, shuffle=True)
    seq_a = [a.suggest(i) for i in range(len(a))]
    seq_b = [b.suggest(i) for i in range(len(b))]
    assert seq_a == seq_b
    everything = grid_configs(space, n_points=4)
    assert sorted(map(canonical_config, seq_a)) == sorted(map(canonical_config, everything))
    assert seq_a != everything and plain[0] == everything[0]
    assert a.suggest(len(a)) is None


def test_grid_state_roundtrip() -> None:
    space = {"x": uniform(0.0, 1.0)}
    searcher = GridSearcher(space, "loss", "min", seed=0, n_points=5, shuffle=True)
    searcher.suggest(0)
    searcher.suggest(1)
    fresh = GridSearcher(space, "loss", "min", seed=0, n_points=5, shuffle=True)
    fresh.load_state_dict(json.loads(json.dumps(searcher.state_dict())))
    assert [fresh.suggest(i) for i in range(2, 6)] == [searcher.suggest(i) for i in range(2, 6)]


def test_grid_invalid_n_points() -> None:
    with pytest.raises(ValueError, match="n_points"):
        GridSearcher({"x": uniform(0.0, 1.0)}, "loss", "min", n_points=0)
