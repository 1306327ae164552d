"""The PyTorch example scripts (resnet_images, transformer_wikitext2) and the helpers of
tunebench.integrations.torch: reports per epoch, checkpoint and resume after a kill, a corrupted
checkpoint, a diverged run, the data sources and their errors, and a short tuning run.

The scripts run as real subprocesses, the way the local backend runs them (results file and
checkpoint folder named by the environment, the trial folder as working directory). Data comes
from $TUNEBENCH_DATA (default: ../shared/data beside the checkout); the tests that need a
dataset skip, saying so, when it is absent."""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

torch = pytest.importorskip("torch", reason="the torch extra is not installed: pip install 'tunebench[torch]'")

from tunebench.integrations.torch import (  # noqa: E402
    CHECKPOINT_FILENAME,
    TrainingDiverged,
    cached_arrays,
    check_finite,
    data_lock,
    load_training_state,
    save_training_state,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "tunebench" / "examples"
RESNET = EXAMPLES / "resnet_images.py"
TRANSFORMER = EXAMPLES / "transformer_wikitext2.py"
DATA = Path(os.environ.get("TUNEBENCH_DATA") or REPO.parent / "shared" / "data")
needs_mnist = pytest.mark.skipif(not (DATA / "mnist-5k" / "mnist_5k.csv.gz").is_file(),
                                 reason=f"MNIST-5k not found at {DATA}/mnist-5k (set TUNEBENCH_DATA)")
needs_wikitext = pytest.mark.skipif(not (DATA / "wikitext-2" / "valid.txt").is_file(),
                                    reason=f"WikiText-2 not found at {DATA}/wikitext-2 (set TUNEBENCH_DATA)")

RESNET_TINY = ["--dataset", "mnist", "--max-train-samples", "300", "--batch_size", "32", "--epochs", "3", "--lr", "0.1",
               "--momentum", "0.9", "--width", "8"]
TRANSFORMER_TINY = ["--d_model", "64", "--n_layers", "1", "--batch_size", "16", "--max-tokens-per-epoch", "3000",
                    "--max-eval-tokens", "3000", "--epochs", "3"]
#: the resume-equals-uninterrupted tests run the scripts deterministic: on CUDA, cuDNN's default
#: algorithms differ run to run (epoch-1 val_error 0.748 vs 0.75 on an H200 without it)
DETERMINISTIC = ["--deterministic"]
CURVE_KEYS = {"resnet": ("val_error", "val_loss", "train_loss"), "transformer": ("val_ppl", "val_loss", "train_loss")}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One data cache for the module: the datasets are prepared by the first script only."""
    return tmp_path_factory.mktemp("cache")


def trial_env(trial: Path, cache: Path, data: Path = DATA) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNEBENCH_")}
    env.update({"TUNEBENCH_RESULTS_FILE": str(trial / "results.jsonl"),
                "TUNEBENCH_CHECKPOINT_DIR": str(trial / "checkpoint"),
                "TUNEBENCH_CACHE": str(cache), "TUNEBENCH_DATA": str(data), "OMP_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1"})
    return env


def run(script: Path, args: list[str], trial: Path, cache: Path, **kw) -> subprocess.CompletedProcess:
    trial.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, str(script), *args], cwd=trial, env=trial_env(trial, cache, **kw),
                          capture_output=True, text=True, timeout=300)


def reports(trial: Path) -> list[dict]:
    path = trial / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


def kill_after_first_report(script: Path, args: list[str], trial: Path, cache: Path) -> int:
    """Start the script, SIGKILL it as soon as it has reported an epoch; the epochs reported."""
    trial.mkdir(parents=True, exist_ok=True)
    with open(trial / "stderr.log", "wb") as err:
        proc = subprocess.Popen([sys.executable, str(script), *args], cwd=trial, env=trial_env(trial, cache),
                                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 240
        while not reports(trial) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (trial / "stderr.log").read_text()[-2000:]
    return len(reports(trial))


def same_curve(a: list[dict], b: list[dict], keys: tuple[str, ...]) -> None:
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for key in keys:
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-7), (key, ra, rb)


load_example = load_script


# --------------------------------------------------------------------------- the scripts


@needs_mnist
def test_resnet_reports_checkpoints_resumes_after_a_kill_and_survives_a_corrupted_checkpoint(tmp_path, cache):
    ref = run(RESNET, [*RESNET_TINY, *DETERMINISTIC], tmp_path / "ref", cache)
    assert ref.returncode == 0, ref.stderr
    curve = reports(tmp_path / "ref")
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    for r in curve:
        assert {"epoch", "val_error", "val_loss", "train_loss", "epoch_time"} <= set(r)
        assert 0.0 <= r["val_error"] <= 1.0 and r["epoch_time"] > 0
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] and curve[-1]["val_error"] < 0.8, \
        "it learns (chance: 0.9)"
    assert (tmp_path / "ref" / "checkpoint" / CHECKPOINT_FILENAME).is_file()

    # killed after its first epoch, then started again like a resumed trial
    trial = tmp_path / "killed"
    done = kill_after_first_report(RESNET, [*RESNET_TINY, *DETERMINISTIC], trial, cache)
    assert 1 <= done < 3
    again = run(RESNET, [*RESNET_TINY, *DETERMINISTIC], trial, cache)
    assert again.returncode == 0, again.stderr
    assert f"resuming after epoch {done}" in again.stderr
    lines = reports(trial)
    assert [r["epoch"] for r in lines] == list(range(1, done + 1)) + list(range(done, 4)), \
        "the checkpointed epoch is reported again, then training continues after it"
    assert lines[done] == {**lines[done - 1], "_timestamp": lines[done]["_timestamp"], "_iteration": 0}
    same_curve(lines[done:], curve[done - 1:], CURVE_KEYS["resnet"])  # the very run that was interrupted

    # a corrupted checkpoint: the trial trains from scratch and says so
    (trial / "checkpoint" / CHECKPOINT_FILENAME).write_bytes(b"\x00garbage" * 100)
    n_before = len(lines)
    fresh = run(RESNET, [*RESNET_TINY, "--epochs", "1"], trial, cache)
    assert fresh.returncode == 0, fresh.stderr
    assert "is corrupted" in fresh.stderr and "starting this trial from scratch" in fresh.stderr
    assert [r["epoch"] for r in reports(trial)[n_before:]] == [1]


@needs_mnist
def test_resnet_with_a_diverging_config_fails_with_a_message_and_reports_nothing(tmp_path, cache):
    out = run(RESNET, [*RESNET_TINY, "--lr", "1e6"], tmp_path, cache)
    assert out.returncode == 1
    assert "training diverged: the training loss is nan in epoch 1" in out.stderr
    assert "lower the learning rate" in out.stderr
    assert reports(tmp_path) == []


@needs_wikitext
def test_transformer_reports_perplexity_and_resumes_after_a_kill(tmp_path, cache):
    ref = run(TRANSFORMER, [*TRANSFORMER_TINY, *DETERMINISTIC], tmp_path / "ref", cache)
    assert ref.returncode == 0, ref.stderr
    assert "trains on valid.txt, evaluates on test.txt" in ref.stderr
    curve = reports(tmp_path / "ref")
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    for r in curve:
        assert {"epoch", "val_ppl", "val_loss", "train_loss", "epoch_time"} <= set(r)
        assert r["val_ppl"] == pytest.approx(np.exp(r["val_loss"]))
    assert curve[-1]["val_ppl"] < curve[0]["val_ppl"] < 18328, "better than a uniform guess, and improving"

    trial = tmp_path / "killed"
    done = kill_after_first_report(TRANSFORMER, [*TRANSFORMER_TINY, *DETERMINISTIC], trial, cache)
    assert 1 <= done < 3
    again = run(TRANSFORMER, [*TRANSFORMER_TINY, *DETERMINISTIC], trial, cache)
    assert again.returncode == 0, again.stderr
    assert f"resuming after epoch {done}" in again.stderr
    lines = reports(trial)
    assert [r["epoch"] for r in lines] == list(range(1, done + 1)) + list(range(done, 4))
    same_curve(lines[done:], curve[done - 1:], CURVE_KEYS["transformer"])


@needs_wikitext
def test_transformer_with_a_diverging_config_fails_with_a_message(tmp_path, cache):
    out = run(TRANSFORMER, [*TRANSFORMER_TINY, "--lr", "1e30"], tmp_path, cache)
    assert out.returncode == 1
    assert "training diverged" in out.stderr and "this trial fails" in out.stderr
    assert reports(tmp_path) == []


# --------------------------------------------------------------------------- data sources and their errors


def write_cifar_folder(folder: Path, n: int = 10) -> np.ndarray:
    """A tiny folder in CIFAR-10's python format (dicts with bytes keys, uint8 (N, 3072) data)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels_all = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [int(v) for v in rng.integers(0, 10, n)]
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        data[:, :1024] = np.array(labels, dtype=np.uint8)[:, None] * 25  # a learnable red channel
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        labels_all.append(labels)
    return np.array(labels_all)


def test_cifar10_loader_reads_the_python_format_and_trains(tmp_path, cache, monkeypatch):
    resnet = load_example(RESNET)
    folder = tmp_path / "cifar-10-batches-py"
    labels = write_cifar_folder(folder)
    x, y, x_test, y_test = resnet.load_cifar10(folder)
    assert x.shape == (50, 3, 32, 32) and x.dtype == np.uint8 and x_test.shape == (10, 3, 32, 32)
    assert y.tolist() == labels[:5].ravel().tolist() and y_test.tolist() == labels[5].tolist()
    assert (x[:, 0] == (y * 25)[:, None, None]).all(), "the first 1024 values are the red channel"

    trial = tmp_path / "trial"
    for key, value in trial_env(trial, cache).items():
        monkeypatch.setenv(key, value)
    resnet.main(["--dataset", "cifar10", "--data-dir", str(tmp_path), "--epochs", "2", "--batch_size", "32",
                 "--width", "4"])
    lines = reports(trial)
    assert [r["epoch"] for r in lines] == [1, 2]
    assert "test_error" in lines[1] and "test_error" not in lines[0], "the test batch is scored after the last epoch"


def test_cifar10_loader_refuses_code_and_malformed_batches(tmp_path):
    resnet = load_example(RESNET)
    folder = tmp_path / "cifar"
    write_cifar_folder(folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": os.system, b"labels": []}))
    with pytest.raises(SystemExit, match=r"data_batch_3 is not a readable CIFAR-10 batch.*posix.system is not allowed"):
        resnet.load_cifar10(folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}))
    with pytest.raises(SystemExit, match=r"data_batch_3: 'data' must be uint8 of shape \(N, 3072\)"):
        resnet.load_cifar10(folder)
    (folder / "data_batch_5").unlink()
    with pytest.raises(SystemExit, match="not a CIFAR-10 folder: data_batch_5 missing"):
        resnet.load_cifar10(folder)


def test_resnet_falls_back_to_digits_without_mnist_and_explains_missing_folders(tmp_path, cache, monkeypatch, caplog):
    resnet = load_example(RESNET)
    empty = tmp_path / "no-data"
    empty.mkdir()
    trial = tmp_path / "trial"
    for key, value in trial_env(trial, cache, data=empty).items():
        monkeypatch.setenv(key, value)
    with caplog.at_level(logging.WARNING):
        resnet.main(["--epochs", "1", "--max-train-samples", "200"])
    assert "training on scikit-learn's 8x8 digits instead" in caplog.text and "TUNEBENCH_DATA" in caplog.text
    assert [r["epoch"] for r in reports(trial)] == [1]

    with pytest.raises(SystemExit, match=r"--data-dir .*nowhere does not exist"):
        resnet.main(["--data-dir", str(tmp_path / "nowhere"), "--epochs", "1"])
    with pytest.raises(SystemExit, match=r"MNIST-5k \(mnist_5k.csv.gz\) not found .*--data-dir.*TUNEBENCH_DATA"):
        resnet.main(["--dataset", "mnist", "--epochs", "1"])
    with pytest.raises(SystemExit, match=r"CIFAR-10 folder .* not found.*--data-dir.*TUNEBENCH_DATA"):
        resnet.main(["--dataset", "cifar10", "--epochs", "1"])


def test_transformer_says_which_flag_or_variable_to_set_without_wikitext(tmp_path, monkeypatch):
    transformer = load_example(TRANSFORMER)
    monkeypatch.setenv("TUNEBENCH_DATA", str(tmp_path))
    with pytest.raises(SystemExit, match=r"WikiText-2 not found: .*TUNEBENCH_DATA=.*--data-dir .* set TUNEBENCH_DATA"):
        transformer.data_folder(None)
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / "valid.txt").write_text("a b\n")
    with pytest.raises(SystemExit, match=r"lacks test.txt \(--data-dir"):
        transformer.data_folder(tmp_path / "wt")
    (tmp_path / "wt" / "train.txt").write_text("a b c\n")
    assert transformer.data_folder(tmp_path / "wt") == tmp_path / "wt", "train.txt + valid.txt: the usual splits"


# --------------------------------------------------------------------------- the helpers


def _tiny_training(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler) -> None:
    x = torch.randn(8, 3)
    loss = model(x).pow(2).mean() + float(np.random.rand())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()


def test_training_state_round_trip_restores_model_optimizer_scheduler_and_rngs(tmp_path):
    import random

    model, optimizer, scheduler = _tiny_training()
    for _ in range(3):
        _step(model, optimizer, scheduler)
    path = save_training_state(model, optimizer, scheduler, epoch=3, extra={"metrics": {"epoch": 3, "x": 0.5}},
                               directory=tmp_path)
    assert path == tmp_path / CHECKPOINT_FILENAME
    expected_draws = (random.random(), float(np.random.rand()), torch.rand(1).item())
    _step(model, optimizer, scheduler)
    expected_weights = [p.detach().clone() for p in model.parameters()]

    model2, optimizer2, scheduler2 = _tiny_training(seed=1)
    random.random(), np.random.rand(), torch.rand(5)  # the RNGs elsewhere
    state = load_training_state(model2, optimizer2, scheduler2, directory=tmp_path)
    assert state["epoch"] == 3 and state["extra"] == {"metrics": {"epoch": 3, "x": 0.5}}
    assert scheduler2.last_epoch == 3 and optimizer2.param_groups[0]["lr"] == pytest.approx(0.05)
    assert (random.random(), float(np.random.rand()), torch.rand(1).item()) == expected_draws
    load_training_state(model2, optimizer2, scheduler2, directory=tmp_path)
    random.random(), np.random.rand(), torch.rand(1)
    _step(model2, optimizer2, scheduler2)  # momentum buffers, BN statistics and LR continue the same way
    for p, q in zip(model2.parameters(), expected_weights, strict=True):
        assert torch.equal(p, q)
    assert torch.equal(model2[1].running_mean, model[1].running_mean)


def test_training_state_outside_a_tuner_and_unsafe_extras(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNEBENCH_CHECKPOINT_DIR", raising=False)
    model, optimizer, scheduler = _tiny_training()
    assert save_training_state(model, optimizer, scheduler, epoch=1) is None
    assert load_training_state(model, optimizer, scheduler) is None
    assert load_training_state(model, optimizer, scheduler, directory=tmp_path) is None, "no checkpoint yet"
    with pytest.raises(TypeError, match=r"extra\['rng'\] is a ndarray.*array.tolist\(\)"):
        save_training_state(model, optimizer, epoch=1, extra={"rng": np.zeros(3)}, directory=tmp_path)
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        save_training_state(model, optimizer, epoch=-1, directory=tmp_path)
    with pytest.raises(TypeError, match=r"extra\['log'\]\[1\] is a \w*Path"):
        save_training_state(model, optimizer, epoch=1, extra={"log": ["a", tmp_path]}, directory=tmp_path)
    assert not (tmp_path / CHECKPOINT_FILENAME).exists()
    # a numpy Generator's state (with 128-bit integers) and numpy scalars are valid extras
    rng = np.random.default_rng(5)
    extra = {"gen": rng.bit_generator.state, "metrics": {"loss": np.float64(0.5), "n": np.int64(3)}}
    save_training_state(model, optimizer, epoch=2, extra=extra, directory=tmp_path)
    state = load_training_state(model, optimizer, directory=tmp_path)
    assert state is not None and state["extra"]["gen"] == rng.bit_generator.state
    assert state["extra"]["metrics"] == {"loss": 0.5, "n": 3} and type(state["extra"]["metrics"]["loss"]) is float


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other_model", "no_scheduler"])
def test_a_corrupted_checkpoint_is_ignored_with_a_warning(tmp_path, caplog, damage):
    model, optimizer, scheduler = _tiny_training()
    _step(model, optimizer, scheduler)
    path = save_training_state(model, optimizer, scheduler, epoch=1, directory=tmp_path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif damage == "other_model":
        other = torch.nn.Linear(3, 2)
        save_training_state(other, torch.optim.SGD(other.parameters(), lr=0.1), scheduler, epoch=4,
                            directory=tmp_path)
    else:
        save_training_state(model, optimizer, None, epoch=1, directory=tmp_path)
    fresh, fresh_opt, fresh_sched = _tiny_training(seed=3)
    before = [p.detach().clone() for p in fresh.parameters()]
    with caplog.at_level(logging.WARNING, logger="tunebench.integrations.torch"):
        assert load_training_state(fresh, fresh_opt, fresh_sched, directory=tmp_path) is None
    assert f"checkpoint {path} is corrupted (" in caplog.text
    assert "starting this trial from scratch" in caplog.text
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), before, strict=True)), "the model is untouched"
    assert fresh_opt.state_dict()["state"] == {} and fresh_sched.last_epoch == 0


class _Plant:
    """Pickles into a call that writes ``marker`` when unpickled (the way a planted pickle runs code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_a_checkpoint_that_would_run_code_is_refused_by_weights_only(tmp_path, caplog):
    model, optimizer, scheduler = _tiny_training()
    path = save_training_state(model, optimizer, scheduler, epoch=1, directory=tmp_path)
    state = torch.load(path, weights_only=True)
    marker = tmp_path / "ran"
    state["extra"] = {"x": _Plant(marker)}
    torch.save(state, path)
    with caplog.at_level(logging.WARNING, logger="tunebench.integrations.torch"):
        assert load_training_state(model, optimizer, scheduler, directory=tmp_path) is None
    assert "is corrupted (UnpicklingError: Weights only load failed" in caplog.text
    assert not marker.exists()
    torch.load(path, weights_only=False)
    assert marker.exists(), "the planted object does run code when loaded without weights_only"


def test_set_deterministic_sets_the_torch_and_cudnn_flags():
    code = ("import os, torch; from tunebench.integrations.torch import set_deterministic; "
            "assert not torch.are_deterministic_algorithms_enabled(); set_deterministic(); "
            "print(torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic, "
            "torch.backends.cudnn.benchmark, os.environ['CUBLAS_WORKSPACE_CONFIG'])")
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "False", ":4096:8"]
    for script in (RESNET, TRANSFORMER):
        assert load_example(script).build_parser().parse_args(["--deterministic"]).deterministic is True


def test_check_finite_ends_a_diverged_trial_with_exit_code_1():
    assert check_finite(torch.tensor(0.25)) == 0.25
    with pytest.raises(TrainingDiverged, match="the training loss is inf in epoch 4; this trial fails") as info:
        check_finite(float("inf"), epoch=4)
    assert isinstance(info.value, SystemExit) and info.value.code != 0
    with pytest.raises(SystemExit, match="the validation loss is nan"):
        check_finite(torch.tensor(float("nan")), "validation loss")


def test_cached_arrays_are_built_once_by_concurrent_trials(tmp_path):
    source = tmp_path / "raw.csv"
    source.write_text("1,2,3\n")
    calls = []

    def build():
        calls.append(1)
        time.sleep(0.3)  # the others arrive while it prepares
        return {"x": np.arange(4), "words": np.array(["a", "bb"])}

    results = []
    threads = [threading.Thread(target=lambda: results.append(
        cached_arrays("raw", build, sources=(source,), cache_dir=tmp_path / "cache"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 3
    assert all(r["x"].tolist() == [0, 1, 2, 3] and r["words"].tolist() == ["a", "bb"] for r in results)
    # a changed source prepares again; a damaged cache file is prepared again
    source.write_text("1,2,3,4\n")
    cached_arrays("raw", build, sources=(source,), cache_dir=tmp_path / "cache")
    assert len(calls) == 2
    for f in (tmp_path / "cache").glob("raw-*.npz"):
        f.write_bytes(b"broken")
    assert cached_arrays("raw", build, sources=(source,), cache_dir=tmp_path / "cache")["x"].tolist() == [0, 1, 2, 3]
    assert len(calls) == 3


def test_data_lock_excludes_a_second_holder(tmp_path):
    order = []
    with data_lock(tmp_path / "dataset"):
        t = threading.Thread(target=lambda: (data_lock(tmp_path / "dataset").__enter__(), order.append("second")))
        t.start()
        time.sleep(0.2)
        order.append("first done")
    t.join(5)
    assert order == ["first done", "second"]


# --------------------------------------------------------------------------- tuning end to end


@pytest.mark.slow
@needs_mnist
def test_asha_tunes_resnet_images_on_the_local_backend_and_survives_diverged_trials(tmp_path, cache):
    from tunebench.backends.local import LocalBackend
    from tunebench.schedulers import make_scheduler
    from tunebench.space import choice, uniform
    from tunebench.store import load_experiment
    from tunebench.tuner import StopCriteria, Tuner

    resnet = load_example(RESNET)
    space = {**resnet.CONFIG_SPACE, "lr": choice([0.1, 0.2, 1e6]), "momentum": uniform(0.85, 0.9), "batch_size": 32,
             "epochs": 3}
    env = {k: v for k, v in trial_env(tmp_path, cache).items() if k in ("TUNEBENCH_CACHE", "TUNEBENCH_DATA")}
    backend = LocalBackend(script=RESNET, env={**env, "OMP_NUM_THREADS": "1"},
                           extra_args=["--dataset", "mnist", "--max-train-samples", "400", "--width", "8"])
    scheduler = make_scheduler("ASHA", space, metric=resnet.METRIC, mode=resnet.MODE,
                               resource_attr=resnet.RESOURCE_ATTR, max_resource_attr=resnet.MAX_RESOURCE_ATTR, seed=3)
    result = Tuner(backend, scheduler, n_workers=2, stop=StopCriteria(max_trials=8), experiment_dir=tmp_path / "exp",
                   max_failures=8).run()
    assert result.n_trials == 8 and result.n_failed >= 1 and result.n_completed >= 1
    assert result.best_metric < 0.75 and result.best_config["lr"] != 1e6, "better than chance (0.9)"
    trials = load_experiment(tmp_path / "exp").trial_table()
    failed = [t for t in trials if t["status"] == "failed"]
    assert failed and all(t["config"]["lr"] == 1e6 and "training diverged" in t["error"] for t in failed)
