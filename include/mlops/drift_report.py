"""The human-readable drift report: Evidently's ``DataDriftPreset`` as HTML, and its verdict per column.

The trigger decision never reads this (it is ``mlops.drift``: PSI on the reference profile, numpy
only). Evidently runs on seeded samples because it is ~100x slower on full data, and is imported
inside the function because its import alone costs seconds.

So that the page never contradicts the decision, the monitor configures the preset with our policy
(per column the monitor's PSI, :data:`POLICY_PSI`, at ``drift.psi_threshold``; dataset drift when
``drift.min_breaching_features`` columns drift, :func:`policy_drift_share`) and puts our decision
and PSI table on top of the page (``mlops.drift_report_page``: :func:`decision_banner`, injected right after
``<body>``). Evidently's verdict, on samples and without our significance test, score PSI or debounce, can still
differ at the margin; the banner says which one decided.

Columns are typed explicitly from the model's features and the data contract (``mlops.drift_report_columns``),
never by Evidently's inference: a hashed high-cardinality string is a categorical of the reference profile's top
values plus "other", as the monitor compares it; timestamps, the id and free text are listed as skipped, with
the reason, and so is any column Evidently cannot judge (entirely null on one side, say): one column never
fails the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.drift_report_columns import (
    CATEGORICAL,
    NUMERICAL,
    TEXT,
    count_missing,
    dtype_types,
    null_fraction,
    prepared,
    untyped_reason,
)
from mlops.drift_report_page import inject_after_body, skipped_html
from mlops.serialization import to_jsonable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd


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
    types = dict(column_types) if column_types is not None else dtype_types(reference)
    unknown = sorted(set(types) - set(reference.columns))
    if unknown:
        raise ValueError(f"column_types names columns the frames lack: {unknown}")
    out_of_report = {name: reason for name, reason in (skipped or {}).items() if name not in types}
    for name in reference.columns:
        if name not in types:
            out_of_report.setdefault(name, untyped_reason(reference[name]))
    ref_sample = _sample_frame(reference, sample_rows, seed)
    cur_sample = _sample_frame(current, sample_rows, seed + 1)
    judged: dict[str, str] = {}
    columns_ref, columns_cur, nulls = {}, {}, {}
    for name, kind in types.items():
        if kind == TEXT:
            out_of_report[name] = "free text: not compared"
            continue
        try:
            ref, cur = prepared(kind, ref_sample[name], cur_sample[name], reference[name], (top_codes or {}).get(name))
            reason = _unjudgeable(ref, cur, NUMERICAL if kind == NUMERICAL else CATEGORICAL, method, threshold)
        except Exception as exc:  # one bad column never fails the report
            reason = f"cannot be compared: {error_line(exc)}"
        if reason:
            out_of_report[name] = reason
            continue
        judged[name] = NUMERICAL if kind == NUMERICAL else CATEGORICAL
        columns_ref[name], columns_cur[name] = ref, cur
        nulls[name] = {"reference": null_fraction(ref), "current": null_fraction(cur)}
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
    _MISSING.update({name: (count_missing(columns_ref[name]), count_missing(columns_cur[name])) for name in judged})
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


def _unjudgeable(ref: pd.Series, cur: pd.Series, kind: str, method: str | None, threshold: float | None) -> str | None:
    """Why Evidently cannot judge this column (None: it can), found by running its drift test on the samples
    as Evidently will (without missing values): a column entirely null on one side, or a test that fails."""
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    for side, values in (("reference sample", ref), ("current window", cur)):
        if len(values) and count_missing(values) == len(values):
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
