# ruff: noqa: F811 - the fixtures of test_trust and test_registry are imported, then requested by name
"""Trust, second round: who may move `champion`, each break of the issue reproduced on the code before the fix.

* 5: a ledger head row edited by hand never names the champion (every read checks it against the last move),
  and on Postgres the platform's role can neither drop the append-only triggers nor rewrite a move;
* 3: a rollback only goes back to a former champion; approvals and rejections are ledger records;
* 4: the approval is assigned to `promotion.approvers`, never the run's triggering user; every move records
  the person behind it;
* 2: gate verdicts live in the ledger, bound to the artifact's hash: forged MLflow tags promote nothing.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlops import aliases, models
from mlops.config import Settings, load_settings
from mlops.ledger import AliasOutOfSync, HeadTampered, Ledger, RegistryError
from mlops.registry import CHALLENGER, CHAMPION, Registry
from mlops.verdicts import check_approver
from tests.unit.test_registry import PG_BIN, postgres_url  # noqa: F401 - the throwaway PostgreSQL fixture
from tests.unit.test_trust import _cli, _version, _who, mlops_home, model_uri, registry, settings  # noqa: F401

DOCKER_DIR = Path(__file__).resolve().parents[2] / "include" / "docker"


def _sql(settings: Settings, statement: str, **params: str) -> None:
    """A statement typed by hand against the ledger's database (the attacker's, or the owner's, console)."""
    engine = sa.create_engine(settings.ledger_uri)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


# -- 5. the head row is the lock, not the record -----------------------------------------------------------------
def test_an_edited_head_row_never_names_the_champion(
    registry: Registry, settings: Settings, model_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2 = _version(registry, model_uri), _version(registry, model_uri)
    registry.promote(v1, None, **_who())
    # The attack: the head row (which the platform's role may update) and a matching MLflow alias.
    _sql(settings, "UPDATE alias_heads SET version = :v WHERE model = :m AND alias = 'champion'", v=v2, m=registry.name)
    registry.client.set_registered_model_alias(registry.name, CHAMPION, v2)

    reason = rf"head of champion of model '{registry.name}' says version 2 but its last recorded move is move #\d+ "
    for read in (lambda: aliases.alias_version(settings, CHAMPION), lambda: aliases.pin_champion(settings)):
        with pytest.raises(AliasOutOfSync, match=reason + r".* to version 1") as refused:
            read()
        assert len(str(refused.value).splitlines()) == 1
    with pytest.raises(HeadTampered):
        registry.promote(v2, v2, **_who())
    shown = aliases.overview(settings)
    assert shown["champion"] == v1, "the champion shown is where the last recorded move went"
    assert shown["out_of_sync"] == [CHAMPION] and "edited outside the platform" in shown["problems"][CHAMPION]
    code, out, _ = _cli(["models"], capsys)
    assert code == 1 and "champion v1" in out and "edited outside the platform" in out  # the reason, not MLflow

    registry.resync_alias(CHAMPION, **_who())  # `mlops models --resync`: the head back to the last move
    assert aliases.alias_version(settings, CHAMPION) == v1 and registry.alias_version(CHAMPION) == v1
    assert [m.to_version for m in registry.ledger().moves(registry.name, CHAMPION)] == [v1]


def _psql(url: sa.URL, script: Path, env: dict[str, str]) -> None:
    command = [str(PG_BIN / "psql"), "-h", str(url.host), "-p", str(url.port), "-U", "postgres", "-d", "postgres",
               "-v", "ON_ERROR_STOP=1", "-q", "-f", str(script)]  # fmt: skip
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_on_postgres_the_runtime_role_moves_but_cannot_drop_a_trigger_or_rewrite_a_move(
    postgres_url: str,  # noqa: F811 - the fixture
) -> None:
    """The compose stack's two init scripts, run as the image runs them; then the platform's role at work."""
    admin = sa.engine.make_url(postgres_url)
    passwords = {f"{name}_DB_PASSWORD": "unused-with-trust-auth" for name in ("AIRFLOW", "MLFLOW", "MLOPS")}
    for script in ("postgres-init.sql", "ledger-schema.sql"):
        _psql(admin, DOCKER_DIR / script, passwords)
    runtime = admin.set(username="mlops", database="mlops").render_as_string(hide_password=False)

    ledger = Ledger(runtime)  # the schema is there: no DDL needed (nor allowed)
    ledger.move("m", CHAMPION, "1", compare=True, expected=None, actor="a", reason="r", run="x", human="alice")
    ledger.record_decision("m", "2", "rejected", human="bob", actor="a", reason="r", run="x")
    assert ledger.head("m", CHAMPION) == "1" and ledger.moves("m")[0].human == "alice"
    engine = sa.create_engine(runtime)
    attacks = [
        "DROP TRIGGER alias_moves_append_only ON alias_moves",
        "ALTER TABLE alias_moves DISABLE TRIGGER ALL",
        "DROP FUNCTION alias_moves_append_only() CASCADE",
        "UPDATE alias_moves SET to_version = '9'",
        "DELETE FROM alias_moves",
        "UPDATE promotion_decisions SET decision = 'approved'",
        "DELETE FROM gate_verdicts",
        "TRUNCATE retired_versions",
        "CREATE TABLE alias_moves_copy (id int)",
    ]
    try:
        for attack in attacks:
            with (
                pytest.raises(sa.exc.DBAPIError, match="must be owner|permission denied|append-only"),
                engine.begin() as conn,
            ):
                conn.exec_driver_sql(attack)
        with engine.begin() as conn:  # allowed (it is the lock), and caught on the next read
            conn.exec_driver_sql("UPDATE alias_heads SET version = '9' WHERE model = 'm'")
        with pytest.raises(HeadTampered, match="says version 9 but its last recorded move"):
            ledger.head("m", CHAMPION)
    finally:
        engine.dispose()
        ledger.dispose()


# -- 3. a rollback goes back, never forward --------------------------------------------------------------------
def test_a_rollback_never_makes_a_version_awaiting_approval_champion(
    registry: Registry, settings: Settings, model_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good, awaiting = _version(registry, model_uri), _version(registry, model_uri, compared="1")
    registry.promote(good, None, **_who())
    registry.set_challenger(awaiting, **_who("passed its gates"))  # manual policy: waits for a human
    registry.record_decision(awaiting, "rejected", human="carol", actor="airflow:ct", reason="rejected", run="r1")

    with pytest.raises(RegistryError, match=r"version 2 .* was never champion .* a rollback only goes back"):
        registry.rollback(awaiting, **_who())
    code, _, err = _cli(["rollback", "--to", awaiting, "--reason", "roll forward"], capsys)
    assert code == 1 and "never champion" in err and len(err.strip().splitlines()) == 1
    assert aliases.alias_version(settings, CHAMPION) == good and registry.retired() == {}, "the good one stays"

    decisions = aliases.overview(settings)["decisions"]
    assert [(d["version"], d["decision"], d["human"]) for d in decisions] == [(awaiting, "rejected", "carol")]
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        _sql(settings, "UPDATE promotion_decisions SET decision = 'approved'")


# -- 4. who may approve, and who is recorded ---------------------------------------------------------------------
def test_the_approval_is_assigned_to_the_approvers_and_never_counts_from_the_runs_own_trigger(tmp_path: Path) -> None:
    from mlops.airflow.dags import training

    env = {"MLOPS_HOME": str(tmp_path), "MLOPS__PROMOTION__POLICY": "manual",
           "MLOPS__PROMOTION__APPROVERS": '["alice", "bob"]'}  # fmt: skip
    dag = training.build(load_settings(env=env))
    approval = dag.get_task("approve_promotion")
    assert approval.assigned_users == [{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}]
    assert "approve_promotion" in dag.get_task("promote").upstream_task_ids

    assert check_approver(["alice", "bob"], "bob", triggering_user="alice") == "bob"
    for responder, why in (("alice", "triggered this run and approved its own promotion"),
                           ("mallory", "not in promotion.approvers"), (None, "approved by nobody")):  # fmt: skip
        with pytest.raises(RegistryError, match=why) as refused:
            check_approver(["alice", "bob"], responder, triggering_user="alice")
        assert len(str(refused.value).splitlines()) == 1
    with pytest.raises(RegistryError, match="not in promotion.approvers"):
        check_approver([], "alice", triggering_user="bob")  # no approvers: nobody can approve


def test_every_move_records_the_person_behind_the_system_actor(
    registry: Registry, model_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2 = _version(registry, model_uri), _version(registry, model_uri, compared="1")
    registry.promote(v1, None, actor="airflow:ct", reason="approved", run="r1", human="bob")
    code, _, _ = _cli(["promote", "--version", v2], capsys)
    assert code == 0
    code, _, _ = _cli(["rollback", "--reason", "bad"], capsys)
    assert code == 0
    moves = registry.ledger().moves(registry.name, CHAMPION)
    cli = (f"cli:{getpass.getuser()}", getpass.getuser())  # the OS user, next to the CLI
    assert [(m.actor, m.human) for m in moves] == [("airflow:ct", "bob"), cli, cli]


# -- 2. gate verdicts live in the ledger -------------------------------------------------------------------------
def test_forged_gate_tags_in_mlflow_promote_nothing(
    registry: Registry, settings: Settings, model_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment = registry.client.get_experiment_by_name("trust-tests").experiment_id
    run_id = registry.client.create_run(experiment).info.run_id
    forged = registry.register(run_id, model_uri, {"gates.passed": "true", "gates.champion_compared": "none"})

    code, _, err = _cli(["promote", "--version", forged, "--expected", "none"], capsys)
    assert code == 1 and "no gate verdict in the ledger" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(RegistryError, match="not assessed by the platform"):
        registry.promote(forged, None, **_who())
    registry.client.set_registered_model_alias(registry.name, CHAMPION, forged)  # by hand, then "record it"
    with pytest.raises(RegistryError, match="no gate verdict"):
        registry.resync_alias(CHAMPION, **_who(), trust="mlflow")
    registry.resync_alias(CHAMPION, **_who())
    assert aliases.overview(settings)["champion"] is None and registry.alias_version(CHAMPION) is None


def test_a_model_artifact_swapped_after_its_gates_ran_is_refused(
    registry: Registry, settings: Settings, model_uri: str
) -> None:
    import mlflow
    import numpy as np
    import xgboost as xgb

    assessed = _version(registry, model_uri)  # its training run has a passing verdict bound to its booster
    run_id = registry.client.get_model_version(registry.name, assessed).run_id
    other = xgb.train({"objective": "binary:logistic", "nthread": 1},
                      xgb.DMatrix(np.eye(4), label=[1, 0, 1, 0]), num_boost_round=3)  # fmt: skip
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    models.use_tracking(settings)
    try:
        with mlflow.start_run(run_id=run_id):
            swapped_uri = mlflow.xgboost.log_model(other, name="other", pip_requirements=["xgboost"]).model_uri
    finally:
        mlflow.set_tracking_uri(previous)
    source = registry.client.get_logged_model(swapped_uri.removeprefix("models:/")).artifact_location
    swapped = str(registry.client.create_model_version(registry.name, source=source, run_id=run_id).version)

    with pytest.raises(RegistryError, match=r"artifact hashes to .* not .* as assessed"):
        registry.promote(swapped, None, **_who())
    registry.promote(assessed, None, **_who())  # the assessed artifact itself is promotable
    assert registry.alias_version(CHAMPION) == assessed and registry.alias_version(CHALLENGER) is None
