"""The run policy lives in ``mlops.plans``: the DAGs, the CLI and ``mlops simulate`` call the same plan functions.

Checked on the source with ``ast`` (nothing imported): a DAG module, the simulation or the CLI that makes a
decision itself (imports the backlog, champion or window helpers the plan functions wrap) fails here, and
so does one that does not call its plan function. Each checker also runs on a planted violation.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from mlops.config import PROJECT_ROOT, Settings
from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.plans import Skip, plan_drift, plan_scoring, plan_training

PACKAGE = PROJECT_ROOT / "include" / "mlops"
DAGS = PACKAGE / "airflow" / "dags"
#: The helpers a plan function wraps: which days wait, whether a champion exists, which window trains.
DECISIONS = frozenset({"pending_days", "unscored_days", "unchecked_days", "champion_trained_days", "alias_version",
                       "concept_change_start",
                       "pin_champion", "NoChampion", "resolve_snapshot", "NoTrainingData", "check_day"})  # fmt: skip
#: Who must call which plan function, and which decision helpers it may still import for other reasons.
CALLERS = {
    DAGS / "training.py": ({"plan_training"}, frozenset({"NoTrainingData"})),  # the trainer finds too few positives
    DAGS / "scoring.py": ({"plan_scoring"}, frozenset()),
    DAGS / "drift.py": ({"plan_drift"}, frozenset()),
    PACKAGE / "simulation" / "engine.py": (
        {"plan_training", "plan_scoring", "plan_drift"},
        # the oracle's window (not a decision of the platform) and a trainer that finds too few positives
        frozenset({"resolve_snapshot", "NoTrainingData"}),
    ),
    PACKAGE / "cli.py": ({"plan_training"}, frozenset({"NoTrainingData", "check_day"})),
}


def imported_names(source: str) -> set[str]:
    """Every name imported from an ``mlops`` module, at any level of the file."""
    return {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlops")
        for alias in node.names
    }


def used_names(source: str) -> set[str]:
    """Names read anywhere (called, or handed to a caller such as ``follow_plan(plan_drift, ...)``)."""
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)}  # fmt: skip


def violations(source: str, plans: set[str], allowed: frozenset[str]) -> list[str]:
    imported, used = imported_names(source), used_names(source)
    found = [f"decides itself with {name}" for name in sorted((imported & DECISIONS) - allowed)]
    found += [f"never calls {name}" for name in sorted(plans - (imported & used))]
    return found


@pytest.mark.parametrize("path", sorted(CALLERS), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_dags_cli_and_simulation_decide_through_the_plan_functions(path: Path) -> None:
    plans, allowed = CALLERS[path]
    assert violations(path.read_text(), plans, allowed) == []


def test_the_checker_finds_a_planted_decision_and_a_missing_plan_call() -> None:
    planted = (
        "def check(settings, lake, days):\n"
        "    from mlops.monitoring import unchecked_days\n"
        "    from mlops.plans import plan_drift\n"
        "    return unchecked_days(lake, 'cards', days)\n"
    )
    assert violations(planted, {"plan_drift"}, frozenset()) == [
        "decides itself with unchecked_days", "never calls plan_drift"]  # fmt: skip


# --- the plans themselves, on a lake without a champion ------------------------------------------------------
def _lake_with(lake: Lake, validated: list[dt.date], scored: list[dt.date]) -> None:
    for day in validated:
        lake.write_json(lake.marker("raw", day, VALIDATED), {"rows": 1})
    for day in scored:
        lake.touch(lake.marker("scores", day, SUCCESS))


def test_without_a_champion_scoring_and_drift_skip_naming_the_days_up_to_the_run(settings: Settings,
                                                                                 lake: Lake) -> None:  # fmt: skip
    d = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(5)]
    _lake_with(lake, d, d[:1])

    scoring = plan_scoring(settings, lake, [d[2]], up_to=d[2])
    assert isinstance(scoring, Skip)
    assert scoring.reason.startswith(f"no champion yet: 2 validated day(s) up to dt={d[2]} wait ({d[1]}..{d[2]})")
    drift = plan_drift(settings, lake, [d[2]], up_to=d[2])
    assert isinstance(drift, Skip) and drift.reason.startswith("no champion yet")


def test_training_skips_while_too_few_labelled_days_exist(settings: Settings, lake: Lake) -> None:
    _lake_with(lake, [dt.date(2026, 3, 1)], [])
    plan = plan_training(settings, as_of=dt.date(2026, 3, 1), run_kind="manual", reason="first try")
    assert isinstance(plan, Skip) and plan.reason.startswith("not enough labelled data to train yet (first try)")
    scheduled = plan_training(settings, as_of=dt.date(2026, 3, 1), run_kind="scheduled", reason="ignored")
    assert isinstance(scheduled, Skip) and "(weekly schedule)" in scheduled.reason
