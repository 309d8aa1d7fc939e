"""The gate report as a self-contained HTML page, logged beside ``gate_report.json`` for people to read.

Rendering only: the verdict and its evidence come from ``mlops.gates.evaluate_gates``, the curves from
``mlops.evaluation.holdout_curves``. Every value is escaped (slice values and check details come from
the data), and the page has inline CSS, inline SVG charts and no JavaScript, so the one file is the
whole report (it opens from MLflow or the lake with no network).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops.evaluation import LOWER_IS_BETTER, RELATIVE_METRICS, SCORE_METRICS
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
.charts{display:flex;flex-wrap:wrap;gap:1.5em;margin:.5em 0 1.5em}
figure{margin:0;display:table}figcaption{display:table-caption;caption-side:bottom;font-size:.85em;color:#555}
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#333}
"""

CANDIDATE_COLOR = "#0969da"
CHAMPION_COLOR = "#bc4c00"
_PASS_COLOR = "#2da44e"
_FAIL_COLOR = "#cf222e"
_GRID = "#e5e5e5"
#: Longest label drawn beside a bar; the whole label is in the bar's tooltip (<title>).
_LABEL_CHARS = 36


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    """An SVG coordinate: short, and never NaN/inf (a bad value is drawn at 0, not as broken markup)."""
    return f"{value:.1f}" if math.isfinite(value) else "0"


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class Series:
    """One line of a line chart; ``name`` tags its polyline (``data-series``), ``label`` is the legend text."""

    name: str
    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str
    markers: bool = False


@dataclass(frozen=True)
class Reference:
    """A dashed straight line in data coordinates (the diagonal of perfect calibration, the prevalence)."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: str


def _ticks(upper: float, count: int = 5) -> list[float]:
    return [upper * i / (count - 1) for i in range(count)]


def _svg_open(chart_id: str, title: str, width: int, height: int) -> str:
    return (
        f'<svg id="{_esc(chart_id)}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}"><title>{_esc(title)}</title>'
    )


def line_chart(
    chart_id: str,
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    x_max: float = 1.0,
    y_max: float = 1.0,
    references: Sequence[Reference] = (),
) -> str:
    """A small SVG line chart over [0, x_max] x [0, y_max]: one polyline per series, a legend, grid and ticks."""
    width, height, left, right, top, bottom = 440, 330, 52, 16, 16, 92
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + min(max(x / x_max, 0.0), 1.0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - min(max(y / y_max, 0.0), 1.0) * plot_h

    out = [_svg_open(chart_id, title, width, height)]
    for tick in _ticks(x_max):
        out.append(
            f'<line x1="{_num(px(tick))}" y1="{top}" x2="{_num(px(tick))}" y2="{top + plot_h}" stroke="{_GRID}"/>'
        )
        out.append(f'<text x="{_num(px(tick))}" y="{top + plot_h + 14}" text-anchor="middle">{tick:.2g}</text>')
    for tick in _ticks(y_max):
        out.append(
            f'<line x1="{left}" y1="{_num(py(tick))}" x2="{left + plot_w}" y2="{_num(py(tick))}" stroke="{_GRID}"/>'
        )
        out.append(f'<text x="{left - 6}" y="{_num(py(tick) + 4)}" text-anchor="end">{tick:.2g}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32}" text-anchor="middle">{_esc(x_label)}</text>')
    out.append(
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{_esc(y_label)}</text>'
    )
    for ref in references:
        out.append(
            f'<line class="reference" x1="{_num(px(ref.x0))}" y1="{_num(py(ref.y0))}" x2="{_num(px(ref.x1))}" '
            f'y2="{_num(py(ref.y1))}" stroke="#888" stroke-dasharray="4 3"><title>{_esc(ref.label)}</title></line>'
        )
    for line in series:
        points = " ".join(f"{_num(px(x))},{_num(py(y))}" for x, y in zip(line.x, line.y, strict=True))
        out.append(
            f'<polyline class="series" data-series="{_esc(line.name)}" points="{points}" fill="none" '
            f'stroke="{line.color}" stroke-width="2"><title>{_esc(line.label)}</title></polyline>'
        )
        if line.markers:
            out.extend(
                f'<circle cx="{_num(px(x))}" cy="{_num(py(y))}" r="3" fill="{line.color}"/>'
                for x, y in zip(line.x, line.y, strict=True)
            )
    legend_y = top + plot_h + 50
    for i, item in enumerate([*series, *references]):
        y = legend_y + 15 * i
        if isinstance(item, Series):
            out.append(
                f'<line x1="{left}" y1="{y - 4}" x2="{left + 22}" y2="{y - 4}" stroke="{item.color}" stroke-width="2"/>'
            )
        else:
            out.append(
                f'<line x1="{left}" y1="{y - 4}" x2="{left + 22}" y2="{y - 4}" stroke="#888" stroke-dasharray="4 3"/>'
            )
        out.append(f'<text class="legend" x="{left + 28}" y="{y}">{_esc(item.label)}</text>')
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart; ``label`` is drawn shortened, whole in the tooltip."""

    label: str
    value: float
    color: str
    tooltip: str = ""


def bar_chart(
    chart_id: str,
    title: str,
    x_label: str,
    bars: Sequence[Bar],
    references: Sequence[tuple[float, str]] = (),
    shade: tuple[float, float] | None = None,
) -> str:
    """A horizontal SVG bar chart from 0 (bars may be negative); ``references`` are dashed vertical lines.

    ``shade`` is an x interval drawn as a light red band: the region a bar must not reach (a tolerance).
    """
    values = [b.value for b in bars if math.isfinite(b.value)] + [x for x, _ in references]
    if shade is not None:
        values += [v for v in shade if math.isfinite(v)]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    span = (hi - lo) or 1.0
    lo, hi = (lo - 0.05 * span if lo < 0 else 0.0), (hi + 0.05 * span if hi > 0 else 0.0)
    label_w = 7 * max([len(_short(b.label)) for b in bars] + [4]) + 12
    row, top, bottom, plot_w = 18, 12, 40 + 16 * len(references), 360
    width, height = label_w + plot_w + 24, top + row * max(len(bars), 1) + bottom
    plot_h = row * max(len(bars), 1)

    def px(x: float) -> float:
        return label_w + (min(max(x, lo), hi) - lo) / ((hi - lo) or 1.0) * plot_w

    out = [_svg_open(chart_id, title, width, height)]
    if shade is not None:
        a, b = px(max(shade[0], lo)), px(min(shade[1], hi))
        out.append(
            f'<rect class="band" x="{_num(min(a, b))}" y="{top}" width="{_num(abs(b - a))}" height="{plot_h}" '
            f'fill="#ffebe9"/>'
        )
    for i, bar in enumerate(bars):
        y = top + row * i
        x0, x1 = px(0.0), px(bar.value if math.isfinite(bar.value) else 0.0)
        tip = _esc(bar.tooltip or f"{bar.label}: {bar.value:.4g}")
        out.append(f'<text x="{label_w - 6}" y="{y + row - 5}" text-anchor="end">{_esc(_short(bar.label))}</text>')
        out.append(
            f'<rect class="bar" x="{_num(min(x0, x1))}" y="{y + 3}" width="{_num(max(abs(x1 - x0), 0.5))}" '
            f'height="{row - 6}" fill="{bar.color}"><title>{tip}</title></rect>'
        )
    out.append(f'<line x1="{_num(px(0.0))}" y1="{top}" x2="{_num(px(0.0))}" y2="{top + plot_h}" stroke="#555"/>')
    for i, (x, label) in enumerate(references):
        out.append(
            f'<line class="reference" x1="{_num(px(x))}" y1="{top}" x2="{_num(px(x))}" y2="{top + plot_h}" '
            f'stroke="{_FAIL_COLOR}" stroke-dasharray="4 3"><title>{_esc(label)}</title></line>'
        )
        out.append(f'<text class="legend" x="{label_w}" y="{top + plot_h + 48 + 16 * i}">- - {_esc(label)}</text>')
    for tick in _nice_ticks(lo, hi):
        x = _num(px(tick))
        out.append(f'<line x1="{x}" y1="{top + plot_h}" x2="{x}" y2="{top + plot_h + 4}" stroke="#555"/>')
        out.append(f'<text x="{x}" y="{top + plot_h + 15}" text-anchor="middle">{tick:.3g}</text>')
    out.append(
        f'<text x="{label_w + plot_w / 2:.1f}" y="{top + plot_h + 30}" text-anchor="middle">{_esc(x_label)}</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (multiples of 1, 2 or 5 times a power of ten) inside [lo, hi], 0 included when inside."""
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return [lo]
    raw = span / target
    scale = 10 ** math.floor(math.log10(raw))
    step = next(m * scale for m in (1, 2, 5, 10) if m * scale >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def _nice_upper(value: float) -> float:
    """The smallest of 0.05, 0.1, 0.2, 0.25, 0.5, 1 (times a power of ten) at or above ``value``, at most 1."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    scale = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * scale + 1e-12:
            return min(step * scale, 1.0)
    return 1.0


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_esc(caption)}</figcaption></figure>"


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


def _model_series(
    curves: dict[str, Any], kind: str, xs: str, ys: str, report: GateReport, metric: str, markers: bool = False
) -> list[Series]:
    """Candidate (and champion, when one was compared) as series, the legend naming ``metric``."""
    out = []
    for name, color, metrics in (
        ("candidate", CANDIDATE_COLOR, report.candidate_metrics),
        ("champion", CHAMPION_COLOR, report.champion_metrics),
    ):
        points = (curves.get(name) or {}).get(kind)
        if not points:
            continue
        value = (metrics or {}).get(metric)
        label = f"{name} ({metric} {format_value(value)})" if value is not None else name
        out.append(Series(name, label, points[xs], points[ys], color, markers))
    return out


def _curves_section(report: GateReport, curves: dict[str, Any]) -> list[str]:
    """Precision-recall and reliability curves of candidate and champion on the holdout, side by side."""
    pr = _model_series(curves, "pr", "recall", "precision", report, "auc_pr")
    prevalence = curves.get("prevalence")
    pr_refs = []
    if isinstance(prevalence, int | float):
        pr_refs.append(Reference(0, prevalence, 1, prevalence, f"prevalence {prevalence:.4f} (a random ranking)"))
    calibration = _model_series(curves, "calibration", "mean_predicted", "fraction_positive", report, "ece", True)
    upper = _nice_upper(1.1 * max([0.0, *(v for line in calibration for v in [*line.x, *line.y])]))
    diagonal = [Reference(0, 0, upper, upper, "perfectly calibrated")]
    return [
        "<h2>Holdout curves</h2>",
        '<div class="charts">',
        _figure(
            line_chart("pr-curve", "Precision-recall curve", "recall", "precision", pr, references=pr_refs),
            "Precision against recall at every threshold; higher and further right is better. "
            "The legend gives each model's average precision (auc_pr).",
        ),
        _figure(
            line_chart(
                "calibration-curve",
                "Calibration (reliability) curve",
                "mean predicted probability",
                "observed positive rate",
                calibration,
                upper,
                upper,
                diagonal,
            ),
            f"Per equal-width probability bin (empty bins left out): the observed positive rate against the mean "
            f"score. On the diagonal, a score of p means a p chance of a positive. Axes end at {upper:g}.",
        ),
        "</div>",
    ]


def _slice_deltas_section(report: GateReport, tolerance: float | None) -> list[str]:
    """Candidate minus champion per comparable slice, the tolerance as a dashed line and a red band beyond it."""
    metric = str(report.slices.get("metric", ""))
    cand_slices = report.slices.get("candidate") or {}
    champ_slices = report.slices.get("champion") or {}
    if not champ_slices:
        return ['<p class="muted">no champion: no slice deltas to draw</p>']
    lower = metric in LOWER_IS_BETTER
    bars, skipped = [], 0
    for column, values in cand_slices.items():
        for value, stats in values.items():
            mine, other = stats.get(metric), champ_slices.get(column, {}).get(value, {}).get(metric)
            if mine is None or other is None:
                skipped += 1
                continue
            delta = mine - other
            worse_by = delta if lower else -delta
            failed = tolerance is not None and worse_by > tolerance
            tip = f"{column}={value}: candidate {mine:.4f} - champion {other:.4f} = {delta:+.4f}"
            bars.append(Bar(f"{column}={value}", delta, _FAIL_COLOR if failed else _PASS_COLOR, tip))
    if not bars:
        return [f'<p class="muted">no slice large enough to compare ({skipped} skipped)</p>']
    references: list[tuple[float, str]] = []
    shade = None
    if tolerance is not None:
        limit = tolerance if lower else -tolerance
        side = "higher" if lower else "lower"
        references.append((limit, f"tolerance {limit:+g}: a slice {side} than this fails"))
        shade = (limit, math.inf) if lower else (-math.inf, limit)
    better = "lower" if lower else "higher"
    note = f"; {skipped} slices too small to compare are not drawn" if skipped else ""
    caption = f"{metric} of the candidate minus the champion's per slice ({better} is better){note}."
    chart = bar_chart(
        "slice-deltas", f"Slice deltas ({metric})", f"delta {metric} (candidate - champion)", bars, references, shade
    )
    return [_figure(chart, caption)]


def _shap_section(shap: dict[str, float] | None) -> list[str]:
    """Mean |SHAP| per feature of the candidate: what it relies on, largest first."""
    parts = ["<h2>What the candidate relies on (SHAP)</h2>"]
    if not shap:
        parts.append('<p class="muted">no SHAP summary was logged for this run: nothing to draw</p>')
        return parts
    ranked = sorted(((str(k), float(v)) for k, v in shap.items()), key=lambda kv: -kv[1])
    bars = [Bar(name, value, CANDIDATE_COLOR, f"{name}: mean |SHAP| {value:.4g}") for name, value in ranked]
    chart = bar_chart("shap-summary", "Mean |SHAP| per feature", "mean |SHAP value| (log-odds)", bars)
    parts.append(
        _figure(
            chart,
            "Average absolute contribution of each feature to the candidate's log-odds "
            "(exact TreeSHAP on a sample of validation rows).",
        )
    )
    return parts


_CHART = re.compile(r'<svg id="([a-z0-9-]+)" xmlns="http://www.w3.org/2000/svg".*?</svg>', re.DOTALL)


def report_figures(page: str) -> dict[str, str]:
    """Each chart of a rendered gate report as a standalone SVG document, by its id (``pr-curve``,
    ``calibration-curve``, ``slice-deltas``, ``shap-summary``): logged beside the page so MLflow's UI shows them
    as the run's figures. Taken from the page itself, so the figures are exactly what the page draws."""
    return {match.group(1): match.group(0) for match in _CHART.finditer(page)}


def render_gate_report_html(
    report: GateReport,
    title: str,
    curves: dict[str, Any] | None = None,
    shap: dict[str, float] | None = None,
    slice_tolerance: float | None = None,
) -> str:
    """A self-contained page (inline CSS and SVG, no JS) with the verdict and every piece of evidence.

    ``curves`` is ``mlops.evaluation.holdout_curves`` (PR and calibration curves; left out when None),
    ``shap`` the run's SHAP summary (feature -> mean |SHAP|), ``slice_tolerance`` the gates' slice
    tolerance drawn on the slice deltas.
    """
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
    ]
    if curves is not None:
        parts.extend(_curves_section(report, curves))
    parts.append("<h2>Metrics</h2>")
    champ = report.champion_metrics or {}
    metric_rows = []
    for name, value in report.candidate_metrics.items():
        other = champ.get(name)
        compared = value is not None and other is not None and name not in ("rows", "positives", "positive_rate")
        delta = value - other if compared else None
        scored = name in SCORE_METRICS or name in RELATIVE_METRICS
        better = "lower" if name in LOWER_IS_BETTER else ("higher" if scored else "")
        metric_rows.append(_row([name, value, other, delta, better], numeric_from=1))
    parts.append(_table(["metric", "candidate", "champion", "delta", "better"], metric_rows))
    if any(name in report.candidate_metrics for name in RELATIVE_METRICS):
        parts.append(
            '<p class="muted">Relative to the holdout\'s positive rate p: auc_pr_lift = auc_pr / p (1 = chance), '
            "brier_skill = 1 - brier / (p (1 - p)) (0 = always predicting p), ece_ratio = ece / p.</p>"
        )

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
        parts.extend(_slice_deltas_section(report, slice_tolerance))
        parts.append(_table(["column", "value", "rows", "positives", "candidate", "champion", "delta"], slice_rows))
    else:
        parts.append('<p class="muted">no slices</p>')
    parts.extend(_shap_section(shap))
    parts.append("</body></html>")
    return "\n".join(parts)
