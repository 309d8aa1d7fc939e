"""``mlops simulate``: weeks of daily operation in minutes, measured against two references.

The daily cycle (land -> validate -> score -> drift check -> training when triggered -> gates -> promotion)
runs over N simulated days with the step functions the DAGs call, without Airflow, in a fresh MLOPS_HOME.
What happens to the world is a scenario (``include/scenarios/*.yaml``, see :mod:`.scenario`). Every day is
also scored by the day-0 model never retrained (frozen) and by a model refitted every day (oracle), and
judged when its labels arrive. The result is an operating record: detection time per drift event, recovery
time, false triggers, trainings and their time, quarantines (:mod:`.summary`), written as ``summary.json``
and a self-contained ``report.html`` (:mod:`.report`).

Modules: :mod:`.scenario` (the YAML), :mod:`.world` (the simulated producer), :mod:`.engine` (the daily
cycle and the references), :mod:`.summary` (the record), :mod:`.report` (the page).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.simulation.scenario import DEFAULT_SCENARIO, SCENARIOS_DIR, Scenario, ScenarioError, load_scenario

__all__ = ["DEFAULT_SCENARIO", "SCENARIOS_DIR", "Scenario", "ScenarioError", "load_scenario", "simulate"]


def simulate(scenario: Scenario, home: Path, report_dir: Path,
             say: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Path]:  # fmt: skip
    """Run ``scenario`` in ``home`` (wiped first if an earlier simulation made it); write the report.

    Returns the summary (what ``summary.json`` holds) and the path of ``report.html``.
    """
    from mlops.simulation.engine import Simulation
    from mlops.simulation.report import write_report
    from mlops.simulation.summary import summarize

    result = Simulation(scenario, home, say).run()
    summary = summarize(result)
    return summary, write_report(summary, report_dir)
