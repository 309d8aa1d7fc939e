"""The MLOps page as a FastAPI app: the models list, a page per model, static files, JSON, reports, metrics.

Airflow mounts it under ``/mlops`` (``mlops.airflow.plugin``) and shows the page in its navigation.
Airflow does not protect plugin apps, so :func:`create_app` takes the login check as a dependency and puts
it on every route, the static files and unknown paths included (static files are served by a route, not a
mount, for that reason). The app knows nothing about Airflow: the plugin passes Airflow's auth manager check
and what Airflow's DB knows of the DAG runs and of their current activity (:mod:`mlops.web.status`), tests
may pass others.

Routes (relative to the mount point)::

    /                                   the models list (one line per model file of the models folder)
    /models/<model>/                    the model's page
    /api/models                         the list as JSON
    /api/models/<model>                 champion, challenger, versions, ledger (also .../page, .../drift,
                                        .../validation, .../scoring, .../scores/<day>, .../versions/<v>)
    /api/models/<model>/status          the status line: champion, last days, running, failed, approvals
    /models/<model>/reports/gate/<run>  a gate report of one of the model's training runs
    /models/<model>/reports/drift/<day> the day's Evidently report in the model's lake
    /models/<model>/data-docs/<page>    the model's GX Data Docs site
    /dags/<dag_id>/                     Airflow's DAG page tab: the model's page (a redirect)
    /dags/<dag_id>/runs/<run_id>        Airflow's run page tab: the run's gates or drift decisions (mlops.web.runs)
    /api/dags/<dag_id>/runs/<run_id>    the same as JSON
    /metrics                            Prometheus text, every model

A model route reads only ``load_settings(model=<model>)``: that model's lake, MLflow experiment and
registered model, ledger rows and drift history. A model without a file in the models folder is 404 (its
name is not echoed back).

The app is served from Airflow's own origin, where a session cookie opens Airflow's API. Reports hold what data
producers and training runs wrote (a string value of a quarantined day ends up in its Data Docs page), so every
report is served by :func:`report_response`: ``Content-Security-Policy: sandbox`` (no script runs, the document
has no origin) and ``nosniff``. The app's own pages run only their own files (:data:`PAGE_CSP`: no inline script,
no other origin); every response is ``nosniff``.

Evidently's report is the one exception: it is a JavaScript dashboard (inline scripts, fonts and images as
``data:`` URIs, nothing fetched) that shows nothing without its script, and a producer's value can end up inside
that script. It runs, but with nothing to reach (:data:`EVIDENTLY_CSP`): ``sandbox allow-scripts`` without
``allow-same-origin`` (an opaque origin: no cookie, no storage, no same-origin read of Airflow's API), no
connection, form, image, font or frame source outside the document itself, no popup, no top navigation. The
report's URL serves a page of ours that frames it (``<iframe sandbox="allow-scripts">``, ``frame-src 'self'``),
so its script cannot take the tab anywhere either; the report's own file is served only into a frame (a browser
asking for it as a page is sent to the frame).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from mlops.config import Settings, load_settings, model_names
from mlops.redact import redact_text
from mlops.web import data, metrics, reports, status
from mlops.web import runs as run_views

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: Files the page may load: the page's own and the vendored, pinned charting library (no CDN).
STATIC_FILES = {
    "app.js": "text/javascript",
    "run.js": "text/javascript",
    "app.css": "text/css",
    "icon.svg": "image/svg+xml",
    "vendor/uplot-1.6.32/uPlot.iife.min.js": "text/javascript",
    "vendor/uplot-1.6.32/uPlot.min.css": "text/css",
}
#: Types of the Data Docs site's files. Its scripts are served as text: they would not run in the sandboxed page
#: anyway, and a script file from the lake must never be loadable as a script of Airflow's origin.
_DATA_DOCS_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/plain", ".png": "image/png",
                    ".svg": "image/svg+xml", ".json": "application/json", ".ico": "image/x-icon"}  # fmt: skip
NO_STORE = {"Cache-Control": "no-store"}
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
#: A report is data, not a page of ours: no script, no origin (so no cookie-backed call to Airflow's API).
REPORT_HEADERS = {"Content-Security-Policy": "sandbox", **NOSNIFF}
#: Evidently's report: its inline script runs in an opaque origin and can reach nothing (see the module docstring).
EVIDENTLY_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
EVIDENTLY_HEADERS = {"Content-Security-Policy": EVIDENTLY_CSP, **NOSNIFF, **NO_STORE}
#: The app's own page: its scripts, styles and API calls from this origin only, no inline script, framed only
#: by the Airflow UI (same origin). uPlot sets styles through the DOM (allowed); the page has no inline style.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, **NOSNIFF, **NO_STORE}
#: The page that frames an Evidently report: the frame may show only this origin (frame-src via default-src).
REPORT_FRAME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8" /><title>Evidently report {day}</title>
<link rel="stylesheet" href="../../../../static/app.css" /></head>
<body class="report-frame"><iframe class="report-frame" title="Evidently report {day}" sandbox="allow-scripts"
src="{day}/report.html"></iframe></body></html>
"""
#: The page's ``<base>``: its relative URLs (static files, API, reports) always resolve from the plugin's root.
BASE_TAG = '<base href="./" />'
UNKNOWN_MODEL = "no such model in the models folder (GET api/models lists them)"


def report_response(body: bytes | str, media_type: str = "text/html") -> Response:
    """A report or a file of one (Data Docs, Evidently, gate report): served sandboxed, see the module docstring."""
    return Response(body, media_type=media_type, headers=REPORT_HEADERS)


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=404, detail="not a day (YYYY-MM-DD)") from None


def create_app(
    require_reader: Callable[..., Any],
    *,
    env: Mapping[str, str] | None = None,
    dag_runs: Callable[[], Iterable[data.DagRuns]] | None = None,
    activity: status.ActivityReader | None = None,
    extra_metrics: Callable[[], str] | None = None,
    run_record: run_views.RunReader | None = None,
) -> FastAPI:
    """The app; ``require_reader`` raises 401/403 for requests that may not read the platform's data.

    ``env`` is where the settings come from (default: the process's environment, read on each request, so
    a model file added to the folder shows without a restart). ``dag_runs`` returns what the host knows of
    the DAG runs (Airflow: its metadata DB): the models list then shows each model's recent failed runs and
    ``/metrics`` the per-DAG lines. ``activity`` returns what is running, failed and waiting for approval in
    the given DAGs (Airflow: its metadata DB): each model's status line shows it. ``extra_metrics`` adds any
    other Prometheus text the host has. ``run_record`` returns what the host knows of one DAG run (Airflow: its
    state, conf and the returned values of :data:`mlops.web.runs.RETURNED_TASKS`) for the run pages' tab.
    """
    app = FastAPI(
        title="MLOps",
        description="Per model: champion, challenger, gate evidence, alias ledger, drift, validation and scoring.",
        dependencies=[Depends(require_reader)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def settings_of(model: str) -> Settings:
        """The model's own settings; 404 for a name that is not a model file of the folder."""
        if model not in model_names(env):
            raise HTTPException(status_code=404, detail=UNKNOWN_MODEL)
        try:
            return load_settings(model=model, env=env)
        except Exception as exc:  # a broken model file: say why (ConfigError names the key, redacts values)
            log.exception("model file of %s cannot be loaded", model)
            detail = f"the model file cannot be loaded: {redact_text(str(exc))}"
            raise HTTPException(status_code=500, detail=detail) from None

    def runs() -> list[data.DagRuns] | None:
        if dag_runs is None:
            return None
        try:
            return list(dag_runs())
        except Exception:
            log.exception("could not read the DAG runs")
            return None

    def activity_of(models: Iterable[str]) -> status.Activity | None:
        if activity is None:
            return None
        try:
            return activity(status.dag_ids(models))
        except Exception:
            log.exception("could not read the DAGs' activity")
            return None

    def page_html(base: str) -> HTMLResponse:
        html = (STATIC / "index.html").read_text().replace(BASE_TAG, f'<base href="{base}" />')
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @app.middleware("http")
    async def _nosniff(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Every response (JSON, static files, errors) is taken for the type it says it is."""
        response = await call_next(request)
        response.headers.update(NOSNIFF)
        return response

    @app.exception_handler(FileNotFoundError)
    async def _missing(_request: Request, exc: FileNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    # -- pages ---------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def models_page() -> HTMLResponse:
        return page_html("./")

    @app.get("/models/{model}", response_class=HTMLResponse)
    def model_page_no_slash(model: str) -> Response:
        settings_of(model)
        return RedirectResponse(quote(model, safe="") + "/", status_code=307)  # relative: keeps any proxy path

    @app.get("/models/{model}/", response_class=HTMLResponse)
    def model_page(model: str) -> HTMLResponse:
        settings_of(model)
        return page_html("../../")

    @app.get("/static/{name:path}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(status_code=404, detail="not found")
        return Response((STATIC / name).read_bytes(), media_type=STATIC_FILES[name])

    # -- JSON ----------------------------------------------------------------------------------------------
    @app.get("/api/models")
    def models_list() -> dict[str, Any]:
        known = runs()
        names = model_names(env)
        now = activity_of(names)
        listed = []
        for name in names:
            try:
                summary = data.model_summary(load_settings(model=name, env=env), known)
            except Exception as exc:  # one broken model never hides the others
                log.exception("models list: %s cannot be read", name)
                error = redact_text(str(exc))
                summary = {"model": name, "page": data.urls.model_page(name), "error": error}
            listed.append({**summary, "status": status.model_status(summary, now)})
        return {"models": listed, "failed_runs_days": data.RECENT_FAILURE_DAYS if known is not None else None,
                "refresh_seconds": status.REFRESH_SECONDS}  # fmt: skip

    @app.get("/api/models/{model}/status")
    def model_status(model: str) -> dict[str, Any]:
        settings = settings_of(model)
        return status.model_status(data.model_summary(settings, runs()), activity_of([model]))

    @app.get("/api/models/{model}")
    def model_overview(model: str) -> dict[str, Any]:
        return data.model_overview(settings_of(model))

    @app.get("/api/models/{model}/page")
    def page_data(model: str) -> dict[str, Any]:
        return data.page_data(settings_of(model))

    @app.get("/api/models/{model}/versions/{version}")
    def version(model: str, version: str) -> dict[str, Any]:
        settings = settings_of(model)
        try:
            return data.version_detail(settings, version)
        except Exception as exc:
            raise HTTPException(status_code=404, detail="the model has no such version") from exc

    @app.get("/api/models/{model}/drift")
    def drift(model: str) -> dict[str, Any]:
        return data.drift_history(settings_of(model))

    @app.get("/api/models/{model}/validation")
    def validation(model: str) -> dict[str, Any]:
        return {"days": data.validation_days(settings_of(model))}

    @app.get("/api/models/{model}/scoring")
    def scoring(model: str) -> dict[str, Any]:
        return {"days": data.scoring_days(settings_of(model))}

    @app.get("/api/models/{model}/scores/{day}")
    def scores(model: str, day: str) -> dict[str, Any]:
        return data.scores_day(settings_of(model), _day(day))

    # -- reports -------------------------------------------------------------------------------------------
    @app.get("/models/{model}/reports/drift/{day}", response_class=HTMLResponse)
    def drift_report(model: str, day: str) -> Response:
        """Our page framing the day's Evidently report (its script cannot take the tab anywhere)."""
        found = _day(day)
        reports.drift_report_path(settings_of(model), found)
        return HTMLResponse(REPORT_FRAME.format(day=found.isoformat()), headers=PAGE_HEADERS)

    @app.get("/models/{model}/reports/drift/{day}/report.html", response_class=HTMLResponse)
    def drift_report_file(model: str, day: str, request: Request) -> Response:
        """The Evidently report itself, only into a frame: a browser opening it as a page is sent to the frame."""
        found, settings = _day(day), settings_of(model)
        if request.headers.get("sec-fetch-dest", "iframe") != "iframe":
            reports.drift_report_path(settings, found)
            return RedirectResponse(f"../{found.isoformat()}", status_code=303)
        return Response(reports.drift_report_html(settings, found), media_type="text/html", headers=EVIDENTLY_HEADERS)

    @app.get("/models/{model}/reports/gate/{run_id}", response_class=HTMLResponse)
    def gate_report(model: str, run_id: str) -> Response:
        return report_response(reports.gate_report_html(settings_of(model), run_id))

    @app.get("/models/{model}/data-docs/{page:path}")
    def data_docs(model: str, page: str) -> Response:
        body = reports.data_docs_file(settings_of(model), page)
        return report_response(body, _DATA_DOCS_TYPES.get(Path(page).suffix.lower(), "application/octet-stream"))

    # -- Airflow's DAG and run pages ---------------------------------------------------------------------
    def model_run(dag_id: str, run_id: str) -> tuple[Settings, str]:
        """The model and kind of a model's DAG id; 404 for another DAG or a run id Airflow would not make."""
        try:
            model, kind = run_views.model_and_kind(dag_id, model_names(env))
        except LookupError:
            raise HTTPException(status_code=404, detail="not a DAG of a model of the models folder") from None
        if not run_views.RUN_ID.fullmatch(run_id):
            raise HTTPException(status_code=404, detail="not a run id of Airflow's run-id pattern")
        return settings_of(model), kind

    def record_of(dag_id: str, run_id: str) -> run_views.RunRecord | None:
        if run_record is None:
            return None
        try:
            return run_record(dag_id, run_id)
        except Exception:
            log.exception("could not read the DAG run")
            return None

    @app.get("/dags/{dag_id}/", response_class=HTMLResponse)
    def dag_tab(dag_id: str) -> Response:
        try:
            model, _ = run_views.model_and_kind(dag_id, model_names(env))
        except LookupError:
            return HTMLResponse(run_views.not_found("../../"), status_code=404, headers=PAGE_HEADERS)
        return RedirectResponse("../../" + data.urls.model_page(model), status_code=307)

    @app.get("/api/dags/{dag_id}/runs/{run_id:path}")
    def run_evidence(dag_id: str, run_id: str) -> dict[str, Any]:
        settings, kind = model_run(dag_id, run_id)
        return run_views.run_view(settings, kind, run_id, record_of(dag_id, run_id))

    @app.get("/dags/{dag_id}/runs/{run_id:path}", response_class=HTMLResponse)
    def run_tab(dag_id: str, run_id: str) -> Response:
        try:
            settings, kind = model_run(dag_id, run_id)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            return HTMLResponse(run_views.not_found("../../../"), status_code=404, headers=PAGE_HEADERS)
        view = run_views.run_view(settings, kind, run_id, record_of(dag_id, run_id))
        return HTMLResponse(run_views.render(view), headers=PAGE_HEADERS)

    # -- metrics -------------------------------------------------------------------------------------------
    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        text = metrics.render(env, runs())
        if extra_metrics is not None:
            text += extra_metrics()
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    # Last: any other path is 404, but only after the login check (no probing of the app without a login).
    @app.api_route("/{anything:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def not_found(anything: str) -> Response:
        raise HTTPException(status_code=404, detail="not found")

    return app
