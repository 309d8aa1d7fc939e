"""The drift check for one day: gather the window, compare with the champion's stored reference, decide.

:func:`unchecked_days` and :func:`check_days` extend it to a backlog: every scored day without a history
entry yet, oldest first, so days scored in one go (after a backfill or an outage) are each checked once.
Shared by the ``drift_monitoring`` DAG and ``mlops drift``. The statistics live in ``mlops.drift``;
this module only finds the data: the champion's reference profile and holdout AUC-PR (MLflow), the
window's validated inputs and scores (lake), delayed labels once they arrived, and the history.
It never re-reads the training data for the decision (a small sample only feeds the HTML report).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mlops import aliases, models
from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.errors import InfrastructureError
from mlops.features import FeatureSpec, binary_labels, build_matrix, labelled_rows

if TYPE_CHECKING:
    from mlops.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """The champion as scoring pins it, plus what monitoring reads from its training run."""

    pinned: models.PinnedModel
    profile: dict[str, Any]
    holdout_auc_pr: float | None
    snapshot: dict[str, Any]

    @property
    def spec(self) -> FeatureSpec:
        return self.pinned.spec


@dataclass(frozen=True)
class DriftOutcome:
    """One day's drift check: the statistics, the trigger decision and the conf a retraining would get."""

    result: dict[str, Any]
    decision: dict[str, Any]
    report_uri: str | None
    conf: dict[str, Any]
    champion_version: str
    #: Why the Evidently report could not be made (one line; None: it was, or was not asked for). The
    #: decision and the history entry never depend on it.
    report_error: str | None = None
    #: Columns the report did not compare, with the reason (a timestamp, free text, an all-null column...).
    report_skipped: dict[str, str] = field(default_factory=dict)

    @property
    def trigger(self) -> bool:
        return bool(self.decision["trigger"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftOutcome:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # older dicts lack new fields


def _champion(settings: Settings) -> Champion:
    pinned = aliases.pin_champion(settings)
    run = models.get_run(settings, pinned.run_id)
    return Champion(
        pinned=pinned,
        profile=models.load_artifact(settings, pinned.run_id, models.Artifacts.REFERENCE_PROFILE),
        holdout_auc_pr=run.data.metrics.get(models.holdout_metric("auc_pr")),
        snapshot=models.load_artifact(settings, pinned.run_id, models.Artifacts.SNAPSHOT),
    )


def _window(lake: Lake, day: dt.date, days: int) -> list[dt.date]:
    validated = [d for d in lake.days("raw", VALIDATED) if d <= day][-days:]
    if not validated or validated[-1] != day:
        raise FileNotFoundError(f"{lake.url(lake.partition('raw', day))} is not validated: nothing to monitor")
    return validated


def _window_table(lake: Lake, area: str, days: list[dt.date]) -> pa.Table | None:
    tables = [lake.read_partition(lake.partition(area, d)) for d in days if lake.exists(lake.marker(area, d, SUCCESS))]
    # Days of one window may differ in storage widths, dictionaries or extra columns the contract allows.
    return pa.concat_tables(tables, promote_options="permissive").unify_dictionaries() if tables else None


#: The last reference sample read (keyed by registry, revision, day and columns): one champion's, reused.
_REFERENCE_SAMPLE: dict[tuple[Any, ...], Any] = {}


def _reference_sample(settings: Settings, champion: Champion, columns: list[str]) -> Any:
    """A seeded sample of the champion's last training day (by its DVC revision), for the HTML report only."""
    from mlops.training.snapshot import read_day
    from mlops.versioning import open_registry

    snapshot = champion.snapshot
    key = (snapshot["registry"], snapshot["registry_revision"], snapshot["days"]["train"][-1], tuple(columns))
    if key not in _REFERENCE_SAMPLE:  # a backlog reports many days against one champion: open the registry once
        _REFERENCE_SAMPLE.clear()
        fs = open_registry(snapshot["registry"], snapshot["registry_revision"])
        _REFERENCE_SAMPLE[key] = read_day(fs, settings, key[2], columns).to_pandas()
    return _REFERENCE_SAMPLE[key]


def unchecked_days(lake: Lake, dataset: str, requested: list[dt.date] | tuple[dt.date, ...] = (), *,
                   up_to: dt.date | None = None, trained_on: frozenset[dt.date] = frozenset(),
                   forced: bool = False, limit: int = 31) -> tuple[list[dt.date], list[str]]:  # fmt: skip
    """The days a drift run checks, oldest first, and one note per requested day it does not check.

    Every scored day (``scores/dt=D/_SUCCESS``) up to ``up_to`` (the run's day; None: no bound) without a
    drift-history entry yet, at most ``limit`` (the rest wait for the next run), so a backlog scored in
    one go is checked day by day, in order, and a run for day D never judges a day after D. Days in
    ``trained_on`` (the champion's training and validation days) are never checked: the reference profile
    was made from them. ``forced`` (``params.date``): the ``requested`` days are checked again whatever
    their state.
    """
    from mlops.drift import read_history

    checked = {str(entry.get("day")): entry for entry in read_history(lake, dataset)}
    validated = set(lake.days("raw", VALIDATED))  # a day re-validated into quarantine has no window any more
    waiting = [day for day in lake.days("scores", SUCCESS)
               if day.isoformat() not in checked and day in validated and (up_to is None or day <= up_to)
               and day not in trained_on]  # fmt: skip
    notes = [f"dt={day.isoformat()}: the champion was trained on it, so it is not checked against its own reference"
             for day in sorted(set(requested) & trained_on)]  # fmt: skip
    requested = [day for day in requested if day not in trained_on]
    if forced:
        chosen = sorted(set(requested))
        rest = [day for day in waiting if day not in chosen]
        return sorted(chosen + rest[: max(limit - len(chosen), 0)]), notes
    for day in sorted(set(requested)):
        entry = checked.get(day.isoformat())
        if entry is not None:
            notes.append(f"dt={day.isoformat()} already checked (with v{entry.get('champion_version', '?')}: "
                         f"breached={entry.get('breached')}, triggered={entry.get('triggered')})")  # fmt: skip
        elif day not in waiting:
            notes.append(f"dt={day.isoformat()} has no committed scores yet: checked once batch_scoring commits them")
    if len(waiting) > limit:
        notes.append(f"{len(waiting) - limit} more scored day(s) wait ({waiting[limit].isoformat()}.."
                     f"{waiting[-1].isoformat()}): beyond drift.backlog_days, the next run checks them")  # fmt: skip
    return waiting[:limit], notes


def champion_trained_days(settings: Settings) -> frozenset[dt.date]:
    """The days the current champion learned from (its snapshot's train and valid splits) and its reference
    profile was made of; empty without a champion."""
    if aliases.alias_version(settings, models.CHAMPION) is None:
        return frozenset()
    snapshot = models.load_artifact(settings, aliases.pin_champion(settings).run_id, models.Artifacts.SNAPSHOT) or {}
    splits = snapshot.get("days", {})
    days = [day for split in ("train", "valid") for day in splits.get(split, [])] + snapshot.get("reference", [])
    return frozenset(dt.date.fromisoformat(day) for day in days)


def check_days(settings: Settings, days: list[dt.date], training_active: bool = False,
               render_report: bool = True) -> list[DriftOutcome]:  # fmt: skip
    """:func:`check_day` for each day, oldest first, with the champion pinned once for all of them.

    Each day's entry is in the history before the next day is decided, so the debounce sees the days in
    order; once a day decides to trigger, the days after it see a training run as active (the run
    triggers once, with the evidence of that day).
    """
    champion = _champion(settings)
    last_training = models.last_training(settings)  # one MLflow search for the whole backlog
    outcomes = []
    for day in sorted(days):
        outcome = check_day(settings, day, training_active, render_report, champion=champion,
                            last_training=last_training)  # fmt: skip
        training_active = training_active or outcome.trigger
        outcomes.append(outcome)
    return outcomes


def check_day(settings: Settings, day: dt.date, training_active: bool = False,
              render_report: bool = True, champion: Champion | None = None,
              last_training: dt.date | None = None) -> DriftOutcome:  # fmt: skip
    """Assess the window ending at ``day``, record it in the history, and say whether to retrain.

    ``champion`` and ``last_training``: resolved once by a caller checking several days; else looked up here.
    The Evidently report (``render_report``) is for people, the decision is not: when the report fails (other
    than on I/O, which is retried), the decision and the history entry are recorded with ``report_error`` (one
    line) instead; the columns the report did not compare are in ``report_skipped``, with the reason.
    """
    from mlops.drift import append_history, assess_window, read_history, trigger_decision

    policy = settings.drift
    lake = Lake.from_settings(settings)
    champion = champion or _champion(settings)
    spec = champion.spec
    days = _window(lake, day, policy.window_days)
    inputs = _window_table(lake, "raw", days)
    assert inputs is not None
    X = build_matrix(inputs, spec)
    scores_table = _window_table(lake, "scores", days)
    scores = None if scores_table is None else scores_table.column("score").to_numpy().astype(np.float64)

    labels = None
    labelled_days = [d.isoformat() for d in days if lake.exists(lake.marker("labels", d, SUCCESS))]
    label_table = _window_table(lake, "labels", days)
    if label_table is not None and scores_table is not None:
        id_column, label_column = settings.dataset.id_column, settings.dataset.label.column
        labelled = labelled_rows(label_table, id_column, label_column, scores_table.schema.field(id_column).type)
        # Inner: only scored rows whose label has arrived (days of the window may still wait for theirs).
        joined = scores_table.select([id_column, "score"]).join(labelled, id_column, join_type="inner")
        if joined.num_rows:
            y = binary_labels(joined.column(label_column), settings.dataset.label.positive, label_column)
            y = y.astype(np.float64)
            labels = (y, joined.column("score").to_numpy().astype(np.float64))

    window = [d.isoformat() for d in days]
    result = assess_window(settings, champion.profile, spec, X, scores, labels, champion.holdout_auc_pr,
                           day.isoformat(), window)  # fmt: skip

    history = [entry for entry in read_history(lake, settings.dataset.name) if entry.get("day") != day.isoformat()]
    last_training = last_training or models.last_training(settings)
    current = {**result.to_dict(), "day": day.isoformat(), "labelled_days": labelled_days}
    catch_up, wait = _change_reasons(settings, lake, history, current, day, champion)
    decision = trigger_decision(settings, history, result, day, last_training, training_active, catch_up, wait)
    report_uri, report_error, report_skipped = None, None, {}
    if render_report:
        try:
            report_uri, report_skipped = _report(settings, lake, day, champion, inputs, result.to_dict(), decision)
        except InfrastructureError:
            raise  # the disk or a service: retried, like the rest of the check
        except Exception as exc:  # the report is for people; the decision and its history entry stand without it
            from mlops.drift_report import error_line

            report_error = error_line(exc)
            log.warning("drift dt=%s: the Evidently report failed (%s); the decision is recorded without it", day,
                        report_error, exc_info=True)  # fmt: skip
    entry = {**result.to_dict(), "day": day.isoformat(), "triggered": bool(decision["trigger"]),
             "champion_version": champion.pinned.version, "report_uri": report_uri,
             "labelled_days": labelled_days}  # fmt: skip
    if render_report:
        entry.update(report_error=report_error, report_skipped=report_skipped)
    append_history(lake, settings.dataset.name, entry)
    conf = {
        "reason": f"drift: {decision['reason']}",
        "drift": {"window": {"days": window}, "breached_features": result.breached_features, "report_uri": report_uri},
    }
    log.info("drift dt=%s: breached=%s severe=%s -> trigger=%s (%s)", day, result.breached, result.severe,
             decision["trigger"], decision["reason"])  # fmt: skip
    return DriftOutcome(result.to_dict(), decision, report_uri, conf, champion.pinned.version, report_error,
                        report_skipped)  # fmt: skip


def _change_reasons(settings: Settings, lake: Lake, history: list[dict[str, Any]], current: dict[str, Any],
                    day: dt.date, champion: Champion) -> tuple[str | None, str | None]:  # fmt: skip
    """(catch-up reason, wait-for-labels reason) on ``day``, from the change in what the labels say that the
    history and the current window confirm (:func:`mlops.concept_change.concept_change_start`), counting the labelled
    days since it whose labels were due by ``day``."""
    from mlops.concept_change import catch_up_reason, concept_change_start, wait_for_labels_reason
    from mlops.training.snapshot import MIN_DAYS_SINCE_CHANGE

    since = concept_change_start([*history, current], day)
    if since is None:
        return None, None
    due = day - dt.timedelta(days=settings.dataset.label.delay_days)
    validated = set(lake.days("raw", VALIDATED))
    labelled = len([d for d in lake.days("labels", SUCCESS) if since <= d <= due and d in validated])
    splits = (champion.snapshot or {}).get("days", {})
    learned = [d for split in ("train", "valid", "holdout") for d in splits.get(split, [])]
    return (
        catch_up_reason(since, learned, labelled, settings.training.window_days, champion.pinned.version),
        wait_for_labels_reason(since, labelled, MIN_DAYS_SINCE_CHANGE),
    )


def _render_report(settings: Settings, lake: Lake, day: dt.date, champion: Champion, inputs: pa.Table,
                   result: dict[str, Any], decision: dict[str, Any]) -> str:  # fmt: skip
    """The Evidently HTML report of the window (:func:`_report`), published to the lake: its URL."""
    return _report(settings, lake, day, champion, inputs, result, decision)[0]


def _report(settings: Settings, lake: Lake, day: dt.date, champion: Champion, inputs: pa.Table,
            result: dict[str, Any], decision: dict[str, Any]) -> tuple[str, dict[str, str]]:  # fmt: skip
    """The Evidently HTML report of the window, rendered in a temporary folder and published to the lake; its URL
    and the columns it did not compare (with the reason).

    Evidently is configured with our policy (PSI per column at our threshold, dataset drift at our number
    of breaching features) and the page opens with our decision and PSI table (``result`` is
    ``DriftResult.to_dict()``): a page that read "no drift" on a day that triggered retraining would mislead.
    Columns are typed from the model's features and the contract (``drift_report_columns.report_columns``), hashed
    strings bucketed on the top values of the champion's reference profile, as the monitor does.
    """
    from mlops.data.publish import publish_file
    from mlops.drift_report import POLICY_PSI, evidently_report
    from mlops.drift_report_columns import report_columns
    from mlops.drift_report_page import decision_banner
    from mlops.profiling import TOP_VALUES

    policy = settings.drift
    spec = champion.spec
    dataset = settings.dataset
    types, skipped = report_columns(spec, _contract(settings), dataset.id_column, dataset.time_column,
                                    dataset.label.column)  # fmt: skip
    columns = list(types)
    features = (champion.profile or {}).get("features", {})
    top_codes = {name: features[name]["codes"] for name in spec.hashed
                 if features.get(name, {}).get("kind") == TOP_VALUES}  # fmt: skip
    reference = _reference_sample(settings, champion, columns)
    current = inputs.select(columns).to_pandas()
    remote = lake.report("drift", day, "report.html", settings.dataset.name)
    with tempfile.TemporaryDirectory(prefix="mlops-drift-") as folder:
        local = f"{folder}/report.html"
        evidently = evidently_report(
            reference,
            current,
            local,
            policy.seed,
            policy.report_sample_rows,
            method=POLICY_PSI,
            threshold=policy.psi_threshold,
            banner_html=decision_banner(decision, result, policy),
            column_types=types,
            top_codes=top_codes,
            skipped=skipped,
            min_drifted_columns=policy.min_breaching_features,
        )
        publish_file(lake, local, remote)
    log.info("Evidently report: %s (drifted columns %s; not compared: %s)", lake.url(remote),
             evidently.get("drifted_columns"), evidently.get("skipped"))  # fmt: skip
    return lake.url(remote), dict(evidently.get("skipped") or {})


def _contract(settings: Settings) -> Any:
    """The model's data contract (the report's column types), or None when it cannot be read: the report then
    types the features from the model's feature spec alone."""
    from mlops.data.contract import Contract

    try:
        return Contract.load(settings.contract_path)
    except (OSError, ValueError) as exc:
        log.warning("drift report: the contract %s cannot be read (%s); typing columns from the features alone",
                    settings.contract_path, exc)  # fmt: skip
        return None
