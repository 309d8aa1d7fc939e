"""The chain run by Airflow's own scheduler, triggerer and executor on a multi-process deployment.

Data lands only through the generator (``mlops.data.landing.land_days``) into the S3 lake, as a producer
would; everything else is the platform reacting to it: deferred sensors in the triggerer, the validated-data
Asset starting ``continuous_training`` and ``batch_scoring``, the champion scoring the next day.

1. ``airflow backfill create`` for 4 past days: each run's sensor defers to the triggerer; the days land at
   once; every run validates its day (``_VALIDATED.json`` in S3, snapshot in the S3 DVC remote);
2. the validated-data Asset starts ``continuous_training``: trained, gated, promoted (ledger = MLflow alias),
   the model's artifacts in S3 through the MLflow server;
3. the day of the scheduler's own ``data_validation`` run (yesterday) lands: its deferred sensor fires, the
   day is validated and ``batch_scoring`` commits its scores with a champion;
4. the backlog (days validated before any champion) is scored too; the registry remote has every revision.

    .venv/bin/python -m pytest -m topology tests/topology -s     # logs: var/test-artifacts/topology/
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from typing import Any

import pytest

from mlops.data.landing import land_days
from mlops.models import client
from tests.reliability.world import champion
from tests.topology.deployment import BUCKETS, ROWS_PER_DAY, Deployment, iso_day, s3_json, s3_keys

pytestmark = pytest.mark.topology
DAGS = {"data_validation", "continuous_training", "batch_scoring", "drift_monitoring", "model_rollback"}
BACKFILL_DAYS = 4
SEED = 23
SENSOR = "wait_for_partition"


def lake_key(area: str, day: dt.date, name: str) -> str:
    return f"lake/{area}/dt={day.isoformat()}/{name}"


def states(tis: dict[str, dict[str, Any]]) -> str:
    return ",".join(f"{task}={ti['state']}" for task, ti in tis.items())


def failure_logs(api: Any, dag_id: str, run: dict[str, Any]) -> str:
    """The log of every failed task instance of a run (what a user opens first)."""
    parts = []
    for task, ti in api.task_instances(dag_id, run["dag_run_id"]).items():
        if ti["state"] == "failed":
            log = api.task_log(dag_id, run["dag_run_id"], ti["task_id"], ti["try_number"], ti.get("map_index", -1))
            parts.append(f"--- {dag_id} / {run['dag_run_id']} / {task} (try {ti['try_number']}) ---\n"
                         + "\n".join(log.splitlines()[-40:]))  # fmt: skip
    return "\n".join(parts) or "(no failed task instance)"


def trigger_log(deployment: Deployment, dag_id: str, run_id: str, task_id: str) -> str:
    """What the triggerer logged for a deferred task (Airflow writes it beside the task's log, per triggerer job)."""
    folder = deployment.artifacts / "task-logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return "\n".join(path.read_text(errors="replace") for path in sorted(folder.glob("attempt=*.log.trigger.*.log")))


def test_scheduler_runs_the_chain(deployment: Deployment) -> None:
    api = deployment.api()
    settings = deployment.settings
    alive = deployment.check_alive
    started = time.monotonic()

    # -- 0. the dag-processor parsed dags/; the scheduler started the runs of the last complete day ---------------
    def parsed() -> bool:
        dags = {dag["dag_id"]: dag for dag in api.dags()}
        return set(dags) >= DAGS and not any(dags[d]["is_paused"] for d in DAGS)

    api.wait("dags/ parsed and unpaused", parsed, 240, progress=lambda: str(sorted(api.dag_ids())), alive=alive)

    def scheduled_validation() -> list[dict[str, Any]]:
        return [r for r in api.dag_runs("data_validation") if r["run_type"] == "scheduled"]

    runs = api.wait("data_validation's scheduled run", scheduled_validation, 120, alive=alive)
    last = iso_day(runs[-1]["logical_date"])
    assert last is not None
    days = [last - dt.timedelta(days=BACKFILL_DAYS - i) for i in range(BACKFILL_DAYS)]
    deployment.step(f"scheduled data_validation run for {last}; backfilling {days[0]}..{days[-1]}")

    # -- 1. a backfill of 4 days: sensors defer to the triggerer, the days land at once, each run validates -----
    created = deployment.airflow_cli(["backfill", "create", "--dag-id", "data_validation",
                                      "--from-date", days[0].isoformat(), "--to-date", days[-1].isoformat()],
                                     "backfill-data_validation")  # fmt: skip
    assert created.returncode == 0, f"airflow backfill create failed: see {deployment.artifacts}/backfill-*.log"

    def backfill_runs() -> dict[dt.date, dict[str, Any]]:
        return {iso_day(r["logical_date"]): r for r in api.dag_runs("data_validation") if r["run_type"] == "backfill"}

    def sensors() -> dict[dt.date, str]:
        return {day: api.task_instances("data_validation", run["dag_run_id"]).get(SENSOR, {}).get("state")
                for day, run in backfill_runs().items()}  # fmt: skip

    api.wait("the backfill's sensors are deferred in the triggerer",
             lambda: sorted(sensors()) == days and all(s == "deferred" for s in sensors().values()), 240,
             progress=lambda: str(sensors()), alive=alive)  # fmt: skip
    assert set(backfill_runs()) == set(days), f"the backfill made runs for {sorted(backfill_runs())}, not {days}"
    land_days(settings, days[0], BACKFILL_DAYS, ROWS_PER_DAY, SEED, labels_until=last)
    deployment.step(f"landed {days[0]}..{days[-1]} ({ROWS_PER_DAY} rows a day, labels until {last}) in the S3 lake")

    def validated() -> bool:
        runs = backfill_runs()
        failed = [run for run in runs.values() if run["state"] == "failed"]
        if failed:
            logs = "\n".join(failure_logs(api, "data_validation", run) for run in failed)
            pytest.fail(f"data_validation failed:\n{logs}")
        return len(runs) == BACKFILL_DAYS and all(run["state"] == "success" for run in runs.values())

    api.wait("the backfilled data_validation runs succeed", validated, 420, interval=5,
             progress=lambda: str({str(d): r["state"] for d, r in backfill_runs().items()}), alive=alive)  # fmt: skip
    for day, run in backfill_runs().items():
        tis = api.task_instances("data_validation", run["dag_run_id"])
        assert all(ti["state"] == "success" for ti in tis.values()), f"{day}: {states(tis)}"
        marker = s3_json(deployment.s3, BUCKETS["lake"], lake_key("raw", day, "_VALIDATED.json"))
        assert marker is not None, f"no _VALIDATED.json for {day} in s3://{BUCKETS['lake']}/lake"
        assert marker["rows"] == ROWS_PER_DAY, marker
        print(f"    {day}: sensor {tis[SENSOR]['start_date']} -> {tis[SENSOR]['end_date']}, validated, "
              f"DVC {marker['dvc']['revision'][:12]}")  # fmt: skip
        fired = trigger_log(deployment, "data_validation", run["dag_run_id"], SENSOR)
        assert "Trigger fired event" in fired, f"{day}: no trigger of {SENSOR} fired in the triggerer:\n{fired}"
    dvc_objects = s3_keys(deployment.s3, BUCKETS["dvc"], "remote/")
    assert dvc_objects, "the DVC remote s3://dvc-bucket/remote is empty after 4 snapshots"
    deployment.step(f"stage 1 done: 4 days validated, {len(dvc_objects)} objects in the DVC remote "
                    f"({time.monotonic() - started:.0f} s into the test)")  # fmt: skip

    # -- 2. the validated-data Asset starts continuous_training: trained, gated, promoted ----------------------
    validated_at = max(run["end_date"] for run in backfill_runs().values())

    def trainings() -> list[dict[str, Any]]:
        return api.dag_runs("continuous_training")

    def promoted() -> dict[str, Any] | None:
        for run in trainings():
            if run["run_type"] != "asset_triggered":
                continue
            tis = api.task_instances("continuous_training", run["dag_run_id"])
            if tis.get("promote", {}).get("state") == "success":
                return run
            if run["state"] == "failed" and (run["start_date"] or "") > validated_at:
                pytest.fail("continuous_training failed after every day was validated:\n"
                            + failure_logs(api, "continuous_training", run))  # fmt: skip
            gated = tis.get("gates_passed", {}).get("state") == "success"
            if gated and tis.get("promote", {}).get("state") == "skipped":  # not a run skipped for lack of data
                pytest.fail(f"continuous_training {run['dag_run_id']} ended without promotion (gates failed): "
                            + api.task_log("continuous_training", run["dag_run_id"], "gates_passed", 1))  # fmt: skip
        return None

    def training_progress() -> str:
        return "; ".join(f"{r['run_type']}:{r['state']}" for r in trainings())

    run = api.wait("an asset-triggered continuous_training run promotes a champion", promoted, 420, interval=5,
                   progress=training_progress, alive=alive)  # fmt: skip
    alias, head = champion(settings)
    assert alias is not None and alias == head, f"MLflow alias champion={alias}, ledger head={head}"
    deployment.step(f"stage 2 done: run {run['dag_run_id']} promoted v{alias} (MLflow alias = ledger head) "
                    f"({time.monotonic() - started:.0f} s into the test)")  # fmt: skip
    # The trainer and the gates reach artifacts only through the MLflow server, which keeps them in S3.
    run_id = client(settings).get_model_version(settings.model_name, alias).run_id
    stored = [key for key in s3_keys(deployment.s3, BUCKETS["mlflow"], "mlflow/") if f"/{run_id}/" in key]
    assert stored, f"no artifact of the champion's run {run_id} in s3://{BUCKETS['mlflow']}/mlflow"
    print(f"    the champion's run {run_id}: {len(stored)} artifact objects in s3://{BUCKETS['mlflow']}/mlflow")

    # -- 3. the next day lands: the scheduled run's sensor fires, the champion scores the day ------------------
    scheduled = scheduled_validation()[-1]
    sensor = api.task_instances("data_validation", scheduled["dag_run_id"]).get(SENSOR, {})
    assert sensor.get("state") == "deferred", f"the scheduled run's sensor for {last} is {sensor.get('state')}"
    land_days(settings, last, 1, ROWS_PER_DAY, SEED, labels_until=last)
    deployment.step(f"landed {last}: the scheduled data_validation run's deferred sensor should fire")

    def committed(run: dict[str, Any]) -> bool:
        """A batch_scoring run whose ``commit_scores`` (one task, or one mapped task per day) succeeded."""
        tis = api.task_instances("batch_scoring", run["dag_run_id"]).values()
        return any(ti["task_id"] == "commit_scores" and ti["state"] == "success" for ti in tis)

    def scored() -> dict[str, Any] | None:
        run = next(r for r in api.dag_runs("data_validation") if r["dag_run_id"] == scheduled["dag_run_id"])
        if run["state"] == "failed":
            pytest.fail(f"data_validation for {last} failed:\n" + failure_logs(api, "data_validation", run))
        keys = s3_keys(deployment.s3, BUCKETS["lake"], f"lake/scores/dt={last}/")
        if lake_key("scores", last, "_SUCCESS") in keys and any(committed(r) for r in api.dag_runs("batch_scoring")):
            return s3_json(deployment.s3, BUCKETS["lake"], lake_key("scores", last, "_STATS.json"))
        return None

    def scoring_progress() -> str:
        runs = api.dag_runs("batch_scoring")
        return "; ".join(f"{r['run_type']}:{r['state']}" for r in runs)

    stats = api.wait(f"batch_scoring commits scores/dt={last}", scored, 300, interval=5, progress=scoring_progress,
                     alive=alive)  # fmt: skip
    assert stats is not None and stats["rows"] == ROWS_PER_DAY, stats
    fired = trigger_log(deployment, "data_validation", scheduled["dag_run_id"], SENSOR)
    assert "Trigger fired event" in fired, f"the scheduled run's {SENSOR} did not resume from the triggerer:\n{fired}"
    assert str(stats["model_version"]) in _champions(settings), stats
    deployment.step(f"stage 3 done: dt={last} scored by v{stats['model_version']} ({stats['rows']} rows) "
                    f"({time.monotonic() - started:.0f} s into the test)")  # fmt: skip

    # -- 4. the backlog (days validated before any champion) is scored; the registry remote has every snapshot ---
    problems = []
    unscored = [day for day in days if lake_key("scores", day, "_SUCCESS") not in
                s3_keys(deployment.s3, BUCKETS["lake"], f"lake/scores/dt={day}/")]  # fmt: skip
    if unscored:
        problems.append(f"validated days without scores once a champion exists (backlog scoring): {unscored}")
    markers = {day: s3_json(deployment.s3, BUCKETS["lake"], lake_key("raw", day, "_VALIDATED.json")) for day in days}
    revisions = {day: marker["dvc"]["revision"] for day, marker in markers.items() if marker}
    missing = [str(day) for day, rev in revisions.items() if subprocess.run(
        ["git", "-C", str(deployment.registry_remote), "cat-file", "-e", f"{rev}^{{commit}}"],
        capture_output=True).returncode != 0]  # fmt: skip
    if missing:
        problems.append(f"DVC revisions of {missing} are not in the registry remote {deployment.registry_remote}")
    assert not problems, "; ".join(problems)
    deployment.step(f"stage 4 done: every validated day scored, every DVC revision in the registry remote "
                    f"({time.monotonic() - started:.0f} s into the test)")  # fmt: skip


def _champions(settings: Any) -> set[str]:
    """Every version that has been champion (the ledger's moves)."""
    from tests.reliability.world import alias_moves

    return {to for alias, _, to, _ in alias_moves(settings) if alias == "champion"}
