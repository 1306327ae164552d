"""Small YAHPO Gym scenarios generated in YAHPO's data layout, for tests and benchmark scripts.

Only lcbench's real YAHPO data is at hand here; these scenarios let the other scenarios' code
paths run: :func:`write_scenario` writes ``<root>/yahpo/<scenario>/`` with a
``config_space.json`` (ConfigSpace JSON, conditions included), an ``encoding.json`` (``#na#``
coded 0, the categories 1..k) and a ``model.onnx``: a random two-layer network
``softplus(tanh(x W1 + b1) W2 + b2)`` over the scenario's inputs in YAHPO's order
(:data:`tunebench.blackboxes.yahpo.SCENARIOS`: categorical codes and continuous values), one
output per target. ``batch_size`` fixes the model's batch dimension (nb301's real model takes
one row at a time); None leaves it free. The values mean nothing; the layout, the spaces'
structure and the model's interface are YAHPO's.

Building the ONNX model needs the ``onnx`` package (in the ``dev`` extra only); so does this
module, imported by tests and benchmark scripts alone.

* :func:`rbv2_svm_space` — rbv2_svm's space: ``kernel`` with ``degree``/``gamma`` conditional on
  it, ``trainsize`` 0.05..1 and ``repl`` 1..10.
* :func:`rbv2_super_space` — 38 hyperparameters (41 with ``task_id``, ``trainsize``, ``repl``),
  with rbv2_super's conditions: each learner's parameters on ``learner_id`` (``EQ``), the SVM
  kernel's and XGBoost booster's parameters on a conjunction (``AND``, ``IN``).
* :func:`nb301_space` — nb301's 34 cell choices, ``IN`` conditions on the input nodes, ``epoch``
  1..98 and the single-instance ``dataset``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.blackboxes.yahpo import SCENARIOS

__all__ = ["write_scenario", "rbv2_svm_space", "rbv2_super_space", "nb301_space", "TASKS"]

#: instances of the generated rbv2/iaml scenarios
TASKS = ("1040", "1049", "11")


def _float(name: str, lower: float, upper: float, log: bool = False) -> dict[str, Any]:
    return {"name": name, "type": "uniform_float", "log": log, "lower": lower, "upper": upper,
            "default": lower if not log else (lower * upper) ** 0.5}


def _int(name: str, lower: int, upper: int, log: bool = False) -> dict[str, Any]:
    return {"name": name, "type": "uniform_int", "log": log, "lower": lower, "upper": upper, "default": lower}


def _cat(name: str, choices: Sequence[Any]) -> dict[str, Any]:
    return {"name": name, "type": "categorical", "choices": list(choices), "default": choices[0],
            "probabilities": None}


def _eq(child: str, parent: str, value: Any) -> dict[str, Any]:
    return {"child": child, "parent": parent, "type": "EQ", "value": value}


def _in(child: str, parent: str, values: Sequence[Any]) -> dict[str, Any]:
    return {"child": child, "parent": parent, "type": "IN", "values": list(values)}


def _and(child: str, *members: dict[str, Any]) -> dict[str, Any]:
    return {"child": child, "type": "AND", "conditions": list(members)}


def _document(hps: list[dict[str, Any]], conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"hyperparameters": hps, "conditions": conditions, "forbiddens": [], "python_module_version": "0.4.18",
            "json_format_version": 0.2}


_IMPUTE = ("impute.mean", "impute.median", "impute.hist")


def rbv2_svm_space(tasks: Sequence[str] = TASKS) -> dict[str, Any]:
    """rbv2_svm's ConfigSpace JSON (its real structure: 6 hyperparameters, 2 conditional)."""
    hps = [_float("cost", 4.54e-05, 22026.47, log=True), _cat("kernel", ["linear", "polynomial", "radial"]),
           _cat("num.impute.selected.cpo", _IMPUTE), _int("repl", 1, 10), _cat("task_id", list(tasks)),
           _float("tolerance", 4.54e-05, 2.0, log=True), _float("trainsize", 0.05, 1.0), _int("degree", 2, 5),
           _float("gamma", 4.54e-05, 22026.47, log=True)]
    return _document(hps, [_eq("degree", "kernel", "polynomial"), _eq("gamma", "kernel", "radial")])


def rbv2_super_space(tasks: Sequence[str] = TASKS) -> dict[str, Any]:
    """rbv2_super's ConfigSpace JSON: 38 hyperparameters (besides the instance and the two
    fidelity parameters) with its conditions (bounds simplified)."""
    facts = SCENARIOS["rbv2_super"]
    ints = {"svm.degree", "rpart.maxdepth", "rpart.minbucket", "rpart.minsplit", "ranger.num.trees",
            "ranger.min.node.size", "ranger.num.random.splits", "aknn.k", "aknn.M", "aknn.ef", "aknn.ef_construction",
            "xgboost.nrounds", "xgboost.max_depth"}
    choices = {"learner_id": ["aknn", "glmnet", "ranger", "rpart", "svm", "xgboost"],
               "svm.kernel": ["linear", "polynomial", "radial"], "ranger.respect.unordered.factors":
               ["ignore", "order", "partition"], "ranger.splitrule": ["gini", "extratrees"],
               "aknn.distance": ["l2", "cosine", "ip"], "xgboost.booster": ["gblinear", "gbtree", "dart"],
               "num.impute.selected.cpo": list(_IMPUTE)}
    hps: list[dict[str, Any]] = [_cat("task_id", list(tasks)), _float("trainsize", 0.05, 1.0), _int("repl", 1, 10)]
    for name in facts.cont_names:
        if name not in ("trainsize", "repl"):
            hps.append(_int(name, 1, 100) if name in ints else _float(name, 1e-3, 1.0, log=name.endswith("cost")))
    hps += [_cat(name, choices[name]) for name in facts.cat_names if name != "task_id"]
    conditions: list[dict[str, Any]] = []
    special = {"svm.degree": ("svm.kernel", "EQ", "polynomial"), "svm.gamma": ("svm.kernel", "EQ", "radial"),
               "ranger.num.random.splits": ("ranger.splitrule", "EQ", "extratrees"),
               "xgboost.rate_drop": ("xgboost.booster", "EQ", "dart"),
               "xgboost.skip_drop": ("xgboost.booster", "EQ", "dart")}
    tree = {"xgboost.colsample_bylevel", "xgboost.colsample_bytree", "xgboost.eta", "xgboost.gamma",
            "xgboost.max_depth", "xgboost.min_child_weight"}
    for hp in hps:
        name = hp["name"]
        learner = name.split(".", 1)[0]
        if learner not in choices["learner_id"]:
            continue
        on_learner = _eq(name, "learner_id", learner)
        if name in special:
            parent, _, value = special[name]
            conditions.append(_and(name, _eq(name, parent, value), on_learner))
        elif name in tree:
            conditions.append(_and(name, _in(name, "xgboost.booster", ["dart", "gbtree"]), on_learner))
        else:
            conditions.append(on_learner)
    return _document(hps, conditions)


def nb301_space() -> dict[str, Any]:
    """nb301's ConfigSpace JSON: 34 cell choices, the input nodes' ``IN`` conditions on the
    edges, ``epoch`` 1..98, the single-instance ``dataset``."""
    ops = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
           "dil_conv_5x5"]
    prefix = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
    hps: list[dict[str, Any]] = []
    conditions: list[dict[str, Any]] = []
    for kind in ("normal", "reduce"):
        edge = 2  # edges 0, 1 always; node k has edges from nodes 0..k-1
        for node in (3, 4, 5):
            pairs = [f"{a}_{b}" for a in range(node - 1) for b in range(a + 1, node - 1)] or ["0_1"]
            parent = f"{prefix}inputs_node_{kind}_{node}"
            hps.append(_cat(parent, pairs))
            for source in range(node - 1):
                child = f"{prefix}edge_{kind}_{edge}"
                conditions.append(_in(child, parent, [p for p in pairs if str(source) in p.split("_")]))
                edge += 1
        hps += [_cat(f"{prefix}edge_{kind}_{i}", ops) for i in range(14)]
    hps += [_int("epoch", 1, 98), _cat("dataset", ["CIFAR10"])]
    return _document(hps, conditions)


def write_scenario(root: str | Path, scenario: str, space: dict[str, Any], *, batch_size: int | None = None,
                   seed: int = 0, hidden: int = 16, statistics: bool = True) -> Path:
    """Write ``<root>/yahpo/<scenario>/`` (config_space.json, encoding.json, model.onnx) for the
    ConfigSpace JSON ``space`` of a scenario of :data:`SCENARIOS`; with ``statistics``, also
    the scenario's rows of ``global_statistics/instance_target_statistics.csv``. Returns
    ``root``, the benchmark data folder to give as ``data_dir``."""
    import onnx  # deferred: onnx (dev extra), only to build test models
    from onnx import TensorProto, helper, numpy_helper

    facts = SCENARIOS[scenario]
    folder = Path(root) / "yahpo" / scenario
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config_space.json").write_text(json.dumps(space, indent=2), encoding="utf-8")
    by_name = {hp["name"]: hp for hp in space["hyperparameters"]}
    encoding = {name: {"#na#": 0, **{str(c): i + 1 for i, c in enumerate(by_name[name]["choices"])}}
                for name in facts.cat_names}
    (folder / "encoding.json").write_text(json.dumps(encoding), encoding="utf-8")

    rng = np.random.default_rng(seed)
    n_cat, n_cont, n_out = len(facts.cat_names), len(facts.cont_names), len(facts.targets)
    w1 = (rng.normal(size=(n_cat + n_cont, hidden)) * 0.3).astype(np.float32)
    b1 = rng.normal(size=hidden).astype(np.float32)
    w2 = rng.normal(size=(hidden, n_out)).astype(np.float32)
    b2 = (rng.normal(size=n_out) + 1.0).astype(np.float32)
    batch: int | str = batch_size if batch_size is not None else "batch_size"
    nodes = [
        helper.make_node("Cast", ["x_cat"], ["cat_f"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["cat_f", "x_cont"], ["x"], axis=1),
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Tanh", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["o0"]),
        helper.make_node("Add", ["o0", "b2"], ["o1"]),
        helper.make_node("Softplus", ["o1"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, f"yahpo-{scenario}",
        [helper.make_tensor_value_info("x_cat", TensorProto.INT32, [batch, n_cat]),
         helper.make_tensor_value_info("x_cont", TensorProto.FLOAT, [batch, n_cont])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, n_out])],
        initializer=[numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tunebench-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))

    if statistics:
        path = Path(root) / "yahpo" / "global_statistics" / "instance_target_statistics.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.is_file()
        instances = by_name[facts.instance_param]["choices"]
        with path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["metric", "statistic", "value", "scenario", "instance"])
            for target in facts.targets:
                writer.writerow([target, "min", 0.0, scenario, instances[0]])
    return Path(root)
