"""Fixtures of the fault suite: the fork server for killed processes, the base state and a private copy per case.

Every test module here sets ``pytestmark = pytest.mark.reliability``: ``make test`` leaves them out, ``.ci/run``
runs them after it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.context import BaseContext
from pathlib import Path

import pytest

from mlops.config import Settings
from tests.reliability import faults
from tests.reliability.world import Base, Postgres, build_base, copy_home, settings_for


@pytest.fixture(scope="session")
def forkserver() -> BaseContext:
    """Children are forked from a server that imported the heavy modules once (seconds saved per kill)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(faults.PRELOAD)
    from multiprocessing import forkserver as server

    server.ensure_running()  # it imports while the base state is built
    return context


@pytest.fixture(scope="session")
def base(forkserver: BaseContext, tmp_path_factory: pytest.TempPathFactory) -> Base:
    return build_base(tmp_path_factory.mktemp("base") / "home")


@pytest.fixture
def home(base: Base, tmp_path: Path) -> Path:
    """A private copy of the base state for one case."""
    return copy_home(base, tmp_path / "home")


@pytest.fixture
def settings(home: Path) -> Settings:
    return settings_for(home)


@pytest.fixture(autouse=True)
def quick_mlflow_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that is gone fails a request at once (MLflow retries 7 times with backoff by default)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL 15 cluster for the ledger (skipped without the binaries or a driver)."""
    from tests.reliability.world import PG_BIN

    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found under {PG_BIN}")
    pytest.importorskip("psycopg2")
    cluster = Postgres()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()
