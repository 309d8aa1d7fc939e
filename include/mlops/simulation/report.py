"""The run's report: one self-contained HTML page (charts are inline SVG drawn here, no script, no CDN).

Charts: AUC-PR per day of the champion, the frozen model and the oracle; PSI of the top features and of
the score; the events on one time axis (drift in effect, quarantines, late labels, breaches, triggers,
trainings with their gate verdict, promotions). Then the table of the operating record and every day.
Rendered from ``summary.json`` alone, so a stored summary can be re-rendered.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mlops.simulation.summary import recovery_text

WIDTH, LEFT, RIGHT, TOP, BOTTOM = 980, 52, 150, 26, 34
COLORS = {"frozen": "#8c8c8c", "oracle": "#2ca02c", "champion": "#1f77b4"}  # drawn in this order: champion on top
PALETTE = ("#d62728", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
SPAN_COLORS = {"covariate": "#ffe3b3", "concept": "#f5c6cb", "prior": "#d6e4ff"}


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


class _Axis:
    """Day index -> x pixel, value -> y pixel, for one chart."""

    def __init__(self, days: int, height: int, y_max: float) -> None:
        self.days, self.height, self.y_max = days, height, y_max
        self.plot_w = WIDTH - LEFT - RIGHT
        self.plot_h = height - TOP - BOTTOM

    def x(self, day: float) -> float:
        return LEFT + (day + 0.5) * self.plot_w / max(self.days, 1)

    def y(self, value: float) -> float:
        return TOP + self.plot_h * (1 - min(value, self.y_max) / self.y_max)

    def frame(self, dates: list[str], title: str, y_ticks: int = 5) -> list[str]:
        parts = [f'<text x="{LEFT}" y="16" class="title">{_esc(title)}</text>',
                 f'<rect x="{LEFT}" y="{TOP}" width="{self.plot_w}" height="{self.plot_h}" class="plot"/>']  # fmt: skip
        for i in range(y_ticks + 1):
            value = self.y_max * i / y_ticks
            y = self.y(value)
            parts.append(f'<line x1="{LEFT}" x2="{LEFT + self.plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
            parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{value:.2f}</text>')
        for day in range(0, self.days, 7):
            x = self.x(day)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + self.plot_h}" y2="{TOP + self.plot_h + 4}" '
                         'class="axis"/>')  # fmt: skip
            parts.append(f'<text x="{x:.1f}" y="{TOP + self.plot_h + 16}" class="tick" text-anchor="middle">'
                         f"{dates[day][5:]}</text>")  # fmt: skip
        return parts


def _spans(axis: _Axis, summary: dict[str, Any], bottom: float | None = None, top: float | None = None) -> list[str]:
    """Shaded backgrounds where a drift event is in effect."""
    start = summary["scenario"]["start"]
    dates = [d["date"] for d in summary["days"]]
    parts = []
    for event in summary["drift_events"]:
        first, last = dates.index(event["start"]), dates.index(event["until"])
        x0, x1 = axis.x(first - 0.5), axis.x(last + 0.5)
        y0 = TOP if top is None else top
        h = (TOP + axis.plot_h if bottom is None else bottom) - y0
        title = f"{_esc(event['what'])} from {_esc(event['start'])} (day 0 = {start})"
        fill = SPAN_COLORS.get(event["kind"], "#eee")
        parts.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{h:.1f}" fill="{fill}" '
                     f'opacity="0.5"><title>{title}</title></rect>')  # fmt: skip
    return parts


def _vertical_marks(axis: _Axis, summary: dict[str, Any]) -> list[str]:
    """Triggers (dashed orange) and promotions (green) across a chart."""
    parts = []
    for day in summary["days"]:
        x = axis.x(day["day"])
        if day["drift"] and day["drift"]["triggered"]:
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + axis.plot_h}" class="trigger">'
                         f"<title>{_esc(day['date'])}: {_esc(day['drift']['reason'])}</title></line>")  # fmt: skip
        for training in day["trainings"]:
            if training["promoted"]:
                parts.append(f'<line x1="{x + 3:.1f}" x2="{x + 3:.1f}" y1="{TOP}" y2="{TOP + axis.plot_h}" '
                             f'class="promotion"><title>{_esc(day["date"])}: v{_esc(training["version"])} promoted'
                             "</title></line>")  # fmt: skip
    return parts


def _polylines(axis: _Axis, values: list[float | None], color: str, name: str, dashed: bool = False) -> list[str]:
    """One polyline per run of known values (a day without a value breaks the line), dots with tooltips."""
    parts, run = [], []
    style = ' stroke-dasharray="5 3"' if dashed else ""
    for day, value in [*enumerate(values), (len(values), None)]:
        if value is None:
            if len(run) > 1:
                points = " ".join(run)
                parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.8"{style}/>')
            run = []
            continue
        x, y = axis.x(day), axis.y(value)
        run.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{color}"><title>{_esc(name)} day {day}: '
                     f"{value:.3f}</title></circle>")  # fmt: skip
    return parts


def _legend(entries: list[tuple[str, str, bool]]) -> list[str]:
    parts = []
    for i, (label, color, dashed) in enumerate(entries):
        y = TOP + 10 + 18 * i
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 32}" y1="{y}" y2="{y}" stroke="{color}" '
                     f'stroke-width="2"{dash}/><text x="{WIDTH - RIGHT + 38}" y="{y + 4}" class="tick">'
                     f"{_esc(label)}</text>")  # fmt: skip
    return parts


def _svg(height: int, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
            f'role="img">{"".join(parts)}</svg>')  # fmt: skip


def auc_chart(summary: dict[str, Any]) -> str:
    days = summary["days"]
    dates = [d["date"] for d in days]
    series = {m: [d["auc_pr"].get(m) for d in days] for m in COLORS}
    known = [v for values in series.values() for v in values if v is not None]
    axis = _Axis(len(days), 300, max(0.1, round(max(known, default=0.5) * 1.15 + 0.05, 1)))
    title = "AUC-PR per day (the model that scored the day, once its labels arrived)"
    parts = _spans(axis, summary) + axis.frame(dates, title)
    parts += _vertical_marks(axis, summary)
    for name, color in COLORS.items():
        parts += _polylines(axis, series[name], color, name)
    legend = [(name, color, False) for name, color in COLORS.items()]
    legend += [("trigger", "#ff7f0e", True), ("promotion", "#2ca02c", True)]
    return _svg(300, parts + _legend(legend))


def psi_chart(summary: dict[str, Any], top: int = 4) -> str:
    days = summary["days"]
    dates = [d["date"] for d in days]
    checked = [d for d in days if d["drift"]]
    peaks: dict[str, float] = {}
    for day in checked:
        for name, value in day["drift"]["features"].items():
            peaks[name] = max(peaks.get(name, 0.0), value)
    names = sorted(peaks, key=lambda n: -peaks[n])[:top]
    series = {name: [d["drift"]["features"][name] if d["drift"] else None for d in days] for name in names}
    series["score"] = [d["drift"]["score_psi"] if d["drift"] else None for d in days]
    threshold = summary["scenario"]["policy"]["drift"]["psi_threshold"]
    known = [v for values in series.values() for v in values if v is not None]
    y_max = min(max(threshold * 2, max(known, default=0.0) * 1.1), 3.0)
    axis = _Axis(len(days), 280, round(y_max + 0.05, 1))
    window = summary["scenario"]["policy"]["drift"]["window_days"]
    title = f"PSI per day: top {len(names)} features and the score (window of {window} days; capped at {axis.y_max})"
    parts = _spans(axis, summary) + axis.frame(dates, title)
    y = axis.y(threshold)
    parts.append(f'<line x1="{LEFT}" x2="{LEFT + axis.plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="threshold"/>')
    legend = []
    for i, (name, values) in enumerate(series.items()):
        color = "#333333" if name == "score" else PALETTE[i % len(PALETTE)]
        parts += _polylines(axis, values, color, f"PSI {name}", dashed=name == "score")
        legend.append((name, color, name == "score"))
    legend.append((f"threshold {threshold}", "#d62728", True))
    return _svg(280, parts + _legend(legend))


def timeline_chart(summary: dict[str, Any]) -> str:
    """One lane per kind of event, on the same day axis as the charts above."""
    days = summary["days"]
    dates = [d["date"] for d in days]
    lanes = ["drift in effect", "data", "drift check", "training", "champion"]
    lane_h = 26
    height = TOP + lane_h * len(lanes) + BOTTOM
    axis = _Axis(len(days), height, 1.0)
    parts = [f'<text x="{LEFT}" y="16" class="title">Events</text>']
    for i, lane in enumerate(lanes):
        y = TOP + lane_h * i
        parts.append(f'<rect x="{LEFT}" y="{y}" width="{axis.plot_w}" height="{lane_h}" class="lane"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 10}" y="{y + 17}" class="tick">{lane}</text>')
    parts += _spans(axis, summary, bottom=TOP + lane_h, top=TOP)
    previous = None
    for day in days:
        x = axis.x(day["day"])
        mid = lambda lane: TOP + lane_h * lane + lane_h / 2  # noqa: E731
        if day["quarantine"]:
            title = f"{_esc(day['date'])} quarantined: {_esc(day['quarantine'])}"
            parts.append(f'<rect x="{x - 5:.1f}" y="{mid(1) - 5:.1f}" width="10" height="10" fill="#d62728">'
                         f"<title>{title}</title></rect>")  # fmt: skip
        for late in summary["late_labels"]:
            if late["date"] == day["date"]:
                parts.append(f'<circle cx="{x:.1f}" cy="{mid(1):.1f}" r="5" fill="#ff7f0e"><title>labels of '
                             f"{_esc(late['date'])} arrived {_esc(late['arrived'])} (due {_esc(late['due'])})"
                             "</title></circle>")  # fmt: skip
        drift = day["drift"]
        if drift and drift["breached"]:
            y = mid(2)
            triangle = f"M{x - 6:.1f},{y + 5:.1f} L{x + 6:.1f},{y + 5:.1f} L{x:.1f},{y - 6:.1f} Z"
            shape = (f'<path d="{triangle}" fill="#ff7f0e">' if drift["triggered"] else
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#f2c14e">')  # fmt: skip
            tag = "path" if drift["triggered"] else "circle"
            parts.append(f"{shape}<title>{_esc(day['date'])}: {_esc(drift['reason'])}</title></{tag}>")
        for j, training in enumerate(day["trainings"]):
            color = "#2ca02c" if training["promoted"] else ("#8c8c8c" if training["error"] else "#d62728")
            verdict = "promoted" if training["promoted"] else (training["error"] or "rejected: " + training["summary"])
            parts.append(f'<circle cx="{x + 4 * j:.1f}" cy="{mid(3):.1f}" r="5" fill="{color}"><title>'
                         f"{_esc(day['date'])} {_esc(training['kind'])} training v{_esc(training['version'])}: "
                         f"{_esc(verdict[:300])} ({training['seconds']:.0f} s)</title></circle>")  # fmt: skip
        if day["champion_version"] and day["champion_version"] != previous:
            parts.append(f'<text x="{x:.1f}" y="{mid(4) + 4:.1f}" class="tick" text-anchor="middle">'
                         f"v{_esc(day['champion_version'])}</text>")  # fmt: skip
            previous = day["champion_version"]
    for day in range(0, len(days), 7):
        parts.append(f'<text x="{axis.x(day):.1f}" y="{TOP + lane_h * len(lanes) + 16}" class="tick" '
                     f'text-anchor="middle">{dates[day][5:]}</text>')  # fmt: skip
    return _svg(height, parts)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _esc(value)


CSS = """
body { font: 14px/1.45 -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 24px auto; max-width: 1040px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
svg text.title { font-size: 13px; font-weight: 600; } svg text.tick { font-size: 11px; fill: #555; }
svg .plot { fill: none; stroke: #bbb; } svg .grid { stroke: #eee; } svg .axis { stroke: #999; }
svg .lane { fill: none; stroke: #e4e4e4; } svg .threshold { stroke: #d62728; stroke-dasharray: 5 3; }
svg .trigger { stroke: #ff7f0e; stroke-dasharray: 4 3; } svg .promotion { stroke: #2ca02c; stroke-dasharray: 2 2; }
code, pre { background: #f6f8fa; padding: 1px 4px; } pre { padding: 8px; overflow-x: auto; }
"""


def _outcome(training: dict[str, Any]) -> str:
    if training["promoted"]:
        return "promoted"
    if training["error"]:
        return "no data"
    return "passed" if training["passed"] else "REJECTED"


def render_html(summary: dict[str, Any]) -> str:
    s = summary["scenario"]
    means, gaps = summary["auc_pr_mean"], summary["gap_to_oracle"]
    t = summary["trainings"]
    rows = []
    for e in summary["drift_events"]:
        recovered = recovery_text(e)
        rows.append(f"<tr><td>{_esc(e['what'])}</td><td>{e['start']}</td><td>{e['first_evidence']}</td>"
                    f"<td>{e['detected_on'] or '-'}</td><td class=num>{_fmt(e['detection_days'])}</td>"
                    f"<td class=num>{_fmt(e['detection_days_from_start'])}</td>"
                    f"<td>{_esc(e['fell_behind'] or '-')}</td><td>{_esc(recovered)}</td>"
                    f"<td class=num>{_fmt(e['recovery_days'])}</td><td class=num>{_fmt(e['worst_gap'])}</td>"
                    f"<td class=num>{len(e['triggers'])}</td><td class=num>{e['trainings']}</td>"
                    f"<td class=num>{e['promotions']}</td></tr>")  # fmt: skip
    checks = "".join(f"<li><span class={'pass' if c['passed'] else 'fail'}>{'PASS' if c['passed'] else 'FAIL'}</span> "
                     f"{_esc(c['check'])} ({_esc(c['measured'])})</li>" for c in summary["checks"])  # fmt: skip
    trainings = "".join(
        f"<tr><td>{_esc(r['date'])}</td><td>{_esc(r['kind'])}</td><td>v{_esc(r['version'])}</td>"
        f"<td>{_outcome(r)}</td><td class=num>{r['seconds']:.1f}</td><td>{_esc(r['reason'][:120])}</td>"
        f"<td>{_esc((r['error'] or r['summary'])[:200])}</td></tr>"
        for r in [summary["run"]["initial_training"] | {"date": "day 0 (history)"}, *t["runs"]]
    )  # fmt: skip
    days = "".join(
        f"<tr><td class=num>{d['day']}</td><td>{d['date']}</td>"
        f"<td>{'validated' if d['validated'] else 'QUARANTINED'}</td>"
        f"<td>{_esc('v' + d['champion_version'] if d['champion_version'] else '-')}</td>"
        f"<td>{_esc(d['drift']['reason'] if d['drift'] else '-')[:110]}</td>"
        + "".join(f"<td class=num>{_fmt(d['auc_pr'].get(m))}</td>" for m in COLORS)
        + f"<td class=num>{_fmt(d['positives'])}</td><td>{_esc(', '.join(d['labels_for']) or '-')}</td></tr>"
        for d in summary["days"]
    )  # fmt: skip
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(summary["run"]["timings"].items(), key=lambda kv: -kv[1]))
    config = {"settings (over the defaults)": s["settings"], "policy": s["policy"], "events": s["events"]}
    mean_line = (f"champion {_fmt(means['champion'])}, frozen {_fmt(means['frozen'])}, oracle {_fmt(means['oracle'])}; "
                 f"behind the oracle: champion {_fmt(gaps['champion'])}, frozen {_fmt(gaps['frozen'])}")  # fmt: skip
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Operating record: {_esc(s["name"])}</title>
<style>{CSS}</style></head><body>
<h1>Operating record: {_esc(s["name"])}</h1>
<p>{_esc(s["description"])}</p>
<p>{s["days"]} simulated days ({s["start"]} .. {s["end"]}) after {s["history_days"]} history days, {s["rows_per_day"]:,}
rows a day, seed {s["seed"]}, labels {s["label_delay_days"]} days late; simulated in {summary["run"]["seconds"]:.0f} s
({_esc(timings)}). Scenario <code>{_esc(s["path"])}</code>; home <code>{_esc(summary["run"]["home"])}</code>.</p>
<ul>{checks}</ul>
<h2>AUC-PR: the champion (policy under test), the frozen day-0 model and the oracle</h2>
{auc_chart(summary)}
<p>Mean AUC-PR over {summary["labelled_days"]} labelled days: {mean_line}.
The oracle is refitted every day with the training code's <code>fit_booster</code> on the window the pipeline
would use that day (labels known by then); the frozen model is the day-0 champion, never retrained. Neither
touches the registry.</p>
{psi_chart(summary)}
{timeline_chart(summary)}
<h2>Drift events</h2>
<table><tr><th>event</th><th>start</th><th>first evidence</th><th>trigger</th><th class=num>detection (d)</th>
<th class=num>from start (d)</th>
<th>fell behind</th><th>recovered</th><th class=num>recovery (d)</th><th class=num>worst gap</th>
<th class=num>triggers</th><th class=num>trainings</th><th class=num>promotions</th></tr>{"".join(rows)}</table>
<p>First evidence: the first day of a covariate shift; for concept and prior drift, the day the first drifted labels
arrive. Detection: days from first evidence to the first trigger with matching evidence (feature or score PSI for a
covariate shift, the AUC-PR drop for concept and prior drift). Recovery: days from the event's start until the
champion is back within {s["recovery"]["margin"]} AUC-PR of the oracle on {s["recovery"]["days"]} labelled days
in a row, after falling behind. False triggers on clean stretches (no drift with evidence in effect):
{len(summary["false_triggers"])} on {summary["clean_days"]} clean days {_esc(", ".join(summary["false_triggers"]))}.</p>
<h2>Trainings</h2>
<p>{t["count"]} after day 0 ({t["drift_triggered"]} drift-triggered; {t["promoted"]} promoted, {t["rejected"]}
rejected by the gates, {t["failed"]} without usable data), {t["seconds"]:.0f} s in total.
Quarantines: {len(summary["quarantines"])}
{_esc("; ".join(f"{q['date']}: {q['reason']}" for q in summary["quarantines"]))}.</p>
<table><tr><th>day</th><th>kind</th><th>version</th><th>outcome</th><th class=num>s</th><th>reason</th>
<th>gates</th></tr>{trainings}</table>
<h2>Configuration</h2>
<pre>{_esc(json.dumps(config, indent=2))}</pre>
<details><summary>Every day</summary>
<table><tr><th class=num>day</th><th>date</th><th>validation</th><th>champion</th><th>drift decision</th>
<th class=num>AUC-PR champion</th><th class=num>frozen</th><th class=num>oracle</th><th class=num>positives</th>
<th>labels that arrived</th></tr>{days}</table></details>
</body></html>
"""


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(summary: dict[str, Any], folder: Path) -> Path:
    """``summary.json`` and ``report.html`` in ``folder``; returns the report's path."""
    _write_atomic(folder / "summary.json", json.dumps(summary, indent=2, default=str))
    report = folder / "report.html"
    _write_atomic(report, render_html(summary))
    return report
