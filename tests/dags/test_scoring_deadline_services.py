"""A missed scoring deadline alerts, end to end: Airflow's own scheduler and triggerer, a scoring run that cannot
finish (its pool has no slot) and a deadline of a few seconds; the LATE alert reaches a local Slack webhook.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from mlops.runtime import airflow
from tests.dags.conftest import dag_id
from tests.services import stop_group

pytestmark = [pytest.mark.airflow, pytest.mark.services]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SCORING = dag_id("batch_scoring")


@contextmanager
def _component(name: str, env: dict[str, str], logs: Path) -> Iterator[Path]:
    """``airflow <name>`` in its own process group, stopped at the end; yields its log file."""
    log = logs / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen([AIRFLOW, name], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:
        yield log
    finally:
        stop_group(process, grace=20)


def test_a_scoring_run_past_its_deadline_alerts_late(
    dag_env: dict[str, str], airflow_home: Path, slack: list[dict], tmp_path: Path
) -> None:
    env = {
        **dag_env,
        "MLOPS__SCORING__DEADLINE_HOURS": "0.002",  # 7.2 s after the run is queued
        "MLOPS__DAGS__POOL": "held",  # a pool without slots: the run's tasks never start, it never finishes
        "MLOPS__ALERTS__SLACK_CONN_ID": "mlops_slack",
        "AIRFLOW_CONN_MLOPS_SLACK": os.environ["AIRFLOW_CONN_MLOPS_SLACK"],  # the local webhook (`slack` fixture)
        "AIRFLOW__API__BASE_URL": "http://airflow.example:8080",
        "AIRFLOW__CORE__PARALLELISM": "1",
    }
    airflow(["dags", "reserialize"], env, capture_output=True)  # the DAGs as the dag-processor stores them
    airflow(["pools", "set", "held", "0", "no slot: tasks wait"], env, capture_output=True)
    airflow(["dags", "unpause", SCORING], env, capture_output=True)  # the scheduler starts yesterday's sweep

    with ExitStack() as stack:
        logs = [stack.enter_context(_component(name, env, tmp_path)) for name in ("scheduler", "triggerer")]
        waited = time.monotonic() + 150
        while not slack and time.monotonic() < waited:
            time.sleep(1)
        assert slack, "no LATE alert within 150 s:\n" + "\n".join(log.read_text()[-3000:] for log in logs)

    (post,) = slack
    text = post["text"]
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        ((run_id, logical_date),) = db.execute("SELECT run_id, logical_date FROM dag_run WHERE dag_id = ?", (SCORING,))
    day = logical_date[:10]  # the scheduled sweep's day: the one that just ended
    assert re.search(rf"LATE {SCORING} {day}: scores not committed by \d{{4}}-\d\d-\d\d \d\d:\d\d UTC", text), text
    assert f"http://airflow.example:8080/dags/{SCORING}/runs/{quote(run_id, safe='')}" in text
    assert "0.002 h after the run was queued" in text
