"""User priors over a config space: where an expert believes the good configurations are.

A prior gives some hyperparameters a distribution over their domain; the others stay uniform.
It is read from a mapping (a YAML or JSON file, ``--prior FILE``) of hyperparameter name ->
one of::

    learning_rate: {value: 0.01, confidence: medium}   # low | medium | high | a number in (0, 1]
    num_layers: 3                                        # a bare value: confidence medium
    batch_size: {dist: normal, mean: 64, std: 0.2}       # mean: a value; std: in the unit scale
    momentum: {dist: beta, a: 2, b: 5}                   # Beta(a, b) on the unit interval
    optimizer: {probs: {adam: 0.7, sgd: 0.2}}            # the rest spread evenly over the others

As in NePS / PriorBand (Mallik et al. 2023), every distribution lives in the encoded unit space
of :mod:`tunebench.space` (the log domain for log parameters): a value with a confidence is a
normal centred at the value's encoding, truncated to ``[0, 1]``, with standard deviation
``2 ** (-3 c)``: ``low`` (``c = 1/3``) 0.5, ``medium`` (``c = 2/3``) 0.25, ``high``
(``c = 1``) 0.125. A categorical (``choice``) value with confidence ``c`` gets the weight
``max(1, 6 c)`` (``low`` 2, ``medium`` 4, ``high`` 6) against 1 for each other category.
Integer, ordinal and ``finrange`` parameters are numeric here (one unit column): samples are
decoded to the nearest value, densities are read at a value's encoding.

:meth:`Prior.sample` draws configurations, :meth:`Prior.log_pdf` scores encoded rows
(vectorized), :meth:`Prior.to_json` / :meth:`Prior.from_json` round-trip the prior for the
run's metadata, :func:`load_prior_file` reads ``--prior FILE``. Mistakes are one-line
:class:`~tunebench.errors.UserError` messages that name the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import betaln, ndtr, ndtri

from tunebench.errors import UserError
from tunebench.space.domains import Choice, Domain
from tunebench.space.encoding import SpaceEncoder, get_encoder
from tunebench.space.sampling import default_config
from tunebench.space.serialization import read_mapping_file
from tunebench.space.unit_cube import FloatArray

__all__ = ["CONFIDENCE_LEVELS", "Prior", "load_prior_file"]

#: the named confidences and their numbers
CONFIDENCE_LEVELS: dict[str, float] = {"low": 1 / 3, "medium": 2 / 3, "high": 1.0}

_FORMS = ("{value:, confidence:}, {dist: normal, mean:, std:}, {dist: beta, a:, b:} "
          "or {probs: {category: p, ...}}")
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_EDGE = 1e-9  #: beta densities are read inside [_EDGE, 1 - _EDGE] (finite at the bounds)


def confidence_number(confidence: Any, where: str) -> float:
    """``confidence`` (``low|medium|high`` or a number in (0, 1]) as a number.

    Raises:
        UserError: anything else (the message starts with ``where``).
    """
    if isinstance(confidence, str) and confidence.lower() in CONFIDENCE_LEVELS:
        return CONFIDENCE_LEVELS[confidence.lower()]
    if (not isinstance(confidence, bool) and isinstance(confidence, (int, float))
            and 0 < confidence <= 1):
        return float(confidence)
    raise UserError(f"{where}: confidence {confidence!r} must be low, medium, high or a number in (0, 1]")


def confidence_std(c: float) -> float:
    """Standard deviation (unit scale) of a numeric prior of confidence ``c``: ``2 ** (-3 c)``."""
    return float(2.0 ** (-3.0 * c))


def confidence_weight(c: float) -> float:
    """Weight of a categorical prior's value against 1 for each other category: ``max(1, 6 c)``."""
    return max(1.0, 6.0 * c)


@dataclass(frozen=True)
class _Marginal:
    """The prior of one hyperparameter, on its encoded columns."""

    kind: str  #: "normal" (truncated to [0, 1]), "beta" or "probs" (a choice's categories)
    cols: slice
    mean: float = 0.5
    std: float = 1.0
    a: float = 1.0
    b: float = 1.0
    probs: tuple[float, ...] = ()

    def spread(self) -> float:
        """Standard deviation in the unit scale (normal, beta), or the top probability (probs)."""
        if self.kind == "normal":
            return self.std
        if self.kind == "beta":
            s = self.a + self.b
            return math.sqrt(self.a * self.b / (s * s * (s + 1)))
        return max(self.probs)

    def centre(self) -> float:
        """Where the density is highest (unit scale; index of the top category for probs)."""
        if self.kind == "normal":
            return self.mean
        if self.kind == "beta":
            if self.a > 1 and self.b > 1:
                return (self.a - 1) / (self.a + self.b - 2)
            return self.a / (self.a + self.b)
        return float(int(np.argmax(self.probs)))

    def log_norm(self) -> float:
        """Log normalizer of the truncated normal (``log(Phi(b) - Phi(a))``)."""
        lo, hi = -self.mean / self.std, (1.0 - self.mean) / self.std
        return float(np.log(ndtr(hi) - ndtr(lo)))

    def sample(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` encoded draws, shape ``(n, width)``."""
        if self.kind == "probs":
            k = len(self.probs)
            idx = rng.choice(k, size=n, p=np.asarray(self.probs))
            out = np.zeros((n, k))
            out[np.arange(n), idx] = 1.0
            return out
        if self.kind == "beta":
            return np.asarray(rng.beta(self.a, self.b, size=n), dtype=float)[:, None]
        lo, hi = ndtr(-self.mean / self.std), ndtr((1.0 - self.mean) / self.std)
        u = lo + rng.random(n) * (hi - lo)
        x = self.mean + self.std * ndtri(np.clip(u, 1e-300, 1.0 - 1e-16))
        return np.asarray(np.clip(x, 0.0, 1.0), dtype=float)[:, None]

    def log_pdf(self, X: FloatArray) -> FloatArray:
        """Log density of the rows of ``X`` (the full encoding) on this parameter's columns."""
        if self.kind == "probs":
            idx = np.argmax(X[:, self.cols], axis=1)
            return np.asarray(np.log(np.asarray(self.probs))[idx], dtype=float)
        x = np.clip(X[:, self.cols.start], 0.0, 1.0)
        if self.kind == "beta":
            x = np.clip(x, _EDGE, 1.0 - _EDGE)
            return ((self.a - 1) * np.log(x) + (self.b - 1) * np.log1p(-x)
                    - float(betaln(self.a, self.b)))
        z = (x - self.mean) / self.std
        return -0.5 * z * z - _LOG_SQRT_2PI - math.log(self.std) - self.log_norm()


def _where(name: str) -> str:
    return f"prior for '{name}'"


def _encoded_value(domain: Domain, name: str, value: Any) -> float:
    """The unit-scale encoding of ``value`` (a numeric domain of one column)."""
    if not domain.contains(value):
        try:
            cast = domain.cast(value)
        except UserError:
            cast = None
        if cast is None or not domain.contains(cast):
            raise UserError(f"{_where(name)}: value {value!r} is outside {domain!r}; give a value in the domain")
        value = cast
    return float(domain.encode([value])[0, 0])


def _category(domain: Choice, name: str, value: Any) -> int:
    try:
        return domain.categories.index(domain.cast(value))
    except (UserError, ValueError):
        raise UserError(f"{_where(name)}: {value!r} is not a category of {domain!r}; "
                        f"give one of {', '.join(map(repr, domain.categories))}") from None


def _number(name: str, key: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (minimum < value < math.inf):
        raise UserError(f"{_where(name)}: {key} must be a number > {minimum:g}, got {value!r}")
    return float(value)


def _marginal(domain: Domain, cols: slice, name: str, spec: Any) -> tuple[_Marginal, dict[str, Any]]:
    """The marginal of one entry of a prior mapping, and its normalized JSON spec."""
    if not isinstance(spec, Mapping):
        spec = {"value": spec}
    keys = set(spec)
    categorical = isinstance(domain, Choice)
    if keys <= {"value", "confidence"} and "value" in keys:
        c = confidence_number(spec.get("confidence", "medium"), _where(name))
        value = spec["value"]
        norm = {"value": value, "confidence": spec.get("confidence", "medium")}
        if categorical:
            assert isinstance(domain, Choice)
            k = len(domain.categories)
            w = confidence_weight(c)
            i = _category(domain, name, value)
            probs = tuple((w if j == i else 1.0) / (w + k - 1) for j in range(k))
            norm["value"] = domain.categories[i]
            return _Marginal("probs", cols, probs=probs), norm
        return _Marginal("normal", cols, mean=_encoded_value(domain, name, value), std=confidence_std(c)), norm
    if keys == {"probs"}:
        if not categorical:
            raise UserError(f"{_where(name)}: probs are for choice parameters; give {domain!r} a value "
                            "and a confidence, or a normal or beta dist")
        assert isinstance(domain, Choice)
        given = spec["probs"]
        if not isinstance(given, Mapping) or not given:
            raise UserError(f"{_where(name)}: probs must be a mapping category -> probability, got {given!r}")
        k = len(domain.categories)
        shares = [math.nan] * k
        for cat, p in given.items():
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise UserError(f"{_where(name)}: probability of {cat!r} must be a number in [0, 1], got {p!r}")
            shares[_category(domain, name, cat)] = float(p)
        total = math.fsum(p for p in shares if not math.isnan(p))
        rest = [j for j in range(k) if math.isnan(shares[j])]
        if total > 1 + 1e-9 or (not rest and abs(total - 1) > 1e-6) or total <= 0:
            raise UserError(f"{_where(name)}: probabilities sum to {total:g}; make them sum to 1 "
                            "(or to less, leaving the rest to the categories not listed)")
        for j in rest:
            shares[j] = max(0.0, 1.0 - total) / len(rest)
        s = math.fsum(shares)
        floor = 1e-12  # a category with probability 0 keeps a tiny one (log densities stay finite)
        shares = [max(p / s, floor) for p in shares]
        s = math.fsum(shares)
        return (_Marginal("probs", cols, probs=tuple(p / s for p in shares)),
                {"probs": {domain.categories[j]: shares[j] / s for j in range(k)}})
    dist = spec.get("dist")
    if categorical and dist is not None:
        raise UserError(f"{_where(name)}: '{name}' is a choice: give {{value:, confidence:}} or {{probs: ...}}")
    if dist == "normal" and keys == {"dist", "mean", "std"}:
        mean = _encoded_value(domain, name, spec["mean"])
        std = _number(name, "std", spec["std"])
        return _Marginal("normal", cols, mean=mean, std=std), {"dist": "normal", "mean": spec["mean"], "std": std}
    if dist == "beta" and keys == {"dist", "a", "b"}:
        a, b = _number(name, "a", spec["a"]), _number(name, "b", spec["b"])
        return _Marginal("beta", cols, a=a, b=b), {"dist": "beta", "a": a, "b": b}
    raise UserError(f"{_where(name)}: cannot read {dict(spec)!r}; use {_FORMS}")


class Prior:
    """A prior over the hyperparameters of ``config_space`` (see the module docstring).

    Args:
        config_space: the space (name -> domain or constant).
        spec: hyperparameter name -> its prior (the forms of the module docstring); the
            hyperparameters not named are uniform.

    Raises:
        UserError: ``spec`` names an unknown parameter or a constant, a value outside its
            domain, a bad confidence, or an entry of no known form.
    """

    def __init__(self, config_space: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
        if not isinstance(spec, Mapping):
            raise UserError(f"a prior must be a mapping hyperparameter -> {_FORMS}, got {type(spec).__name__}")
        self.config_space: dict[str, Any] = dict(config_space)
        self._encoder: SpaceEncoder = get_encoder(self.config_space)
        names = self._encoder.names
        self._marginals: dict[str, _Marginal] = {}
        self._spec: dict[str, Any] = {}
        for name, entry in spec.items():
            if name not in self.config_space:
                raise UserError(f"prior: unknown hyperparameter '{name}'; the space has: {', '.join(names)} "
                                "(fix or remove it in the prior)")
            if name not in names:
                raise UserError(f"prior: '{name}' is a constant of the space, not a hyperparameter; "
                                "remove it from the prior")
            marginal, norm = _marginal(self.config_space[name], self._encoder.slices[name], name, entry)
            self._marginals[name] = marginal
            self._spec[name] = norm

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def centered(cls, config_space: Mapping[str, Any], config: Mapping[str, Any] | None = None,
                 confidence: str | float = "medium") -> Prior:
        """A prior at ``config`` (default: the space's default config, each domain's middle)
        with the same ``confidence`` for every hyperparameter."""
        values = dict(default_config(dict(config_space)))
        values.update(config or {})
        names = get_encoder(dict(config_space)).names
        # (a conditional parameter inactive in the config gets no prior: uniform)
        return cls(config_space, {n: {"value": values[n], "confidence": confidence} for n in names if n in values})

    def recentered(self, config: Mapping[str, Any]) -> Prior:
        """A prior of the same spreads centred at ``config`` (PriorBand's incumbent density):
        each parameter with a prior gets a truncated normal of its prior's standard deviation at
        ``config``'s value (a choice: its prior's top probability on ``config``'s category)."""
        out = Prior(self.config_space, {})
        for name, m in self._marginals.items():
            domain = self.config_space[name]
            if name not in config:  # inactive in ``config`` (a conditional space): its prior stays
                out._marginals[name] = m
                out._spec[name] = self._spec[name]
                continue
            if m.kind == "probs":
                k = len(m.probs)
                i = domain.categories.index(config[name])
                p = m.spread()
                probs = tuple(p if j == i else (1 - p) / (k - 1) for j in range(k)) if k > 1 else (1.0,)
                out._marginals[name] = _Marginal("probs", m.cols, probs=probs)
                out._spec[name] = {"probs": {domain.categories[j]: probs[j] for j in range(k)}}
            else:
                mean = float(domain.encode([config[name]])[0, 0])
                out._marginals[name] = _Marginal("normal", m.cols, mean=mean, std=m.spread())
                out._spec[name] = {"dist": "normal", "mean": config[name], "std": m.spread()}
        return out

    def to_json(self) -> dict[str, Any]:
        """The prior's mapping, normalized (JSON-able): what :meth:`from_json` reads back."""
        return {name: dict(spec) for name, spec in self._spec.items()}

    @classmethod
    def from_json(cls, config_space: Mapping[str, Any], data: Mapping[str, Any]) -> Prior:
        """The prior of :meth:`to_json` (or of any mapping of the module docstring's forms)."""
        return cls(config_space, data)

    # -- queries ----------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The hyperparameters with a prior (the others are uniform)."""
        return list(self._marginals)

    def mode_config(self) -> dict[str, Any]:
        """The configuration the prior believes in most: each parameter with a prior at the top
        of its density, the others at their default (constants included)."""
        X = self._encoder.encode([default_config(self.config_space)])
        for m in self._marginals.values():
            if m.kind == "probs":
                X[0, m.cols] = 0.0
                X[0, m.cols.start + int(m.centre())] = 1.0
            else:
                X[0, m.cols.start] = m.centre()
        return self._encoder.decode(X)[0]

    def sample_encoded(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` draws as encoded rows, shape ``(n, encoded_dim)`` (uniform where no prior)."""
        X = np.empty((n, self._encoder.encoded_dim))
        for name in self._encoder.names:
            m = self._marginals.get(name)
            cols = self._encoder.slices[name]
            if m is not None:
                X[:, cols] = m.sample(rng, n)
            elif isinstance(self.config_space[name], Choice):
                k = cols.stop - cols.start
                X[:, cols] = np.eye(k)[rng.integers(0, k, size=n)]
            else:
                X[:, cols] = rng.random((n, 1))
        return X

    def sample(self, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
        """``n`` configurations drawn from the prior (constants included)."""
        return self._encoder.decode(self.sample_encoded(rng, n))

    def log_pdf(self, X: Any) -> FloatArray:
        """Log density of each encoded row of ``X`` (shape ``(n, encoded_dim)``; ``(n,)`` out),
        in the unit scale: the sum over the parameters with a prior (uniform ones add 0; a
        choice is scored by the argmax of its columns; a conditional parameter adds 0 in a row
        where its condition does not hold)."""
        M = np.atleast_2d(np.asarray(X, dtype=float))
        if M.shape[1] != self._encoder.encoded_dim:
            raise ValueError(f"expected rows of {self._encoder.encoded_dim} columns, got shape {M.shape}")
        out = np.zeros(M.shape[0])
        conditional = [name for name in self._marginals if getattr(self.config_space[name], "condition", None)]
        configs = self._encoder.decode(M) if conditional else []
        for name, m in self._marginals.items():
            term = m.log_pdf(M)
            if name in conditional:  # a conditional parameter inactive in a row adds nothing
                term = np.where([name in c for c in configs], term, 0.0)
            out += term
        return out

    def log_pdf_configs(self, configs: list[Mapping[str, Any]]) -> FloatArray:
        """:meth:`log_pdf` of configurations (encoded first)."""
        return self.log_pdf(self._encoder.encode(configs))

    def __repr__(self) -> str:
        return f"Prior({self.to_json()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Prior):
            return NotImplemented
        return self.config_space == other.config_space and self._marginals == other._marginals

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value: equal priors need not hash equal


def load_prior_file(path: str | Path, config_space: Mapping[str, Any]) -> Prior:
    """Read ``--prior FILE`` (``.yaml``, ``.yml`` or ``.json``: a mapping of the module
    docstring's forms) for ``config_space``.

    Raises:
        UserError: unreadable file, or a bad prior (the message names the file).
    """
    data = read_mapping_file(path, "prior file")
    try:
        return Prior(config_space, data)
    except UserError as e:
        raise UserError(f"prior file {path}: {e}") from None
