"""The MLOps page inside the Airflow UI: a FastAPI app under ``/mlops``, an "MLOps" entry in the navigation, an
"MLOps" tab on every DAG page (the DAG's model's page) and an "MLOps evidence" tab on every DAG-run page (that
run's gates, or its drift decisions: :mod:`mlops.web.runs`).

The page (``mlops.web``) opens on the list of models of the models folder and shows, per model, champion and
challenger with their metrics, gate evidence and lineage, the alias ledger, drift over time, validation verdicts
and scoring volume. Airflow serves plugin apps WITHOUT a login, so every route of the app depends on
:func:`require_reader`: the same JWT the UI uses (``Authorization: Bearer`` or the UI's ``_token`` cookie),
checked by Airflow's own ``get_user``, and the auth manager must allow reading DAGs and assets. Anonymous
requests get 401 (a browser asking for a page is sent to the login page instead), bad tokens 401/403, users
without those read permissions 403.

Registered by the package's ``airflow.plugins`` entry point (``pyproject.toml``): installing ``mlops`` is all an
Airflow needs, nothing goes into its plugins folder. Every Airflow component loads plugins, so this module stays
light (FastAPI and :mod:`mlops.web`; the Airflow SDK is loaded by then anyway): the api-server's security module
is imported inside the check, on the first request.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import HTTPException, Request, status

from mlops.web.app import create_app
from mlops.web.data import RECENT_FAILURE_DAYS, DagRuns
from mlops.web.runs import RETURNED_TASKS, RunRecord
from mlops.web.status import FAILED_DAYS, LISTED, ActiveRun, Activity, FailedTask, WaitingApproval, one_line
from mlops.web.urls import PLUGIN_PREFIX

log = logging.getLogger(__name__)
#: Log lines read per failed task when looking for its error (a log is read only for the newest failures).
LOG_LINES_READ = 20_000
#: Reasons already read, per failed try (a failed try's log does not change): the page refreshes every minute.
_REASONS: dict[tuple[str, str, str, int, int], str | None] = {}
_REASONS_KEPT = 2_000


async def require_reader(request: Request) -> None:
    """401 without a valid login, 403 without read access to DAGs and assets; else the request goes on."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    manager = get_auth_manager()
    try:
        user = await get_user(request, None, await bearer_scheme(request))
    except HTTPException as exc:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and wants_page:
            login = manager.get_url_login(next_url=str(request.url))
            raise HTTPException(status.HTTP_303_SEE_OTHER, "log in first", headers={"Location": login}) from None
        raise
    dags = manager.is_authorized_dag(method="GET", user=user)
    if not (dags and manager.is_authorized_asset(method="GET", user=user)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the MLOps page needs read access to DAGs and assets")


def dag_runs() -> list[DagRuns]:
    """Per DAG: the end of its latest successful run, its failed runs, and those that ended in the last days."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import and_, case, func, select

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=RECENT_FAILURE_DAYS)
    failed = DagRun.state == DagRunState.FAILED
    query = select(
        DagRun.dag_id,
        func.max(case((DagRun.state == DagRunState.SUCCESS, DagRun.end_date))),
        func.count(case((failed, 1))),
        func.count(case((and_(failed, DagRun.end_date >= since), 1))),
    ).group_by(DagRun.dag_id)
    with create_session() as session:
        rows = session.execute(query).all()
    return [
        DagRuns(dag_id, ended if isinstance(ended, dt.datetime) else None, int(count), int(recent))
        for dag_id, ended, count, recent in rows
    ]


def _reason_of(messages: Any) -> str | None:
    """The last error of a task's log: ``<exception type>: <message>`` when it logged one, else its last error line."""
    reason = None
    for count, message in enumerate(messages):
        if count >= LOG_LINES_READ:
            break
        extra = getattr(message, "model_extra", None) or {}
        if str(extra.get("level", "")).lower() not in ("error", "critical"):
            continue
        details = extra.get("error_detail") or []
        last = details[-1] if isinstance(details, list) and details and isinstance(details[-1], dict) else None
        if last and last.get("exc_type"):
            reason = one_line(f"{last['exc_type']}: {last.get('exc_value', '')}")
        elif reason is None or not reason.startswith(("Task failed", "Exception")):
            reason = one_line(str(getattr(message, "event", ""))) or reason
    return reason


def _task_reason(ti: Any) -> str | None:
    """The one-line error of a failed task instance's log (Airflow's log reader: local or remote logs)."""
    from airflow.utils.log.log_reader import TaskLogReader

    key = (ti.dag_id, ti.run_id, ti.task_id, int(ti.map_index), int(ti.try_number or 1))
    if key in _REASONS:
        return _REASONS[key]
    try:
        messages, _ = TaskLogReader().read_log_chunks(ti, ti.try_number, {"download_logs": True})
        reason = _reason_of(messages)
    except Exception:  # no log (yet), a remote store away: the failure is listed without a reason
        log.info("no log to read for %s.%s %s", ti.dag_id, ti.task_id, ti.run_id, exc_info=True)
        return None
    if len(_REASONS) >= _REASONS_KEPT:
        _REASONS.clear()
    _REASONS[key] = reason
    return reason


def activity(dag_ids: Sequence[str]) -> Activity:
    """What Airflow's DB knows now of these DAGs: runs running or queued, tasks failed in the last days (the
    newest with the error of their log), Human-in-the-loop requests not answered yet."""
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    ids = list(dag_ids)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=FAILED_DAYS)
    day = DagRun.logical_date
    active = (
        select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.logical_date, DagRun.run_after, DagRun.start_date)
        .where(DagRun.dag_id.in_(ids), DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED]))
        .order_by(DagRun.run_after.desc())
        .limit(LISTED * len(ids) or 1)
    )
    failed = (
        select(TaskInstance, day, DagRun.run_after)
        .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
        .where(TaskInstance.dag_id.in_(ids), TaskInstance.state == TaskInstanceState.FAILED)
        .where(TaskInstance.end_date >= since)
        .order_by(TaskInstance.end_date.desc())
        .limit(LISTED * len(ids) or 1)
    )
    waiting = (
        select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            HITLDetail.subject,
            HITLDetail.created_at,
            day,
            DagRun.run_after,
        )  # fmt: skip
        .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
        .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
        .where(TaskInstance.dag_id.in_(ids), HITLDetail.responded_at.is_(None))
        .where(TaskInstance.state.in_([TaskInstanceState.DEFERRED, TaskInstanceState.AWAITING_INPUT]))
        .order_by(HITLDetail.created_at.desc())
    )
    with create_session() as session:
        running = [
            ActiveRun(dag_id, run_id, str(getattr(state, "value", state)), logical or after, started)
            for dag_id, run_id, state, logical, after, started in session.execute(active).all()
        ]
        failures = []
        read: dict[str, int] = {}
        for ti, logical, after in session.execute(failed).all():
            reason = None
            model = ti.dag_id.rsplit("__", 1)[0]
            if read.get(model, 0) < LISTED:  # only the failures a model's status shows have their log read
                read[model] = read.get(model, 0) + 1
                reason = _task_reason(ti)
            failures.append(FailedTask(ti.dag_id, ti.run_id, ti.task_id, logical or after, ti.end_date,
                                       int(ti.try_number or 1), int(ti.map_index), reason))  # fmt: skip
        approvals = [
            WaitingApproval(dag_id, run_id, task_id, subject or "", created, logical or after)
            for dag_id, run_id, task_id, subject, created, logical, after in session.execute(waiting).all()
        ]
    return Activity(running, failures, approvals)


def run_record(dag_id: str, run_id: str) -> RunRecord | None:
    """One DAG run as Airflow's DB has it: state, conf, and what the tasks of ``RETURNED_TASKS`` returned."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            return None
        query = XComModel.get_many(run_id=run_id, key="return_value", task_ids=list(RETURNED_TASKS), dag_ids=dag_id,
                                   map_indexes=-1)  # fmt: skip
        returned: dict[str, Any] = {}
        for row in session.scalars(query).all():
            returned.setdefault(row.task_id, XComModel.deserialize_value(row))  # newest first
        state = getattr(run.state, "value", run.state)
        conf = run.conf if isinstance(run.conf, dict) else {}
        return RunRecord(dag_id, run_id, str(state) if state else None, run.logical_date or run.run_after, conf,
                         returned)  # fmt: skip


app = create_app(require_reader, dag_runs=dag_runs, activity=activity, run_record=run_record)

#: The page in Airflow's navigation: an iframe on ``/plugin/mlops`` showing ``/mlops/``.
NAV_ENTRY: dict[str, Any] = {
    "name": "MLOps",
    "href": PLUGIN_PREFIX.lstrip("/") + "/",  # relative: resolved against the UI's base URL
    "url_route": "mlops",
    "destination": "nav",
    "nav_top_level": True,
    "icon": PLUGIN_PREFIX.lstrip("/") + "/static/icon.svg",
}
#: A tab on every DAG-run page: the run's gates and drift evidence (Airflow fills in the ids, URL-encoded).
RUN_VIEW: dict[str, Any] = {
    "name": "MLOps evidence",
    "href": PLUGIN_PREFIX.lstrip("/") + "/dags/{DAG_ID}/runs/{RUN_ID}",
    "url_route": "mlops-run",
    "destination": "dag_run",
    "icon": NAV_ENTRY["icon"],
}
#: A tab on every DAG page: the page of the DAG's model.
DAG_VIEW: dict[str, Any] = {
    "name": "MLOps",
    "href": PLUGIN_PREFIX.lstrip("/") + "/dags/{DAG_ID}/",
    "url_route": "mlops-model",
    "destination": "dag",
    "icon": NAV_ENTRY["icon"],
}


class MlopsPlugin(AirflowPlugin):
    """Registers the app, the navigation entry and the tabs on DAG and run pages (task links are set on the
    operators, :mod:`mlops.airflow.links`)."""

    name = "mlops"
    fastapi_apps = [{"app": app, "url_prefix": PLUGIN_PREFIX, "name": "MLOps"}]
    external_views = [NAV_ENTRY, RUN_VIEW, DAG_VIEW]
