"""YAHPO Gym surrogate benchmarks as blackboxes (L2).

`YAHPO Gym <https://github.com/slds-lmu/yahpo_gym>`_ models the learning curves of real training
runs with one ONNX neural-network surrogate per *scenario*; an *instance* of a scenario is one
dataset (for ``lcbench``: one of 34 OpenML task ids). :class:`YahpoBlackbox` wraps one scenario +
instance::

    bb = YahpoBlackbox("lcbench", "3945")           # data from $TUNEBENCH_DATA/yahpo
    curves = bb.evaluate(configs)                   # (n_configs, 52 epochs, 6 objectives)

**Data.** The folder named by ``data_dir`` or the environment variable ``TUNEBENCH_DATA`` must
hold a ``yahpo/`` subfolder laid out as YAHPO expects its data path (``yahpo/lcbench/model.onnx``,
``config_space.json``, ``encoding.json``: the YAHPO Gym v1.0.2 data). Nothing is ever downloaded.

**Packages.** Only ``onnxruntime`` is needed (``pip install 'tunebench[yahpo]'``). This module
reads YAHPO's data folder itself and does not import the ``yahpo-gym`` package: yahpo-gym 1.0.2
pins ``numpy<2`` and ``ConfigSpace<=0.6.1`` (whose compiled modules fail to import under numpy 2,
and which has no wheels for Python 3.12+), which would hold the whole environment back (pyarrow
26 needs numpy 2). Not importing it also means YAHPO's local configuration file
(``~/.config/yahpo_gym``, which its ``local_config.init_config``/``set_data_path`` write) is
never read or written, and its citation print never happens (the text is in
:attr:`YahpoBlackbox.citation`). The scenario metadata yahpo-gym keeps in Python (target names,
which are minimized, the order of the surrogate's inputs, the fidelity and instance parameters)
is in :data:`SCENARIOS` below, for the scenarios this module supports. The surrogate's inputs are
built as YAHPO's ``BenchmarkSet.objective_function`` builds them (continuous parameters as
float32 in the scenario's order, categorical ones through ``encoding.json``); the tests check the
outputs against values computed with yahpo-gym 1.0.2.

``onnxruntime`` itself writes a device id for its telemetry under
``$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime`` (default ``~/.cache/...``) when it is
imported; that is onnxruntime's behaviour and cannot be turned off from here (the tests point
``HOME`` and ``XDG_CACHE_HOME`` at a temporary folder).

**Evaluation** is batched: all (config x fidelity) rows of one :meth:`~YahpoBlackbox.evaluate`
call go through the ONNX session together (in runs of a few thousand rows).

**Elapsed time.** For ``lcbench`` the target ``time`` is the cumulative training time (seconds)
up to each epoch; the surrogate models it per (config, epoch) and its prediction is not always
monotone (about 2% of the epoch-to-epoch steps decrease). This blackbox clips it at 0 and makes
it monotone non-decreasing along the fidelity with ``np.maximum.accumulate`` (over the epochs
from the first one, whatever fidelities are asked for), so it can drive the simulator's clock.
The other targets are the surrogate's outputs as they are.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunebench.blackboxes.base import Blackbox
from tunebench.errors import UserError
from tunebench.space import Choice, Domain, Float, Integer, Ordinal, validate_space
from tunebench.types import Config

__all__ = [
    "YahpoBlackbox",
    "resolve_data_dir",
    "yahpo_data_dir",
    "lcbench_instances",
    "SCENARIOS",
    "LCBENCH_INSTANCES",
    "LCBENCH_OBJECTIVE_MODES",
]

#: The environment variable naming the benchmark data folder (which holds ``yahpo/``).
DATA_ENV = "TUNEBENCH_DATA"

_INSTALL_HINT = "pip install 'tunebench[yahpo]'"
_DATA_HINT = (f"set {DATA_ENV} to the folder holding yahpo/ (for example ../shared/data) "
              "or pass --data-dir")

#: Scenario -> what YAHPO Gym 1.0.2 keeps about it in Python (``yahpo_gym/benchmarks/*.py``):
#: targets (the surrogate's outputs, in order) and whether each is minimized, the continuous and
#: categorical inputs in the surrogate's order, the instance and fidelity parameters, the runtime
#: target. Only scenarios with a flat space and one integer fidelity fit a tunebench blackbox;
#: of YAHPO's v1 scenarios that is lcbench (nb301 is conditional, rbv2_* and iaml_* have a
#: fractional ``trainsize`` fidelity).
SCENARIOS: dict[str, dict[str, Any]] = {
    "lcbench": {
        "targets": ("time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy",
                    "test_cross_entropy", "test_balanced_accuracy"),
        "minimize": (True, False, True, False, True, False),
        "cont_names": ("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers",
                       "max_units", "max_dropout"),
        "cat_names": ("OpenML_task_id",),
        "instance_param": "OpenML_task_id",
        "fidelity": "epoch",
        "runtime": "time",
        "citation": (
            "Zimmer, L., Lindauer, M., & Hutter, F. (2021). Auto-Pytorch: Multi-Fidelity Metalearning for "
            "Efficient and Robust AutoDL. IEEE Transactions on Pattern Analysis and Machine Intelligence, "
            "43(9), 3079-3090.",
            "Zimmer, L. (2020). data_2k_lw.zip. figshare. Dataset. "
            "https://doi.org/10.6084/m9.figshare.11662422.v1, Apache License, Version 2.0.",
            "Pfisterer, F., Schneider, L., Moosbauer, J., Binder, M., & Bischl, B. (2022). YAHPO Gym - An "
            "Efficient Multi-Objective Multi-Fidelity Benchmark for Hyperparameter Optimization. AutoML "
            "Conference 2022.",
        ),
    },
}

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
    for name, minimize in zip(SCENARIOS["lcbench"]["targets"], SCENARIOS["lcbench"]["minimize"], strict=True)
}

# Rows per ONNX run: bounds memory, and a few thousand rows a run was no slower than one big run.
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


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime  # deferred: onnxruntime (optional, heavy), only for YAHPO
    except ImportError as e:
        raise UserError(f"YAHPO Gym benchmarks need the package onnxruntime ({e}); {_INSTALL_HINT}") from None
    return onnxruntime


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} cannot be read as JSON ({e}); the YAHPO data folder is damaged") from None


def _clean_float(x: Any) -> float:
    """``x`` without the float noise of YAHPO's JSON bounds (0.00010000000000000009 -> 1e-4)."""
    value = float(x)
    if value == 0.0 or not math.isfinite(value):
        return value
    rounded = float(f"{value:.10g}")
    return rounded if abs(rounded - value) <= 1e-12 * abs(value) else value


def _convert_space(spec: dict[str, Any], where: str) -> dict[str, Any]:
    """Name -> tunebench domain (or constant) from a ConfigSpace JSON document (the format of
    ``config_space.json``: a list of hyperparameters with ``name``, ``type`` and bounds)."""
    if spec.get("conditions"):
        raise UserError(f"{where}: conditional hyperparameters are not supported by tunebench's flat config "
                        "spaces")
    if spec.get("forbiddens"):
        raise UserError(f"{where}: forbidden clauses are not supported by tunebench's config spaces")
    space: dict[str, Any] = {}
    for hp in spec.get("hyperparameters", []):
        name, kind = hp["name"], hp["type"]
        if hp.get("q") is not None:
            raise UserError(f"{where}: {name} is quantized (q={hp['q']}), which is not supported")
        if kind == "constant":
            space[name] = hp["value"]
        elif kind == "uniform_float":
            space[name] = Float(_clean_float(hp["lower"]), _clean_float(hp["upper"]), log=bool(hp.get("log")))
        elif kind == "uniform_int":
            space[name] = Integer(int(hp["lower"]), int(hp["upper"]), log=bool(hp.get("log")))
        elif kind == "categorical":
            space[name] = Choice(list(hp["choices"]))
        elif kind == "ordinal":
            space[name] = Ordinal(list(hp["sequence"]))
        else:
            raise UserError(f"{where}: {name} has the type {kind!r}, which tunebench cannot convert "
                            "(supported: uniform_float, uniform_int, categorical, ordinal, constant)")
    return space


class YahpoBlackbox(Blackbox):
    """One YAHPO Gym scenario + instance, e.g. ``YahpoBlackbox("lcbench", "3945")``.

    Args:
        scenario: a scenario of :data:`SCENARIOS` (``"lcbench"``).
        instance: the instance (for ``lcbench``: an OpenML task id, see :func:`lcbench_instances`;
            an int is accepted).
        data_dir: the benchmark data folder holding ``yahpo/`` (default: ``$TUNEBENCH_DATA``).
        threads: onnxruntime intra-op threads (default 1: the surrogate is evaluated a few rows at
            a time, where one thread uses half the CPU time of two; parallel simulations each
            take a core). ``None``: onnxruntime's choice (all cores).

    Attributes (besides those of :class:`Blackbox`): ``scenario``, ``instance``, ``modes``
    (objective -> ``"min"``/``"max"``), ``citation`` (what to cite), ``data_path``.

    The config space holds the scenario's hyperparameters without the fidelity and the instance.
    ``fidelity_values`` are all integers of the fidelity's range (``epoch`` 1..52 for lcbench).
    ``objectives`` are YAHPO's targets; ``elapsed_time_attr`` is the runtime target, monotone
    non-decreasing along the fidelity (see the module docs). The surrogate is deterministic: one
    seed.

    Raises:
        UserError: unknown scenario or instance (listing the valid ones), data folder or package
            missing (naming the fix).
    """

    n_seeds = 1
    cost_per_fidelity = True  # one surrogate input row per fidelity

    def __init__(self, scenario: str = "lcbench", instance: str | int | None = None,
                 data_dir: str | os.PathLike[str] | None = None, *, threads: int | None = 1) -> None:
        if scenario not in SCENARIOS:
            raise UserError(f"unknown or unsupported YAHPO scenario {scenario!r}; supported: "
                            f"{', '.join(SCENARIOS)} (tunebench blackboxes need a flat space and one integer "
                            "fidelity)")
        meta = SCENARIOS[scenario]
        where = f"YAHPO scenario {scenario!r}"
        data_path = yahpo_data_dir(data_dir)
        folder = data_path / scenario
        missing = [f for f in _FILES if not (folder / f).is_file()]
        if missing:
            present = sorted(p.name for p in data_path.iterdir() if (p / "model.onnx").is_file())
            raise UserError(f"{where}: {', '.join(missing)} missing in {folder}; the data folder {data_path} "
                            f"has the scenarios: {', '.join(present) or 'none'}")
        ort = _import_onnxruntime()

        full_space = _convert_space(_read_json(folder / "config_space.json"), where)
        encoding: dict[str, dict[str, int]] = _read_json(folder / "encoding.json")

        # -- instance
        instance_param = meta["instance_param"]
        constants: dict[str, Any] = {}
        if instance_param is not None:
            valid = [str(v) for v in full_space[instance_param].categories]
            if instance is None:
                raise UserError(f"{where} needs an instance; valid instances: {', '.join(valid)}")
            if str(instance) not in valid:
                raise UserError(f"{where} has no instance {str(instance)!r}; valid instances: {', '.join(valid)}")
            instance = str(instance)
            constants[instance_param] = instance
        elif instance is not None:
            raise UserError(f"{where} has no instances; leave instance out")

        # -- fidelity
        fidelity = meta["fidelity"]
        fdomain = full_space[fidelity]
        if not isinstance(fdomain, Integer):  # pragma: no cover - guarded by SCENARIOS
            raise UserError(f"{where}: its fidelity {fidelity} is not an integer parameter")

        self.scenario = scenario
        self.instance = instance
        self.name = scenario if instance is None else f"{scenario}-{instance}"
        self.config_space = validate_space({k: v for k, v in full_space.items()
                                            if k != fidelity and k != instance_param})
        self.fidelity_name = fidelity
        self.fidelity_values = np.arange(fdomain.low, fdomain.high + 1, dtype=float)
        self.objectives = tuple(meta["targets"])
        self.modes = {n: "min" if m else "max" for n, m in zip(self.objectives, meta["minimize"], strict=True)}
        self.elapsed_time_attr = meta["runtime"]
        self._time_index = self.objectives.index(self.elapsed_time_attr) if self.elapsed_time_attr else None
        self.citation = "\n".join(meta["citation"])
        self.data_path = data_path

        # -- how configs become the surrogate's inputs
        self._cont_names = list(meta["cont_names"])
        self._cat_names = list(meta["cat_names"])
        self._encoding = encoding
        self._constants = constants
        self._defaults = {k: v for k, v in self.config_space.items() if not isinstance(v, Domain)}
        unknown = [n for n in self._cont_names + self._cat_names if n not in full_space]
        unencoded = [n for n in self._cat_names if n not in encoding]
        if unknown or unencoded:
            raise UserError(f"{where}: the data in {folder} does not match this tunebench version "
                            f"(parameters {unknown + unencoded} missing); use the YAHPO Gym v1.0.2 data")

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(folder / "model.onnx"), sess_options=options,
                                             providers=["CPUExecutionProvider"])
        inputs = [i.name for i in self._session.get_inputs()]
        # YAHPO feeds (x_cat, x_cont) to the first and second input
        self._input_cat: str
        self._input_cont: str
        self._input_cat, self._input_cont = ("x_cat", "x_cont") if {"x_cat", "x_cont"} <= set(inputs) \
            else (inputs[0], inputs[1])
        self._output = self._session.get_outputs()[0].name

    # ---------------------------------------------------------------------------------------

    def _column(self, name: str, configs: Sequence[Config]) -> list[Any]:
        """The values of input ``name``, one per config."""
        if name in self._constants:
            return [self._constants[name]] * len(configs)
        default = self._defaults.get(name)
        return [c.get(name, default) for c in configs]

    def _inputs(self, configs: Sequence[Config], fid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x_cat, x_cont)`` for every (config, fidelity) row, config-major."""
        n, m = len(configs), len(fid)
        x_cont = np.empty((n, m, len(self._cont_names)), dtype=np.float32)
        for j, name in enumerate(self._cont_names):
            if name == self.fidelity_name:
                x_cont[:, :, j] = fid[None, :]
            else:  # a missing value (an inactive parameter) is 0 for YAHPO
                col = [0.0 if v is None else v for v in self._column(name, configs)]
                x_cont[:, :, j] = np.asarray(col, dtype=np.float32)[:, None]
        x_cat = np.empty((n, m, len(self._cat_names)), dtype=np.int32)
        for j, name in enumerate(self._cat_names):
            table = self._encoding[name]
            codes = []
            for v in self._column(name, configs):
                code = table.get("#na#" if v is None else str(v))
                if code is None:
                    raise UserError(f"{self.name}: {name}={v!r} is not a value the surrogate knows")
                codes.append(code)
            x_cat[:, :, j] = np.asarray(codes, dtype=np.int32)[:, None]
        return x_cat.reshape(n * m, -1), x_cont.reshape(n * m, -1)

    def _predict(self, x_cat: np.ndarray, x_cont: np.ndarray) -> np.ndarray:
        """The surrogate's outputs for the input rows, in runs of at most ``_CHUNK_ROWS`` rows."""
        out = [self._session.run([self._output], {self._input_cat: x_cat[i:i + _CHUNK_ROWS],
                                                  self._input_cont: x_cont[i:i + _CHUNK_ROWS]})[0]
               for i in range(0, len(x_cont), _CHUNK_ROWS)]
        return out[0] if len(out) == 1 else np.concatenate(out, axis=0)

    def _evaluate(self, configs: Sequence[Config], fidelity_index: np.ndarray, seed: int) -> np.ndarray:
        fidelity_index = np.asarray(fidelity_index, dtype=np.intp).reshape(-1)
        n, n_obj = len(configs), len(self.objectives)
        if n == 0 or len(fidelity_index) == 0:
            return np.empty((n, len(fidelity_index), n_obj))
        # every fidelity up to the largest one asked for: the elapsed time is made monotone over them
        m = int(fidelity_index.max()) + 1
        x_cat, x_cont = self._inputs(configs, self.fidelity_values[:m])
        values = self._predict(x_cat, x_cont).astype(np.float64).reshape(n, m, n_obj)
        if self._time_index is not None:
            t = values[:, :, self._time_index]
            values[:, :, self._time_index] = np.maximum.accumulate(np.maximum(t, 0.0), axis=1)
        return values[:, fidelity_index, :]
