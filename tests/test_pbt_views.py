"""The PBT views: the path-dependent ``pbt-schedule`` blackbox and the simulator's exact replay of
an exploit on it; the lineage of a run with exploits (``Experiment.lineage``, ``tunebench show``
and ``show --json``); the best trial's config is the one in force at its best result; the
population plot.

PBT itself is not needed: :class:`ExploitLoop`, a small truncation-selection scheduler written
here, pauses every trial each ``interval`` epochs and resumes it, from the best trial's checkpoint
with a perturbed learning rate when it is among the worst."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench.backends.simulator import SimulatorBackend
from tunebench.blackboxes import schedule_blackbox, step_schedule
from tunebench.blackboxes.registry import load_blackbox
from tunebench.cli import main
from tunebench.schedulers.base import Scheduler
from tunebench.store import load_experiment
from tunebench.tuner import StopCriteria, Tuner
from tunebench.types import Config, Decision, Result, Suggestion, Trial

EPOCHS = 20


class ExploitLoop(Scheduler):
    """Starts ``configs`` (``epochs`` added); pauses each trial every ``interval`` epochs; a paused
    trial in the worse half of the population's latest values takes the checkpoint of the best
    trial (its ``lr`` times ``factor``), the others go on unchanged."""

    def __init__(self, configs: list[Config], interval: int = 4, factor: float = 0.5) -> None:
        self.config_space = {"lr": None, "momentum": None}
        self.metric, self.mode = "loss", "min"
        self.resource_attr, self.max_resource_attr = "epoch", "epochs"
        self.configs = [{**c, "epochs": EPOCHS} for c in configs]
        self.interval, self.factor = interval, factor
        self.latest: dict[int, float] = {}
        self.paused: list[int] = []
        self.current: dict[int, Config] = {}
        self.n_started = 0

    def suggest(self, trial_id: int) -> Suggestion | None:
        if self.paused:
            tid = self.paused.pop(0)
            ranked = sorted(self.latest, key=lambda t: (self.latest[t], t))
            if ranked.index(tid) >= len(ranked) // 2 and ranked[0] != tid:
                config = dict(self.current[ranked[0]])
                config["lr"] = min(1.0, max(1e-3, config["lr"] * self.factor))
                self.current[tid] = config
                return Suggestion.resume(tid, config, checkpoint_from=ranked[0])
            return Suggestion.resume(tid)
        if self.n_started < len(self.configs):
            config = self.configs[self.n_started]
            self.n_started += 1
            self.current[trial_id] = config
            return Suggestion.start(config)
        return None

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        return self.suggest(trial_id) if self.paused else None

    def on_result(self, trial: Trial, result: Result) -> Decision:
        self.latest[trial.trial_id] = result["loss"]
        if result["epoch"] % self.interval == 0 and result["epoch"] < EPOCHS:
            self.paused.append(trial.trial_id)
            return Decision.PAUSE
        return Decision.CONTINUE


POPULATION = [{"lr": lr, "momentum": m} for lr, m in
              [(0.3, 0.8), (0.01, 0.8), (0.05, 0.5), (0.003, 0.9), (0.1, 0.7), (0.02, 0.2)]]


def run_loop(exp: Path, n_workers: int = 3, factor: float = 0.5) -> Tuner:
    bb = schedule_blackbox(max_fidelity=EPOCHS)
    backend = SimulatorBackend(bb, max_resource_attr="epochs", charge_decision_time=False)
    tuner = Tuner(backend, ExploitLoop(POPULATION, factor=factor), n_workers=n_workers,
                  stop=StopCriteria(max_trials=6),
                  experiment_dir=exp)
    tuner.run()
    return tuner


# -- the blackbox ------------------------------------------------------------------------------


def test_one_segment_is_the_stateless_curve_and_the_schedule_changes_the_path() -> None:
    bb = schedule_blackbox(n_seeds=2)
    config = {"lr": 0.05, "momentum": 0.7}
    for seed in (0, 1):
        assert np.array_equal(bb.evaluate_schedule([(config, 0)], seed=seed), bb.evaluate([config], seed=seed)[0])
    later = {"lr": 0.01, "momentum": 0.7}
    switched = bb.evaluate_schedule([(config, 0), (later, 20)])
    # the same up to the switch, then neither curve: the state carries over
    assert np.array_equal(switched[:20], bb.evaluate([config])[0, :20])
    assert not np.allclose(switched[20:, 0], bb.evaluate([later])[0, 20:, 0])
    assert not np.allclose(switched[20:, 0], bb.evaluate([config])[0, 20:, 0])
    # the time of each epoch is its config's (1 + momentum seconds)
    assert np.allclose(np.diff(switched[:, 1]), 1.7)
    with pytest.raises(ValueError, match="index 0"):
        bb.evaluate_schedule([(config, 3)])


def test_a_step_decay_beats_every_constant_learning_rate() -> None:
    bb = load_blackbox("pbt-schedule", None)
    grid = [{"lr": float(lr), "momentum": float(m)} for lr in np.geomspace(1e-3, 1.0, 60)
            for m in np.linspace(0.0, 0.95, 20)]
    best_constant = bb.evaluate(grid)[:, -1, 0].min()
    scheduled = bb.evaluate_schedule(step_schedule({"lr": 0.1, "momentum": 0.8}, [10, 20, 30, 40], 0.5))[-1, 0]
    # excess over the floor (0.05): the schedule's is several times smaller
    assert scheduled - 0.05 < 0.25 * (best_constant - 0.05), (scheduled, best_constant)


# -- the simulator replays exploits exactly ------------------------------------------------------


def test_an_exploit_continues_the_sources_training_state_exactly(tmp_path: Path) -> None:
    """Each result equals the blackbox's curve of the trial's schedule as the log tells it: its
    first config from epoch index 0; an exploit gives it the source's schedule up to the source's
    resource, then its new config."""
    exp = tmp_path / "exp"
    run_loop(exp)
    bb = schedule_blackbox(max_fidelity=EPOCHS)
    schedules: dict[int, list[tuple[Config, int]]] = {}
    n_checked = n_after_exploit = 0
    exploited: set[int] = set()
    for line in (exp / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        tid = ev.get("trial_id")
        if ev["event"] == "trial_start":
            schedules[tid] = [({k: ev["config"][k] for k in ("lr", "momentum")}, 0)]
        elif ev["event"] == "trial_resume" and ev.get("exploit"):
            at = ev["exploit"]["resource"]  # epochs trained: the next result is at index `at`
            source = [seg for seg in schedules[ev["exploit"]["source"]] if seg[1] < at]
            schedules[tid] = [*source, ({k: ev["config"][k] for k in ("lr", "momentum")}, at)]
            exploited.add(tid)
        elif ev["event"] == "result":
            curve = bb.evaluate_schedule(schedules[tid])
            epoch = ev["result"]["epoch"]
            assert ev["result"]["loss"] == curve[epoch - 1, 0], (tid, epoch)
            n_checked += 1
            n_after_exploit += tid in exploited
            # after an exploit: not what the new config would give from scratch
            if tid in exploited and len(schedules[tid]) > 1:
                fresh = bb.evaluate([schedules[tid][-1][0]])[0]
                assert ev["result"]["loss"] != fresh[epoch - 1, 0]
    assert n_checked == len(load_experiment(exp).results) and n_after_exploit >= 5


# -- lineage, show and the best config ------------------------------------------------------------


def test_lineage_in_the_experiment_and_in_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = tmp_path / "exp"
    run_loop(exp)
    experiment = load_experiment(exp)
    lineage = experiment.lineage()
    assert list(lineage.columns) == ["trial_id", "source", "resource", "changes", "time"]
    results = experiment.results
    for row in lineage.itertuples():
        assert row.source != row.trial_id
        # where the source had got to (its last decided result by then)
        before = results[(results.trial_id == row.source) & (results.tuner_time <= row.time)]
        assert row.resource == before.epoch.max()
        assert "lr" in row.changes and all(old != new for old, new in row.changes.values())
    assert main(["show", str(exp)]) == 0
    out = capsys.readouterr().out
    first = lineage.iloc[0]
    old, new = first.changes["lr"]
    assert (f"trial {first.trial_id} @ epoch {first.resource} <- trial {first.source}'s weights: "
            f"lr {old:g} -> {new:g}") in out
    assert f"lineage ({len(lineage)} exploits):" in out
    assert main(["show", "--json", str(exp)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(e["trial_id"], e["source"], e["resource"]) for e in shown["lineage"]] == list(
        zip(lineage.trial_id, lineage.source, lineage.resource, strict=True))


def test_the_best_config_is_the_one_in_force_at_the_best_result(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    tuner = run_loop(exp, factor=8.0)  # exploits with a rate too large: losses grow after some
    experiment = load_experiment(exp)
    results = experiment.results
    summary = experiment.summary()
    best = summary["best_trial_id"]
    rows = results[results.trial_id == best]
    at_best = rows[rows.loss == summary["best_metric"]].iloc[0]
    expected = {"lr": at_best.config_lr, "momentum": at_best.config_momentum, "epochs": EPOCHS}
    assert summary["best_config"] == expected
    assert tuner.best() is not None and tuner.best().config == expected
    # a trial whose config changed after its best result recommends the earlier config
    n_earlier = 0
    for rec in experiment.state.trials.values():
        if rec.configs is None:
            continue
        standing = next(s for s in experiment.standings() if s.trial_id == rec.trial_id)
        own = results[results.trial_id == rec.trial_id]
        best_row = own.loc[own.loss.idxmin()]
        assert standing.config["lr"] == best_row.config_lr
        n_earlier += standing.config != rec.trial.config
    assert n_earlier >= 1


def test_the_live_tuner_and_the_log_rank_with_the_same_configs(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    live = run_loop(exp)
    assert [(s.trial_id, s.config, s.value) for s in live.standings()] == [
        (s.trial_id, s.config, s.value) for s in load_experiment(exp).standings()]


# -- the population plot ----------------------------------------------------------------------------


def test_the_population_plot_draws_a_lineage_edge_per_exploit(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from tunebench.analysis.plots import experiment_figure, plot_experiment

    exp = tmp_path / "exp"
    run_loop(exp)
    experiment = load_experiment(exp)
    fig = experiment_figure(experiment)
    ax = fig.axes[1]
    assert ax.get_title() == f"population: 6 trials, {len(experiment.lineage())} exploits"
    edges = [line for line in ax.get_lines() if line.get_linestyle() not in ("-", "None")]
    results = experiment.results
    # an exploit of a source that had finished leaves nothing to train: no next point, no edge
    n_results = results.trial_id.value_counts()
    followed = [(row, e["n_results"]) for row, e in zip(experiment.lineage().itertuples(), experiment.state.exploits,
                                                         strict=True) if n_results[row.trial_id] > e["n_results"]]
    assert len(edges) == len(followed) >= 5
    for edge, (row, n_before) in zip(edges, followed, strict=True):
        (x0, x1), (y0, y1) = edge.get_xdata(), edge.get_ydata()
        # from the source's point at the exploit's resource to the trial's next point
        assert x0 == row.resource and x1 == row.resource + 1
        source = results[(results.trial_id == row.source) & (results.epoch == row.resource)
                         & (results.tuner_time <= row.time)]
        assert y0 == source.loss.iloc[-1]
        assert y1 == results[results.trial_id == row.trial_id].loss.iloc[n_before]
    assert plot_experiment(experiment, tmp_path / "pop.png").stat().st_size > 0


# -- the example scripts take a changed config on resume ------------------------------------------

DIGITS = {"momentum": 0.9, "weight_decay": 1e-4, "batch_size": 64, "n_units": 32, "n_layers": 1, "epochs": 4}


class _ExploitOnce(Scheduler):
    """Two trials pause at epoch 2; trial 1 then goes on from trial 0's checkpoint with ``lr``."""

    def __init__(self, configs: list[Config], lr: float) -> None:
        self.config_space = {}
        self.metric, self.mode = "val_error", "min"
        self.resource_attr, self.max_resource_attr = "epoch", "epochs"
        self.configs, self.lr = configs, lr
        self.paused: set[int] = set()

    def suggest(self, trial_id: int) -> Suggestion | None:
        if trial_id < len(self.configs):
            return Suggestion.start(self.configs[trial_id])
        return self.suggest_resume(trial_id)

    def suggest_resume(self, trial_id: int) -> Suggestion | None:
        if self.paused == {0, 1}:
            self.paused.clear()
            return Suggestion.resume(1, {**self.configs[1], "lr": self.lr}, checkpoint_from=0)
        return None

    def on_result(self, trial: Trial, result: Result) -> Decision:
        if result["epoch"] == 2 and trial.trial_id not in self.paused and trial.config["lr"] != self.lr:
            self.paused.add(trial.trial_id)
            return Decision.PAUSE
        return Decision.CONTINUE


def _script_run(script: Path, config: Config, checkpoint: Path) -> dict[int, float]:
    """Epoch -> val_error of the script run by hand (outside a tuner: it prints its reports)."""
    import subprocess
    import sys

    args = [a for k, v in config.items() for a in (f"--{k}", str(v))]
    out = subprocess.run([sys.executable, str(script), *args, "--checkpoint-dir", str(checkpoint)],
                         capture_output=True, text=True, check=True).stdout
    return {r["epoch"]: r["val_error"] for r in map(json.loads, out.splitlines())}


def test_mlp_digits_resumed_from_another_trials_checkpoint_trains_with_its_new_lr(tmp_path: Path) -> None:
    import shutil

    from tunebench.backends.local import LocalBackend

    script = Path(__file__).resolve().parents[1] / "tunebench" / "examples" / "mlp_digits.py"
    configs = [{**DIGITS, "lr": 0.05}, {**DIGITS, "lr": 0.5}]
    exp = tmp_path / "exp"
    backend = LocalBackend(script=script, gpus=[])
    try:
        Tuner(backend, _ExploitOnce(configs, lr=0.01), n_workers=2, stop=StopCriteria(max_trials=2),
              experiment_dir=exp).run()
    finally:
        backend.shutdown()
    results = load_experiment(exp).results
    tuned = dict(zip(results[results.trial_id == 1].epoch, results[results.trial_id == 1].val_error, strict=True))
    assert load_experiment(exp).lineage().iloc[0].changes == {"lr": [0.5, 0.01]}
    # by hand: trial 0's first two epochs, then its checkpoint trained on with lr 0.01 -- or with 0.05
    first = tmp_path / "by-hand"
    own = results[results.trial_id == 0]
    assert _script_run(script, {**configs[0], "epochs": 2}, first) == dict(zip(own.epoch, own.val_error, strict=True))
    other = tmp_path / "same-lr"
    shutil.copytree(first, other)
    new_lr = _script_run(script, {**configs[0], "lr": 0.01}, first)
    old_lr = _script_run(script, configs[0], other)
    assert [tuned[3], tuned[4]] == [new_lr[3], new_lr[4]]
    assert [old_lr[3], old_lr[4]] != [new_lr[3], new_lr[4]]


@pytest.mark.parametrize("kind", ["cosine", "lambda"])
def test_torch_training_state_resumes_with_the_configs_optimizer_hyperparameters(tmp_path: Path, kind: str) -> None:
    """What resnet_images and transformer_wikitext2 do on resume: the optimizer built from the
    (changed) config keeps its learning rate (at the same place in the LR schedule), momentum
    and weight decay; the checkpoint's do not come back."""
    torch = pytest.importorskip("torch")
    from tunebench.integrations.torch import load_training_state, save_training_state

    def build(lr: float, momentum: float, weight_decay: float) -> tuple[Any, Any, Any]:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10) if kind == "cosine" else
                     torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 4)))
        return model, optimizer, scheduler

    def steps(model: Any, optimizer: Any, scheduler: Any, n: int) -> None:
        for _ in range(n):
            optimizer.zero_grad()
            model(torch.ones(2, 3)).sum().backward()
            optimizer.step()
            scheduler.step()

    model, optimizer, scheduler = build(0.1, 0.9, 1e-4)
    steps(model, optimizer, scheduler, 3)
    save_training_state(model, optimizer, scheduler, epoch=3, directory=tmp_path)
    # the same config: the very same state as before (nothing changed)
    same = build(0.1, 0.9, 1e-4)
    load_training_state(*same, directory=tmp_path)
    assert same[1].param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    # a changed config: its values, the learning rate at the same place of the schedule
    model2, optimizer2, scheduler2 = build(0.02, 0.5, 1e-3)
    load_training_state(model2, optimizer2, scheduler2, directory=tmp_path)
    group = optimizer2.param_groups[0]
    assert group["lr"] == pytest.approx(optimizer.param_groups[0]["lr"] * 0.2)
    assert group["momentum"] == 0.5 and group["weight_decay"] == 1e-3
    assert scheduler2.base_lrs == [0.02] and scheduler2.last_epoch == 3
    steps(model2, optimizer2, scheduler2, 1)
    steps(model, optimizer, scheduler, 1)
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"] * 0.2)
