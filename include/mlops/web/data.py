"""The MLOps page's data, as JSON-ready dicts: the models list, and per model its evidence, drift, validation
and scoring.

Every function takes ONE model's settings (``load_settings(model=name)``) and reads only what that model
owns: its registered model and experiment in MLflow, its ledger rows, its lake (``settings.lake_uri`` is per
model) and its drift history; the app calls :func:`model_summary` once per model for the models list.

Everything is read the way the pipeline wrote it: models through :mod:`mlops.models` (versions, runs,
gate reports, the alias ledger), the lake through :class:`~mlops.data.lake.Lake` (markers, quarantine
reasons, scoring stats, reports) and the drift history through :func:`mlops.drift.read_history`.
Nothing here writes. Links are built by :mod:`mlops.web.urls`; plugin paths are relative to the
plugin's root, Airflow paths relative to the Airflow UI's root.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops import aliases, models
from mlops.config import DAG_ID_SEPARATOR, model_of_dag
from mlops.data.lake import REASON, STATS, VALIDATED, Lake
from mlops.web import urls

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.ledger import GateVerdict

log = logging.getLogger(__name__)

#: Versions listed on the page (newest first); champion and challenger are always detailed.
VERSIONS_SHOWN = 20
#: Days of validation and scoring shown.
DAYS_SHOWN = 60
#: The models list counts the failed DAG runs of this many last days.
RECENT_FAILURE_DAYS = 7
#: The status counts the days that passed with warnings among this many last validated days.
WARNED_DAYS = 7


@dataclass(frozen=True)
class DagRuns:
    """What the host (Airflow's metadata DB) knows of one DAG's runs; the app itself cannot read it."""

    dag_id: str
    last_success: dt.datetime | None = None
    failed: int = 0  # runs in the failed state, ever
    failed_recent: int = 0  # of those, ended in the last RECENT_FAILURE_DAYS days

    @property
    def model(self) -> str | None:
        """The model the DAG belongs to (``<model>__<kind>``), None for another DAG."""
        try:
            return model_of_dag(self.dag_id)
        except ValueError:
            return None

    @property
    def kind(self) -> str | None:
        """One of :data:`mlops.config.DAG_KINDS`, None for another DAG."""
        return self.dag_id.rsplit(DAG_ID_SEPARATOR, 1)[1] if self.model else None


# -- models --------------------------------------------------------------------------------------------------
def _gate_report(settings: Settings, run_id: str) -> dict[str, Any] | None:
    try:
        return models.load_artifact(settings, run_id, models.Artifacts.GATE_REPORT_JSON)
    except Exception:  # a run assessed before gate reports existed, or a failed assessment
        log.info("no gate report for run %s", run_id, exc_info=True)
        return None


def _lineage(model: str, tags: dict[str, str]) -> dict[str, Any]:
    report_uri = tags.get(models.Tags.TRIGGER_PREFIX + "report_uri") or None
    report_day = urls.report_day(report_uri)
    dag_id, run_id = tags.get(models.Tags.AIRFLOW_DAG_ID), tags.get(models.Tags.AIRFLOW_RUN_ID)
    return {
        "git_commit": tags.get(models.Tags.GIT_COMMIT),
        "dvc_revision": tags.get(models.Tags.DVC_REVISION),
        "dvc_registry": tags.get(models.Tags.DVC_REGISTRY),
        "data_hash": tags.get(models.Tags.DATA_HASH),
        "config_hash": tags.get(models.Tags.CONFIG_HASH),
        "as_of": tags.get(models.Tags.AS_OF),
        "backend": tags.get(models.Tags.BACKEND),
        "trigger_reason": tags.get(models.Tags.TRIGGER_REASON),
        "trigger_report_uri": report_uri,
        "trigger_report": urls.drift_report(model, report_day) if report_day else None,
        "airflow_dag_id": dag_id,
        "airflow_run_id": run_id,
        "airflow_run": urls.airflow_run(dag_id, run_id) if dag_id and run_id else None,
    }


def _gates(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    checks = [
        {key: check.get(key) for key in ("name", "kind", "value", "threshold", "passed", "detail")}
        for check in report.get("checks", [])
    ]
    comparison = report.get("comparison")  # the paired bootstrap CI against the champion of the time
    if comparison:
        metric = next((c["name"].split(":", 1)[1] for c in checks if c["kind"] == "champion" and c["name"]), None)
        comparison = {**comparison, "metric": metric}
    return {
        "passed": bool(report.get("passed")),
        "checks": checks,
        "comparison": comparison,
        "champion_metrics": report.get("champion_metrics"),
        "notes": report.get("notes", []),
    }


def _status(version: str, verdict: GateVerdict | None, champion: str | None, challenger: str | None) -> str:
    if version == champion:
        return "champion"
    if version == challenger:
        return "challenger"
    return "unassessed" if verdict is None else "passed" if verdict.passed else "rejected"


def _verdicts(settings: Settings, run_ids: Iterable[str | None]) -> dict[str, GateVerdict | None]:
    """The ledger's gate verdict per training run: the page's "passed" is the record promotion trusts, never the
    MLflow tag (anyone with MLflow access can write one)."""
    from mlops.ledger import Ledger

    ledger = Ledger(settings.ledger_uri)
    try:
        return {run: ledger.verdict(settings.model_name, run) for run in {str(r) for r in run_ids if r}}
    finally:
        ledger.dispose()


def _version_summary(
    model_version: Any, champion: str | None, challenger: str | None, verdict: GateVerdict | None
) -> dict[str, Any]:
    tags = dict(model_version.tags or {})
    version = str(model_version.version)
    created = dt.datetime.fromtimestamp(model_version.creation_timestamp / 1000, dt.UTC).isoformat()
    return {
        "version": version,
        "created": created,
        "run_id": model_version.run_id,
        "status": _status(version, verdict, champion, challenger),
        "gates_passed": verdict is not None and verdict.passed,
        "gate_verdict": None if verdict is None else {"id": verdict.id, "passed": verdict.passed, "at": verdict.at},
        "gates_summary": tags.get(models.Tags.GATES_SUMMARY, ""),
        "compared_with": verdict.champion_compared if verdict else tags.get(models.Tags.GATES_CHAMPION_COMPARED),
        "trigger_reason": tags.get(models.Tags.TRIGGER_REASON),
    }


def version_detail(settings: Settings, version: str, model_version: Any | None = None) -> dict[str, Any]:
    """One version with its holdout metrics, gate evidence, lineage and links."""
    client = models.client(settings)
    model_version = model_version or client.get_model_version(settings.model_name, version)
    run = client.get_run(model_version.run_id)
    tags = {**run.data.tags, **dict(model_version.tags or {})}  # the version's tags win (gate evidence)
    metrics = models.holdout_metrics(run.data.metrics)
    mlflow_ui = urls.mlflow_ui(settings)
    verdict = _verdicts(settings, [model_version.run_id]).get(str(model_version.run_id))
    gates = _gates(_gate_report(settings, model_version.run_id))
    if gates is not None:  # the badge is the ledger's verdict; the report only explains it
        gates["passed"] = verdict is not None and verdict.passed
    return {
        **_version_summary(model_version, None, None, verdict),
        "metrics": dict(sorted(metrics.items())),
        "gates": gates,
        "lineage": _lineage(settings.model_name, tags),
        "links": {
            "mlflow_run": urls.mlflow_run(mlflow_ui, run.info.experiment_id, run.info.run_id),
            "mlflow_version": urls.mlflow_version(mlflow_ui, settings.model_name, str(model_version.version)),
            "gate_report": urls.gate_report(settings.model_name, run.info.run_id),
        },
    }


def model_overview(settings: Settings) -> dict[str, Any]:
    """Champion and challenger in detail, the recent versions, and the alias ledger (oldest first)."""
    overview = aliases.overview(settings)
    champion, challenger = overview["champion"], overview["challenger"]
    client = models.client(settings)
    try:
        found = client.search_model_versions(f"name = '{settings.model_name}'")
    except Exception:  # no registered model yet
        log.info("no versions of %s", settings.model_name, exc_info=True)
        found = []
    by_version = {str(mv.version): mv for mv in found}
    newest = sorted(by_version, key=int, reverse=True)[:VERSIONS_SHOWN]
    shown = [by_version[v] for v in newest]
    verdicts = _verdicts(settings, [mv.run_id for mv in shown])
    details = {
        alias: version_detail(settings, version, by_version.get(version)) if version else None
        for alias, version in (("champion", champion), ("challenger", challenger))
    }
    if details["champion"]:
        details["champion"]["status"] = "champion"
    if details["challenger"]:
        details["challenger"]["status"] = "challenger" if challenger != champion else "champion"
    ledger = overview["ledger"]
    retrain, rollback = settings.dag_id("continuous_training"), settings.dag_id("model_rollback")
    return {
        "model": settings.model_name,
        "dataset": settings.dataset.name,
        "page": urls.model_page(settings.model_name),
        "mlflow_ui": urls.mlflow_ui(settings),
        "champion": details["champion"],
        "challenger": details["challenger"],
        "champion_since": _alias_since(ledger, models.CHAMPION),
        "versions": [_version_summary(mv, champion, challenger, verdicts.get(str(mv.run_id))) for mv in shown],
        "ledger": [{**move, "airflow_run": _ledger_run(move)} for move in ledger],
        "promotion_policy": settings.promotion.policy,
        "actions": {
            "retrain": {"dag_id": retrain, "href": urls.airflow_dag(retrain)},
            "rollback": {"dag_id": rollback, "href": urls.airflow_dag(rollback)},
        },
    }


def _alias_since(ledger: list[dict[str, Any]], alias: str) -> str | None:
    moves = [move for move in ledger if move["alias"] == alias]
    return moves[-1]["at"] if moves else None


def _ledger_run(move: dict[str, Any]) -> str | None:
    """The Airflow run page of a move made by a DAG (actor ``airflow:<dag_id>``), else None."""
    actor, run = str(move.get("actor") or ""), str(move.get("run") or "")
    if actor.startswith("airflow:") and run:
        return urls.airflow_run(actor.removeprefix("airflow:"), run)
    return None


# -- drift ---------------------------------------------------------------------------------------------------
def drift_decision(settings: Settings, entry: dict[str, Any]) -> dict[str, Any]:
    """What a drift history entry decided about its day, as the page and the run views show it."""
    report_day = urls.report_day(entry.get("report_uri"))
    return {
        "day": str(entry.get("day"))[:10],
        "breached": bool(entry.get("breached")),
        "severe": bool(entry.get("severe")),
        "triggered": bool(entry.get("triggered")),
        "breached_features": entry.get("breached_features") or {},
        "champion_version": entry.get("champion_version"),
        "report": urls.drift_report(settings.model_name, report_day) if report_day else None,
    }


def drift_history(settings: Settings) -> dict[str, Any]:
    """PSI per feature and of the score per day, with the thresholds and the days that triggered training;
    ``features_by_psi`` ranks the features by their highest PSI over the days shown (highest first)."""
    from mlops.drift import read_history

    lake = Lake.from_settings(settings)
    entries = read_history(lake, settings.dataset.name)[-DAYS_SHOWN:]
    features = sorted({name for entry in entries for name in (entry.get("features") or {})})
    policy = settings.drift
    days = []
    for entry in entries:
        days.append({
            **drift_decision(settings, entry),
            "psi": {name: (entry.get("features") or {}).get(name, {}).get("psi") for name in features},
            "score_psi": (entry.get("score") or {}).get("psi"),
            "auc_pr": (entry.get("performance") or {}).get("auc_pr"),
        })  # fmt: skip
    peak = {name: max((d["psi"][name] or 0.0 for d in days if d["psi"][name] is not None), default=-1.0)
            for name in features}  # fmt: skip
    return {
        "dataset": settings.dataset.name,
        "features": features,
        "features_by_psi": sorted(features, key=lambda name: (-peak[name], name)),  # the chart's top k first
        "thresholds": {
            "psi": policy.psi_threshold,
            "severe_psi": policy.severe_psi,
            "score_psi": policy.score_psi_threshold,
            "consecutive_windows": policy.consecutive_windows,
            "cooldown_days": policy.cooldown_days,
        },
        "days": days,
    }


# -- validation and scoring ----------------------------------------------------------------------------------
def _failure_text(failure: dict[str, Any]) -> str:
    where = f"column {failure.get('column')}" if failure.get("column") else "table"
    return f"[{failure.get('rule')}] {where}: {failure.get('observed')!r} (expected {failure.get('expected')!r})"


def _warnings(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The tolerated breaches of a day's marker (or reason), each with its fields and its one line of text.

    A marker written before tolerances existed has none. The values are the producer's data (quoted short by
    the validation): the page shows them as text only.
    """
    found = payload.get("warnings") or []
    warnings = [w for w in found if isinstance(w, dict)] if isinstance(found, list) else []
    keys = ("rule", "column", "observed", "expected", "file", "sample_ids")
    return [{**{key: warning.get(key) for key in keys}, "text": _failure_text(warning)} for warning in warnings]


def validation_days(settings: Settings) -> list[dict[str, Any]]:
    """Each landed day's verdict: validated (rows, DVC revision, warnings), quarantined (reasons) or pending.

    ``warnings`` lists the breaches the contract tolerates: a validated day with warnings passed with them.
    """
    lake = Lake.from_settings(settings)
    raw, quarantined = set(lake.days("raw")), set(lake.days("quarantine"))
    out = []
    for day in sorted(raw | quarantined)[-DAYS_SHOWN:]:
        row: dict[str, Any] = {"day": day.isoformat(), "verdict": "pending", "rows": None, "reasons": [],
                               "warnings": []}  # fmt: skip
        validated, reason = lake.marker("raw", day, VALIDATED), lake.marker("quarantine", day, REASON)
        if day in raw and lake.exists(validated):
            marker = lake.read_json(validated)
            revision = (marker.get("dvc") or {}).get("revision")
            row.update(verdict="validated", rows=marker.get("rows"), dvc_revision=revision, warnings=_warnings(marker),
                       data_docs=urls.data_docs(settings.model_name, lake, marker.get("data_docs")))  # fmt: skip
        elif day in quarantined and lake.exists(reason):
            payload = lake.read_json(reason)
            row.update(verdict="quarantined", rows=payload.get("rows"),
                       reasons=[_failure_text(f) for f in payload.get("failures", [])], warnings=_warnings(payload),
                       quarantined_at=payload.get("quarantined_at"),
                       data_docs=urls.data_docs(settings.model_name, lake, payload.get("data_docs")))  # fmt: skip
        out.append(row)
    return out


def scoring_days(settings: Settings) -> list[dict[str, Any]]:
    """Rows scored, positive rate, rows/s of the scoring step and the model version, per committed day."""
    lake = Lake.from_settings(settings)
    out = []
    for day in lake.days("scores", STATS)[-DAYS_SHOWN:]:
        stats = lake.read_json(lake.marker("scores", day, STATS))
        seconds = float(stats.get("scoring_seconds") or 0.0)
        rows = int(stats.get("rows") or 0)
        out.append(
            {
                "day": day.isoformat(),
                "rows": rows,
                "positive_rate": stats.get("positive_rate"),
                "rows_per_second": rows / seconds if seconds > 0 else None,
                "model_version": stats.get("model_version"),
                "stats": urls.scores(settings.model_name, day.isoformat()),
            }
        )
    return out


def scores_day(settings: Settings, day: dt.date) -> dict[str, Any]:
    """One scored day: where its output is, and its ``_STATS.json``."""
    lake = Lake.from_settings(settings)
    stats_path = lake.marker("scores", day, STATS)
    if not lake.exists(stats_path):
        raise FileNotFoundError(f"no committed scores for {day}")
    partition = lake.partition("scores", day)
    return {
        "day": day.isoformat(),
        "output": lake.url(partition),
        "files": [lake.relative(path) for path in lake.data_files(partition)],
        "stats": lake.read_json(stats_path),
    }


def page_data(settings: Settings) -> dict[str, Any]:
    """Everything a model's page shows in one answer (the page draws each part from its own endpoint too)."""
    return {
        "model": model_overview(settings),
        "drift": drift_history(settings),
        "validation": validation_days(settings),
        "scoring": scoring_days(settings),
    }


# -- the models list -----------------------------------------------------------------------------------------
def _drift_state(entry: dict[str, Any]) -> str:
    """``ok``, ``breach`` or ``severe``: the drift policy's verdict on the day's window."""
    if entry.get("severe"):
        return "severe"
    return "breach" if entry.get("breached") else "ok"


def _warned_days(lake: Lake, validated: list[dt.date]) -> int:
    """How many of the last :data:`WARNED_DAYS` validated days passed with warnings (an unreadable marker: not)."""
    warned = 0
    for day in validated[-WARNED_DAYS:]:
        try:
            warned += bool(_warnings(lake.read_json(lake.marker("raw", day, VALIDATED))))
        except Exception:  # the list never fails on one marker; the day's own row says more
            log.warning("cannot read the validation marker of %s", day, exc_info=True)
    return warned


def model_summary(settings: Settings, runs: Iterable[DagRuns] | None = None) -> dict[str, Any]:
    """One line of the models list: champion and its age, last validated and scored days (and how many of the
    last validated days passed with warnings), the drift state of the last checked day and (when the host knows
    its DAG runs) the failed runs of the last days.

    Light on purpose (the list reads every model): the ledger head rather than MLflow, marker listings.
    """
    from mlops.drift import read_history
    from mlops.ledger import Ledger

    model = settings.model_name
    ledger = Ledger(settings.ledger_uri)
    try:
        champion = ledger.head(model, models.CHAMPION)
        moves = ledger.moves(model, models.CHAMPION)
    finally:
        ledger.dispose()
    since = moves[-1].at if champion and moves else None
    age = dt.datetime.now(dt.UTC).timestamp() - dt.datetime.fromisoformat(since).timestamp() if since else None
    lake = Lake.from_settings(settings)
    validated = lake.days("raw", VALIDATED)
    scored = lake.days("scores", STATS)
    history = read_history(lake, settings.dataset.name)
    drift = None
    if history:
        last = history[-1]
        report_day = urls.report_day(last.get("report_uri"))
        drift = {
            "day": str(last["day"])[:10],
            "state": _drift_state(last),
            "triggered": bool(last.get("triggered")),
            "breached_features": sorted(last.get("breached_features") or {}),
            "report": urls.drift_report(model, report_day) if report_day else None,
        }
    failed = None
    if runs is not None:
        failed = sum(run.failed_recent for run in runs if run.model == model)
    return {
        "model": model,
        "dataset": settings.dataset.name,
        "page": urls.model_page(model),
        "champion": {"version": champion, "since": since, "age_seconds": age} if champion else None,
        "last_validated": validated[-1].isoformat() if validated else None,
        "warned_days": _warned_days(lake, validated),  # of the last WARNED_DAYS validated days
        "warned_days_of": WARNED_DAYS,
        "last_scored": scored[-1].isoformat() if scored else None,
        "drift": drift,
        "failed_runs": failed,
        "error": None,
    }
