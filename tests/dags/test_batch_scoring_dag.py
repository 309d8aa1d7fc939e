"""`airflow dags test batch_scoring D`: every validated day scored once (backlogs too), champion version on every
row, no champion or nothing waiting ends SKIPPED with the reason, idempotent."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlops.config import load_settings
from mlops.data.lake import STATS, SUCCESS, Lake
from mlops.data.landing import land_days
from mlops.registry import CHAMPION, Registry
from mlops.scoring import score_day
from mlops.training.pipeline import run_all
from mlops.validation import validate_and_version
from tests.dags.conftest import asset_events, dag_id, dags_test, task_states

pytestmark = pytest.mark.airflow
START, DAYS = dt.date(2026, 7, 1), 9
ALL = [START + dt.timedelta(days=i) for i in range(DAYS)]
DAY = ALL[-1]
BEFORE_OUTAGE, BACKLOG = ALL[:-3], ALL[-3:]  # scored before an outage; validated during it, never scored
CHUNK_NAME = re.compile(r"dt=\d{4}-\d\d-\d\d rows (?P<first>[\d,]+)-(?P<last>[\d,]+)")


def _read_scores(lake: Lake, day: dt.date):  # type: ignore[no-untyped-def]
    partition = lake.partition("scores", day)
    assert lake.exists(f"{partition}/{SUCCESS}")
    return pq.ParquetDataset(lake.data_files(partition), filesystem=lake.fs).read().sort_by("transaction_id")


def _mapped_states(airflow_home: Path, task_id: str) -> list[str]:
    """States of every map index of ``task_id`` in the latest batch_scoring run."""
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        rows = db.execute(
            "SELECT state FROM task_instance WHERE dag_id = :dag AND task_id = :task AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = :dag ORDER BY id DESC LIMIT 1) ORDER BY map_index",
            {"dag": dag_id("batch_scoring"), "task": task_id},
        )
        return [row[0] for row in rows.fetchall()]


def _chunk_names(airflow_home: Path) -> list[str]:
    """What the grid shows for each mapped ``score_chunk`` of the latest batch_scoring run (its rendered name)."""
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        rows = db.execute(
            "SELECT rendered_map_index FROM task_instance WHERE dag_id = :dag AND task_id = 'score_chunk' AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = :dag ORDER BY id DESC LIMIT 1) ORDER BY map_index",
            {"dag": dag_id("batch_scoring")},
        )
        return [row[0] for row in rows.fetchall()]


def _row_range(name: str) -> tuple[int, int]:
    """The first and last row of a chunk named ``dt=D rows 2,000-3,999``."""
    first, last = CHUNK_NAME.fullmatch(name).group("first", "last")  # type: ignore[union-attr]
    return int(first.replace(",", "")), int(last.replace(",", ""))


def _tail(result) -> str:  # type: ignore[no-untyped-def]
    return (result.stdout + result.stderr)[-4000:]


def test_every_validated_day_is_scored_once_when_a_champion_exists(dag_env: dict[str, str], airflow_home: Path) -> None:
    env = {**dag_env, "MLOPS__SCORING__CHUNK_ROWS": "2000"}
    settings = load_settings(env=env)
    land_days(settings, START, DAYS, rows_per_day=5_000, seed=8, labels_until=DAY + dt.timedelta(days=3))
    for day in ALL:
        validate_and_version(settings, day)
    lake = Lake.from_settings(settings)

    # No champion yet: the run ends SKIPPED (not failed, not retried) and says why; nothing is written.
    waiting = dags_test(dag_id("batch_scoring"), DAY, env)
    assert waiting.returncode == 0, _tail(waiting)
    states = task_states(airflow_home, dag_id("batch_scoring"), DAY)
    assert states["pin_champion"] == "skipped", states
    assert {states[t] for t in ("plan_chunks", "days_of", "commit_scores", "shadow_score")} == {"skipped"}
    assert (
        f"no champion yet: {DAYS} validated day(s) up to dt={DAY} wait ({START}..{DAY})"
        in waiting.stdout + waiting.stderr
    )
    assert lake.days("scores") == [], "no champion: nothing written under scores/"

    # A champion; the first days were scored before an outage, the last three validated during it.
    run_all(settings, DAY + dt.timedelta(days=3), {"reason": "test"}, actor="test")
    champion = Registry(settings).alias_version(CHAMPION)
    for day in BEFORE_OUTAGE:
        score_day(settings, day, run_id="before-outage")

    # One run for the newest day scores the whole backlog, oldest first, each day once, with the champion.
    first = dags_test(dag_id("batch_scoring"), DAY, env)
    assert first.returncode == 0, _tail(first)
    assert (
        f"scoring 3 day(s) with v{champion}: {', '.join(d.isoformat() for d in BACKLOG)}" in first.stdout + first.stderr
    )
    assert _mapped_states(airflow_home, "commit_scores") == ["success"] * 3
    chunks = _mapped_states(airflow_home, "score_chunk")  # mapped over the chunks of every day
    assert len(chunks) >= 3 and set(chunks) == {"success"}
    # The grid names each chunk by its day and row range (`dt=D rows 0-4,999`): together they cover each day.
    names = _chunk_names(airflow_home)
    assert len(names) == len(chunks) and all(CHUNK_NAME.fullmatch(name or "") for name in names), names
    for day in BACKLOG:
        ranges = sorted(_row_range(name) for name in names if name.startswith(f"dt={day} "))
        assert ranges[0][0] == 0 and ranges[-1][1] == 4_999, names  # the whole day, from its first row
        for (_, last), (first, _) in zip(ranges, ranges[1:], strict=False):
            assert first == last + 1, names  # consecutive, no gap or overlap
    run_ids = set()
    for day in BACKLOG:
        scores = _read_scores(lake, day)
        raw = lake.read_partition(lake.partition("raw", day))
        assert scores.num_rows == raw.num_rows == 5_000
        assert sorted(scores["transaction_id"].to_pylist()) == sorted(raw["transaction_id"].to_pylist())
        assert set(scores["model_version"].to_pylist()) == {champion}
        run_ids |= set(scores["airflow_run_id"].to_pylist())
    assert len(run_ids) == 1, "one run scored the whole backlog"
    for day in BEFORE_OUTAGE:  # already scored: left alone
        assert lake.read_json(lake.marker("scores", day, STATS))["run_id"] == "before-outage"
    events = [json.loads(e) for e in asset_events(airflow_home, f"{settings.dataset.name}.scores")]
    events.sort(key=lambda event: event["date"])  # the days' commits run in any order
    assert events == [{"date": d.isoformat(), "model_version": champion, "rows": 5_000} for d in BACKLOG]
    scored = {day: _read_scores(lake, day) for day in BACKLOG}

    # The same day again (the asset-triggered and the nightly run of one day): a clean no-op that says so.
    again = dags_test(dag_id("batch_scoring"), DAY, env)
    assert again.returncode == 0, _tail(again)
    output = again.stdout + again.stderr
    assert f"dt={DAY} already scored by {run_ids.pop()} with v{champion}" in output, _tail(again)
    assert "no other validated day up to this run's day waits" in output
    states = task_states(airflow_home, dag_id("batch_scoring"), DAY)
    assert states["pin_champion"] == "skipped" and states["plan_chunks"] == "skipped", states
    assert len(asset_events(airflow_home, f"{settings.dataset.name}.scores")) == 3, "no day announced twice"
    for day in BACKLOG:
        assert _read_scores(lake, day).equals(scored[day])
        assert [p for p in lake.fs.ls(lake.partition("scores", day)) if "_staging" in p] == []
