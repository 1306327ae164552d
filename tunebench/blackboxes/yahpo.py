"""YAHPO Gym surrogate benchmarks as blackboxes, every v1 scenario (L2).

`YAHPO Gym <https://github.com/slds-lmu/yahpo_gym>`_ models the learning curves of real training
runs with one ONNX neural-network surrogate per *scenario*; an *instance* of a scenario is one
dataset (for ``lcbench``: one of 34 OpenML task ids). :class:`YahpoBlackbox` wraps one scenario +
instance::

    bb = YahpoBlackbox("lcbench", "3945")           # data from $TUNEBENCH_DATA/yahpo
    curves = bb.evaluate(configs)                   # (n_configs, 52 epochs, 6 objectives)
    bb = YahpoBlackbox("rbv2_super", "1040")        # conditional space, trainsize levels 1..20

The scenarios are YAHPO Gym v1's: ``lcbench``, ``nb301``, ``rbv2_{svm,ranger,rpart,glmnet,xgboost,
aknn,super}`` and ``iaml_{ranger,rpart,glmnet,xgboost,super}`` (:data:`SCENARIOS`; ``fcnet`` and
``taskset`` are not in YAHPO Gym's v1 list, ``yahpo_gym.benchmarks`` does not load them).

**Data.** The folder named by ``data_dir`` or the environment variable ``TUNEBENCH_DATA`` must
hold a ``yahpo/`` subfolder laid out as YAHPO expects its data path: one folder per scenario with
``model.onnx``, ``config_space.json`` and ``encoding.json`` (the YAHPO Gym v1.0.2 data). Nothing
is ever downloaded. :func:`yahpo_scenarios` lists the scenarios a data folder holds.

**What is read from where.**

* ``config_space.json`` (ConfigSpace JSON, read by
  :func:`~tunebench.blackboxes.configspace_json.space_from_configspace_json`): every
  hyperparameter and its domain, the conditions (``EQ``/``IN``/``AND``... become ``when``
  conditions), the instances (the choices of the instance parameter), the fidelity parameter's
  type and range, the range of an extra fidelity parameter.
* ``encoding.json``: the integer code of every categorical value the surrogate was trained on,
  and ``#na#``, the code of an inactive categorical parameter.
* ``model.onnx``: the input names and widths, the output width and whether the batch dimension
  is free or fixed (a fixed batch of 1: rows go through one at a time).
* ``global_statistics/instance_target_statistics.csv`` (where present): the target names of each
  scenario, checked against the table below.
* What the data files do not hold is what yahpo-gym keeps in Python
  (``yahpo_gym/benchmarks/{lcbench,nb301,rbv2,iaml}.py``) and is tabulated here per scenario in
  :data:`SCENARIOS` (:class:`ScenarioFacts`): the targets in the surrogate's output order and
  which are minimized, the order of the continuous and categorical inputs, the instance parameter,
  the fidelity parameters, the runtime target, and the parameters not fed to the model (nb301's
  ``dataset``). The table is checked against the files at load: the inputs must be exactly the
  space's parameters, the categorical ones those of ``encoding.json``, the widths those of the
  ONNX model, the targets those of the statistics file; a mismatch is a UserError naming it.
  The default metric, mode and budget of the ``yahpo-<scenario>-<instance>`` benchmarks are
  tunebench's choice, also kept in :class:`ScenarioFacts`.

**Fidelities.** An integer fidelity (``epoch``) takes every integer of its range. A fractional
one (rbv2/iaml ``trainsize`` in 0.05..1) is mapped to integer levels: level ``k`` is
``k * lower`` (``trainsize`` 0.05..1 -> levels 1..20, 0.05 a level), as Syne Tune's YAHPO wrapper
does; ``fidelity_values`` are the levels. A second fidelity parameter (rbv2's ``repl``, the
replication) is pinned at the upper bound of its range (10), as in Syne Tune. Neither the pinned
parameter nor the instance is part of :attr:`~YahpoBlackbox.config_space`.

**Packages.** Only ``onnxruntime`` is needed (``pip install 'tunebench[yahpo]'``). This module
reads YAHPO's data folder itself and does not import the ``yahpo-gym`` package: yahpo-gym 1.0.2
pins ``numpy<2`` and ``ConfigSpace<=0.6.1`` (whose compiled modules fail to import under numpy 2,
and which has no wheels for Python 3.12+), which would hold the whole environment back (pyarrow
26 needs numpy 2). Not importing it also means YAHPO's local configuration file
(``~/.config/yahpo_gym``) is never read or written, and its citation print never happens (the
text is in :attr:`YahpoBlackbox.citation`). The surrogate's inputs are built as YAHPO's
``BenchmarkSet.objective_function`` builds them (continuous parameters as float32 in the
scenario's order, categorical ones through ``encoding.json``, an inactive parameter as 0 or
``#na#``); the tests check lcbench's outputs against values computed with yahpo-gym 1.0.2.

``onnxruntime`` itself writes a device id for its telemetry under
``$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime`` (default ``~/.cache/...``) when it is
imported; that is onnxruntime's behaviour and cannot be turned off from here.

**Evaluation** is batched where the model's batch dimension is free: all (config x fidelity)
rows of one :meth:`~YahpoBlackbox.evaluate` call go through the ONNX session together (in runs
of a few thousand rows); a model with a fixed batch size gets rows in runs of exactly that size.

**Elapsed time** (the simulator's clock; cumulative, as Syne Tune's YAHPO blackboxes report it):

* epoch scenarios (``lcbench``: ``time``, ``nb301``: ``runtime``): the runtime target is the
  cumulative training time up to each epoch; the surrogate's prediction is not always monotone
  (about 2% of lcbench's epoch-to-epoch steps decrease), so the target is clipped at 0 and made
  monotone along the epochs with ``np.maximum.accumulate`` (over the epochs from the first one,
  whatever fidelities are asked for). It is the elapsed-time objective itself.
* trainsize scenarios (rbv2/iaml: ``timetrain``): the target is the time of one training on that
  share of the data, not cumulative; ``timetrain`` stays as YAHPO predicts it, and an added
  objective ``elapsed_time`` holds the cumulative time of a trial that trained at every level up
  to this one: the sum over levels ``1..k`` of ``max(timetrain, MIN_LEVEL_TIME)``, strictly
  increasing.

Either way a value depends only on the levels up to it, so a curve evaluated in pieces equals
the curve evaluated in one call (the blackbox contract).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.blackboxes.configspace_json import space_from_configspace_json
from tunebench.errors import UserError
from tunebench.space import Domain, Float, Integer, validate_space
from tunebench.space.conditions import active_config, condition_order
from tunebench.types import Config

__all__ = [
    "YahpoBlackbox",
    "LCBENCH_DEVELOPMENT_TASKS",
    "development_tasks_among",
    "ScenarioFacts",
    "resolve_data_dir",
    "yahpo_data_dir",
    "yahpo_scenarios",
    "yahpo_instances",
    "load_yahpo_blackboxes",
    "yahpo_fidelity_levels",
    "lcbench_instances",
    "SCENARIOS",
    "LCBENCH_INSTANCES",
    "LCBENCH_OBJECTIVE_MODES",
    "MIN_LEVEL_TIME",
    "ELAPSED_TIME",
]

#: The environment variable naming the benchmark data folder (which holds ``yahpo/``).
DATA_ENV = "TUNEBENCH_DATA"
#: The objective added to trainsize scenarios: cumulative training time over the levels.
ELAPSED_TIME = "elapsed_time"
#: Smallest training time (seconds) one trainsize level adds to ``elapsed_time``.
MIN_LEVEL_TIME = 1e-3
#: The code ``encoding.json`` gives an inactive categorical parameter.
NA = "#na#"

_INSTALL_HINT = "pip install 'tunebench[yahpo]'"
_DATA_HINT = (f"set {DATA_ENV} to the folder holding yahpo/ (for example ../shared/data) "
              "or pass --data-dir")
_STATISTICS = Path("global_statistics") / "instance_target_statistics.csv"


@dataclass(frozen=True)
class ScenarioFacts:
    """What the data files of a YAHPO scenario do not say (yahpo-gym keeps it in Python), plus
    the defaults of its benchmarks. Checked against the files when a blackbox is loaded.

    Attributes:
        targets: the surrogate's outputs, in order; ``minimize`` one flag each.
        cont_names, cat_names: the continuous and categorical inputs, in the model's order
            (fidelity parameters included; ``drop`` parameters excluded from the model input).
        instance_param: the parameter naming the instance; ``fidelity`` the fidelity parameter;
            ``pinned`` further fidelity parameters, pinned at their upper bound.
        runtime: the runtime target.
        drop: parameters of the space not fed to the model (nb301's ``dataset``).
        metric, mode, budget: defaults of the ``yahpo-<scenario>-<instance>`` benchmarks
            (simulated seconds), tunebench's choice.
        citation: what to cite besides YAHPO Gym.
    """

    targets: tuple[str, ...]
    minimize: tuple[bool, ...]
    cont_names: tuple[str, ...]
    cat_names: tuple[str, ...]
    instance_param: str
    fidelity: str
    runtime: str
    metric: str
    mode: str
    budget: float
    pinned: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    citation: tuple[str, ...] = ()


_YAHPO_CITATION = (
    "Pfisterer, F., Schneider, L., Moosbauer, J., Binder, M., & Bischl, B. (2022). YAHPO Gym - An "
    "Efficient Multi-Objective Multi-Fidelity Benchmark for Hyperparameter Optimization. AutoML "
    "Conference 2022.")
_RBV2_TARGETS = ("acc", "bac", "auc", "brier", "f1", "logloss", "timetrain", "timepredict", "memory")
_RBV2_MIN = (False, False, False, True, True, True, True, True, True)
_IAML_TARGETS = ("mmce", "f1", "auc", "logloss", "ramtrain", "rammodel", "rampredict", "timetrain", "timepredict",
                 "mec", "ias", "nf")
_IAML_MIN = (True, False, False, True, True, True, True, True, True, True, True, True)
_XGB = ("nrounds", "eta", "gamma", "lambda", "alpha", "subsample", "max_depth", "min_child_weight",
        "colsample_bytree", "colsample_bylevel", "rate_drop", "skip_drop")
_RBV2_CITATION = ("Binder M., Pfisterer F. & Bischl B. (2020). Collecting Empirical Data About Hyperparameters for "
                  "Data Driven AutoML. 7th ICML Workshop on Automated Machine Learning.", _YAHPO_CITATION)


def _rbv2(cont: Sequence[str], cat: Sequence[str]) -> ScenarioFacts:
    return ScenarioFacts(_RBV2_TARGETS, _RBV2_MIN, (*cont, "trainsize", "repl"), ("task_id", *cat),
                         instance_param="task_id", fidelity="trainsize", pinned=("repl",), runtime="timetrain",
                         metric="acc", mode="max", budget=3600.0, citation=_RBV2_CITATION)


def _iaml(cont: Sequence[str], cat: Sequence[str]) -> ScenarioFacts:
    return ScenarioFacts(_IAML_TARGETS, _IAML_MIN, (*cont, "trainsize"), ("task_id", *cat),
                         instance_param="task_id", fidelity="trainsize", runtime="timetrain", metric="mmce",
                         mode="min", budget=3600.0, citation=(_YAHPO_CITATION,))


_NB301_CELLS = tuple(f"NetworkSelectorDatasetInfo_COLON_darts_COLON_edge_{kind}_{i}"
                     for kind in ("normal", "reduce") for i in range(14)) + tuple(
    f"NetworkSelectorDatasetInfo_COLON_darts_COLON_inputs_node_{kind}_{i}"
    for kind in ("normal", "reduce") for i in (3, 4, 5))

#: Scenario -> its facts (yahpo-gym 1.0.2's ``yahpo_gym/benchmarks/*.py``), lcbench first.
SCENARIOS: dict[str, ScenarioFacts] = {
    "lcbench": ScenarioFacts(
        targets=("time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "test_cross_entropy",
                 "test_balanced_accuracy"),
        minimize=(True, False, True, False, True, False),
        cont_names=("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units",
                    "max_dropout"),
        cat_names=("OpenML_task_id",), instance_param="OpenML_task_id", fidelity="epoch", runtime="time",
        metric="val_accuracy", mode="max", budget=7200.0,
        citation=(
            "Zimmer, L., Lindauer, M., & Hutter, F. (2021). Auto-Pytorch: Multi-Fidelity Metalearning for "
            "Efficient and Robust AutoDL. IEEE Transactions on Pattern Analysis and Machine Intelligence, "
            "43(9), 3079-3090.",
            "Zimmer, L. (2020). data_2k_lw.zip. figshare. Dataset. "
            "https://doi.org/10.6084/m9.figshare.11662422.v1, Apache License, Version 2.0.",
            _YAHPO_CITATION)),
    "nb301": ScenarioFacts(
        targets=("val_accuracy", "runtime"), minimize=(False, True), cont_names=("epoch",), cat_names=_NB301_CELLS,
        instance_param="dataset", fidelity="epoch", runtime="runtime", drop=("dataset",),
        metric="val_accuracy", mode="max", budget=12 * 3600.0,
        citation=(
            "Siems, J., Zimmer, L., Zela, A., Lukasik, J., Keuper, M., & Hutter, F. (2020). NAS-Bench-301 and the "
            "Case for Surrogate Benchmarks for Neural Architecture Search. arXiv preprint arXiv:2008.09777.",
            _YAHPO_CITATION)),
    "rbv2_svm": _rbv2(("cost", "gamma", "tolerance", "degree"), ("kernel", "num.impute.selected.cpo")),
    "rbv2_ranger": _rbv2(("num.trees", "sample.fraction", "mtry.power", "min.node.size", "num.random.splits"),
                         ("respect.unordered.factors", "splitrule", "num.impute.selected.cpo")),
    "rbv2_rpart": _rbv2(("cp", "maxdepth", "minbucket", "minsplit"), ("num.impute.selected.cpo",)),
    "rbv2_glmnet": _rbv2(("alpha", "s"), ("num.impute.selected.cpo",)),
    "rbv2_xgboost": _rbv2(_XGB, ("booster", "num.impute.selected.cpo")),
    "rbv2_aknn": _rbv2(("k", "M", "ef", "ef_construction"), ("distance", "num.impute.selected.cpo")),
    "rbv2_super": _rbv2(
        ("svm.cost", "svm.gamma", "svm.tolerance", "svm.degree", "glmnet.alpha", "glmnet.s", "rpart.cp",
         "rpart.maxdepth", "rpart.minbucket", "rpart.minsplit", "ranger.num.trees", "ranger.sample.fraction",
         "ranger.mtry.power", "ranger.min.node.size", "ranger.num.random.splits", "aknn.k", "aknn.M", "aknn.ef",
         "aknn.ef_construction", *(f"xgboost.{n}" for n in _XGB)),
        ("learner_id", "svm.kernel", "ranger.respect.unordered.factors", "ranger.splitrule", "aknn.distance",
         "xgboost.booster", "num.impute.selected.cpo")),
    "iaml_ranger": _iaml(("num.trees", "sample.fraction", "mtry.ratio", "min.node.size", "num.random.splits"),
                         ("replace", "respect.unordered.factors", "splitrule")),
    "iaml_rpart": _iaml(("cp", "maxdepth", "minbucket", "minsplit"), ()),
    "iaml_glmnet": _iaml(("alpha", "s"), ()),
    "iaml_xgboost": _iaml(_XGB, ("booster",)),
    "iaml_super": _iaml(
        ("ranger.num.trees", "ranger.sample.fraction", "ranger.mtry.ratio", "ranger.min.node.size",
         "ranger.num.random.splits", "rpart.cp", "rpart.maxdepth", "rpart.minbucket", "rpart.minsplit",
         "glmnet.alpha", "glmnet.s", *(f"xgboost.{n}" for n in _XGB)),
        ("learner", "ranger.replace", "ranger.respect.unordered.factors", "ranger.splitrule", "xgboost.booster")),
}

#: The lcbench tasks that method defaults may be tuned on (the project's development tasks);
#: figures are reported on the others, as held out.
LCBENCH_DEVELOPMENT_TASKS: tuple[str, ...] = ("3945", "7593", "34539", "126025", "126026", "126029", "146212",
                                              "167104")


def development_tasks_among(tasks: Sequence[str]) -> list[str]:
    """The development tasks (:data:`LCBENCH_DEVELOPMENT_TASKS`) among lcbench ``tasks``, sorted:
    a benchmark script notes them, since a figure over them is not a held-out one."""
    return sorted(set(map(str, tasks)) & set(LCBENCH_DEVELOPMENT_TASKS))


#: The 34 OpenML task ids of the ``lcbench`` scenario (YAHPO Gym v1.0.2 data), in YAHPO's order.
LCBENCH_INSTANCES: tuple[str, ...] = (
    "3945", "7593", "34539", "126025", "126026", "126029", "146212", "167104", "167149",
    "167152", "167161", "167168", "167181", "167184", "167185", "167190", "167200", "167201",
    "168329", "168330", "168331", "168335", "168868", "168908", "168910", "189354", "189862",
    "189865", "189866", "189873", "189905", "189906", "189908", "189909",
)

#: Objective -> ``"min"``/``"max"`` for ``lcbench``. ``val_accuracy`` is in percent, the balanced
#: accuracies in [0, 1]; ``time`` is cumulative seconds.
LCBENCH_OBJECTIVE_MODES: dict[str, str] = {
    name: "min" if minimize else "max"
    for name, minimize in zip(SCENARIOS["lcbench"].targets, SCENARIOS["lcbench"].minimize, strict=True)
}

# Rows per ONNX run of a model with a free batch dimension: bounds memory, and a few thousand rows
# a run was no slower than one big run.
_CHUNK_ROWS = 4096
_FILES = ("model.onnx", "config_space.json", "encoding.json")


def lcbench_instances() -> list[str]:
    """The 34 OpenML task ids of YAHPO's ``lcbench`` scenario (no data or package needed)."""
    return list(LCBENCH_INSTANCES)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark data folder: ``data_dir`` if given, else ``$TUNEBENCH_DATA``.

    Raises:
        UserError: neither is set, or the folder does not exist (the message says how to fix it).
    """
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(DATA_ENV, "")
        if not env:
            raise UserError(f"no benchmark data folder: {_DATA_HINT}")
        path, source = Path(env), f"{DATA_ENV}={env}"
    else:
        path, source = Path(data_dir), f"data_dir={str(data_dir)!r}"
    path = path.expanduser()
    if not path.is_dir():
        raise UserError(f"the benchmark data folder {path} ({source}) does not exist; {_DATA_HINT}")
    return path.resolve()


def yahpo_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The YAHPO data path: ``<data folder>/yahpo`` (``data_dir`` may also name it directly)."""
    root = resolve_data_dir(data_dir)
    if (root / "yahpo").is_dir():
        return root / "yahpo"
    if (root / "VERSION").is_file() and any((p / "model.onnx").is_file() for p in root.iterdir() if p.is_dir()):
        return root  # the yahpo folder itself
    raise UserError(f"the benchmark data folder {root} has no yahpo/ subfolder; {_DATA_HINT}")


def yahpo_scenarios(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The scenarios of :data:`SCENARIOS` whose three files are in the YAHPO data folder, in the
    table's order (an empty list when there is no data folder)."""
    try:
        path = yahpo_data_dir(data_dir)
    except UserError:
        return []
    return [s for s in SCENARIOS if all((path / s / f).is_file() for f in _FILES)]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} cannot be read as JSON ({e}); the YAHPO data folder is damaged") from None


def yahpo_instances(scenario: str, data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The instances of ``scenario``, read from its ``config_space.json`` (the choices of its
    instance parameter). Needs the data, not onnxruntime.

    Raises:
        UserError: unknown scenario, or its data missing.
    """
    facts = _facts(scenario)
    folder = _scenario_folder(scenario, yahpo_data_dir(data_dir))
    spec = _read_json(folder / "config_space.json")
    for hp in spec.get("hyperparameters", []):
        if hp.get("name") == facts.instance_param:
            return [str(v) for v in hp.get("choices", [hp.get("value")])]
    raise UserError(f"YAHPO scenario {scenario!r}: {folder / 'config_space.json'} has no instance parameter "
                    f"{facts.instance_param!r}; use the YAHPO Gym v1.0.2 data")


def yahpo_fidelity_levels(scenario: str, data_dir: str | os.PathLike[str] | None = None) -> tuple[int, int]:
    """``(lowest, highest)`` fidelity level of ``scenario`` as its blackboxes offer them (epochs,
    or trainsize levels 1..20), read from its ``config_space.json``."""
    facts = _facts(scenario)
    folder = _scenario_folder(scenario, yahpo_data_dir(data_dir))
    where = f"YAHPO scenario {scenario!r}"
    space = space_from_configspace_json(_read_json(folder / "config_space.json"), where)
    levels, _ = _fidelity_levels(space[facts.fidelity], facts.fidelity, where)
    return int(levels[0]), int(levels[-1])


def load_yahpo_blackboxes(scenario: str, instances: Iterable[str | int] | None = None,
                          data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> dict[str, YahpoBlackbox]:
    """Instance -> :class:`YahpoBlackbox` for several instances of ``scenario`` (default: all of
    them); ``kwargs`` go to :class:`YahpoBlackbox` (e.g. ``threads``)."""
    names = yahpo_instances(scenario, data_dir) if instances is None else [str(i) for i in instances]
    return {name: YahpoBlackbox(scenario, name, data_dir, **kwargs) for name in names}


def _facts(scenario: str) -> ScenarioFacts:
    facts = SCENARIOS.get(scenario)
    if facts is None:
        raise UserError(f"unknown or unsupported YAHPO scenario {scenario!r}; supported: {', '.join(SCENARIOS)}")
    return facts


def _scenario_folder(scenario: str, data_path: Path) -> Path:
    folder = data_path / scenario
    missing = [f for f in _FILES if not (folder / f).is_file()]
    if missing:
        present = sorted(p.name for p in data_path.iterdir() if (p / "model.onnx").is_file())
        raise UserError(f"YAHPO scenario {scenario!r}: {', '.join(missing)} missing in {folder}; the data folder "
                        f"{data_path} has the scenarios: {', '.join(present) or 'none'}")
    return folder


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime  # deferred: onnxruntime (optional, heavy), only for YAHPO
    except ImportError as e:
        raise UserError(f"YAHPO Gym benchmarks need the package onnxruntime ({e}); {_INSTALL_HINT}") from None
    return onnxruntime


def _check_facts(facts: ScenarioFacts, full_space: Mapping[str, Any], encoding: Mapping[str, Any],
                 data_path: Path, scenario: str, where: str) -> None:
    """The table's facts against the data files (a UserError naming the mismatch)."""
    hint = "; the data does not match YAHPO Gym v1 (use the v1.0.2 data)"
    inputs = set(facts.cont_names) | set(facts.cat_names)
    if len(inputs) != len(facts.cont_names) + len(facts.cat_names):
        raise UserError(f"{where}: an input is named twice in the scenario table")  # pragma: no cover - table bug
    space_names = set(full_space) - set(facts.drop)
    if inputs != space_names:
        raise UserError(f"{where}: the surrogate's inputs and config_space.json differ: only in config_space.json "
                        f"{sorted(space_names - inputs)}, only in the inputs {sorted(inputs - space_names)}{hint}")
    unencoded = [n for n in facts.cat_names if n not in encoding]
    if unencoded:
        raise UserError(f"{where}: encoding.json has no codes for {unencoded}{hint}")
    for name in (facts.fidelity, *facts.pinned):
        if not isinstance(full_space.get(name), (Integer, Float)):
            raise UserError(f"{where}: the fidelity parameter {name!r} is not numeric in config_space.json{hint}")
    stats = data_path / _STATISTICS
    if stats.is_file():
        try:
            with stats.open(newline="", encoding="utf-8") as f:
                names = {row["metric"] for row in csv.DictReader(f) if row.get("scenario") == scenario}
        except (OSError, KeyError, csv.Error) as e:
            raise UserError(f"{stats} cannot be read ({e}); the YAHPO data folder is damaged") from None
        if names and names != set(facts.targets):
            raise UserError(f"{where}: the targets {sorted(names)} of {stats} differ from "
                            f"{sorted(facts.targets)}{hint}")


def _fidelity_levels(domain: Any, name: str, where: str) -> tuple[np.ndarray, float]:
    """``(levels, scale)``: the integer fidelity values and the factor turning a level into the
    model's input (1 for an integer fidelity; ``lower`` for a fractional one, whose range must be
    whole multiples of it)."""
    if isinstance(domain, Integer):
        return np.arange(domain.low, domain.high + 1, dtype=float), 1.0
    low, high = float(domain.low), float(domain.high)
    n = round(high / low)
    if low <= 0 or n < 1 or abs(n * low - high) > 1e-9 * high:
        raise UserError(f"{where}: the fractional fidelity {name} {low:g}..{high:g} is not a whole number of steps "
                        f"of {low:g}")
    return np.arange(1, n + 1, dtype=float), low


class _Always(dict):  # type: ignore[type-arg]
    """A code table answering every value with one code (a column the blackbox pins)."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def __missing__(self, key: Any) -> int:
        return self.code


class YahpoBlackbox(Blackbox):
    """One YAHPO Gym scenario + instance, e.g. ``YahpoBlackbox("lcbench", "3945")``.

    Args:
        scenario: a scenario of :data:`SCENARIOS` (see :func:`yahpo_scenarios` for those present).
        instance: the instance (an OpenML task id for lcbench/rbv2/iaml, ``CIFAR10`` for nb301;
            see :func:`yahpo_instances`; an int is accepted).
        data_dir: the benchmark data folder holding ``yahpo/`` (default: ``$TUNEBENCH_DATA``).
        threads: onnxruntime intra-op threads (default 1: the surrogate is evaluated a few rows at
            a time, where one thread uses half the CPU time of two; parallel simulations each
            take a core). ``None``: onnxruntime's choice (all cores).

    Attributes (besides those of :class:`Blackbox`): ``scenario``, ``instance``, ``facts`` (its
    :class:`ScenarioFacts`), ``modes`` (objective -> ``"min"``/``"max"``), ``citation``,
    ``data_path``, ``fidelity_scale`` (model input = level x scale), ``pinned`` (parameter ->
    the value it is pinned at), ``batch_size`` (the model's fixed batch size, None if free).

    The config space holds the scenario's hyperparameters, conditions included, without the
    fidelity parameters and the instance. ``objectives`` are YAHPO's targets (plus
    ``elapsed_time`` for a trainsize scenario); ``elapsed_time_attr`` is cumulative (see the
    module docs). The surrogate is deterministic: one seed.

    Raises:
        UserError: unknown scenario or instance (listing the valid ones), data folder or package
            missing, data not matching the scenario's facts (naming the fix).
    """

    n_seeds = 1
    cost_per_fidelity = True  # one surrogate input row per fidelity

    def __init__(self, scenario: str = "lcbench", instance: str | int | None = None,
                 data_dir: str | os.PathLike[str] | None = None, *, threads: int | None = 1) -> None:
        facts = _facts(scenario)
        where = f"YAHPO scenario {scenario!r}"
        data_path = yahpo_data_dir(data_dir)
        folder = _scenario_folder(scenario, data_path)
        ort = _import_onnxruntime()
        full_space = space_from_configspace_json(_read_json(folder / "config_space.json"), where)
        encoding: dict[str, dict[str, int]] = _read_json(folder / "encoding.json")
        _check_facts(facts, full_space, encoding, data_path, scenario, where)

        # -- instance
        idomain = full_space[facts.instance_param]
        valid = [str(v) for v in getattr(idomain, "categories", [idomain])]
        if instance is None:
            if len(valid) != 1:
                raise UserError(f"{where} needs an instance; valid instances: {', '.join(valid)}")
            instance = valid[0]
        if str(instance) not in valid:
            raise UserError(f"{where} has no instance {str(instance)!r}; valid instances: {', '.join(valid)}")
        instance = str(instance)

        # -- fidelities
        levels, scale = _fidelity_levels(full_space[facts.fidelity], facts.fidelity, where)
        self.pinned = {name: full_space[name].high for name in facts.pinned}

        removed = {facts.instance_param, facts.fidelity, *facts.pinned}
        self.scenario = scenario
        self.instance = instance
        self.facts = facts
        self.name = f"{scenario}-{instance}"
        self.config_space = validate_space({k: v for k, v in full_space.items() if k not in removed})
        self.fidelity_name = facts.fidelity
        self.fidelity_values = levels
        self.fidelity_scale = scale
        self._cumulative = scale != 1.0 or isinstance(full_space[facts.fidelity], Float)
        self.objectives = tuple(facts.targets) + ((ELAPSED_TIME,) if self._cumulative else ())
        minimize = (*facts.minimize, *((True,) if self._cumulative else ()))
        self.modes = {n: "min" if m else "max" for n, m in zip(self.objectives, minimize, strict=True)}
        self.elapsed_time_attr = ELAPSED_TIME if self._cumulative else facts.runtime
        self._runtime_index = facts.targets.index(facts.runtime)
        self.citation = "\n".join(facts.citation)
        self.data_path = data_path

        # -- how configs become the surrogate's inputs (precomputed per column)
        constants: dict[str, Any] = {facts.instance_param: instance, **self.pinned}
        constants.update((k, v) for k, v in self.config_space.items() if not isinstance(v, Domain))
        self._cont = [(j, name, constants.get(name)) for j, name in enumerate(facts.cont_names)]
        self._fid_col = facts.cont_names.index(facts.fidelity) if facts.fidelity in facts.cont_names else None
        self._cat: list[tuple[int, str, dict[Any, int], int | None, int | None]] = []
        for j, name in enumerate(facts.cat_names):
            table = encoding[name]
            domain = full_space[name]
            codes = {v: int(table[str(v)]) for v in getattr(domain, "categories", [domain]) if str(v) in table}
            fixed = None
            if name in constants:
                fixed = table.get(str(constants[name]))
                if fixed is None:
                    raise UserError(f"{where}: encoding.json has no code for {name}={constants[name]!r}")
            na = table.get(NA)
            self._cat.append((j, name, codes, None if na is None else int(na), None if fixed is None else int(fixed)))
        self._cont_spec = [(name, 0.0 if j == self._fid_col else fixed) for j, name, fixed in self._cont]
        # a pinned/instance column as a one-value code table: every config gets its code
        self._cat_spec = [(name, codes, na) if fixed is None else (name, _Always(fixed), fixed)
                          for _, name, codes, na, fixed in self._cat]
        self._conditional = [(n, d.condition) for n in condition_order(self.config_space)
                             if isinstance(d := self.config_space[n], Domain) and d.condition is not None]

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(folder / "model.onnx"), sess_options=options,
                                             providers=["CPUExecutionProvider"])
        inputs = self._session.get_inputs()
        names = [i.name for i in inputs]
        # YAHPO feeds (x_cat, x_cont) to the first and second input
        pair: tuple[str, str] = ("x_cat", "x_cont") if {"x_cat", "x_cont"} <= set(names) else (names[0], names[1])
        self._input_cat, self._input_cont = pair
        shapes = {i.name: list(i.shape) for i in inputs}
        output = self._session.get_outputs()[0]
        self._output = output.name
        widths = {self._input_cat: len(facts.cat_names), self._input_cont: len(facts.cont_names)}
        for name, width in [*widths.items(), (self._output, len(facts.targets))]:
            shape = shapes.get(name, list(output.shape))
            if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != width:
                raise UserError(f"{where}: the model's {name} has {shape[1]} columns, the scenario {width}; the data "
                                "does not match YAHPO Gym v1 (use the v1.0.2 data)")
        batch = shapes[self._input_cont][0]
        self.batch_size: int | None = batch if isinstance(batch, int) and batch > 0 else None

    # ---------------------------------------------------------------------------------------

    def _active(self, config: Config) -> Config:
        """``config`` without inactive values (the fast path: a config that holds none)."""
        for name, condition in self._conditional:
            if name in config and not condition.holds(config):
                return active_config(self.config_space, config)
        return config

    def _inputs(self, configs: Sequence[Config], fid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x_cat, x_cont)`` for every (config, fidelity) row, config-major; ``fid`` are
        fidelity levels."""
        n, m = len(configs), len(fid)
        active = [self._active(c) for c in configs] if self._conditional else list(configs)
        # one Python list per config, converted once: a few microseconds for a config of 40 values
        # (a numpy assignment per column costs more than the whole row)
        cont_spec = self._cont_spec
        cont = np.array([[c.get(name, 0.0) if fixed is None else fixed for name, fixed in cont_spec] for c in active],
                        dtype=np.float32).reshape(n, len(cont_spec))
        try:  # an inactive parameter is '#na#' for YAHPO (a TypeError where it has no code)
            cat = np.array([[codes[c[name]] if name in c else na for name, codes, na in self._cat_spec]
                            for c in active], dtype=np.int32).reshape(n, len(self._cat_spec))
        except (KeyError, TypeError):
            for c in active:
                for name, codes, na in self._cat_spec:
                    if not isinstance(codes, _Always) and ((c[name] not in codes) if name in c else na is None):
                        what = repr(c[name]) if name in c else "an inactive value"
                        raise UserError(f"{self.name}: {name}={what} has no code in the surrogate's "
                                        "encoding.json") from None
            raise
        x_cont = np.repeat(cont, m, axis=0)
        if self._fid_col is not None:
            x_cont[:, self._fid_col] = np.tile(np.asarray(fid, dtype=np.float32) * np.float32(self.fidelity_scale), n)
        return np.repeat(cat, m, axis=0), x_cont

    def _predict(self, x_cat: np.ndarray, x_cont: np.ndarray) -> np.ndarray:
        """The surrogate's outputs for the input rows: runs of at most ``_CHUNK_ROWS`` rows for a
        free batch dimension, of exactly ``batch_size`` rows (the last one padded) for a fixed one."""
        step = self.batch_size or _CHUNK_ROWS
        total = len(x_cont)
        if self.batch_size is not None and total % step:
            pad = step - total % step
            x_cat = np.concatenate([x_cat, np.repeat(x_cat[-1:], pad, axis=0)])
            x_cont = np.concatenate([x_cont, np.repeat(x_cont[-1:], pad, axis=0)])
        run = self._session.run
        feeds = (self._output,), self._input_cat, self._input_cont
        out = [run(feeds[0], {feeds[1]: x_cat[i:i + step], feeds[2]: x_cont[i:i + step]})[0]
               for i in range(0, len(x_cont), step)]
        values = out[0] if len(out) == 1 else np.concatenate(out, axis=0)
        return values[:total]

    def level_values(self, configs: Sequence[Config], objective: str, fidelity: float | None = None) -> np.ndarray:
        """``objective`` of each of ``configs`` at one ``fidelity`` (None: the highest), shape
        ``(n_configs,)``: what :meth:`evaluate` returns there, from that level's surrogate rows
        alone (``evaluate`` runs every level up to the one asked, for the cumulative time: 52 times
        the rows at lcbench's last epoch). For estimates over large samples of configurations.
        Configs are not checked (take them from the space's sampling).

        Raises:
            UserError: an unknown objective, a runtime objective (cumulative over the levels: use
                :meth:`evaluate`), or a fidelity that is not a level.
        """
        index = self.objective_index(objective)
        if index == self._runtime_index or index >= len(self.facts.targets):
            raise UserError(f"{self.name}: {objective} is cumulative over the fidelity levels; use evaluate()")
        at = self.fidelity_values[-1] if fidelity is None else self.fidelity_values[self.fidelity_index([fidelity])[0]]
        if len(configs) == 0:
            return np.empty(0)
        x_cat, x_cont = self._inputs(configs, np.asarray([at]))
        return self._predict(x_cat, x_cont)[:, index].astype(np.float64)

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        fidelity_index = np.asarray(fidelity_index, dtype=np.intp).reshape(-1)
        n, n_obj = len(configs), len(self.objectives)
        if n == 0 or len(fidelity_index) == 0:
            return np.empty((n, len(fidelity_index), n_obj))
        # every fidelity up to the largest one asked for: the elapsed time is cumulative over them
        m = int(fidelity_index.max()) + 1
        x_cat, x_cont = self._inputs(configs, self.fidelity_values[:m])
        raw = self._predict(x_cat, x_cont).astype(np.float64).reshape(n, m, len(self.facts.targets))
        t = raw[:, :, self._runtime_index]
        if self._cumulative:
            elapsed = np.cumsum(np.maximum(t, MIN_LEVEL_TIME), axis=1)
            values = np.concatenate([raw, elapsed[:, :, None]], axis=2)
        else:
            values = raw
            values[:, :, self._runtime_index] = np.maximum.accumulate(np.maximum(t, 0.0), axis=1)
        return values[:, fidelity_index, :]
