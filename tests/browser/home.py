"""A MLOPS_HOME with two models and a history worth looking at, built with the same steps the DAGs run (no
scheduler).

The home has its own models folder (:func:`models_dir`) with the repository's two model files:
``card_transactions`` (card transactions, integer labels) and ``customer_churn`` (customer renewals, string
labels), each with its own lake, experiment, registered model, ledger rows and DAGs. A copy, so that a model
file added to ``include/models`` later does not change what the browser test sees.

``card_transactions``:

* 10 days landed; one corrupted on purpose and quarantined, the others validated and DVC-versioned;
* v1 trained and promoted (no champion yet), v2 trained and promoted over it (same data: its gates pass),
  v3 trained with a weak configuration and an improvement requirement: rejected by its gates;
* a rollback of champion v2 -> v1;
* a week of scored days after the training cooldown, covariate drift from the fourth, each checked for
  drift (history, trigger decisions; the Evidently report on the last two days only, to save time).

``customer_churn``: its own 10 days validated, v1 trained and promoted, two later days scored and checked
for drift.

    .venv/bin/python -m tests.browser.home /tmp/mlops-ui-home
    MLOPS_HOME=/tmp/mlops-ui-home MLOPS_MODELS_DIR=/tmp/mlops-ui-home/model-files make up
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
from pathlib import Path

from mlops.config import PROJECT_ROOT, Settings, load_settings
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
CARDS, SECOND = "card_transactions", "customer_churn"
SECOND_ROWS = 3_000  # renewals a day (its model file is sized for a few thousand)
SECOND_SEED = 23
SECOND_SCORED_DAYS = 2


def _step(text: str, started: float) -> None:
    print(f"  [{time.monotonic() - started:6.1f} s] {text}", flush=True)


def models_dir(home: Path) -> Path:
    """The home's models folder (``MLOPS_MODELS_DIR``): the two model files."""
    return home / "model-files"


def write_model_files(home: Path) -> Path:
    folder = models_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    for model in (CARDS, SECOND):
        shutil.copy(PROJECT_ROOT / "include" / "models" / f"{model}.yaml", folder / f"{model}.yaml")
    return folder


def _settings(home: Path, model: str = CARDS, **env: str) -> Settings:
    return load_settings(model=model, env={"MLOPS_HOME": str(home), "MLOPS_MODELS_DIR": str(models_dir(home)), **env})


def _trigger(settings: Settings, reason: str, run: str) -> dict[str, str]:
    return {"reason": reason, "airflow_dag_id": settings.dag_id("continuous_training"), "airflow_run_id": run}


def build(home: Path) -> dict[str, object]:
    """Build the home (a few minutes on 2 cores); returns what the tests check against."""
    from mlops import aliases, models
    from mlops.monitoring import check_day
    from mlops.registry import Registry
    from mlops.scoring import score_day
    from mlops.training.pipeline import run_all

    started = time.monotonic()
    write_model_files(home)
    settings = _settings(home)
    actor = f"airflow:{settings.dag_id('continuous_training')}"
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

    first = run_all(settings, AS_OF, _trigger(settings, "first training", "manual__first"), actor=actor)
    second = run_all(settings, AS_OF, _trigger(settings, "weekly schedule", "scheduled__weekly"), actor=actor)
    weak = _settings(home, MLOPS__MODEL__NUM_BOOST_ROUND="3", MLOPS__MODEL__PARAMS='{"max_depth": 1}',
                     MLOPS__GATES__REQUIRE_IMPROVEMENT="true")  # fmt: skip
    shallow = _trigger(weak, "manual: try a shallow model", "manual__shallow")
    rejected = run_all(weak, AS_OF, shallow, actor="cli:analyst")
    assert first["passed"] and second["passed"] and not rejected["passed"], (first, second, rejected)
    _step(f"trained v{first['version']}, v{second['version']} (champions) and v{rejected['version']} (rejected)",
          started)  # fmt: skip
    reason = "rollback drill: v2 doubled the p95 latency in shadow scoring"
    move = Registry(settings).rollback(None, actor=f"airflow:{settings.dag_id('model_rollback')}", reason=reason,
                                       run="manual__drill")  # fmt: skip
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

    other = _settings(home, SECOND)
    land_days(other, START, TRAIN_DAYS, SECOND_ROWS, SECOND_SEED)
    for offset in range(TRAIN_DAYS):
        validate_and_version(other, START + dt.timedelta(days=offset))
    trained = run_all(other, AS_OF, _trigger(other, "first training", "manual__first"),
                      actor=f"airflow:{other.dag_id('continuous_training')}")  # fmt: skip
    assert trained["passed"], trained
    land_days(other, week_start, SECOND_SCORED_DAYS, SECOND_ROWS, SECOND_SEED)
    for offset in range(SECOND_SCORED_DAYS):
        day = week_start + dt.timedelta(days=offset)
        validate_and_version(other, day)
        score_day(other, day)
        check_day(other, day, render_report=False)
    _step(f"{SECOND}: v{trained['version']} champion, {week_start}..{day} scored and monitored", started)
    return {
        "champion": aliases.alias_version(settings, models.CHAMPION),
        "versions": [first["version"], second["version"], rejected["version"]],
        "week": [week_start + dt.timedelta(days=i) for i in range(WEEK)],
        "corrupt": CORRUPT,
        "second_champion": aliases.alias_version(other, models.CHAMPION),
        "second_last_day": day,
    }


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "var").resolve()
    print(f"building a demo home in {target}")
    print(build(target))
