"""A model's status line: champion and its age, the last validated, scored and drift-checked days (and how many
of the last validated days passed with warnings), and what the host (Airflow's metadata DB) knows of its DAGs
right now: runs running or queued, tasks that failed in the last days (with a one-line reason when the task's
log has one, and a link to that log), approvals waiting.

The app knows nothing about Airflow: the host passes a function that, given DAG ids, returns an
:class:`Activity` (``mlops.airflow.plugin`` reads it from Airflow's DB). Without one, the status says the
host's part is unknown (``None``) rather than "nothing running". Links to Airflow pages are relative to the
Airflow UI's root, as in :mod:`mlops.web.urls`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.config import DAG_ID_SEPARATOR, DAG_KINDS, model_of_dag
from mlops.web import urls

#: Failed tasks of this many last days are listed.
FAILED_DAYS = 7
#: At most this many failed tasks (newest first), running runs and approvals per model.
LISTED = 10
#: A reason is cut to one line of at most this many characters.
REASON_CHARS = 200
#: The page refreshes its status every this many seconds (unless paused).
REFRESH_SECONDS = 60
#: The DAG kind whose approvals (Airflow's Human-in-the-loop "Required actions") gate a promotion.
APPROVAL_KIND = "continuous_training"


@dataclass(frozen=True)
class ActiveRun:
    """A DAG run in the ``running`` or ``queued`` state."""

    dag_id: str
    run_id: str
    state: str
    logical_date: dt.datetime | None = None
    started: dt.datetime | None = None


@dataclass(frozen=True)
class FailedTask:
    """A task instance that failed (its last try) in the last :data:`FAILED_DAYS` days."""

    dag_id: str
    run_id: str
    task_id: str
    logical_date: dt.datetime | None = None
    ended: dt.datetime | None = None
    try_number: int = 1
    map_index: int = -1
    reason: str | None = None  # the error of the task's log (``ValueError: ...``), when it has one


@dataclass(frozen=True)
class WaitingApproval:
    """A Human-in-the-loop request nobody has answered yet (the task waits for it)."""

    dag_id: str
    run_id: str
    task_id: str
    subject: str = ""
    since: dt.datetime | None = None
    logical_date: dt.datetime | None = None


@dataclass(frozen=True)
class Activity:
    """What the host knows now of some DAGs."""

    running: list[ActiveRun] = field(default_factory=list)
    failed: list[FailedTask] = field(default_factory=list)
    approvals: list[WaitingApproval] = field(default_factory=list)


#: The host's reader: the activity of the given DAG ids.
ActivityReader = Callable[[Sequence[str]], Activity]


def dag_ids(models: Iterable[str]) -> list[str]:
    """Every DAG of these models (``<model>__<kind>`` for each kind)."""
    return [f"{model}{DAG_ID_SEPARATOR}{kind}" for model in models for kind in DAG_KINDS]


def one_line(text: str | None) -> str | None:
    """The first non-empty line of ``text``, cut to :data:`REASON_CHARS`; None for nothing."""
    for line in str(text or "").splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"
    return None


def _day(value: dt.datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _kind(dag_id: str) -> str:
    return dag_id.rsplit(DAG_ID_SEPARATOR, 1)[-1]


def _of(model: str, dag_id: str) -> bool:
    try:
        return model_of_dag(dag_id) == model
    except ValueError:
        return False


def activity_of(model: str, activity: Activity | None) -> dict[str, Any] | None:
    """The model's part of the host's activity as JSON-ready lists, newest first; None when the host is unknown."""
    if activity is None:
        return None
    running = [run for run in activity.running if _of(model, run.dag_id)]
    failed = [task for task in activity.failed if _of(model, task.dag_id)]
    waiting = [a for a in activity.approvals if _of(model, a.dag_id) and _kind(a.dag_id) == APPROVAL_KIND]
    newest = dt.datetime.min.replace(tzinfo=dt.UTC)
    failed.sort(key=lambda task: task.ended or newest, reverse=True)
    approval_dag = f"{model}{DAG_ID_SEPARATOR}{APPROVAL_KIND}"
    return {
        "running": [
            {
                "dag_id": run.dag_id,
                "kind": _kind(run.dag_id),
                "run_id": run.run_id,
                "state": run.state,
                "day": _day(run.logical_date),
                "started": _iso(run.started),
                "run": urls.airflow_run(run.dag_id, run.run_id),
            }  # fmt: skip
            for run in running[:LISTED]
        ],
        "failed": [
            {
                "dag_id": task.dag_id,
                "kind": _kind(task.dag_id),
                "run_id": task.run_id,
                "task_id": task.task_id,
                "day": _day(task.logical_date),
                "ended": _iso(task.ended),
                "try_number": task.try_number,
                "reason": one_line(task.reason),
                "run": urls.airflow_run(task.dag_id, task.run_id),
                "log": urls.task_log(task.dag_id, task.run_id, task.task_id, task.try_number, task.map_index),
            }  # fmt: skip
            for task in failed[:LISTED]
        ],
        "failed_total": len(failed),
        "approvals": [
            {
                "dag_id": a.dag_id,
                "run_id": a.run_id,
                "task_id": a.task_id,
                "subject": one_line(a.subject),
                "since": _iso(a.since),
                "day": _day(a.logical_date),
                "run": urls.airflow_run(a.dag_id, a.run_id),
            }
            for a in waiting[:LISTED]
        ],
        "required_actions": urls.required_actions(approval_dag),
    }


def model_status(summary: dict[str, Any], activity: Activity | None, now: dt.datetime | None = None) -> dict[str, Any]:
    """The status line of one model: its models-list summary (champion, last days, drift) and its activity."""
    drift = summary.get("drift") or {}
    return {
        "model": summary["model"],
        "updated_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
        "refresh_seconds": REFRESH_SECONDS,
        "failed_days": FAILED_DAYS,
        "champion": summary.get("champion"),
        "last_validated": summary.get("last_validated"),
        "warned_days": summary.get("warned_days") or 0,
        "warned_days_of": summary.get("warned_days_of"),
        "last_scored": summary.get("last_scored"),
        "last_drift_checked": drift.get("day"),
        "drift_state": drift.get("state"),
        "activity": activity_of(summary["model"], activity),
        "error": summary.get("error"),
    }
