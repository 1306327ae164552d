"""Log an experiment to MLflow (layer L4; needs the ``mlflow`` extra: ``pip install 'tunebench[mlflow]'``).

::

    from tunebench import tune
    from tunebench.integrations.mlflow import MLflowCallback

    tune(..., experiment_dir="runs/exp1", callbacks=[MLflowCallback()])
    # or: tunebench run ... --mlflow [URI]

The experiment is a parent run (named after the experiment folder) and each trial a nested run
(``mlflow.parentRunId``) named ``trial <id>``, with its configuration as parameters, each decided
report as metrics at the step of its resource (see :mod:`tunebench.integrations.run_logging`),
and the tag ``tunebench.status`` (its status each time it stops running). At the end of tuning
every run is terminated: ``FAILED`` for a failed trial, ``FINISHED`` otherwise.

The tracking URI is ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else a local file store in
the experiment folder (``<experiment_dir>/mlruns``). The ``mlflow-skinny`` package suffices for
a file store or a tracking server; MLflow 3 opts into file stores with
``MLFLOW_ALLOW_FILE_STORE=true``, which this callback sets (unless set) when its URI is one.
Read the file store back with ``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri
<experiment_dir>/mlruns`` (the UI needs the full ``mlflow`` package).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import urlparse

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from tunebench.integrations.run_logging import TrialRunLogger
from tunebench.tuner import Tuner, TuningResult
from tunebench.types import Status, Trial

logger = logging.getLogger(__name__)

STATUS_TAG = "tunebench.status"
TRIAL_ID_TAG = "tunebench.trial_id"
PARENT_TAG = "mlflow.parentRunId"  #: MLflow's own tag of a nested run


class MLflowCallback(TrialRunLogger):
    """Logs each trial as a nested MLflow run of a parent run for the experiment.

    Args:
        tracking_uri: where to log (``file:...``, ``sqlite:...``, ``http://...``); default
            ``$MLFLOW_TRACKING_URI``, else ``file:<experiment_dir>/mlruns``. A resumed experiment
            logs where its first session did when this is not given.
        experiment_name: the MLflow experiment (created if absent); default the name of the
            experiment folder.
    """

    state_filename = "mlflow_runs.jsonl"
    backend_name = "MLflow"

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None) -> None:
        super().__init__()
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self._client: MlflowClient | None = None
        self._parent: str | None = None
        self._experiment_id: str | None = None

    @property
    def client(self) -> MlflowClient:
        """The client (once open)."""
        assert self._client is not None
        return self._client

    def _backend_open(self, tuner: Tuner, header: dict[str, Any] | None) -> dict[str, Any]:
        uri = (self.tracking_uri or (header or {}).get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
               or (tuner.experiment_dir.resolve() / "mlruns").as_uri())
        if urlparse(uri).scheme in ("", "file"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks to opt into file stores
        self._client = MlflowClient(tracking_uri=uri)
        name = self.experiment_name or (header or {}).get("experiment_name") or tuner.experiment_dir.resolve().name
        exp = self.client.get_experiment_by_name(name)
        self._experiment_id = exp.experiment_id if exp is not None else self.client.create_experiment(name)
        parent = (header or {}).get("parent_run_id")
        moved = self.tracking_uri is not None and self.tracking_uri != (header or {}).get("tracking_uri")
        if parent is None or moved:
            run = self.client.create_run(self._experiment_id, run_name=tuner.experiment_dir.resolve().name,
                                         tags={"tunebench.experiment_dir": str(tuner.experiment_dir.resolve()),
                                               "tunebench.metric": str(tuner.metric)})
            parent = run.info.run_id
            if header is not None:  # a new store for a resumed experiment: new runs
                self._runs.clear()
        else:
            self.client.update_run(parent, status="RUNNING")
        self._parent = parent
        logger.info("logging trials to MLflow at %s (experiment %r, parent run %s)", uri, name, parent)
        return {"tracking_uri": uri, "experiment_name": name, "experiment_id": self._experiment_id,
                "parent_run_id": parent}

    def _backend_create_run(self, trial: Trial) -> str:
        assert self._experiment_id is not None and self._parent is not None
        run = self.client.create_run(self._experiment_id, run_name=f"trial {trial.trial_id}",
                                     tags={PARENT_TAG: self._parent, TRIAL_ID_TAG: str(trial.trial_id)})
        params = [Param(str(k), str(v)) for k, v in trial.config.items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run.info.run_id, params=params[start:start + 100])
        return str(run.info.run_id)

    def _backend_count_logged(self, trial_id: int, run_id: str) -> int:
        assert self._tuner is not None
        return len(self.client.get_metric_history(run_id, self._tuner.metric))

    def _backend_log(self, trial_id: int, run_id: str, step: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def _backend_trial_running(self, trial_id: int, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def _backend_trial_status(self, trial_id: int, run_id: str, status: Status) -> None:
        self.client.log_batch(run_id, tags=[RunTag(STATUS_TAG, status.value)])
        if status is not Status.PAUSED:  # a paused trial may resume: its run ends with the tuning
            self.client.set_terminated(run_id, _run_status(status))

    def _backend_finish(self, result: TuningResult) -> None:
        assert self._tuner is not None and self._parent is not None
        for tid, run_id in self._runs.items():
            rec = self._tuner.trials.get(tid)
            if rec is not None and rec.status in (Status.PAUSED, Status.RUNNING):
                # paused: may resume in a later session; running: interrupted, restarts on resume
                self.client.set_terminated(run_id, "KILLED" if rec.status is Status.RUNNING else "FINISHED")
        self.client.set_terminated(self._parent, "FINISHED" if result.ok else "FAILED")


def _run_status(status: Status) -> str:
    return RunStatus.to_string(RunStatus.FAILED if status is Status.FAILED else RunStatus.FINISHED)
