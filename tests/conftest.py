"""Shared fixtures: every test gets its own MLOPS_HOME (lake, DVC registry and remote, Airflow DB)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from mlops.config import Settings, load_settings
from mlops.data.lake import Lake
from mlops.data.landing import land_days

DAY = dt.date(2026, 11, 10)
ROWS = 5_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={"MLOPS_HOME": str(tmp_path / "mlops")})


@pytest.fixture
def lake(settings: Settings) -> Lake:
    return Lake.from_settings(settings)


@pytest.fixture
def landed_day(settings: Settings) -> dt.date:
    """One good raw day of synthetic transactions in the lake."""
    land_days(settings, DAY, days=1, rows_per_day=ROWS, seed=7)
    return DAY


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server over real HTTP on a free port: boto3, s3fs and DVC all talk to it as to S3."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials and endpoint as a deployment would set them (env), for this test only."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """A local stand-in for Slack's incoming webhook: records the JSON it is posted."""
    posted: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SLACK", json.dumps({"conn_type": "slackwebhook", "password": url}))
    monkeypatch.setenv("MLOPS_ALERT_SLACK_CONN_ID", "mlops_slack")
    try:
        yield posted
    finally:
        server.shutdown()
