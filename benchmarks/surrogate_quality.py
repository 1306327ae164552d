"""Surrogate quality on held-out learning curves: log-likelihood, MSE and time of the curve surrogates.

For each lcbench task (the YAHPO surrogate; ``TUNEBENCH_DATA`` must name the data) and seed, ``N``
random configs are drawn and their full validation-error curves (100 - ``val_accuracy``, every
epoch) evaluated; the values of the task are normalized to [0, 1] (lower is better) with
:class:`~tunebench.models.curves.ValueScaling` fitted on all of them, fidelities are
``epoch / max_epoch`` (:func:`~tunebench.models.curves.scale_fidelity`) and configs are encoded in
the unit cube (the project's encoder), as FTBO gives them to its surrogate.

**Observed sets** (after the evaluation of FT-PFN, Rakotoarison et al., ICML 2024, section 5.1:
partially observed curves of very uneven lengths; our own procedure): ``UNSEEN`` curves are put
aside; for an observed-set size ``n`` (``--sizes``), a cap ``L = min(E, round(10 ** U(0, 3)))`` on
the epochs observed per curve (``E`` epochs in all) and curve weights ``w ~ Gamma(a)`` with
``a = 10 ** U(-2, 0)`` (a few curves get most points, as when a freeze-thaw run thaws its
promising trials) are drawn; then ``n`` draws without replacement from the multiset holding every
remaining curve ``L`` times, with weights ``w``; a curve drawn ``c`` times is observed on its first
``c`` epochs (a prefix, as training reports it).

**Held-out points**: *extrapolation*: the later epochs of every partially observed curve (at most
``MAX_QUERIES`` of them, a uniform random subset); *unseen*: ``UNSEEN_EPOCHS`` random epochs of
each of the ``UNSEEN`` put-aside curves. Each surrogate (``--surrogates``, by name from
:data:`SURROGATES`) is fitted on the observed set (all of it, or :func:`cap_context` to
``--max-context`` points) and predicts the held-out points: figures are the mean log-likelihood
(``log_pdf``, in normalized units: higher is better), the MSE of the predictive mean, *rank
unseen*: Spearman's rank correlation over the put-aside curves of the predicted mean at the last
epoch with the true last value (how well the model tells which untried configuration ends best,
what a freeze-thaw method's choice of a new configuration rests on; 0 for a constant prediction),
and the fit + predict time (one BLAS thread; the rank's extra predictions not counted).
``constant`` is a reference: a Gaussian with the mean and the standard deviation of the observed
values. ``pfn`` (:class:`PFNCurveSurrogate`) gets the values as FTBO gives them to the PFN, mapped
into ``[m, 1 - m]`` (``m = PFN_VALUE_MARGIN``, 0.1); its mean is mapped back and its log-likelihood
is in the same normalized units as the others' (the log density of the mapped value plus ``log(1 -
2 m)``, the Jacobian of the map).
``pfn-gp`` (:class:`PFNWithGPInputs`) is FTBO's default with the PFN (``config_inputs="gp"``):
the same PFN given, for each config, the value at the last epoch that the ``gp`` surrogate, fitted
first on the same points, predicts for it, instead of the encoded config.

The table gives, per group of tasks (the held-out tasks, the development tasks
:data:`~tunebench.blackboxes.yahpo.LCBENCH_DEVELOPMENT_TASKS` when any is run, and both pooled),
surrogate and size, the mean over tasks x seeds (``--statistic iqm``: the interquartile mean, which
the rare observed sets that no model can extrapolate from, such as one epoch of every curve, sway
less) with a 95 % bootstrap band of it (resampling the tasks x seeds).

    .venv/bin/python benchmarks/surrogate_quality.py        # 4 held-out + 2 development tasks x 5 seeds
    .venv/bin/python benchmarks/surrogate_quality.py --tasks all --seeds 10 --sizes 100 200 400 1000
    .venv/bin/python benchmarks/surrogate_quality.py --surrogates dpl --tasks 3945 167184 --parallel 2
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tunebench.analysis.aggregate import bootstrap_ci, iqm
from tunebench.models.curves import (
    CurvePrediction,
    GaussianCurvePrediction,
    MappedInputs,
    ValueScaling,
    cap_context,
    gp_value_feature,
    scale_fidelity,
)
from tunebench.models.dpl import DPLEnsemble
from tunebench.models.pfn import PFNSurrogate
from tunebench.schedulers.ftbo import PFN_VALUE_MARGIN
from tunebench.searchers.gp import GPSurrogate, _blas_threads

#: default lcbench tasks: 4 held-out ones and 2 development ones (reported apart, then pooled)
DEFAULT_TASKS = ["167184", "168910", "189354", "189909", "3945", "34539"]
DEFAULT_SIZES = [100, 300, 1000]
UNSEEN = 100  #: curves put aside per (task, seed), never observed
UNSEEN_EPOCHS = 5  #: held-out epochs of each unseen curve
MAX_QUERIES = 2000  #: extrapolation points scored at most per observed set


# -- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curves:
    """Full learning curves of one task: ``X`` (c, d) encoded configs, ``t`` (e,) fidelities in
    (0, 1], ``y`` (c, e) normalized values (lower is better)."""

    X: np.ndarray
    t: np.ndarray
    y: np.ndarray


def lcbench_curves(task: str, n: int, seed: int) -> Curves:
    """``n`` random configs of lcbench ``task`` and their full val-error curves, normalized."""
    from tunebench.blackboxes.yahpo import YahpoBlackbox
    from tunebench.space import get_encoder, sample_configs

    bb = YahpoBlackbox("lcbench", task)
    configs = sample_configs(bb.config_space, np.random.default_rng([seed, int(task)]), n)
    values = bb.evaluate(configs, seed=0, check=False)[:, :, bb.objectives.index("val_accuracy")]
    err = 100.0 - values
    fid = np.asarray(bb.fidelity_values, dtype=float)
    return Curves(X=get_encoder(bb.config_space).encode(configs), t=scale_fidelity(fid, fid.max()),
                  y=ValueScaling.fit(err).transform(err))


@dataclass(frozen=True)
class ObservedSet:
    """An observed set and its held-out points (rows of a :class:`Curves`: curve index, epoch index)."""

    curve: np.ndarray  #: (n,) observed curve indices
    epoch: np.ndarray  #: (n,) observed epoch indices
    extrap: tuple[np.ndarray, np.ndarray]  #: held-out later epochs of observed curves
    unseen: tuple[np.ndarray, np.ndarray]  #: held-out points of never observed curves


def observed_set(n_curves: int, n_epochs: int, size: int, rng: np.random.Generator, *,
                 unseen: int = UNSEEN, unseen_epochs: int = UNSEEN_EPOCHS,
                 max_queries: int = MAX_QUERIES) -> ObservedSet:
    """An ifBO-like observed set of ``size`` points over ``n_curves`` curves of ``n_epochs``
    epochs (see the module docstring), and its held-out points."""
    perm = rng.permutation(n_curves)
    aside, pool = perm[:unseen], perm[unseen:]
    cap = int(min(n_epochs, round(10 ** rng.uniform(0.0, 3.0))))
    if len(pool) * n_epochs < size:
        raise ValueError(f"{len(pool)} curves of {n_epochs} epochs cannot hold {size} observed points")
    while len(pool) * cap < size:  # too short a cap for this many points: the next that fits
        cap += 1
    w = rng.gamma(10 ** rng.uniform(-2.0, 0.0), size=len(pool)) + 1e-12
    slots = np.repeat(np.arange(len(pool)), cap)
    p = np.repeat(w / w.sum(), cap) / cap
    p /= p.sum()
    drawn = rng.choice(len(slots), size=size, replace=False, p=p)
    counts = np.bincount(slots[drawn], minlength=len(pool))
    seen = np.flatnonzero(counts)
    curve = np.repeat(pool[seen], counts[seen])
    epoch = np.concatenate([np.arange(c) for c in counts[seen]])
    later = [(pool[i], np.arange(counts[i], n_epochs)) for i in seen if counts[i] < n_epochs]
    ec = np.concatenate([np.full(len(e), c) for c, e in later]) if later else np.zeros(0, dtype=int)
    ee = np.concatenate([e for _, e in later]) if later else np.zeros(0, dtype=int)
    if len(ec) > max_queries:
        pick = np.sort(rng.choice(len(ec), size=max_queries, replace=False))
        ec, ee = ec[pick], ee[pick]
    k = min(unseen_epochs, n_epochs)
    uc = np.repeat(aside, k)
    ue = np.concatenate([rng.choice(n_epochs, size=k, replace=False) for _ in aside]) if len(aside) else uc
    return ObservedSet(curve=curve, epoch=epoch, extrap=(ec, ee), unseen=(uc, ue))


# -- surrogates ----------------------------------------------------------------------------------


class ConstantSurrogate:
    """Reference: one Gaussian for every point, the mean and standard deviation of the observed values."""

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None:
        self._mean = float(np.mean(y))
        self._std = max(float(np.std(y)), 1e-3)

    def predict(self, X: np.ndarray, t: np.ndarray, *, noise: bool = True) -> GaussianCurvePrediction:
        q = len(X)
        return GaussianCurvePrediction(mean=np.full(q, self._mean), std=np.full(q, self._std))


class GPCurveSurrogate:
    """Our GP over (config, normalized log fidelity) as DyHPO uses it (:class:`GPSurrogate`: at
    most 250 points, chosen by :func:`cap_context`: every curve's last point, then log-spaced
    earlier ones); the prediction of an observation (noise included) is Gaussian."""

    def __init__(self, n_inputs: int, min_t: float) -> None:
        self._sur = GPSurrogate(n_inputs + 1)
        self._min_t = float(min_t)

    def _rows(self, X: np.ndarray, t: np.ndarray) -> np.ndarray:
        span = -np.log(self._min_t)
        r = np.clip(np.log(np.maximum(t, self._min_t) / self._min_t) / span, 0.0, 1.0) if span > 0 else np.ones(len(t))
        return np.column_stack([X, r])

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None:
        Z = self._rows(X, t)
        self.gp = self._sur.update(Z, y, lambda n, budget: cap_context(curve[:n], t[:n], budget))

    def predict(self, X: np.ndarray, t: np.ndarray, *, noise: bool = True) -> GaussianCurvePrediction:
        mean, var = self.gp.predict(self._rows(X, np.broadcast_to(t, (len(X),))), include_noise=noise)
        return GaussianCurvePrediction(mean=mean, std=np.sqrt(np.maximum(var, 1e-12)))


@dataclass(frozen=True)
class MappedPrediction:
    """A prediction made in mapped units ``v = margin + (1 - 2 margin) y``, read back in the
    normalized units ``y``: the mean mapped back, the density at ``y`` the mapped one times the
    map's slope (``log_pdf`` adds ``log(1 - 2 margin)``, the log of the Jacobian)."""

    inner: CurvePrediction
    margin: float

    @property
    def _slope(self) -> float:
        return 1.0 - 2.0 * self.margin

    @property
    def mean(self) -> np.ndarray:
        out: np.ndarray = (np.asarray(self.inner.mean, dtype=float) - self.margin) / self._slope
        return out

    def _to_mapped(self, y: float | np.ndarray) -> np.ndarray:
        return self.margin + self._slope * np.asarray(y, dtype=float)

    def prob_below(self, threshold: float | np.ndarray) -> np.ndarray:
        return self.inner.prob_below(self._to_mapped(threshold))

    def log_prob_below(self, threshold: float | np.ndarray) -> np.ndarray:
        return self.inner.log_prob_below(self._to_mapped(threshold))

    def log_pdf(self, y: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.asarray(self.inner.log_pdf(self._to_mapped(y)), dtype=float) + np.log(self._slope)
        return out


class PFNCurveSurrogate:
    """Our PFN (:class:`PFNSurrogate`, the shipped weights) as FTBO feeds it: normalized values
    mapped into ``[margin, 1 - margin]`` (``margin`` :data:`~tunebench.schedulers.ftbo.PFN_VALUE_MARGIN`,
    FTBO's ``_model_data``), its predictions read back in normalized units (:class:`MappedPrediction`,
    so that its log-likelihood compares with the other surrogates'). It is conditioned on every
    observed point given (FTBO caps its context at ``max_context``, 256 by default: run with
    ``--max-context 256`` for that); it tells at most ``n_ids - 1`` (1023) curves apart and takes
    configs of at most ``max_hparams`` (10) columns (lcbench: 7)."""

    def __init__(self, margin: float = PFN_VALUE_MARGIN, weights: str | None = None) -> None:
        self._pfn = PFNSurrogate(weights)
        self.margin = float(margin)

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None:
        mapped = self.margin + (1.0 - 2.0 * self.margin) * np.asarray(y, dtype=float)
        self._pfn.fit(X, t, mapped, curve, n_total=n_total)

    def predict(self, X: np.ndarray, t: np.ndarray, *, noise: bool = True) -> MappedPrediction:
        return MappedPrediction(self._pfn.predict(X, t, noise=noise), self.margin)


class PFNWithGPInputs:
    """FTBO's ``surrogate="pfn", config_inputs="gp"``: the PFN (:class:`PFNCurveSurrogate`) given, for
    each config, one column instead of its encoding: the value at the largest fidelity predicted
    by the GP over (config, log fidelity) (:class:`GPCurveSurrogate`, fitted first on the same
    points), min-max scaled over the context's configs (:func:`~tunebench.models.curves.gp_value_feature`)."""

    def __init__(self, n_inputs: int, min_t: float) -> None:
        self._gp = GPCurveSurrogate(n_inputs, min_t)
        self._pfn = PFNCurveSurrogate()

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None:
        self._gp.fit(X, t, y, curve, n_total=n_total)
        self._mapped = MappedInputs(self._pfn, gp_value_feature(self._gp.gp, X))
        self._mapped.fit(X, t, y, curve, n_total=n_total)

    def predict(self, X: np.ndarray, t: np.ndarray, *, noise: bool = True) -> CurvePrediction:
        return self._mapped.predict(X, t, noise=noise)


class Surrogate(Protocol):
    """What this benchmark needs of a :class:`~tunebench.models.curves.CurveSurrogate`: fit and predict."""

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None: ...

    def predict(self, X: np.ndarray, t: np.ndarray) -> CurvePrediction: ...


#: ``factory(n_inputs, min_t, seed)``: a fresh surrogate (``min_t``: the smallest fidelity)
Factory = Callable[[int, float, int], Surrogate]

#: the surrogates by name; add one with a line here
SURROGATES: dict[str, Factory] = {
    "constant": lambda d, min_t, seed: ConstantSurrogate(),
    "dpl": lambda d, min_t, seed: DPLEnsemble(d, seed=seed),
    "gp": lambda d, min_t, seed: GPCurveSurrogate(d, min_t),
    "pfn": lambda d, min_t, seed: PFNCurveSurrogate(),
    "pfn-gp": lambda d, min_t, seed: PFNWithGPInputs(d, min_t),
}
DEFAULT_SURROGATES = ["constant", "dpl", "gp", "pfn", "pfn-gp"]


def factory_of(name: str, factories: dict[str, Factory] | None = None) -> Factory:
    """The factory of a surrogate name: a key of ``factories`` (default :data:`SURROGATES`), or
    ``pfn:PATH``, the PFN with the weights at ``PATH`` (a ``.npz`` with its sidecar, as
    ``benchmarks/train_ftpfn.py`` writes them) instead of the shipped ones."""
    if name.startswith("pfn:"):
        path = name.removeprefix("pfn:")
        return lambda d, min_t, seed: PFNCurveSurrogate(weights=path)
    return (SURROGATES if factories is None else factories)[name]


# -- scoring -------------------------------------------------------------------------------------

#: the figures of one (surrogate, size, task, seed)
METRICS = ("ll_extrap", "ll_unseen", "mse_extrap", "mse_unseen", "rank_unseen", "seconds")


def score_observed_set(curves: Curves, obs: ObservedSet, surrogates: Sequence[str], seed: int, *,
                       max_context: int | None = None,
                       factories: dict[str, Factory] | None = None) -> dict[str, dict[str, float]]:
    """Every surrogate fitted on the observed set ``obs`` of ``curves`` (all of it, or
    :func:`cap_context` to ``max_context`` points; seeded with ``seed``) and scored on its
    held-out points.  Returns ``surrogate -> {metric: value}`` (:data:`METRICS`)."""
    size = len(obs.curve)
    keep = np.arange(size)
    if max_context is not None:
        keep = cap_context(obs.curve, curves.t[obs.epoch], max_context)
    c, e = obs.curve[keep], obs.epoch[keep]
    qc = np.concatenate([obs.extrap[0], obs.unseen[0]])
    qe = np.concatenate([obs.extrap[1], obs.unseen[1]])
    n_ex = len(obs.extrap[0])
    y = curves.y[qc, qe]
    unseen = np.unique(obs.unseen[0])
    out: dict[str, dict[str, float]] = {}
    for name in surrogates:
        model = factory_of(name, factories)(curves.X.shape[1], float(curves.t.min()), seed)
        with _blas_threads(1):
            t0 = time.perf_counter()
            model.fit(curves.X[c], curves.t[e], curves.y[c, e], c, n_total=size)
            pred = model.predict(curves.X[qc], curves.t[qe])
            seconds = time.perf_counter() - t0
        ll = np.asarray(pred.log_pdf(y), dtype=float)
        se = (np.asarray(pred.mean, dtype=float) - y) ** 2
        final = np.asarray(model.predict(curves.X[unseen], float(curves.t[-1])).mean, dtype=float)
        out[name] = {
            "ll_extrap": float(np.mean(ll[:n_ex])) if n_ex else float("nan"),
            "ll_unseen": float(np.mean(ll[n_ex:])) if len(y) > n_ex else float("nan"),
            "mse_extrap": float(np.mean(se[:n_ex])) if n_ex else float("nan"),
            "mse_unseen": float(np.mean(se[n_ex:])) if len(y) > n_ex else float("nan"),
            "rank_unseen": _rank_correlation(final, curves.y[unseen, -1]),
            "seconds": seconds,
        }
    return out


def _rank_correlation(predicted: np.ndarray, true: np.ndarray) -> float:
    """Spearman's rank correlation of predicted and true values (0 where either is constant or
    fewer than 3 values: no ranking)."""
    from scipy.stats import spearmanr

    if len(true) < 3 or np.ptp(predicted) == 0 or np.ptp(true) == 0:
        return 0.0
    return float(spearmanr(predicted, true).statistic)


def score_surrogates(curves: Curves, sizes: Sequence[int], surrogates: Sequence[str], seed: int, *,
                     key: int = 0, max_context: int | None = None, factories: dict[str, Factory] | None = None,
                     unseen: int = UNSEEN) -> dict[tuple[str, int], dict[str, float]]:
    """For each size, one observed set of ``curves`` (:func:`observed_set`, drawn from ``seed``,
    ``key`` and the size: the benchmark keys by task, so that every task gets observed sets of its
    own), scored by :func:`score_observed_set`.  Returns ``(surrogate, size) -> {metric: value}``."""
    n_curves, n_epochs = curves.y.shape
    out: dict[tuple[str, int], dict[str, float]] = {}
    for size in sizes:
        obs = observed_set(n_curves, n_epochs, size, np.random.default_rng([seed, key, size]), unseen=unseen)
        res = score_observed_set(curves, obs, surrogates, seed, max_context=max_context, factories=factories)
        out.update({(name, size): scores for name, scores in res.items()})
    return out


def run_task(task: str, seed: int, sizes: list[int], surrogates: list[str], n_configs: int,
             max_context: int | None) -> tuple[str, int, dict[tuple[str, int], dict[str, float]]]:
    """One (task, seed): its curves and the scores of every surrogate and size."""
    curves = lcbench_curves(task, n_configs, seed)
    return task, seed, score_surrogates(curves, sizes, surrogates, seed, key=int(task), max_context=max_context)


# -- report --------------------------------------------------------------------------------------


def _mean(a: np.ndarray, axis: int = 0) -> np.ndarray:
    out: np.ndarray = np.nanmean(a, axis=axis)
    return out


#: ``--statistic``: the statistic over tasks x seeds
STATISTICS: dict[str, Callable[..., np.ndarray]] = {"mean": _mean, "iqm": iqm}


def _cell(values: list[float], digits: int, statistic: str) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return "n/a"
    f = STATISTICS[statistic]
    lo, hi = bootstrap_ci(v, f)
    return f"{float(f(v)):.{digits}f} [{float(lo):.{digits}f}, {float(hi):.{digits}f}]"


def table(results: list[tuple[str, int, dict[tuple[str, int], dict[str, float]]]], surrogates: list[str],
          sizes: list[int], title: str, statistic: str = "mean") -> list[str]:
    """The lines of one group's table (``statistic`` over its tasks x seeds, 95 % bootstrap band)."""
    tasks = sorted({r[0] for r in results})
    lines = [f"{title}: {len(tasks)} task(s) x {len({r[1] for r in results})} seed(s) = {len(results)} runs "
             f"({', '.join(tasks)})",
             f"{'surrogate':<10} {'size':>5} | {'LL extrap':>24} | {'LL unseen':>24} | {'MSE extrap':>24} | "
             f"{'MSE unseen':>24} | {'rank unseen':>20} | {'time s':>20}"]
    for name in surrogates:
        for size in sizes:
            cells = []
            for metric, digits in (("ll_extrap", 2), ("ll_unseen", 2), ("mse_extrap", 4), ("mse_unseen", 4),
                                   ("rank_unseen", 2), ("seconds", 2)):
                cells.append(_cell([r[2][(name, size)][metric] for r in results], digits, statistic))
            lines.append(f"{name:<10} {size:>5} | {cells[0]:>24} | {cells[1]:>24} | {cells[2]:>24} | "
                         f"{cells[3]:>24} | {cells[4]:>20} | {cells[5]:>20}")
    return lines


def main(argv: list[str] | None = None) -> int:
    from tunebench.blackboxes.yahpo import LCBENCH_DEVELOPMENT_TASKS, LCBENCH_INSTANCES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS,
                        help="lcbench task ids, 'all' (the 34) or 'heldout' (the 26 non-development ones)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES, help="observed points")
    parser.add_argument("--surrogates", nargs="+", default=DEFAULT_SURROGATES,
                        help=f"among {', '.join(sorted(SURROGATES))}, or pfn:PATH (the PFN with the weights at PATH)")
    parser.add_argument("--configs", type=int, default=None,
                        help=f"configs sampled per task (default: the largest size + {UNSEEN} unseen)")
    parser.add_argument("--max-context", type=int, default=None,
                        help="cap the observed set to this many points (cap_context, as FTBO); default: all")
    parser.add_argument("--statistic", choices=sorted(STATISTICS), default="mean",
                        help="over tasks x seeds: the mean (default) or the interquartile mean")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="processes")
    args = parser.parse_args(argv)
    if not os.environ.get("TUNEBENCH_DATA"):
        print("tunebench: error: TUNEBENCH_DATA is not set: point it at the folder holding yahpo/lcbench",
              file=sys.stderr)
        return 2
    tasks: list[str] = []
    for t in args.tasks:
        tasks += (list(LCBENCH_INSTANCES) if t == "all" else
                  [x for x in LCBENCH_INSTANCES if x not in LCBENCH_DEVELOPMENT_TASKS] if t == "heldout" else [t])
    unknown = [t for t in tasks if t not in LCBENCH_INSTANCES]
    if unknown:
        print(f"tunebench: error: unknown lcbench task(s) {', '.join(unknown)}; use ids of "
              f"tunebench.blackboxes.yahpo.LCBENCH_INSTANCES, 'all' or 'heldout'", file=sys.stderr)
        return 2
    bad = []
    for name in args.surrogates:
        try:
            factory_of(name)
        except KeyError:
            bad.append(name)
    if bad:
        print(f"tunebench: error: unknown surrogate(s) {', '.join(bad)}; use {', '.join(sorted(SURROGATES))} or "
              "pfn:PATH", file=sys.stderr)
        return 2
    sizes = sorted(set(args.sizes))
    n_configs = args.configs or max(sizes) + UNSEEN
    if min(sizes) < 1 or n_configs <= UNSEEN or args.seeds < 1:
        print(f"tunebench: error: --sizes and --seeds must be >= 1 and --configs > {UNSEEN} (the unseen curves); "
              f"got sizes {sizes}, seeds {args.seeds}, configs {n_configs}", file=sys.stderr)
        return 2
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"{args.parallel} processes, load average {os.getloadavg()[0]:.1f} at the start; {n_configs} configs "
          f"per task, {UNSEEN} unseen curves x {UNSEEN_EPOCHS} epochs, context "
          f"{'all points' if args.max_context is None else f'capped at {args.max_context}'}")
    t0 = time.perf_counter()
    jobs = [(t, s, sizes, args.surrogates, n_configs, args.max_context) for t in tasks for s in range(args.seeds)]
    if args.parallel > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(args.parallel, len(jobs))) as pool:
            results = list(pool.map(run_task, *zip(*jobs, strict=True)))
    else:
        results = [run_task(*job) for job in jobs]
    dev = [r for r in results if r[0] in LCBENCH_DEVELOPMENT_TASKS]
    held = [r for r in results if r[0] not in LCBENCH_DEVELOPMENT_TASKS]
    print(f"{args.statistic} over tasks x seeds [95% bootstrap band]; LL: mean log-likelihood of held-out points "
          "(normalized values, higher is better); MSE of the predictive mean; time: fit + predict")
    for group, title in ((held, "held-out tasks"), (dev, "development tasks"), (results, "pooled")):
        if group and not (title == "pooled" and (not dev or not held)):
            print()
            print("\n".join(table(group, args.surrogates, sizes, title, args.statistic)))
    print(f"\nwhole run {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
