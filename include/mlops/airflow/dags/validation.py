"""data_validation: wait for a day's raw partition, validate it against its contract, version it with DVC.

The logical date is the partition date D (a daily data interval: the run for D starts once D is over).
At parse time only the Airflow SDK, ``mlops.config``, ``mlops.redact`` and ``mlops.airflow`` are imported; the tasks import
the work (``mlops.validation``, ``mlops.versioning``, ``mlops.data.lake``) when they run.
"""

from __future__ import annotations

import datetime as dt
from textwrap import dedent

from airflow.sdk import DAG, CronDataIntervalTimetable, task

from mlops.airflow import dag_defaults, error_policy, lake_sensor, run_settings, validated_data_asset
from mlops.airflow.links import DataDocsLink, add_links
from mlops.config import Settings
from mlops.redact import redact_text


def build(settings: Settings) -> DAG:
    """``<model>__data_validation`` for the model of ``settings`` (what the DAG factory calls per model file)."""
    VALIDATED = validated_data_asset(settings)
    PARTITION = "dt={{ ds }}"

    DOC = dedent(f"""
    ### Validate each day's raw partition

    | step | what happens |
    |---|---|
    | `wait_for_partition` | deferrable sensor on `raw/{PARTITION}/_SUCCESS` (times out after {settings.validation.sensor_timeout_seconds} s with a clear failure) |
    | `validate_partition` | Great Expectations suite built from the data contract `{settings.dataset.contract}`; on failure the day moves to `quarantine/{PARTITION}/` with `reason.json` (rule, column, observed vs expected, offending ids) and the task fails **without retry**; a breach within the contract's tolerance passes with a warning, logged and alerted ("passed with K warning(s)") |
    | `snapshot_partition` | DVC snapshot in the data registry `{settings.dvc_registry_path}`, pushed to `{redact_text(settings.dvc_remote_url)}` |
    | `publish_validated` | writes `_VALIDATED.json` (suite summary, contract version, DVC revision) **last**, then emits the Asset `{VALIDATED.name}` |

    Lake: `{redact_text(settings.lake_uri)}`. Data Docs: `reports/data_docs/` in the lake.
    A quarantined day waits for the producer to land a corrected `raw/{PARTITION}` (or `mlops requeue --date D` when
    it was quarantined by mistake); clear the run to validate it again.
    Re-running a good day gives the same verdict and the same DVC revision.
    """)

    def _day(ds: str) -> dt.date:
        return dt.date.fromisoformat(ds)

    with DAG(
        dag_id=settings.dag_id("data_validation"),
        description="Wait for raw/dt=D, validate it with Great Expectations, quarantine or DVC-version it",
        schedule=CronDataIntervalTimetable(settings.dags.validation_schedule, timezone="UTC"),
        max_active_runs=4,
        doc_md=DOC,
        **dag_defaults(settings, "data", "great-expectations", "dvc", execution_timeout=dt.timedelta(minutes=30)),
    ) as dag:
        wait_for_partition = lake_sensor(
            settings,
            "wait_for_partition",
            f"raw/{PARTITION}/_SUCCESS",
            hint=f"raw/{PARTITION}/_SUCCESS did not arrive in {settings.lake_uri} within "
            f"{settings.validation.sensor_timeout_seconds} s: check the producer, then clear this task.",
        )

        @task
        @error_policy
        def validate_partition(ds: str | None = None, ti=None) -> dict:  # type: ignore[no-untyped-def]
            """Check the day against the contract; a breach quarantines the day and fails the task (an input error).

            A day within the contract's tolerances passes with warnings: each is logged and the alerts say so."""
            from mlops.airflow.notifiers import validation_warnings
            from mlops.validation import check_partition

            settings = run_settings()
            verdict = check_partition(settings, _day(ds)).to_dict()
            validation_warnings(verdict, {"ti": ti, "ds": ds})  # logs and alerts each warning; nothing without
            return verdict

        @task(max_active_tis_per_dag=1)
        @error_policy
        def snapshot_partition(verdict: dict, ds: str | None = None) -> dict:
            """Version the validated files in the DVC data registry and push them to the remote."""
            from mlops.data.lake import Lake
            from mlops.versioning import snapshot_partition as snapshot

            settings = run_settings()
            lake = Lake.from_settings(settings)
            return snapshot(settings, lake, _day(ds), verdict["rows"], manifest=verdict["manifest"]).to_dict()

        @task(outlets=[VALIDATED])
        @error_policy
        def publish_validated(verdict: dict, snapshot: dict, ds: str | None = None, outlet_events=None) -> dict:  # type: ignore[no-untyped-def]
            """Write `_VALIDATED.json` last and tell downstream DAGs (Asset event with date and revision)."""
            from mlops.data.lake import Lake
            from mlops.validation import mark_validated

            settings = run_settings()
            marker = mark_validated(Lake.from_settings(settings), _day(ds), verdict, snapshot)
            outlet_events[VALIDATED].extra = {
                "date": ds,
                "rows": marker["rows"],
                "dvc_revision": snapshot["revision"],
            }
            return marker

        verdict = add_links(validate_partition(), DataDocsLink())
        snapshot = snapshot_partition(verdict)
        wait_for_partition >> verdict
        publish_validated(verdict, snapshot)
    return dag
