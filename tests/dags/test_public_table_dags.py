"""A public table onboarded through the real DAGs: `mlops dataset init` on its first day, then `airflow dags test`.

The model file `dataset init` writes into the models folder is the only configuration: its five DAGs appear, the
validation DAG passes a later day with its warnings, the training DAG gives the first champion on the drafted
gates, the scoring DAG scores the day and the drift DAG runs on a clean and on a shifted day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from pathlib import Path
from unittest import mock

import pytest

from mlops.cli import main
from mlops.config import load_settings
from mlops.data.lake import VALIDATED, Lake
from mlops.data.public import land_public
from mlops.drift import read_history
from mlops.registry import CHAMPION, Registry
from mlops.runtime import airflow
from mlops.validation import validate_and_version
from tests.dags.conftest import task_states

pytestmark = [pytest.mark.airflow, pytest.mark.onboarding]
NAME = "affairs"
START, DAYS = dt.date(2026, 3, 1), 15
TRAINED = START + dt.timedelta(days=12)  # the training run's day: it trains on the days up to it
CLEAN, SHIFTED = TRAINED + dt.timedelta(days=1), TRAINED + dt.timedelta(days=2)  # after it: a day the drift DAG checks


def _dags_test(kind: str, day: dt.date, env: dict[str, str]) -> str:
    result = airflow(["dags", "test", f"{NAME}__{kind}", day.isoformat()], env, check=False, capture_output=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def test_a_public_table_runs_through_its_generated_dags(dag_env: dict[str, str], airflow_home: Path,
                                                         tmp_path: Path) -> None:  # fmt: skip
    models = tmp_path / "models"
    env = {**dag_env, "MLOPS_MODELS_DIR": str(models)}
    lake = Lake.from_settings(load_settings(env=env, conf={"dataset": {"name": NAME}}))
    land_public(lake, NAME, START, DAYS, shift=SHIFTED)
    out = io.StringIO()
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out):
        assert main(["dataset", "init", "--name", NAME, "--date", START.isoformat()]) == 0, out.getvalue()
    settings = load_settings(model=NAME, env=env)

    # Most days arrive as a backfill would validate them (the same step, in-process: time budget).
    for offset in range(1, 12):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    validate_and_version(settings, CLEAN)
    output = _dags_test("data_validation", TRAINED, env)
    assert lake.exists(lake.marker("raw", TRAINED, VALIDATED))
    assert "warning" in output.lower(), "the tolerated surprises of the day are logged"

    _dags_test("continuous_training", TRAINED, env)
    states = task_states(airflow_home, f"{NAME}__continuous_training", TRAINED)
    assert states["promote"] == "success", states
    assert Registry(settings).alias_version(CHAMPION) is not None, "a first champion on the drafted gates"

    _dags_test("batch_scoring", CLEAN, env)  # every validated day still waiting: TRAINED and CLEAN
    for day in (TRAINED, CLEAN):
        scored = lake.read_partition(lake.partition("scores", day)).num_rows
        assert scored == lake.read_partition(lake.partition("raw", day)).num_rows, day

    output = _dags_test("drift_monitoring", CLEAN, env)
    assert CLEAN.isoformat() in [entry["day"] for entry in read_history(lake, NAME)], output[-3000:]
    _dags_test("data_validation", SHIFTED, env)
    _dags_test("batch_scoring", SHIFTED, env)  # the drift DAG checks scored days
    output = _dags_test("drift_monitoring", SHIFTED, env)
    history = {entry["day"]: entry for entry in read_history(lake, NAME)}
    assert SHIFTED.isoformat() in history, output[-3000:]
    assert history[SHIFTED.isoformat()]["breached_features"], history[SHIFTED.isoformat()]
    assert not history[CLEAN.isoformat()]["breached_features"], history[CLEAN.isoformat()]
    for day in (CLEAN, SHIFTED):
        assert history[day.isoformat()]["report_uri"], f"the drift report of {day} is written"
