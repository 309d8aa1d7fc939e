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

Columns are typed explicitly from the model's features and the data contract (:func:`report_columns`), never
by Evidently's inference: a hashed high-cardinality string is a categorical of the reference profile's top
values plus "other", as the monitor compares it; timestamps, the id and free text are listed as skipped, with
the reason, and so is any column Evidently cannot judge (entirely null on one side, say): one column never
fails the report.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

from mlops.serialization import to_jsonable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from mlops.config import DriftPolicySpec
    from mlops.data.contract import Contract
    from mlops.features import FeatureSpec


#: Column types of the report (Evidently's names): judged on PSI (:data:`POLICY_PSI`) or Evidently's choice ...
NUMERICAL, CATEGORICAL = "num", "cat"
#: ... a hashed high-cardinality string, judged as a categorical of its top values plus :data:`OTHER` ...
TOP = "top"
#: ... and free text, never judged (listed under ``skipped``).
TEXT = "text"
#: The label of a hashed feature's values outside its top values (the monitor's "other" bucket).
OTHER = "(other)"


def report_columns(features: FeatureSpec, contract: Contract | None = None, id_column: str | None = None,
                   time_column: str | None = None,
                   label_column: str | None = None) -> tuple[dict[str, str], dict[str, str]]:  # fmt: skip
    """The report's column types, from the model's features (a ``FeatureSpec``) and the data contract, never
    inferred from the data; and the contract's other columns with the reason they are not judged.

    Like the monitor, the report judges the model's features: categorical ones (``allowed`` in the contract)
    and bools as categorical, hashed high-cardinality strings as :data:`TOP`, every other feature as
    numerical. A timestamp, the id, the label and columns that are not features (free text, say) are listed
    with their reason, never compared.
    """
    rules = dict(contract.columns) if contract is not None else {}
    types: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in features.names:
        rule = rules.get(name)
        kind = getattr(rule, "type", None)
        if name in features.categories:
            types[name] = CATEGORICAL
        elif name in features.hashed:
            types[name] = TOP
        elif kind == "timestamp":
            skipped[name] = "timestamp: not a drift feature"
        elif kind == "bool":
            types[name] = CATEGORICAL
        else:
            types[name] = NUMERICAL
    for name, rule in rules.items():
        if name in types or name in skipped:
            continue
        if name == id_column:
            skipped[name] = "the id column: one value per row, no distribution to compare"
        elif name == label_column:
            skipped[name] = "the label: its drift shows in the performance check"
        elif name == time_column or rule.type == "timestamp":
            skipped[name] = "timestamp: not a drift feature"
        elif rule.type == "string" and rule.high_cardinality:
            skipped[name] = "free text (a high-cardinality string the model does not use): not compared"
        else:
            skipped[name] = "not a model feature: the drift check judges the model's features"
    return types, skipped


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
    column_types: Mapping[str, str] | None = None,
    top_codes: Mapping[str, Sequence[int]] | None = None,
    skipped: Mapping[str, str] | None = None,
    min_drifted_columns: int | None = None,
) -> dict:
    """Evidently 0.7 ``DataDriftPreset`` on seeded samples (at most ``sample_rows`` per side), saved as HTML.

    Returns ``{"drifted_columns": [...], "share": float, "rows": {...}, "columns": {name: {method,
    threshold, score, drifted, null_fraction}}, "skipped": {name: reason}}``. Columns are compared as given
    (same names on both sides). ``method``/``threshold`` pass through to the preset for numerical and
    categorical columns (default: Evidently's choice per column, which above 1000 rows is the normed
    Wasserstein distance for numeric columns and Jensen-Shannon for categorical ones, threshold 0.1 --
    distances, not p-values; :data:`POLICY_PSI` is the monitor's PSI). ``drift_share`` is the share of
    drifted columns at which Evidently declares dataset drift (its default 0.5; see
    :func:`policy_drift_share`); ``min_drifted_columns``, when given, sets it from the columns actually
    judged instead. ``banner_html`` (already escaped, e.g. :func:`decision_banner`) is put at the top of the
    page, with the skipped columns.

    Columns are typed explicitly, never by Evidently's inference (which calls a 500-value string "text"):
    ``column_types`` maps each column to :data:`NUMERICAL`, :data:`CATEGORICAL`, :data:`TOP` (a hashed string:
    its values outside ``top_codes[name]``, the hash codes of the reference profile's top values, become
    :data:`OTHER`; without codes, the top values of ``reference``) or :data:`TEXT` (not compared); without
    ``column_types``, numeric dtypes are numerical, timestamps skipped and everything else categorical.
    Nulls (and infinities) are the missing bucket of the PSI on both sides, as in the monitor. A column
    that cannot be judged (entirely null on one side, values of the wrong type, a test that fails on it) is
    listed under ``skipped`` with the reason (as are the given ``skipped``) and left out; it never fails the
    report. Whatever fails beyond that (Evidently itself) raises.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if method == POLICY_PSI:
        _register_policy_psi()

    missing = sorted(set(reference.columns) ^ set(current.columns))
    if missing:
        raise ValueError(f"reference and current must have the same columns; differing: {missing}")
    current = current[list(reference.columns)]
    types = dict(column_types) if column_types is not None else _dtype_types(reference)
    unknown = sorted(set(types) - set(reference.columns))
    if unknown:
        raise ValueError(f"column_types names columns the frames lack: {unknown}")
    out_of_report = {name: reason for name, reason in (skipped or {}).items() if name not in types}
    for name in reference.columns:
        if name not in types:
            out_of_report.setdefault(name, _untyped_reason(reference[name]))
    ref_sample = _sample_frame(reference, sample_rows, seed)
    cur_sample = _sample_frame(current, sample_rows, seed + 1)
    judged: dict[str, str] = {}
    columns_ref, columns_cur, nulls = {}, {}, {}
    for name, kind in types.items():
        if kind == TEXT:
            out_of_report[name] = "free text: not compared"
            continue
        try:
            ref, cur = _prepared(kind, ref_sample[name], cur_sample[name], reference[name], (top_codes or {}).get(name))
            reason = _unjudgeable(ref, cur, NUMERICAL if kind == NUMERICAL else CATEGORICAL, method, threshold)
        except Exception as exc:  # one bad column never fails the report
            reason = f"cannot be compared: {error_line(exc)}"
        if reason:
            out_of_report[name] = reason
            continue
        judged[name] = NUMERICAL if kind == NUMERICAL else CATEGORICAL
        columns_ref[name], columns_cur[name] = ref, cur
        nulls[name] = {"reference": _null_fraction(ref), "current": _null_fraction(cur)}
    if not judged:
        raise ValueError(f"no column can be compared ({'; '.join(f'{k}: {v}' for k, v in out_of_report.items())})")
    if min_drifted_columns is not None:
        drift_share = policy_drift_share(min_drifted_columns, len(judged))
    definition = DataDefinition(
        numerical_columns=[name for name, kind in judged.items() if kind == NUMERICAL],
        categorical_columns=[name for name, kind in judged.items() if kind == CATEGORICAL],
        text_columns=[], datetime_columns=[], unknown_columns=[], list_columns=[],
    )  # fmt: skip
    ref_data = Dataset.from_pandas(_frame(columns_ref, len(ref_sample)), data_definition=definition)
    cur_data = Dataset.from_pandas(_frame(columns_cur, len(cur_sample)), data_definition=definition)
    preset = DataDriftPreset(columns=list(judged), num_method=method, cat_method=method, threshold=threshold,
                             drift_share=drift_share)  # fmt: skip
    _MISSING.clear()
    _MISSING.update({name: (_missing(columns_ref[name]), _missing(columns_cur[name])) for name in judged})
    try:
        snapshot = Report([preset], include_tests=True).run(cur_data, ref_data)
    finally:
        _MISSING.clear()
    # Snapshot.save_html silently writes nothing unless given a str (a pathlib.Path is ignored).
    snapshot.save_html(str(out_html))
    top = (banner_html or "") + skipped_html(out_of_report)
    if top:
        inject_after_body(str(out_html), top)
    summary = evidently_summary(snapshot.dict(), rows={"reference": len(ref_sample), "current": len(cur_sample)})
    for name, fractions in nulls.items():
        if name in summary["columns"]:
            summary["columns"][name]["null_fraction"] = fractions
    return {**summary, "skipped": out_of_report}


def _sample_frame(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=seed).sort_index().reset_index(drop=True)


def _dtype_types(frame: pd.DataFrame) -> dict[str, str]:
    """Types for callers that give none: numeric dtypes numerical, timestamps not compared, the rest categorical."""
    import pandas as pd

    types = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            if not pd.api.types.is_datetime64_any_dtype(dtype):
                types[name] = CATEGORICAL
        else:
            types[name] = NUMERICAL
    return types


def _untyped_reason(column: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return "timestamp: not a drift feature"
    return "no type given: not compared"


def _prepared(kind: str, ref: pd.Series, cur: pd.Series, full_reference: pd.Series,
              codes: Sequence[int] | None) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    """One column of both samples as the report compares it: float64 (NaN missing) or strings (None missing)."""
    import pandas as pd

    if kind == NUMERICAL:
        return (pd.to_numeric(ref.reset_index(drop=True)).astype("float64"),
                pd.to_numeric(cur.reset_index(drop=True)).astype("float64"))  # fmt: skip
    if kind == TOP:
        if codes is None:  # a profile without top values: the reference's own, by the monitor's rule
            from mlops.profiling import top_values

            codes = top_values(_hash_codes(full_reference))["codes"]
        return _top_labels(ref, codes), _top_labels(cur, codes)
    if kind == CATEGORICAL:
        return _strings(ref), _strings(cur)
    raise ValueError(f"unknown column type {kind!r} (one of {NUMERICAL}, {CATEGORICAL}, {TOP}, {TEXT})")


def _strings(column: pd.Series) -> pd.Series:
    """Values as strings (a bool as "True"/"False", a pandas category as its value), missing as None."""
    text = column.reset_index(drop=True).astype("string")
    return text.astype(object).where(text.notna(), None)


def _hash_codes(column: pd.Series) -> Any:
    import pyarrow as pa

    from mlops.features import hash_codes

    codes = hash_codes(pa.array(column.astype("string"), type=pa.string(), from_pandas=True))
    return codes.to_numpy(zero_copy_only=False)


def _top_labels(column: pd.Series, codes: Sequence[int]) -> pd.Series:
    """The value where its hash code is one of ``codes`` (the reference's top values), else :data:`OTHER`;
    missing stays missing: the buckets of the monitor (``mlops.drift``)."""
    import numpy as np

    values = _strings(column)
    hashed = _hash_codes(values)
    top = np.isin(hashed, np.asarray(list(codes), dtype=np.float64))
    return values.where(top | values.isna(), OTHER)


def _null_fraction(column: pd.Series) -> float:
    return float(_missing(column) / len(column)) if len(column) else 0.0


def _missing(column: pd.Series) -> int:
    """Missing as the monitor counts it: null, NaN or infinite."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_float_dtype(column.dtype):
        return int(np.count_nonzero(~np.isfinite(column.to_numpy())))
    return int(column.isna().sum())


def _unjudgeable(ref: pd.Series, cur: pd.Series, kind: str, method: str | None, threshold: float | None) -> str | None:
    """Why Evidently cannot judge this column (None: it can), found by running its drift test on the samples
    as Evidently will (without missing values): a column entirely null on one side, or a test that fails."""
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    for side, values in (("reference sample", ref), ("current window", cur)):
        if len(values) and _missing(values) == len(values):
            return f"entirely null in the {side} (null fraction 1.00)"
        if not len(values):
            return f"no rows in the {side}"
    column_type = ColumnType(kind)
    ref_known, cur_known = _known(ref), _known(cur)
    get_stattest(ref_known, cur_known, column_type, method)(ref_known, cur_known, column_type, threshold)
    return None


def _known(column: pd.Series) -> pd.Series:
    """The values Evidently tests: infinities and missing values dropped."""
    import numpy as np

    return column.replace([-np.inf, np.inf], np.nan).dropna()


def _frame(columns: dict[str, pd.Series], rows: int) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns, index=pd.RangeIndex(rows))


def error_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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


#: Missing values (reference, current) per column of the report being run: Evidently drops them before its
#: drift test, so :func:`_policy_psi` adds them back as the missing bucket, as the monitor counts them.
_MISSING: dict[str, tuple[int, int]] = {}


def _policy_psi(reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float) -> tuple[float, bool]:
    """PSI of one column binned as the monitor bins it, so Evidently's per-column verdict reads like ours.

    Evidently's own ``psi`` bins numeric columns in equal-width (Sturges) bins over both samples, which
    puts nearly all of a heavy-tailed column (an amount) in one bin and misses a shift the monitor sees.
    Here: numeric columns on the reference's decile edges (``mlops.profiling``), categorical ones per
    value, missing values as one more bucket (those Evidently dropped, from :data:`_MISSING`, included),
    and ``mlops.drift.psi``'s clipping.
    """
    import numpy as np

    from mlops.drift import numeric_psi, psi

    ref_missing, cur_missing = _MISSING.get(str(reference.name), (0, 0))
    if str(getattr(feature_type, "value", feature_type)) == "num":

        def numbers(values: pd.Series, missing: int) -> np.ndarray:
            return np.append(values.to_numpy(dtype=np.float64, na_value=np.nan), np.full(missing, np.nan))

        value = numeric_psi(numbers(reference, ref_missing), numbers(current, cur_missing))
    else:
        keys = sorted(set(reference.dropna().unique()) | set(current.dropna().unique()), key=str)

        def shares(values: pd.Series, missing: int) -> np.ndarray:
            counts = values.value_counts()
            missing += int(values.isna().sum())
            return np.array([counts.get(k, 0) for k in keys] + [missing]) / max(len(values) + missing, 1)

        value = psi(shares(reference, ref_missing), shares(current, cur_missing))
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
