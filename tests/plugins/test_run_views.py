"""The MLOps tabs on Airflow's own DAG and run pages, with the app of ``test_mlops_web`` and no Airflow.

A continuous_training run shows its candidate, the ledger's gate verdict, each gate, its links and the drift
evidence that triggered it; a drift_monitoring run shows the days it checked and its decision; another kind
says there is nothing to show. The DAG and run ids come from the URL: anything but a model's DAG and an
Airflow run id is 404, never echoed. The plugin registers the tabs with destinations Airflow accepts.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from fastapi.testclient import TestClient

from mlops import models
from mlops.config import PROJECT_ROOT
from mlops.data.lake import Lake
from mlops.drift import append_history
from mlops.ledger import GateVerdict, Ledger
from mlops.web import urls
from mlops.web.app import PAGE_CSP, create_app
from mlops.web.runs import RunRecord
from tests.plugins.test_mlops_web import AUTH, CARDS, DAY, _only_with_token
from tests.plugins.test_web_hardening import PAYLOAD

TRAINING, DRIFT = f"{CARDS}__continuous_training", f"{CARDS}__drift_monitoring"
TRAINING_RUN = "manual__2026-11-11T03:00:00+00:00"
DRIFT_RUN = "asset_triggered__2026-11-11T02:00:00.123+00:00"
CHECKS = [
    {"name": "absolute:auc_pr", "kind": "absolute", "value": 0.61, "threshold": 0.3, "passed": True, "detail": ""},
    {"name": "champion:auc_pr", "kind": "champion", "value": 0.61, "threshold": 0.58, "passed": True, "detail": ""},
]


def _records(report_uri: str) -> dict[tuple[str, str], RunRecord]:
    """What Airflow's DB would say of the two runs: the training run's conf, the drift run's check_drift result."""
    conf = {"reason": f"drift: severe {PAYLOAD}", "drift": {"window": {"days": [DAY.isoformat()]},
            "breached_features": {"amount": 0.71}, "report_uri": report_uri}}  # fmt: skip
    checked = {"checked": [DAY.isoformat(), (DAY + dt.timedelta(days=1)).isoformat()],
               "decision": {"trigger": True, "reason": "severe drift: amount PSI 0.710"}}  # fmt: skip
    return {
        (TRAINING, TRAINING_RUN): RunRecord(TRAINING, TRAINING_RUN, "success", None, conf, {}),
        (DRIFT, DRIFT_RUN): RunRecord(DRIFT, DRIFT_RUN, "success", None, {}, {"check_drift": checked}),
    }


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A models folder with the card_transactions model, its home under ``tmp_path``."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(PROJECT_ROOT / "include/models/card_transactions.yaml", folder / f"{CARDS}.yaml")
    env = {"MLOPS_HOME": str(tmp_path / "mlops"), "MLOPS_MODELS_DIR": str(folder)}
    for key in ("MLOPS_MODEL", "MLOPS_CONFIG", urls.MLFLOW_UI_ENV, "MLOPS__MLFLOW__TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[TestClient]:
    records: dict[tuple[str, str], RunRecord] = {}
    app = create_app(_only_with_token, env=env, run_record=lambda dag, run: records.get((dag, run)))
    with TestClient(app) as client:
        client.records = records  # type: ignore[attr-defined]
        yield client


def _plant_training(env: dict[str, str]) -> tuple[str, str]:
    """A training run of the Airflow run with a gate report, the ledger's passing verdict and version 1."""
    from mlops.config import load_settings

    settings = load_settings(model=CARDS, env=env)
    tags = {models.Tags.AIRFLOW_DAG_ID: TRAINING, models.Tags.AIRFLOW_RUN_ID: TRAINING_RUN}
    with mlflow.start_run(experiment_id=models.experiment_id(settings), tags=tags) as run:
        mlflow.log_dict({"passed": True, "checks": CHECKS}, models.Artifacts.GATE_REPORT_JSON)
    client = models.client(settings)
    client.create_registered_model(CARDS)
    client.create_model_version(CARDS, f"runs:/{run.info.run_id}/model", run.info.run_id)
    ledger = Ledger(settings.ledger_uri)
    try:
        ledger.record_verdict(GateVerdict(CARDS, run.info.run_id, True, "3", "a", "h", "r", f"airflow:{TRAINING}",
                                          TRAINING_RUN))  # fmt: skip
    finally:
        ledger.dispose()
    lake = Lake.from_settings(settings)
    report = lake.report("drift", DAY, "report.html", settings.dataset.name)
    return run.info.run_id, lake.url(report)


def _json(client: TestClient, dag: str, run: str) -> dict[str, Any]:
    response = client.get(f"/api/dags/{dag}/runs/{run.replace('+', '%2B')}", headers=AUTH)
    assert response.status_code == 200, response.text[:300]
    return response.json()


def _page(client: TestClient, dag: str, run: str) -> str:
    response = client.get(f"/dags/{dag}/runs/{run.replace('+', '%2B')}", headers=AUTH)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-security-policy"] == PAGE_CSP, "the app's page policy: no inline script"
    assert "<script>" not in response.text and '<script src="static/run.js" defer></script>' in response.text
    return response.text


def test_a_training_run_shows_its_gate_verdict_and_the_drift_that_triggered_it(
    client: TestClient, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    training_run, report_uri = _plant_training(env)
    client.records.update(_records(report_uri))  # type: ignore[attr-defined]

    view = _json(client, TRAINING, TRAINING_RUN)
    assert (view["model"], view["kind"], view["state"]) == (CARDS, "continuous_training", "success")
    candidate = view["training"]["candidate"]
    assert candidate["training_run"] == training_run and candidate["version"] == "1"
    assert candidate["verdict"]["passed"] is True and candidate["verdict"]["compared_with"] == "3"
    assert [check["name"] for check in candidate["checks"]] == ["absolute:auc_pr", "champion:auc_pr"]
    assert candidate["links"]["gate_report"] == f"models/{CARDS}/reports/gate/{training_run}"
    assert candidate["links"]["mlflow_run"].endswith(f"/runs/{training_run}")
    assert view["training"]["drift"] == {"window": [DAY.isoformat()], "breached_features": {"amount": 0.71},
                                         "report": f"models/{CARDS}/reports/drift/{DAY}"}  # fmt: skip

    page = _page(client, TRAINING, TRAINING_RUN)
    assert 'data-testid="candidate-version">v1<' in page and '<span class="pass">pass</span>' in page
    assert f'href="models/{CARDS}/reports/gate/{training_run}"' in page and "amount (PSI 0.710)" in page
    assert PAYLOAD not in page and "&lt;script&gt;" in page, "the run's conf is shown as text"


def test_a_drift_run_shows_the_days_it_checked_and_its_decision(client: TestClient, env: dict[str, str]) -> None:
    from mlops.config import load_settings

    lake = Lake.from_settings(load_settings(model=CARDS, env=env))
    report = lake.url(lake.report("drift", DAY, "report.html", CARDS))
    append_history(lake, CARDS, {"day": DAY.isoformat(), "breached": True, "severe": True, "triggered": True,
                                 "breached_features": {"amount": 0.71}, "champion_version": "3",
                                 "report_uri": report})  # fmt: skip
    append_history(lake, CARDS, {"day": (DAY + dt.timedelta(days=1)).isoformat(), "breached": False})
    client.records.update(_records(report))  # type: ignore[attr-defined]

    view = _json(client, DRIFT, DRIFT_RUN)["drift"]
    assert view["decision"] == {"trigger": True, "reason": "severe drift: amount PSI 0.710"}
    first, second = view["days"]
    assert (first["day"], first["severe"], first["triggered"], first["champion_version"]) == (
        DAY.isoformat(), True, True, "3")  # fmt: skip
    assert first["report"] == f"models/{CARDS}/reports/drift/{DAY}" and second["breached"] is False
    page = _page(client, DRIFT, DRIFT_RUN)
    assert "Decision: retraining triggered" in page and "severe" in page and "amount (PSI 0.710)" in page

    # A run Airflow has no check result for (skipped, or not that far yet) says so.
    assert _json(client, DRIFT, "manual__other")["drift"] == {"days": [], "decision": None}


def test_other_kinds_link_the_models_page_and_other_dags_are_not_found(client: TestClient) -> None:
    page = _page(client, f"{CARDS}__batch_scoring", "scheduled__2026-11-11T00:00:00+00:00")
    assert 'data-testid="nothing-to-show"' in page and f'href="models/{CARDS}/"' in page
    tab = client.get(f"/dags/{CARDS}__model_rollback/", headers=AUTH, follow_redirects=False)
    assert tab.status_code == 307 and tab.headers["location"] == f"../../models/{CARDS}/"

    refused = {  # a DAG that is no model's, an unknown model or kind, a run id Airflow would not make
        ("some_other_dag", "manual__1"), ("<script>x</script>__continuous_training", "manual__1"),
        (f"{CARDS}_us__continuous_training", "manual__1"), (f"{CARDS}__retraining", "manual__1"),
        (TRAINING, "x' or '1'='1"), (TRAINING, "<img src=x onerror=alert(1)>"),
    }  # fmt: skip
    for dag, run in refused:
        for path in (f"/dags/{dag}/runs/{run}", f"/api/dags/{dag}/runs/{run}", f"/dags/{dag}/"):
            if path.startswith("/dags/") and path.endswith("/") and run != "manual__1":
                continue
            response = client.get(path, headers=AUTH, follow_redirects=False)
            assert response.status_code == 404, (path, response.status_code)
            assert dag not in response.text and run not in response.text and "<img" not in response.text, path
    for path in (f"/dags/{TRAINING}/runs/{TRAINING_RUN}", f"/api/dags/{TRAINING}/runs/x", f"/dags/{TRAINING}/"):
        assert client.get(path).status_code == 401, "the tabs need a login like every route"


def test_the_plugin_registers_the_tabs_with_destinations_airflow_accepts() -> None:
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    from mlops.airflow.plugin import MlopsPlugin

    views = [ExternalViewResponse.model_validate(view) for view in MlopsPlugin.external_views]
    assert [(view.destination, view.url_route) for view in views] == [
        ("nav", "mlops"), ("dag_run", "mlops-run"), ("dag", "mlops-model")]  # fmt: skip
    by_destination = {view.destination: view.href for view in views}
    assert by_destination["dag_run"] == "mlops/dags/{DAG_ID}/runs/{RUN_ID}"  # Airflow's placeholders
    assert by_destination["dag"] == "mlops/dags/{DAG_ID}/"
