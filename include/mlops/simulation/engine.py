"""The daily cycle over simulated days, with the same step functions the DAGs call (no Airflow in the loop).

Each day D: the labels that came due land (``World``), ``raw/dt=D`` lands, then what the nightly chain does:
``validate_and_version`` (quarantine or DVC snapshot + marker), ``score_day`` with the champion,
``check_day`` (the drift decision, its debounce and cooldown), and when it says so ``run_all`` (snapshot,
train, gates on the frozen holdout, register, promote by compare-and-set). That is the policy under test.

Beside it, every validated day is scored by two references that never touch the registry:

* **frozen**: the day-0 champion itself (the version trained before day 0), never retrained;
* **oracle**: ``fit_booster`` (the training code's own fit, same parameters) refitted every day on the window
  ``resolve_snapshot`` gives for that day (the same train / early-stopping split the pipeline uses), so it
  knows exactly the labels known by then; while a concept or prior drift is in effect, that window starts at
  the drift's first day (``since``): the pipeline with a perfect change detector, retrained every day. The
  distance to it is what the policy costs: detection, cooldowns, the gates' rejections, the days between
  retrains.

A day's AUC-PR is computed for all three when its labels arrive (``delay_days`` later, or later still when
the scenario delays them): performance is judged as it would be in production, on the models of that day.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlops import models
from mlops.config import Settings, deep_merge, load_settings
from mlops.data.contract import Contract
from mlops.data.lake import Lake
from mlops.evaluation import metric_value
from mlops.features import FeatureSpec, binary_labels, build_matrix, feature_spec
from mlops.simulation.scenario import Scenario
from mlops.simulation.world import World

log = logging.getLogger(__name__)

MODELS = ("champion", "frozen", "oracle")
QUIET_LOGGERS = ("great_expectations.data_context.types.base", "mlops.validation", "mlops.training.pipeline")
#: A folder the simulation created holds this file; only such a folder is ever wiped for a fresh run.
HOME_MARKER = ".mlops-simulation"


@dataclass
class Training:
    """One run of the training pipeline (snapshot -> train -> gates -> register -> promote)."""

    day: int
    kind: str  # initial | drift | scheduled | bad_model
    reason: str
    seconds: float
    version: str | None = None
    passed: bool | None = None
    promoted: bool = False
    from_version: str | None = None
    summary: str = ""
    error: str | None = None
    skipped: str | None = None  # the plan's reason when the run had nothing to train on (not a training)


@dataclass
class DayRecord:
    """What happened on one simulated day, and (once its labels arrived) how well each model did on it."""

    day: int
    date: str
    drifts: list[str] = field(default_factory=list)
    corrupted: str | None = None
    validated: bool = False
    quarantine: str | None = None
    rows: int = 0
    labels_for: list[str] = field(default_factory=list)  # days whose labels arrived today
    champion_version: str | None = None
    drift: dict[str, Any] | None = None
    trainings: list[Training] = field(default_factory=list)
    auc_pr: dict[str, float] = field(default_factory=dict)  # model -> AUC-PR on this day's rows
    positives: int | None = None
    labels_known_on: int | None = None
    oracle_window: list[str] = field(default_factory=list)

    @property
    def triggered(self) -> bool:
        return bool(self.drift and self.drift["triggered"])


@dataclass
class SimulationResult:
    scenario: Scenario
    settings: Settings
    home: Path
    records: list[DayRecord]
    initial: Training
    frozen_version: str
    timings: dict[str, float]
    seconds: float


@dataclass
class _Day:
    """A validated day's inputs in memory: ids in raw order, the model matrix, labels once they arrived."""

    ids: np.ndarray
    X: np.ndarray
    y: np.ndarray | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def _quiet(record: logging.LogRecord) -> bool:
    """Log filter for QUIET_LOGGERS during a run: only what is worse than an expected outcome gets through."""
    return record.levelno >= logging.CRITICAL


def prepare_home(home: Path) -> Path:
    """An empty folder for the run: a new one, or one an earlier simulation made (wiped). Never anything else."""
    home = home.expanduser().resolve()
    if home.exists() and any(home.iterdir()):
        if not (home / HOME_MARKER).exists():
            raise ValueError(f"{home} exists and was not made by `mlops simulate`: pick a new or empty --home")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / HOME_MARKER).write_text("made by `mlops simulate`: wiped at the start of the next run\n")
    return home


def _auc_pr(y: np.ndarray, scores: np.ndarray, precision_target: float) -> float | None:
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        return None
    return metric_value(y, scores, "auc_pr", precision_target)


class Simulation:
    """Runs one scenario in its own MLOPS_HOME; ``say`` receives the progress lines."""

    def __init__(self, scenario: Scenario, home: Path, say: Callable[[str], None] | None = None) -> None:
        self.scenario = scenario
        self.home = prepare_home(home)
        self.say = say or log.info
        # The scenario's settings are the run's whole config over the defaults: a simulation is self-contained.
        self.settings = load_settings(env={"MLOPS_HOME": str(self.home)}, conf=scenario.settings)
        self.lake = Lake.from_settings(self.settings)
        self.world = World(scenario, self.settings, self.lake)
        self.spec: FeatureSpec = feature_spec(self.settings, Contract.load(self.settings.contract_path))
        self.days: dict[int, _Day] = {}
        self.records: dict[int, DayRecord] = {}
        self.timings: dict[str, float] = defaultdict(float)
        self.frozen: Any = None
        self.oracle: Any = None
        self.oracle_key: tuple[str, ...] = ()
        self.oracle_fit: Future[Any] | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oracle")

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[phase] += time.monotonic() - started

    # -- the producer and validation ----------------------------------------------------------------------
    def produce(self, day: int) -> DayRecord:
        """Labels that came due, the day's raw data and its validation (quarantined or DVC-versioned).

        The oracle of the day is refitted in the background meanwhile: it needs only the labels known by
        now, and validation leaves the second core idle.
        """
        from mlops.validation import ValidationFailed, validate_and_version

        scenario = self.scenario
        date = scenario.date(day)
        record = DayRecord(day, date.isoformat(), [e.describe() for e in scenario.in_effect(day)])
        self.records[day] = record
        due = self.world.labels_due(day)
        self.deliver_labels([d for d in due if d < day], record)
        if day >= 0:
            self.start_oracle(day, record)
        with self.timed("land"):
            record.corrupted = self.world.land(day)
        marker: dict[str, Any] | None = None
        with self.timed("validate"):
            try:
                marker = validate_and_version(self.settings, date)
            except ValidationFailed as exc:
                record.quarantine = exc.verdict.failures[0].describe()
        if marker is not None:
            record.validated, record.rows = True, int(marker["rows"])
            table = self.lake.read_partition(self.lake.partition("raw", date))
            ids = table.column(self.settings.dataset.id_column).to_numpy()
            self.days[day] = _Day(ids, build_matrix(table, self.spec))
        self.deliver_labels([d for d in due if d == day], record)  # only with dataset.label.delay_days 0
        return record

    def deliver_labels(self, days: list[int], record: DayRecord) -> None:
        with self.timed("land"):
            for labelled in days:
                labels = self.world.deliver_labels(labelled)
                record.labels_for.append(self.scenario.date(labelled).isoformat())
                self._labels_arrived(labelled, labels, record.day)

    def _labels_arrived(self, day: int, labels: Any, today: int) -> None:
        data = self.days.get(day)
        if data is None:  # quarantined: nothing was scored, nothing trains on it
            return
        dataset = self.settings.dataset
        label_ids = labels.column(dataset.id_column).to_numpy()
        values = binary_labels(labels.column(dataset.label.column), dataset.label.positive, dataset.label.column)
        order = np.argsort(label_ids)
        data.y = values[order[np.searchsorted(label_ids, data.ids, sorter=order)]]
        self.records[day].labels_known_on = today
        self._evaluate(day)

    def _evaluate(self, day: int) -> None:
        """AUC-PR of every model that scored the day, once its labels are known."""
        data, record = self.days.get(day), self.records[day]
        if data is None or data.y is None or not data.scores:
            return
        record.positives = int(data.y.sum())
        target = self.settings.gates.precision_target
        for name, scores in data.scores.items():
            value = _auc_pr(data.y, scores, target)
            if value is not None:
                record.auc_pr[name] = value

    # -- the policy under test ----------------------------------------------------------------------------
    def train(self, day: int, kind: str, trigger: dict[str, Any], settings: Settings | None = None,
              run_kind: str = "manual") -> Training:  # fmt: skip
        """What continuous_training does for a triggered (or, with ``run_kind`` ``scheduled``, the weekly) run:
        :func:`~mlops.plans.plan_training`, then ``run_all`` on the planned window, promotion per
        ``promotion.policy``."""
        from mlops.plans import Skip, plan_training
        from mlops.training.pipeline import run_all
        from mlops.training.snapshot import NoTrainingData

        settings = settings or self.settings
        started = time.monotonic()
        reason = str(trigger.get("reason"))
        with self.timed("train"):
            plan = plan_training(settings, as_of=self.scenario.date(day), run_kind=run_kind, reason=reason,
                                 drift=trigger.get("drift"))  # fmt: skip
            if isinstance(plan, Skip):
                return Training(day, kind, reason, time.monotonic() - started, skipped=plan.reason)
            try:
                outcome = run_all(settings, plan.as_of, plan.trigger, actor=f"simulation:{self.scenario.name}",
                                  snapshot=plan.snapshot)  # fmt: skip
            except NoTrainingData as exc:
                return Training(day, kind, reason, time.monotonic() - started, error=str(exc))
        promotion = outcome["promotion"]
        promoted = isinstance(promotion, dict)
        return Training(
            day, kind, reason, time.monotonic() - started, version=str(outcome["version"]),
            passed=bool(outcome["passed"]), promoted=promoted,
            from_version=promotion["from_version"] if promoted else outcome.get("champion_version"),
            summary=str(outcome["summary"])[:500],
        )  # fmt: skip

    def train_on_schedule(self, day: int, record: DayRecord) -> None:
        """What the weekly continuous_training run does on the scenario's ``weekly_training`` day: the scheduled
        run kind's plan (its window, the change-point start included), then the same pipeline."""
        if self.scenario.scheduled_training(day):
            trigger = {"reason": "weekly schedule"}
            record.trainings.append(self.train(day, "scheduled", trigger, run_kind="scheduled"))

    def score_champion(self, day: int, record: DayRecord) -> None:
        """What batch_scoring's run for the day does: :func:`~mlops.plans.plan_scoring` (every waiting day up
        to it), each planned day scored with the champion."""
        from mlops.plans import Skip, plan_scoring
        from mlops.scoring import score_day

        date = self.scenario.date(day)
        with self.timed("score"):
            plan = plan_scoring(self.settings, self.lake, [date], up_to=date)
            if isinstance(plan, Skip):
                raise RuntimeError(f"simulation day {day} ({date}): validated but not scored: {plan.reason}")
            for planned in plan.days:
                stats = score_day(self.settings, planned, run_id=f"simulation-{date}")
            scores = self.lake.read_partition(self.lake.partition("scores", date))
        record.champion_version = str(stats["model_version"])
        data = self.days[day]
        score_ids = scores.column(self.settings.dataset.id_column).to_numpy()
        aligned = np.empty(data.ids.size, dtype=np.float64)
        aligned[np.searchsorted(data.ids, score_ids)] = scores.column("score").to_numpy()
        data.scores["champion"] = aligned

    def check_drift(self, day: int, record: DayRecord) -> Any:
        """What drift_monitoring's run for the day does: :func:`~mlops.plans.plan_drift` (every unchecked scored
        day up to it), each planned day checked in order; None when the plan skips. Training is synchronous
        here, so no training run is ever active while a day is checked."""
        from mlops.monitoring import check_days
        from mlops.plans import Skip, plan_drift

        date = self.scenario.date(day)
        with self.timed("drift"):
            plan = plan_drift(self.settings, self.lake, [date], up_to=date)
            if isinstance(plan, Skip):  # e.g. the day was checked already: no drift record for it
                return None
            outcomes = check_days(self.settings, plan.days, training_active=False, render_report=False)
        outcome = next((checked for checked in outcomes if checked.trigger), outcomes[-1])
        result, performance = outcome.result, outcome.result.get("performance") or {}
        record.drift = {
            "breached": bool(result["breached"]),
            "severe": bool(result["severe"]),
            "triggered": outcome.trigger,
            "reason": str(outcome.decision["reason"]),
            "breached_features": sorted(result["breached_features"]),
            "score_breached": bool(result["score"].get("breached")),
            "performance_breached": bool(performance.get("breached")),
            "performance_auc_pr": performance.get("auc_pr"),
            "reference_auc_pr": performance.get("reference_auc_pr"),
            "features": {
                name: round(float(f["psi"]), 5) for name, f in result["features"].items() if f.get("psi") is not None
            },  # a feature the monitor skipped has no PSI
            "score_psi": None if result["score"].get("psi") is None else round(float(result["score"]["psi"]), 5),
        }
        return outcome

    # -- the references -----------------------------------------------------------------------------------
    def start_oracle(self, day: int, record: DayRecord) -> None:
        """Refit the oracle on the labels known on ``day``, when its days moved (see the module docstring).

        In a worker thread (XGBoost releases the GIL), collected by :meth:`score_references`. A window the
        pipeline would refuse (too few positives) keeps the last oracle.
        """
        from mlops.training.snapshot import NoTrainingData, resolve_snapshot
        from mlops.training.train import fit_booster

        change = next((e for e in self.scenario.in_effect(day) if e.label_side), None)
        since = self.scenario.date(change.day) if change is not None else None
        try:
            snapshot = resolve_snapshot(self.settings, self.scenario.date(day), self.lake, since=since)
        except NoTrainingData:
            return
        train, valid = snapshot.days["train"], snapshot.days["valid"]
        record.oracle_window = [train[0], valid[-1]]
        key = (*train, "|", *valid)
        if key == self.oracle_key:
            return
        X_train, y_train = self._stack(train)
        X_valid, y_valid = self._stack(valid)
        if y_train.sum() < self.settings.training.min_positives or not 0 < y_valid.sum() < y_valid.size:
            return
        self.oracle_key = key

        def fit() -> Any:
            started = time.monotonic()
            booster, _ = fit_booster(self.settings, self.spec, X_train, y_train, X_valid, y_valid)
            self.timings["oracle fits (in the background)"] += time.monotonic() - started
            return booster

        self.oracle_fit = self.pool.submit(fit)

    def score_references(self, day: int) -> None:
        """Frozen: the day-0 model. Oracle: the one fitted for this day (waiting for the fit if needed)."""
        data = self.days[day]
        with self.timed("references"):
            data.scores["frozen"] = np.asarray(self.frozen.inplace_predict(data.X), dtype=np.float64)
            if self.oracle_fit is not None:
                self.oracle, self.oracle_fit = self.oracle_fit.result(), None
            if self.oracle is not None:
                data.scores["oracle"] = np.asarray(self.oracle.inplace_predict(data.X), dtype=np.float64)

    def _stack(self, dates: list[str]) -> tuple[np.ndarray, np.ndarray]:
        days = [self.days[self.scenario.day_number(dt.date.fromisoformat(d))] for d in dates]
        return np.concatenate([d.X for d in days]), np.concatenate([d.y for d in days if d.y is not None])

    # -- the run ------------------------------------------------------------------------------------------
    def run(self) -> SimulationResult:
        # Quiet during the run: GX sets this logger to INFO itself (a line per validation), and a scenario's
        # quarantines and rejected models are expected outcomes, recorded in the report with their reasons.
        # A filter, not a level: GX sets its level again when it is first imported, inside the run.
        loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
        for logger in loggers:
            logger.addFilter(_quiet)
        try:
            return self._run()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            for logger in loggers:
                logger.removeFilter(_quiet)

    def _run(self) -> SimulationResult:
        scenario, settings = self.scenario, self.settings
        started = time.monotonic()
        self.say(f"simulation {scenario.name}: {scenario.history_days} history days + {scenario.days} days x "
                 f"{scenario.rows_per_day:,} rows from {scenario.date(0)} in {self.home}")  # fmt: skip
        for day in range(-scenario.history_days, 0):
            self.produce(day)
        self.say(f"  history landed and validated ({time.monotonic() - started:.0f} s); training the day-0 champion")
        initial = self.train(-1, "initial", {"reason": f"initial training (simulation {scenario.name})"})
        if not initial.promoted or initial.version is None:
            raise ValueError(f"the day-0 training did not produce a champion (more history_days?): "
                             f"{initial.error or initial.summary}")  # fmt: skip
        pinned = models.pin_version(settings, initial.version)
        self.frozen = models.load_booster(settings, pinned.model_uri)
        self.say(f"  day-0 champion v{initial.version} ({initial.seconds:.0f} s); it is also the frozen reference")

        for day in range(scenario.days):
            record = self.produce(day)
            if record.validated:
                self.score_references(day)
                self.score_champion(day, record)
                self._evaluate(day)  # labels may already be known (delay_days 0)
                outcome = self.check_drift(day, record)
                if outcome is not None and outcome.trigger:
                    record.trainings.append(self.train(day, "drift", outcome.conf))
            self.train_on_schedule(day, record)
            for event in scenario.events_on(day, "bad_model"):
                bad = load_settings(
                    env={"MLOPS_HOME": str(self.home)}, conf=deep_merge(scenario.settings, event.settings)
                )
                trigger = {"reason": f"scenario: {event.describe()}"}
                record.trainings.append(self.train(day, "bad_model", trigger, bad))
            self._progress(record, started)
        seconds = time.monotonic() - started
        self.say(f"simulation {scenario.name}: {scenario.days} days in {seconds:.0f} s")
        return SimulationResult(scenario, settings, self.home, [self.records[d] for d in range(scenario.days)],
                                initial, initial.version, dict(self.timings), seconds)  # fmt: skip

    def _progress(self, record: DayRecord, started: float) -> None:
        """One line for a day something happened on, and a heartbeat every 10 days."""
        notes = []
        if record.corrupted or record.quarantine:
            notes.append(f"QUARANTINED ({(record.quarantine or '')[:100]})")
        if record.drift and record.drift["breached"]:
            notes.append(f"drift {'TRIGGER' if record.triggered else 'breach'}: {record.drift['reason'][:90]}")
        for training in record.trainings:
            if training.error:
                notes.append(f"training failed: {training.error[:80]}")
            else:
                verdict = "promoted" if training.promoted else ("gates passed" if training.passed else "REJECTED")
                notes.append(f"{training.kind} training v{training.version}: {verdict} ({training.seconds:.0f} s)")
        if notes or record.day % 10 == 0:
            elapsed = time.monotonic() - started
            text = "; ".join(notes) or f"champion v{record.champion_version}"
            self.say(f"  day {record.day:>3} {record.date} [{elapsed:>4.0f} s] {text}")
