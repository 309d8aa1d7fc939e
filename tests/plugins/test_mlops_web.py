"""The MLOps page's app without Airflow, on a models folder of two models (and, where said, a broken third).

Every route is behind the login check it is given; the list shows each model's own state; a model's routes
read only that model's lake and MLflow experiment and refuse a model that has no file; the Prometheus text
has every model, each model-level sample labelled with it; task links open the model's own pages.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from mlops import models
from mlops.config import PROJECT_ROOT, load_settings
from mlops.data.lake import STATS, VALIDATED, Lake
from mlops.drift import append_history
from mlops.ledger import Ledger
from mlops.web import urls
from mlops.web.app import STATIC, STATIC_FILES, create_app
from mlops.web.data import DagRuns
from mlops.web.metrics import exporter, format_samples

CARDS, EU = "card_transactions", "card_transactions_eu"
DAY = dt.date(2026, 11, 10)
AUTH = {"Authorization": "Bearer good"}
MODEL_ROUTES = ["/models/{m}/", "/models/{m}", "/api/models/{m}", "/api/models/{m}/page", "/api/models/{m}/drift",
                "/api/models/{m}/validation", "/api/models/{m}/scoring", "/api/models/{m}/scores/2026-11-10",
                "/api/models/{m}/versions/1", "/models/{m}/reports/drift/2026-11-10", "/models/{m}/reports/gate/abc",
                "/models/{m}/data-docs/index.html", "/models/{m}/reports/drift/2026-11-10/report.html"]  # fmt: skip
ROUTES = ["/", "/static/app.js", "/api/models", "/metrics", "/api/drift", "/not-a-page",
          *(route.format(m=CARDS) for route in MODEL_ROUTES)]  # fmt: skip


def _only_with_token(request: Request) -> None:
    if request.headers.get("authorization") != "Bearer good":
        raise HTTPException(401, "Not authenticated")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A models folder with the card_transactions model and a copy of it under another name."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(PROJECT_ROOT / "include/models/card_transactions.yaml", folder / f"{CARDS}.yaml")
    shutil.copy(PROJECT_ROOT / "include/models/card_transactions.yaml", folder / f"{EU}.yaml")
    env = {"MLOPS_HOME": str(tmp_path / "mlops"), "MLOPS_MODELS_DIR": str(folder)}
    for key in ("MLOPS_MODEL", "MLOPS_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def of(env: dict[str, str]) -> Any:
    return lambda model: load_settings(model=model, env=env)


RUNS = [
    DagRuns(f"{CARDS}__data_validation", dt.datetime(2026, 11, 10, 1, 0, tzinfo=dt.UTC), failed=5, failed_recent=2),
    DagRuns(f"{CARDS}__batch_scoring", None, failed=1, failed_recent=1),
    DagRuns(f"{EU}__batch_scoring", dt.datetime(2026, 11, 10, 2, 0), failed=4, failed_recent=0),
    DagRuns("some_other_dag", None, failed=9, failed_recent=9),
]


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(_only_with_token, env=env, dag_runs=lambda: RUNS)) as client:
        yield client


def _get(client: TestClient, path: str) -> Any:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_checks_the_login(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer bad"}).status_code == 401


@pytest.mark.parametrize("route", MODEL_ROUTES)
def test_a_model_without_a_file_is_not_found_and_its_name_not_echoed(client: TestClient, route: str) -> None:
    for name in ("<script>alert(1)</script>", "card_transactions_us"):
        response = client.get(route.format(m=name.replace("/", "%2F")), headers=AUTH, follow_redirects=False)
        assert response.status_code == 404, (route, name, response.status_code)
        assert name not in response.text and "<script" not in response.text


def test_the_models_list_shows_each_models_own_state(client: TestClient, of: Any) -> None:
    cards, eu = of(CARDS), of(EU)
    assert Lake.from_settings(cards).root != Lake.from_settings(eu).root, "one lake folder per model"
    lake = Lake.from_settings(cards)
    lake.write_json(lake.marker("raw", DAY, VALIDATED), {"rows": 100, "dvc": {"revision": "abc123"}})
    stats = {"rows": 100, "scoring_seconds": 0.5, "positive_rate": 0.02, "model_version": "1"}
    lake.write_json(lake.marker("scores", DAY + dt.timedelta(days=1), STATS), stats)
    report = lake.report("drift", DAY, "report.html", CARDS)
    append_history(lake, CARDS, {"day": DAY.isoformat(), "features": {"amount": {"psi": 0.7}}, "breached": True,
                                 "severe": True, "triggered": True, "breached_features": {"amount": 0.7},
                                 "report_uri": lake.url(report)})  # fmt: skip
    ledger = Ledger(cards.ledger_uri)
    try:
        ledger.move(CARDS, models.CHAMPION, "1", compare=False, expected=None, actor="cli:test", reason="first", run="")
    finally:
        ledger.dispose()

    listed = _get(client, "/api/models").json()
    assert [m["model"] for m in listed["models"]] == [CARDS, EU] and listed["failed_runs_days"] == 7
    first, second = listed["models"]
    assert first["champion"]["version"] == "1" and first["champion"]["since"]
    assert (first["last_validated"], first["last_scored"]) == ("2026-11-10", "2026-11-11")
    assert first["drift"] == {
        "day": "2026-11-10",
        "state": "severe",
        "triggered": True,
        "breached_features": ["amount"],
        "report": f"models/{CARDS}/reports/drift/2026-11-10",
    }
    assert first["failed_runs"] == 3, "failed runs of the model's own DAGs in the last days, no other DAG's"
    assert first["page"] == f"models/{CARDS}/"
    assert second["champion"] is None and second["last_validated"] is None and second["last_scored"] is None
    assert second["drift"] is None and second["failed_runs"] == 0

    # Each model's page is the same page, with its base at the plugin's root so its relative URLs still work.
    page = _get(client, f"/models/{EU}/").text
    assert '<base href="../../" />' in page and 'src="static/app.js"' in page
    assert '<base href="./" />' in _get(client, "/").text
    redirect = client.get(f"/models/{EU}", headers=AUTH, follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == f"{EU}/"


def test_a_models_routes_read_only_its_own_lake(client: TestClient, of: Any) -> None:
    cards = of(CARDS)
    lake = Lake.from_settings(cards)
    lake.write_json(
        lake.marker("raw", DAY, VALIDATED), {"rows": 100, "data_docs": f"file://{lake.data_docs('x.html')}"}
    )
    lake.write_json(lake.marker("scores", DAY, STATS), {"rows": 100, "scoring_seconds": 1.0, "model_version": "1"})
    report = lake.report("drift", DAY, "report.html", CARDS)
    lake.fs.makedirs(report.rsplit("/", 1)[0], exist_ok=True)
    lake.fs.pipe(report, b"<html>the cards report</html>")
    lake.fs.makedirs(lake.data_docs(), exist_ok=True)
    lake.fs.pipe(lake.data_docs("x.html"), b"<html>cards data docs</html>")

    validation = _get(client, f"/api/models/{CARDS}/validation").json()["days"]
    assert [d["day"] for d in validation] == ["2026-11-10"]
    assert validation[0]["data_docs"] == f"models/{CARDS}/data-docs/x.html"
    assert _get(client, f"/api/models/{CARDS}/scoring").json()["days"][0]["stats"] == (
        f"api/models/{CARDS}/scores/2026-11-10"
    )
    assert _get(client, f"/api/models/{CARDS}/scores/2026-11-10").json()["stats"]["rows"] == 100
    assert "the cards report" in _get(client, f"/models/{CARDS}/reports/drift/2026-11-10/report.html").text
    assert "cards data docs" in _get(client, f"/models/{CARDS}/data-docs/x.html").text

    # The other model sees none of it, under any of its routes.
    assert _get(client, f"/api/models/{EU}/validation").json() == {"days": []}
    assert _get(client, f"/api/models/{EU}/scoring").json() == {"days": []}
    for path in (f"/api/models/{EU}/scores/2026-11-10", f"/models/{EU}/reports/drift/2026-11-10",
                 f"/models/{EU}/reports/drift/2026-11-10/report.html",
                 f"/models/{EU}/data-docs/x.html", f"/models/{CARDS}/data-docs/../../../etc/passwd"):  # fmt: skip
        assert client.get(path, headers=AUTH).status_code == 404, path


def test_an_empty_model_has_empty_sections_and_its_own_dags(client: TestClient) -> None:
    model = _get(client, f"/api/models/{EU}").json()
    assert model["model"] == EU and model["champion"] is None and model["versions"] == [] and model["ledger"] == []
    assert model["actions"]["retrain"] == {"dag_id": f"{EU}__continuous_training",
                                           "href": f"dags/{EU}__continuous_training"}  # fmt: skip
    assert model["actions"]["rollback"]["dag_id"] == f"{EU}__model_rollback"
    assert _get(client, f"/api/models/{EU}/drift").json()["days"] == []
    assert client.get(f"/api/models/{EU}/reports/drift/not-a-day", headers=AUTH).status_code == 404
    assert client.get(f"/models/{EU}/reports/drift/not-a-day", headers=AUTH).status_code == 404
    assert client.get(f"/api/models/{EU}/versions/1", headers=AUTH).status_code == 404
    assert "text/html" in _get(client, "/").headers["content-type"]


def test_a_gate_report_is_served_only_under_its_own_model(client: TestClient, of: Any) -> None:
    import mlflow

    run_of = {}
    for name in (CARDS, EU):
        settings = of(name)
        experiment = models.experiment_id(settings)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_text(f"<html>gates of {name}</html>", models.Artifacts.GATE_REPORT_HTML)
        run_of[name] = run.info.run_id
    assert f"gates of {CARDS}" in _get(client, f"/models/{CARDS}/reports/gate/{run_of[CARDS]}").text
    assert f"gates of {EU}" in _get(client, f"/models/{EU}/reports/gate/{run_of[EU]}").text
    for model, run_id in ((EU, run_of[CARDS]), (CARDS, run_of[EU]), (CARDS, "0" * 32)):
        response = client.get(f"/models/{model}/reports/gate/{run_id}", headers=AUTH)
        assert response.status_code == 404 and "gates of" not in response.text, (model, run_id)


def test_static_files_are_the_pinned_ones(client: TestClient) -> None:
    for name in STATIC_FILES:
        assert (STATIC / name).is_file(), name
        assert client.get(f"/static/{name}", headers=AUTH).status_code == 200
    assert client.get("/static/../app.py", headers=AUTH).status_code == 404
    page = (STATIC / "index.html").read_text()
    assert "http" not in re.sub(r"<!--.*?-->", "", page, flags=re.S), "no CDN: every asset is served by the plugin"
    assert (STATIC / "vendor/uplot-1.6.32/LICENSE").is_file()


def test_drift_history_becomes_series_with_thresholds(client: TestClient, of: Any) -> None:
    settings = of(CARDS)
    lake = Lake.from_settings(settings)
    for offset, (psi, triggered) in enumerate([(0.01, False), (0.3, False), (0.6, True)]):
        day = (DAY + dt.timedelta(days=offset)).isoformat()
        report = lake.report("drift", dt.date.fromisoformat(day), "report.html", settings.dataset.name)
        append_history(lake, settings.dataset.name, {
            "day": day, "features": {"amount": {"psi": psi}, "country": {"psi": 0.01}}, "score": {"psi": psi / 2},
            "breached": psi >= 0.2, "severe": psi >= 0.5, "triggered": triggered,
            "breached_features": {"amount": psi} if psi >= 0.2 else {}, "report_uri": lake.url(report),
        })  # fmt: skip
    drift = _get(client, f"/api/models/{CARDS}/drift").json()
    assert drift["features"] == ["amount", "country"]
    assert [d["psi"]["amount"] for d in drift["days"]] == [0.01, 0.3, 0.6]
    assert [d["triggered"] for d in drift["days"]] == [False, False, True]
    assert drift["days"][2]["report"] == f"models/{CARDS}/reports/drift/2026-11-12"
    assert drift["thresholds"]["psi"] == settings.drift.psi_threshold
    assert _get(client, f"/api/models/{EU}/drift").json()["days"] == [], "another model's history is its own"


def _families(text: str) -> dict[str, list[str]]:
    """Samples per metric name; fails when a name's samples are not in one group (the format requires it)."""
    families: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            current = line.split()[2]
            assert current not in families, f"{current} has two groups"
            families[current] = []
        elif line and not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] == current, f"{line!r} outside its group"
            families[current].append(line)
    return families


def test_prometheus_text_has_every_model_labelled(client: TestClient, of: Any) -> None:
    lake = Lake.from_settings(of(EU))
    lake.write_json(lake.marker("raw", DAY, VALIDATED), {"rows": 100})
    families = _families(_get(client, "/metrics").text)
    assert families["mlops_metrics_errors_total"] == ["mlops_metrics_errors_total 0.0"]
    assert families["mlops_model_info"] == [f'mlops_model_info{{dataset="{m}",model="{m}"}} 1.0' for m in (CARDS, EU)]
    assert (
        f'mlops_validation_validated_days{{dataset="{EU}",model="{EU}"}} 1.0'
        in families["mlops_validation_validated_days"]
    )
    assert (
        f'mlops_validation_validated_days{{dataset="{CARDS}",model="{CARDS}"}} 0.0'
        in families["mlops_validation_validated_days"]
    )
    for name, samples in families.items():
        if name.startswith("mlops_dag_"):
            continue
        for sample in samples:
            assert name == "mlops_metrics_errors_total" or re.search(r'model="[^"]+"', sample), sample
    # DAG runs (from the host): the model's DAGs carry model and kind; a DAG that is no model's keeps dag_id only.
    failed = families["mlops_dag_failed_runs_recent"]
    assert (
        f'mlops_dag_failed_runs_recent{{dag_id="{CARDS}__data_validation",kind="data_validation",model="{CARDS}"}} 2.0'
        in failed
    )
    assert 'mlops_dag_failed_runs_recent{dag_id="some_other_dag"} 9.0' in failed
    assert len(families["mlops_dag_last_success_timestamp_seconds"]) == 2

    sample = format_samples([("m", {"feature": 'a"b'}, 1.5), ("n", {}, 2.0), ("m", {}, float("nan"))], {"m": "help"})
    assert sample == '# HELP m help\n# TYPE m gauge\nm{feature="a\\"b"} 1.5\nm NaN\n# HELP n n\n# TYPE n gauge\nn 2.0\n'


def test_a_broken_model_file_is_shown_and_the_others_still_served(client: TestClient, env: dict[str, str]) -> None:
    (Path(env["MLOPS_MODELS_DIR"]) / "broken.yaml").write_text("storage: {lake_root: /elsewhere}\n")
    listed = {m["model"]: m for m in _get(client, "/api/models").json()["models"]}
    assert set(listed) == {CARDS, EU, "broken"}
    assert "storage" in listed["broken"]["error"] and listed[CARDS]["error"] is None
    assert client.get("/api/models/broken", headers=AUTH).status_code == 500
    text = _get(client, "/metrics").text
    assert "mlops_metrics_errors_total 1.0" in text and f'model="{EU}"' in text


def test_the_exporter_serves_every_model_on_its_own_bind(env: dict[str, str]) -> None:
    import threading
    import urllib.error
    import urllib.request

    server = exporter("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        text = urllib.request.urlopen(f"{url}/metrics", timeout=60).read().decode()
        assert "mlops_metrics_errors_total 0.0" in text
        for model in (CARDS, EU):
            assert f'mlops_validation_validated_days{{dataset="{model}",model="{model}"}}' in text
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{url}/other", timeout=10)
    finally:
        server.shutdown()


def test_links_are_shared_with_the_task_buttons(tmp_path: Path) -> None:
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    lake = Lake.from_settings(settings)
    page = f"file://{lake.data_docs('validations/suite/run/x.html')}"
    assert urls.data_docs(EU, lake, page) == f"models/{EU}/data-docs/validations/suite/run/x.html"
    assert urls.data_docs(EU, lake, "file:///elsewhere/x.html") is None
    assert urls.report_day("/lake/reports/drift/cards/dt=2026-11-12/report.html") == "2026-11-12"
    assert urls.plugin_path(urls.drift_report(EU, "2026-11-12"), "/airflow/") == (
        f"/airflow/mlops/models/{EU}/reports/drift/2026-11-12"
    )
    assert urls.mlflow_ui(settings, {"MLOPS_MLFLOW_UI_URL": "http://mlflow:5000/"}) == "http://mlflow:5000"
    assert urls.mlflow_ui(settings, {}) == urls.DEFAULT_MLFLOW_UI
    assert urls.airflow_run(f"{EU}__continuous_training", "manual__2026-11-10T00:00:00+00:00") == (
        f"dags/{EU}__continuous_training/runs/manual__2026-11-10T00%3A00%3A00%2B00%3A00"
    )


class _TaskInstance(SimpleNamespace):
    def xcom_pull(self, task_ids: str) -> Any:
        return self.returned


def test_task_links_open_the_models_own_pages(env: dict[str, str], of: Any) -> None:
    from mlops.airflow.links import DataDocsLink, DriftReportLink, GateReportLink, ScoresLink

    def ti(kind: str, returned: dict[str, Any]) -> _TaskInstance:
        return _TaskInstance(dag_id=f"{EU}__{kind}", task_id="t", run_id="r", returned=returned)

    gate = GateReportLink().get_link(None, ti_key=ti("continuous_training", {"run_id": "abc"}))
    assert gate.endswith(f"/mlops/models/{EU}/reports/gate/abc")
    report_uri = "/lake/reports/drift/x/dt=2026-11-12/report.html"
    drift = DriftReportLink().get_link(None, ti_key=ti("drift_monitoring", {"report_uri": report_uri}))
    assert drift.endswith(f"/mlops/models/{EU}/reports/drift/2026-11-12")
    scores = ScoresLink().get_link(None, ti_key=ti("batch_scoring", {"day": "2026-11-12"}))
    assert scores.endswith(f"/mlops/api/models/{EU}/scores/2026-11-12")
    lake = Lake.from_settings(of(EU))
    docs = DataDocsLink().get_link(
        None, ti_key=ti("data_validation", {"data_docs": f"file://{lake.data_docs('v.html')}"})
    )
    assert docs.endswith(f"/mlops/models/{EU}/data-docs/v.html")
    other = Lake.from_settings(of(CARDS))  # a page of another model's lake is not linked from this model's task
    assert DataDocsLink().get_link(None, ti_key=ti("data_validation", {"data_docs": other.data_docs("v.html")})) == ""
