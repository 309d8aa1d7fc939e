"""The human-readable drift report: Evidently's ``DataDriftPreset`` as HTML, and its verdict per column.

The trigger decision never reads this (it is ``mlops.drift``: PSI on the reference profile, numpy
only). Evidently runs on seeded samples because it is ~100x slower on full data, and is imported
inside the function because its import alone costs seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.serialization import to_jsonable

if TYPE_CHECKING:
    import pandas as pd


def evidently_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out_html: str,
    seed: int,
    sample_rows: int,
    method: str | None = None,
    threshold: float | None = None,
) -> dict:
    """Evidently 0.7 ``DataDriftPreset`` on seeded samples (at most ``sample_rows`` per side), saved as HTML.

    Returns ``{"drifted_columns": [...], "share": float, "rows": {...}, "columns": {name: {method,
    threshold, score, drifted}}}``. Columns are compared as given (same names on both sides).
    ``method``/``threshold`` pass through to the preset (default: Evidently's choice per column,
    which above 1000 rows is the normed Wasserstein distance for numeric columns and Jensen-Shannon
    for categorical ones, threshold 0.1 -- distances, not p-values).
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    missing = sorted(set(reference.columns) ^ set(current.columns))
    if missing:
        raise ValueError(f"reference and current must have the same columns; differing: {missing}")
    current = current[list(reference.columns)]
    ref_sample = _sample_frame(reference, sample_rows, seed)
    cur_sample = _sample_frame(current, sample_rows, seed + 1)
    report = Report([DataDriftPreset(method=method, threshold=threshold)], include_tests=True)
    snapshot = report.run(cur_sample, ref_sample)
    # Snapshot.save_html silently writes nothing unless given a str (a pathlib.Path is ignored).
    snapshot.save_html(str(out_html))
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
