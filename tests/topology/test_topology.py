"""The chain run by Airflow's own scheduler, triggerer and executor on a multi-process deployment.

Data lands only through the generator (``mlops.data.landing.land_days``) into the S3 lake, as a producer
would; everything else is the platform reacting to it: deferred sensors in the triggerer, Assets starting
``continuous_training``, ``batch_scoring`` and ``drift_monitoring``, the drift trigger, promotions.

1. ``airflow backfill create`` for 4 past days before any champion exists: each run's sensor defers to the
   triggerer; the days land at once; every run validates its day (``_VALIDATED.json`` in S3, snapshot
   pushed to the DVC remote on S3 and its commit to the registry's git remote);
2. the validated-data Asset starts ``continuous_training``: trained, gated, promoted (ledger = MLflow alias),
   the model's artifacts in S3 through the MLflow server;
3. one more day, landed and backfilled alone, in small row groups: scored by the champion as 3 mapped
   chunks that run at the same time; the run its validated-data event started in ``continuous_training``
   ends skipped (new data alone does not retrain a champion);
4. the backlog (days validated before any champion) is scored too, each day once; the registry remote
   has every revision;
5. a drifted day: ``drift_monitoring`` (started by its scores) triggers ``continuous_training``, which
   promotes a new champion;
6. the day of the scheduler's own ``data_validation`` run lands: its sensor, deferred since start-up,
   fires; the day is scored with the new champion. No run of any DAG ended failed.

    .venv/bin/python -m pytest -m topology tests/topology -s     # logs: var/test-artifacts/topology/
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from typing import Any

import pytest

from mlops.data.generator import DriftSpec
from mlops.data.landing import land_days
from mlops.models import client
from tests.reliability.world import champion
from tests.topology.deployment import BUCKETS, ROWS_PER_DAY, SMALL_ROW_GROUPS, Deployment, iso_day, s3_json, s3_keys

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
    # Four days before any champion, then one by one: a clean day, a drifted day, the scheduled run's own day.
    days = [last - dt.timedelta(days=BACKFILL_DAYS + 2 - i) for i in range(BACKFILL_DAYS)]
    clean_day, drifted_day = last - dt.timedelta(days=2), last - dt.timedelta(days=1)
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
    land_days(settings, days[0], BACKFILL_DAYS, ROWS_PER_DAY, SEED, labels_until=clean_day)
    deployment.step(f"landed {days[0]}..{days[-1]} ({ROWS_PER_DAY} rows a day, labels until {clean_day}) in S3")

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

    # -- 3. one more day, alone: scored by the champion as 3 concurrent chunks; new data does not retrain -------
    first_champion = alias
    land_days(settings, clean_day, 1, ROWS_PER_DAY, SEED, labels_until=clean_day, row_group_rows=SMALL_ROW_GROUPS)
    validate_one(deployment, clean_day)
    stats = wait_scores(deployment, clean_day)
    assert str(stats["model_version"]) == first_champion, stats
    assert stats["chunks"] == ROWS_PER_DAY // SMALL_ROW_GROUPS, stats
    overlapping = concurrent_chunks(api, stats["run_id"])
    assert overlapping, f"the chunks of dt={clean_day} never ran at the same time"

    def new_data_runs() -> list[dict[str, Any]]:
        return [r for r in trainings() if r["run_type"] == "asset_triggered" and r["run_after"] > run["run_after"]]

    api.wait("the continuous_training run started by the new day ends", lambda: new_data_runs() and all(
        r["state"] in ("success", "failed") for r in new_data_runs()), 180, progress=training_progress,
        alive=alive)  # fmt: skip
    for later in new_data_runs():
        tis = api.task_instances("continuous_training", later["dag_run_id"])
        assert tis["resolve_snapshot"]["state"] == "skipped", (
            f"{later['dag_run_id']} retrained on new data: {states(tis)}"
        )
    deployment.step(f"stage 3 done: dt={clean_day} scored by v{first_champion} in chunks {overlapping} at once; "
                    f"new data did not retrain ({time.monotonic() - started:.0f} s into the test)")  # fmt: skip

    # -- 4. the backlog (days validated before any champion) is scored; the registry remote has every snapshot ---
    problems = []
    unscored = [day for day in [*days, clean_day] if lake_key("scores", day, "_SUCCESS") not in
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
    commits = [r["dag_run_id"] for r in api.dag_runs("batch_scoring")
               for ti in api.task_instances("batch_scoring", r["dag_run_id"]).values()
               if ti["task_id"] == "commit_scores" and ti["state"] == "success"]  # fmt: skip
    if len(commits) != len(days) + 1:
        problems.append(f"{len(commits)} day commits for {len(days) + 1} days: a day was scored twice or not at all")
    assert not problems, "; ".join(problems)
    deployment.step(f"stage 4 done: every validated day scored once, every DVC revision in the registry remote "
                    f"({time.monotonic() - started:.0f} s into the test)")  # fmt: skip

    # -- 5. a drifted day: drift_monitoring triggers continuous_training, which promotes a new champion ---------
    shift = DriftSpec(start=drifted_day, kind="covariate", features=("amount", "device_risk_score"), magnitude=2.0)
    land_days(settings, drifted_day, 1, ROWS_PER_DAY, SEED, drift=shift, labels_until=drifted_day)
    validate_one(deployment, drifted_day)

    def retrained() -> dict[str, Any] | None:
        for candidate in trainings():
            if "drift" not in str((candidate.get("conf") or {}).get("reason", "")):
                continue
            tis = api.task_instances("continuous_training", candidate["dag_run_id"])
            if candidate["state"] == "failed" or tis.get("promote", {}).get("state") == "skipped":
                pytest.fail(f"the drift-triggered run {candidate['dag_run_id']} did not promote: {states(tis)}\n"
                            + failure_logs(api, "continuous_training", candidate))  # fmt: skip
            if tis.get("promote", {}).get("state") == "success":
                return candidate
        return None

    def drift_progress() -> str:
        history = s3_json(deployment.s3, BUCKETS["lake"], drift_key(settings, drifted_day))
        return f"drift dt={drifted_day}: {history and history.get('decision')}; trainings: {training_progress()}"

    api.wait("drift_monitoring triggers a retraining that promotes a new champion", retrained, 420, interval=5,
             progress=drift_progress, alive=alive)  # fmt: skip
    alias, head = champion(settings)
    assert alias == head and alias != first_champion, f"champion {alias} (ledger {head}), first {first_champion}"
    history = s3_json(deployment.s3, BUCKETS["lake"], drift_key(settings, drifted_day))
    assert history is not None and history["triggered"], history
    deployment.step(f"stage 5 done: dt={drifted_day} breached {history['breached_features']}, retrained, "
                    f"v{first_champion} -> v{alias} ({time.monotonic() - started:.0f} s into the test)")  # fmt: skip

    # -- 6. the scheduled run's own day lands: its deferred sensor fires; scored with the new champion ----------
    scheduled = scheduled_validation()[-1]
    sensor = api.task_instances("data_validation", scheduled["dag_run_id"]).get(SENSOR, {})
    assert sensor.get("state") == "deferred", f"the scheduled run's sensor for {last} is {sensor.get('state')}"
    land_days(settings, last, 1, ROWS_PER_DAY, SEED, labels_until=last)
    stats = wait_scores(deployment, last)
    assert str(stats["model_version"]) == alias, f"scores of {last} carry v{stats['model_version']}, not v{alias}"
    fired = trigger_log(deployment, "data_validation", scheduled["dag_run_id"], SENSOR)
    assert "Trigger fired event" in fired, f"the scheduled run's {SENSOR} did not resume from the triggerer:\n{fired}"

    failed = {dag_id: [r["dag_run_id"] for r in api.dag_runs(dag_id) if r["state"] == "failed"] for dag_id in DAGS}
    assert not any(failed.values()), f"runs ended failed: {failed}\n" + "\n".join(
        failure_logs(api, dag_id, r) for dag_id in DAGS for r in api.dag_runs(dag_id) if r["state"] == "failed"
    )
    deployment.step(f"stage 6 done: dt={last} scored by v{alias}; no run failed "
                    f"({time.monotonic() - started:.0f} s into the test)")  # fmt: skip


def drift_key(settings: Any, day: dt.date) -> str:
    """The S3 key of a day's drift-history entry (the lake builds the path)."""
    from mlops.data.lake import Lake

    lake = Lake.from_settings(settings)
    return lake.drift_history(settings.dataset.name, day).split(f"{BUCKETS['lake']}/", 1)[1]


def validate_one(deployment: Deployment, day: dt.date) -> None:
    """A backfill of one landed day; its data_validation run succeeds (the sensor fires in the triggerer)."""
    api = deployment.api()
    log = deployment.artifacts / f"backfill-{day}.log"

    def created() -> bool:
        """Airflow allows one running backfill per DAG: the previous one ends once the scheduler sees its runs done."""
        done = deployment.airflow_cli(["backfill", "create", "--dag-id", "data_validation", "--from-date",
                                       day.isoformat(), "--to-date", day.isoformat()], f"backfill-{day}")  # fmt: skip
        if done.returncode != 0 and "AlreadyRunningBackfill" not in log.read_text().splitlines()[-1]:
            pytest.fail(f"airflow backfill create {day} failed: see {log}")
        return done.returncode == 0

    api.wait(f"airflow backfill create {day}", created, 120, interval=5, alive=deployment.check_alive)

    def done() -> bool:
        runs = [r for r in api.dag_runs("data_validation") if iso_day(r["logical_date"]) == day]
        if any(r["state"] == "failed" for r in runs):
            pytest.fail(
                f"data_validation {day} failed:\n"
                + "\n".join(failure_logs(api, "data_validation", r) for r in runs if r["state"] == "failed")
            )
        return any(r["state"] == "success" for r in runs)

    api.wait(f"data_validation validates {day}", done, 240, interval=3, alive=deployment.check_alive)


def wait_scores(deployment: Deployment, day: dt.date) -> dict[str, Any]:
    """The day's committed ``_STATS.json`` once batch_scoring (started by an Asset) has scored it."""
    api = deployment.api()

    def scored() -> dict[str, Any] | None:
        failed = [r for r in api.dag_runs("batch_scoring") if r["state"] == "failed"]
        if failed:
            pytest.fail("batch_scoring failed:\n" + "\n".join(failure_logs(api, "batch_scoring", r) for r in failed))
        if lake_key("scores", day, "_SUCCESS") in s3_keys(deployment.s3, BUCKETS["lake"], f"lake/scores/dt={day}/"):
            return s3_json(deployment.s3, BUCKETS["lake"], lake_key("scores", day, "_STATS.json"))
        return None

    def progress() -> str:
        return "; ".join(f"{r['run_type']}:{r['state']}" for r in api.dag_runs("batch_scoring"))

    stats = api.wait(f"batch_scoring commits scores/dt={day}", scored, 300, interval=3, progress=progress,
                     alive=deployment.check_alive)  # fmt: skip
    assert stats["rows"] == ROWS_PER_DAY, stats
    return stats


def concurrent_chunks(api: Any, run_id: str) -> list[str]:
    """Mapped ``score_chunk`` instances of one batch_scoring run whose run intervals overlap another's."""
    tis = api.task_instances("batch_scoring", run_id)
    chunks = sorted((ti["start_date"], ti["end_date"], key) for key, ti in tis.items()
                    if ti["task_id"] == "score_chunk" and ti["state"] == "success")  # fmt: skip
    assert len(chunks) >= 3, f"run {run_id} scored {len(chunks)} chunk(s), expected 3: {sorted(tis)}"
    return sorted({key for start, end, key in chunks for s2, e2, other in chunks
                   if other != key and start < e2 and s2 < end})  # fmt: skip


def _champions(settings: Any) -> set[str]:
    """Every version that has been champion (the ledger's moves)."""
    from tests.reliability.world import alias_moves

    return {to for alias, _, to, _ in alias_moves(settings) if alias == "champion"}
