"""The operating record of a run, as data: detection and recovery per drift event, false triggers, trainings.

Definitions (also printed in the report):

* **first evidence** of a drift event: its first day for a covariate shift (the inputs change as they land);
  for concept and prior drift, the first day drifted labels arrive (its first day + the label delay).
* **detection time**: days from first evidence to the first trigger whose evidence matches the kind
  (breached features or score PSI for a covariate shift, the AUC-PR drop for concept and prior drift).
* **recovery time**: days from the event's start until the champion is back within ``recovery.margin``
  AUC-PR of the oracle on ``recovery.days`` labelled days in a row, after it first fell behind by more
  than that; "never fell behind" when it did not before the next drift event or the end.
* **triggers of an event**: triggers while it is in effect whose evidence matches its kind; after the first
  (the detection) they are re-triggers, with the trainings they ran.
* **clean stretch**: days on which no drift event with evidence is in effect; a trigger there is false.
* **AUC-PR** of a day: the model that scored that day on its rows, once their labels arrived.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlops.simulation.engine import MODELS, DayRecord, SimulationResult
from mlops.simulation.scenario import Event, Scenario


def first_evidence(event: Event, scenario: Scenario, delay_days: int) -> int:
    """The day a drift event can first be seen in the data the monitor reads."""
    if not event.label_side:
        return event.day
    end = event.until if event.until is not None else scenario.days
    return min(d + scenario.labels_delay(d, delay_days) for d in range(event.day, end))


def _matches(event: Event, drift: dict[str, Any]) -> bool:
    """Whether a trigger's evidence is the kind of evidence this event produces."""
    if event.label_side:
        return bool(drift["performance_breached"])
    return bool(drift["breached_features"]) or bool(drift["score_breached"])


def _recovery(event: Event, scenario: Scenario, records: list[DayRecord]) -> dict[str, Any]:
    later = [e.day for e in scenario.drift_events if e.day > event.day]
    stop = min([event.until or scenario.days, *later])
    margin, needed = scenario.recovery.margin, scenario.recovery.days
    days = [r for r in records[event.day : stop] if "champion" in r.auc_pr and "oracle" in r.auc_pr]
    within = [r.auc_pr["champion"] >= r.auc_pr["oracle"] - margin for r in days]
    gaps = [r.auc_pr["oracle"] - r.auc_pr["champion"] for r in days]
    outcome: dict[str, Any] = {"recovery_until": scenario.date(stop - 1).isoformat(), "labelled_days": len(days),
                               "worst_gap": max(gaps) if gaps else None, "fell_behind": None,
                               "recovered_on": None, "recovery_days": None}  # fmt: skip
    if False not in within:
        outcome["recovery_days"] = 0
        return outcome
    fell = within.index(False)
    outcome["fell_behind"] = days[fell].date
    for i in range(fell + 1, len(days) - needed + 1):
        if all(within[i : i + needed]):
            outcome["recovered_on"] = days[i].date
            outcome["recovery_days"] = days[i].day - event.day
            break
    return outcome


def drift_events(scenario: Scenario, records: list[DayRecord], delay_days: int) -> list[dict[str, Any]]:
    """Detection and recovery of every drift event, with the triggers (and trainings) its evidence caused."""
    outcomes = []
    for event in scenario.drift_events:
        evidence = first_evidence(event, scenario, delay_days)
        end = event.until if event.until is not None else scenario.days
        caused = [r for r in records[evidence:end] if r.triggered and r.drift and _matches(event, r.drift)]
        trainings = [t for r in caused for t in r.trainings if t.kind == "drift" and t.skipped is None]
        detected = caused[0] if caused else None
        outcomes.append({
            "kind": event.kind,
            "what": event.describe(),
            "start": scenario.date(event.day).isoformat(),
            "until": scenario.date(end - 1).isoformat(),
            "first_evidence": scenario.date(evidence).isoformat(),
            "detected_on": detected.date if detected else None,
            "detection_days": detected.day - evidence if detected else None,
            "detection_days_from_start": detected.day - event.day if detected else None,
            "detection_reason": detected.drift["reason"] if detected and detected.drift else None,
            "label_side": event.label_side,
            "triggers": [r.date for r in caused],
            "trainings": len(trainings),
            "promotions": sum(t.promoted for t in trainings),
            **_recovery(event, scenario, records),
        })  # fmt: skip
    return outcomes


def clean_days(scenario: Scenario, delay_days: int) -> list[int]:
    """Days with no drift event in effect whose evidence could already be seen."""
    spans = [(first_evidence(e, scenario, delay_days), e.until or scenario.days) for e in scenario.drift_events]
    return [d for d in range(scenario.days) if not any(start <= d < end for start, end in spans)]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(result: SimulationResult) -> dict[str, Any]:
    """Everything the table, the report and the test read, JSON-ready."""
    scenario, records = result.scenario, result.records
    delay = result.settings.dataset.label.delay_days
    events = drift_events(scenario, records, delay)
    clean = clean_days(scenario, delay)
    false_triggers = [records[d].date for d in clean if records[d].triggered]
    runs = [t for r in records for t in r.trainings]
    trainings = [t for t in runs if t.skipped is None]
    skipped = [t for t in runs if t.skipped is not None]
    policy = [t for t in trainings if t.kind == "drift"]
    scheduled = [t for t in trainings if t.kind == "scheduled"]
    bad = [t for t in trainings if t.kind == "bad_model"]
    labelled = [r for r in records if all(m in r.auc_pr for m in MODELS)]
    means = {m: _mean([r.auc_pr[m] for r in labelled]) for m in MODELS}
    gaps = {m: None if means[m] is None or means["oracle"] is None else means["oracle"] - means[m] for m in MODELS}

    expect = scenario.expect
    checks = []
    if expect.max_detection_days is not None:
        for event in events:
            ok = event["detection_days"] is not None and event["detection_days"] <= expect.max_detection_days
            took = "not detected" if event["detection_days"] is None else f"{event['detection_days']} d"
            checks.append({"check": f"{event['what']} detected within {expect.max_detection_days} data days "
                                    "of its first evidence", "passed": ok, "measured": took})  # fmt: skip
    if expect.max_false_triggers is not None:
        checks.append({"check": f"at most {expect.max_false_triggers} false trigger(s) on the clean stretches",
                       "passed": len(false_triggers) <= expect.max_false_triggers,
                       "measured": f"{len(false_triggers)} on {len(clean)} clean days"})  # fmt: skip
    if expect.champion_closer_than_frozen and gaps["champion"] is not None and gaps["frozen"] is not None:
        checks.append({"check": "champion's mean AUC-PR closer to the oracle's than the frozen model's",
                       "passed": abs(gaps["champion"]) < abs(gaps["frozen"]),
                       "measured": f"gap {gaps['champion']:+.3f} vs {gaps['frozen']:+.3f}"})  # fmt: skip
    if expect.max_trainings is not None:
        checks.append({"check": f"at most {expect.max_trainings} trainings in the {scenario.days} days",
                       "passed": len(trainings) <= expect.max_trainings,
                       "measured": f"{len(trainings)} (+{len(skipped)} run(s) with nothing to train)"})  # fmt: skip
    for event in events:
        if expect.max_covariate_triggers is not None and not event["label_side"]:
            checks.append({"check": f"{event['what']}: at most {expect.max_covariate_triggers} trigger(s)",
                           "passed": len(event["triggers"]) <= expect.max_covariate_triggers,
                           "measured": f"{len(event['triggers'])}"})  # fmt: skip
        if expect.max_recovery_days_after_evidence is not None and event["label_side"]:
            after = recovery_after_evidence(event)
            checks.append({"check": f"{event['what']}: recovered within {expect.max_recovery_days_after_evidence} "
                                    "days of its first labels",
                           "passed": after is not None and after <= expect.max_recovery_days_after_evidence,
                           "measured": "not recovered" if after is None else f"{after} d"})  # fmt: skip
    if expect.min_oracle_ratio is not None and means["champion"] is not None and means["oracle"]:
        ratio = means["champion"] / means["oracle"]
        checks.append({"check": f"champion's mean AUC-PR at least {expect.min_oracle_ratio:.2f} of the oracle's",
                       "passed": ratio >= expect.min_oracle_ratio, "measured": f"{ratio:.3f}"})  # fmt: skip
    for training in bad:
        verdict = "promoted" if training.promoted else "rejected"
        checks.append({"check": f"the weak model of {scenario.date(training.day)} is rejected by the gates",
                       "passed": not training.promoted and training.error is None,
                       "measured": f"v{training.version}: {verdict}"})  # fmt: skip

    late = [{"date": r.date, "due": scenario.date(r.day + delay).isoformat(),
             "arrived": scenario.date(r.labels_known_on).isoformat() if r.labels_known_on is not None else None}
            for r in records if scenario.events_on(r.day, "late_labels")]  # fmt: skip
    return {
        "scenario": {
            "name": scenario.name, "description": scenario.description, "path": scenario.path,
            "start": scenario.start.isoformat(), "end": scenario.date(scenario.days - 1).isoformat(),
            "days": scenario.days, "history_days": scenario.history_days, "rows_per_day": scenario.rows_per_day,
            "seed": scenario.seed, "settings": scenario.settings, "label_delay_days": delay,
            "recovery": asdict(scenario.recovery), "events": [asdict(e) for e in scenario.events],
            "policy": {"drift": result.settings.drift.model_dump(), "training": result.settings.training.model_dump(),
                       "promotion": result.settings.promotion.policy},
        },
        "run": {"home": str(result.home), "seconds": result.seconds, "timings": result.timings,
                "frozen_version": result.frozen_version, "initial_training": asdict(result.initial)},
        "drift_events": events,
        "clean_days": len(clean),
        "false_triggers": false_triggers,
        "trainings": {
            "count": len(trainings), "drift_triggered": len(policy), "scheduled": len(scheduled),
            "promoted": sum(t.promoted for t in trainings),
            "skipped": len(skipped),
            "rejected": sum(t.passed is False for t in trainings),
            "failed": sum(t.error is not None for t in trainings),
            "seconds": sum(t.seconds for t in trainings),
            "runs": [asdict(t) | {"date": scenario.date(t.day).isoformat()} for t in runs],
        },
        "quarantines": [{"date": r.date, "reason": r.quarantine} for r in records if r.quarantine],
        "late_labels": late,
        "labelled_days": len(labelled),
        "auc_pr_mean": means,
        "gap_to_oracle": gaps,
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "days": [asdict(r) for r in records],
    }  # fmt: skip


def recovery_after_evidence(event: dict[str, Any]) -> int | None:
    """Days from an event's first evidence (its first labels, for concept and prior drift) to recovery; 0 when
    the champion never fell behind; None when it did not recover."""
    if event["recovery_days"] == 0:
        return 0
    if event["recovered_on"] is None:
        return None
    return max(0, (dt.date.fromisoformat(event["recovered_on"]) - dt.date.fromisoformat(event["first_evidence"])).days)


def recovery_text(event: dict[str, Any]) -> str:
    """How a drift event ended for the champion, in words (the report and the printed table say the same)."""
    if event["recovery_days"] == 0:
        return "never fell behind"
    return event["recovered_on"] or f"not by {event['recovery_until']}"


def _days(value: int | None) -> str:
    return "-" if value is None else f"{value} d"


def format_table(summary: dict[str, Any]) -> str:
    """The operating record as text: what ``mlops simulate`` and ``make demo`` print."""
    s = summary["scenario"]
    seconds = summary["run"]["seconds"]
    lines = [f"operating record: {s['name']}, {s['days']} days x {s['rows_per_day']:,} rows ({s['start']} .. "
             f"{s['end']}), labels {s['label_delay_days']} days late, simulated in {seconds:.0f} s"]  # fmt: skip
    header = (f"{'drift event':<50} {'start':<10}  {'evidence':<10}  {'trigger':<10}  {'detect':>6}  "
              f"{'recovered':<18} {'recovery':>8}  {'triggers':>8}")  # fmt: skip
    lines += [header, "-" * len(header)]
    for e in summary["drift_events"]:
        recovered = recovery_text(e)
        lines.append(f"{e['what'][:50]:<50} {e['start']:<10}  {e['first_evidence']:<10}  {e['detected_on'] or '-':<10}"
                     f"  {_days(e['detection_days']):>6}  {recovered:<18} {_days(e['recovery_days']):>8}  "
                     f"{len(e['triggers']):>8}")  # fmt: skip
    t = summary["trainings"]
    means, gaps = summary["auc_pr_mean"], summary["gap_to_oracle"]
    false = summary["false_triggers"]
    lines.append(f"false triggers on clean stretches: {len(false)} ({summary['clean_days']} clean days)"
                 + (f": {', '.join(false)}" if false else ""))  # fmt: skip
    weekly = f", {t['scheduled']} scheduled" if t.get("scheduled") else ""
    lines.append(f"trainings after day 0: {t['count']} ({t['drift_triggered']} drift-triggered{weekly}; "
                 f"{t['promoted']} promoted, {t['rejected']} rejected by the gates, {t['failed']} without data), "
                 f"{t['seconds']:.0f} s in total")  # fmt: skip
    quarantines = summary["quarantines"]
    lines.append(f"quarantines: {len(quarantines)}"
                 + "".join(f"; {q['date']}: {q['reason'].split(' (file ')[0][:100]}" for q in quarantines))  # fmt: skip
    for late in summary["late_labels"]:
        lines.append(f"late labels: {late['date']} due {late['due']}, arrived {late['arrived']}")
    if means["champion"] is not None:
        lines.append(f"mean AUC-PR over {summary['labelled_days']} labelled days: champion {means['champion']:.3f}, "
                     f"frozen {means['frozen']:.3f}, oracle {means['oracle']:.3f} (behind the oracle: champion "
                     f"{gaps['champion']:+.3f}, frozen {gaps['frozen']:+.3f})")  # fmt: skip
    for check in summary["checks"]:
        lines.append(f"{'PASS' if check['passed'] else 'FAIL'}  {check['check']} ({check['measured']})")
    return "\n".join(lines)


#: Where the README keeps the record of the default scenario, between these two comments.
README_START = "<!-- simulation-record:start (generated by `mlops simulate --readme README.md` from {source}) -->"
README_END = "<!-- simulation-record:end -->"


def record_file(readme: Path, scenario: str) -> Path:
    """The committed summary of ``scenario`` next to the README: ``docs/simulation/<scenario>-summary.json``."""
    return readme.parent / "docs" / "simulation" / f"{scenario}-summary.json"


def readme_block(summary: dict[str, Any], source: str) -> str:
    """The README's operating record: the markers around :func:`format_table` of ``summary``."""
    return f"{README_START.format(source=source)}\n```\n{format_table(summary)}\n```\n{README_END}"


def update_readme(readme: Path, summary: dict[str, Any]) -> Path:
    """Store ``summary`` as the scenario's record file and rewrite the README's block from it.

    The figures of the README's record are never typed by hand: a test checks the block against the file.
    Raises ``ValueError`` when the README has no markers.
    """
    text = readme.read_text()
    start, end = text.find("<!-- simulation-record:start"), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no simulation-record markers ({README_START.split(' (')[0]} ... {README_END})")
    path = record_file(readme, summary["scenario"]["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    run = {key: value for key, value in summary["run"].items() if key != "home"}  # a path of this machine only
    summary = {**summary, "run": run}
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    block = readme_block(summary, path.relative_to(readme.parent).as_posix())
    readme.write_text(text[:start] + block + text[end + len(README_END) :])
    return path
