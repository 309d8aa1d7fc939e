"""Alerts reach people: through a real SMTP server (aiosmtpd) and a Slack incoming webhook, both on localhost.

The notifiers are called the way Airflow calls them (a task context); connections come from the
environment (``AIRFLOW_CONN_*``), as a deployment would set them.
"""

from __future__ import annotations

import email
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from types import SimpleNamespace

import pytest

from mlops.airflow.errors import error_policy
from mlops.airflow.notifiers import (
    ChampionChangeNotifier,
    DriftBreachNotifier,
    LogFailureNotifier,
)
from mlops.errors import Quarantined


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Inbox:
    """aiosmtpd handler keeping every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd API
        self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


def _body(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        part.get_payload(decode=True).decode() for part in parts if part.get_content_type().startswith("text/")
    )


@contextmanager
def smtp_inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Inbox]:
    """aiosmtpd on a free local port, reachable as the Airflow SMTP connection ``mlops_smtp``."""
    from aiosmtpd.controller import Controller

    handler = _Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                  "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 0}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SMTP", json.dumps(connection))
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Inbox]:
    monkeypatch.setenv("MLOPS_ALERT_SMTP_CONN_ID", "mlops_smtp")
    monkeypatch.setenv("MLOPS_ALERT_EMAIL_TO", "oncall@example.com, ml-team@example.com")
    monkeypatch.setenv("MLOPS_ALERT_EMAIL_FROM", "airflow@example.com")
    monkeypatch.setenv("MLOPS_AIRFLOW_URL", "http://airflow.example.com")
    with smtp_inbox(monkeypatch) as handler:
        yield handler


def _ti(dag_id: str, task_id: str, run_id: str, returned: object = None) -> SimpleNamespace:
    return SimpleNamespace(dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=1,
                           xcom_pull=lambda task_ids: returned)  # fmt: skip


def _failure_of(error: Exception) -> Exception:
    """What a task wrapped by the error policy raises for ``error`` (the exception Airflow hands the notifier)."""

    def body() -> None:
        raise error

    try:
        error_policy(body)()
    except Exception as raised:  # noqa: BLE001 - whatever the policy raises is what the notifier sees
        return raised
    raise AssertionError("the error policy swallowed the error")


def test_a_quarantine_is_mailed_with_dag_day_and_reason(inbox: _Inbox) -> None:
    reason = "raw/dt=2026-11-10 failed contract card_transactions v1: [min] column 'amount': -50.0"
    context = {"ti": _ti("data_validation", "validate_partition", "scheduled__2026-11-10T00:00:00+00:00"),
               "ds": "2026-11-10", "exception": _failure_of(Quarantined(reason))}  # fmt: skip
    LogFailureNotifier(hint="fix the producer, then clear the task").notify(context)

    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    subject, body = message["Subject"], _body(message)
    assert "QUARANTINED" in subject and "data_validation" in subject and "2026-11-10" in subject
    assert "column 'amount'" in body and "2026-11-10" in body and "data_validation" in body
    assert "fix the producer" in body
    assert "http://airflow.example.com/dags/data_validation/runs/" in body
    assert {address.strip() for address in message["To"].split(",")} == {"oncall@example.com", "ml-team@example.com"}


def test_a_failure_is_a_quarantine_by_its_type_not_its_text(inbox: _Inbox) -> None:
    """An error whose text happens to start with "ValidationFailed" moved no data: a failure, not a quarantine."""
    context = {"ti": _ti("continuous_training", "resolve_snapshot", "manual__2"), "ds": "2026-11-10",
               "exception": RuntimeError("ValidationFailed: a library's own error, nothing quarantined")}  # fmt: skip
    LogFailureNotifier().notify(context)
    (message,) = inbox.messages
    assert "QUARANTINED" not in message["Subject"] and "FAILED" in message["Subject"], message["Subject"]


def test_failures_drift_and_champion_changes_reach_mail_and_slack(inbox: _Inbox, slack: list[dict]) -> None:
    failure = {"ti": _ti("batch_scoring", "score_chunk", "manual__1"), "params": {"date": "2026-11-12"},
               "ds": "2026-11-13", "exception": RuntimeError("disk full\nTraceback ...")}  # fmt: skip
    LogFailureNotifier().notify(failure)
    DriftBreachNotifier(message="card_transactions v3: features {'amount': 0.41}", day="2026-11-20").notify(
        {"ti": _ti("drift_monitoring", "check_drift", "asset_triggered__x")}
    )
    move = {"from_version": "3", "to_version": "2", "reason": "latency regression", "actor": "airflow:model_rollback",
            "run": "manual__rb"}  # fmt: skip
    ChampionChangeNotifier().notify({"ti": _ti("model_rollback", "rollback", "manual__rb", move), "ds": "2026-11-21"})

    subjects = [message["Subject"] for message in inbox.messages]
    assert subjects[0].startswith("[mlops] FAILED batch_scoring 2026-11-12: disk full")  # the partition day wins
    assert subjects[1].startswith("[mlops] DRIFT drift_monitoring 2026-11-20")
    assert subjects[2].startswith("[mlops] ROLLED BACK model_rollback 2026-11-21: champion v3 -> v2")
    assert "latency regression" in _body(inbox.messages[2])
    texts = [post["text"] for post in slack]
    assert len(texts) == 3 and "FAILED batch_scoring 2026-11-12" in texts[0] and "amount" in texts[1]


def test_an_unreachable_channel_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": _free_port(),
                  "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 2, "retry_limit": 0}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SMTP", json.dumps(connection))
    monkeypatch.setenv("MLOPS_ALERT_SMTP_CONN_ID", "mlops_smtp")
    monkeypatch.setenv("MLOPS_ALERT_EMAIL_TO", "oncall@example.com")
    monkeypatch.setenv("MLOPS_ALERT_EMAIL_FROM", "airflow@example.com")
    from mlops.airflow.notifiers import Alert, deliver

    outcome = deliver(Alert("failure", dag_id="d", day="2026-11-10", reason="boom"))
    assert outcome["log"] == "written" and outcome["email"].startswith("failed")


def test_a_reason_that_looks_like_a_template_is_sent_as_written(inbox: _Inbox, slack: list[dict]) -> None:
    """The providers' notifiers render their fields as Jinja when called; an alert quotes data, never evaluated."""
    from mlops.airflow.notifiers import Alert, deliver

    reason = "column 'note' holds {{ conn.mlops_smtp.password }} and <!channel>"
    outcome = deliver(Alert("quarantine", dag_id="fraud__data_validation", day="2026-11-10", reason=reason))
    assert outcome == {"log": "written", "email": "sent", "slack": "sent"}
    assert "{{ conn.mlops_smtp.password }}" in inbox.messages[0]["Subject"]
    assert "{{ conn.mlops_smtp.password }} and &lt;!channel&gt;" in _body(inbox.messages[0])
    (text,) = [post["text"] for post in slack]
    assert "{{ conn.mlops_smtp.password }} and &lt;!channel&gt;" in text and "<!channel>" not in text
