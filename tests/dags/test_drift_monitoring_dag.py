"""`airflow dags test drift_monitoring D`: drift queues continuous_training with its evidence; a clean day does not."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from mlops.config import load_settings
from mlops.data.generator import DriftSpec
from mlops.data.landing import land_days
from mlops.scoring import score_day
from mlops.training.pipeline import run_all
from mlops.validation import validate_and_version
from tests.dags.conftest import dags_test

pytestmark = pytest.mark.airflow
START = dt.date(2026, 5, 1)
TRAINED_AS_OF = START + dt.timedelta(days=12)
CLEAN, DRIFTED = START + dt.timedelta(days=15), START + dt.timedelta(days=16)


def _training_runs(airflow_home: Path) -> list[tuple[str, dict]]:
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        rows = db.execute("SELECT state, conf FROM dag_run WHERE dag_id = 'continuous_training' ORDER BY id")
        return [(state, json.loads(conf) if isinstance(conf, str) else conf) for state, conf in rows.fetchall()]


def test_drift_triggers_training_with_its_evidence(dag_env: dict[str, str], airflow_home: Path) -> None:
    env = {**dag_env, "MLOPS__DRIFT__CONSECUTIVE_WINDOWS": "1"}
    settings = load_settings(env=env)
    land_days(settings, START, 10, rows_per_day=5_000, seed=4, labels_until=TRAINED_AS_OF)
    for offset in range(10):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    run_all(settings, TRAINED_AS_OF, {"reason": "initial"}, actor="test")

    shift = DriftSpec(start=DRIFTED, kind="covariate", features=("amount", "device_risk_score"), magnitude=2.0)
    land_days(settings, CLEAN, 2, rows_per_day=5_000, seed=4, drift=shift)
    for day in (CLEAN, DRIFTED):
        validate_and_version(settings, day)
        score_day(settings, day)
    before = len(_training_runs(airflow_home))

    clean = dags_test("drift_monitoring", CLEAN, env)
    assert clean.returncode == 0, (clean.stdout + clean.stderr)[-3000:]
    assert len(_training_runs(airflow_home)) == before, "no drift, no retraining"

    drifted = dags_test("drift_monitoring", DRIFTED, env)
    assert drifted.returncode == 0, (drifted.stdout + drifted.stderr)[-3000:]
    assert "DRIFT" in drifted.stdout + drifted.stderr  # the breach went through the notifier
    runs = _training_runs(airflow_home)
    assert len(runs) == before + 1
    state, conf = runs[-1]
    assert state == "queued"  # `dags test` runs one DAG; the triggered run waits for a scheduler
    assert conf["reason"].startswith("drift") and "amount" in conf["breached_features"]
    assert conf["window"]["days"] == [DRIFTED.isoformat()]
    assert conf["report_uri"].endswith(f"reports/drift/{settings.dataset.name}/dt={DRIFTED.isoformat()}/report.html")
    assert Path(conf["report_uri"]).is_file()
