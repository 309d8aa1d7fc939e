"""The MLOps page as a FastAPI app: the HTML page, its static files, its JSON endpoints, report pages, metrics.

Airflow mounts it under ``/mlops`` (``plugins/mlops_plugin.py``) and shows the page in its navigation.
Airflow does not protect plugin apps, so :func:`create_app` takes the login check as a dependency and puts
it on every route, the static files included (they are served by a route, not a mount, for that reason).
The app knows nothing about Airflow: the plugin passes Airflow's auth manager check, tests may pass another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from mlops.config import Settings, load_settings
from mlops.web import data, metrics

STATIC = Path(__file__).parent / "static"
#: Files the page may load: the page's own and the vendored, pinned charting library (no CDN).
STATIC_FILES = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "icon.svg": "image/svg+xml",
    "vendor/uplot-1.6.32/uPlot.iife.min.js": "text/javascript",
    "vendor/uplot-1.6.32/uPlot.min.css": "text/css",
}
_DATA_DOCS_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".png": "image/png",
                    ".svg": "image/svg+xml", ".json": "application/json", ".ico": "image/x-icon"}  # fmt: skip
NO_STORE = {"Cache-Control": "no-store"}


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=404, detail=f"not a day: {value!r}") from None


def create_app(
    require_reader: Callable[..., Any],
    settings_factory: Callable[[], Settings] = load_settings,
    extra_metrics: Callable[[], str] | None = None,
) -> FastAPI:
    """The app; ``require_reader`` raises 401/403 for requests that may not read the platform's data.

    ``extra_metrics`` adds Prometheus lines that need the host (Airflow: last success per DAG).
    """
    app = FastAPI(
        title="MLOps",
        description="Champion, challenger, gate evidence, alias ledger, drift, validation and scoring.",
        dependencies=[Depends(require_reader)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(FileNotFoundError)
    async def _missing(_request: Request, exc: FileNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(), headers=NO_STORE)

    @app.get("/static/{name:path}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(status_code=404, detail="not found")
        return Response((STATIC / name).read_bytes(), media_type=STATIC_FILES[name])

    @app.get("/api/page")
    def page_data() -> dict[str, Any]:
        return data.page_data(settings_factory())

    @app.get("/api/models")
    def models_overview() -> dict[str, Any]:
        return {"models": [data.model_overview(settings_factory())]}

    @app.get("/api/models/{model}/versions/{version}")
    def version(model: str, version: str) -> dict[str, Any]:
        settings = settings_factory()
        if model != settings.model_name:
            raise HTTPException(status_code=404, detail=f"unknown model {model!r}")
        try:
            return data.version_detail(settings, version)
        except Exception as exc:
            raise HTTPException(status_code=404, detail=f"{model} has no version {version}") from exc

    @app.get("/api/drift")
    def drift() -> dict[str, Any]:
        return data.drift_history(settings_factory())

    @app.get("/api/validation")
    def validation() -> dict[str, Any]:
        return {"days": data.validation_days(settings_factory())}

    @app.get("/api/scoring")
    def scoring() -> dict[str, Any]:
        return {"days": data.scoring_days(settings_factory())}

    @app.get("/api/scores/{day}")
    def scores(day: str) -> dict[str, Any]:
        return data.scores_day(settings_factory(), _day(day))

    @app.get("/reports/drift/{day}", response_class=HTMLResponse)
    def drift_report(day: str) -> HTMLResponse:
        return HTMLResponse(data.drift_report_html(settings_factory(), _day(day)))

    @app.get("/reports/gate/{run_id}", response_class=HTMLResponse)
    def gate_report(run_id: str) -> HTMLResponse:
        return HTMLResponse(data.gate_report_html(settings_factory(), run_id))

    @app.get("/data-docs/{page:path}")
    def data_docs(page: str) -> Response:
        body = data.data_docs_file(settings_factory(), page)
        return Response(body, media_type=_DATA_DOCS_TYPES.get(Path(page).suffix, "application/octet-stream"))

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        text = metrics.render(settings_factory())
        if extra_metrics is not None:
            text += extra_metrics()
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return app
