"""The Assets that chain the DAGs: data_validation -> (continuous_training, batch_scoring) -> drift_monitoring."""

from __future__ import annotations

from airflow.sdk import Asset

from mlops.config import Settings


def _lake_asset(settings: Settings, name: str, area: str) -> Asset:
    uri = settings.lake_uri if settings.lake_is_s3 else f"file://{settings.lake_uri}"
    return Asset(name=f"{settings.dataset.name}.{name}", uri=f"{uri}/{area}", group="mlops")


def validated_data_asset(settings: Settings) -> Asset:
    """Emitted once per validated day (extra: date, rows, DVC revision); training and scoring schedule on it."""
    return _lake_asset(settings, "validated", "raw")


def scores_asset(settings: Settings) -> Asset:
    """Emitted once per scored day (extra: date, model version, rows); drift monitoring schedules on it."""
    return _lake_asset(settings, "scores", "scores")
