"""`airflow dags test batch_scoring D`: one complete output per date, champion version on every row, idempotent."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlops.config import load_settings
from mlops.data.lake import SUCCESS, Lake
from mlops.data.landing import land_days
from mlops.registry import CHAMPION, Registry
from mlops.training.pipeline import run_all
from mlops.validation import validate_and_version
from tests.dags.conftest import asset_events, dags_test, task_states

pytestmark = pytest.mark.airflow
START, DAYS = dt.date(2026, 7, 1), 9
DAY = START + dt.timedelta(days=DAYS - 1)


def _read_scores(lake: Lake, day: dt.date):  # type: ignore[no-untyped-def]
    partition = lake.partition("scores", day)
    assert lake.exists(f"{partition}/{SUCCESS}")
    return pq.ParquetDataset(lake.data_files(partition), filesystem=lake.fs).read().sort_by("transaction_id")


def test_scoring_is_complete_pinned_and_idempotent(dag_env: dict[str, str], airflow_home: Path) -> None:
    settings = load_settings(env={**dag_env, "MLOPS__SCORING__CHUNK_ROWS": "2000"})  # several mapped chunks
    land_days(settings, START, DAYS, rows_per_day=5_000, seed=8, labels_until=DAY + dt.timedelta(days=3))
    for offset in range(DAYS):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    lake = Lake.from_settings(settings)

    env = {**dag_env, "MLOPS__SCORING__CHUNK_ROWS": "2000"}
    missing = dags_test("batch_scoring", DAY, env)
    assert missing.returncode != 0 and "continuous_training" in missing.stdout + missing.stderr
    assert not lake.exists(lake.partition("scores", DAY)), "no champion: nothing written"

    run_all(settings, DAY + dt.timedelta(days=3), {"reason": "test"}, actor="test")
    champion = Registry(settings).alias_version(CHAMPION)
    first = dags_test("batch_scoring", DAY, env)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    states = task_states(airflow_home, "batch_scoring", DAY)
    assert states["commit_scores"] == "success"
    scores = _read_scores(lake, DAY)
    raw = lake.read_partition(lake.partition("raw", DAY))
    assert scores.num_rows == raw.num_rows == 5_000
    assert sorted(scores["transaction_id"].to_pylist()) == sorted(raw["transaction_id"].to_pylist())
    assert set(scores["model_version"].to_pylist()) == {champion}
    events = [json.loads(e) for e in asset_events(airflow_home, f"{settings.dataset.name}.scores")]
    assert {"date": DAY.isoformat(), "model_version": champion, "rows": 5_000} in events

    again = dags_test("batch_scoring", DAY, env)
    assert again.returncode == 0
    rerun = _read_scores(lake, DAY)
    assert rerun.drop_columns(["airflow_run_id"]).equals(scores.drop_columns(["airflow_run_id"]))
    assert [p for p in lake.fs.ls(lake.partition("scores", DAY)) if "_staging" in p] == []
