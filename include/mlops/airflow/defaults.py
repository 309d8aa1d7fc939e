"""What every DAG shares: the ``DAG(...)`` keywords and the default task arguments (retries, timeout, notifier)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mlops.airflow.notifiers import LogFailureNotifier
from mlops.config import Settings

OWNER = "mlops"
#: Every DAG carries this tag first (the UI filter for the platform's DAGs).
TAG = "mlops"
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def default_args(**overrides: Any) -> dict[str, Any]:
    """Retries with exponential backoff (what an :class:`~mlops.errors.InfrastructureError` needs), a timeout
    and the failure notifier, on every task; ``overrides`` replace single entries."""
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


def dag_defaults(settings: Settings, *tags: str, **task_overrides: Any) -> dict[str, Any]:
    """The ``DAG(...)`` keywords every DAG repeats: ``DAG(dag_id=..., **dag_defaults(settings, "scoring"))``.

    One start date, no catch-up (backfills are explicit), :func:`default_args` with ``task_overrides``, the
    model's concurrency limits (``dags.max_active_tasks``, its pool) so one model cannot take every worker
    slot, and the tags: :data:`TAG`, the model's name (the UI's filter for one model), then ``tags``.
    """
    if settings.dags.pool:
        task_overrides.setdefault("pool", settings.dags.pool)
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_tasks": settings.dags.max_active_tasks,
        "default_args": default_args(**task_overrides),
        "tags": [TAG, settings.model_name, *tags],
    }
