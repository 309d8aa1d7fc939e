"""Task links: buttons on a task instance that open its MLflow run, model version, gate report, Evidently report,
GX Data Docs page or scoring output.

Airflow 3 computes an operator's links in the worker when the task ends and stores each URL as an XCom
(``_link_<class>``); the UI reads that XCom, so no plugin has to register these classes and the API server
never runs our code. A link therefore reads what its task just produced: its return value (XCom), or, for
a validation that failed, the day's quarantine reason in the lake. A link that finds nothing is left empty
(the UI then hides it). URLs come from :mod:`mlops.web.urls`, the same as the MLOps page's, and point at the
model's own pages: the model is named by the task's DAG id (``<model>__<kind>``, :func:`mlops.config.model_of_dag`).
Every Airflow user reads these links, so MLflow links are built on :func:`mlops.web.urls.mlflow_ui`, which drops
the ``user:password@`` a tracking URI may carry.

``add_links(task, LINK, ...)`` in a DAG file puts links on a task (a ``@task`` call or an operator).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from airflow.sdk import BaseOperatorLink

log = logging.getLogger(__name__)


def _plugin_url(relative: str) -> str:
    """A page of the MLOps plugin as an absolute path on the Airflow host (``[api] base_url``'s path kept)."""
    from airflow.configuration import conf

    from mlops.web.urls import plugin_path

    base = conf.get("api", "base_url", fallback="") or ""
    return plugin_path(relative, urlparse(base).path)


def _returned(ti: Any) -> Any:
    """What the task returned (None before it did, or when ``ti`` is not a running task instance)."""
    if not hasattr(ti, "xcom_pull"):
        return None
    return ti.xcom_pull(task_ids=ti.task_id)


def _model(ti_key: Any) -> str:
    """The link's model: its DAG id names it."""
    from mlops.config import model_of_dag

    return model_of_dag(ti_key.dag_id)


def _settings(ti_key: Any) -> Any:
    """The settings of the link's model."""
    from mlops.config import load_settings

    return load_settings(model=_model(ti_key))


class MlflowRunLink(BaseOperatorLink):
    """The MLflow run of this DAG run's training (train, assess, register)."""

    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from mlops import models
        from mlops.web import urls

        settings = _settings(ti_key)
        try:
            found = models.find_training_run(settings, ti_key.dag_id, ti_key.run_id)
        except LookupError:
            return ""
        run = models.get_run(settings, found.run_id)
        return urls.mlflow_run(urls.mlflow_ui(settings), run.info.experiment_id, found.run_id)


class ModelVersionLink(BaseOperatorLink):
    """The registered model version (register returns ``{"version": ...}``)."""

    name = "Model version"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from mlops.web import urls

        returned = _returned(ti_key) or {}
        if not returned.get("version"):
            return ""
        settings = _settings(ti_key)
        return urls.mlflow_version(urls.mlflow_ui(settings), settings.model_name, str(returned["version"]))


class GateReportLink(BaseOperatorLink):
    """The gate report of the assessed candidate (assess returns its ``run_id``)."""

    name = "Gate report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from mlops.web import urls

        returned = _returned(ti_key) or {}
        return _plugin_url(urls.gate_report(_model(ti_key), returned["run_id"])) if returned.get("run_id") else ""


class DriftReportLink(BaseOperatorLink):
    """The Evidently report of the checked day (check_drift returns its ``report_uri``)."""

    name = "Evidently report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from mlops.web import urls

        day = urls.report_day((_returned(ti_key) or {}).get("report_uri"))
        return _plugin_url(urls.drift_report(_model(ti_key), day)) if day else ""


class DataDocsLink(BaseOperatorLink):
    """The GX Data Docs page of the day's validation, passed (the verdict) or quarantined (``reason.json``)."""

    name = "Data Docs"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        import datetime as dt

        from mlops.data.lake import REASON, Lake
        from mlops.web import urls

        settings = _settings(ti_key)
        lake = Lake.from_settings(settings)
        page = (_returned(ti_key) or {}).get("data_docs")
        if not page and hasattr(ti_key, "get_template_context"):
            day = dt.date.fromisoformat(ti_key.get_template_context()["ds"])
            reason = lake.marker("quarantine", day, REASON)
            page = lake.read_json(reason).get("data_docs") if lake.exists(reason) else None
        path = urls.data_docs(settings.model_name, lake, page)
        return _plugin_url(path) if path else ""


class ScoresLink(BaseOperatorLink):
    """The committed day's output and ``_STATS.json`` (commit_scores returns the stats with their ``day``)."""

    name = "Scores and stats"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from mlops.web import urls

        day = (_returned(ti_key) or {}).get("day")
        return _plugin_url(urls.scores(_model(ti_key), day)) if day else ""


def add_links(task: Any, *links: BaseOperatorLink) -> Any:
    """Put ``links`` on a task (the operator behind a ``@task`` call's result, or an operator); returns ``task``."""
    operator = getattr(task, "operator", task)
    operator.operator_extra_links = [*operator.operator_extra_links, *links]
    return task
