"""The gate report as a self-contained HTML page, logged beside ``gate_report.json`` for people to read.

Rendering only: the verdict and its evidence come from ``mlops.gates.evaluate_gates``. Every value
is escaped (slice values and check details come from the data), and the page has inline CSS and no
JavaScript, so the one file is the whole report.
"""

from __future__ import annotations

import html
from typing import Any

from mlops.evaluation import LOWER_IS_BETTER, SCORE_METRICS
from mlops.gates import GateReport, format_value

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1 span{padding:.1em .5em;border-radius:.3em;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}
th{background:#f3f3f3}tr.ok td:first-child{border-left:4px solid #1a7f37}
tr.bad td:first-child{border-left:4px solid #cf222e}tr.bad{background:#ffebe9}
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777}
"""


def _row(cells: list[Any], css: str = "", numeric_from: int = 99) -> str:
    tds = "".join(
        f'<td class="num">{html.escape(format_value(c))}</td>'
        if i >= numeric_from
        else f"<td>{html.escape(format_value(c))}</td>"
        for i, c in enumerate(cells)
    )
    return f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>"


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_gate_report_html(report: GateReport, title: str) -> str:
    """A self-contained page (inline CSS, no JS) with the verdict and every piece of evidence."""
    verdict, css = ("PASS", "pass") if report.passed else ("FAIL", "fail")
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)} — {verdict}</title><style>{_CSS}</style></head><body>",
        f'<h1>{html.escape(title)} <span class="{css}">{verdict}</span></h1>',
        f"<p>{html.escape(report.summary()).replace(chr(10), '<br>')}</p>",
        "<h2>Checks</h2>",
        _table(
            ["check", "kind", "result", "value", "threshold", "detail"],
            [
                _row(
                    [c.name, c.kind, "pass" if c.passed else "FAIL", c.value, c.threshold, c.detail],
                    "ok" if c.passed else "bad",
                )
                for c in report.checks
            ],
        ),
        "<h2>Metrics</h2>",
    ]
    champ = report.champion_metrics or {}
    metric_rows = []
    for name, value in report.candidate_metrics.items():
        other = champ.get(name)
        delta = value - other if other is not None and name not in ("rows", "positives") else None
        better = "lower" if name in LOWER_IS_BETTER else ("higher" if name in SCORE_METRICS else "")
        metric_rows.append(_row([name, value, other, delta, better], numeric_from=1))
    parts.append(_table(["metric", "candidate", "champion", "delta", "better"], metric_rows))

    parts.append("<h2>Paired bootstrap vs champion</h2>")
    if report.comparison is None:
        parts.append('<p class="muted">no champion: absolute gates only</p>')
    else:
        parts.append(_table(["", "value"], [_row([k, v], numeric_from=1) for k, v in report.comparison.items()]))

    metric = report.slices.get("metric", "")
    parts.append(f"<h2>Slices ({html.escape(str(metric))})</h2>")
    cand_slices = report.slices.get("candidate") or {}
    champ_slices = report.slices.get("champion") or {}
    slice_rows = []
    for column, values in cand_slices.items():
        for value, stats in values.items():
            other = champ_slices.get(column, {}).get(value, {}).get(metric)
            mine = stats.get(metric)
            delta = mine - other if mine is not None and other is not None else None
            slice_rows.append(
                _row([column, value, stats["rows"], stats["positives"], mine, other, delta], numeric_from=2)
            )
    if slice_rows:
        parts.append(_table(["column", "value", "rows", "positives", "candidate", "champion", "delta"], slice_rows))
    else:
        parts.append('<p class="muted">no slices</p>')
    parts.append("</body></html>")
    return "\n".join(parts)
