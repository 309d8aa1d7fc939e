"""The ``local`` backend: the training entrypoint in a subprocess (exactly what the GPU pod runs),
and the lookup that finds a training run in MLflow whichever backend produced it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.config import Settings

log = logging.getLogger(__name__)


def training_arguments(as_of: str, snapshot_json: str, trigger_json: str, conf_json: str, device: str) -> list[str]:
    """Arguments of ``python -m mlops.training``: one definition for the subprocess and the pod."""
    return ["--as-of", as_of, "--snapshot-json", snapshot_json, "--trigger-json", trigger_json,
            "--conf-json", conf_json, "--device", device]  # fmt: skip


def run_local(arguments: list[str]) -> dict[str, Any]:
    """Run the entrypoint on this machine, streaming its log; return its JSON result (last stdout line)."""
    command = [sys.executable, "-m", "mlops.training", *arguments]
    log.info("running %s", " ".join(command[:4]) + " ...")
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            tail.append(line)
            log.info("trainer | %s", line)
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"python -m mlops.training exited with {code}:\n" + "\n".join(list(tail)[-8:]))
    return json.loads(tail[-1])


def locate_run(settings: Settings, dag_id: str, run_id: str) -> dict[str, str]:
    """The newest finished training run tagged with this Airflow run (a retried pod makes a new one)."""
    import mlflow

    from mlops.training.train import experiment_id

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id(settings)],
        filter_string=f"tags.`airflow.dag_id` = '{dag_id}' and tags.`airflow.run_id` = '{run_id}' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        raise LookupError(f"no finished MLflow training run is tagged with Airflow run {dag_id}/{run_id}")
    run = runs[0]
    return {"run_id": run.info.run_id, "model_uri": run.data.tags["mlops.model_uri"]}
