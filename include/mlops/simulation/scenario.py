"""A scenario: what happens to the world day by day, as data (YAML under ``include/scenarios/``).

Days are counted from the scenario's ``start`` (day 0 is the first simulated day); ``history_days``
days before it are landed and validated first, and the day-0 champion is trained on them. Events:

==============  ==========================================================================================
kind            what happens
==============  ==========================================================================================
``covariate``   from ``day`` (until ``until``, exclusive, or the end) the named ``features`` shift by
                ``magnitude`` (``mlops.data.generator.DriftSpec``); the label function stays the same
``concept``     from ``day`` the label function moves to the drifted concept (inputs unchanged)
``prior``       from ``day`` the fraud odds move (inputs unchanged)
``corrupt``     ``raw/dt=day`` is corrupted after landing with ``fault`` (``mlops.data.faults``)
``late_labels`` the labels of ``day`` arrive ``extra_days`` after they are due
``bad_model``   after the day's cycle a training runs with ``settings`` (default: a one-level stump of two
                rounds) that the gates must reject
==============  ==========================================================================================

At most one covariate event and one label-side event (concept or prior) may be in effect on a day:
the generator applies one drift per day, and the simulation composes exactly those two (see ``world``).

``weekly_training`` (a weekday, e.g. ``monday``; default none) adds the scheduled retraining
(``dags.training_schedule``): on that weekday a training run plans its window as the weekly run does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops.config import PROJECT_ROOT
from mlops.data.faults import FAULTS
from mlops.data.generator import DriftSpec

SCENARIOS_DIR = PROJECT_ROOT / "include" / "scenarios"
DEFAULT_SCENARIO = SCENARIOS_DIR / "default.yaml"

DRIFT_KINDS = ("covariate", "concept", "prior")
EVENT_KINDS = (*DRIFT_KINDS, "corrupt", "late_labels", "bad_model")
#: The config a ``bad_model`` event trains with unless it says otherwise: far too weak to pass the gates.
BAD_MODEL_SETTINGS: dict[str, Any] = {"model": {"num_boost_round": 2, "early_stopping_rounds": 2,
                                                "params": {"max_depth": 1, "eta": 0.05}}}  # fmt: skip
_EVENT_KEYS = {
    "covariate": {"features", "magnitude", "until"},
    "concept": {"magnitude", "until"},
    "prior": {"magnitude", "until"},
    "corrupt": {"fault"},
    "late_labels": {"extra_days"},
    "bad_model": {"settings"},
}
_SCENARIO_KEYS = {"name", "description", "start", "days", "history_days", "rows_per_day", "seed", "recovery",
                  "expect", "settings", "events", "weekly_training"}  # fmt: skip
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ScenarioError(ValueError):
    """The scenario file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Event:
    """One scheduled event; ``day`` and ``until`` are day numbers from the scenario's start."""

    kind: str
    day: int
    until: int | None = None
    features: tuple[str, ...] = ()
    magnitude: float = 1.0
    fault: str | None = None
    extra_days: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_drift(self) -> bool:
        return self.kind in DRIFT_KINDS

    @property
    def label_side(self) -> bool:
        """Concept and prior drift change only the labels: they are seen when the labels arrive."""
        return self.kind in ("concept", "prior")

    def in_effect(self, day: int) -> bool:
        return self.is_drift and self.day <= day and (self.until is None or day < self.until)

    def describe(self) -> str:
        if self.kind == "covariate":
            return f"covariate shift of {', '.join(self.features)} (x{self.magnitude:g})"
        if self.kind in ("concept", "prior"):
            return f"{self.kind} drift (magnitude {self.magnitude:g})"
        if self.kind == "corrupt":
            return f"corrupted day ({self.fault})"
        if self.kind == "late_labels":
            return f"labels {self.extra_days} day(s) late"
        return "a weak model that the gates must reject"


@dataclass(frozen=True)
class Recovery:
    """Recovered: the champion's AUC-PR is within ``margin`` of the oracle's on ``days`` labelled days in a row."""

    margin: float = 0.05
    days: int = 3


@dataclass(frozen=True)
class Expectations:
    """What the run should show; checked in the summary (and asserted by the test on the short scenario)."""

    max_detection_days: int | None = 2
    max_false_triggers: int | None = 0
    champion_closer_than_frozen: bool = True
    max_trainings: int | None = None  # trainings the policy ran (drift-triggered and scheduled; skips excluded)
    max_covariate_triggers: int | None = None  # triggers one covariate shift causes, detection included
    max_recovery_days_after_evidence: int | None = None  # concept/prior drift: recovered this soon after its labels
    min_oracle_ratio: float | None = None  # the champion's mean AUC-PR over the oracle's


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start: dt.date
    days: int
    history_days: int
    rows_per_day: int
    seed: int
    events: tuple[Event, ...]
    settings: dict[str, Any]
    recovery: Recovery = Recovery()
    expect: Expectations = Expectations()
    path: str = ""
    weekly_training: int | None = None  # the weekday (0 = Monday) of the scheduled retraining; None: none

    def date(self, day: int) -> dt.date:
        return self.start + dt.timedelta(days=day)

    def scheduled_training(self, day: int) -> bool:
        """Whether the weekly retraining runs on ``day``."""
        return self.weekly_training is not None and self.date(day).weekday() == self.weekly_training

    def day_number(self, date: dt.date) -> int:
        return (date - self.start).days

    @property
    def drift_events(self) -> list[Event]:
        return [e for e in self.events if e.is_drift]

    def events_on(self, day: int, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind and e.day == day]

    def in_effect(self, day: int) -> list[Event]:
        return [e for e in self.drift_events if e.in_effect(day)]

    def drifts(self, day: int) -> tuple[DriftSpec | None, DriftSpec | None]:
        """(covariate, label-side) drift of a day as generator specs; None where none is in effect."""
        covariate = label = None
        for event in self.in_effect(day):
            spec = DriftSpec(self.date(event.day), event.kind, event.features, event.magnitude)  # type: ignore[arg-type]
            if event.label_side:
                label = spec
            else:
                covariate = spec
        return covariate, label

    def labels_delay(self, day: int, delay_days: int) -> int:
        """Days after ``day`` its labels arrive: the configured delay plus any ``late_labels`` event."""
        return delay_days + sum(e.extra_days for e in self.events_on(day, "late_labels"))

    def with_days(self, days: int) -> Scenario:
        """The same scenario over another number of days (events past the end never happen)."""
        if days < 1:
            raise ScenarioError(f"days must be >= 1, got {days}")
        return Scenario(self.name, self.description, self.start, days, self.history_days, self.rows_per_day,
                        self.seed, self.events, self.settings, self.recovery, self.expect, self.path,
                        self.weekly_training)  # fmt: skip


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _event(where: str, raw: Any, days: int) -> Event:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: an event is a mapping with `day` and `kind`, got {raw!r}")
    kind = raw.get("kind")
    if kind not in EVENT_KINDS:
        raise ScenarioError(f"{where}: kind must be one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    unknown = set(raw) - {"day", "kind"} - _EVENT_KEYS[kind]
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)} for a {kind} event")
    day = _int(f"{where}.day", raw.get("day"), 0)
    until = raw.get("until")
    if until is not None and _int(f"{where}.until", until, day + 1) > days:
        raise ScenarioError(f"{where}.until: {until} is past the scenario's {days} days")
    magnitude = raw.get("magnitude", 1.0)
    if isinstance(magnitude, bool) or not isinstance(magnitude, int | float) or magnitude <= 0:
        raise ScenarioError(f"{where}.magnitude: expected a number > 0, got {magnitude!r}")
    features = raw.get("features", [])
    if kind == "covariate" and (not isinstance(features, list) or not features):
        raise ScenarioError(f"{where}.features: a covariate event names the features it shifts, got {features!r}")
    fault = raw.get("fault")
    if kind == "corrupt" and fault not in FAULTS:
        raise ScenarioError(f"{where}.fault: expected one of {sorted(FAULTS)}, got {fault!r}")
    extra = _int(f"{where}.extra_days", raw.get("extra_days", 1), 1) if kind == "late_labels" else 0
    settings = raw.get("settings", BAD_MODEL_SETTINGS if kind == "bad_model" else {})
    if not isinstance(settings, Mapping):
        raise ScenarioError(f"{where}.settings: expected a mapping of config sections, got {settings!r}")
    event = Event(kind, day, until, tuple(features), float(magnitude), fault, extra, dict(settings))
    if event.is_drift:
        try:
            DriftSpec(dt.date(2000, 1, 1), kind, event.features, event.magnitude)
        except ValueError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
    return event


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """A validated :class:`Scenario` from the YAML's mapping; :class:`ScenarioError` names what is wrong."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    unknown = set(data) - _SCENARIO_KEYS
    if unknown:
        raise ScenarioError(f"{source}: unknown key(s) {sorted(unknown)}; expected {sorted(_SCENARIO_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ScenarioError(f"{source}: name must be letters, digits, '-' or '_' (it names the report folder)")
    start = data.get("start")
    if not isinstance(start, dt.date) or isinstance(start, dt.datetime):
        raise ScenarioError(f"{source}: start must be a date like 2026-03-02, got {start!r}")
    days = _int(f"{source}: days", data.get("days"), 1)
    history = _int(f"{source}: history_days", data.get("history_days", 14), 1)
    rows = _int(f"{source}: rows_per_day", data.get("rows_per_day", 10_000), 100)
    seed = _int(f"{source}: seed", data.get("seed", 0), 0)
    settings = data.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ScenarioError(f"{source}: settings must be a mapping of config sections")
    raw_events = data.get("events") or []
    if not isinstance(raw_events, list):
        raise ScenarioError(f"{source}: events must be a list")
    events = tuple(sorted((_event(f"{source}: events[{i}]", raw, days) for i, raw in enumerate(raw_events)),
                          key=lambda e: (e.day, e.kind)))  # fmt: skip
    for day in range(days):
        active = [e for e in events if e.in_effect(day)]
        for side in (True, False):
            same = [e for e in active if e.label_side == side]
            if len(same) > 1:
                kinds = "label-side (concept/prior)" if side else "covariate"
                raise ScenarioError(f"{source}: two {kinds} drifts are in effect on day {day}; end one with `until`")
    weekly = data.get("weekly_training")
    if weekly is not None and weekly not in WEEKDAYS:
        raise ScenarioError(f"{source}: weekly_training must be a weekday ({', '.join(WEEKDAYS)}), got {weekly!r}")
    recovery = data.get("recovery") or {}
    expect = data.get("expect") or {}
    try:
        recovery_spec = Recovery(**recovery)
        expect_spec = Expectations(**expect)
    except TypeError as exc:
        raise ScenarioError(f"{source}: recovery/expect: {exc}") from None
    return Scenario(name, str(data.get("description") or "").strip(), start, days, history, rows, seed, events,
                    dict(settings), recovery_spec, expect_spec, source,
                    None if weekly is None else WEEKDAYS.index(weekly))  # fmt: skip


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file (relative paths resolve from the repository root, then the current folder)."""
    candidate = Path(path)
    if not candidate.is_absolute() and not candidate.exists() and (PROJECT_ROOT / candidate).exists():
        candidate = PROJECT_ROOT / candidate
    if not candidate.is_file():
        known = ", ".join(sorted(p.name for p in SCENARIOS_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"scenario {path} does not exist (shipped: {known} in {SCENARIOS_DIR})")
    try:
        data = yaml.safe_load(candidate.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{candidate}: not valid YAML: {exc}") from None
    return parse_scenario(data, str(candidate))
