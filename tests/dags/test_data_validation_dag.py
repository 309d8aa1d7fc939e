"""`airflow dags test data_validation D` on a good, a corrupted, a re-run and a never-arriving day."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.config import PROJECT_ROOT, load_settings
from mlops.data.faults import inject_fault
from mlops.data.lake import REASON, VALIDATED, Lake
from mlops.data.landing import land_days
from tests.dags.conftest import asset_events, dag_id, dags_test, task_states

pytestmark = pytest.mark.airflow
GOOD, BAD = dt.date(2026, 11, 5), dt.date(2026, 11, 6)


def test_good_day_is_versioned_and_announced_bad_day_is_quarantined(
    dag_env: dict[str, str], airflow_home: Path
) -> None:
    settings = load_settings(env=dag_env)
    lake = Lake.from_settings(settings)
    land_days(settings, GOOD, days=2, rows_per_day=3_000, seed=3)
    inject_fault(lake, BAD, "type_change")

    good = dags_test(dag_id("data_validation"), GOOD, dag_env)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    marker = lake.read_json(f"{lake.partition('raw', GOOD)}/{VALIDATED}")
    assert marker["rows"] == 3_000 and len(marker["dvc"]["revision"]) == 40
    assert marker["contract"]["version"] == "1.0.0" and marker["suite"]["unsuccessful_expectations"] == 0
    events = [json.loads(extra) for extra in asset_events(airflow_home, f"{settings.dataset.name}.validated")]
    assert {"date": GOOD.isoformat(), "rows": 3_000, "dvc_revision": marker["dvc"]["revision"]} in events

    rerun = dags_test(dag_id("data_validation"), GOOD, dag_env)
    assert rerun.returncode == 0
    assert marker.get("warnings", []) == [] and "validation warning" not in good.stdout + good.stderr
    again = lake.read_json(f"{lake.partition('raw', GOOD)}/{VALIDATED}")
    assert again["dvc"]["revision"] == marker["dvc"]["revision"], "re-running a date changes nothing"

    bad = dags_test(dag_id("data_validation"), BAD, dag_env)
    assert bad.returncode != 0
    log = bad.stdout + bad.stderr
    assert "[type] column 'amount'" in log and "part-00000.parquet" in log
    states = task_states(airflow_home, dag_id("data_validation"), BAD)
    assert states["validate_partition"] == "failed"
    assert states["snapshot_partition"] == states["publish_validated"] == "upstream_failed"
    assert not lake.exists(lake.partition("raw", BAD))
    reason = lake.read_json(f"{lake.partition('quarantine', BAD)}/{REASON}")
    assert (reason["failures"][0]["rule"], reason["failures"][0]["column"]) == ("type", "amount")
    announced = [
        json.loads(extra)["date"] for extra in asset_events(airflow_home, f"{settings.dataset.name}.validated")
    ]
    assert BAD.isoformat() not in announced


def test_a_day_within_the_contracts_tolerance_passes_with_warnings_and_says_so(
    dag_env: dict[str, str], airflow_home: Path, tmp_path: Path, slack: list[dict]
) -> None:
    """A few rows of a new channel, within the contract's tolerance: validated, each warning logged and alerted."""
    import yaml

    contract = yaml.safe_load((PROJECT_ROOT / "include/contracts/card_transactions.yaml").read_text())
    contract["version"] = "1.1.0"
    contract["columns"]["channel"]["max_unknown_fraction"] = 0.01
    tolerant = tmp_path / "card_transactions.yaml"
    tolerant.write_text(yaml.safe_dump(contract, sort_keys=False))
    alerts = {key: os.environ[key] for key in ("AIRFLOW_CONN_MLOPS_SLACK", "MLOPS_ALERT_SLACK_CONN_ID")}
    env = {**dag_env, "MLOPS__DATASET__CONTRACT": str(tolerant), **alerts}
    settings = load_settings(env=env)
    lake = Lake.from_settings(settings)
    land_days(settings, GOOD, days=1, rows_per_day=3_000, seed=3)
    (path,) = lake.data_files(lake.partition("raw", GOOD))
    with lake.fs.open(path, "rb") as handle:
        table = pq.read_table(handle)
    channel = table.column("channel").to_pylist()
    channel[:5] = ["<kiosk>"] * 5  # 5 rows in 3 000: 0.17 %, within the 1 % tolerated
    table = table.set_column(table.schema.get_field_index("channel"), "channel", pa.array(channel))
    with lake.fs.open(path, "wb") as handle:
        pq.write_table(table, handle)

    result = dags_test(dag_id("data_validation"), GOOD, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    marker = lake.read_json(f"{lake.partition('raw', GOOD)}/{VALIDATED}")
    ((rule, column),) = [(w["rule"], w["column"]) for w in marker["warnings"]]
    assert (rule, column) == ("allowed_values", "channel")
    log = result.stdout + result.stderr
    assert "validation warning: [allowed_values] column 'channel'" in log
    (post,) = slack
    assert "WARNINGS card_transactions__data_validation 2026-11-05" in post["text"]
    assert "3000 rows passed contract card_transactions v1.1.0 with 1 warning(s)" in post["text"]
    assert "&lt;kiosk&gt;" in post["text"] and "<kiosk>" not in post["text"], "Slack's <...> escaped"


def test_partition_that_never_arrives_fails_the_sensor(dag_env: dict[str, str], airflow_home: Path) -> None:
    # `dags test` runs triggers in line but does not enforce a deferral's timeout (the scheduler does),
    # so this test waits in poke mode; the deferrable path is the default and is used by the other test.
    env = {
        **dag_env,
        "MLOPS__VALIDATION__SENSOR_TIMEOUT_SECONDS": "3",
        "MLOPS__VALIDATION__SENSOR_POKE_SECONDS": "1",
        "MLOPS__VALIDATION__SENSOR_DEFERRABLE": "false",
    }
    day = dt.date(2026, 11, 20)
    result = dags_test(dag_id("data_validation"), day, env)
    assert result.returncode != 0
    states = task_states(airflow_home, dag_id("data_validation"), day)
    assert states["wait_for_partition"] == "failed"
    assert states["validate_partition"] == "upstream_failed"
    log = result.stdout + result.stderr
    assert "raw/dt=2026-11-20/_SUCCESS did not arrive" in log and "within 3 s" in log
