"""The platform's MLflow logins on MLflow's basic-auth server, as compose runs it (``mlflow-users``,
docs/production.md): the tasks write as ``mlops``, the MLOps page reads as ``mlops-reader``, neither is an admin.

The whole chain under these logins runs in the topology suite; this checks what each login may and may not do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops.config import PROJECT_ROOT, load_settings
from mlops.registry import Registry
from tests.reliability.world import free_port
from tests.services import stop_group, wait_http

pytestmark = pytest.mark.services
ADMIN = ("admin", "admin-password-1234")
SHIPPED_INI = PROJECT_ROOT / "include" / "docker" / "mlflow-basic-auth.ini"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``mlflow server --app-name basic-auth`` with the shipped auth config (its user store moved into tmp_path)."""
    ini = tmp_path / "basic_auth.ini"
    store = f"database_uri = sqlite:///{tmp_path / 'auth.db'}"
    ini.write_text("\n".join(store if line.startswith("database_uri") else line
                             for line in SHIPPED_INI.read_text().splitlines()) + "\n")  # fmt: skip
    port = free_port()
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1], "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-session-key",
           "MLFLOW_DISABLE_TELEMETRY": "true"}  # fmt: skip
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--app-name", "basic-auth",
               "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--artifacts-destination",
               str(tmp_path / "artifacts"), "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]  # fmt: skip
    log = tmp_path / "mlflow-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, log, timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)


def provision(url: str, pipeline_password: str, reader_password: str) -> str:
    """What compose's one-shot ``mlflow-users`` service runs."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1], "MLOPS_MLFLOW_PIPELINE_PASSWORD": pipeline_password,
           "MLOPS_MLFLOW_READER_PASSWORD": reader_password}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "mlops.mlflow_users"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def login(monkeypatch: pytest.MonkeyPatch, url: str, user: str, password: str) -> Any:
    """An MLflow client (and the auth client) that logs in as ``user``, as a component's env makes it."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    return MlflowClient(url)


def refused(call: Callable[[], Any]) -> str:
    """The HTTP refusal of a call that must not be allowed (403 forbidden, 401 unknown login)."""
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as refusal:
        call()
    message = str(refusal.value)
    assert "403" in message or "401" in message, message
    return message


def test_the_tasks_and_the_page_work_as_their_own_logins_and_neither_is_an_admin(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.server import get_app_client

    # An experiment and a model the admin made before (a deployment that used the admin's login until now).
    admin = login(monkeypatch, server, *ADMIN)
    old_experiment = admin.create_experiment("card_transactions")
    admin.create_registered_model("card_transactions")
    printed = provision(server, "pipeline-password-1", "reader-password-1")
    assert "mlops: created, not admin" in printed and "mlops-reader: created, not admin" in printed
    assert "password set" in provision(server, "pipeline-password-1", "reader-password-1"), "idempotent"

    # The tasks: runs, metrics and artifacts in the admin's experiment and a new one, versions and aliases.
    tasks = login(monkeypatch, server, "mlops", "pipeline-password-1")
    # A model with no registered model yet has no champion (MLflow answers its users 403 there, not 404).
    new_model = load_settings(conf={"mlflow": {"tracking_uri": server}, "model": {"name": "customer_churn"}}, env={})
    assert Registry(new_model).alias_version("champion") is None
    run = tasks.create_run(old_experiment).info.run_id
    tasks.log_metric(run, "auc_pr", 0.5)
    tasks.log_text(run, "gate report", "gate_report.txt")
    version = tasks.create_model_version("card_transactions", f"runs:/{run}/model", run).version
    tasks.set_registered_model_alias("card_transactions", "champion", version)
    tasks.set_registered_model_alias("card_transactions", "challenger", version)
    tasks.delete_registered_model_alias("card_transactions", "challenger")  # a rollback deletes aliases
    tasks.create_experiment("customer_churn")
    tasks.create_registered_model("customer_churn")
    auth = get_app_client("basic-auth", tracking_uri=server)
    refused(lambda: auth.create_user("intruder", "intruder-password"))
    refused(lambda: auth.update_user_admin("mlops", True))
    # MLflow lets only MANAGE delete an alias, and MANAGE on a model may share that model; never an experiment.
    refused(lambda: auth.grant_user_permission("mlops-reader", "experiment", old_experiment, "EDIT"))

    # The page: reads everything the tasks wrote, changes nothing.
    page = login(monkeypatch, server, "mlops-reader", "reader-password-1")
    assert page.get_run(run).data.metrics == {"auc_pr": 0.5}
    assert page.get_model_version_by_alias("card_transactions", "champion").version == version
    assert {m.name for m in page.search_registered_models()} == {"card_transactions", "customer_churn"}
    refused(lambda: page.set_registered_model_alias("card_transactions", "champion", version))
    refused(lambda: page.create_model_version("card_transactions", f"runs:/{run}/model", run))
    refused(lambda: page.log_metric(run, "auc_pr", 1.0))
    refused(lambda: get_app_client("basic-auth", tracking_uri=server).create_user("intruder", "intruder-password"))

    # A password changed in .env is applied on the next `up`; the old one no longer logs in.
    provision(server, "pipeline-password-1", "reader-password-2")
    refused(lambda: login(monkeypatch, server, "mlops-reader", "reader-password-1").get_run(run))
    assert login(monkeypatch, server, "mlops-reader", "reader-password-2").get_run(run).info.run_id == run


def test_a_missing_password_is_named(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_MLFLOW_", "MLFLOW_AUTH_"))}
    env.update(MLFLOW_AUTH_ADMIN_USERNAME="admin", MLFLOW_AUTH_ADMIN_PASSWORD="x", MLOPS_MLFLOW_PIPELINE_PASSWORD="p")
    done = subprocess.run([sys.executable, "-m", "mlops.mlflow_users", "--tracking-uri", "http://127.0.0.1:9"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode != 0 and "MLOPS_MLFLOW_READER_PASSWORD is not set" in done.stderr, done.stderr
