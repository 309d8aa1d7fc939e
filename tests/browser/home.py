"""A MLOPS_HOME with a history worth looking at, built with the same steps the DAGs run (no scheduler).

* 10 days landed; one corrupted on purpose and quarantined, the others validated and DVC-versioned;
* v1 trained and promoted (no champion yet), v2 trained and promoted over it (same data: its gates pass),
  v3 trained with a weak configuration and an improvement requirement: rejected by its gates;
* a rollback of champion v2 -> v1;
* a week of scored days after the training cooldown, covariate drift from the fourth, each checked for
  drift (history, trigger decisions; the Evidently report on the last two days only, to save time).

    .venv/bin/python -m tests.browser.home /tmp/mlops-ui-home    # then MLOPS_HOME=... make up
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from mlops.config import Settings, load_settings
from mlops.data.faults import inject_fault
from mlops.data.generator import DriftSpec
from mlops.data.lake import Lake
from mlops.data.landing import land_days
from mlops.validation import ValidationFailed, validate_and_version

START = dt.date(2026, 10, 1)
TRAIN_DAYS = 10
ROWS = 6_000
SEED = 11
CORRUPT = START + dt.timedelta(days=6)
AS_OF = START + dt.timedelta(days=TRAIN_DAYS - 1)
WEEK = 7
DRIFT_FROM = 3  # the fourth day of the monitored week


def _step(text: str, started: float) -> None:
    print(f"  [{time.monotonic() - started:6.1f} s] {text}", flush=True)


def _settings(home: Path, **env: str) -> Settings:
    return load_settings(env={"MLOPS_HOME": str(home), **env})


def build(home: Path) -> dict[str, object]:
    """Build the home (a few minutes on 2 cores); returns what the tests check against."""
    from mlops import models
    from mlops.monitoring import check_day
    from mlops.registry import Registry
    from mlops.scoring import score_day
    from mlops.training.pipeline import run_all

    started = time.monotonic()
    settings = _settings(home)
    lake = Lake.from_settings(settings)
    land_days(settings, START, TRAIN_DAYS, ROWS, SEED)
    inject_fault(lake, CORRUPT, "out_of_range", settings.dataset.id_column)
    for offset in range(TRAIN_DAYS):
        day = START + dt.timedelta(days=offset)
        try:
            validate_and_version(settings, day)
        except ValidationFailed:
            assert day == CORRUPT, f"{day} was quarantined"
    _step(f"{TRAIN_DAYS} days landed and validated ({CORRUPT} quarantined)", started)

    def trigger(reason: str, run: str) -> dict[str, str]:
        return {"reason": reason, "airflow_dag_id": "continuous_training", "airflow_run_id": run}

    first = run_all(settings, AS_OF, trigger("first training", "manual__first"), actor="airflow:continuous_training")
    second = run_all(settings, AS_OF, trigger("weekly schedule", "scheduled__weekly"),
                     actor="airflow:continuous_training")  # fmt: skip
    weak = _settings(home, MLOPS__MODEL__NUM_BOOST_ROUND="3", MLOPS__MODEL__PARAMS='{"max_depth": 1}',
                     MLOPS__GATES__REQUIRE_IMPROVEMENT="true")  # fmt: skip
    rejected = run_all(weak, AS_OF, trigger("manual: try a shallow model", "manual__shallow"), actor="cli:analyst")
    assert first["passed"] and second["passed"] and not rejected["passed"], (first, second, rejected)
    _step(f"trained v{first['version']}, v{second['version']} (champions) and v{rejected['version']} (rejected)",
          started)  # fmt: skip
    reason = "rollback drill: v2 doubled the p95 latency in shadow scoring"
    move = Registry(settings).rollback(None, actor="airflow:model_rollback", reason=reason, run="manual__drill")
    _step(f"rolled back champion v{move.from_version} -> v{move.to_version}", started)

    week_start = AS_OF + dt.timedelta(days=settings.drift.cooldown_days + 1)
    shift = DriftSpec(start=week_start + dt.timedelta(days=DRIFT_FROM), kind="covariate",
                      features=("amount", "device_risk_score"), magnitude=0.6)  # fmt: skip
    land_days(settings, week_start, WEEK, ROWS, SEED, drift=shift)
    for offset in range(WEEK):
        day = week_start + dt.timedelta(days=offset)
        validate_and_version(settings, day)
        score_day(settings, day)
        check_day(settings, day, render_report=offset >= WEEK - 2)
    _step(f"a week scored and monitored ({week_start}..{day})", started)
    return {
        "champion": models.alias_version(settings, models.CHAMPION),
        "versions": [first["version"], second["version"], rejected["version"]],
        "week": [week_start + dt.timedelta(days=i) for i in range(WEEK)],
        "corrupt": CORRUPT,
    }


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "var").resolve()
    print(f"building a demo home in {target}")
    print(build(target))
