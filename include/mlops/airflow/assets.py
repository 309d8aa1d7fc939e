"""The Assets that chain the DAGs: data_validation -> (continuous_training, batch_scoring) -> drift_monitoring,
and the champion Asset that every champion change (promotion or rollback) emits, for users to schedule on."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

from mlops.config import Settings


def _lake_asset(settings: Settings, name: str, area: str) -> Asset:
    uri = settings.lake_uri if settings.lake_is_s3 else f"file://{settings.lake_uri}"
    return Asset(name=f"{settings.model_name}.{name}", uri=f"{uri}/{area}", group="mlops")


def validated_data_asset(settings: Settings) -> Asset:
    """Emitted once per validated day (extra: date, rows, DVC revision); training and scoring schedule on it."""
    return _lake_asset(settings, "validated", "raw")


def scores_asset(settings: Settings) -> Asset:
    """Emitted once per scored day (extra: date, model version, rows); drift monitoring schedules on it."""
    return _lake_asset(settings, "scores", "scores")


def champion_asset(settings: Settings) -> Asset:
    """``<model>.champion``: emitted when ``champion`` moves (extra: version, previous, reason, actor, run).

    Its URI is the MLflow URI that loads the champion behind Airflow's custom-scheme prefix ``x-mlflow:``
    (strip it to load), so a DAG scheduled on it knows what to load. An ``x-`` scheme is taken as written;
    any other unknown scheme (``models:``) makes every parse load all providers' URI normalizers (the Amazon
    provider and boto3, about 0.2 s per DAG file) to find none.
    """
    uri = f"x-mlflow:models:/{settings.model_name}@champion"
    return Asset(name=f"{settings.model_name}.champion", uri=uri, group="mlops")


def record_champion_change(outlet_events: Any, asset: Asset, move: dict[str, Any]) -> None:
    """Put a ledger move (``AliasMove.__dict__``) on the champion Asset's event of the running task."""
    outlet_events[asset].extra = {
        "version": move["to_version"],
        "previous": move["from_version"],
        "reason": move["reason"],
        "actor": move["actor"],
        "run": move["run"],
    }
