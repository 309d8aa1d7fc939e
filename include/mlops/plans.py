"""What each run does: one plan function per DAG kind, called by the DAGs, the CLI and ``mlops simulate``.

A plan function takes the run's day bound (``up_to``: a run for day D decides only from days up to D), the
days it was started for, its trigger and the settings, reads the lake and the registry, and returns a typed
plan or a :class:`Skip` with the reason. The DAG only maps the plan to tasks and to Airflow's behaviour (a
skip becomes a skipped task with the reason in its log); the simulation runs the same functions with its
own clock, so the operating record measures the policy that production runs.

Light at import (DAG files import it while they parse): the lake, registry and training modules are imported
inside the functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.config import Settings

if TYPE_CHECKING:
    from mlops.data.lake import Lake
    from mlops.models import PinnedModel
    from mlops.training.snapshot import TrainingSnapshot


@dataclass(frozen=True)
class Skip:
    """Nothing to do in this run (a normal outcome, never a failure): why, in one line."""

    reason: str


@dataclass(frozen=True)
class ScoringPlan:
    """The days a scoring run scores, oldest first, with the champion it pinned for all of them."""

    days: list[dt.date]
    champion: PinnedModel
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DriftPlan:
    """The scored days a drift run checks, oldest first (at most one of them triggers a training run)."""

    days: list[dt.date]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingPlan:
    """What a training run trains on and why: the window pinned to a registry revision, the trigger."""

    as_of: dt.date
    reason: str
    snapshot: TrainingSnapshot
    trigger: dict[str, Any] = field(default_factory=dict)


#: Why a run of each kind trains, when its trigger gives no reason of its own.
RUN_KIND_REASONS = {"asset_triggered": "new validated data", "scheduled": "weekly schedule"}


def _span(days: Sequence[dt.date]) -> str:
    return f" ({days[0]}..{days[-1]})" if days else ""


def plan_scoring(settings: Settings, lake: Lake, requested: Sequence[dt.date], *, up_to: dt.date,
                 forced: bool = False) -> ScoringPlan | Skip:  # fmt: skip
    """Every validated, unscored day up to ``up_to`` (oldest first, at most ``scoring.backlog_days``), plus
    the ``requested`` days when ``forced``, with the champion pinned once; a skip when there is no champion
    yet (the days wait for it) or nothing waits."""
    from mlops import aliases, models
    from mlops.scoring import pending_days

    backlog = pending_days(lake, list(requested), up_to=up_to, forced=forced, limit=settings.scoring.backlog_days)
    try:
        champion = aliases.pin_champion(settings)
    except models.NoChampion:
        waiting = backlog.days + backlog.deferred
        return Skip(f"no champion yet: {len(waiting)} validated day(s) up to dt={up_to} wait{_span(waiting)}; "
                    f"they are scored when a champion is promoted (run {settings.dag_id('continuous_training')}; "
                    f"the champion Asset then starts {settings.dag_id('batch_scoring')})")  # fmt: skip
    if not backlog.days:
        return Skip(backlog.reason())
    return ScoringPlan(backlog.days, champion, backlog.notes())


def plan_drift(settings: Settings, lake: Lake, requested: Sequence[dt.date], *, up_to: dt.date,
               forced: bool = False) -> DriftPlan | Skip:  # fmt: skip
    """Every scored day up to ``up_to`` without a drift-history entry (oldest first, at most
    ``drift.backlog_days``), never one the champion learned from; a skip when there is no champion or
    nothing waits."""
    from mlops import aliases, models
    from mlops.monitoring import champion_trained_days, unchecked_days

    has_champion = aliases.alias_version(settings, models.CHAMPION) is not None
    trained = champion_trained_days(settings) if has_champion else frozenset()
    days, notes = unchecked_days(lake, settings.dataset.name, list(requested), up_to=up_to, trained_on=trained,
                                 forced=forced, limit=settings.drift.backlog_days)  # fmt: skip
    if not has_champion:
        training = settings.dag_id("continuous_training")
        return Skip(f"no champion yet: nothing is scored or monitored until {training} promotes one "
                    f"({len(days)} scored day(s) wait)")  # fmt: skip
    if not days:
        return Skip("nothing to check: " + ("; ".join(notes) or "every scored day has its drift-history entry"))
    return DriftPlan(days, notes)


def plan_training(settings: Settings, *, as_of: dt.date, run_kind: str, reason: str | None = None,
                  drift: Mapping[str, Any] | None = None) -> TrainingPlan | Skip:  # fmt: skip
    """The window a training run for ``as_of`` trains on, and why it runs.

    A run started by new validated data (``run_kind`` ``asset_triggered``) trains only the first model
    (bootstrap) unless ``training.retrain_on_new_data``; a scheduled run is the weekly retraining; other
    runs (manual, drift, simulation) give their own ``reason``. After a confirmed change in what the labels
    say (a performance breach in the drift history up to ``as_of``), the window starts at the change. A skip
    when there is not enough labelled data yet (a later run trains; nothing to retry).
    """
    from mlops import aliases, models
    from mlops.concept_change import concept_change_start
    from mlops.data.lake import Lake
    from mlops.drift import read_history
    from mlops.training.snapshot import NoTrainingData, resolve_snapshot

    why = RUN_KIND_REASONS.get(run_kind) or reason or "manual"
    if run_kind == "asset_triggered" and not settings.training.retrain_on_new_data:
        champion = aliases.alias_version(settings, models.CHAMPION)
        if champion is not None:
            return Skip(f"champion v{champion} exists: new validated data alone does not retrain it (weekly "
                        "schedule, drift trigger or manual run do; training.retrain_on_new_data: true retrains on "
                        "every day)")  # fmt: skip
    lake = Lake.from_settings(settings)
    since = concept_change_start(read_history(lake, settings.dataset.name), as_of)
    try:
        snapshot = resolve_snapshot(settings, as_of, lake, since=since)
    except NoTrainingData as exc:
        return Skip(f"not enough labelled data to train yet ({why}): {exc}")
    trigger: dict[str, Any] = {"reason": why}
    if drift:
        trigger["drift"] = dict(drift)
    return TrainingPlan(as_of, why, snapshot, trigger)
