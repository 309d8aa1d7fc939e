"""`mlops doctor`: one line per piece the platform needs, ok or FAIL with what to fix, and it never hangs."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from mlops.cli import main

LOCAL = ["config", "mlflow", "lake card_transactions", "lake customer_churn", "dvc remote", "data registry", "ledger"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    for key in ("MLOPS_CONFIG", "MLOPS_MODEL", "MLOPS_MODELS_DIR", "MLOPS_AIRFLOW_URL", "MLOPS__ALERTS__AIRFLOW_URL"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


@pytest.fixture
def airflow_api() -> Iterator[str]:
    """A stand-in for the Airflow API server's health endpoint (a healthy metadatabase and scheduler)."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            healthy = self.path == "/api/v2/monitor/health"
            body = json.dumps({"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}}).encode()
            self.send_response(200 if healthy else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, dict[str, str]]]:
    code = main(["doctor", "--json", *argv])
    result = json.loads(capsys.readouterr().out)
    return code, {check["name"]: check for check in result["checks"]}


def test_a_healthy_embedded_setup_is_ok(
    home: Path, airflow_api: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["data", "generate", "--model", "card_transactions", "--start", "2026-11-01", "--rows-per-day", "200"]
    assert main(argv) == 0
    capsys.readouterr()
    monkeypatch.setenv("MLOPS_AIRFLOW_URL", airflow_api)
    code, checks = _doctor(capsys)
    assert code == 0
    assert {name: check["status"] for name, check in checks.items()} == dict.fromkeys([*LOCAL, "airflow"], "ok")
    assert "1 raw day(s), newest 2026-11-01" in checks["lake card_transactions"]["detail"]
    assert main(["doctor"]) == 0  # one line each, for people
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * len(checks)

    monkeypatch.delenv("MLOPS_AIRFLOW_URL")  # nothing to check is not a failure
    code, checks = _doctor(capsys)
    assert code == 0 and checks["airflow"]["status"] == "skip" and "MLOPS_AIRFLOW_URL" in checks["airflow"]["detail"]


def test_unreachable_services_fail_each_naming_it(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mlflow, airflow = f"http://127.0.0.1:{_closed_port()}", f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLOPS__MLFLOW__TRACKING_URI", mlflow)
    monkeypatch.setenv("MLOPS_AIRFLOW_URL", airflow)
    code = main(["doctor"])
    captured = capsys.readouterr()
    assert code == 1 and captured.err == "mlops doctor: 2 check(s) failed: mlflow, airflow\n"
    failed = [line for line in captured.out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 2
    assert failed[0].split()[1] == "mlflow" and f"MLflow at {mlflow}/health is unreachable" in failed[0]
    assert "fix: start MLflow or set mlflow.tracking_uri" in failed[0]
    assert failed[1].split()[1] == "airflow" and f"the Airflow API at {airflow}" in failed[1]
    code, checks = _doctor(capsys)
    assert code == 1 and [name for name, check in checks.items() if check["status"] == "ok"] == LOCAL[:1] + LOCAL[2:]
    configured = f"http://127.0.0.1:{_closed_port()}"  # the alerts section's URL wins over the env var
    monkeypatch.setenv("MLOPS__ALERTS__AIRFLOW_URL", configured)
    code, checks = _doctor(capsys)
    assert f"the Airflow API at {configured}/api/v2/monitor/health" in checks["airflow"]["detail"]


def test_a_service_that_never_answers_fails_after_the_timeout(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("MLOPS_AIRFLOW_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        code, checks = _doctor(capsys, "--timeout", "0.5")
    assert code == 1 and checks["airflow"]["status"] == "FAIL"
    assert "0.5" in checks["airflow"]["detail"] and checks["airflow"]["fix"]


def test_a_broken_model_file_fails_the_config_check_naming_file_and_key(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "fraud.yaml").write_text("training:\n  window_days: 0\n")
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    code, checks = _doctor(capsys)
    assert code == 1 and checks["config"]["status"] == "FAIL"
    assert "fraud.yaml" in checks["config"]["detail"] and "window_days" in checks["config"]["detail"]
