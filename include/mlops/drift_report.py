"""The human-readable drift report: Evidently's ``DataDriftPreset`` as HTML, and its verdict per column.

The trigger decision never reads this (it is ``mlops.drift``: PSI on the reference profile, numpy
only). Evidently runs on seeded samples because it is ~100x slower on full data, and is imported
inside the function because its import alone costs seconds.

So that the page never contradicts the decision, the monitor configures the preset with our policy
(per column the monitor's PSI, :data:`POLICY_PSI`, at ``drift.psi_threshold``; dataset drift when
``drift.min_breaching_features`` columns drift, :func:`policy_drift_share`) and puts our decision and
PSI table on top of the page (:func:`decision_banner`, injected right after ``<body>``). Evidently's
verdict, on samples and without our significance test, score PSI or debounce, can still differ at the
margin; the banner says which one decided.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

from mlops.serialization import to_jsonable

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config import DriftPolicySpec


def evidently_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out_html: str,
    seed: int,
    sample_rows: int,
    method: str | None = None,
    threshold: float | None = None,
    drift_share: float = 0.5,
    banner_html: str | None = None,
) -> dict:
    """Evidently 0.7 ``DataDriftPreset`` on seeded samples (at most ``sample_rows`` per side), saved as HTML.

    Returns ``{"drifted_columns": [...], "share": float, "rows": {...}, "columns": {name: {method,
    threshold, score, drifted}}}``. Columns are compared as given (same names on both sides).
    ``method``/``threshold`` pass through to the preset (default: Evidently's choice per column,
    which above 1000 rows is the normed Wasserstein distance for numeric columns and Jensen-Shannon
    for categorical ones, threshold 0.1 -- distances, not p-values; :data:`POLICY_PSI` is the monitor's
    PSI). ``drift_share`` is the share of drifted columns at which Evidently declares dataset drift
    (its default 0.5; see :func:`policy_drift_share`). ``banner_html`` (already escaped, e.g.
    :func:`decision_banner`) is put at the top of the page.
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    if method == POLICY_PSI:
        _register_policy_psi()

    missing = sorted(set(reference.columns) ^ set(current.columns))
    if missing:
        raise ValueError(f"reference and current must have the same columns; differing: {missing}")
    current = current[list(reference.columns)]
    ref_sample = _sample_frame(reference, sample_rows, seed)
    cur_sample = _sample_frame(current, sample_rows, seed + 1)
    preset = DataDriftPreset(method=method, threshold=threshold, drift_share=drift_share)
    snapshot = Report([preset], include_tests=True).run(cur_sample, ref_sample)
    # Snapshot.save_html silently writes nothing unless given a str (a pathlib.Path is ignored).
    snapshot.save_html(str(out_html))
    if banner_html:
        inject_after_body(str(out_html), banner_html)
    return evidently_summary(snapshot.dict(), rows={"reference": len(ref_sample), "current": len(cur_sample)})


def _sample_frame(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=seed).sort_index().reset_index(drop=True)


def evidently_summary(result: dict, rows: dict[str, int] | None = None) -> dict:
    """Drifted columns from an Evidently 0.7 ``Snapshot.dict()`` (its per-column drift tests and metrics)."""
    columns: dict[str, dict[str, Any]] = {}
    share = 0.0
    for metric in result.get("metrics", []):
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith(":ValueDrift"):
            columns[config["column"]] = {
                "method": config.get("method"),
                "threshold": config.get("threshold"),
                "score": to_jsonable(metric.get("value")),
                "drifted": None,
            }
        elif kind.endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    for test in result.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if str(params.get("type", "")).endswith(":ValueDrift") and params.get("column") in columns:
            status = getattr(test.get("status"), "value", test.get("status"))
            columns[params["column"]]["drifted"] = str(status) == "FAIL"
    drifted = sorted(name for name, c in columns.items() if c["drifted"])
    return {"drifted_columns": drifted, "share": share, "rows": rows or {}, "columns": columns}


# ------------------------------------------------------------------------------------ our decision on top

#: The Evidently drift method the monitor's reports use: PSI binned as the monitor bins (registered on use).
POLICY_PSI = "mlops_psi"


def _policy_psi(reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float) -> tuple[float, bool]:
    """PSI of one column binned as the monitor bins it, so Evidently's per-column verdict reads like ours.

    Evidently's own ``psi`` bins numeric columns in equal-width (Sturges) bins over both samples, which
    puts nearly all of a heavy-tailed column (an amount) in one bin and misses a shift the monitor sees.
    Here: numeric columns on the reference's decile edges (``mlops.profiling``), categorical ones per
    value, missing values as one more bucket, and ``mlops.drift.psi``'s clipping.
    """
    import numpy as np

    from mlops.drift import numeric_psi, psi

    if str(getattr(feature_type, "value", feature_type)) == "num":
        value = numeric_psi(reference.to_numpy(dtype=np.float64, na_value=np.nan),
                            current.to_numpy(dtype=np.float64, na_value=np.nan))  # fmt: skip
    else:
        keys = sorted(set(reference.dropna().unique()) | set(current.dropna().unique()), key=str)

        def shares(values: pd.Series) -> np.ndarray:
            counts = values.value_counts()
            return np.array([counts.get(k, 0) for k in keys] + [values.isna().sum()]) / max(len(values), 1)

        value = psi(shares(reference), shares(current))
    return value, bool(value >= threshold)


def _register_policy_psi() -> None:
    """Make :data:`POLICY_PSI` a drift method Evidently knows by name (its metrics take the name only)."""
    from evidently.legacy.calculations.stattests import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    test = StatTest(
        name=POLICY_PSI,
        display_name="PSI (reference deciles, as the drift monitor)",
        allowed_feature_types=[ColumnType.Numerical, ColumnType.Categorical],
        default_threshold=0.2,
    )
    register_stattest(test, _policy_psi)


def policy_drift_share(min_breaching_features: int, columns: int) -> float:
    """Evidently's ``drift_share`` for our rule "at least ``min_breaching_features`` features breach".

    Evidently declares dataset drift when ``drifted / columns >= drift_share``; with ``k / columns`` that
    is exactly ``drifted >= k`` (the same float division on both sides). Capped at 1 (every column).
    """
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    return min(1.0, min_breaching_features / columns)


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
                "yes" if name in breached else "no",
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
