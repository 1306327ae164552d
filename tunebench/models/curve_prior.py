"""A prior over learning curves, sampled in batches with torch (CPU or GPU) (L1 models).

What it is for: training a prior-fitted network (PFN) that extrapolates learning curves in
context, as FT-PFN does in ifBO (Rakotoarison, Adriaensen, Mallik, Garibov, Bergman, Hutter:
"In-Context Freeze-Thaw Bayesian Optimization for Hyperparameter Optimization", ICML 2024).  One
draw of :func:`sample_curve_tasks` is a batch of *tasks*; a task is one tuning problem: a random
function from configurations (points of the unit cube ``[0, 1]^D``) to learning curves, evaluated
at ``n_configs`` random configurations and ``n_fidelities`` budgets.

Orientation and scale: curves are **errors, lower is better**, in ``[0, 1]`` (think ``1 -
accuracy``, or any metric normalized to the unit interval).  Fidelities are
``(1, 2, ..., F) / F``: the largest budget is 1, budget 0 is the untrained model.

torch is an optional dependency (the ``torch`` extra); this module imports it inside functions,
and nothing on the path of ``import tunebench`` imports this module.

The model of one task
---------------------
Task-level draws (the same for every configuration of the task):

* ``n_hparams`` ~ uniform on ``{1, ..., max_hparams}`` (or given); configs ~ uniform on
  ``[0, 1]^n_hparams``, padded with zeros to ``max_hparams`` columns (see ``hparam_mask``).
* start error ``e0 = max(v1, v2)``, ``v1, v2 ~ U(0, 1)``; every curve starts at ``e0`` at budget 0
  (an untrained model is as bad whatever its hyperparameters).  *From FT-PFN* (its ``y0 =
  min(u1, u2)`` on accuracy, mirrored).
* error floor ``e_floor = 0`` with probability 0.75, else ``min(v1, v2)``; asymptotes lie in
  ``[e_floor, e0]``.  *From FT-PFN* (its ``ymax``, mirrored).
* a random network ``g: [0, 1]^D -> R^K`` (K = 27 latent outputs, one per curve parameter
  below): inputs ``(x_d - 0.5) * s * rho_d`` with roughness ``s ~ logU(0.3, 3)`` (version 1:
  ``logU(0.5, 10)``; LCBench's maps are smoother, see below) and relevances
  ``rho_d ~ Exp(1)`` normalized to unit Euclidean norm over the task's dimensions (so a few
  hyperparameters matter more than others, and the first layer's pre-activation scale does not
  depend on ``D``); three tanh layers of width 32, weights ``N(0, gain^2 / fan_in)`` with ``gain ~
  U(0.8, 2)`` per task, biases ``N(0, 0.5^2)``; a linear output layer ``N(0, 1 / 32)``.  *Chosen by
  us*: FT-PFN uses 8-15 tanh layers of width 36-149 with small random weights, sparsity and
  pre-activation noise; a shallower network with an explicit roughness ``s`` gives the same
  "nearby configs, similar curves" with the smoothness a visible knob, and runs batched over tasks.
* each network output is made uniform over the cube by its empirical distribution function on
  128 reference configurations drawn uniformly per task (piecewise linear, so still smooth in the
  config); ``z = sqrt(1 - r) * a_k + sqrt(r) * Phi^-1(F_k(g_k(x)))`` mixes a per-task offset ``a_k
  ~ N(0, 1)`` with the config's part, with config sensitivity ``r_k ~ U(0.1, 0.95)`` per task and
  curve parameter (version 1: one ``r ~ U(0.2, 0.9)`` per task; so that a task's configs may differ
  mostly in speed, or mostly in asymptote); ``u_k
  = Phi(z)`` is then (marginally over tasks and configs) uniform on (0, 1), and each curve
  parameter is ``u_k`` pushed through the inverse distribution function of its marginal below.
  *From FT-PFN* in spirit (it maps its network's outputs to uniforms with a fixed table of sorted
  outputs, pooled over tasks); the per-task reference set and the explicit task/config split
  ``r`` are ours.
* speed against quality (version 2): the normal scores of the asymptote and of the saturation
  budget ``xsat_max`` are correlated over a task's configs by ``rho ~ U(0, 0.9)`` per task
  (``z_asym <- -rho z_sat + sqrt(1 - rho^2) z_asym``): configs that converge fast tend to end worse
  (as a large learning rate does).  *Ours*.

Per-curve parameters (marginal distributions; ``k`` runs over the four basis curves):

* asymptote ``e_inf ~ U(e_floor, e0)``.  *FT-PFN*.
* mixing weights ``w ~ Dirichlet(1, 1, 1, 1)`` (normalized ``Exp(1)`` draws).  *FT-PFN*.
* saturation budget ``xsat_k = xsat_max * q_k / max_j q_j`` with ``xsat_max = 10^N(0, 1)`` (in
  units of the largest budget; about half the curves saturate within the range) and ``q_k ~
  Exp(1)``.  *FT-PFN*.
* precision ``P_k = 10^U(0, 3)``: at ``x = xsat_k`` a basis curve has closed all but ``1 / P_k``
  of its gap to the asymptote (``P`` near 1: a nearly flat component).  *FT-PFN*.
* post-saturation rate ``rate_k = 1 - E``, ``E ~ Exp(1)`` truncated to ``[0, 1)``: beyond
  ``xsat_k`` progress goes on at ``rate_k`` times the budget's speed (the curve flattens).
  *FT-PFN* samples ``1 - Exp(1)`` untruncated; its negative part (about 37 %) reverses progress,
  which we model by the explicit divergence below instead.
* shapes: power ``a ~ exp(N(1, 1))``; exponential (Weibull/Janoschek) ``a ~ exp(N(0, 1))``;
  Hill ``a ~ exp(N(0.5, 0.5))`` (*FT-PFN*); log curve ``lambda ~ exp(N(3, 1.5))`` (*ours*, see
  below).
* observation noise ``sigma = exp(N(-5, 1))`` (median 0.0067) unless ``noise_std`` is given.
  *FT-PFN*.
* divergence: with probability ``divergence_prob`` (default 0.1) a curve diverges: at a break
  budget ``x_b ~ U(0.1, 0.9)`` its progress stops and its error climbs back towards the start
  ``e0``, reaching ``e(x_b) + A (e0 - e(x_b))`` at budget 1, with ``A = 10^U(-1.5, 0)`` (from
  mild overfitting, 3 % of the way back, to a collapse to the start error), along
  ``((x - x_b) / (1 - x_b))^p``, ``p ~ exp(N(0, 0.5))``.  *Ours*: FT-PFN obtains divergence from a
  negative post-saturation rate, which is only visible when the curve has not saturated yet;
  ours is explicit, so its share is a parameter and it is visible.

The curve: with ``t_k = x'_k / xsat_k`` and ``x'_k = x`` before ``xsat_k``, ``xsat_k + rate_k (x -
xsat_k)`` after, each basis curve's remaining gap fraction ``g_k(t)`` (1 at ``t = 0``, ``1 / P_k``
at ``t = 1``, decreasing) is

* power:        ``(1 + (P^(1/a) - 1) t)^-a``
* exponential:  ``P^(-t^a)``
* log curve:    ``1 / (1 + (P - 1) log(1 + lambda t) / log(1 + lambda))``
* Hill:         ``1 / (1 + (P - 1) t^a)``

and ``e(x) = e_inf + (e0 - e_inf) * sum_k w_k g_k(t_k)`` (curves without divergence or transient
are non-increasing), then the divergence above, then the early transient below, then ``observed =
clip(e(x) + sigma * N(0, 1), 0, 1)``.

The first three families and the Hill curve follow FT-PFN's basis (power law, exponential,
logarithmic, Hill); FT-PFN's logarithmic basis is ``log(a) / log(a + (a^P - a) t)``, ours has the
same end points without the overflow of ``a^P``.  The earlier LC-PFN prior (Adriaensen et al.,
NeurIPS 2023) mixes pow3, ilog2 and Janoschek curves; these are covered by the power, log and
exponential families.

Early transient (version 2, *ours*): with probability 0.7 a task's curves carry a config-driven
offset that fades over the first budgets, ``e(x) += A u_c exp(-x / tau)``, with ``A ~ U(0, 1)`` and
``tau = 10^U(-2.3, -1.3)`` (0.5 % to 5 % of the largest budget) per task and ``u_c`` one more
output of the task's network made uniform as above (its own sensitivity ``r``); so a task's errors
at its first budgets may say little about its later ones.  Version 3 (``transient_signed=False``)
only slows early progress; version 2 used ``A (2 u_c - 1)``, which also pulls early errors down,
so that its curves rise afterwards: 22 % of version 2's noiseless curves end above their best by
more than 0.01 and 12 % by more than 0.05, version 3's 8 % and 3 %, LCBench's development tasks
13 % and 0.6 %.  On LCBench the error after the first
of 52 epochs hardly correlates with the last epoch's over a task's configs (median 0.06 over the
development tasks, ``benchmarks/curve_prior_speed.py --lcbench``), after the second 0.61, after
the fifth 0.83; version 1 of the prior put it at 0.72 after the first, version 2 at 0.59,
version 3 at 0.62 (whose curves also reach 34 % / 70 % of their improvement by budget 2 / 5 of 52,
closer to LCBench's 51 % / 84 % than version 2's 26 % / 59 %).  The
transient's draws come after all others, so the same seed without it gives the same curves
otherwise.

LCBench
-------
``benchmarks/curve_prior_speed.py --lcbench`` sets the prior's noiseless curves (64 tasks x 200
configs x 52 budgets, seed 0, every version) beside LCBench's validation error on the development
tasks.  The table below was made for version 1 against all 34 tasks (YAHPO lcbench
surrogate, 34 tasks x 200 random configs, ``1 - val_accuracy / 100`` at epochs 1..52), both on the
absolute [0, 1] error scale (LCBench needs no further normalization; per-task min-max
normalization would put its starts near 0.83 and its ends near 0.29, medians)::

                                                  prior                 LCBench
    error at the first budget, 5/50/95 %          0.10 / 0.47 / 0.89    0.39 / 0.61 / 0.99
    error at the last budget,  5/50/95 %          0.06 / 0.32 / 0.81    0.05 / 0.33 / 0.88
    per-task std over configs, first / last       0.09 / 0.11           0.06 / 0.10
    median share of the improvement reached
      at budget 2 / 5 / 10 / 26 of 52             0.21 / 0.52 / 0.74 / 0.93   0.36 / 0.73 / 0.83 / 0.94
    curves ending above their best by > 0.01      8.5 %                 14 %
                                  by > 0.05       3.1 %                 1.4 %

So the prior covers LCBench's ranges (it is broader, as FT-PFN's is meant to be: it also holds
tasks that start low, and flat curves); LCBench's curves start higher (models at chance after
one epoch), converge a little earlier, and get worse more often but by less (mild overfitting;
the prior's divergences are rarer and sometimes collapse to the start error).  Version 1 kept
FT-PFN's distributions rather than fitting them to LCBench, which is also the evaluation
benchmark; version 2 departs from them where LCBench's development tasks (and only those) showed
a mismatch that matters to freeze-thaw decisions: how much early errors tell about later ones,
and how smooth the configuration's effect is (see the early transient above).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tunebench.errors import UserError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["CurveBatch", "sample_curve_tasks", "LATENTS", "PRIOR_VERSION", "PRIOR_SETTINGS", "PriorSettings"]

#: bumped whenever a distribution changes (a PFN trained on one version names it)
PRIOR_VERSION = 3

#: the curve parameters driven by the per-task network, in the order of its outputs
LATENTS: tuple[str, ...] = (
    "asymptote",
    "w_pow", "w_exp", "w_log", "w_hill",
    "shape_pow", "shape_exp", "shape_log", "shape_hill",
    "xsat_max",
    "xsat_pow", "xsat_exp", "xsat_log", "xsat_hill",
    "prec_pow", "prec_exp", "prec_log", "prec_hill",
    "rate_pow", "rate_exp", "rate_log", "rate_hill",
    "noise", "diverge", "break", "rise", "rise_shape",
)
_K = len(LATENTS)
_IDX = {name: i for i, name in enumerate(LATENTS)}
_WIDTH = 32
_HIDDEN_LAYERS = 3
_N_REFERENCE = 128


@dataclass(frozen=True)
class CurveBatch:
    """A batch of ``B`` tasks of ``C`` learning curves at ``F`` budgets (see the module docs).

    Attributes:
        configs: ``(B, C, max_hparams)`` in ``[0, 1]``; columns at and past a task's
            ``n_hparams`` are 0.
        hparam_mask: ``(B, max_hparams)`` bool, True on a task's hyperparameter columns.
        n_hparams: ``(B,)`` int64, the number of hyperparameters of each task.
        fidelities: ``(F,)``, ``(1..F) / F``.
        curves: ``(B, C, F)`` noiseless errors in ``[0, 1]``, lower is better.
        observed: ``(B, C, F)`` ``curves`` plus Gaussian noise, clipped to ``[0, 1]``.
        noise_std: ``(B, C)`` the noise standard deviation of each curve.
        start: ``(B,)`` each task's error at budget 0 (every curve of the task starts there).
        asymptote: ``(B, C)`` each curve's asymptote (what it would reach without divergence).
        diverges: ``(B, C)`` bool, True for a curve that gets worse after a break budget.
        transient: ``(B,)`` the amplitude of each task's early transient (0: none).
    """

    configs: torch.Tensor
    hparam_mask: torch.Tensor
    n_hparams: torch.Tensor
    fidelities: torch.Tensor
    curves: torch.Tensor
    observed: torch.Tensor
    noise_std: torch.Tensor
    start: torch.Tensor
    asymptote: torch.Tensor
    diverges: torch.Tensor
    transient: torch.Tensor


@dataclass(frozen=True)
class PriorSettings:
    """The knobs of the prior that differ between its versions (see the module docs; the
    defaults are the current version's, :data:`PRIOR_SETTINGS` holds every version's).

    Attributes:
        roughness: the range of the log-uniform roughness ``s`` of a task's config -> curve map.
        sensitivity: the range of the uniform config sensitivity ``r`` (the share of a curve
            parameter's variance that the config explains within a task).
        latent_sensitivity: draw ``r`` per curve parameter (True) or once per task (False).
        tradeoff: the range of the uniform per-task correlation ``rho`` between a curve's speed
            and its asymptote's error (fast curves end worse); ``(0, 0)``: none.
        transient_prob: the probability that a task has an early transient.
        transient_scale: the largest amplitude of a transient.
        transient_tau: the range of ``log10`` of the transient's decay budget (uniform).
        transient_signed: the transient's offset ``A (2 u - 1)`` moves early errors up or down
            (True), or ``A u`` only up, slowing early progress (False).
    """

    roughness: tuple[float, float] = (0.3, 3.0)
    sensitivity: tuple[float, float] = (0.1, 0.95)
    latent_sensitivity: bool = True
    tradeoff: tuple[float, float] = (0.0, 0.9)
    transient_prob: float = 0.7
    transient_scale: float = 1.0
    transient_tau: tuple[float, float] = (-2.3, -1.3)
    transient_signed: bool = False

    def __post_init__(self) -> None:
        for name in ("roughness", "sensitivity", "tradeoff", "transient_tau"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or not value[0] <= value[1]:
                raise UserError(f"PriorSettings: {name} must be a range (low, high) with low <= high (got {value!r})")
            object.__setattr__(self, name, value)
        if not (0.0 < self.roughness[0] and 0.0 <= self.sensitivity[0] and self.sensitivity[1] <= 1.0
                and -1.0 < self.tradeoff[0] and self.tradeoff[1] < 1.0 and 0.0 <= self.transient_prob <= 1.0
                and self.transient_scale >= 0.0):
            raise UserError(f"PriorSettings: a setting out of range in {self!r}: roughness > 0, sensitivity in "
                            "[0, 1], tradeoff in (-1, 1), transient_prob in [0, 1], transient_scale >= 0")

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (for a weights sidecar)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


#: the settings of each prior version (version 1: before the transient, the tradeoff and the
#: per-parameter sensitivity, its draws the same as before these settings existed; version 2: a
#: transient that moves early errors up or down; version 3: one that only slows early progress)
PRIOR_SETTINGS: dict[int, PriorSettings] = {
    1: PriorSettings(roughness=(0.5, 10.0), sensitivity=(0.2, 0.9), latent_sensitivity=False, tradeoff=(0.0, 0.0),
                     transient_prob=0.0),
    2: PriorSettings(transient_signed=True),
    3: PriorSettings(),
}


def _require_torch() -> None:
    if importlib.util.find_spec("torch") is None:  # pragma: no cover - depends on the installation
        raise UserError("the learning-curve prior needs torch: pip install 'tunebench[torch]'")


def _check(batch_size: int, n_configs: int, n_fidelities: int, n_hparams: int | None, max_hparams: int,
           divergence_prob: float, noise_std: float | None) -> None:
    for name, value in (("batch_size", batch_size), ("n_configs", n_configs),
                        ("n_fidelities", n_fidelities), ("max_hparams", max_hparams)):
        if int(value) != value or value < 1:
            raise UserError(f"sample_curve_tasks: {name} must be a positive integer (got {value!r})")
    if n_hparams is not None and (int(n_hparams) != n_hparams or not 1 <= n_hparams <= max_hparams):
        raise UserError(f"sample_curve_tasks: n_hparams must be an integer from 1 to max_hparams={max_hparams} "
                        f"(got {n_hparams!r}); pass None to draw it per task")
    if not 0.0 <= divergence_prob <= 1.0:
        raise UserError(f"sample_curve_tasks: divergence_prob must be in [0, 1] (got {divergence_prob!r})")
    if noise_std is not None and not (noise_std >= 0.0 and math.isfinite(noise_std)):
        raise UserError(f"sample_curve_tasks: noise_std must be a finite number >= 0 (got {noise_std!r}); "
                        "pass None for FT-PFN's per-curve log-normal noise")


def sample_curve_tasks(
    batch_size: int,
    n_configs: int,
    n_fidelities: int,
    *,
    n_hparams: int | None = None,
    max_hparams: int = 10,
    divergence_prob: float = 0.1,
    noise_std: float | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    settings: PriorSettings | None = None,
) -> CurveBatch:
    """Sample ``batch_size`` tasks of ``n_configs`` learning curves at ``n_fidelities`` budgets.

    Args:
        batch_size: the number of tasks ``B``.
        n_configs: the number of configurations (curves) per task ``C``.
        n_fidelities: the number of budgets ``F``; the budgets are ``(1..F) / F``.
        n_hparams: the number of hyperparameters of every task (1..``max_hparams``); None: drawn
            uniformly per task.
        max_hparams: the width of ``configs`` (tasks with fewer hyperparameters are zero-padded).
        divergence_prob: the probability that a curve diverges (see the module docs).
        noise_std: the observation noise of every curve; None: ``exp(N(-5, 1))`` per curve.
        seed: seeds a new generator on ``device`` (ignored when ``generator`` is given); None and
            no generator: a random seed.
        generator: a ``torch.Generator`` on ``device`` to draw from (it advances).
        device: where the tensors are made (default: the generator's device, else CPU).
        dtype: a floating dtype (default ``torch.float32``).
        settings: the version-specific knobs (default: :class:`PriorSettings`, the current
            version's; ``PRIOR_SETTINGS[1]`` reproduces version 1).

    Returns:
        A :class:`CurveBatch`.  The same seed (or generator state) on the same device gives the
        same tensors; CPU and CUDA generators give different streams.

    Raises:
        UserError: a size or probability out of range, or torch not installed.
    """
    _require_torch()
    import torch as th

    _check(batch_size, n_configs, n_fidelities, n_hparams, max_hparams, divergence_prob, noise_std)
    dev = th.device(device) if device is not None else generator.device if generator is not None else th.device("cpu")
    dtype = th.float32 if dtype is None else dtype
    if generator is None:
        generator = th.Generator(device=dev)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
    elif generator.device.type != dev.type:
        raise UserError(f"sample_curve_tasks: the generator is on {generator.device} but device is {dev}; "
                        "make the generator with torch.Generator(device=...) on the same device")
    g = generator
    B, C, F, D = int(batch_size), int(n_configs), int(n_fidelities), int(max_hparams)
    kw: dict[str, Any] = {"generator": g, "device": dev, "dtype": dtype}

    def rand(*shape: int) -> torch.Tensor:
        return th.rand(*shape, **kw)

    def randn(*shape: int) -> torch.Tensor:
        return th.randn(*shape, **kw)

    # ---- task level
    if n_hparams is None:
        n_hp = th.randint(1, D + 1, (B,), generator=g, device=dev)
    else:
        n_hp = th.full((B,), int(n_hparams), dtype=th.int64, device=dev)
    mask = th.arange(D, device=dev)[None, :] < n_hp[:, None]  # (B, D)
    maskf = mask.to(dtype)
    v = rand(B, 2)
    start = v.max(dim=1).values
    floor = th.where(rand(B) < 0.75, th.zeros_like(start), v.min(dim=1).values)
    ps = PriorSettings() if settings is None else settings
    r_lo, r_hi = ps.roughness
    roughness = th.exp(math.log(r_lo) + rand(B) * math.log(r_hi / r_lo))  # logU(r_lo, r_hi)
    relevance = -th.log1p(-rand(B, D) * (1 - 1e-7)) * maskf  # Exp(1) on active columns
    relevance = relevance / relevance.norm(dim=1, keepdim=True).clamp_min(1e-12)
    in_scale = roughness[:, None] * relevance  # (B, D)
    gain = 0.8 + 1.2 * rand(B)
    s_lo, s_hi = ps.sensitivity
    sens = s_lo + (s_hi - s_lo) * (rand(B, _K) if ps.latent_sensitivity else rand(B)[:, None].expand(B, _K))
    offset = randn(B, 1, _K)

    # ---- the per-task network on the configs and on a reference set
    configs = rand(B, C, D) * maskf[:, None, :]
    reference = rand(B, _N_REFERENCE, D) * maskf[:, None, :]
    weights = [randn(B, D, _WIDTH)]
    weights += [randn(B, _WIDTH, _WIDTH) * (gain[:, None, None] / math.sqrt(_WIDTH))
                for _ in range(_HIDDEN_LAYERS - 1)]
    biases = [0.5 * randn(B, 1, _WIDTH) for _ in range(_HIDDEN_LAYERS)]
    w_out = randn(B, _WIDTH, _K) / math.sqrt(_WIDTH)
    weights[0] = weights[0] * gain[:, None, None]

    def hidden(x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = (x - 0.5) * in_scale[:, None, :]
        for w, b in zip(weights, biases, strict=True):
            h = th.tanh(th.baddbmm(b, h, w))
        return h

    feats = hidden(th.cat([configs, reference], dim=1))  # (B, C + R, W)
    out = th.bmm(feats, w_out)  # (B, C + R, K)
    u = _latent_uniforms(out[:, :C], out[:, C:], offset, sens)  # (B, C, K)

    if ps.tradeoff != (0.0, 0.0):  # speed against quality: fast curves end worse (see the module docs)
        rho = (ps.tradeoff[0] + (ps.tradeoff[1] - ps.tradeoff[0]) * rand(B))[:, None]
        z_a = th.special.ndtri(u[..., _IDX["asymptote"]])
        z_s = th.special.ndtri(u[..., _IDX["xsat_max"]])
        z_a = -rho * z_s + th.sqrt(1.0 - rho * rho) * z_a
        u = u.clone()
        u[..., _IDX["asymptote"]] = th.special.ndtr(z_a).clamp(1e-6, 1.0 - 1e-6)

    def lat(name: str) -> torch.Tensor:
        return u[..., _IDX[name]]

    def lat4(prefix: str) -> torch.Tensor:  # (B, C, 4) for the four basis curves
        i = _IDX[f"{prefix}_pow"]
        return u[..., i:i + 4]

    def ndtri(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = th.special.ndtri(x)  # (torch.special is untyped)
        return out

    # ---- per-curve parameters
    asymptote = floor[:, None] + lat("asymptote") * (start - floor)[:, None]  # (B, C)
    w = -th.log1p(-lat4("w"))
    w = w / w.sum(dim=-1, keepdim=True)
    zs = ndtri(lat4("shape"))
    shape = th.exp(th.stack([1.0 + zs[..., 0], zs[..., 1], 3.0 + 1.5 * zs[..., 2],
                                   0.5 + 0.5 * zs[..., 3]], dim=-1))
    xsat_max = th.pow(10.0, ndtri(lat("xsat_max")))
    q = -th.log1p(-lat4("xsat"))
    xsat = xsat_max[..., None] * q / q.max(dim=-1, keepdim=True).values  # (B, C, 4)
    log_prec = 3.0 * math.log(10.0) * lat4("prec")  # ln P, P = 10^U(0, 3)
    rate = 1.0 + th.log1p(-lat4("rate") * (1.0 - math.exp(-1.0)))  # 1 - truncated Exp(1)
    if noise_std is None:
        sigma = th.exp(-5.0 + ndtri(lat("noise")))
    else:
        sigma = th.full((B, C), float(noise_std), device=dev, dtype=dtype)
    diverges = lat("diverge") < divergence_prob
    x_break = 0.1 + 0.8 * lat("break")
    rise = th.pow(10.0, -1.5 + 1.5 * lat("rise"))  # 10^U(-1.5, 0)
    rise_power = th.exp(0.5 * ndtri(lat("rise_shape")))

    # ---- curves, (B, C, F)
    fid = th.arange(1, F + 1, device=dev, dtype=dtype) / F
    gap = _gap_fraction(fid, w, shape, xsat, log_prec, rate)  # (B, C, F)
    curves = asymptote[..., None] + (start[:, None, None] - asymptote[..., None]) * gap
    # divergence: progress stops at the break budget, then the error climbs back towards the start
    xb = x_break[..., None]
    gap_b = _gap_fraction(xb, w, shape, xsat, log_prec, rate)  # (B, C, 1)
    at_break = asymptote[..., None] + (start[:, None, None] - asymptote[..., None]) * gap_b
    ramp = ((fid - xb) / (1.0 - xb)).clamp(0.0, 1.0) ** rise_power[..., None] * rise[..., None]
    climbed = at_break + ramp * (start[:, None, None] - at_break)
    curves = th.where(diverges[..., None] & (fid > xb), climbed, curves).clamp(0.0, 1.0)
    noise = randn(B, C, F)
    amp = th.zeros_like(start)
    if ps.transient_prob > 0.0:
        # an early transient: a config-driven offset decaying over the first budgets, unrelated to
        # the curve's later course (drawn after everything else: the draws before are as without it)
        w_tr = randn(B, _WIDTH, 1) / math.sqrt(_WIDTH)
        o_tr = th.bmm(feats, w_tr)  # (B, C + R, 1): one more output of the task's network
        s_tr = (s_lo + (s_hi - s_lo) * rand(B))[:, None]
        u_tr = _latent_uniforms(o_tr[:, :C], o_tr[:, C:], randn(B, 1, 1), s_tr)[..., 0]  # (B, C)
        has = rand(B) < ps.transient_prob
        amp = th.where(has, rand(B) * ps.transient_scale, th.zeros_like(start))
        t_lo, t_hi = ps.transient_tau
        tau = th.pow(10.0, t_lo + (t_hi - t_lo) * rand(B))
        shift = 2.0 * u_tr - 1.0 if ps.transient_signed else u_tr
        bump = (amp[:, None] * shift)[..., None] * th.exp(-fid / tau[:, None, None])
        curves = (curves + bump).clamp(0.0, 1.0)
    observed = (curves + sigma[..., None] * noise).clamp(0.0, 1.0)
    return CurveBatch(configs=configs, hparam_mask=mask, n_hparams=n_hp, fidelities=fid, curves=curves,
                      observed=observed, noise_std=sigma, start=start, asymptote=asymptote, diverges=diverges,
                      transient=amp)


def _latent_uniforms(out: torch.Tensor, ref: torch.Tensor, offset: torch.Tensor,
                     sensitivity: torch.Tensor) -> torch.Tensor:
    """Network outputs ``out`` (B, C, K) -> latent uniforms (B, C, K): each output through the
    piecewise-linear empirical distribution function of the task's reference outputs ``ref`` (B,
    R, K), to a normal score, mixed with the task's offset, back to a uniform."""
    import torch as th

    R = ref.shape[1]
    knots = ref.transpose(1, 2).sort(dim=-1).values.contiguous()  # (B, K, R)
    values = out.transpose(1, 2).contiguous()  # (B, K, C)
    i = th.searchsorted(knots, values)  # 0..R
    lo_i = (i - 1).clamp(0, R - 1)
    hi_i = i.clamp(0, R - 1)
    lo = knots.gather(-1, lo_i)
    hi = knots.gather(-1, hi_i)
    span = hi - lo
    frac = th.where(span > 0, (values - lo) / th.where(span > 0, span, th.ones_like(span)),
                       th.zeros_like(span)).clamp(0.0, 1.0)
    cdf = (lo_i.to(out.dtype) + 1.0 + frac * (hi_i - lo_i).to(out.dtype)) / (R + 1)
    score = th.special.ndtri(cdf).transpose(1, 2)  # (B, C, K)
    r = sensitivity[:, None, :]
    z = th.sqrt(1.0 - r) * offset + th.sqrt(r) * score
    u: torch.Tensor = th.special.ndtr(z)
    return u.clamp(1e-6, 1.0 - 1e-6)


def _gap_fraction(x: torch.Tensor, w: torch.Tensor, shape: torch.Tensor, xsat: torch.Tensor,
                  log_prec: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """The mixture's remaining gap fraction ``sum_k w_k g_k(t_k)`` at budgets ``x`` ((F,) or (B,
    C, 1)), for per-curve parameters of shape (B, C, 4); returns (B, C, F) (or (B, C, 1))."""
    import torch as th

    xs = xsat[..., None, :]  # (B, C, 1, 4)
    xx = x[..., None]  # (F, 1) or (B, C, 1, 1)
    progress = th.where(xx <= xs, xx, xs + rate[..., None, :] * (xx - xs))
    t = progress / xs  # (B, C, F, 4)
    a = shape[..., None, :]
    lp = log_prec[..., None, :]
    t_pow, t_exp, t_log, t_hill = t.unbind(-1)
    a_pow, a_exp, lam, a_hill = a.unbind(-1)
    lp_pow, lp_exp, lp_log, lp_hill = lp.unbind(-1)
    # power: (1 + (P^(1/a) - 1) t)^-a, in logs: with m = ln P / a, ln(1 + (e^m - 1) t) = m + ln(t + (1 - t) e^-m)
    m = lp_pow / a_pow
    g_pow = th.exp(-a_pow * (m + th.log(t_pow + (1.0 - t_pow) * th.exp(-m))))
    g_exp = th.exp(-lp_exp * t_exp ** a_exp)
    pm1 = th.expm1(lp_log)
    g_log = 1.0 / (1.0 + pm1 * th.log1p(lam * t_log) / th.log1p(lam))
    g_hill = 1.0 / (1.0 + th.expm1(lp_hill) * t_hill ** a_hill)
    return th.stack([g_pow, g_exp, g_log, g_hill], dim=-1).mul(w[..., None, :]).sum(-1)
