"""What every DAG shares: default task arguments, the failure notifier and the Assets that chain DAGs.

Imported at DAG-parse time, so it imports only the Airflow SDK and ``mlops.config``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import Asset, BaseNotifier

from mlops.config import Settings

log = logging.getLogger("mlops.notify")

OWNER = "mlops"
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class LogFailureNotifier(BaseNotifier):
    """Say in one line which task failed, for which run and why; the place to add Slack or e-mail.

    ``hint`` (templated) tells the reader what the failure usually means and what to do.
    """

    template_fields = ("hint",)

    def __init__(self, hint: str = "") -> None:
        super().__init__()
        self.hint = hint

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        exception = context.get("exception")
        log.error(
            "FAILED dag=%s task=%s run=%s try=%s: %s",
            getattr(ti, "dag_id", "?"),
            getattr(ti, "task_id", "?"),
            getattr(ti, "run_id", "?"),
            getattr(ti, "try_number", "?"),
            str(exception).splitlines()[0] if exception else "no exception recorded",
        )
        if self.hint:
            log.error("%s", self.hint)


def default_args(**overrides: Any) -> dict[str, Any]:
    """Retries with exponential backoff, a timeout and a failure notifier on every task."""
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=10),
        "execution_timeout": dt.timedelta(hours=1),
        "on_failure_callback": [LogFailureNotifier()],
    }
    args.update(overrides)
    return args


def _lake_asset(settings: Settings, name: str, area: str) -> Asset:
    uri = settings.lake_uri if settings.lake_is_s3 else f"file://{settings.lake_uri}"
    return Asset(name=f"{settings.dataset.name}.{name}", uri=f"{uri}/{area}", group="mlops")


def validated_data_asset(settings: Settings) -> Asset:
    """Emitted once per validated day (extra: date, rows, DVC revision); training and scoring schedule on it."""
    return _lake_asset(settings, "validated", "raw")


def scores_asset(settings: Settings) -> Asset:
    """Emitted once per scored day (extra: date, model version, rows); drift monitoring schedules on it."""
    return _lake_asset(settings, "scores", "scores")


def lake_sensor(settings: Settings, task_id: str, path: str, hint: str) -> Any:
    """A deferrable sensor on a lake path: FileSensor locally, S3KeySensor on S3 (imported only when used)."""
    kwargs: dict[str, Any] = {
        "task_id": task_id,
        "deferrable": settings.validation.sensor_deferrable,
        "poke_interval": settings.validation.sensor_poke_seconds,
        "timeout": settings.validation.sensor_timeout_seconds,
        "retries": 0,
        "on_failure_callback": [LogFailureNotifier(hint=hint)],
    }
    if settings.lake_is_s3:
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

        return S3KeySensor(bucket_key=f"{settings.lake_uri}/{path}", **kwargs)
    from airflow.providers.standard.sensors.filesystem import FileSensor

    return FileSensor(filepath=f"{settings.lake_uri}/{path}", fs_conn_id="fs_default", **kwargs)


def partition_day(params: dict[str, Any], dag_run: Any, triggering_asset_events: Any) -> str:
    """The partition a daily run works on: ``params.date``, else the newest triggering asset event's
    ``date``, else the logical date (scheduled, catch-up and backfill runs)."""
    day = params.get("date")
    if not day and triggering_asset_events:
        events = [event for events in triggering_asset_events.values() for event in events]
        day = max(((event.extra or {}).get("date") or "" for event in events), default="") or None
    if not day:
        day = (dag_run.logical_date or dag_run.run_after).date().isoformat()
    return str(day)


class DriftBreachNotifier(BaseNotifier):
    """Every drift breach goes through here: always logged; the place to add Slack or e-mail delivery."""

    template_fields = ("message",)

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def notify(self, context: Any) -> None:
        log.warning("DRIFT %s", self.message)
