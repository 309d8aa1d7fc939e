"""The DAG factory: a model is a file. Adding one adds its five DAGs, removing it removes them, a broken one is an
import error naming the file and key while every other model's DAGs still load, and models never reach each other."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.config import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"
CARD_MODEL = (PROJECT_ROOT / "include" / "models" / "card_transactions.yaml").read_text()
KINDS = ("data_validation", "continuous_training", "batch_scoring", "drift_monitoring", "model_rollback")

# Parsed in a fresh interpreter, the way the dag-processor parses the folder.
PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
def assets(dag):
    condition = getattr(dag.timetable, "asset_condition", None)
    if condition is None:
        return []
    return sorted(a.name for a in getattr(condition, "objects", [condition]))
print(json.dumps({
    "errors": {k.rsplit("/", 1)[-1]: str(v) for k, v in bag.import_errors.items()},
    "dags": {dag_id: {"tags": sorted(dag.tags), "max_active_tasks": dag.max_active_tasks, "assets": assets(dag),
                      "triggers": sorted(t.trigger_dag_id for t in dag.tasks if hasattr(t, "trigger_dag_id")),
                      "outlets": sorted(o.name for t in dag.tasks for o in t.outlets)}
             for dag_id, dag in bag.dags.items()},
}))
"""


def _parse(tmp_path: Path, models: dict[str, str], **extra_env: str) -> dict:
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    for stale in folder.glob("*.yaml"):
        stale.unlink()
    for name, text in models.items():
        (folder / f"{name}.yaml").write_text(text)
    env = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "MLOPS_HOME": str(tmp_path / "mlops"),
        "MLOPS_MODELS_DIR": str(folder),
        "PATH": "/usr/bin:/bin",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/a.db",
        **extra_env,
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAGS)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two models of the card table plus a broken third file."""
    eu = CARD_MODEL + "dags: {max_active_tasks: 3}\n"
    broken = "dataset: {id_column: id}\ntraining: {window_days: plenty}\n"
    return _parse(tmp_path_factory.mktemp("factory"), {"cards": CARD_MODEL, "cards_eu": eu, "broken": broken})


def test_each_model_file_gets_its_five_dags(two_models: dict) -> None:
    assert set(two_models["dags"]) == {f"{model}__{kind}" for model in ("cards", "cards_eu") for kind in KINDS}
    for dag_id, dag in two_models["dags"].items():
        assert {"mlops", dag_id.split("__")[0]} <= set(dag["tags"]), dag_id
    assert two_models["dags"]["cards_eu__batch_scoring"]["max_active_tasks"] == 3  # the model file's own limit
    assert two_models["dags"]["cards__batch_scoring"]["max_active_tasks"] == 8


def test_a_broken_model_file_is_an_import_error_that_names_it_and_the_others_still_load(two_models: dict) -> None:
    assert list(two_models["errors"]) == ["mlops_model_check.py"]  # never the factory file: its DAGs stay live
    error = two_models["errors"]["mlops_model_check.py"]
    assert "broken.yaml" in error and "training.window_days" in error
    assert not any(dag_id.startswith("broken__") for dag_id in two_models["dags"])


def test_models_never_reach_each_other(two_models: dict) -> None:
    dags = two_models["dags"]
    for model, other in (("cards", "cards_eu"), ("cards_eu", "cards")):
        assert dags[f"{model}__drift_monitoring"]["triggers"] == [f"{model}__continuous_training"]
        assert dags[f"{model}__batch_scoring"]["assets"] == [f"{model}.champion", f"{model}.validated"]
        assert dags[f"{model}__drift_monitoring"]["assets"] == [f"{model}.scores"]
        assert dags[f"{model}__continuous_training"]["assets"] == [f"{model}.validated"]
        assert dags[f"{model}__data_validation"]["outlets"] == [f"{model}.validated"]
        for dag in (d for dag_id, d in dags.items() if dag_id.startswith(f"{model}__")):
            assert not any(name.startswith(f"{other}.") for name in dag["assets"] + dag["outlets"])


def test_two_models_on_one_dataset_name_are_refused_not_mixed(tmp_path: Path) -> None:
    copy = CARD_MODEL.replace("dataset:\n", "dataset:\n  name: cards\n", 1)
    parsed = _parse(tmp_path, {"cards": CARD_MODEL, "copycat": copy})
    error = parsed["errors"]["mlops_model_check.py"]
    assert "copycat.yaml" in error and "dataset.name 'cards' is already model 'cards'" in error
    assert set(parsed["dags"]) == {f"cards__{kind}" for kind in KINDS}  # the first keeps its DAGs


def test_removing_a_model_file_removes_its_dags(tmp_path: Path) -> None:
    parsed = _parse(tmp_path, {"cards": CARD_MODEL})
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) == {f"cards__{kind}" for kind in KINDS}


def test_a_task_process_builds_only_its_own_models_dags(tmp_path: Path) -> None:
    """A task's start-up does not grow with the models folder: Airflow's parsing context names the DAG, and only
    its model's five DAGs are built (a drift run's trigger needs its training DAG in the same bag)."""
    models = {"cards": CARD_MODEL, "cards_eu": CARD_MODEL, "broken": "training: {window_days: plenty}\n"}
    parsed = _parse(tmp_path, models, _AIRFLOW_PARSING_CONTEXT_DAG_ID="cards_eu__batch_scoring")
    assert set(parsed["dags"]) == {f"cards_eu__{kind}" for kind in KINDS}
    assert parsed["dags"]["cards_eu__batch_scoring"]["assets"] == ["cards_eu.champion", "cards_eu.validated"]
