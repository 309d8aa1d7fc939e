"""Shared fixtures: every test gets its own MLOPS_HOME (lake, DVC registry and remote, Airflow DB)."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
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
