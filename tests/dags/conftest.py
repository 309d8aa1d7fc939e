"""Real Airflow for DAG tests: a throwaway AIRFLOW_HOME per test, copied from one migrated SQLite DB."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from mlops.config import load_settings
from mlops.runtime import airflow, embedded_env, ensure_airflow_db

#: The model these tests run (its file: include/models/card_transactions.yaml).
MODEL = "card_transactions"


def dag_id(kind: str) -> str:
    """The test model's DAG of one kind (``card_transactions__data_validation``...)."""
    return f"{MODEL}__{kind}"


def _clean_env(**overrides: str) -> dict[str, str]:
    """This process's env without any Airflow/MLOps settings a developer's shell may carry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS", "MLFLOW"))}
    return {**env, **overrides}


@pytest.fixture(scope="session")
def migrated_airflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `airflow db migrate` per session (about 10 s); tests get copies of the fresh database."""
    home = tmp_path_factory.mktemp("airflow-template")
    env = embedded_env(base=_clean_env(AIRFLOW_HOME=str(home), MLOPS_HOME=str(home / "unused")))
    ensure_airflow_db(env)
    return home


@pytest.fixture
def airflow_home(migrated_airflow: Path, tmp_path: Path) -> Path:
    """A metadata DB of the test's own: assets, runs and XComs of other tests cannot leak in."""
    home = tmp_path / "airflow"
    home.mkdir()
    # SQLite's backup API copies a consistent database whatever its journal mode (Airflow uses WAL).
    with closing(sqlite3.connect(migrated_airflow / "airflow.db")) as source, \
            closing(sqlite3.connect(home / "airflow.db")) as target:  # fmt: skip
        source.backup(target)
    return home


@pytest.fixture
def dag_env(airflow_home: Path, tmp_path: Path) -> dict[str, str]:
    """The embedded env for one test: shared Airflow DB, the test's own MLOPS_HOME (lake, DVC, reports)."""
    base = _clean_env(AIRFLOW_HOME=str(airflow_home), MLOPS_HOME=str(tmp_path / "mlops"))
    return embedded_env(load_settings(env=base), base=base)


def dags_test(dag_id: str, day: dt.date, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`airflow dags test DAG D`: the real scheduler loop in one process, as a user would run it."""
    return airflow(["dags", "test", dag_id, day.isoformat()], env, check=False, capture_output=True)


def task_states(airflow_home: Path, dag_id: str, day: dt.date) -> dict[str, str]:
    """Task states of the latest run of ``dag_id`` for logical date ``day``, from the metadata DB."""
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        run_id = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? AND date(logical_date) = ? ORDER BY id DESC LIMIT 1",
            (dag_id, day.isoformat()),
        ).fetchone()[0]
        rows = db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
        return dict(rows.fetchall())


def asset_events(airflow_home: Path, asset_name: str) -> list[str]:
    """The ``extra`` JSON of every event of an asset, oldest first."""
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        rows = db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = ? ORDER BY e.id",
            (asset_name,),
        )
        return [row[0] for row in rows.fetchall()]
