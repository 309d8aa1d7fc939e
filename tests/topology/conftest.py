"""Fixtures of the topology suite: one multi-process deployment of the platform per session.

Every test module here sets ``pytestmark = pytest.mark.topology``: ``make test`` leaves them out, ``.ci/run``
runs them after the fault suite (``.venv/bin/python -m pytest -m topology tests/topology``). Logs of every
process (and the task logs) are in ``var/test-artifacts/topology/``; a failed test prints their tails.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.reliability.world import PG_BIN
from tests.topology.deployment import ARTIFACTS, AWS, Deployment


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """PostgreSQL, moto S3, the MLflow server and Airflow's four components, started once and stopped after."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found under {PG_BIN}")
    pytest.importorskip("psycopg2")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    root = tmp_path_factory.mktemp("topology")
    deployment = Deployment(root)
    print(f"\n==> topology deployment in {root}; logs in {ARTIFACTS}", flush=True)
    try:
        deployment.start()
    except BaseException:
        print(deployment.log_tails(), flush=True)
        deployment.stop()
        raise
    # The test process lands data and reads the lake like any other producer or reader: same S3 credentials; it
    # reads MLflow as the api-server does, with the reader's login.
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**AWS, "AWS_ENDPOINT_URL": deployment.s3, **deployment.mlflow_login("reader")}.items():
            patch.setenv(key, value)
        try:
            yield deployment
        finally:
            deployment.step("stopping the deployment")
            deployment.stop()
            if deployment.swept:
                print("killed processes left behind by the deployment:", *deployment.swept, sep="\n  ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed topology test shows the tail of every component's log."""
    report = yield
    running = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and isinstance(running, Deployment):
        report.sections.append(("topology: component logs (tails)", running.log_tails()))
    return report
