"""Tests of the config-space language (tunebench.space)."""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from tunebench.errors import SpaceError
from tunebench.space import (
    Choice,
    Domain,
    FiniteRange,
    Float,
    Integer,
    Ordinal,
    SpaceEncoder,
    add_to_argparse,
    choice,
    config_to_argv,
    constants,
    decode_configs,
    default_config,
    encode_configs,
    encoded_dim,
    finrange,
    get_encoder,
    grid_configs,
    hyperparameters,
    load_space_file,
    logfinrange,
    lograndint,
    loguniform,
    ordinal,
    randint,
    sample_config,
    sample_configs,
    space_from_json,
    space_to_json,
    uniform,
    validate_space,
)

# One of every kind of domain, with awkward cases (negative bounds, degenerate ranges,
# mixed categories, strings that look like options).
DOMAINS: dict[str, Domain] = {
    "uniform": uniform(-2.5, 3.0),
    "uniform_point": uniform(1.0, 1.0),
    "loguniform": loguniform(1e-5, 1e-1),
    "randint": randint(-3, 7),
    "randint_point": randint(4, 4),
    "lograndint": lograndint(1, 1000),
    "lograndint_far": lograndint(16, 512),
    "choice_str": choice(["relu", "tanh", "-x", "with space"]),
    "choice_int": choice([8, 16, 32]),
    "choice_float": choice([0.1, 0.5, 1]),
    "choice_bool": choice([True, False]),
    "choice_mixed": choice(["auto", 3, 0.5, True]),
    "choice_one": choice(["only"]),
    "ordinal_int": ordinal([1, 2, 4, 8]),
    "ordinal_str": ordinal(["small", "medium", "large"]),
    "finrange": finrange(0.0, 1.0, 5),
    "finrange_neg": finrange(-1.0, 1.0, 4),
    "finrange_int": finrange(0, 100, 11, cast_int=True),
    "finrange_one": finrange(2.0, 2.0, 1),
    "logfinrange": logfinrange(1e-4, 1.0, 5),
    "logfinrange_int": logfinrange(1, 4, 4, cast_int=True),
}
DOMAIN_IDS = list(DOMAINS)

CONSTANTS = {"epochs": 27, "rate": 0.5, "name": "run", "flag": False, "nothing": None, "neg": -3}


def full_space() -> dict:
    space: dict = {}
    for name, dom in DOMAINS.items():
        space[name] = dom
        if name == "uniform":
            space.update(CONSTANTS)  # constants in the middle: key order must be kept
    return space


def values_equal(domain: Domain, a: list, b: list) -> bool:
    """Exact equality with types, except floats of Float domains (rounding, rel 1e-12)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if type(x) is not type(y):
            return False
        if isinstance(domain, Float):
            if not math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-300):
                return False
        elif x != y:
            return False
    return True


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("name", DOMAIN_IDS)
def test_sample_within_domain_and_native(name):
    dom = DOMAINS[name]
    values = dom.sample(np.random.default_rng(0), 500)
    assert isinstance(values, list) and len(values) == 500
    for v in values:
        assert dom.contains(v), (dom, v)
        assert not isinstance(v, np.generic)
        assert type(v) in (float, int, str, bool)
    if isinstance(dom, (Float, Integer, FiniteRange)):
        assert all(type(v) is dom.value_type for v in values)
    if isinstance(dom, (Float, Integer, FiniteRange)):
        assert all(dom.low <= v <= dom.high for v in values)
    json.dumps(values, allow_nan=False)


@pytest.mark.parametrize("name", DOMAIN_IDS)
def test_sample_one_matches_batch_of_one(name):
    dom = DOMAINS[name]
    one = [dom._sample_one(np.random.default_rng(7))]
    batch = dom.sample(np.random.default_rng(7), 1)
    assert values_equal(dom, one, batch)


def test_seeded_sampling_is_reproducible():
    space = full_space()
    a = sample_configs(space, np.random.default_rng(42), 20)
    b = sample_configs(space, np.random.default_rng(42), 20)
    c = sample_configs(space, np.random.default_rng(43), 20)
    assert a == b
    assert a != c
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    assert [sample_config(space, r1) for _ in range(10)] == [sample_config(space, r2) for _ in range(10)]


def test_sampled_configs_keep_key_order_constants_and_dump_to_json():
    space = full_space()
    configs = sample_configs(space, np.random.default_rng(1), 50) + [sample_config(space, np.random.default_rng(2))]
    for config in configs:
        assert list(config) == list(space)
        for key, value in CONSTANTS.items():
            assert config[key] == value and type(config[key]) is type(value)
        for key, dom in hyperparameters(space).items():
            assert dom.contains(config[key])
    assert json.loads(json.dumps(configs, allow_nan=False)) == configs
    assert sample_configs(space, np.random.default_rng(0), 0) == []
    assert sample_configs({}, np.random.default_rng(0), 3) == [{}, {}, {}]


@pytest.mark.parametrize(
    "dom, counts_of",
    [
        (randint(0, 9), lambda v: v),
        (randint(-2, 2), lambda v: v + 2),
        (ordinal(["a", "b", "c", "d", "e"]), "abcde".index),
        (choice(["x", "y", "z"]), "xyz".index),
        (finrange(0, 30, 4, cast_int=True), lambda v: v // 10),
    ],
)
def test_discrete_domains_give_every_value_equal_mass(dom, counts_of):
    n = 30_000
    values = dom.sample(np.random.default_rng(3), n)
    k = len(dom.grid(10_000))
    counts = np.bincount([counts_of(v) for v in values], minlength=k)
    assert len(counts) == k
    expected = n / k
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # loose: the 99.9% quantile of chi2 with <= 9 dof is ~27.9
    assert chi2 < 30, counts
    # and the encoding gives each value exactly the same share of [0, 1]
    grid = (np.arange(10_000 * k) + 0.5) / (10_000 * k)
    decoded = dom.decode(grid[:, None]) if dom.encoded_dim == 1 else None
    if decoded is not None:
        shares = np.bincount([counts_of(v) for v in decoded], minlength=k)
        assert (shares == 10_000).all()


def test_lograndint_shares_are_log_widths():
    dom = lograndint(1, 8)
    m = 200_000
    decoded = dom.decode(((np.arange(m) + 0.5) / m)[:, None])
    counts = np.bincount(decoded, minlength=9)[1:]
    expected = np.log(np.arange(2, 10) / np.arange(1, 9)) / np.log(9) * m
    assert np.allclose(counts, expected, atol=2)


@pytest.mark.parametrize(
    "dom, geo_mid",
    [
        (loguniform(1e-4, 1.0), 1e-2),
        (loguniform(1.0, 1e6), 1e3),
        (lograndint(1, 9999), 100.0),
        (logfinrange(1e-3, 1e3, 7), 1.0),
    ],
)
def test_log_domains_sample_log_uniformly(dom, geo_mid):
    values = np.asarray(dom.sample(np.random.default_rng(11), 20_000), dtype=float)
    median = float(np.median(values))
    assert abs(math.log10(median) - math.log10(geo_mid)) < 0.1, median
    # the quartiles are (roughly) a quarter of the log range away from the midpoint
    span = math.log10(dom.high) - math.log10(dom.low)
    q1, q3 = np.log10(np.quantile(values, [0.25, 0.75]))
    if not isinstance(dom, FiniteRange):
        assert abs((q3 - q1) - span / 2) < 0.05 * span


def test_uniform_median_near_midpoint():
    values = uniform(-2.0, 6.0).sample(np.random.default_rng(0), 20_000)
    assert abs(float(np.median(values)) - 2.0) < 0.1


# --------------------------------------------------------------------------- encode / decode


@pytest.mark.parametrize("name", DOMAIN_IDS)
def test_encode_decode_round_trip(name):
    dom = DOMAINS[name]
    values = dom.sample(np.random.default_rng(1), 300) + dom.grid(7) + [dom.default()]
    X = dom.encode(values)
    assert X.shape == (len(values), dom.encoded_dim)
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert values_equal(dom, dom.decode(X), values)


@pytest.mark.parametrize("name", DOMAIN_IDS)
def test_random_unit_points_decode_encode_decode_is_stable(name):
    dom = DOMAINS[name]
    U = np.random.default_rng(2).random((400, dom.encoded_dim))
    first = dom.decode(U)
    assert all(dom.contains(v) for v in first)
    second = dom.decode(dom.encode(first))
    assert values_equal(dom, second, first)


@pytest.mark.parametrize("name", DOMAIN_IDS)
def test_decode_clips_points_outside_the_cube(name):
    dom = DOMAINS[name]
    X = np.array([[-5.0] * dom.encoded_dim, [7.0] * dom.encoded_dim])
    assert all(dom.contains(v) for v in dom.decode(X))


@pytest.mark.parametrize("dom", [uniform(0.1, 0.7), loguniform(1e-4, 0.3), uniform(-3.3, -1.1)])
def test_float_bounds_decode_exactly(dom):
    assert dom.decode(np.array([[0.0], [1.0], [-1.0], [2.0]])) == [dom.low, dom.high, dom.low, dom.high]
    assert dom.decode(dom.encode([dom.low, dom.high])) == [dom.low, dom.high]


def test_int_encoding_is_the_centre_of_each_share():
    dom = randint(2, 5)
    assert np.allclose(dom.encode([2, 3, 4, 5])[:, 0], [0.125, 0.375, 0.625, 0.875])
    assert np.allclose(ordinal(["a", "b"]).encode(["a", "b"])[:, 0], [0.25, 0.75])
    assert np.allclose(uniform(-1, 1).encode([-1, 0, 1])[:, 0], [0.0, 0.5, 1.0])
    assert np.allclose(loguniform(1, 100).encode([1, 10, 100])[:, 0], [0.0, 0.5, 1.0])


def test_choice_is_one_hot_and_decodes_by_argmax():
    dom = choice(["a", "b", "c"])
    assert dom.encoded_dim == 3
    X = dom.encode(["b", "a", "c", "b"])
    assert X.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert dom.decode(np.array([[0.1, 0.7, 0.2], [0.9, 0.0, 0.95], [0.3, 0.3, 0.1]])) == ["b", "c", "a"]
    with pytest.raises(SpaceError, match="not one of the categories"):
        dom.encode(["d"])
    with pytest.raises(SpaceError, match="shape"):
        dom.decode(np.zeros((2, 2)))


def test_ordinal_decode_follows_the_order():
    dom = ordinal([1, 2, 4, 8])
    decoded = dom.decode(np.linspace(0, 1, 101)[:, None])
    assert decoded == sorted(decoded) and set(decoded) == {1, 2, 4, 8}


def test_finrange_values_and_nearest_encoding():
    assert finrange(0, 1, 5).values == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert finrange(0, 100, 3, cast_int=True).values == (0, 50, 100)
    assert logfinrange(1, 1000, 4).values == pytest.approx((1, 10, 100, 1000))
    assert logfinrange(1, 1000, 4).values[0] == 1.0 and logfinrange(1, 1000, 4).values[-1] == 1000.0
    assert logfinrange(1, 4, 4, cast_int=True).values == (1, 2, 3, 4)
    dom = finrange(0, 1, 5)
    # a value off the grid by float noise encodes like its grid value
    assert dom.decode(dom.encode([0.25000000001, 0.7499999])) == [0.25, 0.75]
    assert dom.contains(0.25) and not dom.contains(0.3)


def test_space_encoding_skips_constants_and_adds_them_back():
    space = {"a": uniform(0, 1), "c": 3, "b": choice(["x", "y", "z"]), "d": randint(1, 4)}
    assert encoded_dim(space) == 5
    enc = get_encoder(space)
    assert enc is get_encoder(dict(space))  # cached
    assert enc.slices == {"a": slice(0, 1), "b": slice(1, 4), "d": slice(4, 5)}
    configs = sample_configs(space, np.random.default_rng(0), 50)
    X = encode_configs(space, [dict(c, extra="ignored") for c in configs])
    assert X.shape == (50, 5)
    back = decode_configs(space, X)
    assert [list(c) for c in back] == [list(space)] * 50
    for c, b in zip(configs, back, strict=True):
        assert b["c"] == 3 and b["b"] == c["b"] and b["d"] == c["d"]
        assert b["a"] == pytest.approx(c["a"], rel=1e-12)
    assert encode_configs(space, []).shape == (0, 5)
    assert decode_configs(space, np.zeros((0, 5))) == []
    assert SpaceEncoder(space).decode(X) == back


def test_space_encoding_errors_name_the_parameter():
    space = {"a": uniform(0, 1), "b": choice(["x", "y"])}
    with pytest.raises(SpaceError, match="config 1 has no value for parameter 'b'"):
        encode_configs(space, [{"a": 0.1, "b": "x"}, {"a": 0.2}])
    with pytest.raises(SpaceError, match="parameter 'b'.*'w' is not one of the categories"):
        encode_configs(space, [{"a": 0.1, "b": "w"}])
    with pytest.raises(SpaceError, match="parameter 'a'"):
        encode_configs(space, [{"a": "zzz", "b": "x"}])
    with pytest.raises(SpaceError, match=r"expected \(n, 3\)"):
        decode_configs(space, np.zeros((4, 2)))
    with pytest.raises(SpaceError, match="non-finite"):
        decode_configs(space, np.full((1, 3), np.nan))


# --------------------------------------------------------------------------- validation


INVALID_SPECS = [
    ({"type": "uniform", "low": 5, "high": 1}, r"uniform: low \(5\) must be <= high \(1\)"),
    ({"type": "randint", "low": 10, "high": 1}, r"randint: low \(10\) must be <= high \(1\)"),
    ({"type": "finrange", "low": 3.0, "high": 1.0, "size": 3}, r"finrange: low \(3\.0\) must be <= high \(1\.0\)"),
    ({"type": "loguniform", "low": 0, "high": 1}, "loguniform needs low > 0, got 0; use uniform for ranges"),
    ({"type": "loguniform", "low": -1.0, "high": 1}, "loguniform needs low > 0, got -1.0"),
    ({"type": "uniform", "log": True, "low": 0, "high": 1}, "loguniform needs low > 0"),
    ({"type": "lograndint", "low": 0, "high": 10}, "lograndint needs low > 0, got 0; use randint"),
    ({"type": "randint", "log": True, "low": -5, "high": 10}, "lograndint needs low > 0"),
    ({"type": "logfinrange", "low": 0.0, "high": 1.0, "size": 3}, "logfinrange needs low > 0"),
    ({"type": "choice", "categories": []}, "choice: categories must not be empty"),
    ({"type": "ordinal", "values": []}, "ordinal: categories must not be empty"),
    ({"type": "choice", "categories": ["a", "b", "a"]}, "duplicate category 'a'"),
    ({"type": "ordinal", "categories": [1, 2, 1.0]}, r"duplicate category 1\.0 \(equal to 1\)"),
    ({"type": "choice", "categories": [1, True]}, "duplicate category True"),
    ({"type": "choice", "categories": ["1", 1]}, "both written '1' on the command line"),
    ({"type": "choice", "categories": [[1, 2]]}, "must be a str, int, float or bool"),
    ({"type": "choice", "categories": "abc"}, "categories must be a list"),
    ({"type": "finrange", "low": 0, "high": 1, "size": 0}, "finrange: size must be >= 1, got 0"),
    ({"type": "finrange", "low": 0, "high": 1, "size": 2.5}, "size must be an integer"),
    ({"type": "finrange", "low": 1, "high": 3, "size": 5, "cast_int": True}, "repeated values with cast_int"),
    ({"type": "finrange", "low": 1, "high": 1, "size": 3}, "repeated values; use size 1"),
    ({"type": "finrange", "low": 0.5, "high": 3, "size": 2, "cast_int": True}, "cast_int=True needs integer"),
    ({"type": "uniform", "low": 0, "high": math.inf}, "high must be finite"),
    ({"type": "uniform", "low": math.nan, "high": 1}, "low must be finite"),
    ({"type": "uniform", "low": "abc", "high": 1}, "low must be a number"),
    ({"type": "uniform", "low": True, "high": 1}, "low must be a number"),
    ({"type": "randint", "low": 1.5, "high": 4}, "randint: low must be an integer, got 1.5"),
    ({"type": "lograndint", "low": 1, "high": 9.9}, "lograndint: high must be an integer"),
    ({"type": "normal", "low": 0, "high": 1}, "unknown type 'normal'; valid types: uniform, loguniform, randint"),
    ({"low": 0, "high": 1}, "unknown type None; valid types:"),
    ({"type": "uniform", "low": 0, "hi": 1}, "unexpected key.*'hi'.*allowed: high, log, low"),
    ({"type": "uniform", "low": 0}, "uniform needs 'high'"),
    ({"type": "finrange", "low": 0, "high": 1}, "finrange needs 'size'"),
    ({"type": "choice"}, "choice needs 'categories'"),
    ({"type": "choice", "categories": [1], "values": [1]}, "not both"),
    ({"type": "uniform", "low": 0, "high": 1, "log": "yes"}, "'log' must be true or false"),
    ({"type": "loguniform", "low": 1, "high": 2, "log": False}, "contradicts 'log': false"),
    ({"type": "constant"}, "constant needs 'value'"),
    ({"type": "constant", "value": [1, 2]}, r"neither a domain nor a constant.*use choice\(\[1, 2\]\)"),
]


@pytest.mark.parametrize("spec, message", INVALID_SPECS, ids=[m[:40] for _, m in INVALID_SPECS])
def test_space_from_json_rejects_invalid_specs_naming_the_parameter(spec, message):
    with pytest.raises(SpaceError, match=message) as info:
        space_from_json({"ok": {"type": "uniform", "low": 0, "high": 1}, "my_param": spec})
    assert str(info.value).startswith("parameter 'my_param': ")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: uniform(5, 1), r"uniform: low \(5\) must be <= high \(1\); swap the bounds"),
        (lambda: loguniform(0, 1), "loguniform needs low > 0, got 0; use uniform for ranges that include 0"),
        (lambda: lograndint(0, 5), "lograndint needs low > 0, got 0; use randint"),
        (lambda: randint(1, 2.5), "must be an integer"),
        (lambda: randint(0, 2**60), r"within \+-2\*\*53"),
        (lambda: choice([]), "must not be empty"),
        (lambda: ordinal(["a", "a"]), "duplicate"),
        (lambda: choice({"a", "b"}), "sets have no fixed order"),
        (lambda: choice([1.0, math.nan]), "must be finite"),
        (lambda: finrange(0, 1, 0), "size must be >= 1"),
        (lambda: logfinrange(-1, 1, 3), "logfinrange needs low > 0"),
        (lambda: finrange(0, 1, 3, cast_int="yes"), "cast_int must be True or False"),
        (lambda: uniform(0, float("inf")), "must be finite"),
    ],
)
def test_domains_validate_at_construction(build, message):
    with pytest.raises(SpaceError, match=message):
        build()


def _corrupt(domain: Domain, **attrs) -> Domain:
    """Simulate a domain whose fields went bad after construction (validate_space re-checks)."""
    for key, value in attrs.items():
        object.__setattr__(domain, key, value)
    return domain


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda: _corrupt(uniform(0, 1), low=5.0), r"low \(5\.0\) must be <= high \(1\.0\)"),
        (lambda: _corrupt(loguniform(1, 2), low=0.0), "loguniform needs low > 0, got 0.0; use uniform"),
        (lambda: _corrupt(randint(0, 3), high=2.5), "must be an integer"),
        (lambda: _corrupt(choice(["a"]), categories=()), "must not be empty"),
        (lambda: _corrupt(finrange(0, 1, 3), size=0), "size must be >= 1"),
    ],
)
def test_validate_space_rechecks_domains_and_names_the_parameter(bad, message):
    with pytest.raises(SpaceError, match=message) as info:
        validate_space({"fine": randint(0, 3), "lr": bad()})
    assert str(info.value).startswith("parameter 'lr': ")


@pytest.mark.parametrize(
    "space, message",
    [
        ({"": uniform(0, 1)}, "non-empty strings"),
        ({3: uniform(0, 1)}, "non-empty strings, got 3"),
        ({"--lr": uniform(0, 1)}, "parameter '--lr'.*do not start with '-'"),
        ({"a b": 1}, "parameter 'a b'.*whitespace"),
        ({"lr": [0.1, 0.01]}, r"parameter 'lr'.*use choice\(\[0.1, 0.01\]\)"),
        ({"lr": np.float64(0.1)}, "parameter 'lr'.*use the Python value 0.1"),
        ({"lr": math.nan}, "parameter 'lr': constant nan must be finite"),
        ({"lr": {"low": 1}}, "parameter 'lr'"),
        ([("lr", uniform(0, 1))], "must be a dict"),
    ],
)
def test_validate_space_rejects_bad_names_and_constants(space, message):
    with pytest.raises(SpaceError, match=message):
        validate_space(space)


def test_validate_space_returns_the_space():
    space = full_space()
    assert validate_space(space) is space
    assert validate_space({}) == {}


# --------------------------------------------------------------------------- domain API


def test_value_types():
    assert uniform(0, 1).value_type is float
    assert loguniform(1, 2).value_type is float
    assert randint(0, 1).value_type is int
    assert lograndint(1, 2).value_type is int
    assert choice([1, 2]).value_type is int
    assert choice([1, 2.5]).value_type is float
    assert choice([True, False]).value_type is bool
    assert choice([True, 1.5]).value_type is str
    assert ordinal(["a", 1]).value_type is str
    assert finrange(0, 1, 3).value_type is float
    assert finrange(0, 10, 3, cast_int=True).value_type is int


def test_repr_eq_hash_pickle_and_immutability():
    assert repr(loguniform(1e-4, 0.1)) == "loguniform(0.0001, 0.1)"
    assert repr(randint(1, 5)) == "randint(1, 5)"
    assert repr(choice(["a", 1])) == "choice(['a', 1])"
    assert repr(ordinal([1, 2])) == "ordinal([1, 2])"
    assert repr(finrange(0, 1, 3)) == "finrange(0.0, 1.0, 3)"
    assert repr(logfinrange(1, 100, 3, cast_int=True)) == "logfinrange(1.0, 100.0, 3, cast_int=True)"
    assert uniform(0, 1) == uniform(0.0, 1.0) and hash(uniform(0, 1)) == hash(uniform(0.0, 1.0))
    assert uniform(0, 1) != loguniform(0.5, 1) and uniform(0, 1) != uniform(0, 2)
    assert randint(1, 5) != uniform(1, 5)
    assert choice([True, False]) != choice([1, 0])  # type-aware
    assert choice([1, 2]) != choice([1.0, 2.0])
    assert choice(["a", "b"]) != choice(["b", "a"]) and choice(["a"]) != ordinal(["a"])
    assert finrange(0, 10, 3) != finrange(0, 10, 3, cast_int=True)
    assert len({uniform(0, 1), uniform(0, 1), choice(["a"]), choice(["a"])}) == 2
    for dom in DOMAINS.values():
        assert pickle.loads(pickle.dumps(dom)) == dom
        assert copy.deepcopy(dom) == dom
    dom = uniform(0, 1)
    with pytest.raises(AttributeError):
        dom.low = 3.0  # type: ignore[misc]
    assert dom.low == 0.0


def test_defaults():
    assert uniform(-1, 3).default() == 1.0
    assert loguniform(1e-4, 1).default() == pytest.approx(1e-2)
    assert randint(1, 9).default() == 5
    assert lograndint(1, 100).default() == 10
    assert choice(["b", "a"]).default() == "b"
    assert ordinal(["s", "m", "l"]).default() == "m"
    assert finrange(0, 1, 5).default() == 0.5
    assert logfinrange(1, 10000, 5, cast_int=True).default() == 100
    assert uniform(2, 2).default() == 2.0


def test_default_config_lies_in_the_space():
    space = full_space()
    config = default_config(space)
    assert list(config) == list(space)
    for name, value in space.items():
        if isinstance(value, Domain):
            assert value.contains(config[name]), name
            assert not isinstance(config[name], np.generic)
        else:
            assert config[name] == value
    json.dumps(config, allow_nan=False)


@pytest.mark.parametrize(
    "dom, good, bad",
    [
        (uniform(0, 1), [("0.25", 0.25), (1, 1.0), ("1e-3", 0.001), (np.float32(0.5), 0.5)], ["abc", "nan", True]),
        (randint(0, 10), [("3", 3), (4.0, 4), ("5.0", 5), (np.int64(6), 6)], ["3.5", "x", 2.5, False]),
        (choice(["a", "b"]), [("a", "a"), ("b", "b")], ["c", "A", 1]),
        (choice([8, 16]), [("8", 8), ("16.0", 16), (16.0, 16)], ["9", "x"]),
        (choice([0.1, 1]), [("0.1", 0.1), ("1", 1), ("1.0", 1)], ["0.2"]),
        (choice([True, False]), [("True", True), ("false", False), ("1", True), ("0", False), (True, True)], ["yes"]),
        (choice(["auto", 3, True]), [("auto", "auto"), ("3", 3), ("True", True), ("true", True)], ["4", "False"]),
        (ordinal(["s", "m"]), [("m", "m")], ["x"]),
        (finrange(0, 1, 5), [("0.25", 0.25), (0.2500000000001, 0.25), ("0.3", 0.3)], ["x"]),
        (finrange(0, 10, 3, cast_int=True), [("5", 5), (10.0, 10)], ["5.5"]),
    ],
)
def test_cast(dom, good, bad):
    for raw, expected in good:
        out = dom.cast(raw)
        assert out == expected and type(out) is type(expected), (raw, out)
    for raw in bad:
        with pytest.raises(SpaceError):
            dom.cast(raw)


def test_contains():
    assert uniform(0, 1).contains(0.5) and not uniform(0, 1).contains(1.5) and not uniform(0, 1).contains("0.5")
    assert randint(0, 3).contains(2) and randint(0, 3).contains(2.0) and not randint(0, 3).contains(2.5)
    assert not randint(0, 3).contains(True)
    assert choice([True, False]).contains(True) and not choice([True, False]).contains(1)
    assert choice([1, 2]).contains(1) and not choice([1, 2]).contains(True) and not choice([1, 2]).contains([1])
    assert not choice(["1"]).contains(1)


# --------------------------------------------------------------------------- grids


def test_domain_grids():
    assert uniform(0, 1).grid(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert loguniform(1e-4, 1).grid(5) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1])
    assert loguniform(1e-4, 1).grid(5)[0] == 1e-4 and loguniform(1e-4, 1).grid(5)[-1] == 1.0
    assert uniform(0, 1).grid(1) == [0.5]
    assert randint(1, 3).grid(5) == [1, 2, 3]
    grid = randint(0, 100).grid(5)
    assert grid == [0, 25, 50, 75, 100]
    for n in range(1, 12):
        g = lograndint(1, 10).grid(n)
        assert len(g) <= n and len(set(g)) == len(g) and all(1 <= v <= 10 for v in g)
        g = randint(-7, 13).grid(n)
        assert len(g) == min(n, 21) and len(set(g)) == len(g)
    assert lograndint(1, 1000).grid(4) == [1, 10, 100, 1000]
    assert choice(["a", "b", "c"]).grid(2) == ["a", "b", "c"]
    assert ordinal([3, 1, 2]).grid(1) == [3, 1, 2]
    assert finrange(0, 1, 3).grid(10) == [0.0, 0.5, 1.0]
    assert uniform(2, 2).grid(4) == [2.0]
    with pytest.raises(SpaceError, match="n >= 1"):
        uniform(0, 1).grid(0)


def test_grid_configs_is_the_ordered_cartesian_product():
    space = {"a": uniform(0, 1), "fixed": "x", "b": choice([True, False]), "c": randint(1, 2)}
    grid = grid_configs(space, n_points=3)
    assert len(grid) == 3 * 2 * 2
    assert grid[0] == {"a": 0.0, "fixed": "x", "b": True, "c": 1}
    assert grid[1] == {"a": 0.0, "fixed": "x", "b": True, "c": 2}
    assert grid[-1] == {"a": 1.0, "fixed": "x", "b": False, "c": 2}
    assert len({json.dumps(c) for c in grid}) == len(grid)
    assert all(list(c) == list(space) for c in grid)
    assert grid_configs(space, n_points=3) == grid
    assert len(grid_configs(space)) == 5 * 2 * 2
    assert grid_configs({"k": 1}) == [{"k": 1}]
    part = {k: v for k, v in full_space().items() if k.startswith(("uniform", "randint", "choice_str", "finrange"))}
    expected = math.prod(len(d.grid(2)) for d in hyperparameters(part).values())
    assert expected > 100
    assert len(grid_configs(part, n_points=2)) == expected
    with pytest.raises(SpaceError, match="the grid has 1073741824 configurations"):
        grid_configs({f"p{i}": randint(0, 7) for i in range(10)}, n_points=8)


# --------------------------------------------------------------------------- JSON and files


def test_space_json_round_trip_with_every_domain_and_constants():
    space = full_space()
    as_json = space_to_json(space)
    assert as_json["lograndint"] == {"type": "lograndint", "low": 1, "high": 1000}
    assert as_json["loguniform"] == {"type": "loguniform", "low": 1e-5, "high": 1e-1}
    assert as_json["epochs"] == {"type": "constant", "value": 27}
    assert as_json["nothing"] == {"type": "constant", "value": None}
    back = space_from_json(json.loads(json.dumps(as_json, allow_nan=False)))
    assert back == space
    assert list(back) == list(space)
    for name, value in space.items():
        assert type(back[name]) is type(value)
        if isinstance(value, Choice | Ordinal):
            assert [type(c) for c in back[name].categories] == [type(c) for c in value.categories]


def test_space_from_json_friendly_forms():
    space = space_from_json(
        {
            "lr": {"type": "uniform", "low": "1e-4", "high": 0.1, "log": True},
            "units": {"type": "randint", "low": 16, "high": 256, "log": True},
            "drop": {"type": "uniform", "low": 0, "high": 0.5, "log": False},
            "act": {"type": "choice", "values": ["relu", "tanh"]},
            "size": {"type": "ordinal", "categories": ["s", "m"]},
            "w": {"type": "finrange", "low": 1, "high": 100, "size": 3, "log": True},
            "epochs": 10,
            "tag": {"type": "constant", "value": "v1"},
        }
    )
    assert space == {
        "lr": loguniform(1e-4, 0.1),
        "units": lograndint(16, 256),
        "drop": uniform(0, 0.5),
        "act": choice(["relu", "tanh"]),
        "size": ordinal(["s", "m"]),
        "w": logfinrange(1, 100, 3),
        "epochs": 10,
        "tag": "v1",
    }
    with pytest.raises(SpaceError, match="must be a mapping"):
        space_from_json([1, 2])


def test_load_space_file_json_and_yaml(tmp_path):
    expected = {"lr": loguniform(1e-4, 0.1), "units": lograndint(16, 256), "act": choice(["relu", "tanh"]), "ep": 27}
    js = tmp_path / "space.json"
    js.write_text(json.dumps(space_to_json(expected)))
    assert load_space_file(js) == expected
    assert load_space_file(str(js)) == expected
    yml = tmp_path / "space.yaml"
    yml.write_text(
        "# a space\n"
        "lr: {type: loguniform, low: 1e-4, high: 0.1}   # YAML reads 1e-4 as a string\n"
        "units:\n  type: randint\n  low: 16\n  high: 256\n  log: true\n"
        "act: {type: choice, values: [relu, tanh]}\n"
        "ep: 27\n"
    )
    loaded = load_space_file(yml)
    assert loaded == expected and list(loaded) == list(expected)
    other = tmp_path / "space.yml"
    other.write_text(yml.read_text())
    assert load_space_file(other) == expected


@pytest.mark.parametrize(
    "filename, text, message",
    [
        ("bad.json", '{\n  "lr": {"type": "uniform",\n  "low": 0 "high": 1}\n}', r"bad\.json:3:\d+: invalid JSON"),
        ("bad.yaml", "lr:\n  type: uniform\n low: [0\n", r"bad\.yaml:\d+:\d+: invalid YAML"),
        ("list.yaml", "- a\n- b\n", "top level must be a mapping name -> spec, got a list"),
        ("list.json", "[1, 2]", "top level must be a mapping.*got a list"),
        ("empty.yml", "", "got an empty file"),
        ("space.toml", "lr = 1", "unknown extension '.toml'; use .json, .yaml or .yml"),
        ("p.yaml", "lr: {type: loguniform, low: 0, high: 1}\n", r"p\.yaml: parameter 'lr': loguniform needs low > 0"),
        ("t.json", '{"opt": {"type": "gaussian"}}', "parameter 'opt': unknown type 'gaussian'; valid types"),
    ],
)
def test_load_space_file_errors(tmp_path, filename, text, message):
    path = tmp_path / filename
    path.write_text(text)
    with pytest.raises(SpaceError, match=message):
        load_space_file(path)


def test_load_space_file_missing(tmp_path):
    with pytest.raises(SpaceError, match=r"space file .*nope\.json does not exist"):
        load_space_file(tmp_path / "nope.json")


# --------------------------------------------------------------------------- command line


def _parse(space: dict, argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_to_argparse(parser, space)
    return vars(parser.parse_args(argv))


def test_config_to_argv_format():
    argv = config_to_argv({"lr": 0.01, "n_units": 64, "flag": True, "act": "relu", "off": False, "x": None})
    assert argv == [
        *("--lr", "0.01", "--n_units", "64", "--flag", "True"),
        *("--act", "relu", "--off", "False", "--x", "None"),
    ]
    assert config_to_argv({"a": 0.1 + 0.2}) == ["--a", "0.30000000000000004"]
    assert config_to_argv({"a": np.float64(1e-5), "b": np.int64(3), "c": np.bool_(True)}) == [
        "--a",
        "1e-05",
        "--b",
        "3",
        "--c",
        "True",
    ]
    assert config_to_argv({"a": -1.5, "s": "-x", "t": ""}) == ["--a=-1.5", "--s=-x", "--t", ""]
    with pytest.raises(SpaceError, match="parameter 'a'.*cannot write"):
        config_to_argv({"a": [1, 2]})


def test_argparse_round_trip_for_every_domain_type():
    space = full_space()
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_to_argparse(parser, space)
    defaults = default_config(space)
    configs = sample_configs(space, np.random.default_rng(9), 100) + [defaults]
    # every value of every discrete domain (bool, str, mixed categories, finrange values)
    configs += [defaults | {name: v} for name, dom in hyperparameters(space).items() for v in dom.grid(5)]
    configs += [defaults | {"neg": -10**20, "rate": -0.0, "name": "--tricky", "nothing": None}]
    for config in configs:
        parsed = vars(parser.parse_args(config_to_argv(config)))
        assert parsed == config
        assert all(type(parsed[k]) is type(config[k]) for k in config), config
    assert _parse(space, []) == defaults


def test_argparse_defaults_types_and_help():
    space = {
        "lr": loguniform(1e-4, 0.1),
        "n_units": lograndint(16, 256),
        "use_bn": choice([True, False]),
        "epochs": 27,
        "debug": False,
        "pct": choice(["10%", "20%"]),
    }
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_to_argparse(parser, space)
    args = parser.parse_args([])
    assert vars(args) == default_config(space)
    args = parser.parse_args(["--lr", "0.01", "--n_units", "64", "--epochs", "3", "--use_bn", "false", "--debug", "1"])
    assert args.lr == 0.01 and args.n_units == 64 and args.epochs == 3
    assert args.use_bn is False and args.debug is True
    text = parser.format_help()
    assert "--n_units" in text and "lograndint(16, 256)" in text and "10%" in text
    for value in ("True", "true", "1"):
        assert parser.parse_args(["--debug", value]).debug is True
    for value in ("False", "false", "0"):
        assert parser.parse_args(["--debug", value]).debug is False
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["--n_units", "6.5"])
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["--use_bn", "maybe"])


def test_add_to_argparse_rejects_conflicting_options():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float)
    with pytest.raises(SpaceError, match="parameter 'lr'"):
        add_to_argparse(parser, {"lr": uniform(0, 1)})


def test_hyperparameters_and_constants_partition_the_space():
    space = full_space()
    hp, const = hyperparameters(space), constants(space)
    assert list(hp) == [k for k in space if k not in CONSTANTS]
    assert const == CONSTANTS and list(const) == list(CONSTANTS)
    assert all(isinstance(v, Domain) for v in hp.values())
    assert isinstance(DOMAINS["randint"], Integer) and isinstance(DOMAINS["finrange"], FiniteRange)


# --------------------------------------------------------------------------- package layout


# What a training script runs to parse its arguments: every constructor, add_to_argparse, the
# checks, JSON and the defaults, and then numpy must still be unloaded.
TRAINING_SCRIPT = """
import argparse, sys
from tunebench.space import (add_to_argparse, choice, config_to_argv, default_config, finrange,
    logfinrange, lograndint, loguniform, ordinal, randint, space_from_json, space_to_json, uniform,
    validate_space)
space = {"lr": loguniform(1e-4, 1e-1), "drop": uniform(0, 0.5), "units": lograndint(16, 512),
         "layers": randint(1, 4), "act": choice(["relu", "tanh"]), "bs": ordinal([32, 64, 128]),
         "mom": finrange(0.5, 0.9, 5), "wd": logfinrange(1e-5, 1e-1, 5), "epochs": 27}
space = space_from_json(space_to_json(validate_space(space)))
parser = argparse.ArgumentParser()
add_to_argparse(parser, space)
argv = config_to_argv({"lr": 0.01, "units": 64, "act": "tanh", "bs": 128, "mom": 0.6, "wd": 1e-3})
args = parser.parse_args(argv)
assert (args.lr, args.units, args.act, args.bs, args.mom, args.epochs) == (0.01, 64, "tanh", 128, 0.6, 27), args
assert args.wd == space["wd"].values[2] and space["wd"].contains(args.wd), args.wd
assert vars(parser.parse_args([])) == default_config(space)
assert "numpy" not in sys.modules, "numpy was imported"
print("ok")
"""


def test_training_script_path_imports_no_numpy():
    proc = subprocess.run([sys.executable, "-c", TRAINING_SCRIPT], capture_output=True, text=True,
                          env=dict(os.environ), timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_array_names_are_loaded_on_first_use():
    import tunebench.space as space
    from tunebench.space import encoding

    assert space.SpaceEncoder is encoding.SpaceEncoder and space.get_encoder is encoding.get_encoder
    for name in space.__all__:
        assert getattr(space, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        space.nothing_here  # noqa: B018


def test_finrange_values_are_those_of_numpy_spacing():
    """Built without numpy, the values are numpy.linspace's (exactly) and, for logfinrange, the
    exponentials of its log-spaced points (to the last bit, up to the exp implementation)."""
    for low, high, size in [(0.0, 1.0, 5), (-3.3, 7.1, 9), (0.5, 0.99, 4), (2.0, 2.0, 1), (1e-5, 0.1, 50)]:
        expected = np.linspace(low, high, size)
        expected[0], expected[-1] = low, high
        assert finrange(low, high, size).values == tuple(expected.tolist())
    for low, high, size in [(1e-4, 1e-1, 10), (1.0, 1000.0, 4), (0.02, 9000.0, 44)]:
        expected = np.exp(np.linspace(math.log(low), math.log(high), size))
        expected[0], expected[-1] = low, high
        values = np.array(logfinrange(low, high, size).values)
        assert np.all(np.abs(values - expected) <= np.spacing(expected))
    assert finrange(0, 10, 4, cast_int=True).values == (0, 3, 7, 10)  # 3.33, 6.67 rounded
    assert finrange(0, 5, 3, cast_int=True).values == (0, 2, 5)  # 2.5 rounds half to even


@pytest.mark.parametrize("dom", [finrange(-1.0, 1.0, 7), logfinrange(1e-3, 10.0, 9),
                                 finrange(0, 100, 11, cast_int=True), finrange(2.0, 2.0, 1)], ids=repr)
def test_finrange_nearest_value_one_at_a_time_matches_batches(dom):
    """cast/contains (plain Python, one value) and encode (numpy, a batch) snap to the same value:
    the nearest one (in log space for logfinrange), the lower one on a tie."""
    xs = np.random.default_rng(3).uniform(dom.low, dom.high, 400).tolist()
    xs += list(dom.values) + [dom.low - 1.0, dom.high + 1.0]
    if len(dom.values) > 1 and not dom.log:
        xs.append((dom.values[0] + dom.values[1]) / 2)  # a tie
    t = math.log if dom.log else float
    batch = dom.decode(dom.encode(xs))
    for x, got in zip(xs, batch, strict=True):
        clipped = min(max(x, dom.low), dom.high)
        ref = min(dom.values, key=lambda v: (abs(t(clipped) - t(v)), v))
        assert got == ref and dom._nearest_value(x) == ref, (x, got, ref)
        assert dom.cast(ref) == ref and dom.contains(ref)
