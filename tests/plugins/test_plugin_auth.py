"""The MLOps plugin in a real Airflow api-server: only logged-in users get its data.

Airflow serves plugin FastAPI apps without a login; the plugin checks the auth manager on every route.
Anonymous and wrong-token requests are refused (401/403), a browser asking for the page is sent to the
login page, a token from ``/auth/token`` (what the UI's session carries) gets the data.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlops.config import load_settings
from mlops.runtime import embedded_env, ensure_airflow_db

pytestmark = [pytest.mark.airflow, pytest.mark.services]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ENDPOINTS = ["/mlops/", "/mlops/static/app.js", "/mlops/api/models", "/mlops/api/models/card_transactions",
             "/mlops/api/models/card_transactions/drift", "/mlops/api/models/card_transactions/validation",
             "/mlops/api/models/card_transactions/scoring", "/mlops/metrics", "/mlops/models/card_transactions/",
             "/mlops/models/card_transactions/reports/drift/2026-11-10",
             "/mlops/dags/card_transactions__continuous_training/runs/manual__1",
             "/mlops/api/dags/card_transactions__continuous_training/runs/manual__1",
             "/mlops/api/drift"]  # fmt: skip  # the last: a path that does not exist still needs a login


def _up(url: str) -> bool:
    try:
        return _status(url)[0] == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def airflow_test_env(home: Path) -> dict[str, str]:
    """An embedded Airflow env of one admin with fixed test secrets, its metadata DB migrated."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS", "MLFLOW"))}
    base.update(MLOPS_HOME=str(home), AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin")
    base.update(AIRFLOW__API_AUTH__JWT_SECRET="test-only-jwt-secret", AIRFLOW__API__SECRET_KEY="test-only-key")
    env = embedded_env(load_settings(env=base), base=base)
    ensure_airflow_db(env)
    return env


@contextmanager
def airflow_api_server(env: dict[str, str], home: Path) -> Iterator[tuple[str, str]]:
    """A real Airflow api-server (with the plugin) on a free port and the env's metadata DB: (URL, admin token).

    Stopped (its process group) on exit; its log is ``home/api-server.log``."""
    port = _free_port()
    log = open(home / "api-server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _up(f"{url}/api/v2/monitor/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("api-server did not start:\n" + (home / "api-server.log").read_text()[-3000:])
            time.sleep(1)
        passwords = json.loads((Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated").read_text())
        login = json.dumps({"username": "admin", "password": passwords["admin"]}).encode()
        request = urllib.request.Request(f"{url}/auth/token", method="POST", data=login,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        yield url, json.load(urllib.request.urlopen(request, timeout=30))["access_token"]
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("plugin-auth")
    with airflow_api_server(airflow_test_env(home), home) as (url, token):
        yield url + "|" + token


def _split(server: str) -> tuple[str, str]:
    url, token = server.split("|", 1)
    return url, token


@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_and_wrong_tokens_are_refused(server: str, path: str) -> None:
    url, _ = _split(server)
    assert _status(url + path)[0] == 401
    assert _status(url + path, {"Authorization": "Bearer not-a-jwt"})[0] in (401, 403)
    assert _status(url + path, {"Cookie": "_token=forged"})[0] in (401, 403)


def test_a_browser_without_a_session_is_sent_to_the_login(server: str) -> None:
    url, _ = _split(server)
    status, _, headers = _status(url + "/mlops/", {"Accept": "text/html"})
    assert status == 303 and "/auth/login" in headers["location"]


def test_a_logged_in_user_gets_the_data(server: str) -> None:
    url, token = _split(server)
    bearer = {"Authorization": f"Bearer {token}"}
    status, body, _ = _status(url + "/mlops/api/models", bearer)
    assert status == 200 and json.loads(body)["models"][0]["model"] == "card_transactions"
    assert _status(url + "/mlops/api/models/card_transactions/drift", bearer)[0] == 200
    status, body, _ = _status(url + "/mlops/", {"Cookie": f"_token={token}"})  # the UI's session cookie
    assert status == 200 and b"static/app.js" in body
    status, body, _ = _status(url + "/mlops/metrics", bearer)
    assert status == 200 and b"mlops_metrics_errors_total" in body


def test_the_page_is_in_the_navigation(server: str) -> None:
    url, token = _split(server)
    status, body, _ = _status(url + "/api/v2/plugins", {"Authorization": f"Bearer {token}"})
    plugin = next(p for p in json.loads(body)["plugins"] if p["name"] == "mlops")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/mlops"
    view = plugin["external_views"][0]
    assert (view["name"], view["href"], view["url_route"], view["destination"]) == ("MLOps", "mlops/", "mlops", "nav")
    tabs = {view["destination"]: view["href"] for view in plugin["external_views"][1:]}
    assert tabs == {"dag_run": "mlops/dags/{DAG_ID}/runs/{RUN_ID}", "dag": "mlops/dags/{DAG_ID}/"}
    # The run tab on a run Airflow does not know: the page, with what the model's stores have (nothing yet).
    run = "/mlops/api/dags/card_transactions__continuous_training/runs/manual__2026-11-11T00:00:00%2B00:00"
    status, body, _ = _status(url + run, {"Authorization": f"Bearer {token}"})
    found = json.loads(body)
    assert status == 200 and found["known_to_airflow"] is False and found["training"]["candidate"] is None, found
