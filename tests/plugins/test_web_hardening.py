"""The MLOps page's trust boundary (issue "Trust, second round"), with the app of ``test_mlops_web`` and no Airflow.

Reports hold what data producers and training runs wrote, and the page is served from Airflow's own origin,
whose session cookie opens Airflow's API: a report is served sandboxed (its scripts never run, it has no
origin), only from the model's own experiment and lake, and no URL the page or a task link shows carries the
tracking server's ``user:password@``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import pytest
from fastapi.testclient import TestClient

from mlops import models
from mlops.config import PROJECT_ROOT, load_settings
from mlops.data.lake import REASON, VALIDATED, Lake
from mlops.ledger import Ledger
from mlops.web import urls
from mlops.web.app import STATIC, create_app
from tests.plugins.test_mlops_web import AUTH, CARDS, DAY, EU, _only_with_token, _TaskInstance

#: What a data producer put in a string value of a landed day: it runs if the page is served as a page of ours.
PAYLOAD = "<img src=x onerror=\"window.__pwned=1\"><script>document.title='pwned'</script>"
USER, PASSWORD = "alice", "s3cr3t-tracking-pass"
CREDENTIALED = f"http://{USER}:{PASSWORD}@mlflow.example:5000"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Two models (card_transactions and a copy under another name), as in ``test_mlops_web``."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in (CARDS, EU):
        shutil.copy(PROJECT_ROOT / "include/models/card_transactions.yaml", folder / f"{name}.yaml")
    env = {"MLOPS_HOME": str(tmp_path / "mlops"), "MLOPS_MODELS_DIR": str(folder)}
    for key in ("MLOPS_MODEL", "MLOPS_CONFIG", urls.MLFLOW_UI_ENV, "MLOPS__MLFLOW__TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(_only_with_token, env=env)) as client:
        yield client


def _settings(env: dict[str, str], model: str = CARDS) -> Any:
    return load_settings(model=model, env=env)


def _gate_run(settings: Any, html: str, experiment: str | None = None) -> str:
    """A run with a gate report, in the model's experiment unless another is given."""
    with mlflow.start_run(experiment_id=experiment or models.experiment_id(settings)) as run:
        mlflow.log_text(html, models.Artifacts.GATE_REPORT_HTML)
    return run.info.run_id


def _quarantined_day_with_payload(lake: Lake) -> None:
    """A quarantined day whose Data Docs page shows the producer's value as GX renders it (unescaped)."""
    lake.fs.makedirs(lake.data_docs("validations/day"), exist_ok=True)
    lake.fs.pipe(lake.data_docs("validations/day/page.html"), f"<html><body>value {PAYLOAD}</body></html>".encode())
    lake.fs.pipe(
        lake.data_docs("validations/day/logo.svg"), f"<svg xmlns='http://www.w3.org/2000/svg'>{PAYLOAD}</svg>".encode()
    )
    lake.fs.pipe(lake.data_docs("validations/day/app.js"), b"document.title = 'pwned'")
    failure = {"rule": "regex", "column": "merchant", "observed": PAYLOAD, "expected": "[a-z]+"}
    reason = {"rows": 10, "failures": [failure], "data_docs": lake.data_docs("validations/day/page.html")}
    lake.write_json(lake.marker("quarantine", DAY, REASON), reason)


def _assert_sandboxed(response: Any) -> None:
    """Served, but as data: no script, no origin (so no cookie-backed call to Airflow's API), no type sniffing."""
    assert response.status_code == 200, (response.status_code, response.text[:200])
    policy = [directive.strip() for directive in response.headers.get("content-security-policy", "").split(";")]
    sandbox = next((d for d in policy if d.split()[:1] == ["sandbox"]), None)
    assert sandbox is not None, f"no CSP sandbox on {response.url}: {policy}"
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox, sandbox
    assert response.headers.get("x-content-type-options") == "nosniff"


def test_every_report_with_a_producers_payload_is_served_sandboxed(client: TestClient, env: dict[str, str]) -> None:
    settings = _settings(env)
    lake = Lake.from_settings(settings)
    _quarantined_day_with_payload(lake)
    report = lake.report("drift", DAY, "report.html", settings.dataset.name)
    lake.fs.makedirs(report.rsplit("/", 1)[0], exist_ok=True)
    lake.fs.pipe(report, f"<html><body>drifted value {PAYLOAD}</body></html>".encode())
    run_id = _gate_run(settings, f"<html><body>gates {PAYLOAD}</body></html>")

    link = client.get(f"/api/models/{CARDS}/validation", headers=AUTH).json()["days"][0]["data_docs"]
    assert link == f"models/{CARDS}/data-docs/validations/day/page.html", "the quarantined day links its page"
    for path in (f"/{link}", f"/models/{CARDS}/data-docs/validations/day/logo.svg",
                 f"/models/{CARDS}/reports/gate/{run_id}"):  # fmt: skip
        response = client.get(path, headers=AUTH)
        _assert_sandboxed(response)
        assert PAYLOAD in response.text, "the report is still shown as written"
    # Evidently's report is a script: it runs, in an opaque origin with nothing to reach, inside a frame of ours.
    report = client.get(f"/models/{CARDS}/reports/drift/{DAY}/report.html", headers=AUTH)
    _assert_scripts_reach_nothing(report)
    assert PAYLOAD in report.text
    # A script file of the site is never served as a script from Airflow's origin.
    script = client.get(f"/models/{CARDS}/data-docs/validations/day/app.js", headers=AUTH)
    _assert_sandboxed(script)
    assert script.headers["content-type"].startswith("text/plain")


def _policy(response: Any) -> dict[str, list[str]]:
    directives = [d.split() for d in response.headers.get("content-security-policy", "").split(";") if d.strip()]
    return {directive[0]: directive[1:] for directive in directives}


def _assert_scripts_reach_nothing(response: Any) -> None:
    """Evidently's policy: scripts run (inline only) with an opaque origin, and every way out is closed."""
    assert response.status_code == 200, (response.status_code, response.text[:200])
    policy = _policy(response)
    assert policy["sandbox"] == ["allow-scripts"], f"no same origin, popup, top navigation or form: {policy}"
    assert policy["default-src"] == ["'none'"] and policy["script-src"] == ["'unsafe-inline'"], policy
    for directive in ("connect-src", "form-action", "base-uri"):
        assert policy[directive] == ["'none'"], (directive, policy)
    assert policy["img-src"] == ["data:"] and policy["font-src"] == ["data:"], "the report's own data: URIs only"
    assert policy["frame-ancestors"] == ["'self'"] and response.headers.get("x-content-type-options") == "nosniff"


def test_each_kind_of_report_gets_its_own_policy(client: TestClient, env: dict[str, str]) -> None:
    """Data Docs (and gate reports, above): no script. Evidently: its script in a frame of ours, nowhere to go."""
    settings = _settings(env)
    lake = Lake.from_settings(settings)
    _quarantined_day_with_payload(lake)
    report = lake.report("drift", DAY, "report.html", settings.dataset.name)
    lake.fs.makedirs(report.rsplit("/", 1)[0], exist_ok=True)
    lake.fs.pipe(report, f"<html><body>{PAYLOAD}</body></html>".encode())
    docs = client.get(f"/models/{CARDS}/data-docs/validations/day/page.html", headers=AUTH)
    _assert_sandboxed(docs)
    assert _policy(docs) == {"sandbox": []}, "Data Docs: a plain sandbox, no script at all"

    # The report's URL is our page: it frames the report, and its frame may show only this origin.
    frame = client.get(f"/models/{CARDS}/reports/drift/{DAY}", headers=AUTH)
    assert frame.status_code == 200 and PAYLOAD not in frame.text
    assert f'<iframe class="report-frame" title="Evidently report {DAY}" sandbox="allow-scripts"' in frame.text
    assert f'src="{DAY}/report.html"' in frame.text and "<script" not in frame.text
    assert _policy(frame)["default-src"] == ["'self'"] and "frame-src" not in _policy(frame), "frames: self only"
    _assert_scripts_reach_nothing(client.get(f"/models/{CARDS}/reports/drift/{DAY}/report.html", headers=AUTH))
    # A browser opening the report itself as a page (where its script could take the tab away) gets the frame.
    for dest in ("document", "empty", "object"):
        opened = client.get(f"/models/{CARDS}/reports/drift/{DAY}/report.html", follow_redirects=False,
                            headers={**AUTH, "Sec-Fetch-Dest": dest})  # fmt: skip
        assert opened.status_code == 303 and opened.headers["location"] == f"../{DAY}", dest
    framed = client.get(
        f"/models/{CARDS}/reports/drift/{DAY}/report.html", headers={**AUTH, "Sec-Fetch-Dest": "iframe"}
    )
    _assert_scripts_reach_nothing(framed)


def test_the_plugins_own_page_runs_only_its_own_files(client: TestClient) -> None:
    for path in ("/", f"/models/{CARDS}/"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 200 and 'src="static/app.js"' in response.text
        policy = {
            directive.split()[0]: directive.split()[1:]
            for directive in response.headers.get("content-security-policy", "").split(";")
            if directive.strip()
        }
        assert policy.get("script-src") == ["'self'"], f"no inline script, no other origin: {policy}"
        assert policy.get("default-src") == ["'self'"] and policy.get("object-src") == ["'none'"], policy
        assert response.headers.get("x-content-type-options") == "nosniff"
    for path in ("/static/app.js", "/api/models", f"/api/models/{EU}/validation", "/not-a-page"):
        assert client.get(path, headers=AUTH).headers.get("x-content-type-options") == "nosniff", path
    # The page's data reaches the document as text nodes only (a value is never parsed as HTML).
    assert "innerHTML" not in (STATIC / "app.js").read_text()


def test_a_gate_report_of_a_run_outside_the_models_experiment_is_refused(
    client: TestClient, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the Default experiment keeps its artifacts under the working directory
    cards, eu = _settings(env, CARDS), _settings(env, EU)
    models.use_tracking(cards)
    scratch = mlflow.create_experiment("scratch", artifact_location=(tmp_path / "scratch").as_uri())
    others = {
        "another model's experiment": _gate_run(eu, f"<html>{PAYLOAD} of {EU}</html>"),
        "the Default experiment": _gate_run(cards, f"<html>{PAYLOAD} of nobody</html>", experiment="0"),
        "an experiment of no model": _gate_run(cards, f"<html>{PAYLOAD} elsewhere</html>", experiment=scratch),
    }
    for what, run_id in others.items():
        response = client.get(f"/models/{CARDS}/reports/gate/{run_id}", headers=AUTH)
        assert response.status_code == 404, what
        detail = response.json()["detail"]
        assert "\n" not in detail and "no training run" in detail and PAYLOAD not in response.text, (what, detail)
    _assert_sandboxed(client.get(f"/models/{CARDS}/reports/gate/{_gate_run(cards, '<html>ours</html>')}", headers=AUTH))


def test_a_path_out_of_the_models_data_docs_is_refused(client: TestClient, env: dict[str, str], tmp_path: Path) -> None:
    cards, eu = Lake.from_settings(_settings(env, CARDS)), Lake.from_settings(_settings(env, EU))
    for lake in (cards, eu):
        lake.fs.makedirs(lake.data_docs(), exist_ok=True)
    eu.fs.pipe(eu.data_docs("eu-only.html"), b"<html>the other model's docs</html>")
    cards.write_json(cards.marker("raw", DAY, VALIDATED), {"rows": 1, "secret": "lake-only"})
    outside = tmp_path / "outside.html"
    outside.write_text("<html>not in any lake</html>")
    os.symlink(outside, cards.data_docs("linked.html"))  # a link inside the site to a file outside it

    site = f"/models/{CARDS}/data-docs"
    depth = "%2e%2e/" * (cards.data_docs().count("/") + 2)
    for path in (
        f"{site}/%2e%2e/%2e%2e/raw",
        f"{site}/..%2f..%2fraw%2fdt={DAY}%2f_VALIDATED.json",
        f"{site}/%2e%2e%2f%2e%2e%2f%2e%2e%2f{EU}%2freports%2fdata_docs%2feu-only.html",
        f"{site}/{depth}etc/passwd",
        f"{site}//etc/passwd",
        f"{site}/%2Fetc%2Fpasswd",
        f"{site}/{'%2F'.join(outside.parts[1:])}",
        f"{site}/..%5c..%5craw",
        f"{site}/a/%2e/linked.html",
        f"{site}/linked.html",
        f"{site}/",
    ):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 404, (path, response.status_code, response.text[:200])
        assert "not in any lake" not in response.text and "lake-only" not in response.text
        assert "root:" not in response.text and "other model" not in response.text
    assert client.get(f"/models/{EU}/data-docs/eu-only.html", headers=AUTH).status_code == 200, "its own model"


def test_no_tracking_credentials_on_the_page_nor_in_task_links(
    client: TestClient, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops.airflow import links

    # The page: the MLflow UI URL given with credentials (``MLOPS_MLFLOW_UI_URL``); a champion with its links.
    monkeypatch.setenv(urls.MLFLOW_UI_ENV, CREDENTIALED)
    settings = _settings(env)
    run_id = _gate_run(settings, "<html>gates</html>")
    mlflow_client = models.client(settings)
    mlflow_client.create_registered_model(CARDS)
    mlflow_client.create_model_version(CARDS, f"runs:/{run_id}/model", run_id)
    ledger = Ledger(settings.ledger_uri)
    try:
        ledger.move(CARDS, models.CHAMPION, "1", compare=False, expected=None, actor="cli:test", reason="r", run="")
    finally:
        ledger.dispose()
    model = client.get(f"/api/models/{CARDS}", headers=AUTH).json()
    assert model["mlflow_ui"] == "http://mlflow.example:5000"
    assert model["champion"]["links"]["mlflow_run"].startswith("http://mlflow.example:5000/#/experiments/")
    for path in ("/api/models", f"/api/models/{CARDS}", f"/api/models/{CARDS}/page", f"/api/models/{CARDS}/versions/1"):
        text = client.get(path, headers=AUTH).text
        assert PASSWORD not in text and f"{USER}:" not in text and f"{USER}@" not in text, path

    # The task links: no UI URL set, so they are built on the tracking URI, which carries the credentials.
    monkeypatch.delenv(urls.MLFLOW_UI_ENV)
    monkeypatch.setenv("MLOPS__MLFLOW__TRACKING_URI", CREDENTIALED + "/")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", f"http://bob:{PASSWORD}@airflow.example:8080/airflow/")
    found = SimpleNamespace(run_id=run_id)
    monkeypatch.setattr(models, "find_training_run", lambda *_: found)  # the tracking server is not running here
    monkeypatch.setattr(models, "get_run", lambda *_: SimpleNamespace(info=SimpleNamespace(experiment_id="7")))
    lake = Lake.from_settings(_settings(env, EU))
    returned = {"version": "3", "run_id": run_id, "report_uri": "/lake/dt=2026-11-12/report.html", "day": "2026-11-12",
                "data_docs": lake.data_docs("v.html")}  # fmt: skip
    built = {}
    for link in (links.MlflowRunLink(), links.ModelVersionLink(), links.GateReportLink(), links.DriftReportLink(),
                 links.DataDocsLink(), links.ScoresLink()):  # fmt: skip
        ti = _TaskInstance(dag_id=f"{EU}__continuous_training", task_id="t", run_id="r", returned=returned)
        built[link.name] = link.get_link(None, ti_key=ti)
    assert built["MLflow run"] == f"http://mlflow.example:5000/#/experiments/7/runs/{run_id}"
    assert built["Model version"] == f"http://mlflow.example:5000/#/models/{EU}/versions/3"
    assert built["Data Docs"] == f"/airflow/mlops/models/{EU}/data-docs/v.html"
    for name, url in built.items():
        assert url and PASSWORD not in url and USER not in url and "bob" not in url, (name, url)
    used = load_settings(model=EU, env=dict(os.environ)).mlflow_tracking_uri
    assert used == CREDENTIALED + "/", "the processes that use the tracking URI still have its credentials"
    assert urls.without_userinfo("https://u:p@[::1]:5000/x?q=1#f") == "https://[::1]:5000/x?q=1#f"
