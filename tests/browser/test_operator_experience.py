"""An operator's day in the Airflow UI, in a real browser, on the stack ``make up`` starts, with two models.

The home has two models (``tests.browser.home``): ``card_transactions`` with a champion, a rejected candidate,
a rollback and a week of drift history, and ``customer_churn`` with a champion of its own; promotion needs
a human (policy ``manual``). In headless Chromium the operator logs in, opens the MLOps page on its list of
models (each with its champion), opens each model's page (champion, gate table, a drawn chart), opens
``card_transactions__continuous_training``'s trigger form from its page and triggers a run, follows a task's
link to its MLflow run and its gate report (which the other model's page refuses), and approves a promotion
in Required actions; champion moves and the ``<model>.champion`` Asset records it, the other model's champion
stays. ``make down`` then leaves none of the stack's processes.

A data producer's ``<img onerror>``/``<script>`` in a Data Docs page is shown as written, but never runs: the
plugin serves reports sandboxed, from Airflow's own origin whose cookie opens its API. Evidently's report is a
script: it draws its dashboard, and a script planted in it runs, in a frame with an opaque origin, and reaches
nothing (no cookie, no storage, no API call, no popup, no navigation). The run's page in Airflow has an "MLOps
evidence" tab with the run's candidate and gate verdict.

``MLOPS_BROWSER_HOME=<dir>`` reuses a home built by ``python -m tests.browser.home <dir>`` (faster by hand).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import sqlite3
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops import aliases, models, stack
from mlops.config import Settings, load_settings
from mlops.data.lake import STATS, Lake
from mlops.runtime import stack_env
from tests.browser.home import CARDS, SECOND, build, models_dir
from tests.plugins.test_status import plant_failure

pytestmark = pytest.mark.browser
DAG = f"{CARDS}__continuous_training"
RUN_TIMEOUT = 420.0
#: The stack's deployment config: a 3-day holdout of 6,000 rows a day gives a bootstrap CI of about +/-0.04
#: on AUC-PR and slices of a dozen positives, so an equally good retrain fails the default gates by chance
#: (config.py: "tighten it together with a bigger holdout"). These gates fit the test's data size.
SMALL_DATA_GATES = {
    "MLOPS__GATES__CHAMPION_TOLERANCE": "0.08",
    "MLOPS__GATES__SLICE_TOLERANCE": "0.15",
    "MLOPS__GATES__SLICE_MIN_POSITIVES": "40",
}
#: Pixels of a canvas that are not transparent: uPlot drew the chart.
PAINTED_PIXELS = """c => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    settings: Settings  # the first model's (card_transactions)
    second: Settings  # the other model's
    env: dict[str, str]
    airflow: str
    mlflow: str
    password: str

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        """Airflow's REST API with a token of the admin (what the checks read; the test acts through the UI)."""
        login = json.dumps({"username": stack.ADMIN, "password": self.password}).encode()
        token_request = urllib.request.Request(f"{self.airflow}/auth/token", data=login, method="POST",
                                               headers={"Content-Type": "application/json"})  # fmt: skip
        token = json.load(urllib.request.urlopen(token_request, timeout=30))["access_token"]
        request = urllib.request.Request(
            f"{self.airflow}/api/v2{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


def _our_processes(home: Path) -> list[int]:
    """PIDs whose environment carries this home: anything the stack started and left behind."""
    marker = f"MLOPS_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    given = os.environ.get("MLOPS_BROWSER_HOME")
    home = Path(given).resolve() if given else tmp_path_factory.mktemp("operator") / "home"
    if not given:
        build(home)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS", "MLFLOW"))}
    base.update(MLOPS_HOME=str(home), MLOPS_MODELS_DIR=str(models_dir(home)), MLOPS__PROMOTION__POLICY="manual")
    # Who triggers a run never approves it: the operator (admin) retrains, a second user (an approver) approves.
    base.update(MLOPS__PROMOTION__APPROVERS=json.dumps([APPROVER]),
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{stack.ADMIN}:admin,{APPROVER}:admin")  # fmt: skip
    base.update(SMALL_DATA_GATES)
    settings = load_settings(env=base)  # the deployment's: what `make up` starts
    api_port, mlflow_port = _free_port(), _free_port()
    env = stack_env(settings, api_port, mlflow_port, base=base)
    urls = stack.up(settings, env, api_port, mlflow_port)
    try:
        cards, second = load_settings(model=CARDS, env=base), load_settings(model=SECOND, env=base)
        running = Stack(cards, second, env, urls["airflow"], urls["mlflow"], urls["password"])
        _wait_for_dags(running)
        yield running
    finally:
        stopped = stack.down(settings)
        assert set(stopped) == set(stack.COMPONENTS), stopped
        time.sleep(1)
        assert _our_processes(home) == [], "make down left processes of the stack running"


def _wait_for_dags(stack_: Stack, timeout: float = 180.0) -> None:
    """The dag-processor of a fresh stack parses dags/ after it starts; the UI shows a DAG once it has."""
    kinds = ("continuous_training", "model_rollback")
    wanted = {settings.dag_id(kind) for settings in (stack_.settings, stack_.second) for kind in kinds}
    deadline = time.monotonic() + timeout
    while True:
        known = {dag["dag_id"] for dag in stack_.api("GET", "/dags?limit=100")["dags"]}
        if wanted <= known:
            return
        assert time.monotonic() < deadline, f"DAGs not parsed in {timeout:.0f} s (known: {sorted(known)})"
        time.sleep(2)


#: The second user of the stack, the only one ``promotion.approvers`` names.
APPROVER = "approver"


def _password_of(stack_: Stack, user: str) -> str:
    """A user's password as the simple auth manager generated it."""
    generated = Path(stack_.env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    return json.loads(generated.read_text())[user]


def _login(page: Any, stack_: Stack, user: str = stack.ADMIN) -> None:
    page.goto(f"{stack_.airflow}/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(stack_.password if user == stack.ADMIN else _password_of(stack_, user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack_.airflow}/", timeout=60_000)


def _mlops_frame(page: Any, stack_: Stack) -> Any:
    """The MLOps entry of Airflow's navigation: the page in its frame, on the list of models."""
    page.goto(f"{stack_.airflow}/plugin/mlops")
    frame = page.frame_locator("iframe[title=MLOps]")
    frame.locator("main[data-ready=true][data-page=models]").wait_for(timeout=120_000)
    return frame


def _open_model(frame: Any, model: str) -> None:
    """From the list, open a model's page (in the same frame) and wait until it is drawn."""
    frame.locator(f"tr[data-model='{model}']").get_by_test_id("model-link").click()
    frame.locator("main[data-ready=true][data-page=model]").wait_for(timeout=120_000)
    assert frame.get_by_test_id("model-name").inner_text() == model


def _listed_champions(frame: Any) -> dict[str, str]:
    rows = frame.get_by_test_id("model-row")
    return {
        rows.nth(i).get_attribute("data-model"): rows.nth(i).get_by_test_id("model-champion").inner_text()
        for i in range(rows.count())
    }


def _pending_approval(stack_: Stack) -> dict:
    """Wait until a continuous_training run asks for approval (the form's run or the weekly catch-up run)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        details = stack_.api("GET", f"/dags/{DAG}/dagRuns/~/hitlDetails")["hitl_details"]
        pending = [d for d in details if not d.get("response_received")]
        if pending:
            return pending[0]
        failed = stack_.api("GET", f"/dags/{DAG}/dagRuns?state=failed")["dag_runs"]
        assert not failed, f"a training run failed: {failed}"
        time.sleep(3)
    raise AssertionError(f"no promotion asked for approval within {RUN_TIMEOUT:.0f} s")


def _champion_events(stack_: Stack) -> list[dict]:
    with closing(sqlite3.connect(Path(stack_.env["AIRFLOW_HOME"]) / "airflow.db")) as db:
        rows = db.execute("SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = ?",
                          (f"{stack_.settings.model_name}.champion",)).fetchall()  # fmt: skip
    return [json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in rows]


def running_drift_features(stack_: Stack) -> list[str]:
    """The features of the first model's drift history, as its drift endpoint ranks them."""
    from mlops.web.data import drift_history

    return drift_history(stack_.settings)["features_by_psi"]


def test_operator_reads_the_page_retrains_follows_links_and_approves(running: Stack, browser: Any,
                                                                     artifacts: Path) -> None:  # fmt: skip
    settings = running.settings
    champion = aliases.alias_version(settings, models.CHAMPION)
    other = aliases.alias_version(running.second, models.CHAMPION)
    assert champion is not None and other is not None
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        _operator_day(running, context, page, champion, other, artifacts)
    except BaseException:
        page.screenshot(path=str(artifacts / "failure.png"))
        raise
    finally:
        context.close()


def _operator_day(running: Stack, context: Any, page: Any, champion: str, other: str, artifacts: Path) -> None:
    settings = running.settings
    planted = plant_failure(Path(running.env["AIRFLOW_HOME"]), CARDS)  # a failed scoring task with its log
    _login(page, running)

    # 1. The MLOps page in Airflow's navigation opens on the models: one line each, with its own champion.
    frame = _mlops_frame(page, running)
    assert _listed_champions(frame) == {CARDS: f"v{champion}", SECOND: f"v{other}"}
    for model in (running.settings, running.second):  # each line: its own model's last days and drift state
        row = frame.locator(f"tr[data-model='{model.model_name}']").inner_text()
        last_scored = Lake.from_settings(model).days("scores", STATS)[-1].isoformat()
        assert last_scored in row and re.search(r"\b(ok|breach|severe)\b", row), row
    drifted = frame.locator(f"tr[data-model='{CARDS}']").inner_text()
    assert re.search(r"\b(breach|severe)\b", drifted), f"the first model's last checked day drifted: {drifted}"
    assert planted["reason"] in drifted, f"the line's status names the newest failure: {drifted}"
    assert "updated" in frame.get_by_test_id("last-updated").inner_text()
    page.screenshot(path=str(artifacts / "00-models.png"))

    # The second model's page: its own champion, gates and history, none of the first model's.
    _open_model(frame, SECOND)
    assert frame.get_by_test_id("champion-version").inner_text() == f"v{other}"
    assert "absolute:auc_pr" in frame.get_by_test_id("gate-table").first.inner_text()
    assert "rollback drill" not in frame.get_by_test_id("ledger").inner_text()
    assert "QUARANTINED" not in frame.get_by_test_id("validation-table").inner_text()
    page.screenshot(path=str(artifacts / "01-second-model-page.png"))
    frame.get_by_test_id("all-models").click()
    frame.locator("main[data-ready=true][data-page=models]").wait_for(timeout=60_000)

    # The first model's page: champion, its gate table, a drawn drift chart, the history.
    _open_model(frame, CARDS)
    assert frame.get_by_test_id("champion-version").inner_text() == f"v{champion}"
    gates = frame.get_by_test_id("gate-table").first
    assert gates.locator("tbody tr").count() >= 7
    assert "absolute:auc_pr" in gates.inner_text() and "pass" in gates.inner_text()
    assert "rejected" in frame.get_by_test_id("versions-table").inner_text()
    assert "rollback drill" in frame.get_by_test_id("ledger").inner_text()
    canvas = frame.get_by_test_id("drift-chart").locator("canvas")
    painted = canvas.evaluate(PAINTED_PIXELS)
    assert painted > 5_000, f"the drift chart drew {painted} pixels"
    # The status line first: the planted failure's DAG, day, task, reason and a link to its log in Airflow.
    failure = frame.get_by_test_id("status").get_by_test_id("status-failure").first
    text = failure.inner_text()
    assert all(planted[key] in text for key in ("failed_day", "failed_task", "reason")), text
    log_link = failure.get_by_role("link", name="log")
    assert log_link.get_attribute("href") == f"{running.airflow}/{planted['log']}"
    assert frame.get_by_test_id("refresh-toggle").inner_text() == "Pause"
    # The drift chart: the top 5 features by PSI, each legend entry named without hovering; all on demand.
    legend = frame.get_by_test_id("drift-chart").locator(".u-legend .u-series")
    features = len(running_drift_features(running))
    names = [legend.nth(i).inner_text().strip() for i in range(legend.count())]
    drawn = [name for name in names if name and not name.startswith(("breach", "severe")) and name != "Time"]
    assert 0 < len(drawn) <= 5 and all(name in running_drift_features(running) for name in drawn), names
    assert "--" not in " ".join(names), names
    frame.get_by_test_id("drift-show-all").check()
    assert frame.get_by_test_id("drift-chart").get_attribute("data-features") == str(features)
    assert "QUARANTINED" in frame.get_by_test_id("validation-table").inner_text()
    frame.locator("main#app").evaluate("main => main.ownerDocument.defaultView.scrollTo(0, 0)")  # the page's top
    page.screenshot(path=str(artifacts / "01-mlops-page.png"))
    frame.get_by_test_id("drift-chart").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "01-drift-charts.png"))

    # 2. "Retrain..." opens Airflow's own trigger form for the model's continuous_training; trigger a run from it.
    frame.get_by_test_id("retrain").click()
    submit = page.get_by_test_id("trigger-dag-submit")
    submit.wait_for(timeout=60_000)
    assert f"/dags/{DAG}" in page.url
    page.screenshot(path=str(artifacts / "02-trigger-form.png"))
    submit.click()
    page.wait_for_url(f"**/dags/{DAG}/runs/**", timeout=60_000)
    triggered = urllib.parse.unquote(page.url.split("/runs/")[1].split("/")[0])
    run = running.api("GET", f"/dags/{DAG}/dagRuns/{urllib.parse.quote(triggered, safe='')}")
    assert run["run_type"] == "manual" and run["conf"]["reason"] == "manual"

    # 3. A run asks for approval; its train task links to the MLflow run, assess to the gate report.
    pending = _pending_approval(running)
    run_id = pending["task_instance"]["dag_run_id"]
    quoted = urllib.parse.quote(run_id, safe="")
    page.goto(f"{running.airflow}/dags/{DAG}/runs/{quoted}/tasks/train")
    page.get_by_text("Details", exact=True).first.click()
    link = page.get_by_role("link", name="MLflow run")
    link.wait_for(timeout=60_000)
    href = link.get_attribute("href")
    assert href.startswith(running.mlflow) and "/runs/" in href, href
    mlflow_run_id = href.rsplit("/", 1)[1]
    with context.expect_page() as opened:
        link.click()  # target=_blank: the MLflow UI opens in a new tab
    mlflow_page = opened.value
    mlflow_page.get_by_text(mlflow_run_id).first.wait_for(timeout=90_000)
    mlflow_page.screenshot(path=str(artifacts / "03-mlflow-run.png"))
    mlflow_page.close()
    links = running.api("GET", f"/dags/{DAG}/dagRuns/{quoted}/taskInstances/assess/links")["extra_links"]
    gate_link = links["Gate report"]
    assert f"/mlops/models/{CARDS}/reports/gate/" in gate_link, gate_link
    page.goto(running.airflow + gate_link)
    assert "absolute:auc_pr" in page.content()
    # The same run under the other model's page is refused: a model's pages show only its own runs.
    refused = page.goto(running.airflow + gate_link.replace(f"/models/{CARDS}/", f"/models/{SECOND}/"))
    assert refused is not None and refused.status == 404

    # 4. Required actions: the approver (not the operator who triggered the run) approves the promotion;
    # champion moves and the champion Asset says so.
    approver = page.context.browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    _login(approver, running, APPROVER)
    approver.goto(f"{running.airflow}/required_actions")
    approver.get_by_text(f"Promote {settings.model_name} v").first.click()
    approve = approver.get_by_role("button", name="Approve")
    approve.wait_for(timeout=60_000)
    approver.screenshot(path=str(artifacts / "04-required-action.png"))
    approve.click()
    deadline = time.monotonic() + 180
    while running.api("GET", f"/dags/{DAG}/dagRuns/{quoted}")["state"] != "success":
        assert time.monotonic() < deadline, "the approved run did not finish"
        time.sleep(2)
    new_champion = aliases.alias_version(settings, models.CHAMPION)
    assert new_champion not in (None, champion)
    events = _champion_events(running)
    assert events[-1]["version"] == new_champion and events[-1]["previous"] == champion, events

    frame = _mlops_frame(page, running)
    assert _listed_champions(frame) == {CARDS: f"v{new_champion}", SECOND: f"v{other}"}
    _open_model(frame, CARDS)
    assert frame.get_by_test_id("champion-version").inner_text() == f"v{new_champion}"
    page.screenshot(path=str(artifacts / "05-new-champion.png"))

    # 5. The run's own page in Airflow has an "MLOps evidence" tab: the candidate, its gate verdict, each gate.
    page.goto(f"{running.airflow}/dags/{DAG}/runs/{quoted}/plugin/mlops-run")
    tab = page.frame_locator("iframe[title='MLOps evidence']")
    tab.get_by_test_id("candidate-version").wait_for(timeout=60_000)
    assert tab.get_by_test_id("candidate-version").inner_text() == f"v{new_champion}"
    assert tab.get_by_test_id("gate-verdict").inner_text() == "pass"
    assert tab.get_by_test_id("run-state").inner_text() == "success", "what Airflow's DB says of the run"
    assert "absolute:auc_pr" in tab.get_by_test_id("run-gates").inner_text()
    page.screenshot(path=str(artifacts / "06-run-evidence.png"))


#: What a producer put in a string value: it logs PROBE and sets ``window.__pwned``/the title wherever it runs.
PROBE = "mlops-xss-probe"
PAYLOAD = (
    f"<img src=x onerror=\"console.log('{PROBE}');window.__pwned=1\">"
    f"<script>console.log('{PROBE}');document.title='pwned'</script>"
)
PROBE_DAY = dt.date(2030, 1, 1)  # a drift report of a day the home never checked
#: A script planted in an Evidently report (where scripts run): it tries every way to Airflow's API and out of
#: the report, and writes what it got into the report (``#probe``), where the test reads it.
ESCAPE = """<div id="probe">not run</div><script>
const got = {};
const attempt = (name, what) => { try { got[name] = String(what()); } catch (e) { got[name] = "blocked " + e.name; } };
attempt("cookie", () => document.cookie);
attempt("storage", () => localStorage.length);
attempt("parent", () => window.parent.document.title);
attempt("top", () => { window.top.location.href = "/api/v2/dags?probe=top"; return "asked"; });
attempt("popup", () => window.open("/api/v2/dags?probe=popup"));
attempt("image", () => { new Image().src = "/api/v2/dags?probe=image"; return "asked"; });
fetch("/api/v2/dags?probe=fetch", { credentials: "include" }).then((r) => r.text())
  .then((text) => { got.fetch = "read " + text.length; }, (e) => { got.fetch = "blocked " + e.name; })
  .finally(() => { document.getElementById("probe").textContent = JSON.stringify(got); });
</script>"""


def _plant(lake: Lake, files: dict[str, str], html: str) -> None:
    for path in files.values():
        lake.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        lake.fs.pipe(path, html.encode())


def test_a_data_docs_script_is_shown_but_never_runs(running: Stack, browser: Any, artifacts: Path) -> None:
    lake = Lake.from_settings(running.settings)
    html = f"<html><head><title>clean</title></head><body><p>quarantined value {PAYLOAD}</p></body></html>"
    route = f"models/{CARDS}/data-docs/validations/xss-probe/page.html"
    files = {route: lake.data_docs("validations/xss-probe/page.html")}
    _plant(lake, files, html)
    context = browser.new_context()
    page = context.new_page()
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    try:
        # The probe works: outside the plugin (no policy) the payload runs.
        page.set_content(html)
        page.wait_for_function("() => window.__pwned === 1", timeout=10_000)
        assert page.title() == "pwned" and any(PROBE in text for text in logged), logged
        _login(page, running)
        logged.clear()
        response = page.goto(f"{running.airflow}/mlops/{route}")
        assert response is not None and response.status == 200, route
        assert response.headers.get("content-security-policy") == "sandbox", response.headers
        page.wait_for_load_state("load")
        page.wait_for_timeout(1_000)  # the image has failed to load: its onerror would have run by now
        assert "quarantined value" in page.inner_text("body"), "the report is still shown"
        assert page.title() == "clean" and page.evaluate("() => window.__pwned") is None, route
        assert not any(PROBE in text for text in logged), (route, logged)
        page.screenshot(path=str(artifacts / "07-sandboxed-data-docs.png"))
    finally:
        context.close()
        for path in files.values():
            lake.fs.rm(path)


def test_an_evidently_report_draws_and_its_scripts_reach_nothing(running: Stack, browser: Any,
                                                                 artifacts: Path) -> None:  # fmt: skip
    settings = running.settings
    lake, dataset = Lake.from_settings(settings), settings.dataset.name
    real = max(day for day in lake.days("scores", STATS) if lake.exists(lake.report("drift", day, "report.html",
                                                                                    dataset)))  # fmt: skip
    probe = lake.report("drift", PROBE_DAY, "report.html", dataset)
    _plant(lake, {"probe": probe}, f"<html><head><title>clean</title></head><body>drifted {ESCAPE}</body></html>")
    server_log = stack.run_dir(load_settings(env=running.env)) / "api-server.log"
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    answered: list[str] = []  # requests that reached a server (a policy-blocked one gets no response)
    page.on("response", lambda response: answered.append(response.url))
    try:
        _login(page, running)
        # Evidently's own dashboard draws (its script runs in the frame): its widgets are there.
        page.goto(f"{running.airflow}/mlops/models/{CARDS}/reports/drift/{real}")
        report = page.frame_locator("iframe.report-frame")
        dashboard = report.locator("[id^=root_metric]")
        dashboard.get_by_text("Dataset Drift").first.wait_for(timeout=60_000)
        assert "Drifted Columns" in dashboard.inner_text() and dashboard.locator("svg").count() > 0
        dashboard.get_by_text("Dataset Drift").first.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "08-evidently-report.png"))

        # A producer's script in a report runs, and gets nothing: no cookie, no storage, no parent, no API call,
        # no popup, no navigation of the tab.
        frame_page = f"{running.airflow}/mlops/models/{CARDS}/reports/drift/{PROBE_DAY}"
        page.goto(frame_page)
        probe_text = page.frame_locator("iframe.report-frame").locator("#probe")
        deadline = time.monotonic() + 30
        while probe_text.inner_text() == "not run":
            assert time.monotonic() < deadline, "the planted script never ran: the probe proves nothing"
            page.wait_for_timeout(200)
        got = json.loads(probe_text.inner_text())
        for name in ("cookie", "storage", "parent", "top"):
            assert got[name].startswith("blocked SecurityError"), (name, got)
        assert got["fetch"] == "blocked TypeError" and got["popup"] == "null", got
        page.wait_for_timeout(1_000)
        assert page.url == frame_page, "the report's script did not move the tab"
        assert len(context.pages) == 1, "no popup opened"
        assert any(url.endswith(f"{PROBE_DAY}/report.html") for url in answered), "the frame's requests are seen"
        assert not [url for url in answered if "probe=" in url], answered
        # The api-server's access log (when it has reached the file: it logs this test's own requests) has none.
        logged = server_log.read_text(errors="replace")
        if f"reports/drift/{PROBE_DAY}" in logged:
            assert "probe=" not in logged, "the api-server saw a call of the report's script"
        # Opened as a page of its own (where a script could move the tab), the report's file is sent to the frame.
        page.goto(f"{frame_page}/report.html")
        assert page.url == frame_page
        page.screenshot(path=str(artifacts / "08-evidently-probe.png"))
    finally:
        context.close()
        lake.fs.rm(probe)
