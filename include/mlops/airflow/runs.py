"""What a running task derives from its DAG run: the run's settings and the partition day(s) it works on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from airflow.sdk import Param, get_current_context
from airflow.sdk.definitions._internal.types import NOTSET

from mlops.airflow.errors import skip
from mlops.config import (
    JSON_SCHEMA_DRAFT,
    Settings,
    load_settings,
    model_of_dag,
    overridable_keys,
    run_overrides_schema,
)
from mlops.redact import redact_text

#: The DAG-run param holding config overrides, e.g. ``{"model": {"params": {"max_depth": 4}}}``.
CONFIG_PARAM = "config"


def run_param(default: Any = NOTSET, *, description: str, **schema: Any) -> Param:
    """A DAG param whose JSON schema declares draft 7 (:data:`~mlops.config.JSON_SCHEMA_DRAFT`).

    Airflow re-validates every param's schema against its meta-schema each time it resolves the param: about
    20 times per DAG while the dag-processor serialises it, so with many model files this is most of the parse.
    """
    return Param(default, description=description, **schema, **{"$schema": JSON_SCHEMA_DRAFT})


def config_param() -> Param:
    """The ``config`` param: a JSON schema of the allow-list, so Airflow refuses other keys when the run is created.

    The trigger form, the REST API (HTTP 400) and ``airflow dags trigger`` validate params before a run
    exists; the error names the refused key and the description says what may be set and why.
    """
    return Param(
        {},
        description=f"per-run config overrides; only {', '.join(overridable_keys())} may be set. Gates, "
        "promotion, registry, MLflow, storage, versioning, dataset, Kubernetes and home come only from the "
        'deployment\'s reviewed config file and env. Example: {"model": {"params": {"max_depth": 4}}}',
        schema=run_overrides_schema(),
    )


def run_settings() -> Settings:
    """The settings of the running task's DAG run: the deployment's config, the model file of the DAG's model
    (its id is ``<model>__<kind>``) and the run's ``config`` overrides.

    Every task that does work calls this, so all tasks of one run see the same overrides. Only the
    allow-list applies (:class:`~mlops.config.RunOverrides`), whatever DAG the conf was given to: a
    refused key fails the task at once (:class:`~mlops.config.ConfigError`, an input error). The
    secret-bearing values of the settings are registered with Airflow's log masker. The settings a DAG
    file loads at parse time only shape the DAG (schedule, sensors, backend) and never see a run's conf.
    """
    context = get_current_context()
    model = model_of_dag(context["ti"].dag_id)  # the DAG id names its model: a run never reads another's config
    settings = load_settings(model=model, run_overrides=context["params"].get(CONFIG_PARAM) or None)
    _mask_secrets(settings)
    return settings


def _mask_secrets(settings: Settings) -> None:
    """Tell Airflow's secrets masker about every settings value that embeds a secret (task logs show ``***``)."""
    from urllib.parse import urlsplit

    from airflow.sdk.log import mask_secret

    for value in (settings.mlflow_tracking_uri, settings.ledger_uri, settings.dvc_remote_url, settings.lake_uri,
                  settings.storage.s3_endpoint_url or ""):  # fmt: skip
        if redact_text(value) != value:
            mask_secret(value)
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                mask_secret(password)


@dataclass(frozen=True)
class RunDays:
    """The partition days a run was started for (XCom-safe through ``to_dict``).

    * ``days``: ISO dates, oldest first: ``params.date``; else the dates of the triggering asset events
      (an event without a date, e.g. a champion change, names none); else the logical date.
    * ``forced``: the day was named by ``params.date``: redo it even when it was done already.
    * ``source``: where the days came from, for the log.
    * ``up_to``: the run's horizon, the newest day it may work on or judge from: ``params.date``, the newest
      event date (with an event without one among them, e.g. a champion change: the day the run started),
      else the logical date. A backlog is every waiting day up to it, so a backfill of an old date never
      judges newer data.
    """

    days: list[str]
    forced: bool
    source: str
    up_to: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def follow_plan(plan_function: Callable[..., Any], settings: Settings, resolved: Mapping[str, Any]) -> Any:
    """The run's plan from a day-bounded plan function (``mlops.plans.plan_scoring``, ``plan_drift``) for the
    days :func:`run_days` resolved: the task ends SKIPPED with the plan's reason, else the plan's notes are
    logged and the plan returned."""
    from mlops.data.lake import Lake
    from mlops.plans import Skip

    days = [dt.date.fromisoformat(day) for day in resolved["days"]]
    plan = plan_function(settings, Lake.from_settings(settings), days, up_to=dt.date.fromisoformat(resolved["up_to"]),
                         forced=resolved["forced"])  # fmt: skip
    if isinstance(plan, Skip):
        skip(plan.reason)
    for note in plan.notes:
        print(note)
    return plan


def run_type(dag_run: Any) -> str:
    """``scheduled``, ``manual``, ``asset_triggered``, ``backfill``... (enum, its ``.value`` or string alike)."""
    kind = getattr(dag_run, "run_type", "") or ""
    return str(getattr(kind, "value", kind)).split(".")[-1].lower()


def run_days(params: Mapping[str, Any], dag_run: Any, triggering_asset_events: Any) -> RunDays:
    """The days a run is for, and whether it forces them (see :class:`RunDays`)."""
    if params.get("date"):
        day = str(params["date"])
        return RunDays([day], forced=True, source="params.date", up_to=day)
    events = [event for events in (triggering_asset_events or {}).values() for event in events]
    dates = sorted({str((event.extra or {}).get("date")) for event in events if (event.extra or {}).get("date")})
    kind = run_type(dag_run)
    if events or kind == "asset_triggered":
        # An event without a date (a champion change) names no day: the run then works on every waiting day up
        # to the day it started, whatever dated events came with it.
        started = (dag_run.run_after or dag_run.logical_date).date().isoformat()
        undated = not dates or any(not (event.extra or {}).get("date") for event in events)
        up_to = max([*dates, started]) if undated else dates[-1]
        return RunDays(dates, forced=False, source=f"{len(events)} asset event(s)", up_to=up_to)
    logical = (dag_run.logical_date or dag_run.run_after).date().isoformat()
    return RunDays([logical], forced=False, source=f"{kind or 'run'} for its logical date", up_to=logical)


def max_map_length() -> int:
    """Airflow's bound on the length of a mapped task's input (``[core] max_map_length``, default 1024)."""
    from airflow.sdk.configuration import conf

    return conf.getint("core", "max_map_length", fallback=1024)
