"""Approvers hear of an open promotion request: by e-mail (a real local SMTP server) and Slack (a local webhook).

The notice is what the manual policy's approval step sends before it waits; connections come from the
environment (``AIRFLOW_CONN_*``), as a deployment would set them.
"""

from __future__ import annotations

import logging
import os

import pytest

from mlops.airflow.notifiers import LEGACY_ENV, approval_requested
from tests.plugins.test_alerts import _body, _Inbox, inbox  # noqa: F401 - inbox is a fixture

DAG_ID = "fraud__continuous_training"
GATE_REPORT = "http://mlflow.example.com/#/experiments/1/runs/abc/artifacts/gate_report.html"


def _notice(approvers: list[str]) -> dict[str, str]:
    return approval_requested("fraud", "7", DAG_ID, approvers=approvers, timeout_hours=24,
                              gate_report_url=GATE_REPORT, run_id="manual__1", task_id="approve")  # fmt: skip


def _no_alert_config(monkeypatch: pytest.MonkeyPatch, keep: tuple[str, ...] = ()) -> None:
    """Only what the test sets configures alerts: no deployment config, no ``MLOPS__ALERTS__*`` variables."""
    monkeypatch.delenv("MLOPS_CONFIG", raising=False)
    for name in os.environ:
        if name.startswith("MLOPS__ALERTS__") or (name in LEGACY_ENV.values() and name not in keep):
            monkeypatch.delenv(name)


def test_approvers_get_a_mail_and_a_slack_message_linking_to_required_actions(
    inbox: _Inbox,  # noqa: F811 - the fixture imported above
    slack: list[dict],
) -> None:
    outcome = _notice(["alice", "bob"])

    assert outcome == {"log": "written", "email": "sent", "slack": "sent"}
    (message,) = inbox.messages
    (post,) = slack
    link = f"http://airflow.example.com/dags/{DAG_ID}/required_actions"
    assert "APPROVAL NEEDED" in message["Subject"]
    assert "promotion of fraud v7 waits for approval" in message["Subject"]
    for text in (_body(message), post["text"]):
        assert "promotion of fraud v7 waits for approval" in text
        assert "approvers: alice, bob" in text and "within 24 h" in text
        assert link in text and GATE_REPORT in text


def test_the_notice_is_escaped_for_slack_and_has_no_link_without_the_airflow_url(
    monkeypatch: pytest.MonkeyPatch, slack: list[dict]
) -> None:
    _no_alert_config(monkeypatch, keep=("MLOPS_ALERT_SLACK_CONN_ID",))

    _notice(["<!channel>"])

    (post,) = slack
    assert "<!channel>" not in post["text"] and "&lt;!channel&gt;" in post["text"]
    assert "required_actions" not in post["text"] and GATE_REPORT in post["text"]


def test_with_no_channel_configured_the_notice_is_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _no_alert_config(monkeypatch)

    with caplog.at_level(logging.INFO, logger="mlops.notify"):
        outcome = _notice([])

    assert outcome == {"log": "written"}
    (record,) = [record for record in caplog.records if record.name == "mlops.notify"]
    assert "promotion of fraud v7 waits for approval" in record.getMessage()
