"""`make demo`'s Airflow: one process running DAG run after DAG run with Airflow's own ``dag.test()``.

A good and a corrupted day through the real ``data_validation`` DAG in the same process: the runs land in the
metadata DB as ``airflow dags test`` runs do, each run's task logs go to its own file, a failed run is answered
(not the end of the process) and the next request still runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mlops.config import load_settings
from mlops.data.faults import inject_fault
from mlops.data.lake import REASON, VALIDATED, Lake
from mlops.data.landing import land_days
from mlops.demo import DagRunner
from tests.dags.conftest import dag_id, task_states

#: Not in `make test` (a minute and more on 2 cores): the onboarding suite, run by .ci/run, is the newcomer's path.
pytestmark = [pytest.mark.airflow, pytest.mark.onboarding]
GOOD, BAD = dt.date(2026, 11, 5), dt.date(2026, 11, 6)


def test_one_process_runs_each_dag_run_with_its_own_log(
    dag_env: dict[str, str], airflow_home: Path, tmp_path: Path
) -> None:
    settings = load_settings(env=dag_env)
    lake = Lake.from_settings(settings)
    land_days(settings, GOOD, days=2, rows_per_day=1_000, seed=3)
    inject_fault(lake, BAD, "out_of_range")
    logs = tmp_path / "logs"
    logs.mkdir()
    runner = DagRunner(dag_env, logs)
    try:
        bad = runner.ask({"dag_id": dag_id("data_validation"), "day": BAD.isoformat(), "log": str(logs / "bad.log")})
        good = runner.ask({"dag_id": dag_id("data_validation"), "day": GOOD.isoformat(), "log": str(logs / "good.log")})
        errors = runner.ask({"import_errors": True})
    finally:
        runner.close()
    assert runner.process.returncode == 0

    assert (bad, good) == ({"state": "failed"}, {"state": "success"})
    assert errors == {"import_errors": []}
    assert task_states(airflow_home, dag_id("data_validation"), GOOD) == dict.fromkeys(
        ["wait_for_partition", "validate_partition", "snapshot_partition", "publish_validated"], "success"
    )
    assert task_states(airflow_home, dag_id("data_validation"), BAD)["validate_partition"] == "failed"
    assert lake.exists(lake.marker("raw", GOOD, VALIDATED)) and lake.exists(lake.marker("quarantine", BAD, REASON))
    # each run's task logs in its own file, nothing of the other day's run
    bad_log, good_log = (logs / "bad.log").read_text(), (logs / "good.log").read_text()
    assert "[min] column 'amount'" in bad_log and f"dt={BAD}" in bad_log and f"dt={GOOD}" not in bad_log
    assert "validate_partition" in good_log and f"dt={GOOD}" in good_log
    assert "[min] column" not in good_log and f"dt={BAD}" not in good_log
