"""A day that passed its contract with warnings (breaches within the contract's tolerances) is shown and announced.

The page's JSON lists each warning of a validated day (rule, column, observed, expected), the status counts
the recent days that passed with warnings, and the page draws a warning as text (a producer's ``<script>`` in
a value stays text, checked in headless Chromium when it is installed); the validation's notice says "passed
... with K warning(s)" through the configured alerts (a local SMTP server and Slack webhook), and nothing is
sent for a day without warnings. Markers are written as ``mark_validated`` writes them, with ``warnings``.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlops.config import load_settings
from mlops.data.lake import VALIDATED, Lake
from mlops.data.publish import publish_json
from mlops.web.app import STATIC, create_app
from tests.plugins.test_alerts import _body, _Inbox, _ti, inbox  # noqa: F401 - inbox is a fixture
from tests.plugins.test_mlops_web import AUTH, CARDS, DAY, EU, _get, _only_with_token, env  # noqa: F401 - fixture

PAYLOAD = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2;document.title='pwned'</script>"
WARNINGS = [
    {"rule": "allowed_values", "column": "plan", "observed": f"unknown values ['{PAYLOAD}'] on 3 rows (0.3 %)",
     "expected": "one of ['basic', 'pro'] (up to 1.0 % unknown tolerated)", "file": "part-00000.parquet",
     "sample_ids": ["t-1", "t-2"]},
    {"rule": "max_null_fraction", "column": "merchant", "observed": "null fraction 0.004",
     "expected": "<= 0.0 (up to 0.5 % tolerated)", "file": None, "sample_ids": []},
]  # fmt: skip
CONTRACT = {"name": CARDS, "version": "1.1.0", "sha256": "0" * 64}


def _marker(day: dt.date, warnings: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A ``_VALIDATED.json`` as ``mark_validated`` writes it; ``None``: as older releases wrote it (no warnings)."""
    marker = {"date": day.isoformat(), "dataset": CARDS, "partition": f"raw/dt={day}", "rows": 1000, "files": [],
              "manifest": {}, "contract": CONTRACT, "suite": {}, "data_docs": None, "dvc": {"revision": "a" * 40},
              "validated_at": "2026-11-11T01:00:00+00:00"}  # fmt: skip
    if warnings is not None:
        marker["warnings"] = warnings
    return marker


@pytest.fixture
def lake(env: dict[str, str]) -> Lake:  # noqa: F811 - the imported fixture
    """The cards model's lake: DAY passed with two warnings, the day before without (an older marker), the day
    after passed with none."""
    lake = Lake.from_settings(load_settings(model=CARDS, env=env))
    for day, warnings in ((DAY - dt.timedelta(days=1), None), (DAY, WARNINGS), (DAY + dt.timedelta(days=1), [])):
        publish_json(lake, lake.marker("raw", day, VALIDATED), _marker(day, warnings))
    return lake


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[TestClient]:  # noqa: F811 - the imported fixture
    with TestClient(create_app(_only_with_token, env=env)) as client:
        yield client


def test_the_page_lists_each_warning_of_a_validated_day(client: TestClient, lake: Lake) -> None:
    days = {d["day"]: d for d in _get(client, f"/api/models/{CARDS}/validation").json()["days"]}
    assert [d["verdict"] for d in days.values()] == ["validated"] * 3
    warned = days[DAY.isoformat()]
    assert len(warned["warnings"]) == 2
    first, second = warned["warnings"]
    for shown, written in zip(warned["warnings"], WARNINGS, strict=True):
        assert {key: shown[key] for key in written} == written, "rule, column, observed, expected as validated"
    assert first["observed"] == WARNINGS[0]["observed"], "the value as written: the page draws it as text"
    assert first["text"].startswith("[allowed_values] column plan: ") and "1.0 % unknown tolerated" in first["text"]
    assert second["text"].startswith("[max_null_fraction] column merchant: 'null fraction 0.004'")
    assert days[(DAY - dt.timedelta(days=1)).isoformat()]["warnings"] == [], "an older marker has none"
    assert days[(DAY + dt.timedelta(days=1)).isoformat()]["warnings"] == []
    page = _get(client, f"/api/models/{CARDS}/page").json()["validation"]
    assert [len(d["warnings"]) for d in page] == [0, 2, 0]

    status = _get(client, f"/api/models/{CARDS}/status").json()
    assert (status["warned_days"], status["warned_days_of"]) == (1, 7)
    listed = {m["model"]: m for m in _get(client, "/api/models").json()["models"]}
    assert listed[CARDS]["warned_days"] == 1 and listed[CARDS]["status"]["warned_days"] == 1
    assert listed[EU]["warned_days"] == 0, "another model's days are its own"


def test_a_broken_warnings_field_is_no_warning(client: TestClient, lake: Lake) -> None:
    publish_json(lake, lake.marker("raw", DAY, VALIDATED), {**_marker(DAY, None), "warnings": "not a list"})
    days = _get(client, f"/api/models/{CARDS}/validation").json()["days"]
    assert [d["warnings"] for d in days] == [[], [], []]


def test_a_warnings_markup_is_data_in_the_json_and_text_in_the_page(client: TestClient, lake: Lake) -> None:
    response = _get(client, f"/api/models/{CARDS}/validation")
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert PAYLOAD in response.json()["days"][1]["warnings"][0]["observed"]
    script = (STATIC / "app.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "outerHTML" not in script
    assert "document.write" not in script


# -- the page in a browser -----------------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:  # noqa: F811 - the imported fixture
    """The app over HTTP on localhost (uvicorn in a thread), as the browser reaches it."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(_only_with_token, env=env), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is not installed (the browser suite's Chromium)")
def test_the_page_shows_a_warnings_script_as_text(served: str, lake: Lake) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(extra_http_headers=AUTH).new_page()
            page.goto(f"{served}/models/{CARDS}/")
            page.wait_for_selector("#app[data-ready]", timeout=60_000)
            assert page.get_attribute("#app", "data-ready") == "true", page.inner_text("#app")[:500]
            table = page.get_by_test_id("validation-table")
            warned = table.get_by_test_id("validation-warnings")
            assert warned.count() == 1, "only the day with warnings has a list"
            assert warned.locator("summary").inner_text() == "2 warnings"
            warned.locator("summary").click()
            items = warned.get_by_test_id("validation-warning")
            assert items.count() == 2
            first = items.nth(0).inner_text()
            assert first.startswith("[allowed_values] column plan: observed unknown values") and PAYLOAD in first
            assert "expected one of ['basic', 'pro'] (up to 1.0 % unknown tolerated)" in first
            assert items.nth(1).inner_text().startswith("[max_null_fraction] column merchant: observed null fraction")
            # The markup is text: no element of it was made, nothing of it ran.
            assert table.locator("script, img").count() == 0
            assert page.evaluate("() => window.__pwned") is None and page.title() != "pwned"
            assert "1 of the last 7 days passed with warnings" in page.get_by_test_id("status-days").inner_text()
        finally:
            browser.close()


# -- the notice ----------------------------------------------------------------------------------------------
def _verdict(warnings: list[dict[str, Any]]) -> dict[str, Any]:
    """``Verdict.to_dict()`` of a day that passed."""
    return {"dataset": CARDS, "day": DAY.isoformat(), "partition": f"file:///lake/raw/dt={DAY}", "contract": CONTRACT,
            "rows": 1000, "files": ["part-00000.parquet"], "manifest": {}, "failures": [], "warnings": warnings,
            "suite": {}, "data_docs": None, "passed": True}  # fmt: skip


def _context() -> dict[str, Any]:
    return {"ti": _ti(f"{CARDS}__data_validation", "validate_partition", "scheduled__2026-11-10T00:00:00+00:00"),
            "ds": DAY.isoformat()}  # fmt: skip


def test_a_day_that_passed_with_warnings_is_announced(
    inbox: _Inbox,  # noqa: F811 - the fixture imported above
    slack: list[dict],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mlops.airflow.notifiers import validation_warnings

    with caplog.at_level(logging.INFO, logger="mlops.notify"):
        outcome = validation_warnings(_verdict(WARNINGS), _context())

    assert outcome == {"log": "written", "email": "sent", "slack": "sent"}
    logged = [r for r in caplog.records if r.name == "mlops.notify" and r.levelno == logging.WARNING]
    lines = [r.getMessage() for r in logged]  # each warning's own line is the validation step's log (DAG test)
    assert any("passed contract" in line and "with 2 warning(s)" in line for line in lines), lines
    assert not [r for r in caplog.records if r.name == "mlops.notify" and r.levelno >= logging.ERROR], "no failure"

    (message,) = inbox.messages
    subject, body = message["Subject"], _body(message)
    assert subject.startswith(f"[mlops] WARNINGS {CARDS}__data_validation {DAY}: ")
    assert f"1000 rows passed contract {CARDS} v1.1.0 with 2 warning(s)" in subject
    assert "FAILED" not in subject and "QUARANTINED" not in subject
    assert "[allowed_values] column 'plan'" in body and "file part-00000.parquet" in body
    assert "&lt;script&gt;" in body and "<script>" not in body, "the mail is HTML: the value is escaped"
    assert "null fraction 0.004" in body and "up to 0.5 % tolerated" in body
    assert f"http://airflow.example.com/dags/{CARDS}__data_validation/runs/" in body
    (post,) = slack
    assert f"passed contract {CARDS} v1.1.0 with 2 warning(s)" in post["text"]
    assert "<script>" not in post["text"] and "&lt;script&gt;" in post["text"], "Slack's <...> escaped"
    assert "[max_null_fraction] column 'merchant'" in post["text"]


def test_no_notice_without_warnings(
    inbox: _Inbox,  # noqa: F811 - the fixture imported above
    slack: list[dict],
) -> None:
    from mlops.airflow.notifiers import validation_warnings

    assert validation_warnings(_verdict([]), _context()) is None
    older = _verdict([])
    del older["warnings"]  # a verdict of a release before tolerances
    assert validation_warnings(older, _context()) is None
    assert inbox.messages == [] and slack == []
