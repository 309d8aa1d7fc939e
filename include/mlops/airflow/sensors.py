"""The wait for a lake path: the same task whether the lake is a local folder or S3."""

from __future__ import annotations

from typing import Any

from mlops.airflow.notifiers import LogFailureNotifier
from mlops.config import Settings


def lake_sensor(settings: Settings, task_id: str, path: str, hint: str) -> Any:
    """A deferrable sensor on a lake path: FileSensor locally, S3KeySensor on S3 (imported only when used).

    No retries: a wait that timed out would only wait again; ``hint`` (templated) says what to check.
    """
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
