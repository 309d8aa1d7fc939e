"""`mlops simulate`: weeks of operation measured, as an operator would read the record.

One run of the short scenario (four weeks of 8,000-row days: a covariate shift, then a full concept drift, a
corrupted day and a weak model; about 1.5 minutes on 2 cores) backs the claims the README makes about the
default scenario; the rest checks the scenario file, the composed drifts and the record's definitions on
hand-made days.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.cli import main
from mlops.config import load_settings
from mlops.data.generator import generate_day
from mlops.data.lake import Lake
from mlops.simulation import DEFAULT_SCENARIO, SCENARIOS_DIR, ScenarioError, load_scenario, simulate
from mlops.simulation.engine import HOME_MARKER, DayRecord, Simulation, Training, prepare_home
from mlops.simulation.report import render_html
from mlops.simulation.scenario import parse_scenario
from mlops.simulation.summary import clean_days, drift_events, format_table
from mlops.simulation.world import World

SHORT = SCENARIOS_DIR / "short.yaml"
BASE: dict[str, Any] = {"name": "t", "start": dt.date(2026, 3, 2), "days": 10, "history_days": 6, "rows_per_day": 500}


def _scenario(**changes: Any) -> Any:
    return parse_scenario({**BASE, **changes})


# -- the run ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("simulation")
    return simulate(load_scenario(SHORT), folder / "home", folder / "report")


def test_short_scenario_detects_both_drifts_in_time(short_run: tuple[dict[str, Any], Path]) -> None:
    summary, _ = short_run
    events = {e["kind"]: e for e in summary["drift_events"]}
    covariate, concept = events["covariate"], events["concept"]
    # The covariate shift shows in the inputs the day it lands; the concept drift only once its labels arrive.
    assert covariate["first_evidence"] == covariate["start"]
    assert concept["first_evidence"] == str(dt.date.fromisoformat(concept["start"]) + dt.timedelta(days=3))
    assert covariate["detection_days"] is not None and covariate["detection_days"] <= 2, covariate
    assert concept["detection_days"] is not None and concept["detection_days"] <= 2, concept
    assert "AUC-PR" in concept["detection_reason"]


def test_short_scenario_has_no_false_trigger_and_retraining_pays(short_run: tuple[dict[str, Any], Path]) -> None:
    summary, _ = short_run
    assert summary["clean_days"] >= 5
    assert summary["false_triggers"] == []
    means, gaps = summary["auc_pr_mean"], summary["gap_to_oracle"]
    assert abs(gaps["champion"]) < abs(gaps["frozen"]), means
    assert all(check["passed"] for check in summary["checks"]), summary["checks"]


def test_short_scenario_records_quarantine_weak_model_and_recovery(short_run: tuple[dict[str, Any], Path]) -> None:
    summary, report = short_run
    assert [q["date"] for q in summary["quarantines"]] == ["2026-03-10"]
    assert "amount" in summary["quarantines"][0]["reason"]
    weak = [t for t in summary["trainings"]["runs"] if t["kind"] == "bad_model"]
    assert len(weak) == 1 and not weak[0]["promoted"] and weak[0]["passed"] is False
    assert summary["trainings"]["promoted"] >= 1
    for event in summary["drift_events"]:  # measured, whatever it is: a number of days or "not by <day>"
        assert "recovery_days" in event and "recovered_on" in event
    # Labels are judged when they arrive: the last delay_days days have no AUC-PR yet.
    assert all(not day["auc_pr"] for day in summary["days"][-3:])
    assert json.loads((report.parent / "summary.json").read_text())["drift_events"] == summary["drift_events"]
    page = report.read_text()
    assert page.count("<svg") == 3 and "<script" not in page and "http" not in page.replace("http://www.w3.org", "")
    assert "operating record: short" in format_table(summary)


# -- scenarios ----------------------------------------------------------------------------------------
def test_shipped_scenarios_load() -> None:
    default = load_scenario(DEFAULT_SCENARIO)
    assert default.days == 60 and {e.kind for e in default.drift_events} == {"covariate", "concept"}
    assert load_scenario("include/scenarios/short.yaml").name == "short"
    assert default.with_days(5).days == 5


def test_a_scenario_can_add_the_weekly_retraining_on_its_weekday(tmp_path: Path) -> None:
    weekly = _scenario(days=21, weekly_training="monday")  # 2026-03-02 is a Monday
    assert [day for day in range(21) if weekly.scheduled_training(day)] == [0, 7, 14]
    assert weekly.with_days(8).scheduled_training(7)
    assert not any(_scenario(days=21).scheduled_training(day) for day in range(21))  # default: drift policy only
    # The day's cycle plans it as the weekly run: on an empty lake, a skip that names the schedule.
    simulation = Simulation(weekly, tmp_path / "home")
    try:
        monday, tuesday = DayRecord(0, "2026-03-02"), DayRecord(1, "2026-03-03")
        simulation.train_on_schedule(0, monday)
        simulation.train_on_schedule(1, tuesday)
    finally:
        simulation.pool.shutdown()
    assert [t.kind for t in monday.trainings] == ["scheduled"] and not tuesday.trainings
    assert "weekly schedule" in (monday.trainings[0].skipped or "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"events": [{"day": 1, "kind": "earthquake"}]}, "kind must be one of"),
        ({"events": [{"day": 1, "kind": "corrupt", "fault": "bad_luck"}]}, "fault"),
        ({"events": [{"day": 1, "kind": "covariate", "features": ["nope"]}]}, "unknown drift feature"),
        ({"events": [{"day": 1, "kind": "concept", "colour": "red"}]}, "unknown key"),
        ({"events": [{"day": 1, "kind": "concept"}, {"day": 3, "kind": "prior"}]}, "two label-side"),
        ({"events": [{"day": 1, "kind": "concept", "until": 40}]}, "past the scenario"),
        ({"days": 0}, "days"),
        ({"name": "../x"}, "name"),
        ({"surprise": 1}, "unknown key"),
        ({"weekly_training": "someday"}, "weekly_training must be a weekday"),
    ],
)
def test_a_malformed_scenario_names_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        _scenario(**change)


def test_mlops_simulate_refuses_a_bad_scenario_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstart: 2026-03-02\ndays: 5\nevents: [{day: 1, kind: meteor}]\n")
    assert main(["simulate", "--scenario", str(bad), "--home", str(tmp_path / "h")]) == 2
    assert "kind must be one of" in capsys.readouterr().err


def test_a_fresh_home_never_wipes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not made by `mlops simulate`"):
        prepare_home(precious)
    assert (precious / "notes.txt").exists()
    home = prepare_home(tmp_path / "sim")
    (home / "lake").mkdir()
    assert prepare_home(home) == home and not (home / "lake").exists() and (home / HOME_MARKER).exists()


def test_late_labels_arrive_late_and_drifts_compose(tmp_path: Path) -> None:
    scenario = _scenario(events=[
        {"day": 2, "kind": "late_labels", "extra_days": 4},
        {"day": 3, "kind": "covariate", "features": ["amount"], "magnitude": 2.0},
        {"day": 5, "kind": "concept"},
    ])  # fmt: skip
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    world = World(scenario, settings, Lake.from_settings(settings))
    assert world.labels_due(5) == [] and world.labels_due(9) == [2, 6]
    assert world.labels_due(6) == [3]
    covariate, label = scenario.drifts(6)
    assert covariate is not None and covariate.kind == "covariate" and label is not None and label.kind == "concept"
    # Both in effect: the shifted inputs, labelled by the drifted concept (not the baseline one).
    day = scenario.date(6)
    composed = world.labels(6).column("is_fraud").to_numpy()
    shifted_base = generate_day(day, 500, 0, covariate)[1].column("is_fraud").to_numpy()
    assert not np.array_equal(composed, shifted_base)
    assert np.array_equal(world.labels(6).column("transaction_id"), generate_day(day, 500, 0)[1]["transaction_id"])
    assert np.array_equal(composed, world.labels(6).column("is_fraud").to_numpy())  # seeded: the same every time


# -- the record's definitions ---------------------------------------------------------------------------
def _day(day: int, auc: tuple[float, float, float] | None, trigger: str | None = None) -> DayRecord:
    record = DayRecord(day, str(dt.date(2026, 3, 2) + dt.timedelta(days=day)), validated=True)
    if auc is not None:
        record.auc_pr = dict(zip(("champion", "frozen", "oracle"), auc, strict=True))
    if trigger is not None:
        record.drift = {"triggered": True, "breached": True, "reason": trigger, "breached_features":
                        ["amount"] if trigger == "psi" else [], "score_breached": False,
                        "performance_breached": trigger == "auc"}  # fmt: skip
        record.trainings.append(Training(day, "drift", trigger, 1.0, "2", True, True))
    return record


def test_detection_recovery_and_false_triggers_follow_their_definitions() -> None:
    scenario = _scenario(events=[{"day": 2, "kind": "covariate", "features": ["amount"], "until": 4},
                                 {"day": 5, "kind": "concept"}], recovery={"margin": 0.05, "days": 2})  # fmt: skip
    good, behind = (0.50, 0.50, 0.52), (0.10, 0.10, 0.30)
    records = [_day(0, good), _day(1, good, "psi"), _day(2, good), _day(3, good, "psi"), _day(4, good),
               _day(5, behind), _day(6, behind), _day(7, behind, "auc"), _day(8, good, "psi"),
               _day(9, good)]  # fmt: skip
    covariate, concept = drift_events(scenario, records, delay_days=3)
    assert (covariate["detected_on"], covariate["detection_days"], covariate["recovery_days"]) == ("2026-03-05", 1, 0)
    # The concept drift's first labels arrive on day 8: the AUC-PR trigger of day 7 cannot be its detection.
    assert concept["first_evidence"] == "2026-03-10" and concept["detected_on"] is None
    recovery = (concept["fell_behind"], concept["recovered_on"], concept["recovery_days"])
    assert recovery == ("2026-03-07", "2026-03-10", 3)
    assert clean_days(scenario, 3) == [0, 1, 4, 5, 6, 7]  # day 1's trigger is false; day 7 precedes any evidence


def test_the_report_is_self_contained_html() -> None:
    scenario = _scenario(events=[{"day": 2, "kind": "covariate", "features": ["amount"]}])
    records = [_day(d, (0.4, 0.3, 0.45), "psi" if d == 3 else None) for d in range(10)]
    summary = {
        "scenario": {"name": "t", "description": "d <b>", "path": "p", "start": "2026-03-02", "end": "2026-03-11",
                     "days": 10, "history_days": 6, "rows_per_day": 500, "seed": 0, "settings": {},
                     "label_delay_days": 3, "recovery": {"margin": 0.05, "days": 3}, "events": [],
                     "policy": {"drift": {"psi_threshold": 0.2, "window_days": 4}}},
        "run": {"home": "h", "seconds": 1.0, "timings": {"validate": 1.0}, "initial_training":
                {"kind": "initial", "version": "1", "promoted": True, "passed": True, "error": None, "seconds": 1.0,
                 "reason": "r", "summary": "s"}},
        "drift_events": drift_events(scenario, records, 3), "clean_days": 2, "false_triggers": [],
        "trainings": {"count": 1, "drift_triggered": 1, "promoted": 1, "rejected": 0, "failed": 0, "seconds": 1.0,
                      "runs": []},
        "quarantines": [], "late_labels": [], "labelled_days": 10,
        "auc_pr_mean": {"champion": 0.4, "frozen": 0.3, "oracle": 0.45},
        "gap_to_oracle": {"champion": 0.05, "frozen": 0.15, "oracle": 0.0}, "checks": [], "passed": True,
        "days": [{**r.__dict__, "trainings": [t.__dict__ for t in r.trainings],
                  "drift": None if r.drift is None else {**r.drift, "features": {"amount": 0.3}, "score_psi": 0.1}}
                 for r in records],
    }  # fmt: skip
    page = render_html(summary)
    assert page.startswith("<!doctype html>") and page.count("<svg") == 3
    assert "d &lt;b&gt;" in page and "<script" not in page


def test_the_readme_record_is_the_committed_summary_of_the_default_scenario(tmp_path: Path) -> None:
    """The README's operating record is generated from docs/simulation/default-summary.json, never typed."""
    from mlops.config import PROJECT_ROOT
    from mlops.simulation.summary import readme_block, record_file, update_readme

    readme = PROJECT_ROOT / "README.md"
    source = record_file(readme, "default")
    summary = json.loads(source.read_text())
    assert summary["scenario"]["name"] == "default" and "home" not in summary["run"]
    assert readme_block(summary, "docs/simulation/default-summary.json") in readme.read_text()
    # Regenerating rewrites only the block, from the summary it stores.
    copy = tmp_path / "README.md"
    copy.write_text("intro\n<!-- simulation-record:start -->\nstale figures\n<!-- simulation-record:end -->\nrest\n")
    stored = update_readme(copy, {**summary, "run": {**summary["run"], "home": "/somewhere"}})
    assert json.loads(stored.read_text()) == summary
    assert copy.read_text() == f"intro\n{readme_block(summary, 'docs/simulation/default-summary.json')}\nrest\n"
