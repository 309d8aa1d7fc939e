"""Every DAG imports cleanly, documents itself, retries, maps errors the one way, and parses without heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlops.config import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"
HEAVY = ("pandas", "xgboost", "mlflow", "evidently", "great_expectations", "dvc", "sklearn", "pyarrow")
MODEL = "card_transactions"
EXPECTED_DAG_IDS = {
    f"{MODEL}__{kind}"
    for kind in ("data_validation", "continuous_training", "model_rollback", "batch_scoring", "drift_monitoring")
}

# Run in a fresh interpreter: this test process may already hold the heavy modules.
PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(","))
from mlops.airflow.errors import MARKER
dags = {
    dag_id: {
        "doc_md": bool(dag.doc_md and len(dag.doc_md) > 200),
        "operators": {t.task_id: type(t).__name__ for t in dag.tasks},
        "tags": sorted(dag.tags),
        "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries, "callbacks": bool(t.on_failure_callback),
                              "timeout": (t.execution_timeout or getattr(t, "response_timeout", None)) is not None,
                              "python": hasattr(t, "python_callable"),
                              "error_policy": getattr(getattr(t, "python_callable", None), MARKER, False)}
                  for t in dag.tasks},
    }
    for dag_id, dag in bag.dags.items()
}
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "heavy": heavy, "dags": dags}))
"""


VARIANTS = {
    "embedded defaults": {},
    "production": {  # GPU pod, human approval, S3 lake: other operators, same rules
        "MLOPS_TRAINING_BACKEND": "kubernetes",
        "MLOPS__PROMOTION__POLICY": "manual",
        "MLOPS__DATASET__LAKE_URI": "s3://lake/card_transactions",
    },
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def parsed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Parse dags/ once per config variant, the way the dag-processor does, in a fresh interpreter."""
    tmp_path = tmp_path_factory.mktemp("parse")
    env = {
        **VARIANTS[request.param],
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "MLOPS_HOME": str(tmp_path / "mlops"),
        "PATH": "/usr/bin:/bin",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/a.db",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAGS), ",".join(HEAVY)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dags_import_cleanly_and_follow_the_house_rules(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) >= EXPECTED_DAG_IDS
    for dag_id, dag in parsed["dags"].items():
        assert dag["doc_md"], f"{dag_id} needs a doc_md that explains it"
        assert "mlops" in dag["tags"] and dag_id.split("__")[0] in dag["tags"], dag_id
        for task_id, task in dag["tasks"].items():
            assert task["owner"] == "mlops", f"{dag_id}.{task_id}"
            assert task["callbacks"] and task["timeout"], f"{dag_id}.{task_id} needs a failure callback and a timeout"
            if not task_id.startswith(("wait_for_", "approve_")):  # waits (sensor, human) end for good on timeout
                assert task["retries"] >= 1, f"{dag_id}.{task_id} needs retries"
            if task["python"]:  # a task body: input errors fail fast, the rest is retried (mlops.airflow.errors)
                assert task["error_policy"], f"{dag_id}.{task_id}: put @error_policy under @task"


def test_parsing_dags_imports_no_heavy_library(parsed: dict) -> None:
    assert parsed["heavy"] == []


def test_config_chooses_the_training_backend_and_the_approval_step(parsed: dict) -> None:
    operators = parsed["dags"][f"{MODEL}__continuous_training"]["operators"]
    sensor = parsed["dags"][f"{MODEL}__data_validation"]["operators"]["wait_for_partition"]
    if operators["train"] == "KubernetesPodOperator":  # the production variant
        assert operators["approve_promotion"] == "LedgerApprovalOperator"  # Airflow's, its answers in the ledger
        assert sensor == "S3KeySensor"
    else:
        assert "approve_promotion" not in operators
        assert sensor == "FileSensor"
