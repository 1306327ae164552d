"""The learning-curve prior (tunebench.models.curve_prior): shapes, ranges, the curve model's
promises (non-increasing unless diverging, the divergence share, the noise level), smoothness over
the config cube, reproducibility and input checks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from tunebench.errors import UserError

torch = pytest.importorskip("torch")

from tunebench.models.curve_prior import (  # noqa: E402
    PRIOR_SETTINGS,
    PRIOR_VERSION,
    CurveBatch,
    PriorSettings,
    sample_curve_tasks,
)


@pytest.fixture(scope="module")
def batch() -> CurveBatch:
    return sample_curve_tasks(200, 40, 30, seed=0)


def test_shapes_dtypes_and_ranges(batch: CurveBatch) -> None:
    B, C, F, D = 200, 40, 30, 10
    assert batch.configs.shape == (B, C, D) and batch.configs.dtype == torch.float32
    assert batch.hparam_mask.shape == (B, D) and batch.hparam_mask.dtype == torch.bool
    assert batch.n_hparams.shape == (B,) and batch.n_hparams.dtype == torch.int64
    assert batch.fidelities.shape == (F,)
    assert batch.curves.shape == batch.observed.shape == (B, C, F)
    assert batch.noise_std.shape == batch.asymptote.shape == batch.diverges.shape == (B, C)
    assert batch.start.shape == (B,)
    torch.testing.assert_close(batch.fidelities, torch.arange(1, F + 1, dtype=torch.float32) / F)
    for name in ("configs", "curves", "observed", "start", "asymptote"):
        t = getattr(batch, name)
        assert torch.isfinite(t).all() and t.min() >= 0.0 and t.max() <= 1.0, name
    # asymptotes lie below the task's start (lower is better)
    assert (batch.asymptote <= batch.start[:, None] + 1e-6).all()


def test_padding_matches_n_hparams(batch: CurveBatch) -> None:
    # drawn per task: every count from 1 to 10 appears among 200 tasks
    assert set(batch.n_hparams.tolist()) == set(range(1, 11))
    assert torch.equal(batch.hparam_mask.sum(1), batch.n_hparams)
    assert (batch.configs[~batch.hparam_mask[:, None, :].expand_as(batch.configs)] == 0).all()
    active = batch.configs[batch.hparam_mask[:, None, :].expand_as(batch.configs)]
    assert active.min() > 0.0 and 0.45 < float(active.mean()) < 0.55  # uniform on the cube


@pytest.mark.parametrize("n_hparams", [1, 4, 10])
def test_fixed_n_hparams(n_hparams: int) -> None:
    b = sample_curve_tasks(5, 8, 6, n_hparams=n_hparams, seed=1)
    assert (b.n_hparams == n_hparams).all()
    assert b.hparam_mask.sum(1).tolist() == [n_hparams] * 5
    assert (b.configs[:, :, n_hparams:] == 0).all()
    assert (b.configs[:, :, :n_hparams] > 0).all()
    narrow = sample_curve_tasks(3, 4, 5, n_hparams=2, max_hparams=2, seed=1)
    assert narrow.configs.shape == (3, 4, 2)


def test_curves_start_at_the_task_start_and_mostly_improve(batch: CurveBatch) -> None:
    calm = batch.transient == 0  # tasks without an early transient (see the next test for those)
    assert 0.2 < float(calm.float().mean()) < 0.4  # transient_prob 0.7
    c = batch.curves[calm]
    # the first budget is 1/F of the way: no curve is above its task's start
    assert (c[..., 0] <= batch.start[calm][:, None] + 1e-6).all()
    steady = ~batch.diverges[calm]
    # curves that do not diverge never get worse (noiseless)
    rises = (c[..., 1:] - c[..., :-1])[steady]
    assert float(rises.max()) <= 1e-5
    ends_lower = (c[..., -1] < c[..., 0] - 1e-3).float().mean()
    assert 0.7 < float(ends_lower) < 0.99  # most improve; some are nearly flat (FT-PFN's broad prior)
    # diverging curves end above their best point
    div = batch.diverges[calm]
    assert int(div.sum()) > 50
    up = c[..., -1][div] > c.min(dim=-1).values[div] + 1e-4
    assert float(up.float().mean()) > 0.85  # all but nearly flat curves (no room to climb back)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.3])
def test_divergence_share_matches_its_probability(p: float) -> None:
    b = sample_curve_tasks(400, 50, 4, divergence_prob=p, seed=2)
    share = float(b.diverges.float().mean())
    # configs of a task share their divergence tendency: per-task shares scatter with a standard
    # deviation of about 0.15-0.26, so the standard error over 400 tasks is at most 0.013
    assert abs(share - p) < 0.04, share
    if p == 0.0:
        assert not b.diverges.any()
    per_task = b.diverges.float().mean(1)
    if p > 0:  # correlated within a task, not independent coin flips
        assert float(per_task.std()) > 3 * (p * (1 - p) / 50) ** 0.5


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_noise_level_as_configured(noise: float) -> None:
    b = sample_curve_tasks(100, 40, 30, noise_std=noise, seed=3)
    assert (b.noise_std == noise).all()
    inside = (b.curves > 0.15) & (b.curves < 0.85)  # far from the clipping at 0 and 1
    residual = (b.observed - b.curves)[inside]
    assert residual.numel() > 10_000
    assert abs(float(residual.std()) - noise) <= 0.05 * noise + 1e-7
    assert abs(float(residual.mean())) <= 0.05 * noise + 1e-7


def test_default_noise_is_log_normal_per_curve(batch: CurveBatch) -> None:
    log_sigma = torch.log(batch.noise_std)
    # configs of a task share part of their noise level (a per-task offset): over 200 tasks the
    # mean of log sigma has a standard error of about 0.05
    assert abs(float(log_sigma.mean()) + 5.0) < 0.3 and abs(float(log_sigma.std()) - 1.0) < 0.15
    residual = (batch.observed - batch.curves) / batch.noise_std[..., None]
    inside = (batch.curves > 0.2) & (batch.curves < 0.8)
    assert abs(float(residual[inside].std()) - 1.0) < 0.05


def test_nearby_configs_have_closer_curves() -> None:
    """On average, a config's curve is closer to that of a config at distance 0.02 than to that of a
    random config of the same task."""
    B, C, F, D = 64, 200, 20, 3
    b = sample_curve_tasks(B, C, F, n_hparams=D, seed=4)
    x, y = b.configs[..., :D], b.curves
    dist = torch.cdist(x, x) + torch.eye(C) * 10.0  # (B, C, C)
    near_d, near = dist.min(-1)  # the nearest neighbour of each config
    far = torch.roll(torch.arange(C), C // 2)  # an unrelated config
    gap_near = (y - torch.gather(y, 1, near[..., None].expand(B, C, F))).abs().mean(-1)
    gap_far = (y - y[:, far]).abs().mean(-1)
    assert float(near_d.mean()) < 0.15
    assert float(gap_near.mean()) < 0.5 * float(gap_far.mean())
    # and the closer the neighbour, the closer the curve (within each task, ranked by distance)
    order = near_d.argsort(dim=1)
    closest = torch.gather(gap_near, 1, order[:, : C // 4]).mean()
    farthest = torch.gather(gap_near, 1, order[:, -C // 4:]).mean()
    assert float(closest) < float(farthest)


def test_early_transients_decorrelate_first_budgets_and_fade() -> None:
    """A transient moves a task's early values by a config-driven offset and nothing later: the
    same draws without it differ only there, and the error at the first budget tells less about the
    error at the last (as on LCBench, where the first epoch's errors hardly correlate with the last's)."""
    B, C, F = 64, 100, 52
    with_ = sample_curve_tasks(B, C, F, n_hparams=5, seed=5)
    without = sample_curve_tasks(B, C, F, n_hparams=5, seed=5, settings=replace(PriorSettings(), transient_prob=0.0))
    assert (without.transient == 0).all()
    has = with_.transient > 0
    assert 30 < int(has.sum()) < 60
    torch.testing.assert_close(with_.curves[~has], without.curves[~has])
    gap = (with_.curves - without.curves).abs()[has]  # (tasks with one, C, F)
    assert float(gap[..., 0].mean()) > 0.02  # early: configs moved apart
    assert float(gap[..., -1].max()) < 1e-4  # late: faded
    assert float(gap[..., 0].mean()) > 5 * float(gap[..., 5].mean())

    def corr_first_last(c: torch.Tensor) -> float:
        x, y = c[..., 0], c[..., -1]
        x, y = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
        r = (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1)).clamp_min(1e-12)
        return float(r.median())

    assert corr_first_last(with_.curves[has]) < corr_first_last(without.curves[has]) - 0.05

    # version 3 (the default): a transient only slows early progress (errors move up, never down);
    # version 2's moves them either way
    rise = with_.curves - without.curves
    assert float(rise.min()) >= -1e-6 and float(rise[..., 0].mean()) > 0.01
    signed = sample_curve_tasks(B, C, F, n_hparams=5, seed=5, settings=PRIOR_SETTINGS[2])
    moved = (signed.curves - without.curves)[has][..., 0]
    assert float(moved.min()) < -0.05 and float(moved.max()) > 0.05
    assert corr_first_last(signed.curves[has]) < corr_first_last(with_.curves[has])


def test_prior_settings_of_version_1_reproduce_its_draws() -> None:
    # the sum of a small batch drawn by version 1 before its settings became options (CPU stream)
    v1 = sample_curve_tasks(4, 20, 10, seed=0, settings=PRIOR_SETTINGS[1])
    assert float(v1.curves.sum()) == pytest.approx(299.5926, abs=1e-3)
    assert (v1.transient == 0).all()
    assert PRIOR_SETTINGS[PRIOR_VERSION] == PriorSettings()
    assert PriorSettings().to_dict()["roughness"] == [0.3, 3.0]


@pytest.mark.parametrize("kwargs", [{"roughness": (3.0, 1.0)}, {"roughness": (0.0, 1.0)}, {"sensitivity": (0.1, 1.5)},
                                    {"tradeoff": (0.0, 1.0)}, {"transient_prob": 2.0}, {"transient_tau": (1.0,)}])
def test_prior_settings_out_of_range_are_refused(kwargs: dict) -> None:
    with pytest.raises(UserError, match="PriorSettings"):
        PriorSettings(**kwargs)


def test_reproducible_with_a_seed_or_a_generator() -> None:
    a = sample_curve_tasks(4, 10, 8, seed=7)
    b = sample_curve_tasks(4, 10, 8, seed=7)
    gen = torch.Generator().manual_seed(7)
    c = sample_curve_tasks(4, 10, 8, generator=gen)
    other = sample_curve_tasks(4, 10, 8, seed=8)
    for name in CurveBatch.__dataclass_fields__:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
        assert torch.equal(getattr(a, name), getattr(c, name)), name
    assert not torch.equal(a.curves, other.curves)
    assert not torch.equal(a.configs, other.configs)
    # the generator advances: a second draw differs
    d = sample_curve_tasks(4, 10, 8, generator=gen)
    assert not torch.equal(c.curves, d.curves)


def test_dtype_float64() -> None:
    b = sample_curve_tasks(3, 5, 7, seed=0, dtype=torch.float64)
    assert b.curves.dtype == b.configs.dtype == b.observed.dtype == torch.float64
    assert b.curves.min() >= 0 and b.curves.max() <= 1


def test_cuda_uses_a_cuda_generator() -> None:
    if not torch.cuda.is_available():
        # without a GPU the CUDA path must fail loudly, not fall back silently
        with pytest.raises((RuntimeError, UserError)):
            sample_curve_tasks(2, 3, 4, seed=0, device="cuda")
        return
    a = sample_curve_tasks(8, 20, 10, seed=5, device="cuda")
    b = sample_curve_tasks(8, 20, 10, seed=5, device="cuda")
    assert a.curves.device.type == "cuda" and torch.equal(a.curves, b.curves)
    assert a.curves.min() >= 0 and a.curves.max() <= 1


@pytest.mark.parametrize("kwargs, word", [
    ({"batch_size": 0}, "batch_size"),
    ({"n_configs": -1}, "n_configs"),
    ({"n_fidelities": 2.5}, "n_fidelities"),
    ({"n_hparams": 11}, "n_hparams"),
    ({"n_hparams": 0}, "n_hparams"),
    ({"divergence_prob": 1.5}, "divergence_prob"),
    ({"noise_std": -0.1}, "noise_std"),
    ({"noise_std": float("nan")}, "noise_std"),
])
def test_bad_input_names_the_argument(kwargs: dict, word: str) -> None:
    args = {"batch_size": 2, "n_configs": 3, "n_fidelities": 4, **kwargs}
    with pytest.raises(UserError, match=word):
        sample_curve_tasks(**args)


def test_generator_on_another_device_is_refused() -> None:
    with pytest.raises(UserError, match="generator"):
        sample_curve_tasks(2, 3, 4, generator=torch.Generator(), device="meta")


def test_import_tunebench_does_not_import_torch() -> None:
    code = ("import sys, tunebench, tunebench.schedulers, tunebench.models, tunebench.searchers; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
