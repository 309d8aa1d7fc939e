"""What a running task derives from its DAG run: the run's settings and the partition day it works on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import get_current_context

from mlops.config import Settings, load_settings

#: The DAG-run param holding config overrides, e.g. ``{"model": {"params": {"max_depth": 4}}}``.
CONFIG_PARAM = "config"


def run_settings() -> Settings:
    """The settings of the running task's DAG run: the deployment's config plus the run's ``config`` overrides.

    Every task that does work calls this, so all tasks of one run see the same overrides. The settings a
    DAG file loads at parse time only shape the DAG (schedule, sensors, backend) and never see a run's conf.
    """
    params = get_current_context()["params"]
    return load_settings(conf=params.get(CONFIG_PARAM) or None)


def partition_day(params: Mapping[str, Any], dag_run: Any, triggering_asset_events: Any) -> str:
    """The partition a daily run works on: ``params.date``, else the newest triggering asset event's
    ``date``, else the logical date (scheduled, catch-up and backfill runs)."""
    day = params.get("date")
    if not day and triggering_asset_events:
        events = [event for events in triggering_asset_events.values() for event in events]
        day = max(((event.extra or {}).get("date") or "" for event in events), default="") or None
    if not day:
        day = (dag_run.logical_date or dag_run.run_after).date().isoformat()
    return str(day)
