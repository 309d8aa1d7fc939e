"""The manual policy's approval request reads as Markdown: a rounded table, the bootstrap, moved slices, links."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mlops.config import load_settings
from mlops.gates import evaluate_gates
from mlops.training.approval_text import approval_request, escape, number

GATE_URL = "/mlops/models/card_transactions/reports/gate/0123abcd"
MLFLOW_URL = "http://mlflow.example.com/#/experiments/1/runs/0123abcd"


def _report() -> dict[str, Any]:
    """A real gate report (``evaluate_gates``) of a candidate that beats its champion, with a slice that regressed."""
    rng = np.random.default_rng(3)
    rows = 4_000
    y = (rng.random(rows) < 0.2).astype(float)
    champion = np.clip(y * 0.35 + rng.random(rows) * 0.65, 0, 1)
    candidate = np.clip(y * 0.55 + rng.random(rows) * 0.45, 0, 1)
    country = np.where(rng.random(rows) < 0.1, "N|G*", "[x](http://evil)")
    worse = country == "N|G*"
    candidate[worse] = rng.random(worse.sum())  # a slice that got worse: the candidate lost its signal there
    gates = load_settings(conf={"gates": {"absolute": {}, "slice_min_rows": 100, "slice_min_positives": 10}}).gates
    report = evaluate_gates(gates, y, candidate, champion, {"country": country}, {"latency_ms": 12.3456789},
                            (True, "match"), seed=0)  # fmt: skip
    return {**report.to_dict(), "summary": report.summary()}  # the summary is what `register` returns


def _slice(report: dict[str, Any], value: str) -> tuple[float, float, float]:
    """(candidate, champion, change) of a country slice's metric in ``report``."""
    metric = report["slices"]["metric"]
    new = report["slices"]["candidate"]["country"][value][metric]
    old = report["slices"]["champion"]["country"][value][metric]
    return new, old, new - old


def _request(report: dict[str, Any] | None, **changes: Any) -> str:
    arguments: dict[str, Any] = {
        "model": "card_transactions",
        "version": "7",
        "champion_version": "6",
        "report": report,
        "summary": (report or {}).get("summary", "all 4 gates passed"),
        "candidate_metrics": {"auc_pr": 0.81234567891234567},
        "gate_report_url": GATE_URL,
        "mlflow_run_url": MLFLOW_URL,
        "timeout_hours": 24.0,
        "slice_tolerance": 0.02,
        "approvers": ["alice", "bob_smith"],
    }
    return approval_request(**{**arguments, **changes})


def _table(text: str, header: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table whose header starts with ``header``, split on unescaped pipes."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def test_the_request_is_a_table_of_candidate_and_champion_rounded_to_four_digits() -> None:
    report = _report()
    text = _request(report)
    heading, _, verdict = text.splitlines()[:3]
    assert heading == "#### Gate evidence for card\\_transactions v7"
    assert verdict.startswith("Gates **FAILED**: FAIL slice:country=N\\|G\\*:auc\\_pr")  # the summary, escaped
    rows = {row[0]: row[1:] for row in _table(text, "| metric | candidate v7 | champion v6 | change |")}
    assert set(rows) == {escape(name) for name in report["candidate_metrics"]}
    for name, value in report["candidate_metrics"].items():
        candidate, champion, change = rows[escape(name)]
        assert candidate == f"{value:.4g}"
        other = report["champion_metrics"].get(name)
        assert champion == (f"{other:.4g}" if other is not None else "—")
        assert change == (f"{value - other:+.4g}" if other is not None else "—")
    assert rows["latency\\_ms"] == ["12.35", "—", "—"]  # measured for the candidate only
    decimals = re.findall(r"\d+\.\d+", text)
    assert decimals and all(len(d.replace(".", "").lstrip("0")) <= 4 for d in decimals), "4 significant digits"


def test_the_request_gives_the_bootstrap_the_moved_slices_the_links_and_the_timeout() -> None:
    report = _report()
    comparison = report["comparison"]
    text = _request(report)
    assert (
        f"delta {comparison['delta']:+.4g}, 95% CI [{comparison['ci_low']:+.4g}, {comparison['ci_high']:+.4g}]" in text
    )
    assert "resamples: **passed** (needs delta CI low \\>= \\-0\\.03)." in text  # the default tolerance
    slices = _table(text, "| slice |")
    assert slices[0][0] == "country = N\\|G\\*" and slices[0][-1] == "**failed**"  # worst first; one cell
    assert slices[0][1:4] == [number(v, signed=i == 2) for i, v in enumerate(_slice(report, "N|G*"))]
    assert all(len(row) == 6 for row in slices)
    assert "country = \\[x\\]\\(http://evil\\)" in [row[0] for row in slices]  # no link out of a slice value
    assert f"[Gate report]({GATE_URL}) · [MLflow run]({MLFLOW_URL})" in text
    assert "No answer within 24 h rejects the promotion" in text
    assert "alice, bob\\_smith, never the user who triggered the run" in text


def test_without_a_champion_or_a_readable_report_the_request_still_says_what_it_can() -> None:
    report = _report()
    first = {**report, "champion_metrics": None, "comparison": None,
             "checks": [c for c in report["checks"] if c["kind"] in ("absolute", "contract")],
             "slices": {**report["slices"], "champion": None}}  # fmt: skip
    text = _request(first, champion_version=None)
    assert _table(text, "| metric | candidate v7 |")[0] == ["auc\\_pr", f"{report['candidate_metrics']['auc_pr']:.4g}"]
    assert "No champion to compare with" in text and "| slice |" not in text

    text = _request(None, unreadable="RESOURCE_DOES_NOT_EXIST: gate_report.json", gate_report_url=None)
    assert "could not be read (RESOURCE\\_DOES\\_NOT\\_EXIST: gate\\_report\\.json)" in text
    assert _table(text, "| metric | candidate v7 |") == [["auc\\_pr", "0.8123"]]
    assert "[Gate report]" not in text and f"[MLflow run]({MLFLOW_URL})" in text


def test_numbers_and_links_cannot_break_out() -> None:
    assert number(0.81234567891234567) == "0.8123" and number(-0.000123456) == "-0.0001235"
    assert number(0.0123, signed=True) == "+0.0123" and number(1234567.8) == "1,234,568"
    assert number(None) == "—" and number(float("nan")) == "nan" and number(3) == "3"
    assert escape("a|b\n*c* [d](e)") == "a\\|b \\*c\\* \\[d\\]\\(e\\)"
    text = _request(None, gate_report_url="/mlops/x (1)", mlflow_run_url=None, summary="FAIL | x\nnext")
    assert "[Gate report](/mlops/x%20%281%29)" in text and "FAIL \\| x next" in text
