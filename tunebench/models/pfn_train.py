"""The FT-PFN-style learning-curve transformer in torch, its training batches and its export
(L1 models; torch only, never imported by ``import tunebench`` or ``tunebench.models``).

Inference without torch lives in :mod:`tunebench.models.pfn`, which mirrors :class:`CurvePFN`
operation by operation on the exported weights (see :func:`export_weights`).  Training is driven
by ``benchmarks/train_ftpfn.py``.

The model (the design of FT-PFN, Rakotoarison et al., ICML 2024, written by us)
------------------------------------------------------------------------------
A *task* is a set of points of learning curves: each point has a config ``x`` (unit cube, zero
padded to ``max_hparams`` columns, with a 0/1 mask of the task's columns), a curve id, a fidelity
``t`` in (0, 1] and, for *context* points, an observed value ``y`` in [0, 1] (lower is better).
Every point is one token:

* ``embed(x, mask, t, log t) + id_table[curve id]``, plus ``y_encoder(y)`` for a context point or
  a learned ``query`` vector for a query point (whose value is to be predicted);
* ``n_layers`` pre-norm transformer layers (multi-head attention, then a GELU MLP, each
  residual); in attention the context tokens attend to all context tokens and a query token
  attends to the context tokens and to itself only (never to other queries), so the context's
  representation does not depend on the queries and each query's prediction depends only on
  the context and on the query;
* a final layer norm and an MLP head giving ``n_bins`` logits of a *bar distribution* over
  ``[0, 1]`` (a piecewise-constant density on fixed bins, as in PFNs); the training loss is its
  negative log density at the query's observed value.

Curve ids are table rows: in training each task's curves get random distinct rows of the table
(``n_ids`` rows), so only "same curve or not" is learned; inference numbers the context's curves
0, 1, 2, ... and gives every query on a new curve one further unused row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from tunebench.models.curve_prior import PriorSettings, sample_curve_tasks

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PFNConfig", "CurvePFN", "TaskBatch", "sample_training_batch", "bar_nll", "batch_loss", "state_to_arrays",
           "LOG_T_MIN"]

#: log fidelities below this are clipped in the token features (fidelity 1/256)
LOG_T_MIN = math.log(1.0 / 256.0)


@dataclass(frozen=True)
class PFNConfig:
    """The architecture (saved in the weights' JSON sidecar)."""

    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 256
    n_bins: int = 1000
    n_ids: int = 1024
    max_hparams: int = 10
    d_head_mlp: int = 256

    @property
    def n_features(self) -> int:
        """Token features: config, its column mask, t, log t."""
        return 2 * self.max_hparams + 2

    def to_dict(self) -> dict[str, int]:
        """JSON-able fields."""
        return asdict(self)


class _Layer(nn.Module):
    def __init__(self, cfg: PFNConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ff1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.ff2 = nn.Linear(cfg.d_ff, cfg.d_model)

    def forward(self, h: torch.Tensor, n_ctx: int) -> torch.Tensor:
        B, N, d = h.shape
        H = self.n_heads
        q, k, v = self.qkv(self.norm1(h)).view(B, N, 3, H, d // H).permute(2, 0, 3, 1, 4)  # (B, H, N, dh)
        scale = 1.0 / math.sqrt(d // H)
        s_ctx = torch.matmul(q, k[:, :, :n_ctx].transpose(-1, -2)) * scale  # (B, H, N, n_ctx)
        s_self = (q * k).sum(-1, keepdim=True) * scale  # (B, H, N, 1)
        is_query = torch.arange(N, device=h.device) >= n_ctx
        s_self = s_self.masked_fill(~is_query[:, None], float("-inf"))  # context: self is among n_ctx
        p = torch.softmax(torch.cat([s_ctx, s_self], dim=-1), dim=-1)
        a = torch.matmul(p[..., :n_ctx], v[:, :, :n_ctx]) + p[..., n_ctx:] * v
        h = h + self.out(a.transpose(1, 2).reshape(B, N, d))
        out: torch.Tensor = h + self.ff2(F.gelu(self.ff1(self.norm2(h)), approximate="tanh"))
        return out


class CurvePFN(nn.Module):
    """The transformer (see the module docs); ``forward`` returns the queries' bin logits."""

    def __init__(self, cfg: PFNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.n_features, cfg.d_model)
        self.id_table = nn.Embedding(cfg.n_ids, cfg.d_model)
        nn.init.normal_(self.id_table.weight, std=0.5)
        self.y_encoder = nn.Linear(1, cfg.d_model)
        self.query = nn.Parameter(torch.zeros(cfg.d_model))
        self.layers = nn.ModuleList([_Layer(cfg) for _ in range(cfg.n_layers)])
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head1 = nn.Linear(cfg.d_model, cfg.d_head_mlp)
        self.head2 = nn.Linear(cfg.d_head_mlp, cfg.n_bins)
        self.register_buffer("borders", torch.linspace(0.0, 1.0, cfg.n_bins + 1))

    def features(self, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Token features ``[x, mask, t, log t]`` of ``(B, N, D)`` configs, ``(B, D)`` masks and
        ``(B, N)`` fidelities."""
        logt = torch.log(t.clamp_min(1e-12)).clamp_min(LOG_T_MIN) / -LOG_T_MIN
        m = mask.to(x.dtype)[:, None, :].expand(-1, x.shape[1], -1)
        return torch.cat([x, m, t[..., None], logt[..., None]], dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor, ids: torch.Tensor,
                y_ctx: torch.Tensor, n_ctx: int) -> torch.Tensor:
        """Logits ``(B, N - n_ctx, n_bins)`` of the query tokens (the tokens after ``n_ctx``).

        Args: ``x`` (B, N, D), ``mask`` (B, D), ``t`` (B, N), ``ids`` (B, N) int64,
        ``y_ctx`` (B, n_ctx) the context's values.
        """
        h = self.embed(self.features(x, mask, t)) + self.id_table(ids)
        n_q = x.shape[1] - n_ctx
        h_y = torch.cat([self.y_encoder(y_ctx[..., None]), self.query.expand(h.shape[0], n_q, -1)], dim=1)
        h = h + h_y
        for layer in self.layers:
            h = layer(h, n_ctx)
        hq = self.norm(h[:, n_ctx:])
        out: torch.Tensor = self.head2(F.gelu(self.head1(hq), approximate="tanh"))
        return out


def bar_nll(logits: torch.Tensor, y: torch.Tensor, borders: torch.Tensor) -> torch.Tensor:
    """Per-query negative log density of ``y`` under the bar distribution (same shape as ``y``)."""
    n_bins = logits.shape[-1]
    idx = (torch.searchsorted(borders, y.contiguous(), right=True) - 1).clamp(0, n_bins - 1)
    widths = borders[1:] - borders[:-1]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, idx[..., None])[..., 0]
    out: torch.Tensor = -(logp - torch.log(widths[idx]))
    return out


@dataclass(frozen=True)
class TaskBatch:
    """One training batch: ``n_ctx`` context tokens then the query tokens, per task."""

    x: torch.Tensor
    mask: torch.Tensor
    t: torch.Tensor
    ids: torch.Tensor
    y: torch.Tensor  # (B, N): the context's values then the queries' targets
    n_ctx: int


def sample_training_batch(batch_size: int, seq_len: int, *, generator: torch.Generator,
                          cfg: PFNConfig, device: torch.device | str = "cpu",
                          min_queries: int = 16, prior: PriorSettings | None = None) -> TaskBatch:
    """Tasks from the curve prior, split into context and queries (all tasks of a batch share
    the numbers of curves, budgets, context and query tokens; these vary between batches).

    The split: each point of a task gets an *arrival key* and the ``n_ctx`` earliest points
    form the context.  With probability 0.75 the keys follow a freeze-thaw run: curve ``c``
    starts at a random time and advances one budget per ``step_c`` (log-uniform speeds), so the
    context holds a prefix of each curve (some long, some short, many curves unseen); otherwise
    the keys are random (any subset).  The queries are random points among the others: later
    budgets of observed curves and points of unseen curves.
    """
    g = generator
    dev = torch.device(device)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, device=dev)

    def randint(lo: int, hi: int) -> int:  # inclusive
        return int(torch.randint(lo, hi + 1, (1,), generator=g, device=dev).item())

    n_fid = randint(4, 64)
    min_curves = math.ceil(seq_len / n_fid) + 1
    n_curves = int(min(cfg.n_ids - 1, max(min_curves, round(min_curves * math.exp(rand(1).item() * math.log(8))))))
    n_ctx = randint(1, seq_len - min_queries)
    n_q = seq_len - n_ctx
    tasks = sample_curve_tasks(batch_size, n_curves, n_fid, max_hparams=cfg.max_hparams, generator=g, device=dev,
                               settings=prior)
    B, C, Fn = batch_size, n_curves, n_fid
    f_idx = torch.arange(Fn, device=dev, dtype=torch.float32)
    start = rand(B, C, 1) * 2.0
    step = torch.exp((rand(B, C, 1) * 2 - 1) * math.log(30.0)) / Fn
    key_ft = start + (f_idx + 1) * step
    key = torch.where(rand(B, 1, 1) < 0.75, key_ft, rand(B, C, Fn)).reshape(B, C * Fn)
    order = torch.argsort(key, dim=1)
    ctx = order[:, :n_ctx]
    in_ctx = torch.zeros(B, C * Fn, dtype=torch.bool, device=dev).scatter_(1, ctx, True)
    q_key = torch.where(in_ctx, torch.full_like(key, 2.0), rand(B, C * Fn))
    qry = torch.argsort(q_key, dim=1)[:, :n_q]
    sel = torch.cat([ctx, qry], dim=1)  # (B, N) flat point indices
    c_sel, f_sel = sel // Fn, sel % Fn
    perm = torch.argsort(rand(B, cfg.n_ids), dim=1)[:, :C]  # random distinct id rows per task
    x = torch.gather(tasks.configs, 1, c_sel[..., None].expand(-1, -1, cfg.max_hparams))
    y = torch.gather(tasks.observed.reshape(B, C * Fn), 1, sel)
    return TaskBatch(x=x, mask=tasks.hparam_mask, t=tasks.fidelities[f_sel], ids=torch.gather(perm, 1, c_sel),
                     y=y, n_ctx=n_ctx)


def batch_loss(model: CurvePFN, batch: TaskBatch) -> torch.Tensor:
    """Mean negative log density of the batch's query values."""
    logits = model(batch.x, batch.mask, batch.t, batch.ids, batch.y[:, :batch.n_ctx], batch.n_ctx)
    return bar_nll(logits, batch.y[:, batch.n_ctx:], model.borders).mean()  # type: ignore[arg-type]


def state_to_arrays(model: CurvePFN) -> Iterator[tuple[str, Any]]:
    """``(name, float32 numpy array)`` of every parameter and buffer, for the ``.npz``."""
    for name, value in model.state_dict().items():
        yield name, value.detach().to("cpu", torch.float32).numpy()
