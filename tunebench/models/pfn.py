"""The learning-curve PFN in plain numpy: loading shipped weights, inference, and a surrogate for
freeze-thaw BO (L1 models; numpy only, no torch needed to tune).

The network is the FT-PFN-style transformer of :mod:`tunebench.models.pfn_train` (torch, used
only to train it; read its docs for the architecture); this module mirrors it operation by
operation in float32.  Weights are a ``.npz`` of arrays named as the torch ``state_dict`` plus a
JSON sidecar (same stem, ``.json``) holding the architecture, the prior version
(:data:`tunebench.models.curve_prior.PRIOR_VERSION` at training time), the training record and
the sha256 of the ``.npz``; :func:`load_weights` checks the sidecar and the hash, and never
unpickles (``allow_pickle=False``).

Because context tokens attend only to context tokens, :meth:`CurvePFNNumpy.condition` runs the
context through the network once and keeps every layer's keys and values; each later
:meth:`~CurvePFNNumpy.predict` only pushes its queries through (each query attends to the cached
context and to itself), so a batch of candidates costs ``O(queries x (context + parameters))``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["BarPrediction", "CurvePFNNumpy", "PFNSurrogate", "PFNWeights", "default_weights_path",
           "load_weights", "save_weights", "FORMAT"]

#: the ``format`` field of a sidecar this module reads
FORMAT = "tunebench-curve-pfn-1"
_LOG_T_MIN = math.log(1.0 / 256.0)  # as pfn_train.LOG_T_MIN
_ARCH_KEYS = ("d_model", "n_heads", "n_layers", "d_ff", "n_bins", "n_ids", "max_hparams", "d_head_mlp")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_weights_path() -> Path:
    """The shipped weights, ``tunebench/models/weights/ftpfn-v4.npz``."""
    return Path(__file__).resolve().parent / "weights" / "ftpfn-v4.npz"


def save_weights(path: str | Path, arrays: dict[str, np.ndarray], *, architecture: dict[str, int],
                 prior_version: int, training: dict[str, Any]) -> Path:
    """Write ``path`` (``.npz``, float32 arrays) and its sidecar ``path.with_suffix('.json')``.

    Returns the sidecar's path.
    """
    path = Path(path)
    data: dict[str, Any] = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
    np.savez(path, **data)
    side = {"format": FORMAT, "architecture": {k: int(architecture[k]) for k in _ARCH_KEYS},
            "prior_version": int(prior_version), "training": training, "sha256": _sha256(path),
            "arrays": sorted(arrays)}
    side_path = path.with_suffix(".json")
    side_path.write_text(json.dumps(side, indent=1) + "\n")
    return side_path


@dataclass(frozen=True)
class PFNWeights:
    """Loaded, verified weights: ``arrays`` (float32) and the sidecar's fields."""

    arrays: dict[str, np.ndarray]
    architecture: dict[str, int]
    prior_version: int
    training: dict[str, Any]
    sha256: str
    path: Path


def load_weights(path: str | Path | None = None) -> PFNWeights:
    """Load and verify a ``.npz`` and its JSON sidecar (default: the shipped weights).

    Raises:
        UserError: a missing file, a sidecar of another format or with missing fields, a sha256
            that does not match the ``.npz``, or arrays that do not match the architecture.
    """
    path = Path(path) if path is not None else default_weights_path()
    side_path = path.with_suffix(".json")
    for p in (path, side_path):
        if not p.is_file():
            raise UserError(f"PFN weights: {p} does not exist; pass the path of a .npz written by "
                            "benchmarks/train_ftpfn.py (its .json sidecar next to it)")
    try:
        side = json.loads(side_path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"PFN weights: cannot read the sidecar {side_path} ({exc}); re-export the weights") from exc
    if not isinstance(side, dict) or side.get("format") != FORMAT:
        raise UserError(f"PFN weights: {side_path} is not a {FORMAT} sidecar (format "
                        f"{side.get('format') if isinstance(side, dict) else None!r}); re-export the weights")
    missing = [k for k in ("architecture", "prior_version", "training", "sha256") if k not in side]
    arch = side.get("architecture", {})
    missing += [f"architecture.{k}" for k in _ARCH_KEYS if k not in arch]
    if missing:
        raise UserError(f"PFN weights: {side_path} lacks {', '.join(missing)}; re-export the weights")
    digest = _sha256(path)
    if digest != side["sha256"]:
        raise UserError(f"PFN weights: the sha256 of {path} is {digest[:12]}..., its sidecar says "
                        f"{str(side['sha256'])[:12]}...: the .npz was changed or belongs to another sidecar")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: np.ascontiguousarray(data[k], dtype=np.float32) for k in data.files}
    weights = PFNWeights(arrays=arrays, architecture={k: int(arch[k]) for k in _ARCH_KEYS},
                         prior_version=int(side["prior_version"]), training=side["training"],
                         sha256=digest, path=path)
    _check_shapes(weights)
    return weights


def _expected_shapes(a: dict[str, int]) -> dict[str, tuple[int, ...]]:
    d, ff, hm = a["d_model"], a["d_ff"], a["d_head_mlp"]
    shapes: dict[str, tuple[int, ...]] = {
        "embed.weight": (d, 2 * a["max_hparams"] + 2), "embed.bias": (d,), "id_table.weight": (a["n_ids"], d),
        "y_encoder.weight": (d, 1), "y_encoder.bias": (d,), "query": (d,), "norm.weight": (d,),
        "norm.bias": (d,), "head1.weight": (hm, d), "head1.bias": (hm,), "head2.weight": (a["n_bins"], hm),
        "head2.bias": (a["n_bins"],), "borders": (a["n_bins"] + 1,)}
    for i in range(a["n_layers"]):
        pre = f"layers.{i}."
        shapes.update({pre + "norm1.weight": (d,), pre + "norm1.bias": (d,), pre + "qkv.weight": (3 * d, d),
                       pre + "qkv.bias": (3 * d,), pre + "out.weight": (d, d), pre + "out.bias": (d,),
                       pre + "norm2.weight": (d,), pre + "norm2.bias": (d,), pre + "ff1.weight": (ff, d),
                       pre + "ff1.bias": (ff,), pre + "ff2.weight": (d, ff), pre + "ff2.bias": (d,)})
    return shapes


def _check_shapes(w: PFNWeights) -> None:
    expected = _expected_shapes(w.architecture)
    bad = sorted(set(expected) ^ set(w.arrays))
    bad += [k for k in expected if k in w.arrays and w.arrays[k].shape != expected[k]]
    if bad:
        raise UserError(f"PFN weights: {w.path} does not match its architecture {w.architecture} "
                        f"(arrays missing, extra or misshapen: {', '.join(bad[:5])}); re-export the weights")


def _layer_norm(h: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = h.mean(-1, keepdims=True)
    var = ((h - mu) ** 2).mean(-1, keepdims=True)
    out: np.ndarray = (h - mu) / np.sqrt(var + np.float32(1e-5)) * w + b
    return out


def _gelu(x: np.ndarray) -> np.ndarray:  # the tanh approximation, as torch's approximate="tanh"
    c = np.float32(math.sqrt(2.0 / math.pi))
    out: np.ndarray = np.float32(0.5) * x * (np.float32(1.0) + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))
    return out


def _linear(h: np.ndarray, a: dict[str, np.ndarray], name: str) -> np.ndarray:
    out: np.ndarray = h @ a[name + ".weight"].T + a[name + ".bias"]
    return out


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return out


@dataclass(frozen=True)
class BarPrediction:
    """Predicted bar distributions over ``[0, 1]`` (a piecewise-constant density per query).

    ``log_probs`` (q, n_bins) are the log probabilities of the bins whose edges are ``borders``
    (n_bins + 1,).  Implements the ``CurvePrediction`` protocol of ``tunebench.models.curves``.
    Values outside ``[0, 1]`` are clipped to it (the support) in :meth:`log_pdf`.
    """

    log_probs: np.ndarray
    borders: np.ndarray

    def _exp_once(self, key: str, dtype: type[np.floating]) -> np.ndarray:
        """``exp(log_probs)`` in ``dtype``, computed on first use and kept under ``key``."""
        cached: np.ndarray | None = self.__dict__.get(key)
        if cached is None:
            cached = np.exp(self.log_probs.astype(dtype))
            object.__setattr__(self, key, cached)
        return cached

    @property
    def probs(self) -> np.ndarray:
        """(q, n_bins) bin probabilities (each row sums to 1; computed once)."""
        return self._exp_once("_probs", np.float64)

    def _p32(self) -> np.ndarray:
        """(q, n_bins) float32 bin probabilities (computed once; sums accumulate in float64)."""
        return self._exp_once("_probs32", np.float32)

    @property
    def mean(self) -> np.ndarray:
        """(q,) the predictive means."""
        centers = 0.5 * (self.borders[1:] + self.borders[:-1]).astype(np.float64)
        out: np.ndarray = self._p32() @ centers
        return out

    def _locate(self, v: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin index and fraction of the bin below ``v`` (broadcast to (q,))."""
        b = self.borders.astype(np.float64)
        v = np.broadcast_to(np.clip(np.asarray(v, dtype=float), b[0], b[-1]), (self.log_probs.shape[0],))
        idx = np.clip(np.searchsorted(b, v, side="right") - 1, 0, len(b) - 2)
        frac = (v - b[idx]) / (b[idx + 1] - b[idx])
        return idx, frac

    def prob_below(self, threshold: float | np.ndarray) -> np.ndarray:
        """(q,) ``P(y < threshold)`` (linear within a bin)."""
        idx, frac = self._locate(threshold)
        p = self._p32()
        rows = np.arange(p.shape[0])
        if np.ndim(threshold) == 0:  # one threshold: the same bins below it for every query
            below = p[:, :int(idx[0])].sum(axis=1, dtype=np.float64)
        else:
            below = np.where(np.arange(p.shape[1])[None, :] < idx[:, None], p, 0.0).sum(axis=1, dtype=np.float64)
        out: np.ndarray = np.clip(below + frac * p[rows, idx], 0.0, 1.0)
        return out

    def log_prob_below(self, threshold: float | np.ndarray) -> np.ndarray:
        """(q,) ``log P(y < threshold)``: the log of :meth:`prob_below`, and in log space where
        that is below 1e-6 (accurate far in the tail)."""
        with np.errstate(divide="ignore"):
            out: np.ndarray = np.log(self.prob_below(threshold))
        tail = ~(out > math.log(1e-6))
        if tail.any():
            idx, frac = self._locate(threshold)
            idx, frac = idx[tail], frac[tail]
            lp = self.log_probs[tail].astype(np.float64)
            rows = np.arange(lp.shape[0])
            cum = np.logaddexp.accumulate(lp, axis=1)  # cum[:, j] = log P(bins 0..j)
            before = np.where(idx > 0, cum[rows, np.maximum(idx - 1, 0)], -np.inf)
            with np.errstate(divide="ignore"):
                part = lp[rows, idx] + np.log(frac)
            out[tail] = np.logaddexp(before, part)
        return out

    def log_expected_improvement(self, threshold: float | np.ndarray) -> np.ndarray:
        """(q,) ``log E[max(threshold - y, 0)]`` (uniform within a bin): every bin wholly below
        the threshold contributes its probability times the distance from its center, the bin
        holding the threshold ``p * w * frac**2 / 2`` (``w``: its width, ``frac``: its part below
        the threshold); summed in linear space, and in log space where that underflows (accurate
        far in the tail); ``-inf`` for a threshold at or below the support."""
        b = self.borders.astype(np.float64)
        idx, frac = self._locate(threshold)
        thr = np.broadcast_to(np.asarray(threshold, dtype=float), idx.shape)
        centers = 0.5 * (b[1:] + b[:-1])
        rows = np.arange(self.log_probs.shape[0])
        past = thr >= b[-1]
        # the bin holding the threshold: per unit of its probability (past the support: the whole bin)
        inside = np.where(past, np.maximum(thr - centers[idx], 0.0), 0.5 * frac * frac * (b[idx + 1] - b[idx]))
        # the bins wholly below it, in linear space (float32 probabilities, float64 sums)
        gap = np.maximum(thr[:, None] - centers[None, :], 0.0).astype(np.float32)
        gap[np.arange(gap.shape[1])[None, :] >= idx[:, None]] = 0.0
        p = self._p32()
        total = np.einsum("ij,ij->i", p, gap, dtype=np.float64) + p[rows, idx] * inside
        with np.errstate(divide="ignore"):
            out: np.ndarray = np.log(total)
        tail = ~(total > 1e-30) & (thr > b[0])  # underflow: the same sum in log space
        if tail.any():
            lp = self.log_probs[tail].astype(np.float64)
            t_idx, t_thr, t_rows = idx[tail], thr[tail], np.arange(lp.shape[0])
            with np.errstate(divide="ignore", invalid="ignore"):
                lgap = np.log(np.maximum(t_thr[:, None] - centers[None, :], 0.0))
                below = np.where(np.arange(lp.shape[1])[None, :] < t_idx[:, None], lp + lgap, -np.inf)
                part = lp[t_rows, t_idx] + np.log(inside[tail])
            top = np.maximum(below.max(axis=1), part)
            safe = np.where(np.isfinite(top), top, 0.0)
            with np.errstate(divide="ignore"):
                out[tail] = safe + np.log(np.exp(below - safe[:, None]).sum(axis=1) + np.exp(part - safe))
        return out

    def log_pdf(self, y: np.ndarray) -> np.ndarray:
        """(q,) the log density at ``y`` (clipped to [0, 1])."""
        idx, _ = self._locate(y)
        b = self.borders.astype(np.float64)
        rows = np.arange(self.log_probs.shape[0])
        out: np.ndarray = self.log_probs[rows, idx].astype(np.float64) - np.log(b[idx + 1] - b[idx])
        return out


class CurvePFNNumpy:
    """The transformer of :mod:`tunebench.models.pfn_train` in float32 numpy.

    Usage: :meth:`condition` on the context once, then :meth:`predict` any number of query
    batches (or :meth:`logits` for both at once).  Configs are ``(n, d)`` in the unit cube with
    ``d <= max_hparams`` (padded with zeros as in training).
    """

    def __init__(self, weights: PFNWeights | None = None) -> None:
        self.weights = weights if weights is not None else load_weights()
        self.arch = self.weights.architecture
        self.a = self.weights.arrays
        self._cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._mask: np.ndarray | None = None

    @property
    def n_ids(self) -> int:
        """Rows of the curve-id table: at most ``n_ids - 1`` context curves."""
        return self.arch["n_ids"]

    def _tokens(self, X: np.ndarray, t: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        D = self.arch["max_hparams"]
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] > D:
            raise UserError(f"PFN: configs must be (n, d) with d <= {D} hyperparameters (got shape {X.shape}); "
                            "the shipped PFN was trained on 1 to 10 hyperparameters")
        n = X.shape[0]
        x = np.zeros((n, D), dtype=np.float32)
        x[:, :X.shape[1]] = X
        t = np.asarray(t, dtype=np.float32).reshape(n)
        logt = np.maximum(np.log(np.maximum(t, np.float32(1e-12))), np.float32(_LOG_T_MIN)) / np.float32(-_LOG_T_MIN)
        feats = np.concatenate([x, np.broadcast_to(mask, (n, D)), t[:, None], logt[:, None]], axis=1)
        out: np.ndarray = _linear(feats, self.a, "embed") + self.a["id_table.weight"][ids]
        return out

    def _mask_for(self, d: int) -> np.ndarray:
        m = np.zeros(self.arch["max_hparams"], dtype=np.float32)
        m[:d] = 1.0
        return m

    def _attend(self, i: int, h: np.ndarray, k_ctx: np.ndarray | None, v_ctx: np.ndarray | None,
                self_attend: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One layer; returns the new ``h`` and this layer's keys and values of ``h``."""
        a, pre = self.a, f"layers.{i}."
        n, d = h.shape
        H = self.arch["n_heads"]
        dh = d // H
        qkv = _linear(_layer_norm(h, a[pre + "norm1.weight"], a[pre + "norm1.bias"]), a, pre + "qkv")
        q, k, v = (qkv[:, j * d:(j + 1) * d].reshape(n, H, dh).transpose(1, 0, 2) for j in range(3))  # (H, n, dh)
        if k_ctx is None or v_ctx is None:  # context: attend to itself
            k_ctx, v_ctx = k, v
        scale = np.float32(1.0 / math.sqrt(dh))
        s = (q @ k_ctx.transpose(0, 2, 1)) * scale  # (H, n, n_ctx)
        if self_attend:
            s_self = (q * k).sum(-1, keepdims=True) * scale
            m = np.maximum(s.max(-1, keepdims=True), s_self)
            e, e_self = np.exp(s - m), np.exp(s_self - m)
            z = e.sum(-1, keepdims=True) + e_self
            att = (e @ v_ctx + e_self * v) / z
        else:
            e = np.exp(s - s.max(-1, keepdims=True))
            att = (e @ v_ctx) / e.sum(-1, keepdims=True)
        h = h + _linear(att.transpose(1, 0, 2).reshape(n, d), a, pre + "out")
        f = _gelu(_linear(_layer_norm(h, a[pre + "norm2.weight"], a[pre + "norm2.bias"]), a, pre + "ff1"))
        return h + _linear(f, a, pre + "ff2"), k, v

    def condition(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, ids: np.ndarray) -> None:
        """Run the context (configs, fidelities, values in [0, 1], curve-id rows) through the
        network and keep each layer's keys and values."""
        X = np.asarray(X, dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            raise UserError("PFN: the context is empty; condition on at least one observed point")
        if ids.min() < 0 or ids.max() >= self.n_ids:
            raise UserError(f"PFN: curve ids must be table rows 0..{self.n_ids - 1} (got {ids.min()}..{ids.max()})")
        self._mask = self._mask_for(X.shape[1] if X.ndim == 2 else 0)
        h = self._tokens(X, t, ids, self._mask)
        y32 = np.asarray(y, dtype=np.float32).reshape(-1, 1)
        h = h + _linear(y32, self.a, "y_encoder")
        cache = []
        for i in range(self.arch["n_layers"]):
            h, k, v = self._attend(i, h, None, None, self_attend=False)
            cache.append((k, v))
        self._cache = cache

    def predict_logits(self, X: np.ndarray, t: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(q, n_bins) float32 logits of the queries given the conditioned context."""
        if self._cache is None or self._mask is None:
            raise UserError("PFN: call condition(...) before predict(...)")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 2 and X.shape[1] != int(self._mask.sum()):
            raise UserError(f"PFN: the queries have {X.shape[1]} hyperparameters, the context "
                            f"{int(self._mask.sum())}; encode both with the same space")
        h = self._tokens(X, t, np.asarray(ids, dtype=np.int64), self._mask) + self.a["query"]
        for i, (k_ctx, v_ctx) in enumerate(self._cache):
            h, _, _ = self._attend(i, h, k_ctx, v_ctx, self_attend=True)
        h = _layer_norm(h, self.a["norm.weight"], self.a["norm.bias"])
        return _linear(_gelu(_linear(h, self.a, "head1")), self.a, "head2")

    def predict(self, X: np.ndarray, t: np.ndarray, ids: np.ndarray) -> BarPrediction:
        """The queries' bar distributions given the conditioned context."""
        return BarPrediction(_log_softmax(self.predict_logits(X, t, ids)), self.a["borders"])


_LOADED: dict[Path, PFNWeights] = {}


def _shared_weights(path: Path) -> PFNWeights:
    """Weights loaded once per path and process (read-only arrays shared by every surrogate)."""
    path = path.resolve()
    if path not in _LOADED:
        w = load_weights(path)
        for arr in w.arrays.values():
            arr.setflags(write=False)
        _LOADED[path] = w
    return _LOADED[path]


class PFNSurrogate:
    """The PFN as a learning-curve surrogate for freeze-thaw BO (the ``CurveSurrogate`` protocol
    of ``tunebench.models.curves``, duck-typed).

    :meth:`fit` conditions the network on the observed points (no training: prediction is in
    context); :meth:`predict` gives a :class:`BarPrediction` per query.  A query continues a
    context curve when ``curve`` names it, or (``curve=None``) when its config row equals that
    curve's config exactly; any other query is a new curve.  Values are expected normalized to
    about [0, 1] (lower is better) and are clipped to [0, 1]; fidelities in (0, 1].

    Args:
        weights: a path to a ``.npz`` (its sidecar next to it) or loaded :class:`PFNWeights`;
            None: the shipped ``ftpfn-v4`` weights.
    """

    def __init__(self, weights: str | Path | PFNWeights | None = None) -> None:
        if isinstance(weights, PFNWeights):
            w = weights
        else:
            w = _shared_weights(Path(weights) if weights is not None else default_weights_path())
        self.net = CurvePFNNumpy(w)
        self._anchor: int | None = None
        self._rows: dict[Any, int] = {}
        self._by_config: dict[bytes, int] = {}
        self._d: int | None = None

    @property
    def anchor_size(self) -> int | None:
        """``n_total`` of the last fit (None before the first)."""
        return self._anchor

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, curve: np.ndarray, *, n_total: int) -> None:
        """Condition on the observed points: ``X`` (n, d) unit-cube configs, ``t`` (n,)
        fidelities, ``y`` (n,) normalized values, ``curve`` (n,) curve ids."""
        X = np.asarray(X, dtype=float)
        t = np.asarray(t, dtype=float).reshape(-1)
        y = np.asarray(y, dtype=float).reshape(-1)
        curve = np.asarray(curve).reshape(-1)
        n = len(t)
        if X.ndim != 2 or X.shape[0] != n or len(y) != n or len(curve) != n:
            raise UserError(f"PFNSurrogate.fit: X (n, d), t, y and curve need the same n (got X {X.shape}, "
                            f"t {t.shape}, y {y.shape}, curve {curve.shape})")
        if n == 0:
            raise UserError("PFNSurrogate.fit: no observed points; fit on at least one point")
        if not (np.all(np.isfinite(y)) and np.all(np.isfinite(t)) and np.all(np.isfinite(X))):
            raise UserError("PFNSurrogate.fit: X, t and y must be finite; drop failed or missing observations")
        uniq, rows = np.unique(curve, return_inverse=True)
        if len(uniq) >= self.net.n_ids:
            raise UserError(f"PFNSurrogate.fit: {len(uniq)} curves, the PFN tells at most {self.net.n_ids - 1} apart; "
                            "cap the context to fewer curves")
        self.net.condition(X, t, np.clip(y, 0.0, 1.0), rows)
        self._rows = {c.item() if hasattr(c, "item") else c: int(i) for i, c in enumerate(uniq)}
        self._by_config = {X[j].tobytes(): int(rows[j]) for j in range(n)}
        self._d = X.shape[1]
        self._anchor = int(n_total)

    def _query_rows(self, X: np.ndarray, curve: np.ndarray | None) -> np.ndarray:
        new = len(self._rows)  # an unused table row for every new curve (queries never see each other)
        if curve is not None:
            return np.array([self._rows.get(c.item() if hasattr(c, "item") else c, new)
                             for c in np.asarray(curve).reshape(-1)], dtype=np.int64)
        return np.array([self._by_config.get(row.tobytes(), new) for row in X], dtype=np.int64)

    def predict(self, X: np.ndarray, t: np.ndarray | float, *, noise: bool = True,
                curve: np.ndarray | None = None) -> BarPrediction:
        """The predictive distribution of each row of ``X`` at fidelity ``t`` (a scalar or one per
        row): of an observed value; ``noise`` is ignored (the PFN was trained on noisy observations
        and does not separate the curve from its noise).  ``curve``: optional curve ids of the
        queries (see the class docs)."""
        if self._anchor is None:
            raise UserError("PFNSurrogate.predict: call fit(...) first")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self._d:
            raise UserError(f"PFNSurrogate.predict: X must be (q, {self._d}) like the fitted configs (got {X.shape})")
        t = np.broadcast_to(np.asarray(t, dtype=float), (X.shape[0],))
        return self.net.predict(X, t, self._query_rows(X, curve))

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the anchor and the weights' sha256 (the model itself is fixed)."""
        return {"anchor_size": self._anchor, "weights_sha256": self.net.weights.sha256}

    def load_state_dict(self, state: dict[str, Any], X: np.ndarray, t: np.ndarray, y: np.ndarray,
                        curve: np.ndarray) -> None:
        """Re-condition on the data of the fit at ``state['anchor_size']``."""
        if state.get("weights_sha256") not in (None, self.net.weights.sha256):
            logger.warning("PFNSurrogate: the state was saved with other weights (sha256 %s...), now %s...",
                           str(state["weights_sha256"])[:12], self.net.weights.sha256[:12])
        if state.get("anchor_size") is None:
            self._anchor = None
            return
        self.fit(X, t, y, curve, n_total=int(state["anchor_size"]))
