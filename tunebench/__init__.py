"""tunebench: hyperparameter tuning of expensive models, and benchmarking of tuning methods.

``from tunebench import report`` is all a training script needs; it stays light (no numpy,
pandas, scipy or rich on that import path). Everything else is loaded on first use.
"""

from __future__ import annotations

from tunebench.reporting import (
    checkpoint_dir,
    load_checkpoint,
    report,
    save_checkpoint,
)
from tunebench.version import __version__

_LAZY = {
    "AskTell": "tunebench.ask_tell",
    "Tuner": "tunebench.tuner",
    "TuningResult": "tunebench.tuner",
    "StopCriteria": "tunebench.tuner",
    "load_experiment": "tunebench.store",
    "make_scheduler": "tunebench.schedulers",
    "space": "tunebench.space",
    "tune": "tunebench.tune_function",
}

__all__ = [
    "__version__", "report", "checkpoint_dir", "save_checkpoint", "load_checkpoint",
    "Tuner", "TuningResult", "AskTell", "StopCriteria", "load_experiment", "make_scheduler", "space", "tune",
]

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~3 ms per trial start)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from tunebench import space
    from tunebench.ask_tell import AskTell
    from tunebench.schedulers import make_scheduler
    from tunebench.store import load_experiment
    from tunebench.tune_function import tune
    from tunebench.tuner import StopCriteria, Tuner, TuningResult


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tunebench' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value
