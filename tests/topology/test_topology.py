"""Two models' chains run at once by Airflow's own scheduler, triggerer and executor on a multi-process deployment.

The deployment's models folder holds two model files of the same synthetic card source: ``card_transactions``
(A) and ``cards_eu`` (B), each with its five DAGs (``<model>__data_validation``...), its own lake folder under
``storage.lake_root``, its own MLflow registered model and experiment, ledger rows and DVC registry folder.
Data lands only through the generator (``mlops.data.landing.land_days``) into the S3 lake, as a producer would;
everything else is the platform reacting to it: deferred sensors in the triggerer, Assets starting
``continuous_training``, ``batch_scoring`` and ``drift_monitoring``, the drift trigger, promotions.

1. ``airflow backfill create`` of 4 past days for each model before any champion exists: each run's sensor
   defers to the triggerer; the days land at once; every run validates its day (``_VALIDATED.json`` in the
   model's lake folder, snapshot pushed to the DVC remote on S3 and its commit to the registry's git remote);
2. each model's validated-data Asset starts its own ``continuous_training``: both train, gate and promote a
   first champion (ledger = MLflow alias), each in its own MLflow experiment, artifacts in S3;
3. one more day of A, landed and backfilled alone, in small row groups: scored by A's champion as 3 mapped
   chunks that run at the same time; the run its validated-data event started in A's ``continuous_training``
   ends skipped (new data alone does not retrain a champion);
4. both backlogs (days validated before any champion) are scored, each day once, by its own model's champion;
   the registry remote has every revision, in one folder per dataset;
5. a drifted day of A: A's ``drift_monitoring`` (started by its scores) triggers A's ``continuous_training``,
   which promotes A's v2; B's champion, ledger, scores and DAG runs are exactly as before;
6. the day of the scheduler's own ``data_validation`` runs lands for both: their sensors, deferred since
   start-up, fire; A's day is scored by A's new champion, B's by B's first one. Once every run has ended, no
   run of any DAG ended failed.

    .venv/bin/python -m pytest -m topology tests/topology -s     # logs: var/test-artifacts/topology/
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from mlops.config import DAG_KINDS, Settings
from mlops.data.generator import DriftSpec
from mlops.data.landing import land_days
from mlops.models import client
from tests.reliability.world import alias_moves, champion
from tests.topology.deployment import (
    BUCKETS,
    MODELS,
    ROWS_PER_DAY,
    SMALL_ROW_GROUPS,
    AirflowApi,
    Deployment,
    iso_day,
    lake_prefix,
    s3_etags,
    s3_json,
    s3_keys,
)

pytestmark = pytest.mark.topology
BACKFILL_DAYS = 4
#: Each model's days come from the same generator with a seed of its own.
SEEDS = {MODELS[0]: 23, MODELS[1]: 57}
SENSOR = "wait_for_partition"
#: The synthetic source both models' days come from (``mlops.data.landing.SOURCES``).
SOURCE = "card_transactions"
TERMINAL = ("success", "failed")


@dataclass(frozen=True)
class Model:
    """One model of the deployment as the test drives it: its settings, DAG ids and lake keys."""

    name: str
    settings: Settings
    seed: int

    def dag(self, kind: str) -> str:
        return self.settings.dag_id(kind)

    @property
    def prefix(self) -> str:
        """The model's lake folder in the lake bucket (``lake/<model>``)."""
        return lake_prefix(self.settings)

    def key(self, area: str, day: dt.date, name: str) -> str:
        return f"{self.prefix}/{area}/dt={day.isoformat()}/{name}"

    def land(self, start: dt.date, days: int, **kwargs: Any) -> None:
        """The card producer lands days in this model's lake (its synthetic source is named after its dataset,
        ``card_transactions``; B's dataset is named ``cards_eu`` after its model file)."""
        dataset = self.settings.dataset.model_copy(update={"name": SOURCE, "lake_uri": self.settings.lake_uri})
        producer = self.settings.model_copy(update={"dataset": dataset})
        land_days(producer, start, days, ROWS_PER_DAY, self.seed, **kwargs)


def states(tis: dict[str, dict[str, Any]]) -> str:
    return ",".join(f"{task}={ti['state']}" for task, ti in tis.items())


def failure_logs(api: AirflowApi, dag_id: str, run: dict[str, Any]) -> str:
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


def test_scheduler_runs_two_models_at_once(deployment: Deployment) -> None:
    api = deployment.api()
    alive = deployment.check_alive
    started = time.monotonic()
    a, b = (Model(name, deployment.settings(name), SEEDS[name]) for name in MODELS)
    models = (a, b)
    assert (a.prefix, b.prefix) == ("lake/card_transactions", "lake/cards_eu"), "each model has its lake folder"

    def took() -> str:
        return f"({time.monotonic() - started:.0f} s into the test)"

    # -- 0. the dag-processor made every model's DAGs; the scheduler started the runs of the last complete day ----
    dag_ids = {m.dag(kind) for m in models for kind in DAG_KINDS}

    def parsed() -> bool:
        dags = {dag["dag_id"]: dag for dag in api.dags()}
        return set(dags) >= dag_ids and not any(dags[d]["is_paused"] for d in dag_ids)

    api.wait("both models' DAGs parsed and unpaused", parsed, 240, progress=lambda: str(sorted(api.dag_ids())),
             alive=alive)  # fmt: skip
    errors = api.request("GET", "/importErrors")["import_errors"]
    assert not errors, f"import errors in dags/: {errors}"

    def scheduled_validation(m: Model) -> list[dict[str, Any]]:
        return [r for r in api.dag_runs(m.dag("data_validation")) if r["run_type"] == "scheduled"]

    lasts = {}
    for m in models:
        runs = api.wait(f"{m.dag('data_validation')}'s scheduled run", lambda m=m: scheduled_validation(m), 120,
                        alive=alive)  # fmt: skip
        lasts[m.name] = iso_day(runs[-1]["logical_date"])
    last = lasts[a.name]
    assert last is not None and lasts[b.name] == last, f"scheduled data_validation runs for {lasts}"
    # Four days before any champion, then A alone: a clean day, a drifted day; then the scheduled runs' own day.
    days = [last - dt.timedelta(days=BACKFILL_DAYS + 2 - i) for i in range(BACKFILL_DAYS)]
    clean_day, drifted_day = last - dt.timedelta(days=2), last - dt.timedelta(days=1)
    deployment.step(f"scheduled data_validation runs for {last}; backfilling {days[0]}..{days[-1]} for both models")

    # -- 1. a backfill of 4 days per model: sensors defer to the triggerer, the days land at once, runs validate --
    def backfill(m: Model) -> int:
        args = ["backfill", "create", "--dag-id", m.dag("data_validation"), "--from-date", days[0].isoformat(),
                "--to-date", days[-1].isoformat()]  # fmt: skip
        return deployment.airflow_cli(args, f"backfill-{m.name}").returncode

    with ThreadPoolExecutor(len(models)) as pool:  # two operators at once: one backfill per model's DAG
        codes = dict(zip(MODELS, pool.map(backfill, models), strict=True))
    assert not any(codes.values()), f"airflow backfill create failed {codes}: see {deployment.artifacts}/backfill-*.log"

    def backfill_runs(m: Model) -> dict[dt.date, dict[str, Any]]:
        runs = api.dag_runs(m.dag("data_validation"))
        return {iso_day(r["logical_date"]): r for r in runs if r["run_type"] == "backfill"}  # type: ignore[misc]

    def sensor_state(m: Model, run: dict[str, Any]) -> str | None:
        return api.task_instances(m.dag("data_validation"), run["dag_run_id"]).get(SENSOR, {}).get("state")

    def sensors() -> dict[str, dict[dt.date, str | None]]:
        return {m.name: {day: sensor_state(m, run) for day, run in backfill_runs(m).items()} for m in models}

    def all_deferred() -> bool:
        now = sensors()
        return all(sorted(now[m.name]) == days and set(now[m.name].values()) == {"deferred"} for m in models)

    api.wait("the backfills' sensors are deferred in the triggerer", all_deferred, 300,
             progress=lambda: str(sensors()), alive=alive)  # fmt: skip
    for m in models:
        m.land(days[0], BACKFILL_DAYS, labels_until=clean_day)
    deployment.step(f"landed {days[0]}..{days[-1]} for {a.name} and {b.name} ({ROWS_PER_DAY} rows a day, "
                    f"labels until {clean_day}) in s3://{BUCKETS['lake']}/{a.prefix} and .../{b.prefix}")  # fmt: skip

    def validated() -> bool:
        done = True
        for m in models:
            runs = backfill_runs(m)
            failed = [run for run in runs.values() if run["state"] == "failed"]
            if failed:
                logs = "\n".join(failure_logs(api, m.dag("data_validation"), run) for run in failed)
                pytest.fail(f"{m.dag('data_validation')} failed:\n{logs}")
            done &= len(runs) == BACKFILL_DAYS and all(run["state"] == "success" for run in runs.values())
        return done

    def validation_progress() -> str:
        return str({m.name: {str(d): r["state"] for d, r in backfill_runs(m).items()} for m in models})

    api.wait("the backfilled data_validation runs of both models succeed", validated, 600, interval=5,
             progress=validation_progress, alive=alive)  # fmt: skip
    for m in models:
        for day, run in backfill_runs(m).items():
            tis = api.task_instances(m.dag("data_validation"), run["dag_run_id"])
            assert all(ti["state"] == "success" for ti in tis.values()), f"{m.name} {day}: {states(tis)}"
            marker = s3_json(deployment.s3, BUCKETS["lake"], m.key("raw", day, "_VALIDATED.json"))
            assert marker is not None, f"no _VALIDATED.json for {m.name} {day} in s3://{BUCKETS['lake']}/{m.prefix}"
            assert marker["rows"] == ROWS_PER_DAY, marker
            print(f"    {m.name} {day}: sensor {tis[SENSOR]['start_date']} -> {tis[SENSOR]['end_date']}, validated, "
                  f"DVC {marker['dvc']['revision'][:12]}")  # fmt: skip
            fired = trigger_log(deployment, m.dag("data_validation"), run["dag_run_id"], SENSOR)
            assert "Trigger fired event" in fired, f"{m.name} {day}: no trigger of {SENSOR} fired:\n{fired}"
    dvc_objects = s3_keys(deployment.s3, BUCKETS["dvc"], "remote/")
    assert dvc_objects, "the DVC remote s3://dvc-bucket/remote is empty after 8 snapshots"
    deployment.step(f"stage 1 done: 4 days of each model validated, {len(dvc_objects)} objects in the DVC remote "
                    f"{took()}")  # fmt: skip

    # -- 2. each model's validated-data Asset starts its own continuous_training: both promote a champion ---------
    validated_at = max(run["end_date"] for m in models for run in backfill_runs(m).values())

    def trainings(m: Model) -> list[dict[str, Any]]:
        return api.dag_runs(m.dag("continuous_training"))

    def promoted(m: Model) -> dict[str, Any] | None:
        dag_id = m.dag("continuous_training")
        for run in trainings(m):
            if run["run_type"] != "asset_triggered":
                continue
            tis = api.task_instances(dag_id, run["dag_run_id"])
            if tis.get("promote", {}).get("state") == "success":
                return run
            if run["state"] == "failed" and (run["start_date"] or "") > validated_at:
                pytest.fail(f"{dag_id} failed after every day was validated:\n" + failure_logs(api, dag_id, run))
            gated = tis.get("gates_passed", {}).get("state") == "success"
            if gated and tis.get("promote", {}).get("state") == "skipped":  # not a run skipped for lack of data
                pytest.fail(f"{dag_id} {run['dag_run_id']} ended without promotion (gates failed): "
                            + api.task_log(dag_id, run["dag_run_id"], "gates_passed", 1))  # fmt: skip
        return None

    def training_progress() -> str:
        return "; ".join(f"{m.name}: " + ",".join(f"{r['run_type']}:{r['state']}" for r in trainings(m))
                         for m in models)  # fmt: skip

    api.wait("an asset-triggered continuous_training run of each model promotes a champion",
             lambda: all(promoted(m) for m in models), 600, interval=5, progress=training_progress,
             alive=alive)  # fmt: skip
    first: dict[str, str] = {}
    first_run: dict[str, Any] = {}
    experiments = {}
    for m in models:
        alias, head = champion(m.settings)
        assert alias is not None and alias == head, f"{m.name}: MLflow alias champion={alias}, ledger head={head}"
        first[m.name], first_run[m.name] = alias, promoted(m)
        # The trainer and the gates reach artifacts only through the MLflow server, which keeps them in S3.
        version = client(m.settings).get_model_version(m.name, alias)
        experiments[m.name] = client(m.settings).get_run(version.run_id).info.experiment_id
        stored = [key for key in s3_keys(deployment.s3, BUCKETS["mlflow"], "mlflow/") if f"/{version.run_id}/" in key]
        assert stored, f"no artifact of {m.name}'s champion run {version.run_id} in s3://{BUCKETS['mlflow']}/mlflow"
        print(f"    {m.name} v{alias}: run {version.run_id}, experiment {experiments[m.name]}, "
              f"{len(stored)} artifact objects in s3://{BUCKETS['mlflow']}/mlflow")  # fmt: skip
    assert experiments[a.name] != experiments[b.name], f"both models trained in one MLflow experiment: {experiments}"
    deployment.step(f"stage 2 done: {a.name} v{first[a.name]} and {b.name} v{first[b.name]} promoted "
                    f"(MLflow alias = ledger head) {took()}")  # fmt: skip

    # -- 3. one more day of A, alone: scored by A's champion as 3 concurrent chunks; new data does not retrain ---
    a.land(clean_day, 1, labels_until=clean_day, row_group_rows=SMALL_ROW_GROUPS)
    validate_one(deployment, a, clean_day)
    stats = wait_scores(deployment, a, clean_day)
    assert str(stats["model_version"]) == first[a.name], stats
    assert stats["chunks"] == ROWS_PER_DAY // SMALL_ROW_GROUPS, stats
    overlapping = concurrent_chunks(api, a.dag("batch_scoring"), stats["run_id"])
    assert overlapping, f"the chunks of {a.name} dt={clean_day} never ran at the same time"

    def new_data_runs() -> list[dict[str, Any]]:
        after = first_run[a.name]["run_after"]
        return [r for r in trainings(a) if r["run_type"] == "asset_triggered" and r["run_after"] > after]

    api.wait(f"the {a.dag('continuous_training')} run started by the new day ends",
             lambda: new_data_runs() and all(r["state"] in TERMINAL for r in new_data_runs()), 240,
             progress=training_progress, alive=alive)  # fmt: skip
    for later in new_data_runs():
        tis = api.task_instances(a.dag("continuous_training"), later["dag_run_id"])
        assert tis["resolve_snapshot"]["state"] == "skipped", (
            f"{later['dag_run_id']} retrained on new data: {states(tis)}"
        )
    deployment.step(f"stage 3 done: {a.name} dt={clean_day} scored by v{first[a.name]} in chunks {overlapping} at "
                    f"once; new data did not retrain {took()}")  # fmt: skip

    # -- 4. both backlogs are scored, each day once, by its own champion; every snapshot in the registry remote ---
    problems = []
    scored_days = {a.name: [*days, clean_day], b.name: days}
    for m in models:
        champion_run = client(m.settings).get_model_version(m.name, first[m.name]).run_id
        for day in scored_days[m.name]:
            if m.key("scores", day, "_SUCCESS") not in s3_keys(
                deployment.s3, BUCKETS["lake"], m.key("scores", day, "")
            ):
                problems.append(f"{m.name} dt={day} has no scores once a champion exists (backlog scoring)")
                continue
            day_stats = s3_json(deployment.s3, BUCKETS["lake"], m.key("scores", day, "_STATS.json")) or {}
            scored_by = (
                day_stats.get("model_name"),
                str(day_stats.get("model_version")),
                day_stats.get("model_run_id"),
            )
            if scored_by != (m.name, first[m.name], champion_run):
                problems.append(f"{m.name} dt={day} scored by {scored_by}, not its champion v{first[m.name]}")
        markers = {day: s3_json(deployment.s3, BUCKETS["lake"], m.key("raw", day, "_VALIDATED.json")) for day in days}
        revisions = {day: marker["dvc"]["revision"] for day, marker in markers.items() if marker}
        missing = [str(day) for day, rev in revisions.items() if subprocess.run(
            ["git", "-C", str(deployment.registry_remote), "cat-file", "-e", f"{rev}^{{commit}}"],
            capture_output=True).returncode != 0]  # fmt: skip
        if missing:
            problems.append(f"DVC revisions of {m.name} {missing} are not in the registry remote")
        commits = [r["dag_run_id"] for r in api.dag_runs(m.dag("batch_scoring"))
                   for ti in api.task_instances(m.dag("batch_scoring"), r["dag_run_id"]).values()
                   if ti["task_id"] == "commit_scores" and ti["state"] == "success"]  # fmt: skip
        if len(commits) != len(scored_days[m.name]):
            problems.append(f"{m.name}: {len(commits)} day commits for {len(scored_days[m.name])} days: a day was "
                            "scored twice or not at all")  # fmt: skip
    folders = subprocess.run(["git", "-C", str(deployment.registry_remote), "ls-tree", "--name-only", "main", "data/"],
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    if folders != [f"data/{m.name}" for m in models]:
        problems.append(f"the data registry's folders are {folders}, not one per dataset")
    assert not problems, "; ".join(problems)
    deployment.step(f"stage 4 done: every validated day of both models scored once by its own champion, every DVC "
                    f"revision in the registry remote {took()}")  # fmt: skip

    # -- 5. a drifted day of A: A's drift_monitoring retrains A; B is left exactly as it was -------------------
    def b_settled() -> bool:
        """Every run of B's DAGs has ended, but the scheduled data_validation run waiting for its day."""
        waiting = {r["dag_run_id"] for r in scheduled_validation(b)}
        return all(r["state"] in TERMINAL for kind in DAG_KINDS for r in api.dag_runs(b.dag(kind))
                   if r["dag_run_id"] not in waiting)  # fmt: skip

    def b_progress() -> str:
        return str({kind: [r["state"] for r in api.dag_runs(b.dag(kind))] for kind in DAG_KINDS})

    api.wait(f"every run of {b.name} has ended", b_settled, 300, interval=5, progress=b_progress, alive=alive)
    before = footprint(deployment, api, b)
    assert before["champion"] == (first[b.name], first[b.name]), before["champion"]

    shift = DriftSpec(start=drifted_day, kind="covariate", features=("amount", "device_risk_score"), magnitude=2.0)
    a.land(drifted_day, 1, drift=shift, labels_until=drifted_day)
    validate_one(deployment, a, drifted_day)

    def retrained() -> dict[str, Any] | None:
        dag_id = a.dag("continuous_training")
        for candidate in trainings(a):
            if "drift" not in str((candidate.get("conf") or {}).get("reason", "")):
                continue
            tis = api.task_instances(dag_id, candidate["dag_run_id"])
            if candidate["state"] == "failed" or tis.get("promote", {}).get("state") == "skipped":
                pytest.fail(f"the drift-triggered run {candidate['dag_run_id']} did not promote: {states(tis)}\n"
                            + failure_logs(api, dag_id, candidate))  # fmt: skip
            if tis.get("promote", {}).get("state") == "success":
                return candidate
        return None

    def drift_progress() -> str:
        history = s3_json(deployment.s3, BUCKETS["lake"], drift_key(a.settings, drifted_day))
        return f"drift {a.name} dt={drifted_day}: {history and history.get('decision')}; {training_progress()}"

    retraining = api.wait(f"{a.dag('drift_monitoring')} triggers a retraining of {a.name} that promotes",
                          retrained, 600, interval=5, progress=drift_progress, alive=alive)  # fmt: skip
    alias, head = champion(a.settings)
    assert alias == head and alias != first[a.name], (
        f"{a.name}: champion {alias} (ledger {head}), first {first[a.name]}"
    )
    history = s3_json(deployment.s3, BUCKETS["lake"], drift_key(a.settings, drifted_day))
    assert history is not None and history["triggered"], history
    api.wait(f"the retraining run {retraining['dag_run_id']} ends", lambda: any(
        r["dag_run_id"] == retraining["dag_run_id"] and r["state"] in TERMINAL for r in trainings(a)), 120,
        alive=alive)  # fmt: skip
    after = footprint(deployment, api, b)
    # A run the clock started meanwhile (a new day's scheduled run) is nobody's doing: compare the others.
    after["runs"] = {
        run: kind for run, kind in after["runs"].items() if run in before["runs"] or kind[0] != "scheduled"
    }
    changed = {what: (before[what], after[what]) for what in before if before[what] != after[what]}
    assert not changed, f"{a.name}'s drift changed {b.name}: " + "; ".join(
        f"{what}: {old} -> {new}" for what, (old, new) in changed.items()
    )
    deployment.step(f"stage 5 done: {a.name} dt={drifted_day} breached {history['breached_features']}, retrained, "
                    f"v{first[a.name]} -> v{alias}; {b.name}'s champion v{first[b.name]}, ledger, "
                    f"{len(after['scores'])} score objects and runs untouched {took()}")  # fmt: skip

    # -- 6. the scheduled runs' own day lands for both: deferred sensors fire; each scored by its champion -------
    expected = {a.name: alias, b.name: first[b.name]}
    for m in models:
        scheduled = scheduled_validation(m)[-1]
        sensor = api.task_instances(m.dag("data_validation"), scheduled["dag_run_id"]).get(SENSOR, {})
        assert sensor.get("state") == "deferred", f"{m.name}'s scheduled sensor for {last} is {sensor.get('state')}"
        m.land(last, 1, labels_until=last)
    for m in models:
        stats = wait_scores(deployment, m, last)
        assert (stats["model_name"], str(stats["model_version"])) == (m.name, expected[m.name]), (
            f"scores of {m.name} dt={last} carry {stats['model_name']} v{stats['model_version']}, "
            f"not v{expected[m.name]}"
        )
        scheduled = scheduled_validation(m)[-1]
        fired = trigger_log(deployment, m.dag("data_validation"), scheduled["dag_run_id"], SENSOR)
        assert "Trigger fired event" in fired, f"{m.name}'s scheduled {SENSOR} did not resume from the triggerer"

    def every_run() -> list[tuple[str, dict[str, Any]]]:
        return [(dag_id, r) for dag_id in sorted(dag_ids) for r in api.dag_runs(dag_id)]

    def all_ended() -> bool:
        return all(r["state"] in TERMINAL for _, r in every_run())

    def still_running() -> str:
        return ", ".join(f"{dag_id}:{r['run_type']}:{r['state']}" for dag_id, r in every_run()
                         if r["state"] not in TERMINAL)  # fmt: skip

    api.wait("every run of both models has ended", all_ended, 420, interval=5, progress=still_running, alive=alive)
    failed = [(dag_id, r) for dag_id, r in every_run() if r["state"] == "failed"]
    assert not failed, f"runs ended failed: {[(d, r['dag_run_id']) for d, r in failed]}\n" + "\n".join(
        failure_logs(api, dag_id, r) for dag_id, r in failed
    )
    assert champion(b.settings) == (first[b.name], first[b.name]), f"{b.name}'s champion moved"
    deployment.step(f"stage 6 done: dt={last} scored by {a.name} v{alias} and {b.name} v{first[b.name]}; "
                    f"{len(every_run())} runs of {len(dag_ids)} DAGs, none failed {took()}")  # fmt: skip


def footprint(deployment: Deployment, api: AirflowApi, m: Model) -> dict[str, Any]:
    """What another model's drift must not touch: the model's champion (MLflow alias, ledger head), its ledger
    moves, every object of its scores (with its ETag) and the model version each day's ``_STATS.json`` names,
    and the type and state of every run of its DAGs."""
    scores = s3_etags(deployment.s3, BUCKETS["lake"], f"{m.prefix}/scores/")
    stats = {key: s3_json(deployment.s3, BUCKETS["lake"], key) or {} for key in scores if key.endswith("_STATS.json")}
    runs = {(m.dag(kind), r["dag_run_id"]): (r["run_type"], r["state"]) for kind in DAG_KINDS
            for r in api.dag_runs(m.dag(kind))}  # fmt: skip
    return {
        "champion": champion(m.settings),
        "ledger": alias_moves(m.settings),
        "scores": scores,
        "scored_by": {key: str(value.get("model_version")) for key, value in stats.items()},
        "runs": runs,
    }


def drift_key(settings: Settings, day: dt.date) -> str:
    """The S3 key of a day's drift-history entry (the lake builds the path)."""
    from mlops.data.lake import Lake

    lake = Lake.from_settings(settings)
    return lake.drift_history(settings.dataset.name, day).split(f"{BUCKETS['lake']}/", 1)[1]


def validate_one(deployment: Deployment, m: Model, day: dt.date) -> None:
    """A backfill of one landed day; its data_validation run succeeds (the sensor fires in the triggerer)."""
    api = deployment.api()
    dag_id = m.dag("data_validation")
    log = deployment.artifacts / f"backfill-{m.name}-{day}.log"

    def created() -> bool:
        """Airflow allows one running backfill per DAG: the previous one ends once the scheduler sees its runs done."""
        done = deployment.airflow_cli(["backfill", "create", "--dag-id", dag_id, "--from-date", day.isoformat(),
                                       "--to-date", day.isoformat()], f"backfill-{m.name}-{day}")  # fmt: skip
        if done.returncode != 0 and "AlreadyRunningBackfill" not in log.read_text().splitlines()[-1]:
            pytest.fail(f"airflow backfill create {dag_id} {day} failed: see {log}")
        return done.returncode == 0

    api.wait(f"airflow backfill create {dag_id} {day}", created, 180, interval=5, alive=deployment.check_alive)

    def done() -> bool:
        runs = [r for r in api.dag_runs(dag_id) if iso_day(r["logical_date"]) == day]
        if any(r["state"] == "failed" for r in runs):
            pytest.fail(
                f"{dag_id} {day} failed:\n"
                + "\n".join(failure_logs(api, dag_id, r) for r in runs if r["state"] == "failed")
            )
        return any(r["state"] == "success" for r in runs)

    api.wait(f"{dag_id} validates {day}", done, 300, interval=3, alive=deployment.check_alive)


def wait_scores(deployment: Deployment, m: Model, day: dt.date) -> dict[str, Any]:
    """The day's committed ``_STATS.json`` once the model's batch_scoring (started by an Asset) has scored it."""
    api = deployment.api()
    dag_id = m.dag("batch_scoring")

    def scored() -> dict[str, Any] | None:
        failed = [r for r in api.dag_runs(dag_id) if r["state"] == "failed"]
        if failed:
            pytest.fail(f"{dag_id} failed:\n" + "\n".join(failure_logs(api, dag_id, r) for r in failed))
        if m.key("scores", day, "_SUCCESS") in s3_keys(deployment.s3, BUCKETS["lake"], m.key("scores", day, "")):
            return s3_json(deployment.s3, BUCKETS["lake"], m.key("scores", day, "_STATS.json"))
        return None

    def progress() -> str:
        return "; ".join(f"{r['run_type']}:{r['state']}" for r in api.dag_runs(dag_id))

    stats = api.wait(f"{dag_id} commits scores/dt={day}", scored, 360, interval=3, progress=progress,
                     alive=deployment.check_alive)  # fmt: skip
    assert stats["rows"] == ROWS_PER_DAY, stats
    return stats


def concurrent_chunks(api: AirflowApi, dag_id: str, run_id: str) -> list[str]:
    """Mapped ``score_chunk`` instances of one batch_scoring run whose run intervals overlap another's."""
    tis = api.task_instances(dag_id, run_id)
    chunks = sorted((ti["start_date"], ti["end_date"], key) for key, ti in tis.items()
                    if ti["task_id"] == "score_chunk" and ti["state"] == "success")  # fmt: skip
    assert len(chunks) >= 3, f"run {run_id} scored {len(chunks)} chunk(s), expected 3: {sorted(tis)}"
    return sorted({key for start, end, key in chunks for s2, e2, other in chunks
                   if other != key and start < e2 and s2 < end})  # fmt: skip
