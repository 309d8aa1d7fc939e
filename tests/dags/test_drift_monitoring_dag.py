"""`airflow dags test drift_monitoring D`: every scored day checked once, oldest first; drift queues
continuous_training with its evidence; a clean day does not."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from mlops.config import load_settings
from mlops.data.generator import DriftSpec
from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.data.landing import land_days
from mlops.drift import append_history, history_path, read_history
from mlops.monitoring import unchecked_days
from mlops.scoring import score_day
from mlops.training.pipeline import run_all
from mlops.validation import validate_and_version
from tests.dags.conftest import dag_id, dags_test

pytestmark = pytest.mark.airflow
START = dt.date(2026, 5, 1)
TRAINED_AS_OF = START + dt.timedelta(days=12)
LAST_TRAINING_DAY = START + dt.timedelta(days=9)
CLEAN, DRIFTED = START + dt.timedelta(days=15), START + dt.timedelta(days=16)


def _training_runs(airflow_home: Path) -> list[tuple[str, dict]]:
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        query = "SELECT state, conf FROM dag_run WHERE dag_id = ? ORDER BY id"
        rows = db.execute(query, (dag_id("continuous_training"),))
        return [(state, json.loads(conf) if isinstance(conf, str) else conf) for state, conf in rows.fetchall()]


def _tail(result) -> str:  # type: ignore[no-untyped-def]
    return (result.stdout + result.stderr)[-4000:]


def test_unchecked_days_are_the_scored_days_without_history_oldest_first(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    d = [dt.date(2026, 5, 1) + dt.timedelta(days=i) for i in range(6)]
    for day in d[:5]:
        lake.write_json(lake.marker("raw", day, VALIDATED), {"rows": 1})
    for day in (d[0], d[1], d[2], d[3], d[5]):  # d[5] scored, then re-validated into quarantine: no window
        lake.touch(lake.marker("scores", day, SUCCESS))
    append_history(lake, "cards", {"day": d[1].isoformat(), "breached": False, "triggered": False,
                                   "champion_version": "2"})  # fmt: skip

    assert unchecked_days(lake, "cards") == ([d[0], d[2], d[3]], [])
    days, notes = unchecked_days(lake, "cards", [d[1], d[4]], limit=2)
    assert days == [d[0], d[2]]
    assert notes == [
        f"dt={d[1]} already checked (with v2: breached=False, triggered=False)",
        f"dt={d[4]} has no committed scores yet: checked once batch_scoring commits them",
        f"1 more scored day(s) wait ({d[3]}..{d[3]}): beyond drift.backlog_days, the next run checks them",
    ]
    assert unchecked_days(lake, "cards", [d[1]], forced=True, limit=2) == ([d[0], d[1]], []), "params.date: again"
    for day in (d[0], d[2], d[3]):
        append_history(lake, "cards", {"day": day.isoformat(), "breached": False, "triggered": False})
    assert unchecked_days(lake, "cards", [d[3]]) == ([], [f"dt={d[3]} already checked (with v?: breached=False, "
                                                         "triggered=False)"])  # fmt: skip


def test_a_drift_run_for_day_d_checks_only_days_up_to_d_and_not_the_champions_own(tmp_path: Path) -> None:
    """Later scored days wait for their own runs; the days the champion learned from are never checked."""
    lake = Lake(str(tmp_path / "lake"))
    d = [dt.date(2026, 5, 1) + dt.timedelta(days=i) for i in range(8)]
    for day in d:
        lake.write_json(lake.marker("raw", day, VALIDATED), {"rows": 1})
        lake.touch(lake.marker("scores", day, SUCCESS))
    trained = frozenset(d[:3])

    days, notes = unchecked_days(lake, "cards", [d[4]], up_to=d[4], trained_on=trained)
    assert days == [d[3], d[4]] and notes == []
    assert unchecked_days(lake, "cards", [d[4]], up_to=d[4], trained_on=trained) == (days, notes), "same again"
    days, notes = unchecked_days(lake, "cards", [d[1]], up_to=d[1], trained_on=trained, forced=True)
    assert days == [] and notes == [f"dt={d[1]}: the champion was trained on it, so it is not checked against its "
                                    "own reference"]  # fmt: skip
    assert unchecked_days(lake, "cards", [d[7]], up_to=d[7], trained_on=trained)[0] == d[3:], "today catches up"


def test_every_scored_day_is_checked_once_and_drift_triggers_training(
    dag_env: dict[str, str], airflow_home: Path
) -> None:
    env = {**dag_env, "MLOPS__DRIFT__CONSECUTIVE_WINDOWS": "1"}
    settings = load_settings(env=env)
    lake = Lake.from_settings(settings)
    land_days(settings, START, 10, rows_per_day=5_000, seed=4, labels_until=TRAINED_AS_OF)
    for offset in range(10):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    run_all(settings, TRAINED_AS_OF, {"reason": "initial"}, actor="test")

    shift = DriftSpec(start=DRIFTED, kind="covariate", features=("amount", "device_risk_score"), magnitude=2.0)
    land_days(settings, CLEAN, 2, rows_per_day=5_000, seed=4, drift=shift)
    for day in (CLEAN, DRIFTED):
        validate_and_version(settings, day)
    for day in (LAST_TRAINING_DAY, CLEAN, DRIFTED):  # scored in one go (a backlog), no drift check yet
        score_day(settings, day)
    before = len(_training_runs(airflow_home))

    # The run for CLEAN checks the scored days up to CLEAN, oldest first, each once: no drift, no retraining.
    # The drifted day after it is scored already, but that day is its own run's to judge; the last training
    # day is not checked at all: the champion's reference profile was made of it.
    clean = dags_test(dag_id("drift_monitoring"), CLEAN, env)
    assert clean.returncode == 0, _tail(clean)
    assert f"checking 1 day(s), oldest first: {CLEAN}" in clean.stdout + clean.stderr, _tail(clean)
    assert [entry["day"] for entry in read_history(lake, settings.dataset.name)] == [CLEAN.isoformat()]
    assert not any(entry["triggered"] for entry in read_history(lake, settings.dataset.name))
    assert len(_training_runs(airflow_home)) == before, "no drift, no retraining"
    checked_clean = Path(history_path(lake, settings.dataset.name, CLEAN)).read_bytes()

    # The run for CLEAN again: nothing new up to its day, the same history, still nothing triggered.
    again = dags_test(dag_id("drift_monitoring"), CLEAN, env)
    assert again.returncode == 0, _tail(again)
    assert f"dt={CLEAN} already checked" in again.stdout + again.stderr, _tail(again)
    assert Path(history_path(lake, settings.dataset.name, CLEAN)).read_bytes() == checked_clean
    assert len(read_history(lake, settings.dataset.name)) == 1 and len(_training_runs(airflow_home)) == before

    # The run for DRIFTED checks it alone (CLEAN is not checked again) and queues a training.
    drifted = dags_test(dag_id("drift_monitoring"), DRIFTED, env)
    assert drifted.returncode == 0, _tail(drifted)
    output = drifted.stdout + drifted.stderr
    assert f"checking 1 day(s), oldest first: {DRIFTED}" in output, _tail(drifted)
    assert "DRIFT" in output  # the breach went through the notifier
    assert Path(history_path(lake, settings.dataset.name, CLEAN)).read_bytes() == checked_clean
    runs = _training_runs(airflow_home)
    assert len(runs) == before + 1
    state, conf = runs[-1]
    assert state == "queued"  # `dags test` runs one DAG; the triggered run waits for a scheduler
    evidence = conf["drift"]
    assert conf["reason"].startswith("drift") and "amount" in evidence["breached_features"]
    assert evidence["window"]["days"] == [DRIFTED.isoformat()]
    report = f"reports/drift/{settings.dataset.name}/dt={DRIFTED.isoformat()}/report.html"
    assert evidence["report_uri"].endswith(report)
    assert Path(evidence["report_uri"]).is_file()
