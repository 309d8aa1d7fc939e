"""The MLOps page's app without Airflow: every route is behind the login check it is given, the JSON is right
on an empty home and on one with a champion, and the Prometheus text is well formed."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from mlops.config import Settings, load_settings
from mlops.data.lake import Lake
from mlops.drift import append_history
from mlops.web import urls
from mlops.web.app import STATIC, STATIC_FILES, create_app
from mlops.web.metrics import exporter, format_samples

ROUTES = ["/", "/static/app.js", "/api/page", "/api/models", "/api/drift", "/api/validation", "/api/scoring",
          "/api/scores/2026-11-10", "/reports/drift/2026-11-10", "/reports/gate/abc", "/data-docs/index.html",
          "/metrics", "/api/models/card_transactions/versions/1"]  # fmt: skip


def _only_with_token(request: Request) -> None:
    if request.headers.get("authorization") != "Bearer good":
        raise HTTPException(401, "Not authenticated")


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(_only_with_token, settings_factory=lambda: settings))


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_checks_the_login(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401


def test_empty_home_gives_empty_sections(client: TestClient) -> None:
    auth = {"Authorization": "Bearer good"}
    models = client.get("/api/models", headers=auth).json()["models"][0]
    assert models["champion"] is None and models["versions"] == [] and models["ledger"] == []
    assert models["actions"]["retrain"]["dag_id"] == "continuous_training"
    assert client.get("/api/drift", headers=auth).json()["days"] == []
    assert client.get("/api/validation", headers=auth).json() == {"days": []}
    assert client.get("/api/scores/2026-11-10", headers=auth).status_code == 404
    assert client.get("/reports/drift/not-a-day", headers=auth).status_code == 404
    assert client.get("/data-docs/../../etc/passwd", headers=auth).status_code == 404
    assert "text/html" in client.get("/", headers=auth).headers["content-type"]


def test_static_files_are_the_pinned_ones(client: TestClient) -> None:
    auth = {"Authorization": "Bearer good"}
    for name in STATIC_FILES:
        assert (STATIC / name).is_file(), name
        assert client.get(f"/static/{name}", headers=auth).status_code == 200
    assert client.get("/static/../app.py", headers=auth).status_code == 404
    page = (STATIC / "index.html").read_text()
    assert "http" not in re.sub(r"<!--.*?-->", "", page, flags=re.S), "no CDN: every asset is served by the plugin"
    assert (STATIC / "vendor/uplot-1.6.32/LICENSE").is_file()


def test_drift_history_becomes_series_with_thresholds(client: TestClient, settings: Settings) -> None:
    lake = Lake.from_settings(settings)
    for offset, (psi, triggered) in enumerate([(0.01, False), (0.3, False), (0.6, True)]):
        day = (dt.date(2026, 11, 10) + dt.timedelta(days=offset)).isoformat()
        report = lake.report("drift", dt.date.fromisoformat(day), "report.html", settings.dataset.name)
        append_history(lake, settings.dataset.name, {
            "day": day, "features": {"amount": {"psi": psi}, "country": {"psi": 0.01}}, "score": {"psi": psi / 2},
            "breached": psi >= 0.2, "severe": psi >= 0.5, "triggered": triggered,
            "breached_features": {"amount": psi} if psi >= 0.2 else {}, "report_uri": lake.url(report),
        })  # fmt: skip
    drift = client.get("/api/drift", headers={"Authorization": "Bearer good"}).json()
    assert drift["features"] == ["amount", "country"]
    assert [d["psi"]["amount"] for d in drift["days"]] == [0.01, 0.3, 0.6]
    assert [d["triggered"] for d in drift["days"]] == [False, False, True]
    assert drift["days"][2]["report"] == "reports/drift/2026-11-12"
    assert drift["thresholds"]["psi"] == settings.drift.psi_threshold


def test_prometheus_text_is_well_formed(client: TestClient) -> None:
    text = client.get("/metrics", headers={"Authorization": "Bearer good"}).text
    assert "# TYPE mlops_metrics_errors_total gauge" in text
    assert re.search(r"^mlops_metrics_errors_total 0\.0$", text, re.M), text
    sample = format_samples([("m", {"feature": 'a"b'}, 1.5), ("m", {}, float("nan"))], {"m": "help"})
    assert sample == '# HELP m help\n# TYPE m gauge\nm{feature="a\\"b"} 1.5\nm NaN\n'


def test_the_exporter_serves_the_same_text_on_its_own_bind(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import urllib.error
    import urllib.request

    monkeypatch.setenv("MLOPS_HOME", str(settings.home))
    server = exporter("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        text = urllib.request.urlopen(f"{url}/metrics", timeout=60).read().decode()
        assert "mlops_metrics_errors_total 0.0" in text and "mlops_validation_validated_days" in text
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{url}/other", timeout=10)
    finally:
        server.shutdown()


def test_links_are_shared_with_the_task_buttons(tmp_path: Path) -> None:
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    lake = Lake.from_settings(settings)
    page = f"file://{lake.data_docs('validations/suite/run/x.html')}"
    assert urls.data_docs(lake, page) == "data-docs/validations/suite/run/x.html"
    assert urls.data_docs(lake, "file:///elsewhere/x.html") is None
    assert urls.report_day("/lake/reports/drift/cards/dt=2026-11-12/report.html") == "2026-11-12"
    assert urls.plugin_path("reports/drift/2026-11-12", "/airflow/") == "/airflow/mlops/reports/drift/2026-11-12"
    assert urls.mlflow_ui(settings, {"MLOPS_MLFLOW_UI_URL": "http://mlflow:5000/"}) == "http://mlflow:5000"
    assert urls.mlflow_ui(settings, {}) == urls.DEFAULT_MLFLOW_UI
    assert urls.airflow_run("continuous_training", "manual__2026-11-10T00:00:00+00:00") == (
        "dags/continuous_training/runs/manual__2026-11-10T00%3A00%3A00%2B00%3A00"
    )
