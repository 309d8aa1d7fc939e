"""The MLOps page inside the Airflow UI: a FastAPI app under ``/mlops`` and an "MLOps" entry in the navigation.

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
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import HTTPException, Request, status

from mlops.web.app import create_app
from mlops.web.data import RECENT_FAILURE_DAYS, DagRuns
from mlops.web.urls import PLUGIN_PREFIX


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


app = create_app(require_reader, dag_runs=dag_runs)

#: The page in Airflow's navigation: an iframe on ``/plugin/mlops`` showing ``/mlops/``.
NAV_ENTRY: dict[str, Any] = {
    "name": "MLOps",
    "href": PLUGIN_PREFIX.lstrip("/") + "/",  # relative: resolved against the UI's base URL
    "url_route": "mlops",
    "destination": "nav",
    "nav_top_level": True,
    "icon": PLUGIN_PREFIX.lstrip("/") + "/static/icon.svg",
}


class MlopsPlugin(AirflowPlugin):
    """Registers the app and the navigation entry (task links are set on the operators, :mod:`mlops.airflow.links`)."""

    name = "mlops"
    fastapi_apps = [{"app": app, "url_prefix": PLUGIN_PREFIX, "name": "MLOps"}]
    external_views = [NAV_ENTRY]
