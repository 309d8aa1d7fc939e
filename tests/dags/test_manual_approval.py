"""Promotion policy `manual`: the HITL approval is answered through Airflow's REST API, approve and reject.

`airflow dags test` runs the approval trigger in line; a real api-server on the same metadata DB
takes the human's answer (`PATCH .../taskInstances/approve_promotion/-1/hitlDetails`), as the UI does.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.config import load_settings
from mlops.data.landing import land_days
from mlops.registry import CHALLENGER, CHAMPION, Registry
from mlops.validation import validate_and_version
from tests.dags.conftest import dag_id, task_states

pytestmark = [pytest.mark.airflow, pytest.mark.services]
START, DAYS = dt.date(2026, 9, 1), 10
AS_OF = START + dt.timedelta(days=DAYS - 1)
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """A tiny client of the Airflow REST API with a token from the simple auth manager."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = json.load(urllib.request.urlopen(f"{base}/auth/token", timeout=10))["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.base}/api/v2{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


@pytest.fixture
def manual_env(dag_env: dict[str, str]) -> dict[str, str]:
    return {
        **dag_env,
        "MLOPS__PROMOTION__POLICY": "manual",
        # the API's user in all-admins mode; `dags test` runs are triggered by "dag_test", another user
        "MLOPS__PROMOTION__APPROVERS": '["Anonymous"]',
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-only-secret-for-the-api-server",
        "AIRFLOW__API__SECRET_KEY": "test-only-secret-key",
    }


@pytest.fixture
def api(manual_env: dict[str, str], tmp_path: Path) -> Iterator[Api]:
    port = _free_port()
    log = open(tmp_path / "api-server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen([AIRFLOW, "api-server", "--port", str(port)], env=manual_env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    tail = (tmp_path / "api-server.log").read_text()[-3000:]
                    raise RuntimeError(f"api-server did not start:\n{tail}") from None
                time.sleep(1)
        yield Api(base)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        log.close()


def _run_and_answer(api: Api, env: dict[str, str], answer: str) -> subprocess.CompletedProcess:
    """Start `dags test`, wait for the approval request to appear in the API, answer it, wait for the end."""
    run = subprocess.Popen([AIRFLOW, "dags", "test", dag_id("continuous_training"), AS_OF.isoformat(), "-c",
                            json.dumps({"reason": f"manual policy: {answer}"})], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while True:
            details = api.call("GET", f"/dags/{dag_id('continuous_training')}/dagRuns/~/hitlDetails")["hitl_details"]
            pending = [d for d in details if not d.get("response_received")]
            if pending:
                break
            assert run.poll() is None, "the run ended without asking for approval:\n" + run.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "no approval request within 10 minutes"
            time.sleep(2)
        request = pending[0]
        assert "Promote" in request["subject"] and "Gate evidence" in request["body"]
        run_id = request["task_instance"]["dag_run_id"]
        task = f"/dags/{dag_id('continuous_training')}/dagRuns/{run_id}/taskInstances/approve_promotion/-1"
        api.call("PATCH", f"{task}/hitlDetails", {"chosen_options": [answer], "params_input": {}})
        output, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    return subprocess.CompletedProcess(run.args, run.returncode, output, "")


def test_manual_policy_approve_then_reject(manual_env: dict[str, str], api: Api, airflow_home: Path) -> None:
    settings = load_settings(env=manual_env)
    assert settings.promotion.policy == "manual"
    land_days(settings, START, DAYS, rows_per_day=6_000, seed=5)
    for offset in range(DAYS):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    registry = Registry(settings)

    approved = _run_and_answer(api, manual_env, "Approve")
    assert approved.returncode == 0, approved.stdout[-3000:]
    champion = registry.alias_version(CHAMPION)
    assert champion is not None
    assert task_states(airflow_home, dag_id("continuous_training"), AS_OF)["promote"] == "success"
    moves = registry.ledger().moves(settings.model_name, CHAMPION)
    assert (moves[-1].to_version, moves[-1].human) == (champion, "Anonymous"), "the approver is recorded, not the DAG"

    rejected = _run_and_answer(api, manual_env, "Reject")
    assert rejected.returncode == 0, rejected.stdout[-3000:]
    assert task_states(airflow_home, dag_id("continuous_training"), AS_OF)["promote"] == "skipped"
    assert registry.alias_version(CHAMPION) == champion, "a rejected candidate never becomes champion"
    assert registry.alias_version(CHALLENGER) != champion, "it stays the challenger"
    decisions = [(d.version, d.decision, d.human) for d in registry.ledger().decisions(settings.model_name)]
    assert decisions == [
        (champion, "approved", "Anonymous"),
        (registry.alias_version(CHALLENGER), "rejected", "Anonymous"),
    ]
