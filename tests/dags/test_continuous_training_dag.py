"""`airflow dags test continuous_training` on the local backend: promote, reject a weaker model, roll back."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from mlops.config import load_settings
from mlops.data.landing import land_days
from mlops.registry import CHALLENGER, CHAMPION, Registry
from mlops.runtime import airflow
from mlops.validation import validate_and_version
from tests.dags.conftest import dag_id, task_states

pytestmark = pytest.mark.airflow
START, DAYS = dt.date(2026, 10, 1), 12
AS_OF = START + dt.timedelta(days=DAYS - 1)
WEAKER = {"config": {"model": {"num_boost_round": 2, "params": {"max_depth": 1, "eta": 0.01}}}, "reason": "weaker"}


def _trigger(dag_id: str, env: dict[str, str], conf: dict | None = None):  # type: ignore[no-untyped-def]
    args = ["dags", "test", dag_id, AS_OF.isoformat()]
    if conf is not None:
        args += ["-c", json.dumps(conf)]
    return airflow(args, env, check=False, capture_output=True)


def _tail(result) -> str:  # type: ignore[no-untyped-def]
    return (result.stdout + result.stderr)[-4000:]


def test_train_promote_reject_and_roll_back(dag_env: dict[str, str], airflow_home: Path) -> None:
    settings = load_settings(env=dag_env)
    land_days(settings, START, DAYS, rows_per_day=6_000, seed=21)
    registry = Registry(settings)

    # Three validated days (a backfill under way): too little to train on. The run ends SKIPPED with the
    # reason, not failed and retried; the validated-data event of a later day starts the run that trains.
    for offset in range(3):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    early = _trigger(dag_id("continuous_training"), dag_env, {"reason": "too early"})
    assert early.returncode == 0, _tail(early)
    states = task_states(airflow_home, dag_id("continuous_training"), AS_OF)
    assert states["resolve_snapshot"] == "skipped" and states["train"] == "skipped", states
    assert set(states.values()) == {"skipped"}, states
    output = early.stdout + early.stderr
    assert "not enough labelled data to train yet (too early)" in output and "need at least 6" in output, _tail(early)
    assert registry.alias_version(CHAMPION) is None

    for offset in range(3, DAYS):
        validate_and_version(settings, START + dt.timedelta(days=offset))

    first = _trigger(dag_id("continuous_training"), dag_env, {"reason": "first model"})
    assert first.returncode == 0, _tail(first)
    champion = registry.alias_version(CHAMPION)
    assert champion is not None and registry.alias_version(CHALLENGER) == champion
    tags = registry.version_tags(champion)
    assert tags["gates.passed"] == "true" and tags["mlops.trigger_reason"] == "first model"
    assert tags["mlops.dvc_revision"] and tags["airflow.dag_id"] == dag_id("continuous_training")
    assert tags["gates.champion_compared"] == "none"  # no champion yet: absolute gates alone decided

    weaker = _trigger(dag_id("continuous_training"), dag_env, WEAKER)
    assert weaker.returncode == 0, "gates failing is a normal outcome, not a crash\n" + _tail(weaker)
    assert "NOT promoted" in weaker.stdout + weaker.stderr
    states = task_states(airflow_home, dag_id("continuous_training"), AS_OF)
    assert states["gates_passed"] == "success" and states["promote"] == "skipped"
    assert registry.alias_version(CHAMPION) == champion, "the champion is untouched"
    rejected = max(int(v.version) for v in registry.client.search_model_versions(f"name='{settings.model_name}'"))
    assert registry.version_tags(str(rejected))["gates.passed"] == "false"
    assert registry.version_tags(str(rejected))["gates.champion_compared"] == champion
    assert json.loads(registry.version_tags(str(rejected))["mlops.run_overrides"]) == WEAKER["config"]

    again = _trigger(dag_id("continuous_training"), dag_env, {"reason": "retrain"})
    assert again.returncode == 0, _tail(again)
    newer = registry.alias_version(CHAMPION)
    assert newer not in (None, champion), "an equally good model on the same holdout passes the tolerance"

    back = _trigger(dag_id("model_rollback"), dag_env, {"reason": "bad deploy drill"})
    assert back.returncode == 0, _tail(back)
    assert registry.alias_version(CHAMPION) == champion
    moves = registry.ledger().moves(settings.model_name, CHAMPION)
    assert [(m.from_version, m.to_version) for m in moves] == [(None, champion), (champion, newer), (newer, champion)]
    assert moves[-1].reason == "bad deploy drill"
    # the person behind each move: the user who triggered the run (`airflow dags test` triggers as "dag_test")
    assert [(m.actor, m.human) for m in moves[-1:]] == [(f"airflow:{dag_id('model_rollback')}", "dag_test")]
    assert moves[0].human == "dag_test"

    conf = {"reason": "try the rejected one", "to_version": str(rejected)}
    refused = _trigger(dag_id("model_rollback"), dag_env, conf)
    assert refused.returncode != 0 and "gates" in _tail(refused)
    assert registry.alias_version(CHAMPION) == champion


def test_a_conf_that_relaxes_the_gates_or_moves_mlflow_is_refused_before_the_run_exists(
    dag_env: dict[str, str], airflow_home: Path
) -> None:
    """The issue: `{"config": {"gates": ...}}` made a 0.017 AUC-PR model champion, `{"config": {"mlflow": ...}}`
    sent the trainer's MLflow credentials elsewhere. Airflow now refuses both when the run is created."""
    conf = {"config": {"gates": {"absolute": {"auc_pr": {"min": 0.0}}}, "mlflow": {"tracking_uri": "http://x"}}}
    refused = _trigger(dag_id("continuous_training"), dag_env, conf)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "Invalid input for param config: Additional properties are not allowed" in output, _tail(refused)
    assert "('gates', 'mlflow' were unexpected)" in output
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        query = "SELECT count(*) FROM dag_run WHERE dag_id = ?"
        runs = db.execute(query, (dag_id("continuous_training"),)).fetchone()[0]
    assert runs == 0, "no run was created, nothing was trained"
