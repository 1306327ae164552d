"""The learning-curve PFN: numpy inference == torch, weight files verified on load, the shipped
weights pinned by golden outputs and better than a uniform prediction on the prior, the bar
distribution, the surrogate interface, the training script (checkpoint and resume)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_PFN, random_pfn_weights

from tunebench.errors import UserError
from tunebench.models.pfn import (
    BarPrediction,
    CurvePFNNumpy,
    PFNSurrogate,
    default_weights_path,
    load_weights,
)

GOLDEN = Path(__file__).parent / "data" / "pfn_golden.json"
SMALL = SMALL_PFN


def _random_weights(tmp_path: Path, arch: dict[str, int] = SMALL, seed: int = 0) -> Path:
    return random_pfn_weights(tmp_path, arch, seed)


def _golden_inputs() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(20261205)
    n_curves, d = 12, 4
    configs = rng.random((n_curves, d))
    curve = np.repeat(np.arange(n_curves), 5)[:50]
    t = np.tile(np.arange(1, 6) / 20, n_curves)[:50]
    y = np.clip(0.6 - 0.3 * t * (1 + configs[curve, 0]) + 0.01 * rng.standard_normal(50), 0, 1)
    Xq = np.concatenate([configs[:6], rng.random((6, d))])
    tq = np.concatenate([np.full(6, 1.0), np.full(6, 0.5)])
    return configs[curve], t, y, curve, Xq, tq


# ---------------------------------------------------------------- torch parity and training


def test_numpy_inference_equals_torch() -> None:
    torch = pytest.importorskip("torch")
    from tunebench.models.pfn_train import CurvePFN, PFNConfig, sample_training_batch, state_to_arrays

    cfg = PFNConfig(d_model=32, n_heads=4, n_layers=2, d_ff=48, d_head_mlp=40, n_bins=64, n_ids=128)
    torch.manual_seed(3)
    model = CurvePFN(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))  # away from the initialization (LayerNorm weights 1, biases 0)
    arrays = dict(state_to_arrays(model))
    weights = None
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for seq_len in (20, 80, 150):
        b = sample_training_batch(2, seq_len, generator=gen, cfg=cfg, min_queries=4)
        with torch.no_grad():
            logits = model(b.x, b.mask, b.t, b.ids, b.y[:, :b.n_ctx], b.n_ctx).numpy()
        if weights is None:
            from tunebench.models.pfn import PFNWeights
            weights = PFNWeights(arrays=arrays, architecture=cfg.to_dict(), prior_version=1, training={},
                                 sha256="-", path=Path("-"))
        net = CurvePFNNumpy(weights)
        for i in range(2):
            d, c = int(b.mask[i].sum()), b.n_ctx
            net.condition(b.x[i, :c, :d].numpy(), b.t[i, :c].numpy(), b.y[i, :c].numpy(), b.ids[i, :c].numpy())
            got = net.predict_logits(b.x[i, c:, :d].numpy(), b.t[i, c:].numpy(), b.ids[i, c:].numpy())
            assert got.dtype == np.float32 and got.shape == logits[i].shape
            worst = max(worst, float(np.abs(got - logits[i]).max()))
            # a query's prediction does not depend on the other queries
            one = net.predict_logits(b.x[i, c:c + 1, :d].numpy(), b.t[i, c:c + 1].numpy(), b.ids[i, c:c + 1].numpy())
            np.testing.assert_allclose(one[0], got[0], atol=1e-5)
    assert worst < 1e-4, worst
    assert float(np.abs(logits).max()) > 0.1  # not a trivially constant model


def test_training_batches_split_context_and_queries() -> None:
    torch = pytest.importorskip("torch")
    from tunebench.models.pfn_train import PFNConfig, sample_training_batch

    cfg = PFNConfig()
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        b = sample_training_batch(3, 100, generator=gen, cfg=cfg)
        assert b.x.shape == (3, 100, 10) and b.t.shape == b.y.shape == b.ids.shape == (3, 100)
        assert 1 <= b.n_ctx <= 100 - 16
        assert (b.t > 0).all() and (b.t <= 1).all() and (b.y >= 0).all() and (b.y <= 1).all()
        for i in range(3):
            pts = {(int(c), round(float(t), 6)) for c, t in zip(b.ids[i], b.t[i], strict=True)}
            assert len(pts) == 100  # context and queries are distinct points
            # the same curve id always carries the same config
            for cid in b.ids[i].unique():
                rows = b.x[i][b.ids[i] == cid]
                assert torch.equal(rows, rows[:1].expand_as(rows))


def test_training_script_checkpoints_resumes_and_exports(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    script = Path(__file__).parents[1] / "benchmarks" / "train_ftpfn.py"
    out = tmp_path / "run"
    args = [sys.executable, str(script), "--preset", "smoke", "--out", str(out), "--threads", "1",
            "--log-every", "2", "--val-every", "3"]
    r1 = subprocess.run([*args, "--steps", "3"], capture_output=True, text=True, timeout=300)
    assert r1.returncode == 0, r1.stderr
    r2 = subprocess.run([*args, "--steps", "5"], capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr
    assert "resumed from" in r2.stdout and "at step 3" in r2.stdout
    w = load_weights(out / "ftpfn.npz")
    assert w.training["steps"] == 5 and w.architecture["n_layers"] == 1
    assert np.isfinite(w.training["final_val_loss"])
    from tunebench.models.curve_prior import PRIOR_VERSION
    assert w.prior_version == PRIOR_VERSION
    # a warm restart from the exported weights: the same weights to start with, the record counts both runs
    warm = tmp_path / "warm"
    r4 = subprocess.run([sys.executable, str(script), "--init", str(out / "ftpfn.npz"), "--out", str(warm),
                         "--threads", "1", "--steps", "0"], capture_output=True, text=True, timeout=300)
    assert r4.returncode == 0, r4.stderr
    again = load_weights(warm / "ftpfn.npz")
    assert again.architecture == w.architecture  # taken from the weights, not the (cpu) preset
    assert all(np.array_equal(again.arrays[k], w.arrays[k]) for k in w.arrays)
    assert again.training["steps"] == 5 and again.training["phases"][-1]["steps"] == [5, 5]
    assert "warm restart from ftpfn.npz" in again.training["phases"][-1]["note"]
    from tunebench.models.curve_prior import PriorSettings
    assert w.training["prior"] == PriorSettings().to_dict()
    assert again.training["phases"][-1]["prior_version"] == PRIOR_VERSION
    # a prior setting changed for an experiment is recorded; a bad one is refused in one line
    other = tmp_path / "other"
    r5 = subprocess.run([*args[:5], str(other), *args[6:], "--steps", "1", "--prior", "transient_prob=0",
                         "--prior", "roughness=[0.5, 10]"], capture_output=True, text=True, timeout=300)
    assert r5.returncode == 0, r5.stderr
    rec = load_weights(other / "ftpfn.npz").training["prior"]
    assert rec["transient_prob"] == 0 and rec["roughness"] == [0.5, 10.0]
    r6 = subprocess.run([*args, "--steps", "1", "--prior", "roughness=[3, 1]"], capture_output=True, text=True,
                        timeout=300)
    assert r6.returncode == 2 and r6.stderr.startswith("tunebench: error: --prior roughness=[3, 1]: PriorSettings")
    assert len(r6.stderr.strip().splitlines()) == 1
    import torch
    if not torch.cuda.is_available():
        r3 = subprocess.run([*args, "--device", "cuda"], capture_output=True, text=True, timeout=300)
        assert r3.returncode == 2 and r3.stderr.startswith("tunebench: error: --device cuda"), r3.stderr


# ---------------------------------------------------------------- weight files


def test_weights_verified_on_load(tmp_path: Path) -> None:
    path = _random_weights(tmp_path)
    assert load_weights(path).architecture == SMALL
    side = path.with_suffix(".json")
    good = side.read_text()

    # a changed .npz: the hash no longer matches
    (tmp_path / "x").mkdir()
    other = _random_weights(tmp_path / "x", seed=1)
    shutil.copy(other, path)
    side.write_text(good)
    with pytest.raises(UserError, match="sha256"):
        load_weights(path)
    path = _random_weights(tmp_path)
    good = side.read_text()

    bad = json.loads(good)
    bad["format"] = "something-else"
    side.write_text(json.dumps(bad))
    with pytest.raises(UserError, match="not a tunebench-curve-pfn-1 sidecar"):
        load_weights(path)

    bad = json.loads(good)
    del bad["architecture"]["n_bins"], bad["prior_version"]
    side.write_text(json.dumps(bad))
    with pytest.raises(UserError, match=r"lacks prior_version, architecture\.n_bins"):
        load_weights(path)

    bad = json.loads(good)
    bad["architecture"]["n_layers"] = 3  # the arrays hold 2 layers
    side.write_text(json.dumps(bad))
    with pytest.raises(UserError, match="does not match its architecture"):
        load_weights(path)

    side.write_text("{not json")
    with pytest.raises(UserError, match="cannot read the sidecar"):
        load_weights(path)
    side.unlink()
    with pytest.raises(UserError, match="does not exist"):
        load_weights(path)


def test_weights_never_unpickle(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, **{"embed.weight": np.array([{"a": 1}], dtype=object)})
    import hashlib
    side = {"format": "tunebench-curve-pfn-1", "architecture": SMALL, "prior_version": 1, "training": {},
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_weights(path)


def test_shipped_weights_and_sidecar() -> None:
    w = load_weights()
    assert w.path == default_weights_path() and w.path.stat().st_size < 5_000_000
    from tunebench.models import curve_prior
    assert w.prior_version == curve_prior.PRIOR_VERSION
    n = sum(a.size for k, a in w.arrays.items() if k != "borders")
    assert 300_000 <= n <= 1_000_000
    assert w.training["steps"] > 0 and w.training["final_val_loss"] < 0


def test_import_pfn_needs_no_torch() -> None:
    code = ("import sys, tunebench, tunebench.schedulers, tunebench.models, tunebench.models.pfn\n"
            "from tunebench.models.pfn import PFNSurrogate\n"
            "PFNSurrogate()\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- golden outputs of the shipped model


def _golden_outputs() -> dict[str, list[float]]:
    X, t, y, curve, Xq, tq = _golden_inputs()
    s = PFNSurrogate()
    s.fit(X, t, y, curve, n_total=len(t))
    pred = s.predict(Xq, tq)
    return {"mean": pred.mean.tolist(), "prob_below_0.3": pred.prob_below(0.3).tolist(),
            "log_pdf_0.25": pred.log_pdf(np.full(len(tq), 0.25)).tolist()}


def test_golden_outputs_of_the_shipped_weights() -> None:
    golden = json.loads(GOLDEN.read_text())
    assert golden["sha256"] == load_weights().sha256, "shipped weights changed: run python tests/test_pfn.py"
    got = _golden_outputs()
    for key, expected in golden["outputs"].items():
        np.testing.assert_allclose(got[key], expected, rtol=1e-4, atol=1e-5, err_msg=key)


# ---------------------------------------------------------------- quality on the prior


def test_shipped_model_beats_a_uniform_prediction_on_prior_curves() -> None:
    pytest.importorskip("torch")
    from tunebench.models.curve_prior import sample_curve_tasks

    batch = sample_curve_tasks(12, 20, 30, seed=123)  # held out: training never drew this seed's stream
    rng = np.random.default_rng(5)
    s = PFNSurrogate()
    lls, seen_known, seen_as_new = [], [], []
    for b in range(12):
        d = int(batch.n_hparams[b])
        X = batch.configs[b, :, :d].numpy().astype(float)
        Y = batch.observed[b].numpy().astype(float)
        fid = batch.fidelities.numpy().astype(float)
        cut = rng.integers(0, 20, size=20)  # curve c observed at its first cut[c] budgets (0: unseen)
        cs, fs = np.nonzero(np.arange(30)[None, :] < cut[:, None])
        s.fit(X[cs], fid[fs], Y[cs, fs], cs, n_total=len(cs))
        qc, qf = np.nonzero(np.arange(30)[None, :] >= cut[:, None])  # later budgets, unseen curves
        lls.append(s.predict(X[qc], fid[qf], curve=qc).log_pdf(Y[qc, qf]))
        seen = cut[qc] > 0
        Xs, ts, ys = X[qc][seen], fid[qf][seen], Y[qc, qf][seen]
        seen_known.append(s.predict(Xs, ts, curve=qc[seen]).log_pdf(ys))
        seen_as_new.append(s.predict(Xs, ts, curve=np.full(len(ys), -1)).log_pdf(ys))
    ll = float(np.mean(np.concatenate(lls)))
    # a uniform bar distribution on [0, 1] has log density 0 everywhere (shipped model: 0.99)
    assert ll > 0.7, ll
    # the observed part of a curve helps to extrapolate it (shipped model: 0.99 vs 0.69 nats)
    known, as_new = float(np.mean(np.concatenate(seen_known))), float(np.mean(np.concatenate(seen_as_new)))
    assert known > as_new + 0.15, (known, as_new)


# ---------------------------------------------------------------- the bar distribution


def test_bar_distribution() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (5, 50)).astype(np.float32)
    logits[0, :] = 0.0  # uniform
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    pred = BarPrediction(lp, np.linspace(0, 1, 51, dtype=np.float32))
    np.testing.assert_allclose(pred.probs.sum(1), 1.0, atol=1e-6)
    thresholds = np.linspace(-0.1, 1.1, 241)
    cdf = np.stack([pred.prob_below(th) for th in thresholds])  # (241, 5)
    assert np.all(np.diff(cdf, axis=0) >= -1e-12)
    np.testing.assert_allclose(cdf[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(cdf[-1], 1.0, atol=1e-6)
    np.testing.assert_allclose(pred.prob_below(0.37)[0], 0.37, atol=1e-6)  # uniform: linear within bins
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(pred.log_prob_below(0.37), np.log(pred.prob_below(0.37)), rtol=1e-5)
    assert np.all(np.isneginf(pred.log_prob_below(0.0)))
    # per-query thresholds broadcast
    per = pred.prob_below(np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    np.testing.assert_allclose(per[3], pred.prob_below(0.4)[3])
    # the density integrates to 1 and matches the bin probabilities
    grid = (np.arange(5000) + 0.5) / 5000
    dens = np.stack([np.exp(pred.log_pdf(np.full(5, g))) for g in grid])
    np.testing.assert_allclose(dens.mean(0), 1.0, atol=1e-5)
    assert np.all((pred.mean > 0) & (pred.mean < 1))
    np.testing.assert_allclose(pred.mean[0], 0.5, atol=1e-6)


def test_log_prob_below_is_accurate_in_the_tail() -> None:
    lp = np.full((1, 10), -40.0)
    lp[0, -1] = 0.0
    lp -= np.log(np.exp(lp).sum())
    pred = BarPrediction(lp, np.linspace(0, 1, 11))
    assert pred.prob_below(0.5)[0] < 1e-16
    np.testing.assert_allclose(pred.log_prob_below(0.5)[0], -40.0 + np.log(5), atol=1e-6)
    # per-query thresholds, one row in the tail and one not
    both = BarPrediction(np.concatenate([lp, np.full((1, 10), -np.log(10))]), np.linspace(0, 1, 11))
    np.testing.assert_allclose(both.log_prob_below(np.array([0.5, 0.25])), [-40.0 + np.log(5), np.log(0.25)],
                               atol=1e-6)


def test_log_expected_improvement_integrates_the_bars() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (4, 20))
    logits[0, :-1] = -40.0  # one row with all its mass in the last bin: far in the tail below it
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    borders = np.linspace(0, 1, 21)
    pred = BarPrediction(lp, borders)
    grid = (np.arange(200_000) + 0.5) / 200_000  # midpoint rule over [0, 1]
    dens = np.exp(lp)[:, np.minimum((grid * 20).astype(int), 19)] * 20  # (4, grid)
    for thr in (0.013, 0.37, 0.5, 0.999):
        ref = (np.maximum(thr - grid, 0.0)[None, :] * dens).mean(axis=1)
        np.testing.assert_allclose(np.exp(pred.log_expected_improvement(thr)), ref, rtol=1e-4, atol=1e-30)
    # above the support: the threshold minus the mean; at or below it: no improvement possible
    np.testing.assert_allclose(np.exp(pred.log_expected_improvement(1.5)), 1.5 - pred.mean, rtol=1e-6)
    assert np.all(np.isneginf(pred.log_expected_improvement(0.0)))
    # far in the tail the log stays exact: the mass 20 * exp(-40) of the 19 lower bins
    tail = pred.log_expected_improvement(0.5)[0]
    expected = np.log(np.sum(np.exp(lp[0, :10]) * (0.5 - (np.arange(10) + 0.5) / 20)))
    assert np.isfinite(tail) and abs(tail - expected) < 1e-6
    # per-query thresholds broadcast
    per = pred.log_expected_improvement(np.array([0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_allclose(per[2], pred.log_expected_improvement(0.3)[2])


# ---------------------------------------------------------------- the surrogate


def test_surrogate_matches_queries_to_context_curves_and_restores(tmp_path: Path) -> None:
    X, t, y, curve, Xq, tq = _golden_inputs()
    s = PFNSurrogate(_random_weights(tmp_path))
    labels = np.array([f"trial-{c}" for c in curve])  # any hashable ids
    s.fit(X, t, y, labels, n_total=60)
    assert s.anchor_size == 60
    by_config = s.predict(Xq, tq)
    by_id = s.predict(Xq, tq, curve=np.array([f"trial-{i}" for i in range(6)] + ["new"] * 6))
    np.testing.assert_allclose(by_config.log_probs, by_id.log_probs, atol=1e-6)
    # a scalar fidelity broadcasts; noise (the CurveSurrogate protocol's flag) does not change a PFN
    np.testing.assert_allclose(s.predict(Xq[:6], 1.0, noise=False).log_probs, by_config.log_probs[:6])
    # a known curve is told apart from a new curve with the same config
    as_new = s.predict(Xq[:1], tq[:1], curve=np.array(["new"]))
    assert np.abs(as_new.log_probs - by_config.log_probs[:1]).max() > 1e-4

    state = json.loads(json.dumps(s.state_dict()))
    s2 = PFNSurrogate(_random_weights(tmp_path))
    assert s2.anchor_size is None
    s2.load_state_dict(state, X, t, y, labels)
    assert s2.anchor_size == 60
    np.testing.assert_allclose(s2.predict(Xq, tq).log_probs, by_config.log_probs)


def test_surrogate_bad_input(tmp_path: Path) -> None:
    s = PFNSurrogate(_random_weights(tmp_path))
    X, t, y, curve, Xq, tq = _golden_inputs()
    with pytest.raises(UserError, match="call fit"):
        s.predict(Xq, tq)
    with pytest.raises(UserError, match="no observed points"):
        s.fit(X[:0], t[:0], y[:0], curve[:0], n_total=0)
    with pytest.raises(UserError, match="same n"):
        s.fit(X, t[:-1], y, curve, n_total=50)
    with pytest.raises(UserError, match="d <= 10"):
        s.fit(np.zeros((3, 11)), np.ones(3), np.ones(3), np.arange(3), n_total=3)
    with pytest.raises(UserError, match="finite"):
        s.fit(X, t, np.where(np.arange(50) == 3, np.nan, y), curve, n_total=50)
    with pytest.raises(UserError, match="at most 31"):
        s.fit(np.zeros((40, 2)), np.ones(40), np.ones(40), np.arange(40), n_total=40)
    s.fit(X, t, y, curve, n_total=50)
    with pytest.raises(UserError, match=r"\(q, 4\)"):
        s.predict(Xq[:, :3], tq)


if __name__ == "__main__":  # regenerate the golden outputs after shipping new weights: python tests/test_pfn.py
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({"sha256": load_weights().sha256, "outputs": _golden_outputs()}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
