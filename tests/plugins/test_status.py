"""A model's status line: champion and its age, the last days, and what its DAGs are doing now.

Without Airflow, the app is given the host's activity as the plugin would read it; with Airflow
(``-m airflow``), a real api-server reads a metadata DB in which a failed task (with its log), a running run
and a waiting approval were planted, and its ``/mlops/api/models/<model>/status`` lists each of them.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlops import models
from mlops.config import load_settings
from mlops.data.lake import STATS, VALIDATED, Lake
from mlops.drift import append_history
from mlops.ledger import Ledger
from mlops.web.app import create_app
from mlops.web.status import ActiveRun, Activity, FailedTask, WaitingApproval
from tests.plugins.test_mlops_web import AUTH, CARDS, DAY, EU, _get, _only_with_token, env  # noqa: F401 - fixture

DAY_BEFORE = "2026-11-09"
REASON = "ValueError: no validated day in the window 2026-11-03..2026-11-09"
NOW = dt.datetime.now(dt.UTC)
ACTIVITY = Activity(
    running=[
        ActiveRun(
            f"{CARDS}__batch_scoring", "scheduled__2026-11-11", "running", dt.datetime(2026, 11, 11, tzinfo=dt.UTC)
        ),
        ActiveRun(f"{EU}__data_validation", "manual__x", "queued", None),
    ],  # fmt: skip
    failed=[
        FailedTask(
            f"{CARDS}__continuous_training",
            "manual__a",
            "train",
            dt.datetime(2026, 11, 9, tzinfo=dt.UTC),
            NOW - dt.timedelta(hours=3),
            2,
            -1,
            REASON + "\n  File x.py, line 3",
        ),  # fmt: skip
        FailedTask(f"{CARDS}__batch_scoring", "scheduled__b", "score_chunk", None, NOW, 1, 4, None),
        FailedTask("some_other_dag", "r", "t", None, NOW, 1, -1, "not ours"),
    ],
    approvals=[
        WaitingApproval(
            f"{CARDS}__continuous_training",
            "manual__c",
            "approve_promotion",
            "Promote cards v3",
            NOW,
            dt.datetime(2026, 11, 10, tzinfo=dt.UTC),
        ),  # fmt: skip
        WaitingApproval(f"{CARDS}__model_rollback", "manual__d", "other_hitl", "not a promotion", NOW),
    ],
)


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[TestClient]:  # noqa: F811 - the imported fixture
    asked: list[list[str]] = []

    def activity(dag_ids: Any) -> Activity:
        asked.append(list(dag_ids))
        return ACTIVITY

    with TestClient(create_app(_only_with_token, env=env, activity=activity)) as client:
        client.asked = asked  # type: ignore[attr-defined]
        yield client


def test_the_status_names_champion_days_running_failures_and_approvals(client: TestClient, env: dict) -> None:  # noqa: F811
    settings = load_settings(model=CARDS, env=env)
    lake = Lake.from_settings(settings)
    lake.write_json(lake.marker("raw", DAY, VALIDATED), {"rows": 100})
    lake.write_json(lake.marker("scores", DAY, STATS), {"rows": 100, "scoring_seconds": 1.0, "model_version": "1"})
    append_history(lake, CARDS, {"day": DAY.isoformat(), "features": {"amount": {"psi": 0.1}}, "breached": False})
    ledger = Ledger(settings.ledger_uri)
    try:
        ledger.move(CARDS, models.CHAMPION, "1", compare=False, expected=None, actor="cli:test", reason="x", run="")
    finally:
        ledger.dispose()

    status = _get(client, f"/api/models/{CARDS}/status").json()
    assert client.asked[-1] == [f"{CARDS}__{kind}" for kind in ("data_validation", "continuous_training",  # type: ignore[attr-defined]
                                "batch_scoring", "drift_monitoring", "model_rollback")]  # fmt: skip
    assert status["champion"]["version"] == "1" and status["champion"]["age_seconds"] >= 0
    assert (status["last_validated"], status["last_scored"], status["last_drift_checked"]) == (DAY.isoformat(),) * 3
    assert status["updated_at"] and status["refresh_seconds"] == 60 and status["failed_days"] == 7
    now = status["activity"]
    assert [(r["dag_id"], r["state"], r["day"]) for r in now["running"]] == [
        (f"{CARDS}__batch_scoring", "running", "2026-11-11")
    ], "only the model's own runs"
    first, second = now["failed"]  # newest first, no other DAG's
    assert (second["dag_id"], second["day"], second["task_id"]) == (
        f"{CARDS}__continuous_training",
        "2026-11-09",
        "train",
    )
    assert second["reason"] == REASON, "one line"
    assert second["log"] == f"dags/{CARDS}__continuous_training/runs/manual__a/tasks/train?try_number=2"
    assert first["reason"] is None and first["log"].endswith("/tasks/score_chunk/mapped/4?try_number=1")
    assert [(a["task_id"], a["subject"], a["day"]) for a in now["approvals"]] == [
        ("approve_promotion", "Promote cards v3", "2026-11-10")
    ], "approvals of the model's continuous_training only"
    assert now["required_actions"] == f"dags/{CARDS}__continuous_training/required_actions"

    # Each line of the models list carries its model's status; the other model has its own.
    listed = {m["model"]: m for m in _get(client, "/api/models").json()["models"]}
    assert len(listed[CARDS]["status"]["activity"]["failed"]) == 2
    other = listed[EU]["status"]["activity"]
    assert other["failed"] == [] and [r["state"] for r in other["running"]] == ["queued"] and other["approvals"] == []
    assert client.get(f"/api/models/{CARDS}/status").status_code == 401


def test_without_a_host_the_activity_is_unknown(env: dict) -> None:  # noqa: F811
    with TestClient(create_app(_only_with_token, env=env)) as client:
        status = _get(client, f"/api/models/{EU}/status").json()
    assert status["activity"] is None and status["champion"] is None and status["last_scored"] is None


def test_the_drift_chart_ranks_features_by_psi(client: TestClient, env: dict) -> None:  # noqa: F811
    settings = load_settings(model=CARDS, env=env)
    lake = Lake.from_settings(settings)
    for offset, psi in enumerate([0.05, 0.4]):
        day = (DAY + dt.timedelta(days=offset)).isoformat()
        features = {"amount": {"psi": psi}, "country": {"psi": 0.2}, "hour": {"psi": 0.01}, "mcc": {"psi": None}}
        append_history(lake, settings.dataset.name, {"day": day, "features": features})
    drift = _get(client, f"/api/models/{CARDS}/drift").json()
    assert drift["features"] == ["amount", "country", "hour", "mcc"]
    assert drift["features_by_psi"] == ["amount", "country", "hour", "mcc"]
    assert drift["features"] == sorted(drift["features"]), "the table's order: by name"
    for offset, psi in enumerate([0.5, 0.01]):  # a later day where country peaks above amount's 0.4
        day = (DAY + dt.timedelta(days=2 + offset)).isoformat()
        append_history(lake, settings.dataset.name, {"day": day, "features": {"country": {"psi": psi}}})
    ranked = _get(client, f"/api/models/{CARDS}/drift").json()["features_by_psi"]
    assert ranked == ["country", "amount", "hour", "mcc"], "highest PSI over the days shown first, unknown last"


# -- a real Airflow ------------------------------------------------------------------------------------------
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
FAILED_DAG, FAILED_TASK, FAILED_RUN = f"{CARDS}__batch_scoring", "score_chunk", "manual__status-probe-failed"
PLANTED_REASON = "FileNotFoundError: no committed scores for 2030-01-02 (planted by the status test)"


def _ts(value: dt.datetime) -> str:
    """A timestamp as Airflow's UtcDateTime keeps it in SQLite (naive UTC)."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


def _plant_run(db: sqlite3.Connection, dag_id: str, run_id: str, state: str, day: dt.date) -> None:
    template = db.execute("SELECT max(id) FROM log_template").fetchone()[0]
    logical = dt.datetime.combine(day, dt.time(), dt.UTC)
    now = dt.datetime.now(dt.UTC)
    db.execute(
        "INSERT INTO dag_run (dag_id, run_id, state, run_type, logical_date, run_after, start_date, end_date, "
        "queued_at, log_template_id, clear_number, span_status) VALUES (?, ?, ?, 'manual', ?, ?, ?, ?, ?, ?, 0, "
        "'not_started')",
        (dag_id, run_id, state, _ts(logical), _ts(logical), _ts(now - dt.timedelta(minutes=5)),
         _ts(now) if state in ("failed", "success") else None, _ts(now - dt.timedelta(minutes=6)), template),
    )  # fmt: skip


def _plant_task(db: sqlite3.Connection, dag_id: str, run_id: str, task_id: str, state: str) -> str:
    ti_id = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC)
    db.execute(
        "INSERT INTO task_instance (id, task_id, dag_id, run_id, map_index, start_date, end_date, state, try_number, "
        "max_tries, pool, pool_slots, span_status) VALUES (?, ?, ?, ?, -1, ?, ?, ?, 1, 0, 'default_pool', 1, "
        "'not_started')",
        (ti_id, task_id, dag_id, run_id, _ts(now - dt.timedelta(minutes=4)), _ts(now) if state == "failed" else None,
         state),
    )  # fmt: skip
    return ti_id


def plant_failure(airflow_home: Path, model: str = CARDS) -> dict[str, str]:
    """In an Airflow metadata DB (SQLite) and its logs folder: a failed run of the model's batch_scoring whose
    task logged an exception; returns what the status should name (DAG, day, task, reason, log link)."""
    failed_day, failed_dag = dt.date(2030, 1, 2), f"{model}__batch_scoring"
    with closing(sqlite3.connect(airflow_home / "airflow.db", timeout=60)) as db, db:
        _plant_run(db, failed_dag, FAILED_RUN, "failed", failed_day)
        _plant_task(db, failed_dag, FAILED_RUN, FAILED_TASK, "failed")
    folder = airflow_home / "logs" / f"dag_id={failed_dag}" / f"run_id={FAILED_RUN}" / f"task_id={FAILED_TASK}"
    folder.mkdir(parents=True, exist_ok=True)
    exc_type, exc_value = PLANTED_REASON.split(": ", 1)
    lines = [
        {"timestamp": "2030-01-02T00:00:01Z", "level": "info", "event": "scoring chunk 0"},
        {
            "timestamp": "2030-01-02T00:00:02Z",
            "level": "error",
            "event": "Task failed with exception",
            "error_detail": [{"exc_type": exc_type, "exc_value": exc_value, "frames": []}],
        },  # fmt: skip
    ]
    (folder / "attempt=1.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return {
        "failed_dag": failed_dag, "failed_day": failed_day.isoformat(), "failed_task": FAILED_TASK,
        "reason": PLANTED_REASON, "log": f"dags/{failed_dag}/runs/{FAILED_RUN}/tasks/{FAILED_TASK}?try_number=1",
    }  # fmt: skip


def plant_activity(airflow_home: Path, model: str = CARDS) -> dict[str, str]:
    """:func:`plant_failure`, a running run of another DAG and a promotion waiting for approval (no scheduler
    may run on this DB: it would run them)."""
    running_day, waiting_day = dt.date(2030, 1, 3), dt.date(2030, 1, 4)
    running_dag, waiting_dag = f"{model}__drift_monitoring", f"{model}__continuous_training"
    planted = plant_failure(airflow_home, model)
    with closing(sqlite3.connect(airflow_home / "airflow.db", timeout=60)) as db, db:
        _plant_run(db, running_dag, "manual__status-probe-running", "running", running_day)
        _plant_run(db, waiting_dag, "manual__status-probe-waiting", "running", waiting_day)
        ti_id = _plant_task(db, waiting_dag, "manual__status-probe-waiting", "approve_promotion", "awaiting_input")
        db.execute(
            "INSERT INTO hitl_detail (ti_id, options, subject, params, created_at, params_input) "
            "VALUES (?, ?, ?, '{}', ?, '{}')",
            (ti_id, json.dumps(["Approve", "Reject"]), f"Promote {model} v9 (status probe)",
             _ts(dt.datetime.now(dt.UTC))),
        )  # fmt: skip
    return {**planted, "running_dag": running_dag, "running_day": running_day.isoformat(),
            "waiting_dag": waiting_dag, "waiting_day": waiting_day.isoformat()}  # fmt: skip


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A real api-server with the plugin, on a migrated metadata DB with the planted activity."""
    from tests.plugins.test_plugin_auth import _status, airflow_api_server, airflow_test_env

    home = tmp_path_factory.mktemp("status")
    airflow_env = airflow_test_env(home)
    planted = plant_activity(Path(airflow_env["AIRFLOW_HOME"]))
    with airflow_api_server(airflow_env, home) as (url, token):
        assert _status(f"{url}/mlops/api/models/{CARDS}/status")[0] == 401, "behind the login like every route"
        yield url, token, planted


@pytest.mark.airflow
@pytest.mark.services
def test_airflow_failures_runs_and_approvals_are_in_the_status(api_server: tuple[str, str, dict[str, str]]) -> None:
    from tests.plugins.test_plugin_auth import _status

    url, token, planted = api_server
    code, body, _ = _status(f"{url}/mlops/api/models/{CARDS}/status", {"Authorization": f"Bearer {token}"})
    assert code == 200, body[:500]
    now = json.loads(body)["activity"]
    failed = [(f["dag_id"], f["day"], f["task_id"], f["reason"], f["log"]) for f in now["failed"]]
    assert failed == [(planted["failed_dag"], planted["failed_day"], planted["failed_task"], planted["reason"],
                       planted["log"])], now  # fmt: skip
    running = {(r["dag_id"], r["day"], r["state"]) for r in now["running"]}
    assert (planted["running_dag"], planted["running_day"], "running") in running, now
    approvals = [(a["dag_id"], a["task_id"], a["day"]) for a in now["approvals"]]
    assert approvals == [(planted["waiting_dag"], "approve_promotion", planted["waiting_day"])], now
    assert "status probe" in now["approvals"][0]["subject"]
    listed = json.loads(_status(f"{url}/mlops/api/models", {"Authorization": f"Bearer {token}"})[1])
    row = next(m for m in listed["models"] if m["model"] == CARDS)
    assert row["status"]["activity"]["failed"][0]["reason"] == planted["reason"]
