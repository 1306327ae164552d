"""Log an experiment as TensorBoard event files (layer L4; needs the ``tensorboard`` extra:
``pip install 'tunebench[tensorboard]'``).

::

    from tunebench import tune
    from tunebench.integrations.tensorboard import TensorBoardCallback

    tune(..., experiment_dir="runs/exp1", callbacks=[TensorBoardCallback()])
    # or: tunebench run ... --tensorboard [DIR];  then: tensorboard --logdir runs/exp1/tensorboard

Each trial is a run, the subfolder ``trial_<id>`` of the log folder (default
``<experiment_dir>/tensorboard``): each decided report as scalars at the step of its resource
(see :mod:`tunebench.integrations.run_logging`), and the HParams plugin's session records (the
configuration when the trial starts; its status each time it stops running: ``STATUS_RUNNING`` for
a paused trial, ``STATUS_FAILURE`` for a failed one, ``STATUS_SUCCESS`` otherwise). The log folder
itself holds the HParams experiment (the parameters of the config space, the objectives as
metrics): TensorBoard's HPARAMS tab then compares the trials.

The writer is the ``tensorboard`` package's own ``EventFileWriter`` with its protocol buffers:
the package is needed anyway to view the logs, ``torch.utils.tensorboard.SummaryWriter`` and
``tensorboardX`` are wrappers of the same file format (torch costs a second or more to import,
tensorboardX is one more package), and no TensorFlow is needed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from tunebench.integrations.run_logging import TrialRunLogger
from tunebench.tuner import Tuner
from tunebench.types import Status, Trial

logger = logging.getLogger(__name__)


class TensorBoardCallback(TrialRunLogger):
    """Writes one TensorBoard run (a subfolder) per trial, with an HParams summary.

    Args:
        logdir: the log folder; default ``<experiment_dir>/tensorboard`` (a resumed experiment
            logs where its first session did when this is not given).
    """

    state_filename = "tensorboard_runs.jsonl"
    backend_name = "TensorBoard"

    def __init__(self, logdir: str | Path | None = None) -> None:
        super().__init__()
        self.logdir = None if logdir is None else Path(logdir)
        self._root: Path | None = None
        self._writers: dict[int, EventFileWriter] = {}

    def _backend_open(self, tuner: Tuner, header: dict[str, Any] | None) -> dict[str, Any]:
        stored = (header or {}).get("logdir")
        root = self.logdir or (Path(stored) if stored else tuner.experiment_dir / "tensorboard")
        self._root = root.resolve()
        if header is not None and stored is not None and Path(stored).resolve() != self._root:
            self._runs.clear()  # a new log folder for a resumed experiment: new runs
        self._root.mkdir(parents=True, exist_ok=True)
        self._write(None, _hparams_summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(
            experiment=_experiment(tuner))))
        logger.info("logging trials to TensorBoard in %s", self._root)
        return {"logdir": str(self._root)}

    def _run_dir(self, run_id: str) -> Path:
        assert self._root is not None
        return self._root / run_id

    def _writer(self, trial_id: int | None) -> EventFileWriter:
        key = -1 if trial_id is None else trial_id
        writer = self._writers.get(key)
        if writer is None:
            folder = self._root if trial_id is None else self._run_dir(self._runs[trial_id])
            assert folder is not None
            writer = self._writers[key] = EventFileWriter(str(folder))
        return writer

    def _write(self, trial_id: int | None, summary: Summary, step: int = 0) -> None:
        self._writer(trial_id).add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def _backend_create_run(self, trial: Trial) -> str:
        run_id = f"trial_{trial.trial_id}"
        self._runs[trial.trial_id] = run_id  # the writer's folder
        hparams = {str(k): _value(v) for k, v in trial.config.items()}
        start = plugin_data_pb2.SessionStartInfo(hparams=hparams, group_name=run_id, start_time_secs=time.time())
        self._write(trial.trial_id, _hparams_summary(metadata.SESSION_START_INFO_TAG,
                                                     plugin_data_pb2.HParamsPluginData(session_start_info=start)))
        return run_id

    def _backend_count_logged(self, trial_id: int, run_id: str) -> int:
        assert self._tuner is not None
        acc = EventAccumulator(str(self._run_dir(run_id)), size_guidance={"scalars": 0})
        acc.Reload()
        tag = self._tuner.metric
        return len(acc.Scalars(tag)) if tag in acc.Tags()["scalars"] else 0

    def _backend_log(self, trial_id: int, run_id: str, step: int, metrics: dict[str, float]) -> None:
        self._write(trial_id, Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in metrics.items()]), step)
        # handed to the OS at once: a killed tuner loses no report the catch-up would log twice
        self._writer(trial_id).flush()

    def _backend_trial_status(self, trial_id: int, run_id: str, status: Status) -> None:
        code = (api_pb2.STATUS_FAILURE if status is Status.FAILED
                else api_pb2.STATUS_RUNNING if status is Status.PAUSED else api_pb2.STATUS_SUCCESS)
        end = plugin_data_pb2.SessionEndInfo(status=code, end_time_secs=time.time())
        self._write(trial_id, _hparams_summary(metadata.SESSION_END_INFO_TAG,
                                               plugin_data_pb2.HParamsPluginData(session_end_info=end)))
        writer = self._writers.pop(trial_id, None)  # closed while it does not run: open files stay few
        if writer is not None:
            writer.close()

    def _backend_close(self) -> None:
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()


def _value(v: Any) -> struct_pb2.Value:
    if isinstance(v, bool):
        return struct_pb2.Value(bool_value=v)
    if isinstance(v, (int, float)):
        return struct_pb2.Value(number_value=float(v))
    return struct_pb2.Value(string_value=str(v))


def _experiment(tuner: Tuner) -> api_pb2.Experiment:
    config_space = tuner.scheduler.config_space
    infos = [api_pb2.HParamInfo(name=str(name)) for name in config_space]
    objectives = getattr(tuner.scheduler, "objectives", None)  # several objectives, else None
    metrics = list(objectives.metrics) if objectives is not None else [tuner.metric]
    return api_pb2.Experiment(hparam_infos=infos, time_created_secs=time.time(),
                              metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics])


def _hparams_summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data),
                                        tensor=metadata.NULL_TENSOR)])
