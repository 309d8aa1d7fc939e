"""The manual policy's approval request as Markdown: what an approver reads in Airflow's Required actions.

A pure function of the gate report (``GateReport.to_dict()``, as logged to MLflow) and the links the DAG
already made, so an approver sees rounded numbers in a table instead of a Python dict, and the request can be
checked without Airflow or MLflow. Everything that comes from data (metric names, slice values, the model's
name, the summary) is escaped: a slice value such as ``a|b`` must not break the table or inject a link.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that can change the layout.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")
#: How many moved slices the request lists (the gate report has them all).
MAX_SLICES = 10


def escape(text: Any) -> str:
    """``text`` as literal Markdown on one line (a table cell stays one cell)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def number(value: Any, signed: bool = False) -> str:
    """A metric for people: 4 significant digits (``0.8123``), thousands grouped from 10,000, "—" for none."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return escape(value)
    if not math.isfinite(value):
        return str(value)
    sign = "+" if signed else ""
    if abs(value) >= 10_000:
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.4g}"


def _link(label: str, url: str | None) -> str | None:
    """A Markdown link whose target cannot end early (``(``, ``)`` and spaces percent-encoded)."""
    if not url:
        return None
    target = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{label}]({target})"


def _metrics_table(candidate: dict[str, Any], champion: dict[str, Any] | None, version: str,
                   champion_version: str | None) -> list[str]:  # fmt: skip
    """Candidate vs champion per metric, with the change (the candidate's metrics alone without a champion)."""
    if champion is None:
        lines = [f"| metric | candidate v{escape(version)} |", "|---|---:|"]
        return lines + [f"| {escape(name)} | {number(value)} |" for name, value in candidate.items()]
    lines = [
        f"| metric | candidate v{escape(version)} | champion v{escape(champion_version or '?')} | change |",
        "|---|---:|---:|---:|",
    ]
    for name, value in candidate.items():
        other = champion.get(name)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (value, other))
        change = number(value - other, signed=True) if numeric else "—"
        lines.append(f"| {escape(name)} | {number(value)} | {number(other)} | {change} |")
    return lines


def _bootstrap(report: dict[str, Any]) -> list[str]:
    """The paired bootstrap of candidate - champion on the holdout, its CI and the champion gate's verdict."""
    comparison = report.get("comparison")
    check = next((c for c in report.get("checks", []) if c.get("kind") == "champion"), None)
    if not comparison or check is None:
        return ["No champion to compare with: the absolute gates alone decided."]
    metric = str(check["name"]).split(":", 1)[-1]
    verdict = "**passed**" if check.get("passed") else "**failed**"
    return [
        f"Paired bootstrap of {escape(metric)} (candidate − champion) on the same holdout rows: "
        f"delta {number(comparison['delta'], signed=True)}, {number(comparison['confidence'] * 100)}% CI "
        f"[{number(comparison['ci_low'], signed=True)}, {number(comparison['ci_high'], signed=True)}] over "
        f"{number(comparison['samples'])} resamples: {verdict} (needs {escape(check.get('threshold', ''))})."
    ]


def _moved_slices(report: dict[str, Any], tolerance: float) -> list[str]:
    """Slices whose metric changed by more than ``tolerance`` either way, the worst first, with their gate."""
    slices = report.get("slices") or {}
    metric, candidate, champion = slices.get("metric"), slices.get("candidate") or {}, slices.get("champion")
    if not champion:
        return []
    verdicts = {c["name"]: c for c in report.get("checks", []) if c.get("kind") == "slice"}
    moved: list[tuple[float, str]] = []
    for column, values in candidate.items():
        for value, cand in values.items():
            new, old = cand.get(metric), champion.get(column, {}).get(value, {}).get(metric)
            if new is None or old is None or abs(new - old) <= tolerance:
                continue
            check = verdicts.get(f"slice:{column}={value}:{metric}", {})
            gate = "passed" if check.get("passed", True) else "**failed**"
            if "within the noise" in str(check.get("detail", "")):
                gate += " (within the noise)"
            row = (f"| {escape(column)} = {escape(value)} | {number(new)} | {number(old)} | "
                   f"{number(new - old, signed=True)} | {number(cand.get('rows'))} | {gate} |")  # fmt: skip
            moved.append((new - old, row))
    if not moved:
        return [f"No slice moved by more than {number(tolerance)} in {escape(metric)}."]
    moved.sort(key=lambda pair: pair[0])
    lines = [
        f"Slices whose {escape(metric)} moved by more than {number(tolerance)}:",
        "",
        "| slice | candidate | champion | change | rows | gate |",
        "|---|---:|---:|---:|---:|---|",
        *(row for _, row in moved[:MAX_SLICES]),
    ]
    if len(moved) > MAX_SLICES:
        lines += ["", f"… and {len(moved) - MAX_SLICES} more in the gate report."]
    return lines


def approval_request(*, model: str, version: str, champion_version: str | None, report: dict[str, Any] | None,
                     summary: str, candidate_metrics: dict[str, Any], gate_report_url: str | None,
                     mlflow_run_url: str | None, timeout_hours: float, slice_tolerance: float,
                     approvers: list[str], unreadable: str | None = None) -> str:  # fmt: skip
    """The request's body (Markdown) for promoting ``version`` of ``model`` over ``champion_version``.

    ``report`` is the gate report as logged (None when it could not be read: ``unreadable`` says why, and the
    candidate's ``candidate_metrics`` from the register step stand in).
    """
    lines = [f"#### Gate evidence for {escape(model)} v{escape(version)}", ""]
    verdict = "passed" if report is None or report.get("passed") else "FAILED"
    lines += [f"Gates **{verdict}**: {escape(summary)}", ""]
    if report is None:
        lines += [f"The gate report could not be read ({escape(unreadable or 'unknown reason')}): "
                  "the candidate's holdout metrics only.", ""]  # fmt: skip
        lines += _metrics_table(candidate_metrics, None, version, None)
    else:
        champion = report.get("champion_metrics")
        lines += _metrics_table(report.get("candidate_metrics") or candidate_metrics, champion, version,
                                champion_version)  # fmt: skip
        lines += ["", *_bootstrap(report)]
        moved = _moved_slices(report, slice_tolerance)
        if moved:
            lines += ["", *moved]
    links = [link for link in (_link("Gate report", gate_report_url), _link("MLflow run", mlflow_run_url)) if link]
    if links:
        lines += ["", " · ".join(links)]
    who = ", ".join(escape(name) for name in approvers) or "nobody (set promotion.approvers)"
    lines += [
        "",
        f"No answer within {number(timeout_hours)} h rejects the promotion. Who may approve: {who}, "
        "never the user who triggered the run.",
    ]
    return "\n".join(lines)
