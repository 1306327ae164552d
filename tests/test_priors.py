"""User priors (issue 17, part 3): the Prior value object (files, errors, sampling, densities
against scipy), piBO's decaying weight, PriorBand's mixing probabilities on hand-derived cases,
and the methods end to end (lcbench simulator, local backend, a SIGKILL and a resume)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import kill_when, logged_events, n_results
from scipy import stats

from tunebench.errors import UserError
from tunebench.schedulers import make_scheduler
from tunebench.searchers.gp import GPSearcher
from tunebench.searchers.priorband import PriorBandSearcher
from tunebench.space import CONFIDENCE_LEVELS, Prior, choice, load_prior_file, loguniform, randint, uniform
from tunebench.space.encoding import get_encoder
from tunebench.testing.scheduler_contract import ContractSimulation, check_state_resume, contract_space
from tunebench.types import Decision, Suggestion

SPACE = {"lr": loguniform(1e-4, 1e-1), "opt": choice(["adam", "sgd", "rms"]), "units": randint(16, 256),
         "dropout": uniform(0.0, 0.5), "epochs": 9}


# -- the prior value object ---------------------------------------------------------------------


def test_yaml_and_json_files_give_the_same_prior(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "p.yaml").write_text("lr: {value: 0.01, confidence: high}\nopt: {probs: {adam: 0.6}}\n"
                                     "dropout: {dist: beta, a: 2, b: 5}\nunits: 64\n")
    spec = {"lr": {"value": 0.01, "confidence": "high"}, "opt": {"probs": {"adam": 0.6}},
            "dropout": {"dist": "beta", "a": 2, "b": 5}, "units": 64}
    (tmp_path / "p.json").write_text(json.dumps(spec))
    a, b = load_prior_file(tmp_path / "p.yaml", SPACE), load_prior_file(tmp_path / "p.json", SPACE)
    assert a == b and a.names == ["lr", "opt", "dropout", "units"]
    assert a.to_json()["opt"]["probs"] == pytest.approx({"adam": 0.6, "sgd": 0.2, "rms": 0.2})
    assert a.to_json()["units"] == {"value": 64, "confidence": "medium"}  # a bare value: medium
    assert Prior.from_json(SPACE, json.loads(json.dumps(a.to_json()))) == a  # metadata round trip
    # Beta(2, 5)'s mode 0.2 of [0, 0.5]: dropout 0.1
    assert a.mode_config() == {"lr": pytest.approx(0.01), "opt": "adam", "units": 64, "dropout": 0.1, "epochs": 9}


@pytest.mark.parametrize("spec, message", [
    ({"learning_rate": 0.01}, "prior: unknown hyperparameter 'learning_rate'; the space has: lr, opt, units, dropout"),
    ({"epochs": 3}, "prior: 'epochs' is a constant of the space, not a hyperparameter; remove it from the prior"),
    ({"lr": {"value": 0.5}}, r"prior for 'lr': value 0.5 is outside loguniform\(0.0001, 0.1\); give a value in"),
    ({"lr": {"value": 0.01, "confidence": "hgh"}}, "prior for 'lr': confidence 'hgh' must be low, medium, high or a "
                                                   r"number in \(0, 1\]"),
    ({"lr": {"value": 0.01, "confidence": 0}}, "prior for 'lr': confidence 0 must be low, medium, high"),
    ({"lr": {"value": 0.01, "confidence": 1.5}}, "prior for 'lr': confidence 1.5 must be"),
    ({"opt": {"value": "adamw"}}, "prior for 'opt': 'adamw' is not a category of choice"),
    ({"lr": {"mean": 0.01}}, r"prior for 'lr': cannot read \{'mean': 0.01\}; use \{value:, confidence:\}"),
    ({"lr": {"dist": "normal", "mean": 0.01, "std": 0}}, "prior for 'lr': std must be a number > 0, got 0"),
    ({"dropout": {"dist": "beta", "a": -1, "b": 2}}, "prior for 'dropout': a must be a number > 0, got -1"),
    ({"lr": {"probs": {"x": 1}}}, "prior for 'lr': probs are for choice parameters"),
    ({"opt": {"probs": {"adam": 0.8, "sgd": 0.5}}}, "prior for 'opt': probabilities sum to 1.3; make them sum to 1"),
    ({"opt": {"dist": "normal", "mean": 1, "std": 1}}, "prior for 'opt': 'opt' is a choice"),
])
def test_a_bad_prior_is_one_line_naming_the_fix(spec: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        Prior(SPACE, spec)
    assert "\n" not in str(err.value)


def test_a_bad_prior_file_is_one_cli_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "prior.json"
    bad.write_text(json.dumps({"lr": {"value": 0.01, "confidence": "sure"}}))
    run = subprocess.run([sys.executable, "-m", "tunebench", "run", "--method", "PriorBand", "--prior", str(bad),
                          "--max-trials", "2", "--experiment-dir", str(tmp_path / "exp"), "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "tunebench: error: --prior: prior for 'lr': confidence 'sure' must be low, medium, high or a number in (0, 1]"]
    missing = subprocess.run([sys.executable, "-m", "tunebench", "run", "--method", "PriorBand", "--max-trials", "2",
                              "--experiment-dir", str(tmp_path / "exp2"), "--no-progress"],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("tunebench: error: method PriorBand needs a prior: pass --prior FILE")


def test_a_method_that_needs_a_prior_refuses_without_one() -> None:
    for name in ("PiBO", "PiBO-MOBSTER", "PriorBand"):
        with pytest.raises(UserError, match=f"method {name} needs a prior: pass --prior FILE"):
            make_scheduler(name, SPACE, metric="loss", resource_attr="epoch", max_resource_attr="epochs")
    # the prior-free methods ignore a prior
    make_scheduler("BO", SPACE, metric="loss", prior=Prior.centered(SPACE))


def test_high_confidence_samples_concentrate_near_the_value() -> None:
    rng = np.random.default_rng(0)
    x = get_encoder(SPACE).slices["dropout"].start
    for confidence, near in (("high", 0.85), ("medium", 0.6)):
        prior = Prior(SPACE, {"dropout": {"value": 0.15, "confidence": confidence},
                              "opt": {"value": "sgd", "confidence": confidence}})
        configs = prior.sample(rng, 4000)
        dropout = np.array([c["dropout"] for c in configs])
        # within 0.1 of 0.15 (0.2 of the unit interval): a uniform draw lands there 40 % of the time
        assert np.mean(np.abs(dropout - 0.15) < 0.1) > near
        share = np.mean([c["opt"] == "sgd" for c in configs])
        weight = 6 * CONFIDENCE_LEVELS[confidence]
        assert share == pytest.approx(weight / (weight + 2), abs=0.03)  # 0.75 (high), 0.67 (medium)
        assert x is not None
    # a log parameter: the truncated normal lives in the log domain
    prior = Prior(SPACE, {"lr": {"value": 1e-3, "confidence": "high"}})
    lr = np.array([c["lr"] for c in prior.sample(rng, 4000)])
    assert abs(np.median(np.log10(lr)) - (-3)) < 0.1


@pytest.mark.parametrize("value, confidence", [(0.1, "low"), (0.25, "medium"), (0.45, "high"), (0.0, 0.9)])
def test_log_pdf_matches_scipy_truncnorm_on_the_unit_cube(value: float, confidence: str | float) -> None:
    prior = Prior(SPACE, {"dropout": {"value": value, "confidence": confidence}})
    enc = get_encoder(SPACE)
    rng = np.random.default_rng(1)
    X = enc.encode(Prior(SPACE, {}).sample(rng, 50))
    u = X[:, enc.slices["dropout"].start]
    c = CONFIDENCE_LEVELS.get(confidence, confidence) if isinstance(confidence, str) else confidence
    std, mean = 2 ** (-3 * c), value / 0.5
    expected = stats.truncnorm.logpdf(u, (0 - mean) / std, (1 - mean) / std, loc=mean, scale=std)
    np.testing.assert_allclose(prior.log_pdf(X), expected, rtol=1e-10, atol=1e-10)
    # beta and categorical parts add up, against scipy and by hand
    both = Prior(SPACE, {"dropout": {"dist": "beta", "a": 2.0, "b": 5.0}, "opt": {"probs": {"rms": 0.5}}})
    cols = enc.slices["opt"]
    by_hand = np.where(X[:, cols.start + 2] == 1, np.log(0.5), np.log(0.25))
    np.testing.assert_allclose(both.log_pdf(X), stats.beta.logpdf(u, 2, 5) + by_hand, rtol=1e-10)


def test_the_readme_prior_example_is_a_valid_prior_for_the_digits_mlp() -> None:
    yaml = pytest.importorskip("yaml")
    from tunebench.examples.mlp_digits import CONFIG_SPACE

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    text = readme.split("# prior.yaml, for the digits MLP (tunebench/examples/mlp_digits.py)\n")[1].split("```")[0]
    prior = Prior(CONFIG_SPACE, yaml.safe_load(text))
    assert prior.names == ["lr", "n_layers", "momentum", "weight_decay"]
    assert prior.mode_config()["lr"] == pytest.approx(0.1) and prior.mode_config()["n_layers"] == 2


# -- piBO ---------------------------------------------------------------------------------------


def test_pibo_weight_decays_with_the_observations() -> None:
    space = {"x": uniform(0.0, 1.0), "y": uniform(0.0, 1.0)}
    prior = Prior(space, {"x": {"value": 0.8, "confidence": "high"}})
    plain = GPSearcher(space, "loss", seed=0, num_init_random=0, n_candidates=16, max_steps=2)
    weighted = GPSearcher(space, "loss", seed=0, num_init_random=0, n_candidates=16, max_steps=2)
    weighted.use_prior(prior, beta=10.0)
    probe = [{"x": 0.1, "y": 0.5}, {"x": 0.8, "y": 0.5}, {"x": 0.5, "y": 0.9}]
    log_prior = prior.log_pdf_configs(probe)
    rng = np.random.default_rng(3)
    weights = []
    for n in range(1, 9):
        config = {"x": float(rng.random()), "y": float(rng.random())}
        for s in (plain, weighted):
            s.on_complete(n, config, {"loss": (config["x"] - 0.3) ** 2 + config["y"]})
        assert weighted.prior_weight() == pytest.approx(10.0 / n)
        if n >= 2:
            diff = weighted.acquisition_scores(probe) - plain.acquisition_scores(probe)
            np.testing.assert_allclose(diff, 10.0 / n * log_prior, rtol=1e-6, atol=1e-8)
            weights.append(weighted.prior_weight())
    assert weights == sorted(weights, reverse=True)


def test_pibo_draws_its_initial_design_from_the_prior() -> None:
    prior = Prior(SPACE, {"dropout": {"value": 0.05, "confidence": "high"}})
    scheduler = make_scheduler("PiBO", SPACE, metric="loss", prior=prior, num_init_random=40, seed=2)
    dropout = [scheduler.suggest(i).config["dropout"] for i in range(40)]  # type: ignore[union-attr]
    assert np.mean(np.array(dropout) < 0.15) > 0.8  # uniform: 30 %


def test_pibo_refuses_an_acquisition_it_cannot_weight() -> None:
    with pytest.raises(UserError, match="a prior weights expected improvement: it needs acquisition='ei'"):
        make_scheduler("PiBO", SPACE, metric="loss", prior=Prior.centered(SPACE), acquisition="lcb")


# -- PriorBand's mixing probabilities ------------------------------------------------------------

LEVELS = [1.0, 3.0, 9.0, 27.0]
ONE_D = {"x": uniform(0.0, 1.0)}


def _priorband(prior: Prior, bracket0: list[int]) -> PriorBandSearcher:
    return PriorBandSearcher(ONE_D, "loss", prior=prior, resource_attr="epoch", levels=LEVELS, reduction_factor=3,
                             bracket0_sizes=bracket0)


def _report(s: PriorBandSearcher, tid: int, x: float, loss: float, up_to: float) -> None:
    for level in LEVELS:
        if level <= up_to:
            s.on_result(tid, {"x": x}, {"epoch": level, "loss": loss})


def test_priorband_weights_before_the_incumbent_is_trusted() -> None:
    s = _priorband(Prior(ONE_D, {"x": {"value": 0.5, "confidence": "medium"}}), [27, 9, 3, 1])
    # bracket r: p_U = 1 / (1 + 3^r), the rest to the prior
    for r, p_random in ((0, 1 / 2), (1, 1 / 4), (2, 1 / 10), (3, 1 / 28)):
        s.set_bracket(r)
        assert s.mixing_weights() == pytest.approx((p_random, 1 - p_random, 0.0))
    # 81 = 27*1 + 9*2 + 3*6 + 1*18 resources of bracket 0; two trials at 27 use 54: not yet
    assert s.bracket0_resources == 81
    _report(s, 1, 0.9, 0.1, 27)
    _report(s, 2, 0.5, 0.3, 27)
    s.set_bracket(0)
    assert not s.incumbent_active() and s.mixing_weights() == pytest.approx((0.5, 0.5, 0.0))


def test_priorband_dynamic_split_by_the_top_configs_scores() -> None:
    prior = Prior(ONE_D, {"x": {"value": 0.5, "confidence": "medium"}})
    s = _priorband(prior, [27, 9, 3, 1])
    for tid, (x, loss) in enumerate([(0.9, 0.1), (0.5, 0.3), (0.1, 0.2)], start=1):
        _report(s, tid, x, loss, 27)  # 3 trials at 27: 81 resources, 3 = eta configs at the last rung
    assert s.incumbent_active() and s.incumbent() == {"x": 0.9}
    # by hand: the top max(3 // 3, 3) = 3 configs, best first (x = 0.9, 0.1, 0.5), rank weights 3, 2, 1;
    # scored by N(0.5, 0.25) (the prior) and N(0.9, 0.25) (the incumbent), both truncated to [0, 1]
    xs, w = np.array([0.9, 0.1, 0.5]), np.array([3.0, 2.0, 1.0])

    def pdf(mean: float) -> np.ndarray:
        return stats.truncnorm.pdf(xs, -mean / 0.25, (1 - mean) / 0.25, loc=mean, scale=0.25)

    sp, sq = float(w @ pdf(0.5)), float(w @ pdf(0.9))
    assert s.prior_incumbent_ratio() == pytest.approx((sp / (sp + sq), sq / (sp + sq)))
    s.set_bracket(1)
    assert s.mixing_weights() == pytest.approx((0.25, 0.75 * sp / (sp + sq), 0.75 * sq / (sp + sq)))


def test_priorband_split_falls_back_to_eta_to_one_below_eta_configs() -> None:
    s = _priorband(Prior(ONE_D, {"x": {"value": 0.5, "confidence": "high"}}), [1, 1, 1, 1])  # bracket 0 uses 27
    _report(s, 1, 0.2, 0.4, 27)
    s.set_bracket(0)
    assert s.incumbent_active()
    assert s.mixing_weights() == pytest.approx((0.5, 0.5 * 3 / 4, 0.5 * 1 / 4))


def test_priorband_starts_from_the_prior_mode_and_resumes_exactly() -> None:
    prior = Prior(SPACE, {"lr": {"value": 0.003, "confidence": "high"}, "opt": {"value": "sgd"}})
    make = lambda: make_scheduler("PriorBand", SPACE, metric="loss", resource_attr="epoch",  # noqa: E731
                                  max_resource_attr="epochs", seed=4, prior=prior)
    a = make()
    first = a.suggest(0)
    assert first is not None and first.config == prior.mode_config()
    state = json.loads(json.dumps(a.state_dict()))
    b = make()
    b.load_state_dict(state)
    assert [a.suggest(i).config for i in range(1, 6)] == [b.suggest(i).config for i in range(1, 6)]  # type: ignore


# -- PriorBand's prior at the target fidelity -----------------------------------------------------

HYPERBAND_27 = [[27, 9, 3, 1], [12, 4, 1], [6, 2], [4]]  #: jobs per rung of each bracket, max_t=27, eta=3
CONTRACT_PRIOR = {"lr": {"value": 0.003, "confidence": "high"}, "act": {"value": "tanh"}}


def _contract_priorband(max_resource_attr: str | None, **options: Any) -> Any:
    space = contract_space(27)
    return make_scheduler("PriorBand", space, metric="loss", resource_attr="epoch", max_t=27,
                          max_resource_attr=max_resource_attr, seed=2, prior=Prior(space, CONTRACT_PRIOR),
                          **options)


def _logged_run(sched: Any, n_trials: int) -> list[tuple]:
    """(kind, trial id, answer, (iteration, bracket, rung) before the call, result) of every call."""
    log: list[tuple] = []

    def wrap(kind: str, fn: Any, *args: Any) -> Any:
        where = sched.current_bracket
        out = fn(*args)
        tid = args[0] if kind in ("suggest", "suggest_resume") else args[0].trial_id
        if isinstance(out, Suggestion) and out.is_resume:
            tid = out.resume_trial_id
        log.append((kind, tid, out, where, args[1] if kind == "result" else None))
        return out

    ContractSimulation(sched, n_trials=n_trials, n_workers=4, fail_every=0, restart_fraction=0.0, wrap=wrap).run()
    return log


@pytest.mark.parametrize("max_resource_attr", ["epochs", None])
def test_priorband_runs_the_prior_mode_to_max_t_outside_the_brackets(max_resource_attr: str | None) -> None:
    sched = _contract_priorband(max_resource_attr)
    log = _logged_run(sched, n_trials=60)
    first = log[0]
    assert first[0] == "suggest" and first[1] == 0 and not first[2].is_resume
    assert first[2].config == Prior(contract_space(27), CONTRACT_PRIOR).mode_config()
    assert sched.target_trial == 0
    # trial 0 runs epoch after epoch to max_t: never paused, stopped only at 27 (or ends by itself)
    mine = [(result["epoch"], out) for kind, tid, out, _, result in log if kind == "result" and tid == 0]
    assert [e for e, _ in mine] == list(range(1, 28))
    assert all(out is Decision.CONTINUE for _, out in mine[:-1])
    assert mine[-1][1] is (Decision.CONTINUE if max_resource_attr else Decision.STOP)
    assert not any(kind == "suggest" and out is not None and out.is_resume and tid == 0 for kind, tid, out, *_ in log)
    assert sched.state_dict()["trials"]["0"][1] == 3  # its rung: the last level
    # every other trial follows the Hyperband table, as if trial 0 did not exist
    launched: dict[tuple[int, int, int], list[str]] = {}
    for kind, tid, out, where, _ in log:
        if kind == "suggest" and out is not None and tid != 0:
            launched.setdefault(where, []).append("resume" if out.is_resume else "start")
    for b, sizes in enumerate(HYPERBAND_27):
        for k, n in enumerate(sizes):
            assert launched[(0, b, k)] == ["start" if k == 0 else "resume"] * n, (b, k)
    # 1 + 49 trials of the first iteration, the rest start the next one
    assert launched[(1, 0, 0)] == ["start"] * (60 + 1 - 50)


def test_priorband_without_prior_at_target_starts_the_mode_in_bracket_0() -> None:
    sched = _contract_priorband("epochs", prior_at_target=False)
    log = _logged_run(sched, n_trials=30)
    first = next(out for kind, tid, out, *_ in log if kind == "result" and tid == 0)
    assert first is Decision.PAUSE and sched.target_trial is None  # paused at rung 0 (epoch 1)
    assert [tid for kind, tid, out, *_ in log if kind == "suggest" and out is not None][:27] == list(range(27))


def test_priorband_prior_at_target_survives_a_state_round_trip() -> None:
    make = lambda seed: _contract_priorband("epochs")  # noqa: E731
    check_state_resume(make, n_trials=60, n_snapshots=8)
    # a snapshot taken right after the mode started: the fresh scheduler does not start it again
    a = make(0)
    assert a.suggest(0) is not None
    b = make(0)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.target_trial == 0
    assert [b.suggest(t).config for t in range(1, 5)] == [a.suggest(t).config for t in range(1, 5)]  # type: ignore
    assert b.current_bracket == a.current_bracket == (0, 0, 0)
    assert b.state_dict()["to_launch"] == 27 - 4
    # a snapshot written before the option existed: no trial outside the brackets is started
    old = a.state_dict()
    del old["target_pending"], old["target_trial"]
    c = make(0)
    c.load_state_dict(json.loads(json.dumps(old)))
    assert c.target_trial is None and c.suggest(5) is not None and c.state_dict()["to_launch"] == 27 - 5


# -- end to end ---------------------------------------------------------------------------------


def _tunebench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebench", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("method", ["PiBO", "PiBO-MOBSTER", "PriorBand"])
def test_each_method_runs_on_lcbench_from_the_cli(tmp_path: Path, method: str, shared_data: Path) -> None:
    pytest.importorskip("onnxruntime", reason="lcbench needs the yahpo extra (onnxruntime)")
    prior = tmp_path / "prior.json"
    prior.write_text(json.dumps({"learning_rate": {"value": 0.005, "confidence": "high"},
                                 "num_layers": {"value": 2, "confidence": "low"}}))
    exp = tmp_path / "exp"
    run = _tunebench("run", "--benchmark", "lcbench-3945", "--method", method, "--prior", str(prior),
                     "--max-trials", "20", "--data-dir", str(shared_data), "--experiment-dir", str(exp),
                     "--no-progress")
    assert run.returncode == 0, run.stderr[-2000:]
    meta = json.loads((exp / "metadata.json").read_text())
    assert meta["run_spec"]["prior"]["learning_rate"] == {"value": 0.005, "confidence": "high"}
    summary = json.loads(_tunebench("show", str(exp), "--json").stdout)
    assert summary["n_trials"] >= 20 and summary["n_failed"] == 0 and 0 < summary["best_metric"] <= 100


SCRIPT = str(Path(__file__).resolve().parents[1] / "tunebench" / "examples" / "mlp_digits.py")


@pytest.mark.slow
def test_a_killed_priorband_run_on_the_local_backend_resumes(tmp_path: Path) -> None:
    prior = tmp_path / "prior.json"
    prior.write_text(json.dumps({"lr": {"value": 0.1, "confidence": "medium"}, "n_layers": 2}))
    exp = tmp_path / "exp"
    logged = kill_when([sys.executable, "-m", "tunebench", "run", "--script", SCRIPT, "--method", "PriorBand",
                        "--prior", str(prior), "--max-wallclock-time", "20", "--experiment-dir", str(exp),
                        "--no-progress"], exp, n_results(15), timeout=90)
    before = [e for e in logged if e.get("event") == "result"]
    first = next(e for e in logged_events(exp) if e.get("event") == "trial_start")
    assert first["config"]["n_layers"] == 2 and math.isclose(first["config"]["lr"], 0.1)  # the prior's mode first

    resumed = _tunebench("resume", str(exp), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = logged_events(exp)
    results = [e for e in after if e.get("event") == "result"]
    key = lambda e: (e["trial_id"], e["result"]["epoch"], e["result"]["val_error"])  # noqa: E731
    assert [key(e) for e in results[: len(before)]] == [key(e) for e in before]
    assert len(results) > len(before)
    assert not any(e.get("event") == "trial_fail" for e in after)
