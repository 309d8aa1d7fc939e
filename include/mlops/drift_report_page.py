"""What the drift report's page shows above Evidently's: our decision and PSI table, the columns not compared.

So that the page never contradicts the decision (``mlops.drift_report``), :func:`decision_banner` and
:func:`skipped_html` are escaped HTML blocks put right after the page's ``<body>`` (:func:`inject_after_body`).
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlops.config import DriftPolicySpec


def skipped_html(skipped: Mapping[str, str]) -> str:
    """The columns the report does not judge, with the reason, as an escaped HTML block ("" without any)."""
    if not skipped:
        return ""
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(reason)}</td></tr>"
                   for name, reason in sorted(skipped.items()))  # fmt: skip
    return (
        '<div class="mlops-decision" id="mlops-skipped"><p><b>Columns not compared by the report below:</b></p>'
        f"<table><thead><tr><th>column</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


_BANNER_CSS = """
.mlops-decision{font-family:system-ui,sans-serif;font-size:14px;color:#222;margin:16px;padding:12px 16px;
border:1px solid #ccc;border-left:6px solid #777;border-radius:4px;background:#fff}
.mlops-decision.trigger{border-left-color:#cf222e;background:#fff5f5}
.mlops-decision.breach{border-left-color:#bf8700;background:#fffbea}
.mlops-decision.quiet{border-left-color:#1a7f37}
.mlops-decision h2{font-size:18px;margin:0 0 6px}.mlops-decision p{margin:4px 0}
.mlops-decision table{border-collapse:collapse;margin-top:8px}
.mlops-decision th,.mlops-decision td{border:1px solid #ccc;padding:2px 8px;text-align:left}
.mlops-decision td.num{text-align:right;font-variant-numeric:tabular-nums}
.mlops-decision tr.bad td{background:#ffebe9;font-weight:600}.mlops-decision .muted{color:#666}
"""


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(float(value), spec)


def _banner_row(cells: list[str], breached: bool) -> str:
    tds = "".join(
        f'<td class="num">{html.escape(c)}</td>' if 0 < i < 4 else f"<td>{html.escape(c)}</td>"
        for i, c in enumerate(cells)
    )
    return f'<tr class="bad">{tds}</tr>' if breached else f"<tr>{tds}</tr>"


def _feature_note(breached: bool, stats: dict[str, Any]) -> str:
    if stats.get("kind") == "skipped":
        return f"not compared: {stats.get('note', '')}"
    note = "yes" if breached else "no"
    return f"{note} (entirely null)" if stats.get("null_fraction") == 1.0 else note


def decision_banner(decision: dict[str, Any], result: dict[str, Any], policy: DriftPolicySpec) -> str:
    """Our decision and PSI table as an escaped HTML block, for the top of the Evidently page.

    ``decision`` is ``mlops.drift.trigger_decision``'s, ``result`` a ``DriftResult.to_dict()`` (PSI of
    every feature and of the score on all the window's rows, the breached features).
    """
    breached = result.get("breached_features") or {}
    if decision.get("trigger"):
        css, headline = "trigger", "Our decision: retraining triggered"
    elif result.get("breached"):
        css, headline = "breach", "Our decision: drift breached, retraining NOT triggered"
    else:
        css, headline = "quiet", "Our decision: no drift, no retraining"
    window = result.get("window") or []
    span = f"{window[0]} .. {window[-1]}" if len(window) > 1 else (window[0] if window else "")
    names = ", ".join(f"{name} (PSI {float(value):.3f})" for name, value in breached.items()) or "none"
    features = result.get("features") or {}
    rows = max([int(stats.get("rows") or 0) for stats in features.values()] + [0])
    rows_html = [
        _banner_row(
            [
                name,
                _fmt(stats.get("psi"), ".4f"),
                f"{policy.psi_threshold:g}",
                _fmt(stats.get("pvalue"), ".2g"),
                _feature_note(name in breached, stats),
            ],
            name in breached,
        )
        for name, stats in sorted(features.items(), key=lambda kv: -float(kv[1].get("psi") or 0.0))
    ]
    score = result.get("score") or {}
    score_hit = bool(score.get("breached"))
    score_note = "yes" if score_hit else ("no" if score.get("psi") is not None else "no scores in the window")
    rows_html.append(
        _banner_row(
            [
                "score (champion's predictions)",
                _fmt(score.get("psi"), ".4f"),
                f"{policy.score_psi_threshold:g}",
                _fmt(score.get("pvalue"), ".2g"),
                score_note,
            ],
            score_hit,
        )
    )
    body = "".join(rows_html)
    performance = result.get("performance")
    perf = ""
    if performance:
        perf = (
            f"<p>AUC-PR on the window's labelled rows {float(performance['auc_pr']):.4f} vs holdout "
            f"{float(performance['reference_auc_pr']):.4f} ({float(performance['relative_drop']):.0%} drop; "
            f"breaches at {policy.performance_drop:.0%}).</p>"
        )
    rule = (
        f"A feature breaches when its PSI against the champion's reference profile is >= {policy.psi_threshold:g} and "
        f"its chi-square test is significant (p < {policy.pvalue_threshold:g} / tests); the window breaches when at "
        f"least {policy.min_breaching_features} feature(s) breach, the score PSI is >= {policy.score_psi_threshold:g}, "
        f"or AUC-PR dropped by {policy.performance_drop:.0%}; a severe PSI (>= {policy.severe_psi:g}) triggers at "
        f"once, milder drift after {policy.consecutive_windows} breaching windows in a row."
    )
    evidently = (
        f"Evidently's report below is for reading, not deciding: it compares seeded samples (up to "
        f"{policy.report_sample_rows} rows per side, the reference from the champion's last training day) with "
        f"the same PSI >= {policy.psi_threshold:g} per column and dataset drift at {policy.min_breaching_features} "
        f"drifted column(s), but without the significance test, the score or the debounce, so its verdict can "
        f"differ at the margin. The decision above is the one that was acted on."
    )
    return (
        f"<style>{_BANNER_CSS}</style>"
        f'<div class="mlops-decision {css}" id="mlops-decision">'
        f"<h2>{html.escape(headline)}</h2>"
        f"<p><b>Reason:</b> {html.escape(str(decision.get('reason', '')))}</p>"
        f"<p><b>Breached features:</b> {html.escape(names)}</p>"
        f"<p><b>Window:</b> {html.escape(str(span))} ({rows} rows; day {html.escape(str(result.get('day', '')))})</p>"
        f"{perf}"
        "<table><thead><tr><th>feature</th><th>PSI</th><th>threshold</th><th>p-value</th><th>breached</th></tr>"
        f"</thead><tbody>{body}</tbody></table>"
        f'<p class="muted">{html.escape(rule)}</p><p class="muted">{html.escape(evidently)}</p>'
        "</div>"
    )


_BODY = re.compile(r"</head>\s*<body[^>]*>", re.IGNORECASE)
_ANY_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)


def inject_after_body(path: str, fragment: str) -> None:
    """Put ``fragment`` right after the page's ``<body>`` tag (the one after ``</head>``: the page's data,
    in a script in the head, may contain the text "<body" itself); at the very top when there is none."""
    with open(path, encoding="utf-8") as handle:
        page = handle.read()
    match = _BODY.search(page) or _ANY_BODY.search(page)
    at = match.end() if match else 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page[:at] + fragment + page[at:])
