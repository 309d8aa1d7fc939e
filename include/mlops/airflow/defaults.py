"""What every DAG shares: the ``DAG(...)`` keywords and the default task arguments (retries, timeout, notifier)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

from mlops.airflow.notifiers import LogFailureNotifier, scores_late
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


def scoring_deadline(settings: Settings) -> DeadlineAlert | None:
    """Airflow's deadline on a ``batch_scoring`` run: scores committed within ``scoring.deadline_hours`` of the run
    being queued, else the triggerer awaits :func:`~mlops.airflow.notifiers.scores_late` (a LATE alert). None when
    the setting is null.

    Counted from when the run was queued, which every run has (a run started by a validated day or a champion
    change has no logical date), so waiting for the one run slot counts too. A run that ends successfully (or
    skipped) in time drops its deadline; one that fails keeps it: its days are still not scored.

    None under ``airflow dags test`` too: Airflow 3.3.2's test run of a DAG with a deadline exits non-zero after
    the run succeeded (apache/airflow#73428), and that run has no scheduler to fire a deadline anyway.
    """
    hours = settings.scoring.deadline_hours
    if hours is None or sys.argv[1:3] == ["dags", "test"]:
        return None
    return DeadlineAlert(
        name="scores late",
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(hours=hours),
        callback=AsyncCallback(scores_late, kwargs={"model": settings.model_name, "deadline_hours": hours}),
    )
