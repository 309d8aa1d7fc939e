"""Where things are shown: the MLflow UI, the Airflow UI and the MLOps plugin's own pages, per model.

One module for the MLOps page (:mod:`mlops.web`) and the task links (``mlops.airflow.links``), so that a
button on a task and a link on the page open the same place. Every page and report of a model lives under
that model's path (``models/<model>/...``, ``api/models/<model>/...``), so a link never opens another model's
evidence. Paths of the plugin's pages are given relative to the plugin's root
(``models/card_transactions/reports/drift/2026-11-20``); :func:`plugin_path` makes them absolute.

A URL shown or linked never carries credentials: :func:`without_userinfo` drops ``user:password@`` (a tracking
URI may embed them; the page's JSON and the task links are read by every Airflow user).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.data.lake import Lake

#: Where the plugin's FastAPI app is mounted in the Airflow api-server.
PLUGIN_PREFIX = "/mlops"
#: The legacy setting of the MLflow UI as users reach it (``make up`` sets it; compose: the published port): the
#: fallback when the deployment's ``ui.mlflow_ui_url`` is unset.
MLFLOW_UI_ENV = "MLOPS_MLFLOW_UI_URL"
DEFAULT_MLFLOW_UI = "http://localhost:5000"
_DAY = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (``http://u:p@mlflow:5000/x`` -> ``http://mlflow:5000/x``).

    What is shown to users and put in links: the credentials stay with the processes that use the URL. A value
    that does not parse as a URL is returned with everything up to its last ``@`` cut, never as it was.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 host: keep nothing that may be a credential
        return url.rsplit("@", 1)[-1]
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def mlflow_ui(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The MLflow UI's base URL: the deployment's ``ui.mlflow_ui_url``, else the legacy ``$MLOPS_MLFLOW_UI_URL``,
    else an HTTP tracking server, else localhost:5000.

    Without userinfo: the config refuses it in ``ui.mlflow_ui_url``, and the fallbacks drop it
    (:func:`without_userinfo`); the URL is shown on the page and put in every task's MLflow links.
    """
    if settings.ui.mlflow_ui_url:
        return settings.ui.mlflow_ui_url
    env = os.environ if env is None else env
    if env.get(MLFLOW_UI_ENV):
        return without_userinfo(env[MLFLOW_UI_ENV].rstrip("/"))
    tracking = settings.mlflow_tracking_uri
    return without_userinfo(tracking.rstrip("/")) if tracking.startswith(("http://", "https://")) else DEFAULT_MLFLOW_UI


def mlflow_run(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_version(base: str, model: str, version: str) -> str:
    return f"{base}/#/models/{quote(model, safe='')}/versions/{version}"


def airflow_run(dag_id: str, run_id: str) -> str:
    """The Airflow UI page of a DAG run, relative to the Airflow UI's root."""
    return f"dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def airflow_dag(dag_id: str) -> str:
    """The Airflow UI page of a DAG, relative to the Airflow UI's root."""
    return f"dags/{quote(dag_id, safe='')}"


def _model(model: str) -> str:
    return quote(model, safe="")


def model_page(model: str) -> str:
    """The model's page of the MLOps plugin (the models list is the plugin's root, ``""``)."""
    return f"models/{_model(model)}/"


def model_api(model: str, what: str = "") -> str:
    """``api/models/<model>`` and its parts (``drift``, ``validation``, ``scoring``, ``versions/3``...)."""
    return f"api/models/{_model(model)}" + (f"/{what}" if what else "")


def gate_report(model: str, run_id: str) -> str:
    return f"models/{_model(model)}/reports/gate/{quote(run_id, safe='')}"


def drift_report(model: str, day: str) -> str:
    return f"models/{_model(model)}/reports/drift/{day}"


def scores(model: str, day: str) -> str:
    return model_api(model, f"scores/{day}")


def report_day(uri: str | None) -> str | None:
    """The day of a lake report (``.../dt=2026-11-20/report.html`` -> ``2026-11-20``)."""
    match = _DAY.search(uri or "")
    return match.group(1) if match else None


def data_docs(model: str, lake: Lake, page_url: str | None) -> str | None:
    """A GX Data Docs page (a file:// or s3:// URL inside the model's lake's site) as a plugin path, else None."""
    if not page_url:
        return None
    root = lake.url(lake.data_docs()).rstrip("/")
    path = page_url.removeprefix("file://")
    if not path.startswith(root + "/"):
        return None
    return f"models/{_model(model)}/data-docs/" + path[len(root) + 1 :]


def plugin_path(relative: str, base_path: str = "") -> str:
    """``models/m/reports/drift/D`` -> ``<base path>/mlops/models/m/reports/drift/D`` (absolute path on the host)."""
    return f"{base_path.rstrip('/')}{PLUGIN_PREFIX}/{relative.lstrip('/')}"


def task_log(dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
    """The Airflow UI page of a task instance's log (one try), relative to the Airflow UI's root."""
    task = f"{airflow_run(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
    if map_index >= 0:
        task += f"/mapped/{map_index}"
    return f"{task}?try_number={max(try_number, 1)}"


def required_actions(dag_id: str) -> str:
    """The Airflow UI's Required actions page of one DAG, relative to the Airflow UI's root."""
    return f"{airflow_dag(dag_id)}/required_actions"
