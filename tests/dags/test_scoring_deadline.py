"""A missed scoring deadline alerts: every model's batch_scoring DAG carries Airflow's deadline alert, and its
callback, run the way Airflow's triggerer runs it, sends a LATE alert by mail and Slack (both on localhost).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.config import PROJECT_ROOT, load_settings
from tests.plugins.test_alerts import _body, _Inbox, smtp_inbox

MODELS = sorted(path.stem for path in (PROJECT_ROOT / "include" / "models").glob("*.yaml"))

# The dag-processor's view: parse dags/ in a fresh interpreter and serialize each scoring DAG as it is stored.
PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
bag = DagBag(dag_folder=sys.argv[1])
deadlines = {dag_id: DagSerialization.to_dict(dag)["dag"].get("deadline")
             for dag_id, dag in bag.dags.items() if dag_id.endswith("__batch_scoring")}
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "deadlines": deadlines}))
"""


@pytest.fixture(scope="module")
def deadlines(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp_path = tmp_path_factory.mktemp("parse")
    env = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "MLOPS_HOME": str(tmp_path / "mlops"),
        "PATH": "/usr/bin:/bin",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/a.db",
    }
    result = subprocess.run([sys.executable, "-c", PROBE, str(PROJECT_ROOT / "dags")], env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    return parsed["deadlines"]


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Inbox]:
    monkeypatch.setenv("MLOPS__ALERTS__SMTP_CONN_ID", "mlops_smtp")
    monkeypatch.setenv("MLOPS__ALERTS__EMAIL_TO", "oncall@example.com")
    monkeypatch.setenv("MLOPS__ALERTS__EMAIL_FROM", "airflow@example.com")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")  # no MLOps URL set: Airflow's
    with smtp_inbox(monkeypatch) as handler:
        yield handler


def _scheduler_context(dag_id: str, deadline: dt.datetime) -> dict:
    """What the scheduler hands a missed deadline's callback (``Deadline.handle_miss``): the run as the REST API
    returns it, and the deadline. A scheduled sweep of 2026-11-10, queued at midnight and still running."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse

    queued = dt.datetime(2026, 11, 11, tzinfo=dt.UTC)
    run = {
        "run_id": "scheduled__2026-11-10T00:00:00+00:00", "dag_id": dag_id, "logical_date": queued - dt.timedelta(1),
        "queued_at": queued, "start_date": queued, "end_date": None, "duration": None,
        "data_interval_start": queued - dt.timedelta(1), "data_interval_end": queued, "run_after": queued,
        "last_scheduling_decision": None, "run_type": "scheduled", "state": "running", "triggered_by": None,
        "triggering_user_name": None, "conf": {}, "note": None, "dag_versions": [], "bundle_version": None,
        "dag_model": {"dag_display_name": dag_id}, "partition_key": None, "partition_date": None,
    }  # fmt: skip
    return {
        "dag_run": DAGRunResponse.model_validate(run).model_dump(mode="json"),
        "deadline": {"id": "0193-deadline", "deadline_time": deadline},
    }


def test_every_scoring_dag_carries_a_deadline_alert(deadlines: dict) -> None:
    assert set(deadlines) == {f"{model}__batch_scoring" for model in MODELS}
    for dag_id, alerts in deadlines.items():
        (alert,) = alerts
        assert alert["reference"] == {"reference_type": "DagRunQueuedAtDeadline"}, dag_id
        assert alert["interval"]["__data__"] == 6 * 3600, dag_id  # scoring.deadline_hours' default
        callback = alert["callback"]
        assert callback["__classname__"].endswith(".AsyncCallback"), dag_id  # run by the triggerer
        assert callback["__data__"]["path"] == "mlops.airflow.notifiers.scores_late"
        assert callback["__data__"]["kwargs"] == {"model": dag_id.split("__")[0], "deadline_hours": 6.0}


def test_a_missed_deadline_sends_a_late_alert_by_mail_and_slack(
    deadlines: dict, inbox: _Inbox, slack: list[dict]
) -> None:
    """The parsed DAG's callback, imported by its path and awaited as the triggerer does (``CallbackTrigger``)."""
    from airflow.triggers.callback import CallbackTrigger

    dag_id = "card_transactions__batch_scoring"
    callback = deadlines[dag_id][0]["callback"]["__data__"]
    context = _scheduler_context(dag_id, dt.datetime(2026, 11, 11, 6, tzinfo=dt.UTC))
    trigger = CallbackTrigger(
        callback_path=callback["path"], callback_kwargs={**callback["kwargs"], "context": context}
    )

    async def run() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(run())
    assert events[-1]["state"] == "success", events[-1]
    assert events[-1]["body"] == {"log": "written", "email": "sent", "slack": "sent"}

    (message,) = inbox.messages
    assert message["Subject"].startswith(f"[mlops] LATE {dag_id} 2026-11-10: scores not committed by 2026-11-11 06:00")
    body = _body(message)
    assert "6 h after the run was queued" in body and "queued at 2026-11-11 00:00 UTC" in body
    assert f"https://airflow.example.com/dags/{dag_id}/runs/scheduled__2026-11-10T00%3A00%3A00%2B00%3A00" in body
    (post,) = slack
    assert f"LATE {dag_id} 2026-11-10" in post["text"] and "scoring.deadline_hours = 6" in post["text"]


def test_a_null_deadline_means_no_deadline(tmp_path: Path) -> None:
    from mlops.airflow.dags.scoring import build

    env = {"MLOPS_HOME": str(tmp_path), "MLOPS__SCORING__DEADLINE_HOURS": "null"}
    dag = build(load_settings(model="card_transactions", env=env))
    assert not dag.deadline
    assert "a late run sends no alert" in (dag.doc_md or "")
    dag = build(load_settings(model="card_transactions", env={**env, "MLOPS__SCORING__DEADLINE_HOURS": "0.5"}))
    (alert,) = dag.deadline
    assert alert.interval == dt.timedelta(minutes=30) and alert.callback.kwargs["deadline_hours"] == 0.5
