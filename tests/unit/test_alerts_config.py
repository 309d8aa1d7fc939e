"""Where alerts go and what the UI links to come from the deployment's ``alerts:`` and ``ui:`` sections; the
legacy environment variables (``MLOPS_ALERT_*``, ``MLOPS_AIRFLOW_URL``, ``MLOPS_MLFLOW_UI_URL``) only fill
what the sections leave unset. Alerts go to a local Slack webhook (the ``slack`` fixture), as in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.airflow.notifiers import Alert, alert_settings, deliver
from mlops.config import load_settings
from mlops.web import urls


def _deployment(tmp_path: Path, text: str) -> str:
    config = tmp_path / "deployment.yaml"
    config.write_text(text)
    return str(config)


def test_the_alerts_section_wins_over_the_legacy_env(
    slack: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_ALERT_SLACK_CONN_ID", "no_such_connection")  # the legacy setting, now overridden
    monkeypatch.setenv("MLOPS_AIRFLOW_URL", "http://legacy.example.com")
    monkeypatch.setenv(
        "MLOPS_CONFIG",
        _deployment(tmp_path, "alerts: {slack_conn_id: mlops_slack, airflow_url: 'https://airflow.example.com'}\n"),
    )
    outcome = deliver(Alert("failure", dag_id="fraud__batch_scoring", day="2026-11-10", reason="boom",
                            task_id="score", run_id="manual__1"))  # fmt: skip
    assert outcome["slack"] == "sent"
    (text,) = [post["text"] for post in slack]
    assert "open: https://airflow.example.com/dags/fraud__batch_scoring/runs/manual__1/tasks/score" in text
    assert "legacy.example.com" not in text


def test_the_legacy_env_fills_only_what_the_section_leaves_unset(tmp_path: Path) -> None:
    env = {
        "MLOPS_HOME": str(tmp_path),
        "MLOPS_CONFIG": _deployment(tmp_path, "alerts: {smtp_conn_id: deployment_smtp}\n"),
        "MLOPS_ALERT_SMTP_CONN_ID": "legacy_smtp",
        "MLOPS_ALERT_EMAIL_TO": "oncall@example.com, ml-team@example.com",
        "MLOPS_ALERT_EMAIL_FROM": "airflow@example.com",
    }
    alerts = alert_settings(env)
    assert alerts.smtp_conn_id == "deployment_smtp"
    assert alerts.email_to == ["oncall@example.com", "ml-team@example.com"]
    assert alerts.email_from == "airflow@example.com"
    assert alerts.slack_conn_id is None
    legacy_link = alert_settings({**env, "MLOPS_AIRFLOW_URL": "http://admin:hunter2@airflow:8080"}).airflow_url
    assert legacy_link == "http://airflow:8080"  # the legacy value is not checked, but its password is never shown


def test_a_deployment_config_that_does_not_load_still_alerts_through_the_legacy_env(
    slack: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_CONFIG", _deployment(tmp_path, "alerts: {slack_conn_id: [not, a, name]}\n"))
    outcome = deliver(Alert("quarantine", dag_id="fraud__data_validation", day="2026-11-10", reason="bad day"))
    assert outcome["slack"] == "sent" and "QUARANTINED fraud__data_validation" in slack[0]["text"]


def test_the_ui_section_wins_over_the_legacy_mlflow_ui_env(tmp_path: Path) -> None:
    legacy = {urls.MLFLOW_UI_ENV: "http://legacy-mlflow:5000"}
    configured = load_settings(env={"MLOPS_HOME": str(tmp_path), "MLOPS__UI__MLFLOW_UI_URL": "https://mlflow.example/"})
    assert urls.mlflow_ui(configured, legacy) == "https://mlflow.example"
    unset = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    assert urls.mlflow_ui(unset, legacy) == "http://legacy-mlflow:5000"


def test_links_fall_back_to_airflows_own_base_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment that sets neither alerts.airflow_url nor MLOPS_AIRFLOW_URL links to the UI Airflow knows."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://admin:hunter2@airflow.example.com/airflow/")
    env = {"MLOPS_HOME": str(tmp_path)}
    alerts = alert_settings(env)
    assert alerts.airflow_url == "https://airflow.example.com/airflow"
    alert = Alert("late", dag_id="fraud__batch_scoring", day="2026-11-10", reason="late", run_id="scheduled__1")
    text = alert.text(alerts.airflow_url)
    assert "open: https://airflow.example.com/airflow/dags/fraud__batch_scoring/runs/scheduled__1" in text
    assert "hunter2" not in text and "admin" not in text
    assert alert_settings({**env, "MLOPS_AIRFLOW_URL": "http://legacy:8080"}).airflow_url == "http://legacy:8080"
    monkeypatch.delenv("AIRFLOW__API__BASE_URL")
    assert alert_settings(env).airflow_url is None  # nothing set anywhere: no link rather than a wrong one
